"""kb never imports torch: the knowledge base works without the runnables' extra."""

import subprocess
import sys


def test_importing_every_kb_module_does_not_import_torch():
    code = (
        "import pkgutil, importlib, sys, kb\n"
        "for m in pkgutil.iter_modules(kb.__path__):\n"
        "    m.name != '__main__' and importlib.import_module('kb.' + m.name)\n"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"

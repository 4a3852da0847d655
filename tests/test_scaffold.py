"""kb new writes a record that validates, and never overwrites."""
import shutil

import kb
from kb.cli import main

from .conftest import DATA


def test_new_record_validates_and_is_not_overwritten(tmp_path, capsys):
    shutil.copytree(DATA / "mini", tmp_path / "p")
    root = str(tmp_path / "p")
    assert main(["--root", root, "new", "lenet", "--title", "Gradient-Based Learning", "--year", "1998"]) == 0
    assert kb.load(root, strict=True).paper("lenet").year == 1998
    assert main(["--root", root, "new", "lenet"]) == 1
    assert "papers/lenet.yaml exists; kb new never overwrites" in capsys.readouterr().err


def test_new_with_runnable_writes_both(tmp_path):
    shutil.copytree(DATA / "mini", tmp_path / "p")
    assert main(["--root", str(tmp_path / "p"), "new", "toy", "--runnable"]) == 0
    base = kb.load(tmp_path / "p", strict=True)
    assert base.paper("toy").runnable.id == "toy" and (tmp_path / "p" / "runnable" / "toy.py").is_file()


def test_new_refuses_a_bad_id(tmp_path, capsys):
    assert main(["--root", str(DATA / "mini"), "new", "../evil"]) == 1
    assert "id '../evil' must match" in capsys.readouterr().err

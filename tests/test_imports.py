"""The folder tree is the pipeline: no two kb modules import each other (directly or round a
circle), and the knowledge base never imports the site, the CLI or the runnables."""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

KB = Path(__file__).resolve().parents[1] / "kb"


def module_name(path: Path) -> str:
    parts = path.relative_to(KB.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every kb module ``path`` imports, at any depth in the file (lazy imports count too)."""
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "kb"}
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            base = base[: len(base) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            if target.split(".")[0] != "kb":
                continue
            for alias in node.names:  # `from . import lineage` names a module
                sub = f"{target}.{alias.name}"
                found.add(sub if (KB.parent / (sub.replace(".", "/") + ".py")).exists() else target)
    return found - {me}


def import_graph() -> nx.DiGraph:
    G = nx.DiGraph()
    modules = {module_name(p): p for p in KB.rglob("*.py")}
    for name, path in modules.items():
        G.add_node(name)
        for target in imports_of(path):
            while target not in modules and "." in target:
                target = target.rpartition(".")[0]
            if target in modules and target != name:
                G.add_edge(name, target)
    return G


def test_kb_has_no_import_circles():
    G = import_graph()
    cycles = [c for c in nx.simple_cycles(G) if len(c) > 1 and "kb" not in c]
    assert cycles == [], f"import circles: {cycles}"


def test_the_knowledge_base_never_imports_the_site_cli_or_runnables():
    G = import_graph()
    for module in (n for n in G if n.startswith("kb.knowledge")):
        bad = [
            t for t in G.successors(module) if t.startswith(("kb.site", "kb.cli", "kb.runnables"))
        ]
        assert bad == [], f"{module} imports {bad}"


def test_the_import_graph_sees_lazy_and_relative_imports():
    G = import_graph()
    assert G.has_edge("kb.site.render", "kb.site.pages")  # from .pages import …
    assert G.has_edge("kb.cli", "kb.site.build")  # a lazy import inside a function
    assert G.has_edge("kb.site.pages", "kb.knowledge.lineage")  # from ..knowledge import lineage

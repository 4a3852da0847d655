"""A knowledge base of classic deep-learning papers and where their ideas came from.

>>> import kb
>>> base = kb.load()                                  # doctest: +SKIP
>>> kb.path(base.graph, "word2vec/cbow", "bert/mlm")  # doctest: +SKIP
['word2vec/cbow', 'bert/mlm']
"""

from .errors import KBError, NoPath, NotFound, Problem, ValidationFailed
from .knowledge.base import KnowledgeBase, find_root, load
from .knowledge.lineage import (
    ancestors,
    build_graph,
    descendants,
    paper_graph,
    path,
    paths,
    plan,
    steps,
)
from .knowledge.schema import Paper

__all__ = [
    "KBError",
    "NoPath",
    "NotFound",
    "Problem",
    "ValidationFailed",
    "KnowledgeBase",
    "find_root",
    "load",
    "ancestors",
    "build_graph",
    "descendants",
    "paper_graph",
    "path",
    "paths",
    "plan",
    "steps",
    "Paper",
]
__version__ = "0.1.0"

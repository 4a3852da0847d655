"""The knowledge base: ``papers/*.yaml`` → validated :class:`~kb.knowledge.schema.Paper` records →
the lineage graph (:mod:`kb.knowledge.lineage`).

The pipeline in reading order: ``schema`` (the one place a field is defined), ``yamlio``
(YAML with line numbers), ``loader`` (read every record, collect every problem), ``checks``
(cross-record checks), ``lineage`` (graph building and queries), ``base`` (the
:class:`KnowledgeBase` that ties them together); beside them ``glossary``, ``scaffold``
(``kb new``) and ``export`` (the graph in other formats). Nothing here imports the site.
"""

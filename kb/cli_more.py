"""Registration of the sub-commands that live in their own modules.

Each entry is ``register(sub, add)``; see :func:`kb.cli.parser`.
"""
REGISTER: list = []

"""One compact PyTorch implementation per paper: ``python -m runnable.<id> --preset tiny``.

Each file stands alone; nothing is shared between them on purpose.
"""

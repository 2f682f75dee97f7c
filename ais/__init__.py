"""ais: core types shared by every node role, plus the client, CLI and PyTorch integration.

Nothing in this package imports `proxy`, `target` or `etl` (checked by import-linter).
"""

__version__ = "0.1.0"

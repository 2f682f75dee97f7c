#!/usr/bin/env python3
"""The old name of aisloader.py (kept so the command lines in README.md still work):
`native_bench.py prepare|run|matrix|table ...` is `aisloader.py prepare|run|matrix|table ...`."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from aisloader import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())

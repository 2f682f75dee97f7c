#!/usr/bin/env bash
# Install everything the tests need, then run the whole suite (unit, then cluster tests).
# Arguments go to pytest (e.g. -k listing -x). Exits non-zero when any test fails.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
"$ROOT/deploy/local/install.sh" test
cd "$ROOT"
exec .venv/bin/python -m pytest tests -p no:cacheprovider "$@"

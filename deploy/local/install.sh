#!/usr/bin/env bash
# Create .venv (Python >= 3.11) and install the project with its test dependencies.
# Idempotent: re-running only installs what changed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

PY=""
for cand in python3.13 python3.12 python3.11 python3; do
    if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
        PY="$cand"; break
    fi
done
[ -n "$PY" ] || { echo "install: Python >= 3.11 is required" >&2; exit 1; }

if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
EXTRAS="${1:-test}"
.venv/bin/python -m pip install -q -e ".[${EXTRAS}]"
if [ "$EXTRAS" = "test" ]; then
    # zsh, for the test of `ais completion zsh` in a real shell: installed when missing and we are
    # root with apt-get; never fails the install (the test skips, saying why, without zsh)
    if ! command -v zsh >/dev/null 2>&1 && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q zsh >/dev/null 2>&1 \
            || { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q zsh >/dev/null 2>&1; } \
            || echo "install: could not install zsh (the zsh completion test will be skipped)" >&2
    fi
    "$ROOT/deploy/local/install_azurite.sh"   # the Azure emulator (npm) for the az:// tests
    # PyTorch (CPU) for ais.pytorch and its tests; the SDK's aistore.pytorch also imports alive_progress
    .venv/bin/python -m pip install -q "torch==2.13.0" "alive-progress>=3"
fi

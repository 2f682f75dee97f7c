#!/usr/bin/env bash
# Install (if needed) and start a local cluster: 1 proxy and 3 targets on 127.0.0.1.
# Arguments go to `ais cluster up` (e.g. --targets 5 --dir /data/ais --port 8080).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
"$ROOT/deploy/local/install.sh" test
exec "$ROOT/.venv/bin/ais" cluster up "$@"

#!/usr/bin/env bash
# Install Azurite (the Azure Storage emulator, from npm) into <repo>/.tools for the Azure
# backend tests: tests/emulators/__init__.py::Azurite runs .tools/node_modules/.bin/azurite-blob.
# Idempotent: does nothing when the pinned version is already there.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VERSION="3.37.0"
TOOLS="$ROOT/.tools"
BIN="$TOOLS/node_modules/.bin/azurite-blob"
PKG_JSON="$TOOLS/node_modules/azurite/package.json"

installed_version() {
    [ -x "$BIN" ] && [ -f "$PKG_JSON" ] || return 0
    sed -n 's/^[[:space:]]*"version":[[:space:]]*"\([^"]*\)".*/\1/p' "$PKG_JSON" | head -n 1
}

if [ "$(installed_version)" = "$VERSION" ]; then
    exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
    echo "install_azurite: npm is required (install Node.js >= 18) to run the Azure backend tests" >&2
    exit 1
fi
mkdir -p "$TOOLS"
npm install --prefix "$TOOLS" --no-save --no-audit --no-fund --loglevel=error "azurite@$VERSION" >/dev/null
[ -x "$BIN" ] || { echo "install_azurite: npm finished but $BIN is missing" >&2; exit 1; }

# Sourced (never run) by the end-to-end benchmark scripts (run_matrix.sh, s3_bench.sh,
# run_native.sh): what they share.
#
#   bench_session "$@"  with NICE != 0 (e.g. -10; root only): re-run the calling script in a
#                       session of its own and give that session (autogroup nice) and the script
#                       (nice) that priority. The kernel's autogroup scheduler shares CPU between
#                       sessions before processes, so nice alone does nothing against other
#                       sessions' load on a shared machine.
#   bench_prio PID...   the same priority for processes started later (cluster nodes and peers
#                       run in sessions of their own)
#
# Sets HERE (the script's directory), ROOT (the repository), PYTHON (exported) and PY, AIS, OUT_DIR.
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
export PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
PY=$PYTHON
AIS=${AIS:-$ROOT/.venv/bin/ais}
OUT_DIR=${OUT_DIR:-$HERE/results}

bench_session() {
    [ "${NICE:-0}" = 0 ] && return 0
    if [ -z "${_BENCH_SESSION:-}" ]; then
        export _BENCH_SESSION=1
        exec setsid --wait bash "$0" "$@"
    fi
    echo "$NICE" > "/proc/$$/autogroup" 2>/dev/null || echo "could not set autogroup nice" >&2
    renice -n "$NICE" -p $$ >/dev/null
}

bench_prio() {
    [ "${NICE:-0}" = 0 ] && return 0
    for p in "$@"; do
        echo "$NICE" > "/proc/$p/autogroup" 2>/dev/null || true
        renice -n "$NICE" -p "$p" >/dev/null 2>&1 || true
    done
}

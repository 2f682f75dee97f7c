#!/usr/bin/env bash
# The native-API benchmark, end to end: a fresh local cluster (1 proxy + 3 targets, 2 mountpaths
# each) and nginx on loopback, the same objects in both, the GET/PUT matrix interleaved over
# ais (through the proxy), ais-direct (straight to the owning target) and nginx; then the 2 GiB
# memory check on a fresh cluster; optionally py-spy profiles. Everything is torn down at the end.
#
#   benchmarks/run_native.sh                      # ~10 min with the defaults
#   REPS=1 DURATION=5 benchmarks/run_native.sh    # quick look
#
# Env (defaults in brackets):
#   OUT_DIR [benchmarks/results]   NAME [native-<UTC date/time>]  -> $OUT_DIR/$NAME.{jsonl,md,...}
#   WORK [/tmp/native-bench]       cluster dirs and nginx root
#   PORT [31080] (cluster, 8 ports)  MEM_PORT [31180] (memcheck cluster)  NGINX_PORT [8581]
#   REPS [3]  DURATION [10]  WARMUP [2]  CONCS ["16"]  PROCS [2]
#   CASES ["get:16KiB:100 put:16KiB:1000 get:8MiB:32 put:8MiB:128"]
#   SERVERS ["ais ais-direct nginx"]
#   NOFSYNC_PUT [1]   also run the PUT cases against a cluster started with --no-fsync
#   MEMCHECK [1]  MEM_SIZE [2GiB]  MEM_LIMIT_MIB [150]
#   PROFILE [1]   py-spy (pip install py-spy into the venv) --gil profiles: proxy under 16 KiB GETs
#                 through it, a target under direct 16 KiB GETs and PUTs -> $NAME.<what>.gil.txt
#   FLOOR [1]     aiohttp_floor.py (bare aiohttp+uvloop, with/without a thread-pool hop) -> $NAME.floor.jsonl
#   QUIET_WAIT [30]  before each cell wait up to this many s for the machine to be idle
#   MAX_OTHER [0.3]  re-run (RETRIES [1] times at most) a cell where other processes used more cores
#   NOFSYNC_REPS [$REPS]
#   NICE [0]      e.g. -10: run everything at this nice level (and autogroup nice; root only)
set -euo pipefail
# shellcheck source=bench_lib.sh
. "$(dirname "$0")/bench_lib.sh"
bench_session "$@"
NAME=${NAME:-native-$(date -u +%Y%m%d-%H%M)}
WORK=${WORK:-/tmp/native-bench}
PORT=${PORT:-31080}
MEM_PORT=${MEM_PORT:-31180}
export NGINX_PORT=${NGINX_PORT:-8581}
export NGINX_BENCH_DIR=${NGINX_BENCH_DIR:-$WORK/nginx}
REPS=${REPS:-3}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CONCS=${CONCS:-16}
PROCS=${PROCS:-2}
CASES=${CASES:-get:16KiB:100 put:16KiB:1000 get:8MiB:32 put:8MiB:128}
SERVERS=${SERVERS:-ais ais-direct nginx}
QUIET_WAIT=${QUIET_WAIT:-30}
MAX_OTHER=${MAX_OTHER:-0.3}
mkdir -p "$OUT_DIR" "$WORK"
JSONL=$OUT_DIR/$NAME.jsonl
LOG=$OUT_DIR/$NAME.log
CL=$WORK/cluster
MEMCL=$WORK/memcluster
NB="$PY $HERE/aisloader.py"

cleanup() {
    "$AIS" cluster down --dir "$CL" --purge --yes >/dev/null 2>&1 || true
    "$AIS" cluster down --dir "$CL-nofsync" --purge --yes >/dev/null 2>&1 || true
    "$AIS" cluster down --dir "$MEMCL" --purge --yes >/dev/null 2>&1 || true
    "$HERE/nginx_peer.sh" stop >/dev/null 2>&1 || true
}
trap cleanup EXIT

pid_args() {  # --ais-pid name=pid for every node of cluster dir $1
    "$PY" - "$1/cluster.json" <<'PYEOF'
import json, sys
print(" ".join("--ais-pid %s=%s" % (n["name"], n["pid"]) for n in json.load(open(sys.argv[1]))["nodes"]))
PYEOF
}

machine_info() {
    echo "## machine"
    echo "date: $(date -u +%FT%TZ)  kernel: $(uname -r)  cores: $(nproc)  mem: $(free -g | awk '/Mem:/{print $2}') GiB"
    grep -m1 "model name" /proc/cpuinfo || true
    echo "python: $("$PY" -V 2>&1)  aiohttp: $("$PY" -c 'import aiohttp;print(aiohttp.__version__)')  uvloop: $("$PY" -c 'import uvloop;print(uvloop.__version__)')"
    echo "nginx: $(nginx -v 2>&1)"
    echo "git: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null) $(git -C "$ROOT" status --porcelain 2>/dev/null | grep -v '^??' | wc -l) modified tracked files"
}

start_cluster() {  # dir port [extra up args]
    local d=$1 p=$2; shift 2
    "$AIS" cluster down --dir "$d" --purge --yes >/dev/null 2>&1 || true
    "$AIS" cluster up --dir "$d" --port "$p" --targets 3 --mountpaths 2 "$@" | grep AIS_ENDPOINT= | head -1
}

{
machine_info
echo
echo "## setup"
start_cluster "$CL" "$PORT"
"$HERE/nginx_peer.sh" start
EP=http://127.0.0.1:$PORT
NG=http://127.0.0.1:$NGINX_PORT
prep_cases=""
for c in $CASES; do IFS=: read -r op size n <<<"$c"; [ "$op" = get ] && prep_cases="$prep_cases --case $size:$n"; done
# shellcheck disable=SC2086
$NB prepare --endpoint "$EP" --nginx-url "$NG" --nginx-root "$NGINX_BENCH_DIR/www" $prep_cases
COMMON="--endpoint $EP --nginx-url $NG --nginx-pid $NGINX_BENCH_DIR/master.pid --procs $PROCS
        --duration $DURATION --warmup $WARMUP --quiet-wait $QUIET_WAIT --max-other $MAX_OTHER --retries ${RETRIES:-1}"

echo
echo "## matrix (fsync on: the cluster's default)"
# shellcheck disable=SC2086,SC2046
$NB matrix $COMMON $(pid_args "$CL") --reps "$REPS" --cases "$CASES" --concs "$CONCS" \
    --servers "$SERVERS" --out "$JSONL" > /dev/null

if [ "${PROFILE:-1}" = 1 ] && [ -x "$(dirname "$PY")/py-spy" ]; then
    echo
    echo "## py-spy: --gil samples (the thread holding the GIL = Python CPU) under 16 KiB load, 8 s each"
    SPY=$(dirname "$PY")/py-spy
    read -r PPID0 TPID0 < <("$PY" -c 'import json,sys; n=json.load(open(sys.argv[1]))["nodes"]; print(n[0]["pid"], n[1]["pid"])' "$CL/cluster.json")
    # name  server  op  objects  pid-to-profile
    for spec in "proxy-get16k ais get 100 $PPID0" "target-get16k ais-direct get 100 $TPID0" \
                "target-put16k ais-direct put 1000 $TPID0"; do
        read -r pname psrv pop pn ppid <<<"$spec"
        # shellcheck disable=SC2086,SC2046
        $NB run $COMMON $(pid_args "$CL") --quiet-wait 0 --server "$psrv" --op "$pop" --size 16KiB -n "$pn" \
            -c 16 --duration 14 --label "profile $pname" > "$OUT_DIR/$NAME.profiled-$pname.json" 2>/dev/null &
        BENCH=$!
        sleep $((WARMUP + 3))
        "$SPY" record --format raw --gil -r 250 -d 8 -p "$ppid" -o "$OUT_DIR/$NAME.$pname.collapsed" >/dev/null 2>&1 || true
        wait "$BENCH" || true
        "$PY" "$HERE/collapsed_top.py" "$OUT_DIR/$NAME.$pname.collapsed" --top 30 --no-lines > "$OUT_DIR/$NAME.$pname.gil.txt" || true
        echo "### $pname: $("$PY" -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["ops_per_s"], "ops/s, cores by node", r["server_cores_by_node"])' "$OUT_DIR/$NAME.profiled-$pname.json")"
        head -n 20 "$OUT_DIR/$NAME.$pname.gil.txt"
    done
fi

if [ "${FLOOR:-1}" = 1 ]; then
    echo
    echo "## the floor: aiohttp + uvloop answering 16 KiB from memory (one process), c=16 and c=6"
    for mode in nopool pool; do
        flag=""; [ "$mode" = pool ] && flag=--pool
        # shellcheck disable=SC2086
        "$PY" "$HERE/aiohttp_floor.py" --port "${FLOOR_PORT:-8591}" $flag & FP=$!
        sleep 1.5
        for c in 16 6; do
            # shellcheck disable=SC2086
            $NB run $COMMON --server plain --nginx-url "http://127.0.0.1:${FLOOR_PORT:-8591}" --nginx-pid "floor=$FP" --as "floor-$mode" \
                --op get --size 16KiB -n 100 -c "$c" --label "floor $mode" --out "$OUT_DIR/$NAME.floor.jsonl" >/dev/null
        done
        kill "$FP"; wait "$FP" 2>/dev/null || true
    done
fi

if [ "${NOFSYNC_PUT:-1}" = 1 ]; then
    echo
    echo "## PUT cases against a cluster started with --no-fsync"
    "$AIS" cluster down --dir "$CL" --purge --yes >/dev/null
    start_cluster "$CL-nofsync" "$PORT" --no-fsync
    put_cases=""
    for c in $CASES; do [[ $c == put:* ]] && put_cases="$put_cases $c"; done
    # shellcheck disable=SC2086
    $NB prepare --endpoint "$EP" --case 16KiB:1 >/dev/null
    # shellcheck disable=SC2086,SC2046
    $NB matrix $COMMON $(pid_args "$CL-nofsync") --reps "${NOFSYNC_REPS:-$REPS}" --cases "$put_cases" --concs "$CONCS" \
        --servers "$SERVERS" --out "$OUT_DIR/$NAME.nofsync.jsonl" > /dev/null
    "$AIS" cluster down --dir "$CL-nofsync" --purge --yes >/dev/null
fi
"$HERE/nginx_peer.sh" stop

if [ "${MEMCHECK:-1}" = 1 ]; then
    echo
    echo "## memory: ${MEM_SIZE:-2GiB} PUT + GET on a fresh cluster"
    "$AIS" cluster down --dir "$CL" --purge --yes >/dev/null 2>&1 || true
    start_cluster "$MEMCL" "$MEM_PORT"
    "$PY" "$HERE/memcheck.py" --dir "$MEMCL" --size "${MEM_SIZE:-2GiB}" --limit-mib "${MEM_LIMIT_MIB:-150}" \
        > "$OUT_DIR/$NAME.memcheck.json" || echo "memcheck: FAIL (see $OUT_DIR/$NAME.memcheck.json)"
fi

echo
echo "## results (medians over $REPS reps)"
"$PY" "$HERE/aisloader.py" table "$JSONL"
if [ -f "$OUT_DIR/$NAME.floor.jsonl" ]; then
    echo
    echo "the floor (plain = aiohttp_floor.py; server cores / ops = CPU per request):"
    "$PY" "$HERE/aisloader.py" table "$OUT_DIR/$NAME.floor.jsonl"
fi
if [ -f "$OUT_DIR/$NAME.nofsync.jsonl" ]; then
    echo
    echo "PUT with --no-fsync:"
    "$PY" "$HERE/aisloader.py" table "$OUT_DIR/$NAME.nofsync.jsonl"
fi
} 2>&1 | tee "$LOG"
echo "raw results: $JSONL  log: $LOG" >&2

#!/usr/bin/env bash
# The S3 benchmark of issue 3, end to end: this project's cluster (1 proxy + 3 targets, 2 mountpaths
# each, fsync on: the default), OpenStack Swift with its s3api middleware, and nginx, all on loopback,
# measured by the same client (../shared/bench/s3load.py, through ../shared/bench/run_matrix.sh) in
# one interleaved run: rep -> server -> case -> concurrency. GET and PUT of 16 KiB and 8 MiB objects.
# Then (optional) 8 MiB PUTs without payload hashing (UNSIGNED-PAYLOAD), and py-spy profiles of the cluster.
# Everything started here is stopped at the end (by recorded pids).
#
#   benchmarks/s3_bench.sh                        # ~17 min with the defaults
#   REPS=1 REPS64=0 DURATION=4 PROFILE=0 benchmarks/s3_bench.sh   # quick look (~3 min)
#
# Needs (once, as root): ../shared/bench/peers/swift/setup.sh (Debian's swift 2.30 + memcached) and
# nginx (../shared/bench/peers/nginx/setup.sh); the client runs in this repository's .venv (aiohttp,
# uvloop, botocore for the signer self-check); py-spy in the .venv for PROFILE=1.
#
# Env (defaults in brackets):
#   BENCH [../shared/bench]  OUT_DIR [benchmarks/results]  NAME [s3-<UTC date-time>]
#   WORK [/tmp/s3-bench]     cluster, Swift and nginx directories
#   PORT [31080] (cluster: 8 ports)  SWIFT_PORT [8680] (+ SWIFT_BACKEND_PORT [6610..6612],
#   SWIFT_MEMCACHE_PORT [11661])  NGINX_PORT [8681]
#   REPS [3] repetitions at CONCS [16];  REPS64 [2] repetitions at CONCS64 [64] (0 = skip)
#   DURATION [10]  WARMUP [2]  PROCS [2] (client processes)
#   CASES ["get:16KiB:100 put:16KiB:1000 get:8MiB:32 put:8MiB:128"]  (PUT keys >= 2 x concurrency:
#         Swift answers 409 to a PUT older than one already stored for the key)
#   PEERS ["custom swift nginx"]  (custom = the cluster; a peer that fails to start is dropped)
#   AIS_KEYS [1]  add an S3 access key so the cluster verifies SigV4 on every request, as Swift's
#                 s3api + tempauth do (0 = anonymous access)
#   FSYNC [1]     0 = start the cluster with --no-fsync (not the issue-3 condition)
#   UNSIGNED_REPS [2]  extra 8 MiB PUT runs (cluster and Swift) with UNSIGNED-PAYLOAD (0 = skip)
#   PROFILE [1]   py-spy --gil profiles of the proxy and a target under S3 16 KiB GET/PUT and 8 MiB GET
#   QUIET_WAIT [8] QUIET_CORES [0.3]  before each run wait up to QUIET_WAIT s for < QUIET_CORES busy
#   NICE [-10]    nice + autogroup nice for client and servers (root; 0 = leave as is)
set -euo pipefail
export NICE=${NICE:--10}
# shellcheck source=bench_lib.sh
. "$(dirname "$0")/bench_lib.sh"
bench_session "$@"
BENCH=$(cd "${BENCH:-$ROOT/../shared/bench}" && pwd)
NAME=${NAME:-s3-$(date -u +%Y%m%d-%H%M)}
WORK=${WORK:-/tmp/s3-bench}
PORT=${PORT:-31080}
export SWIFT_PORT=${SWIFT_PORT:-8680} SWIFT_BACKEND_PORT=${SWIFT_BACKEND_PORT:-6610}
export SWIFT_MEMCACHE_PORT=${SWIFT_MEMCACHE_PORT:-11661} SWIFT_BENCH_DIR=${SWIFT_BENCH_DIR:-$WORK/swift}
export NGINX_PORT=${NGINX_PORT:-8681} NGINX_BENCH_DIR=${NGINX_BENCH_DIR:-$WORK/nginx}
REPS=${REPS:-3}
CONCS=${CONCS:-16}
REPS64=${REPS64:-2}
CONCS64=${CONCS64:-64}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
PROCS=${PROCS:-2}
CASES=${CASES:-get:16KiB:100 put:16KiB:1000 get:8MiB:32 put:8MiB:128}
PEERS=${PEERS:-custom swift nginx}
export QUIET_WAIT=${QUIET_WAIT:-8} QUIET_CORES=${QUIET_CORES:-0.3}
KEY=BENCHS3ACCESSKEY01
SECRET=benchS3SecretKey0000000000000001
mkdir -p "$OUT_DIR" "$WORK"
JSONL=$OUT_DIR/$NAME.jsonl
LOG=$OUT_DIR/$NAME.log
CL=$WORK/cluster
PIDS=$WORK/pids

cleanup() {
    "$AIS" cluster down --dir "$CL" --purge --yes >/dev/null 2>&1 || true
    SWIFT_WIPE=1 "$BENCH/peers/swift/stop.sh" >/dev/null 2>&1 || true
    NGINX_WIPE=1 "$BENCH/peers/nginx/stop.sh" >/dev/null 2>&1 || true
}
trap cleanup EXIT

machine_info() {
    echo "## machine"
    echo "date: $(date -u +%FT%TZ)  kernel: $(uname -r)  cores: $(nproc)  mem: $(free -g | awk '/Mem:/{print $2}') GiB"
    grep -m1 "model name" /proc/cpuinfo || true
    echo "loadavg: $(cat /proc/loadavg)"
    echo "python: $("$PY" -V 2>&1)  aiohttp: $("$PY" -c 'import aiohttp;print(aiohttp.__version__)')  uvloop: $("$PY" -c 'import uvloop;print(uvloop.__version__)')"
    echo "nginx: $(nginx -v 2>&1)"
    echo "swift: $(dpkg-query -W -f='${Version}' swift 2>/dev/null || echo 'not installed')  memcached: $(dpkg-query -W -f='${Version}' memcached 2>/dev/null || echo -)"
    echo "git: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null); modified tracked files: $(git -C "$ROOT" status --porcelain 2>/dev/null | grep -v '^??' | awk '{print $2}' | tr '\n' ' ')"
    git -C "$ROOT" diff > "$OUT_DIR/$NAME.tree.diff" 2>/dev/null || true
    [ -s "$OUT_DIR/$NAME.tree.diff" ] || rm -f "$OUT_DIR/$NAME.tree.diff"
}

{
machine_info
echo
echo "## setup"
# 1. the cluster (fsync on unless FSYNC=0), one pidfile per node so CPU is reported by node
"$AIS" cluster down --dir "$CL" --purge --yes >/dev/null 2>&1 || true
UPARGS=()
[ "${FSYNC:-1}" = 0 ] && UPARGS+=(--no-fsync)
"$AIS" cluster up --dir "$CL" --port "$PORT" --targets 3 --mountpaths 2 "${UPARGS[@]}" | grep AIS_ENDPOINT= | sed -n 1p
rm -rf "$PIDS"; mkdir -p "$PIDS"
"$PY" - "$CL/cluster.json" "$PIDS" <<'PYEOF'
import json, sys
doc = json.load(open(sys.argv[1]))
print("cluster fsync:", doc.get("fsync"))
for n in doc["nodes"]:
    open(f"{sys.argv[2]}/{n['name']}.pid", "w").write(f"{n['pid']}\n")
PYEOF
# shellcheck disable=SC2046
bench_prio $(cat "$PIDS"/*.pid)
EP=http://127.0.0.1:$PORT
if [ "${AIS_KEYS:-1}" = 1 ]; then
    "$AIS" s3 keys add --access-key "$KEY" --secret-key "$SECRET" --endpoint "$EP" | sed -n 1p
    echo "S3 access key configured: every request's SigV4 signature is verified"
else
    echo "no S3 access keys: anonymous access (signatures parsed, not verified)"
fi
# 2. Swift (1 replica, 2 proxy + 2 object workers; fsync of every PUT, which Swift cannot turn off)
RUN_PEERS=""
for p in $PEERS; do
    case $p in
    swift)
        if out=$("$BENCH/peers/swift/start.sh" 2>&1); then
            echo "$out"
            "$PY" "$BENCH/s3smoke.py" "http://127.0.0.1:$SWIFT_PORT" test:tester testing && RUN_PEERS="$RUN_PEERS swift"
        else
            echo "SWIFT DID NOT START: $out"
        fi ;;
    nginx)
        if NGINX_FILL="16KiB:100 8MiB:32" "$BENCH/peers/nginx/start.sh"; then RUN_PEERS="$RUN_PEERS nginx"
        else echo "NGINX DID NOT START"; fi ;;
    *) RUN_PEERS="$RUN_PEERS $p" ;;
    esac
done
echo "peers in this run:$RUN_PEERS"

export CUSTOM_ENDPOINT=$EP/s3 CUSTOM_KEY=$KEY CUSTOM_SECRET=$SECRET
CUSTOM_PIDS=$(echo "$PIDS"/*.pid)
export CUSTOM_PIDS
export PROCS DURATION WARMUP WRK=0 OUT=$JSONL
matrix() {  # reps concs cases peers [extra s3load args]
    [ "$1" -gt 0 ] || return 0
    REPS=$1 CONCS=$2 CASES=$3 PEERS=$4 EXTRA_ARGS=${5:-} "$BENCH/run_matrix.sh" 2>&1 \
        | grep -vE '^(get|put) [0-9]+[KM]iB c=' || true
}
echo
echo "## matrix, c=$CONCS, $REPS repetitions of ${WARMUP}+${DURATION} s"
matrix "$REPS" "$CONCS" "$CASES" "$RUN_PEERS"
echo
echo "## matrix, c=$CONCS64, $REPS64 repetitions"
matrix "$REPS64" "$CONCS64" "$CASES" "$RUN_PEERS"
if [ "${UNSIGNED_REPS:-2}" -gt 0 ]; then
    echo
    echo "## 8 MiB PUT with UNSIGNED-PAYLOAD (neither the cluster nor Swift's s3api then hashes the body with SHA-256)"
    matrix "${UNSIGNED_REPS:-2}" "$CONCS" "put:8MiB:128" "$(echo "$RUN_PEERS" | sed 's/ nginx//')" "--payload-hash unsigned"
fi

SPY=$(dirname "$PY")/py-spy
if [ "${PROFILE:-1}" = 1 ] && [ -x "$SPY" ]; then
    echo
    echo "## py-spy --gil profiles (Python CPU) of p0 and t0 under S3 load through the proxy, 8 s each"
    for spec in "get16k get 16KiB 100" "put16k put 16KiB 1000" "get8m get 8MiB 32"; do
        read -r pname pop psize pn <<<"$spec"
        # shellcheck disable=SC2046
        "$PY" "$BENCH/s3load.py" --endpoint "$EP/s3" --access-key "$KEY" --secret "$SECRET" --op "$pop" \
            --size "$psize" --objects "$pn" -c 16 --procs "$PROCS" --duration 12 --warmup 2 \
            --label "profile $pname" $(for f in "$PIDS"/*.pid; do echo "--server-pid $f"; done) \
            > "$OUT_DIR/$NAME.profiled-$pname.json" 2>/dev/null &
        BENCHPID=$!
        sleep 4
        for node in p0 t0; do
            "$SPY" record --format raw --gil -r 200 -d 8 -p "$(cat "$PIDS/$node.pid")" \
                -o "$OUT_DIR/$NAME.$node-$pname.collapsed" >/dev/null 2>&1 &
        done
        wait "$BENCHPID" || true
        wait
        for node in p0 t0; do
            "$PY" "$HERE/collapsed_top.py" "$OUT_DIR/$NAME.$node-$pname.collapsed" --top 25 --no-lines \
                > "$OUT_DIR/$NAME.$node-$pname.gil.txt" 2>/dev/null || true
            rm -f "$OUT_DIR/$NAME.$node-$pname.collapsed"
        done
        echo "### $pname: $("$PY" -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["ops_per_s"], "ops/s", r["MB_per_s"], "MB/s, cores by node", r["server_cores_by_pid"])' "$OUT_DIR/$NAME.profiled-$pname.json" 2>/dev/null)"
    done
fi

echo
echo "## results (medians; ratios per repetition pair runs of the same repetition)"
"$PY" "$HERE/s3_table.py" "$JSONL" --json "$OUT_DIR/$NAME.summary.json" | tee "$OUT_DIR/$NAME.md"
} 2>&1 | tee "$LOG"
echo "raw results: $JSONL  tables: $OUT_DIR/$NAME.md  summary: $OUT_DIR/$NAME.summary.json  log: $LOG" >&2

#!/usr/bin/env bash
# The standard matrix of issue 13, by one command: a fresh local cluster (1 proxy + 3 targets,
# 2 mountpaths each, fsync on), nginx (benchmarks/nginx_peer.sh: sendfile GETs, WebDAV PUTs) and
# OpenStack Swift with its S3 API (../shared/bench/peers/swift, 1 replica, fsync on PUT) on
# loopback, the same objects in each, then every cell of
#     SIZES (16KiB 1MiB 8MiB 64MiB) x OPS (get put) x CONCS (16 64)
# against ais (the native API through the proxy), ais-s3 (the cluster's S3 API, SigV4 verified),
# nginx and swift, plus `dd conv=fsync` on the mountpaths' filesystem (the raw-write baseline of
# the 8 MiB PUT goal), interleaved rep -> case -> concurrency -> target, all with the same client
# (aisloader.py). Then: JSON lines, a summary JSON with every ratio and goal, a PNG chart of the
# ratios, a markdown section, and that section regenerated in benchmarks/README.md (between its
# marker comments; nothing else in the file changes). Everything started here is stopped at the end.
#
#   benchmarks/run_matrix.sh                                        # the full matrix (~60 min)
#   REPS=1 DURATION=2 SIZES=16KiB CONCS=16 benchmarks/run_matrix.sh # a quick look (~2 min)
#
# Needs root once for the peers (apt-get): ../shared/bench/peers/{nginx,swift}/setup.sh, run here
# automatically when nginx or swift-proxy-server is missing (SETUP=0: don't); matplotlib (the
# `bench` extra: pip install -e '.[bench]'), installed into the venv when missing.
#
# Env (defaults in brackets):
#   REPS [3]  DURATION [10]  WARMUP [2]  PROCS [2] (client processes)  NICE [-10] (0 = leave)
#   DURATION_FOR ["64MiB=20/5"]  other windows (seconds/warm-up) for some sizes: at c64 one round of
#                64 MiB requests takes seconds, so a 10 s window would hold one or two rounds
#   SIZES ["16KiB 1MiB 8MiB 64MiB"]  OPS ["get put"]  CONCS ["16 64"]
#   TARGETS ["ais ais-s3 nginx swift dd"]  (also: ais-direct; a peer that fails to start is dropped)
#   DD_BYTES [1GiB] bytes per dd cell   DD_SIZES [8MiB] the PUT sizes dd runs for
#   QUIET_WAIT [$DURATION]  before each cell wait up to this many s for < QUIET_CORES [0.3] busy cores
#   MAX_OTHER [0.4] RETRIES [1]  re-run a cell once when other processes used more cores than this
#   WORK [/tmp/aisloader-matrix]  OUT_DIR [benchmarks/results]  NAME [matrix-<UTC date-time>]
#   PORT [33080] (cluster: 8 ports)  NGINX_PORT [33481]  SWIFT_PORT [33480]
#   SWIFT_BACKEND_PORT [33410] (3 ports)  SWIFT_MEMCACHE_PORT [33641]
#   README [benchmarks/README.md]  (empty: leave the README alone)
#   KEEP [0]  1 = leave the cluster and peers running at the end (stop them yourself)
set -euo pipefail
export NICE=${NICE:--10}
# shellcheck source=bench_lib.sh
. "$(dirname "$0")/bench_lib.sh"
bench_session "$@"
BENCH=$(cd "${BENCH:-$ROOT/../shared/bench}" && pwd)
NAME=${NAME:-matrix-$(date -u +%Y%m%d-%H%M)}
WORK=${WORK:-/tmp/aisloader-matrix}
PORT=${PORT:-33080}
export NGINX_PORT=${NGINX_PORT:-33481} NGINX_BENCH_DIR=$WORK/nginx
export SWIFT_PORT=${SWIFT_PORT:-33480} SWIFT_BACKEND_PORT=${SWIFT_BACKEND_PORT:-33410}
export SWIFT_MEMCACHE_PORT=${SWIFT_MEMCACHE_PORT:-33641} SWIFT_BENCH_DIR=$WORK/swift
REPS=${REPS:-3}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
PROCS=${PROCS:-2}
SIZES=${SIZES:-16KiB 1MiB 8MiB 64MiB}
OPS=${OPS:-get put}
CONCS=${CONCS:-16 64}
TARGETS=${TARGETS:-ais ais-s3 nginx swift dd}
DD_BYTES=${DD_BYTES:-1GiB}
DD_SIZES=${DD_SIZES:-8MiB}
DURATION_FOR=${DURATION_FOR-64MiB=20/5}
QUIET_WAIT=${QUIET_WAIT:-$DURATION}
README=${README-$HERE/README.md}
KEY=BENCHS3ACCESSKEY01
SECRET=benchS3SecretKey0000000000000001
mkdir -p "$OUT_DIR" "$WORK"
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo -)
DIRTY=$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null | wc -l || true)
[ "$DIRTY" -gt 0 ] && COMMIT="$COMMIT with $DIRTY modified tracked files"
JSONL=$OUT_DIR/$NAME.jsonl
LOG=$OUT_DIR/$NAME.log
CL=$WORK/cluster

cleanup() {
    [ "${KEEP:-0}" = 1 ] && { echo "KEEP=1: cluster $CL, nginx and swift under $WORK left running" >&2; return 0; }
    "$AIS" cluster down --dir "$CL" --purge --yes >/dev/null 2>&1 || true
    "$HERE/nginx_peer.sh" stop >/dev/null 2>&1 || true
    SWIFT_WIPE=1 "$BENCH/peers/swift/stop.sh" >/dev/null 2>&1 || true
    rm -rf "$NGINX_BENCH_DIR"
}
trap cleanup EXIT

objects() {  # op size -> how many keys a cell uses (PUT: >= 2 x the highest concurrency, for Swift)
    local maxc n
    maxc=$(echo "$CONCS" | tr ' ' '\n' | sort -n | tail -1)
    case "$1:$2" in
        get:16KiB) n=100 ;; get:1MiB) n=100 ;; get:8MiB) n=32 ;; get:64MiB) n=8 ;; get:*) n=32 ;;
        put:16KiB) n=1000 ;; put:1MiB) n=256 ;; *) n=128 ;;
    esac
    [ "$1" = put ] && [ "$n" -lt $((2 * maxc)) ] && n=$((2 * maxc))
    echo "$n"
}

has() { [[ " $TARGETS " == *" $1 "* ]]; }

swift_up() {  # seconds: wait that long at most for Swift's proxy to answer its health check
    for _ in $(seq 1 $(($1 * 5))); do
        curl -fsS "http://127.0.0.1:$SWIFT_PORT/healthcheck" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    return 1
}

machine_info() {
    echo "date: $(date -u +%FT%TZ)  kernel: $(uname -r)  cores: $(nproc)  mem: $(free -g | awk '/Mem:/{print $2}') GiB  loadavg: $(cut -d' ' -f1-3 /proc/loadavg)"
    grep -m1 "model name" /proc/cpuinfo || true
    echo "python: $("$PY" -V 2>&1)  aiohttp: $("$PY" -c 'import aiohttp;print(aiohttp.__version__)')  uvloop: $("$PY" -c 'import uvloop;print(uvloop.__version__)')"
    echo "nginx: $(nginx -v 2>&1 || echo -)  swift: $(dpkg-query -W -f='${Version}' swift 2>/dev/null || echo -)"
    echo "git: $COMMIT: $(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null | awk '{print $2}' | tr '\n' ' ')"
    echo "filesystem of the mountpaths (dd writes there): $(df -T "$WORK" | awk 'NR==2{print $1, $2}')"
}

{
echo "## machine"
machine_info
echo
echo "## setup"
if [ "${SETUP:-1}" = 1 ]; then
    if has nginx && ! command -v nginx >/dev/null; then "$BENCH/peers/nginx/setup.sh" >/dev/null; fi
    if has swift && ! command -v swift-proxy-server >/dev/null; then "$BENCH/peers/swift/setup.sh" >/dev/null; fi
fi
"$PY" -c 'import matplotlib' 2>/dev/null || "$PY" -m pip install -q 'matplotlib>=3.8'

# 1. the cluster: fresh, fsync on (the default), an S3 key so every S3 request's SigV4 is verified
# (PORT is in Linux's ephemeral range: a node's port can be taken by some client's outgoing
# connection for a while, and the node then fails to bind: try again)
for try in 1 2 3; do
    "$AIS" cluster down --dir "$CL" --purge --yes >/dev/null 2>&1 || true
    if up=$("$AIS" cluster up --dir "$CL" --port "$PORT" --targets 3 --mountpaths 2 2>&1); then
        echo "$up" | grep AIS_ENDPOINT= | sed -n 1p
        break
    fi
    echo "cluster up failed (try $try/3): $(echo "$up" | tail -1) $(grep -h 'Errno' "$CL"/*/node.log 2>/dev/null | tail -1)"
    [ "$try" = 3 ] && exit 1
    sleep 10
done
"$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["fsync"], "cluster without fsync"; print("cluster fsync:", d["fsync"])' "$CL/cluster.json"
# shellcheck disable=SC2046
bench_prio $("$PY" -c 'import json,sys; print(" ".join(str(n["pid"]) for n in json.load(open(sys.argv[1]))["nodes"]))' "$CL/cluster.json")
EP=http://127.0.0.1:$PORT
"$AIS" s3 keys add --access-key "$KEY" --secret-key "$SECRET" --endpoint "$EP" | sed -n 1p

# 2. the peers (a peer that does not start is dropped from the run, and the reason printed)
RUN=""
for t in $TARGETS; do
    case $t in
    nginx)
        "$HERE/nginx_peer.sh" stop >/dev/null 2>&1 || true
        rm -rf "$NGINX_BENCH_DIR"
        if "$HERE/nginx_peer.sh" start; then RUN="$RUN nginx"; bench_prio "$(cat "$NGINX_BENCH_DIR/master.pid")"
        else echo "NGINX DID NOT START: dropped"; fi ;;
    swift)
        # start.sh waits 20 s for the proxy; on a loaded machine its Python start-up takes longer
        SWIFT_WIPE=1 "$BENCH/peers/swift/stop.sh" >/dev/null 2>&1 || true
        out=$("$BENCH/peers/swift/start.sh" 2>&1) || true
        if swift_up "${SWIFT_WAIT:-90}"; then
            echo "$out" | grep -E '^(swift up|pids)' || echo "swift up after start.sh's own wait"
            # shellcheck disable=SC2046
            bench_prio $(cat "$SWIFT_BENCH_DIR"/run/*.pid)
            RUN="$RUN swift"
        else
            echo "SWIFT DID NOT START: dropped. Its output:"; echo "$out"
        fi ;;
    *) RUN="$RUN $t" ;;
    esac
done
echo "targets in this run:$RUN"

spec() {  # target name -> aisloader --target spec
    case $1 in
    ais)        echo "ais=ais:$EP,cluster=$CL" ;;
    ais-direct) echo "ais-direct=ais-direct:$EP,cluster=$CL" ;;
    ais-s3)     echo "ais-s3=s3:$EP/s3,ak=$KEY,sk=$SECRET,cluster=$CL" ;;
    nginx)      echo "nginx=plain:http://127.0.0.1:$NGINX_PORT,root=$NGINX_BENCH_DIR/www,pids=$NGINX_BENCH_DIR/master.pid" ;;
    swift)      echo "swift=s3:http://127.0.0.1:$SWIFT_PORT,ak=test:tester,sk=testing,pids=$SWIFT_BENCH_DIR/run/*.pid" ;;
    dd)         echo "dd=dd:$CL,bytes=$DD_BYTES,sizes=${DD_SIZES// /+}" ;;
    *) echo "unknown target $1" >&2; exit 2 ;;
    esac
}
TARGS=()
for t in $RUN; do TARGS+=(--target "$(spec "$t")"); done
CASES=""
PREP=()
for s in $SIZES; do
    for op in $OPS; do CASES="$CASES $op:$s:$(objects "$op" "$s")"; done
    # PUT-only runs still need the buckets (and prepare makes them): one object then
    if [[ " $OPS " == *" get "* ]]; then PREP+=(--case "$s:$(objects get "$s")"); else PREP+=(--case "$s:1"); fi
done
echo "cases:$CASES  concurrency: $CONCS  reps: $REPS  window: ${WARMUP}+${DURATION} s  client processes: $PROCS"

# 3. the same objects in every target (read back and MD5-checked)
echo
echo "## prepare"
if [ ${#PREP[@]} -gt 0 ]; then "$PY" "$HERE/aisloader.py" prepare "${TARGS[@]}" "${PREP[@]}"; fi

# 4. the matrix
echo
echo "## matrix"
"$PY" "$HERE/aisloader.py" matrix "${TARGS[@]}" --cases "$CASES" --concs "$CONCS" --reps "$REPS" \
    --duration "$DURATION" --warmup "$WARMUP" --procs "$PROCS" --quiet-wait "$QUIET_WAIT" \
    --quiet-cores "${QUIET_CORES:-0.3}" --max-other "${MAX_OTHER:-0.4}" --retries "${RETRIES:-1}" \
    $(for w in $DURATION_FOR; do echo "--duration-for $w"; done) --out "$JSONL" > /dev/null

# 5. summary, chart, tables, README section
echo
echo "## results"
NOTE="Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), kernel $(uname -r); commit $COMMIT; $(nginx -v 2>&1 | sed 's/^nginx version: //'), Swift $(dpkg-query -W -f='${Version}' swift 2>/dev/null || echo -). Client and servers share the cores: read the \`other cores\` column."
RARGS=(--summary "$OUT_DIR/$NAME.summary.json" --chart "$OUT_DIR/$NAME.png" --markdown "$OUT_DIR/$NAME.md" --note "$NOTE")
[ -n "$README" ] && RARGS+=(--readme "$README")
"$PY" "$HERE/bench_report.py" "$JSONL" "${RARGS[@]}"
} 2>&1 | tee "$LOG"
echo "raw: $JSONL  summary: $OUT_DIR/$NAME.summary.json  chart: $OUT_DIR/$NAME.png  markdown: $OUT_DIR/$NAME.md  log: $LOG" >&2

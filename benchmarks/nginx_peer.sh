#!/usr/bin/env bash
# nginx on loopback for aisloader.py: the configuration of ../shared/bench/peers/nginx
# (sendfile on, access_log off, one worker per core, keep-alive) plus a WebDAV PUT location.
#
#   benchmarks/nginx_peer.sh start     # root $D/www (GET), $D/put (PUT /put/...)
#   benchmarks/nginx_peer.sh stop      # kills the recorded master pid only
#
#   GET  http://127.0.0.1:$PORT/<bucket>/nb-<bytes>/<i:06d>       files written by `aisloader.py prepare`
#   PUT  http://127.0.0.1:$PORT/put/<bucket>/nb-<bytes>/<i:06d>   dav_methods PUT: body -> temp file -> rename
#
# Env: NGINX_BENCH_DIR [/tmp/native-bench/nginx]  NGINX_PORT [8581]  NGINX_WORKERS [2]
# nginx itself: apt-get install nginx-light (or ../shared/bench/peers/nginx/setup.sh); the Debian
# nginx-light build has the DAV module (`nginx -V` lists --with-http_dav_module).
set -euo pipefail
D=${NGINX_BENCH_DIR:-/tmp/native-bench/nginx}
PORT=${NGINX_PORT:-8581}
W=${NGINX_WORKERS:-2}
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}

start() {
    if [ -f "$D/nginx.pid" ] && kill -0 "$(cat "$D/nginx.pid")" 2>/dev/null; then
        echo "nginx already running (pid $(cat "$D/nginx.pid"))" >&2; return 0
    fi
    [ -x "$NGINX" ] || { echo "nginx not found: apt-get install nginx-light" >&2; exit 1; }
    "$NGINX" -V 2>&1 | grep -q -- --with-http_dav_module \
        || { echo "this nginx has no DAV module: PUT cells will fail" >&2; }
    mkdir -p "$D/www" "$D/put" "$D/tmp" "$D/logs"
    # started as root, nginx's workers run as `nobody`: they must be able to write PUTs
    [ "$(id -u)" = 0 ] && chown -R nobody "$D/put"
    cat > "$D/nginx.conf" <<CONF
worker_processes $W;
daemon off;
pid $D/nginx.pid;
error_log $D/logs/error.log warn;
events { worker_connections 4096; multi_accept on; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 75s;
    keepalive_requests 1000000;
    default_type application/octet-stream;
    client_body_temp_path $D/tmp/body;
    proxy_temp_path $D/tmp/proxy;
    fastcgi_temp_path $D/tmp/fastcgi;
    uwsgi_temp_path $D/tmp/uwsgi;
    scgi_temp_path $D/tmp/scgi;
    server {
        listen 127.0.0.1:$PORT backlog=4096;
        root $D/www;
        location / { }
        location /put/ {
            root $D;
            dav_methods PUT;
            create_full_put_path on;
            client_max_body_size 0;
            client_body_buffer_size 1m;
        }
    }
}
CONF
    setsid "$NGINX" -p "$D" -c "$D/nginx.conf" -e "$D/logs/error.log" >"$D/logs/stdout.log" 2>&1 &
    echo $! > "$D/master.pid"
    for _ in $(seq 1 50); do
        if curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/" 2>/dev/null | grep -q '^[24]'; then
            echo "nginx up: http://127.0.0.1:$PORT (workers=$W, root=$D/www, master pid $(cat "$D/master.pid"))"
            return 0
        fi
        sleep 0.1
    done
    echo "nginx did not come up" >&2; cat "$D/logs/"*.log >&2; exit 1
}

stop() {
    [ -f "$D/master.pid" ] || return 0
    pid=$(cat "$D/master.pid")
    if kill -0 "$pid" 2>/dev/null; then
        kill -QUIT "$pid"
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -TERM "$pid"
        echo "stopped nginx ($pid)"
    fi
    rm -f "$D/master.pid"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac

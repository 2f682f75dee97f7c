"""moto's S3 server wrapped to count requests and optionally slow response bodies.

Run: python moto_counting.py PORT
Control: GET /_emu/count -> {"GET /bucket/key": n, ...}; DELETE /_emu/count resets;
POST /_emu/slow?bytes_per_s=N throttles response bodies (0 = full speed);
POST /_emu/fail?status=503&count=N makes the next N object requests fail with that status.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections import Counter
from typing import Any, Callable, Iterable
from urllib.parse import unquote

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple

_counts: Counter[str] = Counter()
_lock = threading.Lock()
_slow = {"bytes_per_s": 0}
_fail = {"status": 0, "left": 0}   # the next `left` object requests answer `status` (e.g. 503 SlowDown)


def _throttled(body: Iterable[bytes], rate: int) -> Iterable[bytes]:
    for chunk in body:
        for i in range(0, len(chunk), 64 << 10):
            piece = chunk[i:i + (64 << 10)]
            time.sleep(len(piece) / rate)
            yield piece


def app_factory() -> Callable[..., Any]:
    moto_app = DomainDispatcherApplication(create_backend_app)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ["REQUEST_METHOD"]
        if path == "/_emu/count":
            if method == "DELETE":
                with _lock:
                    _counts.clear()
            with _lock:
                body = json.dumps(dict(_counts)).encode()
            start_response("200 OK", [("Content-Type", "application/json")])
            return [body]
        if path == "/_emu/slow":
            qs = dict(p.split("=", 1) for p in environ.get("QUERY_STRING", "").split("&") if "=" in p)
            _slow["bytes_per_s"] = int(qs.get("bytes_per_s", "0"))
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok"]
        if path == "/_emu/fail":
            qs = dict(p.split("=", 1) for p in environ.get("QUERY_STRING", "").split("&") if "=" in p)
            _fail["status"], _fail["left"] = int(qs.get("status", "503")), int(qs.get("count", "1"))
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok"]
        with _lock:
            _counts[f"{method} {unquote(path)}"] += 1
            failing = _fail["left"] > 0 and path.count("/") >= 2   # object requests only
            if failing:
                _fail["left"] -= 1
        if failing:
            code = {503: "SlowDown", 429: "TooManyRequests"}.get(_fail["status"], "InternalError")
            start_response(f"{_fail['status']} Injected", [("Content-Type", "application/xml")])
            return [f"<Error><Code>{code}</Code><Message>injected by the test</Message></Error>".encode()]
        result: Iterable[bytes] = moto_app(environ, start_response)
        rate = _slow["bytes_per_s"]
        return _throttled(result, rate) if rate else result
    return app


if __name__ == "__main__":
    os.environ.setdefault("MOTO_PORT", sys.argv[1])  # moto tells path-style from host-style by it
    run_simple("127.0.0.1", int(sys.argv[1]), app_factory(), threaded=True)

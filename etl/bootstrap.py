"""The local stand-in for the `aistorage/runtime_python` image that `Etl.init_class` names.

Reads the cloudpickled `ETLServer` subclass from `ETL_CLASS_PAYLOAD` (base64), instantiates it
and serves it on the port the target assigned: FastAPI, Flask and HTTPMultiThreaded servers of
`aistore.sdk.etl.webserver` run unchanged (their `host`/`port` attributes are set before
`start()`). `PACKAGES` names PyPI packages the class needs: missing ones are installed with pip
into this interpreter's environment (when `ETL_PIP_INSTALL` is not `false`).
"""

from __future__ import annotations

import argparse
import base64
import importlib.util
import os
import subprocess
import sys
from typing import Any


def _missing(packages: list[str]) -> list[str]:
    missing = []
    for spec in packages:
        module = spec.split("==")[0].split(">=")[0].split("[")[0].strip().replace("-", "_")
        if module and importlib.util.find_spec(module) is None:
            missing.append(spec)
    return missing


def load_class(payload: str) -> Any:
    import cloudpickle
    return cloudpickle.loads(base64.b64decode(payload))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--host", default=os.environ.get("ETL_HOST", "127.0.0.1"))
    ap.add_argument("--port", type=int, default=int(os.environ.get("ETL_PORT", "8000")))
    args = ap.parse_args(sys.argv[1:] if argv is None else argv)
    payload = os.environ.get("ETL_CLASS_PAYLOAD", "")
    if not payload:
        sys.exit("ETL_CLASS_PAYLOAD is not set: nothing to run")
    packages = [p for p in os.environ.get("PACKAGES", "").split(",") if p.strip()]
    missing = _missing(packages)
    if missing and os.environ.get("ETL_PIP_INSTALL", "true").lower() != "false":
        print(f"installing {missing}", flush=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", *missing], check=True)
    if os.environ.get("OS_PACKAGES"):
        print(f"OS_PACKAGES={os.environ['OS_PACKAGES']!r} ignored: the local runtime installs no system "
              "packages", flush=True)
    cls = load_class(payload)
    server = cls()
    server.host, server.port = args.host, args.port
    print(f"starting {cls.__name__} on {args.host}:{args.port}", flush=True)
    server.start()


if __name__ == "__main__":
    main()

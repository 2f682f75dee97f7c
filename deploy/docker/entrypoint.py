#!/usr/bin/env python3
"""The container's entrypoint: run one node, or check its health.

    ais-entrypoint proxy|target [aisnode options]   # exec aisnode with that role
    ais-entrypoint health                           # exit 0 when the node answers /v1/health

The config file is $AIS_CONFIG (default /etc/ais/ais.json) when it exists; AIS_<SECTION>_<KEY>
variables override it (ais/config.py). Without AIS_NET_HOSTNAME the node advertises the
container's own address (what Docker networks route), not 127.0.0.1.
"""

from __future__ import annotations

import os
import socket
import sys
import urllib.request

DEFAULT_CONFIG = "/etc/ais/ais.json"
ROLES = ("proxy", "target")


def node_address() -> str:
    """AIS_NET_HOSTNAME, else this container's address (its host name resolved)."""
    return os.environ.get("AIS_NET_HOSTNAME") or socket.gethostbyname(socket.gethostname())


def config_path() -> str | None:
    path = os.environ.get("AIS_CONFIG", DEFAULT_CONFIG)
    return path if os.path.isfile(path) else None


def aisnode_argv(args: list[str]) -> list[str]:
    """The aisnode command line for `ROLE [options]` (the role may come from AIS_NODE_ROLE instead)."""
    role, rest = (args[0], args[1:]) if args and args[0] in ROLES else (os.environ.get("AIS_NODE_ROLE", ""), args)
    if role not in ROLES:
        raise SystemExit("usage: ais-entrypoint proxy|target [aisnode options] | health "
                         "(or set AIS_NODE_ROLE=proxy|target)")
    path = config_path()
    return ["aisnode", "--role", role] + (["--config", path] if path and "--config" not in rest else []) + rest


def health() -> int:
    """The node's /v1/health on its public port (from the same config and environment it runs with)."""
    from ais import config
    url = f"http://{node_address()}:{config.load(config_path()).net.public_port}/v1/health"
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return 0 if r.status == 200 else 1
    except OSError as exc:
        print(f"{url}: {exc}", file=sys.stderr)
        return 1


def main(args: list[str]) -> int:
    if args[:1] == ["health"]:
        return health()
    argv = aisnode_argv(args)
    os.environ["AIS_NET_HOSTNAME"] = node_address()
    os.execvp(argv[0], argv)
    return 127   # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

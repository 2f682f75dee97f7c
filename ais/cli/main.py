"""`ais`: the command line: `ais cluster up|down|status`, `ais s3 keys add|ls|rm`."""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from typing import Any

from ais.cli import localcluster


def _table(rows: list[dict[str, object]], cols: list[str]) -> str:
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in cols}
    lines = ["  ".join(c.upper().ljust(widths[c]) for c in cols)]
    lines += ["  ".join(str(r[c]).ljust(widths[c]) for c in cols) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def cmd_cluster_up(a: argparse.Namespace) -> int:
    spec = localcluster.up(a.dir, a.proxies, a.targets, a.mountpaths, a.port, fsync=not a.no_fsync)
    n_p = sum(1 for n in spec.nodes if n.role == "proxy")
    print(f"Cluster ready: {n_p} prox{'y' if n_p == 1 else 'ies'}, {len(spec.nodes) - n_p} target(s), data in {spec.root}")
    print(f"AIS_ENDPOINT={spec.endpoint}")
    print(f"\n  export AIS_ENDPOINT={spec.endpoint}")
    print(f"  python -c \"from aistore import Client; print(Client('{spec.endpoint}').cluster().get_info())\"")
    print("  ais cluster status        ais cluster down [--purge]")
    return 0


def cmd_cluster_down(a: argparse.Namespace) -> int:
    if a.purge and not a.yes and sys.stdin.isatty():
        answer = input(f"Stop the cluster and delete ALL its data in {a.dir}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("aborted")
            return 1
    stopped = localcluster.down(a.dir, purge=a.purge)
    print(f"stopped {stopped} node(s)" + (f"; removed {a.dir}" if a.purge else ""))
    return 0


def cmd_cluster_status(a: argparse.Namespace) -> int:
    rows = localcluster.status(a.dir)
    if a.json:
        print(json.dumps(rows, indent=2))
    else:
        print(_table(rows, ["name", "role", "id", "url", "pid", "state", "mountpaths"]))
    return 0


class CommandError(Exception):
    """A one-line error for the user."""


def _endpoint(a: argparse.Namespace) -> str:
    return str(a.endpoint or os.environ.get("AIS_ENDPOINT") or f"http://127.0.0.1:{localcluster.DEFAULT_PORT}")


def _call(a: argparse.Namespace, method: str, path: str, body: Any = None) -> Any:
    url = _endpoint(a).rstrip("/") + path
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            raw = r.read()
    except urllib.error.HTTPError as exc:
        text = exc.read().decode("utf-8", "replace")
        try:
            text = json.loads(text).get("message", text)
        except ValueError:
            pass
        raise CommandError(f"{method} {url}: {exc.code} {text.strip()}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise CommandError(f"cannot reach {url}: {exc}") from None
    return json.loads(raw) if raw else None


def cmd_s3_keys_add(a: argparse.Namespace) -> int:
    body = {k: v for k, v in (("access_key", a.access_key), ("secret_key", a.secret_key)) if v}
    key = _call(a, "POST", "/v1/s3/keys", body)
    print(f"access key: {key['access_key']}\nsecret key: {key['secret_key']}")
    print("(the secret is not shown again; S3 requests must now be signed with a configured key)")
    return 0


def cmd_s3_keys_ls(a: argparse.Namespace) -> int:
    keys = _call(a, "GET", "/v1/s3/keys")
    if a.json:
        print(json.dumps(keys, indent=2))
    elif keys:
        print(_table(keys, ["access_key"]))
    else:
        print("no S3 access keys: anonymous S3 access is allowed")
    return 0


def cmd_s3_keys_rm(a: argparse.Namespace) -> int:
    _call(a, "DELETE", f"/v1/s3/keys/{a.key}")
    print(f"removed access key {a.key}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="ais", description="Manage an ais cluster.")
    sub = ap.add_subparsers(dest="group", required=True)
    cl = sub.add_parser("cluster", help="local cluster: up, down, status")
    cls = cl.add_subparsers(dest="cmd", required=True)

    up = cls.add_parser("up", help="start a local cluster in the background",
                        epilog="example: ais cluster up --targets 3 --mountpaths 2 --dir ~/.ais/cluster")
    up.add_argument("--proxies", type=int, default=1)
    up.add_argument("--targets", type=int, default=3)
    up.add_argument("--mountpaths", type=int, default=2, help="mountpaths (directories) per target")
    up.add_argument("--dir", default=localcluster.DEFAULT_DIR, help="data and state directory")
    up.add_argument("--port", type=int, default=localcluster.DEFAULT_PORT, help="first port; each node takes two")
    up.add_argument("--no-fsync", action="store_true", help="do not fsync objects (faster, less durable)")
    up.set_defaults(fn=cmd_cluster_up)

    down = cls.add_parser("down", help="stop the local cluster", epilog="example: ais cluster down --purge --yes")
    down.add_argument("--dir", default=localcluster.DEFAULT_DIR)
    down.add_argument("--purge", action="store_true", help="also delete all data")
    down.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    down.set_defaults(fn=cmd_cluster_down)

    st = cls.add_parser("status", help="show the nodes of the local cluster", epilog="example: ais cluster status --json")
    st.add_argument("--dir", default=localcluster.DEFAULT_DIR)
    st.add_argument("--json", action="store_true")
    st.set_defaults(fn=cmd_cluster_status)

    s3 = sub.add_parser("s3", help="S3 front end: access keys")
    s3s = s3.add_subparsers(dest="cmd", required=True)
    keys = s3s.add_parser("keys", help="manage S3 access keys").add_subparsers(dest="keycmd", required=True)
    add = keys.add_parser("add", help="add an access key (generated unless given)",
                          epilog="example: ais s3 keys add   |   ais s3 keys add --access-key AKTRAINING0000000001")
    add.add_argument("--access-key")
    add.add_argument("--secret-key")
    add.set_defaults(fn=cmd_s3_keys_add)
    ls = keys.add_parser("ls", help="list access keys (never their secrets)", epilog="example: ais s3 keys ls --json")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(fn=cmd_s3_keys_ls)
    rm = keys.add_parser("rm", help="remove an access key", epilog="example: ais s3 keys rm AKTRAINING0000000001")
    rm.add_argument("key")
    rm.set_defaults(fn=cmd_s3_keys_rm)
    for p in (add, ls, rm):
        p.add_argument("--endpoint", help="cluster endpoint (default: $AIS_ENDPOINT, else the local cluster)")
    return ap


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        sys.exit(args.fn(args))
    except (localcluster.ClusterError, CommandError) as exc:
        print(f"ais: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()

"""`ais`: the command line. This issue's scope: `ais cluster up|down|status`."""

from __future__ import annotations

import argparse
import json
import sys

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
    return ap


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        sys.exit(args.fn(args))
    except localcluster.ClusterError as exc:
        print(f"ais: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()

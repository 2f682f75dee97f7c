"""`ais storage mountpath ls|attach|detach|enable|disable`: a target's mountpaths at runtime
(wire: `GET /v1/cluster?what=mountpaths`, `PUT /v1/daemon/mountpaths` on the target; each change
starts a resilver job on that target)."""

from __future__ import annotations

import argparse
import time
from typing import Any

from ais.cli import render
from ais.cli.common import CommandError, client, unsupported
from ais.cli.show import statuses
from ais.client import Client, StatusError
from ais.cmap import Node

ACTIONS = {"attach": "attach-mp", "detach": "detach-mp", "enable": "enable-mp", "disable": "disable-mp"}
HELP = {
    "attach": "add a mountpath (a directory or a disk's mount point) to a target; a resilver moves its share "
              "of objects onto it",
    "detach": "remove a mountpath from a target: a resilver moves its objects to the others first "
              "(--force: at once, its data left behind)",
    "enable": "put a disabled mountpath back in service (its objects are visible again; a resilver follows)",
    "disable": "take a mountpath out of service without moving its data (its objects are invisible until "
               "enabled; mirror copies elsewhere are restored by a resilver)",
}


def _target(c: Client, node_id: str) -> Node:
    smap = c.cluster_map(refresh=True)
    node = smap.targets.get(node_id) or smap.targets.get(node_id.removeprefix("t[").rstrip("]"))
    if node is None:
        raise CommandError(f"no target {node_id!r} in the cluster map (see 'ais show cluster')")
    return node


def cmd_ls(a: argparse.Namespace) -> int:
    c = client(a)
    smap = c.cluster_map(refresh=True)
    try:
        lists: dict[str, Any] = c.request("GET", "/v1/cluster", params=[("what", "mountpaths")]).json()
    except StatusError as exc:
        raise unsupported("mountpath ls", exc) from None
    if a.json:
        render.print_json(lists)
        return 0
    st = statuses(c, list(smap.targets.values()))
    rows = []
    for tid in sorted(lists):
        doc = lists[tid] or {}
        if doc.get("error"):
            rows.append([f"t[{tid}]", "-", "offline", "-", "-", "-"])
            continue
        disks = st.get(tid, {}).get("mountpaths") or {}
        for state, key in (("available", "available"), ("detaching", "waiting_dd"), ("disabled", "disabled")):
            for mp in doc.get(key) or []:
                d = disks.get(mp) or {}
                total, avail = int(d.get("total", 0)), int(d.get("avail", 0))
                rows.append([f"t[{tid}]", mp, state, render.human_size(total - avail) if total else "-",
                             render.human_size(avail) if total else "-", render.human_size(total) if total else "-"])
    print(render.table(["TARGET", "MOUNTPATH", "STATE", "USED", "AVAIL", "TOTAL"], rows, no_headers=a.no_headers,
                       right=["USED", "AVAIL", "TOTAL"]))
    return 0


def cmd_change(a: argparse.Namespace) -> int:
    c = client(a)
    node = _target(c, a.node)
    params = [("frc", "true")] if getattr(a, "force", False) else []
    try:
        answer = c.request("PUT", "/v1/daemon/mountpaths", params=params,
                           body={"action": ACTIONS[a.cmd], "value": a.path}, node_url=node.public_url,
                           idempotent=False)
    except StatusError as exc:
        raise unsupported(f"mountpath {a.cmd}", exc) from None
    job = answer.text.strip()
    past = {"attach": "attached", "detach": "detaching", "enable": "enabled", "disable": "disabled"}[a.cmd]
    print(f"{past} mountpath {a.path} on t[{node.id}]" + (f": resilver job {job}" if job else ""))
    if job and a.wait:
        _wait(c, job, a.timeout)
        print(f"resilver {job} finished")
    elif job:
        print(f"To monitor the progress, run 'ais show job {job}'")
    return 0


def _wait(c: Client, job: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        status = c.request("GET", "/v1/cluster", params=[("what", "status")], body={"id": job}).json()
        if status.get("end_time"):
            if status.get("err") or status.get("aborted"):
                raise CommandError(f"resilver {job} did not finish cleanly: {status.get('err') or 'aborted'}")
            return
        if time.monotonic() > deadline:
            raise CommandError(f"resilver {job} still running after {timeout_s:.0f} s")
        time.sleep(0.2)


def add_commands(mg: Any, leaf: Any, out_opts: Any) -> None:
    """The `ais storage mountpath` subcommands, under the group `mg` (main.py's helpers passed in)."""
    p = leaf(mg, "ls", cmd_ls, "list every target's mountpaths and their state",
             ["ais storage mountpath ls", "ais storage mountpath ls --json"])
    out_opts(p)
    for name, helptext in HELP.items():
        p = leaf(mg, name, cmd_change, helptext, [f"ais storage mountpath {name} TARGET_ID /data/3"])
        p.add_argument("node", metavar="TARGET_ID")
        p.add_argument("path")
        if name == "detach":
            p.add_argument("--force", action="store_true", help="detach at once, without moving its data off")
        p.add_argument("--wait", action="store_true", help="wait for the resilver to finish")
        p.add_argument("--timeout", type=float, default=600.0, metavar="SECONDS", help="how long --wait waits")
        p.set_defaults(cmd=name)

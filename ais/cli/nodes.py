"""Cluster membership: `ais cluster add|rm|shutdown|maintenance start|stop` (AIStore's
`ais cluster add-remove-nodes join|decommission|shutdown|start-maintenance|stop-maintenance`).

Wire: `POST /v1/cluster/join-by-admin` with the node's Snode (answer `{"daemon_id",
"rebalance_id"}`), and `PUT /v1/cluster` with `{"action": decommission-node | shutdown-node |
rm-unsafe | start-maintenance | stop-maintenance, "value": {"sid", "skip_rebalance",
"rm_user_data", "keep_initial_config", "no_shutdown"}}` (answer: the rebalance job ID, if any).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from ais.cli import render
from ais.cli.common import CommandError, client, confirm, unsupported
from ais.client import Client, ClientError, StatusError
from ais.cmap import Node


def node_arg(c: Client, text: str) -> Node:
    """A node of the cluster map by ID, also written `t[ID]` or `p[ID]`."""
    nid = text.removeprefix("p[").removeprefix("t[").rstrip("]")
    node = c.cluster_map(refresh=True).get(nid)
    if node is None:
        raise CommandError(f"no node {text!r} in the cluster map (see 'ais show cluster')")
    return node


def _admin(c: Client, what: str, method: str, path: str, body: Any) -> str:
    try:
        return c.request(method, path, body=body, idempotent=False).text
    except StatusError as exc:
        raise unsupported(what, exc) from None


def _report(a: argparse.Namespace, doc: dict[str, Any], line: str, job: str) -> None:
    if a.json:
        render.print_json(doc)
        return
    print(line)
    if job:
        print(f"Started rebalance {job!r} (to monitor, run 'ais show job {job}')")


def _until(what: str, timeout_s: float, done: Any) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() >= deadline:
            raise CommandError(f"{what} not done after {render.human_duration(timeout_s)}")
        time.sleep(0.2)


def _wait_job(a: argparse.Namespace, c: Client, job: str) -> None:
    if job and a.wait:
        from ais.cli import jobs
        jobs.wait(c, job, a.timeout, f"rebalance {job}")


def _gone(c: Client, node: Node) -> bool:
    """The node's process no longer answers."""
    try:
        c.request("GET", "/v1/health", node_url=node.public_url, idempotent=False)   # one try, no retries
    except StatusError:
        return False
    except ClientError:
        return True
    return False


# --- add ----------------------------------------------------------------------------------------

def cmd_add(a: argparse.Namespace) -> int:
    c = client(a)
    url = a.url if "://" in a.url else f"http://{a.url}"
    body = {"daemon_type": a.role, "public_net": {"direct_url": url}} if a.role else {"public_net": {"direct_url": url}}
    try:
        res = c.request("POST", "/v1/cluster/join-by-admin", body=body, idempotent=False).json()
    except StatusError as exc:
        raise unsupported("cluster add", exc) from None
    sid, job = str(res.get("daemon_id", "")), str(res.get("rebalance_id", "") or "")
    node = c.cluster_map(refresh=True).get(sid)
    role = node.role if node is not None else a.role or "node"
    _report(a, {"daemon_id": sid, "role": role, "url": url, "rebalance_id": job},
            f"{'t' if role == 'target' else 'p'}[{sid}] ({role} at {url}) joined the cluster", job)
    _wait_job(a, c, job)
    return 0


# --- rm, shutdown -------------------------------------------------------------------------------

def cmd_rm(a: argparse.Namespace) -> int:
    c = client(a)
    node = node_arg(c, a.node)
    action = "rm-unsafe" if a.unsafe else "decommission-node"
    confirm(a, f"{'Remove' if a.unsafe else 'Decommission'} {node.display} and remove it from the cluster?")
    value = {"sid": node.id, "skip_rebalance": a.no_rebalance or a.unsafe, "rm_user_data": a.rm_user_data,
             "keep_initial_config": a.keep_initial_config, "no_shutdown": a.no_shutdown}
    job = _admin(c, "cluster rm", "PUT", "/v1/cluster", {"action": action, "value": value}).strip()
    if a.unsafe:
        line = f"{node.display} removed from the cluster map (no rebalance)"
    elif job:
        line = f"{node.display} is being decommissioned: it leaves the cluster once rebalance {job} has finished"
    else:
        line = f"{node.display} is being decommissioned (no rebalance)"
    _report(a, {"node": node.id, "action": action, "rebalance_id": job}, line, job)
    if a.wait:
        _wait_job(a, c, job)
        _until(f"removing {node.display}", a.timeout, lambda: c.cluster_map(refresh=True).get(node.id) is None)
        if not a.no_shutdown:
            _until(f"{node.display} exiting", a.timeout, lambda: _gone(c, node))
        if not a.json:
            print(f"{node.display} has left the cluster" + ("" if a.no_shutdown else " and exited"))
    return 0


def cmd_shutdown(a: argparse.Namespace) -> int:
    c = client(a)
    node = node_arg(c, a.node)
    confirm(a, f"Shut down {node.display}?")
    job = _admin(c, "cluster shutdown", "PUT", "/v1/cluster",
                 {"action": "shutdown-node", "value": {"sid": node.id, "skip_rebalance": a.no_rebalance}}).strip()
    _report(a, {"node": node.id, "action": "shutdown-node", "rebalance_id": job},
            f"{node.display} is shutting down" + (f" once rebalance {job} has finished" if job else "")
            + "; it stays in the cluster map in maintenance: restart it, then 'ais cluster maintenance stop "
            + node.id + "'", job)
    if a.wait:
        _wait_job(a, c, job)
        _until(f"{node.display} exiting", a.timeout, lambda: _gone(c, node))
        if not a.json:
            print(f"{node.display} has exited")
    return 0


def cmd_maintenance(a: argparse.Namespace) -> int:
    c = client(a)
    node = node_arg(c, a.node)
    action = "start-maintenance" if a.cmd == "start" else "stop-maintenance"
    job = _admin(c, f"maintenance {a.cmd}", "PUT", "/v1/cluster",
                 {"action": action, "value": {"sid": node.id, "skip_rebalance": a.no_rebalance}}).strip()
    _report(a, {"node": node.id, "action": action, "rebalance_id": job},
            f"{node.display} is {'now in maintenance' if a.cmd == 'start' else 'active again'}", job)
    _wait_job(a, c, job)
    return 0

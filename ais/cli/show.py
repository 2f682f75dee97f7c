"""`ais show cluster|performance|storage`, `ais storage mountpath ls|attach|detach`, and
`ais cluster set-primary` (what the server supports; anything else is the server's error, reported
as such). Membership (`ais cluster add|rm|shutdown|maintenance`) is in nodes.py."""

from __future__ import annotations

import argparse
import concurrent.futures
import time
import urllib.parse
from typing import Any

from ais.cli import render
from ais.cli.common import CommandError, client, unsupported
from ais.client import ClientError, Client, StatusError
from ais.cmap import ClusterMap, Node


def node_status(c: Client, node: Node) -> dict[str, Any]:
    """The node's own report (`what=node_status`), or {"error": ...} when it cannot be reached."""
    try:
        doc = c.request("GET", "/v1/daemon", params=[("what", "node_status")], node_url=node.public_url).json()
    except ClientError as exc:
        return {"error": exc.message}
    return doc if isinstance(doc, dict) else {}


def statuses(c: Client, nodes: list[Node]) -> dict[str, dict[str, Any]]:
    with concurrent.futures.ThreadPoolExecutor(max(1, min(16, len(nodes)))) as pool:
        return dict(zip((n.id for n in nodes), pool.map(lambda n: node_status(c, n), nodes)))


def _state(node: Node, st: dict[str, Any]) -> str:
    if st.get("error"):
        return "offline"
    if node.flags & 8:
        return "decommissioning"
    if node.in_maintenance:
        return "maintenance"
    return "online"


def _uptime(st: dict[str, Any]) -> str:
    ns = st.get("uptime_ns")
    return render.human_duration(ns / 1e9) if isinstance(ns, (int, float)) else "-"


def filesystems(node: Node, st: dict[str, Any]) -> dict[tuple[str, str], tuple[int, int]]:
    """(host, filesystem) -> (used, total) bytes of a target's mountpaths: mountpaths that share a
    filesystem (its device, `fs`) count once, on one host; a node that does not say counts each."""
    host = urllib.parse.urlsplit(node.public_url).hostname or node.public_url
    out: dict[tuple[str, str], tuple[int, int]] = {}
    for mp, m in (st.get("mountpaths") or {}).items():
        total, avail = int(m.get("total", 0)), int(m.get("avail", 0))
        out[(host, f"dev:{m['fs']}" if "fs" in m else f"path:{mp}")] = (total - avail, total)
    return out


def capacity(fss: dict[tuple[str, str], tuple[int, int]]) -> tuple[int, int]:
    """(used, total) over distinct filesystems."""
    return sum(u for u, _ in fss.values()), sum(t for _, t in fss.values())


def _capacity(node: Node, st: dict[str, Any]) -> tuple[int, int]:
    return capacity(filesystems(node, st))


def _sorted(nodes: Any) -> list[Node]:
    return sorted(nodes, key=lambda n: n.id)


# --- show cluster -----------------------------------------------------------------------------

def cmd_cluster(a: argparse.Namespace) -> int:
    c = client(a)
    smap = c.cluster_map(refresh=True)
    proxies, targets = _sorted(smap.proxies.values()), _sorted(smap.targets.values())
    which = (a.which or "").lower()
    if which not in ("", "proxy", "target") and smap.get(a.which) is None:
        raise CommandError(f"no node {a.which!r} in the cluster map (expected proxy, target or a node ID)")
    st = statuses(c, proxies + targets)
    if a.json:
        render.print_json({"uuid": smap.uuid, "version": smap.version, "primary": smap.primary_id,
                           "proxies": {n.id: {"url": n.public_url, "flags": n.flags, "status": st[n.id]}
                                       for n in proxies},
                           "targets": {n.id: {"url": n.public_url, "flags": n.flags, "status": st[n.id]}
                                       for n in targets}})
        return 0
    if which in ("", "proxy") or smap.get(a.which) in proxies:
        rows = [[f"p[{n.id}]" + (" (primary)" if n.id == smap.primary_id else ""), n.public_url, _uptime(st[n.id]),
                 _state(n, st[n.id])] for n in proxies if which in ("", "proxy") or n.id == a.which]
        print(render.table(["PROXY", "PUBLIC URL", "UPTIME", "STATUS"], rows, no_headers=a.no_headers))
    if which in ("", "target") or smap.get(a.which) in targets:
        if which == "":
            print()
        rows = []
        for n in targets:
            if which not in ("", "target") and n.id != a.which:
                continue
            used, total = _capacity(n, st[n.id])
            load = (st[n.id].get("load") or {}).get("overall", "-")
            rows.append([f"t[{n.id}]", n.public_url, str(len(st[n.id].get("mountpaths") or {}) or "-"),
                         render.human_size(used) if total else "-", render.human_size(total) if total else "-",
                         f"{used * 100 / total:.0f}%" if total else "-", load, _uptime(st[n.id]),
                         _state(n, st[n.id])])
        print(render.table(["TARGET", "PUBLIC URL", "MOUNTPATHS", "USED", "CAPACITY", "USED%", "LOAD", "UPTIME",
                            "STATUS"], rows, no_headers=a.no_headers, right=["USED", "CAPACITY", "USED%"]))
    if which == "" and not a.no_headers:
        print(f"\nCluster map v{smap.version}, UUID {smap.uuid}: {len(proxies)} prox{'y' if len(proxies) == 1 else 'ies'},"
              f" {len(targets)} target{'s' if len(targets) != 1 else ''}; primary p[{smap.primary_id}]")
    return 0


# --- show performance ---------------------------------------------------------------------------
# Read from every target's /metrics, the numbers Prometheus scrapes (deploy/README.md, Metrics).

_GRADES = ("-", "low", "moderate", "high", "critical")
_OBJECT_GROUPS = ("objects", "s3")   # request groups (path after /v1/) that are object reads and writes


def scrape(c: Client, node: Node) -> dict[str, list[tuple[dict[str, str], float]]]:
    """A node's /metrics as {sample name: [(labels, value)]}; {"error": ...} when unreachable."""
    from prometheus_client.parser import text_string_to_metric_families
    try:
        text = c.request("GET", "/metrics", node_url=node.public_url).text
    except ClientError as exc:
        return {"error": [({"message": exc.message}, 0.0)]}
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text + "\n"):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((dict(sample.labels), float(sample.value)))
    return out


def perf_summary(m: dict[str, list[tuple[dict[str, str], float]]]) -> dict[str, Any]:
    """One target's load and counters, from its metrics (the keys of `ais show performance --json`)."""
    if "error" in m:
        return {"error": m["error"][0][0]["message"]}

    def one(name: str, **want: str) -> float:
        return sum(v for labels, v in m.get(name, ()) if all(labels.get(k) == x for k, x in want.items()))

    def objects(name: str, verb: str) -> float:
        return sum(v for labels, v in m.get(name, ()) if labels.get("verb") == verb
                   and labels.get("group") in _OBJECT_GROUPS)

    grades = {labels["dimension"]: int(v) for labels, v in m.get("ais_load_grade", ())}
    return {
        "cpu_pct": one("ais_cpu_percent"), "mem_available_pct": one("ais_mem_available_percent"),
        "disk_util_pct": {labels["mountpath"]: v for labels, v in m.get("ais_disk_util_percent", ())},
        "net_bytes_per_s": one("ais_net_bytes_per_second", link="external"),
        "inflight": int(one("ais_inflight_requests")), "open_files": int(one("ais_open_files")),
        "grades": {dim: _GRADES[g] for dim, g in grades.items() if 0 < g < len(_GRADES)},
        "overall": _GRADES[max(grades.values(), default=0)] if grades else "-",
        "get": int(objects("ais_requests_total", "GET")), "put": int(objects("ais_requests_total", "PUT")),
        "get_seconds": objects("ais_request_latency_seconds_sum", "GET"),
        "errors": int(one("ais_errors_total")),
        "bytes_received": int(one("ais_bytes_received_total")), "bytes_sent": int(one("ais_bytes_sent_total")),
        "cold_gets": int(one("ais_cold_gets_total")), "jobs_running": int(one("ais_jobs_running")),
    }


_COUNTERS = ("get", "put", "get_seconds", "errors", "bytes_received", "bytes_sent", "cold_gets")


def _perf_row(tid: str, cur: dict[str, Any], prev: dict[str, Any] | None, dt: float) -> list[Any]:
    if "error" in cur:
        return [f"t[{tid}]"] + ["-"] * 12 + ["offline"]
    disks = list(cur["disk_util_pct"].values())
    if prev is not None and "error" not in prev and dt > 0:   # a later report: rates over the interval
        d = {k: cur[k] - prev[k] for k in _COUNTERS}
        count = [f"{d['get'] / dt:.1f}", f"{d['put'] / dt:.1f}", f"{d['errors'] / dt:.1f}"]
        latency = d["get_seconds"] / d["get"] if d["get"] else None
        sizes = [render.human_size(d["bytes_received"] / dt) + "/s", render.human_size(d["bytes_sent"] / dt) + "/s"]
    else:
        count = [cur["get"], cur["put"], cur["errors"]]
        latency = cur["get_seconds"] / cur["get"] if cur["get"] else None
        sizes = [render.human_size(cur["bytes_received"]), render.human_size(cur["bytes_sent"])]
    return [f"t[{tid}]", f"{cur['cpu_pct']:.0f}%", f"{cur['mem_available_pct']:.0f}%",
            f"{max(disks):.0f}%" if disks else "-", render.human_size(cur["net_bytes_per_s"]) + "/s",
            cur["inflight"], *count, f"{latency * 1000:.2f}ms" if latency is not None else "-", *sizes,
            cur["jobs_running"], cur["overall"]]


def cmd_performance(a: argparse.Namespace) -> int:
    c = client(a)
    prev: dict[str, dict[str, Any]] = {}
    prev_at = 0.0
    for i in range(max(1, a.count)):
        if i:
            time.sleep(a.refresh)
            print()
        smap = c.cluster_map(refresh=i == 0)
        nodes = _sorted(smap.targets.values())
        with concurrent.futures.ThreadPoolExecutor(max(1, min(16, len(nodes)))) as pool:
            scraped = list(pool.map(lambda n: scrape(c, n), nodes))
        at = time.monotonic()
        cur = {n.id: perf_summary(m) for n, m in zip(nodes, scraped)}
        if a.json:
            render.print_json(cur)
        else:
            rate = "/s" if i else ""
            print(render.table(["TARGET", "CPU", "MEM AVAIL", "DISK UTIL", "NETWORK", "IN-FLIGHT", f"GET{rate}",
                                f"PUT{rate}", f"ERRORS{rate}", "GET LATENCY", "RECEIVED", "SENT", "JOBS", "LOAD"],
                               [_perf_row(tid, st, prev.get(tid), at - prev_at) for tid, st in cur.items()],
                               no_headers=a.no_headers,
                               right=["GET" + rate, "PUT" + rate, "ERRORS" + rate, "GET LATENCY", "RECEIVED", "SENT"]))
        prev, prev_at = cur, at
    return 0


# --- show storage, storage mountpath ls --------------------------------------------------------

def _mountpath_rows(smap: ClusterMap, st: dict[str, dict[str, Any]]) -> list[list[Any]]:
    rows = []
    for n in _sorted(smap.targets.values()):
        s = st[n.id]
        if s.get("error"):
            rows.append([f"t[{n.id}]", "-", "-", "-", "-", "-", "-", f"offline: {s['error']}"[:60]])
            continue
        load = s.get("load") or {}
        for mp, d in sorted((s.get("mountpaths") or {}).items()):
            total, avail = int(d.get("total", 0)), int(d.get("avail", 0))
            util = (load.get("disk_util_pct") or {}).get(mp)
            rows.append([f"t[{n.id}]", mp, render.human_size(total - avail), render.human_size(avail),
                         render.human_size(total), f"{(total - avail) * 100 / total:.0f}%" if total else "-",
                         f"{util:.0f}%" if isinstance(util, (int, float)) else "-",
                         (load.get("disk_grades") or {}).get(mp, "-")])
    return rows


def _storage(a: argparse.Namespace) -> int:
    c = client(a)
    smap = c.cluster_map(refresh=True)
    st = statuses(c, list(smap.targets.values()))
    fss = {n.id: filesystems(n, st[n.id]) for n in smap.targets.values()}
    if a.json:
        render.print_json({tid: {"mountpaths": s.get("mountpaths") or {},
                                 "disk_util_pct": (s.get("load") or {}).get("disk_util_pct") or {},
                                 **dict(zip(("used", "total"), capacity(fss[tid]))),
                                 **({"error": s["error"]} if s.get("error") else {})} for tid, s in st.items()})
        return 0
    rows = _mountpath_rows(smap, st)
    print(render.table(["TARGET", "MOUNTPATH", "USED", "AVAIL", "TOTAL", "USED%", "DISK UTIL", "DISK LOAD"], rows,
                       no_headers=a.no_headers, right=["USED", "AVAIL", "TOTAL", "USED%"]))
    if not a.no_headers:   # totals count each filesystem once, however many mountpaths share it
        every = {k: v for f in fss.values() for k, v in f.items()}
        used, total = capacity(every)
        print(f"\n{len(rows)} mountpaths on {len(st)} targets, {len(every)} filesystem{'s' if len(every) != 1 else ''}: "
              f"{render.human_size(used)} used of {render.human_size(total)}")
    return 0


def cmd_storage(a: argparse.Namespace) -> int:
    return _storage(a)


def _admin(c: Client, what: str, method: str, path: str, body: Any = None, node_url: str = "") -> str:
    try:
        return c.request(method, path, body=body, node_url=node_url, idempotent=False).text
    except StatusError as exc:
        raise unsupported(what, exc) from None


# --- cluster set-primary (membership: ais/cli/nodes.py) -------------------------------------------

def cmd_set_primary(a: argparse.Namespace) -> int:
    c = client(a)
    _admin(c, "set-primary", "PUT", f"/v1/cluster/proxy/{a.node}")
    print(f"p[{a.node}] is the new primary")
    return 0

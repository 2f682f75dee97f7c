"""`ais job ls|show|wait|stop` and `ais show job`: cluster-wide jobs (wire: xactions), and the
wait-with-progress that every job-starting command (`--wait`) shares."""

from __future__ import annotations

import argparse
import time
from datetime import datetime
from typing import Any

from ais.cli import render
from ais.cli.common import CommandError, client
from ais.client import Client, NotFound

_ZERO_TIME = "0001-01-01T00:00:00Z"


def snapshots(c: Client, job_id: str = "", kind: str = "", active: bool = False) -> dict[str, list[dict[str, Any]]]:
    """{target ID: [job snapshot, ...]} of the matching jobs ({} when none matches)."""
    body = {"ID": job_id, "Kind": kind, "show_active": active}
    try:
        doc = c.request("GET", "/v1/cluster", params=[("what", "qryxstats")], body=body).json()
    except NotFound:
        return {}
    return doc if isinstance(doc, dict) else {}


def summarize(snaps: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One row per job across targets: counts summed, earliest start, latest end."""
    jobs: dict[str, dict[str, Any]] = {}
    for tid, ss in snaps.items():
        for s in ss:
            j = jobs.setdefault(s["id"], {"id": s["id"], "kind": s.get("kind", ""), "bucket": _bucket_text(s),
                                          "objects": 0, "bytes": 0, "start": "", "end": "", "running": False,
                                          "aborted": False, "errors": [], "targets": []})
            stats = s.get("stats") or {}
            j["objects"] += int(stats.get("loc-objs") or 0)
            j["bytes"] += int(stats.get("loc-bytes") or 0)
            j["targets"].append(tid)
            start, end = s.get("start-time") or "", s.get("end-time") or ""
            if start and (not j["start"] or start < j["start"]):
                j["start"] = start
            if not end or end == _ZERO_TIME:
                j["running"] = True
            elif end > j["end"]:
                j["end"] = end
            j["aborted"] = j["aborted"] or bool(s.get("aborted"))
            if s.get("err"):
                j["errors"].append(f"t[{tid}]: {s['err']}")
    out = []
    for j in jobs.values():
        j["state"] = ("aborted" if j["aborted"] else "running" if j["running"]
                      else "failed" if j["errors"] else "finished")
        if j["running"]:
            j["end"] = ""
        out.append(j)
    return sorted(out, key=lambda j: j["start"], reverse=True)


def _bucket_text(snap: dict[str, Any]) -> str:
    def cname(b: Any) -> str:
        if not isinstance(b, dict) or not b.get("name"):
            return ""
        prov = {"aws": "s3", "gcp": "gs", "azure": "az"}.get(b.get("provider", ""), b.get("provider") or "ais")
        return f"{prov}://{b['name']}"
    src, dst = cname(snap.get("src-bck") or snap.get("bck")), cname(snap.get("dst-bck"))
    return f"{src} => {dst}" if dst and dst != src else src


def _time(text: str) -> str:
    if not text or text == _ZERO_TIME:
        return "-"
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone().strftime("%m-%d %H:%M:%S")
    except ValueError:
        return text


def _rows(jobs: list[dict[str, Any]]) -> list[list[Any]]:
    return [[j["id"], j["kind"], j["bucket"], j["objects"], render.human_size(j["bytes"]), _time(j["start"]),
             _time(j["end"]), j["state"]] for j in jobs]


_HEADERS = ["ID", "KIND", "BUCKET", "OBJECTS", "BYTES", "START", "END", "STATE"]


def cmd_ls(a: argparse.Namespace) -> int:
    c = client(a)
    jobs = summarize(snapshots(c, kind=a.kind or "", active=a.active))
    if a.json:
        render.print_json(jobs)
    elif not jobs:
        print("No jobs" + (f" of kind {a.kind!r}" if a.kind else ""))
    else:
        print(render.table(_HEADERS, _rows(jobs), no_headers=a.no_headers, right=["OBJECTS", "BYTES"]))
    return 0


def cmd_show(a: argparse.Namespace) -> int:
    if not a.id:
        return cmd_ls(a)
    c = client(a)
    snaps = snapshots(c, a.id)
    if not snaps:
        raise CommandError(f"job {a.id} not found")
    if a.json:
        render.print_json({"job": summarize(snaps)[0], "targets": snaps})
        return 0
    print(render.table(_HEADERS, _rows(summarize(snaps)), right=["OBJECTS", "BYTES"]))
    print()
    rows = []
    for tid, ss in sorted(snaps.items()):
        for s in ss:
            st = s.get("stats") or {}
            end = s.get("end-time") or ""
            rows.append([tid, st.get("loc-objs", 0), render.human_size(int(st.get("loc-bytes") or 0)),
                         _time(s.get("start-time", "")), _time(end),
                         "aborted" if s.get("aborted") else "running" if end in ("", _ZERO_TIME) else "finished",
                         s.get("err") or ""])
    print(render.table(["TARGET", "OBJECTS", "BYTES", "START", "END", "STATE", "ERROR"], rows,
                       right=["OBJECTS", "BYTES"]))
    return 0


def wait(c: Client, job_id: str, timeout_s: float, what: str = "", total: int | None = None) -> dict[str, Any]:
    """Poll the job until every target has finished it, drawing progress on a terminal; its summary."""
    deadline = time.monotonic() + timeout_s
    with render.Progress(what or f"job {job_id}", total) as bar:
        first = True
        while True:
            snaps = snapshots(c, job_id)
            if not snaps and first:
                raise CommandError(f"job {job_id} not found")
            first = False
            if snaps:
                job = summarize(snaps)[0]
                bar.update(job["objects"], job["bytes"], absolute=True)
                if job["state"] != "running":
                    break
            if time.monotonic() >= deadline:
                raise CommandError(f"job {job_id} has not finished after {render.human_duration(timeout_s)} "
                                   f"(see 'ais show job {job_id}')")
            time.sleep(0.2)
    if job["state"] == "aborted":
        raise CommandError(f"job {job_id} ({job['kind']}) was aborted")
    if job["errors"]:
        raise CommandError(f"job {job_id} ({job['kind']}) failed: {'; '.join(job['errors'])[:500]}")
    return job


def cmd_wait(a: argparse.Namespace) -> int:
    job = wait(client(a), a.id, a.timeout)
    print(f"Job {a.id} ({job['kind']}) finished: {job['objects']} objects, {render.human_size(job['bytes'])}")
    return 0


def cmd_stop(a: argparse.Namespace) -> int:
    c = client(a)
    if not snapshots(c, a.id):
        raise CommandError(f"job {a.id} not found")
    c.abort_job(a.id)
    print(f"Stopped job {a.id}")
    return 0


def started(a: argparse.Namespace, c: Client, job_id: str, what: str, total: int | None = None) -> int:
    """After a command started a job: wait for it (`--wait`), or say how to watch it."""
    job_id = job_id.strip()
    if getattr(a, "wait", False):
        job = wait(c, job_id, getattr(a, "timeout", 300.0), what, total)
        print(f"{what}: done ({job['objects']} objects, {render.human_size(job['bytes'])}), job {job_id}")
    else:
        print(f"{what}: started job {job_id}")
        print(f"To monitor the progress, run 'ais show job {job_id}' (or 'ais job wait {job_id}')")
    return 0

"""Mountpaths at runtime with real processes: attach (a resilver moves about 1/(n+1) of the
objects onto the new one, exactly those it wins by HRW), persisted across a restart; detach
(data moved off first, everything readable during and after); disable/enable (data invisible,
mirrored objects still served); and a disk throwing EIO, disabled automatically while reads of
mirrored objects keep working. Through the CLI, the target and the proxy's reverse route.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any, Callable

import pytest
import requests
from aistore import Client

from ais import hrw
from tests.cluster.conftest import Cluster

pytestmark = pytest.mark.timeout(180)

AIS = [sys.executable, "-m", "ais.cli.main"]


# --- helpers ----------------------------------------------------------------------------------

def cli(c: Cluster, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("AIS_CLI_CONFIG", "AIS_ENDPOINT")}
    env.update(AIS_ENDPOINT=c.endpoint, XDG_CONFIG_HOME=os.path.join(c.root, "cli-config"))
    r = subprocess.run([*AIS, *args], capture_output=True, text=True, timeout=120, env=env, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, f"ais {' '.join(args)}: {r.stdout}\n{r.stderr}"
    assert "Traceback" not in r.stderr, r.stderr
    return r.stdout


def target_id(c: Cluster) -> str:
    smap = requests.get(f"{c.endpoint}/v1/daemon", params={"what": "smap"}, timeout=10).json()
    (tid,) = smap["tmap"]
    return str(tid)


def mountpaths(c: Cluster, tid: str) -> dict[str, list[str]]:
    """Through the proxy, as the SDK and CLI see them."""
    doc = requests.get(f"{c.endpoint}/v1/cluster", params={"what": "mountpaths"}, timeout=10).json()
    return doc[tid]  # type: ignore[no-any-return]


def reverse(c: Cluster, tid: str, action: str, path: str) -> str:
    """A mountpath action through the proxy (`/v1/reverse/daemon/mountpaths` + `Ais-Node-Id`)."""
    r = requests.put(f"{c.endpoint}/v1/reverse/daemon/mountpaths", json={"action": action, "value": path},
                     headers={"Ais-Node-Id": tid}, timeout=30)
    assert r.status_code == 200, r.text
    return r.text


def wait_for(what: str, cond: Callable[[], Any], timeout_s: float = 60) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        got = cond()
        if got:
            return got
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def resilvers_done(c: Cluster) -> bool:
    jobs = requests.get(f"{c.endpoint}/v1/cluster", params={"what": "status_all"}, json={"kind": "resilver"},
                        timeout=10).json()
    return bool(jobs) and all(j["end_time"] for j in jobs)


def mains(mp: str, bucket: str) -> set[str]:
    root = f"{mp}/@ais/{bucket}/%ob"
    return {os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs}


def copies(mp: str, bucket: str) -> set[str]:
    root = f"{mp}/@ais/{bucket}/%cp"
    return {os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs}


def ranked(bucket: str, obj: str, mps: list[str]) -> list[str]:
    d = hrw.digest(f"ais/@#/{bucket}/{obj}")
    return sorted(mps, key=lambda mp: -hrw.mix64(hrw.digest(mp) ^ d))


def fill(client: Client, name: str, count: int, mirror: bool = False, c: Cluster | None = None) -> tuple[Any, dict[str, bytes]]:
    b = client.bucket(f"{name}-{os.urandom(3).hex()}")
    b.create()
    if mirror:
        assert c is not None
        r = requests.patch(f"{c.endpoint}/v1/buckets/{b.name}",
                           json={"action": "set-bprops", "value": {"mirror": {"enabled": True, "copies": 2}}}, timeout=30)
        assert r.status_code == 200, r.text
    data = {f"d{i % 4}/o{i:03d}": os.urandom(200 + i) for i in range(count)}
    for n, v in data.items():
        b.object(n).get_writer().put_content(v)
    return b, data


def all_readable(b: Any, data: dict[str, bytes]) -> None:
    for n, v in data.items():
        assert b.object(n).get_reader().read_all() == v, n


def check_placement(b: Any, data: dict[str, bytes], mps: list[str], mirrored: bool) -> None:
    """Every main copy on its HRW mountpath among `mps`, its mirror copy (if any) on the next one."""
    for n in data:
        order = ranked(b.name, n, mps)
        assert os.path.isfile(f"{order[0]}/@ais/{b.name}/%ob/{n}"), (n, order)
        for other in order[1:]:
            assert not os.path.exists(f"{other}/@ais/{b.name}/%ob/{n}"), (n, other)
        if mirrored:
            assert os.path.isfile(f"{order[1]}/@ais/{b.name}/%cp/{n}"), (n, order)


# --- tests ------------------------------------------------------------------------------------

def test_attach_resilvers_a_share_onto_the_new_mountpath_then_detach_disable_enable(
        make_cluster: Callable[..., Cluster]) -> None:
    c = make_cluster(targets=1, mountpaths=2)
    client = Client(c.endpoint)
    tid = target_id(c)
    mp0, mp1 = c.node("t0").mountpaths
    new = os.path.join(os.path.dirname(mp0), "mp-new")
    plain, pdata = fill(client, "plain", 120)
    mirr, mdata = fill(client, "mirr", 24, mirror=True, c=c)
    assert mountpaths(c, tid) == {"available": [mp0, mp1], "waiting_dd": [], "disabled": []}

    # 1. attach (CLI): a resilver moves exactly the objects the new mountpath wins by HRW
    out = cli(c, "storage", "mountpath", "attach", tid, new, "--wait")
    assert "attached mountpath" in out and "resilver" in out and "finished" in out, out
    assert mountpaths(c, tid)["available"] == [mp0, mp1, new]
    moved = mains(new, plain.name)
    assert 0.15 * len(pdata) < len(moved) < 0.55 * len(pdata), len(moved)   # about 1/3
    check_placement(plain, pdata, [mp0, mp1, new], mirrored=False)
    check_placement(mirr, mdata, [mp0, mp1, new], mirrored=True)
    all_readable(plain, pdata)
    all_readable(mirr, mdata)
    listed = cli(c, "storage", "mountpath", "ls", "-H").strip().splitlines()
    assert len(listed) == 3 and all("available" in line for line in listed), listed

    # ... and it stays attached across a restart
    c.restart("t0")
    assert mountpaths(c, tid)["available"] == [mp0, mp1, new]
    all_readable(plain, pdata)

    # 2. detach mp0 through the proxy: out of placement at once, readable until its data moved off
    job = reverse(c, tid, "detach-mp", mp0)
    assert job
    all_readable(plain, pdata)        # during the resilver (or after: both must read)
    wait_for("detach", lambda: mountpaths(c, tid) == {"available": [mp1, new], "waiting_dd": [], "disabled": []})
    assert mains(mp0, plain.name) == set() and mains(mp0, mirr.name) == set() and copies(mp0, mirr.name) == set()
    check_placement(plain, pdata, [mp1, new], mirrored=False)
    check_placement(mirr, mdata, [mp1, new], mirrored=True)
    all_readable(plain, pdata)
    all_readable(mirr, mdata)

    # 3. disable mp1 (CLI): its objects are invisible, mirrored ones are still served; enable: back
    on_mp1 = sorted(mains(mp1, plain.name))
    assert on_mp1
    cli(c, "storage", "mountpath", "disable", tid, mp1, "--wait")
    assert mountpaths(c, tid) == {"available": [new], "waiting_dd": [], "disabled": [mp1]}
    r = requests.get(f"{c.endpoint}/v1/objects/{plain.name}/{on_mp1[0]}", timeout=30)
    assert r.status_code == 404, r.status_code
    all_readable(mirr, mdata)
    b = client.bucket(plain.name)
    b.object("while-disabled").get_writer().put_content(b"w")
    cli(c, "storage", "mountpath", "enable", tid, mp1, "--wait")
    assert mountpaths(c, tid)["available"] == [new, mp1]
    all_readable(plain, {**pdata, "while-disabled": b"w"})
    all_readable(mirr, mdata)
    check_placement(mirr, mdata, [new, mp1], mirrored=True)

    # bad requests name the problem
    r = requests.put(f"{c.endpoint}/v1/reverse/daemon/mountpaths", json={"action": "detach-mp", "value": "/nope"},
                     headers={"Ais-Node-Id": tid}, timeout=30)
    assert r.status_code == 404 and "/nope is not attached" in r.text, r.text
    r = requests.put(f"{c.endpoint}/v1/reverse/daemon/mountpaths", json={"action": "frob-mp", "value": new},
                     headers={"Ais-Node-Id": tid}, timeout=30)
    assert r.status_code == 400 and "frob-mp" in r.text, r.text
    cli(c, "storage", "mountpath", "detach", tid, mp1, "--wait")
    r = requests.put(f"{c.endpoint}/v1/reverse/daemon/mountpaths", json={"action": "detach-mp", "value": new},
                     headers={"Ais-Node-Id": tid}, timeout=30)
    assert r.status_code == 400 and "last available mountpath" in r.text, r.text
    all_readable(plain, {**pdata, "while-disabled": b"w"})
    # an explicit resilver (SDK) on the target finds nothing to move
    job_id = client.job(job_kind="resilver").start(daemon_id=tid)
    client.job(job_id=job_id).wait(timeout=60, verbose=False)
    # a restart keeps the configured mountpaths that were detached out
    c.restart("t0")
    assert mountpaths(c, tid) == {"available": [new], "waiting_dd": [], "disabled": []}
    all_readable(plain, {**pdata, "while-disabled": b"w"})
    all_readable(mirr, mdata)


def test_a_disk_throwing_io_errors_is_disabled_and_mirrored_reads_keep_working(
        make_cluster: Callable[..., Cluster]) -> None:
    c = make_cluster(targets=1, mountpaths=3)
    client = Client(c.endpoint)
    tid = target_id(c)
    mps = c.node("t0").mountpaths
    b, data = fill(client, "eio", 40, mirror=True, c=c)
    bad = mps[1]
    on_bad = [n for n in data if ranked(b.name, n, mps)[0] == bad]
    assert len(on_bad) >= 5
    # test hook: every I/O of `bad` now fails with EIO
    r = requests.put(f"{c.endpoint}/v1/cluster", json={"action": "set-config",
                                                       "value": {"target.fault_eio_mountpath": bad}}, timeout=30)
    assert r.status_code == 200, r.text
    wait_for("the fault hook", lambda: requests.get(f"{c.endpoint}/v1/objects/{b.name}/{on_bad[0]}",
                                                   timeout=30).status_code == 200
             and "injected I/O error" in open(os.path.join(c.root, "t0", "node.log")).read())
    for n, v in data.items():   # no retries here (the SDK retries a 500): every read succeeds the first time
        r = requests.get(f"{c.endpoint}/v1/objects/{b.name}/{n}", timeout=30)
        assert r.status_code == 200 and r.content == v, (n, r.status_code, r.text[:200])
    wait_for("auto-disable", lambda: mountpaths(c, tid)["disabled"] == [bad])
    assert "disabling it" in open(os.path.join(c.root, "t0", "node.log")).read()
    wait_for("resilver", lambda: resilvers_done(c))
    good = [mp for mp in mps if mp != bad]
    check_placement(b, data, good, mirrored=True)   # two copies again, on the healthy disks
    all_readable(b, data)
    b.object("after").get_writer().put_content(b"after")
    assert b.object("after").get_reader().read_all() == b"after"
    r = requests.put(f"{c.endpoint}/v1/cluster", json={"action": "set-config",
                                                       "value": {"target.fault_eio_mountpath": ""}}, timeout=30)
    assert r.status_code == 200, r.text

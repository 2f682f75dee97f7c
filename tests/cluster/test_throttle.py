"""Throttling against real processes: a slowed disk paces a copy job while foreground GETs keep
their latency, and a space quota turns writes that do not fit into 507 with nothing left behind."""

from __future__ import annotations

import os
import statistics
import time
import urllib.parse
from typing import Any, Callable, Iterator

import pytest
import requests
from aistore.sdk import Client
from aistore.sdk.errors import AISError

MiB = 1 << 20


def _target_url(c: Any) -> str:
    smap = requests.get(f"{c.endpoint}/v1/daemon", params={"what": "smap"}, timeout=10).json()
    return str(next(iter(smap["tmap"].values()))["public_net"]["direct_url"])


def _load(target_url: str) -> dict[str, Any]:
    r = requests.get(f"{target_url}/v1/daemon", params={"what": "node_status"}, timeout=10)
    r.raise_for_status()
    return dict(r.json()["load"])


def _p99(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100)[98]


def _get_latencies(session: requests.Session, urls: list[str], rounds: int) -> list[float]:
    out = []
    for i in range(rounds):
        t0 = time.perf_counter()
        r = session.get(urls[i % len(urls)], timeout=30)
        out.append(time.perf_counter() - t0)
        assert r.status_code == 200 and len(r.content) == 16 << 10
    return out


def test_slow_mountpath_paces_a_copy_job_and_foreground_gets_keep_their_latency(
        make_cluster: Callable[..., Any]) -> None:
    # one target, two mountpaths, the first one slowed by the test hook (5 ms per I/O, reads 100% busy)
    c = make_cluster(targets=1, mountpaths=2, env={"AIS_TARGET_SLOW_MOUNTPATH": "0", "AIS_TARGET_SLOW_IO_MS": "5"})
    client = Client(c.endpoint)
    target = _target_url(c)
    slow_mp = c.node("t0").mountpaths[0]
    deadline = time.monotonic() + 10
    while (load := _load(target))["disk_grades"].get(slow_mp) != "critical" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert load["disk_grades"][slow_mp] == "critical" and load["grades"]["disk"] == "critical", load
    assert sum(g == "low" for g in load["disk_grades"].values()) == 1, load    # the other disk is fine

    fg, bg, dst = (client.bucket(f"{n}-{os.urandom(3).hex()}") for n in ("fg", "bg", "dst"))
    for b in (fg, bg):
        b.create()
    for i in range(40):
        fg.object(f"f{i}").get_writer().put_content(os.urandom(16 << 10))
    payload = os.urandom(64 << 10)
    for i in range(240):
        bg.object(f"b{i:03d}").get_writer().put_content(payload)
    # straight to the target, as a loader with direct routing reads
    urls = [f"{target}/v1/objects/{fg.name}/f{i}" for i in range(40)]
    with requests.Session() as s:
        _get_latencies(s, urls, 40)                       # warm the connection and the page cache
        idle = _get_latencies(s, urls, 200)
        job_id = bg.copy(dst)
        started = time.monotonic()
        busy = _get_latencies(s, urls, 200)
        busy_s = time.monotonic() - started
        job = client.job(job_id=job_id)
        # the job yielded: after the whole foreground run it is still going
        assert not job.status().end_time, f"the copy of 240 objects finished within {busy_s:.1f} s of GETs"
        job.wait(timeout=120, verbose=False)
    assert len(dst.list_all_objects()) == 240
    assert dst.object("b123").get_reader().read_all() == payload
    p99_idle, p99_busy = _p99(idle), _p99(busy)
    assert p99_busy <= 2 * p99_idle, (f"GET p99 {p99_busy * 1e3:.1f} ms under the copy job, "
                                      f"{p99_idle * 1e3:.1f} ms idle")


@pytest.fixture
def quota_cluster(make_cluster: Callable[..., Any]) -> Iterator[Any]:
    yield make_cluster(targets=1, mountpaths=1, env={"AIS_SPACE_CAPACITY_BYTES": str(4 * MiB)})


def _owner_url(c: Any, bucket: str, obj: str) -> str:
    first = requests.put(f"{c.endpoint}/v1/objects/{bucket}/{obj}", data=b"", allow_redirects=False, timeout=10)
    assert first.status_code == 307, first.text
    return str(first.headers["Location"])


def _work_files(c: Any) -> list[str]:
    return os.listdir(os.path.join(c.node("t0").mountpaths[0], "%wk"))


def test_writes_beyond_the_space_quota_are_507_and_leave_nothing(quota_cluster: Any) -> None:
    c = quota_cluster
    client = Client(c.endpoint)
    b = client.bucket(f"quota-{os.urandom(3).hex()}")
    b.create()
    b.object("fits").get_writer().put_content(os.urandom(MiB))
    # a known length beyond the quota: refused before the body is read
    with pytest.raises(AISError) as exc:
        b.object("big").get_writer().put_content(os.urandom(4 * MiB))
    assert exc.value.status_code == 507 and "quota" in str(exc.value), exc.value
    # a chunked body: refused at the first batch that does not fit, its work file removed
    url = _owner_url(c, b.name, "chunked")

    def body() -> Iterator[bytes]:
        for _ in range(16):
            yield os.urandom(256 << 10)
    r = requests.put(url, data=body(), timeout=30)
    assert r.status_code == 507 and "space.capacity_bytes" in r.text, r.text
    assert urllib.parse.urlsplit(url).path.endswith("/chunked")
    names = [e.name for e in b.list_all_objects()]
    assert names == ["fits"]
    for missing in ("big", "chunked"):
        with pytest.raises(AISError) as exc:
            b.object(missing).head()
        assert exc.value.status_code == 404
    assert _work_files(c) == []
    # what still fits goes in; deleting gives the space back once the monitor measures again
    b.object("small").get_writer().put_content(os.urandom(MiB))
    assert b.object("small").head().size == MiB

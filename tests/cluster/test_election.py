"""Primary failover with real processes: SIGKILL of the primary elects the HRW candidate, no
acknowledged write is lost, clients at any live proxy keep working, the old primary rejoins as a
follower; and the manual hand-over (`PUT /v1/cluster/proxy/<id>`, `ais cluster set-primary`)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any, Callable

import boto3
import pytest
import requests
from aistore import Client as SdkClient
from botocore.config import Config as BotoConfig

from ais.cli import localcluster
from ais.client import Client
from ais.cmap import ClusterMap
from tests.cluster.conftest import Cluster

FAILOVER_S = 10.0


def smap_of(url: str) -> ClusterMap | None:
    try:
        r = requests.get(f"{url}/v1/daemon", params={"what": "smap"}, timeout=3)
    except requests.RequestException:
        return None
    return ClusterMap.from_wire(r.json()) if r.status_code == 200 else None


def wait_for(cond: Callable[[], Any], deadline_s: float, what: str) -> Any:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        got = cond()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError(f"not within {deadline_s:.0f}s: {what}")


def agreed_map(c: Cluster, names: list[str]) -> ClusterMap | None:
    """The cluster map if every named node holds the same version, else None."""
    maps = [smap_of(c.node(n).public_url) for n in names]
    if any(m is None for m in maps) or len({(m.version, m.primary_id) for m in maps if m is not None}) != 1:
        return None
    return maps[0]


def body(name: str) -> bytes:
    return (name.encode() + b"|") * 200


class Writer(threading.Thread):
    """PUTs objects through one proxy with the SDK; records the acknowledged ones."""

    def __init__(self, endpoint: str, bucket: str) -> None:
        super().__init__(daemon=True)
        self.bucket = SdkClient(endpoint, max_pool_size=4).bucket(bucket)
        self.acked: list[str] = []
        self.failed = 0
        self.stop = threading.Event()

    def run(self) -> None:
        i = 0
        while not self.stop.is_set():
            name = f"w/{i:05d}"
            i += 1
            try:
                self.bucket.object(name).get_writer().put_content(body(name))
                self.acked.append(name)
            except Exception:  # noqa: BLE001 - a write that failed is not acknowledged; go on
                self.failed += 1
                time.sleep(0.05)


def test_primary_killed_hrw_candidate_takes_over(make_cluster) -> None:  # type: ignore[no-untyped-def]
    c = make_cluster(proxies=3, targets=3, mountpaths=1)
    p0, p1, p2 = (c.node(n) for n in ("p0", "p1", "p2"))
    smap = smap_of(p0.public_url)
    assert smap is not None and smap.primary.public_url == p0.public_url
    old_id = smap.primary_id
    expected = smap.electable_proxies()[0]   # the HRW candidate: highest ID digest besides the primary
    assert expected.id != old_id and len(smap.proxies) == 3
    SdkClient(p1.public_url).bucket("fo").create()
    ours = Client(p0.public_url)             # our client, pointed at the proxy about to die
    ours.put_object("fo", "before", b"x" * 1000)
    assert [b.name for b in ours.list_buckets()] == ["fo"]

    writer = Writer(p2.public_url, "fo")     # through a non-primary proxy
    writer.start()
    try:
        wait_for(lambda: len(writer.acked) >= 20, 30, "20 acknowledged writes before the kill")
        killed_at = time.monotonic()
        c.kill("p0")
        # 1. the HRW candidate is the primary on every live node within FAILOVER_S
        new = wait_for(lambda: (m := agreed_map(c, ["p1", "p2", "t0", "t1", "t2"])) and m.primary_id != old_id and m,
                       FAILOVER_S + 5, "a new primary on every live node")
        took_s = time.monotonic() - killed_at
        assert new.primary_id == expected.id, f"{new.primary.display} elected, HRW candidate is {expected.display}"
        assert took_s < FAILOVER_S, f"new primary after {took_s:.1f}s"
        assert new.version > smap.version and old_id in new.proxies
        # writes keep being acknowledged after the failover
        after = len(writer.acked)
        wait_for(lambda: len(writer.acked) >= after + 20, 30, "20 more acknowledged writes after the failover")
    finally:
        writer.stop.set()
        writer.join(timeout=30)

    # 2. every acknowledged object reads back, through each live proxy
    for url in (p1.public_url, p2.public_url):
        b = SdkClient(url).bucket("fo")
        for name in writer.acked:
            assert b.object(name).get_reader().read_all() == body(name), name
    # 3. the new primary serves: bucket creation (at a follower, forwarded), a job, is_ready
    follower = p1 if new.primary.public_url == p2.public_url else p2
    SdkClient(follower.public_url).bucket("after").create()
    primary_sdk = SdkClient(new.primary.public_url)
    assert {"fo", "after"} <= {b.name for b in primary_sdk.cluster().list_buckets()}
    assert SdkClient(follower.public_url).cluster().get_primary_url() == new.primary.public_url
    assert SdkClient(follower.public_url).cluster().is_ready()
    job = primary_sdk.bucket("fo").copy(primary_sdk.bucket("fo-copy"), prefix_filter="w/0000")
    primary_sdk.job(job).wait(timeout=60)
    assert len(primary_sdk.bucket("fo-copy").list_all_objects()) == min(10, len(writer.acked))
    # our client, configured with the dead proxy: falls back to another from its cached map
    assert {"fo", "after", "fo-copy"} <= {b.name for b in ours.list_buckets()}
    assert ours.get_object("fo", "before") == b"x" * 1000
    ours.put_object("after", "via-ours", b"y" * 100)
    # S3 through a non-primary proxy
    s3 = boto3.client("s3", endpoint_url=f"{follower.public_url}/s3", aws_access_key_id="x",
                      aws_secret_access_key="y", region_name="us-east-1",
                      config=BotoConfig(retries={"max_attempts": 1}))
    s3.put_object(Bucket="after", Key="via-s3", Body=b"z" * 100)
    assert s3.get_object(Bucket="fo", Key=writer.acked[-1])["Body"].read() == body(writer.acked[-1])

    # 4. the old primary restarts with its persisted ID and map: it follows, it does not lead
    c.restart("p0")
    everyone = ["p0", "p1", "p2", "t0", "t1", "t2"]
    final = wait_for(lambda: agreed_map(c, everyone), 20, "one cluster map on every node")
    assert final.primary_id == expected.id and final.version >= new.version
    status = requests.get(f"{p0.public_url}/v1/daemon", params={"what": "node_status"}, timeout=5).json()
    assert status["snode"]["daemon_id"] == old_id and status["is_primary"] is False
    assert requests.get(f"{p0.public_url}/v1/health", params={"prr": "true"}, timeout=5).status_code == 503
    # it serves like any proxy, and changes it takes go to the new primary
    assert SdkClient(p0.public_url).bucket("after").object("via-s3").get_reader().read_all() == b"z" * 100
    SdkClient(p0.public_url).bucket("after-rejoin").create()
    assert "after-rejoin" in {b.name for b in primary_sdk.cluster().list_buckets()}


def test_set_primary_hands_over_and_back(make_cluster) -> None:  # type: ignore[no-untyped-def]
    c = make_cluster(proxies=3, targets=1, mountpaths=1, env={"AIS_CLUSTER_SECRET": "s3cr3t"})
    p0, p1, p2 = (c.node(n) for n in ("p0", "p1", "p2"))
    smap = smap_of(p0.public_url)
    assert smap is not None
    # election requests: intra listener only, with the cluster secret
    ask = {"uuid": smap.uuid, "primary": smap.primary_id, "smap_version": smap.version, "candidate": "x"}
    for path in ("/v1/vote/proxy", "/v1/vote/init"):
        r = requests.post(f"http://127.0.0.1:{p1.intra_port}{path}", json=ask, timeout=10)
        assert r.status_code == 403 and "secret" in r.text, r.text
        assert requests.post(f"{p1.public_url}{path}", json=ask, timeout=10).status_code >= 400
    r = requests.post(f"http://127.0.0.1:{p1.intra_port}/v1/vote/proxy", json={**ask, "smap_version": "v1"},
                      headers={"Ais-Join-Sig": "s3cr3t"}, timeout=10)
    assert r.status_code == 400 and "smap_version" in r.text, r.text
    r = requests.post(f"http://127.0.0.1:{p1.intra_port}/v1/vote/proxy", json=ask, headers={"Ais-Join-Sig": "s3cr3t"},
                      timeout=10)
    assert r.status_code == 200 and r.json()["yes"] is False and "answers" in r.json()["reason"], r.text
    ids = {n: next(p.id for p in smap.proxies.values() if p.public_url == c.node(n).public_url)
           for n in ("p0", "p1", "p2")}
    everyone = ["p0", "p1", "p2", "t0"]

    # the CLI, pointed at the primary: p1 becomes the primary everywhere
    cli = subprocess.run([sys.executable, "-m", "ais.cli.main", "cluster", "set-primary", ids["p1"]],
                         capture_output=True, text=True, timeout=60, env={**os.environ, "AIS_ENDPOINT": p0.public_url})
    assert cli.returncode == 0, cli.stderr
    assert ids["p1"] in cli.stdout
    moved = wait_for(lambda: (m := agreed_map(c, everyone)) and m.primary_id == ids["p1"] and m, 10,
                     "p1 primary on every node")
    assert moved.version == smap.version + 1
    assert requests.get(f"{p1.public_url}/v1/health", params={"prr": "true"}, timeout=5).status_code == 200
    # the old primary is a follower: its change requests go to p1
    SdkClient(p0.public_url).bucket("handed").create()
    assert "handed" in {b.name for b in SdkClient(p1.public_url).cluster().list_buckets()}

    # the route at a follower (p2) is forwarded to the primary (p1): back to p0
    r = requests.put(f"{p2.public_url}/v1/cluster/proxy/{ids['p0']}", timeout=30)
    assert r.status_code == 200, r.text
    back = wait_for(lambda: (m := agreed_map(c, everyone)) and m.primary_id == ids["p0"] and m, 10,
                    "p0 primary again on every node")
    assert back.version == moved.version + 1
    SdkClient(p2.public_url).bucket("back").create()
    assert {"handed", "back"} <= {b.name for b in SdkClient(p0.public_url).cluster().list_buckets()}

    # a node away during a hand-over, whose configured and persisted primary is then dead,
    # finds the primary through the other nodes of its persisted map
    c.kill("t0")
    r = requests.put(f"{p0.public_url}/v1/cluster/proxy/{ids['p2']}", timeout=30)
    assert r.status_code == 200, r.text
    wait_for(lambda: (m := agreed_map(c, ["p0", "p1", "p2"])) and m.primary_id == ids["p2"], 10, "p2 primary")
    c.kill("p0")                                # a follower now: no election
    localcluster.start_node(c.spec, c.node("t0"), c.env)
    c.spec.save()
    rejoined = wait_for(lambda: (m := agreed_map(c, ["p1", "p2", "t0"])) and m.primary_id == ids["p2"] and m, 30,
                        "t0 rejoins through p1/p2 and follows p2")
    assert rejoined.version > back.version
    SdkClient(p1.public_url).bucket("back").object("o").get_writer().put_content(b"t0 is back")
    assert SdkClient(p2.public_url).bucket("back").object("o").get_reader().read_all() == b"t0 is back"

    # refusals name the problem
    r = requests.put(f"{p1.public_url}/v1/cluster/proxy/NoSuchProxy", timeout=10)
    assert r.status_code == 404 and "NoSuchProxy" in r.text
    target_id = next(iter(back.targets))
    r = requests.put(f"{p2.public_url}/v1/cluster/proxy/{target_id}", timeout=10)
    assert r.status_code == 404 and "no proxy" in r.text
    r = requests.put(f"{p2.public_url}/v1/cluster/proxy/{ids['p0']}", timeout=30)   # p0 is down
    assert r.status_code == 503 and "does not answer" in r.text
    cli = subprocess.run([sys.executable, "-m", "ais.cli.main", "cluster", "set-primary", "NoSuchProxy"],
                         capture_output=True, text=True, timeout=60, env={**os.environ, "AIS_ENDPOINT": p1.public_url})
    assert cli.returncode != 0 and "set-primary" in cli.stderr and "NoSuchProxy" in cli.stderr


def test_a_frozen_primary_that_wakes_up_steps_down(make_cluster) -> None:  # type: ignore[no-untyped-def]
    """No split brain: a primary that stopped answering (SIGSTOP) while the cluster elected another
    finds the newer map when it resumes, follows it, and takes the metadata made meanwhile."""
    c = make_cluster(proxies=3, targets=1, mountpaths=1)
    p0 = c.node("p0")
    smap = smap_of(p0.public_url)
    assert smap is not None
    expected = smap.electable_proxies()[0]
    os.kill(p0.pid, signal.SIGSTOP)
    try:
        new = wait_for(lambda: (m := agreed_map(c, ["p1", "p2", "t0"])) and m.primary_id != smap.primary_id and m,
                       30, "a new primary while the old one is frozen")
        assert new.primary_id == expected.id
        SdkClient(c.node("p1").public_url).bucket("while-frozen").create()
    finally:
        os.kill(p0.pid, signal.SIGCONT)
    final = wait_for(lambda: (m := agreed_map(c, ["p0", "p1", "p2", "t0"])) and m.primary_id == expected.id and m,
                     20, "the woken primary follows the new one")
    assert final.version >= new.version
    status = requests.get(f"{p0.public_url}/v1/daemon", params={"what": "node_status"}, timeout=5).json()
    assert status["is_primary"] is False
    assert "while-frozen" in {b.name for b in SdkClient(p0.public_url).cluster().list_buckets()}
    SdkClient(p0.public_url).bucket("after-wake").create()     # forwarded to the new primary
    assert "after-wake" in {b.name for b in SdkClient(new.primary.public_url).cluster().list_buckets()}

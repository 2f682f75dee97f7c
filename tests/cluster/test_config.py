"""Runtime cluster config (set-config / reset-config) against real processes: validated at the
primary, metasynced to every node, applied at once, persisted across restarts, and caught up by
a node that was down when it changed."""

from __future__ import annotations

import os
import time
from typing import Any, Callable

import pytest
import requests
from aistore.sdk import Client
from aistore.sdk.errors import AISError

MiB = 1 << 20


def _nodes(c: Any) -> dict[str, str]:
    smap = requests.get(f"{c.endpoint}/v1/daemon", params={"what": "smap"}, timeout=10).json()
    return {sid: n["public_net"]["direct_url"] for m in ("pmap", "tmap") for sid, n in smap[m].items()}


def _config(url: str) -> dict[str, Any]:
    r = requests.get(f"{url}/v1/daemon", params={"what": "config"}, timeout=10)
    r.raise_for_status()
    return dict(r.json())


def _wait_for(pred: Callable[[], bool], what: str, timeout_s: float = 15) -> None:
    deadline = time.monotonic() + timeout_s
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def _everywhere(c: Any, section: str, key: str, value: Any) -> bool:
    return all(_config(u)[section][key] == value for u in _nodes(c).values())


def _set(url: str, value: Any) -> requests.Response:
    return requests.put(f"{url}/v1/cluster", json={"action": "set-config", "value": value}, timeout=30)


def test_set_config_applies_everywhere_persists_and_resets(make_cluster: Callable[..., Any]) -> None:
    c = make_cluster(proxies=2, targets=2, mountpaths=1)
    client = Client(c.endpoint)
    other_proxy = c.node("p1").public_url         # not the primary: forwards the change
    b = client.bucket(f"cfg-{os.urandom(3).hex()}")
    b.create()
    b.object("before").get_writer().put_content(os.urandom(MiB))

    # nested keys through a non-primary proxy; the targets take it at once
    r = _set(other_proxy, {"space": {"capacity_bytes": 64 << 10}, "load": {"pace_jobs": "false"}})
    assert r.status_code == 200, r.text
    assert _everywhere(c, "space", "capacity_bytes", 64 << 10) and _everywhere(c, "load", "pace_jobs", False)
    cluster_cfg = requests.get(f"{c.endpoint}/v1/cluster", params={"what": "cluster_config"}, timeout=10).json()
    assert cluster_cfg["space"]["capacity_bytes"] == 64 << 10
    with pytest.raises(AISError) as exc:          # the quota now refuses a 1 MiB object
        b.object("after").get_writer().put_content(os.urandom(MiB))
    assert exc.value.status_code == 507

    # the query form, with a dotted key; earlier changes stay
    r = requests.put(f"{c.endpoint}/v1/cluster/set-config", params={"get_batch.max_pending": "7"}, timeout=30)
    assert r.status_code == 200, r.text
    assert _everywhere(c, "get_batch", "max_pending", 7) and _everywhere(c, "space", "capacity_bytes", 64 << 10)

    # a target down during a change catches up when it comes back; a restart keeps what it has
    c.kill("t1")
    assert _set(c.endpoint, {"load.foreground_yield_ms": 5}).status_code == 200
    c.restart("t1")
    c.restart("t0")
    _wait_for(lambda: _everywhere(c, "load", "foreground_yield_ms", 5.0), "the restarted targets to catch up")
    assert _everywhere(c, "get_batch", "max_pending", 7)

    # reset: back to each node's own config, and the quota is gone
    r = requests.put(f"{c.endpoint}/v1/cluster", json={"action": "reset-config"}, timeout=30)
    assert r.status_code == 200, r.text
    assert _everywhere(c, "space", "capacity_bytes", 0) and _everywhere(c, "load", "pace_jobs", True)
    assert _everywhere(c, "get_batch", "max_pending", 256)
    b.object("after").get_writer().put_content(os.urandom(MiB))
    assert b.object("after").head().size == MiB


@pytest.mark.parametrize("value,words", [
    ({"load": {"no_such_knob": 1}}, ["unknown config key", "load.no_such_knob"]),
    ({"load.max_inflight": "many"}, ["invalid value", "load.max_inflight"]),
    ({"net.public_port": 1}, ["net.public_port", "start-up"]),
    ({"target": {"mountpaths": "/tmp/x"}}, ["target.mountpaths", "start-up"]),
    ({}, ["at least one setting"]),
    ("load.max_inflight=1", ["JSON object"]),
    ({"s3": {"access_keys": {"AK": "SK"}}}, ["s3.access_keys", "an object"]),
], ids=["unknown-key", "bad-type", "restart-only", "mountpaths", "empty", "not-an-object", "object-value"])
def test_bad_set_config_is_400_naming_the_problem(cluster: Any, value: Any, words: list[str]) -> None:
    r = _set(cluster.endpoint, value)
    assert r.status_code == 400, r.text
    for w in words:
        assert w in r.text, r.text
    assert _config(cluster.endpoint)["load"]["max_inflight"] == 4096   # nothing changed


def test_unknown_cluster_action_in_the_path_is_400(cluster: Any) -> None:
    r = requests.put(f"{cluster.endpoint}/v1/cluster/set-nothing", timeout=10)
    assert r.status_code == 400 and "set-nothing" in r.text, r.text

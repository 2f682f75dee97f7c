"""Node lifecycle with real processes and the `ais` CLI as a subprocess (AIStore's
docs/lifecycle_node.md): shutdown (maintenance, rebalance, the process exits, restarted it comes
back), decommission (data moved off, the node leaves the map, erases its metadata, exits; restarted
it waits in standby until `ais cluster add`), unsafe removal with and without shutdown, removal of
user data, proxies (shut down and decommissioned), per-node config (persisted on the node), and
refusals that name the problem.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from typing import Any, Callable, Iterator

import pytest
from aistore import Client

from ais.cli import localcluster
from ais.lifecycle import DECOMMISSIONED_FILE
from tests.cluster.cli_forkserver import ForkServer
from tests.cluster.conftest import Cluster
from tests.cluster.test_cli import Runner
from tests.cluster.test_rebalance import node_id, put_all, read_all_ok, smap

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def cli() -> Iterator[ForkServer]:
    server = ForkServer()
    yield server
    server.close()


def wait_for(what: str, cond: Callable[[], bool], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, f"not after {timeout_s}s: {what}"
        time.sleep(0.1)


def exited(c: Cluster, name: str) -> int | None:
    """The node's exit status once its process has exited (it is our child), else None."""
    child = localcluster._children.get(c.node(name).pid)
    assert child is not None, f"{name} was not started by this test"
    return child.poll()


def health(url: str) -> int:
    try:
        with urllib.request.urlopen(f"{url}/v1/health", timeout=2) as r:
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return 0


def files_on(c: Cluster, name: str, bucket: str) -> int:
    return sum(len(fs) for mp in c.node(name).mountpaths
               for _, _, fs in os.walk(os.path.join(mp, "@ais", bucket, "%ob")))


def restart(c: Cluster, name: str) -> None:
    """Start a node whose process has exited, with its directories as they are."""
    localcluster.start_node(c.spec, c.node(name), c.env)
    c.spec.save()


def populated(make_cluster: Any, cli: ForkServer, tmp_path: Any, bucket: str, prefix: str,
              count: int) -> tuple[Cluster, Runner, Client, list[str]]:
    """A cluster of 3 targets with `count` objects `<prefix>-NNN` in a new bucket, the CLI and a client."""
    c = make_cluster(targets=3, mountpaths=1)
    ais = Runner(c.endpoint, str(tmp_path / "config"), cli)
    client = Client(c.endpoint)
    client.bucket(bucket).create()
    names = [f"{prefix}-{i:03d}" for i in range(count)]
    put_all(client, bucket, names)
    return c, ais, client, names


def test_shutdown_decommission_and_add_back(make_cluster: Any, cli: ForkServer, tmp_path: Any) -> None:
    c, ais, client, names = populated(make_cluster, cli, tmp_path, "life", "o", 120)
    t1, t2 = node_id(c, c.node("t1")), node_id(c, c.node("t2"))
    assert files_on(c, "t1", "life") > 0 and files_on(c, "t2", "life") > 0

    # shutdown: maintenance + rebalance (its objects move away), then the process exits cleanly
    doc = json.loads(ais("cluster", "shutdown", f"t[{t1}]", "-y", "--wait", "--json").stdout)
    assert doc["node"] == t1 and doc["action"] == "shutdown-node" and doc["rebalance_id"].startswith("g")
    wait_for("t1 exits", lambda: exited(c, "t1") is not None)
    assert exited(c, "t1") == 0
    assert smap(c).targets[t1].in_maintenance           # still in the map
    assert files_on(c, "t1", "life") == 0
    read_all_ok(client, "life", set(names))
    rows = {line.split()[0]: line.split()[-1] for line in ais("show", "cluster", "target").stdout.splitlines()[1:]}
    assert rows[f"t[{t1}]"] == "offline"

    # restarted, it rejoins (in maintenance) with its ID; stop-maintenance makes it active again
    restart(c, "t1")
    wait_for("t1 rejoins", lambda: health(c.node("t1").public_url) == 200)
    assert smap(c).targets[t1].in_maintenance
    out = json.loads(ais("cluster", "maintenance", "stop", t1, "--wait", "--json").stdout)
    assert out["action"] == "stop-maintenance" and out["rebalance_id"]
    assert not smap(c).targets[t1].in_maintenance
    read_all_ok(client, "life", set(names))

    # decommission: data moved off, out of the map, metadata erased, the process exits
    out = ais("cluster", "rm", t2, "-y", "--wait").stdout
    assert f"t[{t2}] is being decommissioned" in out and "has left the cluster and exited" in out
    assert t2 not in smap(c).targets
    wait_for("t2 exits", lambda: exited(c, "t2") is not None)
    assert exited(c, "t2") == 0
    conf = os.path.join(c.node("t2").dir(c.spec.root), "conf")
    assert os.path.exists(os.path.join(conf, DECOMMISSIONED_FILE))
    assert not os.path.exists(os.path.join(conf, "cluster_map.json"))
    assert files_on(c, "t2", "life") == 0
    assert os.path.isdir(os.path.join(c.node("t2").mountpaths[0], "%wk"))   # the rest kept (no --rm-user-data)
    read_all_ok(client, "life", set(names))

    # restarted, a decommissioned node does not join by itself: it waits in standby ...
    restart(c, "t2")
    url = c.node("t2").public_url
    log = os.path.join(c.node("t2").dir(c.spec.root), "node.log")
    wait_for("t2 in standby", lambda: "in standby: not joining until added" in open(log, encoding="utf-8").read())
    assert t2 not in smap(c).targets and health(url) == 503
    assert "is a target, not a proxy" in ais.fails("cluster", "add", url, "--role", "proxy")
    # ... until an administrator adds it
    added = json.loads(ais("cluster", "add", url, "--role", "target", "--json", "--wait").stdout)
    assert added["daemon_id"] == t2 and added["role"] == "target" and added["rebalance_id"].startswith("g")
    wait_for("t2 healthy", lambda: health(url) == 200)
    assert not os.path.exists(os.path.join(conf, DECOMMISSIONED_FILE))
    assert sorted(smap(c).targets) == sorted([node_id(c, t) for t in c.targets])
    read_all_ok(client, "life", set(names))
    table = ais("show", "cluster").stdout
    assert table.count("online") == 4, table


def test_unsafe_removal_user_data_and_refusals(make_cluster: Any, cli: ForkServer, tmp_path: Any) -> None:
    c, ais, client, names = populated(make_cluster, cli, tmp_path, "rm", "r", 60)
    t0, t1 = node_id(c, c.node("t0")), node_id(c, c.node("t1"))
    primary = smap(c).primary_id

    # refusals: one line naming the problem, nothing changed
    assert "no node 'NoSuchNode'" in ais.fails("cluster", "rm", "NoSuchNode", "-y")
    assert "is the primary" in ais.fails("cluster", "rm", primary, "-y")
    assert "is the primary" in ais.fails("cluster", "shutdown", primary, "-y")
    assert "pass --yes" in ais.fails("cluster", "rm", t0)
    assert "invalid node URL" in ais.fails("cluster", "add", "ftp://x")
    assert "no ais node answers" in ais.fails("cluster", "add", "http://127.0.0.1:1")
    assert len(smap(c).targets) == 3

    # unsafe removal without shutdown: out of the map at once, no rebalance, the process stays up
    out = json.loads(ais("cluster", "rm", t1, "--unsafe", "--no-shutdown", "-y", "--json").stdout)
    assert out == {"node": t1, "action": "rm-unsafe", "rebalance_id": ""}
    assert t1 not in smap(c).targets
    assert exited(c, "t1") is None
    assert not [j for j in client.cluster().list_jobs_status(job_kind="rebalance")]
    out_line = ais("cluster", "add", c.node("t1").public_url.removeprefix("http://"), "--wait").stdout
    assert f"t[{t1}] (target at {c.node('t1').public_url}) joined the cluster" in out_line
    wait_for("t1 back in the map", lambda: t1 in smap(c).targets)

    # shutdown without rebalance: the node keeps its objects; restarted and active again, they are all there
    t2 = node_id(c, c.node("t2"))
    held = files_on(c, "t2", "rm")
    assert held > 0
    ais("cluster", "shutdown", t2, "--no-rebalance", "-y", "--wait")
    wait_for("t2 exits", lambda: exited(c, "t2") is not None)
    assert exited(c, "t2") == 0 and files_on(c, "t2", "rm") == held
    restart(c, "t2")
    wait_for("t2 rejoins", lambda: health(c.node("t2").public_url) == 200)
    ais("cluster", "maintenance", "stop", t2, "--no-rebalance")
    read_all_ok(client, "rm", set(names))

    # decommission with --rm-user-data: everything moved first, then the node's mountpaths emptied
    ais("cluster", "rm", f"t[{t0}]", "--rm-user-data", "-y", "--wait")
    wait_for("t0 exits", lambda: exited(c, "t0") is not None)
    assert all(os.listdir(mp) == [] for mp in c.node("t0").mountpaths)
    read_all_ok(client, "rm", set(names))

    # unsafe removal with shutdown: the process exits
    ais("cluster", "rm", t1, "--unsafe", "-y", "--wait")
    wait_for("t1 exits", lambda: exited(c, "t1") is not None)
    assert exited(c, "t1") == 0 and t1 not in smap(c).targets


def test_node_config(make_cluster: Any, cli: ForkServer, tmp_path: Any) -> None:
    c = make_cluster(targets=2, mountpaths=1)
    ais = Runner(c.endpoint, str(tmp_path / "config"), cli)
    t0, t1 = node_id(c, c.node("t0")), node_id(c, c.node("t1"))
    out = ais("config", "node", t0, "set", "space.check_interval_s=7", "log.level=DEBUG").stdout
    assert "space.check_interval_s  7.0" in out and f"t[{t0}] config updated" in out
    assert ais.json("config", "node", t0, "show", "space.check_interval_s") == {"space.check_interval_s": 7.0}
    assert ais.json("config", "node", t1, "show", "space.check_interval_s") == {"space.check_interval_s": 10.0}
    assert ais.json("config", "cluster", "show", "space.check_interval_s") == {"space.check_interval_s": 10.0}
    assert "unknown config key 'space.nope'" in ais.fails("config", "node", t0, "set", "space.nope=1")
    assert "takes effect only at start-up" in ais.fails("config", "node", t0, "set", "net.public_port=1")
    assert "invalid value 'x'" in ais.fails("config", "node", t0, "set", "space.check_interval_s=x")
    # the node's own change wins over a later cluster-wide one, on that node only
    ais("config", "cluster", "set", "space.check_interval_s=9")
    assert ais.json("config", "node", t0, "show", "space.check_interval_s") == {"space.check_interval_s": 7.0}
    assert ais.json("config", "node", t1, "show", "space.check_interval_s") == {"space.check_interval_s": 9.0}
    # persisted on the node: kept across a restart
    c.restart("t0")
    assert ais.json("config", "node", t0, "show", "log.level") == {"log.level": "DEBUG"}
    # the SDK-style query form, and reset
    req = urllib.request.Request(f"{c.node('t1').public_url}/v1/daemon/set-config?load.max_inflight=77", method="PUT")
    with urllib.request.urlopen(req, timeout=10) as r:
        assert json.loads(r.read()) == {"load.max_inflight": 77}
    assert ais.json("config", "node", t1, "show", "load.max_inflight") == {"load.max_inflight": 77}
    req = urllib.request.Request(f"{c.node('t1').public_url}/v1/daemon/reset-config", method="PUT")
    urllib.request.urlopen(req, timeout=10).close()
    assert ais.json("config", "node", t1, "show", "load.max_inflight") == {"load.max_inflight": 4096}
    # lifecycle actions come from the primary only
    req = urllib.request.Request(f"{c.node('t1').public_url}/v1/daemon", method="PUT",
                                 data=json.dumps({"action": "shutdown-node"}).encode())
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=10)
    assert err.value.code == 403 and health(c.node("t1").public_url) == 200


def test_proxy_shutdown_and_decommission(make_cluster: Any, cli: ForkServer, tmp_path: Any) -> None:
    c = make_cluster(proxies=3, targets=1, mountpaths=1)
    ais = Runner(c.endpoint, str(tmp_path / "config"), cli)
    p1, p2 = node_id(c, c.node("p1")), node_id(c, c.node("p2"))
    # a proxy moves no data: no rebalance, it exits at once and stays in the map in maintenance
    out = json.loads(ais("cluster", "shutdown", f"p[{p1}]", "-y", "--json", "--wait").stdout)
    assert out == {"node": p1, "action": "shutdown-node", "rebalance_id": ""}
    wait_for("p1 exits", lambda: exited(c, "p1") is not None)
    assert exited(c, "p1") == 0 and smap(c).proxies[p1].in_maintenance
    restart(c, "p1")
    wait_for("p1 rejoins", lambda: health(c.node("p1").public_url) == 200)
    ais("cluster", "maintenance", "stop", p1)
    assert not smap(c).proxies[p1].in_maintenance
    # decommissioned: out of the map, and the process is gone
    assert "applies to targets only" in ais.fails("cluster", "rm", p2, "--no-shutdown", "-y")
    ais("cluster", "rm", p2, "-y", "--wait")
    wait_for("p2 exits", lambda: exited(c, "p2") is not None)
    assert exited(c, "p2") == 0 and p2 not in smap(c).proxies and p1 in smap(c).proxies

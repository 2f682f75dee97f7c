"""Several hosts without Kubernetes: deploy/hosts/launch.py starts a cluster whose nodes each run in
their own network namespace with their own address (veth pairs on a bridge), the way separate
machines would, and a client in the host namespace writes and reads through the proxy.

Needs root and `ip netns` (iproute2); skipped with the reason otherwise. Only what the test
creates is removed: its processes (by PID), namespaces, veth pairs and bridge, even on failure.
Addresses come from 198.18.0.0/15 (RFC 2544, benchmarking), a random /24 unused on this machine.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import subprocess
import sys
from typing import Iterator

import pytest
import requests

from deploy.hosts import launch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=check)


def _netns_unavailable() -> str:
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "the ip command (iproute2) is not installed"
    probe = f"aisprobe{os.getpid()}"
    try:
        made = _ip("netns", "add", probe, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"ip netns does not work here: {exc}"
    if made.returncode != 0:
        return f"ip netns does not work here: {made.stderr.strip()}"
    _ip("netns", "del", probe, check=False)
    return ""


def _free_subnet() -> str:
    """'198.18.X' or '198.19.X' with no address or route of this machine in it."""
    used = _ip("-4", "addr").stdout + _ip("-4", "route").stdout
    for _ in range(100):
        first, third = random.choice((18, 19)), random.randrange(256)
        net = f"198.{first}.{third}"
        if f"{net}." not in used:
            return net
    raise RuntimeError("no free /24 in 198.18.0.0/15")


class Namespaces:
    """A bridge with one namespace per node, each with a veth into the bridge and one address."""

    def __init__(self, names: list[str]) -> None:
        tag = hashlib.sha1(f"{os.getpid()}{random.random()}".encode()).hexdigest()[:5]
        self.prefix = f"ais{tag}"
        self.bridge = f"aisbr{tag}"
        self.net = _free_subnet()
        self.names = names
        self.created: list[tuple[str, ...]] = []   # teardown commands, run in reverse

    def address(self, i: int) -> str:
        return f"{self.net}.{10 + i}"

    def ns(self, name: str) -> str:
        return f"{self.prefix}-{name}"

    def up(self) -> None:
        _ip("link", "add", self.bridge, "type", "bridge")
        self.created.append(("link", "del", self.bridge))
        _ip("addr", "add", f"{self.net}.1/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        for i, name in enumerate(self.names):
            ns, host_end, ns_end = self.ns(name), f"aisv{self.prefix[3:]}{i}", f"aisn{self.prefix[3:]}{i}"
            _ip("netns", "add", ns)
            self.created.append(("netns", "del", ns))
            _ip("link", "add", host_end, "type", "veth", "peer", "name", ns_end)
            self.created.append(("link", "del", host_end))
            _ip("link", "set", ns_end, "netns", ns)
            _ip("-n", ns, "link", "set", ns_end, "name", "eth0")
            _ip("-n", ns, "addr", "add", f"{self.address(i)}/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("link", "set", host_end, "master", self.bridge, "up")

    def down(self) -> None:
        for cmd in reversed(self.created):
            _ip(*cmd, check=False)   # a veth is gone once its namespace is
        self.created.clear()


@pytest.fixture
def netns_cluster(tmp_path) -> Iterator[tuple[list[launch.Node], Namespaces, str]]:  # type: ignore[no-untyped-def]
    reason = _netns_unavailable()
    if reason:
        pytest.skip(reason)
    names = ["p0", "t0", "t1"]
    spaces = Namespaces(names)
    run_dir = str(tmp_path / "run")
    try:
        spaces.up()
        hosts = "\n".join([f"proxy p0 {spaces.address(0)} primary"] + [
            f"target {n} {spaces.address(i)} mountpaths={tmp_path}/{n}/mp0,{tmp_path}/{n}/mp1"
            for i, n in enumerate(names) if n != "p0"])
        nodes = launch.parse_hosts(hosts)
        launch.run_local(nodes, run_dir, via=f"ip netns exec {spaces.prefix}-{{name}}", python=sys.executable,
                         wait_s=60)
        yield nodes, spaces, run_dir
    except BaseException:
        for n in names:
            try:
                with open(os.path.join(run_dir, f"{n}.log"), encoding="utf-8", errors="replace") as f:
                    sys.stderr.write(f"----- {n}\n{f.read()[-3000:]}\n")
            except OSError:
                pass
        raise
    finally:
        launch.down_local(run_dir)
        spaces.down()


def test_nodes_in_separate_network_namespaces_serve_writes_and_reads(netns_cluster) -> None:  # type: ignore[no-untyped-def]
    nodes, spaces, run_dir = netns_cluster
    proxy = launch.primary(nodes)
    smap = requests.get(f"{proxy.public_url}/v1/daemon", params={"what": "smap"}, timeout=5).json()
    # every node registered with its own namespace's address, not loopback
    urls = sorted(n["public_net"]["direct_url"] for group in ("pmap", "tmap") for n in smap[group].values())
    assert urls == sorted(n.public_url for n in nodes)
    assert all(u.startswith(f"http://{spaces.net}.") for u in urls)

    from ais.client import Client
    client = Client(proxy.public_url)
    client.create_bucket("netns")
    blobs = {f"obj-{i:03d}": os.urandom(1000 + i) for i in range(40)}
    for name, data in blobs.items():
        client.put_object("netns", name, data)
    for name, data in blobs.items():
        assert client.get_object("netns", name) == data
    assert sorted(e.name for e in client.list_objects("netns")) == sorted(blobs)

    # objects landed on both targets, each in its own namespace (HRW spreads 40 objects)
    per_target = [sum(len(os.listdir(os.path.join(mp, "@ais", "netns", "%ob")))
                      for mp in n.mountpaths if os.path.isdir(os.path.join(mp, "@ais", "netns", "%ob")))
                  for n in nodes if n.role == "target"]
    assert sum(per_target) == len(blobs) and all(per_target), per_target

    # native redirects go to the target's namespace address; a GET through the proxy follows it
    r = requests.get(f"{proxy.public_url}/v1/objects/netns/obj-000", allow_redirects=False, timeout=5)
    assert r.status_code in (301, 307) and r.headers["Location"].startswith(f"http://{spaces.net}.")
    client.destroy_bucket("netns")
    client.close()

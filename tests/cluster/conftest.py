"""Fixtures for cluster tests: real proxy and target processes on 127.0.0.1.

`cluster` is one cluster per test session (1 proxy, 3 targets, 2 mountpaths each) for tests
that do not disturb it; `make_cluster` starts a private one for tests that kill or restart
nodes. Readiness is awaited on the health endpoint; node logs are printed when a test fails.
"""

from __future__ import annotations

import io
import os
import random
import socket
import tarfile
import time
from typing import Any, Callable, Iterator

import pytest

from ais.cli import localcluster
from ais.cli.localcluster import ClusterSpec


def free_base_port(count: int) -> int:
    """A base port with `count` consecutive free ports (checked by binding each).

    Chosen below the kernel's ephemeral range (32768+), where outgoing connections take
    their local ports and could grab a node's port before the node binds it.
    """
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20000, 32000 - count)
        socks = []
        try:
            for p in range(base, base + count):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free port range")


def make_tar(files: dict[str, bytes], mode: str = "w") -> bytes:
    """A tar (`mode` "w:gz" etc. for compressed ones) of `files` (member name -> content)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:   # type: ignore[call-overload]
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def wait_for(pred: Callable[[], Any], timeout_s: float = 30.0, what: str = "condition") -> Any:
    """Poll `pred` until it returns something truthy; fail with `what` after the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(0.05)


class Cluster:
    def __init__(self, root: str, proxies: int = 1, targets: int = 3, mountpaths: int = 2, fsync: bool = True,
                 env: dict[str, str] | None = None, https: bool = False) -> None:
        nodes = proxies + targets
        self.root = root
        self.env = env or {}
        try:
            self.spec: ClusterSpec = localcluster.up(root, proxies, targets, mountpaths,
                                                     free_base_port(2 * nodes), fsync=fsync, env=self.env,
                                                     https=https)
        except BaseException:
            localcluster.down(root)  # never leave half a cluster running
            raise

    @property
    def endpoint(self) -> str:
        return self.spec.endpoint

    def node(self, name: str) -> localcluster.NodeSpec:
        return next(n for n in self.spec.nodes if n.name == name)

    @property
    def targets(self) -> list[localcluster.NodeSpec]:
        return [n for n in self.spec.nodes if n.role == "target"]

    def kill(self, name: str) -> None:
        """SIGKILL one node (only a process this fixture started, by its PID)."""
        import signal
        localcluster.stop_node(self.spec, self.node(name), sig=signal.SIGKILL, wait_s=5)

    def stop(self, name: str) -> None:
        localcluster.stop_node(self.spec, self.node(name))

    def restart(self, name: str) -> None:
        node = self.node(name)
        localcluster.stop_node(self.spec, node)
        localcluster.start_node(self.spec, node, self.env)
        self.spec.save()
        localcluster.wait_ready(self.spec)

    def restart_all(self) -> None:
        localcluster.down(self.root)
        self.spec = localcluster.up(self.root, 0, 0, 0, 0, env=self.env)

    def down(self) -> None:
        localcluster.down(self.root)

    def logs(self) -> str:
        out = []
        for n in self.spec.nodes:
            path = os.path.join(n.dir(self.root), "node.log")
            try:
                with open(path, encoding="utf-8", errors="replace") as f:
                    tail = f.read()[-4000:]
            except OSError:
                tail = "(no log)"
            out.append(f"----- {n.name} ({n.role}) {path}\n{tail}")
        return "\n".join(out)


_started: list[Cluster] = []


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[pytest.TestReport]:
    report = yield
    if report.when == "call" and report.failed:
        for c in _started:
            report.sections.append(("node logs", c.logs()))
    return report


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(str(tmp_path_factory.mktemp("cluster")))
    _started.append(c)
    yield c
    c.down()
    _started.remove(c)


@pytest.fixture
def make_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Cluster]]:
    mine: list[Cluster] = []

    def make(**kw: Any) -> Cluster:
        c = Cluster(str(tmp_path_factory.mktemp("private")), **kw)  # type: ignore[arg-type]
        mine.append(c)
        _started.append(c)
        return c
    yield make
    for c in mine:
        c.down()
        _started.remove(c)


@pytest.fixture
def client(cluster: Cluster):  # type: ignore[no-untyped-def]
    from aistore import Client
    return Client(cluster.endpoint)


@pytest.fixture
def bucket(client, request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """A fresh ais bucket named after the test, destroyed afterwards."""
    import re
    name = re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[:50] + "-" + os.urandom(3).hex()
    b = client.bucket(name)
    b.create()
    yield b
    b.delete(missing_ok=True)


# --- a cluster that uses the cloud emulators (tests/conftest.py) --------------------------------------------

@pytest.fixture(scope="session")
def remote_cluster(tmp_path_factory: pytest.TempPathFactory, moto: Any, gcs: Any, azurite: Any) -> Iterator[Cluster]:
    """A cluster whose targets reach the cloud emulators (1 proxy, 3 targets)."""
    env = {**moto.env, **gcs.env, **azurite.env}
    c = Cluster(str(tmp_path_factory.mktemp("remote")), env=env)
    _started.append(c)
    yield c
    c.down()
    _started.remove(c)

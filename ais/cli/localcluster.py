"""A local cluster of node processes on 127.0.0.1: layout, start, stop, status.

DIR/cluster.json records the nodes (role, ports, pid); each node has DIR/<name>/ with its
config.json, conf/ (node ID, cluster map, bucket metadata), log, and mountpaths (targets).
Starting again on the same DIR reuses ports and directories, so node IDs and objects persist.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from typing import Any

from ais.tls import SelfSigned, make_self_signed

DEFAULT_DIR = os.path.expanduser(os.environ.get("AIS_CLUSTER_DIR", "~/.ais/cluster"))
DEFAULT_PORT = 8080  # below the ephemeral range (32768+), where client sockets could take it
STATE_FILE = "cluster.json"


class ClusterError(Exception):
    """A user-facing error of the local cluster commands."""


@dataclass
class NodeSpec:
    name: str
    role: str
    public_port: int
    intra_port: int
    mountpaths: list[str] = field(default_factory=list)
    pid: int = 0
    scheme: str = "http"

    def dir(self, root: str) -> str:
        return os.path.join(root, self.name)

    @property
    def public_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.public_port}"


@dataclass
class ClusterSpec:
    root: str
    nodes: list[NodeSpec]
    fsync: bool = True
    https: bool = False     # TLS on every listener, with a self-signed CA in DIR/tls (ais.tls)

    @property
    def tls_dir(self) -> str:
        return os.path.join(self.root, "tls")

    @property
    def ca_cert(self) -> str:
        """The CA that clients of an https cluster trust; empty for plain http."""
        return SelfSigned.in_dir(self.tls_dir).ca_cert if self.https else ""

    @property
    def primary(self) -> NodeSpec:
        return self.nodes[0]

    @property
    def endpoint(self) -> str:
        return self.primary.public_url

    def save(self) -> None:
        tmp = os.path.join(self.root, STATE_FILE + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"fsync": self.fsync, "https": self.https, "nodes": [asdict(n) for n in self.nodes]}, f, indent=2)
        os.replace(tmp, os.path.join(self.root, STATE_FILE))

    @classmethod
    def load(cls, root: str) -> "ClusterSpec | None":
        path = os.path.join(root, STATE_FILE)
        if not os.path.exists(path):
            return None
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        return cls(root=root, nodes=[NodeSpec(**n) for n in data["nodes"]], fsync=data.get("fsync", True),
                   https=data.get("https", False))


def plan(root: str, proxies: int, targets: int, mountpaths: int, base_port: int, fsync: bool,
         https: bool = False) -> ClusterSpec:
    if proxies < 1 or targets < 1 or mountpaths < 1:
        raise ClusterError("a cluster needs at least 1 proxy, 1 target and 1 mountpath per target")
    nodes = []
    port = base_port
    for i in range(proxies):
        nodes.append(NodeSpec(f"p{i}", "proxy", port, port + 1))
        port += 2
    for i in range(targets):
        mps = [os.path.join(root, f"t{i}", f"mp{j}") for j in range(mountpaths)]
        nodes.append(NodeSpec(f"t{i}", "target", port, port + 1, mps))
        port += 2
    for n in nodes:
        n.scheme = "https" if https else "http"
    return ClusterSpec(root=os.path.abspath(root), nodes=nodes, fsync=fsync, https=https)


def node_config(spec: ClusterSpec, node: NodeSpec) -> dict[str, Any]:
    d = node.dir(spec.root)
    net: dict[str, Any] = {"hostname": "127.0.0.1", "public_port": node.public_port, "intra_port": node.intra_port}
    if spec.https:   # the CA and certificate are made on the first start
        tls = make_self_signed(spec.tls_dir)
        net.update(use_https=True, server_crt=tls.server_crt, server_key=tls.server_key, ca_cert=tls.ca_cert)
    return {
        "node": {"role": node.role, "conf_dir": os.path.join(d, "conf")},
        "net": net,
        "proxy": {"primary_url": f"{node.scheme}://127.0.0.1:{spec.primary.intra_port}",
                  "is_primary": node is spec.primary},
        "target": {"mountpaths": node.mountpaths, "fsync": spec.fsync},
        "log": {"file": os.path.join(d, "node.log")},
    }


def is_node_process(pid: int, cfg_path: str) -> bool:
    """True only if `pid` is a live aisnode started with this config (never signal a stranger)."""
    if pid <= 0:
        return False
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read().split(b"\0")
    except OSError:
        return False
    return b"ais.node" in cmd and cfg_path.encode() in cmd


# Processes started by this process: poll() them (right after fork, /proc/PID/cmdline still
# shows the parent until exec, so the cmdline check cannot be used for them yet).
_children: dict[int, subprocess.Popen[bytes]] = {}


def node_pid_alive(spec: ClusterSpec, node: NodeSpec) -> bool:
    child = _children.get(node.pid)
    if child is not None:
        return child.poll() is None
    return is_node_process(node.pid, os.path.join(node.dir(spec.root), "config.json"))


def start_node(spec: ClusterSpec, node: NodeSpec, env: dict[str, str] | None = None) -> None:
    d = node.dir(spec.root)
    os.makedirs(d, exist_ok=True)
    for mp in node.mountpaths:
        os.makedirs(mp, exist_ok=True)
    cfg_path = os.path.join(d, "config.json")
    with open(cfg_path, "w", encoding="utf-8") as f:
        json.dump(node_config(spec, node), f, indent=2)
    with open(os.path.join(d, "stdout.log"), "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "ais.node", "--role", node.role, "--config", cfg_path],
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, env={**os.environ, **(env or {})})
    node.pid = proc.pid
    _children[proc.pid] = proc


def _context(ca: str) -> ssl.SSLContext | None:
    return ssl.create_default_context(cafile=ca) if ca else None


def http_ok(url: str, timeout: float = 2.0, ca: str = "") -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=_context(ca)) as r:
            return bool(200 <= r.status < 300)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def wait_ready(spec: ClusterSpec, timeout_s: float = 60.0) -> None:
    """Until every node is healthy and the primary's cluster map lists them all."""
    deadline = time.monotonic() + timeout_s
    pending = list(spec.nodes)
    while time.monotonic() < deadline:
        pending = [n for n in pending if not http_ok(f"{n.public_url}/v1/health", ca=spec.ca_cert)]
        dead = [n for n in spec.nodes if n.pid and not node_pid_alive(spec, n)]
        if dead:
            raise ClusterError(f"node(s) {', '.join(n.name for n in dead)} exited; see "
                               + ", ".join(os.path.join(n.dir(spec.root), "node.log") for n in dead))
        primary = primary_url(spec) if not pending else ""
        if primary and http_ok(f"{primary}/v1/health?prr=true", ca=spec.ca_cert):
            smap = fetch_json(f"{primary}/v1/daemon?what=smap", ca=spec.ca_cert)
            if smap and len(smap.get("pmap", {})) + len(smap.get("tmap", {})) >= len(spec.nodes):
                return
        time.sleep(0.1)
    raise ClusterError(f"cluster not ready after {timeout_s:.0f}s; waiting on "
                       f"{', '.join(n.name for n in pending) or 'the primary'}")


def primary_url(spec: ClusterSpec) -> str:
    """The public URL of the primary as the first proxy that answers sees it (after a failover
    it is no longer the first node); empty if none answers."""
    for n in spec.nodes:
        if n.role == "proxy":
            smap = fetch_json(f"{n.public_url}/v1/daemon?what=smap", ca=spec.ca_cert)
            url = ((smap or {}).get("proxy_si") or {}).get("public_net", {}).get("direct_url", "")
            if url:
                return str(url)
    return ""


def fetch_json(url: str, timeout: float = 3.0, ca: str = "") -> Any:
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=_context(ca)) as r:
            return json.loads(r.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None


def up(root: str, proxies: int, targets: int, mountpaths: int, base_port: int, fsync: bool = True,
       env: dict[str, str] | None = None, https: bool = False) -> ClusterSpec:
    """Start (or resume) the cluster in `root`; `env` adds AIS_* overrides for every node;
    `https`: TLS everywhere, with a CA made for it in `root`/tls (clients: AIS_CLIENT_CA)."""
    root = os.path.abspath(root)
    os.makedirs(root, exist_ok=True)
    spec = ClusterSpec.load(root)
    if spec is None:
        spec = plan(root, proxies, targets, mountpaths, base_port, fsync, https)
    running = [n for n in spec.nodes if node_pid_alive(spec, n)]
    # primary first (it creates the cluster), then everyone else
    for node in spec.nodes:
        if node not in running:
            start_node(spec, node, env)
    spec.save()
    wait_ready(spec)
    return spec


def stop_node(spec: ClusterSpec, node: NodeSpec, sig: int = signal.SIGTERM, wait_s: float = 15.0) -> None:
    if not node_pid_alive(spec, node):
        return
    os.kill(node.pid, sig)
    child = _children.pop(node.pid, None)
    if child is not None:
        try:
            child.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        return
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline and node_pid_alive(spec, node):
        time.sleep(0.05)
    if node_pid_alive(spec, node):
        os.kill(node.pid, signal.SIGKILL)


def down(root: str, purge: bool = False) -> int:
    root = os.path.abspath(root)
    spec = ClusterSpec.load(root)
    if spec is None:
        if purge and os.path.isdir(root):
            shutil.rmtree(root)
        return 0
    stopped = 0
    for node in reversed(spec.nodes):  # targets first, primary last
        if node_pid_alive(spec, node):
            stop_node(spec, node)
            stopped += 1
    if purge:
        shutil.rmtree(root)
    return stopped


def status(root: str) -> list[dict[str, Any]]:
    spec = ClusterSpec.load(os.path.abspath(root))
    if spec is None:
        raise ClusterError(f"no local cluster in {root} (start one with 'ais cluster up')")
    smap = fetch_json(f"{spec.endpoint}/v1/daemon?what=smap", ca=spec.ca_cert) or {}
    ids = {}
    for group in ("pmap", "tmap"):
        for nid, n in (smap.get(group) or {}).items():
            ids[n["public_net"]["direct_url"]] = nid
    primary_url = ((smap.get("proxy_si") or {}).get("public_net") or {}).get("direct_url", "")
    rows = []
    for n in spec.nodes:
        alive = node_pid_alive(spec, n)
        healthy = alive and http_ok(f"{n.public_url}/v1/health", timeout=1.0, ca=spec.ca_cert)
        rows.append({"name": n.name, "role": n.role + (" (primary)" if n.public_url == primary_url else ""),
                     "id": ids.get(n.public_url, "-"), "url": n.public_url, "pid": n.pid if alive else "-",
                     "state": "online" if healthy else ("starting" if alive else "down"),
                     "mountpaths": len(n.mountpaths)})
    return rows

#!/usr/bin/env python3
"""Run a cluster on several hosts from one hosts file (see hosts.example), without Kubernetes.

    launch.py render  HOSTS --out DIR         # the files every host gets, to look at or copy by hand
    launch.py install HOSTS [--ssh CMD]       # over ssh: install the package, config, systemd units; start
    launch.py ctl     HOSTS start|stop|restart|status [--ssh CMD]
    launch.py wait    HOSTS                   # until every node is healthy and in the primary's cluster map
    launch.py run     HOSTS --dir DIR [--via PREFIX]   # start every node on this machine (tests, namespaces)
    launch.py down    --dir DIR               # stop what `run` started

Every node is one systemd instance `aisnode@NAME` (aisnode@.service) with its settings in
/etc/ais/NAME.env: AIS_NODE_ROLE, AIS_NET_HOSTNAME (the node's address from the hosts file, where
it listens and where others reach it), ports, AIS_PROXY_PRIMARY_URL (the primary proxy's intra
URL: how nodes find the primary), AIS_TARGET_MOUNTPATHS and the cluster secret. `install` starts
the primary first and waits for it, then the rest.

`run` starts the nodes as processes of this machine through an optional command prefix, with
{name} and {address} replaced per node: `--via "ip netns exec ais-{name}"` puts each node in its
own network namespace (tests/cluster/test_hosts_netns.py). Only the standard library is needed,
except `run` (this repository's ais package) and `install` (pip, to build the wheel it ships).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Iterable

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
UNIT = "aisnode@.service"
ETC = "/etc/ais"
PREFIX = "/opt/ais"
DATA_ROOT = "/var/lib/ais"


class HostsError(Exception):
    """A bad hosts file, or a step that failed on a host."""


@dataclass
class Node:
    role: str
    name: str
    address: str
    primary: bool = False
    mountpaths: list[str] = field(default_factory=list)
    ssh: str = ""
    public_port: int = 51080
    intra_port: int = 51081

    @property
    def public_url(self) -> str:
        return f"http://{self.address}:{self.public_port}"

    @property
    def intra_url(self) -> str:
        return f"http://{self.address}:{self.intra_port}"

    @property
    def login(self) -> str:
        return self.ssh or self.address


def parse_hosts(text: str) -> list[Node]:
    """The nodes of a hosts file; exactly one proxy ends up primary (the first, unless marked)."""
    nodes: list[Node] = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        words = line.split()
        if len(words) < 3 or words[0] not in ("proxy", "target"):
            raise HostsError(f"line {lineno}: expected 'proxy|target NAME ADDRESS [options]', got {raw.strip()!r}")
        node = Node(words[0], words[1], words[2])
        for opt in words[3:]:
            key, eq, value = opt.partition("=")
            if opt == "primary":
                node.primary = True
            elif eq and key == "mountpaths":
                node.mountpaths = [p for p in value.split(",") if p]
            elif eq and key == "ssh":
                node.ssh = value
            elif eq and key in ("public_port", "intra_port") and value.isdigit():
                setattr(node, key, int(value))
            else:
                raise HostsError(f"line {lineno}: unknown option {opt!r}")
        nodes.append(node)
    _check(nodes)
    return nodes


def _check(nodes: list[Node]) -> None:
    proxies = [n for n in nodes if n.role == "proxy"]
    if not proxies or not any(n.role == "target" for n in nodes):
        raise HostsError("a cluster needs at least one proxy and one target")
    names = [n.name for n in nodes]
    if len(set(names)) != len(names):
        raise HostsError(f"node names must be unique: {names}")
    endpoints = [(n.address, p) for n in nodes for p in (n.public_port, n.intra_port)]
    if len(set(endpoints)) != len(endpoints):
        raise HostsError("two nodes share an address and port")
    for n in nodes:
        if n.primary and n.role != "proxy":
            raise HostsError(f"{n.name}: only a proxy can be primary")
        if n.role == "target" and not n.mountpaths:
            raise HostsError(f"target {n.name} needs mountpaths=/disk1,/disk2")
        if n.role == "proxy" and n.mountpaths:
            raise HostsError(f"proxy {n.name} takes no mountpaths")
        if not all(c.isalnum() or c in "-_." for c in n.name):
            raise HostsError(f"node name {n.name!r}: letters, digits, '-', '_' and '.' only")
    marked = [n for n in proxies if n.primary]
    if len(marked) > 1:
        raise HostsError(f"more than one primary: {[n.name for n in marked]}")
    if not marked:
        proxies[0].primary = True


def primary(nodes: list[Node]) -> Node:
    return next(n for n in nodes if n.primary)


# --- the files of each node ----------------------------------------------------------------------

def node_env(node: Node, nodes: list[Node], secret: str, data_root: str = DATA_ROOT) -> dict[str, str]:
    """AIS_* settings of one node (its EnvironmentFile)."""
    env = {
        "AIS_NODE_ROLE": node.role,
        "AIS_NODE_CONF_DIR": os.path.join(data_root, node.name, "conf"),
        "AIS_NET_HOSTNAME": node.address,
        "AIS_NET_PUBLIC_PORT": str(node.public_port),
        "AIS_NET_INTRA_PORT": str(node.intra_port),
        "AIS_PROXY_PRIMARY_URL": primary(nodes).intra_url,
        "AIS_PROXY_IS_PRIMARY": "true" if node.primary else "false",
        "AIS_CLUSTER_SECRET": secret,
    }
    if node.role == "target":
        env["AIS_TARGET_MOUNTPATHS"] = ",".join(node.mountpaths)
    return env


def env_text(env: dict[str, str]) -> str:
    return "".join(f"{k}={shlex.quote(v)}\n" for k, v in env.items())


def read_env(text: str) -> dict[str, str]:
    """An env file written by env_text (what systemd's EnvironmentFile= reads)."""
    out = {}
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            out[key] = shlex.split(value)[0] if value else ""
    return out


def dropin_text(node: Node, data_root: str = DATA_ROOT) -> str:
    """A per-node drop-in: the unit's ProtectSystem=strict makes everything else read-only."""
    paths = [os.path.join(data_root, node.name)] + node.mountpaths
    return f"[Service]\nReadWritePaths={' '.join(paths)}\n"


def unit_text() -> str:
    with open(os.path.join(HERE, UNIT), encoding="utf-8") as f:
        return f.read()


def base_config(path: str | None) -> str:
    if not path:
        return json.dumps({"log": {"level": "INFO"}}, indent=2) + "\n"
    with open(path, encoding="utf-8") as f:
        text = f.read()
    json.loads(text)   # fail here, not on every host
    return text


def render(nodes: list[Node], out: str, secret: str, config: str | None = None,
           data_root: str = DATA_ROOT) -> list[str]:
    """Write every host's files under out/<name>/ (paths as on the host, below it). The paths written."""
    written = []
    for node in nodes:
        files = {
            f"{ETC}/ais.json": (base_config(config), 0o644),
            f"{ETC}/{node.name}.env": (env_text(node_env(node, nodes, secret, data_root)), 0o600),
            f"/etc/systemd/system/{UNIT}": (unit_text(), 0o644),
            f"/etc/systemd/system/aisnode@{node.name}.service.d/paths.conf": (dropin_text(node, data_root), 0o644),
        }
        for path, (text, mode) in files.items():
            local = os.path.join(out, node.name, path.lstrip("/"))
            os.makedirs(os.path.dirname(local), exist_ok=True)
            with open(local, "w", encoding="utf-8") as f:
                f.write(text)
            os.chmod(local, mode)
            written.append(local)
    return written


# --- remote steps --------------------------------------------------------------------------------

class Remote:
    """Commands on a host through `ssh HOST sh -c CMD` (or any command prefix that takes a host)."""

    def __init__(self, ssh: str, sudo: str, dry_run: bool = False) -> None:
        self.ssh, self.sudo, self.dry_run = shlex.split(ssh), sudo, dry_run

    def run(self, node: Node, cmd: str, stdin: bytes | None = None) -> str:
        full = cmd if not self.sudo else f"{self.sudo} sh -c {shlex.quote(cmd)}"
        argv = self.ssh + [node.login, full]
        if self.dry_run:
            print(f"[{node.name}] {shlex.join(argv)}" + (f"  < {len(stdin)} bytes" if stdin is not None else ""))
            return ""
        proc = subprocess.run(argv, input=stdin, capture_output=True, timeout=600)
        if proc.returncode != 0:
            raise HostsError(f"{node.name} ({node.login}): {cmd!r} failed ({proc.returncode}): "
                             f"{proc.stderr.decode(errors='replace').strip()[-500:]}")
        return proc.stdout.decode(errors="replace")

    def put(self, node: Node, path: str, data: bytes, mode: int, owner: str = "root:root") -> None:
        self.run(node, f"mkdir -p {shlex.quote(os.path.dirname(path))} && cat > {shlex.quote(path)}.tmp"
                       f" && chmod {mode:o} {shlex.quote(path)}.tmp && chown {owner} {shlex.quote(path)}.tmp"
                       f" && mv {shlex.quote(path)}.tmp {shlex.quote(path)}", stdin=data)


def build_wheel(dest: str) -> str:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", dest, ROOT], check=True)
    wheels = [f for f in os.listdir(dest) if f.endswith(".whl")]
    if len(wheels) != 1:
        raise HostsError(f"expected one wheel in {dest}, got {wheels}")
    return os.path.join(dest, wheels[0])


def install(nodes: list[Node], remote: Remote, secret: str, config: str | None, wheel: str | None,
            data_root: str = DATA_ROOT, wait_s: float = 120.0) -> None:
    """Install and start every node: the primary first (waited for), then the others."""
    with tempfile.TemporaryDirectory() as tmp:
        render(nodes, tmp, secret, config, data_root)
        wheel_data = b""
        wheel_name = ""
        if wheel != "none":
            path = wheel or build_wheel(tmp)
            wheel_name = os.path.basename(path)
            with open(path, "rb") as f:
                wheel_data = f.read()
        first = primary(nodes)
        for node in [first] + [n for n in nodes if n is not first]:
            _install_node(node, remote, tmp, wheel_name, wheel_data, data_root)
            if node is first and not remote.dry_run:
                wait_ready([first], wait_s)
        if not remote.dry_run:
            wait_ready(nodes, wait_s)


def _install_node(node: Node, remote: Remote, rendered: str, wheel_name: str, wheel_data: bytes,
                  data_root: str) -> None:
    q = shlex.quote
    remote.run(node, "id -u ais >/dev/null 2>&1 || useradd --system --home-dir /var/lib/ais --no-create-home "
                     "--shell /usr/sbin/nologin ais")
    if wheel_data:
        tmp_wheel = f"/tmp/{wheel_name}"
        remote.put(node, tmp_wheel, wheel_data, 0o644)
        remote.run(node, f"[ -x {PREFIX}/bin/python ] || python3 -m venv {PREFIX}; "
                         f"{PREFIX}/bin/pip install -q --upgrade {q(tmp_wheel)} && rm -f {q(tmp_wheel)}")
    base = os.path.join(rendered, node.name)
    for dirpath, _, files in sorted(os.walk(base)):
        for fname in sorted(files):
            local = os.path.join(dirpath, fname)
            with open(local, "rb") as f:
                remote.put(node, "/" + os.path.relpath(local, base), f.read(), os.stat(local).st_mode & 0o777)
    dirs = [os.path.join(data_root, node.name, "conf")] + node.mountpaths
    remote.run(node, f"mkdir -p {' '.join(map(q, dirs))} && chown ais:ais {' '.join(map(q, dirs))}")
    remote.run(node, f"systemctl daemon-reload && systemctl enable aisnode@{node.name} "
                     f"&& systemctl restart aisnode@{node.name}")


def ctl(nodes: list[Node], remote: Remote, action: str) -> None:
    order = nodes if action != "stop" else list(reversed(nodes))   # the primary stops last
    for node in order:
        out = remote.run(node, f"systemctl {action} aisnode@{node.name}" + (" --no-pager" if action == "status" else ""))
        if out:
            print(out.rstrip())


# --- readiness -----------------------------------------------------------------------------------

def _get(url: str, timeout: float = 2.0) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            body = r.read()
            return json.loads(body) if body else {}
    except (urllib.error.URLError, OSError, ValueError):
        return None


def wait_ready(nodes: list[Node], timeout_s: float = 60.0, alive: Any = None) -> None:
    """Until every node answers /v1/health and the primary's cluster map lists them all.
    `alive()` (optional) raises when a node process is gone, to fail fast."""
    deadline = time.monotonic() + timeout_s
    pending = list(nodes)
    first = primary(nodes)
    while time.monotonic() < deadline:
        if alive is not None:
            alive()
        pending = [n for n in pending if _get(f"{n.public_url}/v1/health") is None]
        if not pending:
            smap = _get(f"{first.public_url}/v1/daemon?what=smap") or {}
            if len(smap.get("pmap", {})) + len(smap.get("tmap", {})) >= len(nodes):
                return
        time.sleep(0.2)
    raise HostsError(f"cluster not ready after {timeout_s:.0f}s; waiting on "
                     f"{', '.join(n.name for n in pending) or 'the primary cluster map'}")


# --- local run -----------------------------------------------------------------------------------

def _pidfile(run_dir: str, node: Node) -> str:
    return os.path.join(run_dir, f"{node.name}.pid")


def run_local(nodes: list[Node], run_dir: str, via: str = "", secret: str = "", config: str | None = None,
              python: str = sys.executable, wait_s: float = 60.0) -> None:
    """Start every node as a process here (through `via`, e.g. `ip netns exec ais-{name}`), primary first."""
    run_dir = os.path.abspath(run_dir)
    os.makedirs(run_dir, exist_ok=True)
    secret = secret or secrets.token_hex(16)
    cfg_path = os.path.join(run_dir, "ais.json")
    with open(cfg_path, "w", encoding="utf-8") as f:
        f.write(base_config(config))
    with open(os.path.join(run_dir, "hosts.json"), "w", encoding="utf-8") as f:
        json.dump([n.__dict__ for n in nodes], f)
    procs: dict[str, subprocess.Popen[bytes]] = {}

    def alive() -> None:
        dead = [name for name, p in procs.items() if p.poll() is not None]
        if dead:
            raise HostsError(f"node(s) {', '.join(dead)} exited; see "
                             + ", ".join(os.path.join(run_dir, f"{d}.log") for d in dead))

    first = primary(nodes)
    for node in [first] + [n for n in nodes if n is not first]:
        env = node_env(node, nodes, secret, data_root=run_dir)
        for mp in node.mountpaths:
            os.makedirs(mp, exist_ok=True)
        prefix = shlex.split(via.format(name=node.name, address=node.address)) if via else []
        argv = prefix + [python, "-m", "ais.node", "--config", cfg_path]
        with open(os.path.join(run_dir, f"{node.name}.log"), "ab") as log:
            proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env={**os.environ, **env}, start_new_session=True, cwd=ROOT)
        procs[node.name] = proc
        with open(_pidfile(run_dir, node), "w", encoding="utf-8") as f:
            f.write(str(proc.pid))
        if node is first:
            wait_ready([first], wait_s, alive)
    wait_ready(nodes, wait_s, alive)


def down_local(run_dir: str, wait_s: float = 15.0) -> int:
    """Stop the nodes `run` started in run_dir (targets first, the primary last). How many were running."""
    from ais.cli.localcluster import is_node_process   # `run` mode has the project installed; ssh modes need not
    run_dir = os.path.abspath(run_dir)
    cfg_path = os.path.join(run_dir, "ais.json")
    try:
        with open(os.path.join(run_dir, "hosts.json"), encoding="utf-8") as f:
            nodes = [Node(**d) for d in json.load(f)]
    except OSError:
        return 0
    stopped = 0
    for node in sorted(nodes, key=lambda n: (n.role == "proxy", n.primary)):
        try:
            with open(_pidfile(run_dir, node), encoding="utf-8") as f:
                pid = int(f.read().strip())
        except (OSError, ValueError):
            continue
        if not is_node_process(pid, cfg_path):
            continue
        stopped += 1
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and is_node_process(pid, cfg_path):
            _reap(pid)
            time.sleep(0.05)
        if is_node_process(pid, cfg_path):
            os.kill(pid, signal.SIGKILL)
        _reap(pid)
    return stopped


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


# --- command line --------------------------------------------------------------------------------

def _secret(args: argparse.Namespace) -> str:
    if getattr(args, "secret_file", None):
        with open(args.secret_file, encoding="utf-8") as f:
            return f.read().strip()
    return os.environ.get("AIS_CLUSTER_SECRET", "") or secrets.token_hex(32)


def main(argv: Iterable[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="launch.py", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)

    def hosts_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument("hosts", help="hosts file (see deploy/hosts/hosts.example)")

    def cluster_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", help="cluster config JSON for every node (default: log level only)")
        p.add_argument("--secret-file", help="file with the cluster secret (default: $AIS_CLUSTER_SECRET, "
                       "else a new random one)")
        p.add_argument("--data-root", default=DATA_ROOT, help="node IDs and metadata under DATA_ROOT/NAME/conf")

    def ssh_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--ssh", default="ssh -o BatchMode=yes", help="command that runs CMD on HOST as: SSH HOST CMD")
        p.add_argument("--sudo", default="sudo", help="privilege prefix on the hosts ('' when logging in as root)")
        p.add_argument("--dry-run", action="store_true", help="print the commands instead of running them")

    p = sub.add_parser("render", help="write every host's files under --out DIR/NAME/")
    hosts_arg(p)
    cluster_args(p)
    p.add_argument("--out", required=True)
    p = sub.add_parser("install", help="install, configure and start every node over ssh")
    hosts_arg(p)
    cluster_args(p)
    ssh_args(p)
    p.add_argument("--wheel", help="the ais-py wheel to install (default: built from this checkout; "
                   "'none' to skip when /opt/ais is already installed)")
    p = sub.add_parser("ctl", help="systemctl start|stop|restart|status on every node")
    hosts_arg(p)
    p.add_argument("action", choices=["start", "stop", "restart", "status"])
    ssh_args(p)
    p = sub.add_parser("wait", help="wait until the cluster is up")
    hosts_arg(p)
    p.add_argument("--timeout", type=float, default=60.0)
    p = sub.add_parser("run", help="start every node on this machine, through --via")
    hosts_arg(p)
    p.add_argument("--config", help="cluster config JSON for every node (default: log level only)")
    p.add_argument("--secret-file", help="file with the cluster secret (default: a new random one)")
    p.add_argument("--dir", required=True, help="node state (DIR/NAME/conf), logs and pid files")
    p.add_argument("--via", default="", help="command prefix per node, with {name} and {address}")
    p = sub.add_parser("down", help="stop the nodes `run` started")
    p.add_argument("--dir", required=True)

    args = ap.parse_args(list(argv) if argv is not None else None)
    try:
        if args.cmd == "down":
            print(f"stopped {down_local(args.dir)} node(s)")
            return 0
        with open(args.hosts, encoding="utf-8") as f:
            nodes = parse_hosts(f.read())
        if args.cmd == "render":
            for path in render(nodes, args.out, _secret(args), args.config, args.data_root):
                print(path)
        elif args.cmd == "install":
            install(nodes, Remote(args.ssh, args.sudo, args.dry_run), _secret(args), args.config, args.wheel,
                    args.data_root)
            print(f"cluster up: AIS_ENDPOINT={primary(nodes).public_url}")
        elif args.cmd == "ctl":
            ctl(nodes, Remote(args.ssh, args.sudo, args.dry_run), args.action)
        elif args.cmd == "wait":
            wait_ready(nodes, args.timeout)
            print(f"cluster up: AIS_ENDPOINT={primary(nodes).public_url}")
        elif args.cmd == "run":
            try:
                run_local(nodes, args.dir, args.via, _secret(args), args.config)
            except BaseException:
                down_local(args.dir)   # never leave half a cluster running
                raise
            print(f"cluster up: AIS_ENDPOINT={primary(nodes).public_url}")
    except (HostsError, OSError, subprocess.CalledProcessError) as exc:
        print(f"launch.py: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

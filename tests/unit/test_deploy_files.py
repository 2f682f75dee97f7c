"""deploy/docker, deploy/hosts and deploy/grafana offline: the Dockerfile's shape (multi-stage,
non-root, health check, only files that exist and the build context lets in), the entrypoint's
command line, the compose file, the multi-host launcher's files and ssh steps, and a dashboard
that queries only documented metrics."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import stat
import sys
from typing import Any

import pytest
import yaml

from ais import config as config_mod
from deploy.hosts import launch
from tests.metrics_doc import documented_metrics

pytestmark = pytest.mark.timeout(60)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOCKER = os.path.join(ROOT, "deploy", "docker")


# --- Docker ----------------------------------------------------------------------------------------

def _instructions(path: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    with open(path, encoding="utf-8") as f:
        text = re.sub(r"\\\n", " ", f.read())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _stages(instructions: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for ins in instructions:
        if ins[0] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(ins)
    return stages


def _ignored(rel: str) -> bool:
    """Whether deploy/docker/Dockerfile.dockerignore keeps `rel` out of the build context (last match wins)."""
    with open(os.path.join(DOCKER, "Dockerfile.dockerignore"), encoding="utf-8") as f:
        rules = [r.strip() for r in f if r.strip() and not r.startswith("#")]
    ignored = False
    for rule in rules:
        negate = rule.startswith("!")
        pattern = rule.lstrip("!")
        if pattern == "**" or fnmatch.fnmatch(rel, pattern) or fnmatch.fnmatch(rel, pattern.replace("/**", "/*")) \
                or (pattern.startswith("**/") and fnmatch.fnmatch(os.path.basename(rel), pattern[3:])):
            ignored = not negate
    return ignored


def test_dockerfile_is_multi_stage_non_root_with_health_check() -> None:
    ins = _instructions(os.path.join(DOCKER, "Dockerfile"))
    build, final = _stages(ins)
    assert build[0][1].endswith("AS build") and "slim" in dict(ins).get("ARG", "")
    assert any(i == "RUN" and 'pip install ".[k8s]"' in a for i, a in build)
    final_d = dict(final)
    user = [a for i, a in final if i == "USER"]
    assert user and user[-1].split(":")[0] not in ("0", "root")
    assert "ais-entrypoint" in final_d["HEALTHCHECK"] and "health" in final_d["HEALTHCHECK"]
    assert json.loads(final_d["ENTRYPOINT"]) == ["ais-entrypoint"]
    assert json.loads(final_d["CMD"]) in (["proxy"], ["target"])
    assert "51080" in final_d["EXPOSE"] and "51081" in final_d["EXPOSE"]
    assert not any(i == "RUN" and "pip" in a for i, a in final)       # nothing built in the final image
    copied = [a for i, a in final if i == "COPY" and "--from=build" in a]
    assert copied == ["--from=build /opt/ais /opt/ais"]


def test_every_copied_file_exists_and_is_in_the_build_context() -> None:
    for ins, args in _instructions(os.path.join(DOCKER, "Dockerfile")):
        if ins != "COPY" or "--from=" in args:
            continue
        words = [w for w in args.split() if not w.startswith("--")]
        for src in words[:-1]:
            assert os.path.exists(os.path.join(ROOT, src)), src
            files = [src] if os.path.isfile(os.path.join(ROOT, src)) else [
                os.path.relpath(os.path.join(d, f), ROOT) for d, _, fs in os.walk(os.path.join(ROOT, src)) for f in fs
                if "__pycache__" not in d]
            assert files and not any(_ignored(f) for f in files), f"{src}: excluded by Dockerfile.dockerignore"
    assert _ignored(".venv/bin/python") and _ignored("tests/unit/test_hrw.py") and _ignored("ais/__pycache__/x.pyc")
    with open(os.path.join(DOCKER, "ais.json"), encoding="utf-8") as f:
        assert config_mod.from_dict(json.load(f)).node.conf_dir == "/var/lib/ais/conf"
    assert os.stat(os.path.join(DOCKER, "entrypoint.py")).st_mode & stat.S_IXUSR


def _entrypoint() -> Any:
    import importlib.util
    spec = importlib.util.spec_from_file_location("entrypoint", os.path.join(DOCKER, "entrypoint.py"))
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_entrypoint_command_line(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    ep = _entrypoint()
    cfg = tmp_path / "ais.json"
    monkeypatch.setenv("AIS_CONFIG", str(cfg))
    monkeypatch.delenv("AIS_NODE_ROLE", raising=False)
    assert ep.aisnode_argv(["proxy"]) == ["aisnode", "--role", "proxy"]          # no config file: defaults + env
    cfg.write_text("{}")
    assert ep.aisnode_argv(["target", "-v"]) == ["aisnode", "--role", "target", "--config", str(cfg), "-v"]
    assert ep.aisnode_argv(["target", "--config", "/x.json"]) == ["aisnode", "--role", "target", "--config", "/x.json"]
    monkeypatch.setenv("AIS_NODE_ROLE", "proxy")
    assert ep.aisnode_argv([]) == ["aisnode", "--role", "proxy", "--config", str(cfg)]
    monkeypatch.delenv("AIS_NODE_ROLE")
    with pytest.raises(SystemExit, match="usage"):
        ep.aisnode_argv(["gateway"])
    monkeypatch.setenv("AIS_NET_HOSTNAME", "10.9.8.7")
    assert ep.node_address() == "10.9.8.7"
    monkeypatch.delenv("AIS_NET_HOSTNAME")
    assert ep.node_address().count(".") == 3          # the container's (here: this machine's) address


def test_compose_file_runs_one_primary_and_targets_with_volumes() -> None:
    with open(os.path.join(DOCKER, "compose.yaml"), encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    services = doc["services"]
    roles = {name: s["command"][0] for name, s in services.items()}
    assert roles == {"proxy": "proxy", "target0": "target", "target1": "target", "target2": "target"}
    for name, s in services.items():
        assert s["image"] == "ais-py:latest"
        for var in s["environment"]:
            assert config_mod.env_overrides({var: ""}), f"{name}: {var} is no config setting"
        mounts = {v.split(":")[1] for v in s["volumes"]}
        assert "/var/lib/ais/conf" in mounts
        if roles[name] == "target":
            assert set(s["environment"]["AIS_TARGET_MOUNTPATHS"].split(",")) <= mounts
            assert s["depends_on"] == {"proxy": {"condition": "service_healthy"}}
    assert services["proxy"]["environment"]["AIS_PROXY_IS_PRIMARY"] == "true"
    assert services["target0"]["environment"]["AIS_PROXY_PRIMARY_URL"] == "http://proxy:51081"


# --- several hosts ---------------------------------------------------------------------------------

HOSTS = os.path.join(ROOT, "deploy", "hosts", "hosts.example")


def _example() -> list[launch.Node]:
    with open(HOSTS, encoding="utf-8") as f:
        return launch.parse_hosts(f.read())


@pytest.mark.parametrize("text, error", [
    ("proxy p0 192.0.2.1\n", "at least one proxy and one target"),
    ("proxy p0 192.0.2.1\ntarget t0 192.0.2.2\n", "needs mountpaths"),
    ("proxy p0 192.0.2.1\ntarget p0 192.0.2.2 mountpaths=/d\n", "unique"),
    ("proxy p0 192.0.2.1\ntarget t0 192.0.2.1 mountpaths=/d\n", "share an address and port"),
    ("proxy p0 192.0.2.1 primary\nproxy p1 192.0.2.3 primary\ntarget t0 192.0.2.2 mountpaths=/d\n", "more than one"),
    ("proxy p0 192.0.2.1\ntarget t0 192.0.2.2 mountpaths=/d primary\n", "only a proxy"),
    ("proxy p0 192.0.2.1 color=red\ntarget t0 192.0.2.2 mountpaths=/d\n", "unknown option"),
    ("gateway g0 192.0.2.1\n", "line 1"),
])
def test_hosts_file_errors(text: str, error: str) -> None:
    with pytest.raises(launch.HostsError, match=error):
        launch.parse_hosts(text)


def test_hosts_file_defaults_and_ports() -> None:
    nodes = launch.parse_hosts("proxy a 192.0.2.1\nproxy b 192.0.2.1 public_port=52080 intra_port=52081 ssh=me@gw\n"
                               "target t 192.0.2.2 mountpaths=/d1,/d2\n")
    assert [n.primary for n in nodes] == [True, False, False]          # the first proxy by default
    assert nodes[1].public_url == "http://192.0.2.1:52080" and nodes[1].login == "me@gw"
    assert nodes[2].login == "192.0.2.2" and nodes[2].mountpaths == ["/d1", "/d2"]


def test_render_writes_each_hosts_env_unit_and_dropin(tmp_path) -> None:  # type: ignore[no-untyped-def]
    nodes = _example()
    written = launch.render(nodes, str(tmp_path), "s3cr3t value")
    assert len(written) == 4 * len(nodes)
    prim = launch.primary(nodes)
    for node in nodes:
        base = tmp_path / node.name
        env_path = base / "etc" / "ais" / f"{node.name}.env"
        assert stat.S_IMODE(env_path.stat().st_mode) == 0o600          # it holds the cluster secret
        env = launch.read_env(env_path.read_text())
        cfg = config_mod.load(str(base / "etc" / "ais" / "ais.json"), environ=env)   # what systemd gives aisnode
        assert (cfg.node.role, cfg.net.hostname, cfg.net.public_port) == (node.role, node.address, node.public_port)
        assert cfg.proxy.primary_url == prim.intra_url and cfg.proxy.is_primary == (node is prim)
        assert cfg.cluster.secret == "s3cr3t value"
        assert list(cfg.target.mountpaths) == node.mountpaths
        assert cfg.node.conf_dir == f"/var/lib/ais/{node.name}/conf"
        dropin = (base / "etc" / "systemd" / "system" / f"aisnode@{node.name}.service.d" / "paths.conf").read_text()
        assert dropin.split("ReadWritePaths=")[1].split() == [f"/var/lib/ais/{node.name}", *node.mountpaths]
    unit = (tmp_path / "p0" / "etc" / "systemd" / "system" / "aisnode@.service").read_text()
    service = dict(line.split("=", 1) for line in unit.split("[Service]")[1].split("[Install]")[0].splitlines()
                   if "=" in line and not line.startswith("#"))
    assert service["EnvironmentFile"] == "/etc/ais/%i.env" and service["User"] == "ais"
    assert service["ExecStart"] == "/opt/ais/bin/aisnode --config /etc/ais/ais.json"
    assert service["ProtectSystem"] == "strict" and service["Restart"] == "on-failure"


def test_install_over_ssh_primary_first(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`install` through a stand-in for ssh that records each host's commands and files."""
    log = tmp_path / "ssh.log"
    fake = tmp_path / "fake-ssh"
    fake.write_text(f"#!{sys.executable}\nimport json, sys\n"
                    f"data = sys.stdin.buffer.read().decode('latin-1')\n"
                    f"open({str(log)!r}, 'a').write(json.dumps([sys.argv[1], sys.argv[2], data]) + '\\n')\n")
    fake.chmod(0o755)
    wheel = tmp_path / "ais_py-0.1.0-py3-none-any.whl"
    wheel.write_bytes(b"PK wheel")
    nodes = _example()
    remote = launch.Remote(str(fake), sudo="")   # install()'s per-node steps, without its wait for health
    rendered = tmp_path / "rendered"
    launch.render(nodes, str(rendered), "topsecret")
    for node in [launch.primary(nodes)] + [n for n in nodes if not n.primary]:
        launch._install_node(node, remote, str(rendered), wheel.name, wheel.read_bytes(), launch.DATA_ROOT)
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    hosts_in_order = list(dict.fromkeys(c[0] for c in calls))
    assert hosts_in_order == [n.address for n in [launch.primary(nodes)] + [n for n in nodes if not n.primary]]
    t0 = [c for c in calls if c[0] == "192.0.2.21"]
    files = {re.search(r"cat > (\S+)\.tmp", c[1]).group(1): c[2] for c in t0 if "cat >" in c[1]}  # type: ignore[union-attr]
    assert set(files) == {"/tmp/ais_py-0.1.0-py3-none-any.whl", "/etc/ais/ais.json", "/etc/ais/t0.env",
                          "/etc/systemd/system/aisnode@.service", "/etc/systemd/system/aisnode@t0.service.d/paths.conf"}
    assert "AIS_TARGET_MOUNTPATHS=/data/nvme0,/data/nvme1" in files["/etc/ais/t0.env"]
    assert "chmod 600 /etc/ais/t0.env.tmp" in next(c[1] for c in t0 if "/etc/ais/t0.env" in c[1])
    commands = [c[1] for c in t0]
    assert "useradd" in commands[0] and "pip install" in commands[2]
    assert commands[-2] == "mkdir -p /var/lib/ais/t0/conf /data/nvme0 /data/nvme1 && " \
                           "chown ais:ais /var/lib/ais/t0/conf /data/nvme0 /data/nvme1"
    assert commands[-1] == "systemctl daemon-reload && systemctl enable aisnode@t0 && systemctl restart aisnode@t0"


def test_install_dry_run_prints_sudo_commands(capsys) -> None:  # type: ignore[no-untyped-def]
    nodes = _example()
    launch.install(nodes, launch.Remote("ssh -o BatchMode=yes", "sudo", dry_run=True), "x", None, "none")
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("[p0] ssh -o BatchMode=yes 192.0.2.11 'sudo sh -c ")
    assert [line.split("]")[0][1:] for line in out if "systemctl enable" in line] == ["p0", "p1", "t0", "t1", "t2"]
    assert shlex.split(out[-1])[-1].startswith("sudo sh -c")
    assert launch.main(["render", HOSTS, "--out", os.devnull + "/x"]) == 1     # errors are one line, rc 1


# --- Grafana -------------------------------------------------------------------------------------------

def test_dashboard_queries_only_documented_metrics() -> None:
    with open(os.path.join(ROOT, "deploy", "grafana", "ais-dashboard.json"), encoding="utf-8") as f:
        dash = json.load(f)
    names = set().union(*(m.series() for m in documented_metrics()))
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    exprs += [v["definition"] for v in dash["templating"]["list"] if "definition" in v]
    assert len(exprs) >= 20
    used = set()
    for expr in exprs:
        for name in re.findall(r"\b((?:ais|process)_[a-z_]+)\b", expr):
            assert name in names, f"{name} (in {expr!r}) is not in deploy/README.md's metrics table"
            used.add(name)
    families = {m.name for m in documented_metrics()}
    unused = {m for m in families if not (set(next(d for d in documented_metrics() if d.name == m).series()) & used)}
    assert unused <= {"process_virtual_memory_bytes", "process_start_time_seconds"}, unused
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)) and dash["uid"] and all(p["gridPos"]["w"] <= 24 for p in dash["panels"])
    assert {t["datasource"]["uid"] for p in dash["panels"] for t in p.get("targets", [])} == {"${datasource}"}


# --- the README's guides -----------------------------------------------------------------------------

def _running_it() -> str:
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        text = f.read()
    return text.split("## Running it", 1)[1].split("\n## ", 1)[0]


def test_readme_guides_name_real_files_and_commands() -> None:
    section = _running_it()
    for path in set(re.findall(r"(?<![\w/])((?:\./)?deploy/[\w./@-]+[\w])", section)):
        assert os.path.exists(os.path.join(ROOT, path)), f"README names {path}, which does not exist"
    hosts_block = re.search(r"### On several hosts.*?```text\n(.*?)```", section, re.S)
    assert hosts_block and len(launch.parse_hosts(hosts_block.group(1))) == 4
    for sub in re.findall(r"launch\.py (\w+)", section):
        assert sub in ("render", "install", "ctl", "wait", "run", "down"), sub
    for overlay in re.findall(r"kubectl apply -k (\S+)", section):
        assert os.path.isfile(os.path.join(ROOT, overlay, "kustomization.yaml"))
    assert "deploy/k8s/render.py deploy/k8s/overlays/production --validate 1.30" in section

"""The image's entrypoint (deploy/docker/entrypoint.py) run here as the container runs it: with
the image's default config and AIS_* variables only, it starts a proxy and a target that form a
cluster, and its `health` mode (the image's HEALTHCHECK) reports each node up, then down."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import requests

from tests.cluster.conftest import free_base_port

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENTRYPOINT = os.path.join(ROOT, "deploy", "docker", "entrypoint.py")


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"node exited with {proc.returncode}"
        try:
            if requests.get(f"{url}/v1/health", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} not healthy after {timeout_s}s")


def test_entrypoint_starts_nodes_that_form_a_cluster(tmp_path) -> None:  # type: ignore[no-untyped-def]
    port = free_base_port(4)
    config = tmp_path / "ais.json"
    shutil.copy(os.path.join(ROOT, "deploy", "docker", "ais.json"), config)   # the image's /etc/ais/ais.json
    base = {k: v for k, v in os.environ.items() if not k.startswith("AIS_")}
    base.update(PATH=os.path.dirname(sys.executable) + os.pathsep + base.get("PATH", ""), AIS_CONFIG=str(config),
                AIS_NET_HOSTNAME="127.0.0.1", AIS_CLUSTER_SECRET="entrypoint-test",
                AIS_PROXY_PRIMARY_URL=f"http://127.0.0.1:{port + 1}")
    proxy_env = {**base, "AIS_NET_PUBLIC_PORT": str(port), "AIS_NET_INTRA_PORT": str(port + 1),
                 "AIS_PROXY_IS_PRIMARY": "true", "AIS_NODE_CONF_DIR": str(tmp_path / "p0")}
    target_env = {**base, "AIS_NET_PUBLIC_PORT": str(port + 2), "AIS_NET_INTRA_PORT": str(port + 3),
                  "AIS_NODE_ROLE": "target", "AIS_TARGET_MOUNTPATHS": str(tmp_path / "mp0"),
                  "AIS_NODE_CONF_DIR": str(tmp_path / "t0")}
    procs: list[subprocess.Popen[bytes]] = []
    log = open(tmp_path / "nodes.log", "wb")
    try:
        procs.append(subprocess.Popen([sys.executable, ENTRYPOINT, "proxy"], env=proxy_env, stdout=log,
                                      stderr=subprocess.STDOUT, start_new_session=True))
        _wait_healthy(f"http://127.0.0.1:{port}", procs[0])
        procs.append(subprocess.Popen([sys.executable, ENTRYPOINT], env=target_env, stdout=log,   # role from env
                                      stderr=subprocess.STDOUT, start_new_session=True))
        _wait_healthy(f"http://127.0.0.1:{port + 2}", procs[1])
        for env in (proxy_env, target_env):
            assert subprocess.run([sys.executable, ENTRYPOINT, "health"], env=env, timeout=30).returncode == 0

        endpoint = f"http://127.0.0.1:{port}"
        smap = requests.get(f"{endpoint}/v1/daemon", params={"what": "smap"}, timeout=10).json()
        assert len(smap["tmap"]) == 1 and len(smap["pmap"]) == 1
        from ais.client import Client
        client = Client(endpoint)
        client.create_bucket("ep")
        client.put_object("ep", "hello", b"from a container")
        assert client.get_object("ep", "hello") == b"from a container"
        client.close()
        cmdline = open(f"/proc/{procs[1].pid}/cmdline", "rb").read().split(b"\0")
        assert cmdline[cmdline.index(b"--role") + 1] == b"target" and str(config).encode() in cmdline   # exec'd aisnode
    except BaseException:
        log.flush()
        sys.stderr.write((tmp_path / "nodes.log").read_text(errors="replace")[-4000:])
        raise
    finally:
        for p in reversed(procs):
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        log.close()
    assert [p.returncode for p in procs] == [0, 0]    # graceful stop on SIGTERM (docker stop)
    assert subprocess.run([sys.executable, ENTRYPOINT, "health"], env=proxy_env, timeout=30,
                          capture_output=True).returncode == 1

"""The README's several-hosts guide, tried on one machine as the README says: its shell block runs
as written (loopback addresses standing in for hosts, a private directory and fresh addresses
substituted so parallel runs do not collide), and the cluster it starts serves the CLI."""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys

from deploy.hosts import launch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _guide_block() -> str:
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        text = f.read()
    m = re.search(r"Try it on one machine.*?```bash\n(.*?)```", text, re.S)
    assert m, "README lost its one-machine try of the several-hosts guide"
    return m.group(1)


def test_readme_several_hosts_guide_on_one_machine(tmp_path) -> None:  # type: ignore[no-untyped-def]
    block = _guide_block()
    net = f"127.{random.randrange(1, 255)}.{random.randrange(1, 255)}"
    script = block.replace("/tmp/ais-hosts", str(tmp_path / "ais-hosts")).replace("/tmp/ais-data", str(tmp_path / "data"))
    for i in (2, 3, 4):
        script = script.replace(f"127.0.0.{i}", f"{net}.{i}")
    script = script.replace(".venv/bin/", os.path.dirname(sys.executable) + "/")
    run_dir = str(tmp_path / "ais-hosts")
    env = {k: v for k, v in os.environ.items() if k not in ("AIS_ENDPOINT", "AIS_CLI_CONFIG")}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    try:
        r = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=ROOT, env=env, capture_output=True,
                           text=True, timeout=120)
        assert r.returncode == 0, f"{r.stdout}\n{r.stderr}"
    finally:
        launch.down_local(run_dir)    # whatever the block left running
    assert f"cluster up: AIS_ENDPOINT=http://{net}.2:51080" in r.stdout
    assert f"http://{net}.3:51080" in r.stdout and f"http://{net}.4:51080" in r.stdout   # `ais show cluster`
    assert "1 proxy, 2 targets" in r.stdout
    assert "stopped 3 node(s)" in r.stdout
    for t in ("t0", "t1"):   # each target took its mountpath, and kept its ID in the run directory
        assert "%wk" in os.listdir(tmp_path / "data" / t)
        assert os.listdir(tmp_path / "ais-hosts" / t / "conf")

"""`ais cluster up|status|down` as a user runs them: a real subprocess per command."""

import json
import os
import subprocess
import sys

from aistore import Client

from tests.cluster.conftest import free_base_port

AIS = [sys.executable, "-m", "ais.cli.main"]


def ais(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*AIS, *args], capture_output=True, text=True, timeout=120)


def test_up_status_down_keeps_data_and_ids(tmp_path) -> None:  # type: ignore[no-untyped-def]
    d = str(tmp_path / "c")
    port = free_base_port(8)
    try:
        up = ais("cluster", "up", "--dir", d, "--port", str(port), "--targets", "3", "--mountpaths", "2")
        assert up.returncode == 0, up.stderr
        assert f"AIS_ENDPOINT=http://127.0.0.1:{port}" in up.stdout
        st = ais("cluster", "status", "--dir", d, "--json")
        rows = json.loads(st.stdout)
        assert [r["state"] for r in rows] == ["online"] * 4
        assert rows[0]["role"] == "proxy (primary)" and all(r["id"] != "-" for r in rows)
        table = ais("cluster", "status", "--dir", d).stdout.splitlines()
        assert table[0].split()[:3] == ["NAME", "ROLE", "ID"] and len(table) == 5

        client = Client(f"http://127.0.0.1:{port}")
        client.bucket("keep").create()
        client.bucket("keep").object("a/b").get_writer().put_content(b"persisted")
        ids = sorted(client.cluster().get_info().tmap)

        down = ais("cluster", "down", "--dir", d)
        assert down.returncode == 0 and "stopped 4 node(s)" in down.stdout
        assert [r["state"] for r in json.loads(ais("cluster", "status", "--dir", d, "--json").stdout)] == ["down"] * 4

        again = ais("cluster", "up", "--dir", d)
        assert again.returncode == 0, again.stderr
        assert client.bucket("keep").object("a/b").get_reader().read_all() == b"persisted"
        assert sorted(client.cluster().get_info().tmap) == ids
    finally:
        purge = ais("cluster", "down", "--dir", d, "--purge", "--yes")
    assert purge.returncode == 0 and not os.path.exists(d)


def test_status_without_cluster_is_a_one_line_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    r = ais("cluster", "status", "--dir", str(tmp_path / "none"))
    assert r.returncode == 1 and r.stderr.startswith("ais: no local cluster") and "Traceback" not in r.stderr

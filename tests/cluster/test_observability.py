"""Observability against a real cluster: every metric documented in deploy/README.md is in the
/metrics of proxies and targets (parsed with prometheus-client's parser) with its type and labels,
and nothing undocumented is; `ais show performance` reports the same numbers; and log lines of
every node carry the request ID a client sent."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from typing import Any

import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.metrics_doc import documented_metrics

def _families(url: str) -> dict[str, Any]:
    text = requests.get(f"{url}/metrics", timeout=10).text
    return {f.name: f for f in text_string_to_metric_families(text)}


def _traffic(endpoint: str) -> None:
    """Requests of every kind the table labels: PUT, GET, an error, and a job on every target."""
    from ais.client import Client
    client = Client(endpoint)
    src, dst = f"obs-{uuid.uuid4().hex[:6]}", f"obs-dst-{uuid.uuid4().hex[:6]}"
    client.create_bucket(src)
    for i in range(6):
        client.put_object(src, f"o{i}", b"x" * 100)
        assert client.get_object(src, f"o{i}") == b"x" * 100
    assert requests.get(f"{endpoint}/v1/objects/{src}/missing", timeout=10).status_code == 404
    from aistore import Client as SdkClient
    sdk = SdkClient(endpoint)
    job = sdk.bucket(src).copy(sdk.bucket(dst))
    sdk.job(job).wait(timeout=60)
    for b in (src, dst):
        client.destroy_bucket(b)
    client.close()


def test_every_documented_metric_is_exported_and_nothing_else(cluster) -> None:  # type: ignore[no-untyped-def]
    _traffic(cluster.endpoint)
    doc = documented_metrics()
    proxy = next(n for n in cluster.spec.nodes if n.role == "proxy")
    for node in (proxy, cluster.targets[0]):
        fams = _families(node.public_url)
        for m in doc:
            if m.nodes == "target" and node.role != "target":
                assert m.family not in fams, f"{m.name} documented for targets only, but {node.name} exports it"
                continue
            assert m.family in fams, f"{m.name} is documented but not in {node.name}'s /metrics"
            fam = fams[m.family]
            assert fam.type == m.type, f"{m.name}: documented as {m.type}, exported as {fam.type}"
            main = [s for s in fam.samples if not s.name.endswith("_created")]
            for s in main:
                labels = set(s.labels) - {"le"}
                assert labels == m.labels, f"{s.name} on {node.name}: labels {sorted(labels)}, documented {sorted(m.labels)}"
        documented = {m.family for m in doc}
        documented |= {f"{m.family}_created" for m in doc}   # prometheus-client's creation timestamps
        undocumented = sorted(set(fams) - documented)
        assert not undocumented, f"{node.name} exports metrics missing from deploy/README.md: {undocumented}"

    # the traffic above shows up under the documented labels
    target_fams = [_families(t.public_url) for t in cluster.targets]

    def total(name: str, **labels: str) -> float:
        return sum(s.value for f in target_fams for s in f[name].samples
                   if s.name.endswith("_total") and all(s.labels.get(k) == v for k, v in labels.items()))
    assert total("ais_requests", verb="PUT", group="objects") >= 6
    assert total("ais_bytes_sent", verb="GET") >= 600
    assert total("ais_job_objects", kind="copy-bck") >= 6
    assert total("ais_jobs_finished", kind="copy-bck", result="ok") >= 1
    assert sum(s.value for f in target_fams for s in f["ais_load_grade"].samples) >= 6 * len(target_fams)
    pfams = _families(cluster.endpoint)
    assert any(s.labels.get("status") == "404" for s in pfams["ais_errors"].samples + target_fams[0]["ais_errors"].samples
               + target_fams[1]["ais_errors"].samples + target_fams[2]["ais_errors"].samples)


def test_show_performance_reads_the_metrics(cluster, tmp_path) -> None:  # type: ignore[no-untyped-def]
    _traffic(cluster.endpoint)
    env = {**os.environ, "AIS_ENDPOINT": cluster.endpoint, "XDG_CONFIG_HOME": str(tmp_path)}
    smap = requests.get(f"{cluster.endpoint}/v1/daemon", params={"what": "smap"}, timeout=10).json()
    expected = {}
    for tid, t in smap["tmap"].items():
        fams = _families(t["public_net"]["direct_url"])
        gets = sum(s.value for s in fams["ais_requests"].samples if s.name.endswith("_total")
                   and s.labels["verb"] == "GET" and s.labels["group"] in ("objects", "s3"))
        sent = sum(s.value for s in fams["ais_bytes_sent"].samples if s.name.endswith("_total"))
        expected[tid] = (int(gets), int(sent), {s.labels["dimension"] for s in fams["ais_load_grade"].samples})
    out = subprocess.run([sys.executable, "-m", "ais.cli.main", "show", "performance", "--json"], env=env,
                         capture_output=True, text=True, timeout=60, check=True).stdout
    import json
    perf = json.loads(out)
    assert sorted(perf) == sorted(expected)
    for tid, (gets, sent, dims) in expected.items():
        assert (perf[tid]["get"], perf[tid]["bytes_sent"]) == (gets, sent)   # no object request in between
        assert set(perf[tid]["grades"]) == dims and perf[tid]["overall"] in ("low", "moderate", "high", "critical")
    table = subprocess.run([sys.executable, "-m", "ais.cli.main", "show", "performance"], env=env,
                           capture_output=True, text=True, timeout=60, check=True).stdout.splitlines()
    assert table[0].split()[:3] == ["TARGET", "CPU", "MEM"] and "GET LATENCY" in table[0]
    assert sum(line.startswith("t[") for line in table) == len(expected)


def test_log_lines_carry_the_request_id_on_every_node(cluster) -> None:  # type: ignore[no-untyped-def]
    current = requests.get(f"{cluster.endpoint}/v1/daemon", params={"what": "config"}, timeout=10).json()
    value = current["load"]["foreground_yield_ms"]    # set to what it is: a new config version, no change
    rid = f"obs{uuid.uuid4().hex[:12]}"
    r = requests.put(f"{cluster.endpoint}/v1/cluster/set-config", params={"load.foreground_yield_ms": str(value)},
                     headers={"Ais-Request-Id": rid}, timeout=30)
    assert r.status_code == 200, r.text
    assert r.headers.get("Ais-Request-Id") == rid
    for node in cluster.spec.nodes:
        with open(os.path.join(node.dir(cluster.root), "node.log"), encoding="utf-8", errors="replace") as f:
            lines = [line for line in f if f"[{rid}]" in line]
        assert any("cluster config v" in line for line in lines), f"{node.name}: no log line with [{rid}]"

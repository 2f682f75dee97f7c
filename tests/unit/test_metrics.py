"""NodeMetrics in-process: cold GETs and job statistics as documented in deploy/README.md (the
cluster tests cannot make every sample: cold GETs need a cloud, failed and aborted jobs a fault)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ais.metrics import NodeMetrics
from tests.metrics_doc import documented_metrics

pytestmark = pytest.mark.timeout(30)


@dataclass
class FakeJob:
    kind: str
    objects: int = 0
    bytes: int = 0
    end_ns: int = 0
    aborted: bool = False
    errors: list[str] = field(default_factory=list)


def _samples(m: NodeMetrics) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for fam in text_string_to_metric_families(m.render().decode()):
        for s in fam.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def test_cold_gets_and_jobs_with_their_documented_labels() -> None:
    m = NodeMetrics("target", "t1")
    m.cold_get("aws", 1000)
    m.cold_get("aws", 24)
    m.cold_get("gcp", 5)
    jobs = {"a": FakeJob("copy-bck", 3, 300), "b": FakeJob("copy-bck", 2, 200, end_ns=1),
            "c": FakeJob("prefetch-listrange", 1, 10, end_ns=1, errors=["x"]),
            "d": FakeJob("prefetch-listrange", 0, 0, end_ns=1, aborted=True)}
    m.watch_jobs(jobs)
    s = _samples(m)
    assert sorted((lab["provider"], v) for lab, v in s["ais_cold_gets_total"]) == [("aws", 2), ("gcp", 1)]
    assert s["ais_bytes_received_total"] == [({"verb": "COLD"}, 1029)]
    assert sorted((lab["kind"], v) for lab, v in s["ais_jobs_running"]) == [("copy-bck", 1), ("prefetch-listrange", 0)]
    assert sorted((lab["kind"], lab["result"], v) for lab, v in s["ais_jobs_finished_total"]) == [
        ("copy-bck", "ok", 1), ("prefetch-listrange", "aborted", 1), ("prefetch-listrange", "error", 1)]
    assert sorted((lab["kind"], v) for lab, v in s["ais_job_objects_total"]) == [("copy-bck", 5), ("prefetch-listrange", 1)]
    assert sorted((lab["kind"], v) for lab, v in s["ais_job_bytes_total"]) == [("copy-bck", 500), ("prefetch-listrange", 10)]
    jobs["a"].objects += 4    # read at scrape time: a running job's progress shows at once
    assert dict((lab["kind"], v) for lab, v in _samples(m)["ais_job_objects_total"])["copy-bck"] == 9
    doc = {d.name: d.labels for d in documented_metrics()}
    for name in ("ais_cold_gets_total", "ais_jobs_running", "ais_jobs_finished_total", "ais_job_objects_total",
                 "ais_job_bytes_total"):
        assert {frozenset(lab) for lab, _ in s[name]} == {doc[name]}, name
    assert s["process_cpu_seconds_total"][0][1] >= 0 and s["process_open_fds"][0][1] > 0

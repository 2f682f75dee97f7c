"""The metrics table of deploy/README.md, read by the tests that hold it to /metrics and to the
Grafana dashboard."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "deploy", "README.md")


@dataclass(frozen=True)
class DocMetric:
    name: str                 # as written in PromQL: ais_requests_total, ais_request_latency_seconds
    type: str                 # counter, gauge, histogram
    labels: frozenset[str]
    nodes: str                # "all" or "target"

    @property
    def family(self) -> str:
        """The family name prometheus_client's parser reports (a counter's without `_total`)."""
        return self.name[: -len("_total")] if self.type == "counter" and self.name.endswith("_total") else self.name

    def series(self) -> set[str]:
        """Every name PromQL may use for it."""
        if self.type == "histogram":
            return {self.name + s for s in ("_bucket", "_sum", "_count")}
        return {self.name}


def documented_metrics() -> list[DocMetric]:
    with open(README, encoding="utf-8") as f:
        text = f.read()
    section = text.split("### Metrics", 1)[1].split("\n### ", 1)[0]
    rows = []
    for line in section.splitlines():
        m = re.match(r"\|\s*`([a-z_:]+)`\s*\|\s*(\w+)\s*\|([^|]*)\|\s*(\w+)\s*\|", line)
        if m:
            labels = frozenset(re.findall(r"`(\w+)`", m.group(3)))
            rows.append(DocMetric(m.group(1), m.group(2), labels, m.group(4)))
    assert rows, "deploy/README.md lost its metrics table"
    return rows

"""Prometheus metrics of one node: requests, bytes and latency per verb, errors by status."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client import CONTENT_TYPE_LATEST

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class NodeMetrics:
    """Owned by a node's app; never a module-level singleton."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, role: str, node_id: str) -> None:
        self.registry = CollectorRegistry()
        labels = ["verb"]
        self.requests = Counter("ais_requests", "Requests served", labels + ["group"], registry=self.registry)
        self.errors = Counter("ais_errors", "Requests answered with an error status",
                              labels + ["status"], registry=self.registry)
        self.latency = Histogram("ais_request_latency_seconds", "Request latency until the handler returns",
                                 labels + ["group"], buckets=_LATENCY_BUCKETS, registry=self.registry)
        self.bytes_in = Counter("ais_bytes_received", "Object bytes received", labels, registry=self.registry)
        self.bytes_out = Counter("ais_bytes_sent", "Object bytes sent", labels, registry=self.registry)
        self.info = Counter("ais_node_info", "Node identity", ["role", "node"], registry=self.registry)
        self.info.labels(role=role, node=node_id).inc(0)
        self._children: dict[tuple[str, str], tuple[Counter, Histogram]] = {}

    def observe(self, verb: str, group: str, status: int, seconds: float) -> None:
        """Count one request; label children are created once per (verb, group), not per request."""
        key = (verb, group)
        children = self._children.get(key)
        if children is None:
            children = (self.requests.labels(verb=verb, group=group), self.latency.labels(verb=verb, group=group))
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)
        if status >= 400:
            self.errors.labels(verb=verb, status=str(status)).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)

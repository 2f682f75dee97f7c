"""Prometheus metrics of one node: requests, bytes and latency per verb, errors by status, cold
GETs, jobs, and the process. Every family is documented in deploy/README.md (a test holds the
table and /metrics to each other); targets add the load monitor's gauges (target/load.py)."""

from __future__ import annotations

from typing import Iterator, Mapping, Protocol, Sequence

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector, generate_latest
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

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
        self.cold_gets = Counter("ais_cold_gets", "Objects fetched from a remote backend and stored (cold GETs)",
                                 ["provider"], registry=self.registry)
        self.fast_lane = Counter("ais_fast_lane", "Requests answered in the fast lane, and connections it handed "
                                 "to the regular handlers", ["outcome"], registry=self.registry)
        self._jobs = _JobCollector()
        self.registry.register(self._jobs)
        ProcessCollector(registry=self.registry)   # process_cpu_seconds_total, process_resident_memory_bytes, ...
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

    def cold_get(self, provider: str, n_bytes: int) -> None:
        """One object fetched from a backend and stored (its bytes count as received, verb COLD)."""
        self.cold_gets.labels(provider=provider).inc()
        self.bytes_in.labels(verb="COLD").inc(n_bytes)

    def watch_jobs(self, jobs: Mapping[str, "JobStats"]) -> None:
        """Export these jobs (a target's registry, read at scrape time: no cost per object)."""
        self._jobs.jobs = jobs

    def render(self) -> bytes:
        return generate_latest(self.registry)


class JobStats(Protocol):
    """What the job metrics read of a job (target.jobs.base.Job)."""
    @property
    def kind(self) -> str: ...
    @property
    def objects(self) -> int: ...
    @property
    def bytes(self) -> int: ...
    @property
    def end_ns(self) -> int: ...
    @property
    def aborted(self) -> bool: ...
    @property
    def errors(self) -> Sequence[str]: ...


class _JobCollector:
    """Jobs per kind, summed over the jobs a target keeps: running now, finished by result, and
    objects and bytes processed so far (finished and running jobs alike)."""

    def __init__(self) -> None:
        self.jobs: Mapping[str, JobStats] = {}

    def collect(self) -> Iterator[Metric]:
        running = GaugeMetricFamily("ais_jobs_running", "Jobs running now", labels=["kind"])
        finished = CounterMetricFamily("ais_jobs_finished", "Jobs finished, by result (ok, error, aborted)",
                                       labels=["kind", "result"])
        objects = CounterMetricFamily("ais_job_objects", "Objects processed by jobs", labels=["kind"])
        nbytes = CounterMetricFamily("ais_job_bytes", "Bytes processed by jobs", labels=["kind"])
        per_kind: dict[str, list[int]] = {}
        ended: dict[tuple[str, str], int] = {}
        for job in list(self.jobs.values()):
            acc = per_kind.setdefault(job.kind, [0, 0, 0])
            acc[1] += job.objects
            acc[2] += job.bytes
            if not job.end_ns:
                acc[0] += 1
                continue
            result = "aborted" if job.aborted else "error" if job.errors else "ok"
            ended[(job.kind, result)] = ended.get((job.kind, result), 0) + 1
        for kind, (n_running, n_objects, n_bytes) in sorted(per_kind.items()):
            running.add_metric([kind], n_running)
            objects.add_metric([kind], n_objects)
            nbytes.add_metric([kind], n_bytes)
        for (kind, result), n in sorted(ended.items()):
            finished.add_metric([kind, result], n)
        yield from (running, finished, objects, nbytes)

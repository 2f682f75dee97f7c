"""Per-target load monitor: samples /proc every second, grades each dimension, advises throttling.

Dimensions (DESIGN §9, reference §10): disk utilisation per mountpath, CPU, memory, network
throughput (external and loopback) against link capacity, in-flight requests (our analogue of
AIStore's goroutine count) and open files. Parsers and graders are pure functions over /proc
text; `LoadMonitor` owns the previous sample, the latest `LoadSnapshot` and the gauges.
Background jobs ask `advice()` how long to sleep and how often to ask again; admission of
batch-get and cold GET asks `critical()` (memory, open files, in-flight only).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import math
import os
import resource
import time
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Gauge

from ais.config import Config, LoadSection

log = logging.getLogger(__name__)

MAX_MASK, SMALL_MASK, MIN_MASK = 0x1FFF, 0x1F, 0xF    # check every 8192, 32, 16 operations
SLEEP_1MS, SLEEP_10MS, SLEEP_100MS = 0.001, 0.01, 0.1


class Grade(enum.IntEnum):
    LOW = 1
    MODERATE = 2
    HIGH = 3
    CRITICAL = 4


def parse_diskstats(text: str) -> dict[str, int]:
    """Device name → milliseconds spent doing I/Os (field 13)."""
    return {f[2]: int(f[12]) for f in map(str.split, text.splitlines()) if len(f) >= 13}


def parse_net_dev(text: str) -> tuple[int, int]:
    """(external, loopback) received + transmitted bytes, summed over interfaces."""
    external = loopback = 0
    for line in text.splitlines():
        name, sep, rest = line.partition(":")
        f = rest.split()
        if not sep or len(f) < 9 or not f[0].isdigit():
            continue
        nbytes = int(f[0]) + int(f[8])
        if name.strip() == "lo":
            loopback += nbytes
        else:
            external += nbytes
    return external, loopback


def parse_cpu(text: str) -> tuple[int, int, int]:
    """(busy jiffies, total jiffies, number of CPUs) from /proc/stat."""
    busy = total = ncpu = 0
    for line in text.splitlines():
        f = line.split()
        if f and f[0] == "cpu":
            ticks = [int(x) for x in f[1:9]]          # user..steal; guest is inside user
            total = sum(ticks)
            busy = total - ticks[3] - ticks[4]         # minus idle and iowait
        elif f and f[0].startswith("cpu"):
            ncpu += 1
    return busy, total, max(ncpu, 1)


def parse_meminfo(text: str) -> dict[str, int]:
    """Key → kB."""
    out = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        f = rest.split()
        if f and f[0].isdigit():
            out[key] = int(f[0])
    return out


def block_device(path: str, sys_root: str = "/sys") -> str | None:
    """Whole-disk name under `path` (a partition maps to its parent); None for overlay, tmpfs..."""
    try:
        dev = os.stat(path).st_dev
    except OSError:
        return None
    link = os.path.join(sys_root, "dev", "block", f"{os.major(dev)}:{os.minor(dev)}")
    if not os.path.exists(link):
        return None
    real = os.path.realpath(link)
    if os.path.exists(os.path.join(real, "partition")):
        real = os.path.dirname(real)
    return os.path.basename(real)


def rate(prev: int, cur: int, elapsed_s: float) -> float:
    """Per-second rate of a growing counter (0 if it went back, e.g. a counter reset)."""
    return max(cur - prev, 0) / elapsed_s if elapsed_s > 0 else 0.0


def util_pct(prev_io_ms: int, cur_io_ms: int, elapsed_s: float) -> float:
    """Disk busy time as a percentage of wall time."""
    return min(100.0, rate(prev_io_ms, cur_io_ms, elapsed_s) / 10)       # ms per s → percent


def grade_pct(pct: float, cfg: LoadSection) -> Grade:
    """Disk (and network) utilisation against the disk watermarks."""
    if pct >= cfg.disk_util_max_wm:
        return Grade.CRITICAL
    if pct > cfg.disk_util_high_wm:
        return Grade.HIGH
    return Grade.MODERATE if pct > cfg.disk_util_low_wm else Grade.LOW


def grade_cpu(pct: float, ncpu: int) -> Grade:
    if pct >= 95:
        return Grade.CRITICAL
    if pct >= max(100 - 100 / ncpu, 1):
        return Grade.HIGH
    return Grade.MODERATE if pct > 50 else Grade.LOW


def grade_memory(avail_pct: float, swap_growths: int, cfg: LoadSection) -> Grade:
    """memsys pressure: `swap_growths` counts recent checks on which swap usage grew."""
    if swap_growths > 1 or avail_pct <= cfg.mem_min_free_pct:
        return Grade.CRITICAL
    if swap_growths > 0:
        return Grade.HIGH
    if avail_pct > cfg.mem_low_wm_pct * 17 / 16:
        return Grade.LOW
    span = max(cfg.mem_low_wm_pct - cfg.mem_min_free_pct, 1)
    return Grade.HIGH if (avail_pct - cfg.mem_min_free_pct) * 100 / span < 40 else Grade.MODERATE


def swap_trend(growths: int, prev_kb: int | None, cur_kb: int) -> int:
    """AIStore's `ncrit`: up on each check where swap usage grew, down otherwise (capped at 3)."""
    if prev_kb is not None and cur_kb > prev_kb:
        return min(growths + 1, 3)
    return max(growths - 1, 0)


def grade_count(n: int, limit: int) -> Grade:
    """Critical at `limit`, High at half, Moderate at a quarter."""
    if n >= limit:
        return Grade.CRITICAL
    if n >= limit / 2:
        return Grade.HIGH
    return Grade.MODERATE if n >= limit / 4 else Grade.LOW


@dataclass(frozen=True)
class Advice:
    sleep_s: float
    check_mask: int      # 2^k - 1: check again after every (mask + 1) operations
    grade: Grade

    def should_check(self, n: int) -> bool:
        return n & self.check_mask == self.check_mask


def _escalate(sleep_s: float, floor_s: float, next_s: float) -> float:
    return max(next_s, sleep_s) if sleep_s >= floor_s else floor_s


def advise(mem: Grade, cpu: Grade, inflight: Grade, disk: Grade, rw: bool = True) -> Advice:
    """AIStore's `load.Advice.Refresh`, step by step; in-flight requests stand for goroutines."""
    if mem == Grade.CRITICAL:                        # 1) memory: short-circuits everything
        return Advice(SLEEP_100MS, MIN_MASK, Grade.CRITICAL)
    sleep_s = SLEEP_10MS if mem == Grade.HIGH else 0.0
    mask = SMALL_MASK if mem >= Grade.MODERATE else MAX_MASK
    grade: Grade = mem
    if cpu == Grade.CRITICAL and inflight == Grade.CRITICAL:   # 2) CPU and concurrency
        sleep_s, mask, grade = _escalate(sleep_s, SLEEP_10MS, SLEEP_100MS), min(mask, MIN_MASK), Grade.CRITICAL
    elif Grade.CRITICAL in (cpu, inflight):
        sleep_s, mask, grade = _escalate(sleep_s, SLEEP_1MS, SLEEP_10MS), min(mask, SMALL_MASK), Grade.CRITICAL
    elif Grade.HIGH in (cpu, inflight):
        sleep_s, mask, grade = max(sleep_s, SLEEP_1MS), min(mask, SMALL_MASK), max(grade, Grade.HIGH)
    if disk == Grade.CRITICAL:                       # 3) disk
        sleep_s, mask, grade = _escalate(sleep_s, SLEEP_10MS, SLEEP_100MS), min(mask, MIN_MASK), Grade.CRITICAL
    elif disk == Grade.HIGH:
        sleep_s, mask, grade = max(sleep_s, SLEEP_1MS), min(mask, SMALL_MASK), max(grade, Grade.HIGH)
    if not rw and grade < Grade.CRITICAL:            # 4) metadata-only: no sleep, 16× fewer checks
        sleep_s, mask = 0.0, min(((mask + 1) << 4) - 1, MAX_MASK)
    return Advice(sleep_s, mask, grade)


@dataclass(frozen=True)
class _Raw:
    """One reading of the counters, taken in one executor hop."""
    at_s: float
    disk_ms: dict[str, int | None]      # mountpath → I/O ms (None: not a block device we know)
    net: tuple[int, int]
    cpu: tuple[int, int, int]
    mem: dict[str, int]
    open_files: int


@dataclass(frozen=True)
class LoadSnapshot:
    disk_util_pct: dict[str, float | None]   # None: utilisation unknown (graded Low)
    cpu_pct: float
    mem_available_pct: float
    net_bytes_per_s: float
    loopback_bytes_per_s: float
    inflight: int
    inflight_bytes: int
    open_files: int
    disk_grades: dict[str, Grade]
    grades: dict[str, Grade]     # memory, cpu, disk, network, inflight, open_files

    @property
    def overall(self) -> Grade:
        return max(self.grades.values(), default=Grade.LOW)

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k not in ("grades", "disk_grades")}
        d["disk_grades"] = {mp: g.name.lower() for mp, g in self.disk_grades.items()}
        d["grades"] = {dim: g.name.lower() for dim, g in self.grades.items()}
        d["overall"] = self.overall.name.lower()
        return d


def _read_text(path: str) -> str:
    with open(path, encoding="ascii") as f:
        return f.read()


def _open_files(nofile: int) -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:          # EMFILE: we are at the limit
        return nofile


class LoadMonitor:
    """Owned by the target app; `run()` is its background task."""

    def __init__(self, cfg: Config, mountpaths: tuple[str, ...], registry: CollectorRegistry | None,
                 busy: str = "") -> None:
        self.cfg = cfg
        self.mountpaths = mountpaths
        self.busy = busy    # test hook (target.slow_mountpath): a mountpath that always reads 100% busy
        self.inflight = 0
        self.inflight_bytes = 0
        self.foreground_ns = 0   # monotonic time of the last client read (GET/HEAD of an object)
        self.samples = 0
        self._devices: dict[str, str | None] | None = None
        self._prev: _Raw | None = None
        self._swap_used_kb: int | None = None
        self._swap_growths = 0
        self._nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        self.snapshot = self._build(None, None)
        self._gauges = self._make_gauges(registry) if registry is not None else None
        if self._gauges is not None:
            self._export(self.snapshot)   # every gauge is in /metrics from the start, not after a sample

    # in-flight accounting, called by request handlers on the event loop
    def begin(self, n_bytes: int = 0) -> None:
        self.inflight += 1
        self.inflight_bytes += n_bytes

    def end(self, n_bytes: int = 0) -> None:
        self.inflight -= 1
        self.inflight_bytes -= n_bytes

    def foreground_read(self) -> None:
        """A client is reading: background jobs yield for a while (see `foreground_active`)."""
        self.foreground_ns = time.monotonic_ns()

    def foreground_active(self, within_s: float = 0.1) -> bool:
        return time.monotonic_ns() - self.foreground_ns < within_s * 1e9

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                self._update(await loop.run_in_executor(None, self._read))
            except OSError as exc:
                log.warning("load sample failed, keeping the previous one: %s", exc)
            await asyncio.sleep(self.cfg.load.sample_interval_s)

    def update_now(self) -> LoadSnapshot:
        """Take one sample synchronously (tests, start-up)."""
        self._update(self._read())
        return self.snapshot

    def advice(self, rw: bool = True, mountpath: str | None = None) -> Advice:
        """Throttling for a job: per mountpath when given, else the busiest disk."""
        s = self.snapshot
        disk = s.disk_grades.get(mountpath, Grade.LOW) if mountpath else s.grades["disk"]
        return advise(s.grades["memory"], s.grades["cpu"], s.grades["inflight"], disk, rw)

    def workers(self, wanted: int) -> int:
        """A job's worker count scaled down with load: Low all, Moderate 3/4, High 1/2, Critical 1."""
        scale = {Grade.LOW: 1.0, Grade.MODERATE: 0.75, Grade.HIGH: 0.5, Grade.CRITICAL: 0.0}
        return max(1, int(wanted * scale[self.snapshot.overall]))

    def critical(self) -> bool:
        """Admission: refuse new batch-get / cold GET work.

        Only resources whose exhaustion can take the node down count: memory, open files and
        in-flight requests. A disk, CPU or link at 100% slows background jobs (`advice`) but
        never turns a client away: the request queues briefly instead of failing.
        """
        g = self.snapshot.grades
        return (self.inflight >= self.cfg.load.max_inflight
                or any(g.get(dim) == Grade.CRITICAL for dim in ("memory", "open_files", "inflight")))

    def retry_after_s(self) -> int:
        return max(1, math.ceil(2 * self.cfg.load.sample_interval_s))

    # sampling: blocking part (executor), then pure arithmetic on the loop
    def _read(self) -> _Raw:
        if self._devices is None:
            self._devices = {mp: block_device(mp) for mp in self.mountpaths}
            log.info("block devices of mountpaths: %s", self._devices)
        stats = parse_diskstats(_read_text("/proc/diskstats"))
        return _Raw(time.monotonic(), {mp: stats.get(d) if d else None for mp, d in self._devices.items()},
                    parse_net_dev(_read_text("/proc/net/dev")), parse_cpu(_read_text("/proc/stat")),
                    parse_meminfo(_read_text("/proc/meminfo")), _open_files(self._nofile))

    def _update(self, raw: _Raw) -> None:
        swap_kb = raw.mem.get("SwapTotal", 0) - raw.mem.get("SwapFree", 0)
        self._swap_growths = swap_trend(self._swap_growths, self._swap_used_kb, swap_kb)
        self._swap_used_kb = swap_kb
        self.snapshot = self._build(self._prev, raw)
        self._prev = raw
        self.samples += 1
        if self._gauges is not None:
            self._export(self.snapshot)

    def _build(self, prev: _Raw | None, cur: _Raw | None) -> LoadSnapshot:
        cfg = self.cfg.load
        dt = cur.at_s - prev.at_s if cur and prev else 0.0
        util: dict[str, float | None] = {mp: None for mp in self.mountpaths}
        cpu_pct = net = lo = 0.0
        if cur and prev and dt > 0:
            for mp, ms in cur.disk_ms.items():
                old = prev.disk_ms.get(mp)
                util[mp] = None if ms is None or old is None else util_pct(old, ms, dt)
            if self.busy:
                util[self.busy] = 100.0
            busy, total = cur.cpu[0] - prev.cpu[0], cur.cpu[1] - prev.cpu[1]
            cpu_pct = 100.0 * busy / total if total > 0 else 0.0
            net, lo = rate(prev.net[0], cur.net[0], dt), rate(prev.net[1], cur.net[1], dt)
        mem = cur.mem if cur else {}
        avail = 100.0 * mem.get("MemAvailable", 1) / max(mem.get("MemTotal", 1), 1)
        # only traffic through a NIC uses the link: loopback is reported, not graded
        link_pct = 100.0 * net / (cfg.link_capacity_mbps * 1e6 / 8)
        disk_grades = {mp: grade_pct(u or 0.0, cfg) for mp, u in util.items()}
        open_files = cur.open_files if cur else 0
        grades = {
            "memory": grade_memory(avail, self._swap_growths, cfg),
            "cpu": grade_cpu(cpu_pct, cur.cpu[2] if cur else 1),
            "disk": max(disk_grades.values(), default=Grade.LOW),
            "network": grade_pct(link_pct, cfg),
            "inflight": grade_count(self.inflight, cfg.max_inflight),
            "open_files": grade_count(open_files * 100, self._nofile * cfg.max_open_files_pct),
        }
        return LoadSnapshot(util, cpu_pct, avail, net, lo, self.inflight, self.inflight_bytes, open_files,
                            disk_grades, grades)

    def _make_gauges(self, reg: CollectorRegistry) -> dict[str, Gauge]:
        specs = {
            "grade": ("ais_load_grade", "Load grade per dimension, 1 (low) .. 4 (critical)", ["dimension"]),
            "disk": ("ais_disk_util_percent", "Disk utilisation per mountpath", ["mountpath"]),
            "cpu": ("ais_cpu_percent", "CPU utilisation", []),
            "mem": ("ais_mem_available_percent", "Available memory", []),
            "net": ("ais_net_bytes_per_second", "Network bytes received + sent", ["link"]),
            "inflight": ("ais_inflight_requests", "Requests in flight", []),
            "files": ("ais_open_files", "Open file descriptors of the process", []),
        }
        return {k: Gauge(name, doc, labels, registry=reg) for k, (name, doc, labels) in specs.items()}

    def _export(self, s: LoadSnapshot) -> None:
        g = self._gauges
        assert g is not None
        for dim, grade in s.grades.items():
            g["grade"].labels(dimension=dim).set(int(grade))
        for mp, util in s.disk_util_pct.items():
            if util is not None:
                g["disk"].labels(mountpath=mp).set(util)
        g["cpu"].set(s.cpu_pct)
        g["mem"].set(s.mem_available_pct)
        g["net"].labels(link="external").set(s.net_bytes_per_s)
        g["net"].labels(link="loopback").set(s.loopback_bytes_per_s)
        g["inflight"].set(s.inflight)
        g["files"].set(s.open_files)


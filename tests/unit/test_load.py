"""The load monitor: /proc parsers on canned text, grades, AIStore's advice algorithm, gauges."""

import asyncio
import dataclasses
import json
import os
import threading

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from ais import config
from target import load
from target.load import Grade, LoadMonitor, advise

pytestmark = pytest.mark.timeout(20)

LOW, MOD, HIGH, CRIT = Grade.LOW, Grade.MODERATE, Grade.HIGH, Grade.CRITICAL
CFG = config.load(None, {})

DISKSTATS = """\
   7       0 loop0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
 254       0 vda 672972 111950 45260642 1622186 5042539 450532 769067936 3585264 0 {io_ms} 5806322 0 0 0 0 0 0
 254       1 vda1 1 2 3 4 5 6 7 8 0 77 9 0 0 0 0 0 0
"""
NET_DEV = """\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo: {lo} 71319160    0    0    0     0          0         0 {lo} 71319160    0    0    0     0       0          0
  eth0:{rx}   48680    0    0    0     0          0         0  {tx}   29436    0    0    0     0       0          0
  eth1: 500 1 0 0 0 0 0 0 500 1 0 0 0 0 0 0
"""
STAT = """\
cpu  {user} 0 {system} {idle} {iowait} 0 100 0 0 0
cpu0 1 0 1 1 1 0 0 0 0 0
cpu1 1 0 1 1 1 0 0 0 0 0
intr 12345 0 0
"""
MEMINFO = """\
MemTotal:       {total} kB
MemFree:        100 kB
MemAvailable:   {avail} kB
SwapTotal:      0 kB
"""


def test_diskstats_delta_gives_utilisation() -> None:
    before = load.parse_diskstats(DISKSTATS.format(io_ms=1_000))
    after = load.parse_diskstats(DISKSTATS.format(io_ms=1_500))
    assert before["vda"] == 1_000 and before["vda1"] == 77 and before["loop0"] == 0
    assert load.util_pct(before["vda"], after["vda"], 1.0) == pytest.approx(50.0)
    assert load.util_pct(before["vda"], after["vda"], 2.0) == pytest.approx(25.0)
    assert load.util_pct(0, 5_000, 1.0) == 100.0          # capped (counter skew)
    assert load.util_pct(after["vda"], before["vda"], 1.0) == 0.0


def test_net_dev_sums_external_and_reports_loopback_apart() -> None:
    ext0, lo0 = load.parse_net_dev(NET_DEV.format(lo=10, rx=1_000, tx=2_000))
    ext1, lo1 = load.parse_net_dev(NET_DEV.format(lo=510, rx=4_000, tx=9_000))
    assert (ext0, lo0) == (4_000, 20)
    assert load.rate(ext0, ext1, 2.0) == pytest.approx((14_000 - 4_000) / 2)
    assert load.rate(lo0, lo1, 1.0) == pytest.approx(1_000)


def test_proc_stat_delta_gives_cpu_percent() -> None:
    b0, t0, n = load.parse_cpu(STAT.format(user=1_000, system=500, idle=8_000, iowait=400))
    b1, t1, _ = load.parse_cpu(STAT.format(user=1_600, system=700, idle=8_100, iowait=500))
    assert n == 2 and t0 == 10_000 and b0 == 1_600
    assert 100 * (b1 - b0) / (t1 - t0) == pytest.approx(80.0)


def test_meminfo_grades_available_memory() -> None:
    info = load.parse_meminfo(MEMINFO.format(total=1_000_000, avail=40_000))
    assert info["MemTotal"] == 1_000_000 and info["MemAvailable"] == 40_000
    cfg = CFG.load                                   # min free 5 %, low watermark 20 %
    assert load.grade_memory(4.0, 0, cfg) == CRIT and load.grade_memory(5.0, 0, cfg) == CRIT
    assert load.grade_memory(21.0, 0, cfg) == MOD    # not above 20·17/16 = 21.25
    assert load.grade_memory(21.3, 0, cfg) == LOW
    assert load.grade_memory(10.0, 0, cfg) == HIGH   # (10−5)·100/15 = 33 < 40
    assert load.grade_memory(12.0, 0, cfg) == MOD    # 46 ≥ 40
    assert load.grade_memory(90.0, 1, cfg) == HIGH   # swap grew on a recent check
    assert load.grade_memory(90.0, 2, cfg) == CRIT


def test_swap_growth_counts_up_and_down() -> None:
    assert load.swap_trend(0, None, 500) == 0        # first reading: nothing to compare
    assert load.swap_trend(0, 100, 200) == 1 and load.swap_trend(2, 100, 200) == 3
    assert load.swap_trend(3, 100, 200) == 3         # capped
    assert load.swap_trend(2, 200, 200) == 1 and load.swap_trend(0, 300, 200) == 0


def test_block_device_maps_partitions_to_their_disk(tmp_path) -> None:  # type: ignore[no-untyped-def]
    dev = os.stat(tmp_path).st_dev
    disk = tmp_path / "devices" / "sdz"
    (disk / "sdz3").mkdir(parents=True)
    (disk / "sdz3" / "partition").write_text("3\n")
    (tmp_path / "dev" / "block").mkdir(parents=True)
    os.symlink(disk / "sdz3", tmp_path / "dev" / "block" / f"{os.major(dev)}:{os.minor(dev)}")
    assert load.block_device(str(tmp_path), sys_root=str(tmp_path)) == "sdz"
    assert load.block_device("/proc") is None       # procfs: no block device, utilisation unknown


def test_grade_boundaries() -> None:
    cfg = CFG.load
    assert [load.grade_pct(p, cfg) for p in (20, 20.5, 80, 80.5, 94.9, 95)] == [LOW, MOD, MOD, HIGH, HIGH, CRIT]
    assert [load.grade_cpu(p, 2) for p in (49.9, 50, 94.9, 95)] == [LOW, HIGH, HIGH, CRIT]
    assert [load.grade_cpu(p, 16) for p in (50, 50.1, 93.7, 93.75)] == [LOW, MOD, MOD, HIGH]
    assert load.grade_cpu(1.0, 1) == HIGH            # max(100 − 100/1, 1) = 1 %
    assert [load.grade_count(n, 8) for n in (1, 2, 4, 7, 8)] == [LOW, MOD, HIGH, HIGH, CRIT]


@pytest.mark.parametrize("grades, rw, sleep_s, mask", [
    ((LOW, LOW, LOW, LOW), True, 0.0, 8191),
    ((CRIT, CRIT, CRIT, CRIT), False, 0.1, 15),     # memory critical short-circuits, even for rw=False
    ((CRIT, LOW, LOW, LOW), True, 0.1, 15),
    ((HIGH, LOW, LOW, LOW), True, 0.01, 31),
    ((MOD, LOW, LOW, LOW), True, 0.0, 31),
    ((LOW, CRIT, LOW, LOW), True, 0.001, 31),       # CPU or concurrency critical
    ((LOW, LOW, CRIT, LOW), True, 0.001, 31),
    ((LOW, CRIT, CRIT, LOW), True, 0.01, 15),       # both critical
    ((HIGH, CRIT, LOW, LOW), True, 0.01, 31),       # already ≥ 1 ms → 10 ms
    ((HIGH, CRIT, CRIT, LOW), True, 0.1, 15),       # already ≥ 10 ms → 100 ms
    ((LOW, HIGH, LOW, LOW), True, 0.001, 31),
    ((LOW, LOW, LOW, CRIT), True, 0.01, 15),        # disk critical
    ((LOW, CRIT, LOW, CRIT), True, 0.01, 15),       # 1 ms (CPU) is below 10 ms → 10 ms
    ((HIGH, LOW, LOW, CRIT), True, 0.1, 15),
    ((LOW, LOW, LOW, HIGH), True, 0.001, 31),
    ((LOW, HIGH, LOW, HIGH), False, 0.0, 511),      # metadata-only under High: no sleep, 16× fewer checks
    ((MOD, LOW, LOW, LOW), False, 0.0, 511),
    ((LOW, LOW, LOW, LOW), False, 0.0, 8191),       # capped at every 8192
    ((LOW, CRIT, LOW, LOW), False, 0.001, 31),      # critical: metadata work backs off too
])
def test_advice_algorithm(grades: tuple[Grade, Grade, Grade, Grade], rw: bool, sleep_s: float, mask: int) -> None:
    a = advise(*grades, rw=rw)
    assert (a.sleep_s, a.check_mask) == (pytest.approx(sleep_s), mask)


def test_should_check_every_mask_plus_one_ops() -> None:
    a = advise(LOW, HIGH, LOW, LOW)
    assert [n for n in range(100) if a.should_check(n)] == [31, 63, 95]


def _with_grades(mon: LoadMonitor, **grades: Grade) -> None:
    dims = dict.fromkeys(("memory", "cpu", "disk", "network", "inflight", "open_files"), LOW) | grades
    mon.snapshot = dataclasses.replace(mon.snapshot, grades=dims, disk_grades={"/a": grades.get("disk", LOW)})


def test_monitor_advice_workers_and_admission_follow_the_snapshot() -> None:
    mon = LoadMonitor(CFG.updated({"load.max_inflight": 2}), ("/a",), None)
    assert mon.advice() == advise(LOW, LOW, LOW, LOW) and mon.workers(8) == 8 and not mon.critical()
    _with_grades(mon, memory=HIGH)
    assert mon.advice().sleep_s == pytest.approx(0.01) and mon.workers(8) == 4
    _with_grades(mon, disk=CRIT)
    assert mon.advice(mountpath="/a").check_mask == 15 and mon.advice(mountpath="/b").check_mask == 8191
    assert not mon.critical()    # a saturated disk paces jobs but turns no client away
    _with_grades(mon, cpu=CRIT)
    assert mon.workers(8) == 1 and not mon.critical()
    _with_grades(mon, memory=CRIT)
    assert mon.critical()
    _with_grades(mon, network=MOD)
    assert mon.workers(8) == 6 and mon.workers(1) == 1
    _with_grades(mon, open_files=CRIT)
    assert mon.workers(8) == 1 and mon.critical() and mon.retry_after_s() >= 1
    _with_grades(mon)
    mon.begin(100)
    mon.begin(50)
    assert mon.critical() and mon.inflight_bytes == 150    # live in-flight count at the limit
    mon.end(100)
    assert not mon.critical() and mon.update_now().grades["inflight"] == HIGH


def test_config_section_and_env_override() -> None:
    cfg = config.load(None, {"AIS_LOAD_LINK_CAPACITY_MBPS": "25000", "AIS_LOAD_MAX_INFLIGHT": "7"})
    assert cfg.load.link_capacity_mbps == 25000.0 and cfg.load.max_inflight == 7
    assert cfg.load.sample_interval_s == 1.0 and cfg.load.disk_util_max_wm == 95


def test_gauges_are_exported(tmp_path) -> None:  # type: ignore[no-untyped-def]
    reg = CollectorRegistry()
    mon = LoadMonitor(CFG, (str(tmp_path),), reg)
    mon.begin()
    mon.update_now()
    mon.update_now()
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for fam in text_string_to_metric_families(generate_latest(reg).decode()) for s in fam.samples}
    names = {name for name, _ in samples}
    assert {"ais_load_grade", "ais_cpu_percent", "ais_mem_available_percent", "ais_net_bytes_per_second",
            "ais_inflight_requests", "ais_open_files"} <= names
    grades = {dict(lab)["dimension"]: v for (n, lab), v in samples.items() if n == "ais_load_grade"}
    assert set(grades) == {"memory", "cpu", "disk", "network", "inflight", "open_files"}
    assert all(1 <= v <= 4 for v in grades.values())
    assert samples[("ais_inflight_requests", ())] == 1 and samples[("ais_open_files", ())] > 0
    util = [v for (n, _), v in samples.items() if n == "ais_disk_util_percent"]
    assert mon.snapshot.disk_util_pct[str(tmp_path)] is None or util and 0 <= util[0] <= 100


def test_run_samples_real_proc_off_the_loop(tmp_path) -> None:  # type: ignore[no-untyped-def]
    mon = LoadMonitor(CFG.updated({"load.sample_interval_s": 0.05}), (str(tmp_path), "/proc"), None)
    threads: set[int] = set()
    read = mon._read

    def spy() -> load._Raw:
        threads.add(threading.get_ident())
        return read()

    mon._read = spy  # type: ignore[method-assign]

    async def two_samples() -> None:
        task = asyncio.create_task(mon.run())
        while mon.samples < 2:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(two_samples())
    s = mon.snapshot
    assert mon.samples >= 2
    assert threads and threading.get_ident() not in threads
    assert 0 <= s.cpu_pct <= 100 and 0 < s.mem_available_pct <= 100
    assert s.net_bytes_per_s >= 0 and s.loopback_bytes_per_s >= 0 and s.open_files > 0
    assert s.disk_util_pct["/proc"] is None and s.disk_grades["/proc"] == LOW
    util = s.disk_util_pct[str(tmp_path)]
    assert util is None or 0 <= util <= 100
    assert s.overall == max(s.grades.values())
    assert json.loads(json.dumps(s.to_dict()))["overall"] in ("low", "moderate", "high", "critical")

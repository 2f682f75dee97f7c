"""The pure parts of the benchmark tools (benchmarks/aisloader.py, benchmarks/bench_report.py):
percentiles, target specs, key and operation pickers, the SigV4 signer, medians, ratios, goals,
tables, the chart and the README section; plus one tiny cell against a local HTTP server and one
dd cell. No cluster; a few seconds."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import threading

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                                "benchmarks"))
import aisloader  # noqa: E402
import bench_report as br  # noqa: E402

KiB, MiB = 1 << 10, 1 << 20


# --------------------------------------------------------------------------- aisloader: pure parts
def test_pct_nearest_rank():
    vals = [float(i) for i in range(101)]
    assert [aisloader.pct(vals, q) for q in (0, .5, .9, .99, 1)] == [0, 50, 90, 99, 100]
    assert aisloader.pct([], .5) is None
    assert aisloader.pct([7.0], .99) == 7.0
    lat = aisloader.lat_summary([0.001, 0.002, 0.003, 0.004])
    assert lat["max"] == 4.0 and lat["mean"] == 2.5 and lat["p50"] in (2.0, 3.0)
    assert aisloader.lat_summary([]) == {"p50": None, "p90": None, "p99": None, "max": None, "mean": None}


def test_sizes_and_mix():
    assert aisloader.parse_size("16KiB") == 16 * KiB
    assert aisloader.parse_size("8MiB") == 8 * MiB
    assert aisloader.parse_size("1MB") == 10**6
    assert aisloader.human_size(64 * MiB) == "64MiB" and aisloader.human_size(1000) == "1000B"
    assert aisloader.parse_mix("get=80,put=20") == [("get", 80), ("put", 20)]
    for bad in ("get=80,del=20", "get", "get=0"):
        with pytest.raises(argparse.ArgumentTypeError):
            aisloader.parse_mix(bad)


def test_parse_target():
    t = aisloader.parse_target("swift=s3:http://127.0.0.1:33480/,ak=test:tester,sk=testing,pids=/x/*.pid+7")
    assert (t.name, t.kind, t.url, t.ak, t.sk, t.pids) == ("swift", "s3", "http://127.0.0.1:33480", "test:tester",
                                                           "testing", ["/x/*.pid", "7"])
    d = aisloader.parse_target("dd=dd:/tmp/c,bytes=1GiB,sizes=8MiB")
    assert d.bytes == 1 << 30 and d.serves("put", 8 * MiB) and not d.serves("put", 16 * KiB)
    assert not d.serves("get", 8 * MiB)
    n = aisloader.parse_target("nginx:http://h:1,root=/w,ops=get")
    assert (n.name, n.kind, n.root) == ("nginx", "plain", "/w") and not n.serves("put", 1)
    b = aisloader.parse_target("batch:http://h:1,batch=8")
    assert b.batch == 8 and b.serves("get", 1) and not b.serves("put", 1)
    for bad in ("x=nope:http://h:1", "ais=ais:http://h:1,color=red", "ais=ais:"):
        with pytest.raises(argparse.ArgumentTypeError):
            aisloader.parse_target(bad)


def test_parse_pids(tmp_path):
    (tmp_path / "proxy.pid").write_text("123\n")
    (tmp_path / "object.pid").write_text("456\n")
    assert aisloader.parse_pids([str(tmp_path / "*.pid"), "p0=9", "11"]) == \
        {"object": 456, "proxy": 123, "p0": 9, "11": 11}
    assert aisloader.parse_pids([str(tmp_path / "gone.pid")]) == {}


def test_key_and_op_pickers():
    seq = aisloader.KeyPicker("sequential", 10, wid=1, procs=2, step=1, rng=random.Random(1))
    assert [seq() for _ in range(7)] == [5, 6, 7, 8, 9, 0, 1]
    batch = aisloader.KeyPicker("sequential", 10, wid=0, procs=1, step=4, rng=random.Random(1))
    assert [batch() for _ in range(4)] == [0, 4, 8, 2]
    rnd = aisloader.KeyPicker("random", 10, wid=0, procs=1, step=1, rng=random.Random(1))
    assert all(0 <= rnd() < 10 for _ in range(100))
    mixed = aisloader.OpPicker("mixed", [("get", 80), ("put", 20)], random.Random(3))
    picks = [mixed() for _ in range(5000)]
    assert 0.75 < picks.count("get") / len(picks) < 0.85
    assert aisloader.OpPicker("put", None, random.Random(1))() == "put"


def test_sigv4_matches_botocore():
    pytest.importorskip("botocore")
    assert "matches" in aisloader.sigv4_self_check("test:tester", "testing")
    h = aisloader.SigV4("AK", "SK").headers("GET", "h:1", "/b/k", aisloader.EMPTY_SHA256, amz_date="20250102T030405Z")
    assert h["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AK/20250102/us-east-1/s3/aws4_request, ")


def test_plan_paths_and_batch_body():
    t = aisloader.parse_target("nginx=plain:http://127.0.0.1:1/base,root=/w")
    p = aisloader.Plan(t, 16 * KiB, 3, with_payload=False)
    assert p.get_paths[2] == "/base/bench/nb-16384/000002" and p.put_paths[0] == "/base/put/bench/nb-16384/000000"
    b = aisloader.Plan(aisloader.parse_target("batch=batch:http://127.0.0.1:1,batch=4"), 1024, 5, with_payload=False)
    body = json.loads(b.batch_body(3))
    assert [e["objname"] for e in body["in"]] == ["nb-1024/000003", "nb-1024/000004", "nb-1024/000000",
                                                 "nb-1024/000001"]
    assert b.expected("get") == 4 * 1024 and b.moss_path == "/v1/ml/moss/bench"


# --------------------------------------------------------------------------- a tiny cell, a dd cell
@pytest.fixture
def plain_server():
    """An HTTP server answering GET with aisloader's 4 KiB payload and PUT with 201, on a free port."""
    aiohttp_web = pytest.importorskip("aiohttp.web")
    payload = aisloader.payload_for(4096)

    async def get(_):
        return aiohttp_web.Response(body=payload)

    async def put(request):
        await request.read()
        return aiohttp_web.Response(status=201)

    loop = asyncio.new_event_loop()
    app = aiohttp_web.Application()
    app.router.add_get("/{tail:.*}", get)
    app.router.add_put("/{tail:.*}", put)
    runner = aiohttp_web.AppRunner(app)
    loop.run_until_complete(runner.setup())
    site = aiohttp_web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port = site._server.sockets[0].getsockname()[1]
    th = threading.Thread(target=loop.run_forever, daemon=True)
    th.start()
    yield f"http://127.0.0.1:{port}"
    loop.call_soon_threadsafe(loop.stop)
    th.join(5)


def cell_args(**kw) -> argparse.Namespace:
    a = dict(op="get", size=4096, objects=8, concurrency=2, procs=1, duration=0.6, warmup=0.1, timeout=5.0,
             keys="random", mix=[("get", 50), ("put", 50)], seed=1, label="rep1")
    a.update(kw)
    return argparse.Namespace(**a)


def test_run_cell_plain_mixed(plain_server):
    t = aisloader.parse_target(f"plain=plain:{plain_server}")
    r = aisloader.run_cell(cell_args(op="mixed", keys="sequential"), t)
    assert r["errors"] == 0 and r["ops"] > 0, r
    assert set(r["by_op"]) == {"get", "put"} and r["by_op"]["get"]["ops"] + r["by_op"]["put"]["ops"] == r["ops"]
    assert r["lat_ms"]["p50"] <= r["lat_ms"]["p99"] <= r["lat_ms"]["max"]
    assert r["tool"] == "aisloader" and r["server_label"] == "plain" and r["mix"] == {"get": 50, "put": 50}


def test_run_dd(tmp_path):
    t = aisloader.parse_target(f"dd=dd:{tmp_path},bytes=1MiB")
    r = aisloader.run_dd(cell_args(op="put", size=256 * KiB), t)
    assert r["errors"] == 0 and r["ops"] == 4 and r["MB_per_s"] > 0 and r["concurrency"] == 1
    assert not list(tmp_path.iterdir())


# --------------------------------------------------------------------------- bench_report
def row(name, op, size, conc, ops, rep, other=0.05):
    return {"tool": "aisloader", "label": f"rep{rep}", "time": f"2026-01-01T00:00:0{rep}Z", "server": name,
            "server_label": name, "kind": "dd" if name == "dd" else "x", "op": op, "size_bytes": size,
            "concurrency": conc, "ops_per_s": ops, "MB_per_s": ops * size / 1e6, "duration_s": 10, "procs": 2,
            "lat_ms": {"p50": 1.0, "p90": 2.0, "p99": 3.0, "max": 4.0}, "errors": 0, "client_cores": 0.5,
            "server_cores": 1.0, "other_cores": other}


@pytest.fixture
def rows():
    out = []
    for rep, k in ((1, 1.0), (2, 1.2), (3, 0.9)):
        out += [row("ais", "get", 16 * KiB, 16, 4000 * k, rep), row("nginx", "get", 16 * KiB, 16, 10000 * k, rep),
                row("ais-s3", "get", 16 * KiB, 16, 3000 * k, rep), row("swift", "get", 16 * KiB, 16, 250 * k, rep),
                row("ais-s3", "put", 16 * KiB, 16, 900 * k, rep), row("swift", "put", 16 * KiB, 16, 200 * k, rep),
                row("ais", "put", 8 * MiB, 16, 30 * k, rep), row("dd", "put", 8 * MiB, 1, 40, rep)]
    return out


def test_summarize_and_ratios(rows):
    s = br.summarize(rows)
    assert s[("get", 16 * KiB, 16, "ais")]["ops"] == 4000 and s[("get", 16 * KiB, 16, "ais")]["n"] == 3
    r, per = br.ratio(s, "get", 16 * KiB, 16, "ais", "nginx", "ops")
    assert r == pytest.approx(0.4) and per == pytest.approx([0.4, 0.4, 0.4])
    # dd was measured once per case (concurrency 1): it pairs with every concurrency
    r, per = br.ratio(s, "put", 8 * MiB, 16, "ais", "dd")
    assert r == pytest.approx(0.75) and per == pytest.approx([0.75, 0.9, 0.675])
    assert br.ratio(s, "get", 8 * MiB, 16, "ais", "nginx") == (None, [])
    goals = {(g["goal"], g["concurrency"]): g for g in br.goal_rows(s)}
    assert goals[("native GET 16 KiB ≥ 0.35× nginx's ops/s", 16)]["met"]
    assert goals[("S3 GET 16 KiB ≥ 10× Swift's ops/s", 16)]["met"]            # 12×
    assert not goals[("S3 PUT 16 KiB ≥ 5× Swift's ops/s", 16)]["met"]         # 4.5×
    assert goals[("PUT 8 MiB ≥ 0.5× dd's raw write (fsync)", 16)]["ratio"] == pytest.approx(0.75)
    assert len(goals) == 4   # no 8 MiB GET cells: that goal is not listed
    ratios = br.ratio_rows(s)
    assert {(r["num"], r["den"]) for r in ratios} == {("ais", "nginx"), ("ais-s3", "swift"), ("ais-s3", "nginx"),
                                                      ("ais", "dd")}
    assert all(r["concurrency"] == 16 for r in ratios)   # dd's concurrency-1 cell is no group of its own


def test_tables(rows):
    s = br.summarize(rows)
    cells = br.cells_table(s).splitlines()
    assert cells[0].startswith("| op | size | conc | target |") and len(cells) == 2 + 8
    ais_line = next(ln for ln in cells if "| GET | 16KiB | 16 | ais |" in ln)
    assert "| 4000 |" in ais_line and ais_line.rstrip().endswith("| 0.40 |")
    rt = br.ratios_table(br.ratio_rows(s))
    assert "ais ÷ nginx (per rep)" in rt and "**0.40** (0.40, 0.40, 0.40)" in rt
    gt = br.goals_table(br.goal_rows(s))
    assert "| not met |" in gt and "**12.00×**" in gt
    assert br.goals_table([]).startswith("(no goal")


def test_chart_written(rows, tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "ratios.png"
    br.chart(br.ratio_rows(br.summarize(rows)), str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000


def test_readme_section(rows, tmp_path):
    doc = br.build(rows, ["x.jsonl"])
    sec = br.section(doc, "results/x.png", note="machine note")
    assert sec.startswith(br.MARKER_BEGIN) and sec.endswith(br.MARKER_END) and br.SECTION_TITLE in sec
    assert "![ratios](results/x.png)" in sec and "machine note" in sec and "Disturbed" not in sec
    before = "# title\n\n## other\n\ntext\n"
    once = br.replace_section(before, sec)
    assert once.startswith(before.rstrip("\n")) and once.count(br.MARKER_BEGIN) == 1
    again = br.replace_section(once + "\n## after\n", br.section(doc, "", note="second"))
    assert again.count(br.MARKER_BEGIN) == 1 and "second" in again and "machine note" not in again
    assert again.startswith(before.rstrip("\n")) and again.endswith("\n## after\n")
    rows[0]["other_cores"] = 0.9
    assert "Disturbed" in br.section(br.build(rows, ["x.jsonl"]))
    # the command line: summary JSON, markdown and README from a JSONL file
    jl = tmp_path / "r.jsonl"
    jl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    readme = tmp_path / "README.md"
    readme.write_text(before)
    assert br.main([str(jl), "--summary", str(tmp_path / "s.json"), "--markdown", str(tmp_path / "m.md"),
                    "--readme", str(readme)]) == 0
    summary = json.loads((tmp_path / "s.json").read_text())
    assert {"run", "goals", "ratios", "cells"} <= set(summary) and summary["run"]["reps"] == 3
    assert br.SECTION_TITLE in readme.read_text() and readme.read_text().startswith("# title")
    assert aisloader.table([str(jl)]).count("\n") == 9

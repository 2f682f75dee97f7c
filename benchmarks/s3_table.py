#!/usr/bin/env python3
"""Tables for the S3 benchmark (s3_bench.sh): medians of s3load.py runs and the issue-3 ratios.

    python benchmarks/s3_table.py results/s3-XXXX.jsonl [more.jsonl ...] [--json summary.json]

Input: the JSON lines `../shared/bench/run_matrix.sh` appends (one per s3load.py run; the label is
"<peer> rep<N>", peer `custom` = this project's cluster, shown as `ais`). A Swift run made with
`--payload-hash unsigned` is shown as `<server>-unsigned` (the body is then not hashed with SHA-256);
ratios are taken between servers of the same payload mode (ais-unsigned ÷ swift-unsigned).

Output (markdown on stdout):
  1. medians per (op, size, concurrency, server): ops/s, MB/s with min–max over repetitions,
     p50/p99, errors, client/server/other cores, server CPU per op, and ais ÷ swift, ais ÷ nginx;
  2. the targets of issue 3, each with the median ratio, the ratio of every repetition (runs of
     one repetition are minutes apart, so the per-repetition ratios pair runs made under the same
     machine conditions), and met / not met.
With --json, the same figures as one JSON document.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_report  # noqa: E402
from bench_report import f, human_size as human  # noqa: E402

ORDER = {"ais": 0, "ais-unsigned": 1, "swift": 2, "swift-unsigned": 3, "nginx": 4}
# (op, size bytes, metric, against, required ratio, text)
TARGETS = [
    ("get", 16384, "ops", "swift", 10.0, "16 KiB GET ≥ 10× Swift's ops/s"),
    ("put", 16384, "ops", "swift", 5.0, "16 KiB PUT ≥ 5× Swift's ops/s"),
    ("get", 8 << 20, "mb", "swift", 3.0, "8 MiB GET ≥ 3× Swift's MB/s"),
    ("put", 8 << 20, "mb", "swift", 3.0, "8 MiB PUT ≥ 3× Swift's MB/s"),
    ("get", 8 << 20, "mb", "nginx", 0.5, "8 MiB GET through the proxy ≥ 0.5× nginx's MB/s"),
]


def server_of(r: dict) -> str:
    peer = (r.get("label") or "?").split()[0]
    peer = {"custom": "ais"}.get(peer, peer)
    if r.get("payload_hash") == "unsigned":
        peer += "-unsigned"
    return peer


def load(paths: list[str]) -> list[dict]:
    return bench_report.load(paths, tools=("s3load",))


def summarize(rows: list[dict]) -> dict:
    return bench_report.summarize(rows, server_of)


def ratio(s: dict, k: tuple, peer: str, metric: str) -> float | None:
    o = s.get((k[0], k[1], k[2], peer))
    if not o or not o[metric] or s[k][metric] is None:
        return None
    return s[k][metric] / o[metric]


def main_table(s: dict) -> str:
    lines = ["| op | size | conc | server | n | ops/s | MB/s (min–max) | p50 ms | p99 ms | errors | client cores | "
             "server cores | server CPU µs/op | other cores (max) | × swift | × nginx |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    keys = sorted(s, key=lambda k: (k[1], k[0] != "get", k[2], ORDER.get(k[3], 9), k[3]))
    for k in keys:
        v = s[k]
        metric = "ops" if k[1] < (1 << 20) else "mb"
        suffix = "-unsigned" if k[3].endswith("-unsigned") else ""
        xs = ratio(s, k, "swift" + suffix, metric) if k[3].startswith("ais") else None
        xn = ratio(s, k, "nginx", metric) if k[3] != "nginx" and not suffix else None
        lines.append(
            f"| {k[0].upper()} | {human(k[1])} | {k[2]} | {k[3]} | {v['n']} | {f(v['ops'], 0)} | "
            f"{f(v['mb'])} ({f(v['min_mb'])}–{f(v['max_mb'])}) | {f(v['p50'], 2)} | {f(v['p99'], 2)} | "
            f"{v['errors']} | {f(v['client_cores'], 2)} | {f(v['server_cores'], 2)} | {f(v['us_per_op'], 0)} | "
            f"{f(v['other_cores'], 2)} ({f(v['other_max'], 2)}) | {f(xs, 2) if xs else ''} | {f(xn, 2) if xn else ''} |")
    return "\n".join(lines)


def targets(s: dict) -> tuple[str, list[dict]]:
    lines = ["| target | conc | ais | peer | ratio (median) | per repetition | required | |",
             "|---|---|---|---|---|---|---|---|"]
    out = []
    concs = sorted({k[2] for k in s})
    for op, size, metric, peer, need, text in TARGETS:
        for c in concs:
            a, p = s.get((op, size, c, "ais")), s.get((op, size, c, peer))
            if not a or not p:
                continue
            r = a[metric] / p[metric] if p[metric] else None
            per = [a["by_rep"][rep][metric] / p["by_rep"][rep][metric]
                   for rep in sorted(a["by_rep"]) if rep in p["by_rep"] and p["by_rep"][rep][metric]]
            unit = "ops/s" if metric == "ops" else "MB/s"
            met = r is not None and r >= need
            lines.append(f"| {text} | {c} | {f(a[metric], 0 if metric == 'ops' else 1)} {unit} | "
                         f"{peer} {f(p[metric], 0 if metric == 'ops' else 1)} {unit} | **{f(r, 2)}×** | "
                         f"{', '.join(f(x, 2) for x in per)} | {need:g}× | {'met' if met else 'not met'} |")
            out.append({"target": text, "op": op, "size_bytes": size, "concurrency": c, "metric": metric,
                        "against": peer, "ais": a[metric], "peer": p[metric], "ratio": r,
                        "ratio_by_rep": per, "required": need, "met": met})
    return "\n".join(lines), out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="+")
    ap.add_argument("--json", help="also write the summary as JSON here")
    ap.add_argument("--concs", help="only these concurrencies, e.g. 16 or 16,64")
    ap.add_argument("--max-other", type=float, help="drop runs where other processes used more cores than this")
    a = ap.parse_args(argv)
    rows = load(a.files)
    if a.concs:
        rows = [r for r in rows if str(r["concurrency"]) in a.concs.split(",")]
    if a.max_other is not None:
        dropped = [r for r in rows if (r.get("other_cores") or 0.0) > a.max_other]
        rows = [r for r in rows if (r.get("other_cores") or 0.0) <= a.max_other]
        for r in dropped:
            print(f"dropped: {r['label']} {r['op']} {r['size']} c={r['concurrency']} other={r['other_cores']}",
                  file=sys.stderr)
    if not rows:
        print("no s3load rows", file=sys.stderr)
        return 1
    s = summarize(rows)
    print(main_table(s))
    print()
    ttext, tjson = targets(s)
    print(ttext)
    if a.json:
        cells = [{"op": k[0], "size_bytes": k[1], "size": human(k[1]), "concurrency": k[2], "server": k[3],
                  **{n: v for n, v in s[k].items()}} for k in sorted(s, key=str)]
        with open(a.json, "w") as fh:
            json.dump({"cells": cells, "targets": tjson,
                       "runs": len(rows), "first": min(r["time"] for r in rows),
                       "last": max(r["time"] for r in rows)}, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

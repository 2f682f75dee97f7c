"""Cold and warm GET of a remote (s3://) bucket against reading the backend directly.

One run: moto's S3 server on loopback holds N objects; boto3 reads them all (a) straight from
moto, (b) through the cluster's S3 API cold (every object fetched from moto by its target),
(c) through the cluster warm. Cold rounds start from an evicted bucket. Rounds interleave
(direct, cold, warm) × reps so machine drift hits every case alike.

    .venv/bin/python benchmarks/remote_bench.py [--objects 200] [--size-mib 4] [--concurrency 8] [--reps 3]
                                                [--stream-mbps 50]   # per-stream cap, like a real cloud

Prints one JSON line per round and a markdown table of medians with the issue-4 targets.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import requests
from botocore.config import Config

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from ais.cli import localcluster  # noqa: E402
from tests.emulators import MotoS3  # noqa: E402
from tests.cluster.conftest import free_base_port  # noqa: E402


def s3_client(endpoint: str, conc: int) -> Any:
    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing", aws_secret_access_key="testing",
                        region_name="us-east-1",
                        config=Config(s3={"addressing_style": "path"}, max_pool_connections=conc,
                                      retries={"max_attempts": 1}))


def read_all(client: Any, bucket: str, keys: list[str], conc: int) -> tuple[float, int]:
    def one(key: str) -> int:
        body = client.get_object(Bucket=bucket, Key=key)["Body"]
        n = 0
        while chunk := body.read(1 << 20):
            n += len(chunk)
        return n
    t0 = time.perf_counter()
    with ThreadPoolExecutor(conc) as pool:
        total = sum(pool.map(one, keys))
    return time.perf_counter() - t0, total


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--objects", type=int, default=200)
    ap.add_argument("--size-mib", type=int, default=4)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--out", default="")
    ap.add_argument("--no-fsync", action="store_true")
    ap.add_argument("--stream-mbps", type=float, default=0,
                    help="cap each backend response at this many MB/s (a cloud-like per-stream rate); 0 = loopback speed")
    ap.add_argument("--cases", default="direct,cold,warm", help="comma-separated subset (for profiling)")
    args = ap.parse_args()
    size = args.size_mib << 20
    work = tempfile.mkdtemp(prefix="remote-bench-")
    moto = MotoS3(os.path.join(work, "moto"))
    moto.start()
    root = os.path.join(work, "cluster")
    try:
        spec = localcluster.up(root, 1, 3, 2, free_base_port(8), fsync=not args.no_fsync, env=dict(moto.env))
        bucket = "bench-remote"
        direct = s3_client(moto.endpoint, args.concurrency)
        direct.create_bucket(Bucket=bucket)
        keys = [f"obj-{i:05d}" for i in range(args.objects)]
        payload = os.urandom(size)
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda k: direct.put_object(Bucket=bucket, Key=k, Body=payload), keys))
        if args.stream_mbps:
            moto.slow(int(args.stream_mbps * 1e6))
        ours = s3_client(f"{spec.endpoint}/s3", args.concurrency)
        native = f"{spec.endpoint}/v1/buckets/{bucket}"
        requests.head(native, params={"provider": "aws"}, timeout=30).raise_for_status()   # add the bucket
        assert hashlib.md5(ours.get_object(Bucket=bucket, Key=keys[0])["Body"].read()).digest() == \
            hashlib.md5(payload).digest()
        rows: list[dict[str, Any]] = []
        for rep in range(args.reps):
            requests.delete(native, params={"provider": "aws", "keep_bck_md": "true"},
                            json={"action": "evict-remote-bck"}, timeout=120).raise_for_status()
            for case, client in (("direct", direct), ("cold", ours), ("warm", ours)):
                if case not in args.cases.split(","):
                    continue
                moto.reset_count()
                secs, total = read_all(client, bucket, keys, args.concurrency)
                assert total == size * len(keys), (case, total)
                row = {"rep": rep, "case": case, "objects": len(keys), "size": size, "seconds": round(secs, 3),
                       "MBps": round(total / secs / 1e6, 1), "backend_gets": moto.count("GET", "")}
                rows.append(row)
                print(json.dumps(row), flush=True)
        if args.out:
            with open(args.out, "w", encoding="utf-8") as f:
                f.write("".join(json.dumps(r) + "\n" for r in rows))
        if len({r["case"] for r in rows}) < 3:
            return
        med = {c: statistics.median(r["seconds"] for r in rows if r["case"] == c) for c in ("direct", "cold", "warm")}
        print(f"\n| case | median s ({args.objects} × {args.size_mib} MiB, {args.concurrency} readers) | MB/s | vs direct |")
        print("| --- | --- | --- | --- |")
        for c in ("direct", "cold", "warm"):
            mbps = size * len(keys) / med[c] / 1e6
            print(f"| {c} | {med[c]:.2f} | {mbps:.0f} | {med[c] / med['direct']:.2f}× time |")
        print(f"\ncold ÷ direct = {med['cold'] / med['direct']:.2f} (target ≤ 1.3); "
              f"direct ÷ warm = {med['direct'] / med['warm']:.1f}× faster (target ≥ 5)")
    finally:
        localcluster.down(root)
        moto.stop()


if __name__ == "__main__":
    main()

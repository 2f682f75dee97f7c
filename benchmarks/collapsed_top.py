#!/usr/bin/env python3
"""Top frames of a py-spy profile in collapsed form (`py-spy record --format raw`).

    py-spy record --format raw -o t0.txt --duration 8 --pid PID [--threads --idle]
    python benchmarks/collapsed_top.py t0.txt [--top 20]

Idle pool threads (blocked waiting for work) are dropped (--idle-leaf). Prints the frames with the most samples on top of the stack ("self") and the frames present
anywhere in the stack ("total"), as % of all samples. With --threads, stacks of the I/O pool
threads are reported separately from the event-loop thread (MainThread).
"""
from __future__ import annotations

import argparse
import collections
import re
import sys


def short(frame: str) -> str:
    # "fn (path/to/module.py:123)" -> "fn (module.py:123)"
    return re.sub(r"\(([^()]*/)?([^/()]+)\)$", r"(\2)", frame.strip())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("file")
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--no-lines", action="store_true", help="merge frames of one function")
    ap.add_argument("--idle-leaf", default=r"^(_worker \(thread\.py:8[01]\)|Condition\.wait .*|Event\.wait .*)$",
                    help="regex: stacks whose top frame matches are idle pool threads (dropped)")
    a = ap.parse_args(argv)
    idle = re.compile(a.idle_leaf)
    dropped = 0
    by_thread: dict[str, tuple[collections.Counter, collections.Counter, list[int]]] = {}
    with open(a.file) as fh:
        for line in fh:
            stack, _, n = line.rstrip("\n").rpartition(" ")
            if not stack:
                continue
            frames = stack.split(";")
            thread = "all"
            if frames and frames[0].startswith(("thread ", "process ")):
                while frames and frames[0].startswith(("thread ", "process ")):
                    if frames[0].startswith("thread "):
                        thread = "MainThread" if "MainThread" in frames[0] else "pool threads"
                    frames = frames[1:]
            if a.no_lines:
                frames = [re.sub(r":\d+\)$", ")", f) for f in frames]
            frames = [short(f) for f in frames]
            if frames and idle.match(frames[-1]):
                dropped += int(n)
                continue
            self_c, tot_c, total = by_thread.setdefault(thread, (collections.Counter(), collections.Counter(), [0]))
            cnt = int(n)
            total[0] += cnt
            if frames:
                self_c[frames[-1]] += cnt
            for f in set(frames):
                tot_c[f] += cnt
    grand = sum(t[2][0] for t in by_thread.values()) or 1
    print(f"{grand} busy samples ({dropped} idle pool-thread samples dropped); % of busy samples\n")
    for thread, (self_c, tot_c, total) in sorted(by_thread.items(), key=lambda kv: -kv[1][2][0]):
        print(f"## {thread}: {total[0]} samples ({100 * total[0] / grand:.0f}% of all)")
        print("self%  frame")
        for f, c in self_c.most_common(a.top):
            print(f"{100 * c / grand:5.1f}  {f}")
        print("total% frame")
        for f, c in tot_c.most_common(a.top):
            print(f"{100 * c / grand:5.1f}  {f}")
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())

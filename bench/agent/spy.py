"""Summarise py-spy's collapsed stacks (`--format raw`): inclusive share per function.

    .venv/bin/python bench/agent/spy.py FILE [--thread MainThread] [--under Agent.reconcile] [--top 40]

`--under F` keeps the samples whose stack passes through a frame containing F and counts from
there, so the shares are of F's time. Line numbers are dropped (a function counts once).
"""

from __future__ import annotations

import argparse
import collections
import re


def summarise(path: str, thread: str | None, under: str | None) -> tuple[int, collections.Counter]:
    incl: collections.Counter = collections.Counter()
    total = 0
    with open(path) as f:
        for line in f:
            stack, _, n = line.rstrip().rpartition(" ")
            if not n.isdigit():
                continue
            frames = stack.split(";")
            if frames and frames[0].startswith("thread ("):
                if thread and thread not in frames[0]:
                    continue
                frames = frames[1:]
            if under:
                idx = next((i for i, fr in enumerate(frames) if under in fr), None)
                if idx is None:
                    continue
                frames = frames[idx:]
            total += int(n)
            for fr in {re.sub(r":\d+\)", ")", fr) for fr in frames}:
                incl[fr] += int(n)
    return total, incl


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file")
    ap.add_argument("--thread", default="MainThread", help="'' for every thread")
    ap.add_argument("--under")
    ap.add_argument("--top", type=int, default=40)
    a = ap.parse_args()
    total, incl = summarise(a.file, a.thread or None, a.under)
    print(f"{total} samples")
    for fr, n in incl.most_common(a.top):
        print(f"{n:7d} {100 * n / max(1, total):5.1f}%  {fr}")


if __name__ == "__main__":
    main()

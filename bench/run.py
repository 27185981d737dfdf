"""Run every benchmark and print one table: `make bench` (not part of `make test`).

    .venv/bin/python bench/run.py [--sizes 1000,10000,100000] [--only model,kernel,agent,cloud] [--quick]

Steps, each a subprocess with its own time limit (a failed or timed-out step is reported and
the others still run; the exit status is then 1):
- model:  bench/bench_model.py at the largest size (pure model, natively on this host), and its
          --real-sb mode (real OVN central here: the watcher's initial SB read, one SB write ->
          model update);
- kernel: bench/bench_kernel.py (kernel reconciler vs `ip -batch`, both steering modes; boots
          User-Mode Linux);
- agent:  bench/bench_agent.py (the whole agent vs floors: cold sync, events, resync, idle,
          memory, steering modes; boots User-Mode Linux);
- cloud:  bench/bench_cloud.py (natively: the agent's start cost, CPU / peak RSS / bytes from
          the SB, against a Southbound of 1k / 10k / 100k Port_Bindings with 160 exposures
          here, beside ovsdb-client's floor and the old whole-table reader; remote events).
          Its own sizes: BENCH_CLOUD_SIZES (default 1000,10000,100000), not --sizes; its own
          table after the combined one.
Results: bench/results/bench-<time>.json (every figure, the raw output of each step, the host's
load before and after), bench/results/bench-<time>.txt (the table), and the agent's logs in
bench/results/logs-<time>/. bench/results/ is not tracked by git.

Environment: BENCH_SIZES=1000 for a quick run at one size (also --sizes); BENCH_CLOUD_SIZES for
the cloud step; BENCH_TIMEOUT scales every step's time limit (default 1.0).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.agent import report  # noqa: E402
from bench.agent.report import Table  # noqa: E402

PY = sys.executable
STEPS = ("model", "kernel", "agent", "cloud")
CLOUD_SIZES = "1000,10000,100000"


def loadavg() -> list[float]:
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return []


def with_results(r: dict, out: Path) -> dict:
    """A step's record with the JSON it wrote to `out` under "results" (None, and a failed
    status, when it wrote none)."""
    try:
        r["results"] = json.loads(out.read_text())
    except (OSError, ValueError):
        r["results"] = None
        if r["status"] == 0:
            r["status"] = "no results written"
    return r


def run_step(name: str, argv: list[str], timeout: float) -> dict:
    """Run one benchmark, streaming its output; {"status", "seconds", "output"}."""
    print(f"\n=== bench {name}: {' '.join(argv[1:])} (time limit {timeout:.0f} s)", flush=True)
    t = time.monotonic()
    lines: list[str] = []
    proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, text=True, start_new_session=True)
    deadline = t + timeout
    timed_out = False
    try:
        import selectors

        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            if not sel.select(min(left, 1.0)):
                if proc.poll() is not None:
                    break
                continue
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            print(line, end="", flush=True)
    finally:
        if timed_out or proc.poll() is None:
            import signal

            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    proc.wait(15)
                    break
                except subprocess.TimeoutExpired:
                    continue
    status = proc.wait()
    out = {"status": "timeout" if timed_out else status, "seconds": round(time.monotonic() - t, 1),
           "output": "".join(lines)}
    print(f"=== bench {name}: {'TIMED OUT' if timed_out else f'exit {status}'} "
          f"after {out['seconds']:.0f} s", flush=True)
    return out


# --- parsing the other benchmarks' text --------------------------------------------------------

_NUM = r"([0-9]+(?:\.[0-9]+)?)"


def parse_model(text: str) -> dict:
    out: dict = {"updates": {}, "updates_frozen": {}}
    frozen = False
    for line in text.splitlines():
        if m := re.match(r"desired_state \(full\):\s+" + _NUM + " ms", line):
            out["desired_state_ms"] = float(m.group(1))
        elif m := re.match(r"ModelCache build:\s+" + _NUM + " ms", line):
            out["cache_build_ms"] = float(m.group(1))
        elif m := re.match(r"snapshot: (\d+) Port_Binding rows", line):
            out["rows"] = int(m.group(1))
        elif line.startswith("-- single-event"):
            frozen = "True" in line
        elif m := re.match(r"update: (.+?)\s+" + _NUM + r" ms\s+max\s+" + _NUM + " ms", line):
            (out["updates_frozen"] if frozen else out["updates"])[m.group(1).strip()] = {
                "median_ms": float(m.group(2)), "max_ms": float(m.group(3))}
    return out


def parse_real_sb(text: str) -> dict:
    out: dict = {}
    pats = {
        "ports_created_s": r"real SB: (\d+) ports created and northd synced in " + _NUM + " s",
        "watcher_start_s": r"watcher start .*median " + _NUM + " s",
        "snapshot_ms": r"watcher snapshot\(\):\s+" + _NUM + " ms",
        "desired_state_ms": r"desired_state on it:\s+" + _NUM + " ms",
        "desired_state_frozen_ms": r"same after gc.freeze\(\):\s+" + _NUM + " ms",
        "write_to_dirty_ms": r"-> on_dirty: median " + _NUM + " ms",
        "dirty_to_update_ms": r"ModelCache.update done: \+" + _NUM + " ms",
        "max_rss_mib": r"max RSS of this process: " + _NUM + " MiB",
    }
    for key, pat in pats.items():
        if m := re.search(pat, text):
            out[key] = float(m.groups()[-1])
    return out


def parse_kernel(text: str) -> list[dict]:
    rows = []
    pat = re.compile(r"^\s*(\d+)\s+(rules|table)\s+(\d+)\s+" + _NUM + r"s\s+" + _NUM + r"s\s+"
                     + _NUM + r"x\s+" + _NUM + r"s\s+" + _NUM + r"s\s+" + _NUM + r"s\s+" + _NUM
                     + r"s\s+" + _NUM + r"us(?:\s+\(\s*([+-]?[0-9.]+)us\))?")
    keys = ("exposures", "steering", "objects", "floor_s", "cold_s", "ratio", "observe_s",
            "diff_s", "apply_s", "restart_s", "lookup_us", "lookup_extra_us")
    for line in text.splitlines():
        if m := pat.match(line):
            vals = list(m.groups())
            row = {}
            for k, v in zip(keys, vals):
                if v is None:
                    continue
                row[k] = v if k == "steering" else (int(v) if k in ("exposures", "objects") else float(v))
            rows.append(row)
    return rows


# --- the combined table ------------------------------------------------------------------------


def combined_table(res: dict) -> str:
    sizes = res["sizes"]
    t = Table(["figure", *(f"N={n}" for n in sizes), "target", ""])

    model = res.get("model", {})
    if model.get("parsed"):
        p = model["parsed"]
        n = p.get("rows", "?")
        t.section(f"model, pure, natively on this host ({n} Port_Binding rows; bench_model.py)")
        big = len(sizes) - 1
        t.row("  desired_state() from scratch", *[""] * big, f"{p.get('desired_state_ms', '-')} ms")
        t.row("  one event: ModelCache.update(), worst kind, median", *[""] * big,
              (f"{max(v['median_ms'] for v in p['updates_frozen'].values()):.2f} ms"
               if p.get("updates_frozen") else "-"))
    if model.get("real_sb"):
        p = model["real_sb"]
        big = len(sizes) - 1
        t.section("watcher against a real SB, natively on this host (bench_model.py --real-sb)")
        t.row("  initial SB + OVS read (connect, dump, mirror)", *[""] * big,
              report.s(p.get("watcher_start_s")))
        t.row("  SB write -> on_dirty / -> model updated", *[""] * big,
              f"{p.get('write_to_dirty_ms', '-')} ms / +{p.get('dirty_to_update_ms', '-')} ms")
    kernel = res.get("kernel", {})
    if kernel.get("rows"):
        t.section("kernel reconciler vs ip -batch, cold apply in a fresh netns (bench_kernel.py) (UML)")
        for mode in ("rules", "table"):
            by_n = {r["exposures"]: r for r in kernel["rows"] if r["steering"] == mode}
            cells = []
            for n in sizes:
                r = by_n.get(int(n))
                cells.append("-" if r is None else f"{r['cold_s']:.2f} / {r['floor_s']:.2f} s = {r['ratio']:.2f}x")
            t.row(f"  steering={mode}: ovnbgp / ip -batch", *cells)
    agent = res.get("agent", {}).get("results")
    if agent:
        report.agent_rows(t, agent)
    for step in STEPS:
        st = res.get(step, {})
        if st and st.get("status") not in (0, None):
            t.section(f"!! step {step}: {st.get('status')} (see the JSON for its output)")
    parts = [t.text() + "\n" + report.UML_NOTE] if t.rows else []
    cloud = res.get("cloud", {}).get("results")
    if cloud:
        parts.append(report.cloud_table(cloud))
    return "\n\n".join(parts)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # 100k runs steering=table only, its provider ports written into the SB directly (northd in
    # UML is too slow for them, bench/agent/topology.py) and the node's FRR apart (bench_agent
    # --frr-max: zebra in UML takes hours over 100k connected addresses).
    ap.add_argument("--sizes", default=os.environ.get("BENCH_SIZES", "1000,10000,100000"))
    ap.add_argument("--table-sizes", default=os.environ.get("BENCH_TABLE_SIZES", ""),
                    help="sizes the agent step also runs with steering=table (default: the "
                    "largest; sizes above 10k run table only)")
    ap.add_argument("--only", default=",".join(STEPS), help="comma list of: " + ", ".join(STEPS))
    ap.add_argument("--quick", action="store_true",
                    help="fewer repeats and samples (a smoke run, not figures to quote)")
    ap.add_argument("--results", default=str(REPO / "bench" / "results"))
    args = ap.parse_args()
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    if not sizes or not all(s.isdigit() and int(s) > 0 for s in sizes):
        ap.error(f"--sizes: positive integers, got {args.sizes!r}")
    sizes = sorted(set(sizes), key=int)
    only = [s for s in args.only.split(",") if s]
    bad = [s for s in only if s not in STEPS]
    if bad:
        ap.error(f"--only: unknown step(s) {bad}")
    scale = float(os.environ.get("BENCH_TIMEOUT", "1.0"))
    largest = max(int(s) for s in sizes)
    # The agent step covers the sizes above 10k end to end (table mode); the model's real SB
    # and the kernel breakdown stay at the sizes up to 10k (make bench: about an hour with 100k).
    small = [s for s in sizes if int(s) <= 10000] or sizes[:1]
    small_largest = max(int(s) for s in small)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    results = Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    logs = results / f"logs-{stamp}"
    res: dict = {"sizes": sizes, "meta": report.meta(False), "load_before": loadavg(),
                 "quick": args.quick}
    res["meta"]["note"] = report.UML_NOTE
    started = time.monotonic()

    if "model" in only:
        repeat = "1" if args.quick else "3"
        r = run_step("model", [PY, "bench/bench_model.py", "--ports", str(largest), "--repeat", repeat,
                               "--events", "10" if args.quick else "50"], 600 * scale)
        r["parsed"] = parse_model(r["output"])
        r2 = run_step("model --real-sb", [PY, "bench/bench_model.py", "--real-sb", "--ports",
                                          str(small_largest), "--repeat", "1" if args.quick else "2"],
                      900 * scale)
        r["real_sb"] = parse_real_sb(r2["output"])
        r["real_sb_output"] = r2["output"]
        if r2["status"] != 0:
            r["status"] = f"--real-sb: {r2['status']}" if r["status"] == 0 else r["status"]
        res["model"] = r
    if "kernel" in only:
        # One repeat: bench_agent measures its own floors in its boot; this is the breakdown.
        r = run_step("kernel", [PY, "bench/bench_kernel.py", "--sizes", ",".join(small),
                                "--repeat", "1"], 1500 * scale)
        r["rows"] = parse_kernel(r["output"])
        res["kernel"] = r
    if "agent" in only:
        out = results / f"agent-{stamp}.json"
        argv = [PY, "bench/bench_agent.py", "--sizes", ",".join(sizes), "--json", str(out),
                "--logs", str(logs)]
        if args.table_sizes:
            argv += ["--table-sizes", args.table_sizes]
        argv += (["--samples", "10", "--burst", "100", "--idle", "10"] if args.quick
                 else ["--idle", "30"])
        # The agent bench bounds its own UML boot; this limit is a backstop above it.
        boot = 2400 * scale * (1 if largest <= 10000 else largest / 10000)
        argv += ["--timeout", str(int(boot))]
        if largest > 10000:  # one step at 100k (the floor's ip -batch) takes minutes in UML
            argv += ["--step-timeout", str(int(900 * scale * largest / 30000))]
        res["agent"] = with_results(run_step("agent", argv, boot + 120), out)

    if "cloud" in only:
        out = results / f"cloud-{stamp}.json"
        cloud_sizes = os.environ.get("BENCH_CLOUD_SIZES", CLOUD_SIZES)
        # ~4 min at 100k on 2 busy cores, most of it the old whole-table reader
        res["cloud"] = with_results(run_step(
            "cloud", [PY, "bench/bench_cloud.py", "--sizes", cloud_sizes, "--json", str(out)],
            1800 * scale), out)

    res["load_after"] = loadavg()
    res["seconds"] = round(time.monotonic() - started, 1)
    table = combined_table(res)
    text = (f"ovnbgp benchmarks, {res['meta']['time']}, commit {res['meta']['commit']}, "
            f"{res['seconds']:.0f} s; host load average before {res['load_before']}, "
            f"after {res['load_after']}\n\n{table}\n")
    (results / f"bench-{stamp}.json").write_text(json.dumps(res, indent=1))
    (results / f"bench-{stamp}.txt").write_text(text)
    print("\n" + text, flush=True)
    print(f"results: {results / f'bench-{stamp}.json'} and .txt", flush=True)
    failed = [s for s in only if res.get(s, {}).get("status") not in (0, None)]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""Tables of benchmark figures (plain text) and the run's metadata.

    meta(in_uml)                 -> dict (kernel, machine, commit, time)
    agent_table(results)         -> text: bench_agent's figures by size, floors, ratios, targets
    Table(["metric", "N=1000"]).row(...).text()
"""

from __future__ import annotations

import os
import platform
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
UML_NOTE = ("Times marked (UML) were measured inside User-Mode Linux on one CPU, where Python "
            "and the kernel run several times slower than natively: compare the ratios to the "
            "floor (same boot, same load), not the absolute values.")


def meta(uml: bool) -> dict[str, Any]:
    commit = ""
    try:
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "kernel": platform.release(),
            "user_mode_linux": uml, "cpus": os.cpu_count(), "python": platform.python_version(),
            "commit": commit}


class Table:
    def __init__(self, header: list[str]):
        self.header = header
        self.rows: list[list[str]] = []

    def row(self, *cells: Any) -> Table:
        self.rows.append(["" if c is None else str(c) for c in cells])
        return self

    def section(self, title: str) -> Table:
        self.rows.append([title])
        return self

    def text(self) -> str:
        width = [len(h) for h in self.header]
        for r in self.rows:
            if len(r) > 1:
                for i, c in enumerate(r):
                    width[i] = max(width[i], len(c))
        line = lambda cells: "  ".join(  # noqa: E731
            c.ljust(width[i]) if i == 0 else c.rjust(width[i]) for i, c in enumerate(cells)).rstrip()
        out = [line(self.header), "  ".join("-" * w for w in width)]
        for r in self.rows:
            out.append(r[0] if len(r) == 1 else line(r + [""] * (len(self.header) - len(r))))
        return "\n".join(out)


def get(d: Any, *path: Any) -> Any:
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return None
        d = d[p]
    return d


def s(v: Any, digits: int = 2) -> str:
    """Seconds."""
    return "-" if v is None else f"{v:.{digits}f} s"


def ms(v: Any) -> str:
    return "-" if v is None else f"{v * 1000:.0f} ms"


def ratio(a: Any, b: Any) -> str:
    return "-" if a is None or not b else f"{a / b:.2f}x"


def verdict(ok: bool | None) -> str:
    return "" if ok is None else ("met" if ok else "MISSED")


def agent_rows(t: Table, results: dict, *, prefix: str = "") -> Table:
    """Rows of bench_agent's results into `t` (columns: metric, one per size, target, verdict)."""
    sizes = sorted(results.get("sizes", {}), key=int)
    data = [results["sizes"][k] for k in sizes]
    largest = data[-1] if data else {}

    def add(label: str, fn: Callable[[dict], str], target: str = "",
            check: Callable[[dict], bool | None] | None = None) -> None:
        ok = None
        if check is not None and largest:
            try:
                ok = check(largest)
            except (TypeError, KeyError, ZeroDivisionError):
                ok = None
        t.row(prefix + label, *(fn(x) for x in data), target, verdict(ok))

    add("exposures (provider IPs + FIPs + tenant VMs + cr-lrps + tenant CIDRs)",
        lambda x: str(x.get("exposures", "-")))
    for mode in ("rules", "table"):
        if not any(mode in x for x in data):
            continue
        t.section(f"{prefix}cold sync, steering={mode} (agent started on an empty node) (UML)")
        add("  agent: start -> every address on the dummy", lambda x: s(get(x, mode, "cold", "dummy")))
        add("  floor: ip -batch of the same objects -> done", lambda x: s(get(x, mode, "floor", "dummy")))
        add("  ratio agent / floor (dummy)", lambda x: ratio(get(x, mode, "cold", "dummy"),
                                                             get(x, mode, "floor", "dummy")),
            "<= 1.5x" if mode == "rules" else "",
            (lambda x: get(x, mode, "cold", "dummy") / get(x, mode, "floor", "dummy") <= 1.5)
            if mode == "rules" else None)
        add("  agent: start -> all prefixes in FRR's VRF table", lambda x: s(get(x, mode, "cold", "frr_vrf")))
        add("  floor: ip -batch start -> all in FRR's VRF table", lambda x: s(get(x, mode, "floor", "frr_vrf")))
        add("  ratio agent / floor (FRR VRF table)", lambda x: ratio(get(x, mode, "cold", "frr_vrf"),
                                                                      get(x, mode, "floor", "frr_vrf")))
        add("  agent / floor: all prefixes at the leaf", lambda x: (
            f"{s(get(x, mode, 'cold', 'leaf'), 1)} / {s(get(x, mode, 'floor', 'leaf'), 1)}"
            if get(x, mode, "cold") else "-"))
        add("  agent phases: log up / SB+OVS loaded / 1st reconcile done", lambda x: (
            "/".join("-" if v is None else f"{v:.1f}" for v in get(x, mode, "cold", "phases").values())
            + " s") if get(x, mode, "cold", "phases") else "-")
        add("  agent CPU during cold sync (own + children)", lambda x: (
            f"{s(get(x, mode, 'cold', 'cpu'), 1)} + {s(get(x, mode, 'cold', 'children_cpu'), 1)}"
            if get(x, mode, "cold") else "-"))
        add("  complete (dummy, kernel plan empty, FRR count)", lambda x: {
            True: "yes", False: "NO", None: "-"}[get(x, mode, "cold", "complete")])
        add("  route lookup (RTM_GETROUTE): last exposed IP / unexposed IP", lambda x: (
            f"{get(x, mode, 'lookup', 'exposed_last_us'):.0f} / {get(x, mode, 'lookup', 'unexposed_us'):.0f} us"
            if get(x, mode, "lookup") else "-"))
        add("    the same on the empty node (before the agent)", lambda x: (
            f"{get(x, mode, 'lookup', 'empty_node', 'exposed_last_us'):.0f} / "
            f"{get(x, mode, 'lookup', 'empty_node', 'unexposed_us'):.0f} us"
            if get(x, mode, "lookup", "empty_node") else "-"))
    t.section(f"{prefix}events with N loaded, steering=rules (UML)")
    add("  bind -> address on the dummy, median / p99", lambda x: (
        f"{ms(get(x, 'rules', 'events', 'dummy_median'))} / {ms(get(x, 'rules', 'events', 'dummy_p99'))}"),
        "p99 < 50 ms (native)", lambda x: get(x, "rules", "events", "dummy_p99") < 0.05)
    add("  bind -> prefix in FRR's VRF table, median / p99", lambda x: (
        f"{ms(get(x, 'rules', 'events', 'frr_median'))} / {ms(get(x, 'rules', 'events', 'frr_p99'))}"),
        "p99 < 500 ms (native)", lambda x: get(x, "rules", "events", "frr_p99") < 0.5)
    add("  burst of binds in one txn -> last on the dummy / in FRR", lambda x: (
        f"{get(x, 'rules', 'events', 'burst', 'ports')}: "
        f"{s(get(x, 'rules', 'events', 'burst', 'dummy_last'))} / "
        f"{s(get(x, 'rules', 'events', 'burst', 'frr_vrf_last'))}"))
    add("  unbind all of them -> last off the dummy / out of FRR", lambda x: (
        f"{get(x, 'rules', 'events', 'unbind', 'ports')}: "
        f"{s(get(x, 'rules', 'events', 'unbind', 'dummy_last'))} / "
        f"{s(get(x, 'rules', 'events', 'unbind', 'frr_vrf_last'))}"))
    t.section(f"{prefix}steady state, steering=rules (UML)")
    add("  full resync, nothing changed: agent CPU", lambda x: s(get(x, "rules", "resync", "cpu"), 3),
        "< 0.1 s (native)", lambda x: get(x, "rules", "resync", "cpu") < 0.1)
    add("  full resync: wall time / children CPU (frr-reload --test, ovs-ofctl)", lambda x: (
        f"{s(get(x, 'rules', 'resync', 'duration'))} / {s(get(x, 'rules', 'resync', 'children_cpu'))}"))
    add("  idle: CPU per minute, own + children", lambda x: (
        f"{s(get(x, 'rules', 'idle', 'cpu_per_min'))} + {s(get(x, 'rules', 'idle', 'children_cpu_per_min'))}"))
    t.section(f"{prefix}memory")
    add("  RSS after the cold sync / peak after resyncs and events", lambda x: (
        f"{get(x, 'rules', 'cold', 'rss_mb'):.0f} / {get(x, 'rules', 'hwm_mb'):.0f} MB"
        if get(x, "rules", "hwm_mb") is not None else "-"))
    add("  peak RSS of the agent (VmHWM)", lambda x: (
        "-" if get(x, "rules", "hwm_mb") is None else f"{get(x, 'rules', 'hwm_mb'):.0f} MB"),
        "< 150 MB", lambda x: get(x, "rules", "hwm_mb") < 150)
    return t


def agent_table(results: dict) -> str:
    sizes = sorted(results.get("sizes", {}), key=int)
    t = Table(["bench_agent", *(f"N={n}" for n in sizes), "target (at largest N)", ""])
    agent_rows(t, results)
    return t.text() + "\n" + UML_NOTE

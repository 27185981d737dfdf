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


def steady(x: dict) -> dict:
    """The mode whose steady state, events and memory a size measured (its first: rules up to
    10k, table above)."""
    for mode in ("rules", "table"):
        if get(x, mode, "resync") is not None:
            return x[mode]
    return {}


def agent_rows(t: Table, results: dict, *, prefix: str = "") -> Table:
    """Rows of bench_agent's results into `t` (columns: metric, one per size, target, verdict).
    Targets are checked at 10k (the largest size up to 10k), the 100k ones at the largest."""
    sizes = sorted(results.get("sizes", {}), key=int)
    data = [results["sizes"][k] for k in sizes]
    largest = data[-1] if data else {}
    upto10k = [results["sizes"][k] for k in sizes if int(k) <= 10000]
    at10k = upto10k[-1] if upto10k else largest

    def add(label: str, fn: Callable[[dict], str], target: str = "",
            check: Callable[[dict], bool | None] | None = None, at: dict | None = None) -> None:
        ok = None
        ref = at10k if at is None else at
        if check is not None and ref:
            try:
                ok = check(ref)
            except (TypeError, KeyError, ZeroDivisionError):
                ok = None
        t.row(prefix + label, *(fn(x) for x in data), target, verdict(ok))

    def both(a: Any, b: Any, fmt: Callable[[Any], str] = s) -> str:
        return "-" if a is None and b is None else f"{fmt(a)} / {fmt(b)}"

    add("exposures (provider IPs + FIPs + tenant VMs + cr-lrps + tenant CIDRs)",
        lambda x: str(x.get("exposures", "-")))
    add("FRR's end points (apart: the node's FRR in a namespace of its own, not measured)",
        lambda x: str(x.get("frr", "measured")))
    for mode in ("rules", "table"):
        if not any(mode in x for x in data):
            continue
        big = mode == "table" and int(sizes[-1]) > 10000
        t.section(f"{prefix}cold sync, steering={mode} (agent started on an empty node) (UML)")
        add("  agent: start -> every address on the dummy", lambda x: s(get(x, mode, "cold", "dummy")))
        add("  floor: ip -batch of the same objects -> done", lambda x: s(get(x, mode, "floor", "dummy")))
        if mode == "rules":
            add("  ratio agent / floor (dummy)", lambda x: ratio(get(x, mode, "cold", "dummy"),
                                                                 get(x, mode, "floor", "dummy")),
                "<= 1.5x", lambda x: get(x, mode, "cold", "dummy") / get(x, mode, "floor", "dummy") <= 1.5)
        else:
            add("  ratio agent / floor (dummy)", lambda x: ratio(get(x, mode, "cold", "dummy"),
                                                                 get(x, mode, "floor", "dummy")),
                "<= 2x at 100k" if big else "",
                (lambda x: get(x, mode, "cold", "dummy") / get(x, mode, "floor", "dummy") <= 2)
                if big else None, at=largest)
        add("  agent: start -> all prefixes in FRR's VRF table", lambda x: s(get(x, mode, "cold", "frr_vrf")))
        add("  floor: ip -batch start -> all in FRR's VRF table", lambda x: s(get(x, mode, "floor", "frr_vrf")))
        add("  ratio agent / floor (FRR VRF table)", lambda x: ratio(get(x, mode, "cold", "frr_vrf"),
                                                                      get(x, mode, "floor", "frr_vrf")))
        add("  agent / floor: all prefixes at the leaf", lambda x: (
            f"{s(get(x, mode, 'cold', 'leaf'), 1)} / {s(get(x, mode, 'floor', 'leaf'), 1)}"
            if get(x, mode, "cold") else "-"))
        add("  agent / floor: start -> first prefix at the leaf", lambda x: (
            both(get(x, mode, "cold", "leaf_first"), get(x, mode, "floor", "leaf_first"))
            if get(x, mode, "cold") else "-"), "<= floor + 5 s",
            (lambda x: get(x, mode, "cold", "leaf_first") <= get(x, mode, "floor", "leaf_first") + 5)
            if mode == "rules" else None)
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
    mode_of = lambda x: "table" if "resync" not in x.get("rules", {}) else "rules"  # noqa: E731
    t.section(f"{prefix}events with N loaded (steering=rules up to 10k, table above) (UML)")
    add("  bind -> address on the dummy, median / p99", lambda x: (
        f"{ms(get(steady(x), 'events', 'dummy_median'))} / {ms(get(steady(x), 'events', 'dummy_p99'))}"),
        "p99 <= 2x median", lambda x: get(steady(x), "events", "dummy_p99")
        <= 2 * get(steady(x), "events", "dummy_median"))
    add("  bind -> prefix in FRR's VRF table, median / p99", lambda x: (
        f"{ms(get(steady(x), 'events', 'frr_median'))} / {ms(get(steady(x), 'events', 'frr_p99'))}"),
        "p99 < 500 ms (native)", lambda x: get(steady(x), "events", "frr_p99") < 0.5)
    add("  burst of binds in one txn -> last on the dummy / in FRR", lambda x: (
        f"{get(steady(x), 'events', 'burst', 'ports')}: "
        f"{s(get(steady(x), 'events', 'burst', 'dummy_last'))} / "
        f"{s(get(steady(x), 'events', 'burst', 'frr_vrf_last'))}"))
    add("  unbind all of them -> last off the dummy / out of FRR", lambda x: (
        f"{get(steady(x), 'events', 'unbind', 'ports')}: "
        f"{s(get(steady(x), 'events', 'unbind', 'dummy_last'))} / "
        f"{s(get(steady(x), 'events', 'unbind', 'frr_vrf_last'))}"))
    t.section(f"{prefix}steady state (steering=rules up to 10k, table above) (UML)")
    add("  steering mode measured", mode_of)
    add("  full resync, nothing changed: agent CPU", lambda x: s(get(steady(x), "resync", "cpu"), 3),
        "<= 0.1 s", lambda x: get(steady(x), "resync", "cpu") <= 0.1)
    add("  full resync: wall time / children CPU (frr, ovs)", lambda x: both(
        get(steady(x), "resync", "duration"), get(steady(x), "resync", "children_cpu")))
    add("  full resync, 100 addresses deleted: agent CPU own / children", lambda x: both(
        get(steady(x), "resync_drift", "proc_cpu"), get(steady(x), "resync_drift", "children_cpu"),
        lambda v: s(v, 3)))
    add("    deleted -> all back / resync reported", lambda x: both(
        get(steady(x), "resync_drift", "back"), get(steady(x), "resync_drift", "resync_reported")))
    add("  idle: CPU per minute, own", lambda x: s(get(steady(x), "idle", "cpu_per_min"), 3))
    add("  idle: CPU per minute, children", lambda x: s(get(steady(x), "idle", "children_cpu_per_min"), 3))
    add("  idle: CPU per minute, own + children", lambda x: s(
        get(steady(x), "idle", "cpu_per_min") + get(steady(x), "idle", "children_cpu_per_min"), 3)
        if get(steady(x), "idle") else "-", "<= 0.1 s",
        lambda x: get(steady(x), "idle", "cpu_per_min") + get(steady(x), "idle", "children_cpu_per_min") <= 0.1)
    t.section(f"{prefix}hand-made drift (ip ... del) -> back (netlink), resync interval 1 h (UML)")
    def drift_cell(x: dict, kind: str) -> str:
        d = get(steady(x), "drift", kind)
        if not d:
            return "-"
        if d.get("max") is None:  # a deletion was not put back within the event timeout
            return f"NOT BACK ({sum(v is None for v in d['seconds'])} of {len(d['seconds'])})"
        return s(d["max"], 3)

    for kind in ("address", "rule", "route"):
        add(f"  {kind}: worst of 3", lambda x, k=kind: drift_cell(x, k),
            "< 1 s", lambda x, k=kind: (get(steady(x), "drift", k, "max") or 99) < 1
            if get(steady(x), "drift", k) else None)
    t.section(f"{prefix}memory")
    add("  RSS after the cold sync / peak after resyncs and events", lambda x: (
        f"{get(steady(x), 'cold', 'rss_mb'):.0f} / {get(steady(x), 'hwm_mb'):.0f} MB"
        if get(steady(x), "hwm_mb") is not None else "-"))
    add("  peak RSS of the agent (VmHWM)", lambda x: (
        "-" if get(steady(x), "hwm_mb") is None else f"{get(steady(x), 'hwm_mb'):.0f} MB"),
        "<= 120 MB at 10k", lambda x: get(steady(x), "hwm_mb") <= 120)
    if int(sizes[-1]) > 10000 if sizes else False:
        add("  peak RSS at the largest size", lambda x: "", "<= 600 MB at 100k",
            lambda x: get(steady(x), "hwm_mb") <= 600, at=largest)
    return t


def agent_table(results: dict) -> str:
    sizes = sorted(results.get("sizes", {}), key=int)
    t = Table(["bench_agent", *(f"N={n}" for n in sizes), "target", ""])
    agent_rows(t, results)
    return t.text() + "\n" + UML_NOTE


def mib(v: Any) -> str:
    return "-" if v is None else f"{v:.0f} MiB"


def mb(v: Any) -> str:
    return "-" if v is None else f"{v / 1e6:.2f} MB"


def cloud_rows(t: Table, results: dict) -> Table:
    """Rows of bench_cloud's results (columns: figure, one per size, target at 100k, verdict).
    Every start figure is given as agent | floor: the agent's rows fetched by ovsdb-client |
    before (ovn.monitor_all) | floor of the whole table (ovsdb-client dump)."""
    sizes = sorted(results.get("sizes", {}), key=int)
    data = [results["sizes"][k] for k in sizes]
    big = data[-1] if data and int(sizes[-1]) >= 100_000 else None

    def add(label: str, fn: Callable[[dict], str], target: str = "",
            check: Callable[[dict], bool] | None = None) -> None:
        ok = None
        if check is not None and big is not None:
            try:
                ok = check(big)
            except (TypeError, KeyError):
                ok = None
        cells = []
        for x in data:
            try:
                cells.append(fn(x))
            except (TypeError, KeyError):
                cells.append("-")
        t.row(label, *cells, target if big is not None or not target else target + " (at 100k)",
              verdict(ok))

    add("  chassis / routers", lambda x: f"{x['chassis']} / {x['routers']}")
    add("  exposures here (agent / before)",
        lambda x: f"{x['agent']['exposures']} / {x['before']['exposures']}", "160")
    add("  Port_Binding rows mirrored (agent / before)",
        lambda x: f"{x['agent']['rows']} / {x['before']['rows']}")
    t.section("  start, up to the first complete desired state: agent | floor (same rows) | "
              "before: ovn.monitor_all | floor (dump)")

    def four(key: str, fmt: Callable[[Any], str], floor_key: str = "") -> Callable[[dict], str]:
        fk = floor_key or key
        return lambda x: " | ".join(fmt(v) for v in (
            x["agent"][key], x["floor"]["selects"][fk], x["before"][key], x["floor"]["dump"][fk]))

    add("  CPU (watcher + model; floor: ovsdb-client)", four("start_cpu_s", s, "cpu_s"),
        "<= 1 s", lambda x: x["agent"]["start_cpu_s"] <= 1.0)
    add("  CPU of the whole process (+ interpreter, imports)",
        lambda x: f"{s(x['agent']['process_cpu_s'])} | - | {s(x['before']['process_cpu_s'])} | -")
    add("  peak RSS", four("maxrss_mib", mib), "<= 80 MiB", lambda x: x["agent"]["maxrss_mib"] <= 80)
    add("  bytes received from the SB", four("bytes", mb), "<= 2 MB", lambda x: x["agent"]["bytes"] <= 2e6)
    add("  SB server CPU for the initial reply (agent | before)",
        lambda x: f"{s(x['agent']['server_cpu_s'])} | {s(x['before']['server_cpu_s'])}")
    t.section("  events elsewhere in the cloud (agent | before: ovn.monitor_all)")
    add("  remote Port_Binding change: bytes each",
        lambda x: f"{x['agent']['remote_change']['bytes']:.0f} | {x['before']['remote_change']['bytes']:.0f} B",
        "0 B", lambda x: x["agent"]["remote_change"]["bytes"] == 0)
    add("  remote Port_Binding change: CPU each",
        lambda x: f"{x['agent']['remote_change']['cpu_ms']:.2f} | {x['before']['remote_change']['cpu_ms']:.2f} ms")
    add("  chassis joins elsewhere (+ its ports): CPU",
        lambda x: f"{x['agent']['join_cpu_ms']:.1f} | {x['before']['join_cpu_ms']:.1f} ms",
        "<= 10 ms", lambda x: x["agent"]["join_cpu_ms"] <= 10)
    add("  chassis leaves elsewhere (- its ports): CPU",
        lambda x: f"{x['agent']['leave_cpu_ms']:.1f} | {x['before']['leave_cpu_ms']:.1f} ms")
    add("  chassis join: bytes received",
        lambda x: f"{x['agent']['join_bytes']:.0f} | {x['before']['join_bytes']:.0f} B")
    return t


def cloud_table(results: dict) -> str:
    sizes = sorted(results.get("sizes", {}), key=int)
    t = Table(["bench_cloud (natively on this host)", *(f"N={n}" for n in sizes), "target", ""])
    cloud_rows(t, results)
    return t.text()

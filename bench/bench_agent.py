"""Benchmark of the whole agent (`ovnbgp run`) at scale, each figure next to a floor measured in
the same boot.

    .venv/bin/python bench/bench_agent.py [--sizes 1000,10000] [--json out.json]

Needs dummy, vrf and a full FRR chain, so on a host without them it boots User-Mode Linux
(tests/vm/uml.py) and runs itself inside. For each size N, on a fresh OVN central (NB, SB,
northd; above --direct-sb-above, 10k, the provider ports written into the SB directly) built
with bulk transactions (bench/agent/topology.py: N provider VM ports bound here,
N/100 tenant VMs with floating IPs, 100 routers with their gateway here and two tenant
subnets each), a node namespace (netdev OVS, the node's FRR, a leaf FRR as BGP peer):

1. floor: `ip -batch` of exactly the objects the agent will make (the model's desired state,
   bench_kernel.batch_lines) in a second node namespace whose FRR runs ovnbgp's rendered config
   and is peered with the same leaf: time to the last address on the dummy, to all prefixes
   in FRR's VRF table, to all of them at the leaf;
2. cold sync: the agent started on the empty node, same three end points (plus its own phases
   from its log), then a check that nothing is missing (a fresh KernelReconciler's plan is
   empty, FRR's VRF table holds exactly the expected prefixes);
3. steady state: CPU (the agent's own and its children's) and wall time of one full resync
   with nothing changed (SIGUSR1), and CPU per minute while idle;
4. events: one spare port bound (Port_Binding.chassis/up by uuid on an open SB connection) ->
   its address on the dummy (netlink notification) -> its prefix in FRR's VRF table (bgpd's
   vty socket, per prefix), `--samples` times; then `--burst` ports bound in one transaction
   (time to the last) and all of them unbound again (time to the last withdrawal);
5. memory: peak RSS (VmHWM) of the agent;
6. steering: for the sizes in --table-sizes, a fresh node in `table` mode (floor and cold
   sync again), and the kernel's route lookup cost (RTM_GETROUTE, pipelined) for the last
   exposed IP and for an address nobody exposes, in both modes.

northd is paused (SIGSTOP) once the SB is built: it runs on the controllers, not on the node
this benchmark stands for, and it would otherwise recompute on the single UML CPU after every
binding. Absolute times inside UML are several times native ones; the ratios are what count.
Not a pass/fail test: figures only (JSON with --json, a table on stdout).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.agent import report  # noqa: E402


def in_uml() -> bool:
    try:
        return "User Mode Linux" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


# --- small helpers -------------------------------------------------------------------------------


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def settle(threshold: float = 0.85, window: float = 0.5, timeout: float = 60.0) -> float:
    """Wait until the CPU is mostly idle (what the previous step started has finished)."""
    def sample() -> tuple[int, int]:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return v[3] + v[4], sum(v)

    deadline = time.monotonic() + timeout
    idle = 0.0
    while time.monotonic() < deadline:
        i0, t0 = sample()
        time.sleep(window)
        i1, t1 = sample()
        idle = (i1 - i0) / max(1, t1 - t0)
        if idle >= threshold:
            break
    return idle


def poll(pred, timeout: float, interval: float):
    """Call pred() until it returns a truthy value; (value, time.monotonic()) or (None, None)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            v = pred()
        except Exception:  # noqa: BLE001 - not ready yet (daemon busy, socket closed)
            v = None
        now = time.monotonic()
        if v:
            return v, now
        if now >= deadline:
            return None, None
        time.sleep(interval)


def spread(name: str, values: list[float]) -> dict:
    """Median, p99, max and every value of `values` (seconds) under `name`_...; None for each
    when there are none (FRR not measured at this size)."""
    if not values:
        return {f"{name}_{k}": None for k in ("median", "p99", "max", "all")}
    return {f"{name}_median": round(statistics.median(values), 4),
            f"{name}_p99": round(pct(values, 99), 4), f"{name}_max": round(max(values), 4),
            f"{name}_all": [round(x, 4) for x in values]}


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(-(-q * len(s) // 100)) - 1))
    return s[k]


def rel(t: float | None, t0: float) -> float | None:
    return None if t is None else round(t - t0, 4)


# --- the pieces ----------------------------------------------------------------------------------


class Size:
    """One size N: the OVN central and topology, built once, and the node-side runs."""

    def __init__(self, n: int, args, work: Path):
        self.n = n
        self.args = args
        self.work = work
        self.central = None
        self.topo = None
        self.node = None
        self.agent = None
        self.result: dict = {"n": n}
        # Above --frr-max the node's FRR runs in a namespace of its own (NodeLab.frr_apart) and
        # the floor has none: the agent's own work is measured, FRR's is not (zebra's time for
        # 100k connected addresses inside User-Mode Linux is hours; README, "Benchmarks").
        self.frr_on = n <= args.frr_max
        self.result["frr"] = "measured" if self.frr_on else "apart"

    # set-up ------------------------------------------------------------------------------------

    def build_ovn(self) -> None:
        from bench.agent.topology import Topology
        from tests.harness.ovn import OvnCentral

        log(f"N={self.n}: building the OVN central")
        self.central = OvnCentral(self.work / "ovn").start()
        self.topo = Topology(self.central, self.n, extra=self.args.samples + self.args.burst,
                             routers=self.args.routers,
                             direct_sb=self.n > self.args.direct_sb_above).build(timeout=self.args.step_timeout)
        os.kill(self.central.daemons["ovn-northd"].pid, signal.SIGSTOP)
        self.result["setup"] = {k: round(v, 2) for k, v in self.topo.timings.items()}
        self.result["exposures"] = len(self.topo.expected)
        log(f"N={self.n}: NB {self.topo.timings['nb']:.1f} s, northd {self.topo.timings['northd']:.1f} s, "
            f"bind {self.topo.timings['bind']:.1f} s; {len(self.topo.expected)} exposures expected")

    def new_node(self, tag: str) -> None:
        from bench.agent.node import NodeSide

        self.node = NodeSide(self.work / f"node-{tag}", self.central,
                             tuple(self.topo.extra_localnets), frr_apart=not self.frr_on).start()

    def config(self, steering: str, workdir: Path):
        from ovnbgp import config as config_mod

        workdir.mkdir(parents=True, exist_ok=True)
        text = self.node.agent_config(workdir, steering=steering)
        return text, config_mod.loads(text)

    def desired(self, cfg):
        """The model's desired state on this SB, computed here as the agent will."""
        from ovnbgp.model.cache import desired_state
        from ovnbgp.ovn.watcher import OvnWatcher

        log(f"N={self.n}: reading the SB and computing the desired state")
        w = OvnWatcher(cfg)
        try:
            w.start(timeout=self.args.step_timeout)
            d = desired_state(w.snapshot(), cfg)
        finally:
            w.stop()
        log(f"N={self.n}: desired state has {len(d.exposures)} exposures")
        got = {str(e.prefix) for e in d.exposures}
        want = self.topo.expected
        if got != want:
            raise SystemExit(f"bench topology and model disagree: missing {sorted(want - got)[:5]}, "
                             f"extra {sorted(got - want)[:5]} (problems: {list(d.problems)[:3]})")
        return d

    # floor -------------------------------------------------------------------------------------

    def floor(self, cfg, d) -> dict:
        import dataclasses
        import ipaddress

        from bench.agent.node import FLOOR_IP, LEAF_FLOOR_IP, VRF
        from bench.agent.probes import (
            AddrMonitor,
            FirstPrefix,
            Vty,
            peer_prefixes_received,
            vrf_prefix_count,
        )
        from bench.bench_kernel import batch_lines
        from ovnbgp.config import Peer
        from ovnbgp.frr.render import render_config
        from tests.harness.frr import wait_bgp_established
        from tests.harness.node_lab import LEAF_AS

        text = None
        if self.frr_on:
            bgp = dataclasses.replace(cfg.bgp, router_id=ipaddress.IPv4Address(FLOOR_IP),
                                      peers=(Peer(address=ipaddress.IPv4Address(LEAF_FLOOR_IP),
                                                  remote_as=LEAF_AS),))
            text = "frr defaults traditional\nhostname floor\n" + render_config(
                dataclasses.replace(cfg, bgp=bgp))
        ns = self.node.start_floor(text)
        if self.frr_on:
            wait_bgp_established(self.node.leaf, FLOOR_IP, timeout=60)
        files = []
        for opt, lines in batch_lines(d):
            if lines:
                f = tempfile.NamedTemporaryFile("w", suffix=".batch", delete=False, dir=self.work)
                f.write("\n".join(lines) + "\n")
                f.close()
                files.append((opt, f.name))
        expected = self.topo.expected
        vty = Vty(self.node.floor.vty_dir / "bgpd.vty") if self.frr_on else None
        leaf = Vty(self.node.leaf.vty_dir / "bgpd.vty")
        mon = AddrMonitor(ns.name)
        settle()
        first = None
        try:
            if self.frr_on:
                first = FirstPrefix(self.node.leaf.vty_dir / "bgpd.vty", FLOOR_IP,
                                    timeout=self.args.step_timeout)
            t0 = time.monotonic()
            for opt, path in files:
                subprocess.run(["ip", "-n", ns.name, *([opt] if opt else []), "-batch", path],
                               check=True, capture_output=True, timeout=self.args.step_timeout)
            t_batch = time.monotonic()
            log(f"N={self.n}: floor: ip -batch done in {t_batch - t0:.1f} s")
            t_dummy = mon.wait_all(expected, self.args.step_timeout)
            log(f"N={self.n}: floor: every address on the dummy at {rel(t_dummy, t0)} s")
            t_frr = t_leaf = t_first = None
            if vty is not None and first is not None:
                _, t_frr = poll(lambda: vrf_prefix_count(vty, VRF) >= len(expected),
                                self.args.step_timeout, 0.2)
                log(f"N={self.n}: floor: every prefix in FRR's VRF table at {rel(t_frr, t0)} s")
                _, t_leaf = poll(lambda: peer_prefixes_received(leaf, FLOOR_IP) >= len(expected),
                                 self.args.step_timeout, 0.2)
                log(f"N={self.n}: floor: every prefix at the leaf at {rel(t_leaf, t0)} s")
                t_first = first.wait(60)
            out = {"batch": rel(t_batch, t0), "dummy": rel(t_dummy, t0), "frr_vrf": rel(t_frr, t0),
                   "leaf": rel(t_leaf, t0), "leaf_first": rel(t_first, t0),
                   "objects": sum(len(lines) for _, lines in batch_lines(d))}
        finally:
            if first is not None:
                first.close()
            mon.close()
            if vty is not None:
                vty.close()
            self.node.stop_floor()
            # The leaf withdraws the floor's routes now: wait until it has none left.
            poll(lambda: _leaf_total(leaf) == 0, 120, 0.5)
            leaf.close()
            for _, path in files:
                os.unlink(path)
        log(f"N={self.n}: floor {out}")
        return out

    # the agent ---------------------------------------------------------------------------------

    def cold_sync(self, text: str, cfg, d, workdir: Path) -> dict:
        from bench.agent.node import VRF
        from bench.agent.probes import (
            AddrMonitor,
            FirstPrefix,
            ProcStat,
            Vty,
            peer_prefixes_received,
            vrf_prefix_count,
        )
        from tests.harness.agent import AgentProcess
        from tests.harness.node_lab import NODE_IP

        expected = self.topo.expected
        vty = Vty(self.node.frr.vty_dir / "bgpd.vty")
        leaf = Vty(self.node.leaf.vty_dir / "bgpd.vty")
        self.mon = AddrMonitor(self.node.ns.name)
        self.agent = AgentProcess(workdir, text, netns=self.node.ns.name)
        settle()
        first = (FirstPrefix(self.node.leaf.vty_dir / "bgpd.vty", NODE_IP, timeout=self.args.step_timeout)
                 if self.frr_on else None)
        wall0 = time.time()
        t0 = time.monotonic()
        self.agent.start(timeout=self.args.step_timeout)
        t_status = time.monotonic()
        log(f"N={self.n}: agent: first sync reported at {rel(t_status, t0)} s")
        t_dummy = self.mon.wait_all(expected, self.args.step_timeout)
        log(f"N={self.n}: agent: every address on the dummy at {rel(t_dummy, t0)} s")
        t_frr = t_leaf = t_first = None
        if first is not None:
            _, t_frr = poll(lambda: vrf_prefix_count(vty, VRF) >= len(expected), self.args.step_timeout, 0.2)
            log(f"N={self.n}: agent: every prefix in FRR's VRF table at {rel(t_frr, t0)} s")
            _, t_leaf = poll(lambda: peer_prefixes_received(leaf, NODE_IP) >= len(expected),
                             self.args.step_timeout, 0.2)
            log(f"N={self.n}: agent: every prefix at the leaf at {rel(t_leaf, t0)} s")
        st = ProcStat.read(self.agent_pid())
        if first is not None:
            t_first = first.wait(60)
            first.close()
        out = {"first_sync_reported": rel(t_status, t0), "dummy": rel(t_dummy, t0),
               "leaf_first": rel(t_first, t0),
               "frr_vrf": rel(t_frr, t0), "leaf": rel(t_leaf, t0),
               "cpu": round(st.cpu, 2), "children_cpu": round(st.children, 2),
               "rss_mb": round(st.rss_mb, 1), "hwm_mb": round(st.hwm_mb, 1),
               "first_reconcile": first_reconcile(self.agent.log()),
               "phases": agent_phases(self.agent.log(), wall0),
               "missing_on_dummy": len(self.mon.missing(expected))}
        settle()
        out["frr_vrf_count"] = vrf_prefix_count(vty, VRF) if self.frr_on else None
        out["kernel_plan_after"] = kernel_leftover(cfg, d, self.node.ns.name)
        out["complete"] = (out["missing_on_dummy"] == 0 and out["kernel_plan_after"] == 0
                           and out["frr_vrf_count"] in (None, len(expected)))
        vty.close()
        leaf.close()
        log(f"N={self.n}: cold sync {out}")
        return out

    def resync(self, repeat: int = 3) -> dict:
        from bench.agent.probes import ProcStat

        pid = self.agent_pid()
        runs = []
        for _ in range(repeat):
            settle()
            before = self.agent.syncs()
            s0 = ProcStat.read(pid)
            t0 = time.monotonic()
            os.kill(pid, signal.SIGUSR1)
            _, t1 = poll(lambda: self.agent.syncs() > before, self.args.step_timeout, 0.02)
            status = self.agent.status()
            s1 = ProcStat.read(pid)
            ls = status.get("last_sync") or {}
            runs.append({"cpu": ls.get("cpu"), "duration": ls.get("duration"),
                         "trigger": ls.get("trigger"), "changes": ls.get("changes"),
                         "proc_cpu": round(s1.cpu - s0.cpu, 3),
                         "rss_mb": round(s1.rss_mb, 1), "hwm_mb": round(s1.hwm_mb, 1),
                         "children_cpu": round(s1.children - s0.children, 3),
                         "signal_to_status": rel(t1, t0)})
        out = {"runs": runs,
               "cpu": statistics.median(r["cpu"] for r in runs),
               "duration": statistics.median(r["duration"] for r in runs),
               "children_cpu": statistics.median(r["children_cpu"] for r in runs)}
        log(f"N={self.n}: resync {out}")
        return out

    def idle(self) -> dict:
        from bench.agent.probes import ProcStat

        pid = self.agent_pid()
        settle()
        syncs = self.agent.syncs()
        s0 = ProcStat.read(pid)
        time.sleep(self.args.idle)
        s1 = ProcStat.read(pid)
        scale = 60.0 / self.args.idle
        out = {"window": self.args.idle, "cpu_per_min": round((s1.cpu - s0.cpu) * scale, 3),
               "children_cpu_per_min": round((s1.children - s0.children) * scale, 3),
               "syncs_in_window": self.agent.syncs() - syncs}
        log(f"N={self.n}: idle {out}")
        return out

    def drift_objects(self, d) -> dict:
        """One address on the dummy, one rule and one route the agent made (IPv4), as `ip`
        arguments to delete them and the key the monitors see them come back under."""
        from bench.bench_kernel import DUMMY

        last = max(d.exposures, key=lambda e: (e.prefix.version == 4, e.prefix)).prefix
        out = {"address": {"del": ["addr", "del", str(last), "dev", DUMMY], "prefix": str(last)}}
        rules = sorted((r for r in d.rules if r.family == 4), key=lambda r: (r.dst is not None, str(r.dst)))
        if rules:
            r = rules[-1]
            dst = str(r.dst) if r.dst is not None else "0.0.0.0/0"
            args = ["rule", "del", "priority", str(r.priority)]
            args += ["to", dst] if r.dst is not None else []
            out["rule"] = {"del": [*args, "lookup", str(r.table)], "dst": dst, "table": r.table}
        routes = sorted((r for r in d.routes if r.dst.version == 4), key=lambda r: (r.gateway is None, r.dst))
        if routes:
            r = routes[-1]
            out["route"] = {"del": ["route", "del", str(r.dst), "dev", r.dev, "table", str(r.table)],
                            "dst": str(r.dst), "table": r.table}
        return out

    def drift(self, d, repeat: int = 3) -> dict:
        """Hand-made drift: `ip ... del` of one address, one rule, one route the agent owns
        (resync interval an hour: only the event path can put them back); seconds from the
        deletion until the kernel announces the object again (netlink notification)."""
        from bench.agent.probes import RouteRuleMonitor

        ns = self.node.ns.name
        objs = self.drift_objects(d)
        rr = RouteRuleMonitor(ns)
        out: dict = {}
        try:
            for kind, o in objs.items():
                times = []
                for _ in range(repeat):
                    settle()
                    syncs = self.agent.syncs()
                    t0 = time.monotonic()
                    subprocess.run(["ip", "-n", ns, *o["del"]], check=True, capture_output=True)
                    if kind == "address":
                        back = self.mon.wait_all([o["prefix"]], self.args.event_timeout, since=t0)
                    else:
                        back = rr.wait_new(kind, o["dst"], o["table"], t0, self.args.event_timeout)
                    times.append(rel(back, t0))
                    if back is None:
                        log(f"N={self.n}: drift {kind} {o['del']} not repaired in "
                            f"{self.args.event_timeout} s:\n" + self.agent.log_tail(20))
                        break
                    if self._last_trigger() == "resync" and self.agent.syncs() != syncs:
                        log(f"N={self.n}: drift {kind}: a full resync ran meanwhile")
                out[kind] = {"seconds": times, "max": None if None in times else max(times),
                             "object": " ".join(o["del"][2:])}
        finally:
            rr.close()
        log(f"N={self.n}: drift repair {out}")
        return out

    def resync_drift(self, d, count: int = 100) -> dict:
        """A full resync (SIGUSR1) that finds `count` addresses gone: they are deleted while the
        agent is stopped (SIGSTOP), then it gets SIGUSR1 and SIGCONT. Agent CPU (its own and
        children's) from the SIGCONT until every address is back and the resync reported."""
        from bench.agent.probes import ProcStat
        from bench.bench_kernel import DUMMY

        pid = self.agent_pid()
        ns = self.node.ns.name
        gone = sorted((e.prefix for e in d.exposures if e.prefix.version == 4), reverse=True)[:count]
        batch = "\n".join(f"addr del {p} dev {DUMMY}" for p in gone) + "\n"
        settle()
        before = self.agent.syncs()
        os.kill(pid, signal.SIGSTOP)
        try:
            subprocess.run(["ip", "-n", ns, "-batch", "-"], input=batch, text=True, check=True,
                           capture_output=True)
            self.mon.wait_all([str(p) for p in gone], 30, kind="del")
            s0 = ProcStat.read(pid)
            os.kill(pid, signal.SIGUSR1)
        finally:
            t0 = time.monotonic()
            os.kill(pid, signal.SIGCONT)
        t_back = self.mon.wait_all([str(p) for p in gone], self.args.step_timeout)
        _, t_sync = poll(lambda: self.agent.syncs() > before, self.args.step_timeout, 0.02)
        settle()
        s1 = ProcStat.read(pid)
        ls = (self.agent.status().get("last_sync") or {})
        out = {"deleted": len(gone), "back": rel(t_back, t0), "resync_reported": rel(t_sync, t0),
               "proc_cpu": round(s1.cpu - s0.cpu, 3), "children_cpu": round(s1.children - s0.children, 3),
               "last_sync_cpu": ls.get("cpu"), "last_sync_changes": ls.get("changes")}
        log(f"N={self.n}: resync with drift {out}")
        return out

    def events(self) -> dict:
        from bench.agent.node import VRF
        from bench.agent.ovsdb import OvsdbClient
        from bench.agent.probes import Vty, vrf_has_prefix, vrf_prefix_count
        from bench.agent.topology import SB

        topo = self.topo
        vty = Vty(self.node.frr.vty_dir / "bgpd.vty")
        sb = OvsdbClient(self.central.sb_remote)
        samples = topo.spare[:self.args.samples]
        burst = topo.spare[self.args.samples:self.args.samples + self.args.burst]
        to_dummy, to_frr, commit = [], [], []
        timeout = self.args.event_timeout
        try:
            settle()
            for p in samples:
                time.sleep(0.3)  # the previous event's FRR/leaf work is done
                t0 = time.monotonic()
                rid = sb.transact_async(SB, topo.bind_ops([p]))
                sb.wait(rid)
                commit.append(time.monotonic() - t0)
                t_dummy = self.mon.wait_all([p.prefix], timeout)
                t_frr = t_dummy
                if self.frr_on:
                    _, t_frr = poll(lambda: vrf_has_prefix(vty, VRF, p.prefix), timeout, 0.005)
                if t_dummy is None or t_frr is None:
                    raise SystemExit(f"event for {p.name} ({p.prefix}) not seen in {timeout} s:\n"
                                     + self.agent.log_tail(30))
                to_dummy.append(t_dummy - t0)
                if self.frr_on:
                    to_frr.append(t_frr - t0)
            out = {"samples": len(samples),
                   "commit_median": round(statistics.median(commit), 4),
                   **spread("dummy", to_dummy), **spread("frr", to_frr)}
            log(f"N={self.n}: events dummy median {out['dummy_median']}, p99 {out['dummy_p99']}; "
                f"frr median {out['frr_median']}, p99 {out['frr_p99']}")

            total = len(topo.expected) + len(samples)
            settle()
            t0 = time.monotonic()
            sb.transact(SB, topo.bind_ops(burst))
            t_dummy = self.mon.wait_all([p.prefix for p in burst], self.args.step_timeout)
            t_frr = None
            if self.frr_on:
                _, t_frr = poll(lambda: vrf_prefix_count(vty, VRF) >= total + len(burst),
                                self.args.step_timeout, 0.05)
            out["burst"] = {"ports": len(burst), "dummy_last": rel(t_dummy, t0),
                            "frr_vrf_last": rel(t_frr, t0)}
            settle()
            spare = samples + burst
            t0 = time.monotonic()
            sb.transact(SB, topo.bind_ops(spare, bound=False))
            t_dummy = self.mon.wait_all([p.prefix for p in spare], self.args.step_timeout, kind="del")
            if self.frr_on:
                _, t_frr = poll(lambda: vrf_prefix_count(vty, VRF) <= len(topo.expected),
                                self.args.step_timeout, 0.05)
            out["unbind"] = {"ports": len(spare), "dummy_last": rel(t_dummy, t0),
                             "frr_vrf_last": rel(t_frr, t0)}
            log(f"N={self.n}: burst {out['burst']}, unbind {out['unbind']}")
        finally:
            sb.close()
            vty.close()
        return out

    def lookups(self, ns: str, last: str) -> dict:
        from bench.agent.probes import UNROUTED, lookup_cost

        return {"exposed_last_us": round(lookup_cost(ns, last) * 1e6, 2),
                "unexposed_us": round(lookup_cost(ns, UNROUTED) * 1e6, 2)}

    def _last_trigger(self) -> str | None:
        """The trigger ("event", "resync") of the agent's last reconcile, from its status file."""
        try:
            status = json.loads((self.agent.state_dir / "status.json").read_text())
        except (OSError, ValueError):
            return None
        return (status.get("last_sync") or {}).get("trigger")

    def agent_pid(self) -> int:
        return self.agent.daemon.pid

    @contextlib.contextmanager
    def spy(self, phase: str):
        """With --profile: py-spy attached to the agent for this phase (on-CPU stacks of every
        thread, collapsed, next to the logs); analyse with bench/agent/spy.py."""
        if not self.args.profile:
            yield
            return
        out = Path(self.args.logs or self.work, f"agent-{self.n}-{phase}.py-spy.txt")
        out.parent.mkdir(parents=True, exist_ok=True)
        proc = subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record", "--pid",
                                 str(self.agent_pid()), "--threads", "--rate", "100", "--format",
                                 "raw", "-o", str(out)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(1)  # attached
        try:
            yield
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()

    def stop_agent(self) -> None:
        if self.agent is not None:
            self.agent.stop()
            if self.args.logs:
                dest = Path(self.args.logs, f"agent-{self.n}-{self.agent.workdir.name}.log")
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_text(self.agent.log())
            self.agent = None
        if getattr(self, "mon", None) is not None:
            self.mon.close()
            self.mon = None

    def stop_node(self) -> None:
        self.stop_agent()
        if self.node is not None:
            self.node.stop()
            self.node = None

    def stop(self) -> None:
        self.stop_node()
        if self.central is not None:
            pid = self.central.daemons.get("ovn-northd")
            if pid is not None and pid.pid:
                try:
                    os.kill(pid.pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass
            self.central.stop()
            if self.args.logs:  # the Southbound server's log: its compactions, next to the agent's
                sb_log = self.central.workdir / "ovsdb-server-sb.log"
                if sb_log.exists():
                    shutil.copy(sb_log, Path(self.args.logs, f"ovsdb-server-sb-{self.n}.log"))
            self.central = None

    # the whole run for this size ---------------------------------------------------------------

    def run(self, modes: list[str]) -> dict:
        self.build_ovn()
        last = max(self.topo.provider, key=lambda p: tuple(int(x) for x in p.ip.split("."))).ip
        for i, mode in enumerate(modes):
            self.new_node(mode)
            workdir = self.work / f"agent-{mode}"
            text, cfg = self.config(mode, workdir)
            d = self.desired(cfg)
            r = self.result.setdefault(mode, {})
            r["floor"] = self.floor(cfg, d)
            empty = self.lookups(self.node.ns.name, last)  # the node before the agent
            r["cold"] = self.cold_sync(text, cfg, d, workdir)
            r["lookup"] = self.lookups(self.node.ns.name, last)
            r["lookup"]["empty_node"] = empty
            if i == 0:  # steady state, events and memory in the first mode of this size
                from bench.agent.probes import ProcStat

                with self.spy("resync"):
                    r["resync"] = self.resync()
                with self.spy("idle"):
                    r["idle"] = self.idle()
                r["drift"] = self.drift(d)
                r["resync_drift"] = self.resync_drift(d)
                with self.spy("events"):
                    r["events"] = self.events()
                r["events"]["hwm_mb_after"] = round(ProcStat.read(self.agent_pid()).hwm_mb, 1)
                r["hwm_mb"] = r["events"]["hwm_mb_after"]
            r["agent_log_tail"] = self.agent.log_tail(5)
            self.stop_node()
        return self.result


def _leaf_total(leaf) -> int:
    data = leaf.json("show bgp ipv4 unicast statistics json")
    for v in data.values():
        if isinstance(v, list) and v:
            return int(v[0].get("totalPrefixes", 0))
    return 0


def agent_phases(text: str, wall0: float) -> dict:
    """Seconds from the start to milestones in the agent's JSON log."""
    import calendar

    marks = {"first_log": None, "initial_dump": None, "first_reconcile": None}
    for line in text.splitlines():
        if not line.startswith("{"):
            continue
        try:
            rec = json.loads(line)
            ts = rec["ts"]
            t = calendar.timegm(time.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S")) + float(ts[19:-1] or 0)
        except (ValueError, KeyError):
            continue
        msg = rec.get("msg", "")
        if marks["first_log"] is None:
            marks["first_log"] = t
        if marks["initial_dump"] is None and msg.startswith("initial dump read"):
            marks["initial_dump"] = t
        if marks["first_reconcile"] is None and msg.startswith("reconciled"):
            marks["first_reconcile"] = t
            break
    return {k: (round(v - wall0, 2) if v is not None else None) for k, v in marks.items()}


def first_reconcile(text: str) -> dict:
    """Wall and CPU seconds of the agent's first reconcile, from its log line."""
    import re

    for line in text.splitlines():
        m = re.search(r"reconciled \(resync: start\) in ([0-9.]+)s \(([0-9.]+)s CPU\)", line)
        if m:
            return {"duration": float(m.group(1)), "cpu": float(m.group(2))}
    return {}


def kernel_leftover(cfg, d, netns: str) -> int:
    """Changes a fresh KernelReconciler would still make (0: everything is in place)."""
    from ovnbgp.kernel.netlink import KernelReconciler

    rec = KernelReconciler(cfg, netns=netns)
    try:
        return len(rec.diff(d, rec.observe(d)))
    finally:
        rec.close()


# --- entry points --------------------------------------------------------------------------------


def run_here(args) -> dict:
    for mod in ("vrf", "dummy", "veth", "tun"):
        subprocess.run(["modprobe", mod], capture_output=True)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    table_sizes = ({int(s) for s in args.table_sizes.split(",") if s} if args.table_sizes
                   else {max(sizes)})
    rules_max = args.rules_max
    results = {"meta": report.meta(in_uml()), "sizes": {}}
    for n in sizes:
        work = Path(tempfile.mkdtemp(prefix=f"bench-agent-{n}.", dir="/tmp"))
        size = Size(n, args, work)
        try:
            modes = (["rules"] if n <= rules_max else []) + (["table"] if n in table_sizes else [])
            results["sizes"][str(n)] = size.run(modes)
        finally:
            size.stop()
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1))
    return results


# User-Mode Linux maps its guest memory page by page: a 12G guest at 100k exposures runs into
# the host's default vm.max_map_count (65530), and then dies with "UML ran out of memory on the
# host side" (mmap ENOMEM) minutes into the run.
MAP_COUNT_PER_GIB = 40000


def ensure_map_count(mem: str) -> None:
    """Before booting a guest of `mem`: raise the host's vm.max_map_count when it is too low
    (as root, saying so), else say how; the guest can die with 'UML ran out of memory'."""
    gib = int(mem.rstrip("Gg")) if mem[:-1].isdigit() and mem[-1] in "Gg" else 0
    path = Path("/proc/sys/vm/max_map_count")
    try:
        have = int(path.read_text())
    except (OSError, ValueError):
        return
    need = gib * MAP_COUNT_PER_GIB
    if have >= need:
        return
    if os.geteuid() == 0:
        try:
            path.write_text(f"{need}\n")
            print(f"bench_agent: raised vm.max_map_count from {have} to {need} for a {mem} guest",
                  file=sys.stderr, flush=True)
            return
        except OSError as e:
            print(f"bench_agent: could not raise vm.max_map_count: {e}", file=sys.stderr, flush=True)
    print(f"bench_agent: vm.max_map_count is {have}; a {mem} guest may need about {need} "
          f"(sysctl -w vm.max_map_count={need}), or it can die with 'UML ran out of memory'",
          file=sys.stderr, flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default=os.environ.get("BENCH_SIZES", "1000,10000"))
    ap.add_argument("--table-sizes", default="",
                    help="sizes that also run steering=table (default: the largest)")
    ap.add_argument("--rules-max", type=int, default=10000,
                    help="the largest size that runs steering=rules (above it: table only)")
    ap.add_argument("--direct-sb-above", type=int, default=10000,
                    help="above this size the provider ports are written into the SB directly, "
                    "not made by northd (bench/agent/topology.py: direct_sb)")
    ap.add_argument("--frr-max", type=int, default=10000,
                    help="the largest size whose FRR end points are measured; above it the "
                    "node's FRR runs in a namespace of its own and the floor has none")
    ap.add_argument("--samples", type=int, default=50)
    ap.add_argument("--burst", type=int, default=500)
    ap.add_argument("--routers", type=int, default=100)
    ap.add_argument("--idle", type=float, default=60.0, help="seconds of the idle CPU window")
    ap.add_argument("--step-timeout", type=float, default=900.0)
    ap.add_argument("--event-timeout", type=float, default=30.0)
    ap.add_argument("--timeout", type=float, default=2400.0, help="the whole UML boot")
    ap.add_argument("--mem", default=None, help="the UML guest's memory (default 4G, 12G "
                    "above 10k: three FRRs, OVN and the agent with 100k routes)")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--logs", help="copy the agent logs into this directory")
    ap.add_argument("--profile", action="store_true", help="attach py-spy (pip install py-spy into "
                    "the venv) to the agent during the resync and event phases; stacks go next "
                    "to the logs")
    ap.add_argument("--here", action="store_true", help="run on this kernel (needs dummy, vrf)")
    args = ap.parse_args()
    if args.here or in_uml():
        results = run_here(args)
        print(report.agent_table(results), flush=True)
        return 0
    from tests.vm import uml

    with tempfile.TemporaryDirectory(prefix="ovnbgp-bench-agent.") as work:
        argv = [sys.executable, str(Path(__file__).resolve()), "--json", "/mnt/bench_agent.json",
                "--logs", "/mnt/logs"]
        if args.profile:
            argv += ["--profile"]
        for k in ("sizes", "table_sizes", "rules_max", "frr_max", "direct_sb_above", "samples", "burst", "routers",
                  "idle", "step_timeout", "event_timeout"):
            argv += [f"--{k.replace('_', '-')}", str(getattr(args, k))]
        largest = max(int(x) for x in args.sizes.split(",") if x)
        mem = args.mem or ("4G" if largest <= 10000 else "12G")
        ensure_map_count(mem)
        res = uml.run(argv, mem=mem, workdir=work, timeout=args.timeout, cwd=REPO,
                      expose=[REPO, sys.prefix])
        out = Path(work, "bench_agent.json")
        if out.exists() and args.json:
            Path(args.json).write_text(out.read_text())
        if args.logs and Path(work, "logs").is_dir():
            shutil.copytree(Path(work, "logs"), args.logs, dirs_exist_ok=True)
    if res.status:
        print(f"bench_agent: guest exited with status {res.status}", file=sys.stderr)
    return res.status


if __name__ == "__main__":
    sys.exit(main())

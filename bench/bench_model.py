"""Benchmark of the pure model: full computation at 10k ports and single-event incremental updates.

    .venv/bin/python bench/bench_model.py [--ports 10000] [--routers 50] [--repeat 5]

Builds a hand-made Southbound snapshot shaped like a busy chassis: `ports` provider VM ports
(dual-stack, 80% bound here), `routers` routers whose gateway is on this chassis, each with two
tenant subnets and tenant VMs, and DVR floating IPs. Prints the median time of:
- desired_state(snapshot, cfg) (the reference, everything from scratch);
- ModelCache(snapshot, cfg) (the same plus the incremental indexes);
- ModelCache.update() for one event of each kind (VM bound, VM unbound, FIP set, tenant port
  created, router interface attached, gateway failover), on one long-lived cache, with and
  without gc.freeze() after the initial build.
With --real-sb it instead starts a real OVN central + OVS (tests/harness), creates and binds
`ports` VM ports, and times OvnWatcher.start() (the cold initial load), snapshot(),
desired_state() on that snapshot, and one SB write -> on_dirty -> ModelCache.update().

Not a pass/fail test; figures go in the engineer's notes.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ovnbgp.config import Config  # noqa: E402
from ovnbgp.model.cache import Changes, ModelCache, desired_state  # noqa: E402
from tests.unit.sb_builder import SbBuilder, resident, uid  # noqa: E402


def build(ports: int, routers: int) -> SbBuilder:
    b = SbBuilder(chassis=[f"ch{i}" for i in range(1, 51)])
    pub = b.provider_network("public")
    for i in range(ports):
        a, c = divmod(i, 250)
        b.vm(f"vm{i}", pub, f"fa:16:3e:00:{a // 256:02x}:{a % 256:02x} 172.{16 + a // 256}.{a % 256}.{c + 1} "
             f"2001:db8::{i + 1:x}", chassis="ch1" if i % 5 else "ch2")
    for r in range(routers):
        rdp = b.router(f"r{r}", pub, "fa:16:3e:b5:{:02x}:{:02x}".format(*divmod(r, 256)),
                       f"100.64.{r // 200}.{r % 200 + 1}/16", chassis="ch1")
        nat = []
        for s in range(2):
            t = b.tenant_network(f"t{r}-{s}")
            b.router_interface(f"r{r}", rdp, t, f"t{s}", f"fa:16:3e:01:{r % 256:02x}:{s:02x}",
                               f"10.{r % 250}.{s}.1/24")
            for v in range(20):
                name = f"tvm{r}-{s}-{v}"
                b.vm(name, t, f"fa:16:3e:02:{r % 256:02x}:{s * 32 + v:02x} 10.{r % 250}.{s}.{v + 10}",
                     chassis=f"ch{v % 50 + 1}")
                if v < 5:
                    nat.append(f"fa:16:3e:03:{r % 256:02x}:{s * 32 + v:02x} "
                               f"100.65.{r % 250}.{s * 32 + v} {resident(name)}")
        b.set_nat(f"r{r}", *nat)
    return b


def timed(fn, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ports", type=int, default=10000)
    ap.add_argument("--routers", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--events", type=int, default=50)
    args = ap.parse_args()
    cfg = Config()
    b = build(args.ports, args.routers)
    snap = b.snapshot()
    print(f"snapshot: {len(snap.port_bindings)} Port_Binding rows "
          f"({args.ports} provider VM ports, {args.routers} routers with local gateways)")
    t_full, state = timed(lambda: desired_state(snap, cfg), args.repeat)
    print(f"desired_state (full):       {t_full * 1000:8.1f} ms  -> {len(state.exposures)} exposures, "
          f"{len(state.rules)} rules, {len(state.routes)} routes, {len(state.neighbours)} neighbours")
    t_cache, cache = timed(lambda: ModelCache(snap, cfg, log_problems=False), args.repeat)
    print(f"ModelCache build:           {t_cache * 1000:8.1f} ms")

    # Each event is a (do, undo) pair of row changes, applied to ONE long-lived cache, as the
    # daemon does; the median over repeats includes the garbage collector's amortised share.
    def vm_bound():
        u = uid("pb:newvm")
        row = dataclasses.replace(b.row("vm1"), uuid=u, logical_port="newvm",
                                  mac=("fa:16:3e:aa:00:01 198.51.100.10",), chassis="ch1")
        return {u: row}, {u: None}

    def vm_unbound():
        row = b.row("vm1")
        return {row.uuid: dataclasses.replace(row, chassis=None, up=False)}, {row.uuid: row}

    def fip_set():
        row = b.row("gw-r0")
        entry = f"fa:16:3e:aa:00:02 100.66.0.1 {resident('vm2')}"
        return {row.uuid: dataclasses.replace(row, nat_addresses=row.nat_addresses + (entry,))}, {row.uuid: row}

    def tenant_port():
        u = uid("pb:newtvm")
        row = dataclasses.replace(b.row("tvm0-0-1"), uuid=u, logical_port="newtvm",
                                  mac=("fa:16:3e:aa:00:03 10.0.0.200",))
        return {u: row}, {u: None}

    def attach():
        lrp = dataclasses.replace(b.row("lrp-r0-t0"), uuid=uid("pb:lrp-new"), logical_port="lrp-new",
                                  mac=("fa:16:3e:aa:00:04 10.200.0.1/24",), options={"peer": "sw-new"})
        sw = dataclasses.replace(b.row("r0-t0"), uuid=uid("pb:sw-new"), logical_port="sw-new",
                                 datapath=uid("dp:t-new"), options={"peer": "lrp-new"})
        return {lrp.uuid: lrp, sw.uuid: sw}, {lrp.uuid: None, sw.uuid: None}

    def failover():
        row = b.row("cr-lrp-r1-gw")
        return {row.uuid: dataclasses.replace(row, chassis="ch2")}, {row.uuid: row}

    events = [("VM port bound here", vm_bound), ("VM port unbound", vm_unbound), ("FIP set", fip_set),
              ("tenant port created", tenant_port), ("router interface attached", attach),
              ("gateway failover (cr-lrp moves away)", failover)]
    for freeze in (False, True):
        cache = ModelCache(snap, cfg, log_problems=False)
        if freeze:
            gc.collect()
            gc.freeze()  # what a daemon can do after its initial build
        print(f"-- single-event ModelCache.update(), median of {args.events} (gc.freeze() after build: {freeze})")
        for name, make in events:
            do, undo = make()
            times = []
            for _ in range(args.events):
                before = cache.state
                t = time.perf_counter()
                new = cache.update(Changes(port_bindings=do))
                times.append(time.perf_counter() - t)
                delta = sum(map(len, new.changes(before, "exposures")))
                cache.update(Changes(port_bindings=undo))
            print(f"update: {name:38s} {statistics.median(times) * 1000:8.2f} ms  max {max(times) * 1000:6.1f} ms "
                  f"({delta} exposures changed)")
        gc.unfreeze()


def real_sb(ports: int, repeat: int) -> None:  # noqa: C901
    """The watcher against a real SB: cold load of `ports` bound VM ports, snapshot, one event."""
    import json
    import resource
    import shutil
    import subprocess
    import tempfile
    import threading

    from ovnbgp.config import OvnConfig
    from ovnbgp.ovn.watcher import OvnWatcher
    from tests.harness.netns import Netns, unique_name
    from tests.harness.ovn import OvnCentral
    from tests.harness.ovs import OvsNode

    work = Path(tempfile.mkdtemp(prefix="ovnbgp-bench-"))
    central = OvnCentral(work / "ovn").start()
    ovs = ns = None
    try:
        ns = Netns(unique_name("bench")).create()  # the netdev bridge's tap lives there
        ovs = OvsNode(work / "ovs", netns=ns.name).start()
        ovs.vsctl("set", "open", ".", "external_ids:system-id=ch1",
                  "external_ids:ovn-bridge-mappings=public:br-ex")
        ovs.add_bridge("br-ex")
        central.sbctl("chassis-add", "ch1", "geneve", "127.0.0.1")
        nb = ["ls-add", "public", "--", "lsp-add", "public", "ln-public", "--", "lsp-set-type",
              "ln-public", "localnet", "--", "lsp-set-options", "ln-public", "network_name=public"]
        for i in range(ports):
            a, c = divmod(i, 250)
            nb += ["--", "lsp-add", "public", f"vm{i}", "--", "lsp-set-addresses", f"vm{i}",
                   f"fa:16:3e:00:{a // 256:02x}:{a % 256:02x} 172.{16 + a // 256}.{a % 256}.{c + 1}"]
        t = time.perf_counter()
        central.nbctl(*nb, timeout=300)
        central.sync(timeout=300)
        print(f"real SB: {ports} ports created and northd synced in {time.perf_counter() - t:.1f} s")
        ch = central.sbctl("--bare", "--columns=_uuid", "find", "Chassis", "name=ch1").strip()
        uuids = central.sbctl("--bare", "--columns=_uuid", "find", "Port_Binding", "type=\"\"",
                              timeout=120).split()
        t = time.perf_counter()
        for i in range(0, len(uuids), 1000):  # by uuid: no per-command table search
            cmds = []
            for u in uuids[i:i + 1000]:
                cmds += ["--", "set", "Port_Binding", u, f"chassis={ch}", "up=true"]
            central.sbctl(*cmds[1:], timeout=300)
        print(f"real SB: {len(uuids)} ports bound in {time.perf_counter() - t:.1f} s")

        cfg = Config(ovn=OvnConfig(sb_remotes=(central.sb_remote,), ovs_remote=ovs.remote))
        seen = threading.Event()
        target: dict = {}

        def on_dirty(keys, cause):
            if target.get("uuid") in keys:
                seen.set()

        loads = []
        for _ in range(repeat):
            w = OvnWatcher(cfg, on_dirty=on_dirty)
            t = time.perf_counter()
            w.start(timeout=300)
            loads.append(time.perf_counter() - t)
            if _ != repeat - 1:
                w.stop()
        print(f"watcher start (connect + initial dump of {ports} ports, mirrored): "
              f"median {statistics.median(loads):.2f} s (of {repeat})")
        t_snap, snap = timed(w.snapshot, repeat)
        print(f"watcher snapshot():          {t_snap * 1000:8.1f} ms")
        t_full, state = timed(lambda: desired_state(snap, cfg), repeat)
        print(f"desired_state on it:         {t_full * 1000:8.1f} ms -> {len(state.exposures)} exposures")
        gc.collect()
        gc.freeze()  # the IDL's rows are long-lived: keep them out of the collector's way
        t_full, state = timed(lambda: desired_state(snap, cfg), repeat)
        print(f"  same after gc.freeze():    {t_full * 1000:8.1f} ms")
        cache = ModelCache(snap, cfg, log_problems=False)
        lat = []
        for i in range(repeat * 4):
            u = uuids[i]
            target["uuid"] = u
            seen.clear()
            t = time.perf_counter()
            # ovsdb-client, not ovn-sbctl: ovn-sbctl first downloads the whole table (~0.5 s here)
            txn = json.dumps(["OVN_Southbound", {"op": "update", "table": "Port_Binding",
                                                 "where": [["_uuid", "==", ["uuid", u]]],
                                                 "row": {"up": False}}])  # a bound VM goes down
            subprocess.run(["ovsdb-client", "transact", central.sb_remote, txn], check=True,
                           capture_output=True)
            if not seen.wait(10):
                raise SystemExit("the watcher did not report the change")
            t_dirty = time.perf_counter()
            cache.update(w.changes({u}))
            lat.append((t_dirty - t, time.perf_counter() - t_dirty))
        print(f"one SB write (ovsdb-client transact) -> on_dirty: median "
              f"{statistics.median(x for x, _ in lat) * 1000:.1f} ms; -> ModelCache.update done: "
              f"+{statistics.median(y for _, y in lat) * 1000:.1f} ms")
        print(f"max RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
        w.stop()
    finally:
        if ovs is not None:
            ovs.stop()
        if ns is not None:
            ns.delete()
        central.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if "--real-sb" in sys.argv:
        sys.argv.remove("--real-sb")
        ap = argparse.ArgumentParser()
        ap.add_argument("--ports", type=int, default=10000)
        ap.add_argument("--repeat", type=int, default=3)
        a = ap.parse_args()
        real_sb(a.ports, a.repeat)
    else:
        main()

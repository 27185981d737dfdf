"""Memory of the Southbound mirror: bytes per mirrored Port_Binding row, natively.

    .venv/bin/python bench/bench_mirror.py [--rows 10000] [--tracemalloc]

Writes a CloudSb (bench/cloud/topology.py) of `rows` Port_Bindings into a bare Southbound
ovsdb-server, every VM bound to this chassis (so the watcher mirrors all of them, as on a
100k-exposure node), starts an OvnWatcher in this process and prints the RSS it added per
mirrored row, the process's peak RSS while it loaded (VmHWM, reset before the watcher starts)
(and, with --tracemalloc, the Python allocations per row by file). Not a test.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.agent.ovsdb import OvsdbClient  # noqa: E402
from bench.cloud.servers import Databases  # noqa: E402
from bench.cloud.topology import THIS, CloudSb  # noqa: E402


def rss_kib(field: str = "VmRSS") -> int:
    """VmRSS (now) or VmHWM (the peak since the last reset_peak) of this process, in KiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field}")


def reset_peak() -> None:
    """Start VmHWM afresh (Linux >= 4.0), so the peak is the watcher's, not the set-up's."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10000)
    ap.add_argument("--tracemalloc", action="store_true")
    ap.add_argument("--node", action="store_true",
                    help="then the model and the kernel reconciler (table steering, no dummy: "
                    "routes only) in a fresh network namespace, as an agent would")
    args = ap.parse_args()
    from ovnbgp.config import Config, OvnConfig
    from ovnbgp.ovn.watcher import OvnWatcher

    dbs = Databases(Path(tempfile.mkdtemp(prefix="ovnbgp-mirror-"))).start()
    try:
        sb = CloudSb(args.rows).build()
        for pb in sb.pbs:  # every VM here: the mirror holds every row
            if pb.type == "" and pb.chassis is not None:
                pb.chassis = THIS
        with OvsdbClient(dbs.sb_remote, timeout=600) as db:
            for ops in sb.transactions():
                db.transact("OVN_Southbound", ops)
        del sb
        gc.collect()
        cfg = Config(ovn=OvnConfig(sb_remotes=(dbs.sb_remote,), ovs_remote=dbs.ovs_remote))
        if args.tracemalloc:
            import tracemalloc
            tracemalloc.start()
        before = rss_kib()
        reset_peak()
        t = time.perf_counter()
        w = OvnWatcher(cfg)
        w.start(timeout=900)
        took = time.perf_counter() - t
        gc.collect()
        rows = len(w.snapshot().port_bindings)
        added = (rss_kib() - before) * 1024
        peak = rss_kib("VmHWM") * 1024
        print(f"{rows} rows mirrored in {took:.1f} s: RSS +{added / 1e6:.1f} MB, "
              f"{added / rows:.0f} B per row; peak RSS {peak / 1e6:.1f} MB "
              f"(VmHWM, +{(peak - before * 1024) / 1e6:.1f} MB over the start's)")
        if args.tracemalloc:
            snap = tracemalloc.take_snapshot()
            stats = snap.statistics("filename")
            total = sum(s.size for s in stats)
            print(f"python allocations: {total / rows:.0f} B per row")
            for s in stats[:8]:
                print(f"  {s.size / rows:7.0f} B/row  {s.traceback[0].filename}")
            for s in snap.statistics("lineno")[:12]:
                print(f"  {s.size / rows:7.0f} B/row  {s.traceback[0].filename}:{s.traceback[0].lineno}")
        if args.node:
            node_side(w, cfg, before)
        w.stop()
    finally:
        dbs.stop()
    return 0


def node_side(w, cfg, before_kib: int) -> None:
    """The rest of an agent's cold start natively, on a kernel without the dummy and VRF
    drivers: the model from the mirror, then the kernel reconciler in table steering with
    advertise off (the host routes in br-ex's table, the rules, the sysctls; no addresses),
    a no-change reconcile and a full one (dump), with CPU and the peak RSS of the process."""
    import dataclasses
    import subprocess

    from ovnbgp.kernel.netlink import KernelReconciler
    from ovnbgp.model.cache import ModelCache

    cfg = dataclasses.replace(cfg, kernel=dataclasses.replace(cfg.kernel, steering="table"))
    cpu = time.process_time()
    cache = ModelCache(w.snapshot(), cfg)
    d = cache.state
    print(f"model: {len(d.exposures)} exposures, {len(d.routes)} routes in "
          f"{time.process_time() - cpu:.2f} s CPU; peak RSS {rss_kib('VmHWM') / 1e3:.0f} MB")
    ns = f"ovnbgp-mirror-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "-n", ns, "link", "add", "br-ex", "type", "bridge"], check=True)
        subprocess.run(["ip", "-n", ns, "link", "set", "br-ex", "up"], check=True)
        work = Path(tempfile.mkdtemp(prefix="ovnbgp-mirror-node-"))
        rec = KernelReconciler(cfg.kernel, netns=ns, advertise=False, rt_tables_file=work / "rt.conf",
                               state_path=work / "state.json")
        for what, full in (("cold", False), ("no change", False), ("full (dump)", True)):
            cpu, t = time.process_time(), time.perf_counter()
            res = rec.reconcile(d, full=full)
            print(f"kernel {what}: {len(res.plan) if res.plan else 0} changes, "
                  f"{time.perf_counter() - t:.2f} s wall, {time.process_time() - cpu:.2f} s CPU, "
                  f"ok={res.ok}; peak RSS {rss_kib('VmHWM') / 1e3:.0f} MB")
        rec.close()
        print(f"process: RSS {rss_kib() / 1e3:.0f} MB, peak {rss_kib('VmHWM') / 1e3:.0f} MB "
              f"(+{(rss_kib('VmHWM') - before_kib) / 1e3:.0f} MB over the start's)")
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)


if __name__ == "__main__":
    sys.exit(main())

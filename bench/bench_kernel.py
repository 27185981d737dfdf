"""Benchmark of the kernel reconciler: cold apply of N exposures vs `ip -batch` of the same objects.

    .venv/bin/python bench/bench_kernel.py [--sizes 1000,10000] [--modes rules,table] [--repeat 3]

Needs the dummy and vrf drivers, so on a host without them (these machines, CI) it boots
User-Mode Linux (tests/vm/uml.py) and runs itself inside; inside UML (or with --here on a
kernel that has them) it runs directly. For each size and steering mode, in a fresh network
namespace with a provider bridge each time:
- ip -batch: `ip -batch` of the same netlink objects in the same order (VRF, dummy, bridge
  IPs, neighbour, routes, rules, dummy addresses); the floor;
- ovnbgp cold: KernelReconciler construction + observe() + diff() + apply() on the empty
  namespace (the time to the last exposure being on the dummy);
- restart: a fresh KernelReconciler's observe() + diff() on the applied namespace (what an
  agent restart costs; the plan must come out empty);
- lookup: the kernel's route lookup for a destination that is not exposed (RTM_GETROUTE,
  2000 of them pipelined, best of 5 rounds, per lookup), and in brackets how much more it
  costs than in the empty namespace: what every packet to or through the node that ovnbgp does not steer
  pays, since with "rules" steering the kernel walks one ip rule per exposure first.
Exposures are half IPv4 /32, half IPv6 /128, plus one cr-lrp and one tenant subnet (the
shape of tests/integration/test_kernel_netlink.py). Each figure is the median of --repeat
runs (ip -batch and ovnbgp alternate), so both see the same machine load. Not a pass/fail
test: figures only.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.agent.probes import lookup_cost  # noqa: E402
from ovnbgp.config import KernelConfig  # noqa: E402
from ovnbgp.kernel.netlink import KernelReconciler  # noqa: E402
from ovnbgp.model.records import DesiredState  # noqa: E402
from tests.integration.test_kernel_netlink import make_desired  # noqa: E402

PROTO = 240
VRF, VRF_TABLE, DUMMY = "ovn-bgp-vrf", 10, "ovn"


def in_uml() -> bool:
    try:
        return "User Mode Linux" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


def sh(*argv: str, input: str | None = None) -> None:
    cp = subprocess.run(argv, input=input, text=True, capture_output=True)
    if cp.returncode:
        raise SystemExit(f"{' '.join(argv)} failed ({cp.returncode}): {cp.stderr.strip()[:2000]}")


def fresh_ns(name: str) -> None:
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
    sh("ip", "netns", "add", name)
    sh("ip", "-n", name, "link", "set", "lo", "up")
    sh("ip", "-n", name, "link", "add", "br-ex", "type", "bridge")
    sh("ip", "-n", name, "link", "set", "br-ex", "up")


def batch_lines(d: DesiredState) -> list[tuple[str, list[str]]]:
    """iproute2 batches creating what the reconciler creates, in its order: (family option,
    lines) each; `ip rule` does not take the family from the address, so IPv6 rules are a
    `-6` batch of their own (between the steering and the dummy addresses)."""
    out = [f"link add {VRF} type vrf table {VRF_TABLE}", f"link set {VRF} up",
           f"link add {DUMMY} type dummy", f"link set {DUMMY} master {VRF} up"]
    v6only: list[str] = []
    for b in sorted(d.bridges):
        for a in b.addresses:
            out.append(f"addr add {a} dev {b.name}" + (" nodad" if a.version == 6 else ""))
    for n in sorted(d.neighbours):
        out.append(f"neigh replace {n.ip} lladdr {n.mac} dev {n.dev} nud permanent protocol {PROTO}")
    for r in sorted(d.routes, key=lambda r: (r.gateway is not None, r.table, r.dst.version, r.dst)):
        via = f" via {r.gateway}" if r.gateway else ""
        scope = " scope link" if r.scope_link and r.dst.version == 4 else ""
        out.append(f"route add {r.dst}{via} dev {r.dev}{scope} table {r.table} proto {PROTO}")
    for r in sorted(d.rules, key=lambda r: (r.family, r.dst is not None, str(r.dst))):
        line = f"rule add{f' to {r.dst}' if r.dst else ''} lookup {r.table} priority {r.priority} protocol {PROTO}"
        (v6only if r.family == 6 else out).append(line)
    dummy = []
    for e in sorted(d.exposures, key=lambda e: (e.prefix.version, e.prefix)):
        p = e.prefix
        dummy.append(f"addr add {p.network_address}/{p.prefixlen} dev {DUMMY}" + (" nodad" if p.version == 6 else ""))
    return [("", out), ("-6", v6only), ("", dummy)]


def run_ip_batch(ns: str, d: DesiredState) -> float:
    batches = []
    for opt, lines in batch_lines(d):
        if not lines:
            continue
        with tempfile.NamedTemporaryFile("w", suffix=".batch", delete=False) as f:
            f.write("\n".join(lines) + "\n")
        batches.append((opt, f.name))
    try:
        t = time.perf_counter()
        for opt, path in batches:
            sh("ip", "-n", ns, *([opt] if opt else []), "-batch", path)
        return time.perf_counter() - t
    finally:
        for _, path in batches:
            os.unlink(path)


def run_ovnbgp(ns: str, d: DesiredState, workdir: Path) -> dict[str, float]:
    kw = dict(netns=ns, rt_tables_file=workdir / "rt_tables.conf", state_path=workdir / "state.json")
    cfg = KernelConfig(route_protocol=PROTO)
    t0 = time.perf_counter()
    rec = KernelReconciler(cfg, **kw)
    t1 = time.perf_counter()
    obs = rec.observe(d)
    t2 = time.perf_counter()
    plan = rec.diff(d, obs)
    t3 = time.perf_counter()
    res = rec.apply(plan)
    t4 = time.perf_counter()
    rec.close()
    if not res.ok:
        raise SystemExit(f"apply failed: {res.lines()[:5]}")
    fresh = KernelReconciler(cfg, **kw)
    t5 = time.perf_counter()
    again = fresh.diff(d, fresh.observe(d))
    t6 = time.perf_counter()
    fresh.close()
    if not again.empty():
        raise SystemExit(f"restart plan not empty: {again.lines()[:5]}")
    return {"cold": t4 - t0, "init": t1 - t0, "observe": t2 - t1, "diff": t3 - t2,
            "apply": t4 - t3, "restart": t6 - t5, "changes": float(len(plan)),
            "lookup": lookup_cost(ns)}


def bench(sizes: list[int], modes: list[str], repeat: int) -> None:
    for mod in ("dummy", "vrf"):
        subprocess.run(["modprobe", mod], capture_output=True)
    print(f"kernel {os.uname().release}{' (User-Mode Linux, 1 CPU)' if in_uml() else ''}; "
          f"ovnbgp's pipelined pyroute2 socket vs iproute2 -batch; median of {repeat}", flush=True)
    print(f"{'exposures':>9} {'steering':>8} {'objects':>8} {'ip -batch':>10} {'ovnbgp cold':>12} "
          f"{'ratio':>6}   {'observe':>8} {'diff':>6} {'apply':>7} {'restart':>8}   lookup (vs empty ns)",
          flush=True)
    ns = "ovnbgp-bench"
    with tempfile.TemporaryDirectory(prefix="ovnbgp-bench.") as tmp:
        for n in sizes:
            for mode in modes:
                d = make_desired(n, steering=mode)
                floors, runs = [], []
                for i in range(repeat):
                    fresh_ns(ns)
                    floors.append(run_ip_batch(ns, d))
                    fresh_ns(ns)
                    base = lookup_cost(ns)
                    work = Path(tmp, f"{n}-{mode}-{i}")
                    work.mkdir()
                    runs.append(run_ovnbgp(ns, d, work))
                    runs[-1]["extra"] = runs[-1]["lookup"] - base
                floor = statistics.median(floors)
                r = {k: statistics.median(x[k] for x in runs) for k in runs[0]}
                print(f"{n:>9} {mode:>8} {int(r['changes']):>8} {floor:>9.2f}s {r['cold']:>11.2f}s "
                      f"{r['cold'] / floor:>5.2f}x   {r['observe']:>7.2f}s {r['diff']:>5.2f}s "
                      f"{r['apply']:>6.2f}s {r['restart']:>7.2f}s "
                      f"{r['lookup'] * 1e6:>7.1f}us ({r['extra'] * 1e6:+.1f}us)",
                      flush=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,10000")
    ap.add_argument("--modes", default="rules,table")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--here", action="store_true", help="run on this kernel (needs dummy and vrf)")
    ap.add_argument("--timeout", type=float, default=900)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    modes = [m for m in args.modes.split(",") if m]
    if args.here or in_uml():
        bench(sizes, modes, max(1, args.repeat))
        return 0
    from tests.vm import uml  # boot User-Mode Linux and run this script inside

    with tempfile.TemporaryDirectory(prefix="ovnbgp-bench-vm.") as work:
        res = uml.run([sys.executable, str(Path(__file__).resolve()), "--sizes", args.sizes,
                       "--modes", args.modes, "--repeat", str(args.repeat)],
                      workdir=work, timeout=args.timeout, cwd=REPO,
                      expose=[REPO, sys.prefix])
    if res.status:
        print(f"bench: guest exited with status {res.status}", file=sys.stderr)
    return res.status


if __name__ == "__main__":
    sys.exit(main())

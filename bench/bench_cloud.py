"""Cloud size: what one agent pays at start and per remote event, as the Southbound grows.

    .venv/bin/python bench/bench_cloud.py [--sizes 1000,10000,100000] [--json out.json]

Natively on this host (no UML, no northd): a bare ovsdb-server with the OVN Southbound schema,
written in bulk JSON-RPC transactions (bench/cloud/topology.py: n Port_Bindings over n/100
chassis and n/100 routers, 160 exposures on this chassis), and a bare ovsdb-server as this
chassis' local OVS DB (bench/cloud/servers.py). For each size:

- agent: the real reader (bench/cloud/reader.py: OvnWatcher with its monitor condition, then
  the daemon's ModelCache) in a subprocess, up to the first complete desired state. CPU:
  getrusage(RUSAGE_SELF) in that process, from creating the watcher to the built model (the
  interpreter and imports are reported apart: "process"); peak RSS: its VmHWM at that point;
  bytes: what a counting unix-socket proxy in front of the SB passed from the server to it
  (the schema, the monitor replies: every byte the SB sent it, nothing else). The bench fails
  unless the desired state has exactly the 160 expected exposures.
- before: the same reader with ovn.monitor_all = true (the whole Port_Binding table).
- floors: `ovsdb-client` through the same proxy, CPU and peak RSS from /usr/bin/time: for the
  whole table, `dump` of the monitored columns of Port_Binding and Chassis; for the agent's
  rows, one `transact` of a select per clause of the agent's condition (the same rows and
  columns, plus Chassis names). The Southbound server's own CPU per initial reply is from
  /proc/<pid>/stat (10 ms ticks).
- events, on the running reader: a remote change (a Port_Binding `up` flipped on a VM bound to
  another chassis, 100 single-row transactions: CPU and bytes each; expected 0 bytes with the
  condition); a chassis joining elsewhere (a Chassis row with its Encap and Chassis_Private
  and 20 VM ports bound to it, in one transaction) and leaving again (all of that deleted): the
  reader's CPU from before the write until the model update it causes is done (plus anything
  in the next 0.2 s), idle CPU over the same time subtracted.

Targets (issue 13), at 100k Port_Bindings with 160 local exposures: start <= 1 s CPU, peak RSS
<= 80 MiB, <= 2 MB received; a remote change outside the condition 0 bytes; a chassis join
elsewhere <= 10 ms CPU. BENCH_CLOUD_SIZES overrides the default sizes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.agent import report  # noqa: E402
from bench.agent.ovsdb import OvsdbClient, where_uuid  # noqa: E402
from bench.cloud.servers import Databases, cpu_ticks_s  # noqa: E402
from bench.cloud.topology import THIS, CloudSb, chassis_ops  # noqa: E402
from ovnbgp.model.interest import converge  # noqa: E402
from ovnbgp.model.records import LocalOvs  # noqa: E402
from ovnbgp.ovn.watcher import SB_COLUMNS, sb_condition  # noqa: E402

SB = "OVN_Southbound"
DEFAULT_SIZES = "1000,10000,100000"
REMOTE_CHANGES = 100
JOINS = 5
JOIN_PORTS = 20


class Reader:
    """bench/cloud/reader.py in a subprocess, driven line by line."""

    def __init__(self, sb: str, ovs: str, monitor_all: bool, log: Path):
        argv = [sys.executable, "-m", "bench.cloud.reader", "--sb", sb, "--ovs", ovs]
        if monitor_all:
            argv.append("--monitor-all")
        self.log = open(log, "w")
        self.proc = subprocess.Popen(argv, cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.log, text=True)
        line = self.proc.stdout.readline()  # type: ignore[union-attr]
        if not line:
            raise SystemExit(f"the reader exited before its first state (log {log}): "
                             f"{log.read_text()[-2000:]}")
        self.ready = json.loads(line)

    def ask(self, command: str) -> dict:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self) -> dict:
        """Stop it; its whole-life rusage (wait4)."""
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            _, _, ru = os.wait4(self.proc.pid, 0)
        except ChildProcessError:
            return {}
        self.proc.returncode = 0
        self.log.close()
        return {"cpu_s": ru.ru_utime + ru.ru_stime, "maxrss_mib": ru.ru_maxrss / 1024}


def client_floor(argv: list[str], proxy) -> dict:
    """One ovsdb-client run through `proxy`, under /usr/bin/time: CPU and peak RSS of that
    process alone (a child's ru_maxrss from wait4 here would include this big process: Linux
    carries the spawner's peak over the exec), bytes received."""
    before = proxy.received
    with tempfile.NamedTemporaryFile("r") as out:
        cp = subprocess.run(["/usr/bin/time", "-o", out.name, "-f", "%U %S %M", *argv],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if cp.returncode != 0:
            raise SystemExit(f"{argv[:3]} failed: {cp.stderr[:500]}")
        user, system, kib = out.read().split()[-3:]
    time.sleep(0.05)  # the proxy forwards the tail
    return {"cpu_s": float(user) + float(system), "maxrss_mib": int(kib) / 1024,
            "bytes": proxy.received - before}


def floors(dbs: Databases, sb: CloudSb) -> dict:
    pb_cols = [c for c in SB_COLUMNS["Port_Binding"]]
    out = {}
    with dbs.proxy() as p:
        a = client_floor(["ovsdb-client", "--format=json", "dump", p.remote, SB, "Port_Binding",
                          *pb_cols], p)
        b = client_floor(["ovsdb-client", "--format=json", "dump", p.remote, SB, "Chassis", "name"], p)
        out["dump"] = {"cpu_s": a["cpu_s"] + b["cpu_s"], "maxrss_mib": max(a["maxrss_mib"], b["maxrss_mib"]),
                       "bytes": a["bytes"] + b["bytes"]}
        want, _ = converge(sb.snapshot(LocalOvs(system_id=THIS)))  # the agent's fixed point
        cond = sb_condition(sb.chassis[THIS], want)
        ops = [{"op": "select", "table": "Port_Binding", "where": [clause], "columns": pb_cols}
               for clause in cond]
        ops.append({"op": "select", "table": "Chassis", "where": [], "columns": ["name"]})
        out["selects"] = client_floor(["ovsdb-client", "transact", p.remote, json.dumps([SB, *ops])], p)
    return out


def start_reader(dbs: Databases, sb: CloudSb, monitor_all: bool, logs: Path) -> tuple[Reader, dict, object]:
    p = dbs.proxy()
    server0 = cpu_ticks_s(dbs.sb_pid)
    r = Reader(p.remote, dbs.ovs_remote, monitor_all, logs / f"reader-{sb.n}-{int(monitor_all)}.log")
    time.sleep(0.05)
    got = set(r.ready["exposures"])
    if got != sb.expected:
        r.close()
        raise SystemExit(f"N={sb.n} monitor_all={monitor_all}: the reader's desired state has "
                         f"{len(got)} exposures, expected {len(sb.expected)}; missing "
                         f"{sorted(sb.expected - got)[:5]}, extra {sorted(got - sb.expected)[:5]}")
    fig = {k: r.ready[k] for k in ("start_cpu_s", "process_cpu_s", "maxrss_mib", "rows", "chassis")}
    fig["exposures"] = len(got)
    fig["bytes"] = p.received
    fig["server_cpu_s"] = cpu_ticks_s(dbs.sb_pid) - server0
    return r, fig, p


def idle_rate(r: Reader, seconds: float = 1.0) -> float:
    a = r.ask("cpu")
    t = time.monotonic()
    time.sleep(seconds)
    b = r.ask("cpu")
    return (b["cpu_s"] - a["cpu_s"]) / (time.monotonic() - t)


def remote_changes(r: Reader, proxy, sb: CloudSb, db: OvsdbClient, idle: float) -> dict:
    ports = sb.remote_vms[:REMOTE_CHANGES // 2]
    a, b0, t = r.ask("cpu"), proxy.received, time.monotonic()
    for up in (False, True):
        for pb in ports:
            db.transact(SB, [{"op": "update", "table": "Port_Binding", "where": where_uuid(pb.uuid),
                              "row": {"up": up}}])
    time.sleep(1.0)  # let whatever was sent arrive and be handled
    c = r.ask("cpu")
    n = 2 * len(ports)
    cpu = c["cpu_s"] - a["cpu_s"] - idle * (time.monotonic() - t)
    return {"events": n, "cpu_ms": max(0.0, cpu) / n * 1000, "bytes": (proxy.received - b0) / n,
            "updates": c["updates"] - a["updates"]}


def chassis_churn(r: Reader, proxy, sb: CloudSb, db: OvsdbClient, idle: float) -> dict:
    joins, leaves, join_bytes = [], [], []
    for j in range(JOINS):
        name = f"joining-{j}"
        ch = sb.uuid()
        sb.chassis[name] = ch
        vms = [sb.new_vm(name) for _ in range(JOIN_PORTS)]
        ops = chassis_ops(name, ch, f"198.18.0.{j + 1}") + [sb.insert_op(pb) for pb in vms]
        b0 = proxy.received
        joins.append(timed_event(r, db, ops, idle))
        join_bytes.append(proxy.received - b0)
        ops = [{"op": "delete", "table": "Port_Binding", "where": where_uuid(pb.uuid)} for pb in vms]
        ops += [{"op": "delete", "table": t, "where": [["chassis_name" if t == "Encap" else "name", "==", name]]}
                for t in ("Chassis_Private", "Chassis", "Encap")]
        leaves.append(timed_event(r, db, ops, idle))
        del sb.chassis[name]
    return {"join_cpu_ms": statistics.median(joins) * 1000, "leave_cpu_ms": statistics.median(leaves) * 1000,
            "join_bytes": statistics.median(join_bytes)}


def timed_event(r: Reader, db: OvsdbClient, ops: list[dict], idle: float) -> float:
    """CPU of the reader for one transaction: until the model update it causes is done."""
    a, t = r.ask("cpu"), time.monotonic()
    db.transact(SB, ops)
    done = r.ask(f"wait {a['updates'] + 1} 10")
    if done.get("timeout"):
        raise SystemExit("the reader did not see a chassis join/leave within 10 s")
    time.sleep(0.2)
    c = r.ask("cpu")
    return max(0.0, c["cpu_s"] - a["cpu_s"] - idle * (time.monotonic() - t))


def one_size(n: int, work: Path) -> dict:
    res: dict = {"n": n}
    dbs = Databases(work / f"n{n}").start()
    try:
        t = time.monotonic()
        sb = CloudSb(n).build()
        with OvsdbClient(dbs.sb_remote, timeout=600) as db:
            for ops in sb.transactions():
                db.transact(SB, ops)
        res["build_s"] = round(time.monotonic() - t, 1)
        res["chassis"], res["routers"] = sb.n_chassis, sb.n_routers
        print(f"N={n}: Southbound written in {res['build_s']} s ({sb.n_chassis} chassis, "
              f"{sb.n_routers} routers, {len(sb.expected)} exposures expected here)", flush=True)
        res["floor"] = floors(dbs, sb)
        for mode, monitor_all in (("agent", False), ("before", True)):
            r, fig, proxy = start_reader(dbs, sb, monitor_all, work)
            try:
                print(f"N={n} {mode}: start {fig['start_cpu_s']:.2f} s CPU, "
                      f"{fig['maxrss_mib']:.0f} MiB, {fig['bytes'] / 1e6:.2f} MB, "
                      f"{fig['rows']} rows mirrored", flush=True)
                idle = idle_rate(r)
                with OvsdbClient(dbs.sb_remote) as db:
                    fig["remote_change"] = remote_changes(r, proxy, sb, db, idle)
                    fig.update(chassis_churn(r, proxy, sb, db, idle))
                fig["idle_cpu_per_s"] = idle
                if set(r.ask("state")["exposures"]) != sb.expected:
                    raise SystemExit(f"N={n} {mode}: the desired state changed after the events")
            finally:
                fig["life"] = r.close()
                proxy.close()
            print(f"N={n} {mode}: remote change {fig['remote_change']['cpu_ms']:.2f} ms CPU, "
                  f"{fig['remote_change']['bytes']:.0f} B each; chassis join "
                  f"{fig['join_cpu_ms']:.2f} ms, leave {fig['leave_cpu_ms']:.2f} ms CPU", flush=True)
            res[mode] = fig
    finally:
        dbs.stop()
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default=os.environ.get("BENCH_CLOUD_SIZES", DEFAULT_SIZES))
    ap.add_argument("--json", help="write the figures here")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (DB logs)")
    args = ap.parse_args()
    sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    work = Path(tempfile.mkdtemp(prefix="ovnbgp-cloud-"))
    results: dict = {"meta": report.meta(False), "sizes": {}}
    try:
        for n in sizes:
            results["sizes"][str(n)] = one_size(n, work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    print()
    print(report.cloud_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())

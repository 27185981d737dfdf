"""The agent's start, in a process of its own: the real watcher (OvnWatcher, with its monitor
condition unless --monitor-all) and the model the daemon builds on it (ModelCache), then the
daemon's event path on request.

    python -m bench.cloud.reader --sb unix:... --ovs unix:... [--monitor-all]

Prints one JSON line once the first complete desired state exists:
    {"start_cpu_s", "process_cpu_s", "maxrss_mib", "rows", "chassis", "exposures": [...]}
maxrss_mib is the peak RSS (VmHWM); start_cpu_s is the CPU (user + system, every thread:
getrusage(RUSAGE_SELF)) from creating the watcher to the built model; process_cpu_s adds the
interpreter and the imports. Then it reads commands on stdin, one JSON reply line each:
    cpu             -> {"cpu_s", "updates", "keys"}   (updates: ModelCache.update() calls so far)
    wait N SECONDS  -> the same, once `updates` >= N (or at the timeout, with "timeout": true)
    state           -> {"exposures": [...]}
Dirty keys are handled as the daemon does: on_dirty queues them, one worker thread calls
ModelCache.update(watcher.changes(keys)).
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import sys
import threading
import time


def cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def peak_rss_mib() -> float:
    """VmHWM of this process: the peak RSS since its exec. Not ru_maxrss, which Linux carries
    over from the process that spawned it (the bench, holding the whole topology)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sb", required=True)
    ap.add_argument("--ovs", required=True)
    ap.add_argument("--monitor-all", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

    from ovnbgp.config import Config, OvnConfig
    from ovnbgp.model.cache import ModelCache
    from ovnbgp.ovn.watcher import OvnWatcher

    cfg = Config(ovn=OvnConfig(sb_remotes=(args.sb,), ovs_remote=args.ovs,
                               monitor_all=args.monitor_all))
    cond = threading.Condition()
    pending: set = set()
    counts = {"updates": 0, "keys": 0}

    def on_dirty(keys, cause) -> None:
        with cond:
            pending.update(keys)
            cond.notify_all()

    t0 = cpu_s()
    watcher = OvnWatcher(cfg, on_dirty=on_dirty)
    watcher.start(timeout=900)
    cache = ModelCache(watcher.snapshot(), cfg, log_problems=False)
    t1 = cpu_s()
    snap = watcher.snapshot()
    ready = {"start_cpu_s": t1 - t0, "process_cpu_s": t1,
             "maxrss_mib": peak_rss_mib(),
             "rows": len(snap.port_bindings), "chassis": len(snap.chassis_names),
             "exposures": sorted(str(e.prefix) for e in cache.state.exposures)}
    del snap
    print(json.dumps(ready), flush=True)

    def worker() -> None:
        while True:
            with cond:
                while not pending:
                    cond.wait()
                keys = set(pending)
                pending.clear()
            cache.update(watcher.changes(keys))
            with cond:
                counts["updates"] += 1
                counts["keys"] += len(keys)
                cond.notify_all()

    threading.Thread(target=worker, daemon=True).start()
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] == "cpu":
            reply: dict = {"cpu_s": cpu_s(), **counts}
        elif words[0] == "wait":
            n, until = int(words[1]), time.monotonic() + float(words[2])
            with cond:
                while counts["updates"] < n and time.monotonic() < until:
                    cond.wait(max(0.0, until - time.monotonic()))
                reply = {"cpu_s": cpu_s(), **counts, "timeout": counts["updates"] < n}
        elif words[0] == "state":
            reply = {"exposures": sorted(str(e.prefix) for e in cache.state.exposures)}
        else:
            reply = {"error": f"unknown command {words[0]!r}"}
        print(json.dumps(reply), flush=True)
    watcher.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

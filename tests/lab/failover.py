"""A failure measured with real packets: what test_failover and `make demo` both time.

    outages, t_recover = measure_outage(lab, {"provider VM": vm.ip4}, fail, recover,
                                        settle=lambda: wait_both_paths(lab, "node1", dsts),
                                        hold=4.0, resume_bound=15.0)
    outages["provider VM"].lost, outages["provider VM"].resumed   # 3 pings, 0.41 s

The outside host pings every destination at 10 pings a second; `fail()` runs at t0, the
failure is held `hold` seconds, then `recover()` and `settle()` run and the pingers stop once
every destination answers again. Per destination: pings lost (icmp_seq gaps) and the time from
t0 until the first reply after the last lost ping (a reply that came late under load is not a
loss here; the e2e module's `outage` counts those too).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from tests.harness.proc import wait_for
from tests.lab.checks import routed_through
from tests.lab.vm import PingLog


@dataclass
class Outage:
    """One destination's figure for one failure."""

    lost: int  # echo requests without a reply between the first and the last reply
    resumed: float  # seconds from the failure until answered for good (0: nothing lost)
    log: PingLog

    def describe(self) -> str:
        return f"{self.lost} lost, answered again after {self.resumed:.2f} s"


def resume_time(log: PingLog, t0: float) -> float:
    """Seconds from t0 until the first reply after the last lost echo request (0 when none was
    lost: a reply that came late under load is not an outage)."""
    got = {seq for _, seq in log.replies}
    if not got:
        return float("inf")
    missing = [seq for seq in range(min(got), max(got)) if seq not in got]
    if not missing:
        return 0.0
    return min(t for t, seq in log.replies if seq > missing[-1]) - t0


def lost_pings(log: PingLog) -> int:
    """Echo requests without a reply, between the first and the last reply (icmp_seq gaps):
    what was in flight when the pinger stopped does not count."""
    seqs = sorted({seq for _, seq in log.replies})
    return (seqs[-1] - seqs[0] + 1 - len(seqs)) if seqs else -1


def measure_outage(lab, dsts: dict[str, object], fail: Callable[[], None],
                   recover: Callable[[], None], settle: Callable[[], None] | None = None, *,
                   hold: float, resume_bound: float,
                   src: str = "outside") -> tuple[dict[str, Outage], float]:
    """Ping every destination from `src`, `fail()` at t0, hold `hold` seconds, `recover()`,
    `settle()` (waits until the fabric is whole again), wait for a reply from each (at most
    `resume_bound` s), stop the pingers. Returns the outage per destination and the time from
    t0 to the recovery."""
    pingers = {name: lab.pinger(src, ip) for name, ip in dsts.items()}
    logs = {}
    try:
        for p in pingers.values():
            p.wait_reply(timeout=30)
        time.sleep(1)
        t0 = time.time()
        fail()
        time.sleep(max(0.0, hold - (time.time() - t0)))
        t_recover = time.time()
        recover()
        if settle is not None:
            settle()
        for p in pingers.values():
            p.wait_reply(after=time.time(), timeout=resume_bound)  # answering after the repair
        time.sleep(1)
    finally:
        for name, p in pingers.items():
            logs[name] = p.stop()
    outages = {name: Outage(lost_pings(log), resume_time(log, t0), log) for name, log in logs.items()}
    return outages, t_recover - t0


def wait_both_paths(lab, node: str, ips, timeout: float = 60) -> None:
    """Each address's /32 routed to `node` over every leaf it is homed to (spine and leaves)."""
    for ip in ips:
        prefix = f"{ip}/32"
        wait_for(lambda prefix=prefix: routed_through(lab, prefix, node) is None, timeout=timeout,
                 interval=0.3, what=f"{prefix} routed over both leaves again",
                 details=lambda prefix=prefix: f"{routed_through(lab, prefix, node)}\n"
                                               + "\n".join(lab.down_sessions()))

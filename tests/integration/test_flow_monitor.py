"""ovs/flows.py FlowMonitor against a real ovs-vswitchd: a flow with ovnbgp's cookie deleted
by hand, and a vswitchd restart, are both seen at once (no flow dump on a timer)."""

from __future__ import annotations

import threading
import time

from ovnbgp.ovs.flows import COOKIE, FlowMonitor
from tests.harness.netns import unique_name
from tests.harness.proc import wait_for


class Seen:
    def __init__(self):
        self.events: list[tuple[str, str]] = []
        self.cond = threading.Condition()

    def __call__(self, bridge: str, why: str) -> None:
        with self.cond:
            self.events.append((bridge, why))

    def has(self, word: str) -> bool:
        with self.cond:
            return any(word in why for _b, why in self.events)


def test_deleted_flow_and_vswitchd_restart_seen(ovs_node):
    br = unique_name("bm", 6)
    ovs_node.add_bridge(br)
    seen = Seen()
    mon = FlowMonitor(seen, env=ovs_node.env, restart_delay=0.2)
    try:
        assert mon.ensure([br]) is None  # running: nothing to call back for
        assert mon.ensure([br]) is None
        time.sleep(0.5)  # the monitor is connected
        ovs_node.ofctl("add-flow", br, f"cookie={COOKIE:#x},priority=900,ip,actions=NORMAL")
        ovs_node.ofctl("add-flow", br, "cookie=0x1,priority=800,ip,actions=NORMAL")
        ovs_node.ofctl("del-flows", br, "cookie=0x1/-1")  # not ours: not news
        time.sleep(0.5)
        assert seen.events == []
        started = time.monotonic()
        ovs_node.ofctl("del-flows", br, f"cookie={COOKIE:#x}/-1")
        wait_for(lambda: seen.has("deleted"), timeout=5, what="deletion seen")
        assert time.monotonic() - started < 2

        ovs_node.restart_vswitchd()
        wait_for(lambda: seen.has("ended"), timeout=10, what="monitor end seen")
        # ensure() says when to call it again (the restart delay), never polls a process
        wait = mon.ensure([br])
        deadline = time.monotonic() + 10
        while not seen.has("restarted") and time.monotonic() < deadline:
            assert wait is not None and 0 <= wait <= mon.max_delay
            time.sleep(wait)
            wait = mon.ensure([br])
        assert seen.has("restarted")
    finally:
        mon.close()

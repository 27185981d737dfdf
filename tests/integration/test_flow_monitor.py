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
        mon.ensure([br])
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
        wait_for(lambda: (mon.ensure([br]), seen.has("restarted"))[1], timeout=10,
                 what="monitor restarted")
    finally:
        mon.close()

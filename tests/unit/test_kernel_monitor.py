"""kernel/monitor.py: foreign notifications fold into the cached observation, and only those
that change it are drift (an echo of what the cache already says is not)."""

from __future__ import annotations

import ipaddress

from ovnbgp.kernel import messages as M
from ovnbgp.kernel.monitor import (
    RTM_DELADDR,
    RTM_DELNEIGH,
    RTM_DELROUTE,
    RTM_DELRULE,
    RTM_NEWADDR,
    RTM_NEWRULE,
    Drift,
    apply_events,
)
from ovnbgp.kernel.objects import KernelState, LinkState, NeighObj, RouteObj, RuleObj
from ovnbgp.kernel.plan_changes import ObservedIndex

PROTO = 240
ADDR = ipaddress.ip_interface("172.24.4.10/32")
RULE = RuleObj(4, 32000, 200, ipaddress.ip_network("172.24.4.10/32"), PROTO)
ROUTE = RouteObj(table=200, dst=ipaddress.ip_network("10.0.1.0/24"), dev="br-ex",
                 gateway=ipaddress.ip_address("172.24.4.100"), protocol=PROTO)
NEIGH = NeighObj("br-ex", ipaddress.ip_address("172.24.4.100"), "fa:16:3e:00:00:01", True, PROTO)


def _state() -> KernelState:
    st = KernelState(links={"ovn": LinkState(5, "ovn", "dummy"), "br-ex": LinkState(7, "br-ex")},
                     addrs={"ovn": {ADDR}}, rules={RULE}, routes={ROUTE},
                     neighbours={NEIGH.key: NEIGH},
                     watched_devs=frozenset({"ovn", "br-ex"}), watched_tables=frozenset({200}))
    return st


def _msg(mtype: int, data: bytes) -> tuple[int, int, bytes]:
    return mtype, 0, data


def _fold(st: KernelState, msgs) -> Drift:
    drift = Drift()
    apply_events(msgs, st, ObservedIndex(st), "ovn", PROTO, drift)
    return drift


def test_deleted_address_on_dummy_is_drift_once():
    st = _state()
    enc = M.Encoder()
    drift = _fold(st, [_msg(RTM_DELADDR, enc.addr(False, 5, ADDR))])
    assert st.addrs["ovn"] == set()
    assert drift.keys["exposures"] == {ADDR.network} and not drift.full
    assert not _fold(st, [_msg(RTM_DELADDR, enc.addr(False, 5, ADDR))])  # already gone


def test_address_added_to_dummy_plans_in_full_and_echo_is_not_drift():
    st = _state()
    enc = M.Encoder()
    assert not _fold(st, [_msg(RTM_NEWADDR, enc.addr(True, 5, ADDR))])  # the cache has it
    other = ipaddress.ip_interface("192.0.2.1/32")
    drift = _fold(st, [_msg(RTM_NEWADDR, enc.addr(True, 5, other))])
    assert drift.full and other in st.addrs["ovn"]


def test_unwatched_device_is_ignored():
    st = _state()
    assert not _fold(st, [_msg(RTM_DELADDR, M.Encoder().addr(False, 99, ADDR))])


def test_rule_route_neighbour_deleted():
    st = _state()
    enc = M.Encoder()
    drift = _fold(st, [
        _msg(RTM_DELRULE, enc.rule(False, RULE)),
        _msg(RTM_DELROUTE, enc.route("del", ROUTE, 7)),
        _msg(RTM_DELNEIGH, M._encoded(M.neigh(False, NEIGH, 7))),
    ])
    assert st.rules == set() and st.routes == set() and st.neighbours == {}
    assert drift.keys["rules"] == {RULE.key}
    assert drift.keys["routes"] == {ROUTE.key}
    assert drift.keys["neighbours"] == {NEIGH.key}
    assert not _fold(st, [_msg(RTM_DELRULE, enc.rule(False, RULE))])


def test_rule_added_back_is_cached():
    st = _state()
    st.rules.clear()
    drift = _fold(st, [_msg(RTM_NEWRULE, M.Encoder().rule(True, RULE))])
    assert st.rules == {RULE} and drift.keys["rules"] == {RULE.key}

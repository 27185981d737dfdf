"""The kernel reconciler's pure diff: desired + observed -> plan (ownership, adoption, order)."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from ovnbgp.kernel import sysctl
from ovnbgp.kernel.diff import plan
from ovnbgp.kernel.objects import (
    Action,
    AddrOp,
    KernelState,
    LinkState,
    NeighObj,
    NeighOp,
    RouteObj,
    RouteOp,
    RuleObj,
    RuleOp,
)
from ovnbgp.kernel.settings import KernelInputError, KernelSettings
from ovnbgp.model.records import BridgeSetup, DesiredState, Exposure, ExposureKind, Neighbour, Route, Rule

N = ipaddress.ip_network
A = ipaddress.ip_address
I = ipaddress.ip_interface
P = 240
S = KernelSettings(route_protocol=P, rt_tables_file=Path("/x/rt_tables"))
MAC = "fa:16:3e:00:00:01"
BR_ADDRS = (I("1.1.1.1/32"), I("fd53:d91e:400:7f17::1/128"))


def exposure(prefix: str, bridge: str = "br-ex", kind=ExposureKind.PROVIDER_VM) -> Exposure:
    return Exposure(N(prefix), kind, bridge, "p-" + prefix, "uuid-" + prefix)


def desired(ips=("172.24.4.10/32", "2001:db8::10/128"), *, steering="rules", bridge="br-ex",
            table=200) -> DesiredState:
    exps = frozenset(exposure(p, bridge) for p in ips) | {
        exposure("172.24.4.146/32", bridge, ExposureKind.CRLRP),
        exposure("10.0.0.0/26", bridge, ExposureKind.TENANT_SUBNET)}
    if steering == "rules":
        rules = {Rule(32000, table, e.prefix, e.prefix.version) for e in exps}
        routes = {Route(table, N("0.0.0.0/0"), bridge, None, True), Route(table, N("::/0"), bridge)}
    else:
        rules = {Rule(32000, table, None, 4), Rule(32000, table, None, 6)}
        routes = {Route(table, e.prefix, bridge, None, True) for e in exps
                  if e.kind is not ExposureKind.TENANT_SUBNET}
    routes |= {Route(table, N("172.24.4.146/32"), bridge, None, True),
               Route(table, N("10.0.0.0/26"), bridge, A("172.24.4.146"))}
    return DesiredState(exposures=exps, rules=frozenset(rules), routes=frozenset(routes),
                        neighbours=frozenset({Neighbour(bridge, A("172.24.4.146"), MAC)}),
                        bridges=frozenset({BridgeSetup(bridge, table, BR_ADDRS)}))


def node(*bridges: str, vrf=True, dummy=True) -> KernelState:
    st = KernelState()
    idx = 1
    for name in bridges:
        idx += 1
        st.links[name] = LinkState(idx, name, "openvswitch", None, True)
    if vrf:
        st.links["ovn-bgp-vrf"] = LinkState(50, "ovn-bgp-vrf", "vrf", None, True, 10)
    if dummy:
        st.links["ovn"] = LinkState(51, "ovn", "dummy", 50 if vrf else None, True)
    st.sysctls = sysctl.desired(bridges)
    return st


def realise(d: DesiredState, st: KernelState, settings: KernelSettings = S) -> KernelState:
    """What the node looks like after a successful apply of plan(d, st)."""
    p = plan(d, st, settings)
    for op in p.bridge_addr_add + p.dummy_add:
        st.addrs.setdefault(op.dev, set()).add(op.address)
    for op in p.dummy_del + p.bridge_addr_del:
        st.addrs[op.dev].discard(op.address)
    for op in p.steer_add + p.steer_del:
        if isinstance(op, RuleOp):
            (st.rules.add if op.action is Action.ADD else st.rules.discard)(op.rule)
        elif isinstance(op, RouteOp):
            if op.action is Action.REPLACE:
                st.routes = {r for r in st.routes if not (r.key == op.route.key and r.protocol == P)}
            (st.routes.discard if op.action is Action.DEL else st.routes.add)(op.route)
        else:
            if op.action is Action.DEL:
                st.neighbours.pop(op.neigh.key)
            else:
                st.neighbours[op.neigh.key] = op.neigh
    for op in p.sysctls:
        st.sysctls[op.path] = op.value
    if p.rt_tables is not None:
        st.rt_tables_text = p.rt_tables.text
    for op in p.bridge_addr_add:
        st.created_addrs.setdefault(op.dev, set()).add(op.address)
    return st


def test_cold_plan_order_and_content():
    st = node("br-ex", vrf=False, dummy=False)
    st.sysctls = {}
    p = plan(desired(), st, S)
    assert [(op.name, op.kind) for op in p.links] == [("ovn-bgp-vrf", "vrf"), ("ovn", "dummy")]
    assert p.links[1].master == "ovn-bgp-vrf" and p.links[0].vrf_table == 10
    assert p.rt_tables is not None and p.rt_tables.added == ((200, "br-ex"),)
    assert {op.path for op in p.sysctls} == set(sysctl.desired(["br-ex"]))
    assert {op.address for op in p.bridge_addr_add} == set(BR_ADDRS)
    kinds = [type(op).__name__ for op in p.steer_add]
    # neighbours, then device routes, then gateway routes, then rules
    assert kinds == sorted(kinds, key=["NeighOp", "RouteOp", "RuleOp"].index)
    routes = [op.route for op in p.steer_add if isinstance(op, RouteOp)]
    assert routes[-1].gateway == A("172.24.4.146")
    assert all(r.protocol == P for r in routes)
    assert {op.address for op in p.dummy_add} == {I("172.24.4.10/32"), I("2001:db8::10/128"),
                                                  I("172.24.4.146/32"), I("10.0.0.0/26")}
    assert all(op.table == 200 for op in p.dummy_add)
    assert not p.steer_del and not p.dummy_del and not p.notices


@pytest.mark.parametrize("steering", ["rules", "table"])
def test_second_plan_is_empty(steering):
    d = desired(steering=steering)
    st = realise(d, node("br-ex"))
    p = plan(d, st, S)
    assert p.empty(), p.lines()


def test_table_mode_shape():
    p = plan(desired(steering="table"), node("br-ex"), S)
    rules = [op.rule for op in p.steer_add if isinstance(op, RuleOp)]
    assert {(r.family, r.dst) for r in rules} == {(4, None), (6, None)}
    routes = {op.route.dst for op in p.steer_add if isinstance(op, RouteOp)}
    assert N("0.0.0.0/0") not in routes and N("172.24.4.10/32") in routes


def test_v6_scope_link_is_ignored():
    d = desired()
    st = realise(d, node("br-ex"))
    # the kernel reports every IPv6 route with universe scope
    assert all(not r.scope_link for r in st.routes if r.family == 6)
    d2 = DesiredState(**{**d.__dict__, "routes": d.routes | {Route(200, N("2001:db8:1::/64"), "br-ex",
                                                                   None, True)}})
    st = realise(d2, st)
    assert plan(d2, st, S).empty()


def test_withdrawal_removes_dummy_address_and_steering():
    d = desired()
    st = realise(d, node("br-ex"))
    d2 = desired(ips=("172.24.4.10/32",))
    p = plan(d2, st, S)
    assert [op.address for op in p.dummy_del] == [I("2001:db8::10/128")]
    assert [(type(op), op.action) for op in p.steer_del] == [(RuleOp, Action.DEL)]
    assert p.steer_del[0].rule.dst == N("2001:db8::10/128")
    assert not p.dummy_add and not p.steer_add


def test_foreign_identical_rule_adopted_and_never_removed():
    d = desired()
    st = node("br-ex")
    st.rules.add(RuleObj(4, 32000, 200, N("172.24.4.10/32"), protocol=4))  # operator, proto static
    p = plan(d, st, S)
    assert N("172.24.4.10/32") not in {op.rule.dst for op in p.steer_add if isinstance(op, RuleOp)}
    st = realise(d, st)
    p = plan(DesiredState(bridges=d.bridges), st, S)
    assert RuleObj(4, 32000, 200, N("172.24.4.10/32"), protocol=4) not in \
        {op.rule for op in p.steer_del if isinstance(op, RuleOp)}


def test_sweep_only_owned_stale_objects():
    d = desired()
    st = realise(d, node("br-ex"))
    stale_rule = RuleObj(4, 32000, 200, N("172.24.4.99/32"), P)
    old_prio = RuleObj(4, 31000, 201, N("172.24.4.98/32"), P)
    with_sel = RuleObj(4, 32000, 200, N("172.24.4.10/32"), P, (("iif", "eth0"),))
    foreign_rules = {RuleObj(4, 32000, 200, N("172.24.4.97/32"), 0),
                     RuleObj(4, 100, 200, N("172.24.4.96/32"), 4)}
    stale_route = RouteObj(200, N("10.9.0.0/24"), "br-ex", A("172.24.4.146"), False, P, 0)
    stale_main = RouteObj(254, N("10.8.0.0/24"), "br-ex", None, True, P, 0)
    foreign_route = RouteObj(200, N("10.7.0.0/24"), "br-ex", None, True, 4, 0)
    main_route = RouteObj(254, N("10.6.0.0/24"), "br-ex", None, True, 3, 0)
    stale_neigh = NeighObj("br-ex", A("172.24.4.150"), MAC, True, P)
    foreign_neigh = NeighObj("br-ex", A("172.24.4.151"), MAC, True, 0)
    st.rules |= {stale_rule, old_prio, with_sel, *foreign_rules}
    st.routes |= {stale_route, stale_main, foreign_route, main_route}
    st.neighbours.update({stale_neigh.key: stale_neigh, foreign_neigh.key: foreign_neigh})
    st.addrs["ovn"] |= {I("172.24.4.77/32"), I("fe80::1/64")}
    p = plan(d, st, S)
    assert {op.rule for op in p.steer_del if isinstance(op, RuleOp)} == {stale_rule, old_prio, with_sel}
    assert {op.route for op in p.steer_del if isinstance(op, RouteOp)} == {stale_route, stale_main}
    assert {op.neigh for op in p.steer_del if isinstance(op, NeighOp)} == {stale_neigh}
    assert [op.address for op in p.dummy_del] == [I("172.24.4.77/32")]  # not the link-local
    assert not p.steer_add and not p.dummy_add
    # gateway routes go before device routes on removal
    routes = [op.route for op in p.steer_del if isinstance(op, RouteOp)]
    assert routes[0].gateway is not None


def test_owned_route_with_other_path_is_replaced():
    d = desired()
    st = realise(d, node("br-ex"))
    old = next(r for r in st.routes if r.dst == N("10.0.0.0/26"))
    st.routes.discard(old)
    st.routes.add(RouteObj(200, N("10.0.0.0/26"), "br-ex", A("172.24.4.147"), False, P, 0))
    p = plan(d, st, S)
    assert [(op.action, op.route.gateway) for op in p.steer_add] == [(Action.REPLACE, A("172.24.4.146"))]
    assert not p.steer_del


def test_foreign_route_in_the_way_is_a_conflict_and_holds_exposures():
    d = desired(steering="table")
    st = node("br-ex")
    st.routes.add(RouteObj(200, N("172.24.4.10/32"), "br-ex", A("172.24.4.1"), False, 3, 0))
    p = plan(d, st, S)
    assert any(n.kind == "conflict" and "172.24.4.10" in n.subject for n in p.notices)
    assert N("172.24.4.10/32") not in {op.route.dst for op in p.steer_add if isinstance(op, RouteOp)}
    assert I("172.24.4.10/32") not in {op.address for op in p.dummy_add}
    assert I("2001:db8::10/128") in {op.address for op in p.dummy_add}
    assert not p.steer_del


def test_neighbours_dynamic_taken_over_foreign_permanent_left():
    d = desired()
    st = node("br-ex")
    key = ("br-ex", A("172.24.4.146"))
    st.neighbours[key] = NeighObj("br-ex", A("172.24.4.146"), "00:00:00:00:00:01", False, 0)
    p = plan(d, st, S)
    assert [op.neigh.mac for op in p.steer_add if isinstance(op, NeighOp)] == [MAC]
    st.neighbours[key] = NeighObj("br-ex", A("172.24.4.146"), "00:00:00:00:00:01", True, 0)
    p = plan(d, st, S)
    assert not [op for op in p.steer_add if isinstance(op, NeighOp)]
    assert any(n.kind == "conflict" and "neigh" in n.subject for n in p.notices)
    assert I("172.24.4.146/32") not in {op.address for op in p.dummy_add}
    st.neighbours[key] = NeighObj("br-ex", A("172.24.4.146"), MAC, True, 0)  # right, not ours
    assert not [op for op in plan(d, st, S).steer_add if isinstance(op, NeighOp)]
    st.neighbours[key] = NeighObj("br-ex", A("172.24.4.146"), "00:00:00:00:00:01", True, P)
    assert [op.action for op in plan(d, st, S).steer_add if isinstance(op, NeighOp)] == [Action.REPLACE]


def test_missing_bridge_waits_and_keeps_what_is_there():
    d = desired()
    st = realise(d, node("br-ex"))
    del st.links["br-ex"]
    d2 = desired(ips=("172.24.4.10/32", "2001:db8::10/128", "172.24.4.11/32"))
    p = plan(d2, st, S)
    assert any(n.kind == "waiting" and "br-ex" in n.subject for n in p.notices)
    assert p.empty(), p.lines()  # nothing removed, the new exposure waits
    st.links["br-ex"] = LinkState(2, "br-ex", "openvswitch", None, True)
    p = plan(d2, st, S)
    assert [op.address for op in p.dummy_add] == [I("172.24.4.11/32")]
    assert [op.rule.dst for op in p.steer_add if isinstance(op, RuleOp)] == [N("172.24.4.11/32")]


def test_bridge_that_is_down_waits_like_a_missing_one():
    d = desired()
    st = realise(d, node("br-ex"))
    st.links["br-ex"] = LinkState(2, "br-ex", "openvswitch", None, False)
    d2 = desired(ips=("172.24.4.10/32", "2001:db8::10/128", "172.24.4.11/32"))
    p = plan(d2, st, S)
    assert [n.describe() for n in p.notices if n.kind == "waiting"] == [
        "! waiting: bridge br-ex: device is down; its steering and 5 new exposures wait"]
    assert p.empty(), p.lines()


def test_second_bridge_missing_does_not_stop_the_first():
    d1 = desired()
    d2 = desired(ips=("172.24.5.10/32",), bridge="br-vlan", table=201)
    both = DesiredState(exposures=d1.exposures | {e for e in d2.exposures if e.prefix == N("172.24.5.10/32")},
                        rules=d1.rules | {r for r in d2.rules if r.dst == N("172.24.5.10/32")},
                        routes=d1.routes, neighbours=d1.neighbours, bridges=d1.bridges | d2.bridges)
    p = plan(both, node("br-ex"), S)
    assert I("172.24.4.10/32") in {op.address for op in p.dummy_add}
    assert I("172.24.5.10/32") not in {op.address for op in p.dummy_add}
    assert p.rt_tables is not None and (201, "br-vlan") in p.rt_tables.added


def test_dummy_of_another_kind_is_left_alone():
    st = node("br-ex")
    st.links["ovn"] = LinkState(51, "ovn", "bridge", None, True)
    st.addrs["ovn"] = {I("192.0.2.1/24")}
    p = plan(desired(), st, S)
    assert not p.dummy_del and not p.dummy_add and not p.links
    assert any(n.kind == "conflict" and "ovn" in n.subject for n in p.notices)


def test_vrf_with_other_table_is_not_recreated():
    st = node("br-ex")
    st.links["ovn-bgp-vrf"] = LinkState(50, "ovn-bgp-vrf", "vrf", None, True, 99)
    p = plan(desired(), st, S)
    assert not p.links
    assert any("table 99" in n.reason for n in p.notices)


def test_dummy_enslaved_and_brought_up():
    st = node("br-ex")
    st.links["ovn"] = LinkState(51, "ovn", "dummy", None, False)
    p = plan(desired(), st, S)
    assert [(op.action, op.name, op.master, op.up) for op in p.links] == \
        [(Action.SET, "ovn", "ovn-bgp-vrf", True)]


def test_bridge_ips_only_ours_are_removed():
    d = desired()
    st = realise(d, node("br-ex", "br-old"))
    st.addrs["br-old"] = {I("1.1.1.1/32"), I("192.0.2.5/24")}
    st.created_addrs["br-old"] = {I("1.1.1.1/32")}
    p = plan(d, st, S)
    assert [(op.dev, op.address) for op in p.bridge_addr_del] == [("br-old", I("1.1.1.1/32"))]


def test_existing_bridge_ip_is_adopted_not_recorded():
    d = desired()
    st = node("br-ex")
    st.addrs["br-ex"] = {I("1.1.1.1/32")}
    p = plan(d, st, S)
    assert [op.address for op in p.bridge_addr_add] == [I("fd53:d91e:400:7f17::1/128")]


def test_advertise_false_touches_no_dummy():
    s = KernelSettings(route_protocol=P, rt_tables_file=Path("/x"), advertise=False)
    st = node("br-ex", vrf=False, dummy=False)
    p = plan(desired(), st, s)
    assert not p.links and not p.dummy_add and not p.dummy_del
    assert p.steer_add


def test_invalid_input_raises_before_any_plan():
    d = desired()
    bad = DesiredState(**{**d.__dict__, "routes": d.routes | {Route(0, N("10.1.0.0/24"), "br-ex")}})
    with pytest.raises(KernelInputError, match="table id 0"):
        plan(bad, node("br-ex"), S)


def test_rt_tables_conflict_is_reported_not_overwritten():
    st = node("br-ex")
    st.rt_tables_text = "200 something-else\n"
    p = plan(desired(), st, S)
    assert p.rt_tables is None
    assert any(n.kind == "conflict" and "rt_tables" in n.subject for n in p.notices)


def test_plan_lines_read_like_iproute2():
    p = plan(desired(), node("br-ex"), S)
    text = "\n".join(p.lines())
    assert "+ rule from all to 172.24.4.10/32 lookup 200 priority 32000 proto 240" in text
    assert "+ route 10.0.0.0/26 via 172.24.4.146 dev br-ex table 200 proto 240" in text
    assert "+ route default dev br-ex scope link table 200 proto 240" in text
    assert "~ neigh 172.24.4.146 lladdr fa:16:3e:00:00:01 dev br-ex PERMANENT proto 240" in text
    assert "+ addr 10.0.0.0/26 dev ovn" in text
    assert isinstance(p.dummy_add[0], AddrOp)


def test_catch_all_rule_clears_its_slot_first():
    """Switching rules -> table: the stale `to X` rules of the same priority/table go before
    the catch-all is added (the kernel would answer EEXIST otherwise)."""
    st = realise(desired(steering="rules"), node("br-ex"))
    p = plan(desired(steering="table"), st, S)
    rule_ops = [op for op in p.steer_add if isinstance(op, RuleOp)]
    dels = [i for i, op in enumerate(rule_ops) if op.action is Action.DEL]
    adds = [i for i, op in enumerate(rule_ops) if op.action is Action.ADD]
    assert dels and adds and max(dels) < min(adds)
    assert {op.rule.dst for op in rule_ops if op.action is Action.ADD} == {None}
    assert not [op for op in p.steer_del if isinstance(op, RuleOp)]


def test_stale_catch_all_goes_before_specific_rules_are_added():
    st = realise(desired(steering="table"), node("br-ex"))
    p = plan(desired(steering="rules"), st, S)
    rule_ops = [op for op in p.steer_add if isinstance(op, RuleOp)]
    assert rule_ops[0].action is Action.DEL and rule_ops[0].rule.dst is None
    assert all(op.action is Action.ADD for op in rule_ops[2:])


def test_foreign_rule_in_catch_all_slot_does_not_clash():
    """The kernel compares the protocol too: an operator's `to X` rule in the slot does not
    stop ovnbgp's catch-all, and is not touched."""
    st = node("br-ex")
    foreign = RuleObj(4, 32000, 200, N("192.0.2.7/32"), 0)
    st.rules.add(foreign)
    p = plan(desired(steering="table"), st, S)
    assert not p.notices
    assert {op.rule.family for op in p.steer_add if isinstance(op, RuleOp)} == {4, 6}
    assert foreign not in {op.rule for op in p.steer_add + p.steer_del if isinstance(op, RuleOp)}
    assert any(op.address.version == 4 for op in p.dummy_add)

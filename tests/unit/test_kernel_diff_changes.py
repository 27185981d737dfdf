"""Planning a change from the keys it touches (kernel/plan_changes.py) decides exactly as the full
plan does, whenever the node matched the previous desired state."""

from __future__ import annotations

import ipaddress

from hypothesis import given, settings
from hypothesis import strategies as st

from ovnbgp.kernel.diff import plan
from ovnbgp.kernel.objects import KernelPlan, KernelState, RouteObj
from ovnbgp.kernel.plan_changes import DesiredIndex, ObservedIndex, plan_changes
from ovnbgp.model.records import BridgeSetup, DesiredState, Exposure, ExposureKind, Neighbour, Route, Rule
from tests.unit.test_kernel_diff import BR_ADDRS, MAC, S, node, realise

N = ipaddress.ip_network
A = ipaddress.ip_address
TABLE = 200
BRIDGE = BridgeSetup("br-ex", TABLE, BR_ADDRS)


def _records(i: int, steering: str) -> tuple:
    """The records one exposed port contributes (the same objects every time it is picked,
    as the model hands them out)."""
    prefix = N(f"172.24.{i // 200}.{i % 200 + 10}/32") if i % 3 else N(f"2001:db8::{i:x}/128")
    kind = ExposureKind.PROVIDER_VM if i % 5 else ExposureKind.CRLRP
    recs: list = [Exposure(prefix, kind, "br-ex", f"p{i}", f"u{i}")]
    if steering == "rules":
        recs.append(Rule(32000, TABLE, prefix, prefix.version))
    else:
        recs.append(Route(TABLE, prefix, "br-ex", None, prefix.version == 4))
    if kind is ExposureKind.CRLRP and prefix.version == 4:
        recs.append(Neighbour("br-ex", prefix.network_address, MAC))
        subnet = N(f"10.{i}.0.0/24")
        recs.append(Exposure(subnet, ExposureKind.TENANT_SUBNET, "br-ex", f"p{i}", f"u{i}"))
        recs.append(Route(TABLE, subnet, "br-ex", prefix.network_address))
        if steering == "rules":
            recs.append(Rule(32000, TABLE, subnet, 4))
    return tuple(recs)


POOL = {m: [_records(i, m) for i in range(40)] for m in ("rules", "table")}
FIXED = {"rules": (Route(TABLE, N("0.0.0.0/0"), "br-ex", None, True),
                   Route(TABLE, N("::/0"), "br-ex")),
         "table": (Rule(32000, TABLE, None, 4), Rule(32000, TABLE, None, 6))}


def _state(mode: str, picked: frozenset[int]) -> DesiredState:
    out: dict[type, set] = {Exposure: set(), Rule: set(), Route: set(), Neighbour: set()}
    for rec in FIXED[mode]:
        out[type(rec)].add(rec)
    for i in picked:
        for rec in POOL[mode][i]:
            out[type(rec)].add(rec)
    return DesiredState(exposures=frozenset(out[Exposure]), rules=frozenset(out[Rule]),
                        routes=frozenset(out[Route]), neighbours=frozenset(out[Neighbour]),
                        bridges=frozenset({BRIDGE}))


def _node() -> KernelState:
    """A node with br-ex, as observe() would have looked at it."""
    st_ = node("br-ex")
    st_.watched_devs = frozenset({"br-ex", "ovn", "ovn-bgp-vrf"})
    st_.watched_tables = frozenset({TABLE})
    return st_


def _ops(p: KernelPlan) -> list[str]:
    return sorted(f"{type(op).__name__} {op}" for op in p.ops())


def _observed_index(stt: KernelState) -> ObservedIndex:
    return ObservedIndex(stt)


@settings(max_examples=150, deadline=None)
@given(mode=st.sampled_from(["rules", "table"]),
       steps=st.lists(st.frozensets(st.integers(0, 39), max_size=40), min_size=1, max_size=8),
       start=st.frozensets(st.integers(0, 39), max_size=40))
def test_changes_plan_equals_full_plan(mode, steps, start):
    first = _state(mode, start)
    kernel = realise(first, _node())
    assert plan(first, kernel, S).empty()
    index = DesiredIndex(first)
    for picked in steps:
        new = _state(mode, picked)
        # the model reuses record objects; consecutive states share them
        full = plan(new, kernel, S)
        quick = plan_changes(index, new, kernel, _observed_index(kernel), S)
        assert quick is not None
        assert _ops(quick) == _ops(full)
        assert quick.notices == full.notices == []
        kernel = realise(new, kernel)
        assert plan(new, kernel, S).empty()
        assert index.state is new


def test_foreign_route_in_the_way_is_found_for_a_touched_key():
    base = _state("table", frozenset({1}))
    kernel = realise(base, _node())
    index = DesiredIndex(base)
    new = _state("table", frozenset({1, 2}))
    blocked = next(r for r in POOL["table"][2] if isinstance(r, Route))
    # someone else's route for the same destination through another device
    kernel.routes.add(RouteObj(TABLE, blocked.dst, "eth9", None, blocked.scope_link, 3,
                               1024 if blocked.dst.version == 6 else 0))
    quick = plan_changes(index, new, kernel, ObservedIndex(kernel), S)
    assert quick is not None and quick.notices and quick.notices == plan(new, kernel, S).notices
    assert not quick.dummy_add  # held back, as the full plan does


def test_bridge_change_is_left_to_the_full_plan():
    base = _state("rules", frozenset({1}))
    kernel = realise(base, _node())
    index = DesiredIndex(base)
    other = DesiredState(exposures=base.exposures, rules=base.rules, routes=base.routes,
                         neighbours=base.neighbours,
                         bridges=frozenset({BridgeSetup("br-ex", 201, BR_ADDRS)}))
    assert plan_changes(index, other, kernel, ObservedIndex(kernel), S) is None


def test_catch_all_rule_change_is_planned_with_its_slot():
    """Switching steering modes with few rules: the catch-all is planned together with the
    per-prefix rules of its slot, exactly as the full plan does (stale ones out first)."""
    base = _state("rules", frozenset({1, 2, 3}))
    kernel = realise(base, _node())
    index = DesiredIndex(base)
    switched = _state("table", frozenset({1, 2, 3}))
    quick = plan_changes(index, switched, kernel, ObservedIndex(kernel), S)
    assert quick is not None
    assert _ops(quick) == _ops(plan(switched, kernel, S))


def test_catch_all_rule_in_a_crowded_slot_is_left_to_the_full_plan(monkeypatch):
    monkeypatch.setattr("ovnbgp.kernel.plan_changes.CATCH_ALL_SLOT_MAX", 2)
    base = _state("rules", frozenset({1, 2, 3}))
    kernel = realise(base, _node())
    index = DesiredIndex(base)
    switched = _state("table", frozenset({1, 2, 3}))
    assert plan_changes(index, switched, kernel, ObservedIndex(kernel), S) is None


def test_catch_all_rule_deleted_by_hand_is_planned_alone():
    """"table" steering's rule removed from the node (drift on its key): the change plan
    adds it back and nothing else, without planning every exposure."""
    state = _state("table", frozenset(range(30)))
    kernel = realise(state, _node())
    index = DesiredIndex(state)
    gone = next(r for r in kernel.rules if r.dst is None and r.family == 4)
    kernel.rules.discard(gone)
    observed = ObservedIndex(kernel)
    quick = plan_changes(index, state, kernel, observed, S, extra={"rules": {gone.key}})
    assert quick is not None
    assert _ops(quick) == _ops(plan(state, kernel, S))
    assert [(op.action.value, op.rule) for op in quick.ops()] == [("add", gone)]

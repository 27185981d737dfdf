"""Issue 17 items 1 and 2, pure parts: unusable bridge data holds (model -> kernel plan ->
flow plan) instead of withdrawing; a bridge IP that is the last IPv4 address is kept while
foreign routes or neighbours depend on it; cleanup keeps the dummy/VRF others depend on."""

from __future__ import annotations

import dataclasses
import ipaddress

import pytest

from ovnbgp.config import Config
from ovnbgp.kernel.diff import plan
from ovnbgp.kernel.objects import LinkState, NeighObj, RouteOp, RuleOp
from ovnbgp.kernel.teardown import plan_from
from ovnbgp.model.cache import desired_state
from ovnbgp.model.parse import parse_bridge_mappings
from ovnbgp.model.records import BridgeHold, BridgeInfo, DesiredState, LocalOvs
from ovnbgp.ovs.flows import Flow, FlowReconciler, FlowState
from tests.unit.sb_builder import SbBuilder
from tests.unit.test_kernel_diff import S, desired, node, realise

I = ipaddress.ip_interface
N = ipaddress.ip_network
A = ipaddress.ip_address
HOLD = frozenset({BridgeHold("ovn-bridge-mappings item 'public' is not PHYSNET:BRIDGE")})


# --- parse + model ---------------------------------------------------------------------------


@pytest.mark.parametrize("text", [None, "", "  ", "public", "public:br-ex:x", ":", "public:",
                                  "x" * 10000])
def test_unusable_mapping_values_are_problems(text):
    mappings, problems = parse_bridge_mappings(text)
    assert problems
    assert all(len(p) < 200 for p in problems)  # a 10k value is not a 10k log line


def test_valid_mapping_has_no_problem():
    assert parse_bridge_mappings("public:br-ex, other:br-o,") == (
        {"public": "br-ex", "other": "br-o"}, [])


def _world(mappings, bridges=("br-ex",), mapping_problems=()):
    b = SbBuilder(mappings={"public": "br-ex"})
    pub = b.provider_network("public")
    b.vm("vm1", pub, "fa:16:3e:00:00:01 172.24.4.10", chassis="ch1")
    local = LocalOvs(system_id="ch1", bridge_mappings=mappings,
                     bridges={n: BridgeInfo(n, "aa:bb:cc:00:00:01", {}) for n in bridges},
                     mapping_problems=tuple(mapping_problems))
    return dataclasses.replace(b.snapshot(), local=local)


@pytest.mark.parametrize("mappings,problems", [
    ({}, ["ovn-bridge-mappings is not set"]),
    ({}, ["ovn-bridge-mappings is empty"]),
    ({}, []),  # ":" or "," parse to nothing without a problem: still nothing mapped
    ({}, ["ovn-bridge-mappings item 'public' is not PHYSNET:BRIDGE"]),
    ({"public": "br-nope"}, []),  # a bridge the local OVS DB does not have
])
def test_model_holds_on_unusable_bridge_data(mappings, problems):
    state = desired_state(_world(mappings, mapping_problems=problems), Config())
    assert state.holds
    assert not state.exposures and not state.bridges
    assert any("held" in p.reason for p in state.problems)


def test_model_valid_mapping_does_not_hold():
    state = desired_state(_world({"public": "br-ex"}), Config())
    assert not state.holds and state.exposures
    # a valid change that drops the physnet: no hold, public's exposures are not desired
    state = desired_state(_world({"other": "br-o"}, bridges=("br-ex", "br-o")), Config())
    assert not state.holds and not state.exposures
    assert {b.name for b in state.bridges} == {"br-o"}


def test_missing_system_id_holds_every_bridge():
    """The system-id removed from the local OVS DB: no port can be known bound here, so
    nothing is exposed, and no bridge is used, so the targets hold everything in place."""
    good = desired_state(_world({"public": "br-ex"}), Config())
    local = dataclasses.replace(_world({"public": "br-ex"}).local, system_id="")
    state = desired_state(dataclasses.replace(_world({"public": "br-ex"}), local=local), Config())
    assert not state.exposures and not state.bridges and not state.flows
    assert [h.reason for h in state.holds] == [
        "the local OVS DB has no system-id: no port can be known bound here"]
    assert any("no system-id" in p.reason and "held" in p.reason for p in state.problems)
    st = realise(good, node("br-ex"))
    p = plan(state, st, S)
    assert p.empty(), p.lines()
    assert [n.kind for n in p.notices] == ["held"]


# --- kernel plan -----------------------------------------------------------------------------


def _held(d: DesiredState) -> DesiredState:
    return dataclasses.replace(d, holds=HOLD)


@pytest.mark.parametrize("steering", ["rules", "table"])
def test_kernel_holds_everything_of_unmapped_bridges(steering):
    st = realise(desired(steering=steering), node("br-ex"))
    assert st.created_addrs and st.neighbours and st.rt_tables_text
    p = plan(_held(DesiredState()), st, S)  # e.g. after a restart with a broken mapping
    assert p.empty(), p.lines()
    assert p.rt_tables is None
    held = [n for n in p.notices if n.kind == "held"]
    assert len(held) == 1 and "exposure" in held[0].reason, p.notices
    # without the hold (valid data that drops the bridge) everything goes
    p = plan(DesiredState(), st, S)
    assert p.dummy_del and p.steer_del and p.bridge_addr_del and p.rt_tables is not None


def test_kernel_hold_keeps_mapped_bridges_reconciled():
    """`public:br-ex,junk`: br-ex still mapped; a VM unbound on it is withdrawn, while what
    belongs to br-o (no longer mapped) is held."""
    both = desired()
    other = desired(ips=("172.24.5.10/32",), bridge="br-o", table=201)
    merged = DesiredState(**{f.name: getattr(both, f.name) | getattr(other, f.name)
                             for f in dataclasses.fields(DesiredState) if f.compare})
    st = realise(merged, node("br-ex", "br-o"))
    less = desired(ips=("2001:db8::10/128",))  # 172.24.4.10 unbound, br-o not mapped
    p = plan(_held(less), st, S)
    assert [str(op.address) for op in p.dummy_del] == ["172.24.4.10/32"]
    assert {op.rule.dst for op in p.steer_del if isinstance(op, RuleOp)} == {N("172.24.4.10/32")}
    assert not [op for op in p.steer_del if isinstance(op, RouteOp)]
    assert not p.bridge_addr_del


# --- the last IPv4 bridge IP ------------------------------------------------------------------


def _with_bridge_gone():
    st = realise(desired(), node("br-ex"))
    return st, DesiredState()


def test_last_ipv4_bridge_ip_kept_while_foreign_objects_depend_on_it():
    st, empty = _with_bridge_gone()
    st.dependents = {"br-ex": ("route 198.51.100.0/24 dev br-ex table 254 proto 3",)}
    p = plan(empty, st, S)
    assert [str(op.address) for op in p.bridge_addr_del] == ["fd53:d91e:400:7f17::1/128"]
    kept = [n for n in p.notices if n.kind == "kept"]
    assert len(kept) == 1 and "1.1.1.1/32" in kept[0].subject and "198.51.100.0/24" in kept[0].reason


def test_foreign_permanent_neighbour_keeps_the_bridge_ip():
    st, empty = _with_bridge_gone()
    n = NeighObj("br-ex", A("198.51.100.9"), "02:00:00:00:00:0a", True, 0)
    st.neighbours[n.key] = n
    p = plan(empty, st, S)
    assert "1.1.1.1/32" not in [str(op.address) for op in p.bridge_addr_del]
    assert any(n.kind == "kept" for n in p.notices)


def test_bridge_ip_removed_when_nothing_depends_or_another_ipv4_address_stays():
    st, empty = _with_bridge_gone()
    assert "1.1.1.1/32" in [str(op.address) for op in plan(empty, st, S).bridge_addr_del]
    st.dependents = {"br-ex": ("route 198.51.100.0/24 dev br-ex table 254 proto 3",)}
    st.addrs["br-ex"].add(I("192.0.2.5/24"))  # the operator's: the device keeps IPv4
    assert "1.1.1.1/32" in [str(op.address) for op in plan(empty, st, S).bridge_addr_del]


# --- cleanup: the dummy and the VRF ------------------------------------------------------------


def test_cleanup_keeps_devices_others_depend_on():
    st = realise(desired(), node("br-ex"))
    tp = plan_from(st, plan(DesiredState(), st, S), dummy="ovn", vrf="ovn-bgp-vrf", proto=240)
    assert tp.delete_links == ["ovn", "ovn-bgp-vrf"] and not tp.kept
    st.links["eth9"] = LinkState(60, "eth9", "veth", 50, True)  # enslaved to the VRF
    tp = plan_from(st, plan(DesiredState(), st, S), dummy="ovn", vrf="ovn-bgp-vrf", proto=240)
    assert tp.delete_links == ["ovn"] and "eth9" in tp.kept[0]
    del st.links["eth9"]
    tp = plan_from(st, plan(DesiredState(), st, S), dummy="ovn", vrf="ovn-bgp-vrf", proto=240,
                   routes={"ovn": ("route 10.9.0.0/24 dev ovn table 10 proto 3",)})
    assert tp.delete_links == [] and len(tp.kept) == 2  # the dummy, so its VRF too
    assert any("! kept" in ln for ln in tp.lines())


# --- flows -------------------------------------------------------------------------------------


def test_flows_of_unmapped_bridges_are_held():
    ours = Flow("br-ex", 0, 900, "priority=900,ip,in_port=1", "mod_dl_dst:aa:bb:cc:00:00:01,NORMAL")
    observed = FlowState(flows={"br-ex": [ours]})
    rec = FlowReconciler(env={})
    assert rec.diff(DesiredState(), observed).delete == [ours]
    p = rec.diff(_held(DesiredState()), observed)
    assert p.empty() and [n.kind for n in p.notices] == ["held"]

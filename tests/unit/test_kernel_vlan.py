"""The kernel diff for VLAN provider networks: the VLAN device BRIDGE.VID is made, used, and
deleted only when ovnbgp made it (state file) and nothing foreign depends on it."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from ovnbgp.kernel import state, sysctl
from ovnbgp.kernel.diff import plan
from ovnbgp.kernel.objects import Action, KernelState, LinkOp, LinkState, NeighObj, RouteObj
from ovnbgp.kernel.settings import KernelInputError, KernelSettings
from ovnbgp.model.records import (
    BridgeSetup,
    DesiredState,
    Exposure,
    ExposureKind,
    ProxyNeighbour,
    Route,
    Rule,
    VlanDevice,
)

N = ipaddress.ip_network
A = ipaddress.ip_address
I = ipaddress.ip_interface
P = 240
S = KernelSettings(route_protocol=P, rt_tables_file=Path("/x/rt_tables"))
BR_ADDRS = (I("1.1.1.1/32"), I("fd53:d91e:400:7f17::1/128"))
VM = "172.24.8.10/32"


def vlan_state(vlans=(100,)) -> DesiredState:
    exps = {Exposure(N(VM), ExposureKind.PROVIDER_VM, "br-ex", "vm1", "uuid-vm1", v) for v in vlans}
    return DesiredState(
        exposures=frozenset(exps),
        rules=frozenset({Rule(32000, 200, N(VM), 4)}) if vlans else frozenset(),
        routes=frozenset({Route(200, N("0.0.0.0/0"), "br-ex", None, True)}
                         | {Route(200, N(VM), f"br-ex.{v}", None, True) for v in vlans}),
        bridges=frozenset({BridgeSetup("br-ex", 200, BR_ADDRS)}),
        vlans=frozenset(VlanDevice("br-ex", v) for v in vlans),
        proxy_neighbours=frozenset(ProxyNeighbour(f"br-ex.{v}", A("2001:db8:28::1")) for v in vlans))


def node(vlan: LinkState | None = None, created=()) -> KernelState:
    st = KernelState()
    st.links["br-ex"] = LinkState(2, "br-ex", "openvswitch", None, True)
    st.links["ovn-bgp-vrf"] = LinkState(50, "ovn-bgp-vrf", "vrf", None, True, 10)
    st.links["ovn"] = LinkState(51, "ovn", "dummy", 50, True)
    st.addrs["br-ex"] = set(BR_ADDRS)
    if vlan is not None:
        st.links[vlan.name] = vlan
    st.sysctls = sysctl.desired(["br-ex"] + ([vlan.name] if vlan else []))
    st.created_vlans = set(created)
    return st


def ours_vlan(up=True, vid=100, link=2) -> LinkState:
    return LinkState(9, f"br-ex.{vid}", "vlan", None, up, link=link, vlan_id=vid)


def test_absent_vlan_device_is_made_with_its_sysctls_steering_and_exposure():
    p = plan(vlan_state(), node(), S)
    assert p.links == [LinkOp(Action.ADD, "br-ex.100", "vlan", up=True, link="br-ex", vlan_id=100)]
    assert p.change_lines()[0] == "+ link add link br-ex name br-ex.100 type vlan id 100 up"
    assert {op.path for op in p.sysctls} == set(sysctl.per_bridge("br-ex.100"))
    assert [str(op.route) for op in p.steer_add if hasattr(op, "route")] == [
        "route default dev br-ex scope link table 200 proto 240",
        f"route {VM} dev br-ex.100 scope link table 200 proto 240"]
    assert [str(op.proxy.dev) for op in p.proxy_add] == ["br-ex.100"]
    assert [str(op.address) for op in p.dummy_add] == [VM]
    assert not p.link_del


def test_present_vlan_device_of_anyone_is_used_as_it_is():
    for created in ((), ("br-ex.100",)):
        p = plan(vlan_state(), node(ours_vlan(), created), S)
        assert not p.links and not p.sysctls and not p.link_del
        assert [str(op.address) for op in p.dummy_add] == [VM]


def test_a_down_vlan_device_is_set_up_only_when_ovnbgp_made_it():
    p = plan(vlan_state(), node(ours_vlan(up=False), ("br-ex.100",)), S)
    assert p.links == [LinkOp(Action.SET, "br-ex.100", up=True)]
    assert p.dummy_add
    p = plan(vlan_state(), node(ours_vlan(up=False)), S)
    assert not p.links and not p.dummy_add
    assert any(n.kind == "waiting" and "br-ex.100" in n.subject for n in p.notices)


@pytest.mark.parametrize("other", [
    LinkState(9, "br-ex.100", "dummy", None, True),
    LinkState(9, "br-ex.100", "vlan", None, True, link=2, vlan_id=200),
    LinkState(9, "br-ex.100", "vlan", None, True, link=77, vlan_id=100)])
def test_a_device_in_the_way_is_a_conflict_and_the_network_waits(other):
    p = plan(vlan_state(), node(other, ("br-ex.100",)), S)
    assert not p.links and not p.link_del
    assert not p.dummy_add and not [op for op in p.steer_add
                                    if getattr(op, "route", None) and op.route.dev == "br-ex.100"]
    assert any(n.kind == "conflict" and n.subject == "device br-ex.100" for n in p.notices)


def test_last_vlan_network_gone_deletes_only_the_device_ovnbgp_made_after_its_steering():
    have = node(ours_vlan(), ("br-ex.100",))
    have.routes.add(RouteObj(200, N(VM), "br-ex.100", None, True, P))
    p = plan(vlan_state(vlans=()), have, S)
    assert p.link_del == [LinkOp(Action.DEL, "br-ex.100")]
    assert p.ops()[-1] == LinkOp(Action.DEL, "br-ex.100")  # after the route through it
    assert any(str(getattr(op, "route", "")).startswith(f"route {VM} dev br-ex.100")
               for op in p.steer_del)
    # the operator's own br-ex.100 (not in the record) is never deleted
    p = plan(vlan_state(vlans=()), node(ours_vlan()), S)
    assert not p.link_del


def test_vlan_device_with_foreign_users_is_kept():
    have = node(ours_vlan(), ("br-ex.100",))
    have.neighbours[("br-ex.100", A("192.0.2.1"))] = NeighObj("br-ex.100", A("192.0.2.1"),
                                                            "fa:16:3e:00:00:09", True, 0)
    p = plan(vlan_state(vlans=()), have, S)
    assert not p.link_del
    assert any(n.kind == "kept" and n.subject == "device br-ex.100" for n in p.notices)
    have = node(ours_vlan(), ("br-ex.100",))
    have.dependents["br-ex.100"] = ("route 192.0.2.0/24 dev br-ex.100 table 254 proto 4",)
    assert not plan(vlan_state(vlans=()), have, S).link_del


def test_missing_bridge_makes_its_vlan_wait():
    st = node()
    del st.links["br-ex"]
    p = plan(vlan_state(), st, S)
    assert not p.links and not p.dummy_add and not p.proxy_add


def test_bad_vlan_device_is_refused_before_anything():
    bad = DesiredState(bridges=frozenset({BridgeSetup("br-ex", 200, BR_ADDRS)}),
                       vlans=frozenset({VlanDevice("br-ex", 4095)}))
    with pytest.raises(KernelInputError, match="VLAN device"):
        plan(bad, node(), S)
    orphan = DesiredState(vlans=frozenset({VlanDevice("br-x", 5)}))
    with pytest.raises(KernelInputError, match="no BridgeSetup"):
        plan(orphan, node(), S)


def test_state_file_keeps_the_vlan_devices_next_to_the_bridge_ips(tmp_path):
    path = tmp_path / "kernel-state.json"
    state.save(path, {"br-ex": {I("1.1.1.1/32")}}, {"br-ex.100", "br-ex.7"})
    assert state.load(path) == {"br-ex": {I("1.1.1.1/32")}}
    assert state.load_vlans(path) == {"br-ex.100", "br-ex.7"}
    path.write_text('{"vlan_devices": "br-ex.100"}')
    assert state.load_vlans(path) == set()
    assert state.load_vlans(tmp_path / "none.json") == set()

"""The pure desired-state model on hand-built snapshots (ovnbgp/the model, ovnbgp/model/)."""

from __future__ import annotations

import dataclasses
import ipaddress
import logging

import pytest

from ovnbgp.config import Config, KernelConfig, OvnConfig
from ovnbgp.model.cache import Changes, ModelCache, desired_state
from ovnbgp.model.records import (
    BridgeInfo,
    BridgeSetup,
    ExposureKind,
    FlowSpec,
    Neighbour,
    Route,
    Rule,
)
from tests.unit.sb_builder import SbBuilder, resident, uid

K = ExposureKind
net = ipaddress.ip_network
ip = ipaddress.ip_address
CFG = Config()
TABLE_CFG = Config(kernel=KernelConfig(steering="table"))
GW_MAC = "fa:16:3e:b5:a6:77"
V4_DEFAULT = net("0.0.0.0/0")
V6_DEFAULT = net("::/0")


def exposed(state) -> dict[str, tuple]:
    """prefix -> (kind, bridge, port) for compact assertions."""
    return {str(e.prefix): (e.kind, e.bridge, e.port) for e in state.exposures}


def reasons(state) -> list[str]:
    return sorted(f"{p.port}: {p.reason}" for p in state.problems)


@pytest.fixture
def world() -> SbBuilder:
    """public (physnet public -> br-ex) + router r1 gateway on it + tenant t1 behind r1."""
    b = SbBuilder()
    pub = b.provider_network("public")
    r1 = b.router("r1", pub, GW_MAC, "172.24.4.146/24", "2001:db8::1/64", chassis="ch1")
    t1 = b.tenant_network("t1")
    b.router_interface("r1", r1, t1, "t1", "fa:16:3e:00:01:01", "10.0.0.1/26", "fd00:10::1/64")
    return b


# --- provider VMs ---------------------------------------------------------------------------


def test_provider_dual_stack_vm_bound_here():
    b = SbBuilder()
    pub = b.provider_network("public")
    b.vm("vm1", pub, "fa:16:3e:00:00:01 172.24.4.10 2001:db8::10", chassis="ch1")
    s = desired_state(b.snapshot(), CFG)
    assert exposed(s) == {"172.24.4.10/32": (K.PROVIDER_VM, "br-ex", "vm1"),
                          "2001:db8::10/128": (K.PROVIDER_VM, "br-ex", "vm1")}
    assert {e.row for e in s.exposures} == {uid("pb:vm1")}
    assert s.rules == {Rule(32000, 200, net("172.24.4.10/32"), 4),
                       Rule(32000, 200, net("2001:db8::10/128"), 6)}
    assert s.routes == {Route(200, V4_DEFAULT, "br-ex", scope_link=True),
                        Route(200, V6_DEFAULT, "br-ex", scope_link=True)}
    assert s.bridges == {BridgeSetup("br-ex", 200, (ipaddress.IPv4Interface("1.1.1.1/32"),
                                                    ipaddress.IPv6Interface("fd53:d91e:400:7f17::1/128")))}
    assert s.flows == {FlowSpec("br-ex", "patch-provnet-public-to-br-int", "aa:bb:cc:00:00:01")}
    assert not s.neighbours
    assert not s.problems


@pytest.mark.parametrize("chassis", [None, "ch2"])
def test_provider_vm_not_bound_here_is_not_exposed(chassis):
    b = SbBuilder()
    b.vm("vm1", b.provider_network("public"), "fa:16:3e:00:00:01 172.24.4.10", chassis=chassis)
    s = desired_state(b.snapshot(), CFG)
    assert not s.exposures and not s.rules
    assert s.bridges  # the bridge is set up regardless


@pytest.mark.parametrize("up,wait,shown", [(True, True, True), (False, True, False),
                                           (None, True, True), (False, False, True)])
def test_wait_for_port_up(up, wait, shown):
    b = SbBuilder()
    b.vm("vm1", b.provider_network("public"), "fa:16:3e:00:00:01 172.24.4.10", chassis="ch1", up=up)
    cfg = Config(ovn=OvnConfig(wait_for_port_up=wait))
    assert bool(desired_state(b.snapshot(), cfg).exposures) is shown


def test_two_provider_networks_on_two_bridges():
    b = SbBuilder(mappings={"public": "br-ex", "physnet2": "br-ex2"})
    b.vm("vm1", b.provider_network("public"), "fa:16:3e:00:00:01 172.24.4.10", chassis="ch1")
    b.vm("vm2", b.provider_network("p2", "physnet2"), "fa:16:3e:00:00:02 192.0.2.10", chassis="ch1")
    s = desired_state(b.snapshot(), CFG)
    assert exposed(s) == {"172.24.4.10/32": (K.PROVIDER_VM, "br-ex", "vm1"),
                          "192.0.2.10/32": (K.PROVIDER_VM, "br-ex2", "vm2")}
    assert {(x.name, x.table) for x in s.bridges} == {("br-ex", 200), ("br-ex2", 201)}
    assert s.rules == {Rule(32000, 200, net("172.24.4.10/32"), 4), Rule(32000, 201, net("192.0.2.10/32"), 4)}
    assert {(f.bridge, f.bridge_mac) for f in s.flows} == {("br-ex", "aa:bb:cc:00:00:01"),
                                                           ("br-ex2", "aa:bb:cc:00:00:02")}


def test_bridge_table_overrides_and_collisions():
    b = SbBuilder(mappings={"a": "br-a", "b": "br-b", "c": "br-c"})
    cfg = Config(kernel=KernelConfig(bridge_tables={"br-c": 201}))
    s = desired_state(b.snapshot(), cfg)
    # br-b would get 201 by index, but br-c owns it: br-b moves to the next free id.
    assert {(x.name, x.table) for x in s.bridges} == {("br-a", 200), ("br-b", 202), ("br-c", 201)}


def test_network_with_several_localnets_uses_the_mapped_physnet():
    b = SbBuilder(mappings={"physnet2": "br-ex2"})
    dp = b.provider_network("seg", "physnet-elsewhere")
    b.add("ln-seg-2", "localnet", dp, mac=("unknown",), options={"network_name": "physnet2"})
    b.vm("vm1", dp, "fa:16:3e:00:00:01 192.0.2.10", chassis="ch1")
    assert exposed(desired_state(b.snapshot(), CFG)) == {"192.0.2.10/32": (K.PROVIDER_VM, "br-ex2", "vm1")}


def test_physnet_not_mapped_here_exposes_nothing():
    b = SbBuilder()
    b.vm("vm1", b.provider_network("other", "physnet9"), "fa:16:3e:00:00:01 192.0.2.10", chassis="ch1")
    assert not desired_state(b.snapshot(), CFG).exposures


# --- cr-lrp, tenant subnets and tenant VMs ---------------------------------------------------------


def test_crlrp_here_exposes_gateway_subnets_and_steering(world):
    s = desired_state(world.snapshot(), CFG)
    assert exposed(s) == {
        "172.24.4.146/32": (K.CRLRP, "br-ex", "cr-lrp-r1-gw"),
        "2001:db8::1/128": (K.CRLRP, "br-ex", "cr-lrp-r1-gw"),
        "10.0.0.0/26": (K.TENANT_SUBNET, "br-ex", "lrp-r1-t1"),
        "fd00:10::/64": (K.TENANT_SUBNET, "br-ex", "lrp-r1-t1"),
    }
    assert s.routes == {
        Route(200, V4_DEFAULT, "br-ex", scope_link=True),
        Route(200, V6_DEFAULT, "br-ex", scope_link=True),
        Route(200, net("172.24.4.146/32"), "br-ex", scope_link=True),
        Route(200, net("2001:db8::1/128"), "br-ex", scope_link=True),
        Route(200, net("10.0.0.0/26"), "br-ex", gateway=ip("172.24.4.146")),
        Route(200, net("fd00:10::/64"), "br-ex", gateway=ip("2001:db8::1")),
    }
    assert s.neighbours == {Neighbour("br-ex", ip("172.24.4.146"), GW_MAC),
                            Neighbour("br-ex", ip("2001:db8::1"), GW_MAC)}
    assert {r.dst for r in s.rules} == {net(p) for p in exposed(s)}


def test_crlrp_elsewhere_exposes_nothing(world):
    world.set("cr-lrp-r1-gw", chassis="ch2")
    world.vm("tvm1", world.tenant_network("t1"), "fa:16:3e:00:02:01 10.0.0.5", chassis="ch1")
    s = desired_state(world.snapshot(), CFG)
    assert not s.exposures and not s.neighbours
    assert s.routes == {Route(200, V4_DEFAULT, "br-ex", scope_link=True),
                        Route(200, V6_DEFAULT, "br-ex", scope_link=True)}


def test_tenant_vms_bound_anywhere_are_exposed_inside_their_subnet(world):
    t1 = world.tenant_network("t1")
    world.vm("tvm1", t1, "fa:16:3e:00:02:01 10.0.0.5 fd00:10::5", chassis="ch2")
    world.vm("tvm2", t1, "fa:16:3e:00:02:02 10.0.0.6", chassis=None)  # not bound: not exposed
    world.vm("tvm3", t1, "fa:16:3e:00:02:03 10.0.0.70", chassis="ch1")  # outside 10.0.0.0/26
    s = desired_state(world.snapshot(), CFG)
    ex = exposed(s)
    assert ex["10.0.0.5/32"] == (K.TENANT_VM, "br-ex", "tvm1")
    assert ex["fd00:10::5/128"] == (K.TENANT_VM, "br-ex", "tvm1")
    assert "10.0.0.6/32" not in ex and "10.0.0.70/32" not in ex
    assert any("10.0.0.70 is not inside a tenant subnet" in r for r in reasons(s))
    assert Rule(32000, 200, net("10.0.0.5/32"), 4) in s.rules


def test_v6_subnet_behind_v4_only_gateway_is_not_exposed():
    b = SbBuilder()
    pub = b.provider_network("public")
    r1 = b.router("r1", pub, GW_MAC, "172.24.4.146/24", chassis="ch1")
    b.router_interface("r1", r1, b.tenant_network("t1"), "t1", "fa:16:3e:00:01:01", "10.0.0.1/26",
                       "fd00:10::1/64")
    s = desired_state(b.snapshot(), CFG)
    assert "fd00:10::/64" not in exposed(s) and "10.0.0.0/26" in exposed(s)
    assert any("has no IPv6 address" in r for r in reasons(s))


def test_router_interface_on_a_provider_network_is_not_a_tenant_subnet():
    b = SbBuilder(mappings={"public": "br-ex", "physnet2": "br-ex2"})
    pub = b.provider_network("public")
    p2 = b.provider_network("p2", "physnet2")
    r1 = b.router("r1", pub, GW_MAC, "172.24.4.146/24", chassis="ch1")
    b.router_interface("r1", r1, p2, "p2", "fa:16:3e:00:01:01", "192.0.2.1/24")
    assert "192.0.2.0/24" not in exposed(desired_state(b.snapshot(), CFG))


def test_gateway_on_network_not_mapped_here_is_not_exposed():
    b = SbBuilder()
    ext = b.provider_network("ext", "physnet9")
    b.router("r1", ext, GW_MAC, "203.0.113.5/24", chassis="ch1")
    s = desired_state(b.snapshot(), CFG)
    assert not s.exposures and not s.neighbours


def test_router_with_two_local_gateways_exposes_both_crlrps(world):
    pub = world.provider_network("public")
    r1 = uid("dp:r1")
    world.add("lrp-r1-gw2", "patch", r1, mac=("fa:16:3e:b5:a6:78 172.24.4.147/24",),
              options={"chassis-redirect-port": "cr-lrp-r1-gw2", "peer": "gw2-r1"})
    world.add("gw2-r1", "patch", pub, mac=("router",), options={"peer": "lrp-r1-gw2"})
    world.add("cr-lrp-r1-gw2", "chassisredirect", r1, mac=("fa:16:3e:b5:a6:78 172.24.4.147/24",),
              chassis="ch1", options={"distributed-port": "lrp-r1-gw2"})
    s = desired_state(world.snapshot(), CFG)
    ex = exposed(s)
    assert ex["172.24.4.147/32"] == (K.CRLRP, "br-ex", "cr-lrp-r1-gw2")
    assert ex["10.0.0.0/26"][0] == K.TENANT_SUBNET
    # tenant subnets go via the first gateway by name
    assert Route(200, net("10.0.0.0/26"), "br-ex", gateway=ip("172.24.4.146")) in s.routes


# --- floating IPs ---------------------------------------------------------------------------------


def test_dvr_fip_follows_its_vm(world):
    t1 = world.tenant_network("t1")
    world.vm("tvm1", t1, "fa:16:3e:00:02:01 10.0.0.5", chassis="ch1")
    world.set_nat("r1", f"fa:16:3e:00:00:99 172.24.4.225 {resident('tvm1')}")
    world.set("cr-lrp-r1-gw", chassis="ch2")  # the FIP does not depend on the gateway
    s = desired_state(world.snapshot(), CFG)
    assert exposed(s) == {"172.24.4.225/32": (K.FIP, "br-ex", "tvm1")}
    assert [e.row for e in s.exposures] == [uid("pb:tvm1")]
    world.set("tvm1", chassis="ch2")
    assert not desired_state(world.snapshot(), CFG).exposures


def test_fip_waits_for_its_vm_to_be_up(world):
    world.vm("tvm1", world.tenant_network("t1"), "fa:16:3e:00:02:01 10.0.0.5", chassis="ch1", up=False)
    world.set("cr-lrp-r1-gw", chassis="ch2")
    world.set_nat("r1", f"fa:16:3e:00:00:99 172.24.4.225 {resident('tvm1')}")
    assert not desired_state(world.snapshot(), CFG).exposures


def test_gateway_nat_entry_exposes_centralized_fips_but_not_the_gateway_ip_twice(world):
    world.set_nat("r1", f"{GW_MAC} 172.24.4.146 {resident('cr-lrp-r1-gw')}",
                  f"{GW_MAC} 172.24.4.226 {resident('cr-lrp-r1-gw')}")
    s = desired_state(world.snapshot(), CFG)
    ex = exposed(s)
    assert ex["172.24.4.146/32"] == (K.CRLRP, "br-ex", "cr-lrp-r1-gw")
    assert ex["172.24.4.226/32"] == (K.FIP, "br-ex", "cr-lrp-r1-gw")
    assert not [p for p in s.problems if p.level == "warning"]


def test_nat_entry_without_resident_or_with_unknown_port(world):
    world.set_nat("r1", "fa:16:3e:00:00:99 172.24.4.225", f"fa:16:3e:00:00:98 172.24.4.224 {resident('ghost')}")
    s = desired_state(world.snapshot(), CFG)
    assert "172.24.4.225/32" not in exposed(s) and "172.24.4.224/32" not in exposed(s)
    assert len([p for p in s.problems if p.port == "gw-r1"]) == 2


# --- table steering mode --------------------------------------------------------------------------


def test_table_mode(world):
    pub = world.provider_network("public")
    world.vm("vm1", pub, "fa:16:3e:00:00:01 172.24.4.10", chassis="ch1")
    world.vm("tvm1", world.tenant_network("t1"), "fa:16:3e:00:02:01 10.0.0.5", chassis="ch2")
    s = desired_state(world.snapshot(), TABLE_CFG)
    assert s.rules == {Rule(32000, 200, None, 4), Rule(32000, 200, None, 6)}
    assert s.routes == {
        Route(200, net("172.24.4.10/32"), "br-ex", scope_link=True),
        Route(200, net("172.24.4.146/32"), "br-ex", scope_link=True),
        Route(200, net("2001:db8::1/128"), "br-ex", scope_link=True),
        Route(200, net("10.0.0.0/26"), "br-ex", gateway=ip("172.24.4.146")),
        Route(200, net("fd00:10::/64"), "br-ex", gateway=ip("2001:db8::1")),
    }
    # same exposures as in rules mode; only the steering differs
    assert s.exposures == desired_state(world.snapshot(), CFG).exposures


# --- bad input ------------------------------------------------------------------------------------


def test_malformed_mac_entries_are_skipped_with_the_row_uuid():
    b = SbBuilder()
    pub = b.provider_network("public")
    b.vm("vm1", pub, "unknown", "", "router", "dynamic", "fa:16:3e:00:00:01 10.0.0.300",
         "zz:zz:zz:zz:zz:zz 172.24.4.11", "fa:16:3e:00:00:01 172.24.4.10", chassis="ch1")
    s = desired_state(b.snapshot(), CFG)
    assert exposed(s) == {"172.24.4.10/32": (K.PROVIDER_VM, "br-ex", "vm1")}
    bad = {p for p in s.problems if p.row == uid("pb:vm1")}
    assert len(bad) == 6
    assert {p.level for p in bad if "carries no address" in p.reason} == {"debug"}


def test_duplicate_ip_on_two_ports_at_once_exposes_the_lowest_row_uuid():
    """No owner yet (both in one computation): the stable rule picks; the other is refused.
    (Before issue 17 neither was exposed; the established-owner rule is in
    tests/unit/test_model_conflicts.py.)"""
    b = SbBuilder()
    pub = b.provider_network("public")
    b.vm("vm1", pub, "fa:16:3e:00:00:01 172.24.4.10 172.24.4.20", chassis="ch1")
    b.vm("vm2", pub, "fa:16:3e:00:00:02 172.24.4.10", chassis="ch1")
    s = desired_state(b.snapshot(), CFG)
    first, second = sorted([("vm1", uid("pb:vm1")), ("vm2", uid("pb:vm2"))], key=lambda p: p[1])
    assert exposed(s) == {"172.24.4.20/32": (K.PROVIDER_VM, "br-ex", "vm1"),
                          "172.24.4.10/32": (K.PROVIDER_VM, "br-ex", first[0])}
    assert {p.row for p in s.problems if "claimed by several ports" in p.reason} == {second[1]}
    assert Rule(32000, 200, net("172.24.4.10/32"), 4) in s.rules


def test_crlrp_bound_to_unknown_chassis(world):
    world.set("cr-lrp-r1-gw", chassis="ghost")
    s = desired_state(world.snapshot(), CFG)
    assert not s.exposures
    assert any("not in the Chassis table" in p.reason and p.row == uid("pb:cr-lrp-r1-gw")
               for p in s.problems)


def test_local_chassis_missing_from_chassis_table_means_nothing_is_bound_here():
    b = SbBuilder(chassis=("ch2",))
    b.vm("vm1", b.provider_network("public"), "fa:16:3e:00:00:01 172.24.4.10", chassis="ch1")
    s = desired_state(b.snapshot(), CFG)
    assert not s.exposures
    assert [p.row for p in s.problems] == [uid("pb:vm1")]


def test_missing_system_id():
    b = SbBuilder(system_id="")
    b.vm("vm1", b.provider_network("public"), "fa:16:3e:00:00:01 172.24.4.10", chassis="ch1")
    s = desired_state(b.snapshot(), CFG)
    assert not s.exposures
    assert any("no system-id" in p.reason for p in s.problems)


def test_bridge_mapping_to_missing_bridge_waits():
    b = SbBuilder(mappings={"public": "br-ex", "physnet2": "br-gone"},
                  bridges={"br-ex": BridgeInfo("br-ex", "aa:bb:cc:00:00:01", {})})
    b.vm("vm1", b.provider_network("public"), "fa:16:3e:00:00:01 172.24.4.10", chassis="ch1")
    b.vm("vm2", b.provider_network("p2", "physnet2"), "fa:16:3e:00:00:02 192.0.2.10", chassis="ch1")
    s = desired_state(b.snapshot(), CFG)
    assert exposed(s) == {"172.24.4.10/32": (K.PROVIDER_VM, "br-ex", "vm1")}
    assert {x.name for x in s.bridges} == {"br-ex"}
    assert any("br-gone does not exist" in p.reason for p in s.problems)
    assert not s.flows  # br-ex has no OVN patch port yet


def test_bad_bridge_name_and_bad_bridge_mac():
    b = SbBuilder(mappings={"public": "br-ex", "evil": "br ex;rm"},
                  bridges={"br-ex": BridgeInfo("br-ex", "not-a-mac", {"patch-x": 1})})
    b.vm("vm1", b.provider_network("public"), "fa:16:3e:00:00:01 172.24.4.10", chassis="ch1")
    s = desired_state(b.snapshot(), CFG)
    assert "172.24.4.10/32" in exposed(s)
    assert not s.flows
    assert len([p for p in s.problems if p.row == ""]) == 2


def test_crlrp_with_bad_mac_and_lrp_with_network_address(world):
    world.set("cr-lrp-r1-gw", mac=("fa:16:3e:b5:a6:77 172.24.4.0/24",))
    world.set("lrp-r1-t1", mac=("fa:16:3e:00:01:01 10.0.0.0/26 fd00:10::1/64",))
    s = desired_state(world.snapshot(), CFG)
    assert not s.exposures
    assert any(p.row == uid("pb:cr-lrp-r1-gw") for p in s.problems)


def test_lrp_with_a_bad_entry_keeps_its_good_ones(world):
    world.set("lrp-r1-t1", mac=("fa:16:3e:00:01:01 10.0.0.0/26", "fa:16:3e:00:01:02 10.1.0.1/24"))
    s = desired_state(world.snapshot(), CFG)
    ex = exposed(s)
    assert "10.1.0.0/24" in ex and "10.0.0.0/26" not in ex
    assert any(p.row == uid("pb:lrp-r1-t1") and p.level == "warning" for p in s.problems)


# --- the cache ------------------------------------------------------------------------------------


def test_cache_update_single_vm(world):
    cache = ModelCache(world.snapshot(), CFG)
    before = cache.state
    u = world.vm("vm1", world.provider_network("public"), "fa:16:3e:00:00:01 172.24.4.10", chassis="ch1")
    s = cache.update(Changes(port_bindings={u: world.rows[u]}))
    assert exposed(s)["172.24.4.10/32"] == (K.PROVIDER_VM, "br-ex", "vm1")
    s = cache.update(Changes(port_bindings={u: None}))
    assert s == before
    assert cache.update(Changes()) is s  # nothing changed: same object


def test_cache_local_change_rebuilds(world):
    cache = ModelCache(world.snapshot(), CFG)
    local = dataclasses.replace(world.local(), system_id="ch2")
    s = cache.update(Changes(local=local))
    assert not s.exposures
    s = cache.update(Changes(local=world.local(), chassis_names=frozenset({"ch2"})))
    assert not s.exposures and any("not in the Chassis table" in p.reason for p in s.problems)


def test_cache_logs_each_problem_once(world, caplog):
    pub = world.provider_network("public")
    world.vm("vm1", pub, "fa:16:3e:00:00:01 10.0.0.300", chassis="ch1")
    caplog.set_level(logging.WARNING, logger="ovnbgp.model")
    cache = ModelCache(world.snapshot(), CFG)
    assert len([r for r in caplog.records if uid("pb:vm1") in r.getMessage()]) == 1
    caplog.clear()
    u2 = world.vm("vm2", pub, "fa:16:3e:00:00:02 172.24.4.12", chassis="ch1")
    cache.update(Changes(port_bindings={u2: world.rows[u2]}))
    cache.rebuild(world.snapshot())
    assert not caplog.records  # still the same problem: not logged again
    fixed = world.set("vm1", mac=("fa:16:3e:00:00:01 172.24.4.11",))
    cache.update(Changes(port_bindings={fixed.uuid: fixed}))
    broken = world.set("vm1", mac=("fa:16:3e:00:00:01 10.0.0.300",))
    cache.update(Changes(port_bindings={broken.uuid: broken}))
    assert len(caplog.records) == 1  # it came back: logged again

"""VLAN provider networks in the model: the localnet port's `tag` (Neutron's VLAN network type)
makes the network's steering go through the VLAN device BRIDGE.VID, with that VLAN's flows.
"""

from __future__ import annotations

import ipaddress
import logging

import pytest

from ovnbgp.config import Config, KernelConfig, vlan_device_name
from ovnbgp.model.cache import Changes, ModelCache, desired_state
from ovnbgp.model.parse import ParseError, parse_vlan_tag
from ovnbgp.model.records import (
    BridgeInfo,
    ExposureKind,
    FlowSpec,
    Neighbour,
    ProxyNeighbour,
    Route,
    Rule,
    VlanDevice,
)
from tests.unit.sb_builder import SbBuilder, resident, uid

K = ExposureKind
net = ipaddress.ip_network
ip = ipaddress.ip_address
CFG = Config()
NDP_CFG = Config(kernel=KernelConfig(ndp_proxy=(ip("2001:db8:28::1"),)))
TABLE_CFG = Config(kernel=KernelConfig(steering="table"))
PATCH = "patch-provnet-public-to-br-int"
GW_MAC = "fa:16:3e:b5:a6:77"


def _dev_of(state) -> dict[str, str]:
    return {str(e.prefix): e.dev for e in state.exposures}


# --- parsing -----------------------------------------------------------------------------------


@pytest.mark.parametrize("value, want", [(None, None), (1, 1), (100, 100), (4094, 4094)])
def test_vlan_tag_accepts_1_to_4094_and_none(value, want):
    assert parse_vlan_tag(value) == want


@pytest.mark.parametrize("value", [0, 4095, -1, 70000, True, False, "100", 1.0, [100]])
def test_vlan_tag_refuses_everything_else(value):
    with pytest.raises(ParseError):
        parse_vlan_tag(value)


@pytest.mark.parametrize("bridge, vid, want", [
    ("br-ex", 100, "br-ex.100"), ("br-ex", 4094, "br-ex.4094"), ("br.x", 7, "br.x.7"),
    ("br-provider1", 4094, None),  # 17 characters
    ("br-ex", 0, None), ("br-ex", 4095, None), ("br-ex", True, None), ("br ex", 5, None),
    ("", 5, None), ("br-ex", "100", None)])
def test_vlan_device_name(bridge, vid, want):
    assert vlan_device_name(bridge, vid) == want


# --- the model ---------------------------------------------------------------------------------


def test_vlan_vm_steers_through_the_vlan_device_next_to_a_flat_one():
    b = SbBuilder()
    flat = b.provider_network("public")
    vlan = b.provider_network("vlan100", tag=100)
    b.vm("vmf", flat, "fa:16:3e:00:00:01 172.24.4.10 2001:db8:24::10", chassis="ch1")
    b.vm("vmv", vlan, "fa:16:3e:00:00:02 172.24.8.10 2001:db8:28::10", chassis="ch1")
    s = desired_state(b.snapshot(), NDP_CFG)
    assert _dev_of(s) == {"172.24.4.10/32": "br-ex", "2001:db8:24::10/128": "br-ex",
                          "172.24.8.10/32": "br-ex.100", "2001:db8:28::10/128": "br-ex.100"}
    assert {e.vlan for e in s.exposures if e.port == "vmv"} == {100}
    assert s.vlans == {VlanDevice("br-ex", 100)}
    # rules steering: the flat VM goes by the table's default route, the VLAN VM by a host route
    assert Rule(32000, 200, net("172.24.8.10/32"), 4) in s.rules
    assert s.routes == {Route(200, net("0.0.0.0/0"), "br-ex", scope_link=True),
                        Route(200, net("::/0"), "br-ex", scope_link=True),
                        Route(200, net("172.24.8.10/32"), "br-ex.100", scope_link=True),
                        Route(200, net("2001:db8:28::10/128"), "br-ex.100", scope_link=True)}
    # the flat flows stay, the VLAN's match its tag; proxy NDP on the bridge and the device
    assert s.flows == {FlowSpec("br-ex", PATCH, "aa:bb:cc:00:00:01"),
                       FlowSpec("br-ex", PATCH, "aa:bb:cc:00:00:01", 100)}
    assert s.proxy_neighbours == {ProxyNeighbour("br-ex", ip("2001:db8:28::1")),
                                  ProxyNeighbour("br-ex.100", ip("2001:db8:28::1"))}
    assert not s.problems


def test_vlan_network_in_table_steering():
    b = SbBuilder()
    vlan = b.provider_network("vlan100", tag=100)
    b.vm("vmv", vlan, "fa:16:3e:00:00:02 172.24.8.10", chassis="ch1")
    s = desired_state(b.snapshot(), TABLE_CFG)
    assert Route(200, net("172.24.8.10/32"), "br-ex.100", scope_link=True) in s.routes
    assert Rule(32000, 200, None, 4) in s.rules


def test_vlan_device_exists_with_the_network_and_goes_with_the_last_one():
    b = SbBuilder()
    s = desired_state(b.snapshot(), CFG)
    assert not s.vlans
    b.provider_network("v1", tag=100)
    b.provider_network("v2", tag=100)
    b.provider_network("v3", tag=200)
    cache = ModelCache(b.snapshot(), CFG)
    assert cache.state.vlans == {VlanDevice("br-ex", 100), VlanDevice("br-ex", 200)}
    s = cache.update(Changes(port_bindings={uid("pb:ln-v1"): None}))
    assert s.vlans == {VlanDevice("br-ex", 100), VlanDevice("br-ex", 200)}
    s = cache.update(Changes(port_bindings={uid("pb:ln-v2"): None, uid("pb:ln-v3"): None}))
    assert not s.vlans
    assert s.flows == {FlowSpec("br-ex", PATCH, "aa:bb:cc:00:00:01")}


def test_tag_set_later_moves_the_vm_to_the_vlan_device():
    b = SbBuilder()
    dp = b.provider_network("pub")
    b.vm("vm1", dp, "fa:16:3e:00:00:02 172.24.8.10", chassis="ch1")
    cache = ModelCache(b.snapshot(), CFG)
    assert _dev_of(cache.state) == {"172.24.8.10/32": "br-ex"}
    row = b.set("ln-pub", tag=300)
    s = cache.update(Changes(port_bindings={row.uuid: row}))
    assert _dev_of(s) == {"172.24.8.10/32": "br-ex.300"}
    assert s == desired_state(b.snapshot(), CFG)


@pytest.mark.parametrize("tag", [0, 4095, "100", True, -3])
def test_malformed_tag_skips_the_network_and_names_the_row(tag, caplog):
    b = SbBuilder()
    dp = b.provider_network("bad", tag=tag)
    b.vm("vm1", dp, "fa:16:3e:00:00:02 172.24.8.10", chassis="ch1")
    with caplog.at_level(logging.WARNING, logger="ovnbgp.model"):
        s = ModelCache(b.snapshot(), CFG).state
    assert not s.exposures and not s.vlans
    bad = [p for p in s.problems if p.row == uid("pb:ln-bad")]
    assert bad and bad[0].level == "warning" and "tag" in bad[0].reason
    assert uid("pb:ln-bad") in caplog.text and "VLAN tag" in caplog.text


def test_vlan_device_name_too_long_skips_the_network():
    b = SbBuilder(mappings={"public": "br-provider1"})
    dp = b.provider_network("v", tag=4000)
    b.vm("vm1", dp, "fa:16:3e:00:00:02 172.24.8.10", chassis="ch1")
    s = desired_state(b.snapshot(), CFG)
    assert not s.exposures and not s.vlans
    assert any("longer than 15" in p.reason and p.row == uid("pb:ln-v") for p in s.problems)


def test_crlrp_fip_and_tenant_subnet_on_a_vlan_gateway_network():
    b = SbBuilder()
    pub = b.provider_network("vlan100", tag=100)
    r1 = b.router("r1", pub, GW_MAC, "172.24.8.146/24", chassis="ch1",
                  nat=[f"fa:16:3e:00:00:99 172.24.8.225 {resident('t1vm')}"])
    t1 = b.tenant_network("t1")
    b.router_interface("r1", r1, t1, "t1", "fa:16:3e:00:01:01", "10.0.0.1/26")
    b.vm("t1vm", t1, "fa:16:3e:00:01:10 10.0.0.10", chassis="ch1")
    s = desired_state(b.snapshot(), CFG)
    assert _dev_of(s) == {"172.24.8.146/32": "br-ex.100", "172.24.8.225/32": "br-ex.100",
                          "10.0.0.0/26": "br-ex.100", "10.0.0.10/32": "br-ex.100"}
    assert Neighbour("br-ex.100", ip("172.24.8.146"), GW_MAC) in s.neighbours
    assert {Route(200, net("172.24.8.146/32"), "br-ex.100", scope_link=True),
            Route(200, net("172.24.8.225/32"), "br-ex.100", scope_link=True),
            Route(200, net("10.0.0.0/26"), "br-ex.100", gateway=ip("172.24.8.146"))} <= s.routes
    assert not any(r.dst == net("10.0.0.10/32") for r in s.routes)  # the subnet route covers it


def test_vlan_network_on_a_bridge_without_mac_has_no_flows_yet():
    b = SbBuilder(bridges={"br-ex": BridgeInfo("br-ex", None, {PATCH: 1})})
    b.provider_network("v", tag=100)
    s = desired_state(b.snapshot(), CFG)
    assert s.vlans == {VlanDevice("br-ex", 100)} and not s.flows

"""The load-balancer rules (docs/load-balancers.md) on hand-built Southbound snapshots shaped
like what northd 23.03 writes for Octavia's OVN provider (checked in
tests/integration/test_ovn_lb.py): every VIP of the router's load balancers is in the gateway
patch port's nat_addresses, resident on the cr-lrp."""

from __future__ import annotations

import ipaddress

from hypothesis import given
from hypothesis import strategies as st

from ovnbgp.config import Config
from ovnbgp.model.cache import desired_state
from ovnbgp.model.lb import LbIndex, LbParseError, parse_endpoint
from ovnbgp.model.records import ExposureKind, LoadBalancerRow
from tests.unit.sb_builder import SbBuilder, resident, uid

K = ExposureKind
CFG = Config()
GW_MAC = "fa:16:3e:b5:a6:77"


def world(gw_chassis: str | None = "ch1", system_id: str = "ch1") -> SbBuilder:
    """r1: gateway on public (cr-lrp on gw_chassis), tenant t1 10.0.0.0/26 behind it; the
    nat_addresses northd writes for lb-prov (VIP 172.24.4.50 on the provider network) and
    lb-ten (VIP 10.0.0.50 on t1, its FIP 172.24.4.60 also a VIP, and a NAT for the FIP)."""
    b = SbBuilder(system_id=system_id)
    pub = b.provider_network("public")
    rdp = b.router("r1", pub, GW_MAC, "172.24.4.146/24", chassis=gw_chassis, nat=(
        f"{GW_MAC} 172.24.4.146 {resident('cr-lrp-r1-gw')}",
        f"{GW_MAC} 172.24.4.60 10.0.0.50 172.24.4.60 172.24.4.50 {resident('cr-lrp-r1-gw')}"))
    b.router_interface("r1", rdp, b.tenant_network("t1"), "t1", "fa:16:3e:00:01:01", "10.0.0.1/26")
    b.lb("lb-prov", {"172.24.4.50:80": "10.0.0.10:8080,10.0.0.11:8080"})
    b.lb("lb-ten", {"10.0.0.50:80": "10.0.0.10:8080", "172.24.4.60:80": "10.0.0.10:8080"})
    return b


def exposed(b: SbBuilder) -> dict[str, tuple]:
    state = desired_state(b.snapshot(), CFG)
    return {str(e.prefix): (e.kind, e.port, e.row) for e in state.exposures}


def test_provider_vip_and_tenant_vip_fip_exposed_by_the_gateway_chassis():
    got = exposed(world())
    assert got["172.24.4.50/32"] == (K.LB_VIP, "cr-lrp-r1-gw", uid("lb:lb-prov"))
    assert got["172.24.4.60/32"] == (K.LB_VIP, "cr-lrp-r1-gw", uid("lb:lb-ten"))
    assert "10.0.0.50/32" not in got  # the tenant VIP itself is a tenant address
    assert got["172.24.4.146/32"][0] == K.CRLRP


def test_nothing_when_the_gateway_is_elsewhere_or_unbound():
    for ch in ("ch2", None):
        got = exposed(world(gw_chassis=ch))
        assert not any(k.startswith("172.24.4.") for k in got), ch
    got = exposed(world(gw_chassis="ch2", system_id="ch2"))
    assert got["172.24.4.50/32"][0] == K.LB_VIP


def test_withdrawn_with_the_last_member_and_with_the_lb():
    b = world()
    b.lb("lb-prov", {"172.24.4.50:80": ""})
    state = desired_state(b.snapshot(), CFG)
    assert "172.24.4.50/32" not in {str(e.prefix) for e in state.exposures}
    assert any(p.row == uid("lb:lb-prov") and p.waiting == "lb-members" for p in state.problems)
    assert state.waiting_counts() == {"lb-members": 1}
    # the LB deleted: northd drops its VIP from nat_addresses (the FIP NAT goes with the
    # Neutron port; what stays in nat_addresses without a Load_Balancer row is a plain FIP)
    b.remove_lb("lb-ten")
    b.set_nat("r1", f"{GW_MAC} 172.24.4.146 {resident('cr-lrp-r1-gw')}")
    got = exposed(b)
    assert set(got) == {"172.24.4.146/32", "10.0.0.0/26"}


def test_a_vip_listed_by_two_lbs_is_exposed_while_one_has_a_member():
    b = world()
    b.lb("lb-prov", {"172.24.4.50:80": ""})
    b.lb("lb-prov-udp", {"172.24.4.50:53": "10.0.0.12:53"})
    assert exposed(b)["172.24.4.50/32"] == (K.LB_VIP, "cr-lrp-r1-gw", uid("lb:lb-prov-udp"))


def test_malformed_lb_entries_are_skipped_with_the_row_uuid():
    b = world()
    b.lb("lb-prov", {"172.24.4.50:80": "10.0.0.10:8080,nonsense,[2001:db8::1]:80", "bogus:1": "10.0.0.10:1"})
    state = desired_state(b.snapshot(), CFG)
    reasons = [p for p in state.problems if p.row == uid("lb:lb-prov")]
    assert len(reasons) == 3 and all(p.level == "warning" for p in reasons), reasons
    assert "172.24.4.50/32" in {str(e.prefix) for e in state.exposures}  # one member parses


def test_a_plain_fip_stays_a_fip():
    b = world()
    b.remove_lb("lb-ten")
    got = exposed(b)
    assert got["172.24.4.60/32"][0] == K.FIP


def test_parse_endpoint_forms():
    ip = ipaddress.ip_address
    assert parse_endpoint("172.24.4.50:80") == ip("172.24.4.50")
    assert parse_endpoint("172.24.4.50") == ip("172.24.4.50")
    assert parse_endpoint("[2001:db8::5]:80") == ip("2001:db8::5")
    assert parse_endpoint("2001:db8::5") == ip("2001:db8::5")
    for bad in ("", "x:80", "1.2.3.4:x", "[2001:db8::5", "[2001:db8::5]x", "1.2.3.4:80:90"):
        try:
            parse_endpoint(bad)
        except LbParseError:
            continue
        raise AssertionError(bad)


@given(st.dictionaries(st.text(max_size=20), st.text(max_size=40), max_size=4))
def test_any_vips_map_is_indexed_or_reported_never_raises(vips):
    index = LbIndex([LoadBalancerRow("u1", "lb", vips)])
    assert all(p.row == "u1" for p in index.problems)
    assert all(ref.lb == "u1" for refs in index.vips.values() for ref in refs)


def test_explain_names_the_load_balancer_and_why():
    from ovnbgp.model.why import LOAD_BALANCER, account, parse_target

    b = world()
    a = account(b.snapshot(), CFG, parse_target("172.24.4.50"))
    lb = [r for r in a.rows if r.role == LOAD_BALANCER]
    assert a.exposed and lb[0].row == uid("lb:lb-prov") and lb[0].exposed and lb[0].table == "Load_Balancer"
    assert lb[0].to_dict()["load_balancer"] == uid("lb:lb-prov")

    b.lb("lb-prov", {"172.24.4.50:80": ""})
    a = account(b.snapshot(), CFG, parse_target("172.24.4.50"))
    lb = [r for r in a.rows if r.role == LOAD_BALANCER][0]
    assert not a.exposed and lb.waiting == "lb-members" and "has no members" in lb.reasons[0]

    a = account(world(gw_chassis="ch2").snapshot(), CFG, parse_target("172.24.4.50"))
    lb = [r for r in a.rows if r.role == LOAD_BALANCER][0]
    assert any("bound to chassis ch2, not here" in r for r in lb.reasons), lb.reasons

    a = account(world().snapshot(), CFG, parse_target("10.0.0.50"))
    lb = [r for r in a.rows if r.role == LOAD_BALANCER][0]
    assert any("tenant subnet" in r for r in lb.reasons), lb.reasons

    b = world()
    b.set_nat("r1", f"{GW_MAC} 172.24.4.146 {resident('cr-lrp-r1-gw')}")  # not on the router
    a = account(b.snapshot(), CFG, parse_target("172.24.4.50"))
    lb = [r for r in a.rows if r.role == LOAD_BALANCER][0]
    assert "no router gateway lists VIP 172.24.4.50" in lb.reasons[0]

"""The [exposure] tenant-network policy: the rule, its config keys, and what the model does."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ovnbgp.config import Config, ConfigError, ExposureConfig, loads
from ovnbgp.model.cache import ModelCache, desired_state
from ovnbgp.model.policy import FILTERED, is_ipv6_gua, tenant_subnet_refusal
from ovnbgp.model.records import ExposureKind
from tests.unit.sb_builder import SbBuilder

net = ipaddress.ip_network


def world() -> SbBuilder:
    """Router r1 (gateway here) with an RFC1918 subnet (t1), a second v4 subnet (t2) and
    an IPv6 GUA + ULA pair on t1; one tenant VM in each v4 subnet."""
    b = SbBuilder()
    pub = b.provider_network("public")
    r1 = b.router("r1", pub, "fa:16:3e:aa:00:01", "172.24.4.146/24", "2001:db8::1/64", chassis="ch1")
    t1, t2 = b.tenant_network("t1"), b.tenant_network("t2")
    b.router_interface("r1", r1, t1, "t1", "fa:16:3e:00:01:01", "10.0.0.1/26", "2a01:4f8::1/64",
                       "fd00:10::1/64")
    b.router_interface("r1", r1, t2, "t2", "fa:16:3e:00:01:02", "100.64.0.1/24")
    b.vm("tvm1", t1, "fa:16:3e:00:02:01 10.0.0.5", chassis="ch2")
    b.vm("tvm2", t2, "fa:16:3e:00:02:02 100.64.0.5", chassis="ch2")
    return b


def tenant_prefixes(state) -> set[str]:
    return {str(e.prefix) for e in state.exposures
            if e.kind in (ExposureKind.TENANT_SUBNET, ExposureKind.TENANT_VM)}


def cfg(**kw) -> Config:
    return Config(exposure=ExposureConfig(**kw))


def test_default_exposes_every_tenant_subnet_as_the_reference_design():
    s = desired_state(world().snapshot(), Config())
    assert tenant_prefixes(s) == {"10.0.0.0/26", "2a01:4f8::/64", "fd00:10::/64", "100.64.0.0/24",
                                  "10.0.0.5/32", "100.64.0.5/32"}


def test_tenant_networks_false_exposes_no_tenant_subnet_nor_vm_but_keeps_the_gateway():
    s = desired_state(world().snapshot(), cfg(tenant_networks=False))
    assert tenant_prefixes(s) == set()
    assert {str(e.prefix) for e in s.exposures} == {"172.24.4.146/32", "2001:db8::1/128"}
    filtered = [p for p in s.problems if FILTERED in p.reason]
    assert {p.port for p in filtered} == {"lrp-r1-t1", "lrp-r1-t2"}
    assert all("exposure.tenant_networks is false" in p.reason and p.row for p in filtered)


def test_prefixes_allow_only_subnets_inside_them_and_their_vms():
    s = desired_state(world().snapshot(), cfg(tenant_prefixes=(net("100.64.0.0/10"),)))
    assert tenant_prefixes(s) == {"100.64.0.0/24", "100.64.0.5/32", "2a01:4f8::/64"}
    reasons = sorted(p.reason for p in s.problems if FILTERED in p.reason)
    assert reasons == [
        "tenant subnet 10.0.0.0/26: filtered by policy: 10.0.0.0/26 is not inside "
        "exposure.tenant_prefixes (100.64.0.0/10)",
        "tenant subnet fd00:10::/64: filtered by policy: fd00:10::/64 is not inside "
        "exposure.tenant_prefixes (100.64.0.0/10) and is not an IPv6 global unicast subnet"]


def test_ipv6_gua_false_needs_the_prefix_for_v6_too():
    s = desired_state(world().snapshot(), cfg(tenant_prefixes=(net("10.0.0.0/8"),),
                                              tenant_ipv6_gua=False))
    assert tenant_prefixes(s) == {"10.0.0.0/26", "10.0.0.5/32"}


def test_a_policy_change_is_a_new_model_and_incremental_agrees():
    b = world()
    c = cfg(tenant_prefixes=(net("10.0.0.0/8"),))
    cache = ModelCache(b.snapshot(), c, log_problems=False)
    b.vm("tvm3", b.tenant_network("t2"), "fa:16:3e:00:02:03 100.64.0.9", chassis="ch1")
    cache.resync(b.snapshot())
    assert cache.state == desired_state(b.snapshot(), c)
    assert "100.64.0.9/32" not in tenant_prefixes(cache.state)


_v4 = st.builds(lambda a, n: ipaddress.ip_network((a, n), strict=False),
                st.integers(0, 2**32 - 1), st.integers(8, 32))


@given(_v4, st.lists(_v4, max_size=4))
def test_rule_v4_allowed_exactly_when_inside_a_configured_prefix(subnet, allowed):
    policy = ExposureConfig(tenant_prefixes=tuple(dict.fromkeys(allowed)))
    refusal = tenant_subnet_refusal(subnet, policy)
    inside = any(subnet.subnet_of(p) for p in allowed)
    assert (refusal is None) == (inside or not allowed)
    if refusal is not None:
        assert refusal.startswith(FILTERED)


@given(st.integers(0, 2**128 - 1), st.integers(16, 128))
def test_rule_v6_gua_passes_whatever_the_prefixes(addr, length):
    subnet = ipaddress.IPv6Network((addr, length), strict=False)
    policy = ExposureConfig(tenant_prefixes=(net("10.0.0.0/8"),))
    assert (tenant_subnet_refusal(subnet, policy) is None) == is_ipv6_gua(subnet)


def test_gua_excludes_ula_link_local_and_documentation():
    assert is_ipv6_gua(net("2a01:4f8::/64"))
    assert not is_ipv6_gua(net("fd00::/64"))
    assert not is_ipv6_gua(net("fe80::/64"))
    assert not is_ipv6_gua(net("2001:db8::/64"))


def test_config_keys_parse_and_errors_name_the_key():
    c = loads('[exposure]\ntenant_networks = true\ntenant_prefixes = ["10.0.0.0/8", "fd00::/8"]\n'
              'tenant_ipv6_gua = false\n')
    assert c.exposure == ExposureConfig(True, (net("10.0.0.0/8"), net("fd00::/8")), False)
    for text, key in [("tenant_networks = 1", "exposure.tenant_networks"),
                      ("tenant_ipv6_gua = \"yes\"", "exposure.tenant_ipv6_gua"),
                      ("tenant_prefixes = \"10.0.0.0/8\"", "exposure.tenant_prefixes"),
                      ("tenant_prefixes = [\"10.0.0.1/8\"]", "exposure.tenant_prefixes[0]"),
                      ("tenant_prefixes = [\"10.0.0.0/8\", \"banana\"]", "exposure.tenant_prefixes[1]"),
                      ("tenant_prefixes = [\"10.0.0.0\"]", "exposure.tenant_prefixes[0]"),
                      ("tenant_prefixes = [\"10.0.0.0/8\", \"10.0.0.0/8\"]", "exposure.tenant_prefixes[1]"),
                      ("tenant_scopes = []", "exposure.tenant_scopes")]:
        with pytest.raises(ConfigError) as e:
            loads(f"[exposure]\n{text}\n")
        assert e.value.key == key, text


# --- Neutron address scopes --------------------------------------------------------------------

SCOPE = "4b3e7d7a-0f1c-4c55-9d2e-6a1f2b3c4d5e"


def test_address_scope_on_the_switch_side_port_allows_its_subnet_only():
    b = world()
    b.set("r1-t2", external_ids={"neutron:subnet_pool_addr_scope4": SCOPE})
    s = desired_state(b.snapshot(), cfg(tenant_address_scopes=(SCOPE,), tenant_ipv6_gua=False))
    assert tenant_prefixes(s) == {"100.64.0.0/24", "100.64.0.5/32"}
    reason = next(p.reason for p in s.problems if p.port == "lrp-r1-t1" and "10.0.0.0/26" in p.reason)
    assert reason == ("tenant subnet 10.0.0.0/26: filtered by policy: 10.0.0.0/26 has no address "
                      "scope (exposure.tenant_address_scopes is set)")
    b.set("r1-t1", external_ids={"neutron:subnet_pool_addr_scope4": "other"})
    s = desired_state(b.snapshot(), cfg(tenant_address_scopes=(SCOPE,)))
    reason = next(p.reason for p in s.problems if p.port == "lrp-r1-t1" and "10.0.0.0/26" in p.reason)
    assert reason.endswith("10.0.0.0/26 has address scope other, not one of "
                           "exposure.tenant_address_scopes")


def test_address_scope_on_the_router_port_and_per_family():
    b = world()
    b.set("lrp-r1-t1", external_ids={"neutron:subnet_pool_addr_scope6": SCOPE})
    s = desired_state(b.snapshot(), cfg(tenant_address_scopes=(SCOPE,), tenant_ipv6_gua=False))
    # the v6 scope allows t1's IPv6 subnets, not its IPv4 one
    assert tenant_prefixes(s) == {"2a01:4f8::/64", "fd00:10::/64"}


def test_prefixes_or_scopes_either_allows():
    b = world()
    b.set("r1-t2", external_ids={"neutron:subnet_pool_addr_scope4": SCOPE})
    s = desired_state(b.snapshot(), cfg(tenant_address_scopes=(SCOPE,),
                                        tenant_prefixes=(net("10.0.0.0/8"),)))
    assert {"10.0.0.0/26", "100.64.0.0/24"} <= tenant_prefixes(s)


def test_a_scope_change_on_the_row_is_followed_incrementally():
    b = world()
    c = cfg(tenant_address_scopes=(SCOPE,))
    cache = ModelCache(b.snapshot(), c, log_problems=False)
    assert "100.64.0.0/24" not in tenant_prefixes(cache.state)
    b.set("r1-t2", external_ids={"neutron:subnet_pool_addr_scope4": SCOPE})
    cache.resync(b.snapshot())
    assert cache.state == desired_state(b.snapshot(), c)
    assert "100.64.0.0/24" in tenant_prefixes(cache.state)


def test_scope_config_errors_name_the_key():
    assert loads(f'[exposure]\ntenant_address_scopes = ["{SCOPE}"]\n').exposure.tenant_address_scopes \
        == (SCOPE,)
    for text, key in [("tenant_address_scopes = \"x\"", "exposure.tenant_address_scopes"),
                      ("tenant_address_scopes = [\"a b\"]", "exposure.tenant_address_scopes[0]"),
                      ("tenant_address_scopes = [1]", "exposure.tenant_address_scopes[0]"),
                      ("tenant_address_scopes = [\"a\", \"a\"]", "exposure.tenant_address_scopes[1]")]:
        with pytest.raises(ConfigError) as e:
            loads(f"[exposure]\n{text}\n")
        assert e.value.key == key, text


def test_dual_stack_withdrawal_with_a_new_problem_is_logged_not_a_crash(caplog):
    """A dual-stack VM withdrawn by a change that also brings a problem (its bridge mapping
    now names a missing bridge): the withdrawal warning sorts v4 and v6 prefixes together.
    Seen in tests/vm/test_adversarial.py (TypeError: ... are not of the same version)."""
    import dataclasses
    import logging

    from ovnbgp.model.cache import Changes

    b = SbBuilder()
    pub = b.provider_network("public")
    b.vm("vm1", pub, "fa:16:3e:00:00:01 172.24.4.10 2001:db8::10", chassis="ch1")
    cache = ModelCache(b.snapshot(), Config())
    caplog.set_level(logging.WARNING, logger="ovnbgp.model")
    local = dataclasses.replace(b.local(), bridge_mappings={"public": "br-gone"})
    assert cache.update(Changes(local=local)).exposures == frozenset()
    assert any("withdrawn 172.24.4.10/32, 2001:db8::10/128" in r.getMessage() for r in caplog.records)

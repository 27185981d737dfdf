"""Proxy NDP entries for IPv6 provider gateways (kernel.ndp_proxy): config, model, diff, messages.

A VM on an IPv6 provider network resolves its gateway with a neighbour solicitation that
reaches the node's provider bridge; proxy_ndp=1 answers only addresses in the kernel's proxy
table, so ovnbgp puts each configured gateway there, on every provider bridge.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from pyroute2.netlink.rtnl.ndmsg import ndmsg

from ovnbgp import config as config_mod
from ovnbgp.commands.desired import state_to_dict
from ovnbgp.config import Config, ConfigError, KernelConfig
from ovnbgp.kernel import messages as M
from ovnbgp.kernel.diff import all_devices, plan
from ovnbgp.kernel.objects import Action, KernelState, LinkState, ProxyObj
from ovnbgp.kernel.settings import KernelInputError, KernelSettings
from ovnbgp.model.cache import Changes, ModelCache, desired_state
from ovnbgp.model.records import BridgeSetup, DesiredState, ProxyNeighbour
from tests.unit.sb_builder import SbBuilder

A = ipaddress.ip_address
I = ipaddress.ip_interface
P = 240
S = KernelSettings(route_protocol=P, rt_tables_file=Path("/x/rt_tables"))
GW6 = A("2001:db8:24::1")
GW6B = A("2001:db8:51::1")


# --- config --------------------------------------------------------------------------------


def test_config_default_is_empty_and_list_parses():
    assert Config().kernel.ndp_proxy == ()
    cfg = config_mod.loads('[kernel]\nndp_proxy = ["2001:db8:24::1", "fe80::1"]\n')
    assert cfg.kernel.ndp_proxy == (GW6, A("fe80::1"))
    # The effective config round-trips through `config show`'s TOML.
    assert config_mod.loads(config_mod.to_toml(cfg)).kernel.ndp_proxy == cfg.kernel.ndp_proxy


@pytest.mark.parametrize("value,needle", [
    ('"2001:db8::1"', "a list of IPv6 addresses"),
    ('["172.24.4.1"]', "kernel.ndp_proxy[0]: expected an IPv6 address"),
    ('["2001:db8::1", "banana"]', "kernel.ndp_proxy[1]: expected an IPv6 address"),
    ('["ff02::1"]', "unicast"),
    ('["::"]', "unicast"),
    ('["::1"]', "unicast"),
    ('["fe80::1%eth0"]', "unicast"),
    ('["2001:db8::1", "2001:db8:0::1"]', "listed twice"),
    ('[1]', "kernel.ndp_proxy[0]: expected an IPv6 address"),
])
def test_config_rejects_bad_entries(value, needle):
    with pytest.raises(ConfigError) as e:
        config_mod.loads(f"[kernel]\nndp_proxy = {value}\n")
    assert needle in str(e.value)


# --- model ---------------------------------------------------------------------------------


def _world(mappings=None) -> SbBuilder:
    b = SbBuilder(mappings=mappings)
    b.vm("vm1", b.provider_network("public"), "fa:16:3e:00:00:01 172.24.4.10 2001:db8:24::a",
         chassis="ch1")
    return b


def test_model_puts_every_configured_gateway_on_every_provider_bridge():
    b = _world({"public": "br-ex", "physnet2": "br-ex2"})
    cfg = Config(kernel=KernelConfig(ndp_proxy=(GW6, GW6B)))
    s = desired_state(b.snapshot(), cfg)
    assert s.proxy_neighbours == {ProxyNeighbour(br, ip) for br in ("br-ex", "br-ex2")
                                  for ip in (GW6, GW6B)}
    assert not desired_state(b.snapshot(), Config()).proxy_neighbours
    # `ovnbgp desired --json` lists them.
    assert state_to_dict(s)["proxy_neighbours"][0] == {"dev": "br-ex", "ip": "2001:db8:24::1"}


def test_model_bridge_missing_from_ovs_gets_no_proxy_entry():
    b = SbBuilder(mappings={"public": "br-ex", "physnet2": "br-gone"})
    b.bridges.pop("br-gone")
    s = desired_state(b.snapshot(), Config(kernel=KernelConfig(ndp_proxy=(GW6,))))
    assert s.proxy_neighbours == {ProxyNeighbour("br-ex", GW6)}


def test_model_cache_keeps_proxies_across_updates_and_local_changes():
    b = _world()
    cfg = Config(kernel=KernelConfig(ndp_proxy=(GW6,)))
    cache = ModelCache(b.snapshot(), cfg, log_problems=False)
    assert cache.state.proxy_neighbours == {ProxyNeighbour("br-ex", GW6)}
    u = b.remove("vm1")
    assert cache.update(Changes(port_bindings={u: None})).proxy_neighbours == {
        ProxyNeighbour("br-ex", GW6)}
    # the bridge mapping goes away: so do the entries
    b2 = SbBuilder(mappings={})
    state = cache.update(Changes(local=b2.snapshot().local))
    assert not state.proxy_neighbours
    assert state == desired_state(cache.snapshot(), cfg)


# --- kernel diff ---------------------------------------------------------------------------


def _desired(*proxies: tuple[str, str]) -> DesiredState:
    bridges = {dev for dev, _ in proxies} or {"br-ex"}
    return DesiredState(
        bridges=frozenset(BridgeSetup(b, 200 + i, (I("1.1.1.1/32"),)) for i, b in enumerate(sorted(bridges))),
        proxy_neighbours=frozenset(ProxyNeighbour(dev, A(ip)) for dev, ip in proxies))


def _node(*bridges: str, proxies=()) -> KernelState:
    st = KernelState()
    for i, name in enumerate(bridges):
        st.links[name] = LinkState(i + 2, name, "openvswitch", None, True)
        st.addrs[name] = {I("1.1.1.1/32")}
    for p in proxies:
        st.proxies[p.key] = p
    return st


def _proxy_ops(p):
    return ([(op.action, str(op.proxy)) for op in p.proxy_add],
            [(op.action, str(op.proxy)) for op in p.proxy_del])


def test_diff_adds_missing_entries_with_our_protocol():
    st = _node("br-ex")
    st.addrs.clear()
    p = plan(_desired(("br-ex", "2001:db8:24::1")), st,
             KernelSettings(route_protocol=P, rt_tables_file=Path("/x/rt"), advertise=False))
    assert _proxy_ops(p) == ([(Action.ADD, "-6 neigh proxy 2001:db8:24::1 dev br-ex proto 240")], [])
    assert "+ -6 neigh proxy 2001:db8:24::1 dev br-ex proto 240" in p.lines()
    # applied with the bridge IPs, before any steering or exposure
    ops = p.ops()
    assert ops.index(p.proxy_add[0]) > max(ops.index(op) for op in p.bridge_addr_add)


def test_diff_adopts_an_identical_foreign_entry_and_never_removes_one():
    foreign = ProxyObj("br-ex", GW6, 0)
    st = _node("br-ex", proxies=[foreign])
    s = KernelSettings(route_protocol=P, rt_tables_file=Path("/x/rt"), advertise=False)
    assert _proxy_ops(plan(_desired(("br-ex", "2001:db8:24::1")), st, s)) == ([], [])
    assert _proxy_ops(plan(_desired(), st, s)) == ([], [])  # not ours: left alone


def test_diff_removes_only_our_stale_entries():
    ours = ProxyObj("br-ex", GW6B, P)
    other = ProxyObj("br-ex", A("2001:db8:99::1"), 3)
    st = _node("br-ex", proxies=[ours, other])
    s = KernelSettings(route_protocol=P, rt_tables_file=Path("/x/rt"), advertise=False)
    adds, dels = _proxy_ops(plan(_desired(("br-ex", "2001:db8:24::1")), st, s))
    assert adds == [(Action.ADD, "-6 neigh proxy 2001:db8:24::1 dev br-ex proto 240")]
    assert dels == [(Action.DEL, "-6 neigh proxy 2001:db8:51::1 dev br-ex proto 240")]


def test_diff_waits_for_a_missing_bridge():
    s = KernelSettings(route_protocol=P, rt_tables_file=Path("/x/rt"), advertise=False)
    p = plan(_desired(("br-ex", "2001:db8:24::1")), _node(), s)
    assert _proxy_ops(p) == ([], [])
    assert any("br-ex" in n.subject and n.kind == "waiting" for n in p.notices)
    assert "br-ex" in set(all_devices(_desired(("br-ex", "2001:db8:24::1"))))


def test_teardown_plan_removes_ours():
    from ovnbgp.kernel.teardown import plan_from

    st = _node("br-ex", proxies=[ProxyObj("br-ex", GW6, P), ProxyObj("br-ex", GW6B, 0)])
    empty = DesiredState()
    tp = plan_from(st, plan(empty, st, S), dummy="ovn", vrf="ovn-bgp-vrf")
    assert [str(op.proxy) for op in tp.kernel.proxy_del] == [
        "-6 neigh proxy 2001:db8:24::1 dev br-ex proto 240"]


def test_invalid_proxy_entries_are_refused_before_any_change():
    bad = DesiredState(bridges=frozenset({BridgeSetup("br-ex", 200, ())}),
                       proxy_neighbours=frozenset({ProxyNeighbour("br ex!", GW6),
                                                   ProxyNeighbour("br-ex", A("ff02::1"))}))
    with pytest.raises(KernelInputError) as e:
        plan(bad, _node("br-ex"), S)
    text = str(e.value)
    assert "not a valid interface name" in text and "not a unicast IP address" in text


# --- messages ------------------------------------------------------------------------------


def _roundtrip(msg):
    msg["header"]["sequence_number"] = 1
    msg["header"]["pid"] = 0
    msg.encode()
    out = ndmsg(bytes(msg.data))
    out.decode()
    return out


def test_proxy_messages_roundtrip():
    p = ProxyObj("br-ex", GW6, P)
    m = _roundtrip(M.proxy(True, p, 7))
    assert m["flags"] == M.NTF_PROXY and m["header"]["type"] == 28  # RTM_NEWNEIGH
    assert M.decode_proxy(m, {7: "br-ex"}) == p
    d = _roundtrip(M.proxy(False, p, 7))
    assert d["header"]["type"] == 29 and d.get_attr("NDA_PROTOCOL") is None  # RTM_DELNEIGH
    assert M.decode_proxy(d, {}) is None  # unknown device: not reported
    # An ordinary (non-proxy) neighbour is never read as a proxy entry.
    from ovnbgp.kernel.objects import NeighObj

    n = _roundtrip(M.neigh(True, NeighObj("br-ex", GW6, "fa:16:3e:00:00:01", True, P), 7))
    assert M.decode_proxy(n, {7: "br-ex"}) is None
    dump = M.proxy_dump()
    assert dump["flags"] == M.NTF_PROXY and dump["header"]["type"] == 30  # RTM_GETNEIGH

"""Records -> pyroute2 messages -> bytes -> pyroute2 decode -> records (no kernel needed)."""

import ipaddress
import socket

import pytest
from pyroute2.netlink.rtnl.fibmsg import fibmsg
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.ndmsg import ndmsg
from pyroute2.netlink.rtnl.rtmsg import rtmsg

from ovnbgp.kernel import messages as M
from ovnbgp.kernel.objects import NeighObj, RouteObj, RuleObj
from tests.unit import pyroute2_reference as reference

N = ipaddress.ip_network
A = ipaddress.ip_address
I = ipaddress.ip_interface


def roundtrip(msg, cls):
    msg["header"]["sequence_number"] = 1
    msg["header"]["pid"] = 0
    msg.encode()
    out = cls(bytes(msg.data))
    out.decode()
    return out


@pytest.mark.parametrize("rule", [
    RuleObj(4, 32000, 200, N("172.24.4.10/32"), 240),
    RuleObj(6, 32000, 201, N("2001:db8::/64"), 240),
    RuleObj(4, 32000, 200, None, 240),
    RuleObj(4, 100, 300, N("10.0.0.0/8"), 240, (("from", "192.0.2.0/24"), ("iif", "eth0"))),
])
def test_rule_roundtrip(rule):
    assert M.decode_rule(roundtrip(M.rule(True, rule), fibmsg)) == rule


@pytest.mark.parametrize("route", [
    RouteObj(200, N("0.0.0.0/0"), "br-ex", None, True, 240, 0),
    RouteObj(200, N("10.0.0.0/26"), "br-ex", A("172.24.4.146"), False, 240, 0),
    RouteObj(200, N("2001:db8::/64"), "br-ex", A("2001:db8:1::1"), False, 240, 0),
])
def test_route_roundtrip(route):
    m = roundtrip(M.route("add", route, 7), rtmsg)
    got = M.decode_route(m, {7: "br-ex"})
    assert got == route
    assert m["header"]["flags"] & 0x600 == 0x600  # NLM_F_CREATE | NLM_F_EXCL
    assert M.peek_route(bytes(m.data), 0) == (M.AF[route.family], 200, 240, 1)


def test_route_delete_matches_any_scope_and_exact_metric():
    r = RouteObj(200, N("2001:db8::/64"), "br-ex", None, False, 240, 1024)
    m = roundtrip(M.route("del", r, 7), rtmsg)
    assert m["scope"] == M.RT_SCOPE_NOWHERE and m.get_attr("RTA_PRIORITY") == 1024


def test_route_replace_flags():
    r = RouteObj(200, N("10.0.0.0/26"), "br-ex", A("172.24.4.146"), False, 240, 0)
    m = roundtrip(M.route("replace", r, 7), rtmsg)
    assert m["header"]["flags"] & 0x100  # NLM_F_REPLACE


def test_large_table_ids_use_rta_table():
    r = RouteObj(1000, N("10.0.0.0/26"), "br-ex", None, True, 240, 0)
    m = roundtrip(M.route("add", r, 7), rtmsg)
    assert m["table"] == M.RT_TABLE_COMPAT and M.decode_route(m, {7: "br-ex"}).table == 1000


@pytest.mark.parametrize("a", [I("172.24.4.10/32"), I("10.0.0.0/26"), I("2001:db8::10/128")])
def test_addr_roundtrip(a):
    m = roundtrip(M.addr(True, 9, a), ifaddrmsg)
    assert M.decode_addr(m) == (9, a)
    assert M.peek_addr_index(bytes(m.data), 0) == 9


def test_neigh_roundtrip():
    n = NeighObj("br-ex", A("172.24.4.146"), "fa:16:3e:00:00:01", True, 240)
    m = roundtrip(M.neigh(True, n, 5), ndmsg)
    assert M.decode_neigh(m, {5: "br-ex"}) == n
    assert M.peek_neigh(bytes(m.data), 0) == (socket.AF_INET, 5, M.NUD_PERMANENT)


# --- the bulk encoder makes exactly pyroute2's bytes ------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


def pyroute2_bytes(msg) -> bytes:
    return M._encoded(msg)


@st.composite
def networks(draw):
    if draw(st.booleans()):
        plen = draw(st.integers(0, 32))
        addr = draw(st.integers(0, 2**32 - 1))
        return ipaddress.IPv4Network((addr, plen), strict=False)
    plen = draw(st.integers(0, 128))
    addr = draw(st.integers(0, 2**128 - 1))
    return ipaddress.IPv6Network((addr, plen), strict=False)


tables = st.sampled_from([200, 201, 252, 300, 70000])


@settings(max_examples=300, deadline=None)
@given(net=networks(), table=tables, prio=st.integers(1, 2**32 - 1), add=st.booleans())
def test_encoder_rule_matches_pyroute2(net, table, prio, add):
    enc = M.Encoder()
    r = RuleObj(net.version, prio, table, net, 240)
    assert enc.rule(add, r) == pyroute2_bytes(M.rule(add, r))
    catch_all = RuleObj(net.version, prio, table, None, 240)
    assert enc.rule(add, catch_all) == pyroute2_bytes(M.rule(add, catch_all))


@settings(max_examples=300, deadline=None)
@given(net=networks(), index=st.integers(1, 10000), add=st.booleans())
def test_encoder_addr_matches_pyroute2(net, index, add):
    enc = M.Encoder()
    for a in (ipaddress.ip_interface(f"{net.network_address}/{net.prefixlen}"),
              ipaddress.ip_interface(f"{net.broadcast_address}/{net.prefixlen}")):
        assert enc.addr(add, index, a) == pyroute2_bytes(M.addr(add, index, a))


@settings(max_examples=300, deadline=None)
@given(net=networks(), table=tables, gw=st.booleans(), link=st.booleans(),
       op=st.sampled_from(["add", "replace", "del"]), oif=st.sampled_from([None, 3, 70000]))
def test_encoder_route_matches_pyroute2(net, table, gw, link, op, oif):
    enc = M.Encoder()
    gateway = (A("172.24.4.146") if net.version == 4 else A("2001:db8::1")) if gw else None
    r = RouteObj(table, net, "br-ex", gateway, link and net.version == 4, 240,
                 0 if net.version == 4 else 1024)
    assert enc.route(op, r, oif) == pyroute2_bytes(M.route(op, r, oif))


def test_encoder_reuses_templates_across_values():
    enc = M.Encoder()
    a = RuleObj(4, 32000, 200, N("10.0.0.1/32"), 240)
    b = RuleObj(4, 32000, 200, N("10.9.0.0/16"), 240)
    enc.rule(True, a)
    enc.rule(True, b)
    assert len(enc._templates) == 1
    assert enc.rule(True, b) == pyroute2_bytes(M.rule(True, b))


# --- the fast dump parsers read what pyroute2's decoder reads ---------------------------------


def encoded(msg, mtype: int) -> bytes:
    msg["header"]["type"] = mtype
    return pyroute2_bytes(msg)


@settings(max_examples=200, deadline=None)
@given(net=networks(), table=tables, prio=st.integers(0, 2**32 - 1), proto=st.integers(0, 255),
       extra=st.sampled_from([[], [["FRA_SUPPRESS_PREFIXLEN", 0xFFFFFFFF]], [["FRA_L3MDEV", 1]],
                              [["FRA_FWMARK", 7]], [["FRA_IIFNAME", "eth0"]],
                              [["FRA_SUPPRESS_PREFIXLEN", 0]]]),
       src=st.booleans(), with_dst=st.booleans())
def test_parse_rule_equals_pyroute2_decode(net, table, prio, proto, extra, src, with_dst):
    r = RuleObj(net.version, prio or 1, table, net if with_dst else None, proto)
    m = M.rule(True, r)
    m["attrs"] = [a for a in m["attrs"] if not (a[0] == "FRA_PRIORITY" and prio == 0)] + extra
    if src:
        m["src_len"] = net.prefixlen
        m["attrs"].append(["FRA_SRC", str(net.network_address)])
    data = encoded(m, 32)
    slow = fibmsg(data)
    slow.decode()
    assert M.parse_rule(data, 0, len(data)) == reference.decode_rule(slow)


@settings(max_examples=200, deadline=None)
@given(net=networks(), table=tables, gw=st.booleans(), oif=st.sampled_from([None, 3, 9]),
       metric=st.integers(0, 2**32 - 1), pref=st.booleans(), proto=st.integers(0, 255))
def test_parse_route_equals_pyroute2_decode(net, table, gw, oif, metric, pref, proto):
    gateway = (A("172.24.4.146") if net.version == 4 else A("2001:db8::1")) if gw else None
    r = RouteObj(table, net, "br-ex", gateway, net.version == 4 and not gw, proto, metric)
    m = M.route("add", r, oif)
    m["attrs"].append(["RTA_PRIORITY", metric])
    if pref:
        m["attrs"].append(["RTA_PREF", 0])
    data = encoded(m, 24)
    slow = rtmsg(data)
    slow.decode()
    names = {3: "br-ex"}
    assert M.parse_route(data, 0, len(data), names) == reference.decode_route(slow, names)


def test_parse_route_skips_multipath_like_decode():
    m = M.route("add", RouteObj(200, N("10.0.0.0/24"), "br-ex", None, False, 240, 0), 3)
    m["attrs"].append(["RTA_MULTIPATH", [{"oif": 3}, {"oif": 4}]])
    data = encoded(m, 24)
    slow = rtmsg(data)
    slow.decode()
    assert M.parse_route(data, 0, len(data), {}) is None is reference.decode_route(slow, {})


@settings(max_examples=200, deadline=None)
@given(net=networks(), index=st.integers(1, 2**31 - 1))
def test_parse_addr_equals_pyroute2_decode(net, index):
    a = ipaddress.ip_interface(f"{net.broadcast_address}/{net.prefixlen}")
    data = encoded(M.addr(True, index, a), 20)
    slow = ifaddrmsg(data)
    slow.decode()
    assert M.parse_addr(data, 0, len(data)) == reference.decode_addr(slow) == (index, a)


def test_multipath_route_gives_one_path_per_next_hop():
    m = rtmsg()
    m["family"] = socket.AF_INET
    m["dst_len"] = 24
    m["table"] = 254
    m["proto"] = 3
    m["type"] = 1
    m["attrs"] = [("RTA_DST", "198.51.100.0"), ("RTA_MULTIPATH", [
        {"oif": 7, "attrs": [("RTA_GATEWAY", "192.0.2.1")]},
        {"oif": 9, "attrs": []},
    ])]
    m = roundtrip(m, rtmsg)
    data = bytes(m.data)
    assert M.parse_route(data, 0, len(data), {}) is None  # not a shape ovnbgp makes
    paths = M.parse_route_paths(data, 0, len(data), {7: "br-ex", 9: "eth1"})
    assert [(p.dst, p.dev, p.gateway, p.table, p.protocol) for p in paths] == [
        (N("198.51.100.0/24"), "br-ex", A("192.0.2.1"), 254, 3),
        (N("198.51.100.0/24"), "eth1", None, 254, 3),
    ]


def test_plain_route_is_one_path():
    r = RouteObj(200, N("10.0.0.0/26"), "br-ex", A("172.24.4.146"), False, 240, 0)
    data = bytes(roundtrip(M.route("add", r, 7), rtmsg).data)
    assert M.parse_route_paths(data, 0, len(data), {7: "br-ex"}) == (r,)

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

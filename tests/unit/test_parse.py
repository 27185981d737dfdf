"""The strict SB/OVS string parsers (ovnbgp/agent/parse.py)."""

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ovnbgp.model.parse import (
    ParseError,
    nat_residents,
    parse_bridge_mappings,
    parse_host_ip,
    parse_interface,
    parse_mac,
    parse_nat_address,
    parse_network,
    parse_port_addresses,
    parse_router_port_addresses,
)

V4 = ipaddress.IPv4Address
V6 = ipaddress.IPv6Address


def test_vm_port_entry_dual_stack():
    assert parse_port_addresses("fa:16:3e:00:00:01 172.24.4.10 2001:db8::10") == (
        "fa:16:3e:00:00:01", (V4("172.24.4.10"), V6("2001:db8::10")))


def test_vm_port_entry_normalises_mac_and_dedupes_ips():
    assert parse_port_addresses("FA:16:3E:00:00:01 10.0.0.5 10.0.0.5") == (
        "fa:16:3e:00:00:01", (V4("10.0.0.5"),))


def test_vm_port_entry_mac_only_has_no_ips():
    assert parse_port_addresses("fa:16:3e:00:00:01") == ("fa:16:3e:00:00:01", ())


@pytest.mark.parametrize("kw", ["unknown", "router", "dynamic", "none"])
def test_keywords_are_debug_level(kw):
    with pytest.raises(ParseError) as e:
        parse_port_addresses(kw)
    assert e.value.level == "debug"
    assert kw in e.value.reason


@pytest.mark.parametrize("entry", [
    "", "   ",
    "fa:16:3e:00:00 10.0.0.5",          # short MAC
    "zz:16:3e:00:00:01 10.0.0.5",       # not hex
    "01:00:5e:00:00:01 10.0.0.5",       # multicast MAC
    "ff:ff:ff:ff:ff:ff 10.0.0.5",       # broadcast MAC
    "00:00:00:00:00:00 10.0.0.5",
    "fa:16:3e:00:00:01 10.0.0.300",
    "fa:16:3e:00:00:01 10.0.0.5/24",    # VM port addresses carry no prefix
    "fa:16:3e:00:00:01 fe80::1%eth0",   # zone id
    "fa:16:3e:00:00:01 fe80::1",        # link-local
    "fa:16:3e:00:00:01 127.0.0.1",
    "fa:16:3e:00:00:01 224.0.0.5",
    "fa:16:3e:00:00:01 0.0.0.0",
    "fa:16:3e:00:00:01 ::ffff:10.0.0.5",
    "fa:16:3e:00:00:01 010.0.0.5",      # leading zero: ambiguous
    "fa:16:3e:00:00:01 10.0.0.05",
    "fa:16:3e:00:00:01 10.0.0.256",
    "fa:16:3e:00:00:01 10.0.0.5 unknown",
    "unknown 10.0.0.5",
])
def test_bad_vm_entries_are_rejected_whole(entry):
    with pytest.raises(ParseError) as e:
        parse_port_addresses(entry)
    assert e.value.level == "warning"


def test_router_port_entry():
    assert parse_router_port_addresses("fa:16:3e:b5:a6:77 172.24.4.146/24 2001:db8::1/64") == (
        "fa:16:3e:b5:a6:77",
        (ipaddress.IPv4Interface("172.24.4.146/24"), ipaddress.IPv6Interface("2001:db8::1/64")))


@pytest.mark.parametrize("text", ["10.0.0.0/24", "10.0.0.255/24", "10.0.0.1/0", "10.0.0.1/33",
                                  "10.0.0.1", "10.0.0.1/ 24", "10.0.0.1/024x", "2001:db8::/64",
                                  "10.0.0.1/\u0662\u0664", "10.0.0.1/24\n",
                                  "fe80::1/64", "10.0.0.1/24/1"])
def test_bad_router_port_interfaces(text):
    with pytest.raises(ParseError):
        parse_interface(text)


def test_point_to_point_interfaces_are_fine():
    assert parse_interface("10.0.0.0/31") == ipaddress.IPv4Interface("10.0.0.0/31")
    assert parse_interface("10.0.0.7/32") == ipaddress.IPv4Interface("10.0.0.7/32")


def test_router_port_entry_needs_an_address():
    with pytest.raises(ParseError):
        parse_router_port_addresses("fa:16:3e:b5:a6:77")


def test_network_refuses_host_bits():
    assert parse_network("10.0.0.0/26") == ipaddress.IPv4Network("10.0.0.0/26")
    for bad in ("10.0.0.1/26", "0.0.0.0/0", "::/0", "10.0.0.0", "fe80::/64", "10.0.0.0/33"):
        with pytest.raises(ParseError):
            parse_network(bad)


def test_nat_entry_dvr_and_gateway():
    assert parse_nat_address('fa:16:3e:00:00:99 172.24.4.225 is_chassis_resident("vm2")') == (
        "fa:16:3e:00:00:99", (V4("172.24.4.225"),), "vm2")
    assert parse_nat_address('fa:16:3e:b5:a6:77 172.24.4.146 172.24.4.226 '
                             'is_chassis_resident("cr-lrp-gw")') == (
        "fa:16:3e:b5:a6:77", (V4("172.24.4.146"), V4("172.24.4.226")), "cr-lrp-gw")
    assert parse_nat_address("fa:16:3e:00:00:99 172.24.4.225") == (
        "fa:16:3e:00:00:99", (V4("172.24.4.225"),), None)


@pytest.mark.parametrize("entry", [
    'fa:16:3e:00:00:99 is_chassis_resident("vm2")',
    'fa:16:3e:00:00:99 172.24.4.225 is_chassis_resident(vm2)',
    'fa:16:3e:00:00:99 172.24.4.225 is_chassis_resident("vm2"',
    'is_chassis_resident("vm2")',
    'fa:16:3e:00:00:99 172.24.4.225 is_chassis_resident("vm2") 10.0.0.1',
    'bad 172.24.4.225 is_chassis_resident("vm2")',
])
def test_bad_nat_entries(entry):
    with pytest.raises(ParseError):
        parse_nat_address(entry)


def test_nat_residents_index():
    assert nat_residents(('fa:16:3e:00:00:99 172.24.4.225 is_chassis_resident("vm2")',
                          "garbage", "", 'x is_chassis_resident("cr-lrp")')) == {"vm2", "cr-lrp"}


def test_bridge_mappings():
    m, problems = parse_bridge_mappings("public:br-ex, physnet2:br-ex2,,bad,x:,public:br-o,p:a b")
    assert list(m.items()) == [("public", "br-ex"), ("physnet2", "br-ex2")]
    assert len(problems) == 4


def test_mac_rules():
    assert parse_mac("AA:BB:CC:00:00:01") == "aa:bb:cc:00:00:01"
    for bad in ("aa:bb:cc:00:00", "aa-bb-cc-00-00-01", "aa:bb:cc:00:00:01 ", "aa:bb:cc:00:00:01\n", 7, None):
        with pytest.raises(ParseError):
            parse_mac(bad)  # type: ignore[arg-type]


@given(st.text(max_size=60))
def test_parsers_only_raise_parse_error(text):
    for fn in (parse_port_addresses, parse_router_port_addresses, parse_nat_address,
               parse_host_ip, parse_interface, parse_network, parse_mac):
        try:
            fn(text)
        except ParseError:
            pass
    parse_bridge_mappings(text)
    nat_residents((text,))


@given(st.ip_addresses())
def test_host_ip_round_trip(addr):
    try:
        parsed = parse_host_ip(str(addr))
    except ParseError:
        assert (addr.is_loopback or addr.is_multicast or addr.is_link_local or addr.is_reserved
                or addr.is_unspecified or (addr.version == 4 and addr in ipaddress.ip_network("0.0.0.0/8"))
                or (addr.version == 6 and addr.ipv4_mapped is not None))
    else:
        assert parsed == addr


def _oracle_bad(addr) -> bool:
    return (addr.is_loopback or addr.is_multicast or addr.is_link_local or addr.is_reserved
            or addr.is_unspecified or (addr.version == 4 and addr in ipaddress.ip_network("0.0.0.0/8"))
            or (addr.version == 6 and addr.ipv4_mapped is not None))


BOUNDARY_NETS = ["0.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "224.0.0.0/4", "240.0.0.0/4",
                 "10.0.0.0/8", "100.64.0.0/10", "::/8", "100::/8", "200::/7", "400::/6", "800::/5",
                 "1000::/4", "2000::/3", "4000::/3", "6000::/3", "8000::/3", "a000::/3", "c000::/3",
                 "e000::/4", "f000::/5", "f800::/6", "fc00::/7", "fe00::/9", "fe80::/10", "fec0::/10",
                 "ff00::/8", "::ffff:0:0/96", "2002::/16", "2001:db8::/32"]


@pytest.mark.parametrize("cidr", BOUNDARY_NETS)
def test_fast_routable_check_agrees_with_ipaddress_at_range_edges(cidr):
    n = ipaddress.ip_network(cidr)
    top = 2 ** n.max_prefixlen - 1
    for x in {int(n[0]) - 1, int(n[0]), int(n[0]) + 1, int(n[-1]) - 1, int(n[-1]), int(n[-1]) + 1}:
        if 0 <= x <= top:
            addr = ipaddress.ip_address(x) if n.version == 4 else ipaddress.IPv6Address(x)
            try:
                parse_host_ip(str(addr))
                bad = False
            except ParseError:
                bad = True
            assert bad == _oracle_bad(addr), addr

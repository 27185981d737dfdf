"""Strict parsers for the strings OVN and OVS put in their databases.

Every function takes one raw string from the DB and returns typed values (ipaddress objects,
normalised MACs), or raises `ParseError` saying what is wrong. Nothing here logs or knows about
rows: the model (the model, ovnbgp/model/) turns a ParseError into a `Problem` naming the row's uuid.

The formats (OVN 23.03, checked against a real ovn-northd):
- VM port `Port_Binding.mac` entry: "fa:16:3e:00:00:01 172.24.4.10 2001:db8::10", or one of the
  keywords "unknown", "router", "dynamic", "none".
- router port / cr-lrp `mac` entry: "fa:16:3e:b5:a6:77 172.24.4.146/24 2001:db8::1/64".
- patch port `nat_addresses` entry: 'fa:16:3e:00:00:99 172.24.4.225 is_chassis_resident("vm2")'.
- OVS `ovn-bridge-mappings`: "physnet1:br-ex,physnet2:br-ex2".
- localnet port `tag`: an integer, the VLAN of a VLAN provider network (empty: flat).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable
from functools import wraps
from typing import TypeVar

from ovnbgp.config import IFNAME_RE, MAC_RE, VLAN_MAX, VLAN_MIN
from ovnbgp.model import ipcache
from ovnbgp.model.records import IPAddress, IPInterface, IPNetwork

# Address keywords a logical switch port may carry instead of (or next to) "MAC IP..." entries.
ADDRESS_KEYWORDS = frozenset({"unknown", "router", "dynamic", "none"})
RESIDENT_RE = re.compile(r'^is_chassis_resident\("([^"\s\\]+)"\)$')
_IP_CHARS_RE = re.compile(r"^[0-9A-Fa-f:.]+$")
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_DOTTED_QUAD_RE = re.compile(rf"^{_OCTET}(?:\.{_OCTET}){{3}}$")
_V4_THIS_NETWORK = ipaddress.IPv4Network("0.0.0.0/8")
T = TypeVar("T")


class ParseError(ValueError):
    """A DB string the model cannot use. `level` is "debug" for legal values that simply carry
    nothing to expose (an "unknown" address), "warning" for malformed data."""

    def __init__(self, reason: str, level: str = "warning"):
        super().__init__(reason)
        self.reason = reason
        self.level = level


def parse_mac(text: str) -> str:
    """A unicast Ethernet address, returned lower-case."""
    if not isinstance(text, str) or not MAC_RE.fullmatch(text.lower()):
        raise ParseError(f"bad MAC {text!r}")
    mac = text.lower()
    if int(mac[:2], 16) & 1:
        raise ParseError(f"MAC {text!r} is multicast/broadcast")
    if mac == "00:00:00:00:00:00":
        raise ParseError(f"MAC {text!r} is all zeros")
    return mac


def _check_routable(addr: IPAddress, text: str) -> IPAddress:
    """Refuse addresses that must never be exposed or steered (they would hijack local traffic).

    Same verdict as ipaddress' is_unspecified/is_loopback/is_multicast/is_link_local/is_reserved
    (plus 0.0.0.0/8 and IPv4-mapped IPv6), in integer arithmetic: the properties are slow and
    this runs for every address of every port (tests/unit/test_parse.py checks they agree).
    """
    x = int(addr)
    if addr.version == 4:
        top = x >> 24
        bad = top == 0 or top == 127 or top >= 224 or (x >> 16) == 0xA9FE
    else:
        # Global unicast 2000::/3, unique local fc00::/7 and (deprecated) site-local fec0::/10
        # are the only ranges ipaddress does not call reserved/link-local/multicast/loopback.
        bad = not ((x >> 125) == 1 or (x >> 121) == 0x7E or (x >> 118) == 0x3FB)
    if bad:
        raise ParseError(f"address {text!r} is not a routable unicast address")
    return addr


def _text_only(what: str) -> Callable:
    """For the address parsers: anything but a str is refused with a ParseError naming `what`.
    They return interned objects (ipcache). (Not cached on the text: a resync re-reads only
    the rows that changed, and the cache would cost more memory than it saves time.)"""
    def wrap(parse: Callable[[str], T]) -> Callable[[object], T]:
        @wraps(parse)
        def checked(text: object) -> T:
            if not isinstance(text, str):
                raise ParseError(f"bad {what} {text!r}")
            return parse(text)
        return checked
    return wrap


@_text_only("IP address")
def parse_host_ip(text: str) -> IPAddress:
    """A plain routable unicast IPv4/IPv6 address ("10.0.0.5"; no prefix, no zone)."""
    if not _IP_CHARS_RE.fullmatch(text):
        raise ParseError(f"bad IP address {text!r}")
    if _DOTTED_QUAD_RE.fullmatch(text):  # fast path, the common case (no leading zeros, <= 255)
        addr = ipcache.address(4, int.from_bytes(socket.inet_aton(text), "big"))
        return _check_routable(addr, text)
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        raise ParseError(f"bad IP address {text!r}") from None
    return _check_routable(ipcache.address(addr.version, int(addr)), text)


@_text_only("address/prefix")
def parse_interface(text: str) -> IPInterface:
    """A router port address with its prefix length ("10.0.0.1/26").

    The address part must be a usable host of its network: not the network address nor (IPv4)
    the broadcast address, since it is used as a next hop. Prefix length 0 is refused (it would
    make the whole address family a "tenant subnet").
    """
    if text.count("/") != 1:
        raise ParseError(f"bad address/prefix {text!r}")
    addr_s, _, plen_s = text.partition("/")
    if not (plen_s.isascii() and plen_s.isdigit()) or len(plen_s) > 3:
        raise ParseError(f"bad prefix length in {text!r}")
    addr = parse_host_ip(addr_s)
    plen = int(plen_s)
    if plen == 0 or plen > addr.max_prefixlen:
        raise ParseError(f"prefix length out of range in {text!r}")
    iface = ipcache.interface(addr.version, int(addr), plen)
    net = iface.network
    if net.num_addresses > 2 and (addr == net.network_address
                                  or (addr.version == 4 and addr == net.broadcast_address)):
        raise ParseError(f"{text!r} is not a host address of its network")
    return iface


@_text_only("CIDR")
def parse_network(text: str) -> IPNetwork:
    """A CIDR with no host bits set ("10.0.0.0/26"); "10.0.0.1/26" is refused."""
    if text.count("/") != 1:
        raise ParseError(f"bad CIDR {text!r}")
    addr_s, _, plen_s = text.partition("/")
    if not _IP_CHARS_RE.fullmatch(addr_s) or not (plen_s.isascii() and plen_s.isdigit()) or len(plen_s) > 3:
        raise ParseError(f"bad CIDR {text!r}")
    try:
        net = ipaddress.ip_network(text, strict=True)
    except ValueError:
        raise ParseError(f"bad CIDR {text!r} (host bits set or malformed)") from None
    if net.prefixlen == 0:
        raise ParseError(f"CIDR {text!r} covers the whole address family")
    _check_routable(net.network_address, text)
    return ipcache.same(net)


def _split(entry: str, what: str) -> list[str]:
    if not isinstance(entry, str):
        raise ParseError(f"{what} entry is not a string")
    tokens = entry.split()
    if not tokens:
        raise ParseError(f"empty {what} entry")
    return tokens


def parse_port_addresses(entry: str) -> tuple[str, tuple[IPAddress, ...]]:
    """One VM port `mac` entry: "MAC IP [IP...]" -> (mac, IPs).

    A keyword entry ("unknown", "router", "dynamic", "none") raises ParseError at debug level:
    it is legal OVN but names no address. Any bad token rejects the whole entry, so nothing
    from a half-understood entry is ever exposed.
    """
    tokens = _split(entry, "mac")
    if tokens[0] in ADDRESS_KEYWORDS:
        if len(tokens) == 1:
            raise ParseError(f"mac entry {tokens[0]!r} carries no address", level="debug")
        raise ParseError(f"mac entry {entry!r} mixes a keyword with addresses")
    mac = parse_mac(tokens[0])
    ips: list[IPAddress] = []
    for tok in tokens[1:]:
        if tok in ADDRESS_KEYWORDS:
            raise ParseError(f"mac entry {entry!r} mixes a keyword with addresses")
        ip = parse_host_ip(tok)
        if ip not in ips:
            ips.append(ip)
    return mac, tuple(ips)


def parse_router_port_addresses(entry: str) -> tuple[str, tuple[IPInterface, ...]]:
    """One router port / cr-lrp `mac` entry: "MAC IP/LEN [IP/LEN...]" -> (mac, interfaces)."""
    tokens = _split(entry, "mac")
    mac = parse_mac(tokens[0])
    ifaces: list[IPInterface] = []
    for tok in tokens[1:]:
        iface = parse_interface(tok)
        if iface not in ifaces:
            ifaces.append(iface)
    if not ifaces:
        raise ParseError(f"router port mac entry {entry!r} has no address")
    return mac, tuple(ifaces)


def parse_nat_address(entry: str) -> tuple[str, tuple[IPAddress, ...], str | None]:
    """One `nat_addresses` entry -> (mac, IPs, resident port name or None).

    'fa:16:3e:00:00:99 172.24.4.225 is_chassis_resident("vm2")' means: the chassis where port
    vm2 is bound answers for 172.24.4.225 (a distributed floating IP); with the cr-lrp as the
    resident port the IPs live on the gateway chassis (its SNAT address, centralized FIPs).
    """
    tokens = _split(entry, "nat_addresses")
    resident = None
    m = RESIDENT_RE.fullmatch(tokens[-1])
    if m:
        resident = m.group(1)
        tokens = tokens[:-1]
    elif "is_chassis_resident" in entry:
        raise ParseError(f"bad is_chassis_resident() in nat_addresses entry {entry!r}")
    if not tokens:
        raise ParseError(f"nat_addresses entry {entry!r} has no MAC")
    mac = parse_mac(tokens[0])
    ips: list[IPAddress] = []
    for tok in tokens[1:]:
        ip = parse_host_ip(tok)
        if ip not in ips:
            ips.append(ip)
    if not ips:
        raise ParseError(f"nat_addresses entry {entry!r} has no IP")
    return mac, tuple(ips), resident


def nat_residents(entries: tuple[str, ...]) -> frozenset[str]:
    """The resident port names a `nat_addresses` column mentions (cheap, for indexing)."""
    out = set()
    for entry in entries:
        if isinstance(entry, str):
            tokens = entry.split()
            if tokens:
                m = RESIDENT_RE.fullmatch(tokens[-1])
                if m:
                    out.add(m.group(1))
    return frozenset(out)


def parse_vlan_tag(value: object) -> int | None:
    """A localnet port's `tag` column (Neutron's VLAN network) -> the VLAN id, None when the
    column is empty (a flat network). 1..4094: 0 means "no VLAN" in 802.1Q and 4095 is
    reserved, though the SB schema allows it."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ParseError(f"VLAN tag {_short(str(value))} is not an integer")
    if not VLAN_MIN <= value <= VLAN_MAX:
        raise ParseError(f"VLAN tag {value} is out of range {VLAN_MIN}..{VLAN_MAX}")
    return value


def _short(text: str, limit: int = 80) -> str:
    """repr() of a DB value cut to `limit` characters (a 10k-character value is one bad item,
    not a 10k-character log line)."""
    r = repr(text)
    return r if len(r) <= limit else r[:limit - 5] + "...'" + f" ({len(text)} chars)"


def parse_bridge_mappings(text: str | None) -> tuple[dict[str, str], list[str]]:
    """OVS `ovn-bridge-mappings` -> ({physnet: bridge} in order, [problems]).

    Bad items are reported and skipped; the rest is kept. A physnet listed twice keeps its first
    bridge (as ovn-controller does). Bridge names must be valid interface names because they
    reach netlink. `text` None (the key is not set) and an empty value are problems too: every
    problem makes the mapping *unusable* (model.topology.Bridges), and the targets then hold
    what is in place for bridges that are no longer mapped instead of withdrawing it.
    """
    mappings: dict[str, str] = {}
    problems: list[str] = []
    if text is None:
        return mappings, ["ovn-bridge-mappings is not set"]
    if not isinstance(text, str):
        return mappings, ["ovn-bridge-mappings is not a string"]
    if not text.strip():
        return mappings, ["ovn-bridge-mappings is empty"]
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue  # "a:b," or "a:b,,c:d": ovn-controller skips empty items too
        physnet, sep, bridge = item.partition(":")
        physnet, bridge = physnet.strip(), bridge.strip()
        if not sep or not physnet or not bridge:
            problems.append(f"ovn-bridge-mappings item {_short(item)} is not PHYSNET:BRIDGE")
            continue
        if not IFNAME_RE.fullmatch(bridge):
            problems.append(f"ovn-bridge-mappings item {_short(item)}: bad bridge name {_short(bridge)}")
            continue
        if physnet in mappings:
            problems.append(f"ovn-bridge-mappings maps {_short(physnet)} twice; keeping "
                            f"{mappings[physnet]!r}")
            continue
        mappings[physnet] = bridge
    return mappings, problems

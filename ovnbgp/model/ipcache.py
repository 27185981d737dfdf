"""Interned ipaddress objects.

The ipaddress constructors are pure Python (5-10 us each natively, several times that in
User-Mode Linux); a full resync at 10k ports used to build ~100k of them, most equal to ones
already alive. Built through these caches, a repeat is a dictionary lookup, and equal
addresses/networks are one object across the model, the kernel observation and FRR's tables:
set operations between them stop at the identity check, and memory holds one copy.

The caches are bounded (least recently used entries go), so churn over months does not grow
them; an evicted value is simply built again.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from functools import lru_cache

from ovnbgp.model.records import IPAddress, IPInterface, IPNetwork

SIZE = 1 << 17  # a few times the objects of a 10k-port node

_ADDRESS: dict[int, Callable[..., IPAddress]] = {4: ipaddress.IPv4Address, 6: ipaddress.IPv6Address}
_NETWORK: dict[int, Callable[..., IPNetwork]] = {4: ipaddress.IPv4Network, 6: ipaddress.IPv6Network}
_INTERFACE: dict[int, Callable[..., IPInterface]] = {4: ipaddress.IPv4Interface, 6: ipaddress.IPv6Interface}
_MAX = {4: 32, 6: 128}


@lru_cache(maxsize=SIZE)
def address(version: int, value: int) -> IPAddress:
    return _ADDRESS[version](value)


@lru_cache(maxsize=SIZE)
def network(version: int, value: int, prefixlen: int) -> IPNetwork:
    """The network of `value`/`prefixlen` (host bits are masked off, as strict=False does)."""
    return _NETWORK[version]((value, prefixlen), strict=False)


@lru_cache(maxsize=SIZE)
def interface(version: int, value: int, prefixlen: int) -> IPInterface:
    return _INTERFACE[version]((value, prefixlen))


def host(ip: IPAddress) -> IPNetwork:
    """ip/32 or ip/128."""
    v = ip.version
    return network(v, int(ip), _MAX[v])


def same(net: IPNetwork) -> IPNetwork:
    """The interned network equal to `net`."""
    return network(net.version, int(net.network_address), net.prefixlen)


@lru_cache(maxsize=SIZE)
def address_text(text: str) -> IPAddress:
    """ip_address(text), interned. ValueError for a bad text (not cached)."""
    a = ipaddress.ip_address(text)
    return address(a.version, int(a))


@lru_cache(maxsize=SIZE)
def network_text(text: str) -> IPNetwork:
    """ip_network(text, strict=False), interned. ValueError for a bad text (not cached)."""
    return same(ipaddress.ip_network(text, strict=False))

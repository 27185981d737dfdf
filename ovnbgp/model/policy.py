"""Which tenant subnets may reach the fabric (config [exposure]): one pure rule.

Used by Topology for the router interfaces' subnets; a tenant VM IP is exposed only inside an
exposed subnet, so the same rule covers it. A refused subnet is a Problem of its router
interface row with the words "filtered by policy" (shown by the log and `ovnbgp explain`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from ovnbgp.config import ExposureConfig
from ovnbgp.model.records import IPNetwork

FILTERED = "filtered by policy"
_GUA = ipaddress.IPv6Network("2000::/3")


def is_ipv6_gua(net: IPNetwork) -> bool:
    """An IPv6 global unicast subnet (inside 2000::/3, not documentation space)."""
    return net.version == 6 and net.subnet_of(_GUA) and net.is_global


def scope_key(version: int) -> str:
    """The external_ids key Neutron writes a port's IPv4/IPv6 address scope id under."""
    return f"neutron:subnet_pool_addr_scope{version}"


SCOPE_KEYS = frozenset({scope_key(4), scope_key(6)})


def tenant_subnet_refusal(net: IPNetwork, policy: ExposureConfig,
                          scopes: Iterable[str] = ()) -> str | None:
    """None when `net` may be exposed, else why not (starts with FILTERED). `scopes`: the
    address scope ids its router interface carries for net's family (LRP and switch port)."""
    if not policy.tenant_networks:
        return f"{FILTERED}: exposure.tenant_networks is false"
    if not policy.restricted:
        return None
    scopes = [s for s in scopes if s]
    if any(s in policy.tenant_address_scopes for s in scopes):
        return None
    if policy.tenant_ipv6_gua and is_ipv6_gua(net):
        return None
    if any(p.version == net.version and net.subnet_of(p)  # type: ignore[arg-type]
           for p in policy.tenant_prefixes):
        return None
    why = []
    if policy.tenant_prefixes:
        why.append("is not inside exposure.tenant_prefixes ("
                   + ", ".join(str(p) for p in policy.tenant_prefixes) + ")")
    if policy.tenant_address_scopes:
        why.append(f"has address scope {', '.join(scopes)}, not one of exposure.tenant_address_scopes"
                   if scopes else "has no address scope (exposure.tenant_address_scopes is set)")
    if net.version == 6 and policy.tenant_ipv6_gua:
        why.append("is not an IPv6 global unicast subnet")
    return f"{FILTERED}: {net} " + " and ".join(why)

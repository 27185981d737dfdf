"""Which tenant subnets may reach the fabric (config [exposure]): one pure rule.

Used by Topology for the router interfaces' subnets; a tenant VM IP is exposed only inside an
exposed subnet, so the same rule covers it. A refused subnet is a Problem of its router
interface row with the words "filtered by policy" (shown by the log and `ovnbgp explain`).
"""

from __future__ import annotations

import ipaddress

from ovnbgp.config import ExposureConfig
from ovnbgp.model.records import IPNetwork

FILTERED = "filtered by policy"
_GUA = ipaddress.IPv6Network("2000::/3")


def is_ipv6_gua(net: IPNetwork) -> bool:
    """An IPv6 global unicast subnet (inside 2000::/3, not documentation space)."""
    return net.version == 6 and net.subnet_of(_GUA) and net.is_global


def tenant_subnet_refusal(net: IPNetwork, policy: ExposureConfig) -> str | None:
    """None when `net` may be exposed, else why not (starts with FILTERED)."""
    if not policy.tenant_networks:
        return f"{FILTERED}: exposure.tenant_networks is false"
    if not policy.tenant_prefixes:
        return None
    if policy.tenant_ipv6_gua and is_ipv6_gua(net):
        return None
    if any(p.version == net.version and net.subnet_of(p)  # type: ignore[arg-type]
           for p in policy.tenant_prefixes):
        return None
    return (f"{FILTERED}: {net} is not inside exposure.tenant_prefixes ("
            + ", ".join(str(p) for p in policy.tenant_prefixes) + ")"
            + (" and is not an IPv6 global unicast subnet" if net.version == 6
               and policy.tenant_ipv6_gua else ""))

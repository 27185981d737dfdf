"""Floating IPs: what a patch port's `nat_addresses` entries make the model claim.

One function, used by ModelCache for a row's contribution and by the named events (through
model/query.py) to name a change, so both read the entries by the same rules.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from ovnbgp.model import ipcache
from ovnbgp.model.claims import Claim, problem, waiting_for_up
from ovnbgp.model.lb import EMPTY_INDEX, WAITING_MEMBERS, LbIndex, lb_problem
from ovnbgp.model.parse import ParseError, parse_nat_address
from ovnbgp.model.records import ExposureKind, IPAddress, IPNetwork, LoadBalancerRow, PortBindingRow, Problem
from ovnbgp.model.topology import VM_TYPE, Context, router_port_addrs

Lookup = Callable[[str], "PortBindingRow | None"]  # logical_port -> row


def fip_claims(row: PortBindingRow, entries: Iterable[str], network: tuple[str, int],
               by_name: Lookup, ctx: Context, problems: list[Problem], lbs: LbIndex = EMPTY_INDEX,
               router_nets: Mapping[str, tuple[IPNetwork, ...]] | None = None) -> list[Claim]:
    """The FIP claims of `entries` (nat_addresses of patch port `row` on a provider network
    mapped to `network`, (bridge, VLAN)): an entry counts when its is_chassis_resident() port
    is bound here (a VM port: also up; a cr-lrp: its own IPs are exposed as cr-lrp, not twice).

    Behind a cr-lrp, OVN also lists the VIPs of the router's load balancers: an address in
    one of the router's tenant subnets (`router_nets`) is a tenant address, not exposed as a
    host; a VIP of a Load_Balancer row (`lbs`) is an lb-vip claim while a load balancer lists
    a member for it (docs/load-balancers.md)."""
    claims: list[Claim] = []
    router_nets = router_nets or {}
    bridge, vlan = network
    for entry in entries:
        try:
            _, ips, resident_name = parse_nat_address(entry)
        except ParseError as e:
            problems.append(problem(row, f"nat_addresses: {e.reason}", e.level))
            continue
        if resident_name is None:
            problems.append(problem(row, f"nat_addresses entry {entry!r} has no "
                                     "is_chassis_resident(); not exposed", "debug"))
            continue
        resident = by_name(resident_name)
        if resident is None:
            problems.append(problem(row, f"nat_addresses entry names port {resident_name!r} "
                                     "which does not exist; not exposed", "debug"))
            continue
        own: set[IPAddress] = set()
        if resident.type == VM_TYPE:
            if not ctx.bound_here(resident, problems):
                continue
            if not ctx.up(resident):
                problems.append(waiting_for_up(resident))
                continue
        elif resident.type == "chassisredirect":
            if not ctx.bound_here(resident, problems):
                continue
            own = {iface.ip for _, iface in router_port_addrs(resident, problems)}
        else:
            problems.append(problem(row, f"nat_addresses entry resident on port {resident_name!r} "
                                     f"of type {resident.type!r}; not exposed", "debug"))
            continue
        tenant = router_nets.get(resident.datapath, ()) if resident.type == "chassisredirect" else ()
        for ip in ips:
            if ip in own:
                continue
            if any(ip.version == net.version and ip in net for net in tenant):
                # a rule, not a Problem: legal data (why.py words it for explain), and no
                # withdrawal is ever laid to it
                continue
            claim = _lb_claim(ip, lbs, network, resident, problems) if lbs.refs(ip) else \
                Claim(ipcache.host(ip), ExposureKind.FIP, bridge, resident.logical_port, resident.uuid,
                      vlan=vlan)
            if claim is not None:
                claims.append(claim)
    return claims


def _lb_claim(ip: IPAddress, lbs: LbIndex, network: tuple[str, int], resident: PortBindingRow,
              problems: list[Problem]) -> Claim | None:
    """VIP `ip` delivered by `resident`'s chassis: claimed for the first load balancer (by
    uuid) that lists a member for it; none: not exposed (OVN would reject the connection)."""
    ref = lbs.serving(ip)
    if ref is None:
        for r in lbs.refs(ip):
            problems.append(lb_problem(LoadBalancerRow(r.lb, r.name), f"VIP {ip} has no members; "
                                       "not exposed until one is added", "info", WAITING_MEMBERS))
        return None
    bridge, vlan = network
    return Claim(ipcache.host(ip), ExposureKind.LB_VIP, bridge, resident.logical_port, ref.lb, vlan=vlan)

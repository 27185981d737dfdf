"""Floating IPs: what a patch port's `nat_addresses` entries make the model claim.

One function, used by ModelCache for a row's contribution and by the named events (through
model/query.py) to name a change, so both read the entries by the same rules.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from ovnbgp.model import ipcache
from ovnbgp.model.claims import Claim, problem, waiting_for_up
from ovnbgp.model.parse import ParseError, parse_nat_address
from ovnbgp.model.records import ExposureKind, IPAddress, PortBindingRow, Problem
from ovnbgp.model.topology import VM_TYPE, Context, router_port_addrs

Lookup = Callable[[str], "PortBindingRow | None"]  # logical_port -> row


def fip_claims(row: PortBindingRow, entries: Iterable[str], network: tuple[str, int],
               by_name: Lookup, ctx: Context, problems: list[Problem]) -> list[Claim]:
    """The FIP claims of `entries` (nat_addresses of patch port `row` on a provider network
    mapped to `network`, (bridge, VLAN)): an entry counts when its is_chassis_resident() port is bound here
    (a VM port: also up; a cr-lrp: its own IPs are exposed as cr-lrp, not twice)."""
    claims: list[Claim] = []
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
        for ip in ips:
            if ip not in own:
                claims.append(Claim(ipcache.host(ip), ExposureKind.FIP, bridge, resident.logical_port,
                                     resident.uuid, vlan=vlan))
    return claims

"""Objects ovnbgp does not own that a removal of its own would take down through the kernel.

Deleting a device's last IPv4 address makes the kernel flush every IPv4 route through the
device, in every table, and every IPv4 neighbour on it (PERMANENT ones too); deleting a device
(the dummy, the VRF) flushes the routes through it and releases its enslaved devices. ovnbgp
must not destroy what is not its own through such side effects, so before those removals it
looks for foreign objects that depend on the device (kernel/diff.py and kernel/teardown.py
decide what to keep).

Foreign here: a unicast route whose protocol is neither ovnbgp's nor the kernel's (2: routes
the kernel makes for addresses come and go with them). A route with several next hops
(RTA_MULTIPATH, e.g. an operator's ECMP route) depends on each device one of its next hops
uses: the kernel marks that next hop dead with the device's last IPv4 address.
"""

from __future__ import annotations

from collections.abc import Iterable

from ovnbgp.kernel import messages as M
from ovnbgp.kernel.objects import KernelState
from ovnbgp.model.records import DesiredState, IPNetwork

RTPROT_KERNEL = 2


def routes_through(nl, links: dict, devs: Iterable[str], proto: int,
                   families: tuple[int, ...] = (4,),
                   derived: Iterable[IPNetwork] = ()) -> dict[str, tuple[str, ...]]:
    """dev -> the foreign unicast routes (any table) whose output device is `dev`. Routes to
    a prefix in `derived` are not foreign: FRR's copies of ovnbgp's own exposures (leaked
    from the VRF by `import vrf`, through the dummy) go when the exposure is withdrawn."""
    derived = set(derived)
    index = {links[d].index: d for d in devs if d in links}
    if not index:
        return {}
    names = {ln.index: name for name, ln in links.items()}
    fams = {M.AF[f] for f in families}

    def accept(b: bytes, o: int) -> bool:
        fam, _table, rproto, rtype = M.peek_route(b, o)
        return fam in fams and rtype == 1 and rproto not in (proto, RTPROT_KERNEL)

    out: dict[str, list[str]] = {}
    for paths in nl.dump(M.route_dump(), lambda b, o, n: M.parse_route_paths(b, o, n, names),
                         what="routes", accept=accept):
        for r in paths:
            dev = r.dev
            if dev is not None and dev in index.values() and r.dst not in derived:
                out.setdefault(dev, []).append(str(r))
    return {d: tuple(sorted(v)) for d, v in out.items()}


def bridge_ip_candidates(desired: DesiredState, observed: KernelState) -> set[str]:
    """Devices an IPv4 bridge IP ovnbgp added may be removed from by the plan for `desired`
    (held bridges excluded: the plan keeps theirs)."""
    bridges = {b.name: b for b in desired.bridges}
    out = set()
    for dev, created in observed.created_addrs.items():
        if dev not in observed.links or (desired.holds and dev not in bridges):
            continue
        wanted = set(bridges[dev].addresses) if dev in bridges else set()
        if any(a.version == 4 and a not in wanted for a in created):
            out.add(dev)
    return out


def vlan_candidates(desired: DesiredState, observed: KernelState) -> set[str]:
    """VLAN devices ovnbgp made that the plan for `desired` may delete."""
    wanted = {v.name for v in desired.vlans}
    return {d for d in observed.created_vlans - wanted if d in observed.links}


def refresh(nl, desired: DesiredState, observed: KernelState, proto: int) -> None:
    """Fill observed.dependents for the devices whose bridge IP may go (IPv4 routes) and the
    VLAN devices that may be deleted (both families): a dump of the routes, only then: it is
    rare, and the answer must be current."""
    devs = bridge_ip_candidates(desired, observed)
    vlans = vlan_candidates(desired, observed)
    out = routes_through(nl, observed.links, devs, proto) if devs else {}
    if vlans:
        out.update(routes_through(nl, observed.links, vlans, proto, families=(4, 6)))
    observed.dependents = out


def foreign_users(observed: KernelState, dev: str, proto: int) -> list[str]:
    """The objects not ovnbgp's that the kernel would flush with `dev`'s last IPv4 address:
    IPv4 routes through it (observed.dependents, any table) and PERMANENT IPv4 neighbours."""
    out = list(observed.dependents.get(dev, ()))
    for (ndev, ip), n in sorted(observed.neighbours.items(), key=lambda kv: int(kv[0][1])):
        if ndev == dev and ip.version == 4 and n.permanent and n.protocol != proto:
            out.append(f"neigh {ip} lladdr {n.mac} dev {dev}")
    return out

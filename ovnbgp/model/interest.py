"""Which Southbound Port_Binding rows the model can use at all: the watcher's monitor condition.

A node must pay for its own workload, not for the whole cloud, so the watcher asks the
Southbound only for the rows `wanted()` accepts (the OVSDB form is built by the watcher from the
same `Interest`). Like ovn-controller's local datapaths, the set grows from the rows bound to
this chassis along the patch ports, and is worked out from topology.py, cache.py and fips.py.
The clauses (OR'ed):

1. `type == localnet`: every provider network (one row per network, VLAN or flat). Topology
   maps them to bridges; a provider VM, a gateway's network and a FIP's network are read
   through them, and a tenant switch is one without a localnet port.
2. `chassis == this chassis`: provider VMs (exposed only when bound here), the cr-lrps bound
   here (the routers whose gateway is here) and the residents of floating IPs (a VM port or
   a cr-lrp, exposed only when bound here).
3. `datapath in` the router datapaths of interest: the routers with a cr-lrp bound here
   (Topology reads all their ports: the gateway ports, every cr-lrp of the router, the router
   interfaces) and the routers with an interface on the network of a VM bound here (the
   router of a distributed floating IP whose gateway is elsewhere). A few rows per router.
4. `logical_port in` the peers of the patch ports on those routers: the gateway port's switch
   side on the provider network, which carries the nat_addresses (FIPs, the cr-lrp's own
   entry) and the address scopes; the switch side of every router interface (Topology reads
   its datapath and scopes). By name, because the provider network's datapath holds every
   router's gateway port of the cloud. A row whose nat_addresses name a port bound here stays
   by its own name once it is mirrored: a floating IP depends on that row and its resident
   only, so bad data on a router port of the chain (type, peer) must not drop it. Peers are
   followed by `options:peer` whatever the row's type, for the same reason.
5. `datapath in` the tenant datapaths behind the routers of a cr-lrp bound here (the peer of a
   router interface on a switch without a localnet port): tenant VMs are exposed wherever
   they are bound, so all their rows.
6. `datapath in` the datapaths of the VM ports bound here that are not provider networks:
   their router interfaces' switch side (whose peers, clause 4 and 3, name the routers of a
   distributed FIP); also the rows `ovnbgp explain` names as "gateway elsewhere" for a local
   VM.

The chain of a distributed floating IP whose router's gateway is elsewhere: the VM bound here
(2) -> its network (6) -> the router interfaces' switch side on it -> their peers by name (4)
-> the router's datapath (3) -> its gateway port -> the peer by name (4), with nat_addresses.

Nothing else contributes to the desired state: a VM port counts only when bound here or on a
tenant network of a local gateway; a FIP only when its resident is bound here; a cr-lrp bound
elsewhere only through its router (3). A remote change outside these rows is never sent.

Assumed, as northd and Neutron build it: logical port names are unique (the SB indexes them);
a nat_addresses entry is on the provider-side peer of its own router's gateway port and names
that router's cr-lrp or a VM on a tenant network (no localnet) attached to that router. A FIP
whose resident VM is on a provider network attached to a router as an interface is not
followed (that would need the provider network's every row). Under that, the rows inside the
condition give the desired state of the whole table: `desired_state(conditioned(s)) ==
desired_state(s)` (tests/unit/test_model_interest.py), which is also why a row leaving the
condition (the condition narrowed) can be dropped without changing anything. Problems of rows
outside the condition are not reported (`ovnbgp explain` reads the whole table).

The interest is a function of the rows the watcher has, computed in one stratified pass from
the rows bound here (the anchors), so rows that are no longer reachable from an anchor cannot
keep each other in: the watcher's iteration (rows arrive, the condition widens, until nothing
changes) reaches the same set as `conditioned()` from any earlier mirror.

The Load_Balancer table is monitored whole (docs/load-balancers.md, "Monitoring": a row names
its datapaths only through a Logical_DP_Group reference, which a condition cannot follow);
`conditioned()` keeps every row of it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ovnbgp.model.parse import parse_nat_address
from ovnbgp.model.records import PortBindingRow, Snapshot
from ovnbgp.model.topology import INFRA_TYPES, VM_TYPE

ALWAYS_TYPES = frozenset({"localnet"})  # clause 1


@dataclass(frozen=True)
class Interest:
    """What the watcher asks for besides the localnet rows."""

    chassis: str  # this chassis' name (the system-id); "" when unknown: nothing is bound here
    datapaths: frozenset[str] = frozenset()  # clauses 3, 5, 6
    names: frozenset[str] = frozenset()  # clause 4: logical_port names


def interest(rows: Iterable[PortBindingRow], system_id: str) -> Interest:
    """The interest the rows at hand call for (any rows; those outside it are ignored).

    A link of the chains is followed by `options:peer` whatever the row's type, and a row whose
    nat_addresses name a port bound here stays wanted by its own name (clause 4): bad data on
    a row of the chain (a router port's type or peer garbled) must not take a floating IP's
    gateway port out of the mirror, since the model does not read the chain for it."""
    if not system_id:
        return Interest("")
    localnet: set[str] = set()
    by_name: dict[str, PortBindingRow] = {}
    linked_on: dict[str, list[PortBindingRow]] = {}  # datapath -> its rows with a peer
    with_nat: list[PortBindingRow] = []
    here: list[PortBindingRow] = []
    for r in sorted(rows, key=lambda r: r.uuid):
        if r.type == "localnet":
            localnet.add(r.datapath)
        by_name.setdefault(r.logical_port, r)
        if r.options.get("peer"):
            linked_on.setdefault(r.datapath, []).append(r)
        if r.nat_addresses:
            with_nat.append(r)
        if r.chassis == system_id:
            here.append(r)
    gateways = {r.datapath for r in here if r.type == "chassisredirect"}
    vm_nets = {r.datapath for r in here if r.type == VM_TYPE} - localnet  # clause 6
    names: set[str] = set()
    attached: set[str] = set()  # routers with an interface on a local VM's network
    for net in vm_nets:
        for p in linked_on.get(net, ()):
            peer_name = p.options["peer"]
            names.add(peer_name)
            peer = by_name.get(peer_name)
            if peer is not None:
                attached.add(peer.datapath)
    routers = gateways | attached  # clause 3
    tenant: set[str] = set()  # clause 5
    for router in routers:
        for p in linked_on.get(router, ()):
            peer_name = p.options["peer"]
            names.add(peer_name)
            peer = by_name.get(peer_name)
            if router in gateways and peer is not None and peer.datapath not in localnet:
                tenant.add(peer.datapath)
    local_names = {r.logical_port for r in here}
    names |= {r.logical_port for r in with_nat if residents(r) & local_names}
    return Interest(system_id, frozenset(routers | tenant | vm_nets), frozenset(names))


def shaping_context(infra: Iterable[PortBindingRow],
                    linking: Iterable[PortBindingRow]) -> tuple[frozenset[str], frozenset[str]]:
    """What inert_here() needs: the datapaths of the localnet rows among `infra`, and every
    logical_port name a row of `linking` (the rows with options:peer or nat_addresses) names
    as its peer or as a NAT resident. O(those rows), not O(all rows)."""
    localnet = frozenset(r.datapath for r in infra if r.type == "localnet")
    named: set[str] = set()
    for r in linking:
        peer = r.options.get("peer")
        if peer:
            named.add(peer)
        if r.nat_addresses:
            named |= residents(r)
    return localnet, frozenset(named)


def inert_here(row: PortBindingRow, system_id: str, localnet: frozenset[str],
               named: frozenset[str]) -> bool:
    """Whether interest() is the same with and without this row: a VM port bound here on a
    provider network (a datapath with a localnet row), with no peer and no nat_addresses of
    its own, whose name no row names as a peer or a NAT resident (shaping_context). Such a row
    only joins interest()'s anchors (`here`), and nothing follows from it: its network is not
    a tenant one (clause 6), it is no gateway (clause 3) and no chain leads through it (clause
    4). Most events on a big node are such rows, so the watcher does not work the interest out
    again (an O(rows) pass) for them."""
    return (bool(system_id) and row.chassis == system_id and row.type == VM_TYPE
            and not row.options.get("peer") and not row.nat_addresses
            and row.datapath in localnet and row.logical_port not in named)


def residents(row: PortBindingRow) -> set[str]:
    """The ports named by is_chassis_resident() in the row's nat_addresses (bad entries
    skipped: the model reports them)."""
    out = set()
    for entry in row.nat_addresses:
        try:
            _mac, _ips, resident = parse_nat_address(entry)
        except ValueError:
            continue
        if resident:
            out.add(resident)
    return out


def wanted(row: PortBindingRow, want: Interest) -> bool:
    """Whether the row is inside the monitor condition."""
    return (row.type in ALWAYS_TYPES or row.datapath in want.datapaths
            or row.logical_port in want.names
            or (bool(want.chassis) and row.chassis == want.chassis))


def shapes_interest(row: PortBindingRow | None, system_id: str) -> bool:
    """Whether a change of this row can change the interest (the watcher recomputes it then):
    an infrastructure row, a row with a peer or nat_addresses, or a row bound here."""
    return row is not None and (row.type in INFRA_TYPES or bool(row.options.get("peer"))
                                or bool(row.nat_addresses)
                                or (bool(system_id) and row.chassis == system_id))


def converge(snapshot: Snapshot, start: Iterable[str] = ()) -> tuple[Interest, frozenset[str]]:
    """What a conditioned watcher ends with: from the rows `start` (uuids it already has, e.g.
    from an earlier condition), ask, receive, recompute, until the interest stands. Returns
    the interest and the uuids inside it."""
    rows = snapshot.port_bindings
    system_id = snapshot.local.system_id
    want = interest((rows[u] for u in start if u in rows), system_id)
    for _ in range(len(rows) + 2):
        have = {u for u, r in rows.items() if wanted(r, want)}
        new = interest((rows[u] for u in have), system_id)
        if new == want:
            return want, frozenset(have)
        want = new
    raise AssertionError("the interest did not converge")  # pragma: no cover


def conditioned(snapshot: Snapshot) -> Snapshot:
    """The snapshot as a conditioned watcher sees it (the reference for the tests)."""
    _, have = converge(snapshot)
    rows = snapshot.port_bindings
    return Snapshot(local=snapshot.local, chassis_names=snapshot.chassis_names,
                    port_bindings={u: rows[u] for u in have},
                    load_balancers=snapshot.load_balancers)

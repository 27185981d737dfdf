"""Which Southbound Port_Binding rows the model can use at all: the watcher's monitor condition.

A node must pay for its own workload, not for the whole cloud, so the watcher asks the
Southbound only for the rows `wanted()` accepts (the OVSDB form is built by the watcher from the
same `Interest`). The set, worked out from topology.py and cache.py:

- every infrastructure row (type patch, localnet, chassisredirect): the provider networks, the
  routers, their interfaces and gateways, the cr-lrps of every router (failover moves them),
  the `nat_addresses` of the gateway patch ports (FIPs). One row per network or router port;
- every row bound to this chassis (`chassis` == the Chassis row named like the system-id):
  provider VMs, the resident VM of a DVR floating IP;
- every row on a tenant datapath behind a gateway bound here (`datapath` in
  `Interest.datapaths`): tenant VMs are exposed wherever they are bound.

Nothing else can contribute: a VM port counts only when bound here (provider network, FIP
resident) or on a tenant network of a local gateway; a FIP resident of any other type, an
l3gateway port, a virtual/external/localport port only ever yield a Problem. The tenant
datapaths are a superset of Topology.tenant_nets (no bridge or Chassis-table checks), so the
condition does not change when a bridge or a mapping does. `desired_state(conditioned(s))
== desired_state(s)` for every snapshot (tests/unit/test_model_interest.py), which is also why
a row leaving the condition (the condition narrowed) can be dropped without changing anything.
Logical port names are unique in the Southbound (an index), which this relies on.

The Load_Balancer table is monitored whole (docs/load-balancers.md, "Monitoring": a row names
its datapaths only through a Logical_DP_Group reference, which a condition cannot follow);
`conditioned()` keeps every row of it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ovnbgp.model.records import PortBindingRow, Snapshot
from ovnbgp.model.topology import INFRA_TYPES


@dataclass(frozen=True)
class Interest:
    """What the watcher asks for besides the infrastructure rows."""

    chassis: str  # this chassis' name (the system-id); "" when unknown: nothing is bound here
    datapaths: frozenset[str]  # tenant switch datapaths behind gateways bound here


def tenant_datapaths(infra: Iterable[PortBindingRow], system_id: str) -> frozenset[str]:
    """The switch datapaths without a localnet port that a router with a cr-lrp bound to
    `system_id` has an interface on (peer of one of the router's patch ports)."""
    if not system_id:
        return frozenset()
    rows = sorted(infra, key=lambda r: r.uuid)
    localnet = {r.datapath for r in rows if r.type == "localnet"}
    routers = {r.datapath for r in rows if r.type == "chassisredirect" and r.chassis == system_id}
    if not routers:
        return frozenset()
    patches: dict[str, PortBindingRow] = {}
    for r in rows:
        if r.type == "patch":
            patches.setdefault(r.logical_port, r)
    out = set()
    for r in patches.values():
        if r.datapath in routers:
            peer = patches.get(r.options.get("peer", ""))
            if peer is not None and peer.datapath not in localnet:
                out.add(peer.datapath)
    return frozenset(out)


def interest(infra: Iterable[PortBindingRow], system_id: str) -> Interest:
    return Interest(system_id, tenant_datapaths(infra, system_id))


def wanted(row: PortBindingRow, want: Interest) -> bool:
    """Whether the row is inside the monitor condition."""
    return (row.type in INFRA_TYPES or row.datapath in want.datapaths
            or (bool(want.chassis) and row.chassis == want.chassis))


def conditioned(snapshot: Snapshot) -> Snapshot:
    """The snapshot as a conditioned watcher sees it (the reference for the tests)."""
    rows = snapshot.port_bindings
    want = interest((r for r in rows.values() if r.type in INFRA_TYPES), snapshot.local.system_id)
    return Snapshot(local=snapshot.local, chassis_names=snapshot.chassis_names,
                    port_bindings={u: r for u, r in rows.items() if wanted(r, want)},
                    load_balancers=snapshot.load_balancers)

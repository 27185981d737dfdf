"""Read-only questions about one row, answered by the model's own Topology and Context.

The named events (ovnbgp/ovn/events.py) name a change by what the model makes of the row: the
watcher keeps one `ModelView` of its mirror (rebuilt when an infrastructure row, the local OVS
view or the Chassis names change: a few rows per network or router) and asks it. There is no
second set of rules: a tenant switch, a router interface whose subnets are exposed, a port bound
here and a floating IP are what Topology, Context and fip_claims() say, so an event's name
cannot disagree with what the model exposes from the same rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ovnbgp.config import Config
from ovnbgp.model.fips import Lookup, fip_claims
from ovnbgp.model.records import LocalOvs, PortBindingRow, Problem, Snapshot
from ovnbgp.model.topology import INFRA_TYPES, Context, Topology


class ModelView:
    """The model's topology of one point in time, with the questions the events ask."""

    def __init__(self, infra: Mapping[str, PortBindingRow], local: LocalOvs,
                 chassis_names: Iterable[str], cfg: Config):
        self.ctx = Context(local, frozenset(chassis_names), cfg)
        self.topology = Topology(infra, self.ctx)

    def with_chassis(self, chassis_names: Iterable[str]) -> ModelView:
        """This view with other Chassis names, without rebuilding the topology: only valid when
        no infrastructure row is bound to a chassis that came or went (Topology reads the names
        only through those rows: a cr-lrp bound here). A chassis elsewhere joining or leaving."""
        view = ModelView.__new__(ModelView)
        view.ctx = Context(self.ctx.local, frozenset(chassis_names), self.ctx.cfg)
        view.topology = self.topology
        return view

    @classmethod
    def of(cls, snapshot: Snapshot, cfg: Config) -> ModelView:
        infra = {u: r for u, r in snapshot.port_bindings.items() if r.type in INFRA_TYPES}
        return cls(infra, snapshot.local, snapshot.chassis_names, cfg)

    @property
    def system_id(self) -> str:
        return self.ctx.system_id

    def bound_here(self, row: PortBindingRow) -> bool:
        """Bound to this chassis, by the model's rule (a chassis the Chassis table knows)."""
        return self.ctx.bound_here(row, [])

    def is_tenant_switch(self, datapath: str) -> bool:
        """A network whose subnets are exposed through a router gateway bound here."""
        return datapath in self.topology.tenant_nets

    def exposes_subnets(self, row: PortBindingRow) -> bool:
        """A router interface whose subnets the model claims (its router's gateway is here)."""
        return row.uuid in self.topology.subnet_ports

    def fip_claims(self, row: PortBindingRow, entries: Iterable[str], by_name: Lookup) -> list:
        """The FIP claims the model makes for these nat_addresses entries of patch port `row`
        (the view has no Load_Balancer rows: a VIP there is named like a floating IP)."""
        network = self.topology.network_of(row.datapath)
        if row.type != "patch" or network is None:
            return []
        problems: list[Problem] = []
        return fip_claims(row, entries, network, by_name, self.ctx, problems,
                          router_nets=self.topology.router_nets)

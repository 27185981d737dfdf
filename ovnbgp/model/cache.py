"""ModelCache: the desired state kept current from row changes; desired_state(), the reference.

See the package docstring (ovnbgp/model/__init__.py) for the API and the incremental keys.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ovnbgp.config import Config
from ovnbgp.model import ipcache
from ovnbgp.model.aggregate import Aggregate
from ovnbgp.model.claims import (
    EMPTY,
    WAITING_UP,
    Claim,
    Contribution,
    TenantNet,
    clip,
    contribution,
    problem,
    waiting_for_up,
)
from ovnbgp.model.fips import fip_claims
from ovnbgp.model.lb import LB_PORT_PREFIX, LbIndex
from ovnbgp.model.parse import nat_residents
from ovnbgp.model.records import (
    DesiredState,
    Exposure,
    ExposureKind,
    IPNetwork,
    LoadBalancerRow,
    LocalOvs,
    PortBindingRow,
    Problem,
    Snapshot,
)
from ovnbgp.model.topology import INFRA_TYPES, VM_TYPE, Context, Topology, port_ips

LOG = logging.getLogger("ovnbgp.model")

BRIDGES_KEY = ("bridges",)
TOPOLOGY_KEY = ("topology",)
LB_KEY = ("load-balancers",)


@dataclass(frozen=True)
class Changes:
    """What changed since the cache's last view. Rows not listed are unchanged."""

    port_bindings: Mapping[str, PortBindingRow | None] = field(default_factory=dict)
    local: LocalOvs | None = None  # None: unchanged
    chassis_names: frozenset[str] | None = None  # None: unchanged
    load_balancers: Mapping[str, LoadBalancerRow | None] = field(default_factory=dict)


def desired_state(snapshot: Snapshot, cfg: Config, established: Iterable[Exposure] = ()) -> DesiredState:
    """Everything this chassis must expose and steer, computed from scratch (no I/O).

    `established`: the exposures of the previous state, the only history the model keeps
    (which row owns a prefix several rows claim, model/aggregate.py). With the cache's
    previous state it gives what the cache's update() gives."""
    return ModelCache(snapshot, cfg, log_problems=False, established=established).state



def _structure(row: PortBindingRow | None) -> tuple | None:
    """The part of a row the topology depends on (None for VM ports and absent rows)."""
    if row is None or row.type not in INFRA_TYPES:
        return None
    return (row.type, row.datapath, row.logical_port, row.mac,
            tuple(sorted(row.options.items())),
            row.chassis if row.type == "chassisredirect" else None,
            tuple(sorted(row.external_ids.items())),  # address scopes (model/policy.py)
            repr(row.tag))  # a localnet port's VLAN (repr: any value a bad row may carry)


class ModelCache:
    """The desired state, kept up to date from row changes (see the module docstring)."""

    def __init__(self, snapshot: Snapshot, cfg: Config, *, log_problems: bool = True,
                 established: Iterable[Exposure] = (),
                 owners: Mapping[IPNetwork, tuple[str, str]] | None = None):
        """`established`: exposures already in place (e.g. the state of the cache this one
        replaces): their rows keep a prefix another row also claims. `owners`: prefix -> (row,
        port) of contested prefixes' owners from before a restart (contested_owners())."""
        self.cfg = cfg
        self._log_problems = log_problems
        self._build(snapshot, established=established, owners=owners)

    # -- public --------------------------------------------------------------------------

    @property
    def state(self) -> DesiredState:
        return self._agg.state()

    def contested_owners(self) -> dict[IPNetwork, tuple[str, str]]:
        """prefix -> (Port_Binding uuid, port) of the row that keeps each prefix several rows
        claim: what an agent restart must remember (ModelCache(owners=...))."""
        return self._agg.contested_owners()

    def claimants(self, prefix: IPNetwork) -> frozenset[str]:
        """The Port_Binding uuids claiming `prefix`, exposed or refused (read-only)."""
        return frozenset(c.row for c in self._agg.claims.get(prefix, ()))

    def snapshot(self) -> Snapshot:
        return Snapshot(local=self._ctx.local, port_bindings=dict(self._rows),
                        chassis_names=self._ctx.chassis_names, load_balancers=dict(self._lbs))

    def rebuild(self, snapshot: Snapshot) -> DesiredState:
        """Recompute everything from a fresh snapshot (problems already logged stay quiet)."""
        old = self._agg.problems
        before = self.state
        self._build(snapshot, already_logged=old, established=before.exposures, before=before)
        return self.state

    def resync(self, snapshot: Snapshot) -> DesiredState:
        """Catch up with a fresh snapshot (the periodic resync): the rows that differ from
        the cache's (missed events) are applied as changes, the rest keeps its records, so
        what did not change stays the same objects downstream. Gives what rebuild() gives
        (incremental == full, tests/unit/test_model_incremental.py)."""
        rows: dict[str, PortBindingRow | None] = {}
        mine = self._rows
        for uuid, row in snapshot.port_bindings.items():
            old = mine.get(uuid)
            if old is not row and old != row:
                rows[uuid] = row
        for uuid in mine.keys() - snapshot.port_bindings.keys():
            rows[uuid] = None
        lbs: dict[str, LoadBalancerRow | None] = {
            u: lb for u, lb in snapshot.load_balancers.items() if self._lbs.get(u) != lb}
        lbs.update({u: None for u in self._lbs.keys() - snapshot.load_balancers.keys()})
        return self.update(Changes(port_bindings=rows, local=snapshot.local,
                                   chassis_names=frozenset(snapshot.chassis_names), load_balancers=lbs))

    def update(self, changes: Changes) -> DesiredState:
        """Apply row changes and return the new desired state."""
        ctx = self._ctx
        local = changes.local if changes.local is not None else ctx.local
        names = changes.chassis_names if changes.chassis_names is not None else ctx.chassis_names
        if local != ctx.local:
            rows = dict(self._rows)
            for uuid, row in changes.port_bindings.items():
                if row is None:
                    rows.pop(uuid, None)
                else:
                    rows[uuid] = row
            lbs = dict(self._lbs)
            for uuid, lb in changes.load_balancers.items():
                if lb is None:
                    lbs.pop(uuid, None)
                else:
                    lbs[uuid] = lb
            return self.rebuild(Snapshot(local=local, port_bindings=rows, chassis_names=names,
                                         load_balancers=lbs))

        before = self.state
        changed: dict[str, tuple[PortBindingRow | None, PortBindingRow | None]] = {}
        for uuid, new in changes.port_bindings.items():
            old = self._rows.get(uuid)
            if old == new:
                continue
            changed[uuid] = (old, new)
            self._unindex(uuid, old)
            self._index(uuid, new)
        # A chassis joining or leaving matters only to the rows bound to that name (a chassis
        # elsewhere: usually none): they are re-evaluated, nothing else is rebuilt.
        rechecked: set[str] = set()
        if names != ctx.chassis_names:
            for name in names ^ ctx.chassis_names:
                rechecked |= self._by_chassis.get(name, set())
            ctx.chassis_names = names
        lbs_changed = self._update_lbs(changes.load_balancers)
        if not changed and not rechecked and not lbs_changed:
            return self.state

        dirty: set[str] = set(changed) | rechecked
        if lbs_changed:
            dirty |= self._nat_rows()
        if any(_structure(o) != _structure(n) for o, n in changed.values()) or \
                any(self._rows[u].type == "chassisredirect" for u in rechecked):
            dirty |= self._retopologize()
        touched = [r for pair in changed.values() for r in pair] + [self._rows[u] for u in rechecked]
        for row in touched:
            if row is not None:
                dirty |= self._nat_refs.get(row.logical_port, set())
        for uuid in dirty:
            self._agg.set(("pb", uuid), self._pb_contribution(self._rows.get(uuid)))
        self._agg.settle()
        self._warn_withdrawals(before, changed.keys() | {
            u for u, lb in changes.load_balancers.items() if lb is not None or u in lbs_changed})
        self._flush_problems()
        return self.state

    # -- building --------------------------------------------------------------------------

    def _build(self, snapshot: Snapshot, already_logged: Iterable[Problem] = (),
               established: Iterable[Exposure] = (), before: DesiredState | None = None,
               owners: Mapping[IPNetwork, tuple[str, str]] | None = None) -> None:
        self._ctx = Context(snapshot.local, frozenset(snapshot.chassis_names), self.cfg)
        self._rows: dict[str, PortBindingRow] = {}
        self._names: dict[str, set[str]] = {}
        self._infra: dict[str, PortBindingRow] = {}
        self._vms_by_dp: dict[str, set[str]] = {}
        self._nat_by_dp: dict[str, set[str]] = {}
        self._nat_refs: dict[str, set[str]] = {}
        self._nat_names: dict[str, frozenset[str]] = {}
        self._by_chassis: dict[str, set[str]] = {}
        self._lbs: dict[str, LoadBalancerRow] = dict(snapshot.load_balancers)
        self._lb_index = LbIndex(self._lbs)
        for uuid, row in snapshot.port_bindings.items():
            self._index(uuid, row)
        self._agg = Aggregate(self._ctx, established, owners)
        self._topo = Topology(self._infra, self._ctx)
        self._agg.set(BRIDGES_KEY, self._ctx.bridges.contribution)
        self._agg.set(TOPOLOGY_KEY, self._topo.contribution)
        self._agg.set(LB_KEY, contribution([], [], self._lb_index.problems))
        for router, contrib in self._topo.routers.items():
            self._agg.set(("router", router), contrib)
        for uuid, row in self._rows.items():
            self._agg.set(("pb", uuid), self._pb_contribution(row))
        self._agg.settle()
        self._agg.forget_unclaimed_owners()
        self._agg.handovers.clear()  # a rebuild keeps the owners it was given: no hand-over
        logged = set(already_logged)
        self._agg.new_problems = [p for p in self._agg.new_problems if p not in logged]
        if before is not None:
            self._warn_withdrawals(before, None)
        self._flush_problems()

    def _index(self, uuid: str, row: PortBindingRow | None) -> None:
        if row is None:
            return
        self._rows[uuid] = row
        self._names.setdefault(row.logical_port, set()).add(uuid)
        if row.chassis is not None:
            self._by_chassis.setdefault(row.chassis, set()).add(uuid)
        if row.type == VM_TYPE:
            self._vms_by_dp.setdefault(row.datapath, set()).add(uuid)
        elif row.type in INFRA_TYPES:
            self._infra[uuid] = row
        if row.nat_addresses:
            self._nat_by_dp.setdefault(row.datapath, set()).add(uuid)
            names = nat_residents(row.nat_addresses)
            self._nat_names[uuid] = names
            for name in names:
                self._nat_refs.setdefault(name, set()).add(uuid)

    def _unindex(self, uuid: str, row: PortBindingRow | None) -> None:
        if row is None:
            return
        del self._rows[uuid]
        _discard(self._names, row.logical_port, uuid)
        if row.chassis is not None:
            _discard(self._by_chassis, row.chassis, uuid)
        _discard(self._vms_by_dp, row.datapath, uuid)
        _discard(self._nat_by_dp, row.datapath, uuid)
        self._infra.pop(uuid, None)
        for name in self._nat_names.pop(uuid, ()):
            _discard(self._nat_refs, name, uuid)

    def _retopologize(self) -> set[str]:
        """Rebuild the topology; update router keys; return the row keys whose inputs changed."""
        old, new = self._topo, Topology(self._infra, self._ctx)
        self._topo = new
        self._agg.set(TOPOLOGY_KEY, new.contribution)
        for router in old.routers.keys() | new.routers.keys():
            self._agg.set(("router", router), new.routers.get(router, EMPTY))
        dirty: set[str] = set()
        for dp in old.dp_sig.keys() | new.dp_sig.keys():
            if old.dp_sig.get(dp) != new.dp_sig.get(dp):
                dirty |= self._vms_by_dp.get(dp, set())
        for dp in old.provider.keys() | new.provider.keys():
            if old.network_of(dp) != new.network_of(dp):
                dirty |= self._nat_by_dp.get(dp, set())
        if old.router_nets != new.router_nets:
            dirty |= self._nat_rows()
        return dirty

    def _nat_rows(self) -> set[str]:
        """Every row with nat_addresses (one gateway patch port per router, a few per node)."""
        return set().union(*self._nat_by_dp.values()) if self._nat_by_dp else set()

    def _update_lbs(self, changes: Mapping[str, LoadBalancerRow | None]) -> set[str]:
        """Apply Load_Balancer changes; re-index when any; return the uuids that changed."""
        changed = {u for u, lb in changes.items() if self._lbs.get(u) != lb}
        if not changed:
            return changed
        for uuid in changed:
            lb = changes[uuid]
            if lb is None:
                del self._lbs[uuid]
            else:
                self._lbs[uuid] = lb
        self._lb_index = LbIndex(self._lbs)
        self._agg.set(LB_KEY, contribution([], [], self._lb_index.problems))
        return changed

    def _warn_withdrawals(self, before: DesiredState, changed: Iterable[str] | None) -> None:
        """Exposures gone in the change that made data unusable: one warning per row at
        fault, with why and what went (the problem itself may be a debug-level one, e.g. a
        cr-lrp whose distributed-port names no port). A withdrawal is laid to the problems of
        its own row, else to those of the rows this change touched (None: a rebuild, any)."""
        new = [p for p in self._agg.new_problems if not p.waiting]
        if not self._log_problems or not new:
            return
        state = self.state
        gone = before.exposures - state.exposures
        if not gone:
            return
        now = state.dummy_prefixes()
        reasons: dict[tuple[str, str], list[str]] = {}
        for p in new:
            reasons.setdefault((p.row, p.port), []).append(p.reason)
        by_row = {key[0]: key for key in reasons}
        touched = sorted(k for k in reasons if changed is None or k[0] in changed)
        withdrawn: dict[tuple[str, str], list[str]] = {}
        # not sorted(gone): Exposure orders by prefix, and v4 with v6 prefixes do not compare
        for e in sorted(gone, key=lambda e: (e.prefix.version, e.prefix, e.kind.value, e.port)):
            if e.prefix in now:
                continue  # handed over or changed, not withdrawn
            key = by_row.get(e.row) or (touched[0] if touched else None)
            if key is not None:
                withdrawn.setdefault(key, []).append(str(e.prefix))
        # the warning says the row and why: its problems are not logged a second time
        self._agg.new_problems = [p for p in self._agg.new_problems if (p.row, p.port) not in withdrawn]
        for (row, port), prefixes in withdrawn.items():
            more = f" (+{len(prefixes) - 5} more)" if len(prefixes) > 5 else ""
            where = f"Load_Balancer {row}" if port.startswith(LB_PORT_PREFIX) else \
                f"port {port or '-'} (Port_Binding {row or '- (local OVS DB)'})"
            LOG.warning("withdrawn %s%s: unusable data in %s: %s", ", ".join(prefixes[:5]), more,
                        where, clip("; ".join(reasons[row, port])))

    def _flush_problems(self) -> None:
        if self._log_problems:
            for prefix, (old_row, old_port), (row, port) in self._agg.handovers:
                LOG.warning("%s handed over from port %s (Port_Binding %s), whose claim is gone, "
                            "to port %s (Port_Binding %s)", prefix, old_port, old_row, port, row)
            for p in self._agg.new_problems:
                if p.waiting == WAITING_UP:
                    LOG.info("port %s (Port_Binding %s) bound here, waiting for up=true", p.port, p.row)
                    continue
                if p.port.startswith(LB_PORT_PREFIX):  # a Load_Balancer row (model/lb.py)
                    LOG.log(logging.getLevelName(p.level.upper()), "%s (Load_Balancer %s)",
                            p.reason, p.row)
                    continue
                LOG.log(logging.getLevelName(p.level.upper()), "skipped: %s (port %s, Port_Binding %s)",
                        p.reason, p.port or "-", p.row or "-")
        self._agg.new_problems = []
        self._agg.handovers = []

    # -- per-row contributions -------------------------------------------------------------

    def _by_name(self, name: str) -> PortBindingRow | None:
        uuids = self._names.get(name)
        return self._rows[min(uuids)] if uuids else None

    def _pb_contribution(self, row: PortBindingRow | None) -> Contribution:
        if row is None:
            return EMPTY
        if row.type == VM_TYPE:
            return self._vm_contribution(row)
        if row.nat_addresses and row.type == "patch":
            return self._fip_contribution(row)
        return EMPTY

    def _vm_contribution(self, row: PortBindingRow) -> Contribution:
        sig = self._topo.dp_sig.get(row.datapath)
        if sig is None:
            return EMPTY
        ctx = self._ctx
        claims: list[Claim] = []
        problems: list[Problem] = []
        if not ctx.up(row) and ctx.bound_here(row, []):
            problems.append(waiting_for_up(row))
        if sig[0] == "provider":
            if ctx.bound_here(row, problems) and ctx.up(row):
                _, bridge, vlan = sig
                for ip in port_ips(row, problems):
                    claims.append(Claim(ipcache.host(ip), ExposureKind.PROVIDER_VM, bridge,
                                         row.logical_port, row.uuid, vlan=vlan))
        elif ctx.bound_somewhere(row, problems) and ctx.up(row):
            nets: tuple[TenantNet, ...] = sig[1]
            for ip in port_ips(row, problems):
                for net in nets:
                    if net.network.version == ip.version and ip in net.network:
                        claims.append(Claim(ipcache.host(ip), ExposureKind.TENANT_VM, net.bridge,
                                             row.logical_port, row.uuid, vlan=net.vlan))
                        break
                else:
                    problems.append(problem(row, f"{ip} is not inside a tenant subnet exposed "
                                             "through a gateway here", "debug"))
        return contribution(claims, [], problems)

    def _fip_contribution(self, row: PortBindingRow) -> Contribution:
        network = self._topo.network_of(row.datapath)
        if network is None:
            return EMPTY
        problems: list[Problem] = []
        claims = fip_claims(row, row.nat_addresses, network, self._by_name, self._ctx, problems,
                            self._lb_index, self._topo.router_nets)
        return contribution(claims, [], problems)


def _discard(index: dict[str, set[str]], key: str, uuid: str) -> None:
    s = index.get(key)
    if s is not None:
        s.discard(uuid)
        if not s:
            del index[key]

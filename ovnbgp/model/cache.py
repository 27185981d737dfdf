"""ModelCache: the desired state kept current from row changes; desired_state(), the reference.

See the package docstring (ovnbgp/model/__init__.py) for the API and the incremental keys.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from ovnbgp.config import Config
from ovnbgp.model import ipcache
from ovnbgp.model.aggregate import Aggregate
from ovnbgp.model.claims import EMPTY, Claim, Contribution, TenantNet, contribution, problem
from ovnbgp.model.parse import ParseError, nat_residents, parse_nat_address
from ovnbgp.model.records import DesiredState, ExposureKind, IPAddress, LocalOvs, PortBindingRow, Problem, Snapshot
from ovnbgp.model.topology import INFRA_TYPES, VM_TYPE, Context, Topology, port_ips, router_port_addrs

LOG = logging.getLogger("ovnbgp.model")

BRIDGES_KEY = ("bridges",)
TOPOLOGY_KEY = ("topology",)


@dataclass(frozen=True)
class Changes:
    """What changed since the cache's last view. Rows not listed are unchanged."""

    port_bindings: Mapping[str, PortBindingRow | None] = field(default_factory=dict)
    local: LocalOvs | None = None  # None: unchanged
    chassis_names: frozenset[str] | None = None  # None: unchanged


def desired_state(snapshot: Snapshot, cfg: Config) -> DesiredState:
    """Everything this chassis must expose and steer, computed from scratch (no I/O)."""
    return ModelCache(snapshot, cfg, log_problems=False).state



def _structure(row: PortBindingRow | None) -> tuple | None:
    """The part of a row the topology depends on (None for VM ports and absent rows)."""
    if row is None or row.type not in INFRA_TYPES:
        return None
    return (row.type, row.datapath, row.logical_port, row.mac,
            tuple(sorted(row.options.items())),
            row.chassis if row.type == "chassisredirect" else None)


class ModelCache:
    """The desired state, kept up to date from row changes (see the module docstring)."""

    def __init__(self, snapshot: Snapshot, cfg: Config, *, log_problems: bool = True):
        self.cfg = cfg
        self._log_problems = log_problems
        self._build(snapshot)

    # -- public --------------------------------------------------------------------------

    @property
    def state(self) -> DesiredState:
        return self._agg.state()

    def snapshot(self) -> Snapshot:
        return Snapshot(local=self._ctx.local, port_bindings=dict(self._rows),
                        chassis_names=self._ctx.chassis_names)

    def rebuild(self, snapshot: Snapshot) -> DesiredState:
        """Recompute everything from a fresh snapshot (problems already logged stay quiet)."""
        old = self._agg.problems
        self._build(snapshot, already_logged=old)
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
        return self.update(Changes(port_bindings=rows, local=snapshot.local,
                                   chassis_names=frozenset(snapshot.chassis_names)))

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
            return self.rebuild(Snapshot(local=local, port_bindings=rows, chassis_names=names))

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
        if not changed and not rechecked:
            return self.state

        dirty: set[str] = set(changed) | rechecked
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
        self._flush_problems()
        return self.state

    # -- building --------------------------------------------------------------------------

    def _build(self, snapshot: Snapshot, already_logged: Iterable[Problem] = ()) -> None:
        self._ctx = Context(snapshot.local, frozenset(snapshot.chassis_names), self.cfg)
        self._rows: dict[str, PortBindingRow] = {}
        self._names: dict[str, set[str]] = {}
        self._infra: dict[str, PortBindingRow] = {}
        self._vms_by_dp: dict[str, set[str]] = {}
        self._nat_by_dp: dict[str, set[str]] = {}
        self._nat_refs: dict[str, set[str]] = {}
        self._nat_names: dict[str, frozenset[str]] = {}
        self._by_chassis: dict[str, set[str]] = {}
        for uuid, row in snapshot.port_bindings.items():
            self._index(uuid, row)
        self._agg = Aggregate(self._ctx)
        self._topo = Topology(self._infra, self._ctx)
        self._agg.set(BRIDGES_KEY, self._ctx.bridges.contribution)
        self._agg.set(TOPOLOGY_KEY, self._topo.contribution)
        for router, contrib in self._topo.routers.items():
            self._agg.set(("router", router), contrib)
        for uuid, row in self._rows.items():
            self._agg.set(("pb", uuid), self._pb_contribution(row))
        self._agg.settle()
        logged = set(already_logged)
        self._agg.new_problems = [p for p in self._agg.new_problems if p not in logged]
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
            if old.provider.get(dp) != new.provider.get(dp):
                dirty |= self._nat_by_dp.get(dp, set())
        return dirty

    def _flush_problems(self) -> None:
        if self._log_problems:
            for p in self._agg.new_problems:
                LOG.log(logging.getLevelName(p.level.upper()), "skipped: %s (port %s, Port_Binding %s)",
                        p.reason, p.port or "-", p.row or "-")
        self._agg.new_problems = []

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
        if sig[0] == "provider":
            if ctx.bound_here(row, problems) and ctx.up(row):
                bridge = sig[1]
                for ip in port_ips(row, problems):
                    claims.append(Claim(ipcache.host(ip), ExposureKind.PROVIDER_VM, bridge,
                                         row.logical_port, row.uuid))
        elif ctx.bound_somewhere(row, problems) and ctx.up(row):
            nets: tuple[TenantNet, ...] = sig[1]
            for ip in port_ips(row, problems):
                for net in nets:
                    if net.network.version == ip.version and ip in net.network:
                        claims.append(Claim(ipcache.host(ip), ExposureKind.TENANT_VM, net.bridge,
                                             row.logical_port, row.uuid))
                        break
                else:
                    problems.append(problem(row, f"{ip} is not inside a tenant subnet exposed "
                                             "through a gateway here", "debug"))
        return contribution(claims, [], problems)

    def _fip_contribution(self, row: PortBindingRow) -> Contribution:
        bridge = self._topo.provider.get(row.datapath)
        if bridge is None:
            return EMPTY
        ctx = self._ctx
        claims: list[Claim] = []
        problems: list[Problem] = []
        for entry in row.nat_addresses:
            try:
                _, ips, resident_name = parse_nat_address(entry)
            except ParseError as e:
                problems.append(problem(row, f"nat_addresses: {e.reason}", e.level))
                continue
            if resident_name is None:
                problems.append(problem(row, f"nat_addresses entry {entry!r} has no "
                                         "is_chassis_resident(); not exposed", "debug"))
                continue
            resident = self._by_name(resident_name)
            if resident is None:
                problems.append(problem(row, f"nat_addresses entry names port {resident_name!r} "
                                         "which does not exist; not exposed", "debug"))
                continue
            own: set[IPAddress] = set()
            if resident.type == VM_TYPE:
                if not (ctx.bound_here(resident, problems) and ctx.up(resident)):
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
                                         resident.uuid))
        return contribution(claims, [], problems)


def _discard(index: dict[str, set[str]], key: str, uuid: str) -> None:
    s = index.get(key)
    if s is not None:
        s.discard(uuid)
        if not s:
            del index[key]

"""The named Port_Binding events of the reference design, as ovsdbapp row events.

They exist for operators and metrics: each one logs one line (event name, port, IPs) and marks
the Port_Binding's uuid dirty through the watcher's `on_dirty(keys, event_name)` callback. None
of them decides or changes anything: the model (the model, ovnbgp/model/) recomputes what the dirty rows
imply and the reconcile loop applies it. The watcher (agent/ovn.py) also marks every changed
row dirty under the cause "Port_Binding", so correctness never depends on an event matching.

Events are dispatched by an ovsdbapp `RowEventHandler`: `matches()` runs in the IDL thread
while the batch's state is consistent, `run()` later in the handler's thread. `row` and `old`
are frozen `PortBindingRow` values (not live IDL rows, which may change under a reader):
`row` is the row after the change (for a delete: its last value), `old` the full row before it
(None for a create or a delete). "Local" questions are answered from `EventContext.post` (the
state after the batch) for created/set/attached events and `EventContext.pre` (before it) for
deleted/unset/detached ones, so a delete still sees the cr-lrp that made it matter.

Dirty keys: Port_Binding uuids (str). The watcher adds `LOCAL_OVS_KEY` (the local OVS view
changed) and `CHASSIS_KEY` (the Chassis names changed); see OvnWatcher.changes().
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass

from ovsdbapp import event as ovsdb_event

from ovnbgp.model.parse import ParseError, parse_nat_address, parse_port_addresses, parse_router_port_addresses
from ovnbgp.model.records import PortBindingRow

LOG = logging.getLogger(__name__)

LOCAL_OVS_KEY = "ovs:local"
CHASSIS_KEY = "sb:chassis"
CREATE = ovsdb_event.RowEvent.ROW_CREATE
UPDATE = ovsdb_event.RowEvent.ROW_UPDATE
DELETE = ovsdb_event.RowEvent.ROW_DELETE

OnDirty = Callable[[set[Hashable], str], None]


class View:
    """What the events need to know about the topology at one point in time.

    Built from the localnet/patch/chassisredirect rows only (a few per network or router), so
    rebuilding it when one of them changes is cheap even with 10k VM ports.
    """

    def __init__(self, infra: Iterable[PortBindingRow], system_id: str):
        infra = list(infra)
        self.system_id = system_id
        self.provider_dps = {r.datapath for r in infra if r.type == "localnet"}
        self.local_routers = {r.datapath for r in infra
                              if r.type == "chassisredirect" and system_id and r.chassis == system_id}
        self.gateway_ports = {r.options.get("distributed-port") for r in infra if r.type == "chassisredirect"}
        by_name = {r.logical_port: r for r in infra}
        # tenant switch datapath -> routers with a local gateway it is attached to
        self.tenant_switches: dict[str, set[str]] = {}
        for r in infra:
            if r.type != "patch" or r.datapath not in self.local_routers or self.is_gateway_port(r):
                continue
            peer = by_name.get(r.options.get("peer", ""))
            if peer is not None and peer.datapath not in self.provider_dps:
                self.tenant_switches.setdefault(peer.datapath, set()).add(r.datapath)

    def is_gateway_port(self, row: PortBindingRow) -> bool:
        return row.logical_port in self.gateway_ports or "chassis-redirect-port" in row.options

    def is_router_interface_here(self, row: PortBindingRow) -> bool:
        """A router interface (LRP patch port) of a router whose cr-lrp is bound here."""
        return (row.type == "patch" and row.datapath in self.local_routers
                and not self.is_gateway_port(row))


@dataclass
class EventContext:
    """Set by the watcher before each batch is matched (IDL thread)."""

    pre: View
    post: View
    pre_row: Callable[[str], PortBindingRow | None]  # logical_port -> row before the batch
    post_row: Callable[[str], PortBindingRow | None]  # logical_port -> row after the batch

    @property
    def system_id(self) -> str:
        return self.post.system_id


def _port_ips(row: PortBindingRow) -> list[str]:
    out: list[str] = []
    for entry in row.mac:
        try:
            if row.type in ("", "virtual"):
                out += [str(ip) for ip in parse_port_addresses(entry)[1]]
            else:
                out += [str(i) for i in parse_router_port_addresses(entry)[1]]
        except ParseError:
            continue
    return out


def _local_nat_ips(entries: Iterable[str], lookup: Callable[[str], PortBindingRow | None],
                   system_id: str) -> list[str]:
    """IPs of nat_addresses entries whose is_chassis_resident() port is bound here."""
    out: list[str] = []
    for entry in entries:
        try:
            _, ips, resident = parse_nat_address(entry)
        except ParseError:
            continue
        port = lookup(resident) if resident else None
        if port is not None and system_id and port.chassis == system_id:
            out += [str(ip) for ip in ips]
    return out


class NamedEvent(ovsdb_event.RowEvent):
    """Base: a Port_Binding event that logs one line and marks the row dirty."""

    EVENTS: tuple[str, ...] = ()

    def __init__(self, context: Callable[[], EventContext], on_dirty: OnDirty):
        super().__init__(self.EVENTS, "Port_Binding", None)
        self._context = context
        self._on_dirty = on_dirty
        self._ips: dict[tuple[str, str], list[str]] = {}

    def matches(self, event: str, row: PortBindingRow, old: PortBindingRow | None = None) -> bool:
        if event not in self.events:
            return False
        ips = self.match_ips(event, row, old, self._context())
        if ips is None:
            return False
        self._ips[(event, row.uuid)] = ips
        return True

    def match_ips(self, event: str, row: PortBindingRow, old: PortBindingRow | None,
                  ctx: EventContext) -> list[str] | None:
        """None when the event does not match; else the IPs to log."""
        raise NotImplementedError

    def run(self, event: str, row: PortBindingRow, old: PortBindingRow | None) -> None:
        ips = self._ips.pop((event, row.uuid), None) or []
        LOG.info("%s port=%s ips=%s", self.event_name, row.logical_port, ",".join(ips) or "-",
                 extra={"fields": {"event": self.event_name, "port": row.logical_port,
                                   "ips": ips, "row": row.uuid}})
        self._on_dirty({row.uuid}, self.event_name)


_BOUND_TYPES = ("", "chassisredirect")


class PortBindingChassisCreatedEvent(NamedEvent):
    """A VM port or a cr-lrp became bound to this chassis."""

    EVENTS = (CREATE, UPDATE)

    def match_ips(self, event, row, old, ctx):
        here = ctx.system_id
        if row.type not in _BOUND_TYPES or not here or row.chassis != here:
            return None
        if old is not None and old.chassis == here and old.type == row.type:
            return None
        return _port_ips(row)


class PortBindingChassisDeletedEvent(NamedEvent):
    """A VM port or a cr-lrp bound to this chassis was unbound from it (or deleted)."""

    EVENTS = (UPDATE, DELETE)

    def match_ips(self, event, row, old, ctx):
        here = ctx.pre.system_id
        if not here:
            return None
        if event == DELETE:
            return _port_ips(row) if row.type in _BOUND_TYPES and row.chassis == here else None
        if old is None or old.type not in _BOUND_TYPES or old.chassis != here:
            return None
        if row.chassis == here and row.type == old.type:
            return None
        return _port_ips(old)


class FIPSetEvent(NamedEvent):
    """A patch port's nat_addresses gained an entry resident on a port bound here."""

    EVENTS = (CREATE, UPDATE)

    def match_ips(self, event, row, old, ctx):
        if row.type != "patch" or not row.nat_addresses:
            return None
        before = set(old.nat_addresses) if old is not None else set()
        added = [e for e in row.nat_addresses if e not in before]
        ips = _local_nat_ips(added, ctx.post_row, ctx.system_id)
        return ips or None


class FIPUnsetEvent(NamedEvent):
    """A patch port's nat_addresses lost an entry resident on a port bound here."""

    EVENTS = (UPDATE, DELETE)

    def match_ips(self, event, row, old, ctx):
        if event == DELETE:
            removed, kind = list(row.nat_addresses), row.type
        else:
            if old is None:
                return None
            after = set(row.nat_addresses)
            removed, kind = [e for e in old.nat_addresses if e not in after], old.type
        if kind != "patch" or not removed:
            return None
        ips = _local_nat_ips(removed, ctx.pre_row, ctx.pre.system_id)
        return ips or None


class SubnetRouterAttachedEvent(NamedEvent):
    """A router interface was created on a router whose cr-lrp is bound here."""

    EVENTS = (CREATE,)

    def match_ips(self, event, row, old, ctx):
        if not ctx.post.is_router_interface_here(row):
            return None
        return _port_ips(row)


class SubnetRouterDetachedEvent(NamedEvent):
    """A router interface was deleted from a router whose cr-lrp is bound here."""

    EVENTS = (DELETE,)

    def match_ips(self, event, row, old, ctx):
        if not ctx.pre.is_router_interface_here(row):
            return None
        return _port_ips(row)


class TenantPortCreatedEvent(NamedEvent):
    """A VM port on a tenant network behind a local gateway was created, bound or re-addressed."""

    EVENTS = (CREATE, UPDATE)

    def match_ips(self, event, row, old, ctx):
        if row.type != "" or row.datapath not in ctx.post.tenant_switches:
            return None
        if old is not None and old.type == row.type and old.datapath == row.datapath \
                and old.mac == row.mac and (old.chassis is None) == (row.chassis is None):
            return None  # nothing the exposure depends on changed (e.g. it moved chassis)
        if row.chassis is None and old is not None and old.chassis is not None:
            return None  # unbound: that is TenantPortDeletedEvent
        return _port_ips(row)


class TenantPortDeletedEvent(NamedEvent):
    """A VM port on a tenant network behind a local gateway was deleted or unbound."""

    EVENTS = (UPDATE, DELETE)

    def match_ips(self, event, row, old, ctx):
        if event == DELETE:
            if row.type == "" and row.datapath in ctx.pre.tenant_switches:
                return _port_ips(row)
            return None
        if old is None or old.type != "" or old.datapath not in ctx.pre.tenant_switches:
            return None
        if old.chassis is not None and row.chassis is None:
            return _port_ips(old)
        if row.type != "" or row.datapath != old.datapath:
            return _port_ips(old)
        return None


EVENT_CLASSES: tuple[type[NamedEvent], ...] = (
    PortBindingChassisCreatedEvent, PortBindingChassisDeletedEvent,
    FIPSetEvent, FIPUnsetEvent,
    SubnetRouterAttachedEvent, SubnetRouterDetachedEvent,
    TenantPortCreatedEvent, TenantPortDeletedEvent,
)
EVENT_NAMES = tuple(c.__name__ for c in EVENT_CLASSES)


def make_events(context: Callable[[], EventContext], on_dirty: OnDirty) -> list[NamedEvent]:
    return [cls(context, on_dirty) for cls in EVENT_CLASSES]


def row_lookup(rows: Mapping[str, PortBindingRow], names: Mapping[str, str],
               overlay: Mapping[str, PortBindingRow | None] | None = None
               ) -> Callable[[str], PortBindingRow | None]:
    """logical_port -> row, from `names` (name -> uuid) and `rows`, with an optional overlay
    (name -> row or None) that wins: the values before a batch."""

    def lookup(name: str) -> PortBindingRow | None:
        if overlay is not None and name in overlay:
            return overlay[name]
        uuid = names.get(name)
        return rows.get(uuid) if uuid is not None else None

    return lookup

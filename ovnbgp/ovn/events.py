"""The named Port_Binding events of the reference design, as ovsdbapp row events.

They exist for operators and metrics: each one logs one line (event name, port, IPs) and marks
the Port_Binding's uuid dirty through the watcher's `on_dirty(keys, event_name)` callback. None
of them decides or changes anything: the model (ovnbgp/model/) recomputes what the dirty rows
imply and the reconcile loop applies it. The watcher (ovn/watcher.py) also marks every changed
row dirty under the cause "Port_Binding", so correctness never depends on an event matching.

One set of rules: an event asks the model (model/query.py `ModelView`: the model's Topology,
Context and fip_claims()) what the row is (bound here, a router interface whose subnets are
exposed, a port on a tenant network behind a gateway here, a nat entry exposed as a FIP), so
its name cannot disagree with what is exposed.

Synchronous: the watcher matches and runs the events in the IDL thread, in the batch that
changed the rows (`dispatch()`), before it marks the rows dirty: the cause of a change is
known when its key reaches the work queue, and the reconcile loop never waits for it. `row`
and `old` are frozen `PortBindingRow` values: `row` is the row after the change (for a
delete: its last value), `old` the full row before it (None for a create or a delete). "Local"
questions are answered from `EventContext.post` (the state after the batch) for
created/set/attached events and `EventContext.pre` (before it) for deleted/unset/detached ones,
so a delete still sees the cr-lrp that made it matter.

Dirty keys: Port_Binding uuids (str). The watcher adds `LOCAL_OVS_KEY` (the local OVS view
changed) and `CHASSIS_KEY` (the Chassis names changed); see OvnWatcher.changes().
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass

from ovsdbapp import event as ovsdb_event

from ovnbgp.model.parse import ParseError, parse_port_addresses, parse_router_port_addresses
from ovnbgp.model.query import ModelView
from ovnbgp.model.records import PortBindingRow

LOG = logging.getLogger(__name__)

LOCAL_OVS_KEY = "ovs:local"
CHASSIS_KEY = "sb:chassis"
CREATE = ovsdb_event.RowEvent.ROW_CREATE
UPDATE = ovsdb_event.RowEvent.ROW_UPDATE
DELETE = ovsdb_event.RowEvent.ROW_DELETE

OnDirty = Callable[[set[Hashable], str], None]


@dataclass
class EventContext:
    """Set by the watcher before each batch is matched (IDL thread)."""

    pre: ModelView  # the model's view before the batch
    post: ModelView  # and after it
    pre_row: Callable[[str], PortBindingRow | None]  # logical_port -> row before the batch
    post_row: Callable[[str], PortBindingRow | None]  # logical_port -> row after the batch



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


def _fip_match(row: PortBindingRow, entries: list[str],
               lookup: Callable[[str], PortBindingRow | None], view: ModelView
               ) -> tuple[list[str], set[str]] | None:
    """IPs of the entries the model claims as FIPs here, and the rows of those claims
    (the residents: a FIP exposure's row), or None when there is none."""
    claims = view.fip_claims(row, entries, lookup)
    if not claims:
        return None
    return [str(c.prefix.network_address) for c in claims], {c.row for c in claims}


class NamedEvent(ovsdb_event.RowEvent):
    """Base: a Port_Binding event that logs one line and marks the row dirty."""

    EVENTS: tuple[str, ...] = ()

    def __init__(self, context: Callable[[], EventContext], on_dirty: OnDirty):
        super().__init__(self.EVENTS, "Port_Binding", None)
        self._context = context
        self._on_dirty = on_dirty
        self._ips: dict[tuple[str, str], list[str]] = {}
        self._keys: dict[tuple[str, str], set[str]] = {}

    def matches(self, event: str, row: PortBindingRow, old: PortBindingRow | None = None) -> bool:
        if event not in self.events:
            return False
        found = self.match_ips(event, row, old, self._context())
        if found is None:
            return False
        ips, keys = found if isinstance(found, tuple) else (found, set())
        self._ips[(event, row.uuid)] = ips
        self._keys[(event, row.uuid)] = keys
        return True

    def match_ips(self, event: str, row: PortBindingRow, old: PortBindingRow | None,
                  ctx: EventContext) -> list[str] | tuple[list[str], set[str]] | None:
        """None when the event does not match; else the IPs to log (and, for a FIP, the rows
        its exposures name, marked with the event's name too)."""
        raise NotImplementedError

    def run(self, event: str, row: PortBindingRow, old: PortBindingRow | None) -> None:
        ips = self._ips.pop((event, row.uuid), None) or []
        keys: set[Hashable] = {row.uuid, *self._keys.pop((event, row.uuid), ())}
        LOG.info("%s port=%s ips=%s", self.event_name, row.logical_port, ",".join(ips) or "-",
                 extra={"fields": {"event": self.event_name, "port": row.logical_port,
                                   "ips": ips, "row": row.uuid}})
        self._on_dirty(keys, self.event_name)


_BOUND_TYPES = ("", "chassisredirect")


class PortBindingChassisCreatedEvent(NamedEvent):
    """A VM port or a cr-lrp became bound to this chassis."""

    EVENTS = (CREATE, UPDATE)

    def match_ips(self, event, row, old, ctx):
        if row.type not in _BOUND_TYPES or not ctx.post.bound_here(row):
            return None
        if old is not None and old.type == row.type and ctx.pre.bound_here(old):
            return None
        return _port_ips(row)


class PortBindingChassisDeletedEvent(NamedEvent):
    """A VM port or a cr-lrp bound to this chassis was unbound from it (or deleted)."""

    EVENTS = (UPDATE, DELETE)

    def match_ips(self, event, row, old, ctx):
        if event == DELETE:
            return _port_ips(row) if row.type in _BOUND_TYPES and ctx.pre.bound_here(row) else None
        if old is None or old.type not in _BOUND_TYPES or not ctx.pre.bound_here(old):
            return None
        if row.type == old.type and ctx.post.bound_here(row):
            return None
        return _port_ips(old)


class FIPSetEvent(NamedEvent):
    """A patch port's nat_addresses gained an entry the model exposes here as a floating IP."""

    EVENTS = (CREATE, UPDATE)

    def match_ips(self, event, row, old, ctx):
        if row.type != "patch" or not row.nat_addresses:
            return None
        before = set(old.nat_addresses) if old is not None else set()
        added = [e for e in row.nat_addresses if e not in before]
        return _fip_match(row, added, ctx.post_row, ctx.post)


class FIPUnsetEvent(NamedEvent):
    """A patch port's nat_addresses lost an entry the model exposed here as a floating IP."""

    EVENTS = (UPDATE, DELETE)

    def match_ips(self, event, row, old, ctx):
        if event == DELETE:
            removed, before = list(row.nat_addresses), row
        else:
            if old is None:
                return None
            after = set(row.nat_addresses)
            removed, before = [e for e in old.nat_addresses if e not in after], old
        if not removed:
            return None
        return _fip_match(before, removed, ctx.pre_row, ctx.pre)


class SubnetRouterAttachedEvent(NamedEvent):
    """A router interface (LRP) whose subnets the model now exposes here (its router's gateway
    is bound here): created, or completed (northd sets the LRP's peer once its switch port
    exists, often a transaction after the LRP)."""

    EVENTS = (CREATE, UPDATE)

    def match_ips(self, event, row, old, ctx):
        if not ctx.post.exposes_subnets(row) or (old is not None and ctx.pre.exposes_subnets(old)):
            return None
        return _port_ips(row)


class SubnetRouterDetachedEvent(NamedEvent):
    """A router interface whose subnets the model exposed here was deleted or lost them."""

    EVENTS = (UPDATE, DELETE)

    def match_ips(self, event, row, old, ctx):
        before = row if event == DELETE else old
        if before is None or not ctx.pre.exposes_subnets(before):
            return None
        if event == UPDATE and ctx.post.exposes_subnets(row):
            return None
        return _port_ips(before)


class TenantPortCreatedEvent(NamedEvent):
    """A VM port on a tenant network behind a local gateway was created, bound or re-addressed."""

    EVENTS = (CREATE, UPDATE)

    def match_ips(self, event, row, old, ctx):
        if row.type != "" or not ctx.post.is_tenant_switch(row.datapath):
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
            if row.type == "" and ctx.pre.is_tenant_switch(row.datapath):
                return _port_ips(row)
            return None
        if old is None or old.type != "" or not ctx.pre.is_tenant_switch(old.datapath):
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


def dispatch(events: Iterable[NamedEvent], changed: Mapping[str, tuple[PortBindingRow | None,
                                                                      PortBindingRow | None]]
             ) -> list[tuple[NamedEvent, str, PortBindingRow, PortBindingRow | None]]:
    """Match every changed row (uuid -> (old, new)) against the events, synchronously: the
    (event, kind, row, old) to run(). Called with the batch's EventContext current."""
    out = []
    for old, new in changed.values():
        if old is None:
            kind, row, prev = CREATE, new, None
        elif new is None:
            kind, row, prev = DELETE, old, None
        else:
            kind, row, prev = UPDATE, new, old
        assert row is not None
        for e in events:
            if e.matches(kind, row, prev):
                out.append((e, kind, row, prev))
    return out


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

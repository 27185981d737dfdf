"""Read-only connections to the OVN Southbound DB and the local OVS DB (ovsdbapp IDLs).

`OvnWatcher` keeps a mirror of the rows the model needs as frozen records, updated batch by
batch in the IDL threads, and tells the reconcile loop what changed:

    w = OvnWatcher(cfg, on_dirty=queue.mark, on_resync=queue.request_full)
    w.start(timeout=60)        # connect both DBs, wait for the initial dump of every table;
                               # raises OvnError (e.g. no system-id) with a clear message
    snap = w.snapshot()        # Snapshot for desired_state()/ModelCache (copy, O(rows))
    ch = w.changes(keys)       # model.Changes for the keys on_dirty reported
    w.sb_connected, w.ovs_connected, w.connected
    w.stop()

Callbacks run in the IDL threads and must be quick (WorkQueue.mark is):
- on_dirty(keys, cause): keys are Port_Binding uuids, `events.LOCAL_OVS_KEY` or
  `events.CHASSIS_KEY`; cause "Port_Binding"/"Chassis"/"LocalOvs" for every change, plus one
  call per matching named event (events.py) with the event's name;
- on_resync(reason): after a reconnect the DB was re-read (rows deleted meanwhile produce no
  notification), so the loop should rebuild from `snapshot()`.

A lost connection never clears anything: the mirror keeps the last rows and the IDL reconnects
by itself with backoff (the OVS library's session, up to 8 s between attempts), trying each
of the clustered SB remotes in turn; followers are fine for reading (leader_only=False).

Only the columns the model uses are monitored (design.md: that halves the initial load), and
rows are converted from the IDL's raw data rather than through Row attributes, which is what
keeps a 10k-port initial load and snapshot fast. Port_Binding.datapath is kept as the uuid
string (Datapath_Binding is not monitored at all).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Hashable, Iterable

from ovs.db import idl as ovs_idl
from ovs import stream as ovs_stream
from ovsdbapp import event as ovsdb_event
from ovsdbapp.backend.ovs_idl import connection, idlutils

from ovnbgp.ovn import events as ev
from ovnbgp.model.cache import Changes
from ovnbgp.model.topology import INFRA_TYPES
from ovnbgp.model.parse import parse_bridge_mappings
from ovnbgp.model.records import BridgeInfo, LocalOvs, PortBindingRow, Snapshot
from ovnbgp.config import Config

LOG = logging.getLogger(__name__)

SB_COLUMNS = {
    "Port_Binding": ["logical_port", "type", "datapath", "mac", "chassis", "up", "options",
                     "nat_addresses"],
    "Chassis": ["name"],
}
OVS_COLUMNS = {
    "Open_vSwitch": ["external_ids", "bridges"],
    "Bridge": ["name", "ports"],
    "Port": ["name", "interfaces", "external_ids"],
    "Interface": ["name", "type", "options", "ofport", "mac_in_use"],
}
OVN_PATCH_PORT_KEYS = ("ovn-localnet-port", "ovn-l2gateway-port")


class OvnError(RuntimeError):
    """The OVN side cannot start: the message says what to fix."""


# --- raw IDL data -> records -----------------------------------------------------------------


def _atoms(row, column: str) -> list:
    datum = row._data.get(column)
    return [a.value for a in datum.values] if datum is not None else []


def _scalar(row, column: str, default=None):
    datum = row._data.get(column)
    if datum is None or not datum.values:
        return default
    return next(iter(datum.values)).value


def _smap(row, column: str) -> dict[str, str]:
    datum = row._data.get(column)
    if datum is None:
        return {}
    return {k.value: v.value for k, v in datum.values.items()}


def port_binding_from_idl(row, chassis_names: dict) -> PortBindingRow:
    """A Port_Binding IDL row as a frozen record (chassis uuid -> Chassis.name)."""
    ch = _scalar(row, "chassis")
    up = _scalar(row, "up")
    return PortBindingRow(
        uuid=str(row.uuid),
        logical_port=_scalar(row, "logical_port", ""),
        type=_scalar(row, "type", ""),
        datapath=str(_scalar(row, "datapath", "")),
        mac=tuple(_atoms(row, "mac")),
        # A reference to a row we do not know keeps the uuid: the model reports it.
        chassis=None if ch is None else chassis_names.get(ch, str(ch)),
        up=up if isinstance(up, bool) else None,
        options=_smap(row, "options"),
        nat_addresses=tuple(_atoms(row, "nat_addresses")),
    )


def local_ovs_from_idl(tables) -> tuple[LocalOvs, list[str]]:
    """The local OVS view (system-id, bridge mappings, provider bridges) and problems found."""
    ovs_rows = list(tables["Open_vSwitch"].rows.values())
    if not ovs_rows:
        return LocalOvs(system_id=""), ["the local OVS DB has no Open_vSwitch row"]
    ext = _smap(ovs_rows[0], "external_ids")
    mappings, problems = parse_bridge_mappings(ext.get("ovn-bridge-mappings"))
    integration = ext.get("ovn-bridge", "br-int")
    wanted = set(mappings.values())
    ports = tables["Port"].rows
    ifaces = tables["Interface"].rows
    int_ifaces: set[str] = set()
    provider: dict[str, object] = {}
    for br in tables["Bridge"].rows.values():
        name = _scalar(br, "name", "")
        if name == integration:
            for p in _atoms(br, "ports"):
                prow = ports.get(p)
                for i in _atoms(prow, "interfaces") if prow is not None else ():
                    irow = ifaces.get(i)
                    if irow is not None:
                        int_ifaces.add(_scalar(irow, "name", ""))
        if name in wanted:
            provider[name] = br
    bridges: dict[str, BridgeInfo] = {}
    for name, br in provider.items():
        mac = None
        patch_ports: dict[str, int] = {}
        for p in _atoms(br, "ports"):
            prow = ports.get(p)
            if prow is None:
                continue
            pext = _smap(prow, "external_ids")
            for i in _atoms(prow, "interfaces"):
                irow = ifaces.get(i)
                if irow is None:
                    continue
                iname = _scalar(irow, "name", "")
                if iname == name:
                    mac = _scalar(irow, "mac_in_use")
                elif _scalar(irow, "type", "") == "patch":
                    peer = _smap(irow, "options").get("peer", "")
                    if any(k in pext for k in OVN_PATCH_PORT_KEYS) or peer in int_ifaces:
                        ofport = _scalar(irow, "ofport")
                        patch_ports[iname] = ofport if isinstance(ofport, int) else -1
        bridges[name] = BridgeInfo(name=name, mac=mac, patch_ports=patch_ports)
    local = LocalOvs(system_id=ext.get("system-id", ""), bridge_mappings=mappings, bridges=bridges,
                     mapping_problems=tuple(problems))
    return local, problems


# --- IDL plumbing -----------------------------------------------------------------------------


class _BatchIdl(connection.OvsdbIdl):
    """An IDL that hands each run()'s notifications to a callback as one batch.

    `resynced` is true when this run() completed a (re)connection's monitor reply: after a
    reconnect the library may have cleared and reloaded every table without notifying deletes.
    """

    def __init__(self, remote: str, helper, on_batch: Callable[["_BatchIdl", list, bool], None], **kw):
        super().__init__(remote, helper, **kw)
        self._on_batch = on_batch
        self._notices: list = []
        self.syncs = 0

    def notify(self, event, row, updates=None):
        # The library also notifies rows of its own _Server database: not ours.
        if row._table.name in self.tables:
            self._notices.append((event, row, updates))

    def run(self):
        monitoring_before = self.state == self.IDL_S_MONITORING
        changed = super().run()
        monitoring = self.state == self.IDL_S_MONITORING
        resynced = monitoring and not monitoring_before
        if resynced:
            self.syncs += 1
        notices, self._notices = self._notices, []
        # Before the data monitor reply nothing is complete; the reply comes with resynced.
        if monitoring and (notices or resynced):
            self._on_batch(self, notices, resynced)
        return changed

    @property
    def connected(self) -> bool:
        session = getattr(self, "_session", None)
        return bool(session is not None and session.is_connected()
                    and self.state == self.IDL_S_MONITORING)


def _fetch_helper(remote: str, schema: str, deadline: float):
    delay = 0.5
    while True:
        try:
            return idlutils.get_schema_helper(remote, schema)
        except Exception as e:  # ovsdbapp raises a bare Exception when no remote answers
            if time.monotonic() + delay > deadline:
                raise OvnError(f"cannot read the {schema} schema from {remote}: {e}") from e
            LOG.warning("%s not reachable at %s (%s); retrying in %.1fs", schema, remote, e, delay)
            time.sleep(delay)
            delay = min(delay * 2, 8.0)


def _register(helper, columns: dict[str, list[str]]) -> None:
    tables = helper.schema_json["tables"]
    for table, cols in columns.items():
        present = [c for c in cols if c in tables[table]["columns"]]  # e.g. `up` before OVN 21.03
        helper.register_columns(table, present)


def _configure_ssl(cfg: Config) -> None:
    if any(r.startswith("ssl:") for r in cfg.ovn.sb_remotes):
        ovs_stream.Stream.ssl_set_private_key_file(str(cfg.ovn.ssl_key))
        ovs_stream.Stream.ssl_set_certificate_file(str(cfg.ovn.ssl_cert))
        ovs_stream.Stream.ssl_set_ca_cert_file(str(cfg.ovn.ssl_ca))


# --- the watcher ------------------------------------------------------------------------------


class OvnWatcher:
    """Mirrors the SB and the local OVS DB; reports changes (see the module docstring)."""

    def __init__(self, cfg: Config, *, on_dirty: ev.OnDirty | None = None,
                 on_resync: Callable[[str], None] | None = None, events: bool = True):
        self.cfg = cfg
        self._on_dirty = on_dirty or (lambda keys, cause: None)
        self._on_resync = on_resync or (lambda reason: None)
        self._lock = threading.RLock()
        self._rows: dict[str, PortBindingRow] = {}
        self._names: dict[str, str] = {}  # logical_port -> uuid
        self._infra: dict[str, PortBindingRow] = {}
        self._chassis: dict = {}  # Chassis uuid -> name
        self._local = LocalOvs(system_id="")
        self._local_problems_logged: set[str] = set()
        self._view = ev.View((), "")
        self._ctx: ev.EventContext | None = None
        self._sb_synced = threading.Event()
        self._ovs_synced = threading.Event()
        self._sb_conn: connection.Connection | None = None
        self._ovs_conn: connection.Connection | None = None
        self._handler: ovsdb_event.RowEventHandler | None = None
        self.events: list[ev.NamedEvent] = []
        if events:
            self._handler = ovsdb_event.RowEventHandler()
            self.events = ev.make_events(lambda: self._ctx, self._dirty)
            self._handler.watch_events(self.events)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, timeout: float = 60.0) -> None:
        """Connect both DBs and wait for their initial dumps; OvnError on failure."""
        deadline = time.monotonic() + timeout
        _configure_ssl(self.cfg)
        try:
            self._ovs_conn = self._connect(self.cfg.ovn.ovs_remote, "Open_vSwitch", OVS_COLUMNS,
                                           self._on_ovs_batch, deadline, leader_only=True)
            if not self._local.system_id:
                raise OvnError(
                    f"the local OVS DB ({self.cfg.ovn.ovs_remote}) has no "
                    "Open_vSwitch external_ids:system-id: this node is not an OVN chassis yet "
                    "(set it as for ovn-controller: ovs-vsctl set open . external_ids:system-id=NAME)")
            self._sb_conn = self._connect(",".join(self.cfg.ovn.sb_remotes), "OVN_Southbound",
                                          SB_COLUMNS, self._on_sb_batch, deadline, leader_only=False)
            self.wait_initial_sync(max(0.0, deadline - time.monotonic()))
        except BaseException:
            self.stop()
            raise

    def _connect(self, remote: str, schema: str, columns, on_batch, deadline: float,
                 leader_only: bool) -> connection.Connection:
        helper = _fetch_helper(remote, schema, deadline)
        _register(helper, columns)
        idl = _BatchIdl(remote, helper, on_batch, leader_only=leader_only)
        conn = connection.Connection(idl, timeout=max(1.0, deadline - time.monotonic()))
        try:
            conn.start()  # returns once the initial dump has been processed
        except Exception as e:
            raise OvnError(f"no initial dump of {schema} from {remote}: {e}") from e
        return conn

    def wait_initial_sync(self, timeout: float) -> None:
        """Block until the first full dump of every monitored table has been mirrored."""
        end = time.monotonic() + timeout
        for name, flag in (("local OVS DB", self._ovs_synced), ("Southbound DB", self._sb_synced)):
            if not flag.wait(max(0.0, end - time.monotonic())):
                raise OvnError(f"the {name} was not read within {timeout:.0f}s")

    def stop(self) -> None:
        for conn in (self._sb_conn, self._ovs_conn):
            if conn is not None:
                conn.stop(timeout=5)
        self._sb_conn = self._ovs_conn = None
        if self._handler is not None:
            self._handler.shutdown()
            self._handler.notify_thread.join(timeout=5)
            self._handler = None

    def events_idle(self, timeout: float = 10.0) -> bool:
        """Wait until every named event queued so far has run (for tests and shutdown)."""
        end = time.monotonic() + timeout
        handler = self._handler
        while handler is not None and handler.notifications.unfinished_tasks:
            if time.monotonic() > end:
                return False
            time.sleep(0.01)
        return True

    # -- state -----------------------------------------------------------------------------

    @property
    def sb_connected(self) -> bool:
        return self._sb_conn is not None and self._sb_conn.idl.connected

    @property
    def ovs_connected(self) -> bool:
        return self._ovs_conn is not None and self._ovs_conn.idl.connected

    @property
    def connected(self) -> bool:
        return self.sb_connected and self.ovs_connected

    @property
    def synced(self) -> bool:
        return self._sb_synced.is_set() and self._ovs_synced.is_set()

    def local_ovs(self) -> LocalOvs:
        return self._local

    def snapshot(self) -> Snapshot:
        with self._lock:
            return Snapshot(local=self._local, port_bindings=dict(self._rows),
                            chassis_names=frozenset(self._chassis.values()))

    def changes(self, keys: Iterable[Hashable]) -> Changes:
        """The current values for dirty keys, for ModelCache.update()."""
        with self._lock:
            pbs = {}
            local = chassis = None
            for k in keys:
                if k == ev.LOCAL_OVS_KEY:
                    local = self._local
                elif k == ev.CHASSIS_KEY:
                    chassis = frozenset(self._chassis.values())
                elif isinstance(k, str):
                    pbs[k] = self._rows.get(k)
            return Changes(port_bindings=pbs, local=local, chassis_names=chassis)

    def port_binding(self, logical_port: str) -> PortBindingRow | None:
        with self._lock:
            u = self._names.get(logical_port)
            return self._rows.get(u) if u else None

    # -- batches (IDL threads) -------------------------------------------------------------

    def _dirty(self, keys: set[Hashable], cause: str) -> None:
        try:
            self._on_dirty(keys, cause)
        except Exception:
            LOG.exception("on_dirty callback failed (%s)", cause)

    def _on_ovs_batch(self, idl: _BatchIdl, notices: list, resynced: bool) -> None:
        if not self._ovs_synced.is_set() and not resynced:
            return
        local, problems = local_ovs_from_idl(idl.tables)
        for p in problems:
            if p not in self._local_problems_logged:
                LOG.warning("local OVS DB: %s", p)
        self._local_problems_logged = set(problems)
        first = not self._ovs_synced.is_set()
        if local != self._local:
            with self._lock:
                if local.system_id != self._local.system_id:
                    self._view = ev.View(self._infra.values(), local.system_id)
                self._local = local
            if not first:
                LOG.info("local OVS view changed: system-id=%s bridge-mappings=%s bridges=%s",
                         local.system_id or "-", dict(local.bridge_mappings), sorted(local.bridges))
                self._dirty({ev.LOCAL_OVS_KEY}, "LocalOvs")
        if resynced:
            if first:
                self._ovs_synced.set()
            else:
                self._on_resync("local OVS DB reconnected")

    def _on_sb_batch(self, idl: _BatchIdl, notices: list, resynced: bool) -> None:
        first = not self._sb_synced.is_set()
        if first and not resynced:
            return
        chassis_changed = False
        pb_notices = []
        for event, row, updates in notices:
            if row._table.name == "Chassis":
                chassis_changed = True
            elif row._table.name == "Port_Binding":
                pb_notices.append((event, row))
        with self._lock:
            if chassis_changed:
                self._chassis = {r.uuid: _scalar(r, "name", "") for r in idl.tables["Chassis"].rows.values()}
            if resynced or chassis_changed:
                changed = self._reload_all(idl)
            else:
                changed = {}
                for event, row in pb_notices:
                    uuid = str(row.uuid)
                    new = None if event == ovs_idl.ROW_DELETE else port_binding_from_idl(row, self._chassis)
                    old = self._rows.get(uuid)
                    if old != new:
                        changed[uuid] = (changed.get(uuid, (old, None))[0], new)
                        self._apply(uuid, old, new)
                # a row created and deleted within one batch is no change
                changed = {u: (o, n) for u, (o, n) in changed.items() if o != n}
            pre_view = self._view
            if any(r is not None and r.type in INFRA_TYPES for pair in changed.values() for r in pair):
                self._view = ev.View(self._infra.values(), self._local.system_id)
            pre_overlay = {}
            for old, new in changed.values():
                if new is not None:
                    pre_overlay.setdefault(new.logical_port, None)
            for old, new in changed.values():
                if old is not None:
                    pre_overlay[old.logical_port] = old
            self._ctx = ev.EventContext(
                pre=pre_view, post=self._view,
                pre_row=ev.row_lookup(self._rows, self._names, pre_overlay),
                post_row=ev.row_lookup(self._rows, self._names))
        if first:
            self._sb_synced.set()
            LOG.info("Southbound read: %d Port_Binding rows, %d chassis", len(self._rows), len(self._chassis))
            return
        if chassis_changed:
            self._dirty({ev.CHASSIS_KEY}, "Chassis")
        if changed:
            self._dirty(set(changed), "Port_Binding")
        if resynced:
            self._on_resync("Southbound DB reconnected")
        elif self._handler is not None:
            for uuid, (old, new) in changed.items():
                if old is None:
                    self._handler.notify(ev.CREATE, new, None)
                elif new is None:
                    self._handler.notify(ev.DELETE, old, None)
                else:
                    self._handler.notify(ev.UPDATE, new, old)

    def _reload_all(self, idl) -> dict:
        """Re-mirror every Port_Binding row (after a reconnect or a chassis rename)."""
        fresh = {str(r.uuid): port_binding_from_idl(r, self._chassis)
                 for r in idl.tables["Port_Binding"].rows.values()}
        changed = {}
        for uuid in self._rows.keys() | fresh.keys():
            old, new = self._rows.get(uuid), fresh.get(uuid)
            if old != new:
                changed[uuid] = (old, new)
                self._apply(uuid, old, new)
        return changed

    def _apply(self, uuid: str, old: PortBindingRow | None, new: PortBindingRow | None) -> None:
        if old is not None:
            del self._rows[uuid]
            if self._names.get(old.logical_port) == uuid:
                del self._names[old.logical_port]
            self._infra.pop(uuid, None)
        if new is not None:
            self._rows[uuid] = new
            self._names[new.logical_port] = uuid
            if new.type in INFRA_TYPES:
                self._infra[uuid] = new



def read_desired(cfg: Config, timeout: float = 30.0):
    """What this chassis must expose now, from a read-only watcher (no events): the expected
    side of `ovnbgp verify`. Raises OvnError when the DBs cannot be read."""
    from ovnbgp.model.cache import desired_state

    watcher = OvnWatcher(cfg, events=False)
    try:
        watcher.start(timeout=timeout)
        snapshot = watcher.snapshot()
    finally:
        watcher.stop()
    return desired_state(snapshot, cfg)

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
  `events.CHASSIS_KEY`; cause "Port_Binding"/"Chassis"/"LocalOvs" for every change, preceded
  (same thread, same batch) by one call per matching named event (events.py) with the event's
  name, so a key's cause is known by the time the key is queued;
- on_resync(reason): after a reconnect the DB was re-read (rows deleted meanwhile produce no
  notification), so the loop should rebuild from `snapshot()`;
- on_connection(): a connection went up or down (`sb_connected`/`ovs_connected` changed), for
  the status and metrics of an agent that does not poll them.

A lost connection never clears anything: the mirror keeps the last rows and the IDL reconnects
by itself with backoff (the OVS library's session, up to 8 s between attempts), trying each
of the clustered SB remotes (or relays) in random order; followers are fine for reading
(leader_only=False).

Conditional monitoring (unless cfg.ovn.monitor_all): the SB sends only the Port_Binding rows
the model can use (ovnbgp/model/interest.py has the set, its clauses and why it is complete):

    type == localnet                                          -- always
    OR chassis == <uuid of the Chassis row named system-id>   -- once that row exists
    OR datapath == <d> for the routers of local cr-lrps and of local VMs' networks, the tenant
                       networks behind local cr-lrps, the networks of local VMs
    OR logical_port == <n> for the peers of those routers' patch ports (gateway ports' switch
                       side with the FIPs, router interfaces' switch side)

plus the whole Chassis table (names only) and the whole Load_Balancer table (name, vips;
docs/load-balancers.md says why no condition; its dirty keys are "lb:<uuid>"). Like ovn-
controller's local datapaths, the set is grown from the rows bound here: the first reply brings
the Chassis names and the localnet rows; `_update_condition` then asks for this chassis' rows,
and again whenever a row bound here or an infrastructure row (patch, chassisredirect, localnet)
arrives, changes or goes, until the interest stands (a fixed point; start() returns only once
the server has acknowledged the condition the data asks for). A gateway or a VM moving here
widens the condition (its router, tenant ports, FIP rows arrive); moving away narrows it (they
are deleted from the mirror). A narrowed condition deletes rows the model does not use any more
(by construction: test_model_interest.py); a delete of a row the current condition still wants,
while a change is in flight, may come from an older, narrower condition and is held until the
server acknowledged the latest one (`_settle_deletes`), so a condition change never withdraws.
Rows leaving the condition mark their keys dirty but fire no named event.

A chassis joining, leaving or renamed anywhere re-converts only the mirrored rows bound to it
(none, usually) and the model re-evaluates only those (ModelCache.update), never the table;
unless an infrastructure row is bound to it, the events' view keeps its topology
(ModelView.with_chassis) and the condition is not recomputed.

Reconnects: python-ovs asks with monitor_cond_since (OVS >= 2.12 servers), sending the last
transaction id and the acknowledged condition. A server that still has that transaction in
its history (a clustered SB: members keep it; a standalone server does not) replies with only
the changes, which arrive as ordinary notifications (`_BatchIdl.cleared` false, nothing is
re-read); otherwise the library reloads the (conditioned) tables and the watcher re-mirrors
them (`_reload_all`). Either way on_resync is called; nothing is withdrawn meanwhile.

Only the columns the model uses are monitored (docs/architecture.md, "OVN": that halves the initial load), and
rows are converted from the IDL's raw data rather than through Row attributes, which is what
keeps a 10k-port initial load and snapshot fast. Port_Binding.datapath is kept as the uuid
string (Datapath_Binding is not monitored at all).

Port_Binding rows are not kept as IDL Rows at all: the IDL's Datum and Atom objects (one per
set element and map key, e.g. every Neutron external_ids key) cost ~6 KB per row, 13-22 KB
of RSS with the fragmentation they leave (bench/bench_mirror.py), against ~0.6 KB here.
`_BatchIdl` keeps them in a LeanTable (ovn/leanrows.py: only the columns and map keys the
model reads, as plain values) by overriding private methods of python-ovs's Idl (3.1;
name-mangled, hence `_Idl__...`):
`__process_update2` (called per row of an update2/update3 notification or monitor reply:
initial, insert, modify diff, delete; `__process_update` for the old monitor) and `__clear`
(a reconnect that cannot resume: the tables are read afresh). The connection, clusters and
leaders, monitor_cond_since and conditions stay the library's, and every other table stays
an IDL table. `lean_seam_problem()` checks at connect that the installed python-ovs still has
those methods and calls them (OvnError otherwise: a silently empty mirror would withdraw).
The freed heap of a big reply is given back to the OS (release_freed_memory), and start()
makes python-ovs parse its messages with json.loads (ovn/jsonparse.py: the C parser holds a
big reply twice at its peak). bench/bench_mirror.py measures all of it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Mapping
from contextlib import contextmanager
from types import MappingProxyType

from ovs import jsonrpc as ovs_jsonrpc
from ovs import poller as ovs_poller
from ovs import stream as ovs_stream
from ovs import util as ovs_util
from ovs.db import idl as ovs_idl
from ovsdbapp.backend.ovs_idl import connection, idlutils

from ovnbgp.config import Config
from ovnbgp.model.cache import Changes
from ovnbgp.model.claims import clip
from ovnbgp.model.interest import (
    ALWAYS_TYPES,
    Interest,
    inert_here,
    interest,
    shapes_interest,
    shaping_context,
    wanted,
)
from ovnbgp.model.parse import parse_bridge_mappings
from ovnbgp.model.policy import SCOPE_KEYS
from ovnbgp.model.query import ModelView
from ovnbgp.model.records import (
    PORT_BINDING_OPTIONS,
    BridgeInfo,
    LoadBalancerRow,
    LocalOvs,
    PortBindingRow,
    Snapshot,
)
from ovnbgp.model.topology import INFRA_TYPES
from ovnbgp.ovn import events as ev
from ovnbgp.ovn import jsonparse
from ovnbgp.ovn.leanrows import MAP, OPTIONAL, SCALAR, SET, Column, LeanTable

LOG = logging.getLogger(__name__)

SB_COLUMNS = {
    "Port_Binding": ["logical_port", "type", "datapath", "mac", "chassis", "up", "options",
                     "nat_addresses", "external_ids", "tag"],
    "Chassis": ["name"],
    # The whole table, unconditioned (docs/load-balancers.md, "Monitoring"): a row names its
    # datapaths only through a Logical_DP_Group reference, which a condition cannot follow.
    "Load_Balancer": ["name", "vips"],
}
OVS_COLUMNS = {
    "Open_vSwitch": ["external_ids", "bridges"],
    "Bridge": ["name", "ports"],
    "Port": ["name", "interfaces", "external_ids"],
    "Interface": ["name", "type", "options", "ofport", "mac_in_use"],
}
OVN_PATCH_PORT_KEYS = ("ovn-localnet-port", "ovn-l2gateway-port")
PB = "Port_Binding"
LB = "Load_Balancer"
LB_KEY_PREFIX = "lb:"  # dirty key of a Load_Balancer row: "lb:<uuid>" (Port_Binding keys are bare uuids)
# What the lean Port_Binding mirror keeps of a map (the keys the model reads) and which strings
# it shares between rows (repeated by every port of a datapath, chassis or type).
PB_MAP_KEYS = {"options": PORT_BINDING_OPTIONS, "external_ids": SCOPE_KEYS}
PB_INTERNED = frozenset({"type", "datapath", "chassis"})


def sb_condition(chassis_uuid: str | None, want: Interest | None) -> list:
    """The Port_Binding monitor condition for an Interest (model/interest.py), in OVSDB form:
    the clauses of a monitor condition are OR'ed. `chassis_uuid`: the Chassis row named like
    the interest's chassis (None: not registered, nothing can be bound here). Sorted, so an
    unchanged interest gives an equal list (python-ovs then sends nothing)."""
    cond: list = [["type", "==", t] for t in sorted(ALWAYS_TYPES)]
    if chassis_uuid:
        cond.append(["chassis", "==", ["uuid", chassis_uuid]])
    if want is not None:
        cond += [["datapath", "==", ["uuid", dp]] for dp in sorted(want.datapaths)]
        cond += [["logical_port", "==", name] for name in sorted(want.names)]
    return cond


BIG_BATCH = 1000  # row notices in one batch after which the freed heap is given back


def release_freed_memory() -> None:
    """Give the heap freed by a big monitor reply back to the OS (glibc's malloc_trim).

    The reply is parsed whole (a C tree, then python objects: ~8 KB per Port_Binding row) and
    freed once applied; glibc keeps most of that in its heap (its trim threshold grows with
    the large blocks it saw), which was 45 MB of RSS after a 10k-row load. No-op without glibc."""
    if not _MALLOC_TRIM:
        lib = ctypes.util.find_library("c")
        _MALLOC_TRIM.append(getattr(ctypes.CDLL(lib), "malloc_trim", None) if lib else None)
    if _MALLOC_TRIM[0] is not None:
        _MALLOC_TRIM[0](0)


_MALLOC_TRIM: list = []  # [libc's malloc_trim, or None when there is none] once looked up


class _Wake:
    """A no-op for ovsdbapp's transaction queue: putting an item there is the public way to
    wake a Connection's thread (its loop then runs the IDL, and "commits" this: nothing)."""

    def __init__(self) -> None:
        self.results: queue.Queue = queue.Queue(maxsize=1)

    def do_commit(self) -> None:
        return None


def wake(conn: connection.Connection) -> None:
    """Make the connection's thread run its IDL soon (a full queue means it wakes anyway)."""
    try:
        conn.txns.put(_Wake(), block=False)
    except queue.Full:
        pass


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


_NO_MAP: Mapping[str, str] = MappingProxyType({})  # one shared empty map for every row


def port_binding_from_record(uuid: str, rec, chassis_names: Mapping[str, str]) -> PortBindingRow:
    """A lean Port_Binding record (leanrows.py) as the model's frozen row (chassis uuid ->
    Chassis.name). It shares the record's strings, tuples and maps (never changed once made):
    the mirror's cost per row is the record, this row and the few values they hold."""
    ch = rec.chassis
    type_ = rec.type or ""
    return PortBindingRow(
        uuid=uuid,
        logical_port=rec.logical_port or "",
        type=type_,
        datapath=rec.datapath or "",
        mac=rec.mac or (),
        # A reference to a row we do not know keeps the uuid: the model reports it.
        chassis=None if ch is None else chassis_names.get(ch, ch),
        up=rec.up,  # None: the column is empty (or absent, before OVN 21.03)
        options=rec.options or _NO_MAP,
        nat_addresses=rec.nat_addresses or (),
        # only the address scopes are kept (PB_MAP_KEYS), and only a patch port's mean anything
        external_ids=(rec.external_ids or _NO_MAP) if type_ == "patch" else _NO_MAP,
        # the VLAN of a localnet port (the model validates it); other ports' tags (a container
        # port's parent VLAN) mean nothing to the model
        tag=rec.tag if type_ == "localnet" else None,
    )


def lean_columns(table, fields: Iterable[str]) -> dict[str, Column | None]:
    """How a LeanTable keeps `fields` of an IDL table, from its schema (None: a column the
    server's schema lacks, e.g. Port_Binding.up before OVN 21.03)."""
    out: dict[str, Column | None] = {}
    for name in fields:
        col = table.columns.get(name)
        if col is None:
            out[name] = None
            continue
        t = col.type
        kind = MAP if t.is_map() else SCALAR if t.n_min == 1 and t.n_max == 1 \
            else OPTIONAL if t.n_max == 1 else SET
        out[name] = Column(kind, t.key.type.to_string(),
                           t.value.type.to_string() if t.value is not None else None,
                           keep=PB_MAP_KEYS.get(name), intern=name in PB_INTERNED)
    return out


def load_balancer_from_idl(row) -> LoadBalancerRow:
    return LoadBalancerRow(uuid=str(row.uuid), name=_scalar(row, "name", ""), vips=_smap(row, "vips"))


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


_LEAN_SEAM = {  # python-ovs Idl method -> (its parameters, the Idl method that must call it)
    "_Idl__process_update2": (("self", "table", "uuid", "row_update"), "_Idl__do_parse_update"),
    "_Idl__process_update": (("self", "table", "uuid", "old", "new"), "_Idl__do_parse_update"),
    "_Idl__clear": (("self",), "run"),
}


def lean_seam_problem(idl_class=ovs_idl.Idl) -> str | None:
    """Why _BatchIdl's lean tables cannot work with this python-ovs (None: they can): the
    private methods it overrides must exist with the same parameters and still be called."""
    for name, (params, caller) in _LEAN_SEAM.items():
        code = getattr(getattr(idl_class, name, None), "__code__", None)
        if code is None or code.co_varnames[:code.co_argcount] != params:
            return f"python-ovs Idl has no {name.replace('_Idl__', '__')}{params[1:]!r}".replace("'", "")
        calling = getattr(getattr(idl_class, caller, None), "__code__", None)
        if calling is None or name not in calling.co_names:
            return f"python-ovs Idl.{caller.replace('_Idl__', '__')} no longer calls {name.replace('_Idl__', '__')}"
    return None


class _BatchIdl(connection.OvsdbIdl):
    """An IDL that hands each run()'s notifications to a callback as one batch.

    A notice is (table, event, uuid string, row): the IDL Row, or for a table in `lean` (kept
    as LeanTable records, see the module docstring) the record after the change, None once
    deleted. `resynced` is true when this run() completed a (re)connection's monitor reply:
    after a reconnect the library may have cleared and reloaded every table without
    notifying deletes (`cleared`).
    """

    def __init__(self, remote: str, helper, on_batch: Callable[[_BatchIdl, list, bool], None],
                 lean: Mapping[str, Iterable[str]] | None = None,
                 on_connection: Callable[[], None] | None = None, **kw):
        """lean: table -> the columns to keep of it as LeanTable records; on_connection():
        called after a run() that changed `connected`."""
        if lean:
            problem = lean_seam_problem()
            if problem:
                raise OvnError(f"{problem}: ovnbgp needs python-ovs 3.1 or a release with the "
                               "same Idl internals (ovnbgp/ovn/watcher.py, module docstring)")
        super().__init__(remote, helper, **kw)
        self.lean = {name: LeanTable(name, lean_columns(self.tables[name], cols))
                     for name, cols in (lean or {}).items()}
        self._on_batch = on_batch
        self._on_connection = on_connection
        self._was_connected = False
        self._notices: list = []
        self.syncs = 0
        self.cleared = False
        self._cleared = False

    def cooperative_yield(self):
        """Nothing. ovsdbapp's IDL calls time.sleep(0) here for every row of an update (a
        hook for green threads); ovnbgp runs OS threads, which the interpreter switches
        anyway. Each sleep(0) is a system call that also gives the CPU away: on a busy CPU
        (FRR's first reload at start, User-Mode Linux) the reply to the first 10k-row
        request took 4.7 s with it and 2.7 s without."""

    def notify(self, event, row, updates=None):
        # The library also notifies rows of its own _Server database: not ours.
        name = row._table.name
        if name in self.tables:
            self._notices.append((name, event, str(row.uuid), row))

    # -- the lean tables' hooks into python-ovs (see lean_seam_problem) ---------------------

    def _lean_table(self, table) -> LeanTable | None:
        lean = self.lean.get(table.name)
        return lean if lean is not None and self.tables.get(table.name) is table else None

    def _Idl__process_update2(self, table, uuid, row_update):
        lean = self._lean_table(table)
        if lean is None:
            return super()._Idl__process_update2(table, uuid, row_update)
        key = str(uuid)
        self._lean_changed(lean, key, lean.update2(key, row_update))
        return False  # the notice is queued already (no IDL Row to notify)

    def _Idl__process_update(self, table, uuid, old, new):
        lean = self._lean_table(table)
        if lean is None:
            return super()._Idl__process_update(table, uuid, old, new)
        key = str(uuid)
        self._lean_changed(lean, key, lean.update1(key, new or None))
        return False

    def _Idl__clear(self):
        if any(t.rows for t in self.tables.values()) or any(t.rows for t in self.lean.values()):
            self._cleared = True
        for lean in self.lean.values():
            lean.clear()
        super()._Idl__clear()

    def _lean_changed(self, lean: LeanTable, uuid: str, change: tuple | None) -> None:
        if change is None:
            return
        old, new = change
        event = ovs_idl.ROW_DELETE if new is None else \
            ovs_idl.ROW_CREATE if old is None else ovs_idl.ROW_UPDATE
        self.change_seqno += 1
        self._notices.append((lean.name, event, uuid, new))

    def run(self):
        monitoring_before = self.state == self.IDL_S_MONITORING
        self._cleared = False
        acks_before = self.cond_seqno
        changed = super().run()
        monitoring = self.state == self.IDL_S_MONITORING
        resynced = monitoring and not monitoring_before
        if resynced:
            self.syncs += 1
        # The library drops every row (without notifying deletes) when it re-reads the tables
        # from scratch; after a monitor_cond_since reply that found our last transaction it
        # only applies (and notifies) what changed meanwhile.
        self.cleared = self._cleared
        acked = self.cond_seqno != acks_before
        notices, self._notices = self._notices, []
        # Before the data monitor reply nothing is complete; the reply comes with resynced.
        if monitoring and (notices or resynced or acked):
            self._on_batch(self, notices, resynced)
        if self.connected != self._was_connected:
            self._was_connected = not self._was_connected
            if self._on_connection is not None:
                self._on_connection()
        return changed

    @property
    def condition_pending(self) -> bool:
        """A monitor condition change not yet acknowledged by the server."""
        return any(t.condition_state.new is not None or t.condition_state.requested is not None
                   for t in self.tables.values())

    @property
    def connected(self) -> bool:
        session = getattr(self, "_session", None)
        return bool(session is not None and session.is_connected()
                    and self.state == self.IDL_S_MONITORING)


DB_NAMES = {"OVN_Southbound": "OVN Southbound", "Open_vSwitch": "local OVS DB"}


def _fetch_helper(remote: str, schema: str, deadline: float, *, quiet: bool = False,
                  timeout: float | None = None, stop: threading.Event | None = None):
    """The schema helper of `remote`, retried with backoff until `deadline`; OvnError then,
    or as soon as `stop` is set. quiet (one-shot reads): the retries are logged at debug level."""
    delay = 0.5
    while True:
        if stop is not None and stop.is_set():
            raise OvnError(f"stopped while connecting to {remote}")
        try:
            return idlutils.create_schema_helper(_fetch_schema(remote, schema, deadline, stop))
        except _Unreachable as e:
            left = deadline - time.monotonic()
            if left <= 0:
                note = f" (timeout {timeout:g}s)" if timeout is not None else ""
                raise OvnError(f"cannot read the {DB_NAMES.get(schema, schema)} at {remote}: "
                               f"{e}{note}") from None
            LOG.log(logging.DEBUG if quiet else logging.WARNING,
                    "%s not reachable at %s (%s); retrying in %.1fs", schema, remote, e,
                    min(delay, left))
            (stop.wait if stop is not None else time.sleep)(min(delay, left))  # last try at the deadline
            delay = min(delay * 2, 8.0)


class _Unreachable(Exception):
    """No remote answered get_schema (the message says why, per remote)."""


def _fetch_schema(remote: str, schema: str, deadline: float,
                  stop: threading.Event | None = None) -> dict:
    """get_schema from the first of the comma-separated remotes that answers, never waiting past
    `deadline` (ovsdbapp's fetch blocks without bound on a silent peer and logs every failure)."""
    errors = []
    remotes = [c.strip() for c in remote.split(",")]
    for i, r in enumerate(remotes):
        # A silent member of a cluster gets its share of the time, not all of it.
        until = time.monotonic() + max(0.0, deadline - time.monotonic()) / (len(remotes) - i)
        left_ms = max(1, int((until - time.monotonic()) * 1000))
        err, strm = ovs_stream.Stream.open_block(ovs_stream.Stream.open(r), left_ms)
        if err:
            errors.append(f"{r}: {_strerror(err)}" if "," in remote else _strerror(err))
            continue
        rpc = ovs_jsonrpc.Connection(strm)
        try:
            err, reply = _transact(rpc, ovs_jsonrpc.Message.create_request("get_schema", [schema]),
                                   until, stop)
        finally:
            rpc.close()
        if not err and reply.error is None:
            return reply.result
        why = _strerror(err) if err else f"get_schema failed: {reply.error}"
        errors.append(f"{r}: {why}" if "," in remote else why)
    raise _Unreachable("; ".join(errors))


def _transact(rpc, request, deadline: float, stop: threading.Event | None = None):
    """(errno, reply) of one JSON-RPC request; ETIMEDOUT at `deadline` or once `stop` is set
    (checked at least every 0.2 s: a silent server must not hold up a SIGTERM)."""
    err = rpc.send(request)
    while not err:
        err, msg = rpc.recv()
        if err == errno.EAGAIN:
            left_ms = int((deadline - time.monotonic()) * 1000)
            if left_ms <= 0 or (stop is not None and stop.is_set()):
                return errno.ETIMEDOUT, None
            rpc.run()
            poller = ovs_poller.Poller()
            rpc.wait(poller)
            rpc.recv_wait(poller)
            poller.timer_wait(min(left_ms, 200))
            poller.block()
            err = 0
        elif not err and msg.type in (msg.T_REPLY, msg.T_ERROR) and msg.id == request.id:
            return 0, msg
    return err, None


def _strerror(err: int) -> str:
    return "connection closed by the server" if err == ovs_util.EOF else os.strerror(err)


def _register(helper, columns: dict[str, list[str]]) -> None:
    tables = helper.schema_json["tables"]
    for table, cols in columns.items():
        if table not in tables:
            continue  # Load_Balancer before OVN 20.12: no load balancer is ever seen
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
                 on_resync: Callable[[str], None] | None = None,
                 on_connection: Callable[[], None] | None = None, events: bool = True):
        self.cfg = cfg
        self._on_dirty = on_dirty or (lambda keys, cause: None)
        self._on_resync = on_resync or (lambda reason: None)
        self._on_connection = on_connection
        self._lock = threading.RLock()
        self._rows: dict[str, PortBindingRow] = {}
        self._names: dict[str, str] = {}  # logical_port -> uuid
        self._infra: dict[str, PortBindingRow] = {}
        self._linking: dict[str, PortBindingRow] = {}  # rows with options:peer or nat_addresses
        # model/interest.py's shaping_context of _infra and _linking (None: work it out again)
        self._shaping: tuple[frozenset[str], frozenset[str]] | None = None
        self._chassis: dict[str, str] = {}  # Chassis uuid -> name
        self._lbs: dict[str, LoadBalancerRow] = {}  # Load_Balancer uuid -> row
        self._monitor_all = cfg.ovn.monitor_all
        self._interest: Interest | None = None  # what the SB condition asks for (None: all)
        self._held: dict[str, PortBindingRow] = {}  # see _settle_deletes
        self._local = LocalOvs(system_id="")
        self._local_problems_logged: set[str] = set()
        self._view = ModelView({}, self._local, (), cfg)
        self._ctx: ev.EventContext | None = None
        self._sb_synced = threading.Event()
        self._ovs_synced = threading.Event()
        self._sb_conn: connection.Connection | None = None
        self._ovs_conn: connection.Connection | None = None
        self._stop_waiting: threading.Event | None = None  # start()'s stop flag
        self._quiet, self._timeout = False, 60.0
        self.events: list[ev.NamedEvent] = []
        if events:
            self.events = ev.make_events(self._event_context, self._dirty)

    def _event_context(self) -> ev.EventContext:
        """The views of the batch being dispatched (set before any event runs)."""
        assert self._ctx is not None, "named events run only while a batch is dispatched"
        return self._ctx

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, timeout: float = 60.0, *, quiet: bool = False,
              stop: threading.Event | None = None) -> None:
        """Connect both DBs and wait for their initial dumps; OvnError on failure, or as soon
        as `stop` is set (every wait here looks at it: a SIGTERM must not wait for a DB).
        quiet: connection retries are logged at debug level (one-shot reads, see read_snapshot)."""
        deadline = time.monotonic() + timeout
        jsonparse.install()  # python-ovs's messages through json.loads: half the peak RSS
        self._stop_waiting = stop
        self._quiet, self._timeout = quiet, timeout
        _configure_ssl(self.cfg)
        try:
            self._ovs_conn = self._connect(self.cfg.ovn.ovs_remote, "Open_vSwitch", OVS_COLUMNS,
                                           self._on_ovs_batch, deadline, leader_only=True)
            if not self._local.system_id:
                raise OvnError(
                    f"the local OVS DB ({self.cfg.ovn.ovs_remote}) has no "
                    "Open_vSwitch external_ids:system-id: this node is not an OVN chassis yet "
                    "(set it as for ovn-controller: ovs-vsctl set open . external_ids:system-id=NAME)")
            # The first reply brings the Chassis names and the infrastructure rows; the rows of
            # this chassis and of its gateways' tenant networks follow (_update_condition).
            initial = {} if self._monitor_all else {PB: sb_condition(None, None)}
            self._sb_conn = self._connect(",".join(self.cfg.ovn.sb_remotes), "OVN_Southbound",
                                          SB_COLUMNS, self._on_sb_batch, deadline, leader_only=False,
                                          conditions=initial, lean={PB: SB_COLUMNS[PB]})
            self.wait_initial_sync(max(0.0, deadline - time.monotonic()))
        except BaseException:
            self.stop()
            raise

    def _connect(self, remote: str, schema: str, columns, on_batch, deadline: float,
                 leader_only: bool, conditions: dict | None = None,
                 lean: dict | None = None) -> connection.Connection:
        helper = _fetch_helper(remote, schema, deadline, quiet=self._quiet, timeout=self._timeout,
                               stop=self._stop_waiting)
        _register(helper, columns)
        idl = _BatchIdl(remote, helper, on_batch, lean=lean, leader_only=leader_only,
                        on_connection=self._on_connection)
        for table, cond in (conditions or {}).items():
            idl.cond_change(table, cond)  # sent with the first monitor request
        conn = connection.Connection(idl, timeout=max(1.0, deadline - time.monotonic()))
        try:
            conn.start()  # returns once the initial dump has been processed
        except Exception as e:
            raise OvnError(f"no initial dump of {schema} from {remote}: {e}") from e
        return conn

    def wait_initial_sync(self, timeout: float) -> None:
        """Block until the first full dump of every monitored table has been mirrored."""
        end = time.monotonic() + timeout
        stop = self._stop_waiting
        for name, flag in (("local OVS DB", self._ovs_synced), ("Southbound DB", self._sb_synced)):
            while not flag.wait(min(0.2, max(0.0, end - time.monotonic()))):
                if stop is not None and stop.is_set():
                    raise OvnError(f"stopped while waiting for the {name}")
                if time.monotonic() >= end:
                    raise OvnError(f"the {name} was not read within {timeout:.0f}s")

    def stop(self) -> None:
        for conn in (self._sb_conn, self._ovs_conn):
            if conn is not None:
                conn.stop(timeout=5)
        self._sb_conn = self._ovs_conn = None

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
                            chassis_names=frozenset(self._chassis.values()),
                            load_balancers=dict(self._lbs))

    def changes(self, keys: Iterable[Hashable]) -> Changes:
        """The current values for dirty keys, for ModelCache.update()."""
        with self._lock:
            pbs = {}
            lbs = {}
            local = chassis = None
            for k in keys:
                if k == ev.LOCAL_OVS_KEY:
                    local = self._local
                elif k == ev.CHASSIS_KEY:
                    chassis = frozenset(self._chassis.values())
                elif isinstance(k, str) and k.startswith(LB_KEY_PREFIX):
                    u = k[len(LB_KEY_PREFIX):]
                    lbs[u] = self._lbs.get(u)
                elif isinstance(k, str):
                    pbs[k] = self._rows.get(k)
            return Changes(port_bindings=pbs, local=local, chassis_names=chassis, load_balancers=lbs)

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
                LOG.log(logging.DEBUG if self._quiet else logging.WARNING, "local OVS DB: %s", clip(p))
        self._local_problems_logged = set(problems)
        first = not self._ovs_synced.is_set()
        if local != self._local:
            new_id = local.system_id != self._local.system_id
            with self._lock:
                self._local = local
                self._view = self._model_view()
            if new_id:
                self._refresh_condition()
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
        chassis_notices = [(e, u, r) for t, e, u, r in notices if t == "Chassis"]
        pb_notices = [(u, r) for t, _e, u, r in notices if t == PB]
        lb_notices = [(e, u, r) for t, e, u, r in notices if t == LB]
        with self._lock:
            reread = idl.cleared or (resynced and first)
            renamed = self._apply_chassis(idl, chassis_notices, reread)
            lbs_changed = self._apply_lbs(idl, lb_notices, reread)
            last_seen: dict[str, PortBindingRow]
            if reread:
                changed, last_seen = self._reload_all(idl), {}
            else:
                changed, last_seen = self._apply_notices(pb_notices)
            if renamed:
                _merge(changed, self._reconvert(idl, renamed))
            infra_changed = any(r is not None and r.type in INFRA_TYPES
                                for pair in changed.values() for r in pair)
            # The condition names this chassis' Chassis row: only that row matters of the
            # Chassis table (a chassis elsewhere joining or leaving changes nothing here). Rows
            # bound here and infrastructure rows can widen or narrow it (model/interest.py).
            me = self._local.system_id
            shaped = first or me in renamed or any(self._shapes(r, me)
                                                   for pair in changed.values() for r in pair)
            left = self._settle(idl, changed, shaped, last_seen)
            changed = {u: (o, n) for u, (o, n) in changed.items() if o != n}
            pre_view = self._view
            if infra_changed or any(r.chassis in renamed for r in self._infra.values()):
                self._view = self._model_view()
            elif renamed:  # no infrastructure row is bound to it: the topology stands
                self._view = self._view.with_chassis(self._chassis.values())
            pre_overlay: dict[str, PortBindingRow | None] = {}
            for _old, new in changed.values():
                if new is not None:
                    pre_overlay.setdefault(new.logical_port, None)
            for old, _new in changed.values():
                if old is not None:
                    pre_overlay[old.logical_port] = old
            self._ctx = ev.EventContext(
                pre=pre_view, post=self._view,
                pre_row=ev.row_lookup(self._rows, self._names, pre_overlay),
                post_row=ev.row_lookup(self._rows, self._names))
            # Named in this thread, with this batch's views: the cause is known before the
            # rows reach the work queue (below), so the loop never waits for it. Rows that left
            # the condition are not events in the SB.
            events_for = {u: c for u, c in changed.items() if u not in left}
            partners = {} if self._monitor_all else self._completed_partners(events_for)
            events_for.update(partners)
            # Not during the initial load: its events are never run (below), and each match
            # kept the row's IPs in the event until run (~440 B per row, for ever).
            fired = (ev.dispatch(self.events, events_for)
                     if events_for and not resynced and not first else [])
        if resynced or len(notices) >= BIG_BATCH:
            release_freed_memory()
        if first:
            # Complete only once the server applied the condition the data asks for (the
            # first reply carries the infrastructure rows; this chassis' rows follow).
            if not idl.condition_pending:
                self._sb_synced.set()
                LOG.info("Southbound read: %d Port_Binding rows (%s), %d chassis, %d load balancers",
                         len(self._rows), "whole table" if self._monitor_all else "conditional",
                         len(self._chassis), len(self._lbs))
            return
        for event, kind, row, old in fired:
            event.run(kind, row, old)
        if renamed:
            self._dirty({ev.CHASSIS_KEY}, "Chassis")
        if lbs_changed:
            self._dirty({LB_KEY_PREFIX + u for u in lbs_changed}, LB)
        if changed or partners:
            self._dirty(set(changed) | set(partners), "Port_Binding")
        if resynced:
            how = "re-read" if idl.cleared else "caught up with the changes (monitor_cond_since)"
            self._on_resync(f"Southbound DB reconnected: {how}")

    def _completed_partners(self, changed: dict) -> dict:
        """The mirrored patch rows whose peer arrived or changed in this batch, as unchanged
        (row, row) pairs: under the condition a router interface and its peer arrive one
        condition round apart (the peer is asked for by name once the router's rows are here),
        so what the pair means (e.g. a subnet now exposed) is named on the row that was already
        here, by comparing the views before and after, as for a peer set by northd."""
        out = {}
        for _old, new in changed.values():
            if new is None or new.type != "patch":
                continue
            uuid = self._names.get(new.options.get("peer", ""))
            row = self._rows.get(uuid) if uuid is not None else None
            if row is not None and uuid not in changed:
                out[uuid] = (row, row)
        return out

    def _model_view(self) -> ModelView:
        """The model's topology of the mirror (for the events); call with the lock held."""
        return ModelView(self._infra, self._local, self._chassis.values(), self.cfg)

    def _apply_notices(self, pb_notices: list) -> tuple[dict, dict[str, PortBindingRow]]:
        """Mirror (uuid, lean record or None once deleted) notices; return the changed rows and
        each deleted row as it was just before its delete (`changed` keeps the first old)."""
        changed: dict = {}
        last_seen: dict[str, PortBindingRow] = {}
        for uuid, rec in pb_notices:
            new = None if rec is None else port_binding_from_record(uuid, rec, self._chassis)
            old = self._rows.get(uuid)
            if new is None and old is not None:
                last_seen[uuid] = old
            if old != new:
                _merge(changed, {uuid: (old, new)})
                self._apply(uuid, old, new)
        return changed, last_seen

    def _apply_chassis(self, idl, notices: list, reread: bool) -> set[str]:
        """Update the Chassis names; return the names (and unknown-uuid strings) whose Port_Binding
        rows must be converted again: only rows bound to a chassis that came, went or changed."""
        if reread:
            fresh = {str(r.uuid): _scalar(r, "name", "") for r in idl.tables["Chassis"].rows.values()}
            notices = [(ovs_idl.ROW_DELETE, u, None) for u in self._chassis.keys() - fresh.keys()] + \
                      [(ovs_idl.ROW_CREATE, u, n) for u, n in fresh.items()]
        else:
            notices = [(e, u, None if e == ovs_idl.ROW_DELETE else _scalar(r, "name", ""))
                       for e, u, r in notices]
        affected: set[str] = set()
        for event, uuid, name in notices:
            old = self._chassis.get(uuid)
            new = None if event == ovs_idl.ROW_DELETE else name
            if old == new:
                continue
            if new is None:
                del self._chassis[uuid]
            else:
                self._chassis[uuid] = new
            affected |= {x for x in (old, new, uuid) if x is not None}
        return affected

    def _apply_lbs(self, idl, notices: list, reread: bool) -> set[str]:
        """Mirror the Load_Balancer rows; return the uuids whose row came, went or changed."""
        if LB not in idl.tables:
            return set()
        if reread:
            fresh = {str(r.uuid): load_balancer_from_idl(r) for r in idl.tables[LB].rows.values()}
        else:
            fresh = dict(self._lbs)
            for event, uuid, row in notices:
                if event == ovs_idl.ROW_DELETE:
                    fresh.pop(uuid, None)
                else:
                    fresh[uuid] = load_balancer_from_idl(row)
        changed = {u for u in self._lbs.keys() | fresh.keys() if self._lbs.get(u) != fresh.get(u)}
        self._lbs = fresh
        return changed

    def _reconvert(self, idl, names: set[str]) -> dict:
        """Convert again the mirrored rows bound to one of `names` (see _apply_chassis)."""
        rows = idl.lean[PB].rows
        changed = {}
        for uuid in [u for u, r in self._rows.items() if r.chassis in names]:
            rec = rows.get(uuid)
            if rec is None:
                continue  # its delete comes with the notices
            old, new = self._rows[uuid], port_binding_from_record(uuid, rec, self._chassis)
            if old != new:
                changed[uuid] = (old, new)
                self._apply(uuid, old, new)
        return changed

    def _shapes(self, row: PortBindingRow | None, me: str) -> bool:
        """Whether this (old or new) row of the batch can change the interest: as
        shapes_interest() says, except for a row inert_here() accepts (a VM port bound here
        on a provider network: most events of a big node), so such an event costs O(change)
        and not a pass over every row (interest())."""
        if row is None or not shapes_interest(row, me):
            return False
        if self._shaping is None:
            self._shaping = shaping_context(self._infra.values(), self._linking.values())
        return not inert_here(row, me, *self._shaping)

    def _update_condition(self, idl: _BatchIdl) -> None:
        """Ask the server for the rows the model can use now (model/interest.py). Called with
        the SB connection's lock held (the SB IDL thread, or the OVS one via _refresh_condition)."""
        if self._monitor_all:
            return
        with self._lock:
            want = interest(self._rows.values(), self._local.system_id)
            me = next((str(u) for u, n in self._chassis.items() if n == want.chassis), None) \
                if want.chassis else None
            self._interest = want
        cond = sb_condition(me, want)
        if idl.tables[PB].condition_state.latest != cond:
            LOG.info("Southbound condition: Port_Bindings of type %s, bound to %s (Chassis %s), "
                     "on %d router/tenant datapaths, %d ports by name",
                     "/".join(sorted(ALWAYS_TYPES)), want.chassis or "-", me or "not registered",
                     len(want.datapaths), len(want.names))
            idl.cond_change(PB, cond)

    def _refresh_condition(self) -> None:
        """The system-id changed (OVS IDL thread): recompute the SB condition and wake the SB
        connection's thread, which sends it (python-ovs sends a condition from run() only; a
        quiet Southbound may not wake that thread for good: no inactivity probe on a unix
        socket)."""
        conn = self._sb_conn
        if conn is not None and self._sb_synced.is_set():
            with conn.lock:
                self._update_condition(conn.idl)
            wake(conn)

    def _settle(self, idl: _BatchIdl, changed: dict, shaped: bool,
                last_seen: Mapping[str, PortBindingRow]) -> set[str]:
        """Update the condition (when a row of this batch can shape it) and settle the deletes
        against it; returns the deleted rows that left the condition.

        The interest is always that of the rows the model sees: when settling puts rows back
        (held) or drops held rows, it is worked out again, and the rows it then wants are
        settled again, until it stands. A condition computed without a held row would never
        ask for what that row leads to (a gateway port's peer, by name) once the server sends
        the row again unchanged (no change, no recomputation): the mirror would stay short."""
        if shaped:
            self._update_condition(idl)
        # only this batch's deletes can be held (not the held rows dropped on an ack), each as
        # it was last seen
        deleted = {u: last_seen.get(u, old) for u, (old, new) in changed.items()
                   if new is None and old is not None}
        left, moved = self._settle_deletes(idl, changed, deleted)
        for _ in range(len(deleted) + 1):  # each round holds more of `deleted`, or ends
            if not moved or self._monitor_all:
                break
            before = self._interest
            self._update_condition(idl)
            if self._interest == before:
                break
            left, moved = self._settle_deletes(
                idl, changed, {u: r for u, r in deleted.items() if u not in self._held})
        return left

    def _settle_deletes(self, idl: _BatchIdl, changed: dict,
                        deleted: Mapping[str, PortBindingRow]) -> tuple[set[str], bool]:
        """Never withdraw on a condition artefact. A delete of a row the current interest still
        wants, while a condition change is in flight, may come from an older, narrower
        condition: the row is kept (as it was last seen) until the server acknowledged the
        latest condition, then dropped only if the store really lost it. Returns the deleted
        rows outside the interest (they left the condition; by construction the model does not
        use them) and whether rows were kept or dropped here (the interest must follow)."""
        want = self._interest
        pending = idl.condition_pending
        left: set[str] = set()
        moved = False
        for uuid, last in deleted.items():
            if want is None:  # monitor_all: the view has every row, nothing to hold
                break
            if not wanted(last, want):
                left.add(uuid)
            elif pending and last.type not in ALWAYS_TYPES:
                LOG.debug("Port_Binding %s (%s) left the view during a condition change; kept "
                          "until the change is acknowledged", uuid, last.logical_port)
                self._held[uuid] = last
                self._apply(uuid, None, last)
                first_old = changed.pop(uuid)[0]
                if first_old != last:
                    changed[uuid] = (first_old, last)
                moved = True
        if not pending and self._held:
            rows = idl.lean[PB].rows
            for uuid, last in list(self._held.items()):
                del self._held[uuid]
                if rows.get(uuid) is None and self._rows.get(uuid) is last:
                    self._apply(uuid, last, None)
                    _merge(changed, {uuid: (last, None)})
                    moved = True
        return left, moved

    def _reload_all(self, idl) -> dict:
        """Re-mirror every Port_Binding row the IDL has (first read, or re-read after a reconnect)."""
        fresh = {u: port_binding_from_record(u, rec, self._chassis)
                 for u, rec in idl.lean[PB].rows.items()}
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
            was_infra = self._infra.pop(uuid, None) is not None
            was_linking = self._linking.pop(uuid, None) is not None
            if was_infra or was_linking:
                self._shaping = None
        if new is not None:
            self._rows[uuid] = new
            self._names[new.logical_port] = uuid
            if new.type in INFRA_TYPES:
                self._infra[uuid] = new
                self._shaping = None
            if new.options.get("peer") or new.nat_addresses:
                self._linking[uuid] = new
                self._shaping = None


def _merge(changed: dict, more: dict) -> None:
    """Fold (old, new) pairs into `changed`, keeping the oldest old value."""
    for uuid, (old, new) in more.items():
        changed[uuid] = (changed[uuid][0] if uuid in changed else old, new)


@contextmanager
def _one_shot_logging():
    """A one-shot read says what failed in one line: unless debug logging was asked for, the
    OVS library's per-attempt errors and the watcher's progress lines are not shown."""
    if logging.getLogger().getEffectiveLevel() <= logging.DEBUG:
        yield
        return
    quieted = ((logging.getLogger("ovsdbapp"), logging.CRITICAL), (LOG, logging.WARNING))
    saved = [(lg, lg.level) for lg, _ in quieted]
    for lg, level in quieted:
        lg.setLevel(max(level, lg.level))
    try:
        yield
    finally:
        for lg, level in saved:
            lg.setLevel(level)


def read_snapshot(cfg: Config, timeout: float) -> Snapshot:
    """One read of both DBs (no events) for the CLI's read-only commands: gives up after
    `timeout` seconds with one OvnError, without a log line per connection attempt."""
    watcher = OvnWatcher(cfg, events=False)
    with _one_shot_logging():
        try:
            watcher.start(timeout=timeout, quiet=True)
            return watcher.snapshot()
        finally:
            watcher.stop()


def read_desired(cfg: Config, timeout: float = 30.0):
    """What this chassis must expose now, from a read-only watcher (no events): the expected
    side of `ovnbgp verify`. Raises OvnError when the DBs cannot be read."""
    from ovnbgp.model.cache import desired_state

    return desired_state(read_snapshot(cfg, timeout), cfg)

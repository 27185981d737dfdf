"""The watcher's batch logic under condition changes that overlap (OvnWatcher._on_sb_batch).

The server's side is replayed by a stand-in for the IDL (`ReplayIdl`: the lean Port_Binding
rows, the condition state, whether a change is in flight), so the exact order of the batches
that a real ovsdb-server produces only now and then (tests/vm/test_e2e.py's gateway move,
where the releasing ovn-controller overwrites the claim for a moment) is played every time:

1. the gateway (cr-lrp) is here, the router's rows and the gateway port's provider side are
   mirrored;
2. the cr-lrp's chassis is cleared for a moment: the condition narrows (the router's rows
   and the provider side are no longer wanted);
3. the cr-lrp is claimed here again, in the same batch as the server's deletes for the
   narrower condition: the router's rows are held (the interest wants them); the provider
   side must be held too and stay asked for by name, although its name comes only from a
   held row;
4. the server acknowledges and sends the rows of the latest condition again, unchanged.

At the end the mirror holds the provider side and the condition names it."""

from __future__ import annotations

from collections import namedtuple
from types import MappingProxyType

from ovs.db import idl as ovs_idl

from ovnbgp.config import Config
from ovnbgp.model.records import LocalOvs
from ovnbgp.ovn.watcher import PB, SB_COLUMNS, OvnWatcher

Record = namedtuple("Record", SB_COLUMNS[PB])  # the lean store's record (ovn/leanrows.py)
ME, ME_UUID = "node1", "11111111-1111-1111-1111-111111111111"
PUB, ROUTER = "aaaaaaaa-0000-0000-0000-000000000001", "aaaaaaaa-0000-0000-0000-000000000002"


def record(port: str, type_: str, datapath: str, *, chassis=None, peer=None, nat=()) -> Record:
    options = MappingProxyType({"peer": peer} if peer else {})
    return Record(logical_port=port, type=type_, datapath=datapath, mac=(), chassis=chassis,
                  up=None, options=options, nat_addresses=tuple(nat),
                  external_ids=MappingProxyType({}), tag=None)


ROWS = {
    "u-ln": record("ln-pub", "localnet", PUB),
    "u-cr": record("cr-lrp-r1-gw", "chassisredirect", ROUTER, chassis=ME_UUID),
    "u-gw": record("lrp-r1-gw", "patch", ROUTER, peer="gw-r1"),
    "u-side": record("gw-r1", "patch", PUB, peer="lrp-r1-gw",
                     nat=('fa:16:3e:00:00:01 172.24.4.146 is_chassis_resident("cr-lrp-r1-gw")',)),
}


class State:
    def __init__(self):
        self.latest: list = [True]


class Table:
    def __init__(self, rows=None):
        self.rows = rows if rows is not None else {}
        self.condition_state = State()


class ReplayIdl:
    """What OvnWatcher._on_sb_batch reads of a _BatchIdl; the test plays the server."""

    def __init__(self):
        self.cleared = False
        self.pending = False
        self.lean = {PB: Table()}
        self.tables = {PB: Table(), "Chassis": Table(), "Load_Balancer": Table()}
        self.sent: list[list] = []

    @property
    def condition_pending(self) -> bool:
        return self.pending

    def cond_change(self, table: str, cond: list) -> None:
        self.tables[table].condition_state.latest = cond
        self.sent.append(cond)
        self.pending = True

    def names_asked(self) -> set[str]:
        return {c[2] for c in self.tables[PB].condition_state.latest if c[0] == "logical_port"}


def watcher_with_mirror() -> tuple[OvnWatcher, ReplayIdl]:
    w = OvnWatcher(Config(), events=False)
    w._local = LocalOvs(system_id=ME)
    idl = ReplayIdl()
    w._on_sb_batch(idl, [("Chassis", ovs_idl.ROW_CREATE, ME_UUID, None)], True)  # first read
    w._chassis = {ME_UUID: ME}
    idl.lean[PB].rows = dict(ROWS)
    w._on_sb_batch(idl, [(PB, ovs_idl.ROW_CREATE, u, r) for u, r in ROWS.items()], False)
    idl.pending = False
    w._on_sb_batch(idl, [], False)  # acknowledged
    w._sb_synced.set()
    assert set(w.snapshot().port_bindings) == set(ROWS)
    assert "gw-r1" in idl.names_asked()
    return w, idl


def server_sends(idl: ReplayIdl, uuid: str, rec) -> tuple:
    rows = idl.lean[PB].rows
    if rec is None:
        rows.pop(uuid, None)
        return (PB, ovs_idl.ROW_DELETE, uuid, None)
    rows[uuid] = rec
    return (PB, ovs_idl.ROW_UPDATE, uuid, rec)


def test_a_claim_that_flickers_keeps_the_gateway_chain_and_its_peer_asked_for():
    w, idl = watcher_with_mirror()
    cleared = ROWS["u-cr"]._replace(chassis=None)
    w._on_sb_batch(idl, [server_sends(idl, "u-cr", cleared)], False)  # 2: narrows
    assert "gw-r1" not in idl.names_asked()
    # 3: claimed again, with the deletes of the narrower condition in the same batch
    w._on_sb_batch(idl, [server_sends(idl, "u-cr", ROWS["u-cr"]), server_sends(idl, "u-gw", None),
                         server_sends(idl, "u-side", None)], False)
    assert "gw-r1" in idl.names_asked(), "the held gateway port's peer is asked for by name"
    assert {"u-gw", "u-side"} <= set(w.snapshot().port_bindings), "held until acknowledged"
    # 4: the server applies the latest condition (both rows again, unchanged) and acknowledges
    idl.pending = False
    w._on_sb_batch(idl, [server_sends(idl, "u-gw", ROWS["u-gw"]),
                         server_sends(idl, "u-side", ROWS["u-side"])], False)
    assert set(w.snapshot().port_bindings) == set(ROWS)
    assert "gw-r1" in idl.names_asked()


def test_a_held_row_is_kept_as_last_seen_not_as_first_seen():
    """A row changed and then deleted in one batch is held as it was last seen: a cr-lrp that
    moved away is not brought back as bound here."""
    w, idl = watcher_with_mirror()
    idl.pending = True  # a condition change of some other row is in flight
    moved = ROWS["u-cr"]._replace(chassis="22222222-2222-2222-2222-222222222222")
    w._on_sb_batch(idl, [server_sends(idl, "u-cr", moved), server_sends(idl, "u-cr", None)], False)
    row = w.snapshot().port_bindings.get("u-cr")
    assert row is None or row.chassis != ME


def test_rows_really_deleted_are_dropped_once_acknowledged():
    w, idl = watcher_with_mirror()
    idl.pending = True
    w._on_sb_batch(idl, [server_sends(idl, "u-side", None)], False)
    assert "u-side" in w.snapshot().port_bindings  # held: the condition is in flight
    idl.pending = False
    w._on_sb_batch(idl, [], False)  # acknowledged, and the server did not send it again
    assert "u-side" not in w.snapshot().port_bindings


def test_the_idl_does_not_yield_the_cpu_per_row(monkeypatch):
    """ovsdbapp's IDL calls cooperative_yield() (time.sleep(0)) for every row of an update;
    ovnbgp's does nothing there (watcher.py, _BatchIdl.cooperative_yield)."""
    import time

    from ovsdbapp.backend.ovs_idl import connection

    from ovnbgp.ovn.watcher import _BatchIdl

    slept = []
    monkeypatch.setattr(time, "sleep", lambda s: slept.append(s))
    connection.OvsdbIdl.cooperative_yield(None)  # the library's hook: a sleep(0)
    assert slept == [0]
    _BatchIdl.cooperative_yield(None)  # type: ignore[arg-type]
    assert slept == [0]

"""The lean Port_Binding mirror (ovn/leanrows.py): row-update JSON -> records, diffs, odd JSON;
and the seam into python-ovs it relies on (ovn/watcher.py lean_seam_problem)."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest
from ovs.db import idl as ovs_idl

from ovnbgp.model.records import PORT_BINDING_OPTIONS
from ovnbgp.ovn.leanrows import EMPTY_MAP, MAP, OPTIONAL, SCALAR, SET, Column, LeanTable
from ovnbgp.ovn.watcher import SB_COLUMNS, lean_columns, lean_seam_problem, port_binding_from_record

U1 = "11111111-1111-1111-1111-111111111111"
DP = "dddddddd-dddd-dddd-dddd-dddddddddddd"
CH1 = "c1c1c1c1-0000-0000-0000-000000000001"
CH2 = "c2c2c2c2-0000-0000-0000-000000000002"
SCOPE4 = "neutron:subnet_pool_addr_scope4"

COLUMNS = {
    "logical_port": Column(SCALAR, "string"),
    "type": Column(SCALAR, "string", intern=True),
    "datapath": Column(SCALAR, "uuid", intern=True),
    "mac": Column(SET, "string"),
    "chassis": Column(OPTIONAL, "uuid", intern=True),
    "up": Column(OPTIONAL, "boolean"),
    "options": Column(MAP, "string", "string", keep=frozenset({"peer", "network_name"})),
    "nat_addresses": Column(SET, "string"),
    "external_ids": Column(MAP, "string", "string", keep=frozenset({SCOPE4})),
    "tag": Column(OPTIONAL, "integer"),
    "gone": None,  # a column the server's schema lacks
}


def uuid(u: str) -> list:
    return ["uuid", u]


def row(**cols) -> dict:
    base = {"logical_port": "vm1", "type": "", "datapath": uuid(DP), "mac": "fa:16:3e:00:00:01 10.0.0.5"}
    base.update(cols)
    return base


@pytest.fixture
def table() -> LeanTable:
    return LeanTable("Port_Binding", COLUMNS)


def insert(table: LeanTable, **cols):
    old, new = table.update2(U1, {"insert": row(**cols)})
    assert old is None
    return new


def modify(table: LeanTable, diff: dict):
    return table.update2(U1, {"modify": diff})


# -- inserts ---------------------------------------------------------------------------------


def test_an_insert_keeps_plain_values_and_defaults_for_left_out_columns(table):
    rec = insert(table, options=["map", [["peer", "rp1"], ["requested-chassis", "h1"]]],
                 external_ids=["map", [[SCOPE4, "s1"], ["neutron:device_id", "d"]]],
                 chassis=uuid(CH1), up=True, tag=["set", []])
    assert rec.logical_port == "vm1" and rec.type == "" and rec.datapath == DP
    assert rec.mac == ("fa:16:3e:00:00:01 10.0.0.5",)
    assert rec.chassis == CH1 and rec.up is True and rec.tag is None
    assert rec.options == {"peer": "rp1"}  # only the kept keys
    assert rec.external_ids == {SCOPE4: "s1"}
    assert rec.nat_addresses == () and rec.gone is None
    assert table.rows[U1] is rec


def test_initial_is_an_insert_and_left_out_columns_take_the_schema_defaults(table):
    _, rec = table.update2(U1, {"initial": {}})
    assert rec == table.default
    assert (rec.logical_port, rec.type, rec.datapath) == ("", "", "00000000-0000-0000-0000-000000000000")
    assert rec.mac == () and rec.chassis is None and rec.options is EMPTY_MAP


def test_repeated_strings_are_shared_and_kept_strings_are_not_the_parsers(table):
    reply = json.loads(json.dumps({"a": row(type="patch"), "b": row(type="patch")}))
    a = table.update2(U1, {"initial": reply["a"]})[1]
    b = table.update2("22222222-2222-2222-2222-222222222222", {"initial": reply["b"]})[1]
    assert a.datapath is b.datapath and a.type is b.type
    assert a.logical_port == "vm1" and a.logical_port is not reply["a"]["logical_port"]


def test_sets_are_sorted_as_the_server_sorts_them(table):
    rec = insert(table, nat_addresses=["set", ["b 2", "a 1"]])
    assert rec.nat_addresses == ("a 1", "b 2")


def test_an_insert_of_an_existing_row_replaces_it(table):
    insert(table)
    old, new = table.update2(U1, {"insert": row(logical_port="vm2")})
    assert old.logical_port == "vm1" and new.logical_port == "vm2"


# -- modify diffs ----------------------------------------------------------------------------


def test_a_scalar_diff_is_the_new_value(table):
    insert(table)
    old, new = modify(table, {"logical_port": "vm9", "type": "localnet"})
    assert (old.logical_port, new.logical_port, new.type) == ("vm1", "vm9", "localnet")
    assert new.mac == old.mac


def test_a_map_diff_inserts_replaces_and_removes_keys(table):
    insert(table, options=["map", [["peer", "rp1"]]])
    _, rec = modify(table, {"options": ["map", [["peer", "rp2"], ["network_name", "public"]]]})
    assert rec.options == {"peer": "rp2", "network_name": "public"}
    _, rec2 = modify(table, {"options": ["map", [["peer", "rp2"]]]})  # equal pair: removed
    assert rec2.options == {"network_name": "public"}
    assert rec.options == {"peer": "rp2", "network_name": "public"}  # records share, never change
    _, rec3 = modify(table, {"options": ["map", [["network_name", "public"]]]})
    assert rec3.options is EMPTY_MAP


def test_a_map_diff_of_keys_not_kept_changes_nothing(table):
    insert(table, external_ids=["map", [[SCOPE4, "s1"]]])
    assert modify(table, {"external_ids": ["map", [["neutron:revision_number", "7"]]]}) is None


def test_a_set_diff_toggles_its_elements(table):
    insert(table, mac=["set", ["a", "b"]])
    _, rec = modify(table, {"mac": ["set", ["a", "c"]]})
    assert rec.mac == ("b", "c")
    _, rec = modify(table, {"mac": "b"})  # a lone atom is a set of one
    assert rec.mac == ("c",)


def test_an_optional_column_diff_is_its_new_value(table):
    """Not composite (at most one value): ovsdb-server sends the new value, not a toggle."""
    insert(table)
    _, rec = modify(table, {"chassis": uuid(CH1)})
    assert rec.chassis == CH1
    _, rec = modify(table, {"chassis": uuid(CH2)})  # moved in one transaction
    assert rec.chassis == CH2
    _, rec = modify(table, {"chassis": ["set", []]})
    assert rec.chassis is None
    _, rec = modify(table, {"up": False, "tag": 100})
    assert rec.up is False and rec.tag == 100
    _, rec = modify(table, {"up": True, "tag": 200})
    assert rec.up is True and rec.tag == 200
    _, rec = modify(table, {"up": ["set", []]})
    assert rec.up is None and rec.tag == 200


def test_a_modify_that_changes_nothing_reports_nothing(table):
    insert(table)
    assert modify(table, {}) is None


# -- delete ----------------------------------------------------------------------------------


def test_delete(table):
    rec = insert(table)
    assert table.update2(U1, {"delete": None}) == (rec, None)
    assert U1 not in table.rows
    assert table.update2(U1, {"delete": None}) is None  # not mirrored: nothing to report


def test_plain_monitor_updates_are_whole_rows(table):
    _, rec = table.update1(U1, row(mac=["set", []]))
    assert rec.mac == ()
    old, rec2 = table.update1(U1, row(up=True))
    assert old is rec and rec2.up is True
    assert table.update1(U1, None) == (rec2, None)


def test_clear(table):
    insert(table)
    table.clear()
    assert table.rows == {}


# -- odd JSON: logged with the row's uuid, skipped, never raised --------------------------------


@pytest.mark.parametrize("column, value", [
    ("logical_port", 5),
    ("logical_port", ["set", ["a", "b"]]),
    ("datapath", uuid("not-a-uuid")),
    ("datapath", "dddddddd-dddd-dddd-dddd-dddddddddddd"),
    ("chassis", ["set", [uuid(CH1), uuid(CH2)]]),
    ("up", "yes"),
    ("tag", True),
    ("mac", ["map", []]),
    ("options", ["set", []]),
    ("options", ["map", [["peer"]]]),
    ("options", ["map", [["peer", 7]]]),
    ("options", {"peer": "x"}),
])
def test_a_value_of_the_wrong_type_skips_that_column(table, caplog, column, value):
    caplog.set_level(logging.WARNING)
    rec = insert(table, **{column: value})
    assert getattr(rec, column) == getattr(table.default, column)
    assert rec.logical_port == ("vm1" if column != "logical_port" else "")
    assert f"Port_Binding {U1}: column {column} skipped" in caplog.text


def test_an_odd_diff_keeps_the_column_as_it_was(table, caplog):
    before = insert(table, chassis=uuid(CH1), options=["map", [["peer", "rp1"]]])
    _, rec = modify(table, {"chassis": ["set", [uuid(CH1), uuid(CH2)]], "options": ["map", [["peer", None]]],
                            "logical_port": "vm2"})
    assert rec.chassis == CH1 and rec.options == {"peer": "rp1"} and rec.logical_port == "vm2"
    assert before.logical_port == "vm1"
    assert caplog.text.count(U1) == 2


@pytest.mark.parametrize("update", [
    {"modify": {"logical_port": "x"}},  # a row never inserted
    {"insert": ["logical_port", "x"]},
    {"frobnicate": {}},
    {"insert": {}, "delete": None},
    "delete",
])
def test_an_odd_row_update_is_skipped(table, caplog, update):
    assert table.update2(U1, update) is None
    assert U1 not in table.rows
    assert f"Port_Binding {U1}: row update skipped" in caplog.text


# -- the watcher's side ----------------------------------------------------------------------


def test_the_installed_python_ovs_has_the_seam():
    assert lean_seam_problem() is None


def test_a_python_ovs_without_the_seam_is_named():
    class Renamed(ovs_idl.Idl):
        pass

    Renamed._Idl__process_update2 = lambda self, table, uid, update2: None  # type: ignore[attr-defined]
    assert "__process_update2" in (lean_seam_problem(Renamed) or "")

    class NotCalled:
        def _Idl__process_update2(self, table, uuid, row_update):
            pass

        def _Idl__do_parse_update(self):
            pass

    assert "no longer calls __process_update2" in (lean_seam_problem(NotCalled) or "")


def test_the_schema_gives_the_record_layout():
    schema = json.loads(Path("/usr/share/ovn/ovn-sb.ovsschema").read_text())
    helper = ovs_idl.SchemaHelper(schema_json=schema)
    helper.register_columns("Port_Binding", [c for c in SB_COLUMNS["Port_Binding"] if c != "up"])
    table = helper.get_idl_schema().tables["Port_Binding"]
    cols = lean_columns(table, SB_COLUMNS["Port_Binding"])
    assert cols["up"] is None  # not registered: as on a server before OVN 21.03
    assert (cols["logical_port"].kind, cols["datapath"].kind, cols["datapath"].atom) == (SCALAR, SCALAR, "uuid")
    assert (cols["chassis"].kind, cols["tag"].kind, cols["mac"].kind) == (OPTIONAL, OPTIONAL, SET)
    assert cols["options"].kind == MAP and cols["options"].keep == PORT_BINDING_OPTIONS
    assert cols["datapath"].intern and not cols["logical_port"].intern


def test_a_record_becomes_the_models_row():
    lean = LeanTable("Port_Binding", COLUMNS)
    _, rec = lean.update2(U1, {"insert": row(type="patch", chassis=uuid(CH1), tag=5,
                                             external_ids=["map", [[SCOPE4, "s1"]]])})
    pb = port_binding_from_record(U1, rec, {CH1: "ch1"})
    assert (pb.uuid, pb.logical_port, pb.type, pb.datapath, pb.chassis) == (U1, "vm1", "patch", DP, "ch1")
    assert pb.external_ids == {SCOPE4: "s1"} and pb.tag is None  # a tag only for localnet
    assert port_binding_from_record(U1, rec, {}).chassis == CH1  # unknown: the uuid, reported
    assert pb.up is None  # the column is empty


def test_the_model_reads_no_port_binding_option_the_mirror_drops():
    """The mirror keeps only PORT_BINDING_OPTIONS: every options key the model reads must be one."""
    model = Path(__file__).resolve().parents[2] / "ovnbgp" / "model"
    used: set[str] = set()
    for path in model.glob("*.py"):
        text = path.read_text()
        used |= set(re.findall(r'options\.get\(\s*"([^"]+)"', text))
        used |= set(re.findall(r'options\[\s*"([^"]+)"\s*\]', text))
        used |= set(re.findall(r'"([^"]+)"\s+(?:not\s+)?in\s+\w+\.options\b', text))
    assert used and used <= PORT_BINDING_OPTIONS, used - PORT_BINDING_OPTIONS

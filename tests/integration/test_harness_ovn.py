"""The OVN harness gives a real NB -> northd -> SB pipeline, readable through ovsdbapp."""

from __future__ import annotations

import os

import pytest
from ovsdbapp.backend.ovs_idl import connection, idlutils
from ovsdbapp.schema.ovn_southbound import impl_idl

from tests.harness.ovn import OvnCentral
from tests.harness.proc import DaemonError, wait_for

ADDRESSES = "fa:16:3e:00:00:01 172.24.4.10 2001:db8::10"


@pytest.fixture
def sb_api(ovn_central):
    helper = idlutils.get_schema_helper(ovn_central.sb_remote, "OVN_Southbound")
    helper.register_all()
    conn = connection.Connection(connection.OvsdbIdl(ovn_central.sb_remote, helper), timeout=20)
    api = impl_idl.OvnSbApiIdlImpl(conn)
    try:
        yield api
    finally:
        conn.stop(timeout=5)


def test_nb_port_reaches_sb_port_binding(ovn_central, sb_api):
    ovn_central.nbctl("ls-add", "public")
    ovn_central.nbctl("lsp-add", "public", "vm1")
    ovn_central.nbctl("lsp-set-addresses", "vm1", ADDRESSES)
    ovn_central.sync()

    # The IDL's connection thread applies updates asynchronously; poll its cache briefly.
    rows = wait_for(
        lambda: sb_api.db_find_rows("Port_Binding", ("logical_port", "=", "vm1")).execute(
            check_error=True),
        timeout=10, what="Port_Binding vm1 in the SB IDL",
        details=lambda: ovn_central.sbctl("list", "Port_Binding"))
    assert len(rows) == 1
    pb = rows[0]
    assert pb.logical_port == "vm1"
    assert pb.type == ""
    assert pb.mac == [ADDRESSES]
    assert pb.chassis == []
    assert pb.datapath.external_ids.get("name") == "public"


def test_lsp_bind_sets_chassis(ovn_central):
    ovn_central.nbctl("ls-add", "public")
    ovn_central.nbctl("lsp-add", "public", "vm1", "--", "lsp-set-addresses", "vm1", ADDRESSES)
    ovn_central.sync()
    ovn_central.sbctl("chassis-add", "ch1", "geneve", "127.0.0.1")
    ovn_central.sbctl("lsp-bind", "vm1", "ch1")
    chassis_uuid = ovn_central.sbctl("--bare", "--columns=_uuid", "find", "Chassis", "name=ch1").strip()
    bound = ovn_central.sbctl("--bare", "--columns=chassis", "find", "Port_Binding",
                              "logical_port=vm1").strip()
    assert chassis_uuid and bound == chassis_uuid


def test_stop_kills_daemons_and_removes_sockets(tmp_path):
    central = OvnCentral(tmp_path / "ovn").start()
    pids = [d.pid for d in central.daemons.values()]
    rundir = central.rundir
    assert len(pids) == 3 and all(pids)
    central.stop()
    central.stop()  # idempotent
    for pid in pids:
        assert not os.path.exists(f"/proc/{pid}") or _is_zombie(pid)
    assert not rundir.exists()


def test_bad_schema_fails_loudly_naming_the_daemon(tmp_path):
    bad = tmp_path / "bad.ovsschema"
    bad.write_text('{"name": "OVN_Northbound", "tables": "not-a-table-map"}')
    central = OvnCentral(tmp_path / "ovn", nb_schema=bad)
    with pytest.raises(DaemonError) as exc:
        central.start()
    msg = str(exc.value)
    assert "ovsdb-server-nb" in msg
    assert "cannot create database" in msg
    assert "ovsdb-tool create" in msg  # the log tail shows the failing command
    assert not central.daemons and central.rundir is None


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1].startswith("Z")
    except OSError:
        return True

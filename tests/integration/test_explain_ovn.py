"""`ovnbgp explain` (the installed binary) against a real OVN: rows written by ovn-northd from
ovn-nbctl, bound with `ovn-sbctl lsp-bind`. FRR is not running here: an address the model does
not expose is still answered (exit 1) with the reason in words; FRR's state is the vm tier's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.test_ovn_model import Env

OVNBGP = os.path.join(os.path.dirname(sys.executable), "ovnbgp")


@pytest.fixture
def env(ovn_central, ovs_node):
    e = Env(ovn_central, ovs_node)
    e.setup_ovs()
    e.setup_ovn()
    yield e


def explain(env: Env, tmp_path: Path, address: str, *extra: str) -> subprocess.CompletedProcess:
    env.central.sync()
    cfg = tmp_path / "ovnbgp.toml"
    cfg.write_text("\n".join([
        "[ovn]", f"sb_remotes = [{json.dumps(env.central.sb_remote)}]",
        f"ovs_remote = {json.dumps(env.ovs.remote)}",
        "[kernel]", f"rt_tables_file = {json.dumps(str(tmp_path / 'rt_tables.conf'))}",
        "[frr]", f"vty_socket = {json.dumps(str(tmp_path))}",
        "[agent]", f"lock_file = {json.dumps(str(tmp_path / 'ovnbgp.lock'))}",
        f"state_dir = {json.dumps(str(tmp_path / 'state'))}", ""]))
    return subprocess.run([OVNBGP, "--config", str(cfg), "explain", address, "--timeout", "10", *extra],
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
                          check=False)


def uuid_of(env: Env, port: str) -> str:
    return env.central.sbctl("--bare", "--columns=_uuid", "find", "Port_Binding",
                             f"logical_port={port}").strip()


def test_port_bound_on_another_chassis(env, tmp_path):
    env.vm("public", "vm1", "fa:16:3e:00:00:01 172.24.4.10")
    env.bind("vm1", "ch2")
    cp = explain(env, tmp_path, "172.24.4.10")
    assert cp.returncode == 1, cp.stdout + cp.stderr
    assert cp.stdout.startswith("172.24.4.10/32 on chassis ch1: NOT EXPOSED\n"), cp.stdout
    assert f"VM port vm1 (Port_Binding {uuid_of(env, 'vm1')}): not exposed" in cp.stdout
    assert "- port vm1 is bound to chassis ch2, not here (ch1)" in cp.stdout


def test_port_bound_here_waiting_for_up_in_json(env, tmp_path):
    env.vm("public", "vm1", "fa:16:3e:00:00:01 172.24.4.10")
    env.bind("vm1", "ch1")
    env.central.sbctl("set", "Port_Binding", uuid_of(env, "vm1"), "up=false")
    cp = explain(env, tmp_path, "172.24.4.10", "--json")
    assert cp.returncode == 1, cp.stdout + cp.stderr
    d = json.loads(cp.stdout)
    assert d["exposed"] is False and d["exit"] == 1
    (row,) = d["southbound"]
    assert row["port_binding"] == uuid_of(env, "vm1") and row["waiting"] == "port-up"
    assert row["reasons"] == ["port vm1 is bound here but ovn-controller has not wired it yet "
                              "(waiting for up=true)"]


def test_router_gateway_on_another_chassis(env, tmp_path):
    env.router(gateways=(("ch2", 20), ("ch1", 10)))
    env.tenant("t1")
    env.bind("cr-lrp-r1-gw", "ch2")  # as ovn-controller on ch2 claims it
    cr = uuid_of(env, "cr-lrp-r1-gw")
    cp = explain(env, tmp_path, "10.0.0.0/26")
    assert cp.returncode == 1, cp.stdout + cp.stderr
    assert f"router interface (tenant subnet) lrp-r1-t1 (Port_Binding {uuid_of(env, 'lrp-r1-t1')})" \
        in cp.stdout
    assert (f"- router gateway cr-lrp-r1-gw is bound to chassis ch2, not here (ch1) (Port_Binding "
            f"{cr}): its tenant networks are exposed by that chassis") in cp.stdout


def test_malformed_row(env, tmp_path):
    env.central.nbctl("lsp-add", "public", "bad", "--", "set", "Logical_Switch_Port", "bad",
                      'addresses=["zz:16:3e:00:00:02 172.24.4.11"]')
    env.bind("bad", "ch1")
    cp = explain(env, tmp_path, "172.24.4.11")
    assert cp.returncode == 1, cp.stdout + cp.stderr
    assert f"VM port bad (Port_Binding {uuid_of(env, 'bad')}): not exposed" in cp.stdout
    assert "- mac: " in cp.stdout and "zz:16:3e:00:00:02" in cp.stdout, cp.stdout


def test_not_an_address_and_unreachable_ovn(env, tmp_path):
    cp = explain(env, tmp_path, "banana")
    assert cp.returncode == 2 and "not an IP address or prefix" in cp.stderr
    env.central.sbctl("chassis-add", "x", "geneve", "127.0.0.9")
    cfg = tmp_path / "bad.toml"
    cfg.write_text(f'[ovn]\nsb_remotes = ["unix:{tmp_path}/nothing.sock"]\n'
                   f"ovs_remote = {json.dumps(env.ovs.remote)}\n")
    cp = subprocess.run([OVNBGP, "--config", str(cfg), "explain", "172.24.4.10", "--timeout", "1"],
                        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, check=False)
    assert cp.returncode == 3 and cp.stderr.startswith("ovnbgp explain: cannot read the OVN Southbound")

"""Apply, refuse, roll back, restart detection and the CLI against a real FRR 8.4 instance.

The host kernel has no VRF device, so the VRF instance stays inactive here (FRR accepts its
config all the same); the advertisement chain itself is tested in tests/vm/test_frr_chain.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ovnbgp import config as config_mod
from ovnbgp.frr import reload
from ovnbgp.frr.manager import FrrManager
from ovnbgp.frr.paths import FrrPaths
from ovnbgp.frr.render import render, render_config
from tests.harness.frr import FrrInstance
from tests.harness.netns import unique_name
from tests.harness.proc import run, wait_for

GOLDEN = Path(__file__).parents[1] / "unit" / "golden" / "frr"
OVNBGP = os.path.join(os.path.dirname(sys.executable), "ovnbgp")


@pytest.fixture
def node(tmp_path, netns_factory):
    ns = netns_factory("frr")
    inst = FrrInstance(unique_name("node"), tmp_path / "frr", ns)
    inst.start("frr defaults traditional\nhostname node\n")
    try:
        yield inst
    finally:
        inst.stop()


def make_cfg(tmp_path: Path, inst: FrrInstance, bgp: str = "", name: str = "ovnbgp.toml") -> Path:
    path = tmp_path / name
    path.write_text(f"""
[bgp]
asn = 64999
router_id = "192.0.2.1"
peers = [{{ address = "192.0.2.2", remote_as = 65000 }}]
{bgp}
[frr]
vty_socket = "{inst.vty_dir}"
config_file = "{inst.config_path}"
daemons_file = "{tmp_path / 'daemons'}"
[agent]
state_dir = "{tmp_path / 'state'}"
""")
    return path


def applier(cfg: config_mod.Config) -> reload.FrrApplier:
    return reload.FrrApplier(FrrPaths.from_config(cfg.frr), vrf=cfg.kernel.vrf_name,
                             state_dir=cfg.agent.state_dir)


def test_golden_configs_are_valid_frr(node, tmp_path):
    """What the golden tests pin is also what FRR accepts (dry run) and can diff."""
    a = applier(config_mod.load(make_cfg(tmp_path, node)))
    for f in sorted(GOLDEN.glob("*.conf")):
        assert a.check(f) == [], f.name
        assert a.deltas(f), f.name  # a fresh FRR differs from every one of them


def test_apply_then_unchanged_without_reload(node, tmp_path):
    cfg = config_mod.load(make_cfg(tmp_path, node))
    a = applier(cfg)
    r = a.apply(render_config(cfg))
    assert r.ok and r.action == reload.RELOADED and r.deltas, r
    running = node.running_config()
    assert "route-map ovnbgp-out-v4 permit 10" in running and " import vrf ovn-bgp-vrf" in running
    assert node.config_path.read_text() == render_config(cfg)
    assert node.config_path.stat().st_mode & 0o777 == 0o640
    reloads = a.reloads
    r = a.apply(render_config(cfg))
    assert r.ok and r.action == reload.UNCHANGED and a.reloads == reloads, r
    # The state survives a new applier (agent restart) and is what `status` reads.
    b = applier(cfg)
    assert b.last_good == render_config(cfg) and b.last_result.action == reload.UNCHANGED
    assert json.loads((tmp_path / "state" / reload.LAST_RESULT_FILE).read_text())["ok"] is True
    # The operator's original frr.conf was kept once.
    assert (node.config_path.parent / "frr.conf.ovnbgp-orig").read_text().startswith("frr defaults")


def test_running_config_unchanged_skips_the_check_and_the_diff(node, tmp_path):
    """Count-first: while FRR's running config reads as when it last matched, one vtysh
    read is the whole drift check; a hand-made change brings the full comparison back."""
    cfg = config_mod.load(make_cfg(tmp_path, node))
    calls: list[list[str]] = []

    def runner(argv, **kw):
        calls.append(list(argv))
        return subprocess.run(argv, **kw)

    a = reload.FrrApplier(FrrPaths.from_config(cfg.frr), vrf=cfg.kernel.vrf_name,
                          state_dir=cfg.agent.state_dir, runner=runner)
    text = render_config(cfg)
    assert a.apply(text).action == reload.RELOADED
    calls.clear()
    r = a.apply(text)
    assert r.ok and r.action == reload.UNCHANGED, r
    assert len(calls) == 1 and calls[0][-2:] == ["-c", "show running-config"], calls
    node.configure("router bgp 64999", "no bgp router-id")
    r = a.apply(text)
    assert r.ok and r.action == reload.RELOADED and any("router-id" in d for d in r.deltas), r
    assert "bgp router-id 192.0.2.1" in node.running_config()
    node.config_path.write_text(text + "! edited by hand\n")  # the file FRR starts from
    calls.clear()
    assert a.apply(text).action == reload.UNCHANGED and len(calls) > 1  # full path again
    assert node.config_path.read_text() == text


def test_syntax_error_is_refused_and_frr_keeps_running_the_last_good(node, tmp_path):
    cfg = config_mod.load(make_cfg(tmp_path, node))
    a = applier(cfg)
    good = render_config(cfg)
    assert a.apply(good).ok
    before = node.running_config()
    bad = good + "router bgp 64999\n neighbor 192.0.2.9 remote-as banana\nexit\n"
    r = a.apply(bad)
    assert not r.ok and r.action == reload.REFUSED
    assert "remote-as banana" in r.message and "Unknown command" in r.message
    assert node.running_config() == before
    assert node.config_path.read_text() == good and a.last_good == good
    # The same refused config is not retried (no reload storm), until asked or FRR restarts.
    reloads = a.reloads
    r = a.apply(bad)
    assert r.action == reload.SKIPPED and a.reloads == reloads
    assert a.last_result.action == reload.REFUSED  # status still says why


def test_config_bgpd_refuses_is_rolled_back(node, tmp_path):
    cfg = config_mod.load(make_cfg(tmp_path, node))
    a = applier(cfg)
    good = render_config(cfg)
    assert a.apply(good).ok
    # Passes the dry run, but bgpd says "% Configure the peer-group first".
    bad = good + "router bgp 64999\n neighbor 192.0.2.9 peer-group nosuchgroup\nexit\n"
    r = a.apply(bad)
    assert not r.ok and r.action == reload.REFUSED, r
    assert "rolled back" in r.message and "peer-group" in r.message
    assert "192.0.2.9" not in node.running_config()
    assert a.deltas(node.config_path) == [] and node.config_path.read_text() == good


def test_frr_down_is_unavailable(node, tmp_path):
    cfg = config_mod.load(make_cfg(tmp_path, node))
    node.kill_daemon("bgpd")
    r = applier(cfg).apply(render_config(cfg))
    assert not r.ok and r.action == reload.UNAVAILABLE and "not running" in r.message


def test_manager_detects_restart_and_reapplies(node, tmp_path):
    cfg = config_mod.load(make_cfg(tmp_path, node))
    daemons = tmp_path / "daemons"
    daemons.write_text("bgpd=no\nbfdd=no\n")
    mgr = FrrManager(cfg)
    r = mgr.bootstrap()  # FRR already runs (the harness started it): no start, just apply
    assert r.ok and r.action == reload.RELOADED
    assert daemons.read_text() == "bgpd=yes\nbfdd=no\n"
    assert mgr.tick() is None and mgr.check_drift().action == reload.UNCHANGED

    node.restart(apply_config=False)
    assert "router bgp" not in node.running_config()
    r = wait_for(mgr.tick, timeout=20, what="restart detected")
    assert r.ok and r.action == reload.RELOADED and mgr.restarts_detected == 1
    assert "router bgp 64999" in node.running_config()
    assert mgr.tick() is None

    # Drift: a hand-made change is reverted on the next drift check, not on tick().
    node.configure("router bgp 64999", "no bgp router-id")
    assert mgr.tick() is None
    r = mgr.check_drift()
    assert r.ok and r.action == reload.RELOADED and any("router-id" in d for d in r.deltas)
    s = mgr.status()
    assert s["running"] and s["restarts_detected"] == 1 and s["last_reload"]["action"] == reload.RELOADED

    # A new agent config with the same FRR text does not reload.
    reloads = mgr.applier.reloads
    assert mgr.set_config(config_mod.load(make_cfg(tmp_path, node))) is None
    assert mgr.applier.reloads == reloads
    # A changed one does.
    r = mgr.set_config(config_mod.load(make_cfg(tmp_path, node, "maximum_paths = 4", "b.toml")))
    assert r.ok and r.action == reload.RELOADED and "maximum-paths 4" in node.running_config()


# --- the CLI -----------------------------------------------------------------------------------


def cli(cfg_path: Path, *args: str, netns: str | None = None):
    return run([OVNBGP, "--config", str(cfg_path), *args], netns=netns, check=False, timeout=120)


def test_cli_render_apply_and_verify(node, tmp_path):
    cfg_path = make_cfg(tmp_path, node)
    cp = cli(cfg_path, "frr", "render")
    assert cp.returncode == 0 and cp.stdout == render(config_mod.load(cfg_path))
    cp = cli(cfg_path, "frr", "apply", "--json")
    assert cp.returncode == 0 and json.loads(cp.stdout)["action"] == "reloaded", cp.stderr
    cp = cli(cfg_path, "frr", "apply")
    assert cp.returncode == 0 and cp.stdout.startswith("unchanged"), cp.stdout + cp.stderr

    # verify: no dummy on the host kernel, the peer is down: exit 1 naming both.
    cp = cli(cfg_path, "verify", "--from-dummy", netns=node.netns)
    assert cp.returncode == 1, cp.stdout + cp.stderr
    assert "192.0.2.2" in cp.stdout and "not Established" in cp.stdout
    assert "dummy interface 'ovn' does not exist" in cp.stdout
    cp = cli(cfg_path, "verify", "--from-dummy", "--json", netns=node.netns)
    d = json.loads(cp.stdout)
    assert cp.returncode == 1 and d["ok"] is False and d["peers"][0]["state"] != "Established"

    # FRR down: exit 3, a message, no traceback.
    node.kill_daemon("bgpd")
    cp = cli(cfg_path, "verify", "--from-dummy", netns=node.netns)
    assert cp.returncode == 3 and "bgpd is not running" in cp.stderr and "Traceback" not in cp.stderr
    cp = cli(cfg_path, "verify", "--json", "--from-dummy", netns=node.netns)
    assert cp.returncode == 3 and json.loads(cp.stdout)["ok"] is False
    cp = cli(cfg_path, "frr", "apply")
    assert cp.returncode == 1 and "unavailable" in cp.stderr


def test_cli_bad_snippet_and_missing_vtysh(node, tmp_path):
    snippet = tmp_path / "snippet.conf"
    snippet.write_text("router bgp 64999\n neighbor 192.0.2.9 remote-as banana\nexit\n")
    cfg_path = make_cfg(tmp_path, node, f'snippet_file = "{snippet}"')
    cp = cli(cfg_path, "frr", "apply")
    assert cp.returncode == 1 and "refused" in cp.stderr and "banana" in cp.stderr
    assert "Traceback" not in cp.stderr
    snippet.unlink()
    cp = cli(cfg_path, "frr", "render")
    assert cp.returncode == 1 and "bgp.snippet_file" in cp.stderr and "cannot read" in cp.stderr

    nofrr = tmp_path / "nofrr.toml"
    nofrr.write_text(make_cfg(tmp_path, node).read_text().replace(
        "[frr]", '[frr]\nvtysh = "/nonexistent/vtysh"'))
    cp = cli(nofrr, "verify", "--from-dummy")
    assert cp.returncode == 3 and "vtysh not found" in cp.stderr and "Traceback" not in cp.stderr

"""BFD profile and graceful restart, as rendered from the operator's keys, against a real FRR 8.4
(bgpd + bfdd): accepted by `vtysh -C`, applied, and FRR's running config then matches the
rendered file (`frr-reload.py --test` clean: no reload loop from a line FRR prints differently).
"""

from __future__ import annotations

import pytest

from ovnbgp import config as config_mod
from ovnbgp.frr import reload
from ovnbgp.frr.render import render_config
from tests.harness.frr import FrrInstance
from tests.harness.netns import unique_name
from tests.integration.test_frr_apply import applier, make_cfg


@pytest.fixture
def node(tmp_path, netns_factory):
    inst = FrrInstance(unique_name("bfd"), tmp_path / "frr", netns_factory("frr"),
                       daemons=("zebra", "bgpd", "bfdd"))
    inst.start("frr defaults traditional\nhostname node\n")
    try:
        yield inst
    finally:
        inst.stop()


def test_bfd_profile_and_gr_time_apply_cleanly(node, tmp_path):
    cfg = _cfg(node, tmp_path, "bfd = true\nbfd_receive_interval = 250\nbfd_transmit_interval = 200\n"
               "bfd_detect_multiplier = 4\ngraceful_restart = true\ngraceful_restart_time = 45\n")
    a = applier(cfg)
    r = a.apply(render_config(cfg))
    assert r.ok and r.action == reload.RELOADED, r
    assert a.apply(render_config(cfg)).action == reload.UNCHANGED
    running = node.running_config()
    for line in ("  receive-interval 250", "  transmit-interval 200", "  detect-multiplier 4",
                 " bgp graceful-restart restart-time 45",
                 " neighbor ovnbgp-leaves bfd profile ovnbgp"):
        assert line in running.splitlines(), (line, running)
    profile = node.vtysh("show bfd peers json")  # bfdd answers: the profile is bfdd's
    assert profile is not None


def _cfg(node: FrrInstance, tmp_path, bgp: str) -> config_mod.Config:
    return config_mod.load(make_cfg(tmp_path, node, bgp))


def test_default_timers_apply_cleanly_and_bfd_can_be_turned_off(node, tmp_path):
    """FRR leaves its defaults (300 ms x 3, restart-time 120) out of the running config: the
    rendered file must too, or every check sees drift (found in the lab: a refused config)."""
    cfg = _cfg(node, tmp_path, "bfd = true\ngraceful_restart = true\n")
    a = applier(cfg)
    r = a.apply(render_config(cfg))
    assert r.ok and r.action == reload.RELOADED, r
    assert a.apply(render_config(cfg)).action == reload.UNCHANGED
    assert " neighbor ovnbgp-leaves bfd profile ovnbgp" in node.running_config()


def test_bfd_profile_goes_with_the_config(node, tmp_path):
    """Giving FRR a config without the profile (what `ovnbgp cleanup` does with the operator's
    original) succeeds: frr-reload.py 8.4 leaves an empty `bfd` node, which is not a delta."""
    cfg = _cfg(node, tmp_path, "bfd = true\nbfd_receive_interval = 200\n")
    a = applier(cfg)
    assert a.apply(render_config(cfg)).ok
    r = a.apply("frr defaults traditional\n")
    assert r.ok, r
    running = node.running_config()
    assert "profile ovnbgp" not in running and "router bgp" not in running


@pytest.mark.parametrize("gr", [False, True])
def test_bfd_turned_off_while_bgp_stays(node, tmp_path, gr):
    """bgp.bfd true -> false with the same peers: BFD goes from the peer-group and nothing is
    left to reload. frr-reload.py 8.4 alone sends `no neighbor G bfd`, then `no neighbor G bfd
    profile P`, which turns BFD back on (without a profile): the apply is refused forever."""
    extra = "graceful_restart = true\n" if gr else ""
    a = applier(_cfg(node, tmp_path, "bfd = true\nbfd_receive_interval = 200\n" + extra))
    on = _cfg(node, tmp_path, "bfd = true\nbfd_receive_interval = 200\n" + extra)
    assert a.apply(render_config(on)).ok
    assert " neighbor ovnbgp-leaves bfd" in node.running_config().splitlines()
    off = _cfg(node, tmp_path, extra)
    r = a.apply(render_config(off))
    assert r.ok and r.action == reload.RELOADED, r
    running = node.running_config()
    assert "router bgp 64999" in running and "neighbor 192.0.2.2 remote-as 65000" in running
    assert not [ln for ln in running.splitlines() if "bfd" in ln and "neighbor" in ln], running
    assert a.apply(render_config(off)).action == reload.UNCHANGED


def test_after_an_frr_restart_bfd_goes_on_the_peers_only_once_they_are_up(node, tmp_path):
    """Graceful restart with BFD: FRR's file has no `neighbor G bfd*` (FRR 8.4 would end the
    restarted bgpd's first sessions with a Hard Reset, docs/graceful-restart.md); after a
    restart the manager keeps it so while a session is down (here: for ever, no leaf), and
    puts BFD on the peers BFD_HOLD_MAX later. An agent (re)start with FRR running BFD keeps it."""
    from ovnbgp.frr import manager as manager_mod
    from ovnbgp.frr.render import render_boot_config

    cfg = _cfg(node, tmp_path, "bfd = true\ngraceful_restart = true\n")
    now = [1000.0]
    mgr = manager_mod.FrrManager(cfg, clock=lambda: now[0])
    bfd_line = " neighbor ovnbgp-leaves bfd"
    mgr._render()
    assert mgr._apply_now().ok
    assert bfd_line in node.running_config().splitlines()
    assert node.config_path.read_text() == render_boot_config(cfg)
    assert bfd_line not in node.config_path.read_text().splitlines()
    assert mgr.tick() is None  # nothing to do: FRR runs the full config

    node.restart(apply_config=True)  # as FRR's init: the daemons, then the file
    assert bfd_line not in node.running_config().splitlines()
    r = mgr.tick()  # restart seen: BFD held, the config without it applied
    assert r is not None and r.ok and mgr._bfd_held_since is not None
    assert mgr.tick() is None  # the peer is not up: still held
    assert bfd_line not in node.running_config().splitlines()
    now[0] += manager_mod.BFD_HOLD_MAX
    r = mgr.tick()
    assert r is not None and r.ok, r
    assert bfd_line in node.running_config().splitlines()
    assert bfd_line not in node.config_path.read_text().splitlines()

    fresh = manager_mod.FrrManager(cfg, clock=lambda: now[0])  # the agent restarted
    fresh._render()
    fresh._hold_bfd_after_start()
    assert fresh._bfd_held_since is None

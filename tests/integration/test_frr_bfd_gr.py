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

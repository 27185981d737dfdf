"""Golden-file tests of the FRR config rendering.

Each case is a TOML config; its expected output is tests/unit/golden/frr/<case>.conf.
Regenerate after an intended template change with:
    OVNBGP_UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/test_frr_render.py
and review the diff. tests/integration/test_frr_render_valid.py checks the same files with FRR.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ovnbgp import config
from ovnbgp.frr import render

GOLDEN = Path(__file__).parent / "golden" / "frr"
UPDATE = os.environ.get("OVNBGP_UPDATE_GOLDEN") == "1"

SNIPPET = """\
! operator settings ovnbgp does not model
bgp as-path access-list from-leaves seq 5 permit _65001_
route-map ovnbgp-in deny 5
 match ipv6 address prefix-list nothing-here
exit
"""

CASES: dict[str, str] = {
    # Defaults: no peers yet; VRF, filters and both instances still there.
    "defaults": "",
    # Typical leaf pair: two unnumbered uplinks, eBGP.
    "unnumbered": """
[bgp]
asn = 64999
router_id = "172.30.1.1"
peers = [{ interface = "eth1" }, { interface = "eth2" }]
""",
    # Numbered sessions (v4 and v6), mixed remote AS, custom VRF name and peer-group.
    "numbered": """
[kernel]
vrf_name = "bgp-vrf"
dummy_name = "bgpdummy"
[bgp]
asn = 4200000001
peer_group = "uplinks"
peers = [
  { address = "10.0.0.1", remote_as = 65001 },
  { address = "2001:db8::1", remote_as = "internal" },
  { address = "10.0.0.5", remote_as = "external" },
]
""",
    # BFD with the operator's timers: a profile, and the peer-group using it.
    "bfd": """
[bgp]
asn = 64999
bfd = true
bfd_receive_interval = 200
bfd_transmit_interval = 150
bfd_detect_multiplier = 4
peers = [{ interface = "eth1" }, { interface = "eth2" }]
""",
    # Graceful restart with the operator's restart time (no BFD: no C-bit check).
    "graceful-restart": """
[bgp]
asn = 64999
graceful_restart = true
graceful_restart_time = 30
peers = [{ address = "192.0.2.254", remote_as = 65000 }]
""",
    # Every option on, plus the operator snippet.
    "all-options": """
[bgp]
asn = 64999
router_id = "192.0.2.1"
bfd = true
graceful_restart = true
maximum_paths = 8
snippet_file = "@SNIPPET@"
peers = [{ interface = "eth1" }, { address = "192.0.2.254", remote_as = 65000 }]
""",
}


def load_case(name: str) -> tuple[config.Config, str | None]:
    """The case's Config and its snippet text (given directly, so the golden path is stable)."""
    cfg = config.loads(CASES[name].replace("@SNIPPET@", "/etc/ovnbgp/frr-snippet.conf"))
    return cfg, (render.check_snippet(SNIPPET) if cfg.bgp.snippet_file else None)


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden(name: str) -> None:
    cfg, snippet = load_case(name)
    out = render.render(cfg, snippet)
    path = GOLDEN / f"{name}.conf"
    if UPDATE:
        path.write_text(out)
    assert path.exists(), f"{path} missing: run with OVNBGP_UPDATE_GOLDEN=1"
    assert out == path.read_text(), f"{name}: output differs from {path} (OVNBGP_UPDATE_GOLDEN=1 to update)"


def test_golden_dir_has_no_stale_files() -> None:
    assert {p.stem for p in GOLDEN.glob("*.conf")} == set(CASES)


def test_render_never_depends_on_anything_but_config() -> None:
    cfg, _ = load_case("unnumbered")
    assert render.render(cfg) == render.render(cfg)


def test_outbound_policy_shape() -> None:
    out = render.render(config.loads(""))
    # Only routes from the VRF, host routes and tenant CIDRs; never a default or link-local.
    assert "route-map ovnbgp-out-v4 permit 10\n match source-vrf ovn-bgp-vrf\n" in out
    assert "route-map ovnbgp-out-v6 permit 10\n match source-vrf ovn-bgp-vrf\n" in out
    assert "ip prefix-list ovnbgp-exposed-v4 seq 10 deny 0.0.0.0/0\n" in out
    assert "ipv6 prefix-list ovnbgp-exposed-v6 seq 15 deny fe80::/10 le 128\n" in out
    assert out.count("import vrf ovn-bgp-vrf") == 2
    assert out.count("redistribute connected") == 2
    # No second permit entry: anything not matched is denied by the implicit deny.
    assert "route-map ovnbgp-out-v4 permit 20" not in out


def test_options_off_render_nothing() -> None:
    out = render.render(config.loads("[bgp]\npeers = [{ interface = \"eth1\" }]\n"))
    for word in ("bfd", "graceful-restart", "maximum-paths", "multipath-relax", "--- operator snippet"):
        assert word not in out
    # Global router-id left to FRR; the VRF instance always has a fixed one (the bridge IP).
    assert out.count("bgp router-id") == 1
    assert "router bgp 64999 vrf ovn-bgp-vrf\n bgp router-id 1.1.1.1\n" in out


def test_no_empty_vrf_block() -> None:
    # frr-reload.py turns an empty `vrf NAME` block into `vrf-policy NAME` inside router bgp.
    out = render.render(config.loads(""))
    assert "\nvrf " not in out and "exit-vrf" not in out


def test_bfd_without_gr_has_no_cbit_check() -> None:
    out = render.render(config.loads("[bgp]\nbfd = true\n"))
    assert " neighbor ovnbgp-leaves bfd\n" in out
    assert "check-control-plane-failure" not in out


def test_bfd_defaults_fail_over_in_under_a_second() -> None:
    cfg = config.loads("[bgp]\nbfd = true\n")
    assert cfg.bgp.bfd_receive_interval * cfg.bgp.bfd_detect_multiplier < 1000
    out = render.render(cfg)
    # 250 ms x 3; FRR's own default multiplier is left out, as FRR leaves it out of its
    # running config.
    assert "bfd\n profile ovnbgp\n  receive-interval 250\n  transmit-interval 250\n exit\n" in out
    assert " neighbor ovnbgp-leaves bfd profile ovnbgp\n" in out


def test_bfd_timers_without_bfd_render_nothing() -> None:
    out = render.render(config.loads("[bgp]\nbfd_receive_interval = 100\ngraceful_restart_time = 5\n"))
    assert "bfd" not in out and "graceful-restart" not in out


def test_read_snippet(tmp_path: Path) -> None:
    p = tmp_path / "s.conf"
    p.write_text("router bgp 64999\r\n bgp log-neighbor-changes   \r\n\r\n")
    cfg = config.loads(f'[bgp]\nsnippet_file = "{p}"\n')
    assert render.read_snippet(cfg) == "router bgp 64999\n bgp log-neighbor-changes"
    out = render.render_config(cfg)
    assert f"! --- operator snippet {p} (verbatim) ---\nrouter bgp 64999\n bgp log-neighbor-changes\n" in out


def test_no_snippet_configured() -> None:
    assert render.read_snippet(config.loads("")) is None


@pytest.mark.parametrize("data, message", [
    (None, "cannot read"),
    (b"ok\n\x1b[31m red\n", "control character"),
    (b"router bgp 1\n\x00", "control character"),
    (b"\xff\xfe", "not UTF-8"),
])
def test_bad_snippet(tmp_path: Path, data: bytes | None, message: str) -> None:
    p = tmp_path / "s.conf"
    if data is not None:
        p.write_bytes(data)
    cfg = config.loads(f'[bgp]\nsnippet_file = "{p}"\n')
    with pytest.raises(render.RenderError, match=message):
        render.render_config(cfg)


def test_boot_config_holds_bfd_off_the_peers_with_graceful_restart() -> None:
    """With graceful restart and BFD, FRR starts without BFD on the peers (ovnbgp adds it once
    the sessions are up: FRR 8.4 would otherwise end the first session after a restart with
    a Hard Reset, docs/graceful-restart.md); the profile and everything else are the same."""
    cfg = config.loads("[bgp]\nbfd = true\ngraceful_restart = true\n")
    assert render.holds_bfd_until_established(cfg)
    full, boot = render.render_config(cfg), render.render_boot_config(cfg)
    held = [" neighbor ovnbgp-leaves bfd", " neighbor ovnbgp-leaves bfd profile ovnbgp",
            " neighbor ovnbgp-leaves bfd check-control-plane-failure"]
    for line in held:
        assert line in full.splitlines() and line not in boot.splitlines()
    assert [ln for ln in full.splitlines() if ln not in held] == boot.splitlines()
    assert "bfd\n profile ovnbgp\n" in boot


def test_boot_config_is_the_config_without_graceful_restart_or_bfd() -> None:
    for bgp in ("bfd = true\n", "graceful_restart = true\n", ""):
        cfg = config.loads(f"[bgp]\n{bgp}")
        assert not render.holds_bfd_until_established(cfg)
        assert render.render_boot_config(cfg) == render.render_config(cfg)

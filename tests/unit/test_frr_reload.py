"""Pure parts of the apply path: frr-reload.py --test output (captured from FRR 8.4), the delta
normalisation, the daemons file edit, the FRR start commands."""

from __future__ import annotations

from pathlib import Path

import pytest

from ovnbgp.config import FrrConfig
from ovnbgp.frr import bootstrap, reload
from ovnbgp.frr.paths import FrrPaths

DATA = Path(__file__).parent / "data" / "frr"


def test_parse_test_output_with_deltas():
    deletes, adds = reload.parse_test_output((DATA / "reload-test-output.txt").read_text())
    assert deletes[:2] == ["no hostname ovx", "no hostname vm"]
    assert "router bgp 64999\n no bgp router-id 10.9.1.1" in deletes
    assert "router bgp 64999\n address-family ipv4 unicast\n  no redistribute kernel" in deletes
    assert adds == ["router bgp 64999\n bgp router-id 10.9.1.9",
                    "router bgp 64999 vrf ovn-bgp-vrf\n bgp router-id 10.9.1.9"]


def test_converged_output_has_no_significant_delta():
    deletes, adds = reload.parse_test_output((DATA / "reload-test-output-converged.txt").read_text())
    assert deletes == ["no hostname ovx", "no hostname vm"] and adds == []
    assert reload.significant_deltas(deletes, adds, "ovn-bgp-vrf") == []


def test_significant_deltas():
    d = reload.significant_deltas(
        ["no hostname node1", "router bgp 1\n no bgp router-id 1.1.1.1"],
        ["vrf ovn-bgp-vrf", "vrf other", "router bgp 1\n bgp router-id 2.2.2.2"], "ovn-bgp-vrf")
    assert d == ["- router bgp 1\n no bgp router-id 1.1.1.1", "+ vrf other",
                 "+ router bgp 1\n bgp router-id 2.2.2.2"]


def test_parse_empty_and_noise():
    assert reload.parse_test_output("") == ([], [])
    assert reload.parse_test_output("2026 INFO: something\n") == ([], [])


def test_problem_lines_keep_frr_complaints_once():
    text = ("line 2: Failure to communicate[13] to bgpd, line:  neighbor x peer-group y\n"
            "% Configure the peer-group first\n% Configure the peer-group first\nok\n")
    assert reload._problem_lines(text) == [
        "line 2: Failure to communicate[13] to bgpd, line:  neighbor x peer-group y",
        "% Configure the peer-group first"]


def test_result_round_trip():
    r = reload.ReloadResult(time=1.5, ok=False, action=reload.REFUSED, message="m", deltas=("+ a",))
    assert reload.ReloadResult.from_dict(r.to_dict()) == r


# --- daemons file ----------------------------------------------------------------------------


DEBIAN = (DATA / "daemons.debian").read_text()


def test_enable_bgpd_in_debian_daemons_file():
    out = bootstrap.edit_daemons(DEBIAN, ["bgpd"])
    assert "bgpd=yes" in out.splitlines() and "bgpd=no" not in out.splitlines()
    # Nothing else changed: same lines except that one.
    diff = [(a, b) for a, b in zip(DEBIAN.splitlines(), out.splitlines()) if a != b]
    assert diff == [("bgpd=no", "bgpd=yes")]
    assert len(out.splitlines()) == len(DEBIAN.splitlines()) and out.endswith("\n")


def test_enable_is_idempotent_and_keeps_bfd_alone_unless_asked():
    once = bootstrap.edit_daemons(DEBIAN, ["bgpd"])
    assert bootstrap.edit_daemons(once, ["bgpd"]) == once
    assert "bfdd=no" in once.splitlines()
    both = bootstrap.edit_daemons(once, ["bgpd", "bfdd"])
    assert "bfdd=yes" in both.splitlines()


@pytest.mark.parametrize("text, expected", [
    ("", "bgpd=yes\n"),
    ("# comment\nospfd=yes", "# comment\nospfd=yes\nbgpd=yes\n"),
    ("bgpd=yes # mine\n", "bgpd=yes # mine\n"),  # already enabled: untouched
    ("  bgpd = no\n", "bgpd=yes\n"),
    ('bgpd="no"\n', "bgpd=yes\n"),
    ("#bgpd=yes\n", "#bgpd=yes\nbgpd=yes\n"),  # a comment is not a setting
    ("bgpd_options=-A 127.0.0.1\n", "bgpd_options=-A 127.0.0.1\nbgpd=yes\n"),
])
def test_edit_daemons_cases(text, expected):
    assert bootstrap.edit_daemons(text, ["bgpd"]) == expected


def test_zebra_is_never_written():
    assert "zebra" not in bootstrap.edit_daemons("", ["zebra", "bgpd"])


def test_ensure_daemons_file(tmp_path):
    f = tmp_path / "daemons"
    f.write_text(DEBIAN)
    f.chmod(0o640)
    assert bootstrap.ensure_daemons_file(f, ["bgpd"]) is True
    assert bootstrap.ensure_daemons_file(f, ["bgpd"]) is False
    assert "bgpd=yes" in f.read_text().splitlines()
    assert f.stat().st_mode & 0o777 == 0o640


def test_service_commands():
    default = FrrPaths.from_config(FrrConfig())
    inst = FrrPaths.from_config(FrrConfig(pathspace="n1"))
    assert bootstrap.service_argv(default, "start", systemd=True) == ["systemctl", "start", "frr.service"]
    assert bootstrap.service_argv(inst, "reload", systemd=True) == ["systemctl", "reload", "frr@n1.service"]
    assert bootstrap.service_argv(default, "start", systemd=False) == ["/usr/lib/frr/frrinit.sh", "start"]
    assert bootstrap.service_argv(inst, "start", systemd=False) == ["/usr/lib/frr/frrinit.sh", "start", "n1"]


def test_needed_daemons():
    from ovnbgp import config
    assert bootstrap.needed_daemons(config.loads("")) == ("bgpd",)
    assert bootstrap.needed_daemons(config.loads("[bgp]\nbfd = true\n")) == ("bgpd", "bfdd")


def test_empty_bfd_node_left_by_frr_reload_is_not_a_delta():
    # frr-reload.py 8.4 removes a bfd block with `no bfd`, then `bfd` / `no profile P`, which
    # leaves an empty `bfd` node; a profile still there is its own delta.
    assert reload.significant_deltas(["no bfd"], [], "ovn-bgp-vrf") == []
    assert reload.significant_deltas(["no bfd", "bfd\n no profile x"], [], "ovn-bgp-vrf") == [
        "- bfd\n no profile x"]


def test_forwarding_turned_on_is_not_a_delta():
    """zebra shows `no ip forwarding` until the kernel target enables forwarding (which it
    does in the first pass, beside FRR's start): deleting it is no reason to reload."""
    deletes = ["ip forwarding", "ipv6 forwarding", "router bgp 1\n no bgp router-id 1.1.1.1"]
    assert reload.significant_deltas(deletes, [], "ovn-bgp-vrf") == [
        "- router bgp 1\n no bgp router-id 1.1.1.1"]
    assert reload.significant_deltas([], ["no ip forwarding"], "ovn-bgp-vrf") == ["+ no ip forwarding"]

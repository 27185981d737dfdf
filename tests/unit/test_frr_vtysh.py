"""Parsers of vtysh JSON, on output captured from a real FRR 8.4 (tests/unit/data/frr/) and on
malformed input: every bad shape is an FrrParseError naming the command, never a KeyError."""

from __future__ import annotations

import json
from ipaddress import ip_network as net
from pathlib import Path

import pytest

from ovnbgp.config import FrrConfig
from ovnbgp.frr import vtysh
from ovnbgp.frr.paths import FrrPaths

DATA = Path(__file__).parent / "data" / "frr"
VRF = "ovn-bgp-vrf"


def load(name: str):
    return json.loads((DATA / name).read_text())


# --- summary ---------------------------------------------------------------------------------


def test_summary_established_peers():
    s = vtysh.parse_summary(load("summary.json"))
    assert s.router_id == "100.65.0.1" and s.local_as == 64999
    assert set(s.peers) == {"to-leaf-u", "100.65.0.2"}
    u = s.peers["to-leaf-u"]
    assert u.established and u.families == ("ipv4", "ipv6") and u.id_type == "interface"
    assert u.remote_as == 65000
    assert s.peers["100.65.0.2"].id_type == "ipv4"


def test_summary_peer_down():
    s = vtysh.parse_summary(load("summary-peer-down.json"))
    assert s.peers["to-leaf-u"].established
    down = s.peers["100.65.0.2"]
    assert not down.established and down.state != "Established"


def test_summary_without_bgp_instance_is_empty():
    s = vtysh.parse_summary(load("summary-no-bgp.json"))
    assert s.peers == {} and s.router_id is None


@pytest.mark.parametrize("data, words", [
    ([], "expected a JSON object"),
    ({"ipv4Unicast": {"routerId": "1.1.1.1"}}, "'peers' missing"),
    ({"ipv4Unicast": {"peers": []}}, "unexpected type list"),
    ({"ipv4Unicast": {"peers": {"p": {"remoteAs": 1}}}}, "'state' missing"),
    ({"ipv4Unicast": {"peers": {"p": "Established"}}}, "not an object"),
    ({"ipv4Unicast": {"peers": {"p": {"state": 3}}}}, "unexpected type int"),
])
def test_summary_malformed(data, words):
    with pytest.raises(vtysh.FrrParseError, match=words) as e:
        vtysh.parse_summary(data)
    assert "show bgp summary json" in str(e.value)


def test_summary_other_version_extra_keys_are_fine():
    data = {"ipv4Unicast": {"peers": {"10.0.0.1": {"state": "Established", "newKey": {}}},
                            "as": "not-an-int", "futureField": 1}}
    s = vtysh.parse_summary(data)
    assert s.peers["10.0.0.1"].established and s.local_as is None


# --- ribs --------------------------------------------------------------------------------------


def test_vrf_table_locally_originated():
    rib = vtysh.parse_rib(load("vrf-ipv4.json"), "ipv4", VRF)
    assert set(rib.routes) == {net("10.0.0.0/26"), net("172.24.4.10/32")}
    assert all(e.local and e.valid and e.best and not e.import_vrfs for e in rib.routes.values())
    rib6 = vtysh.parse_rib(load("vrf-ipv6.json"), "ipv6", VRF)
    assert set(rib6.routes) == {net("2001:db8::10/128")}


def test_default_table_imported_vs_local():
    rib = vtysh.parse_rib(load("default-ipv4.json"), "ipv4")
    imported = {p for p, e in rib.routes.items() if VRF in e.import_vrfs}
    local = {p for p, e in rib.routes.items() if e.local}
    assert imported == {net("10.0.0.0/26"), net("172.24.4.10/32")}
    # The snippet redistributes the node's own routes: local, not imported.
    assert {net("1.1.1.1/32"), net("172.24.4.0/24"), net("198.51.100.0/24")} <= local
    assert not imported & local
    rib6 = vtysh.parse_rib(load("default-ipv6.json"), "ipv6")
    assert VRF in rib6.routes[net("2001:db8::10/128")].import_vrfs
    assert rib6.routes[net("fd53:d91e:400:7f17::1/128")].local


def test_unknown_vrf_and_no_instance_give_a_warning_not_an_error():
    rib = vtysh.parse_rib(load("warning-unknown-vrf.json"), "ipv4", "nosuch")
    assert rib.routes == {} and rib.warning == "View/Vrf is unknown"
    rib = vtysh.parse_rib(load("vrf-ipv4-no-bgp.json"), "ipv4", VRF)
    assert rib.routes == {} and rib.warning


def test_invalid_paths_do_not_count():
    data = {"routes": {"10.1.0.0/24": [{"valid": False, "peerId": "(unspec)"}]}}
    e = vtysh.parse_rib(data, "ipv4").routes[net("10.1.0.0/24")]
    assert not e.valid and not e.local


@pytest.mark.parametrize("data, words", [
    ("routes", "expected a JSON object"),
    ({"vrfName": "x"}, "'routes' missing"),
    ({"routes": {"not-a-prefix": []}}, "not a prefix"),
    ({"routes": {"10.0.0.0/8": {}}}, "not a list"),
    ({"routes": {"10.0.0.0/8": ["x"]}}, "not an object"),
    ({"routes": {"2001:db8::/32": []}}, "not an ipv4 prefix"),
])
def test_rib_malformed(data, words):
    with pytest.raises(vtysh.FrrParseError, match=words):
        vtysh.parse_rib(data, "ipv4")


# --- advertised-routes ----------------------------------------------------------------------


@pytest.mark.parametrize("name, family, expected", [
    ("adv-ipv4-unnumbered.json", "ipv4", {"10.0.0.0/26", "172.24.4.10/32"}),
    ("adv-ipv4-numbered.json", "ipv4", {"10.0.0.0/26", "172.24.4.10/32"}),
    ("adv-ipv6-unnumbered.json", "ipv6", {"2001:db8::10/128"}),
    ("adv-ipv6-numbered.json", "ipv6", {"2001:db8::10/128"}),
])
def test_advertised(name, family, expected):
    a = vtysh.parse_advertised(load(name), "p", family)
    assert a.prefixes == {net(p) for p in expected} and a.warning is None


def test_advertised_without_family_is_ipv6():
    # Why the reader always names the family.
    a = vtysh.parse_advertised(load("adv-no-family.json"), "100.65.0.2", "ipv6")
    assert all(p.version == 6 for p in a.prefixes) and a.prefixes


def test_advertised_unknown_peer_warning():
    a = vtysh.parse_advertised(load("warning-unknown-peer.json"), "192.0.2.99", "ipv4")
    assert a.prefixes == frozenset() and "No such neighbor" in a.warning
    a = vtysh.parse_advertised({"malformedAddressOrName": "x y"}, "x", "ipv4")
    assert a.warning and "malformedAddressOrName" in a.warning


@pytest.mark.parametrize("data", [{"totalPrefixCounter": 0}, {"advertisedRoutes": []},
                                  {"advertisedRoutes": {"bogus": {}}}, None])
def test_advertised_malformed(data):
    with pytest.raises(vtysh.FrrParseError):
        vtysh.parse_advertised(data, "p", "ipv4")


# --- the vtysh runner (no FRR needed for these) ------------------------------------------------


def paths(**kw) -> FrrPaths:
    return FrrPaths.from_config(FrrConfig(**kw))


def test_vtysh_missing_is_unavailable(tmp_path):
    v = vtysh.Vtysh(paths(vtysh=tmp_path / "no-vtysh"))
    with pytest.raises(vtysh.FrrUnavailable, match="vtysh not found"):
        v.run("show version")


def test_no_daemon_is_unavailable(tmp_path):
    # The real vtysh, pointed at an empty run dir: "failed to connect to any daemons".
    (tmp_path / "vtysh.conf").touch()
    v = vtysh.Vtysh(paths(vty_socket=tmp_path, config_file=tmp_path / "frr.conf"))
    with pytest.raises(vtysh.FrrUnavailable, match="FRR is not running"):
        v.json("show bgp summary json")


def test_reader_refuses_odd_peer_names():
    class V:
        def json(self, cmd):  # pragma: no cover - must not be reached
            raise AssertionError(cmd)
    with pytest.raises(vtysh.FrrParseError, match="unexpected peer name"):
        vtysh.FrrReader(V()).advertised("x -c 'conf t'", "ipv4")


def test_paths_for_a_pathspace_instance():
    p = paths(pathspace="node1")
    assert p.config_file == Path("/etc/frr/node1/frr.conf")
    assert p.daemons_file == Path("/etc/frr/node1/daemons")
    assert p.run_dir == Path("/var/run/frr/node1")
    assert p.vtysh_argv()[1:] == ["--vty_socket", "/var/run/frr/node1", "--config_dir", "/etc/frr/node1"]
    assert p.systemd_unit == "frr@node1.service"
    assert p.init_script == Path("/usr/lib/frr/frrinit.sh")
    d = paths()
    assert d.run_dir == Path("/var/run/frr") and d.systemd_unit == "frr.service"


@pytest.mark.parametrize("name", ["vrf-ipv4.json", "vrf-ipv6.json", "default-ipv4.json",
                                  "default-ipv6.json", "warning-unknown-vrf.json",
                                  "vrf-ipv4-no-bgp.json", "adv-ipv4-numbered.json",
                                  "adv-ipv6-unnumbered.json", "adv-no-family.json",
                                  "warning-unknown-peer.json"])
def test_skeleton_decode_reads_the_same(name):
    """The RIB and advertised-routes outputs decoded with only RIB_FIELDS kept parse exactly
    as the full decode does (FrrReader reads them that way to stay small at 10k routes)."""
    text = (DATA / name).read_text()
    full, slim = json.loads(text), vtysh.decode_json(text, vtysh.RIB_FIELDS)
    fam = "ipv6" if "ipv6" in name or name == "adv-no-family.json" else "ipv4"
    if name.startswith(("adv-", "warning-unknown-peer")):
        assert vtysh.parse_advertised(slim, "p", fam) == vtysh.parse_advertised(full, "p", fam)
    else:
        assert vtysh.parse_rib(slim, fam, VRF) == vtysh.parse_rib(full, fam, VRF)
    assert len(json.dumps(slim)) <= len(json.dumps(full))


@pytest.mark.parametrize("stdout", [b"% Unknown command: show bgp foo json\n", b"\xff\xfe{"])
def test_an_answer_that_is_not_json_is_a_parse_error_quoting_it(tmp_path, stdout):
    import subprocess

    def runner(argv, **kw):
        assert kw.get("text") is False  # the JSON path reads bytes
        return subprocess.CompletedProcess(argv, 0, stdout=stdout, stderr=b"")
    v = vtysh.Vtysh(paths(vty_socket=tmp_path, config_file=tmp_path / "frr.conf"), runner=runner)
    with pytest.raises(vtysh.FrrParseError, match="did not return JSON"):
        v.json("show bgp foo json")

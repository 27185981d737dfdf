"""verify() over FRR state captured from a real FRR 8.4 (tests/unit/data/frr/): green when the
chain holds, and each broken link named when the inputs say one is missing."""

from __future__ import annotations

import json
from ipaddress import ip_network as net

import pytest

from ovnbgp import config
from ovnbgp.commands import verify_view as view
from ovnbgp.frr import verify as v
from ovnbgp.frr import vtysh
from ovnbgp.model.records import DesiredState, Exposure, ExposureKind
from tests.unit.frr_fixtures import EXPOSED, PEER_N, PEER_U, FixtureReader

CFG = config.loads(f"""
[bgp]
asn = 64999
peers = [{{ interface = "{PEER_U}" }}, {{ address = "{PEER_N}", remote_as = 65000 }}]
""")


def desired(*prefixes: str) -> DesiredState:
    return DesiredState(exposures=frozenset(
        Exposure(net(p), ExposureKind.TENANT_SUBNET if p == "10.0.0.0/26" else ExposureKind.PROVIDER_VM,
                 "br-ex", f"port{i}", f"row{i}") for i, p in enumerate(prefixes)))


def dummy(*prefixes: str):
    return frozenset(net(p) for p in prefixes)


def test_green():
    rep = v.verify(desired(*EXPOSED), CFG, FixtureReader(), dummy(*EXPOSED))
    assert rep.ok and rep.exit_code == 0, rep.to_dict()
    assert [str(e.prefix) for e in rep.exposures] == list(EXPOSED)  # v4 first, then v6
    for e in rep.exposures:
        assert e.on_dummy and e.in_vrf and e.imported
        assert e.advertised == {PEER_U: True, PEER_N: True}
    assert rep.exposures[0].kind == "tenant-subnet" and rep.exposures[0].port
    d = rep.to_dict()
    assert d["counts"] == {"exposures": 3, "broken": 0, "peers_down": 0, "leftovers": 0}
    assert "OK: 3 exposure(s)" in view.format_text(rep)


def test_missing_from_dummy_is_the_first_link_named():
    rep = v.verify(desired(*EXPOSED), CFG, FixtureReader(), dummy("10.0.0.0/26", "2001:db8::10/128"))
    bad = [e for e in rep.exposures if not e.ok]
    assert [str(e.prefix) for e in bad] == ["172.24.4.10/32"]
    assert bad[0].missing == ["not on the dummy interface"]
    assert rep.exit_code == 1


def test_expected_prefix_frr_never_saw():
    want = (*EXPOSED, "172.24.4.99/32")
    rep = v.verify(desired(*want), CFG, FixtureReader(), dummy(*want))
    e = {str(x.prefix): x for x in rep.exposures}["172.24.4.99/32"]
    assert e.missing == ["not locally originated in the VRF table", "not imported into the default table",
                         f"not advertised to {PEER_U}", f"not advertised to {PEER_N}"]
    assert "172.24.4.99/32" in view.format_text(rep) and "BROKEN" in view.format_text(rep)


def test_import_missing_names_the_import_link():
    # The default table as if `import vrf` were gone: only the node's own routes.
    rep = v.verify(desired(*EXPOSED), CFG, FixtureReader(**{"default-ipv4": "vrf-ipv4-no-bgp.json"}),
                   dummy(*EXPOSED))
    bad = {str(e.prefix): e.missing for e in rep.exposures if not e.ok}
    assert set(bad) == {"10.0.0.0/26", "172.24.4.10/32"}
    assert bad["172.24.4.10/32"][0] == "not imported into the default table"
    assert any("default ipv4 table" in n for n in rep.notes)


def test_peer_down_listed_and_not_required_for_advertisement():
    rep = v.verify(desired(*EXPOSED), CFG, FixtureReader(summary="summary-peer-down.json"), dummy(*EXPOSED))
    assert [p.name for p in rep.peers if not p.ok] == [PEER_N]
    assert all(e.advertised == {PEER_U: True} for e in rep.exposures)
    assert not rep.ok and rep.exit_code == 1
    text = view.format_text(rep)
    assert f"{PEER_N}" in text and "not Established" in text


def test_configured_peer_unknown_to_frr():
    cfg = config.loads('[bgp]\npeers = [{ interface = "to-leaf-u" }, { address = "192.0.2.7", remote_as = 1 }]\n')
    rep = v.verify(desired(*EXPOSED), cfg, FixtureReader(), dummy(*EXPOSED))
    missing = [p for p in rep.peers if p.state == "missing"]
    assert [p.name for p in missing] == ["192.0.2.7"] and not rep.ok


def test_leftovers_advertised_and_on_dummy():
    rep = v.verify(desired("172.24.4.10/32", "2001:db8::10/128"), CFG, FixtureReader(), dummy(*EXPOSED))
    assert [str(x.prefix) for x in rep.leftovers] == ["10.0.0.0/26"]
    assert rep.leftovers[0].where == ("dummy", f"advertised to {PEER_N}", f"advertised to {PEER_U}")
    assert all(e.ok for e in rep.exposures) and not rep.ok
    assert "Leftovers" in view.format_text(rep)


def test_no_dummy_interface_is_a_problem():
    rep = v.verify(desired(*EXPOSED), CFG, FixtureReader(), None)
    assert "does not exist" in rep.problems[0] and not rep.ok
    assert all("not on the dummy interface" in e.missing for e in rep.exposures)


def test_no_bgp_at_all():
    reader = FixtureReader(summary="summary-no-bgp.json", **{
        "vrf-ipv4": "vrf-ipv4-no-bgp.json", "vrf-ipv6": "vrf-ipv4-no-bgp.json",
        "default-ipv4": "summary-no-bgp.json", "default-ipv6": "summary-no-bgp.json"})
    rep = v.verify(desired(*EXPOSED), config.loads(""), reader, dummy(*EXPOSED))
    assert not rep.ok
    assert rep.problems == ("no BGP peer configured: nothing is advertised",)
    assert all(e.missing[-1].startswith("no Established") for e in rep.exposures)


def test_from_dummy_expectations():
    rep = v.verify(v.expected_from_prefixes(dummy(*EXPOSED)), CFG, FixtureReader(), dummy(*EXPOSED))
    assert rep.ok and {e.kind for e in rep.exposures} == {"on-dummy"}


def test_reader_errors_propagate():
    class Down:
        def summary(self):
            raise vtysh.FrrUnavailable("FRR: bgpd is not running")
    with pytest.raises(vtysh.FrrUnavailable):
        v.verify(desired(*EXPOSED), CFG, Down(), dummy(*EXPOSED))


def test_rich_output_renders():
    from rich.console import Console

    rep = v.verify(desired(*EXPOSED, "172.24.4.99/32"), CFG, FixtureReader(summary="summary-peer-down.json"),
                   dummy(*EXPOSED))
    console = Console(record=True, width=200, force_terminal=True)
    view.print_rich(rep, console)
    text = console.export_text()
    assert "172.24.4.99/32" in text and "not locally originated" in text and PEER_N in text
    assert "BROKEN" in text


def test_json_round_trip():
    rep = v.verify(desired(*EXPOSED), CFG, FixtureReader(), dummy(*EXPOSED))
    d = json.loads(json.dumps(rep.to_dict()))
    assert d["ok"] is True
    assert d["exposures"][1]["links"] == {"dummy": True, "vrf": True, "imported": True,
                                          "advertised": {PEER_U: True, PEER_N: True}}

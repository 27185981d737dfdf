"""FRR state captured from a real FRR 8.4 (tests/unit/data/frr/, see its README), as a Reader."""

from __future__ import annotations

import json
from pathlib import Path

from ovnbgp.frr import vtysh

DATA = Path(__file__).parent / "data" / "frr"
VRF = "ovn-bgp-vrf"
EXPOSED = ("10.0.0.0/26", "172.24.4.10/32", "2001:db8::10/128")
PEER_U, PEER_N = "to-leaf-u", "100.65.0.2"


def load(name: str):
    return json.loads((DATA / name).read_text())


class FixtureReader:
    """The Reader protocol over captured JSON files (names overridable per test)."""

    def __init__(self, **files: str):
        self.files = {"summary": "summary.json",
                      "vrf-ipv4": "vrf-ipv4.json", "vrf-ipv6": "vrf-ipv6.json",
                      "default-ipv4": "default-ipv4.json", "default-ipv6": "default-ipv6.json",
                      f"adv-ipv4-{PEER_U}": "adv-ipv4-unnumbered.json",
                      f"adv-ipv6-{PEER_U}": "adv-ipv6-unnumbered.json",
                      f"adv-ipv4-{PEER_N}": "adv-ipv4-numbered.json",
                      f"adv-ipv6-{PEER_N}": "adv-ipv6-numbered.json"} | files

    def summary(self):
        return vtysh.parse_summary(load(self.files["summary"]))

    def rib(self, family, vrf="default"):
        key = f"{'default' if vrf == 'default' else 'vrf'}-{family}"
        return vtysh.parse_rib(load(self.files[key]), family, vrf)

    def advertised(self, peer, family):
        return vtysh.parse_advertised(load(self.files[f"adv-{family}-{peer}"]), peer, family)

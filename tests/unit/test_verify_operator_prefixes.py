"""`ovnbgp verify` and prefixes the operator announces (bgp.snippet_file `network` statements,
e.g. the node's loopback in the lab): not ovnbgp's, so not leftovers; a stale advertisement
that nothing originates still is."""

from __future__ import annotations

import dataclasses
from ipaddress import ip_network as net

from ovnbgp.frr import verify as v
from ovnbgp.frr.vtysh import Advertised, RouteEntry
from tests.unit.frr_fixtures import EXPOSED, PEER_N, VRF, FixtureReader
from tests.unit.test_frr_verify import CFG, desired, dummy

LOOPBACK = net("10.255.1.1/32")
STALE = net("192.0.2.99/32")


class OperatorReader(FixtureReader):
    """The captured FRR state plus a loopback announced by `network` in the default instance,
    advertised to the numbered peer, and a stale prefix advertised with no path at all."""

    def __init__(self, loopback_from_vrf: bool = False):
        super().__init__()
        self.loopback_from_vrf = loopback_from_vrf

    def rib(self, family, vrf="default"):
        rib = super().rib(family, vrf)
        if family == "ipv4" and vrf == "default":
            imports = frozenset({VRF}) if self.loopback_from_vrf else frozenset()
            routes = dict(rib.routes)
            routes[LOOPBACK] = RouteEntry(LOOPBACK, valid=True, best=True, local=True,
                                          import_vrfs=imports)
            rib = dataclasses.replace(rib, routes=routes)
        return rib

    def advertised(self, peer, family):
        adv = super().advertised(peer, family)
        if family == "ipv4" and peer == PEER_N:
            adv = Advertised(adv.peer, adv.family, adv.prefixes | {LOOPBACK, STALE}, adv.warning)
        return adv


def test_operator_network_is_not_a_leftover_but_a_stale_advertisement_is():
    rep = v.verify(desired(*EXPOSED), CFG, OperatorReader(), dummy(*EXPOSED))
    assert [str(x.prefix) for x in rep.leftovers] == [str(STALE)]
    assert rep.leftovers[0].where == (f"advertised to {PEER_N}",)


def test_a_prefix_leaked_from_ovnbgps_vrf_that_ovn_does_not_expect_is_a_leftover():
    rep = v.verify(desired(*EXPOSED), CFG, OperatorReader(loopback_from_vrf=True), dummy(*EXPOSED))
    assert {str(x.prefix) for x in rep.leftovers} == {str(LOOPBACK), str(STALE)}
    assert not rep.ok


def test_operator_prefix_also_on_the_dummy_is_a_leftover():
    rep = v.verify(desired(*EXPOSED), CFG, OperatorReader(), dummy(*EXPOSED, str(LOOPBACK)))
    assert str(LOOPBACK) in {str(x.prefix) for x in rep.leftovers}

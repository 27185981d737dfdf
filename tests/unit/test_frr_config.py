"""Config values that would make an invalid FRR line are refused at config check.

Each of these passes `vtysh -C` (a dry run only parses) but bgpd refuses it or misreads it, so
config.py has to catch them (checked against FRR 8.4).
"""

from __future__ import annotations

import pytest

from ovnbgp import config


@pytest.mark.parametrize("address", [
    "fe80::1%eth0",      # bgpd: "% Create the peer-group or interface first"
    "fe80::1",           # link-local without scope: only usable by interface
    "0.0.0.0", "::", "224.0.0.1", "ff02::1", "255.255.255.255", "127.0.0.1", "::1",
])
def test_unusable_peer_address_refused(address: str) -> None:
    with pytest.raises(config.ConfigError) as e:
        config.loads(f'[bgp]\npeers = [{{ address = "{address}", remote_as = 65001 }}]\n')
    assert e.value.key == "bgp.peers[0].address"


def test_peer_interface_named_like_peer_group_refused() -> None:
    # bgpd: "% Configure the peer-group first" -- one namespace for both.
    with pytest.raises(config.ConfigError) as e:
        config.loads('[bgp]\npeer_group = "uplink"\npeers = [{ interface = "uplink" }]\n')
    assert e.value.key == "bgp.peers[0].interface"
    with pytest.raises(config.ConfigError):
        config.loads('[bgp]\npeers = [{ interface = "ovnbgp-leaves" }]\n')


def test_vrf_named_default_refused() -> None:
    # `router bgp ASN vrf default` is the global instance.
    with pytest.raises(config.ConfigError) as e:
        config.loads('[kernel]\nvrf_name = "default"\n')
    assert e.value.key == "kernel.vrf_name"


@pytest.mark.parametrize("address", ["10.0.0.1", "2001:db8::1", "192.0.2.254"])
def test_good_peer_addresses(address: str) -> None:
    cfg = config.loads(f'[bgp]\npeers = [{{ address = "{address}", remote_as = 65001 }}]\n')
    assert str(cfg.bgp.peers[0].address) == address

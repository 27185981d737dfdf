"""The BFD and graceful-restart keys: defaults, FRR's ranges, errors naming the key."""

from __future__ import annotations

import pytest

from ovnbgp import config


def test_defaults_detect_a_dead_peer_in_under_a_second():
    bgp = config.loads("").bgp
    assert (bgp.bfd_receive_interval, bgp.bfd_transmit_interval, bgp.bfd_detect_multiplier) == (250, 250, 3)
    assert bgp.graceful_restart_time == 120


def test_values_are_kept_and_round_trip():
    cfg = config.loads("[bgp]\nbfd = true\nbfd_receive_interval = 100\nbfd_transmit_interval = 50\n"
                       "bfd_detect_multiplier = 5\ngraceful_restart = true\ngraceful_restart_time = 30\n")
    assert (cfg.bgp.bfd_receive_interval, cfg.bgp.bfd_transmit_interval,
            cfg.bgp.bfd_detect_multiplier, cfg.bgp.graceful_restart_time) == (100, 50, 5, 30)
    assert config.loads(config.to_toml(cfg)) == cfg


@pytest.mark.parametrize("key, value, message", [
    ("bfd_receive_interval", "9", "expected an integer 10..60000, got 9"),
    ("bfd_transmit_interval", "60001", "expected an integer 10..60000, got 60001"),
    ("bfd_detect_multiplier", "1", "expected an integer 2..255, got 1"),
    ("bfd_detect_multiplier", "true", "expected an integer 2..255, got True"),
    ("graceful_restart_time", "0", "expected an integer 1..4095, got 0"),
    ("graceful_restart_time", '"120"', "expected an integer 1..4095, got '120'"),
    ("bfd_receive_interval", "0.3", "expected an integer 10..60000, got 0.3"),
])
def test_bad_values_name_the_key(key, value, message):
    with pytest.raises(config.ConfigError) as e:
        config.loads(f"[bgp]\n{key} = {value}\n")
    assert f"bgp.{key}" in str(e.value) and message in str(e.value)

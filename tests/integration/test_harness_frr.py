"""The FRR harness: real zebra+bgpd instances in namespaces, eBGP between them."""

from __future__ import annotations

import pytest

from tests.harness.frr import (
    FrrInstance,
    bgp_config,
    bgp_prefixes,
    wait_bgp_established,
    wait_bgp_prefix,
)
from tests.harness.netns import unique_name
from tests.harness.proc import DaemonError, run, wait_for

HOST_PREFIX = "203.0.113.7/32"


def test_session_established_both_ways(frr_pair):
    for inst, peer, remote_as in ((frr_pair.node, frr_pair.leaf_ip, frr_pair.leaf_as),
                                  (frr_pair.leaf, frr_pair.node_ip, frr_pair.node_as)):
        summary = inst.vtysh_json("show bgp summary json")
        peer_info = summary["ipv4Unicast"]["peers"][peer]
        assert peer_info["state"] == "Established", summary
        assert peer_info["remoteAs"] == remote_as


def test_connected_route_is_learned_by_the_peer(frr_pair):
    node, leaf = frr_pair.node, frr_pair.leaf
    frr_pair.node_ns.run("ip", "addr", "add", HOST_PREFIX, "dev", "lo")
    node.configure(f"router bgp {frr_pair.node_as}", "address-family ipv4 unicast",
                   "redistribute connected")

    wait_bgp_prefix(leaf, HOST_PREFIX, timeout=20)
    # bgpd lists a received path before its best-path run has marked it; wait for the mark.
    wait_for(lambda: _best_paths(leaf, HOST_PREFIX), timeout=10,
             what=f"a best path for {HOST_PREFIX} on the leaf",
             details=lambda: str(bgp_prefixes(leaf).get(HOST_PREFIX)))
    best = _best_paths(leaf, HOST_PREFIX)
    assert len(best) == 1, best
    assert best[0]["nexthops"][0]["ip"] == frr_pair.node_ip
    assert str(frr_pair.node_as) in best[0]["path"]
    # zebra of the leaf installed it in the leaf's kernel
    wait_for(lambda: "proto bgp" in frr_pair.leaf_ns.run("ip", "route", "show", HOST_PREFIX).stdout,
             timeout=10, what=f"kernel route {HOST_PREFIX} in the leaf namespace")

    # and removing the address withdraws it
    frr_pair.node_ns.run("ip", "addr", "del", HOST_PREFIX, "dev", "lo")
    wait_bgp_prefix(leaf, HOST_PREFIX, present=False, timeout=20)


def _best_paths(inst: FrrInstance, prefix: str) -> list[dict]:
    return [p for p in bgp_prefixes(inst).get(prefix, []) if p.get("bestpath")]


def test_restart_without_config_comes_back_empty_and_reapply_restores(frr_pair):
    node = frr_pair.node
    old_bgpd = node.pid_of("bgpd")
    node.restart(apply_config=False)
    assert node.pid_of("bgpd") not in (None, old_bgpd)
    assert "router bgp" not in node.running_config()
    node.apply_config()
    assert f"router bgp {frr_pair.node_as}" in node.running_config()
    wait_bgp_established(node, frr_pair.leaf_ip, timeout=30)


def test_frr_reload_targets_the_instance(frr_pair, tmp_path):
    node = frr_pair.node
    new = tmp_path / "new.conf"
    new.write_text(bgp_config("node", frr_pair.node_as, frr_pair.node_ip, frr_pair.leaf_ip,
                              frr_pair.leaf_as,
                              extra=" address-family ipv4 unicast\n"
                                    "  network 198.51.100.0/24\n exit-address-family\n"))
    run([*node.reload_args(), "--reload", str(new)], timeout=60)
    assert "network 198.51.100.0/24" in node.running_config()
    wait_bgp_prefix(frr_pair.leaf, "198.51.100.0/24", timeout=20)


def test_vtysh_pathspace_form_reaches_the_instance(frr_pair):
    node = frr_pair.node
    base = node.vty_dir.parent
    out = run(["vtysh", "--vty_socket", str(base), "--config_dir", str(base), "-N", node.name,
               "-c", "show bgp summary json"]).stdout
    assert frr_pair.leaf_ip in out


def test_bad_config_fails_loudly(tmp_path, netns_factory):
    inst = FrrInstance(unique_name("badcfg"), tmp_path / "frr", netns_factory("frr"))
    with pytest.raises(DaemonError) as exc:
        inst.start("router bgp 64999\n neighbor 192.0.2.2 remote-as banana\n")
    msg = str(exc.value)
    assert inst.name in msg and "vtysh" in msg
    assert "Unknown command" in msg and "banana" in msg
    assert inst.base is None and not inst.procs


def test_daemon_that_cannot_start_fails_loudly(tmp_path, netns_factory):
    inst = FrrInstance(unique_name("nodaemon"), tmp_path / "frr", netns_factory("frr"),
                       daemons=("zebra", "no-such-frr-daemon"))
    with pytest.raises(DaemonError) as exc:
        inst.start("hostname x\n")
    assert "no-such-frr-daemon" in str(exc.value) and inst.name in str(exc.value)
    assert inst.base is None and not inst.procs  # zebra was stopped again

"""The lab topology rules (vagrant/provision/labtool.py): addressing, names, the configs it
writes for FRR and ovnbgp, the Vagrant plan. Pure: no root, no daemons."""

from __future__ import annotations

import copy
import ipaddress
import json

import pytest

from ovnbgp import config as config_mod
from ovnbgp.frr import render as frr_render
from tests.lab.topology import TOPOLOGY_FILE, VM_TIER_HOSTS, labtool, load

RAW = json.loads(TOPOLOGY_FILE.read_text())


@pytest.fixture
def topo():
    return load()


@pytest.fixture
def vm_topo():
    return load(hosts=VM_TIER_HOSTS)


def test_full_lab_has_two_racks_of_two_nodes(topo):
    nodes = topo.by_role("node")
    assert len(nodes) == 4
    assert sorted(h.rack for h in nodes) == [1, 1, 2, 2]
    for n in nodes:
        # Dual-homed: one uplink to each of the two leaves of its rack.
        leaves = [topo.hosts[e.peer] for e in topo.uplinks(n.name)]
        assert len(leaves) == 2 and len({h.name for h in leaves}) == 2
        assert all(h.role == "leaf" and h.rack == n.rack for h in leaves)
    assert [h.name for h in topo.by_role("spine")] == ["spine"]
    assert len(topo.by_role("leaf")) == 4
    assert sorted(h.rack for h in topo.by_role("leaf")) == [1, 1, 2, 2]
    assert [h.name for h in topo.by_role("outside")] == ["outside"]
    assert [h.name for h in topo.by_role("central")] == ["central"]


def test_vm_tier_is_one_node_per_rack(vm_topo):
    assert set(vm_topo.hosts) == {"spine", "leaf1", "leaf1b", "leaf2", "leaf2b", "node1", "node2", "outside"}
    assert {vm_topo.hosts[n].rack for n in ("node1", "node2")} == {1, 2}
    # Links to hosts outside the subset are gone (leaf1 - node3, leaf2 - node4).
    assert {e.peer for e in vm_topo.ends_of("leaf1")} == {"spine", "node1"}
    assert {e.peer for e in vm_topo.ends_of("leaf1b")} == {"spine", "node1"}
    assert [e.peer for e in vm_topo.uplinks("node1")] == ["leaf1", "leaf1b"]


def test_link_addresses(topo):
    end, second = topo.uplinks("node1")
    assert second.addr4 == ipaddress.ip_interface("100.64.11.1/31") and second.bridge == "br-leaf1b"
    assert end.addr4 == ipaddress.ip_interface("100.64.1.1/31")
    assert end.peer_addr4 == ipaddress.ip_address("100.64.1.0")
    assert end.addr6 == ipaddress.ip_interface("fd00:64:1:1::2/64")
    assert end.ifname == "leaf1" and end.bridge == "br-leaf1" and end.l3_dev == "br-leaf1"
    (out,) = topo.ends_of("outside")
    assert out.addr4 == ipaddress.ip_interface("203.0.113.10/24")
    assert out.addr6 == ipaddress.ip_interface("2001:db8:ffff::10/64")
    assert out.peer_addr4 == ipaddress.ip_address("203.0.113.1")
    spine_side = next(e for e in topo.ends_of("spine") if e.peer == "outside")
    assert spine_side.advertise and spine_side.l3_dev == "outside"


def test_names_macs_and_addresses_are_unique(topo):
    macs = [e.mac for e in topo.ends]
    assert len(macs) == len(set(macs))
    for mac in macs:
        assert int(mac.split(":")[0], 16) & 1 == 0, "unicast MAC"
    for host in topo.hosts:
        names = [e.ifname for e in topo.ends_of(host)] + [e.bridge for e in topo.ends_of(host) if e.bridge]
        assert len(names) == len(set(names))
        assert all(len(n) <= 15 for n in names)
    addrs = [e.addr4.ip for e in topo.ends] + [h.loopback for h in topo.hosts.values() if h.loopback]
    assert len(addrs) == len(set(addrs))
    asns = [h.asn for h in topo.hosts.values() if h.asn]
    assert len(asns) == len(set(asns))
    assert 64999 not in asns  # distinct node ASNs, not ovnbgp's default shared by all


def test_node_net_plan_puts_the_loopback_on_the_uplink_bridge(topo):
    plan = labtool.net_plan(topo, "node2")
    assert plan.bridges == [("br-leaf2", "leaf2"), ("br-leaf2b", "leaf2b")]
    assert "address replace 10.255.2.1/32 dev br-leaf2" in plan.ip_batch
    assert "address replace fd00:255::2:1/128 dev br-leaf2 nodad" in plan.ip_batch
    assert plan.sysctls == {}  # forwarding on nodes is the agent's business
    assert plan.renames == {"52:54:00:1a:03:02": "leaf2", "52:54:00:1a:0a:02": "leaf2b"}
    # The loopback (encap IP) on both uplink bridges: tunnels come in through either.
    assert "address replace 10.255.2.1/32 dev br-leaf2b" in plan.ip_batch


def test_router_and_outside_net_plans(topo):
    spine = labtool.net_plan(topo, "spine")
    assert "address replace 10.255.0.1/32 dev lo" in spine.ip_batch
    assert spine.sysctls == {"net/ipv4/ip_forward": "1", "net/ipv6/conf/all/forwarding": "1"}
    outside = labtool.net_plan(topo, "outside")
    assert "route replace 172.16.0.0/12 via 203.0.113.1" in outside.ip_batch
    assert "route replace ::/0 via 2001:db8:ffff::1" in outside.ip_batch
    assert not any(line.startswith("route replace 0.0.0.0/0") for line in outside.ip_batch)
    assert outside.bridges == []


def test_fabric_frr_config(vm_topo):
    leaf = labtool.frr_config(vm_topo, "leaf1")
    assert "router bgp 65001" in leaf
    assert " neighbor 100.64.0.0 remote-as 65000" in leaf
    assert " neighbor 100.64.1.1 remote-as 64901" in leaf
    assert "100.64.1.3" not in leaf  # node3 is not in the vm tier
    v4, v6 = leaf.split("address-family ipv4 unicast")[1], leaf.split("address-family ipv6 unicast")[1]
    assert " neighbor 100.64.0.0 peer-group FABRIC" in leaf
    assert " neighbor 100.64.1.1 peer-group NODES" in leaf
    assert "  neighbor FABRIC activate" in v6 and "  neighbor NODES activate" in v6
    # The nodes get a default route from their leaf, in both families: originated by the
    # leaf (not default-originate: FRR 8.4 leaves it out of an enhanced route refresh), and
    # kept from the spine.
    assert "  network 0.0.0.0/0" in v4.split("exit-address-family")[0]
    assert "  network ::/0" in v6
    assert "  neighbor FABRIC route-map lab-no-default-v4 out" in v4.split("exit-address-family")[0]
    assert "  neighbor FABRIC route-map lab-no-default-v6 out" in v6
    assert "route-map lab-no-default-v4 deny 5\n match ip address prefix-list lab-no-default-v4" in leaf
    # ECMP, and the same BFD timers as the nodes.
    assert "  maximum-paths 8" in v4 and "  maximum-paths 8" in v6
    assert "bfd\n profile lab\n  receive-interval 250\n" in leaf
    assert " neighbor NODES bfd profile lab" in leaf and " neighbor FABRIC bfd profile lab" in leaf
    assert " neighbor NODES bfd check-control-plane-failure" in leaf
    # Graceful restart helpers only (FRR's default): a dead leaf's routes are dropped at once.
    assert "bgp graceful-restart" not in leaf
    spine = labtool.frr_config(vm_topo, "spine")
    assert " neighbor 100.64.0.5 remote-as 65011" in spine  # leaf1b
    assert "  network 203.0.113.0/24" in spine and "  network 2001:db8:ffff::/64" in spine
    assert "NODES" not in spine and "0.0.0.0/0" not in spine and "lab-no-default" not in spine
    with pytest.raises(labtool.TopologyError):
        labtool.frr_config(vm_topo, "node1")


def test_node_ovnbgp_config_is_valid_and_points_at_the_lab(vm_topo):
    text = labtool.ovnbgp_config(vm_topo, "node2", sb_remote="unix:/tmp/x/ovnsb_db.sock",
                                 snippet_file="/tmp/n2/etc/frr-snippet.conf",
                                 ovs_remote="unix:/tmp/o/db.sock", frr_dir="/tmp/f/node2",
                                 frr_vty="/tmp/f/node2", state_dir="/tmp/n2/state")
    cfg = config_mod.loads(text)
    assert cfg.bgp.asn == 64902
    assert cfg.bgp.router_id == ipaddress.ip_address("10.255.2.1")
    assert [(p.address, p.remote_as) for p in cfg.bgp.peers] == [
        (ipaddress.ip_address("100.64.2.0"), 65002), (ipaddress.ip_address("100.64.12.0"), 65012)]
    # ECMP over both uplinks, BFD with sub-second detection, graceful restart.
    assert cfg.bgp.maximum_paths == 8 and cfg.bgp.bfd and cfg.bgp.graceful_restart
    assert cfg.bgp.bfd_receive_interval * cfg.bgp.bfd_detect_multiplier < 1000
    assert cfg.ovn.sb_remotes == ("unix:/tmp/x/ovnsb_db.sock",)
    assert cfg.ovn.ovs_remote == "unix:/tmp/o/db.sock"
    assert str(cfg.frr.config_file) == "/tmp/f/node2/frr.conf"
    assert str(cfg.frr.daemons_file) == "/tmp/f/node2/daemons"
    assert str(cfg.frr.vty_socket) == "/tmp/f/node2"
    assert str(cfg.agent.lock_file) == "/tmp/n2/state/ovnbgp.lock"
    assert str(cfg.kernel.rt_tables_file) == "/tmp/n2/state/rt_tables.conf"
    assert str(cfg.bgp.snippet_file) == "/tmp/n2/etc/frr-snippet.conf"
    # br-ex answers the provider VMs' neighbour solicitations for their IPv6 gateway.
    assert cfg.kernel.ndp_proxy == (ipaddress.ip_address(vm_topo.scenario["provider"]["gateway6"]),)
    # A real node (Vagrant): ovnbgp's defaults, SB over TCP to the central's mgmt address.
    cfg = config_mod.loads(labtool.ovnbgp_config(load(), "node3", sb_remote=load().sb_remote_tcp(),
                                                 snippet_file="/etc/ovnbgp/frr-snippet.conf"))
    assert cfg.ovn.sb_remotes == ("tcp:192.168.100.10:6642",)
    assert cfg.frr == config_mod.FrrConfig() and cfg.agent == config_mod.AgentConfig()


def test_snippet_extends_ovnbgps_own_route_maps(vm_topo):
    """The lab's snippet adds entries to ovnbgp's outbound route-maps: their names must match
    what ovnbgp renders (a rename in render.py must fail here, not silently in the lab)."""
    assert labtool.OVNBGP_RMAP_OUT_V4 == frr_render.NAMES.rmap_out_v4
    assert labtool.OVNBGP_RMAP_OUT_V6 == frr_render.NAMES.rmap_out_v6
    snippet = labtool.frr_snippet(vm_topo, "node1")
    cfg = config_mod.loads(labtool.ovnbgp_config(vm_topo, "node1", sb_remote="unix:/x",
                                                 snippet_file="/x/s.conf"))
    text = frr_render.render(cfg, frr_render.check_snippet(snippet))
    assert f"route-map {frr_render.NAMES.rmap_out_v4} permit 10" in text
    assert "route-map ovnbgp-out-v4 permit 5\n match ip address prefix-list lab-loopback-v4" in text
    assert "  network 10.255.1.1/32" in text and "  network fd00:255::1:1/128" in text
    assert text.count("router bgp 64901\n") == 2  # ovnbgp's and the snippet's (frr-reload merges)


def test_ovs_setup_args(vm_topo):
    args = labtool.ovs_setup_args(vm_topo, "node1", "unix:/tmp/sb.sock", "netdev")
    assert 'external_ids:system-id="node1"' in args
    assert 'external_ids:ovn-encap-ip="10.255.1.1"' in args
    assert 'external_ids:ovn-set-local-ip="true"' in args
    assert 'external_ids:ovn-bridge-mappings="public:br-ex"' in args
    assert 'external_ids:ovn-remote="unix:/tmp/sb.sock"' in args
    assert args[-3:] == ["Bridge", "br-ex", "datapath_type=netdev"]


def test_vagrant_plan_wires_both_ends_of_every_link(topo):
    plan = labtool.vagrant_plan(topo)
    vms = {vm["name"]: vm for vm in plan["vms"]}
    assert set(vms) == set(topo.hosts)
    ends = {}
    for vm in plan["vms"]:
        for link in vm["links"]:
            ends[(vm["name"], link["peer"])] = link
    ports = [link["local_port"] for link in ends.values()]
    assert len(ports) == len(set(ports))
    for (a, b), link in ends.items():
        assert ends[(b, a)]["remote_port"] == link["local_port"]
        assert ends[(b, a)]["local_port"] == link["remote_port"]
    assert vms["node1"]["provision"] == [["install.sh", "node"], ["net.sh", "node1"],
                                         ["ovn-node.sh", "node1"], ["frr.sh", "node1"],
                                         ["agent.sh", "node1"]]
    assert vms["central"]["mgmt"] == "192.168.100.10"
    assert vms["central"]["links"] == []


def _broken(mutate):
    data = copy.deepcopy(RAW)
    mutate(data)
    return data


@pytest.mark.parametrize("mutate, where", [
    (lambda d: d["hosts"].update({"Bad_Name": {"role": "outside"}}), "hosts.Bad_Name"),
    (lambda d: d["hosts"]["leaf2"].update({"asn": 65001}), "hosts.leaf2.asn"),
    (lambda d: d["hosts"]["node1"].update({"role": "router"}), "hosts.node1.role"),
    (lambda d: d["hosts"]["node1"].update({"loopback": "10.255.1.300"}), "hosts.node1.loopback"),
    (lambda d: d["links"][0].update({"b": "nowhere"}), "links[0].b"),
    (lambda d: d["links"][0].update({"net4": "100.64.0.1/31"}), "links[0].net4"),
    (lambda d: d["links"][6].update({"b_host": 255}), "links[6].b_host"),
    (lambda d: d["links"].__setitem__(2, {**d["links"][2], "b": "node3"}), "links[4]"),
    (lambda d: [d["links"].pop(i) for i in (9, 2)], "hosts.node1"),
    (lambda d: d["links"][9].update({"a": "leaf2b"}), "hosts.node1"),  # a leaf of rack 2
    (lambda d: d.update({"bgp": {"maximum_paths": "8"}}), "bgp.maximum_paths"),
    (lambda d: d.update({"bgp": {"bdf": True}}), "bgp.bdf"),
])
def test_bad_topologies_are_refused_naming_the_place(mutate, where):
    with pytest.raises(labtool.TopologyError) as e:
        labtool.parse(_broken(mutate))
    assert where in str(e.value)


def test_lab_hosts_environment_selects_a_subset(monkeypatch):
    monkeypatch.setenv("LAB_HOSTS", "spine,leaf2,node2")
    topo = labtool.load(TOPOLOGY_FILE)
    assert list(topo.hosts) == ["spine", "leaf2", "node2"]
    monkeypatch.setenv("LAB_HOSTS", "spine,nodeX")
    with pytest.raises(labtool.TopologyError, match="nodeX"):
        labtool.load(TOPOLOGY_FILE)


def test_command_line(capsys, monkeypatch):
    monkeypatch.setenv("LAB_TOPOLOGY", str(TOPOLOGY_FILE))
    monkeypatch.delenv("LAB_HOSTS", raising=False)
    assert labtool.main(["role", "leaf2"]) == 0
    assert capsys.readouterr().out == "leaf\n"
    assert labtool.main(["hosts", "--role", "node"]) == 0
    assert capsys.readouterr().out.split() == ["node1", "node2", "node3", "node4"]
    assert labtool.main(["role", "nosuch"]) == 2
    assert "unknown host 'nosuch'" in capsys.readouterr().err
    assert labtool.main(["frr-daemons"]) == 0
    assert capsys.readouterr().out.split() == ["bgpd", "bfdd"]
    assert labtool.main(["ovn-listen"]) == 0
    assert capsys.readouterr().out.split() == ["ptcp:6641:0.0.0.0", "ptcp:6642:0.0.0.0"]

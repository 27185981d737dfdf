"""The spine-leaf lab itself, before any ovnbgp agent runs (tests/lab, vagrant/topology.json).

One lab per vm session (the `lab` fixture): spine, leaf1 and leaf1b (rack 1), leaf2 and leaf2b
(rack 2), node1 (rack 1) and node2 (rack 2) each dual-homed to both leaves of its rack, an
outside host behind the spine, OVN central in the root namespace. These tests prove what the
end-to-end tests with the agent stand on: the BGP fabric, routes both ways between the outside
and the nodes, the nodes' FRR running ovnbgp's own rendering, real ovn-controllers registering
chassis and binding ports, and geneve between racks over the fabric. The lab is shared with
later tests: everything made here is removed at the end.
"""

from __future__ import annotations

import ipaddress
import json
import time

import pytest

from tests.harness.proc import run, wait_for

FAB_TENANT = {"cidr4": "10.99.0.0/24", "cidr6": "fd99::/64"}
FAB_PROVIDER = {"cidr4": "198.51.100.0/24", "gateway4": "198.51.100.1",
                "cidr6": "2001:db8:51::/64", "gateway6": "2001:db8:51::1"}


@pytest.fixture(scope="module")
def nets(lab):
    """A tenant (overlay) and a provider (localnet on physnet public) network of this module."""
    sc = lab.scenario
    tenant = sc.tenant_network("fabnet", **FAB_TENANT)
    provider = sc.provider_network("fabpub", **FAB_PROVIDER)
    yield {"tenant": tenant, "provider": provider}
    for vm in [v for v in lab.vms.values() if v.network.name in ("fabnet", "fabpub")]:
        lab.delete_vm(vm)
    sc.delete_network(tenant)
    sc.delete_network(provider)


def _routes(lab, host: str, family: str, prefix: str) -> list[dict]:
    out = lab.exec(host, "ip", "-j", family, "route", "show", prefix).stdout
    return json.loads(out or "[]")


def _nexthops(routes: list[dict]) -> set[tuple[str | None, str | None]]:
    """(gateway, dev) of a route, one or several (ECMP: `nexthops`)."""
    assert len(routes) == 1, routes
    hops = routes[0].get("nexthops") or [routes[0]]
    return {(h.get("gateway"), h.get("dev")) for h in hops}


def test_fabric_bgp_sessions_are_established(lab):
    sessions = lab.bgp_sessions()
    assert {(router, peer) for router, _, peer in sessions} == {
        ("spine", "leaf1"), ("leaf1", "spine"), ("spine", "leaf2"), ("leaf2", "spine"),
        ("leaf1", "node1"), ("node1", "leaf1"), ("leaf2", "node2"), ("node2", "leaf2"),
        ("spine", "leaf1b"), ("leaf1b", "spine"), ("spine", "leaf2b"), ("leaf2b", "spine"),
        ("leaf1b", "node1"), ("node1", "leaf1b"), ("leaf2b", "node2"), ("node2", "leaf2b")}
    for router, addr, peer in sessions:
        assert lab.bgp_state(router, addr) == "Established", f"{router} -> {peer}"
    # IPv4 and IPv6 unicast both negotiated on every node session (one session, v4 transport),
    # with BFD up on each (the lab's topology turns it on everywhere).
    for node in lab.nodes.values():
        assert len(node.uplinks) == 2
        bfd = {p["peer"]: p["status"] for p in node.frr.vtysh_json("show bfd peers json")}
        for up in node.uplinks:
            info = node.frr.vtysh_json(f"show bgp neighbors {up.peer_addr4} json")
            afs = info[str(up.peer_addr4)]["addressFamilyInfo"]
            assert {"ipv4Unicast", "ipv6Unicast"} <= set(afs), f"{node.name}: {sorted(afs)}"
            assert bfd.get(str(up.peer_addr4)) == "up", f"{node.name}: BFD {bfd}"


def test_outside_networks_reach_every_node(lab):
    outside = lab.topo.ends_of("outside")[0]
    for name, node in lab.nodes.items():
        # ECMP over both uplinks.
        r4 = _routes(lab, name, "-4", str(outside.addr4.network))
        assert r4 and r4[0]["protocol"] == "bgp", f"{name}: {r4}"
        assert _nexthops(r4) == {(str(u.peer_addr4), u.l3_dev) for u in node.uplinks}, r4
        r6 = _routes(lab, name, "-6", str(outside.addr6.network))
        assert r6 and r6[0]["protocol"] == "bgp", f"{name}: {r6}"
        assert {dev for _, dev in _nexthops(r6)} == {u.l3_dev for u in node.uplinks}, r6
        # Packets, both families, from the node's loopbacks (what the fabric knows of the node).
        assert lab.ping(name, outside.addr4.ip, source=node.encap_ip, count=2), f"{name} -> outside v4"
        assert lab.ping(name, outside.addr6.ip, source=node.loopback6, count=2), f"{name} -> outside v6"


def test_nodes_get_a_default_route_from_their_leaf(lab):
    for name, node in lab.nodes.items():
        for family in ("-4", "-6"):
            routes = _routes(lab, name, family, "default")
            assert routes and routes[0]["protocol"] == "bgp", f"{name} {family}: {routes}"
            # ECMP: one next hop through each leaf.
            assert {dev for _, dev in _nexthops(routes)} == {u.l3_dev for u in node.uplinks}, routes


def test_node_loopbacks_reach_outside(lab):
    spine_routes = lab.frr["spine"].vtysh_json("show bgp ipv4 unicast json")["routes"]
    for name, node in lab.nodes.items():
        assert lab.ping("outside", node.encap_ip, count=2), f"outside -> {name} loopback"
        assert lab.ping("outside", node.loopback6, count=2), f"outside -> {name} loopback6"
        # The spine learnt it from both of the node's leaves, originated by the node's AS, and
        # routes it over both (ECMP: two next hops in the spine's kernel).
        paths = spine_routes[f"{node.encap_ip}/32"]
        for leaf in node.leaves:
            leaf_as = lab.topo.host(leaf).asn
            assert any(p["path"] == f"{leaf_as} {node.asn}" for p in paths), paths
        assert {dev for _, dev in _nexthops(_routes(lab, "spine", "-4", f"{node.encap_ip}/32"))} \
            == set(node.leaves)


def test_node_frr_runs_exactly_what_ovnbgp_renders(lab):
    for name, node in lab.nodes.items():
        rendered = node.ovnbgp("frr", "render").stdout
        # The file FRR starts from: what provisioning wrote (`ovnbgp frr render`), or, once an
        # agent has applied it, the config without BFD on the peers (graceful restart with
        # BFD: ovnbgp adds it once the sessions are up, docs/graceful-restart.md).
        held = [ln for ln in rendered.splitlines() if ln.startswith(" neighbor ovnbgp-leaves bfd")]
        assert len(held) == 3, rendered
        boot = "".join(ln for ln in rendered.splitlines(keepends=True)
                       if not ln.startswith(" neighbor ovnbgp-leaves bfd"))
        assert node.frr.config_path.read_text() in (rendered, boot)
        running = node.frr.running_config()
        assert all(ln in running.splitlines() for ln in held), running  # and FRR runs them
        assert f"router bgp {node.asn} vrf ovn-bgp-vrf" in running
        assert "route-map ovnbgp-out-v4 permit 5" in running  # the lab's snippet entry
        # ovnbgp's outbound policy plus the snippet: only the loopbacks leave the node.
        for afi, lo in (("ipv4", f"{node.encap_ip}/32"), ("ipv6", f"{node.loopback6}/128")):
            for up in node.uplinks:
                adv = node.frr.vtysh_json(
                    f"show bgp {afi} unicast neighbors {up.peer_addr4} advertised-routes json")
                assert set(adv.get("advertisedRoutes", {})) == {lo}, f"{name} {afi}: {adv}"
        cfg = node.config_path.read_text()
        assert f"asn = {node.asn}" in cfg and str(node.frr.vty_dir) in cfg
        assert node.ovnbgp("config", "check").returncode == 0  # the agent's own validation


def test_chassis_registered_with_loopback_encap_ip(lab):
    chassis = lab.chassis()
    assert set(lab.nodes) <= set(chassis)
    for name, node in lab.nodes.items():
        assert chassis[name]["hostname"] == name
        assert chassis[name]["encap_type"] == "geneve"
        assert chassis[name]["encap_ip"] == str(node.encap_ip)
        others = {str(n.encap_ip) for m, n in lab.nodes.items() if m != name}
        tunnels = lab.tunnels(name).values()
        assert {t["remote_ip"] for t in tunnels} == others
        assert {t["local_ip"] for t in tunnels} == {str(node.encap_ip)}


def test_vm_ports_are_bound_by_the_real_ovn_controller(lab, nets):
    vm = lab.add_vm("fabv1", nets["tenant"], "node1")
    lab.add_vm("fabp1", nets["provider"], "node2")
    idle = lab.scenario.add_port(nets["tenant"], "fabidle")  # no VM plugged: stays unbound
    lab.wait_bound("fabv1", "node1")
    lab.wait_bound("fabp1", "node2")
    assert lab.port_binding("fabv1") == {"chassis": "node1", "up": True, "type": ""}
    assert lab.port_binding("fabp1")["chassis"] == "node2"
    assert lab.port_binding(idle.name)["chassis"] is None
    # The provider network reaches br-ex through the bridge mapping public:br-ex.
    def patched():
        return [p for p in lab.nodes["node2"].vsctl("list-ports", "br-ex").split()
                if p.startswith("patch-")]

    wait_for(patched, timeout=20, what="patch port br-ex <-> br-int on node2")
    # Unplugging releases the binding; plugging it elsewhere binds it there.
    lab.migrate(vm, "node2")
    lab.wait_bound("fabv1", "node2")
    lab.unbind(vm)
    lab.wait_bound("fabv1", None)
    lab.scenario.delete_port(idle)


def _tunnel_tx(lab, node: str) -> int:
    total = 0
    for port in lab.tunnels(node):
        total += int(lab.nodes[node].vsctl("get", "Interface", port, "statistics:tx_packets").strip() or 0)
    return total


def test_geneve_overlay_between_racks(lab, nets):
    a = lab.add_vm("fabva", nets["tenant"], "node1")
    b = lab.add_vm("fabvb", nets["tenant"], "node2")
    lab.wait_bound("fabva", "node1")
    lab.wait_bound("fabvb", "node2")
    assert lab.topo.host("node1").rack != lab.topo.host("node2").rack
    before = _tunnel_tx(lab, "node1"), _tunnel_tx(lab, "node2")
    lab.wait_ping("fabva", b.ip4, timeout=30)
    assert a.ping(b.ip4, count=3)
    assert b.ping(a.ip4, count=3)
    lab.wait_ping("fabva", b.ip6, timeout=30)
    assert b.ping(a.ip6, count=3)
    # The packets went through the geneve ports, i.e. across leaf1 - spine - leaf2.
    assert _tunnel_tx(lab, "node1") >= before[0] + 6
    assert _tunnel_tx(lab, "node2") >= before[1] + 6
    assert ipaddress.ip_address(a.ip4) in nets["tenant"].cidr4
    # Migration keeps the VM's identity: pings resume once the port is bound on node1.
    pinger = lab.pinger("fabva", b.ip4, interval=0.2)
    try:
        pinger.wait_reply(timeout=30)
        t0 = time.time()
        lab.migrate(b, "node1")
        lab.wait_bound("fabvb", "node1")
        pinger.wait_reply(after=time.time(), timeout=30)
    finally:
        log = pinger.stop()
    assert any(t < t0 for t, _ in log.replies), log.output[-500:]
    assert log.first_reply_after(t0) is not None, log.output[-500:]


def test_pulling_a_nodes_cable_cuts_it_off_and_plugging_it_back_restores_it(lab):
    leaf_addr = str(lab.topo.uplinks("node2")[0].addr4.ip)  # node2's address, as the leaf sees it
    encap = lab.nodes["node2"].encap_ip
    lab.set_uplink("node2", False)
    try:
        wait_for(lambda: lab.bgp_state("leaf2", leaf_addr) != "Established", timeout=30,
                 what="leaf2's session to node2 down")
        wait_for(lambda: f"{encap}/32" not in lab.frr["spine"].vtysh_json("show bgp ipv4 unicast json")["routes"],
                 timeout=30, what="node2's loopback withdrawn at the spine")
        assert not lab.ping("outside", encap, wait=1)
    finally:
        lab.set_uplink("node2", True)
    wait_for(lambda: not lab.down_sessions(), timeout=60, what="every session back",
             details=lambda: "\n".join(lab.down_sessions()))
    lab.wait_ping("outside", encap, timeout=30)


def test_provisioning_scripts_rerun_cleanly(lab):
    """`vagrant provision` runs the scripts again: they must not fail or change the state."""
    def addrs(host):
        return run(["ip", "-br", "addr"], netns=lab.ns_name(host)).stdout

    before = {h: addrs(h) for h in ("leaf1", "node1")}
    lab.provision("net.sh", "leaf1")
    lab.provision("net.sh", "node1")
    assert {h: addrs(h) for h in before} == before
    wait_for(lambda: not lab.down_sessions(), timeout=30, what="sessions still up",
             details=lambda: "\n".join(lab.down_sessions()))


def _patch_port(lab, node: str) -> str:
    ports = [p for p in lab.nodes[node].vsctl("list-ports", "br-ex").split() if p.startswith("patch-")]
    return ports[0] if ports else ""


def test_bgp_to_ovn_path_by_hand(lab, nets):
    """NOT ovnbgp: the reference design's exposure of one provider VM done by hand on node1
    (VRF + dummy, br-ex addresses and proxy ARP/NDP, ip rules to table 200, the OVS flow that
    hands OVN's egress to the kernel). Proves the lab carries BGP-routed packets from the
    outside host into OVN and back, in both families: what the agent will automate."""
    node = lab.nodes["node1"]
    ns = node.ns.name
    net = nets["provider"]
    vm = lab.add_vm("fabx", net, "node1")
    lab.wait_bound("fabx", "node1")
    patch = wait_for(lambda: _patch_port(lab, "node1"), timeout=20, what="br-ex patch port")
    ofport = node.vsctl("get", "Interface", patch, "ofport").strip()
    brex_mac = run(["cat", "/sys/class/net/br-ex/address"], netns=ns).stdout.strip()
    sysctls = {"net/ipv4/ip_forward": "1", "net/ipv6/conf/all/forwarding": "1",
               "net/ipv4/conf/all/rp_filter": "0", "net/ipv4/conf/br-ex/rp_filter": "0",
               "net/ipv4/conf/br-ex/proxy_arp": "1", "net/ipv6/conf/br-ex/proxy_ndp": "1"}
    saved = {k: run(["cat", f"/proc/sys/{k}"], netns=ns).stdout.strip() for k in sysctls}

    def ip(family, lines):
        run(["ip", family, "-batch", "-"], netns=ns, input="\n".join(lines) + "\n")

    try:
        ip("-4", ["link add ovn-bgp-vrf type vrf table 10", "link set ovn-bgp-vrf up",
                  "link add ovn type dummy", "link set ovn master ovn-bgp-vrf", "link set ovn up",
                  "link set br-ex up", "address add 1.1.1.1/32 dev br-ex",
                  f"rule add to {vm.ip4} lookup 200 pref 32000",
                  "route add default dev br-ex scope link table 200"])
        ip("-6", ["address add fd53:d91e:400:7f17::1/128 dev br-ex nodad",
                  f"rule add to {vm.ip6} lookup 200 pref 32000",
                  "route add default dev br-ex table 200",
                  f"neigh add proxy {net.gateway6} dev br-ex"])
        for k, v in sysctls.items():
            run(["sysctl", "-q", "-w", f"{k.replace('/', '.')}={v}"], netns=ns)
        for proto in ("ip", "ipv6"):
            node.ovs.ofctl("add-flow", "br-ex", f"cookie=0x1ab,priority=900,{proto},in_port={ofport},"
                                              f"actions=mod_dl_dst:{brex_mac},NORMAL")
        # Advertise: the addresses on the dummy become the VRF's connected routes, which
        # ovnbgp's FRR config imports and lets out to the leaf.
        ip("-4", [f"address add {vm.ip4}/32 dev ovn"])
        ip("-6", [f"address add {vm.ip6}/128 dev ovn nodad"])
        lab.wait_ping("outside", vm.ip4, timeout=60)
        lab.wait_ping("outside", vm.ip6, timeout=60)
        outside = lab.topo.ends_of("outside")[0]
        assert vm.ping(outside.addr4.ip, count=2) and vm.ping(outside.addr6.ip, count=2)
        spine = lab.frr["spine"].vtysh_json("show bgp ipv4 unicast json")["routes"]
        assert f"{vm.ip4}/32" in spine
        # Withdraw: the address leaves the dummy, the spine forgets the route.
        ip("-4", [f"address del {vm.ip4}/32 dev ovn"])
        wait_for(lambda: f"{vm.ip4}/32" not in
                 lab.frr["spine"].vtysh_json("show bgp ipv4 unicast json")["routes"],
                 timeout=30, what=f"{vm.ip4}/32 withdrawn at the spine")
        assert not lab.ping("outside", vm.ip4, wait=1)
    finally:
        node.ovs.ofctl("del-flows", "br-ex", "cookie=0x1ab/-1")
        run(["ip", "link", "del", "ovn"], netns=ns, check=False)
        run(["ip", "link", "del", "ovn-bgp-vrf"], netns=ns, check=False)
        for fam in ("-4", "-6"):
            run(["ip", fam, "rule", "del", "pref", "32000"], netns=ns, check=False)
            run(["ip", fam, "route", "flush", "table", "200"], netns=ns, check=False)
        run(["ip", "addr", "flush", "dev", "br-ex", "scope", "global"], netns=ns, check=False)
        run(["ip", "-6", "neigh", "del", "proxy", str(net.gateway6), "dev", "br-ex"], netns=ns, check=False)
        for k, v in saved.items():
            run(["sysctl", "-q", "-w", f"{k.replace('/', '.')}={v}"], netns=ns, check=False)
        lab.delete_vm(vm)

"""End to end, VLAN provider networks (issue 15 item 1) on the spine-leaf lab (tests/lab).

Two provider networks on the same physnet, so the same bridge br-ex of each node: a flat one
(the topology's provider subnets) and a VLAN one made as Neutron makes it, `tag=100` on its
localnet port. OVN sends the VLAN network's traffic tagged on br-ex; ovnbgp steers it through
its VLAN device br-ex.100 (host routes in the bridge table through it, proxy ARP/NDP on it, the
OVS flows for dl_vlan=100 that give OVN's frames the bridge's MAC). As for the flat network the
gateway of the VLAN network is the node itself: the VM's gateway address is answered by proxy
ARP (IPv4) and by a proxy NDP entry (the nodes' kernel.ndp_proxy gets the VLAN network's IPv6
gateway for this module; their configs are restored at the end).

A VM on each network on node1: both are pinged from the outside host (IPv4 and IPv6); the VLAN
VM migrates to node2 and back (a background pinger gives the figures, written to
<vm results>/e2e-vlan-figures.txt) and is then deleted with its network: nothing of it is left
on either node (no VLAN device, rule, route, neighbour, proxy entry, flow, dummy address or
prefix at the spine), while the flat VM answers throughout (its own pinger runs the whole time).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.harness.proc import wait_for
from tests.lab.checks import dummy_prefixes, spine_paths, traces_of
from tests.vm.test_e2e import Figures, pings_reach, timed_move, vm_moved, wait_gone, wait_routed

NODES = ("node1", "node2")
VID = 100
DEV = f"br-ex.{VID}"
CIDR4, GW4 = "172.24.8.0/24", "172.24.8.1"
CIDR6, GW6 = "2001:db8:28::/64", "2001:db8:28::1"
COOKIE = "0x6f766e626770"
FIGURES_FILE = "e2e-vlan-figures.txt"


def _with_vlan_gateway(config: str) -> str:
    """The node's config with the VLAN network's IPv6 gateway added to kernel.ndp_proxy."""
    lines = config.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("ndp_proxy = ["):
            lines[i] = line.replace("ndp_proxy = [", f'ndp_proxy = ["{GW6}", ', 1)
            return "\n".join(lines) + "\n"
    raise AssertionError(f"no ndp_proxy line in the lab's node config:\n{config}")


@pytest.fixture(scope="module")
def figures(request, vm_out) -> Figures:
    return Figures(request, vm_out / FIGURES_FILE)


@pytest.fixture(scope="module")
def world(lab, modprobe) -> Iterator[dict]:
    modprobe("8021q")
    sc = lab.scenario
    nodes = [lab.nodes[n] for n in NODES]
    originals = {n.name: n.config_path.read_text() for n in nodes}
    made: dict = {}
    flat_pinger = None
    try:
        for node in nodes:
            node.config_path.write_text(_with_vlan_gateway(originals[node.name]))
            node.start_agent(ready=lambda node=node: (node.state_dir / "status.json").exists(),
                             timeout=120)
        flat = made["flat"] = sc.provider_network("vlflat")
        vlan = made["vlan"] = sc.provider_network("vlvlan", cidr4=CIDR4, gateway4=GW4, cidr6=CIDR6,
                                                  gateway6=GW6, vlan=VID)
        f1 = lab.add_vm("vlf1", flat, "node1")
        v1 = lab.add_vm("vlv1", vlan, "node1")
        for vm in (f1, v1):
            lab.wait_bound(vm.name, "node1")
        flat_pinger = lab.pinger("outside", f1.ip4)
        yield {"flat": flat, "vlan": vlan, "f1": f1, "v1": v1, "flat_pinger": flat_pinger,
               "made": made}
    finally:
        if flat_pinger is not None:
            try:
                flat_pinger.stop()
            except RuntimeError:
                pass  # stopped by the last test
        lab.remove_world("vl", made, ("vlan", "flat"), nodes,
                         restore=lambda node: node.config_path.write_text(originals[node.name]))


def reaches(lab, vm, dst, attempts: int = 3) -> None:
    """pings_reach (every echo answered and counted by the VM), after a wait_ping; retried
    when a ping is lost: on a loaded host the lab's BFD sessions (300 ms x 3) flap now and
    then and the fabric withdraws every route of a node for a few seconds, which is not what
    this module tests (the log of each attempt is kept for the failure message)."""
    errors = []
    for _ in range(attempts):
        try:
            lab.wait_ping("outside", dst, timeout=60)
            pings_reach(lab, vm, dst)
            return
        except (AssertionError, TimeoutError) as e:
            errors.append(str(e))
    raise AssertionError("\n---\n".join(errors))


def vlan_link(lab, node: str) -> dict | None:
    cp = lab.exec(node, "ip", "-d", "-j", "link", "show", "dev", DEV, check=False)
    return json.loads(cp.stdout)[0] if cp.returncode == 0 else None


def vlan_flows(lab, node: str) -> list[str]:
    out = lab.nodes[node].ovs.ofctl("dump-flows", "br-ex", f"cookie={COOKIE}/-1")
    return [ln.strip() for ln in out.splitlines() if f"dl_vlan={VID}" in ln]


def leftovers(lab, node: str, vm) -> list[str]:
    """Everything of the VLAN network and its VM still on `node` (ovnbgp's objects)."""
    out = traces_of(lab, node, (vm.ip4, vm.ip6))
    if vlan_link(lab, node) is not None:
        out.append(f"device {DEV}")
    out += [f"flow {f}" for f in vlan_flows(lab, node)]
    for fam in ("-4", "-6"):
        for what in (["route", "show", "table", "all"], ["neigh", "show"], ["neigh", "show", "proxy"]):
            for o in json.loads(lab.exec(node, "ip", "-j", fam, *what, check=False).stdout or "[]"):
                if o.get("dev") == DEV:
                    out.append(f"ip {fam} {' '.join(what)}: {o}")
    return out


def test_flat_and_vlan_vms_reachable_in_both_families(lab, world):
    f1, v1 = world["f1"], world["v1"]
    for vm in (f1, v1):
        wait_routed(lab, f"{vm.ip4}/32", "node1")
        wait_routed(lab, f"{vm.ip6}/128", "node1")
    for vm in (f1, v1):
        reaches(lab, vm, vm.ip4)
        reaches(lab, vm, vm.ip6)
    # and back out: the VLAN VM reaches the outside host through its gateway, the node
    outside = lab.topo.ends_of("outside")[0]
    assert v1.ping(outside.addr4.ip, count=2) and v1.ping(outside.addr6.ip, count=2)


def test_node_steers_the_vlan_through_its_vlan_device(lab, world):
    v1 = world["v1"]
    wait_routed(lab, f"{v1.ip4}/32", "node1")
    for node in NODES:  # the network is mapped on both nodes: the device is there on both
        link = vlan_link(lab, node)
        assert link is not None, f"{DEV} missing on {node}"
        info = link.get("linkinfo", {})
        assert info.get("info_kind") == "vlan" and info["info_data"]["id"] == VID, link
        assert link.get("link") == "br-ex", link
        proxies = json.loads(lab.exec(node, "ip", "-j", "-6", "neigh", "show", "proxy").stdout or "[]")
        assert any(p["dst"] == GW6 and p["dev"] == DEV and str(p.get("protocol")) == "240"
                   for p in proxies), proxies
        assert lab.exec(node, "cat", f"/proc/sys/net/ipv4/conf/{DEV}/proxy_arp").stdout.strip() == "1"
    # the flows: two per OVN patch port on br-ex as the flat ones (ovn-controller makes a
    # localnet's patch port only where a port of its network is bound: node1 here)
    flows = lab.nodes["node1"].ovs.ofctl("dump-flows", "br-ex", f"cookie={COOKIE}/-1")
    assert len(vlan_flows(lab, "node1")) == flows.count("mod_dl_dst") // 2 >= 2, flows
    routes = json.loads(lab.exec("node1", "ip", "-j", "route", "show", "table", "200").stdout)
    assert {"dst": str(v1.ip4), "dev": DEV} in [{k: r.get(k) for k in ("dst", "dev")} for r in routes]
    assert {f"{v1.ip4}/32", f"{v1.ip6}/128"} <= dummy_prefixes(lab, "node1")
    assert not {f"{v1.ip4}/32", f"{v1.ip6}/128"} & dummy_prefixes(lab, "node2")


def test_vlan_vm_migrates_and_pings_resume(lab, world, figures):
    v1, f1 = world["v1"], world["f1"]
    p4, p6 = f"{v1.ip4}/32", f"{v1.ip6}/128"
    wait_routed(lab, p4, "node1")
    for src, dst in (("node1", "node2"), ("node2", "node1")):
        timed_move(lab, figures, f"migration of a VLAN provider VM {src} -> {dst}",
                   (v1.ip4, v1.ip6), lambda dst=dst: lab.migrate(v1, dst),
                   vm_moved(lab, v1.name, (p4, p6), src, dst))
        wait_for(lambda src=src: not traces_of(lab, src, (v1.ip4, v1.ip6)), timeout=30,
                 what=f"nothing of {v1.name} left on {src}",
                 details=lambda src=src: "\n".join(traces_of(lab, src, (v1.ip4, v1.ip6))))
        reaches(lab, v1, v1.ip4)
        reaches(lab, v1, v1.ip6)
    reaches(lab, f1, f1.ip4)


def test_deleting_the_vlan_network_leaves_nothing_and_the_flat_one_works(lab, world, figures):
    v1, f1, sc = world["v1"], world["f1"], lab.scenario
    wait_routed(lab, f"{v1.ip4}/32", v1.node)
    lab.delete_vm(v1)
    sc.delete_network(world["made"].pop("vlan"))
    for prefix in (f"{v1.ip4}/32", f"{v1.ip6}/128"):
        wait_gone(lab, prefix)
    for node in NODES:
        wait_for(lambda node=node: not leftovers(lab, node, v1), timeout=60,
                 what=f"nothing of the VLAN network left on {node}",
                 details=lambda node=node: "\n".join(leftovers(lab, node, v1)))
        assert not spine_paths(lab, f"{v1.ip4}/32")
        v = lab.nodes[node].ovnbgp("verify", check=False)
        assert v.returncode == 0, v.stdout + v.stderr
    # the flat network's flows stay on the flat VM's node (its one patch port there)
    flows = lab.nodes[f1.node].ovs.ofctl("dump-flows", "br-ex", f"cookie={COOKIE}/-1")
    assert flows.count("mod_dl_dst") == 2 and "dl_vlan" not in flows, flows
    assert not lab.ping("outside", v1.ip4, wait=1)
    # the flat VM answered all along (its pinger ran since the module began)
    reaches(lab, f1, f1.ip4)
    reaches(lab, f1, f1.ip6)
    log = world["flat_pinger"].stop()
    assert log.replies, log.output[-800:]
    t0 = log.replies[0][0]  # (it started before the VM was routed)
    times = [t for t, _ in log.replies]
    longest = max(b - a for a, b in zip(times, times[1:] + [log.stopped]))
    sent = max(seq for _, seq in log.replies) - log.replies[0][1] + 1
    figures.add(f"flat provider VM on the same bridge, pinged 10/s for {log.stopped - t0:.0f} s "
                f"from its first reply, through the VLAN VM's migrations and deletion: "
                f"{len(times)} of {sent} answered, longest silence {longest:.2f} s")
    # no outage of its own: a loaded one-CPU guest bunches replies, and a BFD flap of the
    # fabric (see reaches()) silences every route of a node for a few seconds
    assert longest < 10.0, log.output[-800:]

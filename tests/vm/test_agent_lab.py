"""The whole agent in the spine-leaf lab (tests/lab): real ovn-controllers bind the ports, the
agent (`ovnbgp run`) on node1 and node2 exposes them, and packets from the outside host reach
the VM through the spine, the leaf, the node's ip rules, br-ex and OVN.

At the end each node gets `ovnbgp cleanup --yes` (withdraw, steering, flows, FRR config, VRF
and dummy) and then its FRR config back (`ovnbgp frr apply`), so the lab is as it was for the
tests that share it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.harness.proc import run, wait_for

NET = {"cidr4": "198.51.100.0/24", "gateway4": "198.51.100.1",
       "cidr6": "2001:db8:51::/64", "gateway6": "2001:db8:51::1"}


def spine_paths(lab, prefix: str, afi: str = "ipv4") -> list[list[int]]:
    """AS paths (as ASN lists) of `prefix` in the spine's BGP table."""
    routes = lab.frr["spine"].vtysh_json(f"show bgp {afi} unicast json")["routes"]
    out = []
    for path in routes.get(prefix, []):
        text = path.get("path", "") or path.get("aspath", {}).get("string", "")
        out.append([int(a) for a in str(text).split() if a.isdigit()])
    return out


def dummy(lab, node: str) -> set[str]:
    out = run(["ip", "-j", "addr", "show", "dev", "ovn"], netns=lab.nodes[node].ns.name,
              check=False).stdout
    return {f"{a['local']}/{a['prefixlen']}" for link in json.loads(out or "[]")
            for a in link.get("addr_info", []) if not a["local"].startswith("fe80")}


@pytest.fixture(scope="module")
def agents(lab) -> Iterator[dict]:
    nodes = [lab.nodes[n] for n in ("node1", "node2")]
    net = lab.scenario.provider_network("agentpub", **NET)
    try:
        for node in nodes:
            # The provider bridge is up, as the deployment tool leaves it (reference design:
            # "the relevant provider OVS bridges are created ..."); ovnbgp holds exposures back
            # while it is down (routes through a down device are refused).
            run(["ip", "link", "set", "br-ex", "up"], netns=node.ns.name)
            node.start_agent(ready=lambda node=node: (node.state_dir / "status.json").exists(),
                             timeout=90)
        yield {"net": net}
    finally:
        for vm in [v for v in lab.vms.values() if v.network.name == "agentpub"]:
            lab.delete_vm(vm)
        lab.scenario.delete_network(net)
        for node in nodes:
            node.stop_agent()
            cp = node.ovnbgp("cleanup", "--yes", check=False)
            print(f"--- {node.name}: ovnbgp cleanup ---\n{cp.stdout}{cp.stderr}")
            node.ovnbgp("frr", "apply", check=False)
        lab.wait_converged()


def test_provider_vm_exposed_by_the_agent_reaches_the_outside(lab, agents):
    node1 = lab.nodes["node1"]
    vm = lab.add_vm("agvm1", agents["net"], "node1")
    lab.wait_bound("agvm1", "node1")
    p4, p6 = f"{vm.ip4}/32", f"{vm.ip6}/128"
    wait_for(lambda: {p4, p6} <= dummy(lab, "node1"), timeout=60,
             what="the VM's IPs on node1's dummy",
             details=lambda: (node1.dir / "ovnbgp.log").read_text()[-3000:])
    assert not {p4, p6} & dummy(lab, "node2")
    wait_for(lambda: any(node1.asn in p for p in spine_paths(lab, p4)), timeout=60,
             what=f"{p4} at the spine through node1")
    wait_for(lambda: any(node1.asn in p for p in spine_paths(lab, p6, "ipv6")), timeout=60,
             what=f"{p6} at the spine through node1")
    lab.wait_ping("outside", vm.ip4, timeout=60)
    st = json.loads(node1.ovnbgp("status", "--json", check=False).stdout)
    assert st["running"] and st["connected"] == {"sb": True, "ovs": True}, st
    assert st["exposures"]["provider-vm"] == 2, st
    # verify: every exposure proven (dummy, VRF, imported, advertised), the session up. The
    # node's loopback, which the lab's operator snippet announces, is reported as a leftover
    # (not ovnbgp's); nothing else is.
    v = node1.ovnbgp("verify", "--json", check=False)
    report = json.loads(v.stdout)
    assert {e["prefix"] for e in report["exposures"] if e["ok"]} == {p4, p6}, report
    assert all(p["ok"] for p in report["peers"]), report
    assert {lo["prefix"] for lo in report["leftovers"]} <= {
        f"{node1.encap_ip}/32", f"{node1.loopback6}/128"}, report


def test_migration_moves_the_route_to_the_other_rack(lab, agents):
    node1, node2 = lab.nodes["node1"], lab.nodes["node2"]
    vm = lab.vms["agvm1"]
    p4 = f"{vm.ip4}/32"
    lab.migrate(vm, "node2")
    lab.wait_bound("agvm1", "node2")
    wait_for(lambda: p4 in dummy(lab, "node2") and p4 not in dummy(lab, "node1"), timeout=60,
             what="the VM's IP moved from node1's dummy to node2's")
    wait_for(lambda: (paths := spine_paths(lab, p4)) and all(node2.asn in p for p in paths)
             and not any(node1.asn in p for p in paths), timeout=60,
             what=f"{p4} at the spine through node2 only")
    lab.wait_ping("outside", vm.ip4, timeout=60)
    rules = run(["ip", "rule", "show"], netns=node1.ns.name).stdout
    assert f"to {vm.ip4} " not in rules, rules

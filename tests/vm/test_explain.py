"""`ovnbgp explain` on a node that runs the agent (real kernel VRF/dummy, OVS, FRR and a leaf
peer), with the [exposure] tenant-network policy allowing t1 (10.0.1.0/24) and filtering t2.

Exposed and advertised addresses answer exit 0 with the kernel and FRR lines; the filtered
tenant network answers exit 1 "filtered by policy" and never reaches the leaf. Outputs are
written to the results directory (OVNBGP_VM_RESULTS) for the README's sample.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.harness.neutron import CRLRP_IP, TENANT_VMS, build_topology, pv_ips, tv_ip
from tests.harness.neutron import NeutronNode as Node
from tests.harness.node_lab import KERNEL_MODULES, LEAF_IP
from tests.harness.proc import wait_for

POLICY = '[exposure]\ntenant_prefixes = ["10.0.1.0/24"]\n'


def wanted(node: Node) -> set[str]:
    """What ch1 exposes under POLICY: everything but tenant network t2 and its VMs."""
    filtered = {"10.0.2.0/24"} | {f"{tv_ip(p)}/32" for p in TENANT_VMS[2]}
    return node.world.expected() - filtered


@pytest.fixture(scope="module")
def node(modprobe, tmp_path_factory) -> Iterator[Node]:
    for mod in KERNEL_MODULES:
        modprobe(mod)
    work = tmp_path_factory.mktemp("explain")
    from tests.harness.ovn import OvnCentral

    node = Node(work, OvnCentral(work / "ovn"), name="xnode", leaf_name="xleaf")
    with node.running():
        build_topology(node.ovn, node.world)
        node.start_agent(work / "agent", node.agent_config(debounce=0.1) + POLICY)
        want = wanted(node)
        wait_for(lambda: node.dummy() == want, timeout=90, what="dummy == wanted",
                 details=lambda: f"{sorted(node.dummy() ^ want)}\n{node.agent.log_tail(40)}")
        wait_for(lambda: node.leaf_table() == want, timeout=90, what="leaf == wanted",
                 details=lambda: f"{sorted(node.leaf_table() ^ want)}")
        yield node


def explain(node: Node, vm_out, address: str, *extra: str):
    cp = node.agent.cli("explain", address, *extra)
    name = address.replace("/", "_") + ("-json" if extra else "")
    (vm_out / f"explain-{name}.txt").write_text(f"$ ovnbgp explain {address} {' '.join(extra)}\n"
                                               f"{cp.stdout}{cp.stderr}exit {cp.returncode}\n")
    return cp


def test_exposed_provider_vm_is_advertised(node: Node, vm_out):
    v4, _ = pv_ips("pv0")
    cp = explain(node, vm_out, v4)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    out = cp.stdout
    assert out.startswith(f"{v4}/32 on chassis ch1: EXPOSED and advertised to every Established peer")
    uuid = node.ovn.sbctl("--bare", "--columns=_uuid", "find", "Port_Binding", "logical_port=pv0").strip()
    assert f"VM port pv0 (Port_Binding {uuid}): exposes {v4}/32 (provider-vm, bridge br-ex)" in out
    for line in (f"yes      address {v4}/32 on the dummy ovn (VRF ovn-bgp-vrf)",
                 f"yes      ip rule to {v4}/32 lookup 200 (br-ex) priority 32000",
                 "yes      route 0.0.0.0/0 dev br-ex scope link in table 200",
                 "yes      OVS flow on br-ex: IP from patch-provnet-to-br-int to the bridge MAC",
                 f"yes      {v4}/32 in the BGP table of VRF ovn-bgp-vrf (locally originated)",
                 f"yes      {v4}/32 imported into the default BGP table",
                 f"yes      {v4}/32 advertised to {LEAF_IP}"):
        assert line in out, out
    assert "MISSING" not in out


def test_allowed_tenant_subnet_with_its_gateway_route_and_neighbour(node: Node, vm_out):
    cp = explain(node, vm_out, "10.0.1.0/24", "--json")
    assert cp.returncode == 0, cp.stdout + cp.stderr
    d = json.loads(cp.stdout)
    assert d["exposed"] and d["advertised"] and d["exit"] == 0
    kernel = {f["what"]: f["ok"] for f in d["kernel"]}
    assert kernel[f"route 10.0.1.0/24 via {CRLRP_IP} dev br-ex in table 200"] is True, kernel
    assert any(w.startswith(f"neighbour {CRLRP_IP} lladdr") and ok for w, ok in kernel.items()), kernel
    assert all(kernel.values()) and all(f["ok"] for f in d["frr"]), d


def test_filtered_tenant_network_is_explained_and_not_advertised(node: Node, vm_out):
    cp = explain(node, vm_out, "10.0.2.0/24")
    assert cp.returncode == 1, cp.stdout + cp.stderr
    assert "NOT EXPOSED" in cp.stdout
    assert ("tenant subnet 10.0.2.0/24: filtered by policy: 10.0.2.0/24 is not inside "
            "exposure.tenant_prefixes (10.0.1.0/24)") in cp.stdout
    cp = explain(node, vm_out, tv_ip(TENANT_VMS[2][0]))
    assert cp.returncode == 1 and "filtered by policy" in cp.stdout, cp.stdout
    assert "10.0.2.0/24" not in node.leaf_table() and "10.0.1.0/24" in node.leaf_table()


def test_port_on_another_chassis(node: Node, vm_out):
    v4, _ = pv_ips("pv8")
    node.sbctl_bind("pv8", "ch2")
    cp = explain(node, vm_out, v4)
    assert cp.returncode == 1, cp.stdout
    assert "port pv8 is bound to chassis ch2, not here (ch1)" in cp.stdout
    assert f"no       {v4}/32 advertised to {LEAF_IP}" in cp.stdout

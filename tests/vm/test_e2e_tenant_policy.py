"""End to end, the tenant-network policy (issue 15 item 3) on the spine-leaf lab (tests/lab):
two tenant networks behind one router whose gateway (cr-lrp) is on node1; node1 and node2 run
ovnbgp with `[exposure] tenant_prefixes` listing only the first network. Real pings from the
outside host reach the allowed network's VM; the filtered network never reaches the fabric (not
on the dummy, not at the spine, pings unanswered and not received by its VM), and `ovnbgp
explain` on node1 says "filtered by policy". The nodes' configs are restored at the end.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.harness.proc import wait_for
from tests.lab.checks import dummy_prefixes, icmp_echoes_received, spine_paths
from tests.vm.test_e2e import pings_reach, wait_routed

NODES = ("node1", "node2")
ALLOWED4, ALLOWED6 = "10.77.1.0/24", "fd77:1::/64"
FILTERED4, FILTERED6 = "10.77.2.0/24", "fd77:2::/64"
POLICY = (f'\n[exposure]\ntenant_prefixes = ["{ALLOWED4}", "{ALLOWED6}"]\n'
          "tenant_ipv6_gua = false\n")


@pytest.fixture(scope="module")
def world(lab) -> Iterator[dict]:
    sc = lab.scenario
    nodes = [lab.nodes[n] for n in NODES]
    originals = {n.name: n.config_path.read_text() for n in nodes}
    made: dict = {}
    try:
        for node in nodes:
            node.config_path.write_text(originals[node.name] + POLICY)
            node.start_agent(ready=lambda node=node: (node.state_dir / "status.json").exists(),
                             timeout=120)
        pub = made["pub"] = sc.provider_network("tppub")
        allowed = made["allowed"] = sc.tenant_network("tpallow", cidr4=ALLOWED4, cidr6=ALLOWED6)
        filtered = made["filtered"] = sc.tenant_network("tpfilter", cidr4=FILTERED4, cidr6=FILTERED6)
        router = made["router"] = sc.router(pub, ["node1", "node2"], "tpr1")
        sc.attach(router, allowed)
        sc.attach(router, filtered)
        va = lab.add_vm("tpva", allowed, "node2")
        vf = lab.add_vm("tpvf", filtered, "node2")
        for vm in (va, vf):
            lab.wait_bound(vm.name, "node2")
        wait_for(lambda: lab.port_binding(router.cr_port).get("chassis") == "node1", timeout=60,
                 what=f"{router.cr_port} bound to node1")
        yield {"allowed": allowed, "filtered": filtered, "va": va, "vf": vf, "router": router}
    finally:
        lab.remove_world("tpv", made, ("filtered", "allowed", "pub"), nodes,
                         restore=lambda node: node.config_path.write_text(originals[node.name]))


def test_allowed_tenant_network_is_reachable_from_outside(lab, world):
    va = world["va"]
    for prefix in (ALLOWED4, f"{va.ip4}/32", ALLOWED6):
        wait_routed(lab, prefix, "node1")
    lab.wait_ping("outside", va.ip4, timeout=60)
    pings_reach(lab, va, va.ip4)
    lab.wait_ping("outside", va.ip6, timeout=60)
    pings_reach(lab, va, va.ip6)


def test_filtered_tenant_network_never_reaches_the_fabric(lab, world):
    vf = world["vf"]
    wait_routed(lab, ALLOWED4, "node1")  # the allowed one is there: the policy is in force
    for node in NODES:
        on = dummy_prefixes(lab, node)
        assert not {FILTERED4, FILTERED6, f"{vf.ip4}/32"} & on, (node, on)
    for prefix in (FILTERED4, FILTERED6, f"{vf.ip4}/32"):
        assert spine_paths(lab, prefix) == [], prefix
    before = icmp_echoes_received(lab, vf.name)
    cp = lab.exec("outside", "ping", "-n", "-c", "3", "-i", "0.2", "-W", "1", str(vf.ip4), check=False)
    assert cp.returncode != 0, cp.stdout
    assert icmp_echoes_received(lab, vf.name)[0] == before[0]
    cp = lab.nodes["node1"].ovnbgp("explain", str(vf.ip4), check=False)
    assert cp.returncode == 1, cp.stdout + cp.stderr
    assert f"filtered by policy: {FILTERED4} is not inside exposure.tenant_prefixes" in cp.stdout
    cp = lab.nodes["node1"].ovnbgp("explain", ALLOWED4, check=False)
    assert cp.returncode == 0, cp.stdout + cp.stderr

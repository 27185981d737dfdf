"""End to end, OVN load balancers as Octavia's OVN provider makes them (issue 15 item 2,
docs/load-balancers.md) on the spine-leaf lab (tests/lab):

  router lbr1 (gateway cr-lrp on node1, node2 standby), tenant network lbten behind it with two
  members (lbm1, lbm2, both on node2) each running a tiny TCP responder on port 8080 that
  answers with its name;
  lbprov  VIP on the provider network (its port: an unbound `ovn-lb-vip-<id>` port owned by
          Octavia), members on the tenant network, on the provider and tenant switches and the router;
  lbten   VIP on the tenant network with a floating IP (a centralized dnat_and_snat on the
          router, the FIP also a VIP of the load balancer, as Octavia's OVN provider adds it).

A TCP client on the outside host connects to each VIP (through the fabric: only the route
ovnbgp advertised leads there) and must get a member's name; the fabric must route the VIP to
the gateway's node. Then the gateway moves (node2 gets the highest priority, as Neutron
reschedules it) and the VIPs follow; the last member of a load balancer goes (withdrawn) and
comes back; deleting the load balancers withdraws their VIPs everywhere.

The router does not SNAT the members' network (Neutron's `enable_snat=False`): measured here
with OVN 23.03, a provider VIP on the provider switch too (Octavia's layout) is load-balanced
by that switch, so the router does not know the connection and SNATs the members' data packets
to its gateway IP (the SYN-ACK comes back from the VIP, the data from 172.24.4.x:8080): the
connection breaks whoever advertises the VIP (docs/load-balancers.md, "OVN datapath caveat").
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import pytest

from tests.harness.proc import netns_argv, wait_for
from tests.lab.checks import dummy_prefixes, spine_paths
from tests.vm.test_e2e import agent_log_tail, wait_gone, wait_routed

NODES = ("node1", "node2")
PORT, MEMBER_PORT = 80, 8080
TEN4 = "10.78.1.0/24"
PROV_LB, TEN_LB = "6f1f0c52-3f5e-4c1e-8f0e-0000000000a1", "6f1f0c52-3f5e-4c1e-8f0e-0000000000a2"

# The member's responder: accept, send its name, close. Runs until killed (by its pid).
RESPONDER = """
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[2])))
s.listen(16)
while True:
    c, _ = s.accept()
    c.sendall(sys.argv[1].encode() + b"\\n")
    c.close()
"""
CLIENT = """
import socket, sys
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2)
print(c.recv(100).decode().strip())
"""


def tcp_answer(lab, ip, port: int = PORT) -> str | None:
    """What a TCP connection from the outside host to ip:port reads (a member's name), or None."""
    cp = lab.exec("outside", "python3", "-c", CLIENT, str(ip), str(port), check=False, timeout=10)
    return cp.stdout.strip() if cp.returncode == 0 else None


def wait_answered(lab, ip, members: set[str], node: str, timeout: float = 60) -> str:
    got: list[str | None] = [None]

    def ok() -> bool:
        got[0] = tcp_answer(lab, ip)
        return got[0] in members
    wait_for(ok, timeout=timeout, interval=0.5, what=f"outside -> {ip}:{PORT} answered by a member",
             details=lambda: f"last answer: {got[0]!r}\n{agent_log_tail(lab, node)}")
    return str(got[0])


def octavia_lb(sc, lb: str, vips: dict[str, str], vip_port, switches, router, fip=None) -> None:
    """NB rows as Octavia's OVN provider writes them (ovn-nbctl, one transaction)."""
    refs = json.dumps({f"neutron-{s.name}": 1 for s in switches})
    args = ["create", "Load_Balancer", f"name={lb}", "protocol=tcp",
            "vips=" + "{" + ", ".join(f'"{k}"="{v}"' for k, v in vips.items()) + "}",
            f"external_ids:neutron\\:vip={vip_port.ip4}",
            f"external_ids:neutron\\:vip_port_id={vip_port.name}",
            f"external_ids:lr_ref=neutron-{router.name}", f"external_ids:ls_refs={json.dumps(refs)}"]
    if fip is not None:
        args.append(f"external_ids:neutron\\:vip_fip={fip.ip}")
    sc.nbctl(*args)
    for s in switches:
        sc.nbctl("ls-lb-add", s.name, lb)
    sc.nbctl("lr-lb-add", router.name, lb)
    sc.nbctl("set", "Logical_Switch_Port", vip_port.name, "external_ids:neutron\\:device_owner=Octavia",
             f"external_ids:neutron\\:port_name=ovn-lb-vip-{lb}")


def set_members(sc, lb: str, vips: dict[str, str]) -> None:
    sc.nbctl("set", "Load_Balancer", lb,
             "vips=" + "{" + ", ".join(f'"{k}"="{v}"' for k, v in vips.items()) + "}")


@pytest.fixture(scope="module")
def world(lab) -> Iterator[dict]:
    sc = lab.scenario
    nodes = [lab.nodes[n] for n in NODES]
    made: dict = {}
    servers: list[subprocess.Popen] = []
    try:
        for node in nodes:
            node.start_agent(ready=lambda node=node: (node.state_dir / "status.json").exists(),
                             timeout=120)
        pub = made["pub"] = sc.provider_network("lbpub")
        ten = made["ten"] = sc.tenant_network("lbten", cidr4=TEN4)
        router = made["router"] = sc.router(pub, ["node1", "node2"], "lbr1")
        sc.attach(router, ten, snat=False)  # see the module docstring
        members = [lab.add_vm(name, ten, "node2") for name in ("lbm1", "lbm2")]
        for vm in members:
            lab.wait_bound(vm.name, "node2")
            servers.append(subprocess.Popen(
                netns_argv(["python3", "-c", RESPONDER, vm.name, str(MEMBER_PORT)], lab.ns_name(vm.name)),
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        backends = ",".join(f"{vm.ip4}:{MEMBER_PORT}" for vm in members)
        prov_port = sc.add_port(pub, "lbvipprov")
        ten_port = sc.add_port(ten, "lbvipten")
        fip = sc.add_fip(router, ten_port, distributed=False)
        prov_vips = {f"{prov_port.ip4}:{PORT}": backends}
        ten_vips = {f"{ten_port.ip4}:{PORT}": backends, f"{fip.ip}:{PORT}": backends}
        octavia_lb(sc, PROV_LB, prov_vips, prov_port, (pub, ten), router)
        octavia_lb(sc, TEN_LB, ten_vips, ten_port, (ten,), router, fip)
        made["lbs"] = True
        wait_for(lambda: lab.port_binding(router.cr_port).get("chassis") == "node1", timeout=60,
                 what=f"{router.cr_port} bound to node1")
        yield {"router": router, "members": {vm.name for vm in members}, "prov": prov_port.ip4,
               "ten": ten_port.ip4, "fip": fip, "prov_vips": prov_vips, "ten_vips": ten_vips,
               "ports": (prov_port, ten_port)}
    finally:
        for proc in servers:
            proc.kill()
            proc.wait(timeout=10)
        if made.pop("lbs", None):
            sc.nbctl("--if-exists", "lb-del", PROV_LB, "--", "--if-exists", "lb-del", TEN_LB)
        lab.remove_world("lbm", made, ("ten", "pub"), nodes)


def test_provider_vip_reaches_a_member_through_the_gateway_node(lab, world):
    vip = world["prov"]
    wait_routed(lab, f"{vip}/32", "node1")
    wait_answered(lab, vip, world["members"], "node1")
    seen = {tcp_answer(lab, vip) for _ in range(12)}
    assert seen == world["members"], seen  # both members answer: OVN load-balances
    cp = lab.nodes["node1"].ovnbgp("explain", str(vip), check=False)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    assert f"load balancer VIP {PROV_LB} (Load_Balancer " in cp.stdout, cp.stdout
    cp = lab.nodes["node2"].ovnbgp("explain", str(vip), check=False)
    assert cp.returncode == 1 and "bound to chassis node1, not here" in cp.stdout, cp.stdout


def test_tenant_vip_floating_ip_reaches_a_member(lab, world):
    fip = world["fip"].ip
    wait_routed(lab, f"{fip}/32", "node1")
    wait_answered(lab, fip, world["members"], "node1")
    for node in NODES:  # the tenant VIP itself is never a host route
        assert f"{world['ten']}/32" not in dummy_prefixes(lab, node)


def test_vips_follow_the_gateway(lab, world):
    sc, router = lab.scenario, world["router"]
    try:
        sc.set_gateway_chassis(router, ["node2", "node1"])
        wait_for(lambda: lab.port_binding(router.cr_port).get("chassis") == "node2", timeout=60,
                 what=f"{router.cr_port} bound to node2")
        for ip in (world["prov"], world["fip"].ip):
            wait_routed(lab, f"{ip}/32", "node2")
            wait_answered(lab, ip, world["members"], "node2")
        wait_for(lambda: not {f"{world['prov']}/32", f"{world['fip'].ip}/32"} & dummy_prefixes(lab, "node1"),
                 timeout=30, what="node1 withdrew the VIPs")
    finally:
        sc.set_gateway_chassis(router, ["node1", "node2"])
        wait_for(lambda: lab.port_binding(router.cr_port).get("chassis") == "node1", timeout=60,
                 what=f"{router.cr_port} back on node1")
    for ip in (world["prov"], world["fip"].ip):
        wait_routed(lab, f"{ip}/32", "node1")
        wait_answered(lab, ip, world["members"], "node1")


def test_last_member_gone_withdraws_and_a_member_back_exposes(lab, world):
    sc, vip = lab.scenario, world["prov"]
    set_members(sc, PROV_LB, {k: "" for k in world["prov_vips"]})
    wait_gone(lab, f"{vip}/32")
    for node in NODES:
        assert f"{vip}/32" not in dummy_prefixes(lab, node)
    assert f"{world['fip'].ip}/32" in dummy_prefixes(lab, "node1")  # the other LB stays
    cp = lab.nodes["node1"].ovnbgp("explain", str(vip), check=False)
    assert cp.returncode == 1 and f"VIP {vip} has no members" in cp.stdout, cp.stdout
    set_members(sc, PROV_LB, world["prov_vips"])
    wait_routed(lab, f"{vip}/32", "node1")
    wait_answered(lab, vip, world["members"], "node1")


def test_deleting_the_load_balancers_withdraws_them_everywhere(lab, world):
    sc = lab.scenario
    prov_port, ten_port = world["ports"]
    sc.nbctl("lb-del", PROV_LB)
    # Octavia deletes the VIP port; Neutron then drops the floating IP's NAT
    sc.delete_port(ten_port)
    sc.nbctl("lb-del", TEN_LB)
    sc.delete_port(prov_port)
    for ip in (world["prov"], world["fip"].ip):
        wait_gone(lab, f"{ip}/32")
        for node in NODES:
            assert f"{ip}/32" not in dummy_prefixes(lab, node), node
        assert spine_paths(lab, f"{ip}/32") == []
        assert tcp_answer(lab, ip) is None

"""End to end: real packets from a host outside the cloud reach VMs only through the routes
ovnbgp made the fabric learn (tests/lab: spine, leaf1, leaf2, node1 and node2 with OVS, a real
ovn-controller and FRR, OVN central, the outside host 203.0.113.10 / 2001:db8:ffff::10).

ovnbgp runs on node1 and node2 for the whole module. The OVN objects are Neutron's usual
ones: a provider network (IPv4 + IPv6, physnet -> br-ex), a router with its gateway (cr-lrp)
on node1 and node2 as standby, a tenant network behind it (SNAT on, as Neutron's default), and:

  e2ep1  provider VM, node1          -> exposed on its node (IPv4 and IPv6)
  e2et1  tenant VM, node2, with a FIP -> the FIP exposed on node2 (DVR)
  e2et2  tenant VM, node2             -> reached through the cr-lrp's node (node1)

Each test proves a path with a ping from the outside host, the VM's own ICMP counters (the
echo reached that VM), and the fabric's state: the spine's BGP paths come from the right
node's AS and the spine and the leaf forward to that node. Migration and the gateway move are
timed with a background pinger (10 pings a second); the time until pings resume and the
longest gap are printed and written to <vm results>/e2e-time-to-resume.txt (no timing is
asserted: figures, not pass/fail).

IPv6 on the provider network needs the node to answer the VMs' neighbour solicitations for
their gateway: the lab's node config lists it in kernel.ndp_proxy (labtool ovnbgp-config), and
ovnbgp installs the proxy entry on br-ex.

The gateway move: OVN moves a cr-lrp by itself (BFD) only when the standby chassis still sees
another chassis of the group; with the two chassis of this lab, a node that loses its peer
counts itself isolated and does not claim (checked here: pulling node1's cable released the
cr-lrp and left it unbound). So the move is made in the Northbound, by giving node2 the
highest priority, which is what Neutron does when it reschedules a gateway.

At the end the OVN objects are deleted, the agents stopped, each node gets `ovnbgp cleanup
--yes` and its FRR config back (`ovnbgp frr apply`), so the lab is as it was.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.harness.proc import wait_for
from tests.lab.checks import dummy_prefixes, icmp_echoes_received, routed_through, spine_paths, traces_of

NODES = ("node1", "node2")
FIGURES_FILE = "e2e-time-to-resume.txt"


# --- fixtures and helpers -----------------------------------------------------------------------


def _say(request: pytest.FixtureRequest, text: str) -> None:
    capman = request.config.pluginmanager.getplugin("capturemanager")
    if capman is not None:
        with capman.global_and_fixture_disabled():
            print(text, flush=True)
    else:
        print(text, flush=True)


class Figures:
    """Time-to-resume lines: printed at once (past pytest's capture), kept in the results dir."""

    def __init__(self, request: pytest.FixtureRequest, path: Path):
        self.request, self.path, self.lines = request, path, []

    def add(self, text: str) -> None:
        self.lines.append(text)
        _say(self.request, f"\ne2e figure: {text}")
        self.path.write_text("\n".join(self.lines) + "\n")


@pytest.fixture(scope="module")
def figures(request, vm_out) -> Figures:
    return Figures(request, vm_out / FIGURES_FILE)


@pytest.fixture(scope="module")
def world(lab) -> Iterator[dict]:
    sc = lab.scenario
    nodes = [lab.nodes[n] for n in NODES]
    made: dict = {}
    try:
        for node in nodes:
            node.start_agent(ready=lambda node=node: (node.state_dir / "status.json").exists(),
                             timeout=120)
        pub = made["pub"] = sc.provider_network("e2epub")  # the topology's provider subnets
        ten = made["ten"] = sc.tenant_network("e2eten")
        router = made["router"] = sc.router(pub, ["node1", "node2"], "e2er1")
        sc.attach(router, ten)
        p1 = lab.add_vm("e2ep1", pub, "node1")
        t1 = lab.add_vm("e2et1", ten, "node2")
        t2 = lab.add_vm("e2et2", ten, "node2")
        fip = sc.add_fip(router, t1.port)
        for vm, node in ((p1, "node1"), (t1, "node2"), (t2, "node2")):
            lab.wait_bound(vm.name, node)
        wait_for(lambda: lab.port_binding(router.cr_port).get("chassis") == "node1", timeout=60,
                 what=f"{router.cr_port} bound to node1",
                 details=lambda: lab.central.sbctl("show"))
        yield {"pub": pub, "ten": ten, "router": router, "p1": p1, "t1": t1, "t2": t2, "fip": fip}
    finally:
        lab.remove_world("e2e", made, ("ten", "pub"), nodes)


def wait_routed(lab, prefix: str, node: str, timeout: float = 90) -> None:
    """Wait until the fabric forwards `prefix` to `node` (spine paths, spine and leaf FIB)."""
    wait_for(lambda: routed_through(lab, prefix, node) is None, timeout=timeout, interval=0.5,
             what=f"{prefix} routed to {node}",
             details=lambda: f"{routed_through(lab, prefix, node)}\n"
                             f"{agent_log_tail(lab, node)}")


def wait_gone(lab, prefix: str, timeout: float = 90) -> None:
    wait_for(lambda: not spine_paths(lab, prefix), timeout=timeout, interval=0.5,
             what=f"{prefix} withdrawn at the spine",
             details=lambda: f"spine paths: {spine_paths(lab, prefix)}")


def agent_log_tail(lab, node: str, chars: int = 3000) -> str:
    path = lab.nodes[node].dir / "ovnbgp.log"
    try:
        return f"--- {node} ovnbgp.log (tail)\n" + path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


def pings_reach(lab, vm, dst, count: int = 3) -> None:
    """Ping `dst` from the outside host: every echo answered, and each one counted by the VM's
    own kernel (so the answer came from that VM)."""
    v6 = ":" in str(dst)
    before = icmp_echoes_received(lab, vm.name)[1 if v6 else 0]
    cp = lab.exec("outside", "ping", "-n", "-c", str(count), "-i", "0.2", "-W", "2", str(dst),
                  check=False)
    assert cp.returncode == 0, f"outside -> {dst}:\n{cp.stdout}{cp.stderr}"
    after = icmp_echoes_received(lab, vm.name)[1 if v6 else 0]
    assert after - before >= count, f"{vm.name} counted {after - before} echo requests, sent {count}"


def vm_moved(lab, name: str, prefixes: tuple[str, ...], src: str, dst: str) -> Callable:
    """`check_moved` for timed_move when VM `name` migrates from `src` to `dst`: its port
    bound on dst, its `prefixes` on dst's dummy, the spine routing them to dst, and off src's
    dummy, each stage marked as it is seen."""
    want = set(prefixes)

    def moved(mark) -> None:
        lab.wait_bound(name, dst)
        mark(f"port up on {dst}")
        wait_for(lambda: want <= dummy_prefixes(lab, dst), timeout=60,
                 what=f"{name}'s IPs on {dst}'s dummy")
        mark(f"exposed on {dst}")
        for prefix in prefixes:
            wait_routed(lab, prefix, dst)
        mark(f"spine routes to {dst}")
        wait_for(lambda: not want & dummy_prefixes(lab, src), timeout=60,
                 what=f"{name}'s IPs off {src}'s dummy")

    return moved


def timed_move(lab, figures, what: str, dsts, action, check_moved) -> None:
    """Ping each of `dsts` from the outside host in the background, run `action` at t0, wait
    until `check_moved(mark)` returns and every pinger has a reply after t0; record the
    figures. `check_moved` calls mark("label") as each stage is seen (seen by polling, so
    each milestone is an upper bound)."""
    pingers = {str(d): lab.pinger("outside", d) for d in dsts}
    logs = {}
    marks: list[tuple[str, float]] = []
    try:
        for p in pingers.values():
            p.wait_reply(timeout=30)
        t0 = time.time()
        action()
        marks.append(("action done", time.time()))
        check_moved(lambda label: marks.append((label, time.time())))
        for p in pingers.values():
            p.wait_reply(after=t0, timeout=60)
    finally:
        for d, p in pingers.items():
            logs[d] = p.stop()
    parts = []
    for d, log in logs.items():
        assert log.first_reply_after(t0) is not None, f"{d}: no reply after {what}:\n{log.output[-800:]}"
        assert any(t < t0 for t, _ in log.replies), f"{d}: no reply before {what}"
        resumed, dark = outage(log, t0)
        sent = re.search(r"(\d+) packets transmitted, (\d+) received", log.output)
        lost = f", {int(sent[1]) - int(sent[2])} of {sent[1]} pings lost" if sent else ""
        parts.append(f"{d} answered again {resumed:.2f} s after it began (no replies for "
                     f"{dark:.2f} s{lost})")
    stages = ", ".join(f"{label} <= {t - t0:.2f} s" for label, t in marks)
    figures.add(f"{what}: " + "; ".join(parts) + f" [{stages}]")


def outage(log, t0: float) -> tuple[float, float]:
    """(seconds from t0 until the pings were answered for good, seconds without a reply after
    t0): from the silences of the ping log that end after t0 (the one running into the stop
    of the pinger does not count)."""
    silences = [(start, length) for start, length in log.gaps()
                if start + length > t0 and start + length < log.stopped - 0.01]
    if not silences:
        return 0.0, 0.0
    end = max(start + length for start, length in silences)
    return end - t0, sum(min(length, start + length - t0) for start, length in silences)


# --- the tests ----------------------------------------------------------------------------------


def test_provider_vm_reachable_in_both_families_through_its_node(lab, world):
    p1 = world["p1"]
    wait_routed(lab, f"{p1.ip4}/32", "node1")
    wait_routed(lab, f"{p1.ip6}/128", "node1")
    # One path through each of node1's leaves (dual-homed: ECMP at the spine).
    assert sorted(spine_paths(lab, f"{p1.ip4}/32")) == sorted(
        [[lab.topo.host(leaf).asn, lab.nodes["node1"].asn] for leaf in lab.nodes["node1"].leaves])
    assert {f"{p1.ip4}/32", f"{p1.ip6}/128"} <= dummy_prefixes(lab, "node1")
    assert not {f"{p1.ip4}/32", f"{p1.ip6}/128"} & dummy_prefixes(lab, "node2")
    lab.wait_ping("outside", p1.ip4, timeout=60)
    lab.wait_ping("outside", p1.ip6, timeout=60)
    pings_reach(lab, p1, p1.ip4)
    pings_reach(lab, p1, p1.ip6)
    # IPv6 works because br-ex answers for the provider gateway (kernel.ndp_proxy).
    gw6 = str(world["pub"].gateway6)
    proxies = json.loads(lab.exec("node1", "ip", "-j", "-6", "neigh", "show", "proxy").stdout or "[]")
    assert any(p["dst"] == gw6 and p["dev"] == "br-ex" and str(p.get("protocol")) == "240"
               for p in proxies), proxies
    # ... and the VM reaches the outside host back the same way (its default routes via the
    # provider gateways, answered by node1's br-ex).
    outside = lab.topo.ends_of("outside")[0]
    assert p1.ping(outside.addr4.ip, count=2) and p1.ping(outside.addr6.ip, count=2)


def test_floating_ip_reaches_the_vm_on_its_own_node(lab, world):
    t1, fip = world["t1"], world["fip"]
    wait_routed(lab, f"{fip.ip}/32", "node2")  # the VM's node, not the gateway's (DVR)
    assert f"{fip.ip}/32" in dummy_prefixes(lab, "node2")
    assert f"{fip.ip}/32" not in dummy_prefixes(lab, "node1")
    lab.wait_ping("outside", fip.ip, timeout=60)
    pings_reach(lab, t1, fip.ip)


def test_tenant_vm_reachable_through_the_gateway_node(lab, world):
    t2, ten = world["t2"], world["ten"]
    # The VM runs on node2; its router's gateway (cr-lrp) is on node1, so node1 exposes the
    # tenant subnet and the VM's IP, and OVN carries the packets to node2 over geneve.
    for prefix in (str(ten.cidr4), f"{t2.ip4}/32", str(ten.cidr6), f"{t2.ip6}/128"):
        wait_routed(lab, prefix, "node1")
    assert {str(ten.cidr4), f"{t2.ip4}/32"} <= dummy_prefixes(lab, "node1")
    assert f"{t2.ip4}/32" not in dummy_prefixes(lab, "node2")
    lab.wait_ping("outside", t2.ip4, timeout=60)
    pings_reach(lab, t2, t2.ip4)
    lab.wait_ping("outside", t2.ip6, timeout=60)
    pings_reach(lab, t2, t2.ip6)


def test_migration_moves_the_route_and_pings_resume(lab, world, figures):
    p1 = world["p1"]
    p4, p6 = f"{p1.ip4}/32", f"{p1.ip6}/128"
    wait_routed(lab, p4, "node1")
    for src, dst in (("node1", "node2"), ("node2", "node1")):
        timed_move(lab, figures, f"migration of a provider VM {src} -> {dst}",
                   (p1.ip4, p1.ip6), lambda dst=dst: lab.migrate(p1, dst),
                   vm_moved(lab, p1.name, (p4, p6), src, dst))
        assert not traces_of(lab, src, (p1.ip4, p1.ip6)), traces_of(lab, src, (p1.ip4, p1.ip6))
    pings_reach(lab, p1, p1.ip4)


def test_gateway_move_moves_the_tenant_routes_and_pings_resume(lab, world, figures):
    router, ten, t2 = world["router"], world["ten"], world["t2"]
    tenant_prefixes = (str(ten.cidr4), f"{t2.ip4}/32", f"{router.gateway_ip4}/32")
    for prefix in tenant_prefixes:
        wait_routed(lab, prefix, "node1")
    for order in (["node2", "node1"], ["node1", "node2"]):
        dst, src = order

        def moved(mark, dst=dst, src=src):
            wait_for(lambda: lab.port_binding(router.cr_port).get("chassis") == dst, timeout=60,
                     what=f"{router.cr_port} bound to {dst}",
                     details=lambda: repr(lab.port_binding(router.cr_port)))
            mark(f"cr-lrp on {dst}")
            for prefix in tenant_prefixes:
                wait_routed(lab, prefix, dst)
            mark(f"spine routes to {dst}")

        timed_move(lab, figures, f"gateway (cr-lrp) {src} -> {dst}, tenant VM on node2",
                   (t2.ip4,), lambda order=order: lab.scenario.set_gateway_chassis(router, order),
                   moved)
        assert not traces_of(lab, src, (t2.ip4, router.gateway_ip4)), \
            traces_of(lab, src, (t2.ip4, router.gateway_ip4))
    # The floating IP stayed where its VM is all along.
    assert routed_through(lab, f"{world['fip'].ip}/32", "node2") is None


def test_unbind_withdraws_and_leaves_nothing_on_the_node(lab, world):
    p1, t1, fip = world["p1"], world["t1"], world["fip"]
    assert p1.node == "node1" and t1.node == "node2"
    wait_routed(lab, f"{p1.ip4}/32", "node1")
    wait_routed(lab, f"{fip.ip}/32", "node2")
    lab.unbind(p1)
    lab.unbind(t1)
    lab.wait_bound(p1.name, None)
    lab.wait_bound(t1.name, None)
    for prefix in (f"{p1.ip4}/32", f"{p1.ip6}/128", f"{fip.ip}/32", f"{t1.ip4}/32"):
        wait_gone(lab, prefix)
    # Nothing of theirs on either node: no dummy address, rule, route or neighbour.
    for node in NODES:
        wait_for(lambda node=node: not traces_of(lab, node, (p1.ip4, p1.ip6, fip.ip, t1.ip4, t1.ip6)),
                 timeout=30, what=f"nothing left of the unbound VMs on {node}",
                 details=lambda node=node: "\n".join(traces_of(lab, node, (p1.ip4, p1.ip6, fip.ip,
                                                                           t1.ip4, t1.ip6))))
        desired = json.loads(lab.nodes[node].ovnbgp("desired", "--json").stdout)
        ports = {e["port"] for e in desired["exposures"]}
        assert not ports & {p1.name, t1.name}, desired["exposures"]
        v = lab.nodes[node].ovnbgp("verify", check=False)
        assert v.returncode == 0, v.stdout + v.stderr
    assert not lab.ping("outside", p1.ip4, wait=1)
    assert not lab.ping("outside", fip.ip, wait=1)
    # What is still bound is still served.
    lab.wait_ping("outside", world["t2"].ip4, timeout=30)


def test_cleanup_removes_everything_ovnbgp_made(lab, world):
    """Last: `ovnbgp cleanup --yes` on each node (agent stopped) withdraws everything and
    leaves none of ovnbgp's kernel objects (the module's teardown then finds nothing to do)."""
    t2 = world["t2"]
    for name in NODES:
        node = lab.nodes[name]
        node.stop_agent()
        cp = node.ovnbgp("cleanup", "--yes", check=False)
        assert cp.returncode == 0, cp.stdout + cp.stderr
        ns = node.ns.name
        assert lab.exec(name, "ip", "link", "show", "dev", "ovn", check=False).returncode != 0
        assert lab.exec(name, "ip", "link", "show", "dev", "ovn-bgp-vrf", check=False).returncode != 0
        for fam in ("-4", "-6"):
            for what in (["rule", "show"], ["route", "show", "table", "all"],
                         ["neigh", "show"], ["neigh", "show", "proxy"]):
                out = json.loads(lab.exec(name, "ip", "-j", fam, *what).stdout or "[]")
                ours = [o for o in out if str(o.get("protocol", "")) == "240"]
                assert not ours, f"{ns}: ip {fam} {' '.join(what)}: {ours}"
    for prefix in (f"{t2.ip4}/32", str(world["ten"].cidr4), f"{world['p1'].ip4}/32"):
        wait_gone(lab, prefix)
    assert not lab.ping("outside", t2.ip4, wait=1)

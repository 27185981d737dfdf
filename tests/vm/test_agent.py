"""The whole agent (`ovnbgp run`) on a real kernel: real OVN NB/SB/northd, a real OVS (netdev
bridges in the node's namespace), the node's FRR driven by ovnbgp, and a leaf FRR in another
namespace as the BGP peer. Ports are bound with `ovn-sbctl lsp-bind` (no ovn-controller here;
the lab tests run a real one).

One topology per module (tests/harness/node_lab.py's NodeLab); each test leaves the port bound
as it found it.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.harness.frr import bgp_prefixes, wait_bgp_prefix
from tests.harness.node_lab import KERNEL_MODULES, METRICS, NodeLab
from tests.harness.ovn import OvnCentral
from tests.harness.proc import netns_argv, run, wait_for

VM_MAC, VM4, VM6 = "fa:16:3e:00:00:01", "172.24.4.10", "2001:db8::10"


class Node(NodeLab):
    def leaf_has(self, prefix: str) -> bool:
        afi = "ipv6" if ":" in prefix else "ipv4"
        return prefix in bgp_prefixes(self.leaf, afi)


@pytest.fixture(scope="module")
def node(modprobe, tmp_path_factory) -> Iterator[Node]:
    for mod in KERNEL_MODULES:
        modprobe(mod)
    work = tmp_path_factory.mktemp("agent")
    with Node(work, OvnCentral(work / "ovn")).running() as node:
        node.bind_provider_vm("vm1", f"{VM_MAC} {VM4} {VM6}")
        # The lab's own rt_tables file (not the shared /etc drop-in): other vm test modules
        # read `ip rule` output in this boot.
        node.start_agent(work / "agent", node.agent_config(debounce=0.05, resync_interval=20,
                                                           log_level="debug"))
        yield node


def _wait(pred, what: str, node: Node, timeout: float = 30):
    return wait_for(pred, timeout=timeout, what=what, details=lambda: node.agent.log_tail(30))


def test_bound_port_is_steered_then_advertised(node: Node):
    _wait(lambda: {f"{VM4}/32", f"{VM6}/128"} <= node.dummy(), "VM IPs on the dummy", node)
    rules = node.ip("rule", "show")
    assert f"to {VM4} lookup 200 proto 240" in rules, rules
    assert f"to {VM6} lookup 200 proto 240" in node.ip("-6", "rule", "show")
    assert "200 br-ex" in (node.agent.workdir.parent / "rt_tables.conf").read_text()
    routes = node.ip("route", "show", "table", "200")
    assert "default dev br-ex proto 240 scope link" in routes, routes
    assert "1.1.1.1/32" in node.ip("addr", "show", "dev", "br-ex")
    flows = node.ovs.ofctl("dump-flows", "br-ex", "cookie=0x6f766e626770/-1")
    assert flows.count("mod_dl_dst") == 2, flows
    wait_bgp_prefix(node.leaf, f"{VM4}/32", timeout=60, source=node.frr)
    wait_bgp_prefix(node.leaf, f"{VM6}/128", afi="ipv6", timeout=60, source=node.frr)
    # The bridge IP is a connected route of the node, never advertised.
    assert "1.1.1.1/32" not in bgp_prefixes(node.leaf, "ipv4")


def test_unbind_withdraws_then_removes_steering(node: Node):
    _wait(lambda: f"{VM4}/32" in node.dummy(), "VM IP on the dummy", node)
    node.ovn.sbctl("lsp-unbind", "vm1")
    _wait(lambda: not node.dummy() & {f"{VM4}/32", f"{VM6}/128"}, "VM IPs off the dummy", node)
    wait_bgp_prefix(node.leaf, f"{VM4}/32", present=False, timeout=60)
    _wait(lambda: f"to {VM4} " not in node.ip("rule", "show"), "the rule removed", node)
    node.ovn.sbctl("lsp-bind", "vm1", "ch1")
    _wait(lambda: f"{VM4}/32" in node.dummy(), "VM IP back on the dummy", node)
    wait_bgp_prefix(node.leaf, f"{VM4}/32", timeout=60)


def test_status_metrics_and_verify(node: Node):
    _wait(lambda: f"{VM4}/32" in node.dummy(), "VM IP on the dummy", node)
    wait_bgp_prefix(node.leaf, f"{VM4}/32", timeout=60)
    st = node.agent.status()
    assert st["running"] and st["connected"] == {"sb": True, "ovs": True}, st
    assert st["exposures"]["provider-vm"] == 2, st
    assert st["last_sync"]["at"] > 0 and st["syncs"] >= 1
    assert any(p["state"] == "Established" for p in st["peers"]), st["peers"]
    text = node.agent.cli("status").stdout
    assert "running, pid" in text and "provider-vm 2" in text, text
    metrics = run(netns_argv(["curl", "-s", f"http://{METRICS}/metrics"], node.ns.name),
                  check=False).stdout if _have("curl") else _fetch(node, f"http://{METRICS}/metrics")
    assert 'ovnbgp_exposures{kind="provider-vm"} 2.0' in metrics, metrics[:2000]
    assert 'ovnbgp_db_connected{db="sb"} 1.0' in metrics
    assert "ovnbgp_reconcile_duration_seconds_count" in metrics
    v = node.agent.cli("verify")
    assert v.returncode == 0, v.stdout + v.stderr
    vj = json.loads(node.agent.cli("verify", "--json").stdout)
    assert vj["ok"] is True, vj


def test_restart_adopts_without_touching_addresses(node: Node):
    """SIGKILL + restart: no address leaves the dummy, no rule is deleted, nothing flaps."""
    _wait(lambda: {f"{VM4}/32", f"{VM6}/128"} <= node.dummy(), "VM IPs on the dummy", node)
    before = node.dummy()
    mon = subprocess.Popen(netns_argv(["ip", "monitor", "address", "rule", "route"], node.ns.name),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        node.agent.kill()
        assert node.dummy() == before  # a crash changes nothing on the node
        node.agent.start(timeout=90)
        time.sleep(2)
    finally:
        mon.terminate()
        out = mon.communicate(timeout=10)[0]
    deleted = [ln for ln in out.splitlines() if ln.startswith("Deleted")]
    assert not deleted, out
    assert node.dummy() == before
    assert node.leaf_has(f"{VM4}/32")


def _have(tool: str) -> bool:
    import shutil

    return shutil.which(tool) is not None


def _fetch(node: Node, url: str) -> str:
    code = f"import urllib.request,sys; sys.stdout.write(urllib.request.urlopen({url!r}).read().decode())"
    import sys

    return run(netns_argv([sys.executable, "-c", code], node.ns.name)).stdout

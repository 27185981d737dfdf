"""What ovnbgp withdraws, and what it never destroys (issue 17, items 1 and 2), on a real kernel
with real OVS bridges and the whole agent (tests/harness/node_lab.py):

1. unusable bridge data (ovn-bridge-mappings unset, empty, unparsable, or mapping to a bridge
   that does not exist) HOLDS: no address leaves the dummy, no rule, route, neighbour, bridge IP
   or flow is deleted (watched with `ip monitor` and before/after snapshots), the hold shows in
   the status file, `ovnbgp status`, the metrics and `ovnbgp verify`; fixing the mapping changes
   nothing, an agent restart while it is broken withdraws nothing, and a VALID mapping that drops
   the physnet withdraws;
2. the operator's routes (main table and table 200) and permanent neighbours on br-ex survive
   both the bridge leaving the mappings and `ovnbgp cleanup --yes` (the kernel flushes them with
   the device's last IPv4 address: ovnbgp keeps its bridge IP then, and says so).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from tests.harness.node_lab import KERNEL_MODULES, METRICS, NodeLab
from tests.harness.ovn import OvnCentral
from tests.harness.proc import netns_argv, run, wait_for

VM_MAC, VM4, VM6 = "fa:16:3e:00:00:01", "172.24.4.10", "2001:db8::10"
COOKIE = "cookie=0x6f766e626770/-1"
GOOD = "public:br-ex"
# Bad values: as ovs-vsctl atoms (quoted), None = the key removed.
BAD = ['"public"', '"public:br-ex:x"', '""', '":"', '"public:br-nope"', None]
OPERATOR = [  # (add argv, show argv, text that must stay in the show output)
    (("route", "add", "198.51.100.0/24", "dev", "br-ex"), ("route", "show"), "198.51.100.0/24 dev br-ex"),
    (("route", "add", "198.51.101.0/24", "dev", "br-ex", "table", "200"),
     ("route", "show", "table", "200"), "198.51.101.0/24 dev br-ex"),
    (("neigh", "add", "198.51.100.9", "lladdr", "02:00:00:00:00:0a", "dev", "br-ex", "nud",
      "permanent"), ("neigh", "show", "dev", "br-ex"), "198.51.100.9 lladdr 02:00:00:00:00:0a PERMANENT"),
    (("-6", "route", "add", "2001:db8:99::/64", "dev", "br-ex"), ("-6", "route", "show"),
     "2001:db8:99::/64 dev br-ex"),
    (("-6", "neigh", "add", "2001:db8:99::9", "lladdr", "02:00:00:00:00:0b", "dev", "br-ex", "nud",
      "permanent"), ("-6", "neigh", "show", "dev", "br-ex"), "2001:db8:99::9 lladdr 02:00:00:00:00:0b PERMANENT"),
]


@pytest.fixture(scope="module")
def node(modprobe, tmp_path_factory) -> Iterator[NodeLab]:
    for mod in KERNEL_MODULES:
        modprobe(mod)
    work = tmp_path_factory.mktemp("ownership")
    with NodeLab(work, OvnCentral(work / "ovn")).running() as node:
        node.bind_provider_vm("vm1", f"{VM_MAC} {VM4} {VM6}")
        node.ovs.add_bridge("br-o")  # a second provider bridge, for a valid mapping change
        node.ns.run("ip", "link", "set", "br-o", "up")
        node.start_agent(work / "agent", node.agent_config(work / "agent", debounce=0.05,
                                                            resync_interval=5))
        yield node


def _wait(pred, what: str, node: NodeLab, timeout: float = 30):
    return wait_for(pred, timeout=timeout, what=what, details=lambda: node.agent.log_tail(40))


def set_mapping(node: NodeLab, value: str | None) -> None:
    if value is None:
        node.ovs.vsctl("remove", "open", ".", "external_ids", "ovn-bridge-mappings")
    else:
        node.ovs.vsctl("set", "open", ".", f"external_ids:ovn-bridge-mappings={value}")


def status_file(node: NodeLab) -> dict:
    try:
        return json.loads((node.agent.state_dir / "status.json").read_text())
    except (OSError, ValueError):
        return {}


def held(node: NodeLab) -> list[str]:
    return status_file(node).get("held", [])


def snapshot(node: NodeLab, bridge: bool = True) -> dict[str, object]:
    """Everything ovnbgp put on the node for vm1 and br-ex (`bridge` False: not what is on
    br-ex itself, for when the bridge is gone)."""
    common = {
        "dummy": node.dummy(),
        "rules4": sorted(ln for ln in node.ip("rule", "show").splitlines() if "proto 240" in ln),
        "rules6": sorted(ln for ln in node.ip("-6", "rule", "show").splitlines() if "proto 240" in ln),
        "rt_tables": (node.agent.workdir / "rt_tables.conf").read_text(),
    }
    if not bridge:
        return common
    flows = node.ovs.ofctl("--no-stats", "dump-flows", "br-ex", COOKIE)
    return common | {
        "table200": sorted(node.ip("route", "show", "table", "200").splitlines()),
        "table200v6": sorted(node.ip("-6", "route", "show", "table", "200").splitlines()),
        "br-ex addrs": sorted(ln.split()[1] for ln in node.ip("addr", "show", "dev", "br-ex").splitlines()
                              if ln.strip().startswith("inet") and "scope link" not in ln),
        "neighbours": sorted(node.ip("neigh", "show", "dev", "br-ex").splitlines()),
        "flows": sorted(ln.split("actions=")[-1] for ln in flows.splitlines() if "actions=" in ln),
    }


class Monitor:
    """`ip monitor` of addresses, rules, routes and neighbours: every "Deleted" line."""

    def __init__(self, node: NodeLab):
        self.proc = subprocess.Popen(netns_argv(["ip", "monitor", "address", "rule", "route", "neigh"],
                                                node.ns.name),
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        time.sleep(0.3)

    def deleted(self) -> list[str]:
        self.proc.terminate()
        out = self.proc.communicate(timeout=10)[0]
        # neighbour state changes (STALE, PROBE...) of learned entries are not deletions
        return [ln for ln in out.splitlines() if ln.startswith("Deleted")]


def converged(node: NodeLab) -> dict[str, object]:
    _wait(lambda: {f"{VM4}/32", f"{VM6}/128"} <= node.dummy(), "VM IPs on the dummy", node)
    _wait(lambda: not held(node), "no hold in the status", node)
    _wait(lambda: len(snapshot(node)["flows"]) == 2, "both flows on br-ex", node)
    time.sleep(1)
    return snapshot(node)


def acted_on(node: NodeLab, before: dict[str, object], what: str, bridge: bool = True) -> None:
    """Wait until the agent has acted on the broken data (the hold shows in the status file,
    or, from an agent that withdraws, the node changed), then a few more reconciles."""
    def acted() -> bool:
        now = snapshot(node, bridge=bridge)
        return bool(held(node)) or now != {k: before[k] for k in now}
    _wait(acted, what, node)
    time.sleep(3)  # several reconciles (debounce 0.05 s, resync 5 s)


@pytest.mark.parametrize("bad", BAD, ids=lambda v: "key-removed" if v is None else v.strip('"') or "empty")
def test_unusable_mapping_holds_everything(node: NodeLab, bad: str | None):
    before = converged(node)
    mon = Monitor(node)
    try:
        set_mapping(node, bad)
        acted_on(node, before, "the hold in the status file")
        during = snapshot(node)
        text = node.agent.cli("status").stdout
        set_mapping(node, GOOD)
        _wait(lambda: not held(node), "the hold lifted", node)
        time.sleep(2)
        after = snapshot(node)
    finally:
        deleted = mon.deleted()
        set_mapping(node, GOOD)
    assert not deleted, deleted
    assert during == before
    assert after == before
    assert "held:" in text, text
    assert node.agent.alive()


def test_missing_system_id_holds_everything(node: NodeLab):
    """external_ids:system-id removed by mistake: no port can be known bound here, so the
    model sees nothing exposed; the agent holds everything instead of withdrawing it."""
    before = converged(node)
    mon = Monitor(node)
    try:
        node.ovs.vsctl("remove", "open", ".", "external_ids", "system-id")
        acted_on(node, before, "the hold in the status file")
        during = snapshot(node)
        was_held = held(node)
        node.ovs.vsctl("set", "open", ".", "external_ids:system-id=ch1")
        _wait(lambda: not held(node), "the hold lifted", node)
        time.sleep(2)
        after = snapshot(node)
    finally:
        deleted = mon.deleted()
        node.ovs.vsctl("set", "open", ".", "external_ids:system-id=ch1")
    assert not deleted, deleted
    assert during == before
    assert after == before
    assert was_held
    assert node.agent.alive()


def test_bridge_deleted_from_ovs_withdraws_nothing_else(node: NodeLab):
    """`ovs-vsctl del-br br-ex`: the kernel device goes, and the kernel takes the objects on
    it (bridge IPs, routes through it, its neighbours) with it. Nothing else may be withdrawn:
    the dummy's addresses, the rules and the rt_tables lines stay; all is back once the bridge
    is."""
    before = converged(node)
    mac = node.ovs.vsctl("get", "Interface", "br-ex", "mac_in_use").strip().strip('"')
    kept = ("dummy", "rules4", "rules6", "rt_tables")
    mon = Monitor(node)
    try:
        node.ovs.vsctl("del-br", "br-ex")
        acted_on(node, before, "the hold in the status file", bridge=False)
        was_held = held(node)
        during = {k: v for k, v in snapshot(node, bridge=False).items() if k in kept}
        bridge_left = "br-ex" in node.ip("-o", "link", "show")
    finally:
        deleted = mon.deleted()
        node.ovs.vsctl("--may-exist", "add-br", "br-ex", "--", "set", "Bridge", "br-ex",
                       f"datapath_type={node.ovs.datapath_type}", f"other-config:hwaddr={mac}")
        for name, localnet_port in node.localnets:  # br-int kept its side of each pair
            out, back = f"patch-{name}-to-br-int", f"patch-br-int-to-{name}"
            node.ovs.vsctl("add-port", "br-ex", out, "--", "set", "Interface", out, "type=patch",
                           f"options:peer={back}", "--", "set", "Port", out,
                           f"external_ids:ovn-localnet-port={localnet_port}")
        node.ns.run("ip", "link", "set", "br-ex", "up")
    assert not bridge_left
    assert not [ln for ln in deleted if "br-ex" not in ln], deleted
    assert during == {k: before[k] for k in kept}
    assert was_held
    try:
        _wait(lambda: snapshot(node) == before, "everything back on br-ex", node)
    finally:
        assert snapshot(node) == before
    assert node.agent.alive()


def test_hold_in_metrics_and_verify_and_across_a_restart(node: NodeLab):
    before = converged(node)
    mon = Monitor(node)
    try:
        set_mapping(node, '"public"')
        acted_on(node, before, "the hold in the status file")
        metrics = run(netns_argv([sys.executable, "-c", "import urllib.request,sys; sys.stdout.write("
                                  f"urllib.request.urlopen('http://{METRICS}/metrics').read().decode())"],
                                 node.ns.name)).stdout
        v = json.loads(node.agent.cli("verify", "--json").stdout)
        node.agent.kill()
        node.agent.start(timeout=90)  # starts with the broken mapping: adopts, holds
        acted_on(node, before, "the hold after the restart")
        during = snapshot(node)
        set_mapping(node, GOOD)
        _wait(lambda: not held(node), "the hold lifted", node)
        time.sleep(2)
        after = snapshot(node)
    finally:
        deleted = mon.deleted()
        set_mapping(node, GOOD)
    assert not deleted, deleted
    assert during == before and after == before
    assert "ovnbgp_bridge_data_held 1.0" in metrics, metrics[:3000]
    assert any(p.startswith("held:") for p in v["problems"]), v


def test_valid_mapping_change_withdraws(node: NodeLab):
    converged(node)
    try:
        set_mapping(node, '"other:br-o"')  # valid, and br-o exists: public is gone from here
        _wait(lambda: not node.dummy() & {f"{VM4}/32", f"{VM6}/128"}, "VM IPs withdrawn", node)
        _wait(lambda: f"to {VM4} " not in node.ip("rule", "show"), "the rule removed", node)
        _wait(lambda: not snapshot(node)["flows"], "the flows removed", node)
        assert not held(node)
        assert "1.1.1.1/32" not in node.ip("addr", "show", "dev", "br-ex")
    finally:
        set_mapping(node, GOOD)
    converged(node)


def _add_operator_objects(node: NodeLab) -> None:
    """Add those not there (an earlier test may have left some)."""
    missing = _operator_objects_missing(node)
    for add, _show, text in OPERATOR:
        if text in missing:
            node.ns.run("ip", *add)


def _operator_objects_missing(node: NodeLab) -> list[str]:
    return [text for _add, show, text in OPERATOR if text not in node.ip(*show)]


def test_operator_objects_survive_the_bridge_leaving_the_mappings(node: NodeLab):
    converged(node)
    _add_operator_objects(node)
    assert not _operator_objects_missing(node)
    try:
        set_mapping(node, '"other:br-o"')
        _wait(lambda: not node.dummy() & {f"{VM4}/32", f"{VM6}/128"}, "VM IPs withdrawn", node)
        _wait(lambda: "fd53:d91e:400:7f17::1" not in node.ip("addr", "show", "dev", "br-ex"),
              "the IPv6 bridge IP removed", node)
        time.sleep(2)
        assert not _operator_objects_missing(node), _operator_objects_missing(node)
        # kept: the last IPv4 address of br-ex, which the operator's objects depend on
        assert "1.1.1.1/32" in node.ip("addr", "show", "dev", "br-ex")
        assert any("kept" in w and "1.1.1.1/32" in w for w in status_file(node).get("waiting", [])), \
            status_file(node)
    finally:
        set_mapping(node, GOOD)
    converged(node)
    assert not _operator_objects_missing(node)


def test_operator_objects_survive_cleanup(node: NodeLab):
    converged(node)
    _add_operator_objects(node)
    node.agent.stop()
    try:
        out = node.agent.cli("cleanup", "--yes")
        assert out.returncode == 0, out.stdout + out.stderr
        assert "kept" in out.stdout and "1.1.1.1/32" in out.stdout, out.stdout
        assert not _operator_objects_missing(node), (_operator_objects_missing(node), out.stdout)
        assert not node.dummy()
        assert "proto 240" not in node.ip("rule", "show")
        assert not node.ovs.ofctl("dump-flows", "br-ex", COOKIE).count("mod_dl_dst")
    finally:
        node.agent.start(timeout=90)
    converged(node)

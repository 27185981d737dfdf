"""The OVS harness runs a real ovsdb-server + ovs-vswitchd (netdev datapath on the host)."""

from __future__ import annotations

import pytest

from tests.harness.netns import unique_name, veth
from tests.harness.ovs import OvsNode
from tests.harness.proc import CommandError, DaemonError, run

COOKIE = "0xfeed0001"


def _flows_with_cookie(node: OvsNode, bridge: str) -> list[str]:
    out = node.ofctl("dump-flows", bridge, f"cookie={COOKIE}/-1")
    return [line for line in out.splitlines() if "cookie=" in line]


def test_netdev_bridge_flow_with_cookie(ovs_node):
    br = unique_name("brt", 6)
    ovs_node.add_bridge(br)
    assert ovs_node.vsctl("get", "Bridge", br, "datapath_type").strip() == "netdev"
    # the fixture's node has its own namespace, where the bridge's tap device lives
    assert ovs_node.netns and br in run(["ip", "-o", "link", "show", br], netns=ovs_node.netns).stdout

    ovs_node.ofctl("add-flow", br, f"cookie={COOKIE},table=0,priority=900,ip,in_port=LOCAL,"
                                   "actions=mod_dl_dst:02:00:00:00:00:01,NORMAL")
    flows = _flows_with_cookie(ovs_node, br)
    assert len(flows) == 1, flows
    assert "priority=900" in flows[0] and "mod_dl_dst:02:00:00:00:00:01" in flows[0]

    ovs_node.ofctl("del-flows", br, f"cookie={COOKIE}/-1")
    assert _flows_with_cookie(ovs_node, br) == []


def test_restart_vswitchd_keeps_db_but_not_flows(ovs_node):
    br = unique_name("brt", 6)
    ovs_node.add_bridge(br)
    ovs_node.ofctl("add-flow", br, f"cookie={COOKIE},priority=10,actions=drop")
    old_pid = ovs_node.vswitchd.pid
    ovs_node.restart_vswitchd()
    assert ovs_node.vswitchd.pid != old_pid and ovs_node.vswitchd.alive()
    assert br in ovs_node.vsctl("list-br").split()
    # OpenFlow rules live in vswitchd only: a restart drops them (the agent must re-add its own).
    assert _flows_with_cookie(ovs_node, br) == []


def test_ovs_node_inside_netns(tmp_path, netns_factory):
    ns = netns_factory("ovs")
    node = OvsNode(tmp_path / "ovs", netns=ns.name)
    try:
        node.start()
        node.add_bridge("br-ex")  # common name is fine: the tap lives in the node's namespace
        veth(ns, "eth1", None, unique_name("vo", 6))
        node.vsctl("add-port", "br-ex", "eth1")
        assert "br-ex" in ns.run("ip", "-o", "link", "show", "br-ex").stdout
        ports = node.vsctl("list-ports", "br-ex").split()
        assert ports == ["eth1"]
        ofport = int(node.vsctl("get", "Interface", "eth1", "ofport").strip())
        assert ofport > 0  # vswitchd (in the netns) found the interface and attached it
    finally:
        node.stop()
    assert node.rundir is None


def test_second_netdev_vswitchd_in_one_namespace_fails_loudly(tmp_path, netns_factory):
    # Both would need the `ovs-netdev` tap device: the harness must say so, not hang later.
    ns = netns_factory("ovs")
    first = OvsNode(tmp_path / "a", netns=ns.name)
    second = OvsNode(tmp_path / "b", netns=ns.name)
    try:
        first.start()
        first.add_bridge("br-a")
        second.start()
        with pytest.raises(DaemonError) as exc:
            second.add_bridge("br-b")
        assert exc.value.name == "ovs-vswitchd"
        assert "br-b was not created" in str(exc.value)
        assert "Device or resource busy" in str(exc.value)  # from vswitchd's log tail
    finally:
        second.stop()
        first.stop()


def test_vswitchd_that_cannot_start_fails_loudly(tmp_path):
    node = OvsNode(tmp_path / "ovs", vswitchd_args=["--no-such-option"])
    with pytest.raises(DaemonError) as exc:
        node.start()
    msg = str(exc.value)
    assert exc.value.name == "ovs-vswitchd"
    assert "'ovs-vswitchd'" in msg and "exited with status" in msg
    assert "unrecognized option" in msg  # the log tail is in the message
    assert node.ovsdb is None and node.vswitchd is None  # the DB server was torn down too


def test_bad_schema_fails_loudly_naming_ovsdb_server(tmp_path):
    bad = tmp_path / "vswitch.ovsschema"
    bad.write_text("{ this is not json")
    node = OvsNode(tmp_path / "ovs", schema=bad)
    with pytest.raises(DaemonError) as exc:
        node.start()
    msg = str(exc.value)
    assert exc.value.name == "ovsdb-server"
    assert str(bad) in msg and "could not be read as JSON" in msg  # ovsdb-tool says why
    assert node.rundir is None


def test_failed_command_shows_stderr(ovs_node):
    with pytest.raises(CommandError) as exc:
        ovs_node.ofctl("dump-flows", "no-such-bridge")
    assert "no-such-bridge" in str(exc.value) and "is not a bridge" in str(exc.value)

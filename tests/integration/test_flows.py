"""OVS flow reconciler against a real ovs-vswitchd (netdev bridges on the host tier;
tests/vm/test_flows.py runs these again with the kernel datapath)."""

from __future__ import annotations

import pytest

from ovnbgp.model.records import DesiredState, FlowSpec
from ovnbgp.ovs.flows import COOKIE, FlowInputError, FlowReconciler, parse_dump
from tests.harness.netns import unique_name

MAC = "fa:16:3e:00:00:01"


def patch_name(tag: str) -> str:
    return f"patch-provnet-{tag}-0123456789abcdef-to-br-int"  # longer than OpenFlow's 15


@pytest.fixture
def bridge(ovs_node) -> str:
    """A provider bridge with an OVN-style patch port (ofport 3)."""
    br = unique_name("bf", 6)
    ovs_node.add_bridge(br)
    add_patch(ovs_node, br, "a", 3)
    return br


def add_patch(node, br: str, tag: str, ofport: int) -> str:
    name = patch_name(tag)
    node.vsctl("add-port", br, name, "--", "set", "Interface", name, "type=patch",
               f"options:peer=peer-{tag}", f"ofport_request={ofport}")
    return name


@pytest.fixture
def rec(ovs_node) -> FlowReconciler:
    return FlowReconciler(ovs_remote=ovs_node.remote, env=ovs_node.env)


def flows(node, br: str):
    return parse_dump(br, node.ofctl("--no-stats", "--no-names", "dump-flows", br))


def ours(node, br: str) -> set[str]:
    return {f"{f.match} {f.actions}" for f in flows(node, br) if f.cookie == COOKIE}


def want(br: str, tag: str = "a", mac: str = MAC) -> DesiredState:
    return DesiredState(flows=frozenset({FlowSpec(br, patch_name(tag), mac)}))


def test_installs_flows_atomically_and_second_run_is_empty(ovs_node, bridge, rec):
    res = rec.reconcile(want(bridge))
    plan = res.plan
    assert res.ok and res.bundled == {bridge: True}, res
    assert ours(ovs_node, bridge) == {f"priority=900,ip,in_port=3 mod_dl_dst:{MAC},NORMAL",
                                      f"priority=900,ipv6,in_port=3 mod_dl_dst:{MAC},NORMAL"}
    res = rec.reconcile(want(bridge))
    plan = res.plan
    assert plan.empty(), plan.lines()


def test_built_from_the_agent_config(ovs_node, bridge):
    """What the daemon does: FlowReconciler(cfg); ofports looked up in cfg.ovn.ovs_remote."""
    from ovnbgp import config

    cfg = config.parse({"ovn": {"ovs_remote": ovs_node.remote}})
    res = FlowReconciler(cfg, env=ovs_node.env).reconcile(want(bridge))
    assert res.ok and len(res.added) == 2 and not res.removed and res.errors == []
    assert len(ours(ovs_node, bridge)) == 2


def test_vlan_flows_match_the_tag_and_go_with_the_vlan(ovs_node, bridge, rec):
    flat = FlowSpec(bridge, patch_name("a"), MAC)
    vlan = FlowSpec(bridge, patch_name("a"), MAC, 100)
    res = rec.reconcile(DesiredState(flows=frozenset({flat, vlan})))
    assert res.ok, res
    assert ours(ovs_node, bridge) == {
        f"priority=900,ip,in_port=3 mod_dl_dst:{MAC},NORMAL",
        f"priority=900,ipv6,in_port=3 mod_dl_dst:{MAC},NORMAL",
        f"priority=901,ip,in_port=3,dl_vlan=100 mod_dl_dst:{MAC},NORMAL",
        f"priority=901,ipv6,in_port=3,dl_vlan=100 mod_dl_dst:{MAC},NORMAL"}
    assert rec.reconcile(DesiredState(flows=frozenset({flat, vlan}))).plan.empty()
    res = rec.reconcile(DesiredState(flows=frozenset({flat})))
    assert res.ok and len(res.removed) == 2, res
    assert ours(ovs_node, bridge) == {f"priority=900,ip,in_port=3 mod_dl_dst:{MAC},NORMAL",
                                      f"priority=900,ipv6,in_port=3 mod_dl_dst:{MAC},NORMAL"}


def test_ofports_from_the_caller(ovs_node, bridge, rec):
    res = rec.reconcile(want(bridge), ofports={patch_name("a"): 3})
    assert res.ok and len(ours(ovs_node, bridge)) == 2


def test_foreign_flows_survive(ovs_node, bridge, rec):
    ovs_node.ofctl("add-flow", bridge, "cookie=0x5,priority=100,tcp,actions=drop")
    ovs_node.ofctl("add-flow", bridge, "table=1,priority=900,ip,in_port=3,actions=drop")
    rec.reconcile(want(bridge))
    assert len(ours(ovs_node, bridge)) == 2
    res = rec.reconcile(DesiredState(), bridges=[bridge])
    plan = res.plan
    assert res.ok and len(plan.delete) == 2
    left = {(f.cookie, f.table, f.match) for f in flows(ovs_node, bridge)}
    assert left == {(5, 0, "priority=100,tcp"), (0, 1, "priority=900,ip,in_port=3"),
                    (0, 0, "priority=0")}


def test_foreign_flow_with_our_match_is_not_replaced(ovs_node, bridge, rec):
    ovs_node.ofctl("add-flow", bridge, "cookie=0x9,priority=900,ip,in_port=3,actions=drop")
    res = rec.reconcile(want(bridge))
    plan = res.plan
    assert any(n.kind == "conflict" for n in plan.notices)
    got = {(f.cookie, f.match, f.actions) for f in flows(ovs_node, bridge) if f.priority == 900}
    assert (9, "priority=900,ip,in_port=3", "drop") in got
    assert (COOKIE, "priority=900,ipv6,in_port=3", f"mod_dl_dst:{MAC},NORMAL") in got


def test_reinstalled_after_vswitchd_restart(ovs_node, bridge, rec):
    rec.reconcile(want(bridge))
    ovs_node.restart_vswitchd()
    assert ours(ovs_node, bridge) == set()  # OpenFlow tables live in ovs-vswitchd
    res = rec.reconcile(want(bridge))
    plan = res.plan
    assert res.ok and len(plan.add) == 2
    assert len(ours(ovs_node, bridge)) == 2


def test_patch_port_new_ofport_moves_the_flows(ovs_node, bridge, rec):
    rec.reconcile(want(bridge))
    ovs_node.vsctl("del-port", bridge, patch_name("a"))
    add_patch(ovs_node, bridge, "a", 9)
    res = rec.reconcile(want(bridge))
    plan = res.plan
    assert res.ok and len(plan.add) == 2 and len(plan.delete) == 2
    assert ours(ovs_node, bridge) == {f"priority=900,ip,in_port=9 mod_dl_dst:{MAC},NORMAL",
                                      f"priority=900,ipv6,in_port=9 mod_dl_dst:{MAC},NORMAL"}


def test_bridge_mac_change_rewrites_in_place(ovs_node, bridge, rec):
    rec.reconcile(want(bridge))
    res = rec.reconcile(want(bridge, mac="fa:16:3e:00:00:02"))
    plan = res.plan
    assert res.ok and not plan.delete
    assert all("fa:16:3e:00:00:02" in f for f in ours(ovs_node, bridge))


def test_missing_bridge_waits_then_applies(ovs_node, bridge, rec):
    late = unique_name("bl", 6)
    d = DesiredState(flows=want(bridge).flows | {FlowSpec(late, patch_name("b"), MAC)})
    res = rec.reconcile(d)
    plan = res.plan
    assert res.ok and any(n.kind == "waiting" and late in n.subject for n in plan.notices)
    assert len(ours(ovs_node, bridge)) == 2
    ovs_node.add_bridge(late)
    add_patch(ovs_node, late, "b", 4)
    res = rec.reconcile(d)
    plan = res.plan
    assert res.ok and {f.bridge for f in plan.add} == {late}
    assert len(ours(ovs_node, late)) == 2


def test_switch_without_bundles_still_gets_its_flows(ovs_node, bridge, rec):
    ovs_node.vsctl("set", "Bridge", bridge, "protocols=OpenFlow10,OpenFlow13")
    res = rec.reconcile(want(bridge))
    assert res.ok and res.bundled == {bridge: False}
    assert len(ours(ovs_node, bridge)) == 2
    res = rec.reconcile(DesiredState(), bridges=[bridge])
    assert res.ok and len(res.removed) == 2 and ours(ovs_node, bridge) == set()


def test_odd_extra_bridge_name_is_skipped(ovs_node, bridge, rec):
    res = rec.reconcile(want(bridge), bridges=[bridge, "a-name-far-too-long-for-linux", "x y"])
    assert res.ok and len(ours(ovs_node, bridge)) == 2


def test_invalid_spec_changes_nothing(ovs_node, bridge, rec):
    bad = DesiredState(flows=want(bridge).flows | {FlowSpec(bridge, patch_name("a"), "fa:16:3e:00:00:01,drop")})
    with pytest.raises(FlowInputError):
        rec.reconcile(bad)
    assert ours(ovs_node, bridge) == set()


def test_event_pass_reads_nothing_while_flows_and_ports_are_unchanged(ovs_node, bridge):
    """full=False (the agent's event path) skips the ovs-ofctl dump while the flows, bridges
    and ports are those of the last clean pass; a new ofport or a full pass reads again."""
    local = {"ofports": {patch_name("a"): 3}}
    rec = FlowReconciler(ovs_remote=ovs_node.remote, env=ovs_node.env,
                         local=lambda: ({bridge}, local["ofports"]))
    first = rec.reconcile(want(bridge), full=False)
    assert first.ok and first.plan is not None and len(first.added) == 2
    ovs_node.ofctl("del-flows", bridge, f"cookie={COOKIE:#x}/-1")  # as a vswitchd restart would
    skipped = rec.reconcile(want(bridge), full=False)
    assert skipped.ok and skipped.plan is None and not skipped.changed
    assert ours(ovs_node, bridge) == set()
    again = rec.reconcile(want(bridge), full=True)  # the periodic flow check
    assert again.ok and len(again.added) == 2 and len(ours(ovs_node, bridge)) == 2
    ovs_node.vsctl("del-port", bridge, patch_name("a"))
    add_patch(ovs_node, bridge, "a", 9)
    local["ofports"] = {patch_name("a"): 9}
    moved = rec.reconcile(want(bridge), full=False)
    assert moved.ok and len(moved.added) == 2 and len(moved.removed) == 2


def test_up_to_date_answers_during_a_running_pass(ovs_node, bridge):
    """The agent's event path asks up_to_date() without the flows lock: true after a clean
    pass, and still true while the flow check's full pass runs (so an event never waits
    behind its ovs-ofctl dump); false once the ports or flows wanted change."""
    local = {"ofports": {patch_name("a"): 3}}
    rec = FlowReconciler(ovs_remote=ovs_node.remote, env=ovs_node.env,
                         local=lambda: ({bridge}, local["ofports"]))
    assert not rec.up_to_date(want(bridge))  # nothing done yet
    assert rec.reconcile(want(bridge), full=True).ok
    assert rec.up_to_date(want(bridge))
    seen_during_pass = []
    real_run = rec._run

    def run(argv, input=None):
        seen_during_pass.append(rec.up_to_date(want(bridge)))
        return real_run(argv, input)

    rec._run = run  # type: ignore[method-assign]
    assert rec.reconcile(want(bridge), full=True).ok
    assert seen_during_pass and all(seen_during_pass)
    assert not rec.up_to_date(want(bridge, mac="fa:16:3e:00:00:42"))
    local["ofports"] = {patch_name("a"): 9}
    assert not rec.up_to_date(want(bridge))

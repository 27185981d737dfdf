"""OVS flow reconciler: dump parsing and the pure plan."""

import pytest

from ovnbgp.model.records import FlowSpec
from ovnbgp.ovs.flows import COOKIE, Flow, FlowInputError, FlowState, parse_dump, plan, wanted_flows

MAC = "fa:16:3e:00:00:01"
SPEC = FlowSpec("br-ex", "patch-provnet-0123456789-to-br-int", MAC)
DUMP = f"""\
 cookie={COOKIE:#x}, priority=900,ip,in_port=2 actions=mod_dl_dst:{MAC},NORMAL
 cookie={COOKIE:#x}, priority=900,ipv6,in_port=2 actions=set_field:{MAC}->eth_dst,NORMAL
 cookie=0x5, table=3, priority=10,tcp,nw_dst=10.0.0.1 actions=drop
 priority=0 actions=NORMAL
"""


def test_parse_dump():
    flows = parse_dump("br-ex", DUMP)
    assert [(f.cookie, f.table, f.priority, f.match) for f in flows] == [
        (COOKIE, 0, 900, "priority=900,ip,in_port=2"),
        (COOKIE, 0, 900, "priority=900,ipv6,in_port=2"),
        (5, 3, 10, "priority=10,tcp,nw_dst=10.0.0.1"),
        (0, 0, 0, "priority=0")]
    assert flows[1].actions == f"mod_dl_dst:{MAC},NORMAL"


def state(dump: str = "", ofport: int = 2) -> FlowState:
    return FlowState(flows={"br-ex": parse_dump("br-ex", dump)}, ofports={SPEC.patch_port: ofport})


def test_adds_both_families_when_missing():
    p = plan([SPEC], state("priority=0 actions=NORMAL\n"))
    assert sorted(f.match for f in p.add) == ["priority=900,ip,in_port=2", "priority=900,ipv6,in_port=2"]
    assert not p.delete
    assert p.add[0].add_line().startswith(f"add cookie={COOKIE:#x},table=0,priority=900,")


def test_nothing_to_do_when_present():
    assert plan([SPEC], state(DUMP)).empty()


def test_changed_ofport_replaces_flows():
    p = plan([SPEC], state(DUMP, ofport=7))
    assert {f.match for f in p.add} == {"priority=900,ip,in_port=7", "priority=900,ipv6,in_port=7"}
    assert {f.match for f in p.delete} == {"priority=900,ip,in_port=2", "priority=900,ipv6,in_port=2"}
    assert p.delete[0].delete_line().startswith(f"delete_strict cookie={COOKIE:#x}/-1,table=0,")


def test_changed_mac_is_an_add_in_place():
    p = plan([FlowSpec("br-ex", SPEC.patch_port, "fa:16:3e:00:00:02")], state(DUMP))
    assert len(p.add) == 2 and not p.delete


def test_stale_own_flows_go_foreign_stay():
    p = plan([], state(DUMP))
    assert {f.cookie for f in p.delete} == {COOKIE} and len(p.delete) == 2


def test_foreign_flow_with_same_match_is_a_conflict():
    dump = " cookie=0x1, priority=900,ip,in_port=2 actions=drop\n"
    p = plan([SPEC], state(dump))
    assert [f.match for f in p.add] == ["priority=900,ipv6,in_port=2"]
    assert any(n.kind == "conflict" for n in p.notices)


def test_missing_bridge_and_port_wait():
    st = FlowState(flows={}, ofports={}, missing={"br-ex": "br-ex is not a bridge or a socket"})
    p = plan([SPEC], st)
    assert p.empty() and any(n.kind == "waiting" and "br-ex" in n.subject for n in p.notices)
    p = plan([SPEC], FlowState(flows={"br-ex": []}, ofports={}))
    assert p.empty() and any("patch port" in n.subject for n in p.notices)


def test_flows_kept_while_a_patch_port_number_is_unknown():
    """Issue 17: the flow check read port numbers while the local OVS view changed and the
    unknown number made the bridge's flows look stale: they were deleted. A bridge with a
    spec waiting for its number keeps its flows (the other specs' flows are still added)."""
    other = FlowSpec("br-ex", "patch-other-to-br-int", MAC)
    st = FlowState(flows={"br-ex": parse_dump("br-ex", DUMP)}, ofports={other.patch_port: 5})
    p = plan([SPEC, other], st)
    assert not p.delete
    assert {f.match for f in p.add} == {"priority=900,ip,in_port=5", "priority=900,ipv6,in_port=5"}
    assert any(n.kind == "waiting" and SPEC.patch_port in n.subject for n in p.notices)
    assert len(plan([], st).delete) == 2  # not wanted at all: stale, removed


@pytest.mark.parametrize("spec,needle", [
    (FlowSpec("br ex", "p", MAC), "'br ex'"),
    (FlowSpec("br-ex", "p,1", MAC), "'p,1'"),
    (FlowSpec("br-ex", "p", "FA:16:3E:00:00:01"), "MAC"),
    (FlowSpec("br-ex", "p", "fa:16:3e:00:00:01,drop"), "MAC"),
])
def test_invalid_specs_are_refused(spec, needle):
    with pytest.raises(FlowInputError, match=needle.replace("(", r"\(")):
        plan([spec], state())


def test_wanted_flows_shape():
    fs = wanted_flows(SPEC, 3)
    assert [f.add_line() for f in fs] == [
        f"add cookie={COOKIE:#x},table=0,priority=900,ip,in_port=3,actions=mod_dl_dst:{MAC},NORMAL",
        f"add cookie={COOKIE:#x},table=0,priority=900,ipv6,in_port=3,actions=mod_dl_dst:{MAC},NORMAL"]
    assert isinstance(fs[0], Flow)


def test_vlan_flows_match_the_tag_above_the_flat_ones():
    vlan = FlowSpec(SPEC.bridge, SPEC.patch_port, MAC, 100)
    p = plan([SPEC, vlan], state(DUMP))
    assert sorted(f.match for f in p.add) == ["priority=901,ip,in_port=2,dl_vlan=100",
                                             "priority=901,ipv6,in_port=2,dl_vlan=100"]
    assert not p.delete
    # as ovs-ofctl prints them back: nothing to do; the VLAN gone: only its flows go
    dump = DUMP + "".join(f" cookie={COOKIE:#x}, {f.match} actions={f.actions}\n" for f in p.add)
    assert plan([SPEC, vlan], state(dump)).empty()
    p = plan([SPEC], state(dump))
    assert not p.add and sorted(f.match for f in p.delete) == [
        "priority=901,ip,in_port=2,dl_vlan=100", "priority=901,ipv6,in_port=2,dl_vlan=100"]


@pytest.mark.parametrize("vid", [4095, -1, True, "100"])
def test_bad_vlan_in_a_flow_spec_is_refused(vid):
    with pytest.raises(FlowInputError, match="VLAN"):
        plan([FlowSpec(SPEC.bridge, SPEC.patch_port, MAC, vid)], state(DUMP))

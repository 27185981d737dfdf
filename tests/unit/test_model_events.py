"""Matching of the named events (ovnbgp/ovn/events.py) on hand-built rows and model views."""

from __future__ import annotations

import dataclasses
import logging

import pytest

from ovnbgp.config import Config
from ovnbgp.model.query import ModelView
from ovnbgp.ovn import events as ev
from tests.unit.sb_builder import SbBuilder, resident, uid

GW_MAC = "fa:16:3e:b5:a6:77"


def world(crlrp_chassis="ch1") -> SbBuilder:
    b = SbBuilder()
    pub = b.provider_network("public")
    r1 = b.router("r1", pub, GW_MAC, "172.24.4.146/24", chassis=crlrp_chassis)
    b.router_interface("r1", r1, b.tenant_network("t1"), "t1", "fa:16:3e:00:01:01", "10.0.0.1/26")
    b.vm("tvm1", b.tenant_network("t1"), "fa:16:3e:00:02:01 10.0.0.5", chassis="ch1")
    b.vm("pvm1", pub, "fa:16:3e:00:00:01 172.24.4.10", chassis=None, up=False)
    return b


def ctx_for(before: SbBuilder, after: SbBuilder) -> ev.EventContext:
    def view(b):
        return ModelView.of(b.snapshot(), Config())

    def lookup(b):
        names = {r.logical_port: u for u, r in b.rows.items()}
        return ev.row_lookup(b.rows, names)

    return ev.EventContext(pre=view(before), post=view(after), pre_row=lookup(before),
                           post_row=lookup(after))


def fired(before: SbBuilder, after: SbBuilder, port: str) -> dict[str, list[str]]:
    """name -> logged IPs of the events that match the change of `port` between two worlds."""
    u = uid("pb:" + port)
    old, new = before.rows.get(u), after.rows.get(u)
    if old is None:
        event, row, prev = ev.CREATE, new, None
    elif new is None:
        event, row, prev = ev.DELETE, old, None
    else:
        event, row, prev = ev.UPDATE, new, old
    ctx = ctx_for(before, after)
    out = {}
    for e in ev.make_events(lambda: ctx, lambda keys, cause: None):
        if e.matches(event, row, prev):
            out[e.event_name] = e._ips[(event, row.uuid)]
    return out


def copy(b: SbBuilder) -> SbBuilder:
    c = SbBuilder()
    c.rows = dict(b.rows)
    return c


def test_vm_bound_and_unbound_here():
    before = world()
    after = copy(before)
    after.set("pvm1", chassis="ch1", up=True)
    assert fired(before, after, "pvm1") == {"PortBindingChassisCreatedEvent": ["172.24.4.10"]}
    assert fired(after, before, "pvm1") == {"PortBindingChassisDeletedEvent": ["172.24.4.10"]}
    elsewhere = copy(before)
    elsewhere.set("pvm1", chassis="ch2")
    assert fired(before, elsewhere, "pvm1") == {}


def test_crlrp_failover():
    before = world()
    after = copy(before)
    after.set("cr-lrp-r1-gw", chassis="ch2")
    assert fired(before, after, "cr-lrp-r1-gw") == {"PortBindingChassisDeletedEvent": ["172.24.4.146/24"]}
    assert fired(after, before, "cr-lrp-r1-gw") == {"PortBindingChassisCreatedEvent": ["172.24.4.146/24"]}


def test_fip_set_and_unset_only_for_local_residents():
    before = world()
    after = copy(before)
    after.set_nat("r1", f"fa:16:3e:00:00:99 172.24.4.225 {resident('tvm1')}",
                  f"fa:16:3e:00:00:98 172.24.4.224 {resident('pvm1')}")  # pvm1 is not bound here
    assert fired(before, after, "gw-r1") == {"FIPSetEvent": ["172.24.4.225"]}
    assert fired(after, before, "gw-r1") == {"FIPUnsetEvent": ["172.24.4.225"]}
    remote = copy(before)
    remote.set_nat("r1", f"fa:16:3e:00:00:98 172.24.4.224 {resident('pvm1')}")
    assert fired(before, remote, "gw-r1") == {}


def test_fip_unset_uses_the_state_before_the_batch():
    """The VM leaves in the same batch as its NAT entry: the entry was local before."""
    before = world()
    before.set_nat("r1", f"fa:16:3e:00:00:99 172.24.4.225 {resident('tvm1')}")
    after = copy(before)
    after.set_nat("r1")
    after.set("tvm1", chassis="ch2")
    assert fired(before, after, "gw-r1") == {"FIPUnsetEvent": ["172.24.4.225"]}


def test_subnet_attach_detach_only_behind_a_local_gateway():
    before = world()
    after = copy(before)
    after.router_interface("r1", uid("dp:r1"), after.tenant_network("t2"), "t2", "fa:16:3e:00:01:02",
                           "10.2.0.1/24")
    assert fired(before, after, "lrp-r1-t2") == {"SubnetRouterAttachedEvent": ["10.2.0.1/24"]}
    assert fired(after, before, "lrp-r1-t2") == {"SubnetRouterDetachedEvent": ["10.2.0.1/24"]}
    remote_before = world(crlrp_chassis="ch2")
    remote_after = copy(remote_before)
    remote_after.router_interface("r1", uid("dp:r1"), remote_after.tenant_network("t2"), "t2",
                                  "fa:16:3e:00:01:02", "10.2.0.1/24")
    assert fired(remote_before, remote_after, "lrp-r1-t2") == {}
    # the gateway port itself is not a subnet
    assert fired(remote_after, remote_before, "lrp-r1-gw") == {}


def test_tenant_ports():
    before = world()
    after = copy(before)
    after.vm("tvm2", after.tenant_network("t1"), "fa:16:3e:00:02:02 10.0.0.6", chassis=None)
    assert fired(before, after, "tvm2") == {"TenantPortCreatedEvent": ["10.0.0.6"]}
    bound = copy(after)
    bound.set("tvm2", chassis="ch2")
    assert fired(after, bound, "tvm2") == {"TenantPortCreatedEvent": ["10.0.0.6"]}
    moved = copy(bound)
    moved.set("tvm2", chassis="ch1")  # moving between chassis: the tenant exposure is unchanged
    assert fired(bound, moved, "tvm2") == {"PortBindingChassisCreatedEvent": ["10.0.0.6"]}
    assert fired(bound, after, "tvm2") == {"TenantPortDeletedEvent": ["10.0.0.6"]}
    assert fired(after, before, "tvm2") == {"TenantPortDeletedEvent": ["10.0.0.6"]}
    # a VM on a provider network is not a tenant port
    prov = copy(before)
    prov.vm("pvm2", uid("dp:public"), "fa:16:3e:00:00:02 172.24.4.11")
    assert fired(before, prov, "pvm2") == {}


def test_run_logs_one_line_and_marks_the_row(caplog):
    before = world()
    after = copy(before)
    after.set("pvm1", chassis="ch1", up=True)
    ctx = ctx_for(before, after)
    marks = []
    e = ev.PortBindingChassisCreatedEvent(lambda: ctx, lambda keys, cause: marks.append((keys, cause)))
    row = after.row("pvm1")
    assert e.matches(ev.UPDATE, row, before.row("pvm1"))
    caplog.set_level(logging.INFO, logger="ovnbgp.ovn.events")
    e.run(ev.UPDATE, row, before.row("pvm1"))
    assert [r.getMessage() for r in caplog.records] == [
        "PortBindingChassisCreatedEvent port=pvm1 ips=172.24.4.10"]
    assert marks == [({row.uuid}, "PortBindingChassisCreatedEvent")]


@pytest.mark.parametrize("garbage", [("zz",), ("",), ("unknown",)])
def test_garbage_rows_do_not_break_matching(garbage):
    before = world()
    after = copy(before)
    after.set("pvm1", chassis="ch1", mac=garbage)
    assert fired(before, after, "pvm1") == {"PortBindingChassisCreatedEvent": []}
    bad_nat = copy(before)
    bad_nat.set_nat("r1", "garbage", f"zz 1.2.3.4 {resident('tvm1')}")
    assert fired(before, bad_nat, "gw-r1") == {}
    weird = copy(before)
    weird.rows[uid("pb:gw-r1")] = dataclasses.replace(before.row("gw-r1"), options={})
    assert fired(before, weird, "gw-r1") == {}


def test_event_names_are_the_seeds():
    assert ev.EVENT_NAMES == (
        "PortBindingChassisCreatedEvent", "PortBindingChassisDeletedEvent", "FIPSetEvent",
        "FIPUnsetEvent", "SubnetRouterAttachedEvent", "SubnetRouterDetachedEvent",
        "TenantPortCreatedEvent", "TenantPortDeletedEvent")


def test_view_with_other_chassis_names_answers_as_a_rebuilt_view():
    """A chassis elsewhere joining or leaving: the watcher keeps the topology and swaps the
    Chassis names (ModelView.with_chassis); every question gets the rebuilt view's answer."""
    b = SbBuilder(chassis=["ch1", "ch2"])
    pub = b.provider_network("public")
    rdp = b.router("r1", pub, "fa:16:3e:00:00:01", "172.24.4.146/24", chassis="ch1")
    t1 = b.tenant_network("t1")
    b.router_interface("r1", rdp, t1, "t1", "fa:16:3e:00:00:02", "10.0.0.1/24")
    b.vm("tvm", t1, "fa:16:3e:00:00:03 10.0.0.5", chassis="ch9")
    snap = b.snapshot()
    cfg = Config()
    old = ModelView.of(snap, cfg)
    infra = {u: r for u, r in snap.port_bindings.items() if r.type != ""}
    for names in ({"ch1", "ch2", "ch9"}, {"ch1"}):
        fast = old.with_chassis(names)
        full = ModelView(infra, snap.local, names, cfg)
        assert fast.topology is old.topology
        assert fast.topology.tenant_nets == full.topology.tenant_nets
        assert fast.topology.routers == full.topology.routers
        tvm = b.row("tvm")
        assert fast.ctx.bound_somewhere(tvm, []) == full.ctx.bound_somewhere(tvm, []) == ("ch9" in names)
        assert fast.ctx.chassis_names == frozenset(names)

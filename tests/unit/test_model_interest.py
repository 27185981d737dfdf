"""The monitor condition loses nothing: on random topologies, the desired state computed from
the rows inside the condition (model/interest.py, what a conditioned watcher receives) equals the
one computed from the whole Port_Binding table."""

from __future__ import annotations

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ovnbgp.config import Config, KernelConfig, OvnConfig
from ovnbgp.model.cache import desired_state
from ovnbgp.model.interest import conditioned, interest, tenant_datapaths, wanted
from ovnbgp.model.records import PortBindingRow
from ovnbgp.model.topology import INFRA_TYPES
from tests.unit.sb_builder import SbBuilder, resident, uid
from tests.unit.test_model_properties import any_row

CHASSIS = [None, "ch1", "ch2", "ghost"]
NETS = ["public", "p2", "t1", "t2", "t3"]
VM_IPS = ["172.24.4.10", "172.24.4.11", "192.0.2.10", "10.0.0.5", "10.0.0.6", "10.1.0.7",
          "10.2.0.8", "fd00:10::5", "2001:db8::10"]
NAT_IPS = ["172.24.4.225", "172.24.4.226", "172.24.4.10", "172.24.4.146", "192.0.2.50"]

router_st = st.fixed_dictionaries({
    "gw_net": st.sampled_from(["public", "public", "p2", "t1"]),
    "chassis": st.sampled_from(CHASSIS + ["ch1"]),
    "cidrs": st.sampled_from([("172.24.4.146/24", "2001:db8::1/64"), ("172.24.4.147/24",),
                              ("192.0.2.1/24",)]),
    "ifaces": st.lists(st.tuples(st.sampled_from(NETS),
                                 st.sampled_from([("10.0.0.1/26", "fd00:10::1/64"), ("10.1.0.1/24",),
                                                  ("10.2.0.1/24",), ("10.0.0.1/26",)])),
                       min_size=1, max_size=3, unique_by=lambda t: t[0]),
})
NET_IPS = {"public": ["172.24.4.10", "172.24.4.11", "2001:db8::10"], "p2": ["192.0.2.10"],
           "t1": ["10.0.0.5", "10.0.0.6", "fd00:10::5"], "t2": ["10.1.0.7", "10.0.0.5"],
           "t3": ["10.2.0.8", "10.1.0.7"]}
vm_st = st.sampled_from(NETS).flatmap(lambda net: st.tuples(
    st.just(net), st.lists(st.sampled_from(NET_IPS[net] + VM_IPS[:1]), max_size=2),
    st.sampled_from(CHASSIS), st.sampled_from([True, True, None, False])))
nat_st = st.tuples(st.sampled_from(NAT_IPS), st.sampled_from(["vm0", "vm1", "vm2", "cr-lrp-r0-gw",
                                                              "cr-lrp-r1-gw", "nobody"]))


def _world(routers, vms, nats, extra, system_id):
    b = SbBuilder(system_id=system_id, chassis=("ch1", "ch2"),
                  mappings={"public": "br-ex", "physnet2": "br-ex2"})
    b.provider_network("public")
    b.provider_network("p2", "physnet2")
    dp = {n: uid("dp:" + n) for n in NETS}
    for i, r in enumerate(routers):
        name = f"r{i}"
        rdp = b.router(name, dp[r["gw_net"]], f"fa:16:3e:b5:a6:{i:02x}", *r["cidrs"], chassis=r["chassis"])
        for j, (net, cidrs) in enumerate(r["ifaces"]):
            b.router_interface(name, rdp, dp[net], net, f"fa:16:3e:00:{i:02x}:{j:02x}", *cidrs)
    for i, (net, ips, ch, up) in enumerate(vms):
        b.vm(f"vm{i}", dp[net], " ".join([f"fa:16:3e:00:10:{i:02x}", *ips]) if ips else "unknown",
             chassis=ch, up=up)
    if routers and nats:
        b.set_nat("r0", *(f"fa:16:3e:00:00:99 {ip} {resident(port)}" for ip, port in nats))
    names = {r.logical_port for r in b.rows.values()}
    for row in extra:  # the SB indexes logical_port: names are unique
        if row.logical_port not in names:
            names.add(row.logical_port)
            b.rows[row.uuid] = row
    return b


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example(routers=[{"gw_net": "public", "chassis": "ch1", "cidrs": ("172.24.4.146/24",),
                   "ifaces": [("t1", ("10.0.0.1/26",))]}], vms=[("t1", ["10.0.0.5"], "ch2", True)],
         nats=[], extra=[], system_id="ch1", steering="rules", wait_up=True)
@given(routers=st.lists(router_st, min_size=1, max_size=3), vms=st.lists(vm_st, min_size=1, max_size=8),
       nats=st.lists(nat_st, max_size=3), extra=st.lists(any_row, max_size=4),
       system_id=st.sampled_from(["ch1", "ch1", "ch2", ""]),
       steering=st.sampled_from(["rules", "table"]), wait_up=st.booleans())
def test_conditioned_subset_gives_the_same_desired_state(routers, vms, nats, extra, system_id,
                                                         steering, wait_up):
    b = _world(routers, vms, nats, extra, system_id)
    cfg = Config(kernel=KernelConfig(steering=steering), ovn=OvnConfig(wait_for_port_up=wait_up))
    full = b.snapshot()
    sub = conditioned(full)
    assert desired_state(sub, cfg) == desired_state(full, cfg)
    # the condition really narrows: rows bound elsewhere on provider networks are not asked for
    for r in full.port_bindings.values():
        if r.type == "" and r.datapath == uid("dp:public") and r.chassis not in (None, system_id):
            assert r.uuid not in sub.port_bindings


def test_tenant_datapaths_follow_the_local_gateways():
    b = SbBuilder(system_id="ch1")
    pub = b.provider_network("public")
    t1, t2 = b.tenant_network("t1"), b.tenant_network("t2")
    r1 = b.router("r1", pub, "fa:16:3e:b5:a6:77", "172.24.4.146/24", chassis="ch1")
    b.router_interface("r1", r1, t1, "t1", "fa:16:3e:00:01:01", "10.0.0.1/26")
    r2 = b.router("r2", pub, "fa:16:3e:b5:a6:78", "172.24.4.147/24", chassis="ch2")
    b.router_interface("r2", r2, t2, "t2", "fa:16:3e:00:01:02", "10.1.0.1/24")
    infra = lambda: [r for r in b.rows.values() if r.type in INFRA_TYPES]  # noqa: E731
    assert tenant_datapaths(infra(), "ch1") == {t1}  # not the gateway network (localnet)
    assert tenant_datapaths(infra(), "") == frozenset()
    b.set("cr-lrp-r2-gw", chassis="ch1")  # failover to this node: its tenant network joins
    assert tenant_datapaths(infra(), "ch1") == {t1, t2}
    b.set("cr-lrp-r1-gw", chassis=None)
    assert tenant_datapaths(infra(), "ch1") == {t2}


def test_wanted_rows():
    want = interest([], "ch1")
    row = PortBindingRow(uuid="u", logical_port="p", type="", datapath="dp")
    assert not wanted(row, want)
    assert wanted(PortBindingRow(uuid="u", logical_port="p", type="", datapath="dp", chassis="ch1"), want)
    assert not wanted(PortBindingRow(uuid="u", logical_port="p", type="", datapath="dp", chassis="ch2"), want)
    assert wanted(PortBindingRow(uuid="u", logical_port="p", type="patch", datapath="dp"), want)
    assert not wanted(PortBindingRow(uuid="u", logical_port="p", type="", datapath="dp", chassis=""),
                      interest([], ""))

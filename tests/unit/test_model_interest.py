"""The monitor condition loses nothing: on random topologies, the desired state computed from
the rows inside the condition (model/interest.py, what a conditioned watcher receives) equals the
one computed from the whole Port_Binding table."""

from __future__ import annotations

import dataclasses
import random

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ovnbgp.config import Config, KernelConfig, OvnConfig
from ovnbgp.model.cache import desired_state
from ovnbgp.model.interest import (
    Interest,
    conditioned,
    converge,
    inert_here,
    interest,
    shaping_context,
    wanted,
)
from ovnbgp.model.records import PortBindingRow
from ovnbgp.model.topology import INFRA_TYPES
from tests.unit.sb_builder import SbBuilder, resident, uid
from tests.unit.test_model_properties import any_row

CHASSIS = [None, "ch1", "ch2", "ghost"]
NETS = ["public", "p2", "p3", "t1", "t2", "t3"]  # p3: a VLAN of physnet public
PROVIDER_NETS = {"public", "p2", "p3"}
VM_IPS = ["172.24.4.10", "172.24.4.11", "192.0.2.10", "10.0.0.5", "10.0.0.6", "10.1.0.7",
          "10.2.0.8", "fd00:10::5", "2001:db8::10"]
NAT_IPS = ["172.24.4.225", "172.24.4.226", "172.24.4.10", "172.24.4.146", "192.0.2.50"]

router_st = st.fixed_dictionaries({
    "gw_net": st.sampled_from(["public", "public", "p2", "p3", "t1"]),
    "chassis": st.sampled_from(CHASSIS + ["ch1"]),
    "cidrs": st.sampled_from([("172.24.4.146/24", "2001:db8::1/64"), ("172.24.4.147/24",),
                              ("192.0.2.1/24",)]),
    "ifaces": st.lists(st.tuples(st.sampled_from(NETS),
                                 st.sampled_from([("10.0.0.1/26", "fd00:10::1/64"), ("10.1.0.1/24",),
                                                  ("10.2.0.1/24",), ("10.0.0.1/26",)])),
                       min_size=1, max_size=3, unique_by=lambda t: t[0]),
})
NET_IPS = {"public": ["172.24.4.10", "172.24.4.11", "2001:db8::10"], "p2": ["192.0.2.10"],
           "p3": ["172.24.4.12"], "t1": ["10.0.0.5", "10.0.0.6", "fd00:10::5"],
           "t2": ["10.1.0.7", "10.0.0.5"], "t3": ["10.2.0.8", "10.1.0.7"]}
vm_st = st.sampled_from(NETS).flatmap(lambda net: st.tuples(
    st.just(net), st.lists(st.sampled_from(NET_IPS[net] + VM_IPS[:1]), max_size=2),
    st.sampled_from(CHASSIS), st.sampled_from([True, True, None, False])))
# (router index, FIP, resident pick): the resident is, as northd writes it, the router's own
# cr-lrp or a VM on a tenant network attached to that router (a distributed FIP), or a name
# that does not exist
nat_st = st.tuples(st.integers(0, 2), st.sampled_from(NAT_IPS), st.integers(0, 7))


def _residents(router: int, spec: dict, vms: list) -> list[str]:
    nets = {net for net, _ in spec["ifaces"]} - PROVIDER_NETS
    return [f"vm{i}" for i, (net, *_rest) in enumerate(vms) if net in nets] + \
        [f"cr-lrp-r{router}-gw", "nobody"]


def _world(routers, vms, nats, extra, system_id):
    b = SbBuilder(system_id=system_id, chassis=("ch1", "ch2"),
                  mappings={"public": "br-ex", "physnet2": "br-ex2"})
    b.provider_network("public")
    b.provider_network("p2", "physnet2")
    b.provider_network("p3")
    dp = {n: uid("dp:" + n) for n in NETS}
    for i, r in enumerate(routers):
        name = f"r{i}"
        rdp = b.router(name, dp[r["gw_net"]], f"fa:16:3e:b5:a6:{i:02x}", *r["cidrs"], chassis=r["chassis"])
        for j, (net, cidrs) in enumerate(r["ifaces"]):
            b.router_interface(name, rdp, dp[net], net, f"fa:16:3e:00:{i:02x}:{j:02x}", *cidrs)
    for i, (net, ips, ch, up) in enumerate(vms):
        b.vm(f"vm{i}", dp[net], " ".join([f"fa:16:3e:00:10:{i:02x}", *ips]) if ips else "unknown",
             chassis=ch, up=up)
    entries: dict[int, list[str]] = {}
    for k, ip, pick in nats:
        if k < len(routers):
            names = _residents(k, routers[k], vms)
            entries.setdefault(k, []).append(
                f"fa:16:3e:00:00:{k:02x} {ip} {resident(names[pick % len(names)])}")
    for k, es in entries.items():
        b.set_nat(f"r{k}", *es)
    names = {r.logical_port for r in b.rows.values()}
    for row in extra:  # the SB indexes logical_port: names are unique
        if row.logical_port not in names:
            names.add(row.logical_port)
            # northd writes nat_addresses only on the peer of a router's gateway port
            b.rows[row.uuid] = dataclasses.replace(row, nat_addresses=()) if row.type == "patch" else row
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
    state = desired_state(sub, cfg)
    assert state == desired_state(full, cfg)
    # what `ovnbgp status` says about the rows bound here does not change either
    here = {u for u, r in full.port_bindings.items() if system_id and r.chassis == system_id}
    assert {p for p in state.problems if p.row in here} == \
        {p for p in desired_state(full, cfg).problems if p.row in here}
    # the condition really narrows: rows bound elsewhere on provider networks are not asked for
    for r in full.port_bindings.values():
        if r.type == "" and r.datapath == uid("dp:public") and r.chassis not in (None, system_id):
            assert r.uuid not in sub.port_bindings
    if not any(r.chassis == system_id for r in full.port_bindings.values()):
        assert {r.type for r in sub.port_bindings.values()} <= {"localnet"}


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(routers=st.lists(router_st, min_size=1, max_size=3), vms=st.lists(vm_st, min_size=1, max_size=8),
       nats=st.lists(nat_st, max_size=4), seed=st.integers(0, 2**16),
       moves=st.lists(st.tuples(st.integers(0, 10), st.sampled_from(CHASSIS)), min_size=1, max_size=3))
def test_gateways_and_vms_moving_converge_to_the_same_rows(routers, vms, nats, seed, moves):
    """A watcher that had the rows of one topology and sees gateways and VMs move (here, away,
    unbound) ends with the rows a fresh start gets: nothing stale keeps itself in, and the
    desired state equals the whole table's."""
    b = _world(routers, vms, nats, [], "ch1")
    before = conditioned(b.snapshot())
    movable = sorted(r.logical_port for r in b.rows.values()
                     if r.type == "chassisredirect" or (r.type == "" and r.logical_port.startswith("vm")))
    rng = random.Random(seed)
    for pick, ch in moves:
        b.set(movable[(pick + rng.randrange(len(movable))) % len(movable)], chassis=ch)
    full = b.snapshot()
    want, have = converge(full, start=before.port_bindings)
    assert want == converge(full)[0] and have == frozenset(conditioned(full).port_bindings)
    cfg = Config()
    assert desired_state(conditioned(full), cfg) == desired_state(full, cfg)


def test_distributed_fip_follows_the_local_vm_to_its_router():
    """A VM bound here on a tenant network whose router's gateway is elsewhere, with a
    distributed FIP: the chain VM -> network -> router interface -> router -> gateway port's
    peer brings the nat_addresses row, and nothing of other routers."""
    b = SbBuilder(system_id="ch1")
    pub = b.provider_network("public")
    t1, t2 = b.tenant_network("t1"), b.tenant_network("t2")
    r1 = b.router("r1", pub, "fa:16:3e:b5:a6:77", "172.24.4.146/24", chassis="ch2")
    b.router_interface("r1", r1, t1, "t1", "fa:16:3e:00:01:01", "10.0.0.1/26")
    r2 = b.router("r2", pub, "fa:16:3e:b5:a6:78", "172.24.4.147/24", chassis="ch2")
    b.router_interface("r2", r2, t2, "t2", "fa:16:3e:00:01:02", "10.1.0.1/24")
    b.vm("vm1", t1, "fa:16:3e:00:00:10 10.0.0.5", chassis="ch1")
    b.vm("vm2", t1, "fa:16:3e:00:00:11 10.0.0.6", chassis="ch2")
    b.vm("vm3", t2, "fa:16:3e:00:00:12 10.1.0.7", chassis="ch2")
    b.set_nat("r1", f"fa:16:3e:00:00:99 172.24.4.225 {resident('vm1')}",
              f"fa:16:3e:00:00:98 172.24.4.226 {resident('vm2')}")
    b.set_nat("r2", f"fa:16:3e:00:00:97 172.24.4.227 {resident('vm3')}")
    full = b.snapshot()
    sub = conditioned(full)
    names = {r.logical_port for r in sub.port_bindings.values()}
    assert {"vm1", "r1-t1", "lrp-r1-t1", "lrp-r1-gw", "cr-lrp-r1-gw", "gw-r1"} <= names
    assert not names & {"gw-r2", "lrp-r2-gw", "cr-lrp-r2-gw", "vm3", "r2-t2"}
    cfg = Config()
    state = desired_state(sub, cfg)
    assert state == desired_state(full, cfg)
    assert {str(e.prefix) for e in state.exposures} == {"172.24.4.225/32"}


@pytest.mark.parametrize("garble", [
    {"type": "virtual"},  # found by tests/vm/test_adversarial.py: the FIP was withdrawn
    {"options": {"peer": "garbage"}},
    {"options": {}},
])
@pytest.mark.parametrize("gateway_here", [True, False])
def test_bad_data_on_the_chain_keeps_the_floating_ips_gateway_port(garble, gateway_here):
    """A floating IP depends on its gateway port's nat_addresses and its resident, not on the
    router ports the condition follows to find them: a garbled router port (type, peer) must
    not take the gateway port out of a running watcher's mirror (the whole table would still
    expose the FIP), and the desired state stays the whole table's."""
    b = SbBuilder(system_id="ch1")
    pub = b.provider_network("public")
    t1 = b.tenant_network("t1")
    r1 = b.router("r1", pub, "fa:16:3e:b5:a6:77", "172.24.4.146/24",
                  chassis="ch1" if gateway_here else "ch2")
    b.router_interface("r1", r1, t1, "t1", "fa:16:3e:00:01:01", "10.0.0.1/26")
    b.vm("vm1", t1, "fa:16:3e:00:00:10 10.0.0.5", chassis="ch1")
    resident_port = "cr-lrp-r1-gw" if gateway_here else "vm1"
    b.set_nat("r1", f"fa:16:3e:00:00:99 172.24.4.225 {resident(resident_port)}")
    before = conditioned(b.snapshot())
    assert "gw-r1" in {r.logical_port for r in before.port_bindings.values()}
    row = next(r for r in b.rows.values() if r.logical_port == "lrp-r1-gw")
    b.rows[row.uuid] = dataclasses.replace(row, **garble)
    full = b.snapshot()
    _, have = converge(full, start=before.port_bindings)
    assert "gw-r1" in {full.port_bindings[u].logical_port for u in have}
    sub = dataclasses.replace(full, port_bindings={u: full.port_bindings[u] for u in have})
    cfg = Config()
    assert "172.24.4.225/32" in {str(e.prefix) for e in desired_state(full, cfg).exposures}
    assert desired_state(sub, cfg).exposures == desired_state(full, cfg).exposures


def test_tenant_datapaths_follow_the_local_gateways():
    """Clause 5: the switches behind a router whose cr-lrp is bound here (never the gateway's
    provider network, which has a localnet port)."""
    b = SbBuilder(system_id="ch1")
    pub = b.provider_network("public")
    t1, t2 = b.tenant_network("t1"), b.tenant_network("t2")
    r1 = b.router("r1", pub, "fa:16:3e:b5:a6:77", "172.24.4.146/24", chassis="ch1")
    b.router_interface("r1", r1, t1, "t1", "fa:16:3e:00:01:01", "10.0.0.1/26")
    r2 = b.router("r2", pub, "fa:16:3e:b5:a6:78", "172.24.4.147/24", chassis="ch2")
    b.router_interface("r2", r2, t2, "t2", "fa:16:3e:00:01:02", "10.1.0.1/24")

    def switches(system_id: str) -> set[str]:
        infra = [r for r in b.rows.values() if r.type in INFRA_TYPES]
        return set(interest(infra, system_id).datapaths) & {pub, t1, t2}

    assert switches("ch1") == {t1}
    assert switches("") == set()
    b.set("cr-lrp-r2-gw", chassis="ch1")  # failover to this node: its tenant network joins
    assert switches("ch1") == {t1, t2}
    b.set("cr-lrp-r1-gw", chassis=None)
    assert switches("ch1") == {t2}


def test_wanted_rows():
    want = interest([], "ch1")
    row = PortBindingRow(uuid="u", logical_port="p", type="", datapath="dp")
    assert not wanted(row, want)
    assert wanted(PortBindingRow(uuid="u", logical_port="p", type="", datapath="dp", chassis="ch1"), want)
    assert not wanted(PortBindingRow(uuid="u", logical_port="p", type="", datapath="dp", chassis="ch2"), want)
    # patch rows come by datapath or name (clauses 3-6), localnet rows always
    assert not wanted(PortBindingRow(uuid="u", logical_port="p", type="patch", datapath="dp"), want)
    assert wanted(PortBindingRow(uuid="u", logical_port="p", type="localnet", datapath="dp"), want)
    assert wanted(PortBindingRow(uuid="u", logical_port="p", type="patch", datapath="dp"),
                  Interest("ch1", names=frozenset({"p"})))
    assert wanted(PortBindingRow(uuid="u", logical_port="p", type="patch", datapath="dp"),
                  Interest("ch1", datapaths=frozenset({"dp"})))
    assert not wanted(PortBindingRow(uuid="u", logical_port="p", type="", datapath="dp", chassis=""),
                      interest([], ""))


def _context(rows) -> tuple[frozenset[str], frozenset[str]]:
    return shaping_context([r for r in rows if r.type in INFRA_TYPES],
                           [r for r in rows if r.options.get("peer") or r.nat_addresses])


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(routers=st.lists(router_st, min_size=1, max_size=3), vms=st.lists(vm_st, min_size=1, max_size=8),
       nats=st.lists(nat_st, max_size=3), extra=st.lists(any_row, max_size=4),
       system_id=st.sampled_from(["ch1", "ch1", "ch2"]))
def test_an_inert_row_leaves_the_interest_as_it_is(routers, vms, nats, extra, system_id):
    """The watcher skips working the interest out for a row inert_here() accepts: with that
    row and without it, interest() is the same (it comes or goes in an event)."""
    rows = list(_world(routers, vms, nats, extra, system_id).snapshot().port_bindings.values())
    localnet, named = _context(rows)
    for r in rows:
        if inert_here(r, system_id, localnet, named):
            others = [o for o in rows if o.uuid != r.uuid]
            assert _context(others) == (localnet, named)
            assert interest(others, system_id) == interest(rows, system_id)


def test_inert_rows_are_provider_vms_no_chain_leads_through():
    b = _world([{"gw_net": "public", "chassis": "ch2", "cidrs": ("172.24.4.146/24",),
                 "ifaces": [("t1", ("10.0.0.1/26",))]}],
               [("public", ["172.24.4.10"], "ch1", True), ("t1", ["10.0.0.5"], "ch1", True),
                ("public", ["172.24.4.11"], "ch2", True), ("t1", ["10.0.0.6"], "ch2", True)],
               [(0, "172.24.4.225", 1)], [], "ch1")  # a FIP whose resident is vm1
    rows = list(b.snapshot().port_bindings.values())
    localnet, named = _context(rows)
    inert = {r.logical_port for r in rows if inert_here(r, "ch1", localnet, named)}
    # vm0: provider VM here; vm1: tenant VM here (its network leads to the router) and a FIP's
    # resident; vm2 and vm3 are bound elsewhere
    assert inert == {"vm0"}
    # a NAT entry naming the provider VM (not as northd writes it, but the interest follows
    # it: the row with that entry is wanted by name while vm0 is here)
    b = _world([{"gw_net": "public", "chassis": "ch2", "cidrs": ("172.24.4.146/24",),
                 "ifaces": [("t1", ("10.0.0.1/26",))]}],
               [("public", ["172.24.4.10"], "ch1", True)], [], [], "ch1")
    b.set_nat("r0", f"fa:16:3e:00:00:00 172.24.4.226 {resident('vm0')}")
    rows = list(b.snapshot().port_bindings.values())
    localnet, named = _context(rows)
    assert not any(inert_here(r, "ch1", localnet, named) for r in rows)
    assert interest(rows, "ch1") != interest([r for r in rows if r.logical_port != "vm0"], "ch1")

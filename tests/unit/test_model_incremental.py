"""ModelCache.update() must always agree with the from-scratch desired_state().

Random sequences of SB changes (VMs bound/unbound/moved/rewritten, FIPs set/unset, router
interfaces attached/detached, gateway failover, networks created/deleted, garbage values,
bridge and chassis changes) are applied to a hand-built world; after every step the cache fed
only the changed rows must equal the full computation, problems included. The full
computation is given the one piece of history the model keeps: the exposures of the state
before the step (which row owns a prefix several rows claim, model/aggregate.py).
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ovnbgp.config import Config, KernelConfig, OvnConfig
from ovnbgp.model.cache import Changes, ModelCache, desired_state
from ovnbgp.model.records import BridgeInfo
from tests.unit.sb_builder import SbBuilder, resident, uid

VMS = [f"vm{i}" for i in range(6)]
NETS = ["public", "p2", "t1", "t2", "nowhere"]
ROUTERS = ["r1", "r2"]
CHASSIS = [None, "ch1", "ch2", "ghost"]
VM_ENTRIES = [
    "fa:16:3e:00:00:01 172.24.4.10 2001:db8::10",
    "fa:16:3e:00:00:02 172.24.4.11",
    "fa:16:3e:00:00:03 192.0.2.10",
    "fa:16:3e:00:00:04 10.0.0.5 fd00:10::5",
    "fa:16:3e:00:00:05 10.0.0.6",
    "fa:16:3e:00:00:06 10.1.0.7",
    "fa:16:3e:00:00:07 10.0.0.70",
    "unknown", "", "fa:16:3e:00:00:08 10.0.0.300", "zz 10.0.0.9", "router",
]
GW_CIDRS = [("172.24.4.146/24", "2001:db8::1/64"), ("172.24.4.147/24",), ("192.0.2.1/24",),
            ("172.24.4.0/24",), ("172.24.4.148/24", "2001:db8::2/64")]
IF_CIDRS = [("10.0.0.1/26", "fd00:10::1/64"), ("10.1.0.1/24",), ("10.0.0.1/26",), ("10.0.0.0/26",)]
NAT_IPS = ["172.24.4.225", "172.24.4.226", "172.24.4.10", "172.24.4.146", "192.0.2.50", "bad",
           "10.0.0.50"]
# load balancers (model/lb.py): VIPs among the NAT IPs, with or without members, or malformed
LBS = ["lb1", "lb2"]
LB_VIPS = [{"172.24.4.225:80": "10.0.0.5:8080"}, {"172.24.4.225:80": ""},
           {"10.0.0.50:80": "10.0.0.5:80", "172.24.4.226:80": "10.0.0.5:80"},
           {"172.24.4.226": "10.0.0.6,10.0.0.5"}, {"bad:80": "10.0.0.5:80"}, {"192.0.2.50:80": "x"}]


class World:
    def __init__(self):
        self.b = SbBuilder(mappings={"public": "br-ex", "physnet2": "br-ex2"})
        self.b.provider_network("public")
        self.b.provider_network("p2", "physnet2")

    def dp(self, name: str) -> str:
        return uid("dp:" + name)

    def apply(self, op: tuple) -> Changes:
        """Run one operation; return the Changes a watcher would report."""
        b = self.b
        before, before_lbs = dict(b.rows), dict(b.lbs)
        local = chassis = None
        kind = op[0]
        if kind == "vm":
            _, name, netname, entries, ch, up = op
            if uid("pb:" + name) in b.rows:
                b.set(name, datapath=self.dp(netname), mac=entries, chassis=ch, up=up)
            else:
                b.vm(name, self.dp(netname), *entries, chassis=ch, up=up)
        elif kind == "vm-del":
            if uid("pb:" + op[1]) in b.rows:
                b.remove(op[1])
        elif kind == "router":
            _, r, netname, cidrs, ch = op
            for p in (f"lrp-{r}-gw", f"gw-{r}", f"cr-lrp-{r}-gw"):
                if uid("pb:" + p) in b.rows:
                    b.remove(p)
            b.router(r, self.dp(netname), "fa:16:3e:b5:a6:%02x" % (ROUTERS.index(r) + 1), *cidrs,
                     chassis=ch)
        elif kind == "router-del":
            for p in (f"lrp-{op[1]}-gw", f"gw-{op[1]}", f"cr-lrp-{op[1]}-gw"):
                if uid("pb:" + p) in b.rows:
                    b.remove(p)
        elif kind == "failover":
            if uid(f"pb:cr-lrp-{op[1]}-gw") in b.rows:
                b.set(f"cr-lrp-{op[1]}-gw", chassis=op[2])
        elif kind == "attach":
            _, r, netname, cidrs = op
            for p in (f"{r}-{netname}", f"lrp-{r}-{netname}"):
                if uid("pb:" + p) in b.rows:
                    b.remove(p)
            b.router_interface(r, self.dp(r), self.dp(netname), netname, "fa:16:3e:00:01:01", *cidrs)
        elif kind == "detach":
            _, r, netname = op
            for p in (f"{r}-{netname}", f"lrp-{r}-{netname}"):
                if uid("pb:" + p) in b.rows:
                    b.remove(p)
        elif kind == "nat":
            _, r, entries = op
            if uid(f"pb:gw-{r}") in b.rows:
                b.set_nat(r, *entries)
        elif kind == "localnet":
            _, netname, physnet = op
            if uid(f"pb:ln-{netname}") in b.rows:
                b.remove(f"ln-{netname}")
            if physnet is not None:
                b.provider_network(netname, physnet)
        elif kind == "bridge":
            _, name, present = op
            if present:
                b.bridges[name] = BridgeInfo(name, "aa:bb:cc:00:00:09", {f"patch-{name}": 3})
            else:
                b.bridges.pop(name, None)
            local = b.local()
        elif kind == "chassis":
            b.chassis = set(op[1])
            chassis = frozenset(b.chassis)
        elif kind == "lb":
            b.lb(op[1], op[2])
        elif kind == "lb-del":
            b.remove_lb(op[1])
        changed = {u: b.rows.get(u) for u in before.keys() | b.rows.keys()
                   if before.get(u) != b.rows.get(u)}
        lbs = {u: b.lbs.get(u) for u in before_lbs.keys() | b.lbs.keys()
               if before_lbs.get(u) != b.lbs.get(u)}
        return Changes(port_bindings=changed, local=local, chassis_names=chassis, load_balancers=lbs)


def _nat_entry(draw_ip: str, who: str) -> str:
    return f"fa:16:3e:00:00:99 {draw_ip} {resident(who)}"


ops = st.one_of(
    st.tuples(st.just("vm"), st.sampled_from(VMS), st.sampled_from(NETS),
              st.lists(st.sampled_from(VM_ENTRIES), max_size=2).map(tuple),
              st.sampled_from(CHASSIS), st.sampled_from([True, False, None])),
    st.tuples(st.just("vm-del"), st.sampled_from(VMS)),
    st.tuples(st.just("router"), st.sampled_from(ROUTERS), st.sampled_from(["public", "p2", "t2"]),
              st.sampled_from(GW_CIDRS), st.sampled_from(CHASSIS)),
    st.tuples(st.just("router-del"), st.sampled_from(ROUTERS)),
    st.tuples(st.just("failover"), st.sampled_from(ROUTERS), st.sampled_from(CHASSIS)),
    st.tuples(st.just("attach"), st.sampled_from(ROUTERS), st.sampled_from(["t1", "t2", "p2"]),
              st.sampled_from(IF_CIDRS)),
    st.tuples(st.just("detach"), st.sampled_from(ROUTERS), st.sampled_from(["t1", "t2", "p2"])),
    st.tuples(st.just("nat"), st.sampled_from(ROUTERS),
              st.lists(st.builds(_nat_entry, st.sampled_from(NAT_IPS),
                                 st.sampled_from(VMS + ["cr-lrp-r1-gw", "cr-lrp-r2-gw", "ghost"])),
                       max_size=3).map(tuple)),
    st.tuples(st.just("localnet"), st.sampled_from(["p2", "t1", "t2"]),
              st.sampled_from([None, "physnet2", "public", "physnet9"])),
    st.tuples(st.just("bridge"), st.sampled_from(["br-ex2"]), st.booleans()),
    st.tuples(st.just("chassis"), st.sampled_from([("ch1", "ch2"), ("ch2",), ("ch1", "ch2", "ghost")])),
    st.tuples(st.just("lb"), st.sampled_from(LBS), st.sampled_from(LB_VIPS)),
    st.tuples(st.just("lb-del"), st.sampled_from(LBS)),
)

CONFIGS = [Config(), Config(kernel=KernelConfig(steering="table")),
           Config(ovn=OvnConfig(wait_for_port_up=False))]


@pytest.mark.parametrize("cfg", CONFIGS, ids=["rules", "table", "no-wait"])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(ops, min_size=1, max_size=25))
def test_incremental_equals_full(cfg, steps):
    world = World()
    cache = ModelCache(world.b.snapshot(), cfg, log_problems=False)
    for op in steps:
        changes = world.apply(op)
        before = cache.state
        got = cache.update(changes)
        want = desired_state(world.b.snapshot(), cfg, established=before.exposures)
        assert got == want, op
        assert got.problems == want.problems, op
        assert cache.snapshot().port_bindings == world.b.rows
        assert cache.snapshot().load_balancers == world.b.lbs


@pytest.mark.parametrize("cfg", CONFIGS, ids=["rules", "table", "no-wait"])
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seen=st.lists(ops, max_size=10), missed=st.lists(ops, min_size=1, max_size=10))
def test_resync_after_missed_events_equals_full(cfg, seen, missed):
    """Events the cache never got (a lost notification) are caught up by resync(snapshot),
    and a resync that finds nothing changes nothing."""
    world = World()
    cache = ModelCache(world.b.snapshot(), cfg, log_problems=False)
    for op in seen:
        cache.update(world.apply(op))
    for op in missed:
        world.apply(op)  # not given to the cache
    before = cache.state
    got = cache.resync(world.b.snapshot())
    want = desired_state(world.b.snapshot(), cfg, established=before.exposures)
    assert got == want
    assert got.problems == want.problems
    assert cache.snapshot().port_bindings == world.b.rows
    # and a resync that finds nothing new keeps the very same state (no downstream work)
    assert cache.resync(world.b.snapshot()) is got


SCENARIOS = {
    # each one walks a dependency the cache must follow (found by mutating model.py)
    "fip-network-loses-its-localnet": [
        ("router", "r2", "p2", GW_CIDRS[2], "ch2"), ("vm", "vm0", "t1", (VM_ENTRIES[3],), "ch1", True),
        ("nat", "r2", (_nat_entry("192.0.2.50", "vm0"),)), ("localnet", "p2", None),
        ("localnet", "p2", "physnet2"), ("localnet", "p2", "public")],
    "fip-vm-moves": [
        ("router", "r1", "public", GW_CIDRS[0], "ch2"), ("vm", "vm0", "t1", (VM_ENTRIES[3],), "ch2", True),
        ("nat", "r1", (_nat_entry("172.24.4.225", "vm0"),)), ("vm", "vm0", "t1", (VM_ENTRIES[3],), "ch1", True),
        ("vm", "vm0", "t1", (VM_ENTRIES[3],), "ch1", False), ("vm-del", "vm0")],
    "tenant-vms-follow-gateway": [
        ("vm", "vm0", "t1", (VM_ENTRIES[3],), "ch2", True), ("router", "r1", "public", GW_CIDRS[0], "ch2"),
        ("attach", "r1", "t1", IF_CIDRS[0]), ("failover", "r1", "ch1"), ("attach", "r1", "t1", IF_CIDRS[1]),
        ("detach", "r1", "t1"), ("attach", "r1", "t1", IF_CIDRS[0]), ("router-del", "r1")],
    "centralized-fip-on-gateway": [
        ("router", "r1", "public", GW_CIDRS[0], "ch1"),
        ("nat", "r1", (_nat_entry("172.24.4.146", "cr-lrp-r1-gw"), _nat_entry("172.24.4.226", "cr-lrp-r1-gw"))),
        ("router", "r1", "public", GW_CIDRS[4], "ch1"), ("failover", "r1", "ghost"), ("failover", "r1", "ch1")],
    "lb-vips-follow-gateway-members-and-subnets": [
        ("router", "r1", "public", GW_CIDRS[0], "ch1"),
        ("nat", "r1", (_nat_entry("172.24.4.225 10.0.0.50 172.24.4.226", "cr-lrp-r1-gw"),)),
        ("lb", "lb1", LB_VIPS[0]), ("lb", "lb2", LB_VIPS[2]), ("attach", "r1", "t1", IF_CIDRS[0]),
        ("lb", "lb1", LB_VIPS[1]), ("failover", "r1", "ch2"), ("failover", "r1", "ch1"),
        ("detach", "r1", "t1"), ("lb-del", "lb2"), ("lb", "lb1", LB_VIPS[4]), ("lb-del", "lb1")],
}


@pytest.mark.parametrize("cfg", CONFIGS, ids=["rules", "table", "no-wait"])
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_incremental_scenarios(cfg, name):
    world = World()
    cache = ModelCache(world.b.snapshot(), cfg, log_problems=False)
    for op in SCENARIOS[name]:
        before = cache.state
        got = cache.update(world.apply(op))
        want = desired_state(world.b.snapshot(), cfg, established=before.exposures)
        assert got == want, op
        assert got.problems == want.problems, op


def test_the_random_worlds_do_expose_things():
    """Guard against a generator that only makes empty worlds (the test above would be vacuous)."""
    world = World()
    t1 = [("router", "r1", "public", GW_CIDRS[0], "ch1"), ("attach", "r1", "t1", IF_CIDRS[0]),
          ("vm", "vm0", "t1", (VM_ENTRIES[3],), "ch2", True),
          ("vm", "vm1", "public", (VM_ENTRIES[1],), "ch1", True),
          ("nat", "r1", (_nat_entry("172.24.4.225", "vm0"),)),
          ("failover", "r1", "ch2")]
    cache = ModelCache(world.b.snapshot(), CONFIGS[0], log_problems=False)
    sizes = []
    for op in t1:
        sizes.append(len(cache.update(world.apply(op)).exposures))
    assert sizes == [2, 4, 6, 7, 7, 1]  # failover: only vm1 stays (vm0's FIP needs vm0 bound here)

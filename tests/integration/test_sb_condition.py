"""Conditional monitoring of the Southbound against a real northd: the conditioned watcher (the
agent's) computes the same desired state as a watcher mirroring the whole table, follows a
gateway moving here (its tenant ports arrive) and away, and remote changes outside the
condition never reach it."""

from __future__ import annotations

import ipaddress
import random
import time

import pytest

from ovnbgp.model.cache import desired_state
from ovnbgp.ovn.watcher import OvnWatcher
from tests.integration.test_ovn_model import WAIT, Env, wait_for

net = ipaddress.ip_network


class TwoViews(Env):
    """Env whose watcher is conditioned, plus a reference watcher with ovn.monitor_all."""

    def start(self, **ovn) -> TwoViews:
        super().start(**ovn)
        self.full = OvnWatcher(self.cfg(monitor_all=True), events=False)
        self.full.start(timeout=WAIT)
        return self

    def stop(self) -> None:
        super().stop()
        if getattr(self, "full", None) is not None:
            self.full.stop()

    def compare(self):
        """Both watchers caught up; the agent's desired state equals the full table's."""
        state = self.state()  # barrier on the agent's watcher; incremental == full on it
        marker = f"barrier-{self._barrier}"
        self.central.sbctl("chassis-add", marker + "b", "geneve", "127.2.0.1")
        wait_for(lambda: marker + "b" in self.full.snapshot().chassis_names, "reference caught up")
        self.central.sbctl("chassis-del", marker + "b")
        wait_for(lambda: marker + "b" not in self.full.snapshot().chassis_names, "reference caught up")
        assert state == desired_state(self.full.snapshot(), self.full.cfg)
        # the agent's watcher has its own connection: it sees the barrier's delete on its own time
        wait_for(lambda: self.watcher.snapshot().chassis_names == self.full.snapshot().chassis_names,
                 "the agent's watcher has the reference's chassis names")
        return state

    def ports(self) -> set[str]:
        return {r.logical_port for r in self.watcher.snapshot().port_bindings.values()}


@pytest.fixture
def env(ovn_central, ovs_node):
    e = TwoViews(ovn_central, ovs_node)
    e.setup_ovs()
    e.setup_ovn()
    yield e
    e.stop()


def test_gateway_moving_here_brings_its_tenant_ports_and_away_drops_them(env):
    env.router()
    env.tenant("t1")
    env.vm("t1", "tvm1", "fa:16:3e:00:02:01 10.0.0.5")
    env.vm("t1", "tvm2", "fa:16:3e:00:02:02 10.0.0.6")
    env.vm("public", "pvm1", "fa:16:3e:00:00:01 172.24.4.10")
    env.vm("public", "pvm2", "fa:16:3e:00:00:02 172.24.4.11")
    env.start()
    env.bind("cr-lrp-r1-gw", "ch2")
    env.bind("tvm1", "ch2")
    env.bind("pvm1", "ch1")
    env.bind("pvm2", "ch2")
    s = env.compare()
    assert {str(e.prefix) for e in s.exposures} == {"172.24.4.10/32"}
    # neither the gateway's tenant ports nor the VMs bound elsewhere were sent to this chassis,
    # nor the router: nothing of it is here (model/interest.py)
    assert not env.ports() & {"tvm1", "tvm2", "pvm2", "cr-lrp-r1-gw", "lrp-r1-t1", "t1-r1"}
    assert {"pvm1", "ln-public"} <= env.ports()

    env.bind("cr-lrp-r1-gw", "ch1")  # the gateway moves here: its tenant network comes along
    wait_for(lambda: {"tvm1", "tvm2"} <= env.ports(), "the tenant ports arrived")
    s = env.compare()
    assert {str(e.prefix) for e in s.exposures} >= {"10.0.0.5/32", "10.0.0.0/26", "172.24.4.146/32"}
    assert "10.0.0.6/32" not in {str(e.prefix) for e in s.exposures}  # tvm2 is not bound anywhere
    env.bind("tvm2", "ch2")
    assert "10.0.0.6/32" in {str(e.prefix) for e in env.compare().exposures}

    env.bind("cr-lrp-r1-gw", "ch2")  # and away: they leave the view
    wait_for(lambda: not {"tvm1", "tvm2"} & env.ports(), "the tenant ports left")
    s = env.compare()
    assert {str(e.prefix) for e in s.exposures} == {"172.24.4.10/32"}


ROUTER_ROWS = {"cr-lrp-r1-gw", "lrp-r1-gw", "lrp-r1-t1", "t1-r1"}  # gw-r1: the provider side


def test_distributed_fip_of_a_vm_here_whose_gateway_is_elsewhere(env):
    """The chain of a distributed FIP (model/interest.py): the VM bound here brings its network,
    the router interface on it, the router and its gateway port's provider side with the
    nat_addresses; the FIP is exposed here through the conditioned watcher. When the VM moves
    away, the chain leaves the view and the FIP is withdrawn."""
    env.router()
    env.tenant("t1")
    env.vm("t1", "tvm1", "fa:16:3e:00:02:01 10.0.0.5")
    env.vm("t1", "tvm2", "fa:16:3e:00:02:02 10.0.0.6")
    env.start()
    env.bind("cr-lrp-r1-gw", "ch2")
    env.bind("tvm2", "ch2")
    env.central.nbctl("lr-nat-add", "r1", "dnat_and_snat", "172.24.4.225", "10.0.0.5", "tvm1",
                      "fa:16:3e:00:00:99")
    s = env.compare()
    assert s.exposures == frozenset()
    assert not env.ports() & (ROUTER_ROWS | {"gw-r1", "tvm1", "tvm2"})

    env.bind("tvm1", "ch1")  # the VM comes here: its FIP with it, the router's gateway elsewhere
    wait_for(lambda: ROUTER_ROWS | {"gw-r1", "tvm1", "tvm2"} <= env.ports(), "the chain arrived")
    s = env.compare()
    fip = [e for e in s.exposures if str(e.prefix) == "172.24.4.225/32"]
    assert [(e.kind.value, e.port) for e in fip] == [("fip", "tvm1")]
    assert {str(e.prefix) for e in s.exposures} == {"172.24.4.225/32"}  # no tenant exposure

    env.bind("tvm1", "ch2")  # and away: the chain leaves the view, the FIP goes
    wait_for(lambda: not env.ports() & (ROUTER_ROWS | {"gw-r1", "tvm1", "tvm2"}), "the chain left")
    assert env.compare().exposures == frozenset()


def test_a_change_outside_the_condition_does_not_reach_the_agent(env):
    env.vm("public", "pvm1", "fa:16:3e:00:00:01 172.24.4.10")
    env.vm("public", "far", "fa:16:3e:00:00:09 172.24.4.90")
    env.start()
    env.bind("pvm1", "ch1")
    env.compare()
    rows_before = dict(env.watcher.snapshot().port_bindings)
    with env.lock:
        env.dirty.clear()
        env.causes.clear()
    env.bind("far", "ch2")  # a VM on another chassis
    far = env.central.sbctl("--bare", "--columns=_uuid", "find", "Port_Binding", "logical_port=far").strip()
    env.central.sbctl("set", "Port_Binding", far, "up=false")
    env.central.sbctl("set", "Port_Binding", far, "up=true")
    env.compare()
    with env.lock:
        assert far not in env.dirty and env.dirty <= {"sb:chassis"}
        assert env.causes["Port_Binding"] == 0
    assert far in env.full.snapshot().port_bindings  # the reference did see it
    # a chassis joining and leaving elsewhere (compare() does it) converted no row again
    after = env.watcher.snapshot().port_bindings
    assert after.keys() == rows_before.keys()
    assert all(after[u] is rows_before[u] for u in after)


def gateway_here_tenant_vm_elsewhere(env) -> None:
    """Router r1 with its gateway bound here, tenant network t1 with tvm1 bound on ch2."""
    env.router()
    env.tenant("t1")
    env.vm("t1", "tvm1", "fa:16:3e:00:02:01 10.0.0.5")
    env.start()
    env.bind("cr-lrp-r1-gw", "ch1")
    env.bind("tvm1", "ch2")


def test_reconnect_keeps_the_state_and_follows_the_condition(env):
    gateway_here_tenant_vm_elsewhere(env)
    before = env.compare()
    assert "10.0.0.5/32" in {str(e.prefix) for e in before.exposures}
    env.central.appctl("ovnsb_db", "ovsdb-server/reconnect")
    wait_for(lambda: env.resyncs, "a resync was requested")
    wait_for(lambda: env.watcher.connected, "reconnected")
    assert env.compare() == before
    assert "tvm1" in env.ports()


def test_a_chassis_joining_elsewhere_keeps_the_condition_and_the_topology(env):
    """No whole-table work for a chassis elsewhere: the condition is not recomputed (it names
    only this chassis' row) and the model view keeps its topology; a chassis that a gateway is
    bound to still makes the view anew (its cr-lrp's state depends on the name)."""
    env.router()
    env.tenant("t1")
    env.vm("public", "pvm1", "fa:16:3e:00:00:01 172.24.4.10")
    env.vm("t1", "tvm1", "fa:16:3e:00:02:01 10.0.0.5")
    env.start()
    env.bind("pvm1", "ch1")
    env.bind("tvm1", "ch1")  # a VM here behind r1: r1's rows (its cr-lrp on ch2) are in the view
    env.bind("cr-lrp-r1-gw", "ch2")
    env.compare()
    assert "cr-lrp-r1-gw" in env.ports()
    w = env.watcher
    topology = w._view.topology
    sent = []
    idl = w._sb_conn.idl
    original = idl.cond_change
    idl.cond_change = lambda *a, **kw: (sent.append(a), original(*a, **kw))[1]
    try:
        env.central.sbctl("chassis-add", "far", "geneve", "127.3.0.1")
        wait_for(lambda: "far" in w._view.ctx.chassis_names, "the view knows the new chassis")
        assert w._view.topology is topology and not sent
        env.central.sbctl("chassis-del", "ch2")  # the chassis the gateway is bound to
        wait_for(lambda: "ch2" not in w._view.ctx.chassis_names, "the view lost ch2")
        assert w._view.topology is not topology and not sent
    finally:
        idl.cond_change = original
    env.compare()


@pytest.mark.parametrize("seed", range(4))
def test_a_gateway_flapping_between_chassis_ends_with_the_full_views_state(env, seed):
    """Condition changes in quick succession (each move widens or narrows the condition while
    the last change may be in flight): when the gateway comes to rest here, the mirror holds
    the whole chain again (the gateway port's provider side included) and the desired state is
    the full table's."""
    rng = random.Random(seed)
    gateway_here_tenant_vm_elsewhere(env)
    wait_for(lambda: ROUTER_ROWS | {"gw-r1", "tvm1"} <= env.ports(), "the chain arrived")
    sb = env.central.sbctl
    for _ in range(12):
        for chassis in rng.sample(["ch1", "ch2", None], 3):
            sb("lsp-unbind", "cr-lrp-r1-gw")
            if chassis is not None:
                sb("lsp-bind", "cr-lrp-r1-gw", chassis)
            time.sleep(rng.choice([0, 0, 0.002, 0.01, 0.03]))
    env.bind("cr-lrp-r1-gw", "ch1")
    wait_for(lambda: ROUTER_ROWS | {"gw-r1", "tvm1"} <= env.ports(), "the chain is back")
    s = env.compare()
    assert {"172.24.4.146/32", "10.0.0.0/26", "10.0.0.5/32"} <= {str(e.prefix) for e in s.exposures}


def test_a_system_id_garbled_and_restored_brings_the_rows_back_without_other_traffic(env):
    """The condition follows the system-id (local OVS DB, another thread): the new condition
    is sent at once, not when some Southbound message happens to wake the SB connection (a
    quiet Southbound may send none: over a unix socket there is no inactivity probe)."""
    gateway_here_tenant_vm_elsewhere(env)
    env.vm("public", "pvm1", "fa:16:3e:00:00:01 172.24.4.10")
    env.bind("pvm1", "ch1")
    wait_for(lambda: {"pvm1", "cr-lrp-r1-gw", "tvm1"} <= env.ports(), "the rows bound here")
    env.central.sync()
    env.ovs.vsctl("set", "open", ".", "external_ids:system-id=xch1")
    wait_for(lambda: not {"pvm1", "cr-lrp-r1-gw", "tvm1"} & env.ports(), "the rows left with the old name")
    env.ovs.vsctl("set", "open", ".", "external_ids:system-id=ch1")
    wait_for(lambda: {"pvm1", "cr-lrp-r1-gw", "tvm1"} <= env.ports(), "the rows came back", timeout=10)
    s = env.compare()
    assert {"172.24.4.10/32", "172.24.4.146/32", "10.0.0.5/32"} <= {str(e.prefix) for e in s.exposures}

"""A clustered (RAFT, 3 members) Southbound with an ovsdb-server relay in front: the agent's
conditioned watcher, pointed at the relay or at the member list, follows changes while the
leader and then the member it uses are killed; nothing is withdrawn meanwhile and the final
state equals the desired state computed from the whole table."""

from __future__ import annotations

import threading

import pytest

from ovnbgp.model.cache import desired_state
from ovnbgp.ovn.watcher import OvnWatcher
from tests.harness.ovn import OvnCentral
from tests.integration.test_ovn_model import WAIT, Env, wait_for


@pytest.fixture
def cluster(tmp_path):
    central = OvnCentral(tmp_path / "ovn", sb_members=3)
    try:
        central.start(timeout=40)
        yield central
    finally:
        central.stop()


class Sampler:
    """Samples the agent's desired exposures in the background: none may disappear."""

    def __init__(self, watcher: OvnWatcher):
        self.watcher, self.lost, self.samples = watcher, set(), 0
        self.seen = self._now()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _now(self) -> set:
        return {e.prefix for e in desired_state(self.watcher.snapshot(), self.watcher.cfg).exposures}

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            now = self._now()
            self.lost |= self.seen - now
            self.seen |= now
            self.samples += 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


def _connected_member(cluster: OvnCentral, watcher: OvnWatcher) -> int:
    name = watcher._sb_conn.idl._session.get_name()
    return next(i for i in range(cluster.sb_members) if cluster.sb_member_remote(i) == name)


@pytest.mark.parametrize("via", ["relay", "members"])
def test_failover_of_leader_and_used_member(cluster, ovs_node, via):
    env = Env(cluster, ovs_node)
    env.setup_ovs()
    env.setup_ovn()
    env.router()
    env.tenant("t1")
    for name, sw, addr in (("pvm1", "public", "172.24.4.10"), ("pvm2", "public", "172.24.4.11"),
                           ("tvm1", "t1", "10.0.0.5"), ("tvm2", "t1", "10.0.0.6"),
                           ("tvm3", "t1", "10.0.0.7")):
        env.vm(sw, name, f"fa:16:3e:00:0{len(name)}:{name[-1]}0 {addr}")
    remote = cluster.start_relay() if via == "relay" else cluster.sb_remote
    env.start(sb_remotes=(remote,))
    try:
        env.bind("pvm1", "ch1")
        env.bind("cr-lrp-r1-gw", "ch1")
        env.bind("tvm1", "ch2")
        first = {str(e.prefix) for e in env.state().exposures}
        assert {"172.24.4.10/32", "10.0.0.5/32", "10.0.0.0/26"} <= first
        sampler = Sampler(env.watcher)

        leader = cluster.sb_leader()
        cluster.daemons[f"sb-{leader}"].kill()
        env.bind("pvm2", "ch1")  # written through the new leader
        wait_for(lambda: env.watcher.port_binding("pvm2") is not None, "pvm2 reached the agent", 30)
        cluster.start_sb_member(leader)

        used = leader if via == "relay" else _connected_member(cluster, env.watcher)
        victims = [i for i in range(cluster.sb_members) if i != leader] if via == "relay" else [used]
        for i, port in zip(victims, ("tvm2", "tvm3")):  # the relay's upstream is not observable:
            cluster.daemons[f"sb-{i}"].kill()             # kill each other member in turn
            env.bind(port, "ch2")
            wait_for(lambda port=port: getattr(env.watcher.port_binding(port), "chassis", None) == "ch2",
                     f"{port}'s binding reached the agent", 30)
            cluster.start_sb_member(i)
            wait_for(lambda i=i: "Status: cluster member" in cluster.cluster_status(i), f"sb-{i} back", 30)
        wait_for(lambda: env.watcher.connected, "the agent's watcher is connected", 30)
        final = env.state()
        sampler.stop()
        assert sampler.samples > 0 and not sampler.lost, f"withdrawn meanwhile: {sampler.lost}"

        full = OvnWatcher(env.cfg(monitor_all=True), events=False)
        full.start(timeout=WAIT)
        try:
            assert final == desired_state(full.snapshot(), full.cfg)
        finally:
            full.stop()
        assert {"172.24.4.11/32", "10.0.0.6/32"} <= {str(e.prefix) for e in final.exposures}
    finally:
        env.stop()

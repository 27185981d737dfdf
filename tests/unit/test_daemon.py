"""The daemon's reconcile logic with stand-in targets (pure: no DB, no netlink, no FRR).

What is checked here is the loop's own behaviour: one log line per exposure change with its
cause, metrics by target, a failing target does not kill the agent and is retried, a SIGHUP
does not drop the batch it interrupted. The real targets are exercised by tests/vm/test_agent.py
and tests/vm/test_faults.py.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from ovnbgp.agent import daemon as daemon_mod
from ovnbgp.agent.daemon import Agent
from ovnbgp.agent.workqueue import Batch
from ovnbgp.config import AgentConfig, Config
from ovnbgp.kernel.objects import Action, AddrOp, ApplyResult, KernelPlan
from ovnbgp.model.cache import Changes, ModelCache
from tests.unit.sb_builder import SbBuilder

V4 = "172.24.4.10"


class FakeWatcher:
    events = ["PortBindingChassisCreatedEvent"]
    sb_connected = ovs_connected = True

    def __init__(self, sb: SbBuilder):
        self.sb = sb

    def snapshot(self):
        return self.sb.snapshot()

    def changes(self, keys):
        rows = self.sb.snapshot().port_bindings
        return Changes(port_bindings={k: rows.get(k) for k in keys})

    def events_idle(self, timeout):
        return True

    def local_ovs(self):
        return self.sb.local()


class FakeKernel:
    """Plans what the netlink reconciler would for the dummy only; can be told to fail."""

    def __init__(self):
        self.on_dummy: set = set()
        self.fail: Exception | None = None
        self.calls = 0

    def reconcile(self, desired, refresh=False):
        self.calls += 1
        if self.fail is not None:
            raise self.fail
        want = {e.prefix for e in desired.exposures}
        plan = KernelPlan()
        import ipaddress

        for p in sorted(want - self.on_dummy, key=str):
            plan.dummy_add.append(AddrOp(Action.ADD, "ovn", ipaddress.ip_interface(p), role="dummy"))
        for p in sorted(self.on_dummy - want, key=str):
            plan.dummy_del.append(AddrOp(Action.DEL, "ovn", ipaddress.ip_interface(p), role="dummy"))
        self.on_dummy = want
        return plan, ApplyResult(applied=len(plan.ops()))

    def link_changes(self):
        return set()

    def close(self):
        pass


class FakeFlows:
    def reconcile(self, desired, bridges=(), ofports=None):
        class R:
            added, removed, errors = [], [], []
        return R()


@pytest.fixture
def agent(tmp_path: Path):
    sb = SbBuilder()
    pub = sb.provider_network("public")
    sb.vm("vm1", pub, f"fa:16:3e:00:00:01 {V4}", chassis=None)
    cfg = Config(agent=AgentConfig(state_dir=tmp_path / "state", lock_file=tmp_path / "lock",
                                   metrics_listen=""))
    a = Agent(cfg, None)
    a.watcher = FakeWatcher(sb)
    a.cache = ModelCache(sb.snapshot(), cfg)
    a.kernel = FakeKernel()
    a.flows = FakeFlows()
    a.sb = sb
    return a


def metric(a: Agent, name: str, **labels) -> float:
    v = a.metrics.registry.get_sample_value(name, labels or None)
    return 0.0 if v is None else v


def test_event_batch_logs_one_line_per_change_with_its_cause(agent, caplog):
    agent.reconcile(Batch(full=True, reasons=["start"]))
    u = agent.sb.set("vm1", chassis="ch1").uuid
    agent._on_dirty({u}, "Port_Binding")
    agent._on_dirty({u}, "PortBindingChassisCreatedEvent")
    caplog.set_level(logging.INFO, logger="ovnbgp.agent")
    agent.reconcile(agent.queue.get(timeout=1))
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("exposed")]
    assert lines == [f"exposed {V4}/32 (provider-vm, port vm1, bridge br-ex, "
                     "cause PortBindingChassisCreatedEvent)"]
    assert metric(agent, "ovnbgp_exposures", kind="provider-vm") == 1
    assert metric(agent, "ovnbgp_changes_applied_total", target="kernel", op="add") == 1
    assert metric(agent, "ovnbgp_events_total", event="PortBindingChassisCreatedEvent") == 1
    assert agent.status.last_sync.changes == {"kernel_add": 1}

    # without a named event the change still says why: the batch's causes
    caplog.clear()
    agent.sb.set("vm1", chassis=None)
    agent._on_dirty({u}, "Port_Binding")
    agent.reconcile(agent.queue.get(timeout=1))
    assert [r.getMessage() for r in caplog.records if r.getMessage().startswith("withdrawn")] == [
        f"withdrawn {V4}/32 (provider-vm, port vm1, bridge br-ex, cause Port_Binding)"]


def test_failing_target_is_counted_and_retried_not_fatal(agent, monkeypatch):
    agent.kernel.fail = OSError("netlink dump interrupted")
    agent.reconcile(Batch(full=True, reasons=["start"]))
    assert metric(agent, "ovnbgp_apply_errors_total", target="kernel") == 1
    assert agent.status.errors[-1]["target"] == "kernel"
    assert agent._retry_at is not None
    # the retry comes as a full resync from the housekeeping of a later loop turn
    agent.kernel.fail = None
    agent._retry_at = 0.0
    agent._housekeeping()
    batch = agent.queue.get(timeout=1)
    assert batch.full and "retry after errors" in batch.reasons
    agent.reconcile(batch)
    assert agent._retry_at is None


def test_model_failure_keeps_the_node_and_the_loop(agent, monkeypatch):
    agent.reconcile(Batch(full=True, reasons=["start"]))
    before = agent.kernel.calls

    def boom(*a, **k):
        raise RuntimeError("model bug")

    monkeypatch.setattr(agent.cache, "update", boom)
    agent.reconcile(Batch(keys={"x"}))
    assert agent.kernel.calls == before  # nothing applied from a failed model
    assert metric(agent, "ovnbgp_apply_errors_total", target="model") == 1


def test_sighup_with_unchanged_config_keeps_the_batch(agent, monkeypatch):
    agent.reconcile(Batch(full=True, reasons=["start"]))
    u = agent.sb.set("vm1", chassis="ch1").uuid
    agent._on_dirty({u}, "Port_Binding")
    agent._request_reload()
    monkeypatch.setattr(daemon_mod.config_mod, "load", lambda *a, **k: agent.cfg)
    monkeypatch.setattr(agent, "_housekeeping", lambda: agent.stop("test") if agent.kernel.calls > 1 else None)
    real = agent.reconcile

    def once(batch):
        out = real(batch)
        agent.stop("test")
        return out

    monkeypatch.setattr(agent, "reconcile", once)
    agent._loop()
    assert f"{V4}/32" in {str(p) for p in agent.kernel.on_dummy}


def test_ports_waiting_for_up_are_counted_in_status_and_metrics(agent):
    """Issue 17 item 7: bound here with up=false is 'waiting', not 'not bound here'."""
    agent.sb.set("vm1", chassis="ch1", up=False)
    agent.reconcile(Batch(full=True, reasons=["start"]))
    assert agent.status.waiting_exposures == {"port-up": 1}
    assert "1 port(s) not exposed yet: port-up" in agent.status.waiting
    assert metric(agent, "ovnbgp_waiting", reason="port-up") == 1
    agent.sb.set("vm1", up=True)
    agent.reconcile(Batch(full=True, reasons=["resync"]))
    assert agent.status.waiting_exposures == {}
    assert not [w for w in agent.status.waiting if "port-up" in w]
    assert metric(agent, "ovnbgp_waiting", reason="port-up") == 0
    assert agent.status.to_dict()["waiting_exposures"] == {}

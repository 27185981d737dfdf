"""The daemon's reconcile logic with stand-in targets (pure: no DB, no netlink, no FRR).

What is checked here is the loop's own behaviour: one log line per exposure change with its
cause, metrics by target, a failing target does not kill the agent and is retried, a SIGHUP
does not drop the batch it interrupted. The real targets are exercised by tests/vm/test_agent.py
and tests/vm/test_faults.py.
"""

from __future__ import annotations

import ipaddress
import logging
from pathlib import Path

import pytest

from ovnbgp.agent import daemon as daemon_mod
from ovnbgp.agent.daemon import Agent
from ovnbgp.agent.workqueue import Batch
from ovnbgp.config import AgentConfig, Config
from ovnbgp.frr.manager import FrrConfigChange
from ovnbgp.kernel.objects import Action, AddrOp, KernelPlan
from ovnbgp.model.cache import Changes, ModelCache
from ovnbgp.model.target import TargetResult
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

    name = "kernel"

    def __init__(self):
        self.on_dummy: set = set()
        self.fail: Exception | None = None
        self.calls = 0

    def reconcile(self, desired, *, full=False) -> TargetResult:
        self.calls += 1
        if self.fail is not None:
            raise self.fail
        want = {e.prefix for e in desired.exposures}
        plan = KernelPlan()
        for p in sorted(want - self.on_dummy, key=str):
            plan.dummy_add.append(AddrOp(Action.ADD, "ovn", ipaddress.ip_interface(p), role="dummy"))
        for p in sorted(self.on_dummy - want, key=str):
            plan.dummy_del.append(AddrOp(Action.DEL, "ovn", ipaddress.ip_interface(p), role="dummy"))
        self.on_dummy = want
        result = TargetResult(plan=plan)
        for op in plan.ops():
            result.done(op.verb, op, op.address.network)
        return result

    def link_changes(self):
        return set()

    def close(self):
        pass


class FakeFlows:
    name = "flows"

    def __init__(self):
        self.passes: list[bool] = []  # full? of each reconcile

    def reconcile(self, desired, *, full=False) -> TargetResult:
        self.passes.append(full)
        return TargetResult()

    def up_to_date(self, desired) -> bool:
        return bool(self.passes)  # nothing changes flows in these tests once a pass ran


class FakeFrr:
    """FRR whose config never gets through (vtysh missing), until told otherwise."""

    name = "frr"
    restarts_detected = 0

    def __init__(self, clock):
        self.clock = clock
        self.attempts: list[float] = []
        self.ok = False

    def reconcile(self, desired, *, full=False) -> TargetResult:
        self.attempts.append(self.clock())
        result = TargetResult()
        if not self.ok:
            result.add_failure(FrrConfigChange("failed"), "vtysh: No such file or directory")
        return result

    def status(self):
        return {}

    def next_tick_in(self):
        return None  # running, config applied: nothing to look at until a daemon exits


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def sb() -> SbBuilder:
    sb = SbBuilder()
    pub = sb.provider_network("public")
    sb.vm("vm1", pub, f"fa:16:3e:00:00:01 {V4}", chassis=None)
    return sb


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def agent(tmp_path: Path, sb: SbBuilder, clock: FakeClock):
    cfg = Config(agent=AgentConfig(state_dir=tmp_path / "state", lock_file=tmp_path / "lock",
                                   metrics_listen=""))
    a = Agent(cfg, None, clock=clock)
    a.watcher = FakeWatcher(sb)
    a.cache = ModelCache(sb.snapshot(), cfg)
    a.kernel = FakeKernel()
    a.flows = FakeFlows()
    return a


def metric(a: Agent, name: str, **labels) -> float:
    v = a.metrics.registry.get_sample_value(name, labels or None)
    return 0.0 if v is None else v


def test_event_batch_logs_one_line_per_change_with_its_cause(agent, sb, caplog):
    agent.reconcile(Batch(full=True, reasons=["start"]))
    u = sb.set("vm1", chassis="ch1").uuid
    agent.on_dirty({u}, "Port_Binding")
    agent.on_dirty({u}, "PortBindingChassisCreatedEvent")
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
    sb.set("vm1", chassis=None)
    agent.on_dirty({u}, "Port_Binding")
    agent.reconcile(agent.queue.get(timeout=1))
    assert [r.getMessage() for r in caplog.records if r.getMessage().startswith("withdrawn")] == [
        f"withdrawn {V4}/32 (provider-vm, port vm1, bridge br-ex, cause Port_Binding)"]


def test_failing_target_is_counted_and_retried_not_fatal(agent, clock):
    agent.kernel.fail = OSError("netlink dump interrupted")
    agent.reconcile(Batch(full=True, reasons=["start"]))
    assert metric(agent, "ovnbgp_apply_errors_total", target="kernel") == 1
    assert agent.status.errors[-1]["target"] == "kernel"
    assert agent.backoff["kernel"].pending
    agent.housekeeping()
    assert agent.queue.get(timeout=0.3) is None  # not before its delay
    # the retry comes as a full resync from the housekeeping of a later loop turn
    agent.kernel.fail = None
    clock.now += daemon_mod.RETRY_AFTER_ERROR
    agent.housekeeping()
    batch = agent.queue.get(timeout=1)
    assert batch.full and "retry after errors" in batch.reasons
    agent.reconcile(batch)
    assert not agent.backoff["kernel"].pending


def test_model_failure_keeps_the_node_and_the_loop(agent, monkeypatch):
    agent.reconcile(Batch(full=True, reasons=["start"]))
    before = agent.kernel.calls

    def boom(*a, **k):
        raise RuntimeError("model bug")

    monkeypatch.setattr(agent.cache, "update", boom)
    agent.reconcile(Batch(keys={"x"}))
    assert agent.kernel.calls == before  # nothing applied from a failed model
    assert metric(agent, "ovnbgp_apply_errors_total", target="model") == 1


def test_sighup_with_unchanged_config_keeps_the_batch(agent, sb, monkeypatch):
    agent.reconcile(Batch(full=True, reasons=["start"]))
    u = sb.set("vm1", chassis="ch1").uuid
    agent.on_dirty({u}, "Port_Binding")
    agent.request_reload()
    monkeypatch.setattr(daemon_mod.config_mod, "load", lambda *a, **k: agent.cfg)
    monkeypatch.setattr(agent, "housekeeping", lambda: agent.stop("test") if agent.kernel.calls > 1 else None)
    real = agent.reconcile

    def once(batch):
        out = real(batch)
        agent.stop("test")
        return out

    monkeypatch.setattr(agent, "reconcile", once)
    agent.loop()
    assert f"{V4}/32" in {str(p) for p in agent.kernel.on_dummy}


def test_ports_waiting_for_up_are_counted_in_status_and_metrics(agent, sb):
    """Issue 17 item 7: bound here with up=false is 'waiting', not 'not bound here'."""
    sb.set("vm1", chassis="ch1", up=False)
    agent.reconcile(Batch(full=True, reasons=["start"]))
    assert agent.status.waiting_exposures == {"port-up": 1}
    assert "1 port(s) not exposed yet: port-up" in agent.status.waiting
    assert metric(agent, "ovnbgp_waiting", reason="port-up") == 1
    sb.set("vm1", up=True)
    agent.reconcile(Batch(full=True, reasons=["resync"]))
    assert agent.status.waiting_exposures == {}
    assert not [w for w in agent.status.waiting if "port-up" in w]
    assert metric(agent, "ovnbgp_waiting", reason="port-up") == 0
    assert agent.status.to_dict()["waiting_exposures"] == {}


def test_frr_failures_are_retried_with_backoff_not_every_tick(agent, clock):
    """vtysh missing: FRR is tried again after 5, 10, 20, ... seconds, at most 2 min apart
    (README), not at every loop turn; a success starts the delays over (issue 17, item 6)."""
    frr = agent.frr = FakeFrr(clock)
    start = clock.now
    for _ in range(600):  # ten minutes of one-second loop turns
        agent.housekeeping()
        clock.now += 1.0
    gaps = [round(b - a) for a, b in zip(frr.attempts, frr.attempts[1:])]
    assert frr.attempts[0] == start
    assert gaps == [5, 10, 20, 40, 80, 120, 120, 120][:len(gaps)] and len(gaps) >= 7, gaps
    assert metric(agent, "ovnbgp_apply_errors_total", target="frr") == len(frr.attempts)
    assert agent.status.errors[-1]["target"] == "frr"

    frr.ok = True
    while len(frr.attempts) < 10:  # the next attempt (at its delay) works
        agent.housekeeping()
        clock.now += 1.0
    frr.ok = False
    agent.housekeeping()  # a working FRR is checked every turn; this one fails again
    failed_at = frr.attempts[-1]
    while clock.now < failed_at + 30:
        clock.now += 1.0
        agent.housekeeping()
    assert [round(t - failed_at) for t in frr.attempts if t > failed_at] == [5, 15]


def test_contested_owners_are_written_for_the_next_start(agent, sb, tmp_path):
    """Issue 17 item 3 across a restart: the owner of a prefix two rows claim is saved in the
    state directory (agent/owners.py) when it changes, and read back as the model's seed."""
    from ovnbgp.agent import owners as owners_mod

    path = owners_mod.path_in(agent.cfg.agent.state_dir)
    sb.set("vm1", chassis="ch1")
    agent.reconcile(Batch(full=True, reasons=["start"]))
    assert not path.exists()  # nothing contested: nothing written
    sb.vm("vm2", sb.rows[next(u for u, r in sb.rows.items() if r.logical_port == "vm1")].datapath,
          f"fa:16:3e:00:00:02 {V4}", chassis="ch1")
    agent.reconcile(Batch(full=True, reasons=["resync"]))
    vm1 = next(u for u, r in sb.rows.items() if r.logical_port == "vm1")
    saved = owners_mod.load(path)
    assert saved == {ipaddress.ip_network(f"{V4}/32"): (vm1, "vm1")}
    assert {e.port for e in agent.cache.state.exposures} == {"vm1"}
    # the claim goes away: the record is emptied
    sb.remove("vm2")
    agent.reconcile(Batch(full=True, reasons=["resync"]))
    assert owners_mod.load(path) == {}


def test_owners_file_round_trip_and_garbage(tmp_path, caplog):
    from ovnbgp.agent import owners as owners_mod

    p = tmp_path / "owners.json"
    owners = {ipaddress.ip_network("172.24.4.10/32"): ("u1", "vm1"),
              ipaddress.ip_network("2001:db8::10/128"): ("u2", "vm2")}
    owners_mod.save(p, owners)
    assert owners_mod.load(p) == owners
    assert owners_mod.load(tmp_path / "missing.json") == {}
    p.write_bytes(b"\xff not json")
    assert owners_mod.load(p) == {}
    assert "unreadable" in caplog.text


def test_an_idle_loop_sets_no_clock_until_something_is_due(agent, clock):
    """Housekeeping asks for a wake-up only for what is due on a clock: a retry after errors,
    FRR while it needs watching; otherwise the loop sleeps until an event."""
    agent.frr = frr = FakeFrr(clock)
    frr.ok = True
    agent.reconcile(Batch(full=True, reasons=["start"]))
    agent.housekeeping()
    assert agent._housekeeping_due_in() is None
    frr.next_tick_in = lambda: 1.0  # e.g. FRR down: its pid files are read on a clock
    assert agent._housekeeping_due_in() == 1.0
    frr.next_tick_in = lambda: None
    agent.kernel.fail = OSError("netlink dump interrupted")
    agent.reconcile(Batch(full=True, reasons=["resync"]))
    assert agent._housekeeping_due_in() == daemon_mod.RETRY_AFTER_ERROR
    clock.now += 2
    assert agent._housekeeping_due_in() == daemon_mod.RETRY_AFTER_ERROR - 2


def test_a_wake_runs_the_housekeeping_at_once_without_a_batch(agent, clock, monkeypatch):
    """FRR exited, a DB connection changed, a flow monitor ended: wake() ends the loop's
    wait (which has no timeout here) and the housekeeping runs; no reconcile."""
    import threading

    agent.reconcile(Batch(full=True, reasons=["start"]))
    calls_before = agent.kernel.calls
    turns = threading.Event()
    monkeypatch.setattr(agent, "housekeeping", turns.set)
    loop = threading.Thread(target=agent.loop)
    loop.start()
    try:
        assert not turns.wait(0.3)  # asleep: nothing due
        agent.queue.wake()
        assert turns.wait(5)
        assert agent.kernel.calls == calls_before
    finally:
        agent.stop("test")
        loop.join(5)
    assert not loop.is_alive()

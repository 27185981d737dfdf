"""`ovnbgp run`: the level-triggered reconcile loop that ties the OVN side to the node.

    Agent(cfg, config_path).run()   # blocks until SIGTERM/SIGINT; returns the exit status

Start-up, in order (docs/architecture.md, "One Southbound change"):
 1. lock file (one agent per node), metrics exporter;
 2. FRR bootstrap (daemons file, FRR running, config applied), in a thread alongside 3 and 4:
    steering and the dummy addresses do not need FRR (it advertises what is on the dummy once
    configured), so frr-reload.py's seconds are not added to the cold sync; a failure is
    logged and retried with backoff (below);
 3. connect the SB and local OVS IDLs and wait for the initial dump of every monitored table
    (a sync against a half-loaded DB would withdraw valid routes); retried until it works;
 4. one full reconcile: the kernel reconciler observes what is on the node and adopts it (no
    flush, nothing deleted and re-added), removing only stale objects ovnbgp owns.
Then events (IDL threads) mark keys dirty in the WorkQueue; the loop takes debounced batches and
reconciles the dirty keys through ModelCache.update(); a periodic full resync, a reconnect, a
SIGHUP or a SIGUSR1 (a full resync now, config unchanged) runs the same path with a rebuilt model.
Each sync's wall and CPU time (process_time: every thread of the agent, not its children such as
frr-reload.py) go to the log and the status record. Every loop turn also does the housekeeping:
FRR's restart check (re-applies its config), the link monitor (a provider bridge that
appeared), the flow monitors, the DB connection metrics and the retries that are due.

Idle costs nothing: the loop does not tick. It wakes for a batch, or when something it looks
after tells it (WorkQueue.wake: an FRR daemon exited, a DB connection went up or down, a flow
monitor ended, SIGHUP), or when a clock it set is due: a retry after errors, a flow monitor's
restart delay, FRR while it needs watching (down, BFD held, the stale-route watch:
FrrManager.next_tick_in). An idle 10k node spent ~0.25 s CPU a minute in 1 s ticks (User-Mode
Linux, strace: ~36 system calls a turn).

Drift (docs/architecture.md, "Drift"): the kernel reconciler's notification thread marks
KERNEL_KEY when someone else changed what ovnbgp owns; the loop asks the reconciler whether
that was drift (an echo of our own changes is not) and repairs only what drifted. The flow
monitor (ovs/flows.py) wakes the flow-check thread when a flow of ours was deleted or
ovs-vswitchd restarted; that thread also dumps the flows every FLOW_CHECK_INTERVAL as a safety
net. Nothing slow runs on the loop thread between events: flow dumps are on the flow-check
thread, the status file is written by its own thread (and only when its text changed).

Targets: the kernel, the OVS flows and FRR each implement model/target.py's Target and answer
with a TargetResult (changed, failed, held, notices); the loop runs them in order (flows, kernel,
FRR) and counts, logs and reports from that one type: ovnbgp_changes_applied_total{target,op},
ovnbgp_apply_errors_total{target}, the status errors and `waiting` (every target's notices),
one log line per exposure change with its cause.

Failures: a target that fails (netlink error, ovs-ofctl, FRR refusing or unreachable, vtysh
missing) or a model error is logged, counted and recorded in the status; the loop goes on and
the failing part is tried again after RETRY_AFTER_ERROR seconds, doubling up to RETRY_MAX while
the failure lasts (one Backoff per target; a success starts the delays over): a full reconcile
for the model, the kernel and the flows, the next FRR attempt for FRR (FRR is not tried at every
loop turn while it fails). FRR's running config is compared with ours (frr-reload --test) on the
periodic resync and SIGUSR1 only; restarts are caught when a daemon's pidfd says it exited.
Every wait ends promptly on SIGTERM, the wait for the databases at start included.

Stopping (SIGTERM/SIGINT) leaves the node exactly as it is: exposures stay advertised while the
agent is down, and the next start adopts them. A lost DB connection changes nothing either: the
watcher keeps the last rows it had until the DB says otherwise.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Hashable
from collections.abc import Set as AbstractSet
from pathlib import Path
from typing import TYPE_CHECKING

from ovnbgp import config as config_mod
from ovnbgp.agent import owners as owners_mod
from ovnbgp.agent import status as status_mod
from ovnbgp.agent.lockfile import LockFile
from ovnbgp.agent.metrics import Metrics
from ovnbgp.agent.workqueue import Batch, WorkQueue
from ovnbgp.fileio import atomic_write
from ovnbgp.frr.manager import FrrManager, as_target_result
from ovnbgp.kernel.netlink import KernelReconciler
from ovnbgp.model.cache import ModelCache
from ovnbgp.model.records import DesiredState, Exposure, ExposureKind
from ovnbgp.model.target import Backoff, Target, TargetResult

if TYPE_CHECKING:
    from ovnbgp.ovn.watcher import OvnWatcher
from ovnbgp.ovs.env import ovs_tool_env
from ovnbgp.ovs.flows import FlowMonitor, FlowReconciler

LOG = logging.getLogger("ovnbgp.agent")

FLOW_CHECK_INTERVAL = 600.0  # safety net: seconds between dumps of our flows. The flow monitor
# sees a deleted flow or a vswitchd restart at once (ovs/flows.py) and the periodic resync
# (5 min by default) passes over the flows in full; an ovs-ofctl dump every minute was most of
# an idle agent's CPU (its children's: ~1 s a minute at 10k in UML under load, bench_agent).
KERNEL_KEY = ("kernel",)  # work-queue key of a kernel notification (drift)
START_RETRY = 5.0
RETRY_AFTER_ERROR = 5.0  # seconds before a reconcile that had failures is retried (full),
RETRY_MAX = 120.0  # doubling while the failures go on (e.g. a bridge left down), up to this
WAITING_NOTE = " not exposed yet: "  # status line of rows whose exposures wait
_NOTICE_ORDER = ["kernel", "flows", "frr", "ports"]  # status.waiting: the targets', then the ports'
DRIFT_CHECK_REASONS = ("periodic resync", "SIGUSR1")  # full syncs that also compare FRR's config
KERNEL_DUMP_MAX_AGE = 3600.0  # seconds: a routine resync dumps the kernel at least this often


class Agent:
    def __init__(self, cfg: config_mod.Config, config_path: Path | None = None, *,
                 netns: str | None = None, clock: Callable[[], float] = time.monotonic):
        self.cfg = cfg
        self.config_path = config_path
        self.netns = netns
        self._clock = clock
        self.metrics = Metrics()
        self.status = status_mod.Status()
        self.queue = WorkQueue(cfg.agent.debounce, cfg.agent.resync_interval)
        self._stop = threading.Event()
        self._reload_requested = False
        self._key_causes: dict[Hashable, str] = {}
        self._causes_lock = threading.Lock()
        self.watcher: OvnWatcher | None = None
        self.cache: ModelCache | None = None
        self.kernel: KernelReconciler | None = None
        self.flows: FlowReconciler | None = None
        self.frr: FrrManager | None = None
        self.flow_monitor: FlowMonitor | None = None
        self._desired = DesiredState()
        self._flows_lock = threading.Lock()  # the loop and the flow-check thread
        self._status_writer = _StatusWriter()
        self._flow_check_now = threading.Event()  # set by the flow monitor
        self._flow_monitors_due: float | None = None  # when FlowMonitor.ensure() wants a call
        self._in_loop = False  # in the loop, the status file is written by its own thread
        # When each failing part is tried again (5 s doubling to 2 min): a failed model or
        # kernel/flows pass brings a full reconcile, a failed FRR pass the next FRR attempt.
        self.backoff = {name: Backoff(RETRY_AFTER_ERROR, RETRY_MAX, clock)
                        for name in ("model", "kernel", "flows", "frr")}
        self._notices: dict[str, list[str]] = {}  # target -> its last notices (status.waiting)
        self._saved_owners: dict = {}  # the contested prefixes' owners last written (agent/owners.py)
        self._frr_restarts_counted = 0
        self._counted: tuple[AbstractSet, Counter] | None = None  # (exposures, counts by kind)
        for target in ("kernel", "flows", "frr", "model"):  # every series exists from the start
            self.metrics.apply_errors.labels(target)
        for db in ("sb", "ovs"):
            self.metrics.db_connected.labels(db).set(0)

    # --- signals -----------------------------------------------------------------------------

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, lambda *_: self.stop("SIGTERM"))
        signal.signal(signal.SIGINT, lambda *_: self.stop("SIGINT"))
        signal.signal(signal.SIGHUP, lambda *_: self.request_reload())
        signal.signal(signal.SIGUSR1, lambda *_: self.queue.request_full("SIGUSR1"))

    def stop(self, why: str = "stop") -> None:
        LOG.info("%s: stopping; the node keeps what it has", why)
        self._stop.set()
        self._flow_check_now.set()
        self.queue.stop()

    def request_reload(self) -> None:
        """SIGHUP: re-read the config file at the next loop turn (now)."""
        self._reload_requested = True
        self.queue.wake()

    # --- event callbacks (IDL threads) ---------------------------------------------------------

    def on_dirty(self, keys, cause: str) -> None:
        """Keys of the model that changed (the watcher's callback); `cause`: a table name or
        the name of the event that saw the change."""
        if cause.endswith("Event"):  # a named event: remember it as the cause for logging
            self.metrics.events.labels(cause).inc()
            with self._causes_lock:
                for k in keys:
                    self._key_causes[k] = cause
        self.queue.mark(keys, cause)

    def _on_resync(self, reason: str) -> None:
        self.queue.request_full(reason)

    def _on_kernel_event(self) -> None:
        """The kernel monitor thread saw a notification that may be drift (kernel/monitor.py):
        the loop looks at once (the reconciler folds it in and plans only what drifted)."""
        self.queue.mark([KERNEL_KEY], "kernel change")

    def _on_flow_event(self, bridge: str, why: str) -> None:
        """The flow monitor (ovs/flows.py): our flows on `bridge` may be gone; the flow-check
        thread looks at them now (an ovs-ofctl dump, off the loop thread)."""
        LOG.debug("flows on %s: %s", bridge, why)
        self._flow_check_now.set()
        self.queue.wake()  # an ended monitor is restarted by the loop's housekeeping

    # --- life cycle ----------------------------------------------------------------------------

    def run(self) -> int:
        lock = LockFile(self.cfg.agent.lock_file)
        lock.acquire()
        try:
            if self.cfg.agent.metrics_listen:
                self.metrics.serve(self.cfg.agent.metrics_listen)
                LOG.info("metrics on http://%s/metrics", self.cfg.agent.metrics_listen)
            frr_start = threading.Thread(target=self._start_frr, name="frr-bootstrap", daemon=True)
            frr_start.start()
            if not self._start_ovn():
                return 0  # stopped while waiting for the DBs
            self._build_reconcilers()
            self.reconcile(Batch(full=True, reasons=["start"]))
            # The first reconcile made the other long-lived objects (the kernel's kept
            # observation and indexes: about as many as the model). Left to the collector, a
            # full pass over them lands on some later event: 0.6 s for 1.6M such objects
            # (natively and in User-Mode Linux alike). Collected once here, then frozen like
            # the model's.
            gc.collect()
            gc.freeze()
            frr_start.join()  # the loop's FRR checks start from a finished bootstrap
            threading.Thread(target=self._flow_checker, name="flow-check", daemon=True).start()
            self.loop()
            return 0
        finally:
            self._shutdown()
            lock.release()

    def _start_frr(self) -> None:
        self.frr = frr = FrrManager(self.cfg)
        frr.on_exit = self.queue.wake  # the loop's housekeeping looks at FRR when it exits
        try:
            self._record(frr.name, as_target_result(frr.bootstrap()), "start")
        except Exception as e:  # FRR missing or not startable: keep steering, retry later
            LOG.error("FRR bootstrap failed: %s (will retry)", e)
            self._error(frr.name, str(e))
            self.backoff[frr.name].failed()

    def _ovn(self) -> OvnWatcher:
        """The watcher; the loop and the reconcile run only after _start_ovn() set it."""
        assert self.watcher is not None, "OVN watcher not started"
        return self.watcher

    def _model(self) -> ModelCache:
        assert self.cache is not None, "model not built (the OVN watcher is not started)"
        return self.cache

    def _start_ovn(self) -> bool:
        from ovnbgp.ovn.watcher import OvnError, OvnWatcher

        while not self._stop.is_set():
            watcher = OvnWatcher(self.cfg, on_dirty=self.on_dirty, on_resync=self._on_resync,
                                 on_connection=self.queue.wake)
            try:
                watcher.start(timeout=max(60.0, self.cfg.agent.resync_interval), stop=self._stop)
            except OvnError as e:
                if self._stop.is_set():
                    break
                LOG.error("OVN side not ready: %s; retrying in %.0fs", e, START_RETRY)
                self.status.add_error("ovn", str(e))
                self._write_status()
                self._stop.wait(START_RETRY)
                continue
            self.watcher = watcher
            self._saved_owners = owners_mod.load(owners_mod.path_in(self.cfg.agent.state_dir))
            self.cache = ModelCache(watcher.snapshot(), self.cfg, owners=self._saved_owners)
            # The first model build makes most long-lived objects; freezing them out of the
            # collector halves later full rebuilds at 10k ports (measured in bench_model).
            gc.freeze()
            LOG.info("initial dump read: %d port bindings", len(self.cache.snapshot().port_bindings))
            return True
        return False

    def _build_reconcilers(self) -> None:
        from ovnbgp.kernel.netlink import KernelReconciler
        from ovnbgp.ovs.flows import FlowReconciler

        self.kernel = KernelReconciler(self.cfg, netns=self.netns)
        self.kernel.watch(self._on_kernel_event)
        env = ovs_tool_env(self.cfg.ovn.ovs_remote)
        self.flows = FlowReconciler(self.cfg, env=env, local=self._local_ports)
        if self.flow_monitor is not None:
            self.flow_monitor.close()
        self.flow_monitor = FlowMonitor(self._on_flow_event, env=env)

    def _local_ports(self) -> tuple[set[str], dict[str, int]]:
        """(local provider bridges, patch port -> ofport) from the local OVS DB."""
        local = self._ovn().local_ovs()
        ofports = {port: ofport for b in local.bridges.values()
                   for port, ofport in b.patch_ports.items()}
        return set(local.bridge_mappings.values()), ofports

    @property
    def targets(self) -> list[Target]:
        """The targets in the order a reconcile runs them (flows and steering before FRR)."""
        return [t for t in (self.flows, self.kernel, self.frr) if t is not None]

    def _shutdown(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()
        if self.kernel is not None:
            self.kernel.close()
        if self.flow_monitor is not None:
            self.flow_monitor.close()
        self._write_status()

    # --- the loop ------------------------------------------------------------------------------

    def loop(self) -> None:
        """The main loop (run() calls it once the node is in sync): batches, then
        housekeeping, until stop()."""
        self._in_loop = True
        try:
            self._loop()
        finally:
            self._in_loop = False

    def _loop(self) -> None:
        while not self._stop.is_set():
            batch = self.queue.get(timeout=self._housekeeping_due_in())
            if self._stop.is_set():
                break
            if self._reload_requested:
                self._reload_requested = False
                if self._reload_config():
                    continue  # a full reconcile ran: it covered this batch's keys too
            if batch is not None and batch.keys == {KERNEL_KEY} and not batch.full and (
                    self.kernel is not None and not self.kernel.drifted()):
                batch = None  # only our own changes' echoes, or nothing ovnbgp owns
            if batch is not None and not batch.empty:
                self.reconcile(batch)  # before housekeeping: an event waits for no flow dump
            else:
                self._write_status()
            self.housekeeping()

    def _housekeeping_due_in(self) -> float | None:
        """Seconds until housekeeping has something due on a clock; None: nothing until an
        event or a wake() (the loop then sleeps until one comes, or the periodic resync)."""
        now = self._clock()
        due = [b.due_at for b in self.backoff.values() if b.due_at is not None]
        if self._flow_monitors_due is not None:
            due.append(self._flow_monitors_due)
        frr_tick = self.frr.next_tick_in() if (
            self.frr is not None and not self.backoff["frr"].pending) else None
        if frr_tick is not None:
            due.append(now + frr_tick)
        return max(0.0, min(due) - now) if due else None

    def housekeeping(self) -> None:
        """Cheap checks at every loop turn; each one queues work rather than doing it here
        (FRR's restart check excepted: a poll of its pidfds, retried with backoff)."""
        frr_retry = self.backoff["frr"]
        if self.frr is not None and (not frr_retry.pending or frr_retry.take()):
            self._run_target(self.frr, self._desired, full=False, trigger="tick")
        if self.flow_monitor is not None:
            wait = self.flow_monitor.ensure({f.bridge for f in self._desired.flows})
            self._flow_monitors_due = None if wait is None else self._clock() + wait
        changed = self.kernel.link_changes() if self.kernel is not None else set()
        watched = {b.name for b in self._desired.bridges} | {
            self.cfg.kernel.vrf_name, self.cfg.kernel.dummy_name}
        if changed & watched:
            self.queue.mark([("links",)], "link change: " + ", ".join(sorted(changed & watched)))
        watcher = self._ovn()
        for db, up in (("sb", watcher.sb_connected), ("ovs", watcher.ovs_connected)):
            self.metrics.db_connected.labels(db).set(1 if up else 0)
        due = [name for name in ("model", "kernel", "flows") if self.backoff[name].take()]
        if due:  # one full reconcile retries them all
            self.queue.request_full("retry after errors")

    def reconcile(self, batch: Batch) -> DesiredState:
        """Bring the node to the desired state for this batch (full or the dirty keys)."""
        started = time.monotonic()
        cpu_started = time.process_time()
        trigger = "resync" if batch.full else "event"
        with self._causes_lock:
            causes, self._key_causes = self._key_causes, {}
        default_cause = (", ".join(batch.reasons) or "resync") if batch.full else (
            ", ".join(sorted(batch.causes)) or "event")
        previous = self._desired
        desired = self._update_model(batch)
        if desired is None:
            return self._desired
        self._desired = desired
        self.status.held = sorted(h.reason for h in desired.holds)
        self.metrics.bridge_data_held.set(len(desired.holds))
        pass_ = _Pass(trigger, desired, previous, causes, default_cause)
        for target in self.targets:
            full = self._full_pass(target, batch)
            if full is not None:
                self._run_target(target, desired, full=full, trigger=trigger, pass_=pass_)
        self._record_waiting(desired)
        self._save_owners()
        self._report_sync(batch, trigger, desired, previous, pass_.changes,
                          time.monotonic() - started, time.process_time() - cpu_started)
        return desired

    def _update_model(self, batch: Batch) -> DesiredState | None:
        """The desired state after this batch; None when the model failed (logged, counted,
        retried: the node is left as it is)."""
        try:
            cache, watcher = self._model(), self._ovn()
            if batch.full:
                cache.resync(watcher.snapshot())
            else:
                cache.update(watcher.changes(k for k in batch.keys if isinstance(k, str)))
        except Exception as e:  # a model bug must not kill the agent: the node keeps its state
            LOG.exception("desired state not computed (%s); the node is left as it is", e)
            self._error("model", str(e))
            self.backoff["model"].failed()
            self._write_status()
            return None
        self.backoff["model"].succeeded()
        return self._model().state

    def _full_pass(self, target: Target, batch: Batch) -> bool | None:
        """How a target takes part in this batch's reconcile: full (look at everything
        again), not (reuse what it knows), or None: not at all. FRR joins only the periodic
        resync and SIGUSR1 (frr-reload --test takes seconds; restarts are caught by the
        housekeeping's FRR check, woken by the daemons' exit). A routine resync (periodic,
        SIGUSR1) dumps the kernel only when its kept observation is not current
        (KernelReconciler.observation_current) and leaves the flows to their monitor and
        safety-net check: the kernel and flow monitors repair drift as it happens, so the
        dumps are a rare safety net."""
        routine = batch.full and all(r in DRIFT_CHECK_REASONS for r in batch.reasons)
        if routine and target is self.kernel and self.kernel is not None:
            return not self.kernel.observation_current(KERNEL_DUMP_MAX_AGE)
        if routine and target is self.flows:
            return False  # the flow monitor sees changes; _flow_checker dumps every 10 min
        if target is not self.frr:
            return batch.full
        drift_check = batch.full and any(r in DRIFT_CHECK_REASONS for r in batch.reasons)
        return True if drift_check else None

    def _run_target(self, target: Target, desired: DesiredState, *, full: bool, trigger: str,
                    pass_: _Pass | None = None) -> None:
        """One target's pass: its result counted, logged and reported; a failure (an
        exception or failed changes) schedules the target's retry."""
        started = time.monotonic()
        if target is self.flows and not full and self.flows.up_to_date(desired):
            return  # the usual event: no flow to change, and no wait behind a flow check
        lock = self._flows_lock if target is self.flows else contextlib.nullcontext()
        try:
            with lock:
                result = target.reconcile(desired, full=full)
        except Exception as e:  # netlink dump failed, ovs-ofctl missing, invalid input, ...
            LOG.error("%s reconcile failed: %s", target.name, e)
            self._error(target.name, str(e))
            self.backoff[target.name].failed()
            return
        self._record(target.name, result, trigger, pass_)
        if full and target is self.frr:
            LOG.debug("FRR drift check took %.3fs", time.monotonic() - started)

    def _record(self, name: str, result: TargetResult, trigger: str,
                pass_: _Pass | None = None) -> None:
        """Metrics, log lines, status and backoff from one target's result."""
        counts = result.counts()
        for verb, n in counts.items():
            self.metrics.changes.labels(name, verb).inc(n)
            if pass_ is not None:
                pass_.changes[f"{name}_{verb}"] += n
        for change in result.changed:
            if change.exposure is not None and pass_ is not None:
                verb = change.verb
                exp = pass_.exposure(change.exposure, verb == "add")
                self._log_exposure(verb, change.exposure, exp, pass_.causes, pass_.default_cause)
        if name == "flows" and counts:
            LOG.info("flows (%s): %d installed, %d removed", trigger, counts["add"], counts["del"])
        if name == "frr":
            self._count_frr(counts["reload"], len(result.failed))
        for p in result.failed:
            LOG.error("%s: %s failed: %s", name, p.description, p.reason)
            self._error(name, f"{p.description}: {p.reason}")
        for p in result.held:
            LOG.warning("%s: %s held back: %s", name, p.description, p.reason)
        if result.plan is not None or result.notices:
            self._notices[name] = [n.describe() for n in result.notices]
            self._publish_waiting()
        if result.failed:
            self.backoff[name].failed()
        else:
            self.backoff[name].succeeded()

    def _report_sync(self, batch: Batch, trigger: str, desired: DesiredState,
                     previous: DesiredState, changes: Counter, duration: float,
                     cpu: float) -> None:
        self.metrics.reconcile_seconds.labels(trigger).observe(duration)
        self.metrics.last_sync.set(time.time())
        if desired.exposures is not previous.exposures or not self.status.exposures:
            self._update_counts(desired, previous)
        self.status.last_sync = status_mod.SyncInfo(at=time.time(), duration=round(duration, 4),
                                                   trigger=trigger, changes=dict(changes),
                                                   cpu=round(cpu, 4))
        self.status.syncs += 1
        if changes or batch.full:
            LOG.info("reconciled (%s%s) in %.3fs (%.3fs CPU): %s", trigger,
                     f": {', '.join(batch.reasons)}" if batch.reasons else "", duration, cpu,
                     ", ".join(f"{k}={v}" for k, v in sorted(changes.items())) or "no change")
        self._write_status()

    def _error(self, target: str, message: str) -> None:
        self.metrics.apply_errors.labels(target).inc()
        self.status.add_error(target, message)

    def _log_exposure(self, verb: str, prefix, exp: Exposure | None,
                      causes: dict[Hashable, str], default_cause: str = "resync") -> None:
        what = "exposed" if verb == "add" else "withdrawn"
        if exp is None:
            LOG.info("%s %s (stale, not in the desired state)", what, prefix,
                     extra={"fields": {"change": what, "prefix": str(prefix)}})
            return
        cause = causes.get(exp.row) or causes.get(f"lb:{exp.row}", default_cause)
        port = exp.port if exp.kind is not ExposureKind.LB_VIP else \
            f"{exp.port}, Load_Balancer {exp.row}"  # the row is the load balancer's (model/lb.py)
        LOG.info("%s %s (%s, port %s, bridge %s, cause %s)", what, prefix, exp.kind.value,
                 port, exp.bridge, cause,
                 extra={"fields": {"change": what, "prefix": str(prefix), "kind": exp.kind.value,
                                   "port": exp.port, "bridge": exp.bridge, "cause": cause}})

    def _flow_checker(self) -> None:
        """Thread: re-install our flows if something (a vswitchd restart, a del-flows by hand)
        removed them: at once when the flow monitor says so, else every FLOW_CHECK_INTERVAL
        (the safety net for what the monitor could miss)."""
        while not self._stop.is_set():
            self._flow_check_now.wait(FLOW_CHECK_INTERVAL)
            self._flow_check_now.clear()
            if self._stop.is_set():
                break
            try:
                if self.flows is not None:
                    self._run_target(self.flows, self._desired, full=True, trigger="flow check")
            except Exception as e:  # never let the thread die
                LOG.error("flow check failed: %s", e)

    # --- config reload -------------------------------------------------------------------------

    def _reload_config(self) -> bool:
        """SIGHUP: a new config applies in full; a bad one is refused and the old one stays.
        True when a full reconcile ran."""
        try:
            new = config_mod.load(self.config_path, missing_ok=self.config_path is None)
        except config_mod.ConfigError as e:
            LOG.error("SIGHUP: config not reloaded, keeping the running one: %s", e)
            self.status.add_error("config", str(e))
            self._write_status()
            return False
        if new == self.cfg:
            LOG.info("SIGHUP: config unchanged")
            return False
        LOG.info("SIGHUP: config reloaded")
        self.cfg = new
        self.queue.debounce = new.agent.debounce
        self.queue.resync_interval = new.agent.resync_interval
        if self.frr is not None:
            self._record(self.frr.name, as_target_result(self.frr.set_config(new)), "SIGHUP")
        if self.kernel is not None:
            self.kernel.close()
        self._build_reconcilers()
        # the exposures in place keep the prefixes other rows also claim (model/aggregate.py)
        self.cache = ModelCache(self._ovn().snapshot(), new, established=self._desired.exposures)
        self.reconcile(Batch(full=True, reasons=["SIGHUP"]))
        return True

    # --- reporting -----------------------------------------------------------------------------

    def _count_frr(self, reloads: int, failures: int) -> None:
        self.metrics.frr_reloads.labels("ok").inc(reloads)
        self.metrics.frr_reloads.labels("error").inc(failures)
        restarts = self.frr.restarts_detected if self.frr is not None else 0
        if restarts > self._frr_restarts_counted:
            self.metrics.frr_restarts.inc(restarts - self._frr_restarts_counted)
            self._frr_restarts_counted = restarts

    def _save_owners(self) -> None:
        """Keep the owners of contested prefixes for the next start (agent/owners.py); written
        only when they change, which is rare: the check is a walk over the contested prefixes."""
        owners = self.cache.contested_owners() if self.cache is not None else {}
        if owners == self._saved_owners:
            return
        try:
            owners_mod.save(owners_mod.path_in(self.cfg.agent.state_dir), owners)
            self._saved_owners = owners
        except OSError as e:
            LOG.warning("cannot write the owners of contested prefixes: %s", e)

    def _record_waiting(self, desired: DesiredState) -> None:
        """Rows whose exposures wait (e.g. bound here, up=false), by reason: status + metric."""
        waiting = desired.waiting_counts()
        for reason in waiting.keys() | self.status.waiting_exposures.keys():
            self.metrics.waiting.labels(reason).set(waiting.get(reason, 0))
        self.status.waiting_exposures = waiting
        self._notices["ports"] = [f"{n} port(s){WAITING_NOTE}{reason}" for reason, n in sorted(waiting.items())]
        self._publish_waiting()

    def _publish_waiting(self) -> None:
        """status.waiting: every target's notices (kernel first), then the ports that wait."""
        self.status.waiting = [line for name in sorted(self._notices, key=_NOTICE_ORDER.index)
                               for line in self._notices[name]]

    def _update_counts(self, desired: DesiredState, previous: DesiredState) -> None:
        """Exposures per kind, from the change when the counts are those of `previous`."""
        if self._counted is not None and self._counted[0] is previous.exposures:
            counts = Counter(self._counted[1])
            gone, came = desired.changes(previous, "exposures")
            counts.subtract(e.kind for e in gone)
            counts.update(e.kind for e in came)
        else:
            counts = Counter(e.kind for e in desired.exposures)
        self._counted = (desired.exposures, counts)
        for kind in ExposureKind:
            self.metrics.exposures.labels(kind.value).set(counts.get(kind, 0))
        self.status.exposures = {k.value: counts.get(k, 0) for k in ExposureKind}

    def _write_status(self) -> None:
        if self.watcher is not None:
            self.status.connected = {"sb": self.watcher.sb_connected,
                                     "ovs": self.watcher.ovs_connected}
        if self.frr is not None:
            try:
                self.status.frr = self.frr.status()
            except Exception as e:
                self.status.frr = {"error": str(e)}
        path = self.cfg.agent.state_dir / status_mod.STATUS_FILE
        text = status_mod.dumps(self.status)
        self._status_writer.submit(path, text, wait=not self._in_loop)


class _StatusWriter:
    """The status file, written off the loop thread: atomic_write fsyncs the file and its
    directory (milliseconds on a busy disk) and an event must not wait for that. The newest
    text wins (an older one is never written after it); a text equal to the last one written
    is not written again (an idle loop turn writes nothing)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._write_lock = threading.Lock()
        self._seq = 0
        self._pending: tuple[int, Path, str] | None = None
        self._last: tuple[Path, str] | None = None
        self._written_seq = 0
        self._thread: threading.Thread | None = None

    def submit(self, path: Path, text: str, *, wait: bool = False) -> None:
        """Queue (or with wait=True, write now) the status text."""
        with self._cond:
            if (path, text) == self._last and self._pending is None:
                return
            self._seq += 1
            item = (self._seq, path, text)
            if wait:
                self._pending = None
            else:
                self._pending = item
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="status-writer",
                                                    daemon=True)
                    self._thread.start()
                self._cond.notify()
                return
        self._write(item)

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._pending is None:
                    self._cond.wait()
                item, self._pending = self._pending, None
            self._write(item)

    def _write(self, item: tuple[int, Path, str]) -> None:
        seq, path, text = item
        with self._write_lock:
            if seq < self._written_seq:
                return  # a newer text is on disk already
            try:
                atomic_write(path, text)
            except OSError as e:
                LOG.warning("cannot write status to %s: %s", path, e)
                return
            self._written_seq = seq
            with self._cond:
                self._last = (path, text)


class _Pass:
    """One reconcile's context: the change of desired state it applies and the causes of the
    changes, to name the exposure behind each address added to or removed from the dummy."""

    def __init__(self, trigger: str, desired: DesiredState, previous: DesiredState,
                 causes: dict[Hashable, str], default_cause: str):
        self.trigger = trigger
        self.desired = desired
        self.previous = previous
        self.causes = causes
        self.default_cause = default_cause
        self.changes: Counter = Counter()
        self._lookups: dict[tuple[bool, bool], dict] = {}

    def exposure(self, prefix, added: bool) -> Exposure | None:
        """The exposure of a prefix added (in the new state) or removed (in the old one):
        first among the exposures that changed (O(change) between states of one
        ModelCache), the whole state only for an address that is fixed without a
        change in the desired state."""
        this = self.desired if added else self.previous
        for whole in (False, True):
            if (added, whole) not in self._lookups:
                if whole:
                    exps = this.exposures
                else:
                    gone, came = self.desired.changes(self.previous, "exposures")
                    exps = came if added else gone
                self._lookups[added, whole] = {e.prefix: e for e in exps}
            hit = self._lookups[added, whole].get(prefix)
            if hit is not None:
                return hit
        return None

"""`ovnbgp run`: the level-triggered reconcile loop that ties the OVN side to the node.

    Agent(cfg, config_path).run()   # blocks until SIGTERM/SIGINT; returns the exit status

Start-up, in order (design.md "Architecture"):
 1. lock file (one agent per node), metrics exporter;
 2. FRR bootstrap (daemons file, FRR running, config applied), in a thread alongside 3 and 4:
    steering and the dummy addresses do not need FRR (it advertises what is on the dummy once
    configured), so frr-reload.py's seconds are not added to the cold sync; a failure is
    logged and retried on every loop turn;
 3. connect the SB and local OVS IDLs and wait for the initial dump of every monitored table
    (a sync against a half-loaded DB would withdraw valid routes); retried until it works;
 4. one full reconcile: the kernel reconciler observes what is on the node and adopts it (no
    flush, nothing deleted and re-added), removing only stale objects ovnbgp owns.
Then events (IDL threads) mark keys dirty in the WorkQueue; the loop takes debounced batches and
reconciles the dirty keys through ModelCache.update(); a periodic full resync, a reconnect, a
SIGHUP or a SIGUSR1 (a full resync now, config unchanged) runs the same path with a rebuilt model.
Each sync's wall and CPU time (process_time: every thread of the agent, not its children such as
frr-reload.py) go to the log and the status record. Every loop turn (at most `TICK` apart) also
checks FRR for a restart (re-applies its config) and the kernel link monitor for a provider
bridge that appeared. A thread dumps ovnbgp's OVS flows every FLOW_CHECK_INTERVAL (a vswitchd
restart wipes them): an ovs-ofctl run is not cheap, and an event must never wait behind one.

Failures: a target that fails (netlink error, ovs-ofctl, FRR) or a model error is logged,
counted (ovnbgp_apply_errors_total{target}) and recorded in the status; the loop goes on and a
full reconcile is retried after RETRY_AFTER_ERROR seconds, doubling up to RETRY_MAX while the
failure lasts. FRR's running config is compared with ours (frr-reload --test) on the periodic
resync and SIGUSR1 only; restarts are caught by the cheap pid check of every turn.

Stopping (SIGTERM/SIGINT) leaves the node exactly as it is: exposures stay advertised while the
agent is down, and the next start adopts them. A lost DB connection changes nothing either: the
watcher keeps the last rows it had until the DB says otherwise.
"""

from __future__ import annotations

import gc
import logging
import signal
import threading
import time
from pathlib import Path
from collections import Counter
from typing import Hashable

from ovnbgp import config as config_mod
from ovnbgp.agent import status as status_mod
from ovnbgp.agent.lockfile import LockFile
from ovnbgp.agent.metrics import Metrics
from ovnbgp.model.cache import ModelCache
from ovnbgp.model.records import DesiredState, Exposure, ExposureKind
from ovnbgp.agent.workqueue import Batch, WorkQueue
from ovnbgp.ovs.env import ovs_tool_env

LOG = logging.getLogger("ovnbgp.agent")

TICK = 1.0  # seconds between housekeeping checks (FRR restart, flows, links)
FLOW_CHECK_INTERVAL = 5.0  # seconds between dumps of our flows (a vswitchd restart wipes them)
START_RETRY = 5.0
RETRY_AFTER_ERROR = 5.0  # seconds before a reconcile that had failures is retried (full),
RETRY_MAX = 120.0  # doubling while the failures go on (e.g. a bridge left down), up to this
DRIFT_CHECK_REASONS = ("periodic resync", "SIGUSR1")  # full syncs that also compare FRR's config
EVENTS_GRACE = 0.2  # seconds to let the named events of a batch run (their names are the causes)


class Agent:
    def __init__(self, cfg: config_mod.Config, config_path: Path | None = None, *,
                 netns: str | None = None):
        self.cfg = cfg
        self.config_path = config_path
        self.netns = netns
        self.metrics = Metrics()
        self.status = status_mod.Status()
        self.queue = WorkQueue(cfg.agent.debounce, cfg.agent.resync_interval)
        self._stop = threading.Event()
        self._reload_requested = False
        self._key_causes: dict[Hashable, str] = {}
        self._causes_lock = threading.Lock()
        self.watcher = None
        self.cache: ModelCache | None = None
        self.kernel = None
        self.flows = None
        self.frr = None
        self._desired = DesiredState()
        self._flows_lock = threading.Lock()  # the loop and the flow-check thread
        self._retry_at: float | None = None  # a full reconcile is due then (after failures)
        self._retry_delay = RETRY_AFTER_ERROR
        self._errors_this_sync = 0
        self._frr_restarts_counted = 0
        self._counted: tuple[frozenset, Counter] | None = None  # (exposures, counts by kind)
        for target in ("kernel", "flows", "frr", "model"):  # every series exists from the start
            self.metrics.apply_errors.labels(target)
        for db in ("sb", "ovs"):
            self.metrics.db_connected.labels(db).set(0)

    # --- signals -----------------------------------------------------------------------------

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, lambda *_: self.stop("SIGTERM"))
        signal.signal(signal.SIGINT, lambda *_: self.stop("SIGINT"))
        signal.signal(signal.SIGHUP, lambda *_: self._request_reload())
        signal.signal(signal.SIGUSR1, lambda *_: self.queue.request_full("SIGUSR1"))

    def stop(self, why: str = "stop") -> None:
        LOG.info("%s: stopping; the node keeps what it has", why)
        self._stop.set()
        self.queue.stop()

    def _request_reload(self) -> None:
        self._reload_requested = True

    # --- event callbacks (IDL threads) ---------------------------------------------------------

    def _on_dirty(self, keys, cause: str) -> None:
        if cause.endswith("Event"):  # a named event: remember it as the cause for logging
            self.metrics.events.labels(cause).inc()
            with self._causes_lock:
                for k in keys:
                    self._key_causes[k] = cause
        self.queue.mark(keys, cause)

    def _on_resync(self, reason: str) -> None:
        self.queue.request_full(reason)

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
            frr_start.join()  # the loop's FRR checks start from a finished bootstrap
            threading.Thread(target=self._flow_checker, name="flow-check", daemon=True).start()
            self._loop()
            return 0
        finally:
            self._shutdown()
            lock.release()

    def _start_frr(self) -> None:
        from ovnbgp.frr.manager import FrrManager

        self.frr = FrrManager(self.cfg)
        try:
            result = self.frr.bootstrap()
            self._record_frr(result)
        except Exception as e:  # FRR missing or not startable: keep steering, retry later
            LOG.error("FRR bootstrap failed: %s (will retry)", e)
            self.status.add_error("frr", str(e))

    def _start_ovn(self) -> bool:
        from ovnbgp.ovn.watcher import OvnError, OvnWatcher

        while not self._stop.is_set():
            watcher = OvnWatcher(self.cfg, on_dirty=self._on_dirty, on_resync=self._on_resync)
            try:
                watcher.start(timeout=max(60.0, self.cfg.agent.resync_interval))
            except OvnError as e:
                LOG.error("OVN side not ready: %s; retrying in %.0fs", e, START_RETRY)
                self.status.add_error("ovn", str(e))
                self._write_status()
                self._stop.wait(START_RETRY)
                continue
            self.watcher = watcher
            self.cache = ModelCache(watcher.snapshot(), self.cfg)
            # The first model build makes most long-lived objects; freezing them out of the
            # collector halves later full rebuilds at 10k ports (measured in bench_model).
            gc.freeze()
            LOG.info("initial dump read: %d port bindings", len(self.cache.snapshot().port_bindings))
            return True
        return False

    def _build_reconcilers(self) -> None:
        from ovnbgp.ovs.flows import FlowReconciler
        from ovnbgp.kernel.netlink import KernelReconciler

        self.kernel = KernelReconciler(self.cfg, netns=self.netns)
        self.flows = FlowReconciler(self.cfg, env=ovs_tool_env(self.cfg.ovn.ovs_remote))

    def _shutdown(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()
        if self.kernel is not None:
            self.kernel.close()
        self._write_status()

    # --- the loop ------------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop.is_set():
            batch = self.queue.get(timeout=TICK)
            if self._stop.is_set():
                break
            if self._reload_requested:
                self._reload_requested = False
                if self._reload_config():
                    continue  # a full reconcile ran: it covered this batch's keys too
            if batch is not None and not batch.empty:
                self.reconcile(batch)  # before housekeeping: an event waits for no flow dump
            else:
                self._write_status()
            self._housekeeping()

    def _housekeeping(self) -> None:
        """Cheap checks every turn; each one queues work rather than doing it here."""
        if self.frr is not None:
            try:
                result = self.frr.tick()
            except Exception as e:
                LOG.error("FRR check failed: %s", e)
                result = None
            if result is not None:
                self._record_frr(result)
        changed = self.kernel.link_changes() if self.kernel is not None else set()
        watched = {b.name for b in self._desired.bridges} | {
            self.cfg.kernel.vrf_name, self.cfg.kernel.dummy_name}
        if changed & watched:
            self.queue.mark([("links",)], "link change: " + ", ".join(sorted(changed & watched)))
        now = time.monotonic()
        for db, up in (("sb", self.watcher.sb_connected), ("ovs", self.watcher.ovs_connected)):
            self.metrics.db_connected.labels(db).set(1 if up else 0)
        if self._retry_at is not None and now >= self._retry_at:
            self._retry_at = None
            self.queue.request_full("retry after errors")

    def reconcile(self, batch: Batch) -> DesiredState:
        """Bring the node to the desired state for this batch (full or the dirty keys)."""
        started = time.monotonic()
        cpu_started = time.process_time()
        trigger = "resync" if batch.full else "event"
        self._errors_this_sync = 0
        if not batch.full and self.watcher.events:
            # The named events of this batch run in ovsdbapp's thread; a moment lets them
            # record their names as the causes of the changes logged below.
            self.watcher.events_idle(EVENTS_GRACE)
        with self._causes_lock:
            causes, self._key_causes = self._key_causes, {}
        default_cause = (", ".join(batch.reasons) or "resync") if batch.full else (
            ", ".join(sorted(batch.causes)) or "event")
        previous = self._desired
        try:
            if batch.full:
                self.cache.resync(self.watcher.snapshot())
            else:
                self.cache.update(self.watcher.changes(k for k in batch.keys if isinstance(k, str)))
        except Exception as e:  # a model bug must not kill the agent: the node keeps its state
            LOG.exception("desired state not computed (%s); the node is left as it is", e)
            self._error("model", str(e))
            self._schedule_retry()
            self._write_status()
            return self._desired
        desired = self.cache.state
        self._desired = desired
        self.status.held = sorted(h.reason for h in desired.holds)
        self.metrics.bridge_data_held.set(len(desired.holds))
        changes: Counter = Counter()
        from ovnbgp.ovn.events import LOCAL_OVS_KEY  # loaded with the watcher already

        if batch.full or desired.flows != previous.flows or LOCAL_OVS_KEY in batch.keys:
            # An event that changes no flow skips the ovs-ofctl dump (hundreds of ms); the
            # periodic flow check still finds flows a vswitchd restart wiped.
            self._apply_flows(desired, trigger, changes)
        self._apply_kernel(desired, previous, causes, default_cause, batch, changes)
        if batch.full and self.frr is not None and any(
                r in DRIFT_CHECK_REASONS for r in batch.reasons):
            # After the node's own changes: frr-reload --test takes seconds, exposures should not
            # wait for it.
            drift_started = time.monotonic()
            try:
                self._record_frr(self.frr.check_drift())
            except Exception as e:
                LOG.error("FRR drift check failed: %s", e)
                self._error("frr", str(e))
            LOG.debug("FRR drift check took %.3fs", time.monotonic() - drift_started)
        if self._errors_this_sync:
            if self._retry_at is None:
                self._schedule_retry()
        else:
            self._retry_delay = RETRY_AFTER_ERROR
        duration = time.monotonic() - started
        cpu = time.process_time() - cpu_started
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
        return desired

    def _schedule_retry(self) -> None:
        """A full reconcile after a delay that doubles while failures go on (5 s .. 2 min):
        a transient error heals fast, a lasting one (a bridge left down) does not spin."""
        self._retry_at = time.monotonic() + self._retry_delay
        self._retry_delay = min(self._retry_delay * 2, RETRY_MAX)

    def _error(self, target: str, message: str) -> None:
        self.metrics.apply_errors.labels(target).inc()
        self.status.add_error(target, message)
        self._errors_this_sync += 1

    def _apply_kernel(self, desired: DesiredState, previous: DesiredState,
                      causes: dict[Hashable, str], default_cause: str, batch: Batch,
                      changes: Counter) -> None:
        try:
            plan, result = self.kernel.reconcile(desired, refresh=batch.full)
        except Exception as e:  # netlink dump failed, invalid input: nothing was changed
            LOG.error("kernel reconcile failed: %s", e)
            self._error("kernel", str(e))
            return
        # Exposures by prefix, for the log lines of dummy changes: first among the ones that
        # changed (a set difference, cheap while the model reuses its records), the whole
        # state only for an address that is fixed without a change in the desired state.
        lookups: dict[tuple[bool, bool], dict] = {}

        def exposure(prefix, added: bool):
            this, other = (desired, previous) if added else (previous, desired)
            for whole in (False, True):
                if (added, whole) not in lookups:
                    exps = this.exposures if whole else this.exposures - other.exposures
                    lookups[added, whole] = {e.prefix: e for e in exps}
                hit = lookups[added, whole].get(prefix)
                if hit is not None:
                    return hit
            return None

        failed = {id(op) for op, _ in result.failed} | {id(op) for op, _ in result.held}
        for op in plan.ops():
            if id(op) in failed:
                continue
            action = getattr(op, "action", None)
            verb = action.value if action is not None else "set"
            self.metrics.changes.labels("kernel", verb).inc()
            changes[f"kernel_{verb}"] += 1
            role = getattr(op, "role", None)
            if role == "dummy":
                prefix = op.address.network
                exp = exposure(prefix, verb == "add")
                self._log_exposure(verb, prefix, exp, causes, default_cause)
            else:
                LOG.debug("kernel: %s", op.describe())
        for op, why in result.failed:
            LOG.error("kernel: %s failed: %s", op.describe(), why)
            self._error("kernel", f"{op.describe()}: {why}")
        for op, why in result.held:
            LOG.warning("kernel: %s held back: %s", op.describe(), why)
        self.status.waiting = [n.describe() if hasattr(n, "describe") else str(n)
                               for n in plan.notices]

    def _log_exposure(self, verb: str, prefix, exp: Exposure | None,
                      causes: dict[Hashable, str], default_cause: str = "resync") -> None:
        what = "exposed" if verb == "add" else "withdrawn"
        if exp is None:
            LOG.info("%s %s (stale, not in the desired state)", what, prefix,
                     extra={"fields": {"change": what, "prefix": str(prefix)}})
            return
        cause = causes.get(exp.row, default_cause)
        LOG.info("%s %s (%s, port %s, bridge %s, cause %s)", what, prefix, exp.kind.value,
                 exp.port, exp.bridge, cause,
                 extra={"fields": {"change": what, "prefix": str(prefix), "kind": exp.kind.value,
                                   "port": exp.port, "bridge": exp.bridge, "cause": cause}})

    def _flow_checker(self) -> None:
        """Thread: re-install our flows if something (a vswitchd restart) removed them."""
        while not self._stop.wait(FLOW_CHECK_INTERVAL):
            try:
                self._apply_flows(self._desired, "flow check")
            except Exception as e:  # never let the thread die
                LOG.error("flow check failed: %s", e)

    def _apply_flows(self, desired: DesiredState, trigger: str, changes: Counter | None = None) -> None:
        with self._flows_lock:
            self._apply_flows_locked(desired, trigger, changes)

    def _apply_flows_locked(self, desired: DesiredState, trigger: str,
                            changes: Counter | None) -> None:
        local = self.watcher.local_ovs()
        ofports = {port: ofport for b in local.bridges.values()
                   for port, ofport in b.patch_ports.items()}
        try:
            result = self.flows.reconcile(desired, bridges=set(local.bridge_mappings.values()),
                                          ofports=ofports)
        except Exception as e:  # ovs-ofctl missing or vswitchd down: retried on the next check
            LOG.error("flows reconcile failed: %s", e)
            self._error("flows", str(e))
            return
        added = len(getattr(result, "added", ()) or ())
        removed = len(getattr(result, "removed", ()) or ())
        for err in getattr(result, "errors", ()) or ():
            LOG.error("flows: %s", err)
            self._error("flows", str(err))
        if added or removed:
            LOG.info("flows (%s): %d installed, %d removed", trigger, added, removed)
            self.metrics.changes.labels("flows", "add").inc(added)
            self.metrics.changes.labels("flows", "del").inc(removed)
            if changes is not None:
                changes["flows_add"] += added
                changes["flows_del"] += removed

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
            self._record_frr(self.frr.set_config(new))
        self.kernel.close()
        self._build_reconcilers()
        self.cache = ModelCache(self.watcher.snapshot(), new)
        self.reconcile(Batch(full=True, reasons=["SIGHUP"]))
        return True

    # --- reporting -----------------------------------------------------------------------------

    def _record_frr(self, result) -> None:
        if result is None:
            return
        from ovnbgp.frr import reload as frr_reload

        if result.action == frr_reload.RELOADED:
            self.metrics.frr_reloads.labels("ok").inc()
        elif result.action in (frr_reload.REFUSED, frr_reload.FAILED):
            self.metrics.frr_reloads.labels("error").inc()
        if not result.ok:
            self.status.add_error("frr", result.message)
        restarts = getattr(self.frr, "restarts_detected", 0)
        if restarts > self._frr_restarts_counted:
            self.metrics.frr_restarts.inc(restarts - self._frr_restarts_counted)
            self._frr_restarts_counted = restarts

    def _update_counts(self, desired: DesiredState, previous: DesiredState) -> None:
        """Exposures per kind, from the change when the counts are those of `previous`."""
        if self._counted is not None and self._counted[0] is previous.exposures:
            counts = Counter(self._counted[1])
            counts.subtract(e.kind for e in previous.exposures - desired.exposures)
            counts.update(e.kind for e in desired.exposures - previous.exposures)
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
        try:
            status_mod.write(self.cfg.agent.state_dir, self.status)
        except OSError as e:
            LOG.warning("cannot write status to %s: %s", self.cfg.agent.state_dir, e)

"""The FRR side of the agent in one object: bootstrap, apply, restart detection, status.

    frr = FrrManager(cfg)
    frr.bootstrap()            # at start: daemons file, FRR running, config applied
    frr.on_exit = wake         # called (from a thread) when an FRR daemon exits
    frr.tick()                 # when next_tick_in() says, or after on_exit: cheap;
                               # re-applies after an FRR restart
    frr.check_drift()          # on the periodic resync: frr-reload --test, re-apply if drifted
    frr.repair_stale()         # on the periodic resync too: withdraw what FRR left stale
                               # (and from tick(), every few seconds for a while after an
                               # FRR restart, when that happens)
    frr.set_config(new_cfg)    # on SIGHUP: re-render, apply only if the text changed
    frr.status()               # dict for `ovnbgp status` and metrics

Only config changes, FRR restarts and drift reload FRR; exposures never do (they are addresses
on the dummy interface, which FRR picks up by itself). A restart is seen as a change of the pid
or start time of zebra or bgpd (pid files in FRR's run dir).

An idle agent does not poll FRR: while FRR runs with the config applied, a thread waits on a
pidfd per daemon (ExitWatch) and calls on_exit when one ends; next_tick_in() asks for ticks
only while there is something to look at on a clock (FRR down or its config not applied, BFD
held, the stale-route watch after a restart, no pidfd support).
"""

from __future__ import annotations

import logging
import os
import select
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ovnbgp.config import Config
from ovnbgp.frr import bootstrap as boot
from ovnbgp.frr.paths import FrrPaths
from ovnbgp.frr.reload import (
    FAILED,
    REFUSED,
    RELOADED,
    UNAVAILABLE,
    FrrApplier,
    ReloadResult,
    daemon_alive,
    process_start_time,
    read_pid,
)
from ovnbgp.frr.render import RenderError, holds_bfd_until_established, render_boot_config, render_config
from ovnbgp.frr.vtysh import FrrError, FrrReader, Vtysh
from ovnbgp.model.records import DesiredState
from ovnbgp.model.target import TargetResult

log = logging.getLogger(__name__)

WATCHED = ("zebra", "bgpd")
LAST_RESORT_TRIES = 3  # re-originations before the only Established session is reset
REORIGINATED_MEMORY = 120.0  # seconds a re-origination counts as tried for its prefixes
BFD_HOLD_MAX = 60.0  # seconds after an FRR start BFD waits at most for every session to be up
STALE_WATCH = 300.0  # seconds after an FRR restart during which tick() looks for stale routes
TICK = 1.0  # seconds between tick()s while FRR needs watching on a clock (next_tick_in)


@dataclass(frozen=True)
class Fingerprint:
    """(pid, start time) of each watched daemon; None for a daemon that is not running."""

    daemons: tuple[tuple[str, tuple[int, int] | None], ...]

    @property
    def complete(self) -> bool:
        return all(v is not None for _, v in self.daemons)

    def describe(self) -> str:
        return ", ".join(f"{d} pid {v[0]}" if v else f"{d} down" for d, v in self.daemons)


class ExitWatch:
    """A pidfd per process of one complete fingerprint: exited() tells, in one poll and
    without reading a file, whether any of them ended since (every FRR restart begins with
    one). Reading the pid files and /proc/PID/stat every loop turn was most of an idle
    agent's CPU (User-Mode Linux, py-spy). notify(callback) also waits on the pidfds in a
    thread and calls back once when one ends, so nobody needs to ask. open() gives None where
    pidfds are not available (Linux before 5.3): the caller reads the files as before."""

    def __init__(self, fp: Fingerprint, fds: list[int]):
        self.fp = fp
        self._fds = fds
        self._poll = select.poll()
        for fd in fds:
            self._poll.register(fd, select.POLLIN)
        self._waiter: threading.Thread | None = None
        self._wake: tuple[int, int] | None = None  # the pipe that ends the waiter

    @classmethod
    def open(cls, fp: Fingerprint) -> ExitWatch | None:
        if not fp.complete or not hasattr(os, "pidfd_open"):
            return None
        fds: list[int] = []
        try:
            for _d, v in fp.daemons:
                assert v is not None
                fds.append(os.pidfd_open(v[0]))
        except OSError:  # gone already, or no pidfd support
            for fd in fds:
                os.close(fd)
            return None
        watch = cls(fp, fds)
        if fingerprint_matches(fp):
            return watch
        watch.close()  # a pid was reused between the reading and pidfd_open
        return None

    def exited(self) -> bool:
        return bool(self._poll.poll(0))

    def notify(self, callback: Callable[[], None]) -> None:
        """callback() from a thread once any of the processes exits (not after close())."""
        self._wake = os.pipe()
        waiter = select.poll()
        for fd in self._fds + [self._wake[0]]:
            waiter.register(fd, select.POLLIN)
        wake_r = self._wake[0]

        def wait() -> None:
            if all(fd != wake_r for fd, _ev in waiter.poll()):
                callback()

        self._waiter = threading.Thread(target=wait, name="frr-exit-watch", daemon=True)
        self._waiter.start()

    def close(self) -> None:
        if self._wake is not None:  # end the waiter before its fds go
            os.write(self._wake[1], b"x")
            if self._waiter is not None and self._waiter is not threading.current_thread():
                self._waiter.join()
            for fd in self._wake:
                os.close(fd)
            self._wake = self._waiter = None
        for fd in self._fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self._fds = []


def fingerprint_matches(fp: Fingerprint) -> bool:
    """Whether each process of `fp` still runs with its recorded start time."""
    return all(v is not None and process_start_time(v[0]) == v[1] for _d, v in fp.daemons)


def fingerprint(paths: FrrPaths, daemons: tuple[str, ...] = WATCHED) -> Fingerprint:
    out = []
    for d in daemons:
        pid = read_pid(paths, d)
        start = process_start_time(pid) if pid else None
        out.append((d, (pid, start) if pid and start is not None else None))
    return Fingerprint(tuple(out))


@dataclass(frozen=True)
class FrrConfigChange:
    """The one op of the FRR target: FRR's running config brought to ovnbgp's."""

    action: str  # reload.RELOADED, FAILED, ...

    def describe(self) -> str:
        return f"FRR config ({self.action})"


def as_target_result(result: ReloadResult | None) -> TargetResult:
    """A reload (or an attempt) in the agent's one result type: a reload is a change
    (verb "reload"), a result that is not ok (refused, failed, FRR unavailable) a failure."""
    out = TargetResult()
    if result is None:
        return out
    if result.action == RELOADED:
        out.done("reload", FrrConfigChange(result.action))
    if not result.ok:
        out.add_failure(FrrConfigChange(result.action), result.message)
    return out


class FrrManager:
    """The FRR side as a Target (model/target.py): reconcile() is tick() on the event path
    and check_drift() with full=True; bootstrap() and set_config() report the same way."""

    name = "frr"

    def __init__(self, cfg: Config, *, runner: Callable[..., subprocess.CompletedProcess] = subprocess.run,
                 systemd: bool | None = None, clock: Callable[[], float] = time.monotonic):
        self.cfg = cfg
        self.paths = FrrPaths.from_config(cfg.frr)
        self._runner = runner
        self._systemd = systemd
        self.applier = FrrApplier(self.paths, vrf=cfg.kernel.vrf_name, state_dir=cfg.agent.state_dir,
                                  runner=runner)
        self.text: str | None = None  # the rendered config ovnbgp wants FRR to run
        self.boot_text: str | None = None  # what FRR loads at start (BFD held: render_boot_config)
        self._bfd_held_since: float | None = None  # FRR started; BFD not on the peers yet
        self.render_error: str | None = None
        self._applied_fp: Fingerprint | None = None  # FRR processes the config was applied to
        self._down_logged = False
        self.restarts_detected = 0
        self.stale_resets = 0
        self.stale_reoriginations = 0  # repairs that kept the session (withdraw_by_reorigination)
        self.reoriginate_wait = 3.0
        # (peer, family) -> (tries, prefixes, when) of the last re-origination
        self._reoriginated: dict[tuple[str, str], tuple[int, frozenset, float]] = {}
        self.confirm_after = 5.0
        self._stale_seen: dict[tuple[str, str], tuple[float, frozenset]] = {}
        self._clean_counters: tuple | None = None  # summary counters of the last clean check
        self._clock = clock
        self.last_check: float | None = None
        self._stale_watch_until: float | None = None
        self._last_fp: Fingerprint | None = None
        self._exit_watch: ExitWatch | None = None  # on the processes of _last_fp
        self._next_stale_check = 0.0
        self._apply_failed = False  # the last apply did not reach FRR: tick() tries again
        self.on_exit: Callable[[], None] | None = None  # an FRR daemon ended (ExitWatch thread)

    # --- rendering ---

    def _render(self) -> str | None:
        try:
            self.text = render_config(self.cfg)
            self.boot_text = render_boot_config(self.cfg)
            self.render_error = None
        except RenderError as e:
            self.render_error = str(e)
            log.error("FRR config not rendered: %s", e)
        return self.text

    # --- the Target protocol ---

    def reconcile(self, desired: DesiredState | None = None, *, full: bool = False) -> TargetResult:
        """FRR's config does not depend on the desired state (exposures are addresses on the
        dummy, which FRR picks up by itself). full: compare FRR's running config with ours
        (frr-reload --test, seconds); otherwise the cheap restart check of tick()."""
        return as_target_result(self.check_drift() if full else self.tick())

    # --- operations ---

    def bootstrap(self, timeout: float = 60.0) -> ReloadResult:
        """Daemons file, FRR running, config applied. BootstrapError if FRR cannot be started."""
        text = self._render()
        if text is None:
            return self._unrendered()
        boot.ensure_daemons_file(self.paths.daemons_file, boot.needed_daemons(self.cfg))
        if not daemon_alive(self.paths, "zebra") and self.applier.install_for_start(self.boot_text or text):
            log.info("FRR config %s written before starting FRR", self.paths.config_file)
        started = boot.ensure_running(self.paths, boot.needed_daemons(self.cfg), runner=self._runner,
                                      systemd=self._systemd, timeout=timeout)
        if started.action != "running":
            log.info("FRR %s", started.action)
        self._hold_bfd_after_start()
        return self._apply_now(retry_refused=True)

    def next_tick_in(self) -> float | None:
        """Seconds until tick() has something to look at on its own; None: nothing until a
        daemon exits (on_exit is called then). A clock is needed while FRR is down or its
        config not applied (the pid files are read until it is back), while BFD is held,
        during the stale-route watch, and without an exit watch (no pidfds, or no on_exit)."""
        watch = self._exit_watch
        if (watch is None or self.on_exit is None or self._apply_failed
                or self._last_fp != self._applied_fp or self._bfd_held_since is not None):
            return TICK
        if self._stale_watch_until is not None:
            return max(0.0, min(self._next_stale_check, self._stale_watch_until) - self._clock())
        return None

    def tick(self) -> ReloadResult | None:
        """Cheap check (pid files): re-apply when FRR restarted. None when nothing was done."""
        fp = self._fingerprint()
        if not fp.complete:
            if not self._down_logged:
                log.warning("FRR is down (%s); will re-apply the config when it is back", fp.describe())
                self._down_logged = True
            return None
        self._down_logged = False
        if fp == self._applied_fp and not self._apply_failed:
            if self._bfd_held_since is not None and self._release_bfd():
                return self._apply_now()
            self.stale_watch_tick()
            return None
        if self._applied_fp is not None:
            self.restarts_detected += 1
            log.warning("FRR restarted (%s, was %s): re-applying the config", fp.describe(),
                        self._applied_fp.describe())
            self.applier.forget_refused()
            self.arm_stale_watch()
            self._hold_bfd_after_start()
        return self._apply_now()

    # --- BFD held after an FRR start (render.holds_bfd_until_established) ---

    def _hold_bfd_after_start(self) -> None:
        """FRR (re)started: keep BFD off the peers until their sessions are up, unless FRR
        runs it already (never taken off a running session: the leaf would see BFD go down)."""
        self._bfd_held_since = None
        if not holds_bfd_until_established(self.cfg):
            return
        try:
            running = Vtysh(self.paths, runner=self._runner).run("show running-config")
        except FrrError as e:
            log.warning("FRR running config not read (%s): BFD goes on the peers at once", e)
            return
        if f" neighbor {self.cfg.bgp.peer_group} bfd" in running.splitlines():
            return
        self._bfd_held_since = self._clock()
        log.info("FRR started: BFD goes on the peers once every session is Established "
                 "(at most %.0f s; docs/graceful-restart.md)", BFD_HOLD_MAX)

    def _release_bfd(self) -> bool:
        """True (and BFD no longer held) once every peer is Established, or BFD_HOLD_MAX after
        FRR started; the caller applies the full config then."""
        assert self._bfd_held_since is not None
        waited = self._clock() - self._bfd_held_since
        down: list[str] = []
        if waited < BFD_HOLD_MAX:
            try:
                peers = FrrReader(Vtysh(self.paths, runner=self._runner)).summary().peers
            except FrrError:
                return False
            down = [n for n, p in peers.items() if not p.established] or ([] if peers else ["(none yet)"])
            if down:
                return False
        self._bfd_held_since = None
        log.info("BFD on the peers now (%.1f s after FRR started%s)", waited,
                 "" if not down else f"; not Established: {', '.join(down)}")
        return True

    def arm_stale_watch(self) -> None:
        """Look for stale advertisements (repair_stale) every `confirm_after` seconds for the
        next STALE_WATCH seconds: the window after a restart where FRR 8.4 was seen to lose
        withdraws, so a black hole lasts seconds rather than until the periodic resync."""
        now = self._clock()
        self._clean_counters = None  # the next check reads the tables
        self._stale_watch_until = now + STALE_WATCH
        self._next_stale_check = now + self.confirm_after

    def stale_watch_tick(self, reader: FrrReader | None = None) -> list[str]:
        """repair_stale() when the watch is armed and a check is due; the peers reset."""
        if self._stale_watch_until is None:
            return []
        now = self._clock()
        if now >= self._stale_watch_until:
            self._stale_watch_until = None
            return []
        if now < self._next_stale_check:
            return []
        self._next_stale_check = now + self.confirm_after
        try:
            return self.repair_stale(reader)
        except FrrError as e:
            log.debug("FRR stale advertisement check failed: %s", e)
            return []

    def check_drift(self) -> ReloadResult | None:
        """Compare FRR's running config with ours (frr-reload --test); reload only if it differs.
        Then look for stale Adj-RIB-Out entries (repair_stale)."""
        if self.text is None and self._render() is None:
            return self._unrendered()
        fp = self._fingerprint()
        if not fp.complete:
            return None
        result = self._apply_now()
        try:
            self.repair_stale()
        except FrrError as e:
            log.warning("FRR stale advertisement check failed: %s", e)
        return result

    def repair_stale(self, reader: FrrReader | None = None) -> list[str]:
        """Withdraw what a session's Adj-RIB-Out holds and FRR's own default table no longer has.

        Seen with FRR 8.4 (User-Mode Linux tests): after bgpd restarts and the config is
        re-applied while exposures exist, removing an address from the dummy sometimes removes
        the leaked route from the default table without sending the withdraw to a peer, so the
        leaf keeps a stale route (a black hole). `clear bgp ... soft out` does not help (it
        walks the table, where the prefix is gone). Such a prefix is provably stale (FRR itself
        does not have it); once it is seen twice at least `confirm_after` seconds apart, it is
        repaired without touching the session (withdraw_by_reorigination). Only if it is still
        there at a later confirmed check is that session hard-reset, one per check, and only
        while another peer is Established to carry the traffic (or, with no other peer, after
        LAST_RESORT_TRIES re-originations failed). Returns the peers repaired. Reader errors
        propagate (FrrError).

        Count-first: the summary (one small read) comes first; when its counters (ribCount
        per family, pfxSnt per Established peer and family) are those of the last check that
        found nothing stale, the tables (megabytes at 10k) are not read. A lost withdraw
        lowers ribCount while pfxSnt stays, so it changes the counters.
        """
        reader = reader or FrrReader(Vtysh(self.paths, runner=self._runner))
        summary = reader.summary()
        counters = summary.counters()
        if not self._stale_seen and counters == self._clean_counters:
            return []  # count-first: nothing moved since a full read found nothing stale
        now = self._clock()
        found: dict[tuple[str, str], frozenset] = {}
        tables = {}
        for name, peer in summary.peers.items():
            if not peer.established:
                continue
            for fam in peer.families:
                if fam not in tables:
                    tables[fam] = set(reader.rib(fam, "default").routes)
                stale = reader.advertised(name, fam).prefixes - tables[fam]
                if stale:
                    found[(name, fam)] = frozenset(stale)
        confirmed = {}
        for key, stale in found.items():
            seen = self._stale_seen.get(key)
            if seen and seen[1] & stale and now - seen[0] >= self.confirm_after:
                confirmed[key] = seen[1] & stale
        established = {n for n, p in summary.peers.items() if p.established}
        # A re-origination counts as tried for the same prefixes, and for a while only.
        self._reoriginated = {k: v for k, v in self._reoriginated.items()
                              if k in found and now - v[2] < REORIGINATED_MEMORY}
        repaired = self._repair(confirmed, established, reader, now)
        self._stale_seen = {k: (self._stale_seen[k][0] if k in self._stale_seen else now, v)
                            for k, v in found.items() if k[0] not in repaired}
        self._clean_counters = (counters if not found and all(n is not None for _f, n in counters[0])
                                else None)
        return repaired

    def _tries(self, key: tuple[str, str], stale: frozenset) -> int:
        """Re-originations already tried for these stale prefixes of that session."""
        tries, prefixes, _when = self._reoriginated.get(key, (0, frozenset(), 0.0))
        return tries if prefixes & stale else 0

    def _repair(self, confirmed: dict[tuple[str, str], frozenset], established: set[str],
                reader: FrrReader, now: float) -> list[str]:
        """Re-originate and withdraw confirmed stale prefixes; hard-reset (at most one
        session) where that was already tried and did not work."""
        first = {k: v for k, v in confirmed.items() if self._tries(k, v) < 1}
        again = {k: v for k, v in confirmed.items() if k not in first}
        repaired: list[str] = []
        for fam in sorted({f for _n, f in first}):
            keys = {k: v for k, v in first.items() if k[1] == fam}
            prefixes = frozenset().union(*keys.values())
            for name, _f in keys:
                log.error("FRR advertises to %s (%s) %s, which its own table no longer has (stale "
                          "Adj-RIB-Out): re-originating and withdrawing (the session is kept)",
                          name, fam, ", ".join(str(p) for p in sorted(keys[(name, fam)])[:10]))
            self.withdraw_by_reorigination(fam, prefixes, [n for n, _f in keys], reader)
            for key, stale in keys.items():
                self._reoriginated[key] = (1, stale, now)
                repaired.append(key[0])
            self.stale_reoriginations += 1
        reset_done = False
        for (name, fam), stale in sorted(again.items()):
            others = established - {name}
            tries = self._tries((name, fam), stale)
            shown = ", ".join(str(p) for p in sorted(stale)[:10])
            if reset_done or (not others and tries < LAST_RESORT_TRIES):
                # One hard reset per check, and never of the only session while re-originating
                # may still work: that would withdraw everything this node exposes.
                log.error("FRR still advertises to %s (%s) %s after re-originating it; %s: "
                          "re-originating again", name, fam, shown,
                          "one session was reset already" if reset_done else "no other peer is Established")
                self.withdraw_by_reorigination(fam, stale, [name], reader)
                self._reoriginated[(name, fam)] = (tries + 1, stale, now)
                repaired.append(name)
                continue
            log.error("FRR still advertises to %s (%s) %s after re-originating it: resetting that "
                      "session (%s)", name, fam, shown,
                      f"Established: {', '.join(sorted(others))}" if others else "the last resort: no other peer")
            Vtysh(self.paths, runner=self._runner).run(f"clear bgp {fam} unicast {name}")
            self.stale_resets += 1
            reset_done = True
            repaired.append(name)
        return list(dict.fromkeys(repaired))

    def withdraw_by_reorigination(self, fam: str, prefixes: frozenset, peers: list[str],
                                  reader: FrrReader) -> None:
        """Make FRR send the withdraw it lost, keeping the session: a `network` statement for
        each prefix in the default instance puts the prefix back in the table; the outbound
        route-map denies it (it is not from the ovnbgp VRF), so FRR's update-group withdraws
        it from every Adj-RIB-Out that still holds it. The statements are removed once the
        peers no longer advertise the prefixes (or after `reoriginate_wait` seconds)."""
        # A prefix exposed again meanwhile is in the table: a `network` path could win over
        # the leaked one and withdraw a live exposure for as long as it stays.
        prefixes = prefixes - set(reader.rib(fam, "default").routes)
        if not prefixes:
            return
        vty = Vtysh(self.paths, runner=self._runner)
        ctx = ("configure terminal", f"router bgp {self.cfg.bgp.asn}", f"address-family {fam} unicast")
        nets = sorted(prefixes, key=str)
        vty.run(*ctx, *(f"network {p}" for p in nets))
        try:
            for _ in range(int(self.reoriginate_wait / 0.2)):
                if not any(reader.advertised(n, fam).prefixes & prefixes for n in peers):
                    break
                time.sleep(0.2)
        finally:
            vty.run(*ctx, *(f"no network {p}" for p in nets))

    def set_config(self, cfg: Config) -> ReloadResult | None:
        """A new agent config (SIGHUP): apply if the rendered FRR config changed."""
        old = self.text
        self.cfg = cfg
        self.applier.vrf = cfg.kernel.vrf_name
        new_paths = FrrPaths.from_config(cfg.frr)
        if new_paths != self.paths:
            self.paths = new_paths
            self.applier.paths = new_paths
            self._applied_fp = None
            self._forget_fingerprint()
        text = self._render()
        if text is None:
            return self._unrendered()
        if text == old and self._applied_fp is not None:
            return None
        return self._apply_now(retry_refused=True)

    def _apply_now(self, retry_refused: bool = False) -> ReloadResult:
        assert self.text is not None
        fp = self._fingerprint()
        held = self._bfd_held_since is not None and self.boot_text is not None
        result = self.applier.apply(self.boot_text if held else self.text,  # type: ignore[arg-type]
                                    boot_text=self.boot_text, retry_refused=retry_refused)
        self.last_check = time.time()
        self._apply_failed = result.action in (UNAVAILABLE, FAILED)
        if not self._apply_failed:
            # Applied, unchanged, or refused: FRR as it runs now has been dealt with.
            self._applied_fp = fp
        return result

    def _fingerprint(self) -> Fingerprint:
        """The daemons' pids and start times: the last reading while none of its processes
        exited (ExitWatch), else the pid files and /proc read again; status() reports it."""
        watch = self._exit_watch
        if watch is not None and watch.fp == self._last_fp and not watch.exited():
            return watch.fp
        self._forget_fingerprint()
        self._last_fp = fp = fingerprint(self.paths)
        self._exit_watch = watch = ExitWatch.open(fp)
        if watch is not None and self.on_exit is not None:
            watch.notify(self.on_exit)
        return fp

    def _forget_fingerprint(self) -> None:
        if self._exit_watch is not None:
            self._exit_watch.close()
            self._exit_watch = None

    def _unrendered(self) -> ReloadResult:
        return ReloadResult(time=time.time(), ok=False, action=REFUSED,
                            message=f"FRR config not rendered: {self.render_error}")

    # --- reporting ---

    def status(self) -> dict:
        r = self.applier.last_result
        fp = self._last_fp if self._last_fp is not None else self._fingerprint()
        return {
            "running": fp.complete,
            "daemons": {d: (v[0] if v else None) for d, v in fp.daemons},
            "last_reload": r.to_dict() if r else None,
            "last_good_config": self.applier.last_good is not None,
            "render_error": self.render_error,
            "reloads": self.applier.reloads,
            "errors": self.applier.errors,
            "restarts_detected": self.restarts_detected,
            "stale_resets": self.stale_resets,
            "stale_reoriginations": self.stale_reoriginations,
        }

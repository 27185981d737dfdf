"""FrrManager.repair_stale over FRR state captured from FRR 8.4; vtysh replaced by a recorder."""

from __future__ import annotations

import subprocess

from ovnbgp import config
from ovnbgp.frr.manager import FrrManager, fingerprint
from ovnbgp.frr.paths import FrrPaths
from tests.unit.frr_fixtures import PEER_N, PEER_U, FixtureReader


class Recorder:
    def __init__(self):
        self.calls: list[list[str]] = []

    def __call__(self, argv, **kw):
        self.calls.append(list(argv))
        return subprocess.CompletedProcess(argv, 0, stdout="", stderr="")


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def manager(tmp_path):
    cfg = config.loads(f'[frr]\nvty_socket = "{tmp_path}"\n[agent]\nstate_dir = "{tmp_path / "s"}"\n')
    rec, clock = Recorder(), Clock()
    mgr = FrrManager(cfg, runner=rec, clock=clock)
    mgr.reoriginate_wait = 0  # the fixtures never change: do not wait for the withdraw
    return mgr, rec, clock


def configured(rec: Recorder) -> list[str]:
    """The config lines sent through vtysh (after its `configure terminal` ... context)."""
    return [c for argv in rec.calls for c in argv[argv.index("-c") + 1::2]
            if c.startswith(("network", "no network", "clear"))]


def test_consistent_state_resets_nothing(tmp_path):
    mgr, rec, clock = manager(tmp_path)
    for _ in range(3):
        assert mgr.repair_stale(FixtureReader()) == []
        clock.t += 60
    assert rec.calls == [] and mgr.stale_resets == 0


def test_stale_adj_out_confirmed_then_reoriginated_keeping_the_sessions(tmp_path):
    mgr, rec, clock = manager(tmp_path)
    # The default IPv4 table lost the leaked routes but both sessions still advertise them.
    stale = FixtureReader(**{"default-ipv4": "vrf-ipv4-no-bgp.json"})
    assert mgr.repair_stale(stale) == []  # seen once: could be an update in flight
    clock.t += 2
    assert mgr.repair_stale(stale) == []  # not yet confirm_after seconds
    clock.t += 5
    assert sorted(mgr.repair_stale(stale)) == sorted([PEER_U, PEER_N])
    # One `network` per stale prefix in the default instance, then removed again; no reset.
    argv = rec.calls[0]
    assert argv[argv.index("-c") + 1::2][:3] == ["configure terminal", "router bgp 64999",
                                                 "address-family ipv4 unicast"]
    lines = configured(rec)
    assert lines and not any(c.startswith("clear") for c in lines)
    added = [c.split()[1] for c in lines if c.startswith("network")]
    assert added and sorted(c.split()[2] for c in lines if c.startswith("no network")) == sorted(added)
    assert mgr.stale_resets == 0 and mgr.status()["stale_reoriginations"] == 1


def test_still_stale_after_reorigination_resets_one_session_while_the_other_carries(tmp_path):
    mgr, rec, clock = manager(tmp_path)
    stale = FixtureReader(**{"default-ipv4": "vrf-ipv4-no-bgp.json"})
    mgr.repair_stale(stale)
    clock.t += 10
    assert sorted(mgr.repair_stale(stale)) == sorted([PEER_U, PEER_N])  # re-originated
    rec.calls.clear()
    mgr.repair_stale(stale)  # still there: seen again, confirmation starts over
    clock.t += 10
    assert sorted(mgr.repair_stale(stale)) == sorted([PEER_U, PEER_N])
    resets = [c for c in configured(rec) if c.startswith("clear")]
    # One session only; the other is re-originated again (it carries the traffic meanwhile).
    assert resets == [f"clear bgp ipv4 unicast {sorted([PEER_U, PEER_N])[0]}"]
    assert mgr.stale_resets == 1 and mgr.status()["stale_resets"] == 1

def test_transient_difference_is_forgotten(tmp_path):
    mgr, rec, clock = manager(tmp_path)
    assert mgr.repair_stale(FixtureReader(**{"default-ipv4": "vrf-ipv4-no-bgp.json"})) == []
    clock.t += 10
    assert mgr.repair_stale(FixtureReader()) == []  # the withdraw went out meanwhile
    clock.t += 10
    assert mgr.repair_stale(FixtureReader(**{"default-ipv4": "vrf-ipv4-no-bgp.json"})) == []
    assert rec.calls == []


def test_down_peers_are_not_touched(tmp_path):
    mgr, rec, clock = manager(tmp_path)
    r = FixtureReader(summary="summary-peer-down.json", **{"default-ipv4": "vrf-ipv4-no-bgp.json"})
    mgr.repair_stale(r)
    clock.t += 10
    assert mgr.repair_stale(r) == [PEER_U]


def test_the_only_established_session_is_reset_only_as_a_last_resort(tmp_path):
    """With no other peer to carry the traffic, a reset withdraws everything the node exposes:
    re-originating is tried LAST_RESORT_TRIES times first."""
    from ovnbgp.frr.manager import LAST_RESORT_TRIES

    mgr, rec, clock = manager(tmp_path)
    r = FixtureReader(summary="summary-peer-down.json", **{"default-ipv4": "vrf-ipv4-no-bgp.json"})
    for _ in range(LAST_RESORT_TRIES):
        mgr.repair_stale(r)
        clock.t += 10
        assert mgr.repair_stale(r) == [PEER_U]
        clock.t += 10
        assert not any(c.startswith("clear") for c in configured(rec))
    mgr.repair_stale(r)
    clock.t += 10
    assert mgr.repair_stale(r) == [PEER_U]
    assert [c for c in configured(rec) if c.startswith("clear")] == [f"clear bgp ipv4 unicast {PEER_U}"]

def test_fingerprint_of_a_dir_without_frr(tmp_path):
    fp = fingerprint(FrrPaths.from_config(config.loads(f'[frr]\nvty_socket = "{tmp_path}"\n').frr))
    assert not fp.complete and fp.describe() == "zebra down, bgpd down"


def test_stale_watch_after_a_restart_checks_every_few_seconds_then_stops(tmp_path):
    from ovnbgp.frr.manager import STALE_WATCH

    mgr, rec, clock = manager(tmp_path)
    stale = FixtureReader(**{"default-ipv4": "vrf-ipv4-no-bgp.json"})
    assert mgr.stale_watch_tick(stale) == []  # not armed: nothing is read
    mgr.arm_stale_watch()
    assert mgr.stale_watch_tick(stale) == []  # first check is confirm_after away
    clock.t += mgr.confirm_after
    assert mgr.stale_watch_tick(stale) == []  # seen once
    clock.t += 1
    assert mgr.stale_watch_tick(stale) == []  # not due yet
    clock.t += mgr.confirm_after
    assert sorted(mgr.stale_watch_tick(stale)) == sorted([PEER_U, PEER_N])  # confirmed: repaired
    assert any(c.startswith("network") for c in configured(rec))
    clock.t += STALE_WATCH
    calls = len(rec.calls)
    assert mgr.stale_watch_tick(stale) == []  # the window is over
    clock.t += mgr.confirm_after
    assert mgr.stale_watch_tick(stale) == [] and len(rec.calls) == calls


def test_failed_apply_is_a_failed_target_result_and_tried_again(tmp_path):
    """vtysh missing: reconcile() reports the failure in the one result type, and the next
    call tries again (the agent's backoff decides when that call comes)."""
    import os

    from ovnbgp.frr.reload import FAILED, UNAVAILABLE

    for daemon in ("zebra", "bgpd"):  # FRR "running": this process stands in for it
        (tmp_path / f"{daemon}.pid").write_text(f"{os.getpid()}\n")
    calls = []

    def missing_vtysh(argv, **kw):
        calls.append(argv)
        raise FileNotFoundError(2, "No such file or directory", argv[0])

    cfg = config.loads(f'[frr]\nvty_socket = "{tmp_path}"\nvtysh = "{tmp_path}/no-vtysh"\n'
                       f'[agent]\nstate_dir = "{tmp_path / "s"}"\n')
    mgr = FrrManager(cfg, runner=missing_vtysh, clock=Clock())
    mgr.text = "frr defaults traditional\n"
    first = mgr.reconcile()
    assert not first.ok and first.failed and not first.changed
    assert first.failed[0].op.action in (FAILED, UNAVAILABLE)
    tried = len(calls)
    second = mgr.reconcile()
    assert not second.ok and len(calls) > tried  # tried again, not taken as applied


def _applier(tmp_path, returncode: int):
    from ovnbgp.frr.reload import FrrApplier

    cfg = config.loads(f'[frr]\nvty_socket = "{tmp_path}"\nconfig_file = "{tmp_path}/frr.conf"\n')
    calls = []

    def vtysh(argv, **kw):
        calls.append(list(argv))
        return subprocess.CompletedProcess(argv, returncode, stdout="", stderr="line 3: % Unknown")

    return FrrApplier(FrrPaths.from_config(cfg.frr), runner=vtysh), calls


def test_config_installed_before_frr_starts(tmp_path):
    """FRR about to be started by ovnbgp: it comes up with the rendered config (no reload
    later); the operator's own file is kept once, as with a reload."""
    (tmp_path / "frr.conf").write_text("hostname operator\n")
    applier, calls = _applier(tmp_path, 0)
    assert applier.install_for_start("! Generated by ovnbgp\nrouter bgp 64999\n")
    assert (tmp_path / "frr.conf").read_text() == "! Generated by ovnbgp\nrouter bgp 64999\n"
    assert (tmp_path / "frr.conf.ovnbgp-orig").read_text() == "hostname operator\n"
    assert calls and "-C" in calls[0]


def test_refused_config_not_installed_before_start(tmp_path):
    (tmp_path / "frr.conf").write_text("hostname operator\n")
    applier, _ = _applier(tmp_path, 2)
    assert not applier.install_for_start("! Generated by ovnbgp\nrouter bgp banana\n")
    assert (tmp_path / "frr.conf").read_text() == "hostname operator\n"


def test_count_first_tables_read_only_when_counters_move(tmp_path):
    """repair_stale reads the full tables once; while the summary counters stay those of
    that clean check, it reads the summary alone."""
    import dataclasses

    mgr, _rec, clock = manager(tmp_path)
    reads = []

    class Counting(FixtureReader):
        def rib(self, family, vrf="default"):
            reads.append(("rib", family))
            return super().rib(family, vrf)

    reader = Counting()
    assert mgr.repair_stale(reader) == []
    first = len(reads)
    assert first > 0
    clock.t += 60
    assert mgr.repair_stale(reader) == [] and len(reads) == first  # counters unchanged

    class Moved(Counting):
        def summary(self):
            s = super().summary()
            return dataclasses.replace(s, rib_counts={f: (n or 0) - 1 for f, n in s.rib_counts.items()})

    assert mgr.repair_stale(Moved()) == [] and len(reads) > first


def test_a_reorigination_counts_as_tried_for_its_prefixes_and_for_a_while_only(tmp_path):
    """A stale case long after an earlier one (another bgpd restart) is re-originated first,
    not taken for a failed re-origination (found in the vm tier: a needless reset)."""
    from ovnbgp.frr.manager import REORIGINATED_MEMORY

    mgr, rec, clock = manager(tmp_path)
    stale = FixtureReader(**{"default-ipv4": "vrf-ipv4-no-bgp.json"})
    mgr.repair_stale(stale)
    clock.t += 10
    mgr.repair_stale(stale)  # re-originated
    clock.t += REORIGINATED_MEMORY
    mgr.repair_stale(stale)
    clock.t += 10
    assert sorted(mgr.repair_stale(stale)) == sorted([PEER_U, PEER_N])
    assert not any(c.startswith("clear") for c in configured(rec)) and mgr.stale_reoriginations == 2


def test_fingerprint_read_once_while_the_daemons_run_and_again_after_one_exits(tmp_path):
    """The pid files and /proc are read again only after a watched process exited (pidfd):
    an idle loop turn reads no file; a restart (new pid) is still seen at the next tick."""
    import sys

    mgr, _rec, _clock = manager(tmp_path)
    procs = {d: subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
             for d in ("zebra", "bgpd")}
    try:
        for d, p in procs.items():
            (tmp_path / f"{d}.pid").write_text(f"{p.pid}\n")
        first = mgr._fingerprint()
        assert first.complete and mgr._exit_watch is not None
        (tmp_path / "bgpd.pid").write_text("999999999\n")  # not read while nothing exited
        assert mgr._fingerprint() is first
        procs["bgpd"].kill()
        procs["bgpd"].wait()
        procs["bgpd"] = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        (tmp_path / "bgpd.pid").write_text(f"{procs['bgpd'].pid}\n")
        again = mgr._fingerprint()
        assert again != first and again.complete
        assert dict(again.daemons)["bgpd"][0] == procs["bgpd"].pid
        assert dict(again.daemons)["zebra"] == dict(first.daemons)["zebra"]
    finally:
        for p in procs.values():
            p.kill()
            p.wait()
    assert not mgr._fingerprint().complete  # both gone: read again, and no watch on a partial one
    assert mgr._exit_watch is None


def _scripted_applier(tmp_path, first_test_output: str):
    """An applier whose FRR answers --test with `first_test_output` once, then with nothing
    left (FRR took the config); every command is recorded."""
    from ovnbgp.frr.reload import FrrApplier

    cfg = config.loads(f'[frr]\nvty_socket = "{tmp_path}"\nconfig_file = "{tmp_path}/frr.conf"\n')
    calls: list[list[str]] = []
    tests = [first_test_output]

    def frr(argv, **kw):
        calls.append(list(argv))
        out = (tests.pop(0) if tests else "") if "--test" in argv else ""
        return subprocess.CompletedProcess(argv, 0, stdout=out, stderr="")

    for daemon in ("zebra", "bgpd"):
        (tmp_path / f"{daemon}.pid").write_text(f"{__import__('os').getpid()}\n")
    return FrrApplier(FrrPaths.from_config(cfg.frr), runner=frr), calls


ADDS = "Lines To Add\n============\nrouter bgp 64999\n bgp router-id 192.0.2.1\n"
DELETES = "Lines To Delete\n===============\nrouter bgp 64999\n bgp router-id 192.0.2.9\n"


def test_only_adds_are_loaded_with_vtysh_f_without_frr_reload(tmp_path):
    """Nothing to delete (the first apply into an FRR without ovnbgp's config): `vtysh -f`
    of the installed file, checked with --test afterwards; with a delete: frr-reload.py."""
    from ovnbgp.frr.reload import RELOADED

    applier, calls = _scripted_applier(tmp_path, ADDS)
    r = applier.apply("router bgp 64999\n bgp router-id 192.0.2.1\n")
    assert r.ok and r.action == RELOADED, r
    assert not any("--reload" in c for c in calls)
    loads = [c for c in calls if "-f" in c and "-C" not in c]
    assert len(loads) == 1 and loads[0][-1] == str(tmp_path / "frr.conf")
    assert sum("--test" in c for c in calls) == 2  # the deltas before, the check after
    # Only the checks after the change is in FRR run niced (nothing waits for them); the
    # dry run, the deltas before and the load itself run at the agent's priority.
    niced = [c for c in calls if c[:3] == ["nice", "-n", "10"]]
    assert [c[-2] for c in niced if "--test" in c] == ["--test"]
    assert any(c[-2:] == ["-c", "show running-config"] for c in niced)
    assert all(c[0] != "nice" for c in calls if "-C" in c or c[-2:] == ["-f", str(tmp_path / "frr.conf")])
    first_test = next(c for c in calls if "--test" in c)
    assert first_test[0] != "nice"

    applier, calls = _scripted_applier(tmp_path, ADDS + DELETES)
    r = applier.apply("router bgp 64999\n bgp router-id 192.0.2.2\n")
    assert r.ok and r.action == RELOADED, r
    assert [c for c in calls if "--reload" in c] and not [c for c in calls if "-f" in c and "-C" not in c]


class _Peers:
    def __init__(self, states):
        self.peers = {n: type("P", (), {"established": s == "Established"})() for n, s in states.items()}


def test_bfd_held_after_an_frr_start_until_every_session_is_up(tmp_path, monkeypatch):
    """FRR started without BFD on the peers (its file is the boot config): BFD goes on once
    every session is Established, or BFD_HOLD_MAX after the start; never taken off FRR
    running it (the leaf would see BFD go down and reset the session)."""
    from ovnbgp.frr import manager as manager_mod

    states = {"10.0.0.1": "Active", "10.0.0.3": "Established"}
    monkeypatch.setattr(manager_mod, "FrrReader", lambda vty: type("R", (), {
        "summary": lambda self: _Peers(states)})())
    running = {"text": "router bgp 64999\n neighbor ovnbgp-leaves peer-group\n"}

    def vtysh(argv, **kw):
        return subprocess.CompletedProcess(argv, 0, stdout=running["text"], stderr="")

    cfg = config.loads(f'[frr]\nvty_socket = "{tmp_path}"\n[agent]\nstate_dir = "{tmp_path / "s"}"\n'
                       '[bgp]\nbfd = true\ngraceful_restart = true\n')
    clock = Clock()
    mgr = FrrManager(cfg, runner=vtysh, clock=clock)
    mgr._hold_bfd_after_start()
    assert mgr._bfd_held_since == clock.t
    assert not mgr._release_bfd()  # one session is not up yet
    states["10.0.0.1"] = "Established"
    assert mgr._release_bfd() and mgr._bfd_held_since is None

    mgr._hold_bfd_after_start()
    states["10.0.0.1"] = "Connect"
    clock.t += manager_mod.BFD_HOLD_MAX
    assert mgr._release_bfd()  # not for ever: the sessions that are up get BFD

    running["text"] += " neighbor ovnbgp-leaves bfd\n"  # FRR runs BFD already: not held
    mgr._hold_bfd_after_start()
    assert mgr._bfd_held_since is None
    no_gr = config.loads(f'[frr]\nvty_socket = "{tmp_path}"\n[bgp]\nbfd = true\n')
    mgr = FrrManager(no_gr, runner=vtysh, clock=clock)
    mgr._hold_bfd_after_start()
    assert mgr._bfd_held_since is None


def test_config_file_gets_the_boot_text_after_an_apply(tmp_path):
    """FRR runs `text`; the file it loads at its next start holds `boot_text`."""
    applier, calls = _applier(tmp_path, 0)
    applier.deltas = lambda path: []  # FRR already runs it
    applier.bgpd_running = lambda: True
    r = applier.apply("! Generated by ovnbgp\nfull\n", boot_text="! Generated by ovnbgp\nboot\n")
    assert r.ok
    assert (tmp_path / "frr.conf").read_text() == "! Generated by ovnbgp\nboot\n"


def test_an_idle_frr_is_not_polled_and_an_exit_calls_back(tmp_path):
    """While FRR runs with the config applied, next_tick_in() asks for no tick: a thread waits
    on the daemons' pidfds and calls on_exit once when one of them ends. Until the config is
    back on a running FRR, ticks are asked for again (the pid files are read on a clock)."""
    import sys
    import threading

    from ovnbgp.frr.manager import TICK

    mgr, _rec, clock = manager(tmp_path)
    mgr.text = mgr.boot_text = "frr defaults traditional\n"
    exited = threading.Event()
    mgr.on_exit = exited.set
    procs = {d: subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
             for d in ("zebra", "bgpd")}
    try:
        for d, p in procs.items():
            (tmp_path / f"{d}.pid").write_text(f"{p.pid}\n")
        assert mgr.next_tick_in() == TICK  # nothing applied yet
        assert mgr.tick() is not None  # applied (the recorder's vtysh says yes to all)
        assert mgr.next_tick_in() is None
        mgr.arm_stale_watch()  # after a restart: a look every confirm_after seconds
        assert mgr.next_tick_in() == mgr.confirm_after
        clock.t += mgr.confirm_after + 1
        assert mgr.next_tick_in() == 0.0
        mgr._stale_watch_until = None
        assert not exited.wait(0.3)
        procs["bgpd"].kill()
        assert exited.wait(5), "on_exit not called when bgpd ended"
        assert mgr.tick() is None  # bgpd down: nothing to apply to ...
        assert mgr.next_tick_in() == TICK  # ... so its pid file is read on a clock
    finally:
        for p in procs.values():
            p.kill()
            p.wait()


def test_an_exit_watch_closed_before_an_exit_calls_nobody(tmp_path):
    import os
    import sys
    import threading

    from ovnbgp.frr.manager import ExitWatch, Fingerprint

    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        watch = ExitWatch(Fingerprint((("zebra", (p.pid, 0)),)), [os.pidfd_open(p.pid)])
        called = threading.Event()
        watch.notify(called.set)
        waiter = watch._waiter
        watch.close()
        assert waiter is not None and not waiter.is_alive()
        p.kill()
        p.wait()
        assert not called.wait(0.3)
    finally:
        p.kill()
        p.wait()

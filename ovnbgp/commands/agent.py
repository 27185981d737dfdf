"""The operations commands behind the CLI: run, status, plan, cleanup.

Exit codes: 0 ok; 1 "not ok" (status: agent not running or a DB not connected; plan: changes
are pending; cleanup: aborted, refused or a step failed); 3 the state could not be read (plan:
OVN or a target unreadable); 4 another agent holds the lock (run).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import time
from pathlib import Path

import click

from ovnbgp import config as config_mod
from ovnbgp.agent import status as status_mod

LOG = logging.getLogger("ovnbgp")

EXIT_OK = 0
EXIT_NOT_OK = 1
EXIT_UNREADABLE = 3
EXIT_ALREADY_RUNNING = 4


def run(cfg: config_mod.Config, config_path: Path | None) -> int:
    from ovnbgp.agent.daemon import Agent
    from ovnbgp.agent.lockfile import AlreadyRunning

    agent = Agent(cfg, config_path)
    agent.install_signal_handlers()
    try:
        return agent.run()
    except AlreadyRunning as e:
        click.echo(f"ovnbgp: {e}", err=True)
        return EXIT_ALREADY_RUNNING


def agent_pid(lock_file: Path) -> int | None:
    """The pid of the running agent (it holds the lock), or None when none runs."""
    try:
        fd = os.open(lock_file, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.pread(fd, 32, 0).decode(errors="replace").strip()
            return int(text) if text.isdigit() else -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _peers(cfg: config_mod.Config) -> list[dict] | str:
    from ovnbgp.frr.paths import FrrPaths
    from ovnbgp.frr.vtysh import FrrError, FrrReader, Vtysh

    try:
        summary = FrrReader(Vtysh(FrrPaths.from_config(cfg.frr), timeout=10)).summary()
    except (FrrError, OSError) as e:  # FRR down or vtysh missing: status still answers
        return f"FRR not readable: {e}"
    return [{"peer": p.name, "state": p.state, "families": list(p.families),
             "prefixes_received": p.pfx_rcvd, "prefixes_sent": p.pfx_sent}
            for p in summary.peers.values()]


def status(cfg: config_mod.Config, as_json: bool) -> int:
    pid = agent_pid(cfg.agent.lock_file)
    record = status_mod.read(cfg.agent.state_dir)
    peers = _peers(cfg)
    running = pid is not None
    connected = bool(record and record.get("connected") and all(record["connected"].values()))
    out = {"running": running, "pid": pid, "peers": peers,
           "remotes": {"sb": list(cfg.ovn.sb_remotes), "ovs": cfg.ovn.ovs_remote}, **(record or {})}
    out["pid"] = pid
    if as_json:
        click.echo(json.dumps(out, indent=2, default=str))
        return EXIT_OK if running and connected else EXIT_NOT_OK
    click.echo(f"agent:      {'running, pid ' + str(pid) if running else 'not running'}")
    if record:
        remotes = {"sb": ",".join(cfg.ovn.sb_remotes), "ovs": cfg.ovn.ovs_remote}
        conns = ", ".join(f"{db} {'connected' if up else 'DISCONNECTED'} ({remotes.get(db, '?')})"
                          for db, up in record.get("connected", {}).items())
        click.echo(f"databases:  {conns or 'not connected yet'}")
        exp = record.get("exposures", {})
        click.echo(f"exposures:  {sum(exp.values())} ("
                   + ", ".join(f"{k} {v}" for k, v in exp.items()) + ")")
        ls = record.get("last_sync", {})
        if ls.get("at"):
            ago = time.time() - float(ls["at"])
            click.echo(f"last sync:  {ago:.0f}s ago ({ls.get('trigger')}), took "
                       f"{float(ls.get('duration', 0)) * 1000:.1f} ms, "
                       f"changes {ls.get('changes') or 'none'}; {record.get('syncs', 0)} syncs")
        frr = record.get("frr") or {}
        lr = frr.get("last_reload") or {}
        if lr:
            click.echo(f"frr:        last apply {lr.get('action')} "
                       f"({'ok' if lr.get('ok') else 'ERROR'}): {lr.get('message')}; "
                       f"restarts detected {frr.get('restarts_detected', 0)}")
        for h in record.get("held", []):
            click.echo(f"held:       {h}: nothing withdrawn for bridges not mapped")
        for w in record.get("waiting", []):
            click.echo(f"waiting:    {w}")
        for e in record.get("errors", [])[-5:]:
            click.echo(f"error:      {time.strftime('%H:%M:%S', time.localtime(e['at']))} "
                       f"{e['target']}: {e['message']}")
    else:
        click.echo(f"no status record in {cfg.agent.state_dir}")
    if isinstance(peers, str):
        click.echo(f"bgp peers:  {peers}")
    else:
        for p in peers:
            click.echo(f"bgp peer:   {p['peer']} {p['state']} ({'/'.join(p['families'])}, "
                       f"received {p['prefixes_received']}, sent {p['prefixes_sent']})")
    return EXIT_OK if running and connected else EXIT_NOT_OK


def plan(cfg: config_mod.Config, as_json: bool, timeout: float) -> int:
    """What a reconcile would change now, per target; changes nothing."""
    from ovnbgp.agent.operations import make_plan
    from ovnbgp.ovn.watcher import OvnError

    try:
        report = make_plan(cfg, timeout)
    except OvnError as e:
        click.echo(f"ovnbgp plan: {e}", err=True)
        return EXIT_UNREADABLE
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        click.echo(report.text(), nl=False)
    if report.errors:
        return EXIT_UNREADABLE
    return EXIT_NOT_OK if report.changes else EXIT_OK


def cleanup(cfg: config_mod.Config, yes: bool, as_json: bool) -> int:
    """Remove everything ovnbgp owns, in the safe order, after confirmation (or --yes)."""
    from ovnbgp.agent.lockfile import AlreadyRunning, LockFile
    from ovnbgp.agent.operations import cleanup_plan, run_cleanup
    from ovnbgp.kernel.netlink import KernelReconciler

    lock = LockFile(cfg.agent.lock_file)
    try:
        lock.acquire()  # held throughout: no agent can start meanwhile
    except AlreadyRunning as e:
        click.echo(f"ovnbgp cleanup: the agent is running ({e}); stop it first, or it puts "
                   "everything back", err=True)
        return EXIT_NOT_OK
    try:
        with KernelReconciler(cfg) as rec:
            cp = cleanup_plan(cfg, rec)
            if not as_json:
                click.echo("ovnbgp cleanup will remove, in this order:")
                for line in cp.lines():
                    click.echo(line)
            if not yes:
                if not click.confirm("Remove all of it?", default=False, err=True):
                    click.echo("ovnbgp cleanup: nothing changed", err=True)
                    return EXIT_NOT_OK
            result = run_cleanup(cfg, rec, cp)
    finally:
        lock.release()
    if as_json:
        click.echo(json.dumps({"ok": result.ok, "plan": cp.to_dict(),
                               "steps": [{"step": s, "ok": ok, "message": m}
                                         for s, ok, m in result.steps]}, indent=2))
    else:
        for step, ok, message in result.steps:
            click.echo(f"{step}: {'ok' if ok else 'FAILED'}: {message}")
        click.echo("sysctls (ip_forward, rp_filter, proxy_arp/ndp) were left as they are")
    return EXIT_OK if result.ok else EXIT_NOT_OK

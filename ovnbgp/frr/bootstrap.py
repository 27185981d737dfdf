"""Make sure FRR runs the daemons ovnbgp needs: the daemons file, and starting FRR.

`edit_daemons()` is pure (text in, text out); the rest does I/O with argument lists only.
FRR is started the way the node starts it: systemd when the machine runs it (`frr.service`,
or `frr@NAME.service` for an instance with a pathspace), else FRR's own init script
(`/usr/lib/frr/frrinit.sh start [NAME]`). When FRR runs but lacks a daemon just enabled, it is
reloaded (`systemctl reload` / `frrinit.sh reload`): watchfrr is restarted with the new daemon
list, the running daemons are not, so no BGP session drops.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from ovnbgp.config import Config
from ovnbgp.frr.paths import DEFAULT_CONF_DIR, FrrPaths
from ovnbgp.frr.reload import daemon_alive, write_file

log = logging.getLogger(__name__)

Runner = Callable[..., subprocess.CompletedProcess]

# zebra and staticd are always started by FRR's init; the daemons file only lists the others.
ALWAYS_STARTED = ("zebra", "staticd")
SYSTEMD_DIR = Path("/run/systemd/system")


class BootstrapError(Exception):
    """FRR could not be made to run the needed daemons; the message says why."""


def needed_daemons(cfg: Config) -> tuple[str, ...]:
    """Daemons ovnbgp's FRR config needs, besides zebra."""
    return ("bgpd", "bfdd") if cfg.bgp.bfd else ("bgpd",)


_ASSIGN = re.compile(r"^\s*([A-Za-z0-9_]+)\s*=\s*(.*?)\s*$")


def edit_daemons(text: str, needed: Iterable[str]) -> str:
    """Enable `needed` in a daemons file's text, keeping every other line as it is.

    `bgpd=no` becomes `bgpd=yes`; a daemon with no line gets one appended. Comments, options
    (`bgpd_options=...`) and other daemons are untouched; an already enabled daemon is left
    alone (so the result equals the input when nothing is missing).
    """
    lines = text.splitlines()
    missing = [d for d in needed if d not in ALWAYS_STARTED]
    for d in list(missing):
        found = False
        for i, line in enumerate(lines):
            m = _ASSIGN.match(line)
            if not m or m.group(1) != d:
                continue
            found = True
            value = m.group(2).split("#", 1)[0].strip().strip("\"'")
            if value in ("", "no", "0"):
                lines[i] = f"{d}=yes"
        if found:
            missing.remove(d)
    out = "\n".join(lines)
    if text.endswith("\n") or not text:
        out += "\n" if out else ""
    for d in missing:
        if out and not out.endswith("\n"):
            out += "\n"
        out += f"{d}=yes\n"
    return out


def ensure_daemons_file(path: Path, needed: Iterable[str]) -> bool:
    """Enable `needed` in the daemons file; True if the file changed.

    A missing file (a new pathspace instance) is created from FRR's packaged /etc/frr/daemons
    when there is one, so it keeps the packaged daemon options.
    """
    try:
        text = path.read_text()
    except FileNotFoundError:
        template = DEFAULT_CONF_DIR / "daemons"
        text = template.read_text() if template != path and template.is_file() else ""
        like = template if template.is_file() else None
    except OSError as e:
        raise BootstrapError(f"cannot read FRR's daemons file {path}: {e.strerror}") from e
    else:
        like = path
    new = edit_daemons(text, needed)
    if new == text and path.exists():
        return False
    try:
        write_file(path, new, like=like or path)
    except OSError as e:
        raise BootstrapError(f"cannot write FRR's daemons file {path}: {e.strerror}") from e
    log.info("FRR daemons file %s: enabled %s", path, ", ".join(needed))
    return True


def uses_systemd() -> bool:
    """True when the machine runs systemd (sd_booted) and systemctl is there."""
    return SYSTEMD_DIR.is_dir() and shutil.which("systemctl") is not None


def service_argv(paths: FrrPaths, action: str, systemd: bool) -> list[str]:
    """The command that starts (`start`) or reloads (`reload`) this FRR instance."""
    if systemd:
        return ["systemctl", action, paths.systemd_unit]
    argv = [str(paths.init_script), action]
    if paths.pathspace:
        argv.append(paths.pathspace)
    return argv


@dataclass(frozen=True)
class StartResult:
    action: str  # "running" (nothing done), "started", "reloaded"
    command: tuple[str, ...] = ()


def ensure_running(paths: FrrPaths, daemons: Iterable[str], *, runner: Runner = subprocess.run,
                   systemd: bool | None = None, timeout: float = 60.0,
                   sleep: Callable[[float], None] = time.sleep) -> StartResult:
    """Start FRR, or reload it when it runs without one of `daemons`; wait until all are up."""
    wanted = ["zebra", *[d for d in daemons if d != "zebra"]]
    alive = {d: daemon_alive(paths, d) for d in wanted}
    if all(alive.values()):
        return StartResult("running")
    systemd = uses_systemd() if systemd is None else systemd
    action = "reload" if alive["zebra"] else "start"
    argv = service_argv(paths, action, systemd)
    if not systemd and not paths.init_script.exists():
        raise BootstrapError(f"FRR is not running and its init script {paths.init_script} is missing")
    log.info("FRR: %s (%s missing): %s", action, ", ".join(d for d, ok in alive.items() if not ok),
             " ".join(argv))
    try:
        cp = runner(argv, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise BootstrapError(f"`{' '.join(argv)}` failed: {e}") from e
    failure = None
    if cp.returncode != 0:
        out = " ".join(((cp.stderr or "") + " " + (cp.stdout or "")).split())[-400:]
        failure = f"`{' '.join(argv)}` exited {cp.returncode}: {out or '(no output)'}"
        if action == "start":
            raise BootstrapError(failure)
        # frrinit.sh 8.4 `reload NAME` starts the added daemons, then fails reading a config
        # file named NAME (it takes its 2nd argument for both): judge by the daemons.
        log.warning("FRR: %s; checking the daemons anyway", failure)
    deadline = time.monotonic() + timeout
    while True:
        missing = [d for d in wanted if not daemon_alive(paths, d)]
        if not missing:
            break
        if time.monotonic() > deadline:
            raise BootstrapError(f"after `{' '.join(argv)}`, {', '.join(missing)} not running "
                                 f"(no live pid in {paths.run_dir}); check FRR's log"
                                 + (f" ({failure})" if failure else ""))
        sleep(0.2)
    # The vty sockets come up just after the pid files.
    while not all((paths.run_dir / f"{d}.vty").exists() for d in wanted):
        if time.monotonic() > deadline:
            break
        sleep(0.1)
    return StartResult("started" if action == "start" else "reloaded", tuple(argv))


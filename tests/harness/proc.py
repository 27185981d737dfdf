"""Processes for the test harness: daemons in their own process group, one-shot commands.

A `Daemon` runs in the foreground of its own session (so its whole process group can be
killed), with stdout and stderr appended to a log file. `start()` waits until a caller-given
readiness check passes; if the daemon exits or is not ready in time it is killed and
`DaemonError` is raised naming the daemon and quoting the tail of its log, so a broken
fixture fails its test loudly instead of timing out somewhere later.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

LOG_TAIL_LINES = 30
_SETPRIV = shutil.which("setpriv")


class DaemonError(RuntimeError):
    """A daemon that did not come up (or died). The message names it and shows its log tail."""

    def __init__(self, name: str, reason: str, log_path: Path | None = None):
        self.name = name
        self.reason = reason
        self.log_path = log_path
        self.log_tail = log_tail(log_path) if log_path else ""
        where = f" (log {log_path})" if log_path else ""
        text = f"daemon {name!r}: {reason}{where}"
        if log_path:
            text += f"\n--- last lines of {log_path.name} ---\n{self.log_tail or '(log is empty)'}"
        super().__init__(text)


class CommandError(subprocess.CalledProcessError):
    """A failed harness command; str() shows the command, exit status, stdout and stderr."""

    def __str__(self) -> str:
        out = (self.stdout or "").strip()
        err = (self.stderr or "").strip()
        return (f"command {self.cmd!r} exited with {self.returncode}"
                + (f"\nstdout: {out[-2000:]}" if out else "")
                + (f"\nstderr: {err[-2000:]}" if err else ""))


def log_tail(path: Path | str, lines: int = LOG_TAIL_LINES) -> str:
    """The last `lines` lines of a log file ('' if it does not exist)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            data = f.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-lines:])


def netns_argv(argv: Sequence[str], netns: str | None) -> list[str]:
    """argv prefixed with `ip netns exec NS` when netns is given (ip execs, so the pid is kept)."""
    argv = [str(a) for a in argv]
    return ["ip", "netns", "exec", netns, *argv] if netns else argv


def run(argv: Sequence[str], *, netns: str | None = None, check: bool = True,
        timeout: float = 60, env: Mapping[str, str] | None = None,
        input: str | None = None) -> subprocess.CompletedProcess:
    """Run a command (argument list, never a shell) and return its text CompletedProcess.

    With check=True a non-zero exit raises CommandError (a CalledProcessError whose str()
    includes stderr). A timeout raises subprocess.TimeoutExpired.
    """
    full = netns_argv(argv, netns)
    proc_env = None
    if env is not None:
        proc_env = dict(os.environ)
        proc_env.update(env)
    cp = subprocess.run(full, capture_output=True, text=True, timeout=timeout, env=proc_env,
                        input=input, stdin=None if input is not None else subprocess.DEVNULL)
    if check and cp.returncode != 0:
        raise CommandError(cp.returncode, full, cp.stdout, cp.stderr)
    return cp


def wait_for(predicate: Callable[[], object], *, timeout: float = 20, interval: float = 0.1,
             what: str = "condition", details: Callable[[], str] | None = None) -> object:
    """Poll until predicate() is truthy and return its value, else raise TimeoutError.

    Exceptions from the predicate count as "not yet" (the last one is reported). `details`,
    if given, is called on timeout and its text is added to the error (e.g. a state dump).
    """
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except Exception as e:  # noqa: BLE001 - any failure means "not ready yet"
            last_exc = e
        if time.monotonic() >= deadline:
            msg = f"timed out after {timeout:g}s waiting for {what}"
            if last_exc is not None:
                msg += f"; last error: {last_exc!r}"
            if details is not None:
                try:
                    msg += "\n" + details()
                except Exception as e:  # noqa: BLE001
                    msg += f"\n(could not collect details: {e!r})"
            raise TimeoutError(msg)
        time.sleep(interval)


class Daemon:
    """One long-running process, started in the foreground in its own process group."""

    def __init__(self, name: str, argv: Sequence[str], log_path: Path | str, *,
                 netns: str | None = None, env: Mapping[str, str] | None = None):
        self.name = name
        self.argv = [str(a) for a in argv]
        self.log_path = Path(log_path)
        self.netns = netns
        self.env = dict(env) if env else None
        self._proc: subprocess.Popen | None = None

    def __repr__(self) -> str:
        return f"Daemon({self.name!r}, pid={self.pid}, netns={self.netns!r})"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, ready: Callable[[], bool] | None = None, timeout: float = 20) -> Daemon:
        """Spawn the daemon and wait until ready() is true; DaemonError if it dies or times out."""
        if self.alive():
            raise DaemonError(self.name, "start() called while it is already running")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = None
        if self.env is not None:
            env = dict(os.environ)
            env.update(self.env)
        full = netns_argv(self.argv, self.netns)
        if _SETPRIV:
            # Die with the harness even if it is SIGKILLed before teardown (no orphan daemons).
            # The signal fires when the *thread* that started the daemon exits: start daemons
            # from the main thread or another long-lived one.
            full = [_SETPRIV, "--pdeathsig", "TERM", "--", *full]
        with open(self.log_path, "ab") as log:
            log.write(f"=== harness: starting {self.name}: {' '.join(full)}\n".encode())
            log.flush()
            try:
                self._proc = subprocess.Popen(full, stdin=subprocess.DEVNULL, stdout=log,
                                              stderr=subprocess.STDOUT, env=env,
                                              start_new_session=True)
            except OSError as e:
                raise DaemonError(self.name, f"cannot execute {full[0]}: {e}", self.log_path) from e
        deadline = time.monotonic() + timeout
        last_exc: BaseException | None = None
        while True:
            rc = self._proc.poll()
            if rc is not None:
                self._proc = None
                raise DaemonError(self.name, f"exited with status {rc} while starting", self.log_path)
            try:
                if ready is None or ready():
                    return self
            except Exception as e:  # noqa: BLE001 - readiness probes may fail until up
                last_exc = e
            if time.monotonic() >= deadline:
                self.stop()
                reason = f"not ready after {timeout:g}s"
                if last_exc is not None:
                    reason += f" (last readiness error: {last_exc!r})"
                raise DaemonError(self.name, reason, self.log_path)
            time.sleep(0.05)

    def stop(self, timeout: float = 5) -> int | None:
        """SIGTERM the process group, SIGKILL it after `timeout` s. Returns the exit status."""
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        pgid = proc.pid  # start_new_session: the pid is the process group id
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5)):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                pass
            try:
                return proc.wait(wait)
            except subprocess.TimeoutExpired:
                continue
        return proc.poll()

    def kill(self) -> None:
        """SIGKILL at once (to simulate a crash); the Daemon is stopped afterwards."""
        if self._proc is not None:
            try:
                os.killpg(self._proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self._proc.wait(5)
            self._proc = None

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        return log_tail(self.log_path, lines)


def short_rundir(prefix: str) -> Path:
    """A fresh private directory with a short path under /tmp, for unix sockets.

    sun_path holds 107 bytes and pytest's tmp_path can be longer than that, so sockets,
    control sockets and pid files go here while databases and logs stay in the test's tmp_path.
    """
    import tempfile

    return Path(tempfile.mkdtemp(prefix=f"{prefix}.", dir="/tmp"))


def socket_ready(path: Path | str) -> bool:
    """True once something accepts connections on the unix socket at path."""
    import socket

    if not os.path.exists(path):
        return False
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.settimeout(1)
        s.connect(str(path))
        return True
    except OSError:
        return False
    finally:
        s.close()

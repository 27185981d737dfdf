"""Boot User-Mode Linux over the host's own root file system and run one command inside.

The guest kernel is Debian's `/usr/bin/linux.uml` (6.1, with dummy, vrf, veth, openvswitch,
bridge and overlay modules). Its root is the host's `/` through hostfs, read-only, so the same
paths (this repository, the venv, /usr/bin/ovs-vswitchd, FRR) work inside. `init.sh`, next to
this module, is PID 1: it prepares the guest (see its header), runs the command and powers off.

One directory on the host, `workdir`, is the only writable host path in the guest: it is
mounted on /mnt (environment variable OVNBGP_VM_OUT in the command). Control files go to
`workdir/.uml/`: the argv, environment and cwd of the command, and back from the guest its
exit status and timing.

    from tests.vm import uml
    status = uml.boot(["/usr/bin/ip", "-br", "link"], workdir="/tmp/x", timeout=120)
    status = uml.boot("modprobe vrf && ip link add v type vrf table 10", workdir=..., timeout=...)

A string is a bash script, a list is an argument vector (never run through a shell). The
console (kernel messages with `quiet` off, and the command's stdout and stderr) streams to the
caller's stdout as it comes. `run()` takes the same arguments and returns a `BootResult` with
the timing figures as well.

Details that matter (measured here, see docs/architecture.md, "User-Mode Linux"): standard
input is /dev/null, as in CI; `uml_dir=` and a unique `umid=` keep UML out of ~/.uml; SIGTERM to
linux.uml stops the guest cleanly, so a timeout sends SIGTERM and, 10 s later, SIGKILL to the
process group. The guest has one CPU.
"""

from __future__ import annotations

import dataclasses
import os
import re
import secrets
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import BinaryIO

INIT_SCRIPT = Path(__file__).with_name("init.sh")
XSTATE_PRELOAD_SOURCE = Path(__file__).with_name("xstate_preload.c")
GUEST_FSTAB = Path(__file__).with_name("guest.fstab")
LINUX_UML = "/usr/bin/linux.uml"

#: Returned when the time limit was hit (like timeout(1)).
STATUS_TIMEOUT = 124
#: Returned when the guest ended without writing a status (set-up failed, crash, panic).
STATUS_NO_STATUS = 125

GUEST_OUT = "/mnt"
GUEST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#: Guest directories that init.sh covers with tmpfs (host content under them is hidden).
MASKED_IN_GUEST = ("/tmp", "/run", "/var/run", "/var/tmp", "/var/log", "/var/lib",
                   "/lib/modules", "/usr/lib/modules", "/dev", "/proc", "/sys", GUEST_OUT)

# Paths end up on the kernel command line and in mount options: no spaces, commas, '='.
_SAFE_PATH = re.compile(r"^/[A-Za-z0-9._/+@-]*$")
_MEM = re.compile(r"^[1-9][0-9]*[KMG]?$")
_HOSTNAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclasses.dataclass(frozen=True)
class BootResult:
    """What one boot produced. Guest times are the guest's uptime in seconds (None if unknown)."""

    status: int
    timed_out: bool
    host_seconds: float          # launch of linux.uml to its exit, on the host
    init_start: float | None     # PID 1 started (kernel boot time)
    cmd_start: float | None      # the command started (after init's set-up)
    cmd_end: float | None        # the command ended (about power-off: the guest's wall time)
    workdir: Path

    def figures(self) -> str:
        """One line for logs, e.g. 'init 1.7 s, command start 2.6 s, guest wall 30.1 s, host 31.0 s'."""
        parts = []
        for label, value in (("kernel boot to init", self.init_start),
                             ("command start", self.cmd_start),
                             ("guest wall", self.cmd_end)):
            if value is not None:
                parts.append(f"{label} {value:.1f} s")
        parts.append(f"host total {self.host_seconds:.1f} s")
        return ", ".join(parts)


class UmlError(RuntimeError):
    """The guest cannot be started (bad argument, linux.uml missing)."""


def boot(script_or_argv: str | Sequence[str], *, mem: str = "2G", workdir: str | os.PathLike,
         timeout: float, env: Mapping[str, str] | None = None, **kwargs) -> int:
    """Boot UML, run the script/argv inside, return its exit status (see module doc).

    STATUS_TIMEOUT (124) if `timeout` seconds passed, STATUS_NO_STATUS (125) if the guest
    ended without reporting one. Extra keyword arguments are those of `run()`.
    """
    return run(script_or_argv, mem=mem, workdir=workdir, timeout=timeout, env=env, **kwargs).status


def run(script_or_argv: str | Sequence[str], *, mem: str = "2G", workdir: str | os.PathLike,
        timeout: float, env: Mapping[str, str] | None = None, cwd: str | os.PathLike = "/",
        expose: Sequence[str | os.PathLike] = (), hostname: str = "ovnbgp-vm",
        quiet: bool = True, out: BinaryIO | None = None,
        linux: str = LINUX_UML, stop: threading.Event | None = None) -> BootResult:
    """Boot UML once and run one command in it; see the module docstring.

    workdir: host directory (created if missing), mounted on /mnt in the guest.
    env: added to the guest command's environment (defaults: guest_env()).
    cwd: the command's working directory (a host path; the same path in the guest).
    expose: host directories to keep visible even if under a tmpfs-covered path such as /tmp
        (cwd is always added); they are mounted read-only at the same path.
    quiet: pass `quiet` to the kernel (boot messages off; warnings and panics still show).
    stop: when set (by another thread), the guest is stopped as at the time limit.
    out: binary stream for the console (default: this process's stdout).
    """
    workdir = Path(workdir).absolute()
    _check_path(str(workdir), "workdir")
    if not _MEM.match(mem):
        raise UmlError(f"mem={mem!r}: expected a size such as 2G or 512M")
    if not _HOSTNAME.match(hostname):
        raise UmlError(f"hostname {hostname!r} is not a valid host name")
    if timeout <= 0:
        raise UmlError(f"timeout must be positive, got {timeout!r}")
    if not (os.path.isfile(linux) and os.access(linux, os.X_OK)):
        raise UmlError(f"{linux} not found: install the Debian package user-mode-linux "
                       "(scripts/install-deps does)")

    ctl = workdir / ".uml"
    ctl.mkdir(parents=True, exist_ok=True)
    for stale in ("status", "status.tmp", "timing"):
        (ctl / stale).unlink(missing_ok=True)

    if isinstance(script_or_argv, str):
        (ctl / "script.sh").write_text(script_or_argv)
        argv = ["/bin/bash", f"{GUEST_OUT}/.uml/script.sh"]
    else:
        argv = [os.fspath(a) for a in script_or_argv]
    _check_argv(argv)

    cwd = os.path.abspath(os.fspath(cwd))
    full_env = guest_env()
    full_env.update(env or {})
    _write_nul(ctl / "argv.0", argv)
    _write_nul(ctl / "env.0", [f"{k}={v}" for k, v in _checked_env(full_env).items()])
    (ctl / "cwd").write_text(cwd)
    (ctl / "hostname").write_text(hostname)
    to_expose = hidden_paths([cwd, *expose])
    for p in to_expose:
        _check_path(p, "exposed path")
    _write_nul(ctl / "expose.0", to_expose)
    # The kernel execs init before any tmpfs exists, so any host path works; a copy keeps
    # the command line free of odd characters from wherever the repository was cloned.
    init = ctl / "init.sh"
    shutil.copyfile(INIT_SCRIPT, init)
    init.chmod(0o755)
    shutil.copyfile(GUEST_FSTAB, ctl / "guest.fstab")

    uml_dir = tempfile.mkdtemp(prefix="uml.", dir="/tmp")  # short: holds a unix socket
    umid = f"ovnbgp-{os.getpid()}-{secrets.token_hex(3)}"
    cmdline = [linux, f"mem={mem}", "rootfstype=hostfs", "rootflags=/", "ro",
               f"init={init}", "con0=fd:0,fd:1", "con=null", f"uml_dir={uml_dir}",
               f"umid={umid}", f"ovnbgp_vm_dir={workdir}"]
    if quiet:
        cmdline.append("quiet")

    sink = out if out is not None else _stdout_binary()
    try:
        env = _host_env(mem)
        preload = _build_xstate_preload(ctl, sink)
        if preload is not None:
            env["LD_PRELOAD"] = f"{preload} {env['LD_PRELOAD']}".strip() \
                if env.get("LD_PRELOAD") else str(preload)
        rc, timed_out, host_seconds = _run_console(cmdline, sink, timeout, env, stop)
    finally:
        shutil.rmtree(uml_dir, ignore_errors=True)

    timing = _read_timing(ctl / "timing")
    status = _read_status(ctl / "status")
    if timed_out and stop is not None and stop.is_set():
        _say(sink, "vm: asked to stop; linux.uml stopped")
        status = STATUS_TIMEOUT
    elif timed_out:
        _say(sink, f"vm: timed out after {timeout:g} s; linux.uml stopped")
        status = STATUS_TIMEOUT
    elif status is None:
        _say(sink, f"vm: the guest wrote no exit status (set-up failed or the kernel crashed; "
                   f"linux.uml exited with {rc})")
        status = STATUS_NO_STATUS
    return BootResult(status=status, timed_out=timed_out, host_seconds=host_seconds,
                      init_start=timing.get("init_start"), cmd_start=timing.get("cmd_start"),
                      cmd_end=timing.get("cmd_end"), workdir=workdir)


def guest_env() -> dict[str, str]:
    """The environment the guest command starts with (init.sh runs it under `env -i`).

    The root file system is read-only: no bytecode writing, HOME and caches in /tmp. The bin
    directory of the running interpreter (the venv) comes first in PATH.
    """
    bindir = os.path.dirname(sys.executable)
    path = GUEST_PATH if bindir in GUEST_PATH.split(":") else f"{bindir}:{GUEST_PATH}"
    return {
        "PATH": path,
        "HOME": "/tmp",
        "TMPDIR": "/tmp",
        "LANG": "C.UTF-8",
        "TERM": "dumb",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        "HYPOTHESIS_STORAGE_DIRECTORY": "/tmp/hypothesis",
        "OVNBGP_VM": "1",
        "OVNBGP_VM_OUT": GUEST_OUT,
    }


def hidden_paths(paths: Sequence[str | os.PathLike]) -> list[str]:
    """Those of `paths` (made absolute, symlinks resolved) that the guest's tmpfs mounts hide."""
    found: list[str] = []
    for p in paths:
        real = os.path.realpath(os.fspath(p))
        for masked in MASKED_IN_GUEST:
            if real == masked:
                raise UmlError(f"{real} is replaced in the guest and cannot be exposed")
            if real.startswith(masked + "/") and real not in found:
                found.append(real)
    return found


def _run_console(cmdline: list[str], sink: BinaryIO, timeout: float, env: dict[str, str],
                 stop: threading.Event | None = None) -> tuple[int, bool, float]:
    """Run linux.uml with its console piped to `sink`; enforce the time limit.

    Returns (exit code, timed out?, seconds). linux.uml runs in its own session so the whole
    process group (the UML kernel and its helper processes) can be signalled.
    """
    start = time.monotonic()
    deadline = start + timeout
    proc = subprocess.Popen(cmdline, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env=env, start_new_session=True)
    timed_out = False
    fd = proc.stdout.fileno()
    pending_cr = b""
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or (stop is not None and stop.is_set()):
                timed_out = True
                break
            ready, _, _ = select.select([fd], [], [], min(left, 1.0))
            if not ready:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            # Strip CR of CRLF (a chunk may end between the two).
            data = pending_cr + chunk
            pending_cr = b""
            if data.endswith(b"\r"):
                data, pending_cr = data[:-1], b"\r"
            sink.write(data.replace(b"\r\n", b"\n"))
            sink.flush()
        if pending_cr:
            sink.write(pending_cr)
            sink.flush()
    finally:
        if timed_out or proc.poll() is None:
            _stop(proc)
        proc.stdout.close()
    rc = proc.wait()
    return rc, timed_out, time.monotonic() - start


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM linux.uml's process group (a clean guest stop), SIGKILL it after 10 s."""
    for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(grace)
            return
        except subprocess.TimeoutExpired:
            continue


def _build_xstate_preload(ctl: Path, sink: BinaryIO) -> Path | None:
    """Compile xstate_preload.c (see its header) into `ctl`; None without a C compiler.

    linux.uml 6.1 cannot restore FPU state on hosts whose XSAVE area is larger than AVX-512's
    (AMX CPUs): the guest panics at its first process. The library makes it work there and is
    inert elsewhere.
    """
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        if _host_has_large_xstate():
            _say(sink, "vm: no C compiler (cc): cannot build tests/vm/xstate_preload.c, which "
                       "linux.uml needs on this CPU (AMX); install gcc")
        return None
    lib = ctl / "xstate_preload.so"
    cp = subprocess.run([cc, "-O2", "-shared", "-fPIC", "-o", str(lib),
                         str(XSTATE_PRELOAD_SOURCE), "-ldl"],
                        stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if cp.returncode != 0:
        _say(sink, f"vm: building {XSTATE_PRELOAD_SOURCE.name} failed: {cp.stderr.strip()}")
        return None
    return lib


def _host_has_large_xstate() -> bool:
    try:
        with open("/proc/cpuinfo") as f:
            return any(line.startswith("flags") and " amx_tile" in line for line in f)
    except OSError:
        return False


def _host_env(mem: str) -> dict[str, str]:
    """linux.uml's own environment: its memory file goes to TMPDIR, else /dev/shm.

    A small /dev/shm (64 MiB in containers) would make the guest crash with SIGBUS once it
    uses more than that, so pick a directory with room for `mem` when TMPDIR is not set.
    """
    env = dict(os.environ)
    if env.get("TMPDIR"):
        return env
    need = _mem_bytes(mem)
    for d in ("/dev/shm", "/tmp", "/var/tmp"):
        try:
            st = os.statvfs(d)
        except OSError:
            continue
        if st.f_bavail * st.f_frsize >= need:
            if d != "/dev/shm":
                env["TMPDIR"] = d
            return env
    return env


def _mem_bytes(mem: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    if mem[-1] in units:
        return int(mem[:-1]) * units[mem[-1]]
    return int(mem)


def _check_path(path: str, what: str) -> None:
    if not _SAFE_PATH.match(path):
        raise UmlError(f"{what} {path!r}: only letters, digits and ._/+@- are allowed "
                       "(it goes on the kernel command line and into mount options)")


def _check_argv(argv: list[str]) -> None:
    if not argv:
        raise UmlError("empty argv")
    first = argv[0]
    if first.startswith("-") or "=" in first:
        raise UmlError(f"argv[0] {first!r} must be a program, not an option or NAME=VALUE")
    for a in argv:
        if "\0" in a:
            raise UmlError(f"argument {a!r} contains a NUL byte")


def _checked_env(env: Mapping[str, str]) -> dict[str, str]:
    for k, v in env.items():
        if not _ENV_KEY.match(k):
            raise UmlError(f"environment variable name {k!r} is not valid")
        if "\0" in str(v):
            raise UmlError(f"environment variable {k} contains a NUL byte")
    return {k: str(v) for k, v in env.items()}


def _write_nul(path: Path, items: Sequence[str]) -> None:
    path.write_bytes(b"".join(i.encode() + b"\0" for i in items))


def _read_status(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _read_timing(path: Path) -> dict[str, float]:
    timing: dict[str, float] = {}
    try:
        text = path.read_text()
    except OSError:
        return timing
    for line in text.splitlines():
        key, _, value = line.partition("=")
        try:
            timing[key.strip()] = float(value)
        except ValueError:
            pass
    return timing


def _stdout_binary() -> BinaryIO:
    sys.stdout.flush()
    return getattr(sys.stdout, "buffer", None) or _TextSink(sys.stdout)


class _TextSink:
    """Adapter when sys.stdout has no binary buffer (e.g. replaced by a capture object)."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, data: bytes) -> None:
        self._stream.write(data.decode(errors="replace"))

    def flush(self) -> None:
        self._stream.flush()


def _say(sink: BinaryIO, text: str) -> None:
    sink.write(text.encode() + b"\n")
    sink.flush()

"""Run the vm test tier: boot User-Mode Linux, run `pytest tests/vm [args]` inside.

    .venv/bin/python -m tests.vm.runner [pytest args...]

Run it from the repository root (any clone path works: the host's file system is the guest's
root, so the repository and the venv have the same paths inside). Arguments go to pytest.

If none of them names a path under tests/vm (the whole tier), the modules are split into
OVNBGP_VM_JOBS groups balanced by their measured durations (MODULE_SECONDS) and each group runs
in its own guest, all at once: a guest has one CPU, so two guests use two cores. Each guest is
its own pytest session with its own results directory (vm1/, vm2/, ... under the results
directory); the modules that share the session-scoped spine-leaf lab (LAB_MODULES) stay in one
guest, so it is built once. Console lines carry the guest's tag (`[vm1] `); at the end each
guest's figures, then one pytest-style line counting all guests (`N passed, M failed ...`).
If the arguments name paths, one guest runs them and its output is shown as is.

The exit status is pytest's (with several guests: the highest of theirs), or 124 (time limit) /
125 (a guest ended without reporting one).

Environment:
  OVNBGP_VM_JOBS      guests for the whole tier (default: 2, at most the host's CPUs)
  OVNBGP_VM_HOST_TESTS  paths (space-separated, e.g. "tests/unit tests/integration") that a
                      host pytest runs while the guests do (lines tagged `[host]`, counted in the
                      last line and the exit status); `make test` sets it
  OVNBGP_VM_TIMEOUT   hard limit for each boot in seconds (default 3600); linux.uml is then
                      stopped with SIGTERM, SIGKILL 10 s later
  OVNBGP_VM_MEM       memory of each guest (default 2G)
  OVNBGP_VM_RESULTS   host directory mounted on /mnt in the guest (with several guests: its
                      vmN/ subdirectories) and kept afterwards (default: a temporary directory,
                      removed). E.g. `--junitxml=/mnt/junit.xml`.
  OVNBGP_VM_VERBOSE=1 show the kernel's boot messages
  OVNBGP_ADVERSARIAL_*  passed on to the guest (tests/vm/test_adversarial.py: seed, count, skip)
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from tests.vm import uml

REPO = Path(__file__).resolve().parents[2]
VM_TESTS = "tests/vm"
DEFAULT_TIMEOUT = 3600  # one guest; well above the ~13 min of the whole tier in one guest
#: Written by tests/vm/conftest.py into the results directory at pytest's session start.
PYTEST_START_FILE = "pytest-session-start"
PASSED_ENV_PREFIX = "OVNBGP_ADVERSARIAL_"

#: Modules that use the session-scoped `lab` fixture (tests/lab/fixtures.py): one guest each.
LAB_MODULES = ("test_lab_fabric.py", "test_agent_lab.py", "test_e2e.py", "test_e2e_tenant_policy.py",
               "test_e2e_lb.py", "test_e2e_vlan.py", "test_failover.py")
#: Guest wall seconds per module (setup, calls, teardown; from --junitxml) measured in one guest
#: on 2 cores with the host's load at 1-7; the lab's build (~23 s) counted once, in
#: LAB_BUILD_SECONDS. Only used to balance the groups; a module missing here counts
#: DEFAULT_MODULE_SECONDS. Re-measure with `OVNBGP_VM_JOBS=1 OVNBGP_VM_RESULTS=<dir>
#: .venv/bin/python -m tests.vm.runner --junitxml=/mnt/junit.xml` when the tier changes much.
MODULE_SECONDS = {
    "test_adversarial.py": 140,
    "test_agent.py": 51,
    "test_agent_lab.py": 44,
    "test_drift.py": 125,
    "test_e2e.py": 200,
    "test_e2e_tenant_policy.py": 140,
    "test_e2e_lb.py": 165,
    "test_e2e_vlan.py": 180,
    "test_explain.py": 72,
    "test_failover.py": 180,
    "test_faults.py": 211,
    "test_flows.py": 32,
    "test_frr_chain.py": 200,
    "test_kernel_basics.py": 4,
    "test_kernel_reconciler.py": 42,
    "test_lab_fabric.py": 111,
    "test_ownership.py": 450,
}
LAB_BUILD_SECONDS = 25
DEFAULT_MODULE_SECONDS = 60

_SUMMARY = re.compile(r"^=* ?((?:\d+ [a-z]+(?:, )?)+) in ([0-9.]+)s\b")
_COUNT = re.compile(r"(\d+) ([a-z]+)")
#: pytest's words, in its order, singular (it says "1 error" / "2 errors").
_OUTCOMES = ("failed", "passed", "skipped", "deselected", "xfailed", "xpassed", "warning",
             "error", "rerun")


def pytest_argv(args: list[str]) -> list[str]:
    """The guest command: this interpreter's pytest on tests/vm with the caller's arguments.

    The root file system is read-only in the guest, hence no cache provider.
    """
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider"]
    if not any(_names_vm_tests(a) for a in args):
        argv.append(VM_TESTS)
    return argv + args


def passed_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The host variables the guest command gets too (the guest starts from a clean env)."""
    return {k: v for k, v in environ.items() if k.startswith(PASSED_ENV_PREFIX)}


def _names_vm_tests(arg: str) -> bool:
    if arg.startswith("-"):
        return False
    path = arg.split("::", 1)[0]
    full = (REPO / path).resolve() if not os.path.isabs(path) else Path(path).resolve()
    vm_dir = REPO / VM_TESTS
    return full == vm_dir or vm_dir in full.parents


def vm_modules() -> list[str]:
    """Every test module of the tier (file names, sorted)."""
    return sorted(p.name for p in (REPO / VM_TESTS).glob("test_*.py"))


def split_modules(modules: Sequence[str], jobs: int) -> list[list[str]]:
    """`modules` in at most `jobs` groups of about equal measured time (longest first, each to
    the lightest group); the lab modules travel together. Groups keep the modules' order."""
    units: list[tuple[float, list[str]]] = []
    lab = [m for m in modules if m in LAB_MODULES]
    if lab:
        units.append((LAB_BUILD_SECONDS + sum(_seconds(m) for m in lab), lab))
    units += [(_seconds(m), [m]) for m in modules if m not in LAB_MODULES]
    units.sort(key=lambda u: -u[0])
    groups: list[tuple[float, list[str]]] = [(0.0, []) for _ in range(max(1, min(jobs, len(units))))]
    for seconds, names in units:
        i = min(range(len(groups)), key=lambda g: groups[g][0])
        groups[i] = (groups[i][0] + seconds, groups[i][1] + names)
    order = {m: i for i, m in enumerate(modules)}
    return [sorted(names, key=order.__getitem__) for _, names in groups if names]


def _seconds(module: str) -> float:
    return MODULE_SECONDS.get(module, DEFAULT_MODULE_SECONDS)


def default_jobs() -> int:
    value = os.environ.get("OVNBGP_VM_JOBS")
    if value:
        return max(1, int(value))
    return max(1, min(2, os.cpu_count() or 1))


@dataclasses.dataclass
class Guest:
    """One boot: its tag, pytest argv, results directory, and what came back."""

    tag: str
    argv: list[str]
    results: Path
    result: uml.BootResult | None = None
    host_status: int | None = None  # the exit status of a host run (no boot)
    error: str | None = None
    summary_line: str | None = None  # pytest's last summary line, seen on the console

    def pytest_start(self) -> float | None:
        try:
            return float((self.results / PYTEST_START_FILE).read_text())
        except (OSError, ValueError):
            return None

    @property
    def status(self) -> int:
        if self.host_status is not None:
            return self.host_status
        if self.result is None:
            return 2
        return self.result.status


class TaggedSink:
    """A console sink for one guest: whole lines, each prefixed with the tag, to stdout (one
    lock for all guests) and to the guest's console.log; remembers pytest's summary line."""

    _lock = threading.Lock()

    def __init__(self, guest: Guest, log_path: Path):
        self._guest = guest
        self._prefix = f"[{guest.tag}] ".encode()
        self._partial = b""
        self._log = open(log_path, "wb")

    def write(self, data: bytes) -> None:
        self._log.write(data)
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        for line in lines:
            self._emit(line)

    def flush(self) -> None:
        self._log.flush()

    def close(self) -> None:
        if self._partial:
            self._emit(self._partial)
            self._partial = b""
        self._log.close()

    def _emit(self, line: bytes) -> None:
        text = line.decode(errors="replace")
        if _SUMMARY.match(text.strip()):
            self._guest.summary_line = text.strip()
        out = sys.stdout.buffer
        with self._lock:
            out.write(self._prefix + line + b"\n")
            out.flush()


def main(args: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if args is None else args)
    timeout = float(os.environ.get("OVNBGP_VM_TIMEOUT", DEFAULT_TIMEOUT))
    mem = os.environ.get("OVNBGP_VM_MEM", "2G")
    keep = os.environ.get("OVNBGP_VM_RESULTS")
    results = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="ovnbgp-vm."))
    results.mkdir(parents=True, exist_ok=True)
    quiet = os.environ.get("OVNBGP_VM_VERBOSE") != "1"

    jobs = default_jobs()
    host_tests = os.environ.get("OVNBGP_VM_HOST_TESTS", "").split()
    final = None
    if any(_names_vm_tests(a) for a in args) or (jobs == 1 and not host_tests):
        status = run_one(args, results, mem=mem, timeout=timeout, quiet=quiet)
    else:
        status, final = run_split(args, results, jobs, mem=mem, timeout=timeout, quiet=quiet,
                                  host_tests=host_tests)
    if keep:
        print(f"vm: results kept in {results}", flush=True)
    else:
        shutil.rmtree(results, ignore_errors=True)
    if final is not None:
        print(final, flush=True)  # last, for whoever reads the final line (CI)
    return status


def run_one(args: list[str], results: Path, *, mem: str, timeout: float, quiet: bool) -> int:
    """One guest, its console straight to stdout (a module or test named on the command line)."""
    guest = Guest("vm", pytest_argv(args), results)
    (results / PYTEST_START_FILE).unlink(missing_ok=True)
    print(f"vm: booting User-Mode Linux ({mem}) for: {' '.join(guest.argv[1:])}", flush=True)
    start = time.monotonic()
    try:
        guest.result = uml.run(guest.argv, mem=mem, workdir=results, timeout=timeout, cwd=REPO,
                               expose=[REPO, sys.prefix], env=passed_env(os.environ), quiet=quiet)
    except uml.UmlError as e:
        print(f"vm: cannot boot: {e}", file=sys.stderr)
        return 2
    print(summary(guest.result, guest.pytest_start(), time.monotonic() - start), flush=True)
    return guest.status


def run_split(args: list[str], results: Path, jobs: int, *, mem: str, timeout: float,
              quiet: bool, host_tests: Sequence[str] = ()) -> tuple[int, str]:
    """The whole tier in `jobs` guests at once; see the module docstring. Returns the merged
    exit status and the combined pytest-style summary line."""
    groups = split_modules(vm_modules(), jobs)
    guests = []
    for n, modules in enumerate(groups, 1):
        tag = f"vm{n}"
        guest = Guest(tag, pytest_argv([f"{VM_TESTS}/{m}" for m in modules] + args),
                      results / tag)
        guest.results.mkdir(parents=True, exist_ok=True)
        (guest.results / PYTEST_START_FILE).unlink(missing_ok=True)
        guests.append(guest)
        print(f"vm: {tag}: User-Mode Linux ({mem}) for: {' '.join(guest.argv[1:])}", flush=True)
    print(f"vm: {len(guests)} guests at once; each line is tagged with its guest", flush=True)
    host = None
    if host_tests:
        host = Guest("host", [sys.executable, "-m", "pytest", *host_tests], results / "host")
        host.results.mkdir(parents=True, exist_ok=True)
        print(f"vm: host: at the same time: {' '.join(host.argv[1:])}", flush=True)

    start = time.monotonic()
    stop = threading.Event()
    threads = [threading.Thread(target=_boot, args=(g, mem, timeout, quiet, stop))
               for g in guests]
    if host is not None:
        threads.append(threading.Thread(target=_host_run, args=(host, stop)))
    for t in threads:
        t.start()
    try:
        for t in threads:
            while t.is_alive():
                t.join(0.5)
    except KeyboardInterrupt:
        print("vm: interrupted: stopping the guests", file=sys.stderr, flush=True)
        stop.set()
        for t in threads:
            t.join()
        raise
    total = time.monotonic() - start

    if host is not None:
        print(f"vm: host: pytest exit status {host.status}", flush=True)
        print(f"vm: host: {(host.summary_line or 'no pytest summary line').strip('= ')}",
              flush=True)
    for g in guests:
        if g.error is not None:
            print(f"vm: {g.tag}: cannot boot: {g.error}", file=sys.stderr, flush=True)
        else:
            figures = summary(g.result, g.pytest_start(), g.result.host_seconds)
            print(f"vm: {g.tag}: {figures.removeprefix('vm: ')}", flush=True)
        print(f"vm: {g.tag}: {(g.summary_line or 'no pytest summary line').strip('= ')}",
              flush=True)
    everything = guests + ([host] if host is not None else [])
    return (merged_status([g.status for g in everything]),
            combined_summary(everything, total, f"{'host + ' if host else ''}{len(guests)} "
                                                "User-Mode Linux guests"))


def _boot(guest: Guest, mem: str, timeout: float, quiet: bool, stop: threading.Event) -> None:
    sink = TaggedSink(guest, guest.results / "console.log")
    try:
        guest.result = uml.run(guest.argv, mem=mem, workdir=guest.results, timeout=timeout,
                               cwd=REPO, expose=[REPO, sys.prefix], env=passed_env(os.environ),
                               quiet=quiet, hostname=f"ovnbgp-{guest.tag}", out=sink, stop=stop)
    except uml.UmlError as e:
        guest.error = str(e)
    finally:
        sink.close()


def _host_run(run: Guest, stop: threading.Event) -> None:
    """The host pytest of OVNBGP_VM_HOST_TESTS, its output tagged like a guest's."""
    sink = TaggedSink(run, run.results / "console.log")
    try:
        proc = subprocess.Popen(run.argv, cwd=REPO, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for line in proc.stdout:
            sink.write(line)
            if stop.is_set():
                proc.terminate()
                break
        proc.stdout.close()
        run.host_status = proc.wait()
    except OSError as e:
        run.error = str(e)
        run.host_status = 2
    finally:
        sink.close()


def merged_status(statuses: Sequence[int]) -> int:
    """0 if every guest passed, else the most severe (highest) of the non-zero statuses."""
    failed = [s for s in statuses if s != 0]
    return max(failed) if failed else 0


def combined_summary(guests: Sequence[Guest], seconds: float, what: str) -> str:
    """pytest's summary line over all guests, always with `N passed, M failed`; a guest that
    printed no summary (crash, time limit) counts as one error."""
    counts = dict.fromkeys(_OUTCOMES, 0)
    for g in guests:
        line = g.summary_line
        if line is None:
            counts["error"] += 1
            continue
        for n, word in _COUNT.findall(_SUMMARY.match(line).group(1)):
            word = word.rstrip("s") if word in ("errors", "warnings") else word
            counts[word] = counts.get(word, 0) + int(n)
    parts = [f"{counts['passed']} passed", f"{counts['failed']} failed"]
    for word in _OUTCOMES:
        n = counts[word]
        if word in ("passed", "failed") or not n:
            continue
        parts.append(f"{n} {word}{'s' if word in ('error', 'warning') and n != 1 else ''}")
    text = f" {', '.join(parts)} in {seconds:.2f}s ({what}) "
    return f"{text:=^96}"


def summary(result: uml.BootResult, pytest_start: float | None, total: float) -> str:
    parts = [f"vm: pytest exit status {result.status}"]
    if result.init_start is not None:
        parts.append(f"kernel boot {result.init_start:.1f} s")
    if pytest_start is not None:
        parts.append(f"boot to pytest start {pytest_start:.1f} s")
    if result.cmd_end is not None:
        parts.append(f"guest wall time {result.cmd_end:.1f} s")
    parts.append(f"host total {total:.1f} s")
    return "; ".join(parts)


if __name__ == "__main__":
    sys.exit(main())

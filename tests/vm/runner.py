"""Run the vm test tier: boot User-Mode Linux once, run `pytest tests/vm [args]` inside.

    .venv/bin/python -m tests.vm.runner [pytest args...]

Run it from the repository root (any clone path works: the host's file system is the guest's
root, so the repository and the venv have the same paths inside). Arguments go to pytest; if
none of them names a path under tests/vm, `tests/vm` is added. The exit status is pytest's,
or 124 (time limit) / 125 (the guest ended without reporting one).

Environment:
  OVNBGP_VM_TIMEOUT   hard limit for the whole boot in seconds (default 3600); linux.uml is
                      then stopped with SIGTERM, SIGKILL 10 s later
  OVNBGP_VM_MEM       guest memory (default 2G)
  OVNBGP_VM_RESULTS   host directory mounted on /mnt in the guest and kept afterwards (default:
                      a temporary directory, removed). E.g. `--junitxml=/mnt/junit.xml`.
  OVNBGP_VM_VERBOSE=1 show the kernel's boot messages
  OVNBGP_ADVERSARIAL_*  passed on to the guest (tests/vm/test_adversarial.py: seed, count, skip)
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from tests.vm import uml

REPO = Path(__file__).resolve().parents[2]
VM_TESTS = "tests/vm"
DEFAULT_TIMEOUT = 3600  # the whole vm tier; well above its ~15-25 min on 2 cores
#: Written by tests/vm/conftest.py into the results directory at pytest's session start.
PYTEST_START_FILE = "pytest-session-start"
PASSED_ENV_PREFIX = "OVNBGP_ADVERSARIAL_"


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


def main(args: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if args is None else args)
    timeout = float(os.environ.get("OVNBGP_VM_TIMEOUT", DEFAULT_TIMEOUT))
    mem = os.environ.get("OVNBGP_VM_MEM", "2G")
    keep = os.environ.get("OVNBGP_VM_RESULTS")
    results = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="ovnbgp-vm."))
    results.mkdir(parents=True, exist_ok=True)
    (results / PYTEST_START_FILE).unlink(missing_ok=True)

    argv = pytest_argv(args)
    print(f"vm: booting User-Mode Linux ({mem}) for: {' '.join(argv[1:])}", flush=True)
    start = time.monotonic()
    try:
        result = uml.run(argv, mem=mem, workdir=results, timeout=timeout, cwd=REPO,
                         expose=[REPO, sys.prefix], env=passed_env(os.environ),
                         quiet=os.environ.get("OVNBGP_VM_VERBOSE") != "1")
    except uml.UmlError as e:
        print(f"vm: cannot boot: {e}", file=sys.stderr)
        return 2
    finally:
        total = time.monotonic() - start
    try:
        pytest_start = float((results / PYTEST_START_FILE).read_text())
    except (OSError, ValueError):
        pytest_start = None
    print(summary(result, pytest_start, total), flush=True)
    if keep:
        print(f"vm: results kept in {results}", flush=True)
    else:
        shutil.rmtree(results, ignore_errors=True)
    return result.status


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

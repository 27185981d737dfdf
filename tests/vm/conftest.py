"""pytest set-up for tests/vm: tests that need the full kernel, run inside User-Mode Linux.

These tests only run in the guest that `python -m tests.vm.runner` boots (the host kernel has
no dummy, vrf or openvswitch modules). Anywhere else each of them fails at set-up with a
message saying so; they never skip. The parent tests/conftest.py (the harness fixtures:
netns_factory, ovs_node, ovn_central, ...) applies here too.

Fixtures added here:
  modprobe      session: `modprobe("vrf")` loads a module, checks it is there, returns its name
  ipr           a pyroute2 IPRoute on the root namespace, closed afterwards
  ovs_datapath_type
                overrides the harness's "netdev": OvsNode bridges use the kernel datapath
                ("system") here, with the openvswitch module loaded
  vm_out        the host directory the guest may write to (mounted on /mnt)
  lab           session: the spine-leaf lab (tests/lab/fixtures.py), built once, removed at the end
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.harness.proc import run
from tests.lab.fixtures import lab  # noqa: F401  (fixture)

RUNNER_HINT = "run via python -m tests.vm.runner (tests/vm needs the User-Mode Linux kernel)"
PYTEST_START_FILE = "pytest-session-start"  # read by tests/vm/runner.py


def in_uml() -> bool:
    """True inside User-Mode Linux (its /proc/cpuinfo says so; an env var could be copied)."""
    try:
        with open("/proc/cpuinfo") as f:
            return "User Mode Linux" in f.read()
    except OSError:
        return False


IN_UML = in_uml()


def pytest_sessionstart(session: pytest.Session) -> None:
    """Tell the runner when pytest got going (its boot-to-pytest figure)."""
    out = os.environ.get("OVNBGP_VM_OUT")
    if IN_UML and out and os.path.isdir(out):
        with open("/proc/uptime") as f:
            uptime = f.read().split()[0]
        try:
            Path(out, PYTEST_START_FILE).write_text(uptime + "\n")
        except OSError:
            pass


def pytest_report_header(config: pytest.Config) -> str:
    if IN_UML:
        return f"vm: User-Mode Linux {os.uname().release}, host dir {os.environ.get('OVNBGP_VM_OUT')}"
    return f"vm: NOT inside User-Mode Linux: tests/vm will fail; {RUNNER_HINT}"


#: Modules that break the shared spine-leaf lab on purpose (uplinks down, a leaf's FRR killed)
#: and restore it only as far as their own checks go: they run after every other module of the
#: session, so no other test depends on what they leave (test_lab_fabric's geneve check between
#: racks failed after test_failover had run in the same lab).
RUN_LAST = ("test_failover.py",)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    vm_dir = Path(__file__).parent
    for item in items:
        if vm_dir in Path(item.path).parents:
            item.add_marker(pytest.mark.vm)
    items.sort(key=lambda item: Path(item.path).name in RUN_LAST)  # stable: the rest keep their order


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Refuse to run outside UML, before any fixture touches the host's network."""
    if not IN_UML:
        pytest.fail(f"not inside User-Mode Linux: {RUNNER_HINT}", pytrace=False)


@pytest.fixture(scope="session")
def modprobe() -> Callable[[str], str]:
    """`modprobe(name)`: load a kernel module of the UML kernel; fails the test if it cannot."""
    loaded: set[str] = set()

    def load(name: str) -> str:
        if name in loaded:
            return name
        cp = run(["modprobe", name], check=False)
        if cp.returncode != 0:
            pytest.fail(f"modprobe {name} failed ({cp.returncode}): {cp.stderr.strip()}")
        sysname = name.replace("-", "_")
        if not Path("/sys/module", sysname).exists():
            pytest.fail(f"modprobe {name} succeeded but /sys/module/{sysname} does not exist")
        loaded.add(name)
        return name

    return load


@pytest.fixture
def ipr() -> Iterator[IPRoute]:  # noqa: F821 - pyroute2 imported lazily
    from pyroute2 import IPRoute

    with IPRoute() as ip:
        yield ip


@pytest.fixture
def ovs_datapath_type(modprobe: Callable[[str], str]) -> str:
    """The kernel datapath for OvsNode bridges in the guest (overrides the harness's netdev)."""
    modprobe("openvswitch")
    return "system"


@pytest.fixture(scope="session")
def vm_out() -> Path:
    """The host directory mounted on /mnt in the guest (results written here survive)."""
    out = os.environ.get("OVNBGP_VM_OUT")
    if not out or not os.path.isdir(out):
        pytest.fail(f"OVNBGP_VM_OUT is not set to a directory: {RUNNER_HINT}")
    return Path(out)

"""Network namespaces and veth pairs for tests (iproute2 subprocesses: test code only).

Several test runs share this machine, so names must be unique: `unique_name()` adds a random
suffix, and `netns_factory` uses it. veth ends are created directly inside their target
namespaces, so their names only need to be unique within those namespaces.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
from collections.abc import Iterator

import pytest

from tests.harness.proc import run

MAX_IFNAME = 15


def unique_name(prefix: str, length: int = 6) -> str:
    """prefix + '-' + random hex (e.g. for netns and FRR instance names)."""
    return f"{prefix}-{secrets.token_hex(length // 2 + 1)[:length]}"


class Netns:
    """A named network namespace (`ip netns add`), with lo brought up on create."""

    def __init__(self, name: str):
        self.name = name
        self.created = False

    def __repr__(self) -> str:
        return f"Netns({self.name!r})"

    def create(self) -> Netns:
        run(["ip", "netns", "add", self.name])
        self.created = True
        self.run("ip", "link", "set", "lo", "up")
        return self

    def run(self, *argv: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        """Run a command inside the namespace (argument list, text output)."""
        return run(list(argv), netns=self.name, check=check, timeout=timeout)

    def pids(self) -> list[int]:
        cp = run(["ip", "netns", "pids", self.name], check=False)
        return [int(p) for p in cp.stdout.split() if p.isdigit()]

    def delete(self) -> None:
        """Kill whatever still runs inside, then delete the namespace (idempotent)."""
        if not os.path.exists(f"/run/netns/{self.name}"):
            self.created = False
            return
        for pid in self.pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        run(["ip", "netns", "delete", self.name], check=False)
        self.created = False

    def __enter__(self) -> Netns:
        return self if self.created else self.create()

    def __exit__(self, *exc: object) -> None:
        self.delete()


def _ns_name(ns: Netns | str | None) -> str | None:
    return ns.name if isinstance(ns, Netns) else ns


def veth(ns_a: Netns | str | None, if_a: str, ns_b: Netns | str | None, if_b: str, *,
         up: bool = True) -> None:
    """Create a veth pair if_a (in ns_a) <-> if_b (in ns_b); None means the current namespace.

    The ends are created directly in their namespaces (no temporary name in the root one).
    Both are set up unless up=False.
    """
    for n in (if_a, if_b):
        if not 0 < len(n) <= MAX_IFNAME:
            raise ValueError(f"interface name {n!r} must be 1..{MAX_IFNAME} characters")
    a, b = _ns_name(ns_a), _ns_name(ns_b)
    argv = ["ip", "link", "add", if_a]
    if a:
        argv += ["netns", a]
    argv += ["type", "veth", "peer", "name", if_b]
    if b:
        argv += ["netns", b]
    run(argv)
    if up:
        run(["ip", "link", "set", if_a, "up"], netns=a)
        run(["ip", "link", "set", if_b, "up"], netns=b)


@pytest.fixture
def netns_factory() -> Iterator:
    """Callable `netns_factory(prefix="t") -> Netns` (created, unique name); all deleted after."""
    made: list[Netns] = []

    def make(prefix: str = "t") -> Netns:
        ns = Netns(unique_name(f"ovnbgp-{prefix}"))
        made.append(ns)
        return ns.create()

    try:
        yield make
    finally:
        errors = []
        for ns in reversed(made):
            try:
                ns.delete()
            except Exception as e:  # noqa: BLE001 - delete the rest, then report
                errors.append(f"{ns.name}: {e}")
        if errors:
            raise RuntimeError("netns teardown failed: " + "; ".join(errors))

"""What every target (kernel, OVS flows, FRR) reports back to the agent: one shape for all.

A target observes the node, plans the changes that make it match the desired state and
applies them; `apply()` (and the `reconcile()` convenience) returns a TargetResult:

    changed   the changes made (Change: verb, the op, the prefix for an exposure change)
    failed    the changes that could not be made (Problem: op, reason)
    held      changes kept back on purpose (an exposure whose steering failed)
    notices   what the plan does not do and why (a bridge that is missing: its objects wait;
              an object ovnbgp does not own in the way: left alone)

The agent counts, logs, retries and reports from these fields alone (metrics by target and
verb, `status` errors and waiting, `ovnbgp plan`), whatever the target.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from ovnbgp.model.records import DesiredState, IPNetwork


@dataclass(frozen=True)
class Notice:
    """Something the plan does not do, and why. Kinds:

    - "waiting": a bridge (or the dummy's VRF) is missing or down; its objects wait for it and
      what is in place for it is kept;
    - "conflict": an object ovnbgp does not own is in the way; it is left alone (logged as a
      warning);
    - "held": the bridge data is unusable (DesiredState.holds); what ovnbgp owns for bridges
      not mapped is kept, nothing of it withdrawn, until valid data says otherwise;
    - "kept": an object of ovnbgp's that is no longer wanted is not removed because the
      kernel would take objects ovnbgp does not own with it (the last IPv4 bridge IP).
    """

    kind: str  # "waiting" | "conflict" | "held" | "kept"
    subject: str
    reason: str

    def describe(self) -> str:
        return f"! {self.kind}: {self.subject}: {self.reason}"


class Op(Protocol):
    """One change of a target's plan."""

    def describe(self) -> str: ...


class Change(NamedTuple):
    """A change that was made. `exposure`: the prefix when the change put an exposure on the
    dummy or took it off (the agent logs those one by one, with their cause)."""

    verb: str  # "add" | "del" | "replace" | "set" | "reload"
    op: Op
    exposure: IPNetwork | None = None

    @property
    def description(self) -> str:
        return self.op.describe()


class Problem(NamedTuple):
    """A change that failed or was held back, and why."""

    op: Op
    reason: str

    @property
    def description(self) -> str:
        return self.op.describe()


@dataclass
class TargetResult:
    """What one pass of a target did (see the module docstring)."""

    changed: list[Change] = field(default_factory=list)
    failed: list[Problem] = field(default_factory=list)
    held: list[Problem] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)
    plan: Plan | None = None  # the plan this result is about (set by reconcile())

    @property
    def ok(self) -> bool:
        return not self.failed and not self.held

    @property
    def applied(self) -> int:
        return len(self.changed)

    def counts(self) -> Counter[str]:
        """Changes made, by verb."""
        return Counter(c.verb for c in self.changed)

    def done(self, verb: str, op: Op, exposure: IPNetwork | None = None) -> None:
        self.changed.append(Change(verb, op, exposure))

    def add_failure(self, op: Op, reason: object) -> None:
        """reason: a string, or anything with describe() (a kernel answer)."""
        self.failed.append(Problem(op, reason if isinstance(reason, str)
                                   else reason.describe()))  # type: ignore[attr-defined]

    def hold(self, op: Op, reason: str) -> None:
        self.held.append(Problem(op, reason))

    def waiting(self) -> list[Notice]:
        return [n for n in self.notices if n.kind == "waiting"]

    def lines(self) -> list[str]:
        return ([f"failed: {p.description}: {p.reason}" for p in self.failed]
                + [f"held: {p.description}: {p.reason}" for p in self.held])


class Plan(Protocol):
    """A target's pending changes, as `ovnbgp plan` prints them."""

    notices: list[Notice]

    def empty(self) -> bool: ...

    def change_lines(self) -> list[str]: ...


class Target(Protocol):
    """A part of the node the agent keeps in line with the desired state.

    observe(desired) reads what is there, plan(desired, observed) is pure, apply(plan)
    changes the node. reconcile(desired, full=...) is the three in one: `full` is a periodic
    resync or a retry (look at everything again, compare what is slow to compare); without
    it the target may reuse what it knows (the kernel plans only the keys that changed).
    """

    name: str

    def reconcile(self, desired: DesiredState, *, full: bool = False) -> TargetResult: ...


class Backoff:
    """When to retry a target that failed: `first` seconds after the first failure, doubling
    while the failures go on, up to `cap`; a success starts over. A transient error heals
    fast, a lasting one (a bridge left down, vtysh missing) does not spin."""

    def __init__(self, first: float = 5.0, cap: float = 120.0,
                 clock: Callable[[], float] = time.monotonic):
        self.first = first
        self.cap = cap
        self.clock = clock
        self.delay = first
        self.due_at: float | None = None

    @property
    def pending(self) -> bool:
        return self.due_at is not None

    def failed(self) -> None:
        """A failure: schedule a retry, unless one is scheduled already."""
        if self.due_at is None:
            self.due_at = self.clock() + self.delay
            self.delay = min(self.delay * 2, self.cap)

    def succeeded(self) -> None:
        """The delay starts over; a retry already scheduled still runs (a later pass that
        worked does not prove that what failed is fixed)."""
        self.delay = self.first

    def take(self) -> bool:
        """True (once) when the scheduled retry is due."""
        if self.due_at is not None and self.clock() >= self.due_at:
            self.due_at = None
            return True
        return False

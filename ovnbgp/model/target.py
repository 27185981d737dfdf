"""What every target (kernel, OVS flows, FRR) reports back to the agent."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Notice:
    """Something the plan does not do, and why: a missing bridge (its objects wait), or a
    conflict with an object ovnbgp does not own (left alone)."""

    kind: str  # "waiting" | "conflict"
    subject: str
    reason: str

    def describe(self) -> str:
        return f"! {self.kind}: {self.subject}: {self.reason}"

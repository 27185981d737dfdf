"""What every target (kernel, OVS flows, FRR) reports back to the agent."""

from __future__ import annotations

from dataclasses import dataclass


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

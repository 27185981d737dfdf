"""What a kernel plan keeps while the bridge data is unusable (DesiredState.holds).

ovn-bridge-mappings unset, empty or unparsable, a mapping to a bridge the local OVS DB lacks, or
no system-id (model.topology.Bridges): the agent cannot tell which exposures are stale, so it
withdraws none. Nothing ovnbgp owns for a device or table that is not one of the desired
bridges is removed (dummy addresses steered into such a table or with no steering of ours,
rules, routes, neighbours, proxy entries, bridge IPs, rt_tables lines), and a "held" notice
says what was kept, until valid data says otherwise. Bridges that are mapped and exist are
reconciled as usual.
"""

from __future__ import annotations

from collections import Counter, defaultdict

from ovnbgp.kernel.objects import KernelState, Notice
from ovnbgp.model.records import DesiredState, IPNetwork


class Hold:
    """Decides, and counts, what one plan keeps (see the module docstring)."""

    def __init__(self, desired: DesiredState):
        self.reasons = sorted(h.reason for h in desired.holds)
        self.on = bool(self.reasons)
        self.devs = {b.name for b in desired.bridges}
        self.tables = {b.table for b in desired.bridges}
        self.kept: Counter[str] = Counter()

    def keeps(self, what: str, dev: str | None = None, table: int | None = None) -> bool:
        """True (and counted) when an owned object on `dev` / in `table` must stay."""
        if not self.on:
            return False
        if (dev is not None and dev not in self.devs) or (table is not None
                                                          and table not in self.tables):
            self.kept[what] += 1
            return True
        return False

    def notice(self) -> Notice:
        kept = ", ".join(f"{n} {what}(s)" for what, n in sorted(self.kept.items())) or "nothing"
        return Notice("held", "bridge mappings",
                      f"{'; '.join(self.reasons)}: unusable bridge data; kept in place for "
                      f"bridges not mapped: {kept}")


def steered_tables(observed: KernelState, proto: int) -> dict[IPNetwork, set[int]]:
    """Prefix -> the tables ovnbgp's rules (`to PREFIX lookup T`) and routes steer it into."""
    out: dict[IPNetwork, set[int]] = defaultdict(set)
    for r in observed.rules:
        if r.protocol == proto and r.dst is not None:
            out[r.dst].add(r.table)
    for rt in observed.routes:
        if rt.protocol == proto:
            out[rt.dst].add(rt.table)
    return out

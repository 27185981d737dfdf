"""The union of all contributions: reference-counted outputs and the choice between claims."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from typing import Any

from ovnbgp.model.claims import EMPTY, Claim, Contribution
from ovnbgp.model.kindset import KindSet
from ovnbgp.model.records import (
    BridgeHold,
    BridgeSetup,
    DesiredState,
    Exposure,
    ExposureKind,
    FlowSpec,
    IPNetwork,
    Neighbour,
    Problem,
    ProxyNeighbour,
    Route,
    Rule,
    VlanDevice,
)
from ovnbgp.model.topology import Context

OUTPUT_TYPES = (Exposure, Rule, Route, Neighbour, BridgeSetup, FlowSpec, ProxyNeighbour, BridgeHold,
                VlanDevice)
# The kinds with one object per exposed prefix: handed out as KindSets (model/kindset.py), so
# an event costs its change, not a frozenset of 100k objects. The others are a few per bridge.
LAZY_TYPES = (Exposure, Rule, Route, Neighbour)


class Aggregate:
    """The union of all contributions, with duplicate-prefix resolution and reference counts.

    An object (route, rule, ...) stays in the result while at least one contribution or one
    exposed claim needs it.

    Several rows claiming one prefix (a second port whose `mac` names another VM's IP): the
    owner keeps it. The owner is the row whose claim is exposed: a conflicting claim never
    takes an established exposure away; the newcomer is refused with a warning naming both
    rows, and when the owner's claim goes the prefix is handed over to a remaining claimant.
    Without an owner (both rows appear in one batch, a cold start, or the owner left while
    several others remain) the row with the lowest Port_Binding uuid wins: a stable rule, so
    the same rows give the same choice on every node and every recomputation. The owners are
    memory, not data: `established` and `owners` seed them (ModelCache carries them over a
    rebuild; the agent keeps the owners of contested prefixes in its state directory, so a
    restart seeds them too and does not move a contested prefix to the other row).
    One row changing (a port migrating between chassis, its claim changing bridge or kind) is
    never a conflict: claims are compared by row.
    """

    def __init__(self, ctx: Context, established: Iterable[Exposure] = (),
                 owners: Mapping[IPNetwork, tuple[str, str]] | None = None):
        self.ctx = ctx
        # prefix -> (row, port) of the claim exposed for it: the owner a conflict cannot unseat
        self.owner: dict[IPNetwork, tuple[str, str]] = dict(owners or {})
        self.owner.update((e.prefix, (e.row, e.port)) for e in established)
        self.handovers: list[tuple[IPNetwork, tuple[str, str], tuple[str, str]]] = []
        self.contrib: dict[Hashable, Contribution] = {}
        # Plain dicts used as multisets (not Counter): frozenset(exact dict) reuses the stored
        # hashes, which makes materialising an 18k-exposure state ~10x cheaper.
        self.claims: dict[IPNetwork, dict[Claim, int]] = {}
        self.winner_out: dict[IPNetwork, tuple] = {}
        self.conflicts: dict[IPNetwork, tuple[Problem, ...]] = {}
        self.out: dict[type, dict[Hashable, int]] = {t: {} for t in OUTPUT_TYPES}
        self.problems: dict[Problem, int] = {}
        self.new_problems: list[Problem] = []
        # waiting reason -> distinct problems with it, kept by _inc/_dec_problem: the agent
        # reports them after every reconcile, and a walk over every problem cost O(rows).
        self.waiting: dict[str, int] = {}
        self._problems_changed = True
        self._dirty_prefixes: set[IPNetwork] = set()
        self._state: DesiredState | None = None
        self._frozen: dict[type, Any] = {t: frozenset() for t in OUTPUT_TYPES}
        # per lazy kind: the KindSet last handed out and what changed since (None: none yet,
        # nothing to track)
        self._current: dict[type, KindSet | None] = {t: None for t in LAZY_TYPES}
        self._added: dict[type, set] = {t: set() for t in LAZY_TYPES}
        self._removed: dict[type, set] = {t: set() for t in LAZY_TYPES}
        self._changed_types: set[type] = set(OUTPUT_TYPES)
        self._frozen_problems: frozenset[Problem] = frozenset()
        self._waiting: tuple[tuple[str, int], ...] = ()

    # reference counting
    def _inc(self, obj: Hashable) -> None:
        t = type(obj)
        c = self.out[t]
        n = c.get(obj, 0)
        c[obj] = n + 1
        if not n:
            self._changed_types.add(t)
            if self._current.get(t) is not None:
                removed = self._removed[t]
                if obj in removed:
                    removed.discard(obj)
                else:
                    self._added[t].add(obj)

    def _dec(self, obj: Hashable) -> None:
        t = type(obj)
        c = self.out[t]
        n = c[obj] - 1
        if n:
            c[obj] = n
        else:
            del c[obj]
            self._changed_types.add(t)
            if self._current.get(t) is not None:
                added = self._added[t]
                if obj in added:
                    added.discard(obj)
                else:
                    self._removed[t].add(obj)

    def _inc_problem(self, p: Problem) -> None:
        n = self.problems.get(p, 0) + 1
        self.problems[p] = n
        if n == 1:
            self.new_problems.append(p)
            self._problems_changed = True
            if p.waiting:
                self.waiting[p.waiting] = self.waiting.get(p.waiting, 0) + 1

    def _dec_problem(self, p: Problem) -> None:
        n = self.problems[p] - 1
        if n:
            self.problems[p] = n
        else:
            del self.problems[p]
            self._problems_changed = True
            if p.waiting:
                left = self.waiting[p.waiting] - 1
                if left:
                    self.waiting[p.waiting] = left
                else:
                    del self.waiting[p.waiting]

    def set(self, key: Hashable, new: Contribution) -> None:
        old = self.contrib.get(key, EMPTY)
        if old == new:
            return
        self._state = None
        if new is EMPTY:
            self.contrib.pop(key, None)
        else:
            self.contrib[key] = new
        for c in old.claims:
            cnt = self.claims[c.prefix]
            n = cnt[c] - 1
            if n:
                cnt[c] = n
            else:
                del cnt[c]
                if not cnt:
                    del self.claims[c.prefix]
            self._dirty_prefixes.add(c.prefix)
        for o in old.objects:
            self._dec(o)
        for p in old.problems:
            self._dec_problem(p)
        for c in new.claims:
            cnt = self.claims.setdefault(c.prefix, {})
            cnt[c] = cnt.get(c, 0) + 1
            self._dirty_prefixes.add(c.prefix)
        for o in new.objects:
            self._inc(o)
        for p in new.problems:
            self._inc_problem(p)

    def settle(self) -> None:
        """Re-decide the prefixes whose claims changed (see the class docstring)."""
        for prefix in self._dirty_prefixes:
            for o in self.winner_out.pop(prefix, ()):
                self._dec(o)
            for p in self.conflicts.pop(prefix, ()):
                self._dec_problem(p)
            claims = self.claims.get(prefix)
            before = self.owner.pop(prefix, None)
            if not claims:
                continue
            winner = self._winner(claims, before)
            owner = (winner.row, winner.port)
            self.owner[prefix] = owner
            if before is not None and before[0] != winner.row:
                self.handovers.append((prefix, before, owner))
            out = self._outputs(winner)
            for o in out:
                self._inc(o)
            self.winner_out[prefix] = out
            refused = {(c.row, c.port) for c in claims if c.row != winner.row}
            if refused:
                probs = tuple(sorted(
                    Problem(row, port, f"{prefix} is claimed by several ports: exposed for port "
                            f"{winner.port} (Port_Binding {winner.row}), refused for this one")
                    for row, port in refused))
                for p in probs:
                    self._inc_problem(p)
                self.conflicts[prefix] = probs
        self._dirty_prefixes.clear()

    @staticmethod
    def _winner(claims: Iterable[Claim], owner: tuple[str, str] | None) -> Claim:
        """The owner's claim if it still claims the prefix, else the lowest row uuid's."""
        rows: dict[str, list[Claim]] = {}
        for c in claims:
            rows.setdefault(c.row, []).append(c)
        row = owner[0] if owner is not None and owner[0] in rows else min(rows)
        return min(rows[row], key=Claim.sort_key)

    def contested_owners(self) -> dict[IPNetwork, tuple[str, str]]:
        """prefix -> (row, port) of the owner, for the prefixes several rows claim now."""
        return {p: self.owner[p] for p in self.conflicts if p in self.owner}

    def forget_unclaimed_owners(self) -> None:
        """Drop seeded owners of prefixes nobody claims (after the first settle)."""
        for prefix in [p for p in self.owner if p not in self.claims]:
            del self.owner[prefix]

    def _outputs(self, c: Claim) -> tuple:
        kcfg = self.ctx.cfg.kernel
        table = self.ctx.bridges.tables[c.bridge]
        exposure = Exposure(c.prefix, c.kind, c.bridge, c.port, c.row, c.vlan)
        out: list = [exposure]
        if kcfg.steering == "rules":
            out.append(Rule(kcfg.rule_priority, table, c.prefix, c.prefix.version))
        if c.kind is ExposureKind.TENANT_SUBNET:
            out.append(Route(table, c.prefix, exposure.dev, gateway=c.via))
        elif c.kind is not ExposureKind.TENANT_VM and (kcfg.steering == "table" or c.vlan):
            # On a VLAN network the table's default route (dev BRIDGE) is not the way: a host
            # route through the VLAN device, in either steering mode.
            out.append(Route(table, c.prefix, exposure.dev, scope_link=True))
        return tuple(out)

    def state(self) -> DesiredState:
        if self._state is None:
            f = self._frozen
            for t in self._changed_types:  # only the kinds of objects that changed
                f[t] = self._kind_set(t) if t in self._current else frozenset(self.out[t])
            self._changed_types.clear()
            if self._problems_changed:  # most events change no problem: reuse the last set
                self._frozen_problems = frozenset(self.problems)
                self._waiting = tuple(sorted(self.waiting.items()))
                self._problems_changed = False
            self._state = DesiredState(
                exposures=f[Exposure], rules=f[Rule], routes=f[Route], neighbours=f[Neighbour],
                bridges=f[BridgeSetup], flows=f[FlowSpec], proxy_neighbours=f[ProxyNeighbour],
                holds=f[BridgeHold], vlans=f[VlanDevice],
                problems=self._frozen_problems, waiting=self._waiting)
        return self._state

    def _kind_set(self, t: type) -> KindSet:
        """The next KindSet of kind `t`, linked from the last one with the change between."""
        def live() -> tuple[dict, set, set]:
            return self.out[t], self._added[t], self._removed[t]

        new = KindSet(live)
        old = self._current[t]
        if old is not None:
            old.succeeded_by(new, self._added[t], self._removed[t])
            self._added[t], self._removed[t] = set(), set()
        self._current[t] = new
        return new


# --- the cache -----------------------------------------------------------------------------

"""Incremental (change-scoped) planning: the kernel plan for one change of desired state.

An event changes a handful of records among 10k. When the last plan left the node exactly as
its desired state said (nothing failed, held or waiting, no conflict), only the kernel keys
the change touches can need work: diff.plan() runs on the records and observed objects of
those keys alone, so the same rules decide, at O(changes) instead of O(N).
"""

from __future__ import annotations

from collections.abc import Iterable

from ovnbgp.kernel.diff import all_devices, plan
from ovnbgp.kernel.objects import (
    KernelPlan,
    KernelState,
    RouteObj,
    RuleObj,
    iface_of,
    neigh_key,
    route_key,
    rule_key,
)
from ovnbgp.kernel.settings import KernelSettings
from ovnbgp.model.records import DesiredState, Exposure, IPNetwork


def _exposure_key(e: Exposure) -> IPNetwork:
    return e.prefix


_KEYED = (("exposures", _exposure_key), ("rules", rule_key), ("routes", route_key),
          ("neighbours", neigh_key))

# A catch-all rule (no `to`) is planned together with every rule of its slot (family, priority,
# table; see diff._rules). "table" steering has one or two rules there; "rules" steering has
# one per exposure, and a catch-all among them is a mode switch: the full plan does it.
CATCH_ALL_SLOT_MAX = 64


class _Several(set):
    """Index value for a key with more than one object (a plain object otherwise: a set per
    key would cost ~200 bytes each, megabytes at 10k)."""


def _index_add(idx: dict, key, obj) -> None:
    cur = idx.get(key)
    if cur is None:
        idx[key] = obj
    elif type(cur) is _Several:
        cur.add(obj)
    elif cur != obj:
        idx[key] = _Several((cur, obj))


def _index_discard(idx: dict, key, obj) -> None:
    cur = idx.get(key)
    if cur is None:
        return
    if type(cur) is _Several:
        cur.discard(obj)
        if len(cur) == 1:
            idx[key] = next(iter(cur))
    elif cur == obj:
        del idx[key]


def _index_get(idx: dict, key) -> tuple | _Several:
    cur = idx.get(key)
    if cur is None:
        return ()
    return cur if type(cur) is _Several else (cur,)


class DesiredIndex:
    """A desired state's exposures, rules, routes and neighbours by the kernel key each maps
    to (RuleObj.key, RouteObj.key, NeighObj.key, the exposed prefix), kept current from the
    differences between consecutive states (DesiredState.changes: O(change) between states
    of one ModelCache, a set difference otherwise)."""

    def __init__(self, desired: DesiredState):
        self.state = desired
        self.by_key: dict[str, dict] = {}
        for name, key in _KEYED:
            idx: dict = {}
            for rec in getattr(desired, name):
                _index_add(idx, key(rec), rec)
            self.by_key[name] = idx

    def advance(self, new: DesiredState) -> dict[str, set]:
        """Move to `new`; return the keys whose records changed, per kind."""
        touched: dict[str, set] = {}
        for name, key in _KEYED:
            keys: set = set()
            if getattr(self.state, name) is not getattr(new, name):
                idx = self.by_key[name]
                gone, came = new.changes(self.state, name)  # O(change) from the model
                for rec in gone:
                    k = key(rec)
                    _index_discard(idx, k, rec)
                    keys.add(k)
                for rec in came:
                    k = key(rec)
                    _index_add(idx, k, rec)
                    keys.add(k)
            touched[name] = keys
        self.state = new
        return touched

    def records(self, name: str, keys: Iterable) -> list:
        idx = self.by_key[name]
        return [rec for k in keys for rec in _index_get(idx, k)]

    def rule_keys(self) -> Iterable[tuple]:
        return self.by_key["rules"].keys()


class ObservedIndex:
    """The rules and routes of a KernelState by key (all of them, anyone's); kept current by
    the reconciler alongside the cached KernelState."""

    def __init__(self, observed: KernelState):
        self._rules: dict = {}
        self._routes: dict = {}
        for r in observed.rules:
            _index_add(self._rules, r.key, r)
        for rt in observed.routes:
            _index_add(self._routes, rt.key, rt)

    def rules(self, key: tuple) -> Iterable[RuleObj]:
        return _index_get(self._rules, key)

    def rule_keys(self) -> Iterable[tuple]:
        return self._rules.keys()

    def routes(self, key: tuple) -> Iterable[RouteObj]:
        return _index_get(self._routes, key)

    def add(self, obj: RuleObj | RouteObj) -> None:
        _index_add(self._rules if isinstance(obj, RuleObj) else self._routes, obj.key, obj)

    def discard(self, obj: RuleObj | RouteObj) -> None:
        _index_discard(self._rules if isinstance(obj, RuleObj) else self._routes, obj.key, obj)


def _catch_all_slots(keys: set, index: DesiredIndex, observed_index: ObservedIndex) -> set | None:
    """The rule keys (desired or observed) sharing a slot with a touched catch-all rule key;
    None when a slot holds more than CATCH_ALL_SLOT_MAX of them. O(rules), not O(exposures)."""
    slots = {k[:3] for k in keys if k[3] is None}
    if not slots:
        return set()
    same = {k for k in index.rule_keys() if k[:3] in slots}
    same |= {k for k in observed_index.rule_keys() if k[:3] in slots}
    return same if len(same) <= CATCH_ALL_SLOT_MAX else None


def plan_changes(index: DesiredIndex, new: DesiredState, observed: KernelState,
                 observed_index: ObservedIndex, settings: KernelSettings,
                 extra: dict[str, set] | None = None) -> KernelPlan | None:
    """The plan for the step from `index.state` to `new`, assuming `observed` matched
    `index.state` exactly (the caller's job: the last plan was clean) except on the keys of
    `extra` (kind -> keys where the node drifted: kernel/monitor.py). None when the step
    is not one this shortcut covers (bridges, proxy neighbours or a catch-all rule changed,
    a key wanted twice): the caller plans in full."""
    old = index.state
    if (new.bridges != old.bridges or new.proxy_neighbours != old.proxy_neighbours
            or new.vlans != old.vlans or new.holds or old.holds):
        return None
    touched = index.advance(new)
    for name, keys in (extra or {}).items():
        touched[name] |= keys
    slot_keys = _catch_all_slots(touched["rules"], index, observed_index)
    if slot_keys is None:
        return None
    touched["rules"] |= slot_keys
    picked = {name: index.records(name, touched[name]) for name, _k in _KEYED}
    for name, key in _KEYED:
        if len({key(r) for r in picked[name]}) != len(picked[name]):
            return None  # the same key wanted twice: the full plan reports it
    sub = DesiredState(exposures=frozenset(picked["exposures"]), rules=frozenset(picked["rules"]),
                       routes=frozenset(picked["routes"]),
                       neighbours=frozenset(picked["neighbours"]), bridges=new.bridges,
                       proxy_neighbours=new.proxy_neighbours, vlans=new.vlans)
    if not set(all_devices(sub)) <= observed.watched_devs:
        return None  # a device the observation did not look at
    if not ({r.table for r in sub.rules} | {r.table for r in sub.routes}) <= observed.watched_tables:
        return None
    dummy = settings.dummy_name
    have_dummy = observed.addrs.get(dummy, set())
    ifaces = {iface_of(p) for p in touched["exposures"]}
    addrs = {dev: a for dev, a in observed.addrs.items() if dev != dummy}
    addrs[dummy] = {a for a in ifaces if a in have_dummy}
    sub_observed = KernelState(
        links=observed.links, addrs=addrs,
        rules={r for k in touched["rules"] for r in observed_index.rules(k)},
        routes={r for k in touched["routes"] for r in observed_index.routes(k)},
        neighbours={k: observed.neighbours[k] for k in touched["neighbours"]
                    if k in observed.neighbours},
        proxies=observed.proxies, sysctls=observed.sysctls,
        rt_tables_text=observed.rt_tables_text, rt_tables_error=observed.rt_tables_error,
        created_addrs=observed.created_addrs, created_vlans=observed.created_vlans,
        watched_devs=observed.watched_devs,
        watched_tables=observed.watched_tables)
    return plan(sub, sub_observed, settings)

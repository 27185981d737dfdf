"""Kernel reconciler: VRF + dummy, exposed addresses, rt_tables, rules, routes, neighbours,
sysctls and bridge IPs, all over one long-lived rtnetlink socket (pyroute2; no `ip` commands).

    rec = KernelReconciler(cfg)                  # netns="name" to work in a namespace
    observed = rec.observe(desired)              # one dump of each table
    plan = rec.diff(desired, observed)           # pure (kernel/diff.py); plan.lines() prints it
    result = rec.apply(plan)                     # TargetResult: changed / failed / held / ok
    result = rec.reconcile(desired)              # the three, reusing the last observation;
                                                 # result.plan is the plan

Ownership and adoption are described in kernel/diff.py: ovnbgp marks the rules, routes and
neighbours it creates with its route protocol (kernel.route_protocol), owns the VRF and the
dummy by name, the bridge IPs listed in its state file and the rt_tables lines with its
marker. A fresh reconciler on a node that already has the right objects plans nothing
(nothing is deleted and re-added, no address flaps) and removes only stale objects it owns.

Order of apply (each step waits for the kernel's answers before the next):
 1. VRF and dummy (created, enslaved, up; never deleted or recreated);
 2. rt_tables file, 3. sysctls, 4. bridge IPs and proxy neighbours (kernel.ndp_proxy) added;
 5. withdrawn exposures: addresses removed from the dummy;
 6. steering added: neighbours, device routes, gateway routes, rules;
 7. stale steering removed: rules, gateway routes, device routes, neighbours;
 8. new exposures: addresses added to the dummy;
 9. stale proxy neighbours and bridge IPs removed.
A large plan with nothing stale to remove (a cold start) runs 6 and 8 in stages instead
(staging.py): a slice of the steering, then the addresses whose steering is all in, so the
first prefixes are advertised while the rest is still being added.
So an address is on the dummy (advertised) only while its steering is in place: a new
exposure whose rule or route failed in step 6 is held back (TargetResult.held), and the
steering of a withdrawn exposure whose address could not be removed in step 5 is kept.
A failure on one object (ENODEV, EEXIST from a foreign object, ...) is reported with that
object; the rest of the plan still applies. EEXIST on an add and ENOENT/ESRCH/EADDRNOTAVAIL on
a delete mean "already done".

Errors: invalid settings (constructor) or desired state (diff) raise KernelInputError naming
every bad object, before anything changes; a table that cannot be read (a dump interrupted
over and over, the namespace gone) raises NetlinkDumpError from observe() (or from apply()
re-reading the device list); every per-object kernel answer ends up in TargetResult.

Scale: requests are pipelined (nltransport.py), so 10k exposures apply in about the time
`ip -batch` needs for the same objects (bench/bench_kernel.py). observe() dumps the tables
once; reconcile() keeps that observation current with the changes it makes and dumps again
only when asked (full=True, e.g. on the periodic resync), after a failure, when the desired
state names devices or tables it did not look at, when a watched device appeared, went or
changed, or when notifications were lost. Other processes' changes to the objects it owns or
watches arrive as rtnetlink notifications (kernel/monitor.py; `watch(callback)` wakes the
daemon, `drifted()`, `link_changes()`): they are folded into the observation and their keys
planned again, so drift is repaired at an event's latency and cost. When the last
reconcile left the node exactly as wanted (nothing failed, held or waiting), the next one plans
only the kernel keys the change of desired state touches (plan_changes.py, indexes kept
current with each apply): an event costs O(changes), not O(N); `last_plan_scope` says which.

Steering modes (kernel.steering; the model emits the shapes, this reconciler applies either):
- "rules" (default, the reference design): one `ip rule to PREFIX lookup TABLE` per exposed
  prefix, and `default dev BRIDGE scope link` in the bridge's table. The kernel keeps rules in
  a list: every route lookup that reaches the ovnbgp priority walks all of them, including
  lookups for traffic ovnbgp does not steer (rules at 32000 come before `main` at 32766), and
  adding a rule walks the list to find its place (O(N^2) for N exposures).
- "table": one `ip rule lookup TABLE` per bridge and family, and a host route per exposed
  prefix (`PREFIX dev BRIDGE scope link`, tenant subnets `via` their cr-lrp) in the table,
  with no default route, so a lookup that finds nothing there falls through to the next
  rule (`main`). Routes live in a trie: lookup and insertion do not grow with N. The cost is
  one extra (usually failing) table lookup per bridge for traffic ovnbgp does not steer.
Both expose the same prefixes in the same order. bench/bench_kernel.py measures both (apply
time, and the lookup cost for an unsteered destination). The kernel matches a rule without
`to` against every rule of its priority and table (EEXIST on add, first match on delete), so
switching modes removes the old rules of the slot first (diff.py, _rules).

One thread owns a reconciler.
"""

from __future__ import annotations

import errno
import logging
import time
from collections.abc import Iterable
from pathlib import Path

from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from pyroute2.netlink.rtnl.ndmsg import ndmsg

from ovnbgp.config import Config, KernelConfig
from ovnbgp.kernel import dependents, rt_tables, staging, state, sysctl
from ovnbgp.kernel import diff as diff_mod
from ovnbgp.kernel import messages as M
from ovnbgp.kernel import plan_changes as changes_mod
from ovnbgp.kernel.diff import overlaps
from ovnbgp.kernel.monitor import Drift, Monitor, apply_events
from ovnbgp.kernel.nltransport import NetlinkTransport, Result, pyroute2_parser
from ovnbgp.kernel.objects import (
    Action,
    AddrOp,
    KernelPlan,
    KernelState,
    LinkOp,
    LinkState,
    NeighOp,
    ProxyOp,
    RouteOp,
    RuleOp,
    SteeringOp,
)
from ovnbgp.kernel.settings import KernelSettings, valid_ifname
from ovnbgp.model.records import DesiredState, IPInterface, IPNetwork
from ovnbgp.model.target import TargetResult

log = logging.getLogger(__name__)

# Answers that mean the change is already in place.
_DONE_ON_ADD = {errno.EEXIST}
_DONE_ON_DEL = {errno.ENOENT, errno.ESRCH, errno.EADDRNOTAVAIL}


class KernelReconciler:
    """observe() / diff() / apply() for the node's kernel state (see the module docstring);
    a Target (model/target.py)."""

    name = "kernel"

    def __init__(self, cfg: Config | KernelConfig | KernelSettings, *, netns: str | None = None,
                 state_path: Path | str | None = None, advertise: bool = True,
                 rt_tables_file: Path | str | None = None, window: int = 256):
        """cfg: the agent Config (or its KernelConfig, or ready KernelSettings).
        netns: network namespace name (default: the current one).
        state_path: JSON record of bridge IPs ovnbgp added (default
        <agent.state_dir>/kernel-state.json with a Config; None disables it).
        advertise=False: steering only, no VRF/dummy (kernels without dummy/vrf).
        KernelInputError is raised for unusable settings."""
        if isinstance(cfg, KernelSettings):
            self.settings = cfg
        else:
            self.settings = KernelSettings.from_config(
                cfg, advertise=advertise,
                rt_tables_file=Path(rt_tables_file) if rt_tables_file else None)
            if state_path is None and isinstance(cfg, Config):
                state_path = cfg.agent.state_dir / "kernel-state.json"
        self.settings.check()
        self.netns = netns
        self.state_path = Path(state_path) if state_path else None
        self.nl = NetlinkTransport(netns, window=window)
        self.enc = M.Encoder()
        self._monitor = Monitor(netns, self._own_pid)
        self._monitor.route_protocol = self.settings.route_protocol
        self._drift = Drift()  # foreign changes seen since the last plan (kernel/monitor.py)
        self._on_drift = None
        self._observed: KernelState | None = None
        self._vlans_unobserved: set[str] | None = None  # the record, before any observe()
        self._observed_index: changes_mod.ObservedIndex | None = None  # set with _observed
        self._cache_ok = False
        self._link_dirty: set[str] = set()
        # The desired state the node matched exactly after the last reconcile (None when that
        # plan failed, held back or waited on something); its index plans the next change.
        self._clean_state: DesiredState | None = None
        self._index: changes_mod.DesiredIndex | None = None
        self.last_plan_scope = ""  # "changes" or "full": how reconcile() planned last
        self._dumped_at = 0.0  # time.monotonic() of the last observe()

    def close(self) -> None:
        self.nl.close()
        self._monitor.close()

    def __enter__(self) -> KernelReconciler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- observe ---------------------------------------------------------------------------

    def observe(self, desired: DesiredState | None = None) -> KernelState:
        """Read the kernel objects ovnbgp manages or must look at (desired's devices and
        tables, plus those its rt_tables lines and state file name)."""
        s = self.settings
        st = KernelState()
        try:
            st.rt_tables_text = rt_tables.read(s.rt_tables_file)
        except OSError as e:
            st.rt_tables_error = f"cannot read: {e.strerror or e}"
        owned_tables = rt_tables.owned(st.rt_tables_text)
        st.created_addrs = state.load(self.state_path)
        st.created_vlans = state.load_vlans(self.state_path)

        devs = {s.vrf_name, s.dummy_name} if s.advertise else set()
        devs |= set(owned_tables) | set(st.created_addrs) | st.created_vlans
        tables = set(owned_tables.values())
        if desired is not None:
            devs |= set(diff_mod.all_devices(desired))
            tables |= diff_mod.bridge_tables(desired)
            tables |= {r.table for r in desired.rules} | {r.table for r in desired.routes}
        st.watched_devs = frozenset(devs)
        st.watched_tables = frozenset(tables)

        self._drain_monitor()
        self._link_dirty.clear()
        self._drift.clear()
        st.links = self.read_links()
        # (before the dumps: a change made while they run is kept, not filtered out)
        self._monitor.watched_index = frozenset(st.links[d].index for d in devs if d in st.links)
        self._monitor.watched_tables = st.watched_tables
        self._observe_tables(st, devs, tables)
        # (names are checked before they become /proc/sys paths: diff() validates later)
        present_bridges = [d for d in devs - {s.vrf_name, s.dummy_name}
                           if d in st.links and valid_ifname(d)]
        st.sysctls = sysctl.read(sysctl.desired(present_bridges) or sysctl.GLOBAL, self.netns)
        self._observed = st
        self._observed_index = changes_mod.ObservedIndex(st)
        self._cache_ok = True
        self._dumped_at = time.monotonic()
        return st

    def observation_current(self, max_age: float) -> bool:
        """Whether the kept observation can stand in for a new dump on a periodic resync
        (the daemon then reconciles without `full`): it was dumped less than `max_age`
        seconds ago, every notification since was folded in (none lost, no watched device
        changed), the last reconcile left the node exactly as wanted, and what netlink does
        not notify (the rt_tables file, the sysctls: a few small reads) is unchanged. Drift
        in netlink objects is repaired as it happens (watch()); the dump stays the safety
        net for what a lost notification could hide, at most every `max_age` seconds."""
        self._drain_monitor()
        obs = self._observed
        if (obs is None or not self._cache_ok or self._clean_state is None or self._drift
                or self._link_dirty & obs.watched_devs
                or time.monotonic() - self._dumped_at >= max_age):
            return False
        try:
            text = rt_tables.read(self.settings.rt_tables_file)
        except OSError:
            return False
        if text != obs.rt_tables_text or obs.rt_tables_error:
            return False
        return sysctl.read(list(obs.sysctls), self.netns) == obs.sysctls

    def _observe_tables(self, st: KernelState, devs: set[str], tables: set[int]) -> None:
        """Dump addresses, rules, routes, neighbours and proxy neighbours into `st`: those of
        the watched devices and tables, and every object with ovnbgp's protocol."""
        proto = self.settings.route_protocol
        names = {ln.index: ln.name for ln in st.links.values()}
        watched_idx = {st.links[d].index for d in devs if d in st.links}

        for index, addr in self.nl.dump(M.addr_dump(), M.parse_addr, what="addresses",
                                        accept=lambda b, o: M.peek_addr_index(b, o) in watched_idx):
            st.addrs.setdefault(names[index], set()).add(addr)

        st.rules.update(self.nl.dump(M.rule_dump(), M.parse_rule, what="rules"))

        def want_route(b: bytes, o: int) -> bool:
            fam, table, rproto, rtype = M.peek_route(b, o)
            return (fam in M.VERSION and rtype == 1
                    and (rproto == proto or table in tables or table == M.RT_TABLE_COMPAT))

        for r in self.nl.dump(M.route_dump(), lambda b, o, n: M.parse_route(b, o, n, names),
                              what="routes", accept=want_route):
            if r.protocol == proto or r.table in tables:
                st.routes.add(r)

        def want_neigh(b: bytes, o: int) -> bool:
            fam, index, nstate = M.peek_neigh(b, o)
            return fam in M.VERSION and (index in watched_idx or bool(nstate & M.NUD_PERMANENT))

        for m in self.nl.dump(M.neigh_dump(), pyroute2_parser(ndmsg), what="neighbours",
                              accept=want_neigh):
            n = M.decode_neigh(m, names)
            if n is not None and (n.protocol == proto or n.dev in devs):
                st.neighbours[n.key] = n

        for m in self.nl.dump(M.proxy_dump(), pyroute2_parser(ndmsg), what="proxy neighbours"):
            pr = M.decode_proxy(m, names)
            if pr is not None and (pr.protocol == proto or pr.dev in devs):
                st.proxies[pr.key] = pr

    # --- diff ------------------------------------------------------------------------------

    def diff(self, desired: DesiredState, observed: KernelState) -> KernelPlan:
        """Pure: the plan that makes `observed` match `desired`. Raises KernelInputError
        (naming every invalid object) before anything is changed. Looks up, first, the foreign
        routes through a bridge whose IPv4 bridge IP may go (kernel/dependents.py)."""
        dependents.refresh(self.nl, desired, observed, self.settings.route_protocol)
        return diff_mod.plan(desired, observed, self.settings)

    # --- apply -----------------------------------------------------------------------------

    def apply(self, plan: KernelPlan) -> TargetResult:
        """Make the changes of `plan` in the documented order (one method per step); never
        raises for a kernel error on one object (it is in the result)."""
        res = TargetResult(notices=list(plan.notices))
        vlans_before = set(self._created_vlans)  # (before step 1, which may make some)
        links = self._apply_devices(plan, res)  # 1
        self._apply_files(plan, res)  # 2, 3
        created = self._created_addrs()
        created_before = {d: set(a) for d, a in created.items()}
        self._add_bridge_addrs(plan, links, res, created)  # 4
        self._run_proxies(plan.proxy_add, links, res)  # 4b
        not_withdrawn = self._withdraw(plan, links, res)  # 5
        if plan.steer_del or len(plan.dummy_add) <= staging.STAGE_STEERING:
            failed_steering = self._add_steering(plan, links, res)  # 6
            self._remove_steering(plan, links, res, not_withdrawn)  # 7
            self._expose(plan, links, res, failed_steering)  # 8
        else:  # a large plan with nothing stale (a cold start): 6 and 8 in stages
            self._steer_and_expose_in_stages(plan, links, res)
        self._run_proxies(plan.proxy_del, links, res)  # 9
        self._remove_bridge_addrs(plan, links, res, created)
        if plan.link_del:  # 10: stale VLAN devices of ovnbgp's, after everything through them
            self._apply_links(plan.link_del, res)
            links = {name: ln.index for name, ln in self.read_links().items()}
            if self._observed is not None:
                self._observed.links = {n: ln for n, ln in self._observed.links.items() if n in links}
        self._save_created(created, created_before, links, vlans_before)
        self._log_result(plan, res)
        return res

    @property
    def _created_vlans(self) -> set[str]:
        """The VLAN devices ovnbgp made (state file), kept current in the cached observation."""
        if self._observed is not None:
            return self._observed.created_vlans
        if self._vlans_unobserved is None:
            self._vlans_unobserved = state.load_vlans(self.state_path)
        return self._vlans_unobserved

    def _apply_devices(self, plan: KernelPlan, res: TargetResult) -> dict[str, int]:
        """Step 1, the VRF, the dummy and VLAN devices; returns the device indexes for the
        other steps."""
        cache = self._observed
        if plan.links:
            self._apply_links(plan.links, res)
        self._drain_monitor()
        if plan.links or cache is None or not self._cache_ok or self._link_dirty:
            current = self.read_links()
        else:  # no device changed since the observation: its index map is current
            current = cache.links
        if cache is not None:
            cache.links = current
        return {name: ln.index for name, ln in current.items()}

    def _apply_files(self, plan: KernelPlan, res: TargetResult) -> None:
        """Steps 2 and 3: the rt_tables file and the sysctls."""
        cache = self._observed
        if plan.rt_tables is not None:
            try:
                rt_tables.write(plan.rt_tables.path, plan.rt_tables.text)
                res.done(plan.rt_tables.verb, plan.rt_tables)
                if cache is not None:
                    cache.rt_tables_text = plan.rt_tables.text
            except OSError as e:
                res.add_failure(plan.rt_tables, f"cannot write: {e.strerror or e}")
        if plan.sysctls:
            errors = sysctl.write({op.path: op.value for op in plan.sysctls}, self.netns)
            for op in plan.sysctls:
                if op.path in errors:
                    res.add_failure(op, errors[op.path])
                else:
                    res.done(op.verb, op)
                    if cache is not None:
                        cache.sysctls[op.path] = op.value

    def _created_addrs(self) -> dict[str, set[IPInterface]]:
        """The bridge IPs ovnbgp added (state file), as a copy to update."""
        cache = self._observed
        known = cache.created_addrs if cache is not None else state.load(self.state_path)
        return {d: set(a) for d, a in known.items()}

    def _add_bridge_addrs(self, plan: KernelPlan, links: dict[str, int], res: TargetResult,
                          created: dict[str, set[IPInterface]]) -> None:
        """Step 4: bridge IPs; the ones the kernel did not have are recorded as ovnbgp's."""
        for op, r in self._run_addrs(plan.bridge_addr_add, links, res):
            if r.errno == 0:  # EEXIST: the address was there already, not ours to record
                created.setdefault(op.dev, set()).add(op.address)

    def _withdraw(self, plan: KernelPlan, links: dict[str, int],
                  res: TargetResult) -> list[IPNetwork]:
        """Step 5: withdrawn exposures off the dummy; returns the ones still on it."""
        return [op.address.network for op, r in self._run_addrs(plan.dummy_del, links, res)
                if r.errno and r.errno not in _DONE_ON_DEL]

    def _add_steering(self, plan: KernelPlan, links: dict[str, int],
                      res: TargetResult) -> list[tuple[int | None, IPNetwork | None, int]]:
        """Step 6: steering added; returns the (table, destination, family) that failed."""
        return [_scope(op) for op, r in self._run_steering(plan.steer_add, links, res)
                if not self._ok(op, r)]

    def _steer_and_expose_in_stages(self, plan: KernelPlan, links: dict[str, int],
                                    res: TargetResult) -> None:
        """Steps 6 and 8 interleaved (staging.py): each exposure still goes on the dummy only
        after its steering is in, but the first ones do not wait for all N rules or routes."""
        failed: list[tuple[int | None, IPNetwork | None, int]] = []
        for steering, addrs in staging.stages(plan.steer_add, plan.dummy_add):
            failed += [_scope(op) for op, r in self._run_steering(steering, links, res)
                       if not self._ok(op, r)]
            self._expose_ops(addrs, links, res, failed)

    def _remove_steering(self, plan: KernelPlan, links: dict[str, int], res: TargetResult,
                         not_withdrawn: list[IPNetwork]) -> None:
        """Step 7: stale steering removed, except for exposures still on the dummy."""
        dels: list[SteeringOp] = []
        for op in plan.steer_del:
            dst = _scope(op)[1]
            if not_withdrawn and any(overlaps(dst, n) for n in not_withdrawn):
                res.hold(op, "kept: an exposure it steers for is still on the dummy")
            else:
                dels.append(op)
        list(self._run_steering(dels, links, res))

    def _expose(self, plan: KernelPlan, links: dict[str, int], res: TargetResult,
                failed_steering: list[tuple[int | None, IPNetwork | None, int]]) -> None:
        """Step 8: new exposures onto the dummy, only those whose steering is in place."""
        self._expose_ops(plan.dummy_add, links, res, failed_steering)

    def _expose_ops(self, ops: list[AddrOp], links: dict[str, int], res: TargetResult,
                    failed_steering: list[tuple[int | None, IPNetwork | None, int]]) -> None:
        adds: list[AddrOp] = []
        for op in ops:
            net = op.address.network
            bad = next((f for f in failed_steering
                        if f[2] == net.version and (f[0] is None or f[0] == op.table)
                        and overlaps(f[1], net)), None)
            if bad is not None:
                res.hold(op, f"held back: steering for {bad[1] or 'all'} (table {bad[0]}) failed")
            else:
                adds.append(op)
        list(self._run_addrs(adds, links, res))

    def _remove_bridge_addrs(self, plan: KernelPlan, links: dict[str, int], res: TargetResult,
                             created: dict[str, set[IPInterface]]) -> None:
        """Step 9 (after the stale proxy neighbours): stale bridge IPs ovnbgp added."""
        for op, r in self._run_addrs(plan.bridge_addr_del, links, res):
            if r.errno == 0 or r.errno in _DONE_ON_DEL:
                created.get(op.dev, set()).discard(op.address)

    def _save_created(self, created: dict[str, set[IPInterface]],
                      before: dict[str, set[IPInterface]], links: dict[str, int],
                      vlans_before: set[str]) -> None:
        """The state file of bridge IPs and VLAN devices ovnbgp added (written only when it
        changed). A VLAN device that is gone leaves the record: one made later under its
        name by someone else is not ovnbgp's."""
        created = {d: a for d, a in created.items() if a and d in links}
        vlans = {d for d in self._created_vlans if d in links}
        if created != before or vlans != vlans_before:
            try:
                state.save(self.state_path, created, vlans)
            except OSError as e:
                log.error("kernel: cannot write state file %s: %s", self.state_path, e)
        if self._observed is not None:
            self._observed.created_addrs = created
            self._observed.created_vlans = vlans
        else:
            self._vlans_unobserved = vlans

    def _log_result(self, plan: KernelPlan, res: TargetResult) -> None:
        if res.failed:
            self._cache_ok = False
        for line in res.lines():
            log.warning("kernel: %s", line)
        for n in plan.notices:
            (log.warning if n.kind == "conflict" else log.info)("kernel: %s", n.describe()[2:])
        if res.applied:
            log.info("kernel: %d changes applied (%d failed, %d held)", res.applied,
                     len(res.failed), len(res.held))

    def plan(self, desired: DesiredState, observed: KernelState) -> KernelPlan:
        """The Target protocol's name for diff()."""
        return self.diff(desired, observed)

    def reconcile(self, desired: DesiredState, *, full: bool = False) -> TargetResult:
        """diff + apply against the last observation, observing again when needed (`full`:
        always); the plan is in the result (`.plan`)."""
        self._drain_monitor()
        obs = self._observed
        fresh = (full or obs is None or not self._cache_ok
                 or bool(self._link_dirty & obs.watched_devs))
        plan = None if fresh or self._drift.full else self._plan_changes(desired)
        self.last_plan_scope = "changes" if plan is not None else "full"
        if plan is None:
            if (fresh or obs is None or not set(diff_mod.all_devices(desired)) <= obs.watched_devs
                    or not diff_mod.bridge_tables(desired) <= obs.watched_tables):
                obs = self.observe(desired)
            plan = self.diff(desired, obs)
        self._drift.clear()  # the plan covers it (drift seen during apply stays for the next)
        self._clean_state = None
        result = TargetResult(notices=list(plan.notices)) if plan.empty() else self.apply(plan)
        result.plan = plan
        if not (plan.notices or result.failed or result.held) and self._cache_ok:
            self._clean_state = desired
            if self._index is None or self._index.state is not desired:
                self._index = changes_mod.DesiredIndex(desired)  # O(N), here on the full path
        if self._drift and self._on_drift is not None:
            self._on_drift()  # foreign changes seen while applying: another pass
        return result

    def drifted(self) -> bool:
        """Whether a foreign change to what ovnbgp owns or watches was seen since the last
        reconcile (folds the queued notifications into the cached observation first)."""
        self._drain_monitor()
        obs = self._observed
        return bool(self._drift) or not self._cache_ok or (
            obs is not None and bool(self._link_dirty & obs.watched_devs))

    def watch(self, on_drift) -> None:
        """Call on_drift() (from a monitor thread) when a kernel notification may be drift;
        the owner thread then calls reconcile(), which plans only the keys that drifted."""
        self._on_drift = on_drift
        self._monitor.watch(on_drift)

    def _own_pid(self) -> int:
        """The port id of the request socket: notifications with it are our own changes."""
        return self.nl.port_id

    def _plan_changes(self, desired: DesiredState) -> KernelPlan | None:
        """The plan for the change since the last clean reconcile, from the keys it touches;
        None when it must be planned in full."""
        base, index = self._clean_state, self._index
        if (base is None or index is None or index.state is not base or self._observed is None
                or self._observed_index is None):
            return None
        plan = changes_mod.plan_changes(index, desired, self._observed, self._observed_index,
                                     self.settings, extra=self._drift.keys)
        if plan is None:
            self._index = None  # advanced part-way; rebuilt after the full plan
        return plan

    def link_changes(self) -> set[str]:
        """Names of watched devices (the VRF, the dummy, bridges and devices of the last
        observation) that appeared, disappeared or changed since the last observe() (drains
        the link monitor). The daemon can poll this (or select on
        `link_monitor_fileno()`) to reconcile at once when a provider bridge appears."""
        if self._drain_monitor() and self._on_drift is not None:
            # This drain (the loop's housekeeping) may have read the notifications before the
            # monitor thread woke for them: that thread then finds nothing and calls nobody,
            # and the drift would wait for the next event (seen in bench_agent at 10k).
            self._on_drift()
        return set(self._link_dirty)

    def link_monitor_fileno(self) -> int:
        return self._monitor.fileno()

    # --- internals ---------------------------------------------------------------------------

    def _drain_monitor(self) -> bool:
        """Fold the queued notifications into the cached observation (kernel/monitor.py);
        True when they were lost or made drift that was not recorded before."""
        changed, msgs, lost = self._monitor.take()
        if lost:  # notifications lost: everything may have changed
            self._cache_ok = False
            return True
        had = bool(self._drift)
        obs = self._observed
        if obs is not None:  # only devices ovnbgp looks at (tap churn is not news)
            changed &= obs.watched_devs
            if msgs and self._cache_ok and self._observed_index is not None:
                apply_events(msgs, obs, self._observed_index, self.settings.dummy_name,
                             self.settings.route_protocol, self._drift)
        self._link_dirty |= changed
        return bool(self._drift) and not had

    def read_links(self) -> dict[str, LinkState]:
        """The links by name (teardown uses it too)."""
        links = self.nl.dump(M.link_dump(), lambda b, o, n: M.decode_link(
            pyroute2_parser(ifinfmsg)(b, o, n)), what="links")
        return {ln.name: ln for ln in links if ln.name}

    def _apply_links(self, ops: list[LinkOp], res: TargetResult) -> None:
        for op in ops:
            index = {name: ln.index for name, ln in self.read_links().items()}
            master = index.get(op.master) if op.master else None
            if op.master and master is None:
                res.add_failure(op, f"master {op.master} does not exist")
                continue
            if op.link is not None and op.link not in index:
                res.add_failure(op, f"parent device {op.link} does not exist")
                continue
            if op.action is Action.DEL:
                self._delete_vlan(op, index, res)
                continue
            if op.action is Action.ADD:
                msg = M.link_create(op.name, op.kind or "", vrf_table=op.vrf_table,
                                    master=master, up=op.up,
                                    link=index[op.link] if op.link is not None else None,
                                    vlan_id=op.vlan_id)
            elif op.name in index:
                msg = M.link_set(index[op.name], master=master, up=op.up)
            else:
                res.add_failure(op, "device does not exist")
                continue
            r = self.nl.execute([msg])[0]
            if r.errno == 0 or (op.action is Action.ADD and r.errno == errno.EEXIST):
                res.done(op.verb, op, _exposure(op))
                if op.action is Action.ADD and op.kind == "vlan" and r.errno == 0:
                    self._created_vlans.add(op.name)  # made here: ovnbgp's (state file)
            else:
                res.add_failure(op, r)

    def _delete_vlan(self, op: LinkOp, index: dict[str, int], res: TargetResult) -> None:
        """Delete a VLAN device ovnbgp made (the plan checked the record and the users)."""
        if op.name not in index:
            res.done(op.verb, op)
        else:
            r = self.nl.execute([M.link_delete(index[op.name])])[0]
            if r.errno not in (0, errno.ENODEV):
                res.add_failure(op, r)
                return
            res.done(op.verb, op)
        self._created_vlans.discard(op.name)

    def _run_addrs(self, ops: list[AddrOp], links: dict[str, int], res: TargetResult):
        if not ops:
            return []
        msgs, sent = [], []
        for op in ops:
            if op.dev not in links:
                res.add_failure(op, Result(errno.ENODEV, f"device {op.dev} not found"))
                continue
            msgs.append(self.enc.addr(op.action is Action.ADD, links[op.dev], op.address))
            sent.append(op)
        out = []
        cache = self._observed
        for op, r in zip(sent, self.nl.execute(msgs)):
            add = op.action is Action.ADD
            done = r.errno == 0 or r.errno in (_DONE_ON_ADD if add else _DONE_ON_DEL)
            if done:
                res.done(op.verb, op, _exposure(op))
                if cache is not None:
                    have = cache.addrs.setdefault(op.dev, set())
                    (have.add if add else have.discard)(op.address)
            else:
                res.add_failure(op, r)
            out.append((op, r))
        return out

    def _run_proxies(self, ops: list[ProxyOp], links: dict[str, int], res: TargetResult) -> None:
        msgs, sent = [], []
        for op in ops:
            if op.proxy.dev not in links:
                if op.action is Action.ADD:
                    res.add_failure(op, Result(errno.ENODEV, f"device {op.proxy.dev} not found"))
                else:  # a delete on a device that is gone: the entry went with it
                    res.done(op.verb, op)
                continue
            msgs.append(M.proxy(op.action is Action.ADD, op.proxy, links[op.proxy.dev]))
            sent.append(op)
        cache = self._observed
        for op, r in zip(sent, self.nl.execute(msgs) if msgs else []):
            add = op.action is Action.ADD
            if r.errno == 0 or r.errno in (_DONE_ON_ADD if add else _DONE_ON_DEL):
                res.done(op.verb, op, _exposure(op))
                if cache is not None:
                    if add:
                        cache.proxies[op.proxy.key] = op.proxy
                    else:
                        cache.proxies.pop(op.proxy.key, None)
            else:
                res.add_failure(op, r)

    def _ok(self, op: SteeringOp, r: Result) -> bool:
        if r.errno == 0:
            return True
        if op.action is Action.DEL:
            return r.errno in _DONE_ON_DEL
        # EEXIST for a rule with `to` means an identical rule is there. Without `to` it may be
        # any rule of the same priority and table (diff.py, _rules), and a route add that
        # finds its slot taken is a conflict; a neighbour replace never answers EEXIST.
        return isinstance(op, RuleOp) and op.rule.dst is not None and r.errno == errno.EEXIST

    def _run_steering(self, ops: list[SteeringOp], links: dict[str, int], res: TargetResult):
        msgs, sent = [], []
        for op in ops:
            msg = self._steering_msg(op, links)
            if msg is None:
                dev = op.neigh.dev if isinstance(op, NeighOp) else op.route.dev  # type: ignore[union-attr]
                r = Result(errno.ENODEV, f"device {dev} not found")
                res.add_failure(op, r)
                yield op, r
                continue
            msgs.append(msg)
            sent.append(op)
        cache = self._observed
        for op, r in zip(sent, self.nl.execute(msgs) if msgs else []):
            if self._ok(op, r):
                res.done(op.verb, op, _exposure(op))
                if cache is not None and self._observed_index is not None:
                    _update_cache(cache, self._observed_index, op)
            else:
                res.add_failure(op, r)
            yield op, r

    def _steering_msg(self, op: SteeringOp, links: dict[str, int]):
        if isinstance(op, RuleOp):
            return self.enc.rule(op.action is Action.ADD, op.rule)
        if isinstance(op, RouteOp):
            dev = op.route.dev
            oif = None
            if dev is not None:
                if dev.startswith("#"):
                    oif = int(dev[1:])
                elif dev in links:
                    oif = links[dev]
                elif op.action is not Action.DEL:
                    return None
            return self.enc.route({Action.ADD: "add", Action.REPLACE: "replace",
                                   Action.DEL: "del"}[op.action], op.route, oif)
        if op.neigh.dev not in links:
            return None
        return M.neigh(op.action is Action.REPLACE, op.neigh, links[op.neigh.dev])


def _exposure(op: object) -> IPNetwork | None:
    """The exposed prefix of an address added to or removed from the dummy."""
    return op.address.network if isinstance(op, AddrOp) and op.role == "dummy" else None


_scope = staging.steering_scope  # (table, destination, family), for holding exposures back


def _update_cache(cache: KernelState, index: changes_mod.ObservedIndex, op: SteeringOp) -> None:
    """Record an applied steering change in the cached observation and its index."""
    if isinstance(op, RuleOp):
        if op.action is Action.ADD:
            cache.rules.add(op.rule)
            index.add(op.rule)
        else:
            cache.rules.discard(op.rule)
            index.discard(op.rule)
    elif isinstance(op, RouteOp):
        if op.action is Action.REPLACE:
            for r in [r for r in index.routes(op.route.key) if r.metric == op.route.metric
                      and r.protocol == op.route.protocol]:
                cache.routes.discard(r)
                index.discard(r)
        if op.action is Action.DEL:
            cache.routes.discard(op.route)
            index.discard(op.route)
        else:
            cache.routes.add(op.route)
            index.add(op.route)
    else:
        if op.action is Action.DEL:
            cache.neighbours.pop(op.neigh.key, None)
        else:
            cache.neighbours[op.neigh.key] = op.neigh


def describe_plan(plan: KernelPlan) -> Iterable[str]:
    """The plan as text lines (for `ovnbgp plan`)."""
    yield plan.summary()
    yield from plan.lines()

"""Kernel reconciler: VRF + dummy, exposed addresses, rt_tables, rules, routes, neighbours,
sysctls and bridge IPs, all over one long-lived rtnetlink socket (pyroute2; no `ip` commands).

    rec = KernelReconciler(cfg)                  # netns="name" to work in a namespace
    observed = rec.observe(desired)              # one dump of each table
    plan = rec.diff(desired, observed)           # pure (kernel/diff.py); plan.lines() prints it
    result = rec.apply(plan)                     # result.failed / result.held / result.ok
    plan, result = rec.reconcile(desired)        # the three, reusing the last observation

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
So an address is on the dummy (advertised) only while its steering is in place: a new
exposure whose rule or route failed in step 6 is held back (ApplyResult.held), and the
steering of a withdrawn exposure whose address could not be removed in step 5 is kept.
A failure on one object (ENODEV, EEXIST from a foreign object, ...) is reported with that
object; the rest of the plan still applies. EEXIST on an add and ENOENT/ESRCH/EADDRNOTAVAIL on
a delete mean "already done".

Errors: invalid settings (constructor) or desired state (diff) raise KernelInputError naming
every bad object, before anything changes; a table that cannot be read (a dump interrupted
over and over, the namespace gone) raises NetlinkDumpError from observe() (or from apply()
re-reading the device list); every per-object kernel answer ends up in ApplyResult.

Scale: requests are pipelined (nltransport.py), so 10k exposures apply in about the time
`ip -batch` needs for the same objects (bench/bench_kernel.py). observe() dumps the tables
once; reconcile() keeps that observation current with the changes it makes and dumps again
only when asked (refresh=True, e.g. on the periodic resync), after a failure, when the desired
state names devices or tables it did not look at, or when a watched device appeared, went or
changed (a link monitor socket; `link_changes()` for the daemon's loop). When the last
reconcile left the node exactly as wanted (nothing failed, held or waiting), the next one plans
only the kernel keys the change of desired state touches (diff.plan_changes, indexes kept
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
import ipaddress
import logging
from pathlib import Path
from typing import Iterable

from pyroute2.netlink.rtnl import RTMGRP_LINK
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from pyroute2.netlink.rtnl.ndmsg import ndmsg

from ovnbgp.model.records import DesiredState, IPNetwork
from ovnbgp.config import Config, KernelConfig
from ovnbgp.kernel import dependents
from ovnbgp.kernel import diff as diff_mod
from ovnbgp.kernel import messages as M
from ovnbgp.kernel import rt_tables, state, sysctl
from ovnbgp.kernel.diff import overlaps
from ovnbgp.kernel.nltransport import (NetlinkTransport, Result, _iter_headers, netlink_socket,
                                       pyroute2_parser)
from ovnbgp.kernel.objects import (
    Action,
    AddrOp,
    ApplyResult,
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

log = logging.getLogger(__name__)

# Answers that mean the change is already in place.
_DONE_ON_ADD = {errno.EEXIST}
_DONE_ON_DEL = {errno.ENOENT, errno.ESRCH, errno.EADDRNOTAVAIL}


class KernelReconciler:
    """observe() / diff() / apply() for the node's kernel state (see the module docstring)."""

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
        self._monitor = _LinkMonitor(netns)
        self._observed: KernelState | None = None
        self._observed_index: diff_mod.ObservedIndex | None = None  # set with _observed
        self._cache_ok = False
        self._link_dirty: set[str] = set()
        # The desired state the node matched exactly after the last reconcile (None when that
        # plan failed, held back or waited on something); its index plans the next change.
        self._clean_state: DesiredState | None = None
        self._index: diff_mod.DesiredIndex | None = None
        self.last_plan_scope = ""  # "changes" or "full": how reconcile() planned last

    def close(self) -> None:
        self.nl.close()
        self._monitor.close()

    def __enter__(self) -> "KernelReconciler":
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

        devs = {s.vrf_name, s.dummy_name} if s.advertise else set()
        devs |= set(owned_tables) | set(st.created_addrs)
        tables = set(owned_tables.values())
        if desired is not None:
            devs |= set(diff_mod.all_devices(desired))
            tables |= diff_mod.bridge_tables(desired)
            tables |= {r.table for r in desired.rules} | {r.table for r in desired.routes}
        st.watched_devs = frozenset(devs)
        st.watched_tables = frozenset(tables)

        self._drain_monitor()
        self._link_dirty.clear()
        st.links = self._read_links()
        names = {ln.index: ln.name for ln in st.links.values()}
        watched_idx = {st.links[d].index for d in devs if d in st.links}

        for index, addr in self.nl.dump(M.addr_dump(), M.parse_addr, what="addresses",
                                        accept=lambda b, o: M.peek_addr_index(b, o) in watched_idx):
            st.addrs.setdefault(names[index], set()).add(addr)

        st.rules.update(self.nl.dump(M.rule_dump(), M.parse_rule, what="rules"))

        proto = s.route_protocol

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

        # (names are checked before they become /proc/sys paths: diff() validates later)
        present_bridges = [d for d in devs - {s.vrf_name, s.dummy_name}
                           if d in st.links and valid_ifname(d)]
        st.sysctls = sysctl.read(sysctl.desired(present_bridges) or sysctl.GLOBAL, self.netns)
        self._observed = st
        self._observed_index = diff_mod.ObservedIndex(st)
        self._cache_ok = True
        return st

    # --- diff ------------------------------------------------------------------------------

    def diff(self, desired: DesiredState, observed: KernelState) -> KernelPlan:
        """Pure: the plan that makes `observed` match `desired`. Raises KernelInputError
        (naming every invalid object) before anything is changed. Looks up, first, the foreign
        routes through a bridge whose IPv4 bridge IP may go (kernel/dependents.py)."""
        dependents.refresh(self.nl, desired, observed, self.settings.route_protocol)
        return diff_mod.plan(desired, observed, self.settings)

    # --- apply -----------------------------------------------------------------------------

    def apply(self, plan: KernelPlan) -> ApplyResult:
        """Make the changes of `plan` in the documented order; never raises for a kernel
        error on one object (it is in the result)."""
        res = ApplyResult()
        cache = self._observed

        # 1. VRF and dummy
        if plan.links:
            self._apply_links(plan.links, res)
        self._drain_monitor()
        if plan.links or cache is None or not self._cache_ok or self._link_dirty:
            current = self._read_links()
        else:  # no device changed since the observation: its index map is current
            current = cache.links
        links = {name: ln.index for name, ln in current.items()}
        if cache is not None:
            cache.links = current

        # 2. rt_tables, 3. sysctls
        if plan.rt_tables is not None:
            try:
                rt_tables.write(plan.rt_tables.path, plan.rt_tables.text)
                res.applied += 1
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
                    res.applied += 1
                    if cache is not None:
                        cache.sysctls[op.path] = op.value

        # 4. bridge IPs
        created = {d: set(a) for d, a in (cache.created_addrs if cache else
                                           state.load(self.state_path)).items()}
        created_before = {d: set(a) for d, a in created.items()}
        for op, r in self._run_addrs(plan.bridge_addr_add, links, res):
            if r.errno == 0:  # EEXIST: the address was there already, not ours to record
                created.setdefault(op.dev, set()).add(op.address)

        # 4b. proxy neighbours (the IPv6 provider gateways) on the bridges
        self._run_proxies(plan.proxy_add, links, res)

        # 5. withdrawn exposures off the dummy
        not_withdrawn: list[IPNetwork] = []
        for op, r in self._run_addrs(plan.dummy_del, links, res):
            if r.errno and r.errno not in _DONE_ON_DEL:
                not_withdrawn.append(op.address.network)

        # 6. steering added
        failed_steering: list[tuple[int | None, IPNetwork | None, int]] = []
        for op, r in self._run_steering(plan.steer_add, links, res):
            if not self._ok(op, r):
                failed_steering.append(_scope(op))

        # 7. stale steering removed (not for exposures still on the dummy)
        dels: list[SteeringOp] = []
        for op in plan.steer_del:
            dst = _scope(op)[1]
            if not_withdrawn and any(overlaps(dst, n) for n in not_withdrawn):
                res.held.append((op, "kept: an exposure it steers for is still on the dummy"))
            else:
                dels.append(op)
        list(self._run_steering(dels, links, res))

        # 8. new exposures onto the dummy (only with their steering in place)
        adds: list[AddrOp] = []
        for op in plan.dummy_add:
            net = op.address.network
            bad = next((f for f in failed_steering
                        if f[2] == net.version and (f[0] is None or f[0] == op.table)
                        and overlaps(f[1], net)), None)
            if bad is not None:
                res.held.append((op, f"held back: steering for {bad[1] or 'all'} "
                                     f"(table {bad[0]}) failed"))
            else:
                adds.append(op)
        list(self._run_addrs(adds, links, res))

        # 9. stale proxy neighbours and bridge IPs
        self._run_proxies(plan.proxy_del, links, res)
        for op, r in self._run_addrs(plan.bridge_addr_del, links, res):
            if r.errno == 0 or r.errno in _DONE_ON_DEL:
                created.get(op.dev, set()).discard(op.address)
        created = {d: a for d, a in created.items() if a and d in links}
        if created != created_before:
            try:
                state.save(self.state_path, created)
            except OSError as e:
                log.error("kernel: cannot write state file %s: %s", self.state_path, e)
        if cache is not None:
            cache.created_addrs = created

        if res.failed:
            self._cache_ok = False
        for line in res.lines():
            log.warning("kernel: %s", line)
        for n in plan.notices:
            (log.warning if n.kind == "conflict" else log.info)("kernel: %s", n.describe()[2:])
        if res.applied:
            log.info("kernel: %d changes applied (%d failed, %d held)", res.applied,
                     len(res.failed), len(res.held))
        return res

    def reconcile(self, desired: DesiredState, *, refresh: bool = False
                  ) -> tuple[KernelPlan, ApplyResult]:
        """diff + apply against the last observation, observing again when needed."""
        self._drain_monitor()
        obs = self._observed
        fresh = (refresh or obs is None or not self._cache_ok
                 or bool(self._link_dirty & obs.watched_devs))
        plan = None if fresh else self._plan_changes(desired)
        self.last_plan_scope = "changes" if plan is not None else "full"
        if plan is None:
            if (fresh or obs is None or not set(diff_mod.all_devices(desired)) <= obs.watched_devs
                    or not diff_mod.bridge_tables(desired) <= obs.watched_tables):
                obs = self.observe(desired)
            plan = self.diff(desired, obs)
        self._clean_state = None
        result = ApplyResult() if plan.empty() else self.apply(plan)
        if not (plan.notices or result.failed or result.held) and self._cache_ok:
            self._clean_state = desired
            if self._index is None or self._index.state is not desired:
                self._index = diff_mod.DesiredIndex(desired)  # O(N), here on the full path
        return plan, result

    def _plan_changes(self, desired: DesiredState) -> KernelPlan | None:
        """The plan for the change since the last clean reconcile, from the keys it touches;
        None when it must be planned in full."""
        base, index = self._clean_state, self._index
        if base is None or index is None or index.state is not base or self._observed is None:
            return None
        plan = diff_mod.plan_changes(index, desired, self._observed, self._observed_index,
                                     self.settings)
        if plan is None:
            self._index = None  # advanced part-way; rebuilt after the full plan
        return plan

    def link_changes(self) -> set[str]:
        """Names of watched devices (the VRF, the dummy, bridges and devices of the last
        observation) that appeared, disappeared or changed since the last observe() (drains
        the link monitor). The daemon can poll this (or select on
        `link_monitor_fileno()`) to reconcile at once when a provider bridge appears."""
        self._drain_monitor()
        return set(self._link_dirty)

    def link_monitor_fileno(self) -> int:
        return self._monitor.fileno()

    # --- internals ---------------------------------------------------------------------------

    def _drain_monitor(self) -> None:
        changed = self._monitor.drain()
        if changed is None:  # events lost: everything may have changed
            self._cache_ok = False
            return
        if self._observed is not None:  # only devices ovnbgp looks at (tap churn is not news)
            changed &= self._observed.watched_devs
        self._link_dirty |= changed

    def _read_links(self) -> dict[str, LinkState]:
        links = self.nl.dump(M.link_dump(), lambda b, o, n: M.decode_link(
            pyroute2_parser(ifinfmsg)(b, o, n)), what="links")
        return {ln.name: ln for ln in links if ln.name}

    def _apply_links(self, ops: list[LinkOp], res: ApplyResult) -> None:
        for op in ops:
            index = {name: ln.index for name, ln in self._read_links().items()}
            master = index.get(op.master) if op.master else None
            if op.master and master is None:
                res.add_failure(op, f"master {op.master} does not exist")
                continue
            if op.action is Action.ADD:
                msg = M.link_create(op.name, op.kind or "", vrf_table=op.vrf_table,
                                    master=master, up=op.up)
            elif op.name in index:
                msg = M.link_set(index[op.name], master=master, up=op.up)
            else:
                res.add_failure(op, "device does not exist")
                continue
            r = self.nl.execute([msg])[0]
            if r.errno == 0 or (op.action is Action.ADD and r.errno == errno.EEXIST):
                res.applied += 1
            else:
                res.add_failure(op, r)

    def _run_addrs(self, ops: list[AddrOp], links: dict[str, int], res: ApplyResult):
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
                res.applied += 1
                if cache is not None:
                    have = cache.addrs.setdefault(op.dev, set())
                    (have.add if add else have.discard)(op.address)
            else:
                res.add_failure(op, r)
            out.append((op, r))
        return out

    def _run_proxies(self, ops: list[ProxyOp], links: dict[str, int], res: ApplyResult) -> None:
        msgs, sent = [], []
        for op in ops:
            if op.proxy.dev not in links:
                if op.action is Action.ADD:
                    res.add_failure(op, Result(errno.ENODEV, f"device {op.proxy.dev} not found"))
                continue  # a delete on a device that is gone: the entry went with it
            msgs.append(M.proxy(op.action is Action.ADD, op.proxy, links[op.proxy.dev]))
            sent.append(op)
        cache = self._observed
        for op, r in zip(sent, self.nl.execute(msgs) if msgs else []):
            add = op.action is Action.ADD
            if r.errno == 0 or r.errno in (_DONE_ON_ADD if add else _DONE_ON_DEL):
                res.applied += 1
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

    def _run_steering(self, ops: list[SteeringOp], links: dict[str, int], res: ApplyResult):
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
                res.applied += 1
                if cache is not None:
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


def _scope(op: SteeringOp) -> tuple[int | None, IPNetwork | None, int]:
    """(table, destination, family) a steering op is about, for holding exposures back."""
    if isinstance(op, RuleOp):
        return op.rule.table, op.rule.dst, op.rule.family
    if isinstance(op, RouteOp):
        return op.route.table, op.route.dst, op.route.family
    return op.table, ipaddress.ip_network(op.neigh.ip), op.neigh.ip.version


def _update_cache(cache: KernelState, index: diff_mod.ObservedIndex, op: SteeringOp) -> None:
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


class _LinkMonitor:
    """A second rtnetlink socket subscribed to link events (RTMGRP_LINK)."""

    def __init__(self, netns: str | None):
        self.sock = netlink_socket(netns)
        self.sock.bind((0, RTMGRP_LINK))
        self.sock.setblocking(False)

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        self.sock.close()

    def drain(self) -> set[str] | None:
        """Names in the link events queued so far; None if events were lost (ENOBUFS)."""
        names: set[str] = set()
        lost = False
        while True:
            try:
                buf = self.sock.recv(1 << 20)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as e:
                if e.errno == errno.ENOBUFS:
                    lost = True
                    continue
                raise
            for mtype, _f, _s, off, length in _iter_headers(buf):
                if mtype in (16, 17):  # RTM_NEWLINK, RTM_DELLINK
                    m = ifinfmsg(buf, offset=off, length=length)
                    m.decode()
                    name = m.get_attr("IFLA_IFNAME")
                    if name:
                        names.add(name)
        return None if lost else names


def describe_plan(plan: KernelPlan) -> Iterable[str]:
    """The plan as text lines (for `ovnbgp plan`)."""
    yield plan.summary()
    yield from plan.lines()

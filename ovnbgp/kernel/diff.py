"""Pure diff: DesiredState + what the kernel has -> KernelPlan. No I/O.

Ownership (what ovnbgp may change or remove; everything else is left alone):
- the VRF and the dummy, by name; every address on the dummy except IPv6 link-local;
- rules, routes, neighbours and proxy neighbours whose rtnetlink protocol is `route_protocol`
  (ovnbgp sets it on everything it creates, so a rule, route or neighbour the operator made is never ours,
  whatever its table or priority);
- bridge IPs that the state file says ovnbgp added;
- rt_tables lines with the `# ovnbgp` marker.

Adoption: an object that is already as wanted counts as done whoever made it (an operator's
identical rule is not duplicated and never removed). A kernel-learned (non-PERMANENT)
neighbour is taken over. An object of someone else's that is in the way (a foreign route for
the same destination in a bridge table, a foreign PERMANENT neighbour with another MAC, an
rt_tables line with another name for the id) is a conflict: reported as a notice, not touched,
and the exposures that depend on it are held back.

VLAN provider networks steer through a VLAN device BRIDGE.VID (_vlan_devices): made by ovnbgp
and recorded in the state file, deleted (after the steering through it) when no VLAN network
needs it; one made by someone else is used when it is exactly that VLAN on that bridge, never
deleted, and a conflict otherwise (its objects wait as for a missing bridge).

A provider bridge whose device does not exist yet, or is down: its rules, routes, neighbours,
bridge IPs, sysctls and new exposures wait (a notice); what is already in place for it is kept
(no withdrawal while OVS recreates the bridge). They are applied once the device is there and up.

Unusable bridge data (desired.holds) holds in the same spirit: see kernel/hold.py.

Bridge IPs and the kernel's side effects: deleting a device's last IPv4 address makes the kernel
flush every IPv4 route through the device (in every table) and every IPv4 neighbour on it,
PERMANENT ones included. So a bridge IP ovnbgp added is not removed while it is the device's
last IPv4 address and objects ovnbgp does not own depend on it (kernel/dependents.py); a "kept"
notice names them. IPv6 has no such flush (the route and neighbour of the address itself only),
so IPv6 bridge IPs are removed as before.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Iterable

from ovnbgp.config import VLAN_DEV_RE
from ovnbgp.kernel import rt_tables, sysctl
from ovnbgp.kernel.dependents import foreign_users
from ovnbgp.kernel.hold import Hold, steered_tables
from ovnbgp.kernel.objects import (
    DEFAULT_METRIC,
    Action,
    AddrOp,
    KernelPlan,
    KernelState,
    LinkOp,
    NeighObj,
    NeighOp,
    Notice,
    ProxyObj,
    ProxyOp,
    RouteObj,
    RouteOp,
    RtTablesOp,
    RuleObj,
    RuleOp,
    SysctlOp,
    iface_of,
)
from ovnbgp.kernel.settings import KernelSettings, validate
from ovnbgp.model.records import BridgeSetup, DesiredState, Exposure, IPInterface, IPNetwork

_LINK_LOCAL6 = ipaddress.IPv6Network("fe80::/10")


def ours_on_dummy(addr: IPInterface) -> bool:
    """Addresses on the dummy that ovnbgp manages: all but the kernel's IPv6 link-local."""
    return not (addr.version == 6 and addr.ip in _LINK_LOCAL6)


def net_key(n: IPNetwork | None) -> tuple[int, int, int]:
    """A cheap sort key (comparing ipaddress objects is slow at 10k)."""
    if n is None:
        return (0, -1, -1)
    return (n.version, int(n.network_address), n.prefixlen)


def overlaps(a: IPNetwork | None, b: IPNetwork) -> bool:
    """`a` None means "all of the family" (a rule without `to`)."""
    if a is None:
        return True
    return a.version == b.version and a.overlaps(b)


def plan(desired: DesiredState, observed: KernelState, settings: KernelSettings) -> KernelPlan:
    """The changes that make `observed` match `desired` (see the module docstring)."""
    settings.check()
    validate(desired, settings)
    proto = settings.route_protocol
    p = KernelPlan()
    hold = Hold(desired)

    # --- provider bridges: present or waiting ----------------------------------------
    bridges = {b.name: b for b in desired.bridges}
    # A bridge that is down waits too: the kernel refuses routes through a device that is not
    # up (ENETDOWN), and an exposure without its steering would be a black hole.
    missing = {name for name in bridges
               if name not in observed.links or not observed.links[name].up}
    missing_tables = {bridges[n].table for n in missing}
    table_of = {b.name: b.table for b in desired.bridges}
    for name in sorted(missing):
        n_exp = sum(1 for e in desired.exposures if e.bridge == name) if settings.advertise else 0
        state = "device not found" if name not in observed.links else "device is down"
        p.notices.append(Notice("waiting", f"bridge {name}",
                                f"{state}; its steering and {n_exp} new exposures wait"))

    # --- VRF and dummy -----------------------------------------------------------------
    dummy_ours, can_add = False, False
    if settings.advertise:
        dummy_ours, can_add = _links(p, observed, settings)

    # --- VLAN devices: what waits for one is treated like a missing bridge's ---------------
    vlans_waiting, vlans_ready = _vlan_devices(p, desired, observed, proto, missing, hold)

    _rt_tables(p, desired, observed, settings, hold)
    _bridge_setup(p, observed, bridges, missing, vlans_ready)
    _bridge_addr_dels(p, bridges, observed, proto, hold)
    missing = missing | vlans_waiting

    _proxies(p, desired, observed, proto, missing, hold)

    # --- steering: neighbours, routes, rules ---------------------------------------------
    conflicts: list[tuple[int | None, IPNetwork | None, int]] = []  # (table, dst, family)
    _neighbours(p, desired, observed, proto, missing, table_of, conflicts, hold)
    _routes(p, desired, observed, proto, missing, missing_tables, conflicts, hold)
    _rules(p, desired, observed, proto, missing_tables, conflicts, hold)

    # --- exposures on the dummy ----------------------------------------------------------
    if settings.advertise:
        _exposures(p, desired, observed, settings, dummy_ours, can_add, missing, table_of,
                   conflicts, hold)
    if hold.on:
        p.notices.append(hold.notice())
    return p


def _rt_tables(p: KernelPlan, desired: DesiredState, observed: KernelState,
               settings: KernelSettings, hold: Hold) -> None:
    """ovnbgp's lines in the rt_tables file (a line of the operator's is a conflict)."""
    if observed.rt_tables_error is not None:
        p.notices.append(Notice("conflict", f"rt_tables {settings.rt_tables_file}",
                                observed.rt_tables_error))
        return
    want_lines = {b.name: b.table for b in desired.bridges}
    if hold.on:  # the lines of bridges not mapped stay while held
        for name, table in rt_tables.owned(observed.rt_tables_text).items():
            if name not in want_lines and table not in want_lines.values():
                want_lines[name] = table
                hold.kept["rt_tables line"] += 1
    upd = rt_tables.update(observed.rt_tables_text, want_lines)
    for c in upd.conflicts:
        p.notices.append(Notice("conflict", f"rt_tables {settings.rt_tables_file}", c))
    if upd.changed:
        p.rt_tables = RtTablesOp(str(settings.rt_tables_file), upd.text, upd.added, upd.removed)


def _bridge_setup(p: KernelPlan, observed: KernelState, bridges: dict[str, BridgeSetup],
                  missing: set[str], vlans: list[str]) -> None:
    """Sysctls and bridge IPs of the present bridges (and the sysctls of the VLAN devices
    there or made by this plan: rp_filter off, proxy_arp, proxy_ndp, as on a bridge)."""
    present = sorted(set(bridges) - missing)
    for path, value in sysctl.desired(present + vlans).items():
        old = observed.sysctls.get(path)
        if old != value:
            p.sysctls.append(SysctlOp(path, value, old))
    for name in present:
        have = observed.addrs.get(name, set())
        for a in sorted(bridges[name].addresses, key=_addr_sort):
            if a not in have:
                p.bridge_addr_add.append(AddrOp(Action.ADD, name, a, role="bridge"))


def _bridge_addr_dels(p: KernelPlan, bridges: dict[str, BridgeSetup], observed: KernelState,
                      proto: int, hold: Hold) -> None:
    """Remove the bridge IPs ovnbgp added that are no longer wanted, except a last IPv4
    address that foreign routes or neighbours depend on (module docstring), or one held."""
    for dev, created in sorted(observed.created_addrs.items()):
        if dev not in observed.links:
            continue  # the device is gone and its addresses with it
        wanted = set(bridges[dev].addresses) if dev in bridges else set()
        have = observed.addrs.get(dev, set())
        gone = [a for a in sorted(created - wanted, key=_addr_sort) if a in have]
        if not gone or hold.keeps("bridge IP", dev=dev):
            continue
        left_v4 = [a for a in have if a.version == 4 and a not in gone]
        users = [] if left_v4 else foreign_users(observed, dev, proto)
        for a in gone:
            if a.version == 4 and users:
                p.notices.append(Notice("kept", f"bridge IP {a} on {dev}",
                                        f"not removed: it is the last IPv4 address of {dev} and "
                                        f"the kernel would flush {len(users)} object(s) ovnbgp "
                                        f"does not own with it (first: {users[0]})"))
                continue
            p.bridge_addr_del.append(AddrOp(Action.DEL, dev, a, role="bridge"))


def _vlan_devices(p: KernelPlan, desired: DesiredState, observed: KernelState, proto: int,
                  missing: set[str], hold: Hold) -> tuple[set[str], list[str]]:
    """The VLAN devices of VLAN provider networks: made when absent (and recorded as ovnbgp's
    by apply), used as they are when a device of that name is VLAN VID on the bridge whoever
    made it, a conflict otherwise (left alone: its network's steering and exposures wait).
    Returns (devices whose objects wait, devices there or made by this plan). The ones
    ovnbgp made that no network needs any more are deleted last (KernelPlan.link_del), except
    while held or while something not ovnbgp's depends on them (deleting a device flushes
    the routes through it and the neighbours on it)."""
    waiting: set[str] = set()
    ready: list[str] = []
    for v in sorted(desired.vlans):
        name = v.name
        if v.bridge in missing:
            waiting.add(name)
            continue
        have, parent = observed.links.get(name), observed.links[v.bridge]
        if have is None:
            p.links.append(LinkOp(Action.ADD, name, "vlan", up=True, link=v.bridge, vlan_id=v.vlan))
        elif have.kind != "vlan" or have.link != parent.index or have.vlan_id != v.vlan:
            what = (f"a {have.kind or 'device of unknown kind'}" if have.kind != "vlan" else
                    f"VLAN {have.vlan_id} on device #{have.link}")
            p.notices.append(Notice("conflict", f"device {name}",
                                    f"exists and is {what}, not VLAN {v.vlan} on {v.bridge}; "
                                    "left alone, its network's steering and exposures wait"))
            waiting.add(name)
            continue
        elif not have.up:
            if name not in observed.created_vlans:
                p.notices.append(Notice("waiting", f"device {name}", "is down and not "
                                        "ovnbgp's; its network's steering and exposures wait"))
                waiting.add(name)
                continue
            p.links.append(LinkOp(Action.SET, name, up=True))
        ready.append(name)
    wanted = {v.name for v in desired.vlans}
    for name in sorted(observed.created_vlans - wanted):
        have = observed.links.get(name)
        if have is None or have.kind != "vlan":
            continue
        m = VLAN_DEV_RE.fullmatch(name)
        if m is None or hold.keeps("VLAN device", dev=m["bridge"]):
            continue
        users = vlan_device_users(observed, name, proto)
        if users:
            p.notices.append(Notice("kept", f"device {name}",
                                    f"not deleted: {len(users)} object(s) ovnbgp does not own "
                                    f"depend on it (first: {users[0]})"))
            continue
        p.link_del.append(LinkOp(Action.DEL, name))
    return waiting, ready


def vlan_device_users(observed: KernelState, dev: str, proto: int) -> list[str]:
    """What is not ovnbgp's and would go with VLAN device `dev`: routes through it (any table,
    both families; observed.dependents) and PERMANENT neighbours on it."""
    out = list(observed.dependents.get(dev, ()))
    out += [str(n) for (ndev, _ip), n in sorted(observed.neighbours.items(), key=lambda kv: str(kv[0]))
            if ndev == dev and n.permanent and n.protocol != proto]
    return out


def _addr_sort(a: IPInterface) -> tuple:
    return (a.version, int(a.ip), a.network.prefixlen)


def _links(p: KernelPlan, observed: KernelState, s: KernelSettings) -> tuple[bool, bool]:
    """Plan the VRF and the dummy. Returns (the dummy is ovnbgp's: its stale addresses may be
    removed, the dummy can take new addresses after the plan: it is in the VRF)."""
    vrf = observed.links.get(s.vrf_name)
    dummy = observed.links.get(s.dummy_name)
    vrf_ok = True
    if vrf is None:
        p.links.append(LinkOp(Action.ADD, s.vrf_name, "vrf", vrf_table=s.vrf_table, up=True))
    elif vrf.kind != "vrf":
        p.notices.append(Notice("conflict", f"device {s.vrf_name}",
                                f"exists and is a {vrf.kind or 'device of unknown kind'}, not a VRF; "
                                "left alone, nothing is advertised"))
        vrf_ok = False
    else:
        if vrf.vrf_table != s.vrf_table:
            p.notices.append(Notice("conflict", f"VRF {s.vrf_name}",
                                    f"uses table {vrf.vrf_table}, config says {s.vrf_table}; "
                                    "not recreated (that would break FRR's import vrf)"))
        if not vrf.up:
            p.links.append(LinkOp(Action.SET, s.vrf_name, up=True))
    if dummy is None:
        p.links.append(LinkOp(Action.ADD, s.dummy_name, "dummy",
                              master=s.vrf_name if vrf_ok else None, up=True))
        return True, vrf_ok
    if dummy.kind != "dummy":
        p.notices.append(Notice("conflict", f"device {s.dummy_name}",
                                f"exists and is a {dummy.kind or 'device of unknown kind'}, not a "
                                "dummy; left alone, nothing is advertised"))
        return False, False
    want_master = vrf_ok and (vrf is None or dummy.master != vrf.index)
    if want_master or not dummy.up:
        p.links.append(LinkOp(Action.SET, s.dummy_name, master=s.vrf_name if want_master else None,
                              up=not dummy.up))
    return True, vrf_ok


def _proxies(p: KernelPlan, desired: DesiredState, observed: KernelState, proto: int,
             missing: set[str], hold: Hold) -> None:
    """Proxy NDP entries: added on present bridges (an identical entry of anyone's counts as
    done: the kernel keeps one entry per address and device), ovnbgp's stale ones removed."""
    wanted = {(n.dev, n.ip) for n in desired.proxy_neighbours}
    for dev, ip in sorted(wanted, key=lambda k: (k[0], k[1].version, int(k[1]))):
        if dev not in missing and (dev, ip) not in observed.proxies:
            p.proxy_add.append(ProxyOp(Action.ADD, ProxyObj(dev, ip, proto)))
    for key, have in sorted(observed.proxies.items(), key=lambda kv: (kv[0][0], kv[0][1].version,
                                                                     int(kv[0][1]))):
        if (have.protocol == proto and key not in wanted and have.dev in observed.links
                and not hold.keeps("proxy neighbour", dev=have.dev)):
            p.proxy_del.append(ProxyOp(Action.DEL, have))


def _neighbours(p: KernelPlan, desired: DesiredState, observed: KernelState, proto: int,
                missing: set[str], table_of: dict[str, int], conflicts: list, hold: Hold) -> None:
    wanted = {(n.dev, n.ip): n for n in desired.neighbours}
    for key, n in sorted(wanted.items(), key=lambda kv: (kv[0][0], kv[0][1].version, kv[0][1])):
        if n.dev in missing:
            continue
        obj = NeighObj(n.dev, n.ip, n.mac, True, proto)
        have = observed.neighbours.get(key)
        if have is not None and have.permanent and have.mac == n.mac:
            continue  # already right (ours or adopted)
        if have is not None and have.permanent and have.protocol != proto:
            p.notices.append(Notice("conflict", f"neigh {n.ip} dev {n.dev}",
                                    f"a PERMANENT entry with lladdr {have.mac} that ovnbgp did "
                                    "not create is there; left alone"))
            conflicts.append((table_of.get(n.dev), ipaddress.ip_network(n.ip), n.ip.version))
            continue
        p.steer_add.append(NeighOp(Action.REPLACE, obj, table_of.get(n.dev)))
    for key, have in sorted(observed.neighbours.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))):
        if have.protocol == proto and key not in wanted and not hold.keeps("neighbour", dev=have.dev):
            p.steer_del.append(NeighOp(Action.DEL, have, table_of.get(have.dev)))


def _routes(p: KernelPlan, desired: DesiredState, observed: KernelState, proto: int,
            missing: set[str], missing_tables: set[int], conflicts: list, hold: Hold) -> None:
    wanted: dict[tuple, RouteObj] = {}
    for r in desired.routes:
        obj = RouteObj(r.table, r.dst, r.dev, r.gateway, bool(r.scope_link) and r.dst.version == 4,
                       proto, DEFAULT_METRIC[r.dst.version])
        wanted[obj.key] = obj
    groups: dict[tuple, list[RouteObj]] = defaultdict(list)
    for have in observed.routes:
        if have.protocol == proto or have.key in wanted:
            groups[have.key].append(have)
    adds: list[RouteOp] = []
    dels: list[RouteOp] = []
    notes: list[tuple] = []
    for key in set(wanted) | set(groups):
        want = wanted.get(key)
        obs = groups.get(key, [])
        if want is not None and len(obs) == 1 and obs[0] == want:
            continue  # the common case: exactly ours, as wanted
        if len(obs) > 1:
            obs = sorted(obs, key=_route_sort)
        owned = [r for r in obs if r.protocol == proto]
        if want is not None and (want.table in missing_tables or want.dev in missing):
            continue  # waits for its bridge; keep what is there
        if want is None:
            dels += [RouteOp(Action.DEL, r) for r in owned
                     if not hold.keeps("route", dev=r.dev, table=r.table)]
            continue
        match = next((r for r in obs if r.same_path(want)), None)
        if match is not None:
            dels += [RouteOp(Action.DEL, r) for r in owned if r is not match]
            continue
        default_metric = DEFAULT_METRIC[want.family]
        blockers = [r for r in obs if r.protocol != proto and r.metric == default_metric]
        if blockers:
            notes.append((want.table, net_key(want.dst), str(want), str(blockers[0])))
            conflicts.append((want.table, want.dst, want.family))
            dels += [RouteOp(Action.DEL, r) for r in owned]
            continue
        same_slot = [r for r in owned if r.metric == default_metric]
        if same_slot:
            adds.append(RouteOp(Action.REPLACE, want))
            dels += [RouteOp(Action.DEL, r) for r in owned if r is not same_slot[0]]
        else:
            adds.append(RouteOp(Action.ADD, want))
            dels += [RouteOp(Action.DEL, r) for r in owned]
    for _t, _k, want_s, blocker in sorted(notes):
        p.notices.append(Notice("conflict", want_s, f"'{blocker}' (not ovnbgp's) is in the way; "
                                                    "left alone"))
    # Device routes first: a gateway route needs its gateway reachable in the table.
    adds.sort(key=lambda op: (op.route.gateway is not None, op.route.table, net_key(op.route.dst)))
    dels.sort(key=lambda op: (op.route.gateway is None, op.route.table, net_key(op.route.dst)))
    p.steer_add += adds
    p.steer_del += dels


def _route_sort(r: RouteObj) -> tuple:
    return (r.metric, r.protocol, r.dev or "", r.gateway is not None,
            int(r.gateway) if r.gateway is not None else 0, r.scope_link, r.type)


def _rules(p: KernelPlan, desired: DesiredState, observed: KernelState, proto: int,
           missing_tables: set[int], conflicts: list, hold: Hold) -> None:
    """Rules to add and remove (one function: the order of the removals and adds below is
    what the kernel's wildcard matching needs, explained here in one place).

    The kernel compares a new rule with the existing ones of the same priority, table and
    protocol treating an absent `to`/`from` as a wildcard: `from all lookup 200 priority
    32000 proto P` answers EEXIST while any `to X lookup 200 priority 32000 proto P` exists,
    and deleting it without `to` removes the first rule of that priority, table and protocol.
    (Rules of another protocol, i.e. not ovnbgp's, never clash.) So when a rule without `to`
    ("table" steering) shares its slot with ovnbgp rules that have one (switching steering
    modes), the stale ones are removed first, just before the adds.
    """
    wanted = {}
    for r in desired.rules:
        obj = RuleObj(r.family, r.priority, r.table, r.dst, proto)
        wanted[obj.key] = obj
    satisfied = {have.key for have in observed.rules if have.plain}
    stale: list[RuleObj] = []
    kept: set[tuple] = set()
    for have in observed.rules:
        if have.protocol != proto:
            continue
        key = have.key
        if have.plain and key in wanted and key not in kept:
            kept.add(key)
            continue
        if key not in wanted and hold.keeps("rule", table=have.table):
            continue
        stale.append(have)
    stale.sort(key=lambda o: (_rule_sort(o.key), o.selectors))
    stale_set = set(stale)

    def slot(r: RuleObj) -> tuple[int, int, int]:
        return (r.family, r.priority, r.table)

    def wildcard_clash(r: RuleObj) -> bool:
        """r would make ovnbgp's catch-all rule of its slot answer EEXIST."""
        return (r.protocol == proto and r.action == obj.action and r.key != obj.key
                and all(k in ("from", "tos") for k, _v in r.selectors))

    first: list[RuleOp] = []
    adds: list[RuleOp] = []
    todo = [k for k in wanted if k not in satisfied and wanted[k].table not in missing_tables]
    for key in sorted(todo, key=_rule_sort):
        obj = wanted[key]
        if obj.dst is None:
            clash = [r for r in observed.rules if slot(r) == slot(obj) and wildcard_clash(r)]
            kept_clash = [r for r in clash if r not in stale_set]
            if kept_clash:  # only if the desired state itself mixes both shapes in one slot
                p.notices.append(Notice("conflict", str(obj),
                                        f"'{kept_clash[0]}' is wanted in the same slot (the "
                                        "kernel would refuse the rule)"))
                conflicts.append((obj.table, None, obj.family))
                continue
            first += [RuleOp(Action.DEL, r) for r in clash]
        adds.append(RuleOp(Action.ADD, obj))
    early = {op.rule for op in first}
    add_slots = {slot(op.rule) for op in adds if op.rule.dst is not None}
    for old in stale:
        if old in early:
            continue
        if old.dst is None and not old.selectors and slot(old) in add_slots:
            first.append(RuleOp(Action.DEL, old))  # before rules its delete could match
        else:
            p.steer_del.append(RuleOp(Action.DEL, old))
    p.steer_add += first + adds


def _rule_sort(key: tuple) -> tuple:
    family, priority, table, dst = key
    return (family, priority, table, net_key(dst))


def _exposures(p: KernelPlan, desired: DesiredState, observed: KernelState, s: KernelSettings,
               dummy_ours: bool, can_add: bool, missing: set[str], table_of: dict[str, int],
               conflicts: list, hold: Hold) -> None:
    if not dummy_ours:
        return  # someone else's device has the name: reported by _links, not touched
    have = {a for a in observed.addrs.get(s.dummy_name, set()) if ours_on_dummy(a)}
    # one address per prefix; a prefix wanted on two bridges (the model never does that)
    # goes with the lowest bridge name
    chosen: dict[IPNetwork, Exposure] = {}
    for e in desired.exposures:
        other = chosen.get(e.prefix)
        if other is None or e.bridge < other.bridge:
            chosen[e.prefix] = e
    wanted: dict[IPInterface, int] = {}
    waiting = 0
    held: list[IPNetwork] = []
    for prefix, e in chosen.items():
        addr = iface_of(prefix)
        table = table_of[e.bridge]
        wanted[addr] = table
        if addr in have:
            continue
        if e.bridge in missing or e.dev in missing:
            waiting += 1
            continue
        if any(t == table and overlaps(dst, e.prefix) for t, dst, fam in conflicts
               if fam == e.prefix.version):
            held.append(e.prefix)
            continue
        if can_add:
            p.dummy_add.append(AddrOp(Action.ADD, s.dummy_name, addr, table))
    if held:
        held.sort(key=net_key)
        p.notices.append(Notice("conflict", f"{len(held)} exposures",
                                "held back: their steering conflicts with objects ovnbgp does not "
                                f"own (first {held[0]})"))
    if not can_add and any(a not in have for a in wanted):
        p.notices.append(Notice("waiting", f"dummy {s.dummy_name}",
                                f"not in VRF {s.vrf_name}; new exposures wait"))
    stale = sorted(have - set(wanted), key=_addr_sort)
    steered = steered_tables(observed, s.route_protocol) if hold.on and stale else {}
    for a in stale:
        tables = steered.get(a.network)
        if hold.on and (not tables or any(hold.keeps("exposure", table=t) for t in sorted(tables))):
            if not tables:
                hold.kept["exposure"] += 1  # no steering of ours says whose it was: kept
            continue
        p.dummy_del.append(AddrOp(Action.DEL, s.dummy_name, a))
    p.dummy_add.sort(key=lambda op: _addr_sort(op.address))


def bridge_tables(desired: DesiredState) -> set[int]:
    return {b.table for b in desired.bridges}


def all_devices(desired: DesiredState) -> Iterable[str]:
    names = {b.name for b in desired.bridges}
    names |= {v.name for v in desired.vlans}
    names |= {r.dev for r in desired.routes}
    names |= {n.dev for n in desired.neighbours}
    names |= {n.dev for n in desired.proxy_neighbours}
    return names

"""Records of the kernel reconciler: what was observed, the plan of changes, what happened.

Observed objects carry ipaddress values and device names (never raw netlink), so the diff
(kernel/diff.py) is pure and the plan prints like iproute2 commands (`ovnbgp plan`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from ovnbgp.model import ipcache
from ovnbgp.model.records import IPAddress, IPInterface, IPNetwork
from ovnbgp.model.target import Notice, TargetResult

RT_SCOPE_UNIVERSE = 0
RT_SCOPE_LINK = 253
RTN_UNICAST = 1
FR_ACT_TO_TBL = 1
# Metric the kernel gives a route added without one: 0 for IPv4, 1024 for IPv6.
DEFAULT_METRIC = {4: 0, 6: 1024}


def family_of(value: IPAddress | IPNetwork | IPInterface) -> int:
    return value.version


def iface_of(prefix: IPNetwork) -> IPInterface:
    """The address put on the dummy for a prefix: its network address with its prefix length.
    (Interned: building ipaddress objects is a good part of a 10k-exposure diff.)"""
    return ipcache.interface(prefix.version, int(prefix.network_address), prefix.prefixlen)


# --- keys ----------------------------------------------------------------------------------
# What makes two rules, routes or neighbours "the same slot" for the kernel. They read fields
# that the kernel objects below and the desired records (agent/records.py Rule, Route,
# Neighbour) both have, so the diff indexes either kind by the same key.


def rule_key(r) -> tuple[int, int, int, IPNetwork | None]:
    return (r.family, r.priority, r.table, r.dst)


def route_key(r) -> tuple[int, int, IPNetwork]:
    return (r.table, r.dst.version, r.dst)


def neigh_key(n) -> tuple[str, IPAddress]:
    return (n.dev, n.ip)


# --- observed ------------------------------------------------------------------------------


@dataclass(frozen=True)
class LinkState:
    index: int
    name: str
    kind: str | None = None  # IFLA_INFO_KIND: "vrf", "dummy", "bridge", "openvswitch", ...
    master: int | None = None
    up: bool = False
    vrf_table: int | None = None
    link: int | None = None  # IFLA_LINK: the parent device of a VLAN device
    vlan_id: int | None = None  # a VLAN device's VID


@dataclass(frozen=True, order=True)
class RuleObj:
    """An ip rule. `selectors` holds any match beyond `to DST` (from, iif, fwmark, ...), as
    (name, value) pairs; ovnbgp's rules have none. action is FR_ACT_TO_TBL for `lookup`."""

    family: int
    priority: int
    table: int
    dst: IPNetwork | None
    protocol: int = 0
    selectors: tuple[tuple[str, str], ...] = ()
    action: int = FR_ACT_TO_TBL

    @property
    def key(self) -> tuple[int, int, int, IPNetwork | None]:
        return rule_key(self)

    @property
    def plain(self) -> bool:
        return not self.selectors and self.action == FR_ACT_TO_TBL

    def __str__(self) -> str:
        v = "-6 " if self.family == 6 else ""
        to = f" to {self.dst}" if self.dst is not None else ""
        sel = "".join(f" {k} {val}" for k, val in self.selectors)
        act = f"lookup {self.table}" if self.action == FR_ACT_TO_TBL else f"action {self.action}"
        return f"{v}rule from all{sel}{to} {act} priority {self.priority} proto {self.protocol}"


@dataclass(frozen=True, order=True)
class RouteObj:
    """A unicast route in a table. `dev` is a device name ("#<ifindex>" if not known)."""

    table: int
    dst: IPNetwork
    dev: str | None
    gateway: IPAddress | None = None
    scope_link: bool = False
    protocol: int = 0
    metric: int = 0
    type: int = RTN_UNICAST

    @property
    def family(self) -> int:
        return self.dst.version

    @property
    def key(self) -> tuple[int, int, IPNetwork]:
        return route_key(self)

    def same_path(self, other: RouteObj) -> bool:
        """Same destination and next hop (IPv6 routes have no scope; metric not compared)."""
        return (self.key == other.key and self.dev == other.dev and self.gateway == other.gateway
                and self.type == other.type
                and (self.family == 6 or self.scope_link == other.scope_link))

    def __str__(self) -> str:
        v = "-6 " if self.family == 6 else ""
        dst = "default" if self.dst.prefixlen == 0 else str(self.dst)
        via = f" via {self.gateway}" if self.gateway is not None else ""
        dev = f" dev {self.dev}" if self.dev else ""
        scope = " scope link" if self.scope_link and self.family == 4 else ""
        metric = f" metric {self.metric}" if self.metric != DEFAULT_METRIC[self.family] else ""
        typ = "" if self.type == RTN_UNICAST else f" type {self.type}"
        return f"{v}route{typ} {dst}{via}{dev}{scope} table {self.table} proto {self.protocol}{metric}"


@dataclass(frozen=True, order=True)
class NeighObj:
    dev: str
    ip: IPAddress
    mac: str | None
    permanent: bool = True
    protocol: int = 0

    @property
    def key(self) -> tuple[str, IPAddress]:
        return neigh_key(self)

    def __str__(self) -> str:
        state = "PERMANENT" if self.permanent else "dynamic"
        return f"neigh {self.ip} lladdr {self.mac} dev {self.dev} {state} proto {self.protocol}"


@dataclass(frozen=True, order=True)
class ProxyObj:
    """A proxy neighbour entry (NTF_PROXY): the kernel answers solicitations for `ip` on `dev`."""

    dev: str
    ip: IPAddress
    protocol: int = 0

    @property
    def key(self) -> tuple[str, IPAddress]:
        return (self.dev, self.ip)

    def __str__(self) -> str:
        v = "-6 " if self.ip.version == 6 else ""
        return f"{v}neigh proxy {self.ip} dev {self.dev} proto {self.protocol}"


@dataclass
class KernelState:
    """What observe() saw. Mutable containers so apply() can keep a cached copy current."""

    links: dict[str, LinkState] = field(default_factory=dict)
    addrs: dict[str, set[IPInterface]] = field(default_factory=dict)  # dev name -> addresses
    rules: set[RuleObj] = field(default_factory=set)
    routes: set[RouteObj] = field(default_factory=set)
    neighbours: dict[tuple[str, IPAddress], NeighObj] = field(default_factory=dict)
    proxies: dict[tuple[str, IPAddress], ProxyObj] = field(default_factory=dict)
    sysctls: dict[str, str | None] = field(default_factory=dict)  # path -> value (None: absent)
    rt_tables_text: str = ""
    rt_tables_error: str | None = None
    created_addrs: dict[str, set[IPInterface]] = field(default_factory=dict)  # state file
    created_vlans: set[str] = field(default_factory=set)  # VLAN devices ovnbgp made (state file)
    # dev -> the IPv4 routes through it that are not ovnbgp's or the kernel's, any table (only
    # for devices whose bridge IP may be removed; dependents.foreign_users)
    dependents: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # What this observation covered: devices, tables and sysctls looked at.
    watched_devs: frozenset[str] = frozenset()
    watched_tables: frozenset[int] = frozenset()


# --- plan ----------------------------------------------------------------------------------


class Action(str, enum.Enum):
    ADD = "add"
    DEL = "del"
    REPLACE = "replace"
    SET = "set"


@dataclass(frozen=True)
class LinkOp:
    """Create the VRF, the dummy or a VLAN device, or fix its master / up state. Only a VLAN
    device ovnbgp made (state file) is ever deleted by a plan (DEL, in KernelPlan.link_del);
    the dummy and the VRF only by `ovnbgp cleanup` (kernel/teardown.py)."""

    action: Action  # ADD (create), SET or DEL
    name: str
    kind: str | None = None
    vrf_table: int | None = None
    master: str | None = None  # device name of the master to set (dummy -> VRF)
    up: bool = False
    link: str | None = None  # a VLAN device's parent (the bridge)
    vlan_id: int | None = None

    @property
    def verb(self) -> str:
        return self.action.value

    def describe(self) -> str:
        if self.action is Action.DEL:
            return f"- link del {self.name}"
        if self.action is Action.ADD:
            extra = f" table {self.vrf_table}" if self.vrf_table is not None else ""
            if self.link is not None:
                return (f"+ link add link {self.link} name {self.name} type {self.kind} id "
                        f"{self.vlan_id}" + (" up" if self.up else ""))
            master = f" master {self.master}" if self.master else ""
            return f"+ link add {self.name} type {self.kind}{extra}{master}" + (" up" if self.up else "")
        parts = []
        if self.master:
            parts.append(f"master {self.master}")
        if self.up:
            parts.append("up")
        return f"~ link set {self.name} {' '.join(parts)}"


@dataclass(frozen=True)
class AddrOp:
    action: Action  # ADD or DEL
    dev: str
    address: IPInterface
    table: int | None = None  # bridge table whose steering this exposure needs (gating)
    role: str = "dummy"  # "dummy" (an exposure) or "bridge" (a bridge IP)

    @property
    def verb(self) -> str:
        return self.action.value

    def describe(self) -> str:
        sign = "+" if self.action is Action.ADD else "-"
        return f"{sign} addr {self.address} dev {self.dev}"


@dataclass(frozen=True)
class RuleOp:
    action: Action  # ADD or DEL
    rule: RuleObj

    @property
    def verb(self) -> str:
        return self.action.value

    def describe(self) -> str:
        return f"{'+' if self.action is Action.ADD else '-'} {self.rule}"


@dataclass(frozen=True)
class RouteOp:
    action: Action  # ADD, REPLACE or DEL
    route: RouteObj

    @property
    def verb(self) -> str:
        return self.action.value

    def describe(self) -> str:
        sign = {Action.ADD: "+", Action.REPLACE: "~", Action.DEL: "-"}[self.action]
        return f"{sign} {self.route}"


@dataclass(frozen=True)
class NeighOp:
    action: Action  # REPLACE (add or take over) or DEL
    neigh: NeighObj
    table: int | None = None  # bridge table (gating)

    @property
    def verb(self) -> str:
        return self.action.value

    def describe(self) -> str:
        return f"{'~' if self.action is Action.REPLACE else '-'} {self.neigh}"


@dataclass(frozen=True)
class ProxyOp:
    action: Action  # ADD or DEL
    proxy: ProxyObj

    @property
    def verb(self) -> str:
        return self.action.value

    def describe(self) -> str:
        return f"{'+' if self.action is Action.ADD else '-'} {self.proxy}"


@dataclass(frozen=True)
class SysctlOp:
    path: str  # relative to /proc/sys, e.g. net/ipv4/conf/br-ex/proxy_arp
    value: str
    old: str | None = None

    verb = "set"

    def describe(self) -> str:
        return f"~ sysctl {self.path.replace('/', '.')} = {self.value} (was {self.old})"


@dataclass(frozen=True)
class RtTablesOp:
    path: str
    text: str  # the whole new file content
    added: tuple[tuple[int, str], ...] = ()
    removed: tuple[tuple[int, str], ...] = ()

    verb = "set"

    def describe(self) -> str:
        out = [f"+ rt_tables {self.path}: {t} {n}" for t, n in self.added]
        out += [f"- rt_tables {self.path}: {t} {n}" for t, n in self.removed]
        return "\n".join(out)


SteeringOp = RuleOp | RouteOp | NeighOp
Op = LinkOp | AddrOp | RuleOp | RouteOp | NeighOp | SysctlOp | RtTablesOp | ProxyOp


@dataclass
class KernelPlan:
    """The changes, in the order apply() makes them (see netlink.py)."""

    links: list[LinkOp] = field(default_factory=list)
    rt_tables: RtTablesOp | None = None
    sysctls: list[SysctlOp] = field(default_factory=list)
    bridge_addr_add: list[AddrOp] = field(default_factory=list)
    proxy_add: list[ProxyOp] = field(default_factory=list)
    dummy_del: list[AddrOp] = field(default_factory=list)
    steer_add: list[SteeringOp] = field(default_factory=list)
    steer_del: list[SteeringOp] = field(default_factory=list)
    dummy_add: list[AddrOp] = field(default_factory=list)
    proxy_del: list[ProxyOp] = field(default_factory=list)
    bridge_addr_del: list[AddrOp] = field(default_factory=list)
    link_del: list[LinkOp] = field(default_factory=list)  # stale VLAN devices of ovnbgp's, last
    notices: list[Notice] = field(default_factory=list)

    def ops(self) -> list[Op]:
        out: list[Op] = [*self.links]
        if self.rt_tables is not None:
            out.append(self.rt_tables)
        out += [*self.sysctls, *self.bridge_addr_add, *self.proxy_add, *self.dummy_del,
                *self.steer_add, *self.steer_del, *self.dummy_add, *self.proxy_del,
                *self.bridge_addr_del, *self.link_del]
        return out

    def empty(self) -> bool:
        """No change to make (notices do not count: they are things left alone)."""
        return not self.ops()

    def __len__(self) -> int:
        return len(self.ops())

    def change_lines(self) -> list[str]:
        return [op.describe() for op in self.ops()]

    def lines(self) -> list[str]:
        return self.change_lines() + [n.describe() for n in self.notices]

    def summary(self) -> str:
        add = len(self.dummy_add)
        rem = len(self.dummy_del)
        return (f"kernel plan: {len(self)} changes (exposures +{add} -{rem}, steering "
                f"+{len(self.steer_add)} -{len(self.steer_del)}, {len(self.notices)} notices)")


# What apply() did: the changes made (an address on the dummy carries its exposure's prefix),
# the ones that failed with the kernel's answer, and the exposures held back because their
# steering is not in place. The one result type of every target (model/target.py).
ApplyResult = TargetResult

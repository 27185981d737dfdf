"""The pure desired-state model: what this chassis must expose through BGP and how it steers it.

All OVN knowledge lives here. Input is a `Snapshot` (Southbound Port_Binding rows, the Chassis
names, the local OVS view) plus the `Config`; output is a `DesiredState` of frozen records with
ipaddress values. No I/O: nothing here reads a DB or touches the node.

API for the daemon
------------------
    state = desired_state(snapshot, cfg)     # the reference: everything from scratch, pure
    cache = ModelCache(snapshot, cfg)        # the same result, kept for incremental updates
    cache.state                              # current DesiredState
    cache.update(Changes(port_bindings={uuid: PortBindingRow or None (deleted)},
                         local=LocalOvs or None (unchanged),
                         chassis_names=frozenset or None (unchanged)))  -> DesiredState
    cache.rebuild(snapshot)                  # full resync (periodic, after a reconnect)
    cache.snapshot()                         # the Snapshot the cache currently reflects

`ModelCache` logs every `Problem` (a row it skipped, with the row's uuid) once, when it
appears; `desired_state()` only returns them in `DesiredState.problems`. A ModelCache is not
thread-safe: use it from the reconcile loop's thread only (OvnWatcher.changes() is safe to call
from there). After the first build, `gc.freeze()` halves later full computations at 10k ports
(bench/bench_model.py): the collector stops re-scanning the long-lived IDL rows.

Not modelled: gateway routers pinned with options:chassis (l3gateway ports; Neutron uses
distributed gateway ports), Port_Binding.additional_chassis during live migration (the port
counts where `chassis` says), virtual/external/localport ports.

What is exposed (reference design, v4 and v6)
---------------------------------------------
- provider VM IPs: a port of type "" on a network with a localnet port whose physnet is in
  ovn-bridge-mappings (bridge from the mapping), bound to this chassis;
- floating IPs: a `nat_addresses` entry of a patch port on a provider network whose
  `is_chassis_resident("P")` port P is bound here (a VM port: DVR FIP; the cr-lrp: the router's
  centralized FIPs; the cr-lrp's own IPs there are exposed as cr-lrp, not twice);
- cr-lrp IPs when the cr-lrp (type "chassisredirect") is bound here, with `CRLRP-IP dev BR scope
  link` in the bridge table and a permanent neighbour CRLRP-IP -> cr-lrp MAC;
- the tenant subnet CIDRs of that router's interfaces (patch ports on the router datapath whose
  peer is on a network without a localnet port), each with `CIDR via CRLRP-IP dev BR`;
- tenant VM IPs (ports of type "" bound on any chassis) inside those subnets.
Every existing provider bridge also gets a proxy NDP entry for each `cfg.kernel.ndp_proxy`
address (the IPv6 provider gateways: OVN's Southbound does not carry a subnet's gateway).
Steering follows `cfg.kernel.steering`: "rules" = one `ip rule to PREFIX lookup TABLE` per
exposed prefix and `default dev BR scope link` in the table; "table" = one rule per bridge table
and family (no dst) and `IP dev BR scope link` host routes instead of the default route.

Waiting for ports: with `cfg.ovn.wait_for_port_up` a VM port (type "", including the resident
port of a DVR floating IP and a tenant VM) counts only once `Port_Binding.up` is true, i.e.
ovn-controller has wired it; exposing it earlier advertises a black hole. An empty `up` column
(OVN before 21.03) counts as up. cr-lrps are exposed as soon as they are bound (ovn-controller
does not set `up` on them on every version).

Bad input: a row the model cannot parse (bad MAC/IP, keyword entries, a chassis missing from the
Chassis table, a bridge mapping to a missing bridge, ...) is skipped and reported as a Problem;
the rest of the model is unaffected. Two different ports claiming the same prefix: neither is
exposed (which one is right cannot be proven) and both are reported.

Incremental keys
----------------
The cache splits the result into contributions, each recomputed as a whole:
- ("pb", uuid): what one VM port (provider/tenant VM) or one patch port with nat_addresses (FIPs)
  exposes;
- ("router", datapath uuid): the cr-lrps of one router bound here, their routes/neighbours and
  the router's tenant subnets;
- ("bridges",): bridge setups, default routes or table rules, OVS flows;
- ("topology",): problems found while deriving networks/routers.
A change to a VM row recomputes its own key plus the patch ports whose nat_addresses name it:
O(1) at any scale. A change to a localnet/patch/chassisredirect row in anything but
`nat_addresses` (network or router created, gateway failover) rebuilds the small
network/router topology and recomputes only the keys whose inputs changed. A change to the
local OVS view or to the Chassis names rebuilds everything.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass, field
from typing import Hashable, Iterable, Mapping

from ovnbgp import ipcache
from ovnbgp.agent.parse import (
    OVS_PORT_RE,
    ParseError,
    nat_residents,
    parse_mac,
    parse_nat_address,
    parse_port_addresses,
    parse_router_port_addresses,
)
from ovnbgp.agent.records import (
    BridgeSetup,
    DesiredState,
    Exposure,
    ExposureKind,
    FlowSpec,
    IPAddress,
    IPInterface,
    IPNetwork,
    LocalOvs,
    Neighbour,
    PortBindingRow,
    Problem,
    ProxyNeighbour,
    Route,
    Rule,
    Snapshot,
)
from ovnbgp.config import IFNAME_RE, Config

LOG = logging.getLogger(__name__)

VM_TYPE = ""
INFRA_TYPES = frozenset({"localnet", "patch", "chassisredirect"})
BRIDGES_KEY = ("bridges",)
TOPOLOGY_KEY = ("topology",)
_DEFAULT_V4 = ipaddress.IPv4Network("0.0.0.0/0")
_DEFAULT_V6 = ipaddress.IPv6Network("::/0")
_RESERVED_TABLES = frozenset({0, 253, 254, 255})


@dataclass(frozen=True)
class Changes:
    """What changed since the cache's last view. Rows not listed are unchanged."""

    port_bindings: Mapping[str, PortBindingRow | None] = field(default_factory=dict)
    local: LocalOvs | None = None  # None: unchanged
    chassis_names: frozenset[str] | None = None  # None: unchanged


def desired_state(snapshot: Snapshot, cfg: Config) -> DesiredState:
    """Everything this chassis must expose and steer, computed from scratch (no I/O)."""
    return ModelCache(snapshot, cfg, log_problems=False).state


# --- internal values ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Claim:
    """A prefix some row wants exposed; turned into outputs only if no other row claims it."""

    prefix: IPNetwork
    kind: ExposureKind
    bridge: str
    port: str
    row: str
    via: IPAddress | None = None  # tenant subnet: the cr-lrp IP its route goes through

    def sort_key(self) -> tuple:
        return (self.kind.value, self.bridge, self.port, str(self.via))


@dataclass(frozen=True)
class _Contribution:
    claims: tuple[_Claim, ...] = ()
    objects: tuple[Hashable, ...] = ()  # Route/Neighbour/Rule/BridgeSetup/FlowSpec not tied to a claim
    problems: tuple[Problem, ...] = ()


EMPTY = _Contribution()


def _contribution(claims: list, objects: list, problems: list) -> _Contribution:
    if not claims and not objects and not problems:
        return EMPTY
    return _Contribution(tuple(claims), tuple(objects), tuple(problems))


def _problem(row: PortBindingRow | None, reason: str, level: str = "warning") -> Problem:
    if row is None:
        return Problem("", "", reason, level)
    return Problem(row.uuid, row.logical_port, reason, level)


@dataclass(frozen=True)
class _TenantNet:
    """A tenant subnet reachable through a router whose gateway (cr-lrp) is bound here."""

    router: str
    network: IPNetwork
    bridge: str

    def sort_key(self) -> tuple:
        return (self.router, self.network.version, int(self.network.network_address),
                self.network.prefixlen)


class _Bridges:
    """The provider bridges from ovn-bridge-mappings: table ids, which exist, their objects."""

    def __init__(self, local: LocalOvs, cfg: Config):
        kcfg = cfg.kernel
        problems: list[Problem] = []
        self.physnet_bridge: dict[str, str] = {}  # physnet -> existing bridge, mapping order
        self.tables: dict[str, int] = {}
        order: list[str] = []
        for physnet, bridge in local.bridge_mappings.items():
            if not isinstance(bridge, str) or not IFNAME_RE.fullmatch(bridge):
                problems.append(_problem(None, f"bridge mapping {physnet}:{bridge}: bad bridge name"))
                continue
            if bridge not in order:
                order.append(bridge)
            if bridge in local.bridges:
                self.physnet_bridge.setdefault(physnet, bridge)
            else:
                problems.append(_problem(
                    None, f"bridge mapping {physnet}:{bridge}: bridge {bridge} does not exist in "
                    "the local OVS DB; its exposures wait for it"))
        used = set(kcfg.bridge_tables.values()) | {kcfg.vrf_table}
        for i, bridge in enumerate(order):
            if bridge in kcfg.bridge_tables:
                self.tables[bridge] = kcfg.bridge_tables[bridge]
                continue
            table = kcfg.first_bridge_table + i
            while table in used or table in _RESERVED_TABLES:
                table += 1
            used.add(table)
            self.tables[bridge] = table
        objects: list = []
        for bridge in order:
            if bridge not in local.bridges:
                continue
            table = self.tables[bridge]
            objects.append(BridgeSetup(bridge, table, (kcfg.bridge_ipv4, kcfg.bridge_ipv6)))
            objects += [ProxyNeighbour(bridge, ip) for ip in kcfg.ndp_proxy]
            if kcfg.steering == "rules":
                objects.append(Route(table, _DEFAULT_V4, bridge, scope_link=True))
                objects.append(Route(table, _DEFAULT_V6, bridge, scope_link=True))
            else:
                objects.append(Rule(kcfg.rule_priority, table, None, 4))
                objects.append(Rule(kcfg.rule_priority, table, None, 6))
            info = local.bridges[bridge]
            try:
                mac = parse_mac(info.mac) if info.mac is not None else None
            except ParseError as e:
                problems.append(_problem(None, f"bridge {bridge}: {e.reason}; no OVS flows for it"))
                mac = None
            if mac is None:
                if info.mac is None:
                    problems.append(_problem(None, f"bridge {bridge} has no MAC yet; no OVS flows for it",
                                             "debug"))
                continue
            for port in sorted(info.patch_ports):
                if not isinstance(port, str) or not OVS_PORT_RE.fullmatch(port):
                    problems.append(_problem(None, f"bridge {bridge}: bad OVS port name {port!r}"))
                    continue
                objects.append(FlowSpec(bridge, port, mac))
        if not local.system_id:
            problems.append(_problem(None, "the local OVS DB has no system-id: no port is bound here"))
        self.contribution = _contribution([], objects, problems)


class _Ctx:
    """What every contribution is computed from (kept current by ModelCache)."""

    def __init__(self, local: LocalOvs, chassis_names: frozenset[str], cfg: Config):
        self.local = local
        self.system_id = local.system_id
        self.chassis_names = chassis_names
        self.cfg = cfg
        self.wait_up = cfg.ovn.wait_for_port_up
        self.bridges = _Bridges(local, cfg)

    def bound_here(self, row: PortBindingRow, problems: list[Problem]) -> bool:
        ch = row.chassis
        if ch is None:
            return False
        if ch not in self.chassis_names:
            problems.append(_problem(row, f"bound to chassis {ch!r} which is not in the Chassis "
                                     "table; treated as unbound"))
            return False
        return bool(self.system_id) and ch == self.system_id

    def bound_somewhere(self, row: PortBindingRow, problems: list[Problem]) -> bool:
        ch = row.chassis
        if ch is None:
            return False
        if ch not in self.chassis_names:
            problems.append(_problem(row, f"bound to chassis {ch!r} which is not in the Chassis "
                                     "table; treated as unbound"))
            return False
        return True

    def up(self, row: PortBindingRow) -> bool:
        return not self.wait_up or row.up is None or row.up is True


def _port_ips(row: PortBindingRow, problems: list[Problem]) -> list[IPAddress]:
    ips: list[IPAddress] = []
    for entry in row.mac:
        try:
            _, addrs = parse_port_addresses(entry)
        except ParseError as e:
            problems.append(_problem(row, f"mac: {e.reason}", e.level))
            continue
        for ip in addrs:
            if ip not in ips:
                ips.append(ip)
    return ips


def _router_port_addrs(row: PortBindingRow, problems: list[Problem]) -> list[tuple[str, IPInterface]]:
    out: list[tuple[str, IPInterface]] = []
    for entry in row.mac:
        try:
            mac, ifaces = parse_router_port_addresses(entry)
        except ParseError as e:
            problems.append(_problem(row, f"mac: {e.reason}", e.level))
            continue
        for iface in ifaces:
            if all(iface.ip != o.ip for _, o in out):
                out.append((mac, iface))
    return out


class _Topology:
    """Networks and routers derived from the localnet/patch/chassisredirect rows.

    Small (one row per network/router port, not per VM), rebuilt whole when one of those rows
    changes structurally.
    """

    def __init__(self, infra: Mapping[str, PortBindingRow], ctx: _Ctx):
        problems: list[Problem] = []
        by_name: dict[str, PortBindingRow] = {}
        localnets: dict[str, list[PortBindingRow]] = {}
        patches: dict[str, list[PortBindingRow]] = {}
        crlrps: dict[str, list[PortBindingRow]] = {}
        for uuid in sorted(infra):
            row = infra[uuid]
            by_name.setdefault(row.logical_port, row)
            {"localnet": localnets, "patch": patches, "chassisredirect": crlrps}[row.type] \
                .setdefault(row.datapath, []).append(row)

        # Provider networks: a localnet port whose physnet maps to an existing local bridge.
        physnet_bridge = ctx.bridges.physnet_bridge
        physnet_order = {p: i for i, p in enumerate(physnet_bridge)}
        self.provider: dict[str, str] = {}
        for dp in sorted(localnets):
            mapped = []
            for ln in localnets[dp]:
                physnet = ln.options.get("network_name", "")
                if not physnet:
                    problems.append(_problem(ln, "localnet port without options:network_name", "debug"))
                elif physnet in physnet_bridge:
                    mapped.append(physnet)
            if mapped:
                self.provider[dp] = physnet_bridge[min(mapped, key=physnet_order.__getitem__)]
        localnet_dps = set(localnets)

        # Routers with a cr-lrp bound here.
        self.routers: dict[str, _Contribution] = {}
        tenant: dict[str, list[_TenantNet]] = {}
        tables = ctx.bridges.tables
        for router in sorted(crlrps):
            r_claims: list[_Claim] = []
            r_objects: list = []
            r_problems: list[Problem] = []
            distributed = {c.options.get("distributed-port", "") for c in crlrps[router]}
            gateways: list[tuple[str, list[tuple[str, IPInterface]]]] = []
            for cr in sorted(crlrps[router], key=lambda r: (r.logical_port, r.uuid)):
                if not ctx.bound_here(cr, r_problems):
                    continue
                bridge = self._gateway_bridge(cr, router, by_name, r_problems)
                addrs = _router_port_addrs(cr, r_problems)
                if bridge is None or not addrs:
                    continue
                table = tables[bridge]
                gateways.append((bridge, addrs))
                for mac, iface in addrs:
                    ip = iface.ip
                    r_claims.append(_Claim(ipcache.host(ip), ExposureKind.CRLRP, bridge, cr.logical_port, cr.uuid))
                    r_objects.append(Route(table, ipcache.host(ip), bridge, scope_link=True))
                    r_objects.append(Neighbour(bridge, ip, mac))
            if gateways:
                # Tenant subnets go through the first local gateway (by cr-lrp name).
                gw_bridge, gw_addrs = gateways[0]
                via_by_family: dict[int, IPAddress] = {}
                for _, iface in gw_addrs:
                    via_by_family.setdefault(iface.version, iface.ip)
                for lrp in sorted(patches.get(router, ()), key=lambda r: (r.logical_port, r.uuid)):
                    if lrp.logical_port in distributed or "chassis-redirect-port" in lrp.options:
                        continue  # the gateway port itself
                    peer = by_name.get(lrp.options.get("peer", ""))
                    if peer is None or peer.type != "patch":
                        r_problems.append(_problem(lrp, "router port without a patch peer; its subnets "
                                                   "are not exposed", "debug"))
                        continue
                    switch = peer.datapath
                    if switch in localnet_dps:
                        continue  # a router interface on a provider network is not a tenant subnet
                    for _, iface in _router_port_addrs(lrp, r_problems):
                        net = iface.network
                        via = via_by_family.get(net.version)
                        if via is None:
                            r_problems.append(_problem(
                                lrp, f"tenant subnet {net}: the router's gateway has no IPv{net.version} "
                                "address; not exposed", "debug"))
                            continue
                        r_claims.append(_Claim(net, ExposureKind.TENANT_SUBNET, gw_bridge,
                                               lrp.logical_port, lrp.uuid, via))
                        tenant.setdefault(switch, []).append(_TenantNet(router, net, gw_bridge))
            contrib = _contribution(r_claims, r_objects, r_problems)
            if contrib is not EMPTY:
                self.routers[router] = contrib

        self.tenant_nets: dict[str, tuple[_TenantNet, ...]] = {
            sw: tuple(sorted(nets, key=_TenantNet.sort_key)) for sw, nets in tenant.items()}
        # What a VM port's contribution depends on, per datapath.
        self.dp_sig: dict[str, tuple] = {dp: ("provider", br) for dp, br in self.provider.items()}
        for sw, nets in self.tenant_nets.items():
            self.dp_sig.setdefault(sw, ("tenant", nets))
        self.contribution = _contribution([], [], problems)

    def _gateway_bridge(self, cr: PortBindingRow, router: str,
                        by_name: Mapping[str, PortBindingRow], problems: list[Problem]) -> str | None:
        """cr-lrp -> its distributed gateway port -> peer switch port -> provider bridge."""
        lrp = by_name.get(cr.options.get("distributed-port", ""))
        if lrp is None or lrp.type != "patch" or lrp.datapath != router:
            problems.append(_problem(cr, "cr-lrp without its distributed gateway port; not exposed",
                                     "debug"))
            return None
        peer = by_name.get(lrp.options.get("peer", ""))
        if peer is None or peer.type != "patch":
            problems.append(_problem(cr, "gateway port without a peer switch port; not exposed", "debug"))
            return None
        bridge = self.provider.get(peer.datapath)
        if bridge is None:
            problems.append(_problem(cr, "gateway network is not a provider network mapped to an "
                                     "existing bridge here; not exposed", "debug"))
        return bridge


# --- aggregation ---------------------------------------------------------------------------

_OUTPUT_TYPES = (Exposure, Rule, Route, Neighbour, BridgeSetup, FlowSpec, ProxyNeighbour)


class _Aggregate:
    """The union of all contributions, with duplicate-prefix resolution and reference counts.

    An object (route, rule, ...) stays in the result while at least one contribution or one
    exposed claim needs it. A prefix is exposed when exactly one row claims it.
    """

    def __init__(self, ctx: _Ctx):
        self.ctx = ctx
        self.contrib: dict[Hashable, _Contribution] = {}
        # Plain dicts used as multisets (not Counter): frozenset(exact dict) reuses the stored
        # hashes, which makes materialising an 18k-exposure state ~10x cheaper.
        self.claims: dict[IPNetwork, dict[_Claim, int]] = {}
        self.winner_out: dict[IPNetwork, tuple] = {}
        self.conflicts: dict[IPNetwork, tuple[Problem, ...]] = {}
        self.out: dict[type, dict[Hashable, int]] = {t: {} for t in _OUTPUT_TYPES}
        self.problems: dict[Problem, int] = {}
        self.new_problems: list[Problem] = []
        self._dirty_prefixes: set[IPNetwork] = set()
        self._state: DesiredState | None = None
        self._frozen: dict[type, frozenset] = {t: frozenset() for t in _OUTPUT_TYPES}
        self._changed_types: set[type] = set(_OUTPUT_TYPES)

    # reference counting
    def _inc(self, obj: Hashable) -> None:
        t = type(obj)
        c = self.out[t]
        n = c.get(obj, 0)
        c[obj] = n + 1
        if not n:
            self._changed_types.add(t)

    def _dec(self, obj: Hashable) -> None:
        t = type(obj)
        c = self.out[t]
        n = c[obj] - 1
        if n:
            c[obj] = n
        else:
            del c[obj]
            self._changed_types.add(t)

    def _inc_problem(self, p: Problem) -> None:
        n = self.problems.get(p, 0) + 1
        self.problems[p] = n
        if n == 1:
            self.new_problems.append(p)

    def _dec_problem(self, p: Problem) -> None:
        n = self.problems[p] - 1
        if n:
            self.problems[p] = n
        else:
            del self.problems[p]

    def set(self, key: Hashable, new: _Contribution) -> None:
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
        """Re-decide the prefixes whose claims changed."""
        for prefix in self._dirty_prefixes:
            for o in self.winner_out.pop(prefix, ()):
                self._dec(o)
            for p in self.conflicts.pop(prefix, ()):
                self._dec_problem(p)
            claims = self.claims.get(prefix)
            if not claims:
                continue
            rows = {c.row for c in claims}
            if len(rows) == 1:
                out = self._outputs(min(claims, key=_Claim.sort_key))
                for o in out:
                    self._inc(o)
                self.winner_out[prefix] = out
            else:
                ports = sorted({c.port for c in claims})
                probs = tuple(sorted({
                    Problem(c.row, c.port, f"{prefix} is claimed by several ports ({', '.join(ports)}); "
                            "none of them is exposed") for c in claims}))
                for p in probs:
                    self._inc_problem(p)
                self.conflicts[prefix] = probs
        self._dirty_prefixes.clear()

    def _outputs(self, c: _Claim) -> tuple:
        kcfg = self.ctx.cfg.kernel
        table = self.ctx.bridges.tables[c.bridge]
        out: list = [Exposure(c.prefix, c.kind, c.bridge, c.port, c.row)]
        if kcfg.steering == "rules":
            out.append(Rule(kcfg.rule_priority, table, c.prefix, c.prefix.version))
        if c.kind is ExposureKind.TENANT_SUBNET:
            out.append(Route(table, c.prefix, c.bridge, gateway=c.via))
        elif kcfg.steering == "table" and c.kind is not ExposureKind.TENANT_VM:
            out.append(Route(table, c.prefix, c.bridge, scope_link=True))
        return tuple(out)

    def state(self) -> DesiredState:
        if self._state is None:
            f = self._frozen
            for t in self._changed_types:
                f[t] = frozenset(self.out[t])  # only the kinds of objects that changed
            self._changed_types.clear()
            self._state = DesiredState(
                exposures=f[Exposure], rules=f[Rule], routes=f[Route], neighbours=f[Neighbour],
                bridges=f[BridgeSetup], flows=f[FlowSpec], proxy_neighbours=f[ProxyNeighbour],
                problems=frozenset(self.problems))
        return self._state


# --- the cache -----------------------------------------------------------------------------


def _structure(row: PortBindingRow | None) -> tuple | None:
    """The part of a row the topology depends on (None for VM ports and absent rows)."""
    if row is None or row.type not in INFRA_TYPES:
        return None
    return (row.type, row.datapath, row.logical_port, row.mac,
            tuple(sorted(row.options.items())),
            row.chassis if row.type == "chassisredirect" else None)


class ModelCache:
    """The desired state, kept up to date from row changes (see the module docstring)."""

    def __init__(self, snapshot: Snapshot, cfg: Config, *, log_problems: bool = True):
        self.cfg = cfg
        self._log_problems = log_problems
        self._build(snapshot)

    # -- public --------------------------------------------------------------------------

    @property
    def state(self) -> DesiredState:
        return self._agg.state()

    def snapshot(self) -> Snapshot:
        return Snapshot(local=self._ctx.local, port_bindings=dict(self._rows),
                        chassis_names=self._ctx.chassis_names)

    def rebuild(self, snapshot: Snapshot) -> DesiredState:
        """Recompute everything from a fresh snapshot (problems already logged stay quiet)."""
        old = self._agg.problems
        self._build(snapshot, already_logged=old)
        return self.state

    def resync(self, snapshot: Snapshot) -> DesiredState:
        """Catch up with a fresh snapshot (the periodic resync): the rows that differ from
        the cache's (missed events) are applied as changes, the rest keeps its records, so
        what did not change stays the same objects downstream. Gives what rebuild() gives
        (incremental == full, tests/unit/test_model_incremental.py)."""
        rows: dict[str, PortBindingRow | None] = {}
        mine = self._rows
        for uuid, row in snapshot.port_bindings.items():
            old = mine.get(uuid)
            if old is not row and old != row:
                rows[uuid] = row
        for uuid in mine.keys() - snapshot.port_bindings.keys():
            rows[uuid] = None
        return self.update(Changes(port_bindings=rows, local=snapshot.local,
                                   chassis_names=frozenset(snapshot.chassis_names)))

    def update(self, changes: Changes) -> DesiredState:
        """Apply row changes and return the new desired state."""
        ctx = self._ctx
        local = changes.local if changes.local is not None else ctx.local
        names = changes.chassis_names if changes.chassis_names is not None else ctx.chassis_names
        if local != ctx.local or names != ctx.chassis_names:
            rows = dict(self._rows)
            for uuid, row in changes.port_bindings.items():
                if row is None:
                    rows.pop(uuid, None)
                else:
                    rows[uuid] = row
            return self.rebuild(Snapshot(local=local, port_bindings=rows, chassis_names=names))

        changed: dict[str, tuple[PortBindingRow | None, PortBindingRow | None]] = {}
        for uuid, new in changes.port_bindings.items():
            old = self._rows.get(uuid)
            if old == new:
                continue
            changed[uuid] = (old, new)
            self._unindex(uuid, old)
            self._index(uuid, new)
        if not changed:
            return self.state

        dirty: set[str] = set(changed)
        if any(_structure(o) != _structure(n) for o, n in changed.values()):
            dirty |= self._retopologize()
        for old, new in changed.values():
            for row in (old, new):
                if row is not None:
                    dirty |= self._nat_refs.get(row.logical_port, set())
        for uuid in dirty:
            self._agg.set(("pb", uuid), self._pb_contribution(self._rows.get(uuid)))
        self._agg.settle()
        self._flush_problems()
        return self.state

    # -- building --------------------------------------------------------------------------

    def _build(self, snapshot: Snapshot, already_logged: Iterable[Problem] = ()) -> None:
        self._ctx = _Ctx(snapshot.local, frozenset(snapshot.chassis_names), self.cfg)
        self._rows: dict[str, PortBindingRow] = {}
        self._names: dict[str, set[str]] = {}
        self._infra: dict[str, PortBindingRow] = {}
        self._vms_by_dp: dict[str, set[str]] = {}
        self._nat_by_dp: dict[str, set[str]] = {}
        self._nat_refs: dict[str, set[str]] = {}
        self._nat_names: dict[str, frozenset[str]] = {}
        for uuid, row in snapshot.port_bindings.items():
            self._index(uuid, row)
        self._agg = _Aggregate(self._ctx)
        self._topo = _Topology(self._infra, self._ctx)
        self._agg.set(BRIDGES_KEY, self._ctx.bridges.contribution)
        self._agg.set(TOPOLOGY_KEY, self._topo.contribution)
        for router, contrib in self._topo.routers.items():
            self._agg.set(("router", router), contrib)
        for uuid, row in self._rows.items():
            self._agg.set(("pb", uuid), self._pb_contribution(row))
        self._agg.settle()
        logged = set(already_logged)
        self._agg.new_problems = [p for p in self._agg.new_problems if p not in logged]
        self._flush_problems()

    def _index(self, uuid: str, row: PortBindingRow | None) -> None:
        if row is None:
            return
        self._rows[uuid] = row
        self._names.setdefault(row.logical_port, set()).add(uuid)
        if row.type == VM_TYPE:
            self._vms_by_dp.setdefault(row.datapath, set()).add(uuid)
        elif row.type in INFRA_TYPES:
            self._infra[uuid] = row
        if row.nat_addresses:
            self._nat_by_dp.setdefault(row.datapath, set()).add(uuid)
            names = nat_residents(row.nat_addresses)
            self._nat_names[uuid] = names
            for name in names:
                self._nat_refs.setdefault(name, set()).add(uuid)

    def _unindex(self, uuid: str, row: PortBindingRow | None) -> None:
        if row is None:
            return
        del self._rows[uuid]
        _discard(self._names, row.logical_port, uuid)
        _discard(self._vms_by_dp, row.datapath, uuid)
        _discard(self._nat_by_dp, row.datapath, uuid)
        self._infra.pop(uuid, None)
        for name in self._nat_names.pop(uuid, ()):
            _discard(self._nat_refs, name, uuid)

    def _retopologize(self) -> set[str]:
        """Rebuild the topology; update router keys; return the row keys whose inputs changed."""
        old, new = self._topo, _Topology(self._infra, self._ctx)
        self._topo = new
        self._agg.set(TOPOLOGY_KEY, new.contribution)
        for router in old.routers.keys() | new.routers.keys():
            self._agg.set(("router", router), new.routers.get(router, EMPTY))
        dirty: set[str] = set()
        for dp in old.dp_sig.keys() | new.dp_sig.keys():
            if old.dp_sig.get(dp) != new.dp_sig.get(dp):
                dirty |= self._vms_by_dp.get(dp, set())
        for dp in old.provider.keys() | new.provider.keys():
            if old.provider.get(dp) != new.provider.get(dp):
                dirty |= self._nat_by_dp.get(dp, set())
        return dirty

    def _flush_problems(self) -> None:
        if self._log_problems:
            for p in self._agg.new_problems:
                LOG.log(logging.getLevelName(p.level.upper()), "skipped: %s (port %s, Port_Binding %s)",
                        p.reason, p.port or "-", p.row or "-")
        self._agg.new_problems = []

    # -- per-row contributions -------------------------------------------------------------

    def _by_name(self, name: str) -> PortBindingRow | None:
        uuids = self._names.get(name)
        return self._rows[min(uuids)] if uuids else None

    def _pb_contribution(self, row: PortBindingRow | None) -> _Contribution:
        if row is None:
            return EMPTY
        if row.type == VM_TYPE:
            return self._vm_contribution(row)
        if row.nat_addresses and row.type == "patch":
            return self._fip_contribution(row)
        return EMPTY

    def _vm_contribution(self, row: PortBindingRow) -> _Contribution:
        sig = self._topo.dp_sig.get(row.datapath)
        if sig is None:
            return EMPTY
        ctx = self._ctx
        claims: list[_Claim] = []
        problems: list[Problem] = []
        if sig[0] == "provider":
            if ctx.bound_here(row, problems) and ctx.up(row):
                bridge = sig[1]
                for ip in _port_ips(row, problems):
                    claims.append(_Claim(ipcache.host(ip), ExposureKind.PROVIDER_VM, bridge,
                                         row.logical_port, row.uuid))
        elif ctx.bound_somewhere(row, problems) and ctx.up(row):
            nets: tuple[_TenantNet, ...] = sig[1]
            for ip in _port_ips(row, problems):
                for net in nets:
                    if net.network.version == ip.version and ip in net.network:
                        claims.append(_Claim(ipcache.host(ip), ExposureKind.TENANT_VM, net.bridge,
                                             row.logical_port, row.uuid))
                        break
                else:
                    problems.append(_problem(row, f"{ip} is not inside a tenant subnet exposed "
                                             "through a gateway here", "debug"))
        return _contribution(claims, [], problems)

    def _fip_contribution(self, row: PortBindingRow) -> _Contribution:
        bridge = self._topo.provider.get(row.datapath)
        if bridge is None:
            return EMPTY
        ctx = self._ctx
        claims: list[_Claim] = []
        problems: list[Problem] = []
        for entry in row.nat_addresses:
            try:
                _, ips, resident_name = parse_nat_address(entry)
            except ParseError as e:
                problems.append(_problem(row, f"nat_addresses: {e.reason}", e.level))
                continue
            if resident_name is None:
                problems.append(_problem(row, f"nat_addresses entry {entry!r} has no "
                                         "is_chassis_resident(); not exposed", "debug"))
                continue
            resident = self._by_name(resident_name)
            if resident is None:
                problems.append(_problem(row, f"nat_addresses entry names port {resident_name!r} "
                                         "which does not exist; not exposed", "debug"))
                continue
            own: set[IPAddress] = set()
            if resident.type == VM_TYPE:
                if not (ctx.bound_here(resident, problems) and ctx.up(resident)):
                    continue
            elif resident.type == "chassisredirect":
                if not ctx.bound_here(resident, problems):
                    continue
                own = {iface.ip for _, iface in _router_port_addrs(resident, problems)}
            else:
                problems.append(_problem(row, f"nat_addresses entry resident on port {resident_name!r} "
                                         f"of type {resident.type!r}; not exposed", "debug"))
                continue
            for ip in ips:
                if ip not in own:
                    claims.append(_Claim(ipcache.host(ip), ExposureKind.FIP, bridge, resident.logical_port,
                                         resident.uuid))
        return _contribution(claims, [], problems)


def _discard(index: dict[str, set[str]], key: str, uuid: str) -> None:
    s = index.get(key)
    if s is not None:
        s.discard(uuid)
        if not s:
            del index[key]

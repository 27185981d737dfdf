"""Networks, routers and bridges derived from the infrastructure rows and the local OVS view.

`Bridges` turns ovn-bridge-mappings into table ids and per-bridge objects; `Context` is what every
contribution is computed from; `Topology` finds the provider networks, the routers whose
gateway (cr-lrp) is bound here and the tenant subnets behind them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from ovnbgp.config import IFNAME_RE, OVS_PORT_RE, RESERVED_TABLES, Config, vlan_device_name
from ovnbgp.model import ipcache
from ovnbgp.model.claims import EMPTY, Claim, Contribution, TenantNet, contribution, problem
from ovnbgp.model.parse import (
    ParseError,
    parse_mac,
    parse_port_addresses,
    parse_router_port_addresses,
    parse_vlan_tag,
)
from ovnbgp.model.policy import scope_key, tenant_subnet_refusal
from ovnbgp.model.records import (
    BridgeHold,
    BridgeSetup,
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
    VlanDevice,
    steering_dev,
)

VM_TYPE = ""
INFRA_TYPES = frozenset({"localnet", "patch", "chassisredirect"})
_DEFAULT_V4 = ipaddress.IPv4Network("0.0.0.0/0")
_DEFAULT_V6 = ipaddress.IPv6Network("::/0")


class Bridges:
    """The provider bridges from ovn-bridge-mappings: table ids, which exist, their objects.

    Unusable bridge data HOLDS instead of withdrawing (a `BridgeHold` per reason in the
    contribution, a warning Problem each): an ovn-bridge-mappings that is not set, empty or has
    an unparsable item (`public`, `public:br-ex:x`, `:`), or a mapping to a bridge the local
    OVS DB does not have (a typo `public:br-nope`, or the bridge deleted). The bridges that
    are mapped and exist are used as usual; the targets keep everything they own for any other
    bridge (exposures, rules, routes, neighbours, bridge IPs, flows) until valid data says
    otherwise. The model cannot know what an unparsable item meant, and after a restart it does
    not know the previous mapping, so "any other bridge" is the only sound scope.

    A node whose local OVS DB lost its system-id (the key removed by mistake) holds too, and
    for every bridge: without it no port can be known bound here, so the model would withdraw
    everything. No bridge is used then (no BridgeSetup, no flow), which makes the targets keep
    all they own until the system-id is back.

    A VALID change that drops a physnet (`public:br-ex,other:br-o` -> `other:br-o`, both
    bridges existing) is not a hold: public's exposures are withdrawn, as OVN itself stops
    delivering that network here.
    """

    def __init__(self, local: LocalOvs, cfg: Config):
        kcfg = cfg.kernel
        problems: list[Problem] = []
        holds: list[str] = list(local.mapping_problems)
        if not local.system_id:
            holds.insert(0, "the local OVS DB has no system-id: no port can be known bound here")
        if not local.bridge_mappings and not holds:
            holds.append("ovn-bridge-mappings maps no physnet")
        self.physnet_bridge: dict[str, str] = {}  # physnet -> existing bridge, mapping order
        # bridge -> (its MAC, its valid patch ports): what a VLAN network's flows need
        self.flow_ports: dict[str, tuple[str, tuple[str, ...]]] = {}
        self.tables: dict[str, int] = {}
        order: list[str] = []
        for physnet, bridge in local.bridge_mappings.items():
            if not isinstance(bridge, str) or not IFNAME_RE.fullmatch(bridge):
                holds.append(f"bridge mapping {physnet}:{bridge}: bad bridge name")
                continue
            if bridge not in order:
                order.append(bridge)
            if bridge in local.bridges:
                self.physnet_bridge.setdefault(physnet, bridge)
            else:
                holds.append(f"bridge mapping {physnet}:{bridge}: bridge {bridge} does not exist "
                             "in the local OVS DB")
        self.holds = tuple(dict.fromkeys(holds))
        for reason in self.holds:
            problems.append(problem(None, f"{reason}: unusable bridge data; what is in place for "
                                     "bridges not mapped is held (nothing withdrawn) until it is "
                                     "fixed, new exposures on them wait"))
        used = set(kcfg.bridge_tables.values()) | {kcfg.vrf_table}
        for i, bridge in enumerate(order):
            if bridge in kcfg.bridge_tables:
                self.tables[bridge] = kcfg.bridge_tables[bridge]
                continue
            table = kcfg.first_bridge_table + i
            while table in used or table in RESERVED_TABLES:
                table += 1
            used.add(table)
            self.tables[bridge] = table
        objects: list = []
        for bridge in order if local.system_id else ():  # no system-id: hold them all
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
                problems.append(problem(None, f"bridge {bridge}: {e.reason}; no OVS flows for it"))
                mac = None
            if mac is None:
                if info.mac is None:
                    problems.append(problem(None, f"bridge {bridge} has no MAC yet; no OVS flows for it",
                                             "debug"))
                continue
            ports = []
            for port in sorted(info.patch_ports):
                if not isinstance(port, str) or not OVS_PORT_RE.fullmatch(port):
                    problems.append(problem(None, f"bridge {bridge}: bad OVS port name {port!r}"))
                    continue
                objects.append(FlowSpec(bridge, port, mac))
                ports.append(port)
            self.flow_ports[bridge] = (mac, tuple(ports))
        objects += [BridgeHold(reason) for reason in self.holds]
        self.contribution = contribution([], objects, problems)


class Context:
    """What every contribution is computed from (kept current by ModelCache)."""

    def __init__(self, local: LocalOvs, chassis_names: frozenset[str], cfg: Config):
        self.local = local
        self.system_id = local.system_id
        self.chassis_names = chassis_names
        self.cfg = cfg
        self.wait_up = cfg.ovn.wait_for_port_up
        self.bridges = Bridges(local, cfg)

    def bound_here(self, row: PortBindingRow, problems: list[Problem]) -> bool:
        return (self.bound_somewhere(row, problems) and bool(self.system_id)
                and row.chassis == self.system_id)

    def bound_somewhere(self, row: PortBindingRow, problems: list[Problem]) -> bool:
        """Bound to a chassis the Chassis table knows (an unknown one counts as unbound)."""
        ch = row.chassis
        if ch is None:
            return False
        if ch not in self.chassis_names:
            problems.append(problem(row, f"bound to chassis {ch!r} which is not in the Chassis "
                                     "table; treated as unbound"))
            return False
        return True

    def up(self, row: PortBindingRow) -> bool:
        return not self.wait_up or row.up is None or row.up is True


def port_ips(row: PortBindingRow, problems: list[Problem]) -> list[IPAddress]:
    ips: list[IPAddress] = []
    for entry in row.mac:
        try:
            _, addrs = parse_port_addresses(entry)
        except ParseError as e:
            problems.append(problem(row, f"mac: {e.reason}", e.level))
            continue
        for ip in addrs:
            if ip not in ips:
                ips.append(ip)
    return ips


def router_port_addrs(row: PortBindingRow, problems: list[Problem]) -> list[tuple[str, IPInterface]]:
    out: list[tuple[str, IPInterface]] = []
    for entry in row.mac:
        try:
            mac, ifaces = parse_router_port_addresses(entry)
        except ParseError as e:
            problems.append(problem(row, f"mac: {e.reason}", e.level))
            continue
        for iface in ifaces:
            if all(iface.ip != o.ip for _, o in out):
                out.append((mac, iface))
    return out


class Topology:
    """Networks and routers derived from the localnet/patch/chassisredirect rows.

    Small (one row per network/router port, not per VM), rebuilt whole when one of those rows
    changes structurally.
    """

    def __init__(self, infra: Mapping[str, PortBindingRow], ctx: Context):
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
        self.provider: dict[str, str] = {}
        self.provider_vlan: dict[str, int] = {}  # provider datapath -> its VLAN (0: flat)
        for dp in sorted(localnets):
            found = _provider_of(localnets[dp], ctx.bridges, problems)
            if found is not None:
                self.provider[dp], self.provider_vlan[dp] = found
        localnet_dps = set(localnets)
        vlan_objects = _vlan_objects(set(zip(self.provider.values(), self.provider_vlan.values())),
                                     ctx)

        # Routers with a cr-lrp bound here.
        self.routers: dict[str, Contribution] = {}
        self.subnet_ports: set[str] = set()  # router interfaces (LRP uuids) whose subnets are claimed
        tenant: dict[str, list[TenantNet]] = {}
        # tenant switch -> its subnets refused by the [exposure] policy, with why
        self.filtered: dict[str, list[tuple[IPNetwork, str]]] = {}
        tables = ctx.bridges.tables
        for router in sorted(crlrps):
            r_claims: list[Claim] = []
            r_objects: list = []
            r_problems: list[Problem] = []
            distributed = {c.options.get("distributed-port", "") for c in crlrps[router]}
            gateways: list[tuple[str, int, list[tuple[str, IPInterface]]]] = []
            for cr in sorted(crlrps[router], key=lambda r: (r.logical_port, r.uuid)):
                if not ctx.bound_here(cr, r_problems):
                    continue
                gw_dp = self._gateway_network(cr, router, by_name, r_problems)
                addrs = router_port_addrs(cr, r_problems)
                if gw_dp is None or not addrs:
                    continue
                bridge, vlan = self.provider[gw_dp], self.provider_vlan[gw_dp]
                table, dev = tables[bridge], steering_dev(bridge, vlan)
                gateways.append((bridge, vlan, addrs))
                for mac, iface in addrs:
                    ip = iface.ip
                    r_claims.append(Claim(ipcache.host(ip), ExposureKind.CRLRP, bridge, cr.logical_port,
                                          cr.uuid, vlan=vlan))
                    r_objects.append(Route(table, ipcache.host(ip), dev, scope_link=True))
                    r_objects.append(Neighbour(dev, ip, mac))
            if gateways:
                # Tenant subnets go through the first local gateway (by cr-lrp name).
                gw_bridge, gw_vlan, gw_addrs = gateways[0]
                via_by_family: dict[int, IPAddress] = {}
                for _, iface in gw_addrs:
                    via_by_family.setdefault(iface.version, iface.ip)
                for lrp in sorted(patches.get(router, ()), key=lambda r: (r.logical_port, r.uuid)):
                    if lrp.logical_port in distributed or "chassis-redirect-port" in lrp.options:
                        continue  # the gateway port itself
                    peer = by_name.get(lrp.options.get("peer", ""))
                    if peer is None or peer.type != "patch":
                        r_problems.append(problem(lrp, "router port without a patch peer; its subnets "
                                                   "are not exposed", "debug"))
                        continue
                    switch = peer.datapath
                    if switch in localnet_dps:
                        continue  # a router interface on a provider network is not a tenant subnet
                    for _, iface in router_port_addrs(lrp, r_problems):
                        net = iface.network
                        via = via_by_family.get(net.version)
                        if via is None:
                            r_problems.append(problem(
                                lrp, f"tenant subnet {net}: the router's gateway has no IPv{net.version} "
                                "address; not exposed", "debug"))
                            continue
                        refusal = tenant_subnet_refusal(net, ctx.cfg.exposure, (
                            lrp.external_ids.get(scope_key(net.version), ""),
                            peer.external_ids.get(scope_key(net.version), "")))
                        if refusal is not None:
                            r_problems.append(problem(lrp, f"tenant subnet {net}: {refusal}", "info"))
                            self.filtered.setdefault(switch, []).append((net, refusal))
                            continue
                        r_claims.append(Claim(net, ExposureKind.TENANT_SUBNET, gw_bridge,
                                               lrp.logical_port, lrp.uuid, via, gw_vlan))
                        self.subnet_ports.add(lrp.uuid)
                        tenant.setdefault(switch, []).append(TenantNet(router, net, gw_bridge, gw_vlan))
            contrib = contribution(r_claims, r_objects, r_problems)
            if contrib is not EMPTY:
                self.routers[router] = contrib

        self.router_nets = self._router_nets(crlrps, patches, by_name, localnet_dps)
        self.tenant_nets: dict[str, tuple[TenantNet, ...]] = {
            sw: tuple(sorted(nets, key=TenantNet.sort_key)) for sw, nets in tenant.items()}
        # What a VM port's contribution depends on, per datapath.
        self.dp_sig: dict[str, tuple] = {dp: ("provider", br, self.provider_vlan[dp])
                                         for dp, br in self.provider.items()}
        for sw, nets in self.tenant_nets.items():
            self.dp_sig.setdefault(sw, ("tenant", nets))
        self.contribution = contribution([], vlan_objects, problems)

    @staticmethod
    def _router_nets(crlrps: Mapping[str, list[PortBindingRow]], patches: Mapping[str, list[PortBindingRow]],
                     by_name: Mapping[str, PortBindingRow], localnet_dps: set[str]) -> dict[str, tuple]:
        """Router datapath (with a cr-lrp) -> the subnets of its interfaces on tenant switches,
        whatever the policy: an address in one is a tenant address, never a floating IP."""
        out: dict[str, tuple] = {}
        for router in sorted(crlrps):
            distributed = {c.options.get("distributed-port", "") for c in crlrps[router]}
            nets: list = []
            for lrp in sorted(patches.get(router, ()), key=lambda r: (r.logical_port, r.uuid)):
                if lrp.logical_port in distributed or "chassis-redirect-port" in lrp.options:
                    continue
                peer = by_name.get(lrp.options.get("peer", ""))
                if peer is None or peer.datapath in localnet_dps:
                    continue
                nets += [iface.network for _, iface in router_port_addrs(lrp, [])
                         if iface.network not in nets]
            if nets:
                out[router] = tuple(nets)
        return out

    def network_of(self, datapath: str) -> tuple[str, int] | None:
        """(bridge, VLAN) of a provider network mapped here, None for any other datapath."""
        bridge = self.provider.get(datapath)
        return None if bridge is None else (bridge, self.provider_vlan[datapath])

    def _gateway_network(self, cr: PortBindingRow, router: str,
                         by_name: Mapping[str, PortBindingRow], problems: list[Problem]) -> str | None:
        """cr-lrp -> its distributed gateway port -> peer switch port -> provider network
        (datapath) mapped to a bridge here."""
        lrp = by_name.get(cr.options.get("distributed-port", ""))
        if lrp is None or lrp.type != "patch" or lrp.datapath != router:
            problems.append(problem(cr, "cr-lrp without its distributed gateway port; not exposed",
                                     "debug"))
            return None
        peer = by_name.get(lrp.options.get("peer", ""))
        if peer is None or peer.type != "patch":
            problems.append(problem(cr, "gateway port without a peer switch port; not exposed", "debug"))
            return None
        if peer.datapath not in self.provider:
            problems.append(problem(cr, "gateway network is not a provider network mapped to an "
                                     "existing bridge here; not exposed", "debug"))
            return None
        return peer.datapath


def _provider_of(localnets: list[PortBindingRow], bridges: Bridges,
                 problems: list[Problem]) -> tuple[str, int] | None:
    """(bridge, VLAN) of a network from its localnet ports: the first physnet in mapping order
    that maps to an existing bridge here. A localnet port whose `tag` is unusable (not an
    integer, out of 1..4094, a VLAN device name over 15 characters) is skipped with a warning:
    exposing its network untagged would black-hole it."""
    physnet_bridge = bridges.physnet_bridge
    order = {p: i for i, p in enumerate(physnet_bridge)}
    mapped: list[tuple[int, str, int]] = []
    for ln in localnets:
        physnet = ln.options.get("network_name", "")
        if not physnet:
            problems.append(problem(ln, "localnet port without options:network_name", "debug"))
            continue
        if physnet not in physnet_bridge:
            continue
        bridge = physnet_bridge[physnet]
        try:
            vlan = parse_vlan_tag(ln.tag) or 0
        except ParseError as e:
            problems.append(problem(ln, f"tag: {e.reason}; its network is not used here"))
            continue
        if vlan and vlan_device_name(bridge, vlan) is None:
            problems.append(problem(ln, f"VLAN {vlan} on bridge {bridge}: the device name "
                                     f"{bridge}.{vlan} is longer than 15 characters; its network "
                                     "is not used here"))
            continue
        mapped.append((order[physnet], bridge, vlan))
    if not mapped:
        return None
    _, bridge, vlan = min(mapped)
    return bridge, vlan


def _vlan_objects(networks: set[tuple[str, int]], ctx: Context) -> list:
    """Per VLAN used by a provider network here: the VLAN device, its proxy NDP entries
    (kernel.ndp_proxy, as on the bridge) and the flows that rewrite the destination MAC of
    that VLAN's traffic from OVN (tagged) to the bridge's MAC (the device's MAC too)."""
    out: list = []
    for bridge, vlan in sorted(networks):
        if not vlan:
            continue
        dev = VlanDevice(bridge, vlan)
        out.append(dev)
        out += [ProxyNeighbour(dev.name, ip) for ip in ctx.cfg.kernel.ndp_proxy]
        mac, ports = ctx.bridges.flow_ports.get(bridge, (None, ()))
        if mac is not None:
            out += [FlowSpec(bridge, port, mac, vlan) for port in ports]
    return out



"""Why one address is (or is not) exposed here: the model's own answer, row by row (pure).

`ovnbgp explain ADDRESS` asks this module. It does not hold a second copy of the rules: what
is exposed comes from `desired_state()`, the Problems (malformed rows, waiting for up=true,
filtered by policy) are the ones the model recorded with their row uuid, and the placement
questions (bound here? a provider network mapped to a bridge here? the router's gateway
here?) are asked of the same Context and Topology the model computes from (ModelView). What
this module adds is only the wording of a "no", for the rows that mention the address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

from ovnbgp.config import Config
from ovnbgp.model import ipcache
from ovnbgp.model.cache import desired_state
from ovnbgp.model.lb import row_vips
from ovnbgp.model.parse import nat_residents
from ovnbgp.model.policy import FILTERED
from ovnbgp.model.query import ModelView
from ovnbgp.model.records import (
    DesiredState,
    Exposure,
    ExposureKind,
    IPAddress,
    IPNetwork,
    LoadBalancerRow,
    LocalOvs,
    PortBindingRow,
    Problem,
    Snapshot,
)
from ovnbgp.model.topology import VM_TYPE

VM_PORT = "VM port"
GATEWAY = "router gateway (cr-lrp)"
ROUTER_INTERFACE = "router interface (tenant subnet)"
FLOATING_IP = "floating IP (nat_addresses)"
LOAD_BALANCER = "load balancer VIP"
PB_TABLE, LB_TABLE = "Port_Binding", "Load_Balancer"


@dataclass(frozen=True)
class RowAccount:
    """One Southbound row that mentions the address, and what the model makes of it."""

    row: str  # Port_Binding uuid (Load_Balancer uuid when `table` says so)
    port: str  # logical_port (a load balancer: its name)
    role: str
    exposed: tuple[Exposure, ...] = ()
    reasons: tuple[str, ...] = ()  # why it is not (or not fully) exposed, in operator words
    waiting: str = ""  # "port-up" when it only waits for ovn-controller, "lb-members"
    table: str = PB_TABLE

    def to_dict(self) -> dict:
        key = "load_balancer" if self.table == LB_TABLE else "port_binding"
        return {key: self.row, "port": self.port, "role": self.role,
                "exposed": [str(e.prefix) for e in self.exposed], "reasons": list(self.reasons),
                "waiting": self.waiting}


@dataclass(frozen=True)
class Account:
    """The model's whole answer for one address (see `account()`)."""

    target: IPNetwork
    chassis: str
    exposures: tuple[Exposure, ...]
    rows: tuple[RowAccount, ...]
    state: DesiredState = field(compare=False)
    notes: tuple[str, ...] = ()  # local-OVS problems that concern every address
    local: LocalOvs = field(default=LocalOvs(""), compare=False)  # the local OVS view read

    @property
    def exposed(self) -> bool:
        return bool(self.exposures)


def parse_target(text: str) -> IPNetwork:
    """An IP (as a host prefix) or a prefix; ValueError with the reason otherwise."""
    text = text.strip()
    if "/" in text:
        return ipaddress.ip_network(text, strict=True)
    ip = ipaddress.ip_address(text)
    return ipaddress.ip_network((ip, ip.max_prefixlen))


def _overlaps(prefix: IPNetwork, target: IPNetwork) -> bool:
    return prefix.version == target.version and prefix.overlaps(target)


def _tokens(entry: str) -> Iterable[IPNetwork]:
    """The IPs and prefixes written in one mac/nat_addresses entry, whatever else is in it."""
    for tok in entry.replace('"', " ").replace("(", " ").replace(")", " ").split():
        try:
            yield ipaddress.ip_interface(tok).network if "/" in tok else \
                ipaddress.ip_network(tok)
        except ValueError:
            continue


def _hosts(entry: str) -> Iterable[IPNetwork]:
    """Like _tokens, but an interface `IP/LEN` counts as its own IP."""
    for tok in entry.replace('"', " ").split():
        try:
            ip = ipaddress.ip_interface(tok).ip
        except ValueError:
            continue
        yield ipaddress.ip_network((ip, ip.max_prefixlen))


def account(snapshot: Snapshot, cfg: Config, target: IPNetwork) -> Account:
    """What the model exposes for `target` (an IP as /32 or /128, or a prefix) and, for every
    row that mentions it, why that row does or does not make it exposed."""
    state = desired_state(snapshot, cfg)
    view = ModelView.of(snapshot, cfg)
    exposures = tuple(sorted((e for e in state.exposures if _overlaps(e.prefix, target)),
                             key=lambda e: (e.prefix.prefixlen, e.kind.value, e.port)))
    problems: dict[str, list[Problem]] = {}
    for p in state.problems:
        problems.setdefault(p.row, []).append(p)
    why = _Why(snapshot, view, state, problems)
    rows: list[RowAccount] = []
    for uuid in sorted(snapshot.port_bindings):
        row = snapshot.port_bindings[uuid]
        rows += why.row(row, target)
    for uuid in sorted(snapshot.load_balancers):
        rows += why.load_balancer(snapshot.load_balancers[uuid], target)
    order = {GATEWAY: 0, ROUTER_INTERFACE: 1, LOAD_BALANCER: 2, FLOATING_IP: 3, VM_PORT: 4}
    rows.sort(key=lambda r: (order[r.role], r.port, r.row))
    notes = tuple(p.reason for p in problems.get("", ()) if p.level != "debug")
    return Account(target, snapshot.local.system_id, exposures, tuple(rows), state, notes,
                   snapshot.local)


class _Why:
    """The wording of one row's story; placement questions go to the model's ModelView."""

    def __init__(self, snapshot: Snapshot, view: ModelView, state: DesiredState,
                 problems: dict[str, list[Problem]]):
        self.rows = snapshot.port_bindings
        self.view = view
        self.here = snapshot.local.system_id or "(no system-id)"
        self.problems = problems
        self.by_name: dict[str, PortBindingRow] = {}
        for uuid in sorted(self.rows):
            self.by_name.setdefault(self.rows[uuid].logical_port, self.rows[uuid])
        self.localnet_dps = {r.datapath for r in self.rows.values() if r.type == "localnet"}
        self.exposed_by: dict[str, list[Exposure]] = {}
        self.lb_vips_by_port: dict[str, list[Exposure]] = {}  # cr-lrp -> the VIPs it delivers
        for e in state.exposures:
            self.exposed_by.setdefault(e.row, []).append(e)
            if e.kind is ExposureKind.LB_VIP:
                self.lb_vips_by_port.setdefault(e.port, []).append(e)

    # -- which rows mention the address ---------------------------------------------------

    def row(self, row: PortBindingRow, target: IPNetwork) -> list[RowAccount]:
        out: list[RowAccount] = []
        if row.type == VM_TYPE:
            if any(_overlaps(n, target) for e in row.mac for n in _tokens(e)):
                out.append(self._vm(row, target))
        elif row.type == "chassisredirect":
            if any(_overlaps(n, target) for e in row.mac for n in _hosts(e)):
                out.append(self._gateway(row, target))
        elif row.type == "patch":
            if self._is_router_interface(row) and \
                    any(_overlaps(n, target) for e in row.mac for n in _tokens(e)):
                out.append(self._router_interface(row, target))
            entries = [e for e in row.nat_addresses if any(_overlaps(n, target) for n in _hosts(e))]
            if entries:
                out.append(self._fip(row, entries, target))
        return out

    def _is_router_interface(self, row: PortBindingRow) -> bool:
        """A router port (not the gateway port) whose peer is on a switch without localnet."""
        if "chassis-redirect-port" in row.options or row.mac == ("router",):
            return False
        peer = self.by_name.get(row.options.get("peer", ""))
        return peer is not None and peer.datapath not in self.localnet_dps

    # -- the stories ----------------------------------------------------------------------

    def _base(self, row: PortBindingRow, target: IPNetwork) -> tuple[tuple, list[str], str]:
        exposed = tuple(e for e in self.exposed_by.get(row.uuid, ()) if _overlaps(e.prefix, target))
        reasons: list[str] = []
        waiting = ""
        for p in self.problems.get(row.uuid, ()):
            if p.waiting:
                waiting = p.waiting
                reasons.append(f"port {row.logical_port} is bound here but ovn-controller has not "
                               "wired it yet (waiting for up=true)")
            elif p.level != "debug" or FILTERED in p.reason or not exposed:
                reasons.append(p.reason)
        return exposed, reasons, waiting

    def _where(self, row: PortBindingRow, what: str) -> str | None:
        """Why a port is not bound here, or None when it is."""
        if row.chassis is None:
            return f"{what} {row.logical_port} is not bound to any chassis"
        if row.chassis not in self.view.ctx.chassis_names:
            return None  # the model's own problem says it (chassis not in the Chassis table)
        if row.chassis != self.view.system_id:
            return f"{what} {row.logical_port} is bound to chassis {row.chassis}, not here ({self.here})"
        return None

    def _vm(self, row: PortBindingRow, target: IPNetwork) -> RowAccount:
        exposed, reasons, waiting = self._base(row, target)
        if not exposed:
            sig = self.view.topology.dp_sig.get(row.datapath)
            if sig is None:
                reasons += self._network_reasons(row.datapath)
            elif sig[0] == "provider":
                where = self._where(row, "port")
                if where:
                    reasons.append(where)
            elif row.chassis is None:
                reasons.append(f"port {row.logical_port} is not bound to any chassis")
            elif not waiting and row.chassis in self.view.ctx.chassis_names:
                reasons += self._filtered_for(row.datapath, target)
        return RowAccount(row.uuid, row.logical_port, VM_PORT, exposed, _unique(reasons), waiting)

    def _network_reasons(self, datapath: str) -> list[str]:
        """Why the network (datapath) of a port is neither a provider network mapped here nor
        a tenant network behind a router gateway here."""
        localnets = [r for r in self.rows.values() if r.type == "localnet" and r.datapath == datapath]
        if localnets:
            mappings = self.view.ctx.local.bridge_mappings
            have = ", ".join(f"{k}:{v}" for k, v in mappings.items()) or "none"
            out = []
            for ln in localnets:
                physnet = ln.options.get("network_name", "")
                bridge = mappings.get(physnet)
                if bridge is None:
                    out.append(f"provider network {physnet or '(no network_name)'} (localnet "
                               f"{ln.logical_port}, Port_Binding {ln.uuid}) is not mapped to a local "
                               f"bridge (ovn-bridge-mappings here: {have})")
                else:
                    out.append(f"provider network {physnet} maps to bridge {bridge}, which does "
                               "not exist in the local OVS DB")
            return out
        filtered = [why for _, why in self.view.topology.filtered.get(datapath, ())]
        if filtered:
            return filtered
        out = []
        for lrp in self._interfaces_on(datapath):
            out += self._gateway_elsewhere(lrp.datapath)
        return out or [f"tenant network (datapath {datapath}) has no router interface with a "
                       "gateway (cr-lrp): nothing routes to it from the provider network"]

    def _interfaces_on(self, switch: str) -> list[PortBindingRow]:
        out = []
        for r in self.rows.values():
            if r.type == "patch" and r.datapath == switch:
                lrp = self.by_name.get(r.options.get("peer", ""))
                if lrp is not None and lrp.type == "patch":
                    out.append(lrp)
        return sorted(out, key=lambda r: r.logical_port)

    def _crlrps(self, router: str) -> list[PortBindingRow]:
        return sorted((r for r in self.rows.values()
                       if r.type == "chassisredirect" and r.datapath == router),
                      key=lambda r: r.logical_port)

    def _gateway_elsewhere(self, router: str) -> list[str]:
        out = []
        for cr in self._crlrps(router):
            where = self._where(cr, "router gateway")
            if where:
                out.append(f"{where} (Port_Binding {cr.uuid}): its tenant networks are exposed "
                           "by that chassis")
            else:
                out += [p.reason for p in self.problems.get(cr.uuid, ())]
        return out

    def _filtered_for(self, switch: str, target: IPNetwork) -> list[str]:
        return [why for net, why in self.view.topology.filtered.get(switch, ())
                if _overlaps(net, target)] or \
               [f"{target} is not inside a tenant subnet exposed through a gateway here"]

    def _gateway(self, row: PortBindingRow, target: IPNetwork) -> RowAccount:
        exposed, reasons, waiting = self._base(row, target)
        if not exposed:
            where = self._where(row, "router gateway")
            if where:
                reasons.insert(0, where)
        return RowAccount(row.uuid, row.logical_port, GATEWAY, exposed, _unique(reasons), waiting)

    def _router_interface(self, row: PortBindingRow, target: IPNetwork) -> RowAccount:
        exposed, reasons, waiting = self._base(row, target)
        if not exposed and not any(FILTERED in r for r in reasons):
            reasons += self._gateway_elsewhere(row.datapath) or \
                [f"router of {row.logical_port} has no gateway (cr-lrp)"]
        return RowAccount(row.uuid, row.logical_port, ROUTER_INTERFACE, exposed,
                          _unique(reasons), waiting)

    def load_balancer(self, lb: LoadBalancerRow, target: IPNetwork) -> list[RowAccount]:
        """A Load_Balancer row that lists the address as a VIP (model/lb.py, model/fips.py)."""
        vips = [ip for ip in row_vips(lb, []) if _overlaps(ipcache.host(ip), target)]
        if not vips:
            return []
        exposed = tuple(e for e in self.exposed_by.get(lb.uuid, ()) if _overlaps(e.prefix, target))
        reasons: list[str] = []
        waiting = ""
        for p in self.problems.get(lb.uuid, ()):
            waiting = p.waiting or waiting
            if not exposed or p.level != "debug":
                reasons.append(p.reason)
        if not exposed and not waiting:
            for ip in vips:
                reasons += self._vip_placement(ip)
        return [RowAccount(lb.uuid, lb.name, LOAD_BALANCER, exposed, _unique(reasons), waiting,
                           LB_TABLE)]

    def _vip_placement(self, ip: IPAddress) -> list[str]:
        """Why a VIP no gateway here delivers is not exposed: which gateway OVN gives it to."""
        out = []
        for row in sorted(self.rows.values(), key=lambda r: r.logical_port):
            for entry in row.nat_addresses:
                if ipcache.host(ip) not in set(_hosts(entry)):
                    continue
                for name in sorted(nat_residents((entry,))):
                    res = self.by_name.get(name)
                    where = self._where(res, "router gateway") if res is not None else None
                    if where:
                        out.append(f"{where}: OVN load-balances VIP {ip} there")
                    nets = self.view.topology.router_nets.get(res.datapath, ()) if res else ()
                    if any(ip.version == n.version and ip in n for n in nets):
                        out.append(f"VIP {ip} is in a tenant subnet of the router of {name}: a tenant "
                                   "address, reached through its floating IP (or its tenant subnet)")
        return out or [f"no router gateway lists VIP {ip} in its nat_addresses: the load balancer "
                       "is not on a router with a gateway (lr-lb-add), or northd refused its vips"]

    def _fip(self, row: PortBindingRow, entries: list[str], target: IPNetwork) -> RowAccount:
        exposed: list[Exposure] = []
        host = f" {target.network_address} " if target.prefixlen == target.max_prefixlen else None
        reasons = [p.reason for p in self.problems.get(row.uuid, ())
                   if any(e in p.reason for e in entries) or (host and host in p.reason)]
        waiting = ""
        if row.datapath not in self.view.topology.provider:
            reasons += self._network_reasons(row.datapath)
        for entry in entries:
            for name in sorted(nat_residents((entry,))):
                res = self.by_name.get(name)
                if res is None:
                    continue
                exposed += [e for e in self.exposed_by.get(res.uuid, ()) if _overlaps(e.prefix, target)]
                exposed += [e for e in self.lb_vips_by_port.get(res.logical_port, ())
                            if _overlaps(e.prefix, target)]
                if exposed:
                    continue
                what = "port" if res.type == VM_TYPE else "router gateway"
                where = self._where(res, what)
                if where:
                    reasons.append(f"{where}: the floating IP goes where {res.logical_port} is")
                for p in self.problems.get(res.uuid, ()):
                    if p.waiting:
                        waiting = p.waiting
                        reasons.append(f"port {res.logical_port} is bound here but ovn-controller "
                                       "has not wired it yet (waiting for up=true)")
        return RowAccount(row.uuid, row.logical_port, FLOATING_IP, tuple(exposed),
                          () if exposed else _unique(reasons), waiting)


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))

"""The kernel reconciler's settings, and validation of everything that reaches netlink.

Invalid input is refused before any change: `validate()` collects every problem of a
DesiredState (interface names, table ids, addresses, families, duplicates) and raises one
KernelInputError naming each bad object.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from ovnbgp.config import (
    FRR_ROUTE_PROTOCOLS,
    FRR_ROUTE_PROTOCOLS_TEXT,
    IFNAME_RE,
    MAC_RE,
    RESERVED_TABLES,
    Config,
    KernelConfig,
    vlan_device_name,
)
from ovnbgp.model.records import BridgeSetup, DesiredState, Neighbour, ProxyNeighbour, Route, Rule


class KernelInputError(ValueError):
    """Desired state or settings that cannot be applied; nothing was changed."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        super().__init__("invalid kernel input: " + "; ".join(problems[:10]) + more)


@dataclass(frozen=True)
class KernelSettings:
    vrf_name: str = "ovn-bgp-vrf"
    vrf_table: int = 10
    dummy_name: str = "ovn"
    route_protocol: int = 240
    rt_tables_file: Path = Path("/etc/iproute2/rt_tables.d/ovnbgp.conf")
    # False: steering only (no VRF, dummy or dummy addresses): for a kernel without the
    # dummy/vrf drivers (the host test tier) or when something else advertises.
    advertise: bool = True

    @classmethod
    def from_config(cls, cfg: Config | KernelConfig, *, advertise: bool = True,
                    rt_tables_file: Path | None = None) -> KernelSettings:
        k = cfg.kernel if isinstance(cfg, Config) else cfg
        return cls(vrf_name=k.vrf_name, vrf_table=k.vrf_table, dummy_name=k.dummy_name,
                   route_protocol=k.route_protocol,
                   rt_tables_file=Path(rt_tables_file or k.rt_tables_file), advertise=advertise)

    def check(self) -> None:
        problems = []
        for what, name in (("vrf_name", self.vrf_name), ("dummy_name", self.dummy_name)):
            if not valid_ifname(name):
                problems.append(f"kernel.{what} {name!r}: not a valid interface name")
        if not valid_table(self.vrf_table):
            problems.append(f"kernel.vrf_table {self.vrf_table!r}: not a usable table id")
        if (not isinstance(self.route_protocol, int) or not 5 <= self.route_protocol <= 254
                or self.route_protocol in FRR_ROUTE_PROTOCOLS):
            problems.append(f"kernel.route_protocol {self.route_protocol!r}: must be 5..254 and "
                            f"not one of FRR's ({FRR_ROUTE_PROTOCOLS_TEXT})")
        if problems:
            raise KernelInputError(problems)


def valid_ifname(name: object) -> bool:
    return isinstance(name, str) and bool(IFNAME_RE.fullmatch(name)) and name not in (".", "..")


def valid_table(t: object) -> bool:
    return (isinstance(t, int) and not isinstance(t, bool) and 0 < t < 2**32
            and t not in RESERVED_TABLES)


def _is_net(v: object, family: int | None = None) -> bool:
    return (isinstance(v, (ipaddress.IPv4Network, ipaddress.IPv6Network))
            and (family is None or v.version == family))


def _is_addr(v: object, family: int | None = None) -> bool:
    return (isinstance(v, (ipaddress.IPv4Address, ipaddress.IPv6Address))
            and (family is None or v.version == family))


def validate(desired: DesiredState, settings: KernelSettings) -> None:
    """Raise KernelInputError listing every invalid object of `desired` (nothing applied)."""
    problems: list[str] = []
    tables: dict[int, str] = {}
    names: set[str] = set()
    for b in sorted(desired.bridges, key=lambda b: (str(b.name), str(b.table))):
        problems += _check_bridge(b, settings)
        if b.name in names:
            problems.append(f"bridge {b.name!r}: listed twice")
        names.add(b.name)
        if isinstance(b.table, int) and b.table in tables and tables[b.table] != b.name:
            problems.append(f"bridge {b.name!r}: table {b.table} already belongs to {tables[b.table]!r}")
        tables.setdefault(b.table, b.name)
    if settings.advertise:
        for e in desired.exposures:
            if not _is_net(e.prefix):
                problems.append(f"exposure {e.prefix!r} (port {e.port!r}): not an IP network")
            if e.bridge not in names:
                problems.append(f"exposure {e.prefix} (port {e.port!r}): bridge {e.bridge!r} has no BridgeSetup")
    for r in desired.rules:
        problems += _check_rule(r, settings)
    seen_routes: dict[tuple, Route] = {}
    for rt in desired.routes:
        problems += _check_route(rt, settings)
        k = (rt.table, rt.dst)
        if k in seen_routes and seen_routes[k] != rt:
            pair = sorted((str(seen_routes[k]), str(rt)))
            problems.append(f"route {rt.dst} table {rt.table}: two different routes wanted "
                            f"({pair[0]} and {pair[1]})")
        seen_routes.setdefault(k, rt)
    seen_neigh: dict[tuple, Neighbour] = {}
    for n in desired.neighbours:
        problems += _check_neigh(n)
        nkey = (n.dev, n.ip)
        if nkey in seen_neigh and seen_neigh[nkey] != n:
            macs = sorted((str(seen_neigh[nkey].mac), str(n.mac)))
            problems.append(f"neighbour {n.ip} dev {n.dev}: two MACs wanted ({macs[0]}, {macs[1]})")
        seen_neigh.setdefault(nkey, n)
    for pn in desired.proxy_neighbours:
        problems += _check_proxy(pn)
    for v in desired.vlans:
        if vlan_device_name(v.bridge, v.vlan) is None:
            problems.append(f"VLAN device {v.bridge!r}.{v.vlan!r}: not a VLAN 1..4094 on a "
                            "bridge with a name of 15 characters at most")
        elif v.bridge not in names:
            problems.append(f"VLAN device {v.name}: bridge {v.bridge!r} has no BridgeSetup")
    if problems:
        raise KernelInputError(sorted(set(problems)))


def _check_bridge(b: BridgeSetup, s: KernelSettings) -> list[str]:
    out = []
    if not valid_ifname(b.name):
        out.append(f"bridge {b.name!r}: not a valid interface name")
    if not valid_table(b.table):
        out.append(f"bridge {b.name!r}: table id {b.table!r} is not usable (1..2^32-1, not 253-255)")
    elif b.table == s.vrf_table:
        out.append(f"bridge {b.name!r}: table {b.table} is the VRF's table")
    for a in b.addresses:
        if not isinstance(a, (ipaddress.IPv4Interface, ipaddress.IPv6Interface)):
            out.append(f"bridge {b.name!r}: address {a!r} is not an IP address/prefix")
    if b.name in (s.vrf_name, s.dummy_name):
        out.append(f"bridge {b.name!r}: same name as the VRF or the dummy")
    return out


def _check_rule(r: Rule, s: KernelSettings) -> list[str]:
    ok = (r.family in (4, 6) and (r.dst is None or _is_net(r.dst, r.family))
          and valid_table(r.table) and r.table != s.vrf_table
          and isinstance(r.priority, int) and not isinstance(r.priority, bool)
          and 0 < r.priority < 2**32)
    if ok:
        return []
    out = []
    what = f"rule to {r.dst} lookup {r.table}"
    if r.family not in (4, 6):
        out.append(f"{what}: family {r.family!r} is not 4 or 6")
    if r.dst is not None and not _is_net(r.dst, r.family):
        out.append(f"{what}: destination {r.dst!r} is not an IPv{r.family} network")
    if not valid_table(r.table) or r.table == s.vrf_table:
        out.append(f"{what}: table id {r.table!r} is not usable")
    if not isinstance(r.priority, int) or isinstance(r.priority, bool) or not 0 < r.priority < 2**32:
        out.append(f"{what}: priority {r.priority!r} is not 1..2^32-1")
    return out


def _check_route(rt: Route, s: KernelSettings) -> list[str]:
    if (_is_net(rt.dst) and valid_table(rt.table) and rt.table != s.vrf_table
            and valid_ifname(rt.dev) and (rt.gateway is None or _is_addr(rt.gateway, rt.dst.version))):
        return []
    out = []
    what = f"route {rt.dst!r} table {rt.table!r}"
    if not _is_net(rt.dst):
        out.append(f"{what}: destination is not an IP network")
        return out
    if not valid_table(rt.table) or rt.table == s.vrf_table:
        out.append(f"{what}: table id {rt.table!r} is not usable")
    if not valid_ifname(rt.dev):
        out.append(f"{what}: device {rt.dev!r} is not a valid interface name")
    if rt.gateway is not None and not _is_addr(rt.gateway, rt.dst.version):
        out.append(f"{what}: gateway {rt.gateway!r} is not an IPv{rt.dst.version} address")
    return out


def _check_neigh(n: Neighbour) -> list[str]:
    out = []
    what = f"neighbour {n.ip!r} dev {n.dev!r}"
    if not _is_addr(n.ip):
        out.append(f"{what}: not an IP address")
    if not valid_ifname(n.dev):
        out.append(f"{what}: device is not a valid interface name")
    if not isinstance(n.mac, str) or not MAC_RE.fullmatch(n.mac):
        out.append(f"{what}: MAC {n.mac!r} is not lower-case aa:bb:cc:dd:ee:ff")
    return out


def _check_proxy(n: ProxyNeighbour) -> list[str]:
    out = []
    what = f"proxy neighbour {n.ip!r} dev {n.dev!r}"
    if not _is_addr(n.ip) or n.ip.is_multicast or n.ip.is_unspecified:
        out.append(f"{what}: not a unicast IP address")
    if not valid_ifname(n.dev):
        out.append(f"{what}: device is not a valid interface name")
    return out

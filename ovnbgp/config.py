"""Typed, validated configuration.

One TOML file (default /etc/ovnbgp/ovnbgp.toml). Every key has a default taken from the reference
design, so an empty file is a valid config for a lab; an unknown key or a bad value raises
ConfigError naming the key (`section.key`) and what is accepted. Every value that can reach an
FRR template or a netlink call is checked here (names against a strict pattern, addresses as
ipaddress objects), so later code can trust it.
"""

from __future__ import annotations

import codecs
import dataclasses
import ipaddress
import os
import re
import stat
import tomllib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

DEFAULT_PATH = Path("/etc/ovnbgp/ovnbgp.toml")

# The patterns and ids every layer checks against, defined once. Always use `fullmatch`: with
# `match` a trailing newline ("br-ex\n") would pass.
# Linux interface names: 1-15 chars, no '/', whitespace or ':'; we are stricter still.
IFNAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,14}")
# The VLAN devices ovnbgp makes on a provider bridge for a VLAN provider network: BRIDGE.VID,
# VID 1..4094 without leading zeros, 15 characters at most (vlan_device_name()).
VLAN_DEV_RE = re.compile(r"(?P<bridge>[A-Za-z0-9][A-Za-z0-9_.-]{0,12})\.(?P<vid>[1-9][0-9]{0,3})")
VLAN_MIN, VLAN_MAX = 1, 4094
# An Ethernet address in the lower-case form OVS and the kernel print.
MAC_RE = re.compile(r"[0-9a-f]{2}(?::[0-9a-f]{2}){5}")
# Anything that may name an OVS port in an ovs-ofctl match: no separators, no spaces.
OVS_PORT_RE = re.compile(r"[A-Za-z0-9_.-]{1,255}")


def vlan_device_name(bridge: str, vid: int) -> str | None:
    """The name of ovnbgp's VLAN device for VLAN `vid` on `bridge` ("br-ex.100"), or None when
    the pair cannot make one (a bad bridge name, a VID out of 1..4094, more than 15 chars)."""
    if (isinstance(vid, bool) or not isinstance(vid, int) or not VLAN_MIN <= vid <= VLAN_MAX
            or not isinstance(bridge, str)):
        return None
    name = f"{bridge}.{vid}"
    m = VLAN_DEV_RE.fullmatch(name)
    return name if m is not None and m["bridge"] == bridge and IFNAME_RE.fullmatch(name) else None


# Routing table ids the kernel reserves: unspec, default, main, local.
RESERVED_TABLES = frozenset({0, 253, 254, 255})
# FRR object names (peer groups, route-maps, VRFs): conservative.
FRR_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,62}$")
OVSDB_REMOTE_RE = re.compile(
    r"^(unix:/[^\s\x00]+|(tcp|ssl):(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):[0-9]{1,5})$"
)
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("text", "json")
STEERING_MODES = ("rules", "table")
# rtnetlink protocol ids FRR's zebra uses (11 zebra, 186 bgp .. 197 openfabric; see
# /etc/iproute2/rt_protos.d/frr.conf): 196 is staticd's. ovnbgp must not mark its routes so.
FRR_ROUTE_PROTOCOLS = frozenset({11, *range(186, 198)})
FRR_ROUTE_PROTOCOLS_TEXT = "11, 186-197"


K = TypeVar("K")
V = TypeVar("V")


class FrozenMap(Mapping[K, V], Generic[K, V]):
    """An immutable, hashable mapping that keeps its order: Config's tables of values, so a
    whole Config can be hashed (a cache key, a set member) and compared."""

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[K, V] | Iterable[tuple[K, V]] = ()):
        self._items: dict[K, V] = dict(items)

    def __getitem__(self, key: K) -> V:
        return self._items[key]

    def __iter__(self) -> Iterator[K]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(frozenset(self._items.items()))

    def __repr__(self) -> str:
        return f"FrozenMap({self._items!r})"


class ConfigError(ValueError):
    """A config file that cannot be used; the message names the key."""

    def __init__(self, key: str, message: str):
        self.key = key
        super().__init__(f"{key}: {message}")


@dataclass(frozen=True)
class OvnConfig:
    sb_remotes: tuple[str, ...] = ("unix:/var/run/ovn/ovnsb_db.sock",)
    ssl_key: Path | None = None
    ssl_cert: Path | None = None
    ssl_ca: Path | None = None
    ovs_remote: str = "unix:/var/run/openvswitch/db.sock"
    # Expose a VM port only once Port_Binding.up is true (ovn-controller wired it): exposing
    # earlier advertises a black hole. Ports whose `up` column is empty (old OVN) count as up.
    wait_for_port_up: bool = True
    # Mirror the whole Port_Binding table instead of asking the Southbound only for the rows
    # this chassis can use (as ovn-controller's ovn-monitor-all): for debugging, or a server
    # without conditional monitoring. Costs memory and CPU proportional to the cloud.
    monitor_all: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "sb_remotes", tuple(self.sb_remotes))


@dataclass(frozen=True)
class KernelConfig:
    vrf_name: str = "ovn-bgp-vrf"
    vrf_table: int = 10
    dummy_name: str = "ovn"
    rule_priority: int = 32000
    first_bridge_table: int = 200
    # Explicit bridge -> table ids; bridges not listed are numbered from first_bridge_table.
    bridge_tables: FrozenMap[str, int] = FrozenMap()
    bridge_ipv4: ipaddress.IPv4Interface = ipaddress.IPv4Interface("1.1.1.1/32")
    bridge_ipv6: ipaddress.IPv6Interface = ipaddress.IPv6Interface("fd53:d91e:400:7f17::1/128")
    steering: str = "rules"
    rt_tables_file: Path = Path("/etc/iproute2/rt_tables.d/ovnbgp.conf")
    # Route protocol id that marks ovnbgp's own routes, rules and neighbours (rtnetlink proto;
    # 5-254). Not one of FRR's (FRR_ROUTE_PROTOCOLS): zebra sweeps routes with those as its own.
    route_protocol: int = 240
    # IPv6 addresses every provider bridge answers neighbour solicitations for (proxy NDP
    # entries, `ip -6 neigh add proxy ADDR dev BRIDGE`): the gateway of each IPv6 provider
    # subnet. IPv4 needs no list (proxy_arp answers any address the node has a route to);
    # proxy_ndp answers only the addresses in the kernel's proxy table.
    ndp_proxy: tuple[ipaddress.IPv6Address, ...] = ()

    def __post_init__(self) -> None:
        # Hashable whatever a caller passes (a dict, a list).
        object.__setattr__(self, "bridge_tables", FrozenMap(self.bridge_tables))
        object.__setattr__(self, "ndp_proxy", tuple(self.ndp_proxy))


@dataclass(frozen=True)
class Peer:
    """A BGP neighbour: by interface (unnumbered) or by address with remote AS."""

    interface: str | None = None
    address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = None
    remote_as: int | str = "external"


@dataclass(frozen=True)
class BgpConfig:
    asn: int = 64999
    router_id: ipaddress.IPv4Address | None = None
    peers: tuple[Peer, ...] = ()
    peer_group: str = "ovnbgp-leaves"
    bfd: bool = False
    # BFD timers (FRR profile `ovnbgp`): 250 ms x 3 declares a peer down in 0.75 s.
    bfd_receive_interval: int = 250
    bfd_transmit_interval: int = 250
    bfd_detect_multiplier: int = 3
    graceful_restart: bool = False
    # Seconds a peer keeps our routes (stale) while our bgpd restarts (FRR's default).
    graceful_restart_time: int = 120
    maximum_paths: int = 0
    snippet_file: Path | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "peers", tuple(self.peers))


@dataclass(frozen=True)
class FrrConfig:
    vtysh: Path = Path("/usr/bin/vtysh")
    reload: Path = Path("/usr/lib/frr/frr-reload.py")
    config_file: Path = Path("/etc/frr/frr.conf")
    daemons_file: Path = Path("/etc/frr/daemons")
    # Directory of the vty sockets; empty means FRR's default (/var/run/frr).
    vty_socket: Path | None = None
    # FRR instance name (`-N`); empty for the default instance.
    pathspace: str | None = None


@dataclass(frozen=True)
class AgentConfig:
    resync_interval: float = 300.0
    debounce: float = 0.2
    metrics_listen: str = "127.0.0.1:9476"
    state_dir: Path = Path("/var/lib/ovnbgp")
    lock_file: Path = Path("/run/ovnbgp.lock")


@dataclass(frozen=True)
class LogConfig:
    level: str = "info"
    format: str = "text"


@dataclass(frozen=True)
class ExposureConfig:
    """Which tenant networks (router interface subnets behind a gateway here, and the tenant
    VM IPs inside them) reach the fabric. The defaults keep the reference design: every
    tenant subnet is exposed. See the README, "Which tenant networks are exposed"."""

    # false: no tenant subnet and no tenant VM IP is exposed (FIPs, provider VMs and cr-lrps are).
    tenant_networks: bool = True
    # When not empty, only the tenant subnets inside one of these prefixes are exposed
    # (plus IPv6 global unicast subnets while tenant_ipv6_gua is true).
    tenant_prefixes: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    # IPv6 global unicast (2000::/3) tenant subnets are exposed even outside tenant_prefixes.
    tenant_ipv6_gua: bool = True
    # When not empty (alone or with tenant_prefixes), the tenant subnets whose Neutron address
    # scope (neutron:subnet_pool_addr_scope4/6 in the router interface's external_ids) is one
    # of these ids are exposed too.
    tenant_address_scopes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "tenant_prefixes", tuple(self.tenant_prefixes))
        object.__setattr__(self, "tenant_address_scopes", tuple(self.tenant_address_scopes))

    @property
    def restricted(self) -> bool:
        """Only some tenant subnets are exposed (prefixes or address scopes are listed)."""
        return bool(self.tenant_prefixes or self.tenant_address_scopes)


@dataclass(frozen=True)
class Config:
    ovn: OvnConfig = OvnConfig()
    kernel: KernelConfig = KernelConfig()
    bgp: BgpConfig = BgpConfig()
    frr: FrrConfig = FrrConfig()
    agent: AgentConfig = AgentConfig()
    log: LogConfig = LogConfig()
    exposure: ExposureConfig = ExposureConfig()


# --- parsing -----------------------------------------------------------------------------


def _check_type(key: str, value: Any, kind: type | tuple[type, ...], what: str) -> Any:
    # bool is an int in Python; never accept it where a number is asked for.
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise ConfigError(key, f"expected {what}, got {value!r}")
    if not isinstance(value, kind):
        raise ConfigError(key, f"expected {what}, got {value!r}")
    return value


def _int_range(key: str, value: Any, lo: int, hi: int) -> int:
    _check_type(key, value, int, f"an integer {lo}..{hi}")
    if not lo <= value <= hi:
        raise ConfigError(key, f"expected an integer {lo}..{hi}, got {value}")
    return value


def _number(key: str, value: Any, lo: float, hi: float) -> float:
    _check_type(key, value, (int, float), f"a number {lo}..{hi}")
    if not lo <= value <= hi:
        raise ConfigError(key, f"expected a number {lo}..{hi}, got {value}")
    return float(value)


def _ifname(key: str, value: Any) -> str:
    _check_type(key, value, str, "an interface name")
    if not IFNAME_RE.fullmatch(value):  # fullmatch: `$` would let a trailing \n through
        raise ConfigError(key, f"expected an interface name matching {IFNAME_RE.pattern}, got {value!r}")
    return value


def _frr_name(key: str, value: Any) -> str:
    _check_type(key, value, str, "a name")
    if not FRR_NAME_RE.fullmatch(value):
        raise ConfigError(key, f"expected a name matching {FRR_NAME_RE.pattern}, got {value!r}")
    return value


def _choice(key: str, value: Any, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ConfigError(key, f"expected one of {', '.join(choices)}, got {value!r}")
    return value


def _path(key: str, value: Any, optional: bool = False) -> Path | None:
    _check_type(key, value, str, "a path")
    if value == "" and optional:
        return None
    if not value.startswith("/") or "\0" in value or "\n" in value:
        raise ConfigError(key, f"expected an absolute path, got {value!r}")
    return Path(value)


def _remote(key: str, value: Any) -> str:
    _check_type(key, value, str, "an OVSDB remote")
    if not OVSDB_REMOTE_RE.fullmatch(value) or (
            not value.startswith("unix:") and not 0 < int(value.rpartition(":")[2]) < 65536):
        raise ConfigError(key, f"expected unix:/path, tcp:HOST:PORT or ssl:HOST:PORT, got {value!r}")
    return value


def _asn(key: str, value: Any) -> int:
    return _int_range(key, value, 1, 4294967295)


def _section(data: dict[str, Any], name: str) -> dict[str, Any]:
    section = data.get(name, {})
    if not isinstance(section, dict):
        raise ConfigError(name, "expected a table")
    return section


def _reject_unknown(prefix: str, section: dict[str, Any], known: set[str]) -> None:
    for k in section:
        if k not in known:
            raise ConfigError(f"{prefix}.{k}" if prefix else k,
                              f"unknown key; accepted: {', '.join(sorted(known))}")


def _parse_ovn(s: dict[str, Any]) -> OvnConfig:
    _reject_unknown("ovn", s, {f.name for f in dataclasses.fields(OvnConfig)})
    kw: dict[str, Any] = {}
    if "sb_remotes" in s:
        remotes = s["sb_remotes"]
        if isinstance(remotes, str):
            remotes = [remotes]
        _check_type("ovn.sb_remotes", remotes, list, "a list of OVSDB remotes")
        if not remotes:
            raise ConfigError("ovn.sb_remotes", "expected at least one remote")
        kw["sb_remotes"] = tuple(_remote(f"ovn.sb_remotes[{i}]", r) for i, r in enumerate(remotes))
    for k in ("ssl_key", "ssl_cert", "ssl_ca"):
        if k in s:
            kw[k] = _path(f"ovn.{k}", s[k], optional=True)
    if "ovs_remote" in s:
        kw["ovs_remote"] = _remote("ovn.ovs_remote", s["ovs_remote"])
    if "wait_for_port_up" in s:
        kw["wait_for_port_up"] = _check_type("ovn.wait_for_port_up", s["wait_for_port_up"], bool, "true or false")
    if "monitor_all" in s:
        kw["monitor_all"] = _check_type("ovn.monitor_all", s["monitor_all"], bool, "true or false")
    cfg = OvnConfig(**kw)
    uses_ssl = any(r.startswith("ssl:") for r in cfg.sb_remotes)
    if uses_ssl:
        for k in ("ssl_key", "ssl_cert", "ssl_ca"):
            if getattr(cfg, k) is None:
                raise ConfigError(f"ovn.{k}", "required when an ovn.sb_remotes entry uses ssl:")
    return cfg


def _ndp_proxy(key: str, value: Any) -> tuple[ipaddress.IPv6Address, ...]:
    _check_type(key, value, list, "a list of IPv6 addresses")
    out: list[ipaddress.IPv6Address] = []
    for i, v in enumerate(value):
        k = f"{key}[{i}]"
        _check_type(k, v, str, "an IPv6 address")
        try:
            ip = ipaddress.IPv6Address(v)
        except ValueError as e:
            raise ConfigError(k, f"expected an IPv6 address, got {v!r}") from e
        if "%" in v or ip.is_multicast or ip.is_unspecified or ip.is_loopback:
            raise ConfigError(k, f"expected a unicast IPv6 address, got {v!r}")
        if ip in out:
            raise ConfigError(k, f"{ip} is listed twice")
        out.append(ip)
    return tuple(out)


def _parse_kernel(s: dict[str, Any]) -> KernelConfig:
    _reject_unknown("kernel", s, {f.name for f in dataclasses.fields(KernelConfig)})
    kw: dict[str, Any] = {}
    if "vrf_name" in s:
        kw["vrf_name"] = _ifname("kernel.vrf_name", s["vrf_name"])
        if kw["vrf_name"] == "default":
            # FRR reads `router bgp ASN vrf default` as the global instance.
            raise ConfigError("kernel.vrf_name", "'default' is FRR's name for the main table")
    if "vrf_table" in s:
        kw["vrf_table"] = _int_range("kernel.vrf_table", s["vrf_table"], 1, 252)
    if "dummy_name" in s:
        kw["dummy_name"] = _ifname("kernel.dummy_name", s["dummy_name"])
    if "rule_priority" in s:
        kw["rule_priority"] = _int_range("kernel.rule_priority", s["rule_priority"], 1, 32765)
    if "first_bridge_table" in s:
        kw["first_bridge_table"] = _int_range("kernel.first_bridge_table", s["first_bridge_table"], 1, 252)
    if "bridge_tables" in s:
        bt = _check_type("kernel.bridge_tables", s["bridge_tables"], dict, "a table of bridge = table id")
        kw["bridge_tables"] = {
            _ifname("kernel.bridge_tables", b): _int_range(f"kernel.bridge_tables.{b}", t, 1, 252)
            for b, t in bt.items()
        }
    if "bridge_ipv4" in s:
        v = _check_type("kernel.bridge_ipv4", s["bridge_ipv4"], str, "an IPv4 address/prefix")
        try:
            kw["bridge_ipv4"] = ipaddress.IPv4Interface(v)
        except ValueError as e:
            raise ConfigError("kernel.bridge_ipv4", f"expected an IPv4 address/prefix, got {v!r}") from e
    if "bridge_ipv6" in s:
        v = _check_type("kernel.bridge_ipv6", s["bridge_ipv6"], str, "an IPv6 address/prefix")
        try:
            kw["bridge_ipv6"] = ipaddress.IPv6Interface(v)
        except ValueError as e:
            raise ConfigError("kernel.bridge_ipv6", f"expected an IPv6 address/prefix, got {v!r}") from e
    if "steering" in s:
        kw["steering"] = _choice("kernel.steering", s["steering"], STEERING_MODES)
    if "rt_tables_file" in s:
        kw["rt_tables_file"] = _path("kernel.rt_tables_file", s["rt_tables_file"])
    if "route_protocol" in s:
        kw["route_protocol"] = _int_range("kernel.route_protocol", s["route_protocol"], 5, 254)
        if kw["route_protocol"] in FRR_ROUTE_PROTOCOLS:
            raise ConfigError("kernel.route_protocol",
                              f"{kw['route_protocol']} is one of FRR's route protocols "
                              f"({FRR_ROUTE_PROTOCOLS_TEXT}); "
                              "zebra would treat those routes as its own")
    if "ndp_proxy" in s:
        kw["ndp_proxy"] = _ndp_proxy("kernel.ndp_proxy", s["ndp_proxy"])
    cfg = KernelConfig(**kw)
    if cfg.vrf_name == cfg.dummy_name:
        raise ConfigError("kernel.dummy_name", "must differ from kernel.vrf_name")
    tables = set(cfg.bridge_tables.values())
    if cfg.vrf_table in tables:
        raise ConfigError("kernel.vrf_table", "must differ from every kernel.bridge_tables id")
    return cfg


def _parse_peer(key: str, p: Any) -> Peer:
    _check_type(key, p, dict, "a table with interface or address")
    _reject_unknown(key, p, {"interface", "address", "remote_as"})
    interface = _ifname(f"{key}.interface", p["interface"]) if "interface" in p else None
    address = None
    if "address" in p:
        v = _check_type(f"{key}.address", p["address"], str, "an IP address")
        try:
            address = ipaddress.ip_address(v)
        except ValueError as e:
            raise ConfigError(f"{key}.address", f"expected an IP address, got {v!r}") from e
        # FRR's bgpd refuses a scoped address and cannot peer with these (vtysh -C lets them by).
        if "%" in v or address.is_unspecified or address.is_multicast or address.is_loopback \
                or address == ipaddress.IPv4Address("255.255.255.255"):
            raise ConfigError(f"{key}.address", f"expected a unicast peer address, got {v!r}")
        if address.is_link_local and address.version == 6:
            raise ConfigError(f"{key}.address",
                              f"{v} is link-local: give the peer by interface (BGP unnumbered)")
    if (interface is None) == (address is None):
        raise ConfigError(key, "give exactly one of interface (BGP unnumbered) or address")
    remote_as: int | str = "external"
    if "remote_as" in p:
        ra = p["remote_as"]
        if isinstance(ra, str):
            remote_as = _choice(f"{key}.remote_as", ra, ("external", "internal"))
        else:
            remote_as = _asn(f"{key}.remote_as", ra)
    elif address is not None:
        raise ConfigError(f"{key}.remote_as", "required for a peer given by address")
    return Peer(interface=interface, address=address, remote_as=remote_as)


def _parse_bgp(s: dict[str, Any]) -> BgpConfig:
    _reject_unknown("bgp", s, {f.name for f in dataclasses.fields(BgpConfig)})
    kw: dict[str, Any] = {}
    if "asn" in s:
        kw["asn"] = _asn("bgp.asn", s["asn"])
    if "router_id" in s:
        v = _check_type("bgp.router_id", s["router_id"], str, "an IPv4 address")
        if v:
            try:
                kw["router_id"] = ipaddress.IPv4Address(v)
            except ValueError as e:
                raise ConfigError("bgp.router_id", f"expected an IPv4 address, got {v!r}") from e
    if "peers" in s:
        peers = _check_type("bgp.peers", s["peers"], list, "a list of peer tables")
        kw["peers"] = tuple(_parse_peer(f"bgp.peers[{i}]", p) for i, p in enumerate(peers))
        seen: set[str] = set()
        for i, p in enumerate(kw["peers"]):
            ident = str(p.interface or p.address)
            if ident in seen:
                raise ConfigError(f"bgp.peers[{i}]", f"duplicate peer {ident}")
            seen.add(ident)
    if "peer_group" in s:
        kw["peer_group"] = _frr_name("bgp.peer_group", s["peer_group"])
    # FRR names a peer-group and an interface neighbour in the same namespace.
    for i, p in enumerate(kw.get("peers", ())):
        if p.interface is not None and p.interface == kw.get("peer_group", BgpConfig.peer_group):
            raise ConfigError(f"bgp.peers[{i}].interface", "must differ from bgp.peer_group")
    for k in ("bfd", "graceful_restart"):
        if k in s:
            kw[k] = _check_type(f"bgp.{k}", s[k], bool, "true or false")
    if "maximum_paths" in s:
        kw["maximum_paths"] = _int_range("bgp.maximum_paths", s["maximum_paths"], 0, 128)
    # FRR's own ranges (bfdd profile and `bgp graceful-restart restart-time`), so a value FRR
    # would refuse stops at `config check` with the key named, not at reload time.
    for k, lo, hi in (("bfd_receive_interval", 10, 60000), ("bfd_transmit_interval", 10, 60000),
                      ("bfd_detect_multiplier", 2, 255), ("graceful_restart_time", 1, 4095)):
        if k in s:
            kw[k] = _int_range(f"bgp.{k}", s[k], lo, hi)
    if "snippet_file" in s:
        kw["snippet_file"] = _path("bgp.snippet_file", s["snippet_file"], optional=True)
    return BgpConfig(**kw)


def _parse_frr(s: dict[str, Any]) -> FrrConfig:
    _reject_unknown("frr", s, {f.name for f in dataclasses.fields(FrrConfig)})
    kw: dict[str, Any] = {}
    for k in ("vtysh", "reload", "config_file", "daemons_file"):
        if k in s:
            kw[k] = _path(f"frr.{k}", s[k])
    if "vty_socket" in s:
        kw["vty_socket"] = _path("frr.vty_socket", s["vty_socket"], optional=True)
    if "pathspace" in s:
        v = _check_type("frr.pathspace", s["pathspace"], str, "an FRR instance name")
        kw["pathspace"] = _frr_name("frr.pathspace", v) if v else None
    return FrrConfig(**kw)


def _parse_listen(key: str, v: Any) -> str:
    _check_type(key, v, str, "HOST:PORT or empty to disable")
    if v == "":
        return v
    host, sep, port = v.rpartition(":")
    host = host.strip("[]")
    try:
        ipaddress.ip_address(host)
        ok = sep == ":" and port.isascii() and port.isdigit() and 0 < int(port) < 65536
    except ValueError:
        ok = False
    if not ok:
        raise ConfigError(key, f"expected IP:PORT (e.g. 127.0.0.1:9476) or empty to disable, got {v!r}")
    return v


def _parse_agent(s: dict[str, Any]) -> AgentConfig:
    _reject_unknown("agent", s, {f.name for f in dataclasses.fields(AgentConfig)})
    kw: dict[str, Any] = {}
    if "resync_interval" in s:
        kw["resync_interval"] = _number("agent.resync_interval", s["resync_interval"], 1, 86400)
    if "debounce" in s:
        kw["debounce"] = _number("agent.debounce", s["debounce"], 0, 10)
    if "metrics_listen" in s:
        kw["metrics_listen"] = _parse_listen("agent.metrics_listen", s["metrics_listen"])
    for k in ("state_dir", "lock_file"):
        if k in s:
            kw[k] = _path(f"agent.{k}", s[k])
    return AgentConfig(**kw)


def _parse_log(s: dict[str, Any]) -> LogConfig:
    _reject_unknown("log", s, {f.name for f in dataclasses.fields(LogConfig)})
    kw: dict[str, Any] = {}
    if "level" in s:
        kw["level"] = _choice("log.level", s["level"], LOG_LEVELS)
    if "format" in s:
        kw["format"] = _choice("log.format", s["format"], LOG_FORMATS)
    return LogConfig(**kw)


def _prefixes(key: str, value: Any) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    _check_type(key, value, list, "a list of prefixes such as \"10.0.0.0/8\"")
    out: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    for i, v in enumerate(value):
        k = f"{key}[{i}]"
        _check_type(k, v, str, "a prefix such as \"10.0.0.0/8\"")
        try:
            net = ipaddress.ip_network(v, strict=True)
        except ValueError as e:
            raise ConfigError(k, f"expected a prefix with its host bits zero (e.g. \"10.0.0.0/8\"), "
                              f"got {v!r}") from e
        if "/" not in v:
            raise ConfigError(k, f"expected a prefix with its length (e.g. \"{v}/32\"), got {v!r}")
        if net in out:
            raise ConfigError(k, f"{net} is listed twice")
        out.append(net)
    return tuple(out)


def _parse_exposure(s: dict[str, Any]) -> ExposureConfig:
    _reject_unknown("exposure", s, {f.name for f in dataclasses.fields(ExposureConfig)})
    kw: dict[str, Any] = {}
    for k in ("tenant_networks", "tenant_ipv6_gua"):
        if k in s:
            kw[k] = _check_type(f"exposure.{k}", s[k], bool, "true or false")
    if "tenant_prefixes" in s:
        kw["tenant_prefixes"] = _prefixes("exposure.tenant_prefixes", s["tenant_prefixes"])
    if "tenant_address_scopes" in s:
        kw["tenant_address_scopes"] = _scope_ids("exposure.tenant_address_scopes",
                                                 s["tenant_address_scopes"])
    return ExposureConfig(**kw)


SCOPE_ID_RE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")  # a Neutron address scope id (a UUID)


def _scope_ids(key: str, value: Any) -> tuple[str, ...]:
    _check_type(key, value, list, "a list of Neutron address scope ids")
    out: list[str] = []
    for i, v in enumerate(value):
        k = f"{key}[{i}]"
        _check_type(k, v, str, "a Neutron address scope id")
        if not SCOPE_ID_RE.fullmatch(v):
            raise ConfigError(k, f"expected a Neutron address scope id (letters, digits, '-', "
                              f"'_', '.', ':'; up to 64), got {v!r}")
        if v in out:
            raise ConfigError(k, f"{v} is listed twice")
        out.append(v)
    return tuple(out)


_SECTIONS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "ovn": _parse_ovn,
    "kernel": _parse_kernel,
    "bgp": _parse_bgp,
    "frr": _parse_frr,
    "agent": _parse_agent,
    "log": _parse_log,
    "exposure": _parse_exposure,
}


def parse(data: dict[str, Any]) -> Config:
    """Build a Config from already-decoded TOML data."""
    _reject_unknown("", data, set(_SECTIONS))
    return Config(**{name: fn(_section(data, name)) for name, fn in _SECTIONS.items()})


def loads(text: str) -> Config:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError("(file)", f"not valid TOML: {e}") from e
    except RecursionError as e:  # tomllib recurses once per nested array/inline table
        raise ConfigError("(file)", "not valid TOML: arrays or tables nested too deeply") from e
    return parse(data)


def load(path: Path | str | None = None, *, missing_ok: bool = False) -> Config:
    """Load and validate a config file. A missing default file gives the defaults if missing_ok.

    Whatever is at the path (any bytes, a directory, a FIFO, a device) gives a Config or a
    one-line ConfigError naming the file: the CLI exits 2 on it, SIGHUP keeps the running config.
    """
    p = Path(path) if path else DEFAULT_PATH
    try:
        data = _read_file(p)
    except FileNotFoundError:
        if missing_ok:
            return Config()
        raise ConfigError("(file)", f"{p} does not exist") from None
    text = _decode(p, data)
    try:
        return loads(text)
    except ConfigError as e:
        if e.key != "(file)":
            raise
        raise ConfigError("(file)", f"{p}: {str(e).removeprefix('(file): ')}") from e


MAX_FILE_BYTES = 1 << 20  # far more than any config; stops a runaway file being read whole

_FILE_KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
               (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def _read_file(p: Path) -> bytes:
    """The file's bytes; ConfigError for anything but a readable regular file of sane size.
    FileNotFoundError passes through (missing_ok). Never blocks: a FIFO is refused unread."""
    try:
        st = p.stat()
        if stat.S_ISDIR(st.st_mode):
            raise ConfigError("(file)", f"{p} is a directory, not a config file")
        if not stat.S_ISREG(st.st_mode):
            kind = next((name for test, name in _FILE_KINDS if test(st.st_mode)), "not a file")
            raise ConfigError("(file)", f"{p} is not a regular file ({kind})")
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):  # replaced between stat and open
                raise ConfigError("(file)", f"{p} is not a regular file")
            with os.fdopen(fd, "rb", closefd=False) as f:
                data = f.read(MAX_FILE_BYTES + 1)
        finally:
            os.close(fd)
    except FileNotFoundError:
        raise
    except OSError as e:
        raise ConfigError("(file)", f"cannot read {p}: {e.strerror or e}") from e
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError("(file)", f"{p} is larger than {MAX_FILE_BYTES} bytes")
    return data


def _decode(p: Path, data: bytes) -> str:
    data = data.removeprefix(codecs.BOM_UTF8)  # some editors write one; TOML is UTF-8 anyway
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError("(file)", f"{p} is not UTF-8 text ({e.reason} 0x{data[e.start]:02x} "
                          f"at offset {e.start})") from None


def to_dict(cfg: Config) -> dict[str, Any]:
    """The effective config as plain JSON-able data (for `config show`)."""

    def plain(v: Any) -> Any:
        if dataclasses.is_dataclass(v):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)
                    if getattr(v, f.name) is not None}
        if isinstance(v, (tuple, list)):
            return [plain(x) for x in v]
        if isinstance(v, Mapping):
            return {k: plain(x) for k, x in v.items()}
        if isinstance(v, (bool, int, float)) or v is None:
            return v
        return str(v)

    return plain(cfg)


def to_toml(cfg: Config) -> str:
    """Render the effective config as TOML (only the value types this module produces)."""

    def val(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, list):
            return "[" + ", ".join(val(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{_toml_key(k)} = {val(x)}" for k, x in v.items()) + " }"
        return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'

    out: list[str] = []
    for section, values in to_dict(cfg).items():
        out.append(f"[{section}]")
        for k, v in values.items():
            out.append(f"{k} = {val(v)}")
        out.append("")
    return "\n".join(out)


def _toml_key(k: str) -> str:
    return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else '"' + k + '"'

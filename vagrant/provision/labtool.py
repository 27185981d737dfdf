#!/usr/bin/env python3
"""The spine-leaf lab's topology (vagrant/topology.json) turned into per-host settings.

One source of truth for two labs: the Vagrant lab (real VMs, vagrant/Vagrantfile) and the vm
test tier (network namespaces in one User-Mode Linux kernel, tests/lab). Both run the same
provisioning scripts (vagrant/provision/*.sh), which call this program; tests/lab imports it.
Standard library only: it runs with the system python3 of a fresh VM, before any venv exists.

    labtool.py hosts [--role ROLE]      host names (of LAB_HOSTS, else all), one a line
    labtool.py role HOST                the host's role (spine, leaf, node, central, outside)
    labtool.py apply-net HOST           NIC names (by MAC), OVS uplink bridges (nodes), addresses,
                                        routes, sysctls: run inside HOST (or its netns)
    labtool.py frr-config HOST          FRR config of a fabric router (spine, leaf)
    labtool.py frr-daemons              FRR daemons every router runs (bgpd; bfdd with BFD)
    labtool.py zebra-options            a node's extra zebra options (graceful restart: -r -K N)
    labtool.py ovs-setup HOST           ovn-controller's Open_vSwitch settings and br-ex (nodes)
    labtool.py ovnbgp-config HOST ...   the node's ovnbgp TOML (see `ovnbgp-config --help`)
    labtool.py frr-snippet HOST         the node's operator snippet (loopback advertisement)
    labtool.py node-setup HOST --etc DIR ...
                                        ovs-setup, then DIR/frr-snippet.conf and DIR/ovnbgp.toml
                                        (one process: what ovn-node.sh runs)
    labtool.py ovn-listen               the central's NB and SB listen remotes (ptcp:PORT:0.0.0.0)
    labtool.py vagrant-plan             JSON the Vagrantfile builds the VMs from
    labtool.py show HOST                everything derived for HOST (JSON), for humans

Environment: LAB_TOPOLOGY (default: ../topology.json beside this file), LAB_HOSTS (comma-
separated subset of the hosts; links to hosts outside it are left out), LAB_OVS_DB (ovs-vsctl
--db of the node, default OVS's own), LAB_DATAPATH (system | netdev, default system).

Addressing and naming rules are in tests/lab/README.md. Every name and address is checked
when the topology is loaded (names against a strict pattern, addresses with ipaddress), so
the commands and config text built from them are safe.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

HERE = Path(__file__).resolve().parent
DEFAULT_TOPOLOGY = HERE.parent / "topology.json"

ROLES = ("spine", "leaf", "node", "central", "outside")
FABRIC_ROLES = ("spine", "leaf")
# Host names become interface names (br-<name> on nodes), netns names and FRR names.
HOST_RE = re.compile(r"[a-z][a-z0-9]{0,9}")
DATAPATHS = ("system", "netdev")
FABRIC_PEER_GROUP = "FABRIC"  # spine <-> leaf
NODES_PEER_GROUP = "NODES"  # leaf -> its nodes
# Names the lab adds to a node's FRR config through ovnbgp's operator snippet.
SNIPPET_PLIST_V4 = "lab-loopback-v4"
SNIPPET_PLIST_V6 = "lab-loopback-v6"
# ovnbgp's outbound route-maps (ovnbgp/frr/render.py NAMES): the snippet adds one entry to each.
OVNBGP_RMAP_OUT_V4 = "ovnbgp-out-v4"
OVNBGP_RMAP_OUT_V6 = "ovnbgp-out-v6"
OVNBGP_RMAP_IN = "ovnbgp-in"
SNIPPET_SEQ = 5  # before ovnbgp's own `permit 10`
SNIPPET_PLIST_FABRIC = "lab-fabric-loopbacks"
LOOPBACKS_V4 = "10.255.0.0/16"  # every router's loopback (the nodes' are the OVN encap IPs)
TUNNEL_LOCAL_PREF = 200
BGP_KEEPALIVE, BGP_HOLD = 3, 9  # fabric timers: sessions up and failures seen in seconds


class TopologyError(ValueError):
    """The topology file is unusable; the message says where."""


# --- model -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Host:
    name: str
    role: str
    asn: int | None = None
    rack: int | None = None
    loopback: ipaddress.IPv4Address | None = None
    loopback6: ipaddress.IPv6Address | None = None
    mgmt: ipaddress.IPv4Address | None = None
    # The outside host: the prefixes it sends to the spine (default: everything).
    routes: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()


@dataclass(frozen=True)
class LinkEnd:
    """One side of a link, seen from `host`."""

    index: int  # the link's position in topology.json (stable: MACs derive from it)
    side: str  # "a" or "b"
    host: str
    peer: str
    ifname: str  # the NIC: named after the peer
    mac: str
    addr4: ipaddress.IPv4Interface
    addr6: ipaddress.IPv6Interface
    peer_addr4: ipaddress.IPv4Address
    peer_addr6: ipaddress.IPv6Address
    l3_dev: str  # where the addresses live: the NIC, or on a node the OVS bridge br-<peer>
    bridge: str | None  # the OVS bridge holding the NIC (nodes only)
    advertise: bool  # the router announces this link's networks (the outside network)


@dataclass(frozen=True)
class Topology:
    hosts: dict[str, Host]
    ends: tuple[LinkEnd, ...]
    raw: dict[str, Any] = field(repr=False, compare=False)

    # -- selection

    def subset(self, names: Iterable[str]) -> "Topology":
        """The lab restricted to `names`; links with an end outside it disappear."""
        keep = list(dict.fromkeys(names))
        for n in keep:
            if n not in self.hosts:
                raise TopologyError(f"LAB_HOSTS: unknown host {n!r} (known: {', '.join(self.hosts)})")
        hosts = {n: h for n, h in self.hosts.items() if n in keep}
        ends = tuple(e for e in self.ends if e.host in hosts and e.peer in hosts)
        return Topology(hosts, ends, self.raw)

    def host(self, name: str) -> Host:
        try:
            return self.hosts[name]
        except KeyError:
            raise TopologyError(f"unknown host {name!r} (known: {', '.join(self.hosts)})") from None

    def by_role(self, role: str) -> list[Host]:
        return [h for h in self.hosts.values() if h.role == role]

    def ends_of(self, name: str) -> list[LinkEnd]:
        return [e for e in self.ends if e.host == name]

    def uplinks(self, name: str) -> list[LinkEnd]:
        """A node's links to its leaves."""
        return [e for e in self.ends_of(name) if self.hosts[e.peer].role == "leaf"]

    def encap_ip(self, node: str) -> ipaddress.IPv4Address:
        h = self.host(node)
        if h.role != "node" or h.loopback is None:
            raise TopologyError(f"{node} is not a node with a loopback")
        return h.loopback

    # -- OVN / scenario data (plain dicts from the file)

    @property
    def ovn(self) -> dict[str, Any]:
        return self.raw.get("ovn", {})

    @property
    def scenario(self) -> dict[str, Any]:
        return self.raw.get("scenario", {})

    @property
    def bgp(self) -> dict[str, Any]:
        """ECMP, BFD and graceful-restart settings of every router (validated at load)."""
        return _bgp_options(self.raw)

    @property
    def fabric_mtu(self) -> int:
        return int(self.raw.get("fabric_mtu", 1500))

    def sb_remote_tcp(self) -> str:
        """The Southbound remote the nodes use in the Vagrant lab (central's mgmt address)."""
        central = self.host(self.ovn.get("central", "central"))
        if central.mgmt is None:
            raise TopologyError(f"{central.name} has no mgmt address")
        return f"tcp:{central.mgmt}:{int(self.ovn.get('sb_port', 6642))}"


# --- loading ----------------------------------------------------------------------------------


def _ip(where: str, value: Any, version: int):
    if not isinstance(value, str):
        raise TopologyError(f"{where}: expected an IPv{version} address string, got {value!r}")
    try:
        addr = ipaddress.ip_address(value)
    except ValueError:
        raise TopologyError(f"{where}: {value!r} is not an IP address") from None
    if addr.version != version:
        raise TopologyError(f"{where}: expected an IPv{version} address, got {value}")
    return addr


def _net(where: str, value: Any, version: int):
    if not isinstance(value, str):
        raise TopologyError(f"{where}: expected an IPv{version} network, got {value!r}")
    try:
        net = ipaddress.ip_network(value)
    except ValueError:
        raise TopologyError(f"{where}: {value!r} is not a network (host bits set?)") from None
    if net.version != version:
        raise TopologyError(f"{where}: expected an IPv{version} network, got {value}")
    return net


def _opt(d: dict, key: str, where: str, version: int):
    return _ip(f"{where}.{key}", d[key], version) if key in d else None


def _mac(index: int, side: str) -> str:
    """A link end's MAC: 52:54:00 (the QEMU/libvirt prefix), 'la', link index, side."""
    if not 0 <= index <= 0xFF:
        raise TopologyError("at most 256 links")
    return f"52:54:00:1a:{index:02x}:{1 if side == 'a' else 2:02x}"


def _end_address(net, number: int | None, default: int, where: str):
    n = default if number is None else number
    if not isinstance(n, int) or isinstance(n, bool) or not 0 <= n < net.num_addresses:
        raise TopologyError(f"{where}: host number {n!r} is outside {net}")
    if net.prefixlen < net.max_prefixlen - 1 and n in (0, net.num_addresses - 1) and net.version == 4:
        raise TopologyError(f"{where}: {net.network_address + n} is the network or broadcast address")
    return net.network_address + n


def parse(data: dict[str, Any]) -> Topology:
    """Validate topology data and derive the link ends."""
    if not isinstance(data, dict) or not isinstance(data.get("hosts"), dict):
        raise TopologyError("topology: expected an object with 'hosts' and 'links'")
    hosts: dict[str, Host] = {}
    asns: dict[int, str] = {}
    for name, h in data["hosts"].items():
        where = f"hosts.{name}"
        if not HOST_RE.fullmatch(name):
            raise TopologyError(f"{where}: host names must match {HOST_RE.pattern}")
        if not isinstance(h, dict) or h.get("role") not in ROLES:
            raise TopologyError(f"{where}.role: expected one of {', '.join(ROLES)}")
        role = h["role"]
        asn = h.get("asn")
        if role in ("spine", "leaf", "node"):
            if not isinstance(asn, int) or isinstance(asn, bool) or not 1 <= asn <= 4294967295:
                raise TopologyError(f"{where}.asn: expected an AS number, got {asn!r}")
            if asn in asns:
                raise TopologyError(f"{where}.asn: {asn} is also {asns[asn]}'s (the lab uses one AS per router)")
            asns[asn] = name
            if "loopback" not in h:
                raise TopologyError(f"{where}.loopback: required for a {role}")
        rack = h.get("rack")
        if rack is not None and (not isinstance(rack, int) or isinstance(rack, bool)):
            raise TopologyError(f"{where}.rack: expected an integer")
        routes = h.get("routes", ["0.0.0.0/0", "::/0"] if role == "outside" else [])
        if not isinstance(routes, list):
            raise TopologyError(f"{where}.routes: expected a list of networks")
        nets = []
        for i, r in enumerate(routes):
            try:
                nets.append(ipaddress.ip_network(r))
            except (TypeError, ValueError):
                raise TopologyError(f"{where}.routes[{i}]: {r!r} is not a network") from None
        hosts[name] = Host(
            name=name, role=role, asn=asn, rack=rack, routes=tuple(nets),
            loopback=_opt(h, "loopback", where, 4), loopback6=_opt(h, "loopback6", where, 6),
            mgmt=_opt(h, "mgmt", where, 4))
    links = data.get("links", [])
    if not isinstance(links, list):
        raise TopologyError("links: expected a list")
    ends: list[LinkEnd] = []
    seen_if: set[tuple[str, str]] = set()
    for i, link in enumerate(links):
        where = f"links[{i}]"
        if not isinstance(link, dict):
            raise TopologyError(f"{where}: expected an object")
        a, b = link.get("a"), link.get("b")
        for side, n in (("a", a), ("b", b)):
            if n not in hosts:
                raise TopologyError(f"{where}.{side}: unknown host {n!r}")
        if a == b:
            raise TopologyError(f"{where}: a link needs two different hosts")
        net4 = _net(f"{where}.net4", link.get("net4"), 4)
        net6 = _net(f"{where}.net6", link.get("net6"), 6)
        p2p = net4.prefixlen == 31
        a4 = _end_address(net4, link.get("a_host"), 0 if p2p else 1, f"{where}.a_host")
        b4 = _end_address(net4, link.get("b_host"), 1 if p2p else 2, f"{where}.b_host")
        a6 = _end_address(net6, link.get("a_host6", link.get("a_host")), 1, f"{where}.a_host6")
        b6 = _end_address(net6, link.get("b_host6", link.get("b_host")), 2, f"{where}.b_host6")
        if a4 == b4:
            raise TopologyError(f"{where}: both ends get {a4}")
        advertise = bool(link.get("advertise", False))
        for side, me, peer, m4, p4, m6, p6 in (("a", a, b, a4, b4, a6, b6), ("b", b, a, b4, a4, b6, a6)):
            if (me, peer) in seen_if:
                raise TopologyError(f"{where}: a second link between {me} and {peer}")
            seen_if.add((me, peer))
            on_node = hosts[me].role == "node"
            bridge = f"br-{peer}" if on_node else None
            ends.append(LinkEnd(
                index=i, side=side, host=me, peer=peer, ifname=peer, mac=_mac(i, side),
                addr4=ipaddress.IPv4Interface(f"{m4}/{net4.prefixlen}"),
                addr6=ipaddress.IPv6Interface(f"{m6}/{net6.prefixlen}"),
                peer_addr4=p4, peer_addr6=p6, l3_dev=bridge or peer, bridge=bridge,
                advertise=advertise))
    topo = Topology(hosts, tuple(ends), data)
    for node in topo.by_role("node"):
        if not topo.uplinks(node.name):
            raise TopologyError(f"hosts.{node.name}: a node needs a link to a leaf")
        for e in topo.uplinks(node.name):
            if hosts[e.peer].rack != node.rack:
                raise TopologyError(f"hosts.{node.name}: uplink to {e.peer}, a leaf of another rack")
    _bgp_options(data)
    return topo


#: The fabric-wide BGP options ("bgp" in topology.json) and their defaults; the nodes get them
#: as ovnbgp's bgp.* keys of the same names, the fabric routers as FRR config.
BGP_OPTIONS: dict[str, Any] = {
    "maximum_paths": 8, "bfd": False, "bfd_receive_interval": 300, "bfd_transmit_interval": 300,
    "bfd_detect_multiplier": 3, "graceful_restart": False, "graceful_restart_time": 120,
}
BFD_PROFILE = "lab"


def _bgp_options(data: dict[str, Any]) -> dict[str, Any]:
    raw = data.get("bgp", {})
    if not isinstance(raw, dict):
        raise TopologyError("bgp: expected an object")
    opts = dict(BGP_OPTIONS)
    for key, value in raw.items():
        if key.startswith("_"):
            continue
        if key not in BGP_OPTIONS:
            raise TopologyError(f"bgp.{key}: unknown key (known: {', '.join(BGP_OPTIONS)})")
        if type(value) is not type(BGP_OPTIONS[key]) or (isinstance(value, int) and value < 0):
            raise TopologyError(f"bgp.{key}: expected {type(BGP_OPTIONS[key]).__name__}, got {value!r}")
        opts[key] = value
    return opts


def load(path: Path | str | None = None, hosts: Iterable[str] | str | None = None) -> Topology:
    """Load the topology (LAB_TOPOLOGY or the default file), restricted to `hosts` or LAB_HOSTS."""
    path = Path(path or os.environ.get("LAB_TOPOLOGY") or DEFAULT_TOPOLOGY)
    try:
        data = json.loads(path.read_text())
    except OSError as e:
        raise TopologyError(f"{path}: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise TopologyError(f"{path}: not JSON: {e}") from None
    topo = parse(data)
    if hosts is None:
        hosts = os.environ.get("LAB_HOSTS") or None
    if isinstance(hosts, str):
        hosts = [h.strip() for h in hosts.split(",") if h.strip()]
    return topo.subset(hosts) if hosts else topo


# --- network plan (apply-net) ----------------------------------------------------------------


@dataclass
class NetPlan:
    """What apply-net does on one host, in order (plain data: easy to test and to print)."""

    renames: dict[str, str]  # MAC -> wanted NIC name
    bridges: list[tuple[str, str]]  # (OVS bridge, NIC port) on nodes
    ip_batch: list[str]  # `ip -batch` lines, after the bridges exist
    sysctls: dict[str, str]


def net_plan(topo: Topology, name: str) -> NetPlan:
    host = topo.host(name)
    ends = topo.ends_of(name)
    mtu = topo.fabric_mtu
    lines = ["link set dev lo up"]
    sysctls: dict[str, str] = {}
    for e in ends:
        lines.append(f"link set dev {e.ifname} mtu {mtu} up")
        if e.bridge:
            lines.append(f"link set dev {e.bridge} mtu {mtu} up")
        lines.append(f"address replace {e.addr4} dev {e.l3_dev}")
        lines.append(f"address replace {e.addr6} dev {e.l3_dev} nodad")
    if host.loopback is not None:
        # Routers: on lo. Nodes: on every uplink bridge, beside the link address, because the
        # userspace datapath only terminates a tunnel addressed to an IP *and* the MAC of the
        # bridge port holding it: with ECMP a packet for the loopback comes in through either.
        devs = [e.bridge for e in topo.uplinks(name)] if host.role == "node" else ["lo"]
        for dev in devs:
            lines.append(f"address replace {host.loopback}/32 dev {dev}")
            if host.loopback6 is not None:
                lines.append(f"address replace {host.loopback6}/128 dev {dev} nodad")
    if host.role == "outside":
        # Static routes to the spine (the outside host's one link); it has no BGP. Not a
        # default route in the Vagrant lab: there the default is the management NAT.
        for e in ends[:1]:
            for net in host.routes:
                via = e.peer_addr4 if net.version == 4 else e.peer_addr6
                lines.append(f"route replace {net} via {via}")
    if host.role in FABRIC_ROLES:
        sysctls["net/ipv4/ip_forward"] = "1"
        sysctls["net/ipv6/conf/all/forwarding"] = "1"
    return NetPlan(
        renames={e.mac: e.ifname for e in ends},
        bridges=[(e.bridge, e.ifname) for e in ends if e.bridge],
        ip_batch=lines, sysctls=sysctls)


def _current_links() -> dict[str, str]:
    """MAC -> interface name in this network namespace (from /sys)."""
    found = {}
    for d in Path("/sys/class/net").iterdir():
        try:
            found[(d / "address").read_text().strip().lower()] = d.name
        except OSError:
            continue
    return found


def _ovs_vsctl(*args: str) -> list[str]:
    db = os.environ.get("LAB_OVS_DB")
    return ["ovs-vsctl", *([f"--db={db}"] if db else []), "--timeout=30", *args]


def _run(argv: list[str], *, input: str | None = None) -> None:
    cp = subprocess.run(argv, input=input, text=True, capture_output=True)
    if cp.returncode != 0:
        raise SystemExit(f"labtool: {' '.join(argv)} failed ({cp.returncode}): "
                         f"{(cp.stderr or cp.stdout).strip()}")


def _write(path: Path, text: str) -> None:
    """Replace a file atomically (a rerun never leaves half a config behind)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".lab-new")
    tmp.write_text(text)
    os.replace(tmp, path)


def datapath() -> str:
    dp = os.environ.get("LAB_DATAPATH", "system")
    if dp not in DATAPATHS:
        raise TopologyError(f"LAB_DATAPATH: expected one of {', '.join(DATAPATHS)}, got {dp!r}")
    return dp


def apply_net(topo: Topology, name: str) -> NetPlan:
    """Make this network namespace match the plan (idempotent: `vagrant provision` reruns it)."""
    plan = net_plan(topo, name)
    present = _current_links()
    renames = []
    for mac, want in plan.renames.items():
        have = present.get(mac)
        if have is None:
            if want in present.values():
                continue  # already named (MAC changed by hand?): leave it
            raise SystemExit(f"labtool: {name}: no interface with MAC {mac} (for {want}); "
                             f"present: {', '.join(sorted(present.values()))}")
        if have != want:
            renames += [f"link set dev {have} down", f"link set dev {have} name {want}"]
    if not plan.bridges:  # routers, outside: one `ip -batch` does it all
        _run(["ip", "-batch", "-"], input="\n".join(renames + plan.ip_batch) + "\n")
        _write_sysctls(plan.sysctls)
        return plan
    if renames:
        _run(["ip", "-batch", "-"], input="\n".join(renames) + "\n")
    if plan.bridges:
        dp = datapath()
        args: list[str] = []
        for bridge, port in plan.bridges:
            args += ["--", "--may-exist", "add-br", bridge,
                     "--", "set", "Bridge", bridge, f"datapath_type={dp}",
                     "--", "--may-exist", "add-port", bridge, port,
                     "--", "set", "Interface", bridge, f"mtu_request={topo.fabric_mtu}"]
        _run(_ovs_vsctl(*args[1:]))  # waits until vswitchd has made the bridges' ports
        deadline = time.monotonic() + 20
        for bridge, _ in plan.bridges:
            while not Path("/sys/class/net", bridge).exists():
                if time.monotonic() > deadline:
                    raise SystemExit(f"labtool: {name}: OVS bridge port {bridge} did not appear")
                time.sleep(0.05)
    _run(["ip", "-batch", "-"], input="\n".join(plan.ip_batch) + "\n")
    _write_sysctls(plan.sysctls)
    return plan


def _write_sysctls(sysctls: dict[str, str]) -> None:
    for key, value in sysctls.items():
        Path("/proc/sys", key).write_text(value)


# --- FRR of the fabric routers ----------------------------------------------------------------


def frr_config(topo: Topology, name: str) -> str:
    """Spine/leaf: eBGP to every neighbour over the link addresses, IPv4 and IPv6 on one
    session (IPv6 routes carry the link's global IPv6 next hop), ECMP, fast timers. Leaves
    also send their nodes a default route, as a fabric does: a node's kernel routes what
    leaves OVN by it, and br-ex's proxy ARP answers a VM's gateway only for a destination the
    node has a route to. The default is a `network` statement kept from the spine by a
    route-map, not `default-originate`: FRR 8.4 leaves a default-originate route out of an
    enhanced route refresh, and the node, which asks for one whenever its inbound route-map
    changes (ovnbgp's config applied), then drops the default as stale (seen in this lab)."""
    host = topo.host(name)
    if host.role not in FABRIC_ROLES:
        raise TopologyError(f"{name} is a {host.role}: only spine and leaf routers get a fabric FRR config")
    peers = [e for e in topo.ends_of(name) if topo.hosts[e.peer].role in ("spine", "leaf", "node")]
    groups = [FABRIC_PEER_GROUP]
    if any(topo.hosts[e.peer].role == "node" for e in peers):
        groups.append(NODES_PEER_GROUP)
    announce4 = [f"{host.loopback}/32"] + [str(e.addr4.network) for e in topo.ends_of(name) if e.advertise]
    announce6 = ([f"{host.loopback6}/128"] if host.loopback6 else []) + \
                [str(e.addr6.network) for e in topo.ends_of(name) if e.advertise]
    leaf = NODES_PEER_GROUP in groups
    if leaf:
        announce4.append("0.0.0.0/0")
        announce6.append("::/0")
    out = [
        "! Fabric router of the ovnbgp spine-leaf lab (vagrant/provision/labtool.py frr-config).",
        "frr defaults traditional",
        f"hostname {name}",
        "!",
        *_bfd_profile(topo),
        *(_no_default_up() if leaf else []),
        f"router bgp {host.asn}",
        f" bgp router-id {host.loopback}",
        " no bgp ebgp-requires-policy",
        " no bgp network import-check",
        " bgp bestpath as-path multipath-relax",
        f" timers bgp {BGP_KEEPALIVE} {BGP_HOLD}",
    ]
    opts = topo.bgp
    for g in groups:
        out += [f" neighbor {g} peer-group", f" neighbor {g} timers connect 1",
                f" neighbor {g} advertisement-interval 0"]
        if opts["bfd"]:
            out.append(f" neighbor {g} bfd profile {BFD_PROFILE}")
            if opts["graceful_restart"] and g == NODES_PEER_GROUP:
                # A node's whole FRR restarting takes its bfdd down too: with the C-bit check
                # the leaf keeps the node's routes (graceful restart) instead of dropping them.
                out.append(f" neighbor {g} bfd check-control-plane-failure")
    for e in peers:
        peer = topo.hosts[e.peer]
        group = NODES_PEER_GROUP if peer.role == "node" else FABRIC_PEER_GROUP
        out += [f" neighbor {e.peer_addr4} remote-as {peer.asn}",
                f" neighbor {e.peer_addr4} peer-group {group}",
                f" neighbor {e.peer_addr4} description {peer.role} {peer.name}"]
    for afi, announce in (("ipv4", announce4), ("ipv6", announce6)):
        out += [" !", f" address-family {afi} unicast"]
        out += [f"  network {p}" for p in announce]
        for g in groups:
            if afi == "ipv6":  # `bgp default ipv4-unicast` activates IPv4 only
                out.append(f"  neighbor {g} activate")
            if g == FABRIC_PEER_GROUP and leaf:
                out.append(f"  neighbor {g} route-map {NO_DEFAULT_RMAP}-{afi[-2:]} out")
        out += [f"  maximum-paths {topo.bgp['maximum_paths']}", " exit-address-family"]
    out += ["exit", "!", ""]
    return "\n".join(out)


NO_DEFAULT_RMAP = "lab-no-default"


def _no_default_up() -> list[str]:
    """A leaf's outbound policy to the spine: everything but the default it gives its nodes."""
    return [f"ip prefix-list {NO_DEFAULT_RMAP}-v4 seq 5 permit 0.0.0.0/0",
            f"ipv6 prefix-list {NO_DEFAULT_RMAP}-v6 seq 5 permit ::/0",
            f"route-map {NO_DEFAULT_RMAP}-v4 deny 5", f" match ip address prefix-list {NO_DEFAULT_RMAP}-v4",
            "exit", f"route-map {NO_DEFAULT_RMAP}-v4 permit 10", "exit",
            f"route-map {NO_DEFAULT_RMAP}-v6 deny 5", f" match ipv6 address prefix-list {NO_DEFAULT_RMAP}-v6",
            "exit", f"route-map {NO_DEFAULT_RMAP}-v6 permit 10", "exit", "!"]


def _bfd_profile(topo: Topology) -> list[str]:
    """The fabric routers' BFD profile: the same timers as the nodes' (ovnbgp's profile)."""
    opts = topo.bgp
    if not opts["bfd"]:
        return []
    return ["bfd", f" profile {BFD_PROFILE}", f"  receive-interval {opts['bfd_receive_interval']}",
            f"  transmit-interval {opts['bfd_transmit_interval']}",
            f"  detect-multiplier {opts['bfd_detect_multiplier']}", " exit", "exit", "!"]


# --- OVN node -----------------------------------------------------------------------------------


def _quote_ovs(value: str) -> str:
    return json.dumps(value)  # an OVSDB string atom in double quotes


def ovs_setup_args(topo: Topology, name: str, sb_remote: str, dp: str) -> list[str]:
    """ovs-vsctl arguments: ovn-controller's settings and the provider bridge."""
    host = topo.host(name)
    if host.role != "node":
        raise TopologyError(f"{name} is a {host.role}, not a node")
    ovn = topo.ovn
    bridge = ovn.get("provider_bridge", "br-ex")
    physnet = ovn.get("physnet", "public")
    ids = {
        "system-id": name,
        "hostname": name,
        "ovn-remote": sb_remote,
        "ovn-encap-type": ovn.get("encap_type", "geneve"),
        "ovn-encap-ip": str(topo.encap_ip(name)),
        # Tunnels leave from the loopback, not from whatever address the route prefers: the
        # peer chassis matches incoming tunnels on the encap IP.
        "ovn-set-local-ip": "true",
        "ovn-bridge-mappings": f"{physnet}:{bridge}",
        "ovn-bridge-datapath-type": dp,
    }
    return ["set", "Open_vSwitch", ".",
            *(f"external_ids:{k}={_quote_ovs(v)}" for k, v in ids.items()),
            "--", "--may-exist", "add-br", bridge, "--", "set", "Bridge", bridge, f"datapath_type={dp}"]


def frr_snippet(topo: Topology, name: str) -> str:
    """The node's ovnbgp operator snippet: announce the loopback (the OVN encap IP) to the leaf.

    ovnbgp's outbound route-maps only let out what sits in its VRF; this adds an entry before
    theirs for the loopback, and the `network` statements that originate it.
    """
    host = topo.host(name)
    if host.role != "node":
        raise TopologyError(f"{name} is a {host.role}, not a node")
    lines = [
        "! ovnbgp lab: announce this node's loopback (its OVN encap IP) to the fabric",
        f"ip prefix-list {SNIPPET_PLIST_V4} seq 5 permit {host.loopback}/32",
    ]
    if host.loopback6:
        lines.append(f"ipv6 prefix-list {SNIPPET_PLIST_V6} seq 5 permit {host.loopback6}/128")
    lines += [f"route-map {OVNBGP_RMAP_OUT_V4} permit {SNIPPET_SEQ}",
              f" match ip address prefix-list {SNIPPET_PLIST_V4}", "exit"]
    if host.loopback6:
        lines += [f"route-map {OVNBGP_RMAP_OUT_V6} permit {SNIPPET_SEQ}",
                  f" match ipv6 address prefix-list {SNIPPET_PLIST_V6}", "exit"]
    # OVS 3.1's own router (ovs/route/show), which the userspace datapath sends tunnels by,
    # ignores multipath kernel routes: the other nodes' loopbacks (the tunnel endpoints) are
    # taken from the first uplink's leaf alone (higher local preference, so one best path),
    # and from the other leaf when that one is gone. Everything else stays ECMP.
    first = topo.uplinks(name)[0]
    lines += [f"ip prefix-list {SNIPPET_PLIST_FABRIC} seq 5 permit {LOOPBACKS_V4} ge 32",
              f"route-map {OVNBGP_RMAP_IN} permit {SNIPPET_SEQ}", f" match peer {first.peer_addr4}",
              f" match ip address prefix-list {SNIPPET_PLIST_FABRIC}",
              f" set local-preference {TUNNEL_LOCAL_PREF}", "exit"]
    lines += [f"router bgp {host.asn}", " address-family ipv4 unicast",
              f"  network {host.loopback}/32", " exit-address-family"]
    if host.loopback6:
        lines += [" address-family ipv6 unicast", f"  network {host.loopback6}/128",
                  " exit-address-family"]
    lines += ["exit", ""]
    return "\n".join(lines)


def _toml_str(value: str) -> str:
    if any(ord(c) < 0x20 for c in value):
        raise TopologyError(f"control character in {value!r}")
    return json.dumps(value)  # a TOML basic string for these (printable) values


def ovnbgp_config(topo: Topology, name: str, *, sb_remote: str, snippet_file: str,
                  ovs_remote: str | None = None, frr_dir: str | None = None,
                  frr_vty: str | None = None, state_dir: str | None = None,
                  log_level: str = "info") -> str:
    """The node's ovnbgp config: its AS, its leaf as peer, and where its FRR/OVS/state live.

    frr_dir: FRR's config dir (frr.conf and daemons there); frr_vty: the vty socket dir;
    state_dir: agent state, lock file and rt_tables file (several agents on one kernel, as in
    the vm tier, must not share them). Unset values keep ovnbgp's defaults (a real node).
    """
    host = topo.host(name)
    if host.role != "node":
        raise TopologyError(f"{name} is a {host.role}, not a node")
    out = [f"# ovnbgp config of lab node {name} (vagrant/provision/labtool.py ovnbgp-config)", "",
           "[ovn]", f"sb_remotes = [{_toml_str(sb_remote)}]"]
    if ovs_remote:
        out.append(f"ovs_remote = {_toml_str(ovs_remote)}")
    kernel = []
    if state_dir:
        kernel.append(f"rt_tables_file = {_toml_str(state_dir + '/rt_tables.conf')}")
    gw6 = topo.scenario.get("provider", {}).get("gateway6")
    if gw6:  # the IPv6 provider gateway: br-ex answers the VMs' solicitations for it
        kernel.append(f'ndp_proxy = ["{_ip("scenario.provider.gateway6", gw6, 6)}"]')
    if kernel:
        out += ["", "[kernel]", *kernel]
    out += ["", "[bgp]", f"asn = {host.asn}", f'router_id = "{host.loopback}"',
            f"snippet_file = {_toml_str(snippet_file)}"]
    for key, value in topo.bgp.items():  # ECMP over both uplinks, BFD, graceful restart
        out.append(f"{key} = {json.dumps(value)}")
    for e in topo.uplinks(name):
        out += ["", "[[bgp.peers]]", f'address = "{e.peer_addr4}"',
                f"remote_as = {topo.hosts[e.peer].asn}"]
    if frr_dir or frr_vty:
        out += ["", "[frr]"]
        if frr_dir:
            out += [f"config_file = {_toml_str(frr_dir + '/frr.conf')}",
                    f"daemons_file = {_toml_str(frr_dir + '/daemons')}"]
        if frr_vty:
            out.append(f"vty_socket = {_toml_str(frr_vty)}")
    if state_dir:
        out += ["", "[agent]", f"state_dir = {_toml_str(state_dir)}",
                f"lock_file = {_toml_str(state_dir + '/ovnbgp.lock')}"]
    out += ["", "[log]", f'level = "{log_level}"', ""]
    return "\n".join(out)


# --- Vagrant ------------------------------------------------------------------------------------


def vagrant_plan(topo: Topology) -> dict[str, Any]:
    """What the Vagrantfile needs: per VM its role, resources, links (libvirt UDP tunnels, one
    port per link end on 127.0.0.1) with their MACs, mgmt address, provisioning steps."""
    v = topo.raw.get("vagrant", {})
    base = int(v.get("tunnel_base_port", 12000))
    memory, cpus = v.get("memory", {}), v.get("cpus", {})
    repo = v.get("repo_path", "/opt/ovnbgp")
    steps = {
        "spine": ["net.sh", "frr.sh"],
        "leaf": ["net.sh", "frr.sh"],
        "node": ["net.sh", "ovn-node.sh", "frr.sh", "agent.sh"],
        "central": ["ovn-central.sh"],
        "outside": ["net.sh"],
    }
    vms = []
    for h in topo.hosts.values():
        links = []
        for e in topo.ends_of(h.name):
            mine = base + 2 * e.index + (0 if e.side == "a" else 1)
            theirs = base + 2 * e.index + (1 if e.side == "a" else 0)
            links.append({"ifname": e.ifname, "peer": e.peer, "mac": e.mac,
                          "local_port": mine, "remote_port": theirs})
        vms.append({
            "name": h.name, "role": h.role,
            "memory": int(memory.get(h.role, 1024)), "cpus": int(cpus.get(h.role, 1)),
            "mgmt": str(h.mgmt) if h.mgmt else None,
            "links": links,
            "provision": [["install.sh", h.role]] + [[s, h.name] for s in steps[h.role]],
        })
    return {"box": v.get("box", "debian/bookworm64"), "repo_path": repo,
            "mgmt_net": topo.raw.get("mgmt", {}).get("net4"), "vms": vms}


# --- command line -------------------------------------------------------------------------------


def show(topo: Topology, name: str) -> dict[str, Any]:
    host = topo.host(name)
    plan = net_plan(topo, name)
    info: dict[str, Any] = {
        "host": {k: (str(v) if v is not None and not isinstance(v, (int, str)) else v)
                 for k, v in host.__dict__.items()},
        "links": [{"ifname": e.ifname, "peer": e.peer, "mac": e.mac, "l3_dev": e.l3_dev,
                   "addr4": str(e.addr4), "addr6": str(e.addr6),
                   "peer_addr4": str(e.peer_addr4), "peer_addr6": str(e.peer_addr6)}
                  for e in topo.ends_of(name)],
        "net": {"bridges": plan.bridges, "ip_batch": plan.ip_batch, "sysctls": plan.sysctls},
    }
    if host.role in FABRIC_ROLES:
        info["frr_config"] = frr_config(topo, name)
    if host.role == "node":
        info["frr_snippet"] = frr_snippet(topo, name)
    return info


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="labtool.py", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    sp = sub.add_parser("hosts")
    sp.add_argument("--role", choices=ROLES)
    for cmd in ("role", "apply-net", "frr-config", "frr-snippet", "show"):
        sub.add_parser(cmd).add_argument("host")
    sp = sub.add_parser("ovs-setup", help="run ovs-vsctl for ovn-controller's settings")
    sp.add_argument("host")
    sp.add_argument("--sb-remote", help="default: tcp:<central mgmt>:<sb_port>")
    sp.add_argument("--print", action="store_true", help="print the ovs-vsctl argv, do not run it")
    sp = sub.add_parser("ovnbgp-config")
    sp.add_argument("host")
    sp.add_argument("--sb-remote", help="default: tcp:<central mgmt>:<sb_port>")
    sp.add_argument("--snippet-file", required=True)
    sp.add_argument("--ovs-remote")
    sp.add_argument("--frr-dir")
    sp.add_argument("--frr-vty")
    sp.add_argument("--state-dir")
    sp.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    sp = sub.add_parser("node-setup", help="ovs-setup + write the snippet and ovnbgp.toml into --etc")
    sp.add_argument("host")
    sp.add_argument("--etc", required=True)
    sp.add_argument("--sb-remote")
    sp.add_argument("--ovs-remote")
    sp.add_argument("--frr-dir")
    sp.add_argument("--frr-vty")
    sp.add_argument("--state-dir")
    sp.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    sub.add_parser("vagrant-plan")
    sub.add_parser("frr-daemons")
    sub.add_parser("zebra-options")
    sub.add_parser("ovn-listen")
    args = p.parse_args(argv)
    try:
        topo = load()
        if args.cmd == "hosts":
            for h in topo.hosts.values():
                if args.role is None or h.role == args.role:
                    print(h.name)
        elif args.cmd == "role":
            print(topo.host(args.host).role)
        elif args.cmd == "apply-net":
            apply_net(topo, args.host)
        elif args.cmd == "frr-config":
            sys.stdout.write(frr_config(topo, args.host))
        elif args.cmd == "frr-snippet":
            sys.stdout.write(frr_snippet(topo, args.host))
        elif args.cmd == "ovs-setup":
            argv_ = _ovs_vsctl(*ovs_setup_args(topo, args.host, args.sb_remote or topo.sb_remote_tcp(),
                                               datapath()))
            if args.print:
                print(json.dumps(argv_))
            else:
                _run(argv_)
        elif args.cmd == "ovnbgp-config":
            sys.stdout.write(ovnbgp_config(
                topo, args.host, sb_remote=args.sb_remote or topo.sb_remote_tcp(),
                snippet_file=args.snippet_file, ovs_remote=args.ovs_remote, frr_dir=args.frr_dir,
                frr_vty=args.frr_vty, state_dir=args.state_dir, log_level=args.log_level))
        elif args.cmd == "node-setup":
            sb = args.sb_remote or topo.sb_remote_tcp()
            _run(_ovs_vsctl(*ovs_setup_args(topo, args.host, sb, datapath())))
            # The provider bridge up, as a deployment tool leaves it (os-net-config does): ovnbgp
            # adds its addresses and routes through it, and the kernel refuses a route via a
            # device that is down.
            _run(["ip", "link", "set", "dev", topo.ovn.get("provider_bridge", "br-ex"), "up"])
            etc = Path(args.etc)
            snippet = etc / "frr-snippet.conf"
            _write(snippet, frr_snippet(topo, args.host))
            _write(etc / "ovnbgp.toml", ovnbgp_config(
                topo, args.host, sb_remote=sb, snippet_file=str(snippet), ovs_remote=args.ovs_remote,
                frr_dir=args.frr_dir, frr_vty=args.frr_vty, state_dir=args.state_dir,
                log_level=args.log_level))
        elif args.cmd == "ovn-listen":
            for key, default in (("nb_port", 6641), ("sb_port", 6642)):
                print(f"ptcp:{int(topo.ovn.get(key, default))}:0.0.0.0")
        elif args.cmd == "frr-daemons":
            print("bgpd")
            if topo.bgp["bfd"]:
                print("bfdd")
        elif args.cmd == "zebra-options":
            # Keep the kernel routes over an FRR restart (not flushed at exit, kept N s after
            # start): with the leaves helping (graceful restart), nothing stops forwarding.
            if topo.bgp["graceful_restart"]:
                print(f"-r -K {topo.bgp['graceful_restart_time']}")
        elif args.cmd == "vagrant-plan":
            print(json.dumps(vagrant_plan(topo), indent=1))
        elif args.cmd == "show":
            print(json.dumps(show(topo, args.host), indent=1))
    except TopologyError as e:
        print(f"labtool: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

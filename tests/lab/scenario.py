"""OVN Northbound objects of the lab, made the way Neutron makes them (with ovn-nbctl).

    sc = Scenario(central, topo)            # central: tests.harness.ovn.OvnCentral
    public = sc.provider_network()          # localnet "public" -> bridge mapping public:br-ex
    tenant = sc.tenant_network()            # overlay network (geneve between chassis)
    r1 = sc.router(public, gateway_chassis=["node1", "node2"])   # cr-lrp on node1 (highest)
    sc.attach(r1, tenant)                   # router interface + SNAT of the tenant CIDR
    port = sc.add_port(tenant, "vm3")       # logical switch port with MAC + IPv4 + IPv6
    fip = sc.add_fip(r1, port)              # distributed dnat_and_snat (DVR)

What matters for ovnbgp (docs/architecture.md, "OVN"): the provider switch's router port has
`nat-addresses=router`, so the SB patch port's nat_addresses carries the FIPs and the gateway
IP; a FIP is distributed (logical_port + external_mac), so it lives on the chassis of its VM;
the gateway port's chassisredirect port `cr-<lrp>` is bound to the highest-priority gateway
chassis that is up. All values come from vagrant/topology.json ("scenario") unless given.

Only the NB is written here; binding ports to chassis is done by the real ovn-controllers
(tests/lab/builder.py: Lab.add_vm / bind / migrate / unbind).
"""

from __future__ import annotations

import ipaddress
import itertools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

NAME_RE = re.compile(r"[a-z][a-z0-9-]{0,14}")
MAC_PREFIX = "fa:16:3e"  # Neutron's


def _check_name(kind: str, name: str) -> str:
    if not NAME_RE.fullmatch(name):
        raise ValueError(f"{kind} name {name!r} must match {NAME_RE.pattern} (it becomes an interface name)")
    return name


@dataclass(frozen=True)
class Network:
    """A logical switch: `provider` (localnet on the physnet) or `tenant` (overlay)."""

    name: str
    kind: str
    cidr4: ipaddress.IPv4Network
    gateway4: ipaddress.IPv4Address
    cidr6: ipaddress.IPv6Network | None = None
    gateway6: ipaddress.IPv6Address | None = None
    mtu: int = 1500
    vlan: int | None = None  # a provider network's VLAN (Neutron's VLAN type), None: flat

    @property
    def localnet_port(self) -> str:
        return f"ln-{self.name}"


@dataclass
class Router:
    name: str
    provider: Network
    gateway_port: str  # the LRP on the provider network (lrp-<router>-gw)
    gateway_mac: str
    gateway_ip4: ipaddress.IPv4Address
    gateway_ip6: ipaddress.IPv6Address | None
    gateway_chassis: list[str]
    interfaces: dict[str, str] = field(default_factory=dict)  # tenant network -> LRP name

    @property
    def cr_port(self) -> str:
        """The chassisredirect port northd makes for the gateway port (what ovnbgp exposes)."""
        return f"cr-{self.gateway_port}"


@dataclass(frozen=True)
class Port:
    """A VM's logical switch port."""

    name: str
    network: Network
    mac: str
    ip4: ipaddress.IPv4Address
    ip6: ipaddress.IPv6Address | None

    @property
    def addresses(self) -> str:
        return " ".join(str(x) for x in (self.mac, self.ip4, self.ip6) if x is not None)


@dataclass(frozen=True)
class Fip:
    router: Router
    port: Port
    ip: ipaddress.IPv4Address
    external_mac: str
    distributed: bool


class Scenario:
    """NB helpers; every method is one ovn-nbctl transaction (argument lists, no shell)."""

    def __init__(self, central, topo):
        self.central = central
        self.defaults = topo.scenario
        self.physnet = topo.ovn.get("physnet", "public")  # mapped to br-ex on every node
        self.networks: dict[str, Network] = {}
        self.routers: dict[str, Router] = {}
        self.ports: dict[str, Port] = {}
        self.fips: dict[str, Fip] = {}
        self._macs = itertools.count(1)
        self._used_ips: set[ipaddress._BaseAddress] = set()

    # --- helpers -----------------------------------------------------------------------------

    def nbctl(self, *args: str) -> str:
        return self.central.nbctl(*args)

    def new_mac(self) -> str:
        n = next(self._macs)
        return f"{MAC_PREFIX}:{(n >> 16) & 0xFF:02x}:{(n >> 8) & 0xFF:02x}:{n & 0xFF:02x}"

    def _take(self, addr):
        if addr in self._used_ips:
            raise ValueError(f"{addr} is already used in the lab")
        self._used_ips.add(addr)
        return addr

    def _free_ip(self, net, first: int = 10):
        for i in range(first, net.num_addresses - 1):
            addr = net.network_address + i
            if addr not in self._used_ips:
                return self._take(addr)
        raise ValueError(f"no free address left in {net}")

    # --- networks ------------------------------------------------------------------------------

    def provider_network(self, name: str | None = None, *, cidr4: str | None = None,
                         gateway4: str | None = None, cidr6: str | None = None,
                         gateway6: str | None = None, physnet: str | None = None,
                         vlan: int | None = None) -> Network:
        """A provider network: a logical switch with a localnet port on the physnet; `vlan`:
        a VLAN network (the localnet port's `tag`, as Neutron sets it)."""
        d = self.defaults.get("provider", {})
        net = Network(
            name=_check_name("network", name or d.get("name", "public")), kind="provider",
            cidr4=ipaddress.IPv4Network(cidr4 or d["cidr4"]),
            gateway4=ipaddress.IPv4Address(gateway4 or d["gateway4"]),
            cidr6=ipaddress.IPv6Network(cidr6 or d["cidr6"]) if (cidr6 or d.get("cidr6")) else None,
            gateway6=ipaddress.IPv6Address(gateway6 or d["gateway6"]) if (gateway6 or d.get("gateway6")) else None,
            vlan=vlan)
        physnet = physnet or self.physnet
        ln = net.localnet_port
        tag = ["--", "set", "logical_switch_port", ln, f"tag={int(vlan)}"] if vlan is not None else []
        self.nbctl("ls-add", net.name,
                   "--", "lsp-add", net.name, ln,
                   "--", "lsp-set-type", ln, "localnet",
                   "--", "lsp-set-addresses", ln, "unknown",
                   "--", "lsp-set-options", ln, f"network_name={physnet}", *tag)
        self._take(net.gateway4)
        if net.gateway6:
            self._take(net.gateway6)
        self.networks[net.name] = net
        return net

    def tenant_network(self, name: str | None = None, *, cidr4: str | None = None,
                       gateway4: str | None = None, cidr6: str | None = None,
                       gateway6: str | None = None, mtu: int | None = None) -> Network:
        """A tenant (overlay) network; its gateway address belongs to the router it is attached to."""
        d = self.defaults.get("tenant", {})
        given4 = cidr4 is not None
        net = Network(
            name=_check_name("network", name or d.get("name", "tenant1")), kind="tenant",
            cidr4=ipaddress.IPv4Network(cidr4 or d["cidr4"]),
            gateway4=ipaddress.IPv4Address(gateway4 or (None if given4 else d.get("gateway4"))
                                           or next(ipaddress.IPv4Network(cidr4).hosts())),
            cidr6=ipaddress.IPv6Network(cidr6 or d["cidr6"]) if (cidr6 or (not given4 and d.get("cidr6"))) else None,
            gateway6=None, mtu=int(mtu or d.get("mtu", 1400)))
        if net.cidr6 is not None:
            gw6 = gateway6 or (d.get("gateway6") if not given4 else None) or net.cidr6.network_address + 1
            net = Network(**{**net.__dict__, "gateway6": ipaddress.IPv6Address(gw6)})
        self.nbctl("ls-add", net.name)
        self._take(net.gateway4)
        if net.gateway6:
            self._take(net.gateway6)
        self.networks[net.name] = net
        return net

    def delete_network(self, network: Network) -> None:
        """Delete the logical switch (and with it its ports); its VMs must be gone first."""
        self.nbctl("ls-del", network.name)
        self.networks.pop(network.name, None)
        for name in [n for n, p in self.ports.items() if p.network.name == network.name]:
            port = self.ports.pop(name)
            self._used_ips.discard(port.ip4)
            self._used_ips.discard(port.ip6)
        self._used_ips.discard(network.gateway4)
        self._used_ips.discard(network.gateway6)

    # --- routers ---------------------------------------------------------------------------------

    def router(self, provider: Network, gateway_chassis: Sequence[str], name: str | None = None, *,
               gateway_ip4: str | None = None, gateway_ip6: str | None = None) -> Router:
        """A router with its gateway port on `provider`, scheduled on `gateway_chassis`
        (first = highest priority), a default route to the provider gateway, and the provider
        switch's router port with nat-addresses=router (as Neutron sets it)."""
        d = self.defaults.get("router", {})
        name = _check_name("router", name or d.get("name", "r1"))
        ip4 = ipaddress.IPv4Address(gateway_ip4 or d.get("gateway_ip4") or self._free_ip(provider.cidr4, 100))
        if gateway_ip4 or d.get("gateway_ip4"):
            self._take(ip4)
        ip6 = None
        if provider.cidr6 is not None:
            ip6 = ipaddress.IPv6Address(gateway_ip6 or d.get("gateway_ip6") or self._free_ip(provider.cidr6, 0x100))
            if gateway_ip6 or d.get("gateway_ip6"):
                self._take(ip6)
        lrp = f"lrp-{name}-gw"
        lsp = f"gw-{name}"
        mac = self.new_mac()
        nets = [f"{ip4}/{provider.cidr4.prefixlen}"]
        if ip6 is not None:
            nets.append(f"{ip6}/{provider.cidr6.prefixlen}")
        args = ["lr-add", name,
                "--", "lrp-add", name, lrp, mac, *nets,
                "--", "lsp-add", provider.name, lsp,
                "--", "lsp-set-type", lsp, "router",
                "--", "lsp-set-addresses", lsp, "router",
                "--", "lsp-set-options", lsp, f"router-port={lrp}", "nat-addresses=router",
                "--", "lr-route-add", name, "0.0.0.0/0", str(provider.gateway4)]
        if ip6 is not None and provider.gateway6 is not None:
            args += ["--", "lr-route-add", name, "::/0", str(provider.gateway6)]
        self.nbctl(*args)
        router = Router(name=name, provider=provider, gateway_port=lrp, gateway_mac=mac,
                        gateway_ip4=ip4, gateway_ip6=ip6, gateway_chassis=[])
        self.set_gateway_chassis(router, gateway_chassis)
        self.routers[name] = router
        return router

    def set_gateway_chassis(self, router: Router, chassis: Sequence[str]) -> None:
        """(Re)schedule the gateway port: chassis[0] gets the highest priority."""
        args: list[str] = []
        for old in router.gateway_chassis:
            if old not in chassis:
                args += ["--", "lrp-del-gateway-chassis", router.gateway_port, old]
        n = len(chassis)
        for i, ch in enumerate(chassis):
            args += ["--", "lrp-set-gateway-chassis", router.gateway_port, ch, str(10 * (n - i))]
        if args:
            self.nbctl(*args[1:])
        router.gateway_chassis = list(chassis)

    def delete_router(self, router: Router) -> None:
        """Delete the router (its ports, NAT rules and gateway chassis go with it) and the
        switch ports that connected it; its floating IPs and addresses are free again."""
        args = ["lr-del", router.name, "--", "lsp-del", f"gw-{router.name}"]
        for tenant in router.interfaces:
            args += ["--", "--if-exists", "lsp-del", f"rp-{router.name}-{tenant}"]
        self.nbctl(*args)
        router.interfaces.clear()
        for key in [k for k, f in self.fips.items() if f.router.name == router.name]:
            self._used_ips.discard(self.fips.pop(key).ip)
        self._used_ips.discard(router.gateway_ip4)
        self._used_ips.discard(router.gateway_ip6)
        self.routers.pop(router.name, None)

    def attach(self, router: Router, tenant: Network, *, snat: bool = True) -> str:
        """Connect `tenant` to `router` (router interface = the tenant gateway addresses) and
        SNAT the tenant CIDR to the router's gateway IP. Returns the LRP name."""
        lrp = f"lrp-{router.name}-{tenant.name}"
        lsp = f"rp-{router.name}-{tenant.name}"
        nets = [f"{tenant.gateway4}/{tenant.cidr4.prefixlen}"]
        if tenant.cidr6 is not None and tenant.gateway6 is not None:
            nets.append(f"{tenant.gateway6}/{tenant.cidr6.prefixlen}")
        args = ["lrp-add", router.name, lrp, self.new_mac(), *nets,
                "--", "lsp-add", tenant.name, lsp,
                "--", "lsp-set-type", lsp, "router",
                "--", "lsp-set-addresses", lsp, "router",
                "--", "lsp-set-options", lsp, f"router-port={lrp}"]
        if snat:
            args += ["--", "lr-nat-add", router.name, "snat", str(router.gateway_ip4), str(tenant.cidr4)]
        self.nbctl(*args)
        router.interfaces[tenant.name] = lrp
        return lrp

    def detach(self, router: Router, tenant: Network) -> None:
        lrp = router.interfaces.pop(tenant.name)
        args = ["lrp-del", lrp, "--", "lsp-del", f"rp-{router.name}-{tenant.name}"]
        self.nbctl(*args)
        self.nbctl("--if-exists", "lr-nat-del", router.name, "snat", str(tenant.cidr4))

    # --- ports and FIPs -----------------------------------------------------------------------------

    def add_port(self, network: Network, name: str, *, mac: str | None = None,
                 ip4: str | None = None, ip6: str | None = None) -> Port:
        """A VM port (type "") with MAC, IPv4 and (if the network has IPv6) IPv6 addresses."""
        _check_name("port", name)
        if name in self.ports:
            raise ValueError(f"port {name} exists")
        a4 = self._take(ipaddress.IPv4Address(ip4)) if ip4 else self._free_ip(network.cidr4)
        a6 = None
        if network.cidr6 is not None:
            # Same host number as the IPv4 address: 172.24.4.10 <-> 2001:db8:24::a.
            a6 = self._take(ipaddress.IPv6Address(ip6) if ip6 else
                            network.cidr6.network_address + (int(a4) - int(network.cidr4.network_address)))
        port = Port(name=name, network=network, mac=mac or self.new_mac(), ip4=a4, ip6=a6)
        self.nbctl("lsp-add", network.name, name, "--", "lsp-set-addresses", name, port.addresses)
        self.ports[name] = port
        return port

    def delete_port(self, port: Port) -> None:
        for key in [k for k, f in self.fips.items() if f.port.name == port.name]:
            self.delete_fip(self.fips[key])
        self.nbctl("lsp-del", port.name)
        self.ports.pop(port.name, None)
        self._used_ips.discard(port.ip4)
        if port.ip6 is not None:
            self._used_ips.discard(port.ip6)

    def add_fip(self, router: Router, port: Port, ip: str | None = None, *,
                distributed: bool = True) -> Fip:
        """A floating IP for `port`: dnat_and_snat on the router; distributed (DVR: the FIP
        lives on the VM's chassis, with its own MAC) unless distributed=False (centralised on
        the gateway chassis)."""
        if ip:
            addr = self._take(ipaddress.IPv4Address(ip))
        else:
            rng = self.defaults.get("fip_range4")
            net = ipaddress.IPv4Network(rng) if rng else router.provider.cidr4
            addr = next((a for a in net if a not in self._used_ips and a != net.network_address
                         and a != net.broadcast_address), None)
            if addr is None:
                raise ValueError(f"no free floating IP left in {net}")
            self._take(addr)
        mac = self.new_mac()
        args = ["lr-nat-add", router.name, "dnat_and_snat", str(addr), str(port.ip4)]
        if distributed:
            args += [port.name, mac]
        self.nbctl(*args)
        fip = Fip(router=router, port=port, ip=addr, external_mac=mac, distributed=distributed)
        self.fips[str(addr)] = fip
        return fip

    def delete_fip(self, fip: Fip) -> None:
        self.nbctl("lr-nat-del", fip.router.name, "dnat_and_snat", str(fip.ip))
        self.fips.pop(str(fip.ip), None)
        self._used_ips.discard(fip.ip)

    # --- reading back ----------------------------------------------------------------------------------

    def names(self) -> Iterable[str]:
        return list(self.networks) + list(self.routers) + list(self.ports)

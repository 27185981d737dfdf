"""A cloud-size Southbound, written directly (no northd): the rows northd and ovn-controller
write for a Neutron cloud, with a constant workload on "this" chassis.

    sb = CloudSb(100_000).build()
    for ops in sb.transactions():          # bulk JSON-RPC transactions (bench/agent/ovsdb.py)
        client.transact("OVN_Southbound", ops)
    sb.snapshot(local)                     # the same rows as model records (unit tests)
    sb.expected                            # the 160 prefixes this chassis must expose

Shape, at `n` Port_Bindings (exactly n rows), `n // 100` chassis and `n // 100` routers (at
least 10 and 2):
- one provider network `public` (localnet, network_name=public) that every router's gateway
  port is on, and the provider VMs (beyond 20k, more provider networks: VLANs of the same
  physnet, since a datapath holds at most 32767 ports);
- every router: a gateway port (patch pair: the router side with chassis-redirect-port, the
  switch side with nat_addresses = the router's IPs and its floating IPs, each
  is_chassis_resident(port)), its cr-lrp (chassisredirect, bound to one chassis) and tenant
  networks (router interface patch pairs) with tenant VMs;
- this chassis (`THIS`) hosts: 60 provider VMs, the gateways (cr-lrps) of 2 dual-stack routers
  with 4 dual-stack tenant networks each, and 40 tenant VMs on those networks, each with a
  distributed floating IP. Exposures: 60 provider VM IPs + 40 tenant VM IPs + 40 FIPs + 2x2
  cr-lrp IPs + 8x2 tenant subnets = 160;
- every other router (IPv4, one tenant network, two FIPs) has its gateway on another chassis;
  the remaining rows are VMs bound round-robin to the other chassis (half on `public`, half on
  the remote tenant networks), 1 in 100 unbound.
Names and external_ids are Neutron's: logical ports are uuids, VIF ports carry the
neutron:* keys northd copies from the NB, router ports the LRP's keys (checked against a real
northd 23.03: it copies an LSP's and an LRP's external_ids into the Port_Binding).
"""

from __future__ import annotations

import ipaddress
import random
import uuid as uuidlib
from collections.abc import Iterator
from dataclasses import dataclass, field

from ovnbgp.model.records import PortBindingRow, Snapshot

THIS = "ch1"
LOCAL_PROVIDER_VMS = 60
LOCAL_ROUTERS = 2
LOCAL_TENANT_NETS = 4  # per local router
LOCAL_TENANT_VMS = 40  # 5 per local tenant network, each with a FIP
EXPOSURES = 160
PUBLIC = ipaddress.IPv4Network("172.16.0.0/12")
PUBLIC6 = ipaddress.IPv6Network("2001:db8:f000::/64")
BATCH = 5000
PORTS_PER_PROVIDER_NET = 20_000


@dataclass
class Pb:
    uuid: str
    logical_port: str
    type: str
    datapath: str
    tunnel_key: int
    mac: list[str]
    chassis: str | None = None  # Chassis name
    up: bool | None = None
    options: dict[str, str] = field(default_factory=dict)
    nat_addresses: list[str] = field(default_factory=list)
    external_ids: dict[str, str] = field(default_factory=dict)
    port_security: list[str] = field(default_factory=list)
    tag: int | None = None


@dataclass
class Datapath:
    uuid: str
    tunnel_key: int
    name: str
    kind: str  # logical-switch / logical-router
    ports: int = 0  # Port_Binding tunnel keys handed out


class CloudSb:
    def __init__(self, n: int, seed: int = 13):
        self.n = n
        self.rng = random.Random(seed)
        self.chassis: dict[str, str] = {}  # name -> Chassis uuid
        self.datapaths: list[Datapath] = []
        self.pbs: list[Pb] = []
        self.expected: set[str] = set()
        self._public_ip = 10
        self._mac = 0
        self.remote_vms: list[Pb] = []  # VM ports bound to other chassis (events)
        self.local_tenant_datapaths: list[str] = []  # behind the gateways bound here

    # --- names and addresses -------------------------------------------------------------------

    def uuid(self) -> str:
        return str(uuidlib.UUID(int=self.rng.getrandbits(128), version=4))

    def mac(self) -> str:
        self._mac += 1
        m = self._mac
        return f"fa:16:3e:{(m >> 16) & 255:02x}:{(m >> 8) & 255:02x}:{m & 255:02x}"

    def public_ip(self) -> str:
        self._public_ip += 1
        if self._public_ip >= PUBLIC.num_addresses - 1:
            raise ValueError("public network exhausted")
        return str(PUBLIC.network_address + self._public_ip)

    def datapath(self, name: str, kind: str) -> Datapath:
        dp = Datapath(self.uuid(), len(self.datapaths) + 1, name, kind)
        self.datapaths.append(dp)
        return dp

    def add(self, dp: Datapath, logical_port: str, type: str, mac: list[str], **kw) -> Pb:
        dp.ports += 1
        pb = Pb(self.uuid(), logical_port, type, dp.uuid, dp.ports, mac, **kw)
        self.pbs.append(pb)
        return pb

    def neutron_ids(self, owner: str, network: str, cidrs: str, project: str) -> dict[str, str]:
        return {"neutron:cidrs": cidrs, "neutron:device_id": self.uuid(),
                "neutron:device_owner": owner, "neutron:network_name": f"neutron-{network}",
                "neutron:port_name": "", "neutron:project_id": project,
                "neutron:revision_number": "4", "neutron:security_group_ids": self.uuid(),
                "neutron:host_id": ""}

    # --- build ---------------------------------------------------------------------------------

    @property
    def n_chassis(self) -> int:
        return max(10, self.n // 100)

    @property
    def n_routers(self) -> int:
        return max(LOCAL_ROUTERS, self.n // 100)

    def build(self) -> CloudSb:
        self.chassis = {THIS: self.uuid()}
        for i in range(2, self.n_chassis + 1):
            self.chassis[f"compute-{i}"] = self.uuid()
        self.others = [c for c in self.chassis if c != THIS]
        self.public = self.provider_network("public")
        for _ in range(LOCAL_PROVIDER_VMS):
            self.vm(self.public, THIS, public=True)
        for r in range(LOCAL_ROUTERS):
            self.local_router(r)
        tenant_nets = [self.remote_router(k) for k in range(LOCAL_ROUTERS, self.n_routers)]
        if len(self.pbs) > self.n:
            raise ValueError(f"{self.n} Port_Bindings cannot hold the local workload and "
                             f"{self.n_routers} routers")
        providers = [self.public]
        i = 0
        while len(self.pbs) < self.n:
            ch = self.others[i % len(self.others)] if i % 100 != 99 else None
            if i % 2 == 0 or not tenant_nets:
                # a datapath's tunnel keys end at 32767: the next VLAN (its localnet row counts)
                if providers[-1].ports >= PORTS_PER_PROVIDER_NET and len(self.pbs) < self.n - 1:
                    providers.append(self.provider_network(f"provider-{len(providers)}",
                                                           vlan=100 + len(providers)))
                pb = self.vm(providers[-1], ch, public=True)
            else:
                dp, net = tenant_nets[(i // 2) % len(tenant_nets)]
                pb = self.vm(dp, ch, net=net)
            if ch is not None:
                self.remote_vms.append(pb)
            i += 1
        assert len(self.pbs) == self.n and len(self.expected) == EXPOSURES, (len(self.pbs), len(self.expected))
        return self

    def provider_network(self, name: str, vlan: int | None = None) -> Datapath:
        """A provider network on physnet `public` (a VLAN of it when `vlan`)."""
        dp = self.datapath(name, "logical-switch")
        self.add(dp, "provnet-" + self.uuid(), "localnet", ["unknown"],
                 options={"network_name": "public"}, **({"tag": vlan} if vlan else {}))
        return dp

    def vm(self, dp: Datapath, chassis: str | None, *, public: bool = False,
           net: list | None = None) -> Pb:
        """A VIF port: `net` is [network, next host number] of a tenant network."""
        if public:
            ip = self.public_ip()
            cidr = f"{ip}/12"
        else:
            assert net is not None
            network, host = net
            net[1] += 1
            if host >= network.num_addresses - 1:
                raise ValueError(f"tenant network {network} is full")
            ip = str(network.network_address + host)
            cidr = f"{ip}/{network.prefixlen}"
        mac = self.mac()
        name = self.uuid()
        pb = self.add(dp, name, "", [f"{mac} {ip}"], chassis=chassis, up=chassis is not None,
                      options={"requested-chassis": chassis or "", "mcast_flood_reports": "true"},
                      external_ids=self.neutron_ids("compute:nova", dp.name, cidr, "p" * 32),
                      port_security=[f"{mac} {ip}"])
        if chassis == THIS and public:
            self.expected.add(f"{ip}/32")
        return pb

    def router_ports(self, router: Datapath, switch: Datapath, addrs: list[str], *,
                     gateway: bool) -> tuple[Pb, Pb]:
        """A router port and its switch peer (patch pair), as northd writes them."""
        lrp_name, lsp_name = self.uuid(), self.uuid()
        mac = self.mac()
        lrp_ids = {"neutron:network_name": f"neutron-{switch.name}", "neutron:revision_number": "3",
                   "neutron:router_name": router.name, "neutron:subnet_ids": self.uuid()}
        if gateway:
            lrp_ids["neutron:is_ext_gw"] = "True"
        opts = {"peer": lsp_name}
        if gateway:
            opts["chassis-redirect-port"] = f"cr-lrp-{lrp_name}"  # the cr-lrp: gateway()
        lrp_name = f"lrp-{lrp_name}"
        lrp = self.add(router, lrp_name, "patch", [" ".join([mac, *addrs])], options=opts,
                       external_ids=lrp_ids)
        owner = "network:router_gateway" if gateway else "network:router_interface"
        lsp = self.add(switch, lsp_name, "patch", ["router"], options={"peer": lrp_name},
                       external_ids=self.neutron_ids(owner, switch.name, " ".join(addrs), "p" * 32))
        return lrp, lsp

    def gateway(self, router: Datapath, addrs: list[str], chassis: str) -> tuple[Pb, Pb]:
        lrp, lsp = self.router_ports(router, self.public, addrs, gateway=True)
        cr = self.add(router, "cr-" + lrp.logical_port, "chassisredirect", list(lrp.mac),
                      chassis=chassis, up=True, options={"distributed-port": lrp.logical_port},
                      external_ids=dict(lrp.external_ids))
        mac = lrp.mac[0].split()[0]
        ips = " ".join(a.split("/")[0] for a in addrs)
        lsp.nat_addresses = [f'{mac} {ips} is_chassis_resident("{cr.logical_port}")']
        return cr, lsp

    def local_router(self, r: int) -> None:
        router = self.datapath(f"router-local-{r}", "logical-router")
        gw4, gw6 = self.public_ip(), str(PUBLIC6.network_address + 1 + r)
        _, gw_lsp = self.gateway(router, [f"{gw4}/12", f"{gw6}/64"], THIS)
        self.expected |= {f"{gw4}/32", f"{gw6}/128"}
        per_net = LOCAL_TENANT_VMS // (LOCAL_ROUTERS * LOCAL_TENANT_NETS)
        for s in range(LOCAL_TENANT_NETS):
            net4 = ipaddress.IPv4Network(f"10.{200 + r}.{s}.0/24")
            net6 = ipaddress.IPv6Network(f"fd00:{200 + r}:{s}::/64")
            switch = self.datapath(f"tenant-local-{r}-{s}", "logical-switch")
            self.local_tenant_datapaths.append(switch.uuid)
            self.router_ports(router, switch, [f"{net4.network_address + 1}/24",
                                               f"{net6.network_address + 1}/64"], gateway=False)
            self.expected |= {str(net4), str(net6)}
            hosts = [net4, 10]
            for _ in range(per_net):
                vm = self.vm(switch, THIS, net=hosts)
                ip = vm.mac[0].split()[1]
                fip = self.public_ip()
                gw_lsp.nat_addresses.append(f'{self.mac()} {fip} is_chassis_resident("{vm.logical_port}")')
                self.expected |= {f"{ip}/32", f"{fip}/32"}

    def remote_router(self, k: int) -> tuple[Datapath, list]:
        router = self.datapath(f"router-{k}", "logical-router")
        ch = self.others[k % len(self.others)]
        _, gw_lsp = self.gateway(router, [f"{self.public_ip()}/12"], ch)
        switch = self.datapath(f"tenant-{k}", "logical-switch")
        net = ipaddress.IPv4Network(f"10.{k // 256}.{k % 256}.0/24")
        self.router_ports(router, switch, [f"{net.network_address + 1}/24"], gateway=False)
        hosts = [net, 10]
        for _ in range(2):  # two VMs with a FIP, on the gateway's chassis
            vm = self.vm(switch, ch, net=hosts)
            gw_lsp.nat_addresses.append(
                f'{self.mac()} {self.public_ip()} is_chassis_resident("{vm.logical_port}")')
        return switch, hosts

    # --- OVSDB ---------------------------------------------------------------------------------

    def transactions(self) -> Iterator[list[dict]]:
        """Insert operations in transactions of at most BATCH rows (explicit uuids)."""
        ops: list[dict] = []
        for i, (name, u) in enumerate(self.chassis.items()):
            ops += chassis_ops(name, u, f"192.0.{i // 250}.{i % 250 + 1}")
        for dp in self.datapaths:
            ops.append({"op": "insert", "table": "Datapath_Binding", "uuid": dp.uuid,
                        "row": {"tunnel_key": dp.tunnel_key, "external_ids": omap(
                            {dp.kind: self.uuid(), "name": dp.name})}})
        yield ops
        for start in range(0, len(self.pbs), BATCH):
            yield [self.insert_op(pb) for pb in self.pbs[start:start + BATCH]]

    def insert_op(self, pb: Pb) -> dict:
        row = {"logical_port": pb.logical_port, "type": pb.type, "datapath": ["uuid", pb.datapath],
               "tunnel_key": pb.tunnel_key, "mac": oset(pb.mac), "options": omap(pb.options),
               "nat_addresses": oset(pb.nat_addresses), "external_ids": omap(pb.external_ids),
               "port_security": oset(pb.port_security)}
        if pb.chassis is not None:
            row["chassis"] = ["uuid", self.chassis[pb.chassis]]
        if pb.up is not None:
            row["up"] = pb.up
        if pb.tag is not None:
            row["tag"] = pb.tag
        return {"op": "insert", "table": "Port_Binding", "uuid": pb.uuid, "row": row}

    def new_vm(self, chassis: str) -> Pb:
        """One more provider VM bound to `chassis` (not counted in n): for join events."""
        pb = self.vm(self.public, chassis, public=True)
        self.pbs.pop()
        return pb

    # --- as model records (tests) --------------------------------------------------------------

    def snapshot(self, local) -> Snapshot:
        return Snapshot(local=local, port_bindings={pb.uuid: _record(pb) for pb in self.pbs},
                        chassis_names=frozenset(self.chassis))


def chassis_ops(name: str, uuid: str, ip: str) -> list[dict]:
    """A Chassis row with its Encap and Chassis_Private, as ovn-controller registers it."""
    encap = str(uuidlib.uuid5(uuidlib.NAMESPACE_OID, "encap-" + uuid))
    other = {"datapath-type": "system", "iface-types": "erspan,geneve,gre,internal,ip6erspan,"
             "ip6gre,lisp,patch,stt,system,tap,vxlan", "is-interconn": "false",
             "ovn-bridge-mappings": "public:br-ex", "ovn-chassis-mac-mappings": "",
             "ovn-cms-options": "", "ovn-enable-lflow-cache": "true", "ovn-limit-lflow-cache": "",
             "ovn-memlimit-lflow-cache-kb": "", "ovn-monitor-all": "false",
             "ovn-trim-limit-lflow-cache": "", "ovn-trim-timeout-ms": "",
             "ovn-trim-wmark-perc-lflow-cache": "", "port-up-notif": "true"}
    return [
        {"op": "insert", "table": "Encap", "uuid": encap,
         "row": {"type": "geneve", "ip": ip, "chassis_name": name, "options": omap({"csum": "true"})}},
        {"op": "insert", "table": "Chassis", "uuid": uuid,
         "row": {"name": name, "hostname": name, "encaps": ["uuid", encap],
                 "other_config": omap(other), "external_ids": omap(other)}},
        {"op": "insert", "table": "Chassis_Private",
         "row": {"name": name, "chassis": ["uuid", uuid], "nb_cfg": 0}},
    ]


def oset(values: list[str]) -> list:
    return ["set", list(values)]


def omap(d: dict[str, str]) -> list:
    return ["map", [[k, v] for k, v in d.items()]]


def _record(pb: Pb) -> PortBindingRow:
    """What the watcher mirrors of the row (ovn/watcher.py port_binding_from_record)."""
    from ovnbgp.model.policy import SCOPE_KEYS
    from ovnbgp.model.records import PORT_BINDING_OPTIONS

    return PortBindingRow(
        uuid=pb.uuid, logical_port=pb.logical_port, type=pb.type, datapath=pb.datapath,
        mac=tuple(pb.mac), chassis=pb.chassis, up=pb.up,
        options={k: v for k, v in pb.options.items() if k in PORT_BINDING_OPTIONS},
        nat_addresses=tuple(pb.nat_addresses),
        external_ids={k: v for k, v in pb.external_ids.items() if k in SCOPE_KEYS}
        if pb.type == "patch" else {})

"""The OVN side of the agent benchmark, at scale: NB objects, northd, and SB bindings.

    topo = Topology(central, n=10_000, extra=550, routers=100)
    topo.build()          # NB (bulk JSON-RPC inserts + batched ovn-nbctl), northd, SB binds
    topo.bind(["spare3"]) # bind spare ports later (what ovn-controller writes), by uuid

Shape (all IPv4, one chassis "ch1" = this node):
- `n` provider VM ports on the provider switch "public" (localnet -> br-ex), bound here, up;
- `extra` spare provider VM ports, created but unbound (event latency and burst samples);
- `routers` routers with their gateway port on a second provider switch "ext" (same physnet,
  so br-ex too; cr-lrp bound here), two tenant subnets each (router interfaces), and
  `n // 100` tenant VMs on those subnets, bound here, each with a distributed floating IP
  from "ext" (DVR: exposed on the VM's chassis).
The routers are not on "public": northd makes an ARP-resolve flow for every (router port,
port of its switch) pair, and 100 routers x 10k ports ran it out of 4 GB in User-Mode Linux.
What the agent must expose: the n provider IPs, the FIPs, the tenant VM IPs, the cr-lrp IPs
and the tenant CIDRs (`expected`).

Set-up uses bulk paths (docs/architecture.md, "OVN"): the provider ports are
inserted into the NB with raw transactions of 2000 rows, the routers with a few batched
ovn-nbctl calls, and ports are bound by uuid in transactions of 2000.

`direct_sb`: the provider ports (and spares) are written into the Southbound directly, as
northd would write them, instead of through the NB: in User-Mode Linux northd made only 33,866
of 101,320 Port_Bindings in 25 min at 100k. northd builds the rest (routers, tenant VMs, FIPs)
and is then stopped for good (it would delete the rows it did not make). A datapath holds at
most 32767 port tunnel keys, so the provider ports fill `public` and then further untagged
provider switches on the same physnet (`public-dK`, localnet `ln-public-dK`: the node needs one
patch pair per localnet, `localnets`), SB_PORTS_PER_DATAPATH each.
"""

from __future__ import annotations

import ipaddress
import os
import signal
import time
import uuid as uuidlib
from dataclasses import dataclass, field

from bench.agent.ovsdb import OvsdbClient, bind_op, uuid_of

NB, SB = "OVN_Northbound", "OVN_Southbound"
CHASSIS = "ch1"
BATCH = 2000
PROVIDER_BASE = ipaddress.IPv4Address("172.16.1.0")
FIP_BASE = ipaddress.IPv4Address("172.31.0.10")
GW_BASE = ipaddress.IPv4Address("172.31.254.1")
EXT_PREFIXLEN = 16  # "ext": 172.31.0.0/16 (router gateways and floating IPs)
SB_PORTS_PER_DATAPATH = 30_000  # a datapath's port tunnel keys end at 32767


def mac(kind: int, i: int) -> str:
    return f"fa:16:{kind:02x}:{(i >> 16) & 255:02x}:{(i >> 8) & 255:02x}:{i & 255:02x}"


@dataclass
class Port:
    name: str
    ip: str
    uuid: str = ""  # Port_Binding uuid, once northd made it

    @property
    def prefix(self) -> str:
        return f"{self.ip}/32"


@dataclass
class Topology:
    central: object  # tests.harness.ovn.OvnCentral
    n: int
    extra: int = 550
    routers: int = 100
    fips: int | None = None  # default n // 100
    provider: list[Port] = field(default_factory=list)
    spare: list[Port] = field(default_factory=list)
    tenant_vms: list[Port] = field(default_factory=list)
    fip_ips: list[str] = field(default_factory=list)
    gateways: list[Port] = field(default_factory=list)  # cr-lrp ports
    tenant_cidrs: list[str] = field(default_factory=list)
    chassis_uuid: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    direct_sb: bool = False
    extra_localnets: list[tuple[str, str]] = field(default_factory=list)  # (name, localnet port)

    def __post_init__(self) -> None:
        if self.fips is None:
            self.fips = max(1, self.n // 100)
        if self.routers > 250:
            raise ValueError("at most 250 routers (10.R.S.0/24 tenant subnets)")

    # --- what the agent must expose ------------------------------------------------------------

    @property
    def expected(self) -> set[str]:
        return ({p.prefix for p in self.provider} | {f"{ip}/32" for ip in self.fip_ips}
                | {p.prefix for p in self.tenant_vms} | {g.prefix for g in self.gateways}
                | set(self.tenant_cidrs))

    # --- build ---------------------------------------------------------------------------------

    def build(self, timeout: float = 900) -> Topology:
        c = self.central
        t = time.monotonic()
        # northd recomputes everything after each NB transaction: hold it until the NB is
        # complete, then let it compute once.
        northd = c.daemons["ovn-northd"].pid
        os.kill(northd, signal.SIGSTOP)
        try:
            self._build_nb()
        finally:
            os.kill(northd, signal.SIGCONT)
        self.timings["nb"] = time.monotonic() - t
        t = time.monotonic()
        c.sync(timeout=timeout)
        self.timings["northd"] = time.monotonic() - t
        t = time.monotonic()
        with OvsdbClient(c.sb_remote, timeout=timeout) as sb:
            self.chassis_uuid = uuid_of(sb.select(SB, "Chassis", ["_uuid"],
                                                  [["name", "==", CHASSIS]])[0])
            providers = [] if self.direct_sb else [*self.provider, *self.spare]
            uuids = self._port_bindings(sb, timeout, [*providers, *self.tenant_vms, *self.gateways])
            for p in (*providers, *self.tenant_vms, *self.gateways):
                p.uuid = uuids[p.name]
            self._bind(sb, [*providers[:len(self.provider)], *self.tenant_vms, *self.gateways])
        # northd reacts to the bindings (it mirrors `up` into the NB): let it settle.
        c.sync(timeout=timeout)
        self.timings["bind"] = time.monotonic() - t
        if self.direct_sb:
            os.kill(northd, signal.SIGSTOP)  # for good: it would delete the rows below
            t = time.monotonic()
            with OvsdbClient(c.sb_remote, timeout=timeout) as sb:
                self._direct_provider_ports(sb)
            self.timings["direct_sb"] = time.monotonic() - t
        return self

    def _direct_provider_ports(self, sb: OvsdbClient) -> None:
        """The provider ports and spares as Port_Binding rows written straight into the SB
        (see the module docstring): the ports bound here and up, the spares unbound."""
        public = sb.select(SB, "Datapath_Binding", ["_uuid", "tunnel_key", "external_ids"])
        dp_keys = [r["tunnel_key"] for r in public]
        public_uuid = next(uuid_of(r) for r in public if ["name", "public"] in r["external_ids"][1])
        used = [r["tunnel_key"] for r in sb.select(SB, "Port_Binding", ["tunnel_key"],
                                                   [["datapath", "==", ["uuid", public_uuid]]])]
        ports = [*self.provider, *self.spare]
        bound = {p.name for p in self.provider}
        datapath, next_key, ops = public_uuid, max(used) + 1, []
        for i, p in enumerate(ports):
            if next_key > SB_PORTS_PER_DATAPATH:  # the next provider switch, same physnet
                k = len(self.extra_localnets)
                name = f"public-d{k}"
                datapath = str(uuidlib.uuid4())
                ops.append({"op": "insert", "table": "Datapath_Binding", "uuid": datapath,
                            "row": {"tunnel_key": max(dp_keys) + 1 + k, "external_ids": [
                                "map", [["name", name], ["logical-switch", str(uuidlib.uuid4())]]]}})
                ops.append({"op": "insert", "table": "Port_Binding",
                            "row": {"logical_port": f"ln-{name}", "type": "localnet",
                                    "datapath": ["uuid", datapath], "tunnel_key": 1,
                                    "mac": "unknown",
                                    "options": ["map", [["network_name", "public"]]]}})
                self.extra_localnets.append((name, f"ln-{name}"))
                next_key = 2
            p.uuid = str(uuidlib.uuid4())
            here = p.name in bound
            row = {"logical_port": p.name, "datapath": ["uuid", datapath], "tunnel_key": next_key,
                   "mac": f"{mac(0x3e, i)} {p.ip}", "up": here}
            if here:
                row["chassis"] = ["uuid", self.chassis_uuid]
            ops.append({"op": "insert", "table": "Port_Binding", "uuid": p.uuid, "row": row})
            next_key += 1
            if len(ops) >= BATCH:
                sb.transact(SB, ops)
                ops = []
        if ops:
            sb.transact(SB, ops)

    def _port_bindings(self, sb: OvsdbClient, timeout: float, ports: list[Port]) -> dict[str, str]:
        """logical_port -> Port_Binding uuid once northd made one for every port: at 100k a
        `--wait=sb sync` was seen to return before all of them existed (northd, busy for
        minutes in UML, reconnects to the SB and computes again)."""
        names = {p.name for p in ports}
        deadline = time.monotonic() + timeout
        while True:
            uuids = {r["logical_port"]: uuid_of(r)
                     for r in sb.select(SB, "Port_Binding", ["_uuid", "logical_port"])}
            missing = names - uuids.keys()
            if not missing:
                return uuids
            if time.monotonic() > deadline:
                raise TimeoutError(f"northd made no Port_Binding for {len(missing)} ports "
                                   f"(e.g. {sorted(missing)[:3]}) in {timeout:.0f} s")
            print(f"[topology] waiting for northd: {len(missing)} of {len(names)} Port_Bindings "
                  "missing", flush=True)
            time.sleep(10)

    def _build_nb(self) -> None:
        c = self.central
        c.sbctl("chassis-add", CHASSIS, "geneve", "127.0.0.1")
        for ls in ("public", "ext"):
            c.nbctl("ls-add", ls, "--", "lsp-add", ls, f"ln-{ls}",
                    "--", "lsp-set-type", f"ln-{ls}", "localnet",
                    "--", "lsp-set-addresses", f"ln-{ls}", "unknown",
                    "--", "lsp-set-options", f"ln-{ls}", "network_name=public")
        self._provider_ports()
        self._routers()

    def _provider_ports(self) -> None:
        self.provider = [Port(f"vm{i}", str(PROVIDER_BASE + i)) for i in range(self.n)]
        self.spare = [Port(f"spare{i}", str(PROVIDER_BASE + self.n + i)) for i in range(self.extra)]
        if self.direct_sb:
            return  # written into the SB after northd's part (_direct_provider_ports)
        ports = [(p, mac(0x3e, i)) for i, p in enumerate([*self.provider, *self.spare])]
        with OvsdbClient(self.central.nb_remote) as nb:
            for start in range(0, len(ports), BATCH):
                chunk = ports[start:start + BATCH]
                ops: list[dict] = []
                for j, (p, m) in enumerate(chunk):
                    ops.append({"op": "insert", "table": "Logical_Switch_Port", "uuid-name": f"p{j}",
                                "row": {"name": p.name, "addresses": f"{m} {p.ip}"}})
                ops.append({"op": "mutate", "table": "Logical_Switch",
                            "where": [["name", "==", "public"]],
                            "mutations": [["ports", "insert",
                                           ["set", [["named-uuid", f"p{j}"] for j in range(len(chunk))]]]]})
                nb.transact(NB, ops)

    def _routers(self) -> None:
        router_args: list[str] = []
        for r in range(self.routers):
            gw_ip = str(GW_BASE + r)
            name = f"r{r}"
            self.gateways.append(Port(f"cr-lrp-{name}-gw", gw_ip))
            args = ["lr-add", name,
                    "--", "lrp-add", name, f"lrp-{name}-gw", mac(0x17, r), f"{gw_ip}/{EXT_PREFIXLEN}",
                    "--", "lsp-add", "ext", f"gw-{name}",
                    "--", "lsp-set-type", f"gw-{name}", "router",
                    "--", "lsp-set-addresses", f"gw-{name}", "router",
                    "--", "lsp-set-options", f"gw-{name}", f"router-port=lrp-{name}-gw",
                    "nat-addresses=router",
                    "--", "lrp-set-gateway-chassis", f"lrp-{name}-gw", CHASSIS, "10"]
            for s in range(2):
                t = f"t{r}-{s}"
                cidr = f"10.{r}.{s}.0/24"
                self.tenant_cidrs.append(cidr)
                args += ["--", "ls-add", t,
                         "--", "lrp-add", name, f"lrp-{t}", mac(0x18, r * 2 + s), f"10.{r}.{s}.1/24",
                         "--", "lsp-add", t, f"rp-{t}",
                         "--", "lsp-set-type", f"rp-{t}", "router",
                         "--", "lsp-set-addresses", f"rp-{t}", "router",
                         "--", "lsp-set-options", f"rp-{t}", f"router-port=lrp-{t}"]
            router_args += ["--", *args]
        self._nbctl_commands(router_args)
        # Tenant VMs, spread over the tenant subnets, each with a distributed FIP.
        vm_args: list[str] = []
        nat_args: list[str] = []
        for k in range(self.fips):
            r, s = k % self.routers, (k // self.routers) % 2
            host = 10 + k // (2 * self.routers)
            ip = f"10.{r}.{s}.{host}"
            vm = Port(f"tvm{k}", ip)
            self.tenant_vms.append(vm)
            fip = str(FIP_BASE + k)
            self.fip_ips.append(fip)
            vm_args += ["--", "lsp-add", f"t{r}-{s}", vm.name,
                        "--", "lsp-set-addresses", vm.name, f"{mac(0x19, k)} {ip}"]
            nat_args += ["--", "lr-nat-add", f"r{r}", "dnat_and_snat", fip, ip, vm.name, mac(0x1a, k)]
        self._nbctl_commands(vm_args)
        self._nbctl_commands(nat_args)

    def _nbctl_commands(self, args: list[str], per_call: int = 500) -> None:
        """Run `-- cmd -- cmd ...` in ovn-nbctl calls of at most `per_call` commands each."""
        cmds: list[list[str]] = []
        for a in args:
            if a == "--":
                cmds.append([])
            elif cmds:
                cmds[-1].append(a)
            else:
                cmds.append([a])
        for start in range(0, len(cmds), per_call):
            flat: list[str] = []
            for cmd in cmds[start:start + per_call]:
                if cmd:
                    flat += ["--", *cmd]
            if flat:
                self.central.nbctl(*flat[1:], timeout=600)

    # --- bindings ------------------------------------------------------------------------------

    def _bind(self, sb: OvsdbClient, ports: list[Port], up: bool = True) -> None:
        for start in range(0, len(ports), BATCH):
            sb.transact(SB, [bind_op(p.uuid, self.chassis_uuid, up) for p in ports[start:start + BATCH]])

    def bind_ops(self, ports: list[Port], bound: bool = True) -> list[dict]:
        return [bind_op(p.uuid, self.chassis_uuid if bound else None, bound) for p in ports]

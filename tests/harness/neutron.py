"""A Neutron-style OVN topology on one NodeLab node (tests/harness/node_lab.py), as the vm fault
and adversarial tests build it, and the test's own model of it (`World`), independent of the
agent's model.

    world = World()
    build_topology(node.ovn, world)   # NB: provider network `public` (localnet, network_name=public),
                                      # PROVIDER VMs (the first 4 bound to ch1), router r1 with its
                                      # gateway (cr-lrp-gw on ch1, nat-addresses=router), tenant
                                      # networks t1, t2 with VMs, a floating IP on tv1_1 (on ch1)
    world.expected()                  # the prefixes ch1 must expose

Ports are bound with `ovn-sbctl lsp-bind` (no ovn-controller); chassis ch1 (this node) and ch2.
`NeutronNode` is a NodeLab that knows its `world` and waits for convergence to it.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field

from tests.harness.frr import bgp_prefixes
from tests.harness.node_lab import METRICS, NodeLab
from tests.harness.ovn import OvnCentral
from tests.harness.proc import netns_argv, run, wait_for

CRLRP_IP = "172.24.4.146"
PROVIDER = [f"pv{i}" for i in range(12)]
TENANTS = (1, 2)
TENANT_VMS = {t: [f"tv{t}_{i}" for i in range(3)] for t in TENANTS}
FIPS = [f"172.24.4.{200 + i}" for i in range(8)]
COOKIE = "0x6f766e626770"



def pv_ips(port: str) -> tuple[str, str]:
    i = int(port[2:])
    return f"172.24.4.{10 + i}", f"2001:db8::{10 + i:x}"


def pv_mac(port: str) -> str:
    return f"fa:16:3e:00:01:{int(port[2:]):02x}"


def tv_ip(port: str) -> str:
    t, i = port[2:].split("_")
    return f"10.0.{t}.{10 + int(i)}"


def tv_mac(port: str) -> str:
    t, i = port[2:].split("_")
    return f"fa:16:3e:00:{int(t) + 1:02x}:{int(i):02x}"


# --- the test's own model of OVN ----------------------------------------------------------------


@dataclass
class World:
    """What the test has made OVN say; `expected()` is what ch1 must expose."""

    bound: dict[str, str | None] = field(default_factory=dict)  # port -> chassis
    attached: set[int] = field(default_factory=set)  # tenant networks on r1
    fips: dict[str, str] = field(default_factory=dict)  # floating IP -> tenant VM port
    deleted: set[str] = field(default_factory=set)  # provider ports removed from the NB

    def expected(self) -> set[str]:
        out = {f"{CRLRP_IP}/32"}
        for p in PROVIDER:
            if p not in self.deleted and self.bound.get(p) == "ch1":
                v4, v6 = pv_ips(p)
                out |= {f"{v4}/32", f"{v6}/128"}
        for t in self.attached:
            out.add(f"10.0.{t}.0/24")
            out |= {f"{tv_ip(p)}/32" for p in TENANT_VMS[t] if self.bound.get(p)}
        out |= {f"{ip}/32" for ip, p in self.fips.items() if self.bound.get(p) == "ch1"}
        return out


def attach_cmds(t: int) -> list[list[str]]:
    return [["lrp-add", "r1", f"lrp-t{t}", f"00:00:00:00:f{t}:01", f"10.0.{t}.1/24"],
            ["lsp-add", f"t{t}", f"rp-t{t}"], ["lsp-set-type", f"rp-t{t}", "router"],
            ["lsp-set-addresses", f"rp-t{t}", "router"],
            ["lsp-set-options", f"rp-t{t}", f"router-port=lrp-t{t}"]]


def detach_cmds(t: int) -> list[list[str]]:
    return [["lrp-del", f"lrp-t{t}"], ["lsp-del", f"rp-t{t}"]]


def fip_set_cmds(ip: str, port: str) -> list[list[str]]:
    mac = f"fa:16:3e:00:99:{int(ip.rsplit('.', 1)[1]) - 200:02x}"
    return [["lr-nat-add", "r1", "dnat_and_snat", ip, tv_ip(port), port, mac]]


def fip_unset_cmds(ip: str) -> list[list[str]]:
    return [["lr-nat-del", "r1", "dnat_and_snat", ip]]


def joined(cmds: list[list[str]]) -> list[str]:
    out: list[str] = []
    for c in cmds:
        if out:
            out.append("--")
        out += c
    return out


# --- the node ----------------------------------------------------------------------------------


@dataclass
class NeutronNode(NodeLab):
    """The node lab plus what the test has made OVN say (`world`)."""

    world: World = field(default_factory=World)

    def leaf_table(self) -> set[str]:
        return set(bgp_prefixes(self.leaf, "ipv4")) | set(bgp_prefixes(self.leaf, "ipv6"))

    def leaf_log_size(self) -> int:
        return self.leaf.log_path("bgpd").stat().st_size

    def withdrawals_since(self, offset: int) -> list[str]:
        """Prefixes the leaf received a BGP withdrawal for since `offset` of its bgpd log."""
        with open(self.leaf.log_path("bgpd"), "rb") as f:
            f.seek(offset)
            text = f.read().decode(errors="replace")
        return [m.group(1) for m in re.finditer(r"rcvd UPDATE about (\S+).*?-- withdrawn", text)]

    def sbctl_bind(self, port: str, chassis: str | None) -> None:
        if chassis is None:
            self.ovn.sbctl("lsp-unbind", port)
        else:
            self.ovn.sbctl("lsp-bind", port, chassis)
        self.world.bound[port] = chassis

    def metrics(self) -> str:
        code = (f"import urllib.request,sys; sys.stdout.write(urllib.request.urlopen("
                f"'http://{METRICS}/metrics').read().decode())")
        return run(netns_argv([sys.executable, "-c", code], self.ns.name)).stdout

    def details(self) -> str:
        return (f"expected-dummy: {sorted(self.world.expected() - self.dummy())} missing, "
                f"{sorted(self.dummy() - self.world.expected())} extra\n"
                + self.agent.log_tail(40))

    def wait_converged(self, timeout: float = 90) -> None:
        """The dummy, then the peer, hold exactly the expected prefixes; `ovnbgp plan` finds
        nothing to change on the node (kernel, flows, FRR)."""
        want = self.world.expected()
        wait_for(lambda: self.dummy() == want, timeout=timeout, what="dummy == expected",
                 details=self.details)
        wait_for(lambda: self.leaf_table() == want, timeout=timeout,
                 what="peer's table == expected",
                 details=lambda: f"missing {sorted(want - self.leaf_table())}, extra "
                                 f"{sorted(self.leaf_table() - want)}")
        last: list = []

        def planned_nothing() -> bool:
            cp = self.agent.cli("plan", "--json")
            last[:] = [cp]
            return cp.returncode == 0

        wait_for(planned_nothing, timeout=timeout, what="`ovnbgp plan` exit 0",
                 details=lambda: last[0].stdout + last[0].stderr if last else "")



def build_topology(ovn: OvnCentral, world: World) -> None:
    nb = ovn.nbctl
    nb("ls-add", "public")
    nb("lsp-add", "public", "ln-public", "--", "lsp-set-type", "ln-public", "localnet", "--",
       "lsp-set-addresses", "ln-public", "unknown", "--",
       "lsp-set-options", "ln-public", "network_name=public")
    cmds = []
    for p in PROVIDER:
        v4, v6 = pv_ips(p)
        cmds += [["lsp-add", "public", p], ["lsp-set-addresses", p, f"{pv_mac(p)} {v4} {v6}"]]
    for t in TENANTS:
        cmds.append(["ls-add", f"t{t}"])
        for p in TENANT_VMS[t]:
            cmds += [["lsp-add", f"t{t}", p], ["lsp-set-addresses", p, f"{tv_mac(p)} {tv_ip(p)}"]]
    cmds += [["lr-add", "r1"],
             ["lrp-add", "r1", "lrp-gw", "00:00:00:00:ff:01", f"{CRLRP_IP}/24"],
             ["lrp-set-gateway-chassis", "lrp-gw", "ch1", "10"],
             ["lsp-add", "public", "gw-port"], ["lsp-set-type", "gw-port", "router"],
             ["lsp-set-addresses", "gw-port", "router"],
             ["lsp-set-options", "gw-port", "router-port=lrp-gw", "nat-addresses=router"]]
    for t in TENANTS:
        cmds += attach_cmds(t)
        world.attached.add(t)
    nb(*joined(cmds))
    ovn.sbctl("chassis-add", "ch1", "geneve", "127.0.0.1")
    ovn.sbctl("chassis-add", "ch2", "geneve", "127.0.0.2")
    ovn.sync()
    binds = [["lsp-bind", "cr-lrp-gw", "ch1"]]
    for p in PROVIDER[:4]:
        binds.append(["lsp-bind", p, "ch1"])
        world.bound[p] = "ch1"
    for t in TENANTS:
        binds.append(["lsp-bind", TENANT_VMS[t][0], "ch2"])
        world.bound[TENANT_VMS[t][0]] = "ch2"
    binds.append(["lsp-bind", TENANT_VMS[1][1], "ch1"])
    world.bound[TENANT_VMS[1][1]] = "ch1"
    ovn.sbctl(*joined(binds))
    ovn.nbctl(*joined(fip_set_cmds(FIPS[0], TENANT_VMS[1][1])))
    world.fips[FIPS[0]] = TENANT_VMS[1][1]

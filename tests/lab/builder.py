"""Build the spine-leaf lab of vagrant/topology.json out of network namespaces, on one kernel.

    lab = Lab(workdir).start()        # spine, leaf1(b), leaf2(b), node1, node2, outside (VM_TIER_HOSTS)
    lab.nodes["node1"].config_path    # node1's ovnbgp TOML; run the agent with node.start_agent()
    public = lab.scenario.provider_network(); vm = lab.add_vm("vm1", public, "node1")
    lab.ping("outside", vm.ip4); lab.migrate(vm, "node2"); lab.stop()

Every host is a network namespace named `<prefix><host>`; links are veth pairs created with
the topology's MACs and renamed by the provisioning scripts. The hosts are provisioned by the
SAME scripts as the Vagrant VMs (vagrant/provision/{net,frr,ovn-node}.sh, run with
`ip netns exec` and LAB_NO_SERVICES=1); only starting the daemons differs: the harness starts
them (tests/harness: FrrInstance, OvsNode, OvnCentral, Daemon) instead of systemd.

Per node: ovsdb-server + ovs-vswitchd (userspace/netdev datapath: the UML kernel datapath lacks
conntrack zones) in the node's namespace, ovn-controller (system-id = node name, encap IP =
node loopback), an FRR instance (zebra + bgpd) running exactly what ovnbgp renders from the
node's TOML, so that the agent finds its own config in place. OVN central (NB, SB, northd)
runs in the root namespace: its unix sockets reach every namespace.

See tests/lab/README.md for the addressing plan and the design choices.
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import os
import secrets
import shutil
import socket
import struct
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.harness.frr import FrrInstance, bgp_peer_state
from tests.harness.netns import Netns
from tests.harness.ovn import OvnCentral
from tests.harness.ovs import OvsNode
from tests.harness.proc import Daemon, run, wait_for
from tests.lab.scenario import Network, Scenario
from tests.lab.topology import PROVISION_DIR, TOPOLOGY_FILE, VM_TIER_HOSTS, LinkEnd, Topology, load
from tests.lab.vm import Pinger, Vm, ip_batch, ping

OVNBGP = Path(sys.executable).with_name("ovnbgp")
NODE_BOOT_CONFIG = "frr defaults traditional\n!\n"  # until ovnbgp's rendering is applied


SIOCETHTOOL = 0x8946
ETHTOOL_STXCSUM = 0x17


def tx_checksum_off(ifname: str) -> None:
    """`ethtool -K IFNAME tx off` for an interface of the current namespace (SIOCETHTOOL;
    Debian's base system has no ethtool binary)."""
    value = ctypes.create_string_buffer(struct.pack("II", ETHTOOL_STXCSUM, 0))
    ifreq = struct.pack("16sP16x", ifname.encode(), ctypes.addressof(value))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        fcntl.ioctl(s.fileno(), SIOCETHTOOL, ifreq)


class LabError(RuntimeError):
    """The lab could not be built; the message says which step and shows the state."""


@dataclass
class LabNode:
    """One OVN chassis: OVS, ovn-controller, FRR, and (once an e2e test starts it) ovnbgp."""

    name: str
    ns: Netns
    dir: Path
    topo: Topology
    ovs: OvsNode | None = None
    frr: FrrInstance | None = None
    controller: Daemon | None = None
    agent: Daemon | None = None

    # -- what the agent needs

    @property
    def etc_dir(self) -> Path:
        return self.dir / "etc"

    @property
    def state_dir(self) -> Path:
        return self.dir / "state"

    @property
    def config_path(self) -> Path:
        """The node's ovnbgp config (written by vagrant/provision/ovn-node.sh)."""
        return self.etc_dir / "ovnbgp.toml"

    @property
    def snippet_path(self) -> Path:
        return self.etc_dir / "frr-snippet.conf"

    @property
    def asn(self) -> int:
        return self.topo.host(self.name).asn

    @property
    def encap_ip(self):
        return self.topo.encap_ip(self.name)

    @property
    def loopback6(self):
        return self.topo.host(self.name).loopback6

    @property
    def uplinks(self) -> list[LinkEnd]:
        """Both uplinks (one to each leaf of the rack), in topology order."""
        return self.topo.uplinks(self.name)

    @property
    def uplink(self) -> LinkEnd:
        """The first uplink: its bridge holds the loopback (the encap IP)."""
        return self.uplinks[0]

    @property
    def leaf(self) -> str:
        return self.uplink.peer

    @property
    def leaves(self) -> list[str]:
        return [e.peer for e in self.uplinks]

    def ovnbgp_argv(self, *args: str) -> list[str]:
        """`ovnbgp --config <node toml> ARGS` (run it in the node's namespace: netns=node.ns.name)."""
        return [str(OVNBGP), "--config", str(self.config_path), *args]

    def ovnbgp(self, *args: str, check: bool = True, timeout: float = 120):
        """Run an ovnbgp command for this node inside its namespace."""
        return run(self.ovnbgp_argv(*args), netns=self.ns.name, check=check, timeout=timeout)

    def start_agent(self, ready: Callable[[], bool] | None = None, timeout: float = 60,
                    args: Sequence[str] = ()) -> Daemon:
        """Start `ovnbgp run` in the node's namespace (log: <node dir>/ovnbgp.log)."""
        if self.agent is not None and self.agent.alive():
            raise LabError(f"ovnbgp already runs on {self.name}")
        self.agent = Daemon(f"ovnbgp ({self.name})", self.ovnbgp_argv(*args, "run"),
                            self.dir / "ovnbgp.log", netns=self.ns.name)
        return self.agent.start(ready, timeout)

    def stop_agent(self) -> int | None:
        if self.agent is None:
            return None
        return self.agent.stop(timeout=15)

    # -- ovn-controller

    def start_controller(self, timeout: float = 30) -> Daemon:
        rundir = self.ovs.rundir
        env = {**self.ovs.env, "OVN_RUNDIR": str(rundir)}
        self.controller = Daemon(
            f"ovn-controller ({self.name})",
            ["ovn-controller", self.ovs.remote, f"--pidfile={rundir}/ovn-controller.pid",
             "-vconsole:info", "-vsyslog:off"],
            self.dir / "ovn-controller.log", netns=self.ns.name, env=env)
        return self.controller.start(lambda: (rundir / "ovn-controller.pid").exists(), timeout)

    def stop_controller(self) -> None:
        """Stop ovn-controller (a gateway chassis failure as OVN sees it: the chassis stays
        registered, its BFD/ports stop). `start_controller()` brings it back."""
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def controller_appctl(self, *args: str) -> str:
        """ovn-appctl to this node's ovn-controller (found via its pid file in the OVS rundir)."""
        return run(["ovn-appctl", "-t", "ovn-controller", *args],
                   env={**self.ovs.env, "OVN_RUNDIR": str(self.ovs.rundir)}).stdout

    def vsctl(self, *args: str) -> str:
        return self.ovs.vsctl(*args)


@dataclass
class Lab:
    """The lab; see the module docstring. `start()` builds it, `stop()` removes all of it."""

    workdir: Path
    hosts: Sequence[str] = VM_TIER_HOSTS
    prefix: str = ""  # netns name prefix (use one when the lab shares a kernel with others)
    topology_file: Path = TOPOLOGY_FILE
    log_level: str = "debug"
    topo: Topology = field(init=False)
    netns: dict[str, Netns] = field(init=False, default_factory=dict)
    central: OvnCentral | None = field(init=False, default=None)
    frr: dict[str, FrrInstance] = field(init=False, default_factory=dict)
    nodes: dict[str, LabNode] = field(init=False, default_factory=dict)
    vms: dict[str, Vm] = field(init=False, default_factory=dict)
    scenario: Scenario | None = field(init=False, default=None)
    timings: dict[str, float] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.workdir = Path(self.workdir)
        self.topo = load(self.topology_file, list(self.hosts))
        for h in self.topo.hosts.values():
            if h.role == "central":
                raise LabError("the lab runs OVN central in the root namespace: leave 'central' out of hosts")

    # --- names ---------------------------------------------------------------------------------

    def ns_name(self, name: str) -> str:
        """Namespace of a host or a VM."""
        if name in self.vms:
            return self.vms[name].ns.name
        if name not in self.topo.hosts:
            raise KeyError(f"no host or VM {name!r} in the lab")
        return f"{self.prefix}{name}"

    @property
    def frr_daemons(self) -> tuple[str, ...]:
        """zebra, bgpd, and bfdd when the topology turns BFD on (every router of the lab)."""
        return ("zebra", "bgpd", "bfdd") if self.topo.bgp["bfd"] else ("zebra", "bgpd")

    @property
    def node_zebra_args(self) -> dict[str, list[str]]:
        """With graceful restart, a node's zebra keeps its kernel routes over an FRR restart
        (-r: not flushed at exit; -K: the old ones kept this long after start, until bgpd has
        relearnt them), so the node keeps forwarding while the leaves keep its routes."""
        if not self.topo.bgp["graceful_restart"]:
            return {}
        return {"zebra": ["-r", "-K", str(self.topo.bgp["graceful_restart_time"])]}

    def role(self, host: str) -> str:
        return self.topo.host(host).role

    def hosts_of(self, *roles: str) -> list[str]:
        return [h.name for h in self.topo.hosts.values() if h.role in roles]

    # --- build ---------------------------------------------------------------------------------

    def start(self) -> Lab:
        t_start = time.monotonic()
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            with self._timed("namespaces and links"):
                self._make_namespaces()
                self._make_links()
            with self._timed("OVN central"):
                self.central = OvnCentral(self.workdir / "central").start()
                self.scenario = Scenario(self.central, self.topo)
            with self._timed("OVS per node"):
                for name in self.hosts_of("node"):
                    node = LabNode(name, self.netns[name], self.workdir / name, self.topo)
                    node.dir.mkdir(parents=True, exist_ok=True)
                    node.ovs = OvsNode(node.dir / "ovs", node.ns.name, datapath_type="netdev").start()
                    self.nodes[name] = node
            with self._timed("net.sh on every host"):
                for name in self.topo.hosts:
                    self.provision("net.sh", name)
            with self._timed("fabric FRR (frr.sh + start)"):
                for name in self.hosts_of("spine", "leaf"):
                    conf_dir = self.workdir / name / "frr-provisioned"
                    self.provision("frr.sh", name, LAB_FRR_DIR=str(conf_dir))
                    inst = FrrInstance(f"{self.prefix}{name}", self.workdir / name / "frr", self.netns[name],
                                       daemons=self.frr_daemons)
                    self.frr[name] = inst
                    inst.start((conf_dir / "frr.conf").read_text())
            with self._timed("nodes (FRR, ovn-node.sh, frr.sh, ovn-controller)"):
                for node in self.nodes.values():
                    self._start_node(node)
            with self._timed("convergence (BGP, routes, chassis)"):
                self.wait_converged()
        except BaseException:
            try:
                self.stop()
            except LabError as e:  # secondary: the build failure is what matters
                print(f"lab: {e}", file=sys.stderr)
            raise
        self.timings["total"] = time.monotonic() - t_start
        return self

    def _timed(self, what: str):
        lab = self

        class _T:
            def __enter__(self):
                self.t = time.monotonic()

            def __exit__(self, *exc):
                lab.timings[what] = time.monotonic() - self.t

        return _T()

    def _make_namespaces(self) -> None:
        for name in self.topo.hosts:
            ns = Netns(self.ns_name(name))
            if os.path.exists(f"/run/netns/{ns.name}"):
                raise LabError(f"network namespace {ns.name} exists already (another lab? use a prefix)")
            self.netns[name] = ns.create()

    def _make_links(self) -> None:
        """veth pairs with the topology's MACs and temporary names (net.sh renames them).

        They are made in the current namespace, get tx checksum offload turned off, then move
        to their hosts: a veth hands a locally made TCP/UDP packet on with its checksum still
        to be filled in (CHECKSUM_PARTIAL), and OVS's userspace datapath reads a node's NIC
        with a packet socket, which passes such packets on with a bad checksum (BGP's TCP
        then never comes up). With the offload off every host sends finished packets, as a
        real NIC would deliver them.
        """
        pairs: dict[int, dict[str, LinkEnd]] = {}
        for e in self.topo.ends:
            pairs.setdefault(e.index, {})[e.side] = e
        tag = secrets.token_hex(2)
        temp = {(i, side): f"lk{tag}{i}{side}" for i in pairs for side in "ab"}
        create, move = [], []
        for index, ends in sorted(pairs.items()):
            a, b = ends["a"], ends["b"]
            create.append(f"link add {temp[index, 'a']} address {a.mac} type veth "
                          f"peer name {temp[index, 'b']} address {b.mac}")
            move += [f"link set dev {temp[index, 'a']} netns {self.ns_name(a.host)}",
                     f"link set dev {temp[index, 'b']} netns {self.ns_name(b.host)}"]
        ip_batch(None, create)
        try:
            for name in temp.values():
                tx_checksum_off(name)
        finally:
            ip_batch(None, move)

    def script_env(self, host: str, **extra: str) -> dict[str, str]:
        env = {"LAB_TOPOLOGY": str(self.topology_file), "LAB_HOSTS": ",".join(self.topo.hosts),
               "LAB_ROLE": self.role(host), "LAB_NO_SERVICES": "1", "LAB_DATAPATH": "netdev",
               "OVNBGP": str(OVNBGP)}
        node = self.nodes.get(host)
        if node is not None and node.ovs is not None:
            env["LAB_OVS_DB"] = node.ovs.remote
        env.update(extra)
        return env

    def provision(self, script: str, host: str, **env: str):
        """Run vagrant/provision/<script> HOST inside the host's namespace, as Vagrant would."""
        cp = run(["bash", str(PROVISION_DIR / script), host], netns=self.ns_name(host),
                 env=self.script_env(host, **env), check=False, timeout=180)
        log = self.workdir / host / "provision.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "a") as f:
            f.write(f"=== {script} {host} (exit {cp.returncode})\n{cp.stdout}{cp.stderr}")
        if cp.returncode != 0:
            raise LabError(f"vagrant/provision/{script} {host} exited {cp.returncode}:\n"
                           f"{cp.stdout}{cp.stderr}")
        return cp

    def _start_node(self, node: LabNode) -> None:
        node.frr = FrrInstance(f"{self.prefix}{node.name}", node.dir / "frr", node.ns,
                               daemons=self.frr_daemons, daemon_args=self.node_zebra_args)
        self.frr[node.name] = node.frr
        node.frr.start(NODE_BOOT_CONFIG)
        node.etc_dir.mkdir(parents=True, exist_ok=True)
        node.state_dir.mkdir(parents=True, exist_ok=True)
        self.provision("ovn-node.sh", node.name, LAB_SB_REMOTE=self.central.sb_remote,
                       LAB_ETC=str(node.etc_dir), LAB_FRR_DIR=str(node.frr.conf_dir),
                       LAB_FRR_VTY=str(node.frr.vty_dir), LAB_STATE_DIR=str(node.state_dir),
                       LAB_LOG_LEVEL=self.log_level)
        self.provision("frr.sh", node.name, LAB_ETC=str(node.etc_dir),
                       LAB_FRR_DIR=str(node.frr.conf_dir))
        node.frr.apply_config()  # what ovnbgp renders, as FRR's init would load it
        node.start_controller()

    # --- convergence ---------------------------------------------------------------------------------

    def bgp_sessions(self) -> list[tuple[str, str, str]]:
        """(router, peer address, peer host) of every BGP session of the lab, both directions."""
        out = []
        for e in self.topo.ends:
            if self.role(e.host) in ("spine", "leaf", "node") and self.role(e.peer) in ("spine", "leaf", "node"):
                out.append((e.host, str(e.peer_addr4), e.peer))
        return out

    def bgp_state(self, router: str, peer_addr: str) -> str | None:
        return bgp_peer_state(self.frr[router], peer_addr)

    def down_sessions(self) -> list[str]:
        down = []
        for router, addr, peer in self.bgp_sessions():
            try:
                state = self.bgp_state(router, addr)
            except Exception as e:  # noqa: BLE001 - reported as not up
                state = f"error {e!r}"
            if state != "Established":
                down.append(f"{router} -> {peer} ({addr}): {state}")
        return down

    def missing_routes(self) -> list[str]:
        """Prefixes each node must have in its kernel: every other node's loopbacks, the
        outside networks (advertised by the spine), the default route (from its leaf)."""
        want4 = ["default"] + [f"{self.topo.host(n).loopback}/32" for n in self.nodes]
        want6 = ["default"] + [f"{self.topo.host(n).loopback6}/128" for n in self.nodes
                               if self.topo.host(n).loopback6]
        for e in self.topo.ends:
            if e.advertise and e.side == "a":
                want4.append(str(e.addr4.network))
                want6.append(str(e.addr6.network))
        missing = []
        for name in self.nodes:
            own = {f"{self.topo.host(name).loopback}/32", f"{self.topo.host(name).loopback6}/128"}
            for fam, want in (("-4", want4), ("-6", want6)):
                have = {r.get("dst") for r in json.loads(
                    run(["ip", "-j", fam, "route", "show", "proto", "bgp"], netns=self.ns_name(name)).stdout or "[]")}
                for p in want:
                    bare = p.split("/")[0] if p.endswith(("/32", "/128")) else p
                    if p not in own and p not in have and bare not in have:
                        missing.append(f"{name}: {p}")
        return missing

    def chassis(self) -> dict[str, dict[str, str]]:
        """SB chassis by name: {'encap_ip': ..., 'hostname': ...}."""
        out = self.central.sbctl("--format=json", "--columns=name,hostname,encaps", "list", "Chassis")
        data = json.loads(out)
        names = {}
        for row in data["data"]:
            name, hostname, encaps = row
            names[name] = {"hostname": hostname, "encaps": encaps}
        encaps = json.loads(self.central.sbctl("--format=json", "--columns=chassis_name,ip,type", "list", "Encap"))
        for chassis_name, ip, typ in encaps["data"]:
            if chassis_name in names:
                names[chassis_name]["encap_ip"] = ip
                names[chassis_name]["encap_type"] = typ
        return names

    def wait_converged(self, timeout: float = 120) -> None:
        """BGP sessions Established, node loopbacks and outside networks in every node's
        kernel, every node registered as a chassis, and each node's tunnels to the others."""
        wait_for(lambda: not self.down_sessions(), timeout=timeout, interval=0.5,
                 what="every BGP session of the lab Established",
                 details=lambda: "\n".join(self.down_sessions()) + "\n" + self.describe())
        wait_for(lambda: not self.missing_routes(), timeout=timeout, interval=0.5,
                 what="fabric routes in every node's kernel",
                 details=lambda: "\n".join(self.missing_routes()) + "\n" + self.describe())
        wait_for(lambda: set(self.nodes) <= set(self.chassis()), timeout=timeout, interval=0.5,
                 what="every node registered in the Southbound DB",
                 details=lambda: self.central.sbctl("show"))
        if len(self.nodes) > 1:
            wait_for(lambda: all(len(self.tunnels(n)) == len(self.nodes) - 1 for n in self.nodes),
                     timeout=timeout, interval=0.5, what="geneve tunnels between all chassis",
                     details=self.describe)

    def tunnels(self, node: str) -> dict[str, dict[str, str]]:
        """The geneve ports ovn-controller made on br-int: {port: options}."""
        out = self.nodes[node].vsctl("--format=json", "--columns=name,type,options", "list", "Interface")
        found = {}
        for name, typ, options in json.loads(out)["data"]:
            if typ == "geneve":
                found[name] = dict(options[1])
        return found

    # --- failures ------------------------------------------------------------------------------------

    def set_uplink(self, node: str, up: bool, leaf: str | None = None, side: str = "node") -> None:
        """Pull (up=False) or plug back a node's cables: all of them (leaf None: the node is cut
        off, its tunnels to other chassis stop and OVN's BFD notices), or the one to `leaf`.
        side="node" downs the node's NIC, side="leaf" the leaf's end (the node keeps carrier:
        only BFD or the hold timer tells it). Every test that pulls a cable must plug it back."""
        n = self.nodes[node]
        for e in n.uplinks:
            if leaf is not None and e.peer != leaf:
                continue
            host, ifname = (node, e.ifname) if side == "node" else (e.peer, node)
            run(["ip", "link", "set", "dev", ifname, "up" if up else "down"], netns=self.ns_name(host))

    # --- VMs ------------------------------------------------------------------------------------------

    def add_vm(self, name: str, network: Network, node: str | None = None, *,
               mac: str | None = None, ip4: str | None = None, ip6: str | None = None) -> Vm:
        """A VM: its logical port on `network` (NB), its namespace, bound to `node` if given."""
        if name in self.topo.hosts or name in self.vms:
            raise LabError(f"VM name {name!r} is taken")
        port = self.scenario.add_port(network, name, mac=mac, ip4=ip4, ip6=ip6)
        ns = Netns(f"{self.prefix}{name}").create()
        vm = Vm(name=name, port=port, ns=ns)
        self.vms[name] = vm
        if node is not None:
            self.bind(vm, node)
        return vm

    def bind(self, vm: Vm, node: str) -> None:
        """Plug the VM into `node`'s br-int; ovn-controller there claims its logical port."""
        if vm.node is not None:
            raise LabError(f"{vm.name} is bound to {vm.node} already")
        n = self.nodes[node]
        n.vsctl("--may-exist", "add-port", "br-int", vm.ifname, "--", "set", "Interface", vm.ifname,
                "type=internal", f"external_ids:iface-id={vm.port.name}")
        wait_for(lambda: run(["ip", "link", "show", "dev", vm.ifname], netns=n.ns.name,
                             check=False).returncode == 0,
                 timeout=20, what=f"tap {vm.ifname} on {node}")
        run(["ip", "link", "set", "dev", vm.ifname, "netns", vm.ns.name], netns=n.ns.name)
        ip_batch(vm.ns.name, vm.configure_argv())
        vm.node = node
        vm.history.append((time.monotonic(), node))

    def unbind(self, vm: Vm) -> None:
        """Unplug the VM (its tap goes away); ovn-controller releases the port binding."""
        if vm.node is None:
            return
        self.nodes[vm.node].vsctl("--if-exists", "del-port", "br-int", vm.ifname)
        vm.node = None
        vm.history.append((time.monotonic(), None))

    def migrate(self, vm: Vm, node: str) -> None:
        """Cold migration: unplug from the current node, plug into `node` (same MAC and IPs)."""
        self.unbind(vm)
        self.bind(vm, node)

    def remove_world(self, vm_prefix: str, made: dict, network_keys: Sequence[str],
                     nodes: Iterable[LabNode], restore: Callable[[LabNode], None] | None = None) -> None:
        """Undo what a test module built in the shared lab: its VMs (names starting with
        `vm_prefix`), the router and the networks in `made` (under "router" and `network_keys`,
        deleted in that order); on each node the agent stopped, `restore(node)` if given,
        `ovnbgp cleanup` (its output printed) and FRR's config re-applied; then the lab
        converged again."""
        for vm in [v for v in self.vms.values() if v.name.startswith(vm_prefix)]:
            self.delete_vm(vm)
        if "router" in made:
            self.scenario.delete_router(made["router"])
        for key in network_keys:
            if key in made:
                self.scenario.delete_network(made[key])
        for node in nodes:
            node.stop_agent()
            if restore is not None:
                restore(node)
            cp = node.ovnbgp("cleanup", "--yes", check=False)
            print(f"--- {node.name}: ovnbgp cleanup (exit {cp.returncode}) ---\n{cp.stdout}{cp.stderr}")
            node.ovnbgp("frr", "apply", check=False)
        self.wait_converged()

    def delete_vm(self, vm: Vm) -> None:
        self.unbind(vm)
        self.scenario.delete_port(vm.port)
        vm.ns.delete()
        self.vms.pop(vm.name, None)

    def port_binding(self, port: str) -> dict[str, Any]:
        """Port_Binding of a logical port: {'chassis': name or None, 'up': bool|None, ...}."""
        out = self.central.sbctl("--format=json", "--columns=logical_port,chassis,up,type",
                                 "find", "Port_Binding", f"logical_port={port}")
        rows = json.loads(out)["data"]
        if not rows:
            return {}
        _, chassis, up, typ = rows[0]
        name = None
        if isinstance(chassis, list) and chassis[0] == "uuid":
            name = self.central.sbctl("--bare", "--columns=name", "list", "Chassis", chassis[1]).strip()
        up_val = up if isinstance(up, bool) else None
        return {"chassis": name, "up": up_val, "type": typ}

    def wait_bound(self, port: str, node: str | None, timeout: float = 60) -> None:
        """Wait until `port` is bound to `node` with up=true (node None: unbound)."""
        def ok():
            pb = self.port_binding(port)
            return pb.get("chassis") == node and (node is None or pb.get("up") is True)

        wait_for(ok, timeout=timeout, interval=0.3, what=f"{port} bound to {node} and up",
                 details=lambda: repr(self.port_binding(port)) + "\n" + self.central.sbctl("show"))

    # --- exec and ping --------------------------------------------------------------------------------

    def exec(self, name: str, *argv: str, check: bool = True, timeout: float = 60):
        """Run a command inside a host's or VM's namespace."""
        return run(list(argv), netns=self.ns_name(name), check=check, timeout=timeout)

    def ping(self, src: str, dst, *, count: int = 1, wait: float = 2, source=None) -> bool:
        """Ping `dst` from host/VM `src`; True if it answers."""
        return ping(self.ns_name(src), dst, count=count, wait=wait, source=source)

    def wait_ping(self, src: str, dst, *, timeout: float = 30, source=None) -> None:
        wait_for(lambda: self.ping(src, dst, wait=1, source=source), timeout=timeout, interval=0.2,
                 what=f"{src} -> {dst} answering ping", details=self.describe)

    def pinger(self, src: str, dst, *, interval: float = 0.1, source=None) -> Pinger:
        """A started background ping (see tests.lab.vm.Pinger) for outage timing."""
        return Pinger(self.ns_name(src), dst, interval=interval, source=source).start()

    # --- state for humans -----------------------------------------------------------------------------

    def describe(self) -> str:
        """BGP summaries, routes, OVS and SB state: what a failing wait shows."""
        parts = []
        for name, inst in self.frr.items():
            try:
                parts.append(f"--- {name}: show bgp summary\n{inst.vtysh('show bgp summary')}")
            except Exception as e:  # noqa: BLE001
                parts.append(f"--- {name}: vtysh failed: {e}")
        for name in self.topo.hosts:
            cp = run(["ip", "route"], netns=self.ns_name(name), check=False)
            parts.append(f"--- {name}: ip route\n{cp.stdout}{cp.stderr}")
        for name, node in self.nodes.items():
            if node.ovs is not None and node.ovs.rundir is not None:
                try:
                    parts.append(f"--- {name}: ovs-vsctl show\n{node.vsctl('show')}")
                    parts.append(f"--- {name}: ovs/route/show\n{node.ovs.appctl('ovs/route/show')}")
                except Exception as e:  # noqa: BLE001
                    parts.append(f"--- {name}: ovs: {e}")
        if self.central is not None and self.central.rundir is not None:
            try:
                parts.append(f"--- ovn-sbctl show\n{self.central.sbctl('show')}")
            except Exception as e:  # noqa: BLE001
                parts.append(f"--- sbctl: {e}")
        return "\n".join(parts)

    def timing_report(self) -> str:
        return "lab build: " + ", ".join(f"{k} {v:.1f} s" for k, v in self.timings.items())

    def collect(self, dest: Path) -> None:
        """Copy logs, configs and provisioning output to `dest` (for a post-mortem)."""
        dest = Path(dest)
        for p in self.workdir.rglob("*"):
            if p.is_file() and p.suffix in (".log", ".conf", ".toml", ".txt"):
                target = dest / p.relative_to(self.workdir)
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    shutil.copyfile(p, target)
                except OSError:
                    pass
        for inst in self.frr.values():
            if inst.base is not None:
                for p in inst.vty_dir.glob("*.conf"):
                    target = dest / "frr-running" / inst.name / p.name
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(p, target)

    # --- teardown -------------------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop every daemon and delete every namespace (idempotent; collects errors)."""
        errors: list[str] = []

        def attempt(what: str, fn: Callable[[], object]) -> None:
            try:
                fn()
            except Exception as e:  # noqa: BLE001 - tear down the rest, then report
                errors.append(f"{what}: {e}")

        for node in self.nodes.values():
            attempt(f"ovnbgp {node.name}", node.stop_agent)
            attempt(f"ovn-controller {node.name}", node.stop_controller)
        for name, inst in list(self.frr.items()):
            attempt(f"FRR {name}", inst.stop)
        self.frr.clear()
        for node in self.nodes.values():
            if node.ovs is not None:
                attempt(f"OVS {node.name}", node.ovs.stop)
        if self.central is not None:
            attempt("OVN central", self.central.stop)
        for vm in list(self.vms.values()):
            attempt(f"netns {vm.ns.name}", vm.ns.delete)
        self.vms.clear()
        for ns in list(self.netns.values()):
            attempt(f"netns {ns.name}", ns.delete)
        self.netns.clear()
        if errors:
            raise LabError("lab teardown: " + "; ".join(errors))

    def __enter__(self) -> Lab:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

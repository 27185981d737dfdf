"""One node running the agent, as the vm tests and the agent benchmark build it: the node's
network namespace with its own OVS (netdev br-int and br-ex, and the localnet patch pair
ovn-controller would make), the node's FRR (empty; the agent drives it), and a leaf FRR in a
second namespace as the BGP peer over a veth. The OVN central `ovn` is the caller's: start()
and stop() leave it alone (the benchmark shares one between several nodes); `running()` starts
and stops it with the lab (one central per test module).

    lab = NodeLab(work, ovn, leaf_config=leaf_config(log_level="debugging")).start()
    text = lab.agent_config(debounce=0.1, resync_interval=30)   # the ovnbgp.toml for this node
    lab.start_agent(work / "agent", text)   # lab.agent: first sync done, BGP session up
    lab.ip("rule", "show"); lab.dummy()     # the node's `ip` output; prefixes on its dummy
    lab.stop()                              # the agent (log tail printed), FRRs, OVS, netns
    with NodeLab(work, OvnCentral(work / "ovn")).running() as lab: ...   # central too

Test modules subclass NodeLab to add their own checks.

The agent's files (rt_tables, FRR daemons file, state, lock) go to `agent_config(workdir)`,
`work` by default; nothing is shared with the host's /etc, so several modules can run in one
boot without reading each other's rt_tables names.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ovnbgp.frr.verify import read_dummy_prefixes
from tests.harness.agent import AgentProcess
from tests.harness.frr import FrrInstance, wait_bgp_established
from tests.harness.netns import Netns, unique_name, veth
from tests.harness.ovn import OvnCentral
from tests.harness.ovs import OvsNode

NODE_AS, LEAF_AS = 64999, 65000
NODE_IP, LEAF_IP = "100.66.0.1", "100.66.0.2"
METRICS = "127.0.0.1:9476"
# What the lab and the agent need of the kernel: VRF and dummy devices (the agent), veth (the
# node-leaf link), tun (netdev bridges).
KERNEL_MODULES = ("vrf", "dummy", "veth", "tun")

# The operator snippet the node's FRR gets: test timers only (sessions up in seconds).
SNIPPET = f"""\
router bgp {NODE_AS}
 timers bgp 3 9
 neighbor ovnbgp-leaves timers connect 1
 neighbor ovnbgp-leaves advertisement-interval 0
exit
"""

# (name, localnet port): the patch pair patch-<name>-to-br-int <-> patch-br-int-to-<name>,
# as ovn-controller makes one per localnet port of a bridge-mapped network.
PUBLIC_LOCALNET = ("provnet", "ln-public")


def leaf_config(*, log_level: str = "informational", debug_updates_in: bool = False,
                neighbours: Sequence[str] = (NODE_IP,), ipv6: bool = True) -> str:
    """The leaf's frr.conf: eBGP to each of `neighbours` (nodes in NODE_AS) with test timers,
    the IPv6 family activated too unless ipv6=False. `debug_updates_in` makes bgpd log one
    line per received prefix (announced or withdrawn)."""
    lines = ["frr defaults traditional", "hostname leaf", f"log stdout {log_level}"]
    if debug_updates_in:
        lines.append("debug bgp updates in")
    lines += ["!", f"router bgp {LEAF_AS}", f" bgp router-id {LEAF_IP}",
              " no bgp ebgp-requires-policy", " timers bgp 3 9"]
    for ip in neighbours:
        lines += [f" neighbor {ip} remote-as {NODE_AS}", f" neighbor {ip} timers connect 1",
                  f" neighbor {ip} advertisement-interval 0"]
    if ipv6:
        lines += [" address-family ipv6 unicast",
                  *(f"  neighbor {ip} activate" for ip in neighbours), " exit-address-family"]
    lines.append("!")
    return "\n".join(lines) + "\n"


def _toml_str(value: object) -> str:
    """A TOML basic string (JSON's escapes are valid TOML ones)."""
    return json.dumps(str(value))


@dataclass
class NodeLab:
    """The node and its leaf. Names: namespaces `<netns_prefix><name>-xxxxxx` and
    `<netns_prefix><leaf_name>-xxxxxx`, FRR instances `<name>-xxxxxx`, `<leaf_name>-xxxxxx`.
    `link_prefixlen` is that of the node-leaf link (NODE_IP, LEAF_IP). With `frr_apart` the
    node's FRR runs in a namespace of its own (`frr_ns`): the agent configures it as usual, but
    its zebra sees none of the node's addresses, so nothing reaches the leaf (bench_agent above
    10k exposures, where zebra alone needs hours in User-Mode Linux)."""

    work: Path
    ovn: OvnCentral
    leaf_config: str = field(default_factory=leaf_config)
    name: str = "node"
    leaf_name: str = "leaf"
    netns_prefix: str = "ovnbgp-"
    link_prefixlen: int = 30
    localnets: Sequence[tuple[str, str]] = (PUBLIC_LOCALNET,)
    frr_apart: bool = False
    ns: Netns | None = field(default=None, init=False)
    frr_ns: Netns | None = field(default=None, init=False)
    leaf_ns: Netns | None = field(default=None, init=False)
    ovs: OvsNode | None = field(default=None, init=False)
    frr: FrrInstance | None = field(default=None, init=False)
    leaf: FrrInstance | None = field(default=None, init=False)
    agent: AgentProcess | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.work = Path(self.work)

    def start(self) -> NodeLab:
        """Build everything; on failure, tear down what was built and re-raise."""
        self.work.mkdir(parents=True, exist_ok=True)
        try:
            self.ns = Netns(unique_name(self.netns_prefix + self.name)).create()
            self.leaf_ns = Netns(unique_name(self.netns_prefix + self.leaf_name)).create()
            veth(self.ns, "to-leaf", self.leaf_ns, "to-node")
            self.ns.run("ip", "addr", "add", f"{NODE_IP}/{self.link_prefixlen}", "dev", "to-leaf")
            self.leaf_ns.run("ip", "addr", "add", f"{LEAF_IP}/{self.link_prefixlen}", "dev",
                             "to-node")
            self.leaf = FrrInstance(unique_name(self.leaf_name), self.work / "frr-leaf",
                                    self.leaf_ns)
            self.leaf.start(self.leaf_config)
            self.frr_ns = (Netns(unique_name(self.netns_prefix + self.name + "-frr")).create()
                           if self.frr_apart else self.ns)
            self.frr = FrrInstance(unique_name(self.name), self.work / "frr-node", self.frr_ns)
            self.frr.start("frr defaults traditional\nhostname node\n")
            self.ovs = OvsNode(self.work / "ovs", netns=self.ns.name, datapath_type="netdev")
            self.ovs.start()
            self.ovs.vsctl("set", "open", ".", "external_ids:system-id=ch1",
                           "external_ids:ovn-bridge-mappings=public:br-ex")
            self.ovs.add_bridge("br-int")
            self.ovs.add_bridge("br-ex")
            for name, localnet_port in self.localnets:
                self._patch_pair(name, localnet_port)
            self.ns.run("ip", "link", "set", "br-ex", "up")
        except BaseException:
            self.stop()
            raise
        return self

    @contextmanager
    def running(self) -> Iterator[NodeLab]:
        """The OVN central and the lab started; both stopped on exit (after a failed start
        too)."""
        try:
            self.ovn.start()
            yield self.start()
        finally:
            self.stop()
            self.ovn.stop()

    def _patch_pair(self, name: str, localnet_port: str) -> None:
        out, back = f"patch-{name}-to-br-int", f"patch-br-int-to-{name}"
        self.ovs.vsctl("add-port", "br-ex", out, "--",
                       "set", "Interface", out, "type=patch", f"options:peer={back}", "--",
                       "set", "Port", out, f"external_ids:ovn-localnet-port={localnet_port}", "--",
                       "add-port", "br-int", back, "--",
                       "set", "Interface", back, "type=patch", f"options:peer={out}")

    def bind_provider_vm(self, port: str, addresses: str, chassis: str = "ch1") -> None:
        """In the central: provider network `public` (localnet, network_name=public) with one VM
        port `port` ("MAC IP [IP...]") bound to `chassis`, as the single-node vm tests use."""
        ovn = self.ovn
        ovn.nbctl("ls-add", "public")
        ovn.nbctl("lsp-add", "public", "ln-public", "--", "lsp-set-type", "ln-public", "localnet",
                  "--", "lsp-set-addresses", "ln-public", "unknown", "--",
                  "lsp-set-options", "ln-public", "network_name=public")
        ovn.nbctl("lsp-add", "public", port, "--", "lsp-set-addresses", port, addresses)
        ovn.sbctl("chassis-add", chassis, "geneve", "127.0.0.1")
        ovn.sync()
        ovn.sbctl("lsp-bind", port, chassis)

    def agent_config(self, workdir: Path | None = None, *, steering: str | None = None,
                     debounce: float | None = None, resync_interval: float | None = None,
                     log_level: str = "info", log_format: str | None = None) -> str:
        """The ovnbgp.toml text for this node (writes the snippet file under `work`). The
        agent's files go to `workdir` (default `work`); options left None are not written
        (the agent's defaults apply)."""
        workdir = Path(workdir) if workdir is not None else self.work
        snippet = self.work / "snippet.conf"
        snippet.write_text(SNIPPET)
        kernel = [f"steering = {_toml_str(steering)}"] if steering is not None else []
        agent = [f"debounce = {debounce}"] if debounce is not None else []
        if resync_interval is not None:
            agent.append(f"resync_interval = {resync_interval}")
        log = [f"format = {_toml_str(log_format)}"] if log_format is not None else []
        return "\n".join([
            "",
            "[ovn]",
            f"sb_remotes = [{_toml_str(self.ovn.sb_remote)}]",
            f"ovs_remote = {_toml_str(self.ovs.remote)}",
            "[kernel]",
            *kernel,
            f"rt_tables_file = {_toml_str(workdir / 'rt_tables.conf')}",
            "[bgp]",
            f"asn = {NODE_AS}",
            f"router_id = {_toml_str(NODE_IP)}",
            f"snippet_file = {_toml_str(snippet)}",
            f"peers = [{{ address = {_toml_str(LEAF_IP)}, remote_as = {LEAF_AS} }}]",
            "[frr]",
            f"vty_socket = {_toml_str(self.frr.vty_dir)}",
            f"config_file = {_toml_str(self.frr.config_path)}",
            f"daemons_file = {_toml_str(workdir / 'daemons')}",
            "[agent]",
            f"state_dir = {_toml_str(workdir / 'state')}",
            f"lock_file = {_toml_str(workdir / 'ovnbgp.lock')}",
            f"metrics_listen = {_toml_str(METRICS)}",
            *agent,
            "[log]",
            f"level = {_toml_str(log_level)}",
            *log,
            "",
        ])

    def start_agent(self, workdir: Path, config_text: str, *, timeout: float = 90) -> AgentProcess:
        """`ovnbgp run` in the node's namespace (`self.agent`, stopped by stop()): returns once
        it has synced once and the leaf's session to the node is established."""
        self.agent = AgentProcess(workdir, config_text, netns=self.ns.name)
        self.agent.start(timeout=timeout)
        wait_bgp_established(self.leaf, NODE_IP, timeout=60)
        return self.agent

    def ip(self, *args: str) -> str:
        """`ip ARGS` in the node's namespace (its stdout)."""
        return self.ns.run("ip", *args).stdout

    def dummy(self, name: str = "ovn") -> frozenset[str]:
        """The prefixes on the node's dummy device (the exposures)."""
        return frozenset(str(p) for p in read_dummy_prefixes(name, netns=self.ns.name) or ())

    def stop(self, agent_log_lines: int = 80) -> None:
        """Stop the agent (printing its log's tail), the FRRs and OVS, and delete both
        namespaces; safe to call twice."""
        if self.agent is not None:
            self.agent.stop()
            print("--- agent log tail ---\n" + self.agent.log_tail(agent_log_lines), flush=True)
            self.agent = None
        for attr in ("leaf", "frr", "ovs"):
            thing = getattr(self, attr)
            if thing is None:
                continue
            try:
                thing.stop()
            except Exception as e:  # noqa: BLE001 - keep tearing down
                print(f"teardown of {thing!r}: {e}", flush=True)
            setattr(self, attr, None)
        if self.frr_ns is not None and self.frr_ns is not self.ns:
            self.frr_ns.delete()
        self.frr_ns = None
        for attr in ("ns", "leaf_ns"):
            ns = getattr(self, attr)
            if ns is not None:
                ns.delete()
                setattr(self, attr, None)

"""The node side of the agent benchmark: the node's namespace with its OVS (netdev bridges) and
FRR, a leaf FRR as BGP peer, and a "floor" namespace (its own FRR and OVS) where `ip -batch`
makes the same objects.

    node = NodeSide(work, ovn_central).start()     # empty node: no VRF, dummy, rules
    node.agent_config(steering="rules")            # the ovnbgp.toml text for this node
    node.start_floor(frr_config_text)              # a second node namespace + FRR, peered
    node.stop_floor(); node.stop()

Same topology as tests/vm/test_agent.py (netdev OVS bridges in the node's namespace, the
localnet patch pair ovn-controller would make, leaf over a veth), with the leaf peered to the
floor namespace too, so both measurements pay for the same BGP work.
"""

from __future__ import annotations

from pathlib import Path

from tests.harness.frr import FrrInstance
from tests.harness.netns import Netns, unique_name, veth
from tests.harness.ovs import OvsNode

NODE_AS, LEAF_AS = 64999, 65000
NODE_IP, LEAF_IP = "100.66.0.1", "100.66.0.2"
FLOOR_IP, LEAF_FLOOR_IP = "100.66.0.5", "100.66.0.6"
VRF = "ovn-bgp-vrf"
METRICS = "127.0.0.1:9476"

LEAF_CONFIG = f"""\
frr defaults traditional
hostname leaf
log stdout warnings
!
router bgp {LEAF_AS}
 bgp router-id {LEAF_IP}
 no bgp ebgp-requires-policy
 timers bgp 3 9
 neighbor {NODE_IP} remote-as {NODE_AS}
 neighbor {NODE_IP} timers connect 1
 neighbor {NODE_IP} advertisement-interval 0
 neighbor {FLOOR_IP} remote-as {NODE_AS}
 neighbor {FLOOR_IP} timers connect 1
 neighbor {FLOOR_IP} advertisement-interval 0
!
"""

# The operator snippet both node FRRs get: test timers only (sessions up in seconds).
SNIPPET = f"""\
router bgp {NODE_AS}
 timers bgp 3 9
 neighbor ovnbgp-leaves timers connect 1
 neighbor ovnbgp-leaves advertisement-interval 0
exit
"""


class NodeSide:
    def __init__(self, work: Path, central):
        self.work = Path(work)
        self.central = central
        self.ns: Netns | None = None
        self.leaf_ns: Netns | None = None
        self.floor_ns: Netns | None = None
        self.ovs: OvsNode | None = None
        self.frr: FrrInstance | None = None
        self.leaf: FrrInstance | None = None
        self.floor: FrrInstance | None = None
        self.floor_ovs: OvsNode | None = None

    def start(self) -> "NodeSide":
        self.work.mkdir(parents=True, exist_ok=True)
        try:
            self.ns = Netns(unique_name("bnode")).create()
            self.leaf_ns = Netns(unique_name("bleaf")).create()
            veth(self.ns, "to-leaf", self.leaf_ns, "to-node")
            self.ns.run("ip", "addr", "add", f"{NODE_IP}/30", "dev", "to-leaf")
            self.leaf_ns.run("ip", "addr", "add", f"{LEAF_IP}/30", "dev", "to-node")
            self.leaf = FrrInstance(unique_name("leaf"), self.work / "frr-leaf", self.leaf_ns)
            self.leaf.start(LEAF_CONFIG)
            self.frr = FrrInstance(unique_name("node"), self.work / "frr-node", self.ns)
            self.frr.start("frr defaults traditional\nhostname node\n")
            self.ovs = OvsNode(self.work / "ovs", netns=self.ns.name, datapath_type="netdev")
            self.ovs.start()
            self.ovs.vsctl("set", "open", ".", "external_ids:system-id=ch1",
                           "external_ids:ovn-bridge-mappings=public:br-ex")
            self.ovs.add_bridge("br-int")
            self.ovs.add_bridge("br-ex")
            self.ovs.vsctl("add-port", "br-ex", "patch-provnet-to-br-int", "--",
                           "set", "Interface", "patch-provnet-to-br-int", "type=patch",
                           "options:peer=patch-br-int-to-provnet", "--",
                           "set", "Port", "patch-provnet-to-br-int",
                           "external_ids:ovn-localnet-port=ln-public", "--",
                           "add-port", "br-int", "patch-br-int-to-provnet", "--",
                           "set", "Interface", "patch-br-int-to-provnet", "type=patch",
                           "options:peer=patch-provnet-to-br-int")
            # ovn-controller makes one pair per localnet port; "ext" is on the same physnet.
            self.ovs.vsctl("add-port", "br-ex", "patch-ext-to-br-int", "--",
                           "set", "Interface", "patch-ext-to-br-int", "type=patch",
                           "options:peer=patch-br-int-to-ext", "--",
                           "set", "Port", "patch-ext-to-br-int",
                           "external_ids:ovn-localnet-port=ln-ext", "--",
                           "add-port", "br-int", "patch-br-int-to-ext", "--",
                           "set", "Interface", "patch-br-int-to-ext", "type=patch",
                           "options:peer=patch-ext-to-br-int")
            self.ns.run("ip", "link", "set", "br-ex", "up")
        except BaseException:
            self.stop()
            raise
        return self

    def agent_config(self, workdir: Path, *, steering: str = "rules",
                     resync_interval: float = 3600) -> str:
        snippet = self.work / "snippet.conf"
        snippet.write_text(SNIPPET)
        return f"""
[ovn]
sb_remotes = ["{self.central.sb_remote}"]
ovs_remote = "{self.ovs.remote}"
[kernel]
steering = "{steering}"
rt_tables_file = "{workdir / 'rt_tables.conf'}"
[bgp]
asn = {NODE_AS}
router_id = "{NODE_IP}"
snippet_file = "{snippet}"
peers = [{{ address = "{LEAF_IP}", remote_as = {LEAF_AS} }}]
[frr]
vty_socket = "{self.frr.vty_dir}"
config_file = "{self.frr.config_path}"
daemons_file = "{workdir / 'daemons'}"
[agent]
state_dir = "{workdir / 'state'}"
lock_file = "{workdir / 'ovnbgp.lock'}"
metrics_listen = "{METRICS}"
resync_interval = {resync_interval}
[log]
level = "info"
format = "json"
"""

    # --- the floor's namespace -------------------------------------------------------------------

    def start_floor(self, frr_config: str) -> Netns:
        """A second, empty node namespace whose FRR runs ovnbgp's rendered config with the
        floor's address, peered with the same leaf, and with its own OVS (br-ex a netdev
        bridge, as on the node): ovs-vswitchd follows every route change of its namespace,
        which costs the node about 30% at 10k exposures (measured), so the floor pays it too."""
        self.floor_ns = Netns(unique_name("bfloor")).create()
        veth(self.floor_ns, "to-leaf", self.leaf_ns, "to-floor")
        self.floor_ns.run("ip", "addr", "add", f"{FLOOR_IP}/30", "dev", "to-leaf")
        self.leaf_ns.run("ip", "addr", "add", f"{LEAF_FLOOR_IP}/30", "dev", "to-floor")
        self.floor_ovs = OvsNode(self.work / "ovs-floor", netns=self.floor_ns.name,
                                 datapath_type="netdev").start()
        self.floor_ovs.add_bridge("br-ex")
        self.floor_ns.run("ip", "link", "set", "br-ex", "up")
        self.floor = FrrInstance(unique_name("floor"), self.work / "frr-floor", self.floor_ns)
        self.floor.start(frr_config)
        return self.floor_ns

    def stop_floor(self) -> None:
        if self.floor is not None:
            self.floor.stop()
            self.floor = None
        if self.floor_ovs is not None:
            self.floor_ovs.stop()
            self.floor_ovs = None
        if self.floor_ns is not None:
            self.floor_ns.delete()
            self.floor_ns = None

    def stop(self) -> None:
        self.stop_floor()
        for thing in (self.leaf, self.frr, self.ovs):
            if thing is not None:
                try:
                    thing.stop()
                except Exception as e:  # noqa: BLE001 - keep tearing down
                    print(f"bench: teardown of {thing!r}: {e}", flush=True)
        for ns in (self.ns, self.leaf_ns):
            if ns is not None:
                ns.delete()

"""The node side of the agent benchmark: the node's namespace with its OVS (netdev bridges) and
FRR, a leaf FRR as BGP peer, and a "floor" namespace (its own FRR and OVS) where `ip -batch`
makes the same objects.

    node = NodeSide(work, ovn_central).start()     # empty node: no VRF, dummy, rules
    node.agent_config(workdir, steering="rules")   # the ovnbgp.toml text; agent files in workdir
    node.start_floor(frr_config_text)              # a second node namespace + FRR, peered
    node.stop_floor(); node.stop()

The node and leaf are tests/harness/node_lab.py's NodeLab, as in tests/vm/test_agent.py (netdev
OVS bridges in the node's namespace, the localnet patch pairs ovn-controller would make, leaf
over a veth), with the leaf peered to the floor namespace too, so both measurements pay for
the same BGP work.
"""

from __future__ import annotations

from pathlib import Path

from tests.harness.frr import FrrInstance
from tests.harness.netns import Netns, unique_name, veth
from tests.harness.node_lab import NODE_IP, PUBLIC_LOCALNET, NodeLab, leaf_config
from tests.harness.ovs import OvsNode

FLOOR_IP, LEAF_FLOOR_IP = "100.66.0.5", "100.66.0.6"
VRF = "ovn-bgp-vrf"

# The leaf peers with the node and with the floor (IPv4 only).
LEAF_CONFIG = leaf_config(log_level="warnings", neighbours=(NODE_IP, FLOOR_IP), ipv6=False)
# ovn-controller makes one patch pair per localnet port; "ext" is on the same physnet.
LOCALNETS = (PUBLIC_LOCALNET, ("ext", "ln-ext"))


class NodeSide(NodeLab):
    """NodeLab (namespaces bnode-*/bleaf-*, both patch pairs, a leaf that peers with the floor
    too) plus the floor; the agent config with the benchmark's options (JSON log, no periodic
    resync during the run)."""

    def __init__(self, work: Path, central, extra_localnets: tuple[tuple[str, str], ...] = (),
                 *, frr_apart: bool = False):
        super().__init__(Path(work), central, leaf_config=LEAF_CONFIG, netns_prefix="b",
                         localnets=LOCALNETS + tuple(extra_localnets), frr_apart=frr_apart)
        self.floor_ns: Netns | None = None
        self.floor: FrrInstance | None = None
        self.floor_ovs: OvsNode | None = None

    def agent_config(self, workdir: Path, *, steering: str = "rules",
                     resync_interval: float = 3600) -> str:
        return super().agent_config(workdir, steering=steering, resync_interval=resync_interval,
                                    log_level="info", log_format="json")

    # --- the floor's namespace -------------------------------------------------------------------

    def start_floor(self, frr_config: str | None) -> Netns:
        """A second, empty node namespace whose FRR runs ovnbgp's rendered config with the
        floor's address, peered with the same leaf, and with its own OVS (br-ex a netdev
        bridge, as on the node): ovs-vswitchd follows every route change of its namespace,
        which costs the node about 30% at 10k exposures (measured), so the floor pays it too.
        With `frr_config` None the floor has no FRR (the node's runs apart, `frr_apart`)."""
        self.floor_ns = Netns(unique_name("bfloor")).create()
        veth(self.floor_ns, "to-leaf", self.leaf_ns, "to-floor")
        self.floor_ns.run("ip", "addr", "add", f"{FLOOR_IP}/30", "dev", "to-leaf")
        self.leaf_ns.run("ip", "addr", "add", f"{LEAF_FLOOR_IP}/30", "dev", "to-floor")
        self.floor_ovs = OvsNode(self.work / "ovs-floor", netns=self.floor_ns.name,
                                 datapath_type="netdev").start()
        self.floor_ovs.add_bridge("br-ex")
        self.floor_ns.run("ip", "link", "set", "br-ex", "up")
        if frr_config is None:
            return self.floor_ns
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
        super().stop()

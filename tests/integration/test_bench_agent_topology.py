"""The agent benchmark's direct-Southbound topology (used above 10k, where northd in UML is too
slow): the rows written straight into the SB give the model exactly the exposures the bench
expects, across several provider datapaths, and the spare ports can be bound by uuid."""

from __future__ import annotations

import bench.agent.topology as topology
from bench.agent.ovsdb import OvsdbClient
from ovnbgp.config import Config, OvnConfig
from ovnbgp.model.cache import desired_state
from ovnbgp.ovn.watcher import OvnWatcher
from tests.harness.netns import Netns, unique_name
from tests.harness.ovn import OvnCentral
from tests.harness.ovs import OvsNode


def _patch_pair(ovs: OvsNode, name: str, localnet: str) -> None:
    out, back = f"patch-{name}-to-br-int", f"patch-br-int-to-{name}"
    ovs.vsctl("add-port", "br-ex", out, "--", "set", "Interface", out, "type=patch",
              f"options:peer={back}", "--", "set", "Port", out,
              f"external_ids:ovn-localnet-port={localnet}", "--", "add-port", "br-int", back,
              "--", "set", "Interface", back, "type=patch", f"options:peer={out}")


def test_direct_sb_topology_gives_the_expected_exposures(tmp_path, monkeypatch):
    monkeypatch.setattr(topology, "SB_PORTS_PER_DATAPATH", 80)  # several datapaths at 200
    central = OvnCentral(tmp_path / "ovn").start()
    ns = Netns(unique_name("btopo")).create()
    ovs = None
    try:
        ovs = OvsNode(tmp_path / "ovs", netns=ns.name).start()
        topo = topology.Topology(central, 200, extra=5, routers=3, direct_sb=True).build(timeout=120)
        assert len(topo.extra_localnets) == 2  # 205 ports, 80 tunnel keys per datapath
        ovs.vsctl("set", "open", ".", "external_ids:system-id=ch1",
                  "external_ids:ovn-bridge-mappings=public:br-ex")
        ovs.add_bridge("br-int")
        ovs.add_bridge("br-ex")
        for name, localnet in [("public", "ln-public"), ("ext", "ln-ext"), *topo.extra_localnets]:
            _patch_pair(ovs, name, localnet)
        cfg = Config(ovn=OvnConfig(sb_remotes=(central.sb_remote,), ovs_remote=ovs.remote))
        w = OvnWatcher(cfg)
        w.start(timeout=60)
        try:
            d = desired_state(w.snapshot(), cfg)
        finally:
            w.stop()
        assert {str(e.prefix) for e in d.exposures} == topo.expected
        assert not [p for p in d.problems if p.level == "warning"]
        with OvsdbClient(central.sb_remote) as sb:  # the bench's events bind spares by uuid
            sb.transact(topology.SB, topo.bind_ops(topo.spare[:1]))
    finally:
        if ovs is not None:
            ovs.stop()
        central.stop()
        ns.delete()

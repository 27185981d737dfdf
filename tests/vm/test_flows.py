"""OVS flow reconciler with the kernel datapath (User-Mode Linux): the tests of
tests/integration/test_flows.py run again here; tests/vm/conftest.py makes `ovs_node` use
datapath_type=system with the openvswitch module loaded."""

from tests.integration.test_flows import *  # noqa: F401,F403  (re-run with the kernel datapath)
from tests.integration.test_flows import ours, want


def test_kernel_datapath_bridge_is_used(ovs_node, bridge, rec):
    assert ovs_node.vsctl("get", "Bridge", bridge, "datapath_type").strip() == "system"
    res = rec.reconcile(want(bridge))
    assert res.ok and len(ours(ovs_node, bridge)) == 2

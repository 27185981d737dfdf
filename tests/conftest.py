"""Shared pytest fixtures: the real-component harness (tests/harness) is registered here.

Run pytest from the repository root; `tests` is a package so `tests.harness.*` imports work.
"""

from tests.harness.frr import frr_pair  # noqa: F401  (fixture)
from tests.harness.netns import netns_factory  # noqa: F401  (fixture)
from tests.harness.ovn import ovn_central  # noqa: F401  (fixture)
from tests.harness.ovs import ovs_datapath_type, ovs_netns, ovs_node  # noqa: F401  (fixtures)

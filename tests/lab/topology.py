"""The lab topology, from vagrant/topology.json through vagrant/provision/labtool.py.

labtool.py is the one implementation of the topology rules (addresses, names, MACs, FRR and
ovnbgp configs) for the Vagrant lab and the vm tier; it lives beside the provisioning scripts
(stdlib only, it runs on fresh VMs) and is loaded here by path:

    from tests.lab.topology import labtool, load, VM_TIER_HOSTS
    topo = load(hosts=VM_TIER_HOSTS)
    topo.host("node1").loopback, topo.uplinks("node1")[0].peer_addr4
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VAGRANT_DIR = REPO / "vagrant"
PROVISION_DIR = VAGRANT_DIR / "provision"
TOPOLOGY_FILE = VAGRANT_DIR / "topology.json"


def _load_labtool():
    name = "ovnbgp_lab_labtool"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, PROVISION_DIR / "labtool.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


labtool = _load_labtool()
Topology = labtool.Topology
LinkEnd = labtool.LinkEnd
Host = labtool.Host
TopologyError = labtool.TopologyError

#: The hosts the vm tier builds: spine, both leaves, one node per rack, the outside host
#: (the OVN central runs in the root namespace). Listed in topology.json ("vm_tier").
VM_TIER_HOSTS: tuple[str, ...] = tuple(json.loads(TOPOLOGY_FILE.read_text())["vm_tier"]["hosts"])


def load(path: Path | str | None = None, hosts=None) -> Topology:
    """The topology (default vagrant/topology.json), restricted to `hosts` if given."""
    return labtool.load(path or TOPOLOGY_FILE, hosts)

"""The kernel features ovnbgp relies on, in the User-Mode Linux guest.

A VRF with a dummy enslaved to it, whose addresses become connected routes in the VRF's table
(what FRR's `redistribute connected` in `router bgp ... vrf` advertises), and Open vSwitch on
the kernel datapath with an OpenFlow flow. Each test leaves the guest as it found it: the VRF
lives in its own network namespace, the OVS node removes its datapath on stop.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import pwd
import socket
import sys

import pytest
from pyroute2 import IPRoute

from tests.harness.proc import run

VRF_TABLE = 10


def _routes(ip: IPRoute, family: int, table: int) -> dict[ipaddress._BaseNetwork, dict]:
    """Routes of one table as {destination network: route message} (RTA_TABLE, not the header)."""
    found = {}
    for r in ip.get_routes(family=family, table=table):
        if r.get("table") != table:  # the header's table saturates at 255
            continue
        dst = r.get("dst") or ("0.0.0.0" if family == socket.AF_INET else "::")
        found[ipaddress.ip_network(f"{dst}/{r['dst_len']}")] = r
    return found


def _link(ip: IPRoute, name: str) -> dict:
    links = ip.link("get", ifname=name)
    assert links, f"link {name} not found"
    return links[0]


def test_uml_kernel_has_the_modules(modprobe):
    for mod in ("dummy", "vrf", "veth", "openvswitch"):
        assert modprobe(mod) == mod
    with open("/proc/cpuinfo") as f:
        assert "User Mode Linux" in f.read()


def test_guest_is_prepared_for_the_tests(ipr, vm_out):
    """What tests/vm/init.sh promises: read-only host root, writable scratch, FRR's basics."""
    with pytest.raises(OSError) as exc:
        open("/usr/ovnbgp-vm-write-test", "w")
    assert exc.value.errno == errno.EROFS
    for d in ("/tmp", "/run", "/var/tmp", "/var/log", "/var/lib", "/etc"):
        probe = os.path.join(d, f"ovnbgp-vm-probe-{os.getpid()}")
        with open(probe, "w") as f:
            f.write("x")
        os.unlink(probe)
    (vm_out / "probe").write_text("written in the guest")
    assert (vm_out / "probe").read_text() == "written in the guest"
    (vm_out / "probe").unlink()

    assert socket.gethostname() not in ("", "(none)")
    lo = _link(ipr, "lo")
    assert lo["flags"] & 1, "lo is not up"  # IFF_UP
    frr = pwd.getpwnam("frr")
    assert os.stat("/run/frr").st_uid == frr.pw_uid
    assert os.path.isdir("/var/tmp/frr")
    assert os.path.islink(f"/lib/modules/{os.uname().release}")
    assert sys.dont_write_bytecode
    assert os.environ["HYPOTHESIS_STORAGE_DIRECTORY"].startswith("/tmp/")


def test_vrf_dummy_address_is_connected_route_in_vrf_table(modprobe, netns_factory):
    modprobe("vrf")
    modprobe("dummy")
    modprobe("ipv6")
    ns = netns_factory("vrf")
    with IPRoute(netns=ns.name) as ip:
        ip.link("add", ifname="bgp-vrf", kind="vrf", vrf_table=VRF_TABLE)
        ip.link("add", ifname="ovn", kind="dummy")
        vrf = _link(ip, "bgp-vrf")
        dummy = _link(ip, "ovn")
        ip.link("set", index=dummy["index"], master=vrf["index"])
        ip.link("set", index=vrf["index"], state="up")
        ip.link("set", index=dummy["index"], state="up")
        ip.addr("add", index=dummy["index"], address="192.0.2.10", prefixlen=32)
        ip.addr("add", index=dummy["index"], address="198.51.100.1", prefixlen=24)
        ip.addr("add", index=dummy["index"], address="2001:db8::10", prefixlen=128,
                flags=0x80)  # IFA_F_NODAD: usable at once

        vrf = _link(ip, "bgp-vrf")
        dummy = _link(ip, "ovn")
        linkinfo = vrf.get_attr("IFLA_LINKINFO")
        assert linkinfo.get_attr("IFLA_INFO_KIND") == "vrf"
        assert linkinfo.get_attr("IFLA_INFO_DATA").get_attr("IFLA_VRF_TABLE") == VRF_TABLE
        assert dummy.get_attr("IFLA_MASTER") == vrf["index"]
        assert dummy.get_attr("IFLA_OPERSTATE") != "DOWN"

        v4 = _routes(ip, socket.AF_INET, VRF_TABLE)
        connected = v4.get(ipaddress.ip_network("198.51.100.0/24"))
        assert connected is not None, f"no connected route in table {VRF_TABLE}: {sorted(map(str, v4))}"
        assert connected.get_attr("RTA_OIF") == dummy["index"]
        assert connected["proto"] == 2  # RTPROT_KERNEL
        assert connected["scope"] == 253  # RT_SCOPE_LINK
        # The /32 is a local route of the VRF table (it has no connected subnet of its own).
        local32 = v4.get(ipaddress.ip_network("192.0.2.10/32"))
        assert local32 is not None and local32["type"] == 2  # RTN_LOCAL

        v6 = _routes(ip, socket.AF_INET6, VRF_TABLE)
        assert ipaddress.ip_network("2001:db8::10/128") in v6, sorted(map(str, v6))

        # Nothing of it leaked into the main table.
        main = _routes(ip, socket.AF_INET, 254)
        assert ipaddress.ip_network("198.51.100.0/24") not in main

        # And removing the address withdraws the connected route.
        ip.addr("del", index=dummy["index"], address="198.51.100.1", prefixlen=24)
        assert ipaddress.ip_network("198.51.100.0/24") not in _routes(ip, socket.AF_INET, VRF_TABLE)


@pytest.fixture
def kernel_port(ipr):
    """A dummy interface to plug into OVS, removed afterwards."""
    name = "ovsport0"
    ipr.link("add", ifname=name, kind="dummy")
    ipr.link("set", index=_link(ipr, name)["index"], state="up")
    yield name
    if ipr.link_lookup(ifname=name):
        ipr.link("del", ifname=name)


def test_ovs_bridge_on_kernel_datapath_with_flow(ovs_node, kernel_port, ipr):
    assert ovs_node.datapath_type == "system"
    ovs_node.add_bridge("br-test")
    ovs_node.vsctl("add-port", "br-test", kernel_port)

    assert ovs_node.vsctl("get", "Bridge", "br-test", "datapath_type").strip() == "system"
    assert kernel_port in ovs_node.vsctl("list-ports", "br-test").split()

    # The kernel datapath holds the bridge's internal port and the dummy.
    dp = run(["ovs-dpctl", "show"]).stdout
    assert "system@ovs-system:" in dp, dp
    assert "br-test (internal)" in dp, dp
    assert f": {kernel_port}\n" in dp + "\n", dp
    assert "system@ovs-system" in ovs_node.appctl("dpif/show")
    bridge_link = _link(ipr, "br-test")
    assert bridge_link.get_attr("IFLA_LINKINFO").get_attr("IFLA_INFO_KIND") == "openvswitch"
    assert _link(ipr, kernel_port).get_attr("IFLA_MASTER") == _link(ipr, "ovs-system")["index"]

    # An OpenFlow flow like the agent's (send IP from the OVN side to the host's MAC).
    mac = bridge_link.get_attr("IFLA_ADDRESS")
    ovs_node.ofctl("add-flow", "br-test",
                   f"cookie=0x5eed,priority=900,ip,in_port={kernel_port},"
                   f"actions=mod_dl_dst:{mac},NORMAL")
    flows = ovs_node.ofctl("dump-flows", "br-test", "cookie=0x5eed/-1")
    assert "priority=900,ip,in_port=" in flows, flows
    assert f"actions=mod_dl_dst:{mac},NORMAL" in flows, flows

"""What a real ovn-northd (23.03) copies into the Southbound for a Neutron router interface:
the `external_ids` of both the Logical_Router_Port and its router-type Logical_Switch_Port,
`neutron:` keys included. This is what an address-scope policy (issue 15 item 3,
`neutron:subnet_pool_addr_scope4/6`) would read; the agent does not monitor
Port_Binding.external_ids yet (README, "Which tenant networks are exposed")."""

from __future__ import annotations


def _sb_external_ids(central, port: str) -> set[str]:
    return set(central.sbctl("--bare", "--columns=external_ids", "find", "Port_Binding",
                             f"logical_port={port}").split())


def test_router_interface_external_ids_reach_the_southbound(ovn_central):
    nb = ovn_central.nbctl
    nb("ls-add", "t1")
    nb("lr-add", "r1")
    nb("lrp-add", "r1", "lrp-t1", "fa:16:3e:00:01:01", "10.0.0.1/24")
    nb("set", "Logical_Router_Port", "lrp-t1",
       'external_ids={"neutron:network_name"="neutron-t1","neutron:subnet_pool_addr_scope4"="s-lrp"}')
    nb("lsp-add", "t1", "rp-t1", "--", "lsp-set-type", "rp-t1", "router", "--",
       "lsp-set-addresses", "rp-t1", "router", "--", "lsp-set-options", "rp-t1",
       "router-port=lrp-t1")
    nb("set", "Logical_Switch_Port", "rp-t1",
       'external_ids={"neutron:device_owner"="network:router_interface",'
       '"neutron:subnet_pool_addr_scope4"="s-lsp"}')
    ovn_central.sync()
    assert _sb_external_ids(ovn_central, "lrp-t1") >= {"neutron:network_name=neutron-t1",
                                                        "neutron:subnet_pool_addr_scope4=s-lrp"}
    assert _sb_external_ids(ovn_central, "rp-t1") >= {"neutron:device_owner=network:router_interface",
                                                       "neutron:subnet_pool_addr_scope4=s-lsp"}

"""What a real ovn-northd (23.03) copies into the Southbound for a Neutron router interface:
the `external_ids` of both the Logical_Router_Port and its router-type Logical_Switch_Port,
`neutron:` keys included; and the address-scope policy (`exposure.tenant_address_scopes`,
issue 15 item 3) that reads `neutron:subnet_pool_addr_scope4/6` from them."""

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


def test_address_scope_policy_from_a_real_northd(ovn_central, ovs_node, tmp_path):
    """`exposure.tenant_address_scopes`: the tenant subnet whose router interface switch port
    carries an allowed scope (as Neutron writes it) is exposed, the other one is filtered and
    `ovnbgp explain` says so."""
    import json
    import os
    import subprocess
    import sys

    from tests.integration.test_ovn_model import Env

    env = Env(ovn_central, ovs_node)
    env.setup_ovs()
    env.setup_ovn()
    env.router(gateways=(("ch1", 20),))
    env.tenant("t1")
    env.tenant("t2", mac="fa:16:3e:00:01:02", cidrs=("10.0.2.1/24",))
    ovn_central.nbctl("set", "Logical_Switch_Port", "t1-r1",
                      'external_ids:"neutron:subnet_pool_addr_scope4"="scope-a"')
    env.bind("cr-lrp-r1-gw", "ch1")
    ovn_central.sync()
    cfg = tmp_path / "ovnbgp.toml"
    cfg.write_text("\n".join([
        "[ovn]", f"sb_remotes = [{json.dumps(ovn_central.sb_remote)}]",
        f"ovs_remote = {json.dumps(ovs_node.remote)}",
        "[kernel]", f"rt_tables_file = {json.dumps(str(tmp_path / 'rt_tables.conf'))}",
        "[frr]", f"vty_socket = {json.dumps(str(tmp_path))}",
        "[exposure]", 'tenant_address_scopes = ["scope-a"]', "tenant_ipv6_gua = false", ""]))
    ovnbgp = os.path.join(os.path.dirname(sys.executable), "ovnbgp")

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([ovnbgp, "--config", str(cfg), *args], capture_output=True, text=True,
                              timeout=120, stdin=subprocess.DEVNULL, check=False)

    cp = cli("desired", "--json")
    assert cp.returncode == 0, cp.stderr
    d = json.loads(cp.stdout)
    tenant = {e["prefix"] for e in d["exposures"] if e["kind"] == "tenant-subnet"}
    assert tenant == {"10.0.0.0/26"}, d["exposures"]
    filtered = {p["port"]: p["reason"] for p in d["problems"] if "filtered by policy" in p["reason"]}
    assert filtered["lrp-r1-t2"] == ("tenant subnet 10.0.2.0/24: filtered by policy: 10.0.2.0/24 has "
                                     "no address scope (exposure.tenant_address_scopes is set)")
    cp = cli("explain", "10.0.2.0/24")
    assert cp.returncode == 1 and "filtered by policy" in cp.stdout, cp.stdout + cp.stderr

"""Load balancers (docs/load-balancers.md) against a real ovn-northd 23.03: created with
ovn-nbctl the way Octavia's OVN provider lays them out (NB Load_Balancer named after the
Octavia LB, external_ids neutron:vip / neutron:vip_port_id / neutron:vip_fip / lr_ref /
ls_refs, on the VIP's and the members' switches and on the router), the VIP's Neutron port an
unbound Logical_Switch_Port `ovn-lb-vip-<id>` owned by Octavia.

What northd gives (asserted below, the facts the rules rest on): a Southbound Load_Balancer row
per LB with the vips and only `lb_id` in external_ids (none of Neutron's keys), its switches
in a Logical_DP_Group (no router datapath), and every VIP of the router's LBs in the
nat_addresses of the router's gateway patch port, resident on the cr-lrp.
"""

from __future__ import annotations

import json

from ovnbgp.model.records import ExposureKind
from tests.integration import test_ovn_model
from tests.integration.test_ovn_model import Env

env = test_ovn_model.env  # the fixture: northd, a node, this chassis' watcher
K = ExposureKind
PROV_LB, TEN_LB = "8b0a5c2e-7c55-4d0f-9a51-1f0f2f6b0001", "8b0a5c2e-7c55-4d0f-9a51-1f0f2f6b0002"


def vip_port(env: Env, switch: str, lb: str, name: str, mac: str, ip: str) -> None:
    """The VIP's Neutron port as Octavia creates it: never bound to a chassis."""
    env.central.nbctl(
        "lsp-add", switch, name, "--", "lsp-set-addresses", name, f"{mac} {ip}",
        "--", "set", "Logical_Switch_Port", name, "external_ids:neutron\\:device_owner=Octavia",
        f"external_ids:neutron\\:port_name=ovn-lb-vip-{lb}")


def octavia_lb(env: Env, lb: str, vips: dict[str, str], vip: str, vip_port_id: str,
               switches: tuple[str, ...], router: str = "r1", fip: str | None = None) -> None:
    nb = env.central.nbctl
    first, *rest = vips.items()
    nb("lb-add", lb, first[0], first[1], "tcp")
    for key, backends in rest:
        nb("lb-add", lb, key, backends, "tcp")
    refs = json.dumps({f"neutron-{s}": 1 for s in switches})
    ids = [f"external_ids:neutron\\:vip={vip}", f"external_ids:neutron\\:vip_port_id={vip_port_id}",
           f"external_ids:lr_ref=neutron-{router}", f"external_ids:ls_refs={json.dumps(refs)}"]
    if fip:
        ids.append(f"external_ids:neutron\\:vip_fip={fip}")
    nb("set", "Load_Balancer", lb, *ids)
    for s in switches:
        nb("ls-lb-add", s, lb)
    nb("lr-lb-add", router, lb)


def world(env: Env) -> None:
    """r1 (gateway ch1 > ch2) with tenant t1 and a member tvm1; a provider-VIP LB and a
    tenant-VIP LB whose VIP has a floating IP (a NAT on the router and a VIP in the LB)."""
    env.router(cidrs=("172.24.4.146/24",))
    env.tenant("t1", cidrs=("10.0.0.1/26",))
    env.vm("t1", "tvm1", "fa:16:3e:00:02:01 10.0.0.10")
    env.vm("t1", "tvm2", "fa:16:3e:00:02:02 10.0.0.11")
    vip_port(env, "public", PROV_LB, "vip-prov", "fa:16:3e:00:09:01", "172.24.4.50")
    octavia_lb(env, PROV_LB, {"172.24.4.50:80": "10.0.0.10:8080,10.0.0.11:8080"}, "172.24.4.50",
               "vip-prov", ("public", "t1"))
    vip_port(env, "t1", TEN_LB, "vip-ten", "fa:16:3e:00:09:02", "10.0.0.50")
    octavia_lb(env, TEN_LB, {"10.0.0.50:80": "10.0.0.10:8080", "172.24.4.60:80": "10.0.0.10:8080"},
               "10.0.0.50", "vip-ten", ("t1",), fip="172.24.4.60")
    env.central.nbctl("lr-nat-add", "r1", "dnat_and_snat", "172.24.4.60", "10.0.0.50")
    env.bind("tvm1", "ch2")
    env.bind("tvm2", "ch2")


def lb_exposed(env: Env) -> dict[str, tuple]:
    return {p: v for p, v in env.exposed().items() if v[0] in (K.LB_VIP, K.FIP)}


def sb_lb_uuid(env: Env, name: str) -> str:
    return env.central.sbctl("--bare", "--columns=_uuid", "find", "Load_Balancer", f"name={name}").strip()


def test_what_northd_writes_for_octavia_lbs(env):
    world(env)
    env.central.sync()
    sb = env.central.sbctl
    ids = sb("--bare", "--columns=external_ids", "find", "Load_Balancer", f"name={PROV_LB}")
    assert ids.startswith("lb_id=") and "neutron" not in ids
    assert sb("--bare", "--columns=datapaths", "find", "Load_Balancer", f"name={PROV_LB}").strip() == ""
    group = sb("--bare", "--columns=datapath_group", "find", "Load_Balancer", f"name={PROV_LB}").strip()
    dps = sb("--bare", "--columns=datapaths", "list", "Logical_DP_Group", group).split()
    names = {sb("get", "Datapath_Binding", d, "external_ids:name").strip().strip('"') for d in dps}
    assert names == {"public", "t1"}  # switches only: the router is not among them
    nat = sb("--bare", "--columns=nat_addresses", "find", "Port_Binding", "logical_port=gw-r1")
    for vip in ("172.24.4.50", "172.24.4.60", "10.0.0.50"):
        assert vip in nat, nat
    chassis = sb("--bare", "--columns=chassis,type", "find", "Port_Binding", "logical_port=vip-prov")
    assert chassis.split() == [], chassis  # type "" and no chassis: the VIP port is never bound


def test_vips_follow_the_gateway_and_go_with_the_lb_or_its_members(env):
    world(env)
    env.start()
    assert lb_exposed(env) == {}  # the cr-lrp is not bound yet
    env.bind("cr-lrp-r1-gw", "ch1")
    assert lb_exposed(env) == {"172.24.4.50/32": (K.LB_VIP, "br-ex", "cr-lrp-r1-gw"),
                               "172.24.4.60/32": (K.LB_VIP, "br-ex", "cr-lrp-r1-gw")}
    rows = {str(e.prefix): e.row for e in env.state().exposures}
    assert rows["172.24.4.50/32"] == sb_lb_uuid(env, PROV_LB)
    assert "10.0.0.50/32" not in env.exposed()  # a tenant VIP is not a host route

    env.bind("cr-lrp-r1-gw", "ch2")  # failover: ch2's agent takes them
    assert lb_exposed(env) == {}
    env.bind("cr-lrp-r1-gw", "ch1")
    assert set(lb_exposed(env)) == {"172.24.4.50/32", "172.24.4.60/32"}

    # the last member goes (Octavia rewrites the vips): withdrawn, the LB waits for members
    nb = env.central.nbctl
    nb("set", "Load_Balancer", PROV_LB, 'vips={"172.24.4.50:80"=""}')
    assert set(lb_exposed(env)) == {"172.24.4.60/32"}
    assert env.state().waiting_counts() == {"lb-members": 1}
    nb("set", "Load_Balancer", PROV_LB, 'vips={"172.24.4.50:80"="10.0.0.11:8080"}')
    assert set(lb_exposed(env)) == {"172.24.4.50/32", "172.24.4.60/32"}

    # the LBs deleted (with the tenant VIP's port, Neutron drops its FIP's NAT)
    nb("lb-del", PROV_LB)
    assert set(lb_exposed(env)) == {"172.24.4.60/32"}
    nb("lr-nat-del", "r1", "dnat_and_snat", "172.24.4.60", "--", "lb-del", TEN_LB, "--", "lsp-del", "vip-ten")
    assert lb_exposed(env) == {}
    assert set(env.exposed()) == {"172.24.4.146/32", "10.0.0.0/26", "10.0.0.10/32", "10.0.0.11/32"}


def test_malformed_vips_are_skipped_with_the_row_uuid(env, caplog):
    """northd copies the NB vips into the Southbound as they are: an entry ovnbgp cannot parse
    is skipped with a warning naming the Load_Balancer row."""
    world(env)
    env.bind("cr-lrp-r1-gw", "ch1")
    env.start()
    env.central.nbctl("set", "Load_Balancer", PROV_LB,
                      'vips={"172.24.4.50:80"="10.0.0.10:8080,bogus", "not-an-ip:80"="10.0.0.10:80"}')
    state = env.state()
    uuid = sb_lb_uuid(env, PROV_LB)
    reasons = sorted(p.reason for p in state.problems if p.row == uuid)
    assert len(reasons) == 2 and "bogus" in reasons[0] and "not-an-ip" in reasons[1], reasons
    # northd itself gives up on that LB: its VIP leaves the gateway's nat_addresses (OVN no
    # longer delivers it), so it is withdrawn, with a warning naming the row
    nat = env.central.sbctl("--bare", "--columns=nat_addresses", "find", "Port_Binding", "logical_port=gw-r1")
    assert "172.24.4.50" not in nat and "172.24.4.60" in nat
    assert set(lb_exposed(env)) == {"172.24.4.60/32"}
    assert any("withdrawn 172.24.4.50/32" in r.message and f"Load_Balancer {uuid}" in r.message
               for r in caplog.records), caplog.text

"""model/why.py: the model's own answer for one address, one test per reason explain names."""

from __future__ import annotations

import ipaddress

from ovnbgp.config import Config, ExposureConfig
from ovnbgp.model.records import ExposureKind
from ovnbgp.model.why import FLOATING_IP, GATEWAY, ROUTER_INTERFACE, VM_PORT, account, parse_target
from tests.unit.sb_builder import SbBuilder, resident, uid

GW_MAC = "fa:16:3e:aa:00:01"


def world(gw_chassis: str | None = "ch1") -> SbBuilder:
    b = SbBuilder()
    pub = b.provider_network("public")
    r1 = b.router("r1", pub, GW_MAC, "172.24.4.146/24", chassis=gw_chassis)
    b.router_interface("r1", r1, b.tenant_network("t1"), "t1", "fa:16:3e:00:01:01", "10.0.0.1/26")
    return b


def ask(b: SbBuilder, text: str, cfg: Config | None = None):
    return account(b.snapshot(), cfg or Config(), parse_target(text))


def only(acc, role: str):
    rows = [r for r in acc.rows if r.role == role]
    assert len(rows) == 1, acc.rows
    return rows[0]


def test_exposed_provider_vm_names_its_row():
    b = world()
    b.vm("vm1", b.provider_network("public"), "fa:16:3e:00:00:01 172.24.4.10", chassis="ch1")
    acc = ask(b, "172.24.4.10")
    assert acc.exposed and [e.kind for e in acc.exposures] == [ExposureKind.PROVIDER_VM]
    r = only(acc, VM_PORT)
    assert r.row == uid("pb:vm1") and r.exposed and r.reasons == ()


def test_not_bound_here_names_the_chassis():
    b = world()
    b.vm("vm1", b.provider_network("public"), "fa:16:3e:00:00:01 172.24.4.10", chassis="ch2")
    acc = ask(b, "172.24.4.10")
    assert not acc.exposed
    assert only(acc, VM_PORT).reasons == ("port vm1 is bound to chassis ch2, not here (ch1)",)


def test_unbound_port():
    b = world()
    b.vm("vm1", b.provider_network("public"), "fa:16:3e:00:00:01 172.24.4.10", chassis=None)
    assert only(ask(b, "172.24.4.10"), VM_PORT).reasons == ("port vm1 is not bound to any chassis",)


def test_bound_here_waiting_for_up():
    b = world()
    b.vm("vm1", b.provider_network("public"), "fa:16:3e:00:00:01 172.24.4.10", chassis="ch1", up=False)
    r = only(ask(b, "172.24.4.10"), VM_PORT)
    assert r.waiting == "port-up"
    assert r.reasons == ("port vm1 is bound here but ovn-controller has not wired it yet "
                         "(waiting for up=true)",)


def test_network_not_mapped_to_a_local_bridge():
    b = world()
    other = b.provider_network("datacentre", physnet="datacentre")
    b.vm("vm1", other, "fa:16:3e:00:00:01 192.0.2.10", chassis="ch1")
    (reason,) = only(ask(b, "192.0.2.10"), VM_PORT).reasons
    assert reason.startswith("provider network datacentre (localnet ln-datacentre, Port_Binding "
                             f"{uid('pb:ln-datacentre')}) is not mapped to a local bridge")
    assert "ovn-bridge-mappings here: public:br-ex" in reason


def test_router_gateway_on_another_chassis_for_the_gateway_the_subnet_and_a_tenant_vm():
    b = world(gw_chassis="ch2")
    b.vm("tvm1", b.tenant_network("t1"), "fa:16:3e:00:02:01 10.0.0.5", chassis="ch1")
    elsewhere = (f"router gateway cr-lrp-r1-gw is bound to chassis ch2, not here (ch1) "
                 f"(Port_Binding {uid('pb:cr-lrp-r1-gw')}): its tenant networks are exposed by "
                 "that chassis")
    assert only(ask(b, "10.0.0.5"), VM_PORT).reasons == (elsewhere,)
    acc = ask(b, "10.0.0.0/26")
    assert only(acc, ROUTER_INTERFACE).reasons == (elsewhere,)
    assert only(ask(b, "172.24.4.146"), GATEWAY).reasons == (
        "router gateway cr-lrp-r1-gw is bound to chassis ch2, not here (ch1)",)


def test_filtered_by_policy_for_the_subnet_and_its_vm():
    b = world()
    b.vm("tvm1", b.tenant_network("t1"), "fa:16:3e:00:02:01 10.0.0.5", chassis="ch2")
    cfg = Config(exposure=ExposureConfig(tenant_prefixes=(ipaddress.ip_network("100.64.0.0/10"),)))
    why = ("filtered by policy: 10.0.0.0/26 is not inside exposure.tenant_prefixes (100.64.0.0/10)")
    r = only(ask(b, "10.0.0.0/26", cfg), ROUTER_INTERFACE)
    assert r.row == uid("pb:lrp-r1-t1") and r.reasons == (f"tenant subnet 10.0.0.0/26: {why}",)
    assert only(ask(b, "10.0.0.5", cfg), VM_PORT).reasons == (why,)
    assert ask(b, "10.0.0.5").exposed  # the default policy exposes it


def test_malformed_row_names_the_problem_and_the_row():
    b = world()
    b.vm("vm1", b.provider_network("public"), "zz:16:3e:00:00:01 172.24.4.10", chassis="ch1")
    acc = ask(b, "172.24.4.10")
    r = only(acc, VM_PORT)
    assert not acc.exposed and r.row == uid("pb:vm1")
    assert len(r.reasons) == 1 and r.reasons[0].startswith("mac: ") and "zz:16:3e" in r.reasons[0]


def test_floating_ip_follows_its_vm_and_the_gateway():
    b = world()
    pub = b.provider_network("public")
    b.vm("vm1", b.tenant_network("t1"), "fa:16:3e:00:02:01 10.0.0.5", chassis="ch2")
    b.set_nat("r1", f"fa:16:3e:00:02:01 172.24.4.50 {resident('vm1')}")
    r = only(ask(b, "172.24.4.50"), FLOATING_IP)
    assert r.reasons == ("port vm1 is bound to chassis ch2, not here (ch1): the floating IP goes "
                         "where vm1 is",)
    b.vm("vm1", b.tenant_network("t1"), "fa:16:3e:00:02:01 10.0.0.5", chassis="ch1")
    acc = ask(b, "172.24.4.50")
    assert acc.exposed and only(acc, FLOATING_IP).exposed
    assert pub  # the gateway switch carries the entry


def test_an_address_nothing_mentions():
    acc = ask(world(), "198.51.100.7")
    assert not acc.exposed and acc.rows == ()

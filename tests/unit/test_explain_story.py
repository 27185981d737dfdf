"""agent/explain.py's pure parts and the text of commands/explain.py, on hand-built snapshots."""

from __future__ import annotations

import ipaddress

from ovnbgp.agent.explain import Fact, Story, wanted_objects
from ovnbgp.commands.explain import format_text
from ovnbgp.config import Config, KernelConfig
from ovnbgp.model.why import account, parse_target
from tests.unit.sb_builder import SbBuilder, uid


def world() -> SbBuilder:
    b = SbBuilder()
    pub = b.provider_network("public")
    r1 = b.router("r1", pub, "fa:16:3e:aa:00:01", "172.24.4.146/24", chassis="ch1")
    b.router_interface("r1", r1, b.tenant_network("t1"), "t1", "fa:16:3e:00:01:01", "10.0.0.1/26")
    b.vm("vm1", pub, "fa:16:3e:00:00:01 172.24.4.10", chassis="ch1")
    return b


def story(text: str, cfg: Config | None = None) -> Story:
    return Story(account(world().snapshot(), cfg or Config(), parse_target(text)))


def test_wanted_objects_of_a_provider_vm_in_rules_steering():
    s = story("172.24.4.10")
    rules, routes, neighbours = wanted_objects(s.account.state, s.account.exposures)
    assert [str(r.dst) for r in rules] == ["172.24.4.10/32"]
    assert [(str(r.dst), r.dev, r.table) for r in routes] == [("0.0.0.0/0", "br-ex", 200)]
    assert neighbours == []


def test_wanted_objects_of_a_tenant_subnet_route_via_the_gateway_and_its_neighbour():
    s = story("10.0.0.0/26")
    _, routes, neighbours = wanted_objects(s.account.state, s.account.exposures)
    assert ("10.0.0.0/26", "172.24.4.146") in {(str(r.dst), str(r.gateway)) for r in routes}
    assert [(str(n.ip), n.mac) for n in neighbours] == [("172.24.4.146", "fa:16:3e:aa:00:01")]


def test_wanted_objects_in_table_steering_are_the_bridge_rules_and_the_host_route():
    cfg = Config(kernel=KernelConfig(steering="table"))
    s = story("172.24.4.10", cfg)
    rules, routes, _ = wanted_objects(s.account.state, s.account.exposures)
    assert [(r.dst, r.table, r.family) for r in rules] == [(None, 200, 4)]
    assert [str(r.dst) for r in routes] == ["172.24.4.10/32"]


def test_exit_codes():
    s = story("172.24.4.10")
    assert s.exit_code == 1  # nothing from FRR yet: not proven advertised
    s.kernel = [Fact("address", True)]
    s.frr = [Fact("advertised to leaf", True)]
    assert s.exit_code == 0
    s.frr.append(Fact("advertised to leaf2", False))
    assert s.exit_code == 1
    s.frr.pop()
    s.kernel.append(Fact("address 172.24.4.99/32 on the dummy", True, wanted=False))
    assert s.exit_code == 1  # a leftover is not ok
    s.kernel.pop()
    s.errors.append("FRR: cannot read")
    assert s.exit_code == 3  # exposed but the chain cannot be proven
    n = story("198.51.100.1")
    n.errors.append("FRR: cannot read")
    assert n.exit_code == 1  # not exposed whatever FRR says


def test_text_names_rows_reasons_and_marks():
    b = world()
    b.vm("vm2", b.provider_network("public"), "fa:16:3e:00:00:02 172.24.4.11", chassis="ch2")
    s = Story(account(b.snapshot(), Config(), parse_target("172.24.4.11")))
    s.frr = [Fact("172.24.4.11/32 advertised to leaf", False, wanted=False)]
    text = format_text(s)
    assert text.splitlines()[0] == "172.24.4.11/32 on chassis ch1: NOT EXPOSED"
    assert f"  VM port vm2 (Port_Binding {uid('pb:vm2')}): not exposed" in text
    assert "    - port vm2 is bound to chassis ch2, not here (ch1)" in text
    assert "  no       172.24.4.11/32 advertised to leaf" in text
    d = s.to_dict()
    assert d["exit"] == 1 and d["southbound"][0]["port_binding"] == uid("pb:vm2")
    assert ipaddress.ip_network(d["address"]) == ipaddress.ip_network("172.24.4.11/32")

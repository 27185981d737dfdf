"""Settings and input validation of the kernel reconciler (pure)."""

import ipaddress

import pytest

from ovnbgp import config
from ovnbgp.kernel.settings import KernelInputError, KernelSettings, validate
from ovnbgp.model.records import BridgeSetup, DesiredState, Exposure, ExposureKind, Neighbour, Route, Rule

N = ipaddress.ip_network
A = ipaddress.ip_address
I = ipaddress.ip_interface
S = KernelSettings(rt_tables_file="/nonexistent/rt_tables")  # type: ignore[arg-type]


def br(name="br-ex", table=200):
    return BridgeSetup(name, table, (I("1.1.1.1/32"),))


def test_config_default_protocol_is_not_frrs():
    assert config.KernelConfig().route_protocol not in config.FRR_ROUTE_PROTOCOLS


@pytest.mark.parametrize("proto", [196, 186, 11])
def test_config_rejects_frr_protocols(proto):
    with pytest.raises(config.ConfigError) as e:
        config.parse({"kernel": {"route_protocol": proto}})
    assert e.value.key == "kernel.route_protocol"


def test_settings_from_config():
    cfg = config.parse({"kernel": {"vrf_name": "v1", "vrf_table": 7, "route_protocol": 77}})
    s = KernelSettings.from_config(cfg)
    assert (s.vrf_name, s.vrf_table, s.route_protocol) == ("v1", 7, 77)
    s.check()


@pytest.mark.parametrize("kw,word", [({"vrf_name": "bad name"}, "vrf_name"),
                                     ({"vrf_table": 254}, "vrf_table"),
                                     ({"route_protocol": 196}, "route_protocol")])
def test_settings_check_names_the_key(kw, word):
    with pytest.raises(KernelInputError, match=word):
        KernelSettings(**kw).check()


def test_valid_state_passes():
    d = DesiredState(
        exposures=frozenset({Exposure(N("172.24.4.10/32"), ExposureKind.PROVIDER_VM, "br-ex", "vm1", "u1")}),
        rules=frozenset({Rule(32000, 200, N("172.24.4.10/32"), 4)}),
        routes=frozenset({Route(200, N("0.0.0.0/0"), "br-ex", None, True)}),
        neighbours=frozenset({Neighbour("br-ex", A("172.24.4.146"), "fa:16:3e:00:00:01")}),
        bridges=frozenset({br()}))
    validate(d, S)


@pytest.mark.parametrize("state,needle", [
    (DesiredState(bridges=frozenset({br(name="br ex")})), "'br ex'"),
    (DesiredState(bridges=frozenset({br(name="x" * 16)})), "x" * 16),
    (DesiredState(bridges=frozenset({br(table=0)})), "table id 0"),
    (DesiredState(bridges=frozenset({br(table=254)})), "table id 254"),
    (DesiredState(bridges=frozenset({br(table=10)})), "VRF's table"),
    (DesiredState(bridges=frozenset({br(), br(name="br-2")})), "already belongs"),
    (DesiredState(rules=frozenset({Rule(32000, 200, N("2001:db8::1/128"), 4)})), "2001:db8::1/128"),
    (DesiredState(rules=frozenset({Rule(32000, 255, None, 4)})), "255"),
    (DesiredState(routes=frozenset({Route(200, N("10.0.0.0/24"), "br-ex", A("2001:db8::1"))})), "gateway"),
    (DesiredState(routes=frozenset({Route(200, N("10.0.0.0/24"), "br/ex")})), "br/ex"),
    (DesiredState(routes=frozenset({Route(200, N("10.0.0.0/24"), "br-ex"),
                                    Route(200, N("10.0.0.0/24"), "br-ex", A("10.1.1.1"))})), "two different"),
    (DesiredState(neighbours=frozenset({Neighbour("br-ex", A("10.0.0.1"), "FA:16:3E:00:00:01")})), "MAC"),
    (DesiredState(neighbours=frozenset({Neighbour("br-ex", "10.0.0.1", "fa:16:3e:00:00:01")})), "10.0.0.1"),  # type: ignore[arg-type]
    (DesiredState(bridges=frozenset({br()}), exposures=frozenset({
        Exposure(N("10.0.0.5/32"), ExposureKind.FIP, "br-nope", "p", "u")})), "br-nope"),
])
def test_invalid_input_is_named(state, needle):
    with pytest.raises(KernelInputError) as e:
        validate(state, S)
    assert needle in str(e.value)


def test_all_problems_are_listed():
    d = DesiredState(bridges=frozenset({br(name="a b"), br(name="c d", table=201)}))
    with pytest.raises(KernelInputError) as e:
        validate(d, S)
    assert len(e.value.problems) == 2

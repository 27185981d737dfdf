"""Interface names and MACs are checked whole (fullmatch) in every layer: a trailing newline
or space must never pass (with `re.match` and a `$` anchor, "br-ex\\n" did)."""

import ipaddress

import pytest

from ovnbgp import config
from ovnbgp.config import IFNAME_RE, MAC_RE, ConfigError
from ovnbgp.kernel.settings import KernelInputError, KernelSettings, valid_ifname, validate
from ovnbgp.model.parse import ParseError, parse_mac
from ovnbgp.model.records import BridgeInfo, DesiredState, FlowSpec, LocalOvs, Neighbour
from ovnbgp.model.topology import Bridges
from ovnbgp.ovs.flows import FlowInputError
from ovnbgp.ovs.flows import validate as validate_flows

BAD_NAMES = ["br-ex\n", "br-ex ", " br-ex", "br-ex\t"]
MAC = "fa:16:3e:00:00:01"


@pytest.mark.parametrize("name", BAD_NAMES)
def test_config_rejects(name):
    toml_name = name.replace("\n", "\\n").replace("\t", "\\t")
    with pytest.raises(ConfigError, match="kernel.dummy_name"):
        config.loads(f'[kernel]\ndummy_name = "{toml_name}"\n')
    with pytest.raises(ConfigError, match="kernel.bridge_tables"):
        config.loads(f'[kernel.bridge_tables]\n"{toml_name}" = 200\n')


@pytest.mark.parametrize("name", BAD_NAMES)
def test_model_rejects_bridge_mapping(name):
    local = LocalOvs(system_id="ch1", bridge_mappings={"public": name},
                     bridges={name: BridgeInfo(name, MAC, {"patch-p": 1})})
    b = Bridges(local, config.Config())
    assert b.tables == {}
    assert b.physnet_bridge == {}


@pytest.mark.parametrize("name", BAD_NAMES)
def test_kernel_settings_reject(name):
    assert not valid_ifname(name)
    with pytest.raises(KernelInputError, match="dummy_name"):
        KernelSettings(dummy_name=name).check()
    with pytest.raises(KernelInputError):
        validate(DesiredState(neighbours=frozenset({Neighbour(name, ipaddress.ip_address("10.0.0.1"), MAC)})),
                 KernelSettings())


@pytest.mark.parametrize("name", BAD_NAMES)
def test_flows_reject(name):
    with pytest.raises(FlowInputError):
        validate_flows([FlowSpec(name, "patch-p", MAC)])
    with pytest.raises(FlowInputError):
        validate_flows([FlowSpec("br-ex", name, MAC)])


@pytest.mark.parametrize("mac", [MAC + "\n", MAC + " ", "fa:16:3e:00:00:0"])
def test_macs_checked_whole(mac):
    assert not MAC_RE.fullmatch(mac)
    with pytest.raises(ParseError):
        parse_mac(mac)
    with pytest.raises(FlowInputError):
        validate_flows([FlowSpec("br-ex", "patch-p", mac)])
    with pytest.raises(KernelInputError):
        validate(DesiredState(neighbours=frozenset({Neighbour("br-ex", ipaddress.ip_address("10.0.0.1"), mac)})),
                 KernelSettings())


def test_good_names_pass():
    assert IFNAME_RE.fullmatch("br-ex") and valid_ifname("br-ex")
    assert parse_mac(MAC.upper()) == MAC
    validate_flows([FlowSpec("br-ex", "patch-p", MAC)])


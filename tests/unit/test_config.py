"""Config validation: defaults from the reference design, and every bad value named by key.

The property tests feed random TOML-able values to every key and check the only outcomes are
a valid Config or a ConfigError whose message names that key -- never another exception.
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
import json
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ovnbgp import config
from ovnbgp.config import ConfigError

SECTIONS = {
    "ovn": config.OvnConfig,
    "kernel": config.KernelConfig,
    "bgp": config.BgpConfig,
    "frr": config.FrrConfig,
    "agent": config.AgentConfig,
    "log": config.LogConfig,
}
ALL_KEYS = sorted((s, f.name) for s, cls in SECTIONS.items() for f in dataclasses.fields(cls))

# --- strategies ------------------------------------------------------------------------------

toml_scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.datetimes(), st.dates(), st.times(),
    # strings shaped like the valid ones, so the checks past the type test get exercised
    st.sampled_from(["", "ovn", "ovn\n", "br-ex", "x" * 16, "1.1.1.1/32", "fd53::1/128",
                     "1.2.3.4", "::1", "fe80::1%eth0", "unix:/tmp/x", "unix:/a b",
                     "tcp:127.0.0.1:6642", "ssl:[::1]:6642", "tcp:h:99999", "/abs/path",
                     "relative/path", "127.0.0.1:9476", "[::1]:0", "external", "internal",
                     "info", "json", "rules", "table", "default", "/x\x00y", "ovn-bgp-vrf"]),
)
toml_values = st.recursive(
    toml_scalars,
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.text(max_size=12), children, max_size=4)),
    max_leaves=12,
)


def _assert_names(err: ConfigError, key: str) -> None:
    assert key in str(err), f"ConfigError does not name {key!r}: {err}"


# --- defaults --------------------------------------------------------------------------------


def test_empty_config_gives_reference_design_defaults():
    cfg = config.loads("")
    assert cfg == config.Config()
    assert cfg.kernel.vrf_name == "ovn-bgp-vrf"
    assert cfg.kernel.dummy_name == "ovn"
    assert cfg.kernel.rule_priority == 32000
    assert cfg.kernel.first_bridge_table == 200
    assert cfg.kernel.bridge_ipv4 == ipaddress.IPv4Interface("1.1.1.1/32")
    assert cfg.kernel.bridge_ipv6 == ipaddress.IPv6Interface("fd53:d91e:400:7f17::1/128")
    assert cfg.kernel.vrf_table == 10
    assert cfg.kernel.steering == "rules"
    assert cfg.bgp.asn == 64999
    assert cfg.bgp.peers == ()
    assert cfg.ovn.sb_remotes == ("unix:/var/run/ovn/ovnsb_db.sock",)
    assert cfg.ovn.ovs_remote == "unix:/var/run/openvswitch/db.sock"
    assert cfg.frr.reload == Path("/usr/lib/frr/frr-reload.py")
    assert cfg.log.level == "info"


def test_missing_file(tmp_path):
    assert config.load(tmp_path / "nope.toml", missing_ok=True) == config.Config()
    with pytest.raises(ConfigError) as e:
        config.load(tmp_path / "nope.toml")
    assert e.value.key == "(file)" and "nope.toml" in str(e.value)


def test_full_valid_config(tmp_path):
    p = tmp_path / "ovnbgp.toml"
    p.write_text("""
[ovn]
sb_remotes = ["ssl:192.0.2.10:6642", "ssl:[2001:db8::10]:6642"]
ssl_key = "/etc/ovnbgp/key.pem"
ssl_cert = "/etc/ovnbgp/cert.pem"
ssl_ca = "/etc/ovnbgp/ca.pem"
wait_for_port_up = false

[kernel]
bridge_tables = { br-ex = 200, "br-vlan.10" = 201 }
bridge_ipv4 = "1.1.1.2/32"

[bgp]
asn = 4200000001
router_id = "192.0.2.1"
peers = [{ interface = "eth1" }, { address = "192.0.2.254", remote_as = 65000 }]
maximum_paths = 8

[agent]
resync_interval = 60
metrics_listen = ""
""")
    cfg = config.load(p)
    assert cfg.ovn.ssl_key == Path("/etc/ovnbgp/key.pem")
    assert cfg.kernel.bridge_tables == {"br-ex": 200, "br-vlan.10": 201}
    assert cfg.bgp.asn == 4200000001
    assert cfg.bgp.router_id == ipaddress.IPv4Address("192.0.2.1")
    assert cfg.bgp.peers == (config.Peer(interface="eth1"),
                             config.Peer(address=ipaddress.IPv4Address("192.0.2.254"),
                                         remote_as=65000))
    assert cfg.agent.resync_interval == 60.0 and isinstance(cfg.agent.resync_interval, float)


# --- specific errors -------------------------------------------------------------------------


@pytest.mark.parametrize("text,key", [
    ("[bgp]\nasm = 65000\n", "bgp.asm"),                    # typo'd key
    ("[kernal]\nvrf_name = 'x'\n", "kernal"),               # typo'd section
    ("[bgp]\nasn = 0\n", "bgp.asn"),
    ("[bgp]\nasn = 4294967296\n", "bgp.asn"),
    ("[bgp]\nasn = -1\n", "bgp.asn"),
    ("[bgp]\nasn = '65000'\n", "bgp.asn"),
    ("[bgp]\nasn = true\n", "bgp.asn"),
    ("[bgp]\nasn = 65000.0\n", "bgp.asn"),
    ("[bgp]\npeers = [{ address = '192.0.2.1' }]\n", "bgp.peers[0].remote_as"),
    ("[bgp]\npeers = [{ interface = 'eth1', address = '192.0.2.1' }]\n", "bgp.peers[0]"),
    ("[bgp]\npeers = [{ interface = 'eth1' }, { interface = 'eth1' }]\n", "bgp.peers[1]"),
    ("[bgp]\npeers = [{ interface = 'eth1', remote_as = 'banana' }]\n", "bgp.peers[0].remote_as"),
    ("[bgp]\npeers = [{ interface = 'eth1', typo = 1 }]\n", "bgp.peers[0].typo"),
    ('[bgp]\npeer_group = "up\\n"\n', "bgp.peer_group"),      # trailing newline (regex `$`)
    ('[kernel]\ndummy_name = "ovn\\n"\n', "kernel.dummy_name"),
    ("[kernel]\ndummy_name = 'way-too-long-name'\n", "kernel.dummy_name"),
    ("[kernel]\ndummy_name = 'ovn-bgp-vrf'\n", "kernel.dummy_name"),
    ("[kernel]\nbridge_tables = { br-ex = 10 }\n", "kernel.vrf_table"),
    ("[kernel]\nbridge_ipv4 = '1.1.1.1/33'\n", "kernel.bridge_ipv4"),
    ("[kernel]\nsteering = 'magic'\n", "kernel.steering"),
    ('[ovn]\novs_remote = "unix:/x\\n"\n', "ovn.ovs_remote"),
    ("[ovn]\nsb_remotes = ['tcp:127.0.0.1:99999']\n", "ovn.sb_remotes[0]"),
    ("[ovn]\nsb_remotes = []\n", "ovn.sb_remotes"),
    ("[ovn]\nsb_remotes = ['ssl:127.0.0.1:6642']\n", "ovn.ssl_key"),
    ("[agent]\nmetrics_listen = '127.0.0.1:\u0663'\n", "agent.metrics_listen"),  # non-ASCII digit
    ("[agent]\nresync_interval = nan\n", "agent.resync_interval"),
    ("[agent]\nstate_dir = 'relative'\n", "agent.state_dir"),
    ("[log]\nlevel = 'verbose'\n", "log.level"),
    ("bgp = 1\n", "bgp"),
    ("[bgp\n", "(file)"),
])
def test_bad_value_names_the_key(text, key):
    with pytest.raises(ConfigError) as e:
        config.loads(text)
    assert e.value.key == key
    assert str(e.value).startswith(f"{key}: ")


def test_ssl_requirement_names_the_remote_key():
    with pytest.raises(ConfigError) as e:
        config.loads("[ovn]\nsb_remotes = ['ssl:127.0.0.1:6642']\n")
    _assert_names(e.value, "ovn.sb_remotes")


def test_unknown_key_lists_accepted_keys():
    with pytest.raises(ConfigError) as e:
        config.loads("[bgp]\nasm = 65000\n")
    assert "asn" in str(e.value) and "peer_group" in str(e.value)


# --- properties ------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(key=st.sampled_from(ALL_KEYS), value=toml_values)
def test_any_value_for_any_key_is_accepted_or_named(key, value):
    section, name = key
    try:
        cfg = config.parse({section: {name: value}})
    except ConfigError as e:
        _assert_names(e, f"{section}.{name}")
        return
    # accepted: the effective value must be the field's declared kind of thing
    got = getattr(getattr(cfg, section), name)
    assert got is None or not isinstance(got, (datetime.date, datetime.time))
    if isinstance(got, float):
        assert math.isfinite(got)
    if isinstance(got, str):
        assert "\n" not in got and "\x00" not in got


@settings(max_examples=300, deadline=None)
@given(key=st.sampled_from(ALL_KEYS), value=toml_values)
def test_random_values_only_raise_config_error(key, value):
    section, name = key
    try:
        config.parse({section: {name: value}})
    except ConfigError:
        pass


@settings(max_examples=100, deadline=None)
@given(peers=st.lists(st.dictionaries(
    st.sampled_from(["interface", "address", "remote_as", "other"]), toml_values, max_size=3),
    max_size=3) | toml_values)
def test_random_peer_lists_name_bgp_peers(peers):
    try:
        config.parse({"bgp": {"peers": peers}})
    except ConfigError as e:
        _assert_names(e, "bgp.peers")


@settings(max_examples=100, deadline=None)
@given(data=st.dictionaries(st.text(max_size=10), toml_values, max_size=3))
def test_random_top_level_tables(data):
    try:
        config.parse(data)
    except ConfigError as e:
        assert any(e.key == k or e.key.startswith((f"{k}.", f"{k}[")) for k in data), e.key


@settings(max_examples=100, deadline=None)
@given(text=st.text(max_size=200))
def test_random_text_only_raises_config_error(text):
    try:
        config.loads(text)
    except ConfigError:
        pass


# --- round trips -----------------------------------------------------------------------------

valid_configs = st.fixed_dictionaries({}, optional={
    "ovn": st.fixed_dictionaries({}, optional={
        "sb_remotes": st.lists(st.sampled_from(["unix:/run/ovn/sb.sock", "tcp:192.0.2.1:6642",
                                                "tcp:[2001:db8::1]:6642"]), min_size=1, max_size=3),
        "wait_for_port_up": st.booleans()}),
    "kernel": st.fixed_dictionaries({}, optional={
        "vrf_name": st.sampled_from(["ovn-bgp-vrf", "vrf-x"]),
        "vrf_table": st.integers(1, 100),
        "bridge_tables": st.dictionaries(st.sampled_from(["br-ex", "br-vlan.10", "br_2"]),
                                         st.integers(101, 252), max_size=3),
        "bridge_ipv4": st.sampled_from(["1.1.1.1/32", "10.0.0.1/24"]),
        "steering": st.sampled_from(config.STEERING_MODES),
        "route_protocol": st.integers(5, 254).filter(
            lambda p: p not in config.FRR_ROUTE_PROTOCOLS)}),
    "bgp": st.fixed_dictionaries({}, optional={
        "asn": st.integers(1, 4294967295),
        "router_id": st.sampled_from(["", "192.0.2.1"]),
        "peers": st.sampled_from([[], [{"interface": "eth1"}],
                                  [{"address": "2001:db8::2", "remote_as": 65000},
                                   {"interface": "eth2", "remote_as": "internal"}]]),
        "bfd": st.booleans(),
        "maximum_paths": st.integers(0, 128)}),
    "agent": st.fixed_dictionaries({}, optional={
        "resync_interval": st.floats(1, 86400),
        "debounce": st.floats(0, 10),
        "metrics_listen": st.sampled_from(["", "127.0.0.1:9476", "[::1]:9100"])}),
    "log": st.fixed_dictionaries({}, optional={
        "level": st.sampled_from(config.LOG_LEVELS),
        "format": st.sampled_from(config.LOG_FORMATS)}),
})


@settings(max_examples=80, deadline=None)
@given(data=valid_configs)
def test_show_output_round_trips(data):
    cfg = config.parse(data)
    assert config.loads(config.to_toml(cfg)) == cfg
    assert config.parse(json.loads(json.dumps(config.to_dict(cfg)))) == cfg


def test_config_is_hashable_and_equal_configs_hash_equal():
    text = ('[ovn]\nsb_remotes = ["tcp:10.0.0.1:6642", "tcp:10.0.0.2:6642"]\n'
            '[kernel]\nbridge_tables = { br-ex = 200, br-2 = 201 }\nndp_proxy = ["2001:db8::1"]\n'
            '[bgp]\npeers = [{ interface = "eth1" }]\n')
    a, b = config.loads(text), config.loads(text)
    assert a == b and hash(a) == hash(b)
    assert hash(config.Config()) == hash(config.Config())
    assert len({a, b, config.Config()}) == 2
    other = config.loads(text.replace("201", "202"))
    assert other != a
    # A mapping or list passed by a caller is frozen too.
    k = config.KernelConfig(bridge_tables={"br-ex": 200}, ndp_proxy=[])  # type: ignore[arg-type]
    assert hash(config.Config(kernel=k)) == hash(config.Config(kernel=config.KernelConfig(
        bridge_tables=config.FrozenMap({"br-ex": 200}))))
    with pytest.raises(TypeError):
        k.bridge_tables["br-ex"] = 1  # type: ignore[index]


# --- the file itself: any bytes, any kind of path --------------------------------------------
# Whatever is at the config path, load() returns a Config or raises ConfigError naming the
# file: never a UnicodeDecodeError, RecursionError or a hang (the CLI turns ConfigError into
# exit 2 and one line; the running agent keeps its config on SIGHUP).

VALID_BYTES = b"""
[ovn]
sb_remotes = ["tcp:192.0.2.10:6642", "unix:/run/ovn/ovnsb_db.sock"]
wait_for_port_up = false

[kernel]
bridge_tables = { br-ex = 200, "br-vlan.10" = 201 }
bridge_ipv4 = "1.1.1.2/32"
ndp_proxy = ["2001:db8::1"]

[bgp]
asn = 4200000001
router_id = "192.0.2.1"
peers = [{ interface = "eth1" }, { address = "192.0.2.254", remote_as = 65000 }]

[agent]
resync_interval = 60
metrics_listen = ""

[log]
level = "debug"
"""


def _load_bytes(data: bytes) -> config.Config:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "ovnbgp.toml"
        p.write_bytes(data)
        try:
            return config.load(p)
        except ConfigError as e:
            assert e.key == "(file)" or e.key, e
            assert "\n" not in str(e), f"a ConfigError must be one line: {e!r}"
            raise


def test_valid_bytes_load():  # the mutation tests start from a file that loads
    assert _load_bytes(VALID_BYTES).bgp.asn == 4200000001


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=400))
def test_any_bytes_load_or_raise_config_error(data):
    try:
        _load_bytes(data)
    except ConfigError:
        pass


_MUTATIONS = st.lists(st.tuples(
    st.sampled_from(["flip", "insert", "delete", "truncate", "repeat"]),
    st.integers(0, len(VALID_BYTES)),
    st.binary(min_size=1, max_size=6),
), min_size=1, max_size=6)


def _mutate(data: bytes, ops) -> bytes:
    for op, at, chunk in ops:
        at = at % (len(data) + 1)
        if op == "flip" and data:
            i = min(at, len(data) - 1)
            data = data[:i] + bytes([data[i] ^ chunk[0]]) + data[i + 1:]
        elif op == "insert":
            data = data[:at] + chunk + data[at:]
        elif op == "delete":
            data = data[:at] + data[at + len(chunk):]
        elif op == "truncate":
            data = data[:at]
        elif op == "repeat":  # nest/duplicate what is there: brackets, tables, keys
            data = data[:at] + data[at:at + len(chunk)] * (chunk[0] % 64 + 1) + data[at:]
    return data


@settings(max_examples=400, deadline=None)
@given(ops=_MUTATIONS)
def test_mutated_valid_file_loads_or_raises_config_error(ops):
    try:
        _load_bytes(_mutate(VALID_BYTES, ops))
    except ConfigError:
        pass


@pytest.mark.parametrize("data,words", [
    (b"[bgp]\nasn = 65000\n# caf\xe9\n", ("not UTF-8", "0xe9 at offset 23")),     # latin-1 comment
    (b"\xff\xfe[\x00b\x00g\x00p\x00]\x00", ("not UTF-8",)),            # UTF-16 with its BOM
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", ("not UTF-8",)),          # a binary file
    (b"[bgp]\nasn = 65000\x00\n", ("not valid TOML",)),               # NUL in UTF-8 text
    (b"a = " + b"[" * 5000 + b"]" * 5000 + b"\n", ("nested",)),       # RecursionError in tomllib
    (b"a = " + b"{b = " * 3000 + b"1" + b"}" * 3000 + b"\n", ("nested",)),
])
def test_undecodable_bytes_name_the_file(tmp_path, data, words):
    p = tmp_path / "ovnbgp.toml"
    p.write_bytes(data)
    with pytest.raises(ConfigError) as e:
        config.load(p)
    msg = str(e.value)
    assert str(p) in msg and "\n" not in msg, msg
    for w in words:
        assert w in msg, msg


def test_utf8_byte_order_mark_is_accepted(tmp_path):
    p = tmp_path / "ovnbgp.toml"
    p.write_bytes(b"\xef\xbb\xbf[bgp]\nasn = 65001\n")
    assert config.load(p).bgp.asn == 65001


def test_oversized_file_is_refused(tmp_path):
    p = tmp_path / "ovnbgp.toml"
    p.write_bytes(b"# " + b"x" * config.MAX_FILE_BYTES + b"\n")
    with pytest.raises(ConfigError, match="larger than"):
        config.load(p)


def _special_path(tmp_path, kind: str) -> Path:
    import os
    import socket

    p = tmp_path / "ovnbgp.toml"
    if kind == "directory":
        p.mkdir()
    elif kind == "fifo":  # nobody writes: a plain open() would block for ever
        os.mkfifo(p)
    elif kind == "socket":
        s = socket.socket(socket.AF_UNIX)
        s.bind(str(p))
        s.close()
    elif kind == "device":
        return Path("/dev/null")  # (/dev/zero would be read for ever before the check)
    elif kind == "dangling symlink":
        p.symlink_to(tmp_path / "elsewhere.toml")
    elif kind == "not a directory":
        (tmp_path / "file").write_text("")
        return tmp_path / "file" / "ovnbgp.toml"
    return p


@pytest.mark.parametrize("kind,words", [
    ("directory", "is a directory"),
    ("fifo", "not a regular file (a FIFO)"),
    ("socket", "not a regular file (a socket)"),
    ("device", "not a regular file (a character device)"),
    ("dangling symlink", "does not exist"),
    ("not a directory", "Not a directory"),
])
def test_config_path_that_is_not_a_file(tmp_path, kind, words):
    import signal

    def hung(*_):
        raise TimeoutError(f"load() of a {kind} blocked")

    p = _special_path(tmp_path, kind)
    old = signal.signal(signal.SIGALRM, hung)
    signal.alarm(10)  # a blocking open/read fails the test instead of hanging it
    try:
        with pytest.raises(ConfigError) as e:
            config.load(p, missing_ok=kind == "directory")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    msg = str(e.value)
    assert str(p) in msg and words in msg and "\n" not in msg, msg


def test_unreadable_file(tmp_path):
    # As root, permissions do not stop a read: drop to nobody in a child process.
    import os
    import subprocess
    import sys

    p = tmp_path / "ovnbgp.toml"
    p.write_bytes(VALID_BYTES)
    p.chmod(0o000)
    tmp_path.chmod(0o755)
    code = ("import sys; from ovnbgp import config\n"
            "try:\n config.load(sys.argv[1])\nexcept config.ConfigError as e:\n print(e)\n")
    kw = {"user": "nobody"} if os.geteuid() == 0 else {}
    root = str(Path(config.__file__).resolve().parent.parent)
    cp = subprocess.run([sys.executable, "-c", code, str(p)], capture_output=True, text=True,
                        env={**os.environ, "PYTHONPATH": root}, cwd="/", timeout=60, check=False,
                        **kw)
    assert cp.returncode == 0, cp.stderr
    assert cp.stdout.strip() == f"(file): cannot read {p}: Permission denied", cp.stdout

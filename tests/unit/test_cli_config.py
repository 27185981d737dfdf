"""`ovnbgp config check|show`: exit 2 naming the key on a bad config; show output round-trips."""

from __future__ import annotations

import json
import logging

import pytest
from click.testing import CliRunner

from ovnbgp import config
from ovnbgp.cli import EXIT_CONFIG, main

GOOD = """
[bgp]
asn = 65010
peers = [{ interface = "eth1" }, { address = "2001:db8::2", remote_as = 65000 }]

[kernel]
bridge_tables = { br-ex = 201 }

[agent]
resync_interval = 30
"""


@pytest.fixture(autouse=True)
def _isolate(monkeypatch, tmp_path):
    # The CLI configures the root logger onto click's (temporary) stderr: restore it after.
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    monkeypatch.delenv("OVNBGP_CONFIG", raising=False)
    monkeypatch.setattr(config, "DEFAULT_PATH", tmp_path / "absent" / "ovnbgp.toml")
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _invoke(*args, env=None):
    return CliRunner().invoke(main, list(args), env=env)


def _write(tmp_path, text):
    p = tmp_path / "ovnbgp.toml"
    p.write_text(text)
    return p


def test_check_good_config(tmp_path):
    p = _write(tmp_path, GOOD)
    r = _invoke("--config", str(p), "config", "check")
    assert r.exit_code == 0, r.output
    assert f"{p}: ok" in r.stdout


@pytest.mark.parametrize("text,key", [
    ("[bgp]\nasm = 65000\n", "bgp.asm"),
    ("[bgp]\nasn = 0\n", "bgp.asn"),
    ("[bgp]\nasn = 'sixty-five thousand'\n", "bgp.asn"),
    ("[bgp]\nasn = 4294967296\n", "bgp.asn"),
    ("[kernal]\n", "kernal"),
    ("[bgp]\npeers = [{ address = '192.0.2.1' }]\n", "bgp.peers[0].remote_as"),
])
def test_check_bad_config_exits_2_naming_the_key(tmp_path, text, key):
    p = _write(tmp_path, text)
    r = _invoke("--config", str(p), "config", "check")
    assert r.exit_code == EXIT_CONFIG == 2
    assert f"config error: {key}: " in r.stderr
    assert "ok" not in r.stdout


def test_config_from_environment_variable(tmp_path):
    p = _write(tmp_path, "[bgp]\nasn = 0\n")
    r = _invoke("config", "check", env={"OVNBGP_CONFIG": str(p)})
    assert r.exit_code == 2 and "bgp.asn" in r.stderr


def test_missing_explicit_file_is_an_error(tmp_path):
    r = _invoke("--config", str(tmp_path / "nope.toml"), "config", "check")
    assert r.exit_code == 2 and "nope.toml does not exist" in r.stderr


def test_missing_default_file_gives_defaults():
    r = _invoke("config", "show", "--json")
    assert r.exit_code == 0, r.output
    assert config.parse(json.loads(r.stdout)) == config.Config()


def test_show_json_round_trip(tmp_path):
    p = _write(tmp_path, GOOD)
    r = _invoke("--config", str(p), "config", "show", "--json")
    assert r.exit_code == 0, r.output
    shown = json.loads(r.stdout)
    assert shown["bgp"]["asn"] == 65010
    assert shown["bgp"]["peers"][1] == {"address": "2001:db8::2", "remote_as": 65000}
    assert config.parse(shown) == config.load(p)


def test_show_toml_round_trip(tmp_path):
    p = _write(tmp_path, GOOD)
    r = _invoke("--config", str(p), "config", "show")
    assert r.exit_code == 0, r.output
    assert config.loads(r.stdout) == config.load(p)


def test_show_bad_config_exits_2(tmp_path):
    p = _write(tmp_path, "[log]\nlevel = 'loud'\n")
    r = _invoke("--config", str(p), "config", "show", "--json")
    assert r.exit_code == 2 and "log.level" in r.stderr and r.stdout == ""


# --- whatever is at the config path: exit 2 and one line, for every command ---------------

COMMANDS = [("config", "check"), ("config", "show"), ("frr", "render"), ("status",),
            ("plan",), ("desired",), ("verify",), ("run",), ("cleanup", "--yes")]


def _bad_path(tmp_path, kind):
    import os

    p = tmp_path / "ovnbgp.toml"
    if kind == "latin-1":
        p.write_bytes(b"[bgp]\nasn = 65000\n# r\xe9seau\n")
    elif kind == "binary":
        p.write_bytes(bytes(range(256)) * 4)
    elif kind == "directory":
        p.mkdir()
    elif kind == "fifo":
        os.mkfifo(p)
    return p


@pytest.mark.parametrize("kind,words", [
    ("latin-1", "is not UTF-8 text"), ("binary", "is not UTF-8 text"),
    ("directory", "is a directory"), ("fifo", "is not a regular file (a FIFO)"),
])
@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_unusable_config_file_exits_2_with_one_line(tmp_path, kind, words, command):
    p = _bad_path(tmp_path, kind)
    r = _invoke("--config", str(p), *command)
    assert r.exit_code == EXIT_CONFIG, (r.exit_code, r.output, r.exception)
    assert r.stderr.splitlines() == [f"ovnbgp: config error: (file): {p} {words}"
                                     + r.stderr.split(words, 1)[1].rstrip("\n")], r.stderr
    assert r.stdout == ""


def test_non_utf8_config_with_the_real_binary(tmp_path):
    # The installed entry point, as an operator runs it (no CliRunner in between).
    import subprocess
    import sys
    from pathlib import Path

    p = _bad_path(tmp_path, "latin-1")
    ovnbgp = Path(sys.executable).parent / "ovnbgp"
    cp = subprocess.run([str(ovnbgp), "--config", str(p), "config", "check"],
                        capture_output=True, text=True, timeout=60, check=False)
    assert cp.returncode == 2, cp.stderr
    line = (f"ovnbgp: config error: (file): {p} is not UTF-8 text "
            "(invalid continuation byte 0xe9 at offset 21)")
    assert cp.stderr.splitlines() == [line], cp.stderr
    assert cp.stdout == ""

"""`ovnbgp desired|plan|verify` (the installed binary) against a Southbound that cannot be read:
exit 3 within --timeout (plus start-up), with exactly one line on stderr that names the
remote and the reason -- no retry chatter from the OVS libraries.

The local OVS DB is a real ovsdb-server with a system-id (the SB is read after it); the SB
remote is a closed TCP port, a missing unix socket, or a peer that accepts the connection and
never answers (which ovsdbapp's schema fetch used to wait on for ever).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

OVNBGP = os.path.join(os.path.dirname(sys.executable), "ovnbgp")
COMMANDS = ["desired", "plan", "verify"]
SLACK = 3.0  # interpreter start-up and the local OVS DB read, on a loaded 2-core machine


@pytest.fixture
def local_ovs(ovs_node):
    ovs_node.vsctl("set", "open", ".", "external_ids:system-id=ch1")
    return ovs_node


@pytest.fixture
def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now: connections are refused
    return f"tcp:127.0.0.1:{port}"


@pytest.fixture
def silent_peer():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(8)  # the kernel completes the handshake; nobody ever reads or answers
    try:
        yield f"tcp:127.0.0.1:{s.getsockname()[1]}"
    finally:
        s.close()


def _run(tmp_path: Path, sb_remote: str, ovs_remote: str, command: str, *timeout: str):
    cfg = tmp_path / f"ovnbgp-{command}.toml"
    cfg.write_text("\n".join([
        "[ovn]", f"sb_remotes = [{json.dumps(sb_remote)}]", f"ovs_remote = {json.dumps(ovs_remote)}",
        "[kernel]", 'dummy_name = "lo"',  # verify reads the dummy's addresses before OVN
        f"rt_tables_file = {json.dumps(str(tmp_path / 'rt_tables.conf'))}",
        "[agent]", f"lock_file = {json.dumps(str(tmp_path / 'ovnbgp.lock'))}",
        f"state_dir = {json.dumps(str(tmp_path / 'state'))}", ""]))
    start = time.monotonic()
    cp = subprocess.run([OVNBGP, "--config", str(cfg), command, *timeout], capture_output=True,
                        text=True, timeout=120, stdin=subprocess.DEVNULL, check=False)
    return cp, time.monotonic() - start


def _assert_one_line(cp, elapsed: float, command: str, remote: str, timeout: float, why: str):
    lines = cp.stderr.splitlines()
    assert cp.returncode == 3, (cp.returncode, cp.stderr[-3000:])
    assert len(lines) == 1, f"{len(lines)} lines on stderr:\n{cp.stderr[-3000:]}"
    assert lines[0].startswith(f"ovnbgp {command}: cannot read the OVN Southbound at {remote}: "), lines
    assert why in lines[0] and lines[0].endswith(f"(timeout {timeout:g}s)"), lines
    assert elapsed <= timeout + SLACK, f"took {elapsed:.1f}s with --timeout {timeout:g}"


@pytest.mark.parametrize("command", COMMANDS)
def test_closed_tcp_port(tmp_path, local_ovs, closed_port, command):
    cp, elapsed = _run(tmp_path, closed_port, local_ovs.remote, command, "--timeout", "2")
    _assert_one_line(cp, elapsed, command, closed_port, 2, "Connection refused")


@pytest.mark.parametrize("command", COMMANDS)
def test_missing_unix_socket(tmp_path, local_ovs, command):
    remote = f"unix:{tmp_path / 'no-such-sb.sock'}"
    cp, elapsed = _run(tmp_path, remote, local_ovs.remote, command, "--timeout", "2")
    _assert_one_line(cp, elapsed, command, remote, 2, "No such file or directory")


@pytest.mark.parametrize("command", COMMANDS)
def test_peer_that_never_answers(tmp_path, local_ovs, silent_peer, command):
    cp, elapsed = _run(tmp_path, silent_peer, local_ovs.remote, command, "--timeout", "2")
    _assert_one_line(cp, elapsed, command, silent_peer, 2, "timed out")


def test_default_timeout_is_a_few_seconds(tmp_path, local_ovs, closed_port):
    cp, elapsed = _run(tmp_path, closed_port, local_ovs.remote, "verify")
    _assert_one_line(cp, elapsed, "verify", closed_port, 5, "Connection refused")


def test_unreachable_local_ovs_db_is_one_line_too(tmp_path, closed_port):
    remote = f"unix:{tmp_path / 'no-such-db.sock'}"
    cp, elapsed = _run(tmp_path, closed_port, remote, "desired", "--timeout", "1")
    assert cp.returncode == 3 and elapsed <= 1 + SLACK, (cp.returncode, elapsed, cp.stderr[-2000:])
    line = (f"ovnbgp desired: cannot read the local OVS DB at {remote}: "
            "No such file or directory (timeout 1s)")
    assert cp.stderr.splitlines() == [line], cp.stderr[-2000:]

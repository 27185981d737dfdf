"""SIGHUP against the real agent (`ovnbgp run`) with a real OVN central and local OVS DB: a
config file that cannot be used (any bytes, a directory) is refused with one error line and
the agent keeps running on its old config; a good file afterwards is reloaded.

The agent runs in the OVS node's namespace. It needs no VRF or dummy support for this: a
kernel reconcile that fails (no vrf driver on the host) is logged and the loop goes on, which
is all SIGHUP handling needs. FRR is never touched: the snippet file does not exist, so no
FRR config is rendered and no FRR is started.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from tests.harness.agent import AgentProcess
from tests.harness.proc import wait_for

REFUSED = "SIGHUP: config not reloaded, keeping the running one"


def _config(work: Path, sb_remote: str, ovs_remote: str, *, debounce: float = 0.2) -> str:
    q = json.dumps  # a TOML basic string
    return "\n".join([
        "[ovn]",
        f"sb_remotes = [{q(sb_remote)}]",
        f"ovs_remote = {q(ovs_remote)}",
        "[kernel]",
        f"rt_tables_file = {q(str(work / 'rt_tables.conf'))}",
        "[bgp]",
        f"snippet_file = {q(str(work / 'no-such-snippet.conf'))}",
        "[frr]",
        f"vtysh = {q(str(work / 'no-vtysh'))}",
        f"reload = {q(str(work / 'no-frr-reload.py'))}",
        f"vty_socket = {q(str(work / 'frr'))}",
        f"config_file = {q(str(work / 'frr.conf'))}",
        f"daemons_file = {q(str(work / 'daemons'))}",
        "[agent]",
        f"state_dir = {q(str(work / 'state'))}",
        f"lock_file = {q(str(work / 'ovnbgp.lock'))}",
        'metrics_listen = ""',
        "resync_interval = 3600",
        f"debounce = {debounce}",
        "",
    ])


@pytest.fixture
def agent(tmp_path, ovn_central, ovs_node):
    ovs_node.vsctl("set", "open", ".", "external_ids:system-id=ch1")
    work = tmp_path / "agent"
    a = AgentProcess(work, _config(work, ovn_central.sb_remote, ovs_node.remote),
                     netns=ovs_node.netns)
    a.start(timeout=60)
    try:
        yield a
    finally:
        if a.alive():
            a.stop()


def _hup_and_wait(agent: AgentProcess, line: str, count: int) -> None:
    os.kill(agent.daemon.pid, signal.SIGHUP)
    wait_for(lambda: agent.log().count(line) >= count or not agent.alive(), timeout=15,
             what=f"{line!r} logged {count} time(s)", details=agent.log_tail)


@pytest.mark.parametrize("kind", ["latin-1", "binary", "directory"])
def test_sighup_with_unusable_config_keeps_the_agent_running(agent, kind):
    good = agent.config_path.read_bytes()
    agent.config_path.unlink()
    if kind == "latin-1":
        agent.config_path.write_bytes(good + b"# r\xe9seau\n")
    elif kind == "binary":
        agent.config_path.write_bytes(bytes(range(256)) * 8)
    else:
        agent.config_path.mkdir()

    _hup_and_wait(agent, REFUSED, 1)
    time.sleep(1.5)  # a crash after the log line would show now
    assert agent.alive(), agent.log_tail()
    refusals = [ln for ln in agent.log().splitlines() if REFUSED in ln]
    assert len(refusals) == 1, refusals
    assert str(agent.config_path) in refusals[0] and " ERROR " in refusals[0], refusals[0]
    assert "Traceback" not in agent.log(), agent.log_tail()

    # The running agent still answers SIGHUP: the good file back is "unchanged" (same config).
    if kind == "directory":
        agent.config_path.rmdir()
    agent.config_path.write_bytes(good)
    _hup_and_wait(agent, "SIGHUP: config unchanged", 1)
    assert agent.alive(), agent.log_tail()
    assert agent.stop() == 0, agent.log_tail()

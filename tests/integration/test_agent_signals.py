"""`ovnbgp run` as a real process: every wait ends promptly on SIGTERM (issue 17, item 5).

The agent's start-up waits for the Southbound and local OVS databases, retrying while they
cannot be reached; a SIGTERM in that wait must stop it within seconds (under systemd a stop
would otherwise hang until the unit's timeout kills it).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

OVNBGP = os.path.join(os.path.dirname(sys.executable), "ovnbgp")


def closed_port() -> int:
    """A local TCP port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config(tmp: Path, sb: str, ovs: str) -> Path:
    # FRR's daemons file under a regular file: the FRR bootstrap fails at once, without
    # starting or touching any FRR on this machine.
    (tmp / "not-a-dir").write_text("")
    path = tmp / "ovnbgp.toml"
    path.write_text(f"""
[ovn]
sb_remotes = ["{sb}"]
ovs_remote = "{ovs}"
[frr]
daemons_file = "{tmp}/not-a-dir/daemons"
config_file = "{tmp}/not-a-dir/frr.conf"
vtysh = "{tmp}/no-vtysh"
[agent]
state_dir = "{tmp}/state"
lock_file = "{tmp}/lock"
metrics_listen = ""
resync_interval = 300
""")
    return path


def run_then_sigterm(tmp: Path, sb: str, ovs: str, settle: float = 3.0) -> tuple[float, str]:
    log = tmp / "agent.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([OVNBGP, "--config", str(config(tmp, sb, ovs)), "run"],
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    try:
        time.sleep(settle)  # well into the connection retries
        assert proc.poll() is None, log.read_text()
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pass
        return time.monotonic() - sent, log.read_text()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_sigterm_while_the_local_ovs_db_is_unreachable(tmp_path):
    took, text = run_then_sigterm(tmp_path, f"tcp:127.0.0.1:{closed_port()}",
                                  f"unix:{tmp_path}/no-ovsdb.sock")
    assert "SIGTERM: stopping" in text, text
    assert took < 5.0, f"exited {took:.1f}s after SIGTERM\n{text}"


def test_sigterm_while_the_southbound_is_unreachable(tmp_path, ovs_node):
    ovs_node.vsctl("set", "open", ".", "external_ids:system-id=ch1")  # a chassis: on to the SB
    took, text = run_then_sigterm(tmp_path, f"tcp:127.0.0.1:{closed_port()}", ovs_node.remote)
    assert "SIGTERM: stopping" in text, text
    assert took < 5.0, f"exited {took:.1f}s after SIGTERM\n{text}"

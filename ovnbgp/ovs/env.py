"""The environment OVS's command-line tools need to find this node's OVS."""

from __future__ import annotations

from pathlib import Path


def ovs_tool_env(ovs_remote: str) -> dict[str, str] | None:
    """ovs-ofctl finds a bridge's management socket in OVS's run directory, where the local DB
    socket lives too: point it there when the DB is not at the packaged default."""
    if ovs_remote.startswith("unix:"):
        rundir = str(Path(ovs_remote[len("unix:"):]).parent)
        if rundir not in ("/var/run/openvswitch", "/run/openvswitch"):
            return {"OVS_RUNDIR": rundir}
    return None

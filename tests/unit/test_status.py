"""The status file's content: what `ovnbgp status` reads (agent/status.py)."""

from __future__ import annotations

import dataclasses
import json

from ovnbgp.agent import status as status_mod


def test_to_dict_equals_a_deep_copy_and_dumps_round_trips(tmp_path):
    """to_dict() copies one level (4x cheaper than dataclasses.asdict, on every loop turn) and
    gives what asdict gives; the file is compact JSON that reads back the same."""
    s = status_mod.Status(connected={"sb": True, "ovs": False}, exposures={"provider-vm": 3},
                          frr={"running": True, "daemons": {"zebra": 1}}, waiting=["x"],
                          waiting_exposures={"port-up": 1}, held=["h"])
    s.last_sync = status_mod.SyncInfo(at=1.0, duration=0.5, trigger="event",
                                      changes={"kernel_add": 2}, cpu=0.1)
    s.add_error("kernel", "boom")
    reference = dataclasses.asdict(s)
    reference["errors"] = list(s.errors)
    d = s.to_dict()
    assert d == reference
    d["connected"]["sb"] = False  # a copy: the status itself is not changed through it
    d["waiting"].append("y")
    assert s.connected["sb"] is True and s.waiting == ["x"]
    text = status_mod.dumps(s)
    assert "\n" not in text and json.loads(text) == json.loads(json.dumps(reference, default=str))
    status_mod.write(tmp_path, s)
    assert status_mod.read(tmp_path) == json.loads(text)

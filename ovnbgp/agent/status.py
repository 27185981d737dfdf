"""The daemon's status record, written atomically to <state_dir>/status.json after every
reconcile so `ovnbgp status` can show it without talking to the daemon."""

from __future__ import annotations

import json
import os
import time
from collections import deque
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ovnbgp.fileio import atomic_write

STATUS_FILE = "status.json"
MAX_ERRORS = 20


@dataclass
class SyncInfo:
    at: float = 0.0
    duration: float = 0.0
    trigger: str = ""
    changes: dict[str, int] = field(default_factory=dict)
    cpu: float = 0.0  # CPU seconds of the agent process (all threads) during this sync


@dataclass
class Status:
    pid: int = field(default_factory=os.getpid)
    started_at: float = field(default_factory=time.time)
    connected: dict[str, bool] = field(default_factory=dict)
    exposures: dict[str, int] = field(default_factory=dict)
    last_sync: SyncInfo = field(default_factory=SyncInfo)
    syncs: int = 0
    frr: dict[str, Any] = field(default_factory=dict)
    waiting: list[str] = field(default_factory=list)  # e.g. "bridge br-ex missing"
    waiting_exposures: dict[str, int] = field(default_factory=dict)  # reason -> rows, e.g. port-up
    held: list[str] = field(default_factory=list)  # why the bridge data is unusable (holds)
    errors: deque = field(default_factory=lambda: deque(maxlen=MAX_ERRORS))

    def add_error(self, target: str, message: str) -> None:
        self.errors.append({"at": time.time(), "target": target, "message": message})

    def to_dict(self) -> dict[str, Any]:
        """A copy one level deep (the values are flat containers): dataclasses.asdict's
        recursive copy cost 4x more, and the agent's loop writes the status every turn."""
        d: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            d[f.name] = list(v) if isinstance(v, (list, deque)) else dict(v) if isinstance(v, dict) else v
        d["last_sync"] = asdict(self.last_sync)
        return d


def dumps(status: Status) -> str:
    """The status file's text: compact JSON (json's C encoder; with indent it is the pure
    Python one, several times slower, on every loop turn). `ovnbgp status` renders it."""
    return json.dumps(status.to_dict(), default=str)


def write(state_dir: Path, status: Status) -> None:
    atomic_write(state_dir / STATUS_FILE, dumps(status))


def read(state_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((state_dir / STATUS_FILE).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None

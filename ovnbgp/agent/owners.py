"""The owners of contested prefixes, kept across agent restarts.

When two Port_Bindings claim one address, the model keeps it for the row that had it first
(model/aggregate.py). That memory must survive a restart, or a restart could move the address
to the other row (a flap, and a black hole if the other row is the bogus one). The agent writes
the few contested prefixes and their owners to `owners.json` in agent.state_dir whenever that set
changes, and seeds the model with them on start. A missing or unreadable file is an empty record
(logged): the model then falls back to its stable rule (lowest Port_Binding uuid).
"""

from __future__ import annotations

import ipaddress
import json
import logging
from collections.abc import Mapping
from pathlib import Path

from ovnbgp.fileio import atomic_write
from ovnbgp.model.records import IPNetwork

LOG = logging.getLogger(__name__)
FILE_NAME = "owners.json"
VERSION = 1

Owners = Mapping[IPNetwork, tuple[str, str]]


def path_in(state_dir: Path) -> Path:
    return Path(state_dir) / FILE_NAME


def load(path: Path) -> dict[IPNetwork, tuple[str, str]]:
    """prefix -> (Port_Binding uuid, logical port) as last saved; {} when there is none."""
    try:
        data = json.loads(path.read_text())
        return {ipaddress.ip_network(prefix): (str(row), str(port))
                for prefix, (row, port) in data["owners"].items()}
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        LOG.warning("owners file %s unreadable (%s); contested prefixes go by the lowest "
                    "Port_Binding uuid", path, e)
        return {}


def save(path: Path, owners: Owners) -> None:
    text = json.dumps({"version": VERSION, "owners": {
        str(prefix): [row, port] for prefix, (row, port) in sorted(owners.items(), key=lambda i: str(i[0]))}},
        indent=1)
    atomic_write(path, text + "\n", mode=0o644)

"""ovnbgp's record of the bridge IPs it added (e.g. 1.1.1.1/32 on br-ex) and of the VLAN
devices it made (br-ex.100, for VLAN provider networks).

A bridge IP carries no owner mark the kernel keeps (IFA_PROTO needs Linux 6.3), and the
operator or the deployment tool may have put the same address there first. So ovnbgp writes
down the ones it added itself, and only those are removed when a bridge stops being a provider
bridge or the configured address changes. A VLAN device is the same: one with the right name,
parent and VID that the operator made is used but never deleted; only those listed here are
deleted when the last VLAN network on them goes. A small JSON file in agent.state_dir.
"""

from __future__ import annotations

import ipaddress
import json
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path

from ovnbgp.fileio import atomic_write
from ovnbgp.model.records import IPInterface

log = logging.getLogger(__name__)
VERSION = 1


def load(path: Path | None) -> dict[str, set[IPInterface]]:
    """dev -> addresses ovnbgp added. A missing or unreadable file is an empty record (logged):
    ovnbgp then removes no bridge IP, which is the safe side."""
    if path is None:
        return {}
    try:
        data = json.loads(Path(path).read_text())
        out: dict[str, set[IPInterface]] = {}
        for dev, addrs in data.get("bridge_addresses", {}).items():
            out[str(dev)] = {ipaddress.ip_interface(a) for a in addrs}
        return out
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, AttributeError, TypeError) as e:
        log.warning("kernel state file %s unreadable (%s); treating as empty", path, e)
        return {}


def load_vlans(path: Path | None) -> set[str]:
    """The VLAN devices ovnbgp made; unreadable: none (ovnbgp then deletes none)."""
    if path is None:
        return set()
    try:
        data = json.loads(Path(path).read_text())
        names = data.get("vlan_devices", [])
        if not isinstance(names, list):
            raise TypeError("vlan_devices is not a list")
        return {str(n) for n in names}
    except FileNotFoundError:
        return set()
    except (OSError, ValueError, AttributeError, TypeError) as e:
        log.warning("kernel state file %s unreadable (%s); no VLAN device counts as ovnbgp's",
                    path, e)
        return set()


def save(path: Path | None, created: Mapping[str, set[IPInterface]],
         vlans: Iterable[str] = ()) -> None:
    if path is None:
        return
    p = Path(path)
    data: dict = {"version": VERSION,
                  "bridge_addresses": {dev: sorted(str(a) for a in addrs)
                                       for dev, addrs in sorted(created.items()) if addrs}}
    if vlans:
        data["vlan_devices"] = sorted(set(vlans))
    atomic_write(p, json.dumps(data, indent=1, sort_keys=True) + "\n", mode=0o600)

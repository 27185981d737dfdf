"""The sysctls steering needs, read and written through /proc/sys (netlink has no sysctls).

Global: rp_filter off (`all`), IPv4 forwarding, IPv6 forwarding. Per provider bridge: rp_filter
off, proxy_arp and proxy_ndp on (the reference design's list). ovnbgp sets them and never sets
them back: they are harmless to keep and may be shared with the operator's own settings.

In a network namespace other than the current one, the calling thread enters it (setns
through pyroute2.netns) for the duration of the reads/writes: /proc/sys/net shows the
namespace of the thread that opens the file.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

from ovnbgp.kernel.nsenter import in_netns

PROC_SYS = "/proc/sys"

GLOBAL = {
    "net/ipv4/conf/all/rp_filter": "0",
    "net/ipv4/ip_forward": "1",
    "net/ipv6/conf/all/forwarding": "1",
}


def per_bridge(bridge: str) -> dict[str, str]:
    return {
        f"net/ipv4/conf/{bridge}/rp_filter": "0",
        f"net/ipv4/conf/{bridge}/proxy_arp": "1",
        f"net/ipv6/conf/{bridge}/proxy_ndp": "1",
    }


def desired(bridges: Iterable[str]) -> dict[str, str]:
    """Every sysctl the given (present) bridges need; the global ones only with a bridge."""
    out: dict[str, str] = {}
    names = sorted(set(bridges))
    if names:
        out.update(GLOBAL)
    for b in names:
        out.update(per_bridge(b))
    return out


def read(paths: Iterable[str], netns: str | None = None) -> dict[str, str | None]:
    """path -> current value (stripped), None when the file does not exist."""
    out: dict[str, str | None] = {}
    with in_netns(netns):
        for p in paths:
            try:
                with open(os.path.join(PROC_SYS, p)) as f:
                    out[p] = f.read().strip()
            except (FileNotFoundError, NotADirectoryError):
                out[p] = None
    return out


def write(values: Mapping[str, str], netns: str | None = None) -> dict[str, str]:
    """Write each value; returns path -> error text for the ones that failed."""
    errors: dict[str, str] = {}
    with in_netns(netns):
        for p, v in values.items():
            try:
                with open(os.path.join(PROC_SYS, p), "w") as f:
                    f.write(v)
            except OSError as e:
                errors[p] = f"{e.strerror or e}"
    return errors

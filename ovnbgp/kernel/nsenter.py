"""Run a block with the calling thread inside a named network namespace.

Sockets made and /proc/sys/net files opened meanwhile belong to that namespace for good.
setns(2) through pyroute2.netns; only the calling thread moves, and it moves back after.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from pyroute2 import netns as pyroute2_netns


@contextlib.contextmanager
def in_netns(netns: str | None) -> Iterator[None]:
    """No-op for None (the current namespace). A missing namespace raises (never created)."""
    if netns is None:
        yield
        return
    saved = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        pyroute2_netns.setns(netns, flags=0)
        try:
            yield
        finally:
            pyroute2_netns.setns(saved, flags=0)
    finally:
        os.close(saved)

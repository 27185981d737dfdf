"""The values the model's parts exchange: a claim on a prefix, one key's contribution, a problem."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

from ovnbgp.model.records import ExposureKind, IPAddress, IPNetwork, PortBindingRow, Problem


@dataclass(frozen=True)
class Claim:
    """A prefix some row wants exposed; turned into outputs only if no other row claims it."""

    prefix: IPNetwork
    kind: ExposureKind
    bridge: str
    port: str
    row: str
    via: IPAddress | None = None  # tenant subnet: the cr-lrp IP its route goes through
    vlan: int = 0  # the VLAN of its provider network (0: flat)

    def sort_key(self) -> tuple:
        return (self.kind.value, self.bridge, self.port, str(self.via), self.vlan)


@dataclass(frozen=True)
class Contribution:
    claims: tuple[Claim, ...] = ()
    objects: tuple[Hashable, ...] = ()  # Route/Neighbour/Rule/BridgeSetup/FlowSpec not tied to a claim
    problems: tuple[Problem, ...] = ()


EMPTY = Contribution()


def contribution(claims: list, objects: list, problems: list) -> Contribution:
    if not claims and not objects and not problems:
        return EMPTY
    return Contribution(tuple(claims), tuple(objects), tuple(problems))


MAX_REASON = 300  # characters of a problem's reason: a 10k-character bad value is not logged whole
WAITING_UP = "port-up"


def clip(text: str, limit: int = MAX_REASON) -> str:
    """`text`, cut to `limit` characters with an ellipsis and the full length."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text)} characters)"


def problem(row: PortBindingRow | None, reason: str, level: str = "warning", waiting: str = "") -> Problem:
    reason = clip(reason)
    if row is None:
        return Problem("", "", reason, level, waiting)
    return Problem(clip(row.uuid, 64), clip(row.logical_port, 200), reason, level, waiting)


def waiting_for_up(row: PortBindingRow) -> Problem:
    """A port bound here that ovn-controller has not wired yet (up=false): not exposed yet."""
    return problem(row, "bound here, waiting for up=true", "info", WAITING_UP)


@dataclass(frozen=True)
class TenantNet:
    """A tenant subnet reachable through a router whose gateway (cr-lrp) is bound here."""

    router: str
    network: IPNetwork
    bridge: str
    vlan: int = 0  # the VLAN of the router's gateway network (0: flat)

    def sort_key(self) -> tuple:
        return (self.router, self.network.version, int(self.network.network_address),
                self.network.prefixlen)


"""OVN load balancers (Octavia's OVN provider): which addresses are VIPs and whether they have
members, from the Southbound Load_Balancer rows (docs/load-balancers.md has the rules).

The placement of a VIP is not read here: OVN itself lists every VIP of a router's load
balancers in the `nat_addresses` of the router's gateway patch port, resident on its cr-lrp
(northd, `nat-addresses=router`), which is where the router's pipeline load-balances traffic
from the provider network. model/fips.py reads those entries and asks this index what an
address is: a VIP (exposed only while some load balancer lists a member for it) or a plain
floating IP.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ovnbgp.model.claims import clip
from ovnbgp.model.records import IPAddress, LoadBalancerRow, Problem


@dataclass(frozen=True, order=True)
class VipRef:
    """One load balancer that lists an address as a VIP, with its number of members."""

    lb: str  # Load_Balancer uuid
    name: str
    members: int


LB_PORT_PREFIX = "lb "  # a Problem's `port` for a Load_Balancer row: "lb NAME"
WAITING_MEMBERS = "lb-members"  # a VIP OVN delivers here, waiting for a member


class LbParseError(ValueError):
    pass


def parse_endpoint(text: str) -> IPAddress:
    """The IP of "IP", "IP:PORT", "[IPv6]:PORT" or a bare IPv6 address (OVN's vips syntax)."""
    text = text.strip()
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not (rest.startswith(":") and rest[1:].isdigit())):
            raise LbParseError(f"bad endpoint {text!r}")
    elif text.count(":") == 1:
        host, port = text.split(":")
        if not port.isdigit():
            raise LbParseError(f"bad port in {text!r}")
    else:
        host = text
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        raise LbParseError(f"bad IP address in {text!r}") from None


def lb_problem(row: LoadBalancerRow, reason: str, level: str = "warning", waiting: str = "") -> Problem:
    """A Problem naming the Load_Balancer row (its uuid in `row`, `lb NAME` as the port)."""
    return Problem(clip(row.uuid, 64), clip(f"{LB_PORT_PREFIX}{row.name}", 200),
                   clip(f"load balancer {row.name}: {reason}"), level, waiting)


def row_vips(row: LoadBalancerRow, problems: list[Problem]) -> dict[IPAddress, int]:
    """VIP address -> members (backends that parse) of one row; malformed entries are
    skipped with a warning naming the row (a row none of whose VIPs parse lists nothing)."""
    out: dict[IPAddress, int] = {}
    for key in sorted(row.vips):
        try:
            vip = parse_endpoint(key)
        except LbParseError as e:
            problems.append(lb_problem(row, f"vips key skipped: {e}"))
            continue
        members = 0
        for backend in (b for b in row.vips[key].split(",") if b.strip()):
            try:
                ip = parse_endpoint(backend)
            except LbParseError as e:
                problems.append(lb_problem(row, f"vip {key}: backend skipped: {e}"))
                continue
            if ip.version != vip.version:
                problems.append(lb_problem(row, f"vip {key}: backend skipped: {backend!r} is not "
                                           f"IPv{vip.version}"))
                continue
            members += 1
        out[vip] = out.get(vip, 0) + members
    return out


class LbIndex:
    """Every VIP address of the Load_Balancer rows, with the rows listing it."""

    def __init__(self, rows: Mapping[str, LoadBalancerRow] | Iterable[LoadBalancerRow] = ()):
        values = rows.values() if isinstance(rows, Mapping) else rows
        self.problems: list[Problem] = []
        self.vips: dict[IPAddress, tuple[VipRef, ...]] = {}
        by_ip: dict[IPAddress, list[VipRef]] = {}
        for row in sorted(values, key=lambda r: r.uuid):
            for ip, members in row_vips(row, self.problems).items():
                by_ip.setdefault(ip, []).append(VipRef(row.uuid, row.name, members))
        self.vips = {ip: tuple(sorted(refs)) for ip, refs in by_ip.items()}

    def refs(self, ip: IPAddress) -> tuple[VipRef, ...]:
        return self.vips.get(ip, ())

    def serving(self, ip: IPAddress) -> VipRef | None:
        """The first load balancer (by uuid) that lists a member for VIP `ip`, if any."""
        return next((r for r in self.refs(ip) if r.members), None)


EMPTY_INDEX = LbIndex()

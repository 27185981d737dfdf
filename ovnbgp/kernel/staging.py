"""Stages of a large apply: steering and exposures interleaved, so the first prefixes are
advertised while the rest is still being added.

apply() adds all steering (step 6) before any exposure (step 8). On a cold start with N
exposures that puts the first address on the dummy, and so the first prefix into BGP, only
after every rule or route is in: ~N rule insertions, each walking the kernel's rule list. The
invariant that matters is per exposure: its address goes on the dummy only after every
steering object that could carry its traffic is in place. So a large plan is cut into
stages: a slice of the steering list (kept in its order: device routes before the gateway
routes that need them, catch-all rule deletions before the rules they would match), then
the addresses whose steering is complete by the end of that slice.

An address needs (conservatively) every steering op whose destination overlaps it:
- a host address (/32, /128): ops for that host, ops for a network that contains it, and
  ops without a destination (a rule for the whole family);
- any other address (a tenant subnet on the dummy): the whole steering list, as before.
Pure: no I/O.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from ovnbgp.kernel.objects import AddrOp, NeighOp, RouteOp, RuleOp, SteeringOp
from ovnbgp.model.records import IPNetwork

STAGE_STEERING = 500  # steering ops per stage (well under a second in UML at 10k)
FIRST_STAGE_STEERING = 50  # the first stage's: the first prefixes go out sooner


def steering_scope(op: SteeringOp) -> tuple[int | None, IPNetwork | None, int]:
    """(table, destination, family) a steering op is about; destination None: all."""
    if isinstance(op, RuleOp):
        return op.rule.table, op.rule.dst, op.rule.family
    if isinstance(op, RouteOp):
        return op.route.table, op.route.dst, op.route.family
    assert isinstance(op, NeighOp)
    return op.table, ipaddress.ip_network(op.neigh.ip), op.neigh.ip.version


def needed_position(steering: Sequence[SteeringOp], addrs: Sequence[AddrOp]) -> list[int]:
    """For each address op, the index of the last steering op it waits for (-1: none)."""
    host: dict[IPNetwork, int] = {}
    nets: dict[tuple[int, int], dict[IPNetwork, int]] = {}
    whole: dict[int, int] = {}  # family -> last op without a destination
    for i, sop in enumerate(steering):
        _table, dst, family = steering_scope(sop)
        if dst is None:
            whole[family] = i
        elif dst.prefixlen == dst.max_prefixlen:
            host[dst] = i
        else:
            nets.setdefault((dst.version, dst.prefixlen), {})[dst] = i
    last = len(steering) - 1
    out = []
    for op in addrs:
        net = op.address.network
        if net.prefixlen != net.max_prefixlen:
            out.append(last)
            continue
        need = max(whole.get(net.version, -1), host.get(net, -1))
        for (version, plen), by_net in nets.items():
            if version == net.version:
                need = max(need, by_net.get(net.supernet(new_prefix=plen), -1))
        out.append(need)
    return out


def catch_alls_first(steering: Sequence[SteeringOp]) -> list[SteeringOp]:
    """The steering list with the rules without a destination ("table" steering's one rule
    per bridge table, and the deletions that must precede it) moved to the front, in their
    order. Safe: a lookup in a table that has no route for the destination yet falls
    through to the next rule, so the rule changes nothing until the routes are in; and every
    host address needs it, so at the end it would hold them all back."""
    whole = [op for op in steering if isinstance(op, RuleOp) and op.rule.dst is None]
    rest = [op for op in steering if not (isinstance(op, RuleOp) and op.rule.dst is None)]
    return whole + rest


def stages(steering: Sequence[SteeringOp], addrs: Sequence[AddrOp],
           size: int | None = None) -> list[tuple[list[SteeringOp], list[AddrOp]]]:
    """The plan's steering adds (catch_alls_first) and exposures as stages of (steering
    slice, addresses whose steering is all in once that slice is); every op appears once.
    Slices of `size` ops; by default the first has FIRST_STAGE_STEERING, the others
    STAGE_STEERING."""
    first = size or FIRST_STAGE_STEERING
    size = size or STAGE_STEERING
    steering = catch_alls_first(steering)
    need = needed_position(steering, addrs)
    ready = sorted(range(len(addrs)), key=lambda k: need[k])  # stable: keeps address order
    out: list[tuple[list[SteeringOp], list[AddrOp]]] = []
    k = 0
    start = 0
    while True:
        end = min(start + (first if start == 0 else size), len(steering))
        batch = []
        while k < len(ready) and need[ready[k]] < end:
            batch.append(addrs[ready[k]])
            k += 1
        out.append((list(steering[start:end]), batch))
        if end >= len(steering):
            break
        start = end
    return out  # every address placed: each need is below len(steering), the last end

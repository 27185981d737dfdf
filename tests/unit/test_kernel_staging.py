"""Stages of a large apply (kernel/staging.py): steering and exposures interleaved, each
address after every steering op that overlaps it."""

from __future__ import annotations

import ipaddress

import pytest

from ovnbgp.kernel.diff import overlaps, plan
from ovnbgp.kernel.staging import catch_alls_first, stages, steering_scope
from tests.unit.test_kernel_diff import S, desired, node


def hosts(n: int) -> list[str]:
    v4 = [f"172.24.{4 + i // 250}.{1 + i % 250}/32" for i in range(n // 2)]
    v6 = [f"2001:db8::{i + 1:x}/128" for i in range(n - n // 2)]
    return v4 + v6


@pytest.mark.parametrize("steering", ["rules", "table"])
def test_each_address_waits_for_every_steering_op_that_overlaps_it(steering):
    p = plan(desired(hosts(600), steering=steering), node("br-ex"), S)
    assert len(p.dummy_add) > 500 and p.steer_add
    out = stages(p.steer_add, p.dummy_add, size=50)
    order = catch_alls_first(p.steer_add)
    assert [op for s, _ in out for op in s] == order  # the steering order is kept
    placed = [op for _, a in out for op in a]
    assert sorted(placed, key=str) == sorted(p.dummy_add, key=str)  # each address once
    done = 0
    for steer, addrs in out:
        done += len(steer)
        for a in addrs:
            net = a.address.network
            late = [op for op in order[done:] if overlaps(steering_scope(op)[1], net)]
            assert not late, (a, late[:2])
    # the first exposures do not wait for the whole steering list
    first = next(i for i, (_, a) in enumerate(out) if a)
    assert first < len(out) // 2, [len(a) for _, a in out]


def test_a_subnet_on_the_dummy_waits_for_all_steering():
    p = plan(desired(hosts(100)), node("br-ex"), S)
    out = stages(p.steer_add, p.dummy_add, size=10)
    subnet = ipaddress.ip_interface("10.0.0.0/26")
    assert subnet in {a.address for a in out[-1][1]}


def test_no_steering_to_add_is_one_stage():
    d = desired(hosts(20))
    p = plan(d, node("br-ex"), S)
    out = stages([], p.dummy_add)
    assert out == [([], list(p.dummy_add))]


def test_table_steering_rules_go_first_in_their_order():
    p = plan(desired(hosts(10), steering="table"), node("br-ex"), S)
    order = catch_alls_first(p.steer_add)
    whole = [op for op in order if steering_scope(op)[1] is None]
    assert len(whole) == 2 and order[:2] == whole
    assert order[2:] == [op for op in p.steer_add if op not in whole]


def test_the_first_stage_is_smaller_so_the_first_prefixes_go_out_sooner():
    from ovnbgp.kernel.staging import FIRST_STAGE_STEERING, STAGE_STEERING

    p = plan(desired(hosts(1400)), node("br-ex"), S)
    assert len(p.steer_add) > FIRST_STAGE_STEERING + STAGE_STEERING
    out = stages(p.steer_add, p.dummy_add)
    sizes = [len(s) for s, _ in out]
    assert sizes[0] == FIRST_STAGE_STEERING < STAGE_STEERING
    assert all(n == STAGE_STEERING for n in sizes[1:-1]) and 0 < sizes[-1] <= STAGE_STEERING
    assert out[0][1], "the first stage already exposes addresses"
    assert [len(s) for s, _ in stages(p.steer_add, p.dummy_add, size=100)][:2] == [100, 100]

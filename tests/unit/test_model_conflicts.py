"""Several rows claiming one prefix (issue 17 item 3): the owner keeps it.

A second port whose `mac` names an IP already exposed for another port must not take that
exposure away: the newcomer is refused with a warning naming both rows, and the prefix is
handed over when the owner's claim goes. A port migrating between chassis is one row: never
a conflict.
"""

from __future__ import annotations

import ipaddress
import logging

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ovnbgp.config import Config
from ovnbgp.model.cache import Changes, ModelCache, desired_state
from tests.unit.sb_builder import SbBuilder, uid
from tests.unit.test_model_incremental import CONFIGS, VMS, World, ops

P10 = ipaddress.ip_network("172.24.4.10/32")
ENTRY = {"a": "fa:16:3e:00:00:01 172.24.4.10", "b": "fa:16:3e:00:00:02 172.24.4.10",
         "c": "fa:16:3e:00:00:03 172.24.4.10 172.24.4.11"}

# Many claims on few prefixes: VMs rewritten among the same three entries, bound here or not.
clashing = st.tuples(st.just("vm"), st.sampled_from(VMS[:4]), st.sampled_from(["public", "p2"]),
                     st.lists(st.sampled_from(sorted(ENTRY.values())), min_size=1, max_size=2)
                     .map(tuple), st.sampled_from(["ch1", "ch1", "ch2", None]),
                     st.sampled_from([True, True, False]))


@pytest.mark.parametrize("cfg", CONFIGS, ids=["rules", "table", "no-wait"])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(st.one_of(clashing, clashing, ops), min_size=1, max_size=25))
def test_a_conflicting_claim_never_removes_an_established_exposure(cfg, steps):
    world = World()
    cache = ModelCache(world.b.snapshot(), cfg, log_problems=False)
    for op in steps:
        before = cache.state
        got = cache.update(world.apply(op))
        exposed = {(e.prefix, e.row) for e in got.exposures}
        for e in before.exposures:
            if e.row in cache.claimants(e.prefix):  # the owner still claims it: it keeps it
                assert (e.prefix, e.row) in exposed, (op, e)
        for prefix in {e.prefix for e in before.exposures} | {e.prefix for e in got.exposures}:
            if cache.claimants(prefix):  # claimed at all: exposed (handed over, not dropped)
                assert prefix in got.dummy_prefixes(), (op, prefix)
        # the full computation given the same history agrees (tests/unit/test_model_incremental.py)
        assert got == desired_state(world.b.snapshot(), cfg, established=before.exposures), op


def _world() -> tuple[SbBuilder, ModelCache]:
    b = SbBuilder()
    b.provider_network("public")
    b.vm("owner", uid("dp:public"), ENTRY["a"], chassis="ch1")
    return b, ModelCache(b.snapshot(), Config())


def _update(b: SbBuilder, cache: ModelCache, *ports: str):
    rows = {uid("pb:" + p): b.rows.get(uid("pb:" + p)) for p in ports}
    return {str(e.prefix): e.port for e in cache.update(Changes(port_bindings=rows)).exposures}


def test_newcomer_is_refused_with_both_rows_named_and_owner_hands_over(caplog):
    caplog.set_level(logging.INFO, logger="ovnbgp.model")
    b, cache = _world()
    assert {str(e.prefix): e.port for e in cache.state.exposures} == {"172.24.4.10/32": "owner"}
    b.vm("intruder", uid("dp:public"), ENTRY["b"], chassis="ch1")
    assert _update(b, cache, "intruder") == {"172.24.4.10/32": "owner"}
    owner, intruder = uid("pb:owner"), uid("pb:intruder")
    warned = [r for r in caplog.records if r.levelno == logging.WARNING
              and "claimed by several ports" in r.getMessage()]
    assert len(warned) == 1
    assert owner in warned[0].getMessage() and intruder in warned[0].getMessage()
    assert "port owner" in warned[0].getMessage() and "port intruder" in warned[0].getMessage()
    # the intruder appears again (any change): still refused, not logged twice
    b.set("intruder", up=True, mac=(ENTRY["b"], "unknown"))
    assert _update(b, cache, "intruder") == {"172.24.4.10/32": "owner"}
    # the owner goes: clean hand-over, said once
    caplog.clear()
    b.remove("owner")
    assert _update(b, cache, "owner") == {"172.24.4.10/32": "intruder"}
    handed = [r.getMessage() for r in caplog.records if "handed over" in r.getMessage()]
    assert len(handed) == 1 and owner in handed[0] and intruder in handed[0]
    assert not {p for p in cache.state.problems if "claimed by several" in p.reason}


def test_owner_survives_a_rebuild_and_a_full_resync():
    b, cache = _world()
    b.vm("intruder", uid("dp:public"), ENTRY["b"], chassis="ch1")
    _update(b, cache, "intruder")
    b.chassis = {"ch1", "ch2", "ch3"}  # a Chassis change rebuilds the model
    s = cache.update(Changes(chassis_names=frozenset(b.chassis)))
    assert {e.port for e in s.exposures if e.prefix == P10} == {"owner"}
    s = cache.resync(b.snapshot())
    assert {e.port for e in s.exposures if e.prefix == P10} == {"owner"}


def test_a_port_migrating_between_chassis_is_no_conflict(caplog):
    caplog.set_level(logging.DEBUG, logger="ovnbgp.model")
    b, cache = _world()
    for ch in ("ch2", "ch1", None, "ch1"):
        b.set("owner", chassis=ch)
        got = _update(b, cache, "owner")
        assert got == ({"172.24.4.10/32": "owner"} if ch == "ch1" else {})
    assert not [r for r in caplog.records if "several" in r.getMessage() or "handed" in r.getMessage()]


def test_contested_owner_survives_a_restart_through_owners():
    """A restart builds a new cache: without the saved owners the lowest uuid would win, which
    may be the intruder; with them (agent/owners.py) the owner keeps the prefix."""
    b, cache = _world()
    b.vm("intruder", uid("dp:public"), ENTRY["b"], chassis="ch1")
    _update(b, cache, "intruder")
    owners = cache.contested_owners()
    assert owners == {P10: (uid("pb:owner"), "owner")}
    fresh = ModelCache(b.snapshot(), Config(), owners=owners)
    assert {e.port for e in fresh.state.exposures if e.prefix == P10} == {"owner"}
    # the rule alone would move it: the intruder has the lower uuid (so the test is not vacuous)
    assert uid("pb:intruder") < uid("pb:owner")
    by_rule = ModelCache(b.snapshot(), Config())
    assert {e.port for e in by_rule.state.exposures if e.prefix == P10} == {"intruder"}
    # no conflict any more: nothing left to remember
    b.remove("intruder")
    _update(b, cache, "intruder")
    assert cache.contested_owners() == {}

"""KindSet and DesiredState.changes(): the per-event change without whole-set copies."""

from __future__ import annotations

import dataclasses

from bench.bench_model import build
from ovnbgp.config import Config
from ovnbgp.model.cache import Changes, ModelCache, desired_state
from ovnbgp.model.kindset import KindSet, delta
from tests.unit.sb_builder import uid


def _cache():
    b = build(60, 3)
    return b, ModelCache(b.snapshot(), Config(), log_problems=False)


def _bind(b, name, ip):
    u = uid(f"pb:{name}")
    return u, dataclasses.replace(b.row("vm1"), uuid=u, logical_port=name, mac=(f"fa:16:3e:aa:00:01 {ip}",),
                                  chassis="ch1")


def test_states_are_kindsets_and_old_states_keep_their_content():
    b, cache = _cache()
    s0 = cache.state
    assert isinstance(s0.exposures, KindSet)
    frozen0 = frozenset(s0.exposures)  # materialise the first one now
    s1 = cache.update(Changes(port_bindings=dict([_bind(b, "n1", "198.51.100.1")])))
    s2 = cache.update(Changes(port_bindings=dict([_bind(b, "n2", "198.51.100.2")])))
    u1, _row = _bind(b, "n1", "198.51.100.1")
    s3 = cache.update(Changes(port_bindings={u1: None}))
    # s1 and s2 were never looked at: they materialise from their successors
    assert frozenset(s0.exposures) == frozen0
    assert len(s1.exposures) == len(frozen0) + 1
    assert len(s2.exposures) == len(frozen0) + 2
    assert len(s3.exposures) == len(frozen0) + 1
    assert s3 == desired_state(cache.snapshot(), Config(), established=s2.exposures)
    assert {str(e.prefix) for e in s2.exposures - s0.exposures} == {"198.51.100.1/32", "198.51.100.2/32"}


def test_changes_match_set_differences_across_several_states():
    b, cache = _cache()
    s0 = cache.state
    u1, r1 = _bind(b, "n1", "198.51.100.1")
    s1 = cache.update(Changes(port_bindings={u1: r1}))
    s2 = cache.update(Changes(port_bindings={u1: None}))  # back: no net change from s0
    u2, r2 = _bind(b, "n2", "198.51.100.2")
    s3 = cache.update(Changes(port_bindings={u2: r2}))
    for old, new in ((s0, s1), (s1, s2), (s0, s2), (s0, s3), (s1, s3), (s3, s3)):
        for kind in ("exposures", "rules", "routes", "neighbours"):
            gone, came = new.changes(old, kind)
            assert (set(gone), set(came)) == (set(getattr(old, kind)) - set(getattr(new, kind)),
                                              set(getattr(new, kind)) - set(getattr(old, kind)))
    assert new.changes(old, "exposures") == (frozenset(), frozenset())
    assert delta(s3.exposures, s0.exposures) is None  # backwards: not on the chain


def test_changes_fall_back_to_differences_between_caches():
    b, cache = _cache()
    other = ModelCache(b.snapshot(), Config(), log_problems=False).state
    u1, r1 = _bind(b, "n1", "198.51.100.1")
    new = cache.update(Changes(port_bindings={u1: r1}))
    gone, came = new.changes(other, "exposures")
    assert not gone and {str(e.prefix) for e in came} == {"198.51.100.1/32"}


def test_kindset_behaves_like_a_frozenset():
    b, cache = _cache()
    s = cache.state
    f = frozenset(s.exposures)
    assert s.exposures == f and f == s.exposures and hash(s.exposures) == hash(f)
    e = next(iter(f))
    assert e in s.exposures and (f - s.exposures) == frozenset() and (s.exposures - f) == frozenset()
    assert (s.exposures | f) == f and (f & s.exposures) == f and not (s.exposures ^ f)
    assert s.exposures <= f and bool(s.exposures)

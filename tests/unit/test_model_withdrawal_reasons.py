"""Issue 17 item 7: an exposure that disappears because data became unusable says which row
and why, once, truncated; a port bound here that waits for up=true says so at info level."""

from __future__ import annotations

import dataclasses
import logging

from ovnbgp.config import Config
from ovnbgp.model.cache import Changes, ModelCache
from tests.unit.sb_builder import SbBuilder, uid

GW_MAC = "fa:16:3e:b5:a6:77"


def world() -> SbBuilder:
    b = SbBuilder()
    pub = b.provider_network("public")
    r1 = b.router("r1", pub, GW_MAC, "172.24.4.146/24", chassis="ch1")
    b.router_interface("r1", r1, b.tenant_network("t1"), "t1", "fa:16:3e:00:01:01", "10.0.0.1/26")
    b.vm("tvm1", b.tenant_network("t1"), "fa:16:3e:00:02:01 10.0.0.5", chassis="ch2")
    b.vm("pvm1", pub, "fa:16:3e:00:00:01 172.24.4.10", chassis="ch1")
    return b


def change(b: SbBuilder, cache: ModelCache, port: str, **kw):
    row = b.set(port, **kw)
    return cache.update(Changes(port_bindings={row.uuid: row}))


def warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_garbage_distributed_port_warns_naming_the_crlrp_and_what_went(caplog):
    b = world()
    cache = ModelCache(b.snapshot(), Config())
    assert {str(e.prefix) for e in cache.state.exposures} == {
        "172.24.4.146/32", "10.0.0.0/26", "10.0.0.5/32", "172.24.4.10/32"}
    caplog.set_level(logging.DEBUG, logger="ovnbgp.model")
    cr = b.row("cr-lrp-r1-gw")
    garbage = "x" * 10_000
    s = change(b, cache, "cr-lrp-r1-gw", options={**cr.options, "distributed-port": garbage})
    assert {str(e.prefix) for e in s.exposures} == {"172.24.4.10/32"}
    warned = warnings(caplog)
    assert len(warned) == 1, warned
    w = warned[0]
    assert w.startswith("withdrawn ")
    for prefix in ("172.24.4.146/32", "10.0.0.0/26", "10.0.0.5/32"):
        assert prefix in w
    assert uid("pb:cr-lrp-r1-gw") in w and "port cr-lrp-r1-gw" in w
    assert "distributed gateway port" in w
    # again (nothing new): said once
    caplog.clear()
    s = change(b, cache, "cr-lrp-r1-gw", up=False)
    assert not warnings(caplog)


def test_a_huge_bad_value_is_truncated_in_every_line(caplog):
    b = world()
    cache = ModelCache(b.snapshot(), Config())
    caplog.set_level(logging.DEBUG, logger="ovnbgp.model")
    huge = "fa:16:3e:00:00:01 " + "9" * 10_000
    s = change(b, cache, "pvm1", mac=(huge,))
    assert "172.24.4.10/32" not in {str(e.prefix) for e in s.exposures}
    assert caplog.records
    assert all(len(r.getMessage()) < 1000 for r in caplog.records), \
        max(len(r.getMessage()) for r in caplog.records)
    warned = warnings(caplog)
    assert len(warned) == 1 and "172.24.4.10/32" in warned[0] and uid("pb:pvm1") in warned[0]
    assert "…" in warned[0]
    assert all(len(p.reason) < 400 for p in s.problems)


def test_unbinding_is_no_data_problem(caplog):
    b = world()
    cache = ModelCache(b.snapshot(), Config())
    caplog.set_level(logging.DEBUG, logger="ovnbgp.model")
    change(b, cache, "pvm1", chassis="ch2")
    change(b, cache, "cr-lrp-r1-gw", chassis="ch2")
    assert not cache.state.exposures
    assert not warnings(caplog)


def test_bound_here_waiting_for_up_is_logged_once_at_info_and_counted(caplog):
    b = world()
    cache = ModelCache(b.snapshot(), Config())
    caplog.set_level(logging.DEBUG, logger="ovnbgp.model")
    s = change(b, cache, "pvm1", up=False)
    assert "172.24.4.10/32" not in {str(e.prefix) for e in s.exposures}
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert infos == [f"port pvm1 (Port_Binding {uid('pb:pvm1')}) bound here, waiting for up=true"]
    assert not warnings(caplog)  # waiting is not a data problem
    assert s.waiting_counts() == {"port-up": 1}
    caplog.clear()
    s = change(b, cache, "pvm1", mac=("fa:16:3e:00:00:01 172.24.4.10", "unknown"))
    assert not [r for r in caplog.records if "waiting" in r.getMessage()]  # once
    s = change(b, cache, "pvm1", up=True)
    assert s.waiting_counts() == {}
    # bound elsewhere with up=false: not waiting here
    s = change(b, cache, "pvm1", chassis="ch2", up=False)
    assert s.waiting_counts() == {}


def test_problem_rows_and_ports_are_clipped_too():
    b = world()
    row = b.row("pvm1")
    b.rows[row.uuid] = dataclasses.replace(row, logical_port="p" * 5000, mac=("zz",))
    s = ModelCache(b.snapshot(), Config(), log_problems=False).state
    assert all(len(p.port) < 300 for p in s.problems)


def test_waiting_counts_kept_as_problems_come_and_go_equal_a_count_of_the_problems():
    """The model keeps the waiting counts incrementally (no walk over every problem per
    reconcile); they always equal a count over the state's problems."""
    from ovnbgp.model.records import DesiredState

    b = world()
    b.vm("pvm2", b.provider_network("public"), "fa:16:3e:00:00:02 172.24.4.11", chassis="ch1")
    cache = ModelCache(b.snapshot(), Config(), log_problems=False)

    def walked(s) -> dict[str, int]:
        return DesiredState(problems=s.problems).waiting_counts()

    steps = [("pvm1", {"up": False}), ("pvm2", {"up": False}), ("pvm1", {"up": True}),
             ("pvm2", {"mac": ("zz",)}), ("pvm2", {"up": True}), ("pvm1", {"up": False})]
    for port, kw in steps:
        s = change(b, cache, port, **kw)
        assert s.waiting is not None and s.waiting_counts() == walked(s), (port, kw)
    assert s.waiting_counts() == {"port-up": 1}
    s = change(b, cache, "pvm2", mac=("fa:16:3e:00:00:02 172.24.4.11",))
    assert s.waiting_counts() == walked(s) == {"port-up": 1}
    before = s.problems
    s = change(b, cache, "pvm2", mac=("fa:16:3e:00:00:02 172.24.4.12",))  # no problem changes
    assert s.problems is before  # the frozen set is reused, not copied again
    rebuilt = ModelCache(b.snapshot(), Config(), log_problems=False).state
    assert rebuilt.waiting_counts() == s.waiting_counts() == walked(rebuilt)

"""The cloud benchmark's Southbound (bench/cloud/topology.py) at a tiny size: its local workload
is the 160 exposures the bench claims, from the whole table and from the agent's condition, so
the benchmark cannot silently measure an empty model."""

from __future__ import annotations

import pytest

from bench.cloud.topology import EXPOSURES, THIS, CloudSb
from ovnbgp.config import Config
from ovnbgp.model.cache import desired_state
from ovnbgp.model.interest import conditioned
from ovnbgp.model.records import BridgeInfo, LocalOvs

LOCAL = LocalOvs(system_id=THIS, bridge_mappings={"public": "br-ex"},
                 bridges={"br-ex": BridgeInfo("br-ex", "aa:bb:cc:00:00:01",
                                              {"patch-provnet-public-to-br-int": 1})})


@pytest.mark.parametrize("n", [200, 3000])
def test_the_local_workload_is_160_exposures_whole_table_or_conditioned(n):
    sb = CloudSb(n).build()
    assert len(sb.pbs) == n and len(sb.expected) == EXPOSURES
    assert len(sb.chassis) == max(10, n // 100)
    snap = sb.snapshot(LOCAL)
    state = desired_state(snap, Config())
    assert {str(e.prefix) for e in state.exposures} == sb.expected
    assert not [p for p in state.problems if p.level not in ("debug", "info")]
    small = conditioned(snap)
    assert len(small.port_bindings) < n // 2 or n < 1000
    assert desired_state(small, Config()) == state


def test_transactions_insert_every_row_once_with_unique_tunnel_keys():
    sb = CloudSb(1000).build()
    ops = [op for txn in sb.transactions() for op in txn]
    pbs = [op for op in ops if op["table"] == "Port_Binding"]
    assert len(pbs) == 1000 and len({op["uuid"] for op in pbs}) == 1000
    keys = {(op["row"]["datapath"][1], op["row"]["tunnel_key"]) for op in pbs}
    assert len(keys) == 1000 and all(0 < k < 32768 for _, k in keys)
    assert len({op["row"]["logical_port"] for op in pbs}) == 1000

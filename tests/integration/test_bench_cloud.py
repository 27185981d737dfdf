"""The cloud benchmark end to end at a tiny size (real ovsdb-servers, the agent's real reader in
a subprocess): it measures a model with the 160 local exposures, the agent receives only its
rows and nothing of a remote change, and the old whole-table reader sees everything."""

from __future__ import annotations

from bench.bench_cloud import one_size


def test_cloud_bench_measures_the_local_workload(tmp_path):
    res = one_size(300, tmp_path)  # raises SystemExit unless both readers have the 160 exposures
    agent, before = res["agent"], res["before"]
    assert agent["exposures"] == before["exposures"] == 160
    assert agent["rows"] < before["rows"] == 300
    assert agent["remote_change"]["bytes"] == 0 and agent["remote_change"]["updates"] == 0
    assert before["remote_change"]["bytes"] > 0 and before["remote_change"]["updates"] > 0
    assert 0 < agent["bytes"] < before["bytes"]
    assert res["floor"]["selects"]["bytes"] < res["floor"]["dump"]["bytes"]

"""The node lab's text builders (tests/harness/node_lab.py): the agent config it renders loads
with ovnbgp's own loader and carries each option the vm tests and the benchmark pass; the leaf
config has the lines each caller asks for. No daemons: the lab's parts are stand-ins."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from ovnbgp import config
from tests.harness.node_lab import LEAF_AS, LEAF_IP, NODE_AS, NODE_IP, NodeLab, leaf_config


def _lab(tmp_path: Path) -> NodeLab:
    lab = NodeLab(tmp_path / "lab", SimpleNamespace(sb_remote="unix:/run/x/ovnsb_db.sock"))
    lab.work.mkdir()
    lab.ovs = SimpleNamespace(remote="unix:/run/y/db.sock")
    lab.frr = SimpleNamespace(vty_dir=Path("/run/frr-node"),
                              config_path=Path("/run/frr-node/frr.conf"))
    return lab


def test_agent_config_defaults_leave_options_to_the_agent(tmp_path):
    lab = _lab(tmp_path)
    text = lab.agent_config()
    for key in ("steering", "debounce", "resync_interval", "format"):
        assert f"{key} =" not in text, key
    cfg = config.loads(text)
    assert cfg.ovn.sb_remotes == ("unix:/run/x/ovnsb_db.sock",)
    assert cfg.ovn.ovs_remote == "unix:/run/y/db.sock"
    assert cfg.bgp.asn == NODE_AS and str(cfg.bgp.router_id) == NODE_IP
    assert [(str(p.address), p.remote_as) for p in cfg.bgp.peers] == [(LEAF_IP, LEAF_AS)]
    assert cfg.log.level == "info"
    # The agent's files under the lab's work dir; the snippet written there.
    assert text.count(str(lab.work / "rt_tables.conf")) == 1
    assert (lab.work / "snippet.conf").read_text().startswith(f"router bgp {NODE_AS}\n")


def test_agent_config_options_and_workdir(tmp_path):
    lab = _lab(tmp_path)
    workdir = tmp_path / "agent"
    text = lab.agent_config(workdir, steering="table", debounce=0.05, resync_interval=20,
                            log_level="debug", log_format="json")
    cfg = config.loads(text)
    assert cfg.kernel.steering == "table"
    assert cfg.agent.debounce == 0.05 and cfg.agent.resync_interval == 20
    assert (cfg.log.level, cfg.log.format) == ("debug", "json")
    assert Path(cfg.agent.state_dir) == workdir / "state"
    assert Path(cfg.kernel.rt_tables_file) == workdir / "rt_tables.conf"
    assert str(lab.work / "rt_tables.conf") not in text


def test_leaf_config_variants():
    plain = leaf_config()
    assert f" neighbor {NODE_IP} remote-as {NODE_AS}\n" in plain
    assert f"  neighbor {NODE_IP} activate\n" in plain and "debug bgp" not in plain
    assert "log stdout informational\n" in plain
    two = leaf_config(log_level="warnings", neighbours=(NODE_IP, "100.66.0.5"), ipv6=False)
    assert " neighbor 100.66.0.5 timers connect 1\n" in two
    assert "address-family ipv6" not in two and "log stdout warnings\n" in two
    debug = leaf_config(log_level="debugging", debug_updates_in=True)
    assert "log stdout debugging\ndebug bgp updates in\n!\n" in debug
    assert debug.endswith("exit-address-family\n!\n")

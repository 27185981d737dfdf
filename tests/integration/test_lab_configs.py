"""Every FRR config the lab produces parses with FRR's own parser (`vtysh -C`, a dry run):
the fabric routers' configs and each node's config as ovnbgp renders it with the lab's
snippet. (tests/vm/test_lab_fabric.py runs them for real; this catches a bad line early.)"""

from __future__ import annotations

import pytest

from ovnbgp import config as config_mod
from ovnbgp.frr import render as frr_render
from tests.harness.proc import run
from tests.lab.topology import labtool, load

TOPO = load()


def _vtysh_check(tmp_path, text: str):
    conf_dir = tmp_path / "conf"
    conf_dir.mkdir(exist_ok=True)
    (conf_dir / "vtysh.conf").write_text("")
    path = tmp_path / "frr.conf"
    path.write_text(text)
    return run(["vtysh", "--config_dir", str(conf_dir), "-C", "-f", str(path)], check=False)


@pytest.mark.parametrize("host", [h.name for h in TOPO.by_role("spine") + TOPO.by_role("leaf")])
def test_fabric_router_config_parses(tmp_path, host):
    cp = _vtysh_check(tmp_path, labtool.frr_config(TOPO, host))
    assert cp.returncode == 0, cp.stdout + cp.stderr


@pytest.mark.parametrize("host", [h.name for h in TOPO.by_role("node")])
def test_node_config_rendered_by_ovnbgp_with_the_lab_snippet_parses(tmp_path, host):
    snippet = tmp_path / "frr-snippet.conf"
    snippet.write_text(labtool.frr_snippet(TOPO, host))
    cfg = config_mod.loads(labtool.ovnbgp_config(TOPO, host, sb_remote=TOPO.sb_remote_tcp(),
                                                 snippet_file=str(snippet)))
    text = frr_render.render_config(cfg)
    assert f"network {TOPO.host(host).loopback}/32" in text
    cp = _vtysh_check(tmp_path, text)
    assert cp.returncode == 0, cp.stdout + cp.stderr


def test_the_check_catches_a_bad_line(tmp_path):
    cp = _vtysh_check(tmp_path, labtool.frr_config(TOPO, "spine")
                      + "router bgp 65000\n neighbor 1.2.3.4 remote-as banana\n")
    assert cp.returncode != 0

"""vagrant/Vagrantfile: real Vagrant with vagrant-libvirt accepts it (`vagrant validate`), it
defines one libvirt machine per host of vagrant/topology.json, and its fabric links (libvirt
UDP tunnels) join exactly the hosts topology.json links: every node dual-homed to both leaves
of its rack. Needs vagrant and vagrant-libvirt (scripts/install-deps installs them); no VM
is created."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.lab.topology import TOPOLOGY_FILE

REPO = Path(__file__).resolve().parents[2]
VAGRANT_DIR = REPO / "vagrant"
RECORDER = Path(__file__).parent / "data" / "vagrant_recorder.rb"
TOPOLOGY = json.loads(TOPOLOGY_FILE.read_text())


@pytest.fixture
def vagrant_env(tmp_path) -> dict[str, str]:
    """libvirt as the provider; Vagrant's state (.vagrant/, its home) in tmp_path."""
    return {**os.environ, "VAGRANT_DEFAULT_PROVIDER": "libvirt",
            "VAGRANT_DOTFILE_PATH": str(tmp_path / "dot"), "VAGRANT_HOME": str(tmp_path / "home"),
            "VAGRANT_CHECKPOINT_DISABLE": "1"}


def vagrant(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["vagrant", *args], cwd=VAGRANT_DIR, env=env, capture_output=True,
                          text=True, timeout=300)


def test_vagrant_validates_the_vagrantfile_with_libvirt(vagrant_env):
    cp = vagrant(vagrant_env, "validate")
    assert cp.returncode == 0 and "validated successfully" in cp.stdout, cp.stdout + cp.stderr


def test_vagrant_defines_one_libvirt_machine_per_host(vagrant_env):
    cp = vagrant(vagrant_env, "status", "--machine-readable")
    assert cp.returncode == 0, cp.stdout + cp.stderr
    providers = {}
    for line in cp.stdout.splitlines():
        fields = line.split(",")
        if len(fields) >= 4 and fields[2] == "provider-name":
            providers[fields[1]] = fields[3]
    assert providers == {name: "libvirt" for name in TOPOLOGY["hosts"]}


def fabric_links(machines: dict) -> set[frozenset]:
    """The host pairs the Vagrantfile's UDP tunnels join (one end's local port is the other
    end's remote port)."""
    ends = {}
    for name, networks in machines.items():
        for net in networks:
            if net.get("libvirt__tunnel_type") == "udp":
                ends[net["libvirt__tunnel_local_port"]] = (name, net["libvirt__tunnel_port"])
    links = set()
    for local, (name, remote) in ends.items():
        assert remote in ends and ends[remote][1] == local, f"{name}: tunnel {local}->{remote} has no other end"
        links.add(frozenset((name, ends[remote][0])))
    assert len(links) * 2 == len(ends)
    return links


def test_vagrantfile_builds_the_dual_homed_topology():
    cp = subprocess.run(["ruby", str(RECORDER), str(VAGRANT_DIR / "Vagrantfile")], cwd=VAGRANT_DIR,
                        capture_output=True, text=True, timeout=120)
    assert cp.returncode == 0, cp.stderr
    machines = json.loads(cp.stdout)
    assert set(machines) == set(TOPOLOGY["hosts"])
    links = fabric_links(machines)
    assert links == {frozenset((ln["a"], ln["b"])) for ln in TOPOLOGY["links"]}
    leaves = {h: v["rack"] for h, v in TOPOLOGY["hosts"].items() if v["role"] == "leaf"}
    for host, v in TOPOLOGY["hosts"].items():
        if v["role"] != "node":
            continue
        uplinks = {next(iter(link - {host})) for link in links if host in link}
        rack_leaves = {leaf for leaf, rack in leaves.items() if rack == v["rack"]}
        assert len(rack_leaves) == 2 and uplinks == rack_leaves, (host, uplinks)

"""Faults the agent must survive, on one shared topology (tests run in order, each leaves the
node converged):

  SIGKILL under load + restart, SB ovsdb-server down for 30 s (with changes made meanwhile),
  FRR restarted and bgpd killed alone, ovs-vswitchd restarted, 1,000 random bind/unbind/FIP/
  router attach/detach operations; and an operator's own rule, route and neighbour survive all.

The node (tests/harness/node_lab.py): a network namespace with a netdev OVS (br-int, br-ex and
the localnet patch pair), its FRR driven by the agent, and a leaf FRR in another namespace as
the BGP peer. Real OVN NB/SB/northd; ports are bound with `ovn-sbctl lsp-bind`
(tests/vm/test_agent_lab.py runs a real ovn-controller). "Withdrawn at the peer" is counted
from the leaf's own BGP log (`debug bgp updates in`: one "rcvd UPDATE about P -- withdrawn"
line per withdrawn prefix).

The test keeps its own model of the OVN world (`World`) and derives the expected exposures from
it independently of the agent's model; the agent's `ovnbgp desired`/`ovnbgp plan` are checked
against the node as well.
"""

from __future__ import annotations

import json
import random
import re
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest

from tests.harness.frr import wait_bgp_established
from tests.harness.neutron import (
    COOKIE,
    CRLRP_IP,
    FIPS,
    PROVIDER,
    TENANT_VMS,
    TENANTS,
    attach_cmds,
    build_topology,
    detach_cmds,
    fip_set_cmds,
    fip_unset_cmds,
    joined,
    pv_ips,
    pv_mac,
)
from tests.harness.neutron import NeutronNode as Node
from tests.harness.node_lab import KERNEL_MODULES, LEAF_IP, NODE_IP, leaf_config
from tests.harness.ovn import OvnCentral
from tests.harness.proc import run, wait_for

# The operator's own objects (not ovnbgp's): one in ovnbgp's bridge table at ovnbgp's rule
# priority, a route in that table and a permanent neighbour. They must survive everything.
OPERATOR_RULE = ("to", "198.18.7.7", "lookup", "200", "priority", "32000")
OPERATOR_ROUTE = ("198.18.5.0/24", "via", LEAF_IP, "dev", "to-leaf", "table", "200")
OPERATOR_NEIGH = ("100.66.0.3", "lladdr", "02:00:00:00:00:09", "dev", "to-leaf", "nud", "permanent")

# The leaf logs every prefix it receives, so withdrawals can be counted from its log.
LEAF_CONFIG = leaf_config(log_level="debugging", debug_updates_in=True)


@pytest.fixture(scope="module")
def node(modprobe, tmp_path_factory) -> Iterator[Node]:
    for mod in KERNEL_MODULES:
        modprobe(mod)
    work = tmp_path_factory.mktemp("faults")
    # /29: the operator's permanent neighbour (100.66.0.3) is on the node-leaf link.
    node = Node(work, OvnCentral(work / "ovn"), leaf_config=LEAF_CONFIG, name="fnode",
                leaf_name="fleaf", link_prefixlen=29)
    with node.running():
        # The operator's own objects, made before ovnbgp ever runs.
        (work / "rt_tables.conf").write_text("")
        node.ns.run("ip", "rule", "add", *OPERATOR_RULE)
        node.ns.run("ip", "route", "add", *OPERATOR_ROUTE)
        node.ns.run("ip", "neigh", "add", *OPERATOR_NEIGH)
        build_topology(node.ovn, node.world)
        node.start_agent(work / "agent", node.agent_config(debounce=0.1, resync_interval=30))
        node.wait_converged(timeout=90)
        yield node


@pytest.fixture(autouse=True)
def operator_objects_survive(node: Node):
    """After every fault: the operator's rule, route and neighbour are still there."""
    yield
    assert "198.18.7.7" in node.ip("rule", "show"), node.ip("rule", "show")
    assert "198.18.5.0/24" in node.ip("route", "show", "table", "200")
    assert "02:00:00:00:00:09" in node.ip("neigh", "show", "dev", "to-leaf")


def _json_lines(cp: subprocess.CompletedProcess) -> list:
    return json.loads(cp.stdout or "[]")


def test_converged_start_and_exact_state(node: Node):
    """The node after start-up: exactly the expected prefixes, steering as `ovnbgp desired`
    says (rules, routes, neighbours with ovnbgp's protocol, flows), the operator's objects in
    ovnbgp's table left alone."""
    node.wait_converged()
    desired = json.loads(node.agent.cli("desired", "--json", check=True).stdout)
    assert {e["prefix"] for e in desired["exposures"]} == node.world.expected()
    rules = [r for fam in ("-4", "-6") for r in _json_lines(node.ns.run("ip", "-j", fam, "rule", "show"))
             if str(r.get("protocol")) == "240"]
    assert len(rules) == len(desired["rules"]), (rules, desired["rules"])
    routes = [r for fam in ("-4", "-6")
              for r in _json_lines(node.ns.run("ip", "-j", fam, "route", "show", "table", "all"))
              if str(r.get("protocol")) == "240"]
    assert len(routes) == len(desired["routes"]), (routes, desired["routes"])
    neigh = {(n["dst"], n.get("lladdr")) for n in _json_lines(
        node.ns.run("ip", "-j", "neigh", "show", "dev", "br-ex", "nud", "permanent"))}
    assert neigh == {(n["ip"], n["mac"]) for n in desired["neighbours"]}, neigh
    flows = node.ovs.ofctl("dump-flows", "br-ex", f"cookie={COOKIE}/-1")
    assert flows.count("mod_dl_dst") == 2 * len(desired["flows"]) == 2, flows


def test_sigkill_under_load_no_withdrawal(node: Node):
    """SIGKILL while a burst of binds is being processed; restart: the leaf sees no withdrawal
    and the node converges (binds made while the agent was dead included)."""
    burst = [p for p in PROVIDER if node.world.bound.get(p) != "ch1"]
    assert len(burst) >= 6
    offset = node.leaf_log_size()
    errors: list[BaseException] = []
    killed = threading.Event()

    def binder():
        # The first three binds, one transaction each, while the agent runs; the rest after
        # the kill (made while it is dead: the restart must pick them up).
        try:
            for i, p in enumerate(burst):
                if i == 3:
                    killed.wait(timeout=120)
                node.sbctl_bind(p, "ch1")
        except BaseException as e:  # noqa: BLE001 - reported by the test
            errors.append(e)

    th = threading.Thread(target=binder)
    th.start()
    try:
        first = f"{pv_ips(burst[0])[0]}/32"
        wait_for(lambda: first in node.dummy(), timeout=60, what="the burst being applied",
                 details=node.details)
        node.agent.kill()
        killed_with = node.dummy()
    finally:
        killed.set()
        th.join(timeout=120)
    assert not errors, errors
    whole_burst = {f"{pv_ips(p)[0]}/32" for p in burst}
    assert not whole_burst <= killed_with
    node.agent.start(timeout=90)
    node.wait_converged()
    withdrawn = node.withdrawals_since(offset)
    assert withdrawn == [], withdrawn
    # The leaf logs updates (so a withdrawal would have been seen): the burst's announcements.
    assert "rcvd UPDATE w/ attr" in node.leaf.log_path("bgpd").read_text(errors="replace")


def test_sb_outage_nothing_withdrawn_then_changes_apply(node: Node):
    """SB ovsdb-server stopped for 30 s; meanwhile a port is unbound in the SB file and another
    is deleted in the NB. Nothing is withdrawn during the outage; both changes apply after."""
    node.wait_converged()
    before = node.dummy()
    offset = node.leaf_log_size()
    unbound, deleted = PROVIDER[1], PROVIDER[2]
    assert node.world.bound[unbound] == node.world.bound[deleted] == "ch1"
    node.ovn.stop_sb()
    t0 = time.monotonic()
    wait_for(lambda: node.agent.status()["connected"]["sb"] is False, timeout=30,
             what="status shows the SB disconnected")
    assert 'ovnbgp_db_connected{db="sb"} 0.0' in node.metrics()
    node.ovn.sb_transact({"op": "update", "table": "Port_Binding",
                          "where": [["logical_port", "==", unbound]],
                          "row": {"chassis": ["set", []]}})
    node.world.bound[unbound] = None
    node.ovn.nbctl("lsp-del", deleted)
    node.world.deleted.add(deleted)
    while time.monotonic() - t0 < 30:
        assert node.dummy() == before, "changed during the SB outage"
        time.sleep(2)
    assert node.withdrawals_since(offset) == []
    assert node.leaf_table() == before
    node.ovn.start_sb()
    node.wait_converged(timeout=120)
    assert node.agent.status()["connected"]["sb"] is True
    withdrawn = set(node.withdrawals_since(offset))
    gone = {f"{ip}/{'32' if '.' in ip else '128'}" for p in (unbound, deleted) for ip in pv_ips(p)}
    assert withdrawn == gone, withdrawn
    # put both back for the next tests
    v4, v6 = pv_ips(deleted)
    node.ovn.nbctl("lsp-add", "public", deleted, "--", "lsp-set-addresses", deleted,
                   f"{pv_mac(deleted)} {v4} {v6}")
    node.ovn.sync()
    node.world.deleted.discard(deleted)
    node.sbctl_bind(deleted, "ch1")
    node.sbctl_bind(unbound, "ch1")
    node.wait_converged()


def _frr_restarts(node: Node) -> float:
    m = re.search(r"^ovnbgp_frr_restarts_detected_total (\S+)$", node.metrics(), re.M)
    return float(m.group(1)) if m else 0.0


def test_frr_restart_config_reapplied(node: Node):
    """FRR restarted with an empty config (as watchfrr does after a crash), then bgpd killed
    alone and started again: each time the agent re-applies its config and every prefix is
    back at the peer."""
    node.wait_converged()
    restarts = _frr_restarts(node)
    node.frr.restart(apply_config=False)
    wait_for(lambda: _frr_restarts(node) >= restarts + 1, timeout=60,
             what="the agent detected the FRR restart", details=node.details)
    wait_bgp_established(node.leaf, NODE_IP, timeout=60)
    node.wait_converged()
    assert "router bgp 64999 vrf ovn-bgp-vrf" in node.frr.running_config()

    node.frr.kill_daemon("bgpd")
    node.frr.start_daemon("bgpd")
    wait_for(lambda: _frr_restarts(node) >= restarts + 2, timeout=60,
             what="the agent detected the bgpd restart", details=node.details)
    wait_bgp_established(node.leaf, NODE_IP, timeout=60)
    node.wait_converged()
    st = node.agent.status()
    assert st["frr"]["restarts_detected"] >= 2, st["frr"]


def test_vswitchd_restart_flows_reinstalled(node: Node):
    """ovs-vswitchd restarted: its flows are gone (and with the netdev datapath br-ex's kernel
    device is re-created, losing its addresses and routes); the agent puts them back. No
    prefix is withdrawn meanwhile."""
    node.wait_converged()
    offset = node.leaf_log_size()
    node.ovs.restart_vswitchd()
    # What the node's network config does for a re-created bridge device (ifup): up.
    wait_for(lambda: "br-ex" in node.ip("link", "show"), timeout=30, what="br-ex back")
    node.ns.run("ip", "link", "set", "br-ex", "up")
    wait_for(lambda: node.ovs.ofctl("dump-flows", "br-ex", f"cookie={COOKIE}/-1").count("mod_dl_dst") == 2,
             timeout=60, what="flows re-installed", details=node.details)
    wait_for(lambda: "1.1.1.1/32" in node.ip("addr", "show", "dev", "br-ex"), timeout=60,
             what="bridge IP back", details=node.details)
    node.wait_converged()
    assert "default dev br-ex" in node.ip("route", "show", "table", "200")
    assert node.withdrawals_since(offset) == []


def test_churn_1000_operations_then_exact_state(node: Node):
    """1,000 random operations (bind/unbind/move, FIP set/unset, router attach/detach), then
    quiet: the node's exposures, steering and flows and the peer's table are exactly the
    expected state, nothing stale, nothing missing."""
    node.wait_converged()
    rnd = random.Random(20261126)
    w = node.world
    ports = PROVIDER + [p for t in TENANTS for p in TENANT_VMS[t]]
    pending: list[tuple[str, object, list[list[str]]]] = []  # (tool, object, commands)

    def add(tool: str, cmds: list[list[str]], obj: object) -> None:
        pending.append((tool, obj, cmds))

    while len(pending) < 1000:
        kind = rnd.choice(["bind"] * 6 + ["fip"] * 3 + ["attach"])
        if kind == "bind":
            p = rnd.choice(ports)
            if w.bound.get(p):
                add("sb", [["lsp-unbind", p]], p)
                w.bound[p] = None
            else:
                ch = rnd.choice(["ch1", "ch1", "ch2"])
                add("sb", [["lsp-bind", p, ch]], p)
                w.bound[p] = ch
        elif kind == "fip":
            ip = rnd.choice(FIPS)
            if ip in w.fips:
                add("nb", fip_unset_cmds(ip), (ip, w.fips.pop(ip)))
            else:
                used = set(w.fips.values())
                free = [p for t in TENANTS for p in TENANT_VMS[t] if p not in used]
                if not free:
                    continue  # every tenant VM has a floating IP: pick another operation
                port = rnd.choice(free)
                add("nb", fip_set_cmds(ip, port), (ip, port))
                w.fips[ip] = port
        else:
            t = rnd.choice(TENANTS)
            if t in w.attached:
                add("nb", detach_cmds(t), (t,))
                w.attached.discard(t)
            else:
                add("nb", attach_cmds(t), (t,))
                w.attached.add(t)

    # Sent in windows of 100 consecutive operations (UML makes each ovn-*ctl call cost ~0.5 s):
    # a window's SB operations in one ovn-sbctl transaction (it sees its own pending writes,
    # so a port may be bound and unbound in one), then its NB operations in transactions that
    # touch each object once (ovn-nbctl does not see its own pending deletes).
    calls: list[tuple[str, list[list[list[str]]], set]] = []
    for start in range(0, len(pending), 100):
        window = pending[start:start + 100]
        sb = [cmds for tool, _, cmds in window if tool == "sb"]
        if sb:
            calls.append(("sb", sb, set()))
        nb_start = len(calls)
        for tool, obj, cmds in window:
            if tool != "nb":
                continue
            if len(calls) > nb_start and not set(obj) & calls[-1][2]:
                calls[-1][1].append(cmds)
                calls[-1][2].update(obj)
            else:
                calls.append(("nb", [cmds], set(obj)))
    started = time.monotonic()
    for tool, groups, _ in calls:
        flat = joined([c for g in groups for c in g])
        (node.ovn.sbctl if tool == "sb" else node.ovn.nbctl)(*flat)
    node.ovn.sync()
    print(f"churn: {len(pending)} operations in {len(calls)} transactions, "
          f"{time.monotonic() - started:.1f} s")
    node.wait_converged(timeout=180)
    desired = json.loads(node.agent.cli("desired", "--json", check=True).stdout)
    assert {e["prefix"] for e in desired["exposures"]} == w.expected()
    test_converged_start_and_exact_state(node)
    # The agent's own figures for the note: status and metrics after the churn.
    print(node.agent.cli("status").stdout)
    print("\n".join(ln for ln in node.metrics().splitlines() if ln.startswith("ovnbgp_")
                    and "_bucket" not in ln))


def test_lock_sighup_reload_and_bad_config(node: Node):
    """A second agent on the node exits at once (status 4); SIGHUP applies a changed config
    (here the bridge IPv4 address: the new one added, the old one ovnbgp added removed); a
    config that does not validate is refused and the running one kept."""
    import os
    import signal

    node.wait_converged()
    second = node.agent.cli("run", timeout=60)
    assert second.returncode == 4, second.stdout + second.stderr
    assert "another ovnbgp holds" in second.stderr
    original = node.agent.config_path.read_text()
    pid = node.agent.daemon.pid
    try:
        node.agent.config_path.write_text(original.replace(
            "[kernel]\n", '[kernel]\nbridge_ipv4 = "1.1.1.2/32"\n'))
        os.kill(pid, signal.SIGHUP)
        wait_for(lambda: "1.1.1.2/32" in node.ip("addr", "show", "dev", "br-ex")
                 and "1.1.1.1/32" not in node.ip("addr", "show", "dev", "br-ex"), timeout=60,
                 what="the new bridge IP in place of the old one", details=node.details)
        node.agent.config_path.write_text(original.replace("[kernel]\n", "[kernel]\nbogus = 1\n"))
        os.kill(pid, signal.SIGHUP)
        status_file = node.work / "state" / "status.json"  # the CLI refuses the bad file too
        wait_for(lambda: any(e["target"] == "config"
                             for e in json.loads(status_file.read_text())["errors"]),
                 timeout=30, what="the bad config refused (status error)")
        assert node.agent.alive()
        assert "1.1.1.2/32" in node.ip("addr", "show", "dev", "br-ex")
    finally:
        node.agent.config_path.write_text(original)
        os.kill(pid, signal.SIGHUP)
    wait_for(lambda: "1.1.1.1/32" in node.ip("addr", "show", "dev", "br-ex")
             and "1.1.1.2/32" not in node.ip("addr", "show", "dev", "br-ex"), timeout=60,
             what="the original bridge IP back", details=node.details)
    node.wait_converged()


def test_cleanup_removes_everything_ovnbgp_owns(node: Node):
    """`ovnbgp cleanup`: refused while the agent runs, nothing done without confirmation;
    with --yes every prefix is withdrawn and every object ovnbgp owns goes (steering, bridge
    IPs, rt_tables lines, flows, FRR config, then the dummy and the VRF). The operator's own
    objects stay (checked after every test)."""
    node.wait_converged()
    cp = node.agent.cli("cleanup", "--yes")
    assert cp.returncode == 1 and "stop it first" in cp.stderr, cp.stdout + cp.stderr
    node.agent.stop()
    argv = [str(a) for a in node.agent.daemon.argv[:-1]]  # ovnbgp --config FILE
    cp = run(argv + ["cleanup"], netns=node.ns.name, check=False, input="n\n")
    assert cp.returncode == 1 and "nothing changed" in cp.stderr, cp.stdout + cp.stderr
    assert node.dummy() == node.world.expected()
    cp = run(argv + ["cleanup", "--yes", "--json"], netns=node.ns.name, check=False)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    report = json.loads(cp.stdout)
    assert [s["step"] for s in report["steps"]] == ["kernel", "flows", "frr", "devices"], report
    links = node.ip("link", "show")
    assert "ovn-bgp-vrf" not in links and " ovn:" not in links, links
    for fam in ("-4", "-6"):
        assert not [r for r in _json_lines(node.ns.run("ip", "-j", fam, "rule", "show"))
                    if str(r.get("protocol")) == "240"]
        assert not [r for r in _json_lines(node.ns.run("ip", "-j", fam, "route", "show", "table", "all"))
                    if str(r.get("protocol")) == "240"]
    assert CRLRP_IP not in node.ip("neigh", "show", "dev", "br-ex")
    assert "1.1.1.1" not in node.ip("addr", "show", "dev", "br-ex")
    assert "br-ex" not in (node.work / "rt_tables.conf").read_text()
    assert "mod_dl_dst" not in node.ovs.ofctl("dump-flows", "br-ex", f"cookie={COOKIE}/-1")
    assert "router bgp" not in node.frr.running_config()
    wait_for(lambda: not node.leaf_table(), timeout=60, what="the peer's table empty")
    # The node no longer matches OVN: plan says so (exit 1) without changing anything.
    assert node.agent.cli("plan").returncode == 1

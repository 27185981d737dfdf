"""Kernel reconciler against real netlink in a network namespace.

The provider bridge is a Linux bridge device in the namespace (the host kernel has bridges but
no dummy/vrf modules), so this tier runs the reconciler with advertise=False: rules, routes,
neighbours, sysctls, rt_tables and bridge IPs. tests/vm/test_kernel_reconciler.py imports
these tests and runs them again inside User-Mode Linux with advertise=True (VRF, dummy and the
exposed addresses too), plus the tests that need the dummy (event order).

Every change the reconciler makes is watched with an rtnetlink monitor socket in the namespace.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyroute2 import netns as pyroute2_netns
from pyroute2.netlink.rtnl.fibmsg import fibmsg
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from pyroute2.netlink.rtnl.ndmsg import ndmsg
from pyroute2.netlink.rtnl.rtmsg import rtmsg

from ovnbgp.config import KernelConfig
from ovnbgp.kernel import messages as M
from ovnbgp.kernel.netlink import KernelReconciler
from ovnbgp.kernel.nltransport import iter_headers
from ovnbgp.kernel.settings import KernelInputError
from ovnbgp.model.records import BridgeSetup, DesiredState, Exposure, ExposureKind, Neighbour, Route, Rule
from tests.harness.netns import Netns
from tests.harness.proc import wait_for

N = ipaddress.ip_network
A = ipaddress.ip_address
I = ipaddress.ip_interface
PROTO = 240
PRIO = 32000
CRLRP = A("172.24.4.146")
CRLRP_MAC = "fa:16:3e:00:00:01"
BR_ADDRS = (I("1.1.1.1/32"), I("fd53:d91e:400:7f17::1/128"))


# --- desired states ---------------------------------------------------------------------------


def make_desired(n: int = 4, *, steering: str = "rules", bridge: str = "br-ex", table: int = 200,
                 v4_base: str = "172.24.8.0", v6_base: str = "2001:db8:8::",
                 tenant: str = "10.0.0.0/26") -> DesiredState:
    """n provider VM IPs (alternating v4/v6), a cr-lrp with one tenant subnet behind it, in
    the model's shape for either steering mode."""
    exps = set()
    for i in range(n):
        base = A(v4_base) if i % 2 == 0 else A(v6_base)
        ip = base + i // 2
        exps.add(Exposure(ipaddress.ip_network(ip), ExposureKind.PROVIDER_VM, bridge, f"vm{i}", f"u{i}"))
    exps.add(Exposure(N(f"{CRLRP}/32"), ExposureKind.CRLRP, bridge, "cr-lrp", "ucr"))
    exps.add(Exposure(N(tenant), ExposureKind.TENANT_SUBNET, bridge, "lrp", "ulrp"))
    routes = {Route(table, N(f"{CRLRP}/32"), bridge, None, True),
              Route(table, N(tenant), bridge, CRLRP)}
    if steering == "rules":
        rules = {Rule(PRIO, table, e.prefix, e.prefix.version) for e in exps}
        routes |= {Route(table, N("0.0.0.0/0"), bridge, None, True), Route(table, N("::/0"), bridge)}
    else:
        rules = {Rule(PRIO, table, None, 4), Rule(PRIO, table, None, 6)}
        routes |= {Route(table, e.prefix, bridge, None, True) for e in exps
                   if e.kind is not ExposureKind.TENANT_SUBNET and e.prefix != N(f"{CRLRP}/32")}
    return DesiredState(exposures=frozenset(exps), rules=frozenset(rules), routes=frozenset(routes),
                        neighbours=frozenset({Neighbour(bridge, CRLRP, CRLRP_MAC)}),
                        bridges=frozenset({BridgeSetup(bridge, table, BR_ADDRS)}))


def merge(*states: DesiredState) -> DesiredState:
    return DesiredState(**{f: frozenset().union(*(getattr(s, f) for s in states))
                           for f in ("exposures", "rules", "routes", "neighbours", "bridges", "flows")})


# --- a netlink monitor ------------------------------------------------------------------------

GROUPS = (0x1 | 0x4 | 0x10 | 0x40 | 0x80 | 0x100 | 0x400  # link neigh ifaddr route rule ...
          | (1 << (19 - 1)))  # RTNLGRP_IPV6_RULE


class Monitor:
    """Every rtnetlink change in a namespace, decoded into short tuples, in kernel order:
    ("+addr"/"-addr", ifindex, interface), ("+rule"/"-rule", family, dst, table, priority,
    protocol), ("+route"/"-route", table, dst, protocol), ("+neigh"/"-neigh", ip, permanent,
    protocol), ("+link"/"-link", name)."""

    def __init__(self, netns: str):
        self.sock = pyroute2_netns.create_socket(netns, family=socket.AF_NETLINK,
                                                 socket_type=socket.SOCK_RAW, proto=0)
        self.sock.setsockopt(socket.SOL_SOCKET, 33, 64 << 20)  # SO_RCVBUFFORCE
        self.sock.bind((0, GROUPS))
        self.sock.setblocking(False)

    def close(self) -> None:
        self.sock.close()

    def events(self) -> list[tuple]:
        out: list[tuple] = []
        while True:
            try:
                buf = self.sock.recv(1 << 20)
            except BlockingIOError:
                return out
            except OSError as e:
                if e.errno == errno.ENOBUFS:
                    raise AssertionError("monitor lost events (ENOBUFS)") from e
                raise
            for mtype, _f, _s, off, length in iter_headers(buf):
                ev = _decode_event(mtype, buf, off, length)
                if ev is not None:
                    out.append(ev)


def _decode_event(mtype: int, buf: bytes, off: int, length: int) -> tuple | None:
    sign = "+" if mtype % 4 == 0 else "-"
    if mtype in (20, 21):
        m = ifaddrmsg(buf, offset=off, length=length)
        m.decode()
        got = M.decode_addr(m)
        return (sign + "addr", *got) if got else None
    if mtype in (32, 33):
        m = fibmsg(buf, offset=off, length=length)
        m.decode()
        r = M.decode_rule(m)
        return (sign + "rule", r.family, r.dst, r.table, r.priority, r.protocol) if r else None
    if mtype in (24, 25):
        m = rtmsg(buf, offset=off, length=length)
        m.decode()
        r = M.decode_route(m, {})
        return (sign + "route", r.table, r.dst, r.protocol) if r else None
    if mtype in (28, 29):
        m = ndmsg(buf, offset=off, length=length)
        m.decode()
        ip = m.get_attr("NDA_DST")
        return (sign + "neigh", A(ip) if ip else None, bool(m["state"] & 0x80),
                m.get_attr("NDA_PROTOCOL") or 0)
    if mtype in (16, 17):
        m = ifinfmsg(buf, offset=off, length=length)
        m.decode()
        return (sign + "link", m.get_attr("IFLA_IFNAME"))
    return None


def changes(events: list[tuple]) -> list[tuple]:
    """Events that are changes of something ovnbgp manages (not the kernel's own neighbour
    cache housekeeping, not link events, which carry statistics, and not the IPv6 link-local
    address and routes the kernel gives an interface by itself, which can come late)."""
    return [e for e in events if not _link_local(e) and (
        e[0][1:] in ("addr", "rule", "route") or (e[0][1:] == "neigh" and (e[2] or e[3])))]


def _link_local(event: tuple) -> bool:
    """An address or route in fe80::/10 (ip_interface and ip_network both say is_link_local)."""
    return event[0][1:] in ("addr", "route") and getattr(event[2], "is_link_local", False) is True


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def advertise() -> bool:
    """The host kernel has no dummy/vrf: steering only here (tests/vm overrides this)."""
    return False


@pytest.fixture
def kns(netns_factory) -> Netns:
    """A namespace with the provider bridge br-ex (a Linux bridge standing in for OVS's)."""
    ns = netns_factory("kern")
    ns.run("ip", "link", "add", "br-ex", "type", "bridge")
    ns.run("ip", "link", "set", "br-ex", "up")
    return ns


@pytest.fixture
def monitor(kns: Netns) -> Iterator[Monitor]:
    m = Monitor(kns.name)
    yield m
    m.close()


@pytest.fixture
def make_reconciler(kns: Netns, tmp_path: Path, advertise: bool):
    made: list[KernelReconciler] = []

    def make(**kw) -> KernelReconciler:
        kw.setdefault("rt_tables_file", tmp_path / "rt_tables.d" / "ovnbgp.conf")
        kw.setdefault("state_path", tmp_path / "state" / "kernel-state.json")
        cfg = kw.pop("cfg", KernelConfig(route_protocol=PROTO))
        rec = KernelReconciler(cfg, netns=kns.name, advertise=advertise, **kw)
        made.append(rec)
        return rec

    yield make
    for rec in made:
        rec.close()


def ip(ns: Netns, *args: str) -> str:
    return ns.run("ip", *args).stdout


def sysctl_value(ns: Netns, path: str) -> str:
    return ns.run("cat", f"/proc/sys/{path}").stdout.strip()


def apply_all(rec: KernelReconciler, desired: DesiredState):
    plan = rec.diff(desired, rec.observe(desired))
    return plan, rec.apply(plan)


# --- tests ------------------------------------------------------------------------------------


@pytest.mark.parametrize("steering", ["rules", "table"])
def test_apply_creates_everything_and_second_run_changes_nothing(
        kns, make_reconciler, monitor, tmp_path, advertise, steering):
    rec = make_reconciler()
    d = make_desired(6, steering=steering)
    plan, res = apply_all(rec, d)
    assert res.ok, res.lines()
    assert not plan.notices, plan.lines()

    rules = ip(kns, "rule") + ip(kns, "-6", "rule")
    if steering == "rules":
        assert f"{PRIO}:\tfrom all to 172.24.8.0 lookup 200 proto {PROTO}" in rules
        assert f"{PRIO}:\tfrom all to 2001:db8:8::2 lookup 200 proto {PROTO}" in rules
        assert f"{PRIO}:\tfrom all to 10.0.0.0/26 lookup 200 proto {PROTO}" in rules
        assert rules.count(f"{PRIO}:") == 6 + 2
    else:
        assert rules.count(f"{PRIO}:") == 2
        assert f"{PRIO}:\tfrom all lookup 200 proto {PROTO}" in rules
    routes = ip(kns, "route", "show", "table", "200") + ip(kns, "-6", "route", "show", "table", "200")
    assert f"172.24.4.146 dev br-ex proto {PROTO} scope link" in routes
    assert f"10.0.0.0/26 via 172.24.4.146 dev br-ex proto {PROTO}" in routes
    if steering == "rules":
        assert f"default dev br-ex proto {PROTO} scope link" in routes
        assert f"default dev br-ex proto {PROTO} metric 1024" in routes
    else:
        assert "default" not in routes
        assert f"172.24.8.0 dev br-ex proto {PROTO} scope link" in routes
        assert f"2001:db8:8::2 dev br-ex proto {PROTO} metric 1024" in routes
    neigh = ip(kns, "neigh", "show", "dev", "br-ex", "nud", "permanent")
    assert f"172.24.4.146 lladdr {CRLRP_MAC} PERMANENT proto {PROTO}" in neigh
    addrs = ip(kns, "addr", "show", "dev", "br-ex")
    assert "inet 1.1.1.1/32" in addrs and "inet6 fd53:d91e:400:7f17::1/128" in addrs
    for path, value in [("net/ipv4/conf/all/rp_filter", "0"), ("net/ipv4/conf/br-ex/rp_filter", "0"),
                        ("net/ipv4/conf/br-ex/proxy_arp", "1"), ("net/ipv6/conf/br-ex/proxy_ndp", "1"),
                        ("net/ipv4/ip_forward", "1"), ("net/ipv6/conf/all/forwarding", "1")]:
        assert sysctl_value(kns, path) == value, path
    assert (tmp_path / "rt_tables.d" / "ovnbgp.conf").read_text().endswith("200 br-ex # ovnbgp\n")

    monitor.events()
    plan2, res2 = apply_all(rec, d)
    assert plan2.empty(), plan2.lines()
    assert res2.applied == 0
    # and through the cached path too
    plan3 = rec.reconcile(d).plan
    assert plan3.empty(), plan3.lines()
    assert changes(monitor.events()) == []


@pytest.mark.parametrize("steering", ["rules", "table"])
def test_changes_are_planned_from_the_keys_they_touch(kns, make_reconciler, steering):
    """Ports come and go: after the first full plan each change is planned from the keys it
    touches, and the kernel ends up exactly as a fresh full observation expects."""
    everything = make_desired(40, steering=steering)
    fixed_prefixes = {N(f"{CRLRP}/32"), N("10.0.0.0/26")}

    def subset(picked: set[int]) -> DesiredState:
        keep = fixed_prefixes | {e.prefix for e in everything.exposures if e.port in
                                 {f"vm{i}" for i in picked}}
        return DesiredState(
            exposures=frozenset(e for e in everything.exposures if e.prefix in keep),
            rules=frozenset(r for r in everything.rules if r.dst is None or r.dst in keep),
            routes=frozenset(r for r in everything.routes if r.dst.prefixlen == 0
                             or r.dst in keep),
            neighbours=everything.neighbours, bridges=everything.bridges)

    rec = make_reconciler()
    res = rec.reconcile(subset(set(range(0, 40, 2))))
    assert res.ok and rec.last_plan_scope == "full"
    # (with the dummy, the link events of its creation make the next plan a full one)
    res = rec.reconcile(subset(set(range(0, 40, 2))))
    plan = res.plan
    assert res.ok and plan.empty()
    for picked in ({1, 2, 3}, set(range(40)), {39}, set(), set(range(10, 30)), {5, 6}):
        d = subset(picked)
        res = rec.reconcile(d)
        plan = res.plan
        assert res.ok, res.lines()
        assert rec.last_plan_scope == "changes"
        check = make_reconciler()
        left = check.diff(d, check.observe(d))
        assert left.empty(), left.lines()
    # a refresh observes again and plans in full, with nothing to do
    plan = rec.reconcile(d, full=True).plan
    assert rec.last_plan_scope == "full" and plan.empty()


def test_restart_adopts_1k_exposures_without_deleting(kns, make_reconciler, monitor):
    d = make_desired(1000)
    first = make_reconciler()
    _, res = apply_all(first, d)
    assert res.ok, res.lines()
    first.close()
    monitor.events()

    fresh = make_reconciler()
    plan = fresh.diff(d, fresh.observe(d))
    assert plan.empty(), plan.lines()[:10]
    res = fresh.reconcile(d, full=True)
    plan = res.plan
    assert plan.empty() and res.ok
    evs = monitor.events()
    assert [e for e in evs if e[0].startswith("-")] == []
    assert changes(evs) == []


def test_sweep_removes_only_stale_owned_objects(kns, make_reconciler, monitor, tmp_path, advertise):
    rec = make_reconciler()
    d = make_desired(4)
    apply_all(rec, d)
    p = str(PROTO)
    # stale objects with ovnbgp's protocol (e.g. from a previous run) ...
    kns.run("ip", "rule", "add", "to", "172.24.9.9", "lookup", "200", "priority", str(PRIO), "protocol", p)
    kns.run("ip", "rule", "add", "to", "172.24.9.8", "lookup", "201", "priority", "31000", "protocol", p)
    kns.run("ip", "route", "add", "10.9.0.0/24", "via", "172.24.4.146", "dev", "br-ex", "table", "200", "proto", p)
    kns.run("ip", "route", "add", "10.8.0.0/24", "dev", "br-ex", "table", "201", "proto", p)
    kns.run("ip", "neigh", "add", "172.24.4.150", "lladdr", "fa:16:3e:00:00:50", "dev", "br-ex",
            "nud", "permanent", "protocol", p)
    # ... and the operator's (no protocol, or another one), which must survive
    kns.run("ip", "rule", "add", "to", "172.24.9.7", "lookup", "200", "priority", "100")
    kns.run("ip", "rule", "add", "to", "172.24.9.6", "lookup", "200", "priority", str(PRIO))
    kns.run("ip", "route", "add", "10.7.0.0/24", "dev", "br-ex")
    kns.run("ip", "route", "add", "10.6.0.0/24", "dev", "br-ex", "table", "200", "proto", "static")
    kns.run("ip", "neigh", "add", "172.24.4.151", "lladdr", "fa:16:3e:00:00:51", "dev", "br-ex", "nud", "permanent")
    kns.run("ip", "addr", "add", "192.0.2.1/24", "dev", "br-ex")
    monitor.events()

    fresh = make_reconciler()
    plan, res = apply_all(fresh, d)
    assert res.ok, res.lines()
    gone = sorted(str(e[2] if e[0] != "-neigh" else e[1]) for e in monitor.events() if e[0].startswith("-"))
    assert gone == ["10.8.0.0/24", "10.9.0.0/24", "172.24.4.150", "172.24.9.8/32", "172.24.9.9/32"]
    rules = ip(kns, "rule")
    assert "172.24.9.7" in rules and "172.24.9.6" in rules and "172.24.9.9" not in rules
    assert "10.7.0.0/24" in ip(kns, "route")
    assert "10.6.0.0/24" in ip(kns, "route", "show", "table", "200")
    assert "172.24.4.151" in ip(kns, "neigh", "show", "dev", "br-ex")
    assert "192.0.2.1/24" in ip(kns, "addr", "show", "dev", "br-ex")
    assert apply_all(fresh, d)[0].empty()


def test_withdraw_everything_leaves_only_foreign_objects(kns, make_reconciler, tmp_path):
    rec = make_reconciler()
    kns.run("ip", "addr", "add", "1.1.1.1/32", "dev", "br-ex")  # the operator's bridge IP
    apply_all(rec, make_desired(4))
    plan, res = apply_all(rec, DesiredState())
    assert res.ok, res.lines()
    assert f"proto {PROTO}" not in ip(kns, "rule") + ip(kns, "-6", "rule")
    assert ip(kns, "route", "show", "table", "200").strip() == ""
    assert f"proto {PROTO}" not in ip(kns, "neigh", "show", "dev", "br-ex")
    addrs = ip(kns, "addr", "show", "dev", "br-ex")
    assert "1.1.1.1/32" in addrs  # it was there before ovnbgp: not ovnbgp's to remove
    assert "fd53:d91e:400:7f17::1" not in addrs  # ovnbgp added this one
    assert "200 br-ex" not in (tmp_path / "rt_tables.d" / "ovnbgp.conf").read_text()


def test_bridge_ip_kept_for_a_foreign_multipath_route_through_the_bridge(kns, make_reconciler):
    """An operator's ECMP route with one next hop on br-ex: the kernel would mark that next hop
    dead with br-ex's last IPv4 address, so the bridge IP ovnbgp added stays, and says why."""
    kns.run("ip", "link", "add", "br-o", "type", "bridge")
    kns.run("ip", "link", "set", "br-o", "up")
    rec = make_reconciler()
    apply_all(rec, make_desired(2))
    kns.run("ip", "route", "add", "198.51.100.0/24", "nexthop", "dev", "br-ex",
            "nexthop", "dev", "br-o")
    plan, res = apply_all(rec, DesiredState())
    assert res.ok, res.lines()
    assert "1.1.1.1/32" in ip(kns, "addr", "show", "dev", "br-ex")
    kept = [n for n in plan.notices if n.kind == "kept"]
    assert kept and "198.51.100.0/24" in kept[0].describe(), plan.lines()
    route = ip(kns, "route", "show", "198.51.100.0/24")
    assert "dev br-ex" in route and "dead" not in route, route


def test_rt_tables_in_shared_file_keeps_other_lines(kns, make_reconciler, tmp_path):
    shared = tmp_path / "rt_tables"
    original = "#\n# reserved values\n#\n255\tlocal\n254\tmain\n253\tdefault\n0\tunspec\n#\n# local\n#\n150 mine\n"
    shared.write_text(original)
    rec = make_reconciler(rt_tables_file=shared)
    apply_all(rec, make_desired(2))
    assert shared.read_text() == original + "200 br-ex # ovnbgp\n"
    apply_all(rec, DesiredState())
    assert shared.read_text() == original


def test_missing_bridge_waits_then_applies_when_it_appears(kns, make_reconciler, monitor):
    rec = make_reconciler()
    d = merge(make_desired(2), make_desired(2, bridge="br-late", table=201, v4_base="172.25.8.0",
                                            v6_base="2001:db8:25::", tenant="10.1.0.0/26"))
    res = rec.reconcile(d)
    plan = res.plan
    assert any(n.kind == "waiting" and "br-late" in n.subject for n in plan.notices)
    assert res.ok, res.lines()
    assert "lookup 200" in ip(kns, "rule") and "lookup 201" not in ip(kns, "rule")
    monitor.events()

    kns.run("ip", "link", "add", "br-late", "type", "bridge")
    kns.run("ip", "link", "set", "br-late", "up")
    assert "br-late" in rec.link_changes()
    res = rec.reconcile(d)  # the link monitor makes it look again
    plan = res.plan
    assert res.ok, res.lines()
    assert not [n for n in plan.notices if n.kind == "waiting"]
    assert "lookup 201" in ip(kns, "rule")
    assert "172.24.4.146 dev br-late" in ip(kns, "route", "show", "table", "201")
    assert sysctl_value(kns, "net/ipv4/conf/br-late/proxy_arp") == "1"
    assert rec.reconcile(d).plan.empty()


def test_bridge_down_waits_without_errors_then_applies_when_up(kns, make_reconciler):
    """A bridge that is down gets no routes (the kernel would answer ENETDOWN): it waits,
    with a notice, keeping what it has, and is set up when it comes up."""
    rec = make_reconciler()
    first = make_desired(2)
    assert rec.reconcile(first).ok
    kns.run("ip", "link", "set", "br-ex", "down")
    d = make_desired(4)
    res = rec.reconcile(d)
    plan = res.plan
    assert res.ok and not res.failed, res.lines()
    assert any(n.kind == "waiting" and "down" in n.describe() for n in plan.notices), plan.lines()
    assert "172.24.8.1 " not in ip(kns, "rule") + " "  # the new exposure's rule waits
    assert "172.24.8.0 " in ip(kns, "rule") + " "  # what was there stays
    kns.run("ip", "link", "set", "br-ex", "up")
    assert "br-ex" in rec.link_changes()
    res = rec.reconcile(d)
    plan = res.plan
    assert res.ok, res.lines()
    assert not plan.notices, plan.lines()
    assert "172.24.8.1 " in ip(kns, "rule") + " "
    assert "default dev br-ex" in ip(kns, "route", "show", "table", "200")


def test_bridge_recreated_steering_restored(kns, make_reconciler):
    rec = make_reconciler()
    d = make_desired(2)
    rec.reconcile(d)
    kns.run("ip", "link", "del", "br-ex")  # OVS restart: the bridge's routes and neighbours go
    kns.run("ip", "link", "add", "br-ex", "type", "bridge")
    kns.run("ip", "link", "set", "br-ex", "up")
    res = rec.reconcile(d)
    plan = res.plan
    assert res.ok and not plan.empty()
    assert "172.24.4.146 dev br-ex" in ip(kns, "route", "show", "table", "200")
    assert "PERMANENT" in ip(kns, "neigh", "show", "dev", "br-ex", "nud", "permanent")


def test_invalid_input_changes_nothing(kns, make_reconciler, monitor):
    rec = make_reconciler()
    d = make_desired(2)
    bad = DesiredState(**{**d.__dict__, "routes": d.routes | {Route(200, N("10.5.0.0/24"), "br ex")},
                          "neighbours": d.neighbours | {Neighbour("br-ex", A("172.24.4.5"), "zz")}})
    with pytest.raises(KernelInputError) as e:
        rec.reconcile(bad)
    assert "'br ex'" in str(e.value) and "'zz'" in str(e.value)
    assert changes(monitor.events()) == []
    assert "lookup 200" not in ip(kns, "rule")


def test_kernel_error_on_one_object_is_reported_and_the_rest_applies(kns, make_reconciler):
    rec = make_reconciler()
    d = make_desired(2, steering="table")
    # table mode has no default route: this gateway is unreachable in table 200
    bad = Route(200, N("10.5.0.0/24"), "br-ex", A("192.0.2.99"))
    d = DesiredState(**{**d.__dict__, "routes": d.routes | {bad},
                        "exposures": d.exposures | {Exposure(N("10.5.0.0/24"), ExposureKind.TENANT_SUBNET,
                                                             "br-ex", "lrp2", "u2")}})
    plan, res = apply_all(rec, d)
    failed = [(op.describe(), why) for op, why in res.failed]
    assert len(failed) == 1 and "10.5.0.0/24 via 192.0.2.99" in failed[0][0], failed
    assert "ENETUNREACH" in failed[0][1] or "EINVAL" in failed[0][1], failed
    assert "172.24.8.0 dev br-ex" in ip(kns, "route", "show", "table", "200")
    assert "lookup 200" in ip(kns, "rule")


def test_device_gone_between_plan_and_apply(kns, make_reconciler):
    kns.run("ip", "link", "add", "br-2", "type", "bridge")
    kns.run("ip", "link", "set", "br-2", "up")
    rec = make_reconciler()
    d = merge(make_desired(2), make_desired(2, bridge="br-2", table=201, v4_base="172.25.8.0",
                                            v6_base="2001:db8:25::", tenant="10.1.0.0/26"))
    plan = rec.diff(d, rec.observe(d))
    kns.run("ip", "link", "del", "br-2")
    res = rec.apply(plan)
    assert res.failed and all("br-2" in op.describe() or "201" in op.describe() for op, _ in res.failed)
    assert any("ENODEV" in why for _, why in res.failed)
    assert "172.24.4.146 dev br-ex" in ip(kns, "route", "show", "table", "200")
    # the next reconcile looks again and waits for br-2 instead of failing
    res = rec.reconcile(d)
    plan = res.plan
    assert res.ok, res.lines()
    assert any(n.kind == "waiting" and "br-2" in n.subject for n in plan.notices)


def test_eexist_from_an_object_made_after_the_plan_is_reported(kns, make_reconciler, advertise):
    rec = make_reconciler()
    d = make_desired(2, steering="table")
    plan = rec.diff(d, rec.observe(d))
    kns.run("ip", "route", "add", "172.24.8.0/32", "via", "1.2.3.4", "dev", "br-ex", "onlink",
            "table", "200")  # someone else, between plan and apply
    res = rec.apply(plan)
    assert [(op.describe(), why.split()[0]) for op, why in res.failed] == \
        [(f"+ route 172.24.8.0/32 dev br-ex scope link table 200 proto {PROTO}", "EEXIST")]
    assert "172.24.8.0 via 1.2.3.4" in ip(kns, "route", "show", "table", "200")
    assert "2001:db8:8:: dev br-ex" in ip(kns, "-6", "route", "show", "table", "200")
    if advertise:
        assert [str(op.address) for op, _ in res.held] == ["172.24.8.0/32"]
    # the next reconcile looks again and reports the conflict instead
    res = rec.reconcile(d)
    plan = res.plan
    assert any(n.kind == "conflict" and "172.24.8.0" in n.subject for n in plan.notices)


def test_foreign_route_in_the_way_is_reported_not_touched(kns, make_reconciler):
    kns.run("ip", "route", "add", "172.24.8.0/32", "via", "1.2.3.4", "dev", "br-ex", "onlink",
            "table", "200")
    rec = make_reconciler()
    plan, res = apply_all(rec, make_desired(2, steering="table"))
    assert any(n.kind == "conflict" and "172.24.8.0" in n.subject for n in plan.notices)
    assert "172.24.8.0 via 1.2.3.4" in ip(kns, "route", "show", "table", "200")


def test_table_mode_unmatched_lookups_fall_through(kns, make_reconciler):
    kns.run("ip", "link", "add", "up0", "type", "bridge")
    kns.run("ip", "link", "set", "up0", "up")
    kns.run("ip", "addr", "add", "192.0.2.1/24", "dev", "up0")
    kns.run("ip", "route", "add", "default", "via", "192.0.2.254", "dev", "up0", "onlink")
    rec = make_reconciler()
    res = apply_all(rec, make_desired(2, steering="table"))[1]
    assert res.ok, res.lines()
    assert "dev br-ex table 200" in ip(kns, "route", "get", "172.24.8.0")
    other = ip(kns, "route", "get", "172.24.8.99")
    assert "via 192.0.2.254 dev up0" in other and "table 200" not in other


def test_neighbour_learned_by_the_kernel_is_taken_over(kns, make_reconciler):
    kns.run("ip", "neigh", "add", str(CRLRP), "lladdr", "00:00:00:00:00:99", "dev", "br-ex", "nud", "stale")
    rec = make_reconciler()
    res = apply_all(rec, make_desired(2))[1]
    assert res.ok, res.lines()
    assert f"{CRLRP} lladdr {CRLRP_MAC} PERMANENT proto {PROTO}" in ip(kns, "neigh", "show", "dev", "br-ex")


def test_switching_steering_mode_both_ways(kns, make_reconciler):
    """A rule without `to` clashes in the kernel with rules of the same priority and table
    that have one (EEXIST on add, first-match on delete): both switches must end clean."""
    rec = make_reconciler()
    rec.reconcile(make_desired(4, steering="rules"))
    res = rec.reconcile(make_desired(4, steering="table"))
    assert res.ok, res.lines()
    rules = ip(kns, "rule") + ip(kns, "-6", "rule")
    assert rules.count(f"{PRIO}:") == 2 and "to 172.24.8.0" not in rules
    routes = ip(kns, "route", "show", "table", "200")
    assert "default" not in routes and "172.24.8.0 dev br-ex" in routes
    assert rec.diff(make_desired(4, steering="table"), rec.observe()).empty()

    res = rec.reconcile(make_desired(4, steering="rules"), full=True)
    assert res.ok, res.lines()
    rules = ip(kns, "rule") + ip(kns, "-6", "rule")
    assert rules.count(f"{PRIO}:") == 6 and f"{PRIO}:\tfrom all lookup 200" not in rules
    assert "default dev br-ex" in ip(kns, "route", "show", "table", "200")
    assert rec.diff(make_desired(4, steering="rules"), rec.observe()).empty()


def test_foreign_rule_in_a_catch_all_slot_is_left_and_does_not_block(kns, make_reconciler):
    kns.run("ip", "rule", "add", "to", "192.0.2.7", "lookup", "200", "priority", str(PRIO))
    rec = make_reconciler()
    plan, res = apply_all(rec, make_desired(2, steering="table"))
    assert res.ok and not plan.notices, (res.lines(), plan.lines())
    rules = ip(kns, "rule")
    assert "192.0.2.7" in rules and f"{PRIO}:\tfrom all lookup 200 proto {PROTO}" in rules
    apply_all(rec, DesiredState())
    rules = ip(kns, "rule")
    assert "192.0.2.7" in rules and f"proto {PROTO}" not in rules


def test_drift_drained_by_the_loop_before_the_monitor_thread_still_wakes_it(kns, make_reconciler):
    """The loop's housekeeping (link_changes(), every turn) can read a foreign deletion off the
    monitor socket before the monitor thread wakes for it; that thread then finds nothing to
    report, so link_changes() must call on_drift() itself (else the repair waited for the next
    event: seen in bench_agent at 10k). No monitor thread here: the loop's drain always wins."""
    desired = make_desired(4)
    rec = make_reconciler()
    assert rec.reconcile(desired).ok
    assert rec.reconcile(desired).plan.empty()
    woke: list[int] = []
    rec._on_drift = lambda: woke.append(1)
    rule = next(r for r in desired.rules if r.dst is not None and r.family == 4)
    ip(kns, "rule", "del", "priority", str(rule.priority), "to", str(rule.dst), "lookup", str(rule.table))
    deadline = time.monotonic() + 5
    while not woke and time.monotonic() < deadline:
        rec.link_changes()
        time.sleep(0.05)
    assert woke == [1]
    rec.link_changes()
    assert woke == [1]  # once per drift, not every turn until the repair
    res = rec.reconcile(desired)
    assert res.ok and rec.last_plan_scope == "changes" and res.counts()["add"] == 1, res.lines()
    assert f"to {rule.dst} lookup {rule.table}" in ip(kns, "rule", "show")


def test_kept_observation_stands_in_for_a_dump_only_while_it_is_current(kns, make_reconciler):
    """A routine resync skips the dump while observation_current(): dumped recently, no
    notification lost or pending, the node exactly as wanted, and the rt_tables file and
    sysctls (which netlink does not notify) as observed."""
    desired = make_desired(4)
    rec = make_reconciler()
    assert not rec.observation_current(3600)  # nothing observed yet
    # Creating the VRF and the dummy has after-effects the monitor reports (the kernel's
    # l3mdev rule, the devices' own link changes): the reconciles they trigger settle them.
    wait_for(lambda: rec.reconcile(desired).ok and rec.observation_current(3600), timeout=10,
             what="the node settled")
    assert not rec.observation_current(0)  # too old: dump
    path = "net/ipv4/conf/br-ex/proxy_arp"
    kns.run("sysctl", "-qw", f"{path.replace('/', '.')}=0")
    assert not rec.observation_current(3600)  # a sysctl changed behind its back
    res = rec.reconcile(desired, full=True)
    assert res.ok and sysctl_value(kns, path) == "1", res.lines()
    assert rec.observation_current(3600)
    kns.run("ip", "rule", "del", "to", "172.24.8.0", "lookup", "200", "priority", str(PRIO))
    wait_for(lambda: not rec.observation_current(3600), timeout=5, what="the deletion noticed")
    assert rec.reconcile(desired).ok  # repaired from the notification, no dump
    assert rec.last_plan_scope == "changes" and rec.observation_current(3600)


def test_monitor_thread_wakes_for_drift_and_ends_on_close(kns, make_reconciler):
    """The waiter thread blocks in poll() without a timeout (an idle agent makes no system
    call) yet calls back at once on a foreign change, and close() ends it."""
    desired = make_desired(2)
    rec = make_reconciler()
    assert rec.reconcile(desired).ok
    woke = threading.Event()
    rec.watch(woke.set)
    waiter = rec._monitor._waiter
    assert waiter is not None and waiter.is_alive()
    deadline = time.monotonic() + 5  # the kernel's own late notifications of the apply
    while woke.wait(0.3) and time.monotonic() < deadline:
        woke.clear()
    assert not woke.is_set()
    rule = next(r for r in desired.rules if r.dst is not None and r.family == 4)
    ip(kns, "rule", "del", "priority", str(rule.priority), "to", str(rule.dst), "lookup", str(rule.table))
    assert woke.wait(5), "no wake for a foreign rule deletion"
    rec.close()
    waiter.join(5)
    assert not waiter.is_alive()

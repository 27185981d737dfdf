"""Kernel reconciler with the full kernel (User-Mode Linux): VRF, dummy and exposed addresses.

Every test of tests/integration/test_kernel_netlink.py runs here again with advertise=True
(the `advertise` fixture below overrides the host tier's), so idempotence, restart adoption,
the sweep and the fault cases are checked with the dummy addresses as well. The tests below
need the dummy: the VRF/dummy set-up, and the order of events (an exposure's address is never
on the dummy while its steering is missing).
"""

from __future__ import annotations

import ipaddress

import pytest

from ovnbgp.kernel import staging
from ovnbgp.kernel.objects import iface_of
from ovnbgp.model.records import DesiredState, Exposure, ExposureKind, Route
from tests.integration.test_kernel_netlink import *  # noqa: F401,F403  (re-run here)
from tests.integration.test_kernel_netlink import CRLRP, apply_all, changes, ip, make_desired

N = ipaddress.ip_network
A = ipaddress.ip_address
I = ipaddress.ip_interface


@pytest.fixture(autouse=True)
def _modules(modprobe):
    modprobe("dummy")
    modprobe("vrf")


@pytest.fixture
def advertise() -> bool:  # noqa: F811 - overrides the host tier's fixture
    return True


def dummy_addrs(kns) -> set:
    out = set()
    for line in ip(kns, "-o", "addr", "show", "dev", "ovn").splitlines():
        parts = line.split()
        if parts[2] in ("inet", "inet6") and not parts[3].startswith("fe80"):
            out.add(I(parts[3]))
    return out


def test_vrf_and_dummy_created_and_exposures_added(kns, make_reconciler):
    rec = make_reconciler()
    d = make_desired(4)
    plan, res = apply_all(rec, d)
    assert res.ok, res.lines()
    vrf = ip(kns, "-d", "link", "show", "ovn-bgp-vrf")
    assert "vrf table 10" in vrf and ",UP" in vrf
    dummy = ip(kns, "-d", "link", "show", "ovn")
    assert "master ovn-bgp-vrf" in dummy and ",UP" in dummy and "dummy" in dummy
    assert dummy_addrs(kns) == {I("172.24.8.0/32"), I("172.24.8.1/32"), I("2001:db8:8::/128"),
                                I("2001:db8:8::1/128"), I("172.24.4.146/32"), I("10.0.0.0/26")}
    # the connected routes FRR redistributes are in the VRF's table
    assert "10.0.0.0/26 dev ovn" in ip(kns, "route", "show", "table", "10")
    assert apply_all(rec, d)[0].empty()


def test_existing_vrf_and_dummy_are_adopted(kns, make_reconciler, monitor):
    kns.run("ip", "link", "add", "ovn-bgp-vrf", "type", "vrf", "table", "10")
    kns.run("ip", "link", "add", "ovn", "type", "dummy")
    kns.run("ip", "link", "set", "ovn", "master", "ovn-bgp-vrf")
    kns.run("ip", "link", "set", "ovn-bgp-vrf", "up")
    kns.run("ip", "link", "set", "ovn", "up")
    kns.run("ip", "addr", "add", "172.24.8.0/32", "dev", "ovn")
    monitor.events()
    rec = make_reconciler()
    plan, res = apply_all(rec, make_desired(4))
    assert res.ok, res.lines()
    assert not plan.links
    evs = monitor.events()
    assert ("-link", "ovn") not in evs and ("-link", "ovn-bgp-vrf") not in evs
    assert [e for e in evs if e[0] == "-addr"] == []
    assert not [e for e in evs if e[0] == "+addr" and e[2] == I("172.24.8.0/32")]


def test_dummy_enslaved_and_brought_up_when_found_loose(kns, make_reconciler):
    kns.run("ip", "link", "add", "ovn", "type", "dummy")
    rec = make_reconciler()
    res = apply_all(rec, make_desired(2))[1]
    assert res.ok, res.lines()
    dummy = ip(kns, "link", "show", "ovn")
    assert "master ovn-bgp-vrf" in dummy and ",UP" in dummy


def test_device_named_like_the_dummy_is_not_touched(kns, make_reconciler):
    kns.run("ip", "link", "add", "ovn", "type", "bridge")
    kns.run("ip", "addr", "add", "192.0.2.1/24", "dev", "ovn")
    rec = make_reconciler()
    plan, res = apply_all(rec, make_desired(2))
    assert any(n.kind == "conflict" and "ovn" in n.subject for n in plan.notices)
    assert "192.0.2.1/24" in ip(kns, "addr", "show", "dev", "ovn")
    assert "master" not in ip(kns, "link", "show", "ovn")
    assert "lookup 200" in ip(kns, "rule")  # steering still applied


def _index(events, pred):
    return next(i for i, e in enumerate(events) if pred(e))


@pytest.mark.parametrize("steering", ["rules", "table"])
def test_address_never_on_dummy_without_its_steering(kns, make_reconciler, monitor, steering):
    rec = make_reconciler()
    rec.reconcile(make_desired(0, steering=steering))  # VRF, dummy, cr-lrp, tenant subnet
    monitor.events()
    d = make_desired(40, steering=steering)
    new = {e.prefix for e in d.exposures} - {N(f"{CRLRP}/32"), N("10.0.0.0/26")}
    res = rec.reconcile(d)
    assert res.ok, res.lines()
    evs = monitor.events()
    for prefix in new:
        a = _index(evs, lambda e: e[0] == "+addr" and e[2].network == prefix)
        if steering == "rules":
            s = _index(evs, lambda e: e[0] == "+rule" and e[2] == prefix)
        else:
            s = _index(evs, lambda e: e[0] == "+route" and e[1] == 200 and e[2] == prefix)
        assert s < a, (prefix, evs[s], evs[a])

    monitor.events()
    res = rec.reconcile(make_desired(0, steering=steering))
    assert res.ok, res.lines()
    evs = monitor.events()
    for prefix in new:
        a = _index(evs, lambda e: e[0] == "-addr" and e[2].network == prefix)
        if steering == "rules":
            s = _index(evs, lambda e: e[0] == "-rule" and e[2] == prefix)
        else:
            s = _index(evs, lambda e: e[0] == "-route" and e[1] == 200 and e[2] == prefix)
        assert a < s, (prefix, evs[a], evs[s])


@pytest.mark.parametrize("steering", ["rules", "table"])
def test_large_cold_apply_in_stages_keeps_steering_first(kns, make_reconciler, monitor, steering,
                                                         monkeypatch):
    """A cold apply larger than a stage interleaves steering and exposures (staging.py): the
    first addresses come before the last steering, each after its own."""
    monkeypatch.setattr(staging, "STAGE_STEERING", 10)
    rec = make_reconciler()
    monitor.events()
    d = make_desired(40, steering=steering)
    res = rec.reconcile(d)
    assert res.ok, res.lines()
    assert dummy_addrs(kns) == {iface_of(e.prefix) for e in d.exposures}
    evs = monitor.events()
    added = "+rule" if steering == "rules" else "+route"
    steer = [i for i, e in enumerate(evs) if e[0] == added and (steering == "rules" or e[1] == 200)]
    addrs = [i for i, e in enumerate(evs) if e[0] == "+addr"]
    assert addrs and steer and addrs[0] < steer[-1], evs  # interleaved
    for e in d.exposures:
        if e.prefix.prefixlen != e.prefix.max_prefixlen:
            continue
        a = _index(evs, lambda ev: ev[0] == "+addr" and ev[2].network == e.prefix)
        s = _index(evs, lambda ev: ev[0] == added and ev[2] == e.prefix)
        assert s < a, (e.prefix, evs[s], evs[a])
    again = rec.reconcile(d, full=True)
    assert again.plan is not None and again.plan.empty(), again.plan.lines()


def test_exposure_held_back_when_its_steering_fails(kns, make_reconciler):
    rec = make_reconciler()
    d = make_desired(2, steering="table")
    bad = Route(200, N("10.5.0.0/24"), "br-ex", A("192.0.2.99"))  # unreachable gateway
    d = DesiredState(**{**d.__dict__, "routes": d.routes | {bad},
                        "exposures": d.exposures | {Exposure(N("10.5.0.0/24"), ExposureKind.TENANT_SUBNET,
                                                             "br-ex", "lrp2", "u2")}})
    plan, res = apply_all(rec, d)
    assert [op.address for op, _ in res.held] == [I("10.5.0.0/24")]
    addrs = dummy_addrs(kns)
    assert I("10.5.0.0/24") not in addrs and I("172.24.8.0/32") in addrs


def test_missing_bridge_exposures_wait_and_come(kns, make_reconciler):
    rec = make_reconciler()
    d = make_desired(2, bridge="br-late", table=201)
    rec.reconcile(d)
    assert dummy_addrs(kns) == set()
    kns.run("ip", "link", "add", "br-late", "type", "bridge")
    kns.run("ip", "link", "set", "br-late", "up")
    res = rec.reconcile(d)
    assert res.ok, res.lines()
    assert I("172.24.8.0/32") in dummy_addrs(kns)


def test_restart_keeps_addresses_no_flap(kns, make_reconciler, monitor):
    d = make_desired(200)
    first = make_reconciler()
    assert first.reconcile(d).ok
    first.close()
    monitor.events()
    fresh = make_reconciler()
    res = fresh.reconcile(d)
    plan = res.plan
    assert plan.empty(), plan.lines()[:5]
    assert changes(monitor.events()) == []
    assert len(dummy_addrs(kns)) == 202



def test_iproute2_reads_the_rt_tables_drop_in(kns, make_reconciler):
    """The default drop-in (the guest's /etc is a throw-away overlay): `ip` names the table."""
    from pathlib import Path

    drop_in = Path("/etc/iproute2/rt_tables.d/ovnbgp.conf")
    assert not drop_in.exists()
    try:
        rec = make_reconciler(rt_tables_file=drop_in)
        assert apply_all(rec, make_desired(2))[1].ok
        assert drop_in.read_text().endswith("200 br-ex # ovnbgp\n")
        assert "lookup br-ex" in ip(kns, "rule")
        assert "Database" not in kns.run("ip", "rule").stderr  # no "is corrupted" complaint
    finally:
        drop_in.unlink(missing_ok=True)


def _vlan_desired(vlan: int | None) -> DesiredState:
    """make_desired(2) plus, with `vlan`, one provider VM on that VLAN of br-ex."""
    import dataclasses

    from ovnbgp.model.records import ProxyNeighbour, Rule, VlanDevice
    d = make_desired(2)
    if vlan is None:
        return d
    dev = f"br-ex.{vlan}"
    e = Exposure(N("172.24.9.10/32"), ExposureKind.PROVIDER_VM, "br-ex", "vv", "uvv", vlan)
    return dataclasses.replace(
        d, exposures=d.exposures | {e}, rules=d.rules | {Rule(32000, 200, e.prefix, 4)},
        routes=d.routes | {Route(200, e.prefix, dev, None, True)},
        vlans=frozenset({VlanDevice("br-ex", vlan)}),
        proxy_neighbours=frozenset({ProxyNeighbour(dev, A("2001:db8:9::1"))}))


def test_vlan_device_made_recorded_and_deleted_only_when_ovnbgp_made_it(kns, make_reconciler, modprobe):
    modprobe("8021q")
    rec = make_reconciler()
    plan, res = apply_all(rec, _vlan_desired(100))
    assert res.ok, res.lines()
    link = ip(kns, "-d", "link", "show", "br-ex.100")
    assert "vlan protocol 802.1Q id 100" in link and "br-ex.100@br-ex" in link and ",UP" in link
    assert "172.24.9.10 dev br-ex.100 proto 240 scope link" in ip(kns, "route", "show", "table", "200")
    assert "2001:db8:9::1 dev br-ex.100 proxy" in ip(kns, "-6", "neigh", "show", "proxy")
    assert kns.run("cat", "/proc/sys/net/ipv4/conf/br-ex.100/proxy_arp").stdout.strip() == "1"
    assert I("172.24.9.10/32") in dummy_addrs(kns)
    assert apply_all(rec, _vlan_desired(100))[0].empty()
    # a restart (a new reconciler reading the state file) still knows the device is ovnbgp's
    rec2 = make_reconciler()
    plan, res = apply_all(rec2, _vlan_desired(None))
    assert res.ok, res.lines()
    assert plan.link_del and kns.run("ip", "link", "show", "br-ex.100", check=False).returncode != 0
    assert I("172.24.9.10/32") not in dummy_addrs(kns)
    # the operator's own VLAN device is used but never deleted
    kns.run("ip", "link", "add", "link", "br-ex", "name", "br-ex.200", "type", "vlan", "id", "200")
    kns.run("ip", "link", "set", "br-ex.200", "up")
    plan, res = apply_all(rec2, _vlan_desired(200))
    assert res.ok and not plan.links, res.lines()
    plan, res = apply_all(rec2, _vlan_desired(None))
    assert res.ok and not plan.link_del, plan.lines()
    assert "br-ex.200@br-ex" in ip(kns, "link", "show", "br-ex.200")

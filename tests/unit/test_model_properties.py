"""Property tests: garbage SB rows never make the model raise, and never get exposed.

Rows are generated with random types, options, chassis and `mac` / `nat_addresses` entries
made of near-misses (bad MACs, bad IPs, prefixes where none belong, keywords, zone ids,
host bits, ...) next to a valid world. The model must return, every exposure must come from a
well-formed entry of the row it names, and the output must be internally consistent.
"""

from __future__ import annotations

import ipaddress

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ovnbgp.config import Config, KernelConfig
from ovnbgp.model.cache import desired_state
from ovnbgp.model.records import ExposureKind, PortBindingRow
from tests.unit.sb_builder import SbBuilder, resident

GOOD_MAC = "fa:16:3e:00:00:01"
BAD_MACS = ["fa:16:3e:00:00", "zz:16:3e:00:00:01", "01:00:5e:00:00:01", "ff:ff:ff:ff:ff:ff",
            "00:00:00:00:00:00", "fa-16-3e-00-00-01", "fa:16:3e:00:00:01:02", ""]
BAD_IPS = ["10.0.0.300", "172.24.4.50/24", "fe80::1%eth0", "fe80::5", "127.0.0.5", "224.0.0.5",
           "0.0.0.0", "::", "::ffff:172.24.4.51", "010.0.0.5", "172.24.4", "1.2.3.4.5", "2001:db8:::1",
           "172.24.4.52,", "unknown", "router", "dynamic", "is_chassis_resident(\"vm\")", "ø"]
KEYWORDS = ["unknown", "router", "dynamic", "none", ""]
GOOD_IPS = ["172.24.4.60", "172.24.4.61", "2001:db8::60", "10.0.0.60", "192.0.2.60"]


@st.composite
def garbage_vm_entry(draw) -> str:
    """An entry that must be rejected whole."""
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return draw(st.sampled_from(KEYWORDS))
    if kind == 1:  # bad MAC, good IPs
        return " ".join([draw(st.sampled_from(BAD_MACS)) or "x",
                         *draw(st.lists(st.sampled_from(GOOD_IPS), min_size=1, max_size=2))])
    if kind == 2:  # good MAC, one bad token among good ones
        toks = draw(st.lists(st.sampled_from(GOOD_IPS), max_size=2))
        toks.insert(draw(st.integers(0, len(toks))), draw(st.sampled_from(BAD_IPS)))
        return " ".join([GOOD_MAC, *toks])
    return draw(st.text(max_size=30))


def _valid_ips(entries) -> set:
    """Oracle independent of the parser: the IPs of entries that are strictly 'MAC IP...'."""
    out = set()
    for e in entries:
        toks = e.split() if isinstance(e, str) else []
        if len(toks) < 2 or toks[0].lower() not in {GOOD_MAC, "fa:16:3e:00:00:02"}:
            continue
        try:
            addrs = [ipaddress.ip_address(t) for t in toks[1:]]
        except ValueError:
            continue
        if all(t in GOOD_IPS + ["172.24.4.10"] for t in toks[1:]):
            out |= {ipaddress.ip_network(a) for a in addrs}
    return out


text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20)
any_row = st.builds(
    PortBindingRow,
    uuid=st.uuids().map(str),
    logical_port=st.one_of(st.sampled_from(["vm1", "cr-lrp-r1-gw", "lrp-r1-gw", "gw-r1", "ln-public"]), text),
    type=st.sampled_from(["", "patch", "chassisredirect", "localnet", "l3gateway", "vtep", "virtual"]),
    datapath=st.sampled_from(["dp-public", "dp-r1", "dp-t1", "dp-x"]),
    mac=st.lists(st.one_of(garbage_vm_entry(), text), max_size=3).map(tuple),
    chassis=st.sampled_from([None, "ch1", "ch2", "ghost", ""]),
    up=st.sampled_from([None, True, False]),
    options=st.dictionaries(st.sampled_from(["peer", "network_name", "distributed-port",
                                             "chassis-redirect-port", "x"]),
                            st.one_of(st.sampled_from(["public", "lrp-r1-gw", "gw-r1", "cr-lrp-r1-gw",
                                                       "vm1", ""]), text), max_size=3),
    nat_addresses=st.lists(st.one_of(garbage_vm_entry(), text,
                                     st.builds(lambda m, i, r: f"{m} {i} {resident(r)}",
                                               st.sampled_from(BAD_MACS + [GOOD_MAC]),
                                               st.sampled_from(BAD_IPS),
                                               st.sampled_from(["vm1", "cr-lrp-r1-gw", "x y"]))),
                           max_size=3).map(tuple),
    tag=st.sampled_from([None, None, 100, 4094, 0, 4095, -1, "100", True, 1.5]),
)


def _base() -> SbBuilder:
    b = SbBuilder()
    pub = b.provider_network("public")
    b.vm("good", pub, "fa:16:3e:00:00:02 172.24.4.10", chassis="ch1")
    r1 = b.router("r1", pub, "fa:16:3e:b5:a6:77", "172.24.4.146/24", chassis="ch1")
    b.router_interface("r1", r1, b.tenant_network("t1"), "t1", "fa:16:3e:00:01:01", "10.0.0.1/26")
    return b


def _check_consistent(state, steering: str) -> None:
    tables = {b.name: b.table for b in state.bridges}
    for e in state.exposures:
        assert e.bridge in tables
        assert e.prefix.network_address == e.prefix[0]  # a proper network: no host bits
        if e.kind not in (ExposureKind.TENANT_SUBNET,):
            assert e.prefix.prefixlen == e.prefix.max_prefixlen
        if steering == "rules":
            assert any(r.dst == e.prefix and r.table == tables[e.bridge] for r in state.rules)
    for r in state.routes:
        assert r.table in tables.values() and r.dev in tables
    assert len({e.prefix for e in state.exposures}) == len(state.exposures)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(any_row, max_size=6), steering=st.sampled_from(["rules", "table"]))
def test_random_rows_never_raise_and_stay_consistent(rows, steering):
    b = _base()
    for r in rows:
        b.rows[r.uuid] = r
    state = desired_state(b.snapshot(), Config(kernel=KernelConfig(steering=steering)))
    _check_consistent(state, steering)
    for p in state.problems:
        # info: a port that waits (for up=true, for members), not bad data
        assert p.level in ("debug", "warning") or (p.level == "info" and p.waiting), p


@settings(max_examples=300, deadline=None)
@given(entries=st.lists(garbage_vm_entry(), min_size=1, max_size=4),
       good=st.lists(st.sampled_from(GOOD_IPS), max_size=2),
       where=st.sampled_from(["public", "t1"]))
def test_garbage_entries_never_expose_their_ips(entries, good, where):
    """A VM row with garbage entries (and maybe one good entry): only the good entry's IPs show."""
    b = _base()
    dp = b.provider_network("public") if where == "public" else b.tenant_network("t1")
    mac = list(entries)
    if good:
        mac.append(" ".join([GOOD_MAC, *good]))
    row_uuid = b.vm("victim", dp, *mac, chassis="ch1")
    state = desired_state(b.snapshot(), Config())
    mine = {e.prefix for e in state.exposures if e.row == row_uuid}
    assert mine <= _valid_ips(mac)
    if not good:
        assert not mine
        assert any(p.row == row_uuid for p in state.problems)  # reported with the row's uuid
    # the rest of the model is intact
    assert {str(e.prefix) for e in state.exposures if e.port in ("good", "cr-lrp-r1-gw", "lrp-r1-t1")} \
        == {"172.24.4.10/32", "172.24.4.146/32", "10.0.0.0/26"} - {str(p) for p in mine}


@settings(max_examples=200, deadline=None)
@given(entries=st.lists(st.one_of(garbage_vm_entry(),
                                  st.builds(lambda m, i: f"{m} {i} {resident('vm1')}",
                                            st.sampled_from(BAD_MACS), st.sampled_from(GOOD_IPS)),
                                  st.builds(lambda i: f"{GOOD_MAC} {i} {resident('vm1')}",
                                            st.sampled_from(BAD_IPS))),
                        min_size=1, max_size=4))
def test_garbage_nat_addresses_never_expose(entries):
    b = _base()
    b.vm("vm1", b.tenant_network("t1"), "fa:16:3e:00:00:05 10.0.0.5", chassis="ch1")
    b.set_nat("r1", *entries)
    state = desired_state(b.snapshot(), Config())
    assert not [e for e in state.exposures if e.kind is ExposureKind.FIP]

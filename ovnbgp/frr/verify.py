"""`ovnbgp verify`: prove that every exposure is advertised, link by link.

For each prefix ovnbgp exposes, the chain is:

    on the dummy interface -> locally originated in the VRF's BGP table
      -> imported into the default BGP table -> advertised to each Established peer

`verify()` is pure over its inputs (the desired state, the config, a reader of FRR's state and
the dummy's prefixes), so it is unit-tested with JSON captured from a real FRR. It also lists
peers that are not Established (or configured but unknown to FRR) and leftovers: prefixes FRR
advertises, or the dummy holds, that ovnbgp does not expect. A prefix advertised from a valid
path of the default table that did not come from ovnbgp's VRF (an operator's `network`
statement in the snippet) is not ovnbgp's and not a leftover; one advertised with no such path
(a stale Adj-RIB-Out, or leaked from the VRF) is.

Exit codes of the command: 0 everything holds, 1 some link is broken (or a peer is down, or a
leftover is advertised), 3 FRR cannot be read (not running, vtysh missing, unknown output).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from ovnbgp.config import Config
from ovnbgp.frr.vtysh import FAMILIES, Advertised, Rib, Summary
from ovnbgp.model.records import DesiredState, IPNetwork

EXIT_OK = 0
EXIT_BROKEN = 1
EXIT_UNREACHABLE = 3

# Link names, in chain order (used in JSON and in the messages).
DUMMY, VRF, IMPORTED, ADVERTISED = "dummy", "vrf", "imported", "advertised"


class Reader(Protocol):
    def summary(self) -> Summary: ...
    def rib(self, family: str, vrf: str = "default") -> Rib: ...
    def advertised(self, peer: str, family: str) -> Advertised: ...


def family_of(prefix: IPNetwork) -> str:
    return "ipv4" if prefix.version == 4 else "ipv6"


@dataclass(frozen=True)
class ExposureCheck:
    prefix: IPNetwork
    kind: str
    port: str
    on_dummy: bool
    in_vrf: bool
    imported: bool
    advertised: Mapping[str, bool]  # Established peer (activated in this family) -> advertised?

    @property
    def missing(self) -> list[str]:
        """Each broken link, named, in chain order."""
        out = []
        if not self.on_dummy:
            out.append("not on the dummy interface")
        if not self.in_vrf:
            out.append("not locally originated in the VRF table")
        if not self.imported:
            out.append("not imported into the default table")
        if not self.advertised:
            out.append(f"no Established {family_of(self.prefix)} peer to advertise to")
        out += [f"not advertised to {p}" for p, ok in self.advertised.items() if not ok]
        return out

    @property
    def ok(self) -> bool:
        return not self.missing

    def to_dict(self) -> dict:
        return {"prefix": str(self.prefix), "kind": self.kind, "port": self.port,
                "links": {DUMMY: self.on_dummy, VRF: self.in_vrf, IMPORTED: self.imported,
                          ADVERTISED: dict(self.advertised)},
                "ok": self.ok, "missing": self.missing}


@dataclass(frozen=True)
class PeerCheck:
    name: str
    state: str
    families: tuple[str, ...] = ()
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None

    def to_dict(self) -> dict:
        return {"peer": self.name, "state": self.state, "families": list(self.families),
                "ok": self.ok, "problem": self.problem}


@dataclass(frozen=True)
class Leftover:
    prefix: IPNetwork
    where: tuple[str, ...]  # "dummy", "advertised to P"

    def to_dict(self) -> dict:
        return {"prefix": str(self.prefix), "where": list(self.where)}


@dataclass(frozen=True)
class VerifyReport:
    vrf: str
    dummy: str
    exposures: tuple[ExposureCheck, ...] = ()
    peers: tuple[PeerCheck, ...] = ()
    leftovers: tuple[Leftover, ...] = ()
    notes: tuple[str, ...] = ()  # FRR warnings worth showing (unknown VRF, no dummy, ...)
    problems: tuple[str, ...] = field(default=())  # problems not tied to one exposure

    @property
    def ok(self) -> bool:
        return (all(e.ok for e in self.exposures) and all(p.ok for p in self.peers)
                and not self.leftovers and not self.problems)

    @property
    def exit_code(self) -> int:
        return EXIT_OK if self.ok else EXIT_BROKEN

    def to_dict(self) -> dict:
        return {
            "ok": self.ok,
            "vrf": self.vrf,
            "dummy": self.dummy,
            "exposures": [e.to_dict() for e in self.exposures],
            "peers": [p.to_dict() for p in self.peers],
            "leftovers": [x.to_dict() for x in self.leftovers],
            "problems": list(self.problems),
            "notes": list(self.notes),
            "counts": {
                "exposures": len(self.exposures),
                "broken": sum(not e.ok for e in self.exposures),
                "peers_down": sum(not p.ok for p in self.peers),
                "leftovers": len(self.leftovers),
            },
        }


def _same_peer(a: str, b: str) -> bool:
    if a == b:
        return True
    try:
        return ipaddress.ip_address(a) == ipaddress.ip_address(b)
    except ValueError:
        return False


@dataclass(frozen=True)
class Expected:
    """A prefix verify expects to be advertised, and why (for the report)."""

    prefix: IPNetwork
    kind: str
    port: str = ""


def expected_from_desired(desired: DesiredState) -> list[Expected]:
    # Not sorted(exposures): Exposure's ordering compares prefixes, and v4 with v6 do not compare.
    order = sorted(desired.exposures, key=lambda e: (e.prefix.version, e.prefix, e.kind.value, e.port))
    return [Expected(e.prefix, e.kind.value, e.port) for e in order]


def expected_from_prefixes(prefixes: Iterable[IPNetwork]) -> list[Expected]:
    """`verify --from-dummy`: what is on the dummy is what is expected."""
    return [Expected(p, "on-dummy") for p in prefixes]


def verify(desired: DesiredState | Iterable[Expected], cfg: Config, reader: Reader,
           dummy_prefixes: Iterable[IPNetwork] | None) -> VerifyReport:
    """Check the advertisement chain of every exposure in `desired`.

    desired: the DesiredState (its exposures), or Expected records.
    dummy_prefixes: the prefixes of the addresses on the dummy interface (None when the
    interface does not exist). Reader errors (FrrUnavailable, FrrParseError) propagate.
    """
    vrf = cfg.kernel.vrf_name
    dummy = cfg.kernel.dummy_name
    notes: list[str] = []
    problems: list[str] = []

    if dummy_prefixes is None:
        problems.append(f"the dummy interface {dummy!r} does not exist")
        on_dummy: frozenset[IPNetwork] = frozenset()
    else:
        on_dummy = frozenset(dummy_prefixes)

    wanted = expected_from_desired(desired) if isinstance(desired, DesiredState) else list(desired)
    expected: dict[IPNetwork, tuple[str, str]] = {}
    for x in wanted:
        expected.setdefault(x.prefix, (x.kind, x.port))

    summary = reader.summary()
    vrf_ribs: dict[str, Rib] = {}
    default_ribs: dict[str, Rib] = {}
    for fam in FAMILIES:
        vrf_ribs[fam] = reader.rib(fam, vrf)
        default_ribs[fam] = reader.rib(fam, "default")
        if vrf_ribs[fam].warning:
            notes.append(f"VRF {vrf} {fam} table: FRR says {vrf_ribs[fam].warning!r}")
        if default_ribs[fam].warning:
            notes.append(f"default {fam} table: FRR says {default_ribs[fam].warning!r}")

    # Peers: every one FRR knows, plus configured ones FRR does not know.
    peers: list[PeerCheck] = []
    for name, p in summary.peers.items():
        problem = None if p.established else f"session {p.state}, not Established"
        peers.append(PeerCheck(name=name, state=p.state, families=p.families, problem=problem))
    for cp in cfg.bgp.peers:
        ident = cp.interface or str(cp.address)
        if not any(_same_peer(ident, n) for n in summary.peers):
            peers.append(PeerCheck(name=ident, state="missing",
                                   problem="configured in ovnbgp but unknown to FRR"))
    if not summary.peers and not cfg.bgp.peers:
        problems.append("no BGP peer configured: nothing is advertised")

    advertised: dict[tuple[str, str], Advertised] = {}
    for name, p in summary.peers.items():
        if not p.established:
            continue
        for fam in p.families:
            got = reader.advertised(name, fam)
            advertised[(name, fam)] = got
            if got.warning:
                notes.append(f"advertised-routes {fam} to {name}: FRR says {got.warning!r}")

    checks = []
    for prefix, (kind, port) in sorted(expected.items(), key=lambda kv: (kv[0].version, kv[0])):
        fam = family_of(prefix)
        vrf_entry = vrf_ribs[fam].routes.get(prefix)
        def_entry = default_ribs[fam].routes.get(prefix)
        adv = {name: prefix in a.prefixes for (name, f), a in advertised.items() if f == fam}
        checks.append(ExposureCheck(
            prefix=prefix, kind=kind, port=port,
            on_dummy=prefix in on_dummy,
            in_vrf=bool(vrf_entry and vrf_entry.local),
            imported=bool(def_entry and vrf in def_entry.import_vrfs),
            advertised=adv,
        ))

    leftover_where: dict[IPNetwork, list[str]] = {}
    for prefix in sorted(on_dummy - set(expected), key=lambda p: (p.version, p)):
        leftover_where.setdefault(prefix, []).append(DUMMY)
    for (name, fam), a in sorted(advertised.items()):
        for prefix in sorted(a.prefixes - set(expected)):
            entry = default_ribs[fam].routes.get(prefix)
            if entry is not None and entry.valid and vrf not in entry.import_vrfs \
                    and prefix not in on_dummy:
                # Originated by something else than ovnbgp's VRF (the operator's own `network`
                # in bgp.snippet_file, e.g. the node's loopback): not ovnbgp's, not a leftover.
                continue
            leftover_where.setdefault(prefix, []).append(f"advertised to {name}")
    leftovers = tuple(Leftover(p, tuple(w)) for p, w in
                      sorted(leftover_where.items(), key=lambda kv: (kv[0].version, kv[0])))

    return VerifyReport(vrf=vrf, dummy=dummy, exposures=tuple(checks), peers=tuple(peers),
                        leftovers=leftovers, notes=tuple(notes), problems=tuple(problems))


# --- inputs from the node (I/O) --------------------------------------------------------------


def read_dummy_prefixes(dummy: str, netns: str | None = None) -> frozenset[IPNetwork] | None:
    """Prefixes of the addresses on the dummy interface (pyroute2, read-only); None if absent.

    A host address gives its /32 or /128; a tenant CIDR added as network/len gives that CIDR.
    IPv6 link-local addresses are not exposures and are left out. `netns`: a named network
    namespace instead of the current one (tests).
    """
    from pyroute2 import IPRoute

    with (IPRoute(netns=netns) if netns else IPRoute()) as ipr:
        idx = ipr.link_lookup(ifname=dummy)
        if not idx:
            return None
        out = set()
        for msg in ipr.get_addr(index=idx[0]):
            addr = msg.get_attr("IFA_ADDRESS") or msg.get_attr("IFA_LOCAL")
            if not addr:
                continue
            net = ipaddress.ip_interface(f"{addr}/{msg['prefixlen']}").network
            if net.version == 6 and net.is_link_local:
                continue
            out.add(net)
    return frozenset(out)


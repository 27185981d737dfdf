"""Read FRR's state: `vtysh -c '... json'` runs (I/O) and typed parsers of their output (pure).

The parsers take decoded JSON and return frozen records with ipaddress keys. FRR's JSON has no
schema and changes between versions, so every parser checks the shape it relies on and raises
FrrParseError naming the command and the missing key instead of a KeyError deep in a caller.
Shapes were captured from FRR 8.4 (tests/unit/data/frr/).

Command notes (FRR 8.4):
- `show bgp ...` without a family means IPv6 unicast; always name the family.
- `show bgp neighbors P advertised-routes json` may answer `{"warning": "No such neighbor or
  address family"}`; `show bgp ipv4 unicast neighbors P advertised-routes json` does not.
- With bgpd down, vtysh prints `bgpd is not running` on stderr and exits 1; with no daemon at
  all, `Exiting: failed to connect to any daemons.`
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ovnbgp.frr.paths import FrrPaths
from ovnbgp.model import ipcache
from ovnbgp.model.records import IPNetwork

log = logging.getLogger(__name__)

FAMILIES = ("ipv4", "ipv6")
_SUMMARY_KEYS = {"ipv4": "ipv4Unicast", "ipv6": "ipv6Unicast"}
# The peerId of a locally originated path (redistributed, `network`): there is no peer.
LOCAL_PEER_ID = "(unspec)"
# A neighbour as FRR names it: an interface name or an address.
_PEER_NAME = re.compile(r"^[A-Za-z0-9_.:%-]{1,64}$")


class FrrError(Exception):
    """Base of the errors reading FRR."""


class FrrUnavailable(FrrError):
    """vtysh is missing, FRR (or bgpd) is not running, or vtysh did not answer in time."""


class FrrParseError(FrrError):
    """vtysh answered something that is not the JSON shape this module knows."""


Runner = Callable[..., subprocess.CompletedProcess]


class Vtysh:
    """Runs vtysh against one FRR instance (argument lists only, never a shell)."""

    def __init__(self, paths: FrrPaths, *, timeout: float = 60.0, runner: Runner = subprocess.run):
        self.paths = paths
        self.timeout = timeout
        self._runner = runner

    def run(self, *cmds: str) -> str:
        """Run vtysh with one `-c` per command; return stdout. FrrUnavailable on failure."""
        out = self._run(cmds, text=True)
        assert isinstance(out, str)  # text=True
        return out

    def _run(self, cmds: Sequence[str], *, text: bool) -> str | bytes:
        argv = self.paths.vtysh_argv()
        for c in cmds:
            argv += ["-c", c]
        try:
            cp = self._runner(argv, capture_output=True, text=text, timeout=self.timeout)
        except FileNotFoundError as e:
            raise FrrUnavailable(f"vtysh not found at {self.paths.vtysh} (is FRR installed?)") from e
        except PermissionError as e:
            raise FrrUnavailable(f"cannot run {self.paths.vtysh}: {e.strerror}") from e
        except subprocess.TimeoutExpired as e:
            raise FrrUnavailable(f"vtysh did not answer within {self.timeout:g} s: {' '.join(cmds)}") from e
        if cp.returncode != 0:
            raise FrrUnavailable(_vtysh_failure(cmds, cp, self.paths))
        return cp.stdout

    def json(self, cmd: str, keep: frozenset[str] | None = None) -> Any:
        """Run one `... json` command and decode its output. With `keep`, every object keeps
        only those scalar fields (and all its objects and lists): a 10k-route table then
        decodes to a skeleton of its keys instead of ~100 MB of path attributes."""
        # Bytes straight into the decoder: a 10k-route table is megabytes, and text mode
        # would copy it twice (decode, newline translation).
        out = self._run((cmd,), text=False)
        try:
            return decode_json(out, keep)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            shown = out if isinstance(out, str) else out.decode(errors="replace")
            snippet = shown.strip()[:200] or "(empty)"
            why = getattr(e, "msg", None) or e
            raise FrrParseError(f"`{cmd}` did not return JSON ({why}): {snippet!r}") from e


def decode_json(text: str | bytes, keep: frozenset[str] | None = None) -> Any:
    """json.loads; with `keep`, objects keep only those scalar fields (see Vtysh.json)."""
    if keep is None:
        return json.loads(text)
    return json.loads(text, object_pairs_hook=lambda pairs: {
        k: v for k, v in pairs if k in keep or isinstance(v, (dict, list))})


def _vtysh_failure(cmds: Sequence[str], cp: subprocess.CompletedProcess, paths: FrrPaths) -> str:
    def as_text(v: str | bytes | None) -> str:
        return v.decode(errors="replace") if isinstance(v, bytes) else (v or "")
    text = " ".join((as_text(cp.stderr) + " " + as_text(cp.stdout)).split())
    if "failed to connect to any daemons" in text:
        return f"FRR is not running (no daemon answers on {paths.run_dir})"
    if "is not running" in text:
        # e.g. "bgpd is not running"
        return text
    return f"vtysh {' / '.join(cmds)} exited {cp.returncode}: {text[:300] or '(no output)'}"


# --- records -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PeerState:
    """One BGP neighbour of the global instance, as `show bgp summary json` reports it."""

    name: str  # interface name (unnumbered) or address, as FRR keys it
    state: str  # Established, Active, Idle, Connect, OpenSent, ... (or "Idle (Admin)")
    families: tuple[str, ...]  # families the peer is activated in (ipv4, ipv6)
    remote_as: int | None = None
    uptime_msec: int | None = None
    pfx_rcvd: int | None = None
    pfx_sent: int | None = None
    id_type: str | None = None  # "interface", "ipv4", "ipv6"

    @property
    def established(self) -> bool:
        return self.state == "Established"


@dataclass(frozen=True)
class Summary:
    router_id: str | None
    local_as: int | None
    peers: Mapping[str, PeerState] = field(default_factory=dict)
    # The counters a count-first check compares: (peer, family) -> prefixes sent, and
    # family -> entries in the default table (ribCount).
    sent: Mapping[tuple[str, str], int | None] = field(default_factory=dict)
    rib_counts: Mapping[str, int | None] = field(default_factory=dict)

    def counters(self) -> tuple:
        """The counters of the Established peers' families, comparable between two reads."""
        return (tuple(sorted(self.rib_counts.items())),
                tuple(sorted((k, v) for k, v in self.sent.items()
                             if k[0] in self.peers and self.peers[k[0]].established)))


@dataclass(frozen=True)
class RouteEntry:
    """What verify needs from one prefix of a BGP table (all its paths folded together)."""

    prefix: IPNetwork
    valid: bool  # some path is valid
    best: bool  # some path is best
    local: bool  # a valid path is locally originated (redistributed connected, network, ...)
    import_vrfs: frozenset[str] = frozenset()  # VRFs a valid path was leaked from (`import vrf`)


@dataclass(frozen=True)
class Rib:
    """One BGP table: `show bgp [vrf V] <family> unicast json`."""

    vrf: str
    family: str
    routes: Mapping[IPNetwork, RouteEntry] = field(default_factory=dict)
    warning: str | None = None  # FRR's answer when the VRF/instance does not exist


@dataclass(frozen=True)
class Advertised:
    """`show bgp <family> unicast neighbors P advertised-routes json`."""

    peer: str
    family: str
    prefixes: frozenset[IPNetwork] = frozenset()
    warning: str | None = None


# --- parsers -------------------------------------------------------------------------------


def _need(obj: Any, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(obj, dict):
        raise FrrParseError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    if key not in obj:
        raise FrrParseError(f"{where}: key {key!r} missing (keys: {', '.join(sorted(obj)[:12]) or 'none'})")
    value = obj[key]
    if not isinstance(value, kind) or isinstance(value, bool) and bool not in (
            kind if isinstance(kind, tuple) else (kind,)):
        raise FrrParseError(f"{where}: {key!r} has unexpected type {type(value).__name__}")
    return value


def _opt(obj: dict, key: str, kind: type) -> Any:
    v = obj.get(key)
    return v if isinstance(v, kind) and not isinstance(v, bool) else None


def _network(text: Any, where: str) -> IPNetwork:
    if not isinstance(text, str):
        raise FrrParseError(f"{where}: prefix {text!r} is not a string")
    try:
        return ipcache.network_text(text)
    except ValueError as e:
        raise FrrParseError(f"{where}: {text!r} is not a prefix") from e


def _warning(data: Any) -> str | None:
    if isinstance(data, dict):
        for k in ("warning", "malformedAddressOrName"):
            if k in data and len(data) <= 2:
                v = data[k]
                return f"{k}: {v}" if k != "warning" else str(v)
    return None


def parse_summary(data: Any, where: str = "show bgp summary json") -> Summary:
    """Peers of the global instance over both families.

    `{}` (no BGP instance) gives an empty Summary. A peer listed in a family's `peers` is
    activated in it; its state is the same in every family (one session).
    """
    if not isinstance(data, dict):
        raise FrrParseError(f"{where}: expected a JSON object, got {type(data).__name__}")
    router_id = None
    local_as = None
    peers: dict[str, dict[str, Any]] = {}
    fams: dict[str, list[str]] = {}
    sent: dict[tuple[str, str], int | None] = {}
    rib_counts: dict[str, int | None] = {}
    for family in FAMILIES:
        block = data.get(_SUMMARY_KEYS[family])
        if block is None:
            continue
        w = f"{where} {_SUMMARY_KEYS[family]}"
        pblock = _need(block, "peers", dict, w)
        router_id = router_id or _opt(block, "routerId", str)
        local_as = local_as or _opt(block, "as", int)
        rib_counts[family] = _opt(block, "ribCount", int)
        for name, p in pblock.items():
            if not isinstance(p, dict):
                raise FrrParseError(f"{w}: peer {name!r} is not an object")
            _need(p, "state", str, f"{w} peer {name}")
            sent[(name, family)] = _opt(p, "pfxSnt", int)
            peers.setdefault(name, p)
            fams.setdefault(name, []).append(family)
    return Summary(
        router_id=router_id,
        local_as=local_as,
        peers={
            name: PeerState(
                name=name,
                state=p["state"],
                families=tuple(fams[name]),
                remote_as=_opt(p, "remoteAs", int),
                uptime_msec=_opt(p, "peerUptimeMsec", int),
                pfx_rcvd=_opt(p, "pfxRcd", int),
                pfx_sent=_opt(p, "pfxSnt", int),
                id_type=_opt(p, "idType", str),
            )
            for name, p in peers.items()
        },
        sent=sent,
        rib_counts=rib_counts,
    )


# The fields parse_rib/parse_advertised/_warning read (Vtysh.json's `keep`).
RIB_FIELDS = frozenset({"valid", "bestpath", "nhVrfName", "peerId", "warning",
                        "malformedAddressOrName"})


def parse_rib(data: Any, family: str, vrf: str = "default", where: str | None = None) -> Rib:
    """A BGP table. A VRF FRR does not know gives an empty Rib with `warning` set."""
    where = where or f"show bgp{'' if vrf == 'default' else ' vrf ' + vrf} {family} unicast json"
    warning = _warning(data)
    if warning is not None:
        return Rib(vrf=vrf, family=family, warning=warning)
    if isinstance(data, dict) and not data:
        # No BGP instance for that VRF at all.
        return Rib(vrf=vrf, family=family, warning="no BGP instance")
    routes_in = _need(data, "routes", dict, where)
    routes: dict[IPNetwork, RouteEntry] = {}
    for text, paths in routes_in.items():
        prefix = _network(text, where)
        if prefix.version != (4 if family == "ipv4" else 6):
            raise FrrParseError(f"{where}: {text} is not an {family} prefix")
        if not isinstance(paths, list):
            raise FrrParseError(f"{where}: paths of {text} are not a list")
        valid = best = local = False
        vrfs: set[str] = set()
        for path in paths:
            if not isinstance(path, dict):
                raise FrrParseError(f"{where}: a path of {text} is not an object")
            if path.get("valid") is not True:
                continue
            valid = True
            best = best or path.get("bestpath") is True
            nh_vrf = path.get("nhVrfName")
            if isinstance(nh_vrf, str) and nh_vrf != vrf:
                vrfs.add(nh_vrf)
            elif path.get("peerId") == LOCAL_PEER_ID:
                local = True
        routes[prefix] = RouteEntry(prefix=prefix, valid=valid, best=best, local=local,
                                    import_vrfs=frozenset(vrfs))
    return Rib(vrf=vrf, family=family, routes=routes)


def parse_advertised(data: Any, peer: str, family: str, where: str | None = None) -> Advertised:
    """Prefixes advertised to a peer. FRR's warnings (unknown peer/family) are kept, not raised."""
    where = where or f"show bgp {family} unicast neighbors {peer} advertised-routes json"
    warning = _warning(data)
    if warning is not None:
        return Advertised(peer=peer, family=family, warning=warning)
    if isinstance(data, dict) and not data:
        return Advertised(peer=peer, family=family)
    routes = _need(data, "advertisedRoutes", dict, where)
    return Advertised(peer=peer, family=family,
                      prefixes=frozenset(_network(p, where) for p in routes))


# --- the reader verify uses ----------------------------------------------------------------


class FrrReader:
    """The FRR state verify reads, from a live instance through vtysh."""

    def __init__(self, vtysh: Vtysh):
        self.vtysh = vtysh

    def summary(self) -> Summary:
        cmd = "show bgp summary json"
        return parse_summary(self.vtysh.json(cmd), cmd)

    def rib(self, family: str, vrf: str = "default") -> Rib:
        cmd = (f"show bgp {family} unicast json" if vrf == "default"
               else f"show bgp vrf {vrf} {family} unicast json")
        return parse_rib(self.vtysh.json(cmd, keep=RIB_FIELDS), family, vrf, cmd)

    def advertised(self, peer: str, family: str) -> Advertised:
        if not _PEER_NAME.fullmatch(peer):
            # The name comes from FRR's own summary; never pass anything odd back to vtysh.
            raise FrrParseError(f"show bgp summary json: unexpected peer name {peer!r}")
        cmd = f"show bgp {family} unicast neighbors {peer} advertised-routes json"
        return parse_advertised(self.vtysh.json(cmd, keep=RIB_FIELDS), peer, family, cmd)

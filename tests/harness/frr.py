"""Real FRR instances for tests: several on one kernel, each optionally in its own netns.

Layout of an instance named N (checked with FRR 8.4):

    <base>/                     short private dir under /tmp, owned by frr (socket paths!)
    <base>/N/                   = .vty_dir = .conf_dir: zebra.vty, bgpd.vty, <daemon>.pid,
                                  zserv.api, vtysh.conf (empty), frr.conf (= .config_path),
                                  <daemon>.conf (empty per-daemon files, so /etc/frr is unused)
    <workdir>/<daemon>.log      each daemon's stdout (`--log stdout`), kept with the test

Daemons run as user frr (`-u frr -g frr`, FRR's normal privilege drop; they keep the
capabilities they need), with `-N N`, `-i`, `-z`, `--vty_socket <base>/N`, `-f` and `-P 0` (no
TCP vty port, which would clash between instances in one namespace). The config is applied as
FRR's init does at boot: `vtysh -b` reads <conf_dir>/frr.conf; it is checked first with
`vtysh -C` (dry run), so a bad config fails the fixture with the offending line.

Reaching an instance with vtysh or frr-reload.py: vtysh's `-N` appends the name to both
--vty_socket and --config_dir, so either form works:
    vtysh --vty_socket <base>/N --config_dir <base>/N ...          (.vtysh_args)
    vtysh --vty_socket <base> --config_dir <base> -N N ...
    frr-reload.py --vty_socket <base>/N --confdir <base>/N --rundir <base>/N --reload FILE
bgpd listens on port 179 of its namespace: run at most one instance with bgpd per namespace
(give each instance a netns when tests may run in parallel).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.harness.netns import Netns, unique_name, veth
from tests.harness.proc import CommandError, Daemon, DaemonError, run, socket_ready, wait_for

FRR_BIN = Path("/usr/lib/frr")
VTYSH = "vtysh"
FRR_RELOAD = Path("/usr/lib/frr/frr-reload.py")
FRR_USER = "frr"
# Start order; stop is the reverse (zebra first: the others connect to its zserv socket).
DAEMON_ORDER = ("zebra", "mgmtd", "staticd", "bgpd", "bfdd")


def prepare_frr_dirs() -> None:
    """FRR outside systemd needs /run/frr and /var/tmp/frr writable by user frr."""
    import pwd

    pw = pwd.getpwnam(FRR_USER)
    for d in ("/run/frr", "/var/tmp/frr"):
        os.makedirs(d, exist_ok=True)
        os.chown(d, pw.pw_uid, pw.pw_gid)


def _chown_frr(path: Path) -> None:
    import pwd

    pw = pwd.getpwnam(FRR_USER)
    os.chown(path, pw.pw_uid, pw.pw_gid)


class FrrInstance:
    """One FRR instance (zebra + bgpd by default) with its own sockets, pids and config."""

    def __init__(self, name: str, workdir: Path | str, netns: Netns | str | None = None,
                 daemons: Sequence[str] = ("zebra", "bgpd"),
                 daemon_args: dict[str, Sequence[str]] | None = None):
        if not name or "/" in name or len(name) > 32:
            raise ValueError(f"bad FRR instance name {name!r}")
        self.name = name
        self.workdir = Path(workdir)
        self.netns = netns.name if isinstance(netns, Netns) else netns
        self.daemons = tuple(sorted(daemons, key=lambda d: DAEMON_ORDER.index(d)
                                    if d in DAEMON_ORDER else len(DAEMON_ORDER)))
        if "zebra" not in self.daemons:
            raise ValueError("an FRR instance needs zebra")
        self.base: Path | None = None
        self.procs: dict[str, Daemon] = {}
        # Extra options per daemon, as /etc/frr/daemons' `zebra_options` (e.g. zebra -r -K 60).
        self.daemon_args = {d: list(a) for d, a in (daemon_args or {}).items()}

    def __repr__(self) -> str:
        return f"FrrInstance({self.name!r}, netns={self.netns!r})"

    # --- paths ---------------------------------------------------------------------------

    @property
    def vty_dir(self) -> Path:
        """Directory of this instance's *.vty sockets (also its config dir)."""
        if self.base is None:
            raise RuntimeError(f"FRR instance {self.name} is not started")
        return self.base / self.name

    @property
    def conf_dir(self) -> Path:
        return self.vty_dir

    @property
    def config_path(self) -> Path:
        """The instance's integrated config (its /etc/frr/frr.conf); applied on (re)start."""
        return self.vty_dir / "frr.conf"

    @property
    def vtysh_args(self) -> list[str]:
        """vtysh argv prefix that reaches this instance."""
        return [VTYSH, "--vty_socket", str(self.vty_dir), "--config_dir", str(self.conf_dir)]

    def reload_args(self) -> list[str]:
        """frr-reload.py argv prefix for this instance (append --test/--reload FILE)."""
        return [str(FRR_RELOAD), "--vty_socket", str(self.vty_dir), "--confdir",
                str(self.conf_dir), "--rundir", str(self.vty_dir)]

    def pid_of(self, daemon: str) -> int | None:
        """The pid the daemon wrote to its pid file (None if absent)."""
        try:
            return int((self.vty_dir / f"{daemon}.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def log_path(self, daemon: str) -> Path:
        return self.workdir / f"{daemon}.log"

    # --- lifecycle -----------------------------------------------------------------------

    def start(self, config_text: str, timeout: float = 20) -> FrrInstance:
        """Write config_text to config_path, start the daemons, apply it (`vtysh -b`)."""
        prepare_frr_dirs()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.base = Path(tempfile.mkdtemp(prefix=f"ovnbgp-frr.{self.name}.", dir="/tmp"))
        try:
            _chown_frr(self.base)
            self.vty_dir.mkdir()
            _chown_frr(self.vty_dir)
            for f in ("vtysh.conf", *(f"{d}.conf" for d in self.daemons)):
                (self.vty_dir / f).touch()
                _chown_frr(self.vty_dir / f)
            self.write_config(config_text)
            self.check_config(self.config_path)
            self._start_daemons(timeout)
            self.apply_config()
        except BaseException:
            self.stop()
            raise
        return self

    def write_config(self, config_text: str) -> None:
        self.config_path.write_text(config_text)
        os.chmod(self.config_path, 0o640)
        _chown_frr(self.config_path)

    def check_config(self, path: Path | str) -> None:
        """`vtysh -C -f path` dry run; DaemonError quoting vtysh's complaint if invalid."""
        cp = run([VTYSH, "--config_dir", str(self.conf_dir), "-C", "-f", str(path)], check=False)
        if cp.returncode != 0:
            log = self.workdir / "vtysh-check.log"
            log.write_text(f"vtysh -C -f {path} exited {cp.returncode}\n{cp.stdout}{cp.stderr}"
                           f"--- {path} ---\n{Path(path).read_text()}")
            raise DaemonError(f"vtysh (FRR instance {self.name})", "config does not parse", log)

    def _start_daemons(self, timeout: float) -> None:
        for d in self.daemons:
            argv = [FRR_BIN / d, "-N", self.name, "-i", self.vty_dir / f"{d}.pid",
                    "--vty_socket", self.vty_dir, "-f", self.vty_dir / f"{d}.conf",
                    "-u", FRR_USER, "-g", FRR_USER, "-P", "0", "--log", "stdout",
                    *self.daemon_args.get(d, ())]
            if d in ("zebra", "bgpd", "staticd", "bfdd", "mgmtd"):
                argv += ["-z", self.vty_dir / "zserv.api"]
            proc = Daemon(f"{d} (FRR instance {self.name})", argv, self.log_path(d),
                          netns=self.netns)
            self.procs[d] = proc
            vty = self.vty_dir / f"{d}.vty"
            proc.start(lambda vty=vty: socket_ready(vty), timeout)

    def apply_config(self) -> None:
        """Apply config_path to the running daemons as FRR's init does (`vtysh -b`)."""
        cp = run([*self.vtysh_args, "-b"], check=False, timeout=60)
        if cp.returncode != 0:
            log = self.workdir / "vtysh-boot.log"
            log.write_text(f"vtysh -b exited {cp.returncode}\n{cp.stdout}{cp.stderr}")
            raise DaemonError(f"vtysh (FRR instance {self.name})",
                              f"applying {self.config_path} failed", log)

    def stop(self) -> None:
        """Stop all daemons (reverse start order) and remove the socket dir; idempotent."""
        for d in reversed(list(self.procs)):
            self.procs.pop(d).stop()
        if self.base is not None:
            shutil.rmtree(self.base, ignore_errors=True)
            self.base = None
        try:  # the daemons create /run/frr/<name> for -N (empty with our paths)
            os.rmdir(f"/run/frr/{self.name}")
        except OSError:
            pass

    def stop_daemon(self, daemon: str) -> None:
        """Stop one daemon (e.g. bgpd, to simulate a crash with kill=True use kill_daemon)."""
        self.procs[daemon].stop()

    def kill_daemon(self, daemon: str) -> None:
        """SIGKILL one daemon, as a crash would."""
        self.procs[daemon].kill()

    def start_daemon(self, daemon: str, timeout: float = 20) -> None:
        """(Re)start one daemon with an EMPTY config, as watchfrr does after a crash."""
        proc = self.procs[daemon]
        proc.start(lambda: socket_ready(self.vty_dir / f"{daemon}.vty"), timeout)

    def restart(self, apply_config: bool = True, timeout: float = 20) -> None:
        """Restart all daemons; then apply config_path (like `systemctl restart frr`) unless
        apply_config=False (daemons come back empty, as after a bare crash restart)."""
        for d in reversed(self.daemons):
            self.procs[d].stop()
        for d in self.daemons:
            self.start_daemon(d, timeout)
        if apply_config:
            self.apply_config()

    def __enter__(self) -> FrrInstance:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- vtysh ---------------------------------------------------------------------------

    def vtysh(self, *cmds: str, timeout: float = 60) -> str:
        """Run vtysh commands (each a -c) against this instance; CommandError on failure."""
        argv = list(self.vtysh_args)
        for c in cmds:
            argv += ["-c", c]
        return run(argv, timeout=timeout).stdout

    def vtysh_json(self, cmd: str, timeout: float = 60) -> Any:
        """Run one `... json` show command and parse its output."""
        out = self.vtysh(cmd, timeout=timeout)
        try:
            return json.loads(out)
        except json.JSONDecodeError as e:
            raise ValueError(f"{self.name}: `{cmd}` did not return JSON: {out[:500]!r}") from e

    def configure(self, *lines: str) -> str:
        """Apply config lines in `configure terminal` (e.g. "router bgp 1", " network ...")."""
        return self.vtysh("configure terminal", *lines)

    def running_config(self) -> str:
        return self.vtysh("show running-config")


# --- BGP helpers (for tests that need a session or a route at the peer) ---------------------


def bgp_peer_state(inst: FrrInstance, peer: str, vrf: str | None = None) -> str | None:
    """State of a BGP neighbour from `show bgp [vrf V] summary json` (any family), or None."""
    cmd = f"show bgp vrf {vrf} summary json" if vrf else "show bgp summary json"
    data = inst.vtysh_json(cmd)
    for family in data.values():
        if isinstance(family, dict) and peer in family.get("peers", {}):
            return family["peers"][peer].get("state")
    return None


def wait_bgp_established(inst: FrrInstance, peer: str, timeout: float = 30,
                         vrf: str | None = None) -> None:
    """Wait until the session to `peer` is Established; TimeoutError shows the summary."""
    wait_for(lambda: bgp_peer_state(inst, peer, vrf) == "Established", timeout=timeout,
             what=f"BGP session {inst.name} -> {peer} Established",
             details=lambda: inst.vtysh("show bgp summary") + _logs(inst))


def bgp_prefixes(inst: FrrInstance, afi: str = "ipv4", vrf: str | None = None) -> dict[str, Any]:
    """The BGP table as {prefix: [paths]} from `show bgp [vrf V] <afi> unicast json`."""
    v = f"vrf {vrf} " if vrf else ""
    data = inst.vtysh_json(f"show bgp {v}{afi} unicast json")
    return data.get("routes", {}) or {}


def wait_bgp_prefix(inst: FrrInstance, prefix: str, *, present: bool = True, afi: str = "ipv4",
                    timeout: float = 30, vrf: str | None = None,
                    source: FrrInstance | None = None) -> None:
    """Wait until `prefix` is (or, with present=False, is no longer) in inst's BGP table. On
    a timeout the error also shows the state of `source` (the FRR that should advertise it)."""
    state = "in" if present else "gone from"

    def details() -> str:
        text = inst.vtysh(f"show bgp {afi} unicast") + _logs(inst)
        return text + (_source_state(source, afi) if source is not None else "")

    wait_for(lambda: (prefix in bgp_prefixes(inst, afi, vrf)) == present, timeout=timeout,
             what=f"{prefix} {state} the {afi} BGP table of {inst.name}", details=details)


def _source_state(inst: FrrInstance, afi: str) -> str:
    """Every VRF's BGP table and zebra's routes of the advertising FRR, its config, its logs."""
    ip = "ip" if afi == "ipv4" else "ipv6"
    parts = [f"\n=== advertising FRR {inst.name} ==="]
    for cmd in (f"show bgp vrf all {afi} unicast", f"show {ip} route vrf all", "show bgp summary",
                "show running-config"):
        try:
            parts.append(f"--- {cmd} ---\n{inst.vtysh(cmd, timeout=20)}")
        except Exception as e:  # noqa: BLE001 - a diagnostic, never the failure itself
            parts.append(f"--- {cmd} --- failed: {e!r}")
    return "\n".join(parts) + _logs(inst)


def _logs(inst: FrrInstance) -> str:
    return "".join(f"\n--- {d}.log ---\n{p.log_tail(15)}" for d, p in inst.procs.items())


# --- a node + leaf pair ----------------------------------------------------------------------


@dataclass
class FrrPair:
    """Two instances in two namespaces joined by a veth, with an eBGP session between them.

    `node` (AS NODE_AS) plays the ovnbgp host's FRR, `leaf` (AS LEAF_AS) its leaf switch.
    """

    node: FrrInstance
    leaf: FrrInstance
    node_ns: Netns
    leaf_ns: Netns
    node_if: str
    leaf_if: str
    node_ip: str
    leaf_ip: str
    node_as: int
    leaf_as: int


NODE_AS, LEAF_AS = 64999, 65000
NODE_IP, LEAF_IP, LINK_PREFIX = "100.64.0.1", "100.64.0.2", 30
NODE_IP6, LEAF_IP6 = "fd00:64::1", "fd00:64::2"


def bgp_config(hostname: str, asn: int, router_id: str, neighbour: str, neighbour_as: int,
               extra: str = "") -> str:
    """A minimal eBGP speaker config with fast timers (tests want sessions up in seconds)."""
    return f"""frr defaults traditional
hostname {hostname}
log stdout informational
!
router bgp {asn}
 bgp router-id {router_id}
 no bgp ebgp-requires-policy
 no bgp network import-check
 timers bgp 3 9
 neighbor {neighbour} remote-as {neighbour_as}
 neighbor {neighbour} timers connect 1
 neighbor {neighbour} advertisement-interval 0
{extra}!
"""


def start_frr_pair(workdir: Path, netns_factory, node_extra: str = "",
                   leaf_extra: str = "", timeout: float = 30) -> FrrPair:
    """Build the pair (caller stops both instances; netns_factory deletes the namespaces)."""
    node_ns, leaf_ns = netns_factory("node"), netns_factory("leaf")
    veth(node_ns, "eth-leaf", leaf_ns, "eth-node")
    node_ns.run("ip", "addr", "add", f"{NODE_IP}/{LINK_PREFIX}", "dev", "eth-leaf")
    leaf_ns.run("ip", "addr", "add", f"{LEAF_IP}/{LINK_PREFIX}", "dev", "eth-node")
    node_ns.run("ip", "addr", "add", f"{NODE_IP6}/64", "dev", "eth-leaf", "nodad")
    leaf_ns.run("ip", "addr", "add", f"{LEAF_IP6}/64", "dev", "eth-node", "nodad")
    pair = FrrPair(
        node=FrrInstance(unique_name("node"), workdir / "frr-node", node_ns),
        leaf=FrrInstance(unique_name("leaf"), workdir / "frr-leaf", leaf_ns),
        node_ns=node_ns, leaf_ns=leaf_ns, node_if="eth-leaf", leaf_if="eth-node",
        node_ip=NODE_IP, leaf_ip=LEAF_IP, node_as=NODE_AS, leaf_as=LEAF_AS)
    try:
        pair.leaf.start(bgp_config("leaf", LEAF_AS, LEAF_IP, NODE_IP, NODE_AS, leaf_extra))
        pair.node.start(bgp_config("node", NODE_AS, NODE_IP, LEAF_IP, LEAF_AS, node_extra))
        wait_bgp_established(pair.node, LEAF_IP, timeout=timeout)
        wait_bgp_established(pair.leaf, NODE_IP, timeout=timeout)
    except BaseException:
        pair.node.stop()
        pair.leaf.stop()
        raise
    return pair


@pytest.fixture
def frr_pair(tmp_path: Path, netns_factory) -> Iterator[FrrPair]:
    """Node + leaf FRR (zebra+bgpd) in two netns over a veth, eBGP session Established."""
    pair = start_frr_pair(tmp_path, netns_factory)
    try:
        yield pair
    finally:
        pair.node.stop()
        pair.leaf.stop()


__all__ = ["FrrInstance", "FrrPair", "frr_pair", "start_frr_pair", "bgp_config",
           "bgp_peer_state", "wait_bgp_established", "bgp_prefixes", "wait_bgp_prefix",
           "prepare_frr_dirs", "CommandError", "DaemonError"]

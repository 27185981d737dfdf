"""OVS flow reconciler: on each provider bridge, traffic from OVN's patch port gets the bridge's
own MAC as destination, so the kernel routes it (reference design, "Traffic from OVN").

Per FlowSpec (bridge, patch port, bridge MAC) two flows in table 0:

    cookie=0x6f766e626770,priority=900,in_port=<patch ofport>,ip   actions=mod_dl_dst:<MAC>,NORMAL
    cookie=0x6f766e626770,priority=900,in_port=<patch ofport>,ipv6 actions=mod_dl_dst:<MAC>,NORMAL

and for a VLAN provider network (FlowSpec.vlan, OVN sends its traffic tagged) the same two with
`dl_vlan=VID` at priority 901 (the flat ones match tagged frames too): the frame keeps its tag,
so NORMAL hands it to the bridge's internal port and the kernel's VLAN device BRIDGE.VID, whose
MAC is the bridge's.

Ownership: the cookie (`ovnbgp` in ASCII). observe() dumps every flow of the bridge; flows with
the cookie are ovnbgp's (stale ones are deleted with `delete_strict` on their exact match), all
others are left alone, and a foreign flow with the same table, priority and match as a wanted
one is a conflict (adding ours would replace it), reported and not touched.

apply() runs one `ovs-ofctl --bundle add-flows BRIDGE -` per bridge whose lines are `add ...`
and `delete_strict ...`: one atomic OpenFlow 1.4 bundle. If the switch refuses bundles (its
`protocols` exclude OpenFlow 1.4) the same lines go without --bundle (adds before deletes; an
add with the same match replaces the old flow in place, so no gap). Argument lists only; the
flow text comes from validated values (bridge name pattern, integer ofport, MAC pattern).

The patch port's ofport comes from the caller (the daemon has Interface.ofport from the local
OVS DB) or, failing that, from `ovs-vsctl find Interface type=patch` (ovs-ofctl's port
descriptions cut names to 15 characters, and OVN's patch ports are longer). While the bridge data
is unusable (DesiredState.holds) the flows on bridges that are not mapped are kept, and while a
wanted patch port's number is unknown the flows of its bridge are kept (they cannot be told
from stale ones). Nothing is cached between reconciles except which bridges were seen: flows
lost with an ovs-vswitchd restart, or left pointing at an old ofport when the patch port was
re-created, are found by the next observe() and fixed.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from ovnbgp.config import IFNAME_RE, MAC_RE, OVS_PORT_RE, VLAN_MAX, VLAN_MIN, Config
from ovnbgp.model.records import DesiredState, FlowSpec
from ovnbgp.model.target import Notice, TargetResult

log = logging.getLogger(__name__)

COOKIE = 0x6F766E626770  # "ovnbgp"
PRIORITY = 900
_META = {"cookie", "duration", "table", "n_packets", "n_bytes", "idle_timeout", "hard_timeout",
         "idle_age", "hard_age", "importance", "send_flow_rem", "reset_counts", "no_packet_counts",
         "no_byte_counts", "check_overlap"}
_BUNDLE_REFUSED = ("bundle", "OFPBFC", "version negotiation", "OpenFlow 1.4", "OFPBRC_BAD_VERSION")


class FlowInputError(ValueError):
    """A FlowSpec that cannot be turned into a flow; nothing was changed."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid flow input: " + "; ".join(problems))


@dataclass(frozen=True, order=True)
class Flow:
    """One flow as ovnbgp sees it. `match` is the exact match text (for delete_strict);
    the fields after it are parsed from it when it has ovnbgp's shape."""

    bridge: str
    table: int
    priority: int
    match: str  # e.g. "priority=900,ip,in_port=1"
    actions: str  # normalised: "mod_dl_dst:fa:16:3e:00:00:01,NORMAL"
    cookie: int = COOKIE

    def add_line(self) -> str:
        return f"add cookie={self.cookie:#x},table={self.table},{self.match},actions={self.actions}"

    def delete_line(self) -> str:
        return f"delete_strict cookie={self.cookie:#x}/-1,table={self.table},{self.match}"

    def __str__(self) -> str:
        return f"{self.bridge}: cookie={self.cookie:#x},table={self.table},{self.match} actions={self.actions}"

    def describe(self) -> str:
        return f"flow {self}"


@dataclass(frozen=True)
class BridgeFlows:
    """The flow changes of one bridge, applied together (one bundle): what fails as one."""

    bridge: str
    adds: int
    deletes: int

    def describe(self) -> str:
        return f"flows on {self.bridge} (+{self.adds} -{self.deletes})"


def wanted_flows(spec: FlowSpec, ofport: int, priority: int = PRIORITY, cookie: int = COOKIE) -> list[Flow]:
    actions = f"mod_dl_dst:{spec.bridge_mac},NORMAL"
    vlan = ""
    if spec.vlan:  # one priority above the flat flows, which match any VLAN
        priority, vlan = priority + 1, f",dl_vlan={spec.vlan}"
    return [Flow(spec.bridge, 0, priority, f"priority={priority},{proto},in_port={ofport}{vlan}",
                 actions, cookie) for proto in ("ip", "ipv6")]


@dataclass
class FlowState:
    flows: dict[str, list[Flow]] = field(default_factory=dict)  # bridge -> every flow on it
    ofports: dict[str, int] = field(default_factory=dict)  # patch port name -> ofport
    missing: dict[str, str] = field(default_factory=dict)  # bridge -> why it was not read


@dataclass
class FlowPlan:
    add: list[Flow] = field(default_factory=list)
    delete: list[Flow] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)

    def empty(self) -> bool:
        return not self.add and not self.delete

    def change_lines(self) -> list[str]:
        return [f"+ flow {f}" for f in self.add] + [f"- flow {f}" for f in self.delete]

    def lines(self) -> list[str]:
        return self.change_lines() + [n.describe() for n in self.notices]


@dataclass
class FlowResult(TargetResult):
    """The TargetResult of the flows (changed: Flow ops by verb "add"/"del"; failed: one
    BridgeFlows per bridge whose bundle failed), and which bridges took one bundle."""

    bundled: dict[str, bool] = field(default_factory=dict)  # bridge -> applied as one bundle

    @property
    def added(self) -> list[Flow]:  # flows installed (or rewritten)
        return [c.op for c in self.changed if c.verb == "add"]  # type: ignore[misc]

    @property
    def removed(self) -> list[Flow]:
        return [c.op for c in self.changed if c.verb == "del"]  # type: ignore[misc]

    @property
    def errors(self) -> list[str]:
        return [f"{p.op.bridge}: {p.reason}" for p in self.failed]  # type: ignore[attr-defined]


def parse_dump(bridge: str, text: str) -> list[Flow]:
    """Flows from `ovs-ofctl --no-stats --no-names dump-flows` output."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or " actions=" not in line and not line.startswith("actions="):
            continue
        left, _, actions = line.partition("actions=")
        cookie, table, match_parts = 0, 0, []
        for tok in (t.strip() for t in left.strip().rstrip(",").split(", ")):
            if not tok:
                continue
            key, _, value = tok.partition("=")
            if key in _META and "," not in tok:
                if key == "cookie":
                    cookie = int(value, 0)
                elif key == "table":
                    table = int(value)
                continue
            match_parts.append(tok)
        match = ",".join(match_parts).strip(", ")
        prio = 32768
        for f in match.split(","):
            if f.startswith("priority="):
                prio = int(f.split("=", 1)[1])
        out.append(Flow(bridge, table, prio, match, normalise_actions(actions.strip()), cookie))
    return out


def normalise_actions(actions: str) -> str:
    """OpenFlow 1.2+ prints set_field:MAC->eth_dst for mod_dl_dst:MAC."""
    return re.sub(r"set_field:([0-9a-fA-F:]{17})->eth_dst", r"mod_dl_dst:\1", actions)


def _match_key(f: Flow) -> tuple:
    return (f.bridge, f.table, f.priority, frozenset(f.match.split(",")))


def validate(specs: Iterable[FlowSpec]) -> None:
    problems = []
    for s in specs:
        if not isinstance(s.bridge, str) or not IFNAME_RE.fullmatch(s.bridge):
            problems.append(f"flow on bridge {s.bridge!r}: not a valid bridge name")
        if not isinstance(s.patch_port, str) or not OVS_PORT_RE.fullmatch(s.patch_port):
            problems.append(f"flow on bridge {s.bridge!r}: patch port {s.patch_port!r} is not a valid port name")
        if not isinstance(s.bridge_mac, str) or not MAC_RE.fullmatch(s.bridge_mac):
            problems.append(f"flow on bridge {s.bridge!r}: MAC {s.bridge_mac!r} is not aa:bb:cc:dd:ee:ff")
        if (isinstance(s.vlan, bool) or not isinstance(s.vlan, int)
                or not (s.vlan == 0 or VLAN_MIN <= s.vlan <= VLAN_MAX)):
            problems.append(f"flow on bridge {s.bridge!r}: VLAN {s.vlan!r} is not 0 (flat) or "
                            f"{VLAN_MIN}..{VLAN_MAX}")
    if problems:
        raise FlowInputError(sorted(problems))


def plan(specs: Iterable[FlowSpec], observed: FlowState, *, priority: int = PRIORITY,
         cookie: int = COOKIE, held: Iterable[str] = ()) -> FlowPlan:
    """Pure: the flows to add and delete (see the module docstring). `held`: bridges whose
    flows stay as they are (the bridge data is unusable: DesiredState.holds)."""
    held = set(held)
    kept_for_ports = set()  # bridges kept as they are because a patch port's number is unknown
    specs = sorted(set(specs))
    validate(specs)
    p = FlowPlan()
    wanted: dict[tuple, Flow] = {}
    waiting_bridges: set[str] = set()
    for s in specs:
        if s.bridge in observed.missing:
            waiting_bridges.add(s.bridge)
            continue
        ofport = observed.ofports.get(s.patch_port)
        if not isinstance(ofport, int) or ofport <= 0 or ofport >= 0xFF00:
            # Its flows cannot be told from stale ones without the number: the bridge's
            # flows are kept until it is known (a patch port being re-created, or port
            # numbers read while the local OVS view changes).
            p.notices.append(Notice("waiting", f"patch port {s.patch_port} on {s.bridge}",
                                    "no OpenFlow port number yet; its flows wait and the "
                                    "bridge's flows are kept"))
            kept_for_ports.add(s.bridge)
            continue
        for f in wanted_flows(s, ofport, priority, cookie):
            wanted[_match_key(f)] = f
    for b in sorted(waiting_bridges):
        p.notices.append(Notice("waiting", f"bridge {b}", f"flows not readable ({observed.missing[b]}); "
                                                         "they wait"))
    for bridge, flows in sorted(observed.flows.items()):
        have = {_match_key(f): f for f in flows}
        if bridge in held:
            n = sum(1 for f in flows if f.cookie == cookie and _match_key(f) not in wanted)
            if n:
                p.notices.append(Notice("held", f"bridge {bridge}", f"{n} flow(s) kept: the bridge "
                                        "data is unusable and the bridge is not mapped"))
            continue
        for f in flows:
            if f.cookie != cookie:
                continue
            w = wanted.get(_match_key(f))
            if w is None and bridge not in kept_for_ports:
                p.delete.append(f)
        for key, w in sorted(wanted.items(), key=lambda kv: str(kv[1])):
            if w.bridge != bridge:
                continue
            cur = have.get(key)
            if cur is None:
                p.add.append(w)
            elif cur.cookie != cookie:
                p.notices.append(Notice("conflict", f"flow {w}",
                                        f"a flow with cookie {cur.cookie:#x} has the same match; left alone"))
            elif cur.actions != w.actions:
                p.add.append(w)  # same match: the add replaces it in place
    return p


LocalView = Callable[[], tuple[Iterable[str], Mapping[str, int]]]


class FlowReconciler:
    """observe() / diff() / apply() for ovnbgp's flows on the provider bridges; a Target
    (model/target.py)."""

    name = "flows"

    def __init__(self, cfg: Config | None = None, *, ovs_remote: str | None = None,
                 env: Mapping[str, str] | None = None, ofctl: str = "ovs-ofctl",
                 vsctl: str = "ovs-vsctl", timeout: int = 10, priority: int = PRIORITY,
                 cookie: int = COOKIE, local: LocalView | None = None):
        """cfg: the agent Config (its ovn.ovs_remote is the default ovs_remote).
        ovs_remote: local OVS DB (for ofport look-ups when the caller gives none).
        env: environment for ovs-ofctl/ovs-vsctl (e.g. OVS_RUNDIR of a test's vswitchd).
        local: () -> (local provider bridges, patch port -> ofport), for reconcile()."""
        self.local = local
        self._clean_view: tuple | None = None  # what the last clean pass was about
        if ovs_remote is None and cfg is not None:
            ovs_remote = cfg.ovn.ovs_remote
        self.ovs_remote = ovs_remote
        self.env = dict(env) if env is not None else None
        self.ofctl = ofctl
        self.vsctl = vsctl
        self.timeout = timeout
        self.priority = priority
        self.cookie = cookie
        self.seen_bridges: set[str] = set()

    def _run(self, argv: Sequence[str], input: str | None = None) -> subprocess.CompletedProcess:
        env = None
        if self.env is not None:
            env = dict(os.environ)
            env.update(self.env)
        return subprocess.run(list(argv), input=input, capture_output=True, text=True, env=env,
                              timeout=self.timeout + 10,
                              stdin=None if input is not None else subprocess.DEVNULL)

    # --- observe -----------------------------------------------------------------------------

    def observe(self, desired: DesiredState | Iterable[FlowSpec], *, bridges: Iterable[str] = (),
                ofports: Mapping[str, int] | None = None) -> FlowState:
        """Read every flow of the wanted bridges, of `bridges` (e.g. all local provider
        bridges, so a bridge that stopped being one is swept after a restart) and of those
        seen before by this reconciler. `ofports`: patch port name -> ofport."""
        specs = desired.flows if isinstance(desired, DesiredState) else frozenset(desired)
        validate(specs)
        extra = set()
        for b in set(bridges):
            if isinstance(b, str) and IFNAME_RE.fullmatch(b):
                extra.add(b)
            else:  # only looked at for stale flows: skip it, do not stop the others
                log.warning("flows: bridge name %r is not valid; not looked at", b)
        names = {s.bridge for s in specs} | extra | self.seen_bridges
        st = FlowState()
        for b in sorted(names):
            cp = self._run([self.ofctl, f"--timeout={self.timeout}", "--no-stats", "--no-names",
                            "dump-flows", b])
            if cp.returncode != 0:
                st.missing[b] = cp.stderr.strip().splitlines()[-1] if cp.stderr.strip() else f"exit {cp.returncode}"
                continue
            st.flows[b] = parse_dump(b, cp.stdout)
        self.seen_bridges |= set(st.flows)
        if ofports is not None:
            st.ofports = dict(ofports)
        elif specs:
            st.ofports = self._ofports()
        return st

    def _ofports(self) -> dict[str, int]:
        argv = [self.vsctl, f"--timeout={self.timeout}"]
        if self.ovs_remote:
            argv.append(f"--db={self.ovs_remote}")
        argv += ["--format=json", "--columns=name,ofport", "find", "Interface", "type=patch"]
        cp = self._run(argv)
        if cp.returncode != 0:
            log.warning("flows: cannot read patch port numbers: %s", cp.stderr.strip())
            return {}
        out = {}
        for name, ofport in json.loads(cp.stdout).get("data", []):
            if isinstance(ofport, int):
                out[name] = ofport
        return out

    # --- diff / apply --------------------------------------------------------------------------

    def diff(self, desired: DesiredState | Iterable[FlowSpec], observed: FlowState) -> FlowPlan:
        specs = desired.flows if isinstance(desired, DesiredState) else desired
        held: set[str] = set()
        if isinstance(desired, DesiredState) and desired.holds:
            held = set(observed.flows) - {b.name for b in desired.bridges}
        return plan(specs, observed, priority=self.priority, cookie=self.cookie, held=held)

    def apply(self, p: FlowPlan) -> FlowResult:
        res = FlowResult(notices=list(p.notices))
        per: dict[str, tuple[list[Flow], list[Flow]]] = {}
        for f in p.add:
            per.setdefault(f.bridge, ([], []))[0].append(f)
        for f in p.delete:
            per.setdefault(f.bridge, ([], []))[1].append(f)
        for bridge, (adds, dels) in sorted(per.items()):
            text = "".join(line + "\n" for line in
                           [f.add_line() for f in adds] + [f.delete_line() for f in dels])
            base = [self.ofctl, f"--timeout={self.timeout}"]
            cp = self._run(base + ["--bundle", "add-flows", bridge, "-"], input=text)
            bundled = True
            if cp.returncode != 0 and any(s in cp.stderr for s in _BUNDLE_REFUSED):
                log.info("flows: %s refuses OpenFlow bundles (%s); applying without",
                         bridge, cp.stderr.strip())
                cp = self._run(base + ["add-flows", bridge, "-"], input=text)
                bundled = False
            if cp.returncode != 0:
                res.add_failure(BridgeFlows(bridge, len(adds), len(dels)),
                                cp.stderr.strip() or f"exit {cp.returncode}")
                log.warning("flows: %s: %s", bridge, cp.stderr.strip())
                continue
            for f in adds:
                res.done("add", f)
            for f in dels:
                res.done("del", f)
            res.bundled[bridge] = bundled
        for n in p.notices:
            (log.warning if n.kind == "conflict" else log.info)("flows: %s", n.describe()[2:])
        return res

    def plan(self, desired: DesiredState | Iterable[FlowSpec], observed: FlowState) -> FlowPlan:
        """The Target protocol's name for diff()."""
        return self.diff(desired, observed)

    def reconcile(self, desired: DesiredState | Iterable[FlowSpec], *, full: bool = True,
                  bridges: Iterable[str] | None = None,
                  ofports: Mapping[str, int] | None = None) -> FlowResult:
        """observe + diff + apply; the plan is in the result (`.plan`, with its notices).
        `bridges`: every local provider bridge, so stale flows on a bridge that is no longer
        one are found after a restart too. `ofports`: patch port -> ofport if known. Both
        default to what the `local` callable of the constructor says.
        full=False (the agent's event path): nothing is read (an ovs-ofctl dump costs hundreds
        of ms) when the flows, bridges and ports are those of the last pass and it left
        nothing failed; the periodic flow check (full) still finds wiped flows."""
        bridges, ofports, view = self._view(desired, bridges, ofports)
        if not full and view == self._clean_view:
            return FlowResult()
        try:
            p = self.diff(desired, self.observe(desired, bridges=bridges, ofports=ofports))
            res = self.apply(p) if not p.empty() else FlowResult(notices=list(p.notices))
        except Exception:
            self._clean_view = None  # ovs-ofctl missing, vswitchd down: look again next time
            raise
        for n in p.notices if p.empty() else ():
            (log.warning if n.kind == "conflict" else log.debug)("flows: %s", n.describe()[2:])
        res.plan = p
        # What waits (a patch port without ofport) comes with a new local view, else the
        # periodic full pass (flow check) finds it. The last clean view stays while a pass
        # runs, so up_to_date() answers without waiting for it.
        self._clean_view = view if res.ok else None
        return res

    def up_to_date(self, desired: DesiredState) -> bool:
        """True when the flows, bridges and ports are those of the last pass, which left
        nothing failed: an event then has nothing to do here and must not wait behind a
        running flow check (it holds the agent's flows lock for an ovs-ofctl dump)."""
        return self._view(desired, None, None)[2] == self._clean_view

    def _view(self, desired: DesiredState | Iterable[FlowSpec], bridges: Iterable[str] | None,
              ofports: Mapping[str, int] | None) -> tuple[Iterable[str], Mapping[str, int] | None, tuple]:
        """(bridges, ofports, the view a pass is compared by) with the defaults filled in."""
        if bridges is None or ofports is None:
            local_bridges, local_ofports = self.local() if self.local else ((), None)
            bridges = local_bridges if bridges is None else bridges
            ofports = local_ofports if ofports is None else ofports
        specs = desired.flows if isinstance(desired, DesiredState) else frozenset(desired)
        view = (frozenset(specs), frozenset(bridges),
                None if ofports is None else frozenset(ofports.items()))
        return bridges, ofports, view


class FlowMonitor:
    """Learns that ovnbgp's flows may be gone without polling: one `ovs-ofctl monitor BRIDGE
    watch:!initial` (an OpenFlow flow monitor, idle when nothing changes) per provider bridge.

    on_change(bridge, why) is called (from a reader thread) when a flow with ovnbgp's cookie
    was deleted or modified (`ovs-ofctl del-flows` by hand, our own rewrites too: the full
    pass that follows finds nothing to do), and when the monitor's connection ends: ovs-vswitchd
    stopped or restarted, or the bridge was deleted (its flows are gone). ensure() (the agent's
    loop, after a reconcile and after a monitor ended) starts monitors for new bridges, stops those
    of bridges that went and restarts ended ones, at most once per `restart_delay` seconds
    (doubling while they end at once, e.g. while vswitchd is down); it says when to call it
    again. The agent keeps a slow full check as a safety net.
    """

    def __init__(self, on_change: Callable[[str, str], None], *,
                 env: Mapping[str, str] | None = None, ofctl: str = "ovs-ofctl",
                 cookie: int = COOKIE, restart_delay: float = 1.0, max_delay: float = 60.0,
                 clock: Callable[[], float] | None = None):
        import threading
        import time

        self.on_change = on_change
        self.env = dict(os.environ) | dict(env or {})
        self.ofctl = ofctl
        self.cookie_text = f"cookie={cookie:#x}"
        self.restart_delay = restart_delay
        self.max_delay = max_delay
        self._clock = clock or time.monotonic
        self._lock = threading.Lock()
        self._procs: dict[str, subprocess.Popen] = {}
        self._started: dict[str, float] = {}
        self._next_start: dict[str, float] = {}
        self._delay: dict[str, float] = {}
        self._threading = threading

    def ensure(self, bridges: Iterable[str]) -> float | None:
        """Monitors for exactly these bridges (ended ones restarted once their delay is over).
        Returns the seconds until a monitor is due to be restarted (call again then), None when
        every wanted monitor runs. No process is polled: a monitor's reader thread sees it end
        (on_change is called), so an idle agent can call this only after an event."""
        wanted = {b for b in bridges if isinstance(b, str) and IFNAME_RE.fullmatch(b)}
        with self._lock:
            for b in set(self._procs) - wanted:
                self._stop(b)
            if wanted <= self._procs.keys():
                return None
            now = self._clock()
            for b in sorted(wanted - self._procs.keys()):
                if now >= self._next_start.get(b, 0.0):
                    self._start(b, now)
            # Not running now: not due yet, or the start failed (its delay is set).
            waits = [self._next_start[b] - now for b in wanted - self._procs.keys()]
            return max(0.0, min(waits)) if waits else None

    def _start(self, bridge: str, now: float) -> None:
        try:
            p = subprocess.Popen([self.ofctl, "monitor", bridge, "watch:!initial"],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, text=True, env=self.env)
        except OSError as e:
            log.warning("flow monitor for %s not started: %s", bridge, e)
            self._next_start[bridge] = now + self.max_delay
            return
        self._procs[bridge] = p
        self._started[bridge] = now
        self._threading.Thread(target=self._read, args=(bridge, p), daemon=True,
                               name=f"flow-monitor-{bridge}").start()
        if bridge in self._delay:  # a restart: flows may have gone while none watched
            self.on_change(bridge, "flow monitor restarted")

    def _read(self, bridge: str, p: subprocess.Popen) -> None:
        assert p.stdout is not None
        for line in p.stdout:
            if ("event=DELETED" in line or "event=MODIFIED" in line) and self.cookie_text in line:
                self.on_change(bridge, "a flow of ovnbgp's was deleted or modified")
        p.wait()
        with self._lock:
            if self._procs.get(bridge) is not p:
                return  # stopped on purpose
            del self._procs[bridge]  # ended: ensure() starts it again after its delay
            now = self._clock()
            lived = now - self._started.get(bridge, now)
            delay = self._delay.get(bridge, self.restart_delay)
            delay = self.restart_delay if lived > 2 * delay else min(delay * 2, self.max_delay)
            self._delay[bridge] = delay
            self._next_start[bridge] = now + delay
        log.info("flow monitor of %s ended (ovs-vswitchd restarted or the bridge went?): "
                 "checking the flows", bridge)
        self.on_change(bridge, "flow monitor ended")

    def _stop(self, bridge: str) -> None:
        p = self._procs.pop(bridge)
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=2)
            except subprocess.TimeoutExpired:
                p.kill()

    def close(self) -> None:
        with self._lock:
            for b in list(self._procs):
                self._stop(b)

"""`ovnbgp explain ADDRESS`: the whole story of one IP or prefix on this node (read-only).

    story = explain(cfg, "172.24.4.10", timeout=5)   # OvnError when OVN cannot be read
    story.exit_code, story.to_dict()

Three parts, each from the code that owns it, never a second copy of a rule:
- Southbound: model/why.py (desired_state, the model's Problems with row uuids, ModelView);
- kernel and OVS: the objects the desired state holds for the address (dummy address, ip rule,
  bridge-table route, cr-lrp neighbour, the bridge's flow), looked for in what the kernel
  reconciler and the flow reconciler observe (as `ovnbgp plan` does);
- FRR: frr/verify.py's chain for the address (VRF table, default table, each Established peer).

Exit: 0 when the address is exposed, every kernel/OVS object is in place and FRR advertises it
to every Established peer; 1 when not; 3 when a source it needs cannot be read.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from ovnbgp.config import Config
from ovnbgp.model.records import DesiredState, Exposure, ExposureKind
from ovnbgp.model.why import Account, account, parse_target

EXIT_OK = 0
EXIT_NOT_OK = 1
EXIT_UNREADABLE = 3


@dataclass(frozen=True)
class Fact:
    """One object the node must (or must not) have for the address, and whether it has it."""

    what: str
    present: bool
    wanted: bool = True  # False: found although the model does not want it (a leftover)

    @property
    def ok(self) -> bool:
        return self.present == self.wanted

    def to_dict(self) -> dict:
        return {"what": self.what, "present": self.present, "wanted": self.wanted, "ok": self.ok}


@dataclass
class Story:
    account: Account
    kernel: list[Fact] = field(default_factory=list)
    frr: list[Fact] = field(default_factory=list)
    peers: list[str] = field(default_factory=list)  # peers that are not Established
    errors: list[str] = field(default_factory=list)  # sources that could not be read

    @property
    def advertised(self) -> bool:
        return self.account.exposed and bool(self.frr) and all(f.ok for f in self.kernel + self.frr)

    @property
    def exit_code(self) -> int:
        if self.account.exposed and self.errors:
            return EXIT_UNREADABLE  # cannot prove the chain
        return EXIT_OK if self.advertised else EXIT_NOT_OK

    def to_dict(self) -> dict:
        a = self.account
        return {"address": str(a.target), "chassis": a.chassis, "exposed": a.exposed,
                "advertised": self.advertised, "exit": self.exit_code,
                "exposures": [{"prefix": str(e.prefix), "kind": e.kind.value, "bridge": e.bridge,
                               "port": e.port, "port_binding": e.row} for e in a.exposures],
                "southbound": [r.to_dict() for r in a.rows],
                "kernel": [f.to_dict() for f in self.kernel],
                "frr": [f.to_dict() for f in self.frr],
                "peers_not_established": self.peers, "errors": self.errors,
                "notes": list(a.notes)}


def explain(cfg: Config, address: str, timeout: float) -> Story:
    """ValueError for an address that is not one; OvnError when OVN cannot be read."""
    from ovnbgp.ovn.watcher import read_snapshot

    target = parse_target(address)
    # The whole Port_Binding table, not only the rows this chassis can use (the agent's
    # conditional monitoring): a port bound on another chassis is part of the answer.
    whole = dataclasses.replace(cfg, ovn=dataclasses.replace(cfg.ovn, monitor_all=True))
    story = Story(account(read_snapshot(whole, timeout), cfg, target))
    _kernel(cfg, story)
    _flows(cfg, story)
    _frr(cfg, story)
    return story


# --- kernel -------------------------------------------------------------------------------------


def wanted_objects(state: DesiredState, exposures: tuple[Exposure, ...]) -> tuple[list, list, list]:
    """The rules, bridge-table routes and neighbours the desired state holds for `exposures`
    (the steering an exposure needs before it goes on the dummy)."""
    tables = {b.name: b.table for b in state.bridges}
    prefixes = {e.prefix for e in exposures}
    wanted_tables = {tables.get(e.bridge) for e in exposures}
    rules = sorted((r for r in state.rules if r.dst in prefixes
                    or (r.dst is None and r.table in wanted_tables
                        and any(p.version == r.family for p in prefixes))),
                   key=lambda r: (r.table, r.family))
    routes = [r for r in state.routes if r.table in wanted_tables and (
        r.dst in prefixes or (r.dst.prefixlen == 0 and any(p.version == r.dst.version for p in prefixes)))]
    vias = {r.gateway for r in routes if r.gateway is not None}
    vias |= {e.prefix.network_address for e in exposures if e.kind == ExposureKind.CRLRP}
    neighbours = sorted((n for n in state.neighbours if n.ip in vias), key=lambda n: (n.dev, str(n.ip)))
    return rules, sorted(routes, key=lambda r: (r.dst.version, str(r.dst))), neighbours


def _kernel(cfg: Config, story: Story) -> None:
    from ovnbgp.kernel.netlink import KernelReconciler

    a = story.account
    state = a.state
    try:
        with KernelReconciler(cfg) as rec:
            seen = rec.observe(state)
    except Exception as e:  # netlink or rt_tables unreadable: said, not a traceback
        story.errors.append(f"kernel: cannot read: {e}")
        return
    k = cfg.kernel
    on_dummy = {i.network for i in seen.addrs.get(k.dummy_name, ()) if i.network.overlaps(a.target)
                and i.version == a.target.version}
    for x in a.exposures:
        story.kernel.append(Fact(f"address {x.prefix} on the dummy {k.dummy_name} "
                                 f"(VRF {k.vrf_name})", x.prefix in on_dummy))
    for p in sorted(on_dummy - {x.prefix for x in a.exposures}, key=str):
        story.kernel.append(Fact(f"address {p} on the dummy {k.dummy_name}", True, wanted=False))
    rules, routes, neighbours = wanted_objects(state, a.exposures)
    names = {b.table: b.name for b in state.bridges}
    for r in rules:
        present = any(o.dst == r.dst and o.table == r.table and o.priority == r.priority
                      and o.family == r.family for o in seen.rules)
        to = f"to {r.dst} " if r.dst is not None else f"(all IPv{r.family}) "
        story.kernel.append(Fact(f"ip rule {to}lookup {r.table} ({names.get(r.table, '?')}) "
                                 f"priority {r.priority}", present))
    for rt in routes:
        present = any(o.table == rt.table and o.dst == rt.dst and o.dev == rt.dev
                      and o.gateway == rt.gateway for o in seen.routes)
        via = f" via {rt.gateway}" if rt.gateway is not None else ""
        story.kernel.append(Fact(f"route {rt.dst}{via} dev {rt.dev}"
                                 f"{' scope link' if rt.scope_link else ''} in table {rt.table}", present))
    for n in neighbours:
        o = seen.neighbours.get((n.dev, n.ip))
        story.kernel.append(Fact(f"neighbour {n.ip} lladdr {n.mac} dev {n.dev} (the router gateway)",
                                 o is not None and o.mac == n.mac))


def _flows(cfg: Config, story: Story) -> None:
    from ovnbgp.ovs.env import ovs_tool_env
    from ovnbgp.ovs.flows import FlowReconciler

    a = story.account
    bridges = {e.bridge for e in a.exposures}
    specs = sorted(f for f in a.state.flows if f.bridge in bridges)
    if not specs:
        return
    ofports = {p: o for info in a.local.bridges.values() for p, o in info.patch_ports.items()}
    rec = FlowReconciler(cfg, env=ovs_tool_env(cfg.ovn.ovs_remote))
    try:
        seen = rec.observe(specs, ofports=ofports)
        missing = rec.diff(specs, seen).add
    except Exception as e:
        story.errors.append(f"OVS flows: cannot read: {e}")
        return
    for b, why in sorted(seen.missing.items()):
        story.errors.append(f"OVS flows: bridge {b} not read: {why}")
    for s in specs:
        absent = s.bridge in seen.missing or any(f.bridge == s.bridge and
                                                 f"in_port={ofports.get(s.patch_port)}" in f.match
                                                 for f in missing)
        story.kernel.append(Fact(f"OVS flow on {s.bridge}: IP from {s.patch_port} to the bridge MAC "
                                 f"{s.bridge_mac}", not absent))


# --- FRR ----------------------------------------------------------------------------------------


def _frr(cfg: Config, story: Story) -> None:
    from ovnbgp.frr.paths import FrrPaths
    from ovnbgp.frr.verify import Expected, read_dummy_prefixes, verify
    from ovnbgp.frr.vtysh import FrrError, FrrReader, Vtysh

    a = story.account
    expected = [Expected(e.prefix, e.kind.value, e.port) for e in a.exposures] or \
        [Expected(a.target, "not-exposed")]
    try:
        dummy = read_dummy_prefixes(cfg.kernel.dummy_name)
    except Exception as e:
        story.errors.append(f"kernel: cannot read the dummy {cfg.kernel.dummy_name}: {e}")
        dummy = None
    try:
        report = verify(expected, cfg, FrrReader(Vtysh(FrrPaths.from_config(cfg.frr), timeout=20)),
                        dummy)
    except FrrError as e:
        story.errors.append(f"FRR: cannot read: {e}")
        return
    wanted = a.exposed
    vrf = cfg.kernel.vrf_name
    for c in report.exposures:
        story.frr.append(Fact(f"{c.prefix} in the BGP table of VRF {vrf} (locally originated)",
                              c.in_vrf, wanted))
        story.frr.append(Fact(f"{c.prefix} imported into the default BGP table", c.imported, wanted))
        for peer, ok in sorted(c.advertised.items()):
            story.frr.append(Fact(f"{c.prefix} advertised to {peer}", ok, wanted))
        if not c.advertised:
            story.frr.append(Fact(f"no Established IPv{c.prefix.version} peer to advertise "
                                  f"{c.prefix} to", False, wanted))
    story.peers = [f"{p.name}: {p.problem}" for p in report.peers if not p.ok]
    story.peers += list(report.problems)

"""Remove everything ovnbgp owns in the kernel, in the safe order (`ovnbgp cleanup`).

    rec = KernelReconciler(cfg)
    plan = teardown_plan(rec)          # what would go (nothing changed yet); plan.lines()
    result = apply_teardown(rec, plan) # ApplyResult: withdraw, steering, bridge IPs
    # ... (cleanup removes FRR's config here) ...
    delete_devices(rec, plan, result)  # the dummy, then the VRF, last

The plan is the ordinary diff against an EMPTY desired state (kernel/diff.py decides what is
ovnbgp's: the addresses on the dummy, rules/routes/neighbours with ovnbgp's route protocol,
the bridge IPs in the state file, the rt_tables lines with the `# ovnbgp` marker), minus what
the diff would create or set for an empty state (the VRF/dummy links, sysctls). apply() then
runs in its documented order: addresses off the dummy first (the withdrawal), then the
steering, then the bridge IPs. Only after that are the dummy and the VRF deleted — the one
place ovnbgp deletes them; the daemon never does (docs/architecture.md, "FRR":'s `import vrf` breaks when
the VRF is recreated). An object of someone else's is never in the plan.

Never through the kernel's side effects either: a bridge IP that is the device's last IPv4
address stays while foreign routes or neighbours depend on it (kernel/diff.py, "kept" notice),
and the dummy or the VRF stays while something not ovnbgp's depends on it (a route through it
that is not ovnbgp's or the kernel's, a foreign PERMANENT neighbour on it, another device
enslaved to the VRF): deleting it would take those down. `plan.kept` says what stayed and why.

Sysctls (ip_forward, rp_filter, proxy_arp/proxy_ndp) are left as they are: other software on
the node may rely on them, and ovnbgp does not record their values from before it started.
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass, field

from pyroute2.netlink.rtnl import RTM_DELLINK
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg

from ovnbgp.kernel import dependents
from ovnbgp.kernel import messages as M
from ovnbgp.kernel.diff import ours_on_dummy
from ovnbgp.kernel.objects import ApplyResult, KernelPlan, KernelState
from ovnbgp.model.records import DesiredState


@dataclass
class TeardownPlan:
    kernel: KernelPlan
    delete_links: list[str] = field(default_factory=list)  # dummy first, then the VRF
    kept: list[str] = field(default_factory=list)  # what stays because others depend on it

    def empty(self) -> bool:
        return self.kernel.empty() and not self.delete_links

    def lines(self) -> list[str]:
        return (self.kernel.lines() + [f"- link del {name}" for name in self.delete_links]
                + [f"! kept: {k}" for k in self.kept])

    def kept_lines(self) -> list[str]:
        """Everything left in place because something not ovnbgp's depends on it."""
        return [n.describe()[2:] for n in self.kernel.notices if n.kind == "kept"] + self.kept


def links_to_delete(observed: KernelState, dummy: str, vrf: str) -> list[str]:
    """The dummy then the VRF, each only if it exists and is of the kind ovnbgp makes (a
    device of another kind with the same name is not ovnbgp's)."""
    out = []
    d = observed.links.get(dummy)
    if d is not None and d.kind == "dummy":
        out.append(dummy)
    v = observed.links.get(vrf)
    if v is not None and v.kind == "vrf":
        out.append(vrf)
    return out


def device_users(observed: KernelState, name: str, proto: int,
                 routes: dict[str, tuple[str, ...]]) -> list[str]:
    """What is not ovnbgp's and would go with device `name`: foreign routes through it
    (`routes`, from dependents.routes_through), foreign PERMANENT neighbours on it, and the
    devices enslaved to it (the dummy, ovnbgp's, excepted by the caller's choice of `name`)."""
    out = list(routes.get(name, ()))
    out += [str(n) for (dev, _ip), n in sorted(observed.neighbours.items(), key=lambda kv: str(kv[0]))
            if dev == name and n.permanent and n.protocol != proto]
    link = observed.links.get(name)
    if link is not None:
        out += [f"device {ln.name} enslaved to {name}" for ln in sorted(
            observed.links.values(), key=lambda ln: ln.name) if ln.master == link.index]
    return out


def plan_from(observed: KernelState, kernel_plan: KernelPlan, *, dummy: str, vrf: str,
              advertise: bool = True, proto: int = 0,
              routes: dict[str, tuple[str, ...]] | None = None) -> TeardownPlan:
    """Pure: a diff against the empty state, made safe for a teardown. `routes`: foreign
    routes through the dummy and the VRF (dev -> descriptions); a device something foreign
    depends on is kept (module docstring)."""
    kernel_plan.links = []  # never create or fix the VRF/dummy on the way out
    kernel_plan.sysctls = []  # left as they are (module docstring)
    kernel_plan.steer_add = []
    kernel_plan.dummy_add = []
    kernel_plan.bridge_addr_add = []
    links = links_to_delete(observed, dummy, vrf) if advertise else []
    kept: list[str] = []
    for name in list(links):
        users = device_users(observed, name, proto, routes or {})
        if name == vrf:
            users = [u for u in users if u != f"device {dummy} enslaved to {vrf}"
                     or dummy not in links]
        if users:
            links.remove(name)
            kept.append(f"device {name}: {len(users)} object(s) ovnbgp does not own depend on it "
                        f"(first: {users[0]}); delete it by hand once they are gone")
    return TeardownPlan(kernel_plan, links, kept)


def teardown_plan(rec) -> TeardownPlan:
    """Observe the node and plan the removal of everything ovnbgp owns (changes nothing)."""
    empty = DesiredState()
    observed = rec.observe(empty)
    s = rec.settings
    kplan = rec.diff(empty, observed)
    routes = {}
    if s.advertise:
        exposed = {a.network for a in observed.addrs.get(s.dummy_name, ()) if ours_on_dummy(a)}
        routes = dependents.routes_through(rec.nl, observed.links, (s.dummy_name, s.vrf_name),
                                           s.route_protocol, families=(4, 6), derived=exposed)
    return plan_from(observed, kplan, dummy=s.dummy_name, vrf=s.vrf_name,
                     advertise=s.advertise, proto=s.route_protocol, routes=routes)


def _link_del(index: int) -> ifinfmsg:
    m = ifinfmsg()
    m["family"] = socket.AF_UNSPEC
    m["index"] = index
    m["header"]["type"] = RTM_DELLINK
    m["header"]["flags"] = M.F_REQ
    return m


def apply_teardown(rec, plan: TeardownPlan) -> ApplyResult:
    """Withdraw, then remove the steering and the bridge IPs (KernelReconciler.apply order)."""
    return rec.apply(plan.kernel) if not plan.kernel.empty() else ApplyResult()


def delete_devices(rec, plan: TeardownPlan, res: ApplyResult | None = None) -> ApplyResult:
    """Delete the dummy, then the VRF (call after apply_teardown and after FRR no longer has
    a BGP instance in the VRF)."""
    res = res if res is not None else ApplyResult()
    links = {name: ln.index for name, ln in rec.read_links().items()}
    for name in plan.delete_links:
        index = links.get(name)
        if index is None:
            continue
        r = rec.nl.execute([_link_del(index)])[0]
        if r.errno in (0, errno.ENODEV):
            res.done("del", _LinkDel(name))
        else:
            res.add_failure(_LinkDel(name), r.describe())
    return res


@dataclass(frozen=True)
class _LinkDel:
    name: str

    def describe(self) -> str:
        return f"- link del {self.name}"

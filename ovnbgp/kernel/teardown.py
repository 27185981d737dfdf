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

Sysctls (ip_forward, rp_filter, proxy_arp/proxy_ndp) are left as they are: other software on
the node may rely on them, and ovnbgp does not record their values from before it started.
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass, field

from pyroute2.netlink.rtnl import RTM_DELLINK
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg

from ovnbgp.kernel import messages as M
from ovnbgp.kernel.objects import ApplyResult, KernelPlan, KernelState
from ovnbgp.model.records import DesiredState


@dataclass
class TeardownPlan:
    kernel: KernelPlan
    delete_links: list[str] = field(default_factory=list)  # dummy first, then the VRF

    def empty(self) -> bool:
        return self.kernel.empty() and not self.delete_links

    def lines(self) -> list[str]:
        return self.kernel.lines() + [f"- link del {name}" for name in self.delete_links]


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


def plan_from(observed: KernelState, kernel_plan: KernelPlan, *, dummy: str, vrf: str,
              advertise: bool = True) -> TeardownPlan:
    """Pure: a diff against the empty state, made safe for a teardown."""
    kernel_plan.links = []  # never create or fix the VRF/dummy on the way out
    kernel_plan.sysctls = []  # left as they are (module docstring)
    kernel_plan.steer_add = []
    kernel_plan.dummy_add = []
    kernel_plan.bridge_addr_add = []
    links = links_to_delete(observed, dummy, vrf) if advertise else []
    return TeardownPlan(kernel_plan, links)


def teardown_plan(rec) -> TeardownPlan:
    """Observe the node and plan the removal of everything ovnbgp owns (changes nothing)."""
    empty = DesiredState()
    observed = rec.observe(empty)
    s = rec.settings
    return plan_from(observed, rec.diff(empty, observed), dummy=s.dummy_name, vrf=s.vrf_name,
                     advertise=s.advertise)


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

"""`ovnbgp plan` and `ovnbgp cleanup`: the reconcilers' observe/diff without the loop.

    report = make_plan(cfg)            # reads OVN (read-only), the kernel, the flows and FRR
    report.changes, report.to_dict()   # nothing on the node is changed

    cp = cleanup_plan(cfg)             # what `ovnbgp cleanup` would remove
    done = run_cleanup(cfg, cp)        # withdraw, steering, FRR config, then VRF and dummy

Both are safe while the daemon runs for reading (plan), and cleanup refuses to run while it
does (the agent would put everything back at once). Exit codes are chosen in commands.py.
"""

from __future__ import annotations

import logging
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ovnbgp.config import IFNAME_RE, Config
from ovnbgp.model.records import DesiredState
from ovnbgp.model.target import Plan

if TYPE_CHECKING:  # imported where used, at run time
    from ovnbgp.kernel.teardown import TeardownPlan
    from ovnbgp.ovs.flows import FlowPlan

LOG = logging.getLogger(__name__)

#: What FRR runs after `ovnbgp cleanup` when there was no config of the operator's before
#: ovnbgp first replaced frr.conf (see frr/reload.py ORIGINAL_SUFFIX).
EMPTY_FRR_CONFIG = ("! FRR config left by `ovnbgp cleanup`: ovnbgp's router bgp instances, "
                    "route-maps and prefix-lists removed.\n!\n")


@dataclass
class TargetPlan:
    """One target's pending changes (lines as `ovnbgp plan` prints them)."""

    changes: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def count(self) -> int:
        return len(self.changes)

    @classmethod
    def of(cls, plan: Plan) -> TargetPlan:
        """From any target's plan (model/target.py Plan)."""
        return cls(changes=plan.change_lines(), notices=[n.describe() for n in plan.notices])


@dataclass
class PlanReport:
    chassis: str = ""
    exposures: int = 0
    targets: dict[str, TargetPlan] = field(default_factory=dict)

    @property
    def changes(self) -> int:
        return sum(t.count for t in self.targets.values())

    @property
    def errors(self) -> list[str]:
        return [f"{name}: {t.error}" for name, t in self.targets.items() if t.error]

    def to_dict(self) -> dict:
        return {"chassis": self.chassis, "exposures": self.exposures, "changes": self.changes,
                "errors": self.errors,
                "targets": {name: asdict(t) | {"count": t.count} for name, t in self.targets.items()}}

    def text(self) -> str:
        out = [f"chassis {self.chassis or '-'}: {self.exposures} exposures desired; "
               f"{self.changes} change(s) pending"]
        for name, t in self.targets.items():
            head = f"{name}: " + (f"ERROR {t.error}" if t.error else
                                  f"{t.count} change(s)" if t.count else "no change")
            out.append(head)
            out += [f"  {line}" for line in t.changes + t.notices]
        return "\n".join(out) + "\n"


# --- plan ------------------------------------------------------------------------------------


def read_ovn(cfg: Config, timeout: float):
    """(desired state, local OVS view) from a read-only watcher (no events, no callbacks)."""
    from ovnbgp.model.cache import desired_state
    from ovnbgp.ovn.watcher import read_snapshot

    snapshot = read_snapshot(cfg, timeout)
    return desired_state(snapshot, cfg), snapshot.local


def kernel_plan(cfg: Config, desired: DesiredState, netns: str | None = None) -> TargetPlan:
    from ovnbgp.kernel.netlink import KernelReconciler

    t = TargetPlan()
    try:
        with KernelReconciler(cfg, netns=netns) as rec:
            return TargetPlan.of(rec.plan(desired, rec.observe(desired)))
    except Exception as e:  # unreadable tables, invalid input: reported, not a traceback
        t.error = str(e)
        return t


def flows_plan(cfg: Config, desired: DesiredState, local) -> TargetPlan:
    from ovnbgp.ovs.env import ovs_tool_env
    from ovnbgp.ovs.flows import FlowReconciler

    t = TargetPlan()
    ofports = {port: ofport for b in local.bridges.values() for port, ofport in b.patch_ports.items()}
    rec = FlowReconciler(cfg, env=ovs_tool_env(cfg.ovn.ovs_remote))
    try:
        observed = rec.observe(desired, bridges=set(local.bridge_mappings.values()), ofports=ofports)
        t = TargetPlan.of(rec.plan(desired, observed))
    except Exception as e:
        t.error = str(e)
        return t
    t.notices += [f"! bridge {b} not read: {why}" for b, why in sorted(observed.missing.items())]
    return t


def frr_plan(cfg: Config) -> TargetPlan:
    """The deltas frr-reload.py --test finds between ovnbgp's rendered config and FRR's running
    one (after vtysh -C accepts it), normalised as the applier does."""
    from ovnbgp.frr.paths import FrrPaths
    from ovnbgp.frr.reload import FrrApplier, ReloadError
    from ovnbgp.frr.render import RenderError, render_config

    t = TargetPlan()
    try:
        text = render_config(cfg)
    except RenderError as e:
        t.error = f"config not rendered: {e}"
        return t
    applier = FrrApplier(FrrPaths.from_config(cfg.frr), vrf=cfg.kernel.vrf_name, state_dir=None)
    if not applier.bgpd_running():
        t.error = "FRR is not running (no live zebra and bgpd)"
        return t
    with tempfile.TemporaryDirectory(prefix="ovnbgp-plan.") as tmp:
        candidate = Path(tmp) / "frr.conf"
        candidate.write_text(text)
        try:
            problems = applier.check(candidate)
            if problems:
                t.error = "vtysh -C refuses the rendered config: " + " / ".join(problems)
                return t
            t.changes = [d.replace("\n", " / ") for d in applier.deltas(candidate)]
        except ReloadError as e:
            t.error = str(e)
    return t


def make_plan(cfg: Config, timeout: float = 30.0, *, netns: str | None = None) -> PlanReport:
    """Raises OvnError when OVN cannot be read (nothing else to compare with)."""
    desired, local = read_ovn(cfg, timeout)
    report = PlanReport(chassis=local.system_id, exposures=len(desired.exposures))
    report.targets["kernel"] = kernel_plan(cfg, desired, netns)
    report.targets["flows"] = flows_plan(cfg, desired, local)
    report.targets["frr"] = frr_plan(cfg)
    return report


# --- cleanup ---------------------------------------------------------------------------------


def list_bridges(cfg: Config) -> tuple[list[str], str | None]:
    """Every OVS bridge (`ovs-vsctl list-br`), or ([], why) when OVS cannot be read."""
    import os

    from ovnbgp.ovs.env import ovs_tool_env

    env = None
    extra = ovs_tool_env(cfg.ovn.ovs_remote)
    if extra:
        env = dict(os.environ) | extra
    try:
        cp = subprocess.run(["ovs-vsctl", "--timeout=10", f"--db={cfg.ovn.ovs_remote}", "list-br"],
                            capture_output=True, text=True, timeout=20, env=env,
                            stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as e:
        return [], str(e)
    if cp.returncode != 0:
        return [], cp.stderr.strip() or f"ovs-vsctl exited {cp.returncode}"
    return [b for b in cp.stdout.split() if IFNAME_RE.fullmatch(b)], None


@dataclass
class CleanupPlan:
    kernel: TeardownPlan
    flows: FlowPlan | None
    flow_bridges: list[str]
    frr_source: str  # where the config FRR gets comes from
    frr_text: str
    problems: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = ["1. withdraw (addresses off the dummy), 2. steering (rules, routes, neighbours, "
               "rt_tables lines, bridge IPs ovnbgp added), 3. OVS flows, 4. FRR config, "
               "5. the dummy and the VRF:"]
        out += [f"  {line}" for line in self.kernel.lines()]
        if self.flows is not None:
            out += [f"  - flow {f}" for f in self.flows.delete]
        out.append(f"  ~ FRR config: {self.frr_source}")
        out += [f"  ! {p}" for p in self.problems]
        return out

    def to_dict(self) -> dict:
        return {"kernel": self.kernel.lines(),
                "flows": [str(f) for f in self.flows.delete] if self.flows is not None else [],
                "flow_bridges": self.flow_bridges, "frr": self.frr_source,
                "problems": self.problems}


def frr_cleanup_config(cfg: Config) -> tuple[str, str]:
    """(text, where it comes from): the operator's frr.conf that ovnbgp saved before first
    replacing it, else a config with nothing in it."""
    from ovnbgp.frr.paths import FrrPaths
    from ovnbgp.frr.reload import GENERATED_MARK, ORIGINAL_SUFFIX

    cfg_file = FrrPaths.from_config(cfg.frr).config_file
    orig = cfg_file.with_name(cfg_file.name + ORIGINAL_SUFFIX)
    try:
        text = orig.read_text()
        if not text.startswith(GENERATED_MARK):
            return text, f"restore {orig} (the config from before ovnbgp)"
    except OSError:
        pass
    return EMPTY_FRR_CONFIG, "an empty config (no config from before ovnbgp was saved)"


def without_hostname(text: str) -> str:
    """The config to reload into the running FRR: without `hostname` lines, which frr-reload.py
    cannot apply reliably (vtysh shows the machine's own name; docs/architecture.md, "frr-reload.py"). The file on disk
    keeps them."""
    return "".join(ln for ln in text.splitlines(keepends=True)
                   if not ln.strip().startswith("hostname "))


def cleanup_plan(cfg: Config, rec) -> CleanupPlan:
    from ovnbgp.kernel import rt_tables
    from ovnbgp.kernel.teardown import teardown_plan
    from ovnbgp.ovs.env import ovs_tool_env
    from ovnbgp.ovs.flows import FlowReconciler

    kplan = teardown_plan(rec)
    problems = [n for n in kplan.kernel.lines() if n.startswith("!")]
    bridges, why = list_bridges(cfg)
    if why:
        problems.append(f"OVS bridges not listed ({why}); flows on the rt_tables bridges only")
    try:
        owned = rt_tables.owned(rt_tables.read(rec.settings.rt_tables_file))
    except OSError:
        owned = {}
    flow_bridges = sorted(set(bridges) | {b for b in owned if IFNAME_RE.fullmatch(b)})
    flows = None
    if flow_bridges:
        frec = FlowReconciler(cfg, env=ovs_tool_env(cfg.ovn.ovs_remote))
        try:
            observed = frec.observe(DesiredState(), bridges=flow_bridges, ofports={})
            flows = frec.diff(DesiredState(), observed)
            problems += [f"bridge {b} not read: {w}" for b, w in sorted(observed.missing.items())
                         if b in bridges]
        except Exception as e:
            problems.append(f"flows not read: {e}")
    text, source = frr_cleanup_config(cfg)
    return CleanupPlan(kplan, flows, flow_bridges, source, text, problems)


@dataclass
class CleanupResult:
    steps: list[tuple[str, bool, str]] = field(default_factory=list)  # (step, ok, message)

    @property
    def ok(self) -> bool:
        return all(ok for _, ok, _ in self.steps)

    def add(self, step: str, ok: bool, message: str) -> None:
        (LOG.info if ok else LOG.error)("cleanup: %s: %s", step, message)
        self.steps.append((step, ok, message))


def run_cleanup(cfg: Config, rec, cp: CleanupPlan) -> CleanupResult:
    """Withdraw, steering, flows, FRR config, devices. A failed step is reported; the devices
    stay when an earlier kernel step failed, so running cleanup again finishes the job."""
    from ovnbgp.frr.paths import FrrPaths
    from ovnbgp.frr.reload import FrrApplier, install
    from ovnbgp.kernel.teardown import TeardownPlan, apply_teardown, delete_devices
    from ovnbgp.ovs.flows import FlowReconciler

    out = CleanupResult()
    kres = apply_teardown(rec, cp.kernel)
    out.add("kernel", not kres.failed,
            f"{kres.applied} removed" + "".join(f"; {ln}" for ln in kres.lines()))

    if cp.flows is not None and cp.flows.delete:
        from ovnbgp.ovs.env import ovs_tool_env

        fres = FlowReconciler(cfg, env=ovs_tool_env(cfg.ovn.ovs_remote)).apply(cp.flows)
        out.add("flows", fres.ok, f"{len(fres.removed)} removed" + "".join(
            f"; {e}" for e in fres.errors))

    paths = FrrPaths.from_config(cfg.frr)
    applier = FrrApplier(paths, vrf=cfg.kernel.vrf_name, state_dir=cfg.agent.state_dir)
    if applier.bgpd_running():
        r = applier.apply(without_hostname(cp.frr_text), retry_refused=True)
        ok = r.ok
        message = f"{r.action}: {r.message}"
        if ok and cp.frr_text != without_hostname(cp.frr_text):
            try:  # FRR loads the file verbatim at its next start, hostname line included
                install(paths.config_file, cp.frr_text)
            except OSError as e:
                ok, message = False, f"{message}; but {paths.config_file} not written: {e}"
        out.add("frr", ok, message)
    else:
        try:
            install(paths.config_file, cp.frr_text)
            out.add("frr", True, f"FRR is not running; {paths.config_file} replaced "
                    "(it starts without ovnbgp's config)")
        except OSError as e:
            out.add("frr", False, f"FRR is not running and {paths.config_file} could not be "
                    f"written: {e}")

    if cp.kernel.delete_links:
        if kres.failed:
            out.add("devices", False, "dummy and VRF kept: the kernel step failed (run again)")
        else:
            dres = delete_devices(rec, cp.kernel)
            out.add("devices", not dres.failed,
                    f"deleted {', '.join(cp.kernel.delete_links)}" if not dres.failed
                    else "; ".join(dres.lines()))
    # Left in place on purpose: removing them would take down objects that are not ovnbgp's
    # (the kernel flushes routes and neighbours with a device's last IPv4 address or with it).
    for line in cp.kernel.kept_lines() if isinstance(cp.kernel, TeardownPlan) else ():
        out.add("kept", True, line)
    return out

"""`make demo`: the whole design on one machine, with real packets, then torn down.

    python -m tests.lab.demo              # picks where to run (below), prints every step
    python -m tests.lab.demo --inside     # run here and now (root, a kernel with vrf + dummy)

It builds the spine-leaf lab of vagrant/topology.json (tests/lab: spine, two leaves per rack,
node1 and node2 each dual-homed, with OVS, a real ovn-controller and FRR, OVN central, an
outside host), starts ovnbgp on both nodes, creates what Neutron would (a provider network with
a VM on node1, a router with its gateway on node1, a tenant network behind it with a VM on
node2 and a floating IP for it), waits until the fabric has learnt the routes, runs `ovnbgp
verify` on each node, shows the leaves' BGP tables and pings every exposed address from the
outside host, which reaches them only through the routes ovnbgp made the fabric learn. It shows
the spine's two next hops (one per leaf) for a VM, pulls one of node1's uplinks for a few
seconds while the outside host pings (the pings lost and the time until answered again are
printed, measured as tests/vm/test_failover.py does). Then it tears everything down. The exit
status is 0 only if every step passed (a failed verify or ping is 1).

Where it runs: every host of the lab is a network namespace and the agent needs the `vrf` and
`dummy` kernel drivers. If this kernel has them (checked by creating both in a throwaway
namespace) and we are root, the demo runs natively; otherwise (these CI machines: no dummy,
no vrf) it boots User-Mode Linux once (tests/vm/uml.py, Debian's linux.uml, which has both) and
runs the same code inside. OVNBGP_DEMO_UML=1 forces User-Mode Linux, OVNBGP_DEMO_UML=0 forces
native. When a step fails, the lab's logs and configs are kept in a directory the last line
names.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MODULES = ("tun", "veth", "ipv6", "vrf", "dummy")
UML_TIMEOUT = 1200.0
EXIT_FAILED = 1
DEMO_HOLD = 3.0  # seconds the demo's uplink stays down
DEMO_BOUND = 15.0  # seconds within which the fabric must route around it and back


class DemoFailed(RuntimeError):
    """A step did not give the expected result; the message says which and why."""


# --- output ----------------------------------------------------------------------------------

_T0 = time.monotonic()


def step(text: str) -> None:
    print(f"\n==> [{time.monotonic() - _T0:6.1f} s] {text}", flush=True)


def say(text: str = "") -> None:
    print(text, flush=True)


def show(title: str, text: str) -> None:
    say(f"--- {title}")
    say(text.rstrip("\n"))


# --- where to run --------------------------------------------------------------------------------


def native_kernel_ok() -> tuple[bool, str]:
    """Root, and this kernel can make a VRF and a dummy (tried in a throwaway namespace)."""
    if os.geteuid() != 0:
        return False, "not root"
    for mod in MODULES:
        subprocess.run(["modprobe", mod], capture_output=True)
    ns = f"ovnbgp-demo-probe-{os.getpid()}"
    if subprocess.run(["ip", "netns", "add", ns], capture_output=True).returncode != 0:
        return False, "cannot create a network namespace"
    try:
        for kind, extra in (("vrf", ["table", "10"]), ("dummy", [])):
            cp = subprocess.run(["ip", "-n", ns, "link", "add", f"probe-{kind}", "type", kind, *extra],
                                capture_output=True, text=True)
            if cp.returncode != 0:
                return False, f"the kernel has no {kind} driver ({cp.stderr.strip()})"
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    return True, "root, vrf and dummy available"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.lab.demo", description=__doc__.split("\n\n")[0])
    ap.add_argument("--inside", action="store_true",
                    help="run the demo in this kernel now (what the User-Mode Linux boot runs)")
    args = ap.parse_args(argv)
    if args.inside:
        return run_demo(Path(os.environ.get("OVNBGP_VM_OUT") or tempfile.mkdtemp(prefix="ovnbgp-demo.")))

    forced = os.environ.get("OVNBGP_DEMO_UML")
    native, why = native_kernel_ok() if forced != "1" else (False, "OVNBGP_DEMO_UML=1")
    if forced == "0" and not native:
        print(f"demo: OVNBGP_DEMO_UML=0 but this kernel cannot run the lab: {why}", file=sys.stderr)
        return 2
    results = Path(tempfile.mkdtemp(prefix="ovnbgp-demo."))
    if native:
        say(f"demo: running natively ({why})")
        status = run_demo(results)
    else:
        status = run_in_uml(results, why)
    if status == 0:
        shutil.rmtree(results, ignore_errors=True)
    else:
        say(f"demo: FAILED (exit status {status}); logs and configs kept in {results}")
    return status


def run_in_uml(results: Path, why: str) -> int:
    from tests.vm import uml

    say(f"demo: this kernel cannot run the lab natively ({why}); booting User-Mode Linux "
        f"({uml.LINUX_UML}) and running the demo inside")
    console = _QuietConsole(sys.stdout.buffer)
    try:
        res = uml.run([sys.executable, "-m", "tests.lab.demo", "--inside"], mem="2G",
                      workdir=results, timeout=UML_TIMEOUT, cwd=REPO, expose=[REPO, sys.prefix],
                      hostname="ovnbgp-demo", out=console)
    except uml.UmlError as e:
        print(f"demo: cannot boot User-Mode Linux: {e}", file=sys.stderr)
        return 2
    finally:
        console.close()
    say(f"demo: User-Mode Linux: {res.figures()}")
    return res.status


class _QuietConsole:
    """The UML console without the kernel's harmless boot complaints (the demo's own output,
    and anything else the kernel says, passes through line by line)."""

    NOISE = (b"SELinux: ", b"mmapper_init - find_iomem failed",
             b"Failed to initialize ubd device", b"reboot: System halted")

    def __init__(self, sink):
        self.sink = sink
        self.pending = b""

    def write(self, data: bytes) -> None:
        lines = (self.pending + data).split(b"\n")
        self.pending = lines.pop()
        for line in lines:
            if not line.startswith(self.NOISE):
                self.sink.write(line + b"\n")

    def flush(self) -> None:
        self.sink.flush()

    def close(self) -> None:
        if self.pending:
            self.sink.write(self.pending + b"\n")
            self.pending = b""
        self.sink.flush()


# --- the demo itself -----------------------------------------------------------------------------


def run_demo(out: Path) -> int:
    """Build, expose, prove, tear down. 0 if everything passed."""
    from tests.harness.frr import prepare_frr_dirs
    from tests.lab.builder import Lab

    for mod in MODULES:
        cp = subprocess.run(["modprobe", mod], capture_output=True, text=True)
        if cp.returncode != 0 and not Path("/sys/module", mod).exists():
            print(f"demo: modprobe {mod} failed: {cp.stderr.strip()}", file=sys.stderr)
            return 2
    prepare_frr_dirs()
    for d in ("/run/openvswitch", "/run/ovn"):
        os.makedirs(d, exist_ok=True)

    workdir = Path(tempfile.mkdtemp(prefix="ovnbgp-demo-lab."))
    lab = Lab(workdir)
    status = 0
    try:
        step("Build the spine-leaf lab: spine, leaf1 + leaf1b (rack 1), leaf2 + leaf2b (rack 2), "
             "node1 and node2 each dual-homed to its rack's two leaves, outside host; OVS + "
             "ovn-controller + FRR on each node, OVN central")
        lab.start()
        say(lab.timing_report())
        Demo(lab).run()
        step("Demo passed")
    except DemoFailed as e:
        print(f"\ndemo: FAILED: {e}", file=sys.stderr, flush=True)
        status = EXIT_FAILED
    except Exception as e:  # noqa: BLE001 - reported, then torn down
        print(f"\ndemo: FAILED: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
        status = EXIT_FAILED
    finally:
        step("Tear down: stop ovnbgp, the daemons, delete every namespace")
        if status:
            lab.collect(out / "lab")
        try:
            lab.stop()
            say("lab removed")
        except Exception as e:  # noqa: BLE001
            print(f"demo: teardown: {e}", file=sys.stderr)
            status = status or EXIT_FAILED
        shutil.rmtree(workdir, ignore_errors=True)
    return status


class Demo:
    """The steps after the lab is built (each raises DemoFailed with the evidence)."""

    def __init__(self, lab):
        self.lab = lab
        self.sc = lab.scenario

    def run(self) -> None:
        from tests.harness.proc import wait_for
        from tests.lab.checks import routed_through, spine_paths

        lab, sc = self.lab, self.sc
        step("Start ovnbgp on node1 and node2 (`ovnbgp --config <node>/etc/ovnbgp.toml run`)")
        for node in (lab.nodes["node1"], lab.nodes["node2"]):
            node.start_agent(ready=lambda node=node: (node.state_dir / "status.json").exists(),
                             timeout=120)
            say(f"{node.name}: ovnbgp running, pid {node.agent.pid}, AS {node.asn}, "
                "peers " + ", ".join(f"{u.peer} ({u.peer_addr4})" for u in node.uplinks))

        step("OVN (as Neutron would): provider network, router with its gateway on node1 "
             "(its only gateway chassis), tenant network behind it")
        public = sc.provider_network()
        tenant = sc.tenant_network()
        # One gateway chassis: with a standby on node2, OVN's own BFD between the chassis
        # (over the tunnels) moves the cr-lrp back and forth when the host is loaded, and the
        # uplink failure below may move it too; test_e2e.py covers gateway moves.
        router = sc.router(public, ["node1"])
        sc.attach(router, tenant)
        say(f"provider {public.name}: {public.cidr4} + {public.cidr6} (physnet -> br-ex)")
        say(f"router {router.name}: gateway {router.gateway_ip4} / {router.gateway_ip6} "
            f"({router.cr_port}) on node1")
        say(f"tenant {tenant.name}: {tenant.cidr4} + {tenant.cidr6} behind {router.name}")

        step("VMs: vm1 on the provider network on node1; vm2 on the tenant network on node2 "
             "with a floating IP (DVR)")
        vm1 = lab.add_vm("vm1", public, "node1")
        vm2 = lab.add_vm("vm2", tenant, "node2")
        fip = sc.add_fip(router, vm2.port)
        lab.wait_bound("vm1", "node1")
        lab.wait_bound("vm2", "node2")
        wait_for(lambda: lab.port_binding(router.cr_port).get("chassis") == "node1", timeout=60,
                 what=f"{router.cr_port} bound to node1")
        say(f"vm1 {vm1.ip4} {vm1.ip6} bound to node1; vm2 {vm2.ip4} {vm2.ip6} bound to node2; "
            f"FIP {fip.ip} -> {vm2.ip4}")

        expected = {  # prefix -> (node the fabric must send it to, what it is)
            f"{vm1.ip4}/32": ("node1", "provider VM"),
            f"{vm1.ip6}/128": ("node1", "provider VM"),
            f"{fip.ip}/32": ("node2", "floating IP, on its VM's node"),
            f"{router.gateway_ip4}/32": ("node1", "router gateway (cr-lrp)"),
            f"{router.gateway_ip6}/128": ("node1", "router gateway (cr-lrp)"),
            f"{tenant.cidr4}": ("node1", "tenant subnet, via the cr-lrp"),
            f"{tenant.cidr6}": ("node1", "tenant subnet, via the cr-lrp"),
            f"{vm2.ip4}/32": ("node1", "tenant VM, via the cr-lrp"),
            f"{vm2.ip6}/128": ("node1", "tenant VM, via the cr-lrp"),
        }
        step("Wait until the fabric routes each prefix to the right node (spine: BGP path from "
             "the node's AS; spine and leaf forward towards the node)")

        def missing() -> list[str]:
            return [why for prefix, (node, _) in expected.items()
                    if (why := routed_through(lab, prefix, node)) is not None]

        t = time.monotonic()
        try:
            wait_for(lambda: not missing(), timeout=120, interval=0.5, what="the routes at the spine")
        except Exception as e:
            raise DemoFailed("\n".join(missing()) or str(e)) from None
        for prefix, (node, what) in expected.items():
            path = " ".join(map(str, spine_paths(lab, prefix)[0]))
            say(f"{prefix:<22} {what:<31} -> {node} (spine AS path {path})")
        say(f"all routed {time.monotonic() - t:.1f} s after the VMs were bound")

        step("`ovnbgp verify` on each node (dummy, VRF table, default table, every peer)")
        for name in ("node1", "node2"):
            cp = lab.nodes[name].ovnbgp("verify", check=False)
            show(f"{name}: ovnbgp verify (exit {cp.returncode})", cp.stdout)
            if cp.returncode != 0:  # the agent's debug log (lab config) only when it failed
                say(cp.stderr[-3000:])
                raise DemoFailed(f"ovnbgp verify on {name} exited {cp.returncode}")

        step("The leaves' BGP tables (what the fabric learnt from the nodes)")
        for leaf in ("leaf1", "leaf2"):
            for afi in ("ipv4", "ipv6"):
                show(f"{leaf}: show bgp {afi} unicast", lab.frr[leaf].vtysh(f"show bgp {afi} unicast"))

        step("Ping from the outside host (203.0.113.10, behind the spine): the fabric knows "
             "these addresses only through the routes ovnbgp announced")
        show("spine: ip route show exact <prefix> (the kernel routes FRR installed)", "\n".join(
            lab.exec("spine", "ip", "-6" if ":" in p else "-4", "route", "show", "exact", p,
                     check=False).stdout.strip() or f"{p}: no route"
            for p in (f"{vm1.ip4}/32", f"{vm1.ip6}/128", f"{fip.ip}/32", f"{vm2.ip4}/32")))
        failed = []
        for what, dst in (("vm1 (provider, IPv4)", vm1.ip4), ("vm1 (provider, IPv6)", vm1.ip6),
                          ("floating IP of vm2", fip.ip), ("vm2's tenant IP via the cr-lrp", vm2.ip4)):
            try:
                lab.wait_ping("outside", dst, timeout=30)
            except Exception:  # noqa: BLE001 - the ping below shows it
                pass
            cp = lab.exec("outside", "ping", "-n", "-c", "3", "-i", "0.2", "-W", "2", str(dst), check=False)
            show(f"outside -> {what}: ping {dst}", cp.stdout + cp.stderr)
            if cp.returncode != 0:
                failed.append(f"{what} ({dst})")
        if failed:
            raise DemoFailed("no answer from " + ", ".join(failed))

        self.ecmp_and_uplink_failure(vm1, vm2)

        step("What ovnbgp set up on node1 (kernel: dummy in the VRF, ip rules, br-ex table, "
             "static neighbour of the cr-lrp, proxy NDP entry of the IPv6 gateway)")
        for argv in (["ip", "-br", "addr", "show", "dev", "ovn"], ["ip", "rule", "show"],
                     ["ip", "-6", "rule", "show"], ["ip", "route", "show", "table", "200"],
                     ["ip", "neigh", "show", "dev", "br-ex", "nud", "permanent"],
                     ["ip", "-6", "neigh", "show", "proxy"]):
            show(f"node1: {' '.join(argv)}", lab.exec("node1", *argv, check=False).stdout)

        step("Status of the agents")
        for name in ("node1", "node2"):
            show(f"{name}: ovnbgp status", lab.nodes[name].ovnbgp("status", check=False).stdout)


    def ecmp_and_uplink_failure(self, vm1, vm2) -> None:
        """The spine's two paths to a VM on node1, then one of node1's uplinks pulled while
        the outside host pings: the figure is what the failure cost (tests/lab/failover.py,
        as tests/vm/test_failover.py measures it)."""
        from tests.harness.proc import wait_for
        from tests.lab.checks import next_hops
        from tests.lab.failover import measure_outage, wait_both_paths

        lab, node = self.lab, self.lab.nodes["node1"]
        prefix = f"{vm1.ip4}/32"
        step(f"ECMP: the spine reaches vm1 ({prefix}) over both leaves of rack 1; node1's "
             "default route uses both uplinks")
        show(f"spine: show ip route {prefix}", lab.frr["spine"].vtysh(f"show ip route {prefix}"))
        show("spine: ip route show exact " + prefix,
             lab.exec("spine", "ip", "route", "show", "exact", prefix, check=False).stdout)
        show("node1: ip route show default",
             lab.exec("node1", "ip", "route", "show", "default", check=False).stdout)
        if next_hops(lab, "spine", prefix) != set(node.leaves):
            raise DemoFailed(f"the spine does not route {prefix} over {sorted(node.leaves)}")

        down, other = node.uplinks
        step(f"One uplink fails: node1's NIC to {down.peer} down for {DEMO_HOLD:g} s, then up, "
             f"while the outside host pings vm1 and vm2 (via the cr-lrp) 10 times a second")
        during = {}

        def fail() -> None:
            lab.set_uplink("node1", False, leaf=down.peer)
            wait_for(lambda: next_hops(lab, "spine", prefix) == {other.peer}, timeout=DEMO_BOUND,
                     interval=0.2, what=f"the spine down to {other.peer} alone")
            during["route"] = lab.exec("spine", "ip", "route", "show", "exact", prefix).stdout

        dsts = {"vm1 (provider)": vm1.ip4, "vm2 via the cr-lrp": vm2.ip4}
        try:
            outages, t_recover = measure_outage(
                lab, dsts, fail, lambda: lab.set_uplink("node1", True, leaf=down.peer),
                lambda: wait_both_paths(lab, "node1", dsts.values(), timeout=DEMO_BOUND),
                hold=DEMO_HOLD, resume_bound=DEMO_BOUND)
        finally:
            lab.set_uplink("node1", True, leaf=down.peer)
        show(f"spine: ip route show exact {prefix} (while {down.peer}'s link is down)",
             during.get("route", "(not reached)"))
        show(f"spine: ip route show exact {prefix} (link back: both leaves again)",
             lab.exec("spine", "ip", "route", "show", "exact", prefix, check=False).stdout)
        for name, o in outages.items():
            say(f"pinger -> {name}: {o.describe()} (link down at 0 s, up at {t_recover:.1f} s)")


if __name__ == "__main__":
    sys.exit(main())

"""A real Open vSwitch for tests: ovsdb-server + ovs-vswitchd in a temp dir, optionally in a netns.

The host kernel has no openvswitch module, so on the host only the userspace datapath works:
bridges get `datapath_type=netdev` (the default here; `add_bridge()` applies it). Inside
User-Mode Linux the kernel datapath exists: pass datapath_type="system" (or override the
`ovs_datapath_type` fixture in a conftest). Note docs/architecture.md ("User-Mode Linux"): OVN's flows need the netdev
datapath even there, because the UML datapath lacks conntrack zones.

Every tool call gets this node's OVS_RUNDIR/OVS_DBDIR/OVS_LOGDIR, so `ofctl("dump-flows",
"br0")` finds <rundir>/br0.mgmt of this vswitchd, not the packaged one.

Namespaces: the netdev datapath opens a tap device called `ovs-netdev`, and each netdev bridge
is a tap named after the bridge, in vswitchd's network namespace. So only ONE netdev
vswitchd can run per namespace (a second one logs "creating tap device failed: Device or
resource busy" and creates no bridge). The `ovs_node` fixture therefore gives a netdev node
its own netns (`node.netns`, see the `ovs_netns` fixture); bridge devices such as br-ex live
there. Tools (vsctl/ofctl/appctl) talk over unix sockets and need no netns.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from tests.harness.proc import Daemon, DaemonError, run, short_rundir, socket_ready

VSWITCH_SCHEMA = Path("/usr/share/openvswitch/vswitch.ovsschema")
CTL_TIMEOUT = 20


class OvsNode:
    """ovsdb-server + ovs-vswitchd of one (simulated) chassis."""

    def __init__(self, workdir: Path | str, netns: str | None = None, *,
                 datapath_type: str = "netdev", schema: Path | str = VSWITCH_SCHEMA,
                 vswitchd_args: Sequence[str] = ()):
        self.workdir = Path(workdir)
        self.netns = getattr(netns, "name", netns)  # a Netns object or its name
        self.datapath_type = datapath_type
        self.schema = Path(schema)
        self.vswitchd_args = list(vswitchd_args)
        self.rundir: Path | None = None
        self.ovsdb: Daemon | None = None
        self.vswitchd: Daemon | None = None

    # --- addresses -----------------------------------------------------------------------

    def _sock(self, name: str) -> Path:
        if self.rundir is None:
            raise RuntimeError("OvsNode is not started")
        return self.rundir / name

    @property
    def db_path(self) -> Path:
        return self.workdir / "conf.db"

    @property
    def remote(self) -> str:
        return f"unix:{self._sock('db.sock')}"

    @property
    def env(self) -> dict[str, str]:
        return {"OVS_RUNDIR": str(self.rundir), "OVS_DBDIR": str(self.workdir),
                "OVS_LOGDIR": str(self.workdir), "OVS_SYSCONFDIR": str(self.workdir)}

    # --- lifecycle -----------------------------------------------------------------------

    def start(self, timeout: float = 20) -> OvsNode:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.datapath_type == "netdev" and not os.path.exists("/dev/net/tun"):
            # UML boots without tun loaded; the userspace datapath's ports are tap devices.
            run(["modprobe", "tun"], check=False)
        self.rundir = short_rundir("ovnbgp-ovs")
        try:
            self._start_ovsdb(timeout)
            self.vsctl("--no-wait", "init")
            self._start_vswitchd(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _start_ovsdb(self, timeout: float) -> None:
        log = self.workdir / "ovsdb-server.log"
        self.db_path.unlink(missing_ok=True)
        cp = run(["ovsdb-tool", "create", str(self.db_path), str(self.schema)], check=False)
        if cp.returncode != 0:
            with open(log, "a") as f:
                f.write(f"ovsdb-tool create {self.db_path} {self.schema} failed:\n"
                        f"{cp.stdout}{cp.stderr}")
            raise DaemonError("ovsdb-server", f"cannot create database from schema {self.schema}", log)
        sock = self._sock("db.sock")
        self.ovsdb = Daemon(
            "ovsdb-server",
            ["ovsdb-server", str(self.db_path), f"--remote=punix:{sock}",
             "--remote=db:Open_vSwitch,Open_vSwitch,manager_options",
             f"--unixctl={self._sock('ovsdb-server.ctl')}", "-vconsole:info", "-vsyslog:off"],
            log, netns=self.netns, env=self.env)
        self.ovsdb.start(lambda: socket_ready(sock), timeout)

    def _start_vswitchd(self, timeout: float) -> None:
        self.vswitchd = Daemon(
            "ovs-vswitchd",
            ["ovs-vswitchd", self.remote, f"--unixctl={self._sock('ovs-vswitchd.ctl')}",
             "-vconsole:info", "-vsyslog:off", *self.vswitchd_args],
            self.workdir / "ovs-vswitchd.log", netns=self.netns, env=self.env)
        self.vswitchd.start(self._vswitchd_ready, timeout)

    def _vswitchd_ready(self) -> bool:
        if not socket_ready(self._sock("ovs-vswitchd.ctl")):
            return False
        self.sync(timeout=3)
        return True

    def sync(self, timeout: float = CTL_TIMEOUT) -> None:
        """Wait until ovs-vswitchd has applied the current DB contents.

        Bumps Open_vSwitch.next_cfg and waits for cur_cfg to follow (what `ovs-vsctl` does
        for a write without --no-wait; a transaction that changes nothing does not wait).
        """
        n = int(self.vsctl("--no-wait", "get", "Open_vSwitch", ".", "next_cfg").strip()) + 1
        self.vsctl("--no-wait", "set", "Open_vSwitch", ".", f"next_cfg={n}")
        self.vsctl("--no-wait", "wait-until", "Open_vSwitch", ".", f"cur_cfg{{>=}}{n}",
                   timeout=timeout)

    def restart_vswitchd(self, timeout: float = 20) -> None:
        """Stop ovs-vswitchd (like a crash/upgrade: datapath and DB are kept) and start it again."""
        if self.vswitchd is not None:
            self.vswitchd.stop()
        self._start_vswitchd(timeout)

    def stop(self) -> None:
        """Stop vswitchd (removing its datapaths) and ovsdb-server; safe to call twice."""
        if self.vswitchd is not None:
            if self.vswitchd.alive():
                # --cleanup deletes the kernel datapath and its ports (UML); harmless on netdev.
                run(["ovs-appctl", "-t", str(self._sock("ovs-vswitchd.ctl")), "--timeout=5",
                     "exit", "--cleanup"], check=False, env=self.env, timeout=10)
            self.vswitchd.stop()
            self.vswitchd = None
        if self.ovsdb is not None:
            self.ovsdb.stop()
            self.ovsdb = None
        if self.rundir is not None:
            shutil.rmtree(self.rundir, ignore_errors=True)
            self.rundir = None

    def __enter__(self) -> OvsNode:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- tools ---------------------------------------------------------------------------

    def vsctl(self, *args: str, timeout: float = CTL_TIMEOUT) -> str:
        """ovs-vsctl against this node's DB (waits for vswitchd unless --no-wait is given)."""
        return run(["ovs-vsctl", f"--db={self.remote}", f"--timeout={int(timeout)}", *args],
                   env=self.env, timeout=timeout + 10).stdout

    def ofctl(self, *args: str, timeout: float = CTL_TIMEOUT) -> str:
        """ovs-ofctl; a bridge name resolves to this vswitchd's <rundir>/<bridge>.mgmt."""
        return run(["ovs-ofctl", f"--timeout={int(timeout)}", *args], env=self.env,
                   timeout=timeout + 10).stdout

    def appctl(self, *args: str, target: str = "ovs-vswitchd") -> str:
        """ovs-appctl to 'ovs-vswitchd' (default) or 'ovsdb-server' of this node."""
        return run(["ovs-appctl", "-t", str(self._sock(f"{target}.ctl")), "--timeout=10", *args],
                   env=self.env, timeout=20).stdout

    def add_bridge(self, name: str, datapath_type: str | None = None) -> None:
        """Create a bridge with this node's datapath type (netdev on the host).

        vswitchd reports a bridge it could not create only in its log, so check that the
        bridge's own port got its OpenFlow number and fail loudly with the log tail if not.
        """
        self.vsctl("--may-exist", "add-br", name, "--", "set", "Bridge", name,
                   f"datapath_type={datapath_type or self.datapath_type}")
        ofport = self.vsctl("--if-exists", "get", "Interface", name, "ofport").strip()
        if ofport != "65534":
            raise DaemonError("ovs-vswitchd", f"bridge {name} was not created (ofport {ofport!r})",
                              self.vswitchd.log_path if self.vswitchd else None)


@pytest.fixture
def ovs_datapath_type() -> str:
    """Datapath type for `ovs_node`: netdev on the host. tests/vm may override this fixture."""
    return "netdev"


@pytest.fixture
def ovs_netns(ovs_datapath_type: str, netns_factory) -> str | None:
    """Namespace for `ovs_node`: a fresh one for the netdev datapath (one `ovs-netdev` tap per
    namespace, and other test runs share the host's root namespace), None (the current
    namespace) otherwise, e.g. the kernel datapath in UML. Override in a conftest to choose."""
    return netns_factory("ovs").name if ovs_datapath_type == "netdev" else None


@pytest.fixture
def ovs_node(tmp_path: Path, ovs_datapath_type: str, ovs_netns: str | None) -> Iterator[OvsNode]:
    """A started OvsNode (in `ovs_netns`, see there) for one test; stopped afterwards."""
    node = OvsNode(tmp_path / "ovs", ovs_netns, datapath_type=ovs_datapath_type)
    try:
        node.start()
        yield node
    finally:
        node.stop()

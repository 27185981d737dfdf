"""A real OVN central for tests: NB and SB ovsdb-servers plus ovn-northd, in a temp dir.

Drive the NB with `nbctl()` (ovn-nbctl), then `sync()` waits until northd has written the SB;
read the SB with `sbctl()` or an IDL on `sb_remote`. Databases and logs live in `workdir`;
sockets live in a short private dir under /tmp (unix socket paths are limited to 107 bytes).
Daemons run outside the packaged rundirs, which is why each gets `--unixctl=` (docs/architecture.md, "OVN").
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness.proc import Daemon, DaemonError, run, short_rundir, socket_ready

NB_SCHEMA = Path("/usr/share/ovn/ovn-nb.ovsschema")
SB_SCHEMA = Path("/usr/share/ovn/ovn-sb.ovsschema")
CTL_TIMEOUT = 30  # seconds, for ovn-nbctl/ovn-sbctl --timeout and --wait


class OvnCentral:
    """NB ovsdb-server, SB ovsdb-server and ovn-northd, started in `workdir`."""

    def __init__(self, workdir: Path | str, *, nb_schema: Path | str = NB_SCHEMA,
                 sb_schema: Path | str = SB_SCHEMA, sb_members: int = 0):
        """sb_members > 0: the SB is a RAFT cluster of that many ovsdb-servers (`sb-0`...),
        `sb_remote` lists them all (as clients of a clustered SB are configured)."""
        self.workdir = Path(workdir)
        self.nb_schema = Path(nb_schema)
        self.sb_schema = Path(sb_schema)
        self.sb_members = sb_members
        self._raft_ports: list[int] = []
        self.rundir: Path | None = None
        self.daemons: dict[str, Daemon] = {}

    # --- addresses ---------------------------------------------------------------------

    def _sock(self, name: str) -> Path:
        if self.rundir is None:
            raise RuntimeError("OvnCentral is not started")
        return self.rundir / name

    @property
    def nb_remote(self) -> str:
        return f"unix:{self._sock('ovnnb_db.sock')}"

    @property
    def sb_remote(self) -> str:
        if self.sb_members:
            return ",".join(self.sb_member_remote(i) for i in range(self.sb_members))
        return f"unix:{self._sock('ovnsb_db.sock')}"

    def sb_member_remote(self, i: int) -> str:
        return f"unix:{self._sock(f'sb-{i}.sock')}"

    @property
    def env(self) -> dict[str, str]:
        """Environment that keeps OVS/OVN tools away from the packaged rundirs."""
        run_dir = str(self.rundir)
        return {"OVS_RUNDIR": run_dir, "OVN_RUNDIR": run_dir, "OVS_LOGDIR": str(self.workdir),
                "OVN_LOGDIR": str(self.workdir), "OVS_DBDIR": str(self.workdir),
                "OVN_DBDIR": str(self.workdir)}

    # --- lifecycle -----------------------------------------------------------------------

    def start(self, timeout: float = 20) -> OvnCentral:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.rundir = short_rundir("ovnbgp-ovn")
        try:
            self._start_db("nb", self.nb_schema, timeout)
            if self.sb_members:
                self._start_sb_cluster(timeout)
            else:
                self._start_db("sb", self.sb_schema, timeout)
            northd = Daemon(
                "ovn-northd",
                ["ovn-northd", f"--ovnnb-db={self.nb_remote}", f"--ovnsb-db={self.sb_remote}",
                 f"--unixctl={self._sock('ovn-northd.ctl')}", "-vconsole:info", "-vsyslog:off"],
                self.workdir / "ovn-northd.log", env=self.env)
            self.daemons["ovn-northd"] = northd
            northd.start(self._northd_active, timeout)
            # End to end: northd has connected to both DBs and processed the NB.
            try:
                self.sync()
            except Exception as e:
                raise DaemonError("ovn-northd", f"NB->SB sync failed after start: {e}",
                                  northd.log_path) from e
        except BaseException:
            self.stop()
            raise
        return self

    def _start_db(self, db: str, schema: Path, timeout: float) -> None:
        name = f"ovsdb-server-{db}"
        path = self.workdir / f"ovn{db}_db.db"
        log = self.workdir / f"{name}.log"
        path.unlink(missing_ok=True)
        cp = run(["ovsdb-tool", "create", str(path), str(schema)], check=False)
        if cp.returncode != 0:
            log.write_text(f"ovsdb-tool create {path} {schema} failed:\n{cp.stdout}{cp.stderr}")
            raise DaemonError(name, f"cannot create database from schema {schema}", log)
        sock = self._sock(f"ovn{db}_db.sock")
        d = Daemon(name,
                   ["ovsdb-server", str(path), f"--remote=punix:{sock}",
                    f"--unixctl={self._sock(f'ovn{db}_db.ctl')}", "-vconsole:info", "-vsyslog:off"],
                   log, env=self.env)
        self.daemons[name] = d
        d.start(lambda: socket_ready(sock), timeout)

    def _northd_active(self) -> bool:
        cp = run(["ovn-appctl", "-t", str(self._sock("ovn-northd.ctl")), "--timeout=5", "status"],
                 check=False, env=self.env, timeout=10)
        return cp.returncode == 0 and "active" in cp.stdout

    # --- clustered SB and relays -----------------------------------------------------------

    def _start_sb_cluster(self, timeout: float) -> None:
        """`ovsdb-tool create-cluster` for sb-0, `join-cluster` for the others (RAFT over TCP
        on free local ports), each member serving clients on its own unix socket."""
        self._raft_ports = [free_port() for _ in range(self.sb_members)]
        for i in range(self.sb_members):
            path = self.workdir / f"sb-{i}.db"
            path.unlink(missing_ok=True)
            raft = f"tcp:127.0.0.1:{self._raft_ports[i]}"
            if i == 0:
                argv = ["ovsdb-tool", "create-cluster", str(path), str(self.sb_schema), raft]
            else:
                argv = ["ovsdb-tool", "join-cluster", str(path), "OVN_Southbound", raft,
                        f"tcp:127.0.0.1:{self._raft_ports[0]}"]
            run(argv, env=self.env)
            self.start_sb_member(i, timeout)
        for i in range(self.sb_members):
            wait_until(lambda i=i: "Status: cluster member" in self.cluster_status(i), timeout,
                       f"sb-{i} joined the cluster")

    def start_sb_member(self, i: int, timeout: float = 20) -> None:
        """(Re)start cluster member i on its existing DB file."""
        name = f"sb-{i}"
        d = self.daemons.get(name) or Daemon(
            name, ["ovsdb-server", str(self.workdir / f"{name}.db"),
                   f"--remote=punix:{self._sock(f'{name}.sock')}",
                   f"--unixctl={self._sock(f'{name}.ctl')}", "-vconsole:info", "-vsyslog:off"],
            self.workdir / f"{name}.log", env=self.env)
        self.daemons[name] = d
        d.start(lambda: socket_ready(self._sock(f"{name}.sock")), timeout)

    def cluster_status(self, i: int) -> str:
        cp = run(["ovn-appctl", "-t", str(self._sock(f"sb-{i}.ctl")), "--timeout=5",
                  "cluster/status", "OVN_Southbound"], check=False, env=self.env, timeout=10)
        return cp.stdout if cp.returncode == 0 else ""

    def sb_leader(self) -> int:
        """Index of the current leader (waits until there is one)."""
        found: list[int] = []

        def leader() -> bool:
            found[:] = [i for i in range(self.sb_members)
                        if self.daemons[f"sb-{i}"].alive() and "Role: leader" in self.cluster_status(i)]
            return bool(found)

        wait_until(leader, CTL_TIMEOUT, "the SB cluster has a leader")
        return found[0]

    def start_relay(self, name: str = "sb-relay", timeout: float = 20) -> str:
        """An ovsdb-server relay of the (clustered) SB; returns its client remote."""
        sock = self._sock(f"{name}.sock")
        d = Daemon(name, ["ovsdb-server", f"--remote=punix:{sock}", f"--unixctl={self._sock(f'{name}.ctl')}",
                          "-vconsole:info", "-vsyslog:off", f"relay:OVN_Southbound:{self.sb_remote}"],
                   self.workdir / f"{name}.log", env=self.env)
        self.daemons[name] = d
        d.start(lambda: socket_ready(sock), timeout)
        return f"unix:{sock}"

    def stop(self) -> None:
        """Stop northd and both DB servers; safe to call twice or after a failed start."""
        extra = [n for n in self.daemons if n.startswith("sb-")]
        for name in ("ovn-northd", *extra, "ovsdb-server-sb", "ovsdb-server-nb"):
            d = self.daemons.pop(name, None)
            if d is not None:
                d.stop()
        if self.rundir is not None:
            shutil.rmtree(self.rundir, ignore_errors=True)
            self.rundir = None

    # --- SB outage (fault tests) ----------------------------------------------------------

    @property
    def sb_db_path(self) -> Path:
        return self.workdir / "ovnsb_db.db"

    def stop_sb(self) -> None:
        """Stop only the SB ovsdb-server (an outage): its DB file is kept, northd keeps
        running and reconnects, clients see the connection drop."""
        self.daemons["ovsdb-server-sb"].stop()

    def sb_transact(self, *ops: dict) -> str:
        """Change the SB DB file while its server is stopped (`ovsdb-tool transact`): a change
        clients can only learn about when they reconnect. Each op is an OVSDB operation."""
        import json

        return run(["ovsdb-tool", "transact", str(self.sb_db_path),
                    json.dumps(["OVN_Southbound", *ops])], env=self.env).stdout

    def start_sb(self, timeout: float = 20) -> None:
        """Start the SB ovsdb-server again after stop_sb(): same DB file, same socket."""
        sock = self._sock("ovnsb_db.sock")
        self.daemons["ovsdb-server-sb"].start(lambda: socket_ready(sock), timeout)

    def __enter__(self) -> OvnCentral:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- tools ---------------------------------------------------------------------------

    def nbctl(self, *args: str, timeout: float = CTL_TIMEOUT) -> str:
        """ovn-nbctl against this NB; returns stdout, raises CommandError on failure."""
        return run(["ovn-nbctl", f"--db={self.nb_remote}", f"--timeout={int(timeout)}", *args],
                   env=self.env, timeout=timeout + 10).stdout

    def sbctl(self, *args: str, timeout: float = CTL_TIMEOUT) -> str:
        """ovn-sbctl against this SB; returns stdout, raises CommandError on failure."""
        return run(["ovn-sbctl", f"--db={self.sb_remote}", f"--timeout={int(timeout)}", *args],
                   env=self.env, timeout=timeout + 10).stdout

    def sync(self, timeout: float = CTL_TIMEOUT) -> None:
        """Wait until northd has brought the SB up to date with the NB (`--wait=sb sync`)."""
        self.nbctl("--wait=sb", "sync", timeout=timeout)

    def appctl(self, target: str, *args: str) -> str:
        """ovn-appctl to one daemon: target is 'ovn-northd', 'ovnnb_db' or 'ovnsb_db'."""
        return run(["ovn-appctl", "-t", str(self._sock(f"{target}.ctl")), *args],
                   env=self.env).stdout


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(pred, timeout: float, what: str) -> None:
    import time

    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            raise DaemonError("ovn", f"timed out waiting until {what}")
        time.sleep(0.1)


@pytest.fixture
def ovn_central(tmp_path: Path) -> Iterator[OvnCentral]:
    """A started OvnCentral (NB + SB + northd) for one test; stopped afterwards."""
    central = OvnCentral(tmp_path / "ovn")
    try:
        central.start()
        yield central
    finally:
        central.stop()

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
                 sb_schema: Path | str = SB_SCHEMA):
        self.workdir = Path(workdir)
        self.nb_schema = Path(nb_schema)
        self.sb_schema = Path(sb_schema)
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
        return f"unix:{self._sock('ovnsb_db.sock')}"

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
            for db, schema in (("nb", self.nb_schema), ("sb", self.sb_schema)):
                self._start_db(db, schema, timeout)
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

    def stop(self) -> None:
        """Stop northd and both DB servers; safe to call twice or after a failed start."""
        for name in ("ovn-northd", "ovsdb-server-sb", "ovsdb-server-nb"):
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


@pytest.fixture
def ovn_central(tmp_path: Path) -> Iterator[OvnCentral]:
    """A started OvnCentral (NB + SB + northd) for one test; stopped afterwards."""
    central = OvnCentral(tmp_path / "ovn")
    try:
        central.start()
        yield central
    finally:
        central.stop()

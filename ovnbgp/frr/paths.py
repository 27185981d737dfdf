"""Where one FRR instance keeps its files, and the argv prefixes that reach it.

FRR's layout for an instance named by `-N NAME` (its "pathspace") is /etc/frr/NAME/ for the
config and daemons file and /var/run/frr/NAME/ for vty sockets and pid files; the default
instance uses /etc/frr and /var/run/frr. ovnbgp always passes the directories explicitly
(`--vty_socket`, `--config_dir`, frr-reload.py's `--confdir`/`--rundir`) and never `-N`: vtysh
appends the name to every directory it is given, the daemons do not, and explicit paths are
the one form that reaches both a packaged instance and a test instance in a temp dir.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ovnbgp.config import FrrConfig

DEFAULT_RUN_DIR = Path("/var/run/frr")
DEFAULT_CONF_DIR = Path("/etc/frr")


@dataclass(frozen=True)
class FrrPaths:
    vtysh: Path
    reload: Path  # frr-reload.py
    config_file: Path  # the integrated config FRR loads at start; ovnbgp writes it
    conf_dir: Path  # holds vtysh.conf (and frr.conf)
    run_dir: Path  # *.vty sockets and *.pid files
    daemons_file: Path
    pathspace: str | None

    @classmethod
    def from_config(cls, frr: FrrConfig) -> FrrPaths:
        """Paths for the configured instance.

        With `pathspace` set and config_file/daemons_file left at their defaults, FRR's own
        per-instance paths are used (/etc/frr/NAME/frr.conf, /etc/frr/NAME/daemons), as
        frrinit.sh and the frr@NAME systemd unit expect.
        """
        ps = frr.pathspace
        config_file = frr.config_file
        daemons_file = frr.daemons_file
        if ps:
            if config_file == FrrConfig.config_file:
                config_file = DEFAULT_CONF_DIR / ps / "frr.conf"
            if daemons_file == FrrConfig.daemons_file:
                daemons_file = DEFAULT_CONF_DIR / ps / "daemons"
        if frr.vty_socket is not None:
            run_dir = frr.vty_socket
        else:
            run_dir = DEFAULT_RUN_DIR / ps if ps else DEFAULT_RUN_DIR
        return cls(vtysh=frr.vtysh, reload=frr.reload, config_file=config_file,
                   conf_dir=config_file.parent, run_dir=run_dir, daemons_file=daemons_file,
                   pathspace=ps)

    def vtysh_argv(self) -> list[str]:
        return [str(self.vtysh), "--vty_socket", str(self.run_dir), "--config_dir", str(self.conf_dir)]

    def reload_argv(self) -> list[str]:
        return [str(self.reload), "--bindir", str(self.vtysh.parent), "--confdir", str(self.conf_dir),
                "--rundir", str(self.run_dir), "--vty_socket", str(self.run_dir)]

    def pid_file(self, daemon: str) -> Path:
        return self.run_dir / f"{daemon}.pid"

    @property
    def init_script(self) -> Path:
        """FRR's init script (frrinit.sh sits beside frr-reload.py in /usr/lib/frr)."""
        return self.reload.parent / "frrinit.sh"

    @property
    def systemd_unit(self) -> str:
        return f"frr@{self.pathspace}.service" if self.pathspace else "frr.service"

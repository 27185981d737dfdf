"""Run the real agent (`ovnbgp run`) as a daemon in a node's network namespace.

    agent = AgentProcess(workdir, config_text, netns=node_ns)
    agent.start()            # waits until the status record shows a first sync
    agent.status()           # `ovnbgp status --json` as a dict
    agent.kill()             # SIGKILL (a crash); agent.stop() is SIGTERM
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from tests.harness.proc import Daemon, run

OVNBGP = os.path.join(os.path.dirname(sys.executable), "ovnbgp")


class AgentProcess:
    def __init__(self, workdir: Path | str, config_text: str, *, netns: str | None = None,
                 name: str = "ovnbgp", env: dict[str, str] | None = None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.netns = getattr(netns, "name", netns)
        self.config_path = self.workdir / "ovnbgp.toml"
        self.config_path.write_text(config_text)
        self.daemon = Daemon(name, [OVNBGP, "--config", str(self.config_path), "run"],
                             self.workdir / "ovnbgp.log", netns=self.netns, env=env)

    @property
    def state_dir(self) -> Path:
        from ovnbgp import config as config_mod

        return config_mod.load(self.config_path).agent.state_dir

    def syncs(self) -> int:
        try:
            return int(json.loads((self.state_dir / "status.json").read_text()).get("syncs", 0))
        except (OSError, ValueError):
            return 0

    def start(self, timeout: float = 60) -> AgentProcess:
        before = self.syncs()
        (self.state_dir / "status.json").unlink(missing_ok=True) if before else None
        self.daemon.start(ready=lambda: self.syncs() > 0, timeout=timeout)
        return self

    def stop(self) -> int | None:
        return self.daemon.stop(timeout=10)

    def kill(self) -> None:
        self.daemon.kill()

    def alive(self) -> bool:
        return self.daemon.alive()

    def cli(self, *args: str, check: bool = False, timeout: float = 120):
        return run([OVNBGP, "--config", str(self.config_path), *args], netns=self.netns,
                   check=check, timeout=timeout)

    def status(self) -> dict:
        return json.loads(self.cli("status", "--json").stdout)

    def log(self) -> str:
        return self.daemon.log_path.read_text(errors="replace")

    def log_tail(self, lines: int = 40) -> str:
        return self.daemon.log_tail(lines)

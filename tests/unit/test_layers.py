"""The layer contracts (import-linter, pyproject.toml) hold, and would catch a broken layer:
an upward or sideways import fails `pytest tests/unit` as well as `make lint`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(root))
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=120)


def test_the_layers_are_kept():
    cp = lint_imports(REPO)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    assert "0 broken" in cp.stdout


@pytest.mark.parametrize("module,injected", [
    ("model/records.py", "import ovnbgp.agent.status"),  # upward: model -> agent
    ("kernel/rt_tables.py", "import ovnbgp.frr.paths"),  # sideways: target -> target
    ("frr/paths.py", "import ovnbgp.ovn.events"),  # sideways: target -> ovn
    ("agent/status.py", "import click"),  # presentation below commands/
])
def test_a_broken_layer_is_caught(tmp_path, module, injected):
    shutil.copytree(REPO / "ovnbgp", tmp_path / "ovnbgp",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / "ovnbgp" / module
    target.write_text(target.read_text() + f"\n{injected}  # injected by test_layers\n")
    cp = lint_imports(tmp_path)
    assert cp.returncode != 0, cp.stdout
    assert "BROKEN" in cp.stdout
    assert injected.split()[1] in cp.stdout

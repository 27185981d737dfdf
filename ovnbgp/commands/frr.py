"""What the `ovnbgp frr ...` and `ovnbgp verify` commands do (cli.py holds only the click glue).

Each function returns the process exit code and prints for humans or, with as_json, one JSON
document. No traceback reaches the user for an FRR or input problem: each is a message.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
from typing import Any

import click

from ovnbgp.commands.verify_view import format_text, print_rich
from ovnbgp.config import Config
from ovnbgp.frr.bootstrap import BootstrapError
from ovnbgp.frr.manager import FrrManager
from ovnbgp.frr.paths import FrrPaths
from ovnbgp.frr.reload import RELOADED, UNCHANGED, FrrApplier, ReloadResult
from ovnbgp.frr.render import RenderError, render_boot_config, render_config
from ovnbgp.frr.verify import (
    EXIT_BROKEN,
    EXIT_OK,
    EXIT_UNREACHABLE,
    expected_from_desired,
    expected_from_prefixes,
    read_dummy_prefixes,
    verify,
)
from ovnbgp.frr.vtysh import FrrError, FrrReader, Vtysh

log = logging.getLogger(__name__)

EXIT_RENDER = 1


def _echo_result(r: ReloadResult, as_json: bool) -> int:
    if as_json:
        click.echo(json.dumps(r.to_dict(), indent=2))
    else:
        click.echo(f"{r.action}: {r.message}", err=not r.ok)
        for d in r.deltas:
            click.echo("  " + d.replace("\n", "\n  "))
    return 0 if r.ok and r.action in (RELOADED, UNCHANGED) else 1


def render(cfg: Config) -> int:
    try:
        click.echo(render_config(cfg), nl=False)
    except RenderError as e:
        click.echo(f"ovnbgp: {e}", err=True)
        return EXIT_RENDER
    return 0


def apply(cfg: Config, as_json: bool, retry: bool) -> int:
    try:
        text = render_config(cfg)
        boot_text = render_boot_config(cfg)  # the file FRR starts with (BFD held: see render)
    except RenderError as e:
        click.echo(f"ovnbgp: {e}", err=True)
        return EXIT_RENDER
    applier = FrrApplier(FrrPaths.from_config(cfg.frr), vrf=cfg.kernel.vrf_name,
                         state_dir=cfg.agent.state_dir)
    return _echo_result(applier.apply(text, boot_text=boot_text, retry_refused=retry), as_json)


def bootstrap(cfg: Config, as_json: bool) -> int:
    mgr = FrrManager(cfg)
    try:
        r = mgr.bootstrap()
    except BootstrapError as e:
        click.echo(f"ovnbgp: FRR bootstrap failed: {e}", err=True)
        return 1
    return _echo_result(r, as_json)


def _desired(cfg: Config, from_dummy: bool, dummy_prefixes, timeout: float) -> tuple[list, str, list[str]]:
    """The exposures verify expects, where they came from (the OVN SB, read-only), and why
    the bridge data is unusable (the agent then holds what is in place: not expected here)."""
    if from_dummy:
        return (expected_from_prefixes(dummy_prefixes or ()), "the dummy interface (--from-dummy)",
                [])
    from ovnbgp.ovn.watcher import read_desired

    desired = read_desired(cfg, timeout)
    return (expected_from_desired(desired), "the OVN southbound DB",
            sorted(h.reason for h in desired.holds))


def verify_cmd(cfg: Config, as_json: bool, from_dummy: bool, only_broken: bool,
               timeout: float = 5.0) -> int:
    try:
        dummy_prefixes = read_dummy_prefixes(cfg.kernel.dummy_name)
    except Exception as e:  # netlink errors: permission, no such netns, ...
        click.echo(f"ovnbgp verify: cannot read the addresses of {cfg.kernel.dummy_name!r}: {e}",
                   err=True)
        return EXIT_UNREACHABLE
    from ovnbgp.ovn.watcher import OvnError

    try:
        expected, source, holds = _desired(cfg, from_dummy, dummy_prefixes, timeout)
    except OvnError as e:  # says what could not be read, and where
        click.echo(f"ovnbgp verify: {e}", err=True)
        return EXIT_UNREACHABLE
    except Exception as e:  # anything else on the way: an input we cannot read
        click.echo(f"ovnbgp verify: cannot read what OVN expects: {e}", err=True)
        return EXIT_UNREACHABLE
    reader = FrrReader(Vtysh(FrrPaths.from_config(cfg.frr)))
    try:
        report = verify(expected, cfg, reader, dummy_prefixes)
    except FrrError as e:
        if as_json:
            click.echo(json.dumps({"ok": False, "error": str(e), "exit": EXIT_UNREACHABLE}))
        else:
            click.echo(f"ovnbgp verify: cannot read FRR: {e}", err=True)
        return EXIT_UNREACHABLE
    if holds:  # the leftovers are then what the agent holds in place
        report = dataclasses.replace(report, problems=report.problems + tuple(
            f"held: {h}: unusable bridge data; what is in place for bridges not mapped is kept "
            "(listed as leftovers) until it is fixed" for h in holds))
    if as_json:
        d: dict[str, Any] = report.to_dict() | {"source": source}
        click.echo(json.dumps(d, indent=2))
    elif sys.stdout.isatty():
        from rich.console import Console

        console = Console()
        console.print(f"[dim]expected exposures from: {source}[/]")
        print_rich(report, console, only_broken)
    else:
        click.echo(f"expected exposures from: {source}")
        click.echo(format_text(report, only_broken), nl=False)
    return EXIT_OK if report.ok else EXIT_BROKEN

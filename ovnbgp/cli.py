"""Command line: `ovnbgp <command>`.

Each command loads and validates the config first; a bad config exits 2 with the key named.
Commands import their implementation lazily so `ovnbgp config check` works without the
heavier libraries being importable.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from ovnbgp import config as config_mod
from ovnbgp import logs

EXIT_CONFIG = 2


def _load_config(ctx: click.Context) -> config_mod.Config:
    obj = ctx.find_root().obj
    if "config" not in obj:
        path = obj["config_path"]
        try:
            # The default path may be absent on a lab machine: defaults then apply.
            obj["config"] = config_mod.load(path, missing_ok=path is None)
        except config_mod.ConfigError as e:
            click.echo(f"ovnbgp: config error: {e}", err=True)
            ctx.exit(EXIT_CONFIG)
        logs.setup(obj.get("log_level") or obj["config"].log.level, obj["config"].log.format)
    return obj["config"]


@click.group()
# A plain path: config.load() judges what is there (directory, FIFO, bytes) in one line.
@click.option("--config", "config_path", type=click.Path(path_type=Path),
              default=None, envvar="OVNBGP_CONFIG",
              help=f"Config file (default {config_mod.DEFAULT_PATH}).")
@click.option("--log-level", type=click.Choice(config_mod.LOG_LEVELS), default=None,
              help="Override log.level.")
@click.version_option(package_name="ovnbgp")
@click.pass_context
def main(ctx: click.Context, config_path: Path | None, log_level: str | None) -> None:
    """ovnbgp: expose OVN VM IPs, floating IPs and tenant networks through BGP."""
    ctx.obj = {"config_path": config_path, "log_level": log_level}


# The read-only commands give up on OVN after this long, with one line (exit 3).
OVN_READ_TIMEOUT = 5.0
_ovn_timeout_option = click.option(
    "--timeout", type=click.FloatRange(min=0.1), default=OVN_READ_TIMEOUT, show_default=True,
    metavar="SECONDS",
    help="Give up reading the SB and local OVS DB (connection and initial dump) after this long; "
         "raise it for a very large Southbound.")


# --- config ------------------------------------------------------------------------------


@main.group("config")
def config_group() -> None:
    """Check or show the configuration."""


@config_group.command("check")
@click.pass_context
def config_check(ctx: click.Context) -> None:
    """Validate the config file; exit 2 naming the bad key."""
    _load_config(ctx)
    path = ctx.find_root().obj["config_path"] or config_mod.DEFAULT_PATH
    click.echo(f"{path}: ok")


@config_group.command("show")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of TOML.")
@click.pass_context
def config_show(ctx: click.Context, as_json: bool) -> None:
    """Print the effective config (file values over defaults)."""
    cfg = _load_config(ctx)
    if as_json:
        click.echo(json.dumps(config_mod.to_dict(cfg), indent=2))
    else:
        click.echo(config_mod.to_toml(cfg), nl=False)


# --- frr ---------------------------------------------------------------------------------


@main.group("frr")
def frr_group() -> None:
    """Render, apply and bootstrap the FRR config ovnbgp owns."""


@frr_group.command("render")
@click.pass_context
def frr_render(ctx: click.Context) -> None:
    """Print the FRR config rendered from the ovnbgp config (with the operator snippet)."""
    from ovnbgp.commands import frr as commands

    ctx.exit(commands.render(_load_config(ctx)))


@frr_group.command("apply")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--retry", is_flag=True, help="Try again a config FRR refused before.")
@click.pass_context
def frr_apply(ctx: click.Context, as_json: bool, retry: bool) -> None:
    """Check (vtysh -C), compare (frr-reload --test) and reload FRR if it differs."""
    from ovnbgp.commands import frr as commands

    ctx.exit(commands.apply(_load_config(ctx), as_json, retry))


@frr_group.command("bootstrap")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def frr_bootstrap(ctx: click.Context, as_json: bool) -> None:
    """Enable the needed daemons, start FRR if it is not running, apply the config."""
    from ovnbgp.commands import frr as commands

    ctx.exit(commands.bootstrap(_load_config(ctx), as_json))


@main.command("desired")
@click.option("--json", "as_json", is_flag=True, help="The whole desired state as JSON.")
@_ovn_timeout_option
@click.pass_context
def desired_command(ctx: click.Context, as_json: bool, timeout: float) -> None:
    """Read the SB and the local OVS DB (read-only) and print what this chassis must expose.

    One line per exposure: kind, prefix, bridge, table and the Port_Binding that causes it.
    Exit 3 when OVN cannot be read.
    """
    from ovnbgp.commands import desired as desired_cmd

    ctx.exit(desired_cmd.run(_load_config(ctx), as_json, timeout))


@main.command("verify")
@click.option("--json", "as_json", is_flag=True, help="One JSON document for machines.")
@click.option("--from-dummy", is_flag=True,
              help="Expect what is on the dummy interface instead of reading OVN.")
@click.option("--broken", "only_broken", is_flag=True, help="List only exposures with a broken link.")
@_ovn_timeout_option
@click.pass_context
def verify_command(ctx: click.Context, as_json: bool, from_dummy: bool, only_broken: bool,
                   timeout: float) -> None:
    """Prove each exposure: dummy -> VRF table -> default table -> every Established peer.

    Exit 0 when everything holds, 1 when a link is broken, a peer is down or a leftover is
    advertised, 3 when FRR (or, without --from-dummy, the OVN southbound DB) cannot be read.
    """
    from ovnbgp.commands import frr as commands

    ctx.exit(commands.verify_cmd(_load_config(ctx), as_json, from_dummy, only_broken, timeout))


@main.command("explain")
@click.argument("address")
@click.option("--json", "as_json", is_flag=True, help="One JSON document for machines.")
@_ovn_timeout_option
@click.pass_context
def explain_command(ctx: click.Context, address: str, as_json: bool, timeout: float) -> None:
    """Tell the whole story of one IP or prefix: Southbound rows, kernel, OVS flow, FRR.

    Which Port_Binding rows justify it, or why none does (not bound here, waiting for up=true,
    network not mapped to a local bridge, router gateway on another chassis, filtered by
    policy, malformed row); what the kernel and OVS have for it; what FRR does with it.
    Exit 0 when exposed and advertised to every Established peer, 1 when not, 3 when a source
    cannot be read (OVN; or the kernel/FRR for an address the model exposes).
    """
    from ovnbgp.commands import explain as explain_cmd

    ctx.exit(explain_cmd.run(_load_config(ctx), address, as_json, timeout))


# --- the daemon and its operations --------------------------------------------------------


@main.command("run")
@click.pass_context
def run_command(ctx: click.Context) -> None:
    """Run the agent: reconcile the node to the SB until SIGTERM (which leaves the node as it is).

    SIGHUP reloads the config file (a bad file is refused and the running config kept).
    """
    from ovnbgp.commands import agent as commands

    cfg = _load_config(ctx)
    ctx.exit(commands.run(cfg, ctx.find_root().obj["config_path"]))


@main.command("status")
@click.option("--json", "as_json", is_flag=True, help="One JSON document for machines.")
@click.pass_context
def status_command(ctx: click.Context, as_json: bool) -> None:
    """Show the running agent's state: DB connections, exposures by kind, last sync, errors, peers.

    Exit 0 when the agent runs and is connected, 1 when it is not running or not connected.
    """
    from ovnbgp.commands import agent as commands

    ctx.exit(commands.status(_load_config(ctx), as_json))


@main.command("plan")
@click.option("--json", "as_json", is_flag=True, help="One JSON document for machines.")
@_ovn_timeout_option
@click.pass_context
def plan_command(ctx: click.Context, as_json: bool, timeout: float) -> None:
    """Show what a reconcile would change now (kernel, OVS flows, FRR); change nothing.

    Safe while the agent runs. Exit 0 when nothing would change, 1 when changes are pending,
    3 when OVN or a target cannot be read.
    """
    from ovnbgp.commands import agent as commands

    ctx.exit(commands.plan(_load_config(ctx), as_json, timeout))


@main.command("cleanup")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def cleanup_command(ctx: click.Context, yes: bool, as_json: bool) -> None:
    """Remove everything ovnbgp owns: withdraw, steering, flows, FRR config, VRF and dummy.

    Refuses while the agent runs. FRR gets back the config it had before ovnbgp (if one was
    saved), else an empty one; sysctls are left as they are. Exit 0 when done, 1 otherwise.
    """
    from ovnbgp.commands import agent as commands

    ctx.exit(commands.cleanup(_load_config(ctx), yes, as_json))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

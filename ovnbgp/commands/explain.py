"""`ovnbgp explain ADDRESS` output: one screen of text, or one JSON document."""

from __future__ import annotations

import json

import click

from ovnbgp.agent.explain import EXIT_UNREADABLE, Fact, Story
from ovnbgp.config import Config

EXIT_USAGE = 2  # as click for a bad argument


def _mark(f: Fact) -> str:
    if not f.wanted:
        return "LEFTOVER" if f.present else "no"
    return "yes" if f.present else "MISSING"


def headline(story: Story) -> str:
    a = story.account
    where = f"on chassis {a.chassis or '(no system-id)'}"
    if not a.exposed:
        return f"{a.target} {where}: NOT EXPOSED"
    if story.errors:
        return f"{a.target} {where}: exposed by the model, but not every source could be read"
    if story.advertised:
        return f"{a.target} {where}: EXPOSED and advertised to every Established peer"
    return f"{a.target} {where}: exposed by the model, but the chain is BROKEN (see MISSING)"


def format_text(story: Story) -> str:
    a = story.account
    out = [headline(story), "Southbound:"]
    for r in a.rows:
        head = f"  {r.role} {r.port} ({r.table} {r.row})"
        if r.exposed:
            out.append(head + ": exposes " + ", ".join(
                f"{e.prefix} ({e.kind.value}, bridge {e.bridge})" for e in r.exposed))
        else:
            out.append(head + ": not exposed")
        out += [f"    - {why}" for why in r.reasons]
    if not a.rows:
        out.append("  no Port_Binding row mentions this address (not a port, floating IP, "
                   "router gateway or tenant subnet OVN knows)")
    other = [e for e in a.exposures if all(e not in r.exposed for r in a.rows)]
    for e in other:
        out.append(f"  covered by {e.kind.value} {e.prefix} of port {e.port} (Port_Binding {e.row})")
    out += [f"  note: {n}" for n in a.notes]
    if story.kernel:
        out.append("Kernel and OVS:")
        out += [f"  {_mark(f):<8} {f.what}" for f in story.kernel]
    if story.frr:
        out.append("FRR:")
        out += [f"  {_mark(f):<8} {f.what}" for f in story.frr]
    out += [f"  peer {p}" for p in story.peers]
    out += [f"error: {e}" for e in story.errors]
    return "\n".join(out) + "\n"


def run(cfg: Config, address: str, as_json: bool, timeout: float) -> int:
    from ovnbgp.agent.explain import explain
    from ovnbgp.ovn.watcher import OvnError

    try:
        story = explain(cfg, address, timeout)
    except ValueError as e:
        click.echo(f"ovnbgp explain: {address!r} is not an IP address or prefix: {e}", err=True)
        return EXIT_USAGE
    except OvnError as e:
        if as_json:
            click.echo(json.dumps({"address": address, "error": str(e), "exit": EXIT_UNREADABLE}))
        else:
            click.echo(f"ovnbgp explain: {e}", err=True)
        return EXIT_UNREADABLE
    if as_json:
        click.echo(json.dumps(story.to_dict(), indent=2))
    else:
        click.echo(format_text(story), nl=False)
    return story.exit_code

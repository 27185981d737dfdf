"""`ovnbgp desired`: connect read-only to the SB and the local OVS DB, print what this chassis
must expose (kind, prefix, bridge, and why: the Port_Binding that causes it)."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from ovnbgp.config import Config
from ovnbgp.model.records import DesiredState, ExposureKind

EXIT_OVN = 3
_KIND_ORDER = {k: i for i, k in enumerate(ExposureKind)}


def _net_key(prefix) -> tuple:
    return (prefix.version, int(prefix.network_address), prefix.prefixlen)


def state_to_dict(state: DesiredState) -> dict[str, Any]:
    """A DesiredState as plain JSON-able data, sorted for stable output."""
    tables = {b.name: b.table for b in state.bridges}
    exposures = sorted(state.exposures, key=lambda e: (_KIND_ORDER[e.kind], _net_key(e.prefix)))
    return {
        "exposures": [{"kind": e.kind.value, "prefix": str(e.prefix), "bridge": e.bridge,
                       "table": tables.get(e.bridge), "port": e.port, "port_binding": e.row}
                      for e in exposures],
        "bridges": [{"name": b.name, "table": b.table, "addresses": [str(a) for a in b.addresses]}
                    for b in sorted(state.bridges)],
        "rules": [{"priority": r.priority, "table": r.table, "family": r.family,
                   "dst": None if r.dst is None else str(r.dst)}
                  for r in sorted(state.rules, key=lambda r: (r.table, r.family,
                                                              () if r.dst is None else _net_key(r.dst)))],
        "routes": [{"table": r.table, "dst": str(r.dst), "dev": r.dev,
                    "gateway": None if r.gateway is None else str(r.gateway), "scope_link": r.scope_link}
                   for r in sorted(state.routes, key=lambda r: (r.table, _net_key(r.dst)))],
        "neighbours": [{"dev": n.dev, "ip": str(n.ip), "mac": n.mac}
                       for n in sorted(state.neighbours, key=lambda n: (n.dev, n.ip.version, int(n.ip)))],
        "flows": [{"bridge": f.bridge, "patch_port": f.patch_port, "bridge_mac": f.bridge_mac}
                  for f in sorted(state.flows)],
        "proxy_neighbours": [{"dev": n.dev, "ip": str(n.ip)} for n in sorted(
            state.proxy_neighbours, key=lambda n: (n.dev, n.ip.version, int(n.ip)))],
        "problems": [{"port_binding": p.row, "port": p.port, "reason": p.reason, "level": p.level}
                     for p in sorted(state.problems)],
    }


def render_table(data: dict[str, Any], system_id: str) -> str:
    rows = [("KIND", "PREFIX", "BRIDGE", "TABLE", "PORT", "PORT_BINDING")]
    rows += [(e["kind"], e["prefix"], e["bridge"], str(e["table"]), e["port"], e["port_binding"])
             for e in data["exposures"]]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [f"chassis {system_id or '-'}: {len(data['exposures'])} exposures, "
             f"{len(data['rules'])} rules, {len(data['routes'])} routes, "
             f"{len(data['neighbours'])} neighbours, {len(data['flows'])} flows"]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(lines)


def run(cfg: Config, as_json: bool, timeout: float) -> int:
    from ovnbgp.model.cache import desired_state
    from ovnbgp.ovn.watcher import OvnError, read_snapshot

    try:
        snapshot = read_snapshot(cfg, timeout)
    except OvnError as e:
        click.echo(f"ovnbgp desired: {e}", err=True)
        return EXIT_OVN
    state = desired_state(snapshot, cfg)
    data = state_to_dict(state)
    if as_json:
        data["chassis"] = snapshot.local.system_id
        click.echo(json.dumps(data, indent=2))
    else:
        click.echo(render_table(data, snapshot.local.system_id))
        for p in data["problems"]:
            if p["level"] != "debug":
                print(f"skipped: {p['reason']} (port {p['port'] or '-'}, Port_Binding "
                      f"{p['port_binding'] or '-'})", file=sys.stderr)
    return 0

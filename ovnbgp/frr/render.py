"""Render the FRR config from the validated Config (pure, apart from reading the snippet file).

Two steps, each testable alone: `view(cfg, snippet)` turns the Config into plain template values
(strings and ints, all from validated fields), `render(...)` runs the Jinja templates in
ovnbgp/templates/frr/. The output depends on the config only, never on what is exposed: FRR
learns exposures from the addresses on the dummy interface, so exposure churn never reloads FRR.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from ovnbgp.config import Config, Peer


@dataclass(frozen=True)
class Names:
    """Names of the FRR objects ovnbgp owns (fixed: operators refer to them in the snippet)."""

    plist_v4: str = "ovnbgp-exposed-v4"
    plist_v6: str = "ovnbgp-exposed-v6"
    rmap_out_v4: str = "ovnbgp-out-v4"
    rmap_out_v6: str = "ovnbgp-out-v6"
    rmap_in: str = "ovnbgp-in"
    bfd_profile: str = "ovnbgp"


NAMES = Names()

# Printable text, tabs allowed; anything else (NUL, escape sequences) is refused.
_BAD_SNIPPET_CHAR = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
SNIPPET_MAX_BYTES = 1 << 20


class RenderError(Exception):
    """The config cannot be rendered (in practice: the operator snippet is unusable)."""


# FRR 8.4's defaults. FRR leaves a value at its default out of the running config, so the
# rendered file does too: else frr-reload.py --test reports the line as missing after every
# reload (a refused config, and drift forever). Checked in tests/integration/test_frr_bfd_gr.py.
FRR_BFD_INTERVAL = 300
FRR_BFD_MULTIPLIER = 3
FRR_GR_RESTART_TIME = 120


def _unless_default(value: int, default: int) -> int | None:
    return None if value == default else value


def _remote_as(peer: Peer) -> str:
    return str(peer.remote_as)


def holds_bfd_until_established(cfg: Config) -> bool:
    """Whether the peers get BFD only once their sessions are Established after an FRR start
    (graceful restart with BFD; docs/graceful-restart.md). FRR 8.4 registers a peer's BFD
    session before it knows the session's source address and interface and replaces it by
    one that has them when BGP comes up: if the first was Up already (after a restart the
    leaf's BFD answers at once), bgpd reads the replacement's Down as a failure and ends the
    new session with a Hard Reset, and the leaves drop the routes graceful restart kept
    (fixed in FRR 10.3). BFD attached to an Established session has its final key at once."""
    return cfg.bgp.bfd and cfg.bgp.graceful_restart


def view(cfg: Config, snippet: str | None = None, *, bfd_on_peers: bool = True) -> dict[str, Any]:
    """Template values from a Config. Only validated fields reach the templates.
    bfd_on_peers=False: the BFD profile without the peer-group's `neighbor G bfd` lines."""
    bgp = cfg.bgp
    peers = [
        {
            "name": peer.interface if peer.interface else str(peer.address),
            "interface": peer.interface is not None,
            "remote_as": _remote_as(peer),
        }
        for peer in bgp.peers
    ]
    return {
        "asn": bgp.asn,
        "router_id": str(bgp.router_id) if bgp.router_id else None,
        # The VRF instance has no peers; its router-id only has to be stable (see bgp_vrf.j2).
        "vrf_router_id": str(bgp.router_id or cfg.kernel.bridge_ipv4.ip),
        "vrf": cfg.kernel.vrf_name,
        "peer_group": bgp.peer_group,
        "peers": peers,
        "bfd": {
            "enabled": bgp.bfd,
            "on_peers": bfd_on_peers,
            "profile": NAMES.bfd_profile,
            "receive_interval": _unless_default(bgp.bfd_receive_interval, FRR_BFD_INTERVAL),
            "transmit_interval": _unless_default(bgp.bfd_transmit_interval, FRR_BFD_INTERVAL),
            "detect_multiplier": _unless_default(bgp.bfd_detect_multiplier, FRR_BFD_MULTIPLIER),
        },
        "graceful_restart": bgp.graceful_restart,
        "graceful_restart_time": _unless_default(bgp.graceful_restart_time, FRR_GR_RESTART_TIME),
        "maximum_paths": bgp.maximum_paths,
        "names": NAMES,
        "afs": [
            {"name": "ipv4", "rmap_out": NAMES.rmap_out_v4},
            {"name": "ipv6", "rmap_out": NAMES.rmap_out_v6},
        ],
        "snippet": snippet,
        "snippet_path": str(bgp.snippet_file) if bgp.snippet_file else None,
    }


@functools.cache
def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("ovnbgp", "templates/frr"),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )


def check_snippet(text: str, path: Path | str = "snippet") -> str:
    """Normalise an operator snippet (line ends, trailing blanks); refuse control characters.

    The snippet is FRR syntax ovnbgp does not model; its FRR syntax is checked with the whole
    config by `vtysh -C` before any reload (see reload.py).
    """
    lines = text.replace("\r\n", "\n").split("\n")
    for n, line in enumerate(lines, 1):
        if _BAD_SNIPPET_CHAR.search(line):
            raise RenderError(f"{path}:{n}: control character in the operator snippet")
    body = "\n".join(line.rstrip() for line in lines).strip("\n")
    return body


def read_snippet(cfg: Config) -> str | None:
    """The operator snippet's text (checked), or None when bgp.snippet_file is not set."""
    path = cfg.bgp.snippet_file
    if path is None:
        return None
    try:
        data = path.read_bytes()
    except OSError as e:
        raise RenderError(f"bgp.snippet_file {path}: cannot read: {e.strerror}") from e
    if len(data) > SNIPPET_MAX_BYTES:
        raise RenderError(f"bgp.snippet_file {path}: larger than {SNIPPET_MAX_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise RenderError(f"bgp.snippet_file {path}: not UTF-8 text ({e.reason} at byte {e.start})") from e
    return check_snippet(text, path)


def render(cfg: Config, snippet: str | None = None, *, bfd_on_peers: bool = True) -> str:
    """The FRR config text for `cfg`, with `snippet` (already read and checked) appended."""
    return _env().get_template("frr.conf.j2").render(view(cfg, snippet, bfd_on_peers=bfd_on_peers))


def render_config(cfg: Config, *, bfd_on_peers: bool = True) -> str:
    """render() with the snippet read from bgp.snippet_file. Raises RenderError."""
    return render(cfg, read_snippet(cfg), bfd_on_peers=bfd_on_peers)


def render_boot_config(cfg: Config) -> str:
    """What FRR loads at start (its config file): render_config() without BFD on the peers
    when holds_bfd_until_established(cfg); ovnbgp adds it once the sessions are up."""
    return render_config(cfg, bfd_on_peers=not holds_bfd_until_established(cfg))

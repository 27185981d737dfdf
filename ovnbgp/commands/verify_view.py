"""`ovnbgp verify` output: a plain-text table for pipes, colour tables (rich) for a terminal."""

from __future__ import annotations

from ovnbgp.frr.verify import ExposureCheck, VerifyReport


def _adv_cell(e: ExposureCheck) -> str:
    if not e.advertised:
        return "no peer"
    good = sum(e.advertised.values())
    return f"{good}/{len(e.advertised)}"


def _mark(ok: bool) -> str:
    return "yes" if ok else "NO"


def format_text(report: VerifyReport, only_broken: bool = False) -> str:
    """A plain-text table (for pipes and logs)."""
    rows = [("PREFIX", "KIND", "PORT", "DUMMY", "VRF", "IMPORTED", "ADVERTISED", "STATUS")]
    for e in report.exposures:
        if only_broken and e.ok:
            continue
        rows.append((str(e.prefix), e.kind, e.port or "-", _mark(e.on_dummy), _mark(e.in_vrf),
                     _mark(e.imported), _adv_cell(e), "ok" if e.ok else "; ".join(e.missing)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    out = []
    for r in rows:
        out.append("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1])
    lines = [f"Exposures ({len(report.exposures)}; VRF {report.vrf}, dummy {report.dummy}):"]
    lines += ["  " + x.rstrip() for x in out] if len(rows) > 1 else ["  (none)"]
    lines.append(f"Peers ({len(report.peers)}):")
    for p in report.peers:
        fams = ",".join(p.families) or "-"
        lines.append(f"  {p.name:<24} {p.state:<14} {fams:<10} {'ok' if p.ok else p.problem}")
    if not report.peers:
        lines.append("  (none)")
    if report.leftovers:
        lines.append(f"Leftovers (not expected by ovnbgp) ({len(report.leftovers)}):")
        for x in report.leftovers:
            lines.append(f"  {str(x.prefix):<24} {', '.join(x.where)}")
    for problem in report.problems:
        lines.append(f"Problem: {problem}")
    for n in report.notes:
        lines.append(f"Note: {n}")
    lines.append(verdict(report))
    return "\n".join(lines) + "\n"


def verdict(report: VerifyReport) -> str:
    if report.ok:
        return f"OK: {len(report.exposures)} exposure(s) advertised to every Established peer"
    d = report.to_dict()["counts"]
    return (f"BROKEN: {d['broken']} exposure(s) with a missing link, {d['peers_down']} peer(s) "
            f"down, {d['leftovers']} leftover(s)" + (f", {len(report.problems)} problem(s)"
                                                      if report.problems else ""))


def print_rich(report: VerifyReport, console, only_broken: bool = False) -> None:
    """The same report as colour tables (rich) for a terminal."""
    from rich.table import Table

    def m(ok: bool) -> str:
        return "[green]✓[/]" if ok else "[bold red]✗[/]"

    t = Table(title=f"Exposures (VRF {report.vrf}, dummy {report.dummy})", title_justify="left")
    for col in ("prefix", "kind", "port", "dummy", "VRF", "imported", "advertised", "status"):
        t.add_column(col, no_wrap=col in ("prefix", "kind"))
    for e in report.exposures:
        if only_broken and e.ok:
            continue
        adv = _adv_cell(e)
        adv_ok = bool(e.advertised) and all(e.advertised.values())
        t.add_row(str(e.prefix), e.kind, e.port or "-", m(e.on_dummy), m(e.in_vrf), m(e.imported),
                  f"[green]{adv}[/]" if adv_ok else f"[bold red]{adv}[/]",
                  "[green]ok[/]" if e.ok else "[red]" + "; ".join(e.missing) + "[/]")
    console.print(t)
    pt = Table(title="Peers", title_justify="left")
    for col in ("peer", "state", "families", "status"):
        pt.add_column(col)
    for p in report.peers:
        pt.add_row(p.name, p.state if p.ok else f"[bold red]{p.state}[/]", ",".join(p.families) or "-",
                   "[green]ok[/]" if p.ok else f"[red]{p.problem}[/]")
    console.print(pt)
    if report.leftovers:
        lt = Table(title="Leftovers (not expected by ovnbgp)", title_justify="left")
        lt.add_column("prefix")
        lt.add_column("where")
        for x in report.leftovers:
            lt.add_row(f"[yellow]{x.prefix}[/]", ", ".join(x.where))
        console.print(lt)
    for problem in report.problems:
        console.print(f"[bold red]Problem:[/] {problem}")
    for n in report.notes:
        console.print(f"[yellow]Note:[/] {n}")
    console.print(("[bold green]" if report.ok else "[bold red]") + verdict(report) + "[/]")



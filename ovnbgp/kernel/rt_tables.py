"""The iproute2 `rt_tables` file: one `ID NAME` line per provider bridge table (`200 br-ex`).

The file is configurable (kernel.rt_tables_file): a drop-in `/etc/iproute2/rt_tables.d/ovnbgp.conf`
by default, or the shared `/etc/iproute2/rt_tables`. Either way every line ovnbgp writes ends
with the marker comment `# ovnbgp` (iproute2 accepts `ID NAME # comment`), which is how its
lines are told apart after a restart; every other line (comments, blank lines, the reserved
tables, an operator's entries) is kept byte for byte. A line that is not ours and already
says `200 br-ex` satisfies the wish as is; one that maps the same id to another name, or the
same name to another id, is a conflict: reported, and ovnbgp does not add its own line.

Pure functions (parse/update) plus an atomic write.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ovnbgp.fileio import atomic_write, mode_of

MARKER = "# ovnbgp"
_LINE_RE = re.compile(r"^\s*(0x[0-9a-fA-F]+|[0-9]+)\s+(\S+)\s*(#.*)?$")
HEADER = "# Routing tables of ovnbgp provider bridges. Lines ending in '# ovnbgp' are managed by ovnbgp.\n"


@dataclass(frozen=True)
class Entry:
    table: int
    name: str
    ours: bool
    line: int  # index in the file's lines


@dataclass(frozen=True)
class Update:
    text: str
    added: tuple[tuple[int, str], ...]
    removed: tuple[tuple[int, str], ...]
    conflicts: tuple[str, ...]

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed)


def parse(text: str) -> list[Entry]:
    entries = []
    for i, line in enumerate(text.splitlines()):
        m = _LINE_RE.match(line)
        if not m:
            continue
        table = int(m.group(1), 0)
        comment = (m.group(3) or "").strip()
        entries.append(Entry(table, m.group(2), comment == MARKER, i))
    return entries


def owned(text: str) -> dict[str, int]:
    """Bridge name -> table id of the lines ovnbgp wrote."""
    return {e.name: e.table for e in parse(text) if e.ours}


def update(text: str, desired: Mapping[str, int]) -> Update:
    """The file with one line per desired (name -> table) and none of ours that is not wanted."""
    entries = parse(text)
    lines = text.splitlines()
    foreign = [e for e in entries if not e.ours]
    conflicts: list[str] = []
    wanted: dict[str, int] = {}  # the lines of our own the file must have
    for name, table in sorted(desired.items(), key=lambda x: (x[1], x[0])):
        if any(e.name == name and e.table == table for e in foreign):
            continue  # an operator's line already says it
        clash = [e for e in foreign if e.name == name or e.table == table]
        if clash:
            c = clash[0]
            conflicts.append(f"table {table} {name}: the file already has '{c.table} {c.name}' "
                             "(not ovnbgp's); left as is")
            continue
        wanted[name] = table
    keep = [True] * len(lines)
    kept: set[str] = set()
    removed: list[tuple[int, str]] = []
    for e in entries:
        if not e.ours:
            continue
        if wanted.get(e.name) == e.table and e.name not in kept:
            kept.add(e.name)
        else:
            keep[e.line] = False
            removed.append((e.table, e.name))
    added = [(table, name) for name, table in sorted(wanted.items(), key=lambda x: (x[1], x[0]))
             if name not in kept]
    if not added and not removed:
        return Update(text, (), (), tuple(conflicts))
    new_lines = [line for line, k in zip(lines, keep) if k]
    if added and not any(line.strip() for line in new_lines):
        new_lines = [HEADER.rstrip("\n")]
    new_lines += [f"{table} {name} {MARKER}" for table, name in added]
    return Update("\n".join(new_lines) + "\n", tuple(added), tuple(removed), tuple(conflicts))


def read(path: Path | str) -> str:
    """The file's text; '' when it does not exist."""
    try:
        return Path(path).read_text()
    except FileNotFoundError:
        return ""


def write(path: Path | str, text: str) -> None:
    """Replace the file atomically (ovnbgp.fileio), keeping its mode; creates the directory
    (rt_tables.d may not exist yet)."""
    atomic_write(path, text, mode=mode_of(path, 0o644))

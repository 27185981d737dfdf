"""Rows of a monitored table kept lean: OVSDB row-update JSON -> compact record (pure).

The python-ovs IDL keeps a row as a Row with a Datum per column and an Atom per set element
and map entry (every external_ids key of every Port_Binding: ~6 KB per row). The watcher only
reads a few columns and a few map keys, so for Port_Binding it keeps this instead
(ovn/watcher.py hooks it into the IDL): a record is a named tuple of plain values,

    scalar   (exactly one atom)   the atom: str, int, bool, float; a uuid as its string
    optional (zero or one atom)   the atom or None
    set                           a tuple, sorted as the server sorts it
    map                           a dict of the kept keys only (a shared empty one when none),
                                  never changed once made (records share them)

A column the server does not have (an older schema) is None in every record.

The JSON is that of RFC 7047 with the monitor_cond extension ("update2"/"update3"):
"initial"/"insert" carry a row whose columns at their default are left out; "modify" carries
per column a diff: the new value of a column of at most one value (scalar or optional: the
server's ovsdb_datum_diff clones the new value when the type is not composite); for a set the
elements whose membership flips; for a map [key, value] pairs, where a pair equal to the
current entry removes it, another value replaces it and a new key is inserted; "delete"
drops the row. Plain "update" (the old monitor, v1) gives whole rows.

Odd JSON (a value of the wrong type, a bad uuid, a modify of a row never seen) is logged with
the row's uuid and that column (or row update) is skipped; it never raises.
"""

from __future__ import annotations

import logging
import re
import sys
from collections import namedtuple
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

LOG = logging.getLogger(__name__)

SCALAR, OPTIONAL, SET, MAP = "scalar", "optional", "set", "map"
EMPTY_MAP: Mapping = MappingProxyType({})  # one shared empty map for every record
_UUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_ZERO_UUID = "00000000-0000-0000-0000-000000000000"
_DEFAULTS = {"string": "", "uuid": _ZERO_UUID, "integer": 0, "boolean": False, "real": 0.0}


class Odd(ValueError):
    """A JSON value that does not fit its column (the message says how)."""


@dataclass(frozen=True)
class Column:
    """How one column is kept. atom/value: OVSDB atomic types ("string", "uuid", "integer",
    "boolean", "real"); keep: a map's keys worth keeping (None: all); intern: share equal
    strings between rows (repetitive values: types, datapath and chassis uuids)."""

    kind: str
    atom: str
    value: str | None = None
    keep: frozenset[str] | None = None
    intern: bool = False


class LeanTable:
    """The rows of one table as records (`rows`: uuid string -> record), fed row updates."""

    def __init__(self, name: str, columns: Mapping[str, Column | None]):
        """`columns`: the record's fields in order; None for a column the schema lacks."""
        self.name = name
        self.record = namedtuple(f"{name}Record", list(columns))  # type: ignore[misc]
        self._specs = tuple(columns.items())
        self._keys = {n: {k: k for k in (c.keep or ())} for n, c in columns.items() if c is not None}
        self.default = self.record(*(_default(c) for _n, c in self._specs))
        self.rows: dict[str, tuple] = {}

    def clear(self) -> None:
        self.rows = {}

    # -- row updates: each returns (old, new) when the record changed, else None ---------------

    def update2(self, uuid: str, row_update: object) -> tuple | None:
        """Apply one update2/update3 <row-update2> (see the module docstring)."""
        if not isinstance(row_update, dict) or len(row_update) != 1:
            return self._odd(uuid, "", f"row update is not one operation: {_short(row_update)}")
        ((op, body),) = row_update.items()
        old = self.rows.get(uuid)
        if op == "delete":
            if old is None:
                LOG.debug("%s %s: delete of a row not mirrored", self.name, uuid)
                return None
            del self.rows[uuid]
            return old, None
        if op not in ("initial", "insert", "modify"):
            return self._odd(uuid, "", f"unknown row operation {op!r}")
        if not isinstance(body, dict):
            return self._odd(uuid, "", f"{op} is not an object: {_short(body)}")
        if op != "modify":
            return self._set(uuid, old, self._from_row(uuid, body))
        if old is None:
            return self._odd(uuid, "", "modify of a row never inserted")
        return self._set(uuid, old, self._modified(uuid, old, body))

    def update1(self, uuid: str, new: object) -> tuple | None:
        """Apply one plain-monitor <row-update>: `new` is the whole row, or None to delete."""
        if new is None:
            old = self.rows.pop(uuid, None)
            return (old, None) if old is not None else None
        if not isinstance(new, dict):
            return self._odd(uuid, "", f"new is not an object: {_short(new)}")
        return self._set(uuid, self.rows.get(uuid), self._from_row(uuid, new))

    # -- internals -------------------------------------------------------------------------

    def _set(self, uuid: str, old: tuple | None, new: tuple) -> tuple | None:
        if old == new:
            return None
        self.rows[uuid] = new
        return old, new

    def _odd(self, uuid: str, column: str, what: str) -> tuple | None:
        """Log what was skipped (with the row's uuid); None: nothing changed."""
        where = f"column {column}" if column else "row update"
        LOG.warning("%s %s: %s skipped: %s", self.name, uuid, where, what)
        return None

    def _from_row(self, uuid: str, row: dict) -> tuple:
        values = []
        for name, spec in self._specs:
            if spec is None or name not in row:
                values.append(_default(spec))
                continue
            try:
                values.append(self._whole(name, spec, row[name]))
            except Odd as e:
                self._odd(uuid, name, str(e))
                values.append(_default(spec))
        return self.record(*values)

    def _modified(self, uuid: str, old: tuple, diff: dict) -> tuple:
        values = list(old)
        for i, (name, spec) in enumerate(self._specs):
            if spec is None or name not in diff:
                continue
            try:
                values[i] = self._applied(name, spec, old[i], diff[name])
            except Odd as e:
                self._odd(uuid, name, str(e))
        return self.record(*values)

    def _whole(self, name: str, spec: Column, json: object):
        """A column's value from its JSON in a whole row."""
        if spec.kind == MAP:
            return self._map(name, spec, {}, _members(json, "map"), diff=False)
        if spec.kind == SCALAR:
            return _one(spec, json)
        atoms = [_atom(spec, a) for a in _members(json, "set")]
        if spec.kind == OPTIONAL:
            if len(atoms) > 1:
                raise Odd(f"{len(atoms)} values in an optional column")
            return atoms[0] if atoms else None
        return _sorted(atoms)

    def _applied(self, name: str, spec: Column, current, json: object):
        """A column's value after the diff `json` (see the module docstring)."""
        if spec.kind == MAP:
            return self._map(name, spec, current, _members(json, "map"), diff=True)
        if spec.kind != SET:
            return self._whole(name, spec, json)  # at most one value: the diff is the new value
        members = dict.fromkeys(current)
        for a in [_atom(spec, a) for a in _members(json, "set")]:
            if a in members:
                del members[a]
            else:
                members[a] = None
        return _sorted(list(members))

    def _map(self, name: str, spec: Column, current: Mapping, pairs: list, *, diff: bool) -> Mapping:
        keys = self._keys[name] if spec.keep is not None else None
        out = None
        for pair in pairs:
            if not isinstance(pair, list) or len(pair) != 2:
                raise Odd(f"map entry is not a [key, value] pair: {_short(pair)}")
            k = _atom_of(spec.atom, pair[0], False)
            if keys is not None:
                if k not in keys:
                    continue  # a key nobody reads: not kept (nor checked further)
                k = keys[k]  # the one shared key string
            v = _atom_of(spec.value or "string", pair[1], spec.intern)
            if out is None:
                out = dict(current)  # a copy: records share their maps
            if diff and out.get(k) == v:
                del out[k]
            else:
                out[k] = v
        if out is None:
            return current if current else EMPTY_MAP
        return out if out else EMPTY_MAP


def _default(spec: Column | None):
    if spec is None or spec.kind == OPTIONAL:
        return None
    if spec.kind == SET:
        return ()
    if spec.kind == MAP:
        return EMPTY_MAP
    return _DEFAULTS[spec.atom]


def _members(json: object, kind: str) -> list:
    """The elements of ["set", [...]] / ["map", [...]]; a lone atom is a set of one."""
    if isinstance(json, list) and json and json[0] in ("set", "map"):
        if json[0] != kind or len(json) != 2 or not isinstance(json[1], list):
            raise Odd(f"not a {kind}: {_short(json)}")
        return json[1]
    if kind == "map":
        raise Odd(f"not a map: {_short(json)}")
    return [json]


def _one(spec: Column, json: object):
    """The value of a scalar column: an atom, or a set of exactly one."""
    members = _members(json, "set")
    if len(members) != 1:
        raise Odd(f"{len(members)} values in a scalar column")
    return _atom(spec, members[0])


def _atom(spec: Column, json: object):
    return _atom_of(spec.atom, json, spec.intern)


def _atom_of(atom: str, json: object, intern: bool):
    if atom == "string":
        if not isinstance(json, str):
            raise Odd(f"not a string: {_short(json)}")
        return _kept(json, intern)
    if atom == "uuid":
        if (not isinstance(json, list) or len(json) != 2 or json[0] != "uuid"
                or not isinstance(json[1], str) or not _UUID.fullmatch(json[1])):
            raise Odd(f"not a uuid: {_short(json)}")
        return _kept(json[1], intern)
    if atom == "boolean":
        if not isinstance(json, bool):
            raise Odd(f"not a boolean: {_short(json)}")
        return json
    if atom == "integer":
        if not isinstance(json, int) or isinstance(json, bool):
            raise Odd(f"not an integer: {_short(json)}")
        return json
    if atom == "real":
        if not isinstance(json, (int, float)) or isinstance(json, bool):
            raise Odd(f"not a real: {_short(json)}")
        return float(json)
    raise Odd(f"unknown atomic type {atom!r}")


def _kept(text: str, intern: bool) -> str:
    """A string to keep: a copy, not the JSON parser's object. The parser's strings sit among
    the whole parsed reply (megabytes, freed once applied): keeping them would pin that memory
    (python frees an arena only once all of it is free), copies are made next to the records."""
    copy = text.encode().decode()
    return sys.intern(copy) if intern else copy


def _sorted(atoms: list) -> tuple:
    if len(atoms) < 2:
        return tuple(atoms)
    try:
        return tuple(sorted(atoms))
    except TypeError:  # mixed types cannot come from a server; keep its order
        return tuple(atoms)


def _short(json: object) -> str:
    text = repr(json)
    return text if len(text) <= 80 else text[:77] + "..."

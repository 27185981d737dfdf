"""A minimal OVSDB JSON-RPC client (RFC 7047) for benchmark set-up and event injection.

    db = OvsdbClient("unix:/tmp/x/ovnsb_db.sock")
    rows = db.select("OVN_Southbound", "Port_Binding", ["_uuid", "logical_port"])
    db.transact("OVN_Southbound", [op, op, ...])      # raises OvsdbError on any failed op
    db.close()

Why not ovn-nbctl/ovn-sbctl: each invocation downloads the whole database and `lsp-bind` of
10k ports searches the table per command (docs/architecture.md, "OVN"; 6 min 40 s at 10k); raw transactions by uuid
take a fraction of a second. Why not the IDL: the bench must time single writes precisely
(one round trip on an open connection), without an IDL replica of 10k rows in its own process.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterable, Sequence
from typing import Any


class OvsdbError(RuntimeError):
    pass


class OvsdbClient:
    def __init__(self, remote: str, timeout: float = 120.0):
        if not remote.startswith("unix:"):
            raise ValueError(f"only unix: remotes are supported, got {remote!r}")
        self.timeout = timeout
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(remote[len("unix:"):])
        self._buf = ""
        self._dec = json.JSONDecoder()
        self._id = 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> OvsdbClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- JSON-RPC ----------------------------------------------------------------------------

    def send(self, method: str, params: list) -> int:
        """Send a request without waiting; returns its id (see wait())."""
        self._id += 1
        self.sock.sendall(json.dumps({"method": method, "params": params, "id": self._id}).encode())
        return self._id

    def wait(self, rid: int) -> Any:
        """Read messages until the reply to `rid`; answers the server's echo requests."""
        deadline = time.monotonic() + self.timeout
        while True:
            msg = self._next(deadline)
            if msg.get("method") == "echo":
                self.sock.sendall(json.dumps({"result": msg.get("params", []), "error": None,
                                              "id": msg.get("id")}).encode())
                continue
            if msg.get("id") != rid:
                continue  # a notification or a stale reply
            if msg.get("error"):
                raise OvsdbError(f"request {rid}: {msg['error']}")
            return msg.get("result")

    def call(self, method: str, params: list) -> Any:
        return self.wait(self.send(method, params))

    def _next(self, deadline: float) -> dict:
        while True:
            text = self._buf.lstrip()
            if text:
                try:
                    obj, end = self._dec.raw_decode(text)
                    self._buf = text[end:]
                    return obj
                except json.JSONDecodeError:
                    pass  # incomplete: read more
            if time.monotonic() > deadline:
                raise OvsdbError("timed out waiting for the database")
            data = self.sock.recv(1 << 20)
            if not data:
                raise OvsdbError("connection closed by the database")
            self._buf = text + data.decode()

    # --- helpers -----------------------------------------------------------------------------

    def transact(self, db: str, ops: Sequence[dict]) -> list:
        """One transaction; OvsdbError naming the first failed operation."""
        return check(self.call("transact", [db, *ops]), ops)

    def transact_async(self, db: str, ops: Sequence[dict]) -> int:
        return self.send("transact", [db, *ops])

    def select(self, db: str, table: str, columns: Iterable[str], where: list | None = None) -> list[dict]:
        res = self.transact(db, [{"op": "select", "table": table, "where": where or [],
                                  "columns": list(columns)}])
        return res[0]["rows"]


def check(result: list, ops: Sequence[dict]) -> list:
    for i, r in enumerate(result):
        if r is not None and "error" in r:
            what = ops[i] if i < len(ops) else "commit"
            raise OvsdbError(f"{r['error']}: {r.get('details', '')} (op {str(what)[:200]})")
    return result


def uuid_of(row: dict, column: str = "_uuid") -> str:
    """The uuid string of an OVSDB ["uuid", "..."] atom."""
    value = row[column]
    if isinstance(value, list) and len(value) == 2 and value[0] == "uuid":
        return value[1]
    raise OvsdbError(f"{column} is not a uuid: {value!r}")


def where_uuid(u: str) -> list:
    return [["_uuid", "==", ["uuid", u]]]


def bind_op(pb_uuid: str, chassis_uuid: str | None, up: bool = True) -> dict:
    """Port_Binding.chassis (and up) by uuid: what ovn-controller writes when it claims a port."""
    row: dict[str, Any] = {"chassis": ["uuid", chassis_uuid] if chassis_uuid else ["set", []],
                           "up": up}
    return {"op": "update", "table": "Port_Binding", "where": where_uuid(pb_uuid), "row": row}

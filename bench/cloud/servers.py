"""The databases of the cloud benchmark, natively on this host: a bare ovsdb-server with the OVN
Southbound schema (no northd: the rows are written directly), a bare ovsdb-server with the OVS
schema as this chassis' local DB (no vswitchd: its rows are written as vswitchd and
ovn-controller would leave them), and a byte-counting proxy in front of the Southbound.

    dbs = Databases(workdir).start()
    dbs.sb_remote, dbs.ovs_remote, dbs.sb_pid
    with dbs.proxy() as p:          # unix socket -> the SB; p.remote, p.received (bytes to clients)
        ...
    dbs.stop()
"""

from __future__ import annotations

import os
import selectors
import socket
import threading
from pathlib import Path

from bench.agent.ovsdb import OvsdbClient
from tests.harness.proc import Daemon, DaemonError, run, short_rundir, socket_ready

SB_SCHEMA = Path("/usr/share/ovn/ovn-sb.ovsschema")
OVS_SCHEMA = Path("/usr/share/openvswitch/vswitch.ovsschema")
BRIDGE_MAC = "aa:bb:cc:00:00:01"


class Databases:
    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.rundir: Path | None = None
        self.daemons: dict[str, Daemon] = {}

    def start(self) -> Databases:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.rundir = short_rundir("ovnbgp-cloud")
        try:
            self._db("sb", SB_SCHEMA)
            self._db("ovs", OVS_SCHEMA)
            self._local_ovs()
        except BaseException:
            self.stop()
            raise
        return self

    def _sock(self, name: str) -> Path:
        assert self.rundir is not None
        return self.rundir / f"{name}.sock"

    @property
    def sb_remote(self) -> str:
        return f"unix:{self._sock('sb')}"

    @property
    def ovs_remote(self) -> str:
        return f"unix:{self._sock('ovs')}"

    @property
    def sb_pid(self) -> int:
        pid = self.daemons["sb"].pid
        assert pid is not None
        return pid

    def _db(self, name: str, schema: Path) -> None:
        path = self.workdir / f"{name}.db"
        path.unlink(missing_ok=True)
        run(["ovsdb-tool", "create", str(path), str(schema)])
        sock = self._sock(name)
        d = Daemon(f"ovsdb-server-{name}",
                   ["ovsdb-server", str(path), f"--remote=punix:{sock}",
                    f"--unixctl={self.rundir}/{name}.ctl", "-vconsole:warn", "-vsyslog:off"],
                   self.workdir / f"{name}.log")
        self.daemons[name] = d
        d.start(lambda: socket_ready(sock), 20)

    def _local_ovs(self) -> None:
        """This chassis' OVS DB as ovn-controller and vswitchd leave it: system-id, the bridge
        mapping public:br-ex, br-int and br-ex with the localnet patch pair, br-ex's MAC."""
        ops = [
            {"op": "insert", "table": "Interface", "uuid-name": "i_ex",
             "row": {"name": "br-ex", "type": "internal", "mac_in_use": BRIDGE_MAC, "ofport": 65534}},
            {"op": "insert", "table": "Port", "uuid-name": "p_ex",
             "row": {"name": "br-ex", "interfaces": ["named-uuid", "i_ex"]}},
            {"op": "insert", "table": "Interface", "uuid-name": "i_pa",
             "row": {"name": "patch-provnet-public-to-br-int", "type": "patch", "ofport": 1,
                     "options": ["map", [["peer", "patch-br-int-to-provnet-public"]]]}},
            {"op": "insert", "table": "Port", "uuid-name": "p_pa",
             "row": {"name": "patch-provnet-public-to-br-int", "interfaces": ["named-uuid", "i_pa"],
                     "external_ids": ["map", [["ovn-localnet-port", "provnet-public"]]]}},
            {"op": "insert", "table": "Interface", "uuid-name": "i_pb",
             "row": {"name": "patch-br-int-to-provnet-public", "type": "patch", "ofport": 2,
                     "options": ["map", [["peer", "patch-provnet-public-to-br-int"]]]}},
            {"op": "insert", "table": "Port", "uuid-name": "p_pb",
             "row": {"name": "patch-br-int-to-provnet-public", "interfaces": ["named-uuid", "i_pb"]}},
            {"op": "insert", "table": "Bridge", "uuid-name": "b_ex",
             "row": {"name": "br-ex", "ports": ["set", [["named-uuid", "p_ex"], ["named-uuid", "p_pa"]]]}},
            {"op": "insert", "table": "Bridge", "uuid-name": "b_int",
             "row": {"name": "br-int", "ports": ["named-uuid", "p_pb"]}},
            {"op": "insert", "table": "Open_vSwitch",
             "row": {"bridges": ["set", [["named-uuid", "b_ex"], ["named-uuid", "b_int"]]],
                     "external_ids": ["map", [["system-id", "ch1"], ["ovn-bridge", "br-int"],
                                              ["ovn-bridge-mappings", "public:br-ex"]]]}},
        ]
        with OvsdbClient(self.ovs_remote) as c:
            c.transact("Open_vSwitch", ops)

    def proxy(self) -> CountingProxy:
        assert self.rundir is not None
        return CountingProxy(self._sock("sb"), self.rundir / f"proxy-{len(os.listdir(self.rundir))}.sock")

    def stop(self) -> None:
        for d in self.daemons.values():
            try:
                d.stop()
            except DaemonError:
                pass
        self.daemons.clear()


def cpu_ticks_s(pid: int) -> float:
    """utime + stime of a process from /proc (clock-tick resolution, 10 ms)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CountingProxy:
    """A unix-socket relay to the Southbound that counts the bytes sent to its clients: what a
    reader receives from the SB, nothing of its own files or of the local OVS DB."""

    def __init__(self, upstream: Path, path: Path):
        self.upstream, self.path = upstream, path
        self.received = 0  # server -> clients
        self.sent = 0  # clients -> server
        self._stop = threading.Event()
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(path))
        self._listener.listen(8)
        self._thread = threading.Thread(target=self._run, daemon=True, name="sb-proxy")
        self._thread.start()

    @property
    def remote(self) -> str:
        return f"unix:{self.path}"

    def __enter__(self) -> CountingProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._listener.close()
        self.path.unlink(missing_ok=True)

    def _run(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self._listener, selectors.EVENT_READ, None)
        peers: dict[socket.socket, tuple[socket.socket, bool]] = {}  # sock -> (other, from server)
        while not self._stop.is_set():
            for key, _ in sel.select(0.2):
                s = key.fileobj
                if s is self._listener:
                    client, _ = self._listener.accept()
                    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    server.connect(str(self.upstream))
                    peers[client] = (server, False)
                    peers[server] = (client, True)
                    sel.register(client, selectors.EVENT_READ, None)
                    sel.register(server, selectors.EVENT_READ, None)
                    continue
                assert isinstance(s, socket.socket)
                other, from_server = peers[s]
                try:
                    data = s.recv(1 << 20)
                except OSError:
                    data = b""
                if data:
                    try:
                        other.sendall(data)
                    except OSError:
                        data = b""
                if not data:
                    for x in (s, other):
                        sel.unregister(x)
                        x.close()
                        peers.pop(x, None)
                    continue
                if from_server:
                    self.received += len(data)
                else:
                    self.sent += len(data)
        for s in peers:
            s.close()

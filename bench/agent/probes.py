"""What the agent benchmark watches: addresses appearing (netlink), FRR's tables (vty socket),
and a process's CPU and memory (/proc).

    mon = AddrMonitor(netns)          # RTM_NEWADDR/RTM_DELADDR of the namespace, timestamped
    mon.wait_all({"172.16.0.10/32"}, timeout=60) -> time.monotonic() of the last one seen
    vty = Vty(frr.vty_dir / "bgpd.vty")   # one open session; ~5 ms a command in UML
    vty.json("show bgp vrf ovn-bgp-vrf ipv4 unicast statistics json")
    ProcStat.read(pid).cpu             # utime+stime seconds; .children, .hwm_mb, .rss_mb
    lookup_cost(netns, "172.16.0.10")  # seconds per kernel route lookup (RTM_GETROUTE)

The monitor timestamps each message when its reader thread receives it (a netlink
notification carries no time of its own). The thread does nothing else, and a blocked reader
is woken as soon as the kernel queues the message, so the figure is the moment the address
became visible to any process on the node. vtysh costs about a second per call in User-Mode
Linux (fork + exec + connect to every daemon); the vty client talks to bgpd's socket directly,
as vtysh does: the command plus a NUL, and the answer ends with three NULs and a status byte.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import struct
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

from pyroute2.netlink import NLM_F_ACK, NLM_F_REQUEST
from pyroute2.netlink.rtnl import RTM_GETROUTE
from pyroute2.netlink.rtnl.rtmsg import rtmsg

from ovnbgp.kernel.nltransport import NetlinkTransport, netlink_socket

RTM_NEWADDR, RTM_DELADDR = 20, 21
RTMGRP_IPV4_IFADDR, RTMGRP_IPV6_IFADDR = 0x10, 0x100
IFA_ADDRESS, IFA_LOCAL = 1, 2
NLMSG_HDR = struct.Struct("=IHHII")
IFADDRMSG = struct.Struct("=BBBBI")
SO_RCVBUFFORCE = 33


class _NetlinkWatch:
    """A thread reading one namespace's rtnetlink multicast `groups`; `_take(data, now)` files
    each datagram under self._cond. ENOBUFS (notifications dropped) counts in `overflows`."""

    def __init__(self, netns: str | None, groups: int, rcvbuf: int, name: str):
        self.sock = netlink_socket(netns)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, rcvbuf)
        except OSError:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.bind((0, groups))
        self._cond = threading.Condition()
        self.overflows = 0
        self._stop = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def close(self) -> None:
        self._stop = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()

    def _run(self) -> None:
        while not self._stop:
            try:
                data = self.sock.recv(1 << 16)
            except OSError as e:
                if self._stop or e.errno != 105:  # ENOBUFS: the kernel dropped notifications
                    return
                self.overflows += 1
                continue
            self._take(data, time.monotonic())

    def _take(self, data: bytes, now: float) -> None:
        raise NotImplementedError


class AddrMonitor(_NetlinkWatch):
    """Address notifications of one network namespace, with receive times."""

    def __init__(self, netns: str | None, rcvbuf: int = 64 << 20):
        super().__init__(netns, RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR, rcvbuf, "addr-monitor")
        #: prefix text -> (monotonic time, "new"/"del", ifindex) of the latest event
        self.latest: dict[str, tuple[float, str, int]] = {}
        self.count = 0
        self._thread.start()

    def _take(self, data: bytes, now: float) -> None:
        events = list(_parse(data))
        if not events:
            return
        with self._cond:
            for kind, index, prefix in events:
                self.latest[prefix] = (now, kind, index)
                self.count += 1
            self._cond.notify_all()

    def seen(self, prefix: str, kind: str = "new") -> float | None:
        with self._cond:
            e = self.latest.get(prefix)
        return e[0] if e is not None and e[1] == kind else None

    def wait_all(self, prefixes: Iterable[str], timeout: float, kind: str = "new",
                 since: float | None = None) -> float | None:
        """Monotonic time of the last of `prefixes` to reach state `kind` (by a notification
        received after `since`, when given); None on timeout. `since` matters right after a
        deletion by hand: its notification may not have been read yet, and the prefix's last
        state is still the "new" of long ago (a drift sample of -33.7 s at 10k)."""
        want = set(prefixes)
        pending = set(want)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                pending = {p for p in pending
                           if (e := self.latest.get(p)) is None or e[1] != kind
                           or (since is not None and e[0] < since)}
                if not pending:
                    return max(self.latest[p][0] for p in want) if want else time.monotonic()
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                # Checking 10k keys per notification would cost more than the agent: wait a bit.
                self._cond.wait(min(left, 0.2))

    def missing(self, prefixes: Iterable[str], kind: str = "new") -> list[str]:
        with self._cond:
            return [p for p in prefixes
                    if (e := self.latest.get(p)) is None or e[1] != kind]


def _parse(data: bytes):
    off, end = 0, len(data)
    while off + 16 <= end:
        length, mtype, _flags, _seq, _pid = NLMSG_HDR.unpack_from(data, off)
        if length < 16:
            return
        if mtype in (RTM_NEWADDR, RTM_DELADDR) and length >= 24:
            family, plen, _f, _scope, index = IFADDRMSG.unpack_from(data, off + 16)
            addr = local = None
            a = off + 24
            stop = off + length
            while a + 4 <= stop:
                alen, atype = struct.unpack_from("=HH", data, a)
                if alen < 4:
                    break
                if atype in (IFA_ADDRESS, IFA_LOCAL):
                    raw = data[a + 4:a + alen]
                    ip = ipaddress.ip_address(raw)
                    if atype == IFA_LOCAL:
                        local = ip
                    else:
                        addr = ip
                a += (alen + 3) & ~3
            ip = local or addr
            if ip is not None:
                net = ipaddress.ip_interface(f"{ip}/{plen}").network
                yield ("new" if mtype == RTM_NEWADDR else "del"), index, str(net)
        off += (length + 3) & ~3


class VtyError(RuntimeError):
    pass


class Vty:
    """One persistent session on an FRR daemon's vty socket (what vtysh does per daemon)."""

    def __init__(self, path: str | os.PathLike, timeout: float = 60.0):
        self.path = str(path)
        self.timeout = timeout
        self.sock: socket.socket | None = None

    def _connect(self) -> socket.socket:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.path)
        return s

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def run(self, cmd: str) -> str:
        if self.sock is None:
            self.sock = self._connect()
        try:
            self.sock.sendall(cmd.encode() + b"\0")
            buf = bytearray()
            while not (len(buf) >= 4 and buf[-4:-1] == b"\0\0\0"):
                chunk = self.sock.recv(1 << 20)
                if not chunk:
                    raise VtyError(f"{self.path}: connection closed")
                buf += chunk
        except (OSError, VtyError):
            self.close()
            raise
        status = buf[-1]
        text = buf[:-4].decode(errors="replace")
        if status != 0:
            raise VtyError(f"{cmd!r} -> status {status}: {text[:300]}")
        return text

    def json(self, cmd: str):
        text = self.run(cmd)
        return json.loads(text) if text.strip() else {}


def vrf_prefix_count(vty: Vty, vrf: str, afi: str = "ipv4") -> int:
    """Prefixes in the BGP table of `vrf` (statistics: a table walk in bgpd, no big JSON)."""
    data = vty.json(f"show bgp vrf {vrf} {afi} unicast statistics json")
    for v in data.values():
        if isinstance(v, list) and v:
            return int(v[0].get("totalPrefixes", 0))
    return 0


def vrf_has_prefix(vty: Vty, vrf: str, prefix: str) -> bool:
    afi = "ipv6" if ":" in prefix else "ipv4"
    data = vty.json(f"show bgp vrf {vrf} {afi} unicast {prefix} json")
    return bool(data.get("paths"))


def peer_prefixes_received(vty: Vty, peer: str, afi: str = "ipv4") -> int:
    """pfxRcd of `peer` in the global instance's summary (at the leaf: what the node sent)."""
    data = vty.json(f"show bgp {afi} unicast summary json")
    p = (data.get("peers") or {}).get(peer) or {}
    return int(p.get("pfxRcd", 0) or 0)


@dataclass(frozen=True)
class ProcStat:
    cpu: float        # utime + stime of the process (all threads), seconds
    children: float   # cutime + cstime: waited-for children (frr-reload.py, ovs-ofctl), seconds
    rss_mb: float
    hwm_mb: float     # peak resident set size

    @classmethod
    def read(cls, pid: int) -> ProcStat:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        tick = os.sysconf("SC_CLK_TCK")
        # fields[0] is the state (field 3 of proc(5)): utime is field 14 -> index 11.
        utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
        rss = hwm = 0.0
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1]) / 1024
                elif line.startswith("VmHWM:"):
                    hwm = int(line.split()[1]) / 1024
        return cls((utime + stime) / tick, (cutime + cstime) / tick, rss, hwm)


UNROUTED = "198.51.100.7"  # TEST-NET-2: an address nobody exposes or routes


def lookup_cost(ns: str, dst: str = UNROUTED, count: int = 2000, rounds: int = 5) -> float:
    """Seconds per kernel route lookup (RTM_GETROUTE) of IPv4 `dst` in namespace `ns`:
    `count` requests pipelined on one socket, the best of `rounds` rounds (the least disturbed
    by other load), after a warm-up."""
    m = rtmsg()
    m["family"] = socket.AF_INET
    m["dst_len"] = 32
    m["attrs"] = [["RTA_DST", dst]]
    m["header"]["type"] = RTM_GETROUTE
    m["header"]["flags"] = NLM_F_REQUEST | NLM_F_ACK
    m["header"]["pid"] = m["header"]["sequence_number"] = 0
    m.encode()
    data = bytes(m.data)
    nl = NetlinkTransport(ns)
    try:
        nl.execute([data] * 50)  # warm up
        best = float("inf")
        for _ in range(rounds):
            t = time.perf_counter()
            nl.execute([data] * count)
            best = min(best, (time.perf_counter() - t) / count)
        return best
    finally:
        nl.close()


RTM_NEWROUTE, RTM_DELROUTE, RTM_NEWRULE, RTM_DELRULE = 24, 25, 32, 33
RTMGRP_IPV4_ROUTE, RTMGRP_IPV4_RULE = 0x40, 0x80
RTMGRP_IPV6_ROUTE = 0x400
# rtmsg and fib_rule_hdr share their first 12 bytes' layout: family, dst_len, src_len, tos,
# table, ... ; attribute 1 is the destination and 15 the 32-bit table in both.
RT_HDR = struct.Struct("=BBBBBBBBI")
ATTR_DST, ATTR_TABLE = 1, 15


class RouteRuleMonitor(_NetlinkWatch):
    """RTM_NEWROUTE/RTM_NEWRULE notifications of a namespace with receive times: what put a
    deleted route or rule back, and when (the drift repair rows)."""

    def __init__(self, netns: str | None, rcvbuf: int = 16 << 20):
        super().__init__(netns, RTMGRP_IPV4_ROUTE | RTMGRP_IPV4_RULE | RTMGRP_IPV6_ROUTE, rcvbuf,
                         "route-monitor")
        #: (kind "route"/"rule", "new"/"del", dst text "a.b.c.d/n", table) -> latest time
        self.latest: dict[tuple[str, str, str, int], float] = {}
        self._thread.start()

    def _take(self, data: bytes, now: float) -> None:
        with self._cond:
            for key in _parse_route_rule(data):
                self.latest[key] = now
            self._cond.notify_all()

    def wait_new(self, kind: str, dst: str, table: int, after: float, timeout: float) -> float | None:
        """Monotonic time of the first RTM_NEW{ROUTE,RULE} for (dst, table) seen after `after`."""
        key = (kind, "new", str(ipaddress.ip_network(dst, strict=False)), table)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                t = self.latest.get(key)
                if t is not None and t > after:
                    return t
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(min(left, 0.2))


def _parse_route_rule(data: bytes):
    off, end = 0, len(data)
    while off + 16 <= end:
        length, mtype, _flags, _seq, _pid = NLMSG_HDR.unpack_from(data, off)
        if length < 16:
            return
        if mtype in (RTM_NEWROUTE, RTM_DELROUTE, RTM_NEWRULE, RTM_DELRULE) and length >= 28:
            family, dst_len, _s, _t, table = RT_HDR.unpack_from(data, off + 16)[:5]
            dst = None
            a, stop = off + 28, off + length
            while a + 4 <= stop:
                alen, atype = struct.unpack_from("=HH", data, a)
                if alen < 4:
                    break
                if atype == ATTR_DST:
                    dst = ipaddress.ip_address(data[a + 4:a + alen])
                elif atype == ATTR_TABLE and alen >= 8:
                    table = struct.unpack_from("=I", data, a + 4)[0]
                a += (alen + 3) & ~3
            if dst is None:
                dst = ipaddress.ip_address(b"\0" * (4 if family == socket.AF_INET else 16))
            kind = "route" if mtype in (RTM_NEWROUTE, RTM_DELROUTE) else "rule"
            new = mtype in (RTM_NEWROUTE, RTM_NEWRULE)
            net = ipaddress.ip_network(f"{dst}/{dst_len}", strict=False)
            yield kind, "new" if new else "del", str(net), table
        off += (length + 3) & ~3


class FirstPrefix:
    """A thread polling the leaf (its own vty session, every `interval` s) for the first
    prefix received from `peer`: the time from a start to the first route at the leaf, while
    the caller waits for other things."""

    def __init__(self, vty_path: str | os.PathLike, peer: str, interval: float = 0.05,
                 timeout: float = 900.0):
        self.vty = Vty(vty_path)
        self.peer = peer
        self.interval = interval
        self.deadline = time.monotonic() + timeout
        self.seen: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="first-prefix", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set() and time.monotonic() < self.deadline:
            try:
                if peer_prefixes_received(self.vty, self.peer) > 0:
                    self.seen = time.monotonic()
                    return
            except (OSError, VtyError, ValueError):
                pass
            self._stop.wait(self.interval)

    def wait(self, timeout: float) -> float | None:
        self._thread.join(timeout)
        return self.seen

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.vty.close()

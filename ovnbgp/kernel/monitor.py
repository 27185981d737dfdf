"""Kernel change notifications: drift on ovnbgp's objects is seen when it happens.

One rtnetlink socket subscribed to the multicast groups of what ovnbgp owns or looks at:
links, addresses, rules, routes and neighbours (IPv4 and IPv6). The kernel also sends a
notification for every change ovnbgp makes itself; those carry the port id of ovnbgp's request
socket in nlmsg_pid and are dropped on arrival. What is left (someone else's change, or one the
kernel made on its own) is kept raw until the reconciler's thread folds it into its cached
observation (kernel/netlink.py, `apply_events` here): a notification that changes nothing
in the cache (an IPv6 address finishing DAD, the RTM_DELNEIGH the kernel sends with pid 0
after ovnbgp's own delete) is not drift; one that does names the keys to plan again.

A waiter thread (`watch(callback)`) blocks in poll() on the socket (with no timeout: an idle
node costs nothing; close() ends the wait through a pipe) and calls the callback when a
notification that may matter arrived (the agent marks a work-queue key), so drift is repaired
within an event's latency and not at the next periodic resync. If the socket overflows (ENOBUFS:
notifications lost) the cache can no longer be trusted and the next reconcile reads the tables
again.
"""

from __future__ import annotations

import errno
import os
import select
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from pyroute2.netlink.rtnl import (
    RTMGRP_IPV4_IFADDR,
    RTMGRP_IPV4_ROUTE,
    RTMGRP_IPV4_RULE,
    RTMGRP_IPV6_IFADDR,
    RTMGRP_IPV6_ROUTE,
    RTMGRP_IPV6_RULE,
    RTMGRP_LINK,
    RTMGRP_NEIGH,
)
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from pyroute2.netlink.rtnl.ndmsg import ndmsg

from ovnbgp.kernel import messages as M
from ovnbgp.kernel.nltransport import netlink_socket, pyroute2_parser
from ovnbgp.kernel.objects import KernelState, RouteObj, RuleObj

GROUPS = (RTMGRP_LINK | RTMGRP_NEIGH | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR | RTMGRP_IPV4_ROUTE
          | RTMGRP_IPV6_ROUTE | RTMGRP_IPV4_RULE | RTMGRP_IPV6_RULE)
RTM_NEWLINK, RTM_DELLINK = 16, 17
RTM_NEWADDR, RTM_DELADDR = 20, 21
RTM_NEWROUTE, RTM_DELROUTE = 24, 25
RTM_NEWNEIGH, RTM_DELNEIGH = 28, 29
RTM_NEWRULE, RTM_DELRULE = 32, 33
_NEW = {RTM_NEWADDR, RTM_NEWROUTE, RTM_NEWNEIGH, RTM_NEWRULE}
NLM_F_REPLACE = 0x100
_HDR = struct.Struct("=IHHII")  # nlmsghdr: len, type, flags, seq, pid
_SO_RCVBUFFORCE = 33
NDA_PROTOCOL = 12


class Monitor:
    """The notification socket; `collect()` may run on the waiter thread, `take()` on the
    reconciler's: the raw messages pass between them under a lock."""

    def __init__(self, netns: str | None, own_pid: Callable[[], int], rcvbuf: int = 32 << 20):
        self.sock = netlink_socket(netns)
        self.sock.bind((0, GROUPS))
        self.sock.setblocking(False)
        try:  # a cold sync of 10k exposures sends ~20k notifications of our own
            self.sock.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, rcvbuf)
        except OSError:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self._own_pid = own_pid
        self._lock = threading.Lock()
        self._links: set[str] = set()
        self._pending: list[tuple[int, int, bytes]] = []  # (type, flags, message bytes)
        self._lost = False
        self._closed = threading.Event()
        self._wake_r, self._wake_w = os.pipe()  # close() ends the waiter's poll() through it
        self._waiter: threading.Thread | None = None
        # What the waiter thread wakes the agent for (set by the reconciler after observe()).
        self.route_protocol = 0
        self.watched_index: frozenset[int] = frozenset()
        self.watched_tables: frozenset[int] = frozenset()

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        os.write(self._wake_w, b"x")
        waiter = self._waiter
        if waiter is not None and waiter is not threading.current_thread():
            waiter.join()
        with self._lock:
            self.sock.close()
        os.close(self._wake_r)
        os.close(self._wake_w)

    def collect(self) -> bool:
        """Read what is queued on the socket; True when something that may be drift came."""
        own = self._own_pid()
        interesting = False
        with self._lock:
            if self._closed.is_set():
                return False
            while True:
                try:
                    buf = self.sock.recv(1 << 20)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError as e:
                    if e.errno == errno.ENOBUFS:
                        self._lost = interesting = True
                        continue
                    raise
                off, end = 0, len(buf)
                while off + 16 <= end:
                    length, mtype, flags, _seq, pid = _HDR.unpack_from(buf, off)
                    if length < 16:
                        break
                    if pid != own or own == 0:
                        interesting |= self._keep(buf, off, length, mtype, flags)
                    off += (length + 3) & ~3
        return interesting

    def _keep(self, buf: bytes, off: int, length: int, mtype: int, flags: int) -> bool:
        if mtype in (RTM_NEWLINK, RTM_DELLINK):
            m = ifinfmsg(buf, offset=off, length=length)
            m.decode()
            name = m.get_attr("IFLA_IFNAME")
            if name:
                self._links.add(name)
            return bool(name)
        if mtype not in (RTM_NEWADDR, RTM_DELADDR, RTM_NEWROUTE, RTM_DELROUTE, RTM_NEWNEIGH,
                         RTM_DELNEIGH, RTM_NEWRULE, RTM_DELRULE):
            return False
        msg = bytes(buf[off:off + length])
        wanted = self._wanted(mtype, msg)
        if wanted is not None:
            self._pending.append((mtype, flags, msg))
        return bool(wanted)

    def _wanted(self, mtype: int, msg: bytes) -> bool | None:
        """None: a notification the cache has no place for (dropped: the same filters as a
        dump, kernel/netlink.py _observe_tables); else whether to wake the agent for it."""
        if mtype in (RTM_NEWROUTE, RTM_DELROUTE):
            fam, table, proto, rtype = M.peek_route(msg, 0)
            if rtype != 1 or fam not in M.VERSION:
                return None  # local/broadcast routes the kernel makes for addresses
            if proto == self.route_protocol or table in self.watched_tables or (
                    table == M.RT_TABLE_COMPAT):
                return True
            return None  # e.g. the VRF's connected routes of the dummy's addresses
        if mtype in (RTM_NEWADDR, RTM_DELADDR):
            return True if M.peek_addr_index(msg, 0) in self.watched_index else None
        if mtype in (RTM_NEWNEIGH, RTM_DELNEIGH):
            _fam, index, state = M.peek_neigh(msg, 0)
            if bool(state & M.NUD_PERMANENT) or _neigh_protocol(msg) == self.route_protocol \
                    or _is_proxy(msg):
                return True
            return False if index in self.watched_index else None  # learned entries: no wake
        return True  # rules: rare, always looked at

    def take(self) -> tuple[set[str], list[tuple[int, int, bytes]], bool]:
        """(link names, other messages, lost?) since the last take; collects first."""
        self.collect()
        with self._lock:
            out = (self._links, self._pending, self._lost)
            self._links, self._pending, self._lost = set(), [], False
        return out

    def watch(self, callback: Callable[[], None]) -> threading.Thread:
        """Start the waiter thread: callback() after each batch of notifications that may be
        drift. It ends when the monitor is closed."""
        t = self._waiter = threading.Thread(target=self._wait_loop, args=(callback,),
                                            name="kernel-monitor", daemon=True)
        t.start()
        return t

    def _wait_loop(self, callback: Callable[[], None]) -> None:
        poller = select.poll()
        try:
            poller.register(self._wake_r, select.POLLIN)
            poller.register(self.sock.fileno(), select.POLLIN)
            while not self._closed.is_set():
                ready = poller.poll()
                if self._closed.is_set() or any(fd == self._wake_r for fd, _ev in ready):
                    return
                if self.collect():
                    callback()
        except (OSError, ValueError):
            return


def _neigh_protocol(msg: bytes) -> int:
    attrs = M._tlvs(msg, M._NLHDR + 12, len(msg))  # ndmsg: 12 bytes fixed
    a = attrs.get(NDA_PROTOCOL)
    return M._int(msg, a) if a is not None else 0


def _is_proxy(msg: bytes) -> bool:
    return bool(msg[M._NLHDR + 10] & M.NTF_PROXY)  # ndm_flags: family, pad x3, ifindex, state(2)


@dataclass
class Drift:
    """What foreign notifications changed in the cached observation: keys to plan again (as
    plan_changes.py names them) or `full` (plan everything against the cache)."""

    keys: dict[str, set] = field(default_factory=lambda: {
        "exposures": set(), "rules": set(), "routes": set(), "neighbours": set()})
    full: bool = False

    def __bool__(self) -> bool:
        return self.full or any(self.keys.values())

    def clear(self) -> None:
        for s in self.keys.values():
            s.clear()
        self.full = False


def apply_events(msgs: list[tuple[int, int, bytes]], st: KernelState, index, dummy: str,
                 protocol: int, drift: Drift) -> None:
    """Fold notifications into the cached observation `st` (and its ObservedIndex), recording
    in `drift` what changed; the same filters as observe() decide what the cache holds."""
    names = {ln.index: ln.name for ln in st.links.values()}
    for mtype, flags, msg in msgs:
        new = mtype in _NEW
        if mtype in (RTM_NEWADDR, RTM_DELADDR):
            _addr_event(msg, new, st, names, dummy, drift)
        elif mtype in (RTM_NEWRULE, RTM_DELRULE):
            rule = M.parse_rule(msg, 0, len(msg))
            if rule is not None and _set_member(st.rules, rule, new):
                (index.add if new else index.discard)(rule)
                drift.keys["rules"].add(rule.key)
        elif mtype in (RTM_NEWROUTE, RTM_DELROUTE):
            _route_event(msg, new, flags, st, index, names, protocol, drift)
        else:
            _neigh_event(msg, new, st, names, protocol, drift)


def _set_member(s: set, obj, present: bool) -> bool:
    """Make `obj` present in (or absent from) `s`; True when that changed `s`."""
    if present == (obj in s):
        return False
    (s.add if present else s.discard)(obj)
    return True


def _addr_event(msg: bytes, new: bool, st: KernelState, names: dict[int, str], dummy: str,
                drift: Drift) -> None:
    parsed = M.parse_addr(msg, 0, len(msg))
    if parsed is None or names.get(parsed[0]) not in st.watched_devs:
        return
    dev, addr = names[parsed[0]], parsed[1]
    if not _set_member(st.addrs.setdefault(dev, set()), addr, new):
        return
    if dev == dummy and not new:
        drift.keys["exposures"].add(addr.network)
    else:  # an address added to the dummy, or a bridge address: the full plan decides
        drift.full = True


def _route_event(msg: bytes, new: bool, flags: int, st: KernelState, index,
                 names: dict[int, str], protocol: int, drift: Drift) -> None:
    route: RouteObj | None = M.parse_route(msg, 0, len(msg), names)
    if route is None or not (route.protocol == protocol or route.table in st.watched_tables):
        return
    changed = False
    if new and flags & NLM_F_REPLACE:  # the route it replaced went without a notification
        for old in [r for r in index.routes(route.key) if r.metric == route.metric and r != route]:
            st.routes.discard(old)
            index.discard(old)
            changed = True
    if _set_member(st.routes, route, new):
        (index.add if new else index.discard)(route)
        changed = True
    if changed:
        drift.keys["routes"].add(route.key)


def _neigh_event(msg: bytes, new: bool, st: KernelState, names: dict[int, str], protocol: int,
                 drift: Drift) -> None:
    m = pyroute2_parser(ndmsg)(msg, 0, len(msg))
    if _is_proxy(msg):
        p = M.decode_proxy(m, names)
        if p is None or not (p.protocol == protocol or p.dev in st.watched_devs):
            return
        if new and st.proxies.get(p.key) != p:
            st.proxies[p.key] = p
            drift.full = True
        elif not new and st.proxies.pop(p.key, None) is not None:
            drift.full = True
        return
    n = M.decode_neigh(m, names)
    if n is None or not (n.protocol == protocol or n.dev in st.watched_devs):
        return
    have = st.neighbours.get(n.key)
    if new and have != n:
        st.neighbours[n.key] = n
    elif not new and have is not None:
        del st.neighbours[n.key]
    else:
        return
    drift.keys["neighbours"].add(n.key)


__all__ = ["Drift", "Monitor", "RuleObj", "apply_events"]

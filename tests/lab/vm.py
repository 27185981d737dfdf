"""Lab VMs (a network namespace holding an OVS internal port of br-int) and ping helpers.

A VM is a network namespace. Binding it to a node adds an internal port named after the VM to
that node's br-int with `external_ids:iface-id=<logical port>`; with the userspace datapath the
port is a tap device, which is moved into the VM's namespace and given the logical port's MAC
and addresses (docs/architecture.md, "User-Mode Linux"). The real
ovn-controller of the node then claims the logical port (Port_Binding.chassis, up).
Unbinding deletes the port (the tap goes with it); migrating is unbind + bind elsewhere: the
namespace, and so the VM's identity, stays.
"""

from __future__ import annotations

import re
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from tests.harness.netns import Netns
from tests.harness.proc import netns_argv, run
from tests.lab.scenario import Port


@dataclass
class Vm:
    name: str
    port: Port
    ns: Netns
    node: str | None = None  # the node it is bound to, None when unbound
    history: list[tuple[float, str | None]] = field(default_factory=list)  # (monotonic, node)

    @property
    def ifname(self) -> str:
        return self.name

    @property
    def mac(self) -> str:
        return self.port.mac

    @property
    def ip4(self):
        return self.port.ip4

    @property
    def ip6(self):
        return self.port.ip6

    @property
    def network(self):
        return self.port.network

    def exec(self, *argv: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        return run(list(argv), netns=self.ns.name, check=check, timeout=timeout)

    def ping(self, dst, *, count: int = 1, wait: float = 2, source=None) -> bool:
        return ping(self.ns.name, dst, count=count, wait=wait, source=source)

    def configure_argv(self) -> list[str]:
        """`ip -batch` lines giving the (freshly moved) interface the port's identity."""
        net = self.port.network
        lines = [f"link set dev {self.ifname} address {self.mac} mtu {net.mtu} up",
                 f"address replace {self.ip4}/{net.cidr4.prefixlen} dev {self.ifname}",
                 f"route replace 0.0.0.0/0 via {net.gateway4} dev {self.ifname}"]
        if self.ip6 is not None and net.cidr6 is not None:
            lines.append(f"address replace {self.ip6}/{net.cidr6.prefixlen} dev {self.ifname} nodad")
            if net.gateway6 is not None:
                lines.append(f"route replace ::/0 via {net.gateway6} dev {self.ifname}")
        return lines


def ping(netns: str | None, dst, *, count: int = 1, wait: float = 2, source=None,
         interval: float | None = None) -> bool:
    """True if `dst` answers from inside `netns` (ping picks IPv4/IPv6 from the address)."""
    argv = ["ping", "-n", "-q", "-c", str(count), "-W", f"{wait:g}"]
    if interval is not None:
        argv += ["-i", f"{interval:g}"]
    if source is not None:
        argv += ["-I", str(source)]
    argv.append(str(dst))
    cp = run(argv, netns=netns, check=False, timeout=count * (wait + 1) + 10)
    return cp.returncode == 0


_REPLY = re.compile(r"^\[(\d+\.\d+)\] \d+ bytes from .*icmp_seq=(\d+)")


@dataclass
class PingLog:
    """Replies of a background ping: [(unix time, icmp_seq)], and what was sent."""

    replies: list[tuple[float, int]]
    started: float  # unix time
    stopped: float
    interval: float
    output: str

    def gaps(self) -> list[tuple[float, float]]:
        """(start, length) of every stretch longer than 1.5 intervals without a reply
        (including from the start and until the end)."""
        times = [self.started] + [t for t, _ in self.replies] + [self.stopped]
        return [(a, b - a) for a, b in zip(times, times[1:]) if b - a > 1.5 * self.interval]

    def max_gap(self) -> float:
        return max((g for _, g in self.gaps()), default=0.0)

    def first_reply_after(self, t: float) -> float | None:
        """Unix time of the first reply after `t` (e.g. the moment a migration began)."""
        return next((rt for rt, _ in self.replies if rt > t), None)


class Pinger:
    """`ping -D -O` running in the background inside a namespace, to time outages:

        p = Pinger(vm.ns.name, "203.0.113.10").start()
        p.wait_reply()                      # pings flow (the reader sees replies as they come)
        t0 = time.time(); lab.migrate(vm, "node2")
        log = p.stop(); resumed = log.first_reply_after(t0) - t0
    """

    def __init__(self, netns: str | None, dst, *, interval: float = 0.1, source=None):
        self.netns = netns
        self.dst = str(dst)
        self.interval = interval
        self.source = source
        self._proc: subprocess.Popen | None = None
        self._reader: threading.Thread | None = None
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._started = 0.0

    def start(self) -> Pinger:
        argv = ["ping", "-n", "-D", "-O", "-i", f"{self.interval:g}", "-W", "1"]
        if self.source is not None:
            argv += ["-I", str(self.source)]
        argv.append(self.dst)
        self._started = time.time()
        self._proc = subprocess.Popen(netns_argv(argv, self.netns), stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True)
        self._reader = threading.Thread(target=self._read, args=(self._proc,), daemon=True)
        self._reader.start()
        return self

    def _read(self, proc: subprocess.Popen) -> None:
        for line in proc.stdout:
            with self._lock:
                self._lines.append(line.rstrip("\n"))

    def replies(self) -> list[tuple[float, int]]:
        """(unix time, icmp_seq) of the replies so far."""
        with self._lock:
            lines = list(self._lines)
        return _parse_replies(lines)

    def wait_reply(self, after: float | None = None, timeout: float = 30) -> float:
        """Wait for a reply received after unix time `after` (default: any); return its time."""
        deadline = time.monotonic() + timeout
        while True:
            found = [t for t, _ in self.replies() if after is None or t > after]
            if found:
                return found[0]
            if self._proc is None or self._proc.poll() is not None or time.monotonic() > deadline:
                with self._lock:
                    tail = "\n".join(self._lines[-10:])
                raise TimeoutError(f"no ping reply from {self.dst} within {timeout:g}s:\n{tail}")
            time.sleep(0.05)

    def stop(self) -> PingLog:
        if self._proc is None:
            raise RuntimeError("Pinger not started")
        proc, self._proc = self._proc, None
        stopped = time.time()
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if self._reader is not None:
            self._reader.join(timeout=10)
        with self._lock:
            lines = list(self._lines)
        return PingLog(replies=_parse_replies(lines), started=self._started, stopped=stopped,
                       interval=self.interval, output="\n".join(lines))


def _parse_replies(lines: Sequence[str]) -> list[tuple[float, int]]:
    replies = []
    for line in lines:
        m = _REPLY.match(line)
        if m:
            replies.append((float(m.group(1)), int(m.group(2))))
    return replies


def ip_batch(netns: str | None, lines: Sequence[str]) -> None:
    run(["ip", "-batch", "-"], netns=netns, input="\n".join(lines) + "\n")

"""NetlinkTransport's pipelining, retries and dump handling, against a scripted fake socket
(the kernel side is covered by tests/integration/test_kernel_netlink.py)."""

from __future__ import annotations

import errno
import ipaddress
import os
import struct
from collections import deque

import pytest
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg

from ovnbgp.kernel import messages as M
from ovnbgp.kernel.nltransport import NLM_F_DUMP_INTR, NetlinkDumpError, NetlinkTransport, pyroute2_parser

HDR = struct.Struct("=IHHII")


def ack(seq: int, code: int, text: str = "") -> bytes:
    body = struct.pack("=i", -code) + HDR.pack(16, 0, 0, seq, 0)
    flags = 0x100  # NLM_F_CAPPED
    if text:
        raw = text.encode() + b"\0"
        attr = struct.pack("=HH", 4 + len(raw), 1) + raw
        body += attr + b"\0" * (-len(attr) % 4)
        flags |= 0x200  # NLM_F_ACK_TLVS
    return HDR.pack(16 + len(body), 2, flags, seq, 0) + body


def addr_msg(seq: int, ip: str, flags: int = 0x2) -> bytes:
    m = M.addr(True, 3, ipaddress.ip_interface(ip + "/32"))
    m["header"]["sequence_number"] = seq
    m["header"]["pid"] = 0
    m["header"]["type"] = 20
    m.encode()
    data = bytearray(m.data)
    struct.pack_into("=H", data, 6, flags)
    return bytes(data)


class FakeSock:
    """Answers each request message through `answer(seq, type, call_no)`."""

    def __init__(self, answer):
        self.answer = answer
        self.pending: deque[bytes] = deque()
        self.sent_msgs = 0
        self.sends = 0
        self._r, self._w = os.pipe()  # an fd for poll() that never becomes readable

    def send(self, data) -> int:
        data = bytes(data)
        self.sends += 1
        off = 0
        while off < len(data):
            length, mtype, _f, seq, _p = HDR.unpack_from(data, off)
            self.sent_msgs += 1
            out = self.answer(seq, mtype, self.sent_msgs)
            if out:
                self.pending.append(out)
            off += (length + 3) & ~3
        return len(data)

    def recv(self, n: int) -> bytes:
        if not self.pending:
            raise BlockingIOError
        # several answers per read, like the kernel's
        chunk = b""
        while self.pending and len(chunk) < 4096:
            chunk += self.pending.popleft()
        return chunk

    def fileno(self) -> int:
        return self._r

    def close(self) -> None:
        os.close(self._r)
        os.close(self._w)


def swap(t: NetlinkTransport, fake: FakeSock) -> None:
    t.sock.close()
    t.sock = fake  # type: ignore[assignment]


@pytest.fixture
def transport():
    t = NetlinkTransport(None, window=8, timeout=2)
    yield t
    t.close()


def msgs(n: int):
    return [M.addr(True, 3, ipaddress.ip_interface(f"10.0.{i // 250}.{i % 250}/32")) for i in range(n)]


def test_pipelined_in_windows(transport):
    fake = FakeSock(lambda seq, t, n: ack(seq, 0))
    swap(transport, fake)
    res = transport.execute(msgs(50))
    assert all(r.errno == 0 for r in res) and len(res) == 50
    assert fake.sent_msgs == 50 and fake.sends < 50  # batched sends


def test_per_message_errors_and_ext_ack_text(transport):
    fake = FakeSock(lambda seq, t, n: ack(seq, errno.EEXIST if n == 3 else 0,
                                            "Address already assigned" if n == 3 else ""))
    swap(transport, fake)
    res = transport.execute(msgs(5))
    assert [r.errno for r in res] == [0, 0, errno.EEXIST, 0, 0]
    assert res[2].message == "Address already assigned"
    assert "EEXIST" in res[2].describe()


def test_ebusy_is_retried(transport):
    fake = FakeSock(lambda seq, t, n: ack(seq, errno.EBUSY if n <= 2 else 0))
    swap(transport, fake)
    res = transport.execute(msgs(4))
    assert all(r.errno == 0 for r in res)
    assert fake.sent_msgs == 6


def test_no_answer_is_a_timeout_per_message(transport):
    transport.timeout = 0.2
    swap(transport, FakeSock(lambda seq, t, n: ack(seq, 0) if n % 2 else None))
    res = transport.execute(msgs(4))
    assert [r.errno for r in res] == [0, errno.ETIMEDOUT, 0, errno.ETIMEDOUT]


def done(seq: int) -> bytes:
    return HDR.pack(20, 3, 0x2, seq, 0) + struct.pack("=i", 0)


def test_interrupted_dump_is_done_again(transport):
    calls = []

    def answer(seq, t, n):
        calls.append(seq)
        flags = 0x2 | (NLM_F_DUMP_INTR if len(calls) == 1 else 0)
        return addr_msg(seq, "10.0.0.1", flags) + addr_msg(seq, "10.0.0.2") + done(seq)

    swap(transport, FakeSock(answer))
    out = transport.dump(M.addr_dump(), pyroute2_parser(ifaddrmsg), what="addresses")
    assert len(calls) == 2
    assert [M.decode_addr(m)[1] for m in out] == [ipaddress.ip_interface("10.0.0.1/32"),
                                                  ipaddress.ip_interface("10.0.0.2/32")]


def test_dump_accept_filter_skips_decoding(transport):
    swap(transport, FakeSock(lambda seq, t, n: addr_msg(seq, "10.0.0.1") + addr_msg(seq, "10.0.0.2") + done(seq)))
    seen = []

    def accept(buf, off):
        seen.append(off)
        return len(seen) == 2

    out = transport.dump(M.addr_dump(), pyroute2_parser(ifaddrmsg), what="addresses", accept=accept)
    assert len(seen) == 2 and [M.decode_addr(m)[1] for m in out] == [ipaddress.ip_interface("10.0.0.2/32")]


def test_dump_that_keeps_failing_names_what(transport):
    swap(transport, FakeSock(lambda seq, t, n: ack(seq, errno.EINTR)))
    with pytest.raises(NetlinkDumpError, match="dump of rules"):
        transport.dump(M.rule_dump(), pyroute2_parser(ifaddrmsg), what="rules", attempts=3)

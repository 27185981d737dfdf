"""Kernel reconciler records <-> pyroute2 rtnetlink messages (encoding and decoding only).

Encoding builds pyroute2 message objects with the header type and flags set; the transport
(nltransport.py) sends them. Decoding turns dumped pyroute2 messages into the records of
objects.py. `peek_*` functions read a field of the fixed header straight from the buffer so a
dump can skip messages without decoding them.
"""

from __future__ import annotations

import ipaddress
import socket
import struct

from pyroute2.netlink import NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE, NLM_F_REQUEST
from pyroute2.netlink.rtnl import (
    RTM_DELADDR,
    RTM_DELNEIGH,
    RTM_DELROUTE,
    RTM_DELRULE,
    RTM_GETADDR,
    RTM_GETLINK,
    RTM_GETNEIGH,
    RTM_GETROUTE,
    RTM_GETRULE,
    RTM_NEWADDR,
    RTM_NEWLINK,
    RTM_NEWNEIGH,
    RTM_NEWROUTE,
    RTM_NEWRULE,
)
from pyroute2.netlink.rtnl.fibmsg import fibmsg
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from pyroute2.netlink.rtnl.ndmsg import ndmsg
from pyroute2.netlink.rtnl.rtmsg import rtmsg

from ovnbgp.agent.records import IPInterface
from ovnbgp.kernel.objects import (
    FR_ACT_TO_TBL,
    RT_SCOPE_LINK,
    RT_SCOPE_UNIVERSE,
    RTN_UNICAST,
    LinkState,
    NeighObj,
    RouteObj,
    RuleObj,
)

AF = {4: socket.AF_INET, 6: socket.AF_INET6}
VERSION = {socket.AF_INET: 4, socket.AF_INET6: 6}
IFF_UP = 0x1
IFA_F_NODAD = 0x02
NUD_PERMANENT = 0x80
RT_TABLE_COMPAT = 252
RT_SCOPE_NOWHERE = 255

F_CREATE = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL
F_REPLACE = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE
F_REQ = NLM_F_REQUEST | NLM_F_ACK

_NLHDR = 16  # netlink header length: the rtnetlink header starts here


def _hdr(msg, mtype: int, flags: int):
    msg["header"]["type"] = mtype
    msg["header"]["flags"] = flags
    return msg


def _u8_table(table: int) -> int:
    return table if table < 256 else RT_TABLE_COMPAT


# --- links ---------------------------------------------------------------------------------


def link_get(name: str) -> ifinfmsg:
    m = ifinfmsg()
    m["family"] = socket.AF_UNSPEC
    m["attrs"] = [["IFLA_IFNAME", name]]
    return _hdr(m, RTM_GETLINK, F_REQ)


def link_dump() -> ifinfmsg:
    m = ifinfmsg()
    m["family"] = socket.AF_UNSPEC
    return _hdr(m, RTM_GETLINK, 0)


def link_create(name: str, kind: str, *, vrf_table: int | None = None,
                master: int | None = None, up: bool = False) -> ifinfmsg:
    m = ifinfmsg()
    m["family"] = socket.AF_UNSPEC
    info: list = [["IFLA_INFO_KIND", kind]]
    if vrf_table is not None:
        info.append(["IFLA_INFO_DATA", {"attrs": [["IFLA_VRF_TABLE", vrf_table]]}])
    m["attrs"] = [["IFLA_IFNAME", name], ["IFLA_LINKINFO", {"attrs": info}]]
    if master is not None:
        m["attrs"].append(["IFLA_MASTER", master])
    if up:
        m["flags"] = IFF_UP
        m["change"] = IFF_UP
    return _hdr(m, RTM_NEWLINK, F_CREATE)


def link_set(index: int, *, master: int | None = None, up: bool = False) -> ifinfmsg:
    m = ifinfmsg()
    m["family"] = socket.AF_UNSPEC
    m["index"] = index
    m["attrs"] = []
    if master is not None:
        m["attrs"].append(["IFLA_MASTER", master])
    if up:
        m["flags"] = IFF_UP
        m["change"] = IFF_UP
    return _hdr(m, RTM_NEWLINK, F_REQ)


def decode_link(m: ifinfmsg) -> LinkState:
    kind = m.get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND")
    vrf_table = None
    if kind == "vrf":
        vrf_table = m.get_nested("IFLA_LINKINFO", "IFLA_INFO_DATA", "IFLA_VRF_TABLE")
    return LinkState(index=m["index"], name=m.get_attr("IFLA_IFNAME"), kind=kind,
                     master=m.get_attr("IFLA_MASTER") or None, up=bool(m["flags"] & IFF_UP),
                     vrf_table=vrf_table)


# --- addresses -----------------------------------------------------------------------------


def addr(add: bool, index: int, a: IPInterface) -> ifaddrmsg:
    m = ifaddrmsg()
    m["family"] = AF[a.version]
    m["prefixlen"] = a.network.prefixlen
    m["index"] = index
    m["scope"] = RT_SCOPE_UNIVERSE
    ip = str(a.ip)
    if a.version == 4:
        m["attrs"] = [["IFA_LOCAL", ip], ["IFA_ADDRESS", ip]]
    else:
        m["flags"] = IFA_F_NODAD
        m["attrs"] = [["IFA_ADDRESS", ip]]
    return _hdr(m, RTM_NEWADDR if add else RTM_DELADDR, F_CREATE if add else F_REQ)


def addr_dump() -> ifaddrmsg:
    m = ifaddrmsg()
    m["family"] = socket.AF_UNSPEC
    return _hdr(m, RTM_GETADDR, 0)


def peek_addr_index(buf: bytes, off: int) -> int:
    """ifa_index of an ifaddrmsg (family, prefixlen, flags, scope, index)."""
    return struct.unpack_from("=I", buf, off + _NLHDR + 4)[0]


def decode_addr(m: ifaddrmsg) -> tuple[int, IPInterface] | None:
    fam = VERSION.get(m["family"])
    if fam is None:
        return None
    ip = m.get_attr("IFA_LOCAL") or m.get_attr("IFA_ADDRESS")
    if not ip:
        return None
    return m["index"], ipaddress.ip_interface(f"{ip}/{m['prefixlen']}")


# --- rules ---------------------------------------------------------------------------------


def rule(add: bool, r: RuleObj) -> fibmsg:
    m = fibmsg()
    m["family"] = AF[r.family]
    m["dst_len"] = r.dst.prefixlen if r.dst is not None else 0
    m["table"] = _u8_table(r.table)
    m["action"] = r.action
    attrs: list = [["FRA_TABLE", r.table], ["FRA_PRIORITY", r.priority]]
    if r.dst is not None:
        attrs.append(["FRA_DST", str(r.dst.network_address)])
    if r.protocol:
        attrs.append(["FRA_PROTOCOL", r.protocol])
    for k, v in r.selectors:  # only for deleting an owned rule that has extra matches
        if k == "from":
            net = ipaddress.ip_network(v)
            m["src_len"] = net.prefixlen
            attrs.append(["FRA_SRC", str(net.network_address)])
        elif k == "iif":
            attrs.append(["FRA_IIFNAME", v])
        elif k == "oif":
            attrs.append(["FRA_OIFNAME", v])
        elif k == "fwmark":
            attrs.append(["FRA_FWMARK", int(v, 0)])
        elif k == "tos":
            m["tos"] = int(v, 0)
    m["attrs"] = attrs
    return _hdr(m, RTM_NEWRULE if add else RTM_DELRULE, F_CREATE if add else F_REQ)


def rule_dump() -> fibmsg:
    m = fibmsg()
    m["family"] = socket.AF_UNSPEC
    return _hdr(m, RTM_GETRULE, 0)


def decode_rule(m: fibmsg) -> RuleObj | None:
    fam = VERSION.get(m["family"])
    if fam is None:
        return None
    dst = None
    if m["dst_len"] or m.get_attr("FRA_DST"):
        dst = ipaddress.ip_network(f"{m.get_attr('FRA_DST')}/{m['dst_len']}", strict=False)
    sel: list[tuple[str, str]] = []
    if m["src_len"] or m.get_attr("FRA_SRC"):
        sel.append(("from", str(ipaddress.ip_network(f"{m.get_attr('FRA_SRC')}/{m['src_len']}",
                                                     strict=False))))
    for attr, name in (("FRA_IIFNAME", "iif"), ("FRA_OIFNAME", "oif")):
        v = m.get_attr(attr)
        if v:
            sel.append((name, v))
    if m.get_attr("FRA_FWMARK"):
        sel.append(("fwmark", hex(m.get_attr("FRA_FWMARK"))))
    if m["tos"]:
        sel.append(("tos", hex(m["tos"])))
    for attr in ("FRA_L3MDEV", "FRA_UID_RANGE", "FRA_IP_PROTO", "FRA_SPORT_RANGE",
                 "FRA_DPORT_RANGE", "FRA_GOTO", "FRA_SUPPRESS_PREFIXLEN", "FRA_TUN_ID"):
        v = m.get_attr(attr)
        if v not in (None, 0) and not (attr == "FRA_SUPPRESS_PREFIXLEN" and v == 0xFFFFFFFF):
            sel.append((attr.lower()[4:], str(v)))
    table = m.get_attr("FRA_TABLE") or m["table"]
    return RuleObj(fam, m.get_attr("FRA_PRIORITY") or 0, table, dst,
                   m.get_attr("FRA_PROTOCOL") or 0, tuple(sel), m["action"])


# --- routes --------------------------------------------------------------------------------


def route(op: str, r: RouteObj, oif: int | None) -> rtmsg:
    """op: "add" (create, fail if there), "replace" (create or replace) or "del"."""
    m = rtmsg()
    m["family"] = AF[r.family]
    m["dst_len"] = r.dst.prefixlen
    m["table"] = _u8_table(r.table)
    m["proto"] = r.protocol
    m["type"] = r.type
    attrs: list = [["RTA_TABLE", r.table]]
    if r.dst.prefixlen:
        attrs.append(["RTA_DST", str(r.dst.network_address)])
    if oif is not None:
        attrs.append(["RTA_OIF", oif])
    if r.gateway is not None:
        attrs.append(["RTA_GATEWAY", str(r.gateway)])
    if op == "del":
        m["scope"] = RT_SCOPE_NOWHERE  # any scope
        attrs.append(["RTA_PRIORITY", r.metric])
        mtype, flags = RTM_DELROUTE, F_REQ
    else:
        m["scope"] = RT_SCOPE_LINK if r.scope_link and r.family == 4 else RT_SCOPE_UNIVERSE
        mtype, flags = RTM_NEWROUTE, (F_CREATE if op == "add" else F_REPLACE)
    m["attrs"] = attrs
    return _hdr(m, mtype, flags)


def route_dump() -> rtmsg:
    m = rtmsg()
    m["family"] = socket.AF_UNSPEC
    return _hdr(m, RTM_GETROUTE, 0)


def peek_route(buf: bytes, off: int) -> tuple[int, int, int, int]:
    """(family, table (u8), protocol, type) from an rtmsg's fixed header."""
    fam, _dl, _sl, _tos, table, proto, _scope, rtype = struct.unpack_from("=8B", buf, off + _NLHDR)
    return fam, table, proto, rtype


def decode_route(m: rtmsg, names: dict[int, str]) -> RouteObj | None:
    fam = VERSION.get(m["family"])
    if fam is None or m.get_attr("RTA_MULTIPATH") is not None:
        return None
    dst_ip = m.get_attr("RTA_DST") or ("0.0.0.0" if fam == 4 else "::")
    dst = ipaddress.ip_network(f"{dst_ip}/{m['dst_len']}", strict=False)
    oif = m.get_attr("RTA_OIF")
    gw = m.get_attr("RTA_GATEWAY")
    return RouteObj(
        table=m.get_attr("RTA_TABLE") or m["table"], dst=dst,
        dev=names.get(oif, f"#{oif}") if oif else None,
        gateway=ipaddress.ip_address(gw) if gw else None,
        scope_link=fam == 4 and m["scope"] == RT_SCOPE_LINK,
        protocol=m["proto"], metric=m.get_attr("RTA_PRIORITY") or 0, type=m["type"])


# --- neighbours ----------------------------------------------------------------------------


def neigh(add: bool, n: NeighObj, index: int) -> ndmsg:
    m = ndmsg()
    m["family"] = AF[n.ip.version]
    m["ifindex"] = index
    attrs: list = [["NDA_DST", str(n.ip)]]
    if add:
        m["state"] = NUD_PERMANENT
        attrs.append(["NDA_LLADDR", n.mac])
        if n.protocol:
            attrs.append(["NDA_PROTOCOL", n.protocol])
    m["attrs"] = attrs
    return _hdr(m, RTM_NEWNEIGH if add else RTM_DELNEIGH, F_REPLACE if add else F_REQ)


def neigh_dump() -> ndmsg:
    m = ndmsg()
    m["family"] = socket.AF_UNSPEC
    return _hdr(m, RTM_GETNEIGH, 0)


def peek_neigh(buf: bytes, off: int) -> tuple[int, int, int]:
    """(family, ifindex, state) of an ndmsg (family, pad x3, ifindex, state, flags, type)."""
    fam, index, state = struct.unpack_from("=B3xiH", buf, off + _NLHDR)
    return fam, index, state


def decode_neigh(m: ndmsg, names: dict[int, str]) -> NeighObj | None:
    fam = VERSION.get(m["family"])
    ip = m.get_attr("NDA_DST")
    if fam is None or not ip or m["ifindex"] not in names:
        return None
    mac = m.get_attr("NDA_LLADDR")
    return NeighObj(names[m["ifindex"]], ipaddress.ip_address(ip), mac.lower() if mac else None,
                    bool(m["state"] & NUD_PERMANENT), m.get_attr("NDA_PROTOCOL") or 0)

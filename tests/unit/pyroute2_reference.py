"""The reference reading of address, rule and route messages: pyroute2's own decoder, to
check ovnbgp's struct decoders (kernel/messages.py parse_*) against on the same bytes."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from ovnbgp.kernel.messages import RT_SCOPE_LINK, VERSION
from ovnbgp.kernel.objects import RouteObj, RuleObj

if TYPE_CHECKING:
    from pyroute2.netlink.rtnl.fibmsg import fibmsg
    from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
    from pyroute2.netlink.rtnl.rtmsg import rtmsg

    from ovnbgp.model.records import IPInterface


def decode_addr(m: ifaddrmsg) -> tuple[int, IPInterface] | None:
    fam = VERSION.get(m["family"])
    if fam is None:
        return None
    ip = m.get_attr("IFA_LOCAL") or m.get_attr("IFA_ADDRESS")
    if not ip:
        return None
    return m["index"], ipaddress.ip_interface(f"{ip}/{m['prefixlen']}")


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

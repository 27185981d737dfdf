"""Read-only questions about the lab that end-to-end tests and the demo ask.

    spine_paths(lab, "172.24.4.10/32")           # AS paths at the spine: [[65001, 64901], [65011, 64901]]
    routed_through(lab, "172.24.4.10/32", "node1")  # None if the spine forwards over both of
                                                 # node1's leaves and they to node1, else what
                                                 # is wrong (for wait_for details)
    next_hops(lab, "spine", "172.24.4.10/32")    # {"leaf1", "leaf1b"}: the kernel's next hops
    dummy_prefixes(lab, "node1")                 # {"172.24.4.10/32", ...} on ovnbgp's dummy
    icmp_echoes_received(lab, "vm1")             # the VM's own count of echo requests (v4, v6)
    traces_of(lab, "node1", ["172.24.4.10", ...])   # ovnbgp's kernel objects naming those IPs
"""

from __future__ import annotations

import ipaddress
import json

from tests.harness.proc import run


def spine_paths(lab, prefix: str, afi: str | None = None) -> list[list[int]]:
    """AS paths of `prefix` in the spine's BGP table, as lists of ASNs (empty: not there)."""
    afi = afi or ("ipv6" if ":" in prefix else "ipv4")
    routes = lab.frr["spine"].vtysh_json(f"show bgp {afi} unicast json").get("routes", {})
    out = []
    for path in routes.get(prefix, []):
        text = path.get("path", "") or path.get("aspath", {}).get("string", "")
        out.append([int(a) for a in str(text).split() if a.isdigit()])
    return out


def fib_route(lab, host: str, dst) -> dict:
    """`ip -j route get DST` on a host: the kernel's forwarding decision ({} if none)."""
    fam = "-6" if ipaddress.ip_address(str(dst)).version == 6 else "-4"
    cp = lab.exec(host, "ip", "-j", fam, "route", "get", str(dst), check=False)
    data = json.loads(cp.stdout or "[]") if cp.returncode == 0 else []
    return data[0] if data else {}


def next_hops(lab, host: str, prefix: str) -> set[str]:
    """The devices a host's kernel routes `prefix` through (all of them with ECMP); on host X
    the link to host Y is the interface named Y, so these are host names."""
    fam = "-6" if ":" in prefix else "-4"
    cp = lab.exec(host, "ip", "-j", fam, "route", "show", "exact", prefix, check=False)
    routes = json.loads(cp.stdout or "[]") if cp.returncode == 0 else []
    return {h.get("dev") for r in routes for h in (r.get("nexthops") or [r])}


def routed_through(lab, prefix: str, node: str, *, leaves=None) -> str | None:
    """None when the fabric sends `prefix` to `node` only: every spine path comes from the
    node's AS, the spine forwards over exactly `leaves` (default: every leaf the node is
    homed to, i.e. ECMP over both) and each of them forwards to the node. Otherwise a
    description of what is not so."""
    n = lab.nodes[node]
    want = set(n.leaves if leaves is None else leaves)
    paths = spine_paths(lab, prefix)
    if not paths:
        return f"{prefix}: not in the spine's BGP table"
    if not all(n.asn in p for p in paths):
        return f"{prefix}: spine AS paths {paths}, not all through {node} (AS {n.asn})"
    spine = next_hops(lab, "spine", prefix)
    if spine != want:
        return f"{prefix}: the spine forwards it to {sorted(spine) or 'nowhere'}, not to {sorted(want)}"
    for leaf in sorted(want):
        hops = next_hops(lab, leaf, prefix)
        if hops != {node}:
            return f"{prefix}: {leaf} forwards it to {sorted(hops) or 'nowhere'}, not to {node}"
    return None


def dummy_prefixes(lab, node: str, dummy: str = "ovn") -> set[str]:
    """Prefixes on ovnbgp's dummy interface of a node (IPv6 link-local left out)."""
    out = run(["ip", "-j", "addr", "show", "dev", dummy], netns=lab.nodes[node].ns.name,
              check=False).stdout
    return {f"{a['local']}/{a['prefixlen']}" for link in json.loads(out or "[]")
            for a in link.get("addr_info", []) if not a["local"].startswith("fe80")}


def icmp_echoes_received(lab, vm: str) -> tuple[int, int]:
    """(IPv4, IPv6) echo requests the VM's own kernel has received (/proc/net/snmp{,6}): proof
    that pings reached that VM, not something answering for it."""
    text = lab.exec(vm, "cat", "/proc/net/snmp").stdout.splitlines()
    heads = [ln.split()[1:] for ln in text if ln.startswith("Icmp:")]
    v4 = int(dict(zip(heads[0], heads[1]))["InEchos"])
    v6 = 0
    for ln in lab.exec(vm, "cat", "/proc/net/snmp6").stdout.splitlines():
        name, _, value = ln.partition(" ")
        if name == "Icmp6InEchos":
            v6 = int(value.strip())
    return v4, v6


def traces_of(lab, node: str, ips, *, protocol: int = 240, table: int = 200) -> list[str]:
    """Every kernel object of ovnbgp on `node` that names one of `ips`: dummy addresses, ip
    rules, routes of the bridge table, neighbours and proxy entries with ovnbgp's protocol."""
    ns = lab.nodes[node].ns.name
    wanted = {str(ipaddress.ip_address(str(i))) for i in ips}
    found = []
    for p in dummy_prefixes(lab, node):
        if p.split("/")[0] in wanted:
            found.append(f"dummy address {p}")
    for fam in ("-4", "-6"):
        rules = json.loads(run(["ip", "-j", fam, "rule", "show"], netns=ns).stdout or "[]")
        for r in rules:
            if r.get("dst") in wanted:
                found.append(f"rule {r}")
        routes = json.loads(run(["ip", "-j", fam, "route", "show", "table", str(table)],
                                netns=ns, check=False).stdout or "[]")
        for r in routes:
            if r.get("dst", "").split("/")[0] in wanted or r.get("gateway") in wanted:
                found.append(f"route {r}")
        for kind in ([], ["proxy"]):
            neigh = json.loads(run(["ip", "-j", fam, "neigh", "show", *kind], netns=ns,
                                   check=False).stdout or "[]")
            for n in neigh:
                if n.get("dst") in wanted and str(n.get("protocol", "")) == str(protocol):
                    found.append(f"neighbour {n}")
    return found

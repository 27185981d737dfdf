"""Adversarial Southbound and local OVS data: a seeded random walk of bad values, duplicate
claims, bridge-mapping typos and chassis renames against the running agent, watched on the dummy.

The node and its OVN world are tests/harness/neutron.py's (provider network `public` with VMs
bound here, router r1 with its gateway cr-lrp-gw here, tenant networks t1 and t2 with VMs, a
floating IP on tv1_1). ovn-northd is paused for the walk, so that what the walk writes in the
SB stays there until the walk itself restores it (northd would otherwise rewrite its columns).

Each step applies a mutation (at most MAX_ACTIVE at a time) or restores one, then settles for a
random short time. Every mutation names the *dependencies* it touches (a Port_Binding row, a
chassis, the local system-id, ...); each expected exposure has the set of dependencies that
justify it (`exposure_deps`). While `ip monitor address` reports RTM_NEWADDR/RTM_DELADDR on the
dummy, the test asserts at every event:
  - nothing outside the original desired state is ever added (a bad value never exposes);
  - no exposure is removed while nothing it depends on is mutated (and, after a restore, once it
    is back on the dummy): bad data elsewhere, an invalid bridge mapping, a bridge MAC or a
    second row claiming its prefix never takes it away.
and after every step that the agent is alive with no traceback in its log. At the end everything
is restored, northd resumed, and the node must converge to the original state (dummy, peer,
`ovnbgp plan` exit 0).

Environment: OVNBGP_ADVERSARIAL_SEED (default: random, printed), OVNBGP_ADVERSARIAL_MUTATIONS
(default 50), OVNBGP_ADVERSARIAL_SKIP (comma-separated mutation classes not to generate; see
CLASSES).
"""

from __future__ import annotations

import ipaddress
import json
import os
import random
import re
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import pytest

from tests.harness.neutron import (
    CRLRP_IP,
    FIPS,
    PROVIDER,
    TENANT_VMS,
    NeutronNode,
    World,
    build_topology,
    pv_ips,
    tv_ip,
)
from tests.harness.node_lab import KERNEL_MODULES
from tests.harness.ovn import OvnCentral
from tests.harness.proc import CommandError, netns_argv

SEED_ENV, MUTATIONS_ENV, SKIP_ENV = ("OVNBGP_ADVERSARIAL_SEED", "OVNBGP_ADVERSARIAL_MUTATIONS",
                                     "OVNBGP_ADVERSARIAL_SKIP")
MAX_ACTIVE = 3
SETTLE = (0.2, 0.2, 0.5, 0.5, 1.0, 2.5)  # seconds after each step, picked at random
GRACE = 4.0  # after a restore, an exposure is protected again once back and this long passed
LONG = 10_000
# Prefixes a bad value mentions: exposing any of them is a bogus exposure.
BOGUS4, BOGUS_NET = "172.24.4.99", "203.0.113"
DUMMY = "ovn"

# The mutation classes. "mapping-invalid" and "dup-claim" must hold every established exposure
# (issue 17, failures 1 and 3).
CLASSES = ("pb-mac", "pb-nat", "pb-options", "pb-type", "pb-chassis", "pb-up", "pb-datapath",
           "pb-new", "chassis-name", "system-id", "mapping-invalid", "mapping-change",
           "mapping-extra", "bridge-mac", "dup-claim")

BAD_VM_MAC = [
    [], [""], ["garbage"], ["x" * LONG], [f"fa:16:3e:00:01:00 {'1' * LONG}"],
    [f"zz:zz:zz:zz:zz:zz {BOGUS4}"], [f"fa:16:3e:00:01:00 {BOGUS4} garbage"],
    ["fa:16:3e:00:01:00 999.1.1.1"], [f"fa:16:3e:00:01:00 {BOGUS4}/33"],
    ["fa:16:3e:00:01:00 127.0.0.1 0.0.0.0 224.0.0.5 169.254.1.1 ::1 fe80::1 ff02::1"],
    [f"ff:ff:ff:ff:ff:ff {BOGUS4}"], [f"01:00:5e:00:00:01 {BOGUS4}"], [f"00:00:00:00:00:00 {BOGUS4}"],
    [f"unknown {BOGUS4}"], [f"fa:16:3e:00:01:00 {BOGUS4} dynamic"], ["router"],
    ["fa:16:3e:00:01:00 \u0661\u0667\u0662.\u0662\u0664.\u0664.\u0669\u0669"],
    ["fa:16:3e:00:01:00 172.24.4.\uff19\uff19"], ["fa:16:3e:00:01:00 0172.024.004.099"],
    [f"fa:16:3e:00:01:00 ::ffff:{BOGUS4}"], [f"fa:16:3e:00:01:00 {BOGUS4}%eth0"],
    [f"f\u00e4:16:3e:00:01:00 {BOGUS4}"],
]
BAD_ROUTER_MAC = [
    [], ["garbage"], ["x" * LONG], [f"00:00:00:00:ff:01 {CRLRP_IP}"],
    [f"00:00:00:00:ff:01 {BOGUS_NET}.1/0"], [f"00:00:00:00:ff:01 {BOGUS_NET}.0/24"],
    [f"00:00:00:00:ff:01 {BOGUS_NET}.255/24"], [f"00:00:00:00:ff:01 {BOGUS_NET}.1/33"],
    ["00:00:00:00:ff:01 127.0.0.1/8"], [f"01:00:00:00:ff:01 {BOGUS_NET}.1/24"],
    [f"00:00:00:00:ff:01 {BOGUS_NET}.1/24 garbage"], [f"00:00:00:00:ff:01 {BOGUS_NET}.1/\uff12\uff14"],
    ["00:00:00:00:ff:01 \u0662\u0660\u0663.0.113.1/24"], [f"00:00:00:00:ff:01 {BOGUS_NET}.1/{'2' * LONG}"],
]
_FIP = f"fa:16:3e:00:99:07 {BOGUS_NET}.7"
BAD_NAT = [
    ["garbage"], [f'{_FIP} is_chassis_resident("nonexistent")'], [f"{_FIP} is_chassis_resident(tv1_1)"],
    [f'{_FIP} is_chassis_resident("ln-public")'], [f'{_FIP} is_chassis_resident("rp-t1")'],
    [f'{_FIP} is_chassis_resident("tv2_0")'], [f'{_FIP} is_chassis_resident("pv5")'], [_FIP],
    [f'ff:ff:ff:ff:ff:ff {BOGUS_NET}.7 is_chassis_resident("tv1_1")'],
    [f'fa:16:3e:00:99:07 {BOGUS_NET}.7/32 is_chassis_resident("tv1_1")'],
    ['fa:16:3e:00:99:07 is_chassis_resident("tv1_1")'],
    [f'fa:16:3e:00:99:07 {"x" * LONG} is_chassis_resident("tv1_1")'],
    ['fa:16:3e:00:99:07 \uff12\uff10\uff13.0.113.7 is_chassis_resident("tv1_1")'],
    [f'{_FIP} is_chassis_resident("tv1_1\u00fc")'], [f'is_chassis_resident("tv1_1") {_FIP}'],
    [f'{_FIP} is_chassis_resident("{"t" * LONG}")'],
]
# A valid floating-IP entry, on rows where no floating IP can live (not a provider network's
# patch port): nothing may be exposed for it.
MISPLACED_NAT = [f'{_FIP} is_chassis_resident("tv1_1")']
BAD_NAMES = ["", "nonexistent", "pv0", "ln-public", "cr-lrp-gw", "lrp-t1", "x" * LONG, "lrp-g\u1e83"]
BAD_TYPES = ["", "localnet", "patch", "chassisredirect", "l3gateway", "vtep", "virtual", "garbage",
             "x" * LONG, "p\u00e4tch", "PATCH"]
BAD_PHYSNETS = ["", "publik", "x" * LONG, "p\u00fablic", "public ", "public,public"]
CHASSIS_RENAMES = ["renamed", "", "c" * LONG, "ch\u00e4ss1", "ch1 "]
# None: the key removed. Never a chassis name (nor one a rename makes): that would be valid.
SYSTEM_IDS = [None, "", "ch9", "s" * LONG, "\u00e7h1", " ch1"]
MAPPINGS_INVALID = [None, "", "public", "public:br-ex:x", ":", "public:", ":br-ex", "public:br-missing",
                    "public:br ex", "public:" + "b" * LONG, "p" * LONG, "p\u00fablic:br-\u00e9x",
                    "public:br-\u00e9x", ",,,", "public;br-ex"]
MAPPINGS_CHANGED = ["publik:br-ex", "other:br-ex"]  # valid, and public is gone: may withdraw
MAPPINGS_EXTRA = ["public:br-ex,other:br-missing", "public:br-ex,public:br-int", " public : br-ex ",
                  "public:br-ex,", "public:br-ex,garbage"]
BAD_HWADDR = ["garbage", "01:00:5e:00:00:01", "00:00:00:00:00:00", "ff:ff:ff:ff:ff:ff", "x" * LONG,
              "02:00:00:00:ab:cd", "0\uff12:00:00:00:ab:cd"]
BAD_MAC_IN_USE = ["garbage", "", "01:00:5e:00:00:01", "x" * LONG, "fa:16:3e:\u00ff\u00ff:00:01"]


def q(text: str) -> str:
    """An OVSDB ctl string (JSON quoting: escapes and non-ASCII survive)."""
    return json.dumps(text)


def strset(items: Sequence[str]) -> str:
    return "[" + ",".join(q(i) for i in items) + "]"


def host(ip: str) -> str:
    return f"{ip}/{'128' if ':' in ip else '32'}"


def exposure_deps(world: World) -> dict[str, frozenset[str]]:
    """Each prefix ch1 must expose -> what justifies it: `pb:PORT` (its Port_Binding row),
    `nat:PORT` (that row's nat_addresses), `dp:NAME` (the datapath's set of ports and types),
    `ch:NAME` (a chassis row), `sysid` (local system-id), `map` (ovn-bridge-mappings)."""
    prov = {"pb:ln-public", "dp:public", "ch:ch1", "sysid", "map"}
    gw = prov | {"pb:cr-lrp-gw", "pb:lrp-gw", "pb:gw-port", "dp:r1"}
    deps: dict[str, set[str]] = {host(CRLRP_IP): gw}
    for p in PROVIDER:
        if p not in world.deleted and world.bound.get(p) == "ch1":
            for ip in pv_ips(p):
                deps[host(ip)] = prov | {f"pb:{p}"}
    for t in world.attached:
        subnet = gw | {f"pb:lrp-t{t}", f"pb:rp-t{t}", f"dp:t{t}"}
        deps[f"10.0.{t}.0/24"] = subnet
        for p in TENANT_VMS[t]:
            if world.bound.get(p):
                deps[host(tv_ip(p))] = subnet | {f"pb:{p}", f"ch:{world.bound[p]}"}
    for ip, p in world.fips.items():
        if world.bound.get(p) == "ch1":
            deps[host(ip)] = prov | {"pb:gw-port", "nat:gw-port", f"pb:{p}"}
    assert set(deps) == world.expected(), (sorted(deps), sorted(world.expected()))
    return {k: frozenset(v) for k, v in deps.items()}


# --- the world as the SB has it: uuids ----------------------------------------------------------


@dataclass
class SbIds:
    """uuids of the SB rows the walk mutates, read once after northd wrote them."""

    ports: dict[str, str]  # logical_port -> Port_Binding uuid
    port_dp: dict[str, str]  # logical_port -> datapath name
    types: dict[str, str]
    datapaths: dict[str, str]  # name -> Datapath_Binding uuid
    chassis: dict[str, str]  # name -> Chassis uuid

    @classmethod
    def read(cls, ovn: OvnCentral) -> SbIds:
        def rows(table: str, columns: str) -> list[list]:
            return json.loads(ovn.sbctl("--format=json", f"--columns={columns}", "list", table))["data"]

        dps = {dict(ext[1]).get("name", ""): u[1] for u, ext in rows("Datapath_Binding", "_uuid,external_ids")}
        dp_name = {v: k for k, v in dps.items()}
        ports, port_dp, types = {}, {}, {}
        for u, name, dp, typ in rows("Port_Binding", "_uuid,logical_port,datapath,type"):
            ports[name], port_dp[name], types[name] = u[1], dp_name.get(dp[1], dp[1]), typ
        chassis = {name: u[1] for u, name in rows("Chassis", "_uuid,name")}
        return cls(ports, port_dp, types, dps, chassis)


# --- mutations ---------------------------------------------------------------------------------


@dataclass
class Mutation:
    """One change of SB/OVS data. `apply()` makes it and returns the function that undoes it;
    `cell` is what it writes (two active mutations never write the same cell); `touches` the
    dependencies (see exposure_deps) whose exposures may legitimately change meanwhile."""

    kind: str
    what: str
    cell: tuple
    touches: frozenset[str]
    apply: Callable[[], Callable[[], None]]


@dataclass
class Mutator:
    """Builds random mutations of the node's SB and local OVS data."""

    node: NeutronNode
    ids: SbIds
    world: World
    rnd: random.Random
    hwaddr: str  # the bridge MAC pinned at set-up
    counter: int = 0

    # -- primitives ----------------------------------------------------------------------
    def sb_swap(self, table: str, uuid: str, columns: Sequence[str], *cmds: Sequence[str]):
        """`cmds` (ovn-sbctl) in one transaction with reading `columns` of the row; returns the
        restore (the columns set back as read)."""
        argv = ["get", table, uuid, *columns]
        for c in cmds:
            argv += ["--", *c]
        out = self.node.ovn.sbctl(*argv).splitlines()
        saved = [f"{c}={v}" for c, v in zip(columns, out)]
        assert len(saved) == len(columns), out
        return lambda: self.node.ovn.sbctl("set", table, uuid, *saved)

    def pb(self, kind: str, port: str, column: str, value: str, touches: Sequence[str] = (),
           cmd: str = "set") -> Mutation:
        uuid = self.ids.ports[port]
        whole = column.split(":")[0]  # options:KEY saves and restores the whole map
        args = [cmd, "Port_Binding", uuid, f"{column}={value}"] if cmd == "set" else \
            ["add", "Port_Binding", uuid, column, value]
        return Mutation(kind, f"{port}.{column} {cmd} {short(value)}", ("pb", port, whole),
                        frozenset({f"pb:{port}", *touches}),
                        lambda: self.sb_swap("Port_Binding", uuid, [whole], args))

    def ovs_key(self, kind: str, key: str, value: str | None, original: str,
                touches: Sequence[str]) -> Mutation:
        ovs = self.node.ovs

        def apply():
            if value is None:
                ovs.vsctl("remove", "Open_vSwitch", ".", "external_ids", key)
            else:
                ovs.vsctl("set", "Open_vSwitch", ".", f"external_ids:{key}={q(value)}")
            return lambda: ovs.vsctl("set", "Open_vSwitch", ".", f"external_ids:{key}={q(original)}")

        return Mutation(kind, f"ovs {key} := {short(value)}", ("ovs", key), frozenset(touches), apply)

    def new_port(self, kind: str, dp: str, mac: Sequence[str], chassis: str | None,
                 name: str | None = None) -> Mutation:
        self.counter += 1
        name = name if name is not None else f"adv-{self.counter}"
        args = ["create", "Port_Binding", f"logical_port={q(name)}",
                f"datapath={self.ids.datapaths[dp]}", f"tunnel_key={32000 + self.counter}",
                f"mac={strset(mac)}"]
        if chassis:
            args.append(f"chassis={self.ids.chassis[chassis]}")

        def apply():
            uuid = self.node.ovn.sbctl(*args).strip()
            return lambda: self.node.ovn.sbctl("destroy", "Port_Binding", uuid)

        return Mutation(kind, f"new row {short(name)} on {dp} ({chassis}) mac {short(strset(mac))}",
                        ("new", self.counter), frozenset({f"pb:{name}"}), apply)

    # -- the classes ---------------------------------------------------------------------
    def pb_mac(self) -> Mutation:
        vms = [p for p, t in self.ids.types.items() if t == "" and not p.startswith("adv-")]
        routers = ["cr-lrp-gw", "lrp-t1", "lrp-t2"]
        port = self.rnd.choice(vms + routers)
        bad = self.rnd.choice(BAD_ROUTER_MAC if port in routers else BAD_VM_MAC)
        return self.pb("pb-mac", port, "mac", strset(bad))

    def pb_nat(self) -> Mutation:
        if self.rnd.random() < 0.7:
            value = self.rnd.choice(BAD_NAT + [[]])
            cmd = self.rnd.choice(["set", "add"]) if value else "set"
            return self.pb("pb-nat", "gw-port", "nat_addresses",
                           strset(value) if cmd == "set" else q(value[0]), cmd=cmd, touches=["nat:gw-port"])
        port = self.rnd.choice(["pv0", "tv1_1", "ln-public", "rp-t1", "lrp-t1", "lrp-gw", "cr-lrp-gw"])
        return self.pb("pb-nat", port, "nat_addresses", strset(MISPLACED_NAT))

    def pb_options(self) -> Mutation:
        port, key, values = self.rnd.choice([
            ("ln-public", "network_name", BAD_PHYSNETS),
            *((p, "peer", BAD_NAMES) for p in ("lrp-gw", "gw-port", "lrp-t1", "lrp-t2", "rp-t1", "rp-t2")),
            ("cr-lrp-gw", "distributed-port", BAD_NAMES),
            *((p, "chassis-redirect-port", ["cr-lrp-gw", "garbage", ""]) for p in ("lrp-gw", "lrp-t1")),
        ])
        roll = self.rnd.random()
        if roll < 0.15:
            return self.pb("pb-options", port, "options", "{}")
        if roll < 0.3:
            uuid = self.ids.ports[port]
            return Mutation("pb-options", f"{port}.options remove {key}", ("pb", port, "options"),
                            frozenset({f"pb:{port}"}), lambda: self.sb_swap(
                                "Port_Binding", uuid, ["options"],
                                ["remove", "Port_Binding", uuid, "options", key]))
        return self.pb("pb-options", port, f"options:{key}", q(self.rnd.choice(values)))

    def pb_type(self) -> Mutation:
        port = self.rnd.choice(["pv0", "pv1", "tv1_0", "tv1_1", "ln-public", "gw-port", "lrp-gw",
                                "cr-lrp-gw", "lrp-t1", "rp-t1", "pv7"])
        new = self.rnd.choice([t for t in BAD_TYPES if t != self.ids.types[port]])
        # A localnet port changes which datapaths are provider networks (a tenant switch with
        # one is not a tenant network any more).
        touches = [f"dp:{self.ids.port_dp[port]}"] if new == "localnet" else []
        return self.pb("pb-type", port, "type", q(new), touches=touches)

    def pb_chassis(self) -> Mutation:
        bound = {p: c for p, c in self.world.bound.items() if c} | {"cr-lrp-gw": "ch1"}
        port = self.rnd.choice(sorted(bound) + ["pv5", "lrp-gw"])
        here = bound.get(port)
        if here is None:  # not bound: bind it anywhere but here (binding here would expose)
            values = [self.ids.chassis["ch2"], self.ids.chassis["ch3"]]
            if port == "lrp-gw":  # a patch port: the model ignores its chassis
                values.append(self.ids.chassis["ch1"])
        else:
            values = ["[]", "00000000-0000-0000-0000-00000000dead"]
            values += [self.ids.chassis[c] for c in ("ch1", "ch2", "ch3") if c != here
                       and (c != "ch1" or port.startswith("tv"))]
        return self.pb("pb-chassis", port, "chassis", self.rnd.choice(values))

    def pb_up(self) -> Mutation:
        bound = [p for p, c in self.world.bound.items() if c] + ["cr-lrp-gw"]
        return self.pb("pb-up", self.rnd.choice(sorted(bound)), "up", self.rnd.choice(["false", "true", "[]"]))

    def pb_datapath(self) -> Mutation:
        port = self.rnd.choice(["pv0", "pv2", "tv1_0", "tv1_1", "ln-public", "gw-port", "lrp-t1",
                                "rp-t1", "cr-lrp-gw", "pv6"])
        old = self.ids.port_dp[port]
        new = self.rnd.choice([d for d in ("public", "t1", "t2", "r1", "orphan") if d != old])
        uuid = self.ids.ports[port]
        self.counter += 1
        # Moving a VM port changes only that row's claims; moving an infra row changes the
        # topology of both datapaths.
        touches = {f"pb:{port}"} | ({f"dp:{old}", f"dp:{new}"} if self.ids.types[port] else set())
        args = ["set", "Port_Binding", uuid, f"datapath={self.ids.datapaths[new]}",
                f"tunnel_key={32000 + self.counter}"]
        return Mutation("pb-datapath", f"{port} moved {old} -> {new}", ("pb", port, "datapath"),
                        frozenset(touches),
                        lambda: self.sb_swap("Port_Binding", uuid, ["datapath", "tunnel_key"], args))

    def pb_new(self) -> Mutation:
        name = self.rnd.choice([None, "adv-\u00fc", "n" * LONG, "tv1_1 "])
        dp = self.rnd.choice(["public", "t1"])
        return self.new_port("pb-new", dp, self.rnd.choice(BAD_VM_MAC), self.rnd.choice(["ch1", "ch2", None]),
                             name=None if name is None else f"{name}{self.counter + 1}")

    def chassis_name(self) -> Mutation:
        ch = self.rnd.choice(["ch1", "ch2"])
        uuid = self.ids.chassis[ch]
        new = self.rnd.choice(CHASSIS_RENAMES)
        return Mutation("chassis-name", f"chassis {ch} renamed {short(new)}", ("chassis", ch),
                        frozenset({f"ch:{ch}"}),
                        lambda: self.sb_swap("Chassis", uuid, ["name"], ["set", "Chassis", uuid, f"name={q(new)}"]))

    def system_id(self) -> Mutation:
        return self.ovs_key("system-id", "system-id", self.rnd.choice(SYSTEM_IDS), "ch1", ["sysid"])

    def mapping(self, kind: str) -> Mutation:
        values, touches = {"mapping-invalid": (MAPPINGS_INVALID, ()), "mapping-change": (MAPPINGS_CHANGED, ["map"]),
                           "mapping-extra": (MAPPINGS_EXTRA, ())}[kind]
        return self.ovs_key(kind, "ovn-bridge-mappings", self.rnd.choice(values), "public:br-ex", touches)

    def bridge_mac(self) -> Mutation:
        ovs, pinned = self.node.ovs, self.hwaddr
        if self.rnd.random() < 0.5:
            value = self.rnd.choice(BAD_HWADDR)
            table, row, column = "Bridge", "br-ex", "other_config:hwaddr"
        else:
            value = self.rnd.choice(BAD_MAC_IN_USE)
            table, row, column = "Interface", "br-ex", "mac_in_use"

        def apply():
            ovs.vsctl("set", table, row, f"{column}={q(value)}")
            return lambda: ovs.vsctl("set", table, row, f"{column}={q(pinned)}")

        return Mutation("bridge-mac", f"{table} {row} {column} := {short(value)}", ("ovs", table, column),
                        frozenset(), apply)

    def dup_claim(self) -> Mutation:
        """A second row claiming a prefix another row has exposed."""
        exposed_here = [p for p in PROVIDER if self.world.bound.get(p) == "ch1"]
        victim_ips = [ip for p in exposed_here for ip in pv_ips(p)] + [CRLRP_IP, FIPS[0]]
        roll = self.rnd.random()
        if roll < 0.35:  # another exposed VM's mac claims it
            port = self.rnd.choice(exposed_here)
            ip = self.rnd.choice([i for i in victim_ips if i not in pv_ips(port)])
            return self.pb("dup-claim", port, "mac", strset([f"fa:16:3e:00:01:9{len(ip) % 10} {ip}"]))
        if roll < 0.6:  # a new row bound here
            return self.new_port("dup-claim", "public", [f"fa:16:3e:00:09:99 {self.rnd.choice(victim_ips)}"],
                                 self.rnd.choice(["ch1", "ch1", "ch2"]))
        if roll < 0.75:  # a new tenant VM claiming a tenant VM's IP
            t, victim = self.rnd.choice([(1, "tv1_0"), (1, "tv1_1"), (2, "tv2_0")])
            return self.new_port("dup-claim", f"t{t}", [f"fa:16:3e:00:0{t}:99 {tv_ip(victim)}"],
                                 self.rnd.choice(["ch1", "ch2"]))
        if roll < 0.88:  # another router port claiming a tenant subnet
            return self.pb("dup-claim", "lrp-t2", "mac", strset(["00:00:00:00:f2:01 10.0.1.1/24"]))
        entry = f'fa:16:3e:00:99:08 {self.rnd.choice(victim_ips)} is_chassis_resident("tv1_1")'
        return self.pb("dup-claim", "gw-port", "nat_addresses", q(entry), cmd="add", touches=["nat:gw-port"])

    def make(self, kind: str) -> Mutation:
        if kind.startswith("mapping-"):
            return self.mapping(kind)
        return getattr(self, kind.replace("-", "_"))()


def short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:40]}...({len(text)} chars)"


# --- watching the dummy --------------------------------------------------------------------------

_EVENT_RE = re.compile(r"^(Deleted )?\d+:\s+(\S+)\s+inet6?\s+(\S+)")


class DummyWatch:
    """RTM_NEWADDR/RTM_DELADDR on the dummy (`ip -o monitor address` in the node's namespace,
    a netlink multicast subscription); `judge(op, prefix)` is called for each as it arrives."""

    def __init__(self, netns: str, judge: Callable[[str, str], None]):
        self.judge = judge
        self.events = 0
        self.proc = subprocess.Popen(netns_argv(["ip", "-o", "monitor", "address"], netns),
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        time.sleep(0.5)  # subscribed before the caller changes anything

    def _read(self) -> None:
        for line in self.proc.stdout:
            m = _EVENT_RE.match(line)
            if not m or m.group(2) != DUMMY:
                continue
            net = ipaddress.ip_interface(m.group(3)).network
            if net.version == 6 and net.is_link_local:
                continue
            self.events += 1
            self.judge("del" if m.group(1) else "add", str(net))

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.thread.join(timeout=10)


# --- the walk ------------------------------------------------------------------------------------


@dataclass
class Walk:
    """The mutations in force and what the dummy may do meanwhile."""

    deps: dict[str, frozenset[str]]
    seed: int
    active: dict[int, tuple[Mutation, Callable[[], None]]] = field(default_factory=dict)
    pending: set[int] = field(default_factory=set)  # being applied (their command may be running)
    unsettled: dict[str, float] = field(default_factory=dict)  # prefix -> restored at
    history: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    mutations: dict[int, Mutation] = field(default_factory=dict)

    def touched(self) -> frozenset[str]:
        return frozenset().union(*(self.mutations[i].touches for i in set(self.active) | self.pending))

    def protected(self, prefix: str) -> bool:
        return (prefix in self.deps and prefix not in self.unsettled
                and not self.deps[prefix] & self.touched())

    def judge(self, op: str, prefix: str) -> None:
        with self.lock:
            self.history.append(f"  event {op} {prefix}")
            if op == "add" and prefix not in self.deps:
                self.violations.append(f"{prefix} added: no unmodified row justifies it")
            elif op == "del" and self.protected(prefix):
                self.violations.append(f"{prefix} removed: every row justifying it is unmodified")

    def apply(self, n: int, m: Mutation) -> bool:
        with self.lock:
            self.mutations[n] = m
            self.pending.add(n)
            self.history.append(f"#{n} apply [{m.kind}] {m.what}")
        try:
            restore = m.apply()
        except CommandError as e:  # the DB refused the value: nothing changed
            with self.lock:
                self.pending.discard(n)
                self._unsettle(m)
                self.history.append(f"#{n} refused: {short(str(e).splitlines()[-1])}")
            return False
        with self.lock:
            self.pending.discard(n)
            self.active[n] = (m, restore)
        return True

    def restore(self, n: int) -> None:
        m, restore = self.active[n]
        self.history.append(f"#{n} restore")
        restore()
        with self.lock:
            del self.active[n]
            self._unsettle(m)

    def _unsettle(self, m: Mutation) -> None:
        """After a restore, its exposures may still change until the agent has caught up."""
        now = time.monotonic()
        for prefix, deps in self.deps.items():
            if deps & m.touches:
                self.unsettled[prefix] = now

    def settle(self, on_dummy: frozenset[str]) -> None:
        now = time.monotonic()
        with self.lock:
            touched = self.touched()
            for prefix, at in list(self.unsettled.items()):
                if now - at >= GRACE and prefix in on_dummy and not self.deps[prefix] & touched:
                    del self.unsettled[prefix]

    def report(self, what: str) -> str:
        tail = "\n".join(self.history[-40:])
        return (f"{what}\nseed {self.seed} (rerun: {SEED_ENV}={self.seed}); active: "
                f"{[self.mutations[i].what for i in self.active]}\nlast steps:\n{tail}")


def enabled_classes() -> list[str]:
    skip = {s.strip() for s in os.environ.get(SKIP_ENV, "").split(",") if s.strip()}
    unknown = skip - set(CLASSES)
    assert not unknown, f"{SKIP_ENV}: unknown mutation classes {sorted(unknown)}; known: {CLASSES}"
    return [c for c in CLASSES if c not in skip]


# --- the node ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def node(modprobe, tmp_path_factory) -> Iterator[NeutronNode]:
    for mod in KERNEL_MODULES:
        modprobe(mod)
    work = tmp_path_factory.mktemp("adversarial")
    node = NeutronNode(work, OvnCentral(work / "ovn"), name="anode", leaf_name="aleaf")
    with node.running():
        build_topology(node.ovn, node.world)
        node.ovn.sbctl("chassis-add", "ch3", "geneve", "127.0.0.3")
        # The bridge MAC pinned (restores set it back exactly).
        mac = node.ovs.vsctl("get", "Interface", "br-ex", "mac_in_use").strip().strip('"')
        node.ovs.vsctl("set", "Bridge", "br-ex", f"other_config:hwaddr={q(mac)}")
        node.start_agent(work / "agent", node.agent_config(debounce=0.05, resync_interval=15))
        node.wait_converged(timeout=90)
        yield node


def _agent_healthy(node: NeutronNode, walk: Walk) -> None:
    assert node.agent.alive(), walk.report("the agent exited\n" + node.agent.log_tail(40))
    log = node.agent.log()
    assert "Traceback" not in log, walk.report("traceback in the agent's log\n" + log[log.index("Traceback"):][:3000])


def test_random_walk_of_bad_data(node: NeutronNode):
    seed = int(os.environ.get(SEED_ENV) or random.SystemRandom().randrange(1 << 32))
    count = int(os.environ.get(MUTATIONS_ENV) or 50)
    kinds = enabled_classes()
    print(f"adversarial walk: seed {seed} ({SEED_ENV}), {count} mutations of {kinds}", flush=True)
    rnd = random.Random(seed)
    started = time.monotonic()
    node.ovn.appctl("ovn-northd", "pause")
    node.ovn.sbctl("create", "Datapath_Binding", "tunnel_key=16000000", "external_ids:name=orphan")
    ids = SbIds.read(node.ovn)
    hwaddr = node.ovs.vsctl("get", "Bridge", "br-ex", "other_config:hwaddr").strip().strip('"')
    mutator = Mutator(node, ids, node.world, rnd, hwaddr)
    walk = Walk(exposure_deps(node.world), seed)
    watch = DummyWatch(node.ns.name, walk.judge)
    applied: dict[str, int] = {}
    try:
        n = 0
        while n < count or walk.active:
            if walk.active and (n >= count or len(walk.active) >= MAX_ACTIVE or rnd.random() < 0.4):
                walk.restore(rnd.choice(sorted(walk.active)))
            else:
                n += 1
                m = mutator.make(rnd.choice(kinds))
                cells = {walk.mutations[i].cell for i in walk.active}
                if m.cell not in cells and walk.apply(n, m):
                    applied[m.kind] = applied.get(m.kind, 0) + 1
            time.sleep(rnd.choice(SETTLE))
            walk.settle(node.dummy())
            assert not walk.violations, walk.report("; ".join(walk.violations))
            _agent_healthy(node, walk)
        node.ovn.sbctl("destroy", "Datapath_Binding", ids.datapaths["orphan"])
        node.ovn.appctl("ovn-northd", "resume")
        node.ovn.sync()
        node.wait_converged(timeout=120)
        assert not walk.violations, walk.report("; ".join(walk.violations))
    finally:
        watch.stop()
    _agent_healthy(node, walk)
    print(f"adversarial walk: seed {seed}: {sum(applied.values())} mutations applied {applied}, "
          f"{watch.events} dummy events, {time.monotonic() - started:.0f} s", flush=True)

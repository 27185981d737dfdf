"""The OVN side against a real OVN: NB driven with ovn-nbctl, SB written by a real ovn-northd,
ports bound with `ovn-sbctl lsp-bind`, the local OVS DB of a real ovsdb-server/vswitchd.

Each test asserts the desired state the model computes from what OvnWatcher mirrored, that the
incremental ModelCache (fed only the keys the watcher reported dirty) agrees with it, and that
the named events fired.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections import Counter
from collections.abc import Callable

import pytest

from ovnbgp.config import Config, OvnConfig
from ovnbgp.model.cache import ModelCache, desired_state
from ovnbgp.model.records import DesiredState, ExposureKind, FlowSpec, Neighbour, Route, Rule
from ovnbgp.ovn.watcher import OvnWatcher

K = ExposureKind
net = ipaddress.ip_network
ip = ipaddress.ip_address
GW_MAC = "fa:16:3e:b5:a6:77"
WAIT = 15.0


class Env:
    """One simulated chassis ch1 (plus a remote ch2) against a real OVN central."""

    def __init__(self, central, ovs):
        self.central, self.ovs = central, ovs
        self.lock = threading.Lock()
        self.dirty: set = set()
        self.causes: Counter = Counter()
        self.marks: list[tuple[str, frozenset]] = []  # (cause, keys) in the order marked
        self.resyncs: list[str] = []
        self.connections: list[tuple[bool, bool]] = []  # (sb, ovs) at each on_connection
        self._barrier = 0
        self.watcher: OvnWatcher | None = None
        self.cache: ModelCache | None = None

    # -- set-up -------------------------------------------------------------------------

    def setup_ovs(self, mappings: str = "public:br-ex,physnet2:br-ex2") -> None:
        o = self.ovs
        o.vsctl("set", "open", ".", "external_ids:system-id=ch1", f"external_ids:ovn-bridge-mappings={mappings}")
        o.add_bridge("br-int")
        for physnet, bridge in (m.split(":") for m in mappings.split(",")):
            o.add_bridge(bridge)
            patch, peer = f"patch-provnet-{physnet}-to-br-int", f"patch-br-int-to-provnet-{physnet}"
            o.vsctl("add-port", bridge, patch, "--", "set", "Interface", patch, "type=patch",
                    f"options:peer={peer}", "--", "set", "Port", patch,
                    f"external_ids:ovn-localnet-port=ln-{physnet}",
                    "--", "add-port", "br-int", peer, "--", "set", "Interface", peer, "type=patch",
                    f"options:peer={patch}")

    def setup_ovn(self) -> None:
        sb = self.central.sbctl
        sb("chassis-add", "ch1", "geneve", "127.0.0.1")
        sb("chassis-add", "ch2", "geneve", "127.0.0.2")
        self.provider_network("public", "public")
        self.provider_network("p2", "physnet2")

    def provider_network(self, name: str, physnet: str) -> None:
        nb = self.central.nbctl
        nb("ls-add", name)
        nb("lsp-add", name, f"ln-{name}", "--", "lsp-set-type", f"ln-{name}", "localnet",
           "--", "lsp-set-addresses", f"ln-{name}", "unknown",
           "--", "lsp-set-options", f"ln-{name}", f"network_name={physnet}")

    def vm(self, switch: str, name: str, addresses: str) -> None:
        self.central.nbctl("lsp-add", switch, name, "--", "lsp-set-addresses", name, addresses)

    def router(self, name: str = "r1", cidrs=("172.24.4.146/24", "2001:db8::1/64"),
               gateways=(("ch1", 20), ("ch2", 10))) -> None:
        """Router with a distributed gateway port on `public` (nat-addresses=router, as Neutron)."""
        nb = self.central.nbctl
        nb("lr-add", name)
        nb("lrp-add", name, f"lrp-{name}-gw", GW_MAC, *cidrs)
        nb("lsp-add", "public", f"gw-{name}", "--", "lsp-set-type", f"gw-{name}", "router",
           "--", "lsp-set-addresses", f"gw-{name}", "router",
           "--", "lsp-set-options", f"gw-{name}", f"router-port=lrp-{name}-gw", "nat-addresses=router")
        for ch, prio in gateways:
            nb("lrp-set-gateway-chassis", f"lrp-{name}-gw", ch, str(prio))

    def tenant(self, switch: str, router: str = "r1", mac: str = "fa:16:3e:00:01:01",
               cidrs=("10.0.0.1/26", "fd00:10::1/64")) -> None:
        nb = self.central.nbctl
        nb("--may-exist", "ls-add", switch)
        nb("lrp-add", router, f"lrp-{router}-{switch}", mac, *cidrs)
        nb("lsp-add", switch, f"{switch}-{router}", "--", "lsp-set-type", f"{switch}-{router}", "router",
           "--", "lsp-set-addresses", f"{switch}-{router}", "router",
           "--", "lsp-set-options", f"{switch}-{router}", f"router-port=lrp-{router}-{switch}")

    def bind(self, port: str, chassis: str) -> None:
        self.central.sync()
        if self.central.sbctl("--bare", "--columns=chassis", "find", "Port_Binding",
                              f"logical_port={port}").strip():
            self.central.sbctl("lsp-unbind", port)
        self.central.sbctl("lsp-bind", port, chassis)

    def unbind(self, port: str) -> None:
        self.central.sync()
        self.central.sbctl("lsp-unbind", port)

    def cfg(self, **ovn) -> Config:
        kw = {"sb_remotes": (self.central.sb_remote,), "ovs_remote": self.ovs.remote}
        kw.update(ovn)
        return Config(ovn=OvnConfig(**kw))

    def start(self, **ovn) -> Env:
        self.central.sync()
        self.watcher = OvnWatcher(self.cfg(**ovn), on_dirty=self._on_dirty, on_resync=self.resyncs.append,
                                  on_connection=self._on_connection)
        self.watcher.start(timeout=WAIT)
        self.cache = ModelCache(self.watcher.snapshot(), self.watcher.cfg)
        return self

    def stop(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()

    def _on_connection(self) -> None:
        assert self.watcher is not None
        self.connections.append((self.watcher.sb_connected, self.watcher.ovs_connected))

    def _on_dirty(self, keys, cause) -> None:
        with self.lock:
            self.dirty |= keys
            self.causes[cause] += 1
            self.marks.append((cause, frozenset(keys)))

    # -- observing ----------------------------------------------------------------------

    def barrier(self) -> None:
        """Return once the watcher has seen every SB change made before this call (northd
        first): a marker chassis is added and OVSDB delivers updates in order."""
        self.central.sync()
        self._barrier += 1
        name = f"barrier-{self._barrier}"
        self.central.sbctl("chassis-add", name, "geneve", f"127.1.{self._barrier // 250}.{self._barrier % 250 + 1}")
        wait_for(lambda: name in self.watcher.snapshot().chassis_names, f"watcher saw {name}")
        self.central.sbctl("chassis-del", name)
        wait_for(lambda: name not in self.watcher.snapshot().chassis_names, f"watcher saw {name} go")

    def state(self) -> DesiredState:
        """Barrier, then the full model; also checks the incremental cache agrees (given the
        exposures before: tests/unit/test_model_incremental.py)."""
        self.barrier()
        # the full computation is given the one piece of history the model keeps: the
        # exposures before (which row owns a prefix several rows claim)
        before = self.cache.state
        full = desired_state(self.watcher.snapshot(), self.watcher.cfg, established=before.exposures)
        with self.lock:
            keys, self.dirty = self.dirty, set()
        inc = self.cache.update(self.watcher.changes(keys))
        assert inc == full, "incremental ModelCache disagrees with desired_state()"
        assert inc.problems == full.problems
        return full

    def exposed(self) -> dict[str, tuple]:
        return {str(e.prefix): (e.kind, e.bridge, e.port) for e in self.state().exposures}

    def events(self) -> Counter:
        """Named events seen since the last call, once every change made so far was seen
        (the events run in the watcher's thread, before it marks the rows dirty)."""
        self.barrier()
        with self.lock:
            out = Counter({k: v for k, v in self.causes.items() if k.endswith("Event")})
            self.causes.clear()
            marks, self.marks = self.marks, []
        for i, (cause, keys) in enumerate(marks):  # named before queued: no wait for a cause
            if cause.endswith("Event"):
                assert any(c == "Port_Binding" and keys & k for c, k in marks[i + 1:]), \
                    f"{cause} marked {set(keys)} after the rows were queued"
        return out


def wait_for(pred: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.05)


@pytest.fixture
def env(ovn_central, ovs_node):
    e = Env(ovn_central, ovs_node)
    e.setup_ovs()
    e.setup_ovn()
    yield e
    e.stop()


# --- provider networks ---------------------------------------------------------------------------


def test_provider_dual_stack_port_bind_and_unbind(env):
    env.vm("public", "pvm1", "fa:16:3e:00:00:01 172.24.4.10 2001:db8::10")
    env.start()
    assert env.exposed() == {}
    env.bind("pvm1", "ch1")
    s = env.state()
    row = env.watcher.port_binding("pvm1").uuid
    assert {(str(e.prefix), e.kind, e.bridge, e.port, e.row) for e in s.exposures} == {
        ("172.24.4.10/32", K.PROVIDER_VM, "br-ex", "pvm1", row),
        ("2001:db8::10/128", K.PROVIDER_VM, "br-ex", "pvm1", row)}
    assert {r for r in s.rules if r.dst is not None} == {Rule(32000, 200, net("172.24.4.10/32"), 4),
                                                         Rule(32000, 200, net("2001:db8::10/128"), 6)}
    assert Route(200, net("0.0.0.0/0"), "br-ex", scope_link=True) in s.routes
    mac = env.ovs.vsctl("get", "Interface", "br-ex", "mac_in_use").strip().strip('"')
    assert FlowSpec("br-ex", "patch-provnet-public-to-br-int", mac) in s.flows
    assert env.events()["PortBindingChassisCreatedEvent"] == 1

    env.unbind("pvm1")
    assert env.exposed() == {}
    assert env.events()["PortBindingChassisDeletedEvent"] == 1

    env.bind("pvm1", "ch2")  # bound elsewhere: not ours
    assert env.exposed() == {}
    assert not env.events()["PortBindingChassisCreatedEvent"]


def test_the_initial_load_leaves_no_pending_event_matches(env):
    """Rows already bound at start fire no named event (the initial load is not a change),
    and their matches are not kept in the events either (~440 B per row, for ever, at 100k)."""
    env.vm("public", "pvm1", "fa:16:3e:00:00:01 172.24.4.10 2001:db8::10")
    env.vm("public", "pvm2", "fa:16:3e:00:00:02 172.24.4.11")
    env.bind("pvm1", "ch1")
    env.bind("pvm2", "ch1")
    env.start()
    assert len(env.exposed()) == 3
    assert not any(e._ips or e._keys for e in env.watcher.events)
    env.unbind("pvm2")
    assert len(env.exposed()) == 2
    assert env.events()["PortBindingChassisDeletedEvent"] == 1
    assert not any(e._ips or e._keys for e in env.watcher.events)


def test_two_provider_networks_on_two_bridges(env):
    env.vm("public", "pvm1", "fa:16:3e:00:00:01 172.24.4.10")
    env.vm("p2", "pvm2", "fa:16:3e:00:00:02 192.0.2.10 2001:db8:2::10")
    env.start()
    env.bind("pvm1", "ch1")
    env.bind("pvm2", "ch1")
    s = env.state()
    assert {str(e.prefix): (e.bridge, e.port) for e in s.exposures} == {
        "172.24.4.10/32": ("br-ex", "pvm1"), "192.0.2.10/32": ("br-ex2", "pvm2"),
        "2001:db8:2::10/128": ("br-ex2", "pvm2")}
    assert {(b.name, b.table) for b in s.bridges} == {("br-ex", 200), ("br-ex2", 201)}
    assert Rule(32000, 201, net("192.0.2.10/32"), 4) in s.rules
    assert {f.bridge for f in s.flows} == {"br-ex", "br-ex2"}


def test_vlan_provider_network_tag_reaches_the_sb_and_the_model(env):
    """Neutron's VLAN network: `tag` on the localnet port; northd copies it to the SB
    Port_Binding, the model steers the network through br-ex.100 next to the flat one."""
    nb = env.central.nbctl
    nb("ls-add", "vlan100")
    nb("lsp-add", "vlan100", "provnet-v", "--", "lsp-set-type", "provnet-v", "localnet",
       "--", "lsp-set-addresses", "provnet-v", "unknown",
       "--", "lsp-set-options", "provnet-v", "network_name=public",
       "--", "set", "logical_switch_port", "provnet-v", "tag=100")
    env.vm("vlan100", "vvm1", "fa:16:3e:00:00:11 172.24.8.10 2001:db8:28::10")
    env.vm("public", "pvm1", "fa:16:3e:00:00:01 172.24.4.10")
    env.start()
    env.bind("vvm1", "ch1")
    env.bind("pvm1", "ch1")
    s = env.state()
    ln = env.watcher.port_binding("provnet-v")
    assert (ln.type, ln.tag) == ("localnet", 100)
    assert env.central.sbctl("--bare", "--columns=tag", "find", "Port_Binding",
                             "logical_port=provnet-v").strip() == "100"
    assert {str(e.prefix): e.dev for e in s.exposures} == {
        "172.24.8.10/32": "br-ex.100", "2001:db8:28::10/128": "br-ex.100",
        "172.24.4.10/32": "br-ex"}
    assert {(v.bridge, v.vlan) for v in s.vlans} == {("br-ex", 100)}
    assert Route(200, net("172.24.8.10/32"), "br-ex.100", scope_link=True) in s.routes
    mac = env.ovs.vsctl("get", "Interface", "br-ex", "mac_in_use").strip().strip('"')
    assert {FlowSpec("br-ex", "patch-provnet-public-to-br-int", mac),
            FlowSpec("br-ex", "patch-provnet-public-to-br-int", mac, 100)} <= s.flows

    nb("set", "logical_switch_port", "provnet-v", "tag=200")  # retagged: follows
    s = env.state()
    assert {(v.bridge, v.vlan) for v in s.vlans} == {("br-ex", 200)}
    assert {e.dev for e in s.exposures if e.port == "vvm1"} == {"br-ex.200"}
    nb("lsp-del", "provnet-v")  # no localnet: not a provider network, nothing of it left
    s = env.state()
    assert not s.vlans and {e.port for e in s.exposures} == {"pvm1"}
    assert all(f.vlan == 0 for f in s.flows)


# --- routers -------------------------------------------------------------------------------------


def test_crlrp_here_then_elsewhere_and_failover(env):
    env.router()
    env.tenant("t1")
    env.start()
    assert env.exposed() == {}  # cr-lrp not bound yet
    env.bind("cr-lrp-r1-gw", "ch1")
    s = env.state()
    assert {str(e.prefix): (e.kind, e.port) for e in s.exposures} == {
        "172.24.4.146/32": (K.CRLRP, "cr-lrp-r1-gw"), "2001:db8::1/128": (K.CRLRP, "cr-lrp-r1-gw"),
        "10.0.0.0/26": (K.TENANT_SUBNET, "lrp-r1-t1"), "fd00:10::/64": (K.TENANT_SUBNET, "lrp-r1-t1")}
    assert s.neighbours == {Neighbour("br-ex", ip("172.24.4.146"), GW_MAC),
                            Neighbour("br-ex", ip("2001:db8::1"), GW_MAC)}
    assert {Route(200, net("10.0.0.0/26"), "br-ex", gateway=ip("172.24.4.146")),
            Route(200, net("fd00:10::/64"), "br-ex", gateway=ip("2001:db8::1")),
            Route(200, net("172.24.4.146/32"), "br-ex", scope_link=True)} <= s.routes
    assert env.events()["PortBindingChassisCreatedEvent"] == 1

    # Failover: ch2 gets the highest priority; ovn-controller on ch2 would then claim the
    # cr-lrp. The binding, not the priority, says where traffic enters: nothing moves before.
    env.central.nbctl("lrp-set-gateway-chassis", "lrp-r1-gw", "ch2", "30")
    assert "172.24.4.146/32" in env.exposed()
    env.bind("cr-lrp-r1-gw", "ch2")
    s = env.state()
    assert not s.exposures and not s.neighbours
    assert env.events()["PortBindingChassisDeletedEvent"] == 1
    # and back
    env.central.nbctl("lrp-set-gateway-chassis", "lrp-r1-gw", "ch1", "40")
    env.bind("cr-lrp-r1-gw", "ch1")
    assert len(env.exposed()) == 4


def test_router_interface_attach_detach(env):
    env.router()
    env.start()
    env.bind("cr-lrp-r1-gw", "ch1")
    assert set(env.exposed()) == {"172.24.4.146/32", "2001:db8::1/128"}
    env.events()
    env.tenant("t2", cidrs=("10.2.0.1/24",), mac="fa:16:3e:00:01:02")
    assert env.exposed()["10.2.0.0/24"] == (K.TENANT_SUBNET, "br-ex", "lrp-r1-t2")
    assert env.events()["SubnetRouterAttachedEvent"] == 1
    env.central.nbctl("lrp-del", "lrp-r1-t2")
    assert "10.2.0.0/24" not in env.exposed()
    assert env.events()["SubnetRouterDetachedEvent"] == 1


def test_tenant_port_create_bind_delete(env):
    env.router()
    env.tenant("t1")
    env.start()
    env.bind("cr-lrp-r1-gw", "ch1")
    env.state()
    env.events()
    env.vm("t1", "tvm1", "fa:16:3e:00:02:01 10.0.0.5 fd00:10::5")
    assert "10.0.0.5/32" not in env.exposed()  # not bound to any chassis yet
    env.bind("tvm1", "ch2")  # a VM on another compute: reached through our gateway
    ex = env.exposed()
    assert ex["10.0.0.5/32"] == (K.TENANT_VM, "br-ex", "tvm1")
    assert ex["fd00:10::5/128"] == (K.TENANT_VM, "br-ex", "tvm1")
    assert env.events()["TenantPortCreatedEvent"] >= 1
    env.central.nbctl("lsp-del", "tvm1")
    assert "10.0.0.5/32" not in env.exposed()
    assert env.events()["TenantPortDeletedEvent"] == 1


# --- floating IPs ---------------------------------------------------------------------------------


def test_fip_set_unset_and_vm_moving_between_chassis(env):
    env.router()
    env.tenant("t1")
    env.vm("t1", "tvm1", "fa:16:3e:00:02:01 10.0.0.5")
    env.start()
    env.bind("cr-lrp-r1-gw", "ch2")  # the gateway is elsewhere: the FIP is distributed (DVR)
    env.bind("tvm1", "ch1")
    env.central.nbctl("lr-nat-add", "r1", "dnat_and_snat", "172.24.4.225", "10.0.0.5", "tvm1",
                      "fa:16:3e:00:00:99")
    ex = env.exposed()
    assert ex == {"172.24.4.225/32": (K.FIP, "br-ex", "tvm1")}
    assert env.events()["FIPSetEvent"] == 1

    env.bind("tvm1", "ch2")  # the VM moves away: so does its FIP
    assert env.exposed() == {}
    env.bind("tvm1", "ch1")  # and back
    assert env.exposed() == {"172.24.4.225/32": (K.FIP, "br-ex", "tvm1")}
    env.events()

    env.central.nbctl("lr-nat-del", "r1", "dnat_and_snat", "172.24.4.225")
    assert env.exposed() == {}
    assert env.events()["FIPUnsetEvent"] == 1


def test_centralized_fip_on_the_gateway_chassis(env):
    env.router()
    env.tenant("t1")
    env.vm("t1", "tvm2", "fa:16:3e:00:02:02 10.0.0.6")
    env.start()
    env.bind("cr-lrp-r1-gw", "ch1")
    env.central.nbctl("lr-nat-add", "r1", "dnat_and_snat", "172.24.4.226", "10.0.0.6")  # no external_mac
    ex = env.exposed()
    assert ex["172.24.4.226/32"] == (K.FIP, "br-ex", "cr-lrp-r1-gw")
    assert ex["172.24.4.146/32"] == (K.CRLRP, "br-ex", "cr-lrp-r1-gw")  # not twice


# --- bad and odd input ----------------------------------------------------------------------------


def test_malformed_and_duplicate_addresses_from_a_real_northd(env):
    nb = env.central.nbctl
    env.vm("public", "good", "fa:16:3e:00:00:01 172.24.4.10")
    nb("lsp-add", "public", "bad")  # generic `set` skips ovn-nbctl's address checks
    nb("set", "Logical_Switch_Port", "bad",
       'addresses=["fa:16:3e:00:00:02 172.24.4.300", "zz:16:3e:00:00:02 172.24.4.11", "unknown", '
       '"fa:16:3e:00:00:02 172.24.4.12"]')
    nb("lsp-add", "public", "dup1", "--", "set", "Logical_Switch_Port", "dup1",
       'addresses=["fa:16:3e:00:00:03 172.24.4.20"]')
    nb("lsp-add", "public", "dup2", "--", "set", "Logical_Switch_Port", "dup2",
       'addresses=["fa:16:3e:00:00:04 172.24.4.20"]')
    env.start()
    for p in ("good", "bad", "dup1", "dup2"):
        env.bind(p, "ch1")
    s = env.state()
    # dup1 and dup2 claim one IP and reach the model in one batch: no owner yet, the lowest
    # Port_Binding uuid wins (issue 17: before, neither was exposed)
    dups = sorted((env.watcher.port_binding(p).uuid, p) for p in ("dup1", "dup2"))
    assert {str(e.prefix): e.port for e in s.exposures} == {"172.24.4.10/32": "good",
                                                           "172.24.4.12/32": "bad",
                                                           "172.24.4.20/32": dups[0][1]}
    bad_uuid = env.watcher.port_binding("bad").uuid
    assert {p.level for p in s.problems if p.row == bad_uuid} == {"warning", "debug"}
    assert {p.port for p in s.problems if "claimed by several ports" in p.reason} == {dups[1][1]}


def test_a_second_port_claiming_an_exposed_ip_is_refused_then_takes_over(env, caplog):
    """Issue 17 item 3: the exposed VM keeps its IP; the newcomer is refused with a warning
    naming both rows; deleting the owner hands the IP over."""
    import logging

    caplog.set_level(logging.INFO, logger="ovnbgp.model")
    env.vm("public", "vm-a", "fa:16:3e:00:00:01 172.24.4.10")
    env.start()
    env.bind("vm-a", "ch1")
    assert env.exposed() == {"172.24.4.10/32": (K.PROVIDER_VM, "br-ex", "vm-a")}
    env.central.nbctl("lsp-add", "public", "vm-b", "--", "set", "Logical_Switch_Port", "vm-b",
                      'addresses=["fa:16:3e:00:00:02 172.24.4.10"]')
    env.bind("vm-b", "ch1")
    assert env.exposed() == {"172.24.4.10/32": (K.PROVIDER_VM, "br-ex", "vm-a")}
    a, b = env.watcher.port_binding("vm-a").uuid, env.watcher.port_binding("vm-b").uuid
    warned = [r.getMessage() for r in caplog.records
              if r.levelno == logging.WARNING and "claimed by several ports" in r.getMessage()]
    assert len(warned) == 1 and a in warned[0] and b in warned[0], warned
    assert "port vm-a" in warned[0] and "port vm-b" in warned[0]
    env.central.nbctl("lsp-del", "vm-a")
    assert env.exposed() == {"172.24.4.10/32": (K.PROVIDER_VM, "br-ex", "vm-b")}
    assert any("handed over" in r.getMessage() and a in r.getMessage() and b in r.getMessage()
               for r in caplog.records)


def test_bridge_mapping_to_missing_bridge_then_created(env):
    env.ovs.vsctl("set", "open", ".", "external_ids:ovn-bridge-mappings=public:br-ex,physnet2:br-ex3")
    env.vm("p2", "pvm2", "fa:16:3e:00:00:02 192.0.2.10")
    env.start()
    env.bind("pvm2", "ch1")
    s = env.state()
    assert not s.exposures
    assert any("br-ex3 does not exist" in p.reason for p in s.problems)
    env.ovs.add_bridge("br-ex3")
    wait_for(lambda: "br-ex3" in env.watcher.local_ovs().bridges, "watcher saw br-ex3")
    assert env.exposed() == {"192.0.2.10/32": (K.PROVIDER_VM, "br-ex3", "pvm2")}
    assert env.causes["LocalOvs"] >= 1
    assert {(b.name, b.table) for b in env.state().bridges} == {("br-ex", 200), ("br-ex3", 201)}


def test_missing_system_id_is_a_clear_startup_error(env):
    env.ovs.vsctl("remove", "open", ".", "external_ids", "system-id")
    from ovnbgp.ovn.watcher import OvnError

    w = OvnWatcher(env.cfg())
    with pytest.raises(OvnError, match="system-id"):
        w.start(timeout=WAIT)


def test_wait_for_port_up(env):
    env.vm("public", "pvm1", "fa:16:3e:00:00:01 172.24.4.10")
    env.start()
    env.bind("pvm1", "ch1")
    assert "172.24.4.10/32" in env.exposed()
    env.central.sbctl("set", "Port_Binding", env.watcher.port_binding("pvm1").uuid, "up=false")
    assert env.exposed() == {}  # bound but not wired yet: advertising it would black-hole


# --- connections ----------------------------------------------------------------------------------


def test_clustered_remote_list_with_a_dead_member_and_tcp(env):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env.central.appctl("ovnsb_db", "ovsdb-server/add-remote", f"ptcp:{port}:127.0.0.1")
    env.vm("public", "pvm1", "fa:16:3e:00:00:01 172.24.4.10")
    env.start(sb_remotes=("tcp:127.0.0.1:1", f"tcp:127.0.0.1:{port}"))
    env.bind("pvm1", "ch1")
    assert env.exposed() == {"172.24.4.10/32": (K.PROVIDER_VM, "br-ex", "pvm1")}
    assert env.watcher.connected


def test_lost_sb_keeps_the_model_and_resyncs_on_reconnect(env):
    env.vm("public", "pvm1", "fa:16:3e:00:00:01 172.24.4.10")
    env.start()
    env.bind("pvm1", "ch1")
    before = env.state()
    assert before.exposures

    # A forced reconnect (same DB): the watcher re-reads and asks the loop for a full resync.
    env.central.appctl("ovnsb_db", "ovsdb-server/reconnect")
    wait_for(lambda: env.resyncs, "a resync was requested")
    wait_for(lambda: env.watcher.connected, "reconnected")
    assert env.state() == before

    # The SB server goes away: nothing is cleared while it is gone.
    env.central.daemons["ovsdb-server-sb"].stop()
    wait_for(lambda: not env.watcher.sb_connected, "the watcher noticed the SB is gone")
    # ... and said so (the agent's loop does not poll the connections)
    wait_for(lambda: env.connections and env.connections[-1] == (False, True), "on_connection")
    time.sleep(1.0)
    assert desired_state(env.watcher.snapshot(), env.watcher.cfg) == before
    assert env.watcher.ovs_connected and not env.watcher.connected

    # It comes back empty (a rebuilt DB): northd refills it with new rows, nothing is bound.
    resyncs = len(env.resyncs)
    env.central._start_db("sb", env.central.sb_schema, WAIT)
    wait_for(lambda: env.watcher.connected, "reconnected to the new SB", timeout=30)
    wait_for(lambda: env.connections[-1] == (True, True), "on_connection after the reconnect")
    wait_for(lambda: len(env.resyncs) > resyncs, "a resync was requested after the reconnect")
    env.central.sync()
    # (pvm1 is unbound: outside this chassis' monitor condition, so look in the SB itself)
    wait_for(lambda: env.central.sbctl("--bare", "--columns=_uuid", "find", "Port_Binding",
                                       "logical_port=pvm1").strip(), "northd re-created pvm1")
    env.central.sbctl("chassis-add", "ch1", "geneve", "127.0.0.1")
    assert env.exposed() == {}
    env.bind("pvm1", "ch1")
    assert env.exposed() == {"172.24.4.10/32": (K.PROVIDER_VM, "br-ex", "pvm1")}


@pytest.mark.parametrize("monitor_all", [True, False], ids=["monitor-all", "conditional"])
def test_snapshot_mirrors_the_southbound_exactly(env, monitor_all):
    """The watcher's rows are the SB's rows, column for column (read with ovn-sbctl): all of
    them with ovn.monitor_all, else exactly those inside the monitor condition."""
    import json

    from ovnbgp.model.interest import conditioned
    from ovnbgp.model.records import PORT_BINDING_OPTIONS, PortBindingRow, Snapshot

    env.router()
    env.tenant("t1")
    env.vm("t1", "tvm1", "fa:16:3e:00:02:01 10.0.0.5")
    env.vm("public", "pvm1", "fa:16:3e:00:00:01 172.24.4.10 2001:db8::10")
    env.central.nbctl("lr-nat-add", "r1", "dnat_and_snat", "172.24.4.225", "10.0.0.5", "tvm1",
                      "fa:16:3e:00:00:99")
    env.start(monitor_all=monitor_all)
    env.bind("pvm1", "ch1")
    env.bind("cr-lrp-r1-gw", "ch2")
    env.barrier()

    def val(v):
        if isinstance(v, list) and v and v[0] == "set":
            return [val(x) for x in v[1]]
        if isinstance(v, list) and v and v[0] == "map":
            return {k: x for k, x in v[1]}
        if isinstance(v, list) and v and v[0] == "uuid":
            return v[1]
        return v

    cols = "_uuid,logical_port,type,datapath,mac,chassis,up,options,nat_addresses"
    data = json.loads(env.central.sbctl("--format=json", f"--columns={cols}", "list", "Port_Binding"))
    chassis = json.loads(env.central.sbctl("--format=json", "--columns=_uuid,name", "list", "Chassis"))
    names = {val(u): n for u, n in chassis["data"]}
    want = {}
    for r in data["data"]:
        d = dict(zip(data["headings"], (val(x) for x in r)))
        listify = lambda x: x if isinstance(x, list) else [x]  # noqa: E731  (one-element sets)
        ch = d["chassis"]
        up = d["up"]
        want[d["_uuid"]] = (d["logical_port"], d["type"], d["datapath"], sorted(listify(d["mac"])),
                            names[ch] if isinstance(ch, str) else None,
                            up if isinstance(up, bool) else None,
                            # the mirror keeps the options the model reads (and only those)
                            {k: v for k, v in d["options"].items() if k in PORT_BINDING_OPTIONS},
                            sorted(listify(d["nat_addresses"])))
    snap = env.watcher.snapshot()
    got = {u: (r.logical_port, r.type, r.datapath, sorted(r.mac), r.chassis, r.up, dict(r.options),
               sorted(r.nat_addresses)) for u, r in snap.port_bindings.items()}
    assert len(want) == 9  # 2 localnets, 2 VMs, gateway patch pair + cr-lrp, interface patch pair
    assert snap.chassis_names == set(names.values())
    if monitor_all:
        assert got == want
        return
    rows = {u: PortBindingRow(uuid=u, logical_port=v[0], type=v[1], datapath=v[2], chassis=v[4],
                              options=v[6]) for u, v in want.items()}
    inside = conditioned(Snapshot(local=snap.local, port_bindings=rows)).port_bindings
    assert got == {u: v for u, v in want.items() if u in inside}
    # tvm1 is unbound on a tenant network whose gateway is elsewhere, and nothing of the router
    # concerns this chassis (no VM of its networks is here): only the provider networks and the
    # provider VM bound here are sent
    assert sorted(r.logical_port for r in snap.port_bindings.values()) == sorted(
        v[0] for v in want.values() if v[1] == "localnet" or v[0] == "pvm1")


@pytest.mark.filterwarnings("ignore:ssl.PROTOCOL_TLS is deprecated:DeprecationWarning")  # OVS library
def test_ssl_remote(env, tmp_path):
    """ssl: remotes work (an OVSDB relay serving the SB over SSL with a private CA)."""
    import socket
    import subprocess

    from tests.harness.proc import Daemon

    pki = tmp_path / "pki"
    pki.mkdir()

    def openssl(*args):
        subprocess.run(["openssl", *args], cwd=pki, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
            "-days", "2", "-subj", "/CN=ovnbgp-test-ca")
    for n in ("srv", "cli"):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{n}.key", "-out", f"{n}.csr",
                "-subj", f"/CN={n}")
        openssl("x509", "-req", "-in", f"{n}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", f"{n}.pem", "-days", "2")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    relay = Daemon("ovsdb-relay", [
        "ovsdb-server", f"--remote=pssl:{port}:127.0.0.1", f"--private-key={pki}/srv.key",
        f"--certificate={pki}/srv.pem", f"--ca-cert={pki}/ca.pem", f"--unixctl={tmp_path}/relay.ctl",
        "--no-chdir", f"relay:OVN_Southbound:{env.central.sb_remote}"], tmp_path / "relay.log")

    def listening() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False

    relay.start(listening, WAIT)
    try:
        env.vm("public", "pvm1", "fa:16:3e:00:00:01 172.24.4.10")
        env.start(sb_remotes=(f"ssl:127.0.0.1:{port}",), ssl_key=pki / "cli.key",
                  ssl_cert=pki / "cli.pem", ssl_ca=pki / "ca.pem")
        env.bind("pvm1", "ch1")
        assert env.exposed() == {"172.24.4.10/32": (K.PROVIDER_VM, "br-ex", "pvm1")}
    finally:
        env.stop()
        relay.stop()


def test_desired_command_prints_the_expected_table(env, tmp_path):
    """`ovnbgp desired [--json]` connects read-only and prints kind, prefix, bridge and the
    Port_Binding that causes each exposure."""
    import json
    import subprocess
    import sys

    env.router()
    env.tenant("t1")
    env.vm("public", "pvm1", "fa:16:3e:00:00:01 172.24.4.10 2001:db8::10")
    env.vm("t1", "tvm1", "fa:16:3e:00:02:01 10.0.0.5")
    env.central.nbctl("lr-nat-add", "r1", "dnat_and_snat", "172.24.4.225", "10.0.0.5", "tvm1",
                      "fa:16:3e:00:00:99")
    env.start()
    for port, ch in (("pvm1", "ch1"), ("cr-lrp-r1-gw", "ch1"), ("tvm1", "ch1")):
        env.bind(port, ch)
    env.barrier()
    conf = tmp_path / "ovnbgp.toml"
    conf.write_text(f'[ovn]\nsb_remotes = ["{env.central.sb_remote}"]\novs_remote = "{env.ovs.remote}"\n')
    cli = [sys.executable, "-m", "ovnbgp.cli", "--config", str(conf), "desired"]
    out = subprocess.run([*cli, "--json"], capture_output=True, text=True, timeout=60, check=True)
    data = json.loads(out.stdout)
    uuid = {p: env.watcher.port_binding(p).uuid for p in ("pvm1", "cr-lrp-r1-gw", "tvm1", "lrp-r1-t1")}
    assert data["chassis"] == "ch1"
    assert [(e["kind"], e["prefix"], e["bridge"], e["table"], e["port"], e["port_binding"])
            for e in data["exposures"]] == [
        ("provider-vm", "172.24.4.10/32", "br-ex", 200, "pvm1", uuid["pvm1"]),
        ("provider-vm", "2001:db8::10/128", "br-ex", 200, "pvm1", uuid["pvm1"]),
        ("fip", "172.24.4.225/32", "br-ex", 200, "tvm1", uuid["tvm1"]),
        ("cr-lrp", "172.24.4.146/32", "br-ex", 200, "cr-lrp-r1-gw", uuid["cr-lrp-r1-gw"]),
        ("cr-lrp", "2001:db8::1/128", "br-ex", 200, "cr-lrp-r1-gw", uuid["cr-lrp-r1-gw"]),
        ("tenant-subnet", "10.0.0.0/26", "br-ex", 200, "lrp-r1-t1", uuid["lrp-r1-t1"]),
        ("tenant-subnet", "fd00:10::/64", "br-ex", 200, "lrp-r1-t1", uuid["lrp-r1-t1"]),
        ("tenant-vm", "10.0.0.5/32", "br-ex", 200, "tvm1", uuid["tvm1"]),
    ]
    assert {"dev": "br-ex", "ip": "172.24.4.146", "mac": GW_MAC} in data["neighbours"]

    table = subprocess.run(cli, capture_output=True, text=True, timeout=60, check=True).stdout
    lines = table.splitlines()
    assert lines[0].startswith("chassis ch1: 8 exposures")
    assert lines[1].split() == ["KIND", "PREFIX", "BRIDGE", "TABLE", "PORT", "PORT_BINDING"]
    assert lines[2].split() == ["provider-vm", "172.24.4.10/32", "br-ex", "200", "pvm1", uuid["pvm1"]]
    assert len(lines) == 10

    # OVN unreachable: exit 3 with the reason, nothing printed on stdout
    conf.write_text('[ovn]\nsb_remotes = ["unix:/nonexistent/sb.sock"]\n'
                    f'ovs_remote = "{env.ovs.remote}"\n')
    bad = subprocess.run([*cli, "--timeout", "1"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 3 and not bad.stdout
    assert "OVN Southbound" in bad.stderr and len(bad.stderr.splitlines()) == 1, bad.stderr

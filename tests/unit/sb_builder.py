"""Hand-built Southbound snapshots for unit tests of the model.

The rows look like what ovn-northd 23.03 writes (checked against a real northd, see
tests/integration/test_ovn_model.py): a provider network is a datapath with a localnet port; a
router gateway is a patch pair (router side with options:chassis-redirect-port, switch side
with nat_addresses) plus the chassisredirect port; a router interface is a patch pair whose
switch side has mac ["router"].
"""

from __future__ import annotations

import dataclasses
import uuid as uuidlib
from collections.abc import Iterable

from ovnbgp.model.records import BridgeInfo, LoadBalancerRow, LocalOvs, PortBindingRow, Snapshot

_NS = uuidlib.UUID("6ba7b810-9dad-11d1-80b4-00c04fd430c8")


def uid(name: str) -> str:
    return str(uuidlib.uuid5(_NS, name))


class SbBuilder:
    def __init__(self, system_id: str = "ch1", chassis: Iterable[str] = ("ch1", "ch2"),
                 mappings: dict[str, str] | None = None,
                 bridges: dict[str, BridgeInfo] | None = None):
        self.system_id = system_id
        self.chassis = set(chassis)
        self.mappings = {"public": "br-ex"} if mappings is None else dict(mappings)
        if bridges is None:
            bridges = {b: BridgeInfo(b, "aa:bb:cc:00:00:%02x" % (i + 1),
                                     {f"patch-provnet-{p}-to-br-int": i + 1})
                       for i, (p, b) in enumerate(self.mappings.items())}
        self.bridges = dict(bridges)
        self.rows: dict[str, PortBindingRow] = {}
        self.lbs: dict[str, LoadBalancerRow] = {}

    # -- rows -----------------------------------------------------------------------------

    def add(self, logical_port: str, type: str, datapath: str, **kw) -> str:
        u = uid("pb:" + logical_port)
        self.rows[u] = PortBindingRow(uuid=u, logical_port=logical_port, type=type,
                                      datapath=datapath, **kw)
        return u

    def set(self, logical_port: str, **kw) -> PortBindingRow:
        u = uid("pb:" + logical_port)
        self.rows[u] = dataclasses.replace(self.rows[u], **kw)
        return self.rows[u]

    def remove(self, logical_port: str) -> str:
        u = uid("pb:" + logical_port)
        del self.rows[u]
        return u

    def row(self, logical_port: str) -> PortBindingRow:
        return self.rows[uid("pb:" + logical_port)]

    def provider_network(self, name: str, physnet: str = "public", tag: object = None) -> str:
        """`tag`: the localnet port's VLAN (Neutron's VLAN network type), None for flat."""
        dp = uid("dp:" + name)
        self.add(f"ln-{name}", "localnet", dp, mac=("unknown",), options={"network_name": physnet},
                 tag=tag)
        return dp

    def tenant_network(self, name: str) -> str:
        return uid("dp:" + name)

    def vm(self, name: str, dp: str, *entries: str, chassis: str | None = None,
           up: bool | None = True) -> str:
        return self.add(name, "", dp, mac=tuple(entries), chassis=chassis, up=up)

    def router(self, name: str, gw_dp: str, mac: str, *cidrs: str, chassis: str | None,
               nat: Iterable[str] = ()) -> str:
        """Router `name` with gateway port lrp-NAME-gw on network gw_dp and its cr-lrp."""
        rdp = uid("dp:" + name)
        entry = " ".join([mac, *cidrs])
        self.add(f"lrp-{name}-gw", "patch", rdp, mac=(entry,),
                 options={"chassis-redirect-port": f"cr-lrp-{name}-gw", "peer": f"gw-{name}"})
        self.add(f"gw-{name}", "patch", gw_dp, mac=("router",), options={"peer": f"lrp-{name}-gw"},
                 nat_addresses=tuple(nat))
        self.add(f"cr-lrp-{name}-gw", "chassisredirect", rdp, mac=(entry,), chassis=chassis,
                 up=chassis is not None, options={"distributed-port": f"lrp-{name}-gw"})
        return rdp

    def router_interface(self, router: str, rdp: str, switch_dp: str, ifname: str, mac: str,
                         *cidrs: str) -> str:
        self.add(f"{router}-{ifname}", "patch", switch_dp, mac=("router",),
                 options={"peer": f"lrp-{router}-{ifname}"})
        return self.add(f"lrp-{router}-{ifname}", "patch", rdp, mac=(" ".join([mac, *cidrs]),),
                        options={"peer": f"{router}-{ifname}"})

    def set_nat(self, router: str, *entries: str) -> PortBindingRow:
        return self.set(f"gw-{router}", nat_addresses=tuple(entries))

    def lb(self, name: str, vips: dict[str, str]) -> str:
        """Load balancer `name` (a Southbound Load_Balancer row as northd writes it)."""
        u = uid("lb:" + name)
        self.lbs[u] = LoadBalancerRow(uuid=u, name=name, vips=dict(vips))
        return u

    def remove_lb(self, name: str) -> str:
        u = uid("lb:" + name)
        self.lbs.pop(u, None)
        return u

    # -- snapshot -------------------------------------------------------------------------

    def local(self) -> LocalOvs:
        return LocalOvs(system_id=self.system_id, bridge_mappings=dict(self.mappings),
                        bridges=dict(self.bridges))

    def snapshot(self) -> Snapshot:
        return Snapshot(local=self.local(), port_bindings=dict(self.rows),
                        chassis_names=frozenset(self.chassis), load_balancers=dict(self.lbs))


def resident(port: str) -> str:
    return f'is_chassis_resident("{port}")'

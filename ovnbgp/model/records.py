"""Plain typed records shared by the OVN model and the reconcilers.

`Snapshot` is what the OVN side read (Southbound + local OVS DB), `DesiredState` is what this node
must have. Both are frozen values with ipaddress objects, never raw strings from the DB, so a
reconciler can trust every field. The model (the model, ovnbgp/model/) turns one into the other.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

from ovnbgp.model import kindset

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface


# --- input: what the OVN side read -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PortBindingRow:
    """The Port_Binding columns the model uses, as read from the SB (strings not yet trusted).

    Slotted: the mirror holds one per row (100k on the largest nodes); no __dict__ each."""

    uuid: str
    logical_port: str
    type: str
    datapath: str  # Datapath_Binding uuid
    mac: tuple[str, ...] = ()
    chassis: str | None = None  # Chassis.name the port is bound to, None when unbound
    up: bool | None = None  # None when the column is empty (older OVN)
    options: Mapping[str, str] = field(default_factory=dict)
    nat_addresses: tuple[str, ...] = ()
    external_ids: Mapping[str, str] = field(default_factory=dict)
    tag: object = None  # the VLAN of a localnet port (Neutron's VLAN network), None: untagged


# The Port_Binding options the model reads (topology.py, interest.py, why.py): the watcher's
# mirror keeps only these (ovn/watcher.py); tests/unit/test_lean_rows.py checks the model reads
# no other.
PORT_BINDING_OPTIONS = frozenset({"peer", "distributed-port", "chassis-redirect-port", "network_name"})


@dataclass(frozen=True)
class LoadBalancerRow:
    """The Southbound Load_Balancer columns the model uses (strings not yet trusted): `vips`
    maps "IP[:PORT]" (IPv6 in brackets with a port) to "IP[:PORT],..." backends (docs/load-balancers.md)."""

    uuid: str
    name: str
    vips: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BridgeInfo:
    """A local OVS provider bridge."""

    name: str
    mac: str | None  # the bridge's own MAC (Interface.mac_in_use of its internal port)
    patch_ports: Mapping[str, int] = field(default_factory=dict)  # OVN patch port name -> ofport


@dataclass(frozen=True)
class LocalOvs:
    """What the local OVS DB says about this chassis."""

    system_id: str
    bridge_mappings: Mapping[str, str] = field(default_factory=dict)  # physnet -> bridge, in order
    bridges: Mapping[str, BridgeInfo] = field(default_factory=dict)
    # What made ovn-bridge-mappings unusable (unparsable items, not set, empty): see Bridges.
    mapping_problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class Snapshot:
    """Everything the model needs, read at one point in time."""

    local: LocalOvs
    port_bindings: Mapping[str, PortBindingRow]  # by uuid
    chassis_names: frozenset[str] = frozenset()  # names in the SB Chassis table
    load_balancers: Mapping[str, LoadBalancerRow] = field(default_factory=dict)  # by uuid


# --- output: what this node must have ------------------------------------------------------


class ExposureKind(str, enum.Enum):
    PROVIDER_VM = "provider-vm"
    FIP = "fip"
    CRLRP = "cr-lrp"
    TENANT_SUBNET = "tenant-subnet"
    TENANT_VM = "tenant-vm"
    LB_VIP = "lb-vip"


@dataclass(frozen=True, order=True)
class Exposure:
    """One prefix put on the dummy interface (and so advertised), with the reason for it.

    Host IPs are /32 or /128; a tenant subnet is its CIDR (added to the dummy with the network
    address, which makes the connected route FRR redistributes).
    """

    prefix: IPNetwork
    kind: ExposureKind
    bridge: str
    port: str  # logical port that causes it
    row: str  # Port_Binding uuid that causes it
    vlan: int = 0  # the provider network's VLAN (0: flat): steered through the VLAN device

    @property
    def dev(self) -> str:
        """The device its steering goes through: the bridge, or its VLAN device."""
        return steering_dev(self.bridge, self.vlan)


@dataclass(frozen=True, order=True)
class Rule:
    """`ip rule [to DST] lookup TABLE priority PRIORITY`; dst None means all of `family`."""

    priority: int
    table: int
    dst: IPNetwork | None
    family: int  # 4 or 6


@dataclass(frozen=True, order=True)
class Route:
    """A route in a bridge table: `DST [via GATEWAY] dev DEV [scope link]`."""

    table: int
    dst: IPNetwork  # 0.0.0.0/0 or ::/0 for default
    dev: str
    gateway: IPAddress | None = None
    scope_link: bool = False


@dataclass(frozen=True, order=True)
class Neighbour:
    """A PERMANENT neighbour entry (cr-lrp IP -> MAC) on a bridge."""

    dev: str
    ip: IPAddress
    mac: str  # lower-case aa:bb:cc:dd:ee:ff


@dataclass(frozen=True, order=True)
class ProxyNeighbour:
    """An address a bridge answers neighbour solicitations for (a proxy NDP entry, `ip -6 neigh
    add proxy IP dev BRIDGE`), e.g. the gateway of an IPv6 provider subnet (kernel.ndp_proxy):
    a VM on the provider network resolves its gateway to the bridge, and the node routes."""

    dev: str
    ip: IPAddress


@dataclass(frozen=True, order=True)
class BridgeSetup:
    """A provider bridge the node steers through: its table, its addresses, its sysctls."""

    name: str
    table: int
    addresses: tuple[IPInterface, ...]


@dataclass(frozen=True, order=True)
class FlowSpec:
    """Rewrite dst MAC of IP traffic from OVN's patch port on `bridge` to the bridge's MAC;
    `vlan` > 0: only that VLAN's traffic (a VLAN provider network's, tagged by OVN)."""

    bridge: str
    patch_port: str
    bridge_mac: str
    vlan: int = 0


@dataclass(frozen=True, order=True)
class VlanDevice:
    """The kernel VLAN device `BRIDGE.VID` on a provider bridge, for the VLAN provider networks
    mapped to it: OVN sends their traffic tagged on the bridge, so the node steers it into and
    out of OVN through this device (routes, neighbours, proxy ARP/NDP) instead of the bridge."""

    bridge: str
    vlan: int

    @property
    def name(self) -> str:
        return steering_dev(self.bridge, self.vlan)


def steering_dev(bridge: str, vlan: int) -> str:
    """"br-ex" for a flat network (vlan 0), "br-ex.100" for VLAN 100 (config.vlan_device_name;
    the model only makes VLAN records whose name is valid)."""
    return f"{bridge}.{vlan}" if vlan else bridge


@dataclass(frozen=True, order=True)
class BridgeHold:
    """The bridge data is unusable (`reason`: an unparsable ovn-bridge-mappings, an empty or
    missing one, a mapping to a bridge the local OVS DB does not have). While a desired state
    carries one, the targets keep every object they own for a bridge (device, table) that is
    not among its `bridges`: what was in place stays until valid data says otherwise."""

    reason: str


@dataclass(frozen=True, order=True)
class Problem:
    """An SB/OVS value the model could not use: it was skipped (logged once by ModelCache).

    `row` is the Port_Binding uuid ("" when the problem is in the local OVS DB), `level` a
    logging level name: "debug" for legal OVN values that carry nothing to expose (a `mac`
    entry "unknown"), "warning" for malformed or contradictory data.
    """

    row: str
    port: str
    reason: str
    level: str = "warning"
    waiting: str = ""  # set when the row's exposure waits for something, e.g. "port-up"


@dataclass(frozen=True)
class DesiredState:
    # The per-prefix kinds: frozensets, or the model's KindSets (model/kindset.py), which
    # answer changes() in O(change) between states of one ModelCache.
    exposures: AbstractSet[Exposure] = frozenset()
    rules: AbstractSet[Rule] = frozenset()
    routes: AbstractSet[Route] = frozenset()
    neighbours: AbstractSet[Neighbour] = frozenset()
    bridges: frozenset[BridgeSetup] = frozenset()
    flows: frozenset[FlowSpec] = frozenset()
    proxy_neighbours: frozenset[ProxyNeighbour] = frozenset()
    holds: frozenset[BridgeHold] = frozenset()  # non-empty: bridges no longer mapped are held
    vlans: frozenset[VlanDevice] = frozenset()
    # What the model skipped and why. Not part of equality: two states that expose and steer
    # the same things are the same desired state.
    problems: frozenset[Problem] = field(default=frozenset(), compare=False)
    # waiting_counts() when the model kept them as problems came and went (None: count them).
    waiting: tuple[tuple[str, int], ...] | None = field(default=None, compare=False)

    def waiting_counts(self) -> dict[str, int]:
        """Rows whose exposures wait, by reason (e.g. {"port-up": 2}: bound here, up=false)."""
        if self.waiting is not None:
            return dict(self.waiting)
        out: dict[str, int] = {}
        for p in self.problems:
            if p.waiting:
                out[p.waiting] = out.get(p.waiting, 0) + 1
        return out

    def changes(self, previous: DesiredState, kind: str) -> tuple[AbstractSet, AbstractSet]:
        """(removed, added) records of `kind` ("exposures", "rules", ...) since `previous`:
        O(change) when both come from one ModelCache, set differences otherwise."""
        old, new = getattr(previous, kind), getattr(self, kind)
        d = kindset.delta(old, new)
        return d if d is not None else (old - new, new - old)

    def dummy_prefixes(self) -> frozenset[IPNetwork]:
        return frozenset(e.prefix for e in self.exposures)

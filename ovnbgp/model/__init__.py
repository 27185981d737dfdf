"""The pure desired-state model (package overview): what this chassis must expose through BGP and how it steers it.

All OVN knowledge lives here. Input is a `Snapshot` (Southbound Port_Binding rows, the Chassis
names, the local OVS view) plus the `Config`; output is a `DesiredState` of frozen records with
ipaddress values. No I/O: nothing here reads a DB or touches the node.

API for the daemon
------------------
    state = desired_state(snapshot, cfg)     # the reference: everything from scratch, pure
    cache = ModelCache(snapshot, cfg)        # the same result, kept for incremental updates
    cache.state                              # current DesiredState
    cache.update(Changes(port_bindings={uuid: PortBindingRow or None (deleted)},
                         local=LocalOvs or None (unchanged),
                         chassis_names=frozenset or None (unchanged)))  -> DesiredState
    cache.rebuild(snapshot)                  # full resync (periodic, after a reconnect)
    cache.snapshot()                         # the Snapshot the cache currently reflects

`ModelCache` logs every `Problem` (a row it skipped, with the row's uuid) once, when it
appears; `desired_state()` only returns them in `DesiredState.problems`. A ModelCache is not
thread-safe: use it from the reconcile loop's thread only (OvnWatcher.changes() is safe to call
from there). After the first build, `gc.freeze()` halves later full computations at 10k ports
(bench/bench_model.py): the collector stops re-scanning the long-lived IDL rows.

Not modelled: gateway routers pinned with options:chassis (l3gateway ports; Neutron uses
distributed gateway ports), Port_Binding.additional_chassis during live migration (the port
counts where `chassis` says), virtual/external/localport ports.

What is exposed (reference design, v4 and v6)
---------------------------------------------
- provider VM IPs: a port of type "" on a network with a localnet port whose physnet is in
  ovn-bridge-mappings (bridge from the mapping), bound to this chassis;
- floating IPs: a `nat_addresses` entry of a patch port on a provider network whose
  `is_chassis_resident("P")` port P is bound here (a VM port: DVR FIP; the cr-lrp: the router's
  centralized FIPs; the cr-lrp's own IPs there are exposed as cr-lrp, not twice);
- cr-lrp IPs when the cr-lrp (type "chassisredirect") is bound here, with `CRLRP-IP dev BR scope
  link` in the bridge table and a permanent neighbour CRLRP-IP -> cr-lrp MAC;
- the tenant subnet CIDRs of that router's interfaces (patch ports on the router datapath whose
  peer is on a network without a localnet port), each with `CIDR via CRLRP-IP dev BR`;
- tenant VM IPs (ports of type "" bound on any chassis) inside those subnets.
- load-balancer VIPs (kind lb-vip): an address of those cr-lrp-resident nat_addresses entries
  that a Southbound Load_Balancer row lists as a VIP, while some load balancer lists a member
  for it (model/lb.py, docs/load-balancers.md); an address inside the router's own tenant
  subnets there is never a host route.
Tenant subnets (and so their VM IPs) pass the `[exposure]` policy first (model/policy.py:
tenant_networks, tenant_prefixes, tenant_address_scopes, tenant_ipv6_gua; the defaults let every
one through); a refused one is a Problem "filtered by policy" of its router interface row.
`model/why.py` answers "why is this address (not) exposed" from the same rules (`ovnbgp explain`).
Every existing provider bridge also gets a proxy NDP entry for each `cfg.kernel.ndp_proxy`
address (the IPv6 provider gateways: OVN's Southbound does not carry a subnet's gateway).
Steering follows `cfg.kernel.steering`: "rules" = one `ip rule to PREFIX lookup TABLE` per
exposed prefix and `default dev BR scope link` in the table; "table" = one rule per bridge table
and family (no dst) and `IP dev BR scope link` host routes instead of the default route.

Waiting for ports: with `cfg.ovn.wait_for_port_up` a VM port (type "", including the resident
port of a DVR floating IP and a tenant VM) counts only once `Port_Binding.up` is true, i.e.
ovn-controller has wired it; exposing it earlier advertises a black hole. An empty `up` column
(OVN before 21.03) counts as up. cr-lrps are exposed as soon as they are bound (ovn-controller
does not set `up` on them on every version).

Bad input: a row the model cannot parse (bad MAC/IP, keyword entries, a chassis missing from the
Chassis table, a bridge mapping to a missing bridge, ...) is skipped and reported as a Problem;
the rest of the model is unaffected. Two different ports claiming the same prefix: the one
already exposed keeps it (a conflicting claim never takes an established exposure away), the
newcomer is refused with a warning naming both rows, and the prefix is handed over when the
owner's claim goes; with no owner (one batch, a cold start, an agent restart) the lowest
Port_Binding uuid wins (model/aggregate.py). `desired_state(snapshot, cfg, established=...)`
takes the exposures before, the only history the model keeps.

Incremental keys
----------------
The cache splits the result into contributions, each recomputed as a whole:
- ("pb", uuid): what one VM port (provider/tenant VM) or one patch port with nat_addresses (FIPs)
  exposes;
- ("router", datapath uuid): the cr-lrps of one router bound here, their routes/neighbours and
  the router's tenant subnets;
- ("bridges",): bridge setups, default routes or table rules, OVS flows;
- ("topology",): problems found while deriving networks/routers.
A change to a VM row recomputes its own key plus the patch ports whose nat_addresses name it:
O(1) at any scale. A change to a localnet/patch/chassisredirect row in anything but
`nat_addresses` (network or router created, gateway failover) rebuilds the small
network/router topology and recomputes only the keys whose inputs changed. A chassis joining or
leaving re-evaluates only the rows bound to that chassis name (usually none: at cloud scale
chassis come and go elsewhere all the time). A change to the local OVS view rebuilds everything.
"""

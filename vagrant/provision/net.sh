#!/usr/bin/env bash
# net.sh HOST: the host's fabric networking, from vagrant/topology.json (idempotent).
# NICs are found by the MAC the topology gives them and renamed after the host at the other
# end; a node's NIC becomes a port of the OVS bridge br-<leaf>, which carries the link address
# and the node's loopback (OVS must run); addresses, routes, forwarding sysctls (routers).
. "$(dirname "$0")/common.sh"
need_host "$@"
labtool apply-net "$LAB_HOST"
say "network of $LAB_HOST configured"

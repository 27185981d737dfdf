# Sourced by the lab's provisioning scripts (vagrant/provision/*.sh).
#
# The same scripts provision the Vagrant VMs (as root, systemd running) and the vm test tier's
# hosts (network namespaces inside User-Mode Linux, run by tests/lab with `ip netns exec`).
# Everything host-specific comes from vagrant/topology.json through labtool.py.
#
# Environment (all optional; the defaults are those of a Vagrant VM):
#   LAB_TOPOLOGY     topology file (default vagrant/topology.json)
#   LAB_HOSTS        comma-separated hosts present (default all); links to others are skipped
#   LAB_ROLE         the host's role, if the caller knows it (saves a lookup)
#   LAB_NO_SERVICES  1: touch no systemd unit (the vm tier starts the daemons itself)
#   LAB_DATAPATH     OVS datapath type of the node's bridges: system (default) or netdev
#   LAB_OVS_DB       ovs-vsctl --db of the node (default OVS's own socket)
#   LAB_SB_REMOTE    OVN Southbound remote of the nodes (default tcp:<central mgmt>:6642)
#   LAB_ETC          where a node's ovnbgp.toml and FRR snippet go (default /etc/ovnbgp)
#   LAB_FRR_DIR      FRR's config dir: frr.conf, daemons (default /etc/frr)
#   LAB_FRR_VTY      a node's FRR vty socket dir, for its ovnbgp config (default FRR's own)
#   LAB_STATE_DIR    a node's ovnbgp state/lock/rt_tables dir (default ovnbgp's own)
#   LAB_LOG_LEVEL    a node's ovnbgp log level (default info)
#   OVNBGP           the ovnbgp command (default: on PATH, else <repo>/.venv/bin/ovnbgp)
set -euo pipefail

PROVISION_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$PROVISION_DIR/../.." && pwd)

say() { echo "lab[$(basename "$0")${LAB_HOST:+ $LAB_HOST}]: $*"; }

labtool() { python3 "$PROVISION_DIR/labtool.py" "$@"; }

services() { [ "${LAB_NO_SERVICES:-0}" != 1 ]; }

ovnbgp_cmd() {
    if [ -n "${OVNBGP:-}" ]; then
        echo "$OVNBGP"
    elif command -v ovnbgp >/dev/null; then
        command -v ovnbgp
    else
        echo "$REPO/.venv/bin/ovnbgp"
    fi
}

need_host() {
    if [ $# -lt 1 ] || [ -z "$1" ]; then
        echo "usage: $(basename "$0") HOST" >&2
        exit 2
    fi
    LAB_HOST=$1
}

#!/usr/bin/env bash
# ovn-node.sh HOST: make the node an OVN chassis and write its ovnbgp config.
# Open_vSwitch external_ids for ovn-controller (system-id = HOST, encap IP = the node's
# loopback, bridge mapping public:br-ex), br-ex, then <LAB_ETC>/ovnbgp.toml and the FRR
# snippet it names. Vagrant: (re)starts ovn-controller. Run net.sh first.
. "$(dirname "$0")/common.sh"
need_host "$@"
etc=${LAB_ETC:-/etc/ovnbgp}
opts=(--etc "$etc" --log-level "${LAB_LOG_LEVEL:-info}")
[ -n "${LAB_SB_REMOTE:-}" ] && opts+=(--sb-remote "$LAB_SB_REMOTE")
[ -n "${LAB_OVS_DB:-}" ] && opts+=(--ovs-remote "$LAB_OVS_DB")
[ -n "${LAB_FRR_DIR:-}" ] && opts+=(--frr-dir "$LAB_FRR_DIR")
[ -n "${LAB_FRR_VTY:-}" ] && opts+=(--frr-vty "$LAB_FRR_VTY")
[ -n "${LAB_STATE_DIR:-}" ] && opts+=(--state-dir "$LAB_STATE_DIR")
# ovs-vsctl for ovn-controller + br-ex, then <etc>/frr-snippet.conf and <etc>/ovnbgp.toml.
labtool node-setup "$LAB_HOST" "${opts[@]}"
if services; then
    systemctl enable ovn-controller
    systemctl restart ovn-controller
fi
say "chassis $LAB_HOST set up; ovnbgp config in $etc/ovnbgp.toml"

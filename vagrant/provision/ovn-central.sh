#!/usr/bin/env bash
# ovn-central.sh HOST (Vagrant): the OVN NB/SB databases and ovn-northd, listening on TCP for
# the nodes (NB 6641, SB 6642 on every address; the lab has no TLS). The vm tier runs its own
# central in the root namespace (tests/harness/ovn.py) with unix sockets.
. "$(dirname "$0")/common.sh"
need_host "$@"
if services; then
    systemctl enable ovn-central
    systemctl restart ovn-central
fi
mapfile -t listen < <(labtool ovn-listen)
for _ in $(seq 60); do
    ovn-nbctl --timeout=5 show >/dev/null 2>&1 && ovn-sbctl --timeout=5 show >/dev/null 2>&1 && break
    sleep 1
done
ovn-nbctl set-connection "${listen[0]}"
ovn-sbctl set-connection "${listen[1]}"
say "OVN central: NB on ${listen[0]}, SB on ${listen[1]}"

#!/usr/bin/env bash
# agent.sh HOST (Vagrant nodes): install and start the ovnbgp systemd unit. The vm tier starts
# the agent itself (`ip netns exec HOST ovnbgp --config ... run`).
. "$(dirname "$0")/common.sh"
need_host "$@"
if ! services; then
    say "LAB_NO_SERVICES=1: the agent is started by the caller"
    exit 0
fi
ln -sf "$(ovnbgp_cmd)" /usr/local/bin/ovnbgp
install -m 644 "$REPO/packaging/ovnbgp.service" /etc/systemd/system/ovnbgp.service
systemctl daemon-reload
systemctl enable ovnbgp
if ! systemctl restart ovnbgp; then
    say "WARNING: ovnbgp did not start; see journalctl -u ovnbgp"
fi

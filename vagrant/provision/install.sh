#!/usr/bin/env bash
# install.sh ROLE (Vagrant): the Debian packages a host of that role needs; on nodes also a
# venv with ovnbgp from the synced repository. The vm tier has all of this already.
. "$(dirname "$0")/common.sh"
role=${1:?usage: install.sh ROLE}
pkgs=(iproute2 python3 iputils-ping tcpdump)
case $role in
    spine|leaf) pkgs+=(frr frr-pythontools) ;;
    node) pkgs+=(frr frr-pythontools openvswitch-switch ovn-host python3-venv python3-pip
                 python3-openvswitch) ;;
    central) pkgs+=(ovn-central) ;;
    outside) ;;
    *) echo "install.sh: unknown role $role" >&2; exit 2 ;;
esac
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
if [ "$role" = node ]; then
    systemctl enable --now openvswitch-switch
    if [ ! -x "$REPO/.venv/bin/python" ]; then
        python3 -m venv --system-site-packages "$REPO/.venv"
    fi
    "$REPO/.venv/bin/pip" install -q -e "$REPO"
fi
say "packages for $role installed"

#!/usr/bin/env bash
# frr.sh HOST: write the host's FRR config (and enable bgpd, bfdd in the daemons file), restart FRR.
# Spine and leaves: the fabric config from labtool. Nodes: exactly what ovnbgp renders from the
# node's ovnbgp.toml (written by ovn-node.sh), so that the agent, when it starts, finds FRR
# already running its config and reloads nothing. With LAB_NO_SERVICES=1 only the files are
# written (the vm tier applies them to its own FRR instance).
. "$(dirname "$0")/common.sh"
need_host "$@"
LAB_ROLE=${LAB_ROLE:-$(labtool role "$LAB_HOST")}
frr_dir=${LAB_FRR_DIR:-/etc/frr}
mkdir -p "$frr_dir"
new=$frr_dir/frr.conf.lab-new
case $LAB_ROLE in
    spine|leaf)
        labtool frr-config "$LAB_HOST" >"$new" ;;
    node)
        "$(ovnbgp_cmd)" --config "${LAB_ETC:-/etc/ovnbgp}/ovnbgp.toml" frr render >"$new" ;;
    *)
        say "$LAB_ROLE $LAB_HOST runs no FRR"
        exit 0 ;;
esac
if getent passwd frr >/dev/null; then
    chown frr:frr "$new"
fi
chmod 640 "$new"
mv -f "$new" "$frr_dir/frr.conf"
daemons=$frr_dir/daemons
for d in $(labtool frr-daemons); do   # bgpd, and bfdd when the topology turns BFD on
    if [ -f "$daemons" ] && grep -q "^$d=" "$daemons"; then
        sed -i "s/^$d=.*/$d=yes/" "$daemons"
    else
        echo "$d=yes" >>"$daemons"
    fi
done
zopts=$(labtool zebra-options)
if [ "$LAB_ROLE" = node ] && [ -n "$zopts" ] && ! grep -q "^zebra_options=.* -r " "$daemons"; then
    if grep -q '^zebra_options=' "$daemons"; then
        sed -i "s/^zebra_options=\"\(.*\)\"/zebra_options=\"\1 $zopts \"/" "$daemons"
    else
        echo "zebra_options=\" $zopts \"" >>"$daemons"
    fi
fi
if services; then
    systemctl enable frr
    systemctl restart frr
fi
say "FRR config of $LAB_ROLE $LAB_HOST written to $frr_dir/frr.conf"

#!/bin/bash
# PID 1 of the User-Mode Linux guest started by tests/vm/uml.py (see that module).
#
# The root file system is the host's own, through hostfs, read-only. This script makes the
# guest usable as a test machine: kernel file systems, tmpfs wherever programs write, modules
# for `modprobe`, a writable /etc (overlay), a hostname, lo up, FRR's run directories. Then it
# runs the command uml.py left in its control directory, writes the exit status back to the
# host through the one writable hostfs mount (/mnt), and powers off.
#
# Inputs: the kernel passes `ovnbgp_vm_dir=<host dir>` from the command line as an environment
# variable. In <host dir>/.uml/ uml.py wrote: argv.0 and env.0 (NUL-separated), cwd, hostname,
# expose.0 (host paths hidden by the tmpfs mounts below that must stay visible), guest.fstab.
# Outputs in <host dir>/.uml/: status (the command's exit status), timing (guest uptimes).
#
# No `set -e`: every step is checked, and any failure ends in poweroff so the host never waits
# for a guest stuck at a shell. A missing status file tells the host that set-up failed.

export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export LC_ALL=C.UTF-8

OUT=/mnt
CTL=$OUT/.uml

uptime_now() { local u _; read -r u _ </proc/uptime; echo "$u"; }

halt() {
    sync
    poweroff -f -d >/dev/null 2>&1
    echo o >/proc/sysrq-trigger
    sleep 10
}

die() {
    echo "vm-init: FAILED: $*" >&2
    halt
}

must() {
    "$@" || die "$*"
}

# Kernel file systems, the one writable host directory, then scratch space (guest.fstab);
# everything else stays the host's read-only tree. devtmpfs is already on /dev (the kernel
# mounts it: DEVTMPFS_MOUNT).
must mount -t proc proc /proc
init_start=$(uptime_now)

# The console is a tty: without this every line reaches the host as CRLF.
stty -onlcr 2>/dev/null

[ -n "$ovnbgp_vm_dir" ] || die "no ovnbgp_vm_dir= on the kernel command line"
must mount -t hostfs none "$OUT" -o "$ovnbgp_vm_dir"
[ -d "$CTL" ] || die "$ovnbgp_vm_dir/.uml is missing"
must mount -a -T "$CTL/guest.fstab"

# modprobe looks in /lib/modules/$(uname -r) (/lib is /usr/lib on Debian 12); the UML modules
# live in /usr/lib/uml/modules. A tmpfs on /lib/modules holds the link. Hosts without any
# kernel modules (containers, these machines) have no /lib/modules to mount on, and the root is
# read-only: there /usr/lib gets a tmpfs overlay first so the directory can be made.
release=$(uname -r)
moddir=/usr/lib/uml/modules/$release
[ -f "$moddir/modules.dep" ] || die "no UML modules in $moddir"
must insmod "$moddir/kernel/fs/overlayfs/overlay.ko"
must mkdir -p /run/ovnbgp-vm
overlay() {  # overlay <dir> <name>: <dir> becomes writable, changes kept in tmpfs
    must mkdir -p "/run/ovnbgp-vm/$2-upper" "/run/ovnbgp-vm/$2-work"
    must mount -t overlay overlay \
        -o "lowerdir=$1,upperdir=/run/ovnbgp-vm/$2-upper,workdir=/run/ovnbgp-vm/$2-work" "$1"
}
if [ ! -d /lib/modules ]; then
    overlay /usr/lib usr-lib
    must mkdir /lib/modules
fi
must mount -t tmpfs -o mode=755 tmpfs /lib/modules
must ln -s "$moddir" "/lib/modules/$release"

# A writable /etc: the host's /etc under a tmpfs upper layer.
overlay /etc etc

# Host paths (the repository, the venv) that the tmpfs mounts above hid, e.g. a clone in /tmp.
if [ -s "$CTL/expose.0" ]; then
    mapfile -t -d '' expose <"$CTL/expose.0"
    for p in "${expose[@]}"; do
        must mkdir -p "$p"
        must mount -t hostfs -o "ro,$p" none "$p"
    done
fi

# Identity and network basics (FRR's tools fail with hostname "(none)", and lo is down).
name=$(<"$CTL/hostname")
name=${name:-ovnbgp-vm}
must hostname "$name"
echo "$name" >/etc/hostname
printf '127.0.1.1\t%s\n' "$name" >>/etc/hosts
must ip link set lo up

# FRR without systemd.
mkdir -p /run/frr /var/tmp/frr /run/openvswitch /run/ovn
chown frr:frr /run/frr /var/tmp/frr 2>/dev/null  # no frr user: FRR tests will say so

[ -s "$CTL/argv.0" ] || die "$CTL/argv.0 is missing or empty"
mapfile -t -d '' argv <"$CTL/argv.0"
envs=()
[ -s "$CTL/env.0" ] && mapfile -t -d '' envs <"$CTL/env.0"
cwd=$(<"$CTL/cwd")
cd "${cwd:-/}" || die "cannot chdir to $cwd"

cmd_start=$(uptime_now)
# Through a pipe, as in CI: the console is a tty, and tools that see one (pytest's progress
# with carriage returns, colours) would behave differently from a CI run.
env -i "${envs[@]}" "${argv[@]}" </dev/null 2>&1 | cat
status=${PIPESTATUS[0]}
cmd_end=$(uptime_now)

printf 'init_start=%s\ncmd_start=%s\ncmd_end=%s\n' "$init_start" "$cmd_start" "$cmd_end" \
    >"$CTL/timing"
echo "$status" >"$CTL/status.tmp" && mv "$CTL/status.tmp" "$CTL/status"
halt

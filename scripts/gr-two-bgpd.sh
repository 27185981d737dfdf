#!/bin/bash
# Two bgpd (FRR 8.4) in two netns joined by a veth: a restarting speaker R (announces
# 192.0.2.1/32 from lo) and a helper H. Starts both, SIGKILLs R's daemons, starts them again,
# and prints H's kernel route for 192.0.2.1 on every change, then both sides' GR state/logs.
# Needs root, FRR installed; uses /tmp/grx/b and netns grx-r/grx-h (replaced on each run).
# RCONF2=<file> LATE=<s>: restart R with RCONF2, then add "redistribute connected" LATE s later.
# ROPTS/ZOPTS: extra bgpd / zebra options of R (zebra default: -r -K 120).
# usage: scripts/gr-two-bgpd.sh scripts/gr-two-bgpd/speaker.conf scripts/gr-two-bgpd/helper.conf
set -u
RCONF=$1; HCONF=$2; ROPTS=${ROPTS:-}; ZOPTS=${ZOPTS:--r -K 120}
B=/tmp/grx/b
for f in $B/*/*.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null; done  # a previous run's
rm -rf $B; mkdir -p $B/R $B/H; chown -R frr:frr /tmp/grx
ip netns del grx-r 2>/dev/null; ip netns del grx-h 2>/dev/null
ip netns add grx-r; ip netns add grx-h
ip -n grx-r link set lo up; ip -n grx-h link set lo up
ip link add ve-r netns grx-r type veth peer name ve-h netns grx-h
ip -n grx-r addr add 10.99.0.1/24 dev ve-r; ip -n grx-h addr add 10.99.0.2/24 dev ve-h
ip -n grx-r link set ve-r up; ip -n grx-h link set ve-h up
ip -n grx-r addr add 192.0.2.1/32 dev lo
start() { # name ns extra-bgpd-opts
  local n=$1 ns=$2; shift 2
  for d in zebra bgpd bfdd; do : > $B/$n/$d.conf; done; : > $B/$n/vtysh.conf; chown frr:frr $B/$n/*
  local zo=""; [ $n = R ] && zo="$ZOPTS"
  ip netns exec $ns /usr/lib/frr/zebra -d -N $n -i $B/$n/zebra.pid --vty_socket $B/$n -f $B/$n/zebra.conf -u frr -g frr -P 0 --log file:$B/$n/zebra.log -z $B/$n/zserv.api $zo
  sleep 0.5
  ip netns exec $ns /usr/lib/frr/bgpd -d -N $n -i $B/$n/bgpd.pid --vty_socket $B/$n -f $B/$n/bgpd.conf -u frr -g frr -P 0 --log file:$B/$n/bgpd.log -z $B/$n/zserv.api "$@"
  ip netns exec $ns /usr/lib/frr/bfdd -d -N $n -i $B/$n/bfdd.pid --vty_socket $B/$n -f $B/$n/bfdd.conf -u frr -g frr -P 0 --log file:$B/$n/bfdd.log -z $B/$n/zserv.api
  for i in $(seq 50); do [ -S $B/$n/bgpd.vty ] && break; sleep 0.1; done
}
cp $RCONF $B/R/frr.conf; cp $HCONF $B/H/frr.conf; chown frr:frr $B/*/frr.conf
start R grx-r $ROPTS; vtysh --vty_socket $B/R --config_dir $B/R -b >/dev/null
start H grx-h; vtysh --vty_socket $B/H --config_dir $B/H -b >/dev/null
vh() { vtysh --vty_socket $B/H --config_dir $B/H -c "$@"; }
vr() { vtysh --vty_socket $B/R --config_dir $B/R -c "$@"; }
for i in $(seq 60); do ip -n grx-h route show 192.0.2.1 | grep -q . && break; sleep 0.5; done
echo "== initial: H route: $(ip -n grx-h route show 192.0.2.1)"
vh "show bgp neighbors 10.99.0.1" | grep -iE "graceful|preserv|Address families by|F bit|restart" | head -20
vr "show bgp neighbors 10.99.0.2" | grep -iE "graceful|preserv|Address families by|F bit|restart" | head -20
sleep 2
echo "== kill R"
kill -9 $(cat $B/R/bfdd.pid) $(cat $B/R/bgpd.pid) $(cat $B/R/zebra.pid); T0=$(date +%s.%N)
sleep 3
[ -n "${RCONF2:-}" ] && { cp $RCONF2 $B/R/frr.conf; chown frr:frr $B/R/frr.conf; }
start R grx-r $ROPTS; vtysh --vty_socket $B/R --config_dir $B/R -b >/dev/null
[ -n "${RCONF2:-}" ] && ( sleep ${LATE:-3}; vtysh --vty_socket $B/R --config_dir $B/R -c "conf t" -c "router bgp 65001" -c "address-family ipv4 unicast" -c "redistribute connected"; echo "late redistribute at +$(echo "$(date +%s.%N) - $T0" | bc | cut -c1-5)" ) &
echo "restarted R at +$(echo "$(date +%s.%N) - $T0" | bc)"
prev=x
for i in $(seq 200); do
  r=$(ip -n grx-h route show 192.0.2.1 | head -1)
  s=$(vh "show bgp ipv4 unicast 192.0.2.1/32" 2>/dev/null | grep -oE "stale|Stale|STALE" | head -1)
  st="${r:-NONE} ${s}"
  if [ "$st" != "$prev" ]; then echo "+$(echo "$(date +%s.%N) - $T0" | bc | cut -c1-5) H: $st"; prev=$st; fi
  sleep 0.05
done
vh "show bgp neighbors 10.99.0.1" | grep -iE "graceful|preserv|Address families by|End-of-RIB|restart" | head -30
grep -iE "preserv|F bit|F-bit|Restart|stale|EOR|End-of-RIB" $B/H/bgpd.log | tail -30
echo ---- R log; grep -iE "F bit|F-bit|GR|EOR|End-of-RIB|defer" $B/R/bgpd.log | tail -30
# clean up: the daemons by their pid files, then the namespaces
for n in R H; do for d in bfdd bgpd zebra; do
  [ -f $B/$n/$d.pid ] && kill $(cat $B/$n/$d.pid) 2>/dev/null; done; done
sleep 1; ip netns del grx-r; ip netns del grx-h

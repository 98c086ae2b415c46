#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Make the captures of tests/data with tcpdump on a veth pair between two
# network namespaces created here (and removed at the end). Needs root,
# iproute2, tcpdump, busybox and python3. Addresses are documentation
# ranges (192.0.2.0/24, 2001:db8::/64), reachable only inside the pair.
#
#   basic-v4.pcap  ARP, ping, a TCP connection carrying a few lines
#   ipv6-nd.pcap   IPv6 duplicate address detection, neighbour discovery,
#                  router solicitation, MLD, ping6
#   tagged.pcap    frames written on the wire with AF_PACKET (send_frames.py):
#                  802.1Q and 802.1ad tags, priority tags, QinQ, link-local
#                  groups, bad source addresses, truncated tags, unknown
#                  unicast, multicast with and without subscribers
#   tagged-ad.pcap a copy of tagged.pcap, replayed behind an 802.1ad uplink
#
# Then tests/data/expect.py writes expected/<capture>/ from each capture and
# its .conf.
#
# usage: tests/data/make_captures.sh   (from anywhere; writes beside itself)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
A=vdxcap-a
B=vdxcap-b
BB=$(command -v busybox)

cleanup() {
  [ -n "${tcpdump_pid:-}" ] && kill "$tcpdump_pid" 2>/dev/null || true
  ip netns del "$A" 2>/dev/null || true
  ip netns del "$B" 2>/dev/null || true
}
trap cleanup EXIT
cleanup

ip netns add "$A"
ip netns add "$B"
ip link add vdx0 netns "$A" type veth peer name vdx1 netns "$B"
ip -n "$A" link set vdx0 address 02:00:00:00:00:0a
ip -n "$B" link set vdx1 address 02:00:00:00:00:0b
for ns in "$A" "$B"; do
  ip -n "$ns" link set lo up
done
# Without offloads, the capture holds what went on the wire, frame by frame.
ip netns exec "$A" ethtool -K vdx0 tso off gso off gro off tx off rx off >/dev/null 2>&1 || true
ip netns exec "$B" ethtool -K vdx1 tso off gso off gro off tx off rx off >/dev/null 2>&1 || true

start_capture() {
  ip netns exec "$A" tcpdump -i vdx0 -U -n -s 0 -w "$1" 2>/dev/null &
  tcpdump_pid=$!
  sleep 1
}
stop_capture() {
  sleep 1
  kill "$tcpdump_pid"
  wait "$tcpdump_pid" 2>/dev/null || true
  tcpdump_pid=
}

# ---- basic-v4: ARP, ping, TCP ---------------------------------------------
ip netns exec "$A" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
ip netns exec "$B" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
ip netns exec "$A" sysctl -qw net.ipv6.conf.default.disable_ipv6=1
ip netns exec "$B" sysctl -qw net.ipv6.conf.default.disable_ipv6=1
ip -n "$A" addr add 192.0.2.1/24 dev vdx0
ip -n "$B" addr add 192.0.2.2/24 dev vdx1
# tcpdump needs the interface up; it has no carrier until the peer is up.
ip -n "$A" link set vdx0 up
start_capture "$here/basic-v4.pcap"
ip -n "$B" link set vdx1 up
sleep 1
ip netns exec "$A" "$BB" arping -c 1 -I vdx0 192.0.2.2 >/dev/null || true
ip netns exec "$A" "$BB" ping -c 2 -W 1 192.0.2.2 >/dev/null
ip netns exec "$B" "$BB" nc -l -p 5000 >/dev/null &
server=$!
sleep 0.5
printf 'hello over tcp\nsecond line\n' | ip netns exec "$A" "$BB" nc -w 1 192.0.2.2 5000 || true
wait "$server" 2>/dev/null || true
stop_capture
ip -n "$A" link set vdx0 down
ip -n "$B" link set vdx1 down
ip -n "$A" addr flush dev vdx0
ip -n "$B" addr flush dev vdx1

# ---- ipv6-nd: DAD, ND, RS, MLD, ping6 --------------------------------------
for ns in "$A" "$B"; do
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=0
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.default.disable_ipv6=0
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.router_solicitation_delay=0 2>/dev/null || true
done
ip netns exec "$A" sysctl -qw net.ipv6.conf.vdx0.disable_ipv6=0
ip netns exec "$B" sysctl -qw net.ipv6.conf.vdx1.disable_ipv6=0
ip netns exec "$A" sysctl -qw net.ipv6.conf.vdx0.router_solicitations=1
ip netns exec "$B" sysctl -qw net.ipv6.conf.vdx1.router_solicitations=1
ip -n "$A" addr add 2001:db8::a/64 dev vdx0
ip -n "$B" addr add 2001:db8::b/64 dev vdx1
# tcpdump needs the interface up; it has no carrier until the peer is up.
ip -n "$A" link set vdx0 up
start_capture "$here/ipv6-nd.pcap"
ip -n "$B" link set vdx1 up
sleep 3 # duplicate address detection, router solicitation, MLD reports
ip netns exec "$A" "$BB" ping6 -c 2 -W 1 2001:db8::b >/dev/null
stop_capture
ip -n "$A" link set vdx0 down
ip -n "$B" link set vdx1 down
ip -n "$A" addr flush dev vdx0
ip -n "$B" addr flush dev vdx1

# ---- tagged: crafted frames ------------------------------------------------
for ns in "$A" "$B"; do
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
done
ip netns exec "$A" sysctl -qw net.ipv6.conf.vdx0.disable_ipv6=1
ip netns exec "$B" sysctl -qw net.ipv6.conf.vdx1.disable_ipv6=1
ip -n "$A" link set vdx0 mtu 9000
ip -n "$B" link set vdx1 mtu 9000
ip -n "$A" link set vdx0 up
ip -n "$B" link set vdx1 up
sleep 1
start_capture "$here/tagged.pcap"
ip netns exec "$A" python3 "$here/send_frames.py" vdx0
stop_capture

# The same wire frames, replayed behind an 802.1ad uplink (tagged-ad.conf).
cp "$here/tagged.pcap" "$here/tagged-ad.pcap"

for cap in basic-v4 ipv6-nd tagged tagged-ad; do
  python3 "$here/expect.py" "$here/$cap.conf" "$here/$cap.pcap" "$here/expected/$cap"
done

#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# compare-qemu.sh: examples/vmm against qemu's own virtio-net, userspace and
# vhost-net, in one lab run: into one guest, and guest to guest.
#
# Usage:
#   compare-qemu.sh --vmm PATH [--mib N] [--reps N] [--rounds N] [--streams N] [--smp N]
#                   [--cases "CASE ..."] [--timeout SECONDS] [--workdir DIR] [--keep]
#                   [--app xfer|nc] [--napi-tx 0|1] [--xfer PATH]
#
#   --vmm      the VMM, statically linked (the vmm_lab target)
#   --mib      MiB per transfer (default 16)
#   --reps     transfers per guest boot (default 3)
#   --rounds   times the whole list of cases is run, one after the other,
#              in the same lab (default 1)
#   --streams  TCP streams per transfer into the receiving guest, each of
#              N MiB, at once (default 1; the one-guest cases)
#   --smp      the lab's CPUs (default 1; 2 for the vmm-mq cases, whose
#              guest has two vCPUs)
#   --cases    which cases, in this order (default: the six below)
#   --timeout  seconds for the lab's whole run (default 3600)
#   --workdir  where the run directory goes (default
#              ${XDG_CACHE_HOME:-$HOME/.cache}/vdemux-vmrun)
#   --keep     keep the run directory (initramfs, console log)
#   --app      what moves the data: xfer (default: lab_xfer, 128 KiB a
#              write and a read) or nc (busybox nc, 1 KiB a call, as before)
#   --napi-tx  the guests' virtio_net napi_tx parameter (default: the
#              driver's own, 1)
#   --xfer     lab_xfer, statically linked (default: next to --vmm)
#
# A measurement, not a test: not registered in ctest. One boot of the kernel
# lab (the Debian kernel under qemu-system-x86_64, TCG, -cpu max, as in
# e2e.sh). Every guest is the same Debian kernel with the same initramfs,
# 256 MiB, one vCPU, under the lab's KVM. Cases:
#
#   vmm-one    examples/vmm as a user runs it (its defaults: mergeable
#              buffers, copied; the offloads it offers), one guest at 10.0.0.2
#              behind TAP tap0; the lab (10.0.0.1) sends into it
#   qemu-one   qemu-system-x86_64 (copied into the lab's initramfs with its
#              shared libraries), -M microvm -enable-kvm -cpu host, its own
#              userspace virtio-net (virtio-net-device on virtio-mmio) on
#              tap0 with its default offloads, vhost=off
#   vhost-one  the same with vhost=on: the vhost-net kernel thread moves the
#              frames
#   vmm-g2g    examples/vmm with two guests: 10.0.0.3 sends to 10.0.0.2
#              through the engine (tap0 still the uplink; the lab triggers
#              the sender through it)
#   qemu-g2g   two qemu guests, each on its own TAP, the TAPs on a Linux
#              bridge br0 (the lab's 10.0.0.1), 10.0.0.3 sends to 10.0.0.2
#   vhost-g2g  the same with vhost=on
# and, when asked for: vmm-flip-one, vmm-copy-one and vmm-auto-one
# (examples/vmm with rx=big, every frame flipped; rx=mergeable, copied; and
# rx=auto, big-packet buffers and the adaptive policy), qemu-mtu-one (qemu
# with the guest's receive offloads off: MTU-sized frames), vmm-mq1 and
# vmm-mq2 (examples/vmm's guest with two vCPUs and one or two queue pairs:
# VIRTIO_NET_F_MQ, MSI-X, flows steered by their hash; with --streams 2),
# vmm-mq2-io (vmm-mq2 with --io-threads: a thread for the second pair),
# vmm-4k-one (vmm-one with huge=off: guest RAM left in 4 KiB pages; the
# lab kernel's shmem_enabled is never, and each vmm transfer's CMP-NOTE
# gives ShmemPmdMapped, guest RAM mapped in 2 MiB pages).
#
# A transfer is N MiB over TCP (lab_xfer) into the receiving guest, which
# writes them to a file and watches its size. Wall time: from the moment the
# lab starts the sender (its own lab_xfer, or a "go" to the sending guest) to the
# receiver's "done" line, seen by the lab (0.1 s polls). CPU: utime+stime of
# every process of the case (the VMM, or each qemu; with vhost, each
# vhost-<pid> kernel thread too), from /proc, less guest_time (the guests'
# own execution, counted inside utime), before the send and at "done".
# Frames: the receiver's eth0 rx_packets after minus before. The data's md5
# is checked after each transfer, outside the measurement.
#
# The guests load virtio_net with its defaults (TX NAPI on), as a user's
# would. (e2e.sh turns TX NAPI off: a 6.1 guest can hang in a power-off in
# the middle of a transfer. Here no guest powers off before its transfers
# are done, and the lab stops the VMM or qemu itself.)
#
# Per transfer, out of the measurement, the lab prints what each side's TCP
# did and what the device saw (the sampler costs the sending guest an ss
# about every second during the transfer, in every case alike):
#   CMP-NSTAT <case> <label> send|recv <counter>=<delta> ...  the guest's
#       /proc/net/snmp and netstat counters that moved (nstat's names)
#   CMP-NET <case> <label> send|recv tx_packets=<n> ...  its eth0 frames
#   CMP-SS <case> <label> t=<uptime> recvq= sendq= cwnd: rtt: ... the
#       sending socket (ss -ti) about every second
#   CMP-DEV <case> <label> [r]|[s]|[vmm] <counter>=<delta> ...  examples/vmm's
#       counters (SIGUSR2) for that transfer (vmm cases only)
#
# Output: one line per transfer, then one line per case (the medians of its
# transfers) and the spread:
#   compare-run: <case> <round>.<rep> mbit=<n> secs=<s> frames=<n> cpu_us_per_mib=<n> md5=ok|FAIL
#   compare: <case> mbit=<n> secs=<s> frames=<n> cpu_us_per_mib=<n> md5=ok|FAIL
#   compare-spread: <case> runs=<n> mbit=<min>..<max> cpu_us_per_mib=<min>..<max> cpu_s=<median> guest_s=<median> kthread_s=<median>
#   compare-ratio: vmm-one/qemu-one mbit=<x> cpu_us_per_mib=<x> (and the others)
# Everything runs under emulation (TCG, then nested KVM): only ratios between
# the lines of one run mean anything.
# Exit status: 0 every case measured with the right md5, 1 otherwise, 77 a
# host tool or the kernel is missing ("SKIP: <reason>").

set -euo pipefail

timeout_s=3600
workdir="${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/vdemux-vmrun"
keep=0
vmm=""
mib=16
reps=3
rounds=1
streams=1
smp=1
cases="vmm-one qemu-one vhost-one vmm-g2g qemu-g2g vhost-g2g"
app=xfer
napi_tx=""
xfer=""

header() { awk 'NR > 1 && !/^#/ { exit } NR > 1 && !/SPDX-License-Identifier/ { sub(/^# ?/, ""); print }' "$0"; }
while [ $# -gt 0 ]; do
	case "$1" in
	--vmm) vmm="${2?}"; shift 2 ;;
	--mib) mib="${2?}"; shift 2 ;;
	--reps) reps="${2?}"; shift 2 ;;
	--rounds) rounds="${2?}"; shift 2 ;;
	--streams) streams="${2?}"; shift 2 ;;
	--smp) smp="${2?}"; shift 2 ;;
	--cases) cases="${2?}"; shift 2 ;;
	--timeout) timeout_s="${2?}"; shift 2 ;;
	--workdir) workdir="${2?}"; shift 2 ;;
	--keep) keep=1; shift ;;
	--app) app="${2?}"; shift 2 ;;
	--napi-tx) napi_tx="${2?}"; shift 2 ;;
	--xfer) xfer="${2?}"; shift 2 ;;
	-h|--help) header; exit 0 ;;
	*) echo "compare: unknown option: $1" >&2; header >&2; exit 2 ;;
	esac
done
for c in $cases; do
	case "$c" in
	vmm-one|qemu-one|vhost-one|vmm-g2g|qemu-g2g|vhost-g2g|vmm-flip-one|vmm-copy-one|vmm-auto-one|qemu-mtu-one|vmm-mq1|vmm-mq2|vmm-mq2-io|vmm-4k-one) ;;
	*) echo "compare: unknown case: $c" >&2; exit 2 ;;
	esac
done

case "$app" in xfer|nc) ;; *) echo "compare: --app: xfer or nc" >&2; exit 2 ;; esac
case "$napi_tx" in ""|0|1) ;; *) echo "compare: --napi-tx: 0 or 1" >&2; exit 2 ;; esac
skip() { echo "SKIP: $*"; exit 77; }
die() { echo "compare: $*" >&2; exit 1; }

# stage_modules, stage_busybox, pack; lab_find_host sets qemu, modprobe_bin,
# busybox, kernel, kver
. "$(dirname "$0")/lab-lib.sh"
lab_find_host "$vmm" ldd
[ -n "$xfer" ] || xfer="$(dirname "$vmm")/lab_xfer"
[ -x "$xfer" ] || die "not executable: $xfer (the lab_xfer target, built with vmm_lab; or --xfer PATH)"
qemu_data="${COMPARE_QEMU_DATADIR:-/usr/share/qemu}"
[ -r "$qemu_data/bios-microvm.bin" ] || skip "no $qemu_data/bios-microvm.bin"

# copy_with_libs EXE DIR PATH: EXE as DIR/PATH, with the shared libraries
# ldd names, at their own paths under DIR.
copy_with_libs() {
	local f
	mkdir -p "$2$(dirname "$3")"
	cp -L "$1" "$2$3"
	for f in $(ldd "$1" | sed -n 's/.*=> \(\/[^ ]*\).*/\1/p; s/^[[:space:]]*\(\/[^ ]*\) (.*/\1/p'); do
		mkdir -p "$2$(dirname "$f")"
		cp -L "$f" "$2$f"
	done
}

mkdir -p "$workdir"
workdir="$(cd "$workdir" && pwd)"
run="$(mktemp -d "$workdir/compare.XXXXXX")"
cleanup() { if [ "$keep" = 0 ]; then rm -rf "$run"; fi; }
trap cleanup EXIT

# ---- the guests' initramfs (every case) ----
# virtio_mmio is for qemu's microvm; under examples/vmm it finds no device.
# The kernel command line says the guest's part: vdemux.ip, vdemux.role
# (recv: receive vdemux.reps transfers of vdemux.bytes, the i-th on port
# 5000+i; send: make a blob of vdemux.bytes, then at a "go" on port 6000+i
# send it to vdemux.peer, port 5000+i).

inner="$run/inner"
stage_busybox "$inner"
# tcp_diag: ss -ti's full view of a socket (without it, /proc/net/tcp's).
diag=""
"$modprobe_bin" -d / -S "$kver" --show-depends tcp_diag >/dev/null 2>&1 && diag=tcp_diag
stage_modules "$inner" "virtio_net virtio_pci virtio_mmio $diag"
cat >"$inner/init" <<'INIT'
#!/bin/sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/null >/dev/console 2>&1
echo "GUEST-INIT $(uname -r) up $(cut -d' ' -f1 /proc/uptime)s"
bytes=16777216 reps=1 role=recv ip=10.0.0.2 peer="" app=xfer napi_tx="" streams=1
for a in $(cat /proc/cmdline); do
	case "$a" in
	vdemux.bytes=*) bytes="${a#*=}" ;;
	vdemux.reps=*) reps="${a#*=}" ;;
	vdemux.role=*) role="${a#*=}" ;;
	vdemux.ip=*) ip="${a#*=}" ;;
	vdemux.peer=*) peer="${a#*=}" ;;
	vdemux.streams=*) streams="${a#*=}" ;;
	vdemux.app=*) app="${a#*=}" ;;
	vdemux.napi_tx=*) napi_tx="${a#*=}" ;;
	esac
done
# virtio_net with its defaults unless --napi-tx said otherwise.
while read -r m; do
	o=""
	[ "$m" = virtio_net.ko ] && [ -n "$napi_tx" ] && o="napi_tx=$napi_tx"
	insmod "/lib/modules/$m" $o 2>/dev/null || echo "GUEST-MODULE-FAILED $m"
done </etc/modules
n=0
while [ ! -e /sys/class/net/eth0 ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
ip link set lo up
ip link set eth0 up
ip addr add "$ip/24" dev eth0
s=/sys/class/net/eth0/statistics
# listen PORT FILE: until PORT listens (busybox nc ends when its stdin does,
# so a sleep feeds it).
listen() {
	(sleep 3600 | nc -l -p "$1" >"$2") &
	n=0
	while ! grep -q ":$(printf %04X "$1") 00000000:0000 0A" /proc/net/tcp && [ $n -lt 100 ]; do
		sleep 0.1; n=$((n + 1))
	done
}
# listen_data PORT FILE: the transfer's receiver (lab_xfer or busybox nc, as
# --app says) on PORT, writing FILE; until PORT listens.
listen_data() {
	if [ "$app" = nc ]; then listen "$1" "$2"; return; fi
	lab_xfer recv "$1" "$2" &
	n=0
	while ! grep -q ":$(printf %04X "$1") 00000000:0000 0A" /proc/net/tcp && [ $n -lt 100 ]; do
		sleep 0.1; n=$((n + 1))
	done
}
# send_data PORT: the blob to the peer's PORT, in the background.
send_data() {
	if [ "$app" = nc ]; then nc "$peer" "$1" </tmp/blob & else lab_xfer send "$peer" "$1" /tmp/blob & fi
}
# snmp FILE: /proc/net/snmp and /proc/net/netstat as "<Group><Name> <value>"
# lines (nstat's names: TcpRetransSegs, TcpExtTCPTimeouts, IpExtInOctets).
snmp() {
	cat /proc/net/snmp /proc/net/netstat |
		awk 'NR % 2 { split($0, h); next } { sub(":", "", h[1]); for (k = 2; k <= NF; k++) print h[1] h[k], $k }' >"$1"
}
# nstat_delta BEFORE AFTER PREFIX: the counters that moved, as name=delta,
# eight a line (a console line of the VMM holds 512 characters), each line
# starting with PREFIX.
nstat_delta() {
	awk -v p="$3" 'NR == FNR { a[$1] = $2; next }
		$2 != a[$1] { o = o " " $1 "=" ($2 - a[$1]); if (++n % 8 == 0) { print p o; o = "" } }
		END { if (o != "") print p o }' "$1" "$2"
}
# sampler I PORT: the sending socket's TCP state (ss -ti) every 0.5 s into
# /tmp/ss.I, until /tmp/dump has something in it.
sampler() {
	command -v ss >/dev/null || return 0
	while [ ! -s /tmp/dump ]; do
		echo "t=$(cut -d' ' -f1 /proc/uptime) $(ss -tinH state established "( dport = :$2 )" | tr '\n\t' '  ')"
		sleep 0.5
	done >"/tmp/ss.$1"
}
# ss_short FILE: each sample with the fields that say how TCP sent.
ss_short() {
	awk '{ o = $1 " recvq=" $2 " sendq=" $3
		for (k = 3; k <= NF; k++) {
			if ($k ~ /^(rto|rtt|minrtt|cwnd|ssthresh|unacked|retrans|lost|sacked|notsent|bytes_acked|mss|lastack|lastsnd|data_segs_out|busy|rwnd_limited|sndbuf_limited):/) o = o " " $k
			if ($k == "pacing_rate" || $k == "send" || $k == "delivery_rate") { o = o " " $k "=" $(k + 1); k++ }
		}
		print o }' "$1"
}
if [ "$role" = send ]; then
	# 1 MiB of random bytes, repeated: every MiB of the blob differs at
	# every offset from its neighbours' pages, and it is made in a second
	# where urandom under nested emulation takes minutes.
	dd if=/dev/urandom of=/tmp/mib bs=1M count=1 2>/dev/null
	i=0
	while [ $i -lt $((bytes / 1048576)) ]; do cat /tmp/mib; i=$((i + 1)); done >/tmp/blob
	rm -f /tmp/mib
	echo "GUEST-SRC-MD5 $(md5sum </tmp/blob | cut -d' ' -f1)"
	# Each transfer: at a "go" on port 6000+i, send; at a "dump" on port
	# 7000+i (the lab sends it once the receiver has everything), print
	# what the transfer did: the TCP counters' deltas, the socket's samples,
	# the interface's frames.
	i=1
	while [ $i -le "$reps" ]; do
		rm -f /tmp/go /tmp/dump
		listen $((6000 + i)) /tmp/go
		echo "GUEST-SEND-READY $i go"
		while [ ! -s /tmp/go ]; do sleep 0.05; done
		snmp /tmp/snmp0
		tp0=$(cat $s/tx_packets) tb0=$(cat $s/tx_bytes) rp0=$(cat $s/rx_packets)
		send_data $((5000 + i))
		echo "GUEST-SENDING $i"
		sampler $i $((5000 + i)) &
		listen $((7000 + i)) /tmp/dump
		while [ ! -s /tmp/dump ]; do sleep 0.1; done
		snmp /tmp/snmp1
		nstat_delta /tmp/snmp0 /tmp/snmp1 "GUEST-NSTAT $i send"
		echo "GUEST-NET $i send tx_packets=$(($(cat $s/tx_packets) - tp0)) tx_bytes=$(($(cat $s/tx_bytes) - tb0)) rx_packets=$(($(cat $s/rx_packets) - rp0))"
		sleep 0.6
		[ -s /tmp/ss.$i ] && ss_short /tmp/ss.$i | sed "s/^/GUEST-SS $i /"
		echo "GUEST-STATS-END $i"
		i=$((i + 1))
	done
	# the lab stops the VMM (or qemu) when the receiver is done
	sleep 3600
fi
# all_in: every stream's file has its bytes.
all_in() {
	for k in $(seq 0 $((streams - 1))); do
		[ "$(stat -c %s /tmp/blob.$k 2>/dev/null)" = "$bytes" ] || return 1
	done
}
i=1
while [ $i -le "$reps" ]; do
	rm -f /tmp/blob.*
	for k in $(seq 0 $((streams - 1))); do listen_data $((5000 + i + 100 * k)) /tmp/blob.$k; done
	snmp /tmp/snmp0
	tp0=$(cat $s/tx_packets)
	echo "GUEST-READY $i rx_packets=$(cat $s/rx_packets) up $(cut -d' ' -f1 /proc/uptime)s"
	while ! all_in; do sleep 0.1; done
	snmp /tmp/snmp1
	echo "GUEST-DONE $i rx_packets=$(cat $s/rx_packets) rx_errors=$(cat $s/rx_errors) rx_dropped=$(cat $s/rx_dropped)"
	# Out of the measurement: the lab has read the CPU times by now.
	sleep 2
	nstat_delta /tmp/snmp0 /tmp/snmp1 "GUEST-NSTAT $i recv"
	echo "GUEST-NET $i recv tx_packets=$(($(cat $s/tx_packets) - tp0))"
	# Every stream's md5 (one word when they agree).
	echo "GUEST-MD5 $i $(for k in $(seq 0 $((streams - 1))); do md5sum </tmp/blob.$k | cut -d' ' -f1; done | sort -u | tr '\n' ' ')"
	for q in /sys/class/net/eth0/queues/rx-*; do echo "GUEST-QUEUE $i $(basename $q)"; done
	grep -a virtio /proc/interrupts | tr -s ' ' | sed "s/^/GUEST-IRQ $i /"
	i=$((i + 1))
done
sleep 1
poweroff -f
INIT
chmod 0755 "$inner/init"
cp "$xfer" "$inner/bin/lab_xfer"
# ss (iproute2), for the sender's socket samples; its libraries with it.
# Without it the samples are left out.
if ss_bin="$(command -v ss)"; then
	copy_with_libs "$ss_bin" "$inner" /bin/ss
fi
pack "$inner" "$run/guest-initrd.cpio.gz"

# ---- the lab's initramfs: the VMM, and qemu with its libraries ----

top="$run/top"
stage_busybox "$top"
stage_modules "$top" "kvm_amd tun vhost_net bridge"
mkdir -p "$top/guest" "$top/usr/bin" "$top/usr/share/qemu"
cp "$vmm" "$top/bin/vmm"
cp "$xfer" "$top/bin/lab_xfer"
cp "$kernel" "$top/guest/vmlinuz"
cp "$run/guest-initrd.cpio.gz" "$top/guest/initrd.cpio.gz"
copy_with_libs "$qemu" "$top" /usr/bin/qemu-system-x86_64
for f in bios-microvm.bin qboot.rom linuxboot_dma.bin linuxboot.bin pvh.bin kvmvapic.bin; do
	[ -r "$qemu_data/$f" ] && cp -L "$qemu_data/$f" "$top/usr/share/qemu/$f"
done
printf '%s\n' "$((mib * 1048576))" >"$top/guest/bytes"
printf '%s\n' "$reps" >"$top/guest/reps"
printf '%s\n' "$rounds" >"$top/guest/rounds"
printf '%s\n' "$cases" >"$top/guest/cases"
printf '%s\n' "$streams" >"$top/guest/streams"
printf '%s\n' "$app" >"$top/guest/app"
printf '%s\n' "$napi_tx" >"$top/guest/napi_tx"
cp "$(dirname "$0")/compare-lab.sh" "$top/init"
chmod 0755 "$top/init"
pack "$top" "$run/initrd.cpio.gz"

# ---- boot the lab (as e2e.sh does) ----

lab_timer="lapic=notscdeadline nohz=off highres=off"
t0=$(date +%s.%N)
status=0
timeout --kill-after=10 "$timeout_s" "$qemu" \
	-accel tcg -cpu max -m 3072 -smp "$smp" -nic none -nographic -no-reboot \
	-kernel "$kernel" -initrd "$run/initrd.cpio.gz" \
	-append "console=ttyS0 panic=-1 quiet loglevel=3 $lab_timer" \
	</dev/null >"$run/console.log" 2>"$run/qemu.err" || status=$?
t1=$(date +%s.%N)
tr -d '\r' <"$run/console.log" >"$run/console.txt"
txt="$run/console.txt"
grep -a 'CMP-' "$txt" | grep -av 'CMP-RAW' || true

labsecs="$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')"
hz=$(getconf CLK_TCK 2>/dev/null || echo 100)
# CMP-RAW <case> <round>.<rep> t0= t1= cpu0=u,s,g cpu1=u,s,g k0= k1= rx0= rx1= bytes= md5=
grep -a '^CMP-RAW' "$txt" | sed 's/^CMP-RAW //' | awk -v hz="$hz" -v want="$cases" '
function kv(s, k,   i, a) { for (i = 3; i <= NF; i++) { split($i, a, "="); if (a[1] == k) return a[2] } return "" }
function median(list,   n, v, i, j, t) {
	n = split(list, v, " ")
	for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] + 0 < v[i] + 0) { t = v[i]; v[i] = v[j]; v[j] = t }
	return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
}
function lo(list,   n, v, i, m) { n = split(list, v, " "); m = v[1]; for (i = 2; i <= n; i++) if (v[i] + 0 < m + 0) m = v[i]; return m }
function hi(list,   n, v, i, m) { n = split(list, v, " "); m = v[1]; for (i = 2; i <= n; i++) if (v[i] + 0 > m + 0) m = v[i]; return m }
{
	c = $1
	split(kv($0, "cpu0"), x, ","); split(kv($0, "cpu1"), y, ",")
	g = (y[3] - x[3]) / hz; k = (kv($0, "k1") - kv($0, "k0")) / hz
	cpu = (y[1] + y[2] - x[1] - x[2]) / hz - g + k
	s = kv($0, "t1") - kv($0, "t0"); bytes = kv($0, "bytes"); f = kv($0, "rx1") - kv($0, "rx0")
	mbit = s > 0 ? bytes * 8 / s / 1e6 : 0; pm = cpu * 1e6 / (bytes / 1048576)
	printf "compare-run: %s %s mbit=%.1f secs=%.2f frames=%d cpu_us_per_mib=%.0f md5=%s\n", c, $2, mbit, s, f, pm, kv($0, "md5")
	M[c] = M[c] " " mbit; S[c] = S[c] " " s; F[c] = F[c] " " f; P[c] = P[c] " " pm
	C[c] = C[c] " " cpu; G[c] = G[c] " " g; K[c] = K[c] " " k; N[c]++
	if (kv($0, "md5") != "ok") bad[c] = 1
}
END {
	nc = split(want, order, " ")
	for (i = 1; i <= nc; i++) {
		c = order[i]
		if (!N[c]) { printf "compare: %s mbit=0 secs=0 frames=0 cpu_us_per_mib=0 md5=FAIL\n", c; continue }
		mm[c] = median(M[c]); pp[c] = median(P[c])
		printf "compare: %s mbit=%.1f secs=%.2f frames=%d cpu_us_per_mib=%.0f md5=%s\n", c, mm[c], median(S[c]), median(F[c]), pp[c], bad[c] ? "FAIL" : "ok"
		printf "compare-spread: %s runs=%d mbit=%.1f..%.1f cpu_us_per_mib=%.0f..%.0f cpu_s=%.2f guest_s=%.2f kthread_s=%.2f\n", c, N[c], lo(M[c]), hi(M[c]), lo(P[c]), hi(P[c]), median(C[c]), median(G[c]), median(K[c])
	}
	nr = split("vmm-one/qemu-one vmm-one/vhost-one vmm-g2g/qemu-g2g vmm-g2g/vhost-g2g vmm-mq2/vmm-mq1 vmm-mq2-io/vmm-mq1 vmm-one/vmm-4k-one vmm-4k-one/qemu-one", r, " ")
	for (i = 1; i <= nr; i++) {
		split(r[i], ab, "/")
		if (mm[ab[1]] > 0 && mm[ab[2]] > 0 && pp[ab[2]] > 0)
			printf "compare-ratio: %s mbit=%.2f cpu_us_per_mib=%.2f\n", r[i], mm[ab[1]] / mm[ab[2]], pp[ab[1]] / pp[ab[2]]
	}
}'
nruns=$(grep -ac '^CMP-RAW' "$txt" || true)
nok=$(grep -a '^CMP-RAW' "$txt" | grep -c 'md5=ok$' || true)
ncases=$(echo $cases | wc -w)
grep -a '^CMP-LOG.*\(vmm: rxq [0-9]\|vmm: ctrl\|I/O thread\)' "$txt" | head -n 40 || true
echo "compare: lab kernel $kver, lab -smp $smp, streams $streams, lab run ${labsecs}s, status $status, host load $(cut -d' ' -f1-3 /proc/loadavg); TCG + nested KVM: only ratios mean anything"
if [ "$nok" = "$nruns" ] && [ "$nruns" = $((ncases * reps * rounds)) ]; then exit 0; fi
keep=1
echo "compare: $nok of $nruns transfers ok, $((ncases * reps * rounds)) expected; run files kept in $run" >&2
exit 1

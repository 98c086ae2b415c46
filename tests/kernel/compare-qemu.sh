#!/usr/bin/env bash
# compare-qemu.sh: examples/vmm against qemu's own virtio-net, in one lab run.
#
# Usage:
#   compare-qemu.sh --vmm PATH [--mib N] [--timeout SECONDS] [--workdir DIR] [--keep]
#
#   --vmm      the VMM, statically linked (the vmm_lab target)
#   --mib      MiB sent into each guest (default 16)
#   --timeout  seconds for the lab's whole run (default 600)
#   --workdir  where the run directory goes (default
#              ${XDG_CACHE_HOME:-$HOME/.cache}/vdemux-vmrun)
#   --keep     keep the run directory (initramfs, console log)
#
# A measurement, not a test: not registered in ctest. One boot of the kernel
# lab (the Debian kernel under qemu-system-x86_64, TCG, -cpu max, as in
# e2e.sh) runs three cases one after the other, each with one guest under the
# lab's KVM, the same Debian kernel and the same guest initramfs, at
# 10.0.0.2 behind TAP tap0 (the lab is 10.0.0.1):
#
#   vmm-flip  examples/vmm, rx=big (big-packet chains, frames flipped)
#   vmm-copy  examples/vmm, rx=mergeable (mergeable buffers, frames copied)
#   qemu      qemu-system-x86_64 copied into the lab's initramfs with its
#             shared libraries, -M microvm -enable-kvm -cpu host -m 256
#             -smp 1, its own userspace virtio-net (virtio-net-device on
#             virtio-mmio, declared by microvm's ACPI tables) on the TAP,
#             -netdev tap,...,script=no (no vhost)
#
# In each case the lab sends N MiB over TCP (busybox nc) into the guest, which
# writes them to a file and watches its size. Wall time: from the lab's
# sender start to the guest's "done" line, seen by the lab (0.1 s polls).
# CPU: the VMM process's utime+stime from /proc/<pid>/stat (all threads,
# vCPU included) before the send and at the guest's "done"; guest_time (the
# guest's own execution, counted inside utime) is printed apart, and
# cpu_us_per_frame excludes it (cpu_us_per_frame_all includes it). Frames:
# the guest's eth0 rx_packets after minus before. The data's md5 is checked
# after the measurement.
#
# Output, one line per case:
#   compare: <case> mbit=<n> secs=<s> frames=<n> cpu_us_per_frame=<n> cpu_us_per_frame_all=<n> md5=ok|FAIL
# Everything runs under emulation (TCG, then nested KVM): only ratios between
# the lines of one run mean anything.
# Exit status: 0 every case measured with the right md5, 1 otherwise, 77 a
# host tool or the kernel is missing ("SKIP: <reason>").

set -euo pipefail

timeout_s=600
workdir="${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/vdemux-vmrun"
keep=0
vmm=""
mib=16

header() { awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; }
while [ $# -gt 0 ]; do
	case "$1" in
	--vmm) vmm="${2?}"; shift 2 ;;
	--mib) mib="${2?}"; shift 2 ;;
	--timeout) timeout_s="${2?}"; shift 2 ;;
	--workdir) workdir="${2?}"; shift 2 ;;
	--keep) keep=1; shift ;;
	-h|--help) header; exit 0 ;;
	*) echo "compare: unknown option: $1" >&2; header >&2; exit 2 ;;
	esac
done

skip() { echo "SKIP: $*"; exit 77; }
die() { echo "compare: $*" >&2; exit 1; }

# stage_modules, stage_busybox, pack; lab_find_host sets qemu, modprobe_bin,
# busybox, kernel, kver
. "$(dirname "$0")/lab-lib.sh"
lab_find_host "$vmm" ldd
qemu_data="${COMPARE_QEMU_DATADIR:-/usr/share/qemu}"
[ -r "$qemu_data/bios-microvm.bin" ] || skip "no $qemu_data/bios-microvm.bin"

mkdir -p "$workdir"
workdir="$(cd "$workdir" && pwd)"
run="$(mktemp -d "$workdir/compare.XXXXXX")"
cleanup() { if [ "$keep" = 0 ]; then rm -rf "$run"; fi; }
trap cleanup EXIT

# ---- the guest's initramfs (all three cases) ----
# virtio_mmio is for qemu's microvm; under examples/vmm it finds no device.

inner="$run/inner"
stage_busybox "$inner"
stage_modules "$inner" "virtio_net virtio_pci virtio_mmio"
cat >"$inner/init" <<'INIT'
#!/bin/sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/null >/dev/console 2>&1
echo "GUEST-INIT $(uname -r) up $(cut -d' ' -f1 /proc/uptime)s"
while read -r m; do insmod "/lib/modules/$m" 2>/dev/null || echo "GUEST-MODULE-FAILED $m"; done </etc/modules
bytes=16777216
for a in $(cat /proc/cmdline); do
	case "$a" in vdemux.bytes=*) bytes="${a#*=}" ;; esac
done
n=0
while [ ! -e /sys/class/net/eth0 ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
ip link set lo up
ip link set eth0 up
ip addr add 10.0.0.2/24 dev eth0
s=/sys/class/net/eth0/statistics
(sleep 3600 | nc -l -p 5000 >/tmp/blob) &
n=0
while ! grep -q ':1388 00000000:0000 0A' /proc/net/tcp && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
echo "GUEST-READY rx_packets=$(cat $s/rx_packets) up $(cut -d' ' -f1 /proc/uptime)s"
while [ "$(stat -c %s /tmp/blob 2>/dev/null)" != "$bytes" ]; do sleep 0.1; done
echo "GUEST-DONE rx_packets=$(cat $s/rx_packets) rx_errors=$(cat $s/rx_errors) rx_dropped=$(cat $s/rx_dropped) up $(cut -d' ' -f1 /proc/uptime)s"
# Out of the measurement: the lab has read the VMM's CPU time by now.
sleep 3
echo "GUEST-MD5 $(md5sum </tmp/blob | cut -d' ' -f1)"
poweroff -f
INIT
chmod 0755 "$inner/init"
pack "$inner" "$run/guest-initrd.cpio.gz"

# ---- the lab's initramfs: the VMM, and qemu with its libraries ----

top="$run/top"
stage_busybox "$top"
stage_modules "$top" "kvm_amd tun"
mkdir -p "$top/guest" "$top/usr/bin" "$top/usr/share/qemu"
cp "$vmm" "$top/bin/vmm"
cp "$kernel" "$top/guest/vmlinuz"
cp "$run/guest-initrd.cpio.gz" "$top/guest/initrd.cpio.gz"
cp -L "$qemu" "$top/usr/bin/qemu-system-x86_64"
for f in $(ldd "$qemu" | sed -n 's/.*=> \(\/[^ ]*\).*/\1/p; s/^[[:space:]]*\(\/[^ ]*\) (.*/\1/p'); do
	mkdir -p "$top$(dirname "$f")"
	cp -L "$f" "$top$f"
done
for f in bios-microvm.bin qboot.rom linuxboot_dma.bin linuxboot.bin pvh.bin kvmvapic.bin; do
	[ -r "$qemu_data/$f" ] && cp -L "$qemu_data/$f" "$top/usr/share/qemu/$f"
done
echo "$((mib * 1048576))" >"$top/guest/bytes"
cat >"$top/init" <<'INIT'
#!/bin/sh
/bin/busybox --install -s /bin
export PATH=/bin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/null >/dev/console 2>&1
echo "CMP-LAB kernel $(uname -r) up $(cut -d' ' -f1 /proc/uptime)s"
while read -r m; do insmod "/lib/modules/$m" || echo "CMP-MODULE-FAILED $m"; done </etc/modules
up() { cut -d' ' -f1 /proc/uptime; }
bytes=$(cat /guest/bytes)
K=/guest/vmlinuz R=/guest/initrd.cpio.gz
ip link set lo up
dd if=/dev/urandom of=/tmp/blob bs=1M count=$((bytes / 1048576)) 2>/dev/null
sum="$(md5sum </tmp/blob | cut -d' ' -f1)"
echo "CMP-BLOB $bytes $sum"
# wait_log FILE PATTERN SECONDS
wait_log() {
	n=0
	while ! grep -q "$2" "$1" 2>/dev/null; do
		[ $n -ge $(($3 * 10)) ] && return 1
		sleep 0.1; n=$((n + 1))
	done
}
# cpu PID: utime stime guest_time, in clock ticks.
cpu() { awk '{ print $14, $15, $43 }' "/proc/$1/stat"; }
# measure CASE PID LOG: one transfer into the guest that PID runs.
measure() {
	c=$1 pid=$2 log=$3
	n=0
	while [ ! -e /sys/class/net/tap0 ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
	ip addr add 10.0.0.1/24 dev tap0
	ip link set tap0 up
	if ! wait_log "$log" GUEST-READY 300; then
		echo "CMP-FAIL $c the guest did not get ready"; return 1
	fi
	ping -c 3 -W 3 10.0.0.2 >/dev/null 2>&1 || echo "CMP-NOTE $c ping failed"
	rx0=$(grep GUEST-READY "$log" | sed -n 's/.*rx_packets=\([0-9]*\).*/\1/p' | head -n1)
	c0=$(cpu $pid) t0=$(up)
	nc 10.0.0.2 5000 </tmp/blob &
	sender=$!
	if ! wait_log "$log" GUEST-DONE 600; then
		kill $sender 2>/dev/null
		echo "CMP-FAIL $c no GUEST-DONE; $(ls -l /tmp/blob)"; return 1
	fi
	c1=$(cpu $pid) t1=$(up)
	kill $sender 2>/dev/null
	rx1=$(grep GUEST-DONE "$log" | sed -n 's/.*rx_packets=\([0-9]*\).*/\1/p' | head -n1)
	wait_log "$log" GUEST-MD5 60
	got=$(grep GUEST-MD5 "$log" | tr -d '\r' | sed 's/.*GUEST-MD5 //' | head -n1)
	md5=FAIL; [ "$got" = "$sum" ] && md5=ok
	echo "CMP-RAW $c t0=$t0 t1=$t1 cpu0=$(echo $c0 | tr ' ' ,) cpu1=$(echo $c1 | tr ' ' ,) rx0=$rx0 rx1=$rx1 bytes=$bytes md5=$md5"
}
# stop PID SECONDS: wait for PID to end by itself, then TERM, then KILL.
stop() {
	n=0
	while kill -0 $1 2>/dev/null && [ $n -lt $(($2 * 5)) ]; do sleep 0.2; n=$((n + 1)); done
	if kill -0 $1 2>/dev/null; then kill -TERM $1; sleep 2; kill -KILL $1 2>/dev/null; fi
	wait $1 2>/dev/null
}
for x in flip:big copy:mergeable; do
	c=vmm-${x%%:*}
	echo "CMP-CASE $c start at $(up)s"
	/bin/vmm --tap tap0 --guest "name=g,kernel=$K,initrd=$R,mem=256M,mac=52:54:00:00:00:0a,rx=${x#*:},cmdline=vdemux.bytes=$bytes" \
		>/tmp/$c.log 2>&1 &
	pid=$!
	measure $c $pid /tmp/$c.log
	stop $pid 60
	grep 'vmm: engine: pages\|vmm: vm: delivered\|vmm: rxq: frames\|vmm: receive queue started\|GUEST-DONE\|MODULE-FAILED\|vmm: exit' /tmp/$c.log | sed "s/^/CMP-LOG $c /"
done
# qemu: with its default receive offloads (the TAP hands the guest TSO
# frames of up to 64 KiB), then with them off (MTU-sized frames, as
# examples/vmm's guests receive them).
for x in qemu: qemu-mtu:,guest_tso4=off,guest_tso6=off,guest_ecn=off,guest_ufo=off; do
	c=${x%%:*}
	echo "CMP-CASE $c start at $(up)s"
	/usr/bin/qemu-system-x86_64 -L /usr/share/qemu -M microvm -enable-kvm -cpu host -m 256 -smp 1 \
		-nographic -no-reboot -kernel $K -initrd $R \
		-append "console=ttyS0 reboot=t panic=-1 quiet vdemux.bytes=$bytes" \
		-netdev tap,id=n,ifname=tap0,script=no,downscript=no \
		-device virtio-net-device,netdev=n,mac=52:54:00:00:00:0c${x#*:} \
		</dev/null >/tmp/$c.log 2>&1 &
	pid=$!
	measure $c $pid /tmp/$c.log
	stop $pid 15
	tr -d '\r' </tmp/$c.log | grep -v 'GUEST-READY\|GUEST-MD5' | grep -i 'qemu\|error\|GUEST-\|fail' | head -n 20 | sed "s/^/CMP-LOG $c /"
	n=0
	while [ -e /sys/class/net/tap0 ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
done
echo "CMP-DONE at $(up)s"
poweroff -f
INIT
chmod 0755 "$top/init"
pack "$top" "$run/initrd.cpio.gz"

# ---- boot the lab (as e2e.sh does) ----

lab_timer="lapic=notscdeadline nohz=off highres=off"
t0=$(date +%s.%N)
status=0
timeout --kill-after=10 "$timeout_s" "$qemu" \
	-accel tcg -cpu max -m 2048 -smp 1 -nic none -nographic -no-reboot \
	-kernel "$kernel" -initrd "$run/initrd.cpio.gz" \
	-append "console=ttyS0 panic=-1 quiet loglevel=3 $lab_timer" \
	</dev/null >"$run/console.log" 2>"$run/qemu.err" || status=$?
t1=$(date +%s.%N)
tr -d '\r' <"$run/console.log" >"$run/console.txt"
txt="$run/console.txt"
grep -a 'CMP-' "$txt" | grep -av 'CMP-RAW' || true

labsecs="$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')"
hz=$(getconf CLK_TCK 2>/dev/null || echo 100)
nok=0
while read -r line; do
	c=$(echo "$line" | awk '{ print $2 }')
	eval "$(echo "$line" | cut -d' ' -f3- | tr ' ' '\n' | sed -n 's/^\([a-z0-9]*\)=\(.*\)$/\1="\2"/p')"
	awk -v c="$c" -v t0="$t0" -v t1="$t1" -v a="$cpu0" -v b="$cpu1" -v r0="$rx0" -v r1="$rx1" \
		-v bytes="$bytes" -v md5="$md5" -v hz="$hz" 'BEGIN {
		split(a, x, ","); split(b, y, ",")
		all = (y[1] + y[2] - x[1] - x[2]) / hz; g = (y[3] - x[3]) / hz
		f = r1 - r0; s = t1 - t0
		pf = 0; pfa = 0
		if (f > 0) { pf = (all - g) * 1e6 / f; pfa = all * 1e6 / f }
		pm = (all - g) * 1e6 / (bytes / 1048576)
		printf "compare: %s mbit=%.1f secs=%.1f frames=%d cpu_us_per_frame=%.1f cpu_us_per_frame_all=%.1f cpu_us_per_mib=%.0f cpu_s=%.2f guest_s=%.2f md5=%s\n", c, bytes * 8 / s / 1e6, s, f, pf, pfa, pm, all - g, g, md5
	}'
	[ "$md5" = ok ] && nok=$((nok + 1))
done < <(grep -a '^CMP-RAW' "$txt" | sed 's/^CMP-RAW //; s/^/x /')
echo "compare: lab kernel $kver, lab run ${labsecs}s, status $status, host load $(cut -d' ' -f1-3 /proc/loadavg); TCG + nested KVM: only ratios mean anything"
if [ "$nok" = 4 ]; then exit 0; fi
keep=1
echo "compare: run files kept in $run" >&2
exit 1

#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# e2e.sh: examples/vmm end to end, in the kernel lab.
#
# Usage:
#   e2e.sh --vmm PATH [--io-threads] [--timeout SECONDS] [--workdir DIR] [--keep]
#
#   --vmm      the VMM, statically linked (the vmm_lab target)
#   --io-threads  run the VMM with --io-threads: b's second queue pair on
#              its own thread and engine shard, the TAP multiqueue; one
#              more check (shards) that frames went through both shards
#   --timeout  seconds for the lab's whole run (default 420); a run that
#              times out is retried once
#   --workdir  where the run directory goes (default
#              ${XDG_CACHE_HOME:-$HOME/.cache}/vdemux-vmrun)
#   --keep     keep the run directory (initramfs, console log) on success
#
# The lab (the Debian kernel under qemu-system-x86_64, TCG, -cpu max) loads
# kvm_amd and tun; the VMM creates TAP tap0 (the lab gives it 10.0.0.1/24)
# and boots two guests under the lab's KVM, the same Debian kernel with an
# initramfs of busybox and the virtio modules: a (10.0.0.2, big receive
# buffers: frames flipped into its own pages) and b (10.0.0.3, mergeable
# receive buffers: copied; two vCPUs and two queue pairs: MQ, the control
# queue, MSI-X). Checks, in the lab: both guests reach their
# /init and configure eth0; guest RAM is mapped in 2 MiB pages (b's 256
# MiB at least: examples/vmm's huge=on); the lab pings each guest; a pings b; 16 MiB sent
# by the lab over TCP (busybox nc) arrive in each guest with the right
# md5sum; with b's receiver stopped (SIGSTOP, so b's socket fills and its
# sender stalls), another 16 MiB arrive in a; a powers off in the middle of
# a transfer into it, its VM is removed with the engine check passing and
# the page gauges summing to the pool; the VMM gets SIGTERM with b running,
# and exits 0. Then, from the VMM's counters and the guests' logs: each
# guest's driver negotiated VIRTIO_RING_F_INDIRECT_DESC and EVENT_IDX; a's
# VM flipped pages for at least half the frames its queue completed, b's
# none (copies only); b's driver enabled both queue pairs (VQ_PAIRS_SET) and
# MSI-X; neither guest's kernel log shows a virtio, network or
# page error, nor its interface a receive error. With --io-threads: each of
# the two shards took frames, and frames were handed between them (the
# VMM's per-shard counters at exit).
#
# The guests' virtio_net runs without TX NAPI (napi_tx=0): with it, their
# 6.1 kernel can hang for good in a power-off during a transfer (a bug of
# that kernel, fixed later; the guest's /init says more).
#
# Environment: VMRUN_KERNEL, VMRUN_QEMU, VMRUN_BUSYBOX as for vmrun.sh;
# E2E_GUEST_CMDLINE is appended to the guests' kernel command line (for
# example "loglevel=7" to see their boot); E2E_VMM_ARGS are added to the
# VMM's arguments (for example --verbose); E2E_QEMU_ARGS are added to qemu's
# (for example -monitor unix:/tmp/lab.sock,server,nowait).
#
# Output: the VMM's counters and the guests' result lines, one
# "E2E-CHECK <name> ok|FAIL <detail>" line per check, "E2E-RESULT ..." (checks
# passed, the lab's time), and one summary line last:
#   e2e: guests=<n> pings=<answered>/<sent> tcp_bytes=<verified> flips=<n> copies=<n> check=ok|FAIL
# (flips and copies: the engine's counters, printed by the VMM at exit),
# after a line on offloads:
#   e2e: offloads: a_flipped=<n> a_copied=<n> tap_gso=<n> tap_offloads=<TUN_F_* the TAP was set to, all runs> gso_tx_a=<n> gso_tx_b=<n> passed=<n> segmented=<n> segments=<n>
# Exit status: 0 all passed, 1 a check failed, 77 a host tool or the kernel
# is missing ("SKIP: <reason>").

set -euo pipefail

timeout_s=420
workdir="${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/vdemux-vmrun"
keep=0
vmm=""
io=0

header() { awk 'NR > 1 && !/^#/ { exit } NR > 1 && !/SPDX-License-Identifier/ { sub(/^# ?/, ""); print }' "$0"; }
while [ $# -gt 0 ]; do
	case "$1" in
	--vmm) vmm="${2?}"; shift 2 ;;
	--io-threads) io=1; shift ;;
	--timeout) timeout_s="${2?}"; shift 2 ;;
	--workdir) workdir="${2?}"; shift 2 ;;
	--keep) keep=1; shift ;;
	-h|--help) header; exit 0 ;;
	*) echo "e2e: unknown option: $1" >&2; header >&2; exit 2 ;;
	esac
done

skip() { echo "SKIP: $*"; exit 77; }
die() { echo "e2e: $*" >&2; exit 1; }

# stage_modules, stage_busybox, pack; lab_find_host sets qemu, modprobe_bin,
# busybox, kernel, kver
. "$(dirname "$0")/lab-lib.sh"
lab_find_host "$vmm"

mkdir -p "$workdir"
workdir="$(cd "$workdir" && pwd)"
find "$workdir" -maxdepth 1 -name 'e2e.*' -mmin +1440 -exec rm -rf {} + 2>/dev/null || true
run="$(mktemp -d "$workdir/e2e.XXXXXX")"
cleanup() { if [ "$keep" = 0 ]; then rm -rf "$run"; fi; }
trap cleanup EXIT

# ---- the guests' initramfs ----

inner="$run/inner"
stage_busybox "$inner"
stage_modules "$inner" "virtio_net virtio_pci"
cat >"$inner/init" <<'INIT'
#!/bin/sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/null >/dev/console 2>&1
echo "GUEST-INIT $(uname -r) up $(cut -d' ' -f1 /proc/uptime)s"
# virtio_net without TX NAPI (napi_tx=0): the guest kernel (6.1) has a bug
# that a power-off in the middle of a transfer trips: device_shutdown()
# breaks the TX queue, and virtnet_poll_cleantx() then loops for ever in
# free_old_xmit_skbs() (virtqueue_get_buf() returns nothing on a broken
# queue, virtqueue_enable_cb_delayed() never says done while the device has
# completed buffers the driver has not taken). Seen here: a soft lockup of
# ksoftirqd with the vCPU in free_old_xmit_skbs. Fixed in Linux by
# "virtio_ring: fix infinite loop in virtnet_poll_cleantx when device is
# broken"; without TX NAPI the loop is not entered.
while read -r m; do
	o=""
	[ "$m" = virtio_net.ko ] && o="napi_tx=0"
	insmod "/lib/modules/$m" $o || echo "GUEST-MODULE-FAILED $m"
done </etc/modules
# Where the modules are, for an address the VMM logs if the guest hangs.
while read -r m size _ _ _ addr; do echo "GUEST-MODULE $m $addr $size"; done </proc/modules
ip=""; peer=""
for a in $(cat /proc/cmdline); do
	case "$a" in
	vdemux.ip=*) ip="${a#*=}" ;;
	vdemux.peer=*) peer="${a#*=}" ;;
	esac
done
n=0
while [ ! -e /sys/class/net/eth0 ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
ip link set lo up
ip link set eth0 up
ip addr add "$ip/24" dev eth0
echo "GUEST-READY $ip $(cat /sys/class/net/eth0/address) up $(cut -d' ' -f1 /proc/uptime)s"
say() { echo "$*"; echo "<2>$*" >/dev/kmsg; }
# netstat: the interface's receive counters. kerrors: kernel log lines about
# virtio, the network or pages that read as errors, and any kernel BUG,
# WARNING or Oops (none expected), but for one warning of the guest's boot
# that has nothing to do with the network: fpu/xstate.c's XSAVE size check,
# which the nested CPU model of the lab trips.
netstat() {
	s=/sys/class/net/eth0/statistics
	echo "GUEST-NETSTAT rx_packets=$(cat $s/rx_packets) rx_errors=$(cat $s/rx_errors) rx_dropped=$(cat $s/rx_dropped) rx_length_errors=$(cat $s/rx_length_errors) rx_over_errors=$(cat $s/rx_over_errors) irq11_$(sed -n 's/^count /count=/p' /proc/irq/11/spurious) irq11_$(sed -n 's/^unhandled /unhandled=/p' /proc/irq/11/spurious)"
}
kerrors() {
	dmesg | grep -iE 'virtio|eth0|net|page|napi|skb' | \
		grep -iE 'error|fail|bad|corrupt|invalid|not a head|too short|short packet|unexpected|bug|warn|oops|drop' | \
		sed 's/^/GUEST-KERROR /'
	dmesg | grep -E 'BUG:|WARNING:|Oops|Bad page|general protection|nobody cared|Disabling IRQ' | grep -v 'fpu/xstate\.c' |
		sed 's/^/GUEST-KERROR /'
	echo "GUEST-KLOG-CHECKED"
}
# receive PORT FILE TAG: 16 MiB from the lab into FILE (stdin must stay open,
# or busybox nc ends early; a pipeline ends with its last member, sleep, so
# completion is watched); then TAG with its size and md5, the interface's
# counters and the kernel log's errors.
receive() {
	(sleep 3600 | nc -l -p "$1" >"$2") &
	(n=0
	 while [ "$(wc -c <"$2" 2>/dev/null)" != 16777216 ]; do
		sleep 1; n=$((n + 1))
		[ $((n % 10)) = 0 ] && [ -s "$2" ] && say "GUEST-PROGRESS $3 $(wc -c <"$2" 2>/dev/null) bytes"
	 done
	 say "$3 $(wc -c <"$2") $(md5sum <"$2" | cut -d' ' -f1)"
	 rm -f "$2"
	 netstat
	 kerrors) &
}
receive 5000 /tmp/blob GUEST-RECV
receive 5004 /tmp/blob2 GUEST-RECV2
# A receiver that never reads: its nc is stopped before it accepts, so the
# sender fills the socket's buffer and then sees a zero window. The other
# guest's transfers must go on meanwhile.
mkfifo /tmp/stall.in
nc -l -p 5002 </tmp/stall.in >/dev/null &
stalled=$!
exec 3>/tmp/stall.in
n=0
while ! grep -q ':138A 00000000:0000 0A' /proc/net/tcp && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
kill -STOP $stalled
# Where the lab sends data while it powers this guest off.
(sleep 3600 | nc -l -p 5006 >/dev/null) &
if [ -n "$peer" ]; then
	ok=0
	for i in $(seq 30); do
		if ping -c 1 -W 2 "$peer" >/dev/null 2>&1; then ok=1; break; fi
	done
	if [ $ok = 1 ]; then
		out="$(ping -c 3 "$peer")"
		echo "GUEST-PING-PEER ok $(echo "$out" | grep 'packets transmitted' | cut -d, -f1,2) $(echo "$out" | grep round-trip)"
	else
		echo "GUEST-PING-PEER FAIL $peer"
	fi
fi
(sleep 3600 | nc -l -p 5001 >/tmp/quit) &
while [ ! -s /tmp/quit ]; do sleep 1; done
echo "GUEST-QUIT"
netstat
kerrors
poweroff -f
INIT
chmod 0755 "$inner/init"
pack "$inner" "$run/guest-initrd.cpio.gz"

# ---- the lab's initramfs ----

top="$run/top"
stage_busybox "$top"
stage_modules "$top" "kvm_amd tun"
mkdir -p "$top/guest"
cp "$vmm" "$top/bin/vmm"
cp "$kernel" "$top/guest/vmlinuz"
cp "$run/guest-initrd.cpio.gz" "$top/guest/initrd.cpio.gz"
# nokaslr: an address in a guest that the VMM logs is the lab kernel's
# address less the lab's KASLR offset (below).
printf '%s\n' "nokaslr ${E2E_GUEST_CMDLINE:-}" >"$top/guest/cmdline"
io_arg=""
[ "$io" = 1 ] && io_arg="--io-threads"
printf '%s\n' "$io_arg ${E2E_VMM_ARGS:-}" >"$top/guest/vmm-args"
cat >"$top/init" <<'INIT'
#!/bin/sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/null >/dev/console 2>&1
echo "E2E-LAB kernel $(uname -r) up $(cut -d' ' -f1 /proc/uptime)s"
while read -r m; do insmod "/lib/modules/$m" || echo "E2E-MODULE-FAILED $m"; done </etc/modules
up() { cut -d' ' -f1 /proc/uptime; }
check() { echo "E2E-CHECK $1 $2 ${3:-}"; }
# wait_log PATTERN SECONDS: until PATTERN is in the VMM's log.
wait_log() {
	n=0
	while ! grep -q "$1" /tmp/vmm.log 2>/dev/null; do
		[ $n -ge $(($2 * 5)) ] && return 1
		sleep 0.2; n=$((n + 1))
	done
}
ip link set lo up
dd if=/dev/urandom of=/tmp/blob bs=1M count=16 2>/dev/null
sum="$(md5sum </tmp/blob | cut -d' ' -f1)"
K=/guest/vmlinuz R=/guest/initrd.cpio.gz X="$(cat /guest/cmdline)"
t0=$(up)
echo "E2E-VMM start at ${t0}s"
: >/tmp/vmm.log
/bin/vmm --tap tap0 $(cat /guest/vmm-args) \
	--guest "name=a,kernel=$K,initrd=$R,mem=256M,mac=52:54:00:00:00:0a,rx=big,cmdline=vdemux.ip=10.0.0.2 vdemux.peer=10.0.0.3 $X" \
	--guest "name=b,kernel=$K,initrd=$R,mem=256M,mac=52:54:00:00:00:0b,rx=mergeable,cpus=2,queues=2,cmdline=vdemux.ip=10.0.0.3 $X" \
	>/tmp/vmm.log 2>&1 &
vmm=$!
tail -n +1 -f /tmp/vmm.log &
tailer=$!
n=0
while [ ! -e /sys/class/net/tap0 ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
ip addr add 10.0.0.1/24 dev tap0
ip link set tap0 up
for g in a b; do
	if wait_log "^\[$g\] GUEST-INIT" 240; then check boot-$g ok "init at $(up)s (vmm started at ${t0}s)"; else check boot-$g FAIL; fi
	if wait_log "^\[$g\] GUEST-READY" 60; then check eth0-$g ok; else check eth0-$g FAIL; fi
done
# Guest RAM in 2 MiB pages (examples/vmm's default, huge=on; the lab
# kernel's shmem_enabled is never): b's 256 MiB at least, as b is copied
# into and never flipped (a flip splits the 2 MiB page around it).
pmd=$(awk '/^ShmemPmdMapped:/ { print $2 }' /proc/meminfo)
if [ "${pmd:-0}" -ge 262144 ]; then
	check huge-pages ok "ShmemPmdMapped ${pmd} kB after boot, shmem_enabled $(cat /sys/kernel/mm/transparent_hugepage/shmem_enabled)"
else
	check huge-pages FAIL "ShmemPmdMapped ${pmd:-?} kB after boot"
fi
for x in a:10.0.0.2 b:10.0.0.3; do
	g=${x%%:*} addr=${x#*:}
	out="$(ping -c 5 -W 3 "$addr" 2>&1)"
	echo "E2E-PING lab-$g $(echo "$out" | grep 'packets transmitted' | cut -d, -f1,2)"
	if echo "$out" | grep -q ' 0% packet loss\| [1-4]0% packet loss'; then
		check ping-lab-$g ok "$(echo "$out" | grep round-trip)"
	else
		check ping-lab-$g FAIL "$(echo "$out" | tail -n 2 | tr '\n' ' ')"
	fi
done
if wait_log "^\[a\] GUEST-PING-PEER" 90 && grep -q "^\[a\] GUEST-PING-PEER ok" /tmp/vmm.log; then
	check ping-a-b ok "$(grep "^\[a\] GUEST-PING-PEER" /tmp/vmm.log | sed 's/.*ok //')"
else
	check ping-a-b FAIL
fi
# A guest's result line: its "say" writes it to the console and to the
# kernel log, whose copy (behind a timestamp) may come in the middle of the
# first on a guest of two vCPUs; either copy counts, a progress line not.
for x in a:10.0.0.2 b:10.0.0.3; do
	g=${x%%:*} addr=${x#*:}
	s=$(up)
	nc "$addr" 5000 </tmp/blob &
	sender=$!
	if wait_log "^\[$g\] [^P]*GUEST-RECV [0-9]" 180; then
		got="$(grep "^\[$g\] [^P]*GUEST-RECV [0-9]" /tmp/vmm.log | head -n1)"
		e=$(up)
		case "$got" in
		*"16777216 $sum"*) check tcp-16MiB-$g ok "md5 $sum, $(awk -v a=$s -v b=$e 'BEGIN { printf "%.1f", b - a }')s" ;;
		*) check tcp-16MiB-$g FAIL "sent $sum, guest: $got" ;;
		esac
	else
		check tcp-16MiB-$g FAIL "no GUEST-RECV; $(grep "^\[$g\] GUEST-PROGRESS" /tmp/vmm.log | tail -n 1)"
	fi
	kill $sender 2>/dev/null
done
# b stops reading: its receiver on 5002 is stopped (SIGSTOP), so the lab's
# sender to it fills b's socket buffer and stalls on a zero window. Another
# 16 MiB to a must arrive all the same.
nc 10.0.0.3 5002 </tmp/blob &
staller=$!
sleep 2
s=$(up)
nc 10.0.0.2 5004 </tmp/blob &
sender=$!
if wait_log "^\[a\] [^P]*GUEST-RECV2 [0-9]" 180; then
	got="$(grep "^\[a\] [^P]*GUEST-RECV2 [0-9]" /tmp/vmm.log | head -n1)"
	e=$(up)
	case "$got" in
	*"16777216 $sum"*) check b-stalled-a-runs ok "md5 $sum, $(awk -v a=$s -v b=$e 'BEGIN { printf "%.1f", b - a }')s while b does not read" ;;
	*) check b-stalled-a-runs FAIL "sent $sum, guest: $got" ;;
	esac
else
	check b-stalled-a-runs FAIL "no GUEST-RECV2; $(grep "^\[a\] GUEST-PROGRESS GUEST-RECV2" /tmp/vmm.log | tail -n 1)"
fi
kill $sender $staller 2>/dev/null
# The end of a guest both ways: a powers itself off in the middle of a
# transfer into it; b is still running when the VMM gets SIGTERM.
nc 10.0.0.2 5006 </tmp/blob &
sender=$!
sleep 3
(echo quit | nc 10.0.0.2 5001 >/dev/null 2>&1 &)
if wait_log "^\[a\] vmm: guest stopped: power-off" 60 && wait_log "engine check passed (a removed)" 10 &&
	wait_log "pages (a removed): .*: balanced" 5; then
	check poweroff-a ok "mid-transfer; VM removed, engine check passed, page gauges balanced"
else
	check poweroff-a FAIL "no power-off seen in 60 s; a's last lines: $(grep '^\[a\]' /tmp/vmm.log | tail -n 6 | tr '\n' ' ')"
fi
kill $sender 2>/dev/null
kill -TERM $vmm
n=0
while kill -0 $vmm 2>/dev/null && [ $n -lt 300 ]; do sleep 0.2; n=$((n + 1)); done
if kill -0 $vmm 2>/dev/null; then
	echo "E2E-VMM still running 60 s after SIGTERM: SIGKILL"
	kill -KILL $vmm
fi
wait $vmm
rc=$?
# Where a vCPU stopped from outside was: the guests run this kernel without
# KASLR, so the lab's /proc/kallsyms, less the lab's own offset, names the
# function.
text="$(grep ' _text$' /proc/kallsyms | cut -d' ' -f1)"
grep 'vmm: vCPU stopped running at rip 0x' /tmp/vmm.log | while read -r g line; do
	rip="$(echo "$line" | sed -n 's/.*rip 0x\([0-9a-f]*\).*/\1/p')"
	want="$(printf '%016x' $((0x$rip + 0x$text - 0xffffffff81000000)))"
	sym="$(awk -v w="$want" '$2 ~ /^[Tt]$/ && ($1 "") <= w && ($1 "") > b { b = $1 ""; s = $3 } END { print s }' /proc/kallsyms)"
	# in one of the guest's modules: which, and where in it
	mod="$(grep -F "$g GUEST-MODULE " /tmp/vmm.log | while read -r _ _ m addr size; do
		[ $((0x$rip >= addr && 0x$rip < addr + size)) = 1 ] && printf '%s+0x%x' "$m" $((0x$rip - addr))
	done)"
	[ -n "$mod" ] && sym="$mod"
	echo "E2E-VCPU $g rip 0x$rip in ${sym:-?}"
done
sleep 0.5
kill $tailer 2>/dev/null
if grep -q "vmm: signal 15: stopping" /tmp/vmm.log && grep -q "engine check passed (b removed)" /tmp/vmm.log; then
	check sigterm-b ok "VM removed, engine check passed"
else
	check sigterm-b FAIL
fi
if [ $rc = 0 ] && grep -q "engine check passed (end)" /tmp/vmm.log; then check vmm-exit ok "rc=0, engine check passed"; else check vmm-exit FAIL "rc=$rc"; fi
echo "E2E-DONE at $(up)s"
poweroff -f
INIT
chmod 0755 "$top/init"
pack "$top" "$run/initrd.cpio.gz"

# ---- boot the lab ----

# The lab's own timer as a periodic LAPIC tick. With its default one-shot
# TSC-deadline timer the lab was seen to stop for good (qemu idle, no
# console, no timer) while nested guests ran, three runs out of four.
lab_timer="lapic=notscdeadline nohz=off highres=off"
boot() {
	timeout --kill-after=10 "$timeout_s" "$qemu" \
		-accel tcg -cpu max -m 2048 -smp 1 -nic none -nographic -no-reboot \
		-kernel "$kernel" -initrd "$run/initrd.cpio.gz" \
		-append "console=ttyS0 panic=-1 quiet loglevel=3 $lab_timer" ${E2E_QEMU_ARGS:-} \
		</dev/null >"$run/console.log" 2>"$run/qemu.err"
}
t0=$(date +%s.%N)
status=0
boot || status=$?
if [ "$status" = 124 ] || [ "$status" = 137 ]; then
	echo "e2e: the lab timed out after ${timeout_s}s; retrying once" >&2
	cp "$run/console.log" "$run/console.timeout1.log"
	status=0
	t0=$(date +%s.%N)
	boot || status=$?
fi
t1=$(date +%s.%N)
secs="$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')"

tr -d '\r' <"$run/console.log" >"$run/console.txt"
txt="$run/console.txt"
grep -a 'E2E-\|vmm: engine\|vmm: pages\|vmm: tap\|vmm: vm\|vmm: rxq\|vmm: tx\|vmm: mappings\|vmm: kvm\|vmm: exit\|vmm: signal\|vmm: guest stopped\|vmm: receive queue\|vmm: vCPU\|vmm: the guest broke\|GUEST-\|reboot: ' "$txt" |
	grep -av 'E2E-CHECK\|E2E-PING\|^\s*$' || true

# ---- checks on the VMM's counters and the guests' logs (from the console) ----

# num LINE KEY: the number right after KEY in LINE (the last KEY in it).
num() { echo "$1" | sed -n "s/.*$2\([0-9][0-9]*\).*/\1/p" | head -n1; }
hcheck() { echo "E2E-CHECK $1 $2 ${3:-}" >>"$txt"; }
eng="$(grep -a 'vmm: engine: pages' "$txt" | tail -n1)"
flips="$(num "$eng" 'flips ')"; copies="$(num "$eng" 'copies ')"
for g in a b; do
	vm="$(grep -a "^\[$g\] vmm: vm: delivered" "$txt" | tail -n1)"
	rq="$(grep -a "^\[$g\] vmm: rxq: frames" "$txt" | tail -n1)"
	eval "vm_flips_$g=\$(num \"\$vm\" 'flips ')"
	eval "vm_copies_$g=\$(num \"\$vm\" 'copies ')"
	eval "rq_frames_$g=\$(num \"\$rq\" 'frames ')"
	eval "rq_flipped_$g=\$(num \"\$rq\" '(flipped ')"
	eval "rq_copied_$g=\$(num \"\$rq\" 'copied ')"
	# The receive interrupts: decided by the library's queue, raised by the
	# VMM's device (its callback sets the ISR bit, then the irqfd), each one.
	irq="$(grep -a "^\[$g\] vmm: irq: receive queue decided" "$txt" | tail -n1)"
	decided="$(num "$irq" 'decided ')"; raised="$(num "$irq" 'raised ')"
	if [ -n "$decided" ] && [ "${raised:-x}" = "$decided" ] && [ "$decided" -gt 0 ]; then
		hcheck irq-$g ok "receive interrupts decided $decided, raised by the device $raised"
	else
		hcheck irq-$g FAIL "${irq:-no irq line}"
	fi
	# Both ring features negotiated by the guest's legacy virtio-pci driver.
	started="$(grep -a "^\[$g\] vmm: receive queue started" "$txt" | tail -n1)"
	case "$started" in
	*"indirect yes, event_idx yes"*) hcheck features-$g ok "$(echo "$started" | sed 's/.*features //')" ;;
	*) hcheck features-$g FAIL "${started:-no receive queue started}" ;;
	esac
	# The guest's kernel log and interface counters: no virtio, page or
	# network error.
	kerr="$(grep -a "^\[$g\] GUEST-KERROR" "$txt" || true)"
	ns="$(grep -a "^\[$g\] GUEST-NETSTAT" "$txt" | tail -n1)"
	if ! grep -aq "^\[$g\] GUEST-KLOG-CHECKED" "$txt" || [ -z "$ns" ]; then
		hcheck guest-log-$g FAIL "the guest's log was not checked"
	elif [ -n "$kerr" ] || [ "$(num "$ns" 'rx_errors=')" != 0 ] || [ "$(num "$ns" 'rx_length_errors=')" != 0 ]; then
		hcheck guest-log-$g FAIL "$(echo "$ns" | sed 's/.*GUEST-NETSTAT //'); $(echo "$kerr" | wc -l) kernel error line(s)"
	else
		hcheck guest-log-$g ok "no virtio/net/page error; $(echo "$ns" | sed 's/.*GUEST-NETSTAT //')"
	fi
done
# a (big packets, COPY_NEVER): its frames are flipped. The bound is half of
# the frames its queue completed, not all of them: a flip is counted per
# page and every frame that reaches a big-packet chain is flipped, but a
# frame can also be completed by copy (a chain the queue cannot flip: its
# data offset differs from the learned one, or a page of it is shared with
# a ring), so "flips >= frames" would depend on the guest's allocator. Half
# still fails loudly if the flip path is not taken (flips near 0), as the
# 16 MiB transfers are thousands of frames against a few dozen others.
if [ -n "${rq_frames_a:-}" ] && [ "${rq_frames_a:-0}" -gt 0 ] && [ "${vm_flips_a:-0}" -ge $((rq_frames_a / 2)) ]; then
	hcheck flips-a ok "vm flips $vm_flips_a, copies $vm_copies_a; queue frames $rq_frames_a (flipped $rq_flipped_a, copied $rq_copied_a)"
else
	hcheck flips-a FAIL "vm flips ${vm_flips_a:-?}; queue frames ${rq_frames_a:-?} (flipped ${rq_flipped_a:-?})"
fi
# b (mergeable): copied, never flipped.
if [ "${vm_flips_b:-x}" = 0 ] && [ "${rq_flipped_b:-x}" = 0 ] && [ "${vm_copies_b:-0}" -gt 0 ] &&
	[ "${rq_copied_b:-0}" = "${rq_frames_b:-x}" ]; then
	hcheck copies-b ok "vm flips 0, copies $vm_copies_b; queue frames $rq_frames_b, all copied"
else
	hcheck copies-b FAIL "vm flips ${vm_flips_b:-?}, copies ${vm_copies_b:-?}; queue frames ${rq_frames_b:-?} (flipped ${rq_flipped_b:-?}, copied ${rq_copied_b:-?})"
fi

# b (two vCPUs, two queue pairs): its driver took VIRTIO_NET_F_MQ and
# enabled both pairs through the control queue, and MSI-X.
ctrl="$(grep -a "^\[b\] vmm: ctrl:" "$txt" | tail -n1)"
msix="$(grep -a "^\[b\] vmm: msix:" "$txt" | tail -n1)"
case "$ctrl $msix" in
*"of 2 (at most 2)"*"msix: on"*) hcheck mq-b ok "$(echo "$ctrl" | sed 's/.*ctrl: //'); $(echo "$msix" | sed 's/.*msix: //'); $(grep -a "^\[b\] vmm: rxq [0-9]:" "$txt" | sed 's/.*vmm: //' | tr '\n' ' ')" ;;
*) hcheck mq-b FAIL "${ctrl:-no ctrl line}; ${msix:-no msix line}" ;;
esac

# With --io-threads: two shards (the main thread's and pair 1's thread's),
# each took frames (from its TAP queue or a guest's transmit ring), and
# frames crossed between them (handed over by the library).
expected=23
if [ "$io" = 1 ]; then
	expected=24
	sh0="$(grep -a 'vmm: engine: shard 0:' "$txt" | tail -n1)"
	sh1="$(grep -a 'vmm: engine: shard 1:' "$txt" | tail -n1)"
	in0="$(num "$sh0" ' in ')"; in1="$(num "$sh1" ' in ')"
	if [ -n "$sh0" ] && [ -n "$sh1" ] && [ "$(num "$sh0" 'rx ')" -gt 0 ] && [ "$(num "$sh1" 'rx ')" -gt 0 ] &&
		[ $((in0 + in1)) -gt 0 ]; then
		hcheck shards ok "$(echo "$sh0" | sed 's/.*engine: //'); $(echo "$sh1" | sed 's/.*engine: //')"
	else
		hcheck shards FAIL "${sh0:-no shard 0 line}; ${sh1:-no shard 1 line}"
	fi
fi

grep -a '^E2E-CHECK' "$txt" || true
npass=$(grep -ac '^E2E-CHECK [^ ]* ok' "$txt" || true)
nfail=$(grep -ac '^E2E-CHECK [^ ]* FAIL' "$txt" || true)
problem=""
if [ "$status" = 124 ] || [ "$status" = 137 ]; then
	problem="the lab timed out twice (${timeout_s}s each)"
elif ! grep -aq '^E2E-DONE' "$txt"; then
	problem="the lab did not finish (no E2E-DONE)"
elif grep -aq 'Kernel panic' "$txt"; then
	problem="kernel panic"
fi
# Pings answered/sent: the lab's to each guest, and a's to b.
sent=0 answered=0
while read -r t r; do
	sent=$((sent + t)); answered=$((answered + r))
done < <(grep -a 'E2E-PING \|GUEST-PING-PEER ok' "$txt" |
	sed -n 's/.* \([0-9][0-9]*\) packets transmitted, \([0-9][0-9]*\) packets received.*/\1 \2/p')
tcp=$((16777216 * $(grep -ac '^E2E-CHECK \(tcp-16MiB-[ab]\|b-stalled-a-runs\) ok' "$txt" || true)))
guests=$(grep -ac '^\[[a-z]\] GUEST-READY' "$txt" || true)
echo "E2E-RESULT $npass of $expected checks passed, $nfail failed; lab run ${secs}s (kernel $kver)${problem:+; $problem}"
verdict=FAIL
if [ -z "$problem" ] && [ "$nfail" = 0 ] && [ "$npass" = "$expected" ]; then verdict=ok; fi
# Offloads: a's frames flipped and copied by its queue, GSO frames read
# from the TAP and sent by each guest, and what the engine segmented (for a
# destination that did not negotiate the frame's offload).
tapo="$(grep -a 'vmm: tap: rx gso' "$txt" | tail -n1)"
engo="$(grep -a 'vmm: engine: offloads passed' "$txt" | tail -n1)"
gso_tx_a="$(num "$(grep -a '^\[a\] vmm: tx: ' "$txt" | tail -n1)" '(gso ')"
gso_tx_b="$(num "$(grep -a '^\[b\] vmm: tx: ' "$txt" | tail -n1)" '(gso ')"
echo "e2e: offloads: a_flipped=${rq_flipped_a:-?} a_copied=${rq_copied_a:-?} tap_gso=$(num "$tapo" 'rx gso ') tap_offloads=$(echo "$tapo" | sed -n 's/.*taken \(0x[0-9a-f]*\).*/\1/p') gso_tx_a=${gso_tx_a:-?} gso_tx_b=${gso_tx_b:-?} passed=$(num "$engo" 'passed ') segmented=$(num "$engo" 'segmented ') segments=$(num "$engo" 'into ')"
echo "e2e: guests=$guests pings=$answered/$sent tcp_bytes=$tcp flips=${flips:-?} copies=${copies:-?} check=$verdict"
if [ "$verdict" = ok ]; then
	exit 0
fi
keep=1
echo "e2e: run files kept in $run" >&2
exit 1

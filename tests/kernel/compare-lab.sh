#!/bin/sh
# SPDX-License-Identifier: MIT
# The /init of compare-qemu.sh's kernel lab (busybox sh): runs each case of
# /guest/cases, /guest/rounds times, and prints one CMP-RAW line per
# transfer for compare-qemu.sh to read. Not meant to run anywhere else.
/bin/busybox --install -s /bin
export PATH=/bin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/null >/dev/console 2>&1
echo "CMP-LAB kernel $(uname -r) up $(cut -d' ' -f1 /proc/uptime)s"
while read -r m; do insmod "/lib/modules/$m" || echo "CMP-MODULE-FAILED $m"; done </etc/modules
up() { cut -d' ' -f1 /proc/uptime; }
bytes=$(cat /guest/bytes) reps=$(cat /guest/reps) rounds=$(cat /guest/rounds) cases=$(cat /guest/cases)
streams=$(cat /guest/streams 2>/dev/null || echo 1)
app=$(cat /guest/app) napi_tx=$(cat /guest/napi_tx)
K=/guest/vmlinuz R=/guest/initrd.cpio.gz
thp=/sys/kernel/mm/transparent_hugepage/shmem_enabled
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
# cpu PID...: utime,stime,guest_time summed over the processes, in ticks.
cpu() {
	for p in "$@"; do awk '{ print $14, $15, $43 }' "/proc/$p/stat" 2>/dev/null; done |
		awk '{ u += $1; s += $2; g += $3 } END { printf "%d,%d,%d", u, s, g }'
}
# kthreads PID...: utime+stime of the vhost-<pid> kernel threads, in ticks.
kthreads() {
	t=0
	for p in "$@"; do
		for d in /proc/[0-9]*; do
			[ "$(cat "$d/comm" 2>/dev/null)" = "vhost-$p" ] || continue
			t=$((t + $(awk '{ print $14 + $15 }' "$d/stat")))
		done
	done
	echo $t
}
# field LOG PATTERN KEY: KEY=<value> from the first line of LOG matching PATTERN.
field() { grep -a "$2" "$1" | head -n1 | tr -d '\r' | sed -n "s/.*$3=\([0-9a-f]*\).*/\1/p"; }
# stop SECONDS PID...: wait for the PIDs to end by themselves, then TERM, KILL.
stop() {
	s=$1; shift
	n=0
	while [ $n -lt $((s * 5)) ]; do
		alive=0
		for p in "$@"; do kill -0 $p 2>/dev/null && alive=1; done
		[ $alive = 0 ] && break
		sleep 0.2; n=$((n + 1))
	done
	for p in "$@"; do kill -TERM $p 2>/dev/null; done
	# The VMM takes its guests out of the engine and prints its counters
	# on SIGTERM: up to 20 s, then KILL.
	n=0
	while [ $n -lt 100 ]; do
		alive=0
		for p in "$@"; do kill -0 $p 2>/dev/null && alive=1; done
		[ $alive = 0 ] && break
		sleep 0.2; n=$((n + 1))
	done
	for p in "$@"; do kill -KILL $p 2>/dev/null; wait $p 2>/dev/null; done
}
wait_gone() {
	n=0
	while [ -e "/sys/class/net/$1" ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
}
wait_dev() {
	n=0
	while [ ! -e "/sys/class/net/$1" ] && [ $n -lt 300 ]; do sleep 0.1; n=$((n + 1)); done
}
gcmd() {
	echo "vdemux.bytes=$bytes vdemux.reps=$reps vdemux.streams=$streams vdemux.role=$1 vdemux.ip=$2 vdemux.peer=${3:-} vdemux.app=$app${napi_tx:+ vdemux.napi_tx=$napi_tx}"
}
# qemu_guest NAME TAP MAC VHOST ROLE IP [PEER] [DEVICE-OPTIONS]: start it,
# its pid added to pids.
qemu_guest() {
	/usr/bin/qemu-system-x86_64 -L /usr/share/qemu -M microvm -enable-kvm -cpu host -m 256 -smp 1 \
		-nographic -no-reboot -kernel $K -initrd $R \
		-append "console=ttyS0 reboot=t panic=-1 quiet $(gcmd $5 $6 ${7:-})" \
		-netdev "tap,id=n,ifname=$2,script=no,downscript=no,vhost=$4" \
		-device "virtio-net-device,netdev=n,mac=$3${8:-}" \
		</dev/null >/tmp/$1.log 2>&1 &
	pids="$pids $!"
}
# start CASE: start its guests; sets pids, rlog (the receiver's log) and
# slog (the sender's, guest to guest).
start() {
	rm -f /tmp/*.log
	slog="" pids=""
	case "$1" in
	vmm-*)
		x=""
		case "$1" in vmm-flip-one) x=",rx=big" ;; vmm-copy-one) x=",rx=mergeable" ;; vmm-auto-one) x=",rx=auto" ;;
		vmm-4k-one) x=",huge=off" ;;
		vmm-mq1) x=",cpus=2,queues=1" ;; vmm-mq2|vmm-mq2-io) x=",cpus=2,queues=2" ;; esac
		o=""; [ "$1" = vmm-mq2-io ] && o="--io-threads"
		set -- "--guest" "name=r,kernel=$K,initrd=$R,mem=256M,mac=52:54:00:00:00:0a$x,cmdline=$(gcmd recv 10.0.0.2)"
		if [ "$c" = vmm-g2g ]; then
			set -- "$@" --guest "name=s,kernel=$K,initrd=$R,mem=256M,mac=52:54:00:00:00:0b,cmdline=$(gcmd send 10.0.0.3 10.0.0.2)"
			slog=/tmp/vmm.log
		fi
		/bin/vmm --tap tap0 $o "$@" >/tmp/vmm.log 2>&1 &
		pids=$! rlog=/tmp/vmm.log
		wait_dev tap0
		ip addr add 10.0.0.1/24 dev tap0
		ip link set tap0 up
		;;
	*-one)
		v=off x=""
		[ "$1" = vhost-one ] && v=on
		[ "$1" = qemu-mtu-one ] && x=",guest_tso4=off,guest_tso6=off,guest_ecn=off,guest_ufo=off"
		qemu_guest r tap0 52:54:00:00:00:0c $v recv 10.0.0.2 "" "$x"
		rlog=/tmp/r.log
		wait_dev tap0
		ip addr add 10.0.0.1/24 dev tap0
		ip link set tap0 up
		;;
	*-g2g)
		v=off
		[ "$1" = vhost-g2g ] && v=on
		brctl addbr br0
		ip addr add 10.0.0.1/24 dev br0
		ip link set br0 up
		qemu_guest r tap0 52:54:00:00:00:0c $v recv 10.0.0.2
		qemu_guest s tap1 52:54:00:00:00:0d $v send 10.0.0.3 10.0.0.2
		rlog=/tmp/r.log slog=/tmp/s.log
		for t in tap0 tap1; do wait_dev $t; brctl addif br0 $t; ip link set $t up; done
		;;
	esac
}
# vmm_counters NAME: SIGUSR2 to the VMM (case vmm-*; a VMM older than its SIGUSR2
# counters would die of it), its "vmm: counters:"
# lines into /tmp/NAME.cnt.
vmm_counters() {
	case "$c" in vmm-*) ;; *) return 0 ;; esac
	n0=$(grep -ac 'vmm: counters: tap_' /tmp/vmm.log)
	kill -USR2 $pids 2>/dev/null
	n=0
	while [ "$(grep -ac 'vmm: counters: tap_' /tmp/vmm.log)" = "$n0" ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
	tr -d '\r' </tmp/vmm.log | grep -a 'vmm: counters:' | tail -n $(($(echo "$pids $slog" | wc -w) + 1)) >/tmp/$1.cnt
}
# counters_delta CASE LABEL: the VMM's counters over the transfer, per guest.
counters_delta() {
	[ -s /tmp/c0.cnt ] && [ -s /tmp/c1.cnt ] || return 0
	awk -v h="CMP-DEV $1 $2" '
	{ who = $1 ~ /^\[/ ? $1 : "[vmm]"; o = ""
	  for (k = 1; k <= NF; k++) if (split($k, kv, "=") == 2) {
		if (FILENAME == ARGV[1]) a[who, kv[1]] = kv[2]; else o = o " " kv[1] "=" kv[2] - a[who, kv[1]] }
	  if (FILENAME != ARGV[1]) print h, who o }' /tmp/c0.cnt /tmp/c1.cnt
}
# transfer CASE LABEL I: the I-th transfer of the running case.
transfer() {
	if ! wait_log $rlog "GUEST-READY $3 " 300; then echo "CMP-FAIL $1 $2 the receiver did not get ready"; return 1; fi
	if [ -n "$slog" ] && ! wait_log $slog "GUEST-SEND-READY $3 go" 300; then echo "CMP-FAIL $1 $2 the sender did not get ready"; return 1; fi
	[ "$3" = 1 ] && { ping -c 2 -W 3 10.0.0.2 >/dev/null 2>&1 || echo "CMP-NOTE $1 ping failed"; }
	want=$sum
	[ -n "$slog" ] && want=$(grep -a GUEST-SRC-MD5 $slog | head -n1 | tr -d '\r' | sed 's/.*GUEST-SRC-MD5 //')
	rx0=$(field $rlog "GUEST-READY $3 " rx_packets)
	rm -f /tmp/c0.cnt /tmp/c1.cnt
	vmm_counters c0
	c0=$(cpu $pids) k0=$(kthreads $pids) t0=$(up)
	senders=""
	if [ -n "$slog" ]; then
		echo go | nc 10.0.0.3 $((6000 + $3)) &
		senders=$!
	else
		k=0
		while [ $k -lt $streams ]; do
			if [ "$app" = nc ]; then
				nc 10.0.0.2 $((5000 + $3 + 100 * k)) </tmp/blob &
			else
				lab_xfer send 10.0.0.2 $((5000 + $3 + 100 * k)) /tmp/blob &
			fi
			senders="$senders $!"
			k=$((k + 1))
		done
	fi
	if ! wait_log $rlog "GUEST-DONE $3 " 600; then
		kill $senders 2>/dev/null
		echo "CMP-FAIL $1 $2 no GUEST-DONE"; return 1
	fi
	c1=$(cpu $pids) k1=$(kthreads $pids) t1=$(up)
	kill $senders 2>/dev/null
	vmm_counters c1
	rx1=$(field $rlog "GUEST-DONE $3 " rx_packets)
	wait_log $rlog "GUEST-MD5 $3 " 60
	got=$(grep -a "GUEST-MD5 $3 " $rlog | head -n1 | tr -d '\r' | sed 's/.*GUEST-MD5 [0-9]* //; s/ *$//')
	md5=FAIL; [ "$got" = "$want" ] && md5=ok
	nb=$bytes; [ -z "$slog" ] && nb=$((bytes * streams))
	echo "CMP-RAW $1 $2 t0=$t0 t1=$t1 cpu0=$c0 cpu1=$c1 k0=$k0 k1=$k1 rx0=$rx0 rx1=$rx1 bytes=$nb md5=$md5"
	# Out of the measurement: what each side's TCP did, and the device.
	if [ -n "$slog" ]; then
		echo dump | nc 10.0.0.3 $((7000 + $3)) &
		wait_log $slog "GUEST-STATS-END $3" 60 || echo "CMP-NOTE $1 $2 no statistics from the sender"
		kill $! 2>/dev/null
	fi
	for f in $rlog $slog; do
		tr -d '\r' <$f | grep -a "GUEST-NSTAT $3 \|GUEST-NET $3 \|GUEST-SS $3 " | sed "s/^.*GUEST-\([A-Z]*\) $3 /CMP-\1 $1 $2 /"
	done | sort -u
	counters_delta $1 $2
	case "$1" in vmm-*)
		echo "CMP-NOTE $1 $2 shmem_enabled=$(sed -n 's/.*\[\(.*\)\].*/\1/p' $thp 2>/dev/null)" \
			"$(awk '/^Shmem(HugePages|PmdMapped):/ { printf "%s%s kB ", $1, $2 }' /proc/meminfo)"
	esac
}
logs() {
	for f in /tmp/*.log; do
		tr -d '\r' <$f | grep -a 'vmm: engine: pages\|vmm: engine: offloads\|vmm: engine: dropped\|vmm: tap: \|vmm: tx: \|vmm: vm: \|vmm: rxq\|vmm: ctrl\|vmm: msix\|queue pairs\|I/O thread\|GUEST-IRQ\|vmm: receive queue started\|vmm: exit\|MODULE-FAILED\|qemu-system\|rror' |
			head -n 80 | sed "s|^|CMP-LOG $1 $(basename $f .log) |"
	done
}
round=1
while [ $round -le $rounds ]; do
	for c in $cases; do
		echo "CMP-CASE $c round $round start at $(up)s"
		start $c
		i=1
		while [ $i -le $reps ]; do
			transfer $c $round.$i $i || break
			i=$((i + 1))
		done
		case $c in *-g2g) stop 5 $pids ;; *) stop 20 $pids ;; esac
		logs $c
		wait_gone tap0
		wait_gone tap1
		if [ -e /sys/class/net/br0 ]; then ip link set br0 down; brctl delbr br0; fi
	done
	round=$((round + 1))
done
echo "CMP-DONE at $(up)s"
poweroff -f

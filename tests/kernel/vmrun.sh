#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# vmrun.sh: run static test programs inside a Debian kernel booted in
# qemu-system-x86_64 (TCG), which has a real KVM (kvm_amd on -cpu max) and a
# real IOMMU (emulated intel-iommu) even when the host has neither.
#
# Usage:
#   vmrun.sh [--modules "kvm_amd vfio-pci ..."] [--vfio-bind-e1000e]
#            [--timeout SECONDS] [--workdir DIR] [--keep] -- PROG[:ARG,ARG...] ...
#
#   PROG         path to a statically linked program; it is run as /tests/<name>
#                in the guest, in the order given. ":ARG,ARG" after the path
#                passes arguments (split on commas; no spaces or commas inside).
#                <name> is the file's basename (".2", ".3" appended to repeats).
#   --modules    kernel modules to load (modprobe names); their dependencies are
#                added and everything is insmod'ed in dependency order.
#   --vfio-bind-e1000e
#                bind the emulated e1000e (8086:10d3) to vfio-pci before the tests
#                (load vfio-pci and vfio_iommu_type1 with --modules).
#   --timeout    seconds for one boot (default 120); a boot that times out is
#                retried once.
#   --workdir    where the cached base initramfs and the run files go
#                (default ${XDG_CACHE_HOME:-$HOME/.cache}/vdemux-vmrun).
#   --keep       keep the run directory (initrd, console log) even on success.
#
# Environment: VMRUN_KERNEL=/boot/vmlinuz-X picks the kernel (its modules must
# be in /lib/modules/X); VMRUN_QEMU, VMRUN_BUSYBOX override those binaries.
#
# Output: the guest's lines from "VDEMUX-BEGIN <name>" to "VDEMUX-END <name> rc=N"
# for each program. Exit status: 0 if every program ended rc=0, 77 if every
# program ended rc=77 (skipped in the guest) or the host lacks a needed tool
# ("SKIP: <reason>" is printed), 1 otherwise (a program failed, an END marker is
# missing, the kernel panicked, or the boot timed out twice).

set -euo pipefail

FORMAT=2 # bump when the base initramfs layout changes (invalidates caches)

modules=""
vfio_bind=0
timeout_s=120
workdir="${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/vdemux-vmrun"
keep=0

# The comment block above: all of it for --help, the usage lines on errors.
header() { awk 'NR > 1 && !/^#/ { exit } NR > 1 && !/SPDX-License-Identifier/ { sub(/^# ?/, ""); print }' "$0"; }
usage() {
	header | sed -n '/^Usage:/,/^$/p' >&2
	exit 2
}

while [ $# -gt 0 ]; do
	case "$1" in
	--modules) modules="${2?}"; shift 2 ;;
	--modules=*) modules="${1#*=}"; shift ;;
	--vfio-bind-e1000e) vfio_bind=1; shift ;;
	--timeout) timeout_s="${2?}"; shift 2 ;;
	--timeout=*) timeout_s="${1#*=}"; shift ;;
	--workdir) workdir="${2?}"; shift 2 ;;
	--workdir=*) workdir="${1#*=}"; shift ;;
	--keep) keep=1; shift ;;
	--) shift; break ;;
	-h|--help) header; exit 0 ;;
	*) echo "vmrun: unknown option: $1" >&2; usage ;;
	esac
done
[ $# -gt 0 ] || { echo "vmrun: no test program given" >&2; usage; }
case "$timeout_s" in ''|*[!0-9]*) echo "vmrun: bad --timeout: $timeout_s" >&2; exit 2 ;; esac

skip() { echo "SKIP: $*"; exit 77; }
die() { echo "vmrun: $*" >&2; exit 1; }

# ---- host tools -----------------------------------------------------------

qemu="${VMRUN_QEMU:-$(command -v qemu-system-x86_64 || true)}"
[ -n "$qemu" ] && [ -x "$qemu" ] || skip "qemu-system-x86_64 not found (apt-get install qemu-system-x86)"
command -v cpio >/dev/null || skip "cpio not found"
command -v gzip >/dev/null || skip "gzip not found"
command -v timeout >/dev/null || skip "timeout (coreutils) not found"
command -v modprobe >/dev/null || [ -x /sbin/modprobe ] || skip "modprobe (kmod) not found"
modprobe_bin="$(command -v modprobe || echo /sbin/modprobe)"

busybox="${VMRUN_BUSYBOX:-/bin/busybox}"
[ -x "$busybox" ] || skip "busybox not found at $busybox (apt-get install busybox-static)"
if command -v readelf >/dev/null && readelf -l "$busybox" 2>/dev/null | grep -q 'program interpreter'; then
	skip "$busybox is dynamically linked (install busybox-static)"
fi

if [ -n "${VMRUN_KERNEL:-}" ]; then
	kernel="$VMRUN_KERNEL"
	kver="${kernel##*/vmlinuz-}"
	[ -r "$kernel" ] || skip "kernel $kernel not readable"
	[ -d "/lib/modules/$kver" ] || skip "no /lib/modules/$kver for $kernel"
else
	kernel="" kver=""
	for k in $(ls -1 /boot/vmlinuz-* 2>/dev/null | sort -V -r); do
		v="${k##*/vmlinuz-}"
		if [ -r "$k" ] && [ -d "/lib/modules/$v" ]; then kernel="$k" kver="$v"; break; fi
	done
	[ -n "$kernel" ] || skip "no readable /boot/vmlinuz-* with matching /lib/modules (apt-get install linux-image-amd64)"
fi

# ---- test programs --------------------------------------------------------

prog_paths=() prog_names=() prog_args=()
for spec in "$@"; do
	path="$spec" args=""
	if [ ! -e "$spec" ] && [[ "$spec" == *:* ]]; then
		path="${spec%%:*}" args="${spec#*:}"
	fi
	[ -f "$path" ] || die "test program not found: $path"
	[ -x "$path" ] || die "test program not executable: $path"
	if command -v readelf >/dev/null && readelf -l "$path" 2>/dev/null | grep -q 'program interpreter'; then
		die "$path is dynamically linked; link test programs with -static"
	fi
	name="$(basename "$path")" n=1 base="$name"
	while printf '%s\n' "${prog_names[@]:-}" | grep -qxF "$name"; do
		n=$((n + 1)) name="$base.$n"
	done
	prog_paths+=("$path") prog_names+=("$name") prog_args+=("${args//,/ }")
done

# ---- base initramfs: busybox + modules, cached ----------------------------

# Resolve modules and dependencies, in load order, without repeats.
modlist=()
for m in $modules; do
	out="$("$modprobe_bin" -d / -S "$kver" --show-depends "$m" 2>&1)" ||
		die "module $m not found for kernel $kver: $out"
	while read -r kind file rest; do
		[ "$kind" = insmod ] || continue # "builtin X": nothing to load
		file="$(readlink -m "$file")"
		case " ${modlist[*]:-} " in *" $file "*) continue ;; esac
		modlist+=("$file")
	done <<<"$out"
done

mkdir -p "$workdir/cache"
workdir="$(cd "$workdir" && pwd)"
# Keyed by the kernel version and the exact files (size, mtime) that go in, so
# an in-place kernel update with the same version string rebuilds it.
key="$({ printf '%s\n' "$FORMAT" "$kver"; stat -Lc '%n %s %Y' "$kernel" "$busybox" "${modlist[@]}"; } |
	sha256sum | cut -c1-16)"
base_cpio="$workdir/cache/base-$kver-$key.cpio.gz"

if [ ! -s "$base_cpio" ]; then
	stage="$(mktemp -d "$workdir/cache/stage.XXXXXX")"
	trap 'rm -rf "$stage"' EXIT
	mkdir -p "$stage"/{bin,proc,sys,dev,tmp,etc/vdemux,lib/modules/vdemux}
	cp "$busybox" "$stage/bin/busybox"
	# Applet links, made here in one go (forks are slow under emulation).
	# They point at the busybox binary's real host path (e.g. /usr/bin/busybox);
	# that path is made a link to /bin/busybox in the guest.
	"$busybox" --install -s "$stage/bin" 2>/dev/null || true
	target="$(readlink "$stage/bin/sh" 2>/dev/null || true)"
	if [ -z "$target" ]; then
		ln -s busybox "$stage/bin/sh"
	elif [ "$target" != /bin/busybox ] && [ ! -e "$stage$target" ]; then
		mkdir -p "$stage$(dirname "$target")"
		ln -s /bin/busybox "$stage$target"
	fi
	: >"$stage/etc/vdemux/modules"
	for f in "${modlist[@]:-}"; do
		[ -n "$f" ] || continue
		b="$(basename "$f")"
		case "$b" in
		*.ko.xz) b="${b%.xz}"; xz -dc "$f" >"$stage/lib/modules/vdemux/$b" ;;
		*.ko.zst) b="${b%.zst}"; zstd -qdc "$f" >"$stage/lib/modules/vdemux/$b" ;;
		*.ko.gz) b="${b%.gz}"; gzip -dc "$f" >"$stage/lib/modules/vdemux/$b" ;;
		*) cp "$f" "$stage/lib/modules/vdemux/$b" ;;
		esac || die "cannot decompress $f"
		echo "$b" >>"$stage/etc/vdemux/modules"
	done
	(cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) |
		gzip -1 >"$stage.cpio.gz"
	mv -f "$stage.cpio.gz" "$base_cpio" # atomic: parallel runs may race here
	rm -rf "$stage"
	trap - EXIT
else
	touch "$base_cpio" # mark as used; bases unused for a week are pruned
fi
find "$workdir/cache" -maxdepth 1 -name 'base-*.cpio.gz' -mtime +7 -delete 2>/dev/null || true

# ---- per-run initramfs: /init and the tests -------------------------------

# Run directories of failed runs are kept for a day.
find "$workdir" -maxdepth 1 -name 'run.*' -mmin +1440 -exec rm -rf {} + 2>/dev/null || true
run="$(mktemp -d "$workdir/run.XXXXXX")"
boot_pid=""
cleanup() { if [ "$keep" = 0 ]; then rm -rf "$run"; fi; }
on_signal() {
	[ -z "$boot_pid" ] || kill "$boot_pid" 2>/dev/null || true
	echo "vmrun: interrupted; run files in $run" >&2
	keep=1
	exit 143
}
trap cleanup EXIT
trap on_signal TERM INT HUP
mkdir -p "$run/top/tests" "$run/top/etc/vdemux"
for i in "${!prog_paths[@]}"; do
	cp "${prog_paths[$i]}" "$run/top/tests/${prog_names[$i]}"
	chmod 0755 "$run/top/tests/${prog_names[$i]}"
	printf '%s %s\n' "${prog_names[$i]}" "${prog_args[$i]}" >>"$run/top/etc/vdemux/tests"
done
[ "$vfio_bind" = 1 ] && : >"$run/top/etc/vdemux/vfio-bind-e1000e"

cat >"$run/top/init" <<'INIT'
#!/bin/sh
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
echo "VDEMUX-GUEST kernel $(uname -r)"

while read -r mod args; do
	[ -n "$mod" ] || continue
	insmod "/lib/modules/vdemux/$mod" $args || echo "VDEMUX-MODULE-FAILED $mod"
done </etc/vdemux/modules

if [ -e /etc/vdemux/vfio-bind-e1000e ]; then
	found=0
	for d in /sys/bus/pci/devices/*; do
		[ "$(cat "$d/vendor")" = 0x8086 ] && [ "$(cat "$d/device")" = 0x10d3 ] || continue
		found=1
		bdf="${d##*/}"
		[ -e "$d/driver" ] && echo "$bdf" >"$d/driver/unbind"
		echo vfio-pci >"$d/driver_override"
		echo "$bdf" >/sys/bus/pci/drivers_probe
		drv="$(readlink "$d/driver" 2>/dev/null)"
		grp="$(readlink "$d/iommu_group" 2>/dev/null)"
		if [ "${drv##*/}" = vfio-pci ]; then
			echo "VDEMUX-VFIO $bdf bound to vfio-pci, iommu group ${grp##*/}"
		else
			echo "VDEMUX-VFIO-FAILED $bdf driver '${drv##*/}' (is vfio-pci loaded? intel_iommu on?)"
		fi
	done
	[ "$found" = 1 ] || echo "VDEMUX-VFIO-FAILED no e1000e (8086:10d3) found"
fi

cd /tmp
while read -r name args; do
	echo "VDEMUX-BEGIN $name"
	/tests/$name $args
	rc=$?
	echo ""
	echo "VDEMUX-END $name rc=$rc"
done </etc/vdemux/tests
echo "VDEMUX-DONE"
poweroff -f
INIT
chmod 0755 "$run/top/init"
(cd "$run/top" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) |
	gzip -1 >"$run/top.cpio.gz"
# The kernel unpacks concatenated (separately compressed) cpio archives in turn.
cat "$base_cpio" "$run/top.cpio.gz" >"$run/initrd.cpio.gz"

# ---- boot -----------------------------------------------------------------

# no_timer_check: Linux checks that the timer's interrupt arrives through
# the (interrupt-remapped) IO-APIC within a short busy loop, and panics when
# it does not ("timer doesn't work through Interrupt-remapped IO-APIC"):
# under TCG on a loaded host the loop can end before the emulated timer
# fires. Seen 3 times in one loaded run; the timer works all the same.
boot() {
	timeout --kill-after=10 "$timeout_s" "$qemu" \
		-machine q35,kernel-irqchip=split -accel tcg -cpu max -m 1024 -smp 1 \
		-device intel-iommu,intremap=on,caching-mode=on \
		-device e1000e -nic none -nographic -no-reboot \
		-kernel "$kernel" -initrd "$run/initrd.cpio.gz" \
		-append "console=ttyS0 intel_iommu=on panic=-1 quiet loglevel=3 no_timer_check" \
		</dev/null >"$run/console.log" 2>"$run/qemu.err" &
	boot_pid=$!
	local st=0
	wait "$boot_pid" || st=$?
	boot_pid=""
	return "$st"
}

log="$run/console.log"
t0=$(date +%s.%N)
status=0
boot || status=$?
if [ "$status" = 124 ] || [ "$status" = 137 ]; then
	echo "vmrun: boot timed out after ${timeout_s}s; retrying once" >&2
	cp "$log" "$run/console.timeout1.log" 2>/dev/null || true
	status=0
	t0=$(date +%s.%N)
	boot || status=$?
fi
t1=$(date +%s.%N)
secs="$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')"

# ---- results --------------------------------------------------------------

tr -d '\r' <"$log" >"$run/console.txt"
txt="$run/console.txt"

# Print each program's section, BEGIN to END marker (END may follow a partial line).
awk '
	# Host-side markers may follow firmware escape codes on the same line.
	!inside && match($0, /VDEMUX-(GUEST|VFIO|MODULE-FAILED)[^ ]*/) { print substr($0, RSTART); next }
	/VDEMUX-BEGIN / { inside = 1; blank = 0 }
	/VDEMUX-END [^ ]+ rc=[0-9]+/ { inside = 0; print; next }
	# An empty line is held back: /init adds one before each END marker.
	inside && $0 == "" { blank++; next }
	inside { while (blank > 0) { print ""; blank-- } print }
' "$txt"

npass=0 nskip=0 nfail=0
for name in "${prog_names[@]}"; do
	rc="$(grep -ao "VDEMUX-END $name rc=[0-9]*" "$txt" | head -n1 | sed 's/.*rc=//')" || true
	case "$rc" in
	"") echo "vmrun: $name: no END marker (guest crashed, hung or never ran it)" >&2
	    nfail=$((nfail + 1)) ;;
	0) npass=$((npass + 1)) ;;
	77) nskip=$((nskip + 1)) ;;
	*) echo "vmrun: $name: failed, rc=$rc" >&2
	   nfail=$((nfail + 1)) ;;
	esac
done

problem=""
if [ "$status" = 124 ] || [ "$status" = 137 ]; then
	problem="boot timed out twice (${timeout_s}s each)"
elif grep -aq 'Kernel panic' "$txt"; then
	problem="kernel panic"
elif [ "$status" != 0 ]; then
	problem="qemu exited with status $status: $(head -c 500 "$run/qemu.err")"
fi
[ -z "$problem" ] || echo "vmrun: $problem" >&2

# QEMU's own messages (e.g. IOMMU translation faults) help explain results.
grep -v 'has no peer' "$run/qemu.err" 2>/dev/null | sed 's/^/vmrun: qemu: /' >&2 || true

n=${#prog_names[@]}
echo "vmrun: kernel $kver, boot+tests ${secs}s; $npass passed, $nskip skipped, $nfail failed of $n" >&2
if [ -z "$problem" ]; then
	[ "$npass" = "$n" ] && exit 0
	[ "$nskip" = "$n" ] && exit 77
fi
if [ "$nfail" = 0 ] && [ -z "$problem" ]; then
	echo "vmrun: some programs passed and some skipped: counted as a failure" >&2
fi
keep=1
echo "vmrun: last console lines (run files kept in $run):" >&2
tail -n 40 "$txt" | sed 's/^/  | /' >&2
exit 1

# SPDX-License-Identifier: MIT
# Helpers shared by the scripts that build kernel-lab initramfs images
# (e2e.sh, compare-qemu.sh). Source it; the caller defines skip() and die();
# lab_find_host sets what the others use: qemu, modprobe_bin, busybox (a
# static busybox), kernel and kver (its version).

# lab_find_host VMM [TOOL ...]: VMM (a static executable), qemu, the tools
# (cpio gzip timeout xz and the TOOLs), modprobe, a static busybox, and a
# kernel with its modules; skip() what the host lacks, die() on bad input.
lab_find_host() {
	local vmm="$1" t k
	shift
	[ -n "$vmm" ] || die "--vmm is required"
	[ -x "$vmm" ] || die "not executable: $vmm"
	if command -v readelf >/dev/null && readelf -l "$vmm" 2>/dev/null | grep -q 'program interpreter'; then
		die "$vmm is dynamically linked; the lab needs it static"
	fi
	qemu="${VMRUN_QEMU:-$(command -v qemu-system-x86_64 || true)}"
	[ -n "$qemu" ] && [ -x "$qemu" ] || skip "qemu-system-x86_64 not found (apt-get install qemu-system-x86)"
	for t in cpio gzip timeout xz "$@"; do command -v "$t" >/dev/null || skip "$t not found"; done
	modprobe_bin="$(command -v modprobe || echo /sbin/modprobe)"
	[ -x "$modprobe_bin" ] || skip "modprobe (kmod) not found"
	busybox="${VMRUN_BUSYBOX:-/bin/busybox}"
	[ -x "$busybox" ] || skip "busybox not found at $busybox (apt-get install busybox-static)"
	if command -v readelf >/dev/null && readelf -l "$busybox" 2>/dev/null | grep -q 'program interpreter'; then
		skip "$busybox is dynamically linked (install busybox-static)"
	fi
	kernel="${VMRUN_KERNEL:-}"
	if [ -z "$kernel" ]; then
		for k in $(ls -1 /boot/vmlinuz-* 2>/dev/null | sort -V -r); do
			if [ -r "$k" ] && [ -d "/lib/modules/${k##*/vmlinuz-}" ]; then kernel="$k"; break; fi
		done
	fi
	[ -n "$kernel" ] && [ -r "$kernel" ] || skip "no readable /boot/vmlinuz-* with its modules (apt-get install linux-image-amd64)"
	kver="${kernel##*/vmlinuz-}"
	[ -d "/lib/modules/$kver" ] || skip "no /lib/modules/$kver"
}

# stage_modules DIR "MOD ...": the modules and their dependencies,
# decompressed into DIR/lib/modules, in load order in DIR/etc/modules.
stage_modules() {
	local dir="$1" seen=" " m kind file rest b out
	mkdir -p "$dir/lib/modules" "$dir/etc"
	: >"$dir/etc/modules"
	for m in $2; do
		out="$("$modprobe_bin" -d / -S "$kver" --show-depends "$m" 2>&1)" || die "module $m: $out"
		while read -r kind file rest; do
			[ "$kind" = insmod ] || continue
			b="$(basename "$file")"
			case "$seen" in *" $b "*) continue ;; esac
			seen="$seen$b "
			case "$b" in
			*.ko.xz) b="${b%.xz}"; xz -dc "$file" >"$dir/lib/modules/$b" ;;
			*.ko.zst) b="${b%.zst}"; zstd -qdc "$file" >"$dir/lib/modules/$b" ;;
			*.ko.gz) b="${b%.gz}"; gzip -dc "$file" >"$dir/lib/modules/$b" ;;
			*) cp "$file" "$dir/lib/modules/$b" ;;
			esac
			echo "$b" >>"$dir/etc/modules"
		done <<<"$out"
	done
}

# stage_busybox DIR: busybox and the directories an /init needs.
stage_busybox() {
	mkdir -p "$1"/{bin,sbin,proc,sys,dev,tmp,usr/bin,usr/sbin}
	cp "$busybox" "$1/bin/busybox"
	ln -s busybox "$1/bin/sh"
}

# pack DIR FILE: DIR as a gzipped newc cpio archive.
pack() { (cd "$1" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) | gzip -1 >"$2"; }

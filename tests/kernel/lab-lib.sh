# Helpers shared by the scripts that build kernel-lab initramfs images
# (e2e.sh, compare-qemu.sh). Source it; the caller sets modprobe_bin, kver
# (the kernel's version), busybox (a static busybox) and die().

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

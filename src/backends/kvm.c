/* SPDX-License-Identifier: MIT */
/*
 * The KVM backend: arena pages flipped behind a VM's guest RAM by remapping
 * the host virtual addresses of its memslot.
 *
 * KVM keeps no copy of guest RAM: a memslot is a range of the VMM's virtual
 * addresses, and KVM's second-stage tables are a cache of what those
 * addresses map to, kept coherent by the MMU notifier. So mmap(MAP_FIXED)
 * over the host virtual page behind a GPA changes what the guest sees, and
 * by the time mmap(2) returns every vCPU has dropped the old translation
 * (the notifier zaps the SPTEs and flushes remote TLBs before the old pages
 * are released). One mmap(2) call costs one invalidation whatever its
 * length, hence the merging of runs.
 *
 * The backend keeps a shadow of what it put behind each GPA of the RX
 * window: a failed batch is repaired from it, remap needs no old page from
 * the engine, and the engine can query it.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdbool.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <vdemux/kvm.h>

#include "backends/kvm_seam.h"
#include <vdemux/sys/backend.h>

#include "common/util.h"


/* Shadow value of a hole given a private zero page by vdemux_kvm_backfill(). */
#define BACKFILLED (VDEMUX_NO_PAGE - 1)

#define KNOWN_FLAGS (VDEMUX_KVM_F_SET_MEMSLOT | VDEMUX_KVM_F_HOME_FD)

struct kvm_be {
	struct vdemux_backend base; /* first: the engine hands us &base */
	struct vdemux_alloc_hooks alloc;
	uint8_t *ram_hva;
	uint64_t ram_gpa;
	uint64_t ram_size;
	uint32_t flags;
	int home_fd; /* our own duplicate, or -1 */
	uint64_t home_offset;
	vdemux_kvm_mmap_fn mmap_fn;
	void *mmap_payload;

	/* The attached VM. */
	bool attached;
	uint64_t rx_base;
	uint32_t rx_pages;
	int arena_fd;
	uint32_t first_page; /* the engine's pages: the only ones ever mapped */
	uint32_t npages;
	uint32_t *cur; /* per RX slot: arena page, VDEMUX_NO_PAGE or BACKFILLED */

	struct vdemux_kvm_stats st;
};

/* ---- small helpers ------------------------------------------------------ */

static struct kvm_be *kvm_of(struct vdemux_backend *be);

static void *do_mmap(struct kvm_be *k, void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	if (k->mmap_fn)
		return k->mmap_fn(addr, len, prot, flags, fd, off, k->mmap_payload);
	return mmap(addr, len, prot, flags, fd, off);
}

static uint8_t *hva_of(const struct kvm_be *k, uint64_t gpa)
{
	return k->ram_hva + (gpa - k->ram_gpa);
}

/*
 * mmap(2) at the HVA of @gpa, MAP_FIXED. Returns 0 or a negative errno;
 * what the range holds afterwards is the caller's concern.
 */
static int map_at(struct kvm_be *k, uint64_t gpa, uint64_t npages, int prot, int flags, int fd, off_t off)
{
	void *addr = hva_of(k, gpa);
	void *p = do_mmap(k, addr, npages * PAGE, prot, flags | MAP_FIXED, fd, off);
	if (p == MAP_FAILED)
		return errno ? -errno : -ENOMEM;
	if (p != addr) /* cannot happen with MAP_FIXED; do not leak the mapping if it does */
		return munmap(p, npages * PAGE), -EFAULT;
	return 0;
}

/* Arena pages [page, page + npages) at @gpa. */
static int put_pages(struct kvm_be *k, uint64_t gpa, uint64_t npages, uint32_t page)
{
	return map_at(k, gpa, npages, PROT_READ | PROT_WRITE, MAP_SHARED, k->arena_fd,
		      (off_t)((uint64_t)page * PAGE));
}

/*
 * A hole: an inaccessible anonymous mapping. Not munmap(2): a gap in guest RAM
 * could later be filled by an unrelated mmap(NULL, ...) of the VMM, which the
 * guest would then see.
 */
static int put_hole(struct kvm_be *k, uint64_t gpa, uint64_t npages)
{
	return map_at(k, gpa, npages, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
}

static int put_zero(struct kvm_be *k, uint64_t gpa, uint64_t npages)
{
	return map_at(k, gpa, npages, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
}

/*
 * Whether every page of the range has a mapping, whatever its protection:
 * mincore(2) fails with ENOMEM on a gap. It only reads the page tables.
 */
static bool fully_mapped(const struct kvm_be *k, uint64_t gpa, uint64_t npages)
{
	unsigned char vec[64];
	uint8_t *addr = hva_of(k, gpa);

	while (npages) {
		uint64_t n = npages < sizeof(vec) ? npages : sizeof(vec);
		if (mincore(addr, n * PAGE, vec) < 0)
			return false;
		addr += n * PAGE;
		npages -= n;
	}
	return true;
}

static uint32_t slot_of(const struct kvm_be *k, uint64_t gpa)
{
	return (uint32_t)((gpa - k->rx_base) / PAGE);
}

/* ---- batches ------------------------------------------------------------ */

/* Is entry @e acceptable for @o given the shadow? 0 or the errno to stop with. */
static int check_entry(const struct kvm_be *k, enum vd_tbl_op o, const struct vdemux_map *e)
{
	if (e->gpa % PAGE)
		return -EINVAL;
	if (e->gpa < k->rx_base || (e->gpa - k->rx_base) / PAGE >= k->rx_pages)
		return -ERANGE;
	if (o == VD_OP_UNMAP)
		return 0;
	/* Only the engine's pages: never guest RAM, never another arena user's. */
	if (e->page < k->first_page || e->page - k->first_page >= k->npages)
		return -EINVAL;
	if (o == VD_OP_MAP) {
		uint32_t c = k->cur[slot_of(k, e->gpa)];
		if (c != VDEMUX_NO_PAGE && c != BACKFILLED)
			return -EEXIST;
	}
	return 0;
}

/*
 * Re-establish what the shadow says over slots [s, s + n), after the kernel
 * dropped those mappings in a failed call. Merges runs as the batches do.
 */
static int restore_shadow(struct kvm_be *k, uint32_t s, uint32_t n)
{
	uint32_t i = s;

	while (i < s + n) {
		uint32_t c = k->cur[i], j = i + 1;
		while (j < s + n) {
			uint32_t d = k->cur[j];
			bool page = c != VDEMUX_NO_PAGE && c != BACKFILLED;
			if (page ? d != c + (j - i) : d != c)
				break;
			j++;
		}
		uint64_t gpa = k->rx_base + (uint64_t)i * PAGE;
		int r;
		if (c == VDEMUX_NO_PAGE)
			r = put_hole(k, gpa, j - i);
		else if (c == BACKFILLED)
			r = put_zero(k, gpa, j - i);
		else
			r = put_pages(k, gpa, j - i, c);
		if (r < 0)
			return r;
		i = j;
	}
	return 0;
}

/*
 * A call covering slots [s, s + n) failed. Linux either fails before
 * changing anything, or (older kernels, late failures) after removing the
 * old mappings: then put back what was there, or at least holes.
 */
static void repair(struct kvm_be *k, uint32_t s, uint32_t n)
{
	uint64_t gpa = k->rx_base + (uint64_t)s * PAGE;

	if (fully_mapped(k, gpa, n))
		return;
	if (restore_shadow(k, s, n) == 0) {
		k->st.repairs++;
		return;
	}
	k->st.repair_failures++;
	/* Whatever is left, holes are safe: no VM can reach a page through them. */
	(void)put_hole(k, gpa, n);
	for (uint32_t i = s; i < s + n; i++)
		k->cur[i] = VDEMUX_NO_PAGE;
}

static int run_batch(struct vdemux_backend *be, void *vmctx, const struct vdemux_map *m, unsigned n,
		     unsigned *done, enum vd_tbl_op o)
{
	struct kvm_be *k = vmctx;
	unsigned i = 0;
	int ret = 0;

	if (done)
		*done = 0;
	if (!be || !k || k != (struct kvm_be *)be || !k->attached || !m || !done || n == 0)
		return -EINVAL;
	k->st.batches++;

	while (i < n) {
		ret = check_entry(k, o, &m[i]);
		if (ret < 0)
			break;
		if (o == VD_OP_UNMAP && k->cur[slot_of(k, m[i].gpa)] == VDEMUX_NO_PAGE) {
			i++; /* already a hole */
			*done = i;
			continue;
		}

		/* Extend the run while GPAs (and, to map, pages) are contiguous. */
		unsigned j = i + 1;
		while (j < n && m[j].gpa == m[j - 1].gpa + PAGE && check_entry(k, o, &m[j]) == 0) {
			if (o == VD_OP_UNMAP) {
				if (k->cur[slot_of(k, m[j].gpa)] == VDEMUX_NO_PAGE)
					break;
			} else if (m[j].page != m[j - 1].page + 1) {
				break;
			}
			j++;
		}

		uint32_t s = slot_of(k, m[i].gpa), len = j - i;
		k->st.mmap_calls++;
		ret = o == VD_OP_UNMAP ? put_hole(k, m[i].gpa, len)
				       : put_pages(k, m[i].gpa, len, m[i].page);
		if (ret < 0) {
			k->st.failures++;
			repair(k, s, len);
			break;
		}
		for (uint32_t x = 0; x < len; x++)
			k->cur[s + x] = o == VD_OP_UNMAP ? VDEMUX_NO_PAGE : m[i].page + x;
		if (o == VD_OP_MAP)
			k->st.pages_mapped += len;
		else if (o == VD_OP_REMAP)
			k->st.pages_remapped += len;
		else
			k->st.pages_unmapped += len;
		i = j;
		*done = i;
	}
	return i == n ? 0 : ret;
}

VD_BACKEND_BATCH_OPS(kvm, run_batch)

/* ---- VM lifecycle ------------------------------------------------------- */

/* Give the window [gpa, gpa + npages) back its memory from before the attach. */
static int put_home(struct kvm_be *k, uint64_t gpa, uint64_t npages)
{
	if (!(k->flags & VDEMUX_KVM_F_HOME_FD))
		return put_zero(k, gpa, npages);
	return map_at(k, gpa, npages, PROT_READ | PROT_WRITE, MAP_SHARED, k->home_fd,
		      (off_t)(k->home_offset + (gpa - k->ram_gpa)));
}

static int kvm_vm_attach(struct vdemux_backend *be, const struct vdemux_backend_vm *vm, void **vmctx)
{
	struct kvm_be *k = kvm_of(be);

	if (!k || !vm || !vmctx)
		return -EINVAL;
	if (k->attached)
		return -EBUSY;
	if (vm->arena.kind != VDEMUX_ARENA_MEMFD || vm->arena.fd < 0)
		return -EINVAL;
	if (vm->rx_pages == 0 || vm->rx_base % PAGE || vm->rx_base < k->ram_gpa)
		return -EINVAL;
	if ((uint64_t)vm->engine_first_page + vm->engine_npages > vm->arena.npages)
		return -EINVAL;
	uint64_t off = vm->rx_base - k->ram_gpa;
	if (off > k->ram_size || (uint64_t)vm->rx_pages > (k->ram_size - off) / PAGE)
		return -EINVAL;

	uint32_t *cur = vd_calloc(&k->alloc, vm->rx_pages, sizeof(*cur));
	if (!cur)
		return -ENOMEM;
	for (uint32_t i = 0; i < vm->rx_pages; i++)
		cur[i] = VDEMUX_NO_PAGE;

	k->rx_base = vm->rx_base;
	k->rx_pages = vm->rx_pages;
	k->arena_fd = vm->arena.fd;
	k->first_page = vm->engine_first_page;
	k->npages = vm->engine_npages;
	int r = put_hole(k, vm->rx_base, vm->rx_pages);
	if (r < 0) {
		/* The old mapping may be gone: give the guest its memory back. */
		if (!fully_mapped(k, vm->rx_base, vm->rx_pages))
			(void)put_home(k, vm->rx_base, vm->rx_pages);
		vd_free(&k->alloc, cur);
		return r;
	}
	k->cur = cur;
	k->attached = true;
	*vmctx = k;
	return 0;
}

static void kvm_vm_detach(struct vdemux_backend *be, void *vmctx)
{
	struct kvm_be *k = kvm_of(be);

	if (!k || vmctx != k || !k->attached)
		return;
	/* The engine unmapped its pages; the window holds holes or backfill. */
	if (put_home(k, k->rx_base, k->rx_pages) < 0)
		(void)put_hole(k, k->rx_base, k->rx_pages);
	vd_free(&k->alloc, k->cur);
	k->cur = NULL;
	k->attached = false;
}

static int kvm_query(struct vdemux_backend *be, void *vmctx, uint64_t gpa, uint32_t *page)
{
	struct kvm_be *k = kvm_of(be);

	if (!k || vmctx != k)
		return -EINVAL;
	return vdemux_kvm_translate(be, gpa, page);
}

static void kvm_be_free(struct vdemux_backend *be)
{
	struct kvm_be *k = kvm_of(be);

	if (!k)
		return;
	if (k->attached)
		kvm_vm_detach(be, k);
	if (k->home_fd >= 0)
		close(k->home_fd);
	struct vdemux_alloc_hooks a = k->alloc;
	vd_free(&a, k);
}

static struct kvm_be *kvm_of(struct vdemux_backend *be)
{
	if (!be || be->vm_attach != kvm_vm_attach)
		return NULL;
	return (struct kvm_be *)be;
}

/* ---- public ------------------------------------------------------------- */

static int set_memslot(const struct vdemux_kvm_opts *o)
{
	/* Without SYNC_MMU, KVM would keep using the old pages after a flip. */
	int r = ioctl(o->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_SYNC_MMU);
	if (r < 0)
		return -errno;
	if (r == 0)
		return -EOPNOTSUPP;
	struct kvm_userspace_memory_region reg = {
		.slot = o->slot,
		.flags = 0,
		.guest_phys_addr = o->ram_gpa,
		.memory_size = o->ram_size,
		.userspace_addr = (uint64_t)(uintptr_t)o->ram_hva,
	};
	if (ioctl(o->vm_fd, KVM_SET_USER_MEMORY_REGION, &reg) < 0)
		return -errno;
	return 0;
}

VDEMUX_API int vdemux_kvm_create(struct vdemux_backend **out, const struct vdemux_kvm_opts *opts)
{
	struct vdemux_kvm_opts o;

	if (!out || !opts)
		return -EINVAL;
	if (vd_opts_check(opts, sizeof(o)))
		return -EINVAL;
	vd_opts_copy(&o, opts, sizeof(o));
	int r;
	if (o.flags & ~KNOWN_FLAGS)
		return -EINVAL;
	if (!o.ram_hva || (uintptr_t)o.ram_hva % PAGE || o.ram_gpa % PAGE || o.ram_size == 0 ||
	    o.ram_size % PAGE || o.ram_gpa + o.ram_size < o.ram_gpa ||
	    (uintptr_t)o.ram_hva + o.ram_size < (uintptr_t)o.ram_hva)
		return -EINVAL;
	if (!vd_hooks_valid(&o.alloc))
		return -EINVAL;
	if ((o.flags & VDEMUX_KVM_F_SET_MEMSLOT) && o.vm_fd < 0)
		return -EINVAL;
	if ((o.flags & VDEMUX_KVM_F_HOME_FD) && (o.home_fd < 0 || o.home_offset % PAGE))
		return -EINVAL;

	struct kvm_be *k = vd_calloc(&o.alloc, 1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	k->alloc = o.alloc;
	k->home_fd = -1;
	if (o.flags & VDEMUX_KVM_F_HOME_FD) {
		/* Our own reference: the VMM may close its fd, or reuse its number. */
		k->home_fd = fcntl(o.home_fd, F_DUPFD_CLOEXEC, 0);
		if (k->home_fd < 0) {
			r = -errno;
			vd_free(&o.alloc, k);
			return r;
		}
	}
	if (o.flags & VDEMUX_KVM_F_SET_MEMSLOT) {
		r = set_memslot(&o);
		if (r < 0) {
			if (k->home_fd >= 0)
				close(k->home_fd);
			vd_free(&o.alloc, k);
			return r;
		}
	}

	k->base = (struct vdemux_backend)VDEMUX_BACKEND_INIT;
	k->base.name = "kvm";
	k->base.copy_threshold = o.copy_threshold ? o.copy_threshold : VDEMUX_KVM_COPY_THRESHOLD_DEFAULT;
	k->base.vm_attach = kvm_vm_attach;
	k->base.vm_detach = kvm_vm_detach;
	k->base.map = kvm_map;
	k->base.unmap = kvm_unmap;
	k->base.remap = kvm_remap;
	k->base.query = kvm_query;
	k->base.free = kvm_be_free;
	k->ram_hva = o.ram_hva;
	k->ram_gpa = o.ram_gpa;
	k->ram_size = o.ram_size;
	k->flags = o.flags;
	k->home_offset = o.home_offset;
	k->arena_fd = -1;
	*out = &k->base;
	return 0;
}

VDEMUX_API int vdemux_kvm_stats(struct vdemux_backend *be, struct vdemux_kvm_stats *out, size_t size)
{
	struct kvm_be *k = kvm_of(be);

	if (!k || !out)
		return -EINVAL;
	memcpy(out, &k->st, size < sizeof(k->st) ? size : sizeof(k->st));
	return 0;
}

VDEMUX_API int vdemux_kvm_translate(struct vdemux_backend *be, uint64_t gpa, uint32_t *page)
{
	struct kvm_be *k = kvm_of(be);

	if (!k || !page || gpa % PAGE)
		return -EINVAL;
	if (!k->attached)
		return -ENOENT;
	if (gpa < k->rx_base || (gpa - k->rx_base) / PAGE >= k->rx_pages)
		return -ERANGE;
	uint32_t c = k->cur[slot_of(k, gpa)];
	*page = c == BACKFILLED ? VDEMUX_NO_PAGE : c;
	return 0;
}

VDEMUX_API int vdemux_kvm_backfill(struct vdemux_backend *be, uint64_t gpa)
{
	struct kvm_be *k = kvm_of(be);

	if (!k || (gpa != VDEMUX_KVM_ALL_HOLES && gpa % PAGE))
		return -EINVAL;
	if (!k->attached)
		return -ENOENT;
	uint32_t s = 0, e = k->rx_pages;
	if (gpa != VDEMUX_KVM_ALL_HOLES) {
		if (gpa < k->rx_base || (gpa - k->rx_base) / PAGE >= k->rx_pages)
			return -ERANGE;
		s = slot_of(k, gpa);
		e = s + 1;
	}
	int count = 0;
	for (uint32_t i = s; i < e;) {
		if (k->cur[i] != VDEMUX_NO_PAGE) {
			i++;
			continue;
		}
		uint32_t j = i + 1;
		while (j < e && k->cur[j] == VDEMUX_NO_PAGE)
			j++;
		int r = put_zero(k, k->rx_base + (uint64_t)i * PAGE, j - i);
		if (r < 0) {
			repair(k, i, j - i);
			return r;
		}
		for (uint32_t x = i; x < j; x++)
			k->cur[x] = BACKFILLED;
		k->st.backfills += j - i;
		count += (int)(j - i);
		i = j;
	}
	return count;
}

VDEMUX_API int vdemux_kvm_ram_map(const vdemux_arena *arena, uint32_t first_page, uint32_t npages,
				  void **out)
{
	struct vdemux_arena_info ai;
	const uint64_t huge = 2u << 20;

	if (!arena || !out || npages == 0)
		return -EINVAL;
	int r = vdemux_arena_info(arena, &ai);
	if (r < 0)
		return r;
	if (ai.kind != VDEMUX_ARENA_MEMFD || ai.fd < 0 || (uint64_t)first_page + npages > ai.npages)
		return -EINVAL;

	uint64_t len = (uint64_t)npages * PAGE;
	off_t off = (off_t)((uint64_t)first_page * PAGE);
	if (len < huge) {
		void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, ai.fd, off);
		if (p == MAP_FAILED)
			return -errno;
		*out = p;
		return 0;
	}
	/* Reserve a 2 MiB-larger range, map at its first 2 MiB boundary, trim. */
	uint8_t *res = mmap(NULL, len + huge, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1,
			    0);
	if (res == MAP_FAILED)
		return -errno;
	uint8_t *at = (uint8_t *)(((uintptr_t)res + huge - 1) & ~(uintptr_t)(huge - 1));
	void *p = mmap(at, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, ai.fd, off);
	if (p == MAP_FAILED) {
		r = -errno;
		munmap(res, len + huge);
		return r;
	}
	if (at > res)
		munmap(res, (size_t)(at - res));
	if (at + len < res + len + huge)
		munmap(at + len, (size_t)(res + len + huge - (at + len)));
	/* Only advice: a kernel without THP refuses it. */
	(void)madvise(at, len, MADV_HUGEPAGE);
	*out = at;
	return 0;
}

VDEMUX_API int vdemux_kvm_ram_unmap(void *hva, uint32_t npages)
{
	if (!hva || npages == 0)
		return -EINVAL;
	if (munmap(hva, (uint64_t)npages * PAGE) < 0)
		return -errno;
	return 0;
}

VDEMUX_API int vdemux_kvm_irqfd_create(int vm_fd, uint32_t gsi, uint32_t flags, int *out_fd)
{
	if (!out_fd || vm_fd < 0 || (flags & ~VDEMUX_KVM_IRQFD_F_FALLBACK))
		return -EINVAL;
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (fd < 0)
		return -errno;
	struct kvm_irqfd req = {.fd = (uint32_t)fd, .gsi = gsi, .flags = 0};
	if (ioctl(vm_fd, KVM_IRQFD, &req) < 0) {
		int e = errno;
		/* A bad VM fd is the caller's mistake, not a missing feature. */
		if ((flags & VDEMUX_KVM_IRQFD_F_FALLBACK) && e != EBADF) {
			*out_fd = fd;
			return 1;
		}
		close(fd);
		return -e;
	}
	*out_fd = fd;
	return 0;
}

VDEMUX_API int vdemux_kvm_irqfd_destroy(int vm_fd, uint32_t gsi, int fd)
{
	int r = 0;

	if (fd < 0)
		return -EINVAL;
	if (vm_fd >= 0) {
		struct kvm_irqfd req = {.fd = (uint32_t)fd, .gsi = gsi, .flags = KVM_IRQFD_FLAG_DEASSIGN};
		if (ioctl(vm_fd, KVM_IRQFD, &req) < 0)
			r = -errno;
	}
	close(fd);
	return r;
}

int vdemux_kvm_set_mmap_hook(struct vdemux_backend *be, vdemux_kvm_mmap_fn fn, void *payload)
{
	struct kvm_be *k = kvm_of(be);

	if (!k)
		return -EINVAL;
	k->mmap_fn = fn;
	k->mmap_payload = payload;
	return 0;
}

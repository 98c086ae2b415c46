/* SPDX-License-Identifier: MIT */
/*
 * The VFIO backend: one type1v2 container, the IOMMU table of one VM.
 *
 * What the kernel does, and why the code below is shaped by it (Linux
 * drivers/vfio/vfio_iommu_type1.c, v2 semantics):
 * - MAP_DMA creates one "dma" entry per call, and fails with EEXIST if any
 *   part of the range is mapped, ENOSPC when dma_entry_limit entries exist,
 *   EINVAL outside the container's IOVA ranges. Entries cannot be split
 *   later, so each page gets its own entry.
 * - UNMAP_DMA removes every entry inside [iova, iova + size) and reports the
 *   bytes removed; it fails with EINVAL, removing nothing, when either end
 *   of the range falls inside an entry. A range covering holes succeeds.
 *   So one call per run of contiguous GPAs is enough, and a run is
 *   all-or-nothing on the kernels we know; the fallback below does not rely
 *   on that.
 * - Every call flushes the IOTLB for what it changed: batching unmaps into
 *   runs also batches their invalidations; maps cannot be batched.
 *
 * The backend keeps its own record of what it mapped at each slot of the RX
 * window (slot_page): the kernel cannot be asked, and the record is what
 * query answers and what a failed batch is repaired from.
 */
#include <vdemux/vfio.h>

#include <vdemux/sys/backend.h>

#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/vfio.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define PGSZ ((uint64_t)VDEMUX_PAGE_SIZE)
#define NO_PAGE VDEMUX_NO_PAGE

struct vfio_vm {
	bool attached;
	vdemux_vm_id id;
	uint64_t rx_base;
	uint32_t rx_pages;
	uint8_t *arena_base;
	uint32_t first_page; /* engine's pages: [first_page, end_page) */
	uint32_t end_page;
	uint32_t *slot_page; /* rx_pages entries: page mapped there, or NO_PAGE */
	uint32_t *scratch;   /* rx_pages entries: remap's old pages */
};

struct vfio_be {
	struct vdemux_backend base; /* first: the engine hands us &base */
	struct vdemux_vfio_sys sys;
	struct vdemux_alloc_hooks alloc;
	int container;
	int group; /* -1 when the container was given */
	bool own_container;
	uint64_t iova_pgsizes;
	struct vfio_iova_range *ranges; /* NULL: the kernel did not say (any IOVA) */
	uint32_t nranges;
	struct vfio_vm vm;
	struct vdemux_vfio_stats st;
};

static const char vfio_name[] = "vfio";

/* ---- system calls ---- */

static int sys_open(const char *path, int flags, void *payload)
{
	(void)payload;
	int fd = open(path, flags);
	return fd < 0 ? -errno : fd;
}

static int sys_close(int fd, void *payload)
{
	(void)payload;
	return close(fd) < 0 ? -errno : 0;
}

static int sys_ioctl(int fd, unsigned long request, unsigned long arg, void *payload)
{
	(void)payload;
	int r = ioctl(fd, request, arg);
	return r < 0 ? -errno : r;
}

static const struct vdemux_vfio_sys real_sys = {
	.open = sys_open,
	.close = sys_close,
	.ioctl = sys_ioctl,
};

static int xioctl(struct vfio_be *v, int fd, unsigned long req, unsigned long arg)
{
	int r = v->sys.ioctl(fd, req, arg, v->sys.payload);
	/* A seam that breaks the convention must not be mistaken for success. */
	return r < -4095 ? -EIO : r;
}

static int xioctl_ptr(struct vfio_be *v, int fd, unsigned long req, void *arg)
{
	return xioctl(v, fd, req, (unsigned long)(uintptr_t)arg);
}

/* ---- allocation and logging ---- */

/* Control-path allocations go through the embedder's hooks (common/util.c). */
#define be_calloc vd_calloc
#define be_free vd_free

/* Logs go to the hook given in the options, else to the engine's (set in
 * base.log at registration). */
#define logf_(v, level, ...) vd_backend_log(&(v)->base, level, __VA_ARGS__)

static struct vfio_be *to_vfio(struct vdemux_backend *be);

/* ---- container info: page sizes, IOVA ranges, DMA_AVAIL ---- */

struct info_caps {
	uint64_t pgsizes;
	bool have_avail;
	uint32_t avail;
	struct vfio_iova_range *ranges; /* allocated with the backend's hooks */
	uint32_t nranges;
};

/*
 * VFIO_IOMMU_GET_INFO with its capability chain. The kernel fills the fixed
 * part, and the chain only if argsz leaves room; otherwise it says in argsz
 * how much it needs, so ask once more with that.
 */
static int get_info(struct vfio_be *v, bool want_ranges, struct info_caps *out)
{
	memset(out, 0, sizeof(*out));
	uint32_t sz = sizeof(struct vfio_iommu_type1_info) + 256;
	struct vfio_iommu_type1_info *info = NULL;
	int r = 0;
	for (int pass = 0; pass < 3; pass++) {
		be_free(&v->alloc, info);
		info = be_calloc(&v->alloc, 1, sz);
		if (!info)
			return -ENOMEM;
		info->argsz = sz;
		r = xioctl_ptr(v, v->container, VFIO_IOMMU_GET_INFO, info);
		if (r < 0)
			goto out;
		if (info->argsz <= sz)
			break;
		if (info->argsz > (1u << 20) || pass == 2) {
			r = -EPROTO;
			goto out;
		}
		sz = info->argsz;
	}
	r = 0;
	out->pgsizes = (info->flags & VFIO_IOMMU_INFO_PGSIZES) ? info->iova_pgsizes : 0;
	if (!(info->flags & VFIO_IOMMU_INFO_CAPS))
		goto out;

	/* Capabilities are read with memcpy: before Linux 6.5 the kernel did
	 * not align them (DMA_AVAIL is 12 bytes), so a u64 may be unaligned. */
	const uint8_t *buf = (const uint8_t *)info;
	uint32_t off = info->cap_offset;
	for (unsigned guard = 0; off && guard < 64; guard++) {
		struct vfio_info_cap_header h;
		if (off < sizeof(*info) || off > sz || sz - off < sizeof(h))
			break; /* malformed chain: keep what was read so far */
		memcpy(&h, buf + off, sizeof(h));
		size_t room = sz - off - sizeof(h);
		if (h.id == VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL && room >= sizeof(uint32_t)) {
			memcpy(&out->avail,
			       buf + off + offsetof(struct vfio_iommu_type1_info_dma_avail, avail),
			       sizeof(uint32_t));
			out->have_avail = true;
		} else if (h.id == VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE && want_ranges && !out->ranges &&
			   room >= 2 * sizeof(uint32_t)) {
			const size_t first = offsetof(struct vfio_iommu_type1_info_cap_iova_range,
						      iova_ranges);
			uint32_t nr;
			memcpy(&nr,
			       buf + off +
				       offsetof(struct vfio_iommu_type1_info_cap_iova_range, nr_iovas),
			       sizeof(nr));
			size_t fit = (sz - off - first) / sizeof(struct vfio_iova_range);
			if (sz - off < first)
				fit = 0;
			if (nr > fit)
				nr = (uint32_t)fit;
			if (nr) {
				out->ranges = be_calloc(&v->alloc, nr, sizeof(*out->ranges));
				if (!out->ranges) {
					r = -ENOMEM;
					goto out;
				}
				memcpy(out->ranges, buf + off + first, nr * sizeof(*out->ranges));
				out->nranges = nr;
			}
		}
		if (h.next <= off)
			break; /* the chain only moves forward */
		off = h.next;
	}
out:
	be_free(&v->alloc, info);
	return r;
}

/* Is [start, last] covered by the container's IOVA ranges (adjacent ranges join)? */
static bool iova_covered(const struct vfio_be *v, uint64_t start, uint64_t last)
{
	if (!v->ranges)
		return true;
	uint64_t cur = start;
	for (;;) {
		bool moved = false;
		for (uint32_t i = 0; i < v->nranges; i++) {
			const struct vfio_iova_range *rg = &v->ranges[i];
			if (rg->start <= cur && cur <= rg->end) {
				if (rg->end >= last)
					return true;
				cur = rg->end + 1;
				moved = true;
			}
		}
		if (!moved)
			return false;
	}
}

/* ---- the kernel calls, one page or one run ---- */

static int do_map(struct vfio_be *v, uint64_t gpa, uint32_t page)
{
	struct vfio_iommu_type1_dma_map m = {
		.argsz = sizeof(m),
		.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
		.vaddr = (uint64_t)(uintptr_t)(v->vm.arena_base + (uint64_t)page * PGSZ),
		.iova = gpa,
		.size = PGSZ,
	};
	v->st.map_calls++;
	int r = xioctl_ptr(v, v->container, VFIO_IOMMU_MAP_DMA, &m);
	return r < 0 ? r : 0;
}

static int do_unmap(struct vfio_be *v, uint64_t gpa, uint64_t size, uint64_t *unmapped)
{
	struct vfio_iommu_type1_dma_unmap u = {
		.argsz = sizeof(u),
		.flags = 0,
		.iova = gpa,
		.size = size,
	};
	v->st.unmap_calls++;
	int r = xioctl_ptr(v, v->container, VFIO_IOMMU_UNMAP_DMA, &u);
	if (r < 0)
		return r;
	*unmapped = u.size;
	return 0;
}

static bool slot_of(const struct vfio_vm *vm, uint64_t gpa, uint32_t *slot)
{
	if (gpa % PGSZ || gpa < vm->rx_base)
		return false;
	uint64_t s = (gpa - vm->rx_base) / PGSZ;
	if (s >= vm->rx_pages)
		return false;
	*slot = (uint32_t)s;
	return true;
}

static void slot_set(struct vfio_be *v, uint32_t slot, uint32_t page)
{
	uint32_t old = v->vm.slot_page[slot];
	if (old == NO_PAGE && page != NO_PAGE) {
		v->st.mapped++;
		v->st.pages_mapped++;
	} else if (old != NO_PAGE && page == NO_PAGE) {
		v->st.mapped--;
		v->st.pages_unmapped++;
	}
	v->vm.slot_page[slot] = page;
}

/*
 * Put back the pages of slots that a failed call may have unmapped, so that
 * those entries are "unchanged" as the engine is told. A MAP_DMA of the page
 * the slot should hold answers EEXIST if the kernel still has it (nothing
 * to do) and maps it again if it was removed. If that fails the slot stays a
 * hole: the device loses a page of its own VM, never reaches another's.
 */
static void restore_slot(struct vfio_be *v, uint32_t slot, uint32_t page)
{
	if (page == NO_PAGE)
		return;
	uint64_t gpa = v->vm.rx_base + (uint64_t)slot * PGSZ;
	int r = do_map(v, gpa, page);
	if (r == 0 || r == -EEXIST) {
		if (v->vm.slot_page[slot] != page)
			slot_set(v, slot, page);
		return;
	}
	if (v->vm.slot_page[slot] != NO_PAGE)
		slot_set(v, slot, NO_PAGE);
	v->st.restore_failures++;
	logf_(v, VDEMUX_LOG_ERROR,
	      "vfio: page %u could not be mapped back at GPA 0x%llx (%s); the GPA is a hole for the device",
	      page, (unsigned long long)gpa, strerror(-r));
}

/*
 * A merged UNMAP_DMA of [i, j) failed; what it removed is unknown. Unmap page
 * by page: an unmap of one page-sized range is all-or-nothing, and one that
 * the failed call already removed succeeds with size 0. At the first page
 * that fails, put back whatever the failed call removed from there on.
 * Returns 0, or the error with *stop = the entry that failed.
 */
static int unmap_fallback(struct vfio_be *v, const struct vdemux_map *m, unsigned i, unsigned j,
			  const uint32_t *slots, unsigned *stop)
{
	v->st.unmap_fallbacks++;
	for (unsigned k = i; k < j; k++) {
		uint64_t got = 0;
		int r = do_unmap(v, m[k].gpa, PGSZ, &got);
		if (r == 0) {
			slot_set(v, slots[k - i], NO_PAGE);
			continue;
		}
		for (unsigned l = k; l < j; l++)
			restore_slot(v, slots[l - i], v->vm.slot_page[slots[l - i]]);
		*stop = k;
		return r;
	}
	return 0;
}

/* Longest run handled in one UNMAP_DMA (bounds the slot list on the stack). */
#define RUN_MAX 512u

/*
 * Unmap m[0, n) in runs of contiguous GPAs; *done as the backend contract
 * says. The fast path is one ioctl per run.
 */
static int unmap_batch(struct vfio_be *v, const struct vdemux_map *m, unsigned n, unsigned *done)
{
	struct vfio_vm *vm = &v->vm;
	uint32_t slots[RUN_MAX];
	unsigned i = 0;
	while (i < n) {
		if (!slot_of(vm, m[i].gpa, &slots[0])) {
			*done = i;
			return -EINVAL;
		}
		unsigned j = i + 1;
		while (j < n && j - i < RUN_MAX && m[j].gpa == m[j - 1].gpa + PGSZ &&
		       slot_of(vm, m[j].gpa, &slots[j - i]))
			j++;
		uint64_t expect = 0;
		for (unsigned k = i; k < j; k++)
			if (vm->slot_page[slots[k - i]] != NO_PAGE)
				expect += PGSZ;

		uint64_t got = 0;
		int r = do_unmap(v, m[i].gpa, (uint64_t)(j - i) * PGSZ, &got);
		if (r < 0 && j - i > 1) {
			unsigned stop = j;
			r = unmap_fallback(v, m, i, j, slots, &stop);
			if (r < 0) {
				*done = stop;
				return r;
			}
		} else if (r < 0) {
			/* One page-sized range is all-or-nothing; make sure. */
			restore_slot(v, slots[0], vm->slot_page[slots[0]]);
			*done = i;
			return r;
		} else {
			/* On success the kernel has emptied the range, whatever
			 * it counted; a difference means our record was off. */
			if (got != expect) {
				v->st.unmap_short++;
				logf_(v, VDEMUX_LOG_WARN,
				      "vfio: UNMAP_DMA at 0x%llx removed %llu bytes, %llu expected",
				      (unsigned long long)m[i].gpa, (unsigned long long)got,
				      (unsigned long long)expect);
			}
			for (unsigned k = i; k < j; k++)
				slot_set(v, slots[k - i], NO_PAGE);
		}
		i = j;
	}
	*done = n;
	return 0;
}

/* ---- backend operations ---- */

static int vfio_vm_attach(struct vdemux_backend *be, const struct vdemux_backend_vm *bvm, void **vmctx)
{
	struct vfio_be *v = to_vfio(be);
	if (!v || !bvm || !vmctx)
		return -EINVAL;
	if (v->vm.attached)
		return -EBUSY;
	if (bvm->arena.kind != VDEMUX_ARENA_MEMFD || !bvm->arena.base)
		return -EINVAL;
	if (bvm->rx_pages == 0 || bvm->rx_base % PGSZ ||
	    bvm->rx_base + (uint64_t)bvm->rx_pages * PGSZ - 1 < bvm->rx_base)
		return -EINVAL;
	if ((uint64_t)bvm->engine_first_page + bvm->engine_npages > bvm->arena.npages)
		return -EINVAL;

	uint64_t last = bvm->rx_base + (uint64_t)bvm->rx_pages * PGSZ - 1;
	if (!iova_covered(v, bvm->rx_base, last)) {
		logf_(v, VDEMUX_LOG_ERROR,
		      "vfio: RX window [0x%llx, 0x%llx] is outside the container's IOVA ranges",
		      (unsigned long long)bvm->rx_base, (unsigned long long)last);
		return -ERANGE;
	}

	struct info_caps caps;
	int r = get_info(v, false, &caps);
	if (r < 0)
		return r;
	if (!caps.have_avail) {
		logf_(v, VDEMUX_LOG_INFO,
		      "vfio: the kernel does not report DMA_AVAIL; mappings beyond dma_entry_limit will fail with ENOSPC");
	} else if (caps.avail < bvm->rx_pages) {
		logf_(v, VDEMUX_LOG_ERROR,
		      "vfio: RX window of %u pages needs up to %u mappings, the container has %u left "
		      "(raise vfio_iommu_type1 dma_entry_limit)",
		      bvm->rx_pages, bvm->rx_pages, caps.avail);
		return -E2BIG;
	}

	struct vfio_vm vm = {
		.attached = true,
		.id = bvm->vm_id,
		.rx_base = bvm->rx_base,
		.rx_pages = bvm->rx_pages,
		.arena_base = bvm->arena.base,
		.first_page = bvm->engine_first_page,
		.end_page = bvm->engine_first_page + bvm->engine_npages,
	};
	vm.slot_page = be_calloc(&v->alloc, vm.rx_pages, sizeof(uint32_t));
	vm.scratch = be_calloc(&v->alloc, vm.rx_pages, sizeof(uint32_t));
	if (!vm.slot_page || !vm.scratch) {
		be_free(&v->alloc, vm.slot_page);
		be_free(&v->alloc, vm.scratch);
		return -ENOMEM;
	}
	for (uint32_t s = 0; s < vm.rx_pages; s++)
		vm.slot_page[s] = NO_PAGE;
	v->vm = vm;
	*vmctx = &v->vm;
	logf_(v, VDEMUX_LOG_INFO, "vfio: VM %u attached, RX window 0x%llx + %u pages", vm.id,
	      (unsigned long long)vm.rx_base, vm.rx_pages);
	return 0;
}

static void vfio_vm_detach(struct vdemux_backend *be, void *vmctx)
{
	struct vfio_be *v = to_vfio(be);
	if (!v || vmctx != &v->vm || !v->vm.attached)
		return;
	/* The engine unmapped everything; anything left would stay reachable. */
	for (uint32_t s = 0; s < v->vm.rx_pages; s++) {
		if (v->vm.slot_page[s] == NO_PAGE)
			continue;
		uint64_t got;
		int r = do_unmap(v, v->vm.rx_base + (uint64_t)s * PGSZ, PGSZ, &got);
		if (r < 0)
			logf_(v, VDEMUX_LOG_ERROR, "vfio: detach: UNMAP_DMA of GPA 0x%llx: %s",
			      (unsigned long long)(v->vm.rx_base + (uint64_t)s * PGSZ), strerror(-r));
		slot_set(v, s, NO_PAGE);
	}
	be_free(&v->alloc, v->vm.slot_page);
	be_free(&v->alloc, v->vm.scratch);
	memset(&v->vm, 0, sizeof(v->vm));
}

static int check_ctx(struct vdemux_backend *be, void *vmctx, const struct vdemux_map *m, unsigned *done,
		     struct vfio_be **out)
{
	struct vfio_be *v = to_vfio(be);
	if (done)
		*done = 0;
	if (!v || !done || !m || vmctx != &v->vm || !v->vm.attached)
		return -EINVAL;
	*out = v;
	return 0;
}

static bool page_ok(const struct vfio_vm *vm, uint32_t page)
{
	return page >= vm->first_page && page < vm->end_page;
}

static int vfio_map(struct vdemux_backend *be, void *vmctx, const struct vdemux_map *m, unsigned n,
		    unsigned *done)
{
	struct vfio_be *v;
	int r = check_ctx(be, vmctx, m, done, &v);
	if (r < 0)
		return r;
	for (unsigned i = 0; i < n; i++) {
		uint32_t slot;
		if (!slot_of(&v->vm, m[i].gpa, &slot) || !page_ok(&v->vm, m[i].page)) {
			r = -EINVAL;
		} else {
			r = do_map(v, m[i].gpa, m[i].page);
			if (r == 0)
				slot_set(v, slot, m[i].page);
		}
		if (r < 0) {
			*done = i;
			v->st.errors++;
			return r;
		}
	}
	*done = n;
	return 0;
}

static int vfio_unmap(struct vdemux_backend *be, void *vmctx, const struct vdemux_map *m, unsigned n,
		      unsigned *done)
{
	struct vfio_be *v;
	int r = check_ctx(be, vmctx, m, done, &v);
	if (r < 0)
		return r;
	r = unmap_batch(v, m, n, done);
	if (r < 0)
		v->st.errors++;
	return r;
}

/*
 * No atomic replace in type1: unmap the chunk (in runs), then map the new
 * pages. If a map fails at k, the entries [k, u) were unmapped but must be
 * reported unchanged: their old pages are mapped back.
 */
static int vfio_remap(struct vdemux_backend *be, void *vmctx, const struct vdemux_map *m, unsigned n,
		      unsigned *done)
{
	struct vfio_be *v;
	int r = check_ctx(be, vmctx, m, done, &v);
	if (r < 0)
		return r;
	struct vfio_vm *vm = &v->vm;
	unsigned base = 0;
	while (base < n) {
		unsigned cn = n - base;
		if (cn > vm->rx_pages)
			cn = vm->rx_pages;
		const struct vdemux_map *c = m + base;
		for (unsigned i = 0; i < cn; i++) {
			uint32_t slot;
			if (!slot_of(vm, c[i].gpa, &slot) || !page_ok(vm, c[i].page)) {
				*done = base + i; /* nothing of this chunk touched yet */
				v->st.errors++;
				return -EINVAL;
			}
			vm->scratch[i] = vm->slot_page[slot];
		}
		unsigned u = 0;
		int ur = unmap_batch(v, c, cn, &u);
		for (unsigned k = 0; k < u; k++) {
			uint32_t slot = (uint32_t)((c[k].gpa - vm->rx_base) / PGSZ); /* checked above */
			r = do_map(v, c[k].gpa, c[k].page);
			if (r == 0) {
				slot_set(v, slot, c[k].page);
				continue;
			}
			for (unsigned l = k; l < u; l++)
				restore_slot(v, (uint32_t)((c[l].gpa - vm->rx_base) / PGSZ),
					     vm->scratch[l]);
			*done = base + k;
			v->st.errors++;
			return r;
		}
		if (ur < 0) {
			*done = base + u;
			v->st.errors++;
			return ur;
		}
		base += cn;
	}
	*done = n;
	return 0;
}

static int vfio_query(struct vdemux_backend *be, void *vmctx, uint64_t gpa, uint32_t *page)
{
	struct vfio_be *v = to_vfio(be);
	uint32_t slot;
	if (!v || !page || vmctx != &v->vm || !v->vm.attached)
		return -EINVAL;
	if (!slot_of(&v->vm, gpa, &slot))
		return -ERANGE;
	*page = v->vm.slot_page[slot];
	return 0;
}

static void close_fds(struct vfio_be *v)
{
	if (v->group >= 0)
		v->sys.close(v->group, v->sys.payload);
	if (v->own_container && v->container >= 0)
		v->sys.close(v->container, v->sys.payload);
	v->group = v->container = -1;
}

static void vfio_free(struct vdemux_backend *be)
{
	struct vfio_be *v = to_vfio(be);
	if (!v)
		return;
	if (v->vm.attached)
		vfio_vm_detach(be, &v->vm);
	close_fds(v);
	struct vdemux_alloc_hooks a = v->alloc;
	be_free(&a, v->ranges);
	be_free(&a, v);
}

static struct vfio_be *to_vfio(struct vdemux_backend *be)
{
	/* Our operations identify our backends: no other kind has them. */
	if (!be || be->map != vfio_map)
		return NULL;
	return (struct vfio_be *)be;
}

/* ---- creation ---- */

static int open_group(struct vfio_be *v, const char *container_path, const char *group_path)
{
	int r = v->sys.open(container_path, O_RDWR | O_CLOEXEC, v->sys.payload);
	if (r < 0)
		return r;
	v->container = r;
	v->own_container = true;

	r = xioctl(v, v->container, VFIO_GET_API_VERSION, 0);
	if (r < 0)
		return r;
	if (r != VFIO_API_VERSION)
		return -EPROTONOSUPPORT;
	r = xioctl(v, v->container, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU);
	if (r < 0)
		return r;
	if (r != 1)
		return -EOPNOTSUPP;

	r = v->sys.open(group_path, O_RDWR | O_CLOEXEC, v->sys.payload);
	if (r < 0)
		return r;
	v->group = r;
	struct vfio_group_status st = {.argsz = sizeof(st)};
	r = xioctl_ptr(v, v->group, VFIO_GROUP_GET_STATUS, &st);
	if (r < 0)
		return r;
	if (!(st.flags & VFIO_GROUP_FLAGS_VIABLE)) {
		logf_(v, VDEMUX_LOG_ERROR,
		      "vfio: group %s is not viable: bind every device of the group to vfio-pci",
		      group_path);
		return -EBUSY;
	}
	if (st.flags & VFIO_GROUP_FLAGS_CONTAINER_SET)
		return -EBUSY;
	int cfd = v->container;
	r = xioctl_ptr(v, v->group, VFIO_GROUP_SET_CONTAINER, &cfd);
	if (r < 0)
		return r;
	r = xioctl(v, v->container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU);
	return r < 0 ? r : 0;
}

static int use_container(struct vfio_be *v, int fd)
{
	v->container = fd;
	v->own_container = false;
	int r = xioctl(v, fd, VFIO_GET_API_VERSION, 0);
	if (r < 0)
		return r;
	if (r != VFIO_API_VERSION)
		return -EPROTONOSUPPORT;
	r = xioctl(v, fd, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU);
	if (r < 0)
		return r;
	if (r != 1)
		return -EOPNOTSUPP;
	return 0;
}

/* The options' own consistency: one source of the container, known flags,
 * a complete system-call table and allocation hooks. */
static bool vfio_opts_valid(const struct vdemux_vfio_opts *o)
{
	const uint32_t known = VDEMUX_VFIO_F_CONTAINER_FD | VDEMUX_VFIO_F_GROUP_ID;
	int sources = !!(o->flags & VDEMUX_VFIO_F_CONTAINER_FD) + !!(o->flags & VDEMUX_VFIO_F_GROUP_ID) +
		      !!o->group_path;

	if ((o->flags & ~known) || sources != 1)
		return false;
	if ((o->flags & VDEMUX_VFIO_F_CONTAINER_FD) && o->container_fd < 0)
		return false;
	if ((o->flags & VDEMUX_VFIO_F_GROUP_ID) && o->group_id < 0)
		return false;
	if (o->sys && (!o->sys->open || !o->sys->close || !o->sys->ioctl))
		return false;
	return vd_hooks_valid(&o->alloc);
}

int vdemux_vfio_create(struct vdemux_backend **out, const struct vdemux_vfio_opts *opts)
{
	if (!out || !opts || vd_opts_check(opts, sizeof(struct vdemux_vfio_opts)))
		return -EINVAL;
	struct vdemux_vfio_opts o;
	vd_opts_copy(&o, opts, sizeof(o));
	if (!vfio_opts_valid(&o))
		return -EINVAL;

	struct vfio_be *v = be_calloc(&o.alloc, 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->base = (struct vdemux_backend)VDEMUX_BACKEND_INIT;
	v->base.name = vfio_name;
	v->base.copy_threshold = o.copy_threshold ? o.copy_threshold : VDEMUX_VFIO_COPY_THRESHOLD;
	v->base.vm_attach = vfio_vm_attach;
	v->base.vm_detach = vfio_vm_detach;
	v->base.map = vfio_map;
	v->base.unmap = vfio_unmap;
	v->base.remap = vfio_remap;
	v->base.query = vfio_query;
	v->base.free = vfio_free;
	v->sys = o.sys ? *o.sys : real_sys;
	v->alloc = o.alloc;
	v->base.log = o.log;
	v->base.log_payload = o.log_payload;
	v->container = v->group = -1;

	int r;
	if (o.flags & VDEMUX_VFIO_F_CONTAINER_FD) {
		r = use_container(v, o.container_fd);
	} else {
		char path[32];
		const char *gp = o.group_path;
		if (o.flags & VDEMUX_VFIO_F_GROUP_ID) {
			snprintf(path, sizeof(path), "/dev/vfio/%d", o.group_id);
			gp = path;
		}
		r = open_group(v, o.container_path ? o.container_path : "/dev/vfio/vfio", gp);
	}

	struct info_caps caps = {0};
	if (r == 0) {
		r = get_info(v, true, &caps);
		/* A container without an IOMMU has no GET_INFO (ENOTTY). */
		if (r == -ENOTTY)
			r = -EINVAL;
	}
	if (r == 0 && !(caps.pgsizes & PGSZ)) {
		logf_(v, VDEMUX_LOG_ERROR, "vfio: the IOMMU does not offer 4 KiB pages (sizes 0x%llx)",
		      (unsigned long long)caps.pgsizes);
		r = -EOPNOTSUPP;
	}
	if (r < 0) {
		be_free(&o.alloc, caps.ranges);
		close_fds(v);
		be_free(&o.alloc, v);
		return r;
	}
	v->iova_pgsizes = caps.pgsizes;
	v->ranges = caps.ranges;
	v->nranges = caps.nranges;
	logf_(v, VDEMUX_LOG_INFO, "vfio: container ready, IOVA page sizes 0x%llx, %s%u mappings left",
	      (unsigned long long)caps.pgsizes, caps.have_avail ? "" : "(not reported) ", caps.avail);
	*out = &v->base;
	return 0;
}

/* ---- queries ---- */

int vdemux_vfio_container_fd(struct vdemux_backend *be)
{
	struct vfio_be *v = to_vfio(be);
	return v ? v->container : -EINVAL;
}

int vdemux_vfio_group_fd(struct vdemux_backend *be)
{
	struct vfio_be *v = to_vfio(be);
	if (!v)
		return -EINVAL;
	return v->group >= 0 ? v->group : -ENOENT;
}

int vdemux_vfio_dma_avail(struct vdemux_backend *be, uint32_t *avail)
{
	struct vfio_be *v = to_vfio(be);
	if (!v || !avail)
		return -EINVAL;
	struct info_caps caps;
	int r = get_info(v, false, &caps);
	if (r < 0)
		return r;
	if (!caps.have_avail)
		return -ENODATA;
	*avail = caps.avail;
	return 0;
}

int vdemux_vfio_translate(struct vdemux_backend *be, vdemux_vm_id vm, uint64_t gpa, uint32_t *page)
{
	struct vfio_be *v = to_vfio(be);
	if (!v || !page || gpa % PGSZ)
		return -EINVAL;
	if (!v->vm.attached || v->vm.id != vm)
		return -ENOENT;
	uint32_t slot;
	if (!slot_of(&v->vm, gpa, &slot))
		return -ERANGE;
	*page = v->vm.slot_page[slot];
	return 0;
}

int vdemux_vfio_stats(struct vdemux_backend *be, struct vdemux_vfio_stats *out, size_t size)
{
	struct vfio_be *v = to_vfio(be);
	if (!v || !out)
		return -EINVAL;
	memcpy(out, &v->st, size < sizeof(v->st) ? size : sizeof(v->st));
	return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the VFIO backend, with the system calls behind its seam
 * (struct vdemux_vfio_sys) answered by a fake type1v2 kernel.
 *
 * The fake checks every argument as drivers/vfio/vfio_iommu_type1.c does
 * (argsz, flags, alignment, wrap, IOVA ranges, overlaps) and answers with the
 * kernel's errors: EEXIST for a mapped IOVA, EINVAL for an unmap that would
 * split a mapping, ENOSPC once dma_entry_limit mappings exist. An argument
 * the real kernel would reject is also counted as a violation, and every
 * test ends by asserting there was none: the backend must never rely on the
 * kernel to catch its mistakes.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/vfio.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include <vdemux/sys/backend.h>
#include <vdemux/vdemux.h>

#define PAGE 4096ull
#define NPAGES 512u
#define MAX_FDS 64
#define MAX_MAPS 2048
#define MAX_TRACE 4096

enum { FD_NONE, FD_CONTAINER, FD_GROUP };

struct fmap {
	uint64_t iova, size, vaddr;
};

struct fake {
	/* file descriptors the fake handed out */
	int kind[MAX_FDS];
	int nopen;
	const char *group_path;
	bool group_open;
	bool group_in_container;
	int container_of_group;

	/* what the kernel offers */
	int api_version;
	int type1v2;
	bool viable;
	bool iommu_set;
	uint64_t pgsizes;
	bool report_avail;
	uint32_t dma_avail;
	struct vfio_iova_range ranges[40];
	uint32_t nranges;

	/* the IOMMU table */
	struct fmap maps[MAX_MAPS];
	unsigned nmaps;
	uintptr_t mem_lo, mem_hi; /* user memory that can be pinned */

	/* what was called */
	unsigned long trace[MAX_TRACE];
	unsigned ntrace;
	unsigned map_calls, unmap_calls, info_calls;
	unsigned violations;
	char violation[256];

	/* failures to inject */
	unsigned fail_map_call; /* 1-based MAP_DMA call to fail, 0: none */
	int fail_map_errno;
	unsigned fail_unmap_call; /* 1-based UNMAP_DMA call to fail */
	int fail_unmap_errno;
	bool fail_unmap_after_removing;	 /* ... after removing what it covers */
	uint64_t fail_single_unmap_iova; /* a one-page UNMAP_DMA here fails with EIO */
};

static int violate(struct fake *f, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(f->violation, sizeof(f->violation), fmt, ap);
	va_end(ap);
	f->violations++;
	return -EINVAL;
}

static int fake_open(const char *path, int flags, void *payload)
{
	struct fake *f = payload;
	if (flags != (O_RDWR | O_CLOEXEC))
		return violate(f, "open(%s) flags 0x%x", path, flags);
	int kind;
	if (strcmp(path, "/dev/vfio/vfio") == 0) {
		kind = FD_CONTAINER;
	} else if (f->group_path && strcmp(path, f->group_path) == 0) {
		if (f->group_open)
			return -EBUSY; /* vfio allows one open of a group */
		kind = FD_GROUP;
	} else {
		return -ENOENT;
	}
	for (int fd = 3; fd < MAX_FDS; fd++) {
		if (f->kind[fd] == FD_NONE) {
			f->kind[fd] = kind;
			f->nopen++;
			if (kind == FD_GROUP)
				f->group_open = true;
			return fd;
		}
	}
	return -EMFILE;
}

static int fake_close(int fd, void *payload)
{
	struct fake *f = payload;
	if (fd < 0 || fd >= MAX_FDS || f->kind[fd] == FD_NONE) {
		violate(f, "close(%d) of an fd not open", fd);
		return -EBADF;
	}
	if (f->kind[fd] == FD_GROUP) {
		f->group_open = false;
		if (f->group_in_container) {
			/* the last group leaving a container releases its IOMMU */
			f->group_in_container = false;
			f->iommu_set = false;
			f->nmaps = 0;
		}
	}
	f->kind[fd] = FD_NONE;
	f->nopen--;
	return 0;
}

static struct fmap *find_overlap(struct fake *f, uint64_t iova, uint64_t size)
{
	for (unsigned i = 0; i < f->nmaps; i++) {
		struct fmap *m = &f->maps[i];
		if (m->iova < iova + size && iova < m->iova + m->size)
			return m;
	}
	return NULL;
}

static bool iova_valid(struct fake *f, uint64_t first, uint64_t last)
{
	if (!f->nranges)
		return true;
	for (uint32_t i = 0; i < f->nranges; i++)
		if (f->ranges[i].start <= first && last <= f->ranges[i].end)
			return true;
	return false;
}

static uint64_t min_pgsize(struct fake *f)
{
	return f->pgsizes & -f->pgsizes;
}

static int fake_map_dma(struct fake *f, struct vfio_iommu_type1_dma_map *m)
{
	size_t minsz = offsetof(struct vfio_iommu_type1_dma_map, size) + sizeof(m->size);
	uint32_t mask = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE | VFIO_DMA_MAP_FLAG_VADDR;
	f->map_calls++;
	if (m->argsz < minsz)
		return violate(f, "MAP_DMA argsz %u", m->argsz);
	if (m->flags & ~mask)
		return violate(f, "MAP_DMA flags 0x%x", m->flags);
	if (m->flags != (VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE))
		return violate(f, "MAP_DMA flags 0x%x: a page the VM owns is read/write", m->flags);
	uint64_t pg = min_pgsize(f);
	if (!m->size || ((m->size | m->iova | m->vaddr) & (pg - 1)))
		return violate(f, "MAP_DMA unaligned: iova 0x%llx vaddr 0x%llx size 0x%llx",
			       (unsigned long long)m->iova, (unsigned long long)m->vaddr,
			       (unsigned long long)m->size);
	if (m->iova + m->size - 1 < m->iova || m->vaddr + m->size - 1 < m->vaddr)
		return violate(f, "MAP_DMA wraps");
	if (m->size != PAGE)
		return violate(f, "MAP_DMA of %llu bytes: pages are mapped one by one",
			       (unsigned long long)m->size);
	if (f->fail_map_call && f->map_calls == f->fail_map_call)
		return -f->fail_map_errno;
	if (find_overlap(f, m->iova, m->size))
		return -EEXIST;
	if (!f->dma_avail)
		return -ENOSPC;
	if (!iova_valid(f, m->iova, m->iova + m->size - 1))
		return violate(f, "MAP_DMA at 0x%llx outside the IOVA ranges",
			       (unsigned long long)m->iova);
	if (m->vaddr < f->mem_lo || m->vaddr + m->size > f->mem_hi)
		return -EFAULT; /* pinning fails: not the arena's memory */
	if (f->nmaps == MAX_MAPS)
		return -ENOMEM;
	f->maps[f->nmaps++] = (struct fmap){m->iova, m->size, m->vaddr};
	f->dma_avail--;
	return 0;
}

static void remove_range(struct fake *f, uint64_t iova, uint64_t size, uint64_t *removed)
{
	*removed = 0;
	for (unsigned i = 0; i < f->nmaps;) {
		struct fmap *m = &f->maps[i];
		if (m->iova >= iova && m->iova + m->size <= iova + size) {
			*removed += m->size;
			*m = f->maps[--f->nmaps];
			f->dma_avail++;
		} else {
			i++;
		}
	}
}

static int fake_unmap_dma(struct fake *f, struct vfio_iommu_type1_dma_unmap *u)
{
	size_t minsz = offsetof(struct vfio_iommu_type1_dma_unmap, size) + sizeof(u->size);
	uint32_t mask = VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP | VFIO_DMA_UNMAP_FLAG_ALL |
			VFIO_DMA_UNMAP_FLAG_VADDR;
	f->unmap_calls++;
	if (u->argsz < minsz)
		return violate(f, "UNMAP_DMA argsz %u", u->argsz);
	if (u->flags & ~mask)
		return violate(f, "UNMAP_DMA flags 0x%x", u->flags);
	if (u->flags)
		return violate(f, "UNMAP_DMA flags 0x%x: plain unmaps only", u->flags);
	uint64_t pg = min_pgsize(f);
	if (!u->size || ((u->size | u->iova) & (pg - 1)))
		return violate(f, "UNMAP_DMA unaligned: iova 0x%llx size 0x%llx",
			       (unsigned long long)u->iova, (unsigned long long)u->size);
	if (u->iova + u->size - 1 < u->iova)
		return violate(f, "UNMAP_DMA wraps");
	if (f->fail_single_unmap_iova && u->size == PAGE && u->iova == f->fail_single_unmap_iova)
		return -EIO;
	if (f->fail_unmap_call && f->unmap_calls == f->fail_unmap_call) {
		if (f->fail_unmap_after_removing) {
			uint64_t gone;
			remove_range(f, u->iova, u->size, &gone);
		}
		return -f->fail_unmap_errno;
	}
	/* v2: neither end may fall inside a mapping */
	for (unsigned i = 0; i < f->nmaps; i++) {
		struct fmap *m = &f->maps[i];
		if (m->iova < u->iova && u->iova < m->iova + m->size)
			return -EINVAL;
		uint64_t end = u->iova + u->size;
		if (m->iova < end && end < m->iova + m->size)
			return -EINVAL;
	}
	uint64_t removed;
	remove_range(f, u->iova, u->size, &removed);
	u->size = removed;
	return 0;
}

/*
 * VFIO_IOMMU_GET_INFO as Linux 6.1 answers it: the fixed part always; the
 * capability chain (migration, DMA_AVAIL, IOVA ranges, in that order, each
 * as long as its struct, so not 8-byte aligned) only when argsz leaves room
 * for it, else argsz is raised to what is needed.
 */
static int fake_get_info(struct fake *f, struct vfio_iommu_type1_info *info)
{
	size_t minsz = offsetof(struct vfio_iommu_type1_info, iova_pgsizes) + sizeof(info->iova_pgsizes);
	f->info_calls++;
	if (info->argsz < minsz)
		return violate(f, "GET_INFO argsz %u", info->argsz);
	const uint32_t base = sizeof(*info);
	uint8_t caps[1024];
	uint32_t size = 0, prev_next = UINT32_MAX;
	memset(caps, 0, sizeof(caps));

	struct vfio_iommu_type1_info_cap_migration mig = {
		.header = {.id = VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION, .version = 1},
		.pgsize_bitmap = f->pgsizes,
		.max_dirty_bitmap_size = 256ull << 20,
	};
	struct vfio_iommu_type1_info_dma_avail av = {
		.header = {.id = VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL, .version = 1},
		.avail = f->dma_avail,
	};
	uint8_t rbuf[sizeof(struct vfio_iommu_type1_info_cap_iova_range) + sizeof(f->ranges)];
	struct vfio_iommu_type1_info_cap_iova_range rg = {
		.header = {.id = VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE, .version = 1},
		.nr_iovas = f->nranges,
	};
	memcpy(rbuf, &rg, sizeof(rg));
	memcpy(rbuf + sizeof(rg), f->ranges, f->nranges * sizeof(struct vfio_iova_range));

	const struct {
		const void *p;
		size_t len;
		bool on;
	} list[] = {
		{&mig, sizeof(mig), true},
		{&av, sizeof(av), f->report_avail},
		{rbuf, sizeof(rg) + f->nranges * sizeof(struct vfio_iova_range), f->nranges > 0},
	};
	for (unsigned i = 0; i < 3; i++) {
		if (!list[i].on)
			continue;
		if (prev_next != UINT32_MAX) {
			uint32_t next = base + size; /* offsets count from the info struct */
			memcpy(caps + prev_next, &next, sizeof(next));
		}
		memcpy(caps + size, list[i].p, list[i].len);
		prev_next = size + offsetof(struct vfio_info_cap_header, next);
		size += (uint32_t)list[i].len;
	}

	uint32_t argsz = info->argsz;
	info->flags = VFIO_IOMMU_INFO_PGSIZES;
	info->iova_pgsizes = f->pgsizes;
	if (argsz >= sizeof(*info))
		info->cap_offset = 0;
	if (size) {
		info->flags |= VFIO_IOMMU_INFO_CAPS;
		if (argsz < base + size) {
			info->argsz = base + size;
		} else {
			memcpy((uint8_t *)info + base, caps, size);
			info->cap_offset = base;
		}
	}
	return 0;
}

static void trace(struct fake *f, unsigned long req)
{
	if (f->ntrace < MAX_TRACE)
		f->trace[f->ntrace++] = req;
}

static int fake_ioctl(int fd, unsigned long req, unsigned long arg, void *payload)
{
	struct fake *f = payload;
	if (fd < 0 || fd >= MAX_FDS || f->kind[fd] == FD_NONE) {
		violate(f, "ioctl 0x%lx on fd %d, not open", req, fd);
		return -EBADF;
	}
	trace(f, req);
	void *p = (void *)(uintptr_t)arg;
	if (f->kind[fd] == FD_GROUP) {
		switch (req) {
		case VFIO_GROUP_GET_STATUS: {
			struct vfio_group_status *st = p;
			if (st->argsz < sizeof(*st))
				return violate(f, "GROUP_GET_STATUS argsz %u", st->argsz);
			st->flags = (f->viable ? VFIO_GROUP_FLAGS_VIABLE : 0) |
				    (f->group_in_container ? VFIO_GROUP_FLAGS_CONTAINER_SET : 0);
			return 0;
		}
		case VFIO_GROUP_SET_CONTAINER: {
			int cfd = *(const int *)p;
			if (cfd < 0 || cfd >= MAX_FDS || f->kind[cfd] != FD_CONTAINER)
				return -EBADF;
			if (!f->viable)
				return -EPERM;
			if (f->group_in_container)
				return -EINVAL;
			f->group_in_container = true;
			f->container_of_group = cfd;
			return 0;
		}
		default: return -ENOTTY;
		}
	}
	switch (req) {
	case VFIO_GET_API_VERSION: return f->api_version;
	case VFIO_CHECK_EXTENSION:
		if (arg == VFIO_TYPE1v2_IOMMU)
			return f->type1v2;
		return 0;
	case VFIO_SET_IOMMU:
		if (!f->group_in_container || f->container_of_group != fd)
			return violate(f, "SET_IOMMU before a group is attached");
		if (f->iommu_set)
			return -EBUSY;
		if (arg != VFIO_TYPE1v2_IOMMU)
			return violate(f, "SET_IOMMU(%lu): type1v2 wanted", arg);
		f->iommu_set = true;
		return 0;
	}
	if (!f->iommu_set)
		return -ENOTTY; /* no IOMMU driver behind the container yet */
	switch (req) {
	case VFIO_IOMMU_GET_INFO: return fake_get_info(f, p);
	case VFIO_IOMMU_MAP_DMA: return fake_map_dma(f, p);
	case VFIO_IOMMU_UNMAP_DMA: return fake_unmap_dma(f, p);
	default: return -ENOTTY;
	}
}

/* ---- fixture ---- */

struct t {
	struct fake f;
	struct vdemux_vfio_sys sys;
	int memfd;
	uint8_t *mem;
	struct vdemux_backend *be;
	void *vmctx;
	unsigned logs;
	char last_log[256];
};

static void on_log(int level, const char *msg, void *payload)
{
	struct t *t = payload;
	(void)level;
	t->logs++;
	snprintf(t->last_log, sizeof(t->last_log), "%s", msg);
}

static void fake_defaults(struct fake *f)
{
	memset(f, 0, sizeof(*f));
	f->group_path = "/dev/vfio/7";
	f->api_version = VFIO_API_VERSION;
	f->type1v2 = 1;
	f->viable = true;
	f->pgsizes = 0x1000ull | 0x200000ull | 0x40000000ull;
	f->report_avail = true;
	f->dma_avail = 65535;
	f->nranges = 2;
	f->ranges[0] = (struct vfio_iova_range){0, 0xfedfffffull};
	f->ranges[1] = (struct vfio_iova_range){0xfef00000ull, (1ull << 48) - 1};
}

static int setup(void **state)
{
	struct t *t = calloc(1, sizeof(*t));
	if (!t)
		return -1;
	fake_defaults(&t->f);
	t->sys = (struct vdemux_vfio_sys){fake_open, fake_close, fake_ioctl, &t->f};
	t->memfd = memfd_create("test-vfio", MFD_CLOEXEC);
	if (t->memfd < 0 || ftruncate(t->memfd, NPAGES * PAGE) < 0)
		return -1;
	t->mem = mmap(NULL, NPAGES * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, t->memfd, 0);
	if (t->mem == MAP_FAILED)
		return -1;
	t->f.mem_lo = (uintptr_t)t->mem;
	t->f.mem_hi = (uintptr_t)t->mem + NPAGES * PAGE;
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	struct t *t = *state;
	if (t->be)
		t->be->free(t->be);
	/* Whatever the test did, the backend closed what it opened... */
	assert_int_equal(t->f.nopen, 0);
	/* ...and never sent the kernel an argument it would reject. */
	if (t->f.violations)
		fail_msg("%u bad kernel argument(s), last: %s", t->f.violations, t->f.violation);
	munmap(t->mem, NPAGES * PAGE);
	close(t->memfd);
	free(t);
	return 0;
}

static struct vdemux_vfio_opts group_opts(struct t *t)
{
	return VDEMUX_OPTS(vdemux_vfio_opts, .group_path = "/dev/vfio/7", .sys = &t->sys, .log = on_log,
			   .log_payload = t);
}

static void create(struct t *t)
{
	struct vdemux_vfio_opts o = group_opts(t);
	assert_int_equal(vdemux_vfio_create(&t->be, &o), 0);
}

#define RX_BASE 0x100000ull

static struct vdemux_backend_vm vm_desc(struct t *t, uint32_t rx_pages)
{
	return (struct vdemux_backend_vm){
		.vm_id = 1,
		.rx_base = RX_BASE,
		.rx_pages = rx_pages,
		.arena = {.base = t->mem, .npages = NPAGES, .fd = t->memfd, .kind = VDEMUX_ARENA_MEMFD},
		.engine_first_page = 0,
		.engine_npages = NPAGES,
	};
}

static void attach(struct t *t, uint32_t rx_pages)
{
	struct vdemux_backend_vm vm = vm_desc(t, rx_pages);
	assert_int_equal(t->be->vm_attach(t->be, &vm, &t->vmctx), 0);
}

static uint64_t gpa_of(unsigned slot)
{
	return RX_BASE + slot * PAGE;
}

/* The fake's mapping at @iova: its page index in the arena, or -1. */
static long mapped_page(struct t *t, uint64_t iova)
{
	for (unsigned i = 0; i < t->f.nmaps; i++) {
		struct fmap *m = &t->f.maps[i];
		if (m->iova == iova) {
			assert_int_equal(m->size, PAGE);
			return (long)((m->vaddr - (uintptr_t)t->mem) / PAGE);
		}
	}
	return -1;
}

static bool iova_covered_by_any(struct t *t, uint64_t iova)
{
	return find_overlap(&t->f, iova, PAGE) != NULL;
}

/* The backend's record of a slot equals what the kernel has there. */
static void assert_in_step(struct t *t, unsigned slots)
{
	for (unsigned s = 0; s < slots; s++) {
		uint32_t page = 0;
		assert_int_equal(vdemux_vfio_translate(t->be, 1, gpa_of(s), &page), 0);
		long k = mapped_page(t, gpa_of(s));
		if (page == VDEMUX_NO_PAGE)
			assert_int_equal(k, -1);
		else
			assert_int_equal(k, (long)page);
	}
}

static int do_batch(struct t *t, vdemux_backend_batch_fn fn, const unsigned *slots,
		    const uint32_t *pages, unsigned n, unsigned *done)
{
	struct vdemux_map m[512];
	assert_true(n <= 512);
	for (unsigned i = 0; i < n; i++)
		m[i] = (struct vdemux_map){.gpa = gpa_of(slots[i]),
					   .page = pages ? pages[i] : VDEMUX_NO_PAGE};
	*done = 12345;
	return fn(t->be, t->vmctx, m, n, done);
}

/* Map slots [0, n) to pages 100 + slot. */
static void map_range(struct t *t, unsigned first, unsigned n)
{
	unsigned slots[512];
	uint32_t pages[512];
	for (unsigned i = 0; i < n; i++) {
		slots[i] = first + i;
		pages[i] = 100 + first + i;
	}
	unsigned done;
	assert_int_equal(do_batch(t, t->be->map, slots, pages, n, &done), 0);
	assert_int_equal(done, n);
}

/* A mapping the VMM made itself, of @size bytes at @iova (pages from 400). */
static void vmm_map(struct t *t, uint64_t iova, uint64_t size)
{
	struct vfio_iommu_type1_dma_map m = {
		.argsz = sizeof(m),
		.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
		.vaddr = (uintptr_t)t->mem + 400 * PAGE,
		.iova = iova,
		.size = size,
	};
	int fd = vdemux_vfio_container_fd(t->be);
	/* size > PAGE is legal for the kernel, not for the backend: bypass the
	 * one-page check by calling the table directly */
	if (size == PAGE) {
		assert_int_equal(fake_ioctl(fd, VFIO_IOMMU_MAP_DMA, (uintptr_t)&m, &t->f), 0);
	} else {
		assert_null(find_overlap(&t->f, iova, size));
		t->f.maps[t->f.nmaps++] = (struct fmap){iova, size, m.vaddr};
		t->f.dma_avail--;
	}
}

/* ---- the fake itself ---- */

static void fake_rejects_what_the_kernel_rejects(void **state)
{
	struct t *t = *state;
	create(t);
	int fd = vdemux_vfio_container_fd(t->be);
	struct vfio_iommu_type1_dma_map m = {
		.argsz = sizeof(m) - 9,
		.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
		.vaddr = (uintptr_t)t->mem,
		.iova = RX_BASE,
		.size = PAGE,
	};
	assert_int_equal(fake_ioctl(fd, VFIO_IOMMU_MAP_DMA, (uintptr_t)&m, &t->f), -EINVAL);
	m.argsz = sizeof(m);
	m.flags = 0x80;
	assert_int_equal(fake_ioctl(fd, VFIO_IOMMU_MAP_DMA, (uintptr_t)&m, &t->f), -EINVAL);
	m.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;
	m.iova = RX_BASE + 512;
	assert_int_equal(fake_ioctl(fd, VFIO_IOMMU_MAP_DMA, (uintptr_t)&m, &t->f), -EINVAL);
	m.iova = RX_BASE;
	m.size = 0;
	assert_int_equal(fake_ioctl(fd, VFIO_IOMMU_MAP_DMA, (uintptr_t)&m, &t->f), -EINVAL);
	struct vfio_iommu_type1_dma_unmap u = {.argsz = 8, .iova = RX_BASE, .size = PAGE};
	assert_int_equal(fake_ioctl(fd, VFIO_IOMMU_UNMAP_DMA, (uintptr_t)&u, &t->f), -EINVAL);
	assert_int_equal(t->f.violations, 5);
	t->f.violations = 0; /* these were the test's own, on purpose */
	m.size = PAGE;
	assert_int_equal(fake_ioctl(fd, VFIO_IOMMU_MAP_DMA, (uintptr_t)&m, &t->f), 0);
	assert_int_equal(fake_ioctl(fd, VFIO_IOMMU_MAP_DMA, (uintptr_t)&m, &t->f), -EEXIST);
	assert_int_equal(t->f.violations, 0);
}

/* ---- creation ---- */

static void create_probes_api_and_type1v2_then_attaches_group_and_sets_iommu(void **state)
{
	struct t *t = *state;
	create(t);
	const unsigned long want[] = {VFIO_GET_API_VERSION,  VFIO_CHECK_EXTENSION,
				      VFIO_GROUP_GET_STATUS, VFIO_GROUP_SET_CONTAINER,
				      VFIO_SET_IOMMU,	     VFIO_IOMMU_GET_INFO};
	assert_true(t->f.ntrace >= 6);
	for (unsigned i = 0; i < 6; i++)
		assert_int_equal(t->f.trace[i], want[i]);
	assert_true(t->f.iommu_set);
	assert_true(t->f.group_in_container);
	int cfd = vdemux_vfio_container_fd(t->be), gfd = vdemux_vfio_group_fd(t->be);
	assert_true(cfd >= 0 && gfd >= 0);
	assert_int_equal(t->f.kind[cfd], FD_CONTAINER);
	assert_int_equal(t->f.kind[gfd], FD_GROUP);
	assert_string_equal(t->be->name, "vfio");
	assert_int_equal(t->be->version, VDEMUX_BACKEND_VERSION);
	assert_int_equal(t->be->copy_threshold, VDEMUX_VFIO_COPY_THRESHOLD);
	assert_non_null(t->be->remap);
	assert_non_null(t->be->query);
	uint32_t avail = 0;
	assert_int_equal(vdemux_vfio_dma_avail(t->be, &avail), 0);
	assert_int_equal(avail, 65535);
	t->be->free(t->be);
	t->be = NULL;
	assert_int_equal(t->f.nopen, 0);
}

static void create_by_group_id_opens_dev_vfio_number(void **state)
{
	struct t *t = *state;
	struct vdemux_vfio_opts o = VDEMUX_OPTS(vdemux_vfio_opts, .flags = VDEMUX_VFIO_F_GROUP_ID,
						.group_id = 7, .sys = &t->sys);
	assert_int_equal(vdemux_vfio_create(&t->be, &o), 0);
	assert_true(t->f.group_open);
	t->be->free(t->be);
	t->be = NULL;
	o.group_id = 8;
	assert_int_equal(vdemux_vfio_create(&t->be, &o), -ENOENT);
	assert_null(t->be);
}

static void create_with_container_fd_borrows_it(void **state)
{
	struct t *t = *state;
	/* the VMM's own setup */
	int cfd = fake_open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC, &t->f);
	int gfd = fake_open("/dev/vfio/7", O_RDWR | O_CLOEXEC, &t->f);
	assert_int_equal(fake_ioctl(gfd, VFIO_GROUP_SET_CONTAINER, (uintptr_t)&cfd, &t->f), 0);
	assert_int_equal(fake_ioctl(cfd, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU, &t->f), 0);
	unsigned opens = (unsigned)t->f.nopen;

	struct vdemux_vfio_opts o = VDEMUX_OPTS(vdemux_vfio_opts, .flags = VDEMUX_VFIO_F_CONTAINER_FD,
						.container_fd = cfd, .sys = &t->sys);
	assert_int_equal(vdemux_vfio_create(&t->be, &o), 0);
	assert_int_equal(t->f.nopen, (int)opens);
	assert_int_equal(vdemux_vfio_container_fd(t->be), cfd);
	assert_int_equal(vdemux_vfio_group_fd(t->be), -ENOENT);
	attach(t, 4);
	map_range(t, 0, 4);
	unsigned done;
	assert_int_equal(do_batch(t, t->be->unmap, (unsigned[]){0, 1, 2, 3}, NULL, 4, &done), 0);
	t->be->vm_detach(t->be, t->vmctx);
	t->be->free(t->be);
	t->be = NULL;
	assert_int_equal(t->f.kind[cfd], FD_CONTAINER); /* still the VMM's */
	fake_close(gfd, &t->f);
	fake_close(cfd, &t->f);
}

static void create_refuses_container_without_iommu(void **state)
{
	struct t *t = *state;
	int cfd = fake_open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC, &t->f);
	struct vdemux_vfio_opts o = VDEMUX_OPTS(vdemux_vfio_opts, .flags = VDEMUX_VFIO_F_CONTAINER_FD,
						.container_fd = cfd, .sys = &t->sys);
	assert_int_equal(vdemux_vfio_create(&t->be, &o), -EINVAL);
	assert_null(t->be);
	assert_int_equal(t->f.kind[cfd], FD_CONTAINER);
	fake_close(cfd, &t->f);
}

static void create_refuses_wrong_api_version_and_closes_everything(void **state)
{
	struct t *t = *state;
	t->f.api_version = 1;
	struct vdemux_vfio_opts o = group_opts(t);
	assert_int_equal(vdemux_vfio_create(&t->be, &o), -EPROTONOSUPPORT);
	assert_null(t->be);
	assert_int_equal(t->f.nopen, 0);
}

static void create_refuses_container_without_type1v2(void **state)
{
	struct t *t = *state;
	t->f.type1v2 = 0;
	struct vdemux_vfio_opts o = group_opts(t);
	assert_int_equal(vdemux_vfio_create(&t->be, &o), -EOPNOTSUPP);
	assert_int_equal(t->f.nopen, 0);
	/* probed before the group was even opened */
	assert_false(t->f.group_in_container);
}

static void create_refuses_non_viable_group_with_ebusy(void **state)
{
	struct t *t = *state;
	t->f.viable = false;
	struct vdemux_vfio_opts o = group_opts(t);
	assert_int_equal(vdemux_vfio_create(&t->be, &o), -EBUSY);
	assert_int_equal(t->f.nopen, 0);
	assert_true(t->logs > 0);
	assert_non_null(strstr(t->last_log, "viable"));
}

static void create_refuses_group_already_open_with_ebusy(void **state)
{
	struct t *t = *state;
	int gfd = fake_open("/dev/vfio/7", O_RDWR | O_CLOEXEC, &t->f);
	struct vdemux_vfio_opts o = group_opts(t);
	assert_int_equal(vdemux_vfio_create(&t->be, &o), -EBUSY);
	assert_int_equal(t->f.nopen, 1);
	fake_close(gfd, &t->f);
}

static void create_refuses_iommu_without_4k_pages(void **state)
{
	struct t *t = *state;
	t->f.pgsizes = 0x200000ull | 0x40000000ull;
	struct vdemux_vfio_opts o = group_opts(t);
	assert_int_equal(vdemux_vfio_create(&t->be, &o), -EOPNOTSUPP);
	assert_int_equal(t->f.nopen, 0);
}

static void create_rejects_bad_options(void **state)
{
	struct t *t = *state;
	struct vdemux_vfio_opts o = group_opts(t);
	assert_int_equal(vdemux_vfio_create(NULL, &o), -EINVAL);
	assert_int_equal(vdemux_vfio_create(&t->be, NULL), -EINVAL);

	o = VDEMUX_OPTS(vdemux_vfio_opts, .sys = &t->sys); /* no source */
	assert_int_equal(vdemux_vfio_create(&t->be, &o), -EINVAL);
	o = group_opts(t);
	o.flags = VDEMUX_VFIO_F_GROUP_ID; /* two sources */
	assert_int_equal(vdemux_vfio_create(&t->be, &o), -EINVAL);
	o = group_opts(t);
	o.flags = 0x100;
	assert_int_equal(vdemux_vfio_create(&t->be, &o), -EINVAL);
	o = VDEMUX_OPTS(vdemux_vfio_opts, .flags = VDEMUX_VFIO_F_CONTAINER_FD, .container_fd = -1,
			.sys = &t->sys);
	assert_int_equal(vdemux_vfio_create(&t->be, &o), -EINVAL);

	struct vdemux_vfio_sys partial = t->sys;
	partial.close = NULL;
	o = group_opts(t);
	o.sys = &partial;
	assert_int_equal(vdemux_vfio_create(&t->be, &o), -EINVAL);

	/* a newer caller's larger struct: zero tail accepted, non-zero refused */
	struct {
		struct vdemux_vfio_opts o;
		uint64_t future;
	} big;
	memset(&big, 0, sizeof(big));
	big.o = group_opts(t);
	big.o.sz = sizeof(big);
	big.future = 1;
	assert_int_equal(vdemux_vfio_create(&t->be, &big.o), -EINVAL);
	assert_null(t->be);
	assert_int_equal(t->f.nopen, 0);
	big.future = 0;
	assert_int_equal(vdemux_vfio_create(&t->be, &big.o), 0);
}

static unsigned hook_allocs, hook_frees;
static void *hook_calloc(size_t n, size_t size, void *payload)
{
	(void)payload;
	hook_allocs++;
	return calloc(n, size);
}
static void hook_free(void *p, void *payload)
{
	(void)payload;
	hook_frees++;
	free(p);
}

static void allocation_goes_through_the_hooks(void **state)
{
	struct t *t = *state;
	struct vdemux_vfio_opts o = group_opts(t);
	o.alloc.calloc = hook_calloc;
	assert_int_equal(vdemux_vfio_create(&t->be, &o), -EINVAL); /* one hook only */
	o.alloc.free = hook_free;
	hook_allocs = hook_frees = 0;
	assert_int_equal(vdemux_vfio_create(&t->be, &o), 0);
	attach(t, 8);
	t->be->vm_detach(t->be, t->vmctx);
	t->be->free(t->be);
	t->be = NULL;
	assert_true(hook_allocs > 0);
	assert_int_equal(hook_allocs, hook_frees);
}

/* ---- attach: DMA_AVAIL and IOVA ranges ---- */

static void attach_refuses_window_larger_than_dma_avail_with_e2big(void **state)
{
	struct t *t = *state;
	t->f.dma_avail = 8;
	create(t);
	struct vdemux_backend_vm vm = vm_desc(t, 9);
	void *ctx = NULL;
	assert_int_equal(t->be->vm_attach(t->be, &vm, &ctx), -E2BIG);
	assert_non_null(strstr(t->last_log, "dma_entry_limit"));
	vm.rx_pages = 8;
	assert_int_equal(t->be->vm_attach(t->be, &vm, &ctx), 0);
	t->vmctx = ctx;
	map_range(t, 0, 8);
	assert_int_equal(t->f.dma_avail, 0);
}

static void attach_counts_what_the_vmm_already_mapped(void **state)
{
	struct t *t = *state;
	t->f.dma_avail = 16;
	create(t);
	/* guest RAM below the window, mapped by the VMM in 10 pieces */
	for (unsigned i = 0; i < 10; i++)
		vmm_map(t, i * PAGE, PAGE);
	struct vdemux_backend_vm vm = vm_desc(t, 7);
	void *ctx = NULL;
	assert_int_equal(t->be->vm_attach(t->be, &vm, &ctx), -E2BIG);
	vm.rx_pages = 6;
	assert_int_equal(t->be->vm_attach(t->be, &vm, &ctx), 0);
	t->vmctx = ctx;
	t->be->vm_detach(t->be, ctx);
}

static void attach_without_dma_avail_capability_proceeds(void **state)
{
	struct t *t = *state;
	t->f.report_avail = false;
	create(t);
	uint32_t avail;
	assert_int_equal(vdemux_vfio_dma_avail(t->be, &avail), -ENODATA);
	attach(t, 64);
	map_range(t, 0, 64);
	assert_in_step(t, 64);
}

static void attach_refuses_window_outside_iova_ranges(void **state)
{
	struct t *t = *state;
	create(t);
	/* [0xfee00000, 0xfeefffff] is the x86 MSI hole: not a valid IOVA */
	struct vdemux_backend_vm vm = vm_desc(t, 4);
	vm.rx_base = 0xfedfe000ull;
	void *ctx = NULL;
	assert_int_equal(t->be->vm_attach(t->be, &vm, &ctx), -ERANGE);
	vm.rx_base = 1ull << 48;
	assert_int_equal(t->be->vm_attach(t->be, &vm, &ctx), -ERANGE);
	vm.rx_base = 0xfedfc000ull; /* ends right below the hole */
	assert_int_equal(t->be->vm_attach(t->be, &vm, &ctx), 0);
	t->be->vm_detach(t->be, ctx);
}

static void attach_joins_adjacent_iova_ranges(void **state)
{
	struct t *t = *state;
	t->f.nranges = 2;
	t->f.ranges[0] = (struct vfio_iova_range){0, RX_BASE + 2 * PAGE - 1};
	t->f.ranges[1] = (struct vfio_iova_range){RX_BASE + 2 * PAGE, (1ull << 39) - 1};
	create(t);
	attach(t, 4);
	t->be->vm_detach(t->be, t->vmctx);
}

static void attach_reads_caps_when_the_kernel_needs_a_larger_argsz(void **state)
{
	struct t *t = *state;
	/* many IOVA ranges: the chain outgrows the backend's first buffer */
	t->f.nranges = 40;
	for (uint32_t i = 0; i < 40; i++)
		t->f.ranges[i] = (struct vfio_iova_range){i * 0x10000000ull,
							  i * 0x10000000ull + 0x0fffffffull};
	t->f.ranges[39].end = (1ull << 48) - 1;
	t->f.dma_avail = 3;
	create(t);
	assert_true(t->f.info_calls >= 2);
	struct vdemux_backend_vm vm = vm_desc(t, 4);
	void *ctx = NULL;
	assert_int_equal(t->be->vm_attach(t->be, &vm, &ctx), -E2BIG); /* the cap was found */
	vm.rx_pages = 3;
	vm.rx_base = 39 * 0x10000000ull + 0x1000;
	assert_int_equal(t->be->vm_attach(t->be, &vm, &ctx), 0);
	t->be->vm_detach(t->be, ctx);
}

static void attach_refuses_heap_arena_and_a_second_vm(void **state)
{
	struct t *t = *state;
	create(t);
	struct vdemux_backend_vm vm = vm_desc(t, 4);
	vm.arena.kind = VDEMUX_ARENA_HEAP;
	vm.arena.fd = -1;
	void *ctx = NULL;
	assert_int_equal(t->be->vm_attach(t->be, &vm, &ctx), -EINVAL);
	attach(t, 4);
	vm = vm_desc(t, 4);
	vm.vm_id = 2;
	vm.rx_base = 0x10000000ull;
	assert_int_equal(t->be->vm_attach(t->be, &vm, &ctx), -EBUSY);
	uint32_t page;
	assert_int_equal(vdemux_vfio_translate(t->be, 2, 0x10000000ull, &page), -ENOENT);
}

/* ---- map ---- */

static void map_makes_one_rw_mapping_per_page_at_iova_gpa(void **state)
{
	struct t *t = *state;
	create(t);
	attach(t, 16);
	unsigned done;
	const unsigned slots[] = {3, 4, 9};
	const uint32_t pages[] = {17, 2, 300};
	unsigned calls = t->f.map_calls;
	assert_int_equal(do_batch(t, t->be->map, slots, pages, 3, &done), 0);
	assert_int_equal(done, 3);
	assert_int_equal(t->f.map_calls - calls, 3);
	assert_int_equal(t->f.nmaps, 3);
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(mapped_page(t, gpa_of(slots[i])), pages[i]);
	assert_in_step(t, 16);
	uint32_t avail;
	assert_int_equal(vdemux_vfio_dma_avail(t->be, &avail), 0);
	assert_int_equal(avail, 65535 - 3);
	uint32_t q;
	assert_int_equal(t->be->query(t->be, t->vmctx, gpa_of(9), &q), 0);
	assert_int_equal(q, 300);
	assert_int_equal(t->be->query(t->be, t->vmctx, gpa_of(8), &q), 0);
	assert_int_equal(q, VDEMUX_NO_PAGE);
	assert_int_equal(t->be->query(t->be, t->vmctx, gpa_of(16), &q), -ERANGE);
	struct vdemux_vfio_stats st;
	assert_int_equal(vdemux_vfio_stats(t->be, &st, sizeof(st)), 0);
	assert_int_equal(st.mapped, 3);
	assert_int_equal(st.pages_mapped, 3);
	assert_int_equal(st.map_calls, 3);
}

static void map_onto_a_mapped_iova_fails_eexist_after_the_prefix(void **state)
{
	struct t *t = *state;
	create(t);
	attach(t, 8);
	vmm_map(t, gpa_of(2), PAGE); /* someone else's mapping inside the window */
	unsigned done;
	const unsigned slots[] = {0, 1, 2, 3};
	const uint32_t pages[] = {10, 11, 12, 13};
	assert_int_equal(do_batch(t, t->be->map, slots, pages, 4, &done), -EEXIST);
	assert_int_equal(done, 2);
	assert_int_equal(mapped_page(t, gpa_of(0)), 10);
	assert_int_equal(mapped_page(t, gpa_of(1)), 11);
	assert_int_equal(mapped_page(t, gpa_of(2)), 400); /* untouched */
	assert_int_equal(mapped_page(t, gpa_of(3)), -1);  /* never tried */
	uint32_t page;
	assert_int_equal(vdemux_vfio_translate(t->be, 1, gpa_of(2), &page), 0);
	assert_int_equal(page, VDEMUX_NO_PAGE);
	/* and a second map of our own page is refused too */
	assert_int_equal(do_batch(t, t->be->map, (unsigned[]){0}, (uint32_t[]){20}, 1, &done), -EEXIST);
	assert_int_equal(done, 0);
	assert_int_equal(mapped_page(t, gpa_of(0)), 10);
}

static void map_out_of_dma_entries_fails_enospc_after_the_prefix(void **state)
{
	struct t *t = *state;
	t->f.dma_avail = 16;
	create(t);
	attach(t, 8);
	/* the VMM then maps more guest RAM: 3 entries left for the window */
	for (unsigned i = 0; i < 5; i++)
		vmm_map(t, i * PAGE, PAGE);
	for (unsigned i = 0; i < 8; i++)
		vmm_map(t, 0x10000000ull + i * PAGE, PAGE);
	assert_int_equal(t->f.dma_avail, 3);
	unsigned done;
	const unsigned slots[] = {0, 1, 2, 3, 4, 5, 6, 7};
	const uint32_t pages[] = {1, 2, 3, 4, 5, 6, 7, 8};
	assert_int_equal(do_batch(t, t->be->map, slots, pages, 8, &done), -ENOSPC);
	assert_int_equal(done, 3);
	assert_in_step(t, 8);
	assert_int_equal(t->f.dma_avail, 0);
	/* entries free up as pages leave */
	assert_int_equal(do_batch(t, t->be->unmap, slots, pages, 3, &done), 0);
	assert_int_equal(do_batch(t, t->be->map, slots + 3, pages + 3, 3, &done), 0);
	assert_in_step(t, 8);
}

static void map_rejects_gpa_outside_window_or_foreign_page_before_any_call(void **state)
{
	struct t *t = *state;
	create(t);
	struct vdemux_backend_vm vm = vm_desc(t, 8);
	vm.engine_first_page = 10;
	vm.engine_npages = 20;
	assert_int_equal(t->be->vm_attach(t->be, &vm, &t->vmctx), 0);
	unsigned calls = t->f.map_calls, done;
	assert_int_equal(do_batch(t, t->be->map, (unsigned[]){0, 8}, (uint32_t[]){10, 11}, 2, &done),
			 -EINVAL);
	assert_int_equal(done, 1);
	assert_int_equal(t->f.map_calls - calls, 1);
	assert_int_equal(do_batch(t, t->be->map, (unsigned[]){1}, (uint32_t[]){30}, 1, &done), -EINVAL);
	assert_int_equal(do_batch(t, t->be->map, (unsigned[]){1}, (uint32_t[]){9}, 1, &done), -EINVAL);
	struct vdemux_map odd = {.gpa = RX_BASE + 100, .page = 12};
	assert_int_equal(t->be->map(t->be, t->vmctx, &odd, 1, &done), -EINVAL);
	assert_int_equal(done, 0);
	assert_int_equal(t->f.map_calls - calls, 1);
	assert_in_step(t, 8);
}

/* ---- unmap ---- */

static void unmap_merges_contiguous_gpas_into_one_unmap_dma(void **state)
{
	struct t *t = *state;
	create(t);
	attach(t, 256);
	map_range(t, 0, 256);
	assert_int_equal(t->f.nmaps, 256);
	unsigned slots[256], done;
	for (unsigned i = 0; i < 256; i++)
		slots[i] = i;
	unsigned calls = t->f.unmap_calls;
	assert_int_equal(do_batch(t, t->be->unmap, slots, NULL, 256, &done), 0);
	assert_int_equal(done, 256);
	assert_int_equal(t->f.unmap_calls - calls, 1);
	assert_int_equal(t->f.nmaps, 0);
	assert_in_step(t, 256);

	map_range(t, 0, 10);
	calls = t->f.unmap_calls;
	const unsigned three_runs[] = {0, 1, 2, 3, 5, 6, 9, 8};
	assert_int_equal(do_batch(t, t->be->unmap, three_runs, NULL, 8, &done), 0);
	assert_int_equal(done, 8);
	assert_int_equal(t->f.unmap_calls - calls, 4); /* 0-3, 5-6, 9, 8 */
	assert_int_equal(t->f.nmaps, 2);	       /* 4 and 7 stay */
	assert_in_step(t, 10);
	struct vdemux_vfio_stats st;
	vdemux_vfio_stats(t->be, &st, sizeof(st));
	assert_int_equal(st.mapped, 2);
	assert_int_equal(st.pages_unmapped, 256 + 8);
}

static void unmap_of_holes_succeeds(void **state)
{
	struct t *t = *state;
	create(t);
	attach(t, 8);
	map_range(t, 2, 1);
	unsigned done;
	assert_int_equal(do_batch(t, t->be->unmap, (unsigned[]){0, 1, 2, 3}, NULL, 4, &done), 0);
	assert_int_equal(done, 4);
	assert_int_equal(t->f.nmaps, 0);
	assert_in_step(t, 8);
}

static void unmap_that_would_split_a_mapping_fails_einval_and_keeps_it(void **state)
{
	struct t *t = *state;
	create(t);
	attach(t, 8);
	vmm_map(t, gpa_of(2), 2 * PAGE); /* one mapping over slots 2 and 3 */
	unsigned done;
	assert_int_equal(do_batch(t, t->be->unmap, (unsigned[]){2}, NULL, 1, &done), -EINVAL);
	assert_int_equal(done, 0);
	assert_int_equal(do_batch(t, t->be->unmap, (unsigned[]){3}, NULL, 1, &done), -EINVAL);
	assert_int_equal(done, 0);
	assert_true(iova_covered_by_any(t, gpa_of(2)));
	assert_true(iova_covered_by_any(t, gpa_of(3)));
	struct vdemux_vfio_stats st;
	vdemux_vfio_stats(t->be, &st, sizeof(st));
	assert_int_equal(st.errors, 2);
}

static void failed_merged_unmap_falls_back_per_page_and_reports_the_prefix(void **state)
{
	struct t *t = *state;
	create(t);
	attach(t, 8);
	map_range(t, 0, 2);
	vmm_map(t, gpa_of(2), 2 * PAGE);
	map_range(t, 4, 2);
	unsigned done;
	/* the run 0..2 ends inside the mapping of 2-3: the kernel refuses it whole */
	assert_int_equal(do_batch(t, t->be->unmap, (unsigned[]){0, 1, 2, 4}, NULL, 4, &done), -EINVAL);
	assert_int_equal(done, 2);
	assert_int_equal(mapped_page(t, gpa_of(0)), -1);
	assert_int_equal(mapped_page(t, gpa_of(1)), -1);
	assert_true(iova_covered_by_any(t, gpa_of(2)));
	assert_int_equal(mapped_page(t, gpa_of(4)), 104); /* after the failure: unchanged */
	assert_in_step(t, 2);
	struct vdemux_vfio_stats st;
	vdemux_vfio_stats(t->be, &st, sizeof(st));
	assert_int_equal(st.unmap_fallbacks, 1);
	assert_int_equal(st.restore_failures, 0);
}

static void unmap_failing_after_partial_removal_puts_back_the_rest(void **state)
{
	struct t *t = *state;
	create(t);
	attach(t, 8);
	map_range(t, 0, 6);
	/* The merged call removes everything and still fails; then the one-page
	 * unmap of slot 3 fails. Slots 3..5 must be reported unchanged: mapped,
	 * with their own pages. */
	t->f.fail_unmap_call = t->f.unmap_calls + 1;
	t->f.fail_unmap_errno = EFAULT;
	t->f.fail_unmap_after_removing = true;
	t->f.fail_single_unmap_iova = gpa_of(3);
	unsigned done;
	const unsigned slots[] = {0, 1, 2, 3, 4, 5};
	assert_int_equal(do_batch(t, t->be->unmap, slots, NULL, 6, &done), -EIO);
	assert_int_equal(done, 3);
	for (unsigned s = 0; s < 3; s++)
		assert_int_equal(mapped_page(t, gpa_of(s)), -1);
	for (unsigned s = 3; s < 6; s++)
		assert_int_equal(mapped_page(t, gpa_of(s)), 100 + s);
	assert_in_step(t, 8);
	struct vdemux_vfio_stats st;
	vdemux_vfio_stats(t->be, &st, sizeof(st));
	assert_int_equal(st.mapped, 3);
	assert_int_equal(st.restore_failures, 0);
	/* once the fault is gone, the rest unmaps */
	t->f.fail_single_unmap_iova = 0;
	assert_int_equal(do_batch(t, t->be->unmap, slots + 3, NULL, 3, &done), 0);
	assert_int_equal(t->f.nmaps, 0);
}

static void unmap_failure_that_cannot_be_repaired_leaves_holes_never_mappings(void **state)
{
	struct t *t = *state;
	create(t);
	attach(t, 8);
	map_range(t, 0, 4);
	t->f.fail_unmap_call = t->f.unmap_calls + 1;
	t->f.fail_unmap_errno = EFAULT;
	t->f.fail_unmap_after_removing = true;
	t->f.fail_single_unmap_iova = gpa_of(1);
	t->f.fail_map_call = t->f.map_calls + 1; /* the repair of slot 1 fails... */
	t->f.fail_map_errno = ENOMEM;
	unsigned done;
	assert_int_equal(do_batch(t, t->be->unmap, (unsigned[]){0, 1, 2, 3}, NULL, 4, &done), -EIO);
	assert_int_equal(done, 1);
	/* ...so slot 1 is a hole, and says so; 2 and 3 were put back */
	assert_in_step(t, 4);
	uint32_t page;
	vdemux_vfio_translate(t->be, 1, gpa_of(1), &page);
	assert_int_equal(page, VDEMUX_NO_PAGE);
	assert_int_equal(mapped_page(t, gpa_of(2)), 102);
	struct vdemux_vfio_stats st;
	vdemux_vfio_stats(t->be, &st, sizeof(st));
	assert_int_equal(st.restore_failures, 1);
	assert_non_null(strstr(t->last_log, "hole"));
}

/* ---- remap ---- */

static void remap_unmaps_then_maps_the_new_page(void **state)
{
	struct t *t = *state;
	create(t);
	attach(t, 8);
	map_range(t, 0, 4);
	unsigned n0 = t->f.ntrace, done;
	assert_int_equal(do_batch(t, t->be->remap, (unsigned[]){1, 2}, (uint32_t[]){50, 51}, 2, &done),
			 0);
	assert_int_equal(done, 2);
	assert_int_equal(mapped_page(t, gpa_of(1)), 50);
	assert_int_equal(mapped_page(t, gpa_of(2)), 51);
	assert_int_equal(mapped_page(t, gpa_of(0)), 100);
	/* one merged unmap, then the maps */
	assert_int_equal(t->f.ntrace - n0, 3);
	assert_int_equal(t->f.trace[n0], VFIO_IOMMU_UNMAP_DMA);
	assert_int_equal(t->f.trace[n0 + 1], VFIO_IOMMU_MAP_DMA);
	assert_int_equal(t->f.trace[n0 + 2], VFIO_IOMMU_MAP_DMA);
	/* remap of a hole is a map */
	assert_int_equal(do_batch(t, t->be->remap, (unsigned[]){6}, (uint32_t[]){52}, 1, &done), 0);
	assert_int_equal(mapped_page(t, gpa_of(6)), 52);
	assert_in_step(t, 8);
}

static void remap_failure_maps_the_old_pages_back(void **state)
{
	struct t *t = *state;
	create(t);
	attach(t, 8);
	map_range(t, 0, 4);
	t->f.fail_map_call = t->f.map_calls + 2; /* the second new page */
	t->f.fail_map_errno = ENOMEM;
	unsigned done;
	assert_int_equal(
		do_batch(t, t->be->remap, (unsigned[]){0, 1, 2}, (uint32_t[]){60, 61, 62}, 3, &done),
		-ENOMEM);
	assert_int_equal(done, 1);
	assert_int_equal(mapped_page(t, gpa_of(0)), 60);
	assert_int_equal(mapped_page(t, gpa_of(1)), 101);
	assert_int_equal(mapped_page(t, gpa_of(2)), 102);
	assert_int_equal(mapped_page(t, gpa_of(3)), 103);
	assert_in_step(t, 8);
	struct vdemux_vfio_stats st;
	vdemux_vfio_stats(t->be, &st, sizeof(st));
	assert_int_equal(st.mapped, 4);
	assert_int_equal(st.restore_failures, 0);
}

/* ---- detach, stats ---- */

static void detach_unmaps_whatever_is_left(void **state)
{
	struct t *t = *state;
	create(t);
	attach(t, 8);
	map_range(t, 0, 5);
	t->be->vm_detach(t->be, t->vmctx);
	assert_int_equal(t->f.nmaps, 0);
	assert_int_equal(t->f.dma_avail, 65535);
	uint32_t page;
	assert_int_equal(vdemux_vfio_translate(t->be, 1, gpa_of(0), &page), -ENOENT);
	attach(t, 8); /* the container can take a VM again */
}

static void functions_refuse_other_backends(void **state)
{
	(void)state;
	struct vdemux_backend other = VDEMUX_BACKEND_INIT;
	uint32_t x;
	struct vdemux_vfio_stats st;
	assert_int_equal(vdemux_vfio_container_fd(&other), -EINVAL);
	assert_int_equal(vdemux_vfio_group_fd(NULL), -EINVAL);
	assert_int_equal(vdemux_vfio_dma_avail(&other, &x), -EINVAL);
	assert_int_equal(vdemux_vfio_translate(&other, 1, 0, &x), -EINVAL);
	assert_int_equal(vdemux_vfio_stats(&other, &st, sizeof(st)), -EINVAL);
}

/* ---- with the engine: its view, the backend's record and the kernel agree ---- */

struct eng {
	vdemux_arena *arena;
	struct vdemux_arena_info ai;
	vdemux_engine *e;
	struct vdemux_backend *be; /* owned by the engine */
	vdemux_vm_id vm;
};

static const uint8_t mac_vm[6] = {0x02, 0, 0, 0, 0, 0x0a};

static void eng_up(struct t *t, struct eng *g, enum vdemux_harvest h, uint32_t rx_pages, uint32_t flags)
{
	struct vdemux_arena_opts ao = VDEMUX_OPTS(vdemux_arena_opts, .npages = 64,
						  .kind = VDEMUX_ARENA_MEMFD);
	assert_int_equal(vdemux_arena_create(&g->arena, &ao), 0);
	assert_int_equal(vdemux_arena_info(g->arena, &g->ai), 0);
	t->f.mem_lo = (uintptr_t)g->ai.base;
	t->f.mem_hi = (uintptr_t)g->ai.base + 64 * PAGE;
	struct vdemux_engine_opts eo = VDEMUX_OPTS(vdemux_engine_opts, .arena = g->arena);
	assert_int_equal(vdemux_engine_create(&g->e, &eo), 0);
	struct vdemux_vfio_opts o = group_opts(t);
	assert_int_equal(vdemux_vfio_create(&g->be, &o), 0);
	assert_int_equal(vdemux_engine_add_backend(g->e, g->be), 0);
	struct vdemux_backend *bes[1] = {g->be};
	struct vdemux_vm_opts vo = VDEMUX_OPTS(vdemux_vm_opts, .rx_base = RX_BASE, .rx_pages = rx_pages,
					       .harvest = h, .copy = VDEMUX_COPY_NEVER, .flags = flags,
					       .backends = bes, .n_backends = 1);
	assert_int_equal(vdemux_vm_add(g->e, &g->vm, &vo), 0);
	vdemux_l2 *l2 = vdemux_engine_l2(g->e);
	assert_int_equal(vdemux_l2_vlan_join(l2, g->vm, 1, 0), 0);
	assert_int_equal(vdemux_l2_add_mac(l2, g->vm, mac_vm, 1), 0);
}

static void eng_down(struct eng *g)
{
	vdemux_engine_destroy(g->e);
	vdemux_arena_destroy(g->arena);
}

/* The engine is consistent, and the kernel maps exactly what the backend recorded. */
static void eng_in_step(struct t *t, struct eng *g, uint32_t rx_pages)
{
	char msg[200] = "";
	if (vdemux_engine_check(g->e, msg, sizeof(msg)))
		fail_msg("engine check: %s", msg);
	struct vdemux_vm_stats vs;
	assert_int_equal(vdemux_vm_stats(g->e, g->vm, &vs, sizeof(vs)), 0);
	unsigned mapped = 0;
	for (uint32_t s = 0; s < rx_pages; s++) {
		uint32_t page;
		assert_int_equal(vdemux_vfio_translate(g->be, g->vm, gpa_of(s), &page), 0);
		long k = -1;
		for (unsigned i = 0; i < t->f.nmaps; i++)
			if (t->f.maps[i].iova == gpa_of(s))
				k = (long)((t->f.maps[i].vaddr - (uintptr_t)g->ai.base) / PAGE);
		if (page == VDEMUX_NO_PAGE) {
			assert_int_equal(k, -1);
		} else {
			assert_int_equal(k, (long)page);
			mapped++;
		}
	}
	assert_int_equal(mapped, vs.held);
	assert_int_equal(t->f.nmaps, mapped);
}

static int eng_frames(struct eng *g, unsigned n, uint32_t len)
{
	static uint8_t buf[16][PAGE];
	struct vdemux_frame f[16];
	assert_true(n <= 16);
	for (unsigned i = 0; i < n; i++) {
		memset(buf[i], (int)(i + 1), len);
		memcpy(buf[i], mac_vm, 6);
		memcpy(buf[i] + 6, (uint8_t[]){2, 0, 0, 0, 0, 1}, 6);
		buf[i][12] = 0x88;
		buf[i][13] = 0xb5;
		f[i] = (struct vdemux_frame){.data = buf[i], .len = len};
	}
	return vdemux_rx_burst(g->e, f, n);
}

static void window(uint64_t *gpas, unsigned first, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		gpas[i] = gpa_of(first + i);
}

static void engine_post_flip_release_keep_the_iommu_in_step(void **state)
{
	struct t *t = *state;
	struct eng g;
	eng_up(t, &g, VDEMUX_HARVEST_EAGER, 8, 0);
	eng_in_step(t, &g, 8);
	assert_int_equal(t->f.nmaps, 8);

	uint64_t gpas[8];
	window(gpas, 2, 4);
	unsigned calls = t->f.unmap_calls;
	assert_int_equal(vdemux_vm_post_rx(g.e, g.vm, gpas, 4), 4);
	assert_int_equal(t->f.unmap_calls - calls, 1); /* one run, one UNMAP_DMA */
	eng_in_step(t, &g, 8);
	assert_int_equal(t->f.nmaps, 4);

	assert_int_equal(eng_frames(&g, 4, 2000), 4);
	eng_in_step(t, &g, 8);
	assert_int_equal(t->f.nmaps, 8);

	assert_int_equal(vdemux_vm_release(g.e, g.vm, gpas, 2), 2);
	eng_in_step(t, &g, 8);
	assert_int_equal(vdemux_vm_remove(g.e, g.vm), 0);
	assert_int_equal(t->f.nmaps, 0);
	assert_int_equal(t->f.dma_avail, 65535);
	eng_down(&g);
}

static void engine_map_failure_mid_burst_loses_no_page(void **state)
{
	struct t *t = *state;
	struct eng g;
	eng_up(t, &g, VDEMUX_HARVEST_EAGER, 8, VDEMUX_VM_F_UNPOPULATED);
	uint64_t gpas[8];
	window(gpas, 0, 8);
	assert_int_equal(vdemux_vm_post_rx(g.e, g.vm, gpas, 8), 8);
	t->f.fail_map_call = t->f.map_calls + 4;
	t->f.fail_map_errno = ENOMEM;
	assert_int_equal(eng_frames(&g, 8, 3000), 8);
	struct vdemux_engine_stats es;
	vdemux_engine_stats(g.e, &es, sizeof(es));
	assert_int_equal(es.pages_assigned, 3);
	assert_int_equal(es.pages_free + es.pages_filling + es.pages_assigned, es.pages_total);
	assert_int_equal(es.drops[VDEMUX_DROP_BACKEND], 5);
	eng_in_step(t, &g, 8);
	eng_down(&g);
	assert_int_equal(t->f.nmaps, 0);
}

static void engine_unmap_failure_mid_post_loses_no_page(void **state)
{
	struct t *t = *state;
	struct eng g;
	eng_up(t, &g, VDEMUX_HARVEST_EAGER, 8, 0);
	/* the merged unmap fails after removing everything, and slot 5 cannot
	 * be unmapped alone: the backend puts 5..7 back and reports 5 */
	t->f.fail_unmap_call = t->f.unmap_calls + 1;
	t->f.fail_unmap_errno = EFAULT;
	t->f.fail_unmap_after_removing = true;
	t->f.fail_single_unmap_iova = gpa_of(5);
	uint64_t gpas[8];
	window(gpas, 0, 8);
	assert_int_equal(vdemux_vm_post_rx(g.e, g.vm, gpas, 8), 5);
	eng_in_step(t, &g, 8);
	struct vdemux_vm_stats vs;
	vdemux_vm_stats(g.e, g.vm, &vs, sizeof(vs));
	assert_int_equal(vs.held, 3);
	assert_int_equal(vs.posted, 5);
	t->f.fail_single_unmap_iova = 0;
	assert_int_equal(vdemux_vm_post_rx(g.e, g.vm, gpas + 5, 3), 3);
	eng_in_step(t, &g, 8);
	assert_int_equal(t->f.nmaps, 0);
	eng_down(&g);
}

static void engine_lazy_remap_moves_the_mapping_or_keeps_the_old_page(void **state)
{
	struct t *t = *state;
	struct eng g;
	eng_up(t, &g, VDEMUX_HARVEST_LAZY, 8, 0);
	uint64_t gpas[8];
	window(gpas, 0, 2);
	uint32_t old0, old1, now;
	vdemux_vfio_translate(g.be, g.vm, gpas[0], &old0);
	vdemux_vfio_translate(g.be, g.vm, gpas[1], &old1);
	assert_int_equal(vdemux_vm_post_rx(g.e, g.vm, gpas, 2), 2);
	eng_in_step(t, &g, 8); /* lazy: still mapped */
	assert_int_equal(t->f.nmaps, 8);

	assert_int_equal(eng_frames(&g, 1, 1500), 1);
	vdemux_vfio_translate(g.be, g.vm, gpas[0], &now);
	assert_int_not_equal(now, old0);
	eng_in_step(t, &g, 8);

	/* the next remap's map fails for lack of resources: the old page goes
	 * back in, and the frame is copied into it instead of being dropped */
	t->f.fail_map_call = t->f.map_calls + 1;
	t->f.fail_map_errno = ENOMEM;
	assert_int_equal(eng_frames(&g, 1, 1500), 1);
	vdemux_vfio_translate(g.be, g.vm, gpas[1], &now);
	assert_int_equal(now, old1);
	struct vdemux_engine_stats es;
	vdemux_engine_stats(g.e, &es, sizeof(es));
	assert_int_equal(es.drops[VDEMUX_DROP_BACKEND], 0);
	assert_int_equal(es.fallback_copies, 1);
	eng_in_step(t, &g, 8);
	eng_down(&g);
}

static void engine_vm_add_refuses_a_window_beyond_dma_avail(void **state)
{
	struct t *t = *state;
	t->f.dma_avail = 6;
	struct vdemux_arena_opts ao = VDEMUX_OPTS(vdemux_arena_opts, .npages = 64,
						  .kind = VDEMUX_ARENA_MEMFD);
	vdemux_arena *arena;
	vdemux_engine *e;
	struct vdemux_backend *be;
	assert_int_equal(vdemux_arena_create(&arena, &ao), 0);
	struct vdemux_arena_info ai;
	vdemux_arena_info(arena, &ai);
	t->f.mem_lo = (uintptr_t)ai.base;
	t->f.mem_hi = (uintptr_t)ai.base + 64 * PAGE;
	struct vdemux_engine_opts eo = VDEMUX_OPTS(vdemux_engine_opts, .arena = arena);
	assert_int_equal(vdemux_engine_create(&e, &eo), 0);
	struct vdemux_vfio_opts o = group_opts(t);
	assert_int_equal(vdemux_vfio_create(&be, &o), 0);
	assert_int_equal(vdemux_engine_add_backend(e, be), 0);
	struct vdemux_backend *bes[1] = {be};
	struct vdemux_vm_opts vo = VDEMUX_OPTS(vdemux_vm_opts, .rx_base = RX_BASE, .rx_pages = 7,
					       .backends = bes, .n_backends = 1);
	vdemux_vm_id id;
	assert_int_equal(vdemux_vm_add(e, &id, &vo), -E2BIG);
	struct vdemux_engine_stats es;
	vdemux_engine_stats(e, &es, sizeof(es));
	assert_int_equal(es.pages_free, 64);
	assert_int_equal(t->f.nmaps, 0);
	vo.rx_pages = 6;
	assert_int_equal(vdemux_vm_add(e, &id, &vo), 0);
	assert_int_equal(t->f.nmaps, 6);
	vdemux_engine_destroy(e);
	vdemux_arena_destroy(arena);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(fake_rejects_what_the_kernel_rejects),
		T(create_probes_api_and_type1v2_then_attaches_group_and_sets_iommu),
		T(create_by_group_id_opens_dev_vfio_number),
		T(create_with_container_fd_borrows_it),
		T(create_refuses_container_without_iommu),
		T(create_refuses_wrong_api_version_and_closes_everything),
		T(create_refuses_container_without_type1v2),
		T(create_refuses_non_viable_group_with_ebusy),
		T(create_refuses_group_already_open_with_ebusy),
		T(create_refuses_iommu_without_4k_pages),
		T(create_rejects_bad_options),
		T(allocation_goes_through_the_hooks),
		T(attach_refuses_window_larger_than_dma_avail_with_e2big),
		T(attach_counts_what_the_vmm_already_mapped),
		T(attach_without_dma_avail_capability_proceeds),
		T(attach_refuses_window_outside_iova_ranges),
		T(attach_joins_adjacent_iova_ranges),
		T(attach_reads_caps_when_the_kernel_needs_a_larger_argsz),
		T(attach_refuses_heap_arena_and_a_second_vm),
		T(map_makes_one_rw_mapping_per_page_at_iova_gpa),
		T(map_onto_a_mapped_iova_fails_eexist_after_the_prefix),
		T(map_out_of_dma_entries_fails_enospc_after_the_prefix),
		T(map_rejects_gpa_outside_window_or_foreign_page_before_any_call),
		T(unmap_merges_contiguous_gpas_into_one_unmap_dma),
		T(unmap_of_holes_succeeds),
		T(unmap_that_would_split_a_mapping_fails_einval_and_keeps_it),
		T(failed_merged_unmap_falls_back_per_page_and_reports_the_prefix),
		T(unmap_failing_after_partial_removal_puts_back_the_rest),
		T(unmap_failure_that_cannot_be_repaired_leaves_holes_never_mappings),
		T(remap_unmaps_then_maps_the_new_page),
		T(remap_failure_maps_the_old_pages_back),
		T(detach_unmaps_whatever_is_left),
		T(functions_refuse_other_backends),
		T(engine_post_flip_release_keep_the_iommu_in_step),
		T(engine_map_failure_mid_burst_loses_no_page),
		T(engine_unmap_failure_mid_post_loses_no_page),
		T(engine_lazy_remap_moves_the_mapping_or_keeps_the_old_page),
		T(engine_vm_add_refuses_a_window_beyond_dma_avail),
#undef T
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

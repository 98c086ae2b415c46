/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <vdemux/arena.h>

#include "common/util.h"

struct vdemux_arena {
	struct vdemux_alloc_hooks alloc;
	struct vdemux_arena_info info;
	void *map; /* what mmap returned (may start before info.base) */
	size_t map_len;
};

#define ALIGN_2M (2u << 20)
#define ARENA_MAX_PAGES (1u << 28) /* 1 TiB */

/* Map the arena's @p len bytes: the memfd @p fd, or anonymous memory when
 * it is -1; 2 MiB-aligned and advised huge pages with @p align (advice
 * only: a kernel without THP refuses it and the arena works in small
 * pages). Sets a->map and a->map_len to what must be unmapped, and *base;
 * 0 or a negative errno. */
static int arena_map(struct vdemux_arena *a, int fd, size_t len, bool align, uint8_t **base)
{
	size_t map_len = align ? len + ALIGN_2M : len;
	/* A memfd is mapped over a reserved range (aligned if asked). */
	int prot = fd >= 0 ? PROT_NONE : PROT_READ | PROT_WRITE;
	uint8_t *m = mmap(NULL, map_len, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (m == MAP_FAILED)
		return -errno;
	a->map = m;
	a->map_len = map_len;
	if (align)
		m = (uint8_t *)(((uintptr_t)m + ALIGN_2M - 1) & ~(uintptr_t)(ALIGN_2M - 1));
	if (fd >= 0 && mmap(m, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0) == MAP_FAILED)
		return -errno;
	if (align)
		(void)madvise(m, len, MADV_HUGEPAGE);
	*base = m;
	return 0;
}

int vdemux_arena_create(vdemux_arena **out, const struct vdemux_arena_opts *uopts)
{
	struct vdemux_arena_opts o;
	struct vdemux_arena *a;
	size_t len;
	uint8_t *m = NULL;
	int fd = -1, err;

	if (!out || !uopts)
		return -EINVAL;
	if (vd_opts_check(uopts, sizeof(o)))
		return -EINVAL;
	vd_opts_copy(&o, uopts, sizeof(o));
	if (o.npages == 0 || o.npages > ARENA_MAX_PAGES || (o.flags & ~VDEMUX_ARENA_F_ALIGN_2M) ||
	    (o.kind != VDEMUX_ARENA_HEAP && o.kind != VDEMUX_ARENA_MEMFD) || !vd_hooks_valid(&o.alloc))
		return -EINVAL;

	a = vd_calloc(&o.alloc, 1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->alloc = o.alloc;
	len = (size_t)o.npages * PAGE;
	if (o.kind == VDEMUX_ARENA_MEMFD) {
		fd = memfd_create("vdemux-arena", MFD_CLOEXEC);
		if (fd < 0 || ftruncate(fd, (off_t)len) < 0) {
			err = -errno;
			goto fail;
		}
	}
	err = arena_map(a, fd, len, (o.flags & VDEMUX_ARENA_F_ALIGN_2M) != 0, &m);
	if (err)
		goto fail;
	a->info.base = m;
	a->info.npages = o.npages;
	a->info.fd = fd;
	a->info.kind = o.kind;
	*out = a;
	return 0;
fail:
	if (a->map)
		munmap(a->map, a->map_len);
	if (fd >= 0)
		close(fd);
	vd_free(&o.alloc, a);
	return err == -ENOMEM || err == -EAGAIN ? -ENOMEM : err;
}

void vdemux_arena_destroy(vdemux_arena *a)
{
	struct vdemux_alloc_hooks h;

	if (!a)
		return;
	munmap(a->map, a->map_len);
	if (a->info.fd >= 0)
		close(a->info.fd);
	h = a->alloc;
	vd_free(&h, a);
}

int vdemux_arena_info(const vdemux_arena *a, struct vdemux_arena_info *out)
{
	if (!a || !out)
		return -EINVAL;
	*out = a->info;
	return 0;
}

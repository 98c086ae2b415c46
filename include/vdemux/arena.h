/* SPDX-License-Identifier: MIT */
/**
 * @file arena.h
 * @brief Arenas: the host pages that libvdemux moves between VMs.
 *
 * An arena is one contiguous range of host pages. A heap arena serves the
 * simulated backend; a memfd arena is what real backends need, because any
 * of its pages can be mapped behind any guest-physical address of any VM
 * (KVM: mmap of the memfd over guest RAM; VFIO: the pages' host addresses
 * are pinned into the IOMMU).
 *
 * Part of an arena can be used as guest RAM by the VMM and the rest given
 * to an engine as its pool (see vdemux_engine_opts::first_page).
 *
 * Threading: an arena is immutable after creation; it may be used by any
 * number of engines and threads. It must outlive every engine using it.
 */
#ifndef VDEMUX_ARENA_H
#define VDEMUX_ARENA_H

#include <vdemux/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Opaque arena handle. */
typedef struct vdemux_arena vdemux_arena;

/** Kinds of arena. */
enum vdemux_arena_kind {
	VDEMUX_ARENA_HEAP = 0,	/**< anonymous private memory (simulated backend) */
	VDEMUX_ARENA_MEMFD = 1, /**< one memfd, mapped MAP_SHARED (real backends) */
};

/** Options for vdemux_arena_create(). */
struct vdemux_arena_opts {
	size_t sz;			 /**< sizeof(struct vdemux_arena_opts) */
	uint32_t npages;		 /**< number of 4 KiB pages; required, > 0 */
	enum vdemux_arena_kind kind;	 /**< heap (default) or memfd */
	uint32_t flags;			 /**< VDEMUX_ARENA_F_* */
	struct vdemux_alloc_hooks alloc; /**< control-path allocation hooks */
};

/**
 * Ask for 2 MiB alignment of the arena's mapping and advise huge pages for
 * it (madvise(MADV_HUGEPAGE)): the kernel then backs it with 2 MiB pages
 * where the host allows transparent huge pages, for a heap arena when
 * /sys/kernel/mm/transparent_hugepage/enabled is "madvise" or "always",
 * for a memfd arena when .../shmem_enabled is "advise" or "always" (its
 * default on Debian is "never"). Where the kernel has no transparent huge
 * pages the advice is refused and ignored: the arena works in 4 KiB pages.
 * A memfd arena's page of 2 MiB also backs another mapping of it (guest
 * RAM) by one 2 MiB entry where that mapping starts 2 MiB-aligned at a
 * 2 MiB-aligned offset (docs/backends-kvm.md, "Huge pages").
 */
#define VDEMUX_ARENA_F_ALIGN_2M 0x1u

/** What a backend needs to know of an arena. */
struct vdemux_arena_info {
	uint8_t *base;		     /**< host virtual address of page 0 */
	uint32_t npages;	     /**< pages in the arena */
	int fd;			     /**< the memfd, or -1 for a heap arena */
	enum vdemux_arena_kind kind; /**< which kind */
};

/**
 * Create an arena.
 *
 * @param[out] out  the new arena; set only on success
 * @param opts      options; NULL is invalid (npages is required)
 * @return 0 on success;
 *         -EINVAL: @p out or @p opts NULL, npages 0 or too large, unknown flags
 *                  or non-zero unknown trailing option bytes;
 *         -ENOMEM: the memory could not be reserved;
 *         any other negative errno from memfd_create(2), ftruncate(2) or mmap(2).
 *         On failure nothing is allocated.
 */
VDEMUX_API int vdemux_arena_create(vdemux_arena **out, const struct vdemux_arena_opts *opts);

/** Destroy an arena (NULL is a no-op). No engine may still use it. */
VDEMUX_API void vdemux_arena_destroy(vdemux_arena *arena);

/**
 * Describe an arena.
 * @param arena  the arena
 * @param[out] out filled on success
 * @return 0, or -EINVAL if an argument is NULL.
 */
VDEMUX_API int vdemux_arena_info(const vdemux_arena *arena, struct vdemux_arena_info *out);

#ifdef __cplusplus
}
#endif
#endif

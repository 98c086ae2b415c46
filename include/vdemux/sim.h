/* SPDX-License-Identifier: MIT */
/**
 * @file sim.h
 * @brief The simulated MMU backend: software page tables and IOTLB.
 *
 * Each VM gets a four-level table (9 bits per level, 4 KiB pages) mapping
 * GPA -> arena page, and a small simulated IOTLB that caches translations
 * and is invalidated once per map/unmap batch. Guests are simulated by the
 * access calls below, which translate through the table and fail on holes.
 * The cost model charges configurable nanoseconds per operation to a
 * counter (never sleeps), so that policies can be compared.
 *
 * Threading: not thread-safe (accesses update the simulated IOTLB): calls
 * on one simulated backend are serialised with each other and with the
 * calls of the engine it is registered with.
 */
#ifndef VDEMUX_SIM_H
#define VDEMUX_SIM_H

#include <vdemux/common.h>

#ifdef __cplusplus
extern "C" {
#endif

struct vdemux_backend;

/** Options for vdemux_sim_create(). */
struct vdemux_sim_opts {
	size_t sz;			 /**< sizeof(struct vdemux_sim_opts) */
	uint32_t iotlb_entries;		 /**< simulated IOTLB entries (power of 2); default 64 */
	uint32_t cost_map_ns;		 /**< model: cost per page mapped */
	uint32_t cost_unmap_ns;		 /**< model: cost per page unmapped */
	uint32_t cost_inval_ns;		 /**< model: cost per invalidation */
	uint32_t copy_threshold;	 /**< reported as the backend's copy threshold; default 256 */
	struct vdemux_alloc_hooks alloc; /**< allocation hooks */
};

/** Simulated MMU counters. */
struct vdemux_sim_stats {
	uint64_t maps;		/**< pages mapped */
	uint64_t unmaps;	/**< pages unmapped */
	uint64_t remaps;	/**< pages remapped */
	uint64_t batches;	/**< map/unmap/remap calls */
	uint64_t invalidations; /**< IOTLB invalidations (one per batch) */
	uint64_t iotlb_hits;	/**< translations served by the IOTLB */
	uint64_t iotlb_misses;	/**< translations that walked the table */
	uint64_t faults;	/**< accesses that hit a hole */
	uint64_t cost_ns;	/**< total modelled cost */
};

/**
 * Create a simulated backend, to register with vdemux_engine_add_backend()
 * (which takes ownership). One instance serves any number of VMs.
 * @return 0; -EINVAL (NULL out, bad option); -ENOMEM.
 */
VDEMUX_API int vdemux_sim_create(struct vdemux_backend **out, const struct vdemux_sim_opts *opts);

/**
 * Guest read: copy @p len bytes at @p gpa of VM @p vm into @p buf,
 * translating each page through the VM's table.
 * @return 0; -EFAULT (a page of the range is a hole; nothing copied);
 *         -ENOENT (the VM is not attached to this backend); -EINVAL.
 */
VDEMUX_API int vdemux_sim_read(struct vdemux_backend *sim, vdemux_vm_id vm, uint64_t gpa, void *buf,
			       size_t len);

/**
 * Guest write, as vdemux_sim_read().
 * @return 0; -EFAULT; -ENOENT; -EINVAL.
 */
VDEMUX_API int vdemux_sim_write(struct vdemux_backend *sim, vdemux_vm_id vm, uint64_t gpa,
				const void *buf, size_t len);

/**
 * Translate one GPA of a VM (as the simulated device would: through the IOTLB).
 * @param sim       the simulated backend
 * @param vm        the VM
 * @param gpa       the address
 * @param[out] page arena page index (VDEMUX_NO_PAGE for a hole)
 * @return 0; -ENOENT (VM not attached); -EINVAL.
 */
VDEMUX_API int vdemux_sim_translate(struct vdemux_backend *sim, vdemux_vm_id vm, uint64_t gpa,
				    uint32_t *page);

/** Read the counters. @return 0; -EINVAL. */
VDEMUX_API int vdemux_sim_stats(struct vdemux_backend *sim, struct vdemux_sim_stats *out, size_t size);

#ifdef __cplusplus
}
#endif
#endif

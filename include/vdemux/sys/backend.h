/* SPDX-License-Identifier: MIT */
/**
 * @file sys/backend.h
 * @brief The DMA-table backend interface, for backend authors.
 *
 * A backend keeps one kind of translation table of a VM (an IOMMU domain,
 * KVM's view of guest RAM, a simulated MMU) in step with the engine: it maps
 * arena pages at guest-physical addresses (GPAs) and unmaps them.
 *
 * Stability: less stable than the rest of the API. This interface is
 * versioned by VDEMUX_BACKEND_VERSION and may change between minor releases;
 * the engine refuses a backend whose @c version it does not know.
 * Applications that only use the backends shipped with the library do not
 * need this header, and vdemux.h does not include it.
 *
 * Writing a backend: embed struct vdemux_backend as the first member of your
 * own struct, start from VDEMUX_BACKEND_INIT, fill the operations, and let
 * the VMM register it with vdemux_engine_add_backend(). The engine calls the
 * operations from the thread that made the API call, never concurrently on
 * one engine.
 */
#ifndef VDEMUX_SYS_BACKEND_H
#define VDEMUX_SYS_BACKEND_H

#include <vdemux/arena.h>
#include <vdemux/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Version of struct vdemux_backend described by this header. */
#define VDEMUX_BACKEND_VERSION 2u

/** What a backend is told about a VM when it is attached. */
struct vdemux_backend_vm {
	vdemux_vm_id vm_id;		/**< the engine's id for the VM */
	uint64_t rx_base;		/**< GPA of the first page of the RX window */
	uint32_t rx_pages;		/**< pages in the RX window */
	struct vdemux_arena_info arena; /**< the arena all pages come from */
	uint32_t engine_first_page;	/**< first arena page the engine manages */
	uint32_t engine_npages;		/**< number of pages the engine manages */
};

/** One entry of a map or unmap batch. */
struct vdemux_map {
	uint64_t gpa;  /**< page-aligned GPA inside the VM's RX window */
	uint32_t page; /**< arena page index: the page to map, or (unmap) the page mapped there now */
	uint32_t pad;  /**< zero */
};

struct vdemux_backend;

/**
 * Signature shared by map, unmap and remap. Entries are applied in order;
 * the operation stops at the first failure.
 *
 * @param be     the backend
 * @param vmctx  what vm_attach returned for this VM
 * @param m      the batch (see each operation for what it means)
 * @param n      entries in @p m, >= 1
 * @param[out] done entries [0, *done) were applied; entries [*done, n) left
 *               unchanged (the backend guarantees it, rolling back itself
 *               if it has to)
 * @return 0 when all @p n were applied (*done == n), else a negative errno.
 *         The whole batch costs at most one invalidation (TLB/IOTLB flush).
 *         A positive return is taken as -EIO.
 */
typedef int (*vdemux_backend_batch_fn)(struct vdemux_backend *be, void *vmctx,
				       const struct vdemux_map *m, unsigned n, unsigned *done);

/**
 * A backend. Mandatory operations: vm_attach, vm_detach, map, unmap.
 * Optional: remap (NULL: the engine unmaps then maps), query, free.
 */
struct vdemux_backend {
	/** VDEMUX_BACKEND_VERSION; checked at registration. */
	unsigned int version;
	/** Short name for logs, e.g. "sim", "kvm", "vfio". */
	const char *name;
	/**
	 * Frames up to this many bytes are cheaper to copy into a mapped
	 * buffer than to flip on this backend (a measured figure); used by the
	 * engine's default copy policy. 0: always flip.
	 */
	uint32_t copy_threshold;
	/** Reserved, zero. */
	uint32_t flags;

	/**
	 * Start keeping the tables of a VM. The RX window holds no mapping of
	 * the engine's pages yet.
	 * @param[out] vmctx per-VM state handed back to every other operation
	 * @return 0 or a negative errno (the VM is then not added).
	 */
	int (*vm_attach)(struct vdemux_backend *be, const struct vdemux_backend_vm *vm, void **vmctx);
	/**
	 * Stop keeping a VM's tables. The engine unmapped every page before;
	 * if an unmap failed, the backend should still drop every mapping it
	 * has for the VM here. The engine cannot know it did: a page whose
	 * unmap failed is quarantined (never reused), see vdemux_vm_remove().
	 */
	void (*vm_detach)(struct vdemux_backend *be, void *vmctx);
	/** Map m[i].page at m[i].gpa; the GPA is a hole in this table. */
	vdemux_backend_batch_fn map;
	/**
	 * Unmap m[i].gpa (m[i].page is the page the engine believes is mapped
	 * there; after a failed rollback the table may hold less). Unmapping a
	 * GPA that holds nothing succeeds.
	 */
	vdemux_backend_batch_fn unmap;
	/**
	 * Replace the page mapped at m[i].gpa by m[i].page. The VM sees the
	 * old page, then the new one; a backend that cannot swap in place (an
	 * IOMMU) may leave a hole in between, where the VM's accesses fault.
	 * Never any other page. Optional: without it the engine unmaps, then
	 * maps. The engine uses remap only for a VM whose one and only table
	 * is this backend's: with stacked backends it unmaps in every table,
	 * then maps, so that no table ever holds the new page while another
	 * still holds the old one.
	 */
	vdemux_backend_batch_fn remap;
	/**
	 * Which arena page is mapped at @p gpa in this table
	 * (VDEMUX_NO_PAGE for a hole). Optional; used by vdemux_engine_check().
	 * @return 0, or a negative errno if the backend cannot tell.
	 */
	int (*query)(struct vdemux_backend *be, void *vmctx, uint64_t gpa, uint32_t *page);
	/** Release the backend; called by vdemux_engine_destroy(). Optional. */
	void (*free)(struct vdemux_backend *be);

	/**
	 * Where the backend logs. Set by vdemux_engine_add_backend() to the
	 * engine's log hook unless already set (a backend created with a hook
	 * of its own keeps it). NULL: silent.
	 */
	vdemux_log_fn log;
	/** Passed to @c log. */
	void *log_payload;
};

/** Initialiser for a struct vdemux_backend: version set, operations NULL. */
#define VDEMUX_BACKEND_INIT                       \
	{                                         \
		.version = VDEMUX_BACKEND_VERSION \
	}

#ifdef __cplusplus
}
#endif
#endif

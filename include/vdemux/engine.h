/* SPDX-License-Identifier: MIT */
/**
 * @file engine.h
 * @brief The engine: pool of pages, VMs, backends, classifier, counters.
 *
 * Threading: an engine is not thread-safe. Every call on one engine (burst,
 * VM and backend calls) must be serialised by the caller; different engines
 * are independent. The L2 classifier's configuration calls are the exception
 * (see l2.h). Engines that deliver to each other's VMs from several threads
 * are the shards of a group (see shard.h).
 */
#ifndef VDEMUX_ENGINE_H
#define VDEMUX_ENGINE_H

#include <vdemux/arena.h>
#include <vdemux/common.h>
#include <vdemux/l2.h>
#include <vdemux/offload.h>

#ifdef __cplusplus
extern "C" {
#endif

struct vdemux_backend;
struct vdemux_classifier;
struct vdemux_group;

/** Opaque engine handle. */
typedef struct vdemux_engine vdemux_engine;

/** When a posted buffer's page is taken from the VM (harvested). */
enum vdemux_harvest {
	VDEMUX_HARVEST_DEFAULT = 0, /**< VM: the engine's policy; engine: EAGER */
	VDEMUX_HARVEST_EAGER = 1, /**< at post time, in batches: the GPA is a hole until a frame fills it */
	VDEMUX_HARVEST_LAZY = 2, /**< when a frame arrives: one remap swaps the old page for the frame's */
};

/** Copy-versus-flip policy. */
enum vdemux_copy_policy {
	VDEMUX_COPY_DEFAULT = 0, /**< VM: the engine's; engine: ADAPTIVE, or THRESHOLD when copy_threshold is not 0 */
	VDEMUX_COPY_NEVER = 1,	   /**< always flip */
	VDEMUX_COPY_ALWAYS = 2,	   /**< copy whenever the posted buffer is still mapped */
	VDEMUX_COPY_THRESHOLD = 3, /**< copy frames of at most copy_threshold bytes */
	VDEMUX_COPY_ADAPTIVE = 4, /**< copy or flip each delivery by the costs the engine measures per VM (docs/architecture.md); frames from the caller's memory are copied whenever the buffer is still mapped */
};

/** Options for vdemux_engine_create(). */
struct vdemux_engine_opts {
	size_t sz;	     /**< sizeof(struct vdemux_engine_opts) */
	vdemux_arena *arena; /**< arena (borrowed); NULL: a heap arena of @c npages is made */
	uint32_t first_page; /**< first arena page the engine manages */
	uint32_t npages; /**< pages managed; 0: the arena's pages from first_page on (required without arena) */
	uint32_t max_frame; /**< longest frame accepted, bytes; default 65536; at most 65536 + 4 */
	uint32_t max_vms;   /**< VMs at once; default 64; at most 1048575 */
	enum vdemux_harvest harvest;  /**< default harvest policy (DEFAULT = EAGER) */
	enum vdemux_copy_policy copy; /**< default copy policy */
	uint32_t copy_threshold; /**< bytes, for VDEMUX_COPY_THRESHOLD; with DEFAULT: not 0 means THRESHOLD with it, 0 means ADAPTIVE */
	uint32_t low_watermark; /**< free pages below which VMs are asked to release (once per crossing: every VM holding pages gets VDEMUX_SIG_RELEASE at the end of the call that took the pool under it; re-armed when the pool is back at twice the mark or full); 0: never */
	vdemux_log_fn log;	/**< logging hook; NULL: silent */
	void *log_payload;	/**< passed to @c log */
	struct vdemux_alloc_hooks alloc; /**< control-path allocation hooks */
	/** The adaptive copy policy's clock (VDEMUX_COPY_ADAPTIVE: it times
	 *  copies, flips and table changes to choose between them), in
	 *  nanoseconds, never going back; called from inside engine calls, on
	 *  the thread making them. NULL: CLOCK_MONOTONIC. A VMM may give its
	 *  own (a calibrated TSC), a test a simulated one. */
	uint64_t (*clock)(void *payload);
	void *clock_payload; /**< passed to @c clock */
	struct vdemux_group *
		group; /**< NULL; or the group (shard.h) this engine is shard @c shard of: its pages, arena and built-in classifier are the group's (@c arena NULL, @c first_page and @c npages 0) and @c max_vms at most the group's VMs per shard */
	uint32_t shard; /**< with @c group: this shard's number, below the group's nshards, one engine each */
};

/**
 * Create an engine. All its pages start FREE (zeroed, mapped nowhere).
 *
 * @param[out] out the engine, set on success
 * @param opts     options (NULL is invalid: npages or arena is required)
 * With @c group set, the engine is a shard of that group (see shard.h):
 * it manages the group's pages, starting with its share of them FREE and
 * the others' AWAY (counted in vdemux_engine_stats::pages_away), uses the
 * group's L2 classifier as its built-in one, and names its VMs with ids no
 * other shard of the group gives.
 *
 * @return 0; -EINVAL (NULL argument, bad option, non-zero unknown trailing
 *         option bytes, pages outside the arena; with @c group: @c arena,
 *         @c first_page or @c npages set, @c shard not below the group's
 *         nshards, @c max_vms above the group's VMs per shard); -EBUSY
 *         (the group has an engine for @c shard already); -ENOMEM. On
 *         failure nothing is allocated.
 */
VDEMUX_API int vdemux_engine_create(vdemux_engine **out, const struct vdemux_engine_opts *opts);

/**
 * Destroy an engine: removes every VM (unmapping its pages from every
 * backend), frees the backends registered with it and the arena it made.
 * NULL is a no-op.
 */
VDEMUX_API void vdemux_engine_destroy(vdemux_engine *eng);

/**
 * Register a backend. The engine checks the version and the mandatory
 * operations once, here, and owns the backend from then on (it calls
 * @c free at destroy).
 * @return 0; -EINVAL (NULL, missing mandatory operation, non-zero flags);
 *         -EPROTO (unknown version); -EEXIST (already registered);
 *         -ENOMEM. On failure the caller keeps the backend. There is no
 *         limit on the number of backends (KVM and VFIO backends are one
 *         per VM); a VM uses at most 8.
 */
VDEMUX_API int vdemux_engine_add_backend(vdemux_engine *eng, struct vdemux_backend *be);

/**
 * Unregister a backend no VM uses any more, and free it (its @c free is
 * called), for example after removing the VM a per-VM backend served.
 * @return 0; -EINVAL (NULL); -ENOENT (not registered); -EBUSY (a VM still
 *         uses it; nothing changed).
 */
VDEMUX_API int vdemux_engine_remove_backend(vdemux_engine *eng, struct vdemux_backend *be);

/**
 * Install a classifier (borrowed: it must outlive its use), or NULL to go
 * back to the engine's built-in L2 classifier.
 * @return 0; -EINVAL (NULL engine, missing classify); -EPROTO (version).
 */
VDEMUX_API int vdemux_engine_set_classifier(vdemux_engine *eng, struct vdemux_classifier *cls);

/** The engine's built-in L2 classifier (configure it with l2.h). */
VDEMUX_API vdemux_l2 *vdemux_engine_l2(vdemux_engine *eng);

/** Counters for bad input (vdemux_engine_stats::bad_input). */
enum vdemux_bad_input {
	VDEMUX_BAD_NULL = 0,   /**< NULL where a pointer is required */
	VDEMUX_BAD_VM_ID,      /**< unknown VM id */
	VDEMUX_BAD_GPA_RANGE,  /**< GPA outside the VM's RX window */
	VDEMUX_BAD_GPA_ALIGN,  /**< GPA not page-aligned */
	VDEMUX_BAD_POST_TWICE, /**< GPA already posted */
	VDEMUX_BAD_NOT_HELD,   /**< release of a page the VM does not hold */
	VDEMUX_BAD_FRAME_LEN,  /**< frame of 0 bytes, shorter than 14 or longer than max_frame */
	VDEMUX_BAD_BURST_ZERO, /**< burst of 0 elements */
	VDEMUX_BAD_BACKEND, /**< backend or classifier refused: unknown version, missing operation, registered twice, unknown or in use at removal */
	VDEMUX_BAD_OPTS,    /**< bad options struct */
	VDEMUX_BAD_RX_BUF,  /**< zero-copy buffer the engine did not hand out */
	VDEMUX_BAD__COUNT
};

/** Engine counters; all monotonic except the page gauges. */
struct vdemux_engine_stats {
	uint64_t pages_total;	    /**< pages the engine manages */
	uint64_t pages_free;	    /**< gauge: FREE */
	uint64_t pages_filling;	    /**< gauge: FILLING */
	uint64_t pages_assigned;    /**< gauge: ASSIGNED */
	uint64_t rx_frames;	    /**< frames taken by rx calls */
	uint64_t rx_bytes;	    /**< their bytes */
	uint64_t delivered;	    /**< (frame, VM) deliveries */
	uint64_t flips;		    /**< pages mapped into a VM carrying a frame */
	uint64_t copies;	    /**< frame pages copied into a mapped buffer */
	uint64_t harvests;	    /**< pages taken from VMs into the pool */
	uint64_t completions;	    /**< completions queued */
	uint64_t signals;	    /**< signals raised */
	uint64_t release_requests;  /**< release requests signalled */
	uint64_t backend_errors;    /**< failed backend operations */
	uint64_t rollback_failures; /**< rollbacks that failed (page kept by its VM; or, where an old page could not be mapped back after a failed flip, a hole left in its VM) */
	uint64_t drops[VDEMUX_DROP__COUNT];    /**< (frame, VM) drops by enum vdemux_drop_reason */
	uint64_t bad_input[VDEMUX_BAD__COUNT]; /**< rejected calls by enum vdemux_bad_input */
	uint64_t pages_quarantined; /**< gauge: pages a removed VM's table failed to unmap; never reused */
	uint64_t fallback_copies; /**< frame pages copied into a still-mapped buffer because a backend refused the flip for lack of resources (-ENOMEM, -ENOSPC); also counted in @c copies */
	uint64_t adaptive_probes; /**< deliveries the adaptive policy made the other way to measure it (its trials), and each VM's first zero-copy delivery (flipped to set its tables up) */
	uint64_t multi_page_flips; /**< deliveries of several pages, every page flipped */
	uint64_t multi_page_one_run; /**< ... whose pages were consecutive, at consecutive GPAs: one table update each */
	uint64_t offload_passed; /**< deliveries whose header carried the frame's offload metadata (NEEDS_CSUM or GSO) to a destination that accepts it */
	uint64_t offload_csums; /**< deliveries whose checksum the engine finished (a destination without checksum offload) */
	uint64_t offload_segmented; /**< (frame, destination) pairs cut into segments */
	uint64_t offload_segments;  /**< the segments cut (each a delivery, copied) */
	uint64_t offload_bad[8]; /**< frames (or, for UFO, deliveries) refused for their metadata, by enum vdemux_offload_bad */
	uint64_t pages_away; /**< gauge: a shard's pages that other shards of its group hold (shard.h); 0 for an engine alone. pages_free + pages_filling + pages_assigned + pages_quarantined + pages_away = pages_total */
	uint64_t handoff_out; /**< deliveries handed to another shard's queue (each a copy of the frame) */
	uint64_t handoff_in;   /**< deliveries taken from other shards' queues by vdemux_shard_poll() */
	uint64_t handoff_full; /**< deliveries to another shard's VM dropped because its queue was full (zero-copy frames: vdemux_rx_submit(); vdemux_rx_burst() stops instead) */
};

/**
 * Read the engine counters.
 * @param eng       the engine
 * @param[out] out  filled with min(@p size, sizeof) bytes
 * @param size      sizeof(*out) as compiled by the caller
 * @return 0; -EINVAL (NULL).
 */
VDEMUX_API int vdemux_engine_stats(const vdemux_engine *eng, struct vdemux_engine_stats *out,
				   size_t size);

/**
 * Walk every page and VM and check the invariants: each page in exactly one
 * state, FREE pages zeroed, FILLING pages lent to a device (no other is left
 * between calls), each ASSIGNED page at exactly one GPA of one VM (and, for
 * backends with a query operation, mapped there and nowhere else in the
 * window), FREE + FILLING + ASSIGNED + quarantined (+ AWAY, for a shard:
 * pages other shards of its group hold, whose bytes it does not read) =
 * pages managed, no VM above its quota, and no hole in a virtio-net
 * queue's guest RAM (every GPA of a vdemux_vnet_rxq's VM holds a page: a
 * hole there is a page the guest lost, left by a rollback that failed).
 * That a page AWAY here is held by exactly one other shard or queue is
 * vdemux_group_check()'s to see. Costs O(pages * page size); for tests and
 * debugging. On a shard, only while no shard of its group runs a call.
 *
 * @param eng       the engine
 * @param[out] msg  if not NULL, a description of the first violation
 * @param msglen    size of @p msg
 * @return 0 if consistent; -EUCLEAN on a violation; -EINVAL (NULL engine).
 */
VDEMUX_API int vdemux_engine_check(const vdemux_engine *eng, char *msg, size_t msglen);

/** Short name of a bad-input counter ("vm-id", ...), or "unknown". */
VDEMUX_API const char *vdemux_bad_input_name(int which);

#ifdef __cplusplus
}
#endif
#endif

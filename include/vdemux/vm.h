/* SPDX-License-Identifier: MIT */
/**
 * @file vm.h
 * @brief VMs: RX windows, posting and releasing buffers, completions.
 *
 * A VM has an RX window: @c rx_pages consecutive guest-physical pages from
 * @c rx_base. Each page of the window (a "slot") is at any time:
 * - held by the VM (a page of the engine is mapped there), not posted;
 * - a hole (nothing mapped; after a release), not posted;
 * - posted: offered for a frame, still mapped (lazy harvest) or a hole
 *   (eager harvest);
 * - filled: holds a delivered frame, reported by a completion; the VM holds it.
 *
 * Posting a slot that holds a page gives the page back (it is harvested:
 * unmapped from every backend of the VM, cleared, returned to the pool) at
 * post time (eager) or when a frame is put there (lazy). Re-posting a filled
 * slot is therefore how a VM releases a delivered page and offers the
 * buffer again in one step; vdemux_vm_release() gives a page back without
 * re-posting.
 *
 * Threading: see engine.h (calls on one engine are serialised).
 */
#ifndef VDEMUX_VM_H
#define VDEMUX_VM_H

#include <vdemux/common.h>
#include <vdemux/engine.h>
#include <vdemux/signal.h>

#ifdef __cplusplus
extern "C" {
#endif

struct vdemux_backend;

/** Options for vdemux_vm_add(). */
struct vdemux_vm_opts {
	size_t sz;	  /**< sizeof(struct vdemux_vm_opts) */
	uint64_t rx_base; /**< page-aligned GPA of the RX window; the window ends below 2^64 (rx_base + rx_pages * 4096 < 2^64: its end address is a GPA too) */
	uint32_t rx_pages;			/**< pages in the RX window, 1 .. 2^28 */
	uint32_t quota;				/**< most pages the VM may hold; 0: rx_pages */
	uint32_t flags;				/**< VDEMUX_VM_F_* */
	enum vdemux_harvest harvest;		/**< DEFAULT: the engine's */
	enum vdemux_copy_policy copy;		/**< DEFAULT: the engine's */
	uint32_t copy_threshold;		/**< bytes, with VDEMUX_COPY_THRESHOLD */
	struct vdemux_backend *const *backends; /**< registered backends keeping this VM's tables */
	unsigned n_backends;			/**< entries in @c backends, 1..8 */
	struct vdemux_signal signal;		/**< how the VM is signalled */
	uint32_t offloads; /**< VDEMUX_OFFLOAD_* the VM accepts (offload.h); 0: none, every frame arrives complete (checksums finished, GSO frames segmented); not 0 needs @c vnet_hdr_len */
	uint32_t vnet_hdr_len; /**< 0: frames as they are; 10 or 12: each frame is delivered after a virtio-net header of that many bytes (struct vdemux_vnet_hdr, little-endian; 12: then num_buffers, the frame's completions), counted in the completions' lengths */
};

/**
 * Start the RX window with holes instead of backing every slot with a
 * zeroed page from the pool.
 */
#define VDEMUX_VM_F_UNPOPULATED 0x1u

/**
 * Add a VM. Unless VDEMUX_VM_F_UNPOPULATED, every slot of the RX window is
 * backed by a zeroed pool page, mapped in every backend (in one batch).
 *
 * @param eng        the engine
 * @param[out] out_id the VM's id (never 0), set on success
 * @param opts       the VM's options (required: rx_pages, backends)
 * @return 0; -EINVAL (NULL, bad option, backend not registered, window not
 *         page-aligned, quota below a populated window, trailing option
 *         bytes, an unknown offload, offloads without a header, a header
 *         length other than 0, 10, 12); -ENOSPC (max_vms reached); -ENOBUFS (the pool has fewer
 *         free pages than the window needs); -ENOMEM (an allocation
 *         failed); a backend's negative errno from vm_attach or map. When
 *         several apply, the first in this order is returned: -EINVAL,
 *         -ENOSPC, -ENOBUFS, -ENOMEM, the backend's. On failure nothing
 *         changed (the bad-input counters excepted).
 *
 * A signal may be sent from inside this call (a release request, when
 * populating the window takes the pool under the low watermark): it can name
 * the new VM's id before the caller has received it.
 */
VDEMUX_API int vdemux_vm_add(vdemux_engine *eng, vdemux_vm_id *out_id, const struct vdemux_vm_opts *opts);

/**
 * Remove a VM: every page it holds or that is mapped in its window is
 * unmapped from its backends, cleared and returned to the pool; its
 * completions are discarded; the classifier forgets it.
 * @return 0; -EINVAL (NULL engine); -ENOENT (unknown id). A page that a
 *         backend failed to unmap is not returned to the pool (the removed
 *         VM's device or vCPUs might still reach it): it is quarantined,
 *         counted in vdemux_engine_stats::pages_quarantined and
 *         backend_errors, and never reused by this engine.
 */
VDEMUX_API int vdemux_vm_remove(vdemux_engine *eng, vdemux_vm_id vm);

/**
 * Post RX buffers (burst). Each GPA must be a page of the VM's window that
 * is not already posted; a slot holding a page (held, or filled: a
 * release) gives it back according to the harvest policy.
 *
 * Validation is all-or-nothing: any bad GPA and nothing is posted. The
 * checks run in this order and the first that fails gives the error: the
 * engine (-EINVAL), the array and @p n (-EINVAL), the VM (-ENOENT), then
 * each GPA in order: alignment (-EINVAL), window (-ERANGE), already posted
 * or repeated (-EALREADY).
 *
 * @param eng   the engine
 * @param vm    the VM
 * @param gpas  @p n page-aligned GPAs, no duplicates
 * @param n     number of GPAs, >= 1
 * @return the number of GPAs posted, which are gpas[0, ret): @p n, or fewer
 *         if a backend failed part-way (the rest are left as they were; the
 *         failure is counted in backend_errors);
 *         -EINVAL (NULL, n == 0, GPA not aligned); -ENOENT (unknown VM);
 *         -ERANGE (GPA outside the window); -EALREADY (GPA already posted,
 *         or twice in @p gpas); a backend's negative errno if the first GPA
 *         failed. Errors change nothing.
 */
VDEMUX_API int vdemux_vm_post_rx(vdemux_engine *eng, vdemux_vm_id vm, const uint64_t *gpas, unsigned n);

/**
 * Give back pages the VM holds (held or filled slots) without posting: the
 * slots become holes, the pages are unmapped, cleared and returned to the
 * pool. All-or-nothing validation, as vdemux_vm_post_rx().
 * @return number released, gpas[0, ret): @p n, or fewer if a backend
 *         failed part-way (the rest are left as they were); -EINVAL (NULL,
 *         n == 0, GPA not aligned); -ENOENT (unknown VM); -ERANGE (GPA
 *         outside the window); -EPERM (a GPA holds no page of the VM: a hole,
 *         or posted; or twice in @p gpas); a backend's negative errno if the
 *         first GPA failed. Errors change nothing.
 */
VDEMUX_API int vdemux_vm_release(vdemux_engine *eng, vdemux_vm_id vm, const uint64_t *gpas, unsigned n);

/** Completion flags. */
#define VDEMUX_CPL_MORE 0x1u   /**< the frame continues in the next completion */
#define VDEMUX_CPL_COPIED 0x2u /**< the frame was copied into the VM's own page */

/** A completion: a frame (or one page of it) delivered at a GPA. */
struct vdemux_completion {
	uint64_t gpa;	/**< the posted buffer */
	uint32_t len;	/**< bytes of the frame in this buffer, from offset 0 */
	uint16_t flags; /**< VDEMUX_CPL_* */
	uint16_t pad;	/**< zero */
};

/**
 * Take up to @p n completions of a VM, oldest first. A VM's queue holds
 * 2 x rx_pages completions; a delivery that would overflow it is dropped
 * (VDEMUX_DROP_CQ_FULL).
 * @return the number written to out[0, ret) (0: none, or @p n == 0);
 *         -EINVAL (NULL engine or @p out); -ENOENT (unknown VM). Errors take
 *         nothing from the queue.
 */
VDEMUX_API int vdemux_vm_poll(vdemux_engine *eng, vdemux_vm_id vm, struct vdemux_completion *out,
			      unsigned n);

/**
 * Read and clear the VM's pending signal reasons (VDEMUX_SIG_*), accumulated
 * whatever the kind of signal (none, callback or eventfd): useful with
 * eventfd signalling, where the fd carries no reason.
 * @return the reasons (>= 0); -EINVAL; -ENOENT.
 */
VDEMUX_API int vdemux_vm_take_signals(vdemux_engine *eng, vdemux_vm_id vm);

/**
 * Ask a VM to release pages now (signal VDEMUX_SIG_RELEASE).
 * @return 0; -ENOENT; -EINVAL.
 */
VDEMUX_API int vdemux_vm_request_release(vdemux_engine *eng, vdemux_vm_id vm);

/** Per-VM counters and gauges. */
struct vdemux_vm_stats {
	uint64_t held;			    /**< gauge: pages the VM holds (mapped in its window) */
	uint64_t posted;		    /**< gauge: posted slots */
	uint64_t pending;		    /**< gauge: completions not yet polled */
	uint64_t delivered;		    /**< frames delivered */
	uint64_t bytes;			    /**< their bytes */
	uint64_t flips;			    /**< pages flipped in */
	uint64_t copies;		    /**< pages copied in */
	uint64_t harvests;		    /**< pages taken back */
	uint64_t drops[VDEMUX_DROP__COUNT]; /**< frames for this VM dropped, by reason */
	uint64_t signals;		    /**< signals raised */
	uint64_t fallback_copies; /**< pages copied because a backend refused the flip for lack of resources; also in @c copies */
};

/**
 * Read a VM's counters.
 * @param eng       the engine
 * @param vm        the VM
 * @param[out] out  filled with min(@p size, sizeof) bytes
 * @param size sizeof(*out) as compiled by the caller
 * @return 0; -EINVAL; -ENOENT.
 */
VDEMUX_API int vdemux_vm_stats(const vdemux_engine *eng, vdemux_vm_id vm, struct vdemux_vm_stats *out,
			       size_t size);

#ifdef __cplusplus
}
#endif
#endif

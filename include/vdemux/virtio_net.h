/* SPDX-License-Identifier: MIT */
/**
 * @file virtio_net.h
 * @brief virtio-net receive queues served by the engine.
 *
 * A VMM with its own virtio transport (PCI or MMIO, legacy or modern: its
 * configuration space, its feature negotiation) hands the engine a guest's
 * receive queue; the engine takes the guest's buffers from the queue,
 * delivers frames into them, writes the virtio-net header, fills the used
 * ring and interrupts the guest. See docs/virtio-net.md.
 *
 * One queue is one VM of the engine, created here: its RX window is the
 * whole of guest RAM (Linux posts pages from anywhere), its harvest is lazy
 * (a flipped page replaces the page that backed the buffer, which goes to
 * the pool cleared: the guest's memory neither shrinks nor grows), and its
 * buffers are taken from the ring, never posted with vdemux_vm_post_rx().
 * Name the VM in the classifier (vdemux_vnet_rxq_vm()) as any other.
 *
 * How each buffer is filled depends on the layout the guest's driver chose
 * (Linux's drivers/net/virtio_net.c posts one of three):
 * - big packets (no VIRTIO_NET_F_MRG_RXBUF, and guest TSO or a large MTU):
 *   a chain whose first two descriptors share a page (the header at offset
 *   0, the data from a small offset, taken from the descriptors), then
 *   whole pages. Its pages are flipped: the frame is laid out in pool pages
 *   exactly as the chain expects and those pages are mapped at the chain's
 *   GPAs (or the frame is copied into them, as the VM's copy policy says).
 * - mergeable (VIRTIO_NET_F_MRG_RXBUF): buffers carved from larger pages; a
 *   frame spans num_buffers of them. Copied.
 * - small: one buffer per frame. Copied.
 *
 * A frame longer than the buffer it would go to (a small buffer: the header
 * and 1518 bytes; a big-packet chain) is dropped, counted in its VM's
 * drops[VDEMUX_DROP_TOO_BIG]; the buffer stays for the next frame. A frame
 * longer than all the mergeable buffers waiting together, or with no
 * buffer at all, is dropped as VDEMUX_DROP_NO_BUFFER (more may come).
 *
 * Guest memory: the VMM's own mapping of guest RAM (@c ram) is where the
 * rings are read and headers and copies written, so it must show what the
 * guest sees: one of the VM's backends keeps it in step with the flips (the
 * KVM backend over that same region does). Everything in guest memory is
 * untrusted: a malformed buffer is given back unused (used length 0, which
 * Linux counts as a length error and recycles), and a ring that cannot be
 * trusted any more stops the queue (vdemux_vnet_rxq_needs_reset(): the VMM
 * sets DEVICE_NEEDS_RESET). Never a write outside guest RAM or over the
 * rings.
 *
 * A buffer given back unused (used length 0: malformed, or its delivery
 * failed) holds what the guest left in it: no byte of the frame, nor of any
 * other, is written there (a failed flip is undone, the old pages mapped
 * back; a copy is made only where the delivery cannot fail any more). The
 * one exception follows a rollback that failed (the engine's
 * rollback_failures; vdemux_engine_check() reports the hole it left in
 * guest RAM): a frame into a chain over that hole may fail with some of its
 * bytes copied into the chain's other pages already: bytes of a frame meant
 * for this guest, never of another VM's, nor of a pool page's earlier use.
 *
 * Threading: every call on a queue is a call on its engine (serialised with
 * the engine's other calls). The guest's interrupt is sent from inside
 * engine calls: vdemux_rx_burst(), vdemux_rx_submit() and
 * vdemux_vnet_rxq_kick().
 *
 * Interrupting the guest (@c irq): at most once per engine call, after the
 * used ring's new entries are visible (used->idx stored), and only when the
 * guest asks for it (used_event with VIRTIO_RING_F_EVENT_IDX, else
 * VRING_AVAIL_F_NO_INTERRUPT). Two ways to wire it:
 * - VDEMUX_SIGNAL_EVENTFD: the library writes 1 to @c fd, a KVM irqfd (an
 *   MSI-X vector's, or a line's). Right for a device whose interrupt needs
 *   nothing of the device: MSI-X, or virtio-mmio with an interrupt status
 *   the VMM sets otherwise.
 * - VDEMUX_SIGNAL_CALLBACK: the library calls @c cb(vm, VDEMUX_SIG_RX,
 *   payload) and the VMM's device raises the interrupt itself. Needed where
 *   the interrupt carries device state: a legacy or INTx virtio-pci device
 *   sets the queue bit (0x1) of its ISR status, then raises its line; the
 *   guest's handler reads the ISR (which clears it) and looks at its queues
 *   only if the bit is set. The callback runs on the thread of the engine
 *   call, possibly while the VMM holds its own locks around that call (a
 *   kick from the device's notify handler): keep it short and lock-free
 *   (an atomic OR into the ISR, then the irqfd write), and call nothing of
 *   the engine or the queue from it.
 *
 * Stability: part of the public API.
 */
#ifndef VDEMUX_VIRTIO_NET_H
#define VDEMUX_VIRTIO_NET_H

#include <vdemux/common.h>
#include <vdemux/engine.h>
#include <vdemux/signal.h>

#ifdef __cplusplus
extern "C" {
#endif

struct vdemux_backend;

/** A virtio-net receive queue. */
typedef struct vdemux_vnet_rxq vdemux_vnet_rxq;

/** Options for vdemux_vnet_rxq_create(). */
struct vdemux_vnet_rxq_opts {
	size_t sz;	   /**< sizeof(struct vdemux_vnet_rxq_opts) */
	void *ram;	   /**< the VMM's mapping of guest RAM, GPA 0 on; page-aligned */
	uint64_t ram_size; /**< bytes of guest RAM: a non-zero multiple of the page size */
	struct vdemux_backend *const *backends; /**< registered backends keeping the VM's tables */
	unsigned n_backends;			/**< entries in @c backends, 1..8 */
	struct vdemux_signal
		irq; /**< how the guest is interrupted: EVENTFD (a KVM irqfd) or CALLBACK (the VMM's device raises it; see the top of this file); NONE: never */
	enum vdemux_copy_policy copy; /**< copy or flip into big-packet buffers; DEFAULT: the engine's */
	uint32_t copy_threshold;      /**< bytes, with VDEMUX_COPY_THRESHOLD */
	/** Another receive queue of the same guest (VIRTIO_NET_F_MQ), over the
	 *  same RAM, that owns guest RAM (not itself sharing); NULL: this
	 *  queue owns it. A sharing queue's VM holds no page (guest RAM stays
	 *  the owner's, the pool needs nothing more) and maps none (@c backends
	 *  are not used: it registers a simulated backend of its own on the
	 *  engine, removed with it), and every frame is copied into its
	 *  buffers (@c copy must be DEFAULT or ALWAYS). The owner is on the
	 *  same engine (whose calls are serialised: no copy runs while the
	 *  owner flips), or on another shard of the same group if the owner
	 *  was created with @c copy VDEMUX_COPY_ALWAYS: then no queue of the
	 *  guest ever flips, so guest RAM is never remapped while another
	 *  thread copies into it (docs/architecture.md, Threading, rule 7).
	 *  Such a queue never reads the owner at run time (it is another
	 *  thread's): guest RAM, which an owner that never flips keeps backed,
	 *  is taken as backed. Destroy a sharing queue before its owner; on
	 *  the same engine, once the owner is gone the sharing queue's buffers
	 *  are given back unused (used length 0, counted skipped); on another
	 *  shard, destroy the sharing queues, then the owner, while no thread
	 *  runs a call on either shard (shard.h: with the threads stopped),
	 *  as the sharing queue goes on copying into guest RAM as long as it
	 *  lives. */
	const vdemux_vnet_rxq *ram_of;
};

/**
 * Create a receive queue: add its VM to the engine, every page of guest RAM
 * backed by a pool page (so the pool needs ram_size / page size free pages),
 * or, with @c ram_of, none (the owner's pages back it).
 * No ring yet: vdemux_vnet_rxq_start() gives it.
 *
 * Threading: a call on @p eng. With @c ram_of on another shard, it reads
 * only what the owner fixed at its creation, so the owner's shard may be
 * running meanwhile.
 *
 * @param[out] out the queue, set on success
 * @param eng      the engine
 * @param opts     options (required: ram, ram_size, backends)
 * @return 0; -EINVAL (NULL, bad option, @c ram_of over other RAM, itself
 *         sharing, on another engine that is not a shard of @p eng's
 *         group (a lone engine, another group), on another shard while
 *         it was not created with @c copy VDEMUX_COPY_ALWAYS, or this
 *         queue's @c copy other than DEFAULT or ALWAYS); what vdemux_vm_add() returns
 *         (-ENOBUFS: the pool is too small for guest RAM; -ENOSPC; a
 *         backend's error); -ENOMEM. On failure nothing changed.
 */
VDEMUX_API int vdemux_vnet_rxq_create(vdemux_vnet_rxq **out, vdemux_engine *eng,
				      const struct vdemux_vnet_rxq_opts *opts);

/**
 * Remove the queue's VM (its pages go back to the pool) and free it. Call it
 * before vdemux_engine_destroy() of its engine. NULL: nothing.
 */
VDEMUX_API void vdemux_vnet_rxq_destroy(vdemux_vnet_rxq *q);

/** The engine's id for the queue's VM (for the classifier and the stats), or 0 for NULL. */
VDEMUX_API vdemux_vm_id vdemux_vnet_rxq_vm(const vdemux_vnet_rxq *q);

/** Where the guest put the ring, and what was negotiated. */
struct vdemux_vnet_ring {
	size_t sz;	    /**< sizeof(struct vdemux_vnet_ring) */
	uint64_t desc_gpa;  /**< descriptor table, 16-byte aligned */
	uint64_t avail_gpa; /**< available ring, 2-byte aligned */
	uint64_t used_gpa; /**< used ring, 4-byte aligned, wherever the transport puts it (legacy: the VMM computes it from the queue's address: the next 4096 boundary after avail for legacy PCI, the next QueueAlign boundary for legacy MMIO; the queue checks only the alignment of 4) */
	uint32_t size;	   /**< entries: a power of two, 1..32768 */
	uint64_t features; /**< the negotiated feature bits (VIRTIO_F_VERSION_1, VIRTIO_NET_F_MRG_RXBUF, VIRTIO_RING_F_EVENT_IDX, VIRTIO_RING_F_INDIRECT_DESC, ...) */
};

/**
 * Start serving the ring (the guest set DRIVER_OK, or enabled the queue).
 * @return 0; -EINVAL (NULL, misplaced or misaligned rings, bad size,
 *         rings outside guest RAM or overlapping); -EBUSY (started
 *         already: stop first); -ENOMEM.
 */
VDEMUX_API int vdemux_vnet_rxq_start(vdemux_vnet_rxq *q, const struct vdemux_vnet_ring *ring);

/**
 * Stop serving the ring (device reset): buffers taken from it and not yet
 * filled are forgotten (their pages stay the guest's), completions not yet
 * returned are dropped. @return 0; -EINVAL (NULL).
 */
VDEMUX_API int vdemux_vnet_rxq_stop(vdemux_vnet_rxq *q);

/**
 * The guest notified the queue: take the buffers it made available, every
 * one (the queue has room for every head of the ring; what it keeps of the
 * chains that wait for a copy grows as needed, up to 64 segments a head:
 * 1 KiB of memory a head at most. Only if that memory cannot be allocated
 * are the rest left in the ring, taken at the end of the next engine call
 * that completes a frame). Call it from the VMM's handler of the queue's
 * notification (an ioeventfd, or the trapped write).
 * @return the number of buffers taken (0 if none; malformed chains, given
 *         back unused, included: what @c buffers of the stats counts); -ENOTCONN (not
 *         started); -EIO (the ring is broken, now or before:
 *         vdemux_vnet_rxq_needs_reset(); nothing was written to the used
 *         ring after it was found broken).
 */
VDEMUX_API int vdemux_vnet_rxq_kick(vdemux_vnet_rxq *q);

/**
 * Whether the guest broke the ring (an available index that jumped by more
 * than the ring, a head out of range or given twice): the queue serves it no
 * more, and the VMM should set DEVICE_NEEDS_RESET and notify a
 * configuration change. From the moment the queue finds the ring broken
 * (in a kick, or when it takes buffers at the end of an engine call) until
 * vdemux_vnet_rxq_stop(): it writes nothing more to the used ring (no entry,
 * no index, no avail_event) and sends no interrupt; the buffers it had taken
 * are forgotten (their pages stay the guest's, as on stop; used entries
 * pushed but not yet published stay unpublished); frames for it are
 * dropped and counted in its VM's drops[VDEMUX_DROP_NO_BUFFER].
 * @return 1 or 0; -EINVAL (NULL).
 */
VDEMUX_API int vdemux_vnet_rxq_needs_reset(const vdemux_vnet_rxq *q);

/**
 * Counters of a queue, from its creation (vdemux_vnet_rxq_stop() and a new
 * start do not reset them). Every chain the queue takes from the available
 * ring counts once in @c buffers; a malformed one is given back at once
 * with used length 0 and counts in @c skipped and @c ring_errors too.
 */
struct vdemux_vnet_rxq_stats {
	uint64_t buffers; /**< chains taken from the available ring (each head once, malformed ones included; a head offered twice is not taken again) */
	uint64_t page_buffers; /**< of which big-packet chains posted to the engine, whose pages it may flip */
	uint64_t frames;       /**< frames completed to the guest */
	uint64_t flipped; /**< of which at least one page was flipped */
	uint64_t copied;  /**< of which every byte was copied */
	uint64_t skipped; /**< of @c buffers, given back unused (used length 0) without a delivery being tried: malformed (the ring's checks, src/virtio/vring.h), unusable (too short for the virtio-net header, or over a page of guest RAM a failed rollback left unmapped, when taken or when a copy would fill it, then with the waiting buffers before it that copy would have taken) */
	uint64_t failed; /**< of @c buffers, given back unused (used length 0) because the delivery into them failed (a backend error) */
	uint64_t interrupts;   /**< interrupts sent */
	uint64_t no_interrupt; /**< publishes the guest asked not to be interrupted for */
	uint64_t ring_errors; /**< problems the ring's checks found: each malformed chain (also in @c skipped) and the error that broke the ring (vdemux_vnet_rxq_needs_reset()) */
};

/**
 * Read the queue's counters.
 * @param q         the queue
 * @param[out] out  filled with min(@p size, sizeof) bytes
 * @param size      sizeof(*out) as compiled by the caller
 * @return 0; -EINVAL (NULL).
 */
VDEMUX_API int vdemux_vnet_rxq_stats(const vdemux_vnet_rxq *q, struct vdemux_vnet_rxq_stats *out,
				     size_t size);

#ifdef __cplusplus
}
#endif
#endif

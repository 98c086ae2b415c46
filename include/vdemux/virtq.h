/* SPDX-License-Identifier: MIT */
/**
 * @file virtq.h
 * @brief The device side of a VIRTIO split virtqueue, over guest RAM the
 *        VMM maps, for queues the VMM serves itself (a transmit queue, a
 *        control queue).
 *
 * This is the ring walker the library's virtio-net receive queues use
 * (virtio_net.h), with the same checks: everything in guest memory is
 * untrusted and may change under the device at any moment.
 * - Every index and descriptor is read once, into a copy that is checked
 *   and used; every guest address is bounds-checked against guest RAM
 *   (overflow-safe) before it becomes a host pointer; every walk is bounded.
 * - A chain the guest got wrong (a buffer outside guest RAM or over a ring,
 *   a loop, a next index out of its table, a zero length, readable after
 *   writable, a chain longer than the queue, a bad indirect table, an
 *   indirect descriptor without VIRTIO_RING_F_INDIRECT_DESC) is skipped: it
 *   is taken from the available ring, counted (by kind, #vdemux_virtq_err),
 *   and given back with used length 0 at the next publish. Pop goes on to
 *   the next chain.
 * - A ring that cannot be trusted any more (the available index moved by
 *   more than the queue size, a head out of range, a head offered again
 *   while in flight) breaks the queue: vdemux_virtq_pop() returns -EIO from
 *   then on, vdemux_virtq_needs_reset() says 1, and the VMM sets
 *   DEVICE_NEEDS_RESET (or, legacy, stops serving the queue) until the
 *   driver resets the device (vdemux_virtq_reset()).
 * - The device writes guest memory only in the used ring (entries, index,
 *   flags) and avail_event. What the caller writes through a chain's
 *   writable iovecs is its business; those iovecs were checked.
 *
 * Memory barriers: those the split ring needs against the driver running on
 * other CPUs (acquire on the available index, release on the used index,
 * full barriers where a store is followed by a load of the driver's
 * suppression fields).
 *
 * Threading: one thread per queue at a time; different queues are
 * independent. The guest's vCPUs run concurrently, which is what the
 * barriers are for. No call blocks, allocates after create, or interrupts
 * the guest: vdemux_virtq_publish() says whether to.
 *
 * Typical transmit loop:
 * @code
 * struct vdemux_virtq_chain c;
 * struct iovec iov[64];
 * for (;;) {
 *         while (vdemux_virtq_pop(q, &c, iov, 64) == 1) {
 *                 // iov[0, c.n_read): the driver's bytes
 *                 send_frame(iov, c.n_read);
 *                 vdemux_virtq_push(q, c.head, 0);
 *         }
 *         if (vdemux_virtq_publish(q, NULL) == 1)
 *                 interrupt_the_guest();
 *         if (vdemux_virtq_enable_kick(q, true) != 1)
 *                 break; // nothing came meanwhile: wait for the kick
 * }
 * if (vdemux_virtq_needs_reset(q) == 1)
 *         ; // set DEVICE_NEEDS_RESET
 * @endcode
 *
 * Stability: part of the public API.
 */
#ifndef VDEMUX_VIRTQ_H
#define VDEMUX_VIRTQ_H

#include <stdbool.h>
#include <sys/uio.h>

#include <vdemux/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/** VIRTIO_RING_F_INDIRECT_DESC, as a mask of the negotiated features. */
#define VDEMUX_VIRTQ_F_INDIRECT_DESC (1ull << 28)
/** VIRTIO_RING_F_EVENT_IDX, as a mask of the negotiated features. */
#define VDEMUX_VIRTQ_F_EVENT_IDX (1ull << 29)

/** Queue flag: every descriptor must be device-writable (a receive queue);
 *  a chain with a readable one is skipped (#VDEMUX_VIRTQ_ERR_READ_ONLY). */
#define VDEMUX_VIRTQ_WRITE_ONLY 0x1u

/** Largest queue size of a split ring. */
#define VDEMUX_VIRTQ_MAX_SIZE 32768u

/** A split virtqueue, device side. */
typedef struct vdemux_virtq vdemux_virtq;

/** Options for vdemux_virtq_create(): where guest RAM and the rings are. */
struct vdemux_virtq_opts {
	size_t sz;	    /**< sizeof(struct vdemux_virtq_opts) */
	void *ram;	    /**< the VMM's mapping of guest RAM, GPA 0 on; 16-byte aligned */
	uint64_t ram_size;  /**< bytes of guest RAM from GPA 0; not 0 */
	uint64_t desc_gpa;  /**< descriptor table, 16-byte aligned */
	uint64_t avail_gpa; /**< available ring (driver area), 2-byte aligned */
	uint64_t used_gpa;  /**< used ring (device area), 4-byte aligned (legacy: 4096) */
	uint32_t size;	    /**< entries: a power of two, 1..32768 */
	uint32_t flags;	    /**< VDEMUX_VIRTQ_WRITE_ONLY or 0 */
	uint64_t features; /**< the negotiated feature bits; VDEMUX_VIRTQ_F_INDIRECT_DESC and _EVENT_IDX are used, others ignored */
	struct vdemux_alloc_hooks alloc; /**< for the queue's memory; both NULL: calloc/free */
};

/**
 * Check the options and make a queue, its indices at 0 (a queue the driver
 * just enabled). Nothing in guest memory is read or written.
 *
 * @param[out] out the queue, set on success
 * @param opts     options (required: ram, ram_size, the three GPAs, size)
 * @return 0; -EINVAL (NULL, @c sz too small or unknown non-zero fields past
 *         it, size not a power of two in 1..32768, an unknown flag, one hook
 *         set without the other, @c ram misaligned, a ring misaligned,
 *         outside guest RAM or overlapping another); -ENOMEM. On failure
 *         nothing is allocated and @p out is unchanged.
 */
VDEMUX_API int vdemux_virtq_create(vdemux_virtq **out, const struct vdemux_virtq_opts *opts);

/** Free the queue; guest memory is not touched. NULL: nothing. */
VDEMUX_API void vdemux_virtq_destroy(vdemux_virtq *q);

/**
 * Back to a freshly created queue (the driver reset the device, or enabled
 * the queue again on the same rings): indices 0, nothing in flight, not
 * broken. Counters are kept. @return 0; -EINVAL (NULL).
 */
VDEMUX_API int vdemux_virtq_reset(vdemux_virtq *q);

/** A chain taken by vdemux_virtq_pop(). */
struct vdemux_virtq_chain {
	uint16_t head;	    /**< the id to give back to vdemux_virtq_push() */
	uint32_t n_read;    /**< iovecs [0, n_read): device-readable (the driver's bytes) */
	uint32_t n_write;   /**< iovecs [n_read, n_read + n_write): device-writable */
	uint32_t read_len;  /**< bytes in the readable iovecs */
	uint32_t write_len; /**< bytes in the writable iovecs: the most push may report */
};

/**
 * Take the next available chain, checked, as iovecs of the VMM's mapping of
 * guest RAM: its readable descriptors first, then its writable ones (the
 * order the spec requires; indirect tables followed). Chains the guest got
 * wrong on the way are skipped and counted, and pop goes on.
 *
 * @param q          the queue
 * @param[out] chain head, iovec counts and lengths
 * @param[out] iov   the chain's buffers, in chain order
 * @param max_iov    room in @p iov; a chain with more descriptors than
 *                   min(@p max_iov, queue size) is skipped
 *                   (#VDEMUX_VIRTQ_ERR_TOO_LONG)
 * @return 1 and a chain (its head is in flight until pushed and published);
 *         0 when no chain is available; -EIO when the queue is broken (now
 *         or before: vdemux_virtq_needs_reset()); -EINVAL (NULL, max_iov
 *         0: nothing taken, counted in @c refused of the stats but for a
 *         NULL queue). Skipped chains are taken from the ring in every
 *         other case.
 */
VDEMUX_API int vdemux_virtq_pop(vdemux_virtq *q, struct vdemux_virtq_chain *chain, struct iovec *iov,
				unsigned max_iov);

/**
 * Give a popped chain back: @p len bytes were written into its writable
 * iovecs (0 for a chain the device only read). The used entry is written
 * now, and the guest sees it at the next vdemux_virtq_publish(); entries are
 * published in the order pushed. Allowed on a broken queue, for chains
 * popped before it broke.
 * @return 0; -EINVAL (NULL, @p head not popped or already pushed, @p len
 *         above the chain's writable bytes): nothing changed, and counted
 *         in @c refused of the stats (but for a NULL queue).
 */
VDEMUX_API int vdemux_virtq_push(vdemux_virtq *q, uint16_t head, uint32_t len);

/**
 * Make every pushed entry, and a length-0 entry for every skipped chain,
 * visible to the guest (one used index store), and say whether the guest
 * wants an interrupt for them: with VIRTIO_RING_F_EVENT_IDX, when the used
 * index went past the driver's used_event; without, unless the driver set
 * VRING_AVAIL_F_NO_INTERRUPT. Nothing published: no interrupt.
 * @param q              the queue
 * @param[out] published entries made visible (may be NULL)
 * @return 1: interrupt the guest; 0: do not (nothing new, or suppressed);
 *         -EINVAL (NULL queue).
 */
VDEMUX_API int vdemux_virtq_publish(vdemux_virtq *q, uint32_t *published);

/**
 * Ask the driver to notify the queue when it makes chains available (@p on),
 * or not to (off): avail_event with VIRTIO_RING_F_EVENT_IDX (on: the next
 * entry to take; off leaves it behind), VRING_USED_F_NO_NOTIFY in the used
 * ring's flags without.
 * @return for @p on: 1 if chains are available after the request (take
 *         them: the driver may have added them before it saw the request,
 *         and will not notify for them) or the ring is broken (pop says
 *         -EIO), 0 if none; 0 for off; -EINVAL (NULL).
 */
VDEMUX_API int vdemux_virtq_enable_kick(vdemux_virtq *q, bool on);

/**
 * Whether the guest broke the ring (see the top of this file): the queue
 * pops no more until vdemux_virtq_reset(), and the VMM should set
 * DEVICE_NEEDS_RESET. @return 1 or 0; -EINVAL (NULL).
 */
VDEMUX_API int vdemux_virtq_needs_reset(const vdemux_virtq *q);

/** What the guest got wrong, by kind (the first problem of a chain counts). */
enum vdemux_virtq_err {
	VDEMUX_VIRTQ_ERR_AVAIL_IDX = 0, /**< available index moved by more than the size: breaks */
	VDEMUX_VIRTQ_ERR_HEAD_RANGE,	/**< head index >= size: breaks */
	VDEMUX_VIRTQ_ERR_HEAD_INFLIGHT, /**< head offered while in flight: breaks */
	VDEMUX_VIRTQ_ERR_NEXT_RANGE,	/**< next index outside its table: skipped */
	VDEMUX_VIRTQ_ERR_LOOP,		/**< chain longer than its table (a loop): skipped */
	VDEMUX_VIRTQ_ERR_TOO_LONG, /**< more descriptors than the size or the caller's room: skipped */
	VDEMUX_VIRTQ_ERR_INDIRECT_FEATURE, /**< indirect descriptor, feature not negotiated: skipped */
	VDEMUX_VIRTQ_ERR_INDIRECT_NESTED,  /**< indirect inside an indirect table: skipped */
	VDEMUX_VIRTQ_ERR_INDIRECT_NEXT,	   /**< indirect together with NEXT: skipped */
	VDEMUX_VIRTQ_ERR_INDIRECT_LEN, /**< indirect table of 0 bytes or not a multiple of 16: skipped */
	VDEMUX_VIRTQ_ERR_INDIRECT_RANGE, /**< indirect table outside guest RAM: skipped */
	VDEMUX_VIRTQ_ERR_READ_ONLY,    /**< readable after writable, or on a write-only queue: skipped */
	VDEMUX_VIRTQ_ERR_ADDR_RANGE,   /**< buffer outside guest RAM: skipped */
	VDEMUX_VIRTQ_ERR_RING_OVERLAP, /**< buffer over the descriptor table or a ring: skipped */
	VDEMUX_VIRTQ_ERR_ZERO_LEN,     /**< zero-length descriptor: skipped */
	VDEMUX_VIRTQ_ERR_LEN_OVERFLOW, /**< chain of more than 4 GiB - 1: skipped */
	VDEMUX_VIRTQ_ERR__COUNT
};

/** Counters of a queue (kept across vdemux_virtq_reset()). */
struct vdemux_virtq_stats {
	uint64_t popped;       /**< chains returned by pop */
	uint64_t skipped;      /**< chains given back with length 0 (malformed) */
	uint64_t pushed;       /**< used entries pushed */
	uint64_t publishes;    /**< used index stores */
	uint64_t interrupts;   /**< publishes that asked for an interrupt */
	uint64_t no_interrupt; /**< publish calls that did not (nothing new, or suppressed) */
	uint64_t err[VDEMUX_VIRTQ_ERR__COUNT]; /**< problems found, by #vdemux_virtq_err */
	uint64_t refused; /**< calls on this queue refused with -EINVAL (pop without room or output, push of a head not popped or already pushed, or longer than its chain): the VMM's mistakes, not the guest's */
};

/**
 * Read the queue's counters.
 * @param q        the queue
 * @param[out] out filled with min(@p size, sizeof) bytes
 * @param size     sizeof(*out) as compiled by the caller
 * @return 0; -EINVAL (NULL).
 */
VDEMUX_API int vdemux_virtq_stats(const vdemux_virtq *q, struct vdemux_virtq_stats *out, size_t size);

/** Name of an error kind ("loop", "addr_range", ...), "?" when out of range. */
VDEMUX_API const char *vdemux_virtq_err_name(int err);

#ifdef __cplusplus
}
#endif
#endif

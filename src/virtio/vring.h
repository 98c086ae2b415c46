/* SPDX-License-Identifier: MIT */
/*
 * The device side of a VIRTIO split virtqueue (VIRTIO 1.x section 2.7, and
 * the legacy 0.9.5 PCI layout), written for a receive queue whose guest is
 * not trusted. Internal: not installed, not exported.
 *
 * Everything in guest memory may change at any moment, under our feet. The
 * rules that follow from it:
 * - every index and descriptor is read from guest memory once, into a local
 *   copy, and only the copy is checked and used;
 * - every guest address is bounds-checked with overflow-safe arithmetic
 *   before it is turned into a host pointer;
 * - every walk is bounded (a chain of a table of n descriptors that is longer
 *   than n must revisit one: a loop), so pop always terminates;
 * - the device writes guest memory only in the used ring (entries, idx) and
 *   in avail_event; never through a segment (that is the caller's business,
 *   with the segments pop checked).
 *
 * Threading: a queue is single-threaded (one device thread per queue); the
 * guest's vCPUs run concurrently with it, which is what the barriers below
 * are for. Different queues are independent.
 *
 * What a hostile guest can do, and the answer
 * ===========================================
 *
 * "skip" = the chain is consumed from the avail ring and returned in the
 * used ring with len 0 at the next vd_vring_publish() (the spec lets a device
 * write fewer bytes than offered, down to none; Linux's virtio_net counts a
 * too-short buffer as a length error, recycles it and carries on). It costs
 * the guest one buffer round trip, never a page, and keeps a head id from
 * leaking. "broken" = the queue stops: pop returns -EIO from then on, the
 * state is sticky until vd_vring_reset(), and the VMM is expected to set
 * DEVICE_NEEDS_RESET in the device status and notify a configuration change
 * (VIRTIO 1.x 2.1.2). Broken is used where no used entry can honestly be
 * written: the head id itself is invalid, or the ring's state is.
 *
 * | what the guest did                                  | counter              | answer |
 * |-----------------------------------------------------|----------------------|--------|
 * | avail->idx moved by more than the queue size        | AVAIL_IDX            | broken |
 * |   (forward, or backward: same thing modulo 2^16)    |                      |        |
 * | head index in the avail ring >= queue size          | HEAD_RANGE           | broken |
 * | head already in flight (offered twice, or again     | HEAD_INFLIGHT        | broken |
 * |   before the used entry returning it was published) |                      |        |
 * | next index >= size of its table                     | NEXT_RANGE           | skip   |
 * | chain longer than its table (it must loop)          | LOOP                 | skip   |
 * | more segments than the queue size or than the       | TOO_LONG             | skip   |
 * |   caller's array (long indirect tables)             |                      |        |
 * | INDIRECT without VIRTIO_RING_F_INDIRECT_DESC        | INDIRECT_FEATURE     | skip   |
 * | INDIRECT inside an indirect table                   | INDIRECT_NESTED      | skip   |
 * | INDIRECT together with NEXT                         | INDIRECT_NEXT        | skip   |
 * | indirect table len 0 or not a multiple of 16        | INDIRECT_LEN         | skip   |
 * | indirect table outside host-readable guest RAM      | INDIRECT_RANGE       | skip   |
 * |   (outside RAM, or in the RX window: may be holes)  |                      |        |
 * | device-readable descriptor on a write-only queue    | READ_ONLY            | skip   |
 * |   (or, on other queues, after a device-writable one) |                      |        |
 * | buffer outside guest RAM                            | ADDR_RANGE           | skip   |
 * | buffer overlapping the desc table, avail or used    | RING_OVERLAP         | skip   |
 * |   ring (we would write, or flip pages, over them)   |                      |        |
 * | zero-length descriptor                              | ZERO_LEN             | skip   |
 * | total chain length above UINT32_MAX (used.len)      | LEN_OVERFLOW         | skip   |
 *
 * TOO_LONG follows the spec's "a driver MUST NOT create a descriptor chain
 * longer than the Queue Size" (2.7.5.3.1), indirect tables included. Linux
 * checks it only for direct chains (virtqueue_add_split), so its big-packet
 * mode (19 entries) needs a queue of at least 32 here; its default is 256.
 *
 * The first problem found in a chain is the one counted (one count per
 * skipped chain). An indirect table's address need not be 16-byte aligned:
 * the spec asks it of the queue's own table only, and descriptors are copied
 * out with memcpy, so alignment cannot hurt; "misaligned" tables are those
 * whose length is not a whole number of descriptors (INDIRECT_LEN).
 * A rewritten ring is not detectable as such; it shows up as one of the
 * above, or as a valid chain, which is as good as any other.
 *
 * Memory ordering
 * ===============
 *
 * The guest is another CPU sharing memory with us, so the SMP barriers are
 * the ones needed (Linux's virtio_ring uses virt_* = smp_* barriers with
 * weak_barriers, which is what a VMM's queues get). Each place is commented
 * in vring.c; in short:
 * - pop: avail->idx is loaded with acquire (= read barrier before the ring
 *   entries and descriptors): the driver wrote them, then a write barrier,
 *   then avail->idx (2.7.13).
 * - publish: used ring entries are stored, then used->idx with release
 *   (= write barrier before it): the driver reads used->idx, a read barrier,
 *   then the entries (2.7.8).
 * - need_notify: a full barrier between the used->idx store and the loads of
 *   used_event / avail->flags (store then load: only a full barrier orders
 *   it); the driver does the mirror image (stores used_event, full barrier,
 *   re-reads used->idx), so one of the two sides sees the other (2.7.10).
 * - enable_kick: a full barrier between the avail_event / used->flags store
 *   and the re-read of avail->idx, for the same reason (2.7.7).
 */
#ifndef VDEMUX_VIRTIO_VRING_H
#define VDEMUX_VIRTIO_VRING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <vdemux/common.h>

/* Feature bits (bit numbers are the spec's; values are masks). */
#define VD_VIRTIO_F_INDIRECT_DESC (1ull << 28)
#define VD_VIRTIO_F_EVENT_IDX (1ull << 29)
#define VD_VIRTIO_F_VERSION_1 (1ull << 32)

/* Descriptor flags. */
#define VD_VRING_DESC_F_NEXT 1u
#define VD_VRING_DESC_F_WRITE 2u
#define VD_VRING_DESC_F_INDIRECT 4u
/* avail->flags / used->flags. */
#define VD_VRING_AVAIL_F_NO_INTERRUPT 1u
#define VD_VRING_USED_F_NO_NOTIFY 1u

/* Largest queue size the split ring allows. */
#define VD_VRING_MAX_SIZE 32768u
/* Sizes of the ring parts for a queue of @n entries (avail and used include
 * used_event / avail_event, which we count as part of them always). */
#define VD_VRING_DESC_BYTES(n) (16ull * (n))
#define VD_VRING_AVAIL_BYTES(n) (6ull + 2ull * (n))
#define VD_VRING_USED_BYTES(n) (6ull + 8ull * (n))

/*
 * Guest RAM as the device sees it: GPAs [0, size) mapped at base, one host
 * virtual range (how the KVM backend lays guest RAM out). GPAs in
 * [rxwin_gpa, rxwin_gpa + rxwin_len) may be holes in that mapping (pages the
 * engine harvested or is flipping; touching one faults): buffers may lie
 * there, rings and indirect tables may not, as the device reads those through
 * the mapping. rxwin_len 0: no window.
 */
struct vd_gmem {
	uint8_t *base;	    /* host address of GPA 0 */
	uint64_t size;	    /* bytes of guest RAM from GPA 0 */
	uint64_t rxwin_gpa; /* first GPA that may be a hole */
	uint64_t rxwin_len; /* bytes of it; 0 for none */
};

/* Queue flags. */
/* Every descriptor must be device-writable (a receive queue). */
#define VD_VRING_F_WRITE_ONLY 0x1u

struct vd_vring_config {
	uint64_t desc_gpa;  /* descriptor table: 16-byte aligned */
	uint64_t avail_gpa; /* driver area: 2-byte aligned */
	uint64_t used_gpa; /* device area: 4-byte aligned (legacy: the transport's boundary, unchecked) */
	uint32_t size;	   /* entries: a power of two, 1..32768 */
	uint32_t flags;	   /* VD_VRING_F_* */
	uint64_t features; /* negotiated: VD_VIRTIO_F_INDIRECT_DESC, _EVENT_IDX used */
};

/* A device-accessible piece of a chain, in chain order. */
struct vd_vring_seg {
	uint64_t gpa;
	uint32_t len;	  /* > 0 */
	uint8_t writable; /* device may write it (always 1 on a write-only queue) */
};

/* What pop returns besides the segments. */
struct vd_vring_chain {
	uint16_t head; /* id to give back to vd_vring_push() */
	uint32_t nseg; /* segments written to the caller's array */
	uint32_t len;  /* sum of their lengths (fits: checked) */
};

enum vd_vring_err {
	VD_VRING_ERR_AVAIL_IDX = 0,
	VD_VRING_ERR_HEAD_RANGE,
	VD_VRING_ERR_HEAD_INFLIGHT,
	VD_VRING_ERR_NEXT_RANGE,
	VD_VRING_ERR_LOOP,
	VD_VRING_ERR_TOO_LONG,
	VD_VRING_ERR_INDIRECT_FEATURE,
	VD_VRING_ERR_INDIRECT_NESTED,
	VD_VRING_ERR_INDIRECT_NEXT,
	VD_VRING_ERR_INDIRECT_LEN,
	VD_VRING_ERR_INDIRECT_RANGE,
	VD_VRING_ERR_READ_ONLY,
	VD_VRING_ERR_ADDR_RANGE,
	VD_VRING_ERR_RING_OVERLAP,
	VD_VRING_ERR_ZERO_LEN,
	VD_VRING_ERR_LEN_OVERFLOW,
	VD_VRING_ERR_COUNT
};

/* The kinds that break the queue (the others skip the chain). */
#define VD_VRING_ERR_BREAKS(e)                                              \
	((e) == VD_VRING_ERR_AVAIL_IDX || (e) == VD_VRING_ERR_HEAD_RANGE || \
	 (e) == VD_VRING_ERR_HEAD_INFLIGHT)

struct vd_vring_stats {
	uint64_t popped;		  /* chains returned by pop */
	uint64_t skipped;		  /* chains answered with a len-0 used entry */
	uint64_t pushed;		  /* used entries from vd_vring_push() */
	uint64_t publishes;		  /* used->idx stores */
	uint64_t notify;		  /* need_notify() said yes */
	uint64_t no_notify;		  /* need_notify() said no */
	uint64_t err[VD_VRING_ERR_COUNT]; /* problems found, by kind */
};

struct vd_vring;

/* Name of an error kind ("avail_idx", ...), for logs and tests. */
const char *vd_vring_err_name(enum vd_vring_err e);

/*
 * Compute the three addresses of a legacy (0.9.5) queue laid out from
 * @base_gpa: desc table, then the avail ring, then the used ring at the next
 * multiple of @align (4096 for legacy PCI).
 * @return 0; -EINVAL (size not a power of two in range, align not a power of
 *         two, addresses overflow). @p out is written only on success.
 */
int vd_vring_legacy_layout(struct vd_vring_config *out, uint64_t base_gpa, uint32_t size, uint32_t align);

/*
 * Check @cfg against @gm and make a queue. Nothing in guest memory is read
 * or written. Indices start at 0 (a freshly enabled queue).
 * @param alloc allocation hooks, NULL for calloc/free
 * @return 0; -EINVAL (NULL argument, size not a power of two in 1..32768,
 *         unknown flag, a ring misaligned, outside guest RAM, in the RX window,
 *         or two rings overlapping); -ENOMEM. On failure nothing is allocated.
 */
int vd_vring_create(struct vd_vring **out, const struct vd_gmem *gm, const struct vd_vring_config *cfg,
		    const struct vdemux_alloc_hooks *alloc);
void vd_vring_destroy(struct vd_vring *vq);

/*
 * Back to the state of a freshly created queue (the guest reset the device):
 * indices 0, nothing in flight, not broken. Statistics are kept.
 */
void vd_vring_reset(struct vd_vring *vq);

/*
 * Take the next available chain, checked. Chains the guest got wrong on the
 * way are skipped (queued for a len-0 used entry at the next publish) and
 * counted; pop goes on to the next one.
 * @param[out] chain head, segment count and total length
 * @param[out] segs  the segments, in chain order; @p max_segs of room
 *                   (the queue size is always enough)
 * @return 1 and a chain (its head is in flight until pushed); 0 when no chain
 *         is available; -EIO when the queue is broken (now or earlier);
 *         -EINVAL (NULL argument, max_segs 0). Skipped chains are consumed
 *         in every case.
 */
int vd_vring_pop(struct vd_vring *vq, struct vd_vring_chain *chain, struct vd_vring_seg *segs,
		 uint32_t max_segs);

/*
 * Queue a used entry (@head, @len bytes written) for the next publish. The
 * entry is written to the used ring now, but the guest does not see it until
 * vd_vring_publish(). Entries are published in the order pushed, with the
 * skipped chains after them: push the buffers of one frame (mergeable
 * num_buffers) between two publishes and they stay consecutive. The head
 * stays in flight until then (the guest cannot know it is back before).
 * Allowed on a broken queue, for the chains popped before it broke.
 * @return 0; -EINVAL (head not in flight, or @len above the chain's length):
 *         nothing changed.
 */
int vd_vring_push(struct vd_vring *vq, uint16_t head, uint32_t len);

/*
 * Write the used entries of skipped chains and make every queued entry
 * visible to the guest with one used->idx store.
 * @return how many entries became visible (0: nothing to publish, no store).
 */
uint32_t vd_vring_publish(struct vd_vring *vq);

/*
 * Whether the guest wants an interrupt for what was published since the
 * last call: with EVENT_IDX, when used->idx went past used_event
 * (vring_need_event); without, unless avail->flags has NO_INTERRUPT. Never
 * when nothing was published since the last call. Call once per publish.
 */
bool vd_vring_need_notify(struct vd_vring *vq);

/*
 * Ask to be kicked (@on) or not. With EVENT_IDX, writes avail_event (kick
 * me when avail->idx passes what I have consumed; off leaves it behind, which
 * the driver reads as "no kick needed" until idx wraps around to it); without, sets or
 * clears VRING_USED_F_NO_NOTIFY in used->flags. Asking again with nothing
 * popped since (and no vd_vring_set_avail_event() or off in between) writes
 * nothing and skips the barrier: the request made then still holds, and
 * only avail->idx is read again.
 * @return for @on: whether chains are available after the barrier (poll
 *         again instead of waiting: the guest may have added them before it
 *         saw the request); false for off.
 */
bool vd_vring_enable_kick(struct vd_vring *vq, bool on);

/*
 * Write @idx to avail_event (EVENT_IDX only): the guest kicks when its
 * avail->idx moves past it. @return 0; -EOPNOTSUPP without EVENT_IDX.
 */
int vd_vring_set_avail_event(struct vd_vring *vq, uint16_t idx);

/* Chains the guest made available that pop has not taken yet (0 when
 * broken; an avail->idx jump breaks the queue here too). */
uint32_t vd_vring_avail_count(struct vd_vring *vq);

/* Nothing to do on the available side: not broken, kicks asked for at the
 * current entry (vd_vring_enable_kick(vq, true) with nothing popped since,
 * so it would write nothing), and nothing available (avail->idx read
 * again; a jump breaks the queue here too, and gives false). */
bool vd_vring_idle(struct vd_vring *vq);

/* 0, or the error kind + 1 that broke the queue. The VMM sets
 * DEVICE_NEEDS_RESET when it is non-zero. */
int vd_vring_broken(const struct vd_vring *vq);

const struct vd_vring_stats *vd_vring_stats(const struct vd_vring *vq);

/* Heads popped or skipped and not yet published. */
uint32_t vd_vring_inflight(const struct vd_vring *vq);

/* The queue's configuration and guest memory, as given to create. */
const struct vd_vring_config *vd_vring_config(const struct vd_vring *vq);
const struct vd_gmem *vd_vring_gmem(const struct vd_vring *vq);

/* Whether [gpa, gpa + len) shares a byte with a ring (page = false) or a
 * 4 KiB page with one (page = true). len 0 never overlaps. */
bool vd_vring_overlaps_rings(const struct vd_vring *vq, uint64_t gpa, uint64_t len, bool page);

#endif

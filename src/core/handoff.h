/* SPDX-License-Identifier: MIT */
/* The shards of a group and the queues between them. A group is engines
 * (shards) that share one range of arena pages, one classifier and one
 * space of VM ids; each is driven by its own thread. A frame classified on
 * one shard for a VM of another is handed in the sender's pool pages (a
 * copy, or a zero-copy frame's own) through a bounded single-producer
 * single-consumer queue (one per ordered pair of shards); the receiver
 * takes the pages into its own books and gives as many back in the same
 * slot (the frame's, or zeroed ones of its own if its VM kept them), so
 * that every shard's pool keeps its size. Owner of: struct vdemux_group,
 * struct vd_hq, struct vd_shard.
 *
 * Memory ordering: the producer fills slots, then publishes its head with
 * a release store once per call; the consumer reads the head with an
 * acquire load, takes slots and writes the pages it returns into them,
 * then publishes its tail with a release store once per call; the producer
 * reads the tail with an acquire load before reusing a slot or taking the
 * returned pages. The frame's bytes, and the returned pages' bytes, are
 * ordered by the same pairs. No read-modify-write anywhere. */
#ifndef VDEMUX_CORE_HANDOFF_H
#define VDEMUX_CORE_HANDOFF_H

#include <stdatomic.h>

#include <vdemux/arena.h>
#include <vdemux/l2.h>
#include <vdemux/signal.h>
#include <vdemux/verdict.h>

#include "common/util.h"
#include "core/frame.h"
#include "core/offload.h"

#define VD_GROUP_MAX_SHARDS 64u
#define VD_HQ_DEFAULT 256u
#define VD_HQ_MAX 65536u

struct vdemux_engine;

/* One frame in a queue. pages[0, np): the frame's (bytes [off, off + len)
 * of them), then, once taken, the pages the receiver gave back:
 * zeroed ones of its own when its VM kept the frame's, else the frame's
 * own, not cleared (back_dirty): the sender clears them in its own cache,
 * rather than the receiver clearing lines the sender writes next. */
struct vd_hslot {
	uint32_t np, len, off;
	struct vdemux_dest d;
	bool has_ol;
	bool back_dirty;
	struct vd_offload ol;
	uint32_t pages[MAX_FRAME_PAGES];
};

/* The queue from one shard to another. The producer's words and the
 * consumer's are a cache line apart (padding, not alignas: the queues are
 * allocated with the VMM's hooks, which promise no more than malloc's
 * alignment). */
struct vd_hq {
	_Atomic uint32_t head; /* published by the producer */
	uint32_t next;	       /* producer: the head it will publish */
	uint32_t seen;	       /* producer: tail last read; slots before it reaped */
	char pad0[64 - 12];
	_Atomic uint32_t tail; /* published by the consumer */
	uint32_t taken;	       /* consumer: the tail it will publish */
	uint32_t avail;	       /* consumer: head last read */
	char pad1[64 - 12];
	uint32_t mask;
	struct vd_hslot *slots;
};

/* A shard's wake-up: armed by its thread before it waits
 * (vdemux_shard_idle()), disarmed (and the signal sent) by the first shard
 * that hands it a frame then. */
struct vd_wake {
	_Atomic uint32_t armed;
	struct vdemux_signal sig;
	char pad[64 - 4];
};

struct vdemux_group {
	struct vdemux_alloc_hooks alloc;
	vdemux_arena *arena;
	uint32_t first_page, npages;
	uint32_t nshards;
	uint32_t part[VD_GROUP_MAX_SHARDS + 1]; /* shard i's pages: [part[i], part[i + 1]) of npages */
	uint32_t idx_bits;			/* a VM index's bits below the shard's number */
	vdemux_l2 *l2;
	struct vdemux_engine *shards[VD_GROUP_MAX_SHARDS]; /* attached (control path only) */
	struct vd_hq *q;				   /* q[from * nshards + to] */
	struct vd_wake wake[VD_GROUP_MAX_SHARDS];
};

/* This shard's part of the group: the engine's member. */
struct vd_shard {
	struct vdemux_group *g; /* NULL: not a shard */
	uint32_t idx;
	uint64_t out;  /* queues this shard has slots outstanding in (to publish or reap) */
	uint32_t next; /* the shard whose queue the next poll reads first */
};

static inline struct vd_hq *vd_hq_of(const struct vdemux_group *g, uint32_t from, uint32_t to)
{
	return &g->q[(size_t)from * g->nshards + to];
}

/* The shard whose VMs @vm belongs to (nshards or more: none). */
static inline uint32_t vd_group_shard_of(const struct vdemux_group *g, vdemux_vm_id vm)
{
	return (((vm & ((1u << 20) - 1u)) - 1u) & ((1u << 20) - 1u)) >> g->idx_bits;
}

int vd_group_queues_init(struct vdemux_group *g, uint32_t qlen);
void vd_group_queues_fini(struct vdemux_group *g);

/* Whether every destination of @v is a VM of shard @sh (the common case of
 * traffic steered to its shard: a few instructions per destination). */
static inline bool vd_handoff_local(const struct vd_shard *sh, const struct vdemux_verdict *v)
{
	unsigned n = v->n < v->cap ? v->n : v->cap;

	for (unsigned k = 0; k < n; k++)
		if (vd_group_shard_of(sh->g, v->dests[k].vm) != sh->idx)
			return false;
	return true;
}

/* Whether every destination of @v on another shard has room in its queue
 * (the frame can be taken whole). */
bool vd_handoff_room(struct vdemux_engine *e, const struct vdemux_verdict *v);
/* Destination @d is no VM of this engine: hand the frame to its shard,
 * or drop it, counted (UNKNOWN_VM; NO_POOL; handoff_full). With @consume
 * (no other destination needs them), a frame in pool pages is handed in
 * its own pages, and true returned: they are the queue's now; else a copy
 * in fresh pages. */
bool vd_handoff_frame(struct vdemux_engine *e, const struct vd_src *src, const struct vdemux_dest *d,
		      bool consume);
/* End of a call: publish what was handed (waking a receiver that waits),
 * take back the pages returned. */
void vd_handoff_publish(struct vdemux_engine *e);
/* The shard's thread is about to wait: arm its wake-up, then look at its
 * queues once more. Returns whether frames wait in them. */
bool vd_handoff_idle(struct vdemux_engine *e);
/* The shard's thread is polling: no wake-up needed. */
void vd_handoff_awake(struct vdemux_engine *e);

/* Consumer: the next slot from shard @from, or NULL. */
struct vd_hslot *vd_handoff_peek(struct vdemux_engine *e, uint32_t from);
/* Take slot @sl's frame into this engine (its pages, now FILLING, copied
 * to @pages) and put as many FREE pages in the slot; false (nothing done)
 * if the pool has too few. */
bool vd_handoff_accept(struct vdemux_engine *e, struct vd_hslot *sl, uint32_t *pages);
/* After the frame's delivery: the FREE pages stay in @sl if the VM took
 * the frame's (@consumed); else they come back and the frame's own (still
 * FILLING) go instead. */
void vd_handoff_settle(struct vdemux_engine *e, struct vd_hslot *sl, const uint32_t *pages,
		       bool consumed);
/* The slot peeked from @from was taken; vd_handoff_release() publishes. */
void vd_handoff_next(struct vdemux_engine *e, uint32_t from);
void vd_handoff_release(struct vdemux_engine *e, uint32_t from);

#endif

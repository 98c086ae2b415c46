/* SPDX-License-Identifier: MIT */
/* The two queues of a VM, behind a small API so that their indices have one
 * owner: the post queue (slots the guest posted, FIFO) and the completion
 * queue (completions for the guest to poll, FIFO), with reservations so
 * that a planned delivery is sure of its room before it is applied. Single
 * producer and consumer: the engine's calling thread. */
#ifndef VDEMUX_CORE_RING_H
#define VDEMUX_CORE_RING_H

#include <vdemux/vm.h>

#include "common/util.h"

struct vd_postq {
	uint32_t *q;
	uint32_t cap, head, count;
};

/* head + i modulo cap, for head < cap and i <= cap: without a division
 * (the caps are a VM's page counts, not powers of two). */
static inline uint32_t vd_ring_wrap(uint32_t head, uint32_t i, uint32_t cap)
{
	uint32_t at = head + i;

	return at >= cap ? at - cap : at;
}

static inline void vd_postq_push(struct vd_postq *q, uint32_t s)
{
	q->q[vd_ring_wrap(q->head, q->count, q->cap)] = s;
	q->count++;
}

/* The i-th entry from the head, without taking it. */
static inline uint32_t vd_postq_peek(const struct vd_postq *q, uint32_t i)
{
	return q->q[vd_ring_wrap(q->head, i, q->cap)];
}

static inline uint32_t vd_postq_pop(struct vd_postq *q)
{
	uint32_t s = q->q[q->head];

	q->head = vd_ring_wrap(q->head, 1, q->cap);
	q->count--;
	return s;
}

struct vd_cq {
	struct vdemux_completion *c;
	uint32_t cap, head, count;
	uint32_t reserved; /* planned, not yet committed or cancelled */
};

static inline uint32_t vd_cq_room(const struct vd_cq *q)
{
	return q->cap - q->count - q->reserved;
}

static inline void vd_cq_reserve(struct vd_cq *q, uint32_t n)
{
	q->reserved += n;
}

static inline void vd_cq_cancel(struct vd_cq *q, uint32_t n)
{
	q->reserved -= n;
}

/* Turn one reservation into a completion. */
static inline void vd_cq_commit(struct vd_cq *q, uint64_t gpa, uint32_t len, uint16_t flags)
{
	struct vdemux_completion *c = &q->c[vd_ring_wrap(q->head, q->count, q->cap)];

	c->gpa = gpa;
	c->len = len;
	c->flags = flags;
	c->pad = 0;
	q->reserved--;
	q->count++;
}

static inline bool vd_cq_pop(struct vd_cq *q, struct vdemux_completion *out)
{
	if (!q->count)
		return false;
	*out = q->c[q->head];
	q->head = vd_ring_wrap(q->head, 1, q->cap);
	q->count--;
	return true;
}

#endif

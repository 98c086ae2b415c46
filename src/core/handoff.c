/* SPDX-License-Identifier: MIT */
/* The queues between the shards of a group (see handoff.h for the memory
 * ordering): a frame for another shard's VM handed over in pool pages
 * (a copy, or a zero-copy frame's own), pages given back in its slot. */
#include <errno.h>
#include <string.h>

#include "core/diag.h"
#include "core/engine.h"
#include "core/frame.h"
#include "core/handoff.h"
#include "core/pool.h"

int vd_group_queues_init(struct vdemux_group *g, uint32_t qlen)
{
	size_t n = (size_t)g->nshards * g->nshards;

	g->q = vd_calloc(&g->alloc, n, sizeof(*g->q));
	if (!g->q)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		g->q[i].mask = qlen - 1;
		if (i / g->nshards == i % g->nshards)
			continue; /* no queue from a shard to itself */
		g->q[i].slots = vd_calloc(&g->alloc, qlen, sizeof(*g->q[i].slots));
		if (!g->q[i].slots)
			return -ENOMEM;
	}
	return 0;
}

void vd_group_queues_fini(struct vdemux_group *g)
{
	size_t n = (size_t)g->nshards * g->nshards;

	for (size_t i = 0; g->q && i < n; i++)
		vd_free(&g->alloc, g->q[i].slots);
	vd_free(&g->alloc, g->q);
}

/* Bytes [0, n) of page @i of a frame that ends at byte @end of its pages
 * (its offset in the first plus its length): what may be non-zero. */
static uint32_t page_bytes(uint32_t end, uint32_t i)
{
	return end - i * PAGE < PAGE ? end - i * PAGE : PAGE;
}

/* Producer: take back the pages returned in the slots consumed since the
 * last look: the receiver's zeroed ones, or the frame's own, whose written
 * bytes are cleared here (back_dirty). */
static void reap(struct vdemux_engine *e, struct vd_hq *q)
{
	uint32_t tail = atomic_load_explicit(&q->tail, memory_order_acquire);

	for (; q->seen != tail; q->seen++) {
		const struct vd_hslot *sl = &q->slots[q->seen & q->mask];

		for (uint32_t i = 0; i < sl->np; i++)
			vd_pool_take_free(&e->pool, sl->pages[i],
					  sl->back_dirty ? page_bytes(sl->off + sl->len, i) : 0);
	}
}

/* Producer: free slots of q, looking at the consumer's tail only when the
 * last look does not show @want of them. */
static uint32_t room(struct vdemux_engine *e, struct vd_hq *q, uint32_t want)
{
	uint32_t cap = q->mask + 1;

	if (cap - (q->next - q->seen) < want)
		reap(e, q);
	return cap - (q->next - q->seen);
}

/* The shard @d's VM belongs to, if another one of the group; else nshards. */
static uint32_t target(const struct vdemux_engine *e, const struct vdemux_dest *d)
{
	const struct vdemux_group *g = e->shard.g;
	uint32_t to;

	if (!g || d->vm == 0)
		return g ? g->nshards : 0;
	to = vd_group_shard_of(g, d->vm);
	return to == e->shard.idx ? g->nshards : to;
}

bool vd_handoff_room(struct vdemux_engine *e, const struct vdemux_verdict *v)
{
	const struct vdemux_group *g = e->shard.g;
	unsigned n = v->n < v->cap ? v->n : v->cap;
	uint32_t need[VD_GROUP_MAX_SHARDS] = {0};

	if (n == 1) { /* the common case: one slot in one queue */
		uint32_t to = target(e, &v->dests[0]);

		return to >= g->nshards || room(e, vd_hq_of(g, e->shard.idx, to), 1) > 0;
	}
	for (unsigned k = 0; k < n; k++) {
		uint32_t to = target(e, &v->dests[k]);

		if (to < g->nshards)
			need[to]++;
	}
	for (uint32_t to = 0; to < g->nshards; to++)
		if (need[to] && room(e, vd_hq_of(g, e->shard.idx, to), need[to]) < need[to])
			return false;
	return true;
}

/* Copy the frame as it came into fresh pages of the slot (from offset 0);
 * the pool has them. */
static void fill_slot(struct vdemux_engine *e, struct vd_hslot *sl, const struct vd_src *src)
{
	uint32_t np = vd_pool_get(&e->pool, sl->pages, npages_for(src->len));

	for (uint32_t i = 0; i < np; i++) {
		uint32_t n = page_bytes(src->len, i);

		vd_frame_read(&e->pool, src, i * PAGE, pg_addr(&e->pool, sl->pages[i]), n);
		vd_pool_set_dirty(&e->pool, sl->pages[i], n);
		vd_pool_send(&e->pool, sl->pages[i]);
	}
	sl->np = np;
	sl->len = src->len;
	sl->off = 0;
}

/* The frame's own pages (FILLING, bytes outside the frame cleared) go in
 * the slot: a zero-copy frame stays zero-copy across shards. */
static void move_to_slot(struct vdemux_engine *e, struct vd_hslot *sl, const struct vd_src *src)
{
	sl->np = npages_for(src->off + src->len);
	for (uint32_t i = 0; i < sl->np; i++) {
		sl->pages[i] = src->pages[i];
		vd_pool_send(&e->pool, sl->pages[i]);
	}
	sl->len = src->len;
	sl->off = src->off;
}

bool vd_handoff_frame(struct vdemux_engine *e, const struct vd_src *src, const struct vdemux_dest *d,
		      bool consume)
{
	struct vdemux_group *g = e->shard.g;
	uint32_t to = target(e, d);
	bool move = consume && src->pages;
	struct vd_hq *q;
	struct vd_hslot *sl;

	if (!g || to >= g->nshards) {
		vd_drop(e, NULL, VDEMUX_DROP_UNKNOWN_VM);
		return false;
	}
	q = vd_hq_of(g, e->shard.idx, to);
	if (room(e, q, 1) == 0) {
		e->st.handoff_full++;
		return false;
	}
	if (!move && e->pool.nfree < npages_for(src->len)) {
		vd_drop(e, NULL, VDEMUX_DROP_NO_POOL);
		return false;
	}
	sl = &q->slots[q->next & q->mask];
	if (move)
		move_to_slot(e, sl, src);
	else
		fill_slot(e, sl, src);
	sl->d = *d;
	sl->has_ol = src->ol != NULL;
	if (src->ol) {
		sl->ol = *src->ol;
		/* What this shard's offload scratch holds of the frame is not in
		 * the receiver's: it makes the checksum or segments itself. */
		sl->ol.done = 0;
	}
	q->next++;
	e->shard.out |= 1ull << to;
	e->st.handoff_out++;
	return move;
}

void vd_handoff_publish(struct vdemux_engine *e)
{
	struct vdemux_group *g = e->shard.g;
	uint64_t out = e->shard.out;

	while (out) {
		uint32_t to = (uint32_t)__builtin_ctzll(out);
		struct vd_hq *q = vd_hq_of(g, e->shard.idx, to);

		out &= out - 1;
		if (atomic_load_explicit(&q->head, memory_order_relaxed) != q->next)
			atomic_store_explicit(&q->head, q->next, memory_order_release);
		reap(e, q);
		if (q->seen == q->next)
			e->shard.out &= ~(1ull << to); /* nothing left out there */
	}
}

struct vd_hslot *vd_handoff_peek(struct vdemux_engine *e, uint32_t from)
{
	struct vd_hq *q = vd_hq_of(e->shard.g, from, e->shard.idx);

	if (q->taken == q->avail) {
		q->avail = atomic_load_explicit(&q->head, memory_order_acquire);
		if (q->taken == q->avail)
			return NULL;
	}
	return &q->slots[q->taken & q->mask];
}

bool vd_handoff_accept(struct vdemux_engine *e, struct vd_hslot *sl, uint32_t *pages)
{
	if (e->pool.nfree < sl->np)
		return false;
	for (uint32_t i = 0; i < sl->np; i++) {
		pages[i] = sl->pages[i];
		vd_pool_receive(&e->pool, pages[i], page_bytes(sl->off + sl->len, i));
	}
	/* Paid for now, while the pool surely has them; vd_handoff_settle()
	 * takes them back if the frame's own pages go back instead. */
	vd_pool_give(&e->pool, sl->pages, sl->np);
	e->st.handoff_in++;
	return true;
}

void vd_handoff_settle(struct vdemux_engine *e, struct vd_hslot *sl, const uint32_t *pages, bool consumed)
{
	sl->back_dirty = !consumed;
	if (consumed)
		return;
	for (uint32_t i = 0; i < sl->np; i++) {
		vd_pool_take_free(&e->pool, sl->pages[i], 0);
		vd_pool_send(&e->pool, pages[i]);
		sl->pages[i] = pages[i];
	}
}

void vd_handoff_next(struct vdemux_engine *e, uint32_t from)
{
	vd_hq_of(e->shard.g, from, e->shard.idx)->taken++;
}

void vd_handoff_release(struct vdemux_engine *e, uint32_t from)
{
	struct vd_hq *q = vd_hq_of(e->shard.g, from, e->shard.idx);

	if (atomic_load_explicit(&q->tail, memory_order_relaxed) != q->taken)
		atomic_store_explicit(&q->tail, q->taken, memory_order_release);
}

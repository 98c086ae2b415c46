/* SPDX-License-Identifier: MIT */
/* The public calls of a group of shards (include/vdemux/shard.h): the
 * group's creation, each shard's poll of the frames other shards handed to
 * it, and the check that every page of the group has exactly one holder. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <vdemux/shard.h>

#include "common/util.h"
#include "core/deliver.h"
#include "core/diag.h"
#include "core/engine.h"
#include "core/handoff.h"
#include "core/l2_create.h"
#include "core/pool.h"
#include "core/signal.h"

static int group_validate(const struct vdemux_group_opts *o, struct vdemux_arena_info *ai)
{
	uint32_t q = o->queue_len;

	if (!o->arena || o->nshards == 0 || o->nshards > VD_GROUP_MAX_SHARDS ||
	    (q && (q < 2 || q > VD_HQ_MAX || (q & (q - 1)))) || !vd_hooks_valid(&o->alloc))
		return -EINVAL;
	vdemux_arena_info(o->arena, ai);
	if (o->first_page >= ai->npages || o->npages > ai->npages - o->first_page)
		return -EINVAL;
	uint32_t npages = o->npages ? o->npages : ai->npages - o->first_page;
	if (npages < o->nshards)
		return -EINVAL;
	if (o->shard_pages) {
		uint64_t sum = 0;
		for (uint32_t i = 0; i < o->nshards; i++) {
			if (!o->shard_pages[i])
				return -EINVAL;
			sum += o->shard_pages[i];
		}
		if (sum != npages)
			return -EINVAL;
	}
	return 0;
}

/* Each shard's first page: as asked, or equal shares. */
static void group_parts(struct vdemux_group *g, const uint32_t *shard_pages)
{
	for (uint32_t i = 0; i < g->nshards; i++)
		g->part[i + 1] = shard_pages ? g->part[i] + shard_pages[i]
					     : (uint32_t)((uint64_t)g->npages * (i + 1) / g->nshards);
}

static void group_free(struct vdemux_group *g)
{
	struct vdemux_alloc_hooks h = g->alloc;

	vd_group_queues_fini(g);
	if (g->l2)
		vdemux_l2_destroy(g->l2);
	vd_free(&h, g);
}

int vdemux_group_create(vdemux_group **out, const struct vdemux_group_opts *uopts)
{
	struct vdemux_group_opts o;
	struct vdemux_arena_info ai;
	struct vdemux_group *g;
	uint32_t bits = 0;
	int err;

	if (!out || !uopts || vd_opts_check(uopts, sizeof(o)))
		return -EINVAL;
	vd_opts_copy(&o, uopts, sizeof(o));
	if ((err = group_validate(&o, &ai)))
		return err;
	g = vd_calloc(&o.alloc, 1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	while ((1u << bits) < o.nshards)
		bits++;
	g->alloc = o.alloc;
	g->arena = o.arena;
	g->first_page = o.first_page;
	g->npages = o.npages ? o.npages : ai.npages - o.first_page;
	g->nshards = o.nshards;
	group_parts(g, o.shard_pages);
	g->idx_bits = 20u - bits;
	err = vd_group_queues_init(g, o.queue_len ? o.queue_len : VD_HQ_DEFAULT);
	if (!err)
		err = vd_l2_create(&g->l2, o.l2, &g->alloc);
	if (err) {
		group_free(g);
		return err;
	}
	*out = g;
	return 0;
}

int vdemux_group_destroy(vdemux_group *g)
{
	if (!g)
		return 0;
	for (uint32_t i = 0; i < g->nshards; i++)
		if (g->shards[i])
			return -EBUSY;
	group_free(g);
	return 0;
}

int vdemux_shard_idle(vdemux_engine *e)
{
	if (!e)
		return -EINVAL;
	if (!e->shard.g) {
		vd_bad(e, VDEMUX_BAD_OPTS);
		return -EINVAL;
	}
	return vd_handoff_idle(e) ? 1 : 0;
}

vdemux_l2 *vdemux_group_l2(vdemux_group *g)
{
	return g ? g->l2 : NULL;
}

/* Deliver up to @max frames from shard @from's queue; *starved when the
 * pool cannot give pages back for the next. */
static unsigned take_from(struct vdemux_engine *e, uint32_t from, unsigned max, bool *starved)
{
	uint32_t pages[MAX_FRAME_PAGES];
	struct vd_hslot *sl;
	unsigned n = 0;

	while (n < max && (sl = vd_handoff_peek(e, from))) {
		struct vd_offload ol = sl->ol;
		struct vdemux_dest d = sl->d;
		struct vd_src src = {
			.pages = pages, .len = sl->len, .off = sl->off, .ol = sl->has_ol ? &ol : NULL};

		if (!vd_handoff_accept(e, sl, pages)) {
			*starved = true;
			break;
		}
		vd_handoff_settle(e, sl, pages, vd_deliver_to(e, &src, &d));
		vd_handoff_next(e, from);
		n++;
	}
	vd_handoff_release(e, from);
	return n;
}

int vdemux_shard_poll(vdemux_engine *e, unsigned budget)
{
	const struct vdemux_group *g;
	bool starved = false;
	unsigned taken = 0;

	if (!e)
		return -EINVAL;
	g = e->shard.g;
	if (!g || budget == 0) {
		vd_bad(e, g ? VDEMUX_BAD_BURST_ZERO : VDEMUX_BAD_OPTS);
		return -EINVAL;
	}
	/* Each poll starts one shard further, so that a budget spent on the
	 * first queue does not leave the same others waiting every time. */
	vd_handoff_awake(e);
	for (uint32_t k = 0; k < g->nshards && !starved && taken < budget; k++) {
		uint32_t from = e->shard.next + k; /* next < nshards: no division */

		if (from >= g->nshards)
			from -= g->nshards;
		if (from != e->shard.idx)
			taken += take_from(e, from, budget - taken, &starved);
	}
	e->shard.next = e->shard.next + 1 < g->nshards ? e->shard.next + 1 : 0;
	vd_deliver_flush(e); /* applies, publishes what was handed, reaps */
	if (starved)
		vd_signal_release_all(e);
	vd_call_end(e);
	return (int)taken;
}

#define FAIL VD_CHECK_FAIL

/* Count the pages queue (from, to) holds: frames not taken, pages given
 * back not taken back. */
static int count_queue(const struct vdemux_group *g, uint32_t from, uint32_t to, uint8_t *held,
		       char *msg, size_t msglen)
{
	const struct vd_hq *q = vd_hq_of(g, from, to);
	uint32_t head = atomic_load(&((struct vd_hq *)q)->head);
	uint32_t tail = atomic_load(&((struct vd_hq *)q)->tail);

	if (head != q->next || tail != q->taken)
		FAIL("queue %u->%u: not all published (head %u of %u, tail %u of %u)", from, to, head,
		     q->next, tail, q->taken);
	if (head - tail > q->mask + 1 || tail - q->seen > q->mask + 1)
		FAIL("queue %u->%u: indices out of order (%u %u %u)", from, to, q->seen, tail, head);
	for (uint32_t i = q->seen; i != head; i++) {
		const struct vd_hslot *sl = &q->slots[i & q->mask];

		for (uint32_t k = 0; k < sl->np; k++) {
			if (sl->pages[k] >= g->npages)
				FAIL("queue %u->%u: bad page %u", from, to, sl->pages[k]);
			held[sl->pages[k]]++;
		}
	}
	return 0;
}

static int count_holders(const struct vdemux_group *g, uint8_t *held, char *msg, size_t msglen)
{
	int err;

	for (uint32_t s = 0; s < g->nshards; s++) {
		const struct vdemux_engine *e = g->shards[s];

		if (!e)
			FAIL("shard %u does not exist", s);
		if ((err = vdemux_engine_check(e, msg, msglen)))
			return err;
		for (uint32_t p = 0; p < g->npages; p++)
			held[p] += e->pool.pages[p].state != PG_AWAY;
		for (uint32_t t = 0; t < g->nshards; t++)
			if (t != s && (err = count_queue(g, s, t, held, msg, msglen)))
				return err;
	}
	for (uint32_t p = 0; p < g->npages; p++)
		if (held[p] != 1)
			FAIL("page %u: %u holders (shards and queues)", p, held[p]);
	return 0;
}

int vdemux_group_check(const vdemux_group *g, char *msg, size_t msglen)
{
	uint8_t *held;
	int err;

	if (!g)
		return -EINVAL;
	if (msg && msglen)
		msg[0] = '\0';
	held = vd_calloc(&g->alloc, g->npages, 1);
	if (!held)
		return -ENOMEM;
	err = count_holders(g, held, msg, msglen);
	vd_free(&g->alloc, held);
	return err;
}

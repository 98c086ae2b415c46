/* SPDX-License-Identifier: MIT */
/* Planning one delivery: decide flip or copy, take the posted slots and
 * write (or pick) the pages; the tables are changed later, in one batch per
 * VM (apply.c). Planning never applies: with no room it answers
 * VD_PLAN_FULL having changed nothing (deliver.c applies and plans again). */
#include <errno.h>
#include <string.h>

#include "core/cost.h"
#include "core/diag.h"
#include "core/engine.h"
#include "core/frame.h"
#include "core/plan.h"
#include "core/pool.h"
#include "core/ring.h"
#include "core/signal.h"
#include "core/vm.h"

int vd_plan_init(struct vd_plan *pl, uint32_t cap, const struct vdemux_alloc_hooks *alloc)
{
	pl->cap = cap;
	pl->gen = 1;
	pl->pend = vd_calloc(alloc, cap, sizeof(*pl->pend));
	return pl->pend ? 0 : -ENOMEM;
}

void vd_plan_fini(struct vd_plan *pl, const struct vdemux_alloc_hooks *alloc)
{
	vd_free(alloc, pl->pend);
}

/* What stops a delivery of nch chunks (0: nothing); *nfresh is the number
 * of pool pages it needs. */
static int delivery_obstacle(const struct vdemux_engine *e, const struct vm *vm, uint32_t nch, bool copy,
			     bool consume, uint32_t *nfresh)
{
	uint32_t nholes = 0;

	*nfresh = 0;
	if (vm->postq.count < nch && (!vm->chains || !vm->postq.count))
		return VDEMUX_DROP_NO_BUFFER;
	if (vm->chains && vm->slots[vd_postq_peek(&vm->postq, 0)].chain < nch)
		return VDEMUX_DROP_TOO_BIG; /* the head chain cannot hold it */
	if (vd_cq_room(&vm->cq) < nch)
		return VDEMUX_DROP_CQ_FULL;
	for (uint32_t i = 0; i < nch; i++) {
		const struct slot *sl = &vm->slots[vd_postq_peek(&vm->postq, i)];

		if (copy && sl->page != VDEMUX_NO_PAGE)
			continue;
		if (sl->page == VDEMUX_NO_PAGE)
			nholes++;
		if (!consume)
			(*nfresh)++;
	}
	if (vm->held + nholes > vm->quota)
		return VDEMUX_DROP_QUOTA;
	if (*nfresh > e->pool.nfree)
		return VDEMUX_DROP_NO_POOL;
	return 0;
}

/* Append a new entry to the plan, on vm's list. */
static struct pend *plan_append(struct vdemux_engine *e, struct vm *vm)
{
	struct vd_plan *pl = &e->plan;
	uint32_t idx = pl->n++;
	struct pend *pe = &pl->pend[idx];

	if (vm->plan.gen != pl->gen) {
		vm->plan.gen = pl->gen;
		vm->plan.head = idx;
		vm->plan.next = pl->vms;
		pl->vms = vm;
	} else {
		pl->pend[vm->plan.tail].next = idx;
	}
	vm->plan.tail = idx;
	memset(pe, 0, sizeof(*pe));
	pe->vm = vm;
	pe->next = NO_PEND;
	pe->stale_page = VDEMUX_NO_PAGE;
	return pe;
}

/* A VM with a sink takes the frames no posted chain can: copied now by the
 * sink into its buffers. */
static bool use_sink(const struct vm *vm, uint32_t nch)
{
	return vm->sink.copy && (!vm->postq.count || vm->slots[vd_postq_peek(&vm->postq, 0)].chain < nch);
}

static enum vd_plan_res sink_delivery(struct vdemux_engine *e, struct vm *vm, const struct vd_src *src,
				      const struct vdemux_dest *d, uint32_t out_len)
{
	int why = vm->sink.copy(vm->sink.ctx, &e->pool, src, d, out_len);

	if (why) {
		vd_drop(e, &vm->st, why);
		return VD_PLAN_DROPPED;
	}
	vm->st.delivered++;
	vm->st.bytes += out_len;
	vm->st.copies++;
	e->st.delivered++;
	e->st.copies++;
	vd_signal_raise(e, vm, VDEMUX_SIG_RX);
	return VD_PLAN_DONE;
}

/* After a chain VM's delivery took nch slots of the head chain: the rest
 * of the chain is the guest's own again (lazy harvest: still mapped); the
 * chain's owner learns which header goes with it. */
static void chain_taken(struct vm *vm, const struct vd_src *src, uint32_t chain, uint32_t nch)
{
	for (uint32_t i = nch; i < chain; i++)
		vd_vm_take_posted(vm);
	if (vm->sink.planned)
		vm->sink.planned(vm->sink.ctx, src);
}

/* A delivery as vd_plan_delivery() decided it. */
struct dlv {
	const struct vd_src *src;
	const struct vdemux_dest *d;
	uint32_t out_len, nch, off;
	bool copy, consume;
};

/* Take the posted slots and write (or pick) the page of each chunk. */
static void plan_chunks(struct vdemux_engine *e, struct vm *vm, const struct dlv *dl,
			const uint32_t *fresh)
{
	const uint32_t *pages = dl->src->pages;
	uint32_t seq = ++e->plan.frame_seq, nfresh = 0, off = dl->off, out_len = dl->out_len;

	for (uint32_t i = 0; i < dl->nch; i++) {
		uint32_t s = vd_vm_take_posted(vm);
		struct slot *sl = &vm->slots[s];
		struct pend *pe = plan_append(e, vm);
		/* Chunk i: frame bytes [fo, fo + k), at po in its page. */
		uint32_t po = i ? 0 : off, fo = i ? i * PAGE - off : 0;
		uint32_t k = out_len - fo < PAGE - po ? out_len - fo : PAGE - po;

		pe->slot = s;
		pe->len = k;
		pe->off = po;
		pe->flags = i + 1 < dl->nch ? VDEMUX_CPL_MORE : 0;
		pe->frame = seq;
		pe->flen = out_len;
		pe->old_page = sl->page;
		if (dl->copy && sl->page != VDEMUX_NO_PAGE) {
			pe->kind = PEND_COPY;
			pe->new_page = VDEMUX_NO_PAGE;
			pe->flags |= VDEMUX_CPL_COPIED;
			vd_frame_emit(&e->pool, dl->src, dl->d, fo, pg_addr(&e->pool, sl->page) + po, k);
			if (dl->consume)
				vd_pool_put(&e->pool, pages[i]);
			continue;
		}
		if (dl->consume) {
			pe->new_page = pages[i];
		} else {
			pe->new_page = fresh[nfresh++];
			vd_frame_emit(&e->pool, dl->src, dl->d, fo, pg_addr(&e->pool, pe->new_page) + po,
				      k);
			vd_pool_set_dirty(&e->pool, pe->new_page, po + k);
		}
		if (sl->page == VDEMUX_NO_PAGE) {
			pe->kind = PEND_MAP;
			vm->held++; /* reserved now, given back if the map fails */
		} else {
			pe->kind = PEND_REMAP;
		}
	}
}

/* A delivery into the VM's posted pages (no sink): planned, dropped, or
 * the plan is full. */
static enum vd_plan_res plan_pages(struct vdemux_engine *e, struct vm *vm, struct dlv *dl, bool *consumed)
{
	uint32_t nfresh, fresh[MAX_FRAME_PAGES], chain = 0, nch = dl->nch;
	uint64_t t0 = 0;
	int why;

	/* Applying the plan changes queues and the pool: do it before
	 * deciding anything. */
	if (e->plan.n + nch > e->plan.cap || (e->plan.n && e->pool.nfree < nch))
		return VD_PLAN_FULL;
	dl->copy = vm->cost.adaptive ? vd_cost_copy(e, vm, &vm->cost, dl->out_len, nch, dl->consume, &t0)
				     : dl->out_len <= vm->eff_threshold;
	why = delivery_obstacle(e, vm, nch, dl->copy, dl->consume, &nfresh);
	if (why) {
		vd_drop(e, &vm->st, why);
		return VD_PLAN_DROPPED;
	}
	vd_pool_get_run(&e->pool, fresh, nfresh, NULL);
	if (vm->chains)
		chain = vm->slots[vd_postq_peek(&vm->postq, 0)].chain;
	plan_chunks(e, vm, dl, fresh);
	if (chain)
		chain_taken(vm, dl->src, chain, nch);
	vd_cq_reserve(&vm->cq, nch);
	if (t0)
		vd_cost_planned(e, vm, nch, t0);
	vm->st.delivered++;
	vm->st.bytes += dl->out_len;
	e->st.delivered++;
	*consumed = dl->consume;
	return VD_PLAN_DONE;
}

enum vd_plan_res vd_plan_delivery(struct vdemux_engine *e, struct vm *vm, const struct vd_src *src,
				  const struct vdemux_dest *d, bool consume, bool *consumed)
{
	struct dlv dl = {.src = src, .d = d, .off = vm->rx_offset};
	bool bad_action;

	*consumed = false;
	dl.out_len = vd_frame_out_len(src, d, &bad_action);
	if (!dl.out_len) {
		vd_drop(e, &vm->st, bad_action ? VDEMUX_DROP_NO_DEST : VDEMUX_DROP_MALFORMED);
		return VD_PLAN_DROPPED;
	}
	/* The frame's own pages fit only a layout with the same offset. */
	dl.consume = consume && d->action == VDEMUX_VLAN_KEEP && src->pages && src->off == dl.off;
	dl.nch = npages_for(dl.off + dl.out_len);
	if (use_sink(vm, dl.nch))
		return sink_delivery(e, vm, src, d, dl.out_len);
	return plan_pages(e, vm, &dl, consumed);
}

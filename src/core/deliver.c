/* SPDX-License-Identifier: MIT */
/* Delivering a frame: classify it, then plan its delivery to each
 * destination, applying the plan whenever it has no room and planning
 * again. The one module that calls both planning (plan.c) and applying
 * (apply.c); the receive calls (rx.c) go through it. */
#include <string.h>

#include <vdemux/sys/classifier.h>
#include <vdemux/verdict.h>

#include "core/apply.h"
#include "core/deliver.h"
#include "core/diag.h"
#include "core/engine.h"
#include "core/frame.h"
#include "core/handoff.h"
#include "core/offload.h"
#include "core/plan.h"
#include "core/pool.h"
#include "core/vm.h"
#include "core/vmtab.h"

static void free_pages(struct vdemux_engine *e, const uint32_t *pages, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		vd_pool_put(&e->pool, pages[i]);
}

/* Classify with the classifier's read section when it has one: opened at
 * the call's first classification, closed by vd_deliver_leave(). */
static inline __attribute__((always_inline)) int classify(struct vdemux_engine *e, const uint8_t *frame,
							  uint32_t len, struct vdemux_verdict *v)
{
	if (!e->cls_read || !e->cls_many)
		return e->cls->classify(e->cls, frame, len, v);
	if (!e->cls_open) {
		e->cls_token = e->cls->read_begin(e->cls);
		e->cls_open = true;
	}
	return e->cls_read(e->cls, frame, len, v);
}

void vd_deliver_leave(struct vdemux_engine *e)
{
	if (e->cls_open) {
		e->cls_open = false;
		e->cls->read_end(e->cls, e->cls_token);
	}
}

/* The plan had no room: apply it (after closing the classifier's read
 * section: applying calls the backends), then plan again. */
static __attribute__((noinline)) bool plan_again(struct vdemux_engine *e, struct vm *vm,
						 const struct vd_src *src, const struct vdemux_dest *d,
						 bool consume)
{
	bool consumed;

	vd_deliver_leave(e);
	vd_apply_plan(e);
	/* An empty plan always has room. */
	vd_plan_delivery(e, vm, src, d, consume, &consumed);
	return consumed;
}

static bool plan_one(struct vdemux_engine *e, struct vm *vm, const struct vd_src *src,
		     const struct vdemux_dest *d, bool consume)
{
	bool consumed;

	if (vd_plan_delivery(e, vm, src, d, consume, &consumed) == VD_PLAN_FULL)
		return plan_again(e, vm, src, d, consume);
	return consumed;
}

/* One destination: a frame with offload metadata, or a VM that takes a
 * header, goes through offload.c, which plans with plan_one(). */
static bool deliver_one(struct vdemux_engine *e, struct vm *vm, const struct vd_src *src,
			const struct vdemux_dest *d, bool consume)
{
	if (src->ol || vm->vnet_hdr_len)
		return vd_offload_plan(e, vm, src, d, consume, plan_one);
	return plan_one(e, vm, src, d, consume);
}

/* d's VM if it may have the frame's own pages, or NULL. */
static struct vm *may_consume(const struct vdemux_engine *e, const struct vd_src *src,
			      const struct vdemux_dest *d)
{
	struct vm *vm;

	if (d->action != VDEMUX_VLAN_KEEP || !(vm = vd_vm_get(e, d->vm)))
		return NULL;
	/* Without metadata or a header, vd_offload_may_consume() is true. */
	return vd_offload_may_consume(src, vm, d) ? vm : NULL;
}

/* A frame in pages is classified on its first page's bytes; when the frame
 * starts so late in that page that fewer than CLASSIFY_HEAD bytes of it are
 * there, on its first CLASSIFY_HEAD bytes gathered from the next pages
 * (every header a classifier reads, and far more than an L2 one needs). */
#define CLASSIFY_HEAD 256u

static int classify_pages(struct vdemux_engine *e, const struct vd_src *src, struct vdemux_verdict *v)
{
	uint32_t first = PAGE - src->off, want = src->len < CLASSIFY_HEAD ? src->len : CLASSIFY_HEAD;
	uint8_t head[CLASSIFY_HEAD];
	uint32_t got = 0;

	if (first >= want)
		return classify(e, pg_addr(&e->pool, src->pages[0]) + src->off,
				src->len < first ? src->len : first, v);
	for (uint32_t i = 0; got < want; i++) {
		uint32_t from = i ? 0 : src->off, n = PAGE - from;

		if (n > want - got)
			n = want - got;
		memcpy(head + got, pg_addr(&e->pool, src->pages[i]) + from, n);
		got += n;
	}
	return classify(e, head, want, v);
}

/* Several destinations: the last that may have the frame's own pages
 * takes them, the others get replicas, planned first. Returns whether the
 * pages were taken. */
static bool deliver_many(struct vdemux_engine *e, const struct vd_src *src,
			 const struct vdemux_verdict *v)
{
	unsigned n = v->n > v->cap ? v->cap : v->n;
	int consumer = -1;
	struct vm *cvm = NULL;

	for (unsigned k = n; k-- > 0;) {
		if ((cvm = may_consume(e, src, &v->dests[k]))) {
			consumer = (int)k;
			break;
		}
	}
	for (unsigned k = 0; k < n; k++) {
		struct vm *vm;

		if ((int)k == consumer)
			continue; /* known, planned last */
		vm = vd_vm_get(e, v->dests[k].vm);
		if (!vm) {
			vd_handoff_frame(e, src, &v->dests[k], false); /* or UNKNOWN_VM */
			continue;
		}
		deliver_one(e, vm, src, &v->dests[k], false);
	}
	return consumer >= 0 && deliver_one(e, cvm, src, &v->dests[consumer], true);
}

/* A frame's one destination, VM @vm, which may have the frame's own pages
 * (unedited, and as offload.c allows). Returns whether it took them. */
static inline __attribute__((always_inline)) bool
deliver_vm(struct vdemux_engine *e, struct vm *vm, const struct vd_src *src, const struct vdemux_dest *d)
{
	return deliver_one(e, vm, src, d,
			   d->action == VDEMUX_VLAN_KEEP && vd_offload_may_consume(src, vm, d));
}

/* One destination (the common case): its VM, or another shard's (handed
 * over, in the frame's own pages when they are in the pool). Returns
 * whether the pages were taken. */
static bool deliver_single(struct vdemux_engine *e, const struct vd_src *src, const struct vdemux_dest *d)
{
	struct vm *vm = vd_vm_get(e, d->vm);

	if (!vm)
		return vd_handoff_frame(e, src, d, true); /* or UNKNOWN_VM */
	return deliver_vm(e, vm, src, d);
}

/*
 * The frame is classified on its first page (a frame's headers are there).
 * The last destination that takes the frame as it came may have its pages;
 * the others get replicas, planned first: once the consumer has the pages
 * they may be freed (copied) or mapped into its VM. A frame's pages not
 * taken go back to the pool. A destination on another shard gets a replica
 * through its queue (handoff.c); a frame from the caller's memory that a
 * full queue cannot take is left to the caller.
 */
bool vd_deliver_frame(struct vdemux_engine *e, const struct vd_src *src)
{
	struct vdemux_verdict v = {.dests = e->dests, .cap = e->ndests};
	const uint32_t *pages = src->pages;
	uint32_t len = src->len, np = pages ? npages_for(src->off + len) : 0;
	bool consumed;
	int r;

	if (src->ol && (r = vd_offload_check(&e->pool, src, src->ol))) {
		e->st.offload_bad[r - 1]++;
		free_pages(e, pages, np);
		return true;
	}
	if (src->flat)
		r = classify(e, src->flat, len, &v);
	else
		r = classify_pages(e, src, &v);
	if (r < 0 || v.n == 0) {
		vd_drop(e, NULL, r < 0 ? VDEMUX_DROP_NO_DEST : v.drop_reason);
		free_pages(e, pages, np);
		return true;
	}
	if (e->shard.g && src->flat && !vd_handoff_local(&e->shard, &v) && !vd_handoff_room(e, &v))
		return false;
	if (v.n == 1)
		consumed = deliver_single(e, src, &v.dests[0]);
	else
		consumed = deliver_many(e, src, &v);
	if (!consumed)
		free_pages(e, pages, np);
	return true;
}

/* A frame another shard handed over: as deliver_single(), kept apart so
 * that deliver_single() stays inlined in the per-frame path; a VM gone
 * since the frame was handed is UNKNOWN_VM (it is never handed on). */
bool vd_deliver_to(struct vdemux_engine *e, const struct vd_src *src, const struct vdemux_dest *d)
{
	struct vm *vm = vd_vm_get(e, d->vm);

	if (!vm) {
		vd_drop(e, NULL, VDEMUX_DROP_UNKNOWN_VM);
		return false;
	}
	return deliver_vm(e, vm, src, d);
}

void vd_deliver_flush(struct vdemux_engine *e)
{
	vd_deliver_leave(e);
	/* Nothing planned (every copy went to a sink): nothing to apply, and
	 * no VM carries the current generation, which may stay. */
	if (e->plan.vms)
		vd_apply_plan(e);
	if (e->shard.out)
		vd_handoff_publish(e);
}

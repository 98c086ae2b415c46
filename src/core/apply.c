/* SPDX-License-Identifier: MIT */
/* Applying a burst's plan, VM by VM: the maps of holes, then the remaps (or,
 * where a VM's tables cannot remap, the unmaps of the old pages and the
 * maps of the new ones), each in batches; then every delivery that did not
 * get all of its chunks applied is undone (the new pages unmapped, the old
 * ones mapped back), and the others are completed. */
#include <errno.h>
#include <string.h>

#include "core/apply.h"
#include "core/cost.h"
#include "core/diag.h"
#include "core/engine.h"
#include "core/harvest.h"
#include "core/pend.h"
#include "core/pool.h"
#include "core/ring.h"
#include "core/signal.h"
#include "core/tables.h"
#include "core/vm.h"

/* Which entries a pass over a VM's list takes. */
typedef bool (*pick_fn)(const struct pend *pe);

static bool pick_map(const struct pend *pe)
{
	return pe->kind == PEND_MAP;
}
static bool pick_remap(const struct pend *pe)
{
	return pe->kind == PEND_REMAP;
}
static bool pick_remap_unmapped(const struct pend *pe)
{
	return pe->kind == PEND_REMAP && pe->tstate == TS_HOLE;
}
static bool pick_undo(const struct pend *pe)
{
	return pe->tstate == TS_APPLIED && pe->kind != PEND_COPY && pe->failed;
}
/* A failed remap whose slot the rollback left without a page, and whose
 * page is known: its old page is mapped back. */
static bool pick_restore(const struct pend *pe)
{
	return pe->kind == PEND_REMAP && pe->failed && pe->tstate == TS_HOLE &&
	       pe->stale_page == VDEMUX_NO_PAGE;
}

/* Fill the batch from vm's entries, starting at index from, with those
 * pick() selects; new_page: the batch names each entry's new page (else its
 * old one), and the undo entry the other. */
static unsigned gather(struct vdemux_engine *e, struct vm *vm, uint32_t from, pick_fn pick,
		       bool new_page, uint32_t *next)
{
	struct vd_batch *b = &e->batch;
	unsigned n = 0;
	uint32_t i;

	for (i = from; i != NO_PEND && n < b->cap; i = e->plan.pend[i].next) {
		struct pend *pe = &e->plan.pend[i];

		if (!pick(pe))
			continue;
		b->m[n].gpa = slot_gpa(vm, pe->slot);
		b->m[n].page = abs_or_none(&e->pool, new_page ? pe->new_page : pe->old_page);
		b->m[n].pad = 0;
		b->undo[n] = b->m[n];
		b->undo[n].page = abs_or_none(&e->pool, new_page ? pe->old_page : pe->new_page);
		b->idx[n++] = i;
	}
	*next = i;
	return n;
}

/* A backend that refuses a map for lack of resources (KVM: the process's
 * vm.max_map_count; VFIO type1: dma_entry_limit) may take it later, when
 * mappings have been given back: nothing about the frame was wrong. */
static bool lacks_resources(int err)
{
	return err == -ENOMEM || err == -ENOSPC;
}

/* A remap refused for lack of resources, its slot untouched: the slot still
 * maps the VM's own page, so the chunk is copied there instead of being
 * dropped, and the page that carried it goes back to the pool. */
static void remap_to_copy(struct vdemux_engine *e, struct vm *vm, struct pend *pe)
{
	memcpy(pg_addr(&e->pool, pe->old_page) + pe->off, pg_addr(&e->pool, pe->new_page) + pe->off,
	       pe->len);
	vd_pool_put(&e->pool, pe->new_page);
	pe->new_page = VDEMUX_NO_PAGE;
	pe->kind = PEND_COPY;
	pe->flags |= VDEMUX_CPL_COPIED;
	e->st.fallback_copies++;
	vm->st.fallback_copies++;
}

/* Run op over every entry of vm that pick() selects, setting each one's
 * tstate to on_ok when applied, and recording stale pages. A remap refused
 * for lack of resources becomes a copy: the refused entry and the rest of
 * its batch (not tried), unless a rollback left an entry's state unknown. */
static void run(struct vdemux_engine *e, struct vm *vm, enum vd_tbl_op op, pick_fn pick, bool new_page,
		uint8_t on_ok, bool stale_is_new)
{
	uint32_t from = vm->plan.head;

	for (;;) {
		unsigned n = gather(e, vm, from, pick, new_page, &from), done;
		int err;

		if (!n)
			return;
		done = vd_tables_apply(e, vm, op, &e->batch, n, &err);
		for (unsigned k = 0; k < n; k++) {
			struct pend *pe = &e->plan.pend[e->batch.idx[k]];

			if (k < done)
				pe->tstate = on_ok;
			else if (e->batch.stale[k])
				pe->stale_page = stale_is_new ? pe->new_page : pe->old_page;
		}
		if (done < n && op == VD_OP_REMAP && lacks_resources(err)) {
			for (unsigned k = done; k < n; k++) {
				struct pend *pe = &e->plan.pend[e->batch.idx[k]];

				if (!e->batch.stale[k] && pe->tstate == TS_UNTOUCHED)
					remap_to_copy(e, vm, pe);
			}
			continue;
		}
		if (done < n) {
			/* Entries past the failure were not tried: leave them
			 * untouched; they fail with their frame. */
			return;
		}
	}
}

static void apply_tables(struct vdemux_engine *e, struct vm *vm)
{
	run(e, vm, VD_OP_MAP, pick_map, true, TS_APPLIED, true);
	/* remap is used only where it covers every table: a VM with one
	 * backend that has it. */
	if (vm->nbe == 1 && vm->bes[0].be->remap) {
		run(e, vm, VD_OP_REMAP, pick_remap, true, TS_APPLIED, true);
	} else {
		run(e, vm, VD_OP_UNMAP, pick_remap, false, TS_HOLE, false);
		run(e, vm, VD_OP_MAP, pick_remap_unmapped, true, TS_APPLIED, true);
	}
}

/* A failed delivery changes nothing: where a remap of it left its slot a
 * hole (old page unmapped, new page not mapped or unmapped again), map the
 * old page back, in batches that go on past a refused entry so that one
 * refusal does not keep the others from being tried. Not where an undo
 * left the new page in some table. An entry whose rollback failed keeps
 * its old page stale. */
static void restore_old_pages(struct vdemux_engine *e, struct vm *vm)
{
	uint32_t from = vm->plan.head;

	for (;;) {
		unsigned n = gather(e, vm, from, pick_restore, false, &from), done;
		int err;

		if (!n)
			return;
		done = vd_tables_apply(e, vm, VD_OP_MAP, &e->batch, n, &err);
		for (unsigned k = 0; k < n; k++) {
			struct pend *pe = &e->plan.pend[e->batch.idx[k]];

			if (k < done)
				pe->tstate = TS_UNTOUCHED;
			else if (e->batch.stale[k])
				pe->stale_page = pe->old_page;
		}
		/* Past a failed entry: the entries after it were not tried. */
		if (done < n)
			from = e->plan.pend[e->batch.idx[done]].next;
	}
}

/* A delivery is all of its chunks or none: mark failed every entry of a
 * delivery that has a chunk not applied. Entries of one delivery are
 * contiguous on the VM's list. */
static void mark_failed(struct vdemux_engine *e, struct vm *vm)
{
	struct pend *pend = e->plan.pend;

	for (uint32_t i = vm->plan.head; i != NO_PEND;) {
		uint32_t j;
		bool ok = true;

		for (j = i; j != NO_PEND && pend[j].frame == pend[i].frame; j = pend[j].next)
			if (pend[j].kind != PEND_COPY && pend[j].tstate != TS_APPLIED)
				ok = false;
		for (; i != j; i = pend[i].next)
			pend[i].failed = !ok;
	}
}

/* Give back what a failed entry took, leaving the slot posted again (a
 * chain VM's slot is not: its chain goes back to the guest empty), or,
 * where an undo failed, leaving the new page with the VM. */
static void finalize_failed(struct vdemux_engine *e, struct vm *vm, struct pend *pe)
{
	struct slot *sl = &vm->slots[pe->slot];
	bool new_live, old_gone;

	if (pe->kind == PEND_COPY) {
		if (!vm->chains)
			vd_vm_post_slot(vm, pe->slot);
		return;
	}
	if (pe->kind == PEND_MAP)
		vm->held--; /* the reservation made when planned */
	if (pe->kind == PEND_REMAP && pe->tstate == TS_HOLE && pe->stale_page == VDEMUX_NO_PAGE)
		e->st.rollback_failures++; /* the old page could not be mapped back */
	new_live = pe->stale_page == pe->new_page;
	if (!new_live && pe->tstate == TS_APPLIED) {
		/* Its undo failed (or was not tried after an earlier failure):
		 * the new page is still mapped in every table. */
		new_live = true;
		e->st.rollback_failures++;
	}
	/* The old page left the tables, unless a table may still map it (a
	 * failed rollback of its restore): then it stays, stale. */
	old_gone = pe->kind == PEND_REMAP && pe->tstate != TS_UNTOUCHED && pe->stale_page != pe->old_page;
	if (pe->kind == PEND_REMAP && !old_gone && pe->stale_page == pe->old_page)
		vd_pool_set_stale(&e->pool, pe->old_page, true);
	if (old_gone)
		vd_harvest_slot(e, vm, pe->slot);
	if (new_live) {
		/* A failed undo may leave the page reachable by this VM: it
		 * stays with the VM (held, not posted) until it is released. */
		vd_pool_assign(&e->pool, pe->new_page, vm->idx, pe->slot);
		vd_pool_set_stale(&e->pool, pe->new_page, true);
		sl->page = pe->new_page;
		vm->held++;
		return;
	}
	vd_pool_put(&e->pool, pe->new_page);
	if (!vm->chains)
		vd_vm_post_slot(vm, pe->slot);
}

/* The first entry of each delivery carries its accounting. */
static bool first_of_delivery(const struct vdemux_engine *e, uint32_t i)
{
	return i == 0 || e->plan.pend[i - 1].frame != e->plan.pend[i].frame;
}

/* Count a delivery of several pages all flipped, and whether they went to
 * consecutive GPAs in consecutive pages; at its last entry. */
static void count_run(struct vdemux_engine *e, const struct pend *pe, const struct pend *prev,
		      bool *one_run, uint32_t *flipped, uint32_t *chunks)
{
	if (prev && prev->frame == pe->frame) {
		if (pe->kind == PEND_COPY || prev->kind == PEND_COPY || pe->slot != prev->slot + 1 ||
		    pe->new_page != prev->new_page + 1)
			*one_run = false;
	} else {
		*one_run = true;
		*flipped = *chunks = 0;
	}
	(*chunks)++;
	*flipped += pe->kind != PEND_COPY;
	if (!(pe->flags & VDEMUX_CPL_MORE) && *chunks > 1 && *flipped == *chunks) {
		e->st.multi_page_flips++;
		e->st.multi_page_one_run += *one_run;
	}
}

static void complete(struct vdemux_engine *e, struct vm *vm)
{
	const struct pend *prev = NULL;
	uint32_t flipped = 0, chunks = 0;
	bool any = false, one_run = true;

	for (uint32_t i = vm->plan.head; i != NO_PEND; i = e->plan.pend[i].next) {
		struct pend *pe = &e->plan.pend[i];
		struct slot *sl = &vm->slots[pe->slot];

		if (pe->failed) {
			if (vm->chains) {
				vd_cq_commit(&vm->cq, slot_gpa(vm, pe->slot), 0,
					     (pe->flags & VDEMUX_CPL_MORE) | VD_CPL_DROPPED);
				any = true;
			} else {
				vd_cq_cancel(&vm->cq, 1);
			}
			if (first_of_delivery(e, i)) {
				vd_drop(e, &vm->st, VDEMUX_DROP_BACKEND);
				e->st.delivered--;
				vm->st.delivered--;
				vm->st.bytes -= pe->flen;
			}
			finalize_failed(e, vm, pe);
			continue;
		}
		count_run(e, pe, prev, &one_run, &flipped, &chunks);
		prev = pe;
		if (pe->kind == PEND_COPY) {
			e->st.copies++;
			vm->st.copies++;
		} else {
			if (pe->kind == PEND_REMAP) {
				/* Lazy harvest: the old page left every table. */
				vd_harvest_slot(e, vm, pe->slot);
				vm->held++; /* the new page takes its place */
			}
			vd_pool_assign(&e->pool, pe->new_page, vm->idx, pe->slot);
			sl->page = pe->new_page;
			e->st.flips++;
			vm->st.flips++;
		}
		sl->filled = 1;
		vd_cq_commit(&vm->cq, slot_gpa(vm, pe->slot), pe->len, pe->flags);
		e->st.completions++;
		any = true;
	}
	if (any)
		vd_signal_raise(e, vm, VDEMUX_SIG_RX);
}

/* How many of vm's entries are flips (pages mapped carrying a chunk,
 * whether into a hole or over an old page); *copies: the copied chunks. */
static uint32_t flip_count(const struct vdemux_engine *e, const struct vm *vm, uint32_t *copies)
{
	uint32_t pages = 0;

	*copies = 0;
	for (uint32_t i = vm->plan.head; i != NO_PEND; i = e->plan.pend[i].next) {
		const struct pend *pe = &e->plan.pend[i];

		if (pe->failed)
			continue;
		if (pe->kind == PEND_COPY)
			(*copies)++;
		else
			pages++;
	}
	return pages;
}

static void apply_vm(struct vdemux_engine *e, struct vm *vm)
{
	uint32_t pages = 0, copies = 0;
	bool decided = vm->cost.decided, timed = vd_cost_due(vm);
	uint64_t t0 = timed ? vd_cost_clock(e) : 0;

	apply_tables(e, vm);
	mark_failed(e, vm);
	run(e, vm, VD_OP_UNMAP, pick_undo, true, TS_HOLE, true);
	restore_old_pages(e, vm);
	complete(e, vm);
	if (decided) {
		if (timed)
			pages = flip_count(e, vm, &copies);
		vd_cost_end(e, vm, t0, pages, copies);
	}
}

void vd_apply_plan(struct vdemux_engine *e)
{
	for (struct vm *vm = e->plan.vms; vm; vm = vm->plan.next)
		apply_vm(e, vm);
	e->plan.vms = NULL;
	e->plan.n = 0;
	e->plan.gen++;
}

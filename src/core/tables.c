/* SPDX-License-Identifier: MIT */
/* Applying one batch to every translation table of a VM, all or a prefix.
 *
 * Each backend applies a prefix of the batch; the prefix common to all of
 * them is the result. Entries a backend applied past that common prefix are
 * undone in that backend, so that every entry is either applied in every
 * table or in none. An undo that fails leaves the entry's page reachable
 * through some table: the entry is flagged stale and the caller keeps the
 * page assigned to the VM (it is never freed while a VM may reach it). */
#include <errno.h>

#include <vdemux/sys/backend.h>

#include "core/diag.h"
#include "core/engine.h"
#include "core/pool.h"
#include "core/tables.h"
#include "core/vm.h"

int vd_batch_init(struct vd_batch *b, uint32_t cap, const struct vdemux_alloc_hooks *alloc)
{
	b->cap = cap;
	b->m = vd_calloc(alloc, cap, sizeof(*b->m));
	b->undo = vd_calloc(alloc, cap, sizeof(*b->undo));
	b->idx = vd_calloc(alloc, cap, sizeof(*b->idx));
	b->stale = vd_calloc(alloc, cap, sizeof(*b->stale));
	return b->m && b->undo && b->idx && b->stale ? 0 : -ENOMEM;
}

void vd_batch_fini(struct vd_batch *b, const struct vdemux_alloc_hooks *alloc)
{
	vd_free(alloc, b->m);
	vd_free(alloc, b->undo);
	vd_free(alloc, b->idx);
	vd_free(alloc, b->stale);
}

static const char *op_name(enum vd_tbl_op op)
{
	return op == VD_OP_MAP ? "map" : op == VD_OP_UNMAP ? "unmap" : "remap";
}

static vdemux_backend_batch_fn op_fn(const struct vdemux_backend *be, enum vd_tbl_op op)
{
	switch (op) {
	case VD_OP_MAP: return be->map;
	case VD_OP_UNMAP: return be->unmap;
	case VD_OP_REMAP: return be->remap;
	}
	return NULL;
}

/* One backend call. A backend's report is not trusted: *done is clamped to
 * n, and any failure comes back as a negative errno (a positive or zero
 * return with fewer than n entries done is -EIO). */
static int call(struct vdemux_engine *e, const struct be_ref *r, enum vd_tbl_op op,
		const struct vdemux_map *m, unsigned n, unsigned *done)
{
	vdemux_backend_batch_fn fn = op_fn(r->be, op);
	unsigned d = 0;
	int err;

	*done = 0;
	if (n == 0)
		return 0;
	err = fn(r->be, r->ctx, m, n, &d);
	if (d > n)
		d = n;
	if (err > 0 || (!err && d != n))
		err = -EIO;
	if (err) {
		e->st.backend_errors++;
		vd_log(e, VDEMUX_LOG_WARN, "backend %s: %s failed at entry %u of %u: %d",
		       r->be->name ? r->be->name : "?", op_name(op), d, n, err);
	}
	*done = d;
	return err;
}

/* Undo entries [from, to) in one backend; flag those whose undo failed. */
static void undo(struct vdemux_engine *e, const struct be_ref *r, enum vd_tbl_op op,
		 const struct vd_batch *b, unsigned from, unsigned to)
{
	enum vd_tbl_op inv = op == VD_OP_MAP ? VD_OP_UNMAP : op == VD_OP_UNMAP ? VD_OP_MAP : VD_OP_REMAP;
	const struct vdemux_map *src = op == VD_OP_REMAP ? b->undo : b->m;

	while (from < to) {
		unsigned d = 0;

		call(e, r, inv, src + from, to - from, &d);
		from += d;
		if (from < to) {
			/* Give up on this entry, try the rest. */
			b->stale[from] = 1;
			e->st.rollback_failures++;
			from++;
		}
	}
}

unsigned vd_tables_apply(struct vdemux_engine *e, struct vm *vm, enum vd_tbl_op op, struct vd_batch *b,
			 unsigned n, int *err)
{
	/* The VM's backends are fixed while it exists; a local count also tells
	 * the static analyzers that a backend's call cannot change it. */
	const unsigned nbe = vm->nbe;
	unsigned applied[MAX_BACKENDS];
	unsigned lim = n;

	*err = 0;
	for (unsigned i = 0; i < n; i++)
		b->stale[i] = 0;
	for (unsigned k = 0; k < nbe; k++) {
		int r = call(e, &vm->bes[k], op, b->m, lim, &applied[k]);

		if (r && !*err)
			*err = r;
		if (applied[k] < lim)
			lim = applied[k];
	}
	for (unsigned k = 0; k < nbe; k++)
		if (applied[k] > lim)
			undo(e, &vm->bes[k], op, b, lim, applied[k]);
	return lim;
}

void vd_tables_unmap_all(struct vdemux_engine *e, struct vm *vm)
{
	struct vd_batch *b = &e->batch;
	uint32_t s = 0;

	while (s < vm->rx_pages) {
		unsigned n = 0;

		for (; s < vm->rx_pages && n < b->cap; s++) {
			if (vm->slots[s].page == VDEMUX_NO_PAGE)
				continue;
			vd_pool_set_stale(&e->pool, vm->slots[s].page, false); /* tried again now */
			b->m[n].gpa = slot_gpa(vm, s);
			b->m[n].page = abs_page(&e->pool, vm->slots[s].page);
			b->m[n].pad = 0;
			b->idx[n] = s;
			n++;
		}
		if (!n)
			break;
		/* Each backend separately: a failure in one must not keep the
		 * others from unmapping. */
		for (unsigned k = 0; k < vm->nbe; k++) {
			const struct be_ref *r = &vm->bes[k];
			unsigned off = 0;

			while (off < n) {
				unsigned d = 0;
				int err = r->be->unmap(r->be, r->ctx, b->m + off, n - off, &d);

				if (d > n - off)
					d = n - off;
				if (d == n - off) {
					/* All done as reported; a positive return
					 * breaks the contract: counted only. */
					if (err)
						e->st.backend_errors++;
					break;
				}
				if (err >= 0)
					err = -EIO;
				off += d;
				e->st.backend_errors++;
				vd_pool_set_stale(&e->pool, vm->slots[b->idx[off]].page, true);
				vd_log(e, VDEMUX_LOG_ERROR,
				       "VM %u: %s failed to unmap GPA 0x%llx (%d): page quarantined",
				       vm->id, r->be->name ? r->be->name : "?",
				       (unsigned long long)b->m[off].gpa, err);
				off++;
			}
		}
	}
}

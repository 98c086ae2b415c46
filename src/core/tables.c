/* Applying one batch to every translation table of a VM, all or a prefix.
 *
 * Each backend applies a prefix of the batch; the prefix common to all of
 * them is the result. Entries a backend applied past that common prefix are
 * undone in that backend, so that every entry is either applied in every
 * table or in none. An undo that fails leaves the entry's page reachable
 * through some table: the entry is flagged stale and the caller keeps the
 * page assigned to the VM (it is never freed while a VM may reach it). */
#include <errno.h>

#include "core/internal.h"

static vdemux_backend_batch_fn op_fn(const struct vdemux_backend *be, enum tbl_op op)
{
	switch (op) {
	case TBL_MAP:
		return be->map;
	case TBL_UNMAP:
		return be->unmap;
	case TBL_REMAP:
		return be->remap;
	}
	return NULL;
}

static int call(struct vdemux_engine *e, const struct be_ref *r, enum tbl_op op,
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
	if (!err && d != n)
		err = -EIO;
	if (err) {
		e->st.backend_errors++;
		vd_log(e, VDEMUX_LOG_WARN, "backend %s: %s failed at entry %u of %u: %d",
		       r->be->name ? r->be->name : "?",
		       op == TBL_MAP ? "map" : op == TBL_UNMAP ? "unmap" : "remap", d, n, err);
	}
	*done = d;
	return err;
}

/* Undo entries [from, to) in one backend; flag those whose undo failed. */
static void undo(struct vdemux_engine *e, const struct be_ref *r, enum tbl_op op,
		 const struct vdemux_map *m, const struct vdemux_map *m_undo, unsigned from,
		 unsigned to, uint8_t *stale)
{
	enum tbl_op inv = op == TBL_MAP ? TBL_UNMAP : op == TBL_UNMAP ? TBL_MAP : TBL_REMAP;
	const struct vdemux_map *src = op == TBL_REMAP ? m_undo : m;

	while (from < to) {
		unsigned d = 0;

		call(e, r, inv, src + from, to - from, &d);
		from += d;
		if (from < to) {
			/* Give up on this entry, try the rest. */
			stale[from] = 1;
			e->st.rollback_failures++;
			from++;
		}
	}
}

unsigned vd_tables_apply(struct vdemux_engine *e, struct vm *vm, enum tbl_op op,
			 const struct vdemux_map *m, const struct vdemux_map *m_undo, unsigned n,
			 uint8_t *stale, int *err)
{
	unsigned applied[MAX_BACKENDS];
	unsigned lim = n;

	*err = 0;
	for (unsigned i = 0; i < n; i++)
		stale[i] = 0;
	for (unsigned b = 0; b < vm->nbe; b++) {
		int r = call(e, &vm->bes[b], op, m, lim, &applied[b]);

		if (r && !*err)
			*err = r;
		if (applied[b] < lim)
			lim = applied[b];
	}
	for (unsigned b = 0; b < vm->nbe; b++)
		if (applied[b] > lim)
			undo(e, &vm->bes[b], op, m, m_undo, lim, applied[b], stale);
	return lim;
}

/* SPDX-License-Identifier: MIT */
/* The fault-injecting backend wrapper: see fault.h. */
#include <errno.h>
#include <stdlib.h>

#include "fault.h"

static struct vt_fault *fault_of(struct vdemux_backend *be)
{
	return (struct vt_fault *)be;
}

static int fault_attach(struct vdemux_backend *be, const struct vdemux_backend_vm *vm, void **vmctx)
{
	struct vt_fault *f = fault_of(be);
	int rc;

	if (f->attach_err)
		return f->attach_err;
	rc = f->inner->vm_attach(f->inner, vm, vmctx);
	if (rc == 0) {
		f->attached++;
		f->last_vmctx = *vmctx;
		f->last_vm = vm->vm_id;
	}
	return rc;
}

static void fault_detach(struct vdemux_backend *be, void *vmctx)
{
	struct vt_fault *f = fault_of(be);

	f->inner->vm_detach(f->inner, vmctx);
	f->attached--;
}

static vdemux_backend_batch_fn inner_op(struct vt_fault *f, unsigned op)
{
	switch (op) {
	case VT_OP_MAP: return f->inner->map;
	case VT_OP_UNMAP: return f->inner->unmap;
	default: return f->inner->remap;
	}
}

static unsigned op_index(unsigned op)
{
	return op == VT_OP_MAP ? 0 : op == VT_OP_UNMAP ? 1 : 2;
}

static int fault_batch(struct vt_fault *f, unsigned op, void *vmctx, const struct vdemux_map *m,
		       unsigned n, unsigned *done)
{
	vdemux_backend_batch_fn fn = inner_op(f, op);
	unsigned idx;
	int rc;

	f->calls[op_index(op)]++;
	f->entries[op_index(op)] += n;

	if (f->mode == VT_FAULT_OFF || !(f->ops & op) || (f->fired && !f->sticky))
		return fn(f->inner, vmctx, m, n, done);

	if (f->mode == VT_FAULT_CALL) {
		f->seen++;
		if (f->seen == f->nth || (f->sticky && f->seen > f->nth)) {
			f->fired++;
			*done = 0;
			return f->err;
		}
		return fn(f->inner, vmctx, m, n, done);
	}

	/* VT_FAULT_ENTRY: which entry of this batch is the nth counted one */
	if (f->seen + 1 >= f->nth)
		idx = 0; /* sticky, already past the nth */
	else
		idx = f->nth - 1 - f->seen;
	if (idx >= n) {
		f->seen += n;
		return fn(f->inner, vmctx, m, n, done);
	}
	if (idx > 0) {
		unsigned d = 0;

		rc = fn(f->inner, vmctx, m, idx, &d);
		if (rc != 0) {
			/* the inner backend failed on its own first: report it */
			f->seen += d;
			*done = d;
			return rc;
		}
	}
	f->seen += idx + 1;
	f->fired++;
	*done = idx;
	return f->err;
}

static int fault_map(struct vdemux_backend *be, void *vmctx, const struct vdemux_map *m, unsigned n,
		     unsigned *done)
{
	return fault_batch(fault_of(be), VT_OP_MAP, vmctx, m, n, done);
}

static int fault_unmap(struct vdemux_backend *be, void *vmctx, const struct vdemux_map *m, unsigned n,
		       unsigned *done)
{
	return fault_batch(fault_of(be), VT_OP_UNMAP, vmctx, m, n, done);
}

static int fault_remap(struct vdemux_backend *be, void *vmctx, const struct vdemux_map *m, unsigned n,
		       unsigned *done)
{
	return fault_batch(fault_of(be), VT_OP_REMAP, vmctx, m, n, done);
}

static int fault_query(struct vdemux_backend *be, void *vmctx, uint64_t gpa, uint32_t *page)
{
	struct vt_fault *f = fault_of(be);

	return f->inner->query(f->inner, vmctx, gpa, page);
}

static void fault_release(struct vdemux_backend *be)
{
	vt_fault_free(fault_of(be));
}

struct vt_fault *vt_fault_wrap(struct vdemux_backend *inner, bool with_remap)
{
	struct vt_fault *f = calloc(1, sizeof(*f));
	struct vdemux_backend init = VDEMUX_BACKEND_INIT;

	if (!f || !inner)
		abort();
	f->base = init;
	f->base.name = "fault";
	f->base.copy_threshold = inner->copy_threshold;
	f->base.vm_attach = fault_attach;
	f->base.vm_detach = fault_detach;
	f->base.map = fault_map;
	f->base.unmap = fault_unmap;
	f->base.remap = with_remap && inner->remap ? fault_remap : NULL;
	f->base.query = inner->query ? fault_query : NULL;
	f->base.free = fault_release;
	f->inner = inner;
	return f;
}

void vt_fault_free(struct vt_fault *f)
{
	if (!f)
		return;
	if (f->inner && f->inner->free)
		f->inner->free(f->inner);
	free(f);
}

void vt_fault_arm(struct vt_fault *f, unsigned ops, enum vt_fault_mode mode, unsigned nth, int err,
		  bool sticky)
{
	/* err > 0 breaks the backend contract on purpose: for tests of how
	 * the engine takes such a backend. */
	if (nth < 1 || err == 0)
		abort();
	f->ops = ops;
	f->mode = mode;
	f->nth = nth;
	f->err = err;
	f->sticky = sticky;
	f->seen = 0;
	f->fired = 0;
}

void vt_fault_disarm(struct vt_fault *f)
{
	f->mode = VT_FAULT_OFF;
	f->ops = 0;
}

/* SPDX-License-Identifier: MIT */
/* The public VM calls: adding and removing a VM, and the guest-facing calls
 * (post, release, poll, signals, stats). The table of VMs and its lookups
 * are vmtab.c's, a VM's state vm.h's. */
#include <errno.h>
#include <string.h>

#include <vdemux/l2.h>
#include <vdemux/sys/backend.h>
#include <vdemux/sys/classifier.h>
#include <vdemux/vm.h>

#include "common/util.h"
#include "core/cost.h"
#include "core/diag.h"
#include "core/engine.h"
#include "core/harvest.h"
#include "core/pool.h"
#include "core/ring.h"
#include "core/signal.h"
#include "core/tables.h"
#include "core/vm_api.h"
#include "core/vm.h"
#include "core/vmtab.h"

/* ---- add / remove ---- */

static void vm_free(struct vdemux_engine *e, struct vm *vm)
{
	vd_free(&e->alloc, vm->slots);
	vd_free(&e->alloc, vm->postq.q);
	vd_free(&e->alloc, vm->cq.c);
	vd_free(&e->alloc, vm);
}

static void vm_detach_all(struct vm *vm)
{
	for (unsigned b = vm->nbe; b-- > 0;)
		vm->bes[b].be->vm_detach(vm->bes[b].be, vm->bes[b].ctx);
}

static bool backend_registered(const struct vdemux_engine *e, const struct vdemux_backend *be)
{
	for (unsigned i = 0; i < e->nbe; i++)
		if (e->bes[i] == be)
			return true;
	return false;
}

static int vm_validate(struct vdemux_engine *e, const struct vdemux_vm_opts *o)
{
	if (o->rx_pages == 0 || o->rx_pages > VM_MAX_PAGES || (o->rx_base & (PAGE - 1)) ||
	    o->rx_base + (uint64_t)o->rx_pages * PAGE < o->rx_base || o->quota > o->rx_pages ||
	    (o->flags & ~VDEMUX_VM_F_UNPOPULATED) || o->harvest > VDEMUX_HARVEST_LAZY ||
	    o->copy > VDEMUX_COPY_ADAPTIVE)
		return -EINVAL;
	if (!(o->flags & VDEMUX_VM_F_UNPOPULATED) && o->quota && o->quota != o->rx_pages)
		return -EINVAL;
	if (o->n_backends == 0 || o->n_backends > MAX_BACKENDS || !o->backends)
		return -EINVAL;
	for (unsigned i = 0; i < o->n_backends; i++) {
		if (!o->backends[i] || !backend_registered(e, o->backends[i]))
			return -EINVAL;
		for (unsigned j = 0; j < i; j++)
			if (o->backends[j] == o->backends[i])
				return -EINVAL;
	}
	switch (o->signal.kind) {
	case VDEMUX_SIGNAL_NONE: break;
	case VDEMUX_SIGNAL_CALLBACK:
		if (!o->signal.cb)
			return -EINVAL;
		break;
	case VDEMUX_SIGNAL_EVENTFD:
		if (o->signal.fd < 0 ||
		    ((o->signal.flags & VDEMUX_SIGNAL_F_RELEASE_FD) && o->signal.release_fd < 0))
			return -EINVAL;
		break;
	default: return -EINVAL;
	}
	if (o->signal.flags & ~VDEMUX_SIGNAL_F_RELEASE_FD)
		return -EINVAL;
	if ((o->offloads & ~VDEMUX_OFFLOAD_ALL) || (o->offloads && !o->vnet_hdr_len) ||
	    (o->vnet_hdr_len && o->vnet_hdr_len != 10 && o->vnet_hdr_len != 12))
		return -EINVAL;
	return 0;
}

/* The VM's copy policy, DEFAULT resolved: the engine's, and for the
 * engine's DEFAULT, THRESHOLD when it names a threshold, else ADAPTIVE. */
static enum vdemux_copy_policy copy_policy(const struct vdemux_engine *e, const struct vm *vm)
{
	enum vdemux_copy_policy p = vm->copy ? vm->copy : e->copy;
	uint32_t t = vm->copy ? vm->copy_threshold : e->copy_threshold;

	if (p == VDEMUX_COPY_DEFAULT)
		p = t ? VDEMUX_COPY_THRESHOLD : VDEMUX_COPY_ADAPTIVE;
	return p;
}

/* ADAPTIVE: the backends' figure, the adaptive policy's prior. */
static uint32_t effective_threshold(const struct vdemux_engine *e, const struct vm *vm)
{
	enum vdemux_copy_policy p = copy_policy(e, vm);
	uint32_t t = vm->copy ? vm->copy_threshold : e->copy_threshold;

	switch (p) {
	case VDEMUX_COPY_NEVER: return 0;
	case VDEMUX_COPY_ALWAYS: return UINT32_MAX;
	case VDEMUX_COPY_THRESHOLD: return t;
	case VDEMUX_COPY_DEFAULT:
	case VDEMUX_COPY_ADAPTIVE:
	default:
		/* The backends' figure; the most conservative one. */
		t = UINT32_MAX;
		for (unsigned b = 0; b < vm->nbe; b++)
			if (vm->bes[b].be->copy_threshold < t)
				t = vm->bes[b].be->copy_threshold;
		return t;
	}
}

/* Back every slot of the window with a pool page. */
static int vm_populate(struct vdemux_engine *e, struct vm *vm)
{
	struct vd_batch *b = &e->batch;
	uint32_t s = 0;

	if (e->pool.nfree < vm->rx_pages)
		return -ENOBUFS;
	while (s < vm->rx_pages) {
		unsigned n = vm->rx_pages - s < b->cap ? vm->rx_pages - s : b->cap;
		unsigned done;
		int err;

		vd_pool_get(&e->pool, b->idx, n);
		for (unsigned i = 0; i < n; i++) {
			b->m[i].gpa = slot_gpa(vm, s + i);
			b->m[i].page = abs_page(&e->pool, b->idx[i]);
			b->m[i].pad = 0;
			b->undo[i] = b->m[i];
		}
		done = vd_tables_apply(e, vm, VD_OP_MAP, b, n, &err);
		/* Applied and stale entries belong to the VM now; the caller
		 * detaches and reclaims everything on failure. */
		for (unsigned i = 0; i < n; i++) {
			if (i < done || b->stale[i]) {
				vd_pool_assign(&e->pool, b->idx[i], vm->idx, s + i);
				vm->slots[s + i].page = b->idx[i];
				vm->held++;
			} else {
				vd_pool_put(&e->pool, b->idx[i]);
			}
		}
		if (done < n)
			return err;
		s += n;
	}
	return 0;
}

static struct vm *vm_alloc(struct vdemux_engine *e, const struct vdemux_vm_opts *o)
{
	struct vm *vm = vd_calloc(&e->alloc, 1, sizeof(*vm));

	if (!vm)
		return NULL;
	vm->slots = vd_calloc(&e->alloc, o->rx_pages, sizeof(*vm->slots));
	vm->postq.q = vd_calloc(&e->alloc, o->rx_pages, sizeof(*vm->postq.q));
	vm->postq.cap = o->rx_pages;
	vm->cq.cap = o->rx_pages * 2u;
	vm->cq.c = vd_calloc(&e->alloc, vm->cq.cap, sizeof(*vm->cq.c));
	if (!vm->slots || !vm->postq.q || !vm->cq.c) {
		vm_free(e, vm);
		return NULL;
	}
	for (uint32_t s = 0; s < o->rx_pages; s++)
		vm->slots[s].page = VDEMUX_NO_PAGE;
	return vm;
}

static int vm_attach_all(struct vdemux_engine *e, struct vm *vm, const struct vdemux_vm_opts *o)
{
	for (unsigned b = 0; b < o->n_backends; b++) {
		struct vdemux_backend_vm info = {
			.vm_id = vm->id,
			.rx_base = o->rx_base,
			.rx_pages = o->rx_pages,
			.arena = e->ai,
			.engine_first_page = e->pool.first_page,
			.engine_npages = e->pool.npages,
		};
		int err;

		vm->bes[b].be = o->backends[b];
		err = o->backends[b]->vm_attach(o->backends[b], &info, &vm->bes[b].ctx);
		if (err) {
			vm_detach_all(vm);
			return err < 0 ? err : -EIO;
		}
		vm->nbe = b + 1;
	}
	return 0;
}

int vdemux_vm_add(vdemux_engine *e, vdemux_vm_id *out_id, const struct vdemux_vm_opts *uopts)
{
	struct vdemux_vm_opts o;
	struct vm *vm;
	uint32_t idx;
	int err;

	if (!e)
		return -EINVAL;
	if (!out_id || !uopts) {
		vd_bad(e, VDEMUX_BAD_NULL);
		return -EINVAL;
	}
	if (vd_opts_check(uopts, sizeof(o))) {
		vd_bad(e, VDEMUX_BAD_OPTS);
		return -EINVAL;
	}
	vd_opts_copy(&o, uopts, sizeof(o));
	err = vm_validate(e, &o);
	if (err) {
		vd_bad(e, VDEMUX_BAD_OPTS);
		return err;
	}
	for (idx = 0; idx < e->vmt.max && e->vmt.vms[idx]; idx++)
		;
	if (idx == e->vmt.max)
		return -ENOSPC;
	if (!(o.flags & VDEMUX_VM_F_UNPOPULATED) && e->pool.nfree < o.rx_pages)
		return -ENOBUFS;

	vm = vm_alloc(e, &o);
	if (!vm)
		return -ENOMEM;
	vm->idx = idx;
	vm->id = ((uint32_t)(e->vmt.gen[idx] & 0xfffu) << VM_IDX_BITS) | (e->vmt.base + idx + 1u);
	vm->rx_base = o.rx_base;
	vm->rx_pages = o.rx_pages;
	vm->quota = o.quota ? o.quota : o.rx_pages;
	vm->flags = o.flags;
	vm->harvest = o.harvest ? o.harvest : e->harvest;
	vm->copy = o.copy;
	vm->copy_threshold = o.copy_threshold;
	vm->offloads = o.offloads;
	vm->vnet_hdr_len = o.vnet_hdr_len;
	vm->sig.cfg = o.signal;
	err = vm_attach_all(e, vm, &o);
	if (err) {
		vm_free(e, vm);
		return err;
	}
	vm->eff_threshold = effective_threshold(e, vm);
	vd_vm_cost_init(&vm->cost, copy_policy(e, vm) == VDEMUX_COPY_ADAPTIVE, vm->eff_threshold,
			vm->harvest == VDEMUX_HARVEST_EAGER);

	e->vmt.vms[idx] = vm;
	if (!(o.flags & VDEMUX_VM_F_UNPOPULATED)) {
		err = vm_populate(e, vm);
		if (err) {
			vd_tables_unmap_all(e, vm);
			vm_detach_all(vm);
			vd_harvest_all(e, vm);
			e->vmt.vms[idx] = NULL;
			vm_free(e, vm);
			return err;
		}
	}
	e->vmt.n++;
	*out_id = vm->id;
	vd_call_end(e);
	vd_log(e, VDEMUX_LOG_INFO, "VM %u added: %u pages at 0x%llx", vm->id, vm->rx_pages,
	       (unsigned long long)vm->rx_base);
	return 0;
}

/* The VM @id of @e into *out: 0; -EINVAL (no engine); -ENOENT (no such VM,
 * counted by vd_vm_find). */
static int vm_lookup(struct vdemux_engine *e, vdemux_vm_id id, struct vm **out)
{
	if (!e)
		return -EINVAL;
	*out = vd_vm_find(e, id);
	return *out ? 0 : -ENOENT;
}

int vdemux_vm_remove(vdemux_engine *e, vdemux_vm_id id)
{
	struct vm *vm;
	int err = vm_lookup(e, id, &vm);

	if (err)
		return err;
	vd_tables_unmap_all(e, vm);
	vm_detach_all(vm);
	vd_harvest_all(e, vm);
	if (e->cls && e->cls->vm_removed)
		e->cls->vm_removed(e->cls, id);
	if (e->cls != vdemux_l2_classifier(e->l2))
		vdemux_l2_remove_vm(e->l2, id);
	e->vmt.vms[vm->idx] = NULL;
	e->vmt.gen[vm->idx]++; /* the id is not reused soon */
	e->vmt.n--;
	/* Signals are sent at the end of every call; the list is empty here
	 * unless a caller broke the rules. Never leave the VM on it. */
	vd_signal_forget(e, vm);
	vm_free(e, vm);
	vd_call_end(e);
	return 0;
}

/* ---- post / release ---- */

/* A new duplicate-detection stamp for slot.mark. */
static uint32_t next_mark(struct vdemux_engine *e)
{
	uint32_t mark = ++e->vmt.mark;

	if (mark == 0) {
		/* Stamp wrapped: reset every mark so that none matches. */
		for (uint32_t i = 0; i < e->vmt.max; i++)
			if (e->vmt.vms[i])
				for (uint32_t s = 0; s < e->vmt.vms[i]->rx_pages; s++)
					e->vmt.vms[i]->slots[s].mark = 0;
		mark = e->vmt.mark = 1;
	}
	return mark;
}

/* Common validation of a GPA list, stopping at the first bad GPA (its
 * error wins). want_held: every slot must hold a page that is not posted
 * (release); else: not posted (post). */
static int gpas_validate(struct vdemux_engine *e, struct vm *vm, const uint64_t *gpas, unsigned n,
			 bool want_held)
{
	uint32_t mark = next_mark(e);

	for (unsigned i = 0; i < n; i++) {
		uint64_t g = gpas[i];
		struct slot *sl;

		if (g & (PAGE - 1)) {
			vd_bad(e, VDEMUX_BAD_GPA_ALIGN);
			return -EINVAL;
		}
		if (g < vm->rx_base || (g - vm->rx_base) / PAGE >= vm->rx_pages) {
			vd_bad(e, VDEMUX_BAD_GPA_RANGE);
			return -ERANGE;
		}
		sl = &vm->slots[(g - vm->rx_base) / PAGE];
		if (sl->mark == mark ||
		    (want_held ? (sl->posted || sl->page == VDEMUX_NO_PAGE) : sl->posted)) {
			vd_bad(e, want_held ? VDEMUX_BAD_NOT_HELD : VDEMUX_BAD_POST_TWICE);
			return want_held ? -EPERM : -EALREADY;
		}
		sl->mark = mark;
	}
	return 0;
}

/* Post (or release) a burst of GPAs: checks, then harvest. */
static int post_or_release(struct vdemux_engine *e, vdemux_vm_id id, const uint64_t *gpas, unsigned n,
			   bool post)
{
	struct vm *vm;
	int err;

	if (!e)
		return -EINVAL;
	err = vd_check_burst(e, gpas, n);
	if (err)
		return err;
	vm = vd_vm_find(e, id);
	if (!vm)
		return -ENOENT;
	err = gpas_validate(e, vm, gpas, n, !post);
	if (err)
		return err;
	err = vd_harvest_gpas(e, vm, gpas, n, !post || vm->harvest == VDEMUX_HARVEST_EAGER, post);
	vd_call_end(e);
	return err;
}

int vd_vm_post_chain(struct vdemux_engine *e, struct vm *vm, const uint64_t *gpas, unsigned n)
{
	int err;

	if (!n || n > UINT16_MAX || vm->harvest != VDEMUX_HARVEST_LAZY)
		return -EINVAL;
	err = gpas_validate(e, vm, gpas, n, false);
	if (err)
		return err;
	/* Lazy harvest: nothing to unmap, so this cannot fail part-way. */
	err = vd_harvest_gpas(e, vm, gpas, n, false, true);
	if (err != (int)n)
		return err < 0 ? err : -EIO;
	vm->slots[(gpas[0] - vm->rx_base) / PAGE].chain = (uint16_t)n;
	for (unsigned i = 1; i < n; i++)
		vm->slots[(gpas[i] - vm->rx_base) / PAGE].chain = 0;
	return 0;
}

int vdemux_vm_post_rx(vdemux_engine *e, vdemux_vm_id id, const uint64_t *gpas, unsigned n)
{
	return post_or_release(e, id, gpas, n, true);
}

int vdemux_vm_release(vdemux_engine *e, vdemux_vm_id id, const uint64_t *gpas, unsigned n)
{
	return post_or_release(e, id, gpas, n, false);
}

int vdemux_vm_poll(vdemux_engine *e, vdemux_vm_id id, struct vdemux_completion *out, unsigned n)
{
	struct vm *vm;
	unsigned k;

	if (!e)
		return -EINVAL;
	if (!out) {
		vd_bad(e, VDEMUX_BAD_NULL);
		return -EINVAL;
	}
	vm = vd_vm_find(e, id);
	if (!vm)
		return -ENOENT;
	for (k = 0; k < n && vd_cq_pop(&vm->cq, &out[k]); k++)
		;
	return (int)k;
}

int vdemux_vm_take_signals(vdemux_engine *e, vdemux_vm_id id)
{
	struct vm *vm;
	int err = vm_lookup(e, id, &vm);
	unsigned r;

	if (err)
		return err;
	r = vm->sig.pending;
	vm->sig.pending = 0;
	return (int)r;
}

int vdemux_vm_request_release(vdemux_engine *e, vdemux_vm_id id)
{
	struct vm *vm;
	int err = vm_lookup(e, id, &vm);

	if (err)
		return err;
	vd_signal_raise(e, vm, VDEMUX_SIG_RELEASE);
	vd_signal_flush(e);
	return 0;
}

int vdemux_vm_stats(const vdemux_engine *e, vdemux_vm_id id, struct vdemux_vm_stats *out, size_t size)
{
	struct vdemux_vm_stats s;
	const struct vm *vm;

	if (!e || !out)
		return -EINVAL;
	/* An unknown id is bad input, counted like everywhere else: the
	 * counters are the one thing this const call may change (calls on
	 * one engine are serialised, engine.h). */
	vm = vd_vm_find((struct vdemux_engine *)e, id);
	if (!vm)
		return -ENOENT;
	s = vm->st;
	s.held = vm->held;
	s.posted = vm->postq.count;
	s.pending = vm->cq.count;
	memcpy(out, &s, size < sizeof(s) ? size : sizeof(s));
	return 0;
}

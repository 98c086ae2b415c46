#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "core/internal.h"

/* ---- signals ---- */

void vd_vm_raise(struct vdemux_engine *e, struct vm *vm, unsigned reasons)
{
	if (!vm->burst_reasons) {
		vm->sig_next = e->sig_list;
		e->sig_list = vm;
	}
	vm->burst_reasons |= reasons;
}

static void signal_fd(int fd)
{
	uint64_t one = 1;

	/* An eventfd write only fails if the counter would overflow: then
	 * the reader has a signal pending anyway. */
	(void)!write(fd, &one, sizeof(one));
}

void vd_signals_flush(struct vdemux_engine *e)
{
	while (e->sig_list) {
		struct vm *vm = e->sig_list;
		unsigned r = vm->burst_reasons;

		e->sig_list = vm->sig_next;
		vm->sig_next = NULL;
		vm->burst_reasons = 0;
		vm->pending_reasons |= r;
		if (r & VDEMUX_SIG_RELEASE)
			e->st.release_requests++;
		switch (vm->sig.kind) {
		case VDEMUX_SIGNAL_CALLBACK:
			vm->sig.cb(vm->id, r, vm->sig.payload);
			break;
		case VDEMUX_SIGNAL_EVENTFD:
			if ((r & VDEMUX_SIG_RELEASE) && (vm->sig.flags & VDEMUX_SIGNAL_F_RELEASE_FD)) {
				signal_fd(vm->sig.release_fd);
				if (r & VDEMUX_SIG_RX)
					signal_fd(vm->sig.fd);
			} else {
				signal_fd(vm->sig.fd);
			}
			break;
		default:
			break;
		}
		e->st.signals++;
		vm->st.signals++;
	}
}

void vd_check_watermark(struct vdemux_engine *e)
{
	if (!e->low_watermark)
		return;
	if (e->nfree >= 2ull * e->low_watermark || e->nfree == e->npages) {
		e->release_armed = true;
		return;
	}
	if (e->nfree >= e->low_watermark || !e->release_armed)
		return;
	e->release_armed = false;
	for (uint32_t i = 0; i < e->max_vms; i++) {
		struct vm *vm = e->vms[i];

		if (vm && vm->held)
			vd_vm_raise(e, vm, VDEMUX_SIG_RELEASE);
	}
}

bool vd_cq_push(struct vm *vm, uint64_t gpa, uint32_t len, uint16_t flags)
{
	struct vdemux_completion *c;

	if (vm->cq_count == vm->cq_cap)
		return false;
	c = &vm->cq[(vm->cq_head + vm->cq_count) % vm->cq_cap];
	c->gpa = gpa;
	c->len = len;
	c->flags = flags;
	c->pad = 0;
	vm->cq_count++;
	return true;
}

/* ---- add / remove ---- */

static void vm_free(struct vdemux_engine *e, struct vm *vm)
{
	vd_free(&e->alloc, vm->slots);
	vd_free(&e->alloc, vm->postq);
	vd_free(&e->alloc, vm->cq);
	vd_free(&e->alloc, vm);
}

static uint64_t slot_gpa(const struct vm *vm, uint32_t s)
{
	return vm->rx_base + (uint64_t)s * PAGE;
}

/* Unmap every page of the VM's window from each of its tables, going on past
 * failures. A page some table failed to unmap is flagged stale. */
static void vm_unmap_all(struct vdemux_engine *e, struct vm *vm)
{
	uint32_t s = 0;

	while (s < vm->rx_pages) {
		unsigned n = 0;

		for (; s < vm->rx_pages && n < e->mbuf_cap; s++) {
			if (vm->slots[s].page == VDEMUX_NO_PAGE)
				continue;
			e->pages[vm->slots[s].page].stale = 0; /* tried again now */
			e->mbuf[n].gpa = slot_gpa(vm, s);
			e->mbuf[n].page = abs_page(e, vm->slots[s].page);
			e->mbuf[n].pad = 0;
			e->ibuf[n] = s;
			n++;
		}
		if (!n)
			break;
		/* Each backend separately: a failure in one must not keep the
		 * others from unmapping. */
		for (unsigned b = 0; b < vm->nbe; b++) {
			unsigned off = 0;

			while (off < n) {
				unsigned d = 0;
				int err = vm->bes[b].be->unmap(vm->bes[b].be, vm->bes[b].ctx,
							       e->mbuf + off, n - off, &d);

				if (d > n - off)
					d = n - off;
				if (!err && d == n - off)
					break;
				off += d;
				e->st.backend_errors++;
				e->pages[vm->slots[e->ibuf[off]].page].stale = 1;
				vd_log(e, VDEMUX_LOG_ERROR,
				       "VM %u: %s failed to unmap GPA 0x%llx (%d): page quarantined",
				       vm->id, vm->bes[b].be->name ? vm->bes[b].be->name : "?",
				       (unsigned long long)e->mbuf[off].gpa, err);
				off++;
			}
		}
	}
}

static void vm_detach_all(struct vm *vm)
{
	for (unsigned b = vm->nbe; b-- > 0;)
		vm->bes[b].be->vm_detach(vm->bes[b].be, vm->bes[b].ctx);
}

/* Give every page of the window back to the pool (the tables are gone),
 * except those a table failed to unmap: they are quarantined. */
static void vm_reclaim_all(struct vdemux_engine *e, struct vm *vm)
{
	for (uint32_t s = 0; s < vm->rx_pages; s++) {
		uint32_t p = vm->slots[s].page;

		if (p == VDEMUX_NO_PAGE)
			continue;
		vm->slots[s].page = VDEMUX_NO_PAGE;
		if (e->pages[p].stale)
			vd_page_quarantine(e, p);
		else
			vd_page_reclaim(e, p);
	}
	vm->held = 0;
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
	    o->rx_base + (uint64_t)o->rx_pages * PAGE < o->rx_base ||
	    o->quota > o->rx_pages || (o->flags & ~VDEMUX_VM_F_UNPOPULATED) ||
	    o->harvest > VDEMUX_HARVEST_LAZY || o->copy > VDEMUX_COPY_THRESHOLD)
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
	case VDEMUX_SIGNAL_NONE:
		break;
	case VDEMUX_SIGNAL_CALLBACK:
		if (!o->signal.cb)
			return -EINVAL;
		break;
	case VDEMUX_SIGNAL_EVENTFD:
		if (o->signal.fd < 0 ||
		    ((o->signal.flags & VDEMUX_SIGNAL_F_RELEASE_FD) && o->signal.release_fd < 0))
			return -EINVAL;
		break;
	default:
		return -EINVAL;
	}
	if (o->signal.flags & ~VDEMUX_SIGNAL_F_RELEASE_FD)
		return -EINVAL;
	return 0;
}

static uint32_t effective_threshold(const struct vdemux_engine *e, const struct vm *vm)
{
	enum vdemux_copy_policy p = vm->copy ? vm->copy : e->copy;
	uint32_t t = vm->copy ? vm->copy_threshold : e->copy_threshold;

	switch (p) {
	case VDEMUX_COPY_NEVER:
		return 0;
	case VDEMUX_COPY_ALWAYS:
		return UINT32_MAX;
	case VDEMUX_COPY_THRESHOLD:
		return t;
	case VDEMUX_COPY_DEFAULT:
	default:
		if (t)
			return t;
		/* The backends' measured figure; the most conservative one. */
		t = UINT32_MAX;
		for (unsigned b = 0; b < vm->nbe; b++)
			if (vm->bes[b].be->copy_threshold < t)
				t = vm->bes[b].be->copy_threshold;
		return t;
	}
}

static int vm_populate(struct vdemux_engine *e, struct vm *vm)
{
	uint32_t s = 0;

	if (e->nfree < vm->rx_pages)
		return -ENOMEM;
	while (s < vm->rx_pages) {
		unsigned n = vm->rx_pages - s < e->mbuf_cap ? vm->rx_pages - s : e->mbuf_cap;
		unsigned done;
		int err;

		vd_pool_get(e, e->ibuf, n);
		for (unsigned i = 0; i < n; i++) {
			e->mbuf[i].gpa = slot_gpa(vm, s + i);
			e->mbuf[i].page = abs_page(e, e->ibuf[i]);
			e->mbuf[i].pad = 0;
		}
		done = vd_tables_apply(e, vm, TBL_MAP, e->mbuf, e->mbuf, n, e->sbuf, &err);
		/* Applied and stale entries belong to the VM now; the caller
		 * detaches and reclaims everything on failure. */
		for (unsigned i = 0; i < n; i++) {
			if (i < done || e->sbuf[i]) {
				vd_page_assign(e, e->ibuf[i], vm, s + i);
				vm->slots[s + i].page = e->ibuf[i];
				vm->held++;
			} else {
				vd_pool_put(e, e->ibuf[i]);
			}
		}
		if (done < n)
			return err ? err : -EIO;
		s += n;
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
	for (idx = 0; idx < e->max_vms && e->vms[idx]; idx++)
		;
	if (idx == e->max_vms)
		return -ENOSPC;
	if (!(o.flags & VDEMUX_VM_F_UNPOPULATED) && e->nfree < o.rx_pages)
		return -ENOMEM;

	vm = vd_calloc(&e->alloc, 1, sizeof(*vm));
	if (!vm)
		return -ENOMEM;
	vm->slots = vd_calloc(&e->alloc, o.rx_pages, sizeof(*vm->slots));
	vm->postq = vd_calloc(&e->alloc, o.rx_pages, sizeof(*vm->postq));
	vm->cq_cap = o.rx_pages * 2u;
	vm->cq = vd_calloc(&e->alloc, vm->cq_cap, sizeof(*vm->cq));
	if (!vm->slots || !vm->postq || !vm->cq) {
		vm_free(e, vm);
		return -ENOMEM;
	}
	for (uint32_t s = 0; s < o.rx_pages; s++)
		vm->slots[s].page = VDEMUX_NO_PAGE;
	vm->idx = idx;
	vm->id = ((uint32_t)(e->vm_gen[idx] & 0xfffu) << VM_IDX_BITS) | (idx + 1u);
	vm->rx_base = o.rx_base;
	vm->rx_pages = o.rx_pages;
	vm->quota = o.quota ? o.quota : o.rx_pages;
	vm->flags = o.flags;
	vm->harvest = o.harvest ? o.harvest : e->harvest;
	vm->copy = o.copy;
	vm->copy_threshold = o.copy_threshold;
	vm->sig = o.signal;

	for (unsigned b = 0; b < o.n_backends; b++) {
		struct vdemux_backend_vm info = {
			.vm_id = vm->id,
			.rx_base = o.rx_base,
			.rx_pages = o.rx_pages,
			.arena = e->ai,
			.engine_first_page = e->first_page,
			.engine_npages = e->npages,
		};

		vm->bes[b].be = o.backends[b];
		err = o.backends[b]->vm_attach(o.backends[b], &info, &vm->bes[b].ctx);
		if (err) {
			vm_detach_all(vm);
			vm_free(e, vm);
			return err < 0 ? err : -EIO;
		}
		vm->nbe = b + 1;
	}
	vm->eff_threshold = effective_threshold(e, vm);

	e->vms[idx] = vm;
	if (!(o.flags & VDEMUX_VM_F_UNPOPULATED)) {
		err = vm_populate(e, vm);
		if (err) {
			vm_unmap_all(e, vm);
			vm_detach_all(vm);
			vm_reclaim_all(e, vm);
			e->vms[idx] = NULL;
			vm_free(e, vm);
			return err;
		}
	}
	e->nvms++;
	*out_id = vm->id;
	vd_check_watermark(e);
	vd_signals_flush(e);
	vd_log(e, VDEMUX_LOG_INFO, "VM %u added: %u pages at 0x%llx", vm->id, vm->rx_pages,
	       (unsigned long long)vm->rx_base);
	return 0;
}

int vdemux_vm_remove(vdemux_engine *e, vdemux_vm_id id)
{
	struct vm *vm;

	if (!e)
		return -EINVAL;
	vm = vd_vm_find(e, id);
	if (!vm)
		return -ENOENT;
	vm_unmap_all(e, vm);
	vm_detach_all(vm);
	vm_reclaim_all(e, vm);
	if (e->cls && e->cls->vm_removed)
		e->cls->vm_removed(e->cls, id);
	if (e->cls != vdemux_l2_classifier(e->l2))
		vdemux_l2_remove_vm(e->l2, id);
	e->vms[vm->idx] = NULL;
	e->vm_gen[vm->idx]++; /* the id is not reused soon */
	e->nvms--;
	/* Signals are sent at the end of every call; the list is empty here
	 * unless a caller broke the rules. Never leave the VM on it. */
	for (struct vm **pp = &e->sig_list; *pp; pp = &(*pp)->sig_next)
		if (*pp == vm) {
			*pp = vm->sig_next;
			break;
		}
	vm_free(e, vm);
	vd_check_watermark(e);
	vd_signals_flush(e);
	return 0;
}

/* ---- post / release ---- */

/* Common validation of a GPA list. want_held: every slot must hold a page
 * that is not posted (release); else: not posted (post). */
static int gpas_validate(struct vdemux_engine *e, struct vm *vm, const uint64_t *gpas, unsigned n,
			 bool want_held)
{
	uint32_t mark = ++e->mark;

	if (mark == 0) {
		/* Stamp wrapped: reset every mark so that none matches. */
		for (uint32_t i = 0; i < e->max_vms; i++)
			if (e->vms[i])
				for (uint32_t s = 0; s < e->vms[i]->rx_pages; s++)
					e->vms[i]->slots[s].mark = 0;
		mark = e->mark = 1;
	}
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
		if (sl->mark == mark) {
			vd_bad(e, want_held ? VDEMUX_BAD_NOT_HELD : VDEMUX_BAD_POST_TWICE);
			return want_held ? -EPERM : -EALREADY;
		}
		if (want_held ? (sl->posted || sl->page == VDEMUX_NO_PAGE) : sl->posted) {
			vd_bad(e, want_held ? VDEMUX_BAD_NOT_HELD : VDEMUX_BAD_POST_TWICE);
			return want_held ? -EPERM : -EALREADY;
		}
		sl->mark = mark;
	}
	return 0;
}

void vd_postq_push(struct vm *vm, uint32_t s)
{
	vm->postq[(vm->pq_head + vm->pq_count) % vm->rx_pages] = s;
	vm->pq_count++;
	vm->slots[s].posted = 1;
}

/* Harvest the pages of the listed slots (when unmap is true) and post or
 * just release them. Returns how many GPAs were handled, gpas[0, ret). */
static int harvest(struct vdemux_engine *e, struct vm *vm, const uint64_t *gpas, unsigned n,
		   bool unmap, bool post)
{
	unsigned i = 0;
	int first_err = 0;

	while (i < n) {
		unsigned c0 = i, nm = 0, done, cut;
		int err = 0;

		/* Gather the next chunk of pages to unmap. */
		for (; i < n; i++) {
			struct slot *sl = &vm->slots[(gpas[i] - vm->rx_base) / PAGE];

			if (!unmap || sl->page == VDEMUX_NO_PAGE)
				continue;
			if (nm == e->mbuf_cap)
				break;
			e->mbuf[nm].gpa = gpas[i];
			e->mbuf[nm].page = abs_page(e, sl->page);
			e->mbuf[nm].pad = 0;
			e->ibuf[nm] = i;
			nm++;
		}
		done = nm ? vd_tables_apply(e, vm, TBL_UNMAP, e->mbuf, e->mbuf, nm, e->sbuf, &err) : 0;
		cut = done < nm ? e->ibuf[done] : i;
		for (unsigned k = done; k < nm; k++)
			if (e->sbuf[k])
				e->pages[vm->slots[(gpas[e->ibuf[k]] - vm->rx_base) / PAGE].page].stale = 1;
		for (unsigned k = c0; k < cut; k++) {
			uint32_t s = (uint32_t)((gpas[k] - vm->rx_base) / PAGE);
			struct slot *sl = &vm->slots[s];

			if (unmap && sl->page != VDEMUX_NO_PAGE) {
				vd_page_reclaim(e, sl->page);
				sl->page = VDEMUX_NO_PAGE;
				vm->held--;
				vm->st.harvests++;
			}
			sl->filled = 0;
			if (post)
				vd_postq_push(vm, s);
		}
		if (done < nm) {
			first_err = err ? err : -EIO;
			i = cut;
			break;
		}
	}
	vd_check_watermark(e);
	vd_signals_flush(e);
	return i == 0 && first_err ? first_err : (int)i;
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
	return harvest(e, vm, gpas, n, !post || vm->harvest == VDEMUX_HARVEST_EAGER, post);
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
	for (k = 0; k < n && vm->cq_count; k++) {
		out[k] = vm->cq[vm->cq_head];
		vm->cq_head = (vm->cq_head + 1) % vm->cq_cap;
		vm->cq_count--;
	}
	return (int)k;
}

int vdemux_vm_take_signals(vdemux_engine *e, vdemux_vm_id id)
{
	struct vm *vm;
	unsigned r;

	if (!e)
		return -EINVAL;
	vm = vd_vm_find(e, id);
	if (!vm)
		return -ENOENT;
	r = vm->pending_reasons;
	vm->pending_reasons = 0;
	return (int)r;
}

int vdemux_vm_request_release(vdemux_engine *e, vdemux_vm_id id)
{
	struct vm *vm;

	if (!e)
		return -EINVAL;
	vm = vd_vm_find(e, id);
	if (!vm)
		return -ENOENT;
	vd_vm_raise(e, vm, VDEMUX_SIG_RELEASE);
	vd_signals_flush(e);
	return 0;
}

int vdemux_vm_stats(const vdemux_engine *e, vdemux_vm_id id, struct vdemux_vm_stats *out, size_t size)
{
	struct vdemux_vm_stats s;
	const struct vm *vm;

	if (!e || !out)
		return -EINVAL;
	vm = vd_vm_get(e, id);
	if (!vm)
		return -ENOENT;
	s = vm->st;
	s.held = vm->held;
	s.posted = vm->pq_count;
	s.pending = vm->cq_count;
	memcpy(out, &s, size < sizeof(s) ? size : sizeof(s));
	return 0;
}

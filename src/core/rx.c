/* Receive paths: place frames in pool pages, classify, plan each delivery
 * (flip or copy) and apply the plans of a burst in batches, one batch per
 * VM and kind of table change. */
#include <errno.h>
#include <string.h>

#include "core/internal.h"

static uint32_t npages_for(uint32_t len)
{
	return (len + PAGE - 1) / PAGE;
}

/* Copy bytes [off, off + n) of the frame to dst. */
static void src_read(const struct vdemux_engine *e, const struct vd_src *src, uint32_t off,
		     uint8_t *dst, uint32_t n)
{
	const uint32_t *pages = src->pages;

	if (src->flat) {
		memcpy(dst, src->flat + off, n);
		return;
	}
	while (n) {
		uint32_t in = off % PAGE, k = PAGE - in < n ? PAGE - in : n;

		memcpy(dst, pg_addr(e, pages[off / PAGE]) + in, k);
		dst += k;
		off += k;
		n -= k;
	}
}

/* Bytes [off, off + n) of what destination d receives: the frame with the
 * first tag edited as d says. */
static void emit(const struct vdemux_engine *e, const struct vd_src *pages, const struct vdemux_dest *d,
		 uint32_t off, uint8_t *dst, uint32_t n)
{
	uint8_t tag[4] = {(uint8_t)(d->tpid >> 8), (uint8_t)d->tpid, (uint8_t)(d->tci >> 8),
			  (uint8_t)d->tci};
	uint32_t end = off + n;

	if (d->action == VDEMUX_VLAN_KEEP) {
		src_read(e, pages, off, dst, n);
		return;
	}
	/* Output regions: [0,12) MACs; [12,16) the tag, for PUSH and SET;
	 * the rest from the source shifted by delta. */
	while (off < end) {
		uint32_t k;

		if (off < 12) {
			k = (end < 12 ? end : 12) - off;
			src_read(e, pages, off, dst, k);
		} else if (d->action != VDEMUX_VLAN_STRIP && off < 16) {
			k = (end < 16 ? end : 16) - off;
			memcpy(dst, tag + (off - 12), k);
		} else {
			/* STRIP: out j = src j + 4; PUSH: src j - 4; SET: src j. */
			uint32_t s = d->action == VDEMUX_VLAN_STRIP ? off + 4
				     : d->action == VDEMUX_VLAN_PUSH ? off - 4 : off;

			k = end - off;
			src_read(e, pages, s, dst, k);
		}
		dst += k;
		off += k;
	}
}

static void drop(struct vdemux_engine *e, struct vm *vm, int reason)
{
	if (reason <= 0 || reason >= VDEMUX_DROP__COUNT)
		reason = VDEMUX_DROP_NO_DEST;
	e->st.drops[reason]++;
	if (vm)
		vm->st.drops[reason]++;
}

static void free_pages(struct vdemux_engine *e, const uint32_t *pages, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		vd_pool_put(e, pages[i]);
}

/* Plan the delivery of a frame to one VM. When consume is set, the frame's
 * own pages may be flipped (the frame is delivered as it came), and every
 * page of it not used is freed here. Returns true if the pages were
 * consumed (used or freed). A frame without pages of its own (src->flat)
 * is copied straight into the VM's buffer, or into fresh pool pages that
 * are then flipped. */
static bool deliver_one(struct vdemux_engine *e, struct vm *vm, const struct vd_src *src,
			const struct vdemux_dest *d, bool consume)
{
	const uint32_t *pages = src->pages;
	uint32_t len = src->len, out_len = len, nch, nholes = 0, nfresh = 0, fresh[MAX_FRAME_PAGES], seq;
	bool copy;

	if (d->action == VDEMUX_VLAN_STRIP || d->action == VDEMUX_VLAN_SET) {
		if (len < ETH_HLEN + 4) {
			drop(e, vm, VDEMUX_DROP_MALFORMED);
			return false;
		}
		if (d->action == VDEMUX_VLAN_STRIP)
			out_len = len - 4;
	} else if (d->action == VDEMUX_VLAN_PUSH) {
		out_len = len + 4; /* at most max_frame + 4: MAX_FRAME_PAGES allows it */
	} else if (d->action != VDEMUX_VLAN_KEEP) {
		drop(e, vm, VDEMUX_DROP_NO_DEST);
		return false;
	}
	consume = consume && d->action == VDEMUX_VLAN_KEEP && pages;
	nch = npages_for(out_len);
	/* Applying the pending plans changes queues and the pool: do it
	 * before deciding anything. */
	if (e->npend + nch > e->pend_cap || (e->npend && e->nfree < nch))
		vd_flush_pending(e);
	if (vm->pq_count < nch) {
		drop(e, vm, VDEMUX_DROP_NO_BUFFER);
		return false;
	}
	if (vm->cq_cap - vm->cq_count - vm->cq_pending < nch) {
		drop(e, vm, VDEMUX_DROP_CQ_FULL);
		return false;
	}
	copy = out_len <= vm->eff_threshold;
	for (uint32_t i = 0; i < nch; i++) {
		const struct slot *sl = &vm->slots[vm->postq[(vm->pq_head + i) % vm->rx_pages]];

		if (copy && sl->page != VDEMUX_NO_PAGE)
			continue;
		if (sl->page == VDEMUX_NO_PAGE)
			nholes++;
		if (!consume)
			nfresh++;
	}
	if (vm->held + nholes > vm->quota) {
		drop(e, vm, VDEMUX_DROP_QUOTA);
		return false;
	}
	if (nfresh > e->nfree) {
		drop(e, vm, VDEMUX_DROP_NO_POOL);
		return false;
	}
	vd_pool_get(e, fresh, nfresh);

	seq = ++e->frame_seq;
	nfresh = 0;
	for (uint32_t i = 0; i < nch; i++) {
		uint32_t s = vm->postq[vm->pq_head];
		struct slot *sl = &vm->slots[s];
		uint32_t idx = e->npend++;
		struct pend *pe = &e->pend[idx];
		uint32_t off = i * PAGE, k = out_len - off < PAGE ? out_len - off : PAGE;

		vm->pq_head = (vm->pq_head + 1) % vm->rx_pages;
		vm->pq_count--;
		sl->posted = 0;
		pe->vm = vm;
		pe->next = NO_SLOT;
		if (vm->pend_gen != e->pend_gen) {
			vm->pend_gen = e->pend_gen;
			vm->pend_head = idx;
			vm->pend_vm_next = e->pend_vms;
			e->pend_vms = vm;
		} else {
			e->pend[vm->pend_tail].next = idx;
		}
		vm->pend_tail = idx;
		pe->slot = s;
		pe->len = k;
		pe->flags = i + 1 < nch ? VDEMUX_CPL_MORE : 0;
		pe->frame = seq;
		pe->flen = out_len;
		pe->tstate = TS_UNTOUCHED;
		pe->stale_page = VDEMUX_NO_PAGE;
		pe->old_page = sl->page;
		if (copy && sl->page != VDEMUX_NO_PAGE) {
			pe->kind = PEND_COPY;
			pe->new_page = VDEMUX_NO_PAGE;
			pe->flags |= VDEMUX_CPL_COPIED;
			emit(e, src, d, off, pg_addr(e, sl->page), k);
			if (consume)
				vd_pool_put(e, pages[i]);
			continue;
		}
		if (consume) {
			pe->new_page = pages[i];
		} else {
			pe->new_page = fresh[nfresh++];
			emit(e, src, d, off, pg_addr(e, pe->new_page), k);
			e->pages[pe->new_page].dirty = k;
		}
		if (sl->page == VDEMUX_NO_PAGE) {
			pe->kind = PEND_MAP;
			vm->held++;
		} else {
			pe->kind = PEND_REMAP;
		}
	}
	vm->cq_pending += nch;
	vm->st.delivered++;
	vm->st.bytes += out_len;
	e->st.delivered++;
	return consume;
}

int vd_deliver_frame(struct vdemux_engine *e, const struct vd_src *src)
{
	struct vdemux_verdict v = {.dests = e->dests, .cap = e->max_vms};
	const uint32_t *pages = src->pages;
	uint32_t len = src->len, np = pages ? npages_for(len) : 0;
	int consumer = -1, r;
	bool consumed = false;

	if (src->flat)
		r = e->cls->classify(e->cls, src->flat, len, &v);
	else
		r = e->cls->classify(e->cls, pg_addr(e, pages[0]), len < PAGE ? len : PAGE, &v);
	if (r < 0 || v.n == 0) {
		drop(e, NULL, r < 0 ? VDEMUX_DROP_NO_DEST : v.drop_reason);
		free_pages(e, pages, np);
		return 0;
	}
	if (v.n > v.cap)
		v.n = v.cap;
	/* The last destination that takes the frame as it came may have its
	 * pages; the others get replicas. */
	for (unsigned k = v.n; k-- > 0;) {
		if (v.dests[k].action == VDEMUX_VLAN_KEEP && vd_vm_get(e, v.dests[k].vm)) {
			consumer = (int)k;
			break;
		}
	}
	/* Replicas first: once the consumer has the pages, they may be freed
	 * (copied) or mapped into its VM. */
	for (unsigned k = 0; k < v.n; k++) {
		struct vm *vm = vd_vm_get(e, v.dests[k].vm);

		if (!vm) {
			drop(e, NULL, VDEMUX_DROP_UNKNOWN_VM);
			continue;
		}
		if ((int)k != consumer)
			deliver_one(e, vm, src, &v.dests[k], false);
	}
	if (consumer >= 0)
		consumed = deliver_one(e, vd_vm_get(e, v.dests[consumer].vm), src,
				       &v.dests[consumer], true);
	if (!consumed)
		free_pages(e, pages, np);
	return 0;
}

/* ---- applying the plans ---- */

/* Fill e->mbuf (and mbuf2 with the inverse entries) from the pending
 * entries of vm selected by pick(); e->ibuf maps batch index -> pend index. */
typedef bool (*pick_fn)(const struct pend *pe);

static uint32_t abs_or_none(const struct vdemux_engine *e, uint32_t p)
{
	return p == VDEMUX_NO_PAGE ? p : abs_page(e, p);
}

/* Gather from the VM's list of entries, starting at index from. */
static unsigned gather(struct vdemux_engine *e, struct vm *vm, uint32_t from, pick_fn pick,
		       bool new_page, uint32_t *next)
{
	unsigned n = 0;
	uint32_t i;

	for (i = from; i != NO_SLOT && n < e->mbuf_cap; i = e->pend[i].next) {
		struct pend *pe = &e->pend[i];

		if (!pick(pe))
			continue;
		e->mbuf[n].gpa = vm->rx_base + (uint64_t)pe->slot * PAGE;
		e->mbuf[n].page = abs_or_none(e, new_page ? pe->new_page : pe->old_page);
		e->mbuf[n].pad = 0;
		e->mbuf2[n] = e->mbuf[n];
		e->mbuf2[n].page = abs_or_none(e, new_page ? pe->old_page : pe->new_page);
		e->ibuf[n++] = i;
	}
	*next = i;
	return n;
}

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
	return pe->tstate == TS_APPLIED && pe->kind != PEND_COPY && pe->pad;
}

/* Run op over every entry of vm that pick() selects, setting each one's
 * tstate to on_ok when applied, and recording stale pages. */
static void run(struct vdemux_engine *e, struct vm *vm, enum tbl_op op, pick_fn pick, bool new_page,
		uint8_t on_ok, bool stale_is_new)
{
	uint32_t from = vm->pend_head;

	for (;;) {
		unsigned n = gather(e, vm, from, pick, new_page, &from), done;
		int err;

		if (!n)
			return;
		done = vd_tables_apply(e, vm, op, e->mbuf, e->mbuf2, n, e->sbuf, &err);
		for (unsigned k = 0; k < n; k++) {
			struct pend *pe = &e->pend[e->ibuf[k]];

			if (k < done)
				pe->tstate = on_ok;
			else if (e->sbuf[k])
				pe->stale_page = stale_is_new ? pe->new_page : pe->old_page;
		}
		if (done < n) {
			/* Entries past the failure were not tried: leave them
			 * untouched; they fail with their frame. */
			return;
		}
	}
}

static void finalize_failed(struct vdemux_engine *e, struct vm *vm, struct pend *pe)
{
	struct slot *sl = &vm->slots[pe->slot];
	bool new_live, old_gone;

	if (pe->kind == PEND_COPY) {
		vd_postq_push(vm, pe->slot);
		return;
	}
	if (pe->kind == PEND_MAP)
		vm->held--; /* the reservation made when planned */
	new_live = pe->stale_page == pe->new_page;
	if (!new_live && pe->tstate == TS_APPLIED) {
		/* Its undo failed (or was not tried after an earlier failure):
		 * the new page is still mapped in every table. */
		new_live = true;
		e->st.rollback_failures++;
	}
	old_gone = pe->kind == PEND_REMAP && pe->tstate != TS_UNTOUCHED;
	if (pe->kind == PEND_REMAP && !old_gone && pe->stale_page == pe->old_page)
		e->pages[pe->old_page].stale = 1;
	if (old_gone) {
		vd_page_reclaim(e, pe->old_page);
		vm->st.harvests++;
		sl->page = VDEMUX_NO_PAGE;
		vm->held--;
	}
	if (new_live) {
		/* A failed undo may leave the page reachable by this VM: it
		 * stays with the VM (held, not posted) until it is released. */
		vd_page_assign(e, pe->new_page, vm, pe->slot);
		e->pages[pe->new_page].stale = 1;
		sl->page = pe->new_page;
		vm->held++;
		return;
	}
	vd_pool_put(e, pe->new_page);
	vd_postq_push(vm, pe->slot);
}

static void flush_vm(struct vdemux_engine *e, struct vm *vm)
{
	bool any = false;

	run(e, vm, TBL_MAP, pick_map, true, TS_APPLIED, true);
	if (vm->nbe == 1 && vm->bes[0].be->remap) {
		run(e, vm, TBL_REMAP, pick_remap, true, TS_APPLIED, true);
	} else {
		/* Unmap the old pages, then map the new ones. */
		run(e, vm, TBL_UNMAP, pick_remap, false, TS_HOLE, false);
		run(e, vm, TBL_MAP, pick_remap_unmapped, true, TS_APPLIED, true);
	}

	/* A delivery is all of its chunks or none: mark (pad = 1) every entry
	 * of a delivery that has a chunk not applied, and undo the applied
	 * ones. Entries of one delivery are contiguous. */
	for (uint32_t i = vm->pend_head; i != NO_SLOT;) {
		uint32_t j;
		bool ok = true;

		for (j = i; j != NO_SLOT && e->pend[j].frame == e->pend[i].frame; j = e->pend[j].next)
			if (e->pend[j].kind != PEND_COPY && e->pend[j].tstate != TS_APPLIED)
				ok = false;
		for (; i != j; i = e->pend[i].next)
			e->pend[i].pad = !ok;
	}
	run(e, vm, TBL_UNMAP, pick_undo, true, TS_HOLE, true);

	for (uint32_t i = vm->pend_head; i != NO_SLOT; i = e->pend[i].next) {
		struct pend *pe = &e->pend[i];
		struct slot *sl = &vm->slots[pe->slot];

		vm->cq_pending--;
		if (pe->pad) {
			if (i == 0 || e->pend[i - 1].frame != pe->frame) {
				drop(e, vm, VDEMUX_DROP_BACKEND);
				e->st.delivered--;
				vm->st.delivered--;
				vm->st.bytes -= pe->flen;
			}
			finalize_failed(e, vm, pe);
			continue;
		}
		if (pe->kind == PEND_COPY) {
			e->st.copies++;
			vm->st.copies++;
		} else {
			if (pe->kind == PEND_REMAP) {
				vd_page_reclaim(e, pe->old_page);
				vm->st.harvests++;
			}
			vd_page_assign(e, pe->new_page, vm, pe->slot);
			sl->page = pe->new_page;
			e->st.flips++;
			vm->st.flips++;
		}
		sl->filled = 1;
		vd_cq_push(vm, vm->rx_base + (uint64_t)pe->slot * PAGE, pe->len, pe->flags);
		e->st.completions++;
		any = true;
	}
	if (any)
		vd_vm_raise(e, vm, VDEMUX_SIG_RX);
}

void vd_flush_pending(struct vdemux_engine *e)
{
	for (struct vm *vm = e->pend_vms; vm; vm = vm->pend_vm_next)
		flush_vm(e, vm);
	e->pend_vms = NULL;
	e->npend = 0;
	e->pend_gen++;
}

/* ---- API ---- */

static int frames_validate(struct vdemux_engine *e, const struct vdemux_frame *f, unsigned n)
{
	int err = vd_check_burst(e, f, n);

	if (err)
		return err;
	for (unsigned i = 0; i < n; i++) {
		if (!f[i].data) {
			vd_bad(e, VDEMUX_BAD_NULL);
			return -EINVAL;
		}
		if (f[i].len < ETH_HLEN) {
			vd_bad(e, VDEMUX_BAD_FRAME_LEN);
			return -EINVAL;
		}
		if (f[i].len > e->max_frame) {
			vd_bad(e, VDEMUX_BAD_FRAME_LEN);
			return -EMSGSIZE;
		}
	}
	return 0;
}

static void burst_end(struct vdemux_engine *e)
{
	vd_flush_pending(e);
	vd_check_watermark(e);
	vd_signals_flush(e);
}

int vdemux_rx_burst(vdemux_engine *e, const struct vdemux_frame *frames, unsigned n)
{
	unsigned i;
	int err;

	if (!e)
		return -EINVAL;
	err = frames_validate(e, frames, n);
	if (err)
		return err;
	for (i = 0; i < n; i++) {
		uint32_t len = frames[i].len, np = npages_for(len);

		if (e->nfree < np && e->npend)
			vd_flush_pending(e);
		if (e->nfree < np) {
			/* Ask for pages back whatever the watermark says. */
			for (uint32_t k = 0; k < e->max_vms; k++)
				if (e->vms[k] && e->vms[k]->held)
					vd_vm_raise(e, e->vms[k], VDEMUX_SIG_RELEASE);
			break;
		}
		/* The frame is copied once: into each destination's buffer, or
		 * into the pool pages that are flipped to it. */
		e->st.rx_frames++;
		e->st.rx_bytes += len;
		vd_deliver_frame(e, &(struct vd_src){.flat = frames[i].data, .len = len});
	}
	burst_end(e);
	return i == 0 ? -ENOBUFS : (int)i;
}

int vdemux_rx_alloc(vdemux_engine *e, struct vdemux_rx_buf *bufs, unsigned n)
{
	uint32_t p;
	unsigned k;
	int err;

	if (!e)
		return -EINVAL;
	err = vd_check_burst(e, bufs, n);
	if (err)
		return err;
	for (k = 0; k < n && vd_pool_get(e, &p, 1); k++) {
		e->pages[p].lent = 1;
		/* The device may write anywhere in the page. */
		e->pages[p].dirty = PAGE;
		bufs[k].data = pg_addr(e, p);
		bufs[k].arena_off = (uint64_t)abs_page(e, p) * PAGE;
		bufs[k].id = p;
		bufs[k].len = 0;
		bufs[k].flags = 0;
		bufs[k].pad = 0;
	}
	vd_check_watermark(e);
	vd_signals_flush(e);
	return (int)k;
}

/* Every id lent and unique (uses the lent flag as a mark: 1 = lent,
 * 2 = seen in this call). */
static int bufs_validate(struct vdemux_engine *e, const struct vdemux_rx_buf *b, unsigned n,
			 bool frames)
{
	int err = vd_check_burst(e, b, n);
	unsigned i;
	uint32_t flen = 0;

	if (err)
		return err;
	for (i = 0; i < n && !err; i++) {
		uint32_t id = b[i].id;

		if (id >= e->npages || e->pages[id].state != PG_FILLING || e->pages[id].lent != 1) {
			vd_bad(e, VDEMUX_BAD_RX_BUF);
			err = -EBADF;
			break;
		}
		e->pages[id].lent = 2;
		if (!frames)
			continue;
		if (b[i].len == 0 || b[i].len > PAGE || (b[i].flags & ~VDEMUX_RXBUF_MORE) ||
		    ((b[i].flags & VDEMUX_RXBUF_MORE) && b[i].len != PAGE) ||
		    (b[i].flags & VDEMUX_RXBUF_MORE && i + 1 == n)) {
			vd_bad(e, VDEMUX_BAD_FRAME_LEN);
			err = -EINVAL;
			i++;
			break;
		}
		flen += b[i].len;
		if (!(b[i].flags & VDEMUX_RXBUF_MORE)) {
			if (flen < ETH_HLEN || flen > e->max_frame) {
				vd_bad(e, VDEMUX_BAD_FRAME_LEN);
				err = flen < ETH_HLEN ? -EINVAL : -EMSGSIZE;
				i++;
				break;
			}
			flen = 0;
		} else if (flen >= e->max_frame) {
			vd_bad(e, VDEMUX_BAD_FRAME_LEN);
			err = -EMSGSIZE;
			i++;
			break;
		}
	}
	while (i-- > 0)
		if (b[i].id < e->npages && e->pages[b[i].id].lent == 2)
			e->pages[b[i].id].lent = 1;
	return err;
}

int vdemux_rx_submit(vdemux_engine *e, const struct vdemux_rx_buf *bufs, unsigned n)
{
	uint32_t pages[MAX_FRAME_PAGES];
	unsigned i = 0;
	int err;

	if (!e)
		return -EINVAL;
	err = bufs_validate(e, bufs, n, true);
	if (err)
		return err;
	while (i < n) {
		uint32_t np = 0, len = 0;

		do {
			uint32_t p = bufs[i].id;

			/* Clear what the device may have written past the frame. */
			if (bufs[i].len < PAGE)
				memset(pg_addr(e, p) + bufs[i].len, 0, PAGE - bufs[i].len);
			e->pages[p].dirty = bufs[i].len;
			e->pages[p].lent = 0;
			pages[np++] = p;
			len += bufs[i].len;
		} while (bufs[i++].flags & VDEMUX_RXBUF_MORE);
		e->st.rx_frames++;
		e->st.rx_bytes += len;
		vd_deliver_frame(e, &(struct vd_src){.pages = pages, .len = len});
	}
	burst_end(e);
	return (int)n;
}

int vdemux_rx_abort(vdemux_engine *e, const struct vdemux_rx_buf *bufs, unsigned n)
{
	int err;

	if (!e)
		return -EINVAL;
	err = bufs_validate(e, bufs, n, false);
	if (err)
		return err;
	for (unsigned i = 0; i < n; i++)
		vd_pool_put(e, bufs[i].id);
	vd_check_watermark(e);
	vd_signals_flush(e);
	return (int)n;
}

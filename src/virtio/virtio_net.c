/* SPDX-License-Identifier: MIT */
/*
 * virtio-net receive queues on the engine (include/vdemux/virtio_net.h).
 *
 * A queue is an engine VM whose window is all of guest RAM, harvested
 * lazily, with a receive offset and chains; the queue reaches it through
 * src/core/vmq.h only. Buffers taken from the ring go one of two ways:
 * - a big-packet chain that can be flipped is posted to the engine as a
 *   chain of pages; the engine lays each frame out at the chain's data
 *   offset and flips (or copies) it there; its completions come back here
 *   at the end of the engine call (the VM's signal), where the header is
 *   written and the used entry pushed;
 * - any other buffer (mergeable, small, a big chain that cannot be
 *   flipped) waits here; the engine hands the frames that no chain can
 *   take to sink_copy(), which copies them in (header, then frame, across
 *   as many mergeable buffers as it needs) and pushes the used entries
 *   (after those of the chains delivered before, still in flight: dq).
 * The used ring is published, and the guest interrupted if it asks for it,
 * once per engine call.
 */
#include <errno.h>
#include <string.h>

#include <vdemux/sim.h>
#include <vdemux/sys/backend.h>
#include <vdemux/virtio_net.h>

#include "common/util.h"
#include "core/frame.h"
#include "core/offload.h"
#include "core/signal.h"
#include "core/vmq.h"
#include "virtio/vnet_rx.h"
#include "virtio/vring.h"

#define VNET_MAX_SEGS 64u /* longest chain taken; Linux posts at most 19 */
#define VNET_HDR_MAX 20u  /* with VIRTIO_NET_F_HASH_REPORT */

/* A chain posted to the engine as pages, waiting for its frame. */
struct fchain {
	uint64_t first_gpa; /* the page holding the header */
	struct vd_vhdr vh;  /* the offload metadata its header carries */
	uint32_t len;	    /* frame bytes completed so far */
	uint16_t head;
	bool failed;
	bool flipped;
};

/* A buffer waiting to be copied into. */
struct cbuf {
	uint32_t seg0; /* first segment in the segment ring */
	uint32_t nseg;
	uint32_t cap; /* bytes it takes */
	uint16_t head;
};

/* A used entry of a copy that waits for the chains delivered before it. */
struct dpush {
	uint64_t after; /* pushed once this many chains have completed */
	uint32_t len;
	uint16_t head;
};

struct vdemux_vnet_rxq {
	vdemux_engine *eng;
	vdemux_vm_id id;
	struct vm *vm;		      /* the queue's VM: lives as long as the queue */
	vdemux_vm_id ram_id;	      /* a queue sharing guest RAM: the VM that owns it; 0: this one */
	bool ram_far;		      /* sharing the RAM of a queue on another shard (all_backed()) */
	enum vdemux_copy_policy copy; /* as created: whether another shard's queue may share (can_share()) */
	struct vdemux_backend *own_be; /* a sharing queue's placeholder backend (share_ram()) */
	struct vd_gmem gm;
	struct vdemux_signal irq;

	struct vd_vring *vq; /* NULL when stopped */
	uint32_t fq_taken;   /* chains at the head of fq the engine has filled, not yet completed */
	uint64_t features;
	uint32_t hdr_len;
	bool mrg;

	struct fchain *fq; /* FIFO, in the order posted to the engine */
	uint32_t fq_cap, fq_head, fq_n;
	struct cbuf *cq; /* FIFO */
	uint32_t cq_cap, cq_head, cq_n;
	struct vd_vring_seg *segs; /* ring of the waiting buffers' segments */
	uint32_t seg_cap, seg_head, seg_n;
	struct dpush *dq; /* FIFO: copies done while chains were in flight */
	uint32_t dq_head, dq_n;
	uint64_t chains_done; /* page chains completed (to order dq) */

	uint64_t ring_skipped; /* the ring's counts already added to st */
	uint64_t ring_errs;

	struct vd_vring_seg pop_segs[VNET_MAX_SEGS];
	uint64_t pages[VNET_MAX_SEGS];
	struct vdemux_vnet_rxq_stats st;
};

static struct vm *rxq_vm(const struct vdemux_vnet_rxq *q)
{
	return vd_vmq_get(q->eng, q->id);
}

/* The VM whose window backs guest RAM: the queue's own, or for a queue
 * sharing it, the owner's (looked up: NULL once it is removed). */
static const struct vm *ram_vm(const struct vdemux_vnet_rxq *q)
{
	return q->ram_id ? vd_vmq_get(q->eng, q->ram_id) : q->vm;
}

/* Segments come from the ring, inside guest RAM, which is the window: when
 * every page of it is backed, so is each of them.
 *
 * A queue sharing the RAM of a queue on another shard never looks at the
 * owner: the owner's VM is its shard's, read and written on that shard's
 * thread only. It need not: such an owner copies always (can_share()), so
 * it never flips; its VM was created with every page of guest RAM backed,
 * lazy harvest takes no page away, and only a flip (a hole mapped, or a
 * failed flip's rollback) could leave a page unbacked. So guest RAM stays
 * backed for as long as the owner lives, which the VMM makes longer than
 * this queue's (virtio_net.h, ram_of). */
static bool all_backed(const struct vdemux_vnet_rxq *q)
{
	if (q->ram_far)
		return true;
	const struct vm *rv = ram_vm(q);
	return rv && vd_vmq_all_backed(q->eng, rv);
}

/* ---- interrupts ---- */

/* The guest's interrupt goes out the way the engine's signals do. */
static void interrupt(struct vdemux_vnet_rxq *q)
{
	if (vd_signal_send(&q->irq, q->id, VDEMUX_SIG_RX))
		q->st.interrupts++;
}

/* Make what was pushed visible, and interrupt the guest if it asks. A
 * broken ring is written no more. */
static void publish(struct vdemux_vnet_rxq *q)
{
	if (!q->vq || vd_vring_broken(q->vq) || !vd_vring_publish(q->vq))
		return;
	if (vd_vring_need_notify(q->vq))
		interrupt(q);
	else
		q->st.no_interrupt++;
}

/* ---- the header ---- */

/* The offloads the guest's receive queue takes, from the negotiated
 * features (VIRTIO 1.x 5.1.3; Linux 6.1 offers CSUM, TSO4, TSO6, ECN and
 * UFO, not USO). */
static uint32_t guest_offloads(uint64_t f)
{
	static const struct {
		unsigned bit;
		uint32_t offload;
	} map[] = {
		{1, VDEMUX_OFFLOAD_CSUM},  {7, VDEMUX_OFFLOAD_TSO4}, {8, VDEMUX_OFFLOAD_TSO6},
		{9, VDEMUX_OFFLOAD_ECN},   {10, VDEMUX_OFFLOAD_UFO}, {54, VDEMUX_OFFLOAD_USO4},
		{55, VDEMUX_OFFLOAD_USO6},
	};
	uint32_t o = 0;

	for (unsigned i = 0; i < ARRAY_SIZE(map); i++)
		if (f >> map[i].bit & 1)
			o |= map[i].offload;
	return o;
}

/* The engine filled the next chain: remember the header that goes with it. */
static void on_planned(void *ctx, const struct vd_src *src)
{
	struct vdemux_vnet_rxq *q = ctx;
	struct fchain *fc;

	if (!q->vq || q->fq_taken >= q->fq_n)
		return;
	fc = &q->fq[(q->fq_head + q->fq_taken++) % q->fq_cap];
	if (src->vh)
		fc->vh = *src->vh;
	else
		memset(&fc->vh, 0, sizeof(fc->vh));
}

/* ---- completions of page chains ---- */

static void chain_done(struct vdemux_vnet_rxq *q, const struct vm *vm, struct fchain *fc)
{
	if (fc->failed || !vd_vmq_backed(vm, fc->first_gpa, q->hdr_len)) {
		vd_vring_push(q->vq, fc->head, 0);
		q->st.failed++;
		return;
	}
	/* The page at first_gpa is the frame's now (or the guest's own, for
	 * a copy): bytes [0, hdr_len) are ours to write. */
	vd_vhdr_put(q->gm.base + fc->first_gpa, &fc->vh, q->hdr_len, 1);
	vd_vring_push(q->vq, fc->head, q->hdr_len + fc->len);
	q->st.frames++;
	if (fc->flipped)
		q->st.flipped++;
	else
		q->st.copied++;
}

/* Push the used entries of copies whose turn came (all: every one; the
 * engine call is over, no chain delivered before them is pending). */
static void flush_copies(struct vdemux_vnet_rxq *q, bool all)
{
	while (q->dq_n && (all || q->dq[q->dq_head].after <= q->chains_done)) {
		const struct dpush *dp = &q->dq[q->dq_head];

		vd_vring_push(q->vq, dp->head, dp->len);
		q->dq_head = (q->dq_head + 1) & (q->cq_cap - 1);
		q->dq_n--;
	}
}

/* Take the engine's completions: each delivery fills the chain at the head
 * of fq, in order. */
static void drain(struct vdemux_vnet_rxq *q, struct vm *vm)
{
	struct vdemux_completion c;

	while (vd_vmq_complete(vm, &c)) {
		struct fchain *fc;

		if (!q->fq_n || !q->vq)
			continue; /* stopped: forgotten */
		fc = &q->fq[q->fq_head];
		if (c.flags & VD_CPL_DROPPED) {
			fc->failed = true;
		} else {
			fc->len += c.len;
			if (!(c.flags & VDEMUX_CPL_COPIED))
				fc->flipped = true;
		}
		if (c.flags & VDEMUX_CPL_MORE)
			continue;
		chain_done(q, vm, fc);
		q->fq_head = (q->fq_head + 1) & (q->fq_cap - 1);
		q->fq_n--;
		if (q->fq_taken)
			q->fq_taken--;
		q->chains_done++;
		flush_copies(q, false);
	}
	flush_copies(q, true);
}

static int take_buffers(struct vdemux_vnet_rxq *q, struct vm *vm);

/* Forget every buffer taken from the ring: the chains posted to the engine
 * are unposted (lazy harvest: their pages are the guest's, still mapped),
 * the completions not yet taken and the buffers waiting for a copy are
 * dropped. */
static void forget_buffers(struct vdemux_vnet_rxq *q, struct vm *vm)
{
	if (vm)
		vd_vmq_unpost_all(vm);
	q->fq_head = q->fq_n = q->fq_taken = q->cq_head = q->cq_n = q->seg_head = q->seg_n = 0;
	q->dq_head = q->dq_n = 0;
}

/* Take what the guest made available; if that found the ring broken, the
 * queue serves it no more: what it had taken is forgotten, as on stop, and
 * the frames for it are dropped (no buffer). Returns how many were taken,
 * or -EIO. */
static int take_or_break(struct vdemux_vnet_rxq *q, struct vm *vm)
{
	int taken = take_buffers(q, vm);

	if (!vd_vring_broken(q->vq))
		return taken;
	forget_buffers(q, vm);
	return -EIO;
}

/* The queue VM's signal: at the end of every engine call that delivered. */
static void on_signal(vdemux_vm_id id, unsigned reasons, void *payload)
{
	struct vdemux_vnet_rxq *q = payload;
	struct vm *vm = q->vm; /* the signal's: id is the queue's */

	(void)id;
	if (!vm || !q->vq || !(reasons & VDEMUX_SIG_RX))
		return; /* release requests: the guest's pages are exchanged one for one */
	drain(q, vm);
	/* Buffers freed room here; the guest may have added some since. */
	if (!vd_vring_broken(q->vq))
		take_or_break(q, vm);
	publish(q);
}

/* ---- copies into waiting buffers ---- */

/* Write stream bytes [pos, pos + n) (the header, then the frame) at dst. */
static void stream_write(const struct vdemux_vnet_rxq *q, const struct vd_pool *pl,
			 const struct vd_src *src, const struct vdemux_dest *d, const uint8_t *hdr,
			 uint64_t pos, uint8_t *dst, uint32_t n)
{
	if (pos < q->hdr_len) {
		uint32_t k = q->hdr_len - (uint32_t)pos < n ? q->hdr_len - (uint32_t)pos : n;

		memcpy(dst, hdr + pos, k);
		dst += k;
		pos += k;
		n -= k;
	}
	if (!n)
		return;
	/* The frame as it came, from the caller's memory: one copy. */
	if (src->flat && d->action == VDEMUX_VLAN_KEEP)
		memcpy(dst, src->flat + (pos - q->hdr_len), n);
	else
		vd_frame_emit(pl, src, d, (uint32_t)(pos - q->hdr_len), dst, n);
}

static struct cbuf *cbuf_at(struct vdemux_vnet_rxq *q, uint32_t i)
{
	return &q->cq[(q->cq_head + i) & (q->cq_cap - 1)];
}

/* Whether the n segments of the segment ring from first on lie over
 * backed guest RAM (a failed rollback may have left a hole). */
static bool segs_backed(const struct vdemux_vnet_rxq *q, uint32_t first, uint32_t n)
{
	if (q->ram_far)
		return true; /* all_backed() says why */
	for (uint32_t k = 0; k < n; k++) {
		const struct vd_vring_seg *sg = &q->segs[(first + k) & (q->seg_cap - 1)];

		const struct vm *rv = ram_vm(q);
		if (!rv || !vd_vmq_backed(rv, sg->gpa, sg->len))
			return false;
	}
	return true;
}

/* The first waiting buffer leaves the queue. */
static void pop_cbuf(struct vdemux_vnet_rxq *q)
{
	q->seg_head = (q->seg_head + cbuf_at(q, 0)->nseg) & (q->seg_cap - 1);
	q->seg_n -= cbuf_at(q, 0)->nseg;
	q->cq_head = (q->cq_head + 1) & (q->cq_cap - 1);
	q->cq_n--;
}

/* A copy's used entry: now, or after the chains delivered before it (their
 * used entries are pushed at the end of the engine call), so that the
 * guest gets its frames in the order they came. */
static void push_copy(struct vdemux_vnet_rxq *q, uint16_t head, uint32_t len, uint64_t after)
{
	if (after <= q->chains_done && !q->dq_n) {
		vd_vring_push(q->vq, head, len);
		return;
	}
	q->dq[(q->dq_head + q->dq_n) & (q->cq_cap - 1)] = (struct dpush){
		.after = after, .len = len, .head = head};
	q->dq_n++;
}

/* Of the first nbuf waiting buffers (checked when taken), give back empty
 * the first one over a hole (a failed rollback's: the guest cannot have
 * made it) and those before it, so that the next frame goes into the
 * buffers after it. Returns whether any was given back. */
static bool give_back_unbacked(struct vdemux_vnet_rxq *q, uint32_t nbuf)
{
	uint32_t bad = nbuf;

	if (all_backed(q))
		return false;
	for (uint32_t b = 0; b < nbuf && bad == nbuf; b++)
		if (!segs_backed(q, cbuf_at(q, b)->seg0, cbuf_at(q, b)->nseg))
			bad = b;
	if (bad == nbuf)
		return false;
	for (uint32_t b = 0; b <= bad; b++) {
		push_copy(q, cbuf_at(q, 0)->head, 0, q->chains_done + q->fq_taken);
		q->st.skipped++;
		pop_cbuf(q);
	}
	return true;
}

/* How many waiting buffers a frame of need bytes (header included) takes:
 * 0 and *why when they cannot hold it. */
static uint32_t pick_bufs(struct vdemux_vnet_rxq *q, uint64_t need, int *why)
{
	uint64_t cap = 0;
	uint32_t nbuf;

	*why = VDEMUX_DROP_NO_BUFFER;
	if (!q->cq_n) { /* a chain is posted: the engine came here as it is too short */
		if (q->fq_n > q->fq_taken)
			*why = VDEMUX_DROP_TOO_BIG;
		return 0;
	}
	if (!q->mrg) {
		if (cbuf_at(q, 0)->cap >= need)
			return 1;
		*why = VDEMUX_DROP_TOO_BIG; /* this buffer cannot hold it */
		return 0;
	}
	for (nbuf = 0; nbuf < q->cq_n && cap < need; nbuf++)
		cap += cbuf_at(q, nbuf)->cap;
	return cap < need ? 0 : nbuf;
}

/* The common case: header and frame fit the first segment of the first
 * waiting buffer, and guest RAM has no hole. Returns whether it was. */
static bool copy_one(struct vdemux_vnet_rxq *q, const struct vd_pool *pl, const struct vd_src *src,
		     const struct vdemux_dest *d, uint32_t len)
{
	const struct cbuf *cb = cbuf_at(q, 0);
	const struct vd_vring_seg *sg = &q->segs[cb->seg0];
	uint8_t *dst = q->gm.base + sg->gpa;

	if (sg->len < q->hdr_len + len || !all_backed(q))
		return false;
	vd_vhdr_put(dst, src->vh, q->hdr_len, 1);
	if (src->flat && d->action == VDEMUX_VLAN_KEEP)
		memcpy(dst + q->hdr_len, src->flat, len);
	else
		vd_frame_emit(pl, src, d, 0, dst + q->hdr_len, len);
	push_copy(q, cb->head, q->hdr_len + len, q->chains_done + q->fq_taken);
	pop_cbuf(q);
	return true;
}

static int sink_copy(void *ctx, const struct vd_pool *pl, const struct vd_src *src,
		     const struct vdemux_dest *d, uint32_t len)
{
	struct vdemux_vnet_rxq *q = ctx;
	uint64_t need = (uint64_t)q->hdr_len + len, pos = 0;
	uint8_t hdr[VNET_HDR_MAX];
	uint32_t nbuf;
	uint64_t after;
	int why;

	if (!q->vq)
		return VDEMUX_DROP_NO_BUFFER;
	if (q->cq_n && copy_one(q, pl, src, d, len)) {
		q->st.frames++;
		q->st.copied++;
		return 0;
	}
	do {
		nbuf = pick_bufs(q, need, &why);
		if (!nbuf)
			return why;
	} while (give_back_unbacked(q, nbuf));
	vd_vhdr_put(hdr, src->vh, q->hdr_len, (uint16_t)nbuf);
	after = q->chains_done + q->fq_taken;
	for (uint32_t b = 0; b < nbuf; b++) {
		struct cbuf *cb = cbuf_at(q, 0);
		uint64_t start = pos;

		for (uint32_t k = 0; k < cb->nseg && pos < need; k++) {
			const struct vd_vring_seg *sg = &q->segs[(cb->seg0 + k) & (q->seg_cap - 1)];
			uint32_t n = need - pos < sg->len ? (uint32_t)(need - pos) : sg->len;

			stream_write(q, pl, src, d, hdr, pos, q->gm.base + sg->gpa, n);
			pos += n;
		}
		push_copy(q, cb->head, (uint32_t)(pos - start), after);
		pop_cbuf(q);
	}
	q->st.frames++;
	q->st.copied++;
	return 0;
}

/* ---- taking buffers from the ring ---- */

static void skip(struct vdemux_vnet_rxq *q, uint16_t head)
{
	vd_vring_push(q->vq, head, 0);
	q->st.skipped++;
}

/* A flippable big chain: post its pages to the engine, at the VM's
 * receive offset (taken from the first such chain). */
static bool post_pages(struct vdemux_vnet_rxq *q, struct vm *vm, const struct vd_vring_chain *c,
		       const struct vd_vnet_rx_shape *sh)
{
	struct fchain *fc;

	if (q->fq_n == q->fq_cap)
		return false;
	/* Another data offset than the chains waiting, a page posted twice,
	 * or outside RAM: not flippable. */
	if (vd_vmq_post_chain(q->eng, vm, q->pages, sh->npages, sh->data_off))
		return false;
	fc = &q->fq[(q->fq_head + q->fq_n) & (q->fq_cap - 1)];
	q->fq_n++;
	*fc = (struct fchain){.first_gpa = q->pages[0], .head = c->head};
	q->st.page_buffers++;
	return true;
}

static void wait_copy(struct vdemux_vnet_rxq *q, const struct vd_vring_chain *c)
{
	struct cbuf *cb = &q->cq[(q->cq_head + q->cq_n) & (q->cq_cap - 1)];

	cb->seg0 = (q->seg_head + q->seg_n) & (q->seg_cap - 1);
	cb->nseg = c->nseg;
	cb->cap = c->len;
	cb->head = c->head;
	for (uint32_t k = 0; k < c->nseg; k++)
		q->segs[(cb->seg0 + k) & (q->seg_cap - 1)] = q->pop_segs[k];
	if (!all_backed(q) && !segs_backed(q, cb->seg0, c->nseg)) {
		skip(q, c->head); /* its segments stay outside the ring's count */
		return;
	}
	q->seg_n += c->nseg;
	q->cq_n++;
}

/* Make the segment ring twice as large (a power of two still), its
 * segments in order from 0. The bound holds the chains of every head but
 * one (each at most VNET_MAX_SEGS segments) with room for one more: all
 * that room() asks while a head is free. */
static bool seg_grow(struct vdemux_vnet_rxq *q)
{
	const struct vdemux_alloc_hooks *h = vd_vmq_alloc(q->eng);
	uint32_t cap = 2 * q->seg_cap;
	struct vd_vring_seg *segs;

	if (q->seg_cap >= q->cq_cap * VNET_MAX_SEGS)
		return false;
	segs = vd_calloc(h, cap, sizeof(*segs));
	if (!segs)
		return false;
	for (uint32_t k = 0; k < q->seg_n; k++)
		segs[k] = q->segs[(q->seg_head + k) & (q->seg_cap - 1)];
	for (uint32_t b = 0; b < q->cq_n; b++) {
		struct cbuf *cb = cbuf_at(q, b);

		cb->seg0 = (cb->seg0 - q->seg_head) & (q->seg_cap - 1);
	}
	vd_free(h, q->segs);
	q->segs = segs;
	q->seg_cap = cap;
	q->seg_head = 0;
	return true;
}

/* Room to take one more chain: a head slot, and segments for a chain that
 * waits for a copy (the segment ring grows as needed: a kick takes every
 * buffer the guest made available, memory permitting). */
static bool room(struct vdemux_vnet_rxq *q)
{
	if (q->cq_n == q->cq_cap)
		return false;
	return q->seg_cap - q->seg_n >= VNET_MAX_SEGS || seg_grow(q);
}

/* Add to the queue's counters what the ring found since the last call: the
 * malformed chains it gave back unused (buffers taken, skipped, ring
 * errors) and the error that broke it (a ring error). Returns how many
 * chains it skipped. */
static uint32_t count_ring(struct vdemux_vnet_rxq *q)
{
	const struct vd_vring_stats *rs = vd_vring_stats(q->vq);
	uint64_t errs = 0, skipped = rs->skipped - q->ring_skipped;

	/* The ring counts an error only with a skipped chain or when it
	 * breaks: nothing new to add up (the common case, per call). */
	if (!skipped && !vd_vring_broken(q->vq))
		return 0;
	for (unsigned k = 0; k < VD_VRING_ERR_COUNT; k++)
		errs += rs->err[k];
	q->st.buffers += skipped;
	q->st.skipped += skipped;
	q->st.ring_errors += errs - q->ring_errs;
	q->ring_skipped = rs->skipped;
	q->ring_errs = errs;
	return (uint32_t)skipped;
}

/* Take what the guest made available, while there is room; then ask to be
 * kicked for more (and take what came in meanwhile). Returns how many
 * chains were taken from the available ring, malformed ones included. */
static int take_buffers(struct vdemux_vnet_rxq *q, struct vm *vm)
{
	int taken = 0;

	/* Nothing available and kicks already asked for at this entry (the
	 * common case after a burst): what the loop below would find, without
	 * its pop and its kick request. Nothing for count_ring() either: the
	 * ring is not broken, and only pop skips chains, here, each take
	 * ending with count_ring(). */
	if (vd_vring_idle(q->vq))
		return 0;

	for (;;) {
		while (room(q)) {
			struct vd_vring_chain c;
			struct vd_vnet_rx_shape sh;
			int rc = vd_vring_pop(q->vq, &c, q->pop_segs, VNET_MAX_SEGS);

			if (rc <= 0)
				break;
			taken++;
			q->st.buffers++;
			if (q->mrg) {
				/* A mergeable buffer is copied into whatever its
				 * shape (vd_vnet_rx_classify() says no more). */
				if (c.len < q->hdr_len)
					skip(q, c.head);
				else
					wait_copy(q, &c);
				continue;
			}
			if (vd_vnet_rx_classify(q->vq, q->features, q->pop_segs, c.nseg, &sh, q->pages,
						VNET_MAX_SEGS)) {
				skip(q, c.head); /* cannot even hold the header */
				continue;
			}
			if (sh.flippable && !q->ram_id && post_pages(q, vm, &c, &sh))
				continue;
			wait_copy(q, &c);
		}
		if (vd_vring_broken(q->vq))
			break;
		if (!room(q)) {
			/* Every head waits here (or no memory for more): ask
			 * for kicks if that is everything the guest made
			 * available; else the completions that make room take
			 * the rest. */
			if (!vd_vring_avail_count(q->vq) && !vd_vring_broken(q->vq))
				vd_vring_enable_kick(q->vq, true);
			break;
		}
		/* Everything taken: kicks re-armed, and what came meanwhile. */
		if (!vd_vring_enable_kick(q->vq, true))
			break;
	}
	return taken + (int)count_ring(q);
}

int vdemux_vnet_rxq_kick(vdemux_vnet_rxq *q)
{
	int taken;

	if (!q)
		return -EINVAL;
	if (!q->vq)
		return -ENOTCONN;
	if (vd_vring_broken(q->vq))
		return -EIO;
	taken = take_or_break(q, q->vm);
	publish(q);
	return taken;
}

/* ---- life cycle ---- */

static void rxq_free(vdemux_vnet_rxq *q)
{
	const struct vdemux_alloc_hooks *h = vd_vmq_alloc(q->eng);

	vd_free(h, q->fq);
	vd_free(h, q->cq);
	vd_free(h, q->segs);
	vd_free(h, q->dq);
	vd_free(h, q);
}

/* Another queue of the same guest (VIRTIO_NET_F_MQ) over the RAM @owner's
 * VM backs: same RAM, @owner not sharing itself, copies; on @owner's
 * engine, or on another shard of its group if @owner copies always too
 * (docs/architecture.md, Threading, rule 7: no thread flips guest RAM
 * while another copies into it). Reads only what @owner fixed when it was
 * created, so @owner's shard may be running. */
static bool can_share(const vdemux_vnet_rxq *owner, const vdemux_engine *eng,
		      const struct vdemux_vnet_rxq_opts *o)
{
	bool far = vd_vmq_other_shard(owner->eng, eng) && owner->copy == VDEMUX_COPY_ALWAYS;

	return (owner->eng == eng || far) && !owner->ram_id && owner->gm.base == o->ram &&
	       owner->gm.size == o->ram_size &&
	       (o->copy == VDEMUX_COPY_DEFAULT || o->copy == VDEMUX_COPY_ALWAYS);
}

/* Its VM holds no page and maps none: every frame is copied into guest RAM
 * through the queue's mapping, whose backing is the owner's. The engine
 * wants a backend for every VM, and the owner's keeps guest RAM: the VM
 * gets a simulated one of its own, over a one-page window left a hole. */
static int share_ram(struct vdemux_vnet_rxq *q, const vdemux_vnet_rxq *owner, struct vdemux_vm_opts *vo)
{
	int err = vdemux_sim_create(&q->own_be, NULL);
	if (err)
		return err;
	if ((err = vdemux_engine_add_backend(q->eng, q->own_be))) {
		q->own_be->free(q->own_be);
		q->own_be = NULL;
		return err;
	}
	q->ram_id = owner->id;
	q->ram_far = owner->eng != q->eng;
	vo->rx_pages = 1;
	vo->flags |= VDEMUX_VM_F_UNPOPULATED;
	vo->copy = VDEMUX_COPY_ALWAYS;
	vo->backends = &q->own_be;
	vo->n_backends = 1;
	return 0;
}

static void unshare(struct vdemux_vnet_rxq *q)
{
	if (q->own_be)
		vdemux_engine_remove_backend(q->eng, q->own_be);
	q->own_be = NULL;
}

int vdemux_vnet_rxq_create(vdemux_vnet_rxq **out, vdemux_engine *eng,
			   const struct vdemux_vnet_rxq_opts *uopts)
{
	struct vdemux_vnet_rxq_opts o;
	struct vdemux_vm_opts vo = VDEMUX_OPTS(vdemux_vm_opts);
	struct vdemux_vnet_rxq *q;
	struct vm *vm;
	int err;

	if (!out || !eng || !uopts || vd_opts_check(uopts, sizeof(o)))
		return -EINVAL;
	vd_opts_copy(&o, uopts, sizeof(o));
	if (!o.ram || ((uintptr_t)o.ram & (PAGE - 1)) || !o.ram_size || (o.ram_size & (PAGE - 1)) ||
	    o.ram_size / PAGE > VD_VMQ_MAX_PAGES ||
	    (o.irq.kind == VDEMUX_SIGNAL_EVENTFD && o.irq.fd < 0) ||
	    (o.irq.kind == VDEMUX_SIGNAL_CALLBACK && !o.irq.cb) || o.irq.kind > VDEMUX_SIGNAL_EVENTFD ||
	    (o.ram_of && !can_share(o.ram_of, eng, &o)))
		return -EINVAL;
	q = vd_calloc(vd_vmq_alloc(eng), 1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	q->eng = eng;
	q->irq = o.irq;
	q->copy = o.copy;
	q->gm = (struct vd_gmem){.base = o.ram, .size = o.ram_size};
	vo.rx_base = 0;
	vo.rx_pages = (uint32_t)(o.ram_size / PAGE);
	vo.harvest = VDEMUX_HARVEST_LAZY;
	vo.copy = o.copy;
	vo.copy_threshold = o.copy_threshold;
	vo.backends = o.backends;
	vo.n_backends = o.n_backends;
	vo.signal = (struct vdemux_signal){.kind = VDEMUX_SIGNAL_CALLBACK, .cb = on_signal, .payload = q};
	err = o.ram_of ? share_ram(q, o.ram_of, &vo) : 0;
	if (!err)
		err = vdemux_vm_add(eng, &q->id, &vo);
	if (err) {
		unshare(q);
		rxq_free(q);
		return err;
	}
	vm = rxq_vm(q);
	q->vm = vm;
	vd_vmq_set_layout(vm, &(struct vd_sink){.copy = sink_copy, .planned = on_planned, .ctx = q});
	*out = q;
	return 0;
}

void vdemux_vnet_rxq_destroy(vdemux_vnet_rxq *q)
{
	if (!q)
		return;
	vdemux_vnet_rxq_stop(q);
	vdemux_vm_remove(q->eng, q->id);
	unshare(q);
	rxq_free(q);
}

vdemux_vm_id vdemux_vnet_rxq_vm(const vdemux_vnet_rxq *q)
{
	return q ? q->id : 0;
}

int vdemux_vnet_rxq_start(vdemux_vnet_rxq *q, const struct vdemux_vnet_ring *uring)
{
	const struct vdemux_alloc_hooks *h;
	struct vdemux_vnet_ring r;
	struct vd_vring_config cfg;
	int err;

	if (!q || !uring || vd_opts_check(uring, sizeof(r)))
		return -EINVAL;
	if (q->vq)
		return -EBUSY;
	vd_opts_copy(&r, uring, sizeof(r));
	if (!r.size || r.size > VD_VRING_MAX_SIZE || (r.size & (r.size - 1)))
		return -EINVAL;
	h = vd_vmq_alloc(q->eng);
	cfg = (struct vd_vring_config){.desc_gpa = r.desc_gpa,
				       .avail_gpa = r.avail_gpa,
				       .used_gpa = r.used_gpa,
				       .size = r.size,
				       .flags = VD_VRING_F_WRITE_ONLY,
				       .features = r.features};
	/* Powers of two (r.size is one): the FIFOs wrap with a mask. */
	q->fq_cap = q->cq_cap = r.size;
	q->seg_cap = 4 * r.size > 2 * VNET_MAX_SEGS ? 4 * r.size : 2 * VNET_MAX_SEGS;
	vd_free(h, q->fq);
	vd_free(h, q->cq);
	vd_free(h, q->segs);
	vd_free(h, q->dq);
	q->fq = vd_calloc(h, q->fq_cap, sizeof(*q->fq));
	q->cq = vd_calloc(h, q->cq_cap, sizeof(*q->cq));
	q->segs = vd_calloc(h, q->seg_cap, sizeof(*q->segs));
	q->dq = vd_calloc(h, q->cq_cap, sizeof(*q->dq));
	if (!q->fq || !q->cq || !q->segs || !q->dq)
		return -ENOMEM;
	err = vd_vring_create(&q->vq, &q->gm, &cfg, h->calloc ? h : NULL);
	if (err)
		return err;
	q->features = r.features;
	vd_vmq_set_offloads(q->vm, guest_offloads(r.features));
	q->hdr_len = vd_vnet_hdr_len(r.features);
	q->mrg = !!(r.features & VD_VIRTIO_NET_F_MRG_RXBUF);
	q->fq_head = q->fq_n = q->fq_taken = q->cq_head = q->cq_n = q->seg_head = q->seg_n = 0;
	q->dq_head = q->dq_n = 0;
	q->ring_skipped = q->ring_errs = 0; /* a new ring counts from 0 */
	return 0;
}

int vdemux_vnet_rxq_stop(vdemux_vnet_rxq *q)
{
	if (!q)
		return -EINVAL;
	forget_buffers(q, rxq_vm(q));
	if (q->vq) {
		count_ring(q);
		vd_vring_destroy(q->vq);
	}
	q->vq = NULL;
	return 0;
}

int vdemux_vnet_rxq_needs_reset(const vdemux_vnet_rxq *q)
{
	if (!q)
		return -EINVAL;
	return q->vq && vd_vring_broken(q->vq) ? 1 : 0;
}

int vdemux_vnet_rxq_stats(const vdemux_vnet_rxq *q, struct vdemux_vnet_rxq_stats *out, size_t size)
{
	struct vdemux_vnet_rxq_stats s;

	if (!q || !out)
		return -EINVAL;
	s = q->st;
	memcpy(out, &s, size < sizeof(s) ? size : sizeof(s));
	return 0;
}

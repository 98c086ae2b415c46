/*
 * The receive queue's stand-in implementation (see rxq.h): engine
 * completions in the staging window, copied into the guest's buffers. To be
 * replaced by the library's virtio-net module.
 */
#include <errno.h>
#include <linux/virtio_net.h>
#include <stdlib.h>
#include <string.h>

#include "rxq.h"

#define RXQ_MAX_CHAINS 64u /* buffers one mergeable frame may take */

struct rxq {
	struct rxq_opts o;
	struct virtq ring;
	bool ready;
	bool mrg;
	unsigned hdr_len;
	/* Completions taken from the engine, not yet in guest buffers. */
	struct vdemux_completion *pend;
	unsigned pcap, phead, pcount;
	uint64_t *repost;
	unsigned nrepost;
	struct vq_chain chains[RXQ_MAX_CHAINS];
	struct rxq_stats st;
};

int rxq_create(struct rxq **out, const struct rxq_opts *o)
{
	struct rxq *q = calloc(1, sizeof *q);
	if (!q)
		return -ENOMEM;
	q->o = *o;
	q->pcap = 2 * o->stage_pages; /* the engine queues at most this many */
	q->pend = calloc(q->pcap, sizeof *q->pend);
	q->repost = calloc(q->pcap, sizeof *q->repost);
	if (!q->pend || !q->repost) {
		rxq_destroy(q);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < o->stage_pages; i++)
		q->repost[i] = o->stage_gpa + i * VMM_PAGE;
	int r = vdemux_vm_post_rx(o->eng, o->vm, q->repost, o->stage_pages);
	if (r < 0 || (uint32_t)r != o->stage_pages) {
		rxq_destroy(q);
		return r < 0 ? r : -EIO;
	}
	*out = q;
	return 0;
}

void rxq_destroy(struct rxq *q)
{
	if (!q)
		return;
	free(q->pend);
	free(q->repost);
	free(q);
}

int rxq_configure(struct rxq *q, const struct virtq *ring, uint64_t features)
{
	q->ready = ring && ring->pfn;
	if (q->ready)
		q->ring = *ring;
	q->mrg = features & (1u << VIRTIO_NET_F_MRG_RXBUF);
	q->hdr_len = q->mrg ? sizeof(struct virtio_net_hdr_mrg_rxbuf) : sizeof(struct virtio_net_hdr);
	return 0;
}

void rxq_stats(const struct rxq *q, struct rxq_stats *out)
{
	*out = q->st;
}

/* Where the next byte of a frame goes: a segment of one of the chains. */
struct sink {
	struct rxq *q;
	unsigned chain, seg, off;
	uint32_t written[RXQ_MAX_CHAINS];
};

static void sink_write(struct sink *s, const uint8_t *src, size_t n, unsigned nchains)
{
	while (n && s->chain < nchains) {
		struct vq_chain *c = &s->q->chains[s->chain];
		if (s->seg == c->n) {
			s->chain++;
			s->seg = s->off = 0;
			continue;
		}
		size_t room = c->seg[s->seg].len - s->off;
		if (room == 0) {
			s->seg++;
			s->off = 0;
			continue;
		}
		size_t k = n < room ? n : room;
		memcpy(c->seg[s->seg].hva + s->off, src, k);
		s->off += (unsigned)k;
		s->written[s->chain] += (uint32_t)k;
		src += k;
		n -= k;
	}
}

/*
 * Put one frame (@k completions from pend[phead], @len bytes) into guest
 * buffers. 0: delivered; -EAGAIN: not enough buffers posted (nothing taken);
 * -EMSGSIZE: it can never fit (nothing taken); -EINVAL: malformed ring.
 */
static int place(struct rxq *q, unsigned k, uint64_t len)
{
	struct guest *g = q->o.guest;
	uint64_t need = q->hdr_len + len, cap = 0;
	unsigned nch = 0, max = q->mrg ? RXQ_MAX_CHAINS : 1;

	while (cap < need) {
		if (nch == max) {
			vq_unpop(&q->ring, nch);
			return -EMSGSIZE;
		}
		int r = vq_pop(g, &q->ring, &q->chains[nch]);
		if (r <= 0) {
			vq_unpop(&q->ring, nch);
			return r == 0 ? -EAGAIN : -EINVAL;
		}
		struct vq_chain *c = &q->chains[nch++];
		for (unsigned i = 0; i < c->n; i++) {
			if (!c->seg[i].write) {
				vq_unpop(&q->ring, nch);
				return -EINVAL;
			}
			cap += c->seg[i].len;
		}
	}

	struct sink s = {.q = q};
	struct virtio_net_hdr_mrg_rxbuf h;
	memset(&h, 0, sizeof h);
	h.num_buffers = (uint16_t)nch; /* only in the mergeable header */
	sink_write(&s, (const uint8_t *)&h, q->hdr_len, nch);
	for (unsigned i = 0; i < k; i++) {
		const struct vdemux_completion *cp = &q->pend[(q->phead + i) % q->pcap];
		uint64_t off = cp->gpa - q->o.stage_gpa;
		if (cp->gpa < q->o.stage_gpa || off >= (uint64_t)q->o.stage_pages * VMM_PAGE || cp->len > VMM_PAGE)
			continue; /* cannot happen: the engine reports posted GPAs */
		sink_write(&s, q->o.stage_hva + off, cp->len, nch);
	}
	for (unsigned i = 0; i < nch; i++)
		vq_push(g, &q->ring, q->chains[i].head, s.written[i]);
	q->st.buffers += nch;
	return 0;
}

static void consume(struct rxq *q, unsigned k)
{
	for (unsigned i = 0; i < k; i++)
		q->repost[q->nrepost++] = q->pend[(q->phead + i) % q->pcap].gpa;
	q->phead = (q->phead + k) % q->pcap;
	q->pcount -= k;
}

int rxq_deliver(struct rxq *q)
{
	struct vdemux_completion tmp[64];
	int delivered = 0, err = 0;

	while (q->pcount < q->pcap) {
		unsigned room = q->pcap - q->pcount;
		int n = vdemux_vm_poll(q->o.eng, q->o.vm, tmp, room < 64 ? room : 64);
		if (n <= 0) {
			err = n;
			break;
		}
		for (int i = 0; i < n; i++)
			q->pend[(q->phead + q->pcount++) % q->pcap] = tmp[i];
	}

	while (q->pcount) {
		unsigned k = 0;
		uint64_t len = 0;
		bool whole = false;
		while (k < q->pcount) {
			const struct vdemux_completion *c = &q->pend[(q->phead + k) % q->pcap];
			len += c->len;
			k++;
			if (!(c->flags & VDEMUX_CPL_MORE)) {
				whole = true;
				break;
			}
		}
		if (!whole)
			break; /* the rest of the frame is still in the engine */
		if (!q->ready) {
			q->st.dropped_not_ready++;
			consume(q, k);
			continue;
		}
		int r = place(q, k, len);
		if (r == -EAGAIN) {
			q->st.waits++;
			break;
		}
		if (r == -EINVAL) {
			q->st.bad_chains++;
			q->ready = false; /* stopped until the driver resets */
			continue;
		}
		if (r == -EMSGSIZE) {
			q->st.dropped_too_big++;
		} else {
			q->st.frames++;
			q->st.bytes += len;
			delivered++;
		}
		consume(q, k);
	}

	if (q->nrepost) {
		int r = vdemux_vm_post_rx(q->o.eng, q->o.vm, q->repost, q->nrepost);
		if (r >= 0 && (unsigned)r < q->nrepost)
			memmove(q->repost, q->repost + r, (q->nrepost - (unsigned)r) * sizeof *q->repost);
		if (r > 0)
			q->nrepost -= (unsigned)r;
		if (r < 0)
			err = r;
	}
	if (delivered && vq_publish(q->o.guest, &q->ring))
		q->o.notify(q->o.payload);
	return err < 0 && !delivered ? err : delivered;
}

int rxq_kick(struct rxq *q)
{
	return rxq_deliver(q);
}

/* SPDX-License-Identifier: MIT */
/* A simulated Linux 6.1 virtio-net receive driver; see vnet_guest.h. */
#include "vnet_guest.h"
#include "vq_desc.h"

#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define PG 4096u
#define CHUNK 32768u   /* PAGE_SIZE << SKB_FRAG_PAGE_ORDER */
#define PADDED_HDR 32u /* sizeof(struct padded_vnet_hdr) */
#define GOOD_PACKET_LEN 1518u
#define RX_PAD 64u  /* NET_IP_ALIGN 0 + NET_SKB_PAD 64 (x86) */
#define SHINFO 320u /* sizeof(struct skb_shared_info), x86-64 */
#define SLOT 512u   /* room for one indirect table */
#define MAX_SKB_FRAGS 17u
#define ETH_HLEN 14u

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

/* ---- flat memory --------------------------------------------------- */

static uint8_t *flat_at(void *payload, uint64_t gpa, uint64_t len)
{
	struct vng_flat *f = payload;

	if (len > f->size || gpa > f->size - len)
		return NULL;
	return f->base + gpa;
}

int vng_flat_init(struct vng_flat *f, uint64_t size)
{
	void *p;

	memset(f, 0, sizeof(*f));
	if (size == 0 || size > (1ull << 32) || posix_memalign(&p, PG, size + 2 * VNG_CANARY) != 0)
		return -ENOMEM;
	f->alloc = p;
	f->base = f->alloc + VNG_CANARY;
	f->size = size;
	memset(f->alloc, VNG_CANARY_BYTE, VNG_CANARY);
	memset(f->base, 0, size);
	memset(f->base + size, VNG_CANARY_BYTE, VNG_CANARY);
	return 0;
}

void vng_flat_fini(struct vng_flat *f)
{
	free(f->alloc);
	memset(f, 0, sizeof(*f));
}

bool vng_flat_canary_ok(const struct vng_flat *f)
{
	for (uint32_t i = 0; i < VNG_CANARY; i++)
		if (f->alloc[i] != VNG_CANARY_BYTE || f->base[f->size + i] != VNG_CANARY_BYTE)
			return false;
	return true;
}

struct vng_mem vng_flat_mem(struct vng_flat *f)
{
	return (struct vng_mem){.at = flat_at, .payload = f};
}

struct vd_gmem vng_flat_gmem(const struct vng_flat *f)
{
	return (struct vd_gmem){.base = f->base, .size = f->size};
}

/* ---- guest memory access ------------------------------------------- */

uint8_t *vng_at(const struct vng *g, uint64_t gpa, uint64_t len)
{
	return g->mem.at(g->mem.payload, gpa, len);
}

/* Ring fields: the rings were checked at init, so these are backed. */
static uint16_t *f16(const struct vng *g, uint64_t gpa)
{
	return (uint16_t *)(void *)vng_at(g, gpa, 2);
}

static uint16_t ld16(const struct vng *g, uint64_t gpa)
{
	return le16toh(__atomic_load_n(f16(g, gpa), __ATOMIC_RELAXED));
}

static void st16(const struct vng *g, uint64_t gpa, uint16_t v)
{
	__atomic_store_n(f16(g, gpa), htole16(v), __ATOMIC_RELAXED);
}

static uint64_t used_event_gpa(const struct vng *g)
{
	return g->avail_gpa + 4 + 2ull * g->o.qsize;
}

static uint64_t avail_event_gpa(const struct vng *g)
{
	return g->used_gpa + 4 + 8ull * g->o.qsize;
}

static void write_desc_at(struct vng *g, uint64_t gpa, uint64_t addr, uint32_t len, uint16_t flags,
			  uint16_t next)
{
	vq_desc_put(vng_at(g, gpa, 16), addr, len, flags, next);
}

void vng_write_desc(struct vng *g, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	write_desc_at(g, g->desc_gpa + 16ull * (i & (g->o.qsize - 1)), addr, len, flags, next);
}

void vng_write_avail(struct vng *g, uint16_t slot, uint16_t head)
{
	st16(g, g->avail_gpa + 4 + 2ull * (slot & (g->o.qsize - 1)), head);
}

void vng_write_avail_idx(struct vng *g, uint16_t idx)
{
	__atomic_store_n(f16(g, g->avail_gpa + 2), htole16(idx), __ATOMIC_RELEASE);
}

/* ---- setup --------------------------------------------------------- */

int vng_init(struct vng *g, const struct vng_mem *mem, const struct vng_opts *o)
{
	uint32_t n;
	uint64_t end;

	memset(g, 0, sizeof(*g));
	if (!mem || !mem->at || !o)
		return -EINVAL;
	g->mem = *mem;
	g->o = *o;
	n = o->qsize;
	if (n == 0 || n > VD_VRING_MAX_SIZE || (n & (n - 1)) != 0 || o->mode < VNG_SMALL ||
	    o->mode > VNG_MERGEABLE)
		return -EINVAL;
	if ((o->mode == VNG_MERGEABLE) != ((o->features & VD_VIRTIO_NET_F_MRG_RXBUF) != 0))
		return -EINVAL;
	if (!g->o.big_frags)
		g->o.big_frags = MAX_SKB_FRAGS;
	if (!g->o.ring_align)
		g->o.ring_align = PG;
	if (!g->o.ring_gpa)
		g->o.ring_gpa = PG;
	if (g->o.big_frags + 2 > VNG_MAX_SEG || (g->o.ring_align & (g->o.ring_align - 1)) != 0)
		return -EINVAL;
	g->hdr_len = vd_vnet_hdr_len(o->features);
	/* Indirect only where Linux uses it: the big mode's vq has no context
	 * (virtnet_find_vqs, vring_create_virtqueue). */
	g->indirect = (o->features & VD_VIRTIO_F_INDIRECT_DESC) && o->mode == VNG_BIG;
	g->event = (o->features & VD_VIRTIO_F_EVENT_IDX) != 0;

	g->desc_gpa = g->o.ring_gpa;
	g->avail_gpa = g->desc_gpa + VD_VRING_DESC_BYTES(n);
	g->used_gpa = align_up(g->avail_gpa + VD_VRING_AVAIL_BYTES(n), g->o.ring_align);
	g->indirect_gpa = align_up(g->used_gpa + VD_VRING_USED_BYTES(n), PG);
	g->buf_gpa = align_up(g->indirect_gpa + (uint64_t)SLOT * n, CHUNK);
	end = o->mem_size & ~(uint64_t)(CHUNK - 1);
	if (end <= g->buf_gpa || !vng_at(g, 0, g->buf_gpa))
		return -EINVAL;
	g->buf_len = end - g->buf_gpa;

	g->next = calloc(n, sizeof(*g->next));
	g->bufs = calloc(n, sizeof(*g->bufs));
	if (o->mode == VNG_BIG) {
		g->free = calloc(g->buf_len / PG, sizeof(*g->free));
		/* Handed out from the top down: consecutive allocations are not
		 * consecutive pages going up, as from a real page allocator. */
		for (uint64_t a = g->buf_gpa; g->free && a < end; a += PG)
			g->free[g->nfree++] = a;
	} else {
		g->nchunks = (uint32_t)(g->buf_len / CHUNK);
		g->free = calloc(g->nchunks, sizeof(*g->free));
		g->chunk_refs = calloc(g->nchunks, sizeof(*g->chunk_refs));
		for (uint32_t c = 0; g->free && c < g->nchunks; c++)
			g->free[g->nfree++] = c;
	}
	if (!g->next || !g->bufs || !g->free || (o->mode != VNG_BIG && !g->chunk_refs)) {
		vng_fini(g);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < n; i++)
		g->next[i] = (uint16_t)(i + 1);
	g->num_free = n;
	g->frag_chunk = -1;
	/* get_mergeable_buf_len with the average at its floor (min_buf_len =
	 * GOOD_PACKET_LEN for a queue this size and a 1500 MTU). */
	g->mrg_len = (uint32_t)align_up(g->hdr_len + GOOD_PACKET_LEN, 64);
	memset(vng_at(g, g->desc_gpa, g->buf_gpa - g->desc_gpa), 0, g->buf_gpa - g->desc_gpa);
	return 0;
}

void vng_fini(struct vng *g)
{
	free(g->next);
	free(g->bufs);
	free(g->free);
	free(g->chunk_refs);
	g->next = NULL;
	g->bufs = NULL;
	g->free = NULL;
	g->chunk_refs = NULL;
}

struct vd_vring_config vng_ring_config(const struct vng *g)
{
	return (struct vd_vring_config){
		.desc_gpa = g->desc_gpa,
		.avail_gpa = g->avail_gpa,
		.used_gpa = g->used_gpa,
		.size = g->o.qsize,
		.flags = VD_VRING_F_WRITE_ONLY,
		.features = g->o.features,
	};
}

struct vdemux_vnet_ring vng_vnet_ring(const struct vng *g)
{
	return VDEMUX_OPTS(vdemux_vnet_ring, .desc_gpa = g->desc_gpa, .avail_gpa = g->avail_gpa,
			   .used_gpa = g->used_gpa, .size = g->o.qsize, .features = g->o.features);
}

/* ---- memory pools -------------------------------------------------- */

static void chunk_put(struct vng *g, uint32_t c)
{
	if (--g->chunk_refs[c] == 0)
		g->free[g->nfree++] = c;
}

/* skb_page_frag_refill: room for @sz in the current chunk, or a new one. */
static bool frag_refill(struct vng *g, uint32_t sz)
{
	if (g->frag_chunk >= 0) {
		uint32_t c = (uint32_t)g->frag_chunk;

		if (g->chunk_refs[c] == 1) {
			g->frag_off = 0;
			return true;
		}
		if (g->frag_off + sz <= CHUNK)
			return true;
		chunk_put(g, c);
		g->frag_chunk = -1;
	}
	if (g->nfree == 0)
		return false;
	g->frag_chunk = (int64_t)g->free[--g->nfree];
	g->chunk_refs[g->frag_chunk] = 1;
	g->frag_off = 0;
	return true;
}

static uint64_t frag_carve(struct vng *g, uint32_t sz, struct vng_buf *b)
{
	uint64_t gpa = g->buf_gpa + (uint64_t)g->frag_chunk * CHUNK + g->frag_off;

	g->chunk_refs[g->frag_chunk]++; /* get_page */
	g->frag_off += sz;
	b->chunk = (uint32_t)g->frag_chunk;
	return gpa;
}

/* ---- posting ------------------------------------------------------- */

/* virtqueue_add_split for a device-writable buffer. */
static int add_split(struct vng *g, struct vng_buf *b)
{
	uint32_t n = g->o.qsize;
	uint16_t head = g->free_head;
	bool ind = g->indirect && b->nseg > 1;

	if (g->num_free < (ind ? 1u : b->nseg))
		return -ENOSPC;
	if (ind) {
		uint64_t t = g->indirect_gpa + (uint64_t)SLOT * head;

		for (uint32_t i = 0; i < b->nseg; i++) {
			uint16_t fl = VD_VRING_DESC_F_WRITE |
				      (i + 1 < b->nseg ? VD_VRING_DESC_F_NEXT : 0);

			write_desc_at(g, t + 16ull * i, b->gpa[i], b->len[i], fl, (uint16_t)(i + 1));
		}
		vng_write_desc(g, head, t, 16u * b->nseg, VD_VRING_DESC_F_INDIRECT, g->next[head]);
		g->free_head = g->next[head];
		g->num_free--;
	} else {
		uint16_t i = head, prev = head;

		for (uint32_t s = 0; s < b->nseg; s++) {
			vng_write_desc(g, i, b->gpa[s], b->len[s],
				       VD_VRING_DESC_F_WRITE | VD_VRING_DESC_F_NEXT, g->next[i]);
			prev = i;
			i = g->next[i];
		}
		vng_write_desc(g, prev, b->gpa[b->nseg - 1], b->len[b->nseg - 1], VD_VRING_DESC_F_WRITE,
			       g->next[prev]);
		g->free_head = i;
		g->num_free -= b->nseg;
	}
	b->posted = true;
	g->bufs[head] = *b;
	vng_write_avail(g, g->avail_idx_shadow, head);
	/* virtio_wmb: descriptors and the ring entry before the index. */
	g->avail_idx_shadow++;
	vng_write_avail_idx(g, g->avail_idx_shadow);
	g->num_added++;
	g->st.posted++;
	(void)n;
	return 0;
}

static void buf_release_memory(struct vng *g, const struct vng_buf *b)
{
	if (g->o.mode == VNG_BIG) {
		g->free[g->nfree++] = b->gpa[0];
		for (uint32_t i = 2; i < b->nseg; i++)
			g->free[g->nfree++] = b->gpa[i];
	} else {
		chunk_put(g, b->chunk);
	}
}

int vng_add_one(struct vng *g)
{
	struct vng_buf b;
	int rc;

	memset(&b, 0, sizeof(b));
	if (g->num_free == 0)
		return -ENOSPC;
	switch (g->o.mode) {
	case VNG_SMALL: {
		/* add_recvbuf_small */
		uint32_t stride = (uint32_t)(align_up(g->hdr_len + RX_PAD + GOOD_PACKET_LEN, 64) +
					     align_up(SHINFO, 64));

		if (!frag_refill(g, stride))
			return -ENOMEM;
		b.nseg = 1;
		b.gpa[0] = frag_carve(g, stride, &b) + RX_PAD;
		b.len[0] = g->hdr_len + GOOD_PACKET_LEN;
		break;
	}
	case VNG_MERGEABLE: {
		/* add_recvbuf_mergeable (no XDP: no headroom) */
		uint32_t len = g->mrg_len, hole;

		if (!frag_refill(g, len))
			return -ENOMEM;
		b.nseg = 1;
		b.gpa[0] = frag_carve(g, len, &b);
		hole = CHUNK - g->frag_off;
		if (hole < len) {
			len += hole;
			g->frag_off += hole;
		}
		b.len[0] = len;
		break;
	}
	case VNG_BIG: {
		/* add_recvbuf_big */
		uint32_t nsg = g->o.big_frags + 2;

		if (g->nfree < nsg - 1 || (!g->indirect && g->num_free < nsg))
			return g->nfree < nsg - 1 ? -ENOMEM : -ENOSPC;
		b.nseg = nsg;
		for (uint32_t i = nsg - 1; i > 1; i--) {
			b.gpa[i] = g->free[--g->nfree];
			b.len[i] = PG;
		}
		b.gpa[0] = g->free[--g->nfree];
		b.len[0] = g->hdr_len;
		b.gpa[1] = b.gpa[0] + PADDED_HDR;
		b.len[1] = PG - PADDED_HDR;
		break;
	}
	}
	rc = add_split(g, &b);
	if (rc < 0)
		buf_release_memory(g, &b);
	return rc;
}

uint32_t vng_refill(struct vng *g)
{
	uint32_t n = 0;

	while (g->num_free && vng_add_one(g) == 0)
		n++;
	return n;
}

bool vng_kick_prepare(struct vng *g)
{
	uint16_t new = g->avail_idx_shadow, old = (uint16_t)(new - g->num_added);
	bool kick;

	/* virtio_mb: the new avail->idx before reading avail_event / flags. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	g->num_added = 0;
	if (g->event) {
		uint16_t ev = ld16(g, avail_event_gpa(g));

		kick = (uint16_t)(new - ev - 1) < (uint16_t)(new - old);
	} else {
		kick = (ld16(g, g->used_gpa) & VD_VRING_USED_F_NO_NOTIFY) == 0;
	}
	if (kick)
		g->st.kicks++;
	return kick;
}

/* ---- consuming ----------------------------------------------------- */

int vng_get_used(struct vng *g, uint16_t *head, uint32_t *len)
{
	uint16_t uidx;
	uint32_t id, l;
	uint8_t *e;
	struct vng_buf *b;

	if (g->broken)
		return -EIO;
	/* virtio_rmb after reading used->idx: acquire. */
	uidx = le16toh(__atomic_load_n(f16(g, g->used_gpa + 2), __ATOMIC_ACQUIRE));
	if (uidx == g->last_used_idx)
		return 0;
	e = vng_at(g, g->used_gpa + 4 + 8ull * (g->last_used_idx & (g->o.qsize - 1)), 8);
	memcpy(&id, e, 4);
	memcpy(&l, e + 4, 4);
	id = le32toh(id);
	l = le32toh(l);
	if (id >= g->o.qsize || !g->bufs[id].posted) {
		g->broken = true; /* BAD_RING */
		g->st.bad_used++;
		return -EIO;
	}
	b = &g->bufs[id];
	b->posted = false;
	/* detach_buf_split: the descriptors back on the free list */
	if (g->indirect && b->nseg > 1) {
		g->next[id] = g->free_head;
		g->num_free++;
	} else {
		uint16_t last = (uint16_t)id;

		for (uint32_t s = 1; s < b->nseg; s++)
			last = g->next[last];
		g->next[last] = g->free_head;
		g->num_free += b->nseg;
	}
	g->free_head = (uint16_t)id;
	g->last_used_idx++;
	if (!g->no_interrupt) {
		/* virtio_store_mb */
		st16(g, used_event_gpa(g), g->last_used_idx);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
	}
	g->st.used++;
	*head = (uint16_t)id;
	*len = l;
	return 1;
}

void vng_release(struct vng *g, uint16_t head)
{
	buf_release_memory(g, &g->bufs[head]);
}

void vng_disable_cb(struct vng *g)
{
	if (g->no_interrupt)
		return;
	g->no_interrupt = true;
	if (g->event)
		st16(g, used_event_gpa(g), 0); /* what Linux writes */
	else
		st16(g, g->avail_gpa, VD_VRING_AVAIL_F_NO_INTERRUPT);
}

void vng_enable_cb(struct vng *g)
{
	if (g->no_interrupt) {
		g->no_interrupt = false;
		if (!g->event)
			st16(g, g->avail_gpa, 0);
	}
	st16(g, used_event_gpa(g), g->last_used_idx);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

/* Copy bytes [off, off + n) of the buffer's concatenated segments into
 * @out at @at, within @cap. */
static void gather(const struct vng *g, const struct vng_buf *b, uint64_t off, uint64_t n, uint8_t *out,
		   size_t cap, size_t at)
{
	for (uint32_t s = 0; s < b->nseg && n; s++) {
		uint64_t take;

		if (off >= b->len[s]) {
			off -= b->len[s];
			continue;
		}
		take = b->len[s] - off < n ? b->len[s] - off : n;
		for (uint64_t i = 0; i < take; i++, at++)
			if (at < cap)
				out[at] = *vng_at(g, b->gpa[s] + off + i, 1);
		n -= take;
		off = 0;
	}
}

static uint64_t buf_bytes(const struct vng_buf *b)
{
	uint64_t t = 0;

	for (uint32_t s = 0; s < b->nseg; s++)
		t += b->len[s];
	return t;
}

static void read_hdr(const struct vng *g, const struct vng_buf *b, struct vng_hdr *h)
{
	uint8_t raw[20] = {0};
	uint16_t v;

	gather(g, b, 0, g->hdr_len, raw, sizeof(raw), 0);
	memset(h, 0, sizeof(*h));
	h->flags = raw[0];
	h->gso_type = raw[1];
	memcpy(&v, raw + 2, 2);
	h->hdr_len = le16toh(v);
	memcpy(&v, raw + 4, 2);
	h->gso_size = le16toh(v);
	memcpy(&v, raw + 6, 2);
	h->csum_start = le16toh(v);
	memcpy(&v, raw + 8, 2);
	h->csum_offset = le16toh(v);
	if (g->hdr_len >= 12) {
		memcpy(&v, raw + 10, 2);
		h->num_buffers = le16toh(v);
	}
}

int vng_recv(struct vng *g, struct vng_hdr *hdr, uint8_t *buf, size_t cap)
{
	uint16_t head;
	uint32_t len;
	uint64_t total;
	int rc = vng_get_used(g, &head, &len);
	struct vng_buf b;

	if (rc <= 0)
		return rc == 0 ? -EAGAIN : rc;
	b = g->bufs[head];
	if (len < g->hdr_len + ETH_HLEN) {
		/* receive_buf: short packet, recycled */
		g->st.length_errors++;
		vng_release(g, head);
		return -EBADMSG;
	}
	if (len > buf_bytes(&b)) {
		vng_release(g, head);
		return -EIO;
	}
	read_hdr(g, &b, hdr);
	total = len - g->hdr_len;
	gather(g, &b, g->hdr_len, total, buf, cap, 0);
	vng_release(g, head);
	if (g->o.mode == VNG_MERGEABLE) {
		/* receive_mergeable: num_buffers - 1 more used entries */
		for (uint16_t k = 1; k < hdr->num_buffers; k++) {
			rc = vng_get_used(g, &head, &len);
			if (rc <= 0)
				return -EIO; /* "buffers out of ... missing" */
			b = g->bufs[head];
			if (len > buf_bytes(&b)) {
				vng_release(g, head);
				return -EIO;
			}
			gather(g, &b, 0, len, buf, cap, (size_t)total);
			total += len;
			vng_release(g, head);
		}
	}
	g->st.frames++;
	return (int)total;
}

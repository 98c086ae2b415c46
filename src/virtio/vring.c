/* SPDX-License-Identifier: MIT */
/* The device side of a split virtqueue; see vring.h for the rules. */
#include "virtio/vring.h"

#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define PAGE_SZ ((uint64_t)VDEMUX_PAGE_SIZE)

/* Offsets inside the rings (VIRTIO 1.x 2.7.6 and 2.7.8). */
#define AVAIL_FLAGS 0u
#define AVAIL_IDX 2u
#define AVAIL_RING 4u
#define USED_FLAGS 0u
#define USED_IDX 2u
#define USED_RING 4u

/* Per head: where it is between avail and used. */
enum head_state {
	HEAD_FREE = 0, /* with the guest */
	HEAD_POPPED,   /* handed to the caller, awaiting vd_vring_push() */
	HEAD_PUSHED,   /* used entry written, not yet published */
	HEAD_SKIPPED,  /* awaiting its len-0 entry at the next publish */
};

struct vd_vring {
	struct vd_gmem gm;
	struct vd_vring_config cfg;
	struct vdemux_alloc_hooks alloc;
	uint8_t *desc; /* host views of the rings (checked at create) */
	uint8_t *avail;
	uint8_t *used;
	uint64_t hull[2][2]; /* [page?]: the least range [lo, hi) holding
			       * every ring (page: rounded out to pages) */
	uint32_t size;
	uint16_t mask;
	bool event_idx;
	bool indirect;
	bool write_only;

	uint16_t last_avail; /* next avail entry to take */
	uint16_t avail_seen; /* avail->idx as last loaded */
	uint16_t used_next;  /* next used slot to fill */
	uint16_t used_pub;   /* used->idx as last stored */
	uint16_t signalled;  /* used_pub at the last need_notify */
	uint16_t armed_at;   /* last_avail when kicks were last asked for */
	bool armed;	     /* kicks asked for (and fenced) at armed_at */
	int broken;	     /* 0 or error kind + 1 */

	uint32_t inflight; /* heads not HEAD_FREE */
	uint32_t npushed;
	uint32_t nskip;
	uint8_t *state;	     /* enum head_state, by head */
	uint32_t *chain_len; /* total length of a popped chain, by head */
	uint16_t *pushed;    /* heads pushed since the last publish */
	uint16_t *skip;	     /* skipped heads, in the order found */

	struct vd_vring_stats st;
};

struct desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

static const char *const err_names[VD_VRING_ERR_COUNT] = {
	[VD_VRING_ERR_AVAIL_IDX] = "avail_idx",
	[VD_VRING_ERR_HEAD_RANGE] = "head_range",
	[VD_VRING_ERR_HEAD_INFLIGHT] = "head_inflight",
	[VD_VRING_ERR_NEXT_RANGE] = "next_range",
	[VD_VRING_ERR_LOOP] = "loop",
	[VD_VRING_ERR_TOO_LONG] = "too_long",
	[VD_VRING_ERR_INDIRECT_FEATURE] = "indirect_feature",
	[VD_VRING_ERR_INDIRECT_NESTED] = "indirect_nested",
	[VD_VRING_ERR_INDIRECT_NEXT] = "indirect_next",
	[VD_VRING_ERR_INDIRECT_LEN] = "indirect_len",
	[VD_VRING_ERR_INDIRECT_RANGE] = "indirect_range",
	[VD_VRING_ERR_READ_ONLY] = "read_only",
	[VD_VRING_ERR_ADDR_RANGE] = "addr_range",
	[VD_VRING_ERR_RING_OVERLAP] = "ring_overlap",
	[VD_VRING_ERR_ZERO_LEN] = "zero_len",
	[VD_VRING_ERR_LEN_OVERFLOW] = "len_overflow",
};

const char *vd_vring_err_name(enum vd_vring_err e)
{
	if ((unsigned)e >= VD_VRING_ERR_COUNT)
		return "?";
	return err_names[e];
}

/* ---- guest memory -------------------------------------------------- */

/* [gpa, gpa + len) lies in guest RAM. Overflow-safe for any inputs. */
static bool in_ram(const struct vd_gmem *gm, uint64_t gpa, uint64_t len)
{
	return len <= gm->size && gpa <= gm->size - len;
}

/* End of [gpa, gpa + len), saturated (only for overlap tests). */
static uint64_t end_of(uint64_t gpa, uint64_t len)
{
	return len > UINT64_MAX - gpa ? UINT64_MAX : gpa + len;
}

static bool overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	if (alen == 0 || blen == 0)
		return false;
	return a < end_of(b, blen) && b < end_of(a, alen);
}

/* In RAM and outside the RX window: the host mapping is sure to be there. */
static bool host_readable(const struct vd_gmem *gm, uint64_t gpa, uint64_t len)
{
	return in_ram(gm, gpa, len) && !overlap(gpa, len, gm->rxwin_gpa, gm->rxwin_len);
}

/*
 * Loads and stores of ring fields. The guest writes them concurrently, so
 * they go through __atomic (one access, never torn, never re-read by the
 * compiler). Fields are little-endian (2.4 / 2.7: legacy is guest-endian,
 * which is little-endian on every host this library runs on).
 */
static uint16_t ld16(const uint8_t *p)
{
	return le16toh(__atomic_load_n((const uint16_t *)(const void *)p, __ATOMIC_RELAXED));
}

static uint16_t ld16_acquire(const uint8_t *p)
{
	return le16toh(__atomic_load_n((const uint16_t *)(const void *)p, __ATOMIC_ACQUIRE));
}

static void st16(uint8_t *p, uint16_t v)
{
	__atomic_store_n((uint16_t *)(void *)p, htole16(v), __ATOMIC_RELAXED);
}

static void st16_release(uint8_t *p, uint16_t v)
{
	__atomic_store_n((uint16_t *)(void *)p, htole16(v), __ATOMIC_RELEASE);
}

static void st32(uint8_t *p, uint32_t v)
{
	__atomic_store_n((uint32_t *)(void *)p, htole32(v), __ATOMIC_RELAXED);
}

/*
 * One read of a descriptor into a local copy. memcpy because an indirect
 * table need not be aligned; the compiler barrier makes sure every later use
 * is of the copy, not a second read of guest memory.
 */
static void desc_read(struct desc *d, const uint8_t *p)
{
	uint8_t raw[16];

	memcpy(raw, p, sizeof(raw));
	__asm__ __volatile__("" ::: "memory");
	memcpy(&d->addr, raw, 8);
	memcpy(&d->len, raw + 8, 4);
	memcpy(&d->flags, raw + 12, 2);
	memcpy(&d->next, raw + 14, 2);
	d->addr = le64toh(d->addr);
	d->len = le32toh(d->len);
	d->flags = le16toh(d->flags);
	d->next = le16toh(d->next);
}

/* ---- creation ------------------------------------------------------ */

static void *std_calloc(size_t n, size_t size, void *payload)
{
	(void)payload;
	return calloc(n, size);
}

static void std_free(void *p, void *payload)
{
	(void)payload;
	free(p);
}

static void *vq_calloc(const struct vdemux_alloc_hooks *h, size_t n, size_t size)
{
	return h->calloc(n, size, h->payload);
}

static void vq_free(const struct vdemux_alloc_hooks *h, void *p)
{
	if (p)
		h->free(p, h->payload);
}

static bool ring_ok(const struct vd_gmem *gm, uint64_t gpa, uint64_t len, uint64_t align)
{
	return gpa % align == 0 && host_readable(gm, gpa, len);
}

int vd_vring_legacy_layout(struct vd_vring_config *out, uint64_t base_gpa, uint32_t size, uint32_t align)
{
	uint64_t avail, used_unaligned, used;

	if (!out || size == 0 || size > VD_VRING_MAX_SIZE || (size & (size - 1)) != 0 || align == 0 ||
	    (align & (align - 1)) != 0)
		return -EINVAL;
	if (base_gpa > UINT64_MAX - VD_VRING_DESC_BYTES(size))
		return -EINVAL;
	avail = base_gpa + VD_VRING_DESC_BYTES(size);
	if (avail > UINT64_MAX - VD_VRING_AVAIL_BYTES(size) - align)
		return -EINVAL;
	used_unaligned = avail + VD_VRING_AVAIL_BYTES(size);
	used = (used_unaligned + align - 1) & ~((uint64_t)align - 1);
	out->desc_gpa = base_gpa;
	out->avail_gpa = avail;
	out->used_gpa = used;
	out->size = size;
	return 0;
}

/* The rings' hull, exact and rounded out to pages (saturated at the top of
 * the address space, as hits() does). */
static void rings_hull(uint64_t hull[2][2], const struct vd_vring_config *cfg, uint32_t n)
{
	uint64_t lo = cfg->desc_gpa, hi = end_of(cfg->desc_gpa, VD_VRING_DESC_BYTES(n));
	uint64_t a = end_of(cfg->avail_gpa, VD_VRING_AVAIL_BYTES(n)),
		 u = end_of(cfg->used_gpa, VD_VRING_USED_BYTES(n));

	lo = cfg->avail_gpa < lo ? cfg->avail_gpa : lo;
	lo = cfg->used_gpa < lo ? cfg->used_gpa : lo;
	hi = a > hi ? a : hi;
	hi = u > hi ? u : hi;
	hull[0][0] = lo;
	hull[0][1] = hi;
	hull[1][0] = lo & ~(PAGE_SZ - 1);
	hull[1][1] = hi > UINT64_MAX - (PAGE_SZ - 1) ? UINT64_MAX : (hi + PAGE_SZ - 1) & ~(PAGE_SZ - 1);
}

int vd_vring_create(struct vd_vring **out, const struct vd_gmem *gm, const struct vd_vring_config *cfg,
		    const struct vdemux_alloc_hooks *alloc)
{
	static const struct vdemux_alloc_hooks std = {.calloc = std_calloc, .free = std_free};
	struct vd_vring *vq;
	uint32_t n;

	if (!out || !gm || !cfg || !gm->base || gm->size == 0 || ((uintptr_t)gm->base & 15u) != 0)
		return -EINVAL;
	if (alloc && (!alloc->calloc || !alloc->free))
		return -EINVAL;
	if (!alloc)
		alloc = &std;
	n = cfg->size;
	if (n == 0 || n > VD_VRING_MAX_SIZE || (n & (n - 1)) != 0 ||
	    (cfg->flags & ~VD_VRING_F_WRITE_ONLY) != 0)
		return -EINVAL;
	if (gm->rxwin_len > UINT64_MAX - gm->rxwin_gpa)
		return -EINVAL;
	/* 2.7 (alignment table): desc 16, avail 2, used 4. Each ring lies in
	 * memory the host can always read, and no ring overlaps another (the
	 * used ring is the only one we write: it must not be the others). */
	if (!ring_ok(gm, cfg->desc_gpa, VD_VRING_DESC_BYTES(n), 16) ||
	    !ring_ok(gm, cfg->avail_gpa, VD_VRING_AVAIL_BYTES(n), 2) ||
	    !ring_ok(gm, cfg->used_gpa, VD_VRING_USED_BYTES(n), 4))
		return -EINVAL;
	if (overlap(cfg->desc_gpa, VD_VRING_DESC_BYTES(n), cfg->avail_gpa, VD_VRING_AVAIL_BYTES(n)) ||
	    overlap(cfg->desc_gpa, VD_VRING_DESC_BYTES(n), cfg->used_gpa, VD_VRING_USED_BYTES(n)) ||
	    overlap(cfg->avail_gpa, VD_VRING_AVAIL_BYTES(n), cfg->used_gpa, VD_VRING_USED_BYTES(n)))
		return -EINVAL;

	vq = vq_calloc(alloc, 1, sizeof(*vq));
	if (!vq)
		return -ENOMEM;
	vq->alloc = *alloc;
	vq->state = vq_calloc(alloc, n, sizeof(*vq->state));
	vq->chain_len = vq_calloc(alloc, n, sizeof(*vq->chain_len));
	vq->pushed = vq_calloc(alloc, n, sizeof(*vq->pushed));
	vq->skip = vq_calloc(alloc, n, sizeof(*vq->skip));
	if (!vq->state || !vq->chain_len || !vq->pushed || !vq->skip) {
		vd_vring_destroy(vq);
		return -ENOMEM;
	}
	vq->gm = *gm;
	vq->cfg = *cfg;
	vq->desc = gm->base + cfg->desc_gpa;
	vq->avail = gm->base + cfg->avail_gpa;
	vq->used = gm->base + cfg->used_gpa;
	rings_hull(vq->hull, cfg, n);
	vq->size = n;
	vq->mask = (uint16_t)(n - 1);
	vq->event_idx = (cfg->features & VD_VIRTIO_F_EVENT_IDX) != 0;
	vq->indirect = (cfg->features & VD_VIRTIO_F_INDIRECT_DESC) != 0;
	vq->write_only = (cfg->flags & VD_VRING_F_WRITE_ONLY) != 0;
	*out = vq;
	return 0;
}

void vd_vring_destroy(struct vd_vring *vq)
{
	struct vdemux_alloc_hooks h;

	if (!vq)
		return;
	h = vq->alloc;
	vq_free(&h, vq->state);
	vq_free(&h, vq->chain_len);
	vq_free(&h, vq->pushed);
	vq_free(&h, vq->skip);
	vq_free(&h, vq);
}

void vd_vring_reset(struct vd_vring *vq)
{
	vq->last_avail = 0;
	vq->avail_seen = 0;
	vq->used_next = 0;
	vq->used_pub = 0;
	vq->signalled = 0;
	vq->armed = false;
	vq->broken = 0;
	vq->inflight = 0;
	vq->npushed = 0;
	vq->nskip = 0;
	memset(vq->state, 0, vq->size);
}

/* ---- the avail side ------------------------------------------------ */

static int break_queue(struct vd_vring *vq, enum vd_vring_err e)
{
	vq->st.err[e]++;
	vq->broken = (int)e + 1;
	return -EIO;
}

/*
 * Load avail->idx. Acquire: the loads of ring entries and descriptors that
 * follow must not be satisfied before it. The driver stores them, then a
 * write barrier, then avail->idx (2.7.13 "virtio_wmb"); our acquire is the
 * matching read barrier (Linux's vhost: smp_rmb after reading avail idx).
 * More than size entries ahead of what we took cannot be: the ring has size
 * slots, so the index is garbage, and so is which slots are valid.
 */
static int avail_refresh(struct vd_vring *vq)
{
	uint16_t idx = ld16_acquire(vq->avail + AVAIL_IDX);

	if ((uint16_t)(idx - vq->last_avail) > vq->size)
		return break_queue(vq, VD_VRING_ERR_AVAIL_IDX);
	vq->avail_seen = idx;
	return 0;
}

/*
 * Follow the chain at @head and check every descriptor. Returns
 * VD_VRING_ERR_COUNT when it is good, or the first problem found.
 * Terminates: each table of n descriptors is walked at most n + 1 steps,
 * the indirect one at most cap + 1 (each step appends a segment or fails).
 */
static enum vd_vring_err walk(const struct vd_vring *vq, uint16_t head, struct vd_vring_seg *segs,
			      uint32_t cap, uint32_t *nseg_out, uint32_t *len_out)
{
	const uint8_t *table = vq->desc;
	uint64_t tn = vq->size, steps = 0, total = 0;
	uint32_t idx = head, nseg = 0;
	bool in_indirect = false, seen_writable = false;

	for (;;) {
		struct desc d;
		bool w;

		if (++steps > tn)
			return VD_VRING_ERR_LOOP;
		desc_read(&d, table + 16u * (uint64_t)idx);
		if (d.flags & VD_VRING_DESC_F_INDIRECT) {
			if (!vq->indirect)
				return VD_VRING_ERR_INDIRECT_FEATURE;
			if (in_indirect)
				return VD_VRING_ERR_INDIRECT_NESTED;
			if (d.flags & VD_VRING_DESC_F_NEXT)
				return VD_VRING_ERR_INDIRECT_NEXT;
			if (d.len == 0 || d.len % 16u != 0)
				return VD_VRING_ERR_INDIRECT_LEN;
			if (!host_readable(&vq->gm, d.addr, d.len))
				return VD_VRING_ERR_INDIRECT_RANGE;
			/* The indirect descriptor's WRITE flag is ignored (2.7.5.3.2). */
			table = vq->gm.base + d.addr;
			tn = d.len / 16u;
			in_indirect = true;
			idx = 0;
			steps = 0;
			continue;
		}
		if (d.len == 0)
			return VD_VRING_ERR_ZERO_LEN;
		w = (d.flags & VD_VRING_DESC_F_WRITE) != 0;
		/* Readable descriptors come first (2.7.4.2); on a receive queue
		 * there are none. */
		if (!w && (vq->write_only || seen_writable))
			return VD_VRING_ERR_READ_ONLY;
		seen_writable = seen_writable || w;
		if (!in_ram(&vq->gm, d.addr, d.len))
			return VD_VRING_ERR_ADDR_RANGE;
		if (vd_vring_overlaps_rings(vq, d.addr, d.len, false))
			return VD_VRING_ERR_RING_OVERLAP;
		total += d.len;
		if (total > UINT32_MAX)
			return VD_VRING_ERR_LEN_OVERFLOW;
		if (nseg == cap)
			return VD_VRING_ERR_TOO_LONG;
		segs[nseg].gpa = d.addr;
		segs[nseg].len = d.len;
		segs[nseg].writable = w;
		nseg++;
		if (!(d.flags & VD_VRING_DESC_F_NEXT))
			break;
		if (d.next >= tn)
			return VD_VRING_ERR_NEXT_RANGE;
		idx = d.next;
	}
	*nseg_out = nseg;
	*len_out = (uint32_t)total;
	return VD_VRING_ERR_COUNT;
}

int vd_vring_pop(struct vd_vring *vq, struct vd_vring_chain *chain, struct vd_vring_seg *segs,
		 uint32_t max_segs)
{
	uint32_t cap;

	if (!vq || !chain || !segs || max_segs == 0)
		return -EINVAL;
	if (vq->broken)
		return -EIO;
	cap = max_segs < vq->size ? max_segs : vq->size;

	/* Bounded: each pass consumes an avail entry, and there are at most
	 * size of them between two refreshes (checked by avail_refresh). */
	for (;;) {
		enum vd_vring_err e;
		uint32_t nseg = 0, len = 0;
		uint16_t head;

		if (vq->last_avail == vq->avail_seen) {
			int rc = avail_refresh(vq);

			if (rc < 0)
				return rc;
			if (vq->last_avail == vq->avail_seen)
				return 0;
		}
		/* Ordered after the acquire load of avail->idx above (or an
		 * earlier one that already covered this entry). */
		head = ld16(vq->avail + AVAIL_RING + 2u * (vq->last_avail & vq->mask));
		if (head >= vq->size)
			return break_queue(vq, VD_VRING_ERR_HEAD_RANGE);
		if (vq->state[head] != HEAD_FREE)
			return break_queue(vq, VD_VRING_ERR_HEAD_INFLIGHT);
		vq->last_avail++;
		vq->inflight++;

		e = walk(vq, head, segs, cap, &nseg, &len);
		if (e == VD_VRING_ERR_COUNT) {
			vq->state[head] = HEAD_POPPED;
			vq->chain_len[head] = len;
			vq->st.popped++;
			chain->head = head;
			chain->nseg = nseg;
			chain->len = len;
			return 1;
		}
		vq->st.err[e]++;
		vq->st.skipped++;
		vq->state[head] = HEAD_SKIPPED;
		vq->skip[vq->nskip++] = head; /* < size: each head is skipped once */
	}
}

uint32_t vd_vring_avail_count(struct vd_vring *vq)
{
	if (vq->broken || avail_refresh(vq) < 0)
		return 0;
	return (uint16_t)(vq->avail_seen - vq->last_avail);
}

/* ---- the used side ------------------------------------------------- */

static void used_write(struct vd_vring *vq, uint16_t head, uint32_t len)
{
	uint8_t *e = vq->used + USED_RING + 8u * (uint32_t)(vq->used_next & vq->mask);

	st32(e, head);
	st32(e + 4, len);
	vq->used_next++;
}

static void head_done(struct vd_vring *vq, uint16_t head)
{
	vq->state[head] = HEAD_FREE;
	vq->inflight--;
}

int vd_vring_push(struct vd_vring *vq, uint16_t head, uint32_t len)
{
	if (!vq || head >= vq->size || vq->state[head] != HEAD_POPPED || len > vq->chain_len[head])
		return -EINVAL;
	/* Not visible to the guest until publish moves used->idx past it; and
	 * the head stays in flight until then: a guest offering it again
	 * before it could know it was used is offering a head twice. That
	 * also keeps the unpublished entries within the ring's size slots. */
	used_write(vq, head, len);
	vq->state[head] = HEAD_PUSHED;
	vq->pushed[vq->npushed++] = head;
	vq->st.pushed++;
	return 0;
}

uint32_t vd_vring_publish(struct vd_vring *vq)
{
	uint16_t n;

	for (uint32_t i = 0; i < vq->nskip; i++)
		used_write(vq, vq->skip[i], 0);
	n = (uint16_t)(vq->used_next - vq->used_pub);
	if (n == 0)
		return 0;
	/* Release: the entries (id, len) stored above must be visible before
	 * the index that hands them over. This is the spec's write barrier
	 * before the used idx update (2.7.8.2; Linux's vhost: smp_wmb before
	 * writing used->idx). */
	st16_release(vq->used + USED_IDX, vq->used_next);
	vq->used_pub = vq->used_next;
	for (uint32_t i = 0; i < vq->npushed; i++)
		head_done(vq, vq->pushed[i]);
	for (uint32_t i = 0; i < vq->nskip; i++)
		head_done(vq, vq->skip[i]);
	vq->npushed = 0;
	vq->nskip = 0;
	vq->st.publishes++;
	return n;
}

bool vd_vring_need_notify(struct vd_vring *vq)
{
	uint16_t now = vq->used_pub, old = vq->signalled;
	bool yes;

	if (now == old) {
		vq->st.no_notify++;
		return false;
	}
	vq->signalled = now;
	/*
	 * Full barrier: our store of used->idx must be globally visible before
	 * we load used_event / avail->flags. The driver stores used_event (or
	 * clears NO_INTERRUPT), issues a full barrier, then re-reads used->idx
	 * (virtqueue_enable_cb_delayed / virtqueue_poll). With a barrier on
	 * both sides, either we see its new used_event or it sees our new
	 * used->idx: no interrupt is lost (2.7.10, 2.7.7.2).
	 */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (vq->event_idx) {
		/* With EVENT_IDX the device ignores NO_INTERRUPT (2.7.10). */
		uint16_t ev = ld16(vq->avail + AVAIL_RING + 2u * vq->size);

		/* vring_need_event: did used->idx step over ev + 1 on its way
		 * from old to now (all modulo 2^16)? */
		yes = (uint16_t)(now - ev - 1) < (uint16_t)(now - old);
	} else {
		yes = (ld16(vq->avail + AVAIL_FLAGS) & VD_VRING_AVAIL_F_NO_INTERRUPT) == 0;
	}
	if (yes)
		vq->st.notify++;
	else
		vq->st.no_notify++;
	return yes;
}

int vd_vring_set_avail_event(struct vd_vring *vq, uint16_t idx)
{
	if (!vq->event_idx)
		return -EOPNOTSUPP;
	st16(vq->used + USED_RING + 8u * vq->size, idx);
	vq->armed = false;
	return 0;
}

/* Kicks were asked for at this entry (with EVENT_IDX the event index
 * names the entry the ring is at): the driver kicks for whatever it adds
 * from then on. */
static bool kick_armed(const struct vd_vring *vq)
{
	return vq->armed && (!vq->event_idx || vq->armed_at == vq->last_avail);
}

bool vd_vring_enable_kick(struct vd_vring *vq, bool on)
{
	/* Asked already, for the same entry, and fenced then: the driver
	 * kicks for whatever it adds from then on; what it added before is
	 * seen by the load below. Nothing to store, nothing to order. */
	if (on && kick_armed(vq))
		goto look;
	if (vq->event_idx) {
		if (!on) {
			vq->armed = false;
			return false; /* avail_event stays behind: no kick until it wraps */
		}
		st16(vq->used + USED_RING + 8u * vq->size, vq->last_avail);
	} else {
		st16(vq->used + USED_FLAGS, on ? 0 : VD_VRING_USED_F_NO_NOTIFY);
		vq->armed = false;
		if (!on)
			return false;
	}
	vq->armed = true;
	vq->armed_at = vq->last_avail;
	/*
	 * Full barrier: the store above must be visible before we look at
	 * avail->idx again. The driver stores avail->idx, issues a full
	 * barrier, then reads avail_event / used->flags to decide on a kick
	 * (virtqueue_kick_prepare). Either it sees our request, or we see its
	 * new entries here (2.7.7.2, 2.7.10).
	 */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
look:
	if (vq->broken || avail_refresh(vq) < 0)
		return true; /* let pop report the broken queue */
	return vq->avail_seen != vq->last_avail;
}

/* ---- queries ------------------------------------------------------- */

bool vd_vring_idle(struct vd_vring *vq)
{
	if (vq->broken || !kick_armed(vq))
		return false;
	return avail_refresh(vq) == 0 && vq->avail_seen == vq->last_avail;
}

int vd_vring_broken(const struct vd_vring *vq)
{
	return vq->broken;
}

const struct vd_vring_stats *vd_vring_stats(const struct vd_vring *vq)
{
	return &vq->st;
}

uint32_t vd_vring_inflight(const struct vd_vring *vq)
{
	return vq->inflight;
}

const struct vd_vring_config *vd_vring_config(const struct vd_vring *vq)
{
	return &vq->cfg;
}

const struct vd_gmem *vd_vring_gmem(const struct vd_vring *vq)
{
	return &vq->gm;
}

static bool hits(uint64_t gpa, uint64_t len, uint64_t ring, uint64_t rlen, bool page)
{
	if (page) {
		uint64_t first = ring & ~(PAGE_SZ - 1);
		uint64_t end = end_of(ring, rlen);

		/* Rings are in guest RAM, so rounding the end up cannot wrap
		 * unless RAM ends in the last page of the address space;
		 * saturate then. */
		end = end > UINT64_MAX - (PAGE_SZ - 1) ? UINT64_MAX
						       : (end + PAGE_SZ - 1) & ~(PAGE_SZ - 1);
		return overlap(gpa, len, first, end - first);
	}
	return overlap(gpa, len, ring, rlen);
}

bool vd_vring_overlaps_rings(const struct vd_vring *vq, uint64_t gpa, uint64_t len, bool page)
{
	const uint64_t *h = vq->hull[page];
	uint32_t n = vq->size;

	/* Most buffers lie away from the rings: outside their hull, none
	 * can be hit. */
	if (len == 0 || gpa >= h[1] || end_of(gpa, len) <= h[0])
		return false;
	return hits(gpa, len, vq->cfg.desc_gpa, VD_VRING_DESC_BYTES(n), page) ||
	       hits(gpa, len, vq->cfg.avail_gpa, VD_VRING_AVAIL_BYTES(n), page) ||
	       hits(gpa, len, vq->cfg.used_gpa, VD_VRING_USED_BYTES(n), page);
}

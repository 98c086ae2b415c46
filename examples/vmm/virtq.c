/*
 * Split virtqueues (legacy layout: one PFN, 4 KiB alignment), read from
 * guest RAM with every index and address checked: the guest is untrusted.
 */
#include <errno.h>
#include <string.h>

#include "vmm.h"

#define VQ_ALIGN 4096ull

struct vq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

#define DESC_F_NEXT 1u
#define DESC_F_WRITE 2u
#define DESC_F_INDIRECT 4u

void vq_setup(struct virtq *q, uint16_t size, uint32_t pfn)
{
	uint64_t base = (uint64_t)pfn * VQ_ALIGN;

	q->size = size;
	q->pfn = pfn;
	q->desc = base;
	q->avail = base + 16ull * size;
	q->used = (q->avail + 6 + 2ull * size + VQ_ALIGN - 1) & ~(VQ_ALIGN - 1);
	q->last_avail = 0;
	q->used_idx = 0;
	q->published = 0;
}

static uint16_t load16(const uint8_t *p)
{
	uint16_t v;
	memcpy(&v, p, 2);
	return v;
}

/* Append one descriptor's buffer to the chain, checked against guest RAM. */
static int chain_add(struct guest *g, struct vq_chain *c, const struct vq_desc *d)
{
	if (c->n == VQ_MAX_SEG)
		return -EINVAL;
	uint8_t *p = guest_ptr(g, d->addr, d->len);
	if (!p)
		return -EINVAL;
	c->seg[c->n].hva = p;
	c->seg[c->n].len = d->len;
	c->seg[c->n].write = d->flags & DESC_F_WRITE;
	c->n++;
	return 0;
}

/* An indirect table (VIRTIO_RING_F_INDIRECT_DESC): its own chain, starting
 * at entry 0, no nesting. */
static int pop_indirect(struct guest *g, struct vq_chain *c, const struct vq_desc *ind)
{
	if ((ind->flags & DESC_F_NEXT) || ind->len == 0 || ind->len % 16 || c->n)
		return -EINVAL;
	uint32_t n = ind->len / 16;
	const uint8_t *table = guest_ptr(g, ind->addr, ind->len);
	if (!table)
		return -EINVAL;
	uint32_t i = 0;
	for (uint32_t steps = 0;; steps++) {
		struct vq_desc d;
		if (steps == n)
			return -EINVAL; /* longer than its table: a loop */
		memcpy(&d, table + 16u * i, sizeof d);
		if ((d.flags & DESC_F_INDIRECT) || chain_add(g, c, &d) < 0)
			return -EINVAL;
		if (!(d.flags & DESC_F_NEXT))
			return 0;
		if (d.next >= n)
			return -EINVAL;
		i = d.next;
	}
}

int vq_pop(struct guest *g, struct virtq *q, struct vq_chain *c)
{
	uint8_t *avail = guest_ptr(g, q->avail, 4 + 2ull * q->size);
	uint8_t *desc = guest_ptr(g, q->desc, 16ull * q->size);
	if (!q->pfn || !avail || !desc)
		return -EINVAL;
	/* The index first, then the entries it covers (acquire). */
	uint16_t idx = __atomic_load_n((uint16_t *)(avail + 2), __ATOMIC_ACQUIRE);
	uint16_t pending = (uint16_t)(idx - q->last_avail);
	if (pending == 0)
		return 0;
	if (pending > q->size)
		return -EINVAL;
	uint16_t head = load16(avail + 4 + 2u * (q->last_avail % q->size));
	if (head >= q->size)
		return -EINVAL;

	c->head = head;
	c->n = 0;
	uint16_t i = head;
	for (unsigned steps = 0;; steps++) {
		struct vq_desc d;
		if (steps == q->size)
			return -EINVAL; /* longer than the table: a loop */
		/* One copy of the descriptor: the guest may change it meanwhile. */
		memcpy(&d, desc + 16u * i, sizeof d);
		if (d.flags & DESC_F_INDIRECT) {
			if (!q->indirect || pop_indirect(g, c, &d) < 0)
				return -EINVAL;
			break;
		}
		if (chain_add(g, c, &d) < 0)
			return -EINVAL;
		if (!(d.flags & DESC_F_NEXT))
			break;
		if (d.next >= q->size)
			return -EINVAL;
		i = d.next;
	}
	q->last_avail++;
	return 1;
}

bool vq_enable_notify(struct guest *g, struct virtq *q)
{
	uint8_t *used = guest_ptr(g, q->used, 6 + 8ull * q->size);
	uint8_t *avail = guest_ptr(g, q->avail, 4 + 2ull * q->size);
	if (!q->pfn || !used || !avail)
		return false;
	if (q->event_idx) {
		/* avail_event: kick me when you make entry last_avail available. */
		__atomic_store_n((uint16_t *)(used + 4 + 8u * q->size), q->last_avail, __ATOMIC_RELAXED);
	}
	/* The event index before reading the avail index again (pairs with the
	 * driver's barrier between its avail->idx store and its event read). */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	uint16_t idx = __atomic_load_n((uint16_t *)(avail + 2), __ATOMIC_ACQUIRE);
	return idx != q->last_avail;
}

void vq_unpop(struct virtq *q, unsigned n)
{
	q->last_avail = (uint16_t)(q->last_avail - n);
}

void vq_push(struct guest *g, struct virtq *q, uint16_t head, uint32_t len)
{
	uint8_t *used = guest_ptr(g, q->used, 4 + 8ull * q->size);
	if (!q->pfn || !used)
		return;
	uint32_t e[2] = {head, len};
	memcpy(used + 4 + 8u * (q->used_idx % q->size), e, sizeof e);
	q->used_idx++;
}

bool vq_publish(struct guest *g, struct virtq *q)
{
	uint8_t *used = guest_ptr(g, q->used, 4 + 8ull * q->size);
	uint8_t *avail = guest_ptr(g, q->avail, 6 + 2ull * q->size);
	if (!q->pfn || !used || !avail)
		return false;
	uint16_t old = q->published, now = q->used_idx;
	if (old == now)
		return false;
	q->published = now;
	/* The entries before the index (release); then read what the driver
	 * asked for, after a full barrier (it writes its event, then reads our
	 * index). */
	__atomic_store_n((uint16_t *)(used + 2), now, __ATOMIC_RELEASE);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (q->event_idx) {
		/* VIRTIO_RING_F_EVENT_IDX: used_event, after the avail ring. */
		uint16_t ev = __atomic_load_n((uint16_t *)(avail + 4 + 2u * q->size), __ATOMIC_RELAXED);
		return (uint16_t)(now - ev - 1) < (uint16_t)(now - old);
	}
	uint16_t flags = __atomic_load_n((uint16_t *)avail, __ATOMIC_RELAXED);
	return !(flags & 1u); /* VRING_AVAIL_F_NO_INTERRUPT */
}

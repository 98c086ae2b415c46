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
}

static uint16_t load16(const uint8_t *p)
{
	uint16_t v;
	memcpy(&v, p, 2);
	return v;
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
	for (;;) {
		struct vq_desc d;
		/* One copy of the descriptor: the guest may change it meanwhile. */
		memcpy(&d, desc + 16u * i, sizeof d);
		if ((d.flags & DESC_F_INDIRECT) || c->n == VQ_MAX_SEG || c->n >= q->size)
			return -EINVAL;
		uint8_t *p = guest_ptr(g, d.addr, d.len);
		if (!p)
			return -EINVAL;
		c->seg[c->n].hva = p;
		c->seg[c->n].len = d.len;
		c->seg[c->n].write = d.flags & DESC_F_WRITE;
		c->n++;
		if (!(d.flags & DESC_F_NEXT))
			break;
		if (d.next >= q->size)
			return -EINVAL;
		i = d.next;
	}
	q->last_avail++;
	return 1;
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
	uint8_t *avail = guest_ptr(g, q->avail, 4);
	if (!q->pfn || !used || !avail)
		return false;
	/* The entries before the index (release); then read the driver's flag. */
	__atomic_store_n((uint16_t *)(used + 2), q->used_idx, __ATOMIC_RELEASE);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	uint16_t flags = __atomic_load_n((uint16_t *)avail, __ATOMIC_RELAXED);
	return !(flags & 1u); /* VRING_AVAIL_F_NO_INTERRUPT */
}

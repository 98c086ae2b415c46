/* vdemux_engine_check(): the one place that reads every structure of the
 * core, to verify the invariants between calls. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/engine.h"

#define FAIL(...)                                          \
	do {                                               \
		if (msg && msglen)                         \
			snprintf(msg, msglen, __VA_ARGS__); \
		return -EUCLEAN;                           \
	} while (0)

static bool page_is_zero(const uint8_t *p)
{
	static const uint8_t zero[64];

	for (unsigned off = 0; off < PAGE; off += sizeof(zero))
		if (memcmp(p + off, zero, sizeof(zero)))
			return false;
	return true;
}

int vdemux_engine_check(const vdemux_engine *e, char *msg, size_t msglen)
{
	uint32_t nfree = 0, nfill = 0, nass = 0, nquar = 0;

	if (!e)
		return -EINVAL;
	if (msg && msglen)
		msg[0] = '\0';
	for (uint32_t p = 0; p < e->pool.npages; p++) {
		const struct pg *pg = &e->pool.pages[p];
		const struct vm *vm;

		switch (pg->state) {
		case PG_FREE:
			nfree++;
			if (pg->lent)
				FAIL("page %u: FREE and lent", p);
			if (!page_is_zero(pg_addr(&e->pool, p)))
				FAIL("page %u: FREE but not zeroed", p);
			break;
		case PG_FILLING:
			nfill++;
			/* Between calls a FILLING page is one lent to a device. */
			if (!pg->lent)
				FAIL("page %u: FILLING but not lent", p);
			break;
		case PG_QUARANTINED:
			nquar++;
			break;
		case PG_ASSIGNED:
			nass++;
			vm = pg->vm_idx < e->vmt.max ? e->vmt.vms[pg->vm_idx] : NULL;
			if (!vm)
				FAIL("page %u: ASSIGNED to missing VM index %u", p, pg->vm_idx);
			if (pg->slot >= vm->rx_pages || vm->slots[pg->slot].page != p)
				FAIL("page %u: ASSIGNED to VM %u slot %u, which does not hold it", p,
				     vm->id, pg->slot);
			break;
		default:
			FAIL("page %u: bad state %u", p, pg->state);
		}
	}
	if (nfree != e->pool.nfree || nfill != e->pool.nfilling || nass != e->pool.nassigned ||
	    nquar != e->pool.nquarantined)
		FAIL("gauges disagree: free %u/%u filling %u/%u assigned %u/%u quarantined %u/%u",
		     nfree, e->pool.nfree, nfill, e->pool.nfilling, nass, e->pool.nassigned, nquar, e->pool.nquarantined);
	if (nfree + nfill + nass + nquar != e->pool.npages)
		FAIL("conservation: %u + %u + %u + %u != %u", nfree, nfill, nass, nquar, e->pool.npages);
	for (uint32_t i = 0; i < e->pool.nfree; i++) {
		uint32_t p = e->pool.free_stack[i];

		if (p >= e->pool.npages || e->pool.pages[p].state != PG_FREE)
			FAIL("free list entry %u: page %u not FREE", i, p);
	}
	for (uint32_t i = 0; i < e->vmt.max; i++) {
		const struct vm *vm = e->vmt.vms[i];
		uint32_t held = 0, posted = 0;

		if (!vm)
			continue;
		for (uint32_t s = 0; s < vm->rx_pages; s++) {
			const struct slot *sl = &vm->slots[s];
			uint64_t gpa = slot_gpa(vm, s);

			if (sl->posted && sl->filled)
				FAIL("VM %u slot %u: posted and filled", vm->id, s);
			if (sl->posted)
				posted++;
			if (sl->page != VDEMUX_NO_PAGE) {
				const struct pg *pg;

				if (sl->page >= e->pool.npages)
					FAIL("VM %u slot %u: bad page %u", vm->id, s, sl->page);
				pg = &e->pool.pages[sl->page];
				if (pg->state != PG_ASSIGNED || pg->vm_idx != vm->idx || pg->slot != s)
					FAIL("VM %u slot %u: page %u not assigned here", vm->id, s,
					     sl->page);
				held++;
			} else if (sl->filled) {
				FAIL("VM %u slot %u: filled hole", vm->id, s);
			}
			for (unsigned b = 0; b < vm->nbe; b++) {
				const struct be_ref *r = &vm->bes[b];
				uint32_t mp;

				if (!r->be->query || (sl->page != VDEMUX_NO_PAGE && e->pool.pages[sl->page].stale))
					continue;
				if (r->be->query(r->be, r->ctx, gpa, &mp))
					continue;
				if (mp != (sl->page == VDEMUX_NO_PAGE ? VDEMUX_NO_PAGE
								     : abs_page(&e->pool, sl->page)))
					FAIL("VM %u GPA 0x%llx: backend %s maps page %d, engine says %d",
					     vm->id, (unsigned long long)gpa, r->be->name,
					     (int)mp, (int)sl->page);
			}
		}
		if (held != vm->held)
			FAIL("VM %u: holds %u pages, counted %u", vm->id, held, vm->held);
		if (held > vm->quota)
			FAIL("VM %u: holds %u pages, quota %u", vm->id, held, vm->quota);
		if (posted != vm->postq.count)
			FAIL("VM %u: %u posted slots, queue has %u", vm->id, posted, vm->postq.count);
		for (uint32_t k = 0; k < vm->postq.count; k++) {
			uint32_t s = vd_postq_peek(&vm->postq, k);

			if (s >= vm->rx_pages || !vm->slots[s].posted)
				FAIL("VM %u: post queue entry %u names slot %u, not posted", vm->id, k, s);
		}
	}
	return 0;
}

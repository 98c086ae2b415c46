/* SPDX-License-Identifier: MIT */
/* vdemux_engine_check(): the one place that reads every structure of the
 * core, to verify the invariants between calls. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <vdemux/engine.h>
#include <vdemux/sys/backend.h>

#include "common/util.h"
#include "core/engine.h"
#include "core/pool.h"
#include "core/ring.h"
#include "core/vm.h"

#define FAIL VD_CHECK_FAIL

static bool page_is_zero(const uint8_t *p)
{
	static const uint8_t zero[64];

	for (unsigned off = 0; off < PAGE; off += sizeof(zero))
		if (memcmp(p + off, zero, sizeof(zero)))
			return false;
	return true;
}

/* One page's state, counted by state in n[]. */
static int check_page(const struct vdemux_engine *e, uint32_t p, uint32_t n[5], char *msg, size_t msglen)
{
	const struct pg *pg = &e->pool.pages[p];
	const struct vm *vm;

	switch (pg->state) {
	case PG_FREE:
		if (pg->lent)
			FAIL("page %u: FREE and lent", p);
		if (!page_is_zero(pg_addr(&e->pool, p)))
			FAIL("page %u: FREE but not zeroed", p);
		break;
	case PG_FILLING:
		/* Between calls a FILLING page is one lent to a device. */
		if (!pg->lent)
			FAIL("page %u: FILLING but not lent", p);
		break;
	case PG_QUARANTINED: break;
	case PG_AWAY:
		/* Another shard's: its bytes are not this engine's to read. */
		if (pg->lent)
			FAIL("page %u: AWAY and lent", p);
		break;
	case PG_ASSIGNED:
		vm = pg->vm_idx < e->vmt.max ? e->vmt.vms[pg->vm_idx] : NULL;
		if (!vm)
			FAIL("page %u: ASSIGNED to missing VM index %u", p, pg->vm_idx);
		if (pg->slot >= vm->rx_pages || vm->slots[pg->slot].page != p)
			FAIL("page %u: ASSIGNED to VM %u slot %u, which does not hold it", p, vm->id,
			     pg->slot);
		break;
	default: FAIL("page %u: bad state %u", p, pg->state);
	}
	n[pg->state]++;
	return 0;
}

/* Every page, the gauges, conservation and the free stack. */
static int check_pool(const struct vdemux_engine *e, char *msg, size_t msglen)
{
	const struct vd_pool *pl = &e->pool;
	uint32_t n[5] = {0};
	int err;

	for (uint32_t p = 0; p < pl->npages; p++)
		if ((err = check_page(e, p, n, msg, msglen)))
			return err;
	if (n[PG_FREE] != pl->nfree || n[PG_FILLING] != pl->nfilling || n[PG_ASSIGNED] != pl->nassigned ||
	    n[PG_QUARANTINED] != pl->nquarantined || n[PG_AWAY] != pl->naway)
		FAIL("gauges disagree: free %u/%u filling %u/%u assigned %u/%u quarantined %u/%u away %u/%u",
		     n[PG_FREE], pl->nfree, n[PG_FILLING], pl->nfilling, n[PG_ASSIGNED], pl->nassigned,
		     n[PG_QUARANTINED], pl->nquarantined, n[PG_AWAY], pl->naway);
	if (n[PG_FREE] + n[PG_FILLING] + n[PG_ASSIGNED] + n[PG_QUARANTINED] + n[PG_AWAY] != pl->npages)
		FAIL("conservation: %u + %u + %u + %u + %u != %u", n[PG_FREE], n[PG_FILLING],
		     n[PG_ASSIGNED], n[PG_QUARANTINED], n[PG_AWAY], pl->npages);
	for (uint32_t i = 0; i < pl->nfree; i++) {
		uint32_t p = pl->free_stack[i];

		if (p >= pl->npages || pl->pages[p].state != PG_FREE)
			FAIL("free list entry %u: page %u not FREE", i, p);
		if (pl->stack_pos[p] != i)
			FAIL("free list entry %u: page %u records position %u", i, p, pl->stack_pos[p]);
	}
	for (uint32_t p = 0; p < pl->npages; p++)
		if (!(pl->free_bits[p / 64] >> (p % 64) & 1) != (pl->pages[p].state != PG_FREE))
			FAIL("free bitmap: page %u marked %s but %s", p,
			     pl->free_bits[p / 64] >> (p % 64) & 1 ? "free" : "taken",
			     pl->pages[p].state == PG_FREE ? "FREE" : "not FREE");
	return 0;
}

/* What each table of the VM maps at slot s agrees with the engine (where
 * the backend can tell, and the page is not stale). */
static int check_tables(const struct vdemux_engine *e, const struct vm *vm, uint32_t s, char *msg,
			size_t msglen)
{
	const struct slot *sl = &vm->slots[s];
	uint32_t want = abs_or_none(&e->pool, sl->page);

	if (sl->page != VDEMUX_NO_PAGE && e->pool.pages[sl->page].stale)
		return 0;
	for (unsigned b = 0; b < vm->nbe; b++) {
		const struct be_ref *r = &vm->bes[b];
		uint32_t mp;

		if (!r->be->query || r->be->query(r->be, r->ctx, slot_gpa(vm, s), &mp))
			continue;
		if (mp != want)
			FAIL("VM %u GPA 0x%llx: backend %s maps page %d, engine says %d", vm->id,
			     (unsigned long long)slot_gpa(vm, s), r->be->name, (int)mp, (int)sl->page);
	}
	return 0;
}

/* A VM's slots against the pages, its counts, its post queue. */
static int check_vm(const struct vdemux_engine *e, const struct vm *vm, char *msg, size_t msglen)
{
	uint32_t held = 0, posted = 0;
	int err;

	for (uint32_t s = 0; s < vm->rx_pages; s++) {
		const struct slot *sl = &vm->slots[s];

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
				FAIL("VM %u slot %u: page %u not assigned here", vm->id, s, sl->page);
			held++;
		} else if (sl->filled) {
			FAIL("VM %u slot %u: filled hole", vm->id, s);
		} else if (vm->chains && !(vm->flags & VDEMUX_VM_F_UNPOPULATED)) {
			/* A virtio-net queue's window is guest RAM (a queue
			 * sharing another's RAM holds none of it). */
			FAIL("VM %u GPA 0x%llx: a hole in guest RAM", vm->id,
			     (unsigned long long)slot_gpa(vm, s));
		}
		if ((err = check_tables(e, vm, s, msg, msglen)))
			return err;
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
	return 0;
}

int vdemux_engine_check(const vdemux_engine *e, char *msg, size_t msglen)
{
	int err;

	if (!e)
		return -EINVAL;
	if (msg && msglen)
		msg[0] = '\0';
	if ((err = check_pool(e, msg, msglen)))
		return err;
	for (uint32_t i = 0; i < e->vmt.max; i++)
		if (e->vmt.vms[i] && (err = check_vm(e, e->vmt.vms[i], msg, msglen)))
			return err;
	return 0;
}

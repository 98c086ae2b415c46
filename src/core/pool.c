/* The pool of engine pages: a LIFO stack of FREE (zeroed, unmapped) pages,
 * so that recently cleared pages, still warm in the cache, are reused first. */
#include <errno.h>
#include <string.h>

#include "core/internal.h"

int vd_pool_init(struct vdemux_engine *e)
{
	e->pages = vd_calloc(&e->alloc, e->npages, sizeof(*e->pages));
	e->free_stack = vd_calloc(&e->alloc, e->npages, sizeof(*e->free_stack));
	if (!e->pages || !e->free_stack)
		return -ENOMEM;
	/* Push in reverse so that page 0 is handed out first. */
	for (uint32_t i = 0; i < e->npages; i++) {
		e->pages[i].state = PG_FREE;
		e->free_stack[i] = e->npages - 1 - i;
	}
	e->nfree = e->npages;
	return 0;
}

uint32_t vd_pool_get(struct vdemux_engine *e, uint32_t *out, uint32_t n)
{
	if (n > e->nfree)
		n = e->nfree;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t p = e->free_stack[--e->nfree];
		struct pg *pg = &e->pages[p];

		pg->state = PG_FILLING;
		pg->dirty = 0;
		out[i] = p;
	}
	e->nfilling += n;
	return n;
}

static void pool_push(struct vdemux_engine *e, uint32_t p)
{
	struct pg *pg = &e->pages[p];

	if (pg->dirty)
		memset(pg_addr(e, p), 0, pg->dirty);
	pg->dirty = 0;
	pg->state = PG_FREE;
	pg->lent = 0;
	pg->stale = 0;
	pg->vm_idx = 0;
	pg->slot = 0;
	e->free_stack[e->nfree++] = p;
}

void vd_pool_put(struct vdemux_engine *e, uint32_t p)
{
	e->nfilling--;
	pool_push(e, p);
}

void vd_page_assign(struct vdemux_engine *e, uint32_t p, struct vm *vm, uint32_t slot)
{
	struct pg *pg = &e->pages[p];

	if (pg->state == PG_FILLING)
		e->nfilling--;
	else
		e->nassigned--; /* re-assignment (never used across VMs) */
	pg->state = PG_ASSIGNED;
	pg->lent = 0;
	pg->vm_idx = vm->idx;
	pg->slot = slot;
	e->nassigned++;
}

void vd_page_quarantine(struct vdemux_engine *e, uint32_t p)
{
	e->nassigned--;
	e->nquarantined++;
	e->pages[p].state = PG_QUARANTINED;
}

void vd_page_reclaim(struct vdemux_engine *e, uint32_t p)
{
	e->nassigned--;
	/* A guest could write anywhere in a page it could reach. */
	e->pages[p].dirty = PAGE;
	pool_push(e, p);
	e->st.harvests++;
}

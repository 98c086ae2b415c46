/* The pool of engine pages: a LIFO stack of FREE (zeroed, unmapped) pages,
 * so that recently cleared pages, still warm in the cache, are reused first. */
#include <errno.h>
#include <string.h>

#include "core/pool.h"

int vd_pool_init(struct vd_pool *pl, const struct vdemux_alloc_hooks *alloc)
{
	pl->pages = vd_calloc(alloc, pl->npages, sizeof(*pl->pages));
	pl->free_stack = vd_calloc(alloc, pl->npages, sizeof(*pl->free_stack));
	if (!pl->pages || !pl->free_stack)
		return -ENOMEM;
	/* Push in reverse so that page 0 is handed out first. */
	for (uint32_t i = 0; i < pl->npages; i++) {
		pl->pages[i].state = PG_FREE;
		pl->free_stack[i] = pl->npages - 1 - i;
	}
	pl->nfree = pl->npages;
	return 0;
}

void vd_pool_fini(struct vd_pool *pl, const struct vdemux_alloc_hooks *alloc)
{
	vd_free(alloc, pl->pages);
	vd_free(alloc, pl->free_stack);
}

uint32_t vd_pool_get(struct vd_pool *pl, uint32_t *out, uint32_t n)
{
	if (n > pl->nfree)
		n = pl->nfree;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t p = pl->free_stack[--pl->nfree];
		struct pg *pg = &pl->pages[p];

		pg->state = PG_FILLING;
		pg->dirty = 0;
		out[i] = p;
	}
	pl->nfilling += n;
	return n;
}

static void pool_push(struct vd_pool *pl, uint32_t p)
{
	struct pg *pg = &pl->pages[p];

	if (pg->dirty)
		memset(pg_addr(pl, p), 0, pg->dirty);
	pg->dirty = 0;
	pg->state = PG_FREE;
	pg->lent = 0;
	pg->stale = 0;
	pg->vm_idx = 0;
	pg->slot = 0;
	pl->free_stack[pl->nfree++] = p;
}

void vd_pool_put(struct vd_pool *pl, uint32_t p)
{
	pl->nfilling--;
	pool_push(pl, p);
}

void vd_pool_assign(struct vd_pool *pl, uint32_t p, uint32_t vm_idx, uint32_t slot)
{
	struct pg *pg = &pl->pages[p];

	if (pg->state == PG_FILLING)
		pl->nfilling--;
	else
		pl->nassigned--; /* re-assignment (never used across VMs) */
	pg->state = PG_ASSIGNED;
	pg->lent = 0;
	pg->vm_idx = vm_idx;
	pg->slot = slot;
	pl->nassigned++;
}

void vd_pool_quarantine(struct vd_pool *pl, uint32_t p)
{
	pl->nassigned--;
	pl->nquarantined++;
	pl->pages[p].state = PG_QUARANTINED;
}

void vd_pool_reclaim(struct vd_pool *pl, uint32_t p)
{
	pl->nassigned--;
	pl->pages[p].dirty = PAGE;
	pool_push(pl, p);
}

/* The pool of engine pages: the state of every page (FREE, FILLING,
 * ASSIGNED, QUARANTINED), the stack of FREE pages and the gauges, and the
 * clearing that makes a page FREE. Every page state change goes through
 * here. Owner of: struct vd_pool. */
#ifndef VDEMUX_CORE_POOL_H
#define VDEMUX_CORE_POOL_H

#include "common/util.h"

enum pg_state {
	PG_FREE = 0,
	PG_FILLING = 1,
	PG_ASSIGNED = 2,
	/* Was mapped in a table of a removed VM that failed to unmap it: it
	 * may still be reachable there, so it is never reused. */
	PG_QUARANTINED = 3,
};

struct pg {
	uint8_t state;
	uint8_t lent;      /* FILLING and lent out by vdemux_rx_alloc() */
	uint8_t stale;     /* ASSIGNED but a backend may disagree (failed rollback) */
	uint8_t pad;
	uint32_t dirty;    /* bytes from offset 0 that may be non-zero */
	uint32_t vm_idx;   /* ASSIGNED: owner VM index */
	uint32_t slot;     /* ASSIGNED: slot in the owner's window */
};

struct vd_pool {
	uint8_t *base;       /* host address of engine page 0 */
	uint32_t first_page; /* arena index of engine page 0 */
	uint32_t npages;
	struct pg *pages;
	uint32_t *free_stack; /* LIFO: recently cleared pages are warm */
	uint32_t *stack_pos;  /* FREE page -> its index in free_stack */
	uint64_t *free_bits;  /* bit p set: page p is FREE (runs of free pages) */
	uint32_t cursor;      /* word of free_bits where the last run search stopped */
	uint32_t nfree;
	uint32_t nfilling;
	uint32_t nassigned;
	uint32_t nquarantined;
};

int vd_pool_init(struct vd_pool *pl, const struct vdemux_alloc_hooks *alloc);
void vd_pool_fini(struct vd_pool *pl, const struct vdemux_alloc_hooks *alloc);
/* Take up to n FREE pages (they become FILLING). Returns how many. */
uint32_t vd_pool_get(struct vd_pool *pl, uint32_t *out, uint32_t n);
/* vd_pool_get(), preferring n consecutive pages (out[i] = out[0] + i), so
 * that flipping them to consecutive GPAs is one table update; looks for
 * such a run among the most recently freed pages, then in a bounded scan;
 * else takes pages as vd_pool_get() does. Returns how many; *run (if not
 * NULL) tells whether they are one run. */
uint32_t vd_pool_get_run(struct vd_pool *pl, uint32_t *out, uint32_t n, bool *run);
/* vd_pool_get(), in runs as long as can be found: n consecutive pages if
 * there are, else runs of n/2, n/4, ... (each run in out in order), and
 * single pages only where no run of 2 is found. Returns how many. */
uint32_t vd_pool_get_runs(struct vd_pool *pl, uint32_t *out, uint32_t n);
/* FILLING -> FREE, clearing its dirty bytes. */
void vd_pool_put(struct vd_pool *pl, uint32_t p);
/* FILLING (or ASSIGNED, for a page kept by the same VM) -> ASSIGNED. */
void vd_pool_assign(struct vd_pool *pl, uint32_t p, uint32_t vm_idx, uint32_t slot);
/* ASSIGNED -> FREE: a guest could reach it, so all of it is cleared. */
void vd_pool_reclaim(struct vd_pool *pl, uint32_t p);
/* ASSIGNED -> QUARANTINED: never reused. */
void vd_pool_quarantine(struct vd_pool *pl, uint32_t p);

static inline uint8_t *pg_addr(const struct vd_pool *pl, uint32_t p)
{
	return pl->base + (size_t)p * PAGE;
}

/* Arena page index of engine page p (what backends are given). */
static inline uint32_t abs_page(const struct vd_pool *pl, uint32_t p)
{
	return p + pl->first_page;
}

static inline uint32_t abs_or_none(const struct vd_pool *pl, uint32_t p)
{
	return p == VDEMUX_NO_PAGE ? p : abs_page(pl, p);
}

#endif

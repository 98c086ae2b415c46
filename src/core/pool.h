/* SPDX-License-Identifier: MIT */
/* The pool of engine pages: the state of every page (FREE, FILLING,
 * ASSIGNED, QUARANTINED), the stack of FREE pages and the gauges, and the
 * clearing that makes a page FREE. Every change of a page's state and flags
 * goes through here (pool.c, and the inline functions below). Owner of:
 * struct vd_pool. */
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
	/* Another shard of the engine's group owns it (handoff.c): it is not
	 * this engine's to use, read or count as its own. */
	PG_AWAY = 4,
};

struct pg {
	uint8_t state;
	uint8_t lent;  /* FILLING and lent out by vdemux_rx_alloc() (2: and
			    * named in the call being checked) */
	uint8_t stale; /* ASSIGNED but a backend may disagree (failed rollback) */
	uint8_t pad;
	uint32_t dirty;	 /* bytes from offset 0 that may be non-zero */
	uint32_t vm_idx; /* ASSIGNED: owner VM index */
	uint32_t slot;	 /* ASSIGNED: slot in the owner's window */
};

struct vd_pool {
	uint8_t *base;	     /* host address of engine page 0 */
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
	uint32_t naway;
};

int vd_pool_init(struct vd_pool *pl, const struct vdemux_alloc_hooks *alloc);
/* vd_pool_init() for a shard of a group: the pages outside [lo, hi) start
 * AWAY (another shard's). */
int vd_pool_init_part(struct vd_pool *pl, const struct vdemux_alloc_hooks *alloc, uint32_t lo,
		      uint32_t hi);
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

/* Pages moving between the shards of a group (handoff.c). */
/* FILLING page p, holding a frame, goes to another shard: AWAY. */
void vd_pool_send(struct vd_pool *pl, uint32_t p);
/* AWAY page p arrives from another shard, bytes [0, dirty) possibly
 * non-zero (a frame): FILLING. */
void vd_pool_receive(struct vd_pool *pl, uint32_t p, uint32_t dirty);
/* Up to n FREE (zeroed) pages go to another shard: AWAY. Returns how many. */
uint32_t vd_pool_give(struct vd_pool *pl, uint32_t *out, uint32_t n);
/* AWAY page p comes back from another shard, bytes [0, dirty) to clear
 * (0: zeroed): FREE. */
void vd_pool_take_free(struct vd_pool *pl, uint32_t p, uint32_t dirty);

/* The flags of a page that are not its state: changed here only, by the
 * inline functions below, and read by whoever needs them. */

/* FILLING page p goes to a device (vdemux_rx_alloc()): it may write
 * anywhere in it. */
static inline void vd_pool_lend(struct vd_pool *pl, uint32_t p)
{
	pl->pages[p].lent = 1;
	pl->pages[p].dirty = PAGE;
}

/* Whether p names a page lent to a device and not yet named in this call
 * (see vd_pool_lent_mark()). */
static inline bool vd_pool_lent(const struct vd_pool *pl, uint32_t p)
{
	return p < pl->npages && pl->pages[p].state == PG_FILLING && pl->pages[p].lent == 1;
}

/* While a call checks a list of lent pages: p is named in it (a second
 * mention is then not vd_pool_lent()); unmark it once the list is checked. */
static inline void vd_pool_lent_mark(struct vd_pool *pl, uint32_t p)
{
	pl->pages[p].lent = 2;
}

static inline void vd_pool_lent_unmark(struct vd_pool *pl, uint32_t p)
{
	if (p < pl->npages && pl->pages[p].lent == 2)
		pl->pages[p].lent = 1;
}

/* Lent page p is back from its device, bytes [dirty, PAGE) already cleared:
 * it stays FILLING until delivered or put back. */
static inline void vd_pool_unlend(struct vd_pool *pl, uint32_t p, uint32_t dirty)
{
	pl->pages[p].dirty = dirty;
	pl->pages[p].lent = 0;
}

/* Bytes [0, n) of FILLING page p may be non-zero: what putting it back
 * clears. */
static inline void vd_pool_set_dirty(struct vd_pool *pl, uint32_t p, uint32_t n)
{
	pl->pages[p].dirty = n;
}

/* ASSIGNED page p may be mapped where the engine does not say (a failed
 * rollback or unmap); cleared when its unmap is tried again. */
static inline void vd_pool_set_stale(struct vd_pool *pl, uint32_t p, bool stale)
{
	pl->pages[p].stale = stale;
}

static inline bool vd_pool_stale(const struct vd_pool *pl, uint32_t p)
{
	return pl->pages[p].stale;
}

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

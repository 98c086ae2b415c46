/* SPDX-License-Identifier: MIT */
/* The pool of engine pages: a LIFO stack of FREE (zeroed, unmapped) pages,
 * so that recently cleared pages, still warm in the cache, are reused first;
 * beside it a bitmap of FREE pages and each one's place in the stack, so
 * that a run of consecutive free pages can be found and taken out of the
 * stack in O(n) (frames of several pages flipped to consecutive GPAs are
 * then one table update). */
#include <errno.h>
#include <string.h>

#include "core/pool.h"

static uint32_t bit_words(uint32_t n)
{
	return (n + 63) / 64;
}

static void bit_set(struct vd_pool *pl, uint32_t p)
{
	pl->free_bits[p / 64] |= 1ull << (p % 64);
}

static void bit_clear(struct vd_pool *pl, uint32_t p)
{
	pl->free_bits[p / 64] &= ~(1ull << (p % 64));
}

static bool bit_test(const struct vd_pool *pl, uint32_t p)
{
	return pl->free_bits[p / 64] >> (p % 64) & 1;
}

int vd_pool_init(struct vd_pool *pl, const struct vdemux_alloc_hooks *alloc)
{
	return vd_pool_init_part(pl, alloc, 0, pl->npages);
}

int vd_pool_init_part(struct vd_pool *pl, const struct vdemux_alloc_hooks *alloc, uint32_t lo,
		      uint32_t hi)
{
	pl->pages = vd_calloc(alloc, pl->npages, sizeof(*pl->pages));
	pl->free_stack = vd_calloc(alloc, pl->npages, sizeof(*pl->free_stack));
	pl->stack_pos = vd_calloc(alloc, pl->npages, sizeof(*pl->stack_pos));
	pl->free_bits = vd_calloc(alloc, bit_words(pl->npages), sizeof(*pl->free_bits));
	if (!pl->pages || !pl->free_stack || !pl->stack_pos || !pl->free_bits)
		return -ENOMEM;
	for (uint32_t p = 0; p < pl->npages; p++)
		pl->pages[p].state = PG_AWAY;
	pl->naway = pl->npages - (hi - lo);
	/* Push in reverse so that the lowest page is handed out first. */
	for (uint32_t p = hi; p-- > lo;) {
		pl->pages[p].state = PG_FREE;
		pl->stack_pos[p] = pl->nfree;
		pl->free_stack[pl->nfree++] = p;
		bit_set(pl, p);
	}
	return 0;
}

void vd_pool_fini(struct vd_pool *pl, const struct vdemux_alloc_hooks *alloc)
{
	vd_free(alloc, pl->pages);
	vd_free(alloc, pl->free_stack);
	vd_free(alloc, pl->stack_pos);
	vd_free(alloc, pl->free_bits);
}

uint32_t vd_pool_get(struct vd_pool *pl, uint32_t *out, uint32_t n)
{
	if (n > pl->nfree)
		n = pl->nfree;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t p = pl->free_stack[--pl->nfree];
		struct pg *pg = &pl->pages[p];

		bit_clear(pl, p);
		pg->state = PG_FILLING;
		pg->dirty = 0;
		out[i] = p;
	}
	pl->nfilling += n;
	return n;
}

/* Take FREE page p out of the middle of the stack: the top entry fills its
 * place. */
static void take(struct vd_pool *pl, uint32_t p)
{
	uint32_t i = pl->stack_pos[p], last = pl->free_stack[--pl->nfree];

	pl->free_stack[i] = last;
	pl->stack_pos[last] = i;
	bit_clear(pl, p);
	pl->pages[p].state = PG_FILLING;
	pl->pages[p].dirty = 0;
}

/* Most recently freed pages tried as part of a run, and words of the
 * bitmap scanned after them. */
#define RUN_TRIES 8u
#define RUN_SCAN_WORDS 16u

/* The first page of n free consecutive pages around p, or UINT32_MAX. */
static uint32_t run_around(const struct vd_pool *pl, uint32_t p, uint32_t n)
{
	uint32_t lo = p, hi = p;

	while (lo > 0 && p - lo < n - 1 && bit_test(pl, lo - 1))
		lo--;
	while (hi + 1 < pl->npages && hi - lo + 1 < n && bit_test(pl, hi + 1))
		hi++;
	return hi - lo + 1 >= n ? lo : UINT32_MAX;
}

/* Bit i of the result is set where bits i .. i + n - 1 of (hi:lo) are all
 * set: the starts, in the word lo, of runs of n free pages (n <= 64; a run
 * may end in the word after, hi). Doubling the run each time: log2(n)
 * steps of shifts and ANDs over the two words. */
static uint64_t run_starts(uint64_t lo, uint64_t hi, uint32_t n)
{
	uint32_t have = 1; /* bit i of (hi:lo): bits i .. i + have - 1 all set */

	while (have < n) {
		uint32_t k = have < n - have ? have : n - have; /* 1 to 32 */

		lo &= lo >> k | hi << (64 - k);
		hi &= hi >> k;
		have += k;
	}
	return lo;
}

/* A run of n free pages in a bounded scan of the bitmap from the cursor:
 * a word at a time, runs found with shifts, not bit by bit. */
static uint32_t run_scan(struct vd_pool *pl, uint32_t n)
{
	uint32_t words = bit_words(pl->npages);

	if (n > 64)
		return UINT32_MAX;
	if (pl->cursor >= words)
		pl->cursor = 0;
	for (uint32_t k = 0; k < RUN_SCAN_WORDS && k < words; k++) {
		uint32_t w = (pl->cursor + k) % words;
		/* runs do not wrap: no word after the last */
		uint64_t hi = w + 1 < words ? pl->free_bits[w + 1] : 0;
		uint64_t starts;

		if (pl->free_bits[w] == 0)
			continue;
		starts = run_starts(pl->free_bits[w], hi, n);
		if (starts) {
			pl->cursor = w;
			return w * 64 + (uint32_t)__builtin_ctzll(starts);
		}
	}
	pl->cursor = (pl->cursor + RUN_SCAN_WORDS) % words;
	return UINT32_MAX;
}

/* The first page of a run of n free pages, recently freed ones first, or
 * UINT32_MAX. */
static uint32_t find_run(struct vd_pool *pl, uint32_t n)
{
	uint32_t first = UINT32_MAX;

	for (uint32_t k = 0; k < RUN_TRIES && k < pl->nfree && first == UINT32_MAX; k++)
		first = run_around(pl, pl->free_stack[pl->nfree - 1 - k], n);
	if (first == UINT32_MAX)
		first = run_scan(pl, n);
	return first;
}

static void take_run(struct vd_pool *pl, uint32_t first, uint32_t *out, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		take(pl, first + i);
		out[i] = first + i;
	}
	pl->nfilling += n;
}

uint32_t vd_pool_get_run(struct vd_pool *pl, uint32_t *out, uint32_t n, bool *run)
{
	uint32_t first;
	bool dummy;

	if (!run)
		run = &dummy;
	*run = false;
	if (n <= 1 || n > pl->nfree) {
		n = vd_pool_get(pl, out, n);
		*run = n == 1;
		return n;
	}
	first = find_run(pl, n);
	if (first == UINT32_MAX)
		return vd_pool_get(pl, out, n);
	take_run(pl, first, out, n);
	*run = true;
	return n;
}

uint32_t vd_pool_get_runs(struct vd_pool *pl, uint32_t *out, uint32_t n)
{
	uint32_t got = 0, want = n;

	if (n > pl->nfree)
		n = pl->nfree;
	while (got < n) {
		uint32_t k = n - got < want ? n - got : want, first;

		if (k < 2) {
			got += vd_pool_get(pl, out + got, n - got);
			break;
		}
		first = find_run(pl, k);
		if (first == UINT32_MAX) {
			want = k / 2;
			continue;
		}
		take_run(pl, first, out + got, k);
		got += k;
	}
	return got;
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
	pl->stack_pos[p] = pl->nfree;
	pl->free_stack[pl->nfree++] = p;
	bit_set(pl, p);
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

void vd_pool_send(struct vd_pool *pl, uint32_t p)
{
	struct pg *pg = &pl->pages[p];

	pl->nfilling--;
	pl->naway++;
	pg->state = PG_AWAY;
	pg->dirty = 0;
	pg->lent = 0;
}

void vd_pool_receive(struct vd_pool *pl, uint32_t p, uint32_t dirty)
{
	struct pg *pg = &pl->pages[p];

	pl->naway--;
	pl->nfilling++;
	pg->state = PG_FILLING;
	pg->dirty = dirty;
	pg->lent = 0;
	pg->stale = 0;
}

uint32_t vd_pool_give(struct vd_pool *pl, uint32_t *out, uint32_t n)
{
	n = vd_pool_get(pl, out, n);
	for (uint32_t i = 0; i < n; i++)
		vd_pool_send(pl, out[i]);
	return n;
}

void vd_pool_take_free(struct vd_pool *pl, uint32_t p, uint32_t dirty)
{
	pl->naway--;
	pl->pages[p].dirty = dirty;
	pool_push(pl, p);
}

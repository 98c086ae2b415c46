/* SPDX-License-Identifier: MIT */
/*
 * Runs of consecutive pool pages: vd_pool_get_run() finds n consecutive
 * FREE pages among recently freed ones or in a bounded scan, falls back to
 * the LIFO order when there are none, and keeps the stack, the positions
 * and the bitmap consistent; vd_pool_get_runs() takes shorter runs before
 * single pages; vdemux_rx_alloc() lends runs; a frame of
 * several pages flipped into consecutive GPAs is counted as one run.
 */
#include <stdlib.h>
#include <string.h>

#include "vt.h"
#include "core/pool.h"

#define NP 64u

static struct vd_pool *pool_new_n(uint32_t np)
{
	static const struct vdemux_alloc_hooks none = {0};
	struct vd_pool *pl = calloc(1, sizeof(*pl));

	assert_non_null(pl);
	pl->npages = np;
	pl->base = calloc(np, VDEMUX_PAGE_SIZE);
	assert_non_null(pl->base);
	assert_int_equal(vd_pool_init(pl, &none), 0);
	return pl;
}

static struct vd_pool *pool_new(void)
{
	return pool_new_n(NP);
}

static void pool_free(struct vd_pool *pl)
{
	static const struct vdemux_alloc_hooks none = {0};

	free(pl->base);
	vd_pool_fini(pl, &none);
	free(pl);
}

/* Every FREE page is in the stack once, at the position it records, and
 * marked in the bitmap; no other page is. */
static void consistent(const struct vd_pool *pl)
{
	uint32_t nfree = 0;

	for (uint32_t i = 0; i < pl->nfree; i++) {
		uint32_t p = pl->free_stack[i];

		assert_int_equal(pl->pages[p].state, PG_FREE);
		assert_int_equal(pl->stack_pos[p], i);
	}
	for (uint32_t p = 0; p < pl->npages; p++) {
		bool bit = pl->free_bits[p / 64] >> (p % 64) & 1;

		assert_int_equal(bit, pl->pages[p].state == PG_FREE);
		nfree += bit;
	}
	assert_int_equal(nfree, pl->nfree);
}

static void take_all(struct vd_pool *pl, uint32_t *all)
{
	assert_int_equal(vd_pool_get(pl, all, NP), NP);
	consistent(pl);
}

static void test_run_is_found_in_a_fragmented_pool(void **state)
{
	struct vd_pool *pl = pool_new();
	uint32_t all[NP], out[4];
	bool run;

	(void)state;
	take_all(pl, all);
	for (uint32_t p = 0; p < NP; p += 2)
		vd_pool_put(pl, p);
	for (uint32_t p = 41; p < 48; p += 2)
		vd_pool_put(pl, p); /* 40..47 free */
	consistent(pl);
	assert_int_equal(vd_pool_get_run(pl, out, 4, &run), 4);
	assert_true(run);
	for (uint32_t i = 0; i < 4; i++) {
		assert_int_equal(out[i], out[0] + i);
		assert_true(out[i] >= 40 && out[i] < 48);
		assert_int_equal(pl->pages[out[i]].state, PG_FILLING);
	}
	consistent(pl);
	pool_free(pl);
}

static void test_no_run_falls_back_to_the_most_recently_freed_pages(void **state)
{
	struct vd_pool *pl = pool_new();
	uint32_t all[NP], out[3];
	bool run;

	(void)state;
	take_all(pl, all);
	for (uint32_t p = 0; p < NP; p += 2)
		vd_pool_put(pl, p);
	assert_int_equal(vd_pool_get_run(pl, out, 3, &run), 3);
	assert_false(run);
	/* LIFO: the last pages put back come first */
	assert_int_equal(out[0], 62);
	assert_int_equal(out[1], 60);
	assert_int_equal(out[2], 58);
	consistent(pl);
	pool_free(pl);
}

/* No run of 16 free pages: vd_pool_get_runs() takes the longest runs it
 * finds (here runs of 4 at pages 8k..8k+3, and a run across a word of the
 * bitmap), single pages only when no run of two is left. */
static void test_get_runs_takes_shorter_runs_before_single_pages(void **state)
{
	struct vd_pool *pl = pool_new();
	uint32_t all[NP], big[2 * NP], out[16];

	(void)state;
	take_all(pl, all);
	for (uint32_t p = 0; p < NP; p++)
		if (p % 8 < 4)
			vd_pool_put(pl, p); /* runs of 4: 0-3, 8-11, ... 56-59 */
	assert_int_equal(vd_pool_get_runs(pl, out, 16), 16);
	for (uint32_t i = 0; i < 16; i += 4) {
		assert_int_equal(out[i] % 8, 0);
		for (uint32_t k = 1; k < 4; k++)
			assert_int_equal(out[i + k], out[i] + k);
	}
	consistent(pl);
	pool_free(pl);

	/* a run that crosses from one 64-bit word of the bitmap to the next */
	pl = pool_new_n(2 * NP);
	assert_int_equal(vd_pool_get(pl, big, 2 * NP), 2 * NP);
	for (uint32_t p = 62; p < 66; p++)
		vd_pool_put(pl, p);
	vd_pool_put(pl, 10);
	assert_int_equal(vd_pool_get_runs(pl, out, 4), 4);
	for (uint32_t k = 1; k < 4; k++)
		assert_int_equal(out[k], out[0] + k);
	assert_int_equal(out[0], 62);
	consistent(pl);
	pool_free(pl);
}

static void test_run_taken_from_the_middle_keeps_the_stack_whole(void **state)
{
	struct vd_pool *pl = pool_new();
	uint32_t all[NP], out[8], rest[NP];
	bool run;

	(void)state;
	take_all(pl, all);
	for (uint32_t p = 0; p < NP; p++)
		vd_pool_put(pl, (p * 37) % NP); /* a scrambled stack */
	assert_int_equal(vd_pool_get_run(pl, out, 8, &run), 8);
	assert_true(run);
	consistent(pl);
	/* the other 56 pages come out once each, none of the run */
	assert_int_equal(vd_pool_get(pl, rest, NP), NP - 8);
	for (uint32_t i = 0; i < NP - 8; i++) {
		assert_true(rest[i] < out[0] || rest[i] > out[7]);
		for (uint32_t j = 0; j < i; j++)
			assert_int_not_equal(rest[i], rest[j]);
	}
	consistent(pl);
	pool_free(pl);
}

static void test_rx_alloc_lends_consecutive_pages(void **state)
{
	struct vt_fx_opts fo = {0};
	struct vt_fx *fx;
	struct vdemux_rx_buf b[16];

	fo.eng = VDEMUX_OPTS(vdemux_engine_opts, .npages = 64);
	fx = vt_fx_state(state, &fo);
	assert_int_equal(vdemux_rx_alloc(fx->eng, b, 16), 16);
	for (int i = 1; i < 16; i++)
		assert_int_equal(b[i].arena_off, b[0].arena_off + (uint64_t)i * VDEMUX_PAGE_SIZE);
	assert_int_equal(vdemux_rx_abort(fx->eng, b, 16), 16);
	vt_check(fx);
}

/* A 3-page zero-copy frame into 3 consecutive posted GPAs of a lazy VM,
 * flipped: one run, counted as such. */
static void test_multi_page_frame_to_consecutive_gpas_is_one_run(void **state)
{
	struct vt_fx_opts fo = {0};
	struct vt_fx *fx;
	struct vt_vm *vm;
	struct vdemux_rx_buf b[3];
	struct vdemux_vm_opts o;
	uint8_t mac[6], buf[3 * 4096];
	struct vt_rx rx;
	struct vdemux_engine_stats st;

	fo.eng = VDEMUX_OPTS(vdemux_engine_opts, .npages = 64, .harvest = VDEMUX_HARVEST_LAZY,
			     .copy = VDEMUX_COPY_NEVER);
	fx = vt_fx_state(state, &fo);
	o = vt_vm_opts(fx, 8);
	vm = vt_vm_add(fx, &o);
	vt_post_range(fx, vm, 0, 8);
	assert_int_equal(vdemux_rx_alloc(fx->eng, b, 3), 3);
	vt_mac(vm->id, mac);
	vt_frame_fill(buf, 9000, mac, ++fx->next_seq);
	for (int k = 0; k < 3; k++) {
		memcpy(b[k].data, buf + k * 4096, k < 2 ? 4096 : 9000 - 8192);
		b[k].len = k < 2 ? 4096 : 9000 - 8192;
		b[k].flags = k < 2 ? VDEMUX_RXBUF_MORE : 0;
	}
	assert_int_equal(vdemux_rx_submit(fx->eng, b, 3), 3);
	assert_int_equal(vt_guest_take(fx, vm, &rx, 1), 1);
	assert_false(rx.copied);
	st = vt_stats(fx);
	assert_int_equal(st.multi_page_flips, 1);
	assert_int_equal(st.multi_page_one_run, 1);
	vt_check(fx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_run_is_found_in_a_fragmented_pool),
		cmocka_unit_test(test_no_run_falls_back_to_the_most_recently_freed_pages),
		cmocka_unit_test(test_run_taken_from_the_middle_keeps_the_stack_whole),
		cmocka_unit_test(test_get_runs_takes_shorter_runs_before_single_pages),
		cmocka_unit_test_setup_teardown(test_rx_alloc_lends_consecutive_pages, vt_setup,
						vt_teardown),
		cmocka_unit_test_setup_teardown(test_multi_page_frame_to_consecutive_gpas_is_one_run,
						vt_setup, vt_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

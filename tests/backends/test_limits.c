/* SPDX-License-Identifier: MIT */
/*
 * The simulated MMU at the limits of what it is given: RX windows of the
 * most pages a VM may have (2^28: 1 TiB), ending at the top of its 48-bit
 * guest-physical space; every GPA of such a window its own entry.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <vdemux/sys/backend.h>
#include <vdemux/vdemux.h>

#define PG ((uint64_t)VDEMUX_PAGE_SIZE)
/* The most pages an RX window may have (vm.h: rx_pages 1 .. 2^28). */
#define MAX_WINDOW (1u << 28)
/* The simulated tables' guest-physical space (sim.h: four levels of 9
 * bits over 4 KiB pages). */
#define TOP (1ull << 48)

struct ctx {
	vdemux_arena *arena;
	struct vdemux_arena_info ai;
	struct vdemux_backend *sim;
};

static int setup(void **state)
{
	struct vdemux_arena_opts ao = VDEMUX_OPTS(vdemux_arena_opts, .npages = 16);
	struct ctx *c = calloc(1, sizeof(*c));

	assert_non_null(c);
	assert_int_equal(vdemux_arena_create(&c->arena, &ao), 0);
	assert_int_equal(vdemux_arena_info(c->arena, &c->ai), 0);
	assert_int_equal(vdemux_sim_create(&c->sim, NULL), 0);
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;

	c->sim->free(c->sim);
	vdemux_arena_destroy(c->arena);
	free(c);
	return 0;
}

static int attach(struct ctx *c, vdemux_vm_id id, uint64_t base, uint32_t pages, void **vm)
{
	struct vdemux_backend_vm info = {
		.vm_id = id, .rx_base = base, .rx_pages = pages, .arena = c->ai, .engine_npages = 16};

	return c->sim->vm_attach(c->sim, &info, vm);
}

static int map1(struct ctx *c, void *vm, uint64_t gpa, uint32_t page)
{
	struct vdemux_map m = {.gpa = gpa, .page = page};
	unsigned done = 0;
	int err = c->sim->map(c->sim, vm, &m, 1, &done);

	assert_int_equal(done, err ? 0 : 1);
	return err;
}

static uint32_t at(struct ctx *c, vdemux_vm_id id, uint64_t gpa)
{
	uint32_t page = 0;

	assert_int_equal(vdemux_sim_translate(c->sim, id, gpa, &page), 0);
	return page;
}

/* Two GPAs of one window that differ only in bits 39..47 (the root level
 * of the table) are two entries: mapping one leaves the other a hole. */
static void test_sim_gpas_512_gib_apart_in_a_largest_window_are_distinct(void **state)
{
	struct ctx *c = *state;
	void *vm;
	uint64_t far = 1ull << 39;

	assert_int_equal(attach(c, 1, 0, MAX_WINDOW, &vm), 0);
	assert_int_equal(map1(c, vm, 0, 3), 0);
	assert_int_equal(at(c, 1, far), VDEMUX_NO_PAGE);
	assert_int_equal(map1(c, vm, far, 4), 0);
	assert_int_equal(at(c, 1, 0), 3);
	assert_int_equal(at(c, 1, far), 4);
	/* the last page of the 1 TiB window too */
	assert_int_equal(map1(c, vm, (uint64_t)(MAX_WINDOW - 1) * PG, 5), 0);
	assert_int_equal(at(c, 1, (uint64_t)(MAX_WINDOW - 1) * PG), 5);
	assert_int_equal(at(c, 1, (uint64_t)(MAX_WINDOW - 1) * PG - far), VDEMUX_NO_PAGE);
	assert_int_equal(at(c, 1, 0), 3);
}

/* Every level of the table is indexed by its own bits: GPAs that differ in
 * one bit only, whichever, are distinct entries. */
static void test_sim_each_gpa_bit_names_a_different_entry(void **state)
{
	struct ctx *c = *state;
	void *vm;

	assert_int_equal(attach(c, 1, 0, MAX_WINDOW, &vm), 0);
	assert_int_equal(map1(c, vm, 0, 1), 0);
	for (unsigned b = 12; b < 40; b++) {
		assert_int_equal(at(c, 1, 1ull << b), VDEMUX_NO_PAGE);
		assert_int_equal(map1(c, vm, 1ull << b, 2 + b % 8), 0);
		assert_int_equal(at(c, 1, 1ull << b), 2 + b % 8);
	}
	assert_int_equal(at(c, 1, 0), 1);
}

/* A window of the most pages may end exactly at the top of the 48-bit
 * space (limit); one page higher is refused (limit + 1), one page lower
 * taken (limit - 1). */
static void test_sim_window_may_end_at_the_top_of_its_address_space(void **state)
{
	struct ctx *c = *state;
	uint64_t base = TOP - (uint64_t)MAX_WINDOW * PG;
	void *a, *b, *d;

	assert_int_equal(attach(c, 1, base - PG, MAX_WINDOW, &a), 0);
	assert_int_equal(attach(c, 2, base, MAX_WINDOW, &b), 0);
	assert_int_equal(attach(c, 3, base + PG, MAX_WINDOW, &d), -ERANGE);
	assert_int_equal(map1(c, b, TOP - PG, 7), 0);
	assert_int_equal(at(c, 2, TOP - PG), 7);
	assert_int_equal(at(c, 2, base), VDEMUX_NO_PAGE);
	assert_int_equal(map1(c, b, base, 8), 0);
	assert_int_equal(at(c, 2, TOP - PG), 7);
	assert_int_equal(map1(c, b, TOP, 9), -EINVAL);
	assert_int_equal(vdemux_sim_translate(c->sim, 2, TOP, &(uint32_t){0}), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			test_sim_gpas_512_gib_apart_in_a_largest_window_are_distinct, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sim_each_gpa_bit_names_a_different_entry, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_sim_window_may_end_at_the_top_of_its_address_space,
						setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

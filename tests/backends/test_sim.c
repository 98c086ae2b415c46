/* SPDX-License-Identifier: MIT */
/* The simulated MMU backend on its own: tables, IOTLB, guest accesses. */
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

struct ctx {
	vdemux_arena *arena;
	struct vdemux_arena_info ai;
	struct vdemux_backend *sim;
	void *vm;
};

static const vdemux_vm_id VM = 1;

static int setup(void **state)
{
	struct vdemux_arena_opts ao = VDEMUX_OPTS(vdemux_arena_opts, .npages = 16);
	struct vdemux_sim_opts so = VDEMUX_OPTS(vdemux_sim_opts, .iotlb_entries = 8, .cost_map_ns = 100,
						.cost_unmap_ns = 50, .cost_inval_ns = 1000);
	struct ctx *c = calloc(1, sizeof(*c));

	assert_int_equal(vdemux_arena_create(&c->arena, &ao), 0);
	assert_int_equal(vdemux_arena_info(c->arena, &c->ai), 0);
	assert_int_equal(vdemux_sim_create(&c->sim, &so), 0);
	struct vdemux_backend_vm vm = {
		.vm_id = VM, .rx_base = 0x200000, .rx_pages = 8, .arena = c->ai, .engine_npages = 16};
	assert_int_equal(c->sim->vm_attach(c->sim, &vm, &c->vm), 0);
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;

	c->sim->free(c->sim); /* detaches the VM too */
	vdemux_arena_destroy(c->arena);
	free(c);
	return 0;
}

static void map_one(struct ctx *c, uint64_t gpa, uint32_t page)
{
	struct vdemux_map m = {.gpa = gpa, .page = page};
	unsigned done = 99;

	assert_int_equal(c->sim->map(c->sim, c->vm, &m, 1, &done), 0);
	assert_int_equal(done, 1);
}

static void test_guest_reads_the_page_mapped_at_a_gpa(void **state)
{
	struct ctx *c = *state;
	char buf[6] = {0};

	memcpy(c->ai.base + 3 * VDEMUX_PAGE_SIZE + 10, "page3", 6);
	map_one(c, 0x201000, 3);
	assert_int_equal(vdemux_sim_read(c->sim, VM, 0x20100a, buf, 6), 0);
	assert_string_equal(buf, "page3");
}

static void test_access_to_a_hole_faults_and_copies_nothing(void **state)
{
	struct ctx *c = *state;
	struct vdemux_sim_stats st;
	uint8_t buf[2 * VDEMUX_PAGE_SIZE];

	map_one(c, 0x200000, 1);
	memset(buf, 0x5a, sizeof(buf));
	/* The range spans a mapped page and a hole: all or nothing. */
	assert_int_equal(vdemux_sim_read(c->sim, VM, 0x200800, buf, VDEMUX_PAGE_SIZE), -EFAULT);
	for (size_t i = 0; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 0x5a);
	assert_int_equal(vdemux_sim_write(c->sim, VM, 0x201000, buf, 1), -EFAULT);
	assert_int_equal(vdemux_sim_stats(c->sim, &st, sizeof(st)), 0);
	assert_int_equal(st.faults, 2);
}

static void test_map_over_a_mapped_gpa_fails_with_eexist_and_stops_there(void **state)
{
	struct ctx *c = *state;
	struct vdemux_map m[3] = {{.gpa = 0x202000, .page = 4},
				  {.gpa = 0x202000, .page = 5},
				  {.gpa = 0x203000, .page = 6}};
	uint32_t page;
	unsigned done = 99;

	assert_int_equal(c->sim->map(c->sim, c->vm, m, 3, &done), -EEXIST);
	assert_int_equal(done, 1);
	assert_int_equal(vdemux_sim_translate(c->sim, VM, 0x202000, &page), 0);
	assert_int_equal(page, 4);
	assert_int_equal(vdemux_sim_translate(c->sim, VM, 0x203000, &page), 0);
	assert_int_equal(page, VDEMUX_NO_PAGE);
}

static void test_one_invalidation_per_batch_whatever_its_size(void **state)
{
	struct ctx *c = *state;
	struct vdemux_map m[8];
	struct vdemux_sim_stats st;
	unsigned done;

	for (unsigned i = 0; i < 8; i++)
		m[i] = (struct vdemux_map){.gpa = 0x200000 + i * VDEMUX_PAGE_SIZE, .page = i};
	assert_int_equal(c->sim->map(c->sim, c->vm, m, 8, &done), 0);
	assert_int_equal(c->sim->unmap(c->sim, c->vm, m, 8, &done), 0);
	assert_int_equal(vdemux_sim_stats(c->sim, &st, sizeof(st)), 0);
	assert_int_equal(st.batches, 2);
	assert_int_equal(st.invalidations, 2);
	assert_int_equal(st.maps, 8);
	assert_int_equal(st.unmaps, 8);
	/* cost model: 8 maps, 8 unmaps, 2 invalidations */
	assert_int_equal(st.cost_ns, 8 * 100 + 8 * 50 + 2 * 1000);
}

static void test_iotlb_serves_repeated_translations_until_invalidated(void **state)
{
	struct ctx *c = *state;
	struct vdemux_sim_stats st;
	struct vdemux_map m = {.gpa = 0x204000, .page = 7};
	uint32_t page;
	unsigned done;

	map_one(c, 0x204000, 7);
	for (int i = 0; i < 3; i++)
		assert_int_equal(vdemux_sim_translate(c->sim, VM, 0x204000, &page), 0);
	assert_int_equal(vdemux_sim_stats(c->sim, &st, sizeof(st)), 0);
	assert_int_equal(st.iotlb_misses, 1);
	assert_int_equal(st.iotlb_hits, 2);
	/* After an unmap the stale translation must not be served. */
	assert_int_equal(c->sim->unmap(c->sim, c->vm, &m, 1, &done), 0);
	assert_int_equal(vdemux_sim_translate(c->sim, VM, 0x204000, &page), 0);
	assert_int_equal(page, VDEMUX_NO_PAGE);
}

static void test_remap_replaces_the_page_without_a_hole(void **state)
{
	struct ctx *c = *state;
	struct vdemux_map m = {.gpa = 0x205000, .page = 9};
	uint32_t page;
	unsigned done;

	map_one(c, 0x205000, 8);
	assert_int_equal(c->sim->remap(c->sim, c->vm, &m, 1, &done), 0);
	assert_int_equal(c->sim->query(c->sim, c->vm, 0x205000, &page), 0);
	assert_int_equal(page, 9);
}

static void test_unmap_of_a_hole_succeeds(void **state)
{
	struct ctx *c = *state;
	struct vdemux_map m = {.gpa = 0x206000, .page = VDEMUX_NO_PAGE};
	unsigned done = 0;

	assert_int_equal(c->sim->unmap(c->sim, c->vm, &m, 1, &done), 0);
	assert_int_equal(done, 1);
}

static void test_bad_arguments_are_rejected(void **state)
{
	struct ctx *c = *state;
	struct vdemux_map m = {.gpa = 0x200001, .page = 1};
	uint32_t page;
	char b;
	unsigned done = 99;

	assert_int_equal(c->sim->map(c->sim, c->vm, &m, 1, &done), -EINVAL);
	assert_int_equal(done, 0);
	m = (struct vdemux_map){.gpa = 0x200000, .page = 16}; /* past the arena */
	assert_int_equal(c->sim->map(c->sim, c->vm, &m, 1, &done), -EINVAL);
	assert_int_equal(vdemux_sim_read(c->sim, 2, 0x200000, &b, 1), -ENOENT);
	assert_int_equal(vdemux_sim_read(c->sim, VM, 0x200000, NULL, 1), -EINVAL);
	assert_int_equal(vdemux_sim_translate(NULL, VM, 0, &page), -EINVAL);
	struct vdemux_sim_opts bad = VDEMUX_OPTS(vdemux_sim_opts, .iotlb_entries = 3);
	struct vdemux_backend *be = NULL;
	assert_int_equal(vdemux_sim_create(&be, &bad), -EINVAL);
	assert_null(be);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_guest_reads_the_page_mapped_at_a_gpa, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_access_to_a_hole_faults_and_copies_nothing, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			test_map_over_a_mapped_gpa_fails_with_eexist_and_stops_there, setup, teardown),
		cmocka_unit_test_setup_teardown(test_one_invalidation_per_batch_whatever_its_size, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			test_iotlb_serves_repeated_translations_until_invalidated, setup, teardown),
		cmocka_unit_test_setup_teardown(test_remap_replaces_the_page_without_a_hole, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_unmap_of_a_hole_succeeds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_arguments_are_rejected, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: MIT */
/*
 * Arenas: creation, description, memfd sharing, and engines confined to
 * their range of an arena's pages.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vt.h"

static vdemux_arena *arena_new(uint32_t npages, enum vdemux_arena_kind kind, uint32_t flags)
{
	struct vdemux_arena_opts o = VDEMUX_OPTS(vdemux_arena_opts, .npages = npages, .kind = kind,
						 .flags = flags);
	vdemux_arena *a = NULL;
	int rc = vdemux_arena_create(&a, &o);

	if (rc != 0)
		fail_msg("vdemux_arena_create(%u pages, kind %d, flags %#x): %d", npages, kind, flags,
			 rc);
	assert_non_null(a);
	return a;
}

static struct vdemux_arena_info info_of(const vdemux_arena *a)
{
	struct vdemux_arena_info i;

	memset(&i, 0, sizeof(i));
	assert_int_equal(vdemux_arena_info(a, &i), 0);
	return i;
}

static void test_create_rejects_null_out_and_null_opts(void **state)
{
	struct vdemux_arena_opts o = VDEMUX_OPTS(vdemux_arena_opts, .npages = 4);
	vdemux_arena *a = NULL;

	(void)state;
	assert_int_equal(vdemux_arena_create(NULL, &o), -EINVAL);
	assert_int_equal(vdemux_arena_create(&a, NULL), -EINVAL);
	assert_null(a);
}

static void test_create_rejects_zero_pages(void **state)
{
	struct vdemux_arena_opts o = VDEMUX_OPTS(vdemux_arena_opts, .npages = 0);
	vdemux_arena *a = NULL;

	(void)state;
	assert_int_equal(vdemux_arena_create(&a, &o), -EINVAL);
	assert_null(a);
}

static void test_create_rejects_unknown_flags(void **state)
{
	struct vdemux_arena_opts o = VDEMUX_OPTS(vdemux_arena_opts, .npages = 4, .flags = 0x80000000u);
	vdemux_arena *a = NULL;

	(void)state;
	assert_int_equal(vdemux_arena_create(&a, &o), -EINVAL);
	assert_null(a);
}

static void test_create_rejects_unknown_kind(void **state)
{
	struct vdemux_arena_opts o = VDEMUX_OPTS(vdemux_arena_opts, .npages = 4,
						 .kind = (enum vdemux_arena_kind)7);
	vdemux_arena *a = NULL;

	(void)state;
	assert_int_equal(vdemux_arena_create(&a, &o), -EINVAL);
	assert_null(a);
}

struct arena_opts_newer {
	struct vdemux_arena_opts o;
	uint64_t future;
};

static void test_create_rejects_nonzero_unknown_trailing_bytes(void **state)
{
	struct arena_opts_newer n;
	vdemux_arena *a = NULL;

	(void)state;
	memset(&n, 0, sizeof(n));
	n.o.sz = sizeof(n);
	n.o.npages = 4;
	n.future = 5;
	assert_int_equal(vdemux_arena_create(&a, &n.o), -EINVAL);
	assert_null(a);
	n.future = 0;
	assert_int_equal(vdemux_arena_create(&a, &n.o), 0);
	assert_int_equal(info_of(a).npages, 4);
	vdemux_arena_destroy(a);
}

static void test_heap_arena_is_zeroed_writable_and_has_no_fd(void **state)
{
	vdemux_arena *a = arena_new(8, VDEMUX_ARENA_HEAP, 0);
	struct vdemux_arena_info i = info_of(a);

	(void)state;
	assert_non_null(i.base);
	assert_int_equal(i.npages, 8);
	assert_int_equal(i.fd, -1);
	assert_int_equal(i.kind, VDEMUX_ARENA_HEAP);
	assert_int_equal((uintptr_t)i.base % VDEMUX_PAGE_SIZE, 0);
	assert_true(vt_all_zero(i.base, 8 * VDEMUX_PAGE_SIZE));
	memset(i.base, 0x5a, 8 * VDEMUX_PAGE_SIZE);
	vdemux_arena_destroy(a);
}

static void test_memfd_arena_shares_its_pages_with_the_fd(void **state)
{
	vdemux_arena *a = arena_new(4, VDEMUX_ARENA_MEMFD, 0);
	struct vdemux_arena_info i = info_of(a);
	uint8_t buf[16];

	(void)state;
	assert_int_equal(i.kind, VDEMUX_ARENA_MEMFD);
	assert_true(i.fd >= 0);
	assert_int_equal(i.npages, 4);
	assert_true(vt_all_zero(i.base, 4 * VDEMUX_PAGE_SIZE));
	/* what is written through the mapping is what the fd holds */
	memcpy(i.base + 3 * VDEMUX_PAGE_SIZE + 100, "libvdemux-memfd", 16);
	assert_int_equal(pread(i.fd, buf, sizeof(buf), 3 * VDEMUX_PAGE_SIZE + 100), (ssize_t)sizeof(buf));
	assert_memory_equal(buf, "libvdemux-memfd", 16);
	/* and the other way round (MAP_SHARED) */
	assert_int_equal(pwrite(i.fd, "XY", 2, 5), 2);
	assert_memory_equal(i.base + 5, "XY", 2);
	vdemux_arena_destroy(a);
}

static void test_align_2m_flag_aligns_the_base(void **state)
{
	vdemux_arena *a = arena_new(1024, VDEMUX_ARENA_HEAP, VDEMUX_ARENA_F_ALIGN_2M);
	vdemux_arena *m = arena_new(512, VDEMUX_ARENA_MEMFD, VDEMUX_ARENA_F_ALIGN_2M);

	(void)state;
	assert_int_equal((uintptr_t)info_of(a).base % (2u << 20), 0);
	assert_int_equal((uintptr_t)info_of(m).base % (2u << 20), 0);
	vdemux_arena_destroy(a);
	vdemux_arena_destroy(m);
}

static void test_align_2m_flag_advises_huge_pages(void **state)
{
	(void)state;
	if (access("/sys/kernel/mm/transparent_hugepage", F_OK) != 0)
		skip(); /* a kernel without THP refuses the advice, as documented */
	vdemux_arena *a = arena_new(1024, VDEMUX_ARENA_HEAP, VDEMUX_ARENA_F_ALIGN_2M);
	vdemux_arena *m = arena_new(1024, VDEMUX_ARENA_MEMFD, VDEMUX_ARENA_F_ALIGN_2M);
	vdemux_arena *plain = arena_new(1024, VDEMUX_ARENA_MEMFD, 0);

	assert_true(vt_advised_huge(info_of(a).base));
	assert_true(vt_advised_huge(info_of(m).base));
	assert_true(vt_advised_huge(info_of(m).base + 1023 * VDEMUX_PAGE_SIZE));
	assert_false(vt_advised_huge(info_of(plain).base));
	vdemux_arena_destroy(a);
	vdemux_arena_destroy(m);
	vdemux_arena_destroy(plain);
}

static void test_info_rejects_null(void **state)
{
	vdemux_arena *a = arena_new(1, VDEMUX_ARENA_HEAP, 0);
	struct vdemux_arena_info i;

	(void)state;
	assert_int_equal(vdemux_arena_info(NULL, &i), -EINVAL);
	assert_int_equal(vdemux_arena_info(a, NULL), -EINVAL);
	vdemux_arena_destroy(a);
}

static void test_destroy_null_is_a_noop(void **state)
{
	(void)state;
	vdemux_arena_destroy(NULL);
}

/* The VMM keeps guest RAM in the first and last pages of the arena; the
 * engine, given the middle, must never touch the rest. */
static void run_engine_confined(enum vdemux_arena_kind kind)
{
	vdemux_arena *a = arena_new(64, kind, 0);
	struct vdemux_arena_info ai = info_of(a);
	struct vt_fx_opts fo = {0};
	struct vt_fx *fx;
	struct vt_vm *v[2];
	struct vdemux_rx_buf bufs[40];
	struct vt_burst b = {0};
	int n;

	for (uint32_t p = 0; p < 64; p++)
		if (p < 16 || p >= 48)
			memset(ai.base + (size_t)p * VDEMUX_PAGE_SIZE, (int)(0x40 + p), VDEMUX_PAGE_SIZE);

	fo.eng = VDEMUX_OPTS(vdemux_engine_opts, .arena = a, .first_page = 16, .npages = 32);
	fx = vt_fx_new(&fo);
	for (int i = 0; i < 2; i++) {
		struct vdemux_vm_opts o = vt_vm_opts(fx, 8);

		v[i] = vt_vm_add(fx, &o);
		vt_post_range(fx, v[i], 0, 8);
	}
	vt_check(fx);
	for (int i = 0; i < 6; i++)
		vt_burst_add(fx, &b, v[i % 2]->id, 1000 + 500 * (uint32_t)i);
	assert_int_equal(vdemux_rx_burst(fx->eng, b.f, b.n), (int)b.n);
	assert_int_equal(vt_guest_take(fx, v[0], NULL, 8), 3);
	assert_int_equal(vt_guest_take(fx, v[1], NULL, 8), 3);
	vt_check(fx);

	/* every page lent for zero-copy lies in the engine's range */
	n = vdemux_rx_alloc(fx->eng, bufs, 40);
	assert_true(n > 0);
	for (int i = 0; i < n; i++) {
		assert_int_equal(bufs[i].arena_off % VDEMUX_PAGE_SIZE, 0);
		assert_true(bufs[i].arena_off >= 16u * VDEMUX_PAGE_SIZE);
		assert_true(bufs[i].arena_off < 48u * VDEMUX_PAGE_SIZE);
		assert_ptr_equal(bufs[i].data, ai.base + bufs[i].arena_off);
	}
	assert_int_equal(vdemux_rx_abort(fx->eng, bufs, (unsigned)n), n);
	vt_check(fx);
	vt_burst_free(&b);
	vt_fx_free(fx);

	for (uint32_t p = 0; p < 64; p++) {
		if (p >= 16 && p < 48)
			continue;
		for (size_t k = 0; k < VDEMUX_PAGE_SIZE; k++)
			if (ai.base[(size_t)p * VDEMUX_PAGE_SIZE + k] != (uint8_t)(0x40 + p))
				fail_msg("arena page %u byte %zu outside the engine's range changed", p,
					 k);
	}
	/* the arena was borrowed: still usable after the engine is gone */
	assert_int_equal(info_of(a).npages, 64);
	vdemux_arena_destroy(a);
}

static void test_engine_touches_only_its_range_of_a_heap_arena(void **state)
{
	(void)state;
	run_engine_confined(VDEMUX_ARENA_HEAP);
}

static void test_engine_touches_only_its_range_of_a_memfd_arena(void **state)
{
	(void)state;
	run_engine_confined(VDEMUX_ARENA_MEMFD);
}

static void test_two_engines_share_one_arena_on_disjoint_ranges(void **state)
{
	vdemux_arena *a = arena_new(32, VDEMUX_ARENA_HEAP, 0);
	struct vt_fx_opts fo = {0};
	struct vt_fx *fx[2];
	struct vt_vm *v[2];
	struct vt_burst b[2];

	(void)state;
	memset(b, 0, sizeof(b));
	for (int i = 0; i < 2; i++) {
		struct vdemux_vm_opts o;

		fo.eng = VDEMUX_OPTS(vdemux_engine_opts, .arena = a, .first_page = 16u * (uint32_t)i,
				     .npages = 16);
		fx[i] = vt_fx_new(&fo);
		o = vt_vm_opts(fx[i], 8);
		v[i] = vt_vm_add(fx[i], &o);
		vt_post_range(fx[i], v[i], 0, 8);
	}
	for (int r = 0; r < 3; r++)
		for (int i = 0; i < 2; i++) {
			vt_burst_add(fx[i], &b[i], v[i]->id, 3000);
			assert_int_equal(vdemux_rx_burst(fx[i]->eng, &b[i].f[b[i].n - 1], 1), 1);
		}
	for (int i = 0; i < 2; i++) {
		assert_int_equal(vt_guest_take(fx[i], v[i], NULL, 8), 3);
		vt_check(fx[i]); /* also: every mapped page inside its engine's range */
	}
	for (int i = 0; i < 2; i++) {
		vt_burst_free(&b[i]);
		vt_fx_free(fx[i]);
	}
	vdemux_arena_destroy(a);
}

static void test_alloc_hooks_balance_over_the_arena_life(void **state)
{
	struct vt_counting_alloc c = {0};
	struct vdemux_arena_opts o = VDEMUX_OPTS(
		vdemux_arena_opts, .npages = 4,
		.alloc = {.calloc = vt_count_calloc, .free = vt_count_free, .payload = &c});
	vdemux_arena *a = NULL;

	(void)state;
	assert_int_equal(vdemux_arena_create(&a, &o), 0);
	vdemux_arena_destroy(a);
	assert_int_equal(c.live, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_rejects_null_out_and_null_opts),
		cmocka_unit_test(test_create_rejects_zero_pages),
		cmocka_unit_test(test_create_rejects_unknown_flags),
		cmocka_unit_test(test_create_rejects_unknown_kind),
		cmocka_unit_test(test_create_rejects_nonzero_unknown_trailing_bytes),
		cmocka_unit_test(test_heap_arena_is_zeroed_writable_and_has_no_fd),
		cmocka_unit_test(test_memfd_arena_shares_its_pages_with_the_fd),
		cmocka_unit_test(test_align_2m_flag_aligns_the_base),
		cmocka_unit_test(test_align_2m_flag_advises_huge_pages),
		cmocka_unit_test(test_info_rejects_null),
		cmocka_unit_test(test_destroy_null_is_a_noop),
		cmocka_unit_test(test_engine_touches_only_its_range_of_a_heap_arena),
		cmocka_unit_test(test_engine_touches_only_its_range_of_a_memfd_arena),
		cmocka_unit_test(test_two_engines_share_one_arena_on_disjoint_ranges),
		cmocka_unit_test(test_alloc_hooks_balance_over_the_arena_life),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

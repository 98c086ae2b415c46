/* SPDX-License-Identifier: MIT */
/*
 * Bad input is answered, never trusted: each bad input gets its negative
 * errno, its bad_input counter, and changes nothing else (every counter,
 * every VM's counters, every slot's mapping in every table, the backends'
 * call counts: all compared before and after).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vt.h"

/*
 * The world every test starts from:
 * VM a (eager, 8 slots): slot 0 filled (a delivered, polled frame),
 *   slots 1..3 posted (holes), slots 4..7 held.
 * VM b (lazy, 4 slots): slots 0, 1 posted (still mapped), 2, 3 held.
 * Two pages lent for zero-copy.
 */
struct world {
	struct vt_fx *fx;
	struct vt_vm *a, *b;
	struct vdemux_rx_buf lent[2];
	struct vt_snap *before;
};

static int world_setup(void **state)
{
	struct world *w = calloc(1, sizeof(*w));
	struct vt_fx_opts fo = {0};
	struct vdemux_vm_opts o;
	struct vt_burst bu = {0};

	if (!w)
		return -1;
	fo.eng = VDEMUX_OPTS(vdemux_engine_opts, .npages = 64, .max_frame = 9000,
			     .copy = VDEMUX_COPY_NEVER);
	w->fx = vt_fx_new(&fo);
	o = vt_vm_opts(w->fx, 8);
	o.harvest = VDEMUX_HARVEST_EAGER;
	w->a = vt_vm_add(w->fx, &o);
	o = vt_vm_opts(w->fx, 4);
	o.harvest = VDEMUX_HARVEST_LAZY;
	w->b = vt_vm_add(w->fx, &o);
	vt_post_range(w->fx, w->a, 0, 4);
	vt_post_range(w->fx, w->b, 0, 2);
	vt_burst_add(w->fx, &bu, w->a->id, 1000);
	if (vdemux_rx_burst(w->fx->eng, bu.f, 1) != 1)
		return -1;
	vt_burst_free(&bu);
	if (vt_guest_take(w->fx, w->a, NULL, 1) != 1)
		return -1;
	if (vdemux_rx_alloc(w->fx->eng, w->lent, 2) != 2)
		return -1;
	vt_check(w->fx);
	w->before = vt_snap_take(w->fx);
	*state = w;
	return 0;
}

static int world_teardown(void **state)
{
	struct world *w = *state;

	if (w) {
		free(w->before);
		vt_fx_free(w->fx);
		free(w);
	}
	return 0;
}

static uint64_t a_posted_hole(struct world *w)
{
	for (uint32_t i = 0; i < 4; i++) {
		uint64_t g = vt_gpa(w->a, i);

		if (vt_guest_hole(w->fx, w->a, g))
			return g;
	}
	fail_msg("no posted slot");
	return 0;
}

/* Take the "before" snapshot again, after the test prepared its case. */
static void resnap(struct world *w)
{
	free(w->before);
	w->before = vt_snap_take(w->fx);
}

#define SAME(w, bad)                                              \
	do {                                                      \
		vt_snap_expect_same((w)->fx, (w)->before, (bad)); \
		vt_check((w)->fx);                                \
	} while (0)

/* ---- unknown VM id ---- */

static void test_post_to_unknown_vm_is_enoent(void **state)
{
	struct world *w = *state;
	uint64_t g = vt_gpa(w->a, 5);

	assert_int_equal(vdemux_vm_post_rx(w->fx->eng, 0x00777777, &g, 1), -ENOENT);
	SAME(w, VDEMUX_BAD_VM_ID);
}

static void test_post_to_vm_zero_is_enoent(void **state)
{
	struct world *w = *state;
	uint64_t g = vt_gpa(w->a, 5);

	assert_int_equal(vdemux_vm_post_rx(w->fx->eng, 0, &g, 1), -ENOENT);
	SAME(w, VDEMUX_BAD_VM_ID);
}

static void test_release_from_unknown_vm_is_enoent(void **state)
{
	struct world *w = *state;
	uint64_t g = vt_gpa(w->a, 5);

	assert_int_equal(vdemux_vm_release(w->fx->eng, 0x00777777, &g, 1), -ENOENT);
	SAME(w, VDEMUX_BAD_VM_ID);
}

static void test_poll_of_unknown_vm_is_enoent(void **state)
{
	struct world *w = *state;
	struct vdemux_completion c[2];

	assert_int_equal(vdemux_vm_poll(w->fx->eng, 0x00777777, c, 2), -ENOENT);
	SAME(w, VDEMUX_BAD_VM_ID);
}

static void test_take_signals_of_unknown_vm_is_enoent(void **state)
{
	struct world *w = *state;

	assert_int_equal(vdemux_vm_take_signals(w->fx->eng, 0x00777777), -ENOENT);
	SAME(w, VDEMUX_BAD_VM_ID);
}

static void test_request_release_of_unknown_vm_is_enoent(void **state)
{
	struct world *w = *state;

	assert_int_equal(vdemux_vm_request_release(w->fx->eng, 0x00777777), -ENOENT);
	SAME(w, VDEMUX_BAD_VM_ID);
}

static void test_remove_of_unknown_vm_is_enoent(void **state)
{
	struct world *w = *state;

	assert_int_equal(vdemux_vm_remove(w->fx->eng, 0x00777777), -ENOENT);
	SAME(w, VDEMUX_BAD_VM_ID);
}

static void test_stats_of_unknown_vm_is_enoent(void **state)
{
	struct world *w = *state;
	struct vdemux_vm_stats s;

	assert_int_equal(vdemux_vm_stats(w->fx->eng, 0x00777777, &s, sizeof(s)), -ENOENT);
	vt_check(w->fx);
}

/* ---- GPA outside the window or not aligned ---- */

static void test_post_below_the_window_is_erange(void **state)
{
	struct world *w = *state;
	uint64_t g = w->a->rx_base - VDEMUX_PAGE_SIZE;

	assert_int_equal(vdemux_vm_post_rx(w->fx->eng, w->a->id, &g, 1), -ERANGE);
	SAME(w, VDEMUX_BAD_GPA_RANGE);
}

static void test_post_just_past_the_window_is_erange(void **state)
{
	struct world *w = *state;
	uint64_t g = w->a->rx_base + (uint64_t)w->a->rx_pages * VDEMUX_PAGE_SIZE;

	assert_int_equal(vdemux_vm_post_rx(w->fx->eng, w->a->id, &g, 1), -ERANGE);
	SAME(w, VDEMUX_BAD_GPA_RANGE);
}

static void test_post_far_past_the_window_is_erange(void **state)
{
	struct world *w = *state;
	uint64_t g = UINT64_MAX & ~(uint64_t)(VDEMUX_PAGE_SIZE - 1);

	assert_int_equal(vdemux_vm_post_rx(w->fx->eng, w->a->id, &g, 1), -ERANGE);
	SAME(w, VDEMUX_BAD_GPA_RANGE);
}

static void test_post_unaligned_gpa_is_einval(void **state)
{
	struct world *w = *state;
	uint64_t g = vt_gpa(w->a, 5) + 8;

	assert_int_equal(vdemux_vm_post_rx(w->fx->eng, w->a->id, &g, 1), -EINVAL);
	SAME(w, VDEMUX_BAD_GPA_ALIGN);
}

static void test_release_outside_the_window_is_erange(void **state)
{
	struct world *w = *state;
	uint64_t g = w->b->rx_base + (uint64_t)w->b->rx_pages * VDEMUX_PAGE_SIZE;

	assert_int_equal(vdemux_vm_release(w->fx->eng, w->b->id, &g, 1), -ERANGE);
	SAME(w, VDEMUX_BAD_GPA_RANGE);
}

static void test_release_unaligned_gpa_is_einval(void **state)
{
	struct world *w = *state;
	uint64_t g = vt_gpa(w->a, 6) + 1;

	assert_int_equal(vdemux_vm_release(w->fx->eng, w->a->id, &g, 1), -EINVAL);
	SAME(w, VDEMUX_BAD_GPA_ALIGN);
}

/* a GPA of another VM's window is outside this one's */
static void test_post_of_another_vms_gpa_is_erange(void **state)
{
	struct world *w = *state;
	uint64_t g = vt_gpa(w->a, 7);

	assert_true(g < w->b->rx_base ||
		    g >= w->b->rx_base + (uint64_t)w->b->rx_pages * VDEMUX_PAGE_SIZE);
	assert_int_equal(vdemux_vm_post_rx(w->fx->eng, w->b->id, &g, 1), -ERANGE);
	SAME(w, VDEMUX_BAD_GPA_RANGE);
}

/* ---- posted twice ---- */

static void test_post_of_a_posted_hole_is_ealready(void **state)
{
	struct world *w = *state;
	uint64_t g = a_posted_hole(w);

	resnap(w);
	assert_int_equal(vdemux_vm_post_rx(w->fx->eng, w->a->id, &g, 1), -EALREADY);
	SAME(w, VDEMUX_BAD_POST_TWICE);
}

static void test_post_of_a_lazily_posted_slot_is_ealready(void **state)
{
	struct world *w = *state;
	uint64_t g = vt_gpa(w->b, 1);

	assert_int_equal(vdemux_vm_post_rx(w->fx->eng, w->b->id, &g, 1), -EALREADY);
	SAME(w, VDEMUX_BAD_POST_TWICE);
}

static void test_same_gpa_twice_in_one_post_is_ealready(void **state)
{
	struct world *w = *state;
	uint64_t g[3] = {vt_gpa(w->a, 5), vt_gpa(w->a, 6), vt_gpa(w->a, 5)};

	assert_int_equal(vdemux_vm_post_rx(w->fx->eng, w->a->id, g, 3), -EALREADY);
	SAME(w, VDEMUX_BAD_POST_TWICE);
}

static void test_post_is_all_or_nothing(void **state)
{
	struct world *w = *state;
	uint64_t g[3] = {vt_gpa(w->a, 5), vt_gpa(w->a, 6), w->a->rx_base - VDEMUX_PAGE_SIZE};

	assert_int_equal(vdemux_vm_post_rx(w->fx->eng, w->a->id, g, 3), -ERANGE);
	SAME(w, VDEMUX_BAD_GPA_RANGE);
	/* the good ones are still unposted: they can be posted now */
	assert_int_equal(vdemux_vm_post_rx(w->fx->eng, w->a->id, g, 2), 2);
	vt_check(w->fx);
}

/* ---- release of a page the VM does not hold ---- */

static void test_release_of_a_posted_hole_is_eperm(void **state)
{
	struct world *w = *state;
	uint64_t g = a_posted_hole(w);

	resnap(w);
	assert_int_equal(vdemux_vm_release(w->fx->eng, w->a->id, &g, 1), -EPERM);
	SAME(w, VDEMUX_BAD_NOT_HELD);
}

static void test_release_of_a_lazily_posted_slot_is_eperm(void **state)
{
	struct world *w = *state;
	uint64_t g = vt_gpa(w->b, 0);

	assert_int_equal(vdemux_vm_release(w->fx->eng, w->b->id, &g, 1), -EPERM);
	SAME(w, VDEMUX_BAD_NOT_HELD);
}

static void test_release_of_a_released_slot_is_eperm(void **state)
{
	struct world *w = *state;
	uint64_t g = vt_gpa(w->a, 7);

	assert_int_equal(vdemux_vm_release(w->fx->eng, w->a->id, &g, 1), 1);
	resnap(w);
	assert_int_equal(vdemux_vm_release(w->fx->eng, w->a->id, &g, 1), -EPERM);
	SAME(w, VDEMUX_BAD_NOT_HELD);
}

static void test_release_is_all_or_nothing(void **state)
{
	struct world *w = *state;
	uint64_t g[3] = {vt_gpa(w->a, 4), vt_gpa(w->a, 5), 0};

	g[2] = a_posted_hole(w);
	resnap(w);
	assert_int_equal(vdemux_vm_release(w->fx->eng, w->a->id, g, 3), -EPERM);
	SAME(w, VDEMUX_BAD_NOT_HELD);
}

static void test_release_of_the_same_gpa_twice_in_one_call_is_refused(void **state)
{
	struct world *w = *state;
	uint64_t g[2] = {vt_gpa(w->a, 4), vt_gpa(w->a, 4)};
	int rc = vdemux_vm_release(w->fx->eng, w->a->id, g, 2);

	/* the second entry is no longer held once the first is released */
	assert_true(rc == -EPERM || rc == -EALREADY);
	SAME(w, VT_BAD_ANY);
}

/* ---- frame lengths ---- */

static void burst_expect(struct world *w, const uint32_t *lens, unsigned n, int err)
{
	struct vt_burst b = {0};

	for (unsigned i = 0; i < n; i++)
		vt_burst_add(w->fx, &b, w->a->id, lens[i] ? lens[i] : 1);
	for (unsigned i = 0; i < n; i++)
		b.f[i].len = lens[i];
	assert_int_equal(vdemux_rx_burst(w->fx->eng, b.f, n), err);
	vt_burst_free(&b);
}

static void test_burst_with_a_zero_length_frame_is_einval(void **state)
{
	struct world *w = *state;
	uint32_t lens[] = {0};

	burst_expect(w, lens, 1, -EINVAL);
	SAME(w, VDEMUX_BAD_FRAME_LEN);
}

static void test_burst_with_a_frame_shorter_than_ethernet_is_einval(void **state)
{
	struct world *w = *state;
	uint32_t lens[] = {13};

	burst_expect(w, lens, 1, -EINVAL);
	SAME(w, VDEMUX_BAD_FRAME_LEN);
}

static void test_burst_with_a_frame_above_max_frame_is_emsgsize(void **state)
{
	struct world *w = *state;
	uint32_t lens[] = {9001};

	burst_expect(w, lens, 1, -EMSGSIZE);
	SAME(w, VDEMUX_BAD_FRAME_LEN);
}

static void test_burst_validates_every_length_before_taking_any(void **state)
{
	struct world *w = *state;
	uint32_t lens[] = {100, 200, 9001};

	burst_expect(w, lens, 3, -EMSGSIZE);
	SAME(w, VDEMUX_BAD_FRAME_LEN);
}

static void test_burst_with_a_short_frame_last_takes_none(void **state)
{
	struct world *w = *state;
	uint32_t lens[] = {100, 100, 5};

	burst_expect(w, lens, 3, -EINVAL);
	SAME(w, VDEMUX_BAD_FRAME_LEN);
}

/* ---- bursts of 0 ---- */

static void test_burst_of_zero_frames_is_einval(void **state)
{
	struct world *w = *state;
	struct vdemux_frame f = {.data = "x", .len = 60};

	assert_int_equal(vdemux_rx_burst(w->fx->eng, &f, 0), -EINVAL);
	SAME(w, VDEMUX_BAD_BURST_ZERO);
}

static void test_post_of_zero_gpas_is_einval(void **state)
{
	struct world *w = *state;
	uint64_t g = vt_gpa(w->a, 5);

	assert_int_equal(vdemux_vm_post_rx(w->fx->eng, w->a->id, &g, 0), -EINVAL);
	SAME(w, VDEMUX_BAD_BURST_ZERO);
}

static void test_release_of_zero_gpas_is_einval(void **state)
{
	struct world *w = *state;
	uint64_t g = vt_gpa(w->a, 5);

	assert_int_equal(vdemux_vm_release(w->fx->eng, w->a->id, &g, 0), -EINVAL);
	SAME(w, VDEMUX_BAD_BURST_ZERO);
}

static void test_alloc_of_zero_buffers_is_einval(void **state)
{
	struct world *w = *state;
	struct vdemux_rx_buf b;

	assert_int_equal(vdemux_rx_alloc(w->fx->eng, &b, 0), -EINVAL);
	SAME(w, VDEMUX_BAD_BURST_ZERO);
}

static void test_submit_of_zero_buffers_is_einval(void **state)
{
	struct world *w = *state;

	assert_int_equal(vdemux_rx_submit(w->fx->eng, w->lent, 0), -EINVAL);
	SAME(w, VDEMUX_BAD_BURST_ZERO);
}

static void test_abort_of_zero_buffers_is_einval(void **state)
{
	struct world *w = *state;

	assert_int_equal(vdemux_rx_abort(w->fx->eng, w->lent, 0), -EINVAL);
	SAME(w, VDEMUX_BAD_BURST_ZERO);
}

/* ---- NULL where a pointer is required ---- */

static void test_post_with_null_gpas_is_einval(void **state)
{
	struct world *w = *state;

	assert_int_equal(vdemux_vm_post_rx(w->fx->eng, w->a->id, NULL, 1), -EINVAL);
	SAME(w, VDEMUX_BAD_NULL);
}

static void test_release_with_null_gpas_is_einval(void **state)
{
	struct world *w = *state;

	assert_int_equal(vdemux_vm_release(w->fx->eng, w->a->id, NULL, 1), -EINVAL);
	SAME(w, VDEMUX_BAD_NULL);
}

static void test_burst_with_null_frames_is_einval(void **state)
{
	struct world *w = *state;

	assert_int_equal(vdemux_rx_burst(w->fx->eng, NULL, 1), -EINVAL);
	SAME(w, VDEMUX_BAD_NULL);
}

static void test_burst_with_a_null_frame_data_is_einval(void **state)
{
	struct world *w = *state;
	struct vt_burst b = {0};

	vt_burst_add(w->fx, &b, w->a->id, 100);
	vt_burst_add(w->fx, &b, w->a->id, 100);
	free((void *)b.f[1].data);
	b.f[1].data = NULL;
	assert_int_equal(vdemux_rx_burst(w->fx->eng, b.f, 2), -EINVAL);
	vt_burst_free(&b);
	SAME(w, VDEMUX_BAD_NULL);
}

static void test_poll_into_null_is_einval(void **state)
{
	struct world *w = *state;

	assert_int_equal(vdemux_vm_poll(w->fx->eng, w->a->id, NULL, 4), -EINVAL);
	SAME(w, VDEMUX_BAD_NULL);
}

static void test_alloc_into_null_is_einval(void **state)
{
	struct world *w = *state;

	assert_int_equal(vdemux_rx_alloc(w->fx->eng, NULL, 4), -EINVAL);
	SAME(w, VDEMUX_BAD_NULL);
}

static void test_submit_of_null_is_einval(void **state)
{
	struct world *w = *state;

	assert_int_equal(vdemux_rx_submit(w->fx->eng, NULL, 1), -EINVAL);
	SAME(w, VDEMUX_BAD_NULL);
}

static void test_abort_of_null_is_einval(void **state)
{
	struct world *w = *state;

	assert_int_equal(vdemux_rx_abort(w->fx->eng, NULL, 1), -EINVAL);
	SAME(w, VDEMUX_BAD_NULL);
}

static void test_vm_add_with_null_out_or_opts_is_einval(void **state)
{
	struct world *w = *state;
	struct vdemux_vm_opts o = vt_vm_opts(w->fx, 2);
	vdemux_vm_id id = 0;

	assert_int_equal(vdemux_vm_add(w->fx->eng, NULL, &o), -EINVAL);
	SAME(w, VDEMUX_BAD_NULL);
	resnap(w);
	assert_int_equal(vdemux_vm_add(w->fx->eng, &id, NULL), -EINVAL);
	SAME(w, VDEMUX_BAD_NULL);
	assert_int_equal(id, 0);
}

static void test_null_engine_is_einval_everywhere(void **state)
{
	struct world *w = *state;
	uint64_t g = vt_gpa(w->a, 5);
	struct vdemux_frame f = {.data = "0123456789abcdef", .len = 16};
	struct vdemux_completion c;
	struct vdemux_rx_buf rb;
	struct vdemux_vm_stats vs;
	vdemux_vm_id id;
	struct vdemux_vm_opts o = vt_vm_opts(w->fx, 2);

	assert_int_equal(vdemux_vm_add(NULL, &id, &o), -EINVAL);
	assert_int_equal(vdemux_vm_remove(NULL, w->a->id), -EINVAL);
	assert_int_equal(vdemux_vm_post_rx(NULL, w->a->id, &g, 1), -EINVAL);
	assert_int_equal(vdemux_vm_release(NULL, w->a->id, &g, 1), -EINVAL);
	assert_int_equal(vdemux_vm_poll(NULL, w->a->id, &c, 1), -EINVAL);
	assert_int_equal(vdemux_vm_take_signals(NULL, w->a->id), -EINVAL);
	assert_int_equal(vdemux_vm_stats(NULL, w->a->id, &vs, sizeof(vs)), -EINVAL);
	assert_int_equal(vdemux_vm_stats(w->fx->eng, w->a->id, NULL, sizeof(vs)), -EINVAL);
	assert_int_equal(vdemux_rx_burst(NULL, &f, 1), -EINVAL);
	assert_int_equal(vdemux_rx_alloc(NULL, &rb, 1), -EINVAL);
	assert_int_equal(vdemux_rx_submit(NULL, w->lent, 1), -EINVAL);
	assert_int_equal(vdemux_rx_abort(NULL, w->lent, 1), -EINVAL);
	vt_snap_expect_same(w->fx, w->before, -1);
	vt_check(w->fx);
}

/* ---- options structs ---- */

struct vm_opts_newer {
	struct vdemux_vm_opts o;
	uint64_t future;
};

static void test_vm_add_with_unknown_trailing_bytes_is_einval(void **state)
{
	struct world *w = *state;
	struct vm_opts_newer n;
	struct vdemux_vm_opts base = vt_vm_opts(w->fx, 2);
	vdemux_vm_id id = 0;

	memset(&n, 0, sizeof(n));
	n.o.sz = sizeof(n);
	n.o.rx_base = base.rx_base;
	n.o.rx_pages = base.rx_pages;
	n.o.backends = base.backends;
	n.o.n_backends = base.n_backends;
	n.o.signal.kind = VDEMUX_SIGNAL_NONE;
	n.future = 0x10;
	assert_int_equal(vdemux_vm_add(w->fx->eng, &id, &n.o), -EINVAL);
	SAME(w, VDEMUX_BAD_OPTS);
	assert_int_equal(id, 0);
	/* zero trailing bytes are fine */
	n.future = 0;
	assert_int_equal(vdemux_vm_add(w->fx->eng, &id, &n.o), 0);
	assert_int_not_equal(id, 0);
	assert_int_equal(vdemux_vm_remove(w->fx->eng, id), 0);
	vt_check(w->fx);
}

static void expect_vm_add_refused(struct world *w, const struct vdemux_vm_opts *o)
{
	vdemux_vm_id id = 0;

	assert_int_equal(vdemux_vm_add(w->fx->eng, &id, o), -EINVAL);
	assert_int_equal(id, 0);
	SAME(w, VT_BAD_ANY);
}

static void test_vm_add_with_zero_backends_is_einval(void **state)
{
	struct world *w = *state;
	struct vdemux_vm_opts o = vt_vm_opts(w->fx, 2);

	o.n_backends = 0;
	expect_vm_add_refused(w, &o);
}

static void test_vm_add_with_nine_backends_is_einval(void **state)
{
	struct world *w = *state;
	struct vdemux_vm_opts o = vt_vm_opts(w->fx, 2);
	struct vdemux_backend *nine[9];

	/* nine distinct registered backends: a VM may use at most 8 */
	nine[0] = w->fx->be[0];
	for (int i = 1; i < 9; i++) {
		assert_int_equal(vdemux_sim_create(&nine[i], NULL), 0);
		assert_int_equal(vdemux_engine_add_backend(w->fx->eng, nine[i]), 0);
	}
	resnap(w);
	o.backends = nine;
	o.n_backends = 9;
	expect_vm_add_refused(w, &o);
}

static void test_vm_add_with_unregistered_backend_is_einval(void **state)
{
	struct world *w = *state;
	struct vdemux_vm_opts o = vt_vm_opts(w->fx, 2);
	struct vdemux_backend *stray = NULL;

	assert_int_equal(vdemux_sim_create(&stray, NULL), 0);
	o.backends = &stray;
	o.n_backends = 1;
	expect_vm_add_refused(w, &o);
	if (stray->free)
		stray->free(stray);
}

static void test_vm_add_with_the_same_backend_twice_is_einval(void **state)
{
	struct world *w = *state;
	struct vdemux_vm_opts o = vt_vm_opts(w->fx, 2);
	struct vdemux_backend *twice[2] = {w->fx->be[0], w->fx->be[0]};

	o.backends = twice;
	o.n_backends = 2;
	expect_vm_add_refused(w, &o);
}

static void test_vm_add_with_unaligned_window_is_einval(void **state)
{
	struct world *w = *state;
	struct vdemux_vm_opts o = vt_vm_opts(w->fx, 2);

	o.rx_base += 0x800;
	expect_vm_add_refused(w, &o);
}

static void test_vm_add_with_empty_window_is_einval(void **state)
{
	struct world *w = *state;
	struct vdemux_vm_opts o = vt_vm_opts(w->fx, 2);

	o.rx_pages = 0;
	expect_vm_add_refused(w, &o);
}

static void test_vm_add_with_window_wrapping_the_address_space_is_einval(void **state)
{
	struct world *w = *state;
	struct vdemux_vm_opts o = vt_vm_opts(w->fx, 2);

	o.rx_base = UINT64_MAX & ~(uint64_t)(VDEMUX_PAGE_SIZE - 1);
	o.flags = VDEMUX_VM_F_UNPOPULATED;
	expect_vm_add_refused(w, &o);
}

static void test_vm_add_with_quota_below_populated_window_is_einval(void **state)
{
	struct world *w = *state;
	struct vdemux_vm_opts o = vt_vm_opts(w->fx, 4);

	o.quota = 3;
	expect_vm_add_refused(w, &o);
}

static void test_vm_add_with_unknown_flags_is_einval(void **state)
{
	struct world *w = *state;
	struct vdemux_vm_opts o = vt_vm_opts(w->fx, 2);

	o.flags = 0x40000000u;
	expect_vm_add_refused(w, &o);
}

static void test_vm_add_with_unknown_policy_is_einval(void **state)
{
	struct world *w = *state;
	struct vdemux_vm_opts o = vt_vm_opts(w->fx, 2);

	o.harvest = (enum vdemux_harvest)5;
	expect_vm_add_refused(w, &o);
	o.harvest = VDEMUX_HARVEST_DEFAULT;
	o.copy = (enum vdemux_copy_policy)5;
	resnap(w);
	expect_vm_add_refused(w, &o);
}

/* ---- zero-copy buffers the engine did not hand out ---- */

static void test_submit_of_an_id_never_lent_is_ebadf(void **state)
{
	struct world *w = *state;
	struct vdemux_rx_buf b = w->lent[0];

	b.id = w->lent[0].id ^ 0x5a5a5a5au;
	b.len = 60;
	b.flags = 0;
	assert_int_equal(vdemux_rx_submit(w->fx->eng, &b, 1), -EBADF);
	SAME(w, VDEMUX_BAD_RX_BUF);
}

static void test_submit_of_a_repeated_id_is_ebadf(void **state)
{
	struct world *w = *state;
	struct vdemux_rx_buf b[2] = {w->lent[0], w->lent[0]};

	vt_frame_fill(b[0].data, 60, vt_bcast, 1);
	b[0].len = b[1].len = 60;
	b[0].flags = b[1].flags = 0;
	assert_int_equal(vdemux_rx_submit(w->fx->eng, b, 2), -EBADF);
	SAME(w, VDEMUX_BAD_RX_BUF);
}

static void test_submit_of_an_id_already_submitted_is_ebadf(void **state)
{
	struct world *w = *state;
	struct vdemux_rx_buf b = w->lent[0];

	vt_frame_fill(b.data, 60, vt_bcast, 1);
	b.len = 60;
	b.flags = 0;
	assert_int_equal(vdemux_rx_submit(w->fx->eng, &b, 1), 1);
	resnap(w);
	assert_int_equal(vdemux_rx_submit(w->fx->eng, &b, 1), -EBADF);
	SAME(w, VDEMUX_BAD_RX_BUF);
}

static void test_abort_of_an_id_never_lent_is_ebadf(void **state)
{
	struct world *w = *state;
	struct vdemux_rx_buf b[2] = {w->lent[0], w->lent[1]};

	b[1].id ^= 0x00f00000u;
	assert_int_equal(vdemux_rx_abort(w->fx->eng, b, 2), -EBADF);
	SAME(w, VDEMUX_BAD_RX_BUF);
}

static void expect_submit_refused(struct world *w, struct vdemux_rx_buf *b, unsigned n, int err, int bad)
{
	assert_int_equal(vdemux_rx_submit(w->fx->eng, b, n), err);
	SAME(w, bad);
	/* the lent pages are still lent: they can be given back */
	assert_int_equal(vdemux_rx_abort(w->fx->eng, w->lent, 2), 2);
	vt_check(w->fx);
}

static void test_submit_of_a_zero_length_buffer_is_einval(void **state)
{
	struct world *w = *state;
	struct vdemux_rx_buf b = w->lent[0];

	b.len = 0;
	b.flags = 0;
	expect_submit_refused(w, &b, 1, -EINVAL, VDEMUX_BAD_FRAME_LEN);
}

/* A full page then an empty one: the frame's length is legal, but the empty
 * buffer would be taken back as part of nothing. */
static void test_submit_of_a_chain_ending_in_a_zero_length_buffer_is_einval(void **state)
{
	struct world *w = *state;
	struct vdemux_rx_buf b[2] = {w->lent[0], w->lent[1]};

	b[0].len = VDEMUX_PAGE_SIZE;
	b[0].flags = VDEMUX_RXBUF_MORE;
	b[1].len = 0;
	b[1].flags = 0;
	expect_submit_refused(w, b, 2, -EINVAL, VDEMUX_BAD_FRAME_LEN);
}

static void test_submit_of_a_frame_shorter_than_ethernet_is_einval(void **state)
{
	struct world *w = *state;
	struct vdemux_rx_buf b = w->lent[0];

	b.len = 13;
	b.flags = 0;
	expect_submit_refused(w, &b, 1, -EINVAL, VDEMUX_BAD_FRAME_LEN);
}

static void test_submit_of_a_buffer_longer_than_a_page_is_einval(void **state)
{
	struct world *w = *state;
	struct vdemux_rx_buf b = w->lent[0];

	b.len = VDEMUX_PAGE_SIZE + 1;
	b.flags = 0;
	expect_submit_refused(w, &b, 1, -EINVAL, VT_BAD_ANY);
}

static void test_submit_of_an_open_chain_is_einval(void **state)
{
	struct world *w = *state;
	struct vdemux_rx_buf b[2] = {w->lent[0], w->lent[1]};

	b[0].len = VDEMUX_PAGE_SIZE;
	b[0].flags = VDEMUX_RXBUF_MORE;
	b[1].len = VDEMUX_PAGE_SIZE;
	b[1].flags = VDEMUX_RXBUF_MORE;
	expect_submit_refused(w, b, 2, -EINVAL, VT_BAD_ANY);
}

static void test_submit_of_a_chain_with_a_short_middle_is_einval(void **state)
{
	struct world *w = *state;
	struct vdemux_rx_buf b[2] = {w->lent[0], w->lent[1]};

	b[0].len = 1000;
	b[0].flags = VDEMUX_RXBUF_MORE;
	b[1].len = 100;
	b[1].flags = 0;
	expect_submit_refused(w, b, 2, -EINVAL, VT_BAD_ANY);
}

static void test_submit_of_a_chain_above_max_frame_is_emsgsize(void **state)
{
	struct world *w = *state;
	struct vdemux_rx_buf b[3];

	/* max_frame is 9000: lend a third page and chain 3 full ones */
	assert_int_equal(vdemux_rx_alloc(w->fx->eng, &b[2], 1), 1);
	b[0] = w->lent[0];
	b[1] = w->lent[1];
	for (int i = 0; i < 3; i++) {
		b[i].len = VDEMUX_PAGE_SIZE;
		b[i].flags = i < 2 ? VDEMUX_RXBUF_MORE : 0;
	}
	resnap(w);
	assert_int_equal(vdemux_rx_submit(w->fx->eng, b, 3), -EMSGSIZE);
	SAME(w, VDEMUX_BAD_FRAME_LEN);
	assert_int_equal(vdemux_rx_abort(w->fx->eng, b, 3), 3);
	vt_check(w->fx);
}

static void test_check_reports_consistent_world(void **state)
{
	struct world *w = *state;
	char msg[256];

	assert_int_equal(vdemux_engine_check(w->fx->eng, msg, sizeof(msg)), 0);
	SAME(w, -1);
}

#define T(f) cmocka_unit_test_setup_teardown(f, world_setup, world_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_check_reports_consistent_world),
		T(test_post_to_unknown_vm_is_enoent),
		T(test_post_to_vm_zero_is_enoent),
		T(test_release_from_unknown_vm_is_enoent),
		T(test_poll_of_unknown_vm_is_enoent),
		T(test_take_signals_of_unknown_vm_is_enoent),
		T(test_request_release_of_unknown_vm_is_enoent),
		T(test_remove_of_unknown_vm_is_enoent),
		T(test_stats_of_unknown_vm_is_enoent),
		T(test_post_below_the_window_is_erange),
		T(test_post_just_past_the_window_is_erange),
		T(test_post_far_past_the_window_is_erange),
		T(test_post_unaligned_gpa_is_einval),
		T(test_release_outside_the_window_is_erange),
		T(test_release_unaligned_gpa_is_einval),
		T(test_post_of_another_vms_gpa_is_erange),
		T(test_post_of_a_posted_hole_is_ealready),
		T(test_post_of_a_lazily_posted_slot_is_ealready),
		T(test_same_gpa_twice_in_one_post_is_ealready),
		T(test_post_is_all_or_nothing),
		T(test_release_of_a_posted_hole_is_eperm),
		T(test_release_of_a_lazily_posted_slot_is_eperm),
		T(test_release_of_a_released_slot_is_eperm),
		T(test_release_is_all_or_nothing),
		T(test_release_of_the_same_gpa_twice_in_one_call_is_refused),
		T(test_burst_with_a_zero_length_frame_is_einval),
		T(test_burst_with_a_frame_shorter_than_ethernet_is_einval),
		T(test_burst_with_a_frame_above_max_frame_is_emsgsize),
		T(test_burst_validates_every_length_before_taking_any),
		T(test_burst_with_a_short_frame_last_takes_none),
		T(test_burst_of_zero_frames_is_einval),
		T(test_post_of_zero_gpas_is_einval),
		T(test_release_of_zero_gpas_is_einval),
		T(test_alloc_of_zero_buffers_is_einval),
		T(test_submit_of_zero_buffers_is_einval),
		T(test_abort_of_zero_buffers_is_einval),
		T(test_post_with_null_gpas_is_einval),
		T(test_release_with_null_gpas_is_einval),
		T(test_burst_with_null_frames_is_einval),
		T(test_burst_with_a_null_frame_data_is_einval),
		T(test_poll_into_null_is_einval),
		T(test_alloc_into_null_is_einval),
		T(test_submit_of_null_is_einval),
		T(test_abort_of_null_is_einval),
		T(test_vm_add_with_null_out_or_opts_is_einval),
		T(test_null_engine_is_einval_everywhere),
		T(test_vm_add_with_unknown_trailing_bytes_is_einval),
		T(test_vm_add_with_zero_backends_is_einval),
		T(test_vm_add_with_nine_backends_is_einval),
		T(test_vm_add_with_unregistered_backend_is_einval),
		T(test_vm_add_with_the_same_backend_twice_is_einval),
		T(test_vm_add_with_unaligned_window_is_einval),
		T(test_vm_add_with_empty_window_is_einval),
		T(test_vm_add_with_window_wrapping_the_address_space_is_einval),
		T(test_vm_add_with_quota_below_populated_window_is_einval),
		T(test_vm_add_with_unknown_flags_is_einval),
		T(test_vm_add_with_unknown_policy_is_einval),
		T(test_submit_of_an_id_never_lent_is_ebadf),
		T(test_submit_of_a_repeated_id_is_ebadf),
		T(test_submit_of_an_id_already_submitted_is_ebadf),
		T(test_abort_of_an_id_never_lent_is_ebadf),
		T(test_submit_of_a_zero_length_buffer_is_einval),
		T(test_submit_of_a_chain_ending_in_a_zero_length_buffer_is_einval),
		T(test_submit_of_a_frame_shorter_than_ethernet_is_einval),
		T(test_submit_of_a_buffer_longer_than_a_page_is_einval),
		T(test_submit_of_an_open_chain_is_einval),
		T(test_submit_of_a_chain_with_a_short_middle_is_einval),
		T(test_submit_of_a_chain_above_max_frame_is_emsgsize),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: MIT */
/*
 * The adaptive copy policy (VDEMUX_COPY_ADAPTIVE, the default): frames from
 * the caller's memory are copied into still-mapped buffers; zero-copy
 * frames are flipped or copied by the costs the engine measures, the
 * backend's figure deciding until it has measured; tables that cost far
 * more than copying make it copy, with probe flips kept rare. The slow
 * tables are a wrapper that takes a fixed time before forwarding each batch
 * to the simulator: on the engine's clock, which those tests simulate
 * (vdemux_engine_opts.clock: each read takes CLOCK_STEP ns, a slow batch
 * spin_ns more), so that what they assert does not depend on this
 * machine's speed or load.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vt.h"

/* ---- a backend whose table updates take a fixed time ---- */

struct slow {
	struct vdemux_backend base;
	struct vdemux_backend *inner;
	uint64_t spin_ns;
	bool simulated; /* the engine reads sim_now, spin() advances it */
	uint64_t sim_now;
};

/* What one read of the simulated clock takes. */
#define CLOCK_STEP 50u

static uint64_t sim_clock(void *payload)
{
	struct slow *s = payload;

	return s->sim_now += CLOCK_STEP;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void spin(struct slow *s)
{
	uint64_t end = mono_ns() + s->spin_ns;

	if (s->simulated) {
		s->sim_now += s->spin_ns;
		return;
	}
	while (mono_ns() < end)
		;
}

static int slow_attach(struct vdemux_backend *be, const struct vdemux_backend_vm *vm, void **ctx)
{
	struct slow *s = (struct slow *)be;

	return s->inner->vm_attach(s->inner, vm, ctx);
}

static void slow_detach(struct vdemux_backend *be, void *ctx)
{
	struct slow *s = (struct slow *)be;

	s->inner->vm_detach(s->inner, ctx);
}

#define FWD(op)                                                                                \
	static int slow_##op(struct vdemux_backend *be, void *ctx, const struct vdemux_map *m, \
			     unsigned n, unsigned *done)                                       \
	{                                                                                      \
		struct slow *s = (struct slow *)be;                                            \
		spin(s);                                                                       \
		return s->inner->op(s->inner, ctx, m, n, done);                                \
	}
FWD(map)
FWD(unmap)
FWD(remap)

static int slow_query(struct vdemux_backend *be, void *ctx, uint64_t gpa, uint32_t *page)
{
	struct slow *s = (struct slow *)be;

	return s->inner->query(s->inner, ctx, gpa, page);
}

static void slow_free(struct vdemux_backend *be)
{
	struct slow *s = (struct slow *)be;

	s->inner->free(s->inner);
	free(s);
}

/* An engine of 64 pages, one lazy VM of @pages slots, all posted, behind a
 * simulator whose batches take @spin_ns more; on the simulated clock if
 * @simulated (the engine's own otherwise). */
static struct vt_vm *setup_clock(void **state, uint64_t spin_ns, uint32_t sim_threshold, uint32_t pages,
				 bool simulated, vdemux_engine **eng)
{
	struct slow *s = calloc(1, sizeof(*s));
	struct vdemux_engine_opts eo = VDEMUX_OPTS(
		vdemux_engine_opts, .npages = 64, .harvest = VDEMUX_HARVEST_LAZY,
		.clock = simulated ? sim_clock : NULL, .clock_payload = simulated ? s : NULL);
	struct vdemux_sim_opts so = VDEMUX_OPTS(vdemux_sim_opts, .copy_threshold = sim_threshold);
	struct vt_fx_opts fo = {.eng = eo, .builtin_cls = false};
	struct vt_fx *fx;
	struct vdemux_backend init = VDEMUX_BACKEND_INIT;
	struct vt_vm *vm;

	assert_non_null(s);
	s->simulated = simulated;
	fx = vt_fx_state(state, &fo);
	assert_int_equal(vdemux_sim_create(&s->inner, &so), 0);
	s->base = init;
	s->base.name = "slow";
	s->base.copy_threshold = s->inner->copy_threshold;
	s->base.vm_attach = slow_attach;
	s->base.vm_detach = slow_detach;
	s->base.map = slow_map;
	s->base.unmap = slow_unmap;
	s->base.remap = slow_remap;
	s->base.query = slow_query;
	s->base.free = slow_free;
	s->spin_ns = spin_ns;
	assert_int_equal(vdemux_engine_add_backend(fx->eng, &s->base), 0);
	/* the fixture's guest and checks read through the simulator behind it
	 * (the fixture's own simulator stays registered, unused) */
	fx->be[0] = &s->base;
	fx->sim[0] = s->inner;
	vm = vt_vm_posted(fx, pages, 0);
	*eng = fx->eng;
	return vm;
}

static struct vt_vm *setup(void **state, uint64_t spin_ns, uint32_t sim_threshold, uint32_t pages,
			   vdemux_engine **eng)
{
	return setup_clock(state, spin_ns, sim_threshold, pages, false, eng);
}

/* Submit one zero-copy frame of @len bytes (at most 2 pages) to @vm. */
static void submit(struct vt_fx *fx, struct vt_vm *vm, uint32_t len)
{
	struct vdemux_rx_buf b[2];
	uint8_t mac[6], buf[2 * 4096];
	unsigned np = (len + 4095) / 4096;

	assert_true(np <= 2);
	assert_int_equal(vdemux_rx_alloc(fx->eng, b, np), (int)np);
	vt_mac(vm->id, mac);
	vt_frame_fill(buf, len, mac, ++fx->next_seq);
	for (unsigned k = 0; k < np; k++) {
		uint32_t l = k + 1 < np ? 4096 : len - k * 4096;

		memcpy(b[k].data, buf + k * 4096, l);
		b[k].len = l;
		b[k].flags = k + 1 < np ? VDEMUX_RXBUF_MORE : 0;
	}
	assert_int_equal(vdemux_rx_submit(fx->eng, b, np), (int)np);
}

/* Take the one frame just delivered and post its buffers again. */
static struct vt_rx take_and_repost(struct vt_fx *fx, struct vt_vm *vm)
{
	struct vt_rx rx;

	assert_int_equal(vt_guest_take(fx, vm, &rx, 1), 1);
	for (unsigned k = 0; k < rx.ncpl; k++)
		assert_int_equal(vdemux_vm_post_rx(fx->eng, vm->id, &rx.gpa[k], 1), 1);
	return rx;
}

static void test_adaptive_is_the_default_policy_and_copies_frames_from_memory(void **state)
{
	vdemux_engine *eng;
	struct vt_vm *vm = setup(state, 0, 256, 8, &eng);
	struct vt_fx *fx = *state;
	struct vt_burst b = {0};
	struct vt_rx rx[4];

	vt_burst_add(fx, &b, vm->id, 64);
	vt_burst_add(fx, &b, vm->id, 4096);
	vt_burst_add(fx, &b, vm->id, 9000);
	assert_int_equal(vdemux_rx_burst(eng, b.f, 3), 3);
	assert_int_equal(vt_guest_take(fx, vm, rx, 4), 3);
	for (int i = 0; i < 3; i++)
		assert_true(rx[i].copied);
	assert_int_equal(vt_stats(fx).flips, 0);
	assert_int_equal(vt_stats(fx).adaptive_probes, 0);
	vt_check(fx);
	vt_burst_free(&b);
}

/* Nothing measured yet: the first zero-copy delivery is flipped to measure
 * the tables, then the backend's figure decides until there are samples. */
static void test_adaptive_flips_first_then_uses_the_backend_figure(void **state)
{
	vdemux_engine *eng;
	struct vt_vm *vm = setup(state, 0, 5000, 8, &eng);
	struct vt_fx *fx = *state;
	struct vt_rx rx;

	submit(fx, vm, 3000);
	rx = take_and_repost(fx, vm);
	assert_false(rx.copied);
	assert_int_equal(vt_stats(fx).adaptive_probes, 1);
	submit(fx, vm, 3000);
	rx = take_and_repost(fx, vm);
	assert_true(rx.copied);
	submit(fx, vm, 8000);
	rx = take_and_repost(fx, vm);
	assert_false(rx.copied);
	assert_int_equal(vt_stats(fx).adaptive_probes, 1);
	vt_check(fx);
}

/* A zero-copy frame of at most half a page is copied, measured or not:
 * a flip would clear the whole page it replaces. */
static void test_adaptive_copies_short_zero_copy_frames_without_probing(void **state)
{
	vdemux_engine *eng;
	struct vt_vm *vm = setup(state, 0, 1, 8, &eng);
	struct vt_fx *fx = *state;

	for (int i = 0; i < 40; i++) {
		struct vt_rx rx;

		submit(fx, vm, 2048);
		rx = take_and_repost(fx, vm);
		assert_true(rx.copied);
	}
	assert_int_equal(vt_stats(fx).adaptive_probes, 0);
	assert_int_equal(vt_stats(fx).flips, 0);
	vt_check(fx);
}

/* Tables that take 200 us a batch against a copy of at most 8 KiB: after
 * its first measures the policy copies, even frames the backend's figure
 * would flip, and flips only rarely to probe. */
static void test_adaptive_copies_when_the_tables_cost_more_and_probes_rarely(void **state)
{
	vdemux_engine *eng;
	struct vt_vm *vm = setup_clock(state, 200000, 0 /* sim default: 256 */, 8, true, &eng);
	struct vt_fx *fx = *state;
	unsigned flipped = 0, late_flips = 0;
	const unsigned n = 400;

	for (unsigned i = 0; i < n; i++) {
		struct vt_rx rx;

		submit(fx, vm, i % 2 ? 8000 : 4096);
		rx = take_and_repost(fx, vm);
		if (!rx.copied) {
			flipped++;
			if (i >= n / 2)
				late_flips++;
		}
	}
	vt_check(fx);
	/* warm-up: a probe, then the backend's figure (256 bytes: these frames
	 * are flipped) until 4 batches are timed; then copies, with single
	 * probe flips at gaps that start at 64 deliveries and double */
	assert_true(flipped <= 12);
	assert_true(late_flips <= 2);
	assert_true(vt_stats(fx).adaptive_probes <= flipped);
	assert_int_equal(vt_stats(fx).drops[VDEMUX_DROP_BACKEND], 0);
}

/* Tables that turn slow while the VM runs (a loaded machine, a backend's
 * new state): whatever the policy chose with fast tables (which of the two
 * is cheaper on the simulator varies with the machine), it follows, and
 * after a while flips no more than a trial's probe. 1 ms a batch against a
 * copy of 8000 bytes: the margin holds under valgrind too. */
static void test_adaptive_follows_tables_that_turn_slow(void **state)
{
	vdemux_engine *eng;
	struct vt_vm *vm = setup_clock(state, 0, 0 /* sim default: 256: these frames flip first */, 8,
				       true, &eng);
	struct vt_fx *fx = *state;
	struct slow *s = (struct slow *)fx->be[0];
	unsigned late_flips = 0;

	unsigned flips = 0;

	for (unsigned i = 0; i < 400; i++) {
		submit(fx, vm, 8000);
		take_and_repost(fx, vm);
	}
	s->spin_ns = 1000000;
	for (unsigned i = 0; i < 600; i++) {
		struct vt_rx rx;

		submit(fx, vm, 8000);
		rx = take_and_repost(fx, vm);
		flips += !rx.copied;
		if (!rx.copied && i >= 300)
			late_flips++;
	}
	vt_check(fx);
	/* flipping when the tables turned slow: three timed batches in a
	 * row (one in 32) dearer than twice the estimate, then a trial of
	 * copies; copying already: one probe flip of a trial, at most */
	assert_true(flips <= 150);
	assert_true(late_flips <= 2);
	assert_int_equal(vt_stats(fx).drops[VDEMUX_DROP_BACKEND], 0);
}

/* THRESHOLD, NEVER and ALWAYS set on the VM keep their meaning for
 * zero-copy frames: no measuring, no probes. */
static void test_fixed_policies_do_not_probe(void **state)
{
	struct vt_fx_opts fo = {0};
	struct vt_fx *fx;
	enum vdemux_copy_policy pol[3] = {VDEMUX_COPY_NEVER, VDEMUX_COPY_ALWAYS, VDEMUX_COPY_THRESHOLD};
	bool copied[3] = {false, true, true};

	fo.eng = VDEMUX_OPTS(vdemux_engine_opts, .npages = 64, .harvest = VDEMUX_HARVEST_LAZY);
	fx = vt_fx_state(state, &fo);
	for (int p = 0; p < 3; p++) {
		struct vdemux_vm_opts o = vt_vm_opts(fx, 4);
		struct vt_vm *vm;

		o.copy = pol[p];
		o.copy_threshold = 5000;
		vm = vt_vm_add(fx, &o);
		vt_post_range(fx, vm, 0, 4);
		for (int i = 0; i < 3; i++) {
			struct vt_rx rx;

			submit(fx, vm, 4096);
			rx = take_and_repost(fx, vm);
			assert_int_equal(rx.copied, copied[p]);
		}
	}
	assert_int_equal(vt_stats(fx).adaptive_probes, 0);
	vt_check(fx);
}

static void test_adaptive_is_accepted_as_an_engine_and_a_vm_policy(void **state)
{
	struct vt_fx_opts fo = {0};
	struct vt_fx *fx;
	struct vdemux_vm_opts o;
	vdemux_engine *e2;
	vdemux_vm_id id;

	fo.eng = VDEMUX_OPTS(vdemux_engine_opts, .npages = 32, .copy = VDEMUX_COPY_ADAPTIVE);
	fx = vt_fx_state(state, &fo);
	o = vt_vm_opts(fx, 2);
	o.copy = VDEMUX_COPY_ADAPTIVE;
	assert_int_equal(vdemux_vm_add(fx->eng, &id, &o), 0);
	o.copy = VDEMUX_COPY_ADAPTIVE + 1;
	assert_int_equal(vdemux_vm_add(fx->eng, &id, &o), -EINVAL);
	fo.eng.copy = VDEMUX_COPY_ADAPTIVE + 1;
	assert_int_equal(vdemux_engine_create(&e2, &fo.eng), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			test_adaptive_is_the_default_policy_and_copies_frames_from_memory, vt_setup,
			vt_teardown),
		cmocka_unit_test_setup_teardown(test_adaptive_flips_first_then_uses_the_backend_figure,
						vt_setup, vt_teardown),
		cmocka_unit_test_setup_teardown(
			test_adaptive_copies_short_zero_copy_frames_without_probing, vt_setup,
			vt_teardown),
		cmocka_unit_test_setup_teardown(
			test_adaptive_copies_when_the_tables_cost_more_and_probes_rarely, vt_setup,
			vt_teardown),
		cmocka_unit_test_setup_teardown(test_adaptive_follows_tables_that_turn_slow, vt_setup,
						vt_teardown),
		cmocka_unit_test_setup_teardown(test_fixed_policies_do_not_probe, vt_setup, vt_teardown),
		cmocka_unit_test_setup_teardown(test_adaptive_is_accepted_as_an_engine_and_a_vm_policy,
						vt_setup, vt_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

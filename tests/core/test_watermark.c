/* SPDX-License-Identifier: MIT */
/* Release requests raised by adding and removing VMs: sent by the call that
 * raised them, and never to a VM that is gone. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <vdemux/vdemux.h>

struct seen {
	vdemux_vm_id vm[16];
	unsigned reasons[16];
	unsigned n;
};

static void record(vdemux_vm_id vm, unsigned reasons, void *payload)
{
	struct seen *s = payload;

	if (s->n < 16) {
		s->vm[s->n] = vm;
		s->reasons[s->n] = reasons;
		s->n++;
	}
}

static vdemux_vm_id add(vdemux_engine *eng, struct vdemux_backend *sim, uint32_t pages, struct seen *seen)
{
	struct vdemux_vm_opts o = VDEMUX_OPTS(
		vdemux_vm_opts, .rx_base = 0x100000, .rx_pages = pages, .backends = &sim, .n_backends = 1,
		.signal = {.kind = VDEMUX_SIGNAL_CALLBACK, .cb = record, .payload = seen});
	vdemux_vm_id id = 0;

	assert_int_equal(vdemux_vm_add(eng, &id, &o), 0);
	return id;
}

static bool got(const struct seen *s, vdemux_vm_id vm, unsigned reason)
{
	for (unsigned i = 0; i < s->n; i++)
		if (s->vm[i] == vm && (s->reasons[i] & reason))
			return true;
	return false;
}

static void test_adding_a_vm_below_the_watermark_asks_holders_at_once(void **state)
{
	struct vdemux_engine_opts eo = VDEMUX_OPTS(vdemux_engine_opts, .npages = 64, .low_watermark = 20);
	struct vdemux_backend *sim;
	struct seen seen = {0};
	vdemux_engine *eng;
	vdemux_vm_id a, b;

	(void)state;
	assert_int_equal(vdemux_engine_create(&eng, &eo), 0);
	assert_int_equal(vdemux_sim_create(&sim, NULL), 0);
	assert_int_equal(vdemux_engine_add_backend(eng, sim), 0);
	a = add(eng, sim, 8, &seen);
	assert_int_equal(seen.n, 0);  /* 56 free */
	b = add(eng, sim, 40, &seen); /* 16 free: below 20 */
	assert_true(got(&seen, a, VDEMUX_SIG_RELEASE));
	assert_true(got(&seen, b, VDEMUX_SIG_RELEASE));
	vdemux_engine_destroy(eng);
}

/* Removing VMs while the pool is low used to leave a removed VM on the list
 * of VMs to signal; the next signal then read freed memory (caught by
 * valgrind and ASan in this test). */
static void test_removing_vms_while_the_pool_is_low_signals_only_live_vms(void **state)
{
	struct vdemux_engine_opts eo = VDEMUX_OPTS(vdemux_engine_opts, .npages = 64, .low_watermark = 20);
	struct vdemux_backend *sim;
	struct seen seen = {0};
	vdemux_engine *eng;
	vdemux_vm_id a, b, c;
	char msg[128];

	(void)state;
	assert_int_equal(vdemux_engine_create(&eng, &eo), 0);
	assert_int_equal(vdemux_sim_create(&sim, NULL), 0);
	assert_int_equal(vdemux_engine_add_backend(eng, sim), 0);
	a = add(eng, sim, 8, &seen);
	b = add(eng, sim, 40, &seen);
	c = add(eng, sim, 4, &seen);
	assert_int_equal(vdemux_vm_remove(eng, c), 0);
	assert_int_equal(vdemux_vm_remove(eng, b), 0);
	seen.n = 0;
	assert_int_equal(vdemux_vm_request_release(eng, a), 0);
	assert_int_equal(seen.n, 1);
	assert_int_equal(seen.vm[0], a);
	assert_int_equal(vdemux_vm_request_release(eng, b), -ENOENT);
	assert_int_equal(vdemux_engine_check(eng, msg, sizeof(msg)), 0);
	vdemux_engine_destroy(eng);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_adding_a_vm_below_the_watermark_asks_holders_at_once),
		cmocka_unit_test(test_removing_vms_while_the_pool_is_low_signals_only_live_vms),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

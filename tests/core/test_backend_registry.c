/* SPDX-License-Identifier: MIT */
/* Registering and unregistering backends: no engine-wide limit (per-VM
 * backends such as KVM and VFIO need one each), removal only when unused. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <vdemux/sys/backend.h>
#include <vdemux/vdemux.h>

#define NVMS 20

static void test_more_backends_than_a_vm_may_stack_can_be_registered(void **state)
{
	struct vdemux_engine_opts eo = VDEMUX_OPTS(vdemux_engine_opts, .npages = NVMS * 2);
	struct vdemux_backend *sims[NVMS];
	vdemux_vm_id ids[NVMS];
	vdemux_engine *eng;
	char msg[128];

	(void)state;
	assert_int_equal(vdemux_engine_create(&eng, &eo), 0);
	for (int i = 0; i < NVMS; i++) {
		struct vdemux_vm_opts vo;

		assert_int_equal(vdemux_sim_create(&sims[i], NULL), 0);
		assert_int_equal(vdemux_engine_add_backend(eng, sims[i]), 0);
		vo = VDEMUX_OPTS(vdemux_vm_opts, .rx_base = 0x1000, .rx_pages = 2, .backends = &sims[i],
				 .n_backends = 1);
		assert_int_equal(vdemux_vm_add(eng, &ids[i], &vo), 0);
	}
	assert_int_equal(vdemux_engine_add_backend(eng, sims[3]), -EEXIST);
	assert_int_equal(vdemux_engine_check(eng, msg, sizeof(msg)), 0);
	vdemux_engine_destroy(eng); /* frees every backend: valgrind checks */
}

static void test_a_backend_in_use_cannot_be_removed_an_unused_one_is_freed(void **state)
{
	struct vdemux_engine_opts eo = VDEMUX_OPTS(vdemux_engine_opts, .npages = 8);
	struct vdemux_backend *a, *b;
	struct vdemux_engine_stats st;
	vdemux_engine *eng;
	vdemux_vm_id vm;

	(void)state;
	assert_int_equal(vdemux_engine_create(&eng, &eo), 0);
	assert_int_equal(vdemux_sim_create(&a, NULL), 0);
	assert_int_equal(vdemux_sim_create(&b, NULL), 0);
	assert_int_equal(vdemux_engine_add_backend(eng, a), 0);
	struct vdemux_vm_opts vo = VDEMUX_OPTS(vdemux_vm_opts, .rx_base = 0x1000, .rx_pages = 2,
					       .backends = &a, .n_backends = 1);
	assert_int_equal(vdemux_vm_add(eng, &vm, &vo), 0);
	assert_int_equal(vdemux_engine_remove_backend(eng, a), -EBUSY);
	assert_int_equal(vdemux_engine_remove_backend(eng, b), -ENOENT);
	assert_int_equal(vdemux_engine_remove_backend(eng, NULL), -EINVAL);
	assert_int_equal(vdemux_engine_stats(eng, &st, sizeof(st)), 0);
	assert_int_equal(st.bad_input[VDEMUX_BAD_NULL], 1);
	assert_int_equal(vdemux_vm_remove(eng, vm), 0);
	assert_int_equal(vdemux_engine_remove_backend(eng, a), 0);
	/* Gone: adding a VM on it is refused. */
	assert_int_equal(vdemux_vm_add(eng, &vm, &vo), -EINVAL);
	b->free(b); /* never registered: still ours */
	vdemux_engine_destroy(eng);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_more_backends_than_a_vm_may_stack_can_be_registered),
		cmocka_unit_test(test_a_backend_in_use_cannot_be_removed_an_unused_one_is_freed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

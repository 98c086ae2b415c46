/* SPDX-License-Identifier: MIT */
/*
 * Several receive queues of one guest (VIRTIO_NET_F_MQ; virtio_net.h,
 * vdemux_vnet_rxq_opts.ram_of): a second queue over the same guest RAM,
 * its ring in that RAM, takes frames of its own VM into its own buffers,
 * copied whole; it holds no page (guest RAM stays the first queue's, the
 * pool gives nothing more); the options that cannot share are refused; and
 * a sharing queue whose owner went gives its buffers back unused.
 */
#include <endian.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <vdemux/vdemux.h>

#include "rqfx.h"

#define RAM_PAGES 2048u /* 8 MiB: each driver's rings and buffers in one half */
#define RAM ((uint64_t)RAM_PAGES * VDEMUX_PAGE_SIZE)
#define QSIZE 64u

struct fx {
	struct rqfx r;
	vdemux_vnet_rxq *q[2]; /* q[1] shares q[0]'s RAM */
	struct vng g[2];
	uint8_t mac[2][6];
	uint64_t free_before_share;
};

static uint64_t pages_free(const struct fx *x)
{
	struct vdemux_engine_stats st;
	assert_int_equal(vdemux_engine_stats(x->r.eng, &st, sizeof(st)), 0);
	return st.pages_free;
}

/* Driver @i: its rings at the start of its half of RAM, mergeable buffers. */
static void driver_start(struct fx *x, unsigned i)
{
	struct vng_opts vo = {.mode = VNG_MERGEABLE,
			      .qsize = QSIZE,
			      .features = VD_VIRTIO_NET_F_MRG_RXBUF | VD_VIRTIO_F_VERSION_1,
			      .ring_gpa = i ? RAM / 2 : VDEMUX_PAGE_SIZE,
			      .mem_size = i ? RAM : RAM / 2};
	rqfx_driver_start(&x->r, x->q[i], &x->g[i], &vo);
}

static int setup(void **state)
{
	struct fx *x = calloc(1, sizeof(*x));
	assert_non_null(x);
	rqfx_init(&x->r, &(struct rqfx_opts){.ram_pages = RAM_PAGES});
	struct vdemux_vnet_rxq_opts qo = rqfx_rxq_opts(&x->r);
	for (unsigned i = 0; i < 2; i++)
		memcpy(x->mac[i], (uint8_t[6]){0x02, 0, 0, 0, 2, (uint8_t)(i + 1)}, 6);
	x->q[0] = rqfx_rxq_add(&x->r, &qo, x->mac[0]);
	x->free_before_share = pages_free(x);
	qo.ram_of = x->q[0];
	x->q[1] = rqfx_rxq_add(&x->r, &qo, x->mac[1]);
	driver_start(x, 0);
	driver_start(x, 1);
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	struct fx *x = *state;
	char msg[200];
	vdemux_vnet_rxq_destroy(x->q[1]);
	vdemux_vnet_rxq_destroy(x->q[0]);
	vng_fini(&x->g[0]);
	vng_fini(&x->g[1]);
	assert_int_equal(vdemux_engine_check(x->r.eng, msg, sizeof(msg)), 0);
	rqfx_fini(&x->r);
	free(x);
	return 0;
}

static void test_shared_queue_holds_no_page(void **state)
{
	struct fx *x = *state;
	assert_int_equal(pages_free(x), x->free_before_share);
}

static void test_each_queue_takes_its_own_frames_copied_whole(void **state)
{
	struct fx *x = *state;
	static uint8_t f[6][3000];
	struct vdemux_frame fr[6];
	const uint32_t lens[6] = {60, 1514, 2999, 100, 1000, 3000};
	for (unsigned k = 0; k < 6; k++) {
		rqfx_frame(f[k], lens[k], x->mac[k % 2], k);
		fr[k] = (struct vdemux_frame){.data = f[k], .len = lens[k]};
	}
	assert_int_equal(vdemux_rx_burst(x->r.eng, fr, 6), 6);
	for (unsigned k = 0; k < 6; k++)
		rqfx_expect_frame(&x->g[k % 2], x->mac[k % 2], k, lens[k]);
	struct vdemux_vnet_rxq_stats st[2];
	for (unsigned i = 0; i < 2; i++)
		assert_int_equal(vdemux_vnet_rxq_stats(x->q[i], &st[i], sizeof(st[i])), 0);
	assert_int_equal(st[1].frames, 3);
	assert_int_equal(st[1].copied, 3);
	assert_int_equal(st[1].flipped, 0);
	assert_int_equal(st[0].frames, 3);
	assert_int_equal(pages_free(x), x->free_before_share);
	char msg[200];
	assert_int_equal(vdemux_engine_check(x->r.eng, msg, sizeof(msg)), 0);
}

static void test_sharing_refused_across_ram_engines_or_flips(void **state)
{
	struct fx *x = *state;
	vdemux_vnet_rxq *q = (vdemux_vnet_rxq *)(uintptr_t)0x1;
	struct vdemux_vnet_rxq_opts qo = rqfx_rxq_opts(&x->r);
	qo.ram_of = x->q[1]; /* itself sharing */
	assert_int_equal(vdemux_vnet_rxq_create(&q, x->r.eng, &qo), -EINVAL);
	qo.ram_of = x->q[0];
	qo.copy = VDEMUX_COPY_NEVER; /* flips need RAM of its own */
	assert_int_equal(vdemux_vnet_rxq_create(&q, x->r.eng, &qo), -EINVAL);
	qo.copy = VDEMUX_COPY_ADAPTIVE;
	assert_int_equal(vdemux_vnet_rxq_create(&q, x->r.eng, &qo), -EINVAL);
	qo.copy = VDEMUX_COPY_DEFAULT;
	qo.ram_size = RAM / 2; /* other RAM */
	assert_int_equal(vdemux_vnet_rxq_create(&q, x->r.eng, &qo), -EINVAL);
	/* Another engine: its thread could copy while the owner's flips. */
	vdemux_engine *other;
	struct vdemux_engine_opts eo = VDEMUX_OPTS(vdemux_engine_opts, .npages = 64);
	assert_int_equal(vdemux_engine_create(&other, &eo), 0);
	qo.ram_size = RAM;
	assert_int_equal(vdemux_vnet_rxq_create(&q, other, &qo), -EINVAL);
	vdemux_engine_destroy(other);
	assert_ptr_equal(q, (vdemux_vnet_rxq *)(uintptr_t)0x1);
	assert_int_equal(pages_free(x), x->free_before_share);
}

static void test_owner_gone_sharer_gives_buffers_back_unused(void **state)
{
	struct fx *x = *state;
	static uint8_t f[200];
	vdemux_vnet_rxq_destroy(x->q[0]);
	x->q[0] = NULL;
	rqfx_frame(f, sizeof(f), x->mac[1], 0);
	struct vdemux_frame fr = {.data = f, .len = sizeof(f)};
	vdemux_rx_burst(x->r.eng, &fr, 1);
	struct vdemux_vnet_rxq_stats st;
	assert_int_equal(vdemux_vnet_rxq_stats(x->q[1], &st, sizeof(st)), 0);
	assert_int_equal(st.frames, 0);
	assert_true(st.skipped >= 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_shared_queue_holds_no_page, setup, teardown),
		cmocka_unit_test_setup_teardown(test_each_queue_takes_its_own_frames_copied_whole, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_sharing_refused_across_ram_engines_or_flips, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_owner_gone_sharer_gives_buffers_back_unused, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

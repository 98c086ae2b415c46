/* SPDX-License-Identifier: MIT */
/* Groups of shards (shard.h): options, ids, the handoff of a frame to
 * another shard's VM, back-pressure, pages one for one, the group check. */
#include <errno.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include <vdemux/sim.h>

#include "core/engine.h"
#include "core/pool.h"
#include "oframe.h"
#include "sfx.h"

/* The groups the tests start from (sfx.h): shards, pages, policies, and
 * the VMs set up before the test runs. */
static struct sfx_case two = {.o = {.nshards = 2, .npages = 64}};
static struct sfx_case two_one_vm_each = {.o = {.nshards = 2, .npages = 64}, .slots = {4, 4}};
static struct sfx_case two_vm_on_1 = {.o = {.nshards = 2, .npages = 64}, .slots = {0, 4}};
static struct sfx_case two_copying_vm_on_1 = {
	.o = {.nshards = 2, .npages = 64, .copy = VDEMUX_COPY_ALWAYS, .harvest = VDEMUX_HARVEST_LAZY},
	.slots = {0, 4}};
static struct sfx_case two_copying_vm_of_8_each = {
	.o = {.nshards = 2, .npages = 64, .copy = VDEMUX_COPY_ALWAYS, .harvest = VDEMUX_HARVEST_LAZY},
	.slots = {8, 8}};
static struct sfx_case two_flipping_vm_on_1 = {
	.o = {.nshards = 2, .npages = 64, .copy = VDEMUX_COPY_NEVER}, .slots = {0, 4}};
static struct sfx_case two_short_queues_vm_of_8_on_1 = {
	.o = {.nshards = 2, .npages = 64, .queue_len = 2}, .slots = {0, 8}};
static struct sfx_case two_small = {.o = {.nshards = 2, .npages = 16}};
static struct sfx_case two_small_flipping_vm_on_1 = {
	.o = {.nshards = 2, .npages = 16, .copy = VDEMUX_COPY_NEVER, .harvest = VDEMUX_HARVEST_LAZY},
	.slots = {0, 4}};
static struct sfx_case three_one_vm_each = {.o = {.nshards = 3, .npages = 96}, .slots = {4, 4, 4}};
static struct sfx_case three_vm_of_8_on_2 = {.o = {.nshards = 3, .npages = 96}, .slots = {0, 0, 8}};
static struct sfx_case three_small = {.o = {.nshards = 3, .npages = 48}};

static struct vdemux_engine_stats st(vdemux_engine *e)
{
	struct vdemux_engine_stats s;

	assert_int_equal(vdemux_engine_stats(e, &s, sizeof(s)), 0);
	return s;
}

static int burst_to(struct sfx *f, unsigned shard, vdemux_vm_id vm, unsigned n, uint32_t len)
{
	static uint8_t buf[8][1600];
	struct vdemux_frame fr[8];
	uint8_t mac[6];

	sfx_mac(vm, mac);
	for (unsigned i = 0; i < n; i++) {
		sfx_frame(buf[i], len, mac, i + 1);
		fr[i] = (struct vdemux_frame){.data = buf[i], .len = len};
	}
	return vdemux_rx_burst(f->eng[shard], fr, n);
}

static void test_group_create_refuses_bad_options(void **state)
{
	vdemux_arena *a;
	vdemux_group *g = NULL;
	struct vdemux_arena_opts ao = VDEMUX_OPTS(vdemux_arena_opts, .npages = 16);

	(void)state;
	assert_int_equal(vdemux_arena_create(&a, &ao), 0);
	assert_int_equal(
		vdemux_group_create(NULL, &VDEMUX_OPTS(vdemux_group_opts, .arena = a, .nshards = 2)),
		-EINVAL);
	assert_int_equal(vdemux_group_create(&g, NULL), -EINVAL);
	assert_int_equal(vdemux_group_create(&g, &VDEMUX_OPTS(vdemux_group_opts, .nshards = 2)), -EINVAL);
	assert_int_equal(vdemux_group_create(&g, &VDEMUX_OPTS(vdemux_group_opts, .arena = a)), -EINVAL);
	assert_int_equal(
		vdemux_group_create(&g, &VDEMUX_OPTS(vdemux_group_opts, .arena = a, .nshards = 65)),
		-EINVAL);
	assert_int_equal(vdemux_group_create(&g, &VDEMUX_OPTS(vdemux_group_opts, .arena = a,
							      .nshards = 2, .queue_len = 3)),
			 -EINVAL);
	assert_int_equal(vdemux_group_create(&g, &VDEMUX_OPTS(vdemux_group_opts, .arena = a,
							      .nshards = 2, .queue_len = 1)),
			 -EINVAL);
	assert_int_equal(vdemux_group_create(&g, &VDEMUX_OPTS(vdemux_group_opts, .arena = a, .nshards = 2,
							      .first_page = 8, .npages = 9)),
			 -EINVAL);
	assert_int_equal(vdemux_group_create(&g, &VDEMUX_OPTS(vdemux_group_opts, .arena = a,
							      .nshards = 2, .first_page = 15)),
			 -EINVAL);
	assert_null(g);
	assert_int_equal(vdemux_group_create(&g, &VDEMUX_OPTS(vdemux_group_opts, .arena = a,
							      .nshards = 2, .first_page = 14)),
			 0);
	assert_int_equal(vdemux_group_destroy(g), 0);
	assert_int_equal(vdemux_group_destroy(NULL), 0);
	assert_null(vdemux_group_l2(NULL));
	vdemux_arena_destroy(a);
}

static void test_shard_create_takes_its_share_and_only_once(void **state)
{
	struct sfx_fixture *t = *state;
	struct sfx *f = &t->f;
	vdemux_engine *e = NULL;
	struct vdemux_engine_stats s0, s1;

	s0 = st(f->eng[0]);
	s1 = st(f->eng[1]);
	assert_int_equal(s0.pages_total, 64);
	assert_int_equal(s0.pages_free, 32);
	assert_int_equal(s0.pages_away, 32);
	assert_int_equal(s1.pages_free, 32);
	assert_int_equal(s1.pages_away, 32);
	assert_int_equal(
		vdemux_engine_create(&e, &VDEMUX_OPTS(vdemux_engine_opts, .group = f->g, .shard = 1)),
		-EBUSY);
	assert_int_equal(
		vdemux_engine_create(&e, &VDEMUX_OPTS(vdemux_engine_opts, .group = f->g, .shard = 2)),
		-EINVAL);
	assert_int_equal(vdemux_engine_create(&e, &VDEMUX_OPTS(vdemux_engine_opts, .group = f->g,
							       .shard = 0, .npages = 8)),
			 -EINVAL);
	assert_int_equal(vdemux_engine_create(&e, &VDEMUX_OPTS(vdemux_engine_opts, .group = f->g,
							       .shard = 0, .max_vms = 1u << 19)),
			 -EINVAL);
	assert_null(e);
	assert_int_equal(vdemux_group_destroy(f->g), -EBUSY);
	assert_ptr_equal(vdemux_engine_l2(f->eng[0]), vdemux_group_l2(f->g));
	assert_ptr_equal(vdemux_engine_l2(f->eng[1]), vdemux_group_l2(f->g));
	sfx_check(f);
}

static void test_shards_take_the_shares_asked_for(void **state)
{
	vdemux_arena *a;
	vdemux_group *g = NULL;
	vdemux_engine *e[3];
	static const uint32_t shares[3] = {40, 8, 16}, zero[3] = {40, 0, 24}, short_sum[3] = {40, 8, 8};
	char msg[200];

	(void)state;
	assert_int_equal(vdemux_arena_create(&a, &VDEMUX_OPTS(vdemux_arena_opts, .npages = 64)), 0);
	assert_int_equal(vdemux_group_create(&g, &VDEMUX_OPTS(vdemux_group_opts, .arena = a,
							      .nshards = 3, .shard_pages = zero)),
			 -EINVAL);
	assert_int_equal(vdemux_group_create(&g, &VDEMUX_OPTS(vdemux_group_opts, .arena = a,
							      .nshards = 3, .shard_pages = short_sum)),
			 -EINVAL);
	assert_null(g);
	assert_int_equal(vdemux_group_create(&g, &VDEMUX_OPTS(vdemux_group_opts, .arena = a,
							      .nshards = 3, .shard_pages = shares)),
			 0);
	for (uint32_t i = 0; i < 3; i++) {
		assert_int_equal(vdemux_engine_create(&e[i], &VDEMUX_OPTS(vdemux_engine_opts, .group = g,
									  .shard = i)),
				 0);
		struct vdemux_engine_stats s = st(e[i]);
		assert_int_equal(s.pages_total, 64);
		assert_int_equal(s.pages_free, shares[i]);
		assert_int_equal(s.pages_away, 64 - shares[i]);
	}
	assert_int_equal(vdemux_group_check(g, msg, sizeof(msg)), 0);
	for (uint32_t i = 0; i < 3; i++)
		vdemux_engine_destroy(e[i]);
	assert_int_equal(vdemux_group_destroy(g), 0);
	vdemux_arena_destroy(a);
}

static void test_vm_ids_name_their_shard_and_no_other(void **state)
{
	struct sfx_fixture *t = *state;
	struct sfx *f = &t->f;
	struct vdemux_completion c;
	vdemux_vm_id a, b;

	a = t->vm[0];
	b = t->vm[1];
	assert_int_not_equal(a, 0);
	assert_int_not_equal(b, 0);
	assert_int_not_equal(a, b);
	assert_int_equal(vdemux_vm_poll(f->eng[0], b, &c, 1), -ENOENT);
	assert_int_equal(vdemux_vm_poll(f->eng[1], a, &c, 1), -ENOENT);
	assert_int_equal(vdemux_vm_poll(f->eng[0], a, &c, 1), 0);
	assert_int_equal(vdemux_vm_poll(f->eng[1], b, &c, 1), 0);
	sfx_check(f);
}

static void test_frame_for_another_shard_arrives_at_its_poll(void **state)
{
	struct sfx_fixture *t = *state;
	struct sfx *f = &t->f;
	vdemux_vm_id b;
	struct vdemux_engine_stats s0;

	b = t->vm[1];
	assert_int_equal(burst_to(f, 0, b, 3, 1500), 3);
	s0 = st(f->eng[0]);
	assert_int_equal(s0.handoff_out, 3);
	assert_int_equal(s0.pages_away, 32 + 3); /* three pages in the queue */
	sfx_expect_drained(f, 1, b, 0);		 /* not before shard 1 polls */
	sfx_check(f);
	assert_int_equal(vdemux_shard_poll(f->eng[1], 64), 3);
	assert_int_equal(st(f->eng[1]).handoff_in, 3);
	sfx_expect_drained(f, 1, b, 3);
	sfx_check(f);
	/* Shard 0 takes back three pages for its three at its next call. */
	assert_int_equal(vdemux_shard_poll(f->eng[0], 64), 0);
	assert_int_equal(st(f->eng[0]).pages_away, 32);
	assert_int_equal(st(f->eng[1]).pages_away, 32);
	sfx_check(f);
}

static void test_broadcast_reaches_vms_of_every_shard(void **state)
{
	struct sfx_fixture *t = *state;
	struct sfx *f = &t->f;
	vdemux_vm_id a, b, c;
	static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	uint8_t buf[200];

	a = t->vm[0];
	b = t->vm[1];
	c = t->vm[2];
	sfx_frame(buf, sizeof(buf), bcast, 9);
	assert_int_equal(
		vdemux_rx_burst(f->eng[1], &(struct vdemux_frame){.data = buf, .len = sizeof(buf)}, 1),
		1);
	assert_int_equal(vdemux_shard_poll(f->eng[0], 8), 1);
	assert_int_equal(vdemux_shard_poll(f->eng[2], 8), 1);
	sfx_expect_drained(f, 0, a, 1);
	sfx_expect_drained(f, 1, b, 1);
	sfx_expect_drained(f, 2, c, 1);
	sfx_check(f);
}

static void test_full_queue_stops_the_burst_then_drains(void **state)
{
	struct sfx_fixture *t = *state;
	struct sfx *f = &t->f;
	vdemux_vm_id b;

	b = t->vm[1];
	assert_int_equal(burst_to(f, 0, b, 3, 300), 2); /* the third stays with the caller */
	assert_int_equal(burst_to(f, 0, b, 1, 300), -EAGAIN);
	assert_int_equal(st(f->eng[0]).rx_frames, 2);
	assert_int_equal(st(f->eng[0]).handoff_full, 0);
	sfx_check(f);
	assert_int_equal(vdemux_shard_poll(f->eng[1], 1), 1); /* the budget holds */
	assert_int_equal(vdemux_shard_poll(f->eng[1], 8), 1);
	assert_int_equal(burst_to(f, 0, b, 2, 300), 2);
	assert_int_equal(vdemux_shard_poll(f->eng[1], 8), 2);
	sfx_expect_drained(f, 1, b, 4);
	sfx_check(f);
}

static void test_zero_copy_frame_to_full_queue_is_counted(void **state)
{
	struct sfx_fixture *t = *state;
	struct sfx *f = &t->f;
	vdemux_vm_id b;
	struct vdemux_rx_buf rb[3];
	uint8_t mac[6];

	b = t->vm[1];
	sfx_mac(b, mac);
	assert_int_equal(vdemux_rx_alloc(f->eng[0], rb, 3), 3);
	for (unsigned i = 0; i < 3; i++) {
		sfx_frame(rb[i].data, 100, mac, i);
		rb[i].len = 100;
	}
	assert_int_equal(vdemux_rx_submit(f->eng[0], rb, 3), 3);
	assert_int_equal(st(f->eng[0]).handoff_out, 2);
	assert_int_equal(st(f->eng[0]).handoff_full, 1);
	sfx_check(f);
}

static void test_frame_for_a_removed_vm_is_dropped_by_its_shard(void **state)
{
	struct sfx_fixture *t = *state;
	struct sfx *f = &t->f;
	vdemux_vm_id b;

	b = t->vm[1];
	assert_int_equal(burst_to(f, 0, b, 2, 1500), 2);
	assert_int_equal(vdemux_vm_remove(f->eng[1], b), 0);
	assert_int_equal(vdemux_shard_poll(f->eng[1], 8), 2);
	assert_int_equal(st(f->eng[1]).drops[VDEMUX_DROP_UNKNOWN_VM], 2);
	assert_int_equal(st(f->eng[1]).pages_free, 32);
	sfx_check(f);
}

static void test_poll_waits_while_the_shard_has_no_page_to_give_back(void **state)
{
	struct sfx_fixture *t = *state;
	struct sfx *f = &t->f;
	vdemux_vm_id b, c;

	b = t->vm[1];
	c = sfx_vm_add(f, 1, 4); /* with b, every page of shard 1 */
	assert_int_equal(st(f->eng[1]).pages_free, 0);
	assert_int_equal(burst_to(f, 0, b, 1, 1500), 1);
	assert_int_equal(vdemux_shard_poll(f->eng[1], 8), 0);
	assert_int_equal(vdemux_vm_take_signals(f->eng[1], b) & VDEMUX_SIG_RELEASE, VDEMUX_SIG_RELEASE);
	sfx_check(f);
	/* Pages back in shard 1's pool let the frame in. */
	assert_int_equal(vdemux_vm_remove(f->eng[1], c), 0);
	assert_int_equal(vdemux_shard_poll(f->eng[1], 8), 1);
	sfx_expect_drained(f, 1, b, 1);
	sfx_check(f);
}

static void test_poll_refuses_an_engine_alone_and_budget_zero(void **state)
{
	struct sfx_fixture *t = *state;
	struct sfx *f = &t->f;
	vdemux_engine *e;

	assert_int_equal(vdemux_engine_create(&e, &VDEMUX_OPTS(vdemux_engine_opts, .npages = 4)), 0);
	assert_int_equal(vdemux_shard_poll(NULL, 1), -EINVAL);
	assert_int_equal(vdemux_shard_poll(e, 1), -EINVAL);
	assert_int_equal(st(e).bad_input[VDEMUX_BAD_OPTS], 1);
	assert_int_equal(vdemux_shard_poll(f->eng[0], 0), -EINVAL);
	assert_int_equal(st(f->eng[0]).bad_input[VDEMUX_BAD_BURST_ZERO], 1);
	assert_int_equal(vdemux_group_check(NULL, NULL, 0), -EINVAL);
	vdemux_engine_destroy(e);
}

static void test_group_check_needs_every_shard(void **state)
{
	struct sfx_fixture *t = *state;
	struct sfx *f = &t->f;
	char msg[128];

	vdemux_engine_destroy(f->eng[1]);
	assert_int_equal(vdemux_group_check(f->g, msg, sizeof(msg)), -EUCLEAN);
	assert_non_null(strstr(msg, "shard 1"));
	f->n = 1;
}

/* The one completion of @vm on @shard, its bytes read through the guest's
 * tables into @buf; returns its length. */
static uint32_t read_one(struct sfx *f, unsigned shard, vdemux_vm_id vm, uint8_t *buf, uint32_t cap)
{
	struct vdemux_completion c;

	assert_int_equal(vdemux_vm_poll(f->eng[shard], vm, &c, 1), 1);
	assert_true(c.len <= cap);
	assert_int_equal(vdemux_sim_read(f->sim[shard], vm, c.gpa, buf, c.len), 0);
	return c.len;
}

static void test_offload_metadata_crosses_and_the_receiver_finishes_the_checksum(void **state)
{
	struct sfx_fixture *t = *state;
	struct sfx *f = &t->f;
	vdemux_vm_id b;
	uint8_t mac[6], in[10 + 1600], out[2048];
	struct of_layout lay;
	uint32_t n;

	b = t->vm[1]; /* takes no offload: frames arrive complete */
	sfx_mac(b, mac);
	lay = of_build(in + 10,
		       &(struct of_spec){
			       .dst = mac, .ipv = 4, .payload = 700, .seed = 3, .tcp_flags = OF_TCP_ACK});
	of_hdr(in, VDEMUX_VNET_HDR_F_NEEDS_CSUM, 0, 0, 0, (uint16_t)lay.l4, 16);
	assert_int_equal(vdemux_rx_burst(f->eng[0],
					 &(struct vdemux_frame){.data = in,
								.len = 10 + lay.len,
								.flags = VDEMUX_FRAME_VNET_HDR(10)},
					 1),
			 1);
	assert_int_equal(vdemux_shard_poll(f->eng[1], 8), 1);
	n = read_one(f, 1, b, out, sizeof(out));
	assert_int_equal(n, lay.len);
	assert_null(of_check_csums(out, n, &lay, 4, false));
	assert_int_equal(st(f->eng[1]).offload_csums, 1);
	sfx_check(f);
}

static void test_tagged_member_of_another_shard_gets_the_tag_pushed(void **state)
{
	struct sfx_fixture *t = *state;
	struct sfx *f = &t->f;
	vdemux_vm_id b;
	uint8_t mac[6], in[200], out[300];
	uint32_t n;

	b = t->vm[1];
	assert_int_equal(vdemux_l2_vlan_join(vdemux_group_l2(f->g), b, 1, VDEMUX_L2_TAGGED), 0);
	sfx_mac(b, mac);
	sfx_frame(in, sizeof(in), mac, 5);
	assert_int_equal(
		vdemux_rx_burst(f->eng[0], &(struct vdemux_frame){.data = in, .len = sizeof(in)}, 1), 1);
	assert_int_equal(vdemux_shard_poll(f->eng[1], 8), 1);
	n = read_one(f, 1, b, out, sizeof(out));
	assert_int_equal(n, sizeof(in) + 4);
	assert_memory_equal(out, in, 12);
	assert_int_equal(out[12], 0x81);
	assert_int_equal(out[13], 0x00);
	assert_int_equal(out[14] << 8 | out[15], 1); /* VID 1, priority 0 */
	assert_memory_equal(out + 16, in + 12, sizeof(in) - 12);
	sfx_check(f);
}

static void test_polls_take_turns_between_senders(void **state)
{
	struct sfx_fixture *t = *state;
	struct sfx *f = &t->f;
	vdemux_vm_id c;
	uint8_t mac[6], in[2][100], out[200];
	uint32_t seq[2];

	c = t->vm[2];
	sfx_mac(c, mac);
	for (unsigned s = 0; s < 2; s++) {
		for (unsigned i = 0; i < 2; i++) {
			sfx_frame(in[i], sizeof(in[i]), mac, 10 * (s + 1) + i);
		}
		assert_int_equal(vdemux_rx_burst(f->eng[s],
						 (struct vdemux_frame[]){{.data = in[0], .len = 100},
									 {.data = in[1], .len = 100}},
						 2),
				 2);
	}
	/* Budget 1, twice: one frame from each sender, not both from one. */
	for (unsigned k = 0; k < 2; k++) {
		assert_int_equal(vdemux_shard_poll(f->eng[2], 1), 1);
		assert_int_equal(read_one(f, 2, c, out, sizeof(out)), 100);
		memcpy(&seq[k], out + 14, 4);
	}
	assert_int_not_equal(seq[0] / 10, seq[1] / 10);
	assert_int_equal(vdemux_shard_poll(f->eng[2], 8), 2);
	sfx_check(f);
}

static void test_zero_copy_frame_flips_into_another_shard_in_its_own_page(void **state)
{
	struct sfx_fixture *t = *state;
	struct sfx *f = &t->f;
	vdemux_vm_id b;
	struct vdemux_rx_buf rb;
	struct vdemux_completion c;
	uint8_t mac[6];
	uint32_t page;

	b = t->vm[1];
	sfx_mac(b, mac);
	assert_int_equal(vdemux_rx_alloc(f->eng[0], &rb, 1), 1);
	sfx_frame(rb.data, 1500, mac, 77);
	rb.len = 1500;
	assert_int_equal(vdemux_rx_submit(f->eng[0], &rb, 1), 1);
	assert_int_equal(st(f->eng[0]).handoff_out, 1);
	assert_int_equal(st(f->eng[0]).pages_away, 32 + 1);
	assert_int_equal(vdemux_shard_poll(f->eng[1], 8), 1);
	assert_int_equal(vdemux_vm_poll(f->eng[1], b, &c, 1), 1);
	assert_int_equal(vdemux_sim_translate(f->sim[1], b, c.gpa, &page), 0);
	assert_int_equal(page, rb.arena_off / VDEMUX_PAGE_SIZE); /* the device's page, no copy */
	assert_int_equal(st(f->eng[1]).flips, 1);
	sfx_check(f);
	/* Shard 1 paid for it with a page of its own. */
	assert_int_equal(vdemux_shard_poll(f->eng[0], 8), 0);
	assert_int_equal(st(f->eng[0]).pages_away, 32);
	assert_int_equal(st(f->eng[1]).pages_away, 32);
	sfx_check(f);
}

/* Every segment of @spec (cut at @mss) arrived at @vm on @shard, in order. */
static void expect_segments(struct sfx *f, unsigned shard, vdemux_vm_id vm, const struct of_spec *spec,
			    uint32_t mss)
{
	uint32_t n = (spec->payload + mss - 1) / mss;
	uint8_t out[4096];

	for (uint32_t i = 0; i < n; i++) {
		uint32_t len = read_one(f, shard, vm, out, sizeof(out));
		const char *why = of_check_segment(out, len, spec, mss, i, n);

		if (why)
			fail_msg("shard %u segment %u of %u: %s", shard, i, n, why);
	}
}

static void test_gso_frame_is_segmented_on_both_shards(void **state)
{
	static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	struct of_spec spec = {.dst = bcast,
			       .ipv = 4,
			       .payload = 3000,
			       .seed = 9,
			       .tcp_flags = OF_TCP_ACK | OF_TCP_PSH,
			       .seq = 1000};
	struct sfx_fixture *t = *state;
	struct sfx *f = &t->f;
	vdemux_vm_id a, b;
	uint8_t in[10 + 3200];
	struct of_layout lay;

	a = t->vm[0]; /* neither takes TSO: each gets the segments */
	b = t->vm[1];
	lay = of_build(in + 10, &spec);
	of_hdr(in, VDEMUX_VNET_HDR_F_NEEDS_CSUM, VDEMUX_VNET_GSO_TCPV4, (uint16_t)lay.hlen, 1000,
	       (uint16_t)lay.l4, 16);
	/* Shard 0 cuts the segments for a in its scratch, then hands the
	 * frame over: shard 1 must cut its own, not trust shard 0's mark. */
	assert_int_equal(vdemux_rx_burst(f->eng[0],
					 &(struct vdemux_frame){.data = in,
								.len = 10 + lay.len,
								.flags = VDEMUX_FRAME_VNET_HDR(10)},
					 1),
			 1);
	assert_int_equal(vdemux_shard_poll(f->eng[1], 8), 1);
	expect_segments(f, 0, a, &spec, 1000);
	expect_segments(f, 1, b, &spec, 1000);
	assert_int_equal(st(f->eng[0]).offload_segments, 3);
	assert_int_equal(st(f->eng[1]).offload_segments, 3);
	sfx_check(f);
}

/* The group check sees what no shard's own check can: a page two shards
 * both count as theirs, or one none does (each shard's books consistent
 * on their own). */
static void test_group_check_finds_a_page_two_shards_hold_or_none(void **state)
{
	struct sfx_fixture *t = *state;
	struct sfx *f = &t->f;
	char msg[128];
	uint32_t p = 0, back; /* shard 0's first page: AWAY in shard 1 */

	sfx_check(f);
	vd_pool_take_free(&f->eng[1]->pool, p, 0);
	assert_int_equal(vdemux_engine_check(f->eng[1], NULL, 0), 0);
	assert_int_equal(vdemux_group_check(f->g, msg, sizeof(msg)), -EUCLEAN);
	assert_non_null(strstr(msg, "page 0: 2 holders"));
	assert_int_equal(vd_pool_give(&f->eng[1]->pool, &back, 1), 1);
	assert_int_equal(back, p);
	sfx_check(f);
	/* And a page no one holds: gone from shard 0, in no queue. */
	assert_int_equal(vd_pool_give(&f->eng[0]->pool, &back, 1), 1);
	assert_int_equal(vdemux_engine_check(f->eng[0], NULL, 0), 0);
	assert_int_equal(vdemux_group_check(f->g, msg, sizeof(msg)), -EUCLEAN);
	assert_non_null(strstr(msg, ": 0 holders"));
	vd_pool_take_free(&f->eng[0]->pool, back, 0);
	sfx_check(f);
}

/* What the eventfd holds (0: nothing written since the last read). */
static uint64_t efd_take(int fd)
{
	uint64_t v = 0;

	if (read(fd, &v, sizeof(v)) != (ssize_t)sizeof(v))
		return 0;
	return v;
}

static void test_idle_shard_is_woken_once_by_the_first_frame_handed_to_it(void **state)
{
	int efd = eventfd(0, EFD_NONBLOCK);
	struct sfx f;
	vdemux_vm_id b;

	(void)state;
	assert_true(efd >= 0);
	sfx_init(&f, &(struct sfx_opts){.nshards = 2,
					.npages = 64,
					.wake[1] = {.kind = VDEMUX_SIGNAL_EVENTFD, .fd = efd}});
	b = sfx_vm_add(&f, 1, 8);
	/* Not waiting: no wake-up. */
	assert_int_equal(burst_to(&f, 0, b, 1, 300), 1);
	assert_int_equal(efd_take(efd), 0);
	assert_int_equal(vdemux_shard_idle(f.eng[1]), 1); /* a frame waits: do not sleep */
	assert_int_equal(vdemux_shard_poll(f.eng[1], 8), 1);
	/* Waiting: the first frame wakes it, once. */
	assert_int_equal(vdemux_shard_idle(f.eng[1]), 0);
	assert_int_equal(burst_to(&f, 0, b, 2, 300), 2);
	assert_int_equal(efd_take(efd), 1);
	assert_int_equal(burst_to(&f, 0, b, 1, 300), 1);
	assert_int_equal(efd_take(efd), 0);
	assert_int_equal(vdemux_shard_poll(f.eng[1], 8), 3);
	/* Armed, then awake (polled) before the frame: no wake-up. */
	assert_int_equal(vdemux_shard_idle(f.eng[1]), 0);
	assert_int_equal(vdemux_shard_poll(f.eng[1], 8), 0);
	assert_int_equal(burst_to(&f, 0, b, 1, 300), 1);
	assert_int_equal(efd_take(efd), 0);
	assert_int_equal(vdemux_shard_poll(f.eng[1], 8), 1);
	sfx_expect_drained(&f, 1, b, 5);
	sfx_check(&f);
	sfx_fini(&f);
	close(efd);
}

static void test_wake_up_options_and_idle_refusals(void **state)
{
	struct sfx_fixture *t = *state;
	struct sfx *f = &t->f;
	vdemux_engine *e = NULL;

	vdemux_engine_destroy(f->eng[2]);
	f->eng[2] = NULL;
	assert_int_equal(vdemux_engine_create(
				 &e, &VDEMUX_OPTS(vdemux_engine_opts, .group = f->g, .shard = 2,
						  .wake = {.kind = VDEMUX_SIGNAL_EVENTFD, .fd = -1})),
			 -EINVAL);
	assert_int_equal(
		vdemux_engine_create(&e, &VDEMUX_OPTS(vdemux_engine_opts, .group = f->g, .shard = 2,
						      .wake = {.kind = VDEMUX_SIGNAL_CALLBACK})),
		-EINVAL);
	assert_int_equal(vdemux_engine_create(&e, &VDEMUX_OPTS(vdemux_engine_opts, .group = f->g,
							       .shard = 2, .wake = {.kind = 7})),
			 -EINVAL);
	assert_int_equal(
		vdemux_engine_create(&e, &VDEMUX_OPTS(vdemux_engine_opts, .npages = 4,
						      .wake = {.kind = VDEMUX_SIGNAL_EVENTFD, .fd = 0})),
		-EINVAL);
	assert_null(e);
	assert_int_equal(vdemux_engine_create(&f->eng[2], &VDEMUX_OPTS(vdemux_engine_opts, .group = f->g,
								       .shard = 2)),
			 0);
	assert_int_equal(vdemux_engine_create(&e, &VDEMUX_OPTS(vdemux_engine_opts, .npages = 4)), 0);
	assert_int_equal(vdemux_shard_idle(NULL), -EINVAL);
	assert_int_equal(vdemux_shard_idle(e), -EINVAL);
	assert_int_equal(st(e).bad_input[VDEMUX_BAD_OPTS], 1);
	assert_int_equal(vdemux_shard_idle(f->eng[2]), 0);
	vdemux_engine_destroy(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_group_create_refuses_bad_options),
		cmocka_unit_test_prestate_setup_teardown(test_shard_create_takes_its_share_and_only_once,
							 sfx_setup, sfx_teardown, &two),
		cmocka_unit_test(test_shards_take_the_shares_asked_for),
		cmocka_unit_test_prestate_setup_teardown(test_vm_ids_name_their_shard_and_no_other,
							 sfx_setup, sfx_teardown, &two_one_vm_each),
		cmocka_unit_test_prestate_setup_teardown(test_frame_for_another_shard_arrives_at_its_poll,
							 sfx_setup, sfx_teardown, &two_copying_vm_on_1),
		cmocka_unit_test_prestate_setup_teardown(test_broadcast_reaches_vms_of_every_shard,
							 sfx_setup, sfx_teardown, &three_one_vm_each),
		cmocka_unit_test_prestate_setup_teardown(test_full_queue_stops_the_burst_then_drains,
							 sfx_setup, sfx_teardown,
							 &two_short_queues_vm_of_8_on_1),
		cmocka_unit_test_prestate_setup_teardown(test_zero_copy_frame_to_full_queue_is_counted,
							 sfx_setup, sfx_teardown,
							 &two_short_queues_vm_of_8_on_1),
		cmocka_unit_test_prestate_setup_teardown(
			test_frame_for_a_removed_vm_is_dropped_by_its_shard, sfx_setup, sfx_teardown,
			&two_vm_on_1),
		cmocka_unit_test_prestate_setup_teardown(
			test_poll_waits_while_the_shard_has_no_page_to_give_back, sfx_setup,
			sfx_teardown, &two_small_flipping_vm_on_1),
		cmocka_unit_test_prestate_setup_teardown(test_poll_refuses_an_engine_alone_and_budget_zero,
							 sfx_setup, sfx_teardown, &two_small),
		cmocka_unit_test_prestate_setup_teardown(test_group_check_needs_every_shard, sfx_setup,
							 sfx_teardown, &two_small),
		cmocka_unit_test_prestate_setup_teardown(
			test_offload_metadata_crosses_and_the_receiver_finishes_the_checksum, sfx_setup,
			sfx_teardown, &two_copying_vm_on_1),
		cmocka_unit_test_prestate_setup_teardown(
			test_tagged_member_of_another_shard_gets_the_tag_pushed, sfx_setup, sfx_teardown,
			&two_vm_on_1),
		cmocka_unit_test_prestate_setup_teardown(test_polls_take_turns_between_senders,
							 sfx_setup, sfx_teardown, &three_vm_of_8_on_2),
		cmocka_unit_test_prestate_setup_teardown(
			test_zero_copy_frame_flips_into_another_shard_in_its_own_page, sfx_setup,
			sfx_teardown, &two_flipping_vm_on_1),
		cmocka_unit_test_prestate_setup_teardown(test_gso_frame_is_segmented_on_both_shards,
							 sfx_setup, sfx_teardown,
							 &two_copying_vm_of_8_each),
		cmocka_unit_test_prestate_setup_teardown(
			test_group_check_finds_a_page_two_shards_hold_or_none, sfx_setup, sfx_teardown,
			&two_small),
		cmocka_unit_test(test_idle_shard_is_woken_once_by_the_first_frame_handed_to_it),
		cmocka_unit_test_prestate_setup_teardown(test_wake_up_options_and_idle_refusals,
							 sfx_setup, sfx_teardown, &three_small),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

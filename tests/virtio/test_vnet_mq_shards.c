/* SPDX-License-Identifier: MIT */
/*
 * Receive queues of one guest spread over two shards of a group
 * (virtio_net.h, vdemux_vnet_rxq_opts.ram_of; docs/architecture.md,
 * Threading, rule 7): a queue on shard 1 shares the RAM of a queue on
 * shard 0 created with VDEMUX_COPY_ALWAYS; frames for it, received on
 * either shard, are copied whole into its buffers (across shards through
 * the group's queues), nothing is flipped and guest RAM keeps its pages;
 * an owner that may flip, an owner of another group and a lone engine are
 * refused, with nothing changed. One test runs each shard on its own
 * thread, both queues copying into guest RAM at once (the ThreadSanitizer
 * build runs it: the sharing queue must not read the owner's shard).
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <cmocka.h>

#include <vdemux/shard.h>
#include <vdemux/vdemux.h>

#include "rqfx.h"

#define RAM_PAGES 2048u /* 8 MiB: each driver's rings and buffers in one half */
#define RAM ((uint64_t)RAM_PAGES * VDEMUX_PAGE_SIZE)
#define SHARD_PAGES (RAM_PAGES + 256u) /* shard 0 backs guest RAM; both get as many */
#define QSIZE 64u

struct fx {
	vdemux_arena *arena;
	vdemux_group *g;
	vdemux_engine *eng[2];
	struct vdemux_backend *kvm; /* on shard 0, the owner's */
	vdemux_vnet_rxq *q[2];	    /* q[0] on shard 0 owns RAM; q[1] on shard 1 shares it */
	uint8_t *ram;
	struct vng g2[2];
	uint8_t mac[2][6];
	uint64_t free_before_share[2];
};

static uint8_t *guest_at(void *payload, uint64_t gpa, uint64_t len)
{
	struct fx *x = payload;
	return gpa <= RAM && len <= RAM - gpa ? x->ram + gpa : NULL;
}

static struct vdemux_engine_stats st(vdemux_engine *e)
{
	struct vdemux_engine_stats s;
	assert_int_equal(vdemux_engine_stats(e, &s, sizeof(s)), 0);
	return s;
}

static struct vdemux_vnet_rxq_opts qopts(struct fx *x)
{
	return VDEMUX_OPTS(vdemux_vnet_rxq_opts, .ram = x->ram, .ram_size = RAM, .backends = &x->kvm,
			   .n_backends = 1);
}

/* Driver @i: its rings at the start of its half of RAM, mergeable buffers;
 * its MAC on VLAN 1 of the group's classifier. */
static void driver_start(struct fx *x, unsigned i)
{
	struct vng_mem m = {.at = guest_at, .payload = x};
	struct vng_opts vo = {.mode = VNG_MERGEABLE,
			      .qsize = QSIZE,
			      .features = VD_VIRTIO_NET_F_MRG_RXBUF | VD_VIRTIO_F_VERSION_1,
			      .ring_gpa = i ? RAM / 2 : VDEMUX_PAGE_SIZE,
			      .mem_size = i ? RAM : RAM / 2};
	rqfx_start_on(x->q[i], &x->g2[i], &m, &vo);
	vdemux_l2 *l2 = vdemux_group_l2(x->g);
	memcpy(x->mac[i], (uint8_t[6]){0x02, 0, 0, 0, 2, (uint8_t)(i + 1)}, 6);
	assert_int_equal(vdemux_l2_vlan_join(l2, vdemux_vnet_rxq_vm(x->q[i]), 1, 0), 0);
	assert_int_equal(vdemux_l2_add_mac(l2, vdemux_vnet_rxq_vm(x->q[i]), x->mac[i], 1), 0);
}

/* The group, its two shards, guest RAM and the owner's backend; no queue. */
static int setup_bare(void **state)
{
	struct fx *x = calloc(1, sizeof(*x));
	assert_non_null(x);
	struct vdemux_arena_opts ao = VDEMUX_OPTS(vdemux_arena_opts, .npages = 2 * SHARD_PAGES,
						  .kind = VDEMUX_ARENA_MEMFD);
	assert_int_equal(vdemux_arena_create(&x->arena, &ao), 0);
	struct vdemux_group_opts go = VDEMUX_OPTS(vdemux_group_opts, .arena = x->arena, .nshards = 2);
	assert_int_equal(vdemux_group_create(&x->g, &go), 0);
	for (uint32_t s = 0; s < 2; s++) {
		struct vdemux_engine_opts eo = VDEMUX_OPTS(vdemux_engine_opts, .group = x->g, .shard = s);
		assert_int_equal(vdemux_engine_create(&x->eng[s], &eo), 0);
	}
	x->ram = mmap(NULL, RAM, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(x->ram != MAP_FAILED);
	struct vdemux_kvm_opts ko = VDEMUX_OPTS(vdemux_kvm_opts, .ram_gpa = 0, .ram_size = RAM,
						.ram_hva = x->ram);
	assert_int_equal(vdemux_kvm_create(&x->kvm, &ko), 0);
	assert_int_equal(vdemux_engine_add_backend(x->eng[0], x->kvm), 0);
	*state = x;
	return 0;
}

/* An owner on shard 0 that copies always, a queue sharing its RAM on shard 1. */
static int setup(void **state)
{
	setup_bare(state);
	struct fx *x = *state;
	struct vdemux_vnet_rxq_opts qo = qopts(x);
	qo.copy = VDEMUX_COPY_ALWAYS;
	assert_int_equal(vdemux_vnet_rxq_create(&x->q[0], x->eng[0], &qo), 0);
	for (unsigned s = 0; s < 2; s++)
		x->free_before_share[s] = st(x->eng[s]).pages_free;
	qo.copy = VDEMUX_COPY_DEFAULT;
	qo.ram_of = x->q[0];
	assert_int_equal(vdemux_vnet_rxq_create(&x->q[1], x->eng[1], &qo), 0);
	driver_start(x, 0);
	driver_start(x, 1);
	return 0;
}

static int teardown(void **state)
{
	struct fx *x = *state;
	char msg[200];
	vdemux_vnet_rxq_destroy(x->q[1]); /* the sharing queue first */
	vdemux_vnet_rxq_destroy(x->q[0]);
	for (unsigned i = 0; i < 2; i++)
		if (x->g2[i].mem.at)
			vng_fini(&x->g2[i]);
	assert_int_equal(vdemux_group_check(x->g, msg, sizeof(msg)), 0);
	vdemux_engine_destroy(x->eng[1]);
	vdemux_engine_destroy(x->eng[0]);
	assert_int_equal(vdemux_group_destroy(x->g), 0);
	munmap(x->ram, RAM);
	vdemux_arena_destroy(x->arena);
	free(x);
	return 0;
}

/* Frames @k0.. alternating between the queues, received on @shard. */
static void burst_on(struct fx *x, unsigned shard, unsigned k0, const uint32_t *lens, unsigned n)
{
	static uint8_t f[8][3000];
	struct vdemux_frame fr[8];
	for (unsigned k = 0; k < n; k++) {
		rqfx_frame(f[k], lens[k], x->mac[k % 2], k0 + k);
		fr[k] = (struct vdemux_frame){.data = f[k], .len = lens[k]};
	}
	assert_int_equal(vdemux_rx_burst(x->eng[shard], fr, n), (int)n);
}

static void test_sharing_queue_on_another_shard_holds_no_page(void **state)
{
	struct fx *x = *state;
	assert_int_equal(st(x->eng[0]).pages_free, x->free_before_share[0]);
	assert_int_equal(st(x->eng[1]).pages_free, x->free_before_share[1]);
}

static void test_frames_cross_shards_into_both_queues_copied_whole(void **state)
{
	struct fx *x = *state;
	const uint32_t lens[6] = {60, 1514, 2999, 100, 1000, 3000};
	char msg[200];

	/* On shard 0: the odd frames go to shard 1's queue through the
	 * group's queue, delivered at shard 1's poll. */
	burst_on(x, 0, 0, lens, 6);
	assert_int_equal(st(x->eng[0]).handoff_out, 3);
	assert_int_equal(vdemux_shard_poll(x->eng[1], 64), 3);
	assert_int_equal(st(x->eng[1]).handoff_in, 3);
	for (unsigned k = 0; k < 6; k++)
		rqfx_expect_frame(&x->g2[k % 2], x->mac[k % 2], k, lens[k]);
	/* On shard 1: the even frames go to the owner's queue on shard 0. */
	burst_on(x, 1, 10, lens, 6);
	assert_int_equal(st(x->eng[1]).handoff_out, 3);
	assert_int_equal(vdemux_shard_poll(x->eng[0], 64), 3);
	for (unsigned k = 0; k < 6; k++)
		rqfx_expect_frame(&x->g2[k % 2], x->mac[k % 2], 10 + k, lens[k]);
	assert_int_equal(vdemux_shard_poll(x->eng[1], 64), 0); /* pages back to shard 1 */

	struct vdemux_vnet_rxq_stats qs[2];
	for (unsigned i = 0; i < 2; i++) {
		assert_int_equal(vdemux_vnet_rxq_stats(x->q[i], &qs[i], sizeof(qs[i])), 0);
		assert_int_equal(qs[i].frames, 6);
		assert_int_equal(qs[i].copied, 6);
		assert_int_equal(qs[i].flipped, 0);
		assert_int_equal(qs[i].skipped, 0);
	}
	assert_int_equal(st(x->eng[0]).flips, 0);
	assert_int_equal(st(x->eng[1]).flips, 0);
	assert_int_equal(st(x->eng[0]).pages_free, x->free_before_share[0]);
	assert_int_equal(st(x->eng[1]).pages_free, x->free_before_share[1]);
	assert_int_equal(vdemux_group_check(x->g, msg, sizeof(msg)), 0);
}

/* Sharing @x->q[0] from shard 1 (or @eng) is refused, nothing changed. */
static void expect_refused(struct fx *x, vdemux_engine *eng)
{
	vdemux_vnet_rxq *q = (vdemux_vnet_rxq *)(uintptr_t)0x1;
	struct vdemux_vnet_rxq_opts qo = qopts(x);
	uint64_t before = st(eng).pages_free;
	qo.ram_of = x->q[0];
	assert_int_equal(vdemux_vnet_rxq_create(&q, eng, &qo), -EINVAL);
	qo.copy = VDEMUX_COPY_ALWAYS;
	assert_int_equal(vdemux_vnet_rxq_create(&q, eng, &qo), -EINVAL);
	assert_ptr_equal(q, (vdemux_vnet_rxq *)(uintptr_t)0x1);
	assert_int_equal(st(eng).pages_free, before);
}

static void test_sharing_across_shards_refused_unless_owner_copies_always(void **state)
{
	struct fx *x = *state;
	const enum vdemux_copy_policy may_flip[] = {VDEMUX_COPY_DEFAULT, VDEMUX_COPY_NEVER,
						    VDEMUX_COPY_THRESHOLD, VDEMUX_COPY_ADAPTIVE};
	for (unsigned p = 0; p < sizeof(may_flip) / sizeof(may_flip[0]); p++) {
		struct vdemux_vnet_rxq_opts qo = qopts(x);
		qo.copy = may_flip[p];
		qo.copy_threshold = may_flip[p] == VDEMUX_COPY_THRESHOLD ? 256 : 0;
		assert_int_equal(vdemux_vnet_rxq_create(&x->q[0], x->eng[0], &qo), 0);
		expect_refused(x, x->eng[1]);
		/* On its own engine it may still be shared, as before. */
		qo = qopts(x);
		qo.ram_of = x->q[0];
		assert_int_equal(vdemux_vnet_rxq_create(&x->q[1], x->eng[0], &qo), 0);
		vdemux_vnet_rxq_destroy(x->q[1]);
		vdemux_vnet_rxq_destroy(x->q[0]);
		x->q[0] = x->q[1] = NULL;
	}
}

static void test_sharing_refused_from_another_group_or_a_lone_engine(void **state)
{
	struct fx *x = *state;
	vdemux_arena *a;
	vdemux_group *g;
	vdemux_engine *other, *lone;

	assert_int_equal(vdemux_arena_create(&a, &VDEMUX_OPTS(vdemux_arena_opts, .npages = 64)), 0);
	assert_int_equal(
		vdemux_group_create(&g, &VDEMUX_OPTS(vdemux_group_opts, .arena = a, .nshards = 2)), 0);
	assert_int_equal(
		vdemux_engine_create(&other, &VDEMUX_OPTS(vdemux_engine_opts, .group = g, .shard = 1)),
		0);
	assert_int_equal(vdemux_engine_create(&lone, &VDEMUX_OPTS(vdemux_engine_opts, .npages = 64)), 0);
	expect_refused(x, other);
	expect_refused(x, lone);
	vdemux_engine_destroy(lone);
	vdemux_engine_destroy(other);
	assert_int_equal(vdemux_group_destroy(g), 0);
	vdemux_arena_destroy(a);
	/* The queue of this group still shares it. */
	assert_int_equal(st(x->eng[1]).pages_free, x->free_before_share[1]);
}

/* ---- both shards at once, each on its thread ---- */

#define T_ITERS 1000u
#define T_BURST 8u

struct tctx {
	struct fx *x;
	atomic_uint *finished; /* threads done sending */
	unsigned shard;	       /* also the queue (and driver) served on this thread */
	unsigned sent[2];
	unsigned got, bad, errors;
};

/* A frame whose bytes say what they should be: its number at 14..17. */
static void tframe(const struct fx *x, unsigned i, uint32_t k, uint8_t *f, uint32_t len)
{
	rqfx_frame(f, len, x->mac[i], k);
	memcpy(f + 14, &k, sizeof(k));
}

static bool tframe_ok(const uint8_t *f, int len)
{
	uint32_t k;
	if (len < 60)
		return false;
	memcpy(&k, f + 14, sizeof(k));
	for (int j = 18; j < len; j++)
		if (f[j] != (uint8_t)(k + (uint32_t)j))
			return false;
	return true;
}

/* The guest of this thread's queue takes its frames and posts again. */
static void tguest(struct tctx *t)
{
	static _Thread_local uint8_t got[4000];
	struct vng *g = &t->x->g2[t->shard];
	struct vng_hdr h;
	int n;

	while ((n = vng_recv(g, &h, got, sizeof(got))) != -EAGAIN) {
		if (n < 0 || !tframe_ok(got, n))
			t->bad++;
		else
			t->got++;
	}
	vng_refill(g);
	if (vdemux_vnet_rxq_kick(t->x->q[t->shard]) < 0)
		t->errors++;
}

static void tburst(struct tctx *t, uint32_t it)
{
	static _Thread_local uint8_t f[T_BURST][2000];
	vdemux_engine *e = t->x->eng[t->shard];
	struct vdemux_frame fr[T_BURST];
	unsigned done = 0;

	for (unsigned k = 0; k < T_BURST; k++) {
		uint32_t len = 60 + (it * 37u + k * 211u) % 1900u;
		tframe(t->x, k % 2, it * T_BURST + k, f[k], len);
		fr[k] = (struct vdemux_frame){.data = f[k], .len = len};
	}
	/* The other thread serves its shard until both are done: it drains. */
	for (unsigned tries = 0; done < T_BURST && tries < (1u << 22); tries++) {
		int n = vdemux_rx_burst(e, fr + done, T_BURST - done);
		if (n > 0)
			done += (unsigned)n;
		else if (n != -EAGAIN && n != -ENOBUFS) /* a queue full, the pool lent out */
			t->errors++;
		if (done < T_BURST) {
			vdemux_shard_poll(e, 64);
			tguest(t);
			sched_yield(); /* the other thread drains its queue */
		}
	}
	for (unsigned k = 0; k < done; k++)
		t->sent[k % 2]++;
}

static void *tshard(void *arg)
{
	struct tctx *t = arg;
	for (uint32_t it = 0; it < T_ITERS; it++) {
		tburst(t, it);
		vdemux_shard_poll(t->x->eng[t->shard], 64);
		tguest(t);
	}
	/* Serve the other shard's frames until it is done sending too. */
	atomic_fetch_add(t->finished, 1);
	while (atomic_load(t->finished) < 2) {
		vdemux_shard_poll(t->x->eng[t->shard], 64);
		tguest(t);
		sched_yield();
	}
	return NULL;
}

static uint64_t vm_drops(vdemux_engine *e, vdemux_vm_id vm)
{
	struct vdemux_vm_stats s;
	uint64_t n = 0;
	assert_int_equal(vdemux_vm_stats(e, vm, &s, sizeof(s)), 0);
	for (unsigned r = 0; r < VDEMUX_DROP__COUNT; r++)
		n += s.drops[r];
	return n;
}

static void test_both_shards_at_once_every_frame_copied_or_counted(void **state)
{
	struct fx *x = *state;
	atomic_uint finished = 0;
	struct tctx t[2] = {{.x = x, .finished = &finished, .shard = 0},
			    {.x = x, .finished = &finished, .shard = 1}};
	pthread_t th[2];
	char msg[200];

	for (unsigned i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&th[i], NULL, tshard, &t[i]), 0);
	for (unsigned i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	/* Quiescent: what is still queued is delivered, then taken. */
	for (unsigned r = 0; r < 2; r++)
		for (unsigned i = 0; i < 2; i++) {
			while (vdemux_shard_poll(x->eng[i], 64) > 0)
				;
			tguest(&t[i]);
		}
	for (unsigned i = 0; i < 2; i++) {
		struct vdemux_vnet_rxq_stats qs;
		assert_int_equal(vdemux_vnet_rxq_stats(x->q[i], &qs, sizeof(qs)), 0);
		assert_int_equal(t[i].bad, 0);
		assert_int_equal(t[i].errors, 0);
		assert_int_equal(qs.flipped, 0);
		assert_int_equal(qs.skipped, 0);
		assert_int_equal(qs.frames, t[i].got);
		assert_int_equal(t[0].sent[i] + t[1].sent[i],
				 t[i].got + vm_drops(x->eng[i], vdemux_vnet_rxq_vm(x->q[i])));
		assert_int_equal(t[0].sent[i] + t[1].sent[i], T_ITERS * T_BURST); /* every frame went */
	}
	print_message("frames taken: %u and %u, handed across: %llu and %llu\n", t[0].got, t[1].got,
		      (unsigned long long)st(x->eng[0]).handoff_out,
		      (unsigned long long)st(x->eng[1]).handoff_out);
	assert_int_equal(st(x->eng[0]).flips + st(x->eng[1]).flips, 0);
	assert_true(st(x->eng[0]).handoff_out > 0 && st(x->eng[1]).handoff_out > 0);
	assert_int_equal(vdemux_group_check(x->g, msg, sizeof(msg)), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_sharing_queue_on_another_shard_holds_no_page, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_frames_cross_shards_into_both_queues_copied_whole,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_sharing_across_shards_refused_unless_owner_copies_always, setup_bare,
			teardown),
		cmocka_unit_test_setup_teardown(test_sharing_refused_from_another_group_or_a_lone_engine,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_both_shards_at_once_every_frame_copied_or_counted,
						setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

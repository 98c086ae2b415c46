/* SPDX-License-Identifier: MIT */
/* Shards under load from several threads at once (labelled "stress": the
 * ThreadSanitizer build runs it). One thread per shard receives bursts for
 * VMs of every shard, polls what others handed it, lets its guests take
 * their frames (each checked byte by byte) and post again, and removes and
 * adds guests of its own; another thread changes the classifier all the
 * while. At quiescent points (every thread at a barrier) the group check
 * runs; at the end, every unicast frame taken is accounted for: delivered,
 * or dropped under a counted reason. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sfx.h"

#define VMS_PER_SHARD 6
#define SLOTS 16
#define BURST 16
#define FRAME_MAX 1500u

struct stress {
	struct sfx f;
	unsigned iters, check_every;
	pthread_barrier_t bar;
	_Atomic uint32_t ids[SFX_MAX_SHARDS][VMS_PER_SHARD]; /* published by the owner */
	atomic_bool stop;
	/* written by each thread, read after the join (or at a barrier) */
	unsigned bad[SFX_MAX_SHARDS], errors[SFX_MAX_SHARDS], churn[SFX_MAX_SHARDS];
	unsigned l2_changes;
	unsigned checks;
	char failed[256];
};

struct worker {
	struct stress *s;
	unsigned shard;
	unsigned seed;
};

static unsigned rnd(unsigned *seed)
{
	*seed = *seed * 1103515245u + 12345u;
	return *seed >> 8;
}

static void vm_add(struct stress *s, unsigned shard, unsigned k)
{
	uint32_t id = sfx_vm_add(&s->f, shard, SLOTS);

	if (!id)
		s->errors[shard]++;
	atomic_store(&s->ids[shard][k], id);
}

/* Remove guest k of this shard and add another in its place. */
static void churn(struct stress *s, unsigned shard, unsigned k)
{
	uint32_t id = atomic_load(&s->ids[shard][k]);

	atomic_store(&s->ids[shard][k], 0);
	if (id && vdemux_vm_remove(s->f.eng[shard], id))
		s->errors[shard]++;
	vm_add(s, shard, k);
	s->churn[shard]++;
}

/* A burst for random guests of any shard; what a full queue leaves is
 * offered again after a poll (back-pressure), a bounded number of times. */
static void burst(struct worker *w, uint8_t (*buf)[FRAME_MAX])
{
	struct stress *s = w->s;
	vdemux_engine *e = s->f.eng[w->shard];
	struct vdemux_frame fr[BURST];
	unsigned done = 0;

	for (unsigned i = 0; i < BURST; i++) {
		unsigned sh = rnd(&w->seed) % s->f.n, k = rnd(&w->seed) % VMS_PER_SHARD;
		uint32_t len = 60 + rnd(&w->seed) % (FRAME_MAX - 60);
		uint8_t mac[6];

		sfx_mac(atomic_load(&s->ids[sh][k]), mac);
		sfx_frame(buf[i], len, mac, rnd(&w->seed));
		fr[i] = (struct vdemux_frame){.data = buf[i], .len = len};
	}
	for (unsigned tries = 0; done < BURST && tries < 64; tries++) {
		int n = vdemux_rx_burst(e, fr + done, BURST - done);

		if (n > 0)
			done += (unsigned)n;

		else if (n != -EAGAIN && n != -ENOBUFS)
			w->s->errors[w->shard]++;
		if (done < BURST) {
			vdemux_shard_poll(e, 256);
			sched_yield(); /* the other shards' threads drain the queues */
		}
	}
}

/* Zero-copy: frames written into lent pages, as a device would, then
 * submitted (to a full queue the delivery is dropped, counted). */
static void zc_burst(struct worker *w)
{
	struct stress *s = w->s;
	vdemux_engine *e = s->f.eng[w->shard];
	struct vdemux_rx_buf b[8];
	int n = vdemux_rx_alloc(e, b, 8);

	for (int i = 0; i < n; i++) {
		unsigned sh = rnd(&w->seed) % s->f.n, k = rnd(&w->seed) % VMS_PER_SHARD;
		uint8_t mac[6];

		b[i].len = 60 + rnd(&w->seed) % (FRAME_MAX - 60);
		sfx_mac(atomic_load(&s->ids[sh][k]), mac);
		sfx_frame(b[i].data, b[i].len, mac, rnd(&w->seed));
	}
	if (n < 0 || (n > 0 && vdemux_rx_submit(e, b, (unsigned)n) != n))
		s->errors[w->shard]++;
}

static void guests(struct worker *w)
{
	struct stress *s = w->s;

	for (unsigned k = 0; k < VMS_PER_SHARD; k++) {
		uint32_t id = atomic_load(&s->ids[w->shard][k]);

		if (id && sfx_drain(&s->f, w->shard, id, &s->bad[w->shard]) < 0)
			s->errors[w->shard]++;
	}
}

static void *shard_thread(void *arg)
{
	struct worker *w = arg;
	struct stress *s = w->s;
	static _Thread_local uint8_t buf[BURST][FRAME_MAX];

	for (unsigned it = 1; it <= s->iters; it++) {
		if (it % 4 == 0)
			zc_burst(w);
		else
			burst(w, buf);
		if (vdemux_shard_poll(s->f.eng[w->shard], 256) < 0)
			s->errors[w->shard]++;
		guests(w);
		if (rnd(&w->seed) % 32 == 0)
			churn(s, w->shard, rnd(&w->seed) % VMS_PER_SHARD);
		if (it % s->check_every == 0) {
			pthread_barrier_wait(&s->bar); /* quiescent: main checks */
			pthread_barrier_wait(&s->bar);
		}
	}
	atomic_store(&s->stop, true);
	return NULL;
}

/* The classifier changes while frames flow: a default VM for unknown
 * unicast, aliases added and removed, a VLAN joined and left. */
static void l2_change(struct stress *s, vdemux_l2 *l2, unsigned *seed)
{
	uint32_t id = atomic_load(&s->ids[rnd(seed) % s->f.n][rnd(seed) % VMS_PER_SHARD]);
	uint8_t alias[6] = {0x02, 0x77, 0, 0, 0, (uint8_t)(rnd(seed) % 8)};

	if (!id)
		return;
	switch (rnd(seed) % 5) {
	case 0: (void)vdemux_l2_set_default(l2, 1, rnd(seed) % 2 ? id : 0); break;
	case 1: (void)vdemux_l2_add_mac(l2, id, alias, 1); break;
	case 2: (void)vdemux_l2_del_mac(l2, alias, 1); break;
	case 3: (void)vdemux_l2_vlan_join(l2, id, 2, 0); break;
	default: (void)vdemux_l2_vlan_leave(l2, id, 2); break;
	}
	s->l2_changes++;
}

static void *control_thread(void *arg)
{
	struct stress *s = arg;
	vdemux_l2 *l2 = vdemux_group_l2(s->f.g);
	unsigned seed = 99, rounds = s->iters / s->check_every;

	for (unsigned r = 0; r < rounds; r++) {
		for (unsigned i = 0; i < 200; i++)
			l2_change(s, l2, &seed);
		pthread_barrier_wait(&s->bar);
		pthread_barrier_wait(&s->bar);
	}
	while (!atomic_load(&s->stop))
		l2_change(s, l2, &seed);
	return NULL;
}

/* Main, at each quiescent point: the group check. */
static void quiescent_checks(struct stress *s)
{
	for (unsigned r = 0; r < s->iters / s->check_every; r++) {
		char msg[200];

		pthread_barrier_wait(&s->bar);
		if (vdemux_group_check(s->f.g, msg, sizeof(msg)) && !s->failed[0])
			snprintf(s->failed, sizeof(s->failed), "check %u: %s", r, msg);
		s->checks++;
		pthread_barrier_wait(&s->bar);
	}
}

/* Every unicast frame taken ended delivered or dropped under a reason. */
static void assert_accounted(struct stress *s)
{
	uint64_t taken = 0, ended = 0, out = 0, in = 0, full = 0;

	for (unsigned i = 0; i < s->f.n; i++) {
		struct vdemux_engine_stats st;

		assert_int_equal(vdemux_engine_stats(s->f.eng[i], &st, sizeof(st)), 0);
		taken += st.rx_frames;
		ended += st.delivered + st.handoff_full;
		full += st.handoff_full;
		for (unsigned r = 0; r < VDEMUX_DROP__COUNT; r++)
			ended += st.drops[r];
		out += st.handoff_out;
		in += st.handoff_in;
	}
	print_message("%u shards: %llu frames taken, %llu handed over, %llu to a full queue, %llu "
		      "ended (delivered or counted)\n",
		      s->f.n, (unsigned long long)taken, (unsigned long long)out,
		      (unsigned long long)full, (unsigned long long)ended);
	assert_int_equal(out, in);
	assert_true(out > 0);
	assert_int_equal(taken, ended);
}

static void run(enum vdemux_harvest h, enum vdemux_copy_policy c, unsigned nshards)
{
	struct stress *s = calloc(1, sizeof(*s));
	struct worker w[SFX_MAX_SHARDS];
	pthread_t t[SFX_MAX_SHARDS], ctl;
	const char *env = getenv("VDEMUX_STRESS_ITERS");

	assert_non_null(s);
	s->iters = env ? (unsigned)atoi(env) : 3000;
	s->check_every = 100;
	sfx_init(&s->f, &(struct sfx_opts){.nshards = nshards,
					   .npages = 1024 * nshards,
					   .queue_len = 64,
					   .harvest = h,
					   .copy = c});
	for (unsigned i = 0; i < nshards; i++)
		for (unsigned k = 0; k < VMS_PER_SHARD; k++)
			vm_add(s, i, k);
	assert_int_equal(pthread_barrier_init(&s->bar, NULL, nshards + 2), 0);
	for (unsigned i = 0; i < nshards; i++) {
		w[i] = (struct worker){.s = s, .shard = i, .seed = 7 + i};
		assert_int_equal(pthread_create(&t[i], NULL, shard_thread, &w[i]), 0);
	}
	assert_int_equal(pthread_create(&ctl, NULL, control_thread, s), 0);
	quiescent_checks(s);
	for (unsigned i = 0; i < nshards; i++)
		pthread_join(t[i], NULL);
	pthread_join(ctl, NULL);
	/* Quiescent: what is still queued is delivered, then taken. */
	for (unsigned r = 0; r < 2; r++)
		for (unsigned i = 0; i < nshards; i++) {
			while (vdemux_shard_poll(s->f.eng[i], 256) > 0)
				;
			guests(&(struct worker){.s = s, .shard = i});
		}
	if (s->failed[0])
		fail_msg("%s", s->failed);
	sfx_check(&s->f);
	assert_accounted(s);
	for (unsigned i = 0; i < nshards; i++) {
		assert_int_equal(s->bad[i], 0);
		assert_int_equal(s->errors[i], 0);
	}
	print_message("%u group checks, %u classifier changes, %u guests replaced\n", s->checks,
		      s->l2_changes, s->churn[0] + s->churn[1] + s->churn[2] + s->churn[3]);
	assert_true(s->checks > 0 && s->l2_changes > 0);
	pthread_barrier_destroy(&s->bar);
	sfx_fini(&s->f);
	free(s);
}

static void test_two_shards_flipping_into_holes_under_churn(void **state)
{
	(void)state;
	run(VDEMUX_HARVEST_EAGER, VDEMUX_COPY_NEVER, 2);
}

static void test_two_shards_copying_under_churn(void **state)
{
	(void)state;
	run(VDEMUX_HARVEST_LAZY, VDEMUX_COPY_ALWAYS, 2);
}

static void test_three_shards_adaptive_under_churn(void **state)
{
	(void)state;
	run(VDEMUX_HARVEST_LAZY, VDEMUX_COPY_ADAPTIVE, 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_two_shards_flipping_into_holes_under_churn),
		cmocka_unit_test(test_two_shards_copying_under_churn),
		cmocka_unit_test(test_three_shards_adaptive_under_churn),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: MIT */
/* Frames per second of a group of shards (shard.h), one thread each, against
 * one thread, in the same run: the copy path (lazy harvest, every frame
 * copied into a posted buffer that is still mapped) on the simulated
 * backend. The VMs are spread over the shards; each thread receives bursts
 * for its own shard's VMs (as a multiqueue uplink steers them), or, with
 * -x, sends that share of its frames to VMs of other shards (through the
 * queues between shards), polls what the others handed it, and lets its
 * VMs take their completions and post again.
 *
 * Each round times every thread count once, alternating; the figure is
 * the median of the rounds, and the ratio is to one thread's median.
 * Prints, besides each round, per thread count: the spread of the rounds,
 * the cores the threads had (their CPU time over the wall time: on a
 * shared machine other processes take some) with the frames per second of
 * CPU, and
 *   scale <threads> <frames_per_s> <ratio>
 * Usage:
 *   bench_scale [-T MAX_THREADS] [-r ROUNDS] [-t SECONDS] [-s BYTES] [-v VMS] [-b BURST]
 *               [-x PERCENT_TO_OTHER_SHARDS] [-P 0|1 (pin thread i to CPU i)]
 *               [-O THREADS (time only that many, for a profiler)]
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <vdemux/shard.h>
#include <vdemux/vdemux.h>

#include "bench_util.h"

#define MAX_THREADS 8
#define MAX_BURST 256
#define WINDOW 64
#define RX_BASE 0x40000000ull

struct cfg {
	unsigned max_threads, rounds, vms, burst, cross;
	unsigned only; /* -O: time only this many threads (for a profiler) */
	uint32_t len;
	double secs;
	bool pin;
};

struct shard {
	vdemux_engine *eng;
	struct vdemux_backend *sim;
	vdemux_vm_id ids[MAX_BURST];
	unsigned nvms;
	struct vdemux_frame fr[MAX_BURST];
	uint8_t *frames;
	struct vdemux_completion cpl[WINDOW];
	uint64_t gpas[WINDOW];
	_Atomic uint64_t sent; /* frames taken, stored once per burst */
	_Atomic int failed;
	pthread_t th;
	unsigned idx;
	struct group *grp;
};

struct group {
	const struct cfg *c;
	unsigned n;
	vdemux_arena *arena;
	vdemux_group *g;
	struct shard sh[MAX_THREADS];
	atomic_bool go, stop;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void mac_of(unsigned v, uint8_t mac[6])
{
	uint8_t m[6] = {0x02, 0, 0, 0, (uint8_t)(v >> 8), (uint8_t)v};

	memcpy(mac, m, 6);
}

/* VM v of the group lives on shard v % n. */
static int add_vms(struct group *gr)
{
	for (unsigned v = 0; v < gr->c->vms; v++) {
		struct shard *s = &gr->sh[v % gr->n];
		struct vdemux_vm_opts vo = VDEMUX_OPTS(vdemux_vm_opts, .rx_base = RX_BASE,
						       .rx_pages = WINDOW, .backends = &s->sim,
						       .n_backends = 1);
		vdemux_vm_id *id = &s->ids[s->nvms++];
		uint8_t mac[6];

		mac_of(v, mac);
		if (vdemux_vm_add(s->eng, id, &vo) ||
		    vdemux_l2_vlan_join(vdemux_group_l2(gr->g), *id, 1, 0) ||
		    vdemux_l2_add_mac(vdemux_group_l2(gr->g), *id, mac, 1))
			return -1;
		for (unsigned k = 0; k < WINDOW; k++)
			s->gpas[k] = RX_BASE + (uint64_t)k * VDEMUX_PAGE_SIZE;
		if (vdemux_vm_post_rx(s->eng, *id, s->gpas, WINDOW) != WINDOW)
			return -1;
	}
	return 0;
}

/* Thread i's burst: frames for its own VMs (v % n == i), and with -x that
 * share for the VMs of the next shard. */
static int make_frames(struct group *gr, struct shard *s)
{
	const struct cfg *c = gr->c;
	unsigned own = 0;

	s->frames = calloc(c->burst, c->len);
	if (!s->frames)
		return -1;
	for (unsigned i = 0; i < c->burst; i++) {
		uint8_t *f = s->frames + (size_t)i * c->len;
		/* Bresenham: c->cross of every 100 frames go to the next shard. */
		bool cross = gr->n > 1 && (i + 1) * c->cross / 100 != i * c->cross / 100;
		unsigned to = cross ? (s->idx + 1) % gr->n : s->idx;
		unsigned nto = (c->vms - to + gr->n - 1) / gr->n; /* VMs of shard to */
		unsigned v = to + gr->n * (own++ % nto);

		mac_of(v, f);
		f[6] = 0x02;
		f[11] = 0xfe;
		f[12] = 0x08;
		s->fr[i] = (struct vdemux_frame){.data = f, .len = c->len};
	}
	return 0;
}

static int group_setup(struct group *gr, const struct cfg *c, unsigned n)
{
	uint32_t per = (uint32_t)((c->vms + n - 1) / n * WINDOW + c->burst * 8 + 256);
	struct vdemux_arena_opts ao = VDEMUX_OPTS(vdemux_arena_opts, .npages = per * n);

	memset(gr, 0, sizeof(*gr));
	gr->c = c;
	gr->n = n;
	if (vdemux_arena_create(&gr->arena, &ao) ||
	    vdemux_group_create(&gr->g,
				&VDEMUX_OPTS(vdemux_group_opts, .arena = gr->arena, .nshards = n)))
		return -1;
	for (unsigned i = 0; i < n; i++) {
		struct shard *s = &gr->sh[i];
		struct vdemux_engine_opts eo = VDEMUX_OPTS(vdemux_engine_opts, .group = gr->g,
							   .shard = i, .harvest = VDEMUX_HARVEST_LAZY,
							   .copy = VDEMUX_COPY_ALWAYS, .max_vms = c->vms);

		s->idx = i;
		s->grp = gr;
		if (vdemux_engine_create(&s->eng, &eo) || vdemux_sim_create(&s->sim, NULL) ||
		    vdemux_engine_add_backend(s->eng, s->sim))
			return -1;
	}
	if (add_vms(gr))
		return -1;
	for (unsigned i = 0; i < n; i++)
		if (make_frames(gr, &gr->sh[i]))
			return -1;
	return 0;
}

static void group_teardown(struct group *gr)
{
	for (unsigned i = 0; i < gr->n; i++) {
		vdemux_engine_destroy(gr->sh[i].eng);
		free(gr->sh[i].frames);
	}
	vdemux_group_destroy(gr->g);
	vdemux_arena_destroy(gr->arena);
}

/* The guests: each VM of the shard takes its completions and posts the
 * buffers again. */
static int guests(struct shard *s)
{
	for (unsigned v = 0; v < s->nvms; v++) {
		int c = vdemux_vm_poll(s->eng, s->ids[v], s->cpl, WINDOW);

		for (int k = 0; k < c; k++)
			s->gpas[k] = s->cpl[k].gpa;
		if (c > 0 && vdemux_vm_post_rx(s->eng, s->ids[v], s->gpas, (unsigned)c) != c)
			return -1;
	}
	return 0;
}

static void *shard_main(void *arg)
{
	struct shard *s = arg;
	struct group *gr = s->grp;
	unsigned burst = gr->c->burst;
	uint64_t sent = 0;

	if (gr->c->pin) {
		cpu_set_t set;
		long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

		CPU_ZERO(&set);
		CPU_SET((int)(s->idx % (ncpu > 0 ? (unsigned)ncpu : 1u)), &set);
		pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	}
	while (!atomic_load_explicit(&gr->go, memory_order_acquire))
		sched_yield();
	while (!atomic_load_explicit(&gr->stop, memory_order_relaxed)) {
		int got = vdemux_rx_burst(s->eng, s->fr, burst);

		if (got > 0)
			sent += (unsigned)got;
		else if (got != -EAGAIN)
			atomic_store(&s->failed, got);
		if (gr->n > 1 && vdemux_shard_poll(s->eng, 256) < 0)
			atomic_store(&s->failed, -1);
		if (got < (int)burst)
			sched_yield(); /* a queue was full: let its receiver run */
		if (guests(s))
			atomic_store(&s->failed, -2);
		atomic_store_explicit(&s->sent, sent, memory_order_relaxed);
	}
	return NULL;
}

static uint64_t total_sent(struct group *gr)
{
	uint64_t t = 0;

	for (unsigned i = 0; i < gr->n; i++)
		t += atomic_load_explicit(&gr->sh[i].sent, memory_order_relaxed);
	return t;
}

static void sleep_s(double s)
{
	struct timespec ts = {.tv_sec = (time_t)s, .tv_nsec = (long)((s - (double)(time_t)s) * 1e9)};

	nanosleep(&ts, NULL);
}

/* CPU time the threads of @gr have used, in seconds. */
static double cpu_used(struct group *gr)
{
	double t = 0;

	for (unsigned i = 0; i < gr->n; i++) {
		clockid_t id;
		struct timespec ts;

		if (pthread_getcpuclockid(gr->sh[i].th, &id) == 0 && clock_gettime(id, &ts) == 0)
			t += (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
	}
	return t;
}

/* One timed run of @n threads: frames per second (negative: a call
 * failed) and the cores they had (their CPU time over the wall time: on a
 * shared machine, less than @n when others ran on their cores). */
static double run_threads(const struct cfg *c, unsigned n, double *cores)
{
	struct group *gr = calloc(1, sizeof(*gr));
	double t0, t1, c0, c1, fps = -1;
	uint64_t n0, n1;
	int failed = 0;

	if (!gr || group_setup(gr, c, n))
		goto out;
	for (unsigned i = 0; i < n; i++)
		pthread_create(&gr->sh[i].th, NULL, shard_main, &gr->sh[i]);
	atomic_store_explicit(&gr->go, true, memory_order_release);
	sleep_s(0.2); /* warm up */
	n0 = total_sent(gr);
	c0 = cpu_used(gr);
	t0 = now();
	sleep_s(c->secs);
	n1 = total_sent(gr);
	c1 = cpu_used(gr);
	t1 = now();
	atomic_store(&gr->stop, true);
	for (unsigned i = 0; i < n; i++) {
		pthread_join(gr->sh[i].th, NULL);
		failed |= atomic_load(&gr->sh[i].failed);
	}
	*cores = (c1 - c0) / (t1 - t0);
	if (!failed)
		fps = (double)(n1 - n0) / (t1 - t0);
	else
		fprintf(stderr, "bench_scale: %u threads: a call failed (%d)\n", n, failed);
	group_teardown(gr);
out:
	free(gr);
	return fps;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, unsigned n)
{
	qsort(v, n, sizeof(*v), cmp_d);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int parse(int argc, char **argv, struct cfg *c)
{
	int opt;

	*c = (struct cfg){.max_threads = 2,
			  .rounds = 5,
			  .vms = 16,
			  .burst = 32,
			  .len = 1500,
			  .secs = 1.0,
			  .pin = true};
	while ((opt = getopt(argc, argv, "T:r:t:s:v:b:x:P:O:h")) != -1) {
		switch (opt) {
		case 'T': c->max_threads = (unsigned)atoi(optarg); break;
		case 'r': c->rounds = (unsigned)atoi(optarg); break;
		case 't': c->secs = atof(optarg); break;
		case 's': c->len = (uint32_t)atoi(optarg); break;
		case 'v': c->vms = (unsigned)atoi(optarg); break;
		case 'b': c->burst = (unsigned)atoi(optarg); break;
		case 'x': c->cross = (unsigned)atoi(optarg); break;
		case 'P': c->pin = atoi(optarg) != 0; break;
		case 'O': c->only = (unsigned)atoi(optarg); break;
		default: return -1;
		}
	}
	if (c->max_threads < 1 || c->max_threads > MAX_THREADS || c->rounds < 1 || c->rounds > 99 ||
	    c->vms < c->max_threads || c->vms > MAX_BURST || c->burst < 1 || c->burst > MAX_BURST ||
	    c->len < 60 || c->len > VDEMUX_PAGE_SIZE || c->cross > 100 || c->only > MAX_THREADS)
		return -1;
	return 0;
}

/* The medians: frames per second and the ratio to one thread; the
 * spread; the cores the threads had, and frames per second of CPU. */
static void report(const struct cfg *c, double (*fps)[100], double (*cores)[100])
{
	double one = 0, one_cpu = 0;

	for (unsigned t = 1; t <= c->max_threads; t++) {
		double per[100], m, mc, mp;

		for (unsigned r = 0; r < c->rounds; r++)
			per[r] = fps[t][r] / cores[t][r];
		mp = median(per, c->rounds);
		mc = median(cores[t], c->rounds);
		m = median(fps[t], c->rounds);
		if (t == 1) {
			one = m;
			one_cpu = mp;
		}
		printf("spread %u %.0f %.0f\n", t, fps[t][0], fps[t][c->rounds - 1]);
		printf("cores %u %.2f (per CPU second: %.0f frames, %.2f of one thread's)\n", t, mc, mp,
		       mp / one_cpu);
		printf("scale %u %.0f %.2f\n", t, m, m / one);
	}
}

int main(int argc, char **argv)
{
	static double fps[MAX_THREADS + 1][100], cores[MAX_THREADS + 1][100];
	struct cfg c;

	if (parse(argc, argv, &c)) {
		fprintf(stderr, "usage: bench_scale [-T MAX_THREADS] [-r ROUNDS] [-t SECONDS] [-s BYTES]"
				" [-v VMS] [-b BURST] [-x PERCENT] [-P 0|1] [-O THREADS]\n");
		return 2;
	}
	printf("# bench_scale: copy path (lazy harvest, COPY_ALWAYS), %u B frames, %u VMs, burst %u,"
	       " %u%% to other shards, %u rounds of %.2f s, pinned %s, load %.2f\n",
	       c.len, c.vms, c.burst, c.cross, c.rounds, c.secs, c.pin ? "yes" : "no", loadavg());
	for (unsigned r = 0; r < c.rounds; r++) {
		printf("round %u:", r + 1);
		for (unsigned t = c.only ? c.only : 1; t <= (c.only ? c.only : c.max_threads); t++) {
			fps[t][r] = run_threads(&c, t, &cores[t][r]);
			if (fps[t][r] < 0)
				return 1;
			printf(" %u:%.0f (%.2f cores)", t, fps[t][r], cores[t][r]);
		}
		printf("  load %.2f\n", loadavg());
		fflush(stdout);
	}
	if (!c.only)
		report(&c, fps, cores);
	return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * bench_kvm: what flipping costs on the KVM backend, on the host.
 *
 * The backend's work is mmap(2) on the VMM's address space, which needs no
 * /dev/kvm: it is measured here on a memfd arena with guest RAM mapped from
 * it, the benchmark's own thread touching the pages as a vCPU would (its
 * first access after a flip faults the new page in, as a vCPU's would). What
 * a real KVM adds on top (the MMU notifier zapping second-stage entries, the
 * vCPU's exit and second-stage fault on its next access) is not in these
 * figures; see docs/performance.md.
 *
 * Part 1, the backend alone: nanoseconds per page of map (flip into a hole),
 * remap (flip over a page), unmap (harvest) and of the guest's first touch,
 * at batch sizes 1, 8, 32 and 256, with the batch's pages contiguous (one
 * mmap call per batch) or scattered (one call per page); against one bare
 * mmap(2) call, and the copy and clear of a page, measured in the same run.
 *
 * Part 2, through the engine: nanoseconds per frame of a steady RX cycle
 * (re-post, burst, poll, the guest touching each page) when every frame is
 * copied into the guest's still-mapped buffer and when every frame is
 * flipped (lazy harvest: one remap per page), by frame size, on the copy-in
 * path (vdemux_rx_burst) and on the zero-copy path (vdemux_rx_submit); and
 * the frame size from which flipping is cheaper.
 *
 * Usage: bench_kvm [-q] [-2]   (-q: 3 repetitions instead of 5, for a quick look;
 *                              -2: part 2 only)
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <vdemux/sys/backend.h>
#include <vdemux/sys/classifier.h>
#include <vdemux/vdemux.h>

#include "bench_util.h"

#define PAGE VDEMUX_PAGE_SIZE

static int reps = 5;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what, int err)
{
	fprintf(stderr, "bench_kvm: %s: %s\n", what, strerror(err < 0 ? -err : err));
	exit(1);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static volatile uint8_t sink;

static void touch(const uint8_t *p)
{
	sink += *(const volatile uint8_t *)p;
}

static void machine(void)
{
	struct utsname u;
	char line[256], model[256] = "?";
	FILE *f = fopen("/proc/cpuinfo", "r");

	if (f) {
		while (fgets(line, sizeof(line), f))
			if (!strncmp(line, "model name", 10)) {
				char *c = strchr(line, ':');
				if (c) {
					snprintf(model, sizeof(model), "%s", c + 2);
					model[strcspn(model, "\n")] = 0;
				}
				break;
			}
		fclose(f);
	}
	uname(&u);
	printf("machine: %s, %ld CPUs online, Linux %s\n", model, sysconf(_SC_NPROCESSORS_ONLN),
	       u.release);
}

/* ---- part 1: the backend alone ------------------------------------------------ */

#define W1 512u	    /* window pages */
#define POOL1 1024u /* pool pages, after the window's RAM in the arena */
#define PAGES_PER_RUN 4096u

struct p1 {
	vdemux_arena *arena;
	struct vdemux_arena_info ai;
	uint8_t *ram;
	struct vdemux_backend *be;
	void *ctx;
	uint8_t *spare; /* a region for the bare mmap baseline */
};

static void p1_setup(struct p1 *s)
{
	struct vdemux_arena_opts ao = VDEMUX_OPTS(vdemux_arena_opts, .npages = W1 + POOL1 + 2,
						  .kind = VDEMUX_ARENA_MEMFD);
	int r = vdemux_arena_create(&s->arena, &ao);
	if (r < 0)
		die("arena", r);
	vdemux_arena_info(s->arena, &s->ai);
	memset(s->ai.base, 1, (size_t)s->ai.npages * PAGE); /* every page allocated */
	void *p;
	if ((r = vdemux_kvm_ram_map(s->arena, 0, W1, &p)) < 0)
		die("ram map", r);
	s->ram = p;
	if ((r = vdemux_kvm_ram_map(s->arena, W1 + POOL1, 2, &p)) < 0)
		die("ram map", r);
	s->spare = p;
	struct vdemux_kvm_opts ko = VDEMUX_OPTS(vdemux_kvm_opts, .ram_gpa = 0,
						.ram_size = (uint64_t)W1 * PAGE, .ram_hva = s->ram);
	if ((r = vdemux_kvm_create(&s->be, &ko)) < 0)
		die("kvm backend", r);
	struct vdemux_backend_vm vm = {.vm_id = 1,
				       .rx_base = 0,
				       .rx_pages = W1,
				       .arena = s->ai,
				       .engine_first_page = W1,
				       .engine_npages = POOL1};
	if ((r = s->be->vm_attach(s->be, &vm, &s->ctx)) < 0)
		die("attach", r);
}

static void p1_teardown(struct p1 *s)
{
	s->be->vm_detach(s->be, s->ctx);
	s->be->free(s->be);
	vdemux_kvm_ram_unmap(s->ram, W1);
	vdemux_kvm_ram_unmap(s->spare, 2);
	vdemux_arena_destroy(s->arena);
}

static void batch(struct p1 *s, vdemux_backend_batch_fn fn, const struct vdemux_map *m, unsigned n)
{
	unsigned done;
	int r = fn(s->be, s->ctx, m, n, &done);
	if (r < 0 || done != n)
		die("batch", r ? r : -EIO);
}

/* Fill m with n entries at GPA page base.., arena pages from first (stride 1 or 2). */
static void entries(struct vdemux_map *m, unsigned n, uint32_t gbase, uint32_t first, unsigned stride)
{
	for (unsigned i = 0; i < n; i++)
		m[i] = (struct vdemux_map){.gpa = (uint64_t)(gbase + i) * PAGE,
					   .page = first + i * stride};
}

struct p1_result {
	double map, touch, unmap, remap;
	double calls[3]; /* mmap calls per batch: map, unmap, remap */
};

static uint64_t mmap_calls(struct p1 *s)
{
	struct vdemux_kvm_stats k;
	vdemux_kvm_stats(s->be, &k, sizeof(k));
	return k.mmap_calls;
}

static struct p1_result p1_run(struct p1 *s, unsigned n, bool contiguous)
{
	static struct vdemux_map m[256], a[256], b[256];
	double vmap[16], vtouch[16], vunmap[16], vremap[16];
	unsigned stride = contiguous ? 1 : 2, iters = PAGES_PER_RUN / n;
	uint64_t calls[3] = {0, 0, 0}, nb = 0;

	for (int rep = 0; rep < reps; rep++) {
		uint64_t tm = 0, tt = 0, tu = 0, tr = 0;
		for (unsigned it = 0; it < iters; it++) {
			uint32_t g = (it % 2) * 256;
			entries(m, n, g, W1 + (it % 2) * 512, stride);
			uint64_t c0 = mmap_calls(s);
			uint64_t t0 = now_ns();
			batch(s, s->be->map, m, n);
			uint64_t t1 = now_ns();
			uint64_t c1 = mmap_calls(s);
			for (unsigned i = 0; i < n; i++)
				touch(s->ram + m[i].gpa);
			uint64_t t2 = now_ns();
			batch(s, s->be->unmap, m, n);
			uint64_t t3 = now_ns();
			calls[0] += c1 - c0;
			calls[1] += mmap_calls(s) - c1;
			nb++;
			tm += t1 - t0;
			tt += t2 - t1;
			tu += t3 - t2;
		}
		/* Remap: swap two sets of pages behind the same GPAs. */
		entries(a, n, 0, W1, stride);
		entries(b, n, 0, W1 + 512, stride);
		batch(s, s->be->map, a, n);
		for (unsigned i = 0; i < n; i++)
			touch(s->ram + a[i].gpa);
		for (unsigned it = 0; it < iters; it++) {
			const struct vdemux_map *x = it % 2 ? a : b;
			uint64_t c0 = mmap_calls(s);
			uint64_t t0 = now_ns();
			batch(s, s->be->remap, x, n);
			tr += now_ns() - t0;
			calls[2] += mmap_calls(s) - c0;
			for (unsigned i = 0; i < n; i++)
				touch(s->ram + x[i].gpa);
		}
		batch(s, s->be->unmap, a, n);
		double np = (double)iters * n;
		vmap[rep] = (double)tm / np;
		vtouch[rep] = (double)tt / np;
		vunmap[rep] = (double)tu / np;
		vremap[rep] = (double)tr / np;
	}
	struct p1_result res = {median(vmap, reps),
				median(vtouch, reps),
				median(vunmap, reps),
				median(vremap, reps),
				{0, 0, 0}};
	for (int k = 0; k < 3; k++)
		res.calls[k] = (double)calls[k] / (double)nb;
	return res;
}

/* One bare mmap(MAP_FIXED | MAP_SHARED) of a memfd page over a touched page. */
static void p1_baselines(struct p1 *s, double *bare, double *bare_hole, double *clear, double *copy,
			 double *syscall_ns)
{
	double v[16], h[16], c[16], y[16], g[16];
	const unsigned iters = 20000;
	static uint8_t src[PAGE] __attribute__((aligned(64)));

	for (int rep = 0; rep < reps; rep++) {
		uint64_t t = 0, th = 0;
		for (unsigned it = 0; it < iters; it++) {
			off_t off = (off_t)(W1 + POOL1 + (it % 2)) * PAGE;
			uint64_t t0 = now_ns();
			void *p = mmap(s->spare, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
				       s->ai.fd, off);
			t += now_ns() - t0;
			if (p == MAP_FAILED)
				die("mmap", errno);
			touch(s->spare);
			t0 = now_ns();
			p = mmap(s->spare + PAGE, PAGE, PROT_NONE,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
			th += now_ns() - t0;
			if (p == MAP_FAILED)
				die("mmap", errno);
			p = mmap(s->spare + PAGE, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
				 s->ai.fd, off);
			if (p == MAP_FAILED)
				die("mmap", errno);
			touch(s->spare + PAGE);
		}
		v[rep] = (double)t / iters;
		h[rep] = (double)th / iters;

		uint8_t *pg = s->ai.base + (size_t)W1 * PAGE;
		uint64_t t0 = now_ns();
		for (unsigned it = 0; it < iters; it++) {
			memset(pg + (size_t)(it % 64) * PAGE, 0, PAGE);
			__asm__ volatile("" ::: "memory");
		}
		c[rep] = (double)(now_ns() - t0) / iters;
		t0 = now_ns();
		for (unsigned it = 0; it < iters; it++) {
			memcpy(pg + (size_t)(it % 64) * PAGE, src, PAGE);
			__asm__ volatile("" ::: "memory");
		}
		y[rep] = (double)(now_ns() - t0) / iters;
		t0 = now_ns();
		for (unsigned it = 0; it < iters; it++)
			sink += (uint8_t)getppid();
		g[rep] = (double)(now_ns() - t0) / iters;
	}
	*syscall_ns = median(g, reps);
	*bare = median(v, reps);
	*bare_hole = median(h, reps);
	*clear = median(c, reps);
	*copy = median(y, reps);
}

static void part1(void)
{
	struct p1 s;
	static const unsigned sizes[] = {1, 8, 32, 256};
	double bare, bare_hole, clear, copy, sys;

	p1_setup(&s);
	p1_baselines(&s, &bare, &bare_hole, &clear, &copy, &sys);
	printf("\nPart 1: the backend alone, ns per page (median of %d runs of %u pages)\n", reps,
	       PAGES_PER_RUN);
	printf("baseline: one mmap(MAP_FIXED|MAP_SHARED) of a memfd page over a touched page: %.0f ns\n",
	       bare);
	printf("          one mmap(PROT_NONE anonymous) hole over a touched page:             %.0f ns\n",
	       bare_hole);
	printf("          clear a page (memset 4 KiB): %.0f ns; copy a page (memcpy 4 KiB): %.0f ns\n",
	       clear, copy);
	printf("          an empty system call (getppid): %.0f ns\n", sys);
	printf("%-6s %-10s %9s %9s %9s %9s %18s %14s\n", "batch", "pages", "map", "touch", "unmap",
	       "remap", "mmap calls m/u/r", "map+unmap/bare");
	for (int c = 1; c >= 0; c--) {
		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			struct p1_result r = p1_run(&s, sizes[i], c);
			char calls[32];
			snprintf(calls, sizeof(calls), "%.0f/%.0f/%.0f", r.calls[0], r.calls[1],
				 r.calls[2]);
			printf("%-6u %-10s %9.0f %9.0f %9.0f %9.0f %18s %14.2f\n", sizes[i],
			       c ? "contiguous" : "scattered", r.map, r.touch, r.unmap, r.remap, calls,
			       (r.map + r.unmap) / bare);
		}
	}
	p1_teardown(&s);
}

/* ---- part 2: copy or flip, through the engine ------------------------------------ */

#define W2 1024u
#define POOL2 1536u
/* Frames timed per run: a flip costs microseconds, a copy tens of
 * nanoseconds, and a run of copies must last long enough (milliseconds)
 * for the machine's noise to average out and for the adaptive policy's
 * occasional probes to weigh what they do in a steady state. */
#define FRAMES_FLIP 8192u
#define FRAMES_COPY 65536u

struct by_one {
	struct vdemux_classifier base;
	vdemux_vm_id vm;
};

static int by_one_classify(struct vdemux_classifier *c, const uint8_t *frame, uint32_t len,
			   struct vdemux_verdict *v)
{
	(void)frame;
	(void)len;
	v->dests[0] = (struct vdemux_dest){.vm = ((struct by_one *)c)->vm};
	v->n = 1;
	return 0;
}

enum p2_policy { P2_COPY, P2_FLIP, P2_ADAPTIVE, P2_NPOL };
static uint64_t p2_adaptive_flips; /* pages flipped by the last adaptive run */
static const enum vdemux_copy_policy p2_copy[P2_NPOL] = {VDEMUX_COPY_ALWAYS, VDEMUX_COPY_NEVER,
							 VDEMUX_COPY_ADAPTIVE};

/* ns per frame of a steady cycle: re-post, deliver, poll, guest touches.
 * The first 8 cycles (256 frames at most) warm up and are not timed: they
 * also hold the adaptive policy's first measures of the tables. */
static double p2_run(uint32_t size, enum p2_policy pol, bool zero_copy)
{
	vdemux_arena *arena;
	struct vdemux_arena_info ai;
	vdemux_engine *eng;
	struct vdemux_backend *be;
	struct by_one cls = {.base = VDEMUX_CLASSIFIER_INIT};
	vdemux_vm_id id;
	void *ram;
	int r;

	struct vdemux_arena_opts ao = VDEMUX_OPTS(vdemux_arena_opts, .npages = W2 + POOL2,
						  .kind = VDEMUX_ARENA_MEMFD);
	if ((r = vdemux_arena_create(&arena, &ao)) < 0)
		die("arena", r);
	vdemux_arena_info(arena, &ai);
	memset(ai.base, 0, (size_t)ai.npages * PAGE);
	if ((r = vdemux_kvm_ram_map(arena, 0, W2, &ram)) < 0)
		die("ram", r);
	struct vdemux_engine_opts eo = VDEMUX_OPTS(vdemux_engine_opts, .arena = arena, .first_page = W2,
						   .npages = POOL2, .harvest = VDEMUX_HARVEST_LAZY,
						   .copy = p2_copy[pol]);
	if ((r = vdemux_engine_create(&eng, &eo)) < 0)
		die("engine", r);
	cls.base.name = "one";
	cls.base.classify = by_one_classify;
	vdemux_engine_set_classifier(eng, &cls.base);
	struct vdemux_kvm_opts ko = VDEMUX_OPTS(vdemux_kvm_opts, .ram_gpa = 0,
						.ram_size = (uint64_t)W2 * PAGE, .ram_hva = ram);
	if ((r = vdemux_kvm_create(&be, &ko)) < 0 || (r = vdemux_engine_add_backend(eng, be)) < 0)
		die("backend", r);
	struct vdemux_vm_opts vo = VDEMUX_OPTS(vdemux_vm_opts, .rx_base = 0, .rx_pages = W2,
					       .backends = &be, .n_backends = 1);
	if ((r = vdemux_vm_add(eng, &id, &vo)) < 0)
		die("vm", r);
	cls.vm = id;

	uint32_t np = (size + PAGE - 1) / PAGE;
	unsigned burst = 32;
	while (burst > 1 && burst * np > 256)
		burst /= 2;
	static uint8_t data[65536 + 4];
	for (uint32_t i = 0; i < size; i++)
		data[i] = (uint8_t)(i * 13 + 1);
	static struct vdemux_frame fr[32];
	for (unsigned i = 0; i < burst; i++)
		fr[i] = (struct vdemux_frame){.data = data, .len = size};
	static struct vdemux_completion c[512];
	static uint64_t gpas[512];
	static struct vdemux_rx_buf bufs[512];

	/* Post 2 bursts' worth of buffers; each cycle re-posts what it got. */
	for (unsigned i = 0; i < 2 * burst * np; i++)
		gpas[i] = (uint64_t)i * PAGE;
	if (vdemux_vm_post_rx(eng, id, gpas, 2 * burst * np) != (int)(2 * burst * np))
		die("post", -EIO);
	unsigned ncomp = 0;

	unsigned cycles = (pol == P2_FLIP ? FRAMES_FLIP : FRAMES_COPY) / burst;
	uint64_t total = 0;
	for (unsigned cyc = 0; cyc < cycles + 8; cyc++) {
		uint64_t t0 = now_ns(), excluded = 0;
		if (ncomp) {
			for (unsigned i = 0; i < ncomp; i++)
				gpas[i] = c[i].gpa;
			if (vdemux_vm_post_rx(eng, id, gpas, ncomp) != (int)ncomp)
				die("re-post", -EIO);
		}
		if (zero_copy) {
			unsigned need = burst * np;
			if (vdemux_rx_alloc(eng, bufs, need) != (int)need)
				die("rx_alloc", -ENOBUFS);
			/* The device's DMA: not the CPU's work, not timed. */
			uint64_t d0 = now_ns();
			for (unsigned f = 0; f < burst; f++)
				for (uint32_t p = 0; p < np; p++) {
					struct vdemux_rx_buf *b = &bufs[f * np + p];
					uint32_t len = size - p * PAGE < PAGE ? size - p * PAGE : PAGE;
					memcpy(b->data, data + p * PAGE, len);
					b->len = len;
					b->flags = p + 1 < np ? VDEMUX_RXBUF_MORE : 0;
				}
			excluded = now_ns() - d0;
			if (vdemux_rx_submit(eng, bufs, need) != (int)need)
				die("rx_submit", -EIO);
		} else {
			if (vdemux_rx_burst(eng, fr, burst) != (int)burst)
				die("rx_burst", -EIO);
		}
		r = vdemux_vm_poll(eng, id, c, 512);
		if (r != (int)(burst * np))
			die("poll: frames dropped", -EIO);
		ncomp = (unsigned)r;
		/* The guest looks at every page it got. */
		for (unsigned i = 0; i < ncomp; i++)
			touch((const uint8_t *)ram + c[i].gpa);
		if (cyc >= 8)
			total += now_ns() - t0 - excluded;
	}
	struct vdemux_vm_stats vs;
	vdemux_vm_stats(eng, id, &vs, sizeof(vs));
	if ((pol == P2_FLIP && vs.copies != 0) || (pol == P2_COPY && vs.flips != 0))
		die("the policy was not followed", -EPROTO);
	if (pol == P2_ADAPTIVE)
		p2_adaptive_flips = vs.flips;
	vdemux_engine_destroy(eng);
	vdemux_kvm_ram_unmap(ram, W2);
	vdemux_arena_destroy(arena);
	return (double)total / ((double)cycles * burst);
}

static void part2(void)
{
	static const uint32_t sizes[] = {64, 512, 1500, 4096, 9000, 16384, 65536};
	enum { NS = sizeof(sizes) / sizeof(sizes[0]) };
	uint32_t cross[2] = {0, 0};
	double worst[NS];

	printf("\nPart 2: through the engine, ns per frame of a steady RX cycle (re-post, deliver, poll,\n"
	       "guest touches each page); lazy harvest; copy = every frame copied into the still-mapped\n"
	       "buffer, flip = every page remapped, adapt = the adaptive policy (a new engine each run,\n"
	       "its first measures in the untimed warm-up); median of %d runs of %u frames (flip: %u),\n"
	       "the three policies interleaved; load average %.2f\n",
	       reps, FRAMES_COPY, FRAMES_FLIP, loadavg());
	printf("(bursts of 32 frames, fewer for frames over 8 pages: at most 256 pages a burst)\n");
	printf("%-7s %10s %10s %10s %7s   %10s %10s %10s %7s %9s\n", "bytes", "burst:copy", "burst:flip",
	       "burst:adapt", "a/best", "zc:copy", "zc:flip", "zc:adapt", "a/best", "flips/run");
	for (size_t i = 0; i < NS; i++) {
		double v[2][P2_NPOL][16], med[2][P2_NPOL], ratio[2];
		uint64_t aflips = 0;

		for (int rep = 0; rep < reps; rep++)
			for (int zc = 0; zc < 2; zc++)
				for (int p = 0; p < P2_NPOL; p++) {
					v[zc][p][rep] = p2_run(sizes[i], (enum p2_policy)p, zc);
					if (p == P2_ADAPTIVE && zc)
						aflips += p2_adaptive_flips;
				}
		for (int zc = 0; zc < 2; zc++) {
			for (int p = 0; p < P2_NPOL; p++)
				med[zc][p] = median(v[zc][p], reps);
			double best = med[zc][P2_COPY] < med[zc][P2_FLIP] ? med[zc][P2_COPY]
									  : med[zc][P2_FLIP];
			ratio[zc] = best / med[zc][P2_ADAPTIVE];
		}
		worst[i] = ratio[0] < ratio[1] ? ratio[0] : ratio[1];
		printf("%-7u %10.0f %10.0f %10.0f %7.2f   %10.0f %10.0f %10.0f %7.2f %9.1f\n", sizes[i],
		       med[0][P2_COPY], med[0][P2_FLIP], med[0][P2_ADAPTIVE], ratio[0], med[1][P2_COPY],
		       med[1][P2_FLIP], med[1][P2_ADAPTIVE], ratio[1], (double)aflips / reps);
		for (int path = 0; path < 2; path++) {
			bool flip_wins = med[path][P2_FLIP] < med[path][P2_COPY];
			if (flip_wins && !cross[path])
				cross[path] = sizes[i];
			if (!flip_wins)
				cross[path] = 0; /* must win from there on */
		}
	}
	printf("a/best = ns of the better of copy and flip / ns of adaptive (frames per second of adaptive\n"
	       "over the better); flips/run = pages the adaptive policy flipped in a run on the zero-copy\n"
	       "path (%u frames and the warm-up's)\n",
	       FRAMES_COPY);
	for (int path = 0; path < 2; path++) {
		const char *name = path ? "zero-copy path (rx_submit)" : "copy-in path (rx_burst)";
		if (cross[path])
			printf("%s: flipping is cheaper from %u bytes on (of the sizes measured)\n",
			       name, cross[path]);
		else
			printf("%s: copying is cheaper at every size measured, up to %u bytes\n", name,
			       sizes[NS - 1]);
	}
	printf("adaptive frames per second over the better of copy-only and flip-only, the lower of the two "
	       "paths; load average %.2f\n",
	       loadavg());
	for (size_t i = 0; i < NS; i++)
		printf("adaptive kvm %u %.3f\n", sizes[i], worst[i]);
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "-q"))
		reps = 3;
	setvbuf(stdout, NULL, _IOLBF, 0);
	machine();
	if (!(argc > 1 && !strcmp(argv[argc - 1], "-2")))
		part1();
	part2();
	return 0;
}

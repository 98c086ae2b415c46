/* SPDX-License-Identifier: MIT */
/* Packets per second through the engine on the simulated backend, for
 * several frame sizes and delivery policies, beside the floor measured in
 * the same run: clearing the frame's pages and copying the frame, which is
 * the least any safe receive path must do per frame.
 *
 * Each iteration: an rx burst of B frames spread over the VMs, then each VM
 * takes its completions and re-posts the buffers (releasing the pages), so
 * the cost of harvesting is included. Usage:
 *   bench_engine [-v VMS] [-b BURST] [-t SECONDS_PER_CASE] [-r ROUNDS] [-s BYTES] [-p copy|zc]
 *                [-P POLICY]   (-P: time only that policy, for a profiler)
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <vdemux/vdemux.h>

#include "bench_util.h"

#define MAX_BURST 256
#define WINDOW 64

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

struct policy {
	const char *name;
	enum vdemux_harvest harvest;
	enum vdemux_copy_policy copy;
};

/* copy-only, flip-only and the adaptive policy, all with the same traffic,
 * under each harvest policy: lazy (the default: a posted page stays mapped
 * until a flip replaces it with one remap, and a copy can go into it) and
 * eager (a posted page is unmapped at once; a frame is mapped into the
 * hole, a copy too, into a fresh page). The adaptive policy is compared
 * with copy-only and flip-only under the same harvest policy. */
enum { P_COPY, P_FLIP, P_ADAPTIVE, P_COPY_EAGER, P_FLIP_EAGER, P_ADAPTIVE_EAGER, NPOL };
static const struct policy policies[NPOL] = {
	{"copy", VDEMUX_HARVEST_LAZY, VDEMUX_COPY_ALWAYS},
	{"flip", VDEMUX_HARVEST_LAZY, VDEMUX_COPY_NEVER},
	{"adaptive", VDEMUX_HARVEST_LAZY, VDEMUX_COPY_ADAPTIVE},
	{"copy-eager", VDEMUX_HARVEST_EAGER, VDEMUX_COPY_ALWAYS},
	{"flip-eager", VDEMUX_HARVEST_EAGER, VDEMUX_COPY_NEVER},
	{"adaptive-eager", VDEMUX_HARVEST_EAGER, VDEMUX_COPY_ADAPTIVE},
};

static volatile uint8_t sink;

/* The floor: per frame, clear the pages it occupies and copy it. */
static double floor_ns(const uint8_t *frame, uint32_t len, double secs)
{
	uint32_t np = (len + VDEMUX_PAGE_SIZE - 1) / VDEMUX_PAGE_SIZE;
	uint8_t *pages = aligned_alloc(VDEMUX_PAGE_SIZE, (size_t)np * VDEMUX_PAGE_SIZE * 64);
	uint64_t n = 0;
	double t0 = now(), t;

	memset(pages, 1, (size_t)np * VDEMUX_PAGE_SIZE * 64);
	do {
		for (int k = 0; k < 1000; k++, n++) {
			uint8_t *p = pages + (n % 64) * np * VDEMUX_PAGE_SIZE;

			memset(p, 0, (size_t)np * VDEMUX_PAGE_SIZE);
			memcpy(p, frame, len);
			sink = p[len - 1];
		}
		t = now() - t0;
	} while (t < secs);
	free(pages);
	return t * 1e9 / (double)n;
}

/* One engine running one policy on one receive path. */
struct run {
	vdemux_engine *eng;
	struct vdemux_backend *sim;
	vdemux_vm_id *ids;
	unsigned nvms, burst, window, np;
	uint32_t len;
	bool zc;
	struct vdemux_completion *cpl;
	uint64_t *gpas;
	struct vdemux_frame fr[MAX_BURST];
	uint8_t *frames;
	struct vdemux_rx_buf *bufs;
	uint64_t n;  /* frames sent (measured) */
	uint64_t n0; /* frames sent while warming up */
	double secs; /* time spent (measured) */
};

static int run_setup(struct run *r, const struct policy *pol, const uint8_t *tmpl, uint32_t len,
		     unsigned nvms, unsigned burst, bool zc)
{
	unsigned np = (len + VDEMUX_PAGE_SIZE - 1) / VDEMUX_PAGE_SIZE;
	unsigned window = WINDOW > burst * np * 2 ? WINDOW : burst * np * 2;
	struct vdemux_engine_opts eo = VDEMUX_OPTS(
		vdemux_engine_opts, .npages = nvms * window + burst * np * 4 + 64, .max_vms = nvms,
		.harvest = pol->harvest, .copy = pol->copy);

	memset(r, 0, sizeof(*r));
	r->nvms = nvms;
	r->burst = burst;
	r->window = window;
	r->np = np;
	r->len = len;
	r->zc = zc;
	r->cpl = calloc(window, sizeof(*r->cpl));
	r->gpas = calloc(window, sizeof(*r->gpas));
	r->frames = malloc((size_t)MAX_BURST * len);
	r->ids = calloc(nvms, sizeof(*r->ids));
	r->bufs = calloc((size_t)burst * np, sizeof(*r->bufs));
	if (vdemux_engine_create(&r->eng, &eo) || vdemux_sim_create(&r->sim, NULL) ||
	    vdemux_engine_add_backend(r->eng, r->sim))
		return -1;
	for (unsigned v = 0; v < nvms; v++) {
		struct vdemux_vm_opts vo = VDEMUX_OPTS(vdemux_vm_opts, .rx_base = 0x40000000,
						       .rx_pages = window, .backends = &r->sim,
						       .n_backends = 1);
		uint8_t mac[6] = {0x02, 0, 0, 0, (uint8_t)(v >> 8), (uint8_t)v};

		if (vdemux_vm_add(r->eng, &r->ids[v], &vo) ||
		    vdemux_l2_vlan_join(vdemux_engine_l2(r->eng), r->ids[v], 1, 0) ||
		    vdemux_l2_add_mac(vdemux_engine_l2(r->eng), r->ids[v], mac, 1))
			return -1;
		for (unsigned k = 0; k < window; k++)
			r->gpas[k] = 0x40000000 + (uint64_t)k * VDEMUX_PAGE_SIZE;
		vdemux_vm_post_rx(r->eng, r->ids[v], r->gpas, window);
	}
	for (unsigned i = 0; i < burst; i++) {
		uint8_t *f = r->frames + (size_t)i * len;

		memcpy(f, tmpl, len);
		f[4] = (uint8_t)((i % nvms) >> 8);
		f[5] = (uint8_t)(i % nvms);
		r->fr[i].data = f;
		r->fr[i].len = len;
		r->fr[i].pad = 0;
	}
	return 0;
}

/* The guest side: every VM takes its completions and posts the buffers
 * again (which releases the pages flipped to it). */
static int guests(struct run *r)
{
	for (unsigned v = 0; v < r->nvms; v++) {
		int c = vdemux_vm_poll(r->eng, r->ids[v], r->cpl, r->window);

		for (int k = 0; k < c; k++)
			r->gpas[k] = r->cpl[k].gpa;
		if (c > 0 && vdemux_vm_post_rx(r->eng, r->ids[v], r->gpas, (unsigned)c) != c)
			return -1;
	}
	return 0;
}

/* Zero-copy: borrow the pages, let "the device" write each frame's header
 * (a NIC's DMA costs the CPU nothing; the engine reads the header), submit. */
static int zc_burst(struct run *r)
{
	unsigned nb = r->burst * r->np;
	int got = vdemux_rx_alloc(r->eng, r->bufs, nb);

	if (got != (int)nb)
		return -1;
	for (unsigned i = 0; i < r->burst; i++) {
		for (unsigned k = 0; k < r->np; k++) {
			struct vdemux_rx_buf *b = &r->bufs[i * r->np + k];
			uint32_t off = k * VDEMUX_PAGE_SIZE;

			b->len = r->len - off < VDEMUX_PAGE_SIZE ? r->len - off : VDEMUX_PAGE_SIZE;
			b->flags = k + 1 < r->np ? VDEMUX_RXBUF_MORE : 0;
		}
		memcpy(r->bufs[i * r->np].data, r->frames + (size_t)i * r->len, 64);
	}
	return vdemux_rx_submit(r->eng, r->bufs, nb) == (int)nb ? 0 : -1;
}

/* Run for about @secs; accumulates r->n and r->secs. */
static int run_slice(struct run *r, double secs, char *why, size_t whylen)
{
	double t0 = now(), t;

	do {
		for (int it = 0; it < 16; it++) {
			if (r->zc) {
				if (zc_burst(r)) {
					snprintf(why, whylen, "zero-copy burst failed");
					return -1;
				}
			} else {
				int got = vdemux_rx_burst(r->eng, r->fr, r->burst);

				if (got != (int)r->burst) {
					snprintf(why, whylen, "rx burst returned %d", got);
					return -1;
				}
			}
			r->n += r->burst;
			if (guests(r)) {
				snprintf(why, whylen, "re-post failed");
				return -1;
			}
		}
		t = now() - t0;
	} while (t < secs);
	r->secs += t;
	return 0;
}

static int run_finish(struct run *r, char *why, size_t whylen, uint64_t *multi, uint64_t *one_run,
		      double *probes, double *copied)
{
	struct vdemux_engine_stats st;
	int rc = 0;

	vdemux_engine_stats(r->eng, &st, sizeof(st));
	*multi = st.multi_page_flips;
	*one_run = st.multi_page_one_run;
	*probes = st.delivered ? (double)st.adaptive_probes / (double)st.delivered : 0;
	*copied = st.flips + st.copies ? (double)st.copies / (double)(st.flips + st.copies) : 0;
	if (st.delivered != r->n + r->n0) {
		snprintf(why, whylen, "%llu of %llu delivered", (unsigned long long)st.delivered,
			 (unsigned long long)(r->n + r->n0));
		rc = -1;
	}
	vdemux_engine_destroy(r->eng);
	free(r->cpl);
	free(r->gpas);
	free(r->frames);
	free(r->ids);
	free(r->bufs);
	return rc;
}

int main(int argc, char **argv)
{
	static const uint32_t sizes[] = {64, 512, 1500, 4096, 9000, 16384, 65536};
	enum { NS = sizeof(sizes) / sizeof(sizes[0]) };
	unsigned nvms = 4, burst = 32, rounds = 5, only_size = 0;
	int only_path = -1;
	const char *only_pol = NULL;
	double secs = 0.5, worst[NS];
	uint8_t *tmpl = calloc(1, 65536);
	int opt;

	while ((opt = getopt(argc, argv, "v:b:t:r:s:p:P:h")) != -1) {
		switch (opt) {
		case 'v': nvms = (unsigned)atoi(optarg); break;
		case 'b': burst = (unsigned)atoi(optarg); break;
		case 't': secs = atof(optarg); break;
		case 'r': rounds = (unsigned)atoi(optarg); break;
		case 's': only_size = (unsigned)atoi(optarg); break;
		case 'p': only_path = strcmp(optarg, "zc") == 0; break;
		case 'P':
			only_pol = optarg; /* for profiling one policy */
			break;
		default:
			fprintf(stderr,
				"usage: %s [-v VMS] [-b BURST] [-t SECONDS] [-r ROUNDS] [-s BYTES] [-p copy|zc] [-P POLICY]\n",
				argv[0]);
			return 2;
		}
	}
	if (!nvms || nvms > 65535 || !burst || burst > MAX_BURST || secs <= 0 || !rounds) {
		fprintf(stderr, "bad arguments\n");
		return 2;
	}
	tmpl[0] = 0x02;
	tmpl[6] = 0x02;
	tmpl[11] = 0xee;
	tmpl[12] = 0x88;
	tmpl[13] = 0xb5;
	printf("engine on the simulated backend: %u VMs, bursts of %u (at most 256 pages), %.2f s per case "
	       "in %u rounds of fresh engines; load average %.2f\n",
	       nvms, burst, secs, rounds, loadavg());
	printf("%-4s %-6s %-14s %10s %10s %10s %8s\n", "path", "bytes", "policy", "Mpps", "ns/frame",
	       "floor ns", "ratio");
	for (unsigned s = 0; s < NS; s++) {
		uint32_t len = sizes[s], np = (len + VDEMUX_PAGE_SIZE - 1) / VDEMUX_PAGE_SIZE;
		unsigned b = burst * np > 256 ? 256 / np : burst;
		double fl = only_pol ? 0 : floor_ns(tmpl, len, secs / 4);

		worst[s] = 1e9;
		if (only_size && len != only_size)
			continue;
		for (int zc = 0; zc < 2; zc++) {
			struct run r[NPOL];
			char why[128] = "";
			double ns[NPOL], best;

			if (only_path >= 0 && zc != only_path)
				continue;

			double secs_p[NPOL] = {0}, probes_p[NPOL] = {0}, copied_p[NPOL] = {0};
			uint64_t n_p[NPOL] = {0}, multi_p[NPOL] = {0}, one_p[NPOL] = {0};

			/* Each round: fresh engines (where a policy's pages land in
			 * memory varies from one engine to the next: averaged over
			 * the rounds), a warm-up (first-touch faults are not the
			 * policies' cost, and the adaptive policy measures), then
			 * the policies one after the other, from a different one
			 * each round, so that all share the machine's noise. */
			for (unsigned k = 0; k < rounds; k++) {
				for (int q = 0; q < NPOL; q++) {
					/* created in one order, then the other: where
					 * each lands in memory does not favour one */
					int p = k % 2 ? NPOL - 1 - q : q;

					if (only_pol && strcmp(only_pol, policies[p].name))
						continue;
					if (run_setup(&r[p], &policies[p], tmpl, len, nvms, b, zc)) {
						printf("%u %s: setup failed\n", len, policies[p].name);
						return 1;
					}
					if (run_slice(&r[p], secs / rounds / 2, why, sizeof(why))) {
						printf("%u %s: %s\n", len, policies[p].name, why);
						return 1;
					}
					r[p].n0 = r[p].n;
					r[p].n = 0;
					r[p].secs = 0;
				}
				for (int q = 0; q < NPOL; q++) {
					int p = (q + (int)k) % NPOL;

					if ((!only_pol || !strcmp(only_pol, policies[p].name)) &&
					    run_slice(&r[p], secs / rounds, why, sizeof(why))) {
						printf("%u %s: %s\n", len, policies[p].name, why);
						return 1;
					}
				}
				for (int p = 0; p < NPOL; p++) {
					uint64_t multi, one;
					double probes, copied;

					if (only_pol && strcmp(only_pol, policies[p].name))
						continue;
					n_p[p] += r[p].n;
					secs_p[p] += r[p].secs;
					if (run_finish(&r[p], why, sizeof(why), &multi, &one, &probes,
						       &copied)) {
						printf("%u %s: %s\n", len, policies[p].name, why);
						return 1;
					}
					multi_p[p] += multi;
					one_p[p] += one;
					probes_p[p] += probes / rounds;
					copied_p[p] += copied / rounds;
				}
			}
			for (int p = 0; p < NPOL; p++) {
				uint64_t multi = multi_p[p], one = one_p[p];
				double probes = probes_p[p];

				ns[p] = n_p[p] ? secs_p[p] * 1e9 / (double)n_p[p] : 0;
				printf("%-4s %-6u %-14s %10.3f %10.1f %10.1f %8.2f", zc ? "zc" : "copy",
				       len, policies[p].name, 1e3 / ns[p], ns[p], fl, ns[p] / fl);
				if (multi)
					printf("   %.0f%% of %llu multi-page flips in one run",
					       100.0 * (double)one / (double)multi,
					       (unsigned long long)multi);
				if (probes > 0)
					printf("   %.2f%% probes, %.1f%% of pages copied",
					       100.0 * probes, 100.0 * copied_p[p]);
				printf("\n");
			}
			for (int h = 0; h < 2; h++) {
				int c = h ? P_COPY_EAGER : P_COPY, f = c + 1, a = c + 2;
				double q;

				best = ns[c] < ns[f] ? ns[c] : ns[f];
				q = best / ns[a];
				printf("%-4s %-6u %s/best %.3f\n", zc ? "zc" : "copy", len,
				       policies[a].name, q);
				if (q < worst[s])
					worst[s] = q;
			}
		}
	}
	printf("\nratio = ns per frame / floor (clear the frame's pages + copy the frame); "
	       "copy path: vdemux_rx_burst, zc path: vdemux_rx_alloc + vdemux_rx_submit\n");
	printf("adaptive frames per second over the better of copy-only and flip-only under the same "
	       "harvest policy, the lowest of the two paths and the two harvest policies; "
	       "load average %.2f\n",
	       loadavg());
	for (unsigned s = 0; s < NS; s++)
		if (worst[s] < 1e9)
			printf("adaptive sim %u %.3f\n", sizes[s], worst[s]);
	free(tmpl);
	return 0;
}

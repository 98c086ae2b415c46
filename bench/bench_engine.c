/* Packets per second through the engine on the simulated backend, for
 * several frame sizes and delivery policies, beside the floor measured in
 * the same run: clearing the frame's pages and copying the frame, which is
 * the least any safe receive path must do per frame.
 *
 * Each iteration: an rx burst of B frames spread over the VMs, then each VM
 * takes its completions and re-posts the buffers (releasing the pages), so
 * the cost of harvesting is included. Usage:
 *   bench_engine [-v VMS] [-b BURST] [-t SECONDS_PER_CASE]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <vdemux/vdemux.h>

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
	uint32_t threshold;
};

static const struct policy policies[] = {
	{"flip", VDEMUX_HARVEST_EAGER, VDEMUX_COPY_NEVER, 0},
	{"copy", VDEMUX_HARVEST_LAZY, VDEMUX_COPY_ALWAYS, 0},
	{"adaptive", VDEMUX_HARVEST_LAZY, VDEMUX_COPY_THRESHOLD, 256},
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

static double engine_ns(const struct policy *pol, const uint8_t *tmpl, uint32_t len, unsigned nvms,
			unsigned burst, double secs, char *why, size_t whylen)
{
	unsigned np = (len + VDEMUX_PAGE_SIZE - 1) / VDEMUX_PAGE_SIZE;
	unsigned window = WINDOW > burst * np * 2 ? WINDOW : burst * np * 2;
	struct vdemux_engine_opts eo = VDEMUX_OPTS(
		vdemux_engine_opts, .npages = nvms * window + burst * np * 4 + 64, .max_vms = nvms,
		.harvest = pol->harvest, .copy = pol->copy, .copy_threshold = pol->threshold);
	struct vdemux_backend *sim;
	struct vdemux_completion *cpl = calloc(window, sizeof(*cpl));
	uint64_t *gpas = calloc(window, sizeof(*gpas));
	struct vdemux_frame fr[MAX_BURST];
	uint8_t *frames = malloc((size_t)MAX_BURST * len);
	vdemux_vm_id *ids = calloc(nvms, sizeof(*ids));
	struct vdemux_engine_stats st;
	vdemux_engine *eng;
	uint64_t n = 0;
	double t0, t;

	if (vdemux_engine_create(&eng, &eo) || vdemux_sim_create(&sim, NULL) ||
	    vdemux_engine_add_backend(eng, sim)) {
		snprintf(why, whylen, "engine setup failed");
		return -1;
	}
	for (unsigned v = 0; v < nvms; v++) {
		struct vdemux_vm_opts vo = VDEMUX_OPTS(vdemux_vm_opts, .rx_base = 0x40000000,
						       .rx_pages = window, .backends = &sim,
						       .n_backends = 1);
		uint8_t mac[6] = {0x02, 0, 0, 0, (uint8_t)(v >> 8), (uint8_t)v};

		if (vdemux_vm_add(eng, &ids[v], &vo) ||
		    vdemux_l2_vlan_join(vdemux_engine_l2(eng), ids[v], 1, 0) ||
		    vdemux_l2_add_mac(vdemux_engine_l2(eng), ids[v], mac, 1)) {
			snprintf(why, whylen, "VM setup failed");
			return -1;
		}
		for (unsigned k = 0; k < window; k++)
			gpas[k] = 0x40000000 + (uint64_t)k * VDEMUX_PAGE_SIZE;
		vdemux_vm_post_rx(eng, ids[v], gpas, window);
	}
	for (unsigned i = 0; i < burst; i++) {
		uint8_t *f = frames + (size_t)i * len;

		memcpy(f, tmpl, len);
		f[4] = (uint8_t)((i % nvms) >> 8);
		f[5] = (uint8_t)(i % nvms);
		fr[i].data = f;
		fr[i].len = len;
		fr[i].pad = 0;
	}
	t0 = now();
	do {
		for (int it = 0; it < 64; it++) {
			int got = vdemux_rx_burst(eng, fr, burst);

			if (got != (int)burst) {
				snprintf(why, whylen, "rx burst returned %d", got);
				return -1;
			}
			n += burst;
			for (unsigned v = 0; v < nvms; v++) {
				int c = vdemux_vm_poll(eng, ids[v], cpl, window);

				for (int k = 0; k < c; k++)
					gpas[k] = cpl[k].gpa;
				if (c > 0 && vdemux_vm_post_rx(eng, ids[v], gpas, (unsigned)c) != c) {
					snprintf(why, whylen, "re-post failed");
					return -1;
				}
			}
		}
		t = now() - t0;
	} while (t < secs);
	vdemux_engine_stats(eng, &st, sizeof(st));
	if (st.delivered != n) {
		snprintf(why, whylen, "%llu of %llu delivered", (unsigned long long)st.delivered,
			 (unsigned long long)n);
		return -1;
	}
	vdemux_engine_destroy(eng);
	free(cpl);
	free(gpas);
	free(frames);
	free(ids);
	return t * 1e9 / (double)n;
}

int main(int argc, char **argv)
{
	static const uint32_t sizes[] = {64, 1500, 9000};
	unsigned nvms = 4, burst = 32;
	double secs = 0.5;
	uint8_t *tmpl = calloc(1, 65536);
	int opt;

	while ((opt = getopt(argc, argv, "v:b:t:h")) != -1) {
		switch (opt) {
		case 'v':
			nvms = (unsigned)atoi(optarg);
			break;
		case 'b':
			burst = (unsigned)atoi(optarg);
			break;
		case 't':
			secs = atof(optarg);
			break;
		default:
			fprintf(stderr, "usage: %s [-v VMS] [-b BURST] [-t SECONDS]\n", argv[0]);
			return 2;
		}
	}
	if (!nvms || nvms > 65535 || !burst || burst > MAX_BURST || secs <= 0) {
		fprintf(stderr, "bad arguments\n");
		return 2;
	}
	tmpl[0] = 0x02;
	tmpl[6] = 0x02;
	tmpl[11] = 0xee;
	tmpl[12] = 0x88;
	tmpl[13] = 0xb5;
	printf("engine on the simulated backend: %u VMs, bursts of %u, %.1f s per case\n", nvms,
	       burst, secs);
	printf("%-6s %-9s %12s %10s %12s %8s\n", "bytes", "policy", "Mpps", "ns/frame",
	       "floor ns", "ratio");
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		double fl = floor_ns(tmpl, sizes[s], secs);

		for (size_t p = 0; p < sizeof(policies) / sizeof(policies[0]); p++) {
			char why[128] = "";
			double ns = engine_ns(&policies[p], tmpl, sizes[s], nvms, burst, secs, why,
					      sizeof(why));

			if (ns < 0) {
				printf("%-6u %-9s failed: %s\n", sizes[s], policies[p].name, why);
				return 1;
			}
			printf("%-6u %-9s %12.3f %10.1f %12.1f %8.2f\n", sizes[s], policies[p].name,
			       1e3 / ns, ns, fl, ns / fl);
		}
	}
	printf("ratio = engine ns per frame / floor ns per frame (clear the frame's pages + copy the frame)\n");
	free(tmpl);
	return 0;
}

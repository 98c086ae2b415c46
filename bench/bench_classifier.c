/* SPDX-License-Identifier: MIT */
/*
 * Classifier benchmark, in one run:
 *  1. (destination MAC, VLAN) lookups per second with 16, 1024 and 65536
 *     addresses: vdemux_l2_lookup_bulk() and vdemux_l2_lookup() against
 *     DPDK's rte_hash (rte_hash_lookup_bulk_data() and rte_hash_lookup_data(),
 *     CRC32 hash, the same 64-bit MAC+VID keys, the same lookup sequence);
 *  2. the cost per frame of vdemux_l2_classify() with 4 to 4096 VMs (one
 *     address each), unicast frames to random VMs, and broadcast for scale.
 *
 * Figures are the median of several repetitions. Prints Markdown tables.
 *
 * usage: bench_classifier [--quick]
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_hash.h>
#include <rte_hash_crc.h>

#include <vdemux/l2.h>

#define BURST 32u
#define REPS 7

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	/* xorshift64* */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return v[n / 2];
}

static void die(const char *what, int err)
{
	fprintf(stderr, "bench_classifier: %s: %s\n", what, strerror(err < 0 ? -err : err));
	exit(1);
}

/* The key the two tables share: 48-bit MAC, VID above it. */
struct addr {
	uint8_t mac[6];
	uint16_t vid;
	uint64_t key;
	vdemux_vm_id vm;
};

static void make_addrs(struct addr *a, uint32_t n, uint32_t nvms)
{
	for (uint32_t i = 0; i < n; i++) {
		uint64_t r;
		int dup;
		do {
			r = rnd();
			a[i].mac[0] = 0x02; /* locally administered unicast */
			for (int b = 1; b < 6; b++)
				a[i].mac[b] = (uint8_t)(r >> (8 * b));
			a[i].vid = (uint16_t)(1 + (i % 16));
			a[i].key = 0;
			for (int b = 0; b < 6; b++)
				a[i].key = (a[i].key << 8) | a[i].mac[b];
			a[i].key |= (uint64_t)a[i].vid << 48;
			dup = 0;
			/* Duplicates are rare; check only the recent ones cheaply. */
			for (uint32_t j = i > 64 ? i - 64 : 0; j < i; j++)
				dup |= a[j].key == a[i].key;
		} while (dup);
		a[i].vm = 1 + i % nvms;
	}
}

static vdemux_l2 *make_l2(const struct addr *a, uint32_t n, uint32_t nvms, uint32_t max_entries)
{
	vdemux_l2 *l2;
	struct vdemux_l2_opts o = VDEMUX_OPTS(vdemux_l2_opts, .max_entries = max_entries);
	int rc = vdemux_l2_create(&l2, &o);
	if (rc)
		die("vdemux_l2_create", rc);
	for (vdemux_vm_id vm = 1; vm <= nvms; vm++)
		for (uint16_t vid = 1; vid <= 16; vid++)
			if ((rc = vdemux_l2_vlan_join(l2, vm, vid, 0)))
				die("join", rc);
	for (uint32_t i = 0; i < n; i++)
		if ((rc = vdemux_l2_add_mac(l2, a[i].vm, a[i].mac, a[i].vid)))
			die("add_mac", rc);
	return l2;
}

static struct rte_hash *make_rte(const struct addr *a, uint32_t n, const char *name)
{
	struct rte_hash_parameters p = {
		.name = name,
		.entries = n < 64 ? 64 : n * 2,
		.key_len = sizeof(uint64_t),
		.hash_func = rte_hash_crc,
		.hash_func_init_val = 0,
		.socket_id = 0,
	};
	struct rte_hash *h = rte_hash_create(&p);
	if (!h)
		die("rte_hash_create", rte_errno);
	for (uint32_t i = 0; i < n; i++) {
		int rc = rte_hash_add_key_data(h, &a[i].key, (void *)(uintptr_t)a[i].vm);
		if (rc)
			die("rte_hash_add_key_data", rc);
	}
	return h;
}

struct lookup_figures {
	double ours_bulk, ours_single, rte_bulk, rte_single; /* lookups per second */
};

/* Lookup sequences of SEQ keys (about 3 MiB of input for both tables
 * together), run over as many passes as make nlookups: the input stays
 * about the size of a burst ring's headers instead of streaming through
 * every cache. */
#define SEQ (1u << 16)

static void bench_lookups(uint32_t n, uint32_t nlookups, struct lookup_figures *out)
{
	const uint32_t passes = nlookups / SEQ ? nlookups / SEQ : 1;
	nlookups = passes * SEQ;
	struct addr *a = calloc(n, sizeof(*a));
	uint32_t *seq = malloc(SEQ * sizeof(*seq));
	const uint8_t **macs = malloc(SEQ * sizeof(*macs));
	uint16_t *vids = malloc(SEQ * sizeof(*vids));
	const void **keys = malloc(SEQ * sizeof(*keys));
	vdemux_vm_id *got = malloc(BURST * sizeof(*got));
	if (!a || !seq || !macs || !vids || !keys || !got)
		die("malloc", ENOMEM);
	/* The keys of each lookup are copied, in lookup order, into one buffer:
	 * as the headers of a burst of frames would be, hot and sequential. */
	struct hdr {
		uint8_t mac[8];
		uint64_t key;
	} *hdrs = malloc(SEQ * sizeof(*hdrs));
	if (!hdrs)
		die("malloc", ENOMEM);
	make_addrs(a, n, 64);
	for (uint32_t i = 0; i < SEQ; i++) {
		seq[i] = (uint32_t)(rnd() % n);
		memcpy(hdrs[i].mac, a[seq[i]].mac, 6);
		hdrs[i].key = a[seq[i]].key;
		macs[i] = hdrs[i].mac;
		vids[i] = a[seq[i]].vid;
		keys[i] = &hdrs[i].key;
	}
	vdemux_l2 *l2 = make_l2(a, n, 64, n > 65536 ? n : 65536);
	char name[32];
	snprintf(name, sizeof(name), "bench%u", n);
	struct rte_hash *h = make_rte(a, n, name);

	uint64_t check = 0;
	vdemux_vm_id out_burst[BURST];
	void *data[BURST];

	/* Correctness first: both give the VM of every key. */
	for (uint32_t i = 0; i < 4096; i++) {
		void *d = NULL;
		if (vdemux_l2_lookup(l2, macs[i], vids[i]) != a[seq[i]].vm ||
		    rte_hash_lookup_data(h, keys[i], &d) < 0 || (uintptr_t)d != a[seq[i]].vm)
			die("lookup mismatch", EPROTO);
	}

	/* The four measurements are interleaved in each repetition, so that a
	 * burst of load from elsewhere on the machine hits them alike. */
	double tb[REPS], trb[REPS], ts[REPS], trs[REPS];
	for (int r = 0; r < REPS; r++) {
		double t0 = now();
		for (uint32_t p = 0; p < passes; p++) {
			for (uint32_t i = 0; i < SEQ; i += BURST) {
				vdemux_l2_lookup_bulk(l2, macs + i, vids + i, BURST, out_burst);
				check += out_burst[0] + out_burst[BURST - 1];
			}
		}
		tb[r] = nlookups / (now() - t0);

		t0 = now();
		for (uint32_t p = 0; p < passes; p++) {
			for (uint32_t i = 0; i < SEQ; i += BURST) {
				uint64_t hits = 0;
				rte_hash_lookup_bulk_data(h, keys + i, BURST, &hits, data);
				check += (uintptr_t)data[0] + (uintptr_t)data[BURST - 1] + hits;
			}
		}
		trb[r] = nlookups / (now() - t0);

		t0 = now();
		for (uint32_t p = 0; p < passes; p++)
			for (uint32_t i = 0; i < SEQ; i++)
				check += vdemux_l2_lookup(l2, macs[i], vids[i]);
		ts[r] = nlookups / (now() - t0);

		t0 = now();
		for (uint32_t p = 0; p < passes; p++) {
			for (uint32_t i = 0; i < SEQ; i++) {
				void *d = NULL;
				rte_hash_lookup_data(h, keys[i], &d);
				check += (uintptr_t)d;
			}
		}
		trs[r] = nlookups / (now() - t0);
	}
	out->ours_bulk = median(tb, REPS);
	out->rte_bulk = median(trb, REPS);
	out->ours_single = median(ts, REPS);
	out->rte_single = median(trs, REPS);

	if (check == 42)
		printf(" ");
	rte_hash_free(h);
	vdemux_l2_destroy(l2);
	free(a);
	free(seq);
	free(macs);
	free(vids);
	free(keys);
	free(got);
	free(hdrs);
}

/* ns per classified frame: unicast to random VMs, and broadcast. */
static void bench_classify(uint32_t nvms, uint32_t nframes, double *uni_ns, double *bc_ns)
{
	struct addr *a = calloc(nvms, sizeof(*a));
	uint8_t *frames = malloc((size_t)nframes * 64);
	struct vdemux_dest *dests = malloc(nvms * sizeof(*dests));
	if (!a || !frames || !dests)
		die("malloc", ENOMEM);
	make_addrs(a, nvms, nvms);
	vdemux_l2 *l2;
	int rc = vdemux_l2_create(&l2, NULL);
	if (rc)
		die("vdemux_l2_create", rc);
	/* Every VM on VLAN 10 (tagged), half of them also on the native VLAN. */
	for (uint32_t i = 0; i < nvms; i++) {
		a[i].vid = 10;
		if ((rc = vdemux_l2_vlan_join(l2, a[i].vm, 10, VDEMUX_L2_TAGGED)) ||
		    (rc = vdemux_l2_add_mac(l2, a[i].vm, a[i].mac, 10)))
			die("config", rc);
		if (i % 2 == 0 && (rc = vdemux_l2_vlan_join(l2, a[i].vm, 1, 0)))
			die("config", rc);
	}
	static const uint8_t src[6] = {0x02, 0xaa, 0, 0, 0, 1};
	for (uint32_t i = 0; i < nframes; i++) {
		uint8_t *f = frames + (size_t)i * 64;
		memset(f, 0, 64);
		memcpy(f, a[rnd() % nvms].mac, 6);
		memcpy(f + 6, src, 6);
		f[12] = 0x81;
		f[13] = 0x00;
		f[15] = 10;
		f[16] = 0x08;
	}
	struct vdemux_verdict v = {.dests = dests, .cap = nvms};
	double t[REPS];
	uint64_t check = 0;
	for (int r = 0; r < REPS; r++) {
		double t0 = now();
		for (uint32_t i = 0; i < nframes; i++) {
			vdemux_l2_classify(l2, frames + (size_t)i * 64, 64, &v);
			check += v.dests[0].vm;
		}
		t[r] = (now() - t0) * 1e9 / nframes;
	}
	*uni_ns = median(t, REPS);

	uint8_t bc[64] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0xaa, 0,
			  0,	0,    1,    0x81, 0,	0,    10,   0x08, 0};
	uint32_t nbc = nframes / nvms + 16;
	for (int r = 0; r < REPS; r++) {
		double t0 = now();
		for (uint32_t i = 0; i < nbc; i++) {
			vdemux_l2_classify(l2, bc, 64, &v);
			check += v.n;
		}
		t[r] = (now() - t0) * 1e9 / nbc;
	}
	*bc_ns = median(t, REPS);
	if (check == 42)
		printf(" ");
	vdemux_l2_destroy(l2);
	free(a);
	free(frames);
	free(dests);
}

int main(int argc, char **argv)
{
	int quick = argc > 1 && !strcmp(argv[1], "--quick");
	char *eal_argv[] = {argv[0], "--no-huge", "--no-pci", "--no-shconf", "--no-telemetry", "-m",
			    "512",   "-l",	  "0",	      "--log-level", "lib.*:error",    NULL};
	int eal_argc = (int)(sizeof(eal_argv) / sizeof(eal_argv[0])) - 1;
	if (rte_eal_init(eal_argc, eal_argv) < 0)
		die("rte_eal_init", rte_errno);

	uint32_t nlookups = quick ? (1u << 18) : (1u << 22);
	const uint32_t sizes[] = {16, 1024, 65536};
	printf("## Lookups of (destination MAC, VLAN), millions per second (burst %u, median of %d)\n\n",
	       BURST, REPS);
	printf("| addresses | vdemux bulk | rte_hash bulk | bulk ratio | vdemux single | rte_hash single | single ratio |\n");
	printf("|---:|---:|---:|---:|---:|---:|---:|\n");
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct lookup_figures f;
		bench_lookups(sizes[i], nlookups, &f);
		printf("| %u | %.1f | %.1f | %.2fx | %.1f | %.1f | %.2fx |\n", sizes[i],
		       f.ours_bulk / 1e6, f.rte_bulk / 1e6, f.ours_bulk / f.rte_bulk,
		       f.ours_single / 1e6, f.rte_single / 1e6, f.ours_single / f.rte_single);
		fflush(stdout);
	}

	const uint32_t vms[] = {4, 64, 1024, 4096};
	uint32_t nframes = quick ? (1u << 16) : (1u << 20);
	double base = 0;
	printf("\n## vdemux_l2_classify(), ns per frame (64-byte tagged frames, median of %d)\n\n", REPS);
	printf("| VMs | unicast to random VMs | vs 4 VMs | broadcast to all (per frame) |\n");
	printf("|---:|---:|---:|---:|\n");
	for (size_t i = 0; i < sizeof(vms) / sizeof(vms[0]); i++) {
		double uni, bc;
		bench_classify(vms[i], nframes, &uni, &bc);
		if (i == 0)
			base = uni;
		printf("| %u | %.1f | %.2fx | %.0f |\n", vms[i], uni, uni / base, bc);
		fflush(stdout);
	}
	rte_eal_cleanup();
	return 0;
}

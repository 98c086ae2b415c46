/* SPDX-License-Identifier: MIT */
/*
 * What offload metadata costs on the copy-in path (vdemux_rx_burst) of the
 * simulated backend: a 64 KiB TCP/IPv4 frame with a virtio-net header
 * (NEEDS_CSUM, GSO TCPV4, gso_size 1448) delivered to a VM that takes it
 * whole in its header (TSO), to one without TSO (the engine cuts it into
 * 46 segments and finishes each checksum), and the same bytes with no
 * header at all; then a 1514-byte frame with NEEDS_CSUM to a VM without
 * checksum offload (the checksum finished) and without the metadata.
 * Each case runs for a fixed time; the median of its rounds is printed.
 *
 * usage: bench_offload [-t SECONDS_PER_ROUND] [-r ROUNDS]
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <vdemux/vdemux.h>

#include "bench_util.h"

#define WIN 64u
#define FRAME_MAX 65536u

static uint8_t frame[FRAME_MAX + 16];

struct bcase {
	const char *name;
	uint32_t len;	   /* frame bytes */
	bool hdr;	   /* a header in front */
	uint8_t gso;	   /* GSO TCPV4 with gso_size 1448, or none */
	uint32_t offloads; /* what the VM takes */
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void put16(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* An Ethernet + IPv4 + TCP frame of len bytes to 02:00:00:00:00:01, after a
 * 10-byte header. */
static void build(uint32_t len, uint8_t gso)
{
	uint8_t *f = frame + 10;

	memset(frame, 0, sizeof(frame));
	memcpy(f, (uint8_t[6]){0x02, 0, 0, 0, 0, 1}, 6);
	memcpy(f + 6, (uint8_t[6]){0x02, 0, 0, 0, 0, 9}, 6);
	put16(f + 12, 0x0800);
	f[14] = 0x45;
	put16(f + 16, len - 14);
	f[23] = 6;
	f[46] = 5 << 4;
	for (uint32_t i = 54; i < len; i++)
		f[i] = (uint8_t)i;
	frame[0] = VDEMUX_VNET_HDR_F_NEEDS_CSUM;
	frame[1] = gso;
	frame[4] = 1448 & 0xff;
	frame[5] = 1448 >> 8;
	frame[6] = 34;
	frame[8] = 16;
}

static vdemux_engine *setup(const struct bcase *c, vdemux_vm_id *id, uint64_t *gpas)
{
	struct vdemux_engine_opts eo = VDEMUX_OPTS(vdemux_engine_opts, .npages = 2 * WIN + 64,
						   .copy = VDEMUX_COPY_ALWAYS);
	struct vdemux_backend *sim;
	vdemux_engine *eng;

	if (vdemux_engine_create(&eng, &eo) || vdemux_sim_create(&sim, NULL) ||
	    vdemux_engine_add_backend(eng, sim))
		return NULL;
	struct vdemux_vm_opts vo = VDEMUX_OPTS(vdemux_vm_opts, .rx_base = 1ull << 32, .rx_pages = WIN,
					       .backends = &sim, .n_backends = 1, .offloads = c->offloads,
					       .vnet_hdr_len = c->offloads ? 12 : 0);
	if (vdemux_vm_add(eng, id, &vo))
		return NULL;
	for (uint32_t k = 0; k < WIN; k++)
		gpas[k] = vo.rx_base + (uint64_t)k * VDEMUX_PAGE_SIZE;
	if (vdemux_vm_post_rx(eng, *id, gpas, WIN) != (int)WIN ||
	    vdemux_l2_vlan_join(vdemux_engine_l2(eng), *id, 1, 0) ||
	    vdemux_l2_add_mac(vdemux_engine_l2(eng), *id, frame + 10, 1))
		return NULL;
	return eng;
}

/* ns per frame over secs seconds, or a negative number on failure. */
static double run(const struct bcase *c, double secs)
{
	uint64_t gpas[WIN];
	struct vdemux_completion cpl[WIN];
	vdemux_vm_id id;
	struct vdemux_frame f = {.data = c->hdr ? frame : frame + 10,
				 .len = c->len + (c->hdr ? 10 : 0),
				 .flags = c->hdr ? VDEMUX_FRAME_VNET_HDR(10) : 0};
	vdemux_engine *eng;
	uint64_t frames = 0;
	double t0, t;

	build(c->len, c->gso);
	eng = setup(c, &id, gpas);
	if (!eng)
		return -1;
	t0 = now();
	do {
		for (int k = 0; k < 16; k++) {
			int n;

			if (vdemux_rx_burst(eng, &f, 1) != 1)
				return -2;
			n = vdemux_vm_poll(eng, id, cpl, WIN);
			if (n <= 0)
				return -3;
			for (int i = 0; i < n; i++)
				gpas[i] = cpl[i].gpa;
			if (vdemux_vm_post_rx(eng, id, gpas, (unsigned)n) != n)
				return -4;
			frames++;
		}
		t = now();
	} while (t - t0 < secs);
	vdemux_engine_destroy(eng);
	return (t - t0) * 1e9 / (double)frames;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	static const struct bcase cases[] = {
		{"64K TSO4 to a VM with TSO (passed on)", 65536, true, VDEMUX_VNET_GSO_TCPV4,
		 VDEMUX_OFFLOAD_CSUM | VDEMUX_OFFLOAD_TSO4},
		{"64K TSO4 to a VM without (46 segments)", 65536, true, VDEMUX_VNET_GSO_TCPV4, 0},
		{"64K, no metadata", 65536, false, 0, 0},
		{"1514 NEEDS_CSUM to a VM without (finished)", 1514, true, 0, 0},
		{"1514, no metadata", 1514, false, 0, 0},
	};
	double secs = 0.5, r[32];
	int rounds = 5, opt;

	while ((opt = getopt(argc, argv, "t:r:")) != -1) {
		if (opt == 't')
			secs = atof(optarg);
		else if (opt == 'r')
			rounds = atoi(optarg);
		else
			return 2;
	}
	if (rounds < 1 || rounds > 32 || secs <= 0)
		return 2;
	printf("offload on the copy-in path, simulated backend, copy policy ALWAYS; median of %d rounds "
	       "of %.2f s; load average %.2f\n",
	       rounds, secs, loadavg());
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		for (int i = 0; i < rounds; i++)
			r[i] = run(&cases[k], secs);
		qsort(r, (size_t)rounds, sizeof(r[0]), cmp);
		if (r[0] < 0) {
			printf("%-45s failed (%.0f)\n", cases[k].name, r[0]);
			continue;
		}
		printf("%-45s %10.0f ns/frame\n", cases[k].name, r[rounds / 2]);
	}
	return 0;
}

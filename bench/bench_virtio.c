/* SPDX-License-Identifier: MIT */
/*
 * bench_virtio: the VMM-side cost per frame of filling a virtio-net receive
 * queue, through libvdemux and without it, in the same run.
 *
 * A simulated Linux 6.1 guest (tests/support/vnet_guest.c) posts buffers in
 * one layout; guest RAM is kept by the KVM backend (mmap(2) of engine pages
 * behind the VMM's view of guest RAM: no /dev/kvm needed, and no vCPU, so
 * what KVM adds on a real VM is not in these figures). Timed, the VMM's
 * side only:
 *
 *   plain       what a VMM's own virtio-net device does: pop a buffer,
 *               copy header + frame into it (mergeable buffers, num_buffers),
 *               push, publish, decide the interrupt; no libvdemux.
 *   vdemux-copy the frame through the engine into mergeable buffers
 *               (vdemux_rx_burst: classify, copy, complete, interrupt).
 *   vdemux-flip the frame read into pool pages at the big-packet offset
 *               (vdemux_rx_alloc + vdemux_rx_submit), flipped into the
 *               guest's big-packet chain.
 *
 * Frames arrive back to back: the guest refills its ring (untimed), then a
 * batch of frames (as many as three quarters of the ring's buffers hold, at
 * most 32) is timed as one interval, the kick that gave the buffers
 * included for vdemux-copy (the plain device pops as it copies), and the
 * time divided by the frames. -b BURST frames go in one call (default 1:
 * one frame a call; the plain device then publishes and decides the
 * interrupt once a call too). The frame's arrival (a TAP read: the
 * kernel's copy) is outside the timing in all three: a memcpy into the
 * plain path's buffer or into the lent pages (vdemux-flip times its alloc
 * and its submit apart, around that copy). The guest's side (reading the
 * frame, refilling) is outside too.
 * Usage: bench_virtio [-n FRAMES per case] [-r ROUNDS] [-s BYTES] [-m pcf] [-b BURST]
 * -s runs one frame size only; -m the paths named (p plain, c vdemux-copy,
 * f vdemux-flip; the others print 0): for a profiler, e.g.
 * valgrind --tool=callgrind --toggle-collect=vdemux_rx_burst ... -s 64 -m c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <vdemux/vdemux.h>

#include "virtio/vring.h"
#include "vnet_guest.h"

#define RAM_PAGES 8192u
#define RAM ((uint64_t)RAM_PAGES * VDEMUX_PAGE_SIZE)
#define QSIZE 256u
#define OFF 32u /* Linux 6.1's big-packet data offset */

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

struct guest {
	uint8_t *ram;
	struct vng g;
};

static uint8_t *guest_at(void *payload, uint64_t gpa, uint64_t len)
{
	struct guest *g = payload;

	return gpa <= RAM && len <= RAM - gpa ? g->ram + gpa : NULL;
}

static const uint8_t mac[6] = {0x02, 0, 0, 0, 1, 1};

static void make_frame(uint8_t *f, uint32_t len)
{
	memcpy(f, mac, 6);
	memcpy(f + 6, (uint8_t[6]){0x02, 0, 0, 0, 0, 0x99}, 6);
	f[12] = 0x88;
	f[13] = 0xb5;
	for (uint32_t i = 14; i < len; i++)
		f[i] = (uint8_t)i;
}

/* The guest reads what it got and posts again (untimed). */
static void guest_consume(struct vng *g, uint8_t *buf, size_t cap)
{
	struct vng_hdr h;

	while (vng_recv(g, &h, buf, cap) != -EAGAIN)
		;
	vng_refill(g);
}

__attribute__((noreturn)) static void die(const char *what, int rc)
{
	fprintf(stderr, "bench_virtio: %s: %d\n", what, rc);
	exit(1);
}

/* ---- plain: a VMM's own device, no libvdemux ---- */

/* One frame (the timed part; a function of its own so that a profiler can
 * count it alone). */
static void plain_frame(struct vd_vring *vq, uint8_t *ram, struct vd_vring_seg *segs, const uint8_t *tap,
			uint32_t len)
{
	struct vd_vring_chain c;
	uint32_t pos = 0, need = 12 + len, nb = 0;
	uint8_t hdr[12] = {0}, *first = NULL;

	while (pos < need) {
		uint32_t start = pos;

		if (vd_vring_pop(vq, &c, segs, 64) != 1)
			die("plain: no buffer", 0);
		for (uint32_t s = 0; s < c.nseg && pos < need; s++) {
			uint8_t *dst = ram + segs[s].gpa;
			uint32_t n = need - pos < segs[s].len ? need - pos : segs[s].len, d = 0;

			if (pos == 0)
				first = dst;
			if (pos < 12) {
				d = 12 - pos < n ? 12 - pos : n;
				memcpy(dst, hdr + pos, d);
			}
			memcpy(dst + d, tap + pos + d - 12, n - d);
			pos += n;
		}
		vd_vring_push(vq, c.head, pos - start);
		nb++;
	}
	/* num_buffers, in the header at the start of the first buffer */
	memcpy(first + 10, &(uint16_t){(uint16_t)nb}, 2);
}

/* n frames, as they came (one at a time, or n read at once): each copied
 * in, then the used ring published and the interrupt decided once. A
 * function of its own, so that a profiler can count it alone. */
static __attribute__((noinline)) void plain_frames(struct vd_vring *vq, uint8_t *ram,
						   struct vd_vring_seg *segs, const uint8_t *tap,
						   uint32_t len, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		plain_frame(vq, ram, segs, tap, len);
	vd_vring_publish(vq);
	(void)vd_vring_need_notify(vq);
}

static double plain(uint32_t len, uint32_t nframes, uint32_t B, uint32_t burst)
{
	struct guest G = {0};
	struct vng_mem m = {.at = guest_at, .payload = &G};
	struct vng_opts vo = {.mode = VNG_MERGEABLE,
			      .qsize = QSIZE,
			      .features = VD_VIRTIO_F_VERSION_1 | VD_VIRTIO_F_EVENT_IDX |
					  VD_VIRTIO_NET_F_MRG_RXBUF,
			      .mem_size = RAM};
	struct vd_vring *vq;
	struct vd_vring_config rc;
	struct vd_gmem gm;
	struct vd_vring_seg segs[64];
	static uint8_t frame[65536], tap[65536], sink[65600];
	double t = 0;

	G.ram = mmap(NULL, RAM, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (G.ram == MAP_FAILED || vng_init(&G.g, &m, &vo))
		die("plain setup", -1);
	memset(G.ram + G.g.buf_gpa, 0, G.g.buf_len); /* fault it in */
	gm = (struct vd_gmem){.base = G.ram, .size = RAM};
	rc = vng_ring_config(&G.g);
	if (vd_vring_create(&vq, &gm, &rc, NULL))
		die("vring", -1);
	make_frame(frame, len);
	memcpy(tap, frame, len); /* the TAP read, untimed */
	vng_refill(&G.g);
	for (uint32_t k = 0; k < nframes; k += B) {
		uint32_t nb = nframes - k < B ? nframes - k : B;
		double t0 = now();

		for (uint32_t j = 0; j < nb; j += burst)
			plain_frames(vq, G.ram, segs, tap, len, nb - j < burst ? nb - j : burst);
		t += now() - t0;
		guest_consume(&G.g, sink, sizeof(sink));
		vd_vring_enable_kick(vq, true);
	}
	vd_vring_destroy(vq);
	vng_fini(&G.g);
	munmap(G.ram, RAM);
	return t * 1e9 / nframes;
}

/* ---- through libvdemux ---- */

/* n frames through the engine into the guest's waiting buffers, burst at a
 * time, after the kick that gave the buffers (timed with them: the plain
 * device pops its buffers as it copies). Returns the seconds taken. */
static double copy_frames(vdemux_engine *eng, vdemux_vnet_rxq *q, const uint8_t *frame, uint32_t len,
			  uint32_t n, uint32_t burst)
{
	struct vdemux_frame f[32];
	double t0;

	for (uint32_t i = 0; i < burst; i++)
		f[i] = (struct vdemux_frame){.data = frame, .len = len};
	t0 = now();
	vdemux_vnet_rxq_kick(q);
	for (uint32_t j = 0; j < n; j += burst) {
		uint32_t m = n - j < burst ? n - j : burst;

		if (vdemux_rx_burst(eng, f, m) != (int)m)
			die("burst", 0);
	}
	return now() - t0;
}

/* n frames read into pool pages at the big-packet offset (the TAP read:
 * untimed) and flipped, one at a time. Returns the seconds taken. */
static double flip_frames(vdemux_engine *eng, const uint8_t *frame, uint32_t len, uint32_t n)
{
	uint32_t np = (OFF + len + VDEMUX_PAGE_SIZE - 1) / VDEMUX_PAGE_SIZE;
	double t = 0;

	for (uint32_t k = 0; k < n; k++) {
		struct vdemux_rx_buf b[20];
		uint32_t done = 0;
		double t0 = now();

		if (vdemux_rx_alloc(eng, b, np) != (int)np)
			die("alloc", 0);
		t += now() - t0;
		for (uint32_t p = 0; p < np; p++) {
			uint32_t o = p ? 0 : OFF;
			uint32_t m = len - done < VDEMUX_PAGE_SIZE - o ? len - done
								       : VDEMUX_PAGE_SIZE - o;

			memcpy(b[p].data + o, frame + done, m);
			b[p].off = o;
			b[p].len = m;
			b[p].flags = p + 1 < np ? VDEMUX_RXBUF_MORE : 0;
			done += m;
		}
		t0 = now();
		if (vdemux_rx_submit(eng, b, np) != (int)np)
			die("submit", 0);
		t += now() - t0;
	}
	return t;
}

static double engine(uint32_t len, uint32_t nframes, uint32_t B, uint32_t burst, bool flip)
{
	struct guest G = {0};
	struct vng_mem m = {.at = guest_at, .payload = &G};
	uint64_t feat = VD_VIRTIO_F_VERSION_1 | VD_VIRTIO_F_EVENT_IDX |
			(flip ? VD_VIRTIO_F_INDIRECT_DESC : VD_VIRTIO_NET_F_MRG_RXBUF);
	struct vng_opts vo = {.mode = flip ? VNG_BIG : VNG_MERGEABLE,
			      .qsize = QSIZE,
			      .features = feat,
			      .mem_size = RAM};
	struct vdemux_arena_opts ao = VDEMUX_OPTS(vdemux_arena_opts, .npages = RAM_PAGES + 1024,
						  .kind = VDEMUX_ARENA_MEMFD);
	vdemux_arena *arena;
	vdemux_engine *eng;
	struct vdemux_backend *kvm;
	vdemux_vnet_rxq *q;
	static uint8_t frame[65536], sink[65600];
	double t = 0, t0;
	int err;

	G.ram = mmap(NULL, RAM, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (G.ram == MAP_FAILED || vdemux_arena_create(&arena, &ao))
		die("arena", -1);
	struct vdemux_engine_opts eo = VDEMUX_OPTS(vdemux_engine_opts, .arena = arena);
	struct vdemux_kvm_opts ko = VDEMUX_OPTS(vdemux_kvm_opts, .ram_size = RAM, .ram_hva = G.ram);
	if ((err = vdemux_engine_create(&eng, &eo)) || (err = vdemux_kvm_create(&kvm, &ko)) ||
	    (err = vdemux_engine_add_backend(eng, kvm)))
		die("engine", err);
	struct vdemux_vnet_rxq_opts qo = VDEMUX_OPTS(
		vdemux_vnet_rxq_opts, .ram = G.ram, .ram_size = RAM, .backends = &kvm, .n_backends = 1,
		.copy = flip ? VDEMUX_COPY_NEVER : VDEMUX_COPY_ALWAYS);
	if ((err = vdemux_vnet_rxq_create(&q, eng, &qo)))
		die("rxq", err);
	vdemux_l2_vlan_join(vdemux_engine_l2(eng), vdemux_vnet_rxq_vm(q), 1, 0);
	vdemux_l2_add_mac(vdemux_engine_l2(eng), vdemux_vnet_rxq_vm(q), mac, 1);
	if ((err = vng_init(&G.g, &m, &vo)))
		die("guest", err);
	struct vdemux_vnet_ring r = vng_vnet_ring(&G.g);
	if ((err = vdemux_vnet_rxq_start(q, &r)))
		die("start", err);
	/* Fault guest RAM in, as a running guest would have (and as the
	 * plain path does), so that first touches are not counted. */
	memset(G.ram + G.g.buf_gpa, 0, G.g.buf_len);
	make_frame(frame, len);
	vng_refill(&G.g);
	vdemux_vnet_rxq_kick(q);
	for (uint32_t k = 0; k < nframes; k += B) {
		uint32_t nb = nframes - k < B ? nframes - k : B;

		t += flip ? flip_frames(eng, frame, len, nb) : copy_frames(eng, q, frame, len, nb, burst);
		guest_consume(&G.g, sink, sizeof(sink));
		t0 = now();
		vdemux_vnet_rxq_kick(q);
		if (flip)
			t += now() - t0;
	}
	struct vdemux_vnet_rxq_stats qs;
	vdemux_vnet_rxq_stats(q, &qs, sizeof(qs));
	if (qs.frames != nframes || (flip ? qs.flipped : qs.copied) != nframes)
		die("not every frame delivered as asked", (int)qs.frames);
	vdemux_vnet_rxq_destroy(q);
	vng_fini(&G.g);
	vdemux_engine_destroy(eng);
	munmap(G.ram, RAM);
	vdemux_arena_destroy(arena);
	return t * 1e9 / nframes;
}

/* Frames that arrive back to back, between two refills of the guest: as
 * many as three quarters of the ring's buffers hold, at most 32 (its mergeable
 * buffers are 1536 bytes; a big-packet chain takes one head a frame). */
static uint32_t batch_of(uint32_t len)
{
	uint32_t per = (12 + len + 1535) / 1536, b = QSIZE / 4 * 3 / per;

	return b < 1 ? 1 : b > 32 ? 32 : b;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	static const uint32_t sizes[] = {64, 1500, 9000, 65536};
	uint32_t nframes = 2000, rounds = 3, only = 0, burst = 1;
	const char *modes = "pcf";
	int opt;

	while ((opt = getopt(argc, argv, "n:r:s:m:b:h")) != -1) {
		if (opt == 'n')
			nframes = (uint32_t)atoi(optarg);
		else if (opt == 'r')
			rounds = (uint32_t)atoi(optarg);
		else if (opt == 's')
			only = (uint32_t)atoi(optarg);
		else if (opt == 'm')
			modes = optarg;
		else if (opt == 'b')
			burst = (uint32_t)atoi(optarg);
		else {
			fprintf(stderr,
				"usage: %s [-n FRAMES] [-r ROUNDS] [-s BYTES] [-m pcf] [-b BURST]\n",
				argv[0]);
			return 2;
		}
	}
	if (!nframes || !rounds || rounds > 15 || !burst || burst > 32)
		return 2;
	printf("virtio-net receive, VMM side, ns per frame (median of %u rounds of %u frames, "
	       "%u a call)\n",
	       rounds, nframes, burst);
	printf("%-6s %12s %12s %12s %10s %10s\n", "bytes", "plain", "vdemux-copy", "vdemux-flip",
	       "copy/plain", "flip/plain");
	for (unsigned s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		double p[15], c[15], f[15];
		uint32_t n = sizes[s] > 9000 ? nframes / 4 : nframes, B = batch_of(sizes[s]);

		if (only && sizes[s] != only)
			continue;

		/* Interleaved, so that the three share the machine's noise. */
		for (uint32_t r = 0; r < rounds; r++) {
			p[r] = strchr(modes, 'p') ? plain(sizes[s], n, B, burst) : 0;
			c[r] = strchr(modes, 'c') ? engine(sizes[s], n, B, burst, false) : 0;
			f[r] = strchr(modes, 'f') ? engine(sizes[s], n, B, 1, true) : 0;
		}
		qsort(p, rounds, sizeof(double), cmp);
		qsort(c, rounds, sizeof(double), cmp);
		qsort(f, rounds, sizeof(double), cmp);
		printf("%-6u %12.0f %12.0f %12.0f %10.2f %10.2f\n", sizes[s], p[rounds / 2],
		       c[rounds / 2], f[rounds / 2], c[rounds / 2] / p[rounds / 2],
		       f[rounds / 2] / p[rounds / 2]);
	}
	return 0;
}

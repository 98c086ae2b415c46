/*
 * Fuzz target: a virtio-net receive queue on the engine (include/vdemux/
 * virtio_net.h) with a guest that is a simulated Linux driver
 * (tests/support/vnet_guest.c) until the input makes it hostile: any byte
 * of guest memory rewritten between two calls, rings included.
 *
 * Input: 4 header bytes (layout, queue size, features, copy policy), then
 * operations of 4 bytes until the input ends: the guest refills, the guest
 * reads what it got, a kick, frames through vdemux_rx_burst or the
 * zero-copy pair, the guest scribbling over its memory (its rings most
 * often), a device reset, a stop and restart.
 *
 * Guest RAM is kept by the KVM backend over a range with an inaccessible
 * page on each side: a write outside guest RAM faults. After every step:
 * vdemux_engine_check() (every page in one state, FREE pages zeroed, each
 * assigned page at one GPA of one VM, the backend's table as the engine
 * says, the pool conserved); a second VM, on the simulated MMU, receives
 * every broadcast frame too and must read back exactly what was sent (no
 * byte of another VM's frame, no page lost); the guest may read garbage
 * from a ring it wrecked, but a frame it reads whole must be one that was
 * sent, byte for byte; once the queue says the ring is broken, it writes
 * nothing more to the used ring and sends no interrupt until a stop.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <vdemux/sys/backend.h>
#include <vdemux/vdemux.h>

#include "seqframe.h"
#include "vnet_guest.h"
#include "input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define PG 4096u
#define RAM_PAGES 64u
#define RAM ((uint64_t)RAM_PAGES * PG)
#define MAXF 20000u

#define CHECK(c)                                                                          \
	do {                                                                              \
		if (!(c)) {                                                               \
			fprintf(stderr, "vnet_fuzzer: %s:%d: %s\n", __FILE__, __LINE__, #c); \
			abort();                                                          \
		}                                                                         \
	} while (0)

struct world {
	vdemux_arena *arena;
	vdemux_engine *eng;
	uint8_t *map;  /* guard page, RAM, guard page */
	uint8_t *ram;
	struct vdemux_backend *kvm, *sim;
	vdemux_vnet_rxq *q;
	vdemux_vm_id other;
	struct vng g;
	struct vng_opts vo;
	uint64_t features;
	bool started;
	bool scribbled; /* the guest wrote into its buffers' memory */
	uint32_t seq;
	bool broken;    /* the queue said the ring is broken, as of used_snap */
	uint64_t irq_snap;
	uint8_t used_snap[VD_VRING_USED_BYTES(64)];
};

static const uint8_t mac_q[6] = {0x02, 0, 0, 0, 1, 1};
static const uint8_t mac_o[6] = {0x02, 0, 0, 0, 1, 2};
static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

static uint8_t *guest_at(void *payload, uint64_t gpa, uint64_t len)
{
	struct world *w = payload;

	return gpa <= RAM && len <= RAM - gpa ? w->ram + gpa : NULL;
}

/* A frame read back whole must be one that was sent to this reader,
 * byte for byte: never another VM's. (Unless the reader scribbled over its
 * own buffers: then it may read what it wrote.) */
static void check_frame(const uint8_t *f, int n, const uint8_t *mine, bool scribbled)
{
	uint32_t seq, len;

	if (n < (int)SEQFRAME_HDR || scribbled)
		return; /* a wrecked ring can hand the guest anything short */
	seqframe_fields(f, &seq, &len);
	if ((uint32_t)n != len || f[12] != 0x88 || f[13] != 0xb5)
		return;
	CHECK(!memcmp(f, mine, 6) || !memcmp(f, bcast, 6));
	CHECK(seqframe_first_bad(f, seq, len) == len);
}

static void check(struct world *w)
{
	char msg[256];

	if (vdemux_engine_check(w->eng, msg, sizeof(msg))) {
		fprintf(stderr, "vnet_fuzzer: engine check: %s\n", msg);
		abort();
	}
}

/* A broken ring is served no more: from the step that found it until a
 * stop, the queue writes nothing to the used ring and sends no interrupt.
 * (The guest may scribble there itself: what it wrote is the new state.) */
static void check_broken(struct world *w, bool scribbled_now)
{
	struct vdemux_vnet_rxq_stats s;
	size_t n = VD_VRING_USED_BYTES(w->vo.qsize);
	const uint8_t *used = w->ram + w->g.used_gpa;

	if (vdemux_vnet_rxq_needs_reset(w->q) != 1) {
		w->broken = false;
		return;
	}
	CHECK(vdemux_vnet_rxq_stats(w->q, &s, sizeof(s)) == 0);
	CHECK(n <= sizeof(w->used_snap));
	if (w->broken && !scribbled_now) {
		CHECK(!memcmp(w->used_snap, used, n));
		CHECK(s.interrupts == w->irq_snap);
	}
	w->broken = true;
	memcpy(w->used_snap, used, n);
	w->irq_snap = s.interrupts;
}

static void start(struct world *w)
{
	struct vd_vring_config rc = vng_ring_config(&w->g);
	struct vdemux_vnet_ring r = VDEMUX_OPTS(vdemux_vnet_ring, .desc_gpa = rc.desc_gpa,
						.avail_gpa = rc.avail_gpa, .used_gpa = rc.used_gpa,
						.size = rc.size, .features = w->features);

	w->started = vdemux_vnet_rxq_start(w->q, &r) == 0;
}

static void setup(struct world *w, struct in *in)
{
	unsigned layout = next(in) % 3, qs = next(in) % 6, fb = next(in), pol = next(in) % 3;
	static const enum vdemux_copy_policy pols[3] = {VDEMUX_COPY_NEVER, VDEMUX_COPY_ALWAYS,
							 VDEMUX_COPY_THRESHOLD};
	struct vdemux_arena_opts ao = VDEMUX_OPTS(vdemux_arena_opts, .npages = RAM_PAGES + 16 + 64,
						  .kind = VDEMUX_ARENA_MEMFD);

	CHECK(vdemux_arena_create(&w->arena, &ao) == 0);
	struct vdemux_engine_opts eo = VDEMUX_OPTS(vdemux_engine_opts, .arena = w->arena, .max_frame = MAXF);
	CHECK(vdemux_engine_create(&w->eng, &eo) == 0);
	w->map = mmap(NULL, RAM + 2 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(w->map != MAP_FAILED);
	w->ram = w->map + PG;
	struct vdemux_kvm_opts ko = VDEMUX_OPTS(vdemux_kvm_opts, .ram_size = RAM, .ram_hva = w->ram);
	CHECK(vdemux_kvm_create(&w->kvm, &ko) == 0);
	CHECK(vdemux_engine_add_backend(w->eng, w->kvm) == 0);
	struct vdemux_vnet_rxq_opts qo = VDEMUX_OPTS(vdemux_vnet_rxq_opts, .ram = w->ram, .ram_size = RAM,
						     .backends = &w->kvm, .n_backends = 1,
						     .copy = pols[pol], .copy_threshold = 512);
	CHECK(vdemux_vnet_rxq_create(&w->q, w->eng, &qo) == 0);
	/* A second VM on the simulated MMU: broadcast frames go to both. */
	CHECK(vdemux_sim_create(&w->sim, NULL) == 0);
	CHECK(vdemux_engine_add_backend(w->eng, w->sim) == 0);
	struct vdemux_vm_opts vo = VDEMUX_OPTS(vdemux_vm_opts, .rx_base = 0x100000, .rx_pages = 8,
					       .backends = &w->sim, .n_backends = 1);
	CHECK(vdemux_vm_add(w->eng, &w->other, &vo) == 0);
	vdemux_l2 *l2 = vdemux_engine_l2(w->eng);
	CHECK(vdemux_l2_vlan_join(l2, vdemux_vnet_rxq_vm(w->q), 1, 0) == 0);
	CHECK(vdemux_l2_add_mac(l2, vdemux_vnet_rxq_vm(w->q), mac_q, 1) == 0);
	CHECK(vdemux_l2_vlan_join(l2, w->other, 1, 0) == 0);
	CHECK(vdemux_l2_add_mac(l2, w->other, mac_o, 1) == 0);
	for (uint32_t s = 0; s < 8; s++) {
		uint64_t g = 0x100000 + (uint64_t)s * PG;

		CHECK(vdemux_vm_post_rx(w->eng, w->other, &g, 1) == 1);
	}

	w->features = VD_VIRTIO_F_VERSION_1 * !!(fb & 1) | VD_VIRTIO_F_EVENT_IDX * !!(fb & 2) |
		      VD_VIRTIO_F_INDIRECT_DESC * !!(fb & 4);
	if (layout == 0)
		w->features |= VD_VIRTIO_NET_F_MRG_RXBUF;
	w->vo = (struct vng_opts){.mode = layout == 0 ? VNG_MERGEABLE : layout == 1 ? VNG_BIG : VNG_SMALL,
				  .qsize = 2u << qs, .features = w->features, .mem_size = RAM,
				  .big_frags = 4};
	struct vng_mem m = {.at = guest_at, .payload = w};
	CHECK(vng_init(&w->g, &m, &w->vo) == 0);
	start(w);
}

static void teardown(struct world *w)
{
	check(w);
	if (getenv("VDEMUX_FUZZ_TRACE")) {
		struct vdemux_vnet_rxq_stats s;

		vdemux_vnet_rxq_stats(w->q, &s, sizeof(s));
		fprintf(stderr, "buffers %llu page_buffers %llu frames %llu flipped %llu copied %llu skipped %llu\n",
			(unsigned long long)s.buffers, (unsigned long long)s.page_buffers,
			(unsigned long long)s.frames, (unsigned long long)s.flipped,
			(unsigned long long)s.copied, (unsigned long long)s.skipped);
	}
	vdemux_vnet_rxq_destroy(w->q);
	check(w);
	vng_fini(&w->g);
	vdemux_engine_destroy(w->eng);
	munmap(w->map, RAM + 2 * PG);
	vdemux_arena_destroy(w->arena);
}

/* The other VM reads back what it got through its own table: each frame
 * whole, as sent. Then posts the buffers again. */
static void other_reads(struct world *w)
{
	struct vdemux_completion c[16];
	static uint8_t page[PG];
	int n;

	while ((n = vdemux_vm_poll(w->eng, w->other, c, 16)) > 0) {
		for (int k = 0; k < n; k++) {
			if (vdemux_sim_read(w->sim, w->other, c[k].gpa, page, PG) == 0 &&
			    !(c[k].flags & VDEMUX_CPL_MORE))
				check_frame(page, (int)c[k].len, mac_o, false);
			vdemux_vm_post_rx(w->eng, w->other, &c[k].gpa, 1);
		}
	}
}

static void frames(struct world *w, struct in *in, unsigned a, unsigned b)
{
	static uint8_t buf[MAXF];
	uint32_t len = 14 + (((a << 8) | b) * 7u) % (MAXF - 14);
	const uint8_t *dst = (a & 3) == 0 ? bcast : (a & 3) == 1 ? mac_o : mac_q;
	struct vdemux_rx_buf rb[8];
	uint32_t off = next(in) & 1 ? 32 : 0, np = (off + len + PG - 1) / PG, done = 0;

	seqframe_make(buf, dst, w->seq++, len);
	if (!(a & 4)) {
		struct vdemux_frame f = {.data = buf, .len = len};

		(void)vdemux_rx_burst(w->eng, &f, 1); /* -ENOBUFS: pool low */
		return;
	}
	if (vdemux_rx_alloc(w->eng, rb, np) != (int)np)
		return; /* pool low: nothing lent stays lent (checked) */
	for (uint32_t p = 0; p < np; p++) {
		uint32_t o = p ? 0 : off, n = len - done < PG - o ? len - done : PG - o;

		memcpy(rb[p].data + o, buf + done, n);
		rb[p].off = o;
		rb[p].len = n;
		rb[p].flags = p + 1 < np ? VDEMUX_RXBUF_MORE : 0;
		done += n;
	}
	CHECK(vdemux_rx_submit(w->eng, rb, np) == (int)np);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t rx[MAXF + 64];
	struct in in = {data, size};
	struct world w;
	unsigned steps = 0;

	memset(&w, 0, sizeof(w));
	setup(&w, &in);
	check(&w);
	while (in.n && steps++ < 300) {
		unsigned op = next(&in) % 9, a = next(&in), b = next(&in), c = next(&in);
		struct vng_hdr h;
		int n;

		switch (op) {
		case 0:
			vng_refill(&w.g);
			break;
		case 1:
			while ((n = vng_recv(&w.g, &h, rx, sizeof(rx))) != -EAGAIN && n != -EIO)
				if (n > 0)
					check_frame(rx, n < (int)sizeof(rx) ? n : 0, mac_q, w.scribbled);
			break;
		case 2:
			n = vdemux_vnet_rxq_kick(w.q);
			CHECK(n >= 0 || n == -EIO || n == -ENOTCONN);
			break;
		case 3:
		case 4:
			frames(&w, &in, a, b);
			break;
		case 5: {
			/* The guest rewrites a byte: most often in its rings. */
			uint64_t span = (a & 1) ? w.g.buf_gpa : RAM;
			uint64_t at = (((uint64_t)b << 16) | ((uint64_t)c << 8) | a) % span;

			w.ram[at] = (uint8_t)(b ^ c);
			w.scribbled |= at >= w.g.buf_gpa;
			if (getenv("VDEMUX_FUZZ_TRACE"))
				fprintf(stderr, "scribble at 0x%llx (buffers from 0x%llx)\n",
					(unsigned long long)at, (unsigned long long)w.g.buf_gpa);
			break;
		}
		case 6:
			other_reads(&w);
			break;
		case 7:
			/* Device reset, then the driver starts over. */
			CHECK(vdemux_vnet_rxq_stop(w.q) == 0);
			vng_fini(&w.g);
			{
				struct vng_mem m = {.at = guest_at, .payload = &w};

				CHECK(vng_init(&w.g, &m, &w.vo) == 0);
			}
			start(&w);
			break;
		default:
			CHECK(vdemux_vnet_rxq_needs_reset(w.q) >= 0);
			break;
		}
		check(&w);
		check_broken(&w, op == 5);
	}
	other_reads(&w);
	teardown(&w);
	return 0;
}

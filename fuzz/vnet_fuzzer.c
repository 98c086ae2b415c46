/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: a virtio-net receive queue on the engine (include/vdemux/
 * virtio_net.h) with a guest that is a simulated Linux driver
 * (tests/support/vnet_guest.c) until the input makes it hostile: any byte
 * of guest memory rewritten between two calls, rings included.
 *
 * Input: 4 header bytes (layout, queue size, features (bit 3:
 * GUEST_CSUM), copy policy), then operations of 4 bytes until the input
 * ends: the guest refills, the guest reads what it got, a kick, frames
 * through vdemux_rx_burst or the zero-copy pair (some with a virtio-net
 * header in front, DATA_VALID: the header the guest reads must say it,
 * or nothing without GUEST_CSUM), the guest scribbling over its memory
 * (its rings most often), a device reset, a stop and restart.
 *
 * Guest RAM is kept by the KVM backend over a range with an inaccessible
 * page on each side: a write outside guest RAM faults. After every step
 * (at the limits, every 8th step and the last: the check walks all of guest
 * RAM, up to half a million pages there):
 * vdemux_engine_check() (every page in one state, FREE pages zeroed, each
 * assigned page at one GPA of one VM, the backend's table as the engine
 * says, the pool conserved); a second VM, on the simulated MMU, receives
 * every broadcast frame too and must read back exactly what was sent (no
 * byte of another VM's frame, no page lost); the guest may read garbage
 * from a ring it wrecked, but a frame it reads whole must be one that was
 * sent, byte for byte; once the queue says the ring is broken, it writes
 * nothing more to the used ring and sends no interrupt until a stop.
 *
 * A layout byte with bit 7 set runs at the limits: queues of 2 to 32768
 * entries (guest RAM grows to hold their rings), big-packet chains of 17
 * (Linux's most), 30, 31, 32 or 34 pages (the engine flips at most 32),
 * max_frame 65536 or 65540, frames of max_frame - 1 and max_frame bytes
 * among others, zero-copy chains of up to 18 buffers from offset 0, 12, 32
 * or 4095, and (operation 9) a guest that posts, behind its driver's back,
 * chains of 63, 64, 65 or queue-size descriptors, direct or indirect.
 */
#include <endian.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vdemux/sys/backend.h>
#include <vdemux/vdemux.h>

#include "harness.h"
#include "seqframe.h"
#include "vnet_guest.h"
#include "vq_desc.h"
#include "input.h"

#define RAM_PAGES 64u
#define MAXF 20000u
#define F_GUEST_CSUM (1ull << 1)
#define LONGEST (65536u + 4u)
/* Buffers of the longest chain: 1 byte at offset 4095, 16 pages, 3 bytes. */
#define CHAIN_L ((PG - 1 + LONGEST + PG - 1) / PG)
/* Limits mode: guest RAM past the rings and the driver's indirect slots. */
#define BUF_PAGES_L 320u

struct world {
	vdemux_arena *arena;
	vdemux_engine *eng;
	struct guarded mem;
	uint8_t *ram;
	uint64_t ram_size;
	bool limits;
	uint32_t max_frame;
	struct vdemux_backend *kvm, *sim;
	vdemux_vnet_rxq *q;
	vdemux_vm_id other;
	struct vng g;
	struct vng_opts vo;
	uint64_t features;
	bool started;
	bool scribbled; /* the guest wrote into its buffers' memory */
	uint32_t seq;
	bool broken; /* the queue said the ring is broken, as of used_snap */
	uint64_t irq_snap;
};

static const uint8_t mac_q[6] = {0x02, 0, 0, 0, 1, 1};
static const uint8_t mac_o[6] = {0x02, 0, 0, 0, 1, 2};
static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

static uint8_t *guest_at(void *payload, uint64_t gpa, uint64_t len)
{
	struct world *w = payload;

	return gpa <= w->ram_size && len <= w->ram_size - gpa ? w->ram + gpa : NULL;
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
	static uint8_t used_snap[VD_VRING_USED_BYTES(VD_VRING_MAX_SIZE)];
	struct vdemux_vnet_rxq_stats s;
	size_t n = VD_VRING_USED_BYTES(w->vo.qsize);
	const uint8_t *used = w->ram + w->g.used_gpa;

	if (vdemux_vnet_rxq_needs_reset(w->q) != 1) {
		w->broken = false;
		return;
	}
	CHECK(vdemux_vnet_rxq_stats(w->q, &s, sizeof(s)) == 0);
	CHECK(n <= sizeof(used_snap));
	if (w->broken && !scribbled_now) {
		CHECK(!memcmp(used_snap, used, n));
		CHECK(s.interrupts == w->irq_snap);
	}
	w->broken = true;
	memcpy(used_snap, used, n);
	w->irq_snap = s.interrupts;
}

static void start(struct world *w)
{
	struct vdemux_vnet_ring r = vng_vnet_ring(&w->g);

	w->started = vdemux_vnet_rxq_start(w->q, &r) == 0;
}

/* Guest RAM for the rings of a queue of @qsize as vng lays them out (from
 * 0x1000: desc, avail, used aligned to 4096, 512 bytes of indirect slots per
 * entry, buffers from a 32 KiB boundary), and BUF_PAGES_L of buffers. */
static uint64_t ram_for(uint32_t qsize)
{
	uint64_t end = PG + 16ull * qsize + 6 + 2ull * qsize;

	end = (end + PG - 1) / PG * PG + 6 + 8ull * qsize;
	end = (end + PG - 1) / PG * PG + 512ull * qsize;
	end = (end + 32767) / 32768 * 32768;
	return end + (uint64_t)BUF_PAGES_L * PG;
}

static void setup(struct world *w, struct in *in)
{
	unsigned lb = next(in), layout, qs = next(in), fb = next(in), pol = next(in) % 3;
	static const enum vdemux_copy_policy pols[3] = {VDEMUX_COPY_NEVER, VDEMUX_COPY_ALWAYS,
							VDEMUX_COPY_THRESHOLD};
	static const uint32_t frags[5] = {17, 30, 31, 32, 34};
	uint32_t qsize, big_frags = 4;

	w->limits = lb & 0x80;
	layout = (w->limits ? lb & 0x7f : lb) % 3;
	if (w->limits) {
		qsize = 2u << (qs % 15);
		big_frags = frags[((fb >> 3) & 7) % 5];
		w->max_frame = fb & 0x40 ? LONGEST : 65536;
		w->ram_size = ram_for(qsize);
	} else {
		qsize = 2u << (qs % 6);
		w->max_frame = MAXF;
		w->ram_size = (uint64_t)RAM_PAGES * PG;
	}
	uint32_t ram_pages = (uint32_t)(w->ram_size / PG);
	struct vdemux_arena_opts ao = VDEMUX_OPTS(vdemux_arena_opts, .npages = ram_pages + 16 + 64,
						  .kind = VDEMUX_ARENA_MEMFD);

	if (w->limits)
		ao.npages += 2 * CHAIN_L;
	CHECK(vdemux_arena_create(&w->arena, &ao) == 0);
	struct vdemux_engine_opts eo = VDEMUX_OPTS(vdemux_engine_opts, .arena = w->arena,
						   .max_frame = w->max_frame);
	CHECK(vdemux_engine_create(&w->eng, &eo) == 0);
	w->ram = guarded_map(&w->mem, w->ram_size, PROT_NONE);
	struct vdemux_kvm_opts ko = VDEMUX_OPTS(vdemux_kvm_opts, .ram_size = w->ram_size,
						.ram_hva = w->ram);
	CHECK(vdemux_kvm_create(&w->kvm, &ko) == 0);
	CHECK(vdemux_engine_add_backend(w->eng, w->kvm) == 0);
	struct vdemux_vnet_rxq_opts qo = VDEMUX_OPTS(
		vdemux_vnet_rxq_opts, .ram = w->ram, .ram_size = w->ram_size, .backends = &w->kvm,
		.n_backends = 1, .copy = pols[pol], .copy_threshold = 512);
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
		      VD_VIRTIO_F_INDIRECT_DESC * !!(fb & 4) | F_GUEST_CSUM * !!(fb & 8);
	if (layout == 0)
		w->features |= VD_VIRTIO_NET_F_MRG_RXBUF;
	w->vo = (struct vng_opts){.mode = layout == 0	? VNG_MERGEABLE
					  : layout == 1 ? VNG_BIG
							: VNG_SMALL,
				  .qsize = qsize,
				  .features = w->features,
				  .mem_size = w->ram_size,
				  .big_frags = big_frags};
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
		fprintf(stderr,
			"buffers %llu page_buffers %llu frames %llu flipped %llu copied %llu skipped %llu ring_errors %llu\n",
			(unsigned long long)s.buffers, (unsigned long long)s.page_buffers,
			(unsigned long long)s.frames, (unsigned long long)s.flipped,
			(unsigned long long)s.copied, (unsigned long long)s.skipped,
			(unsigned long long)s.ring_errors);
	}
	vdemux_vnet_rxq_destroy(w->q);
	check(w);
	vng_fini(&w->g);
	vdemux_engine_destroy(w->eng);
	guarded_unmap(&w->mem);
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

/* The header a guest read: what the frames carry (DATA_VALID, for a guest
 * with GUEST_CSUM) or nothing. */
static void check_hdr(const struct world *w, const struct vng_hdr *h)
{
	if (w->scribbled)
		return;
	CHECK(h->gso_type == 0 && h->gso_size == 0 && h->csum_start == 0 && h->csum_offset == 0);
	CHECK(h->flags == 0 || (h->flags == 2 && (w->features & F_GUEST_CSUM)));
}

/* Limits mode: max_frame (a % 8 < 2), max_frame - 1 (2), any length. */
static uint32_t frame_len(const struct world *w, unsigned a, unsigned b)
{
	uint32_t any = 14 + (((a << 8) | b) * 7u) % (w->max_frame - 14);

	if (!w->limits)
		return any;
	return (a >> 3) % 8 < 2 ? w->max_frame : (a >> 3) % 8 == 2 ? w->max_frame - 1 : any;
}

/* A frame of len bytes, with a virtio-net header in front (DATA_VALID, so
 * that every guest gets the frame as sent) when a & 8. */
static void frames(struct world *w, struct in *in, unsigned a, unsigned b)
{
	static uint8_t hbuf[10 + LONGEST];
	uint8_t *buf = hbuf + 10;
	bool hdr = a & 8;
	static const uint32_t offs[4] = {0, 32, PG - 1, 12};
	uint32_t len = frame_len(w, a, b);
	const uint8_t *dst = (a & 3) == 0 ? bcast : (a & 3) == 1 ? mac_o : mac_q;
	struct vdemux_rx_buf rb[CHAIN_L];
	unsigned osel = next(in);
	uint32_t off = w->limits ? offs[osel % 4] : osel & 1 ? 32 : 0;
	uint32_t np = (off + len + PG - 1) / PG, done = 0;

	seqframe_make(buf, dst, w->seq++, len);
	memset(hbuf, 0, 10);
	hbuf[0] = 2; /* DATA_VALID */
	if (!(a & 4)) {
		struct vdemux_frame f = {.data = hdr ? hbuf : buf,
					 .len = len + (hdr ? 10 : 0),
					 .flags = hdr ? VDEMUX_FRAME_VNET_HDR(10) : 0};

		(void)vdemux_rx_burst(w->eng, &f, 1); /* -ENOBUFS: pool low */
		return;
	}
	int got = vdemux_rx_alloc(w->eng, rb, np);

	if (got != (int)np) {
		/* pool low: (limits mode) what was lent is given back */
		if (w->limits && got > 0)
			CHECK(vdemux_rx_abort(w->eng, rb, (unsigned)got) == got);
		return;
	}
	for (uint32_t p = 0; p < np; p++) {
		uint32_t o = p ? 0 : off, n = len - done < PG - o ? len - done : PG - o;

		memcpy(rb[p].data + o, buf + done, n);
		rb[p].off = o;
		rb[p].len = n;
		rb[p].flags = p + 1 < np ? VDEMUX_RXBUF_MORE : 0;
		done += n;
	}
	if (hdr && off >= 10) {
		/* The header just before the frame, in the lent page. */
		memcpy(rb[0].data + off - 10, hbuf, 10);
		rb[0].off -= 10;
		rb[0].len += 10;
		rb[0].flags |= VDEMUX_RXBUF_VNET_HDR(10);
	}
	CHECK(vdemux_rx_submit(w->eng, rb, np) == (int)np);
}

/* Limits mode: the guest, behind its driver's back, makes available a chain
 * of 63, 64 (the most a receive queue takes), 65 or queue-size descriptors
 * of 64 bytes from ring entry c, direct (a even) or through an indirect
 * table (a odd) written over its own buffers. */
static void hostile_chain(struct world *w, unsigned a, unsigned b, unsigned c)
{
	uint32_t qs = w->vo.qsize, lens[4] = {63, 64, 65, qs}, n = lens[b % 4];
	uint64_t buf = w->g.buf_gpa, table = buf + 64ull * 128;
	uint16_t head = (uint16_t)(c % qs);

	if (!w->started || table + 16ull * n > w->ram_size)
		return;
	for (uint32_t k = 0; k < n; k++) {
		uint16_t fl = VD_VRING_DESC_F_WRITE | (k + 1 < n ? VD_VRING_DESC_F_NEXT : 0);
		uint64_t at = buf + 64ull * (k % 128);

		if (a & 1) {
			vq_desc_put(w->ram + table + 16ull * k, at, 64, fl, (uint16_t)(k + 1));
		} else {
			vng_write_desc(&w->g, (uint16_t)((head + k) % qs), at, 64, fl,
				       (uint16_t)((head + k + 1) % qs));
		}
	}
	if (a & 1)
		vng_write_desc(&w->g, head, table, 16u * n, VD_VRING_DESC_F_INDIRECT, 0);
	vng_write_avail(&w->g, w->g.avail_idx_shadow, head);
	w->g.avail_idx_shadow++;
	vng_write_avail_idx(&w->g, w->g.avail_idx_shadow);
	w->scribbled = true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t rx[LONGEST + 64];
	struct in in = {data, size};
	struct world w;
	unsigned steps = 0;

	memset(&w, 0, sizeof(w));
	setup(&w, &in);
	check(&w);
	while (in.n && steps++ < 300) {
		unsigned op = next(&in) % (w.limits ? 10 : 9), a = next(&in), b = next(&in),
			 c = next(&in);
		struct vng_hdr h;
		int n;

		switch (op) {
		case 0: vng_refill(&w.g); break;
		case 1:
			while ((n = vng_recv(&w.g, &h, rx, sizeof(rx))) != -EAGAIN && n != -EIO)
				if (n > 0) {
					check_frame(rx, n < (int)sizeof(rx) ? n : 0, mac_q, w.scribbled);
					check_hdr(&w, &h);
				}
			break;
		case 2:
			n = vdemux_vnet_rxq_kick(w.q);
			CHECK(n >= 0 || n == -EIO || n == -ENOTCONN);
			break;
		case 3:
		case 4: frames(&w, &in, a, b); break;
		case 5: {
			/* The guest rewrites a byte: most often in its rings. */
			uint64_t span = (a & 1) ? w.g.buf_gpa : w.ram_size;
			uint64_t at = (((uint64_t)b << 16) | ((uint64_t)c << 8) | a) % span;

			w.ram[at] = (uint8_t)(b ^ c);
			w.scribbled |= at >= w.g.buf_gpa;
			if (getenv("VDEMUX_FUZZ_TRACE"))
				fprintf(stderr, "scribble at 0x%llx (buffers from 0x%llx)\n",
					(unsigned long long)at, (unsigned long long)w.g.buf_gpa);
			break;
		}
		case 6: other_reads(&w); break;
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
		case 9: hostile_chain(&w, a, b, c); break;
		default: CHECK(vdemux_vnet_rxq_needs_reset(w.q) >= 0); break;
		}
		/* At the limits a guest RAM of up to half a million pages makes
		 * the engine check dear: every 8th step there, and at the end. */
		if (!w.limits || steps % 8 == 0)
			check(&w);
		check_broken(&w, op == 5);
	}
	check(&w);
	other_reads(&w);
	teardown(&w);
	return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the engine's whole lifecycle driven by the input, with a
 * backend that fails where the input says, and the invariants checked after
 * every call.
 *
 * Each input byte picks an operation (post, release, a burst of frames, the
 * zero-copy path, guests reading what they got, arming a backend failure,
 * removing and re-adding a VM, release requests), later bytes its
 * arguments. After every operation vdemux_engine_check() must pass; every
 * completion a guest reads must carry a frame meant for it (the last byte of
 * each frame names its recipient: a VM, or 0xbb for broadcast), and in a
 * flipped page every byte past the frame must be zero. Any violation aborts.
 *
 * An input that starts with the two bytes LIMITS_MAGIC runs the same
 * operations at the engine's limits: max_frame 65536 or 65540 (the next
 * byte), windows of 40 pages, a VM whose quota is one longest delivery, a
 * VM that gets a VLAN tag pushed (65544-byte deliveries); frames of
 * max_frame - 1, max_frame and max_frame + 1 bytes, bursts of up to 8 of
 * them (more than the pool), zero-copy chains of up to 18 buffers from any
 * offset (4095: a 1-byte first buffer), posts of whole windows and past
 * them.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vdemux/sys/backend.h>
#include <vdemux/vdemux.h>

#include "fault.h" /* tests/support: the fault-injecting backend wrapper */
#include "input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NVMS 3
#define WIN 8
#define BASE 0x10000u
#define BCAST_MARK 0xbb
#define PG VDEMUX_PAGE_SIZE

/* The limits mode (see above). */
#define LIMITS_MAGIC0 0x4c
#define LIMITS_MAGIC1 0x21
#define WIN_L 40u
#define LONGEST (65536u + 4u)
#define BURST_L 8u
/* Buffers of the longest chain: 1 byte at offset 4095, 16 pages, 3 bytes. */
#define CHAIN_L ((PG - 1 + LONGEST + PG - 1) / PG)

struct world {
	bool limits;
	uint32_t win; /* pages of each VM's window */
	uint32_t max_frame;
	vdemux_engine *eng;
	struct vdemux_backend *sim, *sim2;
	struct vt_fault *fail; /* wraps a sim; owned by the engine once registered */
	vdemux_vm_id id[NVMS];
	uint8_t mac[NVMS][6];
	/* limits mode: buffers lent and kept (the pool runs low meanwhile) */
	struct vdemux_rx_buf held[2 * CHAIN_L + 2];
	unsigned nheld;
};

__attribute__((noreturn)) static void die(const char *what, const char *detail)
{
	fprintf(stderr, "engine_fuzzer: %s: %s\n", what, detail);
	abort();
}

static void check(struct world *w, const char *after)
{
	char msg[256];

	if (vdemux_engine_check(w->eng, msg, sizeof(msg)))
		die(after, msg);
}

static void add_vm(struct world *w, int i)
{
	struct vdemux_backend *two[2] = {w->sim2, &w->fail->base};
	struct vdemux_vm_opts o = VDEMUX_OPTS(vdemux_vm_opts, .rx_base = BASE, .rx_pages = w->win);
	vdemux_l2 *l2 = vdemux_engine_l2(w->eng);

	switch (i) {
	case 0: /* eager, flips */
		o.backends = &w->sim;
		o.n_backends = 1;
		break;
	case 1: /* lazy, small frames copied, behind the failing backend */
		o.backends = &two[1];
		o.n_backends = 1;
		o.harvest = VDEMUX_HARVEST_LAZY;
		o.copy = VDEMUX_COPY_THRESHOLD;
		o.copy_threshold = 128;
		break;
	default: /* unpopulated, quota 4 (limits: one longest delivery), two stacked tables */
		o.backends = two;
		o.n_backends = 2;
		o.flags = VDEMUX_VM_F_UNPOPULATED;
		o.quota = w->limits ? (LONGEST + 4 + PG - 1) / PG : 4;
		break;
	}
	w->id[i] = 0;
	if (vdemux_vm_add(w->eng, &w->id[i], &o))
		return; /* a failure injected into the populating map */
	vdemux_l2_vlan_join(l2, w->id[i], 1, 0);
	vdemux_l2_add_mac(l2, w->id[i], w->mac[i], 1);
	if (i == 2) {
		vdemux_l2_vlan_join(l2, w->id[i], 5, VDEMUX_L2_TAGGED);
		vdemux_l2_add_mac(l2, w->id[i], w->mac[i], 5);
	}
	if (i == 1 && w->limits) /* its frames of VLAN 1 get a tag pushed */
		vdemux_l2_vlan_join(l2, w->id[i], 1, VDEMUX_L2_TAGGED);
}

/* Limits mode: GPAs [start, start + n) of the slots 0 .. win + 1 (the last
 * two outside the window), wrapping: whole windows, repeats, misses. */
static unsigned gpa_range(struct world *w, struct in *in, uint64_t *g)
{
	unsigned n = next(in) % (w->win + 2) + 1, start = next(in), mis = next(in);

	for (unsigned k = 0; k < n; k++)
		g[k] = BASE + (uint64_t)((start + k) % (w->win + 2)) * PG;
	if (mis & 0x80) /* one misaligned */
		g[mis % n] += 8;
	return n;
}

/* Limits mode: a frame length at or around a limit, or any. */
static uint32_t limit_len(struct world *w, struct in *in)
{
	unsigned sel = next(in), r = next(in) | (next(in) << 8);

	switch (sel % 8) {
	case 0:
	case 1: return w->max_frame;
	case 2: return w->max_frame - 1;
	case 3: return w->max_frame + 1; /* refused */
	case 4: return 14;
	case 5: return 13; /* refused */
	default: return 14 + (r * 7u) % (w->max_frame - 13);
	}
}

static unsigned gpa_list(struct in *in, uint64_t *g)
{
	unsigned n = next(in) % 4 + 1;

	for (unsigned k = 0; k < n; k++) {
		unsigned b = next(in);

		/* slots 8 and 9 lie outside the window; bit 7 misaligns */
		g[k] = BASE + (uint64_t)(b % 10) * VDEMUX_PAGE_SIZE + ((b & 0x80) ? 8 : 0);
	}
	return n;
}

/* Build a frame for a destination the input picks; its last byte names the
 * recipient. Returns its length. */
static uint32_t make_frame(struct world *w, struct in *in, uint8_t *f)
{
	unsigned d = next(in), lsel = w->limits ? 0 : next(in) | (next(in) << 8);
	uint32_t len = w->limits ? limit_len(w, in) : 14 + lsel % 9000;
	uint8_t mark;

	memset(f, 0x5a, len);
	switch (d % 5) {
	case 0:
	case 1:
	case 2:
		memcpy(f, w->mac[d % 5], 6);
		mark = (uint8_t)(d % 5);
		break;
	case 3:
		memset(f, 0xff, 6);
		mark = BCAST_MARK;
		break;
	default:
		memcpy(f, (uint8_t[6]){0x02, 0, 0, 0, 0, 0x77}, 6); /* nobody */
		mark = 0x77;
	}
	memcpy(f + 6, (uint8_t[6]){0x02, 0, 0, 0, 0xee, 1}, 6);
	if ((d & 0x40 || (w->limits && d & 0xa0)) && len >= 18) {
		/* VLAN 5; or (limits) VLAN 1, or priority-tagged (VID 0) */
		f[12] = 0x81;
		f[13] = 0x00;
		f[14] = w->limits && (d & 0x80) ? 0xa0 : 0;
		f[15] = !w->limits || (d & 0x40) ? 5 : (d & 0x80) ? 0 : 1;
	} else {
		f[12] = 0x88;
		f[13] = 0xb5;
	}
	f[len - 1] = mark;
	if (getenv("VDEMUX_FUZZ_TRACE"))
		fprintf(stderr, "frame len %u mark 0x%02x\n", len, mark);
	return len;
}

static void guests_read(struct world *w)
{
	static uint8_t page[VDEMUX_PAGE_SIZE];
	struct vdemux_completion c[2 * WIN_L];

	for (int i = 0; i < NVMS; i++) {
		int n;

		if (!w->id[i])
			continue;
		n = vdemux_vm_poll(w->eng, w->id[i], c, 2 * w->win);
		for (int k = 0; k < n; k++) {
			struct vdemux_backend *be = i == 0 ? w->sim : w->sim2;
			int rc;

			bool stale = false;

			/* A GPA re-posted and filled again since: only the
			 * newest completion describes what is there now. */
			for (int l = k + 1; l < n; l++)
				stale |= c[l].gpa == c[k].gpa;
			if (stale)
				continue;
			if (i == 1)
				be = w->fail->inner;
			rc = vdemux_sim_read(be, w->id[i], c[k].gpa, page, sizeof(page));
			if (rc == -EFAULT)
				continue; /* re-posted before it was read: a hole now */
			if (rc)
				die("guest read", "failed");
			if (c[k].flags & VDEMUX_CPL_MORE)
				continue;
			if (page[c[k].len - 1] != i && page[c[k].len - 1] != BCAST_MARK) {
				fprintf(stderr,
					"VM %d (id %u) GPA 0x%llx len %u flags %u: last byte 0x%02x\n",
					i, w->id[i], (unsigned long long)c[k].gpa, c[k].len, c[k].flags,
					page[c[k].len - 1]);
				die("guest read", "a frame meant for another VM");
			}
			if (!(c[k].flags & VDEMUX_CPL_COPIED))
				for (uint32_t b = c[k].len; b < sizeof(page); b++)
					if (page[b])
						die("guest read", "non-zero byte past the frame");
		}
	}
}

/* Spoil a valid submit array in one of six ways: an id repeated, an id
 * never lent, an open chain, an offset in a later buffer, an unknown flag,
 * the first frame (of nb0 buffers) continued into the next. */
static void tamper(struct vdemux_rx_buf *b, unsigned nb, unsigned nb0, unsigned kind, uint32_t npages)
{
	switch (kind % 6) {
	case 5: b[nb0 - 1].flags |= VDEMUX_RXBUF_MORE; break;
	case 0: b[nb - 1].id = b[0].id; break;
	case 1: b[nb / 2].id = npages + 5; break;
	case 2: b[nb - 1].flags |= VDEMUX_RXBUF_MORE; break;
	case 3:
		if (nb > 1)
			b[1].off = 1;
		else
			b[0].off = PG;
		break;
	default: b[0].flags |= 0x2; break;
	}
}

/* Limits mode: lend the buffers of up to two frames, each from an offset
 * the input picks (4095 most often: a 1-byte first buffer), of a length at
 * or around max_frame; fill them, chain them, then submit them all in one
 * call, or abort them, or keep them lent (given back at the next of these
 * operations), or submit them spoiled (tamper()). A refused submit leaves
 * them lent: they are aborted. */
static void zero_copy_chains(struct world *w, struct in *in)
{
	static uint8_t f[LONGEST + 8];
	static const uint32_t offs[4] = {PG - 1, 0, PG - 2, 12};
	struct vdemux_rx_buf b[2 * CHAIN_L + 2], orig[2 * CHAIN_L + 2];
	unsigned nf = next(in) % 2 + 1, nb = 0, nb0 = 0, how;
	int rc;

	if (w->nheld && vdemux_rx_abort(w->eng, w->held, w->nheld) != (int)w->nheld)
		die("zero-copy", "kept buffers could not be given back");
	w->nheld = 0;

	for (unsigned k = 0; k < nf; k++) {
		unsigned osel = next(in);
		uint32_t len = make_frame(w, in, f), off = osel & 4 ? osel % PG : offs[osel % 4];
		uint32_t np = (off + len + PG - 1) / PG, done = 0;
		int got;

		if (nb + np > sizeof(b) / sizeof(b[0]))
			break;
		got = vdemux_rx_alloc(w->eng, b + nb, np);
		if (got < (int)np) {
			if (got > 0)
				vdemux_rx_abort(w->eng, b + nb, (unsigned)got);
			break;
		}
		for (uint32_t p = 0; p < np; p++) {
			struct vdemux_rx_buf *x = &b[nb + p];
			uint32_t o = p ? 0 : off, n = len - done < PG - o ? len - done : PG - o;

			memcpy(x->data + o, f + done, n);
			x->off = o;
			x->len = n;
			x->flags = p + 1 < np ? VDEMUX_RXBUF_MORE : 0;
			done += n;
			if (o + n < PG)
				x->data[o + n] = 0xee; /* the device scribbles past it */
		}
		nb += np;
		if (!nb0)
			nb0 = nb;
	}
	if (!nb)
		return;
	how = next(in);
	if (how % 8 == 7) {
		vdemux_rx_abort(w->eng, b, nb);
		return;
	}
	if (how % 8 == 5) {
		memcpy(w->held, b, nb * sizeof(*b));
		w->nheld = nb;
		return;
	}
	memcpy(orig, b, nb * sizeof(*b));
	if (how % 8 == 6)
		tamper(b, nb, nb0, how >> 3, (uint32_t)(2 * WIN_L + 2 * CHAIN_L + 8));
	rc = vdemux_rx_submit(w->eng, b, nb);
	if (rc < 0 && vdemux_rx_abort(w->eng, orig, nb) != (int)nb)
		die("zero-copy", "a refused submit did not leave its buffers lent");
	if (rc >= 0 && rc != (int)nb)
		die("zero-copy", "submit took part of the buffers");
}

/* The engine and its VMs, as the mode says. */
static void setup(struct world *w, struct in *in)
{
	struct vdemux_engine_opts eo = VDEMUX_OPTS(vdemux_engine_opts, .npages = 40, .max_vms = 4,
						   .low_watermark = 6);
	struct vdemux_backend *inner = NULL;

	if (in->n >= 3 && in->p[0] == LIMITS_MAGIC0 && in->p[1] == LIMITS_MAGIC1) {
		next(in);
		next(in);
		w->limits = true;
		w->win = WIN_L;
		w->max_frame = next(in) & 1 ? LONGEST : 65536;
		eo.npages = 2 * WIN_L + 2 * CHAIN_L + 8;
		eo.max_frame = w->max_frame;
	} else {
		w->win = WIN;
		w->max_frame = 65536;
	}
	if (vdemux_engine_create(&w->eng, &eo))
		die("setup", "engine");
	if (vdemux_sim_create(&w->sim, NULL) || vdemux_sim_create(&w->sim2, NULL) ||
	    vdemux_sim_create(&inner, NULL))
		die("setup", "sim");
	w->fail = vt_fault_wrap(inner, true);
	w->fail->base.copy_threshold = 0; /* VM 1 flips every frame */
	if (vdemux_engine_add_backend(w->eng, w->sim) || vdemux_engine_add_backend(w->eng, w->sim2) ||
	    vdemux_engine_add_backend(w->eng, &w->fail->base))
		die("setup", "backends");
	for (int i = 0; i < NVMS; i++) {
		memcpy(w->mac[i], (uint8_t[6]){0x02, 0, 0, 0, 0, (uint8_t)(i + 1)}, 6);
		add_vm(w, i);
	}
	check(w, "setup");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t frames[BURST_L][LONGEST + 8];
	struct in in = {data, size};
	struct world w;
	unsigned steps = 0;

	memset(&w, 0, sizeof(w));
	setup(&w, &in);

	while (in.n && steps++ < 200) {
		unsigned op = next(&in) % 8, v = next(&in) % NVMS;
		uint64_t g[WIN_L + 2];
		struct vdemux_frame fr[BURST_L];
		struct vdemux_rx_buf b[4];
		unsigned n, nth;
		int got;

		switch (op) {
		case 0:
			n = w.limits ? gpa_range(&w, &in, g) : gpa_list(&in, g);
			vdemux_vm_post_rx(w.eng, w.id[v], g, n);
			break;
		case 1:
			n = w.limits ? gpa_range(&w, &in, g) : gpa_list(&in, g);
			vdemux_vm_release(w.eng, w.id[v], g, n);
			break;
		case 2:
			n = next(&in) % (w.limits ? BURST_L : 4) + 1;
			for (unsigned k = 0; k < n; k++)
				fr[k] = (struct vdemux_frame){.data = frames[k],
							      .len = make_frame(&w, &in, frames[k])};
			vdemux_rx_burst(w.eng, fr, n);
			break;
		case 3:
			if (w.limits) {
				zero_copy_chains(&w, &in);
				break;
			}
			got = vdemux_rx_alloc(w.eng, b, next(&in) % 4 + 1);
			for (int k = 0; k < got; k++) {
				uint32_t len = make_frame(&w, &in, frames[0]);

				b[k].len = len > VDEMUX_PAGE_SIZE ? VDEMUX_PAGE_SIZE : len;
				memcpy(b[k].data, frames[0], b[k].len);
				b[k].data[b[k].len - 1] = frames[0][len - 1];
				/* the device may scribble past the frame */
				if (b[k].len < VDEMUX_PAGE_SIZE)
					b[k].data[b[k].len] = 0xee;
			}
			if (got > 0 && (next(&in) & 1))
				vdemux_rx_submit(w.eng, b, (unsigned)got);
			else if (got > 0)
				vdemux_rx_abort(w.eng, b, (unsigned)got);
			break;
		case 4: guests_read(&w); break;
		case 5:
			/* Fail the entry after the next 0 to 11 applied. */
			nth = next(&in) % 12 + 1;
			vt_fault_arm(w.fail, VT_OP_ALL, VT_FAULT_ENTRY, nth,
				     next(&in) & 1 ? -ENOMEM : -EIO, false);
			break;
		case 6:
			if (w.id[v])
				vdemux_vm_remove(w.eng, w.id[v]);
			add_vm(&w, (int)v);
			break;
		default:
			vdemux_vm_request_release(w.eng, w.id[v]);
			vdemux_vm_take_signals(w.eng, w.id[v]);
			break;
		}
		if (getenv("VDEMUX_FUZZ_TRACE"))
			fprintf(stderr, "op %u vm %u\n", op, v);
		check(&w, "operation");
	}
	vt_fault_disarm(w.fail);
	guests_read(&w);
	check(&w, "end");
	vdemux_engine_destroy(w.eng); /* frees the sims and the wrapper */
	return 0;
}

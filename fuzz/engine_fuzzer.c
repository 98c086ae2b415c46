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

struct world {
	vdemux_engine *eng;
	struct vdemux_backend *sim, *sim2;
	struct vt_fault *fail; /* wraps a sim; owned by the engine once registered */
	vdemux_vm_id id[NVMS];
	uint8_t mac[NVMS][6];
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
	struct vdemux_vm_opts o = VDEMUX_OPTS(vdemux_vm_opts, .rx_base = BASE, .rx_pages = WIN);
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
	default: /* unpopulated, quota 4, two stacked tables */
		o.backends = two;
		o.n_backends = 2;
		o.flags = VDEMUX_VM_F_UNPOPULATED;
		o.quota = 4;
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
	unsigned d = next(in), lsel = next(in) | (next(in) << 8);
	uint32_t len = 14 + lsel % 9000;
	uint8_t mark;

	memset(f, 0x5a, len);
	switch (d % 5) {
	case 0: case 1: case 2:
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
	if (d & 0x40 && len >= 18) { /* tagged for VLAN 5 */
		f[12] = 0x81;
		f[13] = 0x00;
		f[14] = 0;
		f[15] = 5;
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
	struct vdemux_completion c[2 * WIN];

	for (int i = 0; i < NVMS; i++) {
		int n;

		if (!w->id[i])
			continue;
		n = vdemux_vm_poll(w->eng, w->id[i], c, 2 * WIN);
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
				fprintf(stderr, "VM %d (id %u) GPA 0x%llx len %u flags %u: last byte 0x%02x\n",
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t frames[4][9100];
	struct vdemux_engine_opts eo = VDEMUX_OPTS(vdemux_engine_opts, .npages = 40, .max_vms = 4,
						   .low_watermark = 6);
	struct in in = {data, size};
	struct vdemux_backend *inner = NULL;
	struct world w;
	unsigned steps = 0;

	memset(&w, 0, sizeof(w));
	if (vdemux_engine_create(&w.eng, &eo))
		die("setup", "engine");
	if (vdemux_sim_create(&w.sim, NULL) || vdemux_sim_create(&w.sim2, NULL) ||
	    vdemux_sim_create(&inner, NULL))
		die("setup", "sim");
	w.fail = vt_fault_wrap(inner, true);
	w.fail->base.copy_threshold = 0; /* VM 1 flips every frame */
	if (vdemux_engine_add_backend(w.eng, w.sim) || vdemux_engine_add_backend(w.eng, w.sim2) ||
	    vdemux_engine_add_backend(w.eng, &w.fail->base))
		die("setup", "backends");
	for (int i = 0; i < NVMS; i++) {
		memcpy(w.mac[i], (uint8_t[6]){0x02, 0, 0, 0, 0, (uint8_t)(i + 1)}, 6);
		add_vm(&w, i);
	}
	check(&w, "setup");

	while (in.n && steps++ < 200) {
		unsigned op = next(&in) % 8, v = next(&in) % NVMS;
		uint64_t g[4];
		struct vdemux_frame fr[4];
		struct vdemux_rx_buf b[4];
		unsigned n, nth;
		int got;

		switch (op) {
		case 0:
			n = gpa_list(&in, g);
			vdemux_vm_post_rx(w.eng, w.id[v], g, n);
			break;
		case 1:
			n = gpa_list(&in, g);
			vdemux_vm_release(w.eng, w.id[v], g, n);
			break;
		case 2:
			n = next(&in) % 4 + 1;
			for (unsigned k = 0; k < n; k++)
				fr[k] = (struct vdemux_frame){.data = frames[k],
							      .len = make_frame(&w, &in, frames[k])};
			vdemux_rx_burst(w.eng, fr, n);
			break;
		case 3:
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
		case 4:
			guests_read(&w);
			break;
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

/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: frames with virtio-net offload metadata (include/vdemux/
 * offload.h) through both receive paths, to three engine VMs: A accepts no
 * offload (no header: checksums are finished and GSO frames cut for it), B
 * takes checksums, TSO4 and ECN in a 12-byte header, C takes every offload
 * in a 10-byte header. Each frame goes to all three, each with a VLAN edit
 * the input picks.
 *
 * Input: operations until the input ends (at most 24). An operation's first
 * byte says what: a frame built from the next bytes (IP version, TCP or UDP,
 * a VLAN tag, GSO type, payload length, gso_size, header fields left wrong
 * or right, then up to 3 bytes of the header or frame flipped), through
 * vdemux_rx_burst() or the zero-copy pair (its header in the lent page);
 * or a raw header and frame from the input; or the VMs read everything they
 * got and post their buffers again.
 *
 * After every step vdemux_engine_check(); every completion read back
 * through the simulated MMU; and for a frame built right and left alone,
 * what A got must be the segments (each one's lengths, ids, sequence
 * numbers, flags, checksums and payload) or the frame with its checksum
 * finished, as tests/support/oframe.c checks them.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vdemux/sys/classifier.h>
#include <vdemux/vdemux.h>

#include "harness.h"
#include "input.h"
#include "oframe.h"

#define NVMS 3
#define WIN 80u
#define MAXF 65536u

struct world {
	struct vdemux_classifier cls;
	vdemux_engine *eng;
	struct vdemux_backend *sim;
	vdemux_vm_id id[NVMS];
	uint8_t action[NVMS];
	/* what A must get for the last frame: checked when set */
	bool expect;
	struct of_spec spec;
	struct of_layout lay;
	uint8_t gso;
	uint32_t mss;
};

static uint8_t buf[MAXF + 64];
static uint8_t got[MAXF + 64];

static int classify(struct vdemux_classifier *c, const uint8_t *f, uint32_t len, struct vdemux_verdict *v)
{
	struct world *w = (struct world *)c;

	(void)f;
	(void)len;
	v->n = 0;
	for (int i = 0; i < NVMS && v->n < v->cap; i++) {
		memset(&v->dests[v->n], 0, sizeof(v->dests[0]));
		v->dests[v->n].vm = w->id[i];
		v->dests[v->n].action = w->action[i];
		v->dests[v->n].tpid = 0x8100;
		v->dests[v->n].tci = 9;
		v->n++;
	}
	return 0;
}

static void check_engine(struct world *w, const char *where)
{
	char msg[256];

	if (vdemux_engine_check(w->eng, msg, sizeof(msg))) {
		fprintf(stderr, "offload_fuzzer: after %s: %s\n", where, msg);
		abort();
	}
}

static void add_vm(struct world *w, int i, uint32_t offloads, uint32_t hdr_len)
{
	struct vdemux_vm_opts o = VDEMUX_OPTS(vdemux_vm_opts, .rx_base = (uint64_t)(i + 1) << 32,
					      .rx_pages = WIN, .flags = VDEMUX_VM_F_UNPOPULATED,
					      .backends = &w->sim, .n_backends = 1, .offloads = offloads,
					      .vnet_hdr_len = hdr_len);
	uint64_t g[WIN];

	CHECK(vdemux_vm_add(w->eng, &w->id[i], &o) == 0);
	for (uint32_t k = 0; k < WIN; k++)
		g[k] = o.rx_base + (uint64_t)k * PG;
	CHECK(vdemux_vm_post_rx(w->eng, w->id[i], g, WIN) == (int)WIN);
}

/* The next frame of VM i into got[]: its length, or -1. The buffers are
 * posted again. */
static int read_frame(struct world *w, int i)
{
	struct vdemux_completion c;
	uint32_t len = 0;
	unsigned n = 0;

	while (vdemux_vm_poll(w->eng, w->id[i], &c, 1) == 1) {
		CHECK(c.len <= PG && len + c.len <= sizeof(got));
		CHECK(vdemux_sim_read(w->sim, w->id[i], c.gpa, got + len, c.len) == 0);
		CHECK(vdemux_vm_post_rx(w->eng, w->id[i], &c.gpa, 1) == 1);
		len += c.len;
		n++;
		if (!(c.flags & VDEMUX_CPL_MORE))
			return (int)len;
	}
	CHECK(n == 0); /* never half a frame */
	return -1;
}

/* What A got for a frame built right: the segments, or the frame with its
 * checksum done. */
static void check_a(struct world *w)
{
	const struct of_spec *s = &w->spec;
	bool tcp_or_uso = w->gso == VDEMUX_VNET_GSO_TCPV4 || w->gso == VDEMUX_VNET_GSO_TCPV6 ||
			  w->gso == VDEMUX_VNET_GSO_UDP_L4;
	uint32_t n = tcp_or_uso ? (s->payload ? (s->payload + w->mss - 1) / w->mss : 1) : 1, i;
	int len;

	for (i = 0; (len = read_frame(w, 0)) >= 0; i++) {
		const char *why;

		CHECK(i < n);
		if (tcp_or_uso)
			why = of_check_segment(got, (uint32_t)len, s, w->mss, i, n);
		else
			why = of_check_csums(got, (uint32_t)len, &w->lay, s->ipv, s->udp);
		if (why) {
			fprintf(stderr, "offload_fuzzer: segment %u of %u: %s\n", i, n, why);
			abort();
		}
	}
}

static void drain(struct world *w)
{
	for (int i = 0; i < NVMS; i++)
		while (read_frame(w, i) >= 0)
			;
}

/* Two bytes, big-endian (the two reads sequenced). */
static unsigned next16(struct in *in)
{
	unsigned hi = next(in);

	return hi << 8 | next(in);
}

static uint8_t gso_for(unsigned kind, int ipv)
{
	switch (kind % 6) {
	case 1: return ipv == 4 ? VDEMUX_VNET_GSO_TCPV4 : VDEMUX_VNET_GSO_TCPV6;
	case 2: return VDEMUX_VNET_GSO_UDP_L4;
	case 3: return VDEMUX_VNET_GSO_UDP;
	case 4: return (ipv == 4 ? VDEMUX_VNET_GSO_TCPV4 : VDEMUX_VNET_GSO_TCPV6) | VDEMUX_VNET_GSO_ECN;
	default: return VDEMUX_VNET_GSO_NONE;
	}
}

/* A frame from the input into buf, its header first: returns the length.
 * w->expect says whether it was left as built (and A keeps it as it is). */
static uint32_t build(struct world *w, struct in *in)
{
	static const uint8_t bc[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	unsigned a = next(in), kind = next(in), acts = next(in), patches = next(in) % 4;
	uint32_t payload = next16(in) % (MAXF - 100), mss = next16(in);
	struct of_spec s = {.dst = bc,
			    .ipv = a & 1 ? 6 : 4,
			    .udp = a & 2,
			    .vlan = a & 4,
			    .payload = payload,
			    .seed = a,
			    .tcp_flags = (uint8_t)next(in),
			    .seq = 0x12345678u * a,
			    .ip_id = (uint16_t)(a * 77)};
	uint8_t gso = gso_for(kind, s.ipv), flags = kind & 0x40 ? 0 : VDEMUX_VNET_HDR_F_NEEDS_CSUM;
	struct of_layout lay;

	if ((gso & 0x7f) == VDEMUX_VNET_GSO_UDP_L4 || (gso & 0x7f) == VDEMUX_VNET_GSO_UDP)
		s.udp = true;
	else if (gso)
		s.udp = false;
	if (s.payload + 100 > MAXF)
		s.payload = MAXF - 100;
	lay = of_build(buf + 10, &s);
	of_hdr(buf, flags, gso, (uint16_t)lay.hlen, (uint16_t)mss, (uint16_t)lay.l4, s.udp ? 6 : 16);
	for (int i = 0; i < NVMS; i++)
		w->action[i] = (uint8_t)(acts >> (2 * i) & 3);
	w->expect = !patches && w->action[0] == VDEMUX_VLAN_KEEP && flags && mss &&
		    (!gso || s.payload <= (uint32_t)mss * VDEMUX_GSO_MAX_SEGS) &&
		    (gso & 0x7f) != VDEMUX_VNET_GSO_UDP;
	w->spec = s;
	w->lay = lay;
	w->gso = gso & 0x7f;
	w->mss = mss;
	for (unsigned p = 0; p < patches; p++) {
		uint32_t off = next16(in) % (10 + lay.len);

		buf[off] ^= (uint8_t)(next(in) | 1);
	}
	return 10 + lay.len;
}

static void send_zc(struct world *w, uint32_t len, uint32_t off)
{
	struct vdemux_rx_buf b[20];
	uint32_t n = (off + len + PG - 1) / PG, done = 0;

	if (vdemux_rx_alloc(w->eng, b, n) != (int)n) {
		drain(w);
		CHECK(vdemux_rx_alloc(w->eng, b, n) == (int)n);
	}
	for (uint32_t p = 0; p < n; p++) {
		uint32_t o = p ? 0 : off, take = len - done < PG - o ? len - done : PG - o;

		memcpy(b[p].data + o, buf + done, take);
		b[p].off = o;
		b[p].len = take;
		b[p].flags = (p + 1 < n ? VDEMUX_RXBUF_MORE : 0) | (p ? 0 : VDEMUX_RXBUF_VNET_HDR(10));
		done += take;
	}
	CHECK(vdemux_rx_submit(w->eng, b, n) == (int)n);
}

static void step(struct world *w, struct in *in)
{
	unsigned op = next(in) % 4;
	struct vdemux_frame f = {.data = buf, .flags = VDEMUX_FRAME_VNET_HDR(10)};
	int rc;

	if (op == 3) {
		drain(w);
		return;
	}
	drain(w);
	if (op == 2) {
		f.len = 10 + 14 + next(in) % 200;
		for (uint32_t k = 0; k < f.len; k++)
			buf[k] = (uint8_t)next(in);
		w->expect = false;
		rc = vdemux_rx_burst(w->eng, &f, 1);
		CHECK(rc == 1);
		return;
	}
	f.len = build(w, in);
	if (op == 1) {
		send_zc(w, f.len, next(in) % 64);
	} else {
		rc = vdemux_rx_burst(w->eng, &f, 1);
		CHECK(rc == 1);
	}
	if (w->expect)
		check_a(w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vdemux_engine_opts eo = VDEMUX_OPTS(vdemux_engine_opts, .npages = NVMS * WIN + 64,
						   .max_vms = 4, .copy = VDEMUX_COPY_NEVER);
	struct in in = {data, size};
	struct world w;

	memset(&w, 0, sizeof(w));
	w.cls = (struct vdemux_classifier)VDEMUX_CLASSIFIER_INIT;
	w.cls.name = "offload-fuzz";
	w.cls.classify = classify;
	CHECK(vdemux_engine_create(&w.eng, &eo) == 0);
	CHECK(vdemux_sim_create(&w.sim, NULL) == 0);
	CHECK(vdemux_engine_add_backend(w.eng, w.sim) == 0);
	CHECK(vdemux_engine_set_classifier(w.eng, &w.cls) == 0);
	add_vm(&w, 0, 0, 0);
	add_vm(&w, 1, VDEMUX_OFFLOAD_CSUM | VDEMUX_OFFLOAD_TSO4 | VDEMUX_OFFLOAD_ECN, 12);
	add_vm(&w, 2, VDEMUX_OFFLOAD_ALL, 10);
	for (unsigned steps = 0; in.n && steps < 24; steps++) {
		step(&w, &in);
		check_engine(&w, "a step");
	}
	drain(&w);
	check_engine(&w, "the end");
	vdemux_engine_destroy(w.eng);
	return 0;
}

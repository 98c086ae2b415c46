/* SPDX-License-Identifier: MIT */
/* Frames with offload metadata for the tests; see oframe.h. */
#include "oframe.h"

#include <errno.h>
#include <string.h>

static void be16(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint32_t rdbe16(const uint8_t *p)
{
	return (uint32_t)p[0] << 8 | p[1];
}

static uint32_t rdbe32(const uint8_t *p)
{
	return rdbe16(p) << 16 | rdbe16(p + 2);
}

uint8_t of_payload_byte(uint32_t seed, uint32_t i)
{
	return (uint8_t)(i * 7u + seed * 13u + (i >> 8));
}

uint16_t of_sum(const uint8_t *p, uint32_t n, uint32_t start)
{
	uint32_t s = start;

	for (uint32_t i = 0; i < n; i++) {
		s += (i & 1) ? p[i] : (uint32_t)p[i] << 8;
		s = (s & 0xffffu) + (s >> 16);
	}
	return (uint16_t)s;
}

/* The pseudo-header's sum for an L4 length. */
static uint16_t pseudo(const uint8_t *f, const struct of_layout *lay, int ipv, bool udp, uint32_t l4len)
{
	uint8_t ph[40];
	uint32_t s;

	if (ipv == 4)
		s = of_sum(f + lay->l3 + 12, 8, 0);
	else
		s = of_sum(f + lay->l3 + 8, 32, 0);
	be16(ph, udp ? 17 : 6);
	be16(ph + 2, l4len >> 16);
	be16(ph + 4, l4len & 0xffffu);
	return of_sum(ph, 6, s);
}

struct of_layout of_build(uint8_t *b, const struct of_spec *s)
{
	struct of_layout lay;
	uint32_t l2 = s->vlan ? 18 : 14, th = s->udp ? 8 : 20, iph = s->ipv == 4 ? 20 : 40;

	lay.l3 = l2;
	lay.l4 = l2 + iph;
	lay.hlen = lay.l4 + th;
	lay.len = lay.hlen + s->payload;
	memset(b, 0, lay.hlen);
	memcpy(b, s->dst, 6);
	memcpy(b + 6, (const uint8_t[6]){0x02, 0x99, 0, 0, 0, 1}, 6);
	if (s->vlan) {
		be16(b + 12, 0x8100);
		be16(b + 14, 5);
	}
	be16(b + l2 - 2, s->ipv == 4 ? 0x0800 : 0x86dd);
	if (s->ipv == 4) {
		b[l2] = 0x45;
		be16(b + l2 + 2, lay.len - l2);
		be16(b + l2 + 4, s->ip_id);
		be16(b + l2 + 6, 0x4000); /* DF */
		b[l2 + 8] = 64;
		b[l2 + 9] = s->udp ? 17 : 6;
		memcpy(b + l2 + 12, (const uint8_t[8]){10, 0, 0, 1, 10, 0, 0, 2}, 8);
		be16(b + l2 + 10, (uint16_t)~of_sum(b + l2, 20, 0));
	} else {
		b[l2] = 0x60;
		be16(b + l2 + 4, lay.len - lay.l4);
		b[l2 + 6] = s->udp ? 17 : 6;
		b[l2 + 7] = 64;
		for (int i = 0; i < 16; i++) {
			b[l2 + 8 + i] = (uint8_t)(0x20 + i);
			b[l2 + 24 + i] = (uint8_t)(0x40 + i);
		}
	}
	be16(b + lay.l4, 40000);
	be16(b + lay.l4 + 2, 5001);
	if (s->udp) {
		be16(b + lay.l4 + 4, lay.len - lay.l4);
	} else {
		be16(b + lay.l4 + 4, s->seq >> 16);
		be16(b + lay.l4 + 6, s->seq & 0xffffu);
		be16(b + lay.l4 + 8, 0x1234);
		be16(b + lay.l4 + 10, 0x5678);
		b[lay.l4 + 12] = 5 << 4;
		b[lay.l4 + 13] = s->tcp_flags;
		be16(b + lay.l4 + 14, 65535);
	}
	for (uint32_t i = 0; i < s->payload; i++)
		b[lay.hlen + i] = of_payload_byte(s->seed, i);
	/* Partial: the pseudo-header's sum, not complemented (as Linux). */
	be16(b + lay.l4 + (s->udp ? 6 : 16), pseudo(b, &lay, s->ipv, s->udp, lay.len - lay.l4));
	return lay;
}

static void le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

void of_hdr(uint8_t *h, uint8_t flags, uint8_t gso_type, uint16_t hdr_len, uint16_t gso_size,
	    uint16_t csum_start, uint16_t csum_offset)
{
	h[0] = flags;
	h[1] = gso_type;
	le16(h + 2, hdr_len);
	le16(h + 4, gso_size);
	le16(h + 6, csum_start);
	le16(h + 8, csum_offset);
}

void of_hdr_read(const uint8_t *h, struct vdemux_vnet_hdr *o)
{
	o->flags = h[0];
	o->gso_type = h[1];
	o->hdr_len = (uint16_t)(h[2] | h[3] << 8);
	o->gso_size = (uint16_t)(h[4] | h[5] << 8);
	o->csum_start = (uint16_t)(h[6] | h[7] << 8);
	o->csum_offset = (uint16_t)(h[8] | h[9] << 8);
}

const char *of_check_csums(const uint8_t *f, uint32_t len, const struct of_layout *lay, int ipv, bool udp)
{
	uint32_t l4len = len - lay->l4;

	if (ipv == 4 && of_sum(f + lay->l3, 20, 0) != 0xffff)
		return "IPv4 header checksum";
	if (udp && rdbe16(f + lay->l4 + 6) == 0)
		return "UDP checksum 0";
	if (of_sum(f + lay->l4, l4len, pseudo(f, lay, ipv, udp, l4len)) != 0xffff)
		return udp ? "UDP checksum" : "TCP checksum";
	return NULL;
}

static const char *check_lengths(const uint8_t *f, uint32_t len, const struct of_spec *s,
				 const struct of_layout *lay, uint32_t i)
{
	if (s->ipv == 4) {
		if (rdbe16(f + lay->l3 + 2) != len - lay->l3)
			return "IPv4 total length";
		if (rdbe16(f + lay->l3 + 4) != (uint16_t)(s->ip_id + i))
			return "IPv4 id";
	} else if (rdbe16(f + lay->l3 + 4) != len - lay->l4) {
		return "IPv6 payload length";
	}
	if (s->udp && rdbe16(f + lay->l4 + 4) != len - lay->l4)
		return "UDP length";
	return NULL;
}

const char *of_check_segment(const uint8_t *f, uint32_t len, const struct of_spec *s, uint32_t mss,
			     uint32_t i, uint32_t n)
{
	uint8_t ref[128];
	struct of_spec h = *s;
	struct of_layout lay;
	uint32_t want = s->payload - i * mss < mss ? s->payload - i * mss : mss;
	const char *why;

	h.payload = 0;
	lay = of_build(ref, &h);
	if (len != lay.hlen + want)
		return "segment length";
	if (memcmp(f, ref, lay.l3))
		return "Ethernet header";
	if ((why = check_lengths(f, len, s, &lay, i)))
		return why;
	if (!s->udp) {
		uint8_t fl = s->tcp_flags;

		if (rdbe32(f + lay.l4 + 4) != s->seq + i * mss)
			return "TCP seq";
		if (i + 1 < n)
			fl &= (uint8_t) ~(OF_TCP_FIN | OF_TCP_PSH);
		if (i)
			fl &= (uint8_t)~OF_TCP_CWR;
		if (f[lay.l4 + 13] != fl)
			return "TCP flags";
	}
	for (uint32_t k = 0; k < want; k++)
		if (f[lay.hlen + k] != of_payload_byte(s->seed, i * mss + k))
			return "payload";
	return of_check_csums(f, len, &lay, s->ipv, s->udp);
}

int of_send_zc(vdemux_engine *eng, const uint8_t *frame, uint32_t len)
{
	struct vdemux_rx_buf b[20];
	uint32_t off = 22, n = (off + len + VDEMUX_PAGE_SIZE - 1) / VDEMUX_PAGE_SIZE, done = 0;
	int got, r;

	if (n > 20)
		return -EMSGSIZE;
	got = vdemux_rx_alloc(eng, b, n);
	if (got != (int)n) {
		if (got > 0)
			vdemux_rx_abort(eng, b, (unsigned)got);
		return got < 0 ? got : -ENOBUFS;
	}
	for (uint32_t p = 0; p < n; p++) {
		uint32_t o = p ? 0 : off, room = VDEMUX_PAGE_SIZE - o;
		uint32_t take = len - done < room ? len - done : room;

		memcpy(b[p].data + o, frame + done, take);
		b[p].off = o;
		b[p].len = take;
		b[p].flags = (p + 1 < n ? VDEMUX_RXBUF_MORE : 0) | (p ? 0 : VDEMUX_RXBUF_VNET_HDR(10));
		done += take;
	}
	r = vdemux_rx_submit(eng, b, n);
	return r == (int)n ? 0 : r < 0 ? r : -EIO;
}

/* SPDX-License-Identifier: MIT */
/* Offload metadata: checking a frame's virtio-net header, the header each
 * destination gets, and the work the engine does for a destination that
 * does not accept what the frame needs: finish the checksum, or cut a TCP
 * or UDP GSO frame into segments (each built in the engine's scratch buffer
 * and planned as a copy). See offload.h and docs/virtio-net.md. */
#include <errno.h>
#include <string.h>

#include "core/engine.h"
#include "core/frame.h"
#include "core/offload.h"
#include "core/vm.h"

#define ETH_P_IPV4 0x0800u
#define ETH_P_IPV6 0x86ddu
#define ETH_P_8021Q 0x8100u
#define ETH_P_8021AD 0x88a8u
#define PROTO_TCP 6u
#define PROTO_UDP 17u
#define TCP_CSUM_OFF 16u
#define UDP_CSUM_OFF 6u
#define TCP_FIN 0x01u
#define TCP_PSH 0x08u
#define TCP_CWR 0x80u
#define HEAD_MAX 256u /* headers a GSO frame may have: 22 + 60 + 60 */

/* What the scratch buffer holds of the frame being delivered
 * (vd_offload.done). */
enum { OFS_NONE, OFS_CSUM, OFS_SEGS };
_Static_assert(VDEMUX_OFFLOAD_BAD__COUNT <= 8, "vdemux_engine_stats::offload_bad has 8 counters");

/* A refusal as the checks return it: never 0. */
#define BAD(reason) ((reason) + 1)

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void wr16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void wr32(uint8_t *p, uint32_t v)
{
	wr16(p, (uint16_t)(v >> 16));
	wr16(p + 2, (uint16_t)v);
}

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static void put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

int vd_offload_scratch_init(struct vd_offload_scratch *s, uint32_t max_frame,
			    const struct vdemux_alloc_hooks *alloc)
{
	/* segment i at i * (hlen + gso_size): at most max_frame bytes of
	 * payload, and a copy of the headers (at most HEAD_MAX) a segment */
	s->buf = vd_calloc(alloc, 1, (size_t)max_frame + (VDEMUX_GSO_MAX_SEGS + 1) * HEAD_MAX);
	return s->buf ? 0 : -ENOMEM;
}

void vd_offload_scratch_fini(struct vd_offload_scratch *s, const struct vdemux_alloc_hooks *alloc)
{
	vd_free(alloc, s->buf);
	s->buf = NULL;
}

void vd_vhdr_read(struct vd_vhdr *h, const uint8_t *p)
{
	h->flags = p[0];
	h->gso_type = p[1];
	h->hdr_len = le16(p + 2);
	h->gso_size = le16(p + 4);
	h->csum_start = le16(p + 6);
	h->csum_offset = le16(p + 8);
}

void vd_vhdr_put(uint8_t *p, const struct vd_vhdr *vh, uint32_t hdr_len, uint16_t num_buffers)
{
	memset(p, 0, hdr_len);
	if (vh) {
		p[0] = vh->flags;
		p[1] = vh->gso_type;
		put_le16(p + 2, vh->hdr_len);
		put_le16(p + 4, vh->gso_size);
		put_le16(p + 6, vh->csum_start);
		put_le16(p + 8, vh->csum_offset);
	}
	if (hdr_len >= VD_VHDR_LEN + 2)
		put_le16(p + VD_VHDR_LEN, num_buffers);
}

/* ---- the Internet checksum (RFC 1071) ---- */

/* The ones' complement sum of p[0, n), folded to 16 bits, not complemented,
 * starting from @sum. Summed in native order, 32 bits at a time into 64
 * (the ones' complement sum does not depend on the byte order: RFC 1071,
 * 2.(B)), swapped to network order at the end on a little-endian host. */
static uint32_t vd_csum_add(uint32_t sum, const uint8_t *p, uint32_t n)
{
	uint64_t s = 0;
	uint32_t i = 0, w;
	uint16_t h;

	for (; i + 4 <= n; i += 4) {
		memcpy(&w, p + i, 4);
		s += w;
	}
	if (i + 2 <= n) {
		memcpy(&h, p + i, 2);
		s += h;
		i += 2;
	}
	while (s >> 16)
		s = (s & 0xffffu) + (s >> 16);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	s = (uint16_t)(s << 8 | s >> 8);
#endif
	if (i < n)
		s += (uint32_t)p[i] << 8;
	return (uint32_t)s + (sum & 0xffffu) + (sum >> 16);
}

static uint16_t vd_csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffffu) + (sum >> 16);
	return (uint16_t)sum;
}

/* ---- checking a frame's header ---- */

static int check_fields(const struct vd_vhdr *h, uint32_t len)
{
	uint8_t gso = h->gso_type & (uint8_t)~VDEMUX_VNET_GSO_ECN;

	if (h->flags & ~(VDEMUX_VNET_HDR_F_NEEDS_CSUM | VDEMUX_VNET_HDR_F_DATA_VALID))
		return BAD(VDEMUX_OFFLOAD_BAD_FLAGS);
	if (gso != VDEMUX_VNET_GSO_NONE && gso != VDEMUX_VNET_GSO_TCPV4 && gso != VDEMUX_VNET_GSO_UDP &&
	    gso != VDEMUX_VNET_GSO_TCPV6 && gso != VDEMUX_VNET_GSO_UDP_L4)
		return BAD(VDEMUX_OFFLOAD_BAD_FLAGS);
	if ((h->gso_type & VDEMUX_VNET_GSO_ECN) && gso != VDEMUX_VNET_GSO_TCPV4 &&
	    gso != VDEMUX_VNET_GSO_TCPV6)
		return BAD(VDEMUX_OFFLOAD_BAD_FLAGS);
	if (h->hdr_len > len)
		return BAD(VDEMUX_OFFLOAD_BAD_HDR_LEN);
	if ((h->flags & VDEMUX_VNET_HDR_F_NEEDS_CSUM) &&
	    (uint32_t)h->csum_start + h->csum_offset + 2u > len)
		return BAD(VDEMUX_OFFLOAD_BAD_CSUM);
	if (gso == VDEMUX_VNET_GSO_NONE)
		return 0;
	if (!(h->flags & VDEMUX_VNET_HDR_F_NEEDS_CSUM))
		return BAD(VDEMUX_OFFLOAD_BAD_CSUM);
	if (!h->gso_size)
		return BAD(VDEMUX_OFFLOAD_BAD_GSO_SIZE);
	return 0;
}

/* The IP header at h[l3]: its version, length, protocol; its lengths must
 * agree with the frame's (len bytes). Sets ol->ipv and ol->l4. */
static int check_ip(struct vd_offload *ol, const uint8_t *h, uint32_t l3, uint32_t len, uint8_t *proto)
{
	if (ol->ipv == 4) {
		uint32_t ihl = (h[l3] & 0xfu) * 4u;

		if (l3 + 20 > len || h[l3] >> 4 != 4 || ihl < 20 || l3 + ihl > len ||
		    rd16(h + l3 + 2) != len - l3 || (rd16(h + l3 + 6) & 0x3fffu))
			return BAD(VDEMUX_OFFLOAD_BAD_HEADERS); /* a fragment, or lengths that disagree */
		*proto = h[l3 + 9];
		ol->l4 = (uint16_t)(l3 + ihl);
		return 0;
	}
	if (l3 + 40 > len || h[l3] >> 4 != 6 || rd16(h + l3 + 4) != len - l3 - 40)
		return BAD(VDEMUX_OFFLOAD_BAD_HEADERS);
	*proto = h[l3 + 6]; /* an extension header is refused: no TCP or UDP */
	ol->l4 = (uint16_t)(l3 + 40);
	return 0;
}

/* Which IP version a GSO type needs (0: either). */
static uint8_t gso_ipv(uint8_t gso)
{
	return gso == VDEMUX_VNET_GSO_TCPV4 ? 4 : gso == VDEMUX_VNET_GSO_TCPV6 ? 6 : 0;
}

/* The headers of a GSO frame, from its first bytes h[0, n). */
static int check_headers(struct vd_offload *ol, const uint8_t *h, uint32_t n, uint32_t len)
{
	uint32_t l3 = 12, type, thl;
	bool tcp = ol->gso == VDEMUX_VNET_GSO_TCPV4 || ol->gso == VDEMUX_VNET_GSO_TCPV6;
	uint8_t proto;
	int r;

	for (unsigned tags = 0;; tags++) {
		type = rd16(h + l3);
		if ((type != ETH_P_8021Q && type != ETH_P_8021AD) || tags == 2)
			break;
		l3 += 4;
		if (l3 + 2 > n)
			return BAD(VDEMUX_OFFLOAD_BAD_HEADERS);
	}
	l3 += 2;
	ol->ipv = type == ETH_P_IPV4 ? 4 : type == ETH_P_IPV6 ? 6 : 0;
	if (!ol->ipv || (gso_ipv(ol->gso) && gso_ipv(ol->gso) != ol->ipv))
		return BAD(VDEMUX_OFFLOAD_BAD_HEADERS);
	ol->l3 = (uint16_t)l3;
	r = check_ip(ol, h, l3, len, &proto);
	if (r)
		return r;
	if (proto != (tcp ? PROTO_TCP : PROTO_UDP) || ol->l4 != ol->h.csum_start)
		return BAD(VDEMUX_OFFLOAD_BAD_HEADERS);
	if (ol->h.csum_offset != (tcp ? TCP_CSUM_OFF : UDP_CSUM_OFF))
		return BAD(VDEMUX_OFFLOAD_BAD_CSUM);
	thl = tcp ? (ol->l4 + 13u <= n ? (h[ol->l4 + 12] >> 4) * 4u : 0) : 8u;
	if (thl < (tcp ? 20u : 8u) || ol->l4 + thl > len || ol->l4 + thl > n)
		return BAD(VDEMUX_OFFLOAD_BAD_HEADERS);
	ol->hlen = (uint16_t)(ol->l4 + thl);
	return 0;
}

int vd_offload_check(const struct vd_pool *pl, const struct vd_src *src, struct vd_offload *ol)
{
	uint8_t head[HEAD_MAX];
	uint32_t n = src->len < HEAD_MAX ? src->len : HEAD_MAX, payload;
	int r = check_fields(&ol->h, src->len);

	ol->gso = ol->h.gso_type & (uint8_t)~VDEMUX_VNET_GSO_ECN;
	ol->nsegs = 1;
	ol->done = OFS_NONE;
	if (r || ol->gso == VDEMUX_VNET_GSO_NONE)
		return r;
	vd_frame_read(pl, src, 0, head, n);
	r = check_headers(ol, head, n, src->len);
	if (r || ol->gso == VDEMUX_VNET_GSO_UDP)
		return r; /* UFO is passed on or refused, never cut */
	payload = src->len - ol->hlen;
	if (payload > (uint32_t)ol->h.gso_size * VDEMUX_GSO_MAX_SEGS)
		return BAD(VDEMUX_OFFLOAD_BAD_SEGS);
	ol->nsegs = (uint16_t)(payload ? (payload + ol->h.gso_size - 1u) / ol->h.gso_size : 1u);
	return 0;
}

/* ---- what a destination takes ---- */

/* The offloads vm takes: none without checksum offload. */
static uint32_t accepted(const struct vm *vm)
{
	return vm->offloads & VDEMUX_OFFLOAD_CSUM ? vm->offloads : 0;
}

static bool gso_accepted(const struct vd_offload *ol, uint32_t acc)
{
	bool ecn = ol->h.gso_type & VDEMUX_VNET_GSO_ECN;

	switch (ol->gso) {
	case VDEMUX_VNET_GSO_TCPV4:
		return (acc & VDEMUX_OFFLOAD_TSO4) && (!ecn || (acc & VDEMUX_OFFLOAD_ECN));
	case VDEMUX_VNET_GSO_TCPV6:
		return (acc & VDEMUX_OFFLOAD_TSO6) && (!ecn || (acc & VDEMUX_OFFLOAD_ECN));
	case VDEMUX_VNET_GSO_UDP: return acc & VDEMUX_OFFLOAD_UFO;
	case VDEMUX_VNET_GSO_UDP_L4:
		return acc & (ol->ipv == 4 ? VDEMUX_OFFLOAD_USO4 : VDEMUX_OFFLOAD_USO6);
	default: return true;
	}
}

/* How far d's edit moves the bytes after the first tag. */
static int edit_delta(const struct vdemux_dest *d)
{
	return d->action == VDEMUX_VLAN_STRIP ? -4 : d->action == VDEMUX_VLAN_PUSH ? 4 : 0;
}

/* Whether the frame goes to vm (destination d) as it is (true), its header
 * from vd_offload_dest_hdr(); else as copies (a finished checksum, the
 * segments). */
static bool vd_offload_direct(const struct vd_src *src, const struct vm *vm, const struct vdemux_dest *d)
{
	const struct vd_offload *ol = src->ol;
	uint32_t acc = accepted(vm);

	if (!ol)
		return true;
	if (ol->h.flags & VDEMUX_VNET_HDR_F_NEEDS_CSUM) {
		if (!(acc & VDEMUX_OFFLOAD_CSUM))
			return false;
		/* Checksummed bytes the edit would move: finish it first. */
		if (edit_delta(d) && ol->h.csum_start < ETH_HLEN + 2)
			return false;
	}
	return gso_accepted(ol, acc);
}

/* The header vm's copy of the frame carries (as d edits the frame). */
static void vd_offload_dest_hdr(const struct vd_src *src, const struct vm *vm,
				const struct vdemux_dest *d, struct vd_vhdr *out)
{
	const struct vd_offload *ol = src->ol;
	int delta = edit_delta(d);

	memset(out, 0, sizeof(*out));
	if (!ol || !(accepted(vm) & VDEMUX_OFFLOAD_CSUM))
		return; /* the frame is complete: nothing to say */
	out->flags = ol->h.flags;
	if (ol->h.flags & VDEMUX_VNET_HDR_F_NEEDS_CSUM) {
		/* The checksummed bytes follow the first tag. */
		out->csum_start = (uint16_t)(ol->h.csum_start + delta);
		out->csum_offset = ol->h.csum_offset;
	}
	if (ol->gso != VDEMUX_VNET_GSO_NONE) {
		out->gso_type = ol->h.gso_type;
		out->gso_size = ol->h.gso_size;
	}
	/* A hint of the headers' length: moved with them, when it covers
	 * the tag. */
	out->hdr_len = ol->h.hdr_len >= ETH_HLEN + 2 ? (uint16_t)(ol->h.hdr_len + delta) : ol->h.hdr_len;
}

/* ---- the copies made for a destination ---- */

/* Plan one delivery of *s to vm with header vh: an engine VM gets it in
 * front of the frame (its prefix), a virtio-net queue writes it itself
 * (vm->sink, from s->vh). */
static bool plan_with(struct vdemux_engine *e, struct vm *vm, struct vd_src *s,
		      const struct vdemux_dest *d, const struct vd_vhdr *vh, bool consume,
		      vd_plan_fn plan)
{
	uint8_t pre[VD_VHDR_LEN + 2];
	bool bad;

	s->vh = vh;
	s->pre = NULL;
	s->pre_len = 0;
	if (vm->vnet_hdr_len) {
		uint32_t out = vd_frame_out_len(s, d, &bad) + vm->vnet_hdr_len;

		vd_vhdr_put(pre, vh, vm->vnet_hdr_len, (uint16_t)npages_for(out));
		s->pre = pre;
		s->pre_len = vm->vnet_hdr_len;
		consume = false;
	}
	return plan(e, vm, s, d, consume);
}

/* The frame with its checksum finished, as Linux's skb_checksum_help()
 * does: the sum of [csum_start, end) (the field holds what the sender put
 * there, the pseudo-header's sum), stored at csum_start + csum_offset. */
static void finish_csum(struct vdemux_engine *e, struct vm *vm, const struct vd_src *src,
			const struct vdemux_dest *d, vd_plan_fn plan)
{
	struct vd_offload *ol = src->ol;
	uint8_t *b = e->ofs.buf;
	struct vd_src s = {.flat = b, .len = src->len};
	struct vd_vhdr vh = {0};
	uint32_t cs = ol->h.csum_start;
	uint16_t c;

	if (ol->done != OFS_CSUM) { /* once per frame */
		vd_frame_read(&e->pool, src, 0, b, src->len);
		c = (uint16_t)~vd_csum_fold(vd_csum_add(0, b + cs, src->len - cs));
		wr16(b + cs + ol->h.csum_offset, c ? c : 0xffffu);
		ol->done = OFS_CSUM;
	}
	e->st.offload_csums++;
	plan_with(e, vm, &s, d, &vh, false, plan);
}

/* Segment i of a GSO frame, b[0, hlen + n): its headers are the frame's,
 * fixed for it (as Linux's tcp_gso_segment() and __udp_gso_segment() do);
 * @off is where its payload starts in the frame's payload. */
static void fix_segment(const struct vd_offload *ol, uint8_t *b, uint32_t n, uint32_t i, uint32_t off)
{
	uint32_t l3 = ol->l3, l4 = ol->l4, l4len = ol->hlen - l4 + n, sum;
	bool tcp = ol->gso == VDEMUX_VNET_GSO_TCPV4 || ol->gso == VDEMUX_VNET_GSO_TCPV6;
	uint16_t c;

	if (ol->ipv == 4) {
		wr16(b + l3 + 2, (uint16_t)(l4 - l3 + l4len));
		wr16(b + l3 + 4, (uint16_t)(rd16(b + l3 + 4) + i)); /* the IP id */
		wr16(b + l3 + 10, 0);
		wr16(b + l3 + 10, (uint16_t)~vd_csum_fold(vd_csum_add(0, b + l3, l4 - l3)));
		sum = vd_csum_add(0, b + l3 + 12, 8);
	} else {
		wr16(b + l3 + 4, (uint16_t)l4len);
		sum = vd_csum_add(0, b + l3 + 8, 32);
	}
	sum += (tcp ? PROTO_TCP : PROTO_UDP) + l4len;
	if (tcp) {
		uint8_t fl = b[l4 + 13];

		wr32(b + l4 + 4, rd32(b + l4 + 4) + off);
		if (i + 1 < ol->nsegs)
			fl &= (uint8_t) ~(TCP_FIN | TCP_PSH);
		if (i)
			fl &= (uint8_t)~TCP_CWR;
		b[l4 + 13] = fl;
		wr16(b + l4 + TCP_CSUM_OFF, 0);
	} else {
		wr16(b + l4 + 4, (uint16_t)l4len);
		wr16(b + l4 + UDP_CSUM_OFF, 0);
	}
	c = (uint16_t)~vd_csum_fold(vd_csum_add(sum, b + l4, l4len));
	if (!tcp && !c)
		c = 0xffffu; /* UDP: 0 would mean no checksum */
	wr16(b + l4 + (tcp ? TCP_CSUM_OFF : UDP_CSUM_OFF), c);
}

/* Cut the frame into gso_size-byte segments in the scratch buffer, segment
 * i at i * (hlen + gso_size), each fixed: once per frame. */
static void cut_segments(struct vdemux_engine *e, const struct vd_src *src)
{
	struct vd_offload *ol = src->ol;
	uint32_t hl = ol->hlen, mss = ol->h.gso_size, payload = src->len - hl;
	uint8_t *b = e->ofs.buf;

	vd_frame_read(&e->pool, src, 0, b, hl);
	for (uint32_t i = 0; i < ol->nsegs; i++) {
		uint32_t off = i * mss, n = payload - off < mss ? payload - off : mss;
		uint8_t *sb = b + (size_t)i * (hl + mss);

		if (i)
			memcpy(sb, b, hl); /* the frame's headers: segment 0's are fixed last */
		vd_frame_read(&e->pool, src, hl + off, sb + hl, n);
		if (i)
			fix_segment(ol, sb, n, i, off);
	}
	fix_segment(ol, b, payload < mss ? payload : mss, 0, 0);
	ol->done = OFS_SEGS;
}

/* Plan each segment as a delivery of its own. */
static void segment(struct vdemux_engine *e, struct vm *vm, const struct vd_src *src,
		    const struct vdemux_dest *d, vd_plan_fn plan)
{
	const struct vd_offload *ol = src->ol;
	uint32_t hl = ol->hlen, mss = ol->h.gso_size, payload = src->len - hl;
	struct vd_vhdr vh = {0};

	if (accepted(vm) & VDEMUX_OFFLOAD_CSUM)
		vh.flags = VDEMUX_VNET_HDR_F_DATA_VALID;
	if (ol->done != OFS_SEGS)
		cut_segments(e, src);
	e->st.offload_segmented++;
	for (uint32_t i = 0; i < ol->nsegs; i++) {
		uint32_t off = i * mss, n = payload - off < mss ? payload - off : mss;
		struct vd_src s = {.flat = e->ofs.buf + (size_t)i * (hl + mss), .len = hl + n};

		e->st.offload_segments++;
		plan_with(e, vm, &s, d, &vh, false, plan);
	}
}

static void offload_deliver(struct vdemux_engine *e, struct vm *vm, const struct vd_src *src,
			    const struct vdemux_dest *d, vd_plan_fn plan)
{
	const struct vd_offload *ol = src->ol;

	if (ol->gso != VDEMUX_VNET_GSO_NONE && !gso_accepted(ol, accepted(vm))) {
		if (ol->gso == VDEMUX_VNET_GSO_UDP) {
			e->st.offload_bad[VDEMUX_OFFLOAD_BAD_UFO]++; /* IP fragmentation: not done */
			return;
		}
		segment(e, vm, src, d, plan);
		return;
	}
	finish_csum(e, vm, src, d, plan);
}

bool vd_offload_may_consume(const struct vd_src *src, const struct vm *vm, const struct vdemux_dest *d)
{
	return !vm->vnet_hdr_len && vd_offload_direct(src, vm, d);
}

bool vd_offload_plan(struct vdemux_engine *e, struct vm *vm, const struct vd_src *src,
		     const struct vdemux_dest *d, bool consume, vd_plan_fn plan)
{
	struct vd_src s = *src;
	struct vd_vhdr vh;

	if (!vd_offload_direct(src, vm, d)) {
		offload_deliver(e, vm, src, d, plan);
		return false;
	}
	vd_offload_dest_hdr(src, vm, d, &vh);
	if ((vh.flags & VDEMUX_VNET_HDR_F_NEEDS_CSUM) || vh.gso_type)
		e->st.offload_passed++;
	return plan_with(e, vm, &s, d, &vh, consume, plan);
}

static const char *const bad_names[VDEMUX_OFFLOAD_BAD__COUNT] = {
	[VDEMUX_OFFLOAD_BAD_FLAGS] = "flags",	  [VDEMUX_OFFLOAD_BAD_CSUM] = "csum",
	[VDEMUX_OFFLOAD_BAD_HDR_LEN] = "hdr-len", [VDEMUX_OFFLOAD_BAD_GSO_SIZE] = "gso-size",
	[VDEMUX_OFFLOAD_BAD_HEADERS] = "headers", [VDEMUX_OFFLOAD_BAD_SEGS] = "segments",
	[VDEMUX_OFFLOAD_BAD_UFO] = "ufo",
};

const char *vdemux_offload_bad_name(int which)
{
	if (which < 0 || which >= VDEMUX_OFFLOAD_BAD__COUNT)
		return "unknown";
	return bad_names[which];
}

/* SPDX-License-Identifier: MIT */
/*
 * Offload metadata through the engine (offload.h): frames with a
 * virtio-net header in front, through vdemux_rx_burst() and the zero-copy
 * pair, to engine VMs that accept the metadata (it arrives in their
 * header) or not (the checksum is finished, GSO frames are cut into
 * segments, every segment checked with the test's own checksum routine);
 * every refusal counted, and nothing delivered for it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "oframe.h"
#include "vt.h"

#define BIG 65536u
#define WIN 128u

static uint8_t frame[VDEMUX_PAGE_SIZE + BIG + 64];
static uint8_t got[VDEMUX_PAGE_SIZE * 20];

static struct vt_fx *fx_new(void **state)
{
	struct vt_fx_opts o = {0};

	o.eng = VDEMUX_OPTS(vdemux_engine_opts, .npages = 1024, .copy = VDEMUX_COPY_NEVER);
	return vt_fx_state(state, &o);
}

static struct vt_vm *vm_new(struct vt_fx *fx, uint32_t offloads, uint32_t hdr_len)
{
	struct vdemux_vm_opts o = vt_vm_opts(fx, WIN);
	struct vt_vm *vm;

	o.flags = VDEMUX_VM_F_UNPOPULATED;
	o.offloads = offloads;
	o.vnet_hdr_len = hdr_len;
	vm = vt_vm_add(fx, &o);
	vt_post_range(fx, vm, 0, WIN);
	return vm;
}

/* The guest's side: the next frame (its completions gathered) into got[];
 * its length, or -1 when there is none. */
static int take_frame(struct vt_fx *fx, struct vt_vm *vm, unsigned *ncpl)
{
	struct vdemux_completion c;
	uint8_t page[VDEMUX_PAGE_SIZE];
	uint32_t len = 0;

	*ncpl = 0;
	for (;;) {
		int n = vdemux_vm_poll(fx->eng, vm->id, &c, 1);

		if (n == 0 && *ncpl == 0)
			return -1;
		assert_int_equal(n, 1);
		assert_int_equal(vt_guest_read_page(fx, 0, vm, c.gpa, page), 0);
		assert_true(len + c.len <= sizeof(got));
		memcpy(got + len, page, c.len);
		len += c.len;
		(*ncpl)++;
		if (!(c.flags & VDEMUX_CPL_MORE))
			return (int)len;
	}
}

/* Build a frame with its 10-byte header in front: returns the bytes. */
static uint32_t build(const struct of_spec *s, uint8_t flags, uint8_t gso, uint16_t gso_size,
		      struct of_layout *lay)
{
	*lay = of_build(frame + 10, s);
	of_hdr(frame, flags, gso, (uint16_t)lay->hlen, gso_size, (uint16_t)lay->l4, s->udp ? 6 : 16);
	return 10 + lay->len;
}

static int send(struct vt_fx *fx, uint32_t len)
{
	struct vdemux_frame f = {.data = frame, .len = len, .flags = VDEMUX_FRAME_VNET_HDR(10)};

	return vdemux_rx_burst(fx->eng, &f, 1);
}

/* The frame through the zero-copy pair, its header at offset 22 of the
 * first page (the frame then at 32). */
static void send_zc(struct vt_fx *fx, uint32_t len)
{
	assert_int_equal(of_send_zc(fx->eng, frame, len), 0);
}

static struct of_spec spec(struct vt_vm *vm, int ipv, bool udp, uint32_t payload)
{
	static uint8_t mac[6];

	vt_mac(vm->id, mac);
	return (struct of_spec){.dst = mac,
				.ipv = ipv,
				.udp = udp,
				.payload = payload,
				.seed = payload,
				.tcp_flags = OF_TCP_ACK | OF_TCP_PSH | OF_TCP_FIN,
				.seq = 0xfffff000u,
				.ip_id = 0xfff0};
}

/* ---- metadata passed on ---- */

static void test_metadata_reaches_a_vm_that_accepts_it_in_its_header(void **state)
{
	struct vt_fx *fx = fx_new(state);
	struct vt_vm *vm = vm_new(fx, VDEMUX_OFFLOAD_CSUM | VDEMUX_OFFLOAD_TSO4, 12);
	struct of_spec s = spec(vm, 4, false, BIG - 54);
	struct of_layout lay;
	uint32_t len = build(&s, VDEMUX_VNET_HDR_F_NEEDS_CSUM, VDEMUX_VNET_GSO_TCPV4, 1448, &lay);
	struct vdemux_vnet_hdr h;
	unsigned ncpl;

	assert_int_equal(send(fx, len), 1);
	vt_check(fx);
	assert_int_equal(take_frame(fx, vm, &ncpl), (int)(12 + lay.len));
	of_hdr_read(got, &h);
	assert_int_equal(h.flags, VDEMUX_VNET_HDR_F_NEEDS_CSUM);
	assert_int_equal(h.gso_type, VDEMUX_VNET_GSO_TCPV4);
	assert_int_equal(h.gso_size, 1448);
	assert_int_equal(h.hdr_len, lay.hlen);
	assert_int_equal(h.csum_start, lay.l4);
	assert_int_equal(h.csum_offset, 16);
	assert_int_equal(got[10] | got[11] << 8, ncpl); /* num_buffers */
	assert_memory_equal(got + 12, frame + 10, lay.len);
	assert_int_equal(vt_stats(fx).offload_passed, 1);
	assert_int_equal(vt_stats(fx).offload_segmented, 0);
	assert_int_equal(take_frame(fx, vm, &ncpl), -1);
}

static void test_a_vm_with_a_header_and_no_offload_gets_a_zero_header(void **state)
{
	struct vt_fx *fx = fx_new(state);
	struct vt_vm *vm = vm_new(fx, 0, 10);
	struct of_spec s = spec(vm, 6, true, 300);
	struct of_layout lay;
	unsigned ncpl;

	build(&s, 0, 0, 0, &lay);
	assert_int_equal(send(fx, 10 + lay.len), 1);
	assert_int_equal(take_frame(fx, vm, &ncpl), (int)(10 + lay.len));
	assert_true(vt_all_zero(got, 10));
	assert_memory_equal(got + 10, frame + 10, lay.len);
}

static void test_a_stripped_tag_moves_csum_start_and_hdr_len_in_the_header(void **state)
{
	struct vt_fx_opts fo = {0};
	struct vt_fx *fx;
	struct vt_vm *vm;
	struct of_spec s;
	struct of_layout lay;
	struct vdemux_vnet_hdr h;
	unsigned ncpl;

	fo.builtin_cls = true;
	fo.eng = VDEMUX_OPTS(vdemux_engine_opts, .npages = 1024, .copy = VDEMUX_COPY_NEVER);
	fx = vt_fx_state(state, &fo);
	vm = vm_new(fx, VDEMUX_OFFLOAD_CSUM | VDEMUX_OFFLOAD_TSO4, 12);
	s = spec(vm, 4, false, 9000);
	s.vlan = true; /* VID 5: this VM is an untagged member, the tag is stripped */
	assert_int_equal(vdemux_l2_vlan_join(vdemux_engine_l2(fx->eng), vm->id, 5, 0), 0);
	assert_int_equal(vdemux_l2_add_mac(vdemux_engine_l2(fx->eng), vm->id, s.dst, 5), 0);
	assert_int_equal(
		send(fx, build(&s, VDEMUX_VNET_HDR_F_NEEDS_CSUM, VDEMUX_VNET_GSO_TCPV4, 1448, &lay)), 1);
	assert_int_equal(take_frame(fx, vm, &ncpl), (int)(12 + lay.len - 4));
	of_hdr_read(got, &h);
	assert_int_equal(h.csum_start, lay.l4 - 4);
	assert_int_equal(h.hdr_len, lay.hlen - 4);
	assert_int_equal(h.gso_type, VDEMUX_VNET_GSO_TCPV4);
	assert_memory_equal(got + 12, frame + 10, 12);
	assert_memory_equal(got + 12 + 12, frame + 10 + 16, lay.len - 16);
}

/* ---- checksums finished ---- */

static void test_checksum_is_finished_for_a_vm_without_checksum_offload(void **state)
{
	struct vt_fx *fx = fx_new(state);
	struct vt_vm *vm = vm_new(fx, 0, 0);
	struct of_layout lay;
	unsigned ncpl;

	for (int k = 0; k < 4; k++) {
		struct of_spec s = spec(vm, k & 1 ? 6 : 4, k & 2, 999 + (uint32_t)k);

		build(&s, VDEMUX_VNET_HDR_F_NEEDS_CSUM, 0, 0, &lay);
		assert_non_null(of_check_csums(frame + 10, lay.len, &lay, s.ipv, s.udp)); /* partial */
		if (k == 3)
			send_zc(fx, 10 + lay.len);
		else
			assert_int_equal(send(fx, 10 + lay.len), 1);
		vt_check(fx);
		assert_int_equal(take_frame(fx, vm, &ncpl), (int)lay.len);
		assert_null(of_check_csums(got, lay.len, &lay, s.ipv, s.udp));
		/* Everything else as it came. */
		assert_memory_equal(got, frame + 10, lay.l4 + (s.udp ? 6 : 16));
		assert_memory_equal(got + lay.hlen, frame + 10 + lay.hlen, lay.len - lay.hlen);
	}
	assert_int_equal(vt_stats(fx).offload_csums, 4);
}

/* ---- segmentation ---- */

/* Send s (GSO type gso, segment size mss) and check every segment. */
static void expect_segments(struct vt_fx *fx, struct vt_vm *vm, const struct of_spec *s, uint8_t gso,
			    uint32_t mss, bool zc)
{
	struct of_layout lay;
	uint32_t len = build(s, VDEMUX_VNET_HDR_F_NEEDS_CSUM, gso, (uint16_t)mss, &lay);
	uint32_t n = (s->payload + mss - 1) / mss, i;
	struct vdemux_engine_stats before = vt_stats(fx), after;
	unsigned ncpl;
	int flen;

	if (zc)
		send_zc(fx, len);
	else
		assert_int_equal(send(fx, len), 1);
	vt_check(fx);
	for (i = 0; (flen = take_frame(fx, vm, &ncpl)) >= 0; i++) {
		const char *why = of_check_segment(got, (uint32_t)flen, s, mss, i, n);

		if (why)
			fail_msg("segment %u of %u: %s", i, n, why);
	}
	assert_int_equal(i, n);
	after = vt_stats(fx);
	assert_int_equal(after.offload_segmented - before.offload_segmented, 1);
	assert_int_equal(after.offload_segments - before.offload_segments, n);
	assert_int_equal(after.delivered - before.delivered, n);
}

static void test_a_64k_tso4_frame_is_segmented_for_a_vm_without_tso4(void **state)
{
	struct vt_fx *fx = fx_new(state);
	struct vt_vm *vm = vm_new(fx, 0, 0);
	struct of_spec s = spec(vm, 4, false, BIG - 54);

	s.tcp_flags |= OF_TCP_CWR;
	expect_segments(fx, vm, &s, VDEMUX_VNET_GSO_TCPV4 | VDEMUX_VNET_GSO_ECN, 1448, false);
}

static void test_a_tso4_frame_from_lent_pages_is_segmented(void **state)
{
	struct vt_fx *fx = fx_new(state);
	struct vt_vm *vm = vm_new(fx, 0, 0);
	struct of_spec s = spec(vm, 4, false, 20000);

	s.vlan = true;
	expect_segments(fx, vm, &s, VDEMUX_VNET_GSO_TCPV4, 1460, true);
}

static void test_a_tso6_frame_is_segmented_for_a_vm_without_tso6(void **state)
{
	struct vt_fx *fx = fx_new(state);
	struct vt_vm *vm = vm_new(fx, VDEMUX_OFFLOAD_CSUM | VDEMUX_OFFLOAD_TSO4, 10);
	struct of_spec s = spec(vm, 6, false, BIG - 74);
	struct of_layout lay;
	uint32_t mss = 1440, n = (s.payload + mss - 1) / mss, i;
	unsigned ncpl;
	int flen;

	/* This VM has a header: each segment comes after it, marked DATA_VALID. */
	assert_int_equal(send(fx, build(&s, VDEMUX_VNET_HDR_F_NEEDS_CSUM, VDEMUX_VNET_GSO_TCPV6,
					(uint16_t)mss, &lay)),
			 1);
	for (i = 0; (flen = take_frame(fx, vm, &ncpl)) >= 0; i++) {
		const char *why = of_check_segment(got + 10, (uint32_t)flen - 10, &s, mss, i, n);

		assert_int_equal(got[0], VDEMUX_VNET_HDR_F_DATA_VALID);
		assert_true(vt_all_zero(got + 1, 9));
		if (why)
			fail_msg("segment %u of %u: %s", i, n, why);
	}
	assert_int_equal(i, n);
}

/* Frame k of a pair for the broadcast test: a GSO frame (20000 bytes of
 * payload, gso_size 1448) or one with its checksum left to the receiver
 * (999 bytes), its own bytes (seed); built at frame, its length returned. */
static uint32_t bcast_frame(struct vt_vm *vm, bool gso, uint32_t k, struct of_spec *sp,
			    struct of_layout *lay)
{
	*sp = spec(vm, 4, false, gso ? 20000 : 999);
	sp->dst = vt_bcast;
	sp->seed += k;
	return build(sp, VDEMUX_VNET_HDR_F_NEEDS_CSUM, gso ? VDEMUX_VNET_GSO_TCPV4 : 0, gso ? 1448 : 0,
		     lay);
}

/* What a VM without the offload got of one frame: every segment, or the
 * frame with its checksum finished. */
static void expect_done(struct vt_fx *fx, struct vt_vm *vm, bool gso, const struct of_spec *sp,
			const struct of_layout *lay)
{
	uint32_t n = gso ? (sp->payload + 1447) / 1448 : 1, i;
	unsigned ncpl;

	for (i = 0; i < n; i++) {
		int flen = take_frame(fx, vm, &ncpl);
		const char *why;

		assert_true(flen > 0);
		why = gso ? of_check_segment(got, (uint32_t)flen, sp, 1448, i, n)
			  : of_check_csums(got, (uint32_t)flen, lay, 4, false);
		if (why)
			fail_msg("seed %u, segment %u: %s", sp->seed, i, why);
	}
}

/* Broadcast GSO frames, and broadcast frames with their checksum left to
 * the receiver, to two VMs without the offload and one with it: each VM
 * without it gets every segment (or the finished checksum) right, the one
 * with it the frame whole. Two frames in one burst (nothing of the first's
 * work may serve the second), then one through the zero-copy pair. */
static void test_a_broadcast_frame_is_segmented_or_finished_right_for_each_vm(void **state)
{
	static uint8_t first[VDEMUX_PAGE_SIZE + BIG + 64];
	struct vt_fx *fx = fx_new(state);
	struct vt_vm *vms[2] = {vm_new(fx, 0, 0), vm_new(fx, 0, 0)};
	struct vt_vm *t = vm_new(fx, VDEMUX_OFFLOAD_CSUM | VDEMUX_OFFLOAD_TSO4, 10);
	unsigned ncpl;

	for (int g = 0; g < 2; g++) {
		struct of_spec sp[3];
		struct of_layout lay[3];
		uint32_t len[3];
		struct vdemux_frame f[2];

		len[0] = bcast_frame(vms[0], g == 0, 0, &sp[0], &lay[0]);
		memcpy(first, frame, len[0]);
		len[1] = bcast_frame(vms[0], g == 0, 1, &sp[1], &lay[1]);
		f[0] = (struct vdemux_frame){
			.data = first, .len = len[0], .flags = VDEMUX_FRAME_VNET_HDR(10)};
		f[1] = (struct vdemux_frame){
			.data = frame, .len = len[1], .flags = VDEMUX_FRAME_VNET_HDR(10)};
		assert_int_equal(vdemux_rx_burst(fx->eng, f, 2), 2);
		vt_check(fx);
		for (int v = 0; v < 2; v++)
			for (int k = 0; k < 2; k++)
				expect_done(fx, vms[v], g == 0, &sp[k], &lay[k]);
		assert_int_equal(take_frame(fx, t, &ncpl), (int)(10 + lay[0].len));
		assert_memory_equal(got + 10, first + 10, lay[0].len);
		assert_int_equal(take_frame(fx, t, &ncpl), (int)(10 + lay[1].len));
		assert_memory_equal(got + 10, frame + 10, lay[1].len);

		len[2] = bcast_frame(vms[0], g == 0, 2, &sp[2], &lay[2]);
		send_zc(fx, len[2]);
		vt_check(fx);
		for (int v = 0; v < 2; v++) {
			expect_done(fx, vms[v], g == 0, &sp[2], &lay[2]);
			assert_int_equal(take_frame(fx, vms[v], &ncpl), -1);
		}
		assert_int_equal(take_frame(fx, t, &ncpl), (int)(10 + lay[2].len));
		assert_int_equal(take_frame(fx, t, &ncpl), -1);
	}
	/* counted per destination: two for each of the three frames */
	assert_int_equal(vt_stats(fx).offload_segmented, 6);
	assert_int_equal(vt_stats(fx).offload_csums, 6);
}

static void test_a_tso_frame_with_ecn_passes_only_to_a_vm_that_takes_ecn(void **state)
{
	struct vt_fx *fx = fx_new(state);
	struct vt_vm *ecn = vm_new(fx, VDEMUX_OFFLOAD_CSUM | VDEMUX_OFFLOAD_TSO4 | VDEMUX_OFFLOAD_ECN,
				   10);
	struct vt_vm *no_ecn = vm_new(fx, VDEMUX_OFFLOAD_CSUM | VDEMUX_OFFLOAD_TSO4, 10);
	static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	struct of_spec s = spec(ecn, 4, false, 5000);
	struct of_layout lay;
	unsigned ncpl, i;
	int flen;

	s.dst = bcast;
	s.tcp_flags |= OF_TCP_CWR;
	assert_int_equal(send(fx, build(&s, VDEMUX_VNET_HDR_F_NEEDS_CSUM,
					VDEMUX_VNET_GSO_TCPV4 | VDEMUX_VNET_GSO_ECN, 1000, &lay)),
			 1);
	assert_int_equal(take_frame(fx, ecn, &ncpl), (int)(10 + lay.len));
	assert_int_equal(got[1], VDEMUX_VNET_GSO_TCPV4 | VDEMUX_VNET_GSO_ECN);
	assert_memory_equal(got + 10, frame + 10, lay.len);
	for (i = 0; (flen = take_frame(fx, no_ecn, &ncpl)) >= 0; i++) {
		const char *why = of_check_segment(got + 10, (uint32_t)flen - 10, &s, 1000, i, 5);

		assert_int_equal(got[0], VDEMUX_VNET_HDR_F_DATA_VALID);
		assert_int_equal(got[1], VDEMUX_VNET_GSO_NONE);
		if (why)
			fail_msg("segment %u: %s", i, why);
	}
	assert_int_equal(i, 5);
}

static void test_uso_frames_are_segmented_over_ipv4_and_ipv6(void **state)
{
	struct vt_fx *fx = fx_new(state);
	struct vt_vm *vm = vm_new(fx, 0, 0);
	struct of_spec s4 = spec(vm, 4, true, 30001), s6 = spec(vm, 6, true, 8000);

	expect_segments(fx, vm, &s4, VDEMUX_VNET_GSO_UDP_L4, 1472, false);
	expect_segments(fx, vm, &s6, VDEMUX_VNET_GSO_UDP_L4, 1000, true);
}

static void test_a_gso_frame_of_one_segment_goes_out_whole_with_its_checksum(void **state)
{
	struct vt_fx *fx = fx_new(state);
	struct vt_vm *vm = vm_new(fx, 0, 0);
	struct of_spec s = spec(vm, 4, false, 1000);

	expect_segments(fx, vm, &s, VDEMUX_VNET_GSO_TCPV4, 1448, false);
}

static void test_segments_consume_one_buffer_each_and_drop_by_reason(void **state)
{
	struct vt_fx *fx = fx_new(state);
	struct vdemux_vm_opts o = vt_vm_opts(fx, 4);
	struct vt_vm *vm;
	struct of_spec s;
	struct of_layout lay;
	struct vdemux_vm_stats vs;

	o.flags = VDEMUX_VM_F_UNPOPULATED;
	vm = vt_vm_add(fx, &o);
	vt_post_range(fx, vm, 0, 4);
	s = spec(vm, 4, false, 10 * 1000);
	assert_int_equal(
		send(fx, build(&s, VDEMUX_VNET_HDR_F_NEEDS_CSUM, VDEMUX_VNET_GSO_TCPV4, 1000, &lay)), 1);
	vs = vt_vm_stats(fx, vm);
	assert_int_equal(vs.delivered, 4);
	assert_int_equal(vs.drops[VDEMUX_DROP_NO_BUFFER], 6);
	assert_int_equal(vt_stats(fx).offload_segments, 10);
	vt_check(fx);
}

/* ---- refusals ---- */

struct bad_case {
	const char *what;
	int reason;
	void (*spoil)(uint8_t *f, struct of_layout *lay);
};

static void sp_flags(uint8_t *f, struct of_layout *l)
{
	(void)l;
	f[0] |= 0x10;
}
static void sp_gso_type(uint8_t *f, struct of_layout *l)
{
	(void)l;
	f[1] = 2;
}
static void sp_ecn_alone(uint8_t *f, struct of_layout *l)
{
	(void)l;
	f[1] = VDEMUX_VNET_GSO_ECN;
	f[4] = 0;
}
static void sp_hdr_len(uint8_t *f, struct of_layout *l)
{
	of_hdr(f, 1, 1, (uint16_t)(l->len + 1), 1000, (uint16_t)l->l4, 16);
}
static void sp_csum_start(uint8_t *f, struct of_layout *l)
{
	of_hdr(f, 1, 0, 0, 0, (uint16_t)(l->len - 1), 0);
}
static void sp_csum_offset(uint8_t *f, struct of_layout *l)
{
	of_hdr(f, 1, 0, 0, 0, (uint16_t)l->l4, (uint16_t)(l->len - l->l4 - 1));
}
static void sp_csum_huge(uint8_t *f, struct of_layout *l)
{
	(void)l;
	of_hdr(f, 1, 0, 0, 0, 0xffff, 0xffff);
}
static void sp_gso_no_csum(uint8_t *f, struct of_layout *l)
{
	f[0] = 0;
	(void)l;
}
static void sp_tcp_csum_offset(uint8_t *f, struct of_layout *l)
{
	of_hdr(f, 1, 1, 0, 1000, (uint16_t)l->l4, 6);
}
static void sp_gso_size(uint8_t *f, struct of_layout *l)
{
	(void)l;
	f[4] = f[5] = 0;
}
static void sp_v6_as_v4(uint8_t *f, struct of_layout *l)
{
	(void)l;
	f[1] = VDEMUX_VNET_GSO_TCPV6;
}
static void sp_start_not_l4(uint8_t *f, struct of_layout *l)
{
	of_hdr(f, 1, 1, 0, 1000, (uint16_t)(l->l4 + 4), 16);
}
static void sp_ip_len(uint8_t *f, struct of_layout *l)
{
	f[10 + l->l3 + 3] ^= 1;
}
static void sp_fragment(uint8_t *f, struct of_layout *l)
{
	f[10 + l->l3 + 6] |= 0x20;
}
static void sp_not_tcp(uint8_t *f, struct of_layout *l)
{
	f[10 + l->l3 + 9] = 17;
}
static void sp_doff(uint8_t *f, struct of_layout *l)
{
	f[10 + l->l4 + 12] = 0x40;
}
static void sp_not_ip(uint8_t *f, struct of_layout *l)
{
	(void)l;
	f[10 + 12] = 0x88;
}
static void sp_segs(uint8_t *f, struct of_layout *l)
{
	(void)l;
	f[4] = 1;
	f[5] = 0;
}

static const struct bad_case bad_cases[] = {
	{"unknown flag", VDEMUX_OFFLOAD_BAD_FLAGS, sp_flags},
	{"unknown gso_type", VDEMUX_OFFLOAD_BAD_FLAGS, sp_gso_type},
	{"ECN without GSO", VDEMUX_OFFLOAD_BAD_FLAGS, sp_ecn_alone},
	{"hdr_len past the end", VDEMUX_OFFLOAD_BAD_HDR_LEN, sp_hdr_len},
	{"csum_start at the last byte", VDEMUX_OFFLOAD_BAD_CSUM, sp_csum_start},
	{"csum field past the end", VDEMUX_OFFLOAD_BAD_CSUM, sp_csum_offset},
	{"csum_start and offset 65535", VDEMUX_OFFLOAD_BAD_CSUM, sp_csum_huge},
	{"GSO without NEEDS_CSUM", VDEMUX_OFFLOAD_BAD_CSUM, sp_gso_no_csum},
	{"TSO with the UDP checksum offset", VDEMUX_OFFLOAD_BAD_CSUM, sp_tcp_csum_offset},
	{"gso_size 0", VDEMUX_OFFLOAD_BAD_GSO_SIZE, sp_gso_size},
	{"TCPV6 on IPv4", VDEMUX_OFFLOAD_BAD_HEADERS, sp_v6_as_v4},
	{"csum_start not at TCP", VDEMUX_OFFLOAD_BAD_HEADERS, sp_start_not_l4},
	{"IP total length wrong", VDEMUX_OFFLOAD_BAD_HEADERS, sp_ip_len},
	{"an IP fragment", VDEMUX_OFFLOAD_BAD_HEADERS, sp_fragment},
	{"UDP under TCPV4", VDEMUX_OFFLOAD_BAD_HEADERS, sp_not_tcp},
	{"TCP header shorter than 20", VDEMUX_OFFLOAD_BAD_HEADERS, sp_doff},
	{"not IP", VDEMUX_OFFLOAD_BAD_HEADERS, sp_not_ip},
	{"more than 256 segments", VDEMUX_OFFLOAD_BAD_SEGS, sp_segs},
};

static void test_each_bad_metadata_is_refused_counted_and_delivers_nothing(void **state)
{
	struct vt_fx *fx = fx_new(state);
	struct vt_vm *plain = vm_new(fx, 0, 0), *acc = vm_new(fx, VDEMUX_OFFLOAD_ALL, 12);
	static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	struct of_layout lay;
	unsigned ncpl;

	(void)plain;
	for (size_t k = 0; k < sizeof(bad_cases) / sizeof(bad_cases[0]); k++) {
		struct of_spec s = spec(acc, 4, false, 2000);
		struct vdemux_engine_stats before, after;
		uint32_t len;

		s.dst = bcast;
		len = build(&s, VDEMUX_VNET_HDR_F_NEEDS_CSUM, VDEMUX_VNET_GSO_TCPV4, 1000, &lay);
		bad_cases[k].spoil(frame, &lay);
		before = vt_stats(fx);
		if (k % 2)
			send_zc(fx, len);
		else
			assert_int_equal(send(fx, len), 1);
		after = vt_stats(fx);
		if (after.offload_bad[bad_cases[k].reason] != before.offload_bad[bad_cases[k].reason] + 1)
			fail_msg("%s: not counted as %s", bad_cases[k].what,
				 vdemux_offload_bad_name(bad_cases[k].reason));
		assert_int_equal(after.delivered, before.delivered);
		assert_int_equal(after.rx_frames, before.rx_frames + 1);
		for (unsigned v = 0; v < fx->nvms; v++)
			assert_int_equal(take_frame(fx, &fx->vms[v], &ncpl), -1);
		vt_check(fx);
	}
	assert_string_equal(vdemux_offload_bad_name(VDEMUX_OFFLOAD_BAD_CSUM), "csum");
	assert_string_equal(vdemux_offload_bad_name(99), "unknown");
}

static void test_ufo_passes_to_a_vm_with_ufo_and_is_refused_for_the_others(void **state)
{
	struct vt_fx *fx = fx_new(state);
	struct vt_vm *plain = vm_new(fx, 0, 0),
		     *ufo = vm_new(fx, VDEMUX_OFFLOAD_CSUM | VDEMUX_OFFLOAD_UFO, 10);
	static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	struct of_spec s = spec(ufo, 4, true, 5000);
	struct of_layout lay;
	unsigned ncpl;

	s.dst = bcast;
	assert_int_equal(
		send(fx, build(&s, VDEMUX_VNET_HDR_F_NEEDS_CSUM, VDEMUX_VNET_GSO_UDP, 1472, &lay)), 1);
	assert_int_equal(take_frame(fx, plain, &ncpl), -1);
	assert_int_equal(vt_stats(fx).offload_bad[VDEMUX_OFFLOAD_BAD_UFO], 1);
	assert_int_equal(take_frame(fx, ufo, &ncpl), (int)(10 + lay.len));
	assert_int_equal(got[1], VDEMUX_VNET_GSO_UDP);
	assert_memory_equal(got + 10, frame + 10, lay.len);
}

/* ---- the calls' own checks ---- */

static void test_bad_header_announcements_are_refused_and_change_nothing(void **state)
{
	struct vt_fx *fx = fx_new(state);
	struct vt_vm *vm = vm_new(fx, 0, 0);
	struct of_spec s = spec(vm, 4, false, 100);
	struct of_layout lay;
	uint32_t len = build(&s, 0, 0, 0, &lay);
	struct vdemux_frame f[] = {
		{.data = frame, .len = len, .flags = VDEMUX_FRAME_VNET_HDR(9)},
		{.data = frame, .len = len, .flags = 0x4},
		{.data = frame, .len = 10 + 13, .flags = VDEMUX_FRAME_VNET_HDR(10)},
	};
	struct vdemux_rx_buf b[2];
	struct vt_snap *snap;

	for (size_t k = 0; k < sizeof(f) / sizeof(f[0]); k++) {
		snap = vt_snap_take(fx);
		assert_int_equal(vdemux_rx_burst(fx->eng, &f[k], 1), -EINVAL);
		vt_snap_expect_same(fx, snap, VDEMUX_BAD_FRAME_LEN);
		free(snap);
	}
	assert_int_equal(vdemux_rx_alloc(fx->eng, b, 2), 2);
	/* A header in a frame's second buffer; a first buffer that is all header. */
	b[0] = (struct vdemux_rx_buf){
		.data = b[0].data, .id = b[0].id, .len = VDEMUX_PAGE_SIZE, .flags = VDEMUX_RXBUF_MORE};
	b[1] = (struct vdemux_rx_buf){
		.data = b[1].data, .id = b[1].id, .len = 100, .flags = VDEMUX_RXBUF_VNET_HDR(10)};
	assert_int_equal(vdemux_rx_submit(fx->eng, b, 2), -EINVAL);
	b[0].len = 10;
	b[0].off = VDEMUX_PAGE_SIZE - 10;
	b[0].flags = VDEMUX_RXBUF_MORE | VDEMUX_RXBUF_VNET_HDR(10);
	b[1].flags = 0;
	assert_int_equal(vdemux_rx_submit(fx->eng, b, 2), -EINVAL);
	assert_int_equal(vdemux_rx_abort(fx->eng, b, 2), 2);
	assert_int_equal(vt_stats(fx).rx_frames, 0);
	vt_check(fx);
}

static void test_vm_offload_options_are_checked(void **state)
{
	struct vt_fx *fx = fx_new(state);
	struct vdemux_vm_opts o = vt_vm_opts(fx, 4);
	vdemux_vm_id id;

	o.flags = VDEMUX_VM_F_UNPOPULATED;
	o.offloads = VDEMUX_OFFLOAD_CSUM; /* without a header */
	assert_int_equal(vdemux_vm_add(fx->eng, &id, &o), -EINVAL);
	o.vnet_hdr_len = 11;
	assert_int_equal(vdemux_vm_add(fx->eng, &id, &o), -EINVAL);
	o.vnet_hdr_len = 12;
	o.offloads = 0x80;
	assert_int_equal(vdemux_vm_add(fx->eng, &id, &o), -EINVAL);
	o.offloads = VDEMUX_OFFLOAD_ALL;
	assert_int_equal(vdemux_vm_add(fx->eng, &id, &o), 0);
	assert_int_equal(vdemux_vm_remove(fx->eng, id), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_metadata_reaches_a_vm_that_accepts_it_in_its_header,
					  vt_teardown),
		cmocka_unit_test_teardown(test_a_vm_with_a_header_and_no_offload_gets_a_zero_header,
					  vt_teardown),
		cmocka_unit_test_teardown(test_a_stripped_tag_moves_csum_start_and_hdr_len_in_the_header,
					  vt_teardown),
		cmocka_unit_test_teardown(test_checksum_is_finished_for_a_vm_without_checksum_offload,
					  vt_teardown),
		cmocka_unit_test_teardown(test_a_64k_tso4_frame_is_segmented_for_a_vm_without_tso4,
					  vt_teardown),
		cmocka_unit_test_teardown(test_a_tso4_frame_from_lent_pages_is_segmented, vt_teardown),
		cmocka_unit_test_teardown(
			test_a_broadcast_frame_is_segmented_or_finished_right_for_each_vm, vt_teardown),
		cmocka_unit_test_teardown(test_a_tso6_frame_is_segmented_for_a_vm_without_tso6,
					  vt_teardown),
		cmocka_unit_test_teardown(test_a_tso_frame_with_ecn_passes_only_to_a_vm_that_takes_ecn,
					  vt_teardown),
		cmocka_unit_test_teardown(test_uso_frames_are_segmented_over_ipv4_and_ipv6, vt_teardown),
		cmocka_unit_test_teardown(
			test_a_gso_frame_of_one_segment_goes_out_whole_with_its_checksum, vt_teardown),
		cmocka_unit_test_teardown(test_segments_consume_one_buffer_each_and_drop_by_reason,
					  vt_teardown),
		cmocka_unit_test_teardown(test_each_bad_metadata_is_refused_counted_and_delivers_nothing,
					  vt_teardown),
		cmocka_unit_test_teardown(test_ufo_passes_to_a_vm_with_ufo_and_is_refused_for_the_others,
					  vt_teardown),
		cmocka_unit_test_teardown(test_bad_header_announcements_are_refused_and_change_nothing,
					  vt_teardown),
		cmocka_unit_test_teardown(test_vm_offload_options_are_checked, vt_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

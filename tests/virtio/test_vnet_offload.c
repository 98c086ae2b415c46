/* SPDX-License-Identifier: MIT */
/*
 * Offload metadata into virtio-net receive queues: simulated Linux 6.1
 * guests (tests/support/vnet_guest.h) read the header the queue wrote.
 * A guest that negotiated what a frame needs finds the metadata there (and
 * a big-packet guest gets the frame's own pages flipped, its header read
 * from the TAP-style header in front of the frame); one that did not gets
 * the checksum finished or the segments, each checked with the test's own
 * checksum routine.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <vdemux/vdemux.h>

#include "oframe.h"
#include "rqfx.h"

#define RAM_PAGES 2048u
#define RAM ((uint64_t)RAM_PAGES * VDEMUX_PAGE_SIZE)
#define QSIZE 256u
#define MAXF 65536u

#define V1 VD_VIRTIO_F_VERSION_1
#define MRG VD_VIRTIO_NET_F_MRG_RXBUF
#define IND VD_VIRTIO_F_INDIRECT_DESC
#define F_CSUM (1ull << 1)
#define F_TSO4 (1ull << 7)
#define F_TSO6 (1ull << 8)
#define F_ECN (1ull << 9)

struct world {
	struct rqfx r;
	vdemux_vnet_rxq *q;
	struct vng g;
	uint8_t mac[6];
	uint8_t frame[MAXF + 64];
	uint8_t rx[MAXF + 64];
};

static struct world *world_new(enum vng_mode mode, uint64_t features)
{
	struct world *w = calloc(1, sizeof(*w));
	struct vng_opts vo = {.mode = mode, .qsize = QSIZE, .features = features, .mem_size = RAM};

	assert_non_null(w);
	rqfx_init(&w->r,
		  &(struct rqfx_opts){.ram_pages = RAM_PAGES, .pool_pages = 512, .max_frame = MAXF});
	struct vdemux_vnet_rxq_opts qo = rqfx_rxq_opts(&w->r);
	qo.copy = VDEMUX_COPY_NEVER;
	memcpy(w->mac, (uint8_t[6]){0x02, 0, 0, 0, 1, 1}, 6);
	w->q = rqfx_rxq_add(&w->r, &qo, w->mac);
	rqfx_driver_start(&w->r, w->q, &w->g, &vo);
	return w;
}

static void world_free(struct world *w)
{
	char msg[200];

	assert_int_equal(vdemux_engine_check(w->r.eng, msg, sizeof(msg)), 0);
	vdemux_vnet_rxq_destroy(w->q);
	vng_fini(&w->g);
	rqfx_fini(&w->r);
	free(w);
}

static struct of_spec spec(struct world *w, int ipv, bool udp, uint32_t payload)
{
	return (struct of_spec){.dst = w->mac,
				.ipv = ipv,
				.udp = udp,
				.payload = payload,
				.seed = 3,
				.tcp_flags = OF_TCP_ACK | OF_TCP_PSH,
				.seq = 1000,
				.ip_id = 7};
}

/* Build into w->frame with a 10-byte header in front; returns its length. */
static uint32_t build(struct world *w, const struct of_spec *s, uint8_t gso, uint16_t mss,
		      struct of_layout *lay)
{
	*lay = of_build(w->frame + 10, s);
	of_hdr(w->frame, VDEMUX_VNET_HDR_F_NEEDS_CSUM, gso, (uint16_t)lay->hlen, mss, (uint16_t)lay->l4,
	       s->udp ? 6 : 16);
	return 10 + lay->len;
}

/* As a VMM reading a TAP with IFF_VNET_HDR would: header at 22, frame at 32. */
static void send_zc(struct world *w, uint32_t len)
{
	assert_int_equal(of_send_zc(w->r.eng, w->frame, len), 0);
}

static void send(struct world *w, uint32_t len)
{
	struct vdemux_frame f = {.data = w->frame, .len = len, .flags = VDEMUX_FRAME_VNET_HDR(10)};

	assert_int_equal(vdemux_rx_burst(w->r.eng, &f, 1), 1);
}

static struct vdemux_vnet_rxq_stats q_stats(struct world *w)
{
	struct vdemux_vnet_rxq_stats s;

	assert_int_equal(vdemux_vnet_rxq_stats(w->q, &s, sizeof(s)), 0);
	return s;
}

static void test_a_tso_guest_gets_the_metadata_and_the_frame_flipped(void **state)
{
	struct world *w = world_new(VNG_BIG, V1 | F_CSUM | F_TSO4 | F_TSO6);
	struct of_spec s = spec(w, 4, false, MAXF - 54);
	struct of_layout lay;
	struct vng_hdr h;

	(void)state;
	send_zc(w, build(w, &s, VDEMUX_VNET_GSO_TCPV4, 1448, &lay));
	assert_int_equal(vng_recv(&w->g, &h, w->rx, sizeof(w->rx)), (int)lay.len);
	assert_int_equal(h.flags, VDEMUX_VNET_HDR_F_NEEDS_CSUM);
	assert_int_equal(h.gso_type, VDEMUX_VNET_GSO_TCPV4);
	assert_int_equal(h.gso_size, 1448);
	assert_int_equal(h.hdr_len, lay.hlen);
	assert_int_equal(h.csum_start, lay.l4);
	assert_int_equal(h.csum_offset, 16);
	assert_memory_equal(w->rx, w->frame + 10, lay.len);
	assert_int_equal(q_stats(w).flipped, 1);
	/* The same through the copy-in path. */
	send(w, build(w, &s, VDEMUX_VNET_GSO_TCPV4, 1448, &lay));
	assert_int_equal(vng_recv(&w->g, &h, w->rx, sizeof(w->rx)), (int)lay.len);
	assert_int_equal(h.gso_type, VDEMUX_VNET_GSO_TCPV4);
	assert_memory_equal(w->rx, w->frame + 10, lay.len);
	world_free(w);
}

/* One frame, two destinations: the guest that negotiated TSO gets the
 * frame's own pages with the metadata, an engine VM without offloads the
 * segments. */
static void test_one_frame_is_flipped_to_one_destination_and_segmented_for_another(void **state)
{
	struct world *w = world_new(VNG_BIG, V1 | F_CSUM | F_TSO4);
	static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	struct of_spec s = spec(w, 4, false, 30000);
	struct vdemux_backend *sim;
	struct vdemux_completion c;
	struct of_layout lay;
	struct vng_hdr h;
	vdemux_vm_id vm;
	uint32_t mss = 1448, n = (s.payload + mss - 1) / mss, i = 0;

	(void)state;
	assert_int_equal(vdemux_sim_create(&sim, NULL), 0);
	assert_int_equal(vdemux_engine_add_backend(w->r.eng, sim), 0);
	struct vdemux_vm_opts vo = VDEMUX_OPTS(vdemux_vm_opts, .rx_base = 1ull << 40, .rx_pages = 32,
					       .flags = VDEMUX_VM_F_UNPOPULATED, .backends = &sim,
					       .n_backends = 1);
	assert_int_equal(vdemux_vm_add(w->r.eng, &vm, &vo), 0);
	for (uint64_t k = 0; k < 32; k++) {
		uint64_t g = vo.rx_base + k * VDEMUX_PAGE_SIZE;

		assert_int_equal(vdemux_vm_post_rx(w->r.eng, vm, &g, 1), 1);
	}
	assert_int_equal(vdemux_l2_vlan_join(vdemux_engine_l2(w->r.eng), vm, 1, 0), 0);
	s.dst = bcast;
	send_zc(w, build(w, &s, VDEMUX_VNET_GSO_TCPV4, (uint16_t)mss, &lay));
	assert_int_equal(vng_recv(&w->g, &h, w->rx, sizeof(w->rx)), (int)lay.len);
	assert_int_equal(h.gso_type, VDEMUX_VNET_GSO_TCPV4);
	assert_memory_equal(w->rx, w->frame + 10, lay.len);
	assert_int_equal(q_stats(w).flipped, 1);
	while (vdemux_vm_poll(w->r.eng, vm, &c, 1) == 1) {
		const char *why;

		assert_int_equal(vdemux_sim_read(sim, vm, c.gpa, w->rx, c.len), 0);
		why = of_check_segment(w->rx, c.len, &s, mss, i, n);
		if (why)
			fail_msg("segment %u: %s", i, why);
		i++;
	}
	assert_int_equal(i, n);
	assert_int_equal(vdemux_vm_remove(w->r.eng, vm), 0);
	world_free(w);
}

static void test_a_tso_frame_with_ecn_is_segmented_for_a_guest_without_guest_ecn(void **state)
{
	struct world *w = world_new(VNG_MERGEABLE, V1 | MRG | F_CSUM | F_TSO6);
	struct of_spec s = spec(w, 6, false, 40000);
	struct of_layout lay;
	struct vng_hdr h;
	uint32_t mss = 1400, n = (s.payload + mss - 1) / mss, i;
	int len;

	(void)state;
	s.tcp_flags |= OF_TCP_CWR | OF_TCP_FIN;
	send(w, build(w, &s, VDEMUX_VNET_GSO_TCPV6 | VDEMUX_VNET_GSO_ECN, (uint16_t)mss, &lay));
	for (i = 0; (len = vng_recv(&w->g, &h, w->rx, sizeof(w->rx))) != -EAGAIN; i++) {
		const char *why;

		assert_true(len > 0);
		why = of_check_segment(w->rx, (uint32_t)len, &s, mss, i, n);
		if (why)
			fail_msg("segment %u: %s", i, why);
		assert_int_equal(h.flags, VDEMUX_VNET_HDR_F_DATA_VALID);
		assert_int_equal(h.gso_type, 0);
		assert_int_equal(h.num_buffers, 1);
	}
	assert_int_equal(i, n);
	assert_int_equal(q_stats(w).frames, n);
	world_free(w);
}

static void test_a_tso4_frame_is_segmented_into_big_packet_buffers_of_a_guest_without_tso4(void **state)
{
	struct world *w = world_new(VNG_BIG, V1 | IND | F_CSUM | F_TSO6 | F_ECN);
	struct of_spec s = spec(w, 4, false, MAXF - 54);
	struct of_layout lay;
	struct vng_hdr h;
	uint32_t mss = 1448, n = (s.payload + mss - 1) / mss, i;
	int len;

	(void)state;
	send_zc(w, build(w, &s, VDEMUX_VNET_GSO_TCPV4, (uint16_t)mss, &lay));
	for (i = 0; (len = vng_recv(&w->g, &h, w->rx, sizeof(w->rx))) != -EAGAIN; i++) {
		const char *why = of_check_segment(w->rx, (uint32_t)len, &s, mss, i, n);

		if (why)
			fail_msg("segment %u: %s", i, why);
		assert_int_equal(h.flags, VDEMUX_VNET_HDR_F_DATA_VALID);
	}
	assert_int_equal(i, n);
	world_free(w);
}

static void test_the_checksum_is_finished_for_a_guest_without_guest_csum(void **state)
{
	struct world *w = world_new(VNG_SMALL, V1);
	struct of_spec s = spec(w, 4, true, 1200);
	struct of_layout lay;
	struct vng_hdr h;

	(void)state;
	lay = of_build(w->frame + 10, &s);
	of_hdr(w->frame, VDEMUX_VNET_HDR_F_NEEDS_CSUM, 0, 0, 0, (uint16_t)lay.l4, 6);
	send(w, 10 + lay.len);
	assert_int_equal(vng_recv(&w->g, &h, w->rx, sizeof(w->rx)), (int)lay.len);
	assert_int_equal(h.flags, 0);
	assert_null(of_check_csums(w->rx, lay.len, &lay, 4, true));
	assert_memory_equal(w->rx + lay.hlen, w->frame + 10 + lay.hlen, lay.len - lay.hlen);
	world_free(w);
}

static void test_a_guest_with_guest_csum_gets_needs_csum_as_it_came(void **state)
{
	struct world *w = world_new(VNG_MERGEABLE, V1 | MRG | F_CSUM);
	struct of_spec s = spec(w, 6, false, 1300);
	struct of_layout lay;
	struct vng_hdr h;

	(void)state;
	lay = of_build(w->frame + 10, &s);
	of_hdr(w->frame, VDEMUX_VNET_HDR_F_NEEDS_CSUM, 0, 0, 0, (uint16_t)lay.l4, 16);
	send(w, 10 + lay.len);
	assert_int_equal(vng_recv(&w->g, &h, w->rx, sizeof(w->rx)), (int)lay.len);
	assert_int_equal(h.flags, VDEMUX_VNET_HDR_F_NEEDS_CSUM);
	assert_int_equal(h.csum_start, lay.l4);
	assert_int_equal(h.csum_offset, 16);
	assert_memory_equal(w->rx, w->frame + 10, lay.len);
	world_free(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_a_tso_guest_gets_the_metadata_and_the_frame_flipped),
		cmocka_unit_test(test_one_frame_is_flipped_to_one_destination_and_segmented_for_another),
		cmocka_unit_test(test_a_tso_frame_with_ecn_is_segmented_for_a_guest_without_guest_ecn),
		cmocka_unit_test(
			test_a_tso4_frame_is_segmented_into_big_packet_buffers_of_a_guest_without_tso4),
		cmocka_unit_test(test_the_checksum_is_finished_for_a_guest_without_guest_csum),
		cmocka_unit_test(test_a_guest_with_guest_csum_gets_needs_csum_as_it_came),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

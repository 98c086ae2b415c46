/* SPDX-License-Identifier: MIT */
/*
 * The flow hash (include/vdemux/flow.h) from outside: the Toeplitz hash
 * against the RSS verification values published with the algorithm (the
 * 40-byte key every RSS implementation tests with), frames parsed into the
 * right input (VLAN tags, fragments, IPv6, short frames), hash types
 * honoured, the symmetric hash alike for both directions of a flow, and
 * queues chosen evenly.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <vdemux/flow.h>

#include "rss_key.h"

/* A frame: Ethernet (@vlans tags first), then IPv4 or IPv6 with protocol
 * @proto from @src to @dst, then ports @sport -> @dport. Its length. */
struct flow_spec {
	int v6;
	unsigned vlans;
	uint8_t proto;
	uint8_t src[16], dst[16];
	uint16_t sport, dport;
	uint16_t frag; /* IPv4 flags/fragment offset field */
};

static size_t build(uint8_t *f, const struct flow_spec *s)
{
	size_t off = 12;
	memset(f, 0, 128);
	for (unsigned i = 0; i < s->vlans; i++, off += 4) {
		f[off] = i == 0 && s->vlans == 2 ? 0x88 : 0x81;
		f[off + 1] = i == 0 && s->vlans == 2 ? 0xa8 : 0x00;
	}
	f[off] = s->v6 ? 0x86 : 0x08;
	f[off + 1] = s->v6 ? 0xdd : 0x00;
	uint8_t *ip = f + off + 2, *l4;
	if (s->v6) {
		ip[0] = 0x60;
		ip[6] = s->proto;
		memcpy(ip + 8, s->src, 16);
		memcpy(ip + 24, s->dst, 16);
		l4 = ip + 40;
	} else {
		ip[0] = 0x45;
		ip[6] = (uint8_t)(s->frag >> 8);
		ip[7] = (uint8_t)s->frag;
		ip[9] = s->proto;
		memcpy(ip + 12, s->src, 4);
		memcpy(ip + 16, s->dst, 4);
		l4 = ip + 20;
	}
	l4[0] = (uint8_t)(s->sport >> 8);
	l4[1] = (uint8_t)s->sport;
	l4[2] = (uint8_t)(s->dport >> 8);
	l4[3] = (uint8_t)s->dport;
	return (size_t)(l4 - f) + 20;
}

static struct flow_spec v4(const uint8_t src[4], const uint8_t dst[4], uint16_t sport, uint16_t dport)
{
	struct flow_spec s = {.proto = 6, .sport = sport, .dport = dport};
	memcpy(s.src, src, 4);
	memcpy(s.dst, dst, 4);
	return s;
}

static void expect(const struct flow_spec *s, uint32_t types, int report, uint32_t want)
{
	uint8_t f[128];
	size_t len = build(f, s);
	uint32_t h = 0xdeadbeef;
	assert_int_equal(vdemux_flow_hash(f, len, ms_key, sizeof ms_key, types, &h), report);
	assert_int_equal(h, want);
}

static void test_toeplitz_ipv4_matches_rss_verification(void **state)
{
	(void)state;
	const uint8_t a[4] = {66, 9, 149, 187}, b[4] = {161, 142, 100, 80};
	const uint8_t c[4] = {199, 92, 111, 2}, d[4] = {65, 69, 140, 83};
	struct flow_spec s = v4(a, b, 2794, 1766);
	expect(&s, VDEMUX_FLOW_HASH_ALL, VDEMUX_FLOW_REPORT_TCPV4, 0x51ccc178);
	expect(&s, VDEMUX_FLOW_HASH_IPV4, VDEMUX_FLOW_REPORT_IPV4, 0x323e8fc2);
	s = v4(c, d, 14230, 4739);
	expect(&s, VDEMUX_FLOW_HASH_ALL, VDEMUX_FLOW_REPORT_TCPV4, 0xc626b0ea);
	expect(&s, VDEMUX_FLOW_HASH_IPV4, VDEMUX_FLOW_REPORT_IPV4, 0xd718262a);
}

static void test_toeplitz_ipv6_matches_rss_verification(void **state)
{
	(void)state;
	struct flow_spec s = {.v6 = 1, .proto = 6, .sport = 2794, .dport = 1766};
	const uint8_t src[16] = {0x3f, 0xfe, 0x25, 0x01, 0x02, 0x00, 0x1f, 0xff, 0, 0, 0, 0, 0, 0, 0, 7};
	const uint8_t dst[16] = {0x3f, 0xfe, 0x25, 0x01, 0x02, 0x00, 0x00, 0x03, 0, 0, 0, 0, 0, 0, 0, 1};
	memcpy(s.src, src, 16);
	memcpy(s.dst, dst, 16);
	expect(&s, VDEMUX_FLOW_HASH_ALL, VDEMUX_FLOW_REPORT_TCPV6, 0x40207d3d);
	expect(&s, VDEMUX_FLOW_HASH_IPV6, VDEMUX_FLOW_REPORT_IPV6, 0x2cc18cd5);
	/* The same flow as UDP: UDPV6 if asked for, else the addresses. */
	s.proto = 17;
	expect(&s, VDEMUX_FLOW_HASH_UDPV6, VDEMUX_FLOW_REPORT_UDPV6, 0x40207d3d);
	expect(&s, VDEMUX_FLOW_HASH_TCPV6 | VDEMUX_FLOW_HASH_IPV6, VDEMUX_FLOW_REPORT_IPV6, 0x2cc18cd5);
}

static void test_hash_types_not_asked_for_give_no_hash(void **state)
{
	(void)state;
	const uint8_t a[4] = {66, 9, 149, 187}, b[4] = {161, 142, 100, 80};
	struct flow_spec s = v4(a, b, 2794, 1766);
	expect(&s, VDEMUX_FLOW_HASH_IPV6 | VDEMUX_FLOW_HASH_TCPV6, VDEMUX_FLOW_REPORT_NONE, 0);
	expect(&s, 0, VDEMUX_FLOW_REPORT_NONE, 0);
	/* UDP over IPv4 with only TCPV4 asked for: the addresses if IPV4 is. */
	s.proto = 17;
	expect(&s, VDEMUX_FLOW_HASH_TCPV4 | VDEMUX_FLOW_HASH_IPV4, VDEMUX_FLOW_REPORT_IPV4, 0x323e8fc2);
	expect(&s, VDEMUX_FLOW_HASH_UDPV4, VDEMUX_FLOW_REPORT_UDPV4, 0x51ccc178);
}

static void test_vlan_tags_are_skipped(void **state)
{
	(void)state;
	const uint8_t a[4] = {66, 9, 149, 187}, b[4] = {161, 142, 100, 80};
	struct flow_spec s = v4(a, b, 2794, 1766);
	s.vlans = 1;
	expect(&s, VDEMUX_FLOW_HASH_ALL, VDEMUX_FLOW_REPORT_TCPV4, 0x51ccc178);
	s.vlans = 2;
	expect(&s, VDEMUX_FLOW_HASH_ALL, VDEMUX_FLOW_REPORT_TCPV4, 0x51ccc178);
	/* A third tag is not followed: not IP. */
	s.vlans = 3;
	expect(&s, VDEMUX_FLOW_HASH_ALL, VDEMUX_FLOW_REPORT_NONE, 0);
}

static void test_ipv4_fragments_hash_addresses_only(void **state)
{
	(void)state;
	const uint8_t a[4] = {66, 9, 149, 187}, b[4] = {161, 142, 100, 80};
	struct flow_spec s = v4(a, b, 2794, 1766);
	s.frag = 0x2000; /* more fragments */
	expect(&s, VDEMUX_FLOW_HASH_ALL, VDEMUX_FLOW_REPORT_IPV4, 0x323e8fc2);
	s.frag = 0x0010; /* a later fragment */
	expect(&s, VDEMUX_FLOW_HASH_ALL, VDEMUX_FLOW_REPORT_IPV4, 0x323e8fc2);
	s.frag = 0x4000; /* don't fragment: a whole datagram */
	expect(&s, VDEMUX_FLOW_HASH_ALL, VDEMUX_FLOW_REPORT_TCPV4, 0x51ccc178);
}

static void test_short_or_non_ip_frames_have_no_hash(void **state)
{
	(void)state;
	const uint8_t a[4] = {66, 9, 149, 187}, b[4] = {161, 142, 100, 80};
	struct flow_spec s = v4(a, b, 2794, 1766);
	uint8_t f[128];
	size_t len = build(f, &s);
	uint32_t h = 1;
	/* Cut inside the ports: addresses only; inside the IP header: nothing. */
	assert_int_equal(vdemux_flow_hash(f, 14 + 20 + 3, ms_key, 40, VDEMUX_FLOW_HASH_ALL, &h),
			 VDEMUX_FLOW_REPORT_IPV4);
	assert_int_equal(h, 0x323e8fc2);
	assert_int_equal(vdemux_flow_hash(f, 14 + 19, ms_key, 40, VDEMUX_FLOW_HASH_ALL, &h),
			 VDEMUX_FLOW_REPORT_NONE);
	assert_int_equal(h, 0);
	assert_int_equal(vdemux_flow_hash(f, 13, NULL, 0, 0, &h), VDEMUX_FLOW_REPORT_NONE);
	/* An IHL under 5, or past the frame. */
	f[14] = 0x44;
	assert_int_equal(vdemux_flow_hash(f, len, ms_key, 40, VDEMUX_FLOW_HASH_ALL, &h), 0);
	f[14] = 0x4f;
	assert_int_equal(vdemux_flow_hash(f, 14 + 40, ms_key, 40, VDEMUX_FLOW_HASH_ALL, &h), 0);
	/* ARP. */
	f[12] = 0x08;
	f[13] = 0x06;
	assert_int_equal(vdemux_flow_hash(f, len, ms_key, 40, VDEMUX_FLOW_HASH_ALL, &h), 0);
	assert_int_equal(h, 0);
}

static void test_bad_arguments_einval_hash_unchanged(void **state)
{
	(void)state;
	uint8_t f[64] = {0};
	uint32_t h = 7;
	assert_int_equal(vdemux_flow_hash(NULL, 64, NULL, 0, 0, &h), -EINVAL);
	assert_int_equal(vdemux_flow_hash(f, 64, NULL, 0, 0, NULL), -EINVAL);
	assert_int_equal(vdemux_flow_hash(f, 64, ms_key, 39, 0, &h), -EINVAL);
	assert_int_equal(vdemux_flow_hash(f, 64, ms_key, 41, 0, &h), -EINVAL);
	assert_int_equal(h, 7);
	assert_int_equal(vdemux_flow_toeplitz(ms_key, 8, f, 5), 0);
	assert_int_equal(vdemux_flow_toeplitz(NULL, 40, f, 4), 0);
}

static void test_symmetric_hash_same_both_directions(void **state)
{
	(void)state;
	uint8_t f[128], g[128];
	unsigned differ = 0;
	for (unsigned i = 0; i < 64; i++) {
		const uint8_t a[4] = {10, 0, 0, (uint8_t)i}, b[4] = {192, 168, (uint8_t)(i * 7), 2};
		struct flow_spec s = v4(a, b, (uint16_t)(40000 + i), 5201),
				 t = v4(b, a, 5201, (uint16_t)(40000 + i));
		size_t lf = build(f, &s), lg = build(g, &t);
		uint32_t hf, hg, h0;
		assert_int_equal(vdemux_flow_hash(f, lf, NULL, 0, 0, &hf), VDEMUX_FLOW_REPORT_TCPV4);
		assert_int_equal(vdemux_flow_hash(g, lg, NULL, 0, 0, &hg), VDEMUX_FLOW_REPORT_TCPV4);
		assert_int_equal(hf, hg);
		s.sport = 40000;
		build(f, &s);
		assert_int_equal(vdemux_flow_hash(f, lf, NULL, 0, 0, &h0), VDEMUX_FLOW_REPORT_TCPV4);
		differ += h0 != hf;
	}
	/* And it tells flows apart: another source port, another hash. */
	assert_int_equal(differ, 63);
}

static void test_symmetric_hash_tells_apart_ports_changed_alike(void **state)
{
	(void)state;
	uint8_t f[128];
	const uint8_t a[4] = {10, 0, 0, 1}, b[4] = {10, 0, 0, 2};
	unsigned same = 0;
	/* Flows whose source and destination ports differ by the same bits:
	 * a hash that folds its input to 16 bits gives them one value. */
	for (uint16_t x = 1; x < 256; x++) {
		struct flow_spec s = v4(a, b, 40000, 5001), t = v4(a, b, 40000 ^ x, 5001 ^ x);
		uint32_t hs, ht;
		assert_int_equal(vdemux_flow_hash(f, build(f, &s), NULL, 0, 0, &hs),
				 VDEMUX_FLOW_REPORT_TCPV4);
		assert_int_equal(vdemux_flow_hash(f, build(f, &t), NULL, 0, 0, &ht),
				 VDEMUX_FLOW_REPORT_TCPV4);
		same += hs == ht;
	}
	assert_int_equal(same, 0);
}

static void test_queue_spread_evenly_and_in_range(void **state)
{
	(void)state;
	unsigned count[4] = {0};
	assert_int_equal(vdemux_flow_queue(0xffffffffu, 4), 3);
	assert_int_equal(vdemux_flow_queue(0, 4), 0);
	assert_int_equal(vdemux_flow_queue(123, 0), 0);
	assert_int_equal(vdemux_flow_queue(0xffffffffu, 1), 0);
	/* Symmetric hashes of 4096 TCP flows over 4 queues: none gets under
	 * a fifth or over a third of them. */
	uint8_t f[128];
	for (unsigned i = 0; i < 4096; i++) {
		const uint8_t a[4] = {10, 0, (uint8_t)(i >> 8), (uint8_t)i}, b[4] = {10, 0, 0, 1};
		struct flow_spec s = v4(a, b, (uint16_t)(32768 + i * 3), 5201);
		uint32_t h;
		vdemux_flow_hash(f, build(f, &s), NULL, 0, 0, &h);
		count[vdemux_flow_queue(h, 4)]++;
	}
	for (unsigned q = 0; q < 4; q++)
		assert_true(count[q] > 4096 / 5 && count[q] < 4096 / 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_toeplitz_ipv4_matches_rss_verification),
		cmocka_unit_test(test_toeplitz_ipv6_matches_rss_verification),
		cmocka_unit_test(test_hash_types_not_asked_for_give_no_hash),
		cmocka_unit_test(test_vlan_tags_are_skipped),
		cmocka_unit_test(test_ipv4_fragments_hash_addresses_only),
		cmocka_unit_test(test_short_or_non_ip_frames_have_no_hash),
		cmocka_unit_test(test_bad_arguments_einval_hash_unchanged),
		cmocka_unit_test(test_symmetric_hash_same_both_directions),
		cmocka_unit_test(test_symmetric_hash_tells_apart_ports_changed_alike),
		cmocka_unit_test(test_queue_spread_evenly_and_in_range),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

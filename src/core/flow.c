/* SPDX-License-Identifier: MIT */
/*
 * A frame's flow hash (include/vdemux/flow.h): the headers parsed into the
 * RSS hash input (addresses, then ports), then the Toeplitz hash of it.
 * Every read is bounded by the frame's length; nothing is kept.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include <vdemux/flow.h>

#define ETH_HLEN 14u
#define ETH_P_IP 0x0800u
#define ETH_P_IPV6 0x86ddu
#define ETH_P_8021Q 0x8100u
#define ETH_P_8021AD 0x88a8u
#define IPPROTO_TCP_ 6u
#define IPPROTO_UDP_ 17u

/* The hash input of one frame, in RSS order. */
struct flow_input {
	uint8_t bytes[36]; /* addresses (8 or 32), then ports (4) */
	size_t addr_len;   /* 8 (IPv4) or 32 (IPv6); 0: not IP */
	bool has_ports;	   /* TCP or UDP, ports read */
	bool udp;	   /* which, when has_ports */
};

/* The symmetric key: 0x6d5a repeated. Swapping source and destination
 * moves the input by a multiple of 16 bits, where this key looks the same. */
static const uint8_t sym_key[VDEMUX_FLOW_KEY_MAX] = {
	0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a,
	0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a,
	0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a};

uint32_t vdemux_flow_toeplitz(const uint8_t *key, size_t key_len, const void *input, size_t n)
{
	const uint8_t *in = input;
	uint32_t hash = 0;

	if (!key || !in || key_len < 4 || n > key_len - 4)
		return 0;
	/* The 32-bit window of the key at the current input bit. */
	uint32_t win = (uint32_t)key[0] << 24 | (uint32_t)key[1] << 16 | (uint32_t)key[2] << 8 | key[3];
	for (size_t i = 0; i < n; i++) {
		uint8_t next = key[i + 4];
		for (int b = 7; b >= 0; b--) {
			if (in[i] & (1u << b))
				hash ^= win;
			win = win << 1 | ((next >> b) & 1u);
		}
	}
	return hash;
}

unsigned vdemux_flow_queue(uint32_t hash, unsigned n)
{
	return (unsigned)(((uint64_t)hash * n) >> 32);
}

static uint16_t be16_at(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* The ports of a TCP or UDP header at @l4 (@left bytes), after the
 * addresses already in @in. */
static void l4_ports(struct flow_input *in, unsigned proto, const uint8_t *l4, size_t left)
{
	if ((proto != IPPROTO_TCP_ && proto != IPPROTO_UDP_) || left < 4)
		return;
	memcpy(in->bytes + in->addr_len, l4, 4);
	in->has_ports = true;
	in->udp = proto == IPPROTO_UDP_;
}

static void parse_ipv4(struct flow_input *in, const uint8_t *ip, size_t left)
{
	if (left < 20 || (ip[0] >> 4) != 4)
		return;
	size_t ihl = (size_t)(ip[0] & 0xf) * 4;
	if (ihl < 20 || ihl > left)
		return;
	memcpy(in->bytes, ip + 12, 8);
	in->addr_len = 8;
	/* A fragment (more to come, or not the first) has no ports to hash. */
	if (be16_at(ip + 6) & 0x3fffu)
		return;
	l4_ports(in, ip[9], ip + ihl, left - ihl);
}

static void parse_ipv6(struct flow_input *in, const uint8_t *ip, size_t left)
{
	if (left < 40 || (ip[0] >> 4) != 6)
		return;
	memcpy(in->bytes, ip + 8, 32);
	in->addr_len = 32;
	l4_ports(in, ip[6], ip + 40, left - 40);
}

static void parse(struct flow_input *in, const uint8_t *f, size_t len)
{
	size_t off = 12;
	memset(in, 0, sizeof(*in));
	if (len < ETH_HLEN)
		return;
	uint16_t type = be16_at(f + off);
	for (int tags = 0; tags < 2 && (type == ETH_P_8021Q || type == ETH_P_8021AD); tags++) {
		if (len < off + 6)
			return;
		off += 4;
		type = be16_at(f + off);
	}
	off += 2;
	if (type == ETH_P_IP)
		parse_ipv4(in, f + off, len - off);
	else if (type == ETH_P_IPV6)
		parse_ipv6(in, f + off, len - off);
}

/* What to hash under @types: the input bytes and the report type. */
static int choose(const struct flow_input *in, uint32_t types, size_t *n)
{
	bool v4 = in->addr_len == 8;
	uint32_t ip = v4 ? VDEMUX_FLOW_HASH_IPV4 : VDEMUX_FLOW_HASH_IPV6;
	uint32_t l4 = in->udp ? (v4 ? VDEMUX_FLOW_HASH_UDPV4 : VDEMUX_FLOW_HASH_UDPV6)
			      : (v4 ? VDEMUX_FLOW_HASH_TCPV4 : VDEMUX_FLOW_HASH_TCPV6);
	if (!in->addr_len)
		return VDEMUX_FLOW_REPORT_NONE;
	if (in->has_ports && (types & l4)) {
		*n = in->addr_len + 4;
		return in->udp ? (v4 ? VDEMUX_FLOW_REPORT_UDPV4 : VDEMUX_FLOW_REPORT_UDPV6)
			       : (v4 ? VDEMUX_FLOW_REPORT_TCPV4 : VDEMUX_FLOW_REPORT_TCPV6);
	}
	if (types & ip) {
		*n = in->addr_len;
		return v4 ? VDEMUX_FLOW_REPORT_IPV4 : VDEMUX_FLOW_REPORT_IPV6;
	}
	return VDEMUX_FLOW_REPORT_NONE;
}

int vdemux_flow_hash(const void *frame, size_t len, const uint8_t *key, size_t key_len,
		     uint32_t hash_types, uint32_t *hash)
{
	struct flow_input in;
	size_t n = 0;

	if (!frame || !hash || (key && (key_len < 40 || key_len > VDEMUX_FLOW_KEY_MAX)))
		return -EINVAL;
	if (!key) {
		key = sym_key;
		key_len = sizeof(sym_key);
		hash_types = VDEMUX_FLOW_HASH_ALL;
	}
	parse(&in, frame, len);
	int report = choose(&in, hash_types, &n);
	*hash = report == VDEMUX_FLOW_REPORT_NONE ? 0 : vdemux_flow_toeplitz(key, key_len, in.bytes, n);
	return report;
}

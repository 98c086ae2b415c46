/* SPDX-License-Identifier: MIT */
/*
 * Frames with virtio-net offload metadata, for the offload tests and the
 * fuzzer: TCP and UDP over IPv4 and IPv6 with a partial checksum (the
 * pseudo-header's sum in the checksum field, as Linux leaves it), their
 * virtio-net header, and checks of what came out, with a checksum routine
 * of its own (bytewise, unlike the library's). No CMocka in here: checks
 * return a message, or NULL when the frame is right.
 */
#ifndef OFRAME_H
#define OFRAME_H

#include <stdbool.h>
#include <stdint.h>

#include <vdemux/offload.h>
#include <vdemux/rx.h>

/* What to build. */
struct of_spec {
	const uint8_t *dst; /* destination MAC */
	int ipv;	    /* 4 or 6 */
	bool udp;	    /* UDP, else TCP */
	bool vlan;	    /* an 802.1Q tag (VID 5) after the MACs */
	uint32_t payload;   /* payload bytes (a pattern of seed) */
	uint32_t seed;
	uint8_t tcp_flags; /* e.g. ACK|PSH|FIN|CWR */
	uint32_t seq;	   /* TCP sequence number */
	uint16_t ip_id;
};

#define OF_TCP_FIN 0x01u
#define OF_TCP_PSH 0x08u
#define OF_TCP_ACK 0x10u
#define OF_TCP_CWR 0x80u

/* Offsets of what was built. */
struct of_layout {
	uint32_t len, l3, l4, hlen;
};

/* Build the frame into buf (room for its length): checksums partial (the
 * L4 field holds the pseudo-header's sum, the IPv4 header's is complete).
 * Returns its layout. */
struct of_layout of_build(uint8_t *buf, const struct of_spec *s);
/* The payload byte i of seed. */
uint8_t of_payload_byte(uint32_t seed, uint32_t i);

/* Fill a 10-byte little-endian virtio-net header. */
void of_hdr(uint8_t *h, uint8_t flags, uint8_t gso_type, uint16_t hdr_len, uint16_t gso_size,
	    uint16_t csum_start, uint16_t csum_offset);
/* Read one back. */
void of_hdr_read(const uint8_t *h, struct vdemux_vnet_hdr *out);

/* RFC 1071 sum of p[0, n) (bytewise, folded, not complemented). */
uint16_t of_sum(const uint8_t *p, uint32_t n, uint32_t start);

/* Whether the frame's IPv4 header checksum (if IPv4) and its L4 checksum
 * are right; NULL or what is wrong. */
const char *of_check_csums(const uint8_t *f, uint32_t len, const struct of_layout *lay, int ipv,
			   bool udp);

/* Check segment i (of n) of a frame built from spec s with gso_size mss:
 * lengths, IP id, TCP seq and flags, checksums, and its payload bytes.
 * NULL or what is wrong. */
const char *of_check_segment(const uint8_t *f, uint32_t len, const struct of_spec *s, uint32_t mss,
			     uint32_t i, uint32_t n);

/* Send @frame (a 10-byte virtio-net header, then the frame; @len bytes in
 * all) through the zero-copy pair as a VMM reading a TAP with IFF_VNET_HDR
 * would: the header at offset 22 of the first lent page, the frame at 32.
 * 0, or a negative errno: what vdemux_rx_submit() returned, or -ENOBUFS
 * when the pool could not lend the pages (those lent are given back). */
int of_send_zc(vdemux_engine *eng, const uint8_t *frame, uint32_t len);

#endif

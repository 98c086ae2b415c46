/* SPDX-License-Identifier: MIT */
/**
 * @file flow.h
 * @brief A frame's flow hash, to keep the frames of one flow on one of a
 *        guest's receive queues: the Toeplitz hash receive-side scaling
 *        uses (VIRTIO_NET_F_RSS, VIRTIO_NET_F_HASH_REPORT, with the key and
 *        hash types the driver set), or a symmetric one when the driver
 *        asked for none.
 *
 * The hash input is what RSS defines: for IPv4 and IPv6 the source then
 * destination address, and for TCP and UDP the source then destination
 * port after them, each in network byte order. The frame is parsed from its
 * Ethernet header, past up to two VLAN tags (0x8100, 0x88a8); an IPv4
 * fragment hashes its addresses only; IPv6 extension headers are not
 * followed (a TCP or UDP header behind one is not hashed: the addresses
 * are), so the _EX hash types are never reported. Nothing is read past
 * @c len bytes; a frame that is not IP, or too short for the header it
 * says it has, has no hash (report type NONE).
 *
 * Pure functions: no state, any thread.
 *
 * Stability: part of the public API.
 */
#ifndef VDEMUX_FLOW_H
#define VDEMUX_FLOW_H

#include <stddef.h>
#include <stdint.h>

#include <vdemux/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Hash types, the bits of VIRTIO_NET_RSS_HASH_TYPE_*. */
#define VDEMUX_FLOW_HASH_IPV4 (1u << 0)
#define VDEMUX_FLOW_HASH_TCPV4 (1u << 1) /**< with the ports */
#define VDEMUX_FLOW_HASH_UDPV4 (1u << 2) /**< with the ports */
#define VDEMUX_FLOW_HASH_IPV6 (1u << 3)
#define VDEMUX_FLOW_HASH_TCPV6 (1u << 4) /**< with the ports */
#define VDEMUX_FLOW_HASH_UDPV6 (1u << 5) /**< with the ports */
/** Every type this file computes. */
#define VDEMUX_FLOW_HASH_ALL 0x3fu

/** What a hash was computed over: the values of VIRTIO_NET_HASH_REPORT_*. */
enum vdemux_flow_report {
	VDEMUX_FLOW_REPORT_NONE = 0, /**< no hash: not IP, too short, or its type not asked for */
	VDEMUX_FLOW_REPORT_IPV4 = 1,
	VDEMUX_FLOW_REPORT_TCPV4 = 2,
	VDEMUX_FLOW_REPORT_UDPV4 = 3,
	VDEMUX_FLOW_REPORT_IPV6 = 4,
	VDEMUX_FLOW_REPORT_TCPV6 = 5,
	VDEMUX_FLOW_REPORT_UDPV6 = 6,
};

/** Longest RSS key used: an IPv6 address pair and ports (36 bytes) need 40. */
#define VDEMUX_FLOW_KEY_MAX 40u

/**
 * The flow hash of an Ethernet frame.
 *
 * With a key: the Toeplitz hash of the input the hash types allow (the
 * ports only when the TCP or UDP type of the frame's IP version is set,
 * else the addresses when its IP type is set, else none). Without one (@p
 * key NULL): a symmetric Toeplitz hash of every type (a fixed key whose
 * 16-bit period makes both directions of a flow hash alike), for a device
 * without RSS that wants a connection's two directions on one queue.
 *
 * @param frame       the frame's first bytes, from its Ethernet header
 * @param len         bytes at @p frame (at least the headers to hash)
 * @param key         the RSS key, or NULL for the symmetric hash
 * @param key_len     bytes of @p key: 40 (VIRTIO_NET's rss_max_key_size
 *                    as Linux sets it) or at most #VDEMUX_FLOW_KEY_MAX;
 *                    ignored without a key
 * @param hash_types  VDEMUX_FLOW_HASH_* allowed; ignored without a key
 * @param[out] hash   the hash; 0 when there is none
 * @return the report type (NONE: no hash, @p hash 0); -EINVAL (@p frame or
 *         @p hash NULL, or a key of fewer than 40 bytes, or more than
 *         #VDEMUX_FLOW_KEY_MAX): @p hash unchanged.
 */
VDEMUX_API int vdemux_flow_hash(const void *frame, size_t len, const uint8_t *key, size_t key_len,
				uint32_t hash_types, uint32_t *hash);

/**
 * The Toeplitz hash of @p n bytes of @p input under @p key, as RSS defines
 * it: for each input bit set, the 32 key bits starting at that bit's
 * position are XORed in. The key must have @p n + 4 bytes.
 * @return the hash; 0 when @p key or @p input is NULL or the key is short.
 */
VDEMUX_API uint32_t vdemux_flow_toeplitz(const uint8_t *key, size_t key_len, const void *input, size_t n);

/**
 * One of @p n queues for a hash, spread evenly (the hash's high bits:
 * (hash * n) >> 32, no division), for a device without an indirection
 * table. @return 0..n-1; 0 when @p n is 0.
 */
VDEMUX_API unsigned vdemux_flow_queue(uint32_t hash, unsigned n);

#ifdef __cplusplus
}
#endif
#endif

/* SPDX-License-Identifier: MIT */
/**
 * @file offload.h
 * @brief Offload metadata carried with a frame: virtio-net's header.
 *
 * A frame may come with the metadata a TAP device opened with IFF_VNET_HDR
 * puts before each frame it gives, or a guest puts before each frame it
 * transmits on virtio-net: a checksum left for someone else to finish
 * (NEEDS_CSUM), a checksum already checked (DATA_VALID), a TCP or UDP frame
 * larger than the wire takes, to be cut into gso_size-byte segments (GSO).
 * The VMM hands it over as the bytes it read: an announced header in front
 * of the frame (vdemux_frame::flags, vdemux_rx_buf::flags, see rx.h), in
 * the layout and byte order of struct vdemux_vnet_hdr.
 *
 * Each destination gets what it accepts: a virtio-net receive queue what
 * its guest negotiated (VIRTIO_NET_F_GUEST_CSUM, _GUEST_TSO4, _GUEST_TSO6,
 * _GUEST_ECN, _GUEST_UFO, _GUEST_USO4, _GUEST_USO6), an engine VM what
 * vdemux_vm_opts::offloads says (none by default). For a destination that
 * does not accept what a frame needs, the engine does what Linux does for a
 * port without the feature: it finishes the checksum, or cuts a TCP (IPv4,
 * IPv6) or UDP (USO) frame into segments, each a correct frame on the wire,
 * delivered by copy. See docs/virtio-net.md.
 *
 * The metadata is untrusted: a header whose fields do not fit its frame is
 * refused and counted (vdemux_engine_stats::offload_bad), never used to read
 * or write outside the frame.
 *
 * Stability: part of the public API.
 */
#ifndef VDEMUX_OFFLOAD_H
#define VDEMUX_OFFLOAD_H

#include <vdemux/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * virtio-net's header (struct virtio_net_hdr of VIRTIO 1.x, 5.1.6), the
 * first 10 bytes of every longer form (num_buffers, hash report): each
 * 16-bit field little-endian, as VIRTIO 1.x guests write it and a TAP
 * device writes it on a little-endian host (or with TUNSETVNETLE).
 */
struct vdemux_vnet_hdr {
	uint8_t flags;	  /**< VDEMUX_VNET_HDR_F_* */
	uint8_t gso_type; /**< VDEMUX_VNET_GSO_*, possibly | VDEMUX_VNET_GSO_ECN */
	uint16_t hdr_len; /**< a hint: bytes of headers (Linux writes its linear part); at most the frame */
	uint16_t gso_size; /**< GSO: payload bytes per segment */
	uint16_t csum_start; /**< NEEDS_CSUM: where the checksummed bytes start, from the frame's first byte */
	uint16_t csum_offset; /**< NEEDS_CSUM: where the checksum goes, from csum_start */
};

/** The bytes from csum_start on are not checksummed yet. */
#define VDEMUX_VNET_HDR_F_NEEDS_CSUM 0x1u
/** The frame's checksums were checked (given to a destination that accepts checksum offload only). */
#define VDEMUX_VNET_HDR_F_DATA_VALID 0x2u

#define VDEMUX_VNET_GSO_NONE 0u	  /**< not a GSO frame */
#define VDEMUX_VNET_GSO_TCPV4 1u  /**< TCP over IPv4 (TSO) */
#define VDEMUX_VNET_GSO_UDP 3u	  /**< legacy UDP fragmentation offload (UFO) */
#define VDEMUX_VNET_GSO_TCPV6 4u  /**< TCP over IPv6 */
#define VDEMUX_VNET_GSO_UDP_L4 5u /**< UDP segmentation (USO), IPv4 or IPv6 */
#define VDEMUX_VNET_GSO_ECN 0x80u /**< with TCP: the frame has CWR set (ECN) */

/** Most segments the engine cuts a GSO frame into; a frame that would take more is refused. */
#define VDEMUX_GSO_MAX_SEGS 256u

/** @name Offloads a VM accepts (vdemux_vm_opts::offloads)
 * The names are virtio-net's guest features. TSO, USO and UFO are taken only
 * with VDEMUX_OFFLOAD_CSUM (a GSO frame's checksum is always left to finish).
 * @{ */
#define VDEMUX_OFFLOAD_CSUM 0x01u /**< partial checksums (NEEDS_CSUM) and DATA_VALID */
#define VDEMUX_OFFLOAD_TSO4 0x02u /**< GSO TCPV4 */
#define VDEMUX_OFFLOAD_TSO6 0x04u /**< GSO TCPV6 */
#define VDEMUX_OFFLOAD_ECN 0x08u  /**< TSO frames with GSO_ECN */
#define VDEMUX_OFFLOAD_UFO 0x10u  /**< GSO UDP (UFO) */
#define VDEMUX_OFFLOAD_USO4 0x20u /**< GSO UDP_L4 over IPv4 */
#define VDEMUX_OFFLOAD_USO6 0x40u /**< GSO UDP_L4 over IPv6 */
#define VDEMUX_OFFLOAD_ALL 0x7fu  /**< every offload this version knows */
/** @} */

/** Why a frame's metadata was refused (vdemux_engine_stats::offload_bad). */
enum vdemux_offload_bad {
	VDEMUX_OFFLOAD_BAD_FLAGS = 0, /**< unknown header flag or gso_type */
	VDEMUX_OFFLOAD_BAD_CSUM, /**< csum_start + csum_offset + 2 past the frame's end; GSO without NEEDS_CSUM, or its checksum not the TCP/UDP one */
	VDEMUX_OFFLOAD_BAD_HDR_LEN,  /**< hdr_len past the frame's end */
	VDEMUX_OFFLOAD_BAD_GSO_SIZE, /**< GSO with gso_size 0 */
	VDEMUX_OFFLOAD_BAD_HEADERS, /**< the frame has not the headers its gso_type says (Ethernet, up to two VLAN tags, IPv4 without fragmentation or IPv6 without extension headers, then TCP or UDP at csum_start), or its IP lengths disagree with the frame */
	VDEMUX_OFFLOAD_BAD_SEGS,    /**< it would take more than VDEMUX_GSO_MAX_SEGS segments */
	VDEMUX_OFFLOAD_BAD_UFO, /**< (frame, destination): legacy UFO for a destination without it; not fragmented, dropped */
	VDEMUX_OFFLOAD_BAD__COUNT
};

/** Short name of an offload refusal ("csum", ...), or "unknown". */
VDEMUX_API const char *vdemux_offload_bad_name(int which);

#ifdef __cplusplus
}
#endif
#endif

/* SPDX-License-Identifier: MIT */
/*
 * What a virtio-net receive chain looks like, and whether its pages can be
 * flipped. Internal: the bottom of the coming virtio-net receive module.
 *
 * What Linux 6.1 posts (drivers/net/virtio_net.c and
 * drivers/virtio/virtio_ring.c of linux-source-6.1, read for the facts):
 *
 * Header (virtnet_probe): hdr_len = sizeof(struct virtio_net_hdr_v1_hash) =
 * 20 with VIRTIO_NET_F_HASH_REPORT; else sizeof(struct
 * virtio_net_hdr_mrg_rxbuf) = 12 with VIRTIO_NET_F_MRG_RXBUF or
 * VIRTIO_F_VERSION_1; else sizeof(struct virtio_net_hdr) = 10.
 *
 * Which mode (try_fill_recv): mergeable if MRG_RXBUF was negotiated; else
 * big if virtnet_set_big_packets() set big_packets (mtu > 1500, or any of
 * GUEST_TSO4/TSO6/ECN/UFO); else small.
 *
 * Big (add_recvbuf_big): big_packets_num_skbfrags + 2 scatterlist entries,
 * where num_skbfrags = MAX_SKB_FRAGS (17 with 4 KiB pages, include/linux/
 * skbuff.h) with guest GSO, else DIV_ROUND_UP(mtu, PAGE_SIZE). Entry 0 is
 * the header: offset 0 of a fresh page, hdr_len bytes. Entry 1 is the rest
 * of that page from offset sizeof(struct padded_vnet_hdr) = 32 (a 20-byte
 * v1_hash header plus 12 of padding) to its end: 4064 bytes. Entries 2.. are
 * whole pages, 4096 bytes each, each from get_a_page() (no order between
 * them). So 19 descriptors with GSO: 20 + 4064 + 17 * 4096 bytes offered.
 * The receive vq has no context in this mode (virtnet_find_vqs), so with
 * VIRTIO_RING_F_INDIRECT_DESC the chain is one ring descriptor flagged
 * INDIRECT (no WRITE, no NEXT) pointing at a kmalloc'd table of that many
 * entries, each WRITE|NEXT but the last (virtqueue_add_split,
 * alloc_indirect_split); without it, that many ring descriptors.
 * receive_big() rejects a used len above (num_skbfrags + 1) * 4096 - 32 +
 * hdr_len.
 *
 * Mergeable (add_recvbuf_mergeable, get_mergeable_buf_len): one descriptor
 * per buffer (the vq has context, so never indirect: vring_create_virtqueue
 * clears indirect for context vqs). Length ALIGN(hdr_len + clamp(average
 * packet length, min_buf_len, 4096 - hdr_len), 64) (1536 at first, with
 * min_buf_len = GOOD_PACKET_LEN 1518), or 4096 - room with XDP; carved one
 * after another from a 32 KiB compound page (skb_page_frag_refill,
 * SKB_FRAG_PAGE_ORDER), so not page aligned and free to cross 4 KiB
 * boundaries; the last buffer of a frag page takes the leftover tail when
 * another would not fit (1536 + 512 = 2048 for the 21st). A frame spans
 * num_buffers (header field) consecutive used entries.
 *
 * Small (add_recvbuf_small): one descriptor of hdr_len + GOOD_PACKET_LEN
 * (1518) bytes, starting VIRTNET_RX_PAD (NET_SKB_PAD 64 on x86) + XDP
 * headroom into a stride of SKB_DATA_ALIGN(hdr_len + 64 + 1518) +
 * SKB_DATA_ALIGN(sizeof(struct skb_shared_info)) carved from the same kind of
 * frag page; never indirect.
 *
 * In every mode a used len below hdr_len + 14 is counted as
 * rx_length_errors and the buffer recycled (receive_buf): that is why a
 * skipped chain can be answered with len 0.
 */
#ifndef VDEMUX_VIRTIO_VNET_RX_H
#define VDEMUX_VIRTIO_VNET_RX_H

#include <stdbool.h>
#include <stdint.h>

#include "virtio/vring.h"

#define VD_VIRTIO_NET_F_MRG_RXBUF (1ull << 15)
#define VD_VIRTIO_NET_F_HASH_REPORT (1ull << 57)

/* Longest flippable chain in pages: a 64 KiB frame and its header. */
#define VD_VNET_MAX_FLIP_PAGES 32u

enum vd_vnet_rx_layout {
	VD_VNET_RX_SMALL = 1, /* one buffer (or header + data) per frame */
	VD_VNET_RX_BIG,	      /* header + rest of its page, then pages */
	VD_VNET_RX_MERGEABLE, /* one buffer of a frame of num_buffers */
};

struct vd_vnet_rx_shape {
	enum vd_vnet_rx_layout layout;
	uint32_t hdr_len;  /* header bytes the device writes first */
	uint32_t capacity; /* frame bytes the chain takes after the header */
	bool flippable;	   /* big, and every page can be flipped */
	uint32_t data_off; /* big: offset of the data in the first page */
	uint32_t npages;   /* flippable: pages written to the caller's array */
};

/* Header length the guest expects for these negotiated features. */
uint32_t vd_vnet_hdr_len(uint64_t features);

/*
 * Classify a chain popped from a receive queue of @vq. Mergeable when
 * MRG_RXBUF is in @features; otherwise big when the chain has the big shape
 * (first segment the header at offset 0 of a page, second the rest of that
 * page); otherwise small. A big chain is flippable when, besides, every later
 * segment is a whole page-aligned 4096-byte page, no page repeats, none
 * shares a page with a ring, and there are at most min(@max_pages,
 * VD_VNET_MAX_FLIP_PAGES) pages; @pages then receives the page GPAs in chain
 * order, the first page (header and first data) first. The offsets are taken
 * from the descriptors, never assumed.
 * @return 0; -EINVAL (NULL argument, nseg 0, or the chain cannot hold the
 *         header: the caller answers it with len 0).
 */
int vd_vnet_rx_classify(const struct vd_vring *vq, uint64_t features, const struct vd_vring_seg *segs,
			uint32_t nseg, struct vd_vnet_rx_shape *out, uint64_t *pages, uint32_t max_pages);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * A simulated Linux 6.1 virtio-net guest driver, receive side, for tests:
 * it lays out a split virtqueue in guest memory, posts receive buffers the
 * way drivers/net/virtio_net.c does in each of its three modes (see
 * src/virtio/vnet_rx.h for the facts), refills, consumes used entries the
 * way drivers/virtio/virtio_ring.c does (EVENT_IDX included), and reads
 * received frames back (num_buffers in mergeable mode).
 *
 * Guest memory is reached only through struct vng_mem, so that a test going
 * through the whole engine can give the guest its own view (through the
 * simulated MMU); vng_flat is the plain one: a flat buffer with canary bytes
 * on both sides, to catch a device writing outside guest RAM.
 *
 * Not thread-safe; no CMocka in here (errors are returned), so the fuzzer
 * may use it too.
 */
#ifndef VNET_GUEST_H
#define VNET_GUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <vdemux/virtio_net.h>

#include "virtio/vnet_rx.h"
#include "virtio/vring.h"

/* How the guest reaches its memory: a host pointer to [gpa, gpa + len), or
 * NULL when that range is not backed. */
struct vng_mem {
	uint8_t *(*at)(void *payload, uint64_t gpa, uint64_t len);
	void *payload;
};

/* Flat guest RAM: GPAs [0, size) at base, page aligned, with VNG_CANARY
 * bytes of VNG_CANARY_BYTE on each side. */
#define VNG_CANARY 4096u
#define VNG_CANARY_BYTE 0xa5u

struct vng_flat {
	uint8_t *alloc;
	uint8_t *base;
	uint64_t size;
};

int vng_flat_init(struct vng_flat *f, uint64_t size);
void vng_flat_fini(struct vng_flat *f);
/* Whether both canaries are intact. */
bool vng_flat_canary_ok(const struct vng_flat *f);
struct vng_mem vng_flat_mem(struct vng_flat *f);
/* The device's view of the same RAM (no RX window). */
struct vd_gmem vng_flat_gmem(const struct vng_flat *f);

enum vng_mode {
	VNG_SMALL = 1,
	VNG_BIG,
	VNG_MERGEABLE,
};

/* Ring features the driver uses (net features: VD_VIRTIO_NET_F_*). */
struct vng_opts {
	enum vng_mode mode;
	uint32_t qsize;	     /* power of two */
	uint64_t features;   /* negotiated; MRG_RXBUF must match mode */
	uint32_t big_frags;  /* big: num_skbfrags; 0 = MAX_SKB_FRAGS (17) */
	uint32_t ring_align; /* used ring alignment: 4096 legacy, 64 modern; 0 = 4096 */
	uint64_t ring_gpa;   /* where the rings start; 0 = 0x1000 */
	uint64_t mem_size;   /* guest RAM in bytes */
};

/* What a posted buffer (a head) stands for: the driver's token. */
#define VNG_MAX_SEG 36u
struct vng_buf {
	uint32_t nseg;
	uint64_t gpa[VNG_MAX_SEG];
	uint32_t len[VNG_MAX_SEG];
	uint32_t chunk; /* frag modes: the 32 KiB chunk it was carved from */
	bool posted;
};

struct vng_stats {
	uint64_t posted;	/* buffers added to the avail ring */
	uint64_t kicks;		/* kick_prepare said yes */
	uint64_t used;		/* used entries consumed */
	uint64_t frames;	/* frames read back */
	uint64_t length_errors; /* used len below hdr_len + 14 (receive_buf) */
	uint64_t bad_used;	/* used id out of range or not a head (BAD_RING) */
};

struct vng {
	struct vng_mem mem;
	struct vng_opts o;
	uint32_t hdr_len;
	uint64_t desc_gpa, avail_gpa, used_gpa;
	uint64_t indirect_gpa;	   /* one 512-byte table slot per head */
	uint64_t buf_gpa, buf_len; /* buffer region */
	bool indirect, event;

	/* virtio_ring split state */
	uint16_t *next; /* free list links (desc_extra) */
	uint16_t free_head;
	uint32_t num_free;
	uint16_t avail_idx_shadow;
	uint16_t num_added;
	uint16_t last_used_idx;
	bool no_interrupt; /* avail_flags_shadow */
	bool broken;
	struct vng_buf *bufs; /* by head */

	/* page pool (big) or 32 KiB chunk pool (small, mergeable) */
	uint64_t *free;
	uint32_t nfree;
	uint32_t *chunk_refs;
	uint32_t nchunks;
	int64_t frag_chunk; /* current frag chunk, -1 none */
	uint32_t frag_off;
	uint32_t mrg_len; /* next mergeable buffer length */

	struct vng_stats st;
};

/* Header written by the device, as the guest reads it. */
struct vng_hdr {
	uint8_t flags;
	uint8_t gso_type;
	uint16_t hdr_len;
	uint16_t gso_size;
	uint16_t csum_start;
	uint16_t csum_offset;
	uint16_t num_buffers; /* 12-byte header only */
};

/* Lay out the rings and the pools; nothing posted yet.
 * @return 0; -EINVAL (bad options, memory too small); -ENOMEM. */
int vng_init(struct vng *g, const struct vng_mem *mem, const struct vng_opts *o);
void vng_fini(struct vng *g);

/* The queue configuration a device needs (flags: write-only). */
struct vd_vring_config vng_ring_config(const struct vng *g);
/* The same rings as the VMM hands them to vdemux_vnet_rxq_start(). */
struct vdemux_vnet_ring vng_vnet_ring(const struct vng *g);

/* try_fill_recv: post buffers until the ring or the memory is full.
 * @return buffers posted. */
uint32_t vng_refill(struct vng *g);
/* Post one buffer. @return 0; -ENOSPC (ring full); -ENOMEM (no memory). */
int vng_add_one(struct vng *g);
/* virtqueue_kick_prepare: whether the device asked to be kicked. */
bool vng_kick_prepare(struct vng *g);

/* virtqueue_get_buf: take one used entry. @return 1 and *head, *len; 0 when
 * none; -EIO when the device gave a bad id (the ring is then broken). */
int vng_get_used(struct vng *g, uint16_t *head, uint32_t *len);
/* Give a consumed buffer's memory back (as freeing the skb does). */
void vng_release(struct vng *g, uint16_t head);

/* Read one received frame: header into @hdr, up to @cap bytes into @buf.
 * @return frame length (may exceed cap: truncated copy); -EAGAIN (nothing
 * received); -EBADMSG (a length error: buffer recycled, like receive_buf);
 * -EIO (device broke the protocol: bad id, num_buffers beyond what is
 * there). */
int vng_recv(struct vng *g, struct vng_hdr *hdr, uint8_t *buf, size_t cap);

/* Interrupt suppression, as virtqueue_disable_cb / enable_cb_prepare. */
void vng_disable_cb(struct vng *g);
void vng_enable_cb(struct vng *g);

/* Host pointer of guest bytes, NULL when outside memory. */
uint8_t *vng_at(const struct vng *g, uint64_t gpa, uint64_t len);

/* Write a descriptor / an avail entry / avail->idx directly (for tests that
 * play a hostile guest). */
void vng_write_desc(struct vng *g, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
		    uint16_t next);
void vng_write_avail(struct vng *g, uint16_t slot, uint16_t head);
void vng_write_avail_idx(struct vng *g, uint16_t idx);

#endif

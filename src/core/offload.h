/* SPDX-License-Identifier: MIT */
/* Offload metadata (include/vdemux/offload.h): checking a frame's
 * virtio-net header against the frame, deciding per destination what its
 * header says, finishing checksums and cutting GSO frames into segments.
 * Stateless: the only memory is the engine's scratch buffer (struct
 * vd_offload_scratch), one frame long, reused for each segment. Owner of:
 * struct vd_vhdr, struct vd_offload, struct vd_offload_scratch.
 *
 * Where it sits: delivery (deliver.c) has it check each frame with metadata,
 * and hands it each destination of such a frame (or of a VM that takes a
 * header): it plans the frame, or each copy it makes of it, through the
 * function delivery gives it (which applies the plan when it is full). */
#ifndef VDEMUX_CORE_OFFLOAD_H
#define VDEMUX_CORE_OFFLOAD_H

#include <vdemux/offload.h>
#include <vdemux/verdict.h>

#include "common/util.h"
#include "core/frame.h"

struct vdemux_engine;
struct vm;

/* A virtio-net header, host order. */
struct vd_vhdr {
	uint8_t flags, gso_type;
	uint16_t hdr_len, gso_size, csum_start, csum_offset;
};

#define VD_VHDR_LEN 10u /* struct virtio_net_hdr */

/* A frame's metadata, checked against its bytes. */
struct vd_offload {
	struct vd_vhdr h;
	uint8_t gso;	/* h.gso_type without ECN */
	uint8_t ipv;	/* GSO: 4 or 6 */
	uint16_t l3;	/* GSO: offset of the IP header */
	uint16_t l4;	/* GSO: offset of the TCP/UDP header (= csum_start) */
	uint16_t hlen;	/* GSO: bytes of headers, l4 + TCP/UDP header */
	uint16_t nsegs; /* GSO: segments, 1 .. VDEMUX_GSO_MAX_SEGS */
	uint8_t done;	/* what the scratch holds of this frame: OFS_* (offload.c) */
};

/* The frame's checksum finished, or its segments, made once per frame
 * whatever its number of destinations without the offload. */
struct vd_offload_scratch {
	uint8_t *buf; /* max_frame + (VDEMUX_GSO_MAX_SEGS + 1) * 256 bytes */
};

int vd_offload_scratch_init(struct vd_offload_scratch *s, uint32_t max_frame,
			    const struct vdemux_alloc_hooks *alloc);
void vd_offload_scratch_fini(struct vd_offload_scratch *s, const struct vdemux_alloc_hooks *alloc);

/* Decode a little-endian header (at least VD_VHDR_LEN bytes). */
void vd_vhdr_read(struct vd_vhdr *h, const uint8_t *p);
/* Write a virtio-net header of hdr_len bytes at p, little-endian: the
 * metadata @vh (NULL: none, every field 0), then, in a header of 12 bytes
 * or more, num_buffers; the bytes after those are 0. */
void vd_vhdr_put(uint8_t *p, const struct vd_vhdr *vh, uint32_t hdr_len, uint16_t num_buffers);

/* Check src's header (src->ol->h) against its bytes and fill the rest of
 * *src->ol. Returns 0, or 1 + the enum vdemux_offload_bad reason (counted
 * by the caller). */
int vd_offload_check(const struct vd_pool *pl, const struct vd_src *src, struct vd_offload *ol);

/* Whether vm may take the frame's own pages (no header of the engine's in
 * front, nothing to change in the frame): always for a frame without
 * metadata to a VM without a header. */
bool vd_offload_may_consume(const struct vd_src *src, const struct vm *vm, const struct vdemux_dest *d);

/* Plan one delivery (delivery's planner: returns whether the frame's pages
 * were consumed). */
typedef bool (*vd_plan_fn)(struct vdemux_engine *e, struct vm *vm, const struct vd_src *src,
			   const struct vdemux_dest *d, bool consume);

/* Plan the delivery of a frame with metadata, or to a VM with a header,
 * with @plan: directly (with the header vm takes), or as copies (the
 * checksum finished, or the segments, each a delivery), counted in the
 * engine's offload counters. Returns whether the frame's pages were
 * consumed (only with @consume). */
bool vd_offload_plan(struct vdemux_engine *e, struct vm *vm, const struct vd_src *src,
		     const struct vdemux_dest *d, bool consume, vd_plan_fn plan);

#endif

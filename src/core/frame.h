/* SPDX-License-Identifier: MIT */
/* A frame as the engine sees it while delivering it: in pool pages
 * (zero-copy) or in the caller's memory, and the bytes each destination
 * receives (with its VLAN edit). Stateless. */
#ifndef VDEMUX_CORE_FRAME_H
#define VDEMUX_CORE_FRAME_H

#include <vdemux/verdict.h>

#include "common/util.h"
#include "core/pool.h"

#define MAX_FRAME_LIMIT (65536u + 4u)
/* Pages of the longest delivery: a frame grown by a pushed tag, starting at
 * an offset in its first page. */
#define MAX_FRAME_PAGES ((PAGE - 1u + MAX_FRAME_LIMIT + 4u + PAGE - 1u) / PAGE)
#define ETH_HLEN 14u

struct vd_offload;
struct vd_vhdr;

struct vd_src {
	const uint32_t *pages; /* engine pages holding the frame, or NULL */
	const uint8_t *flat;   /* the frame in the caller's memory, or NULL */
	uint32_t len;
	uint32_t off;	       /* pages: where the frame starts in pages[0] */
	struct vd_offload *ol; /* the frame's offload metadata (offload.h), or NULL */
	/* Set per destination (offload.c): */
	const struct vd_vhdr *vh; /* the header a virtio-net queue writes, or NULL: no offload */
	const uint8_t *pre;	  /* bytes delivered in front of the frame (an engine VM's header) */
	uint32_t pre_len;
};

static inline uint32_t npages_for(uint32_t len)
{
	return (len + PAGE - 1) / PAGE;
}

/* Copy bytes [off, off + n) of the frame (as it came) to dst. */
void vd_frame_read(const struct vd_pool *pl, const struct vd_src *src, uint32_t off, uint8_t *dst,
		   uint32_t n);

/* Length of the frame as destination d receives it (its prefix included),
 * or 0 if d's edit cannot apply to it (malformed); *bad_action is set for
 * an unknown edit. */
uint32_t vd_frame_out_len(const struct vd_src *src, const struct vdemux_dest *d, bool *bad_action);

/* Bytes [off, off + n) of what destination d receives: the prefix, then
 * the frame with the first tag edited as d says. */
void vd_frame_emit(const struct vd_pool *pl, const struct vd_src *src, const struct vdemux_dest *d,
		   uint32_t off, uint8_t *dst, uint32_t n);

#endif

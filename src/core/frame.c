/* SPDX-License-Identifier: MIT */
/* The bytes of a frame as each destination receives them. */
#include <string.h>

#include "core/frame.h"

void vd_frame_read(const struct vd_pool *pl, const struct vd_src *src, uint32_t off, uint8_t *dst,
		   uint32_t n)
{
	const uint32_t *pages = src->pages;

	if (src->flat) {
		memcpy(dst, src->flat + off, n);
		return;
	}
	off += src->off;
	while (n) {
		uint32_t in = off % PAGE, k = PAGE - in < n ? PAGE - in : n;

		memcpy(dst, pg_addr(pl, pages[off / PAGE]) + in, k);
		dst += k;
		off += k;
		n -= k;
	}
}

static uint32_t edited_len(const struct vd_src *src, const struct vdemux_dest *d, bool *bad_action)
{
	*bad_action = false;
	switch (d->action) {
	case VDEMUX_VLAN_KEEP: return src->len;
	case VDEMUX_VLAN_STRIP: return src->len < ETH_HLEN + 4 ? 0 : src->len - 4;
	case VDEMUX_VLAN_SET: return src->len < ETH_HLEN + 4 ? 0 : src->len;
	case VDEMUX_VLAN_PUSH:
		return src->len + 4; /* at most max_frame + 4: MAX_FRAME_PAGES allows it */
	default: *bad_action = true; return 0;
	}
}

uint32_t vd_frame_out_len(const struct vd_src *src, const struct vdemux_dest *d, bool *bad_action)
{
	uint32_t n = edited_len(src, d, bad_action);

	return n ? src->pre_len + n : 0;
}

static void emit_frame(const struct vd_pool *pl, const struct vd_src *src, const struct vdemux_dest *d,
		       uint32_t off, uint8_t *dst, uint32_t n)
{
	uint8_t tag[4] = {(uint8_t)(d->tpid >> 8), (uint8_t)d->tpid, (uint8_t)(d->tci >> 8),
			  (uint8_t)d->tci};
	uint32_t end = off + n;

	if (d->action == VDEMUX_VLAN_KEEP) {
		vd_frame_read(pl, src, off, dst, n);
		return;
	}
	/* Output regions: [0,12) MACs; [12,16) the tag, for PUSH and SET;
	 * the rest from the source shifted by delta. */
	while (off < end) {
		uint32_t k;

		if (off < 12) {
			k = (end < 12 ? end : 12) - off;
			vd_frame_read(pl, src, off, dst, k);
		} else if (d->action != VDEMUX_VLAN_STRIP && off < 16) {
			k = (end < 16 ? end : 16) - off;
			memcpy(dst, tag + (off - 12), k);
		} else {
			/* STRIP: out j = src j + 4; PUSH: src j - 4; SET: src j. */
			uint32_t s = d->action == VDEMUX_VLAN_STRIP  ? off + 4
				     : d->action == VDEMUX_VLAN_PUSH ? off - 4
								     : off;

			k = end - off;
			vd_frame_read(pl, src, s, dst, k);
		}
		dst += k;
		off += k;
	}
}

void vd_frame_emit(const struct vd_pool *pl, const struct vd_src *src, const struct vdemux_dest *d,
		   uint32_t off, uint8_t *dst, uint32_t n)
{
	if (off < src->pre_len) {
		uint32_t k = src->pre_len - off < n ? src->pre_len - off : n;

		memcpy(dst, src->pre + off, k);
		dst += k;
		off += k;
		n -= k;
	}
	if (n)
		emit_frame(pl, src, d, off - src->pre_len, dst, n);
}

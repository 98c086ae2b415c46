/* SPDX-License-Identifier: MIT */
/* The public receive calls: frames from the caller's memory
 * (vdemux_rx_burst) and the zero-copy pair (vdemux_rx_alloc, then
 * vdemux_rx_submit or vdemux_rx_abort). Each checks its arguments, hands
 * every frame to delivery (deliver.c), has the plan applied and sends the
 * signals. */
#include <errno.h>
#include <string.h>

#include <vdemux/rx.h>

#include "core/deliver.h"
#include "core/diag.h"
#include "core/engine.h"
#include "core/frame.h"
#include "core/offload.h"
#include "core/pool.h"
#include "core/signal.h"

/* Flags a frame or a frame's first buffer may have besides MORE. */
#define HDR_FLAGS VDEMUX_FRAME_VNET_HDR(0xff)

/* The header length announced in @flags is usable: none, or 10 .. 255. */
static bool hdr_len_ok(uint32_t flags)
{
	uint32_t n = VDEMUX_FRAME_VNET_HDR_LEN(flags);

	return n == 0 || n >= VD_VHDR_LEN;
}


static int frames_validate(struct vdemux_engine *e, const struct vdemux_frame *f, unsigned n)
{
	int err = vd_check_burst(e, f, n);

	if (err)
		return err;
	for (unsigned i = 0; i < n; i++) {
		uint32_t hl = VDEMUX_FRAME_VNET_HDR_LEN(f[i].flags);

		if (!f[i].data) {
			vd_bad(e, VDEMUX_BAD_NULL);
			return -EINVAL;
		}
		if ((f[i].flags & ~HDR_FLAGS) || !hdr_len_ok(f[i].flags) || f[i].len < hl + ETH_HLEN) {
			vd_bad(e, VDEMUX_BAD_FRAME_LEN);
			return -EINVAL;
		}
		if (f[i].len - hl > e->max_frame) {
			vd_bad(e, VDEMUX_BAD_FRAME_LEN);
			return -EMSGSIZE;
		}
	}
	return 0;
}

static void burst_end(struct vdemux_engine *e)
{
	vd_deliver_flush(e);
	vd_call_end(e);
}

int vdemux_rx_burst(vdemux_engine *e, const struct vdemux_frame *frames, unsigned n)
{
	bool busy = false;
	unsigned i;
	int err;

	if (!e)
		return -EINVAL;
	err = frames_validate(e, frames, n);
	if (err)
		return err;
	e->cls_many = n > 1;
	for (i = 0; i < n; i++) {
		uint32_t hl = VDEMUX_FRAME_VNET_HDR_LEN(frames[i].flags);
		uint32_t len = frames[i].len - hl, np = npages_for(len);
		const uint8_t *data = frames[i].data;
		struct vd_offload ol;

		if (e->pool.nfree < np)
			vd_deliver_flush(e); /* gives back the pages it replaces */
		if (e->pool.nfree < np) {
			/* Ask for pages back whatever the watermark says. */
			vd_signal_release_all(e);
			break;
		}
		/* The frame is copied once: into each destination's buffer, or
		 * into the pool pages that are flipped to it. */
		if (hl)
			vd_vhdr_read(&ol.h, data);
		if (!vd_deliver_frame(
			    e, &(struct vd_src){.flat = data + hl, .len = len, .ol = hl ? &ol : NULL})) {
			busy = true; /* a full queue to another shard */
			break;
		}
		e->st.rx_frames++;
		e->st.rx_bytes += len;
	}
	burst_end(e);
	return i ? (int)i : busy ? -EAGAIN : -ENOBUFS;
}

#define LEND_RUN 16u

int vdemux_rx_alloc(vdemux_engine *e, struct vdemux_rx_buf *bufs, unsigned n)
{
	uint32_t p, run[LEND_RUN], got = 0;
	unsigned k;
	int err;

	if (!e)
		return -EINVAL;
	err = vd_check_burst(e, bufs, n);
	if (err)
		return err;
	/* In runs of consecutive pages, 16 at most (a 64 KiB frame), shorter
	 * runs where the pool has no longer ones: a device that chains
	 * consecutive buffers then fills consecutive pages, which flip to
	 * consecutive GPAs in one table update. */
	for (k = 0; k < n; k++) {
		if (k % LEND_RUN == 0) {
			uint32_t want = n - k < LEND_RUN ? n - k : LEND_RUN;

			got = vd_pool_get_runs(&e->pool, run, want);
		}
		if (k % LEND_RUN >= got)
			break;
		p = run[k % LEND_RUN];
		vd_pool_lend(&e->pool, p);
		bufs[k].data = pg_addr(&e->pool, p);
		bufs[k].arena_off = (uint64_t)abs_page(&e->pool, p) * PAGE;
		bufs[k].id = p;
		bufs[k].len = 0;
		bufs[k].flags = 0;
		bufs[k].off = 0;
	}
	vd_call_end(e);
	return (int)k;
}

/* Every id lent and unique (each is marked while the list is checked, so
 * that a second mention is not taken for a lent page). */
static int bufs_validate(struct vdemux_engine *e, const struct vdemux_rx_buf *b, unsigned n, bool frames)
{
	int err = vd_check_burst(e, b, n);
	unsigned i;
	uint32_t flen = 0, hl;

	if (err)
		return err;
	for (i = 0; i < n && !err; i++) {
		uint32_t id = b[i].id;

		if (!vd_pool_lent(&e->pool, id)) {
			vd_bad(e, VDEMUX_BAD_RX_BUF);
			err = -EBADF;
			break;
		}
		vd_pool_lent_mark(&e->pool, id);
		if (!frames)
			continue;
		hl = VDEMUX_FRAME_VNET_HDR_LEN(b[i].flags);
		if (b[i].len == 0 || b[i].off >= PAGE || b[i].len > PAGE - b[i].off ||
		    (b[i].off && flen) || (b[i].flags & ~(VDEMUX_RXBUF_MORE | HDR_FLAGS)) ||
		    (hl && (flen || !hdr_len_ok(b[i].flags) || b[i].len <= hl)) ||
		    ((b[i].flags & VDEMUX_RXBUF_MORE) && b[i].off + b[i].len != PAGE) ||
		    (b[i].flags & VDEMUX_RXBUF_MORE && i + 1 == n)) {
			vd_bad(e, VDEMUX_BAD_FRAME_LEN);
			err = -EINVAL;
			i++;
			break;
		}
		flen += b[i].len - hl;
		if (!(b[i].flags & VDEMUX_RXBUF_MORE)) {
			if (flen < ETH_HLEN || flen > e->max_frame) {
				vd_bad(e, VDEMUX_BAD_FRAME_LEN);
				err = flen < ETH_HLEN ? -EINVAL : -EMSGSIZE;
				i++;
				break;
			}
			flen = 0;
		} else if (flen >= e->max_frame) {
			vd_bad(e, VDEMUX_BAD_FRAME_LEN);
			err = -EMSGSIZE;
			i++;
			break;
		}
	}
	while (i-- > 0)
		vd_pool_lent_unmark(&e->pool, b[i].id);
	return err;
}

int vdemux_rx_submit(vdemux_engine *e, const struct vdemux_rx_buf *bufs, unsigned n)
{
	/* A frame of max_frame bytes starting at an offset in its first page
	 * spans one page more than max_frame / page size: bufs_validate()
	 * ends every chain there. */
	uint32_t pages[MAX_FRAME_PAGES];
	unsigned i = 0;
	int err;

	if (!e)
		return -EINVAL;
	err = bufs_validate(e, bufs, n, true);
	if (err)
		return err;
	e->cls_many = n > 1;
	while (i < n) {
		uint32_t hl = VDEMUX_FRAME_VNET_HDR_LEN(bufs[i].flags);
		uint32_t np = 0, len = 0, off = bufs[i].off + hl;
		struct vd_offload ol;

		/* The header is read once, here, then cleared below. */
		if (hl)
			vd_vhdr_read(&ol.h, pg_addr(&e->pool, bufs[i].id) + bufs[i].off);
		do {
			uint32_t p = bufs[i].id;
			uint8_t *a = pg_addr(&e->pool, p);
			uint32_t end = bufs[i].off + bufs[i].len, start = np ? 0 : off;

			/* Clear what the device may have written outside the
			 * frame (and the header). */
			if (start)
				memset(a, 0, start);
			if (end < PAGE)
				memset(a + end, 0, PAGE - end);
			vd_pool_unlend(&e->pool, p, end);
			pages[np++] = p;
			len += end - start;
		} while (bufs[i++].flags & VDEMUX_RXBUF_MORE);
		e->st.rx_frames++;
		e->st.rx_bytes += len;
		vd_deliver_frame(
			e,
			&(struct vd_src){.pages = pages, .len = len, .off = off, .ol = hl ? &ol : NULL});
	}
	burst_end(e);
	return (int)n;
}

int vdemux_rx_abort(vdemux_engine *e, const struct vdemux_rx_buf *bufs, unsigned n)
{
	int err;

	if (!e)
		return -EINVAL;
	err = bufs_validate(e, bufs, n, false);
	if (err)
		return err;
	for (unsigned i = 0; i < n; i++)
		vd_pool_put(&e->pool, bufs[i].id);
	vd_call_end(e);
	return (int)n;
}

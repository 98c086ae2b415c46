/* SPDX-License-Identifier: MIT */
/**
 * @file rx.h
 * @brief Receive paths: frames copied in by the VMM, or written by a device
 *        into pool pages (zero-copy).
 *
 * Both paths classify each frame, deliver it to each destination VM (flip or
 * copy, by the VM's policy), queue completions and raise at most one signal
 * per VM per call. A frame that reaches no VM is counted by reason and its
 * pages go back to the pool, cleared (only the bytes written).
 *
 * Threading: see engine.h.
 */
#ifndef VDEMUX_RX_H
#define VDEMUX_RX_H

#include <vdemux/common.h>
#include <vdemux/engine.h>
#include <vdemux/offload.h>

#ifdef __cplusplus
extern "C" {
#endif

/** A frame handed to vdemux_rx_burst(). */
struct vdemux_frame {
	const void *data; /**< the bytes (read during the call only) */
	uint32_t len;	  /**< 14 .. max_frame, plus the header's length with VDEMUX_FRAME_VNET_HDR() */
	union {
		uint32_t flags; /**< VDEMUX_FRAME_VNET_HDR(n), or 0 */
		uint32_t pad; /**< the earlier name of @c flags, when zero was its one value (it still means no flag) */
	};
};

/**
 * Flags of a frame (vdemux_frame::flags) or of the first buffer of a frame
 * (vdemux_rx_buf::flags): its bytes begin with a virtio-net header of @p n
 * bytes (10 .. 255: struct vdemux_vnet_hdr, then what a longer header has,
 * which is ignored), and the frame follows it. What a read() from a TAP
 * device opened with IFF_VNET_HDR gives (@p n: its TUNSETVNETHDRSZ, 10 by
 * default), or a guest's transmit buffer with its header. The header is
 * read during the call; its bytes are not part of the frame (the lengths
 * limits apply to the frame) and no VM sees them.
 */
#define VDEMUX_FRAME_VNET_HDR(n) (((uint32_t)(n)&0xffu) << 8)
/** The header length a frame's flags announce (0: none). */
#define VDEMUX_FRAME_VNET_HDR_LEN(flags) (((uint32_t)(flags) >> 8) & 0xffu)

/**
 * Deliver frames from the caller's memory (burst).
 *
 * Lengths and flags are validated first, all-or-nothing; the first bad
 * frame's error is returned. Frames are then taken in order. Each is classified, and
 * copied once per destination: straight into a destination's posted buffer
 * (copy), or into fresh pool pages that are then mapped at its posted GPAs
 * (flip). A frame is taken only while the pool has as many free pages as the
 * frame has pages, so the call may stop in the middle of the burst when the
 * pool runs out (after applying what it had planned, which may free pages);
 * it then asks every VM that holds pages to release some
 * (VDEMUX_SIG_RELEASE), whatever the low watermark says.
 *
 * Per destination, a frame that cannot be delivered is dropped and counted
 * under one reason, the first of: the VLAN edit does not apply (MALFORMED),
 * no posted buffer (NO_BUFFER), no room in the completion queue (CQ_FULL),
 * the VM would exceed its quota (QUOTA), no free pool page for a copy
 * (NO_POOL); and, when the batch is applied, a backend failure (BACKEND).
 *
 * A frame with a virtio-net header (VDEMUX_FRAME_VNET_HDR()) is delivered to
 * each destination as offload.h says: with its metadata, its checksum
 * finished, or cut into segments (each segment a delivery of its own,
 * copied). Metadata that does not fit the frame drops the frame for every
 * destination, counted in vdemux_engine_stats::offload_bad (the frame is
 * taken: it counts in the return value).
 *
 * On a shard of a group (shard.h), a destination on another shard gets a
 * copy of the frame through the queue to that shard; the call stops before
 * a frame whose queue has no room (back-pressure: see below).
 *
 * @return the number of frames taken, frames[0, ret): each was delivered,
 *         handed to another shard or dropped (counted); frames[ret, n)
 *         stay with the caller because the pool ran out (a release request
 *         was signalled) or, on a shard, because a queue to another shard
 *         was full.
 *         -EINVAL (NULL, n == 0, a length of 0 or below 14, a flag this
 *         version does not know, a header length below 10: counted as
 *         VDEMUX_BAD_FRAME_LEN);
 *         -EMSGSIZE (a length above max_frame): nothing changed;
 *         -ENOBUFS (the pool could not take even frames[0]): nothing taken,
 *         and every VM holding pages was signalled VDEMUX_SIG_RELEASE;
 *         -EAGAIN (a shard: the queue to another shard that frames[0]
 *         needs was full): nothing taken; poll this shard
 *         (vdemux_shard_poll()) and let the other run, then offer it again.
 */
VDEMUX_API int vdemux_rx_burst(vdemux_engine *eng, const struct vdemux_frame *frames, unsigned n);

/** A pool page lent for zero-copy receive. */
struct vdemux_rx_buf {
	uint8_t *data;	    /**< host address of the page (VDEMUX_PAGE_SIZE bytes) */
	uint64_t arena_off; /**< byte offset of the page in the arena (a device's IOVA is its base + this) */
	uint32_t id;	    /**< the engine's handle for the page */
	uint32_t len;	    /**< submit: bytes written in this page */
	uint32_t flags; /**< submit: VDEMUX_RXBUF_MORE if the frame continues in the next buffer; in a frame's first buffer, VDEMUX_RXBUF_VNET_HDR(n) if a header comes first */
	uint32_t off; /**< submit: where the frame (or its header) starts in the first buffer of a frame (0 in the others); set to 0 by vdemux_rx_alloc() */
};

/** The frame continues in the next buffer of the submit array. */
#define VDEMUX_RXBUF_MORE 0x1u
/** A frame's first buffer begins (at @c off) with an @p n-byte virtio-net header: see VDEMUX_FRAME_VNET_HDR(). */
#define VDEMUX_RXBUF_VNET_HDR(n) VDEMUX_FRAME_VNET_HDR(n)

/**
 * Lend up to @p n free pages for a device to write frames into (they become
 * FILLING; no VM can reach them).
 * @return the number lent, bufs[0, ret) filled in (0 if the pool is empty);
 *         -EINVAL (NULL, n == 0).
 */
VDEMUX_API int vdemux_rx_alloc(vdemux_engine *eng, struct vdemux_rx_buf *bufs, unsigned n);

/**
 * Deliver frames written into lent pages. A frame is one buffer, or several
 * chained with VDEMUX_RXBUF_MORE (each but the last full: len == page size).
 * Bytes of a page past @c len are cleared before any VM can see the page.
 * A chained frame is classified on the bytes of its first buffer only
 * (every header the classifier reads is there), or, when its first buffer
 * holds fewer than 256 of its bytes (a frame starting late in its page), on
 * its first 256 bytes. Destinations get the
 * frame's own pages (the last destination that takes it unedited) or copies,
 * and drop reasons are as for vdemux_rx_burst().
 *
 * A frame may start at an offset in its first buffer (@c off: room a VMM
 * leaves for a header it writes, such as virtio-net's; the frame's bytes are
 * then [off, off + len) of that page); the bytes before it are cleared too.
 * A destination whose receive layout puts the frame at that same offset
 * (a virtio-net queue in big-packet mode, see virtio_net.h) gets the pages
 * themselves; the others get copies.
 *
 * With VDEMUX_RXBUF_VNET_HDR(n) the first buffer holds a virtio-net header
 * at [off, off + n) and the frame from off + n on (@c len counts both):
 * read a TAP device opened with IFF_VNET_HDR at @c data + 32 - n and the
 * frame lands at offset 32, where a Linux guest's big-packet buffers take
 * it, so its pages can be flipped with no copy of the header or the frame.
 * The header is read once, then cleared with the bytes before the frame,
 * and the frame is delivered as offload.h and vdemux_rx_burst() say.
 *
 * Validation is all-or-nothing: every id must be lent and not repeated,
 * every buffer 1 .. page size bytes with @c off + @c len within the page
 * (and @c off 0 but in a frame's first buffer), a buffer that is continued
 * must end at the end of its page, every frame 14 .. max_frame bytes (its
 * header not counted), the last buffer must end its frame; a header only in
 * a frame's first buffer, 10 .. 255 bytes, with at least one byte of the
 * frame after it in that buffer.
 *
 * On a shard, a destination on another shard gets a copy through the
 * queue to it; when that queue is full the delivery is dropped and counted
 * in vdemux_engine_stats::handoff_full (the buffers are taken all the same).
 *
 * @return n (every buffer taken back); -EINVAL (NULL, n == 0, bad length,
 *         open chain, unknown flag, bad header length); -EMSGSIZE (frame above max_frame); -EBADF (an id not
 *         lent, or repeated). Buffers are checked in order and the first bad
 *         one's error is returned. Errors change nothing.
 */
VDEMUX_API int vdemux_rx_submit(vdemux_engine *eng, const struct vdemux_rx_buf *bufs, unsigned n);

/**
 * Give lent pages back unused (they are cleared and become FREE).
 * @return n; -EINVAL; -EBADF (an id not lent, or repeated; nothing changed).
 */
VDEMUX_API int vdemux_rx_abort(vdemux_engine *eng, const struct vdemux_rx_buf *bufs, unsigned n);

#ifdef __cplusplus
}
#endif
#endif

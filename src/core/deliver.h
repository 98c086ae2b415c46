/* SPDX-License-Identifier: MIT */
/* Delivery: a frame classified and planned to each of its destinations, the
 * plan applied when it fills and at the end of a call. Above planning
 * (plan.h) and applying (apply.h), below the receive calls (rx.c). */
#ifndef VDEMUX_CORE_DELIVER_H
#define VDEMUX_CORE_DELIVER_H

#include <stdbool.h>

struct vdemux_engine;
struct vdemux_dest;
struct vd_src;

/* Check a frame's offload metadata (src->ol; a refusal drops it, counted),
 * classify it and plan (and, when the plan fills, apply) its delivery to
 * every destination; a destination on another shard of a group is handed
 * to it (handoff.c). The frame's pages (src->pages) are consumed. Returns
 * false, having done nothing, only for a frame in the caller's memory
 * (src->flat) that a full queue to another shard cannot take. */
bool vd_deliver_frame(struct vdemux_engine *e, const struct vd_src *src);

/* Deliver a frame another shard handed over to @d, already classified.
 * Returns whether the VM took the frame's pages; if not, they are left
 * FILLING for the caller (handoff.c gives them back to their sender). */
bool vd_deliver_to(struct vdemux_engine *e, const struct vd_src *src, const struct vdemux_dest *d);

/* Close the classifier's read section if one is open (before anything
 * outside the core runs: vd_deliver_flush() does it first). */
void vd_deliver_leave(struct vdemux_engine *e);

/* Close the classifier's read section, then apply what is planned: the
 * tables change, completions are queued and signals raised (sent by
 * vd_call_end()); publish what was handed to other shards. */
void vd_deliver_flush(struct vdemux_engine *e);

#endif

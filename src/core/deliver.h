/* SPDX-License-Identifier: MIT */
/* Delivery: a frame classified and planned to each of its destinations, the
 * plan applied when it fills and at the end of a call. Above planning
 * (plan.h) and applying (apply.h), below the receive calls (rx.c). */
#ifndef VDEMUX_CORE_DELIVER_H
#define VDEMUX_CORE_DELIVER_H

struct vdemux_engine;
struct vd_src;

/* Check a frame's offload metadata (src->ol; a refusal drops it, counted),
 * classify it and plan (and, when the plan fills, apply) its delivery to
 * every destination. The frame's pages (src->pages) are consumed. */
void vd_deliver_frame(struct vdemux_engine *e, const struct vd_src *src);

/* Close the classifier's read section if one is open (before anything
 * outside the core runs: vd_deliver_flush() does it first). */
void vd_deliver_leave(struct vdemux_engine *e);

/* Close the classifier's read section, then apply what is planned: the
 * tables change, completions are queued and signals raised (sent by
 * vd_call_end()). */
void vd_deliver_flush(struct vdemux_engine *e);

#endif

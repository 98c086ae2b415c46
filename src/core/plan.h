/* SPDX-License-Identifier: MIT */
/* Planning: each delivery of a burst becomes entries (one per page-sized
 * chunk) in the engine's plan (pend.h); nothing touches a table until the
 * plan is applied (apply.h). Owner of: struct vd_plan, struct pend, struct
 * vd_vm_plan (the writing of them; applying reads and clears them). */
#ifndef VDEMUX_CORE_PLAN_H
#define VDEMUX_CORE_PLAN_H

#include <vdemux/verdict.h>

#include "common/util.h"
#include "core/frame.h"
#include "core/pend.h"

struct vdemux_engine;
struct vm;

int vd_plan_init(struct vd_plan *pl, uint32_t cap, const struct vdemux_alloc_hooks *alloc);
void vd_plan_fini(struct vd_plan *pl, const struct vdemux_alloc_hooks *alloc);

enum vd_plan_res {
	VD_PLAN_DONE,	 /* planned */
	VD_PLAN_DROPPED, /* dropped and counted */
	VD_PLAN_FULL,	 /* nothing done: apply the plan, then plan again */
};

/*
 * Plan the delivery of a frame to one VM. With consume set, the frame's own
 * pages may be flipped (the frame is delivered as it came) and every page of
 * it not used is freed here: *consumed tells whether that happened. A frame
 * without pages of its own (src->flat) is copied straight into the VM's
 * buffers, or into fresh pool pages that are then flipped.
 *
 * When several things stop a delivery, the first of these wins: the edit
 * cannot apply (MALFORMED, NO_DEST), no posted buffer (NO_BUFFER), no room
 * in the completion queue (CQ_FULL), the VM's quota (QUOTA), no free pool
 * page for a fresh copy (NO_POOL).
 */
enum vd_plan_res vd_plan_delivery(struct vdemux_engine *e, struct vm *vm, const struct vd_src *src,
				  const struct vdemux_dest *d, bool consume, bool *consumed);

#endif

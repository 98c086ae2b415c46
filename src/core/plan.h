/* Planning: each delivery of a burst becomes entries (one per page-sized
 * chunk) in the engine's plan; nothing touches a table until the plan is
 * applied (apply.h). Owner of: struct vd_plan, struct pend, struct
 * vd_vm_plan. */
#ifndef VDEMUX_CORE_PLAN_H
#define VDEMUX_CORE_PLAN_H

#include <vdemux/verdict.h>

#include "common/util.h"
#include "core/frame.h"

struct vdemux_engine;
struct vm;

#define NO_PEND UINT32_MAX /* end of a VM's list of entries */

/* What a planned entry does to its slot. */
enum pend_kind {
	PEND_COPY = 0,  /* the chunk was copied into the slot's mapped page */
	PEND_MAP = 1,   /* map new_page into the hole at the slot */
	PEND_REMAP = 2, /* replace old_page at the slot by new_page (lazy harvest) */
};

/* What the tables hold for an entry while the plan is applied. */
enum pend_tstate {
	TS_UNTOUCHED = 0, /* as before the plan */
	TS_HOLE = 1,      /* old page unmapped, new one not mapped (yet) */
	TS_APPLIED = 2,   /* new page mapped in every table */
};

/* A planned change of a slot, applied at the end of a burst. */
struct pend {
	struct vm *vm;
	uint32_t slot;
	uint32_t new_page;   /* MAP/REMAP: page carrying the chunk */
	uint32_t old_page;   /* REMAP: page it replaces */
	uint32_t len;        /* bytes in this chunk */
	uint32_t off;        /* where they start in the page (a delivery's offset, chunk 0) */
	uint16_t flags;      /* completion flags */
	uint8_t kind;        /* enum pend_kind */
	uint8_t tstate;      /* enum pend_tstate */
	bool failed;         /* its delivery failed: undo and give back */
	uint32_t frame;      /* delivery sequence: chunks of one delivery share it */
	uint32_t flen;       /* bytes of the whole delivery */
	uint32_t next;       /* next entry of the same VM, or NO_PEND */
	uint32_t stale_page; /* page an undo failed to remove, or VDEMUX_NO_PAGE */
};

struct vd_plan {
	struct pend *pend;
	uint32_t n, cap;
	uint32_t frame_seq;
	uint32_t gen;       /* bumped when a plan is applied */
	struct vm *vms;     /* VMs with entries, linked by vm->plan.next */
};

int vd_plan_init(struct vd_plan *pl, uint32_t cap, const struct vdemux_alloc_hooks *alloc);
void vd_plan_fini(struct vd_plan *pl, const struct vdemux_alloc_hooks *alloc);

enum vd_plan_res {
	VD_PLAN_DONE,    /* planned */
	VD_PLAN_DROPPED, /* dropped and counted */
	VD_PLAN_FULL,    /* nothing done: apply the plan, then plan again */
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

/* SPDX-License-Identifier: MIT */
/* The plan of a burst, as data: its entries (one per page-sized chunk of a
 * delivery) and each VM's list of them. Planning (plan.c) writes it,
 * applying (apply.c) reads and clears it; neither calls the other. The
 * layout only: no functions. */
#ifndef VDEMUX_CORE_PEND_H
#define VDEMUX_CORE_PEND_H

#include "common/util.h"

struct vm;

#define NO_PEND UINT32_MAX /* end of a VM's list of entries */

/* What a planned entry does to its slot. */
enum pend_kind {
	PEND_COPY = 0,	/* the chunk was copied into the slot's mapped page */
	PEND_MAP = 1,	/* map new_page into the hole at the slot */
	PEND_REMAP = 2, /* replace old_page at the slot by new_page (lazy harvest) */
};

/* What the tables hold for an entry while the plan is applied. */
enum pend_tstate {
	TS_UNTOUCHED = 0, /* as before the plan */
	TS_HOLE = 1,	  /* old page unmapped, new one not mapped (yet) */
	TS_APPLIED = 2,	  /* new page mapped in every table */
};

/* A planned change of a slot, applied at the end of a burst. */
struct pend {
	struct vm *vm;
	uint32_t slot;
	uint32_t new_page;   /* MAP/REMAP: page carrying the chunk */
	uint32_t old_page;   /* REMAP: page it replaces */
	uint32_t len;	     /* bytes in this chunk */
	uint32_t off;	     /* where they start in the page (a delivery's offset, chunk 0) */
	uint16_t flags;	     /* completion flags */
	uint8_t kind;	     /* enum pend_kind */
	uint8_t tstate;	     /* enum pend_tstate */
	bool failed;	     /* its delivery failed: undo and give back */
	uint32_t frame;	     /* delivery sequence: chunks of one delivery share it */
	uint32_t flen;	     /* bytes of the whole delivery */
	uint32_t next;	     /* next entry of the same VM, or NO_PEND */
	uint32_t stale_page; /* page an undo failed to remove, or VDEMUX_NO_PAGE */
};

struct vd_plan {
	struct pend *pend;
	uint32_t n, cap;
	uint32_t frame_seq;
	uint32_t gen;	/* bumped when a plan is applied */
	struct vm *vms; /* VMs with entries, linked by vm->plan.next */
};

#endif

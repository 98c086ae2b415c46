/* SPDX-License-Identifier: MIT */
/* The engine: the object every API call starts from. It holds one of each of
 * the core's modules' state and its configuration; see docs/architecture.md
 * for which module owns which member and who may call whom. The layout
 * only: this header includes the headers that define the state it holds,
 * none that declares only functions; a file includes the header of each
 * module it calls (scripts/layers.py checks it). */
#ifndef VDEMUX_CORE_ENGINE_H
#define VDEMUX_CORE_ENGINE_H

#include <stddef.h>

#include <vdemux/arena.h>
#include <vdemux/engine.h>
#include <vdemux/l2.h>

#include "common/util.h"
#include "core/batch.h"
#include "core/cost.h"
#include "core/diag.h"
#include "core/handoff.h"
#include "core/offload.h"
#include "core/pend.h"
#include "core/pool.h"
#include "core/vm.h"
#include "core/vmtab.h"

struct vdemux_backend;
struct vdemux_classifier;
struct vdemux_verdict;
struct vdemux_dest;

struct vdemux_engine {
	struct vd_diag diag; /* diag.c: first, so that diag.c needs no more of the engine */
	struct vdemux_alloc_hooks alloc;

	vdemux_arena *arena;
	bool own_arena;
	struct vdemux_arena_info ai;

	/* configuration */
	uint32_t max_frame;
	enum vdemux_harvest harvest;
	enum vdemux_copy_policy copy;
	uint32_t copy_threshold;
	uint32_t low_watermark;

	struct vdemux_backend **bes; /* registered backends (grows) */
	unsigned nbe, bes_cap;

	vdemux_l2 *l2;
	struct vdemux_classifier *cls;
	/* cls's read section (version 2, all three set) or NULL; used in
	 * calls that may classify more than one frame (a section costs more
	 * than one classification's own registration); while cls_open, a
	 * section is open with cls_token (deliver.c). */
	int (*cls_read)(struct vdemux_classifier *, const uint8_t *, uint32_t, struct vdemux_verdict *);
	uintptr_t cls_token;
	bool cls_open;
	bool cls_many;		   /* this call may classify more than one frame */
	struct vdemux_dest *dests; /* the classifier's answer, ndests entries */

	struct vd_pool pool;	       /* pool.c */
	struct vd_vmtab vmt;	       /* vm.c */
	struct vd_plan plan;	       /* plan.c, apply.c */
	struct vd_batch batch;	       /* tables.c: see its rule */
	struct vd_sigs sigs;	       /* signal.c */
	struct vd_cost cost;	       /* cost.c */
	struct vd_offload_scratch ofs; /* offload.c: one frame's copy */

	struct vdemux_engine_stats st;

	uint32_t ndests;       /* max_vms; a shard's: the group's VMs at most */
	struct vd_shard shard; /* handoff.c: this engine's part of a group */
};

_Static_assert(offsetof(struct vdemux_engine, diag) == 0,
	       "diag.c reaches struct vd_diag at the engine's address");

#endif

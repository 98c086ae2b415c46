/* The engine: the object every API call starts from. It owns one of each of
 * the core's modules' state and its configuration; see docs/architecture.md
 * for which module owns which member and who may call whom. */
#ifndef VDEMUX_CORE_ENGINE_H
#define VDEMUX_CORE_ENGINE_H

#include <vdemux/vdemux.h>
#include <vdemux/sys/backend.h>
#include <vdemux/sys/classifier.h>

#include "common/util.h"
#include "core/cost.h"
#include "core/l2_create.h"
#include "core/offload.h"
#include "core/plan.h"
#include "core/pool.h"
#include "core/signal.h"
#include "core/tables.h"
#include "core/vm.h"

struct vdemux_engine {
	struct vdemux_alloc_hooks alloc;
	vdemux_log_fn log;
	void *log_payload;

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
	struct vdemux_dest *dests; /* the classifier's answer, max_vms entries */

	struct vd_pool pool;   /* pool.c */
	struct vd_vmtab vmt;   /* vm.c */
	struct vd_plan plan;   /* plan.c, apply.c */
	struct vd_batch batch; /* tables.c: see its rule */
	struct vd_sigs sigs;   /* signal.c */
	struct vd_cost cost;   /* cost.c */
	struct vd_offload_scratch ofs; /* offload.c: one frame's copy */

	struct vdemux_engine_stats st;
};

void vd_log(const struct vdemux_engine *e, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Count bad input of kind @which (enum vdemux_bad_input). */
void vd_bad(struct vdemux_engine *e, int which);
/* NULL array or n == 0: counted, -EINVAL. */
int vd_check_burst(struct vdemux_engine *e, const void *array, unsigned n);

#endif

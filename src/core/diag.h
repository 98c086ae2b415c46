/* SPDX-License-Identifier: MIT */
/* Diagnostics: the engine's log hook and the counters of rejected input and
 * of drops. The bottom floor of the core: every module may call it, it
 * calls nothing of the core, and it sees no module's state. Owner of:
 * struct vd_diag, the first member of struct vdemux_engine (engine.h), which
 * is how these functions reach it from the engine pointer every module
 * holds. */
#ifndef VDEMUX_CORE_DIAG_H
#define VDEMUX_CORE_DIAG_H

#include <vdemux/engine.h>
#include <vdemux/vm.h>

struct vd_diag {
	vdemux_log_fn log;
	void *log_payload;
	uint64_t bad_input[VDEMUX_BAD__COUNT]; /* vdemux_engine_stats::bad_input */
	uint64_t drops[VDEMUX_DROP__COUNT];    /* vdemux_engine_stats::drops */
};

void vd_log(const struct vdemux_engine *e, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Count bad input of kind @which (enum vdemux_bad_input). */
void vd_bad(struct vdemux_engine *e, int which);
/* NULL array or n == 0: counted, -EINVAL. */
int vd_check_burst(struct vdemux_engine *e, const void *array, unsigned n);
/* Count a drop for the engine and, unless @vst is NULL, for the VM whose
 * counters it is; a reason out of range counts as VDEMUX_DROP_NO_DEST. */
void vd_drop(struct vdemux_engine *e, struct vdemux_vm_stats *vst, int reason);

#endif

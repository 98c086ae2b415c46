/* SPDX-License-Identifier: MIT */
/* Applying a burst's plan: per VM, one batch per kind of table change; a
 * delivery is all of its chunks or none; completions queued and the VM
 * signalled. Reads and clears the plan (plan.h). */
#ifndef VDEMUX_CORE_APPLY_H
#define VDEMUX_CORE_APPLY_H

struct vdemux_engine;

void vd_apply_plan(struct vdemux_engine *e);

#endif

/* SPDX-License-Identifier: MIT */
/* Harvest: taking a page back from a VM (unmap, clear, back to the pool),
 * eagerly when the guest posts the GPA, lazily when a frame's page replaces
 * it (a remap, applied in apply.c), or all at once at removal. Every page
 * that leaves a VM leaves through here. */
#ifndef VDEMUX_CORE_HARVEST_H
#define VDEMUX_CORE_HARVEST_H

#include "common/util.h"

struct vdemux_engine;
struct vm;

/* Slot s's page is gone from every table of vm: it goes back to the pool,
 * cleared, and the slot becomes a hole. */
void vd_harvest_slot(struct vdemux_engine *e, struct vm *vm, uint32_t s);

/*
 * Post (post = true) or release the slots of gpas[0, n) (checked by the
 * caller), unmapping their pages first when unmap is set (eager harvest, or
 * a release). Returns how many GPAs were handled, gpas[0, ret), or the
 * backend's error when none was.
 */
int vd_harvest_gpas(struct vdemux_engine *e, struct vm *vm, const uint64_t *gpas, unsigned n, bool unmap,
		    bool post);

/* Removal: every page of the window back to the pool (its tables are gone),
 * except those a table failed to unmap, which are quarantined. */
void vd_harvest_all(struct vdemux_engine *e, struct vm *vm);

#endif

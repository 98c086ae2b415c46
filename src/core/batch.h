/* SPDX-License-Identifier: MIT */
/* The scratch of one batch of table changes, as data (tables.h applies
 * it). The layout only: no functions. */
#ifndef VDEMUX_CORE_BATCH_H
#define VDEMUX_CORE_BATCH_H

#include <vdemux/sys/backend.h>

#include "common/util.h"

/*
 * The engine's scratch for one batch of table changes, sized at creation.
 * Rule: a function fills it and applies it before it returns, and calls
 * nothing in between that could fill it again (vd_tables_apply() only reads
 * m and undo and writes stale).
 */
struct vd_batch {
	struct vdemux_map *m;	 /* the batch */
	struct vdemux_map *undo; /* REMAP: each entry's inverse (the old page) */
	uint32_t *idx;		 /* the caller's index of each entry */
	uint8_t *stale;		 /* set where a rollback failed */
	uint32_t cap;
};

#endif

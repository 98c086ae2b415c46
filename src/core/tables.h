/* SPDX-License-Identifier: MIT */
/* Table updates: one batch applied to every translation table of a VM, all
 * or a prefix, with rollback across stacked backends. The only module that
 * calls a backend's map, unmap and remap. Owner of: struct vd_batch. */
#ifndef VDEMUX_CORE_TABLES_H
#define VDEMUX_CORE_TABLES_H

#include <vdemux/sys/backend.h>

#include "common/util.h"
#include "core/batch.h"

struct vdemux_engine;
struct vm;

int vd_batch_init(struct vd_batch *b, uint32_t cap, const struct vdemux_alloc_hooks *alloc);
void vd_batch_fini(struct vd_batch *b, const struct vdemux_alloc_hooks *alloc);

/*
 * Apply b->m[0, n) to every backend of vm. b->undo[i] is the inverse entry
 * for REMAP (the old page); MAP and UNMAP are undone with the same entry.
 * Returns the prefix applied in every table; entries past it are restored in
 * every table, except where b->stale[i] is set (a rollback failed: state
 * unknown). *err is the first error (always negative: a backend that
 * reports a failure with a non-negative value is taken as -EIO).
 */
unsigned vd_tables_apply(struct vdemux_engine *e, struct vm *vm, enum vd_tbl_op op, struct vd_batch *b,
			 unsigned n, int *err);

/* Unmap every page of a VM that is being removed from each of its tables,
 * going on past failures; flag the pages a table failed to unmap stale. */
void vd_tables_unmap_all(struct vdemux_engine *e, struct vm *vm);

#endif

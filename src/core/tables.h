/* Table updates: one batch applied to every translation table of a VM, all
 * or a prefix, with rollback across stacked backends. The only module that
 * calls a backend's map, unmap and remap. Owner of: struct vd_batch. */
#ifndef VDEMUX_CORE_TABLES_H
#define VDEMUX_CORE_TABLES_H

#include <vdemux/sys/backend.h>

#include "common/util.h"

struct vdemux_engine;
struct vm;

/*
 * The engine's scratch for one batch of table changes, sized at creation.
 * Rule: a function fills it and applies it before it returns, and calls
 * nothing in between that could fill it again (vd_tables_apply() only reads
 * m and undo and writes stale).
 */
struct vd_batch {
	struct vdemux_map *m;    /* the batch */
	struct vdemux_map *undo; /* REMAP: each entry's inverse (the old page) */
	uint32_t *idx;           /* the caller's index of each entry */
	uint8_t *stale;          /* set where a rollback failed */
	uint32_t cap;
};

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
unsigned vd_tables_apply(struct vdemux_engine *e, struct vm *vm, enum vd_tbl_op op,
			 struct vd_batch *b, unsigned n, int *err);

/* Unmap every page of a VM that is being removed from each of its tables,
 * going on past failures; flag the pages a table failed to unmap stale. */
void vd_tables_unmap_all(struct vdemux_engine *e, struct vm *vm);

#endif

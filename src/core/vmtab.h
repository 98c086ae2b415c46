/* SPDX-License-Identifier: MIT */
/* The table of VMs: VMs by index, their ids (index and generation), the
 * lookups. Below everything that looks a VM up. Owner of: struct
 * vd_vmtab. */
#ifndef VDEMUX_CORE_VMTAB_H
#define VDEMUX_CORE_VMTAB_H

#include <vdemux/vm.h>

#include "common/util.h"

struct vdemux_engine;
struct vm;

struct vd_vmtab {
	struct vm **vms; /* by index */
	uint16_t *gen;	 /* per index: bumped at removal, part of the id */
	uint32_t max, n;
	uint32_t mark; /* duplicate-detection stamp for slot.mark */
	uint32_t base; /* index of vms[0] in ids (a shard's first index) */
};

int vd_vmtab_init(struct vd_vmtab *t, uint32_t max, const struct vdemux_alloc_hooks *alloc);
void vd_vmtab_fini(struct vd_vmtab *t, const struct vdemux_alloc_hooks *alloc);

struct vm *vd_vm_get(const struct vdemux_engine *e, vdemux_vm_id id);
/* vd_vm_get() that counts an unknown id as bad input. */
struct vm *vd_vm_find(struct vdemux_engine *e, vdemux_vm_id id);

#endif

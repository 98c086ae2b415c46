/* SPDX-License-Identifier: MIT */
/* The table of VMs: VMs by index, ids with a generation, lookups. Below
 * everything that looks a VM up; the public calls that add, remove and
 * serve VMs are vm_api.c's. */
#include <errno.h>

#include "core/diag.h"
#include "core/engine.h"
#include "core/vm.h"
#include "core/vmtab.h"

int vd_vmtab_init(struct vd_vmtab *t, uint32_t max, const struct vdemux_alloc_hooks *alloc)
{
	t->max = max;
	t->vms = vd_calloc(alloc, max, sizeof(*t->vms));
	t->gen = vd_calloc(alloc, max, sizeof(*t->gen));
	return t->vms && t->gen ? 0 : -ENOMEM;
}

void vd_vmtab_fini(struct vd_vmtab *t, const struct vdemux_alloc_hooks *alloc)
{
	vd_free(alloc, t->vms);
	vd_free(alloc, t->gen);
}

struct vm *vd_vm_get(const struct vdemux_engine *e, vdemux_vm_id id)
{
	uint32_t idx = (id & VM_IDX_MASK) - 1u - e->vmt.base;
	struct vm *vm;

	if (id == 0 || idx >= e->vmt.max)
		return NULL;
	vm = e->vmt.vms[idx];
	return vm && vm->id == id ? vm : NULL;
}

struct vm *vd_vm_find(struct vdemux_engine *e, vdemux_vm_id id)
{
	struct vm *vm = vd_vm_get(e, id);

	if (!vm)
		vd_bad(e, VDEMUX_BAD_VM_ID);
	return vm;
}

/* SPDX-License-Identifier: MIT */
/* The engine's side of a device model's queue (vmq.h): the few things of a
 * VM such a queue may set or take, each checked here once. */
#include <errno.h>

#include "core/engine.h"
#include "core/ring.h"
#include "core/vm.h"
#include "core/vm_api.h"
#include "core/vmq.h"
#include "core/vmtab.h"

_Static_assert(VD_VMQ_MAX_PAGES == VM_MAX_PAGES, "a queue's window is a VM's");

struct vm *vd_vmq_get(const struct vdemux_engine *e, vdemux_vm_id id)
{
	return vd_vm_get(e, id);
}

bool vd_vmq_other_shard(const struct vdemux_engine *a, const struct vdemux_engine *b)
{
	return a != b && a->shard.g && a->shard.g == b->shard.g;
}

const struct vdemux_alloc_hooks *vd_vmq_alloc(const struct vdemux_engine *e)
{
	return &e->alloc;
}

void vd_vmq_set_layout(struct vm *vm, const struct vd_sink *sink)
{
	vm->chains = true;
	vm->sink = *sink;
}

int vd_vmq_post_chain(struct vdemux_engine *e, struct vm *vm, const uint64_t *gpas, unsigned n,
		      uint32_t off)
{
	if (vm->postq.count == 0)
		vm->rx_offset = off;
	else if (off != vm->rx_offset)
		return -EINVAL;
	return vd_vm_post_chain(e, vm, gpas, n);
}

bool vd_vmq_complete(struct vm *vm, struct vdemux_completion *out)
{
	return vd_cq_pop(&vm->cq, out);
}

void vd_vmq_unpost_all(struct vm *vm)
{
	struct vdemux_completion c;

	while (vm->postq.count)
		vd_vm_take_posted(vm);
	while (vd_cq_pop(&vm->cq, &c))
		;
}

bool vd_vmq_backed(const struct vm *vm, uint64_t gpa, uint64_t len)
{
	for (uint64_t p = gpa / PAGE; len && p <= (gpa + len - 1) / PAGE; p++)
		if (p >= vm->rx_pages || vm->slots[p].page == VDEMUX_NO_PAGE)
			return false;
	return true;
}

bool vd_vmq_all_backed(const struct vdemux_engine *e, const struct vm *vm)
{
	return vm->held == vm->rx_pages && vm->plan.gen != e->plan.gen;
}

void vd_vmq_set_offloads(struct vm *vm, uint32_t offloads)
{
	vm->offloads = offloads;
}

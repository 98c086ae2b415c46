/* SPDX-License-Identifier: MIT */
/* Harvest: pages leave a VM here, whatever the policy. Eager harvest unmaps
 * the pages of posted GPAs at post time (in batches, off the per-packet
 * path); lazy harvest leaves them mapped and apply.c replaces each by a
 * frame's page with one remap, then hands the old page here. */
#include "core/engine.h"
#include "core/harvest.h"
#include "core/pool.h"
#include "core/tables.h"
#include "core/vm.h"

void vd_harvest_slot(struct vdemux_engine *e, struct vm *vm, uint32_t s)
{
	struct slot *sl = &vm->slots[s];

	vd_pool_reclaim(&e->pool, sl->page);
	sl->page = VDEMUX_NO_PAGE;
	vm->held--;
	vm->st.harvests++;
	e->st.harvests++;
}

static struct slot *slot_of(struct vm *vm, uint64_t gpa)
{
	return &vm->slots[(gpa - vm->rx_base) / PAGE];
}

int vd_harvest_gpas(struct vdemux_engine *e, struct vm *vm, const uint64_t *gpas, unsigned n, bool unmap,
		    bool post)
{
	struct vd_batch *b = &e->batch;
	unsigned i = 0;
	int first_err = 0;

	while (i < n) {
		unsigned c0 = i, nm = 0, done, cut;
		int err = 0;

		/* Gather the next chunk of pages to unmap. */
		for (; i < n; i++) {
			struct slot *sl = slot_of(vm, gpas[i]);

			if (!unmap || sl->page == VDEMUX_NO_PAGE)
				continue;
			if (nm == b->cap)
				break;
			b->m[nm].gpa = gpas[i];
			b->m[nm].page = abs_page(&e->pool, sl->page);
			b->m[nm].pad = 0;
			b->undo[nm] = b->m[nm];
			b->idx[nm] = i;
			nm++;
		}
		done = nm ? vd_tables_apply(e, vm, VD_OP_UNMAP, b, nm, &err) : 0;
		cut = done < nm ? b->idx[done] : i;
		for (unsigned k = done; k < nm; k++)
			if (b->stale[k])
				vd_pool_set_stale(&e->pool, slot_of(vm, gpas[b->idx[k]])->page, true);
		for (unsigned k = c0; k < cut; k++) {
			uint32_t s = (uint32_t)((gpas[k] - vm->rx_base) / PAGE);
			struct slot *sl = &vm->slots[s];

			if (unmap && sl->page != VDEMUX_NO_PAGE)
				vd_harvest_slot(e, vm, s);
			sl->filled = 0;
			if (post)
				vd_vm_post_slot(vm, s);
		}
		if (done < nm) {
			first_err = err;
			i = cut;
			break;
		}
	}
	return i == 0 && first_err ? first_err : (int)i;
}

void vd_harvest_all(struct vdemux_engine *e, struct vm *vm)
{
	for (uint32_t s = 0; s < vm->rx_pages; s++) {
		uint32_t p = vm->slots[s].page;

		if (p == VDEMUX_NO_PAGE)
			continue;
		vm->slots[s].page = VDEMUX_NO_PAGE;
		if (vd_pool_stale(&e->pool, p)) {
			vd_pool_quarantine(&e->pool, p);
		} else {
			vd_pool_reclaim(&e->pool, p);
			e->st.harvests++;
		}
	}
	vm->held = 0;
}

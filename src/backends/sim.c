/* SPDX-License-Identifier: MIT */
/* Simulated MMU backend: a four-level software page table per VM and a
 * direct-mapped simulated IOTLB, invalidated once per batch. */
#include <errno.h>
#include <string.h>

#include <vdemux/sim.h>
#include <vdemux/sys/backend.h>

#include "common/util.h"

#define LVL_BITS 9u
#define LVL_SIZE (1u << LVL_BITS)
#define GPA_BITS 48u

struct leaf {
	uint32_t page[LVL_SIZE];
};
struct node {
	void *child[LVL_SIZE];
};

struct tlb_entry {
	uint64_t gfn;
	uint32_t page;
	uint32_t valid;
};

struct sim_vm {
	vdemux_vm_id id;
	uint32_t pos; /* index in sim.vms */
	struct node *root;
	struct tlb_entry *tlb;
	struct vdemux_arena_info arena;
};

struct sim {
	struct vdemux_backend be; /* first */
	struct vdemux_alloc_hooks alloc;
	struct vdemux_sim_opts o;
	/* The attached VMs, in no order: the engine hands each operation its
	 * context, so only the guest-access calls, which name a VM by id,
	 * search this (a test and debugging path). */
	struct sim_vm **vms;
	uint32_t nvms, vms_cap;
	struct vdemux_sim_stats st;
};

static unsigned lvl_index(uint64_t gpa, unsigned level)
{
	/* level 0 is the root: bits 47..39; level 3 the leaf: bits 20..12 */
	return (unsigned)(gpa >> (VDEMUX_PAGE_SHIFT + LVL_BITS * (3 - level))) & (LVL_SIZE - 1);
}

/* Find (and with create, allocate) the leaf entry for gpa. */
static uint32_t *walk(struct sim *s, struct sim_vm *v, uint64_t gpa, bool create)
{
	void **slot = (void **)&v->root;

	for (unsigned level = 0; level < 4; level++) {
		if (!*slot) {
			if (!create)
				return NULL;
			if (level < 3) {
				*slot = vd_calloc(&s->alloc, 1, sizeof(struct node));
			} else {
				struct leaf *l = vd_calloc(&s->alloc, 1, sizeof(*l));

				if (l)
					memset(l->page, 0xff, sizeof(l->page));
				*slot = l;
			}
			if (!*slot)
				return NULL;
		}
		if (level < 3)
			slot = &((struct node *)*slot)->child[lvl_index(gpa, level)];
	}
	return &((struct leaf *)*slot)->page[lvl_index(gpa, 3)];
}

static void free_tree(struct sim *s, void *n, unsigned level)
{
	if (!n)
		return;
	if (level < 3)
		for (unsigned i = 0; i < LVL_SIZE; i++)
			free_tree(s, ((struct node *)n)->child[i], level + 1);
	vd_free(&s->alloc, n);
}

static void invalidate(struct sim *s, struct sim_vm *v)
{
	memset(v->tlb, 0, s->o.iotlb_entries * sizeof(*v->tlb));
	s->st.invalidations++;
	s->st.cost_ns += s->o.cost_inval_ns;
}

static bool gpa_ok(uint64_t gpa)
{
	return !(gpa & (VDEMUX_PAGE_SIZE - 1)) && gpa < (1ull << GPA_BITS);
}

static struct sim_vm *sim_vm_get(struct sim *s, vdemux_vm_id vm)
{
	for (uint32_t i = 0; vm && i < s->nvms; i++)
		if (s->vms[i]->id == vm)
			return s->vms[i];
	return NULL;
}

static int sim_attach(struct vdemux_backend *be, const struct vdemux_backend_vm *vm, void **ctx)
{
	struct sim *s = (struct sim *)be;
	struct sim_vm *v;

	if (vm->rx_base + (uint64_t)vm->rx_pages * VDEMUX_PAGE_SIZE > (1ull << GPA_BITS))
		return -ERANGE;
	if (sim_vm_get(s, vm->vm_id))
		return -EEXIST;
	if (s->nvms == s->vms_cap) {
		uint32_t n = s->vms_cap ? s->vms_cap * 2 : 8;
		struct sim_vm **nv = vd_calloc(&s->alloc, n, sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		if (s->nvms)
			memcpy(nv, s->vms, s->nvms * sizeof(*nv));
		vd_free(&s->alloc, s->vms);
		s->vms = nv;
		s->vms_cap = n;
	}
	v = vd_calloc(&s->alloc, 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->tlb = vd_calloc(&s->alloc, s->o.iotlb_entries, sizeof(*v->tlb));
	if (!v->tlb) {
		vd_free(&s->alloc, v);
		return -ENOMEM;
	}
	v->id = vm->vm_id;
	v->arena = vm->arena;
	v->pos = s->nvms;
	s->vms[s->nvms++] = v;
	*ctx = v;
	return 0;
}

static void sim_detach(struct vdemux_backend *be, void *ctx)
{
	struct sim *s = (struct sim *)be;
	struct sim_vm *v = ctx;

	s->vms[v->pos] = s->vms[--s->nvms];
	s->vms[v->pos]->pos = v->pos;
	free_tree(s, v->root, 0);
	vd_free(&s->alloc, v->tlb);
	vd_free(&s->alloc, v);
}

/* One batch of map, unmap or remap, one invalidation for all of it. */

static int sim_batch(struct vdemux_backend *be, void *ctx, const struct vdemux_map *m, unsigned n,
		     unsigned *done, enum vd_tbl_op op)
{
	struct sim *s = (struct sim *)be;
	struct sim_vm *v = ctx;
	unsigned i;
	int err = 0;

	for (i = 0; i < n; i++) {
		uint32_t *pte;

		if (!gpa_ok(m[i].gpa) || (op != VD_OP_UNMAP && m[i].page >= v->arena.npages)) {
			err = -EINVAL;
			break;
		}
		/* An unmap of a GPA with no table yet is a hole already. */
		pte = walk(s, v, m[i].gpa, op != VD_OP_UNMAP);
		if (!pte && op != VD_OP_UNMAP) {
			err = -ENOMEM;
			break;
		}
		if (op == VD_OP_MAP && *pte != VDEMUX_NO_PAGE) {
			err = -EEXIST;
			break;
		}
		if (pte)
			*pte = op == VD_OP_UNMAP ? VDEMUX_NO_PAGE : m[i].page;
		if (op == VD_OP_MAP) {
			s->st.maps++;
			s->st.cost_ns += s->o.cost_map_ns;
		} else if (op == VD_OP_UNMAP) {
			s->st.unmaps++;
			s->st.cost_ns += s->o.cost_unmap_ns;
		} else {
			s->st.remaps++;
			s->st.cost_ns += s->o.cost_map_ns;
		}
	}
	s->st.batches++;
	invalidate(s, v);
	*done = i;
	return err;
}

VD_BACKEND_BATCH_OPS(sim, sim_batch)

static int sim_query(struct vdemux_backend *be, void *ctx, uint64_t gpa, uint32_t *page)
{
	struct sim_vm *v = ctx;
	uint32_t *pte = walk((struct sim *)be, v, gpa & ~(uint64_t)(VDEMUX_PAGE_SIZE - 1), false);

	*page = pte ? *pte : VDEMUX_NO_PAGE;
	return 0;
}

static void sim_free(struct vdemux_backend *be)
{
	struct sim *s = (struct sim *)be;
	struct vdemux_alloc_hooks h = s->alloc;

	while (s->nvms)
		sim_detach(be, s->vms[s->nvms - 1]);
	vd_free(&h, s->vms);
	vd_free(&h, s);
}

int vdemux_sim_create(struct vdemux_backend **out, const struct vdemux_sim_opts *uopts)
{
	struct vdemux_sim_opts o = {0};
	struct sim *s;

	if (!out)
		return -EINVAL;
	if (uopts) {
		if (vd_opts_check(uopts, sizeof(o)))
			return -EINVAL;
		vd_opts_copy(&o, uopts, sizeof(o));
	}
	if (!vd_hooks_valid(&o.alloc) || (o.iotlb_entries & (o.iotlb_entries - 1)) ||
	    o.iotlb_entries > 65536)
		return -EINVAL;
	if (!o.iotlb_entries)
		o.iotlb_entries = 64;
	if (!o.copy_threshold)
		o.copy_threshold = 256;
	s = vd_calloc(&o.alloc, 1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->alloc = o.alloc;
	s->o = o;
	s->be.version = VDEMUX_BACKEND_VERSION;
	s->be.name = "sim";
	s->be.copy_threshold = o.copy_threshold;
	s->be.vm_attach = sim_attach;
	s->be.vm_detach = sim_detach;
	s->be.map = sim_map;
	s->be.unmap = sim_unmap;
	s->be.remap = sim_remap;
	s->be.query = sim_query;
	s->be.free = sim_free;
	*out = &s->be;
	return 0;
}

static bool is_sim(const struct vdemux_backend *be)
{
	return be && be->vm_attach == sim_attach;
}

/* Translate gfn through the IOTLB, walking the table on a miss. */
static uint32_t translate(struct sim *s, struct sim_vm *v, uint64_t gpa)
{
	uint64_t gfn = gpa >> VDEMUX_PAGE_SHIFT;
	struct tlb_entry *t = &v->tlb[gfn & (s->o.iotlb_entries - 1)];
	uint32_t *pte;

	if (t->valid && t->gfn == gfn) {
		s->st.iotlb_hits++;
		return t->page;
	}
	s->st.iotlb_misses++;
	pte = walk(s, v, gpa & ~(uint64_t)(VDEMUX_PAGE_SIZE - 1), false);
	if (!pte || *pte == VDEMUX_NO_PAGE)
		return VDEMUX_NO_PAGE;
	t->gfn = gfn;
	t->page = *pte;
	t->valid = 1;
	return *pte;
}

static int access(struct vdemux_backend *be, vdemux_vm_id vm, uint64_t gpa, uint8_t *rbuf,
		  const uint8_t *wbuf, size_t len)
{
	struct sim *s = (struct sim *)be;
	struct sim_vm *v;
	uint64_t end;

	if (!is_sim(be) || (!rbuf && !wbuf) || gpa + len < gpa || gpa + len > (1ull << GPA_BITS))
		return -EINVAL;
	v = sim_vm_get(s, vm);
	if (!v)
		return -ENOENT;
	end = gpa + len;
	/* Check the whole range first: a fault changes nothing. */
	for (uint64_t g = gpa & ~(uint64_t)(VDEMUX_PAGE_SIZE - 1); g < end; g += VDEMUX_PAGE_SIZE)
		if (translate(s, v, g) == VDEMUX_NO_PAGE) {
			s->st.faults++;
			return -EFAULT;
		}
	while (gpa < end) {
		uint32_t in = gpa & (VDEMUX_PAGE_SIZE - 1);
		size_t k = VDEMUX_PAGE_SIZE - in < end - gpa ? VDEMUX_PAGE_SIZE - in : end - gpa;
		uint8_t *host = v->arena.base + (size_t)translate(s, v, gpa) * VDEMUX_PAGE_SIZE + in;

		if (rbuf) {
			memcpy(rbuf, host, k);
			rbuf += k;
		} else {
			memcpy(host, wbuf, k);
			wbuf += k;
		}
		gpa += k;
	}
	return 0;
}

int vdemux_sim_read(struct vdemux_backend *be, vdemux_vm_id vm, uint64_t gpa, void *buf, size_t len)
{
	if (!buf)
		return -EINVAL;
	return access(be, vm, gpa, buf, NULL, len);
}

int vdemux_sim_write(struct vdemux_backend *be, vdemux_vm_id vm, uint64_t gpa, const void *buf,
		     size_t len)
{
	if (!buf)
		return -EINVAL;
	return access(be, vm, gpa, NULL, buf, len);
}

int vdemux_sim_translate(struct vdemux_backend *be, vdemux_vm_id vm, uint64_t gpa, uint32_t *page)
{
	struct sim_vm *v;

	if (!is_sim(be) || !page)
		return -EINVAL;
	v = sim_vm_get((struct sim *)be, vm);
	if (!v)
		return -ENOENT;
	if (gpa >= (1ull << GPA_BITS))
		return -EINVAL;
	*page = translate((struct sim *)be, v, gpa);
	return 0;
}

int vdemux_sim_stats(struct vdemux_backend *be, struct vdemux_sim_stats *out, size_t size)
{
	if (!is_sim(be) || !out)
		return -EINVAL;
	memcpy(out, &((struct sim *)be)->st,
	       size < sizeof(struct vdemux_sim_stats) ? size : sizeof(struct vdemux_sim_stats));
	return 0;
}

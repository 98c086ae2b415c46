#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/internal.h"

#define DEFAULT_MAX_FRAME 65536u
#define DEFAULT_MAX_VMS 64u
#define PEND_CAP 1024u

void vd_log(const struct vdemux_engine *e, int level, const char *fmt, ...)
{
	char buf[256];
	va_list ap;

	if (!e->log)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	e->log(level, buf, e->log_payload);
}

void vd_bad(struct vdemux_engine *e, int which)
{
	e->st.bad_input[which]++;
}

int vd_check_burst(struct vdemux_engine *e, const void *array, unsigned n)
{
	if (!array) {
		vd_bad(e, VDEMUX_BAD_NULL);
		return -EINVAL;
	}
	if (n == 0) {
		vd_bad(e, VDEMUX_BAD_BURST_ZERO);
		return -EINVAL;
	}
	return 0;
}

struct vm *vd_vm_find(struct vdemux_engine *e, vdemux_vm_id id)
{
	struct vm *vm = vd_vm_get(e, id);

	if (!vm)
		vd_bad(e, VDEMUX_BAD_VM_ID);
	return vm;
}

struct vm *vd_vm_get(const struct vdemux_engine *e, vdemux_vm_id id)
{
	uint32_t idx = (id & VM_IDX_MASK) - 1u;
	struct vm *vm;

	if (id == 0 || idx >= e->max_vms)
		return NULL;
	vm = e->vms[idx];
	return vm && vm->id == id ? vm : NULL;
}

static void engine_free(struct vdemux_engine *e)
{
	struct vdemux_alloc_hooks h = e->alloc;

	for (unsigned i = 0; i < e->nbe; i++)
		if (e->bes[i]->free)
			e->bes[i]->free(e->bes[i]);
	vd_free(&h, e->bes);
	if (e->l2)
		vdemux_l2_destroy(e->l2);
	if (e->own_arena)
		vdemux_arena_destroy(e->arena);
	vd_free(&h, e->pages);
	vd_free(&h, e->free_stack);
	vd_free(&h, e->vms);
	vd_free(&h, e->vm_gen);
	vd_free(&h, e->dests);
	vd_free(&h, e->pend);
	vd_free(&h, e->mbuf);
	vd_free(&h, e->mbuf2);
	vd_free(&h, e->ibuf);
	vd_free(&h, e->sbuf);
	vd_free(&h, e);
}

int vdemux_engine_create(vdemux_engine **out, const struct vdemux_engine_opts *uopts)
{
	struct vdemux_engine_opts o;
	struct vdemux_engine *e;
	int err;

	if (!out || !uopts || vd_opts_check(uopts, sizeof(o)))
		return -EINVAL;
	vd_opts_copy(&o, uopts, sizeof(o));
	if (!vd_hooks_valid(&o.alloc) || o.max_frame > MAX_FRAME_LIMIT ||
	    (o.max_frame && o.max_frame < ETH_HLEN) || o.max_vms > VM_IDX_MASK ||
	    o.harvest > VDEMUX_HARVEST_LAZY || o.copy > VDEMUX_COPY_THRESHOLD)
		return -EINVAL;
	if (!o.arena && o.npages == 0)
		return -EINVAL;

	e = vd_calloc(&o.alloc, 1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->alloc = o.alloc;
	e->log = o.log;
	e->log_payload = o.log_payload;
	if (o.arena) {
		e->arena = o.arena;
		vdemux_arena_info(o.arena, &e->ai);
		if (o.first_page >= e->ai.npages ||
		    (o.npages && o.npages > e->ai.npages - o.first_page)) {
			vd_free(&o.alloc, e);
			return -EINVAL;
		}
		e->first_page = o.first_page;
		e->npages = o.npages ? o.npages : e->ai.npages - o.first_page;
	} else {
		struct vdemux_arena_opts ao = VDEMUX_OPTS(vdemux_arena_opts, .npages = o.npages,
							  .alloc = o.alloc);

		if (o.first_page) {
			vd_free(&o.alloc, e);
			return -EINVAL;
		}
		err = vdemux_arena_create(&e->arena, &ao);
		if (err) {
			vd_free(&o.alloc, e);
			return err;
		}
		e->own_arena = true;
		vdemux_arena_info(e->arena, &e->ai);
		e->npages = o.npages;
	}
	e->base = e->ai.base + (size_t)e->first_page * PAGE;
	e->max_frame = o.max_frame ? o.max_frame : DEFAULT_MAX_FRAME;
	e->max_vms = o.max_vms ? o.max_vms : DEFAULT_MAX_VMS;
	e->harvest = o.harvest ? o.harvest : VDEMUX_HARVEST_EAGER;
	e->copy = o.copy;
	e->copy_threshold = o.copy_threshold;
	e->low_watermark = o.low_watermark;
	e->release_armed = true;
	e->pend_gen = 1;
	e->pend_cap = PEND_CAP;
	e->mbuf_cap = PEND_CAP;

	err = vd_pool_init(e);
	if (err)
		goto fail;
	e->vms = vd_calloc(&e->alloc, e->max_vms, sizeof(*e->vms));
	e->vm_gen = vd_calloc(&e->alloc, e->max_vms, sizeof(*e->vm_gen));
	e->dests = vd_calloc(&e->alloc, e->max_vms, sizeof(*e->dests));
	e->pend = vd_calloc(&e->alloc, e->pend_cap, sizeof(*e->pend));
	e->mbuf = vd_calloc(&e->alloc, e->mbuf_cap, sizeof(*e->mbuf));
	e->mbuf2 = vd_calloc(&e->alloc, e->mbuf_cap, sizeof(*e->mbuf2));
	e->ibuf = vd_calloc(&e->alloc, e->mbuf_cap, sizeof(*e->ibuf));
	e->sbuf = vd_calloc(&e->alloc, e->mbuf_cap, sizeof(*e->sbuf));
	if (!e->vms || !e->vm_gen || !e->dests || !e->pend || !e->mbuf || !e->mbuf2 || !e->ibuf ||
	    !e->sbuf) {
		err = -ENOMEM;
		goto fail;
	}
	err = vd_l2_create(&e->l2, NULL, &e->alloc);
	if (err)
		goto fail;
	e->cls = vdemux_l2_classifier(e->l2);
	e->st.pages_total = e->npages;
	*out = e;
	return 0;
fail:
	engine_free(e);
	return err;
}

void vdemux_engine_destroy(vdemux_engine *e)
{
	if (!e)
		return;
	for (uint32_t i = 0; i < e->max_vms; i++)
		if (e->vms[i])
			vdemux_vm_remove(e, e->vms[i]->id);
	engine_free(e);
}

int vdemux_engine_add_backend(vdemux_engine *e, struct vdemux_backend *be)
{
	if (!e)
		return -EINVAL;
	if (!be) {
		vd_bad(e, VDEMUX_BAD_NULL);
		return -EINVAL;
	}
	if (be->version != VDEMUX_BACKEND_VERSION) {
		vd_bad(e, VDEMUX_BAD_BACKEND);
		return -EPROTO;
	}
	if (!be->vm_attach || !be->vm_detach || !be->map || !be->unmap || be->flags) {
		vd_bad(e, VDEMUX_BAD_BACKEND);
		return -EINVAL;
	}
	for (unsigned i = 0; i < e->nbe; i++)
		if (e->bes[i] == be)
			return -EEXIST;
	if (e->nbe == e->bes_cap) {
		/* Backends such as KVM and VFIO are one per VM: no fixed limit. */
		unsigned cap = e->bes_cap ? e->bes_cap * 2 : 8;
		struct vdemux_backend **n = vd_calloc(&e->alloc, cap, sizeof(*n));

		if (!n)
			return -ENOMEM;
		if (e->nbe)
			memcpy(n, e->bes, e->nbe * sizeof(*n));
		vd_free(&e->alloc, e->bes);
		e->bes = n;
		e->bes_cap = cap;
	}
	e->bes[e->nbe++] = be;
	vd_log(e, VDEMUX_LOG_INFO, "backend %s registered", be->name ? be->name : "?");
	return 0;
}

int vdemux_engine_set_classifier(vdemux_engine *e, struct vdemux_classifier *cls)
{
	if (!e)
		return -EINVAL;
	if (!cls) {
		e->cls = vdemux_l2_classifier(e->l2);
		return 0;
	}
	if (cls->version != VDEMUX_CLASSIFIER_VERSION)
		return -EPROTO;
	if (!cls->classify)
		return -EINVAL;
	e->cls = cls;
	return 0;
}

int vdemux_engine_remove_backend(vdemux_engine *e, struct vdemux_backend *be)
{
	unsigned i;

	if (!e)
		return -EINVAL;
	if (!be) {
		vd_bad(e, VDEMUX_BAD_NULL);
		return -EINVAL;
	}
	for (i = 0; i < e->nbe && e->bes[i] != be; i++)
		;
	if (i == e->nbe)
		return -ENOENT;
	for (uint32_t v = 0; v < e->max_vms; v++) {
		const struct vm *vm = e->vms[v];

		for (unsigned b = 0; vm && b < vm->nbe; b++)
			if (vm->bes[b].be == be)
				return -EBUSY;
	}
	memmove(&e->bes[i], &e->bes[i + 1], (e->nbe - i - 1) * sizeof(*e->bes));
	e->nbe--;
	if (be->free)
		be->free(be);
	return 0;
}

vdemux_l2 *vdemux_engine_l2(vdemux_engine *e)
{
	return e ? e->l2 : NULL;
}

int vdemux_engine_stats(const vdemux_engine *e, struct vdemux_engine_stats *out, size_t size)
{
	struct vdemux_engine_stats s;

	if (!e || !out)
		return -EINVAL;
	s = e->st;
	s.pages_total = e->npages;
	s.pages_free = e->nfree;
	s.pages_filling = e->nfilling;
	s.pages_assigned = e->nassigned;
	s.pages_quarantined = e->nquarantined;
	memcpy(out, &s, size < sizeof(s) ? size : sizeof(s));
	return 0;
}

static const char *const drop_names[VDEMUX_DROP__COUNT] = {
	[VDEMUX_DROP_NONE] = "none",
	[VDEMUX_DROP_MALFORMED] = "malformed",
	[VDEMUX_DROP_INVALID_SRC] = "invalid-src",
	[VDEMUX_DROP_LINK_LOCAL] = "link-local",
	[VDEMUX_DROP_NO_VLAN_MEMBER] = "no-vlan-member",
	[VDEMUX_DROP_UNKNOWN_UNICAST] = "unknown-unicast",
	[VDEMUX_DROP_NO_SUBSCRIBER] = "no-subscriber",
	[VDEMUX_DROP_NO_DEST] = "no-dest",
	[VDEMUX_DROP_UNKNOWN_VM] = "unknown-vm",
	[VDEMUX_DROP_NO_BUFFER] = "no-buffer",
	[VDEMUX_DROP_QUOTA] = "quota",
	[VDEMUX_DROP_NO_POOL] = "no-pool",
	[VDEMUX_DROP_BACKEND] = "backend",
	[VDEMUX_DROP_TOO_BIG] = "too-big",
	[VDEMUX_DROP_CQ_FULL] = "cq-full",
};

const char *vdemux_drop_reason_name(int r)
{
	if (r < 0 || r >= VDEMUX_DROP__COUNT || !drop_names[r])
		return "unknown";
	return drop_names[r];
}

static const char *const bad_names[VDEMUX_BAD__COUNT] = {
	[VDEMUX_BAD_NULL] = "null",
	[VDEMUX_BAD_VM_ID] = "vm-id",
	[VDEMUX_BAD_GPA_RANGE] = "gpa-range",
	[VDEMUX_BAD_GPA_ALIGN] = "gpa-align",
	[VDEMUX_BAD_POST_TWICE] = "post-twice",
	[VDEMUX_BAD_NOT_HELD] = "not-held",
	[VDEMUX_BAD_FRAME_LEN] = "frame-len",
	[VDEMUX_BAD_BURST_ZERO] = "burst-zero",
	[VDEMUX_BAD_BACKEND] = "backend",
	[VDEMUX_BAD_OPTS] = "opts",
	[VDEMUX_BAD_RX_BUF] = "rx-buf",
};

const char *vdemux_bad_input_name(int which)
{
	if (which < 0 || which >= VDEMUX_BAD__COUNT)
		return "unknown";
	return bad_names[which];
}

/* ---- consistency check ---- */

#define FAIL(...)                                          \
	do {                                               \
		if (msg && msglen)                         \
			snprintf(msg, msglen, __VA_ARGS__); \
		return -EUCLEAN;                           \
	} while (0)

static bool page_is_zero(const uint8_t *p)
{
	static const uint8_t zero[64];

	for (unsigned off = 0; off < PAGE; off += sizeof(zero))
		if (memcmp(p + off, zero, sizeof(zero)))
			return false;
	return true;
}

int vdemux_engine_check(const vdemux_engine *e, char *msg, size_t msglen)
{
	uint32_t nfree = 0, nfill = 0, nass = 0, nquar = 0;

	if (!e)
		return -EINVAL;
	if (msg && msglen)
		msg[0] = '\0';
	for (uint32_t p = 0; p < e->npages; p++) {
		const struct pg *pg = &e->pages[p];
		const struct vm *vm;

		switch (pg->state) {
		case PG_FREE:
			nfree++;
			if (pg->lent)
				FAIL("page %u: FREE and lent", p);
			if (!page_is_zero(pg_addr(e, p)))
				FAIL("page %u: FREE but not zeroed", p);
			break;
		case PG_FILLING:
			nfill++;
			/* Between calls a FILLING page is one lent to a device. */
			if (!pg->lent)
				FAIL("page %u: FILLING but not lent", p);
			break;
		case PG_QUARANTINED:
			nquar++;
			break;
		case PG_ASSIGNED:
			nass++;
			vm = pg->vm_idx < e->max_vms ? e->vms[pg->vm_idx] : NULL;
			if (!vm)
				FAIL("page %u: ASSIGNED to missing VM index %u", p, pg->vm_idx);
			if (pg->slot >= vm->rx_pages || vm->slots[pg->slot].page != p)
				FAIL("page %u: ASSIGNED to VM %u slot %u, which does not hold it", p,
				     vm->id, pg->slot);
			break;
		default:
			FAIL("page %u: bad state %u", p, pg->state);
		}
	}
	if (nfree != e->nfree || nfill != e->nfilling || nass != e->nassigned ||
	    nquar != e->nquarantined)
		FAIL("gauges disagree: free %u/%u filling %u/%u assigned %u/%u quarantined %u/%u",
		     nfree, e->nfree, nfill, e->nfilling, nass, e->nassigned, nquar, e->nquarantined);
	if (nfree + nfill + nass + nquar != e->npages)
		FAIL("conservation: %u + %u + %u + %u != %u", nfree, nfill, nass, nquar, e->npages);
	for (uint32_t i = 0; i < e->nfree; i++) {
		uint32_t p = e->free_stack[i];

		if (p >= e->npages || e->pages[p].state != PG_FREE)
			FAIL("free list entry %u: page %u not FREE", i, p);
	}
	for (uint32_t i = 0; i < e->max_vms; i++) {
		const struct vm *vm = e->vms[i];
		uint32_t held = 0, posted = 0;

		if (!vm)
			continue;
		for (uint32_t s = 0; s < vm->rx_pages; s++) {
			const struct slot *sl = &vm->slots[s];
			uint64_t gpa = vm->rx_base + (uint64_t)s * PAGE;

			if (sl->posted && sl->filled)
				FAIL("VM %u slot %u: posted and filled", vm->id, s);
			if (sl->posted)
				posted++;
			if (sl->page != VDEMUX_NO_PAGE) {
				const struct pg *pg;

				if (sl->page >= e->npages)
					FAIL("VM %u slot %u: bad page %u", vm->id, s, sl->page);
				pg = &e->pages[sl->page];
				if (pg->state != PG_ASSIGNED || pg->vm_idx != vm->idx || pg->slot != s)
					FAIL("VM %u slot %u: page %u not assigned here", vm->id, s,
					     sl->page);
				held++;
			} else if (sl->filled) {
				FAIL("VM %u slot %u: filled hole", vm->id, s);
			}
			for (unsigned b = 0; b < vm->nbe; b++) {
				const struct be_ref *r = &vm->bes[b];
				uint32_t mp;

				if (!r->be->query || (sl->page != VDEMUX_NO_PAGE && e->pages[sl->page].stale))
					continue;
				if (r->be->query(r->be, r->ctx, gpa, &mp))
					continue;
				if (mp != (sl->page == VDEMUX_NO_PAGE ? VDEMUX_NO_PAGE
								     : sl->page + e->first_page))
					FAIL("VM %u GPA 0x%llx: backend %s maps page %d, engine says %d",
					     vm->id, (unsigned long long)gpa, r->be->name,
					     (int)mp, (int)sl->page);
			}
		}
		if (held != vm->held)
			FAIL("VM %u: holds %u pages, counted %u", vm->id, held, vm->held);
		if (held > vm->quota)
			FAIL("VM %u: holds %u pages, quota %u", vm->id, held, vm->quota);
		if (posted != vm->pq_count)
			FAIL("VM %u: %u posted slots, queue has %u", vm->id, posted, vm->pq_count);
		for (uint32_t k = 0; k < vm->pq_count; k++) {
			uint32_t s = vm->postq[(vm->pq_head + k) % vm->rx_pages];

			if (s >= vm->rx_pages || !vm->slots[s].posted)
				FAIL("VM %u: post queue entry %u names slot %u, not posted", vm->id, k, s);
		}
	}
	return 0;
}

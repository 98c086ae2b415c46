/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <string.h>

#include <vdemux/engine.h>
#include <vdemux/sys/backend.h>
#include <vdemux/sys/classifier.h>
#include <vdemux/verdict.h>
#include <vdemux/vm.h>

#include "core/cost.h"
#include "core/diag.h"
#include "core/engine.h"
#include "core/frame.h"
#include "core/handoff.h"
#include "core/l2_create.h"
#include "core/plan.h"
#include "core/pool.h"
#include "core/tables.h"
#include "core/vm.h"
#include "core/vmtab.h"

#define DEFAULT_MAX_FRAME 65536u
#define DEFAULT_MAX_VMS 64u
#define PEND_CAP 1024u

static void engine_free(struct vdemux_engine *e)
{
	struct vdemux_alloc_hooks h = e->alloc;

	for (unsigned i = 0; i < e->nbe; i++)
		if (e->bes[i]->free)
			e->bes[i]->free(e->bes[i]);
	vd_free(&h, e->bes);
	if (e->l2 && !e->shard.g)
		vdemux_l2_destroy(e->l2);
	if (e->own_arena)
		vdemux_arena_destroy(e->arena);
	vd_pool_fini(&e->pool, &h);
	vd_vmtab_fini(&e->vmt, &h);
	vd_plan_fini(&e->plan, &h);
	vd_batch_fini(&e->batch, &h);
	vd_cost_fini(&e->cost, &h);
	vd_offload_scratch_fini(&e->ofs, &h);
	vd_free(&h, e->dests);
	vd_free(&h, e);
}

/* The engine's pages: part of the VMM's arena, or an arena of its own. */
static int engine_arena(struct vdemux_engine *e, const struct vdemux_engine_opts *o)
{
	struct vdemux_arena_opts ao = VDEMUX_OPTS(vdemux_arena_opts, .npages = o->npages,
						  .alloc = o->alloc);
	int err;

	if (o->arena) {
		e->arena = o->arena;
		vdemux_arena_info(o->arena, &e->ai);
		if (o->first_page >= e->ai.npages ||
		    (o->npages && o->npages > e->ai.npages - o->first_page))
			return -EINVAL;
		e->pool.first_page = o->first_page;
		e->pool.npages = o->npages ? o->npages : e->ai.npages - o->first_page;
		return 0;
	}
	if (o->first_page)
		return -EINVAL;
	err = vdemux_arena_create(&e->arena, &ao);
	if (err)
		return err;
	e->own_arena = true;
	vdemux_arena_info(e->arena, &e->ai);
	e->pool.npages = o->npages;
	return 0;
}

static void use_classifier(vdemux_engine *e, struct vdemux_classifier *cls);

/* A shard's wake-up: none, a callback, or an eventfd (one fd, no flags). */
static bool wake_ok(const struct vdemux_signal *w)
{
	if (w->flags)
		return false;
	switch (w->kind) {
	case VDEMUX_SIGNAL_NONE: return true;
	case VDEMUX_SIGNAL_CALLBACK: return w->cb != NULL;
	case VDEMUX_SIGNAL_EVENTFD: return w->fd >= 0;
	default: return false;
	}
}

/* A shard's options: the group's pages, and a max_vms its share of the
 * group's ids can name (the last index of the last shard is reserved:
 * ids keep index + 1 in 20 bits). */
static int group_opts(struct vdemux_engine_opts *o)
{
	const struct vdemux_group *g = o->group;
	uint32_t per = (1u << g->idx_bits) - 1u;

	if (o->arena || o->first_page || o->npages || o->shard >= g->nshards || o->max_vms > per ||
	    !wake_ok(&o->wake))
		return -EINVAL;
	if (g->shards[o->shard])
		return -EBUSY;
	if (!o->max_vms)
		o->max_vms = per < DEFAULT_MAX_VMS ? per : DEFAULT_MAX_VMS;
	o->arena = g->arena;
	o->first_page = g->first_page;
	o->npages = g->npages;
	return 0;
}

/* The pool: all pages FREE; a shard's: its share FREE, the rest AWAY. */
static int engine_pool(struct vdemux_engine *e, const struct vdemux_engine_opts *o)
{
	struct vdemux_group *g = o->group;

	e->ndests = e->vmt.max;
	if (!g)
		return vd_pool_init(&e->pool, &e->alloc);
	e->shard.g = g;
	e->shard.idx = o->shard;
	e->vmt.base = o->shard << g->idx_bits;
	e->ndests = e->vmt.max * g->nshards;
	return vd_pool_init_part(&e->pool, &e->alloc, g->part[o->shard], g->part[o->shard + 1]);
}

/* The built-in classifier: the engine's own, or its group's. */
static int engine_l2(struct vdemux_engine *e)
{
	if (e->shard.g) {
		e->l2 = e->shard.g->l2;
		return 0;
	}
	return vd_l2_create(&e->l2, NULL, &e->alloc);
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
	    o.harvest > VDEMUX_HARVEST_LAZY || o.copy > VDEMUX_COPY_ADAPTIVE)
		return -EINVAL;
	if (o.group && (err = group_opts(&o)))
		return err;
	if (!o.group && (o.wake.kind || o.shard))
		return -EINVAL;
	if (!o.arena && o.npages == 0)
		return -EINVAL;

	e = vd_calloc(&o.alloc, 1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->alloc = o.alloc;
	e->diag.log = o.log;
	e->diag.log_payload = o.log_payload;
	err = engine_arena(e, &o);
	if (err) {
		vd_free(&o.alloc, e);
		return err;
	}
	e->pool.base = e->ai.base + (size_t)e->pool.first_page * PAGE;
	e->max_frame = o.max_frame ? o.max_frame : DEFAULT_MAX_FRAME;
	e->harvest = o.harvest ? o.harvest : VDEMUX_HARVEST_EAGER;
	e->copy = o.copy;
	e->copy_threshold = o.copy_threshold;
	e->low_watermark = o.low_watermark;
	e->sigs.release_armed = true;

	err = vd_vmtab_init(&e->vmt, o.max_vms ? o.max_vms : DEFAULT_MAX_VMS, &e->alloc);
	if (!err)
		err = engine_pool(e, &o);
	if (!err)
		err = vd_plan_init(&e->plan, PEND_CAP, &e->alloc);
	if (!err)
		err = vd_batch_init(&e->batch, PEND_CAP, &e->alloc);
	if (!err)
		err = vd_cost_init(&e->cost, &e->alloc, o.clock, o.clock_payload);
	if (err)
		goto fail;
	e->dests = vd_calloc(&e->alloc, e->ndests, sizeof(*e->dests));
	if (!e->dests || vd_offload_scratch_init(&e->ofs, e->max_frame, &e->alloc)) {
		err = -ENOMEM;
		goto fail;
	}
	err = engine_l2(e);
	if (err)
		goto fail;
	use_classifier(e, vdemux_l2_classifier(e->l2));
	e->st.pages_total = e->pool.npages;
	if (o.group) {
		o.group->wake[o.shard].sig = o.wake;
		o.group->shards[o.shard] = e;
	}
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
	for (uint32_t i = 0; i < e->vmt.max; i++)
		if (e->vmt.vms && e->vmt.vms[i])
			vdemux_vm_remove(e, e->vmt.vms[i]->id);
	if (e->shard.g) {
		e->shard.g->wake[e->shard.idx].sig = (struct vdemux_signal){0};
		e->shard.g->shards[e->shard.idx] = NULL;
	}
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
	for (unsigned i = 0; i < e->nbe; i++) {
		if (e->bes[i] == be) {
			vd_bad(e, VDEMUX_BAD_BACKEND);
			return -EEXIST;
		}
	}
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
	if (!be->log) {
		be->log = e->diag.log;
		be->log_payload = e->diag.log_payload;
	}
	e->bes[e->nbe++] = be;
	vd_log(e, VDEMUX_LOG_INFO, "backend %s registered", be->name ? be->name : "?");
	return 0;
}

/* Use @p cls; its read section only when it has all of it (version 2). */
static void use_classifier(vdemux_engine *e, struct vdemux_classifier *cls)
{
	e->cls = cls;
	e->cls_read = NULL;
	if (cls->version >= 2 && cls->read_begin && cls->classify_read && cls->read_end)
		e->cls_read = cls->classify_read;
}

int vdemux_engine_set_classifier(vdemux_engine *e, struct vdemux_classifier *cls)
{
	if (!e)
		return -EINVAL;
	if (!cls) {
		use_classifier(e, vdemux_l2_classifier(e->l2));
		return 0;
	}
	if (cls->version != VDEMUX_CLASSIFIER_VERSION && cls->version != VDEMUX_CLASSIFIER_VERSION_1) {
		vd_bad(e, VDEMUX_BAD_BACKEND);
		return -EPROTO;
	}
	if (!cls->classify) {
		vd_bad(e, VDEMUX_BAD_BACKEND);
		return -EINVAL;
	}
	use_classifier(e, cls);
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
	if (i == e->nbe) {
		vd_bad(e, VDEMUX_BAD_BACKEND);
		return -ENOENT;
	}
	for (uint32_t v = 0; v < e->vmt.max; v++) {
		const struct vm *vm = e->vmt.vms[v];

		for (unsigned b = 0; vm && b < vm->nbe; b++) {
			if (vm->bes[b].be == be) {
				vd_bad(e, VDEMUX_BAD_BACKEND);
				return -EBUSY;
			}
		}
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
	memcpy(s.drops, e->diag.drops, sizeof(s.drops));
	memcpy(s.bad_input, e->diag.bad_input, sizeof(s.bad_input));
	s.pages_total = e->pool.npages;
	s.pages_free = e->pool.nfree;
	s.pages_filling = e->pool.nfilling;
	s.pages_assigned = e->pool.nassigned;
	s.pages_quarantined = e->pool.nquarantined;
	s.pages_away = e->pool.naway;
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

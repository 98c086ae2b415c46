/* SPDX-License-Identifier: MIT */
/*
 * Engine creation and destruction, options structs, backend registration,
 * classifier installation, counters and names.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vt.h"

/* A backend that keeps no tables: enough to be registered. */
struct fake_be {
	struct vdemux_backend base;
	int *freed;
};

static int fake_attach(struct vdemux_backend *be, const struct vdemux_backend_vm *vm, void **vmctx)
{
	(void)be;
	(void)vm;
	*vmctx = NULL;
	return 0;
}

static void fake_detach(struct vdemux_backend *be, void *vmctx)
{
	(void)be;
	(void)vmctx;
}

static int fake_batch(struct vdemux_backend *be, void *vmctx, const struct vdemux_map *m, unsigned n,
		      unsigned *done)
{
	(void)be;
	(void)vmctx;
	(void)m;
	*done = n;
	return 0;
}

static void fake_free(struct vdemux_backend *be)
{
	struct fake_be *f = (struct fake_be *)be;

	if (f->freed)
		(*f->freed)++;
	free(f);
}

static struct fake_be *fake_new(int *freed)
{
	struct fake_be *f = calloc(1, sizeof(*f));
	struct vdemux_backend init = VDEMUX_BACKEND_INIT;

	assert_non_null(f);
	f->base = init;
	f->base.name = "fake";
	f->base.vm_attach = fake_attach;
	f->base.vm_detach = fake_detach;
	f->base.map = fake_batch;
	f->base.unmap = fake_batch;
	f->base.free = fake_free;
	f->freed = freed;
	return f;
}

static vdemux_engine *engine_new(uint32_t npages)
{
	struct vdemux_engine_opts o = VDEMUX_OPTS(vdemux_engine_opts, .npages = npages);
	vdemux_engine *eng = NULL;

	assert_int_equal(vdemux_engine_create(&eng, &o), 0);
	assert_non_null(eng);
	return eng;
}

static struct vdemux_engine_stats stats_of(vdemux_engine *eng)
{
	struct vdemux_engine_stats s;

	memset(&s, 0, sizeof(s));
	assert_int_equal(vdemux_engine_stats(eng, &s, sizeof(s)), 0);
	return s;
}

static void test_version_matches_the_header(void **state)
{
	(void)state;
	assert_int_equal(vdemux_version(), (VDEMUX_VERSION_MAJOR << 16) | (VDEMUX_VERSION_MINOR << 8) |
						   VDEMUX_VERSION_PATCH);
}

static void test_create_rejects_null_out_and_null_opts(void **state)
{
	struct vdemux_engine_opts o = VDEMUX_OPTS(vdemux_engine_opts, .npages = 8);
	vdemux_engine *eng = (vdemux_engine *)0x1;

	(void)state;
	assert_int_equal(vdemux_engine_create(NULL, &o), -EINVAL);
	assert_int_equal(vdemux_engine_create(&eng, NULL), -EINVAL);
	assert_ptr_equal(eng, (vdemux_engine *)0x1); /* set only on success */
}

static void test_create_requires_pages_or_an_arena(void **state)
{
	struct vdemux_engine_opts o = VDEMUX_OPTS(vdemux_engine_opts, .npages = 0);
	vdemux_engine *eng = NULL;

	(void)state;
	assert_int_equal(vdemux_engine_create(&eng, &o), -EINVAL);
	assert_null(eng);
}

static void test_create_with_sz_zero_knows_no_field_so_has_no_pages(void **state)
{
	struct vdemux_engine_opts o = VDEMUX_OPTS(vdemux_engine_opts, .npages = 8);
	vdemux_engine *eng = NULL;

	(void)state;
	o.sz = 0;
	assert_int_equal(vdemux_engine_create(&eng, &o), -EINVAL);
	assert_null(eng);
}

static void test_create_rejects_max_frame_above_64k_plus_4(void **state)
{
	struct vdemux_engine_opts o = VDEMUX_OPTS(vdemux_engine_opts, .npages = 8,
						  .max_frame = 65536 + 5);
	vdemux_engine *eng = NULL;

	(void)state;
	assert_int_equal(vdemux_engine_create(&eng, &o), -EINVAL);
	assert_null(eng);
	o.max_frame = 65536 + 4;
	assert_int_equal(vdemux_engine_create(&eng, &o), 0);
	vdemux_engine_destroy(eng);
}

static void test_create_rejects_max_vms_above_limit(void **state)
{
	struct vdemux_engine_opts o = VDEMUX_OPTS(vdemux_engine_opts, .npages = 8, .max_vms = 1048576);
	vdemux_engine *eng = NULL;

	(void)state;
	assert_int_equal(vdemux_engine_create(&eng, &o), -EINVAL);
	assert_null(eng);
}

static void test_create_rejects_unknown_policies(void **state)
{
	struct vdemux_engine_opts o = VDEMUX_OPTS(vdemux_engine_opts, .npages = 8);
	vdemux_engine *eng = NULL;

	(void)state;
	o.harvest = (enum vdemux_harvest)9;
	assert_int_equal(vdemux_engine_create(&eng, &o), -EINVAL);
	o.harvest = VDEMUX_HARVEST_DEFAULT;
	o.copy = (enum vdemux_copy_policy)9;
	assert_int_equal(vdemux_engine_create(&eng, &o), -EINVAL);
	assert_null(eng);
}

/* A caller built against a newer header: the struct is longer than ours. */
struct engine_opts_newer {
	struct vdemux_engine_opts o;
	uint64_t future1;
	uint32_t future2;
};

static void test_create_rejects_nonzero_unknown_trailing_bytes(void **state)
{
	struct engine_opts_newer n;
	vdemux_engine *eng = NULL;

	(void)state;
	memset(&n, 0, sizeof(n));
	n.o.sz = sizeof(n);
	n.o.npages = 8;
	n.future2 = 1;
	assert_int_equal(vdemux_engine_create(&eng, &n.o), -EINVAL);
	assert_null(eng);
	n.future2 = 0;
	n.future1 = 1ull << 40;
	assert_int_equal(vdemux_engine_create(&eng, &n.o), -EINVAL);
	assert_null(eng);
}

static void test_create_accepts_zero_unknown_trailing_bytes(void **state)
{
	struct engine_opts_newer n;
	vdemux_engine *eng = NULL;

	(void)state;
	memset(&n, 0, sizeof(n));
	n.o.sz = sizeof(n);
	n.o.npages = 8;
	assert_int_equal(vdemux_engine_create(&eng, &n.o), 0);
	assert_int_equal(stats_of(eng).pages_total, 8);
	vdemux_engine_destroy(eng);
}

/* A caller built against an older header: fields past sz are not read. */
static void test_create_with_smaller_sz_ignores_fields_past_it(void **state)
{
	struct vdemux_engine_opts o;
	vdemux_engine *eng = NULL;
	uint8_t frame[1500];
	struct vdemux_frame f = {.data = frame, .len = sizeof(frame)};

	(void)state;
	memset(&o, 0xff, sizeof(o)); /* garbage everywhere past sz */
	o.sz = offsetof(struct vdemux_engine_opts, npages) + sizeof(o.npages);
	o.arena = NULL;
	o.first_page = 0;
	o.npages = 8;
	assert_int_equal(vdemux_engine_create(&eng, &o), 0);
	assert_int_equal(stats_of(eng).pages_total, 8);
	/* max_frame (garbage 0xffffffff, past sz) took its default: 1500 B passes */
	vt_frame_fill(frame, sizeof(frame), vt_bcast, 1);
	assert_int_equal(vdemux_rx_burst(eng, &f, 1), 1);
	assert_int_equal(vdemux_engine_check(eng, NULL, 0), 0);
	vdemux_engine_destroy(eng);
}

static void test_new_engine_has_every_page_free_and_is_consistent(void **state)
{
	vdemux_engine *eng = engine_new(32);
	struct vdemux_engine_stats s = stats_of(eng);
	char msg[128];

	(void)state;
	assert_int_equal(s.pages_total, 32);
	assert_int_equal(s.pages_free, 32);
	assert_int_equal(s.pages_filling, 0);
	assert_int_equal(s.pages_assigned, 0);
	for (int i = 0; i < VDEMUX_BAD__COUNT; i++)
		assert_int_equal(s.bad_input[i], 0);
	for (int i = 0; i < VDEMUX_DROP__COUNT; i++)
		assert_int_equal(s.drops[i], 0);
	assert_int_equal(vdemux_engine_check(eng, msg, sizeof(msg)), 0);
	vdemux_engine_destroy(eng);
}

static void test_destroy_null_is_a_noop(void **state)
{
	(void)state;
	vdemux_engine_destroy(NULL);
}

static void test_create_rejects_pages_outside_the_arena(void **state)
{
	struct vdemux_arena_opts ao = VDEMUX_OPTS(vdemux_arena_opts, .npages = 16);
	vdemux_arena *a = NULL;
	vdemux_engine *eng = NULL;
	struct vdemux_engine_opts o;

	(void)state;
	assert_int_equal(vdemux_arena_create(&a, &ao), 0);
	o = VDEMUX_OPTS(vdemux_engine_opts, .arena = a, .first_page = 8, .npages = 9);
	assert_int_equal(vdemux_engine_create(&eng, &o), -EINVAL);
	o = VDEMUX_OPTS(vdemux_engine_opts, .arena = a, .first_page = 16);
	assert_int_equal(vdemux_engine_create(&eng, &o), -EINVAL);
	o = VDEMUX_OPTS(vdemux_engine_opts, .arena = a, .first_page = 8, .npages = UINT32_MAX - 4);
	assert_int_equal(vdemux_engine_create(&eng, &o), -EINVAL);
	assert_null(eng);
	/* the rest of the arena from first_page on */
	o = VDEMUX_OPTS(vdemux_engine_opts, .arena = a, .first_page = 6);
	assert_int_equal(vdemux_engine_create(&eng, &o), 0);
	assert_int_equal(stats_of(eng).pages_total, 10);
	vdemux_engine_destroy(eng);
	vdemux_arena_destroy(a);
}

static void test_alloc_hooks_see_every_allocation_returned(void **state)
{
	struct vt_counting_alloc c = {0};
	struct vdemux_engine_opts o = VDEMUX_OPTS(
		vdemux_engine_opts, .npages = 16,
		.alloc = {.calloc = vt_count_calloc, .free = vt_count_free, .payload = &c});
	vdemux_engine *eng = NULL;
	struct vdemux_backend *sim = NULL;
	struct vdemux_vm_opts vo = VDEMUX_OPTS(vdemux_vm_opts, .rx_base = 0x100000, .rx_pages = 4);
	vdemux_vm_id id = 0;

	(void)state;
	assert_int_equal(vdemux_engine_create(&eng, &o), 0);
	assert_true(c.calls > 0);
	assert_int_equal(vdemux_sim_create(&sim, NULL), 0);
	assert_int_equal(vdemux_engine_add_backend(eng, sim), 0);
	vo.backends = &sim;
	vo.n_backends = 1;
	assert_int_equal(vdemux_vm_add(eng, &id, &vo), 0);
	assert_int_equal(vdemux_vm_remove(eng, id), 0);
	assert_int_equal(vdemux_vm_add(eng, &id, &vo), 0);
	vdemux_engine_destroy(eng);
	assert_int_equal(c.live, 0);
}

static void test_alloc_hooks_must_be_both_set_or_neither(void **state)
{
	struct vt_counting_alloc c = {0};
	struct vdemux_engine_opts o = VDEMUX_OPTS(vdemux_engine_opts, .npages = 16,
						  .alloc = {.calloc = vt_count_calloc, .payload = &c});
	vdemux_engine *eng = NULL;

	(void)state;
	assert_int_equal(vdemux_engine_create(&eng, &o), -EINVAL);
	o.alloc.calloc = NULL;
	o.alloc.free = vt_count_free;
	assert_int_equal(vdemux_engine_create(&eng, &o), -EINVAL);
	assert_null(eng);
	assert_int_equal(c.live, 0);
}

/* ---- backend registration ---- */

static void expect_backend_refused(struct fake_be *f, int err)
{
	vdemux_engine *eng = engine_new(8);
	struct vdemux_engine_stats before = stats_of(eng), after;

	assert_int_equal(vdemux_engine_add_backend(eng, &f->base), err);
	after = stats_of(eng);
	assert_int_equal(after.bad_input[VDEMUX_BAD_BACKEND], before.bad_input[VDEMUX_BAD_BACKEND] + 1);
	vdemux_engine_destroy(eng);
}

/* Refused as above, and still the caller's (the engine freed nothing):
 * the caller frees it. */
static void expect_refused_and_kept(struct fake_be *f, const int *freed, int err)
{
	expect_backend_refused(f, err);
	assert_int_equal(*freed, 0);
	fake_free(&f->base);
}

static void test_add_backend_refuses_missing_vm_attach(void **state)
{
	int freed = 0;
	struct fake_be *f = fake_new(&freed);

	(void)state;
	f->base.vm_attach = NULL;
	expect_refused_and_kept(f, &freed, -EINVAL);
}

static void test_add_backend_refuses_missing_vm_detach(void **state)
{
	int freed = 0;
	struct fake_be *f = fake_new(&freed);

	(void)state;
	f->base.vm_detach = NULL;
	expect_refused_and_kept(f, &freed, -EINVAL);
}

static void test_add_backend_refuses_missing_map(void **state)
{
	int freed = 0;
	struct fake_be *f = fake_new(&freed);

	(void)state;
	f->base.map = NULL;
	expect_refused_and_kept(f, &freed, -EINVAL);
}

static void test_add_backend_refuses_missing_unmap(void **state)
{
	int freed = 0;
	struct fake_be *f = fake_new(&freed);

	(void)state;
	f->base.unmap = NULL;
	expect_refused_and_kept(f, &freed, -EINVAL);
}

static void test_add_backend_refuses_unknown_version(void **state)
{
	int freed = 0;
	struct fake_be *f = fake_new(&freed);

	(void)state;
	f->base.version = VDEMUX_BACKEND_VERSION + 1;
	expect_backend_refused(f, -EPROTO);
	f->base.version = 0;
	expect_refused_and_kept(f, &freed, -EPROTO);
}

static void test_add_backend_refuses_nonzero_flags(void **state)
{
	int freed = 0;
	struct fake_be *f = fake_new(&freed);
	vdemux_engine *eng = engine_new(8);

	(void)state;
	f->base.flags = 1;
	assert_int_equal(vdemux_engine_add_backend(eng, &f->base), -EINVAL);
	vdemux_engine_destroy(eng);
	assert_int_equal(freed, 0);
	fake_free(&f->base);
}

static void test_add_backend_refuses_null(void **state)
{
	vdemux_engine *eng = engine_new(8);
	struct vdemux_engine_stats before = stats_of(eng);
	int freed = 0;
	struct fake_be *f = fake_new(&freed);

	(void)state;
	assert_int_equal(vdemux_engine_add_backend(eng, NULL), -EINVAL);
	assert_int_equal(stats_of(eng).bad_input[VDEMUX_BAD_NULL], before.bad_input[VDEMUX_BAD_NULL] + 1);
	assert_int_equal(vdemux_engine_add_backend(NULL, &f->base), -EINVAL);
	vdemux_engine_destroy(eng);
	assert_int_equal(freed, 0);
	fake_free(&f->base);
}

static void test_add_backend_accepts_without_optional_ops(void **state)
{
	int freed = 0;
	struct fake_be *f = fake_new(&freed);
	vdemux_engine *eng = engine_new(8);
	struct vdemux_backend *be = &f->base;
	struct vdemux_vm_opts vo = VDEMUX_OPTS(vdemux_vm_opts, .rx_base = 0x200000, .rx_pages = 2,
					       .backends = &be, .n_backends = 1);
	vdemux_vm_id id = 0;

	(void)state;
	f->base.remap = NULL;
	f->base.query = NULL;
	f->base.free = NULL;
	assert_int_equal(vdemux_engine_add_backend(eng, be), 0);
	/* usable: a VM on it is populated and removed */
	assert_int_equal(vdemux_vm_add(eng, &id, &vo), 0);
	assert_int_equal(vdemux_engine_check(eng, NULL, 0), 0);
	vdemux_engine_destroy(eng);
	assert_int_equal(freed, 0); /* no free op: the engine could not call it */
	free(f);
}

static void test_add_backend_twice_is_eexist(void **state)
{
	int freed = 0;
	struct fake_be *f = fake_new(&freed);
	vdemux_engine *eng = engine_new(8);

	(void)state;
	assert_int_equal(vdemux_engine_add_backend(eng, &f->base), 0);
	assert_int_equal(vdemux_engine_add_backend(eng, &f->base), -EEXIST);
	vdemux_engine_destroy(eng);
	assert_int_equal(freed, 1); /* freed once, not twice */
}

static void test_add_backend_has_no_engine_wide_limit_and_destroy_frees_each_once(void **state)
{
	enum { N = 12 };
	int freed[N] = {0};
	vdemux_engine *eng = engine_new(8);

	(void)state;
	for (int i = 0; i < N; i++)
		assert_int_equal(vdemux_engine_add_backend(eng, &fake_new(&freed[i])->base), 0);
	vdemux_engine_destroy(eng);
	for (int i = 0; i < N; i++)
		assert_int_equal(freed[i], 1);
}

static void test_remove_backend_frees_an_unused_backend_once(void **state)
{
	int freed = 0, stray_freed = 0;
	struct fake_be *f = fake_new(&freed), *stray = fake_new(&stray_freed);
	vdemux_engine *eng = engine_new(8);
	struct vdemux_backend *be = &f->base;
	struct vdemux_vm_opts vo = VDEMUX_OPTS(vdemux_vm_opts, .rx_base = 0x200000, .rx_pages = 2,
					       .backends = &be, .n_backends = 1);
	vdemux_vm_id id = 0;

	(void)state;
	assert_int_equal(vdemux_engine_remove_backend(NULL, be), -EINVAL);
	assert_int_equal(vdemux_engine_remove_backend(eng, NULL), -EINVAL);
	assert_int_equal(vdemux_engine_remove_backend(eng, &stray->base), -ENOENT);
	assert_int_equal(stray_freed, 0);
	assert_int_equal(vdemux_engine_add_backend(eng, be), 0);
	assert_int_equal(vdemux_vm_add(eng, &id, &vo), 0);
	/* still used by a VM: refused, nothing changed, the VM still works */
	assert_int_equal(vdemux_engine_remove_backend(eng, be), -EBUSY);
	assert_int_equal(freed, 0);
	assert_int_equal(vdemux_engine_check(eng, NULL, 0), 0);
	assert_int_equal(vdemux_vm_remove(eng, id), 0);
	assert_int_equal(vdemux_engine_remove_backend(eng, be), 0);
	assert_int_equal(freed, 1);
	assert_int_equal(vdemux_engine_remove_backend(eng, be), -ENOENT);
	/* no longer registered: a VM cannot use it */
	assert_int_equal(vdemux_vm_add(eng, &id, &vo), -EINVAL);
	vdemux_engine_destroy(eng);
	assert_int_equal(freed, 1); /* not freed again at destroy */
	fake_free(&stray->base);
}

/* ---- classifier ---- */

struct one_vm_cls {
	struct vdemux_classifier base;
	vdemux_vm_id to;
	unsigned calls;
};

static int one_vm_classify(struct vdemux_classifier *c, const uint8_t *frame, uint32_t len,
			   struct vdemux_verdict *v)
{
	struct one_vm_cls *k = (struct one_vm_cls *)c;

	(void)frame;
	(void)len;
	k->calls++;
	memset(&v->dests[0], 0, sizeof(v->dests[0]));
	v->dests[0].vm = k->to;
	v->n = 1;
	return 0;
}

static void test_set_classifier_checks_version_and_classify(void **state)
{
	vdemux_engine *eng = engine_new(8);
	struct one_vm_cls k = {.base = VDEMUX_CLASSIFIER_INIT};

	(void)state;
	assert_int_equal(vdemux_engine_set_classifier(eng, &k.base), -EINVAL); /* no classify */
	k.base.classify = one_vm_classify;
	k.base.version = VDEMUX_CLASSIFIER_VERSION + 1;
	assert_int_equal(vdemux_engine_set_classifier(eng, &k.base), -EPROTO);
	k.base.version = VDEMUX_CLASSIFIER_VERSION;
	assert_int_equal(vdemux_engine_set_classifier(NULL, &k.base), -EINVAL);
	assert_int_equal(vdemux_engine_set_classifier(eng, &k.base), 0);
	vdemux_engine_destroy(eng);
}

/* A classifier that names nobody. */
struct drop_all_cls {
	struct vdemux_classifier base;
	unsigned calls;
};

static int drop_all_classify(struct vdemux_classifier *c, const uint8_t *frame, uint32_t len,
			     struct vdemux_verdict *v)
{
	(void)frame;
	(void)len;
	((struct drop_all_cls *)c)->calls++;
	v->n = 0;
	v->drop_reason = VDEMUX_DROP_NO_DEST;
	return 0;
}

static void test_installed_classifier_is_consulted_and_null_restores_l2(void **state)
{
	struct vt_fx *fx = vt_fx_state(state, &(struct vt_fx_opts){.builtin_cls = true});
	struct vdemux_vm_opts o = vt_vm_opts(fx, 4);
	struct vt_vm *a = vt_vm_add(fx, &o);
	/* borrowed by the engine until its destruction in the teardown */
	static struct drop_all_cls k = {.base = VDEMUX_CLASSIFIER_INIT};
	struct vt_burst b = {0};
	struct vdemux_engine_stats s0, s1;

	assert_non_null(vdemux_engine_l2(fx->eng));
	vt_post_range(fx, a, 0, 4);
	/* a frame for a's address: the built-in L2 classifier delivers it */
	vt_burst_add(fx, &b, a->id, 100);
	s0 = vt_stats(fx);
	assert_int_equal(vdemux_rx_burst(fx->eng, b.f, 1), 1);
	assert_int_equal(vt_stats(fx).delivered, s0.delivered + 1);
	assert_int_equal(vt_guest_take(fx, a, NULL, 1), 1);

	/* ours names nobody: the same frame is dropped with its reason */
	k.base.classify = drop_all_classify;
	assert_int_equal(vdemux_engine_set_classifier(fx->eng, &k.base), 0);
	s1 = vt_stats(fx);
	assert_int_equal(vdemux_rx_burst(fx->eng, b.f, 1), 1);
	assert_int_equal(k.calls, 1);
	assert_int_equal(vt_stats(fx).delivered, s1.delivered);
	assert_int_equal(vt_stats(fx).drops[VDEMUX_DROP_NO_DEST], s1.drops[VDEMUX_DROP_NO_DEST] + 1);

	/* back to the built-in one: delivered again, ours not called */
	assert_int_equal(vdemux_engine_set_classifier(fx->eng, NULL), 0);
	assert_int_equal(vdemux_rx_burst(fx->eng, b.f, 1), 1);
	assert_int_equal(k.calls, 1);
	assert_int_equal(vt_stats(fx).delivered, s1.delivered + 1);
	assert_int_equal(vt_guest_take(fx, a, NULL, 1), 1);
	vt_check(fx);
	vt_burst_free(&b);
}

/* A version 2 classifier with a read section, counting each call. */
struct section_cls {
	struct vdemux_classifier base;
	vdemux_vm_id to;
	unsigned begins, ends, reads, plain;
	bool open, bad; /* bad: a call out of turn */
};

static uintptr_t section_begin(struct vdemux_classifier *c)
{
	struct section_cls *k = (struct section_cls *)c;

	k->bad |= k->open;
	k->open = true;
	k->begins++;
	return 0x5a00u + k->begins;
}

static int section_classify(struct vdemux_classifier *c, const uint8_t *frame, uint32_t len,
			    struct vdemux_verdict *v, bool in)
{
	struct section_cls *k = (struct section_cls *)c;

	(void)frame;
	(void)len;
	k->bad |= k->open != in;
	if (in)
		k->reads++;
	else
		k->plain++;
	memset(&v->dests[0], 0, sizeof(v->dests[0]));
	v->dests[0].vm = k->to;
	v->n = 1;
	return 0;
}

static int section_read(struct vdemux_classifier *c, const uint8_t *f, uint32_t len,
			struct vdemux_verdict *v)
{
	return section_classify(c, f, len, v, true);
}

static int section_plain(struct vdemux_classifier *c, const uint8_t *f, uint32_t len,
			 struct vdemux_verdict *v)
{
	return section_classify(c, f, len, v, false);
}

static void section_end(struct vdemux_classifier *c, uintptr_t token)
{
	struct section_cls *k = (struct section_cls *)c;

	k->bad |= !k->open || token != 0x5a00u + k->begins;
	k->open = false;
	k->ends++;
}

static void test_read_section_opens_once_per_multi_frame_burst_and_closes_before_return(void **state)
{
	struct vt_fx *fx = vt_fx_state(state, &(struct vt_fx_opts){0});
	struct vdemux_vm_opts o = vt_vm_opts(fx, 16);
	struct vt_vm *a = vt_vm_add(fx, &o);
	static struct section_cls k = {.base = VDEMUX_CLASSIFIER_INIT};
	struct vt_burst b = {0};

	k = (struct section_cls){.base = VDEMUX_CLASSIFIER_INIT, .to = a->id};
	k.base.classify = section_plain;
	k.base.read_begin = section_begin;
	k.base.classify_read = section_read;
	k.base.read_end = section_end;
	assert_int_equal(vdemux_engine_set_classifier(fx->eng, &k.base), 0);
	vt_post_range(fx, a, 0, 16);
	for (int i = 0; i < 3; i++)
		vt_burst_add(fx, &b, a->id, 100);
	assert_int_equal(vdemux_rx_burst(fx->eng, b.f, 3), 3);
	assert_int_equal(k.begins, 1);
	assert_int_equal(k.reads, 3);
	assert_int_equal(k.plain, 0);
	assert_int_equal(k.ends, 1);
	assert_false(k.open);
	assert_false(k.bad);
	assert_int_equal(vt_guest_take(fx, a, NULL, 3), 3);
	/* one frame: classify, which registers for itself */
	assert_int_equal(vdemux_rx_burst(fx->eng, b.f, 1), 1);
	assert_int_equal(k.begins, 1);
	assert_int_equal(k.plain, 1);
	assert_int_equal(k.ends, 1);
	assert_false(k.bad);
	assert_int_equal(vt_guest_take(fx, a, NULL, 1), 1);
	assert_int_equal(vdemux_rx_burst(fx->eng, b.f, 3), 3);
	assert_int_equal(k.begins, 2);
	assert_int_equal(k.reads, 6);
	assert_int_equal(k.ends, 2);
	assert_int_equal(vt_guest_take(fx, a, NULL, 3), 3);

	/* version 1: the section's fields are not read, classify is called */
	k.base.version = VDEMUX_CLASSIFIER_VERSION_1;
	assert_int_equal(vdemux_engine_set_classifier(fx->eng, &k.base), 0);
	assert_int_equal(vdemux_rx_burst(fx->eng, b.f, 2), 2);
	assert_int_equal(k.begins, 2);
	assert_int_equal(k.plain, 3);
	assert_false(k.bad);
	assert_int_equal(vt_guest_take(fx, a, NULL, 2), 2);
	vt_check(fx);
	vt_burst_free(&b);
}

/* ---- counters, check, names ---- */

static void test_stats_fills_only_the_size_asked(void **state)
{
	vdemux_engine *eng = engine_new(8);
	uint8_t buf[sizeof(struct vdemux_engine_stats) + 16];
	size_t half = offsetof(struct vdemux_engine_stats, pages_free) + sizeof(uint64_t);

	(void)state;
	memset(buf, 0xa5, sizeof(buf));
	assert_int_equal(vdemux_engine_stats(eng, (struct vdemux_engine_stats *)(void *)buf, half), 0);
	assert_int_equal(((struct vdemux_engine_stats *)(void *)buf)->pages_total, 8);
	for (size_t i = half; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 0xa5);
	vdemux_engine_destroy(eng);
}

static void test_stats_and_check_reject_null(void **state)
{
	vdemux_engine *eng = engine_new(8);
	struct vdemux_engine_stats s;

	(void)state;
	assert_int_equal(vdemux_engine_stats(NULL, &s, sizeof(s)), -EINVAL);
	assert_int_equal(vdemux_engine_stats(eng, NULL, sizeof(s)), -EINVAL);
	assert_int_equal(vdemux_engine_check(NULL, NULL, 0), -EINVAL);
	vdemux_engine_destroy(eng);
}

static void test_check_message_is_terminated_even_when_small(void **state)
{
	vdemux_engine *eng = engine_new(8);
	char msg[4] = {'x', 'x', 'x', 'x'};

	(void)state;
	assert_int_equal(vdemux_engine_check(eng, msg, sizeof(msg)), 0);
	assert_non_null(memchr(msg, '\0', sizeof(msg)));
	vdemux_engine_destroy(eng);
}

static void test_names_are_distinct_and_unknown_out_of_range(void **state)
{
	(void)state;
	for (int i = 0; i < VDEMUX_BAD__COUNT; i++) {
		const char *n = vdemux_bad_input_name(i);

		assert_non_null(n);
		assert_string_not_equal(n, "unknown");
		for (int j = 0; j < i; j++)
			assert_string_not_equal(n, vdemux_bad_input_name(j));
	}
	assert_string_equal(vdemux_bad_input_name(VDEMUX_BAD__COUNT), "unknown");
	assert_string_equal(vdemux_bad_input_name(-1), "unknown");
	for (int i = 1; i < VDEMUX_DROP__COUNT; i++) {
		const char *n = vdemux_drop_reason_name(i);

		assert_non_null(n);
		assert_string_not_equal(n, "unknown");
		for (int j = 1; j < i; j++)
			assert_string_not_equal(n, vdemux_drop_reason_name(j));
	}
	assert_string_equal(vdemux_drop_reason_name(VDEMUX_DROP__COUNT), "unknown");
	assert_string_equal(vdemux_drop_reason_name(-1), "unknown");
}

/* The library never writes to stdout or stderr, even when refusing input. */
static void test_library_prints_nothing_on_bad_input(void **state)
{
	struct vt_fx *fx = vt_fx_state(state, NULL);
	struct vdemux_vm_opts o = vt_vm_opts(fx, 4);
	struct vt_vm *a = vt_vm_add(fx, &o);
	FILE *tmp = tmpfile();
	int saved_out, saved_err;
	uint64_t g = 1;
	struct vdemux_frame f = {.data = &g, .len = 3};
	struct stat st;
	int freed = 0;
	struct fake_be *be = fake_new(&freed);

	assert_non_null(tmp);
	fflush(stdout);
	fflush(stderr);
	saved_out = dup(1);
	saved_err = dup(2);
	assert_true(saved_out >= 0 && saved_err >= 0);
	assert_int_equal(dup2(fileno(tmp), 1), 1);
	assert_int_equal(dup2(fileno(tmp), 2), 2);

	(void)vdemux_vm_post_rx(fx->eng, a->id, &g, 1);
	(void)vdemux_vm_post_rx(fx->eng, 9999, &g, 1);
	(void)vdemux_vm_release(fx->eng, a->id, NULL, 1);
	(void)vdemux_rx_burst(fx->eng, &f, 1);
	be->base.version = 77;
	(void)vdemux_engine_add_backend(fx->eng, &be->base);
	(void)vdemux_vm_remove(fx->eng, 4242);

	fflush(stdout);
	fflush(stderr);
	assert_int_equal(dup2(saved_out, 1), 1);
	assert_int_equal(dup2(saved_err, 2), 2);
	close(saved_out);
	close(saved_err);
	assert_int_equal(fstat(fileno(tmp), &st), 0);
	fclose(tmp);
	assert_int_equal(st.st_size, 0);
	fake_free(&be->base);
}

/* Log hook: if the engine logs, it is through the hook with its payload. */
struct log_rec {
	unsigned calls;
	int bad_level;
};

static void log_hook(int level, const char *msg, void *payload)
{
	struct log_rec *r = payload;

	r->calls++;
	if (level < VDEMUX_LOG_ERROR || level > VDEMUX_LOG_DEBUG || !msg)
		r->bad_level = 1;
}

static void test_log_hook_is_only_called_with_valid_levels(void **state)
{
	struct log_rec r = {0};
	struct vdemux_engine_opts o = VDEMUX_OPTS(vdemux_engine_opts, .npages = 8, .log = log_hook,
						  .log_payload = &r);
	vdemux_engine *eng = NULL;
	uint64_t g = 0x1000;

	(void)state;
	assert_int_equal(vdemux_engine_create(&eng, &o), 0);
	(void)vdemux_vm_post_rx(eng, 12345, &g, 1);
	(void)vdemux_vm_remove(eng, 12345);
	vdemux_engine_destroy(eng);
	assert_int_equal(r.bad_level, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_version_matches_the_header),
		cmocka_unit_test(test_create_rejects_null_out_and_null_opts),
		cmocka_unit_test(test_create_requires_pages_or_an_arena),
		cmocka_unit_test(test_create_with_sz_zero_knows_no_field_so_has_no_pages),
		cmocka_unit_test(test_create_rejects_max_frame_above_64k_plus_4),
		cmocka_unit_test(test_create_rejects_max_vms_above_limit),
		cmocka_unit_test(test_create_rejects_unknown_policies),
		cmocka_unit_test(test_create_rejects_nonzero_unknown_trailing_bytes),
		cmocka_unit_test(test_create_accepts_zero_unknown_trailing_bytes),
		cmocka_unit_test(test_create_with_smaller_sz_ignores_fields_past_it),
		cmocka_unit_test(test_new_engine_has_every_page_free_and_is_consistent),
		cmocka_unit_test(test_destroy_null_is_a_noop),
		cmocka_unit_test(test_create_rejects_pages_outside_the_arena),
		cmocka_unit_test(test_alloc_hooks_see_every_allocation_returned),
		cmocka_unit_test(test_alloc_hooks_must_be_both_set_or_neither),
		cmocka_unit_test(test_add_backend_refuses_missing_vm_attach),
		cmocka_unit_test(test_add_backend_refuses_missing_vm_detach),
		cmocka_unit_test(test_add_backend_refuses_missing_map),
		cmocka_unit_test(test_add_backend_refuses_missing_unmap),
		cmocka_unit_test(test_add_backend_refuses_unknown_version),
		cmocka_unit_test(test_add_backend_refuses_nonzero_flags),
		cmocka_unit_test(test_add_backend_refuses_null),
		cmocka_unit_test(test_add_backend_accepts_without_optional_ops),
		cmocka_unit_test(test_add_backend_twice_is_eexist),
		cmocka_unit_test(test_add_backend_has_no_engine_wide_limit_and_destroy_frees_each_once),
		cmocka_unit_test(test_remove_backend_frees_an_unused_backend_once),
		cmocka_unit_test(test_set_classifier_checks_version_and_classify),
		cmocka_unit_test_setup_teardown(
			test_read_section_opens_once_per_multi_frame_burst_and_closes_before_return,
			vt_setup, vt_teardown),
		cmocka_unit_test_setup_teardown(
			test_installed_classifier_is_consulted_and_null_restores_l2, vt_setup,
			vt_teardown),
		cmocka_unit_test(test_stats_fills_only_the_size_asked),
		cmocka_unit_test(test_stats_and_check_reject_null),
		cmocka_unit_test(test_check_message_is_terminated_even_when_small),
		cmocka_unit_test(test_names_are_distinct_and_unknown_out_of_range),
		cmocka_unit_test_setup_teardown(test_library_prints_nothing_on_bad_input, vt_setup,
						vt_teardown),
		cmocka_unit_test(test_log_hook_is_only_called_with_valid_levels),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: MIT */
/*
 * The engine + simulated-MMU fixture, and the test classifier: it reads the
 * destination VM id straight out of the destination MAC (vt_mac()) and sends
 * broadcast to every VM of the fixture, so that tests of the engine do not
 * depend on the L2 classifier's rules.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vt.h"

static int vt_classify(struct vdemux_classifier *c, const uint8_t *frame, uint32_t len,
		       struct vdemux_verdict *v)
{
	struct vt_cls *cls = (struct vt_cls *)c;
	struct vt_fx *fx = cls->fx;

	v->n = 0;
	v->drop_reason = VDEMUX_DROP_NONE;
	if (len < 14) {
		v->drop_reason = VDEMUX_DROP_MALFORMED;
		return 0;
	}
	if (memcmp(frame, vt_bcast, 6) == 0) {
		for (unsigned i = 0; i < fx->nvms && v->n < v->cap; i++) {
			if (fx->vms[i].removed)
				continue;
			memset(&v->dests[v->n], 0, sizeof(v->dests[0]));
			v->dests[v->n].vm = fx->vms[i].id;
			v->n++;
		}
		if (v->n == 0)
			v->drop_reason = VDEMUX_DROP_NO_DEST;
		return 0;
	}
	if (frame[0] == 0x02 && frame[1] == 0x00 && v->cap > 0) {
		memset(&v->dests[0], 0, sizeof(v->dests[0]));
		v->dests[0].vm = (vdemux_vm_id)frame[2] << 24 | (vdemux_vm_id)frame[3] << 16 |
				 (vdemux_vm_id)frame[4] << 8 | frame[5];
		v->n = 1;
		return 0;
	}
	v->drop_reason = VDEMUX_DROP_NO_DEST;
	return 0;
}

static void vt_cls_vm_removed(struct vdemux_classifier *c, vdemux_vm_id vm)
{
	struct vt_cls *cls = (struct vt_cls *)c;

	cls->removed_calls++;
	cls->last_removed = vm;
}

struct vt_fx *vt_fx_new(const struct vt_fx_opts *o)
{
	struct vt_fx_opts def = {0};
	struct vt_fx *fx = calloc(1, sizeof(*fx));
	struct vdemux_engine_opts eo;
	struct vdemux_classifier cinit = VDEMUX_CLASSIFIER_INIT;

	assert_non_null(fx);
	if (!o)
		o = &def;
	if (o->eng.sz) {
		eo = o->eng;
	} else {
		eo = VDEMUX_OPTS(vdemux_engine_opts, .npages = o->npages ? o->npages : 64);
	}
	assert_int_equal(vdemux_engine_create(&fx->eng, &eo), 0);
	assert_non_null(fx->eng);
	fx->first_page = eo.first_page;
	fx->npages = eo.npages;
	if (eo.arena && eo.npages == 0) {
		struct vdemux_arena_info ai;

		assert_int_equal(vdemux_arena_info(eo.arena, &ai), 0);
		fx->npages = ai.npages - eo.first_page;
	}

	fx->nbe = o->nbe ? o->nbe : 1;
	assert_true(fx->nbe <= VT_MAX_BE);
	for (unsigned b = 0; b < fx->nbe; b++) {
		struct vdemux_sim_opts so = VDEMUX_OPTS(vdemux_sim_opts,
							.copy_threshold = o->sim_copy_threshold);

		assert_int_equal(vdemux_sim_create(&fx->sim[b], &so), 0);
		fx->be[b] = fx->sim[b];
		if (o->fault) {
			fx->fault[b] = vt_fault_wrap(fx->sim[b], !o->no_remap);
			fx->be[b] = &fx->fault[b]->base;
		}
		assert_int_equal(vdemux_engine_add_backend(fx->eng, fx->be[b]), 0);
	}

	fx->builtin_cls = o->builtin_cls;
	fx->cls.base = cinit;
	fx->cls.base.name = "vt";
	fx->cls.base.classify = vt_classify;
	fx->cls.base.vm_removed = vt_cls_vm_removed;
	fx->cls.fx = fx;
	if (!fx->builtin_cls)
		assert_int_equal(vdemux_engine_set_classifier(fx->eng, &fx->cls.base), 0);
	fx->next_seq = 1;
	return fx;
}

void vt_fx_free(struct vt_fx *fx)
{
	if (!fx)
		return;
	vdemux_engine_destroy(fx->eng);
	free(fx);
}

struct vt_fx *vt_fx_state(void **state, const struct vt_fx_opts *o)
{
	struct vt_fx *fx = vt_fx_new(o);

	assert_null(*state);
	*state = fx;
	return fx;
}

int vt_setup(void **state)
{
	*state = NULL;
	return 0;
}

int vt_teardown(void **state)
{
	vt_fx_free(*state);
	*state = NULL;
	return 0;
}

static void vt_sig_cb(vdemux_vm_id id, unsigned reasons, void *payload)
{
	struct vt_fx *fx = payload;
	struct vt_vm *vm = vt_vm_by_id(fx, id);

	if (!vm)
		return;
	vm->sig_calls++;
	vm->sig_reasons |= reasons;
	vm->sig_last = reasons;
	if (vm->poll_in_cb) {
		struct vdemux_completion c[64];
		int n = vdemux_vm_poll(fx->eng, id, c, 64);

		if (n > 0)
			vm->sig_polled += (unsigned)n;
	}
}

struct vdemux_vm_opts vt_vm_opts(struct vt_fx *fx, uint32_t rx_pages)
{
	struct vdemux_vm_opts o = VDEMUX_OPTS(vdemux_vm_opts, .rx_pages = rx_pages);

	/* distinct, unusual bases catch arithmetic that forgets rx_base */
	o.rx_base = 0x40000000ull + (uint64_t)fx->nvms * 0x01230000ull;
	o.backends = fx->be;
	o.n_backends = fx->nbe;
	o.signal.kind = VDEMUX_SIGNAL_CALLBACK;
	o.signal.cb = vt_sig_cb;
	o.signal.payload = fx;
	return o;
}

struct vt_vm *vt_vm_add(struct vt_fx *fx, const struct vdemux_vm_opts *o)
{
	struct vt_vm *vm;
	vdemux_vm_id id = 0;
	int rc;

	assert_true(fx->nvms < VT_MAX_VMS);
	vm = &fx->vms[fx->nvms];
	memset(vm, 0, sizeof(*vm));
	rc = vdemux_vm_add(fx->eng, &id, o);
	if (rc != 0)
		fail_msg("vdemux_vm_add: %d", rc);
	assert_int_not_equal(id, 0);
	vm->id = id;
	vm->rx_base = o->rx_base;
	vm->rx_pages = o->rx_pages;
	vm->quota = o->quota ? o->quota : o->rx_pages;
	vm->nbe = o->n_backends;
	for (unsigned i = 0; i < o->n_backends; i++) {
		vm->be_idx[i] = VT_MAX_BE;
		for (unsigned b = 0; b < fx->nbe; b++)
			if (fx->be[b] == o->backends[i])
				vm->be_idx[i] = b;
		assert_true(vm->be_idx[i] < fx->nbe);
	}
	fx->nvms++;
	if (fx->builtin_cls) {
		vdemux_l2 *l2 = vdemux_engine_l2(fx->eng);
		uint8_t mac[6];

		assert_non_null(l2);
		vt_mac(id, mac);
		assert_int_equal(vdemux_l2_vlan_join(l2, id, 1, 0), 0);
		assert_int_equal(vdemux_l2_add_mac(l2, id, mac, 1), 0);
	}
	return vm;
}

void vt_vm_remove(struct vt_fx *fx, struct vt_vm *vm)
{
	assert_false(vm->removed);
	assert_int_equal(vdemux_vm_remove(fx->eng, vm->id), 0);
	vm->removed = true;
}

uint64_t vt_gpa(const struct vt_vm *vm, uint32_t i)
{
	assert_true(i < vm->rx_pages);
	return vm->rx_base + (uint64_t)i * VDEMUX_PAGE_SIZE;
}

void vt_post_range(struct vt_fx *fx, struct vt_vm *vm, uint32_t first, uint32_t n)
{
	uint64_t *g = calloc(n, sizeof(*g));

	assert_non_null(g);
	for (uint32_t i = 0; i < n; i++)
		g[i] = vt_gpa(vm, first + i);
	assert_int_equal(vdemux_vm_post_rx(fx->eng, vm->id, g, n), (int)n);
	free(g);
}

struct vt_vm *vt_vm_new(struct vt_fx *fx, uint32_t rx_pages, uint32_t flags, enum vdemux_harvest harvest)
{
	struct vdemux_vm_opts o = vt_vm_opts(fx, rx_pages);

	o.flags = flags;
	o.harvest = harvest;
	return vt_vm_add(fx, &o);
}

struct vt_vm *vt_vm_posted(struct vt_fx *fx, uint32_t rx_pages, uint32_t flags)
{
	struct vdemux_vm_opts o = vt_vm_opts(fx, rx_pages);
	struct vt_vm *vm;

	o.flags = flags;
	vm = vt_vm_add(fx, &o);
	vt_post_range(fx, vm, 0, rx_pages);
	return vm;
}

struct vdemux_vm_stats vt_vm_stats(struct vt_fx *fx, const struct vt_vm *vm)
{
	struct vdemux_vm_stats s;

	memset(&s, 0, sizeof(s));
	assert_int_equal(vdemux_vm_stats(fx->eng, vm->id, &s, sizeof(s)), 0);
	return s;
}

struct vdemux_engine_stats vt_stats(struct vt_fx *fx)
{
	struct vdemux_engine_stats s;

	memset(&s, 0, sizeof(s));
	assert_int_equal(vdemux_engine_stats(fx->eng, &s, sizeof(s)), 0);
	return s;
}

struct vt_vm *vt_vm_by_id(struct vt_fx *fx, vdemux_vm_id id)
{
	for (unsigned i = 0; i < fx->nvms; i++)
		if (fx->vms[i].id == id && !fx->vms[i].removed)
			return &fx->vms[i];
	return NULL;
}

void vt_sig_reset(struct vt_fx *fx)
{
	for (unsigned i = 0; i < fx->nvms; i++) {
		fx->vms[i].sig_calls = 0;
		fx->vms[i].sig_reasons = 0;
		fx->vms[i].sig_last = 0;
		fx->vms[i].sig_polled = 0;
	}
}

uint32_t vt_translate(struct vt_fx *fx, unsigned b, const struct vt_vm *vm, uint64_t gpa)
{
	uint32_t page = 0xdeadbeefu;
	int rc = vdemux_sim_translate(fx->sim[b], vm->id, gpa, &page);

	if (rc != 0)
		fail_msg("vdemux_sim_translate(vm %u, gpa %#llx): %d", vm->id, (unsigned long long)gpa,
			 rc);
	return page;
}

uint32_t vt_page_at(struct vt_fx *fx, const struct vt_vm *vm, uint64_t gpa)
{
	uint32_t page = vt_translate(fx, vm->be_idx[0], vm, gpa);

	for (unsigned i = 1; i < vm->nbe; i++)
		assert_int_equal(vt_translate(fx, vm->be_idx[i], vm, gpa), page);
	return page;
}

uint64_t vt_efd_read(int fd)
{
	uint64_t v = 0;
	ssize_t r;

	r = read(fd, &v, sizeof(v));
	if (r < 0) {
		assert_int_equal(errno, EAGAIN);
		return 0;
	}
	assert_int_equal(r, sizeof(v));
	return v;
}

bool vt_all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

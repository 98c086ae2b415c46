/* SPDX-License-Identifier: MIT */
/*
 * Backend failures part-way: a wrapper fails the Nth map/unmap/remap call,
 * or the Nth entry inside the batches, for every N across a scenario of
 * posts, releases, flips, remaps and a removal, with one backend and with
 * two stacked ones. After every call: no page lost or duplicated
 * (vt_check: the engine's check and an independent walk of every table),
 * and the returned count honest (exactly the elements reported as done
 * changed, the frames reported taken are each delivered whole or counted
 * as dropped).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vt.h"

struct cfg {
	const char *name;
	unsigned nbe;
	unsigned which; /* backend that fails */
	unsigned ops;
	enum vt_fault_mode mode;
	int err;
	bool sticky;
	bool no_remap;
};

#define NVM 3

struct run {
	const struct cfg *cfg;
	struct vt_fx *fx;
	struct vt_vm *vm[NVM];
	bool eager[NVM];
	uint64_t filled[NVM][32];
	unsigned nfilled[NVM];
	/* frames of the last burst, by VM */
	uint32_t sent[NVM][16];
	unsigned nsent[NVM];
};

static uint64_t drops_sum(const struct vdemux_engine_stats *s)
{
	uint64_t n = 0;

	for (int i = 0; i < VDEMUX_DROP__COUNT; i++)
		n += s->drops[i];
	return n;
}

static uint64_t vm_drops_sum(const struct vdemux_vm_stats *s)
{
	uint64_t n = 0;

	for (int i = 0; i < VDEMUX_DROP__COUNT; i++)
		n += s->drops[i];
	return n;
}

/* Post (or release) @n GPAs and check that the count returned is the truth. */
static void honest_post_or_release(struct run *r, int v, const uint64_t *g, unsigned n, bool release)
{
	struct vt_fx *fx = r->fx;
	struct vt_vm *vm = r->vm[v];
	uint32_t before[32];
	struct vdemux_vm_stats v0 = vt_vm_stats(fx, vm), v1;
	struct vdemux_engine_stats e0 = vt_stats(fx), e1;
	int rc;

	assert_true(n <= 32);
	for (unsigned k = 0; k < n; k++)
		before[k] = vt_page_at(fx, vm, g[k]);
	rc = release ? vdemux_vm_release(fx->eng, vm->id, g, n)
		     : vdemux_vm_post_rx(fx->eng, vm->id, g, n);
	vt_check(fx);
	v1 = vt_vm_stats(fx, vm);
	e1 = vt_stats(fx);
	if (rc < 0) {
		/* only the backend's errno, when the very first element failed */
		assert_int_equal(rc, r->cfg->err);
		assert_true(e1.backend_errors > e0.backend_errors);
		assert_int_equal(v1.posted, v0.posted);
		for (unsigned k = 0; k < n; k++)
			assert_int_equal(vt_page_at(fx, vm, g[k]), before[k]);
		return;
	}
	assert_true(rc >= 1 && rc <= (int)n);
	if (rc < (int)n)
		assert_true(e1.backend_errors > e0.backend_errors);
	assert_int_equal(v1.posted, v0.posted + (release ? 0 : (uint64_t)rc));
	for (unsigned k = 0; k < n; k++) {
		uint32_t now = vt_page_at(fx, vm, g[k]);

		if (k < (unsigned)rc) {
			if (release || r->eager[v])
				assert_int_equal(now, VDEMUX_NO_PAGE);
			else
				assert_int_equal(now, before[k]); /* lazy: harvested later */
		} else {
			assert_int_equal(now, before[k]); /* left as it was */
		}
	}
}

static void repost_filled(struct run *r, int v, bool release)
{
	if (!r->nfilled[v])
		return;
	honest_post_or_release(r, v, r->filled[v], r->nfilled[v], release);
	r->nfilled[v] = 0;
}

static void add(struct run *r, struct vt_burst *b, unsigned *ndest, int v, uint32_t len)
{
	unsigned i;

	if (v < 0) {
		i = vt_burst_add(r->fx, b, 0, len);
		for (int k = 0; k < NVM; k++) {
			if (r->vm[k]->removed)
				continue;
			r->sent[k][r->nsent[k]++] = b->seq[i];
			*ndest += 1;
		}
		return;
	}
	i = vt_burst_add(r->fx, b, r->vm[v]->id, len);
	r->sent[v][r->nsent[v]++] = b->seq[i];
	*ndest += 1;
}

/* Run a burst; every frame taken is delivered or counted dropped, per VM. */
static void honest_burst(struct run *r, struct vt_burst *b, unsigned ndest)
{
	struct vt_fx *fx = r->fx;
	struct vdemux_engine_stats e0 = vt_stats(fx), e1;
	struct vdemux_vm_stats v0[NVM], v1;
	int rc;

	for (int v = 0; v < NVM; v++)
		if (!r->vm[v]->removed)
			v0[v] = vt_vm_stats(fx, r->vm[v]);
	rc = vdemux_rx_burst(fx->eng, b->f, b->n);
	vt_check(fx);
	assert_int_equal(rc, (int)b->n); /* the pool is large enough for all */
	e1 = vt_stats(fx);
	assert_int_equal(e1.rx_frames - e0.rx_frames, b->n);
	assert_int_equal((e1.delivered - e0.delivered) + (drops_sum(&e1) - drops_sum(&e0)), ndest);

	/* each guest finds exactly what its counters say, whole and in order */
	for (int v = 0; v < NVM; v++) {
		struct vt_rx rx[16];
		unsigned got, at = 0;

		if (r->vm[v]->removed)
			continue;
		v1 = vt_vm_stats(fx, r->vm[v]);
		got = vt_guest_take(fx, r->vm[v], rx, 16);
		assert_int_equal(got, v1.delivered - v0[v].delivered);
		assert_int_equal(got + vm_drops_sum(&v1) - vm_drops_sum(&v0[v]), r->nsent[v]);
		for (unsigned i = 0; i < got; i++) {
			while (at < r->nsent[v] && r->sent[v][at] != rx[i].seq)
				at++;
			if (at == r->nsent[v])
				fail_msg("vm %d: frame seq %u not sent to it, or out of order", v,
					 rx[i].seq);
			at++;
			for (unsigned k = 0; k < rx[i].ncpl; k++)
				r->filled[v][r->nfilled[v]++] = rx[i].gpa[k];
		}
		r->nsent[v] = 0;
		vt_check(fx);
	}
	vt_burst_free(b);
}

static struct vt_fx *world(struct run *r)
{
	const struct cfg *c = r->cfg;
	struct vt_fx_opts fo = {.nbe = c->nbe, .fault = true, .no_remap = c->no_remap};
	struct vdemux_vm_opts o;

	/* The simulator's threshold, named: 1500-byte frames are remapped into
	 * the lazy VM's buffers, 100-byte ones copied (the default policy,
	 * adaptive, would copy every frame from the caller's memory). */
	fo.eng = VDEMUX_OPTS(vdemux_engine_opts, .npages = 64, .copy = VDEMUX_COPY_THRESHOLD,
			     .copy_threshold = 256);
	r->fx = vt_fx_new(&fo);
	o = vt_vm_opts(r->fx, 8);
	o.harvest = VDEMUX_HARVEST_EAGER;
	r->vm[0] = vt_vm_add(r->fx, &o);
	r->eager[0] = true;
	o = vt_vm_opts(r->fx, 8);
	o.harvest = VDEMUX_HARVEST_LAZY;
	r->vm[1] = vt_vm_add(r->fx, &o);
	r->eager[1] = false;
	o = vt_vm_opts(r->fx, 8);
	o.harvest = VDEMUX_HARVEST_EAGER;
	o.flags = VDEMUX_VM_F_UNPOPULATED;
	r->vm[2] = vt_vm_add(r->fx, &o);
	r->eager[2] = true;
	vt_check(r->fx);
	return r->fx;
}

static void range(const struct vt_vm *vm, uint32_t first, uint32_t n, uint64_t *g)
{
	for (uint32_t i = 0; i < n; i++)
		g[i] = vt_gpa(vm, first + i);
}

/* The scenario; returns how many failures were injected. */
static unsigned scenario(const struct cfg *c, unsigned nth)
{
	struct run r;
	struct vt_burst b = {0};
	unsigned ndest = 0, fired;
	uint64_t g[8];
	struct vt_fault *f;

	memset(&r, 0, sizeof(r));
	r.cfg = c;
	world(&r);
	f = r.fx->fault[c->which];
	vt_fault_arm(f, c->ops, c->mode, nth, c->err, c->sticky);

	/* posts: eager (unmaps), lazy (nothing yet), holes */
	range(r.vm[0], 0, 6, g);
	honest_post_or_release(&r, 0, g, 6, false);
	range(r.vm[1], 0, 6, g);
	honest_post_or_release(&r, 1, g, 6, false);
	range(r.vm[2], 0, 8, g);
	honest_post_or_release(&r, 2, g, 8, false);

	/* flips into holes, remaps over mapped buffers, a copy, a jumbo, a broadcast */
	for (int i = 0; i < 3; i++)
		add(&r, &b, &ndest, 0, 1500);
	for (int i = 0; i < 3; i++)
		add(&r, &b, &ndest, 1, 1500);
	add(&r, &b, &ndest, 1, 100);
	add(&r, &b, &ndest, 2, 9000);
	add(&r, &b, &ndest, 2, 2000);
	add(&r, &b, &ndest, -1, 600);
	honest_burst(&r, &b, ndest);

	/* releases: re-post (eager unmaps), release, re-post */
	repost_filled(&r, 0, false);
	repost_filled(&r, 1, true);
	repost_filled(&r, 2, false);

	/* again, onto what the releases left */
	ndest = 0;
	for (int v = 0; v < NVM; v++) {
		add(&r, &b, &ndest, v, 3000);
		add(&r, &b, &ndest, v, 3000);
	}
	honest_burst(&r, &b, ndest);

	/* removal of a VM that holds flipped pages */
	vt_vm_remove(r.fx, r.vm[2]);
	vt_check(r.fx);

	fired = f->fired;
	vt_fault_disarm(f);

	/* afterwards everything works: post every slot, receive, read */
	for (int v = 0; v < 2; v++) {
		for (uint32_t i = 0; i < r.vm[v]->rx_pages; i++) {
			uint64_t one = vt_gpa(r.vm[v], i);
			int rc = vdemux_vm_post_rx(r.fx->eng, r.vm[v]->id, &one, 1);

			assert_true(rc == 1 || rc == -EALREADY);
		}
		vt_check(r.fx);
	}
	ndest = 0;
	r.nfilled[0] = r.nfilled[1] = 0;
	for (int v = 0; v < 2; v++) {
		add(&r, &b, &ndest, v, 700);
		add(&r, &b, &ndest, v, 5000);
	}
	{
		struct vdemux_engine_stats e0 = vt_stats(r.fx);

		honest_burst(&r, &b, ndest);
		assert_int_equal(vt_stats(r.fx).delivered - e0.delivered, 4);
	}
	vt_fx_free(r.fx);
	return fired;
}

static void sweep(const struct cfg *c)
{
	unsigned nth, fired_runs = 0;

	for (nth = 1; nth < 400; nth++) {
		unsigned fired = scenario(c, nth);

		if (fired == 0)
			break;
		fired_runs++;
	}
	assert_true(nth < 400);
	/* the sweep did reach the operations it is about */
	if (fired_runs == 0)
		fail_msg("%s: no failure was ever injected", c->name);
	print_message("%s: failure injected at each of %u points\n", c->name, fired_runs);
}

#define SWEEP(fn, ...)                                          \
	static void fn(void **state)                            \
	{                                                       \
		static const struct cfg c = {#fn, __VA_ARGS__}; \
		(void)state;                                    \
		sweep(&c);                                      \
	}

/* one backend */
SWEEP(test_nth_map_call_fails_one_backend, 1, 0, VT_OP_MAP, VT_FAULT_CALL, -EIO, false, false)
SWEEP(test_nth_unmap_call_fails_one_backend, 1, 0, VT_OP_UNMAP, VT_FAULT_CALL, -EIO, false, false)
SWEEP(test_nth_remap_call_fails_one_backend, 1, 0, VT_OP_REMAP, VT_FAULT_CALL, -EIO, false, false)
SWEEP(test_nth_entry_fails_one_backend, 1, 0, VT_OP_ALL, VT_FAULT_ENTRY, -EIO, false, false)
SWEEP(test_nth_entry_fails_one_backend_without_remap, 1, 0, VT_OP_ALL, VT_FAULT_ENTRY, -ENOMEM, false,
      true)
SWEEP(test_every_call_from_the_nth_fails_one_backend, 1, 0, VT_OP_ALL, VT_FAULT_CALL, -EIO, true, false)
SWEEP(test_every_entry_from_the_nth_fails_one_backend, 1, 0, VT_OP_ALL, VT_FAULT_ENTRY, -EFAULT, true,
      false)
/* two stacked backends: the first or the second fails */
SWEEP(test_nth_call_fails_first_of_two_backends, 2, 0, VT_OP_ALL, VT_FAULT_CALL, -EIO, false, false)
SWEEP(test_nth_call_fails_second_of_two_backends, 2, 1, VT_OP_ALL, VT_FAULT_CALL, -EIO, false, false)
SWEEP(test_nth_entry_fails_first_of_two_backends, 2, 0, VT_OP_ALL, VT_FAULT_ENTRY, -EIO, false, false)
SWEEP(test_nth_entry_fails_second_of_two_backends, 2, 1, VT_OP_ALL, VT_FAULT_ENTRY, -EIO, false, false)
SWEEP(test_nth_entry_fails_second_of_two_without_remap, 2, 1, VT_OP_ALL, VT_FAULT_ENTRY, -EIO, false,
      true)
SWEEP(test_every_entry_from_the_nth_fails_second_of_two, 2, 1, VT_OP_ALL, VT_FAULT_ENTRY, -EIO, true,
      false)

/* ---- vm_add under failures: nothing changes ---- */

static void vm_add_sweep(unsigned nbe, unsigned which, unsigned ops, enum vt_fault_mode mode)
{
	for (unsigned nth = 1; nth < 64; nth++) {
		struct vt_fx_opts fo = {.nbe = nbe, .fault = true};
		struct vt_fx *fx;
		struct vdemux_vm_opts o;
		struct vt_snap *before;
		vdemux_vm_id id = 0;
		int rc;
		bool fired;

		fo.eng = VDEMUX_OPTS(vdemux_engine_opts, .npages = 32);
		fx = vt_fx_new(&fo);
		o = vt_vm_opts(fx, 8);
		before = vt_snap_take(fx);
		vt_fault_arm(fx->fault[which], ops, mode, nth, -EIO, false);
		rc = vdemux_vm_add(fx->eng, &id, &o);
		fired = fx->fault[which]->fired > 0;
		vt_fault_disarm(fx->fault[which]);
		if (!fired) {
			assert_int_equal(rc, 0);
			vt_fx_free(fx);
			free(before);
			assert_true(nth > 1);
			return;
		}
		assert_int_equal(rc, -EIO);
		assert_int_equal(id, 0);
		for (unsigned b = 0; b < nbe; b++)
			assert_int_equal(fx->fault[b]->attached, 0);
		/* nothing changed but the failure's count */
		{
			struct vt_snap *now = vt_snap_take(fx);

			assert_int_equal(now->es.pages_free, before->es.pages_free);
			assert_int_equal(now->es.pages_assigned, 0);
			assert_true(now->es.backend_errors > before->es.backend_errors);
			free(now);
		}
		vt_check(fx);
		/* and the same VM can be added afterwards */
		vt_vm_add(fx, &o);
		vt_check(fx);
		free(before);
		vt_fx_free(fx);
	}
	fail_msg("vm_add kept failing");
}

static void test_vm_add_populate_map_failure_changes_nothing(void **state)
{
	(void)state;
	vm_add_sweep(1, 0, VT_OP_MAP, VT_FAULT_ENTRY);
	vm_add_sweep(2, 0, VT_OP_MAP, VT_FAULT_ENTRY);
	vm_add_sweep(2, 1, VT_OP_MAP, VT_FAULT_ENTRY);
	vm_add_sweep(2, 1, VT_OP_MAP, VT_FAULT_CALL);
}

static void test_vm_add_attach_failure_changes_nothing(void **state)
{
	struct vt_fx_opts fo = {.nbe = 2, .fault = true};
	struct vt_fx *fx;
	struct vdemux_vm_opts o;
	vdemux_vm_id id = 0;

	(void)state;
	fo.eng = VDEMUX_OPTS(vdemux_engine_opts, .npages = 32);
	fx = vt_fx_new(&fo);
	o = vt_vm_opts(fx, 4);
	fx->fault[1]->attach_err = -ENODEV;
	assert_int_equal(vdemux_vm_add(fx->eng, &id, &o), -ENODEV);
	assert_int_equal(id, 0);
	assert_int_equal(fx->fault[0]->attached, 0); /* the first attach was undone */
	assert_int_equal(vt_stats(fx).pages_free, 32);
	vt_check(fx);
	fx->fault[1]->attach_err = 0;
	vt_vm_add(fx, &o);
	vt_check(fx);
	vt_fx_free(fx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nth_map_call_fails_one_backend),
		cmocka_unit_test(test_nth_unmap_call_fails_one_backend),
		cmocka_unit_test(test_nth_remap_call_fails_one_backend),
		cmocka_unit_test(test_nth_entry_fails_one_backend),
		cmocka_unit_test(test_nth_entry_fails_one_backend_without_remap),
		cmocka_unit_test(test_every_call_from_the_nth_fails_one_backend),
		cmocka_unit_test(test_every_entry_from_the_nth_fails_one_backend),
		cmocka_unit_test(test_nth_call_fails_first_of_two_backends),
		cmocka_unit_test(test_nth_call_fails_second_of_two_backends),
		cmocka_unit_test(test_nth_entry_fails_first_of_two_backends),
		cmocka_unit_test(test_nth_entry_fails_second_of_two_backends),
		cmocka_unit_test(test_nth_entry_fails_second_of_two_without_remap),
		cmocka_unit_test(test_every_entry_from_the_nth_fails_second_of_two),
		cmocka_unit_test(test_vm_add_populate_map_failure_changes_nothing),
		cmocka_unit_test(test_vm_add_attach_failure_changes_nothing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

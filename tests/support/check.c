/* SPDX-License-Identifier: MIT */
/*
 * Invariant checks that do not rely on the engine's own, and snapshots of
 * the whole observable state to prove that a rejected call changed nothing.
 */
#include <stdlib.h>
#include <string.h>

#include "vt.h"

#define VT_FAIL_AT(file, line, ...)                 \
	do {                                        \
		print_error("%s:%d: ", file, line); \
		print_error(__VA_ARGS__);           \
		print_error("\n");                  \
		_fail(file, line);                  \
	} while (0)

void vt_check_at(struct vt_fx *fx, const char *file, int line)
{
	char msg[512] = "";
	struct vdemux_engine_stats s = vt_stats(fx);
	uint8_t *owner;
	uint64_t mapped = 0;
	int rc;

	rc = vdemux_engine_check(fx->eng, msg, sizeof(msg));
	if (rc != 0)
		VT_FAIL_AT(file, line, "vdemux_engine_check: %d: %s", rc, msg);
	if (s.pages_free + s.pages_filling + s.pages_assigned + s.pages_quarantined != s.pages_total)
		VT_FAIL_AT(
			file, line,
			"pages not conserved: free %llu + filling %llu + assigned %llu + quarantined %llu != %llu",
			(unsigned long long)s.pages_free, (unsigned long long)s.pages_filling,
			(unsigned long long)s.pages_assigned, (unsigned long long)s.pages_quarantined,
			(unsigned long long)s.pages_total);
	if (s.pages_total != fx->npages)
		VT_FAIL_AT(file, line, "pages_total %llu, the engine was given %u",
			   (unsigned long long)s.pages_total, fx->npages);

	owner = calloc(fx->npages ? fx->npages : 1, 1);
	assert_non_null(owner);
	for (unsigned v = 0; v < fx->nvms; v++) {
		struct vt_vm *vm = &fx->vms[v];
		struct vdemux_vm_stats vs;

		if (vm->removed)
			continue;
		for (uint32_t i = 0; i < vm->rx_pages; i++) {
			uint64_t gpa = vt_gpa(vm, i);
			uint32_t p = vt_translate(fx, vm->be_idx[0], vm, gpa);

			for (unsigned b = 1; b < vm->nbe; b++) {
				uint32_t q = vt_translate(fx, vm->be_idx[b], vm, gpa);

				if (q != p)
					VT_FAIL_AT(
						file, line,
						"vm %u gpa %#llx: backend %u maps page %u, backend %u page %u",
						vm->id, (unsigned long long)gpa, vm->be_idx[0], p,
						vm->be_idx[b], q);
			}
			if (p == VDEMUX_NO_PAGE)
				continue;
			if (p < fx->first_page || p - fx->first_page >= fx->npages)
				VT_FAIL_AT(file, line,
					   "vm %u gpa %#llx maps page %u, outside the engine's pages",
					   vm->id, (unsigned long long)gpa, p);
			if (owner[p - fx->first_page])
				VT_FAIL_AT(file, line,
					   "page %u is mapped twice (again at vm %u gpa %#llx)", p,
					   vm->id, (unsigned long long)gpa);
			owner[p - fx->first_page] = 1;
			mapped++;
		}
		vs = vt_vm_stats(fx, vm);
		if (vs.held > vm->quota)
			VT_FAIL_AT(file, line, "vm %u holds %llu pages, quota %u", vm->id,
				   (unsigned long long)vs.held, vm->quota);
	}
	free(owner);
	if (mapped != s.pages_assigned)
		VT_FAIL_AT(file, line,
			   "%llu pages mapped in the VMs' tables, the engine counts %llu assigned",
			   (unsigned long long)mapped, (unsigned long long)s.pages_assigned);
}

struct vt_snap *vt_snap_take(struct vt_fx *fx)
{
	struct vt_snap *s = calloc(1, sizeof(*s));

	assert_non_null(s);
	s->es = vt_stats(fx);
	for (unsigned b = 0; b < fx->nbe; b++)
		assert_int_equal(vdemux_sim_stats(fx->sim[b], &s->ss[b], sizeof(s->ss[b])), 0);
	for (unsigned v = 0; v < fx->nvms; v++) {
		struct vt_vm *vm = &fx->vms[v];

		if (vm->removed)
			continue;
		assert_true(vm->rx_pages <= VT_SNAP_SLOTS);
		s->vs[v] = vt_vm_stats(fx, vm);
		for (unsigned i = 0; i < vm->nbe; i++)
			for (uint32_t k = 0; k < vm->rx_pages; k++)
				s->map[v][i][k] = vt_translate(fx, vm->be_idx[i], vm, vt_gpa(vm, k));
	}
	return s;
}

/* Name of 64-bit word @i of struct vdemux_engine_stats, for messages. */
static const char *es_word_name(int i)
{
	static const char *const names[] = {
		"pages_total",	    "pages_free",     "pages_filling",	   "pages_assigned",
		"rx_frames",	    "rx_bytes",	      "delivered",	   "flips",
		"copies",	    "harvests",	      "completions",	   "signals",
		"release_requests", "backend_errors", "rollback_failures",
	};
	int first_drop = (int)(offsetof(struct vdemux_engine_stats, drops) / sizeof(uint64_t));
	int first_bad = (int)(offsetof(struct vdemux_engine_stats, bad_input) / sizeof(uint64_t));
	int first_ofl = (int)(offsetof(struct vdemux_engine_stats, offload_bad) / sizeof(uint64_t));

	if (i < (int)(sizeof(names) / sizeof(names[0])) && i < first_drop)
		return names[i];
	if (i >= first_drop && i < first_bad)
		return vdemux_drop_reason_name(i - first_drop);
	if (i >= first_bad && i < first_bad + VDEMUX_BAD__COUNT)
		return vdemux_bad_input_name(i - first_bad);
	if (i >= first_ofl)
		return vdemux_offload_bad_name(i - first_ofl);
	return "?";
}

static int first_diff(const uint64_t *a, const uint64_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (a[i] != b[i])
			return (int)i;
	return -1;
}

void vt_snap_expect_same_at(struct vt_fx *fx, const struct vt_snap *before, int bad, const char *file,
			    int line)
{
	struct vt_snap *now = vt_snap_take(fx);
	int d;

	if (bad == VT_BAD_ANY) {
		int which = -1;

		for (int k = 0; k < VDEMUX_BAD__COUNT; k++) {
			if (now->es.bad_input[k] == before->es.bad_input[k])
				continue;
			if (which >= 0 || now->es.bad_input[k] != before->es.bad_input[k] + 1)
				VT_FAIL_AT(file, line, "more than one bad_input counter changed (%s, %s)",
					   vdemux_bad_input_name(which), vdemux_bad_input_name(k));
			which = k;
		}
		if (which < 0)
			VT_FAIL_AT(file, line,
				   "the rejected call was not counted in any bad_input counter");
		now->es.bad_input[which] = before->es.bad_input[which];
	} else if (bad >= 0) {
		assert_true(bad < VDEMUX_BAD__COUNT);
		if (now->es.bad_input[bad] != before->es.bad_input[bad] + 1)
			VT_FAIL_AT(file, line, "bad_input[%s] went from %llu to %llu, expected +1",
				   vdemux_bad_input_name(bad),
				   (unsigned long long)before->es.bad_input[bad],
				   (unsigned long long)now->es.bad_input[bad]);
		now->es.bad_input[bad] = before->es.bad_input[bad];
	}
	d = first_diff((const uint64_t *)&before->es, (const uint64_t *)&now->es,
		       sizeof(now->es) / sizeof(uint64_t));
	if (d >= 0)
		VT_FAIL_AT(file, line, "engine stats word %d (%s) changed: %llu -> %llu", d,
			   es_word_name(d), (unsigned long long)((const uint64_t *)&before->es)[d],
			   (unsigned long long)((const uint64_t *)&now->es)[d]);
	for (unsigned v = 0; v < fx->nvms; v++) {
		if (fx->vms[v].removed)
			continue;
		d = first_diff((const uint64_t *)&before->vs[v], (const uint64_t *)&now->vs[v],
			       sizeof(now->vs[v]) / sizeof(uint64_t));
		if (d >= 0)
			VT_FAIL_AT(file, line, "vm %u stats word %d changed: %llu -> %llu", fx->vms[v].id,
				   d, (unsigned long long)((const uint64_t *)&before->vs[v])[d],
				   (unsigned long long)((const uint64_t *)&now->vs[v])[d]);
		for (unsigned i = 0; i < fx->vms[v].nbe; i++)
			for (uint32_t k = 0; k < fx->vms[v].rx_pages; k++)
				if (before->map[v][i][k] != now->map[v][i][k])
					VT_FAIL_AT(file, line, "vm %u slot %u: page %u became %u",
						   fx->vms[v].id, k, before->map[v][i][k],
						   now->map[v][i][k]);
	}
	for (unsigned b = 0; b < fx->nbe; b++) {
		const struct vdemux_sim_stats *x = &before->ss[b], *y = &now->ss[b];

		if (x->maps != y->maps || x->unmaps != y->unmaps || x->remaps != y->remaps ||
		    x->batches != y->batches || x->invalidations != y->invalidations)
			VT_FAIL_AT(
				file, line,
				"backend %u was called (maps %llu->%llu unmaps %llu->%llu remaps %llu->%llu)",
				b, (unsigned long long)x->maps, (unsigned long long)y->maps,
				(unsigned long long)x->unmaps, (unsigned long long)y->unmaps,
				(unsigned long long)x->remaps, (unsigned long long)y->remaps);
	}
	free(now);
}

void *vt_count_calloc(size_t n, size_t size, void *payload)
{
	struct vt_counting_alloc *c = payload;
	void *p = calloc(n, size);

	if (p) {
		c->live++;
		c->calls++;
	}
	return p;
}

void vt_count_free(void *p, void *payload)
{
	struct vt_counting_alloc *c = payload;

	assert_non_null(p);
	c->live--;
	free(p);
}

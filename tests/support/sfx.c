/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <vdemux/sim.h>

#include "sfx.h"

void sfx_init(struct sfx *f, const struct sfx_opts *o)
{
	struct vdemux_arena_opts ao = VDEMUX_OPTS(vdemux_arena_opts, .npages = o->npages);

	memset(f, 0, sizeof(*f));
	f->n = o->nshards;
	assert_int_equal(vdemux_arena_create(&f->arena, &ao), 0);
	assert_int_equal(vdemux_group_create(&f->g, &VDEMUX_OPTS(vdemux_group_opts, .arena = f->arena,
								 .nshards = o->nshards,
								 .queue_len = o->queue_len)),
			 0);
	for (unsigned i = 0; i < f->n; i++) {
		struct vdemux_engine_opts eo = VDEMUX_OPTS(
			vdemux_engine_opts, .group = f->g, .shard = i, .harvest = o->harvest,
			.copy = o->copy, .max_vms = o->max_vms, .max_frame = 9018, .wake = o->wake[i]);

		assert_int_equal(vdemux_engine_create(&f->eng[i], &eo), 0);
		assert_int_equal(vdemux_sim_create(&f->sim[i], NULL), 0);
		assert_int_equal(vdemux_engine_add_backend(f->eng[i], f->sim[i]), 0);
	}
}

void sfx_fini(struct sfx *f)
{
	for (unsigned i = 0; i < f->n; i++)
		vdemux_engine_destroy(f->eng[i]);
	assert_int_equal(vdemux_group_destroy(f->g), 0);
	vdemux_arena_destroy(f->arena);
}

void sfx_mac(vdemux_vm_id id, uint8_t mac[6])
{
	mac[0] = 0x02;
	mac[1] = 0x5d;
	mac[2] = (uint8_t)(id >> 24);
	mac[3] = (uint8_t)(id >> 16);
	mac[4] = (uint8_t)(id >> 8);
	mac[5] = (uint8_t)id;
}

vdemux_vm_id sfx_vm_add(struct sfx *f, unsigned shard, uint32_t rx_pages)
{
	vdemux_engine *e = f->eng[shard];
	struct vdemux_backend *bes[1] = {f->sim[shard]};
	struct vdemux_vm_opts vo = VDEMUX_OPTS(vdemux_vm_opts, .rx_base = 0x100000, .rx_pages = rx_pages,
					       .backends = bes, .n_backends = 1);
	vdemux_vm_id id;
	uint64_t gpa[256];
	uint8_t mac[6];

	if (rx_pages > 256 || vdemux_vm_add(e, &id, &vo))
		return 0;
	for (uint32_t i = 0; i < rx_pages; i++)
		gpa[i] = vo.rx_base + (uint64_t)i * VDEMUX_PAGE_SIZE;
	sfx_mac(id, mac);
	if (vdemux_vm_post_rx(e, id, gpa, rx_pages) != (int)rx_pages ||
	    vdemux_l2_vlan_join(vdemux_group_l2(f->g), id, 1, 0) ||
	    vdemux_l2_add_mac(vdemux_group_l2(f->g), id, mac, 1)) {
		vdemux_vm_remove(e, id);
		return 0;
	}
	return id;
}

void sfx_frame(uint8_t *buf, uint32_t len, const uint8_t dst[6], uint32_t seq)
{
	static const uint8_t src[6] = {0x02, 0x5d, 0, 0, 0, 0xfe};

	memcpy(buf, dst, 6);
	memcpy(buf + 6, src, 6);
	buf[12] = 0x88;
	buf[13] = 0xb5;
	memcpy(buf + 14, &seq, 4);
	memcpy(buf + 18, &len, 4);
	for (uint32_t i = 22; i < len; i++)
		buf[i] = (uint8_t)(seq * 7u + i);
}

bool sfx_frame_ok(const uint8_t *buf, uint32_t len)
{
	uint32_t seq, flen;

	if (len < 22)
		return false;
	memcpy(&seq, buf + 14, 4);
	memcpy(&flen, buf + 18, 4);
	if (flen != len)
		return false;
	for (uint32_t i = 22; i < len; i++)
		if (buf[i] != (uint8_t)(seq * 7u + i))
			return false;
	return true;
}

void sfx_check(struct sfx *f)
{
	char msg[256];
	int rc = vdemux_group_check(f->g, msg, sizeof(msg));

	if (rc)
		fail_msg("group check: %d %s", rc, msg);
}

int sfx_drain(struct sfx *f, unsigned shard, vdemux_vm_id vm, unsigned *bad)
{
	struct vdemux_completion c[64];
	static _Thread_local uint8_t buf[VDEMUX_PAGE_SIZE];
	int n = vdemux_vm_poll(f->eng[shard], vm, c, 64);

	for (int i = 0; i < n; i++) {
		uint64_t gpa = c[i].gpa;
		int rc;

		if (c[i].len > sizeof(buf) || (c[i].flags & VDEMUX_CPL_MORE) ||
		    vdemux_sim_read(f->sim[shard], vm, gpa, buf, c[i].len) ||
		    !sfx_frame_ok(buf, c[i].len))
			(*bad)++;
		rc = vdemux_vm_post_rx(f->eng[shard], vm, &gpa, 1);
		if (rc != 1)
			return rc < 0 ? rc : -EIO;
	}
	return n;
}

void sfx_expect_drained(struct sfx *f, unsigned shard, vdemux_vm_id vm, int n)
{
	unsigned bad = 0;

	assert_int_equal(sfx_drain(f, shard, vm, &bad), n);
	assert_int_equal(bad, 0);
}

int sfx_setup(void **state)
{
	const struct sfx_case *c = *state;
	struct sfx_fixture *t = calloc(1, sizeof(*t));

	assert_non_null(t);
	sfx_init(&t->f, &c->o);
	for (unsigned i = 0; i < c->o.nshards; i++) {
		if (!c->slots[i])
			continue;
		t->vm[i] = sfx_vm_add(&t->f, i, c->slots[i]);
		assert_int_not_equal(t->vm[i], 0);
	}
	*state = t;
	return 0;
}

int sfx_teardown(void **state)
{
	struct sfx_fixture *t = *state;

	sfx_fini(&t->f);
	free(t);
	return 0;
}

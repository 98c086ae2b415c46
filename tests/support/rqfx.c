/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>

#include <cmocka.h>

#include "rqfx.h"

void rqfx_init(struct rqfx *x, const struct rqfx_opts *o)
{
	uint32_t pool = o->pool_pages ? o->pool_pages : 256;
	struct vdemux_arena_opts ao = VDEMUX_OPTS(vdemux_arena_opts, .npages = o->ram_pages + pool,
						  .kind = VDEMUX_ARENA_MEMFD);

	memset(x, 0, sizeof(*x));
	x->ram_size = (uint64_t)o->ram_pages * VDEMUX_PAGE_SIZE;
	assert_int_equal(vdemux_arena_create(&x->arena, &ao), 0);
	struct vdemux_engine_opts eo = VDEMUX_OPTS(vdemux_engine_opts, .arena = x->arena,
						   .max_frame = o->max_frame);
	assert_int_equal(vdemux_engine_create(&x->eng, &eo), 0);
	x->ram = mmap(NULL, x->ram_size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(x->ram != MAP_FAILED);
	struct vdemux_kvm_opts ko = VDEMUX_OPTS(vdemux_kvm_opts, .ram_gpa = 0, .ram_size = x->ram_size,
						.ram_hva = x->ram);
	assert_int_equal(vdemux_kvm_create(&x->kvm, &ko), 0);
	assert_int_equal(vdemux_engine_add_backend(x->eng, x->kvm), 0);
}

void rqfx_fini(struct rqfx *x)
{
	vdemux_engine_destroy(x->eng);
	munmap(x->ram, x->ram_size);
	vdemux_arena_destroy(x->arena);
}

struct vdemux_vnet_rxq_opts rqfx_rxq_opts(struct rqfx *x)
{
	return VDEMUX_OPTS(vdemux_vnet_rxq_opts, .ram = x->ram, .ram_size = x->ram_size,
			   .backends = &x->kvm, .n_backends = 1);
}

vdemux_vnet_rxq *rqfx_rxq_add(struct rqfx *x, const struct vdemux_vnet_rxq_opts *qo, const uint8_t mac[6])
{
	vdemux_vnet_rxq *q = NULL;
	vdemux_l2 *l2 = vdemux_engine_l2(x->eng);

	assert_int_equal(vdemux_vnet_rxq_create(&q, x->eng, qo), 0);
	assert_int_equal(vdemux_l2_vlan_join(l2, vdemux_vnet_rxq_vm(q), 1, 0), 0);
	assert_int_equal(vdemux_l2_add_mac(l2, vdemux_vnet_rxq_vm(q), mac, 1), 0);
	return q;
}

static uint8_t *rqfx_at(void *payload, uint64_t gpa, uint64_t len)
{
	struct rqfx *x = payload;

	return gpa <= x->ram_size && len <= x->ram_size - gpa ? x->ram + gpa : NULL;
}

struct vng_mem rqfx_mem(struct rqfx *x)
{
	return (struct vng_mem){.at = rqfx_at, .payload = x};
}

void rqfx_start_on(vdemux_vnet_rxq *q, struct vng *g, const struct vng_mem *m, const struct vng_opts *vo)
{
	struct vdemux_vnet_ring ring;

	assert_int_equal(vng_init(g, m, vo), 0);
	ring = vng_vnet_ring(g);
	assert_int_equal(vdemux_vnet_rxq_start(q, &ring), 0);
	vng_refill(g);
	assert_true(vdemux_vnet_rxq_kick(q) > 0);
}

void rqfx_driver_start(struct rqfx *x, vdemux_vnet_rxq *q, struct vng *g, const struct vng_opts *vo)
{
	struct vng_mem m = rqfx_mem(x);

	rqfx_start_on(q, g, &m, vo);
}

void rqfx_frame(uint8_t *f, uint32_t len, const uint8_t dst[6], unsigned k)
{
	for (uint32_t j = 0; j < len; j++)
		f[j] = (uint8_t)(k + j);
	memcpy(f, dst, 6);
	memcpy(f + 6, (uint8_t[6]){0x02, 0, 0, 0, 9, 9}, 6);
	f[12] = 0x08;
	f[13] = 0x00;
}

void rqfx_expect_frame(struct vng *g, const uint8_t dst[6], unsigned k, uint32_t len)
{
	static uint8_t want[9000], got[9000];
	struct vng_hdr h;

	assert_true(len <= sizeof(want));
	rqfx_frame(want, len, dst, k);
	assert_int_equal(vng_recv(g, &h, got, sizeof(got)), (int)len);
	assert_memory_equal(got, want, len);
}

/* SPDX-License-Identifier: MIT */
/*
 * One guest's receive queues over KVM memslots, for the tests of
 * virtio_net.h: an arena, an engine, the guest's RAM (an anonymous
 * reservation the backend maps pages into) and the KVM backend of that
 * RAM; queues whose VM joins VLAN 1 with a MAC; a simulated Linux driver
 * (vnet_guest.h) on each, its rings and buffers in that RAM.
 *
 * Every function here asserts with CMocka, so it may only be called from a
 * test.
 */
#ifndef VT_RQFX_H
#define VT_RQFX_H

#include <stdint.h>

#include <vdemux/vdemux.h>

#include "vnet_guest.h"

struct rqfx_opts {
	uint32_t ram_pages;  /* the guest's RAM */
	uint32_t pool_pages; /* the arena's pages beyond the RAM's; 0: 256 */
	uint32_t max_frame;  /* the engine's; 0: its default */
};

struct rqfx {
	vdemux_arena *arena;
	vdemux_engine *eng;
	struct vdemux_backend *kvm;
	uint8_t *ram;
	uint64_t ram_size;
};

/* Build arena, engine, RAM and backend (asserts success). */
void rqfx_init(struct rqfx *x, const struct rqfx_opts *o);
/* Destroy the engine, the RAM and the arena, after the test destroyed its
 * queues (and checked the engine as it wants to). */
void rqfx_fini(struct rqfx *x);
/* Options of a queue over the whole RAM through the KVM backend. */
struct vdemux_vnet_rxq_opts rqfx_rxq_opts(struct rqfx *x);
/* Create a queue of @qo; its VM joins VLAN 1 untagged with @mac. */
vdemux_vnet_rxq *rqfx_rxq_add(struct rqfx *x, const struct vdemux_vnet_rxq_opts *qo,
			      const uint8_t mac[6]);
/* How the driver reaches the RAM (x must outlive the driver). */
struct vng_mem rqfx_mem(struct rqfx *x);
/* Driver @g for @q as @vo says, in the RAM @m reaches: rings laid out, the
 * queue started on them, buffers posted and kicked (asserts the queue took
 * some). For a queue whose RAM is not a fixture's. */
void rqfx_start_on(vdemux_vnet_rxq *q, struct vng *g, const struct vng_mem *m, const struct vng_opts *vo);
/* The same in the fixture's RAM. */
void rqfx_driver_start(struct rqfx *x, vdemux_vnet_rxq *q, struct vng *g, const struct vng_opts *vo);

/* Frame @k of @len bytes (>= 14) for @dst: byte j is (k + j) & 0xff under
 * the Ethernet header (a fixed source, IPv4's EtherType). */
void rqfx_frame(uint8_t *f, uint32_t len, const uint8_t dst[6], unsigned k);
/* The next frame driver @g reads is frame @k of @len bytes (at most 9000)
 * for @dst. */
void rqfx_expect_frame(struct vng *g, const uint8_t dst[6], unsigned k, uint32_t len);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * A group of shards on the simulated backend, for the tests of shard.h:
 * one arena, one group, one engine and one simulated MMU per shard, VMs
 * that join VLAN 1 with a MAC made from their id, self-checking frames.
 * Thread-safe as far as the library is: each shard's calls on its thread.
 */
#ifndef VT_SFX_H
#define VT_SFX_H

#include <stdbool.h>
#include <stdint.h>

#include <vdemux/shard.h>
#include <vdemux/sys/backend.h>
#include <vdemux/vdemux.h>

#define SFX_MAX_SHARDS 4

struct sfx {
	vdemux_arena *arena;
	vdemux_group *g;
	unsigned n;
	vdemux_engine *eng[SFX_MAX_SHARDS];
	struct vdemux_backend *sim[SFX_MAX_SHARDS];
};

struct sfx_opts {
	unsigned nshards;
	uint32_t npages;    /* the group's pages */
	uint32_t queue_len; /* 0: the default */
	enum vdemux_harvest harvest;
	enum vdemux_copy_policy copy;
	uint32_t max_vms;			   /* per shard; 0: default */
	struct vdemux_signal wake[SFX_MAX_SHARDS]; /* each shard's wake-up */
};

/* Build it (asserts success). */
void sfx_init(struct sfx *f, const struct sfx_opts *o);
/* Destroy shards, group, arena (asserts the group goes). */
void sfx_fini(struct sfx *f);
/* A VM of @rx_pages slots on @shard, every slot posted, its MAC on VLAN 1
 * of the group's classifier. Returns its id, or 0 (no assertion: callable
 * from any thread, on @shard's). */
vdemux_vm_id sfx_vm_add(struct sfx *f, unsigned shard, uint32_t rx_pages);
/* The MAC of VM @id. */
void sfx_mac(vdemux_vm_id id, uint8_t mac[6]);
/* A frame to @dst of @len bytes (>= 22) whose bytes follow from @seq. */
void sfx_frame(uint8_t *buf, uint32_t len, const uint8_t dst[6], uint32_t seq);
/* Whether @buf holds an intact frame of sfx_frame() of @len bytes. */
bool sfx_frame_ok(const uint8_t *buf, uint32_t len);
/* vdemux_group_check() passes (asserts, with its message). */
void sfx_check(struct sfx *f);
/* Take @vm's completions on @shard, check each frame through the
 * simulated MMU and post its buffer again. Returns frames taken or a
 * negative errno; *bad counts frames that were not intact. No assertion:
 * callable from @shard's thread. */
int sfx_drain(struct sfx *f, unsigned shard, vdemux_vm_id vm, unsigned *bad);
/* sfx_drain() takes @n frames, every one intact (asserts). */
void sfx_expect_drained(struct sfx *f, unsigned shard, vdemux_vm_id vm, int n);

/* The group as a CMocka fixture: give sfx_setup a struct sfx_case as the
 * test's initial state (cmocka_unit_test_prestate_setup_teardown); the
 * test then finds a struct sfx_fixture in *state, and sfx_teardown
 * destroys it (sfx_fini, so the group must go). */
struct sfx_case {
	struct sfx_opts o;
	uint32_t slots[SFX_MAX_SHARDS]; /* > 0: a VM of that many slots there */
};

struct sfx_fixture {
	struct sfx f;
	vdemux_vm_id vm[SFX_MAX_SHARDS]; /* the case's VMs, added in shard order */
};

int sfx_setup(void **state);
int sfx_teardown(void **state);

#endif

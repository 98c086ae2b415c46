/* SPDX-License-Identifier: MIT */
/* A VM fed by a device model's queue (virtio-net's receive queue,
 * src/virtio): the narrow interface through which the queue reaches the
 * engine. The queue sets its VM's receive layout, posts its buffers as
 * chains of pages, takes the completions, checks guest memory is backed,
 * and forgets what it posted on stop; everything else of the VM stays the
 * engine's. Owner of: the types the engine and such a queue share. */
#ifndef VDEMUX_CORE_VMQ_H
#define VDEMUX_CORE_VMQ_H

#include <vdemux/vm.h>

#include "common/util.h"

struct vdemux_engine;
struct vm;
struct vd_pool;
struct vd_src;
struct vdemux_dest;

/* The largest window of a VM, in pages (1 TiB; vm.h's VM_MAX_PAGES). */
#define VD_VMQ_MAX_PAGES (1u << 28)

/* The owner of a VM whose buffers are not whole pages (virtio-net's
 * mergeable and small buffers): the engine hands it the frames to copy. */
struct vd_sink {
	/* Copy the frame as d receives it (out_len bytes, see
	 * vd_frame_emit()) into the VM's buffers and complete them. Returns
	 * 0, or the drop reason (nothing taken). */
	int (*copy)(void *ctx, const struct vd_pool *pl, const struct vd_src *src,
		    const struct vdemux_dest *d, uint32_t out_len);
	/* A delivery into the head chain was planned; src->vh is the header
	 * it carries (NULL: no offload). May be NULL. */
	void (*planned)(void *ctx, const struct vd_src *src);
	void *ctx;
};

/* Completion flag of chain VMs: the delivery failed after its buffer was
 * taken (the buffer goes back to the guest empty). Never seen by a VMM. */
#define VD_CPL_DROPPED 0x8000u

/* The VM of id, or NULL (removed). */
struct vm *vd_vmq_get(const struct vdemux_engine *e, vdemux_vm_id id);

/* Whether @a and @b are two different shards of one group (shard.h).
 * Reads only what is fixed when an engine is created: callable from any
 * thread while both exist. */
bool vd_vmq_other_shard(const struct vdemux_engine *a, const struct vdemux_engine *b);

/* The engine's allocation hooks, for the queue's own memory. */
const struct vdemux_alloc_hooks *vd_vmq_alloc(const struct vdemux_engine *e);

/* The VM takes its buffers as chains of pages (a delivery takes the head
 * chain whole), and hands the frames no chain can take to @sink. Set once,
 * after the VM is added. */
void vd_vmq_set_layout(struct vm *vm, const struct vd_sink *sink);

/* The offloads the queue's guest negotiated (offload.h's VDEMUX_OFFLOAD_*
 * bits): what a frame's metadata may leave undone for it. */
void vd_vmq_set_offloads(struct vm *vm, uint32_t offloads);

/* Post a chain of pages (the queue's buffer) whose frame starts @off bytes
 * into its first page, all or nothing. Every chain posted at a time has the
 * same offset: the first one posted to an empty queue sets it. Returns 0;
 * -EINVAL: another offset than the chains waiting, or a chain the VM cannot
 * take (length, harvest policy); the errors of vdemux_vm_post_rx() for its
 * pages (nothing posted). */
int vd_vmq_post_chain(struct vdemux_engine *e, struct vm *vm, const uint64_t *gpas, unsigned n,
		      uint32_t off);

/* Take the VM's next completion (its delivery in chain order); false when
 * there is none. */
bool vd_vmq_complete(struct vm *vm, struct vdemux_completion *out);

/* Stop: every chain posted is unposted (lazy harvest: its pages are the
 * guest's, still mapped) and every completion not taken is dropped. */
void vd_vmq_unpost_all(struct vm *vm);

/* Whether every page of guest RAM under [gpa, gpa + len) is backed by a
 * page of the VM (the queue writes guest memory through the VMM's mapping:
 * a page some table failed to restore would fault there). */
bool vd_vmq_backed(const struct vm *vm, uint64_t gpa, uint64_t len);

/* Whether every page of the VM's window is backed, without looking at them:
 * the VM holds a page in every slot (its held count says so, except while
 * the current plan has entries of this VM: a planned map reserves its page
 * before the slot gets it). True implies vd_vmq_backed() of any range of
 * the window. */
bool vd_vmq_all_backed(const struct vdemux_engine *e, const struct vm *vm);

#endif

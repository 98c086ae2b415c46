/* SPDX-License-Identifier: MIT */
/**
 * @file shard.h
 * @brief Groups of engines driven by several threads: one engine (a shard)
 *        per thread, one classifier and one space of VM ids for them all.
 *
 * A group is a range of arena pages, an L2 classifier and a queue for each
 * ordered pair of its shards. A shard is an ordinary engine created with
 * vdemux_engine_opts::group: it owns its pool (it starts with its share of
 * the group's pages), its VMs and their completion queues, and every call on
 * it is made by one thread at a time, as for any engine; different shards
 * run on different threads at once with no lock between them. Each shard
 * gives its VMs ids no other shard gives, so a verdict names VMs of any
 * shard.
 *
 * A frame received on shard A (vdemux_rx_burst(), vdemux_rx_submit()) and
 * classified for a VM of shard B is copied into pages of A's pool (or, a
 * zero-copy frame no VM of A takes, handed in its own pages) and put into
 * the queue from A to B (bounded, single producer, single consumer),
 * published at the end of A's call. B delivers it when its thread calls
 * vdemux_shard_poll() and gives pages back in the same slot: the frame's
 * own when it copied the frame, as many of its own FREE pages when its VM
 * kept them; A takes them back (clearing what was written) at its next
 * call. Each shard's pool keeps its size: pages move between shards only
 * this way, one for one. A page in a queue is in no shard's books
 * (every shard counts it AWAY) and vdemux_group_check() finds it there.
 *
 * Back-pressure: a queue holds queue_len frames. vdemux_rx_burst() on A
 * stops before a frame whose queue to another shard is full (the frame and
 * those after it stay with the caller; -EAGAIN if it was the first); for a
 * zero-copy frame (vdemux_rx_submit()), already in the pool, the delivery
 * to that VM is dropped and counted in vdemux_engine_stats::handoff_full.
 * B takes a frame only while its pool has pages to give back for it
 * (otherwise the frame waits and B's VMs holding pages are asked to
 * release some).
 *
 * Rules for the VMM:
 * - create the group, then its shards (vdemux_engine_create() with @c group
 *   and @c shard), VMs and backends, before the threads start; destroy the
 *   shards after every thread has stopped, then the group;
 * - each shard's thread calls vdemux_shard_poll() on its shard regularly,
 *   also when its own uplink is idle, and before retrying a burst that
 *   returned short for a full queue: a queue drains only that way; a
 *   thread that waits for events calls vdemux_shard_idle() first and has
 *   its shard's wake-up (vdemux_engine_opts::wake, an eventfd in its
 *   epoll set) among them;
 * - VM calls (add, remove, post, poll) on a VM are made on its shard's
 *   thread, like every call on that engine; "the shard's thread" means
 *   whoever holds the shard: calls need not come from one OS thread, only
 *   one at a time, each ordered after the one before (a lock the shard's
 *   own thread holds for each turn of its loop, which a control thread
 *   takes to make a call between two turns, does it), but for
 *   vdemux_shard_idle() and vdemux_shard_poll(), which the thread that
 *   waits on the shard's wake-up makes itself (a poll disarms the wake-up
 *   that thread's idle armed);
 * - the classifier is configured from any thread through vdemux_group_l2()
 *   (l2.h: a change is never seen half made, and never stops a shard); a
 *   custom classifier set on the shards must allow concurrent
 *   classification (sys/classifier.h);
 * - vdemux_group_check() and vdemux_engine_check() on a shard only while no
 *   thread runs a call on any shard of the group.
 *
 * Threading: vdemux_group_create(), vdemux_group_destroy() and
 * vdemux_group_check() on the control path, with no shard call running;
 * vdemux_group_l2() from any thread.
 */
#ifndef VDEMUX_SHARD_H
#define VDEMUX_SHARD_H

#include <vdemux/arena.h>
#include <vdemux/common.h>
#include <vdemux/engine.h>
#include <vdemux/l2.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Opaque group handle. */
typedef struct vdemux_group vdemux_group;

/** Options for vdemux_group_create(). */
struct vdemux_group_opts {
	size_t sz;	     /**< sizeof(struct vdemux_group_opts) */
	vdemux_arena *arena; /**< the arena (borrowed; it must outlive the group); required */
	uint32_t first_page; /**< first arena page of the group's pages */
	uint32_t npages; /**< pages the shards share; 0: the arena's from first_page on; at least nshards */
	uint32_t nshards; /**< shards, 1 .. 64 */
	uint32_t queue_len; /**< frames each queue between two shards holds: a power of two, 2 .. 65536; 0: 256 */
	const struct vdemux_l2_opts *l2; /**< the group's L2 classifier's options; NULL: defaults */
	struct vdemux_alloc_hooks alloc; /**< control-path allocation hooks */
	const uint32_t *
		shard_pages; /**< NULL: equal shares; else nshards counts, each at least 1, summing to the group's pages: shard i's pages, in order (a shard whose VMs' RAM it backs needs more than one that only passes frames on) */
};

/**
 * Create a group. Shard @c i of @c nshards starts with pages
 * [npages * i / nshards, npages * (i + 1) / nshards) of the group's range,
 * or with @c shard_pages, its @c shard_pages[i] pages after those of the
 * shards before it.
 * Each shard's VM ids are drawn from its own part of the 20-bit index
 * field, so a shard can have at most 2^(20 - ceil(log2(nshards))) - 1 VMs.
 *
 * @param[out] out the group, set on success
 * @param opts     options (required)
 * @return 0; -EINVAL (NULL argument, no arena, nshards 0 or above 64,
 *         queue_len not a power of two in range, pages outside the arena
 *         or fewer than nshards, a share of @c shard_pages 0 or their sum
 *         not the group's pages, bad L2 options, non-zero unknown trailing
 *         option bytes); -ENOMEM. On failure nothing is allocated.
 */
VDEMUX_API int vdemux_group_create(vdemux_group **out, const struct vdemux_group_opts *opts);

/**
 * Destroy a group whose shards were all destroyed. NULL is a no-op (0).
 * @return 0; -EBUSY (a shard still exists: nothing freed).
 */
VDEMUX_API int vdemux_group_destroy(vdemux_group *g);

/** The group's L2 classifier: every shard's built-in classifier. NULL for NULL. */
VDEMUX_API vdemux_l2 *vdemux_group_l2(vdemux_group *g);

/**
 * Deliver the frames other shards handed to this one: each to its VM (by
 * copy or flip, as for a frame of vdemux_rx_submit()), or dropped and
 * counted (UNKNOWN_VM: the VM was removed since). Also takes back the pages
 * returned for frames this shard handed, and publishes what it handed.
 * Completions are queued and each VM signalled once, as an rx call does.
 *
 * @param eng    a shard (an engine created with a group)
 * @param budget the most frames to take in this call, >= 1
 * @return frames taken (0: none waiting, or this shard's pool cannot give
 *         pages back for the next: its VMs holding pages were asked to
 *         release some); -EINVAL (NULL, an engine of no group, budget 0;
 *         counted in bad_input, nothing changed).
 */
VDEMUX_API int vdemux_shard_poll(vdemux_engine *eng, unsigned budget);

/**
 * The shard's thread is about to wait (in epoll or the like, for its
 * uplink, its guests or a wake-up): arm the shard's wake-up
 * (vdemux_engine_opts::wake), then look at its queues once more. When this
 * returns 0, the first other shard to hand this one a frame sends the
 * wake-up (once; the next vdemux_shard_idle() arms it again); when it
 * returns 1, frames are already waiting: call vdemux_shard_poll() rather
 * than wait. vdemux_shard_poll() disarms it. Costs a full memory fence;
 * a sender pays one per call that hands frames, and a read-modify-write
 * only when it wakes a shard.
 *
 * @param eng a shard
 * @return 0 (nothing waiting: wait for the wake-up); 1 (frames waiting);
 *         -EINVAL (NULL, an engine of no group; counted in bad_input,
 *         nothing changed).
 */
VDEMUX_API int vdemux_shard_idle(vdemux_engine *eng);

/**
 * Check a group at a quiescent point: vdemux_engine_check() on every
 * shard, then that every page of the group is held by exactly one shard
 * (in a state other than AWAY) or by exactly one queue (a frame not yet
 * taken, or a page given back not yet taken back), and that each queue
 * published all it did.
 *
 * @param g        the group; every shard must exist
 * @param[out] msg if not NULL, the first violation
 * @param msglen   size of @p msg
 * @return 0 if consistent; -EUCLEAN on a violation (also a missing shard);
 *         -EINVAL (NULL group); -ENOMEM. Changes nothing.
 */
VDEMUX_API int vdemux_group_check(const vdemux_group *g, char *msg, size_t msglen);

#ifdef __cplusplus
}
#endif
#endif

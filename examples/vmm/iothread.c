/* SPDX-License-Identifier: MIT */
/*
 * Lanes: a thread that moves frames and the engine it moves them with.
 *
 * Without --io-threads (or with no guest of several queue pairs) there is
 * one lane: the main thread and one engine, serving every ring.
 *
 * With --io-threads, one lane per queue pair of the guest that has the
 * most, each with an engine of its own: the shards of one group
 * (vdemux/shard.h; docs/architecture.md, "Threading"). Lane 0 is the main
 * thread's (shard 0), lane p > 0 an I/O thread's (shard p). For each guest
 * of N > 1 pairs, pair p's receive queue is on shard p: pair 0's owns guest
 * RAM and, its queues being spread over shards, copies always, as the
 * others do (rule 7); pair p's transmit ring is served by lane p, its
 * frames go into shard p; a guest of one pair stays on lane 0. The TAP is
 * multiqueue, one queue per lane (tap.c), read into that lane's shard:
 * the kernel steers a flow's frames to the queue its last frame out came
 * from, pair p's lane, so a flow stays on one shard. The classifier (each
 * lane's split horizon over the group's L2, switch.c) steers a flow to one
 * pair's receive queue; a frame for a VM of another shard is handed over
 * by the library. Each lane's thread arms its shard's wake-up (an eventfd
 * in its epoll set) with vdemux_shard_idle() before it waits, and polls
 * its shard every turn (rules 3).
 *
 * Who calls an engine. The library wants one caller at a time per shard
 * (rule 2). Each lane has a lock that its own thread holds for a whole
 * turn of its loop (events, rings, the poll) and drops only to wait. The
 * frame path takes no other lane's lock, so no lock is shared between
 * lanes: each thread's lock is uncontended but for the control path,
 * which borrows a lane's engine by taking its lock, between two turns of
 * its thread:
 * - the main thread (with lane 0's lock held for its own turn): the SIGUSR2
 *   counters of another lane's queues take that lane's lock; a guest's
 *   removal takes every lane's (in lane order), which also makes the
 *   engine check a quiescent point (rule 6);
 * - a vCPU thread: a device reset or a receive ring taken away stops the
 *   guest's receive queues before the write returns, under the locks of
 *   the guest's lanes; filling a hole of guest RAM takes lane 0's (the
 *   KVM backend is pair 0's, on shard 0);
 * - the rest of a pair's queue life cycle (start at DRIVER_OK, restart
 *   after a reset) is done by its lane's thread itself, woken through the
 *   queue's notification eventfd.
 * Locks are taken in lane order, then the device's. Creation is before the
 * threads start, the final tear-down after they stopped (rule 1).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "vmm.h"

#define IO_STOP UINT32_MAX
#define IO_WAKE (UINT32_MAX - 1u)
#define IO_TAP (UINT32_MAX - 2u)
#define SHARD_BUDGET 256u /* frames a poll takes */

void lanes_lock(struct vmm *v, unsigned from, unsigned to)
{
	for (unsigned i = from; i < to; i++)
		pthread_mutex_lock(&v->lane[i].lock);
}

void lanes_unlock(struct vmm *v, unsigned from, unsigned to)
{
	for (unsigned i = to; i-- > from;)
		pthread_mutex_unlock(&v->lane[i].lock);
}

/* The lanes one per pair of the guest with most, with --io-threads. */
static unsigned lanes_wanted(const struct vmm *v)
{
	unsigned n = 1;
	for (unsigned i = 0; i < v->nguests && v->io_threads; i++)
		if (v->guests[i].cfg.queues > n)
			n = v->guests[i].cfg.queues;
	return n;
}

/* Shard @i of the group, with its wake-up. */
static int shard_create(struct vmm *v, unsigned i)
{
	struct lane *l = &v->lane[i];
	l->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (l->wake_fd < 0)
		return -errno;
	struct vdemux_engine_opts eo = VDEMUX_OPTS(
		vdemux_engine_opts, .group = v->group, .shard = i, .max_frame = VMM_FRAME_MAX,
		.log = vmm_engine_log, .log_payload = v,
		.wake = {.kind = VDEMUX_SIGNAL_EVENTFD, .fd = l->wake_fd});
	return vdemux_engine_create(&l->eng, &eo);
}

/* One memfd arena; one engine whose pool is all of it, or a group whose
 * shard 0 has that pool (it backs every guest's RAM) and the others
 * POOL_SPARE pages each for the frames they pass on. */
static int engines_create(struct vmm *v, uint32_t pool)
{
	unsigned n = lanes_wanted(v);
	uint32_t shares[VNET_MAX_PAIRS], total = pool + (n - 1) * POOL_SPARE;
	for (unsigned i = 0; i < VNET_MAX_PAIRS; i++)
		shares[i] = i ? POOL_SPARE : pool;
	struct vdemux_arena_opts ao = VDEMUX_OPTS(vdemux_arena_opts, .npages = total,
						  .kind = VDEMUX_ARENA_MEMFD,
						  .flags = VDEMUX_ARENA_F_ALIGN_2M);
	int r = vdemux_arena_create(&v->arena, &ao);
	if (r < 0)
		return r;
	v->nlanes = n;
	if (n == 1) {
		struct vdemux_engine_opts eo = VDEMUX_OPTS(
			vdemux_engine_opts, .arena = v->arena, .first_page = 0, .npages = pool,
			.max_frame = VMM_FRAME_MAX, .log = vmm_engine_log, .log_payload = v);
		return vdemux_engine_create(&v->lane[0].eng, &eo);
	}
	struct vdemux_group_opts go = VDEMUX_OPTS(vdemux_group_opts, .arena = v->arena, .npages = total,
						  .nshards = n, .shard_pages = shares);
	if ((r = vdemux_group_create(&v->group, &go)) < 0)
		return r;
	for (unsigned i = 0; i < n && r == 0; i++)
		r = shard_create(v, i);
	return r;
}

int lanes_setup(struct vmm *v, uint32_t pool)
{
	for (unsigned i = 0; i < VNET_MAX_PAIRS; i++)
		v->lane[i] = (struct lane){.v = v, .idx = i, .wake_fd = -1, .ep = -1, .stop_fd = -1};
	int r = engines_create(v, pool);
	if (r < 0) {
		fprintf(stderr, "vmm: engines: %s\n", strerror(-r));
		return r;
	}
	for (unsigned i = 0; i < v->nlanes; i++) {
		struct lane *l = &v->lane[i];
		pthread_mutex_init(&l->lock, NULL);
		l->tx_buf = malloc((size_t)VNET_TX_BURST * VNET_TX_ROOM);
		if (!l->tx_buf)
			return -ENOMEM;
		if ((r = tap_open(v->tap_name, v->nlanes > 1, &l->tap.fd)) < 0) {
			fprintf(stderr, "vmm: tap %s: %s\n", v->tap_name, strerror(-r));
			return r;
		}
		switch_init(l);
	}
	if (v->group)
		vmm_log(NULL, "vmm: %u lanes, each a thread with its engine shard and TAP queue",
			v->nlanes);
	return 0;
}

/* The rings of pair @p of every guest that has it. Lane @p's lock held. */
static void serve_pair(struct vmm *v, unsigned p)
{
	for (unsigned i = 0; i < v->nguests; i++) {
		struct guest *g = &v->guests[i];
		if (!g->removed && p < g->net.pairs)
			guest_serve_pair(g, p);
	}
}

/* One event of the lane's epoll; false: stop. Its lock held. */
static bool io_event(struct lane *l, uint32_t what)
{
	struct vmm *v = l->v;
	uint64_t cnt;
	if (what == IO_STOP)
		return false;
	if (what == IO_WAKE) {
		if (read(l->wake_fd, &cnt, sizeof cnt) < 0) {
			/* Nothing to take: another wake-up came first. */
		}
	} else if (what == IO_TAP) {
		if (tap_rx(l) < 0)
			vmm_log(NULL, "vmm: tap queue %u: read failed", l->idx);
	} else if (!v->guests[what >> 8].removed) {
		vnet_ioev_kick(&v->guests[what >> 8], what & 0xff);
	}
	return true;
}

static void *io_main(void *arg)
{
	struct lane *l = arg;
	for (;;) {
		struct epoll_event evs[16];
		pthread_mutex_lock(&l->lock);
		int busy = vdemux_shard_idle(l->eng);
		pthread_mutex_unlock(&l->lock);
		int n = epoll_wait(l->ep, evs, 16, busy == 1 ? 0 : -1);
		if (n < 0 && errno != EINTR)
			break;
		bool go = true;
		pthread_mutex_lock(&l->lock);
		for (int k = 0; k < n; k++)
			go &= io_event(l, evs[k].data.u32);
		if (go) {
			serve_pair(l->v, l->idx);
			vdemux_shard_poll(l->eng, SHARD_BUDGET);
		}
		pthread_mutex_unlock(&l->lock);
		if (!go)
			break;
		l->wakeups++;
	}
	return NULL;
}

static int ep_add(int ep, int fd, uint32_t what)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u32 = what};
	return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

/* Lane @l's epoll: its stop eventfd, its shard's wake-up, its TAP queue
 * and pair l->idx's queues' ioeventfds. */
static int io_setup(struct vmm *v, struct lane *l)
{
	unsigned p = l->idx;
	l->ep = epoll_create1(EPOLL_CLOEXEC);
	l->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (l->ep < 0 || l->stop_fd < 0)
		return -errno;
	int r = ep_add(l->ep, l->stop_fd, IO_STOP);
	if (!r)
		r = ep_add(l->ep, l->wake_fd, IO_WAKE);
	if (!r)
		r = ep_add(l->ep, l->tap.fd, IO_TAP);
	for (unsigned i = 0; i < v->nguests && !r; i++) {
		struct vnet_dev *d = &v->guests[i].net;
		for (unsigned q = 2 * p; p < d->pairs && q < 2 * p + 2 && !r; q++)
			r = ep_add(l->ep, d->ioev_fd[q], i << 8 | q);
	}
	return r;
}

int iothreads_start(struct vmm *v)
{
	for (unsigned p = 1; p < v->nlanes; p++) {
		struct lane *l = &v->lane[p];
		int r = io_setup(v, l);
		if (r < 0)
			return r;
		if (pthread_create(&l->thread, NULL, io_main, l) != 0)
			return -EAGAIN;
		l->started = true;
	}
	return 0;
}

void iothreads_stop(struct vmm *v)
{
	uint64_t one = 1;
	for (unsigned p = 1; p < v->nlanes; p++) {
		struct lane *l = &v->lane[p];
		if (!l->started)
			continue;
		if (write(l->stop_fd, &one, sizeof one) < 0) {
			/* An eventfd: cannot fail short of overflow. */
		}
		pthread_join(l->thread, NULL);
		l->started = false;
		close(l->ep);
		close(l->stop_fd);
	}
}

/* SPDX-License-Identifier: MIT */
/*
 * With --io-threads, one I/O thread per queue pair past the first: thread p waits on the
 * ioeventfds of pair p's two queues of every guest that has that pair, and
 * serves those rings (the transmit chains switched, the receive buffers
 * taken). The main thread keeps the TAP, the signals, the control queues,
 * every guest's first pair, and whatever comes through trapped
 * notifications (loop.c).
 *
 * The engine is one, and its calls are serialised by vmm.engine_lock, which
 * each thread takes to serve; what runs apart is the wait and the
 * notification's bookkeeping. A design with one engine per thread (engine
 * shards sharing a classifier) would let the frames themselves move in
 * parallel; this one keeps each pair's work on its own thread already.
 * Measured in the kernel lab (docs/performance.md, "Queue pairs"), the two
 * threads taking turns at the engine's lock cost more than they gave, so
 * the main thread serves every pair unless asked.
 */
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "vmm.h"

/* The rings of pair @p of every guest that has it. Engine lock held. */
static void serve_pair(struct vmm *v, unsigned p)
{
	for (unsigned i = 0; i < v->nguests; i++) {
		struct guest *g = &v->guests[i];
		if (!g->removed && p < g->net.pairs)
			guest_serve_pair(g, p);
	}
}

static void *io_main(void *arg)
{
	struct iothread *t = arg;
	struct vmm *v = t->v;
	for (;;) {
		struct epoll_event evs[16];
		int n = epoll_wait(t->ep, evs, 16, -1);
		if (n < 0 && errno != EINTR)
			break;
		bool stop = false;
		for (int k = 0; k < n; k++) {
			uint32_t gi = evs[k].data.u32 >> 8, q = evs[k].data.u32 & 0xff;
			if (evs[k].data.u32 == UINT32_MAX)
				stop = true;
			else if (!v->guests[gi].removed)
				vnet_ioev_kick(&v->guests[gi], q);
		}
		if (stop)
			break;
		t->wakeups++;
		pthread_mutex_lock(&v->engine_lock);
		serve_pair(v, t->pair);
		pthread_mutex_unlock(&v->engine_lock);
	}
	return NULL;
}

/* Thread @p's epoll: its stop eventfd and pair p's queues' ioeventfds. */
static int io_setup(struct vmm *v, struct iothread *t, unsigned p)
{
	t->v = v;
	t->pair = p;
	t->ep = epoll_create1(EPOLL_CLOEXEC);
	t->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (t->ep < 0 || t->stop_fd < 0)
		return -errno;
	struct epoll_event ev = {.events = EPOLLIN, .data.u32 = UINT32_MAX};
	if (epoll_ctl(t->ep, EPOLL_CTL_ADD, t->stop_fd, &ev) < 0)
		return -errno;
	for (unsigned i = 0; i < v->nguests; i++) {
		struct vnet_dev *d = &v->guests[i].net;
		for (unsigned q = 2 * p; p < d->pairs && q < 2 * p + 2; q++) {
			ev.data.u32 = i << 8 | q;
			if (epoll_ctl(t->ep, EPOLL_CTL_ADD, d->ioev_fd[q], &ev) < 0)
				return -errno;
		}
	}
	return 0;
}

int iothreads_start(struct vmm *v)
{
	unsigned pairs = 1;
	for (unsigned i = 0; i < v->nguests && v->io_threads; i++)
		if (v->guests[i].net.pairs > pairs)
			pairs = v->guests[i].net.pairs;
	for (unsigned p = 1; p < pairs; p++) {
		struct iothread *t = &v->io[p];
		int r = io_setup(v, t, p);
		if (r < 0)
			return r;
		if (pthread_create(&t->thread, NULL, io_main, t) != 0)
			return -EAGAIN;
		t->started = true;
		v->nio = p + 1;
	}
	return 0;
}

void iothreads_stop(struct vmm *v)
{
	uint64_t one = 1;
	for (unsigned p = 1; p < v->nio; p++) {
		struct iothread *t = &v->io[p];
		if (!t->started)
			continue;
		if (write(t->stop_fd, &one, sizeof one) < 0) {
			/* An eventfd: cannot fail short of overflow. */
		}
		pthread_join(t->thread, NULL);
		t->started = false;
		close(t->ep);
		close(t->stop_fd);
	}
}

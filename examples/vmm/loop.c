/* SPDX-License-Identifier: MIT */
/*
 * The main thread's event loop: TAP reads, signals, the guests' kicks and
 * power-offs, through one epoll. Each round serves every guest's transmit
 * rings, then its receive queues (with shards, of the first pair only:
 * the others are their lanes'), under the main lane's lock; with shards,
 * it also takes what other shards handed the main lane's (rule 3 of the
 * shards: a poll every round, a wake-up armed before each wait).
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "vmm.h"

enum { EV_TAP = 1, EV_SIGNAL, EV_KICK, EV_OFF, EV_IOEV, EV_WAKE };
#define SHARD_BUDGET 256u /* frames a poll takes */
#define EV(type, i) ((uint64_t)(type) << 32 | (i))

struct loop {
	struct vmm *v;
	int ep, sfd;
	unsigned live; /* guests not removed */
	bool ok, quit;
};

static int loop_init(struct loop *l)
{
	struct vmm *v = l->v;
	l->ep = epoll_create1(EPOLL_CLOEXEC);
	if (l->ep < 0)
		return -errno;
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = EV(EV_TAP, 0)};
	epoll_ctl(l->ep, EPOLL_CTL_ADD, v->lane[0].tap.fd, &ev);
	ev.data.u64 = EV(EV_SIGNAL, 0);
	epoll_ctl(l->ep, EPOLL_CTL_ADD, l->sfd, &ev);
	ev.data.u64 = EV(EV_WAKE, 0);
	if (v->lane[0].wake_fd >= 0)
		epoll_ctl(l->ep, EPOLL_CTL_ADD, v->lane[0].wake_fd, &ev);
	for (unsigned i = 0; i < v->nguests; i++) {
		ev.data.u64 = EV(EV_KICK, i);
		epoll_ctl(l->ep, EPOLL_CTL_ADD, v->guests[i].net.kick_fd, &ev);
		for (unsigned q = 0; q < v->guests[i].net.nqueues; q++) {
			/* Pairs past the first are their I/O thread's (iothread.c). */
			if (q / 2 < v->guests[i].net.pairs && q / 2 > 0 && v->group)
				continue;
			ev.data.u64 = EV(EV_IOEV, i << 8 | q);
			epoll_ctl(l->ep, EPOLL_CTL_ADD, v->guests[i].net.ioev_fd[q], &ev);
		}
		ev.data.u64 = EV(EV_OFF, i);
		epoll_ctl(l->ep, EPOLL_CTL_ADD, v->guests[i].cpu.off_fd, &ev);
	}
	return 0;
}

/* One event; engine lock held. */
static void loop_event(struct loop *l, uint64_t data)
{
	struct vmm *v = l->v;
	unsigned type = (unsigned)(data >> 32), idx = (unsigned)data;
	uint64_t cnt;
	if (type == EV_TAP) {
		if (tap_rx(&v->lane[0]) < 0)
			vmm_log(NULL, "vmm: tap read failed");
	} else if (type == EV_WAKE) {
		if (read(v->lane[0].wake_fd, &cnt, sizeof cnt) < 0)
			return;
	} else if (type == EV_SIGNAL) {
		struct signalfd_siginfo si;
		if (read(l->sfd, &si, sizeof si) != sizeof si)
			return;
		if (si.ssi_signo == SIGUSR2) {
			stats_counters(v);
			return;
		}
		vmm_log(NULL, "vmm: signal %u: stopping", si.ssi_signo);
		l->quit = true;
	} else if (type == EV_KICK) {
		/* What was kicked is in the device's events. */
		if (read(v->guests[idx].net.kick_fd, &cnt, sizeof cnt) < 0)
			return;
	} else if (type == EV_IOEV) {
		if (!v->guests[idx >> 8].removed)
			vnet_ioev_kick(&v->guests[idx >> 8], idx & 0xff);
	} else if (type == EV_OFF) {
		struct guest *g = &v->guests[idx];
		if (read(g->cpu.off_fd, &cnt, sizeof cnt) > 0 && !g->removed) {
			l->ok &= guest_remove(v, g);
			l->live--;
		}
	}
}

/* Every transmit ring first, so that frames between guests reach their
 * receive rings in this same round. Engine lock held. */
static void loop_serve(struct vmm *v)
{
	for (unsigned i = 0; i < v->nguests; i++)
		if (!v->guests[i].removed)
			guest_serve_tx(&v->guests[i]);
	for (unsigned i = 0; i < v->nguests; i++)
		if (!v->guests[i].removed)
			guest_serve_rx(&v->guests[i]);
}

bool vmm_loop(struct vmm *v, int sfd)
{
	struct loop l = {.v = v, .sfd = sfd, .live = v->nguests, .ok = true};
	if (loop_init(&l) < 0)
		return false;
	struct timespec last_status;
	clock_gettime(CLOCK_MONOTONIC, &last_status);
	while (l.live && !l.quit) {
		struct epoll_event evs[16];
		int busy = 0;
		if (v->group) {
			pthread_mutex_lock(&v->lane[0].lock);
			busy = vdemux_shard_idle(v->lane[0].eng);
			pthread_mutex_unlock(&v->lane[0].lock);
		}
		int n = epoll_wait(l.ep, evs, 16, busy == 1 ? 0 : 1000);
		if (n < 0 && errno != EINTR)
			break;
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (v->verbose && now.tv_sec - last_status.tv_sec >= 10) {
			last_status = now;
			stats_status(v);
		}
		pthread_mutex_lock(&v->lane[0].lock);
		for (int i = 0; i < n; i++)
			loop_event(&l, evs[i].data.u64);
		loop_serve(v);
		if (v->group)
			vdemux_shard_poll(v->lane[0].eng, SHARD_BUDGET);
		pthread_mutex_unlock(&v->lane[0].lock);
	}
	close(l.ep);
	return l.ok;
}

/* SPDX-License-Identifier: MIT */
/* Signals: what is raised during a call is sent once per VM at its end. */
#include <unistd.h>

#include <vdemux/signal.h>

#include "core/engine.h"
#include "core/signal.h"
#include "core/vm.h"

void vd_signal_raise(struct vdemux_engine *e, struct vm *vm, unsigned reasons)
{
	if (!vm->sig.burst) {
		vm->sig.next = e->sigs.list;
		e->sigs.list = vm;
	}
	vm->sig.burst |= reasons;
}

static void signal_fd(int fd)
{
	uint64_t one = 1;

	/* An eventfd write only fails if the counter would overflow: then
	 * the reader has a signal pending anyway. */
	(void)!write(fd, &one, sizeof(one));
}

bool vd_signal_send(const struct vdemux_signal *cfg, vdemux_vm_id id, unsigned reasons)
{
	switch (cfg->kind) {
	case VDEMUX_SIGNAL_CALLBACK: cfg->cb(id, reasons, cfg->payload); return true;
	case VDEMUX_SIGNAL_EVENTFD:
		if ((reasons & VDEMUX_SIG_RELEASE) && (cfg->flags & VDEMUX_SIGNAL_F_RELEASE_FD)) {
			signal_fd(cfg->release_fd);
			if (reasons & VDEMUX_SIG_RX)
				signal_fd(cfg->fd);
		} else {
			signal_fd(cfg->fd);
		}
		return true;
	default: return false;
	}
}

void vd_signal_flush(struct vdemux_engine *e)
{
	while (e->sigs.list) {
		struct vm *vm = e->sigs.list;
		unsigned r = vm->sig.burst;

		e->sigs.list = vm->sig.next;
		vm->sig.next = NULL;
		vm->sig.burst = 0;
		vm->sig.pending |= r;
		if (r & VDEMUX_SIG_RELEASE)
			e->st.release_requests++;
		vd_signal_send(&vm->sig.cfg, vm->id, r);
		e->st.signals++;
		vm->st.signals++;
	}
}

void vd_signal_release_all(struct vdemux_engine *e)
{
	for (uint32_t i = 0; i < e->vmt.max; i++) {
		struct vm *vm = e->vmt.vms[i];

		if (vm && vm->held)
			vd_signal_raise(e, vm, VDEMUX_SIG_RELEASE);
	}
}

void vd_signal_watermark(struct vdemux_engine *e)
{
	const struct vd_pool *pl = &e->pool;

	if (!e->low_watermark)
		return;
	if (pl->nfree >= 2ull * e->low_watermark || pl->nfree == pl->npages) {
		e->sigs.release_armed = true;
		return;
	}
	if (pl->nfree >= e->low_watermark || !e->sigs.release_armed)
		return;
	e->sigs.release_armed = false;
	vd_signal_release_all(e);
}

void vd_signal_forget(struct vdemux_engine *e, struct vm *vm)
{
	for (struct vm **pp = &e->sigs.list; *pp; pp = &(*pp)->sig.next)
		if (*pp == vm) {
			*pp = vm->sig.next;
			break;
		}
}

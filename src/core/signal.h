/* SPDX-License-Identifier: MIT */
/* Signals to VMs: reasons raised during a call are gathered per VM and sent
 * once, at the end of the call; release requests at the low watermark.
 * Owner of: struct vd_sigs (the engine's list), struct vd_vm_sig (both
 * laid out in vm.h). */
#ifndef VDEMUX_CORE_SIGNAL_H
#define VDEMUX_CORE_SIGNAL_H

#include <vdemux/signal.h>

#include "common/util.h"

struct vdemux_engine;
struct vm;

/* Send @reasons to the VMM as @cfg says (a callback, or a write to the
 * eventfd: the release eventfd for a release request when the VM has one).
 * Returns whether anything was sent (false for VDEMUX_SIGNAL_NONE). Also
 * what a device model's own interrupt goes through (virtio_net.c). */
bool vd_signal_send(const struct vdemux_signal *cfg, vdemux_vm_id id, unsigned reasons);

void vd_signal_raise(struct vdemux_engine *e, struct vm *vm, unsigned reasons);
/* Send what was raised: every API call that may raise ends with this. */
void vd_signal_flush(struct vdemux_engine *e);
/* Ask every VM that holds pages to release some. */
void vd_signal_release_all(struct vdemux_engine *e);
/* Raise release requests if the pool just went under the low watermark. */
void vd_signal_watermark(struct vdemux_engine *e);
/* Take a VM off the list (it is being removed). */
void vd_signal_forget(struct vdemux_engine *e, struct vm *vm);

/* The end of every call that changes the pool: watermark, then signals. */
static inline void vd_call_end(struct vdemux_engine *e)
{
	vd_signal_watermark(e);
	vd_signal_flush(e);
}

#endif

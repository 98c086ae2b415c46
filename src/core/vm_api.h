/* SPDX-License-Identifier: MIT */
/* The VM calls the rest of the core builds on: vmq.c posts a queue's
 * chains through them. */
#ifndef VDEMUX_CORE_VM_API_H
#define VDEMUX_CORE_VM_API_H

#include <stdint.h>

struct vdemux_engine;
struct vm;

/* Post a chain of pages (a chain VM's buffer), all or nothing: the checks
 * of vdemux_vm_post_rx(). Returns 0 or its negative errno. */
int vd_vm_post_chain(struct vdemux_engine *e, struct vm *vm, const uint64_t *gpas, unsigned n);

#endif

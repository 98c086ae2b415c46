/* SPDX-License-Identifier: MIT */
/* A VM's state: its RX window (slots), its queues, its backends and its
 * counters, and the operations on its slots. Owner of: struct vm (except
 * the members marked as another module's). The table of VMs is vmtab.h's;
 * the public calls that change VMs are vm_api.c's. */
#ifndef VDEMUX_CORE_VM_H
#define VDEMUX_CORE_VM_H

#include <vdemux/signal.h>
#include <vdemux/vm.h>

#include "common/util.h"
#include "core/cost.h"
#include "core/ring.h"
#include "core/vmq.h"

#define MAX_BACKENDS 8u
#define VM_IDX_BITS 20u
#define VM_IDX_MASK ((1u << VM_IDX_BITS) - 1u)
#define VM_MAX_PAGES (1u << 28) /* 1 TiB of RX window */

struct vdemux_engine;

/* A slot of a VM's RX window. */
struct slot {
	uint32_t page; /* engine page index, or VDEMUX_NO_PAGE */
	uint8_t posted;
	uint8_t filled;
	uint16_t chain; /* chain VMs: slots in the chain this slot starts, else 0 */
	uint32_t mark;	/* duplicate detection inside one call */
};

struct be_ref {
	struct vdemux_backend *be;
	void *ctx;
};

/* Owned by signal.c: the engine's list of VMs to signal. */
struct vd_sigs {
	struct vm *list;    /* VMs with reasons raised in this call */
	bool release_armed; /* the low watermark may fire again */
};

/* Owned by signal.c: a VM's signal. */
struct vd_vm_sig {
	struct vdemux_signal cfg;
	unsigned pending; /* for vdemux_vm_take_signals() */
	unsigned burst;	  /* raised during the current call */
	struct vm *next;  /* on the engine's list of VMs to signal */
};

/* Owned by plan.c: this VM's entries in the engine's plan (valid while gen
 * equals the plan's). */
struct vd_vm_plan {
	uint32_t gen, head, tail;
	struct vm *next;
};

struct vm {
	vdemux_vm_id id;
	uint32_t idx;
	uint32_t flags;
	/* the RX window */
	uint64_t rx_base;
	uint32_t rx_pages;
	struct slot *slots;
	uint32_t quota;
	uint32_t held;
	/* policies */
	enum vdemux_harvest harvest;
	enum vdemux_copy_policy copy;
	uint32_t copy_threshold;
	uint32_t eff_threshold; /* frames up to this many bytes are copied */
	struct vd_vm_cost cost; /* owned by cost.c: the adaptive policy's model */
	/* receive layout, set by the owner of a virtio-net queue (src/virtio) */
	uint32_t rx_offset;    /* where a delivery starts in its first page */
	bool chains;	       /* buffers are posted as chains of pages: a
				 * delivery takes the head chain whole; the
				 * window is guest RAM: every slot holds a page
				 * (a hole is an error, vdemux_engine_check()) */
	struct vd_sink sink;   /* copy target when no chain fits; copy NULL: none */
	uint32_t offloads;     /* VDEMUX_OFFLOAD_* the VM takes (offload.c) */
	uint32_t vnet_hdr_len; /* an engine VM's header in front of each frame, or 0 */
	/* translation tables */
	struct be_ref bes[MAX_BACKENDS];
	unsigned nbe;
	/* queues */
	struct vd_postq postq;
	struct vd_cq cq;
	struct vd_vm_sig sig;
	struct vd_vm_plan plan;
	struct vdemux_vm_stats st;
};

static inline uint64_t slot_gpa(const struct vm *vm, uint32_t s)
{
	return vm->rx_base + (uint64_t)s * PAGE;
}

/* The guest posted slot s: it joins the post queue. */
static inline void vd_vm_post_slot(struct vm *vm, uint32_t s)
{
	vd_postq_push(&vm->postq, s);
	vm->slots[s].posted = 1;
}

/* Take the next posted slot for a delivery. */
static inline uint32_t vd_vm_take_posted(struct vm *vm)
{
	uint32_t s = vd_postq_pop(&vm->postq);

	vm->slots[s].posted = 0;
	return s;
}

#endif

/* SPDX-License-Identifier: MIT */
/*
 * A backend that forwards to another one and fails the nth map, unmap or
 * remap call, or the nth entry inside the batches, with a chosen errno.
 * Shared by the unit tests (through vt.h) and the engine fuzzer: it needs
 * nothing but the library.
 */
#ifndef VT_FAULT_H
#define VT_FAULT_H

#include <stdbool.h>

#include <vdemux/sys/backend.h>
#include <vdemux/vdemux.h>

enum vt_op {
	VT_OP_MAP = 0x1,
	VT_OP_UNMAP = 0x2,
	VT_OP_REMAP = 0x4,
	VT_OP_ALL = 0x7,
};

enum vt_fault_mode {
	VT_FAULT_OFF = 0,
	VT_FAULT_CALL,	/* the nth counted call fails whole (done = 0) */
	VT_FAULT_ENTRY, /* the nth counted entry fails: entries before it in its batch are applied */
};

/*
 * Wraps any backend and forwards every operation to it, except the one it
 * is armed to fail. It keeps the backend contract: a failed batch reports in
 * *done exactly the entries applied, the others are left untouched.
 * The wrapper owns the inner backend: its free op frees both.
 */
struct vt_fault {
	struct vdemux_backend base; /* first member: what is registered */
	struct vdemux_backend *inner;

	/* armed failure */
	unsigned ops; /* VT_OP_* mask of the operations counted */
	enum vt_fault_mode mode;
	unsigned nth;	/* 1-based */
	int err;	/* returned: a negative errno (or > 0, a broken backend) */
	bool sticky;	/* keep failing from the nth on */
	unsigned seen;	/* counted calls or entries since armed */
	unsigned fired; /* failures injected since armed */
	int attach_err; /* non-zero: vm_attach fails with it */

	/* totals since creation, by operation (0 map, 1 unmap, 2 remap) */
	unsigned calls[3];
	unsigned entries[3];
	unsigned attached;    /* VMs attached now */
	void *last_vmctx;     /* what the inner backend returned to the last attach */
	vdemux_vm_id last_vm; /* the VM of the last attach */
};

/* Wrap @inner; with_remap false hides the remap operation (the engine must
 * then unmap and map). Aborts on allocation failure. */
struct vt_fault *vt_fault_wrap(struct vdemux_backend *inner, bool with_remap);
/* Free a wrapper that was never registered (frees the inner backend too). */
void vt_fault_free(struct vt_fault *f);
void vt_fault_arm(struct vt_fault *f, unsigned ops, enum vt_fault_mode mode, unsigned nth, int err,
		  bool sticky);
void vt_fault_disarm(struct vt_fault *f);

#endif

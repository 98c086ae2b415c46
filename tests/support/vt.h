/* SPDX-License-Identifier: MIT */
/*
 * Shared helpers for the unit tests: an engine + simulated-MMU fixture,
 * self-describing frames, a guest that reads its completions back through
 * the simulated tables, a fault-injecting backend wrapper, state snapshots
 * and an invariant check that does not trust the engine's own.
 *
 * Every function here asserts with CMocka, so it may only be called from a test.
 */
#ifndef VT_H
#define VT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <vdemux/sys/backend.h>
#include <vdemux/sys/classifier.h>
#include <vdemux/vdemux.h>

#include "fault.h"

#define VT_MAX_VMS 16
#define VT_MAX_BE 2
/* The longest frame the engine accepts at most (65536 + 4). */
#define VT_MAX_FRAME (65536u + 4u)
/* Pages of the longest frame. */
#define VT_MAX_CHAIN ((VT_MAX_FRAME + VDEMUX_PAGE_SIZE - 1) / VDEMUX_PAGE_SIZE)
/* Largest RX window a snapshot records slot by slot. */
#define VT_SNAP_SLOTS 256u

/* Fixed byte offsets of the frame format (see vt_frame_fill()). */
#define VT_FRAME_SEQ_OFF 14u
#define VT_FRAME_LEN_OFF 18u
/* Shortest frame carrying its own sequence number and length. */
#define VT_FRAME_MIN_TAGGED 22u

/* ------------------------------------------------------------------ */
/* Fault-injecting backend wrapper                                      */
/* ------------------------------------------------------------------ */


/* ------------------------------------------------------------------ */
/* Fixture                                                              */
/* ------------------------------------------------------------------ */

struct vt_vm {
	vdemux_vm_id id;
	uint64_t rx_base;
	uint32_t rx_pages;
	uint32_t quota;
	unsigned nbe;
	unsigned be_idx[VT_MAX_BE]; /* fixture backends keeping this VM's tables */
	bool removed;
	/* what the recording callback saw since vt_sig_reset() */
	unsigned sig_calls;
	unsigned sig_reasons; /* OR of every call */
	unsigned sig_last;
	unsigned sig_polled; /* completions polled from inside the callback */
	bool poll_in_cb;     /* poll completions from inside the callback */
};

struct vt_fx_opts {
	uint32_t npages;	       /* engine pages; 0: 64 (ignored if eng.sz set) */
	unsigned nbe;		       /* simulated backends, 1 or 2; 0: 1 */
	bool fault;		       /* wrap each in a vt_fault */
	bool no_remap;		       /* wrappers hide remap */
	bool builtin_cls;	       /* keep the engine's built-in L2 classifier */
	uint32_t sim_copy_threshold;   /* 0: the simulator's default */
	struct vdemux_engine_opts eng; /* used as is when eng.sz != 0 */
};

struct vt_cls {
	struct vdemux_classifier base;
	struct vt_fx *fx;
	unsigned removed_calls;
	vdemux_vm_id last_removed;
};

struct vt_fx {
	vdemux_engine *eng;
	unsigned nbe;
	struct vdemux_backend *be[VT_MAX_BE];  /* as registered */
	struct vdemux_backend *sim[VT_MAX_BE]; /* the simulator behind each */
	struct vt_fault *fault[VT_MAX_BE];     /* wrapper, or NULL */
	uint32_t first_page, npages;	       /* the engine's range of arena pages */
	bool builtin_cls;
	struct vt_cls cls;
	struct vt_vm vms[VT_MAX_VMS];
	unsigned nvms;
	uint32_t next_seq;
};

struct vt_fx *vt_fx_new(const struct vt_fx_opts *o);
void vt_fx_free(struct vt_fx *fx);
/* vt_fx_new() whose result is kept in *state for vt_teardown(). */
struct vt_fx *vt_fx_state(void **state, const struct vt_fx_opts *o);
/* CMocka setup/teardown pair: *state starts NULL; teardown frees a fixture. */
int vt_setup(void **state);
int vt_teardown(void **state);

/* Options for a VM of @rx_pages slots kept by every fixture backend,
 * signalled through the recording callback. Call vt_vm_add() next. */
struct vdemux_vm_opts vt_vm_opts(struct vt_fx *fx, uint32_t rx_pages);
/* Add a VM (asserts success); with the built-in classifier, the VM joins
 * VLAN 1 untagged with its MAC (vt_mac()). */
struct vt_vm *vt_vm_add(struct vt_fx *fx, const struct vdemux_vm_opts *o);
/* Remove a VM (asserts success) and forget it. */
void vt_vm_remove(struct vt_fx *fx, struct vt_vm *vm);
/* GPA of slot @i of @vm. */
uint64_t vt_gpa(const struct vt_vm *vm, uint32_t i);
/* Post slots [first, first + n) (asserts all posted). */
void vt_post_range(struct vt_fx *fx, struct vt_vm *vm, uint32_t first, uint32_t n);
/* A VM of @rx_pages slots with @flags and @harvest (VDEMUX_VM_F_*,
 * vdemux_vm_opts.harvest), nothing posted. */
struct vt_vm *vt_vm_new(struct vt_fx *fx, uint32_t rx_pages, uint32_t flags, enum vdemux_harvest harvest);
/* A VM of @rx_pages slots with @flags, every slot posted. */
struct vt_vm *vt_vm_posted(struct vt_fx *fx, uint32_t rx_pages, uint32_t flags);
struct vdemux_vm_stats vt_vm_stats(struct vt_fx *fx, const struct vt_vm *vm);
struct vdemux_engine_stats vt_stats(struct vt_fx *fx);
struct vt_vm *vt_vm_by_id(struct vt_fx *fx, vdemux_vm_id id);
void vt_sig_reset(struct vt_fx *fx);
/* Arena page mapped at @gpa in fixture backend @b (VDEMUX_NO_PAGE: hole). */
uint32_t vt_translate(struct vt_fx *fx, unsigned b, const struct vt_vm *vm, uint64_t gpa);
/* Page mapped at @gpa in every backend of @vm (asserts they agree). */
uint32_t vt_page_at(struct vt_fx *fx, const struct vt_vm *vm, uint64_t gpa);

/* ------------------------------------------------------------------ */
/* Frames                                                               */
/* ------------------------------------------------------------------ */

/* The MAC the fixture gives a VM: 02:00 followed by the id, big-endian. */
void vt_mac(vdemux_vm_id id, uint8_t mac[6]);
extern const uint8_t vt_bcast[6];

/*
 * Write a frame of @len bytes: dst, a fixed unicast source, EtherType
 * 0x88b5, then (if it fits) seq and len big-endian, then a pattern of
 * non-zero bytes derived from (seq, offset).
 */
void vt_frame_fill(uint8_t *buf, uint32_t len, const uint8_t dst[6], uint32_t seq);

/* A burst of frames under construction. */
struct vt_burst {
	struct vdemux_frame f[64];
	uint32_t seq[64];
	unsigned n;
};
/* Append a frame of @len bytes for VM @to (0: broadcast); returns its index. */
unsigned vt_burst_add(struct vt_fx *fx, struct vt_burst *b, vdemux_vm_id to, uint32_t len);
void vt_burst_free(struct vt_burst *b);
/* @n frames of @len bytes for @to (NULL: broadcast) in one vdemux_rx_burst()
 * call, which must return @expect. */
void vt_send(struct vt_fx *fx, const struct vt_vm *to, unsigned n, uint32_t len, int expect);

/* ------------------------------------------------------------------ */
/* Guest                                                                */
/* ------------------------------------------------------------------ */

struct vt_rx {
	uint32_t seq;
	uint32_t len;
	unsigned ncpl;
	bool copied; /* every page of it carries VDEMUX_CPL_COPIED */
	uint64_t gpa[VT_MAX_CHAIN];
	uint32_t cpl_len[VT_MAX_CHAIN];
};

/*
 * Act as the guest: poll every completion of @vm, group chains
 * (VDEMUX_CPL_MORE), read each buffer through every backend of the VM
 * (vdemux_sim_read) and assert: the backends agree, the bytes are exactly
 * the frame the sequence number names, and for a flipped page every byte
 * past the frame is zero. Returns the number of frames (at most @max).
 */
unsigned vt_guest_take(struct vt_fx *fx, struct vt_vm *vm, struct vt_rx *out, unsigned max);
/* Guest read of a whole page through backend @b: 0 or the negative errno. */
int vt_guest_read_page(struct vt_fx *fx, unsigned b, const struct vt_vm *vm, uint64_t gpa, uint8_t *page);
/* True if the page at @gpa is a hole in every backend of @vm (reads fault). */
bool vt_guest_hole(struct vt_fx *fx, const struct vt_vm *vm, uint64_t gpa);

/* ------------------------------------------------------------------ */
/* Invariants and snapshots                                             */
/* ------------------------------------------------------------------ */

/*
 * vdemux_engine_check() must pass, the page gauges must add up, and an
 * independent walk of every fixture VM's tables must find no arena page
 * mapped twice, every backend of a VM agreeing, only pages of the engine's
 * range, and as many mapped pages as the engine reports ASSIGNED.
 */
#define vt_check(fx) vt_check_at((fx), __FILE__, __LINE__)
void vt_check_at(struct vt_fx *fx, const char *file, int line);

struct vt_snap {
	struct vdemux_engine_stats es;
	struct vdemux_vm_stats vs[VT_MAX_VMS];
	struct vdemux_sim_stats ss[VT_MAX_BE];
	uint32_t map[VT_MAX_VMS][VT_MAX_BE][VT_SNAP_SLOTS];
};
/* Heap-allocated snapshot of every counter and every slot's mapping. */
struct vt_snap *vt_snap_take(struct vt_fx *fx);
/* @bad for vt_snap_expect_same(): exactly one bad_input counter, any. */
#define VT_BAD_ANY (-2)
/*
 * Assert that nothing but bad_input[@bad] (+1; -1 for none; VT_BAD_ANY for
 * exactly one of them) changed between @before and now.
 */
#define vt_snap_expect_same(fx, before, bad) \
	vt_snap_expect_same_at((fx), (before), (bad), __FILE__, __LINE__)
void vt_snap_expect_same_at(struct vt_fx *fx, const struct vt_snap *before, int bad, const char *file,
			    int line);

/* Allocation hooks that count what is outstanding (payload: the struct). */
struct vt_counting_alloc {
	long live;  /* allocations not yet freed */
	long calls; /* allocations made */
};
void *vt_count_calloc(size_t n, size_t size, void *payload);
void vt_count_free(void *p, void *payload);

/* Nonblocking read of an eventfd: its counter, or 0 if it was 0. */
uint64_t vt_efd_read(int fd);
/* True if the @n bytes at @p are all zero. */
bool vt_all_zero(const uint8_t *p, size_t n);
/* True if the mapping holding @p addr carries the huge-page advice
 * (MADV_HUGEPAGE: "hg" in its VmFlags of /proc/self/smaps). */
bool vt_advised_huge(const void *addr);

#endif

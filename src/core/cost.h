/* The costs behind the adaptive copy policy (VDEMUX_COPY_ADAPTIVE): what
 * copying and clearing cost per byte on this machine (timed at engine
 * creation and now and then afterwards), and, per VM, what a table update
 * of its stack of backends costs per run of contiguous pages and per page,
 * fitted to the VM's own batches as they are applied. The decision for one
 * delivery reads these; it never reads a clock. Owner of: struct vd_cost
 * (the engine's), struct vd_vm_cost (each VM's; a member of struct vm). */
#ifndef VDEMUX_CORE_COST_H
#define VDEMUX_CORE_COST_H

#include "common/util.h"

struct vdemux_engine;
struct vm;
struct vd_src;

/* Bytes timed by one calibration of memcpy and memset. */
#define COST_SCRATCH (64u * 1024u)

struct vd_cost {
	uint8_t *scratch;       /* 2 * COST_SCRATCH bytes: source and destination */
	double copy_ns_byte;    /* memcpy, ns per byte, timed at creation */
	double clear_ns_byte;   /* memset 0, ns per byte, timed at creation */
	double chunk_ns_byte;   /* copying a chunk into a VM's buffer and clearing it in
				 * the pool page, as timed in place (0: not yet) */
	uint32_t chunk_tick;    /* copied chunks since the last timed one */
	uint64_t clock_ns;      /* a pair of clock reads */
};

/* Classes of run length (pages per run of contiguous GPAs and pages):
 * 1, 2-3, 4-7, 8-15, 16 and more. */
#define COST_RUN_CLASSES 5

/* A VM's table cost: ns per flipped page, by the mean run length of the
 * batch it was timed in (a backend pays per call, and merges a run into
 * one call), each a moving average. */
struct vd_vm_cost {
	bool adaptive;          /* the VM's policy is VDEMUX_COPY_ADAPTIVE */
	bool decided;           /* it chose copy or flip since its last apply */
	uint32_t prior;         /* before any sample: copy frames up to this many bytes */
	double page_ns[COST_RUN_CLASSES]; /* 0: not measured yet */
	uint8_t class_samples[COST_RUN_CLASSES]; /* samples of each, up to 8 */
	double entry_ns;        /* applying a copied chunk's entry (its completion) */
	uint32_t samples;       /* batches with flips timed */
	uint32_t timed;         /* batches timed (saturates at SAMPLE_ALL) */
	uint32_t tick;          /* applies since the last timed one */
	uint32_t until_probe;   /* deliveries left before the next probe */
	uint8_t probe;          /* PROBE_NONE, _ARMED (the next batch), _ACTIVE (this batch) */
	bool probe_copy;        /* the probe copies (else it flips) */
	uint32_t batch_decisions; /* choices made for the batch being planned */
	uint32_t last_batch;    /* ... for the last batch applied */
	bool chose_copy;        /* the model's last choice */
	bool modelled;          /* warm-up is over */
};

int vd_cost_init(struct vd_cost *c, const struct vdemux_alloc_hooks *alloc);
void vd_cost_fini(struct vd_cost *c, const struct vdemux_alloc_hooks *alloc);
/* Around the copy of a chunk of a frame in pool pages into a VM's buffer
 * (and the clearing of the pool page): begin returns 0 for the chunks not
 * timed (all but one in 64), else a clock reading to pass to end. */
uint64_t vd_cost_chunk_begin(struct vdemux_engine *e, const struct vm *vm, bool own_pages,
			     uint32_t bytes);
void vd_cost_chunk_end(struct vdemux_engine *e, uint64_t t0, uint32_t bytes);

void vd_vm_cost_init(struct vd_vm_cost *vc, bool adaptive, uint32_t prior);

/*
 * Copy (true) or flip this delivery of @len bytes in @nch pages to @vm?
 * @own_pages: the frame is in pool pages that may be flipped as they are
 * (zero-copy); otherwise flipping would first copy it into fresh pages, and
 * a copy into the posted buffer is always cheaper. May decide to flip a
 * delivery the model would copy, to measure the table again (a probe),
 * within a budget of about 1% of the cost observed.
 */
bool vd_cost_copy(struct vdemux_engine *e, struct vm *vm, const struct vd_src *src, uint32_t len,
		  uint32_t nch, bool own_pages);

/* Around the application of a VM's part of the plan: due answers whether
 * to time this one (an adaptive VM, a sample of its batches); the caller
 * then reads vd_cost_clock() before and passes it to end with the flips
 * actually made. */
bool vd_cost_due(struct vm *vm);
uint64_t vd_cost_clock(void);
void vd_cost_end(struct vm *vm, uint64_t t0, uint32_t runs, uint32_t pages, uint32_t copies);

#endif

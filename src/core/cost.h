/* SPDX-License-Identifier: MIT */
/* The costs behind the adaptive copy policy (VDEMUX_COPY_ADAPTIVE). For
 * each VM and each size of delivery (in pages), the policy keeps one of two
 * regimes, copy or flip, and what a delivery has cost in each, measured on
 * the engine's own work for that VM: the planning of the delivery (a
 * copy's bytes, a flip's bookkeeping) and its share of the VM's
 * application (table updates, completions, the clearing of replaced
 * pages). The way not taken is measured by trials: a stretch of that VM's
 * deliveries of that size the other way, long enough for the VM's buffers
 * to turn over, measured in its second half. A sample of deliveries and of
 * batches is timed; a decision never reads a clock. Owner of: struct
 * vd_cost (the engine's), struct vd_vm_cost (each VM's; a member of struct
 * vm). */
#ifndef VDEMUX_CORE_COST_H
#define VDEMUX_CORE_COST_H

#include "common/util.h"

struct vdemux_engine;
struct vm;

/* Bytes timed by one calibration of memcpy and memset. */
#define COST_SCRATCH (64u * 1024u)

struct vd_cost {
	uint8_t *scratch;		  /* 2 * COST_SCRATCH bytes: source and destination */
	double copy_ns_byte;		  /* memcpy, ns per byte, timed at creation */
	double clear_ns_byte;		  /* memset 0, ns per byte, timed at creation */
	uint64_t clock_ns;		  /* a pair of clock reads */
	uint64_t (*clock)(void *payload); /* the engine's clock; NULL: CLOCK_MONOTONIC */
	void *clock_payload;
};

/* Classes of delivery size: 1, 2, 3, 4, 5-8 and 9 or more pages. */
#define COST_CLASSES 6

enum { REG_COPY, REG_FLIP };

/* The phases of a class (docs/architecture.md has the table of what each
 * measures and what ends it). A trial is PRE to MEASURE; from PROBE on, its
 * deliveries go the other way (in PROBE, only the first of its batch). The
 * order matters: from RECOVER on, a VM is sampled densely (vd_vm_cost.dense). */
enum vd_cost_phase {
	PH_UNSEEN,	/* no delivery of the class decided yet */
	PH_FIRST_TOUCH, /* its first turnovers of the VM's buffers: not measured */
	PH_REGIME,	/* in its regime, measured; the next trial counted down */
	PH_RECOVER,	/* after a trial, back in the regime: measured, charged to it */
	PH_PRE,		/* a trial's first phase: the regime in force, measured */
	PH_PROBE,	/* one delivery the other way, timed alone */
	PH_WARM,	/* the other way, not measured: its state replaces the old */
	PH_MEASURE,	/* the other way, measured */
};

/* Sums of samples over a phase (PRE, MEASURE, RECOVER): planning per
 * delivery, application per delivery. */
struct vd_phase_sums {
	double plan, apply, plan_max, apply_max;
	uint32_t nplan, napply;
};

struct vd_class_cost {
	/* read or written for every delivery: first, in one cache line */
	uint8_t phase;		  /* PH_* */
	uint8_t regime;		  /* the current choice */
	uint8_t b_regs;		  /* the batch being planned: bit per regime used */
	bool check;		  /* the trial under way or next checks a regime change */
	uint32_t nch;		  /* pages of the last delivery decided */
	uint32_t b_seen, b_pages; /* ... its deliveries of this class and their pages */
	uint64_t b_bytes;	  /* ... and their bytes */
	uint32_t until_trial;	  /* PH_REGIME: deliveries before the next trial (0: to be set) */
	uint32_t left;	   /* deliveries left in this phase (FIRST_TOUCH, RECOVER, PRE, WARM, MEASURE) */
	bool probe_timing; /* the probe's planning is being timed */
	uint32_t probe_pages; /* ... its pages */
	double probe_plan;    /* ... its planning, ns */
	/* the measures */
	uint32_t samples[2];	  /* application samples in each regime (saturates) */
	double plan[2];		  /* ns per delivery, by regime (REG_*): planning */
	double apply[2];	  /* ... its share of the application */
	uint8_t over[4];	  /* samples clipped in a row: plan[], apply[] */
	uint8_t plan_n[2];	  /* planning samples taken (saturates past SETTLE) */
	double trial_cost;	  /* the last trial's extra cost (ns, all its deliveries) */
	struct vd_phase_sums ph;  /* MEASURE, then RECOVER */
	struct vd_phase_sums pre; /* PRE */
	double mean_len;	  /* bytes per delivery, a moving average of batches */
};

struct vd_vm_cost {
	bool adaptive;	       /* the VM's policy is VDEMUX_COPY_ADAPTIVE */
	bool holes;	       /* eager harvest: posted buffers are holes */
	bool flipped_once;     /* its first zero-copy delivery was flipped */
	bool timing;	       /* the batch being planned is timed (its application) */
	bool decided;	       /* it chose copy or flip since its last apply */
	bool dense;	       /* a class is in PH_RECOVER or a trial: sampled densely */
	uint8_t b_classes;     /* bit per class with deliveries in the batch */
	uint32_t prior;	       /* before any measure: copy frames up to this many bytes */
	double entry_ns;       /* applying one copied page (its completion) */
	uint8_t entry_over;    /* samples clipped in a row */
	uint32_t batches;      /* batches applied (saturates at SAMPLE_ALL) */
	uint32_t btick, dtick; /* batches, deliveries since the last timed one */
	uint32_t setup;	       /* timed batches with flips (the first is set-up) */
	struct vd_class_cost cls[COST_CLASSES];
};

/* clock: the VMM's clock (vdemux_engine_opts.clock), or NULL. */
int vd_cost_init(struct vd_cost *c, const struct vdemux_alloc_hooks *alloc,
		 uint64_t (*clock)(void *payload), void *clock_payload);
void vd_cost_fini(struct vd_cost *c, const struct vdemux_alloc_hooks *alloc);

/* @holes: eager harvest: posted buffers are unmapped, and a zero-copy
 * frame goes into them by flip whatever the policy, so there is nothing
 * to decide or measure. */
void vd_vm_cost_init(struct vd_vm_cost *vc, bool adaptive, uint32_t prior, bool holes);

/* The first batches of a VM timed in full; afterwards one delivery in
 * COST_PLAN_EVERY has its planning timed. */
#define COST_SAMPLE_ALL 16u
#define COST_PLAN_EVERY 128u

static inline unsigned vd_cost_class(uint32_t nch)
{
	return nch <= 4 ? nch - 1 : nch <= 8 ? 4 : 5;
}

/* vd_cost_copy() for every case but the most common one. */
bool vd_cost_decide(struct vdemux_engine *e, struct vm *vm, uint32_t len, uint32_t nch, uint64_t *t0);

/*
 * Copy (true) or flip this delivery of @len bytes in @nch pages to @vm
 * (@vc: its cost)? @own_pages: the frame is in pool pages that may be
 * flipped as they are (zero-copy); otherwise flipping would first copy it
 * into fresh pages, and a copy into the posted buffer is always cheaper.
 * *@t0 is set to a clock reading when the delivery's planning is to be
 * timed (else 0): then pass it, once the delivery is planned, to
 * vd_cost_planned. Inline: the common case (a class in its regime, not
 * sampled) is a few counters.
 */
static inline bool vd_cost_copy(struct vdemux_engine *e, struct vm *vm, struct vd_vm_cost *vc,
				uint32_t len, uint32_t nch, bool own_pages, uint64_t *t0)
{
	unsigned c = vd_cost_class(nch);
	struct vd_class_cost *cc = &vc->cls[c];

	*t0 = 0;
	if (!own_pages || len <= PAGE / 2)
		return true;
	if (vc->holes)
		return false;
	/* (no class is in a trial unless vc->dense) */
	if (!vc->flipped_once || cc->phase == PH_UNSEEN || vc->dense || vc->batches < COST_SAMPLE_ALL ||
	    vc->dtick + 1 >= COST_PLAN_EVERY)
		return vd_cost_decide(e, vm, len, nch, t0);
	vc->decided = true;
	vc->dtick++;
	cc->nch = nch;
	cc->b_seen++;
	cc->b_pages += nch;
	cc->b_bytes += len;
	cc->b_regs |= (uint8_t)(1u << cc->regime);
	vc->b_classes |= (uint8_t)(1u << c);
	return cc->regime == REG_COPY;
}
void vd_cost_planned(struct vdemux_engine *e, struct vm *vm, uint32_t nch, uint64_t t0);

/* Around the application of a VM's part of the plan: due answers whether
 * to time this one; the caller then reads vd_cost_clock() before (0 if
 * not due) and passes it to end, with the pages flipped and copied in it
 * when timed, for every VM that had a choice (vm->cost.decided). */
bool vd_cost_due(struct vm *vm);
uint64_t vd_cost_clock(const struct vdemux_engine *e);
void vd_cost_end(struct vdemux_engine *e, struct vm *vm, uint64_t t0, uint32_t flips, uint32_t copies);

#endif

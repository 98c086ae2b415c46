/* SPDX-License-Identifier: MIT */
/* The adaptive copy policy: copy or flip each delivery by what the engine
 * observes it costs.
 *
 * A frame in the caller's memory (vdemux_rx_burst), or a replica, or a
 * frame whose tag is edited, would have to be copied into fresh pool pages
 * before it could be flipped: a copy into the posted buffer does strictly
 * less work, so it is always copied where the buffer is still mapped. So is
 * a frame of at most half a page: a flip clears the whole page it replaces.
 * The trade-off is for a larger frame already in pool pages
 * (vdemux_rx_submit).
 *
 * Costs are not summed from parts timed apart: what copying a frame costs
 * depends on where the VM's buffers are in the caches, what a flip costs on
 * the pages it replaces and on the tables, and each way changes the state
 * the other would find. So for each VM and each class of delivery size the
 * policy runs in a regime, copy or flip, and measures what a delivery costs
 * in it, on the engine's work for that VM: its planning (timed around a
 * sample of deliveries) and its share of the VM's application (timed
 * around a sample of batches). The way not taken is measured by trials.
 *
 * Each class goes through the phases of enum vd_cost_phase: UNSEEN, then
 * FIRST_TOUCH (not measured), then REGIME; a trial is PRE (the regime in
 * force, measured), PROBE (one delivery the other way: far dearer ends the
 * trial), WARM (the other way, not measured), MEASURE (the other way,
 * measured), after which the class is in the cheaper regime: RECOVER if it
 * stayed (what the trial left behind is charged to it), REGIME if it
 * changed (with the next trial, soon, a check). There is one function per
 * phase's end of a batch (*_batch) and one per transition; the table is in
 * docs/architecture.md. A decision never reads a clock; clock reads are
 * few: on a nested virtual machine a read costs tens of nanoseconds. */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "core/cost.h"
#include "core/engine.h"

/* Moving averages of a regime's cost: a sample moves the estimate by
 * 1/WEIGHT, so it follows the mean of the last dozen or so samples (the
 * mean is what throughput pays) and one noisy sample moves it little. A
 * sample beyond OUTLIER times the estimate is clipped (a page fault or a
 * preemption says nothing about the way frames are delivered), unless
 * OUTLIER_RUN come in a row: then it is a change, and the estimate jumps. */
#define WEIGHT 8.0
#define OUTLIER 2.0
#define OUTLIER_RUN 3u
/* Sampling: the first COST_SAMPLE_ALL batches of a VM and the deliveries and
 * batches of a trial and of the phase after it are sampled densely (every
 * batch, one delivery in PLAN_EVERY_PHASE): a phase lasts a few hundred
 * deliveries and needs several samples; otherwise one delivery in
 * COST_PLAN_EVERY, one batch in APPLY_EVERY, so that clock reads cost
 * well under 1% of a delivery. */
#define PLAN_EVERY_PHASE 8u
#define APPLY_EVERY 32u
/* Application samples of the regime in force before it is compared: the
 * cheapest of the first SETTLE stands for it (what is left of a transient
 * makes the others dearer). */
#define SETTLE 2u
/* The other regime is tried at once when its estimate falls below this
 * fraction of the current one's; a trial's regime is kept when it cost
 * less than this fraction: a margin above the noise of two phases' means,
 * so that two regimes that cost the same do not take turns. */
#define SWITCH 0.97
/* What touching a page for the first time may cost (a page fault of a
 * nested guest, with margin): the first deliveries of a class, or a
 * trial's, may be dearer by this much per page before they say anything. */
#define FIRST_TOUCH_NS 20000.0
/* Trial budget: the extra cost of trials, as the engine measures it, over
 * what the class spends. Trials also disturb what is not charged to them
 * (other VMs' deliveries, the caches, the pool's runs of free pages), so
 * the budget is a small fraction: the policy stays within a few per cent
 * of the better fixed policy (docs/performance.md). */
#define TRIAL_BUDGET 0.004
/* Trial share: a trial that ran its length (went past its probe) is
 * followed by a gap of at least its deliveries the other way over this.
 * What a trial disturbs without being charged goes with its length more
 * than with the extra cost it measures, which is near zero where the two
 * regimes cost nearly the same. */
#define TRIAL_SHARE 0.004
/* Bounds of the gap between trials, in deliveries of the class: GAP_MIN is
 * also how soon a regime change is checked (after its first turnovers of
 * the buffers, before it has cost much if wrong); GAP_MAX keeps a trial
 * coming every 16M deliveries, so a change of the tables' cost is seen. */
#define GAP_MIN 64u
#define GAP_MAX (1u << 24)
/* Bounds of a trial's phase, in deliveries: at least enough batches for a
 * mean without its dearest sample; at most what bounds a trial's cost where
 * a VM posts thousands of buffers. */
#define PHASE_MIN 4u
#define PHASE_MAX 512u
/* A trial starts with one delivery the other way: if that costs more than
 * PROBE_ABORT times a delivery in the regime in force, the trial stops
 * there, so that tables that cost tens of times a copy are not tried at
 * length; one delivery's noise and the state the old regime left can make
 * it two or three times dearer than the way is. */
#define PROBE_ABORT 4.0

static uint64_t now_ns(const struct vd_cost *c)
{
	struct timespec ts;

	if (c->clock)
		return c->clock(c->clock_payload);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void calibrate(struct vd_cost *c)
{
	uint8_t *src = c->scratch, *dst = c->scratch + COST_SCRATCH;
	uint64_t cp = UINT64_MAX, cl = UINT64_MAX;

	for (int i = 0; i < 3; i++) {
		uint64_t t0, t1, t2;

		t0 = now_ns(c);
		memcpy(dst, src, COST_SCRATCH);
		/* keep the copy: the memset below would make it dead */
		__asm__ __volatile__("" : : "r"(dst) : "memory");
		t1 = now_ns(c);
		memset(dst, 0, COST_SCRATCH);
		__asm__ __volatile__("" : : "r"(dst) : "memory");
		t2 = now_ns(c);
		if (t1 - t0 < cp)
			cp = t1 - t0;
		if (t2 - t1 < cl)
			cl = t2 - t1;
	}
	/* a clock too coarse to see 64 KiB move must not make bytes free */
	c->copy_ns_byte = (double)(cp ? cp : 1) / COST_SCRATCH;
	c->clear_ns_byte = (double)(cl ? cl : 1) / COST_SCRATCH;
	/* what a pair of clock reads adds to what it times */
	c->clock_ns = UINT64_MAX;
	for (int i = 0; i < 8; i++) {
		uint64_t t0 = now_ns(c), t1 = now_ns(c);

		if (t1 - t0 < c->clock_ns)
			c->clock_ns = t1 - t0;
	}
}

int vd_cost_init(struct vd_cost *c, const struct vdemux_alloc_hooks *alloc,
		 uint64_t (*clock)(void *payload), void *clock_payload)
{
	c->clock = clock;
	c->clock_payload = clock_payload;
	c->scratch = vd_calloc(alloc, 2, COST_SCRATCH);
	if (!c->scratch)
		return -ENOMEM;
	memset(c->scratch, 0x5a, COST_SCRATCH);
	calibrate(c);
	return 0;
}

void vd_cost_fini(struct vd_cost *c, const struct vdemux_alloc_hooks *alloc)
{
	vd_free(alloc, c->scratch);
	c->scratch = NULL;
}

void vd_vm_cost_init(struct vd_vm_cost *vc, bool adaptive, uint32_t prior, bool holes)
{
	memset(vc, 0, sizeof(*vc));
	vc->adaptive = adaptive;
	vc->holes = holes;
	vc->prior = prior;
	vc->timing = adaptive;
}

/* Move an estimate towards a sample; @over counts the samples in a row
 * that were clipped: OUTLIER_RUN of them are no outlier but a change (the
 * tables got slower), and the estimate jumps to the last. */
static void track(double *est, uint8_t *over, double t)
{
	if (*est <= 0) {
		*est = t > 0 ? t : 1;
		*over = 0;
		return;
	}
	if (t > OUTLIER * *est) {
		if (++*over >= OUTLIER_RUN) {
			*est = t;
			*over = 0;
			return;
		}
		t = OUTLIER * *est;
	} else {
		*over = 0;
	}
	*est += (t - *est) / WEIGHT;
}

/* What a delivery of this class costs in regime r: measured, else (copies
 * only) the calibrated memcpy and memset of its bytes and the completion
 * of its pages; 0 if nothing is known. */
static double cost_of(const struct vdemux_engine *e, const struct vd_vm_cost *vc,
		      const struct vd_class_cost *cc, unsigned r)
{
	if (cc->samples[r])
		return cc->plan[r] + cc->apply[r];
	if (r == REG_COPY)
		return cc->mean_len * (e->cost.copy_ns_byte + e->cost.clear_ns_byte) +
		       (double)cc->nch * vc->entry_ns;
	return 0;
}

/* A phase's length (PRE, WARM, MEASURE, RECOVER; FIRST_TOUCH lasts two):
 * as many deliveries as the VM has buffers posted for this class (they
 * turn over in that many), within bounds. */
static uint32_t phase_len(const struct vm *vm, uint32_t nch)
{
	uint32_t n = vm->postq.count / (nch ? nch : 1);

	return n < PHASE_MIN ? PHASE_MIN : n > PHASE_MAX ? PHASE_MAX : n;
}

/* ---- deciding and planning ---- */

/* A class's first delivery: the backends' threshold picks the regime; the
 * first turnovers touch the VM's buffers for the first time. */
static void class_first(const struct vm *vm, struct vd_class_cost *cc, uint32_t len, uint32_t nch)
{
	cc->phase = PH_FIRST_TOUCH;
	cc->regime = len <= vm->cost.prior ? REG_COPY : REG_FLIP;
	cc->mean_len = len;
	cc->nch = nch;
	cc->left = 2 * phase_len(vm, nch);
}

/* The way this delivery goes: the regime, but in a trial from PROBE on
 * (in PROBE, only its batch's first delivery, alone and timed). */
static unsigned way_of(struct vdemux_engine *e, struct vd_class_cost *cc, uint32_t nch, uint64_t *t0)
{
	switch (cc->phase) {
	case PH_PROBE:
		if (cc->b_seen)
			return cc->regime;
		cc->probe_timing = true;
		cc->probe_pages = nch;
		cc->probe_plan = 0;
		e->st.adaptive_probes++;
		*t0 = now_ns(&e->cost);
		return !cc->regime;
	case PH_WARM:
	case PH_MEASURE: e->st.adaptive_probes++; return !cc->regime;
	default: return cc->regime;
	}
}

bool vd_cost_decide(struct vdemux_engine *e, struct vm *vm, uint32_t len, uint32_t nch, uint64_t *t0)
{
	struct vd_vm_cost *vc = &vm->cost;
	struct vd_class_cost *cc;
	unsigned r;

	vc->decided = true;
	if (!vc->flipped_once) {
		/* the first flip of a VM pays for setting its tables up: make
		 * it now, before anything is measured */
		vc->flipped_once = true;
		e->st.adaptive_probes++;
		return false;
	}
	cc = &vc->cls[vd_cost_class(nch)];
	if (cc->phase == PH_UNSEEN)
		class_first(vm, cc, len, nch);
	cc->nch = nch;
	r = way_of(e, cc, nch, t0);
	/* counted for the batch now (a delivery refused after this is
	 * rare, and only blurs a sample) */
	cc->b_seen++;
	cc->b_pages += nch;
	cc->b_bytes += len;
	cc->b_regs |= (uint8_t)(1u << r);
	vc->b_classes |= (uint8_t)(1u << vd_cost_class(nch));
	if (!*t0 && ++vc->dtick >= (vc->dense || vc->batches < COST_SAMPLE_ALL ? PLAN_EVERY_PHASE
									       : COST_PLAN_EVERY)) {
		vc->dtick = 0;
		*t0 = now_ns(&e->cost);
	}
	return r == REG_COPY;
}

/* A planning sample in PH_REGIME. The first of a regime ran code and
 * touched data the regime had not yet: left out; of the next ones, the
 * cheapest; then the moving average. */
static void plan_sample(struct vd_class_cost *cc, double t)
{
	unsigned r = cc->regime;

	if (cc->plan_n[r] > SETTLE)
		track(&cc->plan[r], &cc->over[r], t);
	else if (cc->plan_n[r]++ && (cc->plan[r] <= 0 || t < cc->plan[r]))
		cc->plan[r] = t > 0 ? t : 1;
}

static void sum_plan(struct vd_phase_sums *ps, double t)
{
	ps->plan += t;
	ps->nplan++;
	if (t > ps->plan_max)
		ps->plan_max = t;
}

void vd_cost_planned(struct vdemux_engine *e, struct vm *vm, uint32_t nch, uint64_t t0)
{
	struct vd_class_cost *cc = &vm->cost.cls[vd_cost_class(nch)];
	double t = (double)(now_ns(&e->cost) - t0) - (double)e->cost.clock_ns;

	if (t < 0)
		t = 0;
	if (cc->probe_timing) {
		cc->probe_timing = false;
		cc->probe_plan = t;
		return;
	}
	switch (cc->phase) {
	case PH_PRE: sum_plan(&cc->pre, t); break;
	case PH_MEASURE: sum_plan(&cc->ph, t); break;
	case PH_RECOVER:
		cc->ph.plan += t;
		cc->ph.nplan++;
		break;
	case PH_REGIME: plan_sample(cc, t); break;
	default: break; /* FIRST_TOUCH, PROBE (but the probe), WARM: not measured */
	}
}

bool vd_cost_due(struct vm *vm)
{
	return vm->cost.decided && vm->cost.timing;
}

uint64_t vd_cost_clock(const struct vdemux_engine *e)
{
	return now_ns(&e->cost);
}

/* ---- transitions ---- */

/* The gap before the next trial of the way not taken: the extra cost of
 * the last one (its deliveries the dearer way, and what the deliveries
 * after it cost more while the state it left was replaced) over what the
 * class spends in between is TRIAL_BUDGET; after a trial that went past its
 * probe (@full), its deliveries the other way are at most TRIAL_SHARE of
 * the class's. */
static uint32_t trial_gap(const struct vdemux_engine *e, const struct vm *vm,
			  const struct vd_class_cost *cc, bool full)
{
	double cur = cost_of(e, &vm->cost, cc, cc->regime), gap;
	/* a trial that went past its probe sent two phases the other way */
	double least = full ? (2.0 * phase_len(vm, cc->nch) + 1) / TRIAL_SHARE : 0;

	if (cur <= 0 || !cc->samples[!cc->regime])
		return GAP_MIN;
	gap = cc->trial_cost / (TRIAL_BUDGET * cur);
	if (gap < least)
		gap = least;
	return gap < GAP_MIN ? GAP_MIN : gap > GAP_MAX ? GAP_MAX : (uint32_t)gap;
}

static void phase_reset(struct vd_class_cost *cc)
{
	memset(&cc->ph, 0, sizeof(cc->ph));
}

/* FIRST_TOUCH -> REGIME, the other way: the first touches cost more than
 * page faults could make them. This way is tried again soon (GAP_MIN): the
 * sample may still owe much to first touches, and a trial's probe is one
 * delivery; if that is as dear, the trial stops there and its cost sets
 * the next gap. */
static void first_touch_switch(struct vd_class_cost *cc, double ap, double o)
{
	unsigned used = cc->regime;

	cc->apply[used] = ap;
	cc->samples[used] = 1;
	cc->trial_cost = ap + cc->plan[used] - o;
	cc->regime = (uint8_t)!used;
	cc->until_trial = GAP_MIN;
	cc->phase = PH_REGIME;
}

/* REGIME -> PRE: a trial starts with a phase in the regime in force,
 * measured as the trial's will be: the two are compared, side by side in
 * time, rather than the trial with a moving average that may be stale or
 * off. */
static void trial_start(const struct vm *vm, struct vd_class_cost *cc)
{
	cc->phase = PH_PRE;
	cc->left = phase_len(vm, cc->nch);
	phase_reset(cc);
	memset(&cc->pre, 0, sizeof(cc->pre));
}

/* PROBE -> REGIME: the probe, @pc, was far dearer than @cur, a delivery in
 * the regime in force: it is the other way's measure, its extra cost the
 * trial's. */
static void probe_abort(struct vdemux_engine *e, struct vm *vm, struct vd_class_cost *cc, double pc,
			double cur)
{
	unsigned other = !cc->regime;

	cc->plan[other] = cc->probe_plan;
	cc->apply[other] = pc - cc->probe_plan;
	if (cc->samples[other] < UINT32_MAX)
		cc->samples[other]++;
	cc->phase = PH_REGIME;
	cc->check = false;
	cc->trial_cost = pc - cur;
	cc->until_trial = trial_gap(e, vm, cc, false);
}

/* The end of PROBE's batch: @pc, what the probe cost (negative: not timed:
 * probe again). Far dearer than the regime in force: stop; else -> WARM. */
static void probe_end(struct vdemux_engine *e, struct vm *vm, struct vd_class_cost *cc, double pc)
{
	double cur = cost_of(e, &vm->cost, cc, cc->regime);

	if (pc < 0)
		return;
	if (cur > 0 && pc > PROBE_ABORT * cur) {
		probe_abort(e, vm, cc, pc, cur);
		return;
	}
	cc->phase = PH_WARM;
	cc->left = phase_len(vm, cc->nch);
}

/* The mean of a phase's samples, without the dearest if there are three
 * or more (a fault or a preemption); @dflt without samples. */
static double trimmed(double sum, double max, uint32_t n, double dflt)
{
	if (!n)
		return dflt;
	return n >= 3 ? (sum - max) / (n - 1) : sum / n;
}

/* A trial's means become the estimates: MEASURE's of the other regime,
 * PRE's of the regime in force. */
static void trial_means(struct vd_class_cost *cc)
{
	unsigned other = !cc->regime, r = cc->regime;

	if (cc->ph.napply) {
		cc->apply[other] = trimmed(cc->ph.apply, cc->ph.apply_max, cc->ph.napply, 0);
		cc->plan[other] = trimmed(cc->ph.plan, cc->ph.plan_max, cc->ph.nplan, cc->plan[other]);
		if (cc->samples[other] < UINT32_MAX)
			cc->samples[other]++;
	}
	if (cc->pre.napply) {
		cc->apply[r] = trimmed(cc->pre.apply, cc->pre.apply_max, cc->pre.napply, 0);
		cc->plan[r] = trimmed(cc->pre.plan, cc->pre.plan_max, cc->pre.nplan, cc->plan[r]);
	}
	phase_reset(cc);
}

/* MEASURE (or WARM, cut short) -> REGIME in the tried way if it cost less
 * than SWITCH times the regime in force, else -> RECOVER. A change is
 * checked by a trial after GAP_MIN deliveries (two phases' measures can
 * mislead, and a wrong regime costs far more than a trial) unless it was
 * itself a check. */
static void trial_end(struct vdemux_engine *e, struct vm *vm, struct vd_class_cost *cc)
{
	const struct vd_vm_cost *vc = &vm->cost;
	unsigned other = !cc->regime;
	uint32_t len = phase_len(vm, cc->nch);
	double cur, tried;

	trial_means(cc);
	cur = cost_of(e, vc, cc, cc->regime);
	tried = cost_of(e, vc, cc, other);
	if (cc->samples[other] && tried < SWITCH * cur) {
		cc->regime = (uint8_t)other;
		cc->trial_cost = 2.0 * len * (cur - tried);
		cc->phase = PH_REGIME;
		cc->until_trial = cc->check ? 0 : GAP_MIN;
		cc->check = !cc->check;
		return;
	}
	cc->check = false;
	cc->trial_cost = tried > cur ? 2.0 * len * (tried - cur) : 0;
	cc->phase = PH_RECOVER;
	cc->left = len;
}

/* RECOVER -> REGIME: what its deliveries cost above the regime's estimate
 * is charged to the trial, and sets the gap to the next. */
static void recovery_end(struct vdemux_engine *e, struct vm *vm, struct vd_class_cost *cc)
{
	unsigned r = cc->regime;

	if (cc->ph.napply) {
		double m = cc->ph.apply / cc->ph.napply +
			   (cc->ph.nplan ? cc->ph.plan / cc->ph.nplan : cc->plan[r]);
		double cur = cost_of(e, &vm->cost, cc, r);

		if (cur > 0 && m > cur)
			cc->trial_cost += (m - cur) * phase_len(vm, cc->nch);
	}
	phase_reset(cc);
	cc->phase = PH_REGIME;
	cc->until_trial = trial_gap(e, vm, cc, true);
}

/* ---- a class's part of a finished batch, by phase ---- */

/* The batch's application share per delivery, @ap, is a sample of regime
 * @r: timed, and every delivery of the class in the batch went that way. */
static bool sample_of(const struct vd_class_cost *cc, double ap, unsigned r)
{
	return ap >= 0 && cc->b_regs == 1u << r;
}

static void sum_apply(struct vd_phase_sums *ps, double ap)
{
	ps->apply += ap;
	ps->napply++;
	if (ap > ps->apply_max)
		ps->apply_max = ap;
}

/* Counts the batch's deliveries off the phase: true when it is over. */
static bool count_down(struct vd_class_cost *cc)
{
	if (cc->b_seen < cc->left) {
		cc->left -= cc->b_seen;
		return false;
	}
	return true;
}

/* Not measured, unless dearer than the other way by more than page
 * faults could make it. */
static void first_touch_batch(const struct vdemux_engine *e, const struct vm *vm,
			      struct vd_class_cost *cc, double ap)
{
	unsigned r = cc->regime;
	double o = cost_of(e, &vm->cost, cc, !r);

	if (sample_of(cc, ap, r) && o > 0 && ap + cc->plan[r] > o + (double)cc->nch * FIRST_TOUCH_NS)
		first_touch_switch(cc, ap, o);
	else if (count_down(cc))
		cc->phase = PH_REGIME;
}

/* An application sample of the regime in force: the cheapest of the first
 * SETTLE, then the moving average. */
static void apply_sample(struct vd_class_cost *cc, double ap)
{
	unsigned r = cc->regime;

	if (cc->samples[r] < SETTLE && (cc->apply[r] <= 0 || ap < cc->apply[r]))
		cc->apply[r] = ap > 0 ? ap : 1;
	else if (cc->samples[r] >= SETTLE)
		track(&cc->apply[r], &cc->over[2 + r], ap);
	if (cc->samples[r] < UINT32_MAX)
		cc->samples[r]++;
}

/* Measured; a trial starts when the other way was never measured, or its
 * estimate (or the calibration) says it is cheaper now, or the gap is
 * over. */
static void regime_batch(const struct vdemux_engine *e, const struct vm *vm, struct vd_class_cost *cc,
			 double ap)
{
	const struct vd_vm_cost *vc = &vm->cost;
	double o = cost_of(e, vc, cc, !cc->regime), cur;

	if (sample_of(cc, ap, cc->regime))
		apply_sample(cc, ap);
	if (cc->samples[cc->regime] < SETTLE)
		return;
	cur = cost_of(e, vc, cc, cc->regime);
	if (o <= 0 || o < SWITCH * cur) {
		trial_start(vm, cc);
		return;
	}
	if (cc->until_trial == 0)
		cc->until_trial = trial_gap(e, vm, cc, true);
	if (cc->b_seen >= cc->until_trial)
		trial_start(vm, cc);
	else
		cc->until_trial -= cc->b_seen;
}

static void recover_batch(struct vdemux_engine *e, struct vm *vm, struct vd_class_cost *cc, double ap)
{
	if (sample_of(cc, ap, cc->regime)) {
		cc->ph.apply += ap;
		cc->ph.napply++;
	}
	if (count_down(cc))
		recovery_end(e, vm, cc);
}

static void pre_batch(struct vd_class_cost *cc, double ap)
{
	if (sample_of(cc, ap, cc->regime))
		sum_apply(&cc->pre, ap);
	if (count_down(cc))
		cc->phase = PH_PROBE;
}

/* WARM and MEASURE (measured in MEASURE only). Dearer than page faults
 * could make it: no need to go on (a trial of very slow tables stays
 * short). */
static void trial_batch(struct vdemux_engine *e, struct vm *vm, struct vd_class_cost *cc, double ap)
{
	unsigned other = !cc->regime;
	double cur = cost_of(e, &vm->cost, cc, cc->regime);
	bool sample = sample_of(cc, ap, other);

	if (sample && cur > 0 && ap + cc->plan[other] > cur + (double)cc->nch * FIRST_TOUCH_NS) {
		phase_reset(cc);
		cc->ph.apply = ap;
		cc->ph.napply = 1;
		trial_end(e, vm, cc);
		return;
	}
	if (cc->phase == PH_MEASURE && sample)
		sum_apply(&cc->ph, ap);
	if (!count_down(cc))
		return;
	if (cc->phase == PH_WARM) {
		cc->phase = PH_MEASURE;
		cc->left = phase_len(vm, cc->nch);
	} else {
		trial_end(e, vm, cc);
	}
}

/* ---- the end of a VM's batch ---- */

/* What the application of a VM's batch cost and how it splits. */
struct batch {
	bool timed;
	double apply;		/* ns, if timed */
	double rest;		/* ... less the completions of copied pages */
	uint32_t flips, copies; /* pages in it */
	uint32_t own_flip;	/* pages flipped by deliveries decided */
};

/* A copied page's share of the application is its completion; the flipped
 * pages share the rest. */
static void batch_split(const struct vd_cost *clk, struct vd_vm_cost *vc, struct batch *b, uint64_t t0,
			uint32_t flips, uint32_t copies)
{
	uint32_t own = 0, own_copy = 0;

	b->timed = t0 != 0;
	b->apply = b->timed ? (double)(now_ns(clk) - t0) : 0;
	b->flips = flips;
	b->copies = copies;
	b->own_flip = 0;
	if (b->timed && flips && vc->setup++ == 0)
		b->timed = false; /* the first flips of a VM pay for setting up */
	if (b->timed && !flips && copies)
		track(&vc->entry_ns, &vc->entry_over, b->apply / copies);
	for (unsigned c = 0; c < COST_CLASSES; c++) {
		const struct vd_class_cost *cc = &vc->cls[c];

		if (!(vc->b_classes >> c & 1u))
			continue;
		own += cc->b_pages;
		if (cc->b_regs == 1u << REG_COPY)
			own_copy += cc->b_pages;
		else if (cc->b_regs == 1u << REG_FLIP)
			b->own_flip += cc->b_pages;
	}
	b->rest = b->apply - vc->entry_ns * (double)(flips + copies > own ? flips + copies - own : 0) -
		  vc->entry_ns * own_copy;
}

/* A class's share of the application per delivery (negative: none). */
static double class_share(const struct vd_vm_cost *vc, const struct vd_class_cost *cc,
			  const struct batch *b)
{
	if (!b->timed)
		return -1;
	if (cc->b_regs == 1u << REG_COPY)
		return vc->entry_ns * cc->b_pages / cc->b_seen;
	if (cc->b_regs == 1u << REG_FLIP && b->own_flip)
		return (b->rest > 0 ? b->rest : 0) * cc->b_pages / b->own_flip / cc->b_seen;
	return -1;
}

/* The probe's cost: its planning and its application, a copied page's
 * completion or the flipped pages' share of what is left once the copied
 * pages' completions are taken out (negative: not timed). */
static double probe_cost(const struct vd_vm_cost *vc, const struct vd_class_cost *cc,
			 const struct batch *b)
{
	double left = b->apply - vc->entry_ns * b->copies;

	if (b->timed && cc->regime == REG_FLIP)
		return cc->probe_plan + vc->entry_ns * cc->probe_pages;
	if (b->timed && b->flips)
		return cc->probe_plan + (left > 0 ? left : 0) * cc->probe_pages / b->flips;
	return -1;
}

static void class_end(struct vdemux_engine *e, struct vm *vm, struct vd_class_cost *cc,
		      const struct batch *b)
{
	double ap;

	if (cc->phase == PH_PROBE) {
		probe_end(e, vm, cc, probe_cost(&vm->cost, cc, b));
		return;
	}
	ap = class_share(&vm->cost, cc, b);
	switch (cc->phase) {
	case PH_FIRST_TOUCH: first_touch_batch(e, vm, cc, ap); break;
	case PH_REGIME: regime_batch(e, vm, cc, ap); break;
	case PH_RECOVER: recover_batch(e, vm, cc, ap); break;
	case PH_PRE: pre_batch(cc, ap); break;
	default:
		trial_batch(e, vm, cc, ap); /* WARM, MEASURE */
		break;
	}
}

static void batch_reset(struct vd_class_cost *cc)
{
	cc->b_seen = cc->b_pages = 0;
	cc->b_bytes = 0;
	cc->b_regs = 0;
}

/* Every class of the batch in PH_REGIME, settled, its next trial not due,
 * all its deliveries in its regime: nothing to do but count. */
static bool steady(const struct vd_vm_cost *vc)
{
	for (unsigned c = 0; c < COST_CLASSES; c++) {
		const struct vd_class_cost *cc = &vc->cls[c];

		if (!(vc->b_classes >> c & 1u))
			continue;
		if (cc->phase != PH_REGIME || cc->samples[cc->regime] < SETTLE ||
		    cc->until_trial <= cc->b_seen || cc->b_regs != 1u << cc->regime)
			return false;
	}
	return true;
}

static void count_steady(struct vd_vm_cost *vc)
{
	for (unsigned c = 0; c < COST_CLASSES; c++) {
		struct vd_class_cost *cc = &vc->cls[c];

		if (!(vc->b_classes >> c & 1u))
			continue;
		cc->until_trial -= cc->b_seen;
		batch_reset(cc);
	}
	vc->b_classes = 0;
	vc->timing = ++vc->btick >= APPLY_EVERY;
	if (vc->timing)
		vc->btick = 0;
}

void vd_cost_end(struct vdemux_engine *e, struct vm *vm, uint64_t t0, uint32_t flips, uint32_t copies)
{
	struct vd_vm_cost *vc = &vm->cost;
	struct batch b;
	bool dense = false;

	vc->decided = false;
	if (!t0 && !vc->dense && vc->batches >= COST_SAMPLE_ALL && steady(vc)) {
		count_steady(vc); /* most batches: untimed, no class changing phase */
		return;
	}
	batch_split(&e->cost, vc, &b, t0, flips, copies);
	for (unsigned c = 0; c < COST_CLASSES; c++) {
		struct vd_class_cost *cc = &vc->cls[c];

		if (vc->b_classes >> c & 1u) {
			cc->mean_len += ((double)cc->b_bytes / cc->b_seen - cc->mean_len) / WEIGHT;
			class_end(e, vm, cc, &b);
			batch_reset(cc);
		}
		dense = dense || cc->phase >= PH_RECOVER;
	}
	vc->dense = dense;
	vc->b_classes = 0;
	if (vc->batches < COST_SAMPLE_ALL)
		vc->batches++;
	vc->timing = dense || vc->batches < COST_SAMPLE_ALL || ++vc->btick >= APPLY_EVERY;
	if (vc->timing)
		vc->btick = 0;
}

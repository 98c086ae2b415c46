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
 * around a sample of batches: tables, completions, the clearing of the
 * pages replaced). The regime with the lower cost is kept. The other is
 * measured by a trial: a turnover of the VM's posted buffers in the regime
 * in force, measured (what the trial is compared with), one delivery the
 * other way (far dearer: the trial ends there), then the class's
 * deliveries go the other way for as long as the VM takes to turn its
 * posted buffers over (not measured: the state the old regime left is
 * being replaced), then as long again, measured. A trial that changes the
 * regime is checked by another soon after.
 * What the trial cost, and what the deliveries after it cost more while
 * the state it left was replaced, set the gap to the next: its extra cost
 * is kept at 0.4% of what is spent, and a trial that ran its length waits
 * long enough for its deliveries the other way to be 0.4% of the class's
 * (a regime whose estimate turns dearer than the other's is tried against
 * it at once, whatever the gap). Before a class has a measure the
 * backend's threshold decides; before copies have been measured, memcpy
 * and memset timed at engine creation stand for them. Clock reads are few
 * (one delivery in COST_PLAN_EVERY, one batch in APPLY_EVERY, more during a
 * trial): on a nested virtual machine a read costs tens of nanoseconds. */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "core/cost.h"
#include "core/engine.h"

/* Moving averages of a regime's cost: a sample moves the estimate by
 * 1/WEIGHT (the mean is what throughput pays); a sample beyond OUTLIER
 * times the estimate is clipped (a page fault or a preemption says nothing
 * about the way frames are delivered), unless OUTLIER_RUN come in a row. */
#define WEIGHT 8.0
#define OUTLIER 2.0
#define OUTLIER_RUN 3u
/* Sampling: the first COST_SAMPLE_ALL batches of a VM and the deliveries and
 * batches of a trial and of the phase after it are sampled densely (every
 * batch, one delivery in PLAN_EVERY_PHASE); otherwise one delivery in
 * COST_PLAN_EVERY, one batch in APPLY_EVERY. */
#define PLAN_EVERY_PHASE 8u
#define APPLY_EVERY 32u
/* Application samples of the regime in force before it is compared. */
#define SETTLE 2u
/* The other regime is tried at once when its estimate falls below this
 * fraction of the current one's; a trial's regime is kept when it cost
 * less than this fraction. */
#define SWITCH 0.97
/* What touching a page for the first time may cost (a page fault of a
 * nested guest, with margin): the first deliveries of a class, or a
 * trial's, may be dearer by this much per page before they say anything. */
#define FIRST_TOUCH_NS 20000.0
/* Trial budget: the extra cost of trials, as the engine measures it, over
 * what is spent. A trial also disturbs what is not charged to it (other
 * VMs' deliveries, the pool's runs of free pages): on the simulated MMU a
 * budget of 1% left the policy 6-8% behind flip-only at 4 and 9 KB, one of
 * 0.4% about 4%. Then the bounds of the gap between trials, in deliveries
 * of the class, and of each phase of a trial, in deliveries. */
#define TRIAL_BUDGET 0.004
/* Trial share: a trial that ran its length (went past its probe) is
 * followed by a gap of at least its deliveries the other way over this.
 * What a trial disturbs and the engine does not charge to it (the cache,
 * the pool's runs, other VMs) goes with its length more than with the
 * extra cost it measures: where the two regimes cost nearly the same, the
 * budget alone let trials come every few thousand deliveries (at 9000
 * bytes on the simulated MMU, 1.5 to 1.9% of them the other way: a median
 * of 0.94 of flip-only's speed in 6 runs; 0.97 with this share). */
#define TRIAL_SHARE 0.004
#define GAP_MIN 64u
#define GAP_MAX (1u << 24)
#define PHASE_MIN 4u
#define PHASE_MAX 512u
/* A trial starts with one delivery the other way: if that costs more than
 * PROBE_ABORT times a delivery in the regime in force, the trial stops
 * there (tables that cost tens of times a copy are not tried at length). */
#define PROBE_ABORT 4.0

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void calibrate(struct vd_cost *c)
{
	uint8_t *src = c->scratch, *dst = c->scratch + COST_SCRATCH;
	uint64_t cp = UINT64_MAX, cl = UINT64_MAX;

	for (int i = 0; i < 3; i++) {
		uint64_t t0, t1, t2;

		t0 = now_ns();
		memcpy(dst, src, COST_SCRATCH);
		/* keep the copy: the memset below would make it dead */
		__asm__ __volatile__("" : : "r"(dst) : "memory");
		t1 = now_ns();
		memset(dst, 0, COST_SCRATCH);
		__asm__ __volatile__("" : : "r"(dst) : "memory");
		t2 = now_ns();
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
		uint64_t t0 = now_ns(), t1 = now_ns();

		if (t1 - t0 < c->clock_ns)
			c->clock_ns = t1 - t0;
	}
}

int vd_cost_init(struct vd_cost *c, const struct vdemux_alloc_hooks *alloc)
{
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

/* A phase of a trial: as many deliveries as the VM has buffers posted
 * for this class (they turn over in that many), within bounds. */
static uint32_t phase_len(const struct vm *vm, uint32_t nch)
{
	uint32_t n = vm->postq.count / (nch ? nch : 1);

	return n < PHASE_MIN ? PHASE_MIN : n > PHASE_MAX ? PHASE_MAX : n;
}

bool vd_cost_decide(struct vdemux_engine *e, struct vm *vm, uint32_t len, uint32_t nch,
		    uint64_t *t0)
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
	if (!cc->seen) {
		/* its first deliveries touch the VM's buffers for the first
		 * time: they are not measured */
		cc->seen = true;
		cc->regime = len <= vc->prior ? REG_COPY : REG_FLIP;
		cc->mean_len = len;
		cc->nch = nch;
		cc->skip = 2 * phase_len(vm, nch);
	}
	cc->nch = nch;
	r = cc->regime;
	if (cc->trial == TRIAL_PROBE) {
		if (!cc->probe_out) {
			/* the trial's first delivery, alone, and timed */
			cc->probe_out = true;
			cc->probe_timing = true;
			cc->probe_pages = nch;
			cc->probe_plan = 0;
			r = !r;
			e->st.adaptive_probes++;
			*t0 = now_ns();
		}
	} else if (cc->trial > TRIAL_PROBE) {
		r = !r;
		e->st.adaptive_probes++;
	}
	/* counted for the batch now (a delivery refused after this is
	 * rare, and only blurs a sample) */
	cc->b_seen++;
	cc->b_pages += nch;
	cc->b_bytes += len;
	cc->b_regs |= (uint8_t)(1u << r);
	vc->b_classes |= (uint8_t)(1u << vd_cost_class(nch));
	if (!*t0 && ++vc->dtick >= (vc->phase || vc->batches < COST_SAMPLE_ALL ? PLAN_EVERY_PHASE
									      : COST_PLAN_EVERY)) {
		vc->dtick = 0;
		*t0 = now_ns();
	}
	return r == REG_COPY;
}

void vd_cost_planned(struct vdemux_engine *e, struct vm *vm, uint32_t nch, uint64_t t0)
{
	struct vd_class_cost *cc = &vm->cost.cls[vd_cost_class(nch)];
	unsigned used = cc->trial > TRIAL_PROBE ? !cc->regime : cc->regime;
	double t = (double)(now_ns() - t0) - (double)e->cost.clock_ns;

	if (t < 0)
		t = 0;
	if (cc->probe_timing) {
		cc->probe_timing = false;
		cc->probe_plan = t;
		return;
	}
	if (cc->trial == TRIAL_MEASURE || cc->trial == TRIAL_PRE) {
		struct vd_phase_sums *ps = cc->trial == TRIAL_PRE ? &cc->pre : &cc->ph;

		ps->plan += t;
		ps->nplan++;
		if (t > ps->plan_max)
			ps->plan_max = t;
	} else if (cc->trial == TRIAL_NONE && !cc->skip) {
		if (cc->recover) {
			cc->ph.plan += t;
			cc->ph.nplan++;
		} else if (cc->plan_n[used] <= SETTLE) {
			/* the first sample of a regime's planning ran code
			 * and touched data the regime had not yet: left out;
			 * of the next ones, the cheapest */
			if (cc->plan_n[used]++ && (cc->plan[used] <= 0 || t < cc->plan[used]))
				cc->plan[used] = t > 0 ? t : 1;
		} else {
			track(&cc->plan[used], &cc->over[used], t);
		}
	}
}

bool vd_cost_due(struct vm *vm)
{
	return vm->cost.decided && vm->cost.timing;
}

uint64_t vd_cost_clock(void)
{
	return now_ns();
}

/* The gap before the next trial of the way not taken: the extra cost of
 * the last one (its deliveries the dearer way, and what the deliveries
 * after it cost more while the state it left was replaced) over what the
 * class spends in between is TRIAL_BUDGET. */
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

/* A trial starts with a phase in the regime in force, measured as the
 * trial's will be: the two are compared, side by side in time, rather than
 * the trial with a moving average that may be stale or off. */
static void trial_start(const struct vm *vm, struct vd_class_cost *cc)
{
	cc->trial = TRIAL_PRE;
	cc->left = phase_len(vm, cc->nch);
	cc->probe_out = false;
	phase_reset(cc);
	memset(&cc->pre, 0, sizeof(cc->pre));
}

/* The mean of a phase's samples, without the dearest if there are three
 * or more (a fault or a preemption); @dflt without samples. */
static double trimmed(double sum, double max, uint32_t n, double dflt)
{
	if (!n)
		return dflt;
	return n >= 3 ? (sum - max) / (n - 1) : sum / n;
}

/* The end of a batch with the probe of a trial: @pc, what the probe cost
 * (negative: not timed). Far dearer than the regime in force: stop;
 * else the trial goes on with every delivery of the class. */
static void probe_end(struct vdemux_engine *e, struct vm *vm, struct vd_class_cost *cc, double pc)
{
	struct vd_vm_cost *vc = &vm->cost;
	unsigned other = !cc->regime;
	double cur = cost_of(e, vc, cc, cc->regime);

	cc->probe_out = false;
	if (pc < 0)
		return; /* not timed: probe again */
	if (cur > 0 && pc > PROBE_ABORT * cur) {
		cc->plan[other] = cc->probe_plan;
		cc->apply[other] = pc - cc->probe_plan;
		if (cc->samples[other] < UINT32_MAX)
			cc->samples[other]++;
		cc->trial = TRIAL_NONE;
		cc->confirm = false;
		cc->trial_cost = pc - cur;
		cc->until_trial = trial_gap(e, vm, cc, false);
		return;
	}
	cc->trial = TRIAL_WARM;
	cc->left = phase_len(vm, cc->nch);
}

/* The trial is over: its means are the other regime's costs now; keep the
 * cheaper regime. Back in the old one, the phase after the trial is
 * measured to charge it what it left behind. */
static void trial_end(struct vdemux_engine *e, struct vm *vm, struct vd_class_cost *cc)
{
	struct vd_vm_cost *vc = &vm->cost;
	unsigned other = !cc->regime;
	uint32_t len = phase_len(vm, cc->nch);
	double cur, tried;

	bool confirming = cc->confirm;

	cc->trial = TRIAL_NONE;
	cc->confirm = false;
	if (cc->ph.napply) {
		cc->apply[other] = trimmed(cc->ph.apply, cc->ph.apply_max, cc->ph.napply, 0);
		cc->plan[other] = trimmed(cc->ph.plan, cc->ph.plan_max, cc->ph.nplan, cc->plan[other]);
		if (cc->samples[other] < UINT32_MAX)
			cc->samples[other]++;
	}
	if (cc->pre.napply) {
		/* the regime in force, as measured just before */
		unsigned r = cc->regime;

		cc->apply[r] = trimmed(cc->pre.apply, cc->pre.apply_max, cc->pre.napply, 0);
		cc->plan[r] = trimmed(cc->pre.plan, cc->pre.plan_max, cc->pre.nplan, cc->plan[r]);
	}
	phase_reset(cc);
	cur = cost_of(e, vc, cc, cc->regime);
	tried = cost_of(e, vc, cc, other);
	if (cc->samples[other] && tried < SWITCH * cur) {
		/* the trial's measured half was in the new regime's state
		 * already: its estimate stands. Two phases' measures can
		 * still mislead, and a wrong regime costs far more than a
		 * trial: unless this trial was itself a check, the old
		 * regime is tried again soon */
		cc->regime = (uint8_t)other;
		cc->trial_cost = 2.0 * len * (cur - tried);
		cc->confirm = !confirming;
		cc->until_trial = confirming ? 0 : GAP_MIN;
		return;
	}
	cc->trial_cost = tried > cur ? 2.0 * len * (tried - cur) : 0;
	cc->recover = len;
	cc->until_trial = trial_gap(e, vm, cc, true);
}

/* The phase after a trial is over: what its deliveries cost above the
 * regime's estimate is charged to the trial. */
static void recovery_end(struct vdemux_engine *e, struct vm *vm, struct vd_class_cost *cc)
{
	struct vd_vm_cost *vc = &vm->cost;
	unsigned r = cc->regime;

	cc->recover = 0;
	if (cc->ph.napply) {
		double m = cc->ph.apply / cc->ph.napply +
			   (cc->ph.nplan ? cc->ph.plan / cc->ph.nplan : cc->plan[r]);
		double cur = cost_of(e, vc, cc, r);

		if (cur > 0 && m > cur)
			cc->trial_cost += (m - cur) * phase_len(vm, cc->nch);
	}
	phase_reset(cc);
	cc->until_trial = trial_gap(e, vm, cc, true);
}

/* One class's part of a finished batch: @ap, its application's share per
 * delivery if timed (negative: not). */
static void class_end(struct vdemux_engine *e, struct vm *vm, struct vd_class_cost *cc, double ap)
{
	struct vd_vm_cost *vc = &vm->cost;
	unsigned used = cc->b_regs & 1u ? REG_COPY : REG_FLIP, other = !cc->regime;
	bool ok = cc->b_regs != 3u && ap >= 0; /* one regime, timed */
	uint32_t n = cc->b_seen;
	double cur = cost_of(e, vc, cc, cc->regime), o;

	if (cc->trial == TRIAL_PRE) {
		if (ok && used == cc->regime) {
			cc->pre.apply += ap;
			cc->pre.napply++;
			if (ap > cc->pre.apply_max)
				cc->pre.apply_max = ap;
		}
		if (n < cc->left) {
			cc->left -= n;
		} else {
			cc->trial = TRIAL_PROBE;
			cc->probe_out = false;
		}
		return;
	}
	if (cc->trial != TRIAL_NONE) {
		if (ok && used == other && cur > 0 &&
		    ap + cc->plan[other] > cur + (double)cc->nch * FIRST_TOUCH_NS) {
			/* dearer than page faults could make it: no need to
			 * go on (a trial of very slow tables stays short) */
			phase_reset(cc);
			cc->ph.apply = ap;
			cc->ph.napply = 1;
			trial_end(e, vm, cc);
			return;
		}
		if (cc->trial == TRIAL_MEASURE && ok && used == other) {
			cc->ph.apply += ap;
			cc->ph.napply++;
			if (ap > cc->ph.apply_max)
				cc->ph.apply_max = ap;
		}
		if (n < cc->left) {
			cc->left -= n;
		} else if (cc->trial == TRIAL_WARM) {
			cc->trial = TRIAL_MEASURE;
			cc->left = phase_len(vm, cc->nch);
		} else {
			trial_end(e, vm, cc);
		}
		return;
	}
	ok = ok && used == cc->regime;
	o = cost_of(e, vc, cc, other);
	if (cc->skip) {
		/* first touch: not measured, unless dearer than the other way
		 * by more than page faults could make it: then take the other
		 * way at once (no trial needed), and try this one again soon */
		if (ok && o > 0 && ap + cc->plan[used] > o + (double)cc->nch * FIRST_TOUCH_NS) {
			cc->skip = 0;
			cc->apply[used] = ap;
			cc->samples[used] = 1;
			/* tried again soon: first touches may have made this
			 * sample dearer than the way is, and a trial's probe
			 * is one delivery; if that is as dear, the trial stops
			 * there and its cost sets the next gap (a gap set by
			 * this sample kept a VM copying for 400,000 deliveries
			 * where flipping was 20% cheaper) */
			cc->trial_cost = ap + cc->plan[used] - o;
			cc->regime = (uint8_t)other;
			cc->until_trial = GAP_MIN;
			return;
		}
		cc->skip -= n < cc->skip ? n : cc->skip;
		return;
	}
	if (cc->recover) {
		if (ok) {
			cc->ph.apply += ap;
			cc->ph.napply++;
		}
		if (n < cc->recover)
			cc->recover -= n;
		else
			recovery_end(e, vm, cc);
		return;
	}
	if (ok) {
		/* the first samples of a regime: the cheapest (what is left
		 * of a transient makes the others dearer), then the mean */
		if (cc->samples[used] < SETTLE && (cc->apply[used] <= 0 || ap < cc->apply[used]))
			cc->apply[used] = ap > 0 ? ap : 1;
		else if (cc->samples[used] >= SETTLE)
			track(&cc->apply[used], &cc->over[2 + used], ap);
		if (cc->samples[used] < UINT32_MAX)
			cc->samples[used]++;
	}
	if (cc->samples[cc->regime] < SETTLE)
		return;
	cur = cost_of(e, vc, cc, cc->regime);
	if (o <= 0 || o < SWITCH * cur) {
		/* the other way was never measured, or its last measure (or
		 * the calibration) says it is cheaper now: try it */
		trial_start(vm, cc);
		return;
	}
	if (cc->until_trial == 0)
		cc->until_trial = trial_gap(e, vm, cc, true);
	if (n >= cc->until_trial)
		trial_start(vm, cc);
	else
		cc->until_trial -= n;
}

static void batch_reset(struct vd_class_cost *cc)
{
	cc->b_seen = cc->b_pages = 0;
	cc->b_bytes = 0;
	cc->b_regs = 0;
}

/* Every class of the batch in its regime, in no trial or phase, its next
 * trial not due: nothing to do but count. */
static bool steady(const struct vd_vm_cost *vc)
{
	for (unsigned c = 0; c < COST_CLASSES; c++) {
		const struct vd_class_cost *cc = &vc->cls[c];

		if (!(vc->b_classes >> c & 1u))
			continue;
		if (!cc->seen || cc->trial != TRIAL_NONE || cc->skip || cc->recover ||
		    cc->samples[cc->regime] < SETTLE || cc->until_trial <= cc->b_seen ||
		    cc->b_regs != 1u << cc->regime)
			return false;
	}
	return true;
}

void vd_cost_end(struct vdemux_engine *e, struct vm *vm, uint64_t t0, uint32_t flips,
		 uint32_t copies)
{
	struct vd_vm_cost *vc = &vm->cost;
	double apply, rest;
	uint32_t own = 0, own_copy = 0, own_flip = 0;
	bool timed = t0 != 0, phase = false;

	vc->decided = false;
	if (!timed && !vc->phase && vc->batches >= COST_SAMPLE_ALL && steady(vc)) {
		/* most batches: untimed, no class changing state */
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
		return;
	}
	apply = timed ? (double)(now_ns() - t0) : 0;
	if (timed && flips && vc->setup++ == 0)
		timed = false; /* the first flips of a VM pay for setting up */
	if (timed && !flips && copies)
		track(&vc->entry_ns, &vc->entry_over, apply / copies); /* completing a copied page */
	/* The application's share of the deliveries decided: what is left
	 * once the other pages' completions are taken out; a copied page's
	 * share is its completion, the flipped pages share the rest. */
	for (unsigned c = 0; c < COST_CLASSES; c++) {
		const struct vd_class_cost *cc = &vc->cls[c];

		if (!(vc->b_classes >> c & 1u))
			continue;
		own += cc->b_pages;
		if (cc->b_regs == 1u << REG_COPY)
			own_copy += cc->b_pages;
		else if (cc->b_regs == 1u << REG_FLIP)
			own_flip += cc->b_pages;
	}
	rest = apply - vc->entry_ns * (double)(flips + copies > own ? flips + copies - own : 0) -
	       vc->entry_ns * own_copy;
	for (unsigned c = 0; c < COST_CLASSES; c++) {
		struct vd_class_cost *cc = &vc->cls[c];
		double ap = -1;

		if (!(vc->b_classes >> c & 1u)) {
			phase = phase || cc->trial != TRIAL_NONE || cc->recover;
			continue;
		}
		cc->mean_len += ((double)cc->b_bytes / cc->b_seen - cc->mean_len) / WEIGHT;
		if (timed && cc->seen) {
			if (cc->b_regs == 1u << REG_COPY)
				ap = vc->entry_ns * cc->b_pages / cc->b_seen;
			else if (cc->b_regs == 1u << REG_FLIP && own_flip)
				ap = (rest > 0 ? rest : 0) * cc->b_pages / own_flip / cc->b_seen;
		}
		if (cc->trial == TRIAL_PROBE && cc->probe_out) {
			/* the probe's application: a copied page's completion,
			 * or the flipped pages' share of what is left once the
			 * copied pages' completions are taken out */
			double pc = -1;

			if (timed && cc->regime == REG_FLIP)
				pc = cc->probe_plan + vc->entry_ns * cc->probe_pages;
			else if (timed && flips)
				pc = cc->probe_plan +
				     (apply - vc->entry_ns * copies > 0 ? apply - vc->entry_ns * copies : 0) *
					     cc->probe_pages / flips;
			probe_end(e, vm, cc, pc);
		} else if (cc->seen) {
			class_end(e, vm, cc, ap);
		}
		if (cc->trial != TRIAL_NONE || cc->recover)
			phase = true;
		batch_reset(cc);
	}
	vc->phase = phase;
	vc->b_classes = 0;
	if (vc->batches < COST_SAMPLE_ALL)
		vc->batches++;
	vc->timing = phase || vc->batches < COST_SAMPLE_ALL || ++vc->btick >= APPLY_EVERY;
	if (vc->timing)
		vc->btick = 0;
}

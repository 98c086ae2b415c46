/* The adaptive copy policy: copy or flip each delivery by the costs the
 * engine observes.
 *
 * A frame in the caller's memory (vdemux_rx_burst), or a replica, or a
 * frame whose tag is edited, would have to be copied into fresh pool pages
 * before it could be flipped: a copy into the posted buffer does strictly
 * less work, so it is always copied where the buffer is still mapped. The
 * trade-off is for a frame already in pool pages (vdemux_rx_submit):
 *
 *   copy: memcpy of its bytes into the VM's page, and the clearing of those
 *         bytes in the pool page when it goes back to the pool;
 *   flip: the table update (one run of contiguous pages per backend call
 *         where the backend merges them) and the clearing of the whole page
 *         it replaces, which goes back to the pool.
 *
 * The copy side is timed with memcpy and memset on this machine; the flip
 * side is what applying the VM's flips actually took (tables, completion,
 * the harvest of the replaced pages), per page, by the run length of the
 * VM's own batches. Batches are timed with one clock pair each, a sample of
 * them only; deliveries never read the clock. Flips the model would not
 * make are probed now and then so that the fit follows the machine: the
 * gap between probes keeps their extra cost near 1% of what is copied. */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "core/cost.h"
#include "core/engine.h"
#include "core/frame.h"

/* Moving averages: a sample above the estimate moves it by 1/16 (a fault
 * or a preemption should not make flips look dear for long), one below by
 * 1/2 (the cost the tables can be had for is found quickly). */
#define RISE 16.0
#define FALL 2.0
/* Batches timed before sampling thins out, then one in SAMPLE_EVERY. */
#define SAMPLE_ALL 16u
#define SAMPLE_EVERY 8u
/* Until this many samples the model is not trusted: the prior decides and
 * a flip is made every WARMUP_GAP deliveries to measure. */
#define WARMUP_SAMPLES 4u
#define WARMUP_GAP 32u
/* Probe budget: extra cost of probes over what is copied, and the bounds of
 * the gap between probes, in deliveries. */
#define PROBE_BUDGET 0.01
#define PROBE_GAP_MIN 64u
#define PROBE_GAP_MAX (1u << 24)
/* A probe makes every delivery of one whole batch of the VM the other way:
 * flips then share the batch's fixed costs and caches as they would if the
 * model chose them (a lone flip among copies pays a whole batch and would
 * make flipping look dearer than it is). */
enum { PROBE_NONE, PROBE_ARMED, PROBE_ACTIVE };
/* The first samples of each class are taken at their minimum. */
#define FIRST_MIN 8u
/* A timed batch longer than this many times the prediction is clipped:
 * a page fault or a preemption says nothing about the table. */
#define OUTLIER 8.0
/* One copied chunk (of a frame in pool pages) in this many is timed; only
 * chunks of at least CHUNK_MIN bytes teach the cost per byte (in shorter
 * ones the fixed cost of a call dominates; and a short frame is copied
 * whatever the tables cost, a flip clearing a whole page). */
#define CHUNK_SAMPLE 64u
#define CHUNK_MIN 1024u

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
	double cpb, clb;

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
	cpb = (double)(cp ? cp : 1) / COST_SCRATCH;
	clb = (double)(cl ? cl : 1) / COST_SCRATCH;
	c->copy_ns_byte = cpb;
	c->clear_ns_byte = clb;
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

/* Move an estimate towards a sample: fast down, slowly up, and never by
 * more than OUTLIER times itself. */
static void track(double *est, double t)
{
	if (t < *est)
		*est += (t - *est) / FALL;
	else
		*est += ((t > OUTLIER * *est ? OUTLIER * *est : t) - *est) / RISE;
}

uint64_t vd_cost_chunk_begin(struct vdemux_engine *e, const struct vm *vm, bool own_pages,
			     uint32_t bytes)
{
	/* every chunk of a probe that copies: that is what it is for */
	if (!own_pages || bytes < CHUNK_MIN ||
	    (++e->cost.chunk_tick < CHUNK_SAMPLE &&
	     !(vm->cost.probe == PROBE_ACTIVE && vm->cost.probe_copy)))
		return 0;
	e->cost.chunk_tick = 0;
	return now_ns();
}

void vd_cost_chunk_end(struct vdemux_engine *e, uint64_t t0, uint32_t bytes)
{
	struct vd_cost *c = &e->cost;
	double t;

	if (!t0 || bytes < CHUNK_MIN)
		return;
	t = (double)(now_ns() - t0) - c->clock_ns;
	t = (t > 0 ? t : 0) / bytes;
	/* the first copies into a page may fault it in: no more than the
	 * calibrated cost allows for a start */
	if (c->chunk_ns_byte <= 0)
		c->chunk_ns_byte = (c->copy_ns_byte + c->clear_ns_byte) * OUTLIER;
	track(&c->chunk_ns_byte, t);
}

void vd_vm_cost_init(struct vd_vm_cost *vc, bool adaptive, uint32_t prior)
{
	memset(vc, 0, sizeof(*vc));
	vc->adaptive = adaptive;
	vc->prior = prior;
}

static unsigned run_class(double pages_per_run)
{
	unsigned c = 0;

	while (c + 1 < COST_RUN_CLASSES && pages_per_run >= (double)(2u << c))
		c++;
	return c;
}

/* ns per page for runs of class c: its own estimate, else the nearest
 * measured class (shorter runs first: they cost at least as much). */
static double page_cost(const struct vd_vm_cost *vc, unsigned c)
{
	for (unsigned d = 0; d < COST_RUN_CLASSES; d++) {
		if (c >= d && vc->page_ns[c - d] > 0)
			return vc->page_ns[c - d];
		if (c + d < COST_RUN_CLASSES && vc->page_ns[c + d] > 0)
			return vc->page_ns[c + d];
	}
	return 0;
}

/* Runs of contiguous (GPA, page) pairs if this delivery is flipped: the
 * next posted slots against the frame's own pages. */
static uint32_t delivery_runs(const struct vm *vm, const uint32_t *pages, uint32_t nch)
{
	uint32_t runs = 1, prev = vd_postq_peek(&vm->postq, 0);

	for (uint32_t i = 1; i < nch; i++) {
		uint32_t s = vd_postq_peek(&vm->postq, i);

		if (s != prev + 1 || pages[i] != pages[i - 1] + 1)
			runs++;
		prev = s;
	}
	return runs;
}

/* The gap, in deliveries, that keeps the extra cost of probing the dearer
 * way near the budget. Close costs are probed often (a wrong estimate near
 * the crossover is found soon); a way that costs hundreds of times the
 * other is probed rarely, which is what the budget is for. */
static uint32_t probe_gap(double cheap, double dear)
{
	double gap = (dear - cheap) / (PROBE_BUDGET * (cheap > 1.0 ? cheap : 1.0));

	if (gap < PROBE_GAP_MIN)
		return PROBE_GAP_MIN;
	if (gap > PROBE_GAP_MAX)
		return PROBE_GAP_MAX;
	return (uint32_t)gap;
}

bool vd_cost_copy(struct vdemux_engine *e, struct vm *vm, const struct vd_src *src, uint32_t len,
		  uint32_t nch, bool own_pages)
{
	struct vd_vm_cost *vc = &vm->cost;
	const struct vd_cost *c = &e->cost;
	double copy, flip;
	bool want_copy;

	/* Frames from memory; and short frames: flipping clears the whole
	 * page it replaces, more work than copying and clearing half a page. */
	if (!own_pages || len <= PAGE / 2)
		return true;
	vc->decided = true;
	vc->batch_decisions++;
	if (vc->probe == PROBE_ACTIVE) {
		e->st.adaptive_probes++;
		return vc->probe_copy;
	}
	if (vc->samples < WARMUP_SAMPLES) {
		if (vc->until_probe == 0) {
			vc->until_probe = WARMUP_GAP;
			e->st.adaptive_probes++;
			return false;
		}
		vc->until_probe--;
		return len <= vc->prior;
	}
	copy = (double)len * (c->chunk_ns_byte > 0 ? c->chunk_ns_byte
						   : c->copy_ns_byte + c->clear_ns_byte);
	flip = page_cost(vc, run_class((double)nch / delivery_runs(vm, src->pages, nch))) * nch;
	want_copy = copy <= flip;
	if (!vc->modelled) {
		/* warm-up just measured both ways: the first probe is a whole
		 * budget away */
		double cheap = want_copy ? copy : flip, dear = want_copy ? flip : copy;
		uint64_t gap = (uint64_t)probe_gap(cheap, dear) * (vc->last_batch ? vc->last_batch : 1);

		vc->modelled = true;
		vc->chose_copy = want_copy;
		vc->until_probe = gap > PROBE_GAP_MAX ? PROBE_GAP_MAX : (uint32_t)gap;
	}
	if (want_copy != vc->chose_copy) {
		/* the model changed its mind: probe the other way soon */
		vc->chose_copy = want_copy;
		if (vc->until_probe > PROBE_GAP_MIN)
			vc->until_probe = PROBE_GAP_MIN;
	}
	if (vc->until_probe == 0 && vc->probe == PROBE_NONE) {
		/* the next batch goes the other way, to measure it again; the
		 * gap pays for a batch as long as the last one */
		double cheap = want_copy ? copy : flip, dear = want_copy ? flip : copy;

		uint64_t gap = (uint64_t)probe_gap(cheap, dear) * (vc->last_batch ? vc->last_batch : 1);

		vc->until_probe = gap > PROBE_GAP_MAX ? PROBE_GAP_MAX : (uint32_t)gap;
		vc->probe = PROBE_ARMED;
		vc->probe_copy = !want_copy;
	} else if (vc->until_probe) {
		vc->until_probe--;
	}
	return want_copy;
}

bool vd_cost_due(struct vm *vm)
{
	struct vd_vm_cost *vc = &vm->cost;

	bool probed = vc->probe == PROBE_ACTIVE;

	/* only VMs that had a choice to make: frames from memory need none */
	if (!vc->decided)
		return false;
	vc->decided = false;
	vc->last_batch = vc->batch_decisions;
	vc->batch_decisions = 0;
	/* a probe covers the batch planned after the one it was armed in */
	if (vc->probe == PROBE_ARMED)
		vc->probe = PROBE_ACTIVE;
	else if (probed)
		vc->probe = PROBE_NONE;
	if (!probed && vc->timed >= SAMPLE_ALL && ++vc->tick < SAMPLE_EVERY)
		return false;
	vc->tick = 0;
	if (vc->timed < SAMPLE_ALL)
		vc->timed++;
	return true;
}

uint64_t vd_cost_clock(void)
{
	return now_ns();
}

void vd_cost_end(struct vm *vm, uint64_t t0, uint32_t runs, uint32_t pages, uint32_t copies)
{
	struct vd_vm_cost *vc = &vm->cost;
	double t = (double)(vd_cost_clock() - t0), *est;
	unsigned cls;

	if (!pages) {
		/* copies only: what completing a copied chunk costs, which a
		 * flip's time includes too */
		if (copies) {
			t /= copies;
			if (vc->entry_ns <= 0)
				vc->entry_ns = t;
			else
				track(&vc->entry_ns, t);
		}
		return;
	}
	if (vc->samples++ == 0)
		return; /* the first flips of a VM pay for setting things up */
	t -= copies * vc->entry_ns;
	t = (t > 0 ? t : 0) / pages;
	cls = run_class((double)pages / runs);
	est = &vc->page_ns[cls];
	if (*est <= 0) {
		/* a new class starts from its first sample, bounded by what
		 * the nearest measured class says */
		double near = page_cost(vc, cls);

		*est = near > 0 && t > OUTLIER * near ? OUTLIER * near : t > 0 ? t : 1;
	} else if (vc->class_samples[cls] < FIRST_MIN) {
		/* the first batches of a VM fault pages in: what they cost at
		 * least is the better guess */
		if (t < *est)
			*est = t > 0 ? t : 1;
	} else {
		track(est, t);
	}
	if (vc->class_samples[cls] < FIRST_MIN)
		vc->class_samples[cls]++;
}

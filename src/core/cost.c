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
 * the harvest of the replaced pages), fitted per run and per page over the
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

/* Weight kept by the sums at each new sample: about the last 16 batches. */
#define FIT_KEEP (15.0 / 16.0)
/* Batches timed before sampling thins out, then one in SAMPLE_EVERY. */
#define SAMPLE_ALL 16u
#define SAMPLE_EVERY 4u
/* Until this many samples the model is not trusted: the prior decides and
 * a flip is made every WARMUP_GAP deliveries to measure. */
#define WARMUP_SAMPLES 4u
#define WARMUP_GAP 32u
/* Probe budget: extra cost of probes over what is copied, and the bounds of
 * the gap between probes, in deliveries. */
#define PROBE_BUDGET 0.01
#define PROBE_GAP_MIN 64u
#define PROBE_GAP_MAX (1u << 24)
/* A timed batch longer than this many times the prediction is clipped:
 * a page fault or a preemption says nothing about the table. */
#define OUTLIER 8.0
/* Calibrate memcpy and memset again after this many ns (checked once per
 * CAL_CHECK applied plans). */
#define CAL_PERIOD_NS 1000000000ull
#define CAL_CHECK 1024u

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void calibrate(struct vd_cost *c, bool first)
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
	if (first) {
		c->copy_ns_byte = cpb;
		c->clear_ns_byte = clb;
	} else {
		c->copy_ns_byte += (cpb - c->copy_ns_byte) / 4;
		c->clear_ns_byte += (clb - c->clear_ns_byte) / 4;
	}
	c->last_cal = now_ns();
}

int vd_cost_init(struct vd_cost *c, const struct vdemux_alloc_hooks *alloc)
{
	c->scratch = vd_calloc(alloc, 2, COST_SCRATCH);
	if (!c->scratch)
		return -ENOMEM;
	memset(c->scratch, 0x5a, COST_SCRATCH);
	calibrate(c, true);
	return 0;
}

void vd_cost_fini(struct vd_cost *c, const struct vdemux_alloc_hooks *alloc)
{
	vd_free(alloc, c->scratch);
	c->scratch = NULL;
}

void vd_cost_tick(struct vd_cost *c)
{
	if (++c->applies < CAL_CHECK)
		return;
	c->applies = 0;
	if (now_ns() - c->last_cal >= CAL_PERIOD_NS)
		calibrate(c, false);
}

void vd_vm_cost_init(struct vd_vm_cost *vc, bool adaptive, uint32_t prior)
{
	memset(vc, 0, sizeof(*vc));
	vc->adaptive = adaptive;
	vc->prior = prior;
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

static uint32_t probe_gap(double copy, double flip)
{
	double gap = (flip - copy) / (PROBE_BUDGET * (copy > 1.0 ? copy : 1.0));

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
	double copy, flip;

	if (!own_pages)
		return true;
	if (vc->samples < WARMUP_SAMPLES) {
		if (vc->until_probe == 0) {
			vc->until_probe = WARMUP_GAP;
			e->st.adaptive_probes++;
			return false;
		}
		vc->until_probe--;
		return len <= vc->prior;
	}
	copy = (double)len * (e->cost.copy_ns_byte + e->cost.clear_ns_byte);
	flip = vc->run_ns * delivery_runs(vm, src->pages, nch) + vc->page_ns * nch;
	if (flip < copy)
		return false;
	if (vc->until_probe == 0) {
		vc->until_probe = probe_gap(copy, flip);
		e->st.adaptive_probes++;
		return false;
	}
	vc->until_probe--;
	return true;
}

bool vd_cost_due(struct vm *vm)
{
	struct vd_vm_cost *vc = &vm->cost;

	if (!vc->adaptive)
		return false;
	if (vc->samples >= SAMPLE_ALL && ++vc->tick < SAMPLE_EVERY)
		return false;
	vc->tick = 0;
	return true;
}

uint64_t vd_cost_clock(void)
{
	return now_ns();
}

/* Solve the weighted normal equations for (run_ns, page_ns), both >= 0.
 * When every batch had as many runs as pages the two cannot be told apart:
 * it is all put on the page. */
static void fit(struct vd_vm_cost *vc)
{
	double det = vc->srr * vc->spp - vc->srp * vc->srp;

	if (det > 1e-6 * vc->srr * vc->spp) {
		vc->run_ns = (vc->srt * vc->spp - vc->spt * vc->srp) / det;
		vc->page_ns = (vc->spt * vc->srr - vc->srt * vc->srp) / det;
		if (vc->run_ns < 0) {
			vc->run_ns = 0;
			vc->page_ns = vc->spt / vc->spp;
		} else if (vc->page_ns < 0) {
			vc->page_ns = 0;
			vc->run_ns = vc->srt / vc->srr;
		}
	} else {
		vc->run_ns = 0;
		vc->page_ns = vc->spp > 0 ? vc->spt / vc->spp : 0;
	}
}

void vd_cost_end(struct vm *vm, uint64_t t0, uint32_t runs, uint32_t pages)
{
	struct vd_vm_cost *vc = &vm->cost;
	double t = (double)(now_ns() - t0), r = runs, p = pages;

	if (!pages)
		return;
	if (vc->samples++ == 0)
		return; /* the first flips of a VM pay for setting things up */
	if (vc->samples > 2) {
		double pred = vc->run_ns * r + vc->page_ns * p;

		if (pred > 0 && t > OUTLIER * pred)
			t = OUTLIER * pred;
	}
	vc->srr = vc->srr * FIT_KEEP + r * r;
	vc->srp = vc->srp * FIT_KEEP + r * p;
	vc->spp = vc->spp * FIT_KEEP + p * p;
	vc->srt = vc->srt * FIT_KEEP + r * t;
	vc->spt = vc->spt * FIT_KEEP + p * t;
	fit(vc);
}

/* SPDX-License-Identifier: MIT */
/*
 * Counters: the engine's check and page gauges, the mappings of the VMM's
 * address space, the status lines of --verbose and the counters printed at
 * the end.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "vmm.h"

/* The engines' counters added up (every field of the stats is a uint64_t);
 * the pages are the group's, counted once. *@own: whether each engine's
 * gauges sum to its pages (with shards: AWAY and quarantined included). */
static void engines_sum(struct vmm *v, struct vdemux_engine_stats *out, bool *own)
{
	_Static_assert(sizeof *out % sizeof(uint64_t) == 0, "only uint64_t fields");
	uint64_t *sum = (uint64_t *)out;
	memset(out, 0, sizeof *out);
	*own = true;
	for (unsigned i = 0; i < v->nlanes; i++) {
		struct vdemux_engine_stats es;
		vdemux_engine_stats(v->lane[i].eng, &es, sizeof es);
		const uint64_t *one = (const uint64_t *)&es;
		for (size_t k = 0; k < sizeof es / sizeof(uint64_t); k++)
			sum[k] += one[k];
		*own &= es.pages_free + es.pages_filling + es.pages_assigned + es.pages_quarantined +
				es.pages_away ==
			es.pages_total;
	}
	out->pages_total /= v->nlanes;
}

/* The engine's check (with shards, the group's, at a quiescent point: no
 * lane's thread runs a turn), and every pool page in exactly one state:
 * with shards, the pages neither shard holds are in the queues between
 * them (the group check found each there). */
bool stats_check_engine(struct vmm *v, const char *when)
{
	char msg[256] = "";
	int r = v->group ? vdemux_group_check(v->group, msg, sizeof msg)
			 : vdemux_engine_check(v->lane[0].eng, msg, sizeof msg);
	if (r == 0)
		vmm_log(NULL, "vmm: engine check passed (%s)", when);
	else
		vmm_log(NULL, "vmm: engine check FAILED (%s): %s", when,
			r == -EUCLEAN ? msg : strerror(-r));
	struct vdemux_engine_stats es;
	bool own;
	engines_sum(v, &es, &own);
	uint64_t sum = es.pages_free + es.pages_filling + es.pages_assigned;
	bool ok = v->group ? own : sum == es.pages_total;
	char queued[64] = "";
	if (v->group)
		snprintf(queued, sizeof queued, ", %" PRIu64 " between shards",
			 es.pages_total - sum - es.pages_quarantined);
	vmm_log(NULL,
		"vmm: pages (%s): free %" PRIu64 " + filling %" PRIu64 " + assigned %" PRIu64
		" = %" PRIu64 " of %" PRIu64 "%s: %s",
		when, es.pages_free, es.pages_filling, es.pages_assigned, sum, es.pages_total, queued,
		ok ? "balanced" : "UNBALANCED");
	return r == 0 && ok;
}

/* Mappings of the VMM's address space (lines of /proc/self/maps), and the
 * limit: each page flipped into a guest away from its neighbours in the
 * arena is a mapping of its own (docs/backends-kvm.md, "Limits"). */
void stats_log_mappings(struct guest *g)
{
	long n = 0, max = -1;
	int c;
	FILE *f = fopen("/proc/self/maps", "re");
	if (f) {
		while ((c = getc(f)) != EOF)
			n += c == '\n';
		fclose(f);
	}
	f = fopen("/proc/sys/vm/max_map_count", "re");
	if (f) {
		if (fscanf(f, "%ld", &max) != 1)
			max = -1;
		fclose(f);
	}
	vmm_log(g, "vmm: mappings in the VMM: %ld (vm.max_map_count %ld)", n, max);
}

/* With shards: each one's traffic, and the frames handed between them. */
static void print_shards(struct vmm *v)
{
	for (unsigned i = 0; v->group && i < v->nlanes; i++) {
		struct vdemux_engine_stats es;
		vdemux_engine_stats(v->lane[i].eng, &es, sizeof es);
		vmm_log(NULL,
			"vmm: engine: shard %u: rx %" PRIu64 " frames, delivered %" PRIu64
			", copies %" PRIu64 ", flips %" PRIu64 ", handoffs out %" PRIu64 " in %" PRIu64
			" full %" PRIu64 ", pages free %" PRIu64 " away %" PRIu64,
			i, es.rx_frames, es.delivered, es.copies, es.flips, es.handoff_out,
			es.handoff_in, es.handoff_full, es.pages_free, es.pages_away);
	}
}

static void print_engine(struct vmm *v)
{
	struct vdemux_engine_stats es;
	bool own;
	engines_sum(v, &es, &own);
	vmm_log(NULL,
		"vmm: engine: pages %" PRIu64 " (free %" PRIu64 ", filling %" PRIu64
		", assigned %" PRIu64 "), rx %" PRIu64 " frames %" PRIu64 " bytes, delivered %" PRIu64
		", flips %" PRIu64 ", copies %" PRIu64 ", harvests %" PRIu64 ", completions %" PRIu64
		", backend errors %" PRIu64,
		es.pages_total, es.pages_free, es.pages_filling, es.pages_assigned, es.rx_frames,
		es.rx_bytes, es.delivered, es.flips, es.copies, es.harvests, es.completions,
		es.backend_errors);
	vmm_log(NULL,
		"vmm: engine: offloads passed %" PRIu64 ", checksums finished %" PRIu64
		", frames segmented %" PRIu64 " into %" PRIu64 " segments",
		es.offload_passed, es.offload_csums, es.offload_segmented, es.offload_segments);
	for (int i = 0; i < VDEMUX_OFFLOAD_BAD__COUNT; i++)
		if (es.offload_bad[i])
			vmm_log(NULL, "vmm: engine: offload refused %" PRIu64 " (%s)", es.offload_bad[i],
				vdemux_offload_bad_name(i));
	for (int i = 1; i < VDEMUX_DROP__COUNT; i++)
		if (es.drops[i])
			vmm_log(NULL, "vmm: engine: dropped %" PRIu64 " (%s)", es.drops[i],
				vdemux_drop_reason_name(i));
	for (int i = 0; i < VDEMUX_BAD__COUNT; i++)
		if (es.bad_input[i])
			vmm_log(NULL, "vmm: engine: bad input %" PRIu64 " (%s)", es.bad_input[i],
				vdemux_bad_input_name(i));
}

/* The lanes' TAP queues and switches, added up. */
static void print_tap(struct vmm *v)
{
	struct uplink t = v->lane[0].tap;
	uint64_t g2g = v->lane[0].guest_to_guest, full = v->lane[0].switch_full;
	for (unsigned i = 1; i < v->nlanes; i++) {
		const struct lane *l = &v->lane[i];
		t.rx_frames += l->tap.rx_frames;
		t.rx_bytes += l->tap.rx_bytes;
		t.rx_short += l->tap.rx_short;
		t.rx_oversize += l->tap.rx_oversize;
		t.tx_frames += l->tap.tx_frames;
		t.tx_errors += l->tap.tx_errors;
		t.rx_gso += l->tap.rx_gso;
		t.rx_csum += l->tap.rx_csum;
		t.rx_bursts += l->tap.rx_bursts;
		g2g += l->guest_to_guest;
		full += l->switch_full;
	}
	vmm_log(NULL,
		"vmm: tap: rx %" PRIu64 " frames %" PRIu64 " bytes (%" PRIu64 " short, %" PRIu64
		" oversize dropped), tx %" PRIu64 " frames (%" PRIu64 " errors); guest to guest %" PRIu64
		" (%" PRIu64 " not taken)",
		t.rx_frames, t.rx_bytes, t.rx_short, t.rx_oversize, t.tx_frames, t.tx_errors, g2g, full);
	vmm_log(NULL,
		"vmm: tap: rx gso %" PRIu64 ", rx csum %" PRIu64 ", rx bursts %" PRIu64
		"; offloads 0x%x (set %" PRIu64 " times, taken 0x%x)",
		t.rx_gso, t.rx_csum, t.rx_bursts, t.offloads, t.offload_sets, t.offloads_taken);
}

/* A guest's counters, when it is removed: its queues' VMs and receive
 * queues summed (and each queue's kept). */
void stats_take(struct vmm *v, struct guest *g)
{
	struct guest_stats *st = &g->stats;
	(void)v; /* each queue's engine is its pair's lane's */
	memset(&st->vm, 0, sizeof st->vm);
	memset(&st->rxq, 0, sizeof st->rxq);
	for (unsigned p = 0; p < g->net.pairs; p++) {
		struct vdemux_vm_stats vs = {0};
		struct vdemux_vnet_rxq_stats *rs = &g->rx[p].last;
		vdemux_vm_stats(pair_lane(g, p)->eng, g->rx[p].vm, &vs, sizeof vs);
		vdemux_vnet_rxq_stats(g->rx[p].q, rs, sizeof *rs);
		st->vm.delivered += vs.delivered;
		st->vm.bytes += vs.bytes;
		st->vm.flips += vs.flips;
		st->vm.copies += vs.copies;
		st->vm.harvests += vs.harvests;
		st->vm.signals += vs.signals;
		for (int d = 0; d < VDEMUX_DROP__COUNT; d++)
			st->vm.drops[d] += vs.drops[d];
		st->rxq.frames += rs->frames;
		st->rxq.flipped += rs->flipped;
		st->rxq.copied += rs->copied;
		st->rxq.buffers += rs->buffers;
		st->rxq.page_buffers += rs->page_buffers;
		st->rxq.skipped += rs->skipped;
		st->rxq.failed += rs->failed;
		st->rxq.interrupts += rs->interrupts;
		st->rxq.no_interrupt += rs->no_interrupt;
		st->rxq.ring_errors += rs->ring_errors;
	}
}

/* With several pairs: each receive queue's share, the control queue, MSI-X. */
static void print_pairs(struct guest *g)
{
	struct vnet_dev *d = &g->net;
	for (unsigned p = 0; d->pairs > 1 && p < d->pairs; p++)
		vmm_log(g, "vmm: rxq %u: frames %" PRIu64 ", interrupts %" PRIu64, p,
			g->rx[p].last.frames, g->rx[p].last.interrupts);
	if (d->pairs > 1)
		vmm_log(g, "vmm: ctrl: %" PRIu64 " commands, pairs in use %u of %u (at most %u)",
			d->ctrl_cmds, d->active_pairs, d->pairs, d->pairs_max);
	vmm_log(g,
		"vmm: msix: %s, vectors fired %" PRIu64 ", routes set %" PRIu64 " (%" PRIu64 " failed)",
		msix_enabled(&d->msix) ? "on" : "off", d->msix.fired, d->msix.route_sets,
		d->msix.route_errors);
}

static void print_guest(struct guest *g)
{
	struct guest_stats *st = &g->stats;
	struct vdemux_vm_stats *s = &st->vm;
	struct vdemux_vnet_rxq_stats *rs = &st->rxq;
	vmm_log(g,
		"vmm: vm: delivered %" PRIu64 " frames %" PRIu64 " bytes, flips %" PRIu64
		", copies %" PRIu64 ", harvests %" PRIu64 ", signals %" PRIu64,
		s->delivered, s->bytes, s->flips, s->copies, s->harvests, s->signals);
	for (int d = 1; d < VDEMUX_DROP__COUNT; d++)
		if (s->drops[d])
			vmm_log(g, "vmm: vm: dropped %" PRIu64 " (%s)", s->drops[d],
				vdemux_drop_reason_name(d));
	vmm_log(g,
		"vmm: rxq: frames %" PRIu64 " (flipped %" PRIu64 ", copied %" PRIu64
		"), buffers %" PRIu64 " (page chains %" PRIu64 "), skipped %" PRIu64 ", failed %" PRIu64
		", interrupts %" PRIu64 " (%" PRIu64 " not wanted), ring errors %" PRIu64,
		rs->frames, rs->flipped, rs->copied, rs->buffers, rs->page_buffers, rs->skipped,
		rs->failed, rs->interrupts, rs->no_interrupt, rs->ring_errors);
	print_pairs(g);
	struct vdemux_virtq_stats ts = {0}, one;
	for (unsigned p = 0; p < g->net.pairs; p++)
		if (g->net.txq[p] && vdemux_virtq_stats(g->net.txq[p], &one, sizeof one) == 0)
			ts.skipped += one.skipped;
	vmm_log(g,
		"vmm: tx: %" PRIu64 " frames %" PRIu64 " bytes (gso %" PRIu64 "), %" PRIu64
		" bad, %" PRIu64 " malformed chains skipped; interrupts %" PRIu64,
		g->net.tx_frames, g->net.tx_bytes, g->net.tx_gso, g->net.tx_bad,
		g->net.tx_skipped + ts.skipped, g->net.irqs);
	/* Every receive interrupt the queue decided on, the device raised. */
	vmm_log(g, "vmm: irq: receive queue decided %" PRIu64 ", device raised %" PRIu64, rs->interrupts,
		g->net.rx_irqs);
	vmm_log(g,
		"vmm: kvm: mmap calls %" PRIu64 ", mapped %" PRIu64 ", unmapped %" PRIu64
		", remapped %" PRIu64 ", holes hit: %" PRIu64 " EFAULT, %" PRIu64
		" MMIO; pages backfilled %" PRIu64,
		st->kvm.mmap_calls, st->kvm.pages_mapped, st->kvm.pages_unmapped, st->kvm.pages_remapped,
		st->holes_efault, st->holes_mmio, st->backfilled);
}

void stats_print(struct vmm *v)
{
	print_engine(v);
	print_shards(v);
	print_tap(v);
	for (unsigned p = 1; p < v->nlanes; p++)
		vmm_log(NULL, "vmm: I/O thread of pair %u: %" PRIu64 " wakeups", p, v->lane[p].wakeups);
	for (unsigned i = 0; i < v->nguests; i++)
		print_guest(&v->guests[i]);
}

static void status_guest(struct vmm *v, struct guest *g)
{
	struct vdemux_vnet_rxq_stats rs = {0};
	struct vdemux_vm_stats vs = {0};
	vdemux_vnet_rxq_stats(g->rx[0].q, &rs, sizeof rs);
	vdemux_vm_stats(v->lane[0].eng, g->vm, &vs, sizeof vs);
	uint64_t drops = 0;
	for (int d = 0; d < VDEMUX_DROP__COUNT; d++)
		drops += vs.drops[d];
	vmm_log(g,
		"vmm: exits: %" PRIu64 " I/O, %" PRIu64 " MMIO, %" PRIu64 " other, %" PRIu64
		" EFAULT; tx %" PRIu64 "; rx %" PRIu64 " (flipped %" PRIu64 ", engine drops %" PRIu64
		"); interrupts: rx %" PRIu64 ", tx %" PRIu64,
		g->stats.exits_io, g->stats.exits_mmio, g->stats.exits_other, g->stats.holes_efault,
		g->net.tx_frames, rs.frames, rs.flipped, drops, g->net.rx_irqs, g->net.irqs);
	unsigned top = 0;
	for (unsigned p = 1; p < 65536; p++)
		if (g->stats.port_exits[p] > g->stats.port_exits[top])
			top = p;
	vmm_log(g, "vmm: busiest port 0x%x: %u exits", top, g->stats.port_exits[top]);
}

void stats_status(struct vmm *v)
{
	for (unsigned i = 0; i < v->nguests; i++)
		if (!v->guests[i].removed)
			status_guest(v, &v->guests[i]);
}

/* Running counters of one guest, as key=value pairs a script can subtract
 * from the previous line's: its transmit ring, its receive queue and the
 * frames the engine dropped for it. Main lane's lock held; another lane's
 * queue is read under its lane's. */
static void counters_guest(struct vmm *v, struct guest *g)
{
	struct vdemux_vnet_rxq_stats rs = {0};
	struct vdemux_vm_stats vs = {0};
	const struct vnet_dev *d = &g->net;
	(void)v;
	for (unsigned p = 0; p < d->pairs; p++) { /* every receive queue's, summed */
		struct vdemux_vnet_rxq_stats q = {0};
		struct vdemux_vm_stats qv = {0};
		struct lane *l = pair_lane(g, p);
		if (l->idx)
			pthread_mutex_lock(&l->lock);
		vdemux_vnet_rxq_stats(g->rx[p].q, &q, sizeof q);
		vdemux_vm_stats(l->eng, g->rx[p].vm, &qv, sizeof qv);
		if (l->idx)
			pthread_mutex_unlock(&l->lock);
		rs.frames += q.frames;
		rs.buffers += q.buffers;
		rs.copied += q.copied;
		rs.flipped += q.flipped;
		rs.interrupts += q.interrupts;
		rs.no_interrupt += q.no_interrupt;
		for (int i = 0; i < VDEMUX_DROP__COUNT; i++)
			vs.drops[i] += qv.drops[i];
	}
	char drops[256] = "";
	size_t at = 0;
	for (int i = 1; i < VDEMUX_DROP__COUNT && at < sizeof drops; i++)
		if (vs.drops[i])
			at += (size_t)snprintf(drops + at, sizeof drops - at, " drop_%s=%" PRIu64,
					       vdemux_drop_reason_name(i), vs.drops[i]);
	vmm_log(g,
		"vmm: counters: tx_frames=%" PRIu64 " tx_bytes=%" PRIu64 " tx_gso=%" PRIu64
		" tx_small=%" PRIu64 " tx_irqs=%" PRIu64 " tx_kicks=%" PRIu64 " rx_kicks=%" PRIu64
		" rx_frames=%" PRIu64 " rx_buffers=%" PRIu64 " rx_copied=%" PRIu64 " rx_flipped=%" PRIu64
		" rx_irqs=%" PRIu64 " rx_no_irq=%" PRIu64 " exits_io=%" PRIu64 "%s",
		d->tx_frames, d->tx_bytes, d->tx_gso, d->tx_small, d->irqs, d->kicks[1], d->kicks[0],
		rs.frames, rs.buffers, rs.copied, rs.flipped, rs.interrupts, rs.no_interrupt,
		g->stats.exits_io, drops);
}

/* Lane @l's counters, under its lock (the main lane's is held): added to
 * @sum (tap rx, tap tx, guest to guest), and with several lanes written
 * as lane<i>_ pairs into @at: its TAP queue, its switch, its engine's
 * frames and handoffs. The length written. */
static size_t counters_lane(struct vmm *v, struct lane *l, uint64_t sum[3], char *at, size_t room)
{
	struct vdemux_engine_stats es = {0};
	if (l->idx)
		pthread_mutex_lock(&l->lock);
	vdemux_engine_stats(l->eng, &es, sizeof es);
	sum[0] += l->tap.rx_frames;
	sum[1] += l->tap.tx_frames;
	sum[2] += l->guest_to_guest;
	int n = v->nlanes < 2
			? 0
			: snprintf(at, room,
				   " lane%u_tap_rx=%" PRIu64 " lane%u_tap_tx=%" PRIu64
				   " lane%u_rx=%" PRIu64 " lane%u_delivered=%" PRIu64
				   " lane%u_handoff_out=%" PRIu64 " lane%u_handoff_in=%" PRIu64
				   " lane%u_handoff_full=%" PRIu64 " lane%u_switch_full=%" PRIu64,
				   l->idx, l->tap.rx_frames, l->idx, l->tap.tx_frames, l->idx,
				   es.rx_frames, l->idx, es.delivered, l->idx, es.handoff_out, l->idx,
				   es.handoff_in, l->idx, es.handoff_full, l->idx, l->switch_full);
	if (l->idx)
		pthread_mutex_unlock(&l->lock);
	return n > 0 && (size_t)n < room ? (size_t)n : 0;
}

void stats_counters(struct vmm *v)
{
	for (unsigned i = 0; i < v->nguests; i++)
		if (!v->guests[i].removed)
			counters_guest(v, &v->guests[i]);
	uint64_t sum[3] = {0};
	char lanes[1024] = "";
	size_t at = 0;
	for (unsigned i = 0; i < v->nlanes; i++)
		at += counters_lane(v, &v->lane[i], sum, lanes + at, sizeof lanes - at);
	vmm_log(NULL,
		"vmm: counters: tap_rx_frames=%" PRIu64 " tap_tx_frames=%" PRIu64
		" guest_to_guest=%" PRIu64 "%s",
		sum[0], sum[1], sum[2], lanes);
}

/* SPDX-License-Identifier: MIT */
/*
 * The switch: frames between the guests and the TAP uplink. The engine
 * classifies with the built-in L2 bridge, minus the sender (split horizon):
 * a guest's frame never comes back to it. Frames from the TAP go to the
 * engine only (tap.c); a guest's frames go to the engine if some guest may
 * want them, and to the TAP unless they are for a guest.
 *
 * A guest's frame keeps the virtio-net header it was sent with (a GSO frame,
 * a checksum left to finish): the engine passes the metadata to a guest that
 * negotiated it and segments or checksums for one that did not; the TAP
 * takes it as it is (the kernel segments for whatever lies behind it).
 *
 * Each lane's engine has a classifier of its own (the sender is the lane's
 * to set), over the one L2 bridge (with shards, the group's). With shards,
 * a verdict may name a VM of another shard (another pair's receive queue):
 * the library hands the frame over. What the classifier reads of the
 * guests from any lane's thread is fixed at their creation or read
 * atomically (removed, a queue started, the pairs in use).
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <vdemux/sys/classifier.h>

#include "vmm.h"

#define SWITCH_BURST 64u
#define SWITCH_RETRIES 4u /* polls before frames for a full shard queue are dropped */

/* A guest with several queue pairs in use: its frames of one flow go to one
 * of its receive queues, by the flow's symmetric hash (vdemux/flow.h), so
 * that the guest sees each flow in order on one CPU. Queues not started
 * (the driver has not set them up) leave the frame on the first. */
static void steer(struct vmm *vmm, const uint8_t *frame, uint32_t len, struct vdemux_verdict *v)
{
	uint32_t hash = 0;
	bool hashed = false;
	for (unsigned i = 0; i < v->n; i++) {
		struct guest *g = guest_of_vm(vmm, v->dests[i].vm);
		unsigned n = g ? __atomic_load_n(&g->net.active_pairs, __ATOMIC_RELAXED) : 1;
		if (n <= 1)
			continue;
		if (!hashed)
			vdemux_flow_hash(frame, len, NULL, 0, 0, &hash);
		hashed = true;
		unsigned p = vdemux_flow_queue(hash, n);
		if (p < g->net.pairs && __atomic_load_n(&g->rx[p].started, __ATOMIC_ACQUIRE))
			v->dests[i].vm = g->rx[p].vm;
	}
}

/* The sender's own VM out of the L2 bridge's verdict, and each guest's
 * queue chosen. */
static int sh_filter(const struct split_horizon *s, int r, const uint8_t *frame, uint32_t len,
		     struct vdemux_verdict *v)
{
	if (r < 0)
		return r;
	unsigned j = 0;
	for (unsigned i = 0; i < v->n; i++)
		if (v->dests[i].vm != s->src)
			v->dests[j++] = v->dests[i];
	if (v->n && !j)
		v->drop_reason = VDEMUX_DROP_NO_DEST;
	v->n = j;
	steer(s->vmm, frame, len, v);
	return 0;
}

static int sh_classify(struct vdemux_classifier *cls, const uint8_t *frame, uint32_t len,
		       struct vdemux_verdict *v)
{
	struct split_horizon *s = (struct split_horizon *)cls;
	return sh_filter(s, vdemux_l2_classify(s->l2, frame, len, v), frame, len, v);
}

/* The bridge's read section, passed through: one reader registration per
 * engine call instead of one per frame (sys/classifier.h). */
static uintptr_t sh_read_begin(struct vdemux_classifier *cls)
{
	struct vdemux_classifier *l2 = vdemux_l2_classifier(((struct split_horizon *)cls)->l2);
	return l2->read_begin(l2);
}

static int sh_classify_read(struct vdemux_classifier *cls, const uint8_t *frame, uint32_t len,
			    struct vdemux_verdict *v)
{
	struct split_horizon *s = (struct split_horizon *)cls;
	struct vdemux_classifier *l2 = vdemux_l2_classifier(s->l2);
	return sh_filter(s, l2->classify_read(l2, frame, len, v), frame, len, v);
}

static void sh_read_end(struct vdemux_classifier *cls, uintptr_t token)
{
	struct vdemux_classifier *l2 = vdemux_l2_classifier(((struct split_horizon *)cls)->l2);
	l2->read_end(l2, token);
}

static void sh_vm_removed(struct vdemux_classifier *cls, vdemux_vm_id vm)
{
	vdemux_l2_remove_vm(((struct split_horizon *)cls)->l2, vm);
}

void switch_init(struct lane *l)
{
	l->sh = (struct split_horizon){
		.base = {.version = VDEMUX_CLASSIFIER_VERSION,
			 .name = "l2-split-horizon",
			 .classify = sh_classify,
			 .vm_removed = sh_vm_removed,
			 .read_begin = sh_read_begin,
			 .classify_read = sh_classify_read,
			 .read_end = sh_read_end},
		.vmm = l->v,
		.l2 = vdemux_engine_l2(l->eng),
	};
	vdemux_engine_set_classifier(l->eng, &l->sh.base);
}

/* Frames to the engine. With shards, a burst stops before a frame whose
 * queue to another shard is full: poll (rule 3 of the shards) and go on a
 * few times, then drop what is left, counted. */
static void switch_burst(struct lane *l, struct guest *src, struct vdemux_frame *f, unsigned nf)
{
	unsigned done = 0;
	l->sh.src = src->vm;
	for (unsigned tries = 0; done < nf && tries <= SWITCH_RETRIES; tries++) {
		int r = vdemux_rx_burst(l->eng, f + done, nf - done);
		if (r > 0) {
			done += (unsigned)r;
		} else if (r == -EAGAIN && l->v->group) {
			vdemux_shard_poll(l->eng, SWITCH_BURST);
		} else {
			if (r < 0 && r != -ENOBUFS)
				vmm_log(src, "vmm: vdemux_rx_burst: %s", strerror(-r));
			break;
		}
	}
	l->sh.src = 0;
	l->switch_full += nf - done;
}

void vmm_switch(struct lane *l, struct guest *src, const uint8_t *const *frames, const uint32_t *lens,
		unsigned n)
{
	struct vdemux_frame f[SWITCH_BURST];
	unsigned nf = 0;
	vdemux_l2 *l2 = vdemux_engine_l2(l->eng);

	for (unsigned i = 0; i < n; i++) {
		const uint8_t *dst = frames[i] + VNET_HDR_LEN;
		bool group = dst[0] & 1;
		bool local = !group && vdemux_l2_lookup(l2, dst, 1) != 0;
		/* Unicast to a guest: the engine only. Group: the engine (other
		 * guests) and the TAP. Anything else: the TAP only. */
		if (group || local) {
			if (nf < SWITCH_BURST)
				f[nf++] = (struct vdemux_frame){
					.data = frames[i],
					.len = lens[i],
					.flags = VDEMUX_FRAME_VNET_HDR(VNET_HDR_LEN)};
			if (local)
				l->guest_to_guest++;
		}
		if (!local)
			tap_tx(l, frames[i], lens[i]);
	}
	if (nf)
		switch_burst(l, src, f, nf);
}

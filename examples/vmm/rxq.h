/*
 * rxq: a guest's virtio-net receive queue, served from the engine.
 *
 * This is the one seam between the VMM and whatever fills a guest's receive
 * virtqueue. The implementation in rxq.c is a stand-in, written on the
 * engine's completion API (vdemux_vm_post_rx / vdemux_vm_poll), and is meant
 * to be replaced by the library's virtio-net module behind this same
 * interface.
 *
 * What rxq.c does today: the engine delivers frames into a staging window
 * of the VM (guest-physical pages just above the guest's RAM, outside its
 * e820 map, so that the guest never touches them), flipped (big) or copied
 * (mergeable) by the engine's policy; rxq.c then copies each frame, behind a
 * virtio-net header, into the buffers the guest posted, and posts the
 * staging pages again. Linux's receive buffers cannot be handed to the
 * engine directly: mergeable buffers are not page-aligned, and in big-packet
 * mode the first 4064 bytes of a frame go 32 bytes into the header's page,
 * so a frame's pages would sit 32 bytes off the pages the guest posted.
 *
 * Threading: every call on the engine's thread, with the engine serialised
 * and the device's lock held (the ring addresses are the device's).
 */
#ifndef VMM_RXQ_H
#define VMM_RXQ_H

#include <stdint.h>

#include <vdemux/vdemux.h>

#include "vmm.h"

struct rxq;

struct rxq_opts {
	struct guest *guest;     /* guest RAM and its bounds (guest_ptr()) */
	vdemux_engine *eng;
	vdemux_vm_id vm;         /* the VM whose RX window is the staging window */
	uint64_t stage_gpa;      /* the RX window */
	uint8_t *stage_hva;
	uint32_t stage_pages;
	void (*notify)(void *payload); /* raise the guest's receive interrupt */
	void *payload;
};

struct rxq_stats {
	uint64_t frames, bytes;  /* frames written into guest buffers */
	uint64_t buffers;        /* guest buffers (chains) used */
	uint64_t dropped_not_ready; /* frames dropped: the driver had no ring */
	uint64_t dropped_too_big;   /* frames larger than any chain could take */
	uint64_t waits;          /* times a frame waited for the guest to post buffers */
	uint64_t bad_chains;     /* malformed chains (the ring is then stopped) */
};

/* Create; posts the whole staging window to the engine. */
int rxq_create(struct rxq **out, const struct rxq_opts *opts);
/*
 * The driver's receive ring and the features it negotiated
 * (VIRTIO_NET_F_MRG_RXBUF decides the header), or @ring NULL after a reset:
 * frames are then dropped until the next configure.
 */
int rxq_configure(struct rxq *q, const struct virtq *ring, uint64_t features);
/* Take the engine's completions for the VM and fill guest buffers with them.
 * Returns frames delivered, or a negative errno. */
int rxq_deliver(struct rxq *q);
/* The guest posted buffers: deliver frames that were waiting for them. */
int rxq_kick(struct rxq *q);
void rxq_stats(const struct rxq *q, struct rxq_stats *out);
void rxq_destroy(struct rxq *q);

#endif

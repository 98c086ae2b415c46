/* SPDX-License-Identifier: MIT */
/*
 * The rings the virtio-net device serves itself, under the device lock:
 * each pair's transmit ring, on its lane's thread (its chains gathered and
 * switched, through the library's vdemux/virtq.h), and on the main thread
 * the control ring
 * (the library's vdemux_vnet_ctrl answers the driver's commands; the pair
 * count it sets is what the switch steers receive flows over).
 */
#include <errno.h>
#include <linux/virtio_config.h>
#include <linux/virtio_net.h>
#include <string.h>

#include "vmm.h"

/* Copy one transmit chain (the guest's header of @hdr_len bytes, 10 or 12,
 * then the frame) into @buf as VNET_HDR_LEN bytes of header then the frame
 * (a 10-byte header gets num_buffers 0); the length of both, or 0 for a
 * chain to drop. */
static uint32_t tx_gather(const struct vdemux_virtq_chain *c, const struct iovec *iov, unsigned hdr_len,
			  uint8_t *buf)
{
	unsigned pad = VNET_HDR_LEN - hdr_len;
	size_t total = 0, room = hdr_len + VMM_FRAME_MAX;
	if (c->n_write)
		return 0; /* the driver gives the device nothing to write on TX */
	for (unsigned i = 0; i < c->n_read; i++) {
		if (iov[i].iov_len > room - total)
			return 0;
		memcpy(buf + pad + total, iov[i].iov_base, iov[i].iov_len);
		total += iov[i].iov_len;
	}
	if (total < hdr_len + 14)
		return 0;
	if (pad) {
		memmove(buf, buf + pad, hdr_len);
		memset(buf + hdr_len, 0, pad);
	}
	return (uint32_t)(total + pad);
}

/* Up to VNET_TX_BURST chains into lane @l's tx_buf, to the switch; how many
 * chains were taken (-EIO: the ring is broken). */
static int tx_burst(struct lane *l, struct guest *g, vdemux_virtq *txq, unsigned hdr_len)
{
	struct vnet_dev *d = &g->net;
	const uint8_t *frames[VNET_TX_BURST];
	uint32_t lens[VNET_TX_BURST];
	unsigned n = 0;
	int popped = 0, r = 0;
	struct vdemux_virtq_chain c;
	struct iovec iov[VQ_MAX_SEG];

	while (popped < (int)VNET_TX_BURST && (r = vdemux_virtq_pop(txq, &c, iov, VQ_MAX_SEG)) == 1) {
		uint8_t *buf = l->tx_buf + (size_t)n * VNET_TX_ROOM;
		uint32_t len = tx_gather(&c, iov, hdr_len, buf);
		vdemux_virtq_push(txq, c.head, 0);
		popped++;
		if (!len) {
			d->tx_bad++;
			continue;
		}
		frames[n] = buf;
		lens[n] = len;
		d->tx_frames++;
		d->tx_bytes += len - VNET_HDR_LEN;
		d->tx_gso += (buf[1] & 0x7f) != VIRTIO_NET_HDR_GSO_NONE;
		d->tx_small += len - VNET_HDR_LEN <= 1514;
		n++;
	}
	if (n)
		vmm_switch(l, g, frames, lens, n);
	return r < 0 ? r : popped;
}

int vnet_tx(struct lane *l, struct guest *g, unsigned p)
{
	struct vnet_dev *d = &g->net;
	unsigned hdr_len = (d->guest_features & (1u << VIRTIO_NET_F_MRG_RXBUF))
				   ? sizeof(struct virtio_net_hdr_mrg_rxbuf)
				   : sizeof(struct virtio_net_hdr);
	int total = 0;
	vdemux_virtq *q = d->txq[p];

	if (!q || !(d->status & VIRTIO_CONFIG_S_DRIVER_OK))
		return 0;
	for (;;) {
		int popped = tx_burst(l, g, q, hdr_len);
		/* Chains skipped as malformed are given back here too. */
		if (vdemux_virtq_publish(q, NULL) == 1) {
			d->irqs++;
			vnet_queue_interrupt(g, 2 * p + 1);
		}
		if (popped < 0) {
			/* The guest broke the ring: serve it no more until the
			 * driver resets the device (legacy virtio has no
			 * DEVICE_NEEDS_RESET). */
			d->tx_bad++;
			vnet_ring_stop(d, &d->txq[p]);
			vmm_log(g, "vmm: malformed transmit ring %u, queue stopped", p);
			break;
		}
		total += popped;
		/* Out of chains: ask for a kick, and go on if some came meanwhile. */
		if (popped < (int)VNET_TX_BURST && vdemux_virtq_enable_kick(q, true) != 1)
			break;
	}
	return total;
}

/* The driver's commands: answered, the pair count they set applied (the
 * receive queues the switch steers to), then published. */
void vnet_ctrl_serve(struct guest *g)
{
	struct vnet_dev *d = &g->net;
	struct vdemux_vnet_ctrl_state st;
	if (!d->ctrlq || !d->ctrl || !(d->status & VIRTIO_CONFIG_S_DRIVER_OK))
		return;
	int n = vdemux_vnet_ctrl_serve(d->ctrl, d->ctrlq);
	if (n > 0 && vdemux_vnet_ctrl_state(d->ctrl, &st, sizeof st) == 0) {
		d->ctrl_cmds += (uint64_t)n;
		if (__atomic_exchange_n(&d->active_pairs, st.pairs, __ATOMIC_SEQ_CST) != st.pairs)
			vmm_log(g, "vmm: the driver uses %u queue pairs", st.pairs);
		if (st.pairs > d->pairs_max)
			d->pairs_max = st.pairs;
	}
	if (vdemux_virtq_publish(d->ctrlq, NULL) == 1)
		vnet_queue_interrupt(g, 2u * d->pairs);
	if (n == -EIO) {
		vnet_ring_stop(d, &d->ctrlq);
		vmm_log(g, "vmm: malformed control ring, queue stopped");
	} else {
		vdemux_virtq_enable_kick(d->ctrlq, true);
	}
}

/* SPDX-License-Identifier: MIT */
/*
 * A legacy (virtio 0.9.5) virtio-net PCI device: I/O BAR 0 with the legacy
 * register block, two queues (0 receive, 1 transmit), INTx on GSI_VIRTIO
 * injected through a KVM irqfd. Linux's virtio_pci takes it with its legacy
 * transport (device 0x1000, revision 0, no virtio capabilities).
 *
 * Registers are handled on the vCPU thread under the device lock; the rings
 * are served on the main thread under the same lock: the receive ring by the
 * library's virtio-net queue (vdemux_vnet_rxq, started and stopped from
 * guest.c), the transmit ring here.
 *
 * Ring features: VIRTIO_RING_F_INDIRECT_DESC, so that Linux's big-packet
 * receive chains (19 descriptors) take one ring entry each (without it only
 * 13 fit a 256-entry ring), and VIRTIO_RING_F_EVENT_IDX. Both are
 * transport features Linux's legacy virtio_pci keeps (bits 28 and 29 fit
 * the legacy 32-bit feature register); the transmit ring below honours them
 * too: it is served through the library's split virtqueue (vdemux/virtq.h),
 * the same checked walker as the receive queue's.
 *
 * Offloads: the device offers checksum offload and TSO (IPv4, IPv6, ECN) in
 * both directions, and VIRTIO_NET_F_MTU (the guest's mtu= option). What the
 * driver accepts goes to the library's receive queue with the ring
 * (guest.c), which writes the metadata into the guest's headers or finishes
 * checksums and segments for a guest that declined; and to the TAP's
 * TUNSETOFFLOAD (tap.c). A transmitted frame keeps its header (switch.c).
 *
 * Interrupts: both queues' go through vnet_interrupt(), which sets the
 * ISR's queue bit and then pulses the irqfd, so the guest's handler
 * (Linux's vp_interrupt reads the ISR and looks at its queues only if the
 * queue bit is set) always finds the bit of the interrupt it took. The
 * receive queue's interrupt is decided by the library inside engine calls:
 * the queue is created with a callback signal (guest.c) that calls
 * vnet_interrupt(). Reading the ISR returns it and clears it. The ISR is
 * an atomic, not under the device lock: the library's callback comes
 * inside engine calls made with this device's lock held (a kick) or not (a
 * TAP read), and the vCPU thread reads it.
 */
#include <linux/virtio_ring.h>
#include <errno.h>
#include <linux/kvm.h>
#include <linux/virtio_config.h>
#include <linux/virtio_net.h>
#include <linux/virtio_pci.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "vmm.h"

#define ISR_QUEUE 0x1u /* a queue was used */

/* PCI command register bits the device keeps: I/O space, memory space, bus
 * master, SERR#, and INTx Disable (bit 10), which generic drivers
 * (uio_pci_generic, vfio-pci) set and read back to tell whether the
 * function can mask its interrupt line. */
#define PCI_CMD_MASK 0x0507u
#define PCI_CMD_INTX_DISABLE 0x0400u
#define PCI_STATUS_INTX 0x0008u /* status register: INTx pending */

static void vnet_wake(struct guest *g, unsigned ev)
{
	uint64_t one = 1;
	g->net.events |= ev;
	if (write(g->net.kick_fd, &one, sizeof one) < 0) {
		/* The counter cannot overflow in practice; a failure changes nothing. */
	}
}

/* Queue notifications through KVM ioeventfds: the guest's write of a queue's
 * index to QUEUE_NOTIFY signals that queue's eventfd inside KVM, with no
 * return to the vCPU thread (a nested exit to userspace costs most). Set at
 * DRIVER_OK at the BAR as it is, removed at a reset or when the BAR moves;
 * a notification while they are not set comes as a trapped write
 * (vnet_reg_write). Device lock held. */
static int ioev_assign(struct guest *g, uint32_t port, unsigned q, bool on)
{
	struct kvm_ioeventfd io = {.datamatch = q,
				   .addr = port,
				   .len = 2,
				   .fd = g->net.ioev_fd[q],
				   .flags = KVM_IOEVENTFD_FLAG_PIO | KVM_IOEVENTFD_FLAG_DATAMATCH |
					    (on ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN)};
	return ioctl(g->vm_fd, KVM_IOEVENTFD, &io) < 0 ? -errno : 0;
}

static void ioev_set(struct guest *g, bool on)
{
	struct vnet_dev *d = &g->net;
	uint32_t port = on ? (d->bar0 & 0xfffcu) + VIRTIO_PCI_QUEUE_NOTIFY : d->ioev_port;
	if (on == (d->ioev_port != 0) || !port || d->ioev_fd[0] < 0)
		return;
	int r = ioev_assign(g, port, 0, on);
	if (r == 0 && (r = ioev_assign(g, port, 1, on)) < 0 && on)
		ioev_assign(g, port, 0, false);
	if (r < 0 && on) {
		vmm_log(g, "vmm: queue notifications trapped (KVM_IOEVENTFD: %s)", strerror(-r));
		return;
	}
	d->ioev_port = on ? port : 0;
}

void vnet_ioev_kick(struct guest *g, unsigned q)
{
	uint64_t cnt;
	if (read(g->net.ioev_fd[q], &cnt, sizeof cnt) <= 0)
		return;
	pthread_mutex_lock(&g->net.lock);
	g->net.kicks[q != 0]++;
	g->net.events |= q == 0 ? VNET_EV_RX : VNET_EV_TX;
	pthread_mutex_unlock(&g->net.lock);
}

/* The legacy layout: the descriptor table at PFN * 4096, the available ring
 * after it, the used ring at the next 4096 boundary. */
static void vnet_queue_setup(struct vnet_queue *q, uint16_t size, uint32_t pfn)
{
	uint64_t base = (uint64_t)pfn * VMM_PAGE;
	q->size = size;
	q->pfn = pfn;
	q->desc = base;
	q->avail = base + 16ull * size;
	q->used = (q->avail + 6 + 2ull * size + VMM_PAGE - 1) & ~(VMM_PAGE - 1);
}

/* The transmit ring is set up at DRIVER_OK and goes at a reset, or when the
 * driver takes its memory away (PFN 0). Device lock held. */
static void tx_ring_stop(struct vnet_dev *d)
{
	vdemux_virtq *q = d->txq;
	if (!q)
		return;
	struct vdemux_virtq_stats st = {0};
	vdemux_virtq_stats(q, &st, sizeof st);
	d->tx_skipped += st.skipped;
	d->txq = NULL;
	vdemux_virtq_destroy(q);
}

static void tx_ring_start(struct guest *g)
{
	struct vnet_dev *d = &g->net;
	const struct vnet_queue *q = &d->vq[1];
	tx_ring_stop(d);
	if (!q->pfn)
		return;
	struct vdemux_virtq_opts o = VDEMUX_OPTS(vdemux_virtq_opts, .ram = g->ram,
						 .ram_size = g->cfg.mem, .desc_gpa = q->desc,
						 .avail_gpa = q->avail, .used_gpa = q->used,
						 .size = q->size, .features = d->guest_features);
	int r = vdemux_virtq_create(&d->txq, &o);
	if (r < 0)
		vmm_log(g, "vmm: transmit ring not set up: %s", strerror(-r));
}

static void vnet_reset(struct guest *g)
{
	struct vnet_dev *d = &g->net;
	tx_ring_stop(d);
	ioev_set(g, false);
	d->guest_features = 0;
	d->queue_sel = 0;
	memset(d->vq, 0, sizeof d->vq);
	d->status = 0;
	__atomic_store_n(&d->isr, 0, __ATOMIC_SEQ_CST);
	d->generation++;
	vnet_wake(g, VNET_EV_CONFIG);
}

int vnet_init(struct guest *g, enum rx_layout layout)
{
	struct vnet_dev *d = &g->net;
	int err = pthread_mutex_init(&d->lock, NULL);
	if (err)
		return -err;
	memcpy(d->mac, g->cfg.mac, 6);
	d->host_features = 1u << VIRTIO_NET_F_MAC | 1u << VIRTIO_RING_F_INDIRECT_DESC |
			   1u << VIRTIO_RING_F_EVENT_IDX | 1u << VIRTIO_NET_F_MTU;
	/* Receive offloads; without MRG_RXBUF they are also what makes Linux
	 * post big (page-sized) receive buffers. */
	d->host_features |= 1u << VIRTIO_NET_F_GUEST_CSUM | 1u << VIRTIO_NET_F_GUEST_TSO4 |
			    1u << VIRTIO_NET_F_GUEST_TSO6 | 1u << VIRTIO_NET_F_GUEST_ECN;
	/* Transmit offloads: the guest's GSO frames go on as they are. */
	d->host_features |= 1u << VIRTIO_NET_F_CSUM | 1u << VIRTIO_NET_F_HOST_TSO4 |
			    1u << VIRTIO_NET_F_HOST_TSO6 | 1u << VIRTIO_NET_F_HOST_ECN;
	if (layout == RX_MERGEABLE)
		d->host_features |= 1u << VIRTIO_NET_F_MRG_RXBUF;
	d->bar0 = VNET_IO_BASE | 1;
	return 0;
}

uint32_t vnet_cfg_read(struct guest *g, unsigned reg)
{
	struct vnet_dev *d = &g->net;
	switch (reg) {
	case 0x00: return 0x1000u << 16 | 0x1af4u; /* transitional virtio-net */
	case 0x04: {
		uint16_t cmd = __atomic_load_n(&d->command, __ATOMIC_SEQ_CST);
		bool pending = __atomic_load_n(&d->isr, __ATOMIC_SEQ_CST) != 0;
		return (pending ? PCI_STATUS_INTX : 0u) << 16 | cmd;
	}
	case 0x08: return 0x02000000u; /* Ethernet controller, revision 0 */
	case 0x10: return d->bar0;
	case 0x2c: return 1u << 16 | 0x1af4u;	/* subsystem: virtio device type 1 */
	case 0x3c: return 1u << 8 | GSI_VIRTIO; /* INTA#, line */
	default: return 0;
	}
}

static void irq_pulse(struct guest *g)
{
	uint64_t one = 1;
	if (write(g->net.irqfd, &one, sizeof one) < 0) {
		/* Cannot fail for an eventfd short of overflow. */
	}
}

/* A write of the command register. INTx is edge-triggered through the irqfd:
 * an interrupt that came while INTx was disabled is still in the ISR, and
 * the line is pulsed when the driver enables INTx again, so that it is not
 * lost. Device lock held. */
static void cmd_write(struct guest *g, uint16_t cmd)
{
	struct vnet_dev *d = &g->net;
	uint16_t old = __atomic_exchange_n(&d->command, cmd, __ATOMIC_SEQ_CST);
	if ((old & PCI_CMD_INTX_DISABLE) && !(cmd & PCI_CMD_INTX_DISABLE) &&
	    __atomic_load_n(&d->isr, __ATOMIC_SEQ_CST))
		irq_pulse(g);
}

void vnet_cfg_write(struct guest *g, unsigned reg, uint32_t val, unsigned size)
{
	struct vnet_dev *d = &g->net;
	pthread_mutex_lock(&d->lock);
	if (reg == 0x04 && size >= 2)
		cmd_write(g, (uint16_t)(val & PCI_CMD_MASK));
	else if (reg == 0x10 && size == 4) {
		ioev_set(g, false);			   /* the registers move */
		d->bar0 = (val & ~(VNET_IO_SIZE - 1)) | 1; /* all ones reads back the size */
	}
	pthread_mutex_unlock(&d->lock);
}

void vnet_interrupt(struct guest *g)
{
	/* The bit first: the guest's handler may run as soon as the irqfd is
	 * written, and must find it. With INTx Disable set the line stays
	 * quiet; the bit waits in the ISR (and the status register's
	 * interrupt bit) for the driver to poll it or enable INTx again. */
	__atomic_fetch_or(&g->net.isr, ISR_QUEUE, __ATOMIC_SEQ_CST);
	if (!(__atomic_load_n(&g->net.command, __ATOMIC_SEQ_CST) & PCI_CMD_INTX_DISABLE))
		irq_pulse(g);
}

/* The receive queue's interrupt: the library calls this (the queue's
 * VDEMUX_SIGNAL_CALLBACK) from inside engine calls on the main thread, when
 * the guest asks to be interrupted for what was published. */
void vnet_rx_interrupt(vdemux_vm_id vm, unsigned reasons, void *payload)
{
	struct guest *g = payload;
	(void)vm;
	if (!(reasons & VDEMUX_SIG_RX))
		return;
	g->net.rx_irqs++;
	vnet_interrupt(g);
}

static void vnet_reg_write(struct guest *g, unsigned off, uint32_t v)
{
	struct vnet_dev *d = &g->net;
	switch (off) {
	case VIRTIO_PCI_GUEST_FEATURES: d->guest_features = v & d->host_features; break;
	case VIRTIO_PCI_QUEUE_PFN:
		if (d->queue_sel < 2) {
			if (v == 0) {
				memset(&d->vq[d->queue_sel], 0, sizeof d->vq[0]);
				if (d->queue_sel == 1)
					tx_ring_stop(d);
			} else if ((uint64_t)v * VMM_PAGE < g->cfg.mem) {
				vnet_queue_setup(&d->vq[d->queue_sel], VQ_MAX_SIZE, v);
			}
		}
		break;
	case VIRTIO_PCI_QUEUE_SEL: d->queue_sel = (uint16_t)v; break;
	case VIRTIO_PCI_QUEUE_NOTIFY:
		if (v == 0)
			vnet_wake(g, VNET_EV_RX);
		else if (v == 1)
			vnet_wake(g, VNET_EV_TX);
		break;
	case VIRTIO_PCI_STATUS:
		if ((v & 0xff) == 0) {
			vnet_reset(g);
		} else {
			bool ok = !(d->status & VIRTIO_CONFIG_S_DRIVER_OK) &&
				  (v & VIRTIO_CONFIG_S_DRIVER_OK);
			d->status = (uint8_t)v;
			if (ok) {
				tx_ring_start(g);
				ioev_set(g, true);
				d->generation++;
				vnet_wake(g, VNET_EV_CONFIG | VNET_EV_RX | VNET_EV_TX);
			}
		}
		break;
	default: break;
	}
}

static uint32_t vnet_reg_read(struct guest *g, unsigned off, unsigned size)
{
	struct vnet_dev *d = &g->net;
	uint32_t v = 0;
	switch (off) {
	case VIRTIO_PCI_HOST_FEATURES: return d->host_features;
	case VIRTIO_PCI_GUEST_FEATURES: return d->guest_features;
	case VIRTIO_PCI_QUEUE_PFN: return d->queue_sel < 2 ? d->vq[d->queue_sel].pfn : 0;
	case VIRTIO_PCI_QUEUE_NUM: return d->queue_sel < 2 ? VQ_MAX_SIZE : 0;
	case VIRTIO_PCI_QUEUE_SEL: return d->queue_sel;
	case VIRTIO_PCI_STATUS: return d->status;
	case VIRTIO_PCI_ISR:
		/* Reading acknowledges: the bits are returned and cleared. */
		return __atomic_exchange_n(&d->isr, 0, __ATOMIC_SEQ_CST);
	default: break;
	}
	/* Device configuration (struct virtio_net_config): mac[6], status
	 * and max_virtqueue_pairs (not offered: 0), mtu at 10. */
	unsigned c = off - VIRTIO_PCI_CONFIG_OFF(0);
	uint8_t cfg[12] = {0};
	memcpy(cfg, d->mac, 6);
	cfg[10] = (uint8_t)g->cfg.mtu;
	cfg[11] = (uint8_t)(g->cfg.mtu >> 8);
	if (off >= VIRTIO_PCI_CONFIG_OFF(0))
		for (unsigned i = 0; i < size; i++)
			if (c + i < sizeof cfg)
				v |= (uint32_t)cfg[c + i] << (8 * i);
	return v;
}

int vnet_io(struct guest *g, uint16_t port, bool out, uint8_t *data, unsigned size)
{
	struct vnet_dev *d = &g->net;
	uint32_t base = d->bar0 & 0xfffcu;
	if (!(d->bar0 & 1) || base == 0 || port < base || port >= base + VNET_IO_SIZE)
		return 0;
	unsigned off = port - base;
	/* A reset (status 0) or a receive ring taken away (its PFN set to 0)
	 * stops the receive queue before the write returns: the driver frees
	 * the ring's memory right after, and the queue must not write there
	 * any more. Stopping is an engine call: take the engine's lock first
	 * (the main thread's order: engine, then device). These writes are
	 * rare (driver setup and teardown). */
	bool sync = out && (off == VIRTIO_PCI_STATUS || off == VIRTIO_PCI_QUEUE_PFN);
	if (sync)
		pthread_mutex_lock(&g->vmm->engine_lock);
	pthread_mutex_lock(&d->lock);
	if (out) {
		uint32_t v = 0;
		memcpy(&v, data, size);
		vnet_reg_write(g, off, v);
		if (sync && g->rx.started && (d->status == 0 || d->vq[0].pfn == 0)) {
			vdemux_vnet_rxq_stop(g->rx.q);
			g->rx.started = false;
		}
	} else {
		uint32_t v = vnet_reg_read(g, off, size);
		memcpy(data, &v, size);
	}
	pthread_mutex_unlock(&d->lock);
	if (sync)
		pthread_mutex_unlock(&g->vmm->engine_lock);
	return 1;
}

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

/* Up to VNET_TX_BURST chains into the VMM's tx_buf, to the switch; how many chains
 * were taken (-EIO: the ring is broken). */
static int tx_burst(struct guest *g, unsigned hdr_len)
{
	struct vnet_dev *d = &g->net;
	const uint8_t *frames[VNET_TX_BURST];
	uint32_t lens[VNET_TX_BURST];
	unsigned n = 0;
	int popped = 0, r = 0;
	struct vdemux_virtq_chain c;
	struct iovec iov[VQ_MAX_SEG];

	while (popped < (int)VNET_TX_BURST && (r = vdemux_virtq_pop(d->txq, &c, iov, VQ_MAX_SEG)) == 1) {
		uint8_t *buf = g->vmm->tx_buf + (size_t)n * VNET_TX_ROOM;
		uint32_t len = tx_gather(&c, iov, hdr_len, buf);
		vdemux_virtq_push(d->txq, c.head, 0);
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
		vmm_switch(g->vmm, g, frames, lens, n);
	return r < 0 ? r : popped;
}

int vnet_tx(struct guest *g)
{
	struct vnet_dev *d = &g->net;
	unsigned hdr_len = (d->guest_features & (1u << VIRTIO_NET_F_MRG_RXBUF))
				   ? sizeof(struct virtio_net_hdr_mrg_rxbuf)
				   : sizeof(struct virtio_net_hdr);
	int total = 0;

	if (!d->txq || !(d->status & VIRTIO_CONFIG_S_DRIVER_OK))
		return 0;
	for (;;) {
		int popped = tx_burst(g, hdr_len);
		/* Chains skipped as malformed are given back here too. */
		if (vdemux_virtq_publish(d->txq, NULL) == 1) {
			d->irqs++;
			vnet_interrupt(g);
		}
		if (popped < 0) {
			/* The guest broke the ring: serve it no more until the
			 * driver resets the device (legacy virtio has no
			 * DEVICE_NEEDS_RESET). */
			d->tx_bad++;
			tx_ring_stop(d);
			vmm_log(g, "vmm: malformed transmit ring, queue stopped");
			break;
		}
		total += popped;
		/* Out of chains: ask for a kick, and go on if some came meanwhile. */
		if (popped < (int)VNET_TX_BURST && vdemux_virtq_enable_kick(d->txq, true) != 1)
			break;
	}
	return total;
}

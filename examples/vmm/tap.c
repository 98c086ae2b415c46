/* SPDX-License-Identifier: MIT */
/*
 * The uplink: a TAP device opened with IFF_VNET_HDR, so that every frame
 * comes and goes with a VNET_HDR_LEN-byte virtio-net header (TUNSETVNETHDRSZ):
 * a TSO frame of up to 64 KiB, or a checksum left to finish, instead of
 * MTU-sized frames each checksummed by the kernel.
 *
 * Receive: frames are read straight into pool pages lent by the engine
 * (vdemux_rx_alloc), the header at TAP_DATA_OFF - VNET_HDR_LEN of the first
 * page and the frame at TAP_DATA_OFF. That offset is where Linux 6.1's
 * big-packet receive chain wants a frame's first byte (its header at 0, the
 * data from 32 on), so a frame for a big-packet guest is flipped as it is:
 * the kernel's copy into the page is its only copy; the library reads the
 * header and clears it. Every frame waiting (up to TAP_BURST, until EAGAIN)
 * is read, then the burst goes to the engine in one vdemux_rx_submit.
 *
 * One read fills at most TAP_IOV pages; a frame over VMM_FRAME_MAX (a TAP
 * with a larger MTU) is dropped and counted (rx_oversize), never handed on
 * cut short.
 *
 * With several lanes (--io-threads, iothread.c) the TAP is multiqueue
 * (IFF_MULTI_QUEUE): each lane reads its own queue into its own engine and
 * sends through it. The kernel's tun gives a flow's frames to the queue
 * the flow's last frame out came from, so a guest's flow, sent on its
 * pair's lane, comes back on that lane.
 *
 * Offloads: the TAP may give only what TUNSETOFFLOAD allows (a device
 * setting: set through the main lane's queue). It is set to
 * what the guests' drivers accepted (tap_update_offloads()): the union, as
 * the engine finishes checksums and segments TSO frames for a guest that
 * declined (docs/virtio-net.md, "Offload metadata"). UFO is never offered
 * to the guests, so never taken from the TAP (the engine does not fragment).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "vmm.h"

#define TAP_BUDGET 64 /* frames per call, so that the guests get their turn */
#define TAP_HDR_OFF (TAP_DATA_OFF - VNET_HDR_LEN) /* the header's place in the first page */

int tap_open(const char *name, bool multi, int *out_fd)
{
	struct ifreq ifr;
	int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	memset(&ifr, 0, sizeof ifr);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | (multi ? IFF_MULTI_QUEUE : 0);
	if (strlen(name) >= IFNAMSIZ) {
		close(fd);
		return -ENAMETOOLONG;
	}
	strcpy(ifr.ifr_name, name);
	int hdr = VNET_HDR_LEN;
	/* No offload until a guest's driver accepts one. */
	if (ioctl(fd, TUNSETIFF, &ifr) < 0 || ioctl(fd, TUNSETVNETHDRSZ, &hdr) < 0 ||
	    ioctl(fd, TUNSETOFFLOAD, 0ul) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	/* Bring the link up; its addresses are the administrator's business. */
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s >= 0) {
		if (ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
			ifr.ifr_flags |= IFF_UP;
			ioctl(s, SIOCSIFFLAGS, &ifr);
		}
		close(s);
	}
	*out_fd = fd;
	return 0;
}

/* Pages lent by the engine and not yet used are kept across calls: make it
 * @want of them. */
static int stash_fill(struct lane *l, unsigned want)
{
	struct vdemux_rx_buf *stash = l->tap.stash;
	while (l->tap.nstash < want) {
		int n = vdemux_rx_alloc(l->eng, stash + l->tap.nstash, want - l->tap.nstash);
		if (n <= 0)
			return n < 0 ? n : -ENOBUFS;
		l->tap.nstash += (unsigned)n;
	}
	return 0;
}

/* Lay out @n bytes read (header and frame) over the pages from @b on; the
 * number of pages. */
static unsigned tap_layout(struct uplink *t, struct vdemux_rx_buf *b, uint64_t n)
{
	unsigned k = (unsigned)((n + TAP_HDR_OFF + VMM_PAGE - 1) / VMM_PAGE);
	uint64_t left = n;
	for (unsigned i = 0; i < k; i++) {
		uint32_t room = i == 0 ? VMM_PAGE - TAP_HDR_OFF : VMM_PAGE;
		b[i].off = i == 0 ? TAP_HDR_OFF : 0;
		b[i].len = left < room ? (uint32_t)left : room;
		b[i].flags = i + 1 < k ? VDEMUX_RXBUF_MORE : 0;
		left -= b[i].len;
	}
	const struct virtio_net_hdr *h = (const void *)(b[0].data + TAP_HDR_OFF);
	b[0].flags |= VDEMUX_RXBUF_VNET_HDR(VNET_HDR_LEN);
	if ((h->gso_type & ~VIRTIO_NET_HDR_GSO_ECN) != VIRTIO_NET_HDR_GSO_NONE)
		t->rx_gso++;
	else if (h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM)
		t->rx_csum++;
	t->rx_frames++;
	t->rx_bytes += n - VNET_HDR_LEN;
	return k;
}

/* One frame into the stash's pages from @at on: the pages it took (0: the
 * read was dropped, its pages stay lent; -EAGAIN: nothing waits; -errno). */
static int tap_read(struct lane *l, unsigned at)
{
	struct vdemux_rx_buf *b = l->tap.stash + at;
	/* The pages, then a few bytes more: a read that reaches into them
	 * is a frame the pages cannot hold. */
	uint8_t spill[64];
	struct iovec iov[TAP_IOV + 1];
	iov[0] = (struct iovec){.iov_base = b[0].data + TAP_HDR_OFF, .iov_len = VMM_PAGE - TAP_HDR_OFF};
	for (unsigned i = 1; i < TAP_IOV; i++)
		iov[i] = (struct iovec){.iov_base = b[i].data, .iov_len = VMM_PAGE};
	iov[TAP_IOV] = (struct iovec){.iov_base = spill, .iov_len = sizeof spill};
	ssize_t n;
	do
		n = readv(l->tap.fd, iov, TAP_IOV + 1);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (n < VNET_HDR_LEN + 14) {
		l->tap.rx_short++;
		return 0;
	}
	if ((uint64_t)n > VNET_HDR_LEN + VMM_FRAME_MAX) {
		/* Cut short by the read, or longer than the engine takes:
		 * either way not the frame that was sent. */
		l->tap.rx_oversize++;
		return 0;
	}
	return (int)tap_layout(&l->tap, b, (uint64_t)n);
}

/* Read up to TAP_BURST frames into the stash: the pages they took (*@nframes
 * frames); *@more false when the TAP ran dry (or failed: *@err) or the pool did. */
static unsigned tap_read_burst(struct lane *l, unsigned *nframes, bool *more, int *err)
{
	unsigned used = 0;
	*nframes = 0;
	while (*nframes < TAP_BURST) {
		if (stash_fill(l, used + TAP_IOV) < 0) {
			*more = false; /* the pool is dry; frames wait in the TAP */
			break;
		}
		int k = tap_read(l, used);
		if (k < 0) {
			*more = false;
			*err = k == -EAGAIN ? 0 : k;
			break;
		}
		if (k > 0) {
			used += (unsigned)k;
			(*nframes)++;
		}
	}
	return used;
}

int tap_rx(struct lane *l)
{
	struct uplink *t = &l->tap;
	int frames = 0, err = 0;
	bool more = true;
	while (more && frames < TAP_BUDGET) {
		unsigned n, used = tap_read_burst(l, &n, &more, &err);
		if (!used)
			break;
		int r = vdemux_rx_submit(l->eng, t->stash, used);
		t->rx_bursts++;
		if (r < 0) {
			/* Refused whole (nothing changed): the pages stay lent, to
			 * be written again. */
			t->rx_short += n;
			break;
		}
		memmove(t->stash, t->stash + used, (t->nstash - used) * sizeof t->stash[0]);
		t->nstash -= used;
		frames += (int)n;
	}
	return err < 0 ? err : frames;
}

int tap_set_offloads(struct vmm *v, unsigned want)
{
	struct uplink *t = &v->lane[0].tap;
	if (want == t->offloads)
		return 0;
	if (ioctl(t->fd, TUNSETOFFLOAD, (unsigned long)want) < 0)
		return -errno;
	t->offloads = want;
	t->offloads_taken |= want;
	t->offload_sets++;
	return 1;
}

void tap_tx(struct lane *l, const uint8_t *hdr_and_frame, uint32_t len)
{
	if (write(l->tap.fd, hdr_and_frame, len) == (ssize_t)len)
		l->tap.tx_frames++;
	else
		l->tap.tx_errors++;
}

void tap_rx_stop(struct vmm *v)
{
	for (unsigned i = 0; i < v->nlanes; i++) {
		struct lane *l = &v->lane[i];
		if (l->tap.nstash)
			vdemux_rx_abort(l->eng, l->tap.stash, l->tap.nstash);
		l->tap.nstash = 0;
	}
}

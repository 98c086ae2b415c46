/*
 * The uplink: a TAP device. Frames read from it land straight in pool pages
 * lent by the engine (vdemux_rx_alloc), at offset TAP_DATA_OFF of the first
 * page, and are handed back with vdemux_rx_submit. That offset is where
 * Linux 6.1's big-packet receive chain wants a frame's first byte (the
 * header at 0, the data from 32 on), so a frame for a big-packet guest is
 * flipped as it is: the kernel's copy into the page is its only copy. Other
 * destinations (mergeable guests, a second destination) get copies.
 *
 * One read fills at most TAP_IOV pages: TAP_FRAME_MAX bytes (65,504, a TAP
 * MTU of 65,490). A longer frame (a TAP with a larger MTU) is dropped and
 * counted (rx_oversize), never handed on cut short.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "vmm.h"

#define TAP_BUDGET 64 /* frames per call, so that the guests get their turn */

int tap_open(const char *name, int *out_fd)
{
	struct ifreq ifr;
	int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	memset(&ifr, 0, sizeof ifr);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
	if (strlen(name) >= IFNAMSIZ) {
		close(fd);
		return -ENAMETOOLONG;
	}
	strcpy(ifr.ifr_name, name);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
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

/* Pages lent by the engine and not yet used are kept across calls. */
static int stash_fill(struct vmm *v)
{
	struct vdemux_rx_buf *stash = v->tap.stash;
	while (v->tap.nstash < TAP_IOV) {
		int n = vdemux_rx_alloc(v->eng, stash + v->tap.nstash, TAP_IOV - v->tap.nstash);
		if (n <= 0)
			return n < 0 ? n : -ENOBUFS;
		v->tap.nstash += (unsigned)n;
	}
	return 0;
}

int tap_rx(struct vmm *v)
{
	struct vdemux_rx_buf *stash = v->tap.stash;
	int frames = 0;
	while (frames < TAP_BUDGET) {
		if (stash_fill(v) < 0)
			return frames; /* the pool is dry; frames wait in the TAP */
		/* The stash's pages, then a few bytes more: a read that reaches
		 * into them is a frame the pages cannot hold. */
		uint8_t spill[64];
		struct iovec iov[TAP_IOV + 1];
		iov[0] = (struct iovec){.iov_base = stash[0].data + TAP_DATA_OFF, .iov_len = VMM_PAGE - TAP_DATA_OFF};
		for (unsigned i = 1; i < TAP_IOV; i++)
			iov[i] = (struct iovec){.iov_base = stash[i].data, .iov_len = VMM_PAGE};
		iov[TAP_IOV] = (struct iovec){.iov_base = spill, .iov_len = sizeof spill};
		ssize_t n = readv(v->tap.fd, iov, TAP_IOV + 1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? frames : -errno;
		}
		if (n < 14) {
			v->tap.rx_short++;
			continue; /* the pages stay lent, to be written again */
		}
		if ((uint64_t)n > TAP_FRAME_MAX) {
			/* Cut short by the read, or longer than the read says it
			 * wrote: either way not the frame that was sent. Dropped;
			 * the pages stay lent. */
			v->tap.rx_oversize++;
			continue;
		}
		/* Page i holds frame bytes [start_i, start_i + len_i): the first
		 * page from TAP_DATA_OFF, the others whole. */
		unsigned k = (unsigned)((n + TAP_DATA_OFF + VMM_PAGE - 1) / VMM_PAGE);
		uint64_t left = (uint64_t)n;
		for (unsigned i = 0; i < k; i++) {
			uint32_t room = i == 0 ? VMM_PAGE - TAP_DATA_OFF : VMM_PAGE;
			stash[i].off = i == 0 ? TAP_DATA_OFF : 0;
			stash[i].len = left < room ? (uint32_t)left : room;
			stash[i].flags = i + 1 < k ? VDEMUX_RXBUF_MORE : 0;
			left -= stash[i].len;
		}
		int r = vdemux_rx_submit(v->eng, stash, k);
		if (r < 0) {
			v->tap.rx_short++;
			continue;
		}
		memmove(stash, stash + k, (v->tap.nstash - k) * sizeof stash[0]);
		v->tap.nstash -= k;
		v->tap.rx_frames++;
		v->tap.rx_bytes += (uint64_t)n;
		frames++;
	}
	return frames;
}

void tap_rx_stop(struct vmm *v)
{
	if (v->tap.nstash)
		vdemux_rx_abort(v->eng, v->tap.stash, v->tap.nstash);
	v->tap.nstash = 0;
}

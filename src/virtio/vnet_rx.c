/* SPDX-License-Identifier: MIT */
/* Receive chain layouts of virtio-net; see vnet_rx.h for what Linux posts. */
#include "virtio/vnet_rx.h"

#include <errno.h>

#define PG ((uint64_t)VDEMUX_PAGE_SIZE)

uint32_t vd_vnet_hdr_len(uint64_t features)
{
	if (features & VD_VIRTIO_NET_F_HASH_REPORT)
		return 20;
	if (features & (VD_VIRTIO_NET_F_MRG_RXBUF | VD_VIRTIO_F_VERSION_1))
		return 12;
	return 10;
}

/* First segment is the header at offset 0 of a page, second the rest of
 * that page after it. */
static bool big_shape(const struct vd_vring_seg *s, uint32_t nseg, uint32_t hdr_len)
{
	uint64_t page;

	if (nseg < 2 || s[0].gpa % PG != 0 || s[0].len < hdr_len || s[0].len >= PG)
		return false;
	page = s[0].gpa;
	/* s[1] starts after the header, inside the page, and ends with it
	 * (written without s[1].gpa + s[1].len, which a guest can overflow). */
	return s[1].gpa >= page + s[0].len && s[1].gpa < page + PG && s[1].len == page + PG - s[1].gpa;
}

static bool seen(const uint64_t *pages, uint32_t n, uint64_t page)
{
	for (uint32_t i = 0; i < n; i++)
		if (pages[i] == page)
			return true;
	return false;
}

/* Fill @pages; false when the chain is not flippable. */
static bool big_pages(const struct vd_vring *vq, const struct vd_vring_seg *s, uint32_t nseg,
		      uint64_t *pages, uint32_t max_pages, uint32_t *npages)
{
	uint32_t limit = max_pages < VD_VNET_MAX_FLIP_PAGES ? max_pages : VD_VNET_MAX_FLIP_PAGES;
	uint32_t n = 0;

	if (nseg - 1 > limit)
		return false;
	pages[n++] = s[0].gpa;
	for (uint32_t i = 2; i < nseg; i++) {
		if (s[i].gpa % PG != 0 || s[i].len != PG || seen(pages, n, s[i].gpa))
			return false;
		pages[n++] = s[i].gpa;
	}
	/* Flipping replaces whole pages: none may hold a byte of a ring. */
	for (uint32_t i = 0; i < n; i++)
		if (vd_vring_overlaps_rings(vq, pages[i], PG, true))
			return false;
	*npages = n;
	return true;
}

int vd_vnet_rx_classify(const struct vd_vring *vq, uint64_t features, const struct vd_vring_seg *segs,
			uint32_t nseg, struct vd_vnet_rx_shape *out, uint64_t *pages, uint32_t max_pages)
{
	struct vd_vnet_rx_shape r = {0};
	uint64_t total = 0;

	if (!vq || !segs || !out || nseg == 0 || (max_pages && !pages))
		return -EINVAL;
	for (uint32_t i = 0; i < nseg; i++)
		total += segs[i].len;
	r.hdr_len = vd_vnet_hdr_len(features);
	if (total < r.hdr_len)
		return -EINVAL;
	r.capacity = (uint32_t)(total - r.hdr_len < UINT32_MAX ? total - r.hdr_len : UINT32_MAX);

	if (features & VD_VIRTIO_NET_F_MRG_RXBUF) {
		r.layout = VD_VNET_RX_MERGEABLE;
	} else if (big_shape(segs, nseg, r.hdr_len)) {
		r.layout = VD_VNET_RX_BIG;
		r.data_off = (uint32_t)(segs[1].gpa % PG);
		r.flippable = max_pages > 0 && big_pages(vq, segs, nseg, pages, max_pages, &r.npages);
		if (!r.flippable)
			r.npages = 0;
	} else {
		r.layout = VD_VNET_RX_SMALL;
	}
	*out = r;
	return 0;
}

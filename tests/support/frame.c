/* SPDX-License-Identifier: MIT */
/*
 * Self-describing frames: a guest that finds one in its memory can tell
 * which frame it is (sequence number), how long it should be, and rebuild
 * every byte to compare.
 */
#include <stdlib.h>
#include <string.h>

#include "vt.h"

const uint8_t vt_bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
static const uint8_t vt_src[6] = {0x02, 0xee, 0x00, 0x00, 0x00, 0x01};

void vt_mac(vdemux_vm_id id, uint8_t mac[6])
{
	mac[0] = 0x02;
	mac[1] = 0x00;
	mac[2] = (uint8_t)(id >> 24);
	mac[3] = (uint8_t)(id >> 16);
	mac[4] = (uint8_t)(id >> 8);
	mac[5] = (uint8_t)id;
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

void vt_frame_fill(uint8_t *buf, uint32_t len, const uint8_t dst[6], uint32_t seq)
{
	uint8_t hdr[VT_FRAME_MIN_TAGGED];
	uint32_t mix = seq * 2654435761u;

	memcpy(hdr, dst, 6);
	memcpy(hdr + 6, vt_src, 6);
	hdr[12] = 0x88;
	hdr[13] = 0xb5;
	put_be32(hdr + VT_FRAME_SEQ_OFF, seq);
	put_be32(hdr + VT_FRAME_LEN_OFF, len);
	memcpy(buf, hdr, len < sizeof(hdr) ? len : sizeof(hdr));
	for (uint32_t i = sizeof(hdr); i < len; i++)
		buf[i] = (uint8_t)(((mix >> 11) + i * 7u + (i >> 12) * 13u) % 255u + 1u);
}

unsigned vt_burst_add(struct vt_fx *fx, struct vt_burst *b, vdemux_vm_id to, uint32_t len)
{
	uint8_t dst[6];
	uint8_t *data;
	unsigned i = b->n;

	assert_true(i < sizeof(b->f) / sizeof(b->f[0]));
	data = malloc(len ? len : 1);
	assert_non_null(data);
	if (to)
		vt_mac(to, dst);
	else
		memcpy(dst, vt_bcast, 6);
	b->seq[i] = fx->next_seq++;
	vt_frame_fill(data, len, dst, b->seq[i]);
	b->f[i].data = data;
	b->f[i].len = len;
	b->f[i].pad = 0;
	b->n++;
	return i;
}

void vt_burst_free(struct vt_burst *b)
{
	for (unsigned i = 0; i < b->n; i++)
		free((void *)b->f[i].data);
	b->n = 0;
}

void vt_send(struct vt_fx *fx, const struct vt_vm *to, unsigned n, uint32_t len, int expect)
{
	struct vt_burst b = {0};

	for (unsigned i = 0; i < n; i++)
		vt_burst_add(fx, &b, to ? to->id : 0, len);
	assert_int_equal(vdemux_rx_burst(fx->eng, b.f, n), expect);
	vt_burst_free(&b);
}

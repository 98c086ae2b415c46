/* SPDX-License-Identifier: MIT */
/*
 * The guest side: what a VM can see of its memory through the simulated
 * tables, and a consumer that checks every completion against the frame it
 * claims to hold.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vt.h"

int vt_guest_read_page(struct vt_fx *fx, unsigned b, const struct vt_vm *vm, uint64_t gpa, uint8_t *page)
{
	return vdemux_sim_read(fx->sim[b], vm->id, gpa, page, VDEMUX_PAGE_SIZE);
}

bool vt_guest_hole(struct vt_fx *fx, const struct vt_vm *vm, uint64_t gpa)
{
	uint8_t *page = malloc(VDEMUX_PAGE_SIZE);
	bool hole = true;

	assert_non_null(page);
	for (unsigned i = 0; i < vm->nbe; i++) {
		int rc = vt_guest_read_page(fx, vm->be_idx[i], vm, gpa, page);

		if (rc == 0)
			hole = false;
		else if (rc != -EFAULT)
			fail_msg("vdemux_sim_read(vm %u, %#llx): %d", vm->id, (unsigned long long)gpa,
				 rc);
	}
	free(page);
	return hole;
}

static struct vdemux_completion *poll_all(struct vt_fx *fx, struct vt_vm *vm, unsigned *count)
{
	unsigned cap = 64, n = 0;
	struct vdemux_completion *c = malloc(cap * sizeof(*c));

	assert_non_null(c);
	for (;;) {
		int r;

		if (cap - n < 16) {
			cap *= 2;
			c = realloc(c, cap * sizeof(*c));
			assert_non_null(c);
		}
		r = vdemux_vm_poll(fx->eng, vm->id, c + n, cap - n);
		assert_true(r >= 0);
		if (r == 0)
			break;
		n += (unsigned)r;
	}
	*count = n;
	return c;
}

/* Check a complete frame assembled in @buf against the frame it names. */
static uint32_t check_frame(const struct vt_vm *vm, const uint8_t *buf, uint32_t len, uint8_t *expect)
{
	uint8_t mine[6];
	uint32_t seq, hlen;

	if (len < VT_FRAME_MIN_TAGGED)
		fail_msg("vm %u: frame of %u bytes is too short to identify", vm->id, len);
	seq = (uint32_t)buf[VT_FRAME_SEQ_OFF] << 24 | (uint32_t)buf[VT_FRAME_SEQ_OFF + 1] << 16 |
	      (uint32_t)buf[VT_FRAME_SEQ_OFF + 2] << 8 | buf[VT_FRAME_SEQ_OFF + 3];
	hlen = (uint32_t)buf[VT_FRAME_LEN_OFF] << 24 | (uint32_t)buf[VT_FRAME_LEN_OFF + 1] << 16 |
	       (uint32_t)buf[VT_FRAME_LEN_OFF + 2] << 8 | buf[VT_FRAME_LEN_OFF + 3];
	if (hlen != len)
		fail_msg("vm %u: frame seq %u delivered with %u bytes, sent with %u", vm->id, seq, len,
			 hlen);
	vt_mac(vm->id, mine);
	if (memcmp(buf, mine, 6) != 0 && memcmp(buf, vt_bcast, 6) != 0)
		fail_msg("vm %u: got frame seq %u addressed to another VM", vm->id, seq);
	vt_frame_fill(expect, len, buf, seq);
	for (uint32_t i = 0; i < len; i++)
		if (buf[i] != expect[i])
			fail_msg("vm %u: frame seq %u differs at byte %u (%#x, expected %#x)", vm->id,
				 seq, i, buf[i], expect[i]);
	return seq;
}

unsigned vt_guest_take(struct vt_fx *fx, struct vt_vm *vm, struct vt_rx *out, unsigned max)
{
	unsigned ncpl, nframes = 0;
	struct vdemux_completion *c = poll_all(fx, vm, &ncpl);
	uint8_t *page = malloc(VDEMUX_PAGE_SIZE);
	uint8_t *other = malloc(VDEMUX_PAGE_SIZE);
	uint8_t *frame = malloc(VT_MAX_FRAME + VDEMUX_PAGE_SIZE);
	uint8_t *expect = malloc(VT_MAX_FRAME + VDEMUX_PAGE_SIZE);
	struct vt_rx cur;
	uint32_t flen = 0;

	assert_non_null(page);
	assert_non_null(other);
	assert_non_null(frame);
	assert_non_null(expect);
	memset(&cur, 0, sizeof(cur));
	for (unsigned i = 0; i < ncpl; i++) {
		const struct vdemux_completion *k = &c[i];
		int rc;

		assert_int_equal(k->pad, 0);
		assert_int_equal(k->flags & ~(VDEMUX_CPL_MORE | VDEMUX_CPL_COPIED), 0);
		if (k->len < 1 || k->len > VDEMUX_PAGE_SIZE)
			fail_msg("vm %u: completion with length %u", vm->id, k->len);
		if (k->gpa % VDEMUX_PAGE_SIZE || k->gpa < vm->rx_base ||
		    k->gpa >= vm->rx_base + (uint64_t)vm->rx_pages * VDEMUX_PAGE_SIZE)
			fail_msg("vm %u: completion at %#llx, outside the window", vm->id,
				 (unsigned long long)k->gpa);
		for (unsigned j = 0; j < i; j++)
			if (c[j].gpa == k->gpa)
				fail_msg("vm %u: two completions at %#llx without a re-post", vm->id,
					 (unsigned long long)k->gpa);
		if (cur.ncpl >= VT_MAX_CHAIN || flen + k->len > VT_MAX_FRAME)
			fail_msg("vm %u: chain longer than the longest frame", vm->id);

		rc = vt_guest_read_page(fx, vm->be_idx[0], vm, k->gpa, page);
		if (rc != 0)
			fail_msg("vm %u: completion at %#llx but the guest cannot read it: %d", vm->id,
				 (unsigned long long)k->gpa, rc);
		for (unsigned b = 1; b < vm->nbe; b++) {
			rc = vt_guest_read_page(fx, vm->be_idx[b], vm, k->gpa, other);
			if (rc != 0 || memcmp(page, other, VDEMUX_PAGE_SIZE) != 0)
				fail_msg("vm %u: backends disagree at %#llx (%d)", vm->id,
					 (unsigned long long)k->gpa, rc);
		}
		if (!(k->flags & VDEMUX_CPL_COPIED) &&
		    !vt_all_zero(page + k->len, VDEMUX_PAGE_SIZE - k->len))
			fail_msg("vm %u: flipped page at %#llx has non-zero bytes past the frame (%u)",
				 vm->id, (unsigned long long)k->gpa, k->len);

		if (cur.ncpl == 0)
			cur.copied = true;
		cur.copied = cur.copied && (k->flags & VDEMUX_CPL_COPIED);
		cur.gpa[cur.ncpl] = k->gpa;
		cur.cpl_len[cur.ncpl] = k->len;
		cur.ncpl++;
		memcpy(frame + flen, page, k->len);
		flen += k->len;
		if (k->flags & VDEMUX_CPL_MORE)
			continue;

		cur.len = flen;
		cur.seq = check_frame(vm, frame, flen, expect);
		if (nframes >= max)
			fail_msg("vm %u: more frames than the %u expected", vm->id, max);
		if (out)
			out[nframes] = cur;
		nframes++;
		memset(&cur, 0, sizeof(cur));
		flen = 0;
	}
	if (cur.ncpl)
		fail_msg("vm %u: the last completion says VDEMUX_CPL_MORE", vm->id);
	free(c);
	free(page);
	free(other);
	free(frame);
	free(expect);
	return nframes;
}

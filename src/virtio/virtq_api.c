/* SPDX-License-Identifier: MIT */
/*
 * The public split virtqueue (include/vdemux/virtq.h): thin wrappers over
 * the walker the receive queues use (vring.c), which does every check. What
 * is added here: the options convention, iovecs instead of GPAs, a chain's
 * readable and writable parts counted apart, and the bound on what push
 * may report (the chain's writable bytes, not its whole length).
 */
#include <errno.h>
#include <string.h>

#include <vdemux/virtq.h>

#include "common/util.h"
#include "virtio/vring.h"

/* The public constants are the walker's. */
_Static_assert(VDEMUX_VIRTQ_F_INDIRECT_DESC == VD_VIRTIO_F_INDIRECT_DESC, "indirect feature bit");
_Static_assert(VDEMUX_VIRTQ_F_EVENT_IDX == VD_VIRTIO_F_EVENT_IDX, "event_idx feature bit");
_Static_assert(VDEMUX_VIRTQ_WRITE_ONLY == VD_VRING_F_WRITE_ONLY, "write-only flag");
_Static_assert(VDEMUX_VIRTQ_MAX_SIZE == VD_VRING_MAX_SIZE, "largest size");
_Static_assert((int)VDEMUX_VIRTQ_ERR__COUNT == (int)VD_VRING_ERR_COUNT, "error kinds");
_Static_assert((int)VDEMUX_VIRTQ_ERR_LEN_OVERFLOW == (int)VD_VRING_ERR_LEN_OVERFLOW,
	       "error kinds in order");
_Static_assert((int)VDEMUX_VIRTQ_ERR_READ_ONLY == (int)VD_VRING_ERR_READ_ONLY, "error kinds in order");

/* The walker writes a chain's segments as GPAs into @segs; pop turns them
 * into the caller's iovecs. */
struct vdemux_virtq {
	struct vd_vring *vr;
	struct vdemux_alloc_hooks alloc;
	uint8_t *ram;
	struct vd_vring_seg *segs; /* size entries: room for any chain */
	uint32_t *write_len;	   /* writable bytes of a popped chain, by head */
	uint32_t size;
	uint64_t refused; /* calls on the queue refused with -EINVAL */
};

/* With the options' hooks, or calloc/free when they are not set. */
static void q_free(vdemux_virtq *q)
{
	vd_free(&q->alloc, q->segs);
	vd_free(&q->alloc, q->write_len);
	vd_free(&q->alloc, q);
}

int vdemux_virtq_create(vdemux_virtq **out, const struct vdemux_virtq_opts *uopts)
{
	struct vdemux_virtq_opts o;

	if (!out || !uopts || vd_opts_check(uopts, sizeof(o)))
		return -EINVAL;
	vd_opts_copy(&o, uopts, sizeof(o));
	if (!vd_hooks_valid(&o.alloc))
		return -EINVAL;
	struct vd_gmem gm = {.base = o.ram, .size = o.ram_size};
	struct vd_vring_config cfg = {.desc_gpa = o.desc_gpa,
				      .avail_gpa = o.avail_gpa,
				      .used_gpa = o.used_gpa,
				      .size = o.size,
				      .flags = o.flags,
				      .features = o.features};
	/* The walker checks the rest (alignment, sizes, ranges, overlaps). */
	if (!o.ram || o.size == 0 || o.size > VDEMUX_VIRTQ_MAX_SIZE)
		return -EINVAL;
	vdemux_virtq *q = vd_calloc(&o.alloc, 1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	q->alloc = o.alloc;
	q->ram = o.ram;
	q->size = o.size;
	int r = vd_vring_create(&q->vr, &gm, &cfg, o.alloc.calloc ? &q->alloc : NULL);
	if (r < 0) {
		q_free(q);
		return r;
	}
	q->segs = vd_calloc(&q->alloc, o.size, sizeof(*q->segs));
	q->write_len = vd_calloc(&q->alloc, o.size, sizeof(*q->write_len));
	if (!q->segs || !q->write_len) {
		vd_vring_destroy(q->vr);
		q_free(q);
		return -ENOMEM;
	}
	*out = q;
	return 0;
}

void vdemux_virtq_destroy(vdemux_virtq *q)
{
	if (!q)
		return;
	vd_vring_destroy(q->vr);
	q_free(q);
}

int vdemux_virtq_reset(vdemux_virtq *q)
{
	if (!q)
		return -EINVAL;
	vd_vring_reset(q->vr);
	return 0;
}

int vdemux_virtq_pop(vdemux_virtq *q, struct vdemux_virtq_chain *chain, struct iovec *iov,
		     unsigned max_iov)
{
	struct vd_vring_chain c;

	if (!q)
		return -EINVAL;
	if (!chain || !iov || max_iov == 0) {
		q->refused++;
		return -EINVAL;
	}
	uint32_t cap = max_iov < q->size ? max_iov : q->size;
	int r = vd_vring_pop(q->vr, &c, q->segs, cap);
	if (r != 1)
		return r;
	/* The walker checked every segment: in guest RAM, off the rings,
	 * readable ones before writable ones. */
	uint32_t nr = 0, rlen = 0, wlen = 0;
	for (uint32_t i = 0; i < c.nseg; i++) {
		const struct vd_vring_seg *s = &q->segs[i];
		iov[i] = (struct iovec){.iov_base = q->ram + s->gpa, .iov_len = s->len};
		if (s->writable) {
			wlen += s->len;
		} else {
			nr++;
			rlen += s->len;
		}
	}
	q->write_len[c.head] = wlen;
	*chain = (struct vdemux_virtq_chain){
		.head = c.head, .n_read = nr, .n_write = c.nseg - nr, .read_len = rlen, .write_len = wlen};
	return 1;
}

int vdemux_virtq_push(vdemux_virtq *q, uint16_t head, uint32_t len)
{
	int r;

	if (!q)
		return -EINVAL;
	if (head >= q->size || len > q->write_len[head]) {
		q->refused++;
		return -EINVAL;
	}
	r = vd_vring_push(q->vr, head, len);
	if (r == -EINVAL)
		q->refused++;
	return r;
}

int vdemux_virtq_publish(vdemux_virtq *q, uint32_t *published)
{
	if (!q)
		return -EINVAL;
	uint32_t n = vd_vring_publish(q->vr);
	if (published)
		*published = n;
	return vd_vring_need_notify(q->vr) ? 1 : 0;
}

int vdemux_virtq_enable_kick(vdemux_virtq *q, bool on)
{
	if (!q)
		return -EINVAL;
	return vd_vring_enable_kick(q->vr, on) ? 1 : 0;
}

int vdemux_virtq_needs_reset(const vdemux_virtq *q)
{
	if (!q)
		return -EINVAL;
	return vd_vring_broken(q->vr) != 0;
}

int vdemux_virtq_stats(const vdemux_virtq *q, struct vdemux_virtq_stats *out, size_t size)
{
	struct vdemux_virtq_stats s;

	if (!q || !out)
		return -EINVAL;
	const struct vd_vring_stats *v = vd_vring_stats(q->vr);
	memset(&s, 0, sizeof(s));
	s.popped = v->popped;
	s.skipped = v->skipped;
	s.pushed = v->pushed;
	s.publishes = v->publishes;
	s.interrupts = v->notify;
	s.no_interrupt = v->no_notify;
	memcpy(s.err, v->err, sizeof(s.err));
	s.refused = q->refused;
	memcpy(out, &s, size < sizeof(s) ? size : sizeof(s));
	return 0;
}

const char *vdemux_virtq_err_name(int err)
{
	if (err < 0 || err >= VDEMUX_VIRTQ_ERR__COUNT)
		return "?";
	return vd_vring_err_name((enum vd_vring_err)err);
}

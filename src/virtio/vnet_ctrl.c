/* SPDX-License-Identifier: MIT */
/*
 * A virtio-net control virtqueue's commands (include/vdemux/vnet_ctrl.h):
 * each chain is copied out of guest memory once into a bounded buffer, and
 * parsed from that copy only, so that a guest rewriting its buffer while we
 * look cannot make the check and the use see different bytes. The ring
 * itself is walked by the public split virtqueue (virtq_api.c), whose checks
 * keep every iovec inside guest RAM and off the rings.
 */
#include <endian.h>
#include <errno.h>
#include <string.h>

#include <vdemux/vnet_ctrl.h>

#include "common/util.h"

/* The spec's classes, commands and feature bits (virtio 1.2, 5.1.6.5). */
enum {
	CLASS_RX = 0,
	CLASS_MAC = 1,
	CLASS_ANNOUNCE = 3,
	CLASS_MQ = 4,
	MAC_TABLE_SET = 0,
	MAC_ADDR_SET = 1,
	ANNOUNCE_ACK = 0,
	MQ_VQ_PAIRS_SET = 0,
};
#define F_CTRL_RX (1ull << 18)
#define F_GUEST_ANNOUNCE (1ull << 21)
#define F_MQ (1ull << 22)
#define F_CTRL_MAC_ADDR (1ull << 23)
#define F_CTRL_RX_EXTRA (1ull << 20)

#define CTRL_IOV 32u /* descriptors of a command chain; longer ones the walker skips */

struct vdemux_vnet_ctrl {
	struct vdemux_alloc_hooks alloc;
	uint16_t max_pairs;
	uint64_t features;
	struct vdemux_vnet_ctrl_state st;
	struct vdemux_vnet_ctrl_stats stats;
	uint8_t cmd[VDEMUX_VNET_CTRL_MAX_CMD]; /* the command being served, copied */
};

/* What serving a command came to. */
enum verdict { V_OK, V_UNSUPPORTED, V_INVALID };

int vdemux_vnet_ctrl_create(vdemux_vnet_ctrl **out, const struct vdemux_vnet_ctrl_opts *uopts)
{
	struct vdemux_vnet_ctrl_opts o = {.sz = sizeof(o)};

	if (!out || (uopts && vd_opts_check(uopts, sizeof(o))))
		return -EINVAL;
	if (uopts)
		vd_opts_copy(&o, uopts, sizeof(o));
	if (!vd_hooks_valid(&o.alloc) || o.max_pairs > VDEMUX_VNET_CTRL_PAIRS_MAX)
		return -EINVAL;
	vdemux_vnet_ctrl *c = vd_calloc(&o.alloc, 1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->alloc = o.alloc;
	c->max_pairs = o.max_pairs ? o.max_pairs : 1;
	vdemux_vnet_ctrl_reset(c, 0);
	*out = c;
	return 0;
}

void vdemux_vnet_ctrl_destroy(vdemux_vnet_ctrl *c)
{
	if (c)
		vd_free(&c->alloc, c);
}

int vdemux_vnet_ctrl_reset(vdemux_vnet_ctrl *c, uint64_t features)
{
	if (!c)
		return -EINVAL;
	uint32_t changes = c->st.changes;
	memset(&c->st, 0, sizeof(c->st));
	c->st.changes = changes;
	c->st.pairs = 1;
	c->st.rx_mode = VDEMUX_VNET_RX_PROMISC;
	c->features = features;
	return 0;
}

static bool has(const vdemux_vnet_ctrl *c, uint64_t f)
{
	return (c->features & f) != 0;
}

static enum verdict mq_cmd(vdemux_vnet_ctrl *c, uint8_t cmd, const uint8_t *d, size_t len)
{
	uint16_t pairs;

	if (!has(c, F_MQ) || cmd != MQ_VQ_PAIRS_SET)
		return V_UNSUPPORTED;
	if (len != sizeof(pairs))
		return V_INVALID;
	memcpy(&pairs, d, sizeof(pairs));
	pairs = le16toh(pairs);
	if (pairs < 1 || pairs > c->max_pairs)
		return V_INVALID;
	c->st.pairs = pairs;
	c->stats.pairs_set++;
	return V_OK;
}

static enum verdict rx_cmd(vdemux_vnet_ctrl *c, uint8_t cmd, const uint8_t *d, size_t len)
{
	/* PROMISC, ALLMULTI with CTRL_RX; ALLUNI .. NOBCAST with RX_EXTRA. */
	if (!has(c, F_CTRL_RX) || cmd > 5 || (cmd > 1 && !has(c, F_CTRL_RX_EXTRA)))
		return V_UNSUPPORTED;
	if (len != 1 || d[0] > 1)
		return V_INVALID;
	uint16_t bit = (uint16_t)(1u << cmd);
	c->st.rx_mode = (uint16_t)(d[0] ? (c->st.rx_mode | bit) : (c->st.rx_mode & ~bit));
	return V_OK;
}

/* One table of MAC_TABLE_SET at @d: its le32 count and entries; the bytes
 * it takes, or 0 when it does not fit in @len. */
static size_t mac_table(const uint8_t *d, size_t len, uint32_t *n, uint8_t (*keep)[6])
{
	uint32_t entries;

	if (len < sizeof(entries))
		return 0;
	memcpy(&entries, d, sizeof(entries));
	entries = le32toh(entries);
	if (entries > (len - sizeof(entries)) / 6)
		return 0;
	*n = entries;
	for (uint32_t i = 0; i < entries && i < VDEMUX_VNET_CTRL_MACS; i++)
		memcpy(keep[i], d + sizeof(entries) + 6u * i, 6);
	return sizeof(entries) + 6u * entries;
}

static enum verdict mac_table_set(vdemux_vnet_ctrl *c, const uint8_t *d, size_t len)
{
	struct vdemux_vnet_ctrl_state s = c->st;
	size_t a = mac_table(d, len, &s.n_unicast, s.unicast);
	size_t b = a ? mac_table(d + a, len - a, &s.n_multicast, s.multicast) : 0;

	/* Both tables, and nothing after them. */
	if (!a || !b || a + b != len)
		return V_INVALID;
	s.table_set = true;
	c->st = s;
	return V_OK;
}

static enum verdict mac_cmd(vdemux_vnet_ctrl *c, uint8_t cmd, const uint8_t *d, size_t len)
{
	if (cmd == MAC_TABLE_SET && has(c, F_CTRL_RX))
		return mac_table_set(c, d, len);
	if (cmd != MAC_ADDR_SET || !has(c, F_CTRL_MAC_ADDR))
		return V_UNSUPPORTED;
	if (len != 6)
		return V_INVALID;
	memcpy(c->st.mac, d, 6);
	c->st.mac_set = true;
	return V_OK;
}

static enum verdict announce_cmd(vdemux_vnet_ctrl *c, uint8_t cmd, size_t len)
{
	if (!has(c, F_GUEST_ANNOUNCE) || cmd != ANNOUNCE_ACK)
		return V_UNSUPPORTED;
	if (len != 0)
		return V_INVALID;
	c->st.announce_acks++;
	return V_OK;
}

/* The command in c->cmd, @len bytes (header included, at least 2). */
static enum verdict dispatch(vdemux_vnet_ctrl *c, size_t len)
{
	const uint8_t *d = c->cmd + 2;
	size_t n = len - 2;
	switch (c->cmd[0]) {
	case CLASS_MQ: return mq_cmd(c, c->cmd[1], d, n);
	case CLASS_RX: return rx_cmd(c, c->cmd[1], d, n);
	case CLASS_MAC: return mac_cmd(c, c->cmd[1], d, n);
	case CLASS_ANNOUNCE: return announce_cmd(c, c->cmd[1], n);
	default: return V_UNSUPPORTED;
	}
}

/* Copy the chain's readable bytes into c->cmd: how many, or
 * VDEMUX_VNET_CTRL_MAX_CMD + 1 for a command too long to copy. */
static size_t gather(vdemux_vnet_ctrl *c, const struct vdemux_virtq_chain *ch, const struct iovec *iov)
{
	size_t total = 0;
	if (ch->read_len > VDEMUX_VNET_CTRL_MAX_CMD)
		return VDEMUX_VNET_CTRL_MAX_CMD + 1;
	for (uint32_t i = 0; i < ch->n_read; i++) {
		memcpy(c->cmd + total, iov[i].iov_base, iov[i].iov_len);
		total += iov[i].iov_len;
	}
	return total;
}

/* Serve one chain; its used length. */
static uint32_t serve_one(vdemux_vnet_ctrl *c, const struct vdemux_virtq_chain *ch,
			  const struct iovec *iov)
{
	size_t len = gather(c, ch, iov);
	if (ch->n_write == 0 || len < 2) {
		c->stats.malformed++;
		return 0;
	}
	enum verdict v = len > VDEMUX_VNET_CTRL_MAX_CMD ? V_INVALID : dispatch(c, len);
	uint8_t ack = v == V_OK ? VDEMUX_VNET_CTRL_OK : VDEMUX_VNET_CTRL_ERR;
	memcpy(iov[ch->n_read].iov_base, &ack, 1);
	if (v == V_OK) {
		c->stats.ok++;
		c->st.changes++;
	} else if (v == V_UNSUPPORTED) {
		c->stats.unsupported++;
	} else {
		c->stats.invalid++;
	}
	return 1;
}

int vdemux_vnet_ctrl_serve(vdemux_vnet_ctrl *c, vdemux_virtq *q)
{
	struct vdemux_virtq_chain ch;
	struct iovec iov[CTRL_IOV];
	int n = 0, r;

	if (!c || !q)
		return -EINVAL;
	while ((r = vdemux_virtq_pop(q, &ch, iov, CTRL_IOV)) == 1) {
		c->stats.commands++;
		vdemux_virtq_push(q, ch.head, serve_one(c, &ch, iov));
		n++;
	}
	return r < 0 ? r : n;
}

int vdemux_vnet_ctrl_state(const vdemux_vnet_ctrl *c, struct vdemux_vnet_ctrl_state *out, size_t size)
{
	if (!c || !out)
		return -EINVAL;
	memcpy(out, &c->st, size < sizeof(c->st) ? size : sizeof(c->st));
	return 0;
}

int vdemux_vnet_ctrl_stats(const vdemux_vnet_ctrl *c, struct vdemux_vnet_ctrl_stats *out, size_t size)
{
	if (!c || !out)
		return -EINVAL;
	memcpy(out, &c->stats, size < sizeof(c->stats) ? size : sizeof(c->stats));
	return 0;
}

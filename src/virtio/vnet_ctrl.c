/* SPDX-License-Identifier: MIT */
/*
 * A virtio-net control virtqueue's commands (include/vdemux/vnet_ctrl.h):
 * each chain is copied out of guest memory once into a bounded buffer, and
 * parsed from that copy only, so that a guest rewriting its buffer while we
 * look cannot make the check and the use see different bytes. The ring
 * itself is walked by the public split virtqueue (virtq_api.c), whose checks
 * keep every iovec inside guest RAM and off the rings. RSS_CONFIG and
 * HASH_CONFIG are parsed into a scratch state, checked whole, and only
 * then copied over the kept one, so that a refused command changes
 * nothing; the queue choice reads the kept state and hashes with
 * vdemux/flow.h.
 */
#include <endian.h>
#include <errno.h>
#include <string.h>

#include <vdemux/flow.h>
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
	MQ_RSS_CONFIG = 1,
	MQ_HASH_CONFIG = 2,
};
#define F_CTRL_RX (1ull << 18)
#define F_GUEST_ANNOUNCE (1ull << 21)
#define F_MQ (1ull << 22)
#define F_CTRL_MAC_ADDR (1ull << 23)
#define F_CTRL_RX_EXTRA (1ull << 20)
#define F_HASH_REPORT (1ull << 57)
#define F_RSS (1ull << 60)

/* struct virtio_net_rss_config: hash_types (le32), indirection_table_mask
 * (le16), unclassified_queue (le16), the table (le16 each), max_tx_vq
 * (le16), hash_key_length (u8), the key. struct virtio_net_hash_config has
 * the same head with 8 reserved bytes in place of mask, queue, one table
 * entry and max_tx_vq. */
#define RSS_HEAD 8u	 /* hash_types, mask, unclassified_queue */
#define RSS_MID 3u	 /* max_tx_vq, hash_key_length */
#define HASH_RESERVED 8u /* reserved[4] of virtio_net_hash_config */

#define CTRL_IOV 32u /* descriptors of a command chain; longer ones the walker skips */

struct vdemux_vnet_ctrl {
	struct vdemux_alloc_hooks alloc;
	uint16_t max_pairs;
	uint8_t max_key;     /* rss_max_key_size */
	uint16_t max_table;  /* rss_max_indirection_table_length */
	uint32_t hash_types; /* supported_hash_types */
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
	if (!vd_hooks_valid(&o.alloc) || o.max_pairs > VDEMUX_VNET_CTRL_PAIRS_MAX ||
	    o.rss_max_key > VDEMUX_VNET_CTRL_RSS_KEY_MAX ||
	    o.rss_max_table > VDEMUX_VNET_CTRL_RSS_TABLE_MAX ||
	    (o.rss_hash_types & ~VDEMUX_FLOW_HASH_ALL))
		return -EINVAL;
	vdemux_vnet_ctrl *c = vd_calloc(&o.alloc, 1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->alloc = o.alloc;
	c->max_pairs = o.max_pairs ? o.max_pairs : 1;
	c->max_key = o.rss_max_key ? o.rss_max_key : VDEMUX_VNET_CTRL_RSS_KEY_MAX;
	c->max_table = o.rss_max_table ? o.rss_max_table : VDEMUX_VNET_CTRL_RSS_TABLE_MAX;
	c->hash_types = o.rss_hash_types ? o.rss_hash_types : VDEMUX_FLOW_HASH_ALL;
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
	c->st.hash_report = (features & F_HASH_REPORT) != 0;
	c->features = features;
	return 0;
}

static bool has(const vdemux_vnet_ctrl *c, uint64_t f)
{
	return (c->features & f) != 0;
}

static uint16_t le16_at(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32_at(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The hash types at @d and the key that ends the command (its length byte
 * at @d + @klen_at, the key right after it, nothing after the key) into
 * @s; false when a type is not supported, the key is too long, or the data
 * is not exactly that long. */
static bool hash_params(const vdemux_vnet_ctrl *c, struct vdemux_vnet_ctrl_state *s, const uint8_t *d,
			size_t len, size_t klen_at)
{
	uint32_t types = le32_at(d);
	if (len <= klen_at || (types & ~c->hash_types))
		return false;
	uint8_t klen = d[klen_at];
	if (klen > c->max_key || len - klen_at - 1 != klen)
		return false;
	s->hash_types = types;
	s->rss_key_len = klen;
	memset(s->rss_key, 0, sizeof(s->rss_key));
	memcpy(s->rss_key, d + klen_at + 1, klen);
	return true;
}

static enum verdict rss_config(vdemux_vnet_ctrl *c, const uint8_t *d, size_t len)
{
	struct vdemux_vnet_ctrl_state s = c->st;

	if (len < RSS_HEAD)
		return V_INVALID;
	uint32_t n = (uint32_t)le16_at(d + 4) + 1; /* entries */
	uint16_t unclassified = le16_at(d + 6);
	size_t mid = RSS_HEAD + 2u * n;
	/* A power of two, within the device's table, and all of it here. */
	if ((n & (n - 1)) || n > c->max_table || len < mid + RSS_MID || unclassified >= c->max_pairs)
		return V_INVALID;
	for (uint32_t i = 0; i < n; i++) {
		s.rss_table[i] = le16_at(d + RSS_HEAD + 2u * i);
		if (s.rss_table[i] >= c->max_pairs)
			return V_INVALID;
	}
	uint16_t max_tx_vq = le16_at(d + mid);
	if (max_tx_vq < 1 || max_tx_vq > c->max_pairs || !hash_params(c, &s, d, len, mid + 2))
		return V_INVALID;
	memset(s.rss_table + n, 0, sizeof(s.rss_table) - 2u * n);
	s.rss_table_len = (uint16_t)n;
	s.rss_unclassified = unclassified;
	s.pairs = max_tx_vq;
	s.rss = true;
	c->st = s;
	return V_OK;
}

static enum verdict hash_config(vdemux_vnet_ctrl *c, const uint8_t *d, size_t len)
{
	struct vdemux_vnet_ctrl_state s = c->st;
	static const uint8_t zero[HASH_RESERVED];

	if (len < 4 + HASH_RESERVED || memcmp(d + 4, zero, HASH_RESERVED) != 0 ||
	    !hash_params(c, &s, d, len, 4 + HASH_RESERVED))
		return V_INVALID;
	c->st = s;
	return V_OK;
}

static enum verdict mq_cmd(vdemux_vnet_ctrl *c, uint8_t cmd, const uint8_t *d, size_t len)
{
	uint16_t pairs;

	if (cmd == MQ_RSS_CONFIG && has(c, F_RSS))
		return rss_config(c, d, len);
	/* With RSS, the reported hash is RSS_CONFIG's (virtio 1.2, 5.1.6.4.3). */
	if (cmd == MQ_HASH_CONFIG && has(c, F_HASH_REPORT) && !has(c, F_RSS))
		return hash_config(c, d, len);
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

/* The hash of @frame under the driver's key and enabled types into @out. */
static void report(const struct vdemux_vnet_ctrl_state *st, const uint8_t *frame, uint32_t len,
		   struct vdemux_vnet_rss_pick *out)
{
	uint32_t h = 0;
	int r = vdemux_flow_hash(frame, len, st->rss_key, sizeof(st->rss_key), st->hash_types, &h);
	out->hash_report = (uint16_t)(r > 0 ? r : VDEMUX_FLOW_REPORT_NONE);
	out->hash_value = r > 0 ? h : 0;
}

int vdemux_vnet_ctrl_rx_queue(const vdemux_vnet_ctrl *c, const uint8_t *frame, uint32_t len,
			      struct vdemux_vnet_rss_pick *out)
{
	const struct vdemux_vnet_ctrl_state *st;
	struct vdemux_vnet_rss_pick p = {0};
	uint32_t h = 0;

	if (!c || !frame || !out)
		return -EINVAL;
	st = &c->st;
	if (st->rss || st->hash_report)
		report(st, frame, len, &p);
	if (st->rss) {
		p.queue = p.hash_report == VDEMUX_FLOW_REPORT_NONE
				  ? st->rss_unclassified
				  : st->rss_table[p.hash_value & (st->rss_table_len - 1u)];
	} else {
		vdemux_flow_hash(frame, len, NULL, 0, 0, &h);
		p.queue = (uint16_t)vdemux_flow_queue(h, st->pairs);
	}
	if (!st->hash_report) {
		p.hash_report = VDEMUX_FLOW_REPORT_NONE;
		p.hash_value = 0;
	}
	*out = p;
	return 0;
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

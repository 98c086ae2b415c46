/* SPDX-License-Identifier: MIT */
/*
 * The virtio-net control queue (include/vdemux/vnet_ctrl.h) from outside:
 * the test plays the driver, writing commands as Linux's virtio_net does
 * (a readable header, readable data, one writable status byte) into a
 * buffer that stands for guest RAM, and checks each answer, the state, the
 * counters, and that nothing but the status byte and the used ring changed.
 */
#include <endian.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <vdemux/virtq.h>
#include <vdemux/vnet_ctrl.h>

#include "vq_desc.h"
#include "rss_key.h"

#define RAM_SIZE (1u << 20)
#define QS 16u
#define DESC_GPA 0x1000u
#define AVAIL_GPA 0x2000u
#define USED_GPA 0x3000u
#define CMD_GPA 0x10000u
#define ACK_GPA 0x20000u
#define F_NEXT 1u
#define F_WRITE 2u

#define F_CTRL_RX (1ull << 18)
#define F_CTRL_RX_EXTRA (1ull << 20)
#define F_GUEST_ANNOUNCE (1ull << 21)
#define F_MQ (1ull << 22)
#define F_CTRL_MAC_ADDR (1ull << 23)
#define F_HASH_REPORT (1ull << 57)
#define F_RSS (1ull << 60)
#define F_ALL (F_CTRL_RX | F_CTRL_RX_EXTRA | F_GUEST_ANNOUNCE | F_MQ | F_CTRL_MAC_ADDR)

struct drv {
	uint8_t *ram;
	uint16_t avail_idx, used_seen;
	vdemux_virtq *q;
	vdemux_vnet_ctrl *c;
};

static void desc(struct drv *d, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	vq_desc_put(d->ram + DESC_GPA + 16u * i, addr, len, flags, next);
}

static void offer(struct drv *d, uint16_t head)
{
	uint16_t h = htole16(head), idx;
	memcpy(d->ram + AVAIL_GPA + 4 + 2u * (d->avail_idx % QS), &h, 2);
	d->avail_idx++;
	idx = htole16(d->avail_idx);
	memcpy(d->ram + AVAIL_GPA + 2, &idx, 2);
}

static uint32_t used_len(const struct drv *d, uint16_t slot)
{
	uint32_t v;
	memcpy(&v, d->ram + USED_GPA + 4 + 8u * (slot % QS) + 4, 4);
	return le32toh(v);
}

static void drv_init(struct drv *d, uint16_t max_pairs, uint64_t features)
{
	memset(d, 0, sizeof(*d));
	d->ram = aligned_alloc(4096, RAM_SIZE);
	assert_non_null(d->ram);
	memset(d->ram, 0, RAM_SIZE);
	struct vdemux_virtq_opts o = VDEMUX_OPTS(vdemux_virtq_opts, .ram = d->ram, .ram_size = RAM_SIZE,
						 .desc_gpa = DESC_GPA, .avail_gpa = AVAIL_GPA,
						 .used_gpa = USED_GPA, .size = QS);
	assert_int_equal(vdemux_virtq_create(&d->q, &o), 0);
	struct vdemux_vnet_ctrl_opts co = VDEMUX_OPTS(vdemux_vnet_ctrl_opts, .max_pairs = max_pairs);
	assert_int_equal(vdemux_vnet_ctrl_create(&d->c, &co), 0);
	assert_int_equal(vdemux_vnet_ctrl_reset(d->c, features), 0);
}

static void drv_fini(struct drv *d)
{
	vdemux_vnet_ctrl_destroy(d->c);
	vdemux_virtq_destroy(d->q);
	free(d->ram);
}

/* Post one command as Linux does (header, data if any, status), serve it,
 * publish; the status byte the device wrote, or -1 for a chain given back
 * with length 0. The status byte starts as 0xee to see that it was written. */
static int command(struct drv *d, uint8_t cls, uint8_t cmd, const void *data, uint32_t len)
{
	uint8_t *hdr = d->ram + CMD_GPA;
	hdr[0] = cls;
	hdr[1] = cmd;
	if (len)
		memcpy(d->ram + CMD_GPA + 64, data, len);
	d->ram[ACK_GPA] = 0xee;
	desc(d, 0, CMD_GPA, 2, F_NEXT, 1);
	if (len) {
		desc(d, 1, CMD_GPA + 64, len, F_NEXT, 2);
		desc(d, 2, ACK_GPA, 1, F_WRITE, 0);
	} else {
		desc(d, 1, ACK_GPA, 1, F_WRITE, 0);
	}
	offer(d, 0);
	assert_int_equal(vdemux_vnet_ctrl_serve(d->c, d->q), 1);
	assert_int_equal(vdemux_virtq_publish(d->q, NULL) >= 0, 1);
	uint32_t ulen = used_len(d, d->used_seen++);
	if (ulen == 0) {
		assert_int_equal(d->ram[ACK_GPA], 0xee);
		return -1;
	}
	assert_int_equal(ulen, 1);
	return d->ram[ACK_GPA];
}

static struct vdemux_vnet_ctrl_state cstate(const struct drv *d)
{
	struct vdemux_vnet_ctrl_state s;
	assert_int_equal(vdemux_vnet_ctrl_state(d->c, &s, sizeof(s)), 0);
	return s;
}

static struct vdemux_vnet_ctrl_stats stats(const struct drv *d)
{
	struct vdemux_vnet_ctrl_stats s;
	assert_int_equal(vdemux_vnet_ctrl_stats(d->c, &s, sizeof(s)), 0);
	return s;
}

static int pairs_set(struct drv *d, uint16_t pairs)
{
	uint16_t v = htole16(pairs);
	return command(d, 4, 0, &v, 2);
}

static void test_create_checks_options(void **state)
{
	(void)state;
	vdemux_vnet_ctrl *c = (vdemux_vnet_ctrl *)(uintptr_t)0x1;
	struct vdemux_vnet_ctrl_opts o = VDEMUX_OPTS(vdemux_vnet_ctrl_opts, .max_pairs = 0x8001);
	assert_int_equal(vdemux_vnet_ctrl_create(&c, &o), -EINVAL);
	o = (struct vdemux_vnet_ctrl_opts){.sz = 1};
	assert_int_equal(vdemux_vnet_ctrl_create(&c, &o), -EINVAL);
	assert_ptr_equal(c, (vdemux_vnet_ctrl *)(uintptr_t)0x1);
	assert_int_equal(vdemux_vnet_ctrl_create(NULL, NULL), -EINVAL);
	assert_int_equal(vdemux_vnet_ctrl_create(&c, NULL), 0);
	struct vdemux_vnet_ctrl_state s;
	assert_int_equal(vdemux_vnet_ctrl_state(c, &s, sizeof(s)), 0);
	assert_int_equal(s.pairs, 1);
	assert_int_equal(s.rx_mode, VDEMUX_VNET_RX_PROMISC);
	assert_int_equal(vdemux_vnet_ctrl_serve(c, NULL), -EINVAL);
	assert_int_equal(vdemux_vnet_ctrl_reset(NULL, 0), -EINVAL);
	assert_int_equal(vdemux_vnet_ctrl_state(NULL, &s, sizeof(s)), -EINVAL);
	vdemux_vnet_ctrl_destroy(c);
	vdemux_vnet_ctrl_destroy(NULL);
}

static void test_pairs_set_with_mq_sets_pairs(void **state)
{
	(void)state;
	struct drv d;
	drv_init(&d, 4, F_MQ);
	assert_int_equal(pairs_set(&d, 2), VDEMUX_VNET_CTRL_OK);
	assert_int_equal(cstate(&d).pairs, 2);
	assert_int_equal(pairs_set(&d, 4), VDEMUX_VNET_CTRL_OK);
	assert_int_equal(cstate(&d).pairs, 4);
	assert_int_equal(pairs_set(&d, 1), VDEMUX_VNET_CTRL_OK);
	assert_int_equal(cstate(&d).pairs, 1);
	assert_int_equal(stats(&d).pairs_set, 3);
	assert_int_equal(stats(&d).ok, 3);
	assert_int_equal(cstate(&d).changes, 3);
	drv_fini(&d);
}

static void test_pairs_set_out_of_range_answered_err_pairs_kept(void **state)
{
	(void)state;
	struct drv d;
	drv_init(&d, 4, F_MQ);
	assert_int_equal(pairs_set(&d, 3), VDEMUX_VNET_CTRL_OK);
	assert_int_equal(pairs_set(&d, 0), VDEMUX_VNET_CTRL_ERR);
	assert_int_equal(pairs_set(&d, 5), VDEMUX_VNET_CTRL_ERR);
	assert_int_equal(pairs_set(&d, 0x8000), VDEMUX_VNET_CTRL_ERR);
	uint8_t three[3] = {2, 0, 0};
	assert_int_equal(command(&d, 4, 0, three, 3), VDEMUX_VNET_CTRL_ERR);
	assert_int_equal(command(&d, 4, 0, NULL, 0), VDEMUX_VNET_CTRL_ERR);
	assert_int_equal(cstate(&d).pairs, 3);
	assert_int_equal(stats(&d).invalid, 5);
	assert_int_equal(cstate(&d).changes, 1);
	drv_fini(&d);
}

static void test_pairs_set_without_mq_unsupported(void **state)
{
	(void)state;
	struct drv d;
	drv_init(&d, 4, F_ALL & ~F_MQ);
	assert_int_equal(pairs_set(&d, 2), VDEMUX_VNET_CTRL_ERR);
	assert_int_equal(cstate(&d).pairs, 1);
	assert_int_equal(stats(&d).unsupported, 1);
	drv_fini(&d);
}

static void test_unserved_commands_answered_err(void **state)
{
	(void)state;
	struct drv d;
	drv_init(&d, 4, F_ALL);
	uint16_t vid = htole16(5);
	uint8_t rss[64] = {0};
	uint64_t offloads = 0;
	assert_int_equal(command(&d, 2, 0, &vid, 2), VDEMUX_VNET_CTRL_ERR);	    /* VLAN_ADD */
	assert_int_equal(command(&d, 4, 1, rss, sizeof rss), VDEMUX_VNET_CTRL_ERR); /* RSS_CONFIG */
	assert_int_equal(command(&d, 4, 2, rss, sizeof rss), VDEMUX_VNET_CTRL_ERR); /* HASH_CONFIG */
	assert_int_equal(command(&d, 5, 0, &offloads, 8), VDEMUX_VNET_CTRL_ERR);    /* GUEST_OFFLOADS */
	assert_int_equal(command(&d, 0xff, 0xff, NULL, 0), VDEMUX_VNET_CTRL_ERR);
	assert_int_equal(stats(&d).unsupported, 5);
	assert_int_equal(cstate(&d).changes, 0);
	drv_fini(&d);
}

static void test_rx_mode_commands_set_their_bits(void **state)
{
	(void)state;
	struct drv d;
	drv_init(&d, 1, F_CTRL_RX);
	uint8_t on = 1, off = 0, two = 2;
	assert_int_equal(command(&d, 0, 0, &off, 1), VDEMUX_VNET_CTRL_OK); /* PROMISC off */
	assert_int_equal(command(&d, 0, 1, &on, 1), VDEMUX_VNET_CTRL_OK);  /* ALLMULTI on */
	assert_int_equal(cstate(&d).rx_mode, VDEMUX_VNET_RX_ALLMULTI);
	/* ALLUNI needs CTRL_RX_EXTRA; a value other than 0/1 is invalid. */
	assert_int_equal(command(&d, 0, 2, &on, 1), VDEMUX_VNET_CTRL_ERR);
	assert_int_equal(command(&d, 0, 0, &two, 1), VDEMUX_VNET_CTRL_ERR);
	assert_int_equal(cstate(&d).rx_mode, VDEMUX_VNET_RX_ALLMULTI);
	assert_int_equal(vdemux_vnet_ctrl_reset(d.c, F_CTRL_RX | F_CTRL_RX_EXTRA), 0);
	assert_int_equal(command(&d, 0, 5, &on, 1), VDEMUX_VNET_CTRL_OK); /* NOBCAST */
	assert_int_equal(cstate(&d).rx_mode, VDEMUX_VNET_RX_PROMISC | VDEMUX_VNET_RX_NOBCAST);
	assert_int_equal(command(&d, 0, 6, &on, 1), VDEMUX_VNET_CTRL_ERR);
	drv_fini(&d);
}

/* A MAC_TABLE_SET body: @nu unicast then @nm multicast entries (entry i
 * is 02:00:00:00:<table>:<i>); its length. */
static uint32_t mac_tables(uint8_t *buf, uint32_t nu, uint32_t nm)
{
	uint32_t off = 0;
	uint32_t counts[2] = {nu, nm};
	for (unsigned t = 0; t < 2; t++) {
		uint32_t le = htole32(counts[t]);
		memcpy(buf + off, &le, 4);
		off += 4;
		for (uint32_t i = 0; i < counts[t]; i++, off += 6) {
			const uint8_t mac[6] = {2, 0, 0, 0, (uint8_t)t, (uint8_t)i};
			memcpy(buf + off, mac, 6);
		}
	}
	return off;
}

static void test_mac_table_set_keeps_counts_and_first_entries(void **state)
{
	(void)state;
	struct drv d;
	static uint8_t buf[2048];
	drv_init(&d, 1, F_CTRL_RX);
	uint32_t len = mac_tables(buf, 2, 20);
	assert_int_equal(command(&d, 1, 0, buf, len), VDEMUX_VNET_CTRL_OK);
	struct vdemux_vnet_ctrl_state s = cstate(&d);
	assert_true(s.table_set);
	assert_int_equal(s.n_unicast, 2);
	assert_int_equal(s.n_multicast, 20);
	assert_int_equal(s.unicast[1][5], 1);
	assert_int_equal(s.multicast[15][4], 1);
	assert_int_equal(s.multicast[15][5], 15);
	drv_fini(&d);
}

static void test_mac_table_set_wrong_lengths_invalid(void **state)
{
	(void)state;
	struct drv d;
	static uint8_t buf[2048];
	drv_init(&d, 1, F_CTRL_RX);
	uint32_t len = mac_tables(buf, 3, 1);
	assert_int_equal(command(&d, 1, 0, buf, len - 1), VDEMUX_VNET_CTRL_ERR); /* short */
	assert_int_equal(command(&d, 1, 0, buf, len + 1), VDEMUX_VNET_CTRL_ERR); /* trailing byte */
	uint32_t huge = htole32(0xffffffffu);
	memcpy(buf, &huge, 4);
	assert_int_equal(command(&d, 1, 0, buf, len), VDEMUX_VNET_CTRL_ERR); /* count past the end */
	assert_false(cstate(&d).table_set);
	assert_int_equal(stats(&d).invalid, 3);
	drv_fini(&d);
}

static void test_mac_addr_set_and_announce_ack(void **state)
{
	(void)state;
	struct drv d;
	const uint8_t mac[6] = {2, 1, 2, 3, 4, 5};
	drv_init(&d, 1, F_CTRL_MAC_ADDR | F_GUEST_ANNOUNCE);
	assert_int_equal(command(&d, 1, 1, mac, 6), VDEMUX_VNET_CTRL_OK);
	assert_int_equal(command(&d, 1, 1, mac, 5), VDEMUX_VNET_CTRL_ERR);
	assert_int_equal(command(&d, 3, 0, NULL, 0), VDEMUX_VNET_CTRL_OK);
	struct vdemux_vnet_ctrl_state s = cstate(&d);
	assert_true(s.mac_set);
	assert_memory_equal(s.mac, mac, 6);
	assert_int_equal(s.announce_acks, 1);
	/* MAC_TABLE_SET needs CTRL_RX. */
	static uint8_t buf[64];
	assert_int_equal(command(&d, 1, 0, buf, mac_tables(buf, 0, 0)), VDEMUX_VNET_CTRL_ERR);
	drv_fini(&d);
}

static void test_chain_without_status_byte_given_back_empty(void **state)
{
	(void)state;
	struct drv d;
	drv_init(&d, 4, F_MQ);
	uint8_t before[64];
	/* Header and data, nothing writable. */
	d.ram[CMD_GPA] = 4;
	d.ram[CMD_GPA + 1] = 0;
	d.ram[CMD_GPA + 2] = 2;
	d.ram[CMD_GPA + 3] = 0;
	memcpy(before, d.ram + CMD_GPA, sizeof before);
	desc(&d, 0, CMD_GPA, 4, 0, 0);
	offer(&d, 0);
	assert_int_equal(vdemux_vnet_ctrl_serve(d.c, d.q), 1);
	vdemux_virtq_publish(d.q, NULL);
	assert_int_equal(used_len(&d, d.used_seen++), 0);
	assert_memory_equal(d.ram + CMD_GPA, before, sizeof before);
	/* A one-byte header. */
	d.ram[ACK_GPA] = 0xee;
	desc(&d, 0, CMD_GPA, 1, F_NEXT, 1);
	desc(&d, 1, ACK_GPA, 1, F_WRITE, 0);
	offer(&d, 0);
	assert_int_equal(vdemux_vnet_ctrl_serve(d.c, d.q), 1);
	vdemux_virtq_publish(d.q, NULL);
	assert_int_equal(used_len(&d, d.used_seen++), 0);
	assert_int_equal(d.ram[ACK_GPA], 0xee);
	assert_int_equal(stats(&d).malformed, 2);
	assert_int_equal(cstate(&d).pairs, 1);
	drv_fini(&d);
}

static void test_command_too_long_answered_err(void **state)
{
	(void)state;
	struct drv d;
	static uint8_t buf[2 * VDEMUX_VNET_CTRL_MAX_CMD];
	drv_init(&d, 4, F_MQ | F_CTRL_RX);
	/* Tables that are well formed, but one byte over the bound with the
	 * header (4 + 6 * 681 + 4 + 2 = 4096 is the longest taken). */
	uint32_t len = mac_tables(buf, 681, 0);
	assert_int_equal(len + 2, VDEMUX_VNET_CTRL_MAX_CMD);
	assert_int_equal(command(&d, 1, 0, buf, len), VDEMUX_VNET_CTRL_OK);
	assert_int_equal(cstate(&d).n_unicast, 681);
	len = mac_tables(buf, 682, 0);
	assert_int_equal(command(&d, 1, 0, buf, len), VDEMUX_VNET_CTRL_ERR);
	assert_int_equal(cstate(&d).n_unicast, 681);
	assert_int_equal(stats(&d).invalid, 1);
	drv_fini(&d);
}

static void test_reset_restores_defaults_keeps_counters(void **state)
{
	(void)state;
	struct drv d;
	uint8_t off = 0;
	drv_init(&d, 4, F_MQ | F_CTRL_RX);
	assert_int_equal(pairs_set(&d, 4), VDEMUX_VNET_CTRL_OK);
	assert_int_equal(command(&d, 0, 0, &off, 1), VDEMUX_VNET_CTRL_OK);
	assert_int_equal(vdemux_vnet_ctrl_reset(d.c, 0), 0);
	struct vdemux_vnet_ctrl_state s = cstate(&d);
	assert_int_equal(s.pairs, 1);
	assert_int_equal(s.rx_mode, VDEMUX_VNET_RX_PROMISC);
	assert_int_equal(s.changes, 2);
	assert_int_equal(stats(&d).ok, 2);
	/* No features any more: MQ is not served. */
	assert_int_equal(pairs_set(&d, 2), VDEMUX_VNET_CTRL_ERR);
	drv_fini(&d);
}

/* A struct virtio_net_rss_config as the driver writes it. */
struct rss_cmd {
	uint32_t types;
	uint16_t mask, unclassified;
	const uint16_t *table; /* mask + 1 entries */
	uint16_t max_tx_vq;
	uint8_t key_len;
	const uint8_t *key;
};

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)v);
	put16(p + 2, (uint16_t)(v >> 16));
}

/* Its bytes into @buf; their count. */
static uint32_t rss_bytes(uint8_t *buf, const struct rss_cmd *r)
{
	uint32_t off = 8, n = (uint32_t)r->mask + 1;
	put32(buf, r->types);
	put16(buf + 4, r->mask);
	put16(buf + 6, r->unclassified);
	for (uint32_t i = 0; i < n; i++, off += 2)
		put16(buf + off, r->table[i]);
	put16(buf + off, r->max_tx_vq);
	buf[off + 2] = r->key_len;
	memcpy(buf + off + 3, r->key, r->key_len);
	return off + 3 + r->key_len;
}

/* A struct virtio_net_hash_config; its length. */
static uint32_t hash_bytes(uint8_t *buf, uint32_t types, uint8_t key_len)
{
	memset(buf, 0, 13);
	put32(buf, types);
	buf[12] = key_len;
	memcpy(buf + 13, ms_key, key_len);
	return 13u + key_len;
}

/* 16 entries: the published vectors' hashes end in 0x8 (TCPv4 of the
 * first), 0xa (TCPv4 of the second, IPv4 of the second) and 0x2 (IPv4 of
 * the first); each of those entries names a different queue. */
static const uint16_t table16[16] = {0, 0, 1, 0, 0, 0, 0, 0, 3, 0, 2, 0, 0, 0, 0, 0};

static struct rss_cmd good_rss(void)
{
	return (struct rss_cmd){.types = VDEMUX_FLOW_HASH_ALL,
				.mask = 15,
				.unclassified = 4,
				.table = table16,
				.max_tx_vq = 5,
				.key_len = 40,
				.key = ms_key};
}

static int rss_config(struct drv *d, const struct rss_cmd *r)
{
	static uint8_t buf[1024];
	return command(d, 4, 1, buf, rss_bytes(buf, r));
}

static void test_rss_config_sets_table_key_types_and_pairs_replacing_old(void **state)
{
	(void)state;
	struct drv d;
	drv_init(&d, 8, F_RSS);
	struct rss_cmd r = good_rss();
	assert_int_equal(rss_config(&d, &r), VDEMUX_VNET_CTRL_OK);
	struct vdemux_vnet_ctrl_state s = cstate(&d);
	assert_true(s.rss);
	assert_false(s.hash_report);
	assert_int_equal(s.hash_types, VDEMUX_FLOW_HASH_ALL);
	assert_int_equal(s.rss_table_len, 16);
	assert_memory_equal(s.rss_table, table16, sizeof table16);
	assert_int_equal(s.rss_table[16], 0);
	assert_int_equal(s.rss_unclassified, 4);
	assert_int_equal(s.rss_key_len, 40);
	assert_memory_equal(s.rss_key, ms_key, 40);
	assert_int_equal(s.pairs, 5);
	assert_int_equal(s.changes, 1);
	assert_int_equal(stats(&d).ok, 1);
	/* A shorter table and key replace the whole of the old ones. */
	const uint16_t four[4] = {1, 1, 1, 1};
	r = (struct rss_cmd){.types = VDEMUX_FLOW_HASH_IPV4,
			     .mask = 3,
			     .table = four,
			     .max_tx_vq = 2,
			     .key_len = 16,
			     .key = ms_key};
	assert_int_equal(rss_config(&d, &r), VDEMUX_VNET_CTRL_OK);
	s = cstate(&d);
	uint16_t want[VDEMUX_VNET_CTRL_RSS_TABLE_MAX] = {1, 1, 1, 1};
	uint8_t key[VDEMUX_VNET_CTRL_RSS_KEY_MAX] = {0};
	memcpy(key, ms_key, 16);
	assert_int_equal(s.rss_table_len, 4);
	assert_memory_equal(s.rss_table, want, sizeof want);
	assert_int_equal(s.rss_key_len, 16);
	assert_memory_equal(s.rss_key, key, sizeof key);
	assert_int_equal(s.hash_types, VDEMUX_FLOW_HASH_IPV4);
	assert_int_equal(s.rss_unclassified, 0);
	assert_int_equal(s.pairs, 2);
	drv_fini(&d);
}

static void test_rss_config_without_rss_unsupported_state_kept(void **state)
{
	(void)state;
	struct drv d;
	drv_init(&d, 8, F_ALL | F_HASH_REPORT);
	struct vdemux_vnet_ctrl_state before = cstate(&d);
	struct rss_cmd r = good_rss();
	assert_int_equal(rss_config(&d, &r), VDEMUX_VNET_CTRL_ERR);
	struct vdemux_vnet_ctrl_state after = cstate(&d);
	assert_memory_equal(&before, &after, sizeof before);
	assert_int_equal(stats(&d).unsupported, 1);
	drv_fini(&d);
}

/* @r answered ERR, counted invalid, the state as it was. */
static void expect_rss_refused(struct drv *d, const struct rss_cmd *r)
{
	struct vdemux_vnet_ctrl_state before = cstate(d), after;
	uint64_t invalid = stats(d).invalid;
	assert_int_equal(rss_config(d, r), VDEMUX_VNET_CTRL_ERR);
	after = cstate(d);
	assert_memory_equal(&before, &after, sizeof before);
	assert_int_equal(stats(d).invalid, invalid + 1);
}

static void test_rss_config_values_out_of_range_refused_state_kept(void **state)
{
	(void)state;
	struct drv d;
	static uint16_t big[256];
	uint8_t long_key[41] = {0};
	drv_init(&d, 8, F_RSS);
	struct rss_cmd r = good_rss();
	assert_int_equal(rss_config(&d, &r), VDEMUX_VNET_CTRL_OK); /* the state to keep */
	r.mask = 2;						   /* 3 entries: not a power of two */
	expect_rss_refused(&d, &r);
	r = good_rss(), r.mask = 255, r.table = big; /* 256 entries: over 128 */
	expect_rss_refused(&d, &r);
	uint16_t bad[16];
	memcpy(bad, table16, sizeof bad);
	bad[7] = 8; /* a queue past max_pairs */
	r = good_rss(), r.table = bad;
	expect_rss_refused(&d, &r);
	r = good_rss(), r.unclassified = 8;
	expect_rss_refused(&d, &r);
	r = good_rss(), r.max_tx_vq = 0;
	expect_rss_refused(&d, &r);
	r = good_rss(), r.max_tx_vq = 9;
	expect_rss_refused(&d, &r);
	r = good_rss(), r.key_len = 41, r.key = long_key;
	expect_rss_refused(&d, &r);
	r = good_rss(), r.types = VDEMUX_FLOW_HASH_ALL | (1u << 6); /* IP_EX */
	expect_rss_refused(&d, &r);
	assert_int_equal(stats(&d).invalid, 8);
	assert_int_equal(cstate(&d).changes, 1);
	drv_fini(&d);
}

static void test_rss_config_wrong_length_refused_state_kept(void **state)
{
	(void)state;
	struct drv d;
	static uint8_t buf[1024];
	drv_init(&d, 8, F_RSS);
	struct rss_cmd r = good_rss();
	uint32_t len = rss_bytes(buf, &r);
	struct vdemux_vnet_ctrl_state before = cstate(&d), after;
	assert_int_equal(command(&d, 4, 1, buf, len - 1), VDEMUX_VNET_CTRL_ERR); /* short key */
	assert_int_equal(command(&d, 4, 1, buf, len + 1), VDEMUX_VNET_CTRL_ERR); /* trailing byte */
	assert_int_equal(command(&d, 4, 1, buf, 8 + 32), VDEMUX_VNET_CTRL_ERR);	 /* no max_tx_vq */
	assert_int_equal(command(&d, 4, 1, buf, 7), VDEMUX_VNET_CTRL_ERR);	 /* no head */
	assert_int_equal(command(&d, 4, 1, NULL, 0), VDEMUX_VNET_CTRL_ERR);
	after = cstate(&d);
	assert_memory_equal(&before, &after, sizeof before);
	assert_int_equal(stats(&d).invalid, 5);
	drv_fini(&d);
}

static void test_rss_config_limits_from_options(void **state)
{
	(void)state;
	struct drv d;
	drv_init(&d, 8, F_RSS);
	vdemux_vnet_ctrl_destroy(d.c);
	struct vdemux_vnet_ctrl_opts o = VDEMUX_OPTS(
		vdemux_vnet_ctrl_opts, .max_pairs = 8, .rss_max_key = 16, .rss_max_table = 8,
		.rss_hash_types = VDEMUX_FLOW_HASH_IPV4 | VDEMUX_FLOW_HASH_TCPV4);
	assert_int_equal(vdemux_vnet_ctrl_create(&d.c, &o), 0);
	assert_int_equal(vdemux_vnet_ctrl_reset(d.c, F_RSS), 0);
	struct rss_cmd r = good_rss();
	r.types = VDEMUX_FLOW_HASH_TCPV4, r.mask = 7, r.key_len = 16;
	expect_rss_refused(&d, &(struct rss_cmd){.types = r.types,
						 .mask = 15,
						 .table = table16,
						 .max_tx_vq = 5,
						 .key_len = 16,
						 .key = ms_key});
	r.key_len = 17;
	expect_rss_refused(&d, &r);
	r.key_len = 16, r.types = VDEMUX_FLOW_HASH_UDPV4;
	expect_rss_refused(&d, &r);
	r.types = VDEMUX_FLOW_HASH_TCPV4 | VDEMUX_FLOW_HASH_IPV4;
	assert_int_equal(rss_config(&d, &r), VDEMUX_VNET_CTRL_OK);
	assert_int_equal(cstate(&d).rss_table_len, 8);
	assert_int_equal(cstate(&d).rss_key_len, 16);
	drv_fini(&d);
}

static void test_hash_config_with_hash_report_sets_types_and_key(void **state)
{
	(void)state;
	struct drv d;
	static uint8_t buf[64];
	drv_init(&d, 4, F_MQ | F_HASH_REPORT);
	assert_int_equal(pairs_set(&d, 3), VDEMUX_VNET_CTRL_OK);
	uint32_t len = hash_bytes(buf, VDEMUX_FLOW_HASH_IPV4 | VDEMUX_FLOW_HASH_TCPV4, 40);
	assert_int_equal(command(&d, 4, 2, buf, len), VDEMUX_VNET_CTRL_OK);
	struct vdemux_vnet_ctrl_state s = cstate(&d);
	assert_true(s.hash_report);
	assert_false(s.rss);
	assert_int_equal(s.hash_types, VDEMUX_FLOW_HASH_IPV4 | VDEMUX_FLOW_HASH_TCPV4);
	assert_int_equal(s.rss_key_len, 40);
	assert_memory_equal(s.rss_key, ms_key, 40);
	assert_int_equal(s.pairs, 3);
	assert_int_equal(s.rss_table_len, 0);
	drv_fini(&d);
}

static void test_hash_config_refusals_answered_err_state_kept(void **state)
{
	(void)state;
	struct drv d;
	static uint8_t buf[64];
	drv_init(&d, 4, F_HASH_REPORT);
	struct vdemux_vnet_ctrl_state before = cstate(&d), after;
	uint32_t len = hash_bytes(buf, VDEMUX_FLOW_HASH_ALL, 40);
	assert_int_equal(command(&d, 4, 2, buf, len - 1), VDEMUX_VNET_CTRL_ERR);
	assert_int_equal(command(&d, 4, 2, buf, len + 1), VDEMUX_VNET_CTRL_ERR);
	buf[12] = 41; /* key longer than the device's 40 (and than the data) */
	assert_int_equal(command(&d, 4, 2, buf, len + 1), VDEMUX_VNET_CTRL_ERR);
	len = hash_bytes(buf, 1u << 7, 40); /* TCP_EX: not supported */
	assert_int_equal(command(&d, 4, 2, buf, len), VDEMUX_VNET_CTRL_ERR);
	len = hash_bytes(buf, VDEMUX_FLOW_HASH_ALL, 40);
	buf[6] = 1; /* a reserved byte set */
	assert_int_equal(command(&d, 4, 2, buf, len), VDEMUX_VNET_CTRL_ERR);
	after = cstate(&d);
	assert_memory_equal(&before, &after, sizeof before);
	assert_int_equal(stats(&d).invalid, 5);
	/* Not served without HASH_REPORT, nor with RSS (RSS_CONFIG sets the hash). */
	buf[6] = 0;
	assert_int_equal(vdemux_vnet_ctrl_reset(d.c, F_MQ | F_RSS), 0);
	assert_int_equal(command(&d, 4, 2, buf, len), VDEMUX_VNET_CTRL_ERR);
	assert_int_equal(vdemux_vnet_ctrl_reset(d.c, F_RSS | F_HASH_REPORT), 0);
	assert_int_equal(command(&d, 4, 2, buf, len), VDEMUX_VNET_CTRL_ERR);
	assert_int_equal(stats(&d).unsupported, 2);
	assert_int_equal(cstate(&d).hash_types, 0);
	drv_fini(&d);
}

static void test_reset_clears_rss_and_hash_state(void **state)
{
	(void)state;
	struct drv d;
	drv_init(&d, 8, F_RSS | F_HASH_REPORT);
	struct rss_cmd r = good_rss();
	assert_int_equal(rss_config(&d, &r), VDEMUX_VNET_CTRL_OK);
	assert_int_equal(vdemux_vnet_ctrl_reset(d.c, F_RSS), 0);
	struct vdemux_vnet_ctrl_state s = cstate(&d), zero;
	memset(&zero, 0, sizeof zero);
	assert_false(s.rss);
	assert_false(s.hash_report);
	assert_int_equal(s.hash_types, 0);
	assert_int_equal(s.rss_table_len, 0);
	assert_int_equal(s.rss_unclassified, 0);
	assert_int_equal(s.rss_key_len, 0);
	assert_memory_equal(s.rss_key, zero.rss_key, sizeof s.rss_key);
	assert_memory_equal(s.rss_table, zero.rss_table, sizeof s.rss_table);
	assert_int_equal(s.pairs, 1);
	assert_int_equal(vdemux_vnet_ctrl_reset(d.c, F_HASH_REPORT), 0);
	assert_true(cstate(&d).hash_report);
	drv_fini(&d);
}

static void test_state_of_old_size_gets_prefix_only(void **state)
{
	(void)state;
	struct drv d;
	drv_init(&d, 8, F_RSS);
	struct rss_cmd r = good_rss();
	assert_int_equal(rss_config(&d, &r), VDEMUX_VNET_CTRL_OK);
	struct vdemux_vnet_ctrl_state s;
	size_t old = offsetof(struct vdemux_vnet_ctrl_state, rss);
	memset(&s, 0xa5, sizeof s);
	assert_int_equal(vdemux_vnet_ctrl_state(d.c, &s, old), 0);
	assert_int_equal(s.pairs, 5);
	const uint8_t *tail = (const uint8_t *)&s + old;
	for (size_t i = 0; i < sizeof s - old; i++)
		assert_int_equal(tail[i], 0xa5);
	drv_fini(&d);
}

/* An Ethernet frame with IPv4 and TCP (proto 6) or UDP (17) headers from
 * @src:@sport to @dst:@dport; its length. */
static uint32_t ipv4_frame(uint8_t *f, const uint8_t src[4], const uint8_t dst[4], uint16_t sport,
			   uint16_t dport, uint8_t proto)
{
	memset(f, 0, 64);
	f[12] = 0x08;
	f[14] = 0x45;
	f[23] = proto;
	memcpy(f + 26, src, 4);
	memcpy(f + 30, dst, 4);
	f[34] = (uint8_t)(sport >> 8), f[35] = (uint8_t)sport;
	f[36] = (uint8_t)(dport >> 8), f[37] = (uint8_t)dport;
	return 54;
}

static const uint8_t va[4] = {66, 9, 149, 187}, vb[4] = {161, 142, 100, 80};
static const uint8_t vc[4] = {199, 92, 111, 2}, vd[4] = {65, 69, 140, 83};

static struct vdemux_vnet_rss_pick pick(const struct drv *d, const uint8_t *f, uint32_t len)
{
	struct vdemux_vnet_rss_pick p;
	memset(&p, 0xee, sizeof p);
	assert_int_equal(vdemux_vnet_ctrl_rx_queue(d->c, f, len, &p), 0);
	return p;
}

static void expect_pick(const struct drv *d, const uint8_t *f, uint32_t len, uint16_t queue,
			uint16_t report, uint32_t hash)
{
	struct vdemux_vnet_rss_pick p = pick(d, f, len);
	assert_int_equal(p.queue, queue);
	assert_int_equal(p.hash_report, report);
	assert_int_equal(p.hash_value, hash);
}

static void test_rx_queue_rss_picks_table_entry_of_hash_low_bits(void **state)
{
	(void)state;
	struct drv d;
	uint8_t f[64];
	drv_init(&d, 8, F_RSS | F_HASH_REPORT);
	struct rss_cmd r = good_rss();
	assert_int_equal(rss_config(&d, &r), VDEMUX_VNET_CTRL_OK);
	/* Published values: TCPv4 0x51ccc178 -> entry 8, 0xc626b0ea -> 10. */
	uint32_t len = ipv4_frame(f, va, vb, 2794, 1766, 6);
	expect_pick(&d, f, len, 3, VDEMUX_FLOW_REPORT_TCPV4, 0x51ccc178);
	len = ipv4_frame(f, vc, vd, 14230, 4739, 6);
	expect_pick(&d, f, len, 2, VDEMUX_FLOW_REPORT_TCPV4, 0xc626b0ea);
	/* Addresses only: IPv4 0x323e8fc2 -> entry 2, 0xd718262a -> 10. */
	r.types = VDEMUX_FLOW_HASH_IPV4;
	assert_int_equal(rss_config(&d, &r), VDEMUX_VNET_CTRL_OK);
	len = ipv4_frame(f, va, vb, 2794, 1766, 6);
	expect_pick(&d, f, len, 1, VDEMUX_FLOW_REPORT_IPV4, 0x323e8fc2);
	len = ipv4_frame(f, vc, vd, 14230, 4739, 17);
	expect_pick(&d, f, len, 2, VDEMUX_FLOW_REPORT_IPV4, 0xd718262a);
	drv_fini(&d);
}

static void test_rx_queue_rss_unclassified_when_no_type_applies(void **state)
{
	(void)state;
	struct drv d;
	uint8_t f[64];
	drv_init(&d, 8, F_RSS | F_HASH_REPORT);
	struct rss_cmd r = good_rss();
	r.types = VDEMUX_FLOW_HASH_TCPV4;
	assert_int_equal(rss_config(&d, &r), VDEMUX_VNET_CTRL_OK);
	uint32_t len = ipv4_frame(f, va, vb, 2794, 1766, 17); /* UDP: type not enabled */
	expect_pick(&d, f, len, 4, VDEMUX_FLOW_REPORT_NONE, 0);
	f[12] = 0x08, f[13] = 0x06; /* ARP: not IP */
	expect_pick(&d, f, len, 4, VDEMUX_FLOW_REPORT_NONE, 0);
	expect_pick(&d, f, 10, 4, VDEMUX_FLOW_REPORT_NONE, 0); /* shorter than Ethernet */
	drv_fini(&d);
}

static void test_rx_queue_rss_without_hash_report_reports_none(void **state)
{
	(void)state;
	struct drv d;
	uint8_t f[64];
	drv_init(&d, 8, F_RSS);
	struct rss_cmd r = good_rss();
	assert_int_equal(rss_config(&d, &r), VDEMUX_VNET_CTRL_OK);
	uint32_t len = ipv4_frame(f, va, vb, 2794, 1766, 6);
	expect_pick(&d, f, len, 3, VDEMUX_FLOW_REPORT_NONE, 0);
	drv_fini(&d);
}

static void test_rx_queue_short_key_counts_missing_bits_as_zero(void **state)
{
	(void)state;
	struct drv d;
	uint8_t f[64];
	drv_init(&d, 8, F_RSS | F_HASH_REPORT);
	/* TCPv4 hashes 12 bytes of input: the key's first 16 bytes decide. */
	struct rss_cmd r = good_rss();
	r.key_len = 16;
	assert_int_equal(rss_config(&d, &r), VDEMUX_VNET_CTRL_OK);
	uint32_t len = ipv4_frame(f, va, vb, 2794, 1766, 6);
	expect_pick(&d, f, len, 3, VDEMUX_FLOW_REPORT_TCPV4, 0x51ccc178);
	drv_fini(&d);
}

static void test_rx_queue_without_rss_spreads_symmetric_hash_over_pairs(void **state)
{
	(void)state;
	struct drv d;
	uint8_t f[64], g[64];
	drv_init(&d, 8, F_MQ);
	assert_int_equal(pairs_set(&d, 4), VDEMUX_VNET_CTRL_OK);
	unsigned seen = 0;
	for (uint16_t port = 1000; port < 1064; port++) {
		uint32_t len = ipv4_frame(f, va, vb, port, 80, 6);
		ipv4_frame(g, vb, va, 80, port, 6);
		uint32_t h = 0;
		assert_int_equal(vdemux_flow_hash(f, len, NULL, 0, 0, &h), VDEMUX_FLOW_REPORT_TCPV4);
		struct vdemux_vnet_rss_pick p = pick(&d, f, len), q = pick(&d, g, len);
		assert_int_equal(p.queue, (uint16_t)((uint64_t)h * 4 >> 32));
		assert_int_equal(q.queue, p.queue); /* the other direction */
		assert_int_equal(p.hash_report, VDEMUX_FLOW_REPORT_NONE);
		assert_int_equal(p.hash_value, 0);
		seen |= 1u << p.queue;
	}
	assert_int_equal(seen, 0xf); /* each of the 4 pairs in use */
	f[12] = 0x08, f[13] = 0x06;
	expect_pick(&d, f, 54, 0, VDEMUX_FLOW_REPORT_NONE, 0);
	drv_fini(&d);
}

static void test_rx_queue_hash_report_from_hash_config_without_rss(void **state)
{
	(void)state;
	struct drv d;
	static uint8_t buf[64];
	uint8_t f[64];
	drv_init(&d, 1, F_HASH_REPORT);
	uint32_t len = ipv4_frame(f, vc, vd, 14230, 4739, 6);
	/* No type enabled yet: nothing reported. */
	expect_pick(&d, f, len, 0, VDEMUX_FLOW_REPORT_NONE, 0);
	assert_int_equal(command(&d, 4, 2, buf, hash_bytes(buf, VDEMUX_FLOW_HASH_ALL, 40)),
			 VDEMUX_VNET_CTRL_OK);
	expect_pick(&d, f, len, 0, VDEMUX_FLOW_REPORT_TCPV4, 0xc626b0ea);
	assert_int_equal(command(&d, 4, 2, buf, hash_bytes(buf, VDEMUX_FLOW_HASH_IPV4, 40)),
			 VDEMUX_VNET_CTRL_OK);
	expect_pick(&d, f, len, 0, VDEMUX_FLOW_REPORT_IPV4, 0xd718262a);
	drv_fini(&d);
}

static void test_rx_queue_bad_arguments_einval_out_unchanged(void **state)
{
	(void)state;
	struct drv d;
	uint8_t f[64] = {0};
	drv_init(&d, 1, 0);
	struct vdemux_vnet_rss_pick p, before;
	memset(&p, 0x5a, sizeof p);
	before = p;
	assert_int_equal(vdemux_vnet_ctrl_rx_queue(NULL, f, 64, &p), -EINVAL);
	assert_int_equal(vdemux_vnet_ctrl_rx_queue(d.c, NULL, 64, &p), -EINVAL);
	assert_int_equal(vdemux_vnet_ctrl_rx_queue(d.c, f, 64, NULL), -EINVAL);
	assert_memory_equal(&p, &before, sizeof p);
	drv_fini(&d);
}

static void test_create_checks_rss_options(void **state)
{
	(void)state;
	vdemux_vnet_ctrl *c = NULL;
	struct vdemux_vnet_ctrl_opts o = VDEMUX_OPTS(vdemux_vnet_ctrl_opts, .rss_max_key = 41);
	assert_int_equal(vdemux_vnet_ctrl_create(&c, &o), -EINVAL);
	o = VDEMUX_OPTS(vdemux_vnet_ctrl_opts, .rss_max_table = VDEMUX_VNET_CTRL_RSS_TABLE_MAX + 1);
	assert_int_equal(vdemux_vnet_ctrl_create(&c, &o), -EINVAL);
	o = VDEMUX_OPTS(vdemux_vnet_ctrl_opts, .rss_hash_types = 1u << 6);
	assert_int_equal(vdemux_vnet_ctrl_create(&c, &o), -EINVAL);
	assert_null(c);
	o = VDEMUX_OPTS(vdemux_vnet_ctrl_opts, .rss_max_key = 40, .rss_max_table = 128,
			.rss_hash_types = VDEMUX_FLOW_HASH_ALL);
	assert_int_equal(vdemux_vnet_ctrl_create(&c, &o), 0);
	vdemux_vnet_ctrl_destroy(c);
}

static void test_broken_ring_returns_eio(void **state)
{
	(void)state;
	struct drv d;
	drv_init(&d, 4, F_MQ);
	assert_int_equal(pairs_set(&d, 2), VDEMUX_VNET_CTRL_OK);
	/* The available index jumps by more than the queue size. */
	uint16_t idx = htole16((uint16_t)(d.avail_idx + QS + 1));
	memcpy(d.ram + AVAIL_GPA + 2, &idx, 2);
	assert_int_equal(vdemux_vnet_ctrl_serve(d.c, d.q), -EIO);
	assert_int_equal(vdemux_virtq_needs_reset(d.q), 1);
	assert_int_equal(cstate(&d).pairs, 2);
	drv_fini(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_checks_options),
		cmocka_unit_test(test_pairs_set_with_mq_sets_pairs),
		cmocka_unit_test(test_pairs_set_out_of_range_answered_err_pairs_kept),
		cmocka_unit_test(test_pairs_set_without_mq_unsupported),
		cmocka_unit_test(test_unserved_commands_answered_err),
		cmocka_unit_test(test_rx_mode_commands_set_their_bits),
		cmocka_unit_test(test_mac_table_set_keeps_counts_and_first_entries),
		cmocka_unit_test(test_mac_table_set_wrong_lengths_invalid),
		cmocka_unit_test(test_mac_addr_set_and_announce_ack),
		cmocka_unit_test(test_chain_without_status_byte_given_back_empty),
		cmocka_unit_test(test_command_too_long_answered_err),
		cmocka_unit_test(test_reset_restores_defaults_keeps_counters),
		cmocka_unit_test(test_broken_ring_returns_eio),
		cmocka_unit_test(test_rss_config_sets_table_key_types_and_pairs_replacing_old),
		cmocka_unit_test(test_rss_config_without_rss_unsupported_state_kept),
		cmocka_unit_test(test_rss_config_values_out_of_range_refused_state_kept),
		cmocka_unit_test(test_rss_config_wrong_length_refused_state_kept),
		cmocka_unit_test(test_rss_config_limits_from_options),
		cmocka_unit_test(test_hash_config_with_hash_report_sets_types_and_key),
		cmocka_unit_test(test_hash_config_refusals_answered_err_state_kept),
		cmocka_unit_test(test_reset_clears_rss_and_hash_state),
		cmocka_unit_test(test_state_of_old_size_gets_prefix_only),
		cmocka_unit_test(test_rx_queue_rss_picks_table_entry_of_hash_low_bits),
		cmocka_unit_test(test_rx_queue_rss_unclassified_when_no_type_applies),
		cmocka_unit_test(test_rx_queue_rss_without_hash_report_reports_none),
		cmocka_unit_test(test_rx_queue_short_key_counts_missing_bits_as_zero),
		cmocka_unit_test(test_rx_queue_without_rss_spreads_symmetric_hash_over_pairs),
		cmocka_unit_test(test_rx_queue_hash_report_from_hash_config_without_rss),
		cmocka_unit_test(test_rx_queue_bad_arguments_einval_out_unchanged),
		cmocka_unit_test(test_create_checks_rss_options),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

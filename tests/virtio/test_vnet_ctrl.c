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
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: MIT */
/* Unit tests of the built-in L2 classifier: one test per rule of its semantics. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <vdemux/sys/classifier.h>
#include <vdemux/l2.h>

#define MAXD 64

static const uint8_t SRC[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x99};
static const uint8_t MAC_A[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x0a};
static const uint8_t MAC_B[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x0b};
static const uint8_t MAC_X[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x77};
static const uint8_t BCAST[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
static const uint8_t GRP[6] = {0x01, 0x00, 0x5e, 0x00, 0x00, 0x01};
static const uint8_t GRP2[6] = {0x33, 0x33, 0x00, 0x00, 0x00, 0x01};

struct frame {
	uint8_t b[128];
	uint32_t len;
};

/* A frame dst/src, then tags (tpid, tci pairs; tpid 0 ends), ethertype 0x0800, payload. */
static struct frame mk(const uint8_t dst[6], const uint8_t src[6], ...)
{
	struct frame f;
	memset(&f, 0xab, sizeof(f.b));
	memcpy(f.b, dst, 6);
	memcpy(f.b + 6, src, 6);
	uint32_t o = 12;
	va_list ap;
	va_start(ap, src);
	for (;;) {
		unsigned tpid = va_arg(ap, unsigned);
		if (!tpid)
			break;
		unsigned tci = va_arg(ap, unsigned);
		f.b[o] = (uint8_t)(tpid >> 8);
		f.b[o + 1] = (uint8_t)tpid;
		f.b[o + 2] = (uint8_t)(tci >> 8);
		f.b[o + 3] = (uint8_t)tci;
		o += 4;
	}
	va_end(ap);
	f.b[o] = 0x08;
	f.b[o + 1] = 0x00;
	f.len = o + 2 + 46;
	return f;
}

#define UNTAGGED(dst) mk((dst), SRC, 0u)
#define TAGGED(dst, tpid, tci) mk((dst), SRC, (unsigned)(tpid), (unsigned)(tci), 0u)

struct verdict {
	struct vdemux_dest d[MAXD];
	struct vdemux_verdict v;
};

static struct vdemux_verdict *classify(vdemux_l2 *l2, const struct frame *f, struct verdict *out)
{
	memset(out, 0x5a, sizeof(*out));
	out->v.dests = out->d;
	out->v.cap = MAXD;
	assert_int_equal(vdemux_l2_classify(l2, f->b, f->len, &out->v), 0);
	return &out->v;
}

static void expect_drop(vdemux_l2 *l2, const struct frame *f, int reason)
{
	struct verdict r;
	struct vdemux_verdict *v = classify(l2, f, &r);
	assert_int_equal(v->n, 0);
	assert_int_equal(v->drop_reason, reason);
}

struct exp {
	vdemux_vm_id vm;
	int action;
	uint16_t tpid;
	uint16_t tci;
};

/* The verdict names exactly the expected destinations (any order), each once. */
static void expect_dests(vdemux_l2 *l2, const struct frame *f, const struct exp *e, unsigned n)
{
	struct verdict r;
	struct vdemux_verdict *v = classify(l2, f, &r);
	assert_int_equal(v->n, n);
	for (unsigned i = 0; i < n; i++) {
		unsigned hits = 0;
		for (unsigned j = 0; j < v->n; j++) {
			if (v->dests[j].vm != e[i].vm)
				continue;
			hits++;
			assert_int_equal(v->dests[j].action, e[i].action);
			assert_int_equal(v->dests[j].pad, 0);
			assert_int_equal(v->dests[j].pad2, 0);
			if (e[i].action == VDEMUX_VLAN_PUSH || e[i].action == VDEMUX_VLAN_SET) {
				assert_int_equal(v->dests[j].tpid, e[i].tpid);
				assert_int_equal(v->dests[j].tci, e[i].tci);
			}
		}
		if (hits != 1)
			fail_msg("vm %u named %u times", e[i].vm, hits);
	}
}

#define EXPECT(l2, f, ...)                                               \
	do {                                                             \
		const struct exp e_[] = {__VA_ARGS__};                   \
		struct frame f_ = (f);                                   \
		expect_dests((l2), &f_, e_, sizeof(e_) / sizeof(e_[0])); \
	} while (0)

#define DROP(l2, f, reason)                       \
	do {                                      \
		struct frame f_ = (f);            \
		expect_drop((l2), &f_, (reason)); \
	} while (0)

static vdemux_l2 *mk_l2(uint16_t proto, uint16_t native)
{
	vdemux_l2 *l2 = NULL;
	struct vdemux_l2_opts o = VDEMUX_OPTS(vdemux_l2_opts, .vlan_proto = proto, .native_vlan = native);
	assert_int_equal(vdemux_l2_create(&l2, &o), 0);
	return l2;
}

#define KEEP VDEMUX_VLAN_KEEP
#define STRIP VDEMUX_VLAN_STRIP
#define PUSH VDEMUX_VLAN_PUSH
#define SET VDEMUX_VLAN_SET
#define Q VDEMUX_TPID_8021Q
#define AD VDEMUX_TPID_8021AD

/* ------------------------------------------------------------------------ */

static void test_create_rejects_bad_options(void **state)
{
	(void)state;
	vdemux_l2 *l2 = (vdemux_l2 *)0x1;
	struct vdemux_l2_opts o = VDEMUX_OPTS(vdemux_l2_opts, .vlan_proto = 0x9100);
	assert_int_equal(vdemux_l2_create(&l2, &o), -EINVAL);
	o = VDEMUX_OPTS(vdemux_l2_opts, .native_vlan = 4095);
	assert_int_equal(vdemux_l2_create(&l2, &o), -EINVAL);
	o = VDEMUX_OPTS(vdemux_l2_opts, .max_entries = (1u << 26) + 1);
	assert_int_equal(vdemux_l2_create(&l2, &o), -EINVAL);
	o = VDEMUX_OPTS(vdemux_l2_opts);
	o.alloc.payload = NULL;
	o.alloc.free = (void (*)(void *, void *))0x1; /* free without calloc */
	assert_int_equal(vdemux_l2_create(&l2, &o), -EINVAL);
	assert_int_equal(vdemux_l2_create(NULL, NULL), -EINVAL);
	assert_ptr_equal(l2, (vdemux_l2 *)0x1); /* untouched on failure */

	/* A larger options struct is accepted only with zero trailing bytes. */
	struct {
		struct vdemux_l2_opts o;
		uint64_t extra;
	} big = {.o = VDEMUX_OPTS(vdemux_l2_opts), .extra = 0};
	big.o.sz = sizeof(big);
	assert_int_equal(vdemux_l2_create(&l2, &big.o), 0);
	vdemux_l2_destroy(l2);
	big.extra = 1;
	assert_int_equal(vdemux_l2_create(&l2, &big.o), -EINVAL);
	/* A smaller one takes defaults past its size. */
	o = VDEMUX_OPTS(vdemux_l2_opts, .vlan_proto = 0x9100);
	o.sz = offsetof(struct vdemux_l2_opts, vlan_proto);
	assert_int_equal(vdemux_l2_create(&l2, &o), 0);
	vdemux_l2_destroy(l2);
	vdemux_l2_destroy(NULL);
}

static void test_classifier_interface_is_the_l2_classify(void **state)
{
	(void)state;
	vdemux_l2 *l2 = mk_l2(0, 0);
	struct vdemux_classifier *c = vdemux_l2_classifier(l2);
	assert_non_null(c);
	assert_int_equal(c->version, VDEMUX_CLASSIFIER_VERSION);
	assert_non_null(c->name);
	assert_non_null(c->classify);
	assert_non_null(c->vm_removed);
	assert_int_equal(vdemux_l2_vlan_join(l2, 5, 1, 0), 0);
	assert_int_equal(vdemux_l2_add_mac(l2, 5, MAC_A, 1), 0);
	struct frame f = UNTAGGED(MAC_A);
	struct vdemux_dest d[4];
	struct vdemux_verdict v = {.dests = d, .cap = 4};
	assert_int_equal(c->classify(c, f.b, f.len, &v), 0);
	assert_int_equal(v.n, 1);
	assert_int_equal(d[0].vm, 5);
	c->vm_removed(c, 5);
	DROP(l2, UNTAGGED(MAC_A), VDEMUX_DROP_NO_VLAN_MEMBER);
	assert_int_equal(vdemux_l2_classify(NULL, f.b, f.len, &v), -EINVAL);
	assert_int_equal(vdemux_l2_classify(l2, f.b, f.len, NULL), -EINVAL);
	assert_null(vdemux_l2_classifier(NULL));
	vdemux_l2_destroy(l2);
}

static void test_short_frame_is_malformed(void **state)
{
	(void)state;
	vdemux_l2 *l2 = mk_l2(0, 0);
	assert_int_equal(vdemux_l2_vlan_join(l2, 1, 1, 0), 0);
	struct frame f = UNTAGGED(BCAST);
	for (uint32_t len = 0; len < 14; len++) {
		f.len = len;
		DROP(l2, f, VDEMUX_DROP_MALFORMED);
	}
	f.len = 14;
	EXPECT(l2, f, {1, KEEP, 0, 0});
	vdemux_l2_destroy(l2);
}

static void test_truncated_uplink_tag_is_malformed(void **state)
{
	(void)state;
	vdemux_l2 *l2 = mk_l2(0, 0);
	assert_int_equal(vdemux_l2_vlan_join(l2, 1, 10, 0), 0);
	assert_int_equal(vdemux_l2_vlan_join(l2, 1, 1, 0), 0);
	struct frame f = TAGGED(BCAST, Q, 10);
	for (uint32_t len = 14; len < 18; len++) {
		f.len = len;
		DROP(l2, f, VDEMUX_DROP_MALFORMED);
	}
	f.len = 18;
	EXPECT(l2, f, {1, STRIP, 0, 0});
	/* A truncated tag of the other protocol is payload, not a tag. */
	struct frame g = TAGGED(BCAST, AD, 10);
	g.len = 15;
	EXPECT(l2, g, {1, KEEP, 0, 0});
	vdemux_l2_destroy(l2);
}

static void test_invalid_source_is_dropped(void **state)
{
	(void)state;
	vdemux_l2 *l2 = mk_l2(0, 0);
	assert_int_equal(vdemux_l2_vlan_join(l2, 1, 1, 0), 0);
	assert_int_equal(vdemux_l2_add_mac(l2, 1, MAC_A, 1), 0);
	const uint8_t zero[6] = {0};
	DROP(l2, mk(MAC_A, BCAST, 0u), VDEMUX_DROP_INVALID_SRC);
	DROP(l2, mk(MAC_A, GRP, 0u), VDEMUX_DROP_INVALID_SRC);
	DROP(l2, mk(MAC_A, zero, 0u), VDEMUX_DROP_INVALID_SRC);
	DROP(l2, mk(BCAST, zero, 0u), VDEMUX_DROP_INVALID_SRC);
	EXPECT(l2, mk(MAC_A, MAC_B, 0u), {1, KEEP, 0, 0});
	vdemux_l2_destroy(l2);
}

static void test_unicast_goes_to_its_owner_only(void **state)
{
	(void)state;
	vdemux_l2 *l2 = mk_l2(0, 0);
	for (vdemux_vm_id vm = 1; vm <= 3; vm++)
		assert_int_equal(vdemux_l2_vlan_join(l2, vm, 1, 0), 0);
	assert_int_equal(vdemux_l2_add_mac(l2, 1, MAC_A, 1), 0);
	assert_int_equal(vdemux_l2_add_mac(l2, 2, MAC_B, 1), 0);
	EXPECT(l2, UNTAGGED(MAC_A), {1, KEEP, 0, 0});
	EXPECT(l2, UNTAGGED(MAC_B), {2, KEEP, 0, 0});
	/* The same MAC on another VLAN is another address. */
	assert_int_equal(vdemux_l2_vlan_join(l2, 3, 20, 0), 0);
	assert_int_equal(vdemux_l2_add_mac(l2, 3, MAC_A, 20), 0);
	EXPECT(l2, TAGGED(MAC_A, Q, 20), {3, STRIP, 0, 0});
	EXPECT(l2, UNTAGGED(MAC_A), {1, KEEP, 0, 0});
	assert_int_equal(vdemux_l2_lookup(l2, MAC_A, 1), 1);
	assert_int_equal(vdemux_l2_lookup(l2, MAC_A, 20), 3);
	assert_int_equal(vdemux_l2_lookup(l2, MAC_X, 1), 0);
	assert_int_equal(vdemux_l2_lookup(l2, GRP, 1), 0);
	vdemux_l2_destroy(l2);
}

static void test_tagged_member_gets_the_uplink_tag(void **state)
{
	(void)state;
	vdemux_l2 *l2 = mk_l2(0, 0);
	assert_int_equal(vdemux_l2_vlan_join(l2, 1, 1, VDEMUX_L2_TAGGED), 0);
	assert_int_equal(vdemux_l2_vlan_join(l2, 2, 10, VDEMUX_L2_TAGGED), 0);
	assert_int_equal(vdemux_l2_add_mac(l2, 1, MAC_A, 1), 0);
	assert_int_equal(vdemux_l2_add_mac(l2, 2, MAC_B, 10), 0);
	/* Untagged frame to a tagged member of the native VLAN: pushed, priority 0. */
	EXPECT(l2, UNTAGGED(MAC_A), {1, PUSH, Q, 1});
	/* Tagged frame to a tagged member: kept as it came (priority included). */
	EXPECT(l2, TAGGED(MAC_B, Q, 0xa000 | 10), {2, KEEP, 0, 0});
	vdemux_l2_destroy(l2);
}

static void test_untagged_member_gets_the_tag_stripped(void **state)
{
	(void)state;
	vdemux_l2 *l2 = mk_l2(0, 0);
	assert_int_equal(vdemux_l2_vlan_join(l2, 2, 10, 0), 0);
	assert_int_equal(vdemux_l2_add_mac(l2, 2, MAC_B, 10), 0);
	EXPECT(l2, TAGGED(MAC_B, Q, 0xe000 | 10), {2, STRIP, 0, 0});
	/* Inner tags are payload: only the first tag is named by the action. */
	EXPECT(l2, mk(MAC_B, SRC, Q, 10u, Q, 30u, 0u), {2, STRIP, 0, 0});
	vdemux_l2_destroy(l2);
}

static void test_untagged_frame_belongs_to_the_native_vlan(void **state)
{
	(void)state;
	vdemux_l2 *l2 = mk_l2(0, 7);
	assert_int_equal(vdemux_l2_vlan_join(l2, 1, 1, 0), 0);
	assert_int_equal(vdemux_l2_vlan_join(l2, 7, 7, 0), 0);
	EXPECT(l2, UNTAGGED(BCAST), {7, KEEP, 0, 0});
	/* A frame tagged with VID 1 is not native here: VLAN 1. */
	EXPECT(l2, TAGGED(BCAST, Q, 1), {1, STRIP, 0, 0});
	vdemux_l2_destroy(l2);
	/* Default native VLAN is 1. */
	l2 = mk_l2(0, 0);
	assert_int_equal(vdemux_l2_vlan_join(l2, 1, 1, 0), 0);
	EXPECT(l2, UNTAGGED(BCAST), {1, KEEP, 0, 0});
	vdemux_l2_destroy(l2);
}

static void test_priority_tagged_frame_belongs_to_the_native_vlan(void **state)
{
	(void)state;
	vdemux_l2 *l2 = mk_l2(0, 5);
	assert_int_equal(vdemux_l2_vlan_join(l2, 1, 5, 0), 0);
	assert_int_equal(vdemux_l2_vlan_join(l2, 2, 5, VDEMUX_L2_TAGGED), 0);
	/* PCP 6, DEI 1, VID 0. */
	EXPECT(l2, TAGGED(BCAST, Q, 0xd000), {1, STRIP, 0, 0}, {2, SET, Q, 0xd000 | 5});
	assert_int_equal(vdemux_l2_add_mac(l2, 2, MAC_B, 5), 0);
	EXPECT(l2, TAGGED(MAC_B, Q, 0x2000), {2, SET, Q, 0x2000 | 5});
	vdemux_l2_destroy(l2);
}

static void test_other_protocol_tag_is_payload_8021q_uplink(void **state)
{
	(void)state;
	vdemux_l2 *l2 = mk_l2(Q, 0);
	assert_int_equal(vdemux_l2_vlan_join(l2, 1, 1, 0), 0);
	assert_int_equal(vdemux_l2_vlan_join(l2, 2, 1, VDEMUX_L2_TAGGED), 0);
	assert_int_equal(vdemux_l2_vlan_join(l2, 3, 10, 0), 0);
	/* An 802.1ad tag with VID 10 on an 802.1Q uplink: native VLAN, tag kept. */
	EXPECT(l2, TAGGED(BCAST, AD, 10), {1, KEEP, 0, 0}, {2, PUSH, Q, 1});
	vdemux_l2_destroy(l2);
}

static void test_8021ad_uplink_uses_the_provider_tag(void **state)
{
	(void)state;
	vdemux_l2 *l2 = mk_l2(AD, 0);
	assert_int_equal(vdemux_l2_vlan_join(l2, 1, 1, 0), 0);
	assert_int_equal(vdemux_l2_vlan_join(l2, 2, 10, VDEMUX_L2_TAGGED), 0);
	assert_int_equal(vdemux_l2_vlan_join(l2, 3, 10, 0), 0);
	assert_int_equal(vdemux_l2_vlan_join(l2, 4, 1, VDEMUX_L2_TAGGED), 0);
	/* S-tag 10 with a C-tag inside: the S-tag decides, the C-tag is payload. */
	EXPECT(l2, mk(BCAST, SRC, AD, 10u, Q, 99u, 0u), {2, KEEP, 0, 0}, {3, STRIP, 0, 0});
	/* A C-tag alone is payload on a provider uplink: native VLAN. */
	EXPECT(l2, TAGGED(BCAST, Q, 10), {1, KEEP, 0, 0}, {4, PUSH, AD, 1});
	/* Priority-tagged with the provider TPID. */
	EXPECT(l2, TAGGED(BCAST, AD, 0x6000), {1, STRIP, 0, 0}, {4, SET, AD, 0x6001});
	/* A truncated S-tag is malformed. */
	struct frame f = TAGGED(BCAST, AD, 10);
	f.len = 16;
	DROP(l2, f, VDEMUX_DROP_MALFORMED);
	vdemux_l2_destroy(l2);
}

static void test_broadcast_reaches_every_member_of_the_vlan(void **state)
{
	(void)state;
	vdemux_l2 *l2 = mk_l2(0, 0);
	assert_int_equal(vdemux_l2_vlan_join(l2, 1, 10, 0), 0);
	assert_int_equal(vdemux_l2_vlan_join(l2, 2, 10, VDEMUX_L2_TAGGED), 0);
	assert_int_equal(vdemux_l2_vlan_join(l2, 3, 20, 0), 0);
	assert_int_equal(vdemux_l2_vlan_join(l2, 4, 1, 0), 0);
	EXPECT(l2, TAGGED(BCAST, Q, 0x4000 | 10), {1, STRIP, 0, 0}, {2, KEEP, 0, 0});
	EXPECT(l2, TAGGED(BCAST, Q, 20), {3, STRIP, 0, 0});
	EXPECT(l2, UNTAGGED(BCAST), {4, KEEP, 0, 0});
	vdemux_l2_destroy(l2);
}

static void test_multicast_goes_to_subscribers_and_allmulti(void **state)
{
	(void)state;
	vdemux_l2 *l2 = mk_l2(0, 0);
	for (vdemux_vm_id vm = 1; vm <= 5; vm++)
		assert_int_equal(vdemux_l2_vlan_join(l2, vm, 10, vm == 2 ? VDEMUX_L2_TAGGED : 0), 0);
	assert_int_equal(vdemux_l2_add_mcast(l2, 1, GRP, 10), 0);
	assert_int_equal(vdemux_l2_add_mcast(l2, 2, GRP, 10), 0);
	assert_int_equal(vdemux_l2_add_mcast(l2, 2, GRP, 10), 0); /* again: no-op */
	assert_int_equal(vdemux_l2_add_mcast(l2, 3, GRP2, 10), 0);
	assert_int_equal(vdemux_l2_set_allmulti(l2, 4, 10, 1), 0);
	/* Subscribed and all-multicast: named once. */
	assert_int_equal(vdemux_l2_set_allmulti(l2, 1, 10, 1), 0);
	EXPECT(l2, TAGGED(GRP, Q, 10), {1, STRIP, 0, 0}, {2, KEEP, 0, 0}, {4, STRIP, 0, 0});
	EXPECT(l2, TAGGED(GRP2, Q, 10), {1, STRIP, 0, 0}, {3, STRIP, 0, 0}, {4, STRIP, 0, 0});
	/* The group on another VLAN is another group. */
	assert_int_equal(vdemux_l2_vlan_join(l2, 5, 1, 0), 0);
	DROP(l2, UNTAGGED(GRP), VDEMUX_DROP_NO_SUBSCRIBER);
	assert_int_equal(vdemux_l2_set_allmulti(l2, 1, 10, 0), 0);
	assert_int_equal(vdemux_l2_set_allmulti(l2, 4, 10, 0), 0);
	assert_int_equal(vdemux_l2_set_allmulti(l2, 4, 10, 0), 0);
	EXPECT(l2, TAGGED(GRP, Q, 10), {1, STRIP, 0, 0}, {2, KEEP, 0, 0});
	assert_int_equal(vdemux_l2_del_mcast(l2, 1, GRP, 10), 0);
	assert_int_equal(vdemux_l2_del_mcast(l2, 1, GRP, 10), -ENOENT);
	EXPECT(l2, TAGGED(GRP, Q, 10), {2, KEEP, 0, 0});
	assert_int_equal(vdemux_l2_del_mcast(l2, 2, GRP, 10), 0);
	DROP(l2, TAGGED(GRP, Q, 10), VDEMUX_DROP_NO_SUBSCRIBER);
	/* Multicast of an untagged frame to a tagged subscriber: pushed. */
	assert_int_equal(vdemux_l2_vlan_join(l2, 6, 1, VDEMUX_L2_TAGGED), 0);
	assert_int_equal(vdemux_l2_add_mcast(l2, 6, GRP, 1), 0);
	EXPECT(l2, UNTAGGED(GRP), {6, PUSH, Q, 1});
	vdemux_l2_destroy(l2);
}

static void test_link_local_groups_are_never_forwarded_8021q(void **state)
{
	(void)state;
	vdemux_l2 *l2 = mk_l2(Q, 0);
	assert_int_equal(vdemux_l2_vlan_join(l2, 1, 1, 0), 0);
	assert_int_equal(vdemux_l2_set_allmulti(l2, 1, 1, 1), 0);
	uint8_t g[6] = {0x01, 0x80, 0xc2, 0x00, 0x00, 0x00};
	for (unsigned low = 0; low <= 0x0f; low++) {
		g[5] = (uint8_t)low;
		assert_int_equal(vdemux_l2_add_mcast(l2, 1, g, 1), 0);
		DROP(l2, UNTAGGED(g), VDEMUX_DROP_LINK_LOCAL);
	}
	g[5] = 0x10;
	EXPECT(l2, UNTAGGED(g), {1, KEEP, 0, 0});
	vdemux_l2_destroy(l2);
}

static void test_link_local_groups_of_a_provider_bridge_8021ad(void **state)
{
	(void)state;
	vdemux_l2 *l2 = mk_l2(AD, 0);
	assert_int_equal(vdemux_l2_vlan_join(l2, 1, 1, 0), 0);
	assert_int_equal(vdemux_l2_set_allmulti(l2, 1, 1, 1), 0);
	uint8_t g[6] = {0x01, 0x80, 0xc2, 0x00, 0x00, 0x00};
	for (unsigned low = 0; low <= 0x10; low++) {
		g[5] = (uint8_t)low;
		if ((low >= 0x01 && low <= 0x0a) || low == 0x0e)
			DROP(l2, UNTAGGED(g), VDEMUX_DROP_LINK_LOCAL);
		else
			EXPECT(l2, UNTAGGED(g), {1, KEEP, 0, 0});
	}
	vdemux_l2_destroy(l2);
}

static void test_unknown_unicast_goes_to_the_default_vm(void **state)
{
	(void)state;
	vdemux_l2 *l2 = mk_l2(0, 0);
	assert_int_equal(vdemux_l2_vlan_join(l2, 1, 10, 0), 0);
	assert_int_equal(vdemux_l2_vlan_join(l2, 2, 10, VDEMUX_L2_TAGGED), 0);
	assert_int_equal(vdemux_l2_add_mac(l2, 1, MAC_A, 10), 0);
	DROP(l2, TAGGED(MAC_X, Q, 10), VDEMUX_DROP_UNKNOWN_UNICAST);
	assert_int_equal(vdemux_l2_set_default(l2, 10, 2), 0);
	EXPECT(l2, TAGGED(MAC_X, Q, 10), {2, KEEP, 0, 0});
	/* Known unicast still goes to its owner only. */
	EXPECT(l2, TAGGED(MAC_A, Q, 10), {1, STRIP, 0, 0});
	/* The default is per VLAN. */
	assert_int_equal(vdemux_l2_vlan_join(l2, 3, 1, 0), 0);
	DROP(l2, UNTAGGED(MAC_X), VDEMUX_DROP_UNKNOWN_UNICAST);
	assert_int_equal(vdemux_l2_set_default(l2, 10, 0), 0);
	DROP(l2, TAGGED(MAC_X, Q, 10), VDEMUX_DROP_UNKNOWN_UNICAST);
	assert_int_equal(vdemux_l2_set_default(l2, 10, 3), -ENOENT);
	assert_int_equal(vdemux_l2_set_default(l2, 4095, 1), -EINVAL);
	vdemux_l2_destroy(l2);
}

static void test_vlan_without_members_drops_everything(void **state)
{
	(void)state;
	vdemux_l2 *l2 = mk_l2(0, 0);
	assert_int_equal(vdemux_l2_vlan_join(l2, 1, 1, 0), 0);
	DROP(l2, TAGGED(BCAST, Q, 10), VDEMUX_DROP_NO_VLAN_MEMBER);
	DROP(l2, TAGGED(GRP, Q, 10), VDEMUX_DROP_NO_VLAN_MEMBER);
	DROP(l2, TAGGED(MAC_A, Q, 10), VDEMUX_DROP_NO_VLAN_MEMBER);
	DROP(l2, TAGGED(BCAST, Q, 4095), VDEMUX_DROP_NO_VLAN_MEMBER);
	assert_int_equal(vdemux_l2_vlan_leave(l2, 1, 1), 0);
	DROP(l2, UNTAGGED(BCAST), VDEMUX_DROP_NO_VLAN_MEMBER);
	vdemux_l2_destroy(l2);
}

static void test_config_calls_validate_their_arguments(void **state)
{
	(void)state;
	vdemux_l2 *l2 = mk_l2(0, 0);
	const uint8_t zero[6] = {0};
	assert_int_equal(vdemux_l2_vlan_join(l2, 0, 1, 0), -EINVAL);
	assert_int_equal(vdemux_l2_vlan_join(l2, 1, 0, 0), -EINVAL);
	assert_int_equal(vdemux_l2_vlan_join(l2, 1, 4095, 0), -EINVAL);
	assert_int_equal(vdemux_l2_vlan_join(l2, 1, 1, 0x2), -EINVAL);
	assert_int_equal(vdemux_l2_vlan_join(NULL, 1, 1, 0), -EINVAL);
	assert_int_equal(vdemux_l2_vlan_leave(l2, 1, 1), -ENOENT);
	assert_int_equal(vdemux_l2_add_mac(l2, 1, MAC_A, 1), -ENOENT);
	assert_int_equal(vdemux_l2_add_mcast(l2, 1, GRP, 1), -ENOENT);
	assert_int_equal(vdemux_l2_set_allmulti(l2, 1, 1, 1), -ENOENT);
	assert_int_equal(vdemux_l2_vlan_join(l2, 1, 1, 0), 0);
	assert_int_equal(vdemux_l2_vlan_join(l2, 2, 1, 0), 0);
	assert_int_equal(vdemux_l2_add_mac(l2, 1, GRP, 1), -EINVAL);
	assert_int_equal(vdemux_l2_add_mac(l2, 1, zero, 1), -EINVAL);
	assert_int_equal(vdemux_l2_add_mac(l2, 0, MAC_A, 1), -EINVAL);
	assert_int_equal(vdemux_l2_add_mac(l2, 1, MAC_A, 0), -EINVAL);
	assert_int_equal(vdemux_l2_add_mac(l2, 1, NULL, 1), -EINVAL);
	assert_int_equal(vdemux_l2_add_mac(l2, 1, MAC_A, 1), 0);
	assert_int_equal(vdemux_l2_add_mac(l2, 1, MAC_A, 1), 0);
	assert_int_equal(vdemux_l2_add_mac(l2, 2, MAC_A, 1), -EEXIST);
	assert_int_equal(vdemux_l2_lookup(l2, MAC_A, 1), 1);
	assert_int_equal(vdemux_l2_add_mcast(l2, 1, MAC_A, 1), -EINVAL);
	assert_int_equal(vdemux_l2_add_mcast(l2, 1, BCAST, 1), -EINVAL);
	assert_int_equal(vdemux_l2_del_mac(l2, MAC_B, 1), -ENOENT);
	assert_int_equal(vdemux_l2_del_mac(l2, GRP, 1), -EINVAL);
	assert_int_equal(vdemux_l2_del_mac(l2, MAC_A, 1), 0);
	assert_int_equal(vdemux_l2_del_mac(l2, MAC_A, 1), -ENOENT);
	assert_int_equal(vdemux_l2_lookup(l2, MAC_A, 1), 0);
	assert_int_equal(vdemux_l2_del_mcast(l2, 1, GRP, 1), -ENOENT);
	assert_int_equal(vdemux_l2_del_mcast(l2, 1, MAC_A, 1), -EINVAL);
	assert_int_equal(vdemux_l2_set_allmulti(l2, 1, 0, 1), -EINVAL);
	vdemux_l2_destroy(l2);
}

static void test_max_entries_bounds_addresses_and_groups(void **state)
{
	(void)state;
	vdemux_l2 *l2 = NULL;
	struct vdemux_l2_opts o = VDEMUX_OPTS(vdemux_l2_opts, .max_entries = 3);
	assert_int_equal(vdemux_l2_create(&l2, &o), 0);
	assert_int_equal(vdemux_l2_vlan_join(l2, 1, 1, 0), 0);
	assert_int_equal(vdemux_l2_vlan_join(l2, 2, 1, 0), 0);
	assert_int_equal(vdemux_l2_add_mac(l2, 1, MAC_A, 1), 0);
	assert_int_equal(vdemux_l2_add_mac(l2, 1, MAC_B, 1), 0);
	assert_int_equal(vdemux_l2_add_mcast(l2, 1, GRP, 1), 0);
	assert_int_equal(vdemux_l2_add_mac(l2, 1, MAC_X, 1), -ENOSPC);
	assert_int_equal(vdemux_l2_add_mcast(l2, 1, GRP2, 1), -ENOSPC);
	/* Another subscriber of an existing group takes no entry. */
	assert_int_equal(vdemux_l2_add_mcast(l2, 2, GRP, 1), 0);
	assert_int_equal(vdemux_l2_del_mac(l2, MAC_B, 1), 0);
	assert_int_equal(vdemux_l2_add_mac(l2, 1, MAC_X, 1), 0);
	assert_int_equal(vdemux_l2_lookup(l2, MAC_X, 1), 1);
	vdemux_l2_destroy(l2);
}

static void test_leave_drops_addresses_subscriptions_and_default(void **state)
{
	(void)state;
	vdemux_l2 *l2 = mk_l2(0, 0);
	assert_int_equal(vdemux_l2_vlan_join(l2, 1, 10, 0), 0);
	assert_int_equal(vdemux_l2_vlan_join(l2, 1, 20, 0), 0);
	assert_int_equal(vdemux_l2_vlan_join(l2, 2, 10, 0), 0);
	assert_int_equal(vdemux_l2_add_mac(l2, 1, MAC_A, 10), 0);
	assert_int_equal(vdemux_l2_add_mac(l2, 1, MAC_A, 20), 0);
	assert_int_equal(vdemux_l2_add_mcast(l2, 1, GRP, 10), 0);
	assert_int_equal(vdemux_l2_set_allmulti(l2, 1, 10, 1), 0);
	assert_int_equal(vdemux_l2_set_default(l2, 10, 1), 0);
	assert_int_equal(vdemux_l2_vlan_leave(l2, 1, 10), 0);
	assert_int_equal(vdemux_l2_lookup(l2, MAC_A, 10), 0);
	DROP(l2, TAGGED(MAC_A, Q, 10), VDEMUX_DROP_UNKNOWN_UNICAST);
	DROP(l2, TAGGED(GRP, Q, 10), VDEMUX_DROP_NO_SUBSCRIBER);
	EXPECT(l2, TAGGED(BCAST, Q, 10), {2, STRIP, 0, 0});
	/* Its other VLAN is untouched. */
	EXPECT(l2, TAGGED(MAC_A, Q, 20), {1, STRIP, 0, 0});
	/* Joining again starts from nothing. */
	assert_int_equal(vdemux_l2_vlan_join(l2, 1, 10, 0), 0);
	DROP(l2, TAGGED(GRP, Q, 10), VDEMUX_DROP_NO_SUBSCRIBER);
	/* The group's slot can be used by a new subscriber. */
	assert_int_equal(vdemux_l2_add_mcast(l2, 2, GRP, 10), 0);
	EXPECT(l2, TAGGED(GRP, Q, 10), {2, STRIP, 0, 0});
	vdemux_l2_destroy(l2);
}

static void test_joining_again_changes_tagging_everywhere(void **state)
{
	(void)state;
	vdemux_l2 *l2 = mk_l2(0, 0);
	assert_int_equal(vdemux_l2_vlan_join(l2, 1, 10, 0), 0);
	assert_int_equal(vdemux_l2_add_mac(l2, 1, MAC_A, 10), 0);
	assert_int_equal(vdemux_l2_add_mcast(l2, 1, GRP, 10), 0);
	assert_int_equal(vdemux_l2_vlan_join(l2, 2, 10, 0), 0);
	assert_int_equal(vdemux_l2_set_allmulti(l2, 2, 10, 1), 0);
	assert_int_equal(vdemux_l2_set_default(l2, 10, 2), 0);
	EXPECT(l2, TAGGED(MAC_A, Q, 10), {1, STRIP, 0, 0});
	assert_int_equal(vdemux_l2_vlan_join(l2, 1, 10, VDEMUX_L2_TAGGED), 0);
	assert_int_equal(vdemux_l2_vlan_join(l2, 2, 10, VDEMUX_L2_TAGGED), 0);
	EXPECT(l2, TAGGED(MAC_A, Q, 10), {1, KEEP, 0, 0});
	EXPECT(l2, TAGGED(MAC_X, Q, 10), {2, KEEP, 0, 0});
	EXPECT(l2, TAGGED(GRP, Q, 10), {1, KEEP, 0, 0}, {2, KEEP, 0, 0});
	EXPECT(l2, TAGGED(BCAST, Q, 10), {1, KEEP, 0, 0}, {2, KEEP, 0, 0});
	assert_int_equal(vdemux_l2_vlan_join(l2, 2, 10, 0), 0);
	EXPECT(l2, TAGGED(GRP, Q, 10), {1, KEEP, 0, 0}, {2, STRIP, 0, 0});
	EXPECT(l2, TAGGED(MAC_X, Q, 10), {2, STRIP, 0, 0});
	vdemux_l2_destroy(l2);
}

static void test_remove_vm_forgets_everything(void **state)
{
	(void)state;
	vdemux_l2 *l2 = mk_l2(0, 0);
	for (uint16_t vid = 1; vid <= 50; vid++) {
		assert_int_equal(vdemux_l2_vlan_join(l2, 1, vid, 0), 0);
		assert_int_equal(vdemux_l2_add_mac(l2, 1, MAC_A, vid), 0);
		assert_int_equal(vdemux_l2_add_mcast(l2, 1, GRP, vid), 0);
		assert_int_equal(vdemux_l2_set_default(l2, vid, 1), 0);
	}
	assert_int_equal(vdemux_l2_vlan_join(l2, 2, 7, 0), 0);
	assert_int_equal(vdemux_l2_add_mac(l2, 2, MAC_B, 7), 0);
	vdemux_l2_remove_vm(l2, 1);
	for (uint16_t vid = 1; vid <= 50; vid++) {
		assert_int_equal(vdemux_l2_lookup(l2, MAC_A, vid), 0);
		assert_int_equal(vdemux_l2_vlan_leave(l2, 1, vid), -ENOENT);
	}
	DROP(l2, TAGGED(MAC_X, Q, 3), VDEMUX_DROP_NO_VLAN_MEMBER);
	DROP(l2, TAGGED(MAC_X, Q, 7), VDEMUX_DROP_UNKNOWN_UNICAST);
	EXPECT(l2, TAGGED(MAC_B, Q, 7), {2, STRIP, 0, 0});
	/* Entries were given back. */
	assert_int_equal(vdemux_l2_vlan_join(l2, 1, 1, 0), 0);
	assert_int_equal(vdemux_l2_add_mac(l2, 1, MAC_A, 1), 0);
	vdemux_l2_remove_vm(l2, 99); /* unknown: no-op */
	vdemux_l2_remove_vm(NULL, 1);
	vdemux_l2_destroy(l2);
}

static void test_verdict_never_exceeds_its_capacity(void **state)
{
	(void)state;
	vdemux_l2 *l2 = mk_l2(0, 0);
	for (vdemux_vm_id vm = 1; vm <= 10; vm++)
		assert_int_equal(vdemux_l2_vlan_join(l2, vm, 1, 0), 0);
	struct frame f = UNTAGGED(BCAST);
	struct vdemux_dest d[5];
	memset(d, 0, sizeof(d));
	struct vdemux_verdict v = {.dests = d, .cap = 4};
	assert_int_equal(vdemux_l2_classify(l2, f.b, f.len, &v), 0);
	assert_int_equal(v.n, 4);
	assert_int_equal(d[4].vm, 0);
	v.cap = 0;
	v.dests = NULL;
	assert_int_equal(vdemux_l2_classify(l2, f.b, f.len, &v), 0);
	assert_int_equal(v.n, 0);
	assert_int_equal(v.drop_reason, VDEMUX_DROP_NO_DEST);
	vdemux_l2_destroy(l2);
}

static void mac_of(uint8_t m[6], uint32_t i)
{
	m[0] = 0x02;
	m[1] = 0x10;
	m[2] = (uint8_t)(i >> 24);
	m[3] = (uint8_t)(i >> 16);
	m[4] = (uint8_t)(i >> 8);
	m[5] = (uint8_t)i;
}

static void test_many_addresses_survive_growth_and_churn(void **state)
{
	(void)state;
	vdemux_l2 *l2 = mk_l2(0, 0);
	const uint32_t n = 20000;
	for (vdemux_vm_id vm = 1; vm <= 64; vm++)
		assert_int_equal(vdemux_l2_vlan_join(l2, vm, (uint16_t)(1 + vm % 4), 0), 0);
	uint8_t m[6];
	for (uint32_t i = 0; i < n; i++) {
		vdemux_vm_id vm = 1 + i % 64;
		mac_of(m, i);
		assert_int_equal(vdemux_l2_add_mac(l2, vm, m, (uint16_t)(1 + vm % 4)), 0);
	}
	/* Remove every third, re-add half of those (tombstones reused, rebuilt). */
	for (int round = 0; round < 3; round++) {
		for (uint32_t i = 0; i < n; i += 3) {
			vdemux_vm_id vm = 1 + i % 64;
			mac_of(m, i);
			assert_int_equal(vdemux_l2_del_mac(l2, m, (uint16_t)(1 + vm % 4)), 0);
		}
		for (uint32_t i = 0; i < n; i += 3) {
			vdemux_vm_id vm = 1 + i % 64;
			mac_of(m, i);
			assert_int_equal(vdemux_l2_add_mac(l2, vm, m, (uint16_t)(1 + vm % 4)), 0);
		}
	}
	const uint8_t *macs[64];
	uint16_t vids[64];
	vdemux_vm_id out[64];
	uint8_t store[64][6];
	for (uint32_t i = 0; i < n; i++) {
		vdemux_vm_id vm = 1 + i % 64;
		uint16_t vid = (uint16_t)(1 + vm % 4);
		mac_of(m, i);
		assert_int_equal(vdemux_l2_lookup(l2, m, vid), vm);
		assert_int_equal(vdemux_l2_lookup(l2, m, (uint16_t)(vid == 4 ? 1 : vid + 1)), 0);
		mac_of(store[i % 64], i);
		macs[i % 64] = store[i % 64];
		vids[i % 64] = vid;
		if (i % 64 == 63) {
			assert_int_equal(vdemux_l2_lookup_bulk(l2, macs, vids, 64, out), 0);
			for (uint32_t j = 0; j < 64; j++)
				assert_int_equal(out[j], 1 + (i - 63 + j) % 64);
		}
	}
	/* Bulk lookups of misses and group addresses give 0. */
	macs[0] = GRP;
	vids[0] = 1;
	macs[1] = MAC_X;
	vids[1] = 1;
	macs[2] = store[0];
	vids[2] = 4095;
	assert_int_equal(vdemux_l2_lookup_bulk(l2, macs, vids, 3, out), 0);
	assert_int_equal(out[0], 0);
	assert_int_equal(out[1], 0);
	assert_int_equal(out[2], 0);
	assert_int_equal(vdemux_l2_lookup_bulk(l2, NULL, vids, 3, out), -EINVAL);
	vdemux_l2_destroy(l2);
}

/* Allocation hooks: count, and fail on demand. */
struct hooks {
	long live;
	long calls;
	long fail_at; /* fail the fail_at-th call (1-based), 0: never */
};

static void *h_calloc(size_t n, size_t sz, void *p)
{
	struct hooks *h = p;
	h->calls++;
	if (h->fail_at && h->calls == h->fail_at)
		return NULL;
	void *r = calloc(n, sz);
	if (r)
		h->live++;
	return r;
}

static void h_free(void *ptr, void *p)
{
	struct hooks *h = p;
	h->live--;
	free(ptr);
}

/* A fixed configuration script; returns the first error. */
static int script(vdemux_l2 *l2)
{
	int rc;
	uint8_t m[6];
	for (vdemux_vm_id vm = 1; vm <= 12; vm++) {
		if ((rc = vdemux_l2_vlan_join(l2, vm, 10, vm & 1 ? VDEMUX_L2_TAGGED : 0)))
			return rc;
		if ((rc = vdemux_l2_set_allmulti(l2, vm, 10, (int)(vm % 3 == 0))))
			return rc;
		mac_of(m, vm);
		if ((rc = vdemux_l2_add_mac(l2, vm, m, 10)))
			return rc;
		if ((rc = vdemux_l2_add_mcast(l2, vm, GRP, 10)))
			return rc;
		if ((rc = vdemux_l2_add_mcast(l2, vm, GRP2, 10)))
			return rc;
	}
	for (uint32_t i = 100; i < 140; i++) {
		mac_of(m, i);
		if ((rc = vdemux_l2_add_mac(l2, 1 + i % 12, m, 10)))
			return rc;
	}
	return 0;
}

static void test_allocation_hooks_are_used_and_failures_change_nothing(void **state)
{
	(void)state;
	struct hooks h = {0};
	struct vdemux_l2_opts o = VDEMUX_OPTS(
		vdemux_l2_opts, .alloc = {.calloc = h_calloc, .free = h_free, .payload = &h});
	vdemux_l2 *l2 = NULL;
	assert_int_equal(vdemux_l2_create(&l2, &o), 0);
	assert_int_equal(script(l2), 0);
	long total = h.calls;
	assert_true(total > 2);
	vdemux_l2_destroy(l2);
	assert_int_equal(h.live, 0);

	/* Fail each allocation in turn: the call fails with -ENOMEM and the
	 * configuration is what it was before that call. */
	for (long k = 1; k <= total; k++) {
		h = (struct hooks){.fail_at = k};
		l2 = NULL;
		if (vdemux_l2_create(&l2, &o) != 0) {
			assert_true(k <= 2);
			assert_int_equal(h.live, 0);
			continue;
		}
		int rc = script(l2);
		assert_int_equal(rc, -ENOMEM);
		/* What was configured before still works. */
		uint8_t m[6];
		mac_of(m, 1);
		vdemux_vm_id owner = vdemux_l2_lookup(l2, m, 10);
		assert_true(owner == 0 || owner == 1);
		vdemux_l2_destroy(l2);
		assert_int_equal(h.live, 0);
	}
}

/* ------------------------------------------------------------------------ */
/* Concurrency: a writer changes the configuration while a reader classifies. */

struct race {
	vdemux_l2 *l2;
	_Atomic int stop;
	_Atomic long writes;
	_Atomic int bad_line; /* first failing check of the writer (cmocka asserts only on the main thread) */
};

#define W(call)                                                \
	do {                                                   \
		if ((call) != 0 && !atomic_load(&r->bad_line)) \
			atomic_store(&r->bad_line, __LINE__);  \
	} while (0)

/*
 * Toggles, each affecting distinct frames:
 *  T1: VM 3 joins VLAN 10 tagged / untagged (it owns MAC_A, is the default,
 *      is all-multicast and subscribed to GRP): every frame it gets carries
 *      the same tagging in one verdict.
 *  T2: MAC_B on VLAN 10 added to VM 4 / deleted.
 *  T3: VM 5 all-multicast on / off (it is also subscribed to GRP).
 *  T4: 500 extra addresses added / deleted (table growth and tombstones).
 *  T5: VM 6 joins / leaves VLAN 10.
 */
static void *race_writer(void *p)
{
	struct race *r = p;
	uint8_t m[6];
	int round = 1; /* odd rounds switch on, even rounds back off */
	while (!atomic_load(&r->stop)) {
		int on = round & 1;
		W(vdemux_l2_vlan_join(r->l2, 3, 10, on ? VDEMUX_L2_TAGGED : 0));
		if (on)
			W(vdemux_l2_add_mac(r->l2, 4, MAC_B, 10));
		else
			W(vdemux_l2_del_mac(r->l2, MAC_B, 10));
		W(vdemux_l2_set_allmulti(r->l2, 5, 10, on));
		for (uint32_t i = 0; i < 500; i += 50) {
			for (uint32_t j = i; j < i + 50; j++) {
				mac_of(m, 1000 + j);
				if (on)
					W(vdemux_l2_add_mac(r->l2, 7, m, 10));
				else
					W(vdemux_l2_del_mac(r->l2, m, 10));
			}
		}
		if (on)
			W(vdemux_l2_vlan_join(r->l2, 6, 10, 0));
		else
			W(vdemux_l2_vlan_leave(r->l2, 6, 10));
		round++;
		atomic_fetch_add(&r->writes, 1);
	}
	/* Leave the configuration in the "off" state. */
	if (round % 2 == 0) {
		W(vdemux_l2_vlan_join(r->l2, 3, 10, 0));
		W(vdemux_l2_del_mac(r->l2, MAC_B, 10));
		W(vdemux_l2_set_allmulti(r->l2, 5, 10, 0));
		for (uint32_t j = 0; j < 500; j++) {
			mac_of(m, 1000 + j);
			W(vdemux_l2_del_mac(r->l2, m, 10));
		}
		W(vdemux_l2_vlan_leave(r->l2, 6, 10));
	}
	return NULL;
}

static int find(const struct vdemux_verdict *v, vdemux_vm_id vm)
{
	int at = -1;
	for (unsigned i = 0; i < v->n; i++) {
		if (v->dests[i].vm == vm) {
			if (at >= 0)
				fail_msg("vm %u named twice", vm);
			at = (int)i;
		}
	}
	return at;
}

/* VM 3's tagging is consistent: STRIP if untagged, KEEP if tagged. */
static int vm3_mode(const struct vdemux_verdict *v)
{
	int i = find(v, 3);
	assert_true(i >= 0);
	int a = v->dests[i].action;
	assert_true(a == STRIP || a == KEEP);
	return a;
}

static void test_config_changes_while_classifying_give_valid_verdicts(void **state)
{
	(void)state;
	struct race r = {.l2 = mk_l2(0, 0)};
	vdemux_l2 *l2 = r.l2;
	for (vdemux_vm_id vm = 1; vm <= 7; vm++)
		if (vm != 6)
			assert_int_equal(vdemux_l2_vlan_join(l2, vm, 10, 0), 0);
	assert_int_equal(vdemux_l2_add_mac(l2, 3, MAC_A, 10), 0);
	assert_int_equal(vdemux_l2_set_default(l2, 10, 3), 0);
	assert_int_equal(vdemux_l2_set_allmulti(l2, 3, 10, 1), 0);
	assert_int_equal(vdemux_l2_add_mcast(l2, 3, GRP, 10), 0);
	assert_int_equal(vdemux_l2_add_mcast(l2, 5, GRP, 10), 0);
	assert_int_equal(vdemux_l2_add_mcast(l2, 1, GRP, 10), 0);
	uint8_t fixed[6];
	mac_of(fixed, 7);
	assert_int_equal(vdemux_l2_add_mac(l2, 2, fixed, 10), 0);

	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, race_writer, &r), 0);
	struct frame fa = TAGGED(MAC_A, Q, 10), fb = TAGGED(MAC_B, Q, 10), fg = TAGGED(GRP, Q, 10);
	struct frame fc = TAGGED(BCAST, Q, 10), ff = TAGGED(fixed, Q, 10);
	struct verdict vr;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	long iters = 0;
	for (;;) {
		struct vdemux_verdict *v;
		/* Unicast to VM 3: exactly VM 3, one tagging. */
		v = classify(l2, &fa, &vr);
		assert_int_equal(v->n, 1);
		vm3_mode(v);
		/* MAC_B: VM 4 (entry present) or the default VM 3. */
		v = classify(l2, &fb, &vr);
		assert_int_equal(v->n, 1);
		if (v->dests[0].vm != 4) {
			assert_int_equal(v->dests[0].vm, 3);
			vm3_mode(v);
		} else {
			assert_int_equal(v->dests[0].action, STRIP);
		}
		/* GRP: VMs 1, 3 and 5 (subscribers; 3 and maybe 5 all-multicast), once each. */
		v = classify(l2, &fg, &vr);
		assert_int_equal(v->n, 3);
		assert_true(find(v, 1) >= 0 && find(v, 5) >= 0);
		vm3_mode(v);
		/* Broadcast: VMs 1..5, 7 and maybe 6, VM 3 with one tagging. */
		v = classify(l2, &fc, &vr);
		assert_true(v->n == 6 || v->n == 7);
		assert_true((v->n == 7) == (find(v, 6) >= 0));
		for (vdemux_vm_id vm = 1; vm <= 7; vm++)
			if (vm != 6)
				assert_true(find(v, vm) >= 0);
		vm3_mode(v);
		/* An address never touched is always found, through every rebuild. */
		v = classify(l2, &ff, &vr);
		assert_int_equal(v->n, 1);
		assert_int_equal(v->dests[0].vm, 2);
		assert_int_equal(vdemux_l2_lookup(l2, fixed, 10), 2);
		iters++;
		clock_gettime(CLOCK_MONOTONIC, &t1);
		double el = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
		if ((el > 1.5 && atomic_load(&r.writes) >= 20) || el > 20)
			break;
	}
	atomic_store(&r.stop, 1);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(atomic_load(&r.bad_line), 0);
	assert_true(atomic_load(&r.writes) >= 20);
	assert_true(iters > 100);
	/* Back to the starting configuration. */
	EXPECT(l2, TAGGED(MAC_B, Q, 10), {3, STRIP, 0, 0});
	vdemux_l2_destroy(l2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_rejects_bad_options),
		cmocka_unit_test(test_classifier_interface_is_the_l2_classify),
		cmocka_unit_test(test_short_frame_is_malformed),
		cmocka_unit_test(test_truncated_uplink_tag_is_malformed),
		cmocka_unit_test(test_invalid_source_is_dropped),
		cmocka_unit_test(test_unicast_goes_to_its_owner_only),
		cmocka_unit_test(test_tagged_member_gets_the_uplink_tag),
		cmocka_unit_test(test_untagged_member_gets_the_tag_stripped),
		cmocka_unit_test(test_untagged_frame_belongs_to_the_native_vlan),
		cmocka_unit_test(test_priority_tagged_frame_belongs_to_the_native_vlan),
		cmocka_unit_test(test_other_protocol_tag_is_payload_8021q_uplink),
		cmocka_unit_test(test_8021ad_uplink_uses_the_provider_tag),
		cmocka_unit_test(test_broadcast_reaches_every_member_of_the_vlan),
		cmocka_unit_test(test_multicast_goes_to_subscribers_and_allmulti),
		cmocka_unit_test(test_link_local_groups_are_never_forwarded_8021q),
		cmocka_unit_test(test_link_local_groups_of_a_provider_bridge_8021ad),
		cmocka_unit_test(test_unknown_unicast_goes_to_the_default_vm),
		cmocka_unit_test(test_vlan_without_members_drops_everything),
		cmocka_unit_test(test_config_calls_validate_their_arguments),
		cmocka_unit_test(test_max_entries_bounds_addresses_and_groups),
		cmocka_unit_test(test_leave_drops_addresses_subscriptions_and_default),
		cmocka_unit_test(test_joining_again_changes_tagging_everywhere),
		cmocka_unit_test(test_remove_vm_forgets_everything),
		cmocka_unit_test(test_verdict_never_exceeds_its_capacity),
		cmocka_unit_test(test_many_addresses_survive_growth_and_churn),
		cmocka_unit_test(test_allocation_hooks_are_used_and_failures_change_nothing),
		cmocka_unit_test(test_config_changes_while_classifying_give_valid_verdicts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

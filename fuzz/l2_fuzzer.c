/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the L2 frame parser and classifier.
 *
 * Input: byte 0 picks the uplink (bit 0: 802.1Q or 802.1ad) and the verdict
 * capacity (bits 1-3); the rest is the frame. Both classifiers hold the same
 * fixed configuration (several VMs, tagged and untagged memberships, unicast
 * addresses, multicast subscriptions, all-multicast, default VMs). Every
 * verdict is checked against a straightforward model of the rules written
 * independently below (lists scanned one by one, no hashing): any difference,
 * a VM named twice, or more destinations than the capacity aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vdemux/l2.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct m_member {
	vdemux_vm_id vm;
	uint16_t vid;
	int tagged;
	int allmulti;
};

struct m_addr {
	vdemux_vm_id vm;
	uint8_t mac[6];
	uint16_t vid;
};

struct m_default {
	uint16_t vid;
	vdemux_vm_id vm;
};

static const struct m_member members[] = {
	{1, 1, 0, 0},  {2, 10, 1, 1},	{2, 1, 1, 0}, {3, 10, 0, 0},
	{4, 20, 1, 0}, {5, 4094, 0, 1}, {6, 1, 0, 1}, {7, 20, 0, 0},
};

static const struct m_addr unicast[] = {
	{1, {0x02, 0, 0, 0, 0, 0x01}, 1},
	{2, {0x02, 0, 0, 0, 0, 0x02}, 10},
	{2, {0x02, 0, 0, 0, 0, 0x02}, 1},
	{3, {0x02, 0, 0, 0, 0, 0x03}, 10},
	{4, {0x02, 0, 0, 0, 0, 0x04}, 20},
	{5, {0x02, 0, 0, 0, 0, 0x05}, 4094},
	{6, {0x52, 0x54, 0x00, 0x12, 0x34, 0x56}, 1},
	{7, {0x02, 0, 0, 0, 0, 0x07}, 20},
};

static const struct m_addr groups[] = {
	{1, {0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb}, 1},
	{6, {0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb}, 1}, /* also all-multicast */
	{3, {0x33, 0x33, 0x00, 0x00, 0x00, 0x01}, 10},
	{2, {0x33, 0x33, 0x00, 0x00, 0x00, 0x01}, 10}, /* also all-multicast */
	{4, {0x01, 0x80, 0xc2, 0x00, 0x00, 0x0d}, 20}, /* link-local on 802.1Q only */
	{7, {0x01, 0x80, 0xc2, 0x00, 0x00, 0x03}, 20}, /* link-local on both */
	{4, {0x33, 0x33, 0xff, 0x00, 0x00, 0x04}, 20},
	{7, {0x33, 0x33, 0xff, 0x00, 0x00, 0x04}, 20},
};

static const struct m_default defaults[] = {{10, 3}, {20, 7}};

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define CAP_MAX 16

static vdemux_l2 *l2s[2];

static void die(const char *what)
{
	fprintf(stderr, "l2_fuzzer: %s\n", what);
	abort();
}

static void setup(void)
{
	for (int i = 0; i < 2; i++) {
		struct vdemux_l2_opts o = VDEMUX_OPTS(
			vdemux_l2_opts, .vlan_proto = i ? VDEMUX_TPID_8021AD : VDEMUX_TPID_8021Q);
		if (vdemux_l2_create(&l2s[i], &o))
			die("create");
		vdemux_l2 *l2 = l2s[i];
		for (size_t k = 0; k < N(members); k++) {
			const struct m_member *m = &members[k];
			if (vdemux_l2_vlan_join(l2, m->vm, m->vid, m->tagged ? VDEMUX_L2_TAGGED : 0) ||
			    vdemux_l2_set_allmulti(l2, m->vm, m->vid, m->allmulti))
				die("join");
		}
		for (size_t k = 0; k < N(unicast); k++)
			if (vdemux_l2_add_mac(l2, unicast[k].vm, unicast[k].mac, unicast[k].vid))
				die("add_mac");
		for (size_t k = 0; k < N(groups); k++)
			if (vdemux_l2_add_mcast(l2, groups[k].vm, groups[k].mac, groups[k].vid))
				die("add_mcast");
		for (size_t k = 0; k < N(defaults); k++)
			if (vdemux_l2_set_default(l2, defaults[k].vid, defaults[k].vm))
				die("set_default");
	}
}

/* ---- the model ---- */

struct m_verdict {
	struct vdemux_dest d[N(members)];
	unsigned n;
	int drop;
};

static const struct m_member *member_of(vdemux_vm_id vm, uint16_t vid)
{
	for (size_t k = 0; k < N(members); k++)
		if (members[k].vm == vm && members[k].vid == vid)
			return &members[k];
	return NULL;
}

static void model_add(struct m_verdict *r, const struct m_member *m, uint16_t proto, int frame_tagged,
		      uint16_t tci, uint16_t vid)
{
	for (unsigned i = 0; i < r->n; i++)
		if (r->d[i].vm == m->vm)
			return;
	struct vdemux_dest d = {.vm = m->vm};
	if (!m->tagged) {
		d.action = frame_tagged ? VDEMUX_VLAN_STRIP : VDEMUX_VLAN_KEEP;
	} else if (!frame_tagged) {
		d.action = VDEMUX_VLAN_PUSH;
		d.tpid = proto;
		d.tci = vid;
	} else if ((tci & 0xfff) == 0) {
		d.action = VDEMUX_VLAN_SET;
		d.tpid = proto;
		d.tci = (uint16_t)((tci & 0xf000) | vid);
	} else {
		d.action = VDEMUX_VLAN_KEEP;
	}
	r->d[r->n++] = d;
}

static void model(uint16_t proto, const uint8_t *f, size_t len, struct m_verdict *r)
{
	static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	static const uint8_t zero[6] = {0};
	r->n = 0;
	r->drop = VDEMUX_DROP_NONE;
	if (len < 14) {
		r->drop = VDEMUX_DROP_MALFORMED;
		return;
	}
	int tagged = 0;
	uint16_t tci = 0, vid = 1; /* native VLAN: the default, 1 */
	if (f[12] == (proto >> 8) && f[13] == (proto & 0xff)) {
		if (len < 18) {
			r->drop = VDEMUX_DROP_MALFORMED;
			return;
		}
		tagged = 1;
		tci = (uint16_t)(f[14] << 8 | f[15]);
		if (tci & 0xfff)
			vid = tci & 0xfff;
	}
	const uint8_t *dst = f, *src = f + 6;
	if ((src[0] & 1) || !memcmp(src, zero, 6)) {
		r->drop = VDEMUX_DROP_INVALID_SRC;
		return;
	}
	if ((dst[0] & 1) && !memcmp(dst, "\x01\x80\xc2\x00\x00", 5)) {
		uint8_t low = dst[5];
		int ll = proto == VDEMUX_TPID_8021Q ? low <= 0x0f
						    : ((low >= 1 && low <= 0x0a) || low == 0x0e);
		if (ll) {
			r->drop = VDEMUX_DROP_LINK_LOCAL;
			return;
		}
	}
	int any = 0;
	for (size_t k = 0; k < N(members); k++)
		any |= members[k].vid == vid;
	if (!memcmp(dst, bcast, 6)) {
		for (size_t k = 0; k < N(members); k++)
			if (members[k].vid == vid)
				model_add(r, &members[k], proto, tagged, tci, vid);
	} else if (dst[0] & 1) {
		for (size_t k = 0; k < N(groups); k++)
			if (groups[k].vid == vid && !memcmp(groups[k].mac, dst, 6))
				model_add(r, member_of(groups[k].vm, vid), proto, tagged, tci, vid);
		for (size_t k = 0; k < N(members); k++)
			if (members[k].vid == vid && members[k].allmulti)
				model_add(r, &members[k], proto, tagged, tci, vid);
		if (!r->n)
			r->drop = any ? VDEMUX_DROP_NO_SUBSCRIBER : VDEMUX_DROP_NO_VLAN_MEMBER;
		return;
	} else {
		for (size_t k = 0; k < N(unicast); k++)
			if (unicast[k].vid == vid && !memcmp(unicast[k].mac, dst, 6))
				model_add(r, member_of(unicast[k].vm, vid), proto, tagged, tci, vid);
		if (!r->n)
			for (size_t k = 0; k < N(defaults); k++)
				if (defaults[k].vid == vid)
					model_add(r, member_of(defaults[k].vm, vid), proto, tagged, tci,
						  vid);
		if (!r->n)
			r->drop = any ? VDEMUX_DROP_UNKNOWN_UNICAST : VDEMUX_DROP_NO_VLAN_MEMBER;
		return;
	}
	if (!r->n)
		r->drop = VDEMUX_DROP_NO_VLAN_MEMBER;
}

/* ---- the check ---- */

static int same_dest(const struct vdemux_dest *a, const struct vdemux_dest *b)
{
	if (a->vm != b->vm || a->action != b->action)
		return 0;
	if (a->action == VDEMUX_VLAN_PUSH || a->action == VDEMUX_VLAN_SET)
		return a->tpid == b->tpid && a->tci == b->tci;
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!l2s[0])
		setup();
	if (size < 1)
		return 0;
	int which = data[0] & 1;
	unsigned cap = (data[0] >> 1) & 7; /* 0..7; 7 means CAP_MAX */
	if (cap == 7)
		cap = CAP_MAX;
	const uint8_t *f = data + 1;
	size_t len = size - 1;
	if (len > UINT32_MAX)
		return 0;
	/* The frame in a buffer of its own size, so that ASan sees any overread. */
	uint8_t *copy = malloc(len ? len : 1);
	if (!copy)
		die("malloc");
	memcpy(copy, f, len);

	struct vdemux_dest dests[CAP_MAX + 1];
	memset(dests, 0xee, sizeof(dests));
	struct vdemux_verdict v = {.dests = dests, .cap = cap};
	if (vdemux_l2_classify(l2s[which], copy, (uint32_t)len, &v) != 0)
		die("classify failed");
	free(copy);
	if (v.n > cap || dests[cap].vm != 0xeeeeeeeeu)
		die("more destinations than the capacity");

	struct m_verdict want;
	model(which ? VDEMUX_TPID_8021AD : VDEMUX_TPID_8021Q, f, len, &want);
	unsigned expect_n = want.n < cap ? want.n : cap;
	if (v.n != expect_n)
		die("number of destinations differs from the model");
	if (v.n == 0) {
		int reason = want.n ? VDEMUX_DROP_NO_DEST : want.drop;
		if (v.drop_reason != reason)
			die("drop reason differs from the model");
		return 0;
	}
	for (unsigned i = 0; i < v.n; i++) {
		if (dests[i].pad || dests[i].pad2)
			die("padding not zero");
		unsigned hits = 0, match = 0;
		for (unsigned j = 0; j < v.n; j++)
			hits += dests[j].vm == dests[i].vm;
		for (unsigned j = 0; j < want.n; j++)
			match += same_dest(&dests[i], &want.d[j]);
		if (hits != 1)
			die("a VM named twice");
		if (match != 1)
			die("a destination the model does not have");
	}
	return 0;
}

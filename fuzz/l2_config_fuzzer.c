/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: sequences of L2 configuration calls.
 *
 * Each pair of input bytes is one call (join, leave, add/del MAC, add/del
 * multicast, all-multicast, default, remove VM) on a small universe: 6 VMs,
 * 4 VLANs, 6 unicast addresses, 3 groups, max_entries 7 (so -ENOSPC is
 * reached). A plain model keeps the same configuration; after every call the
 * return code, every lookup and the verdicts of broadcast, multicast and
 * unicast frames on every VLAN are compared with it. This drives the table's
 * growth, tombstones and rebuilds and the member and subscriber arrays
 * through any order of changes.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vdemux/l2.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NVM 6
#define NVID 4
#define NMAC 6
#define NGRP 3
#define MAX_ENTRIES 7

static const uint16_t vids[NVID] = {1, 2, 300, 4094};

struct model {
	int member[NVM + 1][NVID]; /* 0: no, 1: untagged, 2: tagged */
	int allmulti[NVM + 1][NVID];
	vdemux_vm_id mac_owner[NMAC][NVID];
	int sub[NGRP][NVID][NVM + 1];
	vdemux_vm_id dflt[NVID];
};

static void die(const char *what, int step)
{
	fprintf(stderr, "l2_config_fuzzer: step %d: %s\n", step, what);
	abort();
}

static void mac_of(uint8_t m[6], unsigned i)
{
	static const uint8_t base[6] = {0x02, 0x00, 0x5e, 0x10, 0x00, 0x00};
	memcpy(m, base, 6);
	m[5] = (uint8_t)(i * 37 + 1); /* spread over the table */
	m[4] = (uint8_t)i;
}

static void grp_of(uint8_t m[6], unsigned i)
{
	static const uint8_t base[6] = {0x01, 0x00, 0x5e, 0x00, 0x01, 0x00};
	memcpy(m, base, 6);
	m[5] = (uint8_t)i;
}

static unsigned entries(const struct model *m)
{
	unsigned n = 0;
	for (int a = 0; a < NMAC; a++)
		for (int v = 0; v < NVID; v++)
			n += m->mac_owner[a][v] != 0;
	for (int g = 0; g < NGRP; g++)
		for (int v = 0; v < NVID; v++) {
			int any = 0;
			for (int vm = 1; vm <= NVM; vm++)
				any |= m->sub[g][v][vm];
			n += any;
		}
	return n;
}

static void forget(struct model *m, int vm, int v)
{
	m->member[vm][v] = 0;
	m->allmulti[vm][v] = 0;
	if (m->dflt[v] == (vdemux_vm_id)vm)
		m->dflt[v] = 0;
	for (int a = 0; a < NMAC; a++)
		if (m->mac_owner[a][v] == (vdemux_vm_id)vm)
			m->mac_owner[a][v] = 0;
	for (int g = 0; g < NGRP; g++)
		m->sub[g][v][vm] = 0;
}

/* Apply one call to the model; returns what the library must return. */
static int model_call(struct model *m, unsigned op, int vm, int v, unsigned obj, int flag)
{
	switch (op) {
	case 0: /* join */ m->member[vm][v] = flag ? 2 : 1; return 0;
	case 1: /* leave */
		if (!m->member[vm][v])
			return -ENOENT;
		forget(m, vm, v);
		return 0;
	case 2: { /* add_mac */
		unsigned a = obj % NMAC;
		if (!m->member[vm][v])
			return -ENOENT;
		if (m->mac_owner[a][v])
			return m->mac_owner[a][v] == (vdemux_vm_id)vm ? 0 : -EEXIST;
		if (entries(m) >= MAX_ENTRIES)
			return -ENOSPC;
		m->mac_owner[a][v] = (vdemux_vm_id)vm;
		return 0;
	}
	case 3: { /* del_mac */
		unsigned a = obj % NMAC;
		if (!m->mac_owner[a][v])
			return -ENOENT;
		m->mac_owner[a][v] = 0;
		return 0;
	}
	case 4: { /* add_mcast */
		unsigned g = obj % NGRP;
		if (!m->member[vm][v])
			return -ENOENT;
		int any = 0;
		for (int k = 1; k <= NVM; k++)
			any |= m->sub[g][v][k];
		if (!any && entries(m) >= MAX_ENTRIES)
			return -ENOSPC;
		m->sub[g][v][vm] = 1;
		return 0;
	}
	case 5: { /* del_mcast */
		unsigned g = obj % NGRP;
		if (!m->sub[g][v][vm])
			return -ENOENT;
		m->sub[g][v][vm] = 0;
		return 0;
	}
	case 6: /* allmulti */
		if (!m->member[vm][v])
			return -ENOENT;
		m->allmulti[vm][v] = flag;
		return 0;
	case 7: /* default (vm 0 when flag: clear) */
		if (flag) {
			m->dflt[v] = 0;
			return 0;
		}
		if (!m->member[vm][v])
			return -ENOENT;
		m->dflt[v] = (vdemux_vm_id)vm;
		return 0;
	default: /* remove VM */
		for (int k = 0; k < NVID; k++)
			forget(m, vm, k);
		return 0;
	}
}

static int lib_call(vdemux_l2 *l2, unsigned op, int vm, int v, unsigned obj, int flag)
{
	uint8_t mac[6];
	uint16_t vid = vids[v];
	switch (op) {
	case 0: return vdemux_l2_vlan_join(l2, (vdemux_vm_id)vm, vid, flag ? VDEMUX_L2_TAGGED : 0);
	case 1: return vdemux_l2_vlan_leave(l2, (vdemux_vm_id)vm, vid);
	case 2: mac_of(mac, obj % NMAC); return vdemux_l2_add_mac(l2, (vdemux_vm_id)vm, mac, vid);
	case 3: mac_of(mac, obj % NMAC); return vdemux_l2_del_mac(l2, mac, vid);
	case 4: grp_of(mac, obj % NGRP); return vdemux_l2_add_mcast(l2, (vdemux_vm_id)vm, mac, vid);
	case 5: grp_of(mac, obj % NGRP); return vdemux_l2_del_mcast(l2, (vdemux_vm_id)vm, mac, vid);
	case 6: return vdemux_l2_set_allmulti(l2, (vdemux_vm_id)vm, vid, flag);
	case 7: return vdemux_l2_set_default(l2, vid, flag ? 0 : (vdemux_vm_id)vm);
	default: vdemux_l2_remove_vm(l2, (vdemux_vm_id)vm); return 0;
	}
}

/* The set of VMs (bit vm) and their tagging (bit vm of *tagged) the model
 * says a frame for dst-kind on VLAN v reaches; returns the drop reason or 0. */
static int model_verdict(const struct model *m, int v, int kind, unsigned obj, unsigned *set,
			 unsigned *tagged)
{
	int any = 0;
	*set = *tagged = 0;
	for (int vm = 1; vm <= NVM; vm++)
		any |= m->member[vm][v] != 0;
	if (!any)
		return VDEMUX_DROP_NO_VLAN_MEMBER;
	for (int vm = 1; vm <= NVM; vm++) {
		int in = 0;
		if (!m->member[vm][v])
			continue;
		if (kind == 0)
			in = 1; /* broadcast */
		else if (kind == 1)
			in = m->sub[obj][v][vm] || m->allmulti[vm][v];
		else if (kind == 2)
			in = m->mac_owner[obj][v] == (vdemux_vm_id)vm ||
			     (!m->mac_owner[obj][v] && m->dflt[v] == (vdemux_vm_id)vm);
		if (in) {
			*set |= 1u << vm;
			if (m->member[vm][v] == 2)
				*tagged |= 1u << vm;
		}
	}
	if (*set)
		return 0;
	return kind == 1 ? VDEMUX_DROP_NO_SUBSCRIBER : VDEMUX_DROP_UNKNOWN_UNICAST;
}

static void check_all(vdemux_l2 *l2, const struct model *m, int step)
{
	uint8_t mac[6];
	for (int v = 0; v < NVID; v++) {
		for (unsigned a = 0; a < NMAC; a++) {
			mac_of(mac, a);
			if (vdemux_l2_lookup(l2, mac, vids[v]) != m->mac_owner[a][v])
				die("lookup differs from the model", step);
		}
		for (int kind = 0; kind < 3; kind++) {
			unsigned nobj = kind == 0 ? 1 : kind == 1 ? NGRP : NMAC;
			for (unsigned obj = 0; obj < nobj; obj++) {
				uint8_t f[64] = {0};
				if (kind == 0)
					memset(f, 0xff, 6);
				else if (kind == 1)
					grp_of(f, obj);
				else
					mac_of(f, obj);
				f[6] = 0x02;
				f[11] = 0x99;
				f[12] = 0x81;
				f[14] = (uint8_t)(vids[v] >> 8);
				f[15] = (uint8_t)vids[v];
				struct vdemux_dest d[NVM + 1];
				struct vdemux_verdict vd = {.dests = d, .cap = NVM + 1};
				if (vdemux_l2_classify(l2, f, sizeof(f), &vd))
					die("classify failed", step);
				unsigned set, tagged, got = 0, got_tagged = 0;
				int reason = model_verdict(m, v, kind, obj, &set, &tagged);
				for (unsigned i = 0; i < vd.n; i++) {
					if (d[i].vm < 1 || d[i].vm > NVM || (got & (1u << d[i].vm)))
						die("unknown or repeated VM", step);
					got |= 1u << d[i].vm;
					if (d[i].action == VDEMUX_VLAN_KEEP)
						got_tagged |= 1u << d[i].vm;
					else if (d[i].action != VDEMUX_VLAN_STRIP)
						die("unexpected action", step);
				}
				if (got != set || got_tagged != tagged)
					die("verdict differs from the model", step);
				if (!vd.n && vd.drop_reason != reason)
					die("drop reason differs from the model", step);
			}
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	vdemux_l2 *l2;
	struct vdemux_l2_opts o = VDEMUX_OPTS(vdemux_l2_opts, .max_entries = MAX_ENTRIES);
	if (vdemux_l2_create(&l2, &o))
		die("create", 0);
	struct model *m = calloc(1, sizeof(*m));
	if (!m)
		die("calloc", 0);
	for (size_t i = 0; i + 1 < size && i < 2 * 256; i += 2) {
		unsigned op = (data[i] & 15u) % 9;
		int vm = 1 + (data[i] >> 4) % NVM;
		int v = data[i + 1] & 3;
		unsigned obj = (data[i + 1] >> 2) & 7;
		int flag = (data[i + 1] >> 5) & 1;
		int want = model_call(m, op, vm, v, obj, flag);
		int got = lib_call(l2, op, vm, v, obj, flag);
		if (got != want) {
			fprintf(stderr, "op %u vm %d vid %u obj %u flag %d: got %d, model %d\n", op, vm,
				vids[v], obj, flag, got, want);
			die("return code differs from the model", (int)(i / 2));
		}
		check_all(l2, m, (int)(i / 2));
	}
	free(m);
	vdemux_l2_destroy(l2);
	return 0;
}

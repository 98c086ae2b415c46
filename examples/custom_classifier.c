/* SPDX-License-Identifier: MIT */
/* A VMM's own classifier plugged in instead of the built-in L2 one: frames
 * go to VMs by IPv4 destination address (IPv4 packets) or by target address
 * (ARP), whatever their MAC addresses. It runs on the simulated backend:
 * three VMs post buffers, frames arrive, each VM reads what it received
 * through its own translation table. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vdemux/sys/classifier.h>
#include <vdemux/vdemux.h>

#define NVMS 3
#define WINDOW 8

/* The classifier: the interface first, then its own state. */
struct ip_classifier {
	struct vdemux_classifier base;
	struct route {
		uint8_t ip[4];
		vdemux_vm_id vm;
	} routes[NVMS];
	unsigned nroutes;
};

static int ip_classify(struct vdemux_classifier *cls, const uint8_t *f, uint32_t len,
		       struct vdemux_verdict *v)
{
	struct ip_classifier *c = (struct ip_classifier *)cls;
	const uint8_t *target = NULL;
	uint32_t l3 = 14;

	v->n = 0;
	v->drop_reason = VDEMUX_DROP_NO_DEST;
	if (len < 14)
		return 0;
	uint16_t type = (uint16_t)(f[12] << 8 | f[13]);
	if (type == 0x8100 && len >= 18) { /* look through one 802.1Q tag */
		type = (uint16_t)(f[16] << 8 | f[17]);
		l3 = 18;
	}
	if (type == 0x0800 && len >= l3 + 20)
		target = f + l3 + 16; /* IPv4 destination */
	else if (type == 0x0806 && len >= l3 + 28)
		target = f + l3 + 24; /* ARP target protocol address */
	if (!target)
		return 0;
	for (unsigned i = 0; i < c->nroutes; i++) {
		if (!memcmp(c->routes[i].ip, target, 4) && v->cap > 0) {
			v->dests[0] = (struct vdemux_dest){.vm = c->routes[i].vm,
							   .action = VDEMUX_VLAN_KEEP};
			v->n = 1;
			return 0;
		}
	}
	return 0;
}

static void ip_vm_removed(struct vdemux_classifier *cls, vdemux_vm_id vm)
{
	struct ip_classifier *c = (struct ip_classifier *)cls;
	for (unsigned i = 0; i < c->nroutes; i++)
		if (c->routes[i].vm == vm)
			c->routes[i--] = c->routes[--c->nroutes];
}

static struct vdemux_backend *sim;

static void check(int rc, const char *what)
{
	if (rc < 0) {
		fprintf(stderr, "%s: %s\n", what, strerror(-rc));
		exit(1);
	}
}

/* An IPv4/UDP packet (checksums left zero: nobody checks them here). */
static uint32_t ipv4_frame(uint8_t *f, const uint8_t dst_ip[4], const char *text)
{
	static const uint8_t dst_mac[6] = {0x02, 0xaa, 0xbb,
					   0xcc, 0xdd, 0x01}; /* the VMM's router MAC */
	static const uint8_t src_mac[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0xfe};
	size_t tl = strlen(text);
	memset(f, 0, 64 + tl);
	memcpy(f, dst_mac, 6);
	memcpy(f + 6, src_mac, 6);
	f[12] = 0x08;
	f[13] = 0x00;
	uint8_t *ip = f + 14;
	ip[0] = 0x45;
	ip[2] = (uint8_t)((28 + tl) >> 8);
	ip[3] = (uint8_t)(28 + tl);
	ip[8] = 64;
	ip[9] = 17;
	memcpy(ip + 12, (uint8_t[4]){198, 51, 100, 7}, 4);
	memcpy(ip + 16, dst_ip, 4);
	memcpy(f + 14 + 28, text, tl);
	uint32_t len = (uint32_t)(14 + 28 + tl);
	return len < 60 ? 60 : len;
}

int main(void)
{
	static const char *names[NVMS] = {"vm-a", "vm-b", "vm-c"};
	static const uint8_t ips[NVMS][4] = {{10, 0, 0, 1}, {10, 0, 0, 2}, {10, 0, 0, 3}};
	struct vdemux_engine_opts eo = VDEMUX_OPTS(vdemux_engine_opts, .npages = 64);
	struct ip_classifier cls = {.base = VDEMUX_CLASSIFIER_INIT};
	vdemux_vm_id vms[NVMS];
	vdemux_engine *eng;

	cls.base.name = "ipv4-destination";
	cls.base.classify = ip_classify;
	cls.base.vm_removed = ip_vm_removed;

	check(vdemux_engine_create(&eng, &eo), "engine");
	check(vdemux_sim_create(&sim, NULL), "sim backend");
	check(vdemux_engine_add_backend(eng, sim), "add backend");
	check(vdemux_engine_set_classifier(eng, &cls.base), "set classifier");

	for (int i = 0; i < NVMS; i++) {
		struct vdemux_vm_opts vo = VDEMUX_OPTS(
			vdemux_vm_opts, .rx_base = 0x200000, .rx_pages = WINDOW,
			.flags = VDEMUX_VM_F_UNPOPULATED, .backends = &sim, .n_backends = 1);
		uint64_t gpas[WINDOW];
		check(vdemux_vm_add(eng, &vms[i], &vo), "add VM");
		for (int k = 0; k < WINDOW; k++)
			gpas[k] = 0x200000 + (uint64_t)k * VDEMUX_PAGE_SIZE;
		check(vdemux_vm_post_rx(eng, vms[i], gpas, WINDOW), "post");
		memcpy(cls.routes[cls.nroutes].ip, ips[i], 4);
		cls.routes[cls.nroutes++].vm = vms[i];
		printf("%s: id %u, IPv4 %u.%u.%u.%u\n", names[i], vms[i], ips[i][0], ips[i][1],
		       ips[i][2], ips[i][3]);
	}

	static uint8_t f[4][128];
	struct vdemux_frame fr[4] = {
		{.data = f[0], .len = ipv4_frame(f[0], ips[1], "to 10.0.0.2")},
		{.data = f[1], .len = ipv4_frame(f[1], ips[0], "to 10.0.0.1")},
		{.data = f[2], .len = ipv4_frame(f[2], ips[2], "to 10.0.0.3")},
		{.data = f[3], .len = ipv4_frame(f[3], (uint8_t[4]){10, 0, 0, 9}, "to nobody")},
	};
	int taken = vdemux_rx_burst(eng, fr, 4);
	check(taken, "rx burst");
	printf("burst: %d frames taken\n", taken);

	for (int i = 0; i < NVMS; i++) {
		struct vdemux_completion c[WINDOW];
		uint8_t buf[VDEMUX_PAGE_SIZE];
		int n = vdemux_vm_poll(eng, vms[i], c, WINDOW);
		check(n, "poll");
		for (int k = 0; k < n; k++) {
			check(vdemux_sim_read(sim, vms[i], c[k].gpa, buf, c[k].len), "guest read");
			printf("  %s read %u bytes: \"%s\"\n", names[i], c[k].len,
			       (const char *)buf + 14 + 28);
			check(vdemux_vm_post_rx(eng, vms[i], &c[k].gpa, 1), "re-post");
		}
	}

	struct vdemux_engine_stats st;
	check(vdemux_engine_stats(eng, &st, sizeof(st)), "stats");
	printf("delivered %llu, dropped (no destination) %llu\n", (unsigned long long)st.delivered,
	       (unsigned long long)st.drops[VDEMUX_DROP_NO_DEST]);
	check(vdemux_vm_remove(eng, vms[0]), "remove");
	printf("after removing vm-a the classifier has %u routes\n", cls.nroutes);
	vdemux_engine_destroy(eng);
	return 0;
}

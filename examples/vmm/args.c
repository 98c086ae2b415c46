/* SPDX-License-Identifier: MIT */
/*
 * The command line:
 *
 *   vmm --tap NAME [--verbose] [--io-threads]
 *       --guest name=a,kernel=K,initrd=I,mem=256M,mac=M,rx=big|mergeable|auto[,mtu=N][,cpus=N][,queues=N][,huge=on|off][,cmdline=...] ...
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm.h"

#define DEFAULT_CMDLINE \
	"console=ttyS0 reboot=k panic=-1 8250.nr_uarts=1 i8042.nokbd i8042.noaux i8042.nopnp pci=conf1,lastbus=0 no_timer_check quiet"

static int parse_mac(const char *s, uint8_t mac[6])
{
	unsigned b[6];
	if (sscanf(s, "%x:%x:%x:%x:%x:%x", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5]) != 6)
		return -EINVAL;
	for (int i = 0; i < 6; i++) {
		if (b[i] > 255)
			return -EINVAL;
		mac[i] = (uint8_t)b[i];
	}
	return (mac[0] & 1) ? -EINVAL : 0;
}

static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 0);
	if (*end == 'M' || *end == 'm')
		v <<= 20, end++;
	else if (*end == 'G' || *end == 'g')
		v <<= 30, end++;
	if (*end || v < (64ull << 20) || v > (2ull << 30) || (v & ((2ull << 20) - 1)))
		return -EINVAL;
	*out = v;
	return 0;
}

/* A decimal number in [lo, hi] into *out: 0, or -EINVAL (out unchanged). */
static int parse_count(const char *s, unsigned long lo, unsigned long hi, unsigned *out)
{
	char *end;
	unsigned long n = strtoul(s, &end, 10);
	if (!*s || *end || n < lo || n > hi)
		return -EINVAL;
	*out = (unsigned)n;
	return 0;
}

/* One key=value of a guest spec (not cmdline). */
static int parse_guest_key(struct guest_config *c, const char *key, char *val, bool *have_mac)
{
	if (!strcmp(key, "name")) {
		snprintf(c->name, sizeof c->name, "%s", val);
	} else if (!strcmp(key, "kernel")) {
		c->kernel = val;
	} else if (!strcmp(key, "initrd")) {
		c->initrd = val;
	} else if (!strcmp(key, "mem")) {
		return parse_size(val, &c->mem);
	} else if (!strcmp(key, "mac")) {
		*have_mac = true;
		return parse_mac(val, c->mac);
	} else if (!strcmp(key, "mtu")) {
		/* 68 (IPv4's least) .. what a frame of VMM_FRAME_MAX carries. */
		unsigned m;
		if (parse_count(val, 68, VMM_FRAME_MAX - 4 - 14, &m) < 0)
			return -EINVAL;
		c->mtu = (uint16_t)m;
	} else if (!strcmp(key, "queues")) {
		return parse_count(val, 1, VNET_MAX_PAIRS, &c->queues);
	} else if (!strcmp(key, "cpus")) {
		return parse_count(val, 1, VMM_MAX_CPUS, &c->cpus);
	} else if (!strcmp(key, "huge")) {
		if (strcmp(val, "on") && strcmp(val, "off"))
			return -EINVAL;
		c->small_pages = !strcmp(val, "off");
	} else if (!strcmp(key, "rx")) {
		if (!strcmp(val, "big"))
			c->layout = RX_BIG, c->copy = VDEMUX_COPY_NEVER;
		else if (!strcmp(val, "mergeable"))
			c->layout = RX_MERGEABLE, c->copy = VDEMUX_COPY_ALWAYS;
		else if (!strcmp(val, "auto"))
			c->layout = RX_BIG, c->copy = VDEMUX_COPY_ADAPTIVE;
		else
			return -EINVAL;
	} else {
		return -EINVAL;
	}
	return 0;
}

/* name=a,kernel=K,initrd=I,mem=256M,mac=M,rx=big|mergeable|auto[,mtu=N][,cpus=N][,queues=N][,huge=on|off][,cmdline=REST] */
static int parse_guest(struct guest_config *c, char *spec)
{
	bool have_mac = false;
	c->mem = 256ull << 20;
	/* Measured in the kernel lab (docs/performance.md, "End to end with
	 * offloads"): with TSO frames the adaptive policy copies into
	 * big-packet chains anyway, and a guest's mergeable buffers cost it
	 * less than big-packet refills. */
	c->layout = RX_MERGEABLE;
	c->copy = VDEMUX_COPY_ALWAYS;
	c->mtu = 1500;
	c->cpus = 1;
	c->queues = 1;
	snprintf(c->cmdline, sizeof c->cmdline, "%s", DEFAULT_CMDLINE);
	while (spec && *spec) {
		char *val = strchr(spec, '=');
		if (!val)
			return -EINVAL;
		*val++ = '\0';
		if (!strcmp(spec, "cmdline")) {
			/* The rest of the spec, commas and all, is appended. */
			size_t l = strlen(c->cmdline);
			snprintf(c->cmdline + l, sizeof c->cmdline - l, " %s", val);
			break;
		}
		char *next = strchr(val, ',');
		if (next)
			*next++ = '\0';
		if (parse_guest_key(c, spec, val, &have_mac) < 0)
			return -EINVAL;
		spec = next;
	}
	if (!c->name[0] || !c->kernel || !have_mac)
		return -EINVAL;
	/* The queues past the first share guest RAM: copies only. */
	if (c->queues > 1 && c->layout != RX_MERGEABLE)
		return -EINVAL;
	return 0;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: vmm --tap NAME [--verbose] [--io-threads]\n"
		"           --guest name=N,kernel=BZIMAGE,initrd=CPIO,mem=SIZE,mac=MAC,rx=big|mergeable|auto[,mtu=N][,cpus=N][,queues=N][,huge=on|off][,cmdline=ARGS]\n"
		"           [--guest ...]\n"
		"  mem: 64M..2G in 2 MiB steps (default 256M); rx: the receive buffers the guest\n"
		"  is led to post and how frames reach them: big flipped, mergeable (default)\n"
		"  copied, auto big, each frame copied or flipped by the engine's adaptive policy;\n"
		"  mtu: the device's MTU, 68..65522 (default 1500); cpus: vCPUs, 1..8 (default 1);\n"
		"  queues: queue pairs, 1..4 (default 1; more than 1 with rx=mergeable only);\n"
		"  cmdline: appended to the\n"
		"  kernel command line (takes the rest of the spec)\n"
		"  --io-threads: one thread per queue pair past the first, each with its own\n"
		"  engine (a shard) and TAP queue (default: the main thread serves every pair)\n");
}

static int add_guest(struct vmm *v, char *spec)
{
	if (v->nguests == VMM_MAX_GUESTS) {
		fprintf(stderr, "vmm: at most %d guests\n", VMM_MAX_GUESTS);
		return 2;
	}
	struct guest *g = &v->guests[v->nguests];
	g->vmm = v;
	g->index = v->nguests;
	if (parse_guest(&g->cfg, spec) < 0) {
		fprintf(stderr, "vmm: bad --guest spec\n");
		usage();
		return 2;
	}
	v->nguests++;
	return 0;
}

int vmm_parse_args(struct vmm *v, int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		int r;
		if (!strcmp(argv[i], "--tap") && i + 1 < argc) {
			v->tap_name = argv[++i];
		} else if (!strcmp(argv[i], "--guest") && i + 1 < argc) {
			if ((r = add_guest(v, argv[++i])) != 0)
				return r;
		} else if (!strcmp(argv[i], "--verbose")) {
			v->verbose = true;
		} else if (!strcmp(argv[i], "--io-threads")) {
			v->io_threads = true;
		} else {
			usage();
			return 2;
		}
	}
	if (!v->tap_name || !v->nguests) {
		usage();
		return 2;
	}
	return 0;
}

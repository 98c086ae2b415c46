/* SPDX-License-Identifier: MIT */
/*
 * vdemux-replay: run the frames of a pcap file through an engine on the
 * simulated backend, with the VMs, VLANs and addresses of a config file, and
 * print where each frame went. See --help and docs/classifier.md.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <pcap/pcap.h>

#include <vdemux/vdemux.h>

#define MAX_VMS 1024
#define NAME_MAX_LEN 64
#define RX_BASE 0x10000000ull
#define RX_PAGES 40u  /* window per VM */
#define RX_POSTED 20u /* buffers kept posted: a 64 KiB frame + tags needs 17 */
#define MAX_FRAME (65536u + 4u)

static const char
	usage_text[] = "usage: vdemux-replay [--dump DIR] [--check-every N] CONFIG CAPTURE.pcap\n"
		       "\n"
		       "Reads the Ethernet frames of CAPTURE.pcap (libpcap format), builds an engine\n"
		       "on the simulated backend with the VMs of CONFIG, and delivers the frames one\n"
		       "by one. Each VM acts as a guest: it keeps buffers posted, takes its\n"
		       "completions, reads each frame back through its own translation table and\n"
		       "re-posts the buffers.\n"
		       "\n"
		       "Output, one line per frame in capture order:\n"
		       "  <n> <verdict>\n"
		       "where <n> counts frames from 1 and <verdict> is the comma-separated names of\n"
		       "the VMs that received the frame, in config-file order, or drop:<reason>\n"
		       "(malformed, invalid-src, link-local, no-vlan-member, unknown-unicast,\n"
		       "no-subscriber, ...). A summary of the counters follows, after a blank line.\n"
		       "\n"
		       "Options:\n"
		       "  --dump DIR       also write DIR/<vm>.pcap: exactly the bytes each VM read\n"
		       "                   back from its own guest memory, one record per frame\n"
		       "  --check-every N  check the engine's invariants every N frames (default 1;\n"
		       "                   0: only at the end). A violation aborts with a message.\n"
		       "  -h, --help       this text\n"
		       "\n"
		       "CONFIG: one directive per line; '#' starts a comment; VMs are created in the\n"
		       "order they first appear:\n"
		       "  vlan-protocol 802.1Q|802.1ad          uplink tag protocol (default 802.1Q)\n"
		       "  native-vlan <vid>                     VLAN of untagged frames (default 1)\n"
		       "  vm <name> vlan <vid> untagged|tagged  VLAN membership\n"
		       "  vm <name> mac <aa:bb:cc:dd:ee:ff> vlan <vid>   unicast address\n"
		       "  vm <name> mcast <group-mac> vlan <vid>         multicast subscription\n"
		       "  vm <name> allmulti vlan <vid>         all multicast of the VLAN\n"
		       "  default <name> vlan <vid>             unknown unicast of the VLAN\n"
		       "An address, subscription, all-multicast or default needs the VM to be a\n"
		       "member of that VLAN first. vlan-protocol and native-vlan may appear anywhere.\n"
		       "\n"
		       "Exit status: 0 when every frame was replayed; 1 on a bad config line\n"
		       "(FILE:LINE: message), a damaged capture (FILE: frame N: message) or another\n"
		       "error; 2 on a usage error; an invariant violation aborts (SIGABRT).\n";

struct vm {
	char name[NAME_MAX_LEN];
	vdemux_vm_id id;
	uint64_t frames, bytes;
	pcap_dumper_t *dump;
};

enum dir_kind { D_VLAN, D_MAC, D_MCAST, D_ALLMULTI, D_DEFAULT };

struct directive {
	enum dir_kind kind;
	unsigned line;
	unsigned vm; /* index in vms */
	uint16_t vid;
	int tagged;
	uint8_t mac[6];
};

static struct vm vms[MAX_VMS];
static unsigned nvms;
static struct directive *dirs;
static unsigned ndirs, dirs_cap;
static uint16_t vlan_proto = VDEMUX_TPID_8021Q, native_vlan = 1;
static const char *cfg_path;

static void fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "vdemux-replay: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

static void cfg_fail(unsigned line, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "%s:%u: ", cfg_path, line);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

static int parse_vid(const char *s, uint16_t *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end || end == s || v < 1 || v > 4094)
		return -1;
	*out = (uint16_t)v;
	return 0;
}

static int parse_mac(const char *s, uint8_t m[6])
{
	unsigned b[6];
	char tail;
	if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &tail) != 6)
		return -1;
	if (strlen(s) != 17)
		return -1;
	for (int i = 0; i < 6; i++)
		m[i] = (uint8_t)b[i];
	return 0;
}

static unsigned vm_index(const char *name, unsigned line)
{
	for (unsigned i = 0; i < nvms; i++)
		if (!strcmp(vms[i].name, name))
			return i;
	if (strlen(name) >= NAME_MAX_LEN)
		cfg_fail(line, "VM name too long (at most %d characters)", NAME_MAX_LEN - 1);
	for (const char *p = name; *p; p++)
		if (!(*p == '-' || *p == '_' || *p == '.' || (*p >= '0' && *p <= '9') ||
		      (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')))
			cfg_fail(line, "VM name '%s': use letters, digits, '-', '_' and '.'", name);
	if (nvms == MAX_VMS)
		cfg_fail(line, "too many VMs (at most %d)", MAX_VMS);
	snprintf(vms[nvms].name, NAME_MAX_LEN, "%s", name);
	return nvms++;
}

static void add_dir(const struct directive *d)
{
	if (ndirs == dirs_cap) {
		dirs_cap = dirs_cap ? dirs_cap * 2 : 64;
		dirs = realloc(dirs, dirs_cap * sizeof(*dirs));
		if (!dirs)
			fail("out of memory");
	}
	dirs[ndirs++] = *d;
}

static void parse_config(const char *path)
{
	cfg_path = path;
	FILE *f = fopen(path, "r");
	if (!f)
		fail("%s: %s", path, strerror(errno));
	char buf[1024];
	unsigned line = 0;
	while (fgets(buf, sizeof(buf), f)) {
		line++;
		if (!strchr(buf, '\n') && !feof(f))
			cfg_fail(line, "line too long");
		char *hash = strchr(buf, '#');
		if (hash)
			*hash = 0;
		char *w[8];
		int n = 0;
		for (char *tok = strtok(buf, " \t\r\n"); tok; tok = strtok(NULL, " \t\r\n")) {
			if (n == 8)
				cfg_fail(line, "too many words");
			w[n++] = tok;
		}
		if (n == 0)
			continue;
		struct directive d = {.line = line};
		if (!strcmp(w[0], "vlan-protocol")) {
			if (n != 2)
				cfg_fail(line, "expected: vlan-protocol 802.1Q|802.1ad");
			if (!strcasecmp(w[1], "802.1Q"))
				vlan_proto = VDEMUX_TPID_8021Q;
			else if (!strcasecmp(w[1], "802.1ad"))
				vlan_proto = VDEMUX_TPID_8021AD;
			else
				cfg_fail(line, "unknown VLAN protocol '%s' (802.1Q or 802.1ad)", w[1]);
		} else if (!strcmp(w[0], "native-vlan")) {
			if (n != 2 || parse_vid(w[1], &native_vlan))
				cfg_fail(line, "expected: native-vlan <vid 1..4094>");
		} else if (!strcmp(w[0], "default")) {
			if (n != 4 || strcmp(w[2], "vlan") || parse_vid(w[3], &d.vid))
				cfg_fail(line, "expected: default <name> vlan <vid 1..4094>");
			d.kind = D_DEFAULT;
			d.vm = vm_index(w[1], line);
			add_dir(&d);
		} else if (!strcmp(w[0], "vm")) {
			if (n < 3)
				cfg_fail(line, "expected: vm <name> vlan|mac|mcast|allmulti ...");
			const char *what = w[2];
			if (!strcmp(what, "vlan")) {
				if (n != 5 || parse_vid(w[3], &d.vid) ||
				    (strcmp(w[4], "tagged") && strcmp(w[4], "untagged")))
					cfg_fail(line,
						 "expected: vm <name> vlan <vid 1..4094> untagged|tagged");
				d.kind = D_VLAN;
				d.tagged = !strcmp(w[4], "tagged");
			} else if (!strcmp(what, "mac") || !strcmp(what, "mcast")) {
				int mc = !strcmp(what, "mcast");
				if (n != 6 || strcmp(w[4], "vlan") || parse_mac(w[3], d.mac) ||
				    parse_vid(w[5], &d.vid))
					cfg_fail(line,
						 "expected: vm <name> %s <aa:bb:cc:dd:ee:ff> vlan <vid 1..4094>",
						 what);
				d.kind = mc ? D_MCAST : D_MAC;
			} else if (!strcmp(what, "allmulti")) {
				if (n != 5 || strcmp(w[3], "vlan") || parse_vid(w[4], &d.vid))
					cfg_fail(line, "expected: vm <name> allmulti vlan <vid 1..4094>");
				d.kind = D_ALLMULTI;
			} else {
				cfg_fail(line, "unknown VM directive '%s' (vlan, mac, mcast, allmulti)",
					 what);
			}
			d.vm = vm_index(w[1], line);
			add_dir(&d);
		} else {
			cfg_fail(line, "unknown directive '%s'", w[0]);
		}
	}
	if (ferror(f))
		fail("%s: read error", path);
	fclose(f);
	if (nvms == 0)
		cfg_fail(line, "no VM defined");
}

static const char *why(int rc)
{
	switch (rc) {
	case -ENOENT:
		return "the VM is not a member of that VLAN (add 'vm <name> vlan <vid> ...' first)";
	case -EEXIST: return "another VM already has that address on that VLAN";
	case -EINVAL: return "invalid address for this directive";
	case -ENOSPC: return "too many addresses";
	default: return strerror(-rc);
	}
}

static void apply_config(vdemux_l2 *l2)
{
	for (unsigned i = 0; i < ndirs; i++) {
		const struct directive *d = &dirs[i];
		vdemux_vm_id id = vms[d->vm].id;
		int rc = 0;
		switch (d->kind) {
		case D_VLAN:
			rc = vdemux_l2_vlan_join(l2, id, d->vid, d->tagged ? VDEMUX_L2_TAGGED : 0);
			break;
		case D_MAC: rc = vdemux_l2_add_mac(l2, id, d->mac, d->vid); break;
		case D_MCAST: rc = vdemux_l2_add_mcast(l2, id, d->mac, d->vid); break;
		case D_ALLMULTI: rc = vdemux_l2_set_allmulti(l2, id, d->vid, 1); break;
		case D_DEFAULT: rc = vdemux_l2_set_default(l2, d->vid, id); break;
		}
		if (rc)
			cfg_fail(d->line, "%s", why(rc));
	}
}

static vdemux_engine *eng;
static struct vdemux_backend *sim;
static uint8_t readback[MAX_FRAME + 4096];

static void check_invariants(const char *when)
{
	char msg[512];
	if (vdemux_engine_check(eng, msg, sizeof(msg)) != 0) {
		fprintf(stderr, "vdemux-replay: invariant violated %s: %s\n", when, msg);
		fflush(stdout);
		abort();
	}
}

/* Act as guest i: take completions, read frames back, re-post the buffers.
 * Returns how many whole frames it read. */
static unsigned guest_receive(unsigned i, const struct pcap_pkthdr *h)
{
	struct vdemux_completion c[RX_POSTED];
	uint64_t repost[RX_POSTED];
	unsigned frames = 0;
	size_t flen = 0;
	int n = vdemux_vm_poll(eng, vms[i].id, c, RX_POSTED);
	if (n < 0)
		fail("poll %s: %s", vms[i].name, strerror(-n));
	for (int k = 0; k < n; k++) {
		if (flen + c[k].len > sizeof(readback))
			fail("%s: completion chain longer than any frame", vms[i].name);
		int rc = vdemux_sim_read(sim, vms[i].id, c[k].gpa, readback + flen, c[k].len);
		if (rc) {
			fprintf(stderr,
				"vdemux-replay: %s cannot read its completed buffer at 0x%" PRIx64
				": %s\n",
				vms[i].name, c[k].gpa, strerror(-rc));
			abort();
		}
		flen += c[k].len;
		repost[k] = c[k].gpa;
		if (c[k].flags & VDEMUX_CPL_MORE)
			continue;
		if (vms[i].dump) {
			struct pcap_pkthdr ph = {
				.ts = h->ts, .caplen = (bpf_u_int32)flen, .len = (bpf_u_int32)flen};
			pcap_dump((u_char *)vms[i].dump, &ph, readback);
		}
		vms[i].frames++;
		vms[i].bytes += flen;
		frames++;
		flen = 0;
	}
	if (flen) {
		fprintf(stderr, "vdemux-replay: %s: a frame's completion chain did not end\n",
			vms[i].name);
		abort();
	}
	if (n > 0) {
		int rc = vdemux_vm_post_rx(eng, vms[i].id, repost, (unsigned)n);
		if (rc != n)
			fail("re-post %s: %s", vms[i].name, rc < 0 ? strerror(-rc) : "partial");
	}
	return frames;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"dump", required_argument, NULL, 'd'},
		{"check-every", required_argument, NULL, 'c'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *dump_dir = NULL;
	unsigned long check_every = 1;
	int opt;
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'd': dump_dir = optarg; break;
		case 'c': {
			char *end;
			errno = 0;
			check_every = strtoul(optarg, &end, 10);
			if (errno || *end || end == optarg) {
				fprintf(stderr, "vdemux-replay: --check-every: not a number: %s\n",
					optarg);
				return 2;
			}
			break;
		}
		case 'h': fputs(usage_text, stdout); return 0;
		default: fputs(usage_text, stderr); return 2;
		}
	}
	if (argc - optind != 2) {
		fputs(usage_text, stderr);
		return 2;
	}
	const char *cap_path = argv[optind + 1];
	parse_config(argv[optind]);

	char errbuf[PCAP_ERRBUF_SIZE];
	pcap_t *pc = pcap_open_offline(cap_path, errbuf);
	if (!pc)
		fail("%s: %s", cap_path, errbuf);
	if (pcap_datalink(pc) != DLT_EN10MB)
		fail("%s: link type %s, not Ethernet", cap_path,
		     pcap_datalink_val_to_name(pcap_datalink(pc))
			     ? pcap_datalink_val_to_name(pcap_datalink(pc))
			     : "?");

	struct vdemux_engine_opts eo = VDEMUX_OPTS(vdemux_engine_opts,
						   .npages = nvms * (RX_POSTED + 4) + 64,
						   .max_vms = nvms, .max_frame = MAX_FRAME);
	int rc = vdemux_engine_create(&eng, &eo);
	if (rc)
		fail("engine: %s", strerror(-rc));
	if ((rc = vdemux_sim_create(&sim, NULL)) || (rc = vdemux_engine_add_backend(eng, sim)))
		fail("simulated backend: %s", strerror(-rc));

	vdemux_l2 *l2;
	struct vdemux_l2_opts lo = VDEMUX_OPTS(vdemux_l2_opts, .vlan_proto = vlan_proto,
					       .native_vlan = native_vlan);
	if ((rc = vdemux_l2_create(&l2, &lo)))
		fail("classifier: %s", strerror(-rc));
	if ((rc = vdemux_engine_set_classifier(eng, vdemux_l2_classifier(l2))))
		fail("classifier: %s", strerror(-rc));

	for (unsigned i = 0; i < nvms; i++) {
		struct vdemux_vm_opts vo = VDEMUX_OPTS(
			vdemux_vm_opts, .rx_base = RX_BASE, .rx_pages = RX_PAGES,
			.flags = VDEMUX_VM_F_UNPOPULATED, .backends = &sim, .n_backends = 1);
		if ((rc = vdemux_vm_add(eng, &vms[i].id, &vo)))
			fail("VM %s: %s", vms[i].name, strerror(-rc));
		uint64_t gpas[RX_POSTED];
		for (unsigned k = 0; k < RX_POSTED; k++)
			gpas[k] = RX_BASE + (uint64_t)k * VDEMUX_PAGE_SIZE;
		if ((rc = vdemux_vm_post_rx(eng, vms[i].id, gpas, RX_POSTED)) != (int)RX_POSTED)
			fail("VM %s: post: %s", vms[i].name, rc < 0 ? strerror(-rc) : "partial");
	}
	apply_config(l2);

	pcap_t *dead = NULL;
	if (dump_dir) {
		mkdir(dump_dir, 0777); /* may exist; pcap_dump_open() reports other failures */
		dead = pcap_open_dead(DLT_EN10MB, MAX_FRAME + 4);
		if (!dead)
			fail("pcap_open_dead failed");
		for (unsigned i = 0; i < nvms; i++) {
			size_t need = strlen(dump_dir) + strlen(vms[i].name) + sizeof("/.pcap");
			char *path = malloc(need);
			if (!path)
				fail("out of memory");
			snprintf(path, need, "%s/%s.pcap", dump_dir, vms[i].name);
			vms[i].dump = pcap_dump_open(dead, path);
			if (!vms[i].dump)
				fail("%s: %s", path, pcap_geterr(dead));
			free(path);
		}
	}

	struct vdemux_engine_stats before, after;
	uint64_t nframes = 0, short_frames = 0, long_frames = 0;
	struct pcap_pkthdr *h;
	const u_char *data;
	int got;
	while ((got = pcap_next_ex(pc, &h, &data)) == 1) {
		nframes++;
		if (h->caplen < h->len)
			fprintf(stderr,
				"%s: frame %" PRIu64 ": captured %u of %u bytes; replaying those\n",
				cap_path, nframes, h->caplen, h->len);
		if (h->caplen < 14) {
			/* The engine refuses such a frame outright; the
			 * classifier's rule for it is "malformed". */
			printf("%" PRIu64 " drop:%s\n", nframes,
			       vdemux_drop_reason_name(VDEMUX_DROP_MALFORMED));
			short_frames++;
			continue;
		}
		if (h->caplen > MAX_FRAME) {
			printf("%" PRIu64 " drop:%s\n", nframes,
			       vdemux_drop_reason_name(VDEMUX_DROP_TOO_BIG));
			long_frames++;
			continue;
		}
		vdemux_engine_stats(eng, &before, sizeof(before));
		struct vdemux_frame fr = {.data = data, .len = h->caplen};
		rc = vdemux_rx_burst(eng, &fr, 1);
		if (rc != 1)
			fail("%s: frame %" PRIu64 ": rx burst: %s", cap_path, nframes,
			     rc < 0 ? strerror(-rc) : "not taken");
		printf("%" PRIu64 " ", nframes);
		int named = 0;
		for (unsigned i = 0; i < nvms; i++) {
			unsigned k = guest_receive(i, h);
			if (k > 1) {
				fprintf(stderr, "vdemux-replay: %s received frame %" PRIu64 " %u times\n",
					vms[i].name, nframes, k);
				abort();
			}
			if (k)
				printf("%s%s", named++ ? "," : "", vms[i].name);
		}
		if (!named) {
			vdemux_engine_stats(eng, &after, sizeof(after));
			int reason = VDEMUX_DROP_NO_DEST;
			for (int r = 1; r < VDEMUX_DROP__COUNT; r++) {
				if (after.drops[r] != before.drops[r]) {
					reason = r;
					break;
				}
			}
			printf("drop:%s", vdemux_drop_reason_name(reason));
		}
		putchar('\n');
		if (check_every && nframes % check_every == 0) {
			char when[64];
			snprintf(when, sizeof(when), "after frame %" PRIu64, nframes);
			check_invariants(when);
		}
	}
	if (got == PCAP_ERROR)
		fail("%s: frame %" PRIu64 ": %s", cap_path, nframes + 1, pcap_geterr(pc));
	check_invariants("at the end");

	struct vdemux_engine_stats st;
	vdemux_engine_stats(eng, &st, sizeof(st));
	printf("\nframes %" PRIu64 "\n", nframes);
	printf("delivered %" PRIu64 " (flips %" PRIu64 ", copies %" PRIu64 ")\n", st.delivered, st.flips,
	       st.copies);
	for (int r = 1; r < VDEMUX_DROP__COUNT; r++) {
		uint64_t n = st.drops[r];
		if (r == VDEMUX_DROP_MALFORMED)
			n += short_frames;
		if (r == VDEMUX_DROP_TOO_BIG)
			n += long_frames;
		if (n)
			printf("drop %s %" PRIu64 "\n", vdemux_drop_reason_name(r), n);
	}
	for (unsigned i = 0; i < nvms; i++)
		printf("vm %s frames %" PRIu64 " bytes %" PRIu64 "\n", vms[i].name, vms[i].frames,
		       vms[i].bytes);

	for (unsigned i = 0; i < nvms; i++)
		if (vms[i].dump)
			pcap_dump_close(vms[i].dump);
	if (dead)
		pcap_close(dead);
	pcap_close(pc);
	vdemux_engine_destroy(eng);
	vdemux_l2_destroy(l2);
	free(dirs);
	return 0;
}

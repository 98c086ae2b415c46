/* SPDX-License-Identifier: MIT */
/* The whole page-flip lifecycle on the simulated backend: three VMs post
 * buffers, frames arrive for each (unicast, broadcast, a jumbo frame), each
 * VM reads what it received through its own translation table, releases the
 * pages by posting again, and the counters are printed. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vdemux/vdemux.h>

#define NVMS 3
#define WINDOW 16

static struct vdemux_backend *sim;

static int check(int rc, const char *what)
{
	if (rc < 0) {
		fprintf(stderr, "%s: %s\n", what, strerror(-rc));
		exit(1);
	}
	return rc;
}

static size_t make_frame(uint8_t *f, const uint8_t dst[6], uint8_t src_id, size_t len, const char *text)
{
	memcpy(f, dst, 6);
	memcpy(f + 6, (uint8_t[6]){0x02, 0, 0, 0, 0xee, src_id}, 6);
	f[12] = 0x88;
	f[13] = 0xb5; /* local experimental ethertype */
	memset(f + 14, 'x', len - 14);
	memcpy(f + 14, text, strlen(text));
	return len;
}

static void on_signal(vdemux_vm_id vm, unsigned reasons, void *payload)
{
	(void)payload;
	printf("  signal: VM %u%s%s\n", vm, reasons & VDEMUX_SIG_RX ? " rx-ready" : "",
	       reasons & VDEMUX_SIG_RELEASE ? " release-request" : "");
}

/* Act as the guest: take completions, read each frame through the VM's own
 * table, then re-post the buffers (which releases the pages). */
static void guest_receive(vdemux_engine *eng, const char *name, vdemux_vm_id vm)
{
	struct vdemux_completion c[WINDOW];
	uint64_t repost[WINDOW];
	static uint8_t buf[70000];
	size_t flen = 0;
	int n = check(vdemux_vm_poll(eng, vm, c, WINDOW), "poll");

	for (int i = 0; i < n; i++) {
		check(vdemux_sim_read(sim, vm, c[i].gpa, buf + flen, c[i].len), "guest read");
		flen += c[i].len;
		repost[i] = c[i].gpa;
		if (c[i].flags & VDEMUX_CPL_MORE)
			continue;
		printf("  %s got %zu bytes (%s, last buffer at GPA 0x%" PRIx64 "): \"%.24s\"\n", name,
		       flen, c[i].flags & VDEMUX_CPL_COPIED ? "copied" : "flipped", c[i].gpa,
		       (const char *)buf + 14);
		flen = 0;
	}
	if (n > 0)
		check(vdemux_vm_post_rx(eng, vm, repost, (unsigned)n), "re-post");
}

static const char *names[NVMS] = {"vm-a", "vm-b", "vm-c"};

/* Three VMs on VLAN 1, each with a 16-page window at 0x100000 and 8
 * buffers posted; vm-c harvests lazily. */
static void add_vms(vdemux_engine *eng, vdemux_l2 *l2, vdemux_vm_id vms[NVMS], uint8_t macs[NVMS][6])
{
	for (int i = 0; i < NVMS; i++) {
		struct vdemux_vm_opts vo = VDEMUX_OPTS(
			vdemux_vm_opts, .rx_base = 0x100000, .rx_pages = WINDOW, .backends = &sim,
			.n_backends = 1, .signal = {.kind = VDEMUX_SIGNAL_CALLBACK, .cb = on_signal});
		uint64_t gpas[8];

		/* vm-c harvests lazily: its buffers stay mapped until a frame
		 * replaces them, and small frames are copied into them. */
		if (i == 2)
			vo.harvest = VDEMUX_HARVEST_LAZY;
		check(vdemux_vm_add(eng, &vms[i], &vo), "add VM");
		memcpy(macs[i], (uint8_t[6]){0x02, 0, 0, 0, 0, (uint8_t)(i + 1)}, 6);
		check(vdemux_l2_vlan_join(l2, vms[i], 1, 0), "join VLAN");
		check(vdemux_l2_add_mac(l2, vms[i], macs[i], 1), "add MAC");
		for (int k = 0; k < 8; k++)
			gpas[k] = 0x100000 + (uint64_t)k * VDEMUX_PAGE_SIZE;
		check(vdemux_vm_post_rx(eng, vms[i], gpas, 8), "post");
		printf("%s: id %u, window 16 pages at 0x100000, 8 posted (%s)\n", names[i], vms[i],
		       i == 2 ? "lazy" : "eager");
	}
}

/* The engine's check, and its counters. */
static void report(vdemux_engine *eng)
{
	struct vdemux_engine_stats st;
	char msg[256];

	check(vdemux_engine_check(eng, msg, sizeof(msg)) == 0 ? 0 : -EUCLEAN, msg);
	vdemux_engine_stats(eng, &st, sizeof(st));
	printf("counters: pages %" PRIu64 " (free %" PRIu64 ", assigned %" PRIu64 ")"
	       ", frames %" PRIu64 ", deliveries %" PRIu64 ", flips %" PRIu64 ", copies %" PRIu64
	       ", harvests %" PRIu64 ", signals %" PRIu64 "\n",
	       st.pages_total, st.pages_free, st.pages_assigned, st.rx_frames, st.delivered, st.flips,
	       st.copies, st.harvests, st.signals);
	for (int r = 1; r < VDEMUX_DROP__COUNT; r++)
		if (st.drops[r])
			printf("dropped: %" PRIu64 " %s\n", st.drops[r], vdemux_drop_reason_name(r));
	printf("invariants: ok\n");
}

int main(void)
{
	static uint8_t frame[9000];
	struct vdemux_engine_opts eo = VDEMUX_OPTS(vdemux_engine_opts, .npages = 64,
						   .copy = VDEMUX_COPY_THRESHOLD, .copy_threshold = 128,
						   .low_watermark = 8);
	vdemux_vm_id vms[NVMS];
	uint8_t macs[NVMS][6];
	vdemux_engine *eng;
	vdemux_l2 *l2;

	check(vdemux_engine_create(&eng, &eo), "engine");
	check(vdemux_sim_create(&sim, NULL), "sim backend");
	check(vdemux_engine_add_backend(eng, sim), "add backend");
	l2 = vdemux_engine_l2(eng);

	add_vms(eng, l2, vms, macs);

	printf("burst 1: unicast to each VM, a broadcast, a frame for nobody\n");
	{
		static uint8_t f[5][1600];
		static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
		static const uint8_t nobody[6] = {0x02, 0, 0, 0, 0, 0x77};
		struct vdemux_frame fr[5] = {
			{.data = f[0], .len = (uint32_t)make_frame(f[0], macs[0], 1, 1500, "hello vm-a")},
			{.data = f[1], .len = (uint32_t)make_frame(f[1], macs[1], 1, 64, "hello vm-b")},
			{.data = f[2],
			 .len = (uint32_t)make_frame(f[2], macs[2], 1, 64, "small, copied")},
			{.data = f[3], .len = (uint32_t)make_frame(f[3], bcast, 1, 60, "broadcast")},
			{.data = f[4], .len = (uint32_t)make_frame(f[4], nobody, 1, 60, "lost")},
		};
		check(vdemux_rx_burst(eng, fr, 5), "rx burst");
	}
	for (int i = 0; i < NVMS; i++)
		guest_receive(eng, names[i], vms[i]);

	printf("burst 2: a 9000-byte jumbo frame to vm-b, spanning 3 buffers\n");
	{
		struct vdemux_frame fr = {.data = frame,
					  .len = (uint32_t)make_frame(frame, macs[1], 1, 9000, "jumbo")};
		check(vdemux_rx_burst(eng, &fr, 1), "rx burst");
	}
	guest_receive(eng, names[1], vms[1]);

	printf("removing vm-a\n");
	check(vdemux_vm_remove(eng, vms[0]), "remove");

	report(eng);
	vdemux_engine_destroy(eng);
	return 0;
}

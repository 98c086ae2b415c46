/* SPDX-License-Identifier: MIT */
/*
 * vfio_isolation: the engine, with the VFIO backend on a real IOMMU, keeps a
 * device's DMA on the pages its VM owns. Runs in the kernel lab, with the
 * emulated e1000e bound to vfio-pci (vmrun.sh --vfio-bind-e1000e).
 *
 * The device is the e1000e: a TX descriptor with RS set makes it write the
 * descriptor's status back (the DD bit) at the ring's IOVA. VM A's
 * guest-physical addresses are IOVAs of the device's container; "VM A
 * writes its ring" is the program writing into the page the engine has
 * mapped at that GPA. After each step the whole arena is compared with a
 * snapshot taken before the device was kicked: the device's write must land
 * in the page VM A owns at that GPA, and nowhere else. When the GPA is a
 * hole, no page may change and the IOMMU must report the device's fault at
 * that address (the intel-iommu driver logs it: "DMAR: ... fault addr").
 *
 * Part 1: isolation through the engine (the VMM's container, borrowed):
 *   the device writes the page mapped at G; after A posts G (eager harvest)
 *   G is a hole and the device reaches nothing, not even the old page once
 *   VM B holds it; a frame delivered at G maps a new page and the device
 *   writes there; release makes G a hole again; with lazy harvest, the remap
 *   moves the device's write from the old page to the new one.
 * Part 2: limits through the engine (the backend opens the group itself):
 *   dma_entry_limit lowered, a window that cannot fit refused (E2BIG), a
 *   burst that runs out of entries (ENOSPC) loses no page, a mapping made by
 *   the VMM inside the window (EEXIST) is left alone.
 * Part 3: the backend alone against the kernel: EEXIST, one UNMAP_DMA for 64
 *   pages mapped one by one, an unmap that would split a mapping (EINVAL)
 *   reported with the exact prefix, ENOSPC with the exact prefix.
 *
 * Exit 0: all checks passed; 1: a check failed; 77: no VFIO or no e1000e.
 */
#include "vfio_dev.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/vfio.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/klog.h>
#include <sys/mman.h>
#include <unistd.h>

#include <vdemux/sys/backend.h>
#include <vdemux/vdemux.h>

#define PG 4096u
#define ARENA_PAGES 96u
#define RX_BASE 0x100000ull
#define RX_PAGES 8u
#define LIMIT_PATH "/sys/module/vfio_iommu_type1/parameters/dma_entry_limit"

static int failures;

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static bool
check(bool ok, const char *fmt, ...)
{
	va_list ap;
	printf("%s: ", ok ? "ok" : "FAIL");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	if (!ok)
		failures++;
	return ok;
}

static void on_log(int level, const char *msg, void *payload)
{
	(void)payload;
	if (level <= VDEMUX_LOG_WARN)
		printf("  log: %s\n", msg);
}

/* ---- the VMM's side: raw mappings, and asking the kernel what is mapped ---- */

static uint8_t *vmm_mem; /* 64 pages of "guest RAM" outside the RX window */

static int raw_map(int container, uint64_t iova, void *vaddr, uint64_t size)
{
	struct vfio_iommu_type1_dma_map m = {
		.argsz = sizeof(m),
		.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
		.vaddr = (uint64_t)(uintptr_t)vaddr,
		.iova = iova,
		.size = size,
	};
	return ioctl(container, VFIO_IOMMU_MAP_DMA, &m) < 0 ? -errno : 0;
}

static int raw_unmap(int container, uint64_t iova, uint64_t size, uint64_t *got)
{
	struct vfio_iommu_type1_dma_unmap u = {.argsz = sizeof(u), .iova = iova, .size = size};
	if (ioctl(container, VFIO_IOMMU_UNMAP_DMA, &u) < 0)
		return -errno;
	if (got)
		*got = u.size;
	return 0;
}

/*
 * Does the kernel have a mapping covering the page at @iova? MAP_DMA answers
 * EEXIST before anything else if so; if the map succeeds the IOVA was free
 * and the probe mapping is removed again.
 */
static bool kernel_has(int container, uint64_t iova)
{
	int r = raw_map(container, iova, vmm_mem + 63 * PG, PG);
	if (r == 0)
		raw_unmap(container, iova, PG, NULL);
	return r == -EEXIST;
}

static int limit_read(void)
{
	FILE *f = fopen(LIMIT_PATH, "re");
	int v = -1;
	if (f) {
		if (fscanf(f, "%d", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

static bool limit_write(int v)
{
	FILE *f = fopen(LIMIT_PATH, "we");
	if (!f)
		return false;
	bool ok = fprintf(f, "%d\n", v) > 0;
	return fclose(f) == 0 && ok;
}

/* The kernel log, for the IOMMU's fault reports. */
static char *klog_all(void)
{
	int n = klogctl(10 /* SYSLOG_ACTION_SIZE_BUFFER */, NULL, 0);
	if (n <= 0)
		return NULL;
	char *buf = calloc(1, (size_t)n + 1);
	if (!buf)
		return NULL;
	int got = klogctl(3 /* SYSLOG_ACTION_READ_ALL */, buf, n);
	if (got < 0) {
		free(buf);
		return NULL;
	}
	buf[got] = 0;
	return buf;
}

static unsigned count_substr(const char *hay, const char *needle)
{
	unsigned n = 0;
	for (const char *p = hay; p && (p = strstr(p, needle)); p++)
		n++;
	return n;
}

/* How many DMAR faults at @iova the kernel has logged so far. */
static unsigned dmar_faults_at(uint64_t iova)
{
	char *log = klog_all(), needle[64];
	if (!log)
		return 0;
	snprintf(needle, sizeof(needle), "fault addr 0x%llx", (unsigned long long)iova);
	unsigned n = count_substr(log, needle);
	snprintf(needle, sizeof(needle), "fault addr %llx ", (unsigned long long)iova);
	n += count_substr(log, needle);
	free(log);
	return n;
}

/* ---- the engine's side ---- */

struct lab {
	struct vd_dev d;
	bool have_dev;
	vdemux_arena *arena;
	struct vdemux_arena_info ai;
	vdemux_engine *eng;
	struct vdemux_backend *vfio; /* owned by the engine once added */
	struct vdemux_backend *sim;
	vdemux_vm_id a, b;
	uint8_t *snap;
};

static const uint8_t mac_a[6] = {0x02, 0, 0, 0, 0, 0x0a};
static const uint8_t mac_b[6] = {0x02, 0, 0, 0, 0, 0x0b};
static const uint8_t mac_src[6] = {0x02, 0, 0, 0, 0, 0x01};

static uint8_t *host(struct lab *l, uint32_t page)
{
	return l->ai.base + (size_t)page * PG;
}

static uint32_t vfio_page_at(struct lab *l, vdemux_vm_id vm, uint64_t gpa)
{
	uint32_t p = VDEMUX_NO_PAGE;
	if (vdemux_vfio_translate(l->vfio, vm, gpa, &p) < 0)
		return VDEMUX_NO_PAGE;
	return p;
}

static bool engine_consistent(struct lab *l, const char *when)
{
	char msg[256] = "";
	int r = vdemux_engine_check(l->eng, msg, sizeof(msg));
	return check(r == 0, "engine invariants hold %s%s%s", when, r ? ": " : "", r ? msg : "");
}

/* Deliver one frame of @len bytes to @mac; returns the frames taken. */
static int send_frame(struct lab *l, const uint8_t mac[6], uint32_t len, uint8_t fill)
{
	static uint8_t frame[PG];
	memset(frame, fill, sizeof(frame));
	memcpy(frame, mac, 6);
	memcpy(frame + 6, mac_src, 6);
	frame[12] = 0x88;
	frame[13] = 0xb5;
	struct vdemux_frame f = {.data = frame, .len = len};
	return vdemux_rx_burst(l->eng, &f, 1);
}

static int poll_one(struct lab *l, vdemux_vm_id vm, struct vdemux_completion *c)
{
	return vdemux_vm_poll(l->eng, vm, c, 1);
}

/*
 * VM A writes a TX ring into its page at @gpa; the device is kicked at
 * @gpa. Returns the arena pages the device changed (bitmap in @changed,
 * count returned). The ring is written before the snapshot, so only the
 * device's writes differ.
 */
static unsigned kick(struct lab *l, uint64_t gpa, uint32_t ring_page, bool *changed)
{
	if (ring_page != VDEMUX_NO_PAGE)
		vd_e1000e_tx_prepare(host(l, ring_page), gpa);
	memcpy(l->snap, l->ai.base, (size_t)ARENA_PAGES * PG);
	int head = vd_e1000e_tx_kick(&l->d, gpa);
	unsigned n = 0;
	for (uint32_t p = 0; p < ARENA_PAGES; p++) {
		changed[p] = memcmp(l->snap + (size_t)p * PG, host(l, p), PG) != 0;
		n += changed[p];
	}
	printf("  kick at GPA 0x%llx: TDH %d, %u page(s) changed\n", (unsigned long long)gpa, head, n);
	return n;
}

/* The device wrote into @page (its DD bit) and changed no other page. */
static void expect_write_only_into(struct lab *l, uint64_t gpa, uint32_t page, const char *what)
{
	bool changed[ARENA_PAGES];
	unsigned n = kick(l, gpa, page, changed);
	check(vd_e1000e_tx_done(host(l, page)), "%s: the device wrote DD into page %u", what, page);
	check(n == 1 && changed[page], "%s: no other page of the arena changed", what);
}

/* The device reached no page at all. */
static void expect_blocked(struct lab *l, uint64_t gpa, const char *what)
{
	bool changed[ARENA_PAGES];
	unsigned faults0 = dmar_faults_at(gpa);
	unsigned n = kick(l, gpa, VDEMUX_NO_PAGE, changed);
	check(n == 0, "%s: the device's DMA at the hole changed no page", what);
	unsigned faults1 = dmar_faults_at(gpa);
	check(faults1 > faults0,
	      "%s: the IOMMU reported the device's fault at 0x%llx (%u -> %u in the kernel log)", what,
	      (unsigned long long)gpa, faults0, faults1);
}

static int open_device(struct lab *l)
{
	char bdf[32];
	if (access("/dev/vfio/vfio", F_OK) != 0) {
		printf("SKIP: /dev/vfio/vfio is absent (vfio modules not loaded?)\n");
		return 77;
	}
	if (vd_find_pci(VD_E1000E_VENDOR, VD_E1000E_DEVICE, bdf, sizeof(bdf)) < 0) {
		printf("SKIP: no e1000e (8086:10d3) PCI device\n");
		return 77;
	}
	if (vd_open(&l->d, bdf) < 0) {
		printf("FAIL: %s\n", l->d.err);
		return 1;
	}
	int r = vd_map_bar0(&l->d);
	if (r == 0)
		r = vd_enable_bus_master(&l->d);
	if (r < 0) {
		printf("FAIL: BAR0 mmap / bus master: %s\n", strerror(-r));
		return 1;
	}
	l->have_dev = true;
	printf("e1000e %s, IOMMU group %d\n", l->d.bdf, l->d.group_id);
	return 0;
}

static int make_engine(struct lab *l)
{
	struct vdemux_arena_opts ao = VDEMUX_OPTS(vdemux_arena_opts, .npages = ARENA_PAGES,
						  .kind = VDEMUX_ARENA_MEMFD);
	int r = vdemux_arena_create(&l->arena, &ao);
	if (r < 0)
		return r;
	vdemux_arena_info(l->arena, &l->ai);
	struct vdemux_engine_opts eo = VDEMUX_OPTS(vdemux_engine_opts, .arena = l->arena, .max_vms = 4,
						   .log = on_log);
	return vdemux_engine_create(&l->eng, &eo);
}

static void free_engine(struct lab *l)
{
	vdemux_engine_destroy(l->eng);
	vdemux_arena_destroy(l->arena);
	l->eng = NULL;
	l->arena = NULL;
	l->vfio = l->sim = NULL;
}

static int add_vm(struct lab *l, vdemux_vm_id *id, struct vdemux_backend *be, const uint8_t mac[6],
		  enum vdemux_harvest harvest, uint32_t rx_pages, uint32_t flags)
{
	struct vdemux_backend *bes[1] = {be};
	struct vdemux_vm_opts vo = VDEMUX_OPTS(vdemux_vm_opts, .rx_base = RX_BASE, .rx_pages = rx_pages,
					       .harvest = harvest, .copy = VDEMUX_COPY_NEVER,
					       .flags = flags, .backends = bes, .n_backends = 1);
	int r = vdemux_vm_add(l->eng, id, &vo);
	if (r < 0)
		return r;
	vdemux_l2 *l2 = vdemux_engine_l2(l->eng);
	r = vdemux_l2_vlan_join(l2, *id, 1, 0);
	if (r == 0)
		r = vdemux_l2_add_mac(l2, *id, mac, 1);
	return r;
}

/* ---- part 1 ---- */

static void part1_isolation(struct lab *l)
{
	printf("== part 1: a device's DMA follows the pages its VM owns\n");
	struct vdemux_vfio_opts o = VDEMUX_OPTS(vdemux_vfio_opts, .flags = VDEMUX_VFIO_F_CONTAINER_FD,
						.container_fd = l->d.container, .log = on_log);
	struct vdemux_sim_opts so = VDEMUX_OPTS(vdemux_sim_opts);
	if (!check(make_engine(l) == 0, "memfd arena of %u pages and engine", ARENA_PAGES) ||
	    !check(vdemux_vfio_create(&l->vfio, &o) == 0, "VFIO backend on the VMM's container") ||
	    !check(vdemux_engine_add_backend(l->eng, l->vfio) == 0, "backend registered") ||
	    !check(vdemux_sim_create(&l->sim, &so) == 0 && vdemux_engine_add_backend(l->eng, l->sim) == 0,
		   "simulated backend for VM B (no device)"))
		return;
	int r = add_vm(l, &l->a, l->vfio, mac_a, VDEMUX_HARVEST_EAGER, RX_PAGES, 0);
	if (!check(r == 0, "VM A: %u-page RX window at GPA 0x%llx on the device's IOMMU (%d)", RX_PAGES,
		   RX_BASE, r))
		return;
	r = add_vm(l, &l->b, l->sim, mac_b, VDEMUX_HARVEST_EAGER, RX_PAGES, 0);
	if (!check(r == 0, "VM B added (%d)", r))
		return;
	engine_consistent(l, "after both VMs were populated");

	const uint64_t g = RX_BASE + 2 * PG;
	uint32_t p0 = vfio_page_at(l, l->a, g);
	check(p0 != VDEMUX_NO_PAGE, "page %u is mapped at G = 0x%llx", p0, (unsigned long long)g);
	check(kernel_has(l->d.container, g), "the kernel's IOMMU table has G mapped");
	expect_write_only_into(l, g, p0, "A owns G");

	/* B posts its whole window now, so that its buffers wait for frames. */
	uint64_t gpas[RX_PAGES];
	for (unsigned i = 0; i < RX_PAGES; i++)
		gpas[i] = RX_BASE + (uint64_t)i * PG;
	check(vdemux_vm_post_rx(l->eng, l->b, gpas, RX_PAGES) == (int)RX_PAGES, "VM B posts %u buffers",
	      RX_PAGES);

	/* A posts G: eager harvest takes p0 out of A's IOMMU table. */
	check(vdemux_vm_post_rx(l->eng, l->a, &g, 1) == 1, "VM A posts G (eager harvest)");
	check(vfio_page_at(l, l->a, g) == VDEMUX_NO_PAGE, "the backend's record: G is a hole");
	check(!kernel_has(l->d.container, g), "the kernel's IOMMU table: G is a hole");
	engine_consistent(l, "after the harvest");
	expect_blocked(l, g, "G posted, a hole");

	/* The pool is LIFO: the next frame, for B, goes into p0. */
	check(send_frame(l, mac_b, 1000, 0xbb) == 1, "a frame for VM B");
	struct vdemux_completion c = {0};
	uint32_t pb = VDEMUX_NO_PAGE;
	r = poll_one(l, l->b, &c);
	if (check(r == 1, "VM B has a completion at 0x%llx", (unsigned long long)c.gpa))
		vdemux_sim_translate(l->sim, l->b, c.gpa, &pb);
	check(pb == p0, "the page A gave up (%u) now holds B's frame (B's page: %u)", p0, pb);
	check(pb != VDEMUX_NO_PAGE && host(l, pb)[100] == 0xbb, "B's frame is in that page");
	expect_blocked(l, g, "G still a hole, its old page now B's");
	check(pb != VDEMUX_NO_PAGE && host(l, pb)[100] == 0xbb && host(l, pb)[0] == mac_b[0],
	      "B's page is intact");

	/* A frame for A fills G with a new page: the device follows it. */
	check(send_frame(l, mac_a, 1500, 0xaa) == 1, "a frame for VM A");
	check(poll_one(l, l->a, &c) == 1 && c.gpa == g, "VM A has a completion at G");
	uint32_t p1 = vfio_page_at(l, l->a, g);
	check(p1 != VDEMUX_NO_PAGE && p1 != p0, "a new page (%u) is mapped at G", p1);
	check(kernel_has(l->d.container, g), "the kernel's IOMMU table has G mapped again");
	engine_consistent(l, "after the flip");
	if (p1 != VDEMUX_NO_PAGE) {
		check(host(l, p1)[100] == 0xaa, "A's frame is in the new page");
		expect_write_only_into(l, g, p1, "A owns the delivered page at G");
	}
	check(host(l, pb)[100] == 0xbb, "B's page (the old page of G) untouched by A's device");

	/* Release: G becomes a hole again. */
	check(vdemux_vm_release(l->eng, l->a, &g, 1) == 1, "VM A releases G");
	check(!kernel_has(l->d.container, g), "the kernel's IOMMU table: G is a hole");
	expect_blocked(l, g, "G released");
	engine_consistent(l, "after the release");

	/* Lazy harvest: G stays mapped when posted; the frame's remap moves it. */
	check(vdemux_vm_remove(l->eng, l->a) == 0, "VM A removed");
	uint32_t avail = 0;
	vdemux_vfio_dma_avail(l->vfio, &avail);
	printf("  dma_avail %u after VM A left\n", avail);
	r = add_vm(l, &l->a, l->vfio, mac_a, VDEMUX_HARVEST_LAZY, RX_PAGES, 0);
	if (!check(r == 0, "VM A again, with lazy harvest, on the same container (%d)", r))
		return;
	uint32_t p2 = vfio_page_at(l, l->a, g);
	expect_write_only_into(l, g, p2, "lazy: A owns G");
	check(vdemux_vm_post_rx(l->eng, l->a, &g, 1) == 1, "VM A posts G (lazy: still mapped)");
	check(vfio_page_at(l, l->a, g) == p2 && kernel_has(l->d.container, g), "G still maps page %u",
	      p2);
	check(send_frame(l, mac_a, 3000, 0xa2) == 1, "a frame for VM A");
	check(poll_one(l, l->a, &c) == 1 && c.gpa == g, "VM A has a completion at G");
	uint32_t p3 = vfio_page_at(l, l->a, g);
	check(p3 != VDEMUX_NO_PAGE && p3 != p2, "remap: page %u replaced page %u at G", p3, p2);
	engine_consistent(l, "after the remap");
	if (p3 != VDEMUX_NO_PAGE && p2 != VDEMUX_NO_PAGE) {
		expect_write_only_into(l, g, p3, "lazy: A owns the new page at G");
		bool zero = true;
		for (unsigned i = 0; i < PG; i++)
			zero &= host(l, p2)[i] == 0;
		check(zero, "the old page %u is back in the pool, cleared, and the device left it so",
		      p2);
	}

	struct vdemux_vfio_stats st;
	vdemux_vfio_stats(l->vfio, &st, sizeof(st));
	printf("  vfio stats: %llu MAP_DMA, %llu UNMAP_DMA, %llu pages mapped, %llu unmapped, %llu errors\n",
	       (unsigned long long)st.map_calls, (unsigned long long)st.unmap_calls,
	       (unsigned long long)st.pages_mapped, (unsigned long long)st.pages_unmapped,
	       (unsigned long long)st.errors);
	check(st.errors == 0 && st.restore_failures == 0, "no backend error in part 1");
	free_engine(l);
	check(!kernel_has(l->d.container, g), "engine destroyed: nothing of the window left mapped");
}

/* ---- part 2 ---- */

static void part2_limits(struct lab *l, int group_id)
{
	printf("== part 2: dma_entry_limit, ENOSPC and EEXIST through the engine\n");
	int limit0 = limit_read();
	if (!check(limit0 > 0 && limit_write(20), "dma_entry_limit %d lowered to 20", limit0))
		return;
	struct vdemux_vfio_opts o = VDEMUX_OPTS(vdemux_vfio_opts, .flags = VDEMUX_VFIO_F_GROUP_ID,
						.group_id = group_id, .log = on_log);
	int r = vdemux_vfio_create(&l->vfio, &o);
	limit_write(limit0); /* read when the IOMMU was set: restore it now */
	if (!check(r == 0, "VFIO backend opens group %d itself (%d)", group_id, r))
		return;
	int cfd = vdemux_vfio_container_fd(l->vfio);
	uint32_t avail = 0;
	r = vdemux_vfio_dma_avail(l->vfio, &avail);
	check(r == 0 && avail == 20, "DMA_AVAIL is %u", avail);
	if (!check(make_engine(l) == 0 && vdemux_engine_add_backend(l->eng, l->vfio) == 0,
		   "engine with the backend")) {
		l->vfio->free(l->vfio);
		l->vfio = NULL;
		free_engine(l);
		return;
	}

	struct vdemux_engine_stats es0, es1;
	vdemux_engine_stats(l->eng, &es0, sizeof(es0));
	r = add_vm(l, &l->a, l->vfio, mac_a, VDEMUX_HARVEST_EAGER, 21, 0);
	check(r == -E2BIG, "a 21-page window is refused with E2BIG (%d)", r);
	vdemux_engine_stats(l->eng, &es1, sizeof(es1));
	check(es1.pages_free == es0.pages_free, "and nothing changed");

	r = add_vm(l, &l->a, l->vfio, mac_a, VDEMUX_HARVEST_EAGER, 16, VDEMUX_VM_F_UNPOPULATED);
	if (!check(r == 0, "a 16-page window, unpopulated, fits (%d)", r))
		goto out;
	/* The VMM maps 8 pages of guest RAM below the window: 12 entries left. */
	for (unsigned i = 0; i < 8; i++)
		raw_map(cfd, (uint64_t)i * PG, vmm_mem + (size_t)i * PG, PG);
	vdemux_vfio_dma_avail(l->vfio, &avail);
	check(avail == 12, "the VMM's own mappings leave %u entries", avail);

	uint64_t gpas[16];
	for (unsigned i = 0; i < 16; i++)
		gpas[i] = RX_BASE + (uint64_t)i * PG;
	check(vdemux_vm_post_rx(l->eng, l->a, gpas, 16) == 16, "VM A posts 16 buffers");
	static uint8_t frames[16][1200];
	struct vdemux_frame fr[16];
	for (unsigned i = 0; i < 16; i++) {
		memset(frames[i], (int)i + 1, sizeof(frames[i]));
		memcpy(frames[i], mac_a, 6);
		memcpy(frames[i] + 6, mac_src, 6);
		frames[i][12] = 0x88;
		frames[i][13] = 0xb5;
		fr[i] = (struct vdemux_frame){.data = frames[i], .len = sizeof(frames[i])};
	}
	vdemux_engine_stats(l->eng, &es0, sizeof(es0));
	r = vdemux_rx_burst(l->eng, fr, 16);
	vdemux_engine_stats(l->eng, &es1, sizeof(es1));
	struct vdemux_vm_stats vs;
	vdemux_vm_stats(l->eng, l->a, &vs, sizeof(vs));
	uint64_t dropped = es1.drops[VDEMUX_DROP_BACKEND] - es0.drops[VDEMUX_DROP_BACKEND];
	printf("  burst of 16: taken %d, VM A holds %llu, %llu dropped (backend), %llu backend errors\n",
	       r, (unsigned long long)vs.held, (unsigned long long)dropped,
	       (unsigned long long)(es1.backend_errors - es0.backend_errors));
	check(r == 16 && vs.held == 12 && dropped == 4,
	      "out of entries mid-burst: 12 frames delivered, 4 dropped, none stuck");
	check(es1.pages_free + es1.pages_filling + es1.pages_assigned == es1.pages_total &&
		      es1.pages_assigned == 12,
	      "pages conserved: %llu free + %llu filling + %llu assigned of %llu",
	      (unsigned long long)es1.pages_free, (unsigned long long)es1.pages_filling,
	      (unsigned long long)es1.pages_assigned, (unsigned long long)es1.pages_total);
	engine_consistent(l, "after ENOSPC");
	unsigned agree = 0;
	for (unsigned i = 0; i < 16; i++)
		agree += kernel_has(cfd, gpas[i]) == (vfio_page_at(l, l->a, gpas[i]) != VDEMUX_NO_PAGE);
	check(agree == 16, "the kernel's table matches the backend's record at all 16 GPAs (%u)", agree);

	/* GPAs the VMM mapped itself: the engine's map fails, the VMM's stay. */
	struct vdemux_completion c[16];
	int nc = vdemux_vm_poll(l->eng, l->a, c, 16);
	uint64_t holes[16];
	unsigned nh = 0;
	for (unsigned i = 0; i < 16; i++)
		if (vfio_page_at(l, l->a, gpas[i]) == VDEMUX_NO_PAGE)
			holes[nh++] = gpas[i];
	check(nc == 12 && nh == 4, "12 completions, 4 posted holes");
	/* Free 5 entries, plant 4 mappings at the holes: 1 entry is left, so
	 * a map there can only fail for the IOVA being taken (EEXIST). */
	uint64_t rel[5];
	for (unsigned i = 0; i < 5; i++)
		rel[i] = c[i].gpa;
	check(vdemux_vm_release(l->eng, l->a, rel, 5) == 5, "VM A releases 5 pages");
	unsigned planted = 0;
	for (unsigned i = 0; i < nh; i++)
		planted += raw_map(cfd, holes[i], vmm_mem + (size_t)(9 + i) * PG, PG) == 0;
	vdemux_vfio_dma_avail(l->vfio, &avail);
	check(planted == 4 && avail == 1, "the VMM maps its own pages at the 4 holes (%u entry left)",
	      avail);
	vdemux_engine_stats(l->eng, &es0, sizeof(es0));
	r = vdemux_rx_burst(l->eng, fr, 1);
	vdemux_engine_stats(l->eng, &es1, sizeof(es1));
	check(r == 1 && es1.drops[VDEMUX_DROP_BACKEND] - es0.drops[VDEMUX_DROP_BACKEND] == 1,
	      "the frame bound for one of them is dropped (EEXIST)");
	unsigned still = 0;
	for (unsigned i = 0; i < nh; i++)
		still += kernel_has(cfd, holes[i]);
	check(still == 4, "the VMM's 4 mappings are all still there");
	uint64_t got = 0, total = 0;
	for (unsigned i = 0; i < nh; i++)
		if (raw_unmap(cfd, holes[i], PG, &got) == 0)
			total += got;
	check(total == 4 * PG, "and they are still the VMM's to remove");
	engine_consistent(l, "after EEXIST");

out:
	for (unsigned i = 0; i < 8; i++)
		raw_unmap(cfd, (uint64_t)i * PG, PG, NULL);
	free_engine(l);
}

/* ---- part 3 ---- */

static int batch(struct vdemux_backend *be, void *ctx, vdemux_backend_batch_fn fn, unsigned first,
		 unsigned n, uint32_t page0, unsigned *done)
{
	struct vdemux_map m[128];
	for (unsigned i = 0; i < n; i++)
		m[i] = (struct vdemux_map){.gpa = RX_BASE + (uint64_t)(first + i) * PG,
					   .page = page0 + i};
	return fn(be, ctx, m, n, done);
}

static void part3_backend(struct lab *l, int group_id)
{
	printf("== part 3: the backend's batches against the kernel\n");
	char path[32];
	snprintf(path, sizeof(path), "/dev/vfio/%d", group_id);
	struct vdemux_vfio_opts o = VDEMUX_OPTS(vdemux_vfio_opts, .group_path = path, .log = on_log);
	struct vdemux_backend *be = NULL;
	struct vdemux_arena_opts ao = VDEMUX_OPTS(vdemux_arena_opts, .npages = ARENA_PAGES,
						  .kind = VDEMUX_ARENA_MEMFD);
	int limit0 = limit_read();
	check(limit0 > 0 && limit_write(200), "dma_entry_limit %d lowered to 200", limit0);
	int cr = vdemux_vfio_create(&be, &o);
	limit_write(limit0);
	if (!check(cr == 0, "VFIO backend on %s", path) ||
	    !check(vdemux_arena_create(&l->arena, &ao) == 0, "memfd arena")) {
		if (be)
			be->free(be);
		return;
	}
	vdemux_arena_info(l->arena, &l->ai);
	int cfd = vdemux_vfio_container_fd(be);
	struct vdemux_backend_vm vm = {
		.vm_id = 1,
		.rx_base = RX_BASE,
		.rx_pages = 128,
		.arena = l->ai,
		.engine_first_page = 0,
		.engine_npages = ARENA_PAGES,
	};
	void *ctx = NULL;
	unsigned done = 0;
	uint32_t av0 = 0, av = 0;
	if (!check(be->vm_attach(be, &vm, &ctx) == 0, "attached a 128-page window"))
		goto out;
	vdemux_vfio_dma_avail(be, &av0);

	int r = batch(be, ctx, be->map, 0, 4, 10, &done);
	vdemux_vfio_dma_avail(be, &av);
	check(r == 0 && done == 4 && av == av0 - 4, "4 pages mapped, DMA_AVAIL %u -> %u", av0, av);
	r = batch(be, ctx, be->map, 0, 1, 20, &done);
	check(r == -EEXIST && done == 0, "a second map at a mapped GPA: EEXIST, done 0 (%d, %u)", r,
	      done);
	check(batch(be, ctx, be->unmap, 0, 4, 10, &done) == 0 && done == 4, "unmapped again");

	struct vdemux_vfio_stats s0, s1;
	check(batch(be, ctx, be->map, 8, 64, 0, &done) == 0, "64 pages mapped one by one");
	vdemux_vfio_stats(be, &s0, sizeof(s0));
	r = batch(be, ctx, be->unmap, 8, 64, 0, &done);
	vdemux_vfio_stats(be, &s1, sizeof(s1));
	vdemux_vfio_dma_avail(be, &av);
	check(r == 0 && done == 64 && s1.unmap_calls - s0.unmap_calls == 1 && av == av0,
	      "one UNMAP_DMA removed all 64 (%llu calls, DMA_AVAIL %u)",
	      (unsigned long long)(s1.unmap_calls - s0.unmap_calls), av);
	unsigned left = 0;
	for (unsigned i = 8; i < 72; i++)
		left += kernel_has(cfd, RX_BASE + (uint64_t)i * PG);
	check(left == 0, "none of them is left in the kernel's table");

	/* The VMM's one mapping over slots 100-101; the backend maps 98, 99. */
	check(raw_map(cfd, RX_BASE + 100 * PG, vmm_mem + 20 * PG, 2 * PG) == 0,
	      "the VMM maps 8 KiB as one mapping at slots 100-101");
	check(batch(be, ctx, be->map, 98, 2, 30, &done) == 0, "the backend maps slots 98, 99");
	vdemux_vfio_stats(be, &s0, sizeof(s0));
	r = batch(be, ctx, be->unmap, 98, 3, 30, &done);
	vdemux_vfio_stats(be, &s1, sizeof(s1));
	check(r == -EINVAL && done == 2,
	      "unmap of 98..100 would split the VMM's mapping: EINVAL, done 2 (%d, %u)", r, done);
	check(s1.unmap_fallbacks - s0.unmap_fallbacks == 1, "the merged unmap was retried page by page");
	check(!kernel_has(cfd, RX_BASE + 98 * PG) && !kernel_has(cfd, RX_BASE + 99 * PG),
	      "98 and 99 are unmapped (the prefix reported)");
	check(kernel_has(cfd, RX_BASE + 100 * PG) && kernel_has(cfd, RX_BASE + 101 * PG),
	      "the VMM's mapping is whole");
	r = batch(be, ctx, be->unmap, 101, 1, 0, &done);
	check(r == -EINVAL && done == 0, "unmap of its second half alone: EINVAL, done 0");
	uint64_t got = 0;
	check(raw_unmap(cfd, RX_BASE + 100 * PG, 2 * PG, &got) == 0 && got == 2 * PG,
	      "the VMM unmaps its 8 KiB");

	/* Use up the entries but 3, then a batch of 5. */
	vdemux_vfio_dma_avail(be, &av);
	unsigned planted = 0;
	while (av > 3) {
		if (raw_map(cfd, 0x40000000ull + (uint64_t)planted * PG, vmm_mem + (planted % 32) * PG,
			    PG))
			break;
		planted++;
		av--;
	}
	r = batch(be, ctx, be->map, 0, 5, 40, &done);
	check(r == -ENOSPC && done == 3, "with 3 entries left, a batch of 5: ENOSPC, done 3 (%d, %u)", r,
	      done);
	unsigned in = 0;
	for (unsigned i = 0; i < 5; i++)
		in += kernel_has(cfd, RX_BASE + (uint64_t)i * PG) ? 1u << i : 0;
	check(in == 0x7, "exactly the first 3 are mapped (mask 0x%x)", in);
	batch(be, ctx, be->unmap, 0, 3, 40, &done);
	raw_unmap(cfd, 0x40000000ull, (uint64_t)planted * PG, NULL);
	be->vm_detach(be, ctx);
out:
	be->free(be);
	vdemux_arena_destroy(l->arena);
	l->arena = NULL;
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	struct lab l;
	memset(&l, 0, sizeof(l));
	int r = open_device(&l);
	if (r)
		return r;
	vmm_mem = mmap(NULL, 64 * PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	l.snap = malloc((size_t)ARENA_PAGES * PG);
	if (vmm_mem == MAP_FAILED || !l.snap) {
		printf("FAIL: out of memory\n");
		return 1;
	}
	int group_id = l.d.group_id;

	part1_isolation(&l);
	if (l.eng)
		free_engine(&l);
	vd_close(&l.d); /* the group must be free for the backend to open it */

	part2_limits(&l, group_id);
	part3_backend(&l, group_id);

	if (failures) {
		printf("FAIL: vfio_isolation: %d check(s) failed\n", failures);
		return 1;
	}
	printf("PASS: vfio_isolation\n");
	return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * bench_vfio: cost per page of the VFIO backend's map and unmap, by batch
 * size (1, 8, 32, 256), against one VFIO_IOMMU_MAP_DMA / UNMAP_DMA per page
 * made directly, all in the same run; and, for the copy threshold, the cost
 * of clearing and copying a 4 KiB page.
 *
 * Needs a device bound to vfio-pci and a working IOMMU. On the build
 * machines run it in the kernel lab (see docs/backends-vfio.md):
 *   tests/kernel/vmrun.sh --modules "vfio-pci vfio_iommu_type1" \
 *       --vfio-bind-e1000e -- build/tests/kernel/bench_vfio_guest
 * Under software emulation only the ratios mean anything.
 *
 * Usage: bench_vfio [ROUNDS [GROUP]]   ROUNDS: default 15; GROUP: number
 * or /dev/vfio/N, by default the IOMMU group of the first device bound to
 * vfio-pci.
 * Exit 77 (with the reason) when there is no VFIO device to measure.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <linux/vfio.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <vdemux/sys/backend.h>
#include <vdemux/vdemux.h>

#define PG 4096u
#define NPAGES 256u /* pages mapped and unmapped per round */
#define RX_BASE 0x100000ull

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double median(double *v, unsigned n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* The IOMMU group of the first device bound to vfio-pci, or -1. */
static int find_group(char *bdf, size_t len)
{
	const char *drv = "/sys/bus/pci/drivers/vfio-pci";
	DIR *d = opendir(drv);
	if (!d)
		return -1;
	struct dirent *e;
	int group = -1;
	while ((e = readdir(d)) && group < 0) {
		if (!strchr(e->d_name, ':'))
			continue; /* not a device */
		char path[PATH_MAX], link[PATH_MAX];
		snprintf(path, sizeof(path), "%s/%s/iommu_group", drv, e->d_name);
		ssize_t n = readlink(path, link, sizeof(link) - 1);
		if (n <= 0)
			continue;
		link[n] = 0;
		const char *slash = strrchr(link, '/');
		group = atoi(slash ? slash + 1 : link);
		snprintf(bdf, len, "%s", e->d_name);
	}
	closedir(d);
	return group;
}

struct ctx {
	struct vdemux_backend *be;
	void *vm;
	int container;
	uint8_t *base;
	struct vdemux_map m[NPAGES];
};

/* One round: map NPAGES in batches of b, then unmap them in batches of b. */
static int round_backend(struct ctx *c, unsigned b, double *map_ns, double *unmap_ns)
{
	unsigned done;
	double t0 = now_ns();
	for (unsigned i = 0; i < NPAGES; i += b)
		if (c->be->map(c->be, c->vm, c->m + i, b, &done))
			return -1;
	double t1 = now_ns();
	for (unsigned i = 0; i < NPAGES; i += b)
		if (c->be->unmap(c->be, c->vm, c->m + i, b, &done))
			return -1;
	double t2 = now_ns();
	*map_ns = (t1 - t0) / NPAGES;
	*unmap_ns = (t2 - t1) / NPAGES;
	return 0;
}

/* The same pages with one ioctl per page, no library in between. */
static int round_raw(struct ctx *c, double *map_ns, double *unmap_ns)
{
	double t0 = now_ns();
	for (unsigned i = 0; i < NPAGES; i++) {
		struct vfio_iommu_type1_dma_map m = {
			.argsz = sizeof(m),
			.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
			.vaddr = (uint64_t)(uintptr_t)(c->base + (size_t)c->m[i].page * PG),
			.iova = c->m[i].gpa,
			.size = PG,
		};
		if (ioctl(c->container, VFIO_IOMMU_MAP_DMA, &m))
			return -1;
	}
	double t1 = now_ns();
	for (unsigned i = 0; i < NPAGES; i++) {
		struct vfio_iommu_type1_dma_unmap u = {
			.argsz = sizeof(u), .iova = c->m[i].gpa, .size = PG};
		if (ioctl(c->container, VFIO_IOMMU_UNMAP_DMA, &u))
			return -1;
	}
	double t2 = now_ns();
	*map_ns = (t1 - t0) / NPAGES;
	*unmap_ns = (t2 - t1) / NPAGES;
	return 0;
}

/* Clearing a page and copying a frame into it: the copy path's cost. */
static double clear_copy_ns(uint8_t *dst, const uint8_t *src, unsigned reps)
{
	double t0 = now_ns();
	for (unsigned i = 0; i < reps; i++) {
		memset(dst + (size_t)(i % 64) * PG, 0, PG);
		memcpy(dst + (size_t)(i % 64) * PG, src, PG);
		__asm__ __volatile__("" ::"r"(dst) : "memory");
	}
	return (now_ns() - t0) / reps;
}

int main(int argc, char **argv)
{
	char bdf[NAME_MAX + 1] = "?";
	char path[64];
	int group = -1;
	unsigned rounds = argc > 1 ? (unsigned)atoi(argv[1]) : 15;
	if (rounds < 1 || rounds > 1000)
		rounds = 15;

	if (access("/dev/vfio/vfio", F_OK) != 0) {
		printf("SKIP: /dev/vfio/vfio is absent (no VFIO here; run it in the kernel lab)\n");
		return 77;
	}
	if (argc > 2 && argv[2][0] == '/') {
		snprintf(path, sizeof(path), "%s", argv[2]);
	} else {
		group = argc > 2 ? atoi(argv[2]) : find_group(bdf, sizeof(bdf));
		if (group < 0) {
			printf("SKIP: no device is bound to vfio-pci\n");
			return 77;
		}
		snprintf(path, sizeof(path), "/dev/vfio/%d", group);
	}

	struct ctx c;
	memset(&c, 0, sizeof(c));
	vdemux_arena *arena = NULL;
	struct vdemux_arena_opts ao = VDEMUX_OPTS(vdemux_arena_opts, .npages = NPAGES + 64,
						  .kind = VDEMUX_ARENA_MEMFD);
	struct vdemux_vfio_opts vo = VDEMUX_OPTS(vdemux_vfio_opts, .group_path = path);
	int r = vdemux_arena_create(&arena, &ao);
	if (r == 0)
		r = vdemux_vfio_create(&c.be, &vo);
	if (r < 0) {
		printf("bench_vfio: setup on %s failed: %s\n", path, strerror(-r));
		return 1;
	}
	struct vdemux_arena_info ai;
	vdemux_arena_info(arena, &ai);
	c.base = ai.base;
	c.container = vdemux_vfio_container_fd(c.be);
	struct vdemux_backend_vm vm = {
		.vm_id = 1,
		.rx_base = RX_BASE,
		.rx_pages = NPAGES,
		.arena = ai,
		.engine_first_page = 0,
		.engine_npages = NPAGES,
	};
	r = c.be->vm_attach(c.be, &vm, &c.vm);
	if (r < 0) {
		printf("bench_vfio: attach failed: %s\n", strerror(-r));
		return 1;
	}
	/* Contiguous GPAs (so unmaps merge), pages in a scrambled order as
	 * the pool hands them out after a while. */
	for (unsigned i = 0; i < NPAGES; i++)
		c.m[i] = (struct vdemux_map){.gpa = RX_BASE + (uint64_t)i * PG,
					     .page = (i * 97u) % NPAGES};
	/* Fault the arena in, so that the first round does not pay for it. */
	memset(ai.base, 0, (size_t)ai.npages * PG);

	static const unsigned batches[] = {1, 8, 32, 256};
	enum { NB = 4 };
	double *raw_map = calloc(rounds, sizeof(double)), *raw_unmap = calloc(rounds, sizeof(double));
	double *bm[NB], *bu[NB];
	for (unsigned k = 0; k < NB; k++) {
		bm[k] = calloc(rounds, sizeof(double));
		bu[k] = calloc(rounds, sizeof(double));
		if (!bm[k] || !bu[k])
			return 1;
	}
	if (!raw_map || !raw_unmap)
		return 1;

	double warm_m, warm_u;
	if (round_raw(&c, &warm_m, &warm_u) || round_backend(&c, 8, &warm_m, &warm_u)) {
		printf("bench_vfio: warm-up failed: %s\n", strerror(errno));
		return 1;
	}
	/* Interleave the variants in every round so that drift hits all alike. */
	for (unsigned i = 0; i < rounds; i++) {
		if (round_raw(&c, &raw_map[i], &raw_unmap[i])) {
			printf("bench_vfio: raw ioctl failed: %s\n", strerror(errno));
			return 1;
		}
		for (unsigned k = 0; k < NB; k++)
			if (round_backend(&c, batches[k], &bm[k][i], &bu[k][i])) {
				printf("bench_vfio: backend batch %u failed\n", batches[k]);
				return 1;
			}
	}

	static uint8_t src[PG];
	memset(src, 0x5a, sizeof(src));
	double cc[9];
	for (unsigned i = 0; i < 9; i++)
		cc[i] = clear_copy_ns(ai.base, src, 2000);
	double clear_copy = median(cc, 9);

	struct utsname un;
	uname(&un);
	double rm = median(raw_map, rounds), ru = median(raw_unmap, rounds);
	struct vdemux_vfio_stats st;
	vdemux_vfio_stats(c.be, &st, sizeof(st));
	printf("bench_vfio: kernel %s, device %s, group %s, %u pages per round, median of %u rounds\n",
	       un.release, bdf, path, NPAGES, rounds);
	printf("%-7s %-22s %12s %12s %10s\n", "op", "how", "ioctls/page", "ns/page", "vs 1/call");
	printf("%-7s %-22s %12.3f %12.0f %10.2f\n", "map", "ioctl, one per call", 1.0, rm, 1.0);
	for (unsigned k = 0; k < NB; k++) {
		double v = median(bm[k], rounds);
		char how[32];
		snprintf(how, sizeof(how), "backend, batch %u", batches[k]);
		printf("%-7s %-22s %12.3f %12.0f %10.2f\n", "map", how, 1.0, v, v / rm);
	}
	printf("%-7s %-22s %12.3f %12.0f %10.2f\n", "unmap", "ioctl, one per call", 1.0, ru, 1.0);
	for (unsigned k = 0; k < NB; k++) {
		double v = median(bu[k], rounds);
		char how[32];
		snprintf(how, sizeof(how), "backend, batch %u", batches[k]);
		printf("%-7s %-22s %12.3f %12.0f %10.2f\n", "unmap", how, 1.0 / batches[k], v, v / ru);
	}
	printf("%-7s %-22s %12s %12.0f %10s\n", "copy", "clear + copy 4 KiB", "-", clear_copy, "-");
	printf("flip (map + unmap, batch 32) / (clear + copy 4 KiB): %.1f\n",
	       (median(bm[2], rounds) + median(bu[2], rounds)) / clear_copy);
	printf("backend: %llu MAP_DMA, %llu UNMAP_DMA calls, %llu errors\n",
	       (unsigned long long)st.map_calls, (unsigned long long)st.unmap_calls,
	       (unsigned long long)st.errors);

	c.be->vm_detach(c.be, c.vm);
	c.be->free(c.be);
	vdemux_arena_destroy(arena);
	for (unsigned k = 0; k < NB; k++) {
		free(bm[k]);
		free(bu[k]);
	}
	free(raw_map);
	free(raw_unmap);
	return 0;
}

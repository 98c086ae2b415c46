/* SPDX-License-Identifier: MIT */
/* probe_vfio: VFIO type1 works in the lab guest with the emulated e1000e
 * bound to vfio-pci, and the device's own DMA goes where the IOMMU says:
 * into the page mapped at an IOVA, into the new page after a remap, and
 * nowhere after an unmap. Exit 0 on success, 1 on failure, 77 if VFIO or the
 * device is absent. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "vfio_dev.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGE 4096UL
#define IOVA 0x100000ULL

static int failures;

static void check(int ok, const char *what)
{
	printf("%s: %s\n", ok ? "ok" : "FAIL", what);
	if (!ok)
		failures++;
}

int main(void)
{
	if (access("/dev/vfio/vfio", F_OK) != 0) {
		printf("SKIP: /dev/vfio/vfio is absent (vfio modules not loaded?)\n");
		return 77;
	}
	char bdf[32];
	if (vd_find_pci(VD_E1000E_VENDOR, VD_E1000E_DEVICE, bdf, sizeof(bdf)) < 0) {
		printf("SKIP: no e1000e (8086:10d3) PCI device\n");
		return 77;
	}

	struct vd_dev d;
	if (vd_open(&d, bdf) < 0) {
		printf("FAIL: %s\n", d.err);
		return 1;
	}
	printf("e1000e %s, iommu group %d, VFIO_GET_API_VERSION %d, TYPE1v2 ok\n", d.bdf, d.group_id,
	       d.api_version);

	uint32_t avail0 = 0, avail1 = 0;
	int r = vd_dma_avail(&d, &avail0);
	if (r < 0) {
		printf("FAIL: VFIO_IOMMU_GET_INFO DMA_AVAIL: %s\n", strerror(-r));
		return 1;
	}
	printf("dma_avail %u\n", avail0);

	int fd = memfd_create("probe-vfio", MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, 2 * PAGE) < 0) {
		perror("FAIL: memfd");
		return 1;
	}
	uint8_t *mem = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (mem == MAP_FAILED) {
		perror("FAIL: mmap");
		return 1;
	}
	uint8_t *a = mem, *b = mem + PAGE;
	memset(mem, 0, 2 * PAGE);

	r = vd_map_dma(&d, a, IOVA, PAGE);
	check(r == 0, "MAP_DMA page A at IOVA 0x100000");
	if (r < 0)
		return 1;
	vd_dma_avail(&d, &avail1);
	printf("dma_avail %u after one mapping\n", avail1);
	check(avail1 == avail0 - 1, "dma_avail dropped by one");
	r = vd_map_dma(&d, b, IOVA, PAGE);
	check(r == -EEXIST, "second MAP_DMA at the same IOVA fails with EEXIST");

	/* The device's DMA: a TX descriptor write-back (DD bit) at IOVA. */
	r = vd_map_bar0(&d);
	if (r == 0)
		r = vd_enable_bus_master(&d);
	if (r < 0) {
		printf("FAIL: BAR0 mmap / bus master: %s\n", strerror(-r));
		return 1;
	}
	printf("BAR0 mapped, %zu bytes\n", d.bar0_size);

	vd_e1000e_tx_prepare(a, IOVA);
	int head = vd_e1000e_tx_kick(&d, IOVA);
	printf("kick 1: TDH %d\n", head);
	check(vd_e1000e_tx_done(a), "device wrote DD into page A (mapped at the IOVA)");

	uint64_t unmapped = 0;
	r = vd_unmap_dma(&d, IOVA, PAGE, &unmapped);
	check(r == 0 && unmapped == PAGE, "UNMAP_DMA returns the page size");
	r = vd_map_dma(&d, b, IOVA, PAGE);
	check(r == 0, "MAP_DMA page B at the same IOVA");
	vd_e1000e_tx_prepare(a, IOVA);
	vd_e1000e_tx_prepare(b, IOVA);
	head = vd_e1000e_tx_kick(&d, IOVA);
	printf("kick 2: TDH %d\n", head);
	check(vd_e1000e_tx_done(b), "after remap, device wrote DD into page B");
	check(!vd_e1000e_tx_done(a), "after remap, page A untouched");

	r = vd_unmap_dma(&d, IOVA, PAGE, &unmapped);
	check(r == 0 && unmapped == PAGE, "UNMAP_DMA of page B");
	vd_e1000e_tx_prepare(a, IOVA);
	vd_e1000e_tx_prepare(b, IOVA);
	static uint8_t snap[2 * PAGE];
	memcpy(snap, mem, sizeof(snap));
	head = vd_e1000e_tx_kick(&d, IOVA);
	printf("kick 3 (nothing mapped): TDH %d\n", head);
	check(memcmp(snap, mem, sizeof(snap)) == 0,
	      "with the IOVA unmapped, the device's write is blocked (no page changed)");

	vd_dma_avail(&d, &avail1);
	check(avail1 == avail0, "dma_avail back to its first value");

	vd_close(&d);
	if (failures) {
		printf("FAIL: probe_vfio: %d checks failed\n", failures);
		return 1;
	}
	printf("PASS: probe_vfio\n");
	return 0;
}

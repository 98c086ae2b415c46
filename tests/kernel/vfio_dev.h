/* SPDX-License-Identifier: MIT */
/* Minimal VFIO (type1 IOMMU) helpers for kernel-lab tests, plus a tiny e1000e
 * TX-ring driver that makes the device DMA a descriptor write-back.
 *
 * Typical use (the device already bound to vfio-pci, e.g. by
 * `vmrun.sh --vfio-bind-e1000e`):
 *   char bdf[32];
 *   if (vd_find_pci(VD_E1000E_VENDOR, VD_E1000E_DEVICE, bdf, sizeof bdf)) return 77;
 *   struct vd_dev d;
 *   if (vd_open(&d, bdf) < 0) { puts(d.err); return 1; }
 *   vd_map_dma(&d, page, iova, 4096);
 *
 * Functions return 0 (or a non-negative value) on success and -errno on
 * failure; vd_open also leaves a message in d->err. Nothing is printed. */
#ifndef VDEMUX_TESTS_VFIO_DEV_H
#define VDEMUX_TESTS_VFIO_DEV_H

#include <stddef.h>
#include <stdint.h>

#define VD_E1000E_VENDOR 0x8086
#define VD_E1000E_DEVICE 0x10d3

struct vd_dev {
	int container; /* /dev/vfio/vfio */
	int group;     /* /dev/vfio/<group_id> */
	int device;    /* from VFIO_GROUP_GET_DEVICE_FD */
	int group_id;
	int api_version; /* VFIO_GET_API_VERSION */
	char bdf[32];	 /* e.g. 0000:00:02.0 */
	volatile uint8_t *bar0;
	size_t bar0_size;
	uint64_t cfg_offset; /* offset of the PCI config region in the device fd */
	char err[200];
};

/* First PCI device with this vendor:device id, by scanning /sys/bus/pci/devices.
 * 0 and its address in bdf, or -ENODEV. */
int vd_find_pci(uint16_t vendor, uint16_t device, char *bdf, size_t len);

/* Opens the container (checking VFIO_GET_API_VERSION and VFIO_TYPE1v2_IOMMU),
 * the device's IOMMU group (checking it is viable), sets the container and
 * VFIO_SET_IOMMU(VFIO_TYPE1v2_IOMMU), and gets the device fd. */
int vd_open(struct vd_dev *d, const char *bdf);

/* VFIO_IOMMU_GET_INFO: the DMA_AVAIL capability (mappings still allowed). */
int vd_dma_avail(struct vd_dev *d, uint32_t *avail);

/* VFIO_IOMMU_MAP_DMA read/write of [vaddr, vaddr+size) at iova. */
int vd_map_dma(struct vd_dev *d, void *vaddr, uint64_t iova, uint64_t size);

/* VFIO_IOMMU_UNMAP_DMA; *unmapped (if not NULL) gets the size the kernel reports. */
int vd_unmap_dma(struct vd_dev *d, uint64_t iova, uint64_t size, uint64_t *unmapped);

/* PCI config space through the VFIO config region. */
int vd_cfg_read(struct vd_dev *d, uint32_t off, void *buf, size_t len);
int vd_cfg_write(struct vd_dev *d, uint32_t off, const void *buf, size_t len);

/* Sets Memory Space and Bus Master in the PCI command register. */
int vd_enable_bus_master(struct vd_dev *d);

/* mmap()s BAR0 into d->bar0 / d->bar0_size. */
int vd_map_bar0(struct vd_dev *d);

void vd_close(struct vd_dev *d);

/* ---- e1000e (82574L) TX ring: a real device DMA through the IOMMU ----
 * vd_e1000e_tx_prepare() writes, in host memory, a ring of 8 legacy TX
 * descriptors whose first one asks for a status write-back (RS) and points at
 * a small frame in the same 4 KiB page (at ring_iova + 2048).
 * vd_e1000e_tx_kick() (BAR0 mapped, bus master on) programs
 * TDBAL/TDBAH/TDLEN/TDH/TDT/TCTL with the ring at ring_iova and moves the
 * tail: the device reads descriptor 0 and DMAs its status back with the DD
 * bit set, into whatever page the IOMMU maps at ring_iova (if any).
 * Returns the head register (TDH) afterwards, or -errno. */
void vd_e1000e_tx_prepare(void *page, uint64_t ring_iova);
int vd_e1000e_tx_kick(struct vd_dev *d, uint64_t ring_iova);
/* 1 if descriptor 0 in this page has its DD bit set. */
int vd_e1000e_tx_done(const void *page);

#endif

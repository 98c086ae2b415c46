/* SPDX-License-Identifier: MIT */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "vfio_dev.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/vfio.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static unsigned long read_hex(const char *dir, const char *file)
{
	char path[PATH_MAX], buf[32] = "";
	int n = snprintf(path, sizeof(path), "%s/%s", dir, file);
	if (n < 0 || (size_t)n >= sizeof(path))
		return ~0UL;
	FILE *f = fopen(path, "re");
	if (!f)
		return ~0UL;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = 0;
	fclose(f);
	return strtoul(buf, NULL, 16);
}

int vd_find_pci(uint16_t vendor, uint16_t device, char *bdf, size_t len)
{
	const char *root = "/sys/bus/pci/devices";
	DIR *dir = opendir(root);
	if (!dir)
		return -ENODEV;
	struct dirent *e;
	int r = -ENODEV;
	while ((e = readdir(dir))) {
		if (e->d_name[0] == '.')
			continue;
		char path[PATH_MAX];
		int n = snprintf(path, sizeof(path), "%s/%s", root, e->d_name);
		if (n < 0 || (size_t)n >= sizeof(path))
			continue;
		if (read_hex(path, "vendor") == vendor && read_hex(path, "device") == device) {
			snprintf(bdf, len, "%s", e->d_name);
			r = 0;
			break;
		}
	}
	closedir(dir);
	return r;
}

static int fail(struct vd_dev *d, int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(d->err, sizeof(d->err), fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < sizeof(d->err))
		snprintf(d->err + n, sizeof(d->err) - (size_t)n, ": %s", strerror(err));
	return -err;
}

int vd_open(struct vd_dev *d, const char *bdf)
{
	memset(d, 0, sizeof(*d));
	d->container = d->group = d->device = -1;
	snprintf(d->bdf, sizeof(d->bdf), "%s", bdf);

	d->container = open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
	if (d->container < 0)
		return fail(d, errno, "open /dev/vfio/vfio");
	d->api_version = ioctl(d->container, VFIO_GET_API_VERSION);
	if (d->api_version != VFIO_API_VERSION)
		return fail(d, EPROTO, "VFIO_GET_API_VERSION %d, want %d", d->api_version,
			    VFIO_API_VERSION);
	if (ioctl(d->container, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) != 1)
		return fail(d, ENOTSUP, "VFIO_CHECK_EXTENSION(VFIO_TYPE1v2_IOMMU)");

	char path[PATH_MAX], link[PATH_MAX];
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/iommu_group", bdf);
	ssize_t n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return fail(d, errno, "readlink %s (IOMMU on?)", path);
	link[n] = 0;
	const char *slash = strrchr(link, '/');
	d->group_id = atoi(slash ? slash + 1 : link);

	snprintf(path, sizeof(path), "/dev/vfio/%d", d->group_id);
	d->group = open(path, O_RDWR | O_CLOEXEC);
	if (d->group < 0)
		return fail(d, errno, "open %s (device bound to vfio-pci?)", path);
	struct vfio_group_status st = {.argsz = sizeof(st)};
	if (ioctl(d->group, VFIO_GROUP_GET_STATUS, &st) < 0)
		return fail(d, errno, "VFIO_GROUP_GET_STATUS");
	if (!(st.flags & VFIO_GROUP_FLAGS_VIABLE))
		return fail(d, EBUSY, "group %d not viable (devices bound to other drivers)",
			    d->group_id);
	if (ioctl(d->group, VFIO_GROUP_SET_CONTAINER, &d->container) < 0)
		return fail(d, errno, "VFIO_GROUP_SET_CONTAINER");
	if (ioctl(d->container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU) < 0)
		return fail(d, errno, "VFIO_SET_IOMMU(VFIO_TYPE1v2_IOMMU)");
	d->device = ioctl(d->group, VFIO_GROUP_GET_DEVICE_FD, bdf);
	if (d->device < 0)
		return fail(d, errno, "VFIO_GROUP_GET_DEVICE_FD(%s)", bdf);

	struct vfio_region_info cfg = {.argsz = sizeof(cfg), .index = VFIO_PCI_CONFIG_REGION_INDEX};
	if (ioctl(d->device, VFIO_DEVICE_GET_REGION_INFO, &cfg) < 0)
		return fail(d, errno, "VFIO_DEVICE_GET_REGION_INFO(config)");
	d->cfg_offset = cfg.offset;
	return 0;
}

int vd_dma_avail(struct vd_dev *d, uint32_t *avail)
{
	size_t sz = sizeof(struct vfio_iommu_type1_info);
	struct vfio_iommu_type1_info *info = NULL;
	for (int pass = 0; pass < 2; pass++) {
		struct vfio_iommu_type1_info *p = realloc(info, sz);
		if (!p) {
			free(info);
			return -ENOMEM;
		}
		info = p;
		memset(info, 0, sz);
		info->argsz = (uint32_t)sz;
		if (ioctl(d->container, VFIO_IOMMU_GET_INFO, info) < 0) {
			int e = errno;
			free(info);
			return -e;
		}
		if (info->argsz <= sz)
			break;
		sz = info->argsz; /* capabilities need more room: ask again */
	}
	int r = -ENOENT;
	if (info->flags & VFIO_IOMMU_INFO_CAPS) {
		uint32_t off = info->cap_offset;
		while (off && off + sizeof(struct vfio_info_cap_header) <= sz) {
			const struct vfio_info_cap_header *h = (const void *)((const char *)info + off);
			if (h->id == VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL) {
				*avail = ((const struct vfio_iommu_type1_info_dma_avail *)h)->avail;
				r = 0;
				break;
			}
			off = h->next;
		}
	}
	free(info);
	return r;
}

int vd_map_dma(struct vd_dev *d, void *vaddr, uint64_t iova, uint64_t size)
{
	struct vfio_iommu_type1_dma_map m = {
		.argsz = sizeof(m),
		.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
		.vaddr = (uint64_t)(uintptr_t)vaddr,
		.iova = iova,
		.size = size,
	};
	return ioctl(d->container, VFIO_IOMMU_MAP_DMA, &m) < 0 ? -errno : 0;
}

int vd_unmap_dma(struct vd_dev *d, uint64_t iova, uint64_t size, uint64_t *unmapped)
{
	struct vfio_iommu_type1_dma_unmap u = {
		.argsz = sizeof(u),
		.iova = iova,
		.size = size,
	};
	if (ioctl(d->container, VFIO_IOMMU_UNMAP_DMA, &u) < 0)
		return -errno;
	if (unmapped)
		*unmapped = u.size;
	return 0;
}

int vd_cfg_read(struct vd_dev *d, uint32_t off, void *buf, size_t len)
{
	ssize_t n = pread(d->device, buf, len, (off_t)(d->cfg_offset + off));
	return n == (ssize_t)len ? 0 : n < 0 ? -errno : -EIO;
}

int vd_cfg_write(struct vd_dev *d, uint32_t off, const void *buf, size_t len)
{
	ssize_t n = pwrite(d->device, buf, len, (off_t)(d->cfg_offset + off));
	return n == (ssize_t)len ? 0 : n < 0 ? -errno : -EIO;
}

int vd_enable_bus_master(struct vd_dev *d)
{
	uint16_t cmd;
	int r = vd_cfg_read(d, 0x04, &cmd, sizeof(cmd)); /* PCI_COMMAND */
	if (r < 0)
		return r;
	cmd |= 0x0002 | 0x0004; /* PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER */
	return vd_cfg_write(d, 0x04, &cmd, sizeof(cmd));
}

int vd_map_bar0(struct vd_dev *d)
{
	struct vfio_region_info bar = {.argsz = sizeof(bar), .index = VFIO_PCI_BAR0_REGION_INDEX};
	if (ioctl(d->device, VFIO_DEVICE_GET_REGION_INFO, &bar) < 0)
		return -errno;
	if (!(bar.flags & VFIO_REGION_INFO_FLAG_MMAP) || bar.size == 0)
		return -ENOTSUP;
	void *p = mmap(NULL, bar.size, PROT_READ | PROT_WRITE, MAP_SHARED, d->device, (off_t)bar.offset);
	if (p == MAP_FAILED)
		return -errno;
	d->bar0 = p;
	d->bar0_size = bar.size;
	return 0;
}

void vd_close(struct vd_dev *d)
{
	if (d->bar0)
		munmap((void *)d->bar0, d->bar0_size);
	if (d->device >= 0)
		close(d->device);
	if (d->group >= 0)
		close(d->group);
	if (d->container >= 0)
		close(d->container);
	d->bar0 = NULL;
	d->device = d->group = d->container = -1;
}

/* ---- e1000e TX ring ---- */

enum {
	E1000_TCTL = 0x0400,
	E1000_TDBAL = 0x3800,
	E1000_TDBAH = 0x3804,
	E1000_TDLEN = 0x3808,
	E1000_TDH = 0x3810,
	E1000_TDT = 0x3818,
};
#define E1000_TCTL_EN 0x00000002u
#define E1000_TCTL_PSP 0x00000008u
#define TXD_CMD_EOP 0x01u
#define TXD_CMD_IFCS 0x02u
#define TXD_CMD_RS 0x08u
#define TXD_STAT_DD 0x01u
#define RING_DESCS 8u /* TDLEN must be a multiple of 128 bytes */
#define FRAME_OFF 2048u
#define FRAME_LEN 60u

struct e1000_tx_desc {
	uint64_t buffer_addr;
	uint16_t length;
	uint8_t cso;
	uint8_t cmd;
	uint8_t status;
	uint8_t css;
	uint16_t special;
};

static void reg_write(struct vd_dev *d, uint32_t reg, uint32_t v)
{
	*(volatile uint32_t *)(d->bar0 + reg) = v;
}

static uint32_t reg_read(struct vd_dev *d, uint32_t reg)
{
	return *(volatile uint32_t *)(d->bar0 + reg);
}

void vd_e1000e_tx_prepare(void *page, uint64_t ring_iova)
{
	struct e1000_tx_desc *ring = page;
	memset(ring, 0, RING_DESCS * sizeof(*ring));
	ring[0].buffer_addr = ring_iova + FRAME_OFF;
	ring[0].length = FRAME_LEN;
	ring[0].cmd = TXD_CMD_EOP | TXD_CMD_IFCS | TXD_CMD_RS;
	uint8_t *frame = (uint8_t *)page + FRAME_OFF;
	memset(frame, 0xff, 6);	    /* broadcast; there is no peer anyway */
	memset(frame + 6, 0x02, 6); /* locally administered source */
	frame[12] = 0x88;	    /* local experimental ethertype 0x88b5 */
	frame[13] = 0xb5;
}

int vd_e1000e_tx_done(const void *page)
{
	const volatile struct e1000_tx_desc *ring = page;
	return (ring[0].status & TXD_STAT_DD) != 0;
}

int vd_e1000e_tx_kick(struct vd_dev *d, uint64_t ring_iova)
{
	if (!d->bar0 || d->bar0_size < E1000_TDT + 4)
		return -EINVAL;
	reg_write(d, E1000_TCTL, 0);
	reg_write(d, E1000_TDBAL, (uint32_t)ring_iova);
	reg_write(d, E1000_TDBAH, (uint32_t)(ring_iova >> 32));
	reg_write(d, E1000_TDLEN, RING_DESCS * sizeof(struct e1000_tx_desc));
	reg_write(d, E1000_TDH, 0);
	reg_write(d, E1000_TDT, 0);
	reg_write(d, E1000_TCTL, E1000_TCTL_EN | E1000_TCTL_PSP);
	reg_write(d, E1000_TDT, 1);
	/* The emulated device works synchronously, a real one would not: wait
	 * (up to 100 ms) for the head to move past descriptor 0. */
	uint32_t head = 0;
	for (int i = 0; i < 1000; i++) {
		head = reg_read(d, E1000_TDH);
		if (head == 1)
			break;
		nanosleep(&(struct timespec){.tv_nsec = 100000}, NULL);
	}
	reg_write(d, E1000_TCTL, 0);
	return (int)head;
}

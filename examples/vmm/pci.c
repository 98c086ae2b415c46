/* SPDX-License-Identifier: MIT */
/*
 * PCI configuration mechanism #1 (ports 0xcf8 / 0xcfc..0xcff) on bus 0:
 * 00:00.0 a host bridge (Linux's sanity check looks for one), 00:01.0 the
 * guest's virtio-net device. Everything else reads as absent (all ones).
 */
#include <string.h>

#include "vmm.h"

#define PCI_ADDR 0xcf8
#define PCI_DATA 0xcfc

static uint32_t bridge_read(unsigned reg)
{
	switch (reg) {
	case 0x00: return 0x12378086u; /* Intel 440FX host bridge */
	case 0x08: return 0x06000000u; /* class: host bridge */
	default: return 0;
	}
}

static uint32_t cfg_read(struct guest *g, unsigned dev, unsigned fn, unsigned reg)
{
	if (fn != 0)
		return 0xffffffffu;
	if (dev == 0)
		return bridge_read(reg);
	if (dev == PCI_VNET_SLOT)
		return vnet_cfg_read(g, reg);
	return 0xffffffffu;
}

int pci_io(struct guest *g, uint16_t port, bool out, uint8_t *data, unsigned size)
{
	if (port >= PCI_ADDR && port < PCI_ADDR + 4) {
		/* Only whole 32-bit accesses select a register (byte writes to
		 * 0xcfb are the mechanism #2 probe). */
		if (port == PCI_ADDR && size == 4) {
			if (out)
				memcpy(&g->pci_addr, data, 4);
			else
				memcpy(data, &g->pci_addr, 4);
		} else if (!out) {
			memset(data, 0xff, size);
		}
		return 1;
	}
	if (port < PCI_DATA || port >= PCI_DATA + 4)
		return 0;

	uint32_t a = g->pci_addr;
	unsigned off = port - PCI_DATA;
	unsigned bus = (a >> 16) & 0xff, dev = (a >> 11) & 0x1f, fn = (a >> 8) & 7;
	unsigned reg = a & 0xfc;
	if (!(a & 0x80000000u) || bus != 0 || off + size > 4) {
		if (!out)
			memset(data, 0xff, size);
		return 1;
	}
	if (out) {
		uint32_t v = 0;
		memcpy(&v, data, size);
		if (dev == PCI_VNET_SLOT && fn == 0)
			vnet_cfg_write(g, reg + off, v, size);
		return 1;
	}
	uint32_t v = cfg_read(g, dev, fn, reg) >> (8 * off);
	memcpy(data, &v, size);
	return 1;
}

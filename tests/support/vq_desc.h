/* SPDX-License-Identifier: MIT */
/*
 * A split-virtqueue descriptor as a guest writes it (virtio 1.x 2.7.5):
 * 16 bytes, little-endian. Header-only and public-API-free, so that tests
 * of the public queue and the fuzzers may use it as well as the simulated
 * driver.
 */
#ifndef VT_VQ_DESC_H
#define VT_VQ_DESC_H

#include <endian.h>
#include <stdint.h>
#include <string.h>

static inline void vq_desc_put(uint8_t *p, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	uint64_t a = htole64(addr);
	uint32_t l = htole32(len);
	uint16_t f = htole16(flags), n = htole16(next);

	memcpy(p, &a, 8);
	memcpy(p + 8, &l, 4);
	memcpy(p + 12, &f, 2);
	memcpy(p + 14, &n, 2);
}

#endif

/* SPDX-License-Identifier: MIT */
/*
 * The CMOS clock (ports 0x70/0x71), read-only: the host's UTC time in BCD,
 * 24-hour mode, never "update in progress". Without it Linux spins on the
 * absent chip at boot, tens of thousands of I/O exits.
 *
 * Only the guest's vCPU thread touches it.
 */
#include <string.h>
#include <time.h>

#include "vmm.h"

static uint8_t bcd(int v)
{
	return (uint8_t)(((v / 10) << 4) | (v % 10));
}

static uint8_t rtc_reg(unsigned reg)
{
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	switch (reg) {
	case 0x00: return bcd(tm.tm_sec);
	case 0x02: return bcd(tm.tm_min);
	case 0x04: return bcd(tm.tm_hour);
	case 0x06: return bcd(tm.tm_wday + 1);
	case 0x07: return bcd(tm.tm_mday);
	case 0x08: return bcd(tm.tm_mon + 1);
	case 0x09: return bcd(tm.tm_year % 100);
	case 0x32: return bcd(19 + tm.tm_year / 100); /* century */
	case 0x0a: return 0x26;			      /* 32.768 kHz, 1024 Hz, no update in progress */
	case 0x0b: return 0x02;			      /* 24-hour, BCD, no interrupts */
	case 0x0d: return 0x80;			      /* battery good */
	default: return 0;
	}
}

int rtc_io(struct guest *g, uint16_t port, bool out, uint8_t *data, unsigned size)
{
	if (port != 0x70 && port != 0x71)
		return 0;
	if (out) {
		if (port == 0x70)
			g->rtc_index = *data & 0x7f; /* bit 7 is the NMI mask */
		return 1;
	}
	memset(data, 0, size);
	data[0] = port == 0x70 ? g->rtc_index : rtc_reg(g->rtc_index);
	return 1;
}

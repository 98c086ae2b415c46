/* SPDX-License-Identifier: MIT */
/* What the benchmark programs share. */
#ifndef VDEMUX_BENCH_UTIL_H
#define VDEMUX_BENCH_UTIL_H

#include <stdio.h>

/* The 1-minute load average, printed beside the figures (-1 if unknown):
 * on a shared machine it says how much to trust them. */
static inline double loadavg(void)
{
	double l = -1;
	FILE *f = fopen("/proc/loadavg", "r");

	if (f) {
		if (fscanf(f, "%lf", &l) != 1)
			l = -1;
		fclose(f);
	}
	return l;
}

#endif

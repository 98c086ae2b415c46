/* SPDX-License-Identifier: MIT */
/* Reading a fuzz input byte by byte: past its end, every byte reads 0, so
 * a target never needs to check what is left. */
#ifndef VDEMUX_FUZZ_INPUT_H
#define VDEMUX_FUZZ_INPUT_H

#include <stddef.h>
#include <stdint.h>

struct in {
	const uint8_t *p;
	size_t n;
};

static inline unsigned next(struct in *in)
{
	if (!in->n)
		return 0;
	in->n--;
	return *in->p++;
}

#endif

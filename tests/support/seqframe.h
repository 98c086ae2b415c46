/* SPDX-License-Identifier: MIT */
/* Frames that say who sent them: destination MAC, a fixed source, the
 * experimental EtherType 0x88b5, then a sequence number and the length (host
 * order), then bytes that follow from both. A reader checks a frame whole
 * with seqframe_ok(). Shared by the virtio tests and fuzzer; no CMocka. */
#ifndef VT_SEQFRAME_H
#define VT_SEQFRAME_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define SEQFRAME_HDR 22u /* bytes before the pattern */

static inline uint8_t seqframe_byte(uint32_t seq, uint32_t i)
{
	return (uint8_t)((seq * 2654435761u + i * 40503u) >> 13);
}

/* Write a frame of @len (>= SEQFRAME_HDR) bytes to @b. */
static inline uint32_t seqframe_make(uint8_t *b, const uint8_t dst[6], uint32_t seq, uint32_t len)
{
	static const uint8_t src[6] = {0x02, 0, 0, 0, 0, 0x99};

	memcpy(b, dst, 6);
	memcpy(b + 6, src, 6);
	b[12] = 0x88;
	b[13] = 0xb5;
	memcpy(b + 14, &seq, 4);
	memcpy(b + 18, &len, 4);
	for (uint32_t i = SEQFRAME_HDR; i < len; i++)
		b[i] = seqframe_byte(seq, i);
	return len;
}

/* The frame's sequence number and length fields. */
static inline void seqframe_fields(const uint8_t *b, uint32_t *seq, uint32_t *len)
{
	memcpy(seq, b + 14, 4);
	memcpy(len, b + 18, 4);
}

/* Index of the first byte of the pattern that differs, or @len if none. */
static inline uint32_t seqframe_first_bad(const uint8_t *b, uint32_t seq, uint32_t len)
{
	uint32_t i;

	for (i = SEQFRAME_HDR; i < len && b[i] == seqframe_byte(seq, i); i++)
		;
	return i;
}

#endif

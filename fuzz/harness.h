/* SPDX-License-Identifier: MIT */
/*
 * What the fuzz targets share: the entry point libFuzzer (or replay.c)
 * calls; CHECK, which stops at the first broken promise and names the
 * condition (libFuzzer keeps the input that broke it); and guest RAM
 * between two inaccessible pages, so that a device access past either end
 * faults where it happens.
 */
#ifndef VDEMUX_FUZZ_HARNESS_H
#define VDEMUX_FUZZ_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define PG 4096u

#define CHECK(c)                                                                \
	do {                                                                    \
		if (!(c)) {                                                     \
			fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #c); \
			abort();                                                \
		}                                                               \
	} while (0)

struct guarded {
	uint8_t *map; /* guard page, RAM, guard page */
	uint8_t *ram;
	uint64_t size;
};

/* Reserve @size bytes (whole pages) of RAM between two guard pages, with
 * @prot (PROT_NONE where a backend maps the pages in); aborts if it cannot.
 * Returns the RAM. */
static inline uint8_t *guarded_map(struct guarded *g, uint64_t size, int prot)
{
	g->size = size;
	g->map = mmap(NULL, size + 2 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(g->map != MAP_FAILED);
	g->ram = g->map + PG;
	CHECK(prot == PROT_NONE || mprotect(g->ram, size, prot) == 0);
	return g->ram;
}

static inline void guarded_unmap(struct guarded *g)
{
	munmap(g->map, g->size + 2 * PG);
}

#endif

/* SPDX-License-Identifier: MIT */
/* What every part of the library may use: allocation through the embedder's
 * hooks, the options-struct convention, logging through a hook, and a few
 * constants. Engine-independent: backends include this and the backend
 * authors' header, never a header of src/core. Not installed. */
#ifndef VDEMUX_COMMON_UTIL_H
#define VDEMUX_COMMON_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <vdemux/common.h>

#define PAGE VDEMUX_PAGE_SIZE

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* In a consistency check with (char *msg, size_t msglen) for its report:
 * write the violation there and return -EUCLEAN. The file includes
 * <errno.h> and <stdio.h>. */
#define VD_CHECK_FAIL(...)                                  \
	do {                                                \
		if (msg && msglen)                          \
			snprintf(msg, msglen, __VA_ARGS__); \
		return -EUCLEAN;                            \
	} while (0)

struct vdemux_backend;

void *vd_calloc(const struct vdemux_alloc_hooks *h, size_t n, size_t size);
void vd_free(const struct vdemux_alloc_hooks *h, void *p);
bool vd_hooks_valid(const struct vdemux_alloc_hooks *h);

/* The size-prefixed options convention: sz covers at least the first field,
 * and bytes past @known are zero. Returns 0 or -EINVAL. */
int vd_opts_check(const void *opts, size_t known);
/* Copy user options of size opts->sz into a zeroed struct of @known bytes. */
void vd_opts_copy(void *dst, const void *opts, size_t known);

/* Format a message and hand it to @fn (nothing when fn is NULL). */
void vd_log_to(vdemux_log_fn fn, void *payload, int level, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Format a message from @ap and hand it to @fn (not NULL). */
void vd_vlog_to(vdemux_log_fn fn, void *payload, int level, const char *fmt, va_list ap)
	__attribute__((format(printf, 4, 0)));
/* Log through the hook the engine gave the backend at registration. */
void vd_backend_log(const struct vdemux_backend *be, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The three kinds of table change a backend applies in batches. Backends
 * that implement all three with one function taking the kind define their
 * operations with VD_BACKEND_BATCH_OPS. */
enum vd_tbl_op { VD_OP_MAP = 0, VD_OP_UNMAP = 1, VD_OP_REMAP = 2 };

#define VD_BACKEND_BATCH_OPS(prefix, batch)                                                         \
	static int prefix##_map(struct vdemux_backend *be, void *ctx, const struct vdemux_map *m,   \
				unsigned n, unsigned *done)                                         \
	{                                                                                           \
		return batch(be, ctx, m, n, done, VD_OP_MAP);                                       \
	}                                                                                           \
	static int prefix##_unmap(struct vdemux_backend *be, void *ctx, const struct vdemux_map *m, \
				  unsigned n, unsigned *done)                                       \
	{                                                                                           \
		return batch(be, ctx, m, n, done, VD_OP_UNMAP);                                     \
	}                                                                                           \
	static int prefix##_remap(struct vdemux_backend *be, void *ctx, const struct vdemux_map *m, \
				  unsigned n, unsigned *done)                                       \
	{                                                                                           \
		return batch(be, ctx, m, n, done, VD_OP_REMAP);                                     \
	}

#endif

/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <stdarg.h>
#include <stdio.h>

#include <vdemux/sys/backend.h>

#include "common/util.h"

bool vd_hooks_valid(const struct vdemux_alloc_hooks *h)
{
	return (h->calloc == NULL) == (h->free == NULL);
}

void *vd_calloc(const struct vdemux_alloc_hooks *h, size_t n, size_t size)
{
	if (n == 0 || size == 0)
		n = size = 1;
	if (h && h->calloc)
		return h->calloc(n, size, h->payload);
	return calloc(n, size);
}

void vd_free(const struct vdemux_alloc_hooks *h, void *p)
{
	if (!p)
		return;
	if (h && h->free)
		h->free(p, h->payload);
	else
		free(p);
}

int vd_opts_check(const void *opts, size_t known)
{
	const unsigned char *b = opts;
	size_t sz;

	memcpy(&sz, opts, sizeof(sz));
	if (sz < sizeof(size_t) || sz > 65536)
		return -EINVAL;
	for (size_t i = known; i < sz; i++)
		if (b[i])
			return -EINVAL;
	return 0;
}

void vd_opts_copy(void *dst, const void *opts, size_t known)
{
	size_t sz;

	memset(dst, 0, known);
	memcpy(&sz, opts, sizeof(sz));
	memcpy(dst, opts, sz < known ? sz : known);
}

void vd_vlog_to(vdemux_log_fn fn, void *payload, int level, const char *fmt, va_list ap)
{
	char buf[256];

	vsnprintf(buf, sizeof(buf), fmt, ap);
	fn(level, buf, payload);
}

void vd_log_to(vdemux_log_fn fn, void *payload, int level, const char *fmt, ...)
{
	va_list ap;

	if (!fn)
		return;
	va_start(ap, fmt);
	vd_vlog_to(fn, payload, level, fmt, ap);
	va_end(ap);
}

void vd_backend_log(const struct vdemux_backend *be, int level, const char *fmt, ...)
{
	va_list ap;

	if (!be->log)
		return;
	va_start(ap, fmt);
	vd_vlog_to(be->log, be->log_payload, level, fmt, ap);
	va_end(ap);
}

uint32_t vdemux_version(void)
{
	return (VDEMUX_VERSION_MAJOR << 16) | (VDEMUX_VERSION_MINOR << 8) | VDEMUX_VERSION_PATCH;
}

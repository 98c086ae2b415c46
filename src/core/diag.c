/* SPDX-License-Identifier: MIT */
/* Diagnostics: logging through the embedder's hook, counting rejected input
 * and drops. Reaches only struct vd_diag, the engine's first member. */
#include <errno.h>
#include <stdarg.h>

#include "common/util.h"
#include "core/diag.h"

/* The engine begins with its struct vd_diag (engine.h asserts it). */
static struct vd_diag *diag(struct vdemux_engine *e)
{
	return (struct vd_diag *)(void *)e;
}

void vd_log(const struct vdemux_engine *e, int level, const char *fmt, ...)
{
	const struct vd_diag *d = (const struct vd_diag *)(const void *)e;
	va_list ap;

	if (!d->log)
		return;
	va_start(ap, fmt);
	vd_vlog_to(d->log, d->log_payload, level, fmt, ap);
	va_end(ap);
}

void vd_bad(struct vdemux_engine *e, int which)
{
	diag(e)->bad_input[which]++;
}

int vd_check_burst(struct vdemux_engine *e, const void *array, unsigned n)
{
	if (!array) {
		vd_bad(e, VDEMUX_BAD_NULL);
		return -EINVAL;
	}
	if (n == 0) {
		vd_bad(e, VDEMUX_BAD_BURST_ZERO);
		return -EINVAL;
	}
	return 0;
}

void vd_drop(struct vdemux_engine *e, struct vdemux_vm_stats *vst, int reason)
{
	if (reason <= 0 || reason >= VDEMUX_DROP__COUNT)
		reason = VDEMUX_DROP_NO_DEST;
	diag(e)->drops[reason]++;
	if (vst)
		vst->drops[reason]++;
}

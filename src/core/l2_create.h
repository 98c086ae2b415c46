/* SPDX-License-Identifier: MIT */
/* The built-in classifier, as the engine creates it (with its hooks). */
#ifndef VDEMUX_CORE_L2_CREATE_H
#define VDEMUX_CORE_L2_CREATE_H

#include <vdemux/l2.h>

int vd_l2_create(vdemux_l2 **out, const struct vdemux_l2_opts *opts,
		 const struct vdemux_alloc_hooks *alloc);

#endif

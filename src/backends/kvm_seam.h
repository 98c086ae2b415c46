/* SPDX-License-Identifier: MIT */
/*
 * Internal to libvdemux: a seam in the KVM backend for the tests.
 *
 * The backend makes every mmap(2) of its batches through this hook, so that
 * a test can make one fail in the middle of a burst, before or after the
 * kernel dropped the old mapping, and check that no page is lost. Not
 * exported.
 */
#ifndef VDEMUX_BACKENDS_KVM_SEAM_H
#define VDEMUX_BACKENDS_KVM_SEAM_H

#include <sys/types.h>

#include <vdemux/sys/backend.h>

/** Same contract as mmap(2), plus the payload given with the hook. */
typedef void *(*vdemux_kvm_mmap_fn)(void *addr, size_t len, int prot, int flags, int fd, off_t off,
				    void *payload);

/**
 * Route the backend's mmap(2) calls through @p fn (NULL: back to mmap(2)).
 * @return 0; -EINVAL if @p be is not a KVM backend.
 */
int vdemux_kvm_set_mmap_hook(struct vdemux_backend *be, vdemux_kvm_mmap_fn fn, void *payload);

#endif

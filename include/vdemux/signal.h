/* SPDX-License-Identifier: MIT */
/**
 * @file signal.h
 * @brief How the engine tells a VM that frames are ready, or asks it to
 *        release pages.
 *
 * Signals are coalesced: one per VM per burst call, whatever the number of
 * frames. With an eventfd, the reasons accumulate in the engine and are read
 * (and cleared) with vdemux_vm_take_signals(). A KVM irqfd is an eventfd
 * registered with KVM_IRQFD: writing it injects the guest interrupt, so the
 * eventfd kind covers it (kvm.h has a helper to create one).
 */
#ifndef VDEMUX_SIGNAL_H
#define VDEMUX_SIGNAL_H

#include <vdemux/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Reasons for a signal (a bit mask). */
enum vdemux_signal_reason {
	VDEMUX_SIG_RX = 0x1u,	   /**< new completions are ready */
	VDEMUX_SIG_RELEASE = 0x2u, /**< the pool is low: please re-post (release) pages */
};

/** Kinds of signal. */
enum vdemux_signal_kind {
	VDEMUX_SIGNAL_NONE = 0,	    /**< no signal; the VMM polls */
	VDEMUX_SIGNAL_CALLBACK = 1, /**< call @c cb */
	VDEMUX_SIGNAL_EVENTFD = 2,  /**< write 1 to @c fd (an eventfd or a KVM irqfd) */
};

/**
 * Signal callback, called from the thread running the burst or the call
 * that raised the signal, after the engine's state is consistent. It may
 * call vdemux_vm_poll() and vdemux_vm_take_signals(), and nothing else of
 * the engine.
 */
typedef void (*vdemux_signal_fn)(vdemux_vm_id vm, unsigned reasons, void *payload);

/** A VM's signal configuration. */
struct vdemux_signal {
	enum vdemux_signal_kind kind; /**< which kind */
	int fd;		/**< EVENTFD: the fd for VDEMUX_SIG_RX (and RELEASE unless release_fd is set) */
	int release_fd; /**< EVENTFD: fd for VDEMUX_SIG_RELEASE if flags has VDEMUX_SIGNAL_F_RELEASE_FD */
	uint32_t flags;	     /**< VDEMUX_SIGNAL_F_* */
	vdemux_signal_fn cb; /**< CALLBACK: the function */
	void *payload;	     /**< CALLBACK: its last argument */
};

/** Use @c release_fd for release requests. */
#define VDEMUX_SIGNAL_F_RELEASE_FD 0x1u

#ifdef __cplusplus
}
#endif
#endif

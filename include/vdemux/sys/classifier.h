/**
 * @file sys/classifier.h
 * @brief The classifier interface, for authors of classifiers: frame ->
 *        destination VMs.
 *
 * The engine asks its classifier where each incoming frame goes. The built-in
 * L2 classifier (l2.h) is installed by default; a VMM can install its own
 * with vdemux_engine_set_classifier().
 *
 * Stability: less stable than the rest of the API. Versioned by
 * VDEMUX_CLASSIFIER_VERSION, which may change between minor releases; the
 * engine refuses a classifier whose @c version it does not know. Not included
 * by vdemux.h: include it explicitly.
 */
#ifndef VDEMUX_SYS_CLASSIFIER_H
#define VDEMUX_SYS_CLASSIFIER_H

#include <vdemux/common.h>
#include <vdemux/verdict.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Version of struct vdemux_classifier described by this header. */
#define VDEMUX_CLASSIFIER_VERSION 1u

/**
 * A classifier. Embed it as the first member of your own struct.
 * Mandatory: classify. Optional: vm_removed.
 */
struct vdemux_classifier {
	/** VDEMUX_CLASSIFIER_VERSION. */
	unsigned int version;
	/** Short name for logs. */
	const char *name;
	/**
	 * Examine one frame (untrusted bytes) and fill @p v. It must not
	 * write more than v->cap destinations nor name a VM twice.
	 * @return 0, or a negative errno (the frame is dropped as NO_DEST).
	 */
	int (*classify)(struct vdemux_classifier *cls, const uint8_t *frame, uint32_t len,
			struct vdemux_verdict *v);
	/** The engine removed VM @p vm: forget it. */
	void (*vm_removed)(struct vdemux_classifier *cls, vdemux_vm_id vm);
};

/** Initialiser for struct vdemux_classifier. */
#define VDEMUX_CLASSIFIER_INIT {.version = VDEMUX_CLASSIFIER_VERSION}

#ifdef __cplusplus
}
#endif
#endif

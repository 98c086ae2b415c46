/* SPDX-License-Identifier: MIT */
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

/**
 * Version of struct vdemux_classifier described by this header. Version 2
 * added the read section (read_begin, classify_read, read_end); the engine
 * still takes a version 1 classifier, and reads none of those fields from it.
 */
#define VDEMUX_CLASSIFIER_VERSION 2u
/** The first version, without the read section. */
#define VDEMUX_CLASSIFIER_VERSION_1 1u

/**
 * A classifier. Embed it as the first member of your own struct.
 * Mandatory: classify. Optional: vm_removed; the read section (version 2:
 * read_begin, classify_read and read_end, all three or none).
 *
 * Read section: a classifier whose readers must announce themselves to its
 * writers (so that a writer on another thread frees nothing a reader holds)
 * can pay for that once per engine call instead of once per frame. When all
 * three are set, the engine classifies the frames of one engine call given
 * more than one frame or buffer (vdemux_rx_burst(), vdemux_rx_submit()) with
 * classify_read, between one read_begin and the read_end given its result
 * (a call given one uses classify: one registration either way); it calls read_end before it
 * runs anything else it calls out to (a backend's table update, a signal)
 * and before it returns, so a section lasts at most one call's
 * classifications, and code the engine calls never runs inside one. Calls
 * on one engine are made on one thread at a time, so an engine's sections
 * never overlap; sections of different engines sharing a classifier may.
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
	/**
	 * Version 2, optional. Open a read section on the calling thread.
	 * @return a value given back to read_end (the classifier's own).
	 */
	uintptr_t (*read_begin)(struct vdemux_classifier *cls);
	/**
	 * Version 2, optional. As classify, called only inside a read section
	 * opened by read_begin on the same thread and not yet closed.
	 */
	int (*classify_read)(struct vdemux_classifier *cls, const uint8_t *frame, uint32_t len,
			     struct vdemux_verdict *v);
	/** Version 2, optional. Close the section read_begin returned @p token for. */
	void (*read_end)(struct vdemux_classifier *cls, uintptr_t token);
};

/** Initialiser for struct vdemux_classifier. */
#define VDEMUX_CLASSIFIER_INIT                       \
	{                                            \
		.version = VDEMUX_CLASSIFIER_VERSION \
	}

#ifdef __cplusplus
}
#endif
#endif

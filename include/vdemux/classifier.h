/**
 * @file classifier.h
 * @brief The classifier interface: frame -> destination VMs.
 *
 * The engine asks its classifier where each incoming frame goes. The built-in
 * L2 classifier (l2.h) is installed by default; a VMM can install its own
 * with vdemux_engine_set_classifier().
 *
 * Stability: versioned by VDEMUX_CLASSIFIER_VERSION.
 */
#ifndef VDEMUX_CLASSIFIER_H
#define VDEMUX_CLASSIFIER_H

#include <vdemux/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Version of struct vdemux_classifier described by this header. */
#define VDEMUX_CLASSIFIER_VERSION 1u

/** How the frame's first VLAN tag is edited for one destination. */
enum vdemux_vlan_action {
	VDEMUX_VLAN_KEEP = 0,  /**< deliver the bytes as they came */
	VDEMUX_VLAN_STRIP = 1, /**< remove the 4-byte tag at offset 12 */
	VDEMUX_VLAN_PUSH = 2,  /**< insert tag (tpid, tci) at offset 12 */
	VDEMUX_VLAN_SET = 3,   /**< overwrite the tag at offset 12 with (tpid, tci) */
};

/** One destination of a frame. */
struct vdemux_dest {
	vdemux_vm_id vm; /**< destination VM */
	uint8_t action;  /**< enum vdemux_vlan_action */
	uint8_t pad;     /**< zero */
	uint16_t tpid;   /**< tag protocol for PUSH and SET (host order) */
	uint16_t tci;    /**< tag control information for PUSH and SET (host order) */
	uint16_t pad2;   /**< zero */
};

/**
 * Why a frame was dropped. Shared by the classifier and the engine; every
 * reason has its own counter in struct vdemux_engine_stats.
 */
enum vdemux_drop_reason {
	VDEMUX_DROP_NONE = 0,
	VDEMUX_DROP_MALFORMED,       /**< too short for its headers */
	VDEMUX_DROP_INVALID_SRC,     /**< source MAC multicast, broadcast or zero */
	VDEMUX_DROP_LINK_LOCAL,      /**< reserved link-local group, never forwarded */
	VDEMUX_DROP_NO_VLAN_MEMBER,  /**< the frame's VLAN has no member */
	VDEMUX_DROP_UNKNOWN_UNICAST, /**< no VM has the address and no default VM */
	VDEMUX_DROP_NO_SUBSCRIBER,   /**< multicast group nobody subscribed to */
	VDEMUX_DROP_NO_DEST,         /**< the classifier named nobody (other reason) */
	VDEMUX_DROP_UNKNOWN_VM,      /**< the classifier named a VM that does not exist */
	VDEMUX_DROP_NO_BUFFER,       /**< the destination had no posted buffer */
	VDEMUX_DROP_QUOTA,           /**< the destination holds its quota of pages */
	VDEMUX_DROP_NO_POOL,         /**< no free page to copy a replica into */
	VDEMUX_DROP_BACKEND,         /**< a backend failed to map the page */
	VDEMUX_DROP_TOO_BIG,         /**< longer than max_frame: for programs feeding the engine (it refuses such frames with -EMSGSIZE) */
	VDEMUX_DROP_CQ_FULL,         /**< the destination's completion queue is full */
	VDEMUX_DROP__COUNT
};

/** Short name of a drop reason ("no-buffer", ...), or "unknown". */
VDEMUX_API const char *vdemux_drop_reason_name(int reason);

/** Where the classifier writes its answer. */
struct vdemux_verdict {
	struct vdemux_dest *dests; /**< array owned by the engine */
	unsigned cap;              /**< capacity of @c dests */
	unsigned n;                /**< destinations written (set by the classifier) */
	int drop_reason;           /**< enum vdemux_drop_reason, when n == 0 */
};

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

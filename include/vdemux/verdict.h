/* SPDX-License-Identifier: MIT */
/**
 * @file verdict.h
 * @brief What a classification answers: destinations, VLAN edits, drop
 *        reasons.
 *
 * Used by the built-in L2 classifier (l2.h), by the engine's counters and by
 * classifiers a VMM writes (sys/classifier.h).
 *
 * Stability: part of the stable API.
 */
#ifndef VDEMUX_VERDICT_H
#define VDEMUX_VERDICT_H

#include <vdemux/common.h>

#ifdef __cplusplus
extern "C" {
#endif

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
	uint8_t action;	 /**< enum vdemux_vlan_action */
	uint8_t pad;	 /**< zero */
	uint16_t tpid;	 /**< tag protocol for PUSH and SET (host order) */
	uint16_t tci;	 /**< tag control information for PUSH and SET (host order) */
	uint16_t pad2;	 /**< zero */
};

/**
 * Why a frame was dropped. Shared by the classifier and the engine; every
 * reason has its own counter in struct vdemux_engine_stats.
 */
enum vdemux_drop_reason {
	VDEMUX_DROP_NONE = 0,
	VDEMUX_DROP_MALFORMED,	     /**< too short for its headers */
	VDEMUX_DROP_INVALID_SRC,     /**< source MAC multicast, broadcast or zero */
	VDEMUX_DROP_LINK_LOCAL,	     /**< reserved link-local group, never forwarded */
	VDEMUX_DROP_NO_VLAN_MEMBER,  /**< the frame's VLAN has no member */
	VDEMUX_DROP_UNKNOWN_UNICAST, /**< no VM has the address and no default VM */
	VDEMUX_DROP_NO_SUBSCRIBER,   /**< multicast group nobody subscribed to */
	VDEMUX_DROP_NO_DEST,	     /**< the classifier named nobody (other reason) */
	VDEMUX_DROP_UNKNOWN_VM,	     /**< the classifier named a VM that does not exist */
	VDEMUX_DROP_NO_BUFFER,	     /**< the destination had no posted buffer */
	VDEMUX_DROP_QUOTA,	     /**< the destination holds its quota of pages */
	VDEMUX_DROP_NO_POOL,	     /**< no free page to copy a replica into */
	VDEMUX_DROP_BACKEND,	     /**< a backend failed to map the page */
	VDEMUX_DROP_TOO_BIG, /**< longer than the destination's next buffer can hold (a virtio-net small buffer, or big-packet chain; the buffer stays for the next frame); or longer than max_frame, for programs feeding the engine (it refuses such frames with -EMSGSIZE) */
	VDEMUX_DROP_CQ_FULL, /**< the destination's completion queue is full */
	VDEMUX_DROP__COUNT
};

/** Short name of a drop reason ("no-buffer", ...), or "unknown". */
VDEMUX_API const char *vdemux_drop_reason_name(int reason);

/** Where the classifier writes its answer. */
struct vdemux_verdict {
	struct vdemux_dest *dests; /**< array owned by the engine */
	unsigned cap;		   /**< capacity of @c dests */
	unsigned n;		   /**< destinations written (set by the classifier) */
	int drop_reason;	   /**< enum vdemux_drop_reason, when n == 0 */
};

#ifdef __cplusplus
}
#endif
#endif

/* SPDX-License-Identifier: MIT */
/**
 * @file vnet_ctrl.h
 * @brief The device side of a virtio-net control virtqueue
 *        (VIRTIO_NET_F_CTRL_VQ): the driver's commands read, checked,
 *        answered, and what they set kept for the VMM to apply.
 *
 * The VMM serves the control queue's ring itself, through the split
 * virtqueue of vdemux/virtq.h, and hands it to vdemux_vnet_ctrl_serve()
 * when the driver notifies it. Each command is one chain: the readable part
 * holds the class, the command and its data (the spec's struct
 * virtio_net_ctrl then the command's data), the first writable byte takes
 * the answer (VDEMUX_VNET_CTRL_OK or _ERR).
 *
 * Served, each only when the driver negotiated the feature it needs:
 * - VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET (VIRTIO_NET_F_MQ): the queue pairs the
 *   driver uses, 1..max_pairs; any other number is answered ERR.
 * - VIRTIO_NET_CTRL_RX PROMISC and ALLMULTI (VIRTIO_NET_F_CTRL_RX), ALLUNI,
 *   NOMULTI, NOUNI, NOBCAST (VIRTIO_NET_F_CTRL_RX_EXTRA): one byte, 0 or 1.
 * - VIRTIO_NET_CTRL_MAC_TABLE_SET (VIRTIO_NET_F_CTRL_RX): the unicast and
 *   multicast tables; the first #VDEMUX_VNET_CTRL_MACS of each are kept,
 *   and the count says how many the driver gave (a longer table is for the
 *   VMM to treat as "receive all of that kind", as the spec allows a device
 *   to receive more than it was asked for).
 * - VIRTIO_NET_CTRL_MAC_ADDR_SET (VIRTIO_NET_F_CTRL_MAC_ADDR).
 * - VIRTIO_NET_CTRL_ANNOUNCE_ACK (VIRTIO_NET_F_GUEST_ANNOUNCE).
 * - VIRTIO_NET_CTRL_MQ_RSS_CONFIG (VIRTIO_NET_F_RSS): the spec's struct
 *   virtio_net_rss_config; receive-side scaling on, with its hash types,
 *   key, indirection table and unclassified queue, and the pair count set
 *   to its max_tx_vq as VQ_PAIRS_SET would. Checked: the table's length
 *   (indirection_table_mask + 1) a power of two of at most the device's
 *   rss_max_table, every entry and unclassified_queue below max_pairs,
 *   max_tx_vq in 1..max_pairs, hash_key_length at most rss_max_key,
 *   hash_types only bits of rss_hash_types, and the data exactly as long as
 *   the table and key it declares.
 * - VIRTIO_NET_CTRL_MQ_HASH_CONFIG (VIRTIO_NET_F_HASH_REPORT without
 *   VIRTIO_NET_F_RSS): the spec's struct virtio_net_hash_config; the hash
 *   types and key of the hash reported in the header. Its reserved bytes
 *   must be zero; the key and the types are checked as above. With RSS
 *   negotiated the spec takes the reported hash from RSS_CONFIG, and
 *   HASH_CONFIG is answered ERR (unsupported).
 * Every other command (VLAN filtering, guest offloads), and any of the
 * above without its feature, is answered ERR and counted unsupported;
 * nothing changes.
 *
 * vdemux_vnet_ctrl_rx_queue() gives a received frame's queue and the hash
 * to report, from the state these commands set.
 *
 * Guest input is untrusted. A command is copied out of guest memory once
 * (at most #VDEMUX_VNET_CTRL_MAX_CMD bytes) and parsed from that copy; one
 * whose data has the wrong length or a value out of range is answered ERR
 * and counted invalid, and changes nothing. A chain without a writable byte
 * (nowhere to answer) or with a header shorter than two bytes is given back
 * with used length 0 and counted malformed. The walker's own checks
 * (vdemux/virtq.h) keep every access inside guest RAM and off the rings.
 *
 * Ordering: a command's effect is in the state (vdemux_vnet_ctrl_state())
 * when serve returns; its answer is visible to the driver only at the VMM's
 * next vdemux_virtq_publish(). The spec asks the device to stop using
 * receive queues past the new pair count once the answer to
 * VQ_PAIRS_SET is in the used ring, and RSS_CONFIG sets the pair count
 * too: apply the state first (new queue picks included), then publish.
 *
 * Threading: serve, reset and destroy change the object: one thread at a
 * time, and no other call on the object meanwhile. The calls that only read
 * it (vdemux_vnet_ctrl_rx_queue(), _state(), _stats()) may run on any
 * number of threads at once while none of those three runs; the VMM keeps
 * them apart (a lock, or serving the control queue on the thread that
 * picks queues). Separate objects are independent. No call blocks or
 * allocates after create.
 *
 * Stability: part of the public API.
 */
#ifndef VDEMUX_VNET_CTRL_H
#define VDEMUX_VNET_CTRL_H

#include <stdbool.h>

#include <vdemux/common.h>
#include <vdemux/flow.h>
#include <vdemux/virtq.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The answer a command gets: done. */
#define VDEMUX_VNET_CTRL_OK 0
/** The answer a command gets: not done (unsupported or invalid). */
#define VDEMUX_VNET_CTRL_ERR 1

/** Largest pair count VQ_PAIRS_SET may set (the spec's VQ_PAIRS_MAX). */
#define VDEMUX_VNET_CTRL_PAIRS_MAX 0x8000u
/** MAC addresses of each table kept in #vdemux_vnet_ctrl_state. */
#define VDEMUX_VNET_CTRL_MACS 16u
/** Longest command (header and data) read from guest memory; a longer one
 *  is answered ERR and counted invalid. */
#define VDEMUX_VNET_CTRL_MAX_CMD 4096u

/** Longest RSS key kept (the spec's minimum rss_max_key_size, 40 bytes). */
#define VDEMUX_VNET_CTRL_RSS_KEY_MAX VDEMUX_FLOW_KEY_MAX
/** Longest indirection table kept (entries); rss_max_table at most this. */
#define VDEMUX_VNET_CTRL_RSS_TABLE_MAX 128u

/** Receive mode bits of #vdemux_vnet_ctrl_state.rx_mode (1: on). */
#define VDEMUX_VNET_RX_PROMISC 0x01u
#define VDEMUX_VNET_RX_ALLMULTI 0x02u /**< all multicast */
#define VDEMUX_VNET_RX_ALLUNI 0x04u   /**< all unicast */
#define VDEMUX_VNET_RX_NOMULTI 0x08u  /**< no multicast */
#define VDEMUX_VNET_RX_NOUNI 0x10u    /**< no unicast */
#define VDEMUX_VNET_RX_NOBCAST 0x20u  /**< no broadcast */

/** A virtio-net control queue's command handler and the state it keeps. */
typedef struct vdemux_vnet_ctrl vdemux_vnet_ctrl;

/** Options for vdemux_vnet_ctrl_create(). */
struct vdemux_vnet_ctrl_opts {
	size_t sz;			 /**< sizeof(struct vdemux_vnet_ctrl_opts) */
	uint16_t max_pairs;		 /**< the device's max_virtqueue_pairs: 1..0x8000 (0: 1) */
	struct vdemux_alloc_hooks alloc; /**< both NULL: calloc/free */
	/** The device's rss_max_key_size: the longest key RSS_CONFIG and
	 *  HASH_CONFIG may give, 1..#VDEMUX_VNET_CTRL_RSS_KEY_MAX (0: 40; the
	 *  spec asks a device offering RSS or HASH_REPORT for at least 40). */
	uint8_t rss_max_key;
	/** The device's rss_max_indirection_table_length: the longest table
	 *  RSS_CONFIG may give, 1..#VDEMUX_VNET_CTRL_RSS_TABLE_MAX (0: 128). */
	uint16_t rss_max_table;
	/** The device's supported_hash_types: VDEMUX_FLOW_HASH_* bits, within
	 *  #VDEMUX_FLOW_HASH_ALL (0: all of them; the _EX types are not
	 *  computed, so not offered). */
	uint32_t rss_hash_types;
};

/** What the driver's commands set (vdemux_vnet_ctrl_state()). */
struct vdemux_vnet_ctrl_state {
	uint32_t changes; /**< commands answered OK since create (kept across resets): each may have changed the state; compare it to see whether to look again */
	uint16_t pairs;	  /**< queue pairs the driver uses: 1 until VQ_PAIRS_SET */
	uint16_t rx_mode; /**< VDEMUX_VNET_RX_* bits; PROMISC after a reset */
	bool mac_set;	  /**< MAC_ADDR_SET was served since the reset */
	uint8_t mac[6];	  /**< its address */
	bool table_set;	  /**< MAC_TABLE_SET was served since the reset */
	uint32_t n_unicast;			     /**< unicast entries the driver gave */
	uint32_t n_multicast;			     /**< multicast entries the driver gave */
	uint8_t unicast[VDEMUX_VNET_CTRL_MACS][6];   /**< the first of them */
	uint8_t multicast[VDEMUX_VNET_CTRL_MACS][6]; /**< the first of them */
	uint32_t announce_acks;			     /**< ANNOUNCE_ACK commands since the reset */
	/* Fields from here on were added later: a caller compiled with the
	 * shorter struct gets the prefix it knows. */
	bool rss; /**< RSS_CONFIG was served since the reset: frames steered by the table below */
	bool hash_report; /**< VIRTIO_NET_F_HASH_REPORT negotiated: the header carries hash_value and hash_report */
	uint32_t hash_types; /**< VDEMUX_FLOW_HASH_* enabled (RSS_CONFIG or HASH_CONFIG); 0 after a reset */
	uint16_t rss_unclassified; /**< the queue of a frame no enabled hash type applies to */
	uint16_t rss_table_len;	   /**< indirection table entries (a power of two); 0 until RSS_CONFIG */
	uint16_t rss_table[VDEMUX_VNET_CTRL_RSS_TABLE_MAX]; /**< receive queue indices (0: receiveq1) */
	uint8_t rss_key_len;				    /**< bytes of the key the driver gave */
	uint8_t rss_key[VDEMUX_VNET_CTRL_RSS_KEY_MAX]; /**< the key; bytes past rss_key_len are zero */
};

/** A received frame's queue and the hash to report, from
 *  vdemux_vnet_ctrl_rx_queue(). */
struct vdemux_vnet_rss_pick {
	uint16_t queue; /**< the receive queue index (0: receiveq1) */
	uint16_t hash_report; /**< VIRTIO_NET_HASH_REPORT_* (#vdemux_flow_report) for the header; NONE when hash report is off */
	uint32_t hash_value; /**< the hash for the header's hash_value; 0 with NONE */
};

/** Counters of a control object (kept across resets). */
struct vdemux_vnet_ctrl_stats {
	uint64_t commands; /**< chains taken */
	uint64_t ok;	   /**< answered OK */
	uint64_t unsupported; /**< answered ERR: class or command not served, or its feature not negotiated */
	uint64_t invalid;   /**< answered ERR: wrong data length, or a value out of range */
	uint64_t malformed; /**< given back with length 0: no room for the answer, or no header */
	uint64_t pairs_set; /**< VQ_PAIRS_SET answered OK */
};

/**
 * Make a control object: 1 pair, the reset state, no features negotiated
 * (everything answered ERR until vdemux_vnet_ctrl_reset() gives them).
 * @param[out] out the object, set on success
 * @param opts     options (NULL: defaults, max_pairs 1)
 * @return 0; -EINVAL (@p out NULL, @c sz too small or unknown non-zero
 *         fields past it, max_pairs above 0x8000, rss_max_key above
 *         #VDEMUX_VNET_CTRL_RSS_KEY_MAX, rss_max_table above
 *         #VDEMUX_VNET_CTRL_RSS_TABLE_MAX, rss_hash_types with a bit
 *         outside #VDEMUX_FLOW_HASH_ALL, one hook set without the other);
 *         -ENOMEM. On failure nothing is allocated and @p out is
 *         unchanged.
 */
VDEMUX_API int vdemux_vnet_ctrl_create(vdemux_vnet_ctrl **out, const struct vdemux_vnet_ctrl_opts *opts);

/** Free the object. NULL: nothing. */
VDEMUX_API void vdemux_vnet_ctrl_destroy(vdemux_vnet_ctrl *c);

/**
 * The driver reset the device or finished feature negotiation: the state
 * goes back to the spec's defaults (1 pair, PROMISC, no address or table
 * set, RSS off, no hash type enabled, no key or indirection table) and
 * @p features (the negotiated bits, VIRTIO_NET_F_* as a 64-bit
 * mask) decide what is served from now on. Counters are kept.
 * @return 0; -EINVAL (NULL): nothing changed.
 */
VDEMUX_API int vdemux_vnet_ctrl_reset(vdemux_vnet_ctrl *c, uint64_t features);

/**
 * Take every available command from @p q, apply and answer each, and push
 * it (used length 1: the answer; 0 for a malformed chain). The caller then
 * applies the new state and publishes the ring (vdemux_virtq_publish()).
 * @param c the control object
 * @param q the control virtqueue
 * @return commands taken (0: none available); -EIO when the ring is broken
 *         (vdemux_virtq_needs_reset(); the commands taken before it are
 *         answered and pushed); -EINVAL (NULL): nothing taken.
 */
VDEMUX_API int vdemux_vnet_ctrl_serve(vdemux_vnet_ctrl *c, vdemux_virtq *q);

/**
 * The receive queue of a frame, and the hash its header reports, as the
 * commands served so far ask:
 * - RSS on (RSS_CONFIG served): the frame's Toeplitz hash under the
 *   driver's key and hash types (vdemux_flow_hash()); the queue is the
 *   indirection table's entry at the hash's low bits (hash &
 *   (rss_table_len - 1)), or rss_unclassified when no enabled hash type
 *   applies to the frame (not IP, too short, or its types not enabled).
 * - RSS off: the symmetric hash of vdemux_flow_hash() without a key spread
 *   over the pairs in use (vdemux_flow_queue(hash, pairs)): both
 *   directions of a connection on one queue; queue 0 for a frame that is
 *   not IP.
 * With hash report on (VIRTIO_NET_F_HASH_REPORT negotiated), @p out also
 * gets the hash under the driver's key and enabled types and its report
 * type (NONE and 0 when none applies, or before the driver enabled a type);
 * with it off, NONE and 0. Bits of a key shorter than the hash input needs
 * count as zero.
 *
 * Only reads the object: see the threading rule at the top of the file.
 * The queue may be one the driver has not enabled (an entry it wrote below
 * max_pairs): the spec has the device drop such a frame.
 * @param c         the control object
 * @param frame     the frame, from its Ethernet header
 * @param len       bytes at @p frame (at least its headers to be hashed)
 * @param[out] out  the queue, hash and report type
 * @return 0; -EINVAL (@p c, @p frame or @p out NULL): @p out unchanged.
 */
VDEMUX_API int vdemux_vnet_ctrl_rx_queue(const vdemux_vnet_ctrl *c, const uint8_t *frame, uint32_t len,
					 struct vdemux_vnet_rss_pick *out);

/**
 * Read what the commands set.
 * @param c        the control object
 * @param[out] out filled with min(@p size, sizeof) bytes
 * @param size     sizeof(*out) as compiled by the caller
 * @return 0; -EINVAL (NULL).
 */
VDEMUX_API int vdemux_vnet_ctrl_state(const vdemux_vnet_ctrl *c, struct vdemux_vnet_ctrl_state *out,
				      size_t size);

/**
 * Read the counters.
 * @param c        the control object
 * @param[out] out filled with min(@p size, sizeof) bytes
 * @param size     sizeof(*out) as compiled by the caller
 * @return 0; -EINVAL (NULL).
 */
VDEMUX_API int vdemux_vnet_ctrl_stats(const vdemux_vnet_ctrl *c, struct vdemux_vnet_ctrl_stats *out,
				      size_t size);

#ifdef __cplusplus
}
#endif
#endif

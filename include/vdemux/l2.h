/* SPDX-License-Identifier: MIT */
/**
 * @file l2.h
 * @brief The built-in L2 classifier: a bridge with static forwarding entries.
 *
 * Frames are forwarded by (destination MAC, VLAN) exact match, broadcast and
 * multicast are replicated to the VMs of the frame's VLAN, and each VLAN may
 * have a default VM for unknown unicast. There is no learning and no flooding
 * of unknown unicast. VMs take part in a VLAN only once they joined it.
 *
 * Every engine has one (vdemux_engine_l2()); it can also be created on its
 * own, for instance to drive it from a benchmark or a fuzzer.
 *
 * Threading: the configuration calls (join, leave, add, del, set, remove_vm)
 * may run on any thread, concurrently with each other, with the lookups,
 * with vdemux_l2_classify() (on any number of threads) and with bursts of the
 * engine that uses this classifier. Configuration calls are serialised among
 * themselves by the classifier. Each verdict is computed from one whole
 * configuration: the one before a concurrent change or the one after it,
 * never a mix. A change is seen by every classification that starts after
 * the call returns. A lookup never blocks on a lock; it only waits out the
 * few stores that publish a change. A configuration call that frees memory
 * waits until the classifications running when it was made have finished,
 * so it must not be made from inside a classification (e.g. from a custom
 * classifier that wraps this one).
 *
 * Every address, subscription, all-multicast mode and default role of a VM
 * on a VLAN requires the VM to be a member of that VLAN (-ENOENT otherwise),
 * and leaving the VLAN removes them.
 */
#ifndef VDEMUX_L2_H
#define VDEMUX_L2_H

#include <vdemux/verdict.h>
#include <vdemux/common.h>

#ifdef __cplusplus
extern "C" {
#endif

struct vdemux_classifier;

/** Opaque L2 classifier handle. */
typedef struct vdemux_l2 vdemux_l2;

/** 802.1Q tag protocol identifier. */
#define VDEMUX_TPID_8021Q 0x8100u
/** 802.1ad (provider bridge) tag protocol identifier. */
#define VDEMUX_TPID_8021AD 0x88a8u

/** Options for vdemux_l2_create(). */
struct vdemux_l2_opts {
	size_t sz;	      /**< sizeof(struct vdemux_l2_opts) */
	uint16_t vlan_proto;  /**< uplink TPID: 0x8100 (default) or 0x88a8 */
	uint16_t native_vlan; /**< VLAN of untagged frames, 1..4094; default 1 */
	uint32_t max_entries; /**< unicast addresses + multicast (group, VLAN) pairs; default 65536, at most 2^26 (the table grows with its entries, to 64 bytes per entry at most: kept at most a quarter full for fast lookups) */
	struct vdemux_alloc_hooks alloc; /**< allocation hooks */
};

/** Membership flags for vdemux_l2_vlan_join(). */
#define VDEMUX_L2_TAGGED 0x1u /**< frames reach the VM carrying the VLAN's tag */

/**
 * Create an L2 classifier.
 * @param[out] out the classifier, set on success
 * @param opts  NULL for defaults
 * @return 0; -EINVAL for a bad option; -ENOMEM.
 */
VDEMUX_API int vdemux_l2_create(vdemux_l2 **out, const struct vdemux_l2_opts *opts);
/** Destroy a classifier created with vdemux_l2_create() (NULL: no-op). */
VDEMUX_API void vdemux_l2_destroy(vdemux_l2 *l2);
/** The classifier interface of @p l2, to give to vdemux_engine_set_classifier(). */
VDEMUX_API struct vdemux_classifier *vdemux_l2_classifier(vdemux_l2 *l2);

/**
 * Make @p vm a member of VLAN @p vid (1..4094), untagged or tagged
 * (flags VDEMUX_L2_TAGGED). Joining again changes the flags.
 * @return 0; -EINVAL (vm 0, bad vid, unknown flags); -ENOMEM.
 */
VDEMUX_API int vdemux_l2_vlan_join(vdemux_l2 *l2, vdemux_vm_id vm, uint16_t vid, uint32_t flags);
/** Leave a VLAN (also drops the VM's addresses, subscriptions and default role on it).
 *  @return 0; -ENOENT if not a member; -EINVAL. */
VDEMUX_API int vdemux_l2_vlan_leave(vdemux_l2 *l2, vdemux_vm_id vm, uint16_t vid);
/**
 * Send unicast for (@p mac, @p vid) to @p vm. Adding it again for the same
 * VM is a no-op.
 * @return 0; -EINVAL (multicast/zero MAC, bad vid, vm 0); -ENOENT (@p vm is
 *         not a member of @p vid); -EEXIST (another VM has it); -ENOSPC
 *         (max_entries reached); -ENOMEM. On failure nothing changed.
 */
VDEMUX_API int vdemux_l2_add_mac(vdemux_l2 *l2, vdemux_vm_id vm, const uint8_t mac[6], uint16_t vid);
/** Remove a unicast entry. @return 0; -ENOENT; -EINVAL. */
VDEMUX_API int vdemux_l2_del_mac(vdemux_l2 *l2, const uint8_t mac[6], uint16_t vid);
/**
 * Subscribe @p vm to multicast @p group on @p vid (again: no-op).
 * @return 0; -EINVAL (not a group address, broadcast, bad vid, vm 0);
 *         -ENOENT (not a member of @p vid); -ENOSPC (a new group and
 *         max_entries reached); -ENOMEM. On failure nothing changed.
 */
VDEMUX_API int vdemux_l2_add_mcast(vdemux_l2 *l2, vdemux_vm_id vm, const uint8_t group[6], uint16_t vid);
/** Unsubscribe. @return 0; -ENOENT (not subscribed); -EINVAL. */
VDEMUX_API int vdemux_l2_del_mcast(vdemux_l2 *l2, vdemux_vm_id vm, const uint8_t group[6], uint16_t vid);
/** Receive all multicast of @p vid (@p on non-zero) or stop.
 *  @return 0; -EINVAL; -ENOENT (not a member of @p vid); -ENOMEM (nothing changed). */
VDEMUX_API int vdemux_l2_set_allmulti(vdemux_l2 *l2, vdemux_vm_id vm, uint16_t vid, int on);
/** Send unknown unicast of @p vid to @p vm (0: drop it).
 *  @return 0; -EINVAL; -ENOENT (@p vm is not a member of @p vid). */
VDEMUX_API int vdemux_l2_set_default(vdemux_l2 *l2, uint16_t vid, vdemux_vm_id vm);
/** Forget everything about @p vm (memberships, addresses, subscriptions, default roles). */
VDEMUX_API void vdemux_l2_remove_vm(vdemux_l2 *l2, vdemux_vm_id vm);

/**
 * Look up the VM owning unicast (@p mac, @p vid).
 * @return the VM id, or 0 if none.
 */
VDEMUX_API vdemux_vm_id vdemux_l2_lookup(vdemux_l2 *l2, const uint8_t mac[6], uint16_t vid);

/**
 * Look up @p n unicast (MAC, VLAN) pairs at once (prefetching the table):
 * out[i] is the VM owning (macs[i], vids[i]), or 0. A group address or a bad
 * VID gives 0.
 * @return 0; -EINVAL on NULL arguments.
 */
VDEMUX_API int vdemux_l2_lookup_bulk(vdemux_l2 *l2, const uint8_t *const *macs, const uint16_t *vids,
				     unsigned n, vdemux_vm_id *out);

/**
 * Classify one frame (the same as the classify operation). At most v->cap
 * destinations are written (members past it are not served); v->n == 0
 * comes with v->drop_reason set. See docs/classifier.md for the rules.
 * @return 0 (see v->n and v->drop_reason); -EINVAL on NULL arguments.
 */
VDEMUX_API int vdemux_l2_classify(vdemux_l2 *l2, const uint8_t *frame, uint32_t len,
				  struct vdemux_verdict *v);

#ifdef __cplusplus
}
#endif
#endif

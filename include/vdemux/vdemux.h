/* SPDX-License-Identifier: MIT */
/**
 * @file vdemux.h
 * @brief Umbrella header: the whole public API of libvdemux.
 *
 * libvdemux demultiplexes incoming frames to many VMs by moving pages between
 * their address spaces instead of copying bytes. See docs/architecture.md.
 *
 * The interfaces for authors of backends and classifiers are apart, in
 * <vdemux/sys/backend.h> and <vdemux/sys/classifier.h>, with a weaker
 * stability promise; this header does not include them.
 */
#ifndef VDEMUX_H
#define VDEMUX_H

#include <vdemux/arena.h>
#include <vdemux/common.h>
#include <vdemux/engine.h>
#include <vdemux/flow.h>
#include <vdemux/kvm.h>
#include <vdemux/l2.h>
#include <vdemux/offload.h>
#include <vdemux/rx.h>
#include <vdemux/shard.h>
#include <vdemux/signal.h>
#include <vdemux/sim.h>
#include <vdemux/vfio.h>
#include <vdemux/virtio_net.h>
#include <vdemux/virtq.h>
#include <vdemux/vnet_ctrl.h>
#include <vdemux/verdict.h>
#include <vdemux/vm.h>

#endif

/* SPDX-License-Identifier: MIT */
/**
 * @file kvm.h
 * @brief The KVM backend: flip arena pages behind the guest RAM of a KVM VM.
 *
 * Guest RAM is registered with KVM once, as an ordinary memslot over a range
 * of host virtual addresses (HVAs) of the VMM. The backend never touches the
 * memslot again: it maps an arena page at a GPA of the RX window with
 * mmap(MAP_FIXED | MAP_SHARED) of the arena's memfd over the HVA behind that
 * GPA, and unmaps it by putting an inaccessible anonymous mapping there (a
 * hole). KVM's MMU notifier drops the stale second-stage entries before
 * mmap(2) returns, so the vCPUs see the change at once; a vCPU touching a
 * hole gets KVM_RUN failing with EFAULT (seen on 6.1), or a KVM_EXIT_MMIO
 * exit at the hole's GPA (seen on a 6.18 host with hardware
 * virtualisation): a VMM must take both as "this RX page is a hole".
 * Contiguous GPAs backed by
 * contiguous arena pages are changed with one mmap(2) call.
 *
 * One backend instance serves one VM (it is told the HVA of that VM's guest
 * RAM when created): create one per VM, register it with
 * vdemux_engine_add_backend() and name it in that VM's vdemux_vm_opts.
 * The arena must be a VDEMUX_ARENA_MEMFD arena.
 *
 * Errors the engine's calls can get from this backend: vdemux_vm_add()
 * -EINVAL (heap arena; RX window not inside the region), -EBUSY (the backend
 * already serves a VM), -ENOMEM, or mmap(2)'s errno; batches stop at an
 * entry with -ERANGE (GPA outside the window), -EINVAL (GPA not aligned, or
 * a page the engine does not manage), -EEXIST (map over a mapped GPA), or
 * at a run whose mmap(2) failed, with its errno (-ENOMEM when
 * vm.max_map_count is reached).
 *
 * See docs/backends-kvm.md for the whole picture: arena layout, memslots,
 * faults and how to recover from them, interrupts, and what the VMM must not
 * do while pages flip.
 *
 * Threading: the backend's operations run on the engine's thread (engine
 * calls are serialised). vCPU threads may run KVM_RUN concurrently with
 * them: that is the point. vdemux_kvm_translate() and vdemux_kvm_stats() may
 * be called from any thread but race with the engine's calls (the answer
 * may be out of date by the time it is used); vdemux_kvm_backfill() must be
 * serialised with the engine's calls. The irqfd and RAM helpers are
 * independent of any engine and thread-safe.
 *
 * Stability: part of the public API.
 */
#ifndef VDEMUX_KVM_H
#define VDEMUX_KVM_H

#include <vdemux/arena.h>
#include <vdemux/common.h>

#ifdef __cplusplus
extern "C" {
#endif

struct vdemux_backend;

/** Options for vdemux_kvm_create(). */
struct vdemux_kvm_opts {
	size_t sz;	      /**< sizeof(struct vdemux_kvm_opts) */
	uint64_t ram_gpa;     /**< GPA of the guest RAM region holding the RX window; page-aligned */
	uint64_t ram_size;    /**< bytes of that region; a non-zero multiple of the page size */
	void *ram_hva;	      /**< host virtual address of @c ram_gpa in the VMM; page-aligned */
	uint32_t flags;	      /**< VDEMUX_KVM_F_* */
	int vm_fd;	      /**< VDEMUX_KVM_F_SET_MEMSLOT: the KVM VM file descriptor */
	uint32_t slot;	      /**< VDEMUX_KVM_F_SET_MEMSLOT: memslot id (address space in bits 16..31) */
	int home_fd;	      /**< VDEMUX_KVM_F_HOME_FD: file that backs the region outside flips */
	uint64_t home_offset; /**< VDEMUX_KVM_F_HOME_FD: offset in @c home_fd of @c ram_gpa */
	uint32_t copy_threshold; /**< frames up to this many bytes are copied, not flipped; 0: the measured default */
	struct vdemux_alloc_hooks alloc; /**< allocation hooks */
};

/**
 * Register the region with KVM_SET_USER_MEMORY_REGION on @c vm_fd, memslot
 * @c slot, when the backend is created (after checking that the kernel has
 * KVM_CAP_SYNC_MMU). The memslot is left registered when the backend is
 * freed: it is the VM's RAM.
 */
#define VDEMUX_KVM_F_SET_MEMSLOT 0x1u
/**
 * When the RX window is given back (VM detached), map @c home_fd from
 * @c home_offset over it again, so that the guest finds the memory it had
 * before. Without this flag the window gets fresh zero-filled private
 * anonymous memory.
 */
#define VDEMUX_KVM_F_HOME_FD 0x2u

/**
 * The copy threshold used when vdemux_kvm_opts::copy_threshold is 0 (bytes):
 * every frame the engine accepts. Measured with bench/bench_kvm (see
 * docs/performance.md): copying a frame into a buffer the guest still has
 * mapped was cheaper than remapping its pages at every size up to 64 KiB.
 * Flips still happen where the buffer is a hole (eager harvest). Run the
 * benchmark on the target machine and set the option to change it.
 */
#define VDEMUX_KVM_COPY_THRESHOLD_DEFAULT 65540u

/**
 * Create a KVM backend for one VM, to register with
 * vdemux_engine_add_backend() (which takes ownership).
 *
 * The region [ram_hva, ram_hva + ram_size) must stay mapped as the VM's RAM
 * for the life of the backend, and the RX window of the VM the backend is
 * attached to must lie inside [ram_gpa, ram_gpa + ram_size). Nothing is
 * changed in the region until the VM is attached (vdemux_vm_add()), which
 * turns the RX window into holes before the engine maps its pages there.
 *
 * @param[out] out the backend, set on success
 * @param opts     options (required: the region)
 * @return 0;
 *         -EINVAL: NULL argument, region empty, not page-aligned or wrapping,
 *                  unknown flags, non-zero unknown trailing option bytes;
 *         -EOPNOTSUPP: VDEMUX_KVM_F_SET_MEMSLOT and the kernel lacks
 *                  KVM_CAP_SYNC_MMU (flips would not reach the vCPUs);
 *         -ENOMEM;
 *         a negative errno of KVM_SET_USER_MEMORY_REGION (e.g. -EEXIST for
 *         a region overlapping another memslot, -EINVAL for a bad slot).
 *         On failure nothing is allocated and no memslot is registered.
 */
VDEMUX_API int vdemux_kvm_create(struct vdemux_backend **out, const struct vdemux_kvm_opts *opts);

/** Counters of a KVM backend (monotonic). */
struct vdemux_kvm_stats {
	uint64_t batches;	 /**< map, unmap and remap calls */
	uint64_t mmap_calls;	 /**< mmap(2) calls made by them (one per run of contiguous pages) */
	uint64_t pages_mapped;	 /**< pages mapped into holes */
	uint64_t pages_unmapped; /**< GPAs turned into holes */
	uint64_t pages_remapped; /**< pages replaced in place */
	uint64_t failures;	 /**< mmap(2) calls that failed */
	uint64_t repairs; /**< failures after which the kernel had already dropped the old mapping, re-established */
	uint64_t repair_failures; /**< ... that could not be re-established: the GPAs were left as holes */
	uint64_t backfills;	  /**< holes given a private zero page by vdemux_kvm_backfill() */
};

/**
 * Read the counters.
 * @param be    a backend made by vdemux_kvm_create()
 * @param[out] out filled with min(@p size, sizeof) bytes
 * @param size  sizeof(*out) as compiled by the caller
 * @return 0; -EINVAL (NULL, or @p be is not a KVM backend).
 */
VDEMUX_API int vdemux_kvm_stats(struct vdemux_backend *be, struct vdemux_kvm_stats *out, size_t size);

/**
 * Which arena page the backend has mapped at @p gpa of the RX window.
 * @param be    a backend made by vdemux_kvm_create()
 * @param gpa   a page-aligned GPA
 * @param[out] page the arena page index, or VDEMUX_NO_PAGE for a hole
 *                  (also after vdemux_kvm_backfill())
 * @return 0; -EINVAL (NULL, not a KVM backend, @p gpa not page-aligned);
 *         -ENOENT (no VM attached); -ERANGE (@p gpa outside the RX window).
 */
VDEMUX_API int vdemux_kvm_translate(struct vdemux_backend *be, uint64_t gpa, uint32_t *page);

/** vdemux_kvm_backfill(): every hole of the RX window. */
#define VDEMUX_KVM_ALL_HOLES UINT64_MAX

/**
 * Put a private zero-filled page at a hole of the RX window, so that a vCPU
 * that faulted on it (KVM_RUN failed with EFAULT, or exited with
 * KVM_EXIT_MMIO at its GPA) can run on. After an MMIO read exit the vCPU
 * waits for the VMM's data: give it zeroes (what the page now holds) in
 * kvm_run.mmio.data before KVM_RUN. The page
 * belongs to no other VM and to no engine: the guest only ever sees zeroes
 * and its own writes, and the next flip at that GPA replaces it. For the
 * engine the GPA is still a hole.
 *
 * Must be serialised with the engine's calls (it changes the mappings the
 * engine's calls change).
 *
 * @param be   a KVM backend
 * @param gpa  the GPA of the hole, or VDEMUX_KVM_ALL_HOLES
 * @return the number of pages backfilled (0 if @p gpa holds an arena page);
 *         -EINVAL (NULL, not a KVM backend, @p gpa not page-aligned);
 *         -ENOENT (no VM attached); -ERANGE (@p gpa outside the RX window);
 *         a negative errno of mmap(2) (the holes not yet done stay holes).
 */
VDEMUX_API int vdemux_kvm_backfill(struct vdemux_backend *be, uint64_t gpa);

/**
 * Map pages of a memfd arena at a new host address, to serve as guest RAM
 * (the VMM registers it as a memslot, or passes it to vdemux_kvm_create()
 * with VDEMUX_KVM_F_SET_MEMSLOT). The mapping is MAP_SHARED and read-write;
 * it is 2 MiB-aligned and advised MADV_HUGEPAGE when it is at least 2 MiB
 * long, so that huge pages can back it when @p first_page is 2 MiB-aligned
 * too and the host allows them (shmem_enabled: docs/backends-kvm.md, "Huge
 * pages"). The pages must be outside the range the engine manages.
 *
 * @param arena      a VDEMUX_ARENA_MEMFD arena
 * @param first_page first arena page of the RAM
 * @param npages     pages of RAM, >= 1
 * @param[out] out   the host address, set on success
 * @return 0; -EINVAL (NULL, @p npages 0, pages outside the arena, heap
 *         arena); a negative errno of mmap(2). Nothing is mapped on failure.
 */
VDEMUX_API int vdemux_kvm_ram_map(const vdemux_arena *arena, uint32_t first_page, uint32_t npages,
				  void **out);

/**
 * Unmap guest RAM made by vdemux_kvm_ram_map(). The VM must no longer use it
 * (memslot deleted or VM closed), and no backend may be attached over it.
 * @return 0; -EINVAL (NULL, @p npages 0); a negative errno of munmap(2).
 */
VDEMUX_API int vdemux_kvm_ram_unmap(void *hva, uint32_t npages);

/**
 * vdemux_kvm_irqfd_create(): if KVM_IRQFD is refused, return a plain eventfd
 * (and 1) instead of failing; the VMM then reads it and injects the
 * interrupt itself (KVM_IRQ_LINE, KVM_SIGNAL_MSI or its own device model).
 */
#define VDEMUX_KVM_IRQFD_F_FALLBACK 0x1u

/**
 * Create an eventfd and register it with KVM_IRQFD so that writing it
 * injects GSI @p gsi into the VM: the fd to give the engine as the VM's
 * VDEMUX_SIGNAL_EVENTFD signal. The VM needs an in-kernel interrupt
 * controller (KVM_CREATE_IRQCHIP, or a split irqchip with routing for
 * @p gsi). The interrupt is edge-triggered (no resample fd).
 *
 * @param vm_fd     the KVM VM file descriptor
 * @param gsi       the global system interrupt to inject
 * @param flags     VDEMUX_KVM_IRQFD_F_*
 * @param[out] out_fd the eventfd (non-blocking, close-on-exec), set on success
 * @return 0 (an irqfd); 1 (VDEMUX_KVM_IRQFD_F_FALLBACK given and KVM_IRQFD
 *         refused: a plain eventfd); -EINVAL (NULL, @p vm_fd < 0, unknown
 *         flags); a negative errno of eventfd(2) or KVM_IRQFD (without the
 *         fallback flag). On failure no fd is left open.
 */
VDEMUX_API int vdemux_kvm_irqfd_create(int vm_fd, uint32_t gsi, uint32_t flags, int *out_fd);

/**
 * Unregister an irqfd made by vdemux_kvm_irqfd_create() (KVM_IRQFD with
 * KVM_IRQFD_FLAG_DEASSIGN) and close it. With @p vm_fd < 0 (for the plain
 * eventfd of the fallback) only the close is done.
 *
 * @param vm_fd  the KVM VM file descriptor, or -1
 * @param gsi    the GSI given to vdemux_kvm_irqfd_create()
 * @param fd     the eventfd
 * @return 0; -EINVAL (@p fd < 0); a negative errno of KVM_IRQFD (the fd is
 *         closed in every case).
 */
VDEMUX_API int vdemux_kvm_irqfd_destroy(int vm_fd, uint32_t gsi, int fd);

#ifdef __cplusplus
}
#endif
#endif

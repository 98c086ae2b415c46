/* SPDX-License-Identifier: MIT */
/**
 * @file vfio.h
 * @brief The VFIO backend: keeps the IOMMU mappings of a device assigned to
 *        a VM in step with the engine (VFIO type1v2 container).
 *
 * A device assigned to a VM reaches guest memory through the IOMMU, at I/O
 * virtual addresses (IOVAs) equal to guest-physical addresses. When a page
 * leaves the VM the device must lose it too, or it could write into a page
 * that now belongs to another VM. This backend maps each arena page with
 * VFIO_IOMMU_MAP_DMA at IOVA = GPA, one mapping per page (type1v2 cannot
 * unmap part of a mapping), and unmaps with VFIO_IOMMU_UNMAP_DMA, one call per
 * run of contiguous GPAs (one UNMAP_DMA may remove many one-page mappings).
 *
 * One backend instance keeps the IOMMU table of one VM: a container is one
 * IOVA space, so two VMs sharing one would see each other's pages. Create one
 * instance per VM with an assigned device, from the same memfd arena as the
 * engine (and as the KVM backend, when the VM has both: what its vCPUs see
 * and what its device can reach then change together).
 *
 * The VMM keeps mapping the rest of guest RAM itself (on the same container,
 * see vdemux_vfio_container_fd()) and must leave the RX window unmapped: the
 * backend owns the IOVAs [rx_base, rx_base + rx_pages * 4096).
 *
 * Limits: type1 allows a bounded number of mappings per container (the
 * vfio_iommu_type1 module parameter @c dma_entry_limit, 65535 by default;
 * every page of an RX window may need one). At attach the backend reads what
 * is left (the DMA_AVAIL capability of VFIO_IOMMU_GET_INFO) and refuses a
 * window that cannot fit. Each mapped page is pinned and counts against the
 * process's RLIMIT_MEMLOCK unless it has CAP_IPC_LOCK.
 *
 * Remap: type1 has no atomic replace. The backend's remap unmaps then maps,
 * so for a moment the GPA is a hole for the device: a DMA to it then faults
 * in the IOMMU (it reaches no page), which is safe. The VM's vCPUs are not
 * affected (KVM has its own backend).
 *
 * Errors the engine passes on from this backend (vdemux_vm_add(), the post,
 * release and receive calls), each leaving entries [0, done) of a batch
 * applied and the rest as they were:
 * - attach: -EBUSY (a VM is already attached to this backend), -EINVAL
 *   (not a memfd arena), -ERANGE (RX window outside the container's IOVA
 *   ranges), -E2BIG (the window needs more mappings than DMA_AVAIL has
 *   left), -ENOMEM, an ioctl's errno;
 * - map: -EEXIST (the IOVA is mapped already, e.g. by the VMM), -ENOSPC
 *   (dma_entry_limit reached), -ENOMEM (pinning failed: RLIMIT_MEMLOCK),
 *   -EFAULT, -EINVAL (GPA outside the window, page not the engine's);
 * - unmap: -EINVAL (a mapping the backend did not make straddles an end of
 *   the range), an ioctl's errno. A merged unmap that fails is retried page
 *   by page, so that the prefix reported is exact.
 *
 * Threading: as every backend, called by the engine from the thread that
 * made the API call; the functions below may be called from that thread
 * between engine calls.
 *
 * Stability: part of the API of the backends shipped with the library;
 * struct vdemux_vfio_sys is for tests and unusual VMMs and follows
 * VDEMUX_BACKEND_VERSION.
 */
#ifndef VDEMUX_VFIO_H
#define VDEMUX_VFIO_H

#include <vdemux/common.h>

#ifdef __cplusplus
extern "C" {
#endif

struct vdemux_backend;

/**
 * The system calls the backend makes, so that a program can interpose on
 * them (tests use a fake kernel). All three set, or no table at all. Each
 * returns what the system call returns on success and a negative errno on
 * failure (never -1 with errno).
 */
struct vdemux_vfio_sys {
	/** open(2) of @p path with @p flags (O_RDWR | O_CLOEXEC). */
	int (*open)(const char *path, int flags, void *payload);
	/** close(2). */
	int (*close)(int fd, void *payload);
	/** ioctl(2): @p arg is the integer or the address the request takes. */
	int (*ioctl)(int fd, unsigned long request, unsigned long arg, void *payload);
	/** Passed to the three functions. */
	void *payload;
};

/** Options for vdemux_vfio_create(). Exactly one source is required. */
struct vdemux_vfio_opts {
	size_t sz;	  /**< sizeof(struct vdemux_vfio_opts) */
	uint32_t flags;	  /**< VDEMUX_VFIO_F_*: which source */
	int container_fd; /**< with VDEMUX_VFIO_F_CONTAINER_FD: an open container, group attached, VFIO_TYPE1v2_IOMMU set (borrowed, never closed) */
	int group_id; /**< with VDEMUX_VFIO_F_GROUP_ID: the IOMMU group number (/dev/vfio/N for N = group_id) */
	const char *group_path; /**< without either flag: the group's device file, e.g. "/dev/vfio/12" */
	const char *container_path; /**< the container device; NULL: "/dev/vfio/vfio" */
	uint32_t copy_threshold; /**< reported as the backend's copy threshold, bytes; 0: VDEMUX_VFIO_COPY_THRESHOLD */
	const struct vdemux_vfio_sys *sys; /**< system calls (copied); NULL: the real ones */
	vdemux_log_fn log;		   /**< logging hook; NULL: silent */
	void *log_payload;		   /**< passed to @c log */
	struct vdemux_alloc_hooks alloc;   /**< control-path allocation hooks */
};

/** Use @c container_fd as it is. */
#define VDEMUX_VFIO_F_CONTAINER_FD 0x1u
/** Open the group /dev/vfio/N, N = @c group_id. */
#define VDEMUX_VFIO_F_GROUP_ID 0x2u

/**
 * Default copy threshold: every frame is copied when the posted buffers are
 * still mapped (lazy harvest), because a type1 unmap plus map costs several
 * times more per page than clearing and copying it (measured by
 * bench/bench_vfio.c, docs/performance.md). With eager harvest the buffers
 * are holes and frames are flipped.
 */
#define VDEMUX_VFIO_COPY_THRESHOLD UINT32_MAX

/**
 * Create a VFIO backend, to register with vdemux_engine_add_backend() (which
 * takes ownership) and name in the options of exactly one VM.
 *
 * Given a group (path or number), the backend opens the container, checks
 * VFIO_GET_API_VERSION and VFIO_CHECK_EXTENSION(VFIO_TYPE1v2_IOMMU), opens
 * the group, checks that it is viable, attaches it to the container and sets
 * VFIO_TYPE1v2_IOMMU; it closes both when freed. Given a container, it checks
 * the API version and that an IOMMU is set (VFIO_IOMMU_GET_INFO), and never
 * closes it. Either way it then reads the container's IOVA page sizes
 * (4 KiB must be one), IOVA ranges and DMA_AVAIL.
 *
 * @param[out] out  the backend, set on success
 * @param opts      options (NULL is invalid: a source is required)
 * @return 0;
 *         -EINVAL: NULL argument, no source or several, unknown flags,
 *                  non-zero unknown trailing option bytes, a partial @c sys
 *                  table, partial allocation hooks, a container with no
 *                  IOMMU set;
 *         -EPROTONOSUPPORT: VFIO_GET_API_VERSION is not VFIO_API_VERSION;
 *         -EOPNOTSUPP: no VFIO_TYPE1v2_IOMMU, or 4 KiB IOVA pages not offered;
 *         -EBUSY: the group is not viable (a device of the group is bound to
 *                 a host driver) or is already open;
 *         -ENOMEM;
 *         a negative errno from open(2) (-ENOENT: no such group, is the
 *         device bound to vfio-pci and the IOMMU on?) or from an ioctl.
 *         On failure nothing is left open or allocated.
 */
VDEMUX_API int vdemux_vfio_create(struct vdemux_backend **out, const struct vdemux_vfio_opts *opts);

/**
 * The container fd (opened by the backend or borrowed), to map the rest of
 * guest RAM on. Valid until the backend is freed.
 * @return the fd (>= 0); -EINVAL (NULL, or not a VFIO backend).
 */
VDEMUX_API int vdemux_vfio_container_fd(struct vdemux_backend *be);

/**
 * The group fd the backend opened, to get device fds from
 * (VFIO_GROUP_GET_DEVICE_FD). Valid until the backend is freed.
 * @return the fd (>= 0); -ENOENT (the backend was given a container, not a
 *         group); -EINVAL (NULL, or not a VFIO backend).
 */
VDEMUX_API int vdemux_vfio_group_fd(struct vdemux_backend *be);

/**
 * Ask the kernel how many more mappings the container allows now
 * (VFIO_IOMMU_GET_INFO, capability DMA_AVAIL).
 * @param be         a VFIO backend
 * @param[out] avail the count
 * @return 0; -ENODATA (the kernel does not report it: before Linux 5.10);
 *         -EINVAL (NULL, or not a VFIO backend); -ENOMEM; an ioctl's
 *         negative errno.
 */
VDEMUX_API int vdemux_vfio_dma_avail(struct vdemux_backend *be, uint32_t *avail);

/**
 * The arena page the backend has mapped at @p gpa of VM @p vm
 * (VDEMUX_NO_PAGE for a hole), from its own record of the mappings it made.
 * @param be        a VFIO backend
 * @param vm        the VM's id
 * @param gpa       a page-aligned GPA of its RX window
 * @param[out] page the page
 * @return 0; -ENOENT (@p vm is not the VM attached); -ERANGE (@p gpa is
 *         outside its RX window); -EINVAL (NULL, unaligned GPA, or not a
 *         VFIO backend).
 */
VDEMUX_API int vdemux_vfio_translate(struct vdemux_backend *be, vdemux_vm_id vm, uint64_t gpa,
				     uint32_t *page);

/** VFIO backend counters (monotonic, except @c mapped). */
struct vdemux_vfio_stats {
	uint64_t map_calls;	   /**< VFIO_IOMMU_MAP_DMA calls made */
	uint64_t unmap_calls;	   /**< VFIO_IOMMU_UNMAP_DMA calls made */
	uint64_t pages_mapped;	   /**< pages mapped */
	uint64_t pages_unmapped;   /**< pages unmapped */
	uint64_t mapped;	   /**< gauge: pages mapped now */
	uint64_t errors;	   /**< map/unmap/remap batches that failed */
	uint64_t unmap_fallbacks;  /**< failed merged unmaps retried page by page */
	uint64_t unmap_short;	   /**< merged unmaps that reported fewer bytes than expected */
	uint64_t restore_failures; /**< pages that could not be put back after a failure (left a hole) */
};

/**
 * Read the counters.
 * @param be       a VFIO backend
 * @param[out] out filled with min(@p size, sizeof) bytes
 * @param size     sizeof(*out) as compiled by the caller
 * @return 0; -EINVAL (NULL, or not a VFIO backend).
 */
VDEMUX_API int vdemux_vfio_stats(struct vdemux_backend *be, struct vdemux_vfio_stats *out, size_t size);

#ifdef __cplusplus
}
#endif
#endif

/* SPDX-License-Identifier: MIT */
/**
 * @file common.h
 * @brief Definitions shared by every libvdemux header: export macro, version,
 *        page size, options-struct convention, logging and allocation hooks.
 *
 * Stability: everything in this header is part of the stable API.
 */
#ifndef VDEMUX_COMMON_H
#define VDEMUX_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Marks the functions the library exports. */
#if defined(__GNUC__)
#define VDEMUX_API __attribute__((visibility("default")))
#else
#define VDEMUX_API
#endif

/** Major version: changes break the API or ABI. */
#define VDEMUX_VERSION_MAJOR 0
/** Minor version: additions only. */
#define VDEMUX_VERSION_MINOR 1
/** Patch version. */
#define VDEMUX_VERSION_PATCH 0

/** Size of the pages the engine moves between VMs. */
#define VDEMUX_PAGE_SIZE 4096u
/** log2 of VDEMUX_PAGE_SIZE. */
#define VDEMUX_PAGE_SHIFT 12

/** Arena page index meaning "no page" (a hole). */
#define VDEMUX_NO_PAGE UINT32_MAX

/** A VM identifier; 0 is never a valid id. */
typedef uint32_t vdemux_vm_id;

/**
 * Declare an options struct of type @p type with its @c sz field set and
 * every other field zeroed (zero means "default" for every field), then the
 * designated initialisers given.
 *
 * @code
 * struct vdemux_engine_opts o = VDEMUX_OPTS(vdemux_engine_opts, .npages = 1024);
 * @endcode
 *
 * Every options struct begins with @c size_t sz. A library built against a
 * newer header accepts a smaller @c sz (fields past it take their default);
 * a larger @c sz is accepted only when every byte past the fields this build
 * knows is zero, otherwise the call fails with -EINVAL.
 */
#define VDEMUX_OPTS(type, ...) ((struct type){.sz = sizeof(struct type), __VA_ARGS__})

/** Log levels passed to a #vdemux_log_fn. */
enum vdemux_log_level {
	VDEMUX_LOG_ERROR = 0, /**< an operation failed */
	VDEMUX_LOG_WARN = 1,  /**< something unexpected, handled */
	VDEMUX_LOG_INFO = 2,  /**< lifecycle events */
	VDEMUX_LOG_DEBUG = 3, /**< detail for developers */
};

/**
 * Logging hook. The library never writes to stdout or stderr; it calls this
 * (if set) from the thread that made the API call.
 *
 * @param level    one of #vdemux_log_level
 * @param msg      NUL-terminated message, valid only during the call
 * @param payload  the pointer given with the hook
 */
typedef void (*vdemux_log_fn)(int level, const char *msg, void *payload);

/**
 * Allocation hooks for the engine's control-path memory (never called on the
 * burst paths). Both set, or neither (then calloc/free are used).
 */
struct vdemux_alloc_hooks {
	/** Like calloc(3): zeroed memory for @p n objects of @p size, or NULL. */
	void *(*calloc)(size_t n, size_t size, void *payload);
	/** Like free(3); called with NULL never. */
	void (*free)(void *ptr, void *payload);
	/** Passed to both hooks. */
	void *payload;
};

/**
 * Library version as (major << 16) | (minor << 8) | patch, for checking the
 * library loaded at run time against the headers compiled with.
 */
VDEMUX_API uint32_t vdemux_version(void);

#ifdef __cplusplus
}
#endif
#endif

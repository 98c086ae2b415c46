/* Internal definitions shared by the core's files. Not installed. */
#ifndef VDEMUX_CORE_INTERNAL_H
#define VDEMUX_CORE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <vdemux/vdemux.h>

#define PAGE VDEMUX_PAGE_SIZE
#define MAX_BACKENDS 8u
#define VM_IDX_BITS 20u
#define VM_IDX_MASK ((1u << VM_IDX_BITS) - 1u)
#define MAX_FRAME_LIMIT (65536u + 4u)
#define MAX_FRAME_PAGES ((MAX_FRAME_LIMIT + 4u + PAGE - 1u) / PAGE)
#define ETH_HLEN 14u
#define NO_SLOT UINT32_MAX
#define VM_MAX_PAGES (1u << 28) /* 1 TiB of RX window */

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* ---- util.c ---- */
void *vd_calloc(const struct vdemux_alloc_hooks *h, size_t n, size_t size);
void vd_free(const struct vdemux_alloc_hooks *h, void *p);
/* Check the size-prefixed options convention: sz covers at least the
 * first field, and bytes past @known are zero. Returns 0 or -EINVAL. */
int vd_opts_check(const void *opts, size_t known);
/* Copy user options of size opts->sz into a zeroed struct of @known bytes. */
void vd_opts_copy(void *dst, const void *opts, size_t known);
bool vd_hooks_valid(const struct vdemux_alloc_hooks *h);

/* ---- page states ---- */
enum pg_state {
	PG_FREE = 0,
	PG_FILLING = 1,
	PG_ASSIGNED = 2,
	/* Was mapped in a table of a removed VM that failed to unmap it: it
	 * may still be reachable there, so it is never reused. */
	PG_QUARANTINED = 3,
};

struct pg {
	uint8_t state;
	uint8_t lent;      /* FILLING and lent out by vdemux_rx_alloc() */
	uint8_t stale;     /* ASSIGNED but a backend may disagree (failed rollback) */
	uint8_t pad;
	uint32_t dirty;    /* bytes from offset 0 that may be non-zero */
	uint32_t vm_idx;   /* ASSIGNED: owner VM index */
	uint32_t slot;     /* ASSIGNED: slot in the owner's window */
};

/* A slot of a VM's RX window. */
struct slot {
	uint32_t page;   /* arena-relative engine page index, or VDEMUX_NO_PAGE */
	uint8_t posted;
	uint8_t filled;
	uint16_t pad;
	uint32_t mark;   /* duplicate detection inside one call */
};

struct be_ref {
	struct vdemux_backend *be;
	void *ctx;
};

struct vm {
	vdemux_vm_id id;
	uint32_t idx;
	uint64_t rx_base;
	uint32_t rx_pages;
	uint32_t quota;
	uint32_t held;
	uint32_t flags;
	enum vdemux_harvest harvest;
	enum vdemux_copy_policy copy;
	uint32_t copy_threshold;
	uint32_t eff_threshold; /* frames up to this many bytes are copied */
	struct be_ref bes[MAX_BACKENDS];
	unsigned nbe;
	struct vdemux_signal sig;
	unsigned pending_reasons; /* for vdemux_vm_take_signals() */
	unsigned burst_reasons;   /* raised during the current call */
	struct vm *sig_next;      /* list of VMs to signal at the end of a call */
	struct slot *slots;
	/* posted slots, FIFO */
	uint32_t *postq;
	uint32_t pq_head, pq_count;
	/* completions, FIFO */
	struct vdemux_completion *cq;
	uint32_t cq_cap, cq_head, cq_count;
	uint32_t cq_pending; /* completions planned, not yet queued */
	/* this VM's entries in the engine's pending plans (valid while
	 * pend_gen equals the engine's) */
	uint32_t pend_gen, pend_head, pend_tail;
	struct vm *pend_vm_next;
	struct vdemux_vm_stats st;
};

/* A planned change of a slot, applied at the end of a burst. */
enum pend_kind { PEND_COPY = 0, PEND_MAP = 1, PEND_REMAP = 2 };
struct pend {
	struct vm *vm;
	uint32_t slot;
	uint32_t new_page;  /* MAP/REMAP: page carrying the chunk */
	uint32_t old_page;  /* REMAP: page it replaces */
	uint32_t len;       /* bytes in this chunk */
	uint16_t flags;     /* completion flags */
	uint8_t kind;
	uint8_t pad;
	uint32_t frame;     /* delivery sequence: chunks of one delivery share it */
	uint32_t flen;      /* bytes of the whole delivery */
	uint32_t next;      /* next entry of the same VM, or NO_SLOT */
	uint8_t tstate;     /* TS_*: what the tables hold for this entry */
	uint32_t stale_page; /* page an undo failed to remove, or VDEMUX_NO_PAGE */
};
enum { TS_UNTOUCHED = 0, TS_HOLE = 1, TS_APPLIED = 2 };

struct vdemux_engine {
	struct vdemux_alloc_hooks alloc;
	vdemux_log_fn log;
	void *log_payload;

	vdemux_arena *arena;
	bool own_arena;
	struct vdemux_arena_info ai;
	uint32_t first_page;
	uint32_t npages;
	uint8_t *base; /* host address of engine page 0 */

	struct pg *pages;
	uint32_t *free_stack;
	uint32_t nfree;
	uint32_t nfilling;
	uint32_t nassigned;
	uint32_t nquarantined;

	uint32_t max_frame;
	uint32_t max_vms;
	enum vdemux_harvest harvest;
	enum vdemux_copy_policy copy;
	uint32_t copy_threshold;
	uint32_t low_watermark;

	struct vdemux_backend **bes; /* registered backends (grows) */
	unsigned nbe, bes_cap;

	vdemux_l2 *l2;
	struct vdemux_classifier *cls;

	struct vm **vms;
	uint32_t nvms;
	uint16_t *vm_gen;

	uint32_t mark; /* duplicate-detection stamp */

	/* burst scratch, sized at creation */
	struct vdemux_dest *dests;
	struct pend *pend;
	uint32_t npend, pend_cap;
	uint32_t frame_seq;
	uint32_t pend_gen;
	struct vm *pend_vms; /* VMs with pending plans */
	struct vdemux_map *mbuf, *mbuf2;
	uint32_t *ibuf;
	uint8_t *sbuf; /* per-entry flags */
	uint32_t mbuf_cap;
	struct vm *sig_list;
	bool release_armed;

	struct vdemux_engine_stats st;
};

static inline uint8_t *pg_addr(const struct vdemux_engine *e, uint32_t p)
{
	return e->base + (size_t)p * PAGE;
}

/* Arena page index of engine page p (what backends are given). */
static inline uint32_t abs_page(const struct vdemux_engine *e, uint32_t p)
{
	return p + e->first_page;
}

/* ---- engine.c ---- */
void vd_log(const struct vdemux_engine *e, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
struct vm *vd_vm_get(const struct vdemux_engine *e, vdemux_vm_id id);
void vd_bad(struct vdemux_engine *e, int which);
/* NULL array or n == 0: counted, -EINVAL. */
int vd_check_burst(struct vdemux_engine *e, const void *array, unsigned n);
/* vd_vm_get() that counts an unknown id as bad input. */
struct vm *vd_vm_find(struct vdemux_engine *e, vdemux_vm_id id);

/* ---- pool.c ---- */
int vd_pool_init(struct vdemux_engine *e);
/* Take up to n FREE pages (they become FILLING). Returns how many. */
uint32_t vd_pool_get(struct vdemux_engine *e, uint32_t *out, uint32_t n);
/* Clear page p (its dirty bytes) and make it FREE. */
void vd_pool_put(struct vdemux_engine *e, uint32_t p);
/* FILLING -> ASSIGNED to (vm, slot). */
void vd_page_assign(struct vdemux_engine *e, uint32_t p, struct vm *vm, uint32_t slot);
/* ASSIGNED -> cleared -> FREE (the page was seen by a guest: clear it all). */
void vd_page_reclaim(struct vdemux_engine *e, uint32_t p);
/* ASSIGNED -> QUARANTINED. */
void vd_page_quarantine(struct vdemux_engine *e, uint32_t p);

/* ---- tables.c ---- */
enum tbl_op { TBL_MAP = 0, TBL_UNMAP = 1, TBL_REMAP = 2 };
/* Apply m[0, n) to every backend of vm. m_undo[i] is the inverse entry
 * (REMAP: the old page; MAP/UNMAP: the same entry). Returns the prefix
 * applied in every table; entries past it are restored in every table,
 * except where stale[i] is set (a rollback failed: state unknown). */
unsigned vd_tables_apply(struct vdemux_engine *e, struct vm *vm, enum tbl_op op,
			 const struct vdemux_map *m, const struct vdemux_map *m_undo,
			 unsigned n, uint8_t *stale, int *err);

/* ---- vm.c ---- */
void vd_vm_raise(struct vdemux_engine *e, struct vm *vm, unsigned reasons);
void vd_signals_flush(struct vdemux_engine *e);
void vd_postq_push(struct vm *vm, uint32_t s);
bool vd_cq_push(struct vm *vm, uint64_t gpa, uint32_t len, uint16_t flags);
void vd_check_watermark(struct vdemux_engine *e);

/* ---- rx.c ---- */
/* A frame to deliver: in pool pages (zero-copy) or in the caller's memory. */
struct vd_src {
	const uint32_t *pages;
	const uint8_t *flat;
	uint32_t len;
};
int vd_deliver_frame(struct vdemux_engine *e, const struct vd_src *src);
void vd_flush_pending(struct vdemux_engine *e);

/* ---- l2.c ---- */
int vd_l2_create(vdemux_l2 **out, const struct vdemux_l2_opts *opts,
		 const struct vdemux_alloc_hooks *alloc);

#endif

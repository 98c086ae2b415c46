/* SPDX-License-Identifier: MIT */
/*
 * The built-in L2 classifier: a bridge with static forwarding entries.
 *
 * Data layout (what the classify path reads):
 *  - one open-addressing hash table (linear probing, 16-byte slots, load at
 *    most 1/2, and at most 1/4 after each growth) keyed by a 64-bit word holding the 48-bit MAC and the 12-bit
 *    VID. A unicast slot's value is the owning VM and its membership flags on
 *    that VLAN (so a unicast hit needs no other memory access); a multicast
 *    slot's value points to the group's sorted subscriber array.
 *  - per VID: the sorted member array (VM + flags), the all-multicast array
 *    and the default VM (with its flags).
 *
 * Concurrency (see l2.h for the rule given to users):
 *  - writers (configuration calls) are serialised by a mutex;
 *  - every change readers can see is made inside a sequence-lock window;
 *    readers retry when the sequence moved, so a verdict is computed from
 *    one consistent configuration, either the one before a change or the one
 *    after it;
 *  - memory is only freed after a grace period: readers announce themselves
 *    in one of two counters chosen by the epoch's parity; a writer that
 *    retired memory flips the epoch and waits for the old counter to drain.
 *    A reader inside a window of an ongoing change can therefore load stale
 *    pointers and odd counts, but every pointer it can load stays valid, and
 *    every count is bounded by the (immutable) capacity of the array read;
 *  - growth (a larger array or table) copies the contents, publishes the copy
 *    and retires the original; the copy has the same contents, so it needs no
 *    window, and allocation failures leave the configuration unchanged.
 *
 * All shared words are C11 atomics: relaxed in the windows (the sequence
 * lock orders them), acquire/release for pointers to freshly built memory.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <vdemux/l2.h>
#include <vdemux/sys/classifier.h>

#include "common/util.h"
#include "core/l2_create.h"

#define L2_NVID 4096u
#define L2_VID_MAX 4094u

#define L2_KEY_EMPTY 0ull
#define L2_KEY_TOMB UINT64_MAX /* VID bits 0xffff: never a real key */

#define L2_F_TAGGED 0x1u
#define L2_F_ALLMULTI 0x2u

#define L2_TAB_MIN 16u
#define L2_ARR_MIN 4u
#define L2_MAX_ENTRIES_LIMIT (1u << 26)

/* Anything that may be read by classify and is freed after a grace period. */
struct l2_obj {
	struct l2_obj *retire_next;
};

/* A sorted array of (vm | flags << 32) words; cap is fixed at allocation. */
struct l2_arr {
	struct l2_obj obj;
	uint32_t cap;
	_Atomic uint32_t n;
	_Atomic uint64_t e[];
};

struct l2_slot {
	_Atomic uint64_t key;
	_Atomic uint64_t val;
};

struct l2_tab {
	struct l2_obj obj;
	uint64_t mask;	/* slots - 1 */
	uint32_t used;	/* live keys (writer only) */
	uint32_t tombs; /* tombstones (writer only) */
	struct l2_slot s[];
};

struct l2_vlan {
	_Atomic(struct l2_arr *) members;  /* sorted by VM */
	_Atomic(struct l2_arr *) allmulti; /* sorted by VM */
	_Atomic uint64_t dflt;		   /* vm | flags << 32; 0: none */
};

struct vdemux_l2 {
	struct vdemux_classifier cls; /* first: the interface handed out */
	uint16_t proto;
	uint16_t native;
	uint32_t max_entries;
	uint32_t n_entries; /* unicast keys + multicast (group, VLAN) keys */
	uint32_t max_slots;
	struct vdemux_alloc_hooks alloc;
	pthread_mutex_t lock;
	struct l2_obj *retired;

	alignas(64) _Atomic uint32_t seq;
	_Atomic(struct l2_tab *) tab;

	alignas(64) _Atomic uint64_t epoch;
	_Atomic uint64_t readers[2];

	alignas(64) struct l2_vlan vlan[L2_NVID];
};

/* ------------------------------------------------------------------------ */
/* Small helpers                                                            */

static inline uint64_t mac_bits(const uint8_t m[6])
{
	uint32_t hi;
	uint16_t lo;
	memcpy(&hi, m, 4);
	memcpy(&lo, m + 4, 2);
	return ((uint64_t)__builtin_bswap32(hi) << 16) | __builtin_bswap16(lo);
}

static inline uint64_t mk_key(uint64_t mac, uint16_t vid)
{
	return mac | ((uint64_t)vid << 48);
}

static inline uint16_t key_vid(uint64_t key)
{
	return (uint16_t)(key >> 48);
}

static inline bool key_is_group(uint64_t key)
{
	return (key >> 40) & 1u;
}

static inline uint64_t l2_hash(uint64_t k)
{
	/* Fold the VID and the OUI onto the NIC-specific bits, then one
	 * multiply; the slot index is taken from the product's high bits. */
	return (k ^ (k >> 31)) * 0x9e3779b97f4a7c15ull;
}

static inline uint64_t slot_of(uint64_t h, uint64_t mask)
{
	return (h >> 32) & mask;
}

static inline uint64_t ent(vdemux_vm_id vm, uint32_t flags)
{
	return (uint64_t)vm | ((uint64_t)flags << 32);
}

static inline vdemux_vm_id ent_vm(uint64_t e)
{
	return (vdemux_vm_id)e;
}

static inline uint32_t ent_flags(uint64_t e)
{
	return (uint32_t)(e >> 32);
}

static inline bool vid_ok(uint16_t vid)
{
	return vid >= 1 && vid <= L2_VID_MAX;
}

static void *l2_calloc(const struct vdemux_alloc_hooks *a, size_t n, size_t sz)
{
	return vd_calloc(a, n, sz);
}

static void l2_free(const struct vdemux_alloc_hooks *a, void *p)
{
	vd_free(a, p);
}

/* ------------------------------------------------------------------------ */
/* Readers: grace-period registration and sequence lock                     */

static inline unsigned rd_enter(vdemux_l2 *l2)
{
	for (;;) {
		uint64_t e = atomic_load(&l2->epoch);
		unsigned i = (unsigned)(e & 1);
		atomic_fetch_add(&l2->readers[i], 1);
		if (atomic_load(&l2->epoch) == e)
			return i;
		atomic_fetch_sub(&l2->readers[i], 1);
	}
}

static inline void rd_exit(vdemux_l2 *l2, unsigned i)
{
	atomic_fetch_sub_explicit(&l2->readers[i], 1, memory_order_release);
}

static inline uint32_t rd_begin(vdemux_l2 *l2)
{
	uint32_t s;
	while ((s = atomic_load_explicit(&l2->seq, memory_order_acquire)) & 1u)
		sched_yield();
	return s;
}

static inline bool rd_retry(vdemux_l2 *l2, uint32_t s)
{
	atomic_thread_fence(memory_order_acquire);
	return atomic_load_explicit(&l2->seq, memory_order_relaxed) != s;
}

/* ------------------------------------------------------------------------ */
/* Writers: windows, retirement, grace periods                              */

static void wr_begin(vdemux_l2 *l2)
{
	uint32_t s = atomic_load_explicit(&l2->seq, memory_order_relaxed);
	atomic_store_explicit(&l2->seq, s + 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
}

static void wr_end(vdemux_l2 *l2)
{
	uint32_t s = atomic_load_explicit(&l2->seq, memory_order_relaxed);
	atomic_store_explicit(&l2->seq, s + 1, memory_order_release);
}

static void retire(vdemux_l2 *l2, struct l2_obj *o)
{
	if (!o)
		return;
	o->retire_next = l2->retired;
	l2->retired = o;
}

/* Free what was retired once no reader can hold it. Called with the lock. */
static void reclaim(vdemux_l2 *l2)
{
	if (!l2->retired)
		return;
	uint64_t e = atomic_load(&l2->epoch);
	atomic_store(&l2->epoch, e + 1);
	/* Readers in the old counter entered before the flip and may have
	 * loaded a retired pointer; readers in the new one loaded after every
	 * retired pointer was replaced. */
	while (atomic_load(&l2->readers[e & 1]) != 0)
		sched_yield();
	struct l2_obj *o = l2->retired;
	l2->retired = NULL;
	while (o) {
		struct l2_obj *next = o->retire_next;
		l2_free(&l2->alloc, o);
		o = next;
	}
}

static void unlock_reclaim(vdemux_l2 *l2)
{
	reclaim(l2);
	pthread_mutex_unlock(&l2->lock);
}

/* ------------------------------------------------------------------------ */
/* Sorted arrays                                                            */

static struct l2_arr *arr_new(vdemux_l2 *l2, uint32_t cap)
{
	struct l2_arr *a = l2_calloc(&l2->alloc, 1, sizeof(*a) + (size_t)cap * sizeof(a->e[0]));
	if (a)
		a->cap = cap;
	return a;
}

static uint32_t arr_n(const struct l2_arr *a)
{
	if (!a)
		return 0;
	uint32_t n = atomic_load_explicit(&((struct l2_arr *)a)->n, memory_order_relaxed);
	return n < a->cap ? n : a->cap;
}

static uint64_t arr_get(const struct l2_arr *a, uint32_t i)
{
	return atomic_load_explicit(&((struct l2_arr *)a)->e[i], memory_order_relaxed);
}

/* Index of vm in a, or -(insertion point) - 1. */
static long arr_find(const struct l2_arr *a, vdemux_vm_id vm)
{
	uint32_t lo = 0, hi = arr_n(a);
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		vdemux_vm_id m = ent_vm(arr_get(a, mid));
		if (m == vm)
			return mid;
		if (m < vm)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -(long)lo - 1;
}

/*
 * Make sure *pa has room for one more entry: a copy with a larger capacity
 * replaces it (same contents, so outside any window). On -ENOMEM nothing
 * changed.
 */
static int arr_reserve(vdemux_l2 *l2, _Atomic(struct l2_arr *) *pa)
{
	struct l2_arr *a = atomic_load_explicit(pa, memory_order_relaxed);
	uint32_t n = arr_n(a);
	if (a && n < a->cap)
		return 0;
	uint32_t cap = a ? a->cap * 2 : L2_ARR_MIN;
	struct l2_arr *b = arr_new(l2, cap);
	if (!b)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++)
		atomic_store_explicit(&b->e[i], arr_get(a, i), memory_order_relaxed);
	atomic_store_explicit(&b->n, n, memory_order_relaxed);
	atomic_store_explicit(pa, b, memory_order_release);
	if (a)
		retire(l2, &a->obj);
	return 0;
}

/* In a window: insert e at position pos (room reserved). */
static void arr_insert_at(struct l2_arr *a, uint32_t pos, uint64_t e)
{
	uint32_t n = arr_n(a);
	for (uint32_t i = n; i > pos; i--)
		atomic_store_explicit(&a->e[i], arr_get(a, i - 1), memory_order_relaxed);
	atomic_store_explicit(&a->e[pos], e, memory_order_relaxed);
	atomic_store_explicit(&a->n, n + 1, memory_order_relaxed);
}

/* In a window: remove position pos. */
static void arr_remove_at(struct l2_arr *a, uint32_t pos)
{
	uint32_t n = arr_n(a);
	for (uint32_t i = pos; i + 1 < n; i++)
		atomic_store_explicit(&a->e[i], arr_get(a, i + 1), memory_order_relaxed);
	atomic_store_explicit(&a->n, n - 1, memory_order_relaxed);
}

static void arr_set(struct l2_arr *a, uint32_t pos, uint64_t e)
{
	atomic_store_explicit(&a->e[pos], e, memory_order_relaxed);
}

/* ------------------------------------------------------------------------ */
/* Hash table                                                               */

#define L2_HUGE (1u << 21)

static struct l2_tab *tab_new(vdemux_l2 *l2, uint64_t nslots)
{
	size_t bytes = sizeof(struct l2_tab) + nslots * sizeof(struct l2_slot);
	struct l2_tab *t = NULL;
	if (!l2->alloc.calloc && bytes >= L2_HUGE) {
		/* Lookups hit random slots: back a large table with huge pages
		 * where the system allows, to spare a TLB miss per lookup. */
		void *p;
		if (posix_memalign(&p, L2_HUGE, bytes) == 0) {
			(void)madvise(p, bytes, MADV_HUGEPAGE);
			memset(p, 0, bytes);
			t = p;
		}
	} else {
		t = l2_calloc(&l2->alloc, 1, bytes);
	}
	if (t)
		t->mask = nslots - 1;
	return t;
}

static inline uint64_t slot_key(const struct l2_tab *t, uint64_t i)
{
	return atomic_load_explicit(&((struct l2_tab *)t)->s[i].key, memory_order_relaxed);
}

static inline uint64_t slot_val(const struct l2_tab *t, uint64_t i)
{
	return atomic_load_explicit(&((struct l2_tab *)t)->s[i].val, memory_order_relaxed);
}

/* Slot holding key, or -1. Bounded by the table size whatever it reads. */
static inline int64_t tab_find(const struct l2_tab *t, uint64_t key)
{
	uint64_t mask = t->mask;
	uint64_t i = slot_of(l2_hash(key), mask);
	for (uint64_t probe = 0; probe <= mask; probe++) {
		uint64_t k = slot_key(t, i);
		if (k == key)
			return (int64_t)i;
		if (k == L2_KEY_EMPTY)
			return -1;
		i = (i + 1) & mask;
	}
	return -1;
}

/* Writer: put key in the first free slot of its probe sequence (room reserved). */
static void tab_put(struct l2_tab *t, uint64_t key, uint64_t val)
{
	uint64_t i = slot_of(l2_hash(key), t->mask);
	for (;;) {
		uint64_t k = slot_key(t, i);
		if (k == L2_KEY_EMPTY || k == L2_KEY_TOMB) {
			if (k == L2_KEY_TOMB)
				t->tombs--;
			atomic_store_explicit(&t->s[i].val, val, memory_order_relaxed);
			atomic_store_explicit(&t->s[i].key, key, memory_order_relaxed);
			t->used++;
			return;
		}
		i = (i + 1) & t->mask;
	}
}

static void tab_kill(struct l2_tab *t, uint64_t i)
{
	atomic_store_explicit(&t->s[i].key, L2_KEY_TOMB, memory_order_relaxed);
	atomic_store_explicit(&t->s[i].val, 0, memory_order_relaxed);
	t->used--;
	t->tombs++;
}

static uint64_t pow2_at_least(uint64_t x)
{
	uint64_t p = 1;
	while (p < x)
		p <<= 1;
	return p;
}

/*
 * Make room for one more key: keep used + tombstones + 1 at most half the
 * slots, rebuilding (larger, or the same size without tombstones) when not.
 * The rebuilt table has the same contents, so it is published without a
 * window. On -ENOMEM nothing changed.
 */
static int tab_reserve(vdemux_l2 *l2)
{
	struct l2_tab *t = atomic_load_explicit(&l2->tab, memory_order_relaxed);
	uint64_t nslots = t->mask + 1;
	if ((uint64_t)(t->used + t->tombs + 1) * 2 <= nslots)
		return 0;
	uint64_t want = pow2_at_least((uint64_t)(t->used + 1) * 4);
	uint64_t floor = pow2_at_least((uint64_t)(t->used + 1) * 2);
	if (want > l2->max_slots)
		want = l2->max_slots;
	if (want < floor)
		want = floor;
	if (want < L2_TAB_MIN)
		want = L2_TAB_MIN;
	struct l2_tab *n = tab_new(l2, want);
	if (!n)
		return -ENOMEM;
	for (uint64_t i = 0; i < nslots; i++) {
		uint64_t k = slot_key(t, i);
		if (k != L2_KEY_EMPTY && k != L2_KEY_TOMB)
			tab_put(n, k, slot_val(t, i));
	}
	atomic_store_explicit(&l2->tab, n, memory_order_release);
	retire(l2, &t->obj);
	return 0;
}

static struct l2_tab *wtab(vdemux_l2 *l2)
{
	return atomic_load_explicit(&l2->tab, memory_order_relaxed);
}

/* ------------------------------------------------------------------------ */
/* Creation                                                                 */

static uintptr_t l2_read_begin(struct vdemux_classifier *cls);
static int l2_classify_read(struct vdemux_classifier *cls, const uint8_t *frame, uint32_t len,
			    struct vdemux_verdict *v);
static void l2_read_end(struct vdemux_classifier *cls, uintptr_t token);

static int l2_cls_classify(struct vdemux_classifier *cls, const uint8_t *frame, uint32_t len,
			   struct vdemux_verdict *v)
{
	return vdemux_l2_classify((vdemux_l2 *)cls, frame, len, v);
}

static void l2_cls_vm_removed(struct vdemux_classifier *cls, vdemux_vm_id vm)
{
	vdemux_l2_remove_vm((vdemux_l2 *)cls, vm);
}

/* The engine's constructor passes its own hooks, used unless opts has some. */
int vd_l2_create(vdemux_l2 **out, const struct vdemux_l2_opts *opts,
		 const struct vdemux_alloc_hooks *alloc)
{
	struct vdemux_l2_opts o = {.sz = sizeof(o)};
	if (!out)
		return -EINVAL;
	if (opts) {
		if (vd_opts_check(opts, sizeof(o)))
			return -EINVAL;
		vd_opts_copy(&o, opts, sizeof(o));
	}
	if (alloc && !o.alloc.calloc && !o.alloc.free)
		o.alloc = *alloc;
	if (o.vlan_proto == 0)
		o.vlan_proto = VDEMUX_TPID_8021Q;
	if (o.native_vlan == 0)
		o.native_vlan = 1;
	if (o.max_entries == 0)
		o.max_entries = 65536;
	if (o.vlan_proto != VDEMUX_TPID_8021Q && o.vlan_proto != VDEMUX_TPID_8021AD)
		return -EINVAL;
	if (!vid_ok(o.native_vlan) || o.max_entries > L2_MAX_ENTRIES_LIMIT)
		return -EINVAL;
	if (!vd_hooks_valid(&o.alloc))
		return -EINVAL;

	vdemux_l2 *l2 = l2_calloc(&o.alloc, 1, sizeof(*l2));
	if (!l2)
		return -ENOMEM;
	l2->alloc = o.alloc;
	l2->proto = o.vlan_proto;
	l2->native = o.native_vlan;
	l2->max_entries = o.max_entries;
	/* Room for max_entries at a load of at most 1/4: at 1/2, a quarter of
	 * the lookups of a full table need a second probe, and the branch that
	 * ends the probe sequence is mispredicted for them; that cost more
	 * than the cache misses of a table twice the size (docs/performance.md,
	 * section Classifier). */
	l2->max_slots = (uint32_t)pow2_at_least((uint64_t)o.max_entries * 4);
	if (l2->max_slots < L2_TAB_MIN)
		l2->max_slots = L2_TAB_MIN;
	struct l2_tab *t = tab_new(l2, L2_TAB_MIN);
	if (!t) {
		l2_free(&o.alloc, l2);
		return -ENOMEM;
	}
	atomic_init(&l2->tab, t);
	if (pthread_mutex_init(&l2->lock, NULL) != 0) {
		l2_free(&o.alloc, t);
		l2_free(&o.alloc, l2);
		return -ENOMEM;
	}
	l2->cls.version = VDEMUX_CLASSIFIER_VERSION;
	l2->cls.name = "l2";
	l2->cls.classify = l2_cls_classify;
	l2->cls.vm_removed = l2_cls_vm_removed;
	l2->cls.read_begin = l2_read_begin;
	l2->cls.classify_read = l2_classify_read;
	l2->cls.read_end = l2_read_end;
	*out = l2;
	return 0;
}

VDEMUX_API int vdemux_l2_create(vdemux_l2 **out, const struct vdemux_l2_opts *opts)
{
	return vd_l2_create(out, opts, NULL);
}

VDEMUX_API void vdemux_l2_destroy(vdemux_l2 *l2)
{
	if (!l2)
		return;
	struct vdemux_alloc_hooks a = l2->alloc;
	struct l2_tab *t = wtab(l2);
	for (uint64_t i = 0; i <= t->mask; i++) {
		uint64_t k = slot_key(t, i);
		if (k != L2_KEY_EMPTY && k != L2_KEY_TOMB && key_is_group(k))
			l2_free(&a, (void *)(uintptr_t)slot_val(t, i));
	}
	l2_free(&a, t);
	for (unsigned v = 0; v < L2_NVID; v++) {
		l2_free(&a, atomic_load_explicit(&l2->vlan[v].members, memory_order_relaxed));
		l2_free(&a, atomic_load_explicit(&l2->vlan[v].allmulti, memory_order_relaxed));
	}
	struct l2_obj *o = l2->retired;
	while (o) {
		struct l2_obj *next = o->retire_next;
		l2_free(&a, o);
		o = next;
	}
	pthread_mutex_destroy(&l2->lock);
	l2_free(&a, l2);
}

VDEMUX_API struct vdemux_classifier *vdemux_l2_classifier(vdemux_l2 *l2)
{
	return l2 ? &l2->cls : NULL;
}

/* ------------------------------------------------------------------------ */
/* Configuration                                                            */

static struct l2_arr *wmembers(vdemux_l2 *l2, uint16_t vid)
{
	return atomic_load_explicit(&l2->vlan[vid].members, memory_order_relaxed);
}

static struct l2_arr *wallmulti(vdemux_l2 *l2, uint16_t vid)
{
	return atomic_load_explicit(&l2->vlan[vid].allmulti, memory_order_relaxed);
}

/* Flags of vm on vid, or -1 if not a member. */
static long member_flags(vdemux_l2 *l2, vdemux_vm_id vm, uint16_t vid)
{
	struct l2_arr *m = wmembers(l2, vid);
	long i = arr_find(m, vm);
	return i < 0 ? -1 : (long)ent_flags(arr_get(m, (uint32_t)i));
}

/* In a window: give every record of vm on vid the tagged flag of @p flags. */
static void set_tagging(vdemux_l2 *l2, vdemux_vm_id vm, uint16_t vid, uint32_t tagged)
{
	struct l2_arr *m = wmembers(l2, vid);
	long i = arr_find(m, vm);
	uint32_t f = (ent_flags(arr_get(m, (uint32_t)i)) & ~L2_F_TAGGED) | tagged;
	arr_set(m, (uint32_t)i, ent(vm, f));

	struct l2_arr *am = wallmulti(l2, vid);
	long j = arr_find(am, vm);
	if (j >= 0)
		arr_set(am, (uint32_t)j, ent(vm, tagged));

	uint64_t d = atomic_load_explicit(&l2->vlan[vid].dflt, memory_order_relaxed);
	if (d && ent_vm(d) == vm)
		atomic_store_explicit(&l2->vlan[vid].dflt, ent(vm, tagged), memory_order_relaxed);

	struct l2_tab *t = wtab(l2);
	for (uint64_t s = 0; s <= t->mask; s++) {
		uint64_t k = slot_key(t, s);
		if (k == L2_KEY_EMPTY || k == L2_KEY_TOMB || key_is_group(k) || key_vid(k) != vid)
			continue;
		if (ent_vm(slot_val(t, s)) == vm)
			atomic_store_explicit(&t->s[s].val, ent(vm, tagged), memory_order_relaxed);
	}
}

VDEMUX_API int vdemux_l2_vlan_join(vdemux_l2 *l2, vdemux_vm_id vm, uint16_t vid, uint32_t flags)
{
	if (!l2 || vm == 0 || !vid_ok(vid) || (flags & ~VDEMUX_L2_TAGGED))
		return -EINVAL;
	uint32_t tagged = flags & VDEMUX_L2_TAGGED ? L2_F_TAGGED : 0;
	pthread_mutex_lock(&l2->lock);
	int rc = 0;
	long f = member_flags(l2, vm, vid);
	if (f >= 0) {
		if (((uint32_t)f & L2_F_TAGGED) != tagged) {
			wr_begin(l2);
			set_tagging(l2, vm, vid, tagged);
			wr_end(l2);
		}
	} else {
		rc = arr_reserve(l2, &l2->vlan[vid].members);
		if (rc == 0) {
			struct l2_arr *m = wmembers(l2, vid);
			long pos = -arr_find(m, vm) - 1;
			wr_begin(l2);
			arr_insert_at(m, (uint32_t)pos, ent(vm, tagged));
			wr_end(l2);
		}
	}
	unlock_reclaim(l2);
	return rc;
}

/*
 * In a window: drop every hash record of vm (on vid, or on every VLAN when
 * vid is 0): unicast entries, and its place in multicast groups (a group
 * left empty is removed and its array retired).
 */
static void drop_records(vdemux_l2 *l2, vdemux_vm_id vm, uint16_t vid)
{
	struct l2_tab *t = wtab(l2);
	for (uint64_t s = 0; s <= t->mask; s++) {
		uint64_t k = slot_key(t, s);
		if (k == L2_KEY_EMPTY || k == L2_KEY_TOMB || (vid && key_vid(k) != vid))
			continue;
		uint64_t val = slot_val(t, s);
		if (!key_is_group(k)) {
			if (ent_vm(val) == vm) {
				tab_kill(t, s);
				l2->n_entries--;
			}
			continue;
		}
		struct l2_arr *g = (struct l2_arr *)(uintptr_t)val;
		long i = arr_find(g, vm);
		if (i < 0)
			continue;
		arr_remove_at(g, (uint32_t)i);
		if (arr_n(g) == 0) {
			tab_kill(t, s);
			l2->n_entries--;
			retire(l2, &g->obj);
		}
	}
}

/* In a window: remove vm's membership, all-multicast and default role on vid. */
static void drop_membership(vdemux_l2 *l2, vdemux_vm_id vm, uint16_t vid)
{
	struct l2_arr *m = wmembers(l2, vid);
	long i = arr_find(m, vm);
	if (i >= 0)
		arr_remove_at(m, (uint32_t)i);
	struct l2_arr *am = wallmulti(l2, vid);
	long j = arr_find(am, vm);
	if (j >= 0)
		arr_remove_at(am, (uint32_t)j);
	uint64_t d = atomic_load_explicit(&l2->vlan[vid].dflt, memory_order_relaxed);
	if (d && ent_vm(d) == vm)
		atomic_store_explicit(&l2->vlan[vid].dflt, 0, memory_order_relaxed);
}

VDEMUX_API int vdemux_l2_vlan_leave(vdemux_l2 *l2, vdemux_vm_id vm, uint16_t vid)
{
	if (!l2 || vm == 0 || !vid_ok(vid))
		return -EINVAL;
	pthread_mutex_lock(&l2->lock);
	int rc = 0;
	if (member_flags(l2, vm, vid) < 0) {
		rc = -ENOENT;
	} else {
		wr_begin(l2);
		drop_membership(l2, vm, vid);
		drop_records(l2, vm, vid);
		wr_end(l2);
	}
	unlock_reclaim(l2);
	return rc;
}

VDEMUX_API void vdemux_l2_remove_vm(vdemux_l2 *l2, vdemux_vm_id vm)
{
	if (!l2 || vm == 0)
		return;
	pthread_mutex_lock(&l2->lock);
	wr_begin(l2);
	for (uint16_t vid = 1; vid <= L2_VID_MAX; vid++)
		if (wmembers(l2, vid))
			drop_membership(l2, vm, vid);
	drop_records(l2, vm, 0);
	wr_end(l2);
	unlock_reclaim(l2);
}

static bool mac_zero(const uint8_t m[6])
{
	return (m[0] | m[1] | m[2] | m[3] | m[4] | m[5]) == 0;
}

static bool mac_bcast(const uint8_t m[6])
{
	return (m[0] & m[1] & m[2] & m[3] & m[4] & m[5]) == 0xff;
}

VDEMUX_API int vdemux_l2_add_mac(vdemux_l2 *l2, vdemux_vm_id vm, const uint8_t mac[6], uint16_t vid)
{
	if (!l2 || !mac || vm == 0 || !vid_ok(vid) || (mac[0] & 1) || mac_zero(mac))
		return -EINVAL;
	uint64_t key = mk_key(mac_bits(mac), vid);
	pthread_mutex_lock(&l2->lock);
	int rc = 0;
	long f = member_flags(l2, vm, vid);
	int64_t s = tab_find(wtab(l2), key);
	if (f < 0) {
		rc = -ENOENT;
	} else if (s >= 0) {
		rc = ent_vm(slot_val(wtab(l2), (uint64_t)s)) == vm ? 0 : -EEXIST;
	} else if (l2->n_entries >= l2->max_entries) {
		rc = -ENOSPC;
	} else if ((rc = tab_reserve(l2)) == 0) {
		wr_begin(l2);
		tab_put(wtab(l2), key, ent(vm, (uint32_t)f & L2_F_TAGGED));
		wr_end(l2);
		l2->n_entries++;
	}
	unlock_reclaim(l2);
	return rc;
}

VDEMUX_API int vdemux_l2_del_mac(vdemux_l2 *l2, const uint8_t mac[6], uint16_t vid)
{
	if (!l2 || !mac || !vid_ok(vid) || (mac[0] & 1) || mac_zero(mac))
		return -EINVAL;
	uint64_t key = mk_key(mac_bits(mac), vid);
	pthread_mutex_lock(&l2->lock);
	int rc = 0;
	int64_t s = tab_find(wtab(l2), key);
	if (s < 0) {
		rc = -ENOENT;
	} else {
		wr_begin(l2);
		tab_kill(wtab(l2), (uint64_t)s);
		wr_end(l2);
		l2->n_entries--;
	}
	unlock_reclaim(l2);
	return rc;
}

VDEMUX_API int vdemux_l2_add_mcast(vdemux_l2 *l2, vdemux_vm_id vm, const uint8_t group[6], uint16_t vid)
{
	if (!l2 || !group || vm == 0 || !vid_ok(vid) || !(group[0] & 1) || mac_bcast(group))
		return -EINVAL;
	uint64_t key = mk_key(mac_bits(group), vid);
	pthread_mutex_lock(&l2->lock);
	int rc = 0;
	int64_t s = tab_find(wtab(l2), key);
	if (member_flags(l2, vm, vid) < 0) {
		rc = -ENOENT;
	} else if (s >= 0) {
		struct l2_tab *t = wtab(l2);
		struct l2_arr *g = (struct l2_arr *)(uintptr_t)slot_val(t, (uint64_t)s);
		if (arr_find(g, vm) < 0) {
			/* The slot's value is the array pointer: reserve through
			 * a local atomic, then publish the copy in the slot. */
			_Atomic(struct l2_arr *) pa;
			atomic_init(&pa, g);
			rc = arr_reserve(l2, &pa);
			if (rc == 0) {
				struct l2_arr *ng = atomic_load_explicit(&pa, memory_order_relaxed);
				if (ng != g)
					atomic_store_explicit(&t->s[s].val, (uint64_t)(uintptr_t)ng,
							      memory_order_release);
				long pos = -arr_find(ng, vm) - 1;
				wr_begin(l2);
				arr_insert_at(ng, (uint32_t)pos, ent(vm, 0));
				wr_end(l2);
			}
		}
	} else if (l2->n_entries >= l2->max_entries) {
		rc = -ENOSPC;
	} else {
		struct l2_arr *g = arr_new(l2, L2_ARR_MIN);
		if (!g) {
			rc = -ENOMEM;
		} else if ((rc = tab_reserve(l2)) != 0) {
			l2_free(&l2->alloc, g);
		} else {
			atomic_store_explicit(&g->e[0], ent(vm, 0), memory_order_relaxed);
			atomic_store_explicit(&g->n, 1, memory_order_relaxed);
			atomic_thread_fence(memory_order_release);
			wr_begin(l2);
			tab_put(wtab(l2), key, (uint64_t)(uintptr_t)g);
			wr_end(l2);
			l2->n_entries++;
		}
	}
	unlock_reclaim(l2);
	return rc;
}

VDEMUX_API int vdemux_l2_del_mcast(vdemux_l2 *l2, vdemux_vm_id vm, const uint8_t group[6], uint16_t vid)
{
	if (!l2 || !group || vm == 0 || !vid_ok(vid) || !(group[0] & 1) || mac_bcast(group))
		return -EINVAL;
	uint64_t key = mk_key(mac_bits(group), vid);
	pthread_mutex_lock(&l2->lock);
	int rc = -ENOENT;
	struct l2_tab *t = wtab(l2);
	int64_t s = tab_find(t, key);
	if (s >= 0) {
		struct l2_arr *g = (struct l2_arr *)(uintptr_t)slot_val(t, (uint64_t)s);
		long i = arr_find(g, vm);
		if (i >= 0) {
			rc = 0;
			wr_begin(l2);
			arr_remove_at(g, (uint32_t)i);
			if (arr_n(g) == 0) {
				tab_kill(t, (uint64_t)s);
				l2->n_entries--;
				retire(l2, &g->obj);
			}
			wr_end(l2);
		}
	}
	unlock_reclaim(l2);
	return rc;
}

VDEMUX_API int vdemux_l2_set_allmulti(vdemux_l2 *l2, vdemux_vm_id vm, uint16_t vid, int on)
{
	if (!l2 || vm == 0 || !vid_ok(vid))
		return -EINVAL;
	pthread_mutex_lock(&l2->lock);
	int rc = 0;
	long f = member_flags(l2, vm, vid);
	if (f < 0) {
		rc = -ENOENT;
	} else if (!!on != !!((uint32_t)f & L2_F_ALLMULTI)) {
		if (on)
			rc = arr_reserve(l2, &l2->vlan[vid].allmulti);
		if (rc == 0) {
			struct l2_arr *m = wmembers(l2, vid);
			struct l2_arr *am = wallmulti(l2, vid);
			long i = arr_find(m, vm);
			long j = arr_find(am, vm);
			uint32_t tagged = (uint32_t)f & L2_F_TAGGED;
			wr_begin(l2);
			if (on) {
				arr_set(m, (uint32_t)i, ent(vm, (uint32_t)f | L2_F_ALLMULTI));
				arr_insert_at(am, (uint32_t)(-j - 1), ent(vm, tagged));
			} else {
				arr_set(m, (uint32_t)i, ent(vm, (uint32_t)f & ~L2_F_ALLMULTI));
				arr_remove_at(am, (uint32_t)j);
			}
			wr_end(l2);
		}
	}
	unlock_reclaim(l2);
	return rc;
}

VDEMUX_API int vdemux_l2_set_default(vdemux_l2 *l2, uint16_t vid, vdemux_vm_id vm)
{
	if (!l2 || !vid_ok(vid))
		return -EINVAL;
	pthread_mutex_lock(&l2->lock);
	int rc = 0;
	long f = vm ? member_flags(l2, vm, vid) : 0;
	if (f < 0) {
		rc = -ENOENT;
	} else {
		wr_begin(l2);
		atomic_store_explicit(&l2->vlan[vid].dflt, vm ? ent(vm, (uint32_t)f & L2_F_TAGGED) : 0,
				      memory_order_relaxed);
		wr_end(l2);
	}
	unlock_reclaim(l2);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* Lookups                                                                  */

static inline uint64_t rd_lookup(const struct l2_tab *t, uint64_t key)
{
	int64_t s = tab_find(t, key);
	return s < 0 ? 0 : slot_val(t, (uint64_t)s);
}

VDEMUX_API vdemux_vm_id vdemux_l2_lookup(vdemux_l2 *l2, const uint8_t mac[6], uint16_t vid)
{
	if (!l2 || !mac || (mac[0] & 1) || !vid_ok(vid))
		return 0;
	uint64_t key = mk_key(mac_bits(mac), vid);
	unsigned r = rd_enter(l2);
	uint64_t val;
	uint32_t s;
	do {
		s = rd_begin(l2);
		val = rd_lookup(atomic_load_explicit(&l2->tab, memory_order_acquire), key);
	} while (rd_retry(l2, s));
	rd_exit(l2, r);
	return ent_vm(val);
}

/* Lookups in flight in vdemux_l2_lookup_bulk(): slot prefetches are issued
 * this many keys ahead of the probes that use them. */
#define L2_LOOKAHEAD 16u

static inline uint64_t bulk_key(const uint8_t *mac, uint16_t vid)
{
	/* Group addresses and bad VIDs never match a unicast entry: give them
	 * a key that is never stored. */
	return (mac[0] & 1) || !vid_ok(vid) ? L2_KEY_TOMB - 1 : mk_key(mac_bits(mac), vid);
}

static inline vdemux_vm_id bulk_probe(const struct l2_tab *t, uint64_t key, uint64_t j)
{
	uint64_t mask = t->mask;
	for (uint64_t probe = 0; probe <= mask; probe++) {
		uint64_t k = slot_key(t, j);
		if (k == key)
			return ent_vm(slot_val(t, j));
		if (k == L2_KEY_EMPTY)
			return 0;
		j = (j + 1) & mask;
	}
	return 0;
}

VDEMUX_API int vdemux_l2_lookup_bulk(vdemux_l2 *l2, const uint8_t *const *macs, const uint16_t *vids,
				     unsigned n, vdemux_vm_id *out)
{
	if (!l2 || !macs || !vids || !out)
		return -EINVAL;
	unsigned r = rd_enter(l2);
	uint32_t s;
	do {
		uint64_t keys[L2_LOOKAHEAD], idx[L2_LOOKAHEAD];
		s = rd_begin(l2);
		const struct l2_tab *t = atomic_load_explicit(&l2->tab, memory_order_acquire);
		/* Software pipeline: iteration i probes key i - L2_LOOKAHEAD,
		 * then hashes key i and prefetches its slot. */
		/* 64-bit indices: n + L2_LOOKAHEAD does not wrap for any n. */
		for (uint64_t i = 0; i < (uint64_t)n + L2_LOOKAHEAD; i++) {
			if (i >= L2_LOOKAHEAD) {
				uint64_t j = i - L2_LOOKAHEAD;
				out[j] = bulk_probe(t, keys[j % L2_LOOKAHEAD], idx[j % L2_LOOKAHEAD]);
			}
			if (i < n) {
				if (i + 2 * L2_LOOKAHEAD < n)
					__builtin_prefetch(macs[i + 2 * L2_LOOKAHEAD]);
				uint64_t k = bulk_key(macs[i], vids[i]);
				uint64_t x = slot_of(l2_hash(k), t->mask);
				keys[i % L2_LOOKAHEAD] = k;
				idx[i % L2_LOOKAHEAD] = x;
				__builtin_prefetch(&t->s[x]);
			}
		}
	} while (rd_retry(l2, s));
	rd_exit(l2, r);
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Classification                                                           */

struct l2_frame {
	uint64_t dst;	 /* destination MAC bits */
	uint16_t vid;	 /* the frame's VLAN */
	uint16_t tci;	 /* the uplink tag's TCI, if has_tag */
	bool has_tag;	 /* the first tag is of the uplink's protocol */
	unsigned wanted; /* destinations found (classify_once) */
};

static inline bool link_local(uint64_t dst, uint16_t proto)
{
	if ((dst >> 8) != 0x0180c20000ull)
		return false;
	unsigned low = (unsigned)(dst & 0xff);
	if (proto == VDEMUX_TPID_8021Q)
		return low <= 0x0f;
	return (low >= 0x01 && low <= 0x0a) || low == 0x0e;
}

/* Add a destination; f->wanted counts them even past the verdict's capacity. */
static inline void put_dest(struct vdemux_verdict *v, struct l2_frame *f, vdemux_l2 *l2, vdemux_vm_id vm,
			    uint32_t flags)
{
	f->wanted++;
	if (v->n >= v->cap)
		return;
	struct vdemux_dest *d = &v->dests[v->n++];
	d->vm = vm;
	d->pad = 0;
	d->pad2 = 0;
	d->tpid = 0;
	d->tci = 0;
	if (flags & L2_F_TAGGED) {
		if (!f->has_tag) {
			d->action = VDEMUX_VLAN_PUSH;
			d->tpid = l2->proto;
			d->tci = f->vid;
		} else if ((f->tci & 0x0fff) == f->vid) {
			d->action = VDEMUX_VLAN_KEEP;
		} else {
			/* Priority-tagged: the VID becomes the VLAN's, the
			 * priority and DEI bits stay as they came. */
			d->action = VDEMUX_VLAN_SET;
			d->tpid = l2->proto;
			d->tci = (uint16_t)((f->tci & 0xf000) | f->vid);
		}
	} else {
		d->action = f->has_tag ? VDEMUX_VLAN_STRIP : VDEMUX_VLAN_KEEP;
	}
}

static void put_array(struct vdemux_verdict *v, struct l2_frame *f, vdemux_l2 *l2, const struct l2_arr *a)
{
	uint32_t n = arr_n(a);
	for (uint32_t i = 0; i < n; i++) {
		uint64_t e = arr_get(a, i);
		put_dest(v, f, l2, ent_vm(e), ent_flags(e));
	}
}

/* One pass over a consistent configuration (the caller retries otherwise). */
static inline __attribute__((always_inline)) void classify_once(vdemux_l2 *l2, struct l2_frame *f,
								struct vdemux_verdict *v)
{
	f->wanted = 0;
	v->n = 0;
	v->drop_reason = VDEMUX_DROP_NONE;
	const struct l2_vlan *vl = &l2->vlan[f->vid];

	if (!key_is_group(f->dst)) {
		const struct l2_tab *t = atomic_load_explicit(&l2->tab, memory_order_acquire);
		uint64_t val = rd_lookup(t, mk_key(f->dst, f->vid));
		if (val) {
			put_dest(v, f, l2, ent_vm(val), ent_flags(val));
			return;
		}
		if (arr_n(atomic_load_explicit(&vl->members, memory_order_acquire)) == 0) {
			v->drop_reason = VDEMUX_DROP_NO_VLAN_MEMBER;
			return;
		}
		uint64_t d = atomic_load_explicit(&vl->dflt, memory_order_relaxed);
		if (d)
			put_dest(v, f, l2, ent_vm(d), ent_flags(d));
		else
			v->drop_reason = VDEMUX_DROP_UNKNOWN_UNICAST;
		return;
	}

	const struct l2_arr *m = atomic_load_explicit(&vl->members, memory_order_acquire);
	if (arr_n(m) == 0) {
		v->drop_reason = VDEMUX_DROP_NO_VLAN_MEMBER;
		return;
	}
	if (f->dst == 0xffffffffffffull) {
		put_array(v, f, l2, m);
		return;
	}
	put_array(v, f, l2, atomic_load_explicit(&vl->allmulti, memory_order_acquire));
	const struct l2_tab *t = atomic_load_explicit(&l2->tab, memory_order_acquire);
	int64_t s = tab_find(t, mk_key(f->dst, f->vid));
	if (s >= 0) {
		const struct l2_arr *g = (const struct l2_arr *)(uintptr_t)atomic_load_explicit(
			&((struct l2_tab *)t)->s[s].val, memory_order_acquire);
		uint32_t n = arr_n(g);
		for (uint32_t i = 0; i < n; i++) {
			vdemux_vm_id vm = ent_vm(arr_get(g, i));
			long k = arr_find(m, vm);
			if (k < 0)
				continue; /* only in a torn view: the retry discards it */
			uint32_t fl = ent_flags(arr_get(m, (uint32_t)k));
			if (!(fl & L2_F_ALLMULTI))
				put_dest(v, f, l2, vm, fl);
		}
	}
	if (f->wanted == 0)
		v->drop_reason = VDEMUX_DROP_NO_SUBSCRIBER;
}

static inline uint16_t be16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

/* The whole classification; @p reg: register as a reader for it (false: the
 * caller is inside a read section, l2_read_begin()). */
static inline __attribute__((always_inline)) int
classify_frame(vdemux_l2 *l2, const uint8_t *frame, uint32_t len, struct vdemux_verdict *v, bool reg)
{
	if (!l2 || !v || (!frame && len) || (!v->dests && v->cap))
		return -EINVAL;
	v->n = 0;
	v->drop_reason = VDEMUX_DROP_NONE;
	if (len < 14) {
		v->drop_reason = VDEMUX_DROP_MALFORMED;
		return 0;
	}
	struct l2_frame f = {.dst = mac_bits(frame), .vid = l2->native};
	if (be16(frame + 12) == l2->proto) {
		if (len < 18) {
			v->drop_reason = VDEMUX_DROP_MALFORMED;
			return 0;
		}
		f.has_tag = true;
		f.tci = be16(frame + 14);
		if (f.tci & 0x0fff)
			f.vid = f.tci & 0x0fff;
	}
	const uint8_t *src = frame + 6;
	if ((src[0] & 1) || mac_zero(src)) {
		v->drop_reason = VDEMUX_DROP_INVALID_SRC;
		return 0;
	}
	if (key_is_group(f.dst) && link_local(f.dst, l2->proto)) {
		v->drop_reason = VDEMUX_DROP_LINK_LOCAL;
		return 0;
	}
	unsigned r = reg ? rd_enter(l2) : 0;
	uint32_t s;
	do {
		s = rd_begin(l2);
		classify_once(l2, &f, v);
	} while (rd_retry(l2, s));
	if (reg)
		rd_exit(l2, r);
	if (v->n == 0 && v->drop_reason == VDEMUX_DROP_NONE)
		v->drop_reason = VDEMUX_DROP_NO_DEST;
	return 0;
}

VDEMUX_API int vdemux_l2_classify(vdemux_l2 *l2, const uint8_t *frame, uint32_t len,
				  struct vdemux_verdict *v)
{
	return classify_frame(l2, frame, len, v, true);
}

/* The classifier interface's read section: one registration for every
 * classification made in it (the engine's: one per engine call). */
static uintptr_t l2_read_begin(struct vdemux_classifier *cls)
{
	return rd_enter((vdemux_l2 *)cls);
}

static int l2_classify_read(struct vdemux_classifier *cls, const uint8_t *frame, uint32_t len,
			    struct vdemux_verdict *v)
{
	return classify_frame((vdemux_l2 *)cls, frame, len, v, false);
}

static void l2_read_end(struct vdemux_classifier *cls, uintptr_t token)
{
	rd_exit((vdemux_l2 *)cls, (unsigned)token);
}

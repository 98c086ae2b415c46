/* SPDX-License-Identifier: MIT */
/*
 * The KVM backend without /dev/kvm.
 *
 * What the backend does is ordinary Linux memory management on the VMM's
 * address space, so it is tested here on a memfd arena and on host virtual
 * addresses of the test process standing in for guest RAM. A second thread
 * plays the guest: it reads through those addresses, as a vCPU reads through
 * the memslot. A hole must fault for it (SIGSEGV, caught), a flip must be
 * seen at once, and a page must be cleared before another VM gets it.
 * tests/kernel/kvm_flip.c does the same against a real KVM.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

/* Under valgrind the probes' faults are intended: keep them out of the report. */
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define PROBE_QUIET_BEGIN() VALGRIND_DISABLE_ERROR_REPORTING
#define PROBE_QUIET_END() VALGRIND_ENABLE_ERROR_REPORTING
#endif
#endif
#ifndef PROBE_QUIET_BEGIN
#define PROBE_QUIET_BEGIN() ((void)0)
#define PROBE_QUIET_END() ((void)0)
#endif

#include <vdemux/sys/backend.h>
#include <vdemux/sys/classifier.h>
#include <vdemux/vdemux.h>

#include "backends/kvm_seam.h"
#include "vt.h"

#define PAGE VDEMUX_PAGE_SIZE
#define RAM_PAGES 64u		   /* guest RAM of one VM: GPA 0 .. 256 KiB */
#define RX_BASE 0x10000u	   /* RX window: GPA 64 KiB .. */
#define RX_PAGES 16u		   /* .. 128 KiB */
#define POOL_FIRST (2 * RAM_PAGES) /* arena: RAM of VM A, RAM of VM B, pool */

/* ---- the "guest": a thread reading through host virtual addresses -------- */

/* volatile: the stores around the probed accesses must not be elided or moved. */
static __thread sigjmp_buf *volatile fault_jmp;

static void on_fault(int sig)
{
	if (fault_jmp)
		siglongjmp(*fault_jmp, sig);
	/* Not a probe: die as the fault deserves. */
	signal(sig, SIG_DFL);
}

/* CMocka installs its own handlers around each test: take them over for the probe. */
static void install_fault_handler(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_fault;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
}

/* Copy len bytes from p, or return -EFAULT if the access faulted. */
static int probe_copy(void *dst, const volatile uint8_t *p, size_t len, bool write)
{
	sigjmp_buf jb;

	PROBE_QUIET_BEGIN();
	if (sigsetjmp(jb, 1)) {
		fault_jmp = NULL;
		PROBE_QUIET_END();
		return -EFAULT;
	}
	fault_jmp = &jb;
	if (write) {
		for (size_t i = 0; i < len; i++)
			((volatile uint8_t *)p)[i] = ((const uint8_t *)dst)[i];
	} else {
		for (size_t i = 0; i < len; i++)
			((uint8_t *)dst)[i] = p[i];
	}
	fault_jmp = NULL;
	PROBE_QUIET_END();
	return 0;
}

struct guest_access {
	uint8_t *addr;
	size_t len;
	uint8_t *buf;
	bool write;
	int result;
};

static void *guest_access_thread(void *arg)
{
	struct guest_access *a = arg;
	install_fault_handler();
	a->result = probe_copy(a->buf, a->addr, a->len, a->write);
	return NULL;
}

/* The guest (another thread) reads len bytes at hva: 0 or -EFAULT. */
static int guest_read(void *hva, void *buf, size_t len)
{
	struct guest_access a = {.addr = hva, .len = len, .buf = buf, .write = false, .result = -1};
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, guest_access_thread, &a), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	return a.result;
}

static int guest_write(void *hva, const void *buf, size_t len)
{
	struct guest_access a = {
		.addr = hva, .len = len, .buf = (uint8_t *)buf, .write = true, .result = -1};
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, guest_access_thread, &a), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	return a.result;
}

static bool all_bytes(const uint8_t *p, size_t len, uint8_t v)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != v)
			return false;
	return true;
}

/* ---- mmap seam: make the n-th call fail ---------------------------------- */

struct inject {
	unsigned calls;	     /* mmap calls seen */
	unsigned fail_at;    /* 1-based call from which calls fail; 0: never */
	unsigned fail_count; /* how many calls fail from there; 0 means 1 */
	bool drop_first;     /* drop the old mapping before failing, as older kernels may */
	bool spare_holes;    /* let PROT_NONE calls (holes) through */
	int err;
};

static void *inject_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off, void *payload)
{
	struct inject *in = payload;
	unsigned n = in->fail_count ? in->fail_count : 1;

	in->calls++;
	if (in->fail_at && in->calls >= in->fail_at && in->calls < in->fail_at + n &&
	    !(in->spare_holes && prot == PROT_NONE)) {
		if (in->drop_first)
			munmap(addr, len);
		errno = in->err ? in->err : ENOMEM;
		return MAP_FAILED;
	}
	return mmap(addr, len, prot, flags, fd, off);
}

/* ---- fixture: an arena, guest RAM for two VMs, a backend for VM A -------- */

struct fx {
	vdemux_arena *arena;
	struct vdemux_arena_info ai;
	uint8_t *ram[2]; /* guest RAM of VM A and B, from the arena */
	struct vdemux_backend *be[2];
	struct vdemux_backend_vm vm;
	void *ctx;
	struct inject inj; /* the mmap seam's state: lives as long as the backends */
};

static uint8_t *page_ptr(struct fx *f, uint32_t page)
{
	return f->ai.base + (size_t)page * PAGE;
}

static uint8_t *rx_hva(struct fx *f, int vm, uint32_t slot)
{
	return f->ram[vm] + RX_BASE + (size_t)slot * PAGE;
}

static uint64_t rx_gpa(uint32_t slot)
{
	return RX_BASE + (uint64_t)slot * PAGE;
}

static struct vdemux_kvm_opts ram_opts(struct fx *f, int vm)
{
	return VDEMUX_OPTS(vdemux_kvm_opts, .ram_gpa = 0, .ram_size = (uint64_t)RAM_PAGES * PAGE,
			   .ram_hva = f->ram[vm], .flags = VDEMUX_KVM_F_HOME_FD, .home_fd = f->ai.fd,
			   .home_offset = (uint64_t)vm * RAM_PAGES * PAGE);
}

static int fx_setup(void **state)
{
	static struct fx f;

	memset(&f, 0, sizeof(f));
	struct vdemux_arena_opts ao = VDEMUX_OPTS(vdemux_arena_opts, .npages = POOL_FIRST + 64,
						  .kind = VDEMUX_ARENA_MEMFD);
	assert_int_equal(vdemux_arena_create(&f.arena, &ao), 0);
	assert_int_equal(vdemux_arena_info(f.arena, &f.ai), 0);
	for (int v = 0; v < 2; v++) {
		void *p;
		assert_int_equal(vdemux_kvm_ram_map(f.arena, (uint32_t)v * RAM_PAGES, RAM_PAGES, &p), 0);
		f.ram[v] = p;
		/* What the VMM had in guest RAM: a recognisable pattern. */
		memset(f.ram[v], 0x11 * (v + 1), (size_t)RAM_PAGES * PAGE);
	}
	struct vdemux_kvm_opts o = ram_opts(&f, 0);
	assert_int_equal(vdemux_kvm_create(&f.be[0], &o), 0);
	f.vm = (struct vdemux_backend_vm){
		.vm_id = 1,
		.rx_base = RX_BASE,
		.rx_pages = RX_PAGES,
		.arena = f.ai,
		.engine_first_page = POOL_FIRST,
		.engine_npages = 64,
	};
	*state = &f;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;

	for (int v = 0; v < 2; v++) {
		if (f->be[v] && f->be[v]->free)
			f->be[v]->free(f->be[v]);
		if (f->ram[v])
			vdemux_kvm_ram_unmap(f->ram[v], RAM_PAGES);
	}
	vdemux_arena_destroy(f->arena);
	return 0;
}

static void attach(struct fx *f)
{
	assert_int_equal(f->be[0]->vm_attach(f->be[0], &f->vm, &f->ctx), 0);
}

static int do_batch(struct fx *f, vdemux_backend_batch_fn fn, const struct vdemux_map *m, unsigned n,
		    unsigned *done)
{
	return fn(f->be[0], f->ctx, m, n, done);
}

static void fill_page(struct fx *f, uint32_t page, uint8_t v)
{
	memset(page_ptr(f, page), v, PAGE);
}

static struct vdemux_kvm_stats kstats(struct vdemux_backend *be)
{
	struct vdemux_kvm_stats s;
	assert_int_equal(vdemux_kvm_stats(be, &s, sizeof(s)), 0);
	return s;
}

/* ---- options ------------------------------------------------------------- */

static void test_create_rejects_bad_options(void **state)
{
	struct fx *f = *state;
	struct vdemux_backend *be = NULL;
	struct vdemux_kvm_opts o = ram_opts(f, 0);

	assert_int_equal(vdemux_kvm_create(NULL, &o), -EINVAL);
	assert_int_equal(vdemux_kvm_create(&be, NULL), -EINVAL);

	struct vdemux_kvm_opts bad = o;
	bad.ram_size = 0;
	assert_int_equal(vdemux_kvm_create(&be, &bad), -EINVAL);
	bad = o;
	bad.ram_size = PAGE + 1;
	assert_int_equal(vdemux_kvm_create(&be, &bad), -EINVAL);
	bad = o;
	bad.ram_gpa = 0x800;
	assert_int_equal(vdemux_kvm_create(&be, &bad), -EINVAL);
	bad = o;
	bad.ram_hva = f->ram[0] + 8;
	assert_int_equal(vdemux_kvm_create(&be, &bad), -EINVAL);
	bad = o;
	bad.ram_gpa = UINT64_MAX - PAGE + 1;
	assert_int_equal(vdemux_kvm_create(&be, &bad), -EINVAL);
	bad = o;
	bad.flags = 0x80;
	assert_int_equal(vdemux_kvm_create(&be, &bad), -EINVAL);
	bad = o;
	bad.flags = VDEMUX_KVM_F_SET_MEMSLOT;
	bad.vm_fd = -1;
	assert_int_equal(vdemux_kvm_create(&be, &bad), -EINVAL);
	bad = o;
	bad.home_fd = -1;
	assert_int_equal(vdemux_kvm_create(&be, &bad), -EINVAL);
	bad = o;
	bad.alloc.payload = NULL;
	bad.alloc.free = NULL;
	bad.alloc.calloc = NULL;
	assert_int_equal(vdemux_kvm_create(&be, &bad), 0); /* neither hook: fine */
	be->free(be);
	be = NULL;

	/* A caller built against a newer header: unknown trailing bytes must be zero. */
	struct {
		struct vdemux_kvm_opts o;
		uint64_t future;
	} big = {.o = o, .future = 0};
	big.o.sz = sizeof(big);
	assert_int_equal(vdemux_kvm_create(&be, &big.o), 0);
	be->free(be);
	be = NULL;
	big.future = 1;
	assert_int_equal(vdemux_kvm_create(&be, &big.o), -EINVAL);
	assert_null(be);

	/* An older caller: fields past its sz take their defaults. */
	struct vdemux_kvm_opts old = o;
	old.sz = offsetof(struct vdemux_kvm_opts, flags);
	assert_int_equal(vdemux_kvm_create(&be, &old), 0);
	assert_string_equal(be->name, "kvm");
	assert_int_equal(be->copy_threshold, VDEMUX_KVM_COPY_THRESHOLD_DEFAULT);
	be->free(be);

	/* The VMM's own measured threshold. */
	struct vdemux_kvm_opts mine = o;
	mine.copy_threshold = 512;
	assert_int_equal(vdemux_kvm_create(&be, &mine), 0);
	assert_int_equal(be->copy_threshold, 512);
	be->free(be);
}

static void test_set_memslot_on_a_non_kvm_fd_fails_cleanly(void **state)
{
	struct fx *f = *state;
	struct vdemux_backend *be = NULL;
	struct vdemux_kvm_opts o = ram_opts(f, 0);
	int fd = eventfd(0, EFD_CLOEXEC);

	assert_true(fd >= 0);
	o.flags |= VDEMUX_KVM_F_SET_MEMSLOT;
	o.vm_fd = fd;
	int r = vdemux_kvm_create(&be, &o);
	assert_true(r == -ENOTTY || r == -EINVAL);
	assert_null(be);
	close(fd);
}

static void test_non_kvm_backend_is_refused_by_helpers(void **state)
{
	(void)state;
	struct vdemux_backend other = VDEMUX_BACKEND_INIT;
	struct vdemux_kvm_stats s;
	uint32_t page;

	assert_int_equal(vdemux_kvm_stats(&other, &s, sizeof(s)), -EINVAL);
	assert_int_equal(vdemux_kvm_translate(&other, RX_BASE, &page), -EINVAL);
	assert_int_equal(vdemux_kvm_backfill(&other, RX_BASE), -EINVAL);
	assert_int_equal(vdemux_kvm_stats(NULL, &s, sizeof(s)), -EINVAL);
}

/* ---- attach ---------------------------------------------------------------- */

static void test_attach_turns_rx_window_into_holes(void **state)
{
	struct fx *f = *state;
	uint8_t b[16];

	assert_int_equal(guest_read(rx_hva(f, 0, 0), b, sizeof(b)), 0);
	assert_true(all_bytes(b, sizeof(b), 0x11));
	attach(f);
	for (uint32_t s = 0; s < RX_PAGES; s++) {
		uint32_t page = 0;
		assert_int_equal(guest_read(rx_hva(f, 0, s), b, 1), -EFAULT);
		assert_int_equal(vdemux_kvm_translate(f->be[0], rx_gpa(s), &page), 0);
		assert_int_equal(page, VDEMUX_NO_PAGE);
	}
	/* Guest RAM outside the window is untouched. */
	assert_int_equal(guest_read(rx_hva(f, 0, 0) - PAGE, b, sizeof(b)), 0);
	assert_true(all_bytes(b, sizeof(b), 0x11));
	assert_int_equal(guest_read(rx_hva(f, 0, RX_PAGES), b, sizeof(b)), 0);
	assert_true(all_bytes(b, sizeof(b), 0x11));
}

static void test_attach_rejects_window_outside_ram_and_heap_arena(void **state)
{
	struct fx *f = *state;
	struct vdemux_backend_vm vm = f->vm;
	void *ctx = NULL;

	vm.rx_base = (RAM_PAGES - 2) * (uint64_t)PAGE;
	vm.rx_pages = 3;
	assert_int_equal(f->be[0]->vm_attach(f->be[0], &vm, &ctx), -EINVAL);
	vm = f->vm;
	vm.arena.kind = VDEMUX_ARENA_HEAP;
	vm.arena.fd = -1;
	assert_int_equal(f->be[0]->vm_attach(f->be[0], &vm, &ctx), -EINVAL);
	assert_null(ctx);

	/* One backend, one VM. */
	attach(f);
	assert_int_equal(f->be[0]->vm_attach(f->be[0], &f->vm, &ctx), -EBUSY);
}

static void test_detach_gives_the_window_its_memory_back(void **state)
{
	struct fx *f = *state;
	uint8_t b[64];

	attach(f);
	assert_int_equal(guest_read(rx_hva(f, 0, 3), b, 1), -EFAULT);
	f->be[0]->vm_detach(f->be[0], f->ctx);
	/* VDEMUX_KVM_F_HOME_FD: the arena pages that were guest RAM are back. */
	assert_int_equal(guest_read(rx_hva(f, 0, 3), b, sizeof(b)), 0);
	assert_true(all_bytes(b, sizeof(b), 0x11));
}

/* ---- map, unmap, remap ---------------------------------------------------- */

static void test_mapped_page_is_seen_by_the_guest(void **state)
{
	struct fx *f = *state;
	uint8_t b[PAGE];
	unsigned done = 99;

	attach(f);
	fill_page(f, POOL_FIRST + 5, 0xa5);
	struct vdemux_map m = {.gpa = rx_gpa(2), .page = POOL_FIRST + 5};
	assert_int_equal(do_batch(f, f->be[0]->map, &m, 1, &done), 0);
	assert_int_equal(done, 1);
	assert_int_equal(guest_read(rx_hva(f, 0, 2), b, PAGE), 0);
	assert_true(all_bytes(b, PAGE, 0xa5));

	/* It is the arena page itself, not a copy: writes go both ways. */
	page_ptr(f, POOL_FIRST + 5)[100] = 0x42;
	assert_int_equal(guest_read(rx_hva(f, 0, 2) + 100, b, 1), 0);
	assert_int_equal(b[0], 0x42);
	uint8_t w = 0x77;
	assert_int_equal(guest_write(rx_hva(f, 0, 2) + 7, &w, 1), 0);
	assert_int_equal(page_ptr(f, POOL_FIRST + 5)[7], 0x77);

	uint32_t page;
	assert_int_equal(vdemux_kvm_translate(f->be[0], rx_gpa(2), &page), 0);
	assert_int_equal(page, POOL_FIRST + 5);
	assert_int_equal(f->be[0]->query(f->be[0], f->ctx, rx_gpa(2), &page), 0);
	assert_int_equal(page, POOL_FIRST + 5);
	/* Its neighbours are still holes. */
	assert_int_equal(guest_read(rx_hva(f, 0, 1), b, 1), -EFAULT);
	assert_int_equal(guest_read(rx_hva(f, 0, 3), b, 1), -EFAULT);
}

static void test_unmapped_gpa_is_a_hole_that_faults(void **state)
{
	struct fx *f = *state;
	uint8_t b[8];
	unsigned done;

	attach(f);
	fill_page(f, POOL_FIRST, 0x5c);
	struct vdemux_map m = {.gpa = rx_gpa(0), .page = POOL_FIRST};
	assert_int_equal(do_batch(f, f->be[0]->map, &m, 1, &done), 0);
	assert_int_equal(guest_read(rx_hva(f, 0, 0), b, 1), 0);
	assert_int_equal(do_batch(f, f->be[0]->unmap, &m, 1, &done), 0);
	assert_int_equal(done, 1);
	assert_int_equal(guest_read(rx_hva(f, 0, 0), b, 1), -EFAULT);
	uint8_t w = 1;
	assert_int_equal(guest_write(rx_hva(f, 0, 0), &w, 1), -EFAULT);
	/* The page itself is intact and reachable only through the arena. */
	assert_true(all_bytes(page_ptr(f, POOL_FIRST), PAGE, 0x5c));

	/* Unmapping a hole succeeds and costs no system call. */
	struct vdemux_kvm_stats s0 = kstats(f->be[0]);
	m.page = VDEMUX_NO_PAGE;
	assert_int_equal(do_batch(f, f->be[0]->unmap, &m, 1, &done), 0);
	assert_int_equal(done, 1);
	assert_int_equal(kstats(f->be[0]).mmap_calls, s0.mmap_calls);
}

static void test_map_over_a_mapped_gpa_is_refused(void **state)
{
	struct fx *f = *state;
	unsigned done;

	attach(f);
	struct vdemux_map m[2] = {{.gpa = rx_gpa(4), .page = POOL_FIRST + 1},
				  {.gpa = rx_gpa(4), .page = POOL_FIRST + 2}};
	assert_int_equal(do_batch(f, f->be[0]->map, m, 2, &done), -EEXIST);
	assert_int_equal(done, 1);
	uint32_t page;
	assert_int_equal(vdemux_kvm_translate(f->be[0], rx_gpa(4), &page), 0);
	assert_int_equal(page, POOL_FIRST + 1);
}

static void test_bad_entries_stop_the_batch_where_they_are(void **state)
{
	struct fx *f = *state;
	unsigned done;

	attach(f);
	struct vdemux_map m[3] = {{.gpa = rx_gpa(0), .page = POOL_FIRST},
				  {.gpa = rx_gpa(RX_PAGES), .page = POOL_FIRST + 1},
				  {.gpa = rx_gpa(2), .page = POOL_FIRST + 2}};
	assert_int_equal(do_batch(f, f->be[0]->map, m, 3, &done), -ERANGE);
	assert_int_equal(done, 1);
	m[1].gpa = rx_gpa(1) + 8;
	m[0].gpa = rx_gpa(5);
	assert_int_equal(do_batch(f, f->be[0]->map, m, 3, &done), -EINVAL);
	assert_int_equal(done, 1);
	m[0].gpa = rx_gpa(6);
	m[0].page = f->ai.npages;
	assert_int_equal(do_batch(f, f->be[0]->map, m, 3, &done), -EINVAL);
	assert_int_equal(done, 0);
	/* Arena pages outside the engine's range (here: guest RAM of VM A, of
	 * VM B) are never mapped. */
	m[0].page = 3;
	assert_int_equal(do_batch(f, f->be[0]->map, m, 1, &done), -EINVAL);
	m[0].page = RAM_PAGES + 3;
	assert_int_equal(do_batch(f, f->be[0]->remap, m, 1, &done), -EINVAL);
	m[0].page = POOL_FIRST + 64;
	assert_int_equal(do_batch(f, f->be[0]->map, m, 1, &done), -EINVAL);
	assert_int_equal(done, 0);
	uint32_t page;
	assert_int_equal(vdemux_kvm_translate(f->be[0], rx_gpa(2), &page), 0);
	assert_int_equal(page, VDEMUX_NO_PAGE);
	assert_int_equal(vdemux_kvm_translate(f->be[0], rx_gpa(RX_PAGES), &page), -ERANGE);
	assert_int_equal(vdemux_kvm_translate(f->be[0], RX_BASE - PAGE, &page), -ERANGE);
}

static void test_contiguous_runs_take_one_mmap_each(void **state)
{
	struct fx *f = *state;
	struct vdemux_map m[8];
	unsigned done;

	attach(f);
	/* 8 contiguous GPAs backed by 8 contiguous pages: one call. */
	for (unsigned i = 0; i < 8; i++) {
		m[i] = (struct vdemux_map){.gpa = rx_gpa(i), .page = POOL_FIRST + 10 + i};
		fill_page(f, m[i].page, (uint8_t)(0x30 + i));
	}
	struct vdemux_kvm_stats s0 = kstats(f->be[0]);
	assert_int_equal(do_batch(f, f->be[0]->map, m, 8, &done), 0);
	struct vdemux_kvm_stats s1 = kstats(f->be[0]);
	assert_int_equal(s1.mmap_calls - s0.mmap_calls, 1);
	assert_int_equal(s1.pages_mapped - s0.pages_mapped, 8);
	for (unsigned i = 0; i < 8; i++) {
		uint8_t b;
		assert_int_equal(guest_read(rx_hva(f, 0, i) + 99, &b, 1), 0);
		assert_int_equal(b, 0x30 + i);
	}
	/* Unmapping them: contiguous GPAs are enough. */
	assert_int_equal(do_batch(f, f->be[0]->unmap, m, 8, &done), 0);
	struct vdemux_kvm_stats s2 = kstats(f->be[0]);
	assert_int_equal(s2.mmap_calls - s1.mmap_calls, 1);

	/* Contiguous GPAs, scattered pages: one call per page. */
	for (unsigned i = 0; i < 8; i++)
		m[i].page = POOL_FIRST + 30 - 2 * i;
	assert_int_equal(do_batch(f, f->be[0]->map, m, 8, &done), 0);
	struct vdemux_kvm_stats s3 = kstats(f->be[0]);
	assert_int_equal(s3.mmap_calls - s2.mmap_calls, 8);

	/* Two runs of 4: [0..3] and [8..11] with contiguous pages each. */
	assert_int_equal(do_batch(f, f->be[0]->unmap, m, 8, &done), 0);
	for (unsigned i = 0; i < 8; i++)
		m[i] = (struct vdemux_map){.gpa = rx_gpa(i < 4 ? i : i + 4), .page = POOL_FIRST + 40 + i};
	struct vdemux_kvm_stats s4 = kstats(f->be[0]);
	assert_int_equal(do_batch(f, f->be[0]->map, m, 8, &done), 0);
	assert_int_equal(kstats(f->be[0]).mmap_calls - s4.mmap_calls, 2);
	for (unsigned i = 0; i < 8; i++) {
		uint32_t page;
		assert_int_equal(vdemux_kvm_translate(f->be[0], m[i].gpa, &page), 0);
		assert_int_equal(page, m[i].page);
	}
}

struct flipper {
	uint8_t *hva;
	volatile bool stop;
	volatile unsigned long reads, seen_a, seen_b, faults, torn;
};

/* The guest reads the first and last byte of the page, over and over. */
static void *flip_reader(void *arg)
{
	struct flipper *fl = arg;

	install_fault_handler();
	while (!fl->stop) {
		uint8_t b[2];
		if (probe_copy(&b[0], fl->hva, 1, false) < 0 ||
		    probe_copy(&b[1], fl->hva + PAGE - 1, 1, false) < 0) {
			fl->faults++;
			continue;
		}
		fl->reads++;
		if (b[0] == 0xa1 && b[1] == 0xa1)
			fl->seen_a++;
		else if (b[0] == 0xb2 && b[1] == 0xb2)
			fl->seen_b++;
		else if ((b[0] != 0xa1 && b[0] != 0xb2) || (b[1] != 0xa1 && b[1] != 0xb2))
			fl->torn++; /* neither page: must never happen */
	}
	return NULL;
}

static void test_remap_under_a_running_guest_never_shows_a_hole(void **state)
{
	struct fx *f = *state;
	unsigned done;

	attach(f);
	fill_page(f, POOL_FIRST + 1, 0xa1);
	fill_page(f, POOL_FIRST + 2, 0xb2);
	struct vdemux_map m = {.gpa = rx_gpa(7), .page = POOL_FIRST + 1};
	assert_int_equal(do_batch(f, f->be[0]->map, &m, 1, &done), 0);

	struct flipper fl = {.hva = rx_hva(f, 0, 7)};
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, flip_reader, &fl), 0);
	for (int i = 0; i < 2000; i++) {
		m.page = (i % 2) ? POOL_FIRST + 1 : POOL_FIRST + 2;
		assert_int_equal(do_batch(f, f->be[0]->remap, &m, 1, &done), 0);
		assert_int_equal(done, 1);
		if (i % 64 == 0)
			sched_yield();
	}
	/* End on page B, then let the guest read a while longer. */
	m.page = POOL_FIRST + 2;
	assert_int_equal(do_batch(f, f->be[0]->remap, &m, 1, &done), 0);
	unsigned long before = fl.seen_b;
	while (fl.seen_b < before + 100)
		sched_yield();
	fl.stop = true;
	assert_int_equal(pthread_join(t, NULL), 0);

	assert_int_equal(fl.faults, 0);
	assert_int_equal(fl.torn, 0);
	assert_true(fl.reads > 0);
	assert_true(fl.seen_b > 0);
	uint8_t b[PAGE];
	assert_int_equal(guest_read(rx_hva(f, 0, 7), b, PAGE), 0);
	assert_true(all_bytes(b, PAGE, 0xb2));
	assert_int_equal(kstats(f->be[0]).pages_remapped, 2001);
}

/* ---- failures of mmap in the middle of a batch ---------------------------- */

static void check_slots(struct fx *f, const uint32_t *want, unsigned n)
{
	for (unsigned s = 0; s < n; s++) {
		uint32_t page;
		uint8_t b;
		assert_int_equal(vdemux_kvm_translate(f->be[0], rx_gpa(s), &page), 0);
		assert_int_equal(page, want[s]);
		int r = guest_read(rx_hva(f, 0, s), &b, 1);
		if (want[s] == VDEMUX_NO_PAGE) {
			assert_int_equal(r, -EFAULT);
		} else {
			assert_int_equal(r, 0);
			assert_int_equal(b, page_ptr(f, want[s])[0]);
		}
	}
}

static void failing_map_batch(struct fx *f, bool drop_first)
{
	struct inject *in = &f->inj;
	*in = (struct inject){.fail_at = 3, .drop_first = drop_first};
	struct vdemux_map m[6];
	uint32_t want[RX_PAGES];
	unsigned done = 99;

	attach(f);
	for (unsigned s = 0; s < RX_PAGES; s++)
		want[s] = VDEMUX_NO_PAGE;
	for (unsigned i = 0; i < 6; i++) {
		/* Scattered pages: one mmap per entry. */
		m[i] = (struct vdemux_map){.gpa = rx_gpa(i), .page = POOL_FIRST + 20 - 3 * i};
		fill_page(f, m[i].page, (uint8_t)(0x60 + i));
	}
	assert_int_equal(vdemux_kvm_set_mmap_hook(f->be[0], inject_mmap, in), 0);
	assert_int_equal(do_batch(f, f->be[0]->map, m, 6, &done), -ENOMEM);
	assert_int_equal(done, 2);
	want[0] = m[0].page;
	want[1] = m[1].page;
	check_slots(f, want, RX_PAGES);
	struct vdemux_kvm_stats s = kstats(f->be[0]);
	assert_int_equal(s.failures, 1);
	assert_int_equal(s.repairs, drop_first ? 1 : 0);
	assert_int_equal(s.repair_failures, 0);

	/* The engine carries on with the rest: nothing was lost. */
	in->fail_at = 0;
	assert_int_equal(do_batch(f, f->be[0]->map, m + 2, 4, &done), 0);
	assert_int_equal(done, 4);
	for (unsigned i = 2; i < 6; i++)
		want[i] = m[i].page;
	check_slots(f, want, RX_PAGES);
}

static void test_mmap_failure_mid_map_batch_leaves_rest_unchanged(void **state)
{
	failing_map_batch(*state, false);
}

static void test_mmap_failure_after_kernel_dropped_mapping_is_repaired(void **state)
{
	failing_map_batch(*state, true);
}

static void test_mmap_failure_mid_remap_batch_keeps_old_pages(void **state)
{
	struct fx *f = *state;
	struct inject *in = &f->inj;
	*in = (struct inject){.fail_at = 0, .drop_first = true};
	struct vdemux_map m[4];
	uint32_t want[RX_PAGES];
	unsigned done;

	attach(f);
	assert_int_equal(vdemux_kvm_set_mmap_hook(f->be[0], inject_mmap, in), 0);
	for (unsigned s = 0; s < RX_PAGES; s++)
		want[s] = VDEMUX_NO_PAGE;
	/* Slots 0..3 hold pages 0, 1, 2, 3 of the pool (one run). */
	for (unsigned i = 0; i < 4; i++) {
		m[i] = (struct vdemux_map){.gpa = rx_gpa(i), .page = POOL_FIRST + i};
		fill_page(f, m[i].page, (uint8_t)(0x70 + i));
		want[i] = m[i].page;
	}
	assert_int_equal(do_batch(f, f->be[0]->map, m, 4, &done), 0);
	/* Remap them to scattered pages; the second call fails after the kernel dropped slot 1. */
	for (unsigned i = 0; i < 4; i++) {
		m[i].page = POOL_FIRST + 50 - 2 * i;
		fill_page(f, m[i].page, (uint8_t)(0x80 + i));
	}
	in->fail_at = in->calls + 2;
	assert_int_equal(do_batch(f, f->be[0]->remap, m, 4, &done), -ENOMEM);
	assert_int_equal(done, 1);
	want[0] = m[0].page;
	check_slots(f, want, RX_PAGES); /* slot 1 shows its old page again, 2 and 3 untouched */
	assert_int_equal(kstats(f->be[0]).repairs, 1);
}

static void test_unrepairable_failure_leaves_holes_never_a_gap(void **state)
{
	struct fx *f = *state;
	struct inject *in = &f->inj;
	*in = (struct inject){.drop_first = true, .spare_holes = true, .fail_count = 1000, .err = EAGAIN};
	struct vdemux_map m[2];
	unsigned done;
	uint8_t b;

	attach(f);
	assert_int_equal(vdemux_kvm_set_mmap_hook(f->be[0], inject_mmap, in), 0);
	for (unsigned i = 0; i < 3; i++) {
		struct vdemux_map one = {.gpa = rx_gpa(i), .page = POOL_FIRST + i};
		assert_int_equal(do_batch(f, f->be[0]->map, &one, 1, &done), 0);
	}
	/* The remap fails after the kernel dropped the old pages, and putting
	 * them back fails too: only holes can be had. */
	m[0] = (struct vdemux_map){.gpa = rx_gpa(0), .page = POOL_FIRST + 9};
	m[1] = (struct vdemux_map){.gpa = rx_gpa(1), .page = POOL_FIRST + 10};
	in->fail_at = in->calls + 1;
	assert_int_equal(do_batch(f, f->be[0]->remap, m, 2, &done), -EAGAIN);
	assert_int_equal(done, 0);
	struct vdemux_kvm_stats s = kstats(f->be[0]);
	assert_int_equal(s.repair_failures, 1);
	for (unsigned i = 0; i < 2; i++) {
		uint32_t page;
		assert_int_equal(vdemux_kvm_translate(f->be[0], rx_gpa(i), &page), 0);
		assert_int_equal(page, VDEMUX_NO_PAGE);
		assert_int_equal(guest_read(rx_hva(f, 0, i), &b, 1), -EFAULT);
		/* A hole is a mapping: nothing else of the VMM can land there. */
		unsigned char vec;
		assert_int_equal(mincore(rx_hva(f, 0, i), PAGE, &vec), 0);
	}
	/* Slot 2 was not part of the failed call. */
	uint32_t page;
	assert_int_equal(vdemux_kvm_translate(f->be[0], rx_gpa(2), &page), 0);
	assert_int_equal(page, POOL_FIRST + 2);
	assert_int_equal(guest_read(rx_hva(f, 0, 2), &b, 1), 0);
}

/* ---- backfill --------------------------------------------------------------- */

static void test_backfill_gives_a_faulting_guest_zeroes(void **state)
{
	struct fx *f = *state;
	uint8_t b[PAGE];
	unsigned done;

	attach(f);
	assert_int_equal(guest_read(rx_hva(f, 0, 5), b, 1), -EFAULT);
	assert_int_equal(vdemux_kvm_backfill(f->be[0], rx_gpa(5)), 1);
	assert_int_equal(guest_read(rx_hva(f, 0, 5), b, PAGE), 0);
	assert_true(all_bytes(b, PAGE, 0));
	uint8_t w[4] = {1, 2, 3, 4};
	assert_int_equal(guest_write(rx_hva(f, 0, 5), w, 4), 0);
	uint32_t page;
	assert_int_equal(vdemux_kvm_translate(f->be[0], rx_gpa(5), &page), 0);
	assert_int_equal(page, VDEMUX_NO_PAGE);
	/* A page that holds an arena page is left alone. */
	struct vdemux_map m = {.gpa = rx_gpa(6), .page = POOL_FIRST + 3};
	assert_int_equal(do_batch(f, f->be[0]->map, &m, 1, &done), 0);
	assert_int_equal(vdemux_kvm_backfill(f->be[0], rx_gpa(6)), 0);
	/* All the other holes. */
	assert_int_equal(vdemux_kvm_backfill(f->be[0], VDEMUX_KVM_ALL_HOLES), RX_PAGES - 2);
	assert_int_equal(vdemux_kvm_backfill(f->be[0], VDEMUX_KVM_ALL_HOLES), 0);
	assert_int_equal(kstats(f->be[0]).backfills, RX_PAGES - 1);
	/* A flip replaces the private page; the guest's scribbles go with it. */
	fill_page(f, POOL_FIRST + 4, 0xee);
	m = (struct vdemux_map){.gpa = rx_gpa(5), .page = POOL_FIRST + 4};
	assert_int_equal(do_batch(f, f->be[0]->map, &m, 1, &done), 0);
	assert_int_equal(guest_read(rx_hva(f, 0, 5), b, PAGE), 0);
	assert_true(all_bytes(b, PAGE, 0xee));
	/* An unmap makes it a faulting hole again. */
	assert_int_equal(do_batch(f, f->be[0]->unmap, &m, 1, &done), 0);
	assert_int_equal(guest_read(rx_hva(f, 0, 5), b, 1), -EFAULT);
	assert_int_equal(vdemux_kvm_backfill(f->be[0], rx_gpa(RX_PAGES)), -ERANGE);
	assert_int_equal(vdemux_kvm_backfill(f->be[0], rx_gpa(1) + 1), -EINVAL);
}

/* ---- through the engine ------------------------------------------------------ */

/* Frames go to the VM named by the last byte of the destination MAC. */
struct by_mac {
	struct vdemux_classifier base;
	vdemux_vm_id vm[4];
};

static int by_mac_classify(struct vdemux_classifier *c, const uint8_t *frame, uint32_t len,
			   struct vdemux_verdict *v)
{
	struct by_mac *b = (struct by_mac *)c;
	(void)len;
	vdemux_vm_id id = b->vm[frame[5] & 3];
	v->n = 0;
	v->drop_reason = VDEMUX_DROP_UNKNOWN_UNICAST;
	if (id) {
		v->dests[0] = (struct vdemux_dest){.vm = id};
		v->n = 1;
	}
	return 0;
}

struct efx {
	struct fx *f;
	vdemux_engine *eng;
	struct by_mac cls;
	vdemux_vm_id id[2];
};

static void engine_up(struct efx *x, struct fx *f, uint32_t pool_pages, enum vdemux_harvest harvest,
		      uint32_t vm_flags, int nvms)
{
	memset(x, 0, sizeof(*x));
	x->f = f;
	struct vdemux_engine_opts eo = VDEMUX_OPTS(vdemux_engine_opts, .arena = f->arena,
						   .first_page = POOL_FIRST, .npages = pool_pages,
						   .harvest = harvest, .copy = VDEMUX_COPY_NEVER);
	assert_int_equal(vdemux_engine_create(&x->eng, &eo), 0);
	x->cls.base = (struct vdemux_classifier)VDEMUX_CLASSIFIER_INIT;
	x->cls.base.name = "by-mac";
	x->cls.base.classify = by_mac_classify;
	assert_int_equal(vdemux_engine_set_classifier(x->eng, &x->cls.base), 0);
	for (int v = 0; v < nvms; v++) {
		if (!f->be[v]) {
			struct vdemux_kvm_opts o = ram_opts(f, v);
			assert_int_equal(vdemux_kvm_create(&f->be[v], &o), 0);
		}
		assert_int_equal(vdemux_engine_add_backend(x->eng, f->be[v]), 0);
		struct vdemux_vm_opts vo = VDEMUX_OPTS(vdemux_vm_opts, .rx_base = RX_BASE,
						       .rx_pages = RX_PAGES, .flags = vm_flags,
						       .backends = &f->be[v], .n_backends = 1);
		assert_int_equal(vdemux_vm_add(x->eng, &x->id[v], &vo), 0);
		x->cls.vm[v] = x->id[v];
	}
}

/* The engine owns the backends now: the fixture must not free them. */
static void engine_down(struct efx *x)
{
	vdemux_engine_destroy(x->eng);
	x->f->be[0] = x->f->be[1] = NULL;
}

static void engine_consistent(struct efx *x)
{
	char msg[256] = "";
	struct vdemux_engine_stats st;

	if (vdemux_engine_check(x->eng, msg, sizeof(msg)) != 0)
		fail_msg("engine check: %s", msg);
	assert_int_equal(vdemux_engine_stats(x->eng, &st, sizeof(st)), 0);
	assert_int_equal(st.pages_free + st.pages_filling + st.pages_assigned, st.pages_total);
}

static void make_frame(uint8_t *buf, uint32_t len, int vm, unsigned seed)
{
	for (uint32_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(seed * 31u + i * 7u + 1u);
	memset(buf, 0, 6);
	buf[5] = (uint8_t)vm;
	memcpy(buf + 6, "\x02\x00\x00\x00\x00\x01", 6);
}

static void post(struct efx *x, int vm, uint32_t first, uint32_t n)
{
	uint64_t g[RX_PAGES];
	for (uint32_t i = 0; i < n; i++)
		g[i] = rx_gpa(first + i);
	assert_int_equal(vdemux_vm_post_rx(x->eng, x->id[vm], g, n), (int)n);
}

/* The guest thread sees the frame in its pages, and zeroes after it. */
static void guest_sees_frame(struct fx *f, int vm, const struct vdemux_completion *c, unsigned nc,
			     const uint8_t *frame, uint32_t len)
{
	static uint8_t page[PAGE];
	uint32_t off = 0;

	for (unsigned i = 0; i < nc; i++) {
		assert_int_equal(guest_read(f->ram[vm] + c[i].gpa, page, PAGE), 0);
		assert_memory_equal(page, frame + off, c[i].len);
		assert_true(all_bytes(page + c[i].len, PAGE - c[i].len, 0));
		off += c[i].len;
		assert_int_equal(!!(c[i].flags & VDEMUX_CPL_MORE), i + 1 < nc);
	}
	assert_int_equal(off, len);
}

static void test_engine_flips_frames_into_guest_and_repost_leaves_holes(void **state)
{
	struct fx *f = *state;
	struct efx x;
	static uint8_t small[1500], jumbo[9000];
	struct vdemux_completion c[8];

	engine_up(&x, f, 16, VDEMUX_HARVEST_EAGER, VDEMUX_VM_F_UNPOPULATED, 1);
	post(&x, 0, 0, 8);
	make_frame(small, sizeof(small), 0, 1);
	make_frame(jumbo, sizeof(jumbo), 0, 2);
	struct vdemux_frame fr[2] = {{.data = small, .len = sizeof(small)},
				     {.data = jumbo, .len = sizeof(jumbo)}};
	assert_int_equal(vdemux_rx_burst(x.eng, fr, 2), 2);
	assert_int_equal(vdemux_vm_poll(x.eng, x.id[0], c, 8), 4);
	guest_sees_frame(f, 0, c, 1, small, sizeof(small));
	guest_sees_frame(f, 0, c + 1, 3, jumbo, sizeof(jumbo));
	engine_consistent(&x);
	/* Two bursts' worth of table changes, in few calls: the jumbo's three
	 * pages went in with the small frame's in one batch. */
	assert_int_equal(kstats(f->be[0]).batches, 1);

	/* Re-posting releases the pages: the GPAs are holes again. */
	uint64_t g[4];
	for (int i = 0; i < 4; i++)
		g[i] = c[i].gpa;
	assert_int_equal(vdemux_vm_post_rx(x.eng, x.id[0], g, 4), 4);
	for (int i = 0; i < 4; i++) {
		uint8_t b;
		assert_int_equal(guest_read(f->ram[0] + g[i], &b, 1), -EFAULT);
	}
	engine_consistent(&x);
	struct vdemux_engine_stats st;
	assert_int_equal(vdemux_engine_stats(x.eng, &st, sizeof(st)), 0);
	assert_int_equal(st.pages_free, 16);
	engine_down(&x);
}

static void test_engine_moves_a_page_from_a_to_b_cleared_and_out_of_a_reach(void **state)
{
	struct fx *f = *state;
	struct efx x;
	static uint8_t fa[3000], fb[100], page[PAGE];
	struct vdemux_completion c;
	uint32_t pa, pb;

	/* One page in the pool: whatever B gets is the page A gave back. */
	engine_up(&x, f, 1, VDEMUX_HARVEST_EAGER, VDEMUX_VM_F_UNPOPULATED, 2);
	post(&x, 0, 3, 1);
	post(&x, 1, 9, 1);
	make_frame(fa, sizeof(fa), 0, 3);
	struct vdemux_frame fr = {.data = fa, .len = sizeof(fa)};
	assert_int_equal(vdemux_rx_burst(x.eng, &fr, 1), 1);
	assert_int_equal(vdemux_vm_poll(x.eng, x.id[0], &c, 1), 1);
	assert_int_equal(c.gpa, rx_gpa(3));
	guest_sees_frame(f, 0, &c, 1, fa, sizeof(fa));
	assert_int_equal(vdemux_kvm_translate(f->be[0], rx_gpa(3), &pa), 0);
	assert_int_equal(pa, POOL_FIRST);

	/* A's guest scribbles over the whole page it holds. */
	memset(page, 0x5a, PAGE);
	assert_int_equal(guest_write(rx_hva(f, 0, 3), page, PAGE), 0);

	/* A re-posts; the frame for B gets the same page. */
	post(&x, 0, 3, 1);
	make_frame(fb, sizeof(fb), 1, 4);
	fr = (struct vdemux_frame){.data = fb, .len = sizeof(fb)};
	assert_int_equal(vdemux_rx_burst(x.eng, &fr, 1), 1);
	assert_int_equal(vdemux_vm_poll(x.eng, x.id[1], &c, 1), 1);
	assert_int_equal(vdemux_kvm_translate(f->be[1], rx_gpa(9), &pb), 0);
	assert_int_equal(pb, pa);
	/* B sees its frame and zeroes: nothing of A's frame nor of A's writes. */
	guest_sees_frame(f, 1, &c, 1, fb, sizeof(fb));
	/* A cannot reach it any more. */
	assert_int_equal(guest_read(rx_hva(f, 0, 3), page, 1), -EFAULT);
	assert_int_equal(vdemux_kvm_translate(f->be[0], rx_gpa(3), &pa), 0);
	assert_int_equal(pa, VDEMUX_NO_PAGE);
	engine_consistent(&x);
	engine_down(&x);
}

static void test_engine_lazy_harvest_swaps_pages_in_place(void **state)
{
	struct fx *f = *state;
	struct efx x;
	static uint8_t fr1[2000];
	struct vdemux_completion c;
	uint32_t before, after;

	/* Populated window: every slot backed by a zeroed pool page. */
	engine_up(&x, f, 24, VDEMUX_HARVEST_LAZY, 0, 1);
	uint8_t b[PAGE];
	assert_int_equal(guest_read(rx_hva(f, 0, 4), b, PAGE), 0);
	assert_true(all_bytes(b, PAGE, 0));
	assert_int_equal(vdemux_kvm_translate(f->be[0], rx_gpa(4), &before), 0);
	/* The guest leaves something in the buffer it posts. */
	memset(b, 0x33, PAGE);
	assert_int_equal(guest_write(rx_hva(f, 0, 4), b, PAGE), 0);
	post(&x, 0, 4, 1);
	/* Lazy: still mapped after posting. */
	assert_int_equal(guest_read(rx_hva(f, 0, 4), b, 1), 0);
	struct vdemux_kvm_stats s0 = kstats(f->be[0]);
	make_frame(fr1, sizeof(fr1), 0, 5);
	struct vdemux_frame fr = {.data = fr1, .len = sizeof(fr1)};
	assert_int_equal(vdemux_rx_burst(x.eng, &fr, 1), 1);
	assert_int_equal(vdemux_vm_poll(x.eng, x.id[0], &c, 1), 1);
	struct vdemux_kvm_stats s1 = kstats(f->be[0]);
	assert_int_equal(s1.pages_remapped - s0.pages_remapped, 1);
	assert_int_equal(s1.mmap_calls - s0.mmap_calls, 1);
	assert_int_equal(vdemux_kvm_translate(f->be[0], rx_gpa(4), &after), 0);
	assert_int_not_equal(after, before);
	guest_sees_frame(f, 0, &c, 1, fr1, sizeof(fr1));
	/* The page swapped out was cleared: the check verifies FREE pages are zero. */
	assert_true(all_bytes(f->ai.base + (size_t)before * PAGE, PAGE, 0));
	engine_consistent(&x);
	engine_down(&x);
}

static void engine_survives_mmap_failure(struct fx *f, bool drop_first)
{
	struct efx x;
	static uint8_t frames[8][600];
	struct vdemux_frame fr[8];
	struct vdemux_completion c[RX_PAGES];
	struct inject *in = &f->inj;
	*in = (struct inject){.drop_first = drop_first};
	struct vdemux_engine_stats st;

	engine_up(&x, f, RX_PAGES, VDEMUX_HARVEST_EAGER, VDEMUX_VM_F_UNPOPULATED, 1);
	assert_int_equal(vdemux_kvm_set_mmap_hook(f->be[0], inject_mmap, in), 0);
	/* Even slots first: the burst's GPAs are not contiguous, one mmap each. */
	uint64_t g[RX_PAGES];
	for (unsigned i = 0; i < RX_PAGES; i++)
		g[i] = rx_gpa(i < RX_PAGES / 2 ? 2 * i : 2 * (i - RX_PAGES / 2) + 1);
	assert_int_equal(vdemux_vm_post_rx(x.eng, x.id[0], g, RX_PAGES), RX_PAGES);
	for (unsigned i = 0; i < 8; i++) {
		make_frame(frames[i], sizeof(frames[i]), 0, 10 + i);
		fr[i] = (struct vdemux_frame){.data = frames[i], .len = sizeof(frames[i])};
	}
	/* The third mmap of the burst fails. */
	in->fail_at = in->calls + 3;
	assert_int_equal(vdemux_rx_burst(x.eng, fr, 8), 8);
	assert_true(in->calls >= in->fail_at);
	assert_int_equal(kstats(f->be[0]).failures, 1);
	engine_consistent(&x);
	assert_int_equal(vdemux_engine_stats(x.eng, &st, sizeof(st)), 0);
	assert_true(st.backend_errors >= 1);
	assert_true(st.drops[VDEMUX_DROP_BACKEND] >= 1);
	int nc = vdemux_vm_poll(x.eng, x.id[0], c, RX_PAGES);
	assert_int_equal((uint64_t)nc + st.drops[VDEMUX_DROP_BACKEND], 8);

	/* Each completion shows its frame; every other GPA of the window is a hole. */
	bool has_frame[RX_PAGES] = {false};
	for (int i = 0; i < nc; i++) {
		uint8_t page[PAGE];
		unsigned s = (unsigned)((c[i].gpa - RX_BASE) / PAGE);
		has_frame[s] = true;
		assert_int_equal(guest_read(f->ram[0] + c[i].gpa, page, PAGE), 0);
		bool found = false;
		for (unsigned k = 0; k < 8 && !found; k++)
			found = memcmp(page, frames[k], sizeof(frames[k])) == 0;
		assert_true(found);
		assert_true(all_bytes(page + sizeof(frames[0]), PAGE - sizeof(frames[0]), 0));
	}
	for (unsigned s = 0; s < RX_PAGES; s++) {
		uint8_t b;
		if (!has_frame[s])
			assert_int_equal(guest_read(rx_hva(f, 0, s), &b, 1), -EFAULT);
	}

	/* Injection off: the engine carries on, and every page comes back. */
	in->fail_at = 0;
	assert_int_equal(vdemux_rx_burst(x.eng, fr, 8 - (unsigned)nc), 8 - nc);
	assert_int_equal(vdemux_vm_poll(x.eng, x.id[0], c, RX_PAGES), 8 - nc);
	assert_int_equal(vdemux_vm_remove(x.eng, x.id[0]), 0);
	engine_consistent(&x);
	assert_int_equal(vdemux_engine_stats(x.eng, &st, sizeof(st)), 0);
	assert_int_equal(st.pages_free, st.pages_total);
	engine_down(&x);
}

static void test_engine_mmap_failure_mid_burst_loses_no_page(void **state)
{
	engine_survives_mmap_failure(*state, false);
}

static void test_engine_mmap_failure_dropping_mapping_loses_no_page(void **state)
{
	engine_survives_mmap_failure(*state, true);
	/* The window of the removed VM has its RAM back. */
	uint8_t b[16];
	struct fx *f = *state;
	assert_int_equal(guest_read(rx_hva(f, 0, 0), b, sizeof(b)), 0);
	assert_true(all_bytes(b, sizeof(b), 0x11));
}

/* ---- helpers: RAM, irqfd ---------------------------------------------------- */

static void test_ram_map_is_2m_aligned_advised_huge_and_backed_by_the_arena(void **state)
{
	(void)state;
	vdemux_arena *a;
	struct vdemux_arena_info ai;
	void *p;
	struct vdemux_arena_opts ao = VDEMUX_OPTS(vdemux_arena_opts, .npages = 1024,
						  .kind = VDEMUX_ARENA_MEMFD);

	assert_int_equal(vdemux_arena_create(&a, &ao), 0);
	assert_int_equal(vdemux_arena_info(a, &ai), 0);
	assert_int_equal(vdemux_kvm_ram_map(a, 512, 512, &p), 0);
	assert_int_equal((uintptr_t)p % (2u << 20), 0);
	if (access("/sys/kernel/mm/transparent_hugepage", F_OK) == 0)
		assert_true(vt_advised_huge(p)); /* a kernel without THP refuses the advice */
	ai.base[512 * (size_t)PAGE + 3] = 0x99;
	assert_int_equal(((uint8_t *)p)[3], 0x99);
	assert_int_equal(vdemux_kvm_ram_unmap(p, 512), 0);
	assert_int_equal(vdemux_kvm_ram_map(a, 1000, 25, &p), -EINVAL);
	assert_int_equal(vdemux_kvm_ram_map(a, 0, 0, &p), -EINVAL);
	assert_int_equal(vdemux_kvm_ram_map(NULL, 0, 1, &p), -EINVAL);
	vdemux_arena_destroy(a);

	struct vdemux_arena_opts ho = VDEMUX_OPTS(vdemux_arena_opts, .npages = 4,
						  .kind = VDEMUX_ARENA_HEAP);
	assert_int_equal(vdemux_arena_create(&a, &ho), 0);
	assert_int_equal(vdemux_kvm_ram_map(a, 0, 4, &p), -EINVAL);
	vdemux_arena_destroy(a);
}

static void test_irqfd_without_kvm_fails_or_falls_back_to_eventfd(void **state)
{
	(void)state;
	int notkvm = eventfd(0, EFD_CLOEXEC);
	int fd = -1;

	assert_true(notkvm >= 0);
	assert_int_equal(vdemux_kvm_irqfd_create(-1, 5, 0, &fd), -EINVAL);
	assert_int_equal(vdemux_kvm_irqfd_create(notkvm, 5, 0x80, &fd), -EINVAL);
	int r = vdemux_kvm_irqfd_create(notkvm, 5, 0, &fd);
	assert_true(r == -ENOTTY || r == -EINVAL);
	assert_int_equal(fd, -1);

	/* Fallback: a plain eventfd that the VMM reads and turns into an interrupt. */
	assert_int_equal(vdemux_kvm_irqfd_create(notkvm, 5, VDEMUX_KVM_IRQFD_F_FALLBACK, &fd), 1);
	assert_true(fd >= 0);
	uint64_t v = 1;
	assert_int_equal(write(fd, &v, sizeof(v)), sizeof(v));
	v = 0;
	assert_int_equal(read(fd, &v, sizeof(v)), sizeof(v));
	assert_int_equal(v, 1);
	assert_int_equal(vdemux_kvm_irqfd_destroy(-1, 5, fd), 0);
	assert_int_equal(vdemux_kvm_irqfd_destroy(-1, 5, -1), -EINVAL);
	close(notkvm);
}

int main(void)
{
	/* Everything here stands on a memfd arena. */
	int probe = memfd_create("vdemux-test-kvm-probe", MFD_CLOEXEC);
	if (probe < 0) {
		printf("SKIP: memfd_create: %s\n", strerror(errno));
		return 77;
	}
	close(probe);

	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
		T(test_create_rejects_bad_options),
		T(test_set_memslot_on_a_non_kvm_fd_fails_cleanly),
		T(test_non_kvm_backend_is_refused_by_helpers),
		T(test_attach_turns_rx_window_into_holes),
		T(test_attach_rejects_window_outside_ram_and_heap_arena),
		T(test_detach_gives_the_window_its_memory_back),
		T(test_mapped_page_is_seen_by_the_guest),
		T(test_unmapped_gpa_is_a_hole_that_faults),
		T(test_map_over_a_mapped_gpa_is_refused),
		T(test_bad_entries_stop_the_batch_where_they_are),
		T(test_contiguous_runs_take_one_mmap_each),
		T(test_remap_under_a_running_guest_never_shows_a_hole),
		T(test_mmap_failure_mid_map_batch_leaves_rest_unchanged),
		T(test_mmap_failure_after_kernel_dropped_mapping_is_repaired),
		T(test_mmap_failure_mid_remap_batch_keeps_old_pages),
		T(test_unrepairable_failure_leaves_holes_never_a_gap),
		T(test_backfill_gives_a_faulting_guest_zeroes),
		T(test_engine_flips_frames_into_guest_and_repost_leaves_holes),
		T(test_engine_moves_a_page_from_a_to_b_cleared_and_out_of_a_reach),
		T(test_engine_lazy_harvest_swaps_pages_in_place),
		T(test_engine_mmap_failure_mid_burst_loses_no_page),
		T(test_engine_mmap_failure_dropping_mapping_loses_no_page),
		T(test_ram_map_is_2m_aligned_advised_huge_and_backed_by_the_arena),
		T(test_irqfd_without_kvm_fails_or_falls_back_to_eventfd),
#undef T
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

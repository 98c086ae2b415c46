/* SPDX-License-Identifier: MIT */
/* probe_kvm: KVM works in the lab guest, and a vCPU sees a page swapped
 * under its memslot by mmap(MAP_FIXED|MAP_SHARED) of another memfd page.
 * Exit 0 on success, 1 on failure, 77 if /dev/kvm is absent. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "kvm_guest.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096UL
#define SLOT_PAGES 16UL
#define CODE_GPA 0x1000
#define DATA_PAGE 5UL
#define OUT_PORT 0x10
#define FLIPS 100

static int fail(const char *what, int err)
{
	printf("FAIL: %s: %s\n", what, strerror(err < 0 ? -err : err));
	return 1;
}

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/* Map page `off` of memfd `fd` at exactly `addr`, replacing what is there. */
static int map_over(void *addr, int fd, off_t off)
{
	void *p = mmap(addr, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, off);
	if (p == MAP_FAILED)
		return -errno;
	return p == addr ? 0 : -EFAULT;
}

/* One vCPU round: the guest reads the byte at DATA_PAGE and OUTs it. */
static int guest_read(struct kg_vm *vm, uint8_t *byte)
{
	struct kg_io io;
	int r = kg_run_until_io(vm, &io);
	if (r < 0)
		return r;
	if (r > 0) {
		printf("FAIL: unexpected exit %d (%s)\n", vm->exit_reason, kg_exit_name(vm->exit_reason));
		return -EIO;
	}
	if (!io.out || io.port != OUT_PORT || io.size != 1) {
		printf("FAIL: unexpected I/O: %s port 0x%x size %u\n", io.out ? "out" : "in", io.port,
		       io.size);
		return -EIO;
	}
	*byte = (uint8_t)io.value;
	return 0;
}

int main(void)
{
	struct kg_vm vm;
	int r = kg_open(&vm);
	if (r == -ENOENT) {
		printf("SKIP: /dev/kvm is absent\n");
		return 77;
	}
	if (r < 0)
		return fail("open /dev/kvm / KVM_GET_API_VERSION == 12", r);
	printf("KVM_GET_API_VERSION %d\n", KVM_API_VERSION);

	int nslots = kg_check_cap(&vm, KVM_CAP_NR_MEMSLOTS);
	int sync_mmu = kg_check_cap(&vm, KVM_CAP_SYNC_MMU);
	printf("KVM_CAP_NR_MEMSLOTS %d, KVM_CAP_SYNC_MMU %d\n", nslots, sync_mmu);
	if (nslots < 1 || sync_mmu != 1) {
		printf("FAIL: need NR_MEMSLOTS >= 1 and SYNC_MMU\n");
		return 1;
	}

	double t0 = now_us();
	if ((r = kg_create_vm(&vm)) < 0)
		return fail("KVM_CREATE_VM", r);

	/* Guest memory: a MAP_SHARED mapping of a memfd, as a VMM sharing its RAM would do. */
	int ram_fd = memfd_create("probe-kvm-ram", MFD_CLOEXEC);
	int alt_fd = memfd_create("probe-kvm-alt", MFD_CLOEXEC);
	if (ram_fd < 0 || alt_fd < 0)
		return fail("memfd_create", errno);
	if (ftruncate(ram_fd, SLOT_PAGES * PAGE) < 0 || ftruncate(alt_fd, PAGE) < 0)
		return fail("ftruncate", errno);
	uint8_t *ram = mmap(NULL, SLOT_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, ram_fd, 0);
	uint8_t *alt = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, alt_fd, 0);
	if (ram == MAP_FAILED || alt == MAP_FAILED)
		return fail("mmap memfd", errno);

	static const uint8_t code[] = {
		0xa0,
		DATA_PAGE * PAGE & 0xff,
		DATA_PAGE * PAGE >> 8, /* mov al, [0x5000] */
		0xe6,
		OUT_PORT, /* out 0x10, al */
		0xeb,
		0xf9, /* jmp short back to the mov */
	};
	memcpy(ram + CODE_GPA, code, sizeof(code));
	ram[DATA_PAGE * PAGE] = 0xa5;
	alt[0] = 0x5a;

	if ((r = kg_add_memslot(&vm, 0, 0, SLOT_PAGES * PAGE, ram)) < 0)
		return fail("KVM_SET_USER_MEMORY_REGION", r);
	if ((r = kg_create_vcpu(&vm, CODE_GPA)) < 0)
		return fail("KVM_CREATE_VCPU / real-mode setup", r);
	double t1 = now_us();

	uint8_t b;
	if ((r = guest_read(&vm, &b)) < 0)
		return fail("first KVM_RUN", r);
	double t2 = now_us();
	printf("vm+vcpu setup %.0f us, first run %.0f us; guest read 0x%02x\n", t1 - t0, t2 - t1, b);
	if (b != 0xa5) {
		printf("FAIL: guest read 0x%02x from page %lu, expected 0xa5\n", b, DATA_PAGE);
		return 1;
	}

	/* Swap page 5 under the memslot, and back, FLIPS times; the vCPU must
	 * read the byte of whichever page is mapped there now. */
	uint8_t *hva = ram + DATA_PAGE * PAGE;
	int wrong = 0;
	double t3 = now_us();
	for (int i = 0; i < FLIPS; i++) {
		int to_alt = (i % 2) == 0;
		r = to_alt ? map_over(hva, alt_fd, 0) : map_over(hva, ram_fd, (off_t)(DATA_PAGE * PAGE));
		if (r < 0)
			return fail("mmap(MAP_FIXED|MAP_SHARED) over page 5", r);
		if ((r = guest_read(&vm, &b)) < 0)
			return fail("KVM_RUN after flip", r);
		uint8_t want = to_alt ? 0x5a : 0xa5;
		if (b != want) {
			if (wrong < 5)
				printf("flip %d: guest read 0x%02x, expected 0x%02x\n", i, b, want);
			wrong++;
		}
	}
	double t4 = now_us();
	printf("%d flips of page 5 (mmap MAP_FIXED + KVM_RUN): %d wrong reads, %.0f us per flip\n",
	       FLIPS, wrong, (t4 - t3) / FLIPS);
	if (wrong) {
		printf("FAIL: the vCPU did not see the page mapped under its memslot\n");
		return 1;
	}

	kg_close(&vm);
	printf("PASS: probe_kvm\n");
	return 0;
}

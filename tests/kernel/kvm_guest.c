/* SPDX-License-Identifier: MIT */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "kvm_guest.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

static int xioctl(int fd, unsigned long req, void *arg)
{
	int r = ioctl(fd, req, arg);
	return r < 0 ? -errno : r;
}

int kg_open(struct kg_vm *vm)
{
	memset(vm, 0, sizeof(*vm));
	vm->vm_fd = vm->vcpu_fd = -1;
	vm->exit_reason = -1;
	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0)
		return -errno;
	int v = ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0);
	if (v != KVM_API_VERSION) {
		int e = v < 0 ? -errno : -EPROTO;
		close(vm->kvm_fd);
		vm->kvm_fd = -1;
		return e;
	}
	return 0;
}

int kg_check_cap(const struct kg_vm *vm, long cap)
{
	int r = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, cap);
	return r < 0 ? 0 : r;
}

int kg_create_vm(struct kg_vm *vm)
{
	int fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (fd < 0)
		return -errno;
	vm->vm_fd = fd;
	/* Needed by VMX for real mode; harmless elsewhere. Just below 4 GiB. */
	if (ioctl(fd, KVM_SET_TSS_ADDR, 0xfffbd000UL) < 0 && errno != EINVAL)
		return -errno;
	return 0;
}

int kg_add_memslot(struct kg_vm *vm, uint32_t slot, uint64_t gpa, uint64_t size, void *hva)
{
	struct kvm_userspace_memory_region r = {
		.slot = slot,
		.flags = 0,
		.guest_phys_addr = gpa,
		.memory_size = size,
		.userspace_addr = (uint64_t)(uintptr_t)hva,
	};
	return xioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r);
}

static void real_mode_seg(struct kvm_segment *s)
{
	s->base = 0;
	s->selector = 0;
	s->limit = 0xffff;
	s->present = 1;
	s->s = 1;
	s->dpl = 0;
	s->db = 0;
	s->l = 0;
	s->g = 0;
	s->avl = 0;
	s->unusable = 0;
}

int kg_create_vcpu(struct kg_vm *vm, uint16_t entry)
{
	int fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, 0);
	if (fd < 0)
		return -errno;
	vm->vcpu_fd = fd;

	int sz = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (sz < 0)
		return -errno;
	void *run = mmap(NULL, (size_t)sz, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (run == MAP_FAILED)
		return -errno;
	vm->run = run;
	vm->run_size = (size_t)sz;

	struct kvm_sregs sregs;
	int r = xioctl(fd, KVM_GET_SREGS, &sregs);
	if (r < 0)
		return r;
	real_mode_seg(&sregs.cs);
	sregs.cs.type = 0xb; /* execute/read, accessed */
	struct kvm_segment *data[] = {&sregs.ds, &sregs.es, &sregs.fs, &sregs.gs, &sregs.ss};
	for (size_t i = 0; i < sizeof(data) / sizeof(data[0]); i++) {
		real_mode_seg(data[i]);
		data[i]->type = 0x3; /* read/write, accessed */
	}
	sregs.cr0 &= ~1ULL; /* PE off */
	r = xioctl(fd, KVM_SET_SREGS, &sregs);
	if (r < 0)
		return r;

	struct kvm_regs regs;
	memset(&regs, 0, sizeof(regs));
	regs.rip = entry;
	regs.rflags = 0x2; /* reserved bit 1; IF clear */
	regs.rsp = 0xfff0;
	return xioctl(fd, KVM_SET_REGS, &regs);
}

void kg_io_decode(const struct kvm_run *run, struct kg_io *io)
{
	const uint8_t *p = (const uint8_t *)run + run->io.data_offset;
	uint32_t v = 0;

	memcpy(&v, p, run->io.size <= 4 ? run->io.size : 4);
	io->out = run->io.direction == KVM_EXIT_IO_OUT;
	io->port = run->io.port;
	io->size = run->io.size;
	io->value = v;
}

int kg_run_until_io(struct kg_vm *vm, struct kg_io *io)
{
	for (;;) {
		vm->exit_reason = -1;
		if (ioctl(vm->vcpu_fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		struct kvm_run *run = vm->run;
		vm->exit_reason = (int)run->exit_reason;
		switch (run->exit_reason) {
		case KVM_EXIT_IO: {
			kg_io_decode(run, io);
			return 0;
		}
		case KVM_EXIT_INTR: continue;
		default: return 1;
		}
	}
}

const char *kg_exit_name(int reason)
{
	switch (reason) {
	case KVM_EXIT_UNKNOWN: return "UNKNOWN";
	case KVM_EXIT_IO: return "IO";
	case KVM_EXIT_HLT: return "HLT";
	case KVM_EXIT_MMIO: return "MMIO";
	case KVM_EXIT_SHUTDOWN: return "SHUTDOWN";
	case KVM_EXIT_FAIL_ENTRY: return "FAIL_ENTRY";
	case KVM_EXIT_INTERNAL_ERROR: return "INTERNAL_ERROR";
	default: return "other";
	}
}

void kg_close(struct kg_vm *vm)
{
	if (vm->run)
		munmap(vm->run, vm->run_size);
	if (vm->vcpu_fd >= 0)
		close(vm->vcpu_fd);
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	memset(vm, 0, sizeof(*vm));
	vm->kvm_fd = vm->vm_fd = vm->vcpu_fd = -1;
}

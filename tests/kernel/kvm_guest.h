/* SPDX-License-Identifier: MIT */
/* Minimal KVM driver for kernel-lab tests: one VM, memslots, one real-mode vCPU.
 *
 * Typical use:
 *   struct kg_vm vm;
 *   if (kg_open(&vm) == -ENOENT) return 77;        // no /dev/kvm: skip
 *   kg_create_vm(&vm);
 *   kg_add_memslot(&vm, 0, 0, size, host_mem);
 *   kg_create_vcpu(&vm, 0x1000);                   // real mode, CS:IP = 0000:1000
 *   struct kg_io io; kg_run_until_io(&vm, &io);    // io.port, io.value
 *
 * Functions return 0 (or a non-negative value) on success and -errno on
 * failure; they print nothing, callers report. */
#ifndef VDEMUX_TESTS_KVM_GUEST_H
#define VDEMUX_TESTS_KVM_GUEST_H

#include <stddef.h>
#include <stdint.h>

struct kvm_run;

struct kg_vm {
	int kvm_fd;
	int vm_fd;
	int vcpu_fd;
	struct kvm_run *run;
	size_t run_size;
	int exit_reason; /* KVM_EXIT_* of the last run that stopped, else -1 */
};

/* One I/O-port access of the guest, as seen at a KVM_EXIT_IO. */
struct kg_io {
	int out; /* 1 for OUT (guest -> host), 0 for IN */
	uint16_t port;
	uint8_t size;	/* 1, 2 or 4 bytes */
	uint32_t value; /* the value written by an OUT (first element if rep) */
};

/* Opens /dev/kvm and checks KVM_GET_API_VERSION == 12.
 * -ENOENT if /dev/kvm does not exist, -EPROTO on an API mismatch. */
int kg_open(struct kg_vm *vm);

/* KVM_CHECK_EXTENSION on the system fd: the capability's value (0 if absent). */
int kg_check_cap(const struct kg_vm *vm, long cap);

int kg_create_vm(struct kg_vm *vm);

/* KVM_SET_USER_MEMORY_REGION: guest-physical [gpa, gpa+size) backed by host memory at hva.
 * size 0 deletes the slot. */
int kg_add_memslot(struct kg_vm *vm, uint32_t slot, uint64_t gpa, uint64_t size, void *hva);

/* Creates vCPU 0 and puts it in 16-bit real mode with all segments at base 0,
 * IP = entry (entry < 64 KiB), interrupts off. */
int kg_create_vcpu(struct kg_vm *vm, uint16_t entry);

/* KVM_RUN (restarting on EINTR) until the guest does an I/O-port access.
 * 0 with *io filled at a KVM_EXIT_IO; -errno if KVM_RUN failed (e.g. -EFAULT
 * when the host memory behind a GPA is gone; vm->exit_reason is then -1);
 * 1 if the vCPU stopped for another reason, given in vm->exit_reason
 * (e.g. KVM_EXIT_HLT). */
int kg_run_until_io(struct kg_vm *vm, struct kg_io *io);
/* Fill @io from an I/O exit in @run (for programs running vCPUs themselves). */
struct kvm_run;
void kg_io_decode(const struct kvm_run *run, struct kg_io *io);

/* Human-readable name of a KVM_EXIT_* reason (for messages). */
const char *kg_exit_name(int reason);

void kg_close(struct kg_vm *vm);

#endif

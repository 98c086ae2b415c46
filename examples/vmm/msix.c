/* SPDX-License-Identifier: MIT */
/*
 * MSI-X for the virtio-net function: the capability in configuration space
 * (at MSIX_CAP), the table and the pending bits in memory BAR 1, and the
 * delivery of a vector through KVM: each vector has an eventfd registered as
 * a KVM irqfd on its own GSI (MSIX_GSI_BASE + vector), and that GSI's route
 * (KVM_SET_GSI_ROUTING) is the MSI message the guest wrote in the table
 * entry. The routing table is replaced whole, so it also carries the
 * default routes of the ISA interrupts (GSIs 0..23 to the I/O APIC, 0..15
 * to the PIC) the guest's serial port, timer and INTx use.
 *
 * A vector fires when the device asks (msix_fire): written to its irqfd
 * unless the function or the entry is masked, in which case its pending
 * bit is set, and the message goes when the mask is cleared, as PCI wants.
 *
 * Threads: the vCPUs write the table and the capability, the I/O threads
 * fire vectors: everything under the msix lock, which is a leaf (nothing
 * else is taken while it is held).
 */
#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "vmm.h"

#define MSIX_ENABLE 0x8000u
#define MSIX_FMASK 0x4000u
#define ENTRY_MASKED 0x1u

int msix_init(struct msix *m, int vm_fd)
{
	int err = pthread_mutex_init(&m->lock, NULL);
	if (err)
		return -err;
	m->vm_fd = vm_fd;
	for (unsigned v = 0; v < VNET_MSIX_VECTORS; v++) {
		m->e[v].ctrl = ENTRY_MASKED; /* every entry masked after reset */
		m->irqfd[v] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (m->irqfd[v] < 0)
			return -errno;
		struct kvm_irqfd irqfd = {.fd = (uint32_t)m->irqfd[v], .gsi = MSIX_GSI_BASE + v};
		if (vm_fd >= 0 && ioctl(vm_fd, KVM_IRQFD, &irqfd) < 0)
			return -errno;
	}
	return 0;
}

/* The routing table: the default ISA routes, then one MSI route per vector
 * whose entry holds a message. Lock held. */
static int routes_set(struct msix *m)
{
	unsigned max = 16 + 24 + VNET_MSIX_VECTORS, n = 0;
	struct kvm_irq_routing *r = calloc(1, sizeof(*r) + max * sizeof(r->entries[0]));
	if (!r)
		return -ENOMEM;
	for (unsigned gsi = 0; gsi < 24; gsi++) {
		r->entries[n++] = (struct kvm_irq_routing_entry){.gsi = gsi,
								 .type = KVM_IRQ_ROUTING_IRQCHIP,
								 .u.irqchip = {KVM_IRQCHIP_IOAPIC, gsi}};
		if (gsi < 16)
			r->entries[n++] = (struct kvm_irq_routing_entry){
				.gsi = gsi,
				.type = KVM_IRQ_ROUTING_IRQCHIP,
				.u.irqchip = {gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE,
					      gsi % 8}};
	}
	for (unsigned v = 0; v < VNET_MSIX_VECTORS; v++)
		if (m->e[v].addr_lo)
			r->entries[n++] = (struct kvm_irq_routing_entry){
				.gsi = MSIX_GSI_BASE + v,
				.type = KVM_IRQ_ROUTING_MSI,
				.u.msi = {.address_lo = m->e[v].addr_lo,
					  .address_hi = m->e[v].addr_hi,
					  .data = m->e[v].data}};
	r->nr = n;
	int err = m->vm_fd >= 0 && ioctl(m->vm_fd, KVM_SET_GSI_ROUTING, r) < 0 ? -errno : 0;
	free(r);
	if (err == 0)
		m->route_sets++;
	return err;
}

static bool masked(const struct msix *m, unsigned v)
{
	return (m->msgctl & MSIX_FMASK) || (m->e[v].ctrl & ENTRY_MASKED);
}

static void pulse(int fd)
{
	uint64_t one = 1;
	if (write(fd, &one, sizeof one) < 0) {
		/* An eventfd: cannot fail short of overflow. */
	}
}

/* Send what waited on vectors no longer masked. Lock held. */
static void release_pending(struct msix *m)
{
	for (unsigned v = 0; v < VNET_MSIX_VECTORS; v++)
		if ((m->pending & (1u << v)) && !masked(m, v)) {
			m->pending &= ~(1u << v);
			pulse(m->irqfd[v]);
		}
}

bool msix_enabled(struct msix *m)
{
	return __atomic_load_n(&m->msgctl, __ATOMIC_ACQUIRE) & MSIX_ENABLE;
}

bool msix_fire(struct msix *m, uint16_t vector)
{
	if (vector >= VNET_MSIX_VECTORS)
		return false;
	pthread_mutex_lock(&m->lock);
	bool now = !masked(m, vector);
	if (now)
		pulse(m->irqfd[vector]);
	else
		m->pending |= 1u << vector;
	m->fired++;
	pthread_mutex_unlock(&m->lock);
	return now;
}

/* The capability's dwords: id and next pointer, message control; the
 * table's place (BAR 1, offset 0); the pending bits' (BAR 1, MSIX_PBA_OFF). */
uint32_t msix_cap_read(struct msix *m, unsigned reg)
{
	switch (reg - MSIX_CAP) {
	case 0: {
		uint16_t ctl = __atomic_load_n(&m->msgctl, __ATOMIC_ACQUIRE);
		return (uint32_t)(ctl | (VNET_MSIX_VECTORS - 1)) << 16 | PCI_CAP_ID_MSIX_;
	}
	case 4: return 0 | 1;		 /* table: BAR 1, offset 0 */
	case 8: return MSIX_PBA_OFF | 1; /* pending bits: BAR 1 */
	default: return 0;
	}
}

/* A write of @size bytes at configuration offset @reg, inside the
 * capability's first dword: only message control's enable and function
 * mask bits take it. */
void msix_cap_write(struct msix *m, unsigned reg, uint32_t val, unsigned size)
{
	unsigned off = reg - MSIX_CAP;
	pthread_mutex_lock(&m->lock);
	uint32_t dw = (uint32_t)m->msgctl << 16;
	for (unsigned i = 0; i < size && off + i < 4; i++) {
		unsigned sh = 8 * (off + i);
		dw = (dw & ~(0xffu << sh)) | ((val >> (8 * i)) & 0xffu) << sh;
	}
	__atomic_store_n(&m->msgctl, (uint16_t)((dw >> 16) & (MSIX_ENABLE | MSIX_FMASK)),
			 __ATOMIC_RELEASE);
	release_pending(m);
	pthread_mutex_unlock(&m->lock);
}

/* A table entry's dword @w (0 address low, 1 high, 2 data, 3 control). */
static void entry_write(struct msix *m, unsigned v, unsigned w, uint32_t val)
{
	uint32_t *f[4] = {&m->e[v].addr_lo, &m->e[v].addr_hi, &m->e[v].data, &m->e[v].ctrl};
	if (*f[w] == val)
		return;
	*f[w] = w == 3 ? (val & ENTRY_MASKED) : val;
	if (w != 3 && routes_set(m) < 0)
		m->route_errors++;
	release_pending(m);
}

void msix_mmio(struct msix *m, uint64_t off, bool write, uint8_t *data, unsigned len)
{
	uint32_t val = 0;
	if (len != 4 || (off & 3)) { /* dword accesses only, as PCI asks of drivers */
		if (!write)
			memset(data, 0xff, len);
		return;
	}
	pthread_mutex_lock(&m->lock);
	if (off < 16u * VNET_MSIX_VECTORS) {
		unsigned v = (unsigned)(off / 16), w = (unsigned)(off % 16) / 4;
		if (write) {
			memcpy(&val, data, 4);
			entry_write(m, v, w, val);
		} else {
			const uint32_t f[4] = {m->e[v].addr_lo, m->e[v].addr_hi, m->e[v].data,
					       m->e[v].ctrl};
			memcpy(data, &f[w], 4);
		}
	} else if (!write) {
		val = off == MSIX_PBA_OFF ? m->pending : 0;
		memcpy(data, &val, 4);
	}
	pthread_mutex_unlock(&m->lock);
}

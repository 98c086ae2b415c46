/* SPDX-License-Identifier: MIT */
/*
 * The x86 Linux boot protocol, 64-bit entry (Documentation/arch/x86/boot.rst):
 * the protected-mode kernel of the bzImage at 1 MiB, the zero page
 * (boot_params: the setup header from the image, the e820 map, the command
 * line and initramfs addresses), identity page tables for the first 4 GiB,
 * a GDT with __BOOT_CS (0x10) and __BOOT_DS (0x18), and the vCPU in long
 * mode at the image's 64-bit entry (load address + 0x200) with RSI pointing
 * at the zero page. An MP table describes the CPU, the I/O APIC and the
 * interrupt wiring (there is no ACPI), so that Linux uses the in-kernel
 * I/O APIC for the serial port and the virtio device.
 */
#include <asm/bootparam.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm.h"

#define E820_RAM 1
#define E820_RESERVED 2

static int read_file(const char *path, uint8_t **out, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) < 0 || st.st_size <= 0) {
		close(fd);
		return -EINVAL;
	}
	uint8_t *buf = malloc((size_t)st.st_size);
	size_t got = 0;
	while (buf && got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	if (!buf || got != (size_t)st.st_size) {
		free(buf);
		return -EIO;
	}
	*out = buf;
	*len = got;
	return 0;
}

/* ---- MP table (Intel MultiProcessor Specification 1.4) ---- */

static uint8_t checksum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;
	while (n--)
		s = (uint8_t)(s + *p++);
	return (uint8_t)-s;
}

static uint8_t *put(uint8_t *p, const void *src, size_t n)
{
	memcpy(p, src, n);
	return p + n;
}

static uint8_t *put_u8(uint8_t *p, uint8_t v)
{
	*p = v;
	return p + 1;
}
static uint8_t *put_u16(uint8_t *p, uint16_t v)
{
	return put(p, &v, 2);
}
static uint8_t *put_u32(uint8_t *p, uint32_t v)
{
	return put(p, &v, 4);
}

enum { MP_BUS_PCI = 0, MP_BUS_ISA = 1, MP_IOAPIC_ID = VMM_MAX_CPUS };

static uint8_t *mp_irq(uint8_t *p, uint8_t type, uint16_t flags, uint8_t bus, uint8_t bus_irq,
		       uint8_t pin)
{
	p = put_u8(p, 3); /* I/O interrupt assignment */
	p = put_u8(p, type);
	p = put_u16(p, flags);
	p = put_u8(p, bus);
	p = put_u8(p, bus_irq);
	p = put_u8(p, MP_IOAPIC_ID);
	return put_u8(p, pin);
}

static void mptable_write(struct guest *g)
{
	uint8_t *base = g->ram + GPA_MPTABLE;
	uint8_t *cfg = base + 16, *p = cfg + 44;
	uint16_t entries = 0;

	/* Processors: APIC id = vCPU index, enabled; the first bootstrap. */
	for (unsigned id = 0; id < g->cpu.n; id++, entries++) {
		p = put_u8(p, 0);
		p = put_u8(p, (uint8_t)id);
		p = put_u8(p, 0x14);
		p = put_u8(p, id == 0 ? 0x3 : 0x1);
		p = put_u32(p, 0x600);
		p = put_u32(p, 0x201); /* FPU, APIC */
		p = put(p, "\0\0\0\0\0\0\0\0", 8);
	}
	/* Buses. */
	p = put_u8(p, 1);
	p = put_u8(p, MP_BUS_PCI);
	p = put(p, "PCI   ", 6);
	p = put_u8(p, 1);
	p = put_u8(p, MP_BUS_ISA);
	p = put(p, "ISA   ", 6);
	entries += 2;
	/* I/O APIC (its id after the CPUs'). */
	p = put_u8(p, 2);
	p = put_u8(p, MP_IOAPIC_ID);
	p = put_u8(p, 0x11);
	p = put_u8(p, 1);
	p = put_u32(p, (uint32_t)GPA_IOAPIC);
	entries++;
	/* ISA IRQ n on pin n (KVM's default routing), conforming to the bus. */
	for (uint8_t irq = 0; irq < 16; irq++, entries++)
		p = mp_irq(p, 0, 0, MP_BUS_ISA, irq, irq);
	/* The virtio device's INTA#: edge-triggered, active high, because the
	 * irqfd pulses the line. */
	p = mp_irq(p, 0, 0x5, MP_BUS_PCI, (uint8_t)(PCI_VNET_SLOT << 2), GSI_VIRTIO);
	entries++;
	/* Local interrupts: ExtINT on LINT0, NMI on LINT1 of every CPU. */
	p = put(p, (uint8_t[]){4, 3, 0, 0, MP_BUS_ISA, 0, 0xff, 0}, 8);
	p = put(p, (uint8_t[]){4, 1, 0, 0, MP_BUS_ISA, 0, 0xff, 1}, 8);
	entries += 2;

	/* Configuration table header. */
	uint8_t *h = cfg;
	h = put(h, "PCMP", 4);
	h = put_u16(h, (uint16_t)(p - cfg));
	h = put_u8(h, 4);
	h = put_u8(h, 0); /* checksum, below */
	h = put(h, "VDEMUX  ", 8);
	h = put(h, "EXAMPLE VMM ", 12);
	h = put_u32(h, 0);
	h = put_u16(h, 0);
	h = put_u16(h, entries);
	h = put_u32(h, (uint32_t)GPA_LAPIC);
	h = put_u16(h, 0);
	h = put_u8(h, 0);
	put_u8(h, 0);
	cfg[7] = checksum(cfg, (size_t)(p - cfg));

	/* Floating pointer structure. */
	uint8_t *f = base;
	f = put(f, "_MP_", 4);
	f = put_u32(f, (uint32_t)(GPA_MPTABLE + 16));
	f = put_u8(f, 1);
	f = put_u8(f, 4);
	f = put_u8(f, 0);
	memset(f, 0, 5);
	base[10] = checksum(base, 16);
}

/* ---- page tables, GDT, vCPU ---- */

static void page_tables_write(struct guest *g)
{
	uint64_t *pml4 = (uint64_t *)(g->ram + GPA_PML4);
	uint64_t *pdpt = pml4 + 512;
	uint64_t *pd = pdpt + 512; /* four pages: 4 GiB in 2 MiB pages */

	memset(pml4, 0, 6 * VMM_PAGE);
	pml4[0] = (GPA_PML4 + VMM_PAGE) | 0x3; /* present, writable */
	for (unsigned i = 0; i < 4; i++)
		pdpt[i] = (GPA_PML4 + (2 + i) * VMM_PAGE) | 0x3;
	for (unsigned i = 0; i < 4 * 512; i++)
		pd[i] = ((uint64_t)i << 21) | 0x83; /* present, writable, 2 MiB */
}

static int vcpu_setup(struct guest *g, uint64_t entry)
{
	uint64_t *gdt = (uint64_t *)(g->ram + GPA_GDT);
	gdt[0] = 0;
	gdt[1] = 0;
	gdt[2] = 0x00af9b000000ffffull; /* 0x10: 64-bit code */
	gdt[3] = 0x00cf93000000ffffull; /* 0x18: data */

	struct kvm_sregs sregs;
	if (ioctl(g->cpu.fd, KVM_GET_SREGS, &sregs) < 0)
		return -errno;
	struct kvm_segment code = {.base = 0,
				   .limit = 0xffffffff,
				   .selector = 0x10,
				   .type = 0xb,
				   .present = 1,
				   .dpl = 0,
				   .db = 0,
				   .s = 1,
				   .l = 1,
				   .g = 1};
	struct kvm_segment data = code;
	data.selector = 0x18;
	data.type = 0x3;
	data.l = 0;
	data.db = 1;
	sregs.cs = code;
	sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data;
	sregs.gdt.base = GPA_GDT;
	sregs.gdt.limit = 4 * 8 - 1;
	sregs.cr0 = 0x80000011ull; /* PG, ET, PE */
	sregs.cr3 = GPA_PML4;
	sregs.cr4 = 0x20;   /* PAE */
	sregs.efer = 0x500; /* LMA, LME */
	if (ioctl(g->cpu.fd, KVM_SET_SREGS, &sregs) < 0)
		return -errno;

	struct kvm_regs regs;
	memset(&regs, 0, sizeof regs);
	regs.rflags = 0x2;
	regs.rip = entry;
	regs.rsi = GPA_ZERO_PAGE;
	if (ioctl(g->cpu.fd, KVM_SET_REGS, &regs) < 0)
		return -errno;
	return 0;
}

/* CPUID of vCPU @id: what KVM supports, its APIC id, a hypervisor. */
static int cpuid_setup_one(struct guest *g, struct kvm_cpuid2 *c, unsigned id)
{
	for (unsigned i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];
		if (e->function == 1) {
			e->ebx = (e->ebx & 0x00ffffffu) | id << 24; /* initial APIC id */
			/* "Running under a hypervisor": Linux looks for KVM's leaves
			 * (kvmclock, PV EOI...) only then. */
			e->ecx |= 1u << 31;
		} else if (e->function == 0xb || e->function == 0x1f) {
			e->edx = id; /* x2APIC id */
		}
	}
	return ioctl(g->cpu.v[id].fd, KVM_SET_CPUID2, c) < 0 ? -errno : 0;
}

static int cpuid_setup(struct guest *g)
{
	unsigned nent = 256;
	struct kvm_cpuid2 *c = calloc(1, sizeof *c + nent * sizeof(struct kvm_cpuid_entry2));
	if (!c)
		return -ENOMEM;
	c->nent = nent;
	if (ioctl(g->vmm->kvm_fd, KVM_GET_SUPPORTED_CPUID, c) < 0) {
		int e = -errno;
		free(c);
		return e;
	}
	int r = 0;
	for (unsigned id = 0; id < g->cpu.n && r == 0; id++)
		r = cpuid_setup_one(g, c, id);
	free(c);
	return r;
}

/* The bzImage's setup header into the zero page, its protected-mode part
 * at GPA_KERNEL; -EINVAL if it is not one this loader can boot. */
static int load_kernel(struct guest *g, struct boot_params *bp, const uint8_t *img, size_t img_len)
{
	if (img_len < 0x1000) {
		vmm_log(g, "vmm: %s: too small for a bzImage", g->cfg.kernel);
		return -EINVAL;
	}
	/* The setup header: from 0x1f1 to 0x202 + the byte at 0x201. */
	size_t hdr_end = 0x202 + img[0x201];
	if (hdr_end > 0x1f1 + sizeof bp->hdr)
		hdr_end = 0x1f1 + sizeof bp->hdr;
	memcpy(&bp->hdr, img + 0x1f1, hdr_end - 0x1f1);
	struct setup_header *h = &bp->hdr;
	if (h->boot_flag != 0xaa55 || h->header != 0x53726448 /* "HdrS" */ || h->version < 0x20c ||
	    !(h->xloadflags & XLF_KERNEL_64) || !(h->loadflags & LOADED_HIGH)) {
		vmm_log(g, "vmm: %s: not a bzImage with a 64-bit entry (boot protocol 2.12+)",
			g->cfg.kernel);
		return -EINVAL;
	}
	size_t setup_len = ((size_t)(h->setup_sects ? h->setup_sects : 4) + 1) * 512;
	size_t pm_len = img_len - setup_len;
	if (setup_len >= img_len || GPA_KERNEL + h->init_size > g->cfg.mem ||
	    GPA_KERNEL + pm_len > g->cfg.mem) {
		vmm_log(g, "vmm: %s does not fit in %llu MiB", g->cfg.kernel,
			(unsigned long long)(g->cfg.mem >> 20));
		return -EINVAL;
	}
	memcpy(g->ram + GPA_KERNEL, img + setup_len, pm_len);

	h->type_of_loader = 0xff;
	h->loadflags |= CAN_USE_HEAP;
	h->loadflags &= (uint8_t)~KEEP_SEGMENTS;
	h->heap_end_ptr = 0xfe00 - 0x200;
	h->code32_start = (uint32_t)GPA_KERNEL;

	size_t cl = strlen(g->cfg.cmdline);
	if (cl >= h->cmdline_size || cl >= 4096) {
		vmm_log(g, "vmm: kernel command line too long");
		return -EINVAL;
	}
	memcpy(g->ram + GPA_CMDLINE, g->cfg.cmdline, cl + 1);
	h->cmd_line_ptr = (uint32_t)GPA_CMDLINE;
	return 0;
}

/* The initramfs at the highest page below initrd_addr_max and guest RAM's
 * end, above the kernel. */
static int load_initrd(struct guest *g, struct boot_params *bp)
{
	struct setup_header *h = &bp->hdr;
	uint8_t *rd = NULL;
	size_t rd_len = 0;
	int r = read_file(g->cfg.initrd, &rd, &rd_len);
	if (r < 0) {
		vmm_log(g, "vmm: cannot read initramfs %s: %s", g->cfg.initrd, strerror(-r));
		return r;
	}
	uint64_t top = g->cfg.mem < (uint64_t)h->initrd_addr_max + 1 ? g->cfg.mem
								     : (uint64_t)h->initrd_addr_max + 1;
	uint64_t at = (top - rd_len) & ~(VMM_PAGE - 1);
	if (rd_len > top || at < GPA_KERNEL + h->init_size) {
		vmm_log(g, "vmm: initramfs does not fit above the kernel");
		free(rd);
		return -EINVAL;
	}
	memcpy(g->ram + at, rd, rd_len);
	h->ramdisk_image = (uint32_t)at;
	h->ramdisk_size = (uint32_t)rd_len;
	bp->ext_ramdisk_image = (uint32_t)(at >> 32);
	bp->ext_ramdisk_size = (uint32_t)((uint64_t)rd_len >> 32);
	free(rd);
	return 0;
}

/* e820: low RAM below the EBDA, the BIOS area reserved (the MP table lives
 * there), RAM from 1 MiB up to the end of guest RAM. */
static void e820_write(struct guest *g, struct boot_params *bp)
{
	struct boot_e820_entry e[] = {
		{0, 0x9fc00, E820_RAM},
		{0x9fc00, 0x400, E820_RESERVED},
		{0xf0000, 0x10000, E820_RESERVED},
		{GPA_KERNEL, g->cfg.mem - GPA_KERNEL, E820_RAM},
	};
	memcpy(bp->e820_table, e, sizeof e);
	bp->e820_entries = sizeof e / sizeof e[0];
}

int boot_setup(struct guest *g)
{
	uint8_t *img = NULL;
	size_t img_len = 0;
	int r = read_file(g->cfg.kernel, &img, &img_len);
	if (r < 0) {
		vmm_log(g, "vmm: cannot read kernel %s: %s", g->cfg.kernel, strerror(-r));
		return r;
	}
	struct boot_params *bp = (struct boot_params *)(g->ram + GPA_ZERO_PAGE);
	memset(bp, 0, sizeof *bp);
	r = load_kernel(g, bp, img, img_len);
	free(img);
	if (r < 0 || (g->cfg.initrd && (r = load_initrd(g, bp)) < 0))
		return r;
	e820_write(g, bp);
	mptable_write(g);
	page_tables_write(g);
	r = cpuid_setup(g);
	if (r < 0) {
		vmm_log(g, "vmm: CPUID setup failed: %s", strerror(-r));
		return r;
	}
	r = vcpu_setup(g, GPA_KERNEL + 0x200);
	if (r < 0)
		vmm_log(g, "vmm: vCPU register setup failed: %s", strerror(-r));
	return r;
}

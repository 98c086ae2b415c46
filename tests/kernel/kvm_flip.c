/* SPDX-License-Identifier: MIT */
/*
 * kvm_flip: the KVM backend against a real KVM (run inside the kernel lab).
 *
 * Two VMs (A and B), each with guest RAM mapped from one memfd arena and
 * registered as one memslot by the backend, each running a small real-mode
 * program on a vCPU. The engine (with the kvm backend, no simulator)
 * delivers frames into their RX windows; the test writes the completions
 * into a ring page of guest RAM and the guest program reads each completion
 * and each packet from guest-physical memory and reports a checksum through
 * an I/O port, which is compared with what was sent. Then:
 *  - after A re-posts a buffer, A's vCPU reading that GPA makes KVM_RUN fail
 *    with EFAULT (or, on a 6.18 host whose /dev/kvm is kvm_pvm, exits
 *    with KVM_EXIT_MMIO at that GPA); vdemux_kvm_backfill() lets it run on,
 *    reading zeroes;
 *  - a page A gave back (after A's guest filled it with its own bytes) goes
 *    to B: B's guest sees its frame and zeroes, A's vCPU faults on its GPA;
 *  - the engine's RX signal, an irqfd made by vdemux_kvm_irqfd_create(),
 *    is raised once per call that delivered to A and makes A's vCPU take
 *    one interrupt (in-kernel PIC, IRQ 5); the signals of earlier calls,
 *    made while A's guest ran with interrupts off, stay latched in the PIC
 *    as one interrupt.
 *
 * Exit status: 0 passed, 1 failed, 77 skipped (no /dev/kvm).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <vdemux/sys/classifier.h>
#include <vdemux/vdemux.h>

#include "kvm_guest.h"

#define PAGE VDEMUX_PAGE_SIZE
#define RAM_PAGES 64u	 /* guest RAM: GPA 0 .. 256 KiB */
#define RX_BASE 0x10000u /* RX window: GPA 64 KiB .. 128 KiB */
#define RX_PAGES 16u
#define POOL_FIRST (2 * RAM_PAGES)
#define POOL_PAGES 32u
#define CODE_GPA 0x1000u
#define RING_GPA 0x2000u /* +0 count (u16); +16: struct vdemux_completion[] */
#define MBOX_GPA 0x3000u /* +0 command (u16); +4 GPA (u32); +16 interrupt count (u16) */
#define IRQ_GSI 5u

/* Guest ports. */
#define P_READY 0x10 /* waiting for a command */
#define P_HASH 0x11  /* checksum of one completion's bytes (4 bytes) */
#define P_BYTE 0x12  /* byte read at the mailbox GPA */
#define P_IRQS 0x13  /* interrupts taken so far (2 bytes) */
#define P_REST 0x14  /* OR of the page's bytes past the completion's length */
#define P_FILLED 0x15
#define P_BADCMD 0x1f

enum { CMD_RING = 1, CMD_READ = 2, CMD_IRQ_WAIT = 4, CMD_FILL = 5 };

/*
 * The guest program, 16-bit real mode, loaded at CODE_GPA with DS = 0.
 * Checksum: h = h * 31 + byte over the completion's bytes, 32 bits.
 */
__asm__(".pushsection .rodata\n"
	".globl kvmflip_guest\n"
	".hidden kvmflip_guest\n"
	".globl kvmflip_isr\n"
	".hidden kvmflip_isr\n"
	".globl kvmflip_guest_end\n"
	".hidden kvmflip_guest_end\n"
	".intel_syntax noprefix\n"
	".code16\n"
	"kvmflip_guest:\n"
	"	cli\n"
	"	xor ax, ax\n"
	"	mov ds, ax\n"
	"	mov ss, ax\n"
	"	mov sp, 0xfff0\n"
	/* IRQ 5 is vector 0x25 once the PIC is programmed below; the host
	 * wrote the vector's IVT entry. */
	"	mov al, 0x11\n" /* ICW1: edge, cascade, ICW4 follows */
	"	out 0x20, al\n"
	"	mov al, 0x20\n" /* ICW2: vectors 0x20.. */
	"	out 0x21, al\n"
	"	mov al, 0x04\n" /* ICW3: slave on IR2 */
	"	out 0x21, al\n"
	"	mov al, 0x01\n" /* ICW4: 8086 mode */
	"	out 0x21, al\n"
	"	mov al, 0xdf\n" /* OCW1: only IR5 unmasked */
	"	out 0x21, al\n"
	"	mov word ptr [0x3010], 0\n"
	"kvmflip_top:\n"
	"	out 0x10, al\n"
	"	mov ax, word ptr [0x3000]\n"
	"	cmp ax, 1\n"
	"	je kvmflip_ring\n"
	"	cmp ax, 2\n"
	"	je kvmflip_read\n"
	"	cmp ax, 4\n"
	"	je kvmflip_irq_wait\n"
	"	cmp ax, 5\n"
	"	je kvmflip_fill\n"
	"	out 0x1f, al\n"
	"	jmp kvmflip_top\n"

	"kvmflip_ring:\n"
	"	mov cx, word ptr [0x2000]\n"
	"	mov si, 0x2010\n"
	"kvmflip_next:\n"
	"	test cx, cx\n"
	"	jz kvmflip_top\n"
	"	mov eax, dword ptr [si]\n"
	"	shr eax, 4\n"
	"	mov es, ax\n"
	"	mov dx, word ptr [si + 8]\n"
	"	xor ebx, ebx\n"
	"	xor di, di\n"
	"kvmflip_byte:\n"
	"	test dx, dx\n"
	"	jz kvmflip_hashed\n"
	"	movzx eax, byte ptr es:[di]\n"
	"	imul ebx, ebx, 31\n"
	"	add ebx, eax\n"
	"	inc di\n"
	"	dec dx\n"
	"	jmp kvmflip_byte\n"
	"kvmflip_hashed:\n"
	"	mov eax, ebx\n"
	"	out 0x11, eax\n"
	"	mov bp, 4096\n"
	"	sub bp, word ptr [si + 8]\n"
	"	xor bl, bl\n"
	"kvmflip_rest:\n"
	"	test bp, bp\n"
	"	jz kvmflip_restdone\n"
	"	or bl, byte ptr es:[di]\n"
	"	inc di\n"
	"	dec bp\n"
	"	jmp kvmflip_rest\n"
	"kvmflip_restdone:\n"
	"	mov al, bl\n"
	"	out 0x14, al\n"
	"	add si, 16\n"
	"	dec cx\n"
	"	jmp kvmflip_next\n"

	"kvmflip_read:\n"
	"	mov eax, dword ptr [0x3004]\n"
	"	shr eax, 4\n"
	"	mov es, ax\n"
	"	mov al, byte ptr es:[0]\n"
	"	out 0x12, al\n"
	"	jmp kvmflip_top\n"

	"kvmflip_fill:\n"
	"	mov eax, dword ptr [0x3004]\n"
	"	shr eax, 4\n"
	"	mov es, ax\n"
	"	xor di, di\n"
	"	mov cx, 4096\n"
	"	mov al, 0x5a\n"
	"	cld\n"
	"	rep stosb\n"
	"	out 0x15, al\n"
	"	jmp kvmflip_top\n"

	/* Sleep until an interrupt comes (the host bounds the wait); one
	 * already pending ends the HLT at once. */
	"kvmflip_irq_wait:\n"
	"	sti\n"
	"	hlt\n"
	"	cli\n"
	"	mov ax, word ptr [0x3010]\n"
	"	out 0x13, ax\n"
	"	jmp kvmflip_top\n"

	"kvmflip_isr:\n"
	"	push ax\n"
	"	inc word ptr [0x3010]\n"
	"	mov al, 0x20\n" /* non-specific EOI */
	"	out 0x20, al\n"
	"	pop ax\n"
	"	iret\n"
	"kvmflip_guest_end:\n"
	".code64\n"
	".att_syntax prefix\n"
	".popsection\n");

extern const uint8_t kvmflip_guest[];
extern const uint8_t kvmflip_isr[];
extern const uint8_t kvmflip_guest_end[];

/* ---- reporting ------------------------------------------------------------ */

static int failures;

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	printf("FAIL: ");
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
	fflush(stdout);
	failures++;
}

static void ok(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void ok(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	printf("ok: ");
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
	fflush(stdout);
}

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

#define CHECK(expr)                                                               \
	do {                                                                      \
		int r_ = (expr);                                                  \
		if (r_ < 0) {                                                     \
			fail("%s: %s (line %d)", #expr, strerror(-r_), __LINE__); \
			return r_;                                                \
		}                                                                 \
	} while (0)

/* ---- vCPU ------------------------------------------------------------------ */

static volatile sig_atomic_t alarm_fired;

static void on_alarm(int sig)
{
	(void)sig;
	alarm_fired = 1;
}

/* run_io(): the vCPU stopped with KVM_EXIT_MMIO (vm->run->mmio says where). */
#define RUN_MMIO 1

/*
 * KVM_RUN until an I/O exit, for at most timeout_s seconds (SIGALRM kicks the
 * vCPU out of the kernel). Returns 0 with *io filled, -errno of KVM_RUN
 * (-EFAULT on a hole, on the lab's 6.1), RUN_MMIO for an MMIO exit (a hole,
 * on a 6.18 host's kvm_pvm), -ETIMEDOUT, or -EIO for
 * another exit.
 */
static int run_io(struct kg_vm *vm, struct kg_io *io, unsigned timeout_s)
{
	alarm_fired = 0;
	alarm(timeout_s);
	for (;;) {
		vm->exit_reason = -1;
		if (ioctl(vm->vcpu_fd, KVM_RUN, 0) < 0) {
			int e = errno;
			if (e == EINTR && alarm_fired) {
				alarm(0);
				return -ETIMEDOUT;
			}
			if (e == EINTR || e == EAGAIN)
				continue;
			alarm(0);
			return -e;
		}
		struct kvm_run *run = vm->run;
		vm->exit_reason = (int)run->exit_reason;
		if (run->exit_reason == KVM_EXIT_INTR)
			continue;
		alarm(0);
		if (run->exit_reason == KVM_EXIT_MMIO)
			return RUN_MMIO;
		if (run->exit_reason != KVM_EXIT_IO) {
			printf("vCPU stopped: exit %d (%s)\n", vm->exit_reason,
			       kg_exit_name(vm->exit_reason));
			return -EIO;
		}
		kg_io_decode(run, io);
		return 0;
	}
}

#define EXIT_SENTINEL 0xdeadu

static const char *exit_name(uint32_t reason)
{
	static char buf[32];

	if (reason == EXIT_SENTINEL)
		return "left untouched";
#ifdef KVM_EXIT_MEMORY_FAULT
	if (reason == KVM_EXIT_MEMORY_FAULT)
		return "KVM_EXIT_MEMORY_FAULT";
#endif
	snprintf(buf, sizeof(buf), "%u", reason);
	return buf;
}

/* Run to the next OUT; it must be to @port. */
/* Like expect_out(), but an MMIO exit is returned (RUN_MMIO) for the
 * caller to judge, not failed. */
static int expect_out_or_mmio(struct kg_vm *vm, const char *who, uint16_t port, uint32_t *value)
{
	struct kg_io io = {0};
	int r = run_io(vm, &io, 10);

	if (r != 0)
		return r;
	if (!io.out || io.port != port) {
		fail("%s: expected OUT to port 0x%x, got %s port 0x%x value 0x%x", who, port,
		     io.out ? "OUT" : "IN", io.port, io.value);
		return -EPROTO;
	}
	if (value)
		*value = io.value;
	return 0;
}

static int expect_out(struct kg_vm *vm, const char *who, uint16_t port, uint32_t *value)
{
	int r = expect_out_or_mmio(vm, who, port, value);

	if (r == RUN_MMIO) {
		fail("%s: unexpected KVM_EXIT_MMIO at GPA 0x%llx", who,
		     (unsigned long long)vm->run->mmio.phys_addr);
		return -EIO;
	}
	return r;
}

/* ---- the VMs ---------------------------------------------------------------- */

struct gvm {
	const char *name;
	int idx;
	struct kg_vm kg;
	uint8_t *ram;
	struct vdemux_backend *be;
	vdemux_vm_id id;
	int irqfd;
};

/* Frames go to the VM named by the last byte of the destination MAC. */
struct by_mac {
	struct vdemux_classifier base;
	vdemux_vm_id vm[2];
};

static int by_mac_classify(struct vdemux_classifier *c, const uint8_t *frame, uint32_t len,
			   struct vdemux_verdict *v)
{
	struct by_mac *b = (struct by_mac *)c;
	vdemux_vm_id id = b->vm[frame[5] & 1];

	(void)len;
	v->n = 0;
	v->drop_reason = VDEMUX_DROP_UNKNOWN_UNICAST;
	if (id) {
		v->dests[0] = (struct vdemux_dest){.vm = id};
		v->n = 1;
	}
	return 0;
}

static vdemux_arena *arena;
static struct vdemux_arena_info ai;
static vdemux_engine *eng;
static struct by_mac cls;

static int gvm_up(struct gvm *g, const char *name, int idx, bool irq, enum vdemux_harvest harvest)
{
	memset(g, 0, sizeof(*g));
	g->name = name;
	g->idx = idx;
	g->irqfd = -1;
	CHECK(kg_open(&g->kg));
	CHECK(kg_create_vm(&g->kg));
	/* In-kernel PIC, IOAPIC and LAPIC: the guest programs the PIC, and irqfd injects through it. */
	if (ioctl(g->kg.vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
		CHECK(-errno);

	void *ram;
	CHECK(vdemux_kvm_ram_map(arena, (uint32_t)idx * RAM_PAGES, RAM_PAGES, &ram));
	g->ram = ram;
	memcpy(g->ram + CODE_GPA, kvmflip_guest, (size_t)(kvmflip_guest_end - kvmflip_guest));
	/* Real-mode IVT entry of vector 0x25 (IRQ 5): offset, segment 0. */
	uint16_t isr = (uint16_t)(CODE_GPA + (uint32_t)(kvmflip_isr - kvmflip_guest));
	memcpy(g->ram + 0x25 * 4, &isr, sizeof(isr));
	memset(g->ram + 0x25 * 4 + 2, 0, 2);

	/* Guest RAM registered once, by the backend; never touched again. */
	struct vdemux_kvm_opts ko = VDEMUX_OPTS(
		vdemux_kvm_opts, .ram_gpa = 0, .ram_size = (uint64_t)RAM_PAGES * PAGE, .ram_hva = ram,
		.flags = VDEMUX_KVM_F_SET_MEMSLOT | VDEMUX_KVM_F_HOME_FD, .vm_fd = g->kg.vm_fd,
		.slot = 0, .home_fd = ai.fd, .home_offset = (uint64_t)idx * RAM_PAGES * PAGE);
	CHECK(vdemux_kvm_create(&g->be, &ko));
	CHECK(vdemux_engine_add_backend(eng, g->be));
	CHECK(kg_create_vcpu(&g->kg, CODE_GPA));
	/* The guest sets itself up and waits for a command. */
	CHECK(expect_out(&g->kg, name, P_READY, NULL));

	struct vdemux_signal sig = {.kind = VDEMUX_SIGNAL_NONE};
	if (irq) {
		CHECK(vdemux_kvm_irqfd_create(g->kg.vm_fd, IRQ_GSI, 0, &g->irqfd));
		sig = (struct vdemux_signal){.kind = VDEMUX_SIGNAL_EVENTFD, .fd = g->irqfd};
	}
	struct vdemux_vm_opts vo = VDEMUX_OPTS(vdemux_vm_opts, .rx_base = RX_BASE, .rx_pages = RX_PAGES,
					       .flags = VDEMUX_VM_F_UNPOPULATED, .harvest = harvest,
					       .backends = &g->be, .n_backends = 1, .signal = sig);
	CHECK(vdemux_vm_add(eng, &g->id, &vo));
	cls.vm[idx] = g->id;
	return 0;
}

static void mbox_cmd(struct gvm *g, uint16_t cmd, uint32_t gpa)
{
	memcpy(g->ram + MBOX_GPA, &cmd, sizeof(cmd));
	memcpy(g->ram + MBOX_GPA + 4, &gpa, sizeof(gpa));
}

static uint32_t hash(const uint8_t *p, uint32_t n)
{
	uint32_t h = 0;
	for (uint32_t i = 0; i < n; i++)
		h = h * 31u + p[i];
	return h;
}

static void make_frame(uint8_t *buf, uint32_t len, int vm, unsigned seed)
{
	for (uint32_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(seed * 131u + i * 7u + (i >> 8) + 1u);
	memcpy(buf, "\x02\x00\x00\x00\x00\x00\x02\x00\x00\x00\x00\x09", 12);
	buf[5] = (uint8_t)vm;
}

struct sent {
	const uint8_t *data;
	uint32_t len;
};

/*
 * Poll the VM's completions, put them in its ring, let the guest checksum
 * them, and compare with the frames sent (in order; chained completions
 * cover consecutive chunks of one frame).
 */
static int guest_verify(struct gvm *g, const struct sent *frames, unsigned nframes, unsigned *ncpl,
			struct vdemux_completion *cpl_out)
{
	struct vdemux_completion c[RX_PAGES];
	int n = vdemux_vm_poll(eng, g->id, c, RX_PAGES);

	CHECK(n);
	uint16_t cnt = (uint16_t)n;
	memcpy(g->ram + RING_GPA, &cnt, sizeof(cnt));
	memcpy(g->ram + RING_GPA + 16, c, (size_t)n * sizeof(c[0]));
	mbox_cmd(g, CMD_RING, 0);

	unsigned f = 0;
	uint32_t off = 0;
	for (int i = 0; i < n; i++) {
		uint32_t h, rest;
		CHECK(expect_out(&g->kg, g->name, P_HASH, &h));
		CHECK(expect_out(&g->kg, g->name, P_REST, &rest));
		if (f >= nframes) {
			fail("%s: completion %d for no frame sent", g->name, i);
			return -EPROTO;
		}
		uint32_t want = hash(frames[f].data + off, c[i].len);
		if (h != want || (rest & 0xff) != 0)
			fail("%s: completion %d (GPA 0x%llx, %u bytes): guest checksum 0x%08x, sent 0x%08x; "
			     "bytes past the frame OR to 0x%02x",
			     g->name, i, (unsigned long long)c[i].gpa, c[i].len, h, want, rest & 0xff);
		off += c[i].len;
		if (!(c[i].flags & VDEMUX_CPL_MORE)) {
			if (off != frames[f].len)
				fail("%s: frame %u: %u bytes completed, %u sent", g->name, f, off,
				     frames[f].len);
			f++;
			off = 0;
		}
	}
	CHECK(expect_out(&g->kg, g->name, P_READY, NULL));
	if (f != nframes)
		fail("%s: %u frames completed, %u sent", g->name, f, nframes);
	if (ncpl)
		*ncpl = (unsigned)n;
	if (cpl_out)
		memcpy(cpl_out, c, (size_t)n * sizeof(c[0]));
	return 0;
}

static int post(struct gvm *g, const uint64_t *gpas, unsigned n)
{
	int r = vdemux_vm_post_rx(eng, g->id, gpas, n);
	if (r < 0)
		return r;
	if ((unsigned)r != n) {
		fail("%s: %d of %u buffers posted", g->name, r, n);
		return -EIO;
	}
	return 0;
}

/* Guest reads the byte at gpa: 0 with *byte, or KVM_RUN's -errno. */
/*
 * Did the vCPU's access to the page of @gpa fault as a hole? Two answers
 * are right, and only these: KVM_RUN fails with EFAULT (Debian's 6.1 in the
 * lab: the memslot's host page is PROT_NONE), or the vCPU exits with
 * KVM_EXIT_MMIO at that page (seen on a 6.18 host whose /dev/kvm is the
 * kvm_pvm module, software virtualisation: KVM finds no usable page behind the GPA and hands the access to
 * the VMM as emulated MMIO). *how says which.
 */
static bool hole_fault(const struct kg_vm *vm, int r, uint64_t gpa, const char **how)
{
	if (r == -EFAULT) {
		*how = "KVM_RUN failed with EFAULT";
		return true;
	}
	if (r == RUN_MMIO &&
	    (vm->run->mmio.phys_addr & ~(uint64_t)(PAGE - 1)) == (gpa & ~(uint64_t)(PAGE - 1))) {
		*how = "KVM_EXIT_MMIO at the hole's GPA";
		return true;
	}
	return false;
}

/* After a hole fault, before running the vCPU again: an MMIO read waits for
 * its data, which the VMM supplies; give it what the backfilled page holds
 * (zeroes), so that both kinds of kernel show the guest the same thing. */
static void hole_resume(struct kg_vm *vm, int r)
{
	if (r == RUN_MMIO && !vm->run->mmio.is_write)
		memset(vm->run->mmio.data, 0, sizeof(vm->run->mmio.data));
}

static int guest_read_byte(struct gvm *g, uint64_t gpa, uint8_t *byte)
{
	uint32_t v;
	mbox_cmd(g, CMD_READ, (uint32_t)gpa);
	int r = expect_out_or_mmio(&g->kg, g->name, P_BYTE, &v);
	if (r != 0)
		return r;
	*byte = (uint8_t)v;
	return expect_out(&g->kg, g->name, P_READY, NULL);
}

/* The master PIC of @g's in-kernel irqchip, as KVM holds it. */
static int pic_master(const struct gvm *g, struct kvm_pic_state *p)
{
	struct kvm_irqchip c = {.chip_id = KVM_IRQCHIP_PIC_MASTER};

	if (ioctl(g->kg.vm_fd, KVM_GET_IRQCHIP, &c) < 0)
		return -errno;
	*p = c.chip.pic;
	return 0;
}

/* Wait up to 2 s for IRQ_GSI to be latched in the master PIC's IRR: irqfd
 * injects from a kernel work item, after the eventfd write has returned.
 * 0 once it is, -ETIMEDOUT if it never is. */
static int wait_irr(const struct gvm *g, struct kvm_pic_state *p)
{
	for (int i = 0; i < 2000; i++) {
		CHECK(pic_master(g, p));
		if (p->irr & (1u << IRQ_GSI))
			return 0;
		usleep(1000);
	}
	return -ETIMEDOUT;
}

static uint64_t vm_signals(vdemux_vm_id id)
{
	struct vdemux_vm_stats vs;

	if (vdemux_vm_stats(eng, id, &vs, sizeof(vs)) < 0)
		return UINT64_MAX;
	return vs.signals;
}

static int check_engine(void)
{
	char msg[256] = "";
	if (vdemux_engine_check(eng, msg, sizeof(msg)) != 0) {
		fail("engine invariants: %s", msg);
		return -EUCLEAN;
	}
	return 0;
}

/* ---- a vCPU thread running while pages flip --------------------------------- */

struct reader {
	struct gvm *g;
	volatile int stop;
	volatile unsigned long reads;
	volatile int last; /* the last byte read */
	int err;
	uint8_t seen[256];
};

static void *reader_thread(void *arg)
{
	struct reader *rd = arg;

	while (!rd->stop) {
		uint32_t v;
		int r = expect_out(&rd->g->kg, rd->g->name, P_BYTE, &v);
		if (r == 0)
			r = expect_out(&rd->g->kg, rd->g->name, P_READY, NULL);
		if (r < 0) {
			rd->err = r;
			return NULL;
		}
		rd->seen[v & 0xff] = 1;
		rd->last = (int)(v & 0xff);
		rd->reads++;
	}
	return NULL;
}

#define CONC_FLIPS 100u
#define CONC_OFF 16u /* the byte read: differs between the frames below */

static int concurrent_flips(struct gvm *g)
{
	static uint8_t f[CONC_FLIPS + 1][256];
	struct vdemux_completion c;
	struct vdemux_frame fr;
	uint8_t valid[256] = {0};

	/* Fill B's last posted buffer; its GPA is the one to flip. */
	make_frame(f[0], sizeof(f[0]), g->idx, 1000);
	valid[f[0][CONC_OFF]] = 1;
	fr = (struct vdemux_frame){.data = f[0], .len = sizeof(f[0])};
	CHECK(vdemux_rx_burst(eng, &fr, 1));
	if (vdemux_vm_poll(eng, g->id, &c, 1) != 1) {
		fail("%s: no completion for the first frame", g->name);
		return -EIO;
	}
	uint64_t gpa = c.gpa;
	struct vdemux_kvm_stats k0;
	CHECK(vdemux_kvm_stats(g->be, &k0, sizeof(k0)));

	mbox_cmd(g, CMD_READ, (uint32_t)(gpa + CONC_OFF));
	struct reader rd = {.g = g, .last = -1};
	pthread_t t;
	int r = pthread_create(&t, NULL, reader_thread, &rd);
	if (r)
		CHECK(-r);
	double t0 = now_us();
	for (unsigned i = 1; i <= CONC_FLIPS && !rd.err; i++) {
		make_frame(f[i], sizeof(f[i]), g->idx, 1000 + i);
		valid[f[i][CONC_OFF]] = 1;
		CHECK(post(g, &gpa, 1)); /* lazy: still mapped, swapped when the frame comes */
		fr = (struct vdemux_frame){.data = f[i], .len = sizeof(f[i])};
		CHECK(vdemux_rx_burst(eng, &fr, 1));
		if (vdemux_vm_poll(eng, g->id, &c, 1) != 1 || c.gpa != gpa) {
			fail("%s: frame %u not delivered at GPA 0x%llx", g->name, i,
			     (unsigned long long)gpa);
			break;
		}
		/* The running vCPU must come to read the new page, without being stopped. */
		double w0 = now_us();
		while (!rd.err && rd.last != f[i][CONC_OFF] && now_us() - w0 < 2e6)
			sched_yield();
		if (rd.last != f[i][CONC_OFF] && !rd.err) {
			fail("%s: 2 s after flip %u the running vCPU still reads 0x%02x, not 0x%02x",
			     g->name, i, rd.last, f[i][CONC_OFF]);
			break;
		}
	}
	double t1 = now_us();
	/* Let the reader see the last page, then stop it. */
	unsigned long r0 = rd.reads;
	while (!rd.err && rd.reads < r0 + 20)
		usleep(1000);
	rd.stop = 1;
	pthread_join(t, NULL);

	struct vdemux_kvm_stats k1;
	CHECK(vdemux_kvm_stats(g->be, &k1, sizeof(k1)));
	unsigned distinct = 0, bogus = 0;
	for (int v = 0; v < 256; v++) {
		distinct += rd.seen[v];
		bogus += rd.seen[v] && !valid[v];
	}
	printf("%s: %u remaps (%.0f us per frame: post, burst, remap, poll, wait for the vCPU) while its vCPU thread read "
	       "GPA 0x%llx %lu times: %u distinct values, %s\n",
	       g->name, (unsigned)(k1.pages_remapped - k0.pages_remapped), (t1 - t0) / CONC_FLIPS,
	       (unsigned long long)gpa + CONC_OFF, rd.reads, distinct,
	       rd.err ? strerror(-rd.err) : "no fault");
	if (rd.err) {
		fail("%s: the running vCPU failed while pages flipped under it: %s", g->name,
		     strerror(-rd.err));
		return rd.err;
	}
	if (k1.pages_remapped - k0.pages_remapped != CONC_FLIPS)
		fail("%s: %llu remaps, expected %u", g->name,
		     (unsigned long long)(k1.pages_remapped - k0.pages_remapped), CONC_FLIPS);
	if (bogus)
		fail("%s: the vCPU read %u values that no delivered frame holds there", g->name, bogus);
	/* (The first page may be gone before the reader starts.) */
	if (distinct < CONC_FLIPS)
		fail("%s: the running vCPU saw %u distinct values, expected one per flipped page (%u)",
		     g->name, distinct, CONC_FLIPS);
	/* What it sees now is the last frame. */
	uint8_t byte;
	CHECK(guest_read_byte(g, gpa + CONC_OFF, &byte));
	if (byte != f[CONC_FLIPS][CONC_OFF])
		fail("%s: reads 0x%02x after the last flip, expected 0x%02x", g->name, byte,
		     f[CONC_FLIPS][CONC_OFF]);
	if (!failures)
		ok("%s's vCPU ran on its own thread through %u in-place flips: saw each new page, no "
		   "fault, only delivered bytes",
		   g->name, CONC_FLIPS);
	return check_engine();
}

/*
 * 4. The RX signal through KVM_IRQFD, on A.
 *
 * What the library promises, checked through what it controls: a call that
 * delivers to a VM raises its signal once (the VM's signal counter; the
 * eventfd write behind it is the irqfd's). What the guest must see: that
 * one signal is one interrupt.
 *
 * The earlier bursts signalled A too, while its guest ran with interrupts
 * off. Its PIC was programmed (vectors 0x20.., edge, only IR5 unmasked) in
 * gvm_up(), before the irqfd was attached, so no ICW1 (which clears the
 * edge IRR bits) came after them. irqfd injects an edge on GSI 5
 * (kvm_set_irq() with level 1, then 0), which the in-kernel 8259 latches in
 * IRR bit 5: once, however many edges came. That latch is what KVM
 * guarantees on every kernel, so it is read from the PIC (KVM_GET_IRQCHIP).
 * When the latched interrupt reaches the guest after it sets IF is not
 * guaranteed. With hardware virtualisation KVM asks for an interrupt window
 * and injects right after STI's shadow (the lab's 6.1 on SVM: STI;NOP;NOP;
 * NOP;CLI took it). A 6.18 host whose /dev/kvm is the kvm_pvm module
 * (software virtualisation, parameter pvm_emul_batch=1024) latched the edge
 * just the same (IRR 0x20, IMR 0xdf) but injected it only after about 1024
 * guest instructions had run with IF set: 1022 took nothing, 1028 took it,
 * every time. So the guest takes a pending interrupt with STI;HLT, which
 * every KVM ends when one is pending, and "nothing pending" is read from
 * the PIC's IRR and ISR, not guessed from a short IF=1 window.
 */
static int irq_signal(struct gvm *a)
{
	struct kvm_pic_state pic;
	uint32_t irqs, irqs0;

	CHECK(pic_master(a, &pic));
	if (pic.irq_base != 0x20 || (pic.imr & (1u << IRQ_GSI)))
		fail("A's PIC: vector base 0x%02x, IMR 0x%02x: not programmed as the guest did it",
		     pic.irq_base, pic.imr);
	/* Each earlier call that delivered to A (sections 1 and 3) raised one;
	 * a release request may have raised more. */
	if (vm_signals(a->id) < 2)
		fail("A: %llu signals counted for the two earlier bursts that delivered to it",
		     (unsigned long long)vm_signals(a->id));
	if (wait_irr(a, &pic) < 0)
		fail("A's PIC: IRR 0x%02x: the earlier signalled bursts left no edge latched on IRQ %u",
		     pic.irr, IRQ_GSI);
	mbox_cmd(a, CMD_IRQ_WAIT, 0);
	int r = expect_out(&a->kg, "A", P_IRQS, &irqs0);
	if (r == -ETIMEDOUT)
		fail("A's vCPU waited 10 s in HLT: the latched interrupt never came");
	CHECK(r);
	CHECK(expect_out(&a->kg, "A", P_READY, NULL));
	irqs0 &= 0xffff;
	printf("A took %u interrupt(s) latched from the earlier bursts\n", irqs0);
	if (irqs0 != 1)
		fail("A: %u interrupts from the latch of the earlier signalled bursts, expected 1 (edge, latched once)",
		     irqs0);
	CHECK(pic_master(a, &pic));
	if ((pic.irr | pic.isr) & (1u << IRQ_GSI))
		fail("A's PIC after the guest's EOI: IRR 0x%02x ISR 0x%02x, expected IRQ %u neither pending nor in "
		     "service",
		     pic.irr, pic.isr, IRQ_GSI);

	/* One burst for A, now that nothing is pending: one signal, one interrupt. */
	static uint8_t f5[128];
	struct vdemux_frame fr = {.data = f5, .len = sizeof(f5)};
	uint64_t sig0 = vm_signals(a->id);
	make_frame(f5, sizeof(f5), 0, 50);
	CHECK(vdemux_rx_burst(eng, &fr, 1));
	uint64_t sig1 = vm_signals(a->id);
	if (sig1 != sig0 + 1)
		fail("A: one burst that delivered to it raised %llu signals, expected 1",
		     (unsigned long long)(sig1 - sig0));
	mbox_cmd(a, CMD_IRQ_WAIT, 0);
	r = expect_out(&a->kg, "A", P_IRQS, &irqs);
	if (r == -ETIMEDOUT) {
		fail("A's vCPU waited 10 s in HLT: the irqfd interrupt never came");
		return r;
	}
	CHECK(r);
	CHECK(expect_out(&a->kg, "A", P_READY, NULL));
	CHECK(pic_master(a, &pic));
	if ((irqs & 0xffff) != irqs0 + 1)
		fail("A took %u interrupts after one signalled burst, expected 1",
		     (irqs & 0xffff) - irqs0);
	else if ((pic.irr | pic.isr) & (1u << IRQ_GSI))
		fail("A's PIC after one signalled burst was taken: IRR 0x%02x ISR 0x%02x, expected nothing more",
		     pic.irr, pic.isr);
	else
		ok("the engine's RX signal (irqfd, GSI %u) was raised once for one burst and woke A's vCPU from "
		   "HLT into its IRQ 5 handler once",
		   IRQ_GSI);
	struct sent s5 = {f5, sizeof(f5)};
	return guest_verify(a, &s5, 1, NULL, NULL);
}

/* ---- the test ------------------------------------------------------------------ */

static int run_test(void)
{
	struct gvm a, b;
	static uint8_t fa[3][9000], fb[2][2000];
	double t0 = now_us();

	struct vdemux_arena_opts ao = VDEMUX_OPTS(vdemux_arena_opts, .npages = POOL_FIRST + POOL_PAGES,
						  .kind = VDEMUX_ARENA_MEMFD);
	CHECK(vdemux_arena_create(&arena, &ao));
	CHECK(vdemux_arena_info(arena, &ai));
	struct vdemux_engine_opts eo = VDEMUX_OPTS(
		vdemux_engine_opts, .arena = arena, .first_page = POOL_FIRST, .npages = POOL_PAGES,
		.harvest = VDEMUX_HARVEST_EAGER, .copy = VDEMUX_COPY_NEVER);
	CHECK(vdemux_engine_create(&eng, &eo));
	cls.base = (struct vdemux_classifier)VDEMUX_CLASSIFIER_INIT;
	cls.base.name = "by-mac";
	cls.base.classify = by_mac_classify;
	CHECK(vdemux_engine_set_classifier(eng, &cls.base));
	CHECK(gvm_up(&a, "A", 0, true, VDEMUX_HARVEST_EAGER));
	CHECK(gvm_up(&b, "B", 1, false, VDEMUX_HARVEST_LAZY));
	printf("two VMs up (memslot, vCPU, irqfd) in %.0f ms\n", (now_us() - t0) / 1e3);

	/* 1. Frames for both VMs in one burst; each guest checks its own. */
	uint64_t g[RX_PAGES];
	for (unsigned i = 0; i < 8; i++)
		g[i] = RX_BASE + (uint64_t)i * PAGE;
	CHECK(post(&a, g, 8));
	CHECK(post(&b, g, 4));
	static const uint32_t alen[3] = {60, 1500, 9000};
	struct sent sa[3], sb[2];
	struct vdemux_frame fr[5];
	for (int i = 0; i < 3; i++) {
		make_frame(fa[i], alen[i], 0, (unsigned)i + 1);
		sa[i] = (struct sent){fa[i], alen[i]};
	}
	for (int i = 0; i < 2; i++) {
		make_frame(fb[i], 1000u + 900u * (unsigned)i, 1, (unsigned)i + 10);
		sb[i] = (struct sent){fb[i], 1000u + 900u * (unsigned)i};
	}
	fr[0] = (struct vdemux_frame){.data = fa[0], .len = alen[0]};
	fr[1] = (struct vdemux_frame){.data = fb[0], .len = sb[0].len};
	fr[2] = (struct vdemux_frame){.data = fa[1], .len = alen[1]};
	fr[3] = (struct vdemux_frame){.data = fa[2], .len = alen[2]};
	fr[4] = (struct vdemux_frame){.data = fb[1], .len = sb[1].len};
	int r = vdemux_rx_burst(eng, fr, 5);
	CHECK(r);
	if (r != 5)
		fail("rx_burst took %d of 5 frames", r);
	unsigned nca, ncb;
	struct vdemux_completion ca[RX_PAGES], cb[RX_PAGES];
	CHECK(guest_verify(&a, sa, 3, &nca, ca));
	CHECK(guest_verify(&b, sb, 2, &ncb, cb));
	CHECK(check_engine());
	if (!failures)
		ok("vCPUs of A and B read their frames from guest-physical memory (%u + %u completions), "
		   "checksums match, bytes past each frame are zero",
		   nca, ncb);
	int sigs = vdemux_vm_take_signals(eng, a.id);
	if (!(sigs & VDEMUX_SIG_RX))
		fail("A: no RX signal recorded (reasons 0x%x)", sigs);

	/* 2. A re-posts its buffers: reading one of them faults in KVM_RUN. */
	uint64_t released[RX_PAGES];
	for (unsigned i = 0; i < nca; i++)
		released[i] = ca[i].gpa;
	CHECK(post(&a, released, nca));
	uint8_t byte = 0xff;
	/* Whether KVM reports anything in kvm_run on this failure: mark the field first. */
	a.kg.run->exit_reason = EXIT_SENTINEL;
	r = guest_read_byte(&a, released[1], &byte);
	uint32_t exit_reason = a.kg.run->exit_reason;
	const char *how = "";
	if (!hole_fault(&a.kg, r, released[1], &how)) {
		fail("A read re-posted GPA 0x%llx: KVM_RUN gave %d (%s), byte 0x%02x; expected EFAULT "
		     "or KVM_EXIT_MMIO at that GPA",
		     (unsigned long long)released[1], r, r < 0 ? strerror(-r) : "an exit", byte);
	} else {
		ok("A's vCPU reading re-posted GPA 0x%llx: %s (kvm_run.exit_reason %s)",
		   (unsigned long long)released[1], how, exit_name(exit_reason));
		hole_resume(&a.kg, r);
		/* Recover: a private zero page at the hole, and the vCPU runs on. */
		uint32_t page;
		CHECK(vdemux_kvm_translate(a.be, released[1], &page));
		if (page != VDEMUX_NO_PAGE)
			fail("A: translate says page %u at a re-posted GPA", page);
		r = vdemux_kvm_backfill(a.be, released[1]);
		if (r != 1)
			fail("backfill gave %d", r);
		uint32_t v;
		CHECK(expect_out(&a.kg, "A", P_BYTE, &v));
		CHECK(expect_out(&a.kg, "A", P_READY, NULL));
		if (v != 0)
			fail("A after backfill read 0x%02x, expected 0", v);
		else
			ok("after vdemux_kvm_backfill() the vCPU ran on and read 0");
	}
	CHECK(check_engine());

	/* 3. A page moves from A to B. A gets a frame, its guest writes all over
	 *    the page, A gives it back, and the next frame (for B) must land in
	 *    it: every other free page is lent out meanwhile. */
	static uint8_t f3[700], f4[300];
	struct vdemux_completion c3, c4;
	make_frame(f3, sizeof(f3), 0, 30);
	fr[0] = (struct vdemux_frame){.data = f3, .len = sizeof(f3)};
	CHECK(vdemux_rx_burst(eng, fr, 1));
	struct sent s3 = {f3, sizeof(f3)};
	CHECK(guest_verify(&a, &s3, 1, NULL, &c3));
	uint64_t ga = c3.gpa, gb;
	uint32_t pa, pb;
	CHECK(vdemux_kvm_translate(a.be, ga, &pa));
	mbox_cmd(&a, CMD_FILL, (uint32_t)ga);
	CHECK(expect_out(&a.kg, "A", P_FILLED, NULL));
	CHECK(expect_out(&a.kg, "A", P_READY, NULL));
	if (ai.base[(size_t)pa * PAGE + 4000] != 0x5a)
		fail("A's guest writes did not reach arena page %u", pa);

	struct vdemux_rx_buf lent[POOL_PAGES];
	int nlent = vdemux_rx_alloc(eng, lent, POOL_PAGES);
	CHECK(nlent);
	CHECK(post(&a, &ga, 1)); /* A releases the page: now the only free one */
	make_frame(f4, sizeof(f4), 1, 40);
	fr[0] = (struct vdemux_frame){.data = f4, .len = sizeof(f4)};
	r = vdemux_rx_burst(eng, fr, 1);
	CHECK(r);
	if (nlent > 0)
		CHECK(vdemux_rx_abort(eng, lent, (unsigned)nlent));
	struct sent s4 = {f4, sizeof(f4)};
	CHECK(guest_verify(&b, &s4, 1, NULL, &c4)); /* its frame, then zeroes: none of A's bytes */
	gb = c4.gpa;
	CHECK(vdemux_kvm_translate(b.be, gb, &pb));
	if (pb != pa)
		fail("B's frame is in page %u, not in page %u that A gave back", pb, pa);
	r = guest_read_byte(&a, ga, &byte);
	if (!hole_fault(&a.kg, r, ga, &how))
		fail("A reading GPA 0x%llx after its page went to B: %d, byte 0x%02x; expected EFAULT "
		     "or KVM_EXIT_MMIO at that GPA",
		     (unsigned long long)ga, r, byte);
	else {
		hole_resume(&a.kg, r);
		CHECK(vdemux_kvm_backfill(a.be, ga));
		CHECK(expect_out(&a.kg, "A", P_BYTE, NULL));
		CHECK(expect_out(&a.kg, "A", P_READY, NULL));
	}
	CHECK(check_engine());
	if (!failures)
		ok("arena page %u moved from A (GPA 0x%llx) to B (GPA 0x%llx): B's vCPU sees its frame and "
		   "zeroes past it, none of A's writes; A's vCPU faults on its GPA",
		   pa, (unsigned long long)ga, (unsigned long long)gb);

	/* 5. B's vCPU keeps running on its own thread, reading one GPA over and
	 *    over, while the engine swaps the page behind it (lazy harvest: one
	 *    remap per frame). It must never fault and must see the new pages. */
	CHECK(concurrent_flips(&b));

	/* 4. The RX signal through KVM_IRQFD. */
	CHECK(irq_signal(&a));

	/* Counters of the backends. */
	for (struct gvm *v = &a; v; v = v == &a ? &b : NULL) {
		struct vdemux_kvm_stats ks;
		CHECK(vdemux_kvm_stats(v->be, &ks, sizeof(ks)));
		printf("%s: %llu batches, %llu mmap calls, %llu mapped, %llu unmapped, %llu remapped, "
		       "%llu backfilled, %llu failures\n",
		       v->name, (unsigned long long)ks.batches, (unsigned long long)ks.mmap_calls,
		       (unsigned long long)ks.pages_mapped, (unsigned long long)ks.pages_unmapped,
		       (unsigned long long)ks.pages_remapped, (unsigned long long)ks.backfills,
		       (unsigned long long)ks.failures);
	}

	/* Tear down: every page comes back. */
	CHECK(vdemux_vm_remove(eng, a.id));
	CHECK(vdemux_vm_remove(eng, b.id));
	struct vdemux_engine_stats st;
	CHECK(vdemux_engine_stats(eng, &st, sizeof(st)));
	if (st.pages_free != st.pages_total)
		fail("%llu of %llu pages free after removing both VMs",
		     (unsigned long long)st.pages_free, (unsigned long long)st.pages_total);
	CHECK(vdemux_kvm_irqfd_destroy(a.kg.vm_fd, IRQ_GSI, a.irqfd));
	vdemux_engine_destroy(eng);
	kg_close(&a.kg);
	kg_close(&b.kg);
	vdemux_kvm_ram_unmap(a.ram, RAM_PAGES);
	vdemux_kvm_ram_unmap(b.ram, RAM_PAGES);
	vdemux_arena_destroy(arena);
	printf("total %.0f ms\n", (now_us() - t0) / 1e3);
	return 0;
}

int main(void)
{
	struct kg_vm probe;
	int r = kg_open(&probe);

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (r == -ENOENT) {
		printf("SKIP: /dev/kvm is absent\n");
		return 77;
	}
	if (r < 0) {
		printf("FAIL: /dev/kvm: %s\n", strerror(-r));
		return 1;
	}
	int irqfd = kg_check_cap(&probe, KVM_CAP_IRQFD), irqchip = kg_check_cap(&probe, KVM_CAP_IRQCHIP);
	printf("KVM: SYNC_MMU %d, NR_MEMSLOTS %d, IRQFD %d, IRQCHIP %d\n",
	       kg_check_cap(&probe, KVM_CAP_SYNC_MMU), kg_check_cap(&probe, KVM_CAP_NR_MEMSLOTS), irqfd,
	       irqchip);
	kg_close(&probe);

	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm; /* no SA_RESTART: KVM_RUN must return EINTR */
	sigaction(SIGALRM, &sa, NULL);

	r = run_test();
	if (r < 0 && !failures)
		fail("stopped: %s", strerror(-r));
	printf("%s\n", failures ? "FAILED" : "PASSED");
	return failures ? 1 : 0;
}

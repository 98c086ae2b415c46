/* SPDX-License-Identifier: MIT */
/*
 * A 16550-compatible serial port at 0x3f8 (IRQ 4), output only: enough
 * registers for Linux's 8250 driver to find a 16450 there (scratch and IER
 * tests, no FIFO) and to drive it by interrupt. Each complete line the guest
 * writes is printed prefixed with the guest's name.
 *
 * Only the guest's vCPU thread touches it.
 */
#include <linux/kvm.h>
#include <string.h>
#include <sys/ioctl.h>

#include "vmm.h"

#define COM1 0x3f8

#define IER_RDI 0x01
#define IER_THRI 0x02
#define LCR_DLAB 0x80
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define IIR_NONE 0x01
#define IIR_THRI 0x02
#define MCR_LOOP 0x10

static void serial_update_irq(struct guest *g)
{
	struct serial *s = &g->serial;
	bool level = (s->ier & IER_THRI) && s->thr_pending;
	if (level == s->line)
		return;
	s->line = level;
	struct kvm_irq_level irq = {.irq = GSI_SERIAL, .level = level};
	ioctl(g->vm_fd, KVM_IRQ_LINE, &irq);
}

static void serial_flush(struct guest *g)
{
	struct serial *s = &g->serial;
	s->buf[s->len] = '\0';
	vmm_log(g, "%s", s->buf);
	/* Without ACPI the guest cannot switch itself off: its kernel's last
	 * words are the signal (see README.md). */
	if (strstr(s->buf, "reboot: Power down") || strstr(s->buf, "reboot: System halted"))
		guest_power_off(g, 0, "power-off");
	else if (strstr(s->buf, "reboot: Restarting system"))
		guest_power_off(g, 0, "reboot");
	else if (strstr(s->buf, "Kernel panic - not syncing"))
		guest_power_off(g, 1, "kernel panic");
	s->len = 0;
}

static void serial_putc(struct guest *g, char c)
{
	struct serial *s = &g->serial;
	if (c == '\r')
		return;
	if (c == '\n') {
		serial_flush(g);
		return;
	}
	s->buf[s->len++] = c;
	if (s->len == sizeof s->buf - 1)
		serial_flush(g);
}

int serial_io(struct guest *g, uint16_t port, bool out, uint8_t *data, unsigned size)
{
	struct serial *s = &g->serial;
	if (port < COM1 || port > COM1 + 7)
		return 0;
	if (size != 1) {
		if (!out)
			memset(data, 0xff, size);
		return 1;
	}
	unsigned reg = port - COM1;
	bool dlab = s->lcr & LCR_DLAB;

	if (out) {
		uint8_t v = *data;
		switch (reg) {
		case 0:
			if (dlab) {
				s->dll = v;
			} else {
				if (!(s->mcr & MCR_LOOP))
					serial_putc(g, (char)v);
				/* Sent at once: the transmitter is empty again. */
				s->thr_pending = true;
			}
			break;
		case 1:
			if (dlab) {
				s->dlm = v;
			} else {
				if (!(s->ier & IER_THRI) && (v & IER_THRI))
					s->thr_pending = true;
				s->ier = v & 0x0f;
			}
			break;
		case 3: s->lcr = v; break;
		case 4: s->mcr = v & 0x1f; break;
		case 7: s->scr = v; break;
		default: break; /* FCR (no FIFO), LSR, MSR */
		}
	} else {
		uint8_t v = 0;
		switch (reg) {
		case 0: v = dlab ? s->dll : 0; break;
		case 1: v = dlab ? s->dlm : s->ier; break;
		case 2:
			if ((s->ier & IER_THRI) && s->thr_pending) {
				v = IIR_THRI;
				s->thr_pending = false; /* reading IIR clears it */
			} else {
				v = IIR_NONE;
			}
			break;
		case 3: v = s->lcr; break;
		case 4: v = s->mcr; break;
		case 5: v = LSR_THRE | LSR_TEMT; break;
		case 6:
			/* Loopback: the modem outputs come back as inputs. */
			if (s->mcr & MCR_LOOP)
				v = (uint8_t)(((s->mcr & 0x0c) << 4) | ((s->mcr & 0x01) << 5) |
					      ((s->mcr & 0x02) << 3));
			else
				v = 0xb0; /* DCD, DSR, CTS */
			break;
		case 7: v = s->scr; break;
		}
		*data = v;
	}
	serial_update_irq(g);
	return 1;
}

/* SPDX-License-Identifier: MIT */
/*
 * examples/vmm: a minimal VMM that boots Linux guests on KVM and connects
 * them, and a TAP uplink, through one libvdemux engine.
 *
 * Threads: one vCPU thread per guest (serial, PCI configuration, virtio
 * registers), and the main thread, which alone makes engine calls (TAP
 * reads, the guests' TX queues, the receive queues). The main thread holds
 * vmm.engine_lock around its engine calls; a vCPU thread takes it only to
 * fill a hole it ran into (vdemux_kvm_backfill() must be serialised with the
 * engine) and to stop the receive queue when the driver resets the device.
 * Each virtio device has its own lock, for its registers and rings, taken
 * after the engine's lock.
 */
#ifndef VMM_H
#define VMM_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <vdemux/sys/classifier.h>
#include <vdemux/vdemux.h>

#define VMM_MAX_GUESTS 8
#define VMM_PAGE 4096ull

/* Guest-physical layout (boot.c). */
#define GPA_GDT 0x500ull
#define GPA_ZERO_PAGE 0x7000ull
#define GPA_PML4 0x9000ull
#define GPA_CMDLINE 0x20000ull
#define GPA_MPTABLE 0xf0000ull
#define GPA_KERNEL 0x100000ull
#define GPA_IOAPIC 0xfec00000ull
#define GPA_LAPIC 0xfee00000ull

/* Interrupts: ISA IRQs are IOAPIC pins 0..15; the virtio-net INTx is pin 11. */
#define GSI_SERIAL 4u
#define GSI_VIRTIO 11u

/* PCI: 00:00.0 host bridge, 00:01.0 virtio-net (I/O BAR0 at VNET_IO_BASE). */
#define PCI_VNET_SLOT 1u
#define VNET_IO_BASE 0xc000u
#define VNET_IO_SIZE 0x40u

#define VQ_MAX_SIZE 256u
#define TAP_IOV 17u	 /* pages one TAP read may fill: a 64 KiB GSO frame and its header */
#define TAP_DATA_OFF 32u /* a frame's first byte in its first page */
/* The virtio-net header before each frame on the TAP (TUNSETVNETHDRSZ): the
 * 12-byte form (num_buffers last), which a mergeable guest's transmit
 * buffers have as they are; a big-packet guest's 10 bytes are widened. */
#define VNET_HDR_LEN 12u
/* Transmit chains switched at a time, and the room each takes in tx_buf. */
#define VNET_TX_BURST 32u
#define VNET_TX_ROOM (VNET_HDR_LEN + VMM_FRAME_MAX)
#define TAP_BURST 32u /* frames read from the TAP before one submit */
/* The longest frame the engine takes (vdemux_engine_opts.max_frame, at most
 * 65536 + 4): what a TAP read or a guest's transmit chain may carry. */
#define VMM_FRAME_MAX 65540u
#define VQ_MAX_SEG 64u /* descriptors of a transmit chain */

enum rx_layout { RX_BIG, RX_MERGEABLE };

struct guest;

/* A virtqueue's place as the driver configured it (legacy: one PFN, the
 * rings laid out from PFN * 4096; vnet_queue_setup()). */
struct vnet_queue {
	uint16_t size;		    /* entries (power of two) */
	uint32_t pfn;		    /* legacy QUEUE_PFN; 0: not set up */
	uint64_t desc, avail, used; /* GPAs */
};

/* The serial port (16550 subset) at 0x3f8, IRQ 4. */
struct serial {
	uint8_t ier, lcr, mcr, scr, dll, dlm;
	bool thr_pending; /* THR-empty interrupt pending (until IIR read or THR write) */
	bool line;	  /* the level we last gave GSI 4 */
	char buf[512];
	size_t len;
};

/* serial.c: 1 if the port is the serial's (handled), 0 if not. */
int serial_io(struct guest *g, uint16_t port, bool out, uint8_t *data, unsigned size);

/* The legacy virtio-net PCI device. */
struct vnet_dev {
	pthread_mutex_t lock;
	uint32_t host_features;
	uint32_t guest_features;
	uint16_t queue_sel;
	struct vnet_queue vq[2]; /* 0: receive, 1: transmit */
	vdemux_virtq *txq;	 /* the transmit ring, from DRIVER_OK to a reset */
	uint8_t status;
	uint8_t isr; /* ISR status: atomic (set by the main thread, read and cleared by the vCPU's) */
	uint8_t mac[6];
	uint32_t bar0;	     /* I/O BAR as the guest programmed it */
	uint16_t command;    /* PCI command register: atomic (read by the main thread to raise INTx) */
	unsigned generation; /* bumped at each reset and DRIVER_OK */
	int irqfd;	     /* KVM irqfd injecting GSI_VIRTIO */
	int kick_fd;	     /* eventfd: wakes the main thread */
	int ioev_fd[2];	     /* KVM ioeventfds of QUEUE_NOTIFY 0 and 1, from DRIVER_OK to a reset */
	uint32_t ioev_port;  /* the port they are registered at; 0: not registered */
	unsigned events;     /* VNET_EV_*, taken by the main thread */
	uint64_t tx_frames, tx_bytes, tx_to_tap, tx_bad;
	uint64_t tx_gso;     /* transmitted frames with a GSO type (HOST_TSO*) */
	uint64_t irqs;	     /* transmit queue interrupts */
	uint64_t kicks[2];   /* queue notifications through the ioeventfds (0 RX, 1 TX) */
	uint64_t tx_small;   /* transmitted frames of at most 1514 bytes */
	uint64_t rx_irqs;    /* receive queue interrupts (the library's callback) */
	uint64_t tx_skipped; /* malformed chains of transmit rings gone (a reset) */
};
#define VNET_EV_RX 0x1u
#define VNET_EV_TX 0x2u
#define VNET_EV_CONFIG 0x4u

/* virtio_net_dev.c */
int vnet_init(struct guest *g, enum rx_layout layout);
int vnet_io(struct guest *g, uint16_t port, bool out, uint8_t *data, unsigned size);
uint32_t vnet_cfg_read(struct guest *g, unsigned reg);
void vnet_cfg_write(struct guest *g, unsigned reg, uint32_t val, unsigned size);
void vnet_interrupt(struct guest *g); /* set the ISR's queue bit, then pulse the irqfd */
/* Main thread, engine lock held: queue @q's ioeventfd fired. */
void vnet_ioev_kick(struct guest *g, unsigned q);
/* The receive queue's signal callback (payload: the guest). */
void vnet_rx_interrupt(vdemux_vm_id vm, unsigned reasons, void *payload);
/* Main thread, engine lock held: take the guest's transmit chains. */
int vnet_tx(struct guest *g);

/* rtc.c: the CMOS clock at 0x70/0x71; 1 if handled */
int rtc_io(struct guest *g, uint16_t port, bool out, uint8_t *data, unsigned size);

/* pci.c: 1 if handled */
int pci_io(struct guest *g, uint16_t port, bool out, uint8_t *data, unsigned size);

/* What the command line asked for (args.c). */
struct guest_config {
	char name[16];
	const char *kernel, *initrd;
	char cmdline[1024];
	uint64_t mem; /* bytes of RAM the guest sees (e820), all of it engine pages */
	uint8_t mac[6];
	enum rx_layout layout;
	enum vdemux_copy_policy copy; /* the receive queue's: big NEVER, mergeable ALWAYS, auto ADAPTIVE */
	uint16_t mtu;		      /* the device's config mtu (VIRTIO_NET_F_MTU) */
};

/* The vCPU and its thread (vcpu.c). */
struct guest_vcpu {
	int fd;
	struct kvm_run *run;
	size_t run_size;
	pthread_t thread;
	bool thread_started;
	volatile int stop; /* main -> vCPU: leave the run loop */
	volatile int off;  /* vCPU -> main: the guest powered off (or failed) */
	int off_fd;	   /* eventfd written when @off is set */
	int exit_status;   /* 0 clean power-off, 1 failure */
};

/* A guest's counters (stats.c prints them). */
struct guest_stats {
	uint64_t holes_efault, holes_mmio, backfilled;
	uint64_t exits_io, exits_mmio, exits_other; /* for --verbose */
	uint32_t *port_exits;			    /* --verbose: I/O exits per port */
	/* The library's counters, taken when the guest is removed. */
	struct vdemux_vm_stats vm;
	struct vdemux_kvm_stats kvm;
	struct vdemux_vnet_rxq_stats rxq;
};

/* The library's receive queue behind the device's queue 0 (guest.c). */
struct guest_rx {
	vdemux_vnet_rxq *q;  /* its VM covers all of guest RAM */
	unsigned generation; /* the device's generation it was last set up for */
	bool started;
	bool broken;	       /* the guest broke its receive ring: stopped until reset */
	unsigned tun_offloads; /* TUN_F_* its driver accepted (0 until DRIVER_OK) */
};

struct guest {
	struct vmm *vmm;
	unsigned index;
	struct guest_config cfg;

	/* The VM and its memory. */
	uint8_t *ram; /* HVA of GPA 0: the reserved range the KVM backend maps pool pages into */
	int vm_fd;
	struct vdemux_backend *be;
	vdemux_vm_id vm;
	bool removed;

	struct guest_vcpu cpu;
	struct guest_stats stats;

	/* Devices. */
	struct serial serial;
	uint32_t pci_addr; /* 0xcf8 */
	uint8_t rtc_index; /* 0x70 */
	struct vnet_dev net;
	struct guest_rx rx;
};

/* The uplink: a TAP device (tap.c). */
struct uplink {
	const char *name;
	int fd;
	struct vdemux_rx_buf stash[TAP_BURST * TAP_IOV]; /* pool pages lent for the next reads */
	unsigned nstash;
	unsigned offloads;	 /* TUN_F_* last set with TUNSETOFFLOAD */
	unsigned offloads_taken; /* every TUN_F_* it was ever set to */
	uint64_t rx_frames, rx_bytes, tx_frames, tx_errors;
	uint64_t rx_gso;       /* frames read with a GSO type (TUN_F_TSO*) */
	uint64_t rx_csum;      /* of the others, frames with NEEDS_CSUM */
	uint64_t rx_bursts;    /* vdemux_rx_submit calls */
	uint64_t offload_sets; /* TUNSETOFFLOAD calls */
	uint64_t rx_short;     /* reads under 14 bytes, or refused by the engine */
	uint64_t rx_oversize;  /* frames over TAP_FRAME_MAX: dropped */
};

/* The engine's classifier: the built-in L2 bridge without the sending
 * guest (switch.c). */
struct split_horizon {
	struct vdemux_classifier base;
	vdemux_l2 *l2;
	vdemux_vm_id src; /* the guest whose frames are being classified, or 0 */
};

struct vmm {
	vdemux_arena *arena;
	vdemux_engine *eng;
	pthread_mutex_t engine_lock;
	struct split_horizon sh; /* the engine's classifier (switch.c) */
	uint8_t *tx_buf; /* VNET_TX_BURST frames of VNET_TX_ROOM: a transmit burst (main thread) */
	int kvm_fd;
	struct uplink tap;
	uint64_t guest_to_guest;
	unsigned nguests;
	struct guest guests[VMM_MAX_GUESTS];
	pthread_mutex_t out_lock; /* stdout lines */
	bool verbose;
};

/* args.c: fill @v from the command line; 0, or the exit status (usage printed). */
int vmm_parse_args(struct vmm *v, int argc, char **argv);

/* boot.c: load the kernel and the initramfs, set up the vCPU to enter it. */
int boot_setup(struct guest *g);

/* vcpu.c */
void vcpu_signals_init(void); /* SIGUSR1 makes KVM_RUN return (vcpu_stop) */
int vcpu_create(struct guest *g);
int vcpu_start(struct guest *g);
/* Make the vCPU thread leave KVM_RUN and end; joined. */
void vcpu_stop(struct guest *g);
void guest_power_off(struct guest *g, int status, const char *why);

/* tap.c */
int tap_open(const char *name, int *out_fd);
/* Main thread, engine lock held: read frames into pool pages and submit them. */
int tap_rx(struct vmm *v);
/* TUNSETOFFLOAD to @want (TUN_F_*) if it is not that already: 1 set, 0
 * unchanged, -errno. */
int tap_set_offloads(struct vmm *v, unsigned want);
/* guest.c, main thread: the TAP's offloads to what the guests' drivers
 * accepted. Called when a guest's driver sets DRIVER_OK or resets. */
void tap_update_offloads(struct vmm *v);
/* A frame with its VNET_HDR_LEN-byte header, to the TAP. */
void tap_tx(struct vmm *v, const uint8_t *hdr_and_frame, uint32_t len);
void tap_rx_stop(struct vmm *v);

/* switch.c: the engine's classifier (the L2 bridge, minus the sender). */
void switch_init(struct vmm *v);
/* A guest's frames, each VNET_HDR_LEN bytes of virtio-net header then the
 * frame (@lens count both): to the engine (other guests) and, unless it is
 * for a guest, to the TAP, headers as they are. Main thread, engine lock held. */
void vmm_switch(struct vmm *v, struct guest *src, const uint8_t *const *frames, const uint32_t *lens,
		unsigned n);

/* guest.c: a guest's life cycle. */
int guest_create(struct vmm *v, struct guest *g);
/* Main thread, engine lock held: the guest's transmit ring, if kicked. */
void guest_serve_tx(struct guest *g);
/* Main thread, engine lock held: the receive queue's life cycle and kicks. */
void guest_serve_rx(struct guest *g);
/* Stop the vCPU, take the VM out of the engine; false if the engine check
 * failed. Main thread, engine lock held (dropped while the vCPU ends). */
bool guest_remove(struct vmm *v, struct guest *g);

/* stats.c */
/* The engine's own check, and every pool page in exactly one state. */
bool stats_check_engine(struct vmm *v, const char *when);
void stats_log_mappings(struct guest *g);
void stats_print(struct vmm *v);  /* the end's counters */
void stats_status(struct vmm *v); /* --verbose: every 10 s */
/* SIGUSR2: one line of running counters per guest ("vmm: counters:"). */
void stats_counters(struct vmm *v);

/* loop.c: the main thread's event loop; false if a guest's removal failed
 * its check. Returns when every guest is off or a signal came on @sfd. */
bool vmm_loop(struct vmm *v, int sfd);

/* main.c */
void vmm_log(struct guest *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Guest RAM: NULL if [gpa, gpa+len) is outside. */
static inline uint8_t *guest_ptr(struct guest *g, uint64_t gpa, uint64_t len)
{
	if (gpa > g->cfg.mem || len > g->cfg.mem - gpa)
		return NULL;
	return g->ram + gpa;
}

#endif

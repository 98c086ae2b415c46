/* SPDX-License-Identifier: MIT */
/*
 * examples/vmm: a minimal VMM that boots Linux guests on KVM and connects
 * them, and a TAP uplink, through one libvdemux engine.
 *
 * Threads: the vCPU threads of each guest (serial, PCI configuration,
 * virtio registers, the MSI-X table), the main thread (TAP reads, the
 * control queues, every guest's queue pairs, trapped notifications), and
 * with --io-threads one I/O thread per queue pair past the first, each
 * with an engine of its own (a shard: see iothread.c), serving that pair's
 * rings of every guest and a queue of the TAP. A thread and its engine
 * are a lane (struct lane); a lane's engine calls are made under its lock,
 * which its thread holds for each turn of its loop, and which the control
 * path takes to borrow the engine (iothread.c says when); a vCPU thread
 * takes the main lane's only to fill a hole it ran into
 * (vdemux_kvm_backfill() must be serialised with the engine), and the
 * locks of a guest's lanes to stop its receive queues when the driver
 * resets the device. Lane locks are taken in lane order. Each virtio
 * device has its own lock, for its registers and rings, taken after the
 * lanes'; its MSI-X state has a leaf lock of its own.
 */
#ifndef VMM_H
#define VMM_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <vdemux/sys/classifier.h>
#include <vdemux/vdemux.h>
#include <vdemux/vnet_ctrl.h>

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
struct lane;

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

/* Queue pairs a guest's device may have (queues=N), and its queues: pair
 * p's receive queue 2p, its transmit queue 2p + 1, the control queue
 * 2 * pairs (VIRTIO_NET_F_MQ's numbering). */
#define VNET_MAX_PAIRS 4u
#define VNET_MAX_QUEUES (2u * VNET_MAX_PAIRS + 1u)
#define VNET_CTRL_SIZE 64u

/* MSI-X (msix.c): a vector for the configuration change and one per queue;
 * the capability at MSIX_CAP in configuration space, the table at offset 0
 * of memory BAR 1 and the pending bits at MSIX_PBA_OFF; vector v is
 * injected through GSI MSIX_GSI_BASE + v (past the I/O APIC's 24). */
#define VNET_MSIX_VECTORS (VNET_MAX_QUEUES + 1u)
#define MSIX_CAP 0x40u
#define MSIX_PBA_OFF 0x800u
#define MSIX_GSI_BASE 24u
#define PCI_CAP_ID_MSIX_ 0x11u
#define VNET_BAR1_GPA 0xfe000000u /* below the I/O APIC, above any guest RAM */
#define VNET_BAR1_SIZE 0x1000u
#define VIRTIO_MSI_NO_VECTOR_ 0xffffu

struct msix {
	pthread_mutex_t lock; /* a leaf: nothing else is taken under it */
	int vm_fd;	      /* -1: no KVM (the irqfds are plain eventfds) */
	uint16_t msgctl;      /* message control: enable, function mask (atomic reads) */
	struct {
		uint32_t addr_lo, addr_hi, data, ctrl;
	} e[VNET_MSIX_VECTORS];
	uint32_t pending;	      /* pending bits, by vector */
	int irqfd[VNET_MSIX_VECTORS]; /* KVM irqfds on GSI MSIX_GSI_BASE + vector */
	uint64_t fired, route_sets, route_errors;
};

/* msix.c */
int msix_init(struct msix *m, int vm_fd);
bool msix_enabled(struct msix *m);
/* Send vector @vector, or keep it pending while masked: true if sent. */
bool msix_fire(struct msix *m, uint16_t vector);
uint32_t msix_cap_read(struct msix *m, unsigned reg);
void msix_cap_write(struct msix *m, unsigned reg, uint32_t val, unsigned size);
/* An access to BAR 1 at @off (@len bytes; only dwords are served). */
void msix_mmio(struct msix *m, uint64_t off, bool write, uint8_t *data, unsigned len);

/* The legacy virtio-net PCI device. */
struct vnet_dev {
	pthread_mutex_t lock;
	uint32_t host_features;
	uint32_t guest_features;
	uint16_t queue_sel;
	uint16_t pairs;	  /* queue pairs offered (max_virtqueue_pairs; 1: no MQ) */
	uint16_t nqueues; /* 2 * pairs, and the control queue with MQ */
	struct vnet_queue vq[VNET_MAX_QUEUES];
	uint16_t vector[VNET_MAX_QUEUES]; /* MSI-X vector of each queue (atomic reads) */
	uint16_t config_vector;
	vdemux_virtq *txq[VNET_MAX_PAIRS]; /* transmit rings, from DRIVER_OK to a reset */
	vdemux_virtq *ctrlq;		   /* the control ring, likewise */
	vdemux_vnet_ctrl *ctrl;		   /* its commands (with MQ) */
	uint16_t active_pairs;		   /* pairs the driver uses (VQ_PAIRS_SET); atomic */
	uint16_t pairs_max;		   /* the most it ever used */
	uint8_t status;
	uint8_t isr; /* ISR status: atomic (set by the main thread, read and cleared by the vCPU's) */
	uint8_t mac[6];
	uint32_t bar0;	     /* I/O BAR as the guest programmed it */
	uint32_t bar1;	     /* memory BAR of the MSI-X table */
	uint16_t command;    /* PCI command register: atomic (read by the main thread to raise INTx) */
	unsigned generation; /* bumped at each reset and DRIVER_OK */
	int irqfd;	     /* KVM irqfd injecting GSI_VIRTIO (INTx) */
	int kick_fd;	     /* eventfd: wakes the main thread */
	int ioev_fd[VNET_MAX_QUEUES]; /* KVM ioeventfds of each queue's QUEUE_NOTIFY */
	uint32_t ioev_port;	      /* the port they are registered at; 0: not registered */
	unsigned events;	      /* VNET_EV_*, taken by the main thread */
	uint32_t rx_kicks, tx_kicks;  /* bit p: pair p's queue was notified */
	struct msix msix;
	uint64_t tx_frames, tx_bytes, tx_to_tap, tx_bad;
	uint64_t tx_gso;     /* transmitted frames with a GSO type (HOST_TSO*) */
	uint64_t irqs;	     /* transmit queue interrupts */
	uint64_t kicks[2];   /* queue notifications through the ioeventfds (0 RX, 1 TX) */
	uint64_t tx_small;   /* transmitted frames of at most 1514 bytes */
	uint64_t rx_irqs;    /* receive queue interrupts (the library's callback) */
	uint64_t tx_skipped; /* malformed chains of transmit rings gone (a reset) */
	uint64_t ctrl_cmds;  /* control queue commands served */
};
#define VNET_EV_CONFIG 0x4u
#define VNET_EV_CTRL 0x8u

/* virtio_net_dev.c */
int vnet_init(struct guest *g, enum rx_layout layout, unsigned pairs);
int vnet_io(struct guest *g, uint16_t port, bool out, uint8_t *data, unsigned size);
uint32_t vnet_cfg_read(struct guest *g, unsigned reg);
void vnet_cfg_write(struct guest *g, unsigned reg, uint32_t val, unsigned size);
void vnet_interrupt(struct guest *g); /* INTx: set the ISR's queue bit, then pulse the irqfd */
/* Queue @q's interrupt: its MSI-X vector when MSI-X is on, else INTx. */
void vnet_queue_interrupt(struct guest *g, unsigned q);
/* An access to the device's memory BAR (MSI-X); 1 if it is the device's. */
int vnet_mmio(struct guest *g, uint64_t gpa, bool write, uint8_t *data, unsigned len);
/* Queue @q's ioeventfd fired; its lane's lock held. */
void vnet_ioev_kick(struct guest *g, unsigned q);
/* A receive queue's signal callback (payload: its struct guest_rx). */
void vnet_rx_interrupt(vdemux_vm_id vm, unsigned reasons, void *payload);
/* Lane @l's lock held (pair_lane(g, p)): take pair @p's transmit chains. */
int vnet_tx(struct lane *l, struct guest *g, unsigned p);
/* Take a ring the device serves away (its counters kept). Device lock held. */
void vnet_ring_stop(struct vnet_dev *d, vdemux_virtq **qp);
/* Main thread, device lock held: serve the control queue. */
void vnet_ctrl_serve(struct guest *g);

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
	unsigned queues;	      /* queue pairs, 1..VNET_MAX_PAIRS (more than 1: mergeable only) */
	uint16_t mtu;		      /* the device's config mtu (VIRTIO_NET_F_MTU) */
	unsigned cpus;		      /* vCPUs, 1..VMM_MAX_CPUS */
	bool small_pages;	      /* huge=off: guest RAM left in 4 KiB pages (guest.c, ram_huge()) */
};

#define VMM_MAX_CPUS 8u
/* Pool pages beyond all guests' RAM: frames in flight (the TAP's lent
 * pages, a burst being laid out before its flips give pages back); with
 * shards, the pool of each shard past the first (iothread.c). */
#define POOL_SPARE 2048u

/* One vCPU and its thread (vcpu.c); its APIC id is its index. */
struct vcpu {
	struct guest *g;
	unsigned id;
	int fd;
	struct kvm_run *run;
	size_t run_size;
	pthread_t thread;
	bool thread_started;
};

/* The guest's vCPUs: the first boots the kernel, the others wait for its
 * INIT and startup IPIs (in KVM's local APIC). */
struct guest_vcpu {
	struct vcpu v[VMM_MAX_CPUS];
	unsigned n;
	int fd;		   /* the first vCPU's (its registers are the boot state) */
	volatile int stop; /* main -> vCPUs: leave the run loop */
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

/* The library's receive queue behind the device's receive queue of one
 * pair (guest.c): pair 0's owns guest RAM, the others share it (ram_of). */
struct guest_rx {
	struct guest *g;
	unsigned pair;
	vdemux_vnet_rxq *q;  /* its VM covers all of guest RAM */
	vdemux_vm_id vm;     /* the queue's VM */
	unsigned generation; /* the device's generation it was last set up for */
	bool started; /* written by its lane's thread (atomic: the switch reads it from any lane) */
	bool broken;  /* the guest broke its receive ring: stopped until reset */
	unsigned tun_offloads;		   /* TUN_F_* its driver accepted (0 until DRIVER_OK) */
	struct vdemux_vnet_rxq_stats last; /* its counters when removed */
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
	bool removed; /* atomic: the switch reads it from any lane */

	struct guest_vcpu cpu;
	struct guest_stats stats;

	/* Devices. io_lock serialises the vCPUs' accesses to the serial port,
	 * PCI configuration and the clock (the virtio device has its own lock). */
	pthread_mutex_t io_lock;
	struct serial serial;
	uint32_t pci_addr; /* 0xcf8 */
	uint8_t rtc_index; /* 0x70 */
	struct vnet_dev net;
	struct guest_rx rx[VNET_MAX_PAIRS];
};

/* The uplink: a TAP device (tap.c), or with several lanes, one queue of it
 * per lane (IFF_MULTI_QUEUE). */
struct uplink {
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
	struct vmm *vmm;
	vdemux_l2 *l2;
	vdemux_vm_id src; /* the guest whose frames are being classified, or 0 */
};

/* A thread that moves frames and its engine (iothread.c): lane 0 is the
 * main thread's; with --io-threads, lane p > 0 is the I/O thread of queue
 * pair p, its engine shard p of the group. */
struct lane {
	struct vmm *v;
	unsigned idx;
	vdemux_engine *eng;
	pthread_mutex_t lock;	 /* held by the lane's thread for each turn; see iothread.c */
	struct split_horizon sh; /* the engine's classifier (switch.c) */
	struct uplink tap;	 /* the lane's TAP queue */
	uint8_t *tx_buf;	 /* VNET_TX_BURST frames of VNET_TX_ROOM: a transmit burst */
	uint64_t guest_to_guest;
	uint64_t switch_full; /* guests' frames the engine did not take (a shard's queue full, the pool dry) */
	int wake_fd;	      /* the shard's wake-up (vdemux_engine_opts.wake); -1: none */
	/* The I/O thread (lanes past the first). */
	int ep, stop_fd;
	pthread_t thread;
	bool started;
	uint64_t wakeups;
};

struct vmm {
	vdemux_arena *arena;
	vdemux_group *group; /* the lanes' engines are its shards; NULL: one engine */
	const char *tap_name;
	int kvm_fd;
	unsigned nguests;
	struct guest guests[VMM_MAX_GUESTS];
	struct lane lane[VNET_MAX_PAIRS]; /* [0, nlanes) */
	unsigned nlanes;
	pthread_mutex_t out_lock; /* stdout lines */
	bool verbose;
	bool io_threads; /* --io-threads: one thread and engine per queue pair past the first */
};

/* The lane that serves queue pair @p of @g: its own with shards (a guest
 * of one pair: the main lane), else the main lane. */
static inline struct lane *pair_lane(struct guest *g, unsigned p)
{
	return &g->vmm->lane[g->vmm->group ? p : 0];
}

/* Pairs of @g the main thread serves: every one, or with shards the first. */
static inline unsigned main_pairs(const struct guest *g)
{
	return g->vmm->group ? 1 : g->net.pairs;
}

/* args.c: fill @v from the command line; 0, or the exit status (usage printed). */
int vmm_parse_args(struct vmm *v, int argc, char **argv);

/* boot.c: load the kernel and the initramfs, set up the vCPU to enter it. */
int boot_setup(struct guest *g);

/* vcpu.c */
void vcpu_signals_init(void); /* SIGUSR1 makes KVM_RUN return (vcpu_stop) */
int vcpu_create(struct guest *g);
int vcpu_start(struct guest *g);
/* Make every vCPU thread leave KVM_RUN and end; joined. */
void vcpu_stop(struct guest *g);
bool vcpu_any_started(const struct guest *g);
void guest_power_off(struct guest *g, int status, const char *why);

/* tap.c: @multi: one more queue of a multiqueue TAP (IFF_MULTI_QUEUE). */
int tap_open(const char *name, bool multi, int *out_fd);
/* Lane @l's lock held: read frames into its pool's pages and submit them. */
int tap_rx(struct lane *l);
/* TUNSETOFFLOAD to @want (TUN_F_*) if it is not that already: 1 set, 0
 * unchanged, -errno. */
int tap_set_offloads(struct vmm *v, unsigned want);
/* guest.c, main thread: the TAP's offloads to what the guests' drivers
 * accepted. Called when a guest's driver sets DRIVER_OK or resets. */
void tap_update_offloads(struct vmm *v);
/* A frame with its VNET_HDR_LEN-byte header, to the TAP through @l's queue. */
void tap_tx(struct lane *l, const uint8_t *hdr_and_frame, uint32_t len);
/* Every lane's lent pages given back; the lanes' threads stopped. */
void tap_rx_stop(struct vmm *v);

/* switch.c: lane @l's engine's classifier (the L2 bridge, minus the sender). */
void switch_init(struct lane *l);
/* A guest's frames, each VNET_HDR_LEN bytes of virtio-net header then the
 * frame (@lens count both): to lane @l's engine (other guests) and, unless
 * it is for a guest, to the TAP, headers as they are. Lane @l's lock held. */
void vmm_switch(struct lane *l, struct guest *src, const uint8_t *const *frames, const uint32_t *lens,
		unsigned n);

/* guest.c: a guest's life cycle. */
int guest_create(struct vmm *v, struct guest *g);
/* Main thread, main lane's lock held: the guest's transmit rings it
 * serves (main_pairs()), if kicked, and its control ring. */
void guest_serve_tx(struct guest *g);
/* Main thread, main lane's lock held: the life cycle and kicks of the
 * receive queues it serves. */
void guest_serve_rx(struct guest *g);
/* I/O thread of lane @p, its lock held: pair @p's rings, if notified, and
 * its receive queue's life cycle. */
void guest_serve_pair(struct guest *g, unsigned p);
/* The guest whose device's first receive queue is VM @vm, or NULL. */
struct guest *guest_of_vm(struct vmm *v, vdemux_vm_id vm);
/* Stop the vCPU, take the VM out of the engine; false if the engine check
 * failed. Main thread, main lane's lock held (dropped while the vCPU ends;
 * the other lanes' locks taken for the rest). */
bool guest_remove(struct vmm *v, struct guest *g);

/* stats.c */
/* The engine's own check, and every pool page in exactly one state. */
bool stats_check_engine(struct vmm *v, const char *when);
void stats_log_mappings(struct guest *g);
void stats_take(struct vmm *v, struct guest *g); /* at removal: the queues' counters summed */
void stats_print(struct vmm *v);		 /* the end's counters */
void stats_status(struct vmm *v);		 /* --verbose: every 10 s */

/* iothread.c: the lanes' engines (with --io-threads and a guest of several
 * pairs, a group of shards, one per pair) and their TAP queues, built
 * before the guests; the I/O threads, started after the guests are built,
 * stopped (joined) before they are torn down, with no lane lock held. */
int lanes_setup(struct vmm *v, uint32_t pool_pages);
int iothreads_start(struct vmm *v);
void iothreads_stop(struct vmm *v);
/* Take (or give back) the locks of lanes [from, to), in order. */
void lanes_lock(struct vmm *v, unsigned from, unsigned to);
void lanes_unlock(struct vmm *v, unsigned from, unsigned to);
/* SIGUSR2: one line of running counters per guest ("vmm: counters:"). */
void stats_counters(struct vmm *v);

/* loop.c: the main thread's event loop; false if a guest's removal failed
 * its check. Returns when every guest is off or a signal came on @sfd. */
bool vmm_loop(struct vmm *v, int sfd);

/* main.c */
void vmm_log(struct guest *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The engines' log callback (payload: the vmm). */
void vmm_engine_log(int level, const char *msg, void *payload);

/* Guest RAM: NULL if [gpa, gpa+len) is outside. */
static inline uint8_t *guest_ptr(struct guest *g, uint64_t gpa, uint64_t len)
{
	if (gpa > g->cfg.mem || len > g->cfg.mem - gpa)
		return NULL;
	return g->ram + gpa;
}

#endif

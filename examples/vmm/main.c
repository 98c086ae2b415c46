/*
 * examples/vmm: one process, one engine, several Linux guests.
 *
 *   vmm --tap NAME --guest name=a,kernel=K,initrd=I,mem=256M,mac=M,rx=big|mergeable[,cmdline=...] ...
 *
 * Each guest: a KVM VM with one vCPU, the in-kernel interrupt controllers,
 * RAM made of the engine's pool pages (through the KVM backend), a serial
 * console and a virtio-net device whose receive queue is the library's
 * (vdemux_vnet_rxq). Frames between the guests, and to and from the TAP, go
 * through the engine. See README.md.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include <vdemux/sys/classifier.h>

#include "vmm.h"

#define DEFAULT_CMDLINE "console=ttyS0 reboot=k panic=-1 8250.nr_uarts=1 i8042.nokbd i8042.noaux i8042.nopnp pci=conf1,lastbus=0 no_timer_check quiet"
/* Pool pages beyond all guests' RAM: frames in flight (the TAP's lent
 * pages, a burst being laid out before its flips give pages back). */
#define POOL_EXTRA 2048u

enum { EV_TAP = 1, EV_SIGNAL, EV_KICK, EV_OFF };
#define EV(type, i) ((uint64_t)(type) << 32 | (i))

static struct vmm vmm_state;

void vmm_log(struct guest *g, const char *fmt, ...)
{
	struct vmm *v = g ? g->vmm : &vmm_state;
	va_list ap;
	va_start(ap, fmt);
	pthread_mutex_lock(&v->out_lock);
	if (g)
		printf("[%s] ", g->name);
	vprintf(fmt, ap);
	putchar('\n');
	fflush(stdout);
	pthread_mutex_unlock(&v->out_lock);
	va_end(ap);
}

static void engine_log(int level, const char *msg, void *payload)
{
	struct vmm *v = payload;
	if (level <= VDEMUX_LOG_WARN || v->verbose)
		vmm_log(NULL, "vdemux: %s", msg);
}

/* ---- the engine's classifier: the built-in L2 bridge, minus the sender ---- */

struct split_horizon {
	struct vdemux_classifier base;
	vdemux_l2 *l2;
	vdemux_vm_id src; /* the guest whose frames are being classified, or 0 */
};

static int sh_classify(struct vdemux_classifier *cls, const uint8_t *frame, uint32_t len, struct vdemux_verdict *v)
{
	struct split_horizon *s = (struct split_horizon *)cls;
	int r = vdemux_l2_classify(s->l2, frame, len, v);
	if (r < 0)
		return r;
	unsigned j = 0;
	for (unsigned i = 0; i < v->n; i++)
		if (v->dests[i].vm != s->src)
			v->dests[j++] = v->dests[i];
	if (v->n && !j)
		v->drop_reason = VDEMUX_DROP_NO_DEST;
	v->n = j;
	return 0;
}

static void sh_vm_removed(struct vdemux_classifier *cls, vdemux_vm_id vm)
{
	vdemux_l2_remove_vm(((struct split_horizon *)cls)->l2, vm);
}

static struct split_horizon split_horizon = {
	.base = {.version = VDEMUX_CLASSIFIER_VERSION, .name = "l2-split-horizon",
		 .classify = sh_classify, .vm_removed = sh_vm_removed},
};

void vmm_switch(struct vmm *v, struct guest *src, const uint8_t *const *frames, const uint32_t *lens, unsigned n)
{
	struct vdemux_frame f[64];
	unsigned nf = 0;
	vdemux_l2 *l2 = vdemux_engine_l2(v->eng);

	for (unsigned i = 0; i < n; i++) {
		const uint8_t *dst = frames[i];
		bool group = dst[0] & 1;
		bool local = !group && vdemux_l2_lookup(l2, dst, 1) != 0;
		/* Unicast to a guest: the engine only. Group: the engine (other
		 * guests) and the TAP. Anything else: the TAP only. */
		if (group || local) {
			if (nf < 64)
				f[nf++] = (struct vdemux_frame){.data = frames[i], .len = lens[i]};
			if (local)
				v->guest_to_guest++;
		}
		if (!local) {
			if (write(v->tap_fd, frames[i], lens[i]) == (ssize_t)lens[i])
				v->tap_tx_frames++;
			else
				v->tap_tx_errors++;
		}
	}
	if (!nf)
		return;
	v->cls->src = src->vm;
	int r = vdemux_rx_burst(v->eng, f, nf);
	v->cls->src = 0;
	if (r < 0 && r != -ENOBUFS)
		vmm_log(src, "vmm: vdemux_rx_burst: %s", strerror(-r));
}

/* ---- vCPU ---- */

void guest_power_off(struct guest *g, int status, const char *why)
{
	if (g->off)
		return;
	g->exit_status = status;
	g->stop = 1;
	g->off = 1;
	vmm_log(g, "vmm: guest stopped: %s", why);
	uint64_t one = 1;
	if (write(g->off_fd, &one, sizeof one) < 0) {
		/* eventfd: cannot fail here */
	}
}

static bool in_ram(struct guest *g, uint64_t gpa)
{
	return gpa < g->mem;
}

/* A vCPU touched a hole of guest RAM (the queue's RX window is all of it):
 * give it a private zero page (the guest only ever sees zeroes and its own
 * writes there). With lazy harvest a flip replaces the page at a GPA, so
 * RAM has no hole in normal operation; a hole means a flip whose backend
 * failed and could not be repaired (docs/backends-kvm.md). */
static int fill_holes(struct guest *g, uint64_t gpa)
{
	pthread_mutex_lock(&g->vmm->engine_lock);
	int n = vdemux_kvm_backfill(g->be, gpa);
	pthread_mutex_unlock(&g->vmm->engine_lock);
	if (n > 0) {
		g->backfilled += (uint64_t)n;
		vmm_log(g, "vmm: vCPU hit a hole of guest RAM at %s0x%" PRIx64 ": %d page(s) backfilled",
			gpa == VDEMUX_KVM_ALL_HOLES ? "(EFAULT, address unknown) " : "",
			gpa == VDEMUX_KVM_ALL_HOLES ? 0 : gpa, n);
	}
	return n;
}

static void handle_io(struct guest *g)
{
	struct kvm_run *run = g->run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	bool out = run->io.direction == KVM_EXIT_IO_OUT;
	if (g->port_exits)
		g->port_exits[run->io.port]++;
	for (uint32_t i = 0; i < run->io.count; i++, data += run->io.size) {
		uint16_t port = run->io.port;
		if (serial_io(g, port, out, data, run->io.size) || pci_io(g, port, out, data, run->io.size) ||
		    vnet_io(g, port, out, data, run->io.size) || rtc_io(g, port, out, data, run->io.size))
			continue;
		if (out && port == 0x64 && run->io.size == 1 && *data == 0xfe) {
			guest_power_off(g, 0, "reset through the keyboard controller");
			continue;
		}
		if (!out)
			memset(data, 0xff, run->io.size); /* nothing there */
	}
}

static void handle_mmio(struct guest *g)
{
	struct kvm_run *run = g->run;
	uint64_t gpa = run->mmio.phys_addr;
	uint32_t len = run->mmio.len;
	if (len > 8)
		len = 8;
	if (in_ram(g, gpa) && in_ram(g, gpa + len - 1)) {
		/* Newer kernels report a hole this way, not with EFAULT. Fill it
		 * and complete the access on the page now there. */
		g->holes_mmio++;
		fill_holes(g, gpa & ~(VMM_PAGE - 1));
		if (run->mmio.is_write)
			memcpy(g->ram + gpa, run->mmio.data, len);
		else
			memcpy(run->mmio.data, g->ram + gpa, len);
		return;
	}
	if (!run->mmio.is_write)
		memset(run->mmio.data, 0xff, len);
}

static void sigusr1(int sig)
{
	(void)sig; /* only makes KVM_RUN return EINTR */
}

static void *vcpu_thread(void *arg)
{
	struct guest *g = arg;
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	int efaults_in_a_row = 0;

	while (!g->stop) {
		if (ioctl(g->vcpu_fd, KVM_RUN, 0) < 0) {
			int e = errno;
			if (e == EINTR || e == EAGAIN)
				continue;
			if (e == EFAULT) {
				/* The 6.1 kernels' signal for a hole: no address given. */
				g->holes_efault++;
				if (fill_holes(g, VDEMUX_KVM_ALL_HOLES) > 0 || ++efaults_in_a_row < 3)
					continue;
				guest_power_off(g, 1, "KVM_RUN: EFAULT, and guest RAM has no hole");
				break;
			}
			vmm_log(g, "vmm: KVM_RUN: %s", strerror(e));
			guest_power_off(g, 1, "KVM_RUN failed");
			break;
		}
		efaults_in_a_row = 0;
		switch (g->run->exit_reason) {
		case KVM_EXIT_IO:
			g->exits_io++;
			handle_io(g);
			break;
		case KVM_EXIT_MMIO:
			g->exits_mmio++;
			handle_mmio(g);
			break;
		case KVM_EXIT_HLT:
			guest_power_off(g, 0, "halted");
			break;
		case KVM_EXIT_SHUTDOWN:
			guest_power_off(g, 1, "triple fault");
			break;
		case KVM_EXIT_SYSTEM_EVENT:
			guest_power_off(g, 0, "system event");
			break;
		case KVM_EXIT_INTR:
			g->exits_other++;
			break;
		default:
			vmm_log(g, "vmm: unexpected exit %u", g->run->exit_reason);
			guest_power_off(g, 1, "unexpected exit");
			break;
		}
	}
	return NULL;
}

/* ---- setup ---- */

static int parse_mac(const char *s, uint8_t mac[6])
{
	unsigned b[6];
	if (sscanf(s, "%x:%x:%x:%x:%x:%x", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5]) != 6)
		return -EINVAL;
	for (int i = 0; i < 6; i++) {
		if (b[i] > 255)
			return -EINVAL;
		mac[i] = (uint8_t)b[i];
	}
	return (mac[0] & 1) ? -EINVAL : 0;
}

static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 0);
	if (*end == 'M' || *end == 'm')
		v <<= 20, end++;
	else if (*end == 'G' || *end == 'g')
		v <<= 30, end++;
	if (*end || v < (64ull << 20) || v > (2ull << 30) || (v & ((2ull << 20) - 1)))
		return -EINVAL;
	*out = v;
	return 0;
}

/* name=a,kernel=K,initrd=I,mem=256M,mac=M,rx=big|mergeable[,cmdline=REST] */
static int parse_guest(struct guest *g, char *spec)
{
	bool have_mac = false;
	g->mem = 256ull << 20;
	g->layout = RX_MERGEABLE;
	snprintf(g->cmdline, sizeof g->cmdline, "%s", DEFAULT_CMDLINE);
	while (spec && *spec) {
		char *val = strchr(spec, '=');
		if (!val)
			return -EINVAL;
		*val++ = '\0';
		if (!strcmp(spec, "cmdline")) {
			/* The rest of the spec, commas and all, is appended. */
			size_t l = strlen(g->cmdline);
			snprintf(g->cmdline + l, sizeof g->cmdline - l, " %s", val);
			break;
		}
		char *next = strchr(val, ',');
		if (next)
			*next++ = '\0';
		if (!strcmp(spec, "name"))
			snprintf(g->name, sizeof g->name, "%s", val);
		else if (!strcmp(spec, "kernel"))
			g->kernel = val;
		else if (!strcmp(spec, "initrd"))
			g->initrd = val;
		else if (!strcmp(spec, "mem")) {
			if (parse_size(val, &g->mem) < 0)
				return -EINVAL;
		} else if (!strcmp(spec, "mac")) {
			if (parse_mac(val, g->mac) < 0)
				return -EINVAL;
			have_mac = true;
		} else if (!strcmp(spec, "rx")) {
			if (!strcmp(val, "big"))
				g->layout = RX_BIG;
			else if (!strcmp(val, "mergeable"))
				g->layout = RX_MERGEABLE;
			else
				return -EINVAL;
		} else {
			return -EINVAL;
		}
		spec = next;
	}
	if (!g->name[0] || !g->kernel || !have_mac)
		return -EINVAL;
	return 0;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: vmm --tap NAME [--verbose]\n"
		"           --guest name=N,kernel=BZIMAGE,initrd=CPIO,mem=SIZE,mac=MAC,rx=big|mergeable[,cmdline=ARGS]\n"
		"           [--guest ...]\n"
		"  mem: 64M..2G in 2 MiB steps (default 256M); rx: the receive buffers the guest\n"
		"  is led to post (default mergeable); cmdline: appended to the kernel command line\n"
		"  (takes the rest of the spec)\n");
}

static int guest_create(struct vmm *v, struct guest *g)
{
	int r;

	if (v->verbose && !(g->port_exits = calloc(65536, sizeof *g->port_exits)))
		return -ENOMEM;

	g->vm_fd = ioctl(v->kvm_fd, KVM_CREATE_VM, 0);
	if (g->vm_fd < 0)
		return -errno;
	if (ioctl(g->vm_fd, KVM_SET_TSS_ADDR, 0xfffbd000ul) < 0 || ioctl(g->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
		return -errno;
	struct kvm_pit_config pit = {.flags = 0};
	if (ioctl(g->vm_fd, KVM_CREATE_PIT2, &pit) < 0)
		return -errno;

	/* Guest RAM: a reserved range of the VMM's address space, registered
	 * by the backend as memslot 0. The receive queue's VM covers all of it
	 * and fills it with pool pages; from then on the backend remaps pages
	 * behind it as frames are flipped in. */
	void *ram = mmap(NULL, g->mem, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (ram == MAP_FAILED)
		return -errno;
	g->ram = ram;
	struct vdemux_kvm_opts ko = VDEMUX_OPTS(vdemux_kvm_opts, .ram_gpa = 0, .ram_size = g->mem, .ram_hva = ram,
						.flags = VDEMUX_KVM_F_SET_MEMSLOT, .vm_fd = g->vm_fd, .slot = 0);
	if ((r = vdemux_kvm_create(&g->be, &ko)) < 0)
		return r;
	if ((r = vdemux_engine_add_backend(v->eng, g->be)) < 0)
		return r;

	if ((r = vnet_init(g, g->layout)) < 0)
		return r;
	if ((r = vdemux_kvm_irqfd_create(g->vm_fd, GSI_VIRTIO, 0, &g->net.irqfd)) < 0)
		return r;
	g->net.kick_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	g->off_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (g->net.kick_fd < 0 || g->off_fd < 0)
		return -errno;

	/* The receive queue. Big-packet chains are flipped, every frame
	 * (COPY_NEVER); mergeable buffers are copied into whatever the policy. */
	bool big = g->layout == RX_BIG;
	struct vdemux_vnet_rxq_opts qo = VDEMUX_OPTS(vdemux_vnet_rxq_opts, .ram = ram, .ram_size = g->mem,
						     .backends = &g->be, .n_backends = 1,
						     .copy = big ? VDEMUX_COPY_NEVER : VDEMUX_COPY_ALWAYS);
	qo.irq = (struct vdemux_signal){.kind = VDEMUX_SIGNAL_EVENTFD, .fd = g->net.irqfd};
	if ((r = vdemux_vnet_rxq_create(&g->rxq, v->eng, &qo)) < 0)
		return r;
	g->vm = vdemux_vnet_rxq_vm(g->rxq);
	vdemux_l2 *l2 = vdemux_engine_l2(v->eng);
	if ((r = vdemux_l2_vlan_join(l2, g->vm, 1, 0)) < 0 || (r = vdemux_l2_add_mac(l2, g->vm, g->mac, 1)) < 0 ||
	    (r = vdemux_l2_set_allmulti(l2, g->vm, 1, 1)) < 0)
		return r;

	g->vcpu_fd = ioctl(g->vm_fd, KVM_CREATE_VCPU, 0);
	if (g->vcpu_fd < 0)
		return -errno;
	int sz = ioctl(v->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (sz < (int)sizeof(struct kvm_run))
		return -EINVAL;
	g->run_size = (size_t)sz;
	g->run = mmap(NULL, g->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, g->vcpu_fd, 0);
	if (g->run == MAP_FAILED)
		return -errno;

	/* RAM is populated now: load the kernel and the initramfs into it. */
	return boot_setup(g);
}

static bool check_engine(struct vmm *v, const char *when)
{
	char msg[256] = "";
	int r = vdemux_engine_check(v->eng, msg, sizeof msg);
	if (r == 0)
		vmm_log(NULL, "vmm: engine check passed (%s)", when);
	else
		vmm_log(NULL, "vmm: engine check FAILED (%s): %s", when, r == -EUCLEAN ? msg : strerror(-r));
	/* Every pool page is in exactly one state. */
	struct vdemux_engine_stats es;
	vdemux_engine_stats(v->eng, &es, sizeof es);
	uint64_t sum = es.pages_free + es.pages_filling + es.pages_assigned;
	vmm_log(NULL, "vmm: pages (%s): free %" PRIu64 " + filling %" PRIu64 " + assigned %" PRIu64 " = %" PRIu64
		      " of %" PRIu64 ": %s",
		when, es.pages_free, es.pages_filling, es.pages_assigned, sum, es.pages_total,
		sum == es.pages_total ? "balanced" : "UNBALANCED");
	return r == 0 && sum == es.pages_total;
}

/* Mappings of the VMM's address space (lines of /proc/self/maps), and the
 * limit: each page flipped into a guest away from its neighbours in the
 * arena is a mapping of its own (docs/backends-kvm.md, "Limits"). */
static void log_mappings(struct guest *g)
{
	long n = 0, max = -1;
	int c;
	FILE *f = fopen("/proc/self/maps", "re");
	if (f) {
		while ((c = getc(f)) != EOF)
			n += c == '\n';
		fclose(f);
	}
	f = fopen("/proc/sys/vm/max_map_count", "re");
	if (f) {
		if (fscanf(f, "%ld", &max) != 1)
			max = -1;
		fclose(f);
	}
	vmm_log(g, "vmm: mappings in the VMM: %ld (vm.max_map_count %ld)", n, max);
}

/* Stop the vCPU, take the VM out of the engine, check the engine. Main
 * thread, engine lock held (dropped while the vCPU thread ends). */
static bool guest_remove(struct vmm *v, struct guest *g)
{
	if (g->removed)
		return true;
	g->stop = 1;
	if (g->thread_started) {
		g->run->immediate_exit = 1;
		pthread_kill(g->thread, SIGUSR1);
		/* The caller holds the engine's lock, which a vCPU thread may be
		 * waiting for (a device reset, a hole to fill): let it finish. */
		pthread_mutex_unlock(&v->engine_lock);
		pthread_join(g->thread, NULL);
		pthread_mutex_lock(&v->engine_lock);
		g->thread_started = false;
		if (!g->off) {
			/* Stopped from outside (SIGTERM, the VMM's end): where the
			 * guest was tells a hang from a guest at work. */
			struct kvm_regs regs;
			if (ioctl(g->vcpu_fd, KVM_GET_REGS, &regs) == 0)
				vmm_log(g, "vmm: vCPU stopped running at rip 0x%llx (flags 0x%llx); exits: %" PRIu64
					   " I/O, %" PRIu64 " MMIO, %" PRIu64 " other",
					(unsigned long long)regs.rip, (unsigned long long)regs.rflags, g->exits_io,
					g->exits_mmio, g->exits_other);
		}
	}
	vdemux_vm_stats(v->eng, g->vm, &g->final_stats, sizeof g->final_stats);
	vdemux_kvm_stats(g->be, &g->final_kvm, sizeof g->final_kvm);
	vdemux_vnet_rxq_stats(g->rxq, &g->final_rxq, sizeof g->final_rxq);
	log_mappings(g);
	/* The queue's VM goes, and guest RAM's pages back to the pool. */
	vdemux_vnet_rxq_destroy(g->rxq);
	g->rxq = NULL;
	int r = vdemux_engine_remove_backend(v->eng, g->be);
	if (r < 0)
		vmm_log(g, "vmm: vdemux_engine_remove_backend: %s", strerror(-r));
	g->removed = true;
	char when[64];
	snprintf(when, sizeof when, "%s removed", g->name);
	return check_engine(v, when);
}

static void print_stats(struct vmm *v)
{
	struct vdemux_engine_stats es;
	vdemux_engine_stats(v->eng, &es, sizeof es);
	vmm_log(NULL, "vmm: engine: pages %" PRIu64 " (free %" PRIu64 ", filling %" PRIu64 ", assigned %" PRIu64
		      "), rx %" PRIu64 " frames %" PRIu64 " bytes, delivered %" PRIu64 ", flips %" PRIu64
		      ", copies %" PRIu64 ", harvests %" PRIu64 ", completions %" PRIu64 ", backend errors %" PRIu64,
		es.pages_total, es.pages_free, es.pages_filling, es.pages_assigned, es.rx_frames, es.rx_bytes,
		es.delivered, es.flips, es.copies, es.harvests, es.completions, es.backend_errors);
	for (int i = 1; i < VDEMUX_DROP__COUNT; i++)
		if (es.drops[i])
			vmm_log(NULL, "vmm: engine: dropped %" PRIu64 " (%s)", es.drops[i], vdemux_drop_reason_name(i));
	for (int i = 0; i < VDEMUX_BAD__COUNT; i++)
		if (es.bad_input[i])
			vmm_log(NULL, "vmm: engine: bad input %" PRIu64 " (%s)", es.bad_input[i], vdemux_bad_input_name(i));
	vmm_log(NULL, "vmm: tap: rx %" PRIu64 " frames %" PRIu64 " bytes (%" PRIu64 " short), tx %" PRIu64
		      " frames (%" PRIu64 " errors); guest to guest %" PRIu64,
		v->tap_rx_frames, v->tap_rx_bytes, v->tap_rx_short, v->tap_tx_frames, v->tap_tx_errors,
		v->guest_to_guest);
	for (unsigned i = 0; i < v->nguests; i++) {
		struct guest *g = &v->guests[i];
		struct vdemux_vm_stats *s = &g->final_stats;
		struct vdemux_vnet_rxq_stats *rs = &g->final_rxq;
		vmm_log(g, "vmm: vm: delivered %" PRIu64 " frames %" PRIu64 " bytes, flips %" PRIu64 ", copies %" PRIu64
			   ", harvests %" PRIu64 ", signals %" PRIu64,
			s->delivered, s->bytes, s->flips, s->copies, s->harvests, s->signals);
		for (int d = 1; d < VDEMUX_DROP__COUNT; d++)
			if (s->drops[d])
				vmm_log(g, "vmm: vm: dropped %" PRIu64 " (%s)", s->drops[d], vdemux_drop_reason_name(d));
		vmm_log(g, "vmm: rxq: frames %" PRIu64 " (flipped %" PRIu64 ", copied %" PRIu64 "), buffers %" PRIu64
			   " (page chains %" PRIu64 "), skipped %" PRIu64 ", failed %" PRIu64 ", interrupts %" PRIu64
			   " (%" PRIu64 " not wanted), ring errors %" PRIu64,
			rs->frames, rs->flipped, rs->copied, rs->buffers, rs->page_buffers, rs->skipped, rs->failed,
			rs->interrupts, rs->no_interrupt, rs->ring_errors);
		vmm_log(g, "vmm: tx: %" PRIu64 " frames %" PRIu64 " bytes, %" PRIu64 " bad; interrupts %" PRIu64,
			g->net.tx_frames, g->net.tx_bytes, g->net.tx_bad, g->net.irqs);
		vmm_log(g, "vmm: kvm: mmap calls %" PRIu64 ", mapped %" PRIu64 ", unmapped %" PRIu64 ", remapped %" PRIu64
			   ", holes hit: %" PRIu64 " EFAULT, %" PRIu64 " MMIO; pages backfilled %" PRIu64,
			g->final_kvm.mmap_calls, g->final_kvm.pages_mapped, g->final_kvm.pages_unmapped,
			g->final_kvm.pages_remapped, g->holes_efault, g->holes_mmio, g->backfilled);
	}
}

/* Main thread, engine lock held: the guest's transmit ring, if kicked. */
static void serve_tx(struct guest *g)
{
	struct vnet_dev *d = &g->net;
	pthread_mutex_lock(&d->lock);
	if (d->events & VNET_EV_TX) {
		d->events &= ~VNET_EV_TX;
		vnet_tx(g);
	}
	pthread_mutex_unlock(&d->lock);
}

/* Main thread, engine lock held: the receive queue's life cycle and kicks.
 * Frames reach the guest inside the engine's calls (TAP submits, transmit
 * bursts, kicks), which also interrupt it. */
static void serve_rx(struct guest *g)
{
	struct vnet_dev *d = &g->net;
	pthread_mutex_lock(&d->lock);
	/* A receive kick or a configuration change: both served here. A
	 * transmit kick that came since serve_tx() stays for the next round. */
	bool kicked = d->events & VNET_EV_RX;
	d->events &= ~(VNET_EV_RX | VNET_EV_CONFIG);
	if (d->generation != g->rxq_generation) {
		g->rxq_generation = d->generation;
		if (g->rxq_started) {
			vdemux_vnet_rxq_stop(g->rxq);
			g->rxq_started = false;
		}
		g->rxq_broken = false;
		const struct virtq *q = &d->vq[0];
		if ((d->status & 0x4) && q->pfn) { /* DRIVER_OK */
			/* Legacy layout: desc at PFN * 4096, avail after it, used at
			 * the next 4096 boundary (vq_setup()). */
			struct vdemux_vnet_ring ring = VDEMUX_OPTS(vdemux_vnet_ring, .desc_gpa = q->desc,
								   .avail_gpa = q->avail, .used_gpa = q->used,
								   .size = q->size, .features = d->guest_features);
			int r = vdemux_vnet_rxq_start(g->rxq, &ring);
			if (r < 0) {
				vmm_log(g, "vmm: receive queue not started: %s", strerror(-r));
			} else {
				g->rxq_started = true;
				uint32_t f = d->guest_features;
				vmm_log(g, "vmm: receive queue started: %u entries, features 0x%08x (indirect %s, event_idx %s, mergeable %s)",
					q->size, f, f & (1u << 28) ? "yes" : "no", f & (1u << 29) ? "yes" : "no",
					f & (1u << 15) ? "yes" : "no");
			}
			kicked = true; /* take what the driver posted before DRIVER_OK */
		}
	}
	if (kicked && g->rxq_started && !g->rxq_broken) {
		int r = vdemux_vnet_rxq_kick(g->rxq);
		if (r == -EIO || vdemux_vnet_rxq_needs_reset(g->rxq) == 1) {
			/* Legacy virtio has no DEVICE_NEEDS_RESET: log it, and serve
			 * the ring no more until the driver resets the device. */
			g->rxq_broken = true;
			vdemux_vnet_rxq_stop(g->rxq);
			g->rxq_started = false;
			vmm_log(g, "vmm: the guest broke its receive ring: queue stopped until a reset");
		}
	}
	pthread_mutex_unlock(&d->lock);
}

int main(int argc, char **argv)
{
	struct vmm *v = &vmm_state;
	pthread_mutex_init(&v->out_lock, NULL);
	pthread_mutex_init(&v->engine_lock, NULL);
	v->tap_fd = -1;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--tap") && i + 1 < argc) {
			v->tap_name = argv[++i];
		} else if (!strcmp(argv[i], "--guest") && i + 1 < argc) {
			if (v->nguests == VMM_MAX_GUESTS) {
				fprintf(stderr, "vmm: at most %d guests\n", VMM_MAX_GUESTS);
				return 2;
			}
			struct guest *g = &v->guests[v->nguests];
			g->vmm = v;
			g->index = v->nguests;
			if (parse_guest(g, argv[++i]) < 0) {
				fprintf(stderr, "vmm: bad --guest spec\n");
				usage();
				return 2;
			}
			v->nguests++;
		} else if (!strcmp(argv[i], "--verbose")) {
			v->verbose = true;
		} else {
			usage();
			return 2;
		}
	}
	if (!v->tap_name || !v->nguests) {
		usage();
		return 2;
	}

	v->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (v->kvm_fd < 0 || ioctl(v->kvm_fd, KVM_GET_API_VERSION, 0) != KVM_API_VERSION) {
		fprintf(stderr, "vmm: /dev/kvm: %s\n", v->kvm_fd < 0 ? strerror(errno) : "wrong API version");
		return 1;
	}

	/* One memfd arena, all of it the engine's pool: every guest's RAM is
	 * made of pool pages, plus spare pages for frames in flight. */
	uint32_t pool = POOL_EXTRA;
	for (unsigned i = 0; i < v->nguests; i++)
		pool += (uint32_t)(v->guests[i].mem / VMM_PAGE);
	struct vdemux_arena_opts ao = VDEMUX_OPTS(vdemux_arena_opts, .npages = pool,
						  .kind = VDEMUX_ARENA_MEMFD, .flags = VDEMUX_ARENA_F_ALIGN_2M);
	int r = vdemux_arena_create(&v->arena, &ao);
	if (r < 0) {
		fprintf(stderr, "vmm: arena: %s\n", strerror(-r));
		return 1;
	}
	struct vdemux_engine_opts eo = VDEMUX_OPTS(vdemux_engine_opts, .arena = v->arena, .first_page = 0,
						   .npages = pool, .log = engine_log, .log_payload = v);
	if ((r = vdemux_engine_create(&v->eng, &eo)) < 0) {
		fprintf(stderr, "vmm: engine: %s\n", strerror(-r));
		return 1;
	}
	split_horizon.l2 = vdemux_engine_l2(v->eng);
	v->cls = &split_horizon;
	vdemux_engine_set_classifier(v->eng, &split_horizon.base);

	if ((r = tap_open(v->tap_name, &v->tap_fd)) < 0) {
		fprintf(stderr, "vmm: tap %s: %s\n", v->tap_name, strerror(-r));
		return 1;
	}

	/* SIGTERM and SIGINT come through a signalfd; SIGUSR1 kicks vCPUs. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	struct sigaction sa = {.sa_handler = sigusr1};
	sigaction(SIGUSR1, &sa, NULL);
	sigdelset(&set, SIGUSR1);
	int sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);

	for (unsigned i = 0; i < v->nguests; i++) {
		struct guest *g = &v->guests[i];
		r = guest_create(v, g);
		if (r < 0) {
			vmm_log(g, "vmm: cannot create the guest: %s", strerror(-r));
			return 1;
		}
		vmm_log(g, "vmm: %llu MiB, mac %02x:%02x:%02x:%02x:%02x:%02x, rx %s, vm %u", (unsigned long long)(g->mem >> 20),
			g->mac[0], g->mac[1], g->mac[2], g->mac[3], g->mac[4], g->mac[5],
			g->layout == RX_BIG ? "big (flipped into the guest's buffers)" : "mergeable (copied)", g->vm);
	}

	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = EV(EV_TAP, 0)};
	epoll_ctl(ep, EPOLL_CTL_ADD, v->tap_fd, &ev);
	ev.data.u64 = EV(EV_SIGNAL, 0);
	epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev);
	for (unsigned i = 0; i < v->nguests; i++) {
		ev.data.u64 = EV(EV_KICK, i);
		epoll_ctl(ep, EPOLL_CTL_ADD, v->guests[i].net.kick_fd, &ev);
		ev.data.u64 = EV(EV_OFF, i);
		epoll_ctl(ep, EPOLL_CTL_ADD, v->guests[i].off_fd, &ev);
	}
	for (unsigned i = 0; i < v->nguests; i++) {
		struct guest *g = &v->guests[i];
		if (pthread_create(&g->thread, NULL, vcpu_thread, g) != 0) {
			vmm_log(g, "vmm: cannot start the vCPU thread");
			return 1;
		}
		g->thread_started = true;
	}

	bool ok = true, quit = false;
	unsigned live = v->nguests;
	struct timespec last_status;
	clock_gettime(CLOCK_MONOTONIC, &last_status);
	while (live && !quit) {
		struct epoll_event evs[16];
		int n = epoll_wait(ep, evs, 16, 1000);
		if (n < 0 && errno != EINTR)
			break;
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (v->verbose && now.tv_sec - last_status.tv_sec >= 10) {
			last_status = now;
			for (unsigned i = 0; i < v->nguests; i++) {
				struct guest *g = &v->guests[i];
				struct vdemux_vnet_rxq_stats rs = {0};
				struct vdemux_vm_stats vs = {0};
				if (g->removed)
					continue;
				vdemux_vnet_rxq_stats(g->rxq, &rs, sizeof rs);
				vdemux_vm_stats(v->eng, g->vm, &vs, sizeof vs);
				uint64_t drops = 0;
				for (int d = 0; d < VDEMUX_DROP__COUNT; d++)
					drops += vs.drops[d];
				vmm_log(g, "vmm: exits: %" PRIu64 " I/O, %" PRIu64 " MMIO, %" PRIu64 " other, %" PRIu64
					   " EFAULT; tx %" PRIu64 "; rx %" PRIu64 " (flipped %" PRIu64 ", engine drops %" PRIu64
					   "); interrupts: rx %" PRIu64 ", tx %" PRIu64,
					g->exits_io, g->exits_mmio, g->exits_other, g->holes_efault, g->net.tx_frames,
					rs.frames, rs.flipped, drops, rs.interrupts, g->net.irqs);
				unsigned top = 0;
				for (unsigned p = 1; p < 65536; p++)
					if (g->port_exits[p] > g->port_exits[top])
						top = p;
				vmm_log(g, "vmm: busiest port 0x%x: %u exits", top, g->port_exits[top]);
			}
		}
		pthread_mutex_lock(&v->engine_lock);
		for (int i = 0; i < n; i++) {
			unsigned type = (unsigned)(evs[i].data.u64 >> 32), idx = (unsigned)evs[i].data.u64;
			uint64_t cnt;
			if (type == EV_TAP) {
				if (tap_rx(v) < 0)
					vmm_log(NULL, "vmm: tap read failed");
			} else if (type == EV_SIGNAL) {
				struct signalfd_siginfo si;
				if (read(sfd, &si, sizeof si) == sizeof si) {
					vmm_log(NULL, "vmm: signal %u: stopping", si.ssi_signo);
					quit = true;
				}
			} else if (type == EV_KICK) {
				/* What was kicked is in the device's events. */
				if (read(v->guests[idx].net.kick_fd, &cnt, sizeof cnt) < 0)
					continue;
			} else if (type == EV_OFF) {
				struct guest *g = &v->guests[idx];
				if (read(g->off_fd, &cnt, sizeof cnt) > 0 && !g->removed) {
					ok &= guest_remove(v, g);
					live--;
				}
			}
		}
		/* Every transmit ring first, so that frames between guests reach
		 * their receive rings in this same round. */
		for (unsigned i = 0; i < v->nguests; i++)
			if (!v->guests[i].removed)
				serve_tx(&v->guests[i]);
		for (unsigned i = 0; i < v->nguests; i++)
			if (!v->guests[i].removed)
				serve_rx(&v->guests[i]);
		pthread_mutex_unlock(&v->engine_lock);
	}

	pthread_mutex_lock(&v->engine_lock);
	for (unsigned i = 0; i < v->nguests; i++)
		if (!v->guests[i].removed)
			ok &= guest_remove(v, &v->guests[i]);
	tap_rx_stop(v);
	ok &= check_engine(v, "end");
	print_stats(v);
	pthread_mutex_unlock(&v->engine_lock);
	vmm_log(NULL, "vmm: exit %d", ok ? 0 : 1);
	return ok ? 0 : 1;
}

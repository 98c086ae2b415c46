/* SPDX-License-Identifier: MIT */
/*
 * The KVM backend running out of mappings, for real: each page flipped in
 * from a non-adjacent place of the arena is a mapping of its own, and the
 * kernel allows vm.max_map_count of them per process. Run as root inside
 * the kernel lab (which is its own kernel), this program lowers the limit
 * to a little above what the process uses, then flips frames into a VM's
 * still-mapped buffers (lazy harvest, copy policy NEVER) until mmap(2)
 * fails with ENOMEM, and checks that:
 *   - every frame sent is delivered (no drop of any kind), the frames the
 *     backend could not map being copied into the VM's own buffer
 *     (fallback_copies > 0, completions flagged VDEMUX_CPL_COPIED);
 *   - what the VM sees at each completed GPA, through its RAM mapping, is
 *     exactly the frame;
 *   - vdemux_engine_check() finds nothing wrong after every burst.
 * The backend needs no vCPU for this (it maps arena pages over a host
 * range), so neither /dev/kvm nor the KVM modules are used.
 *
 * kvm_maplimit --lab: the test above. It changes a system-wide sysctl, so
 * it runs only when asked to (the lab's registration passes --lab); without
 * arguments it skips.
 *
 * kvm_maplimit --count N (no root needed, anywhere): flip N frames with the
 * limit untouched and print how many mappings the process has before and
 * after, and what the window allows at most.
 *
 * Exit status: 0 passed, 1 failed, 77 skipped (not --lab, or cannot lower
 * the limit).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vdemux/kvm.h>
#include <vdemux/sys/classifier.h>
#include <vdemux/vdemux.h>

#define PAGE 4096u
#define RX_PAGES 1024u
#define POOL_PAGES (RX_PAGES + 256u)
#define RX_BASE 0x100000ull
#define BURST 32u
#define FLEN 1500u

static unsigned failures;

#define fail(...)                             \
	do {                                  \
		printf("FAIL: " __VA_ARGS__); \
		printf("\n");                 \
		failures++;                   \
	} while (0)

static vdemux_engine *eng;
static vdemux_vm_id vm_id;
static uint8_t *ram; /* the VM's RAM, as its vCPUs would see it */
static struct vdemux_backend *be;

static int to_the_vm(struct vdemux_classifier *c, const uint8_t *frame, uint32_t len,
		     struct vdemux_verdict *v)
{
	(void)c;
	(void)frame;
	(void)len;
	v->dests[0] = (struct vdemux_dest){.vm = vm_id};
	v->n = 1;
	return 0;
}

static long count_maps(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	long n = 0;
	int ch;

	if (!f)
		return -1;
	while ((ch = fgetc(f)) != EOF)
		n += ch == '\n';
	fclose(f);
	return n;
}

static int write_max_map_count(long v)
{
	FILE *f = fopen("/proc/sys/vm/max_map_count", "w");
	int ok;

	if (!f)
		return -errno;
	ok = fprintf(f, "%ld\n", v) > 0;
	if (fclose(f) != 0 || !ok)
		return -EIO;
	return 0;
}

static long read_max_map_count(void)
{
	FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
	long v = -1;

	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

static uint32_t rnd = 12345;

static uint32_t next_rnd(void)
{
	rnd = rnd * 1103515245u + 12345u;
	return rnd >> 8;
}

static void make_frame(uint8_t *buf, uint32_t seq)
{
	for (uint32_t i = 0; i < FLEN; i++)
		buf[i] = (uint8_t)(seq * 131u + i * 7u + 1u);
	memcpy(buf, "\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x09\x88\xb5", 14);
	memcpy(buf + 14, &seq, sizeof(seq));
}

static int setup(void)
{
	static struct vdemux_classifier cls = VDEMUX_CLASSIFIER_INIT;
	struct vdemux_arena_opts ao = VDEMUX_OPTS(vdemux_arena_opts, .npages = RX_PAGES + POOL_PAGES,
						  .kind = VDEMUX_ARENA_MEMFD);
	struct vdemux_engine_opts eo;
	struct vdemux_arena_info ai;
	vdemux_arena *arena;
	void *r;
	int err;

	if ((err = vdemux_arena_create(&arena, &ao)) || (err = vdemux_arena_info(arena, &ai)))
		return err;
	eo = VDEMUX_OPTS(vdemux_engine_opts, .arena = arena, .first_page = RX_PAGES,
			 .npages = POOL_PAGES, .harvest = VDEMUX_HARVEST_LAZY, .copy = VDEMUX_COPY_NEVER);
	if ((err = vdemux_engine_create(&eng, &eo)))
		return err;
	cls.name = "one-vm";
	cls.classify = to_the_vm;
	if ((err = vdemux_engine_set_classifier(eng, &cls)))
		return err;
	if ((err = vdemux_kvm_ram_map(arena, 0, RX_PAGES, &r)))
		return err;
	ram = r;
	struct vdemux_kvm_opts ko = VDEMUX_OPTS(
		vdemux_kvm_opts, .ram_gpa = RX_BASE, .ram_size = (uint64_t)RX_PAGES * PAGE, .ram_hva = r,
		.flags = VDEMUX_KVM_F_HOME_FD, .home_fd = ai.fd, .home_offset = 0);
	if ((err = vdemux_kvm_create(&be, &ko)) || (err = vdemux_engine_add_backend(eng, be)))
		return err;
	struct vdemux_vm_opts vo = VDEMUX_OPTS(vdemux_vm_opts, .rx_base = RX_BASE, .rx_pages = RX_PAGES,
					       .backends = &be, .n_backends = 1);
	if ((err = vdemux_vm_add(eng, &vm_id, &vo)))
		return err;
	/* Everything posted, in a scattered order: consecutive frames land at
	 * GPAs far apart, so that no two flipped pages merge into a mapping. */
	uint64_t g[RX_PAGES];
	for (uint32_t i = 0; i < RX_PAGES; i++)
		g[i] = RX_BASE + (uint64_t)i * PAGE;
	for (uint32_t i = RX_PAGES - 1; i > 0; i--) {
		uint32_t j = next_rnd() % (i + 1);
		uint64_t t = g[i];

		g[i] = g[j];
		g[j] = t;
	}
	err = vdemux_vm_post_rx(eng, vm_id, g, RX_PAGES);
	return err == (int)RX_PAGES ? 0 : err < 0 ? err : -EIO;
}

/* One burst; the guest checks and re-posts what it got, in random order.
 * Returns how many completions were copies, or -1. */
static int burst(uint32_t *seq)
{
	static uint8_t buf[BURST][FLEN];
	struct vdemux_frame fr[BURST];
	struct vdemux_completion c[BURST];
	uint64_t g[BURST];
	char msg[256] = "";
	int n, copied = 0;

	for (unsigned i = 0; i < BURST; i++) {
		make_frame(buf[i], *seq + i);
		fr[i] = (struct vdemux_frame){.data = buf[i], .len = FLEN};
	}
	n = vdemux_rx_burst(eng, fr, BURST);
	if (n != (int)BURST) {
		fail("rx burst took %d of %u", n, BURST);
		return -1;
	}
	n = vdemux_vm_poll(eng, vm_id, c, BURST);
	if (n != (int)BURST) {
		fail("%d completions for %u frames", n, BURST);
		return -1;
	}
	for (int i = 0; i < n; i++) {
		const uint8_t *seen = ram + (c[i].gpa - RX_BASE);

		if (c[i].len != FLEN || memcmp(seen, buf[i], FLEN) != 0) {
			fail("frame %u at GPA 0x%llx: not what was sent", *seq + i,
			     (unsigned long long)c[i].gpa);
			return -1;
		}
		copied += !!(c[i].flags & VDEMUX_CPL_COPIED);
		g[i] = c[i].gpa;
	}
	for (int i = n - 1; i > 0; i--) {
		uint32_t j = next_rnd() % (uint32_t)(i + 1);
		uint64_t t = g[i];

		g[i] = g[j];
		g[j] = t;
	}
	if (vdemux_vm_post_rx(eng, vm_id, g, (unsigned)n) != n) {
		fail("re-post failed");
		return -1;
	}
	if (vdemux_engine_check(eng, msg, sizeof(msg)) != 0) {
		fail("engine check: %s", msg);
		return -1;
	}
	*seq += BURST;
	return copied;
}

static int count_mode(unsigned long frames)
{
	struct vdemux_engine_stats st;
	struct vdemux_kvm_stats ks;
	long before, after, peak = 0;
	uint32_t seq = 1;
	int err = setup();

	if (err) {
		printf("setup: %s\n", strerror(-err));
		return 1;
	}
	before = count_maps();
	for (unsigned long k = 0; k < frames; k += BURST) {
		if (burst(&seq) < 0)
			return 1;
		if ((k / BURST) % 1024 == 0) {
			long m = count_maps();

			if (m > peak)
				peak = m;
		}
	}
	after = count_maps();
	if (after > peak)
		peak = after;
	vdemux_engine_stats(eng, &st, sizeof(st));
	vdemux_kvm_stats(be, &ks, sizeof(ks));
	printf("kvm_maplimit: %lu frames of %u bytes flipped into a window of %u pages (lazy harvest, "
	       "scattered posting)\n",
	       (unsigned long)seq - 1, FLEN, RX_PAGES);
	printf("mappings of the process: %ld after setup, %ld at the end, %ld at most (sampled); "
	       "bound 2 * rx_pages + 1 = %u for the window\n",
	       before, after, peak, 2 * RX_PAGES + 1);
	printf("engine: %llu flips, %llu copies, %llu fallback copies; backend: %llu mmap calls, %llu failures\n",
	       (unsigned long long)st.flips, (unsigned long long)st.copies,
	       (unsigned long long)st.fallback_copies, (unsigned long long)ks.mmap_calls,
	       (unsigned long long)ks.failures);
	vdemux_engine_destroy(eng);
	return failures ? 1 : 0;
}

int main(int argc, char **argv)
{
	struct vdemux_engine_stats st;
	long limit0, maps, limit;
	uint32_t seq = 1;
	int copied = 0, err;
	unsigned bursts;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 3 && strcmp(argv[1], "--count") == 0)
		return count_mode(strtoul(argv[2], NULL, 0));
	if (argc != 2 || strcmp(argv[1], "--lab") != 0) {
		printf("SKIP: lowers vm.max_map_count system-wide: only with --lab, in the kernel lab "
		       "(or --count N)\n");
		return 77;
	}
	limit0 = read_max_map_count();
	err = setup();
	if (err) {
		printf("FAIL: setup: %s\n", strerror(-err));
		return 1;
	}
	maps = count_maps();
	limit = maps + 64;
	if (limit0 < 0 || write_max_map_count(limit) != 0) {
		printf("SKIP: cannot lower vm.max_map_count (not root, or not a kernel of our own)\n");
		return 77;
	}
	printf("vm.max_map_count %ld -> %ld (the process has %ld mappings)\n", limit0, limit, maps);
	for (bursts = 0; bursts < 64 && !failures; bursts++) {
		int c = burst(&seq);

		if (c < 0)
			break;
		copied += c;
	}
	/* the limit back, so that removal can unmap everything */
	write_max_map_count(limit0);
	vdemux_engine_stats(eng, &st, sizeof(st));
	uint64_t drops = 0;
	for (int i = 0; i < VDEMUX_DROP__COUNT; i++)
		drops += st.drops[i];
	printf("%u bursts: %llu delivered, %llu flips, %llu copies (%llu fallback), %llu dropped, "
	       "%llu backend errors, mappings now %ld\n",
	       bursts, (unsigned long long)st.delivered, (unsigned long long)st.flips,
	       (unsigned long long)st.copies, (unsigned long long)st.fallback_copies,
	       (unsigned long long)drops, (unsigned long long)st.backend_errors, count_maps());
	if (drops)
		fail("%llu frames dropped", (unsigned long long)drops);
	if (st.delivered != (uint64_t)seq - 1)
		fail("%llu delivered of %u sent", (unsigned long long)st.delivered, seq - 1);
	if (!st.fallback_copies)
		fail("the limit was never reached: no fallback copy");
	if (st.fallback_copies != (uint64_t)copied || st.copies != st.fallback_copies)
		fail("completions flagged copied: %d, fallback copies %llu, copies %llu", copied,
		     (unsigned long long)st.fallback_copies, (unsigned long long)st.copies);
	if (!st.flips)
		fail("nothing was flipped before the limit");
	if (vdemux_vm_remove(eng, vm_id) != 0)
		fail("VM removal failed");
	char msg[256] = "";
	if (vdemux_engine_check(eng, msg, sizeof(msg)) != 0)
		fail("engine check after removal: %s", msg);
	vdemux_engine_destroy(eng);
	if (!failures)
		printf("ok: at vm.max_map_count the KVM backend's refused flips were copied into the "
		       "VM's buffers; nothing dropped, every frame intact, engine consistent\n");
	return failures ? 1 : 0;
}

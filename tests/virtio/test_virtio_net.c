/* SPDX-License-Identifier: MIT */
/*
 * virtio-net receive queues through the whole engine: simulated Linux 6.1
 * guests (tests/support/vnet_guest.h) post, refill and consume as Linux's
 * driver does in its three layouts; frames of random sizes, unicast and
 * broadcast, go in through vdemux_rx_burst() and the zero-copy pair; every
 * frame and header is checked from the guest's side, and the engine's
 * invariants after every burst.
 *
 * Guest RAM is kept by the KVM backend (no vCPU is needed: it remaps the
 * VMM's view of guest RAM, which is what the queue reads and writes), so
 * what the guest reads is what a vCPU would.
 */
#include <endian.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <cmocka.h>

#include <vdemux/sys/backend.h>
#include <vdemux/vdemux.h>

#include "fault.h"
#include "seqframe.h"
#include "vnet_guest.h"

#define NVM 3
#define RAM_PAGES 4096u /* 16 MiB each */
#define RAM ((uint64_t)RAM_PAGES * VDEMUX_PAGE_SIZE)
#define POOL_EXTRA 2048u
#define QSIZE 256u
#define MAXF 65536u

#define V1 VD_VIRTIO_F_VERSION_1
#define EVT VD_VIRTIO_F_EVENT_IDX
#define IND VD_VIRTIO_F_INDIRECT_DESC
#define MRG VD_VIRTIO_NET_F_MRG_RXBUF

struct guest {
	uint8_t *ram;
	struct vdemux_backend *kvm;
	struct vt_fault *fault;	    /* wraps kvm when the test injects failures */
	struct vdemux_backend *sim; /* a second table of the queue's VM, or NULL */
	struct vt_fault *fault2;    /* wraps sim */
	vdemux_vnet_rxq *q;
	struct vng g;
	enum vng_mode mode;
	uint8_t mac[6];
	bool refill;	   /* the guest keeps refilling */
	uint32_t next_seq; /* frames are received in order: lowest seq next */
	uint64_t received, irqs;
};

struct world {
	vdemux_engine *eng;
	vdemux_arena *arena;
	struct guest g[NVM];
	uint32_t seq;
	uint32_t qsize;	     /* of the guests set up next; 0: QSIZE */
	bool setup_empty;    /* guests set up next post nothing yet */
	uint32_t ring_align; /* their used ring's alignment; 0: 4096 */
	uint32_t big_frags;  /* their big-packet chains' whole pages; 0: 17 */
	/* what was sent, by seq: to whom (bit per VM), length */
	uint8_t *to;
	uint32_t *len;
	uint32_t cap;
	uint8_t rxbuf[MAXF + 64];
};

static uint8_t *guest_at(void *payload, uint64_t gpa, uint64_t len)
{
	struct guest *g = payload;

	return gpa <= RAM && len <= RAM - gpa ? g->ram + gpa : NULL;
}

static void on_irq(vdemux_vm_id vm, unsigned reasons, void *payload)
{
	(void)vm;
	(void)reasons;
	((struct guest *)payload)->irqs++;
}

/* fault: the KVM backend is wrapped to inject failures; stacked: a second
 * backend (the simulated MMU, wrapped likewise) keeps a table of the VM. */
static void guest_setup_ex(struct world *w, int i, enum vng_mode mode, uint64_t features,
			   enum vdemux_copy_policy copy, bool fault, bool stacked)
{
	struct guest *g = &w->g[i];
	struct vdemux_arena_info ai;
	struct vng_mem m = {.at = guest_at, .payload = g};
	struct vng_opts vo = {.mode = mode,
			      .qsize = w->qsize ? w->qsize : QSIZE,
			      .features = features,
			      .ring_align = w->ring_align,
			      .big_frags = w->big_frags,
			      .mem_size = RAM};
	struct vdemux_vnet_ring ring;
	vdemux_l2 *l2 = vdemux_engine_l2(w->eng);

	assert_int_equal(vdemux_arena_info(w->arena, &ai), 0);
	g->ram = mmap(NULL, RAM, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(g->ram != MAP_FAILED);
	struct vdemux_kvm_opts ko = VDEMUX_OPTS(vdemux_kvm_opts, .ram_gpa = 0, .ram_size = RAM,
						.ram_hva = g->ram);
	assert_int_equal(vdemux_kvm_create(&g->kvm, &ko), 0);
	if (fault) {
		g->fault = vt_fault_wrap(g->kvm, true);
		g->kvm = &g->fault->base;
	}
	assert_int_equal(vdemux_engine_add_backend(w->eng, g->kvm), 0);
	struct vdemux_backend *bes[2] = {g->kvm, NULL};
	if (stacked) {
		struct vdemux_sim_opts so = VDEMUX_OPTS(vdemux_sim_opts);

		assert_int_equal(vdemux_sim_create(&g->sim, &so), 0);
		g->fault2 = vt_fault_wrap(g->sim, false);
		g->sim = bes[1] = &g->fault2->base;
		assert_int_equal(vdemux_engine_add_backend(w->eng, g->sim), 0);
	}
	struct vdemux_vnet_rxq_opts qo = VDEMUX_OPTS(vdemux_vnet_rxq_opts, .ram = g->ram,
						     .ram_size = RAM, .backends = bes,
						     .n_backends = stacked ? 2 : 1, .copy = copy);
	qo.irq = (struct vdemux_signal){.kind = VDEMUX_SIGNAL_CALLBACK, .cb = on_irq, .payload = g};
	assert_int_equal(vdemux_vnet_rxq_create(&g->q, w->eng, &qo), 0);
	memcpy(g->mac, (uint8_t[6]){0x02, 0, 0, 0, 1, (uint8_t)(i + 1)}, 6);
	assert_int_equal(vdemux_l2_vlan_join(l2, vdemux_vnet_rxq_vm(g->q), 1, 0), 0);
	assert_int_equal(vdemux_l2_add_mac(l2, vdemux_vnet_rxq_vm(g->q), g->mac, 1), 0);

	g->mode = mode;
	g->refill = true;
	assert_int_equal(vng_init(&g->g, &m, &vo), 0);
	ring = vng_vnet_ring(&g->g);
	assert_int_equal(vdemux_vnet_rxq_start(g->q, &ring), 0);
	if (w->setup_empty)
		return; /* the test posts */
	vng_refill(&g->g);
	assert_true(vdemux_vnet_rxq_kick(g->q) > 0);
}

static void guest_setup(struct world *w, int i, enum vng_mode mode, uint64_t features,
			enum vdemux_copy_policy copy)
{
	guest_setup_ex(w, i, mode, features, copy, false, false);
}

static struct world *world_new(void)
{
	struct world *w = calloc(1, sizeof(*w));
	uint32_t npages = NVM * RAM_PAGES + POOL_EXTRA;
	struct vdemux_arena_opts ao = VDEMUX_OPTS(vdemux_arena_opts, .npages = npages,
						  .kind = VDEMUX_ARENA_MEMFD);

	assert_non_null(w);
	assert_int_equal(vdemux_arena_create(&w->arena, &ao), 0);
	struct vdemux_engine_opts eo = VDEMUX_OPTS(vdemux_engine_opts, .arena = w->arena,
						   .max_frame = MAXF);
	assert_int_equal(vdemux_engine_create(&w->eng, &eo), 0);
	w->cap = 1u << 16;
	w->to = calloc(w->cap, 1);
	w->len = calloc(w->cap, sizeof(*w->len));
	assert_non_null(w->to);
	assert_non_null(w->len);
	return w;
}

static void world_free(struct world *w)
{
	char msg[200];

	assert_int_equal(vdemux_engine_check(w->eng, msg, sizeof(msg)), 0);
	for (int i = 0; i < NVM; i++) {
		if (!w->g[i].q)
			continue;
		vdemux_vnet_rxq_destroy(w->g[i].q);
		vng_fini(&w->g[i].g);
	}
	assert_int_equal(vdemux_engine_check(w->eng, msg, sizeof(msg)), 0);
	vdemux_engine_destroy(w->eng);
	for (int i = 0; i < NVM; i++)
		if (w->g[i].ram)
			munmap(w->g[i].ram, RAM);
	vdemux_arena_destroy(w->arena);
	free(w->to);
	free(w->len);
	free(w);
}

static void check_engine(struct world *w)
{
	char msg[200];
	int rc = vdemux_engine_check(w->eng, msg, sizeof(msg));

	if (rc)
		fail_msg("engine check: %s", msg);
}

/* The guest takes every frame it got and checks it; then refills. */
static void guest_receive(struct world *w, int i)
{
	struct guest *g = &w->g[i];
	struct vng_hdr h;
	int n;

	while ((n = vng_recv(&g->g, &h, w->rxbuf, sizeof(w->rxbuf))) != -EAGAIN) {
		uint32_t seq, len;

		if (n == -EBADMSG)
			continue; /* a buffer given back empty: counted by the guest */
		assert_true(n >= 22);
		assert_int_equal(h.flags, 0);
		assert_int_equal(h.gso_type, 0);
		seqframe_fields(w->rxbuf, &seq, &len);
		assert_int_equal((uint32_t)n, len);
		assert_true(seq < w->seq && seq >= g->next_seq);
		assert_true(w->to[seq] & (1u << i)); /* it was meant for this guest */
		assert_int_equal(w->len[seq], len);
		if (seqframe_first_bad(w->rxbuf, seq, len) != len)
			fail_msg("guest %d frame %u byte %u wrong", i, seq,
				 seqframe_first_bad(w->rxbuf, seq, len));
		g->next_seq = seq + 1;
		g->received++;
	}
	if (g->refill) {
		vng_refill(&g->g);
		if (vng_kick_prepare(&g->g))
			assert_true(vdemux_vnet_rxq_kick(g->q) >= 0);
	}
}

static uint32_t rnd(uint32_t *s)
{
	*s = *s * 1103515245u + 12345u;
	return *s >> 8;
}

/* Send a burst: each frame unicast to a random guest, or broadcast. */
static void burst(struct world *w, uint32_t *r, uint32_t nframes, uint32_t minlen, uint32_t maxlen,
		  bool zc)
{
	static uint8_t frames[8][MAXF];
	struct vdemux_frame f[8];
	static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

	for (uint32_t k = 0; k < nframes; k++) {
		uint32_t len = minlen + rnd(r) % (maxlen - minlen + 1), dst = rnd(r) % (NVM + 1);
		uint32_t seq = w->seq++;

		assert_true(seq < w->cap);
		seqframe_make(frames[k], dst == NVM ? bcast : w->g[dst].mac, seq, len);
		w->to[seq] = (uint8_t)(dst == NVM ? (1u << NVM) - 1 : 1u << dst);
		w->len[seq] = len;
		f[k] = (struct vdemux_frame){.data = frames[k], .len = len};
	}
	if (!zc) {
		assert_int_equal(vdemux_rx_burst(w->eng, f, nframes), (int)nframes);
		return;
	}
	/* The zero-copy pair, with each frame read in at the offset of the
	 * big-packet layout (32: Linux 6.1's padded header) as a VMM would. */
	for (uint32_t k = 0; k < nframes; k++) {
		struct vdemux_rx_buf b[20];
		uint32_t off = 32, n = (off + f[k].len + VDEMUX_PAGE_SIZE - 1) / VDEMUX_PAGE_SIZE,
			 done = 0;

		assert_int_equal(vdemux_rx_alloc(w->eng, b, n), (int)n);
		for (uint32_t p = 0; p < n; p++) {
			uint32_t o = p ? 0 : off, room = VDEMUX_PAGE_SIZE - o;
			uint32_t take = f[k].len - done < room ? f[k].len - done : room;

			memcpy(b[p].data + o, frames[k] + done, take);
			b[p].off = o;
			b[p].len = take;
			b[p].flags = p + 1 < n ? VDEMUX_RXBUF_MORE : 0;
			done += take;
		}
		assert_int_equal(vdemux_rx_submit(w->eng, b, n), (int)n);
	}
}

static struct vdemux_vm_stats vm_stats(struct world *w, int i)
{
	struct vdemux_vm_stats s;

	assert_int_equal(vdemux_vm_stats(w->eng, vdemux_vnet_rxq_vm(w->g[i].q), &s, sizeof(s)), 0);
	return s;
}

static struct vdemux_vnet_rxq_stats q_stats(struct world *w, int i)
{
	struct vdemux_vnet_rxq_stats s;

	assert_int_equal(vdemux_vnet_rxq_stats(w->g[i].q, &s, sizeof(s)), 0);
	return s;
}

static void run_traffic(struct world *w, uint32_t bursts, uint32_t minlen, uint32_t maxlen, bool zc)
{
	uint32_t r = 12345;

	for (uint32_t b = 0; b < bursts; b++) {
		burst(w, &r, 1 + rnd(&r) % 8, minlen, maxlen, zc);
		check_engine(w);
		for (int i = 0; i < NVM; i++)
			guest_receive(w, i);
		check_engine(w);
	}
}

/* Everything the engine delivered to a guest reached it, checked. */
static void expect_all_received(struct world *w, int i)
{
	struct vdemux_vm_stats s = vm_stats(w, i);

	assert_true(w->g[i].received > 0);
	assert_int_equal(w->g[i].received, s.delivered);
	assert_int_equal(q_stats(w, i).frames, s.delivered);
	assert_int_equal(w->g[i].g.st.length_errors, q_stats(w, i).failed);
	assert_true(w->g[i].irqs > 0);
}

static void test_big_packet_guests_receive_every_frame_by_page_flip(void **state)
{
	struct world *w = world_new();

	(void)state;
	for (int i = 0; i < NVM; i++)
		guest_setup(w, i, VNG_BIG, V1 | EVT | IND, VDEMUX_COPY_NEVER);
	run_traffic(w, 150, 60, MAXF, false);
	run_traffic(w, 150, 60, MAXF, true);
	for (int i = 0; i < NVM; i++) {
		struct vdemux_vnet_rxq_stats qs = q_stats(w, i);

		expect_all_received(w, i);
		assert_int_equal(qs.flipped, qs.frames);
		assert_int_equal(qs.copied, 0);
		assert_true(vm_stats(w, i).flips > 0);
		assert_int_equal(vm_stats(w, i).copies, 0);
	}
	world_free(w);
}

static void test_mergeable_guests_receive_every_frame_by_copy(void **state)
{
	struct world *w = world_new();

	(void)state;
	for (int i = 0; i < NVM; i++)
		guest_setup(w, i, VNG_MERGEABLE, V1 | EVT | MRG, VDEMUX_COPY_DEFAULT);
	run_traffic(w, 150, 60, MAXF, false);
	run_traffic(w, 100, 60, MAXF, true);
	for (int i = 0; i < NVM; i++) {
		struct vdemux_vnet_rxq_stats qs = q_stats(w, i);

		expect_all_received(w, i);
		assert_int_equal(qs.copied, qs.frames);
		assert_int_equal(vm_stats(w, i).flips, 0);
	}
	world_free(w);
}

static void test_small_buffer_guests_receive_every_frame_that_fits_by_copy(void **state)
{
	struct world *w = world_new();

	(void)state;
	for (int i = 0; i < NVM; i++)
		guest_setup(w, i, VNG_SMALL, V1 | EVT, VDEMUX_COPY_DEFAULT);
	run_traffic(w, 200, 60, 1514, false);
	for (int i = 0; i < NVM; i++) {
		expect_all_received(w, i);
		assert_int_equal(q_stats(w, i).copied, q_stats(w, i).frames);
		assert_int_equal(vm_stats(w, i).flips, 0);
	}
	world_free(w);
}

static void test_three_layouts_side_by_side_on_one_engine(void **state)
{
	struct world *w = world_new();

	(void)state;
	guest_setup(w, 0, VNG_BIG, V1 | EVT | IND, VDEMUX_COPY_NEVER);
	guest_setup(w, 1, VNG_MERGEABLE, V1 | EVT | MRG, VDEMUX_COPY_DEFAULT);
	guest_setup(w, 2, VNG_BIG, 0 /* legacy: 10-byte header */, VDEMUX_COPY_NEVER);
	run_traffic(w, 150, 60, 9000, false);
	run_traffic(w, 150, 60, MAXF, true);
	for (int i = 0; i < NVM; i++)
		expect_all_received(w, i);
	assert_int_equal(q_stats(w, 0).flipped, q_stats(w, 0).frames);
	assert_int_equal(q_stats(w, 1).copied, q_stats(w, 1).frames);
	assert_int_equal(q_stats(w, 2).flipped, q_stats(w, 2).frames);
	world_free(w);
}

static void test_a_guest_that_stops_refilling_does_not_stall_the_others(void **state)
{
	struct world *w = world_new();
	uint64_t before[NVM];

	(void)state;
	guest_setup(w, 0, VNG_BIG, V1 | EVT | IND, VDEMUX_COPY_NEVER);
	guest_setup(w, 1, VNG_MERGEABLE, V1 | EVT | MRG, VDEMUX_COPY_DEFAULT);
	guest_setup(w, 2, VNG_BIG, V1 | EVT | IND, VDEMUX_COPY_NEVER);
	run_traffic(w, 50, 60, 9000, false);
	w->g[2].refill = false;
	for (int i = 0; i < NVM; i++)
		before[i] = w->g[i].received;
	run_traffic(w, 400, 60, 9000, false);
	/* The stopped guest ran out of buffers: its frames are dropped as
	 * NO_BUFFER; the others received all theirs. */
	assert_true(vm_stats(w, 2).drops[VDEMUX_DROP_NO_BUFFER] > 0);
	for (int i = 0; i < 2; i++) {
		assert_true(w->g[i].received > before[i] + 100);
		expect_all_received(w, i);
	}
	/* Refilling again, it receives again. */
	w->g[2].refill = true;
	before[2] = w->g[2].received;
	guest_receive(w, 2);
	run_traffic(w, 50, 60, 9000, false);
	assert_true(w->g[2].received > before[2]);
	expect_all_received(w, 2);
	world_free(w);
}

static void test_a_flip_the_backend_refuses_gives_the_buffer_back_empty_and_loses_no_page(void **state)
{
	struct world *w = world_new();
	struct vdemux_engine_stats before, after;
	struct vdemux_vnet_rxq_stats qs;
	uint32_t r = 777;

	(void)state;
	guest_setup_ex(w, 0, VNG_BIG, V1 | EVT | IND, VDEMUX_COPY_NEVER, true, false);
	guest_setup(w, 1, VNG_MERGEABLE, V1 | EVT | MRG, VDEMUX_COPY_DEFAULT);
	guest_setup(w, 2, VNG_BIG, V1 | EVT | IND, VDEMUX_COPY_NEVER);
	run_traffic(w, 20, 60, 9000, false);
	assert_int_equal(vdemux_engine_stats(w->eng, &before, sizeof(before)), 0);
	/* Every remap of guest 0 fails from now on. */
	vt_fault_arm(w->g[0].fault, VT_OP_REMAP, VT_FAULT_CALL, 1, -EIO, true);
	for (int b = 0; b < 30; b++) {
		burst(w, &r, 4, 60, 9000, b & 1);
		check_engine(w);
		for (int i = 0; i < NVM; i++)
			guest_receive(w, i);
		check_engine(w);
	}
	assert_true(w->g[0].fault->fired > 0);
	vt_fault_disarm(w->g[0].fault);
	assert_int_equal(vdemux_engine_stats(w->eng, &after, sizeof(after)), 0);
	qs = q_stats(w, 0);
	/* Each failed delivery gave its buffer back with length 0 (Linux
	 * counts a length error and recycles it); nothing else changed. */
	assert_true(qs.failed > 0);
	assert_int_equal(w->g[0].g.st.length_errors, qs.failed);
	assert_int_equal(after.drops[VDEMUX_DROP_BACKEND] - before.drops[VDEMUX_DROP_BACKEND], qs.failed);
	assert_int_equal(after.pages_free + after.pages_filling + after.pages_assigned,
			 after.pages_total);
	/* The others were not disturbed, and guest 0 receives again. */
	for (int i = 1; i < NVM; i++)
		expect_all_received(w, i);
	run_traffic(w, 20, 60, 9000, false);
	assert_true(q_stats(w, 0).flipped > qs.flipped);
	world_free(w);
}

static void test_a_flip_refused_for_lack_of_mappings_is_copied_at_the_layout_offset(void **state)
{
	struct world *w = world_new();
	struct vdemux_vnet_rxq_stats before;
	uint32_t r = 4242;

	(void)state;
	guest_setup_ex(w, 0, VNG_BIG, V1 | EVT | IND, VDEMUX_COPY_NEVER, true, false);
	guest_setup(w, 1, VNG_MERGEABLE, V1 | EVT | MRG, VDEMUX_COPY_DEFAULT);
	guest_setup(w, 2, VNG_BIG, 0, VDEMUX_COPY_NEVER);
	run_traffic(w, 20, 60, 9000, true);
	before = q_stats(w, 0);
	/* Every remap of guest 0 is refused as the KVM backend refuses it at
	 * vm.max_map_count: the frames are copied into the chain instead,
	 * header and offset as the chain expects, and none is dropped. */
	vt_fault_arm(w->g[0].fault, VT_OP_REMAP, VT_FAULT_CALL, 1, -ENOMEM, true);
	for (int b = 0; b < 30; b++) {
		burst(w, &r, 4, 60, 20000, true);
		check_engine(w);
		for (int i = 0; i < NVM; i++)
			guest_receive(w, i);
		check_engine(w);
	}
	assert_true(w->g[0].fault->fired > 0);
	vt_fault_disarm(w->g[0].fault);
	assert_true(q_stats(w, 0).copied > before.copied);
	assert_int_equal(q_stats(w, 0).failed, 0);
	assert_true(vm_stats(w, 0).fallback_copies > 0);
	assert_int_equal(vm_stats(w, 0).drops[VDEMUX_DROP_BACKEND], 0);
	for (int i = 0; i < NVM; i++)
		expect_all_received(w, i);
	world_free(w);
}

/* The guest offers again a head that is still in flight (the one it made
 * available last): the ring is broken. */
static void offer_a_head_twice(struct guest *g)
{
	uint16_t idx = g->g.avail_idx_shadow, head;
	const uint8_t *e = vng_at(
		&g->g, g->g.avail_gpa + 4 + 2ull * ((uint16_t)(idx - 1) & (g->g.o.qsize - 1)), 2);

	memcpy(&head, e, 2);
	vng_write_avail(&g->g, idx, head);
	vng_write_avail_idx(&g->g, (uint16_t)(idx + 1));
}

/* Send n frames to guest i alone through vdemux_rx_burst(). */
static void send_to(struct world *w, int i, uint32_t n, uint32_t len)
{
	static uint8_t frames[8][MAXF];
	struct vdemux_frame f[8];

	assert_true(n <= 8);
	for (uint32_t k = 0; k < n; k++) {
		uint32_t seq = w->seq++;

		seqframe_make(frames[k], w->g[i].mac, seq, len);
		w->to[seq] = (uint8_t)(1u << i);
		w->len[seq] = len;
		f[k] = (struct vdemux_frame){.data = frames[k], .len = len};
	}
	assert_int_equal(vdemux_rx_burst(w->eng, f, n), (int)n);
}

static void test_a_broken_ring_is_served_no_more_and_its_frames_are_dropped(void **state)
{
	struct world *w = world_new();
	static uint8_t used_before[2][VD_VRING_USED_BYTES(QSIZE)];
	uint64_t before;

	(void)state;
	guest_setup(w, 0, VNG_BIG, V1 | EVT | IND, VDEMUX_COPY_NEVER);
	guest_setup(w, 1, VNG_MERGEABLE, V1 | EVT | MRG, VDEMUX_COPY_DEFAULT);
	guest_setup(w, 2, VNG_BIG, V1 | EVT | IND, VDEMUX_COPY_NEVER);
	run_traffic(w, 10, 60, 9000, false);
	for (int i = 0; i < 2; i++) {
		struct guest *g = &w->g[i];
		struct vdemux_vnet_rxq_stats qs;
		struct vdemux_vm_stats vs;
		uint64_t irqs;

		/* Two frames the guest does not take yet: the queue has room to
		 * take a buffer, and finds the head offered twice. */
		send_to(w, i, 2, 1000);
		offer_a_head_twice(g);
		assert_int_equal(vdemux_vnet_rxq_kick(g->q), -EIO);
		assert_int_equal(vdemux_vnet_rxq_needs_reset(g->q), 1);
		/* The buffers it had taken are forgotten: none is posted. */
		assert_int_equal(vm_stats(w, i).posted, 0);
		memcpy(used_before[i], vng_at(&g->g, g->g.used_gpa, sizeof(used_before[i])),
		       sizeof(used_before[i]));
		qs = q_stats(w, i);
		vs = vm_stats(w, i);
		irqs = g->irqs;
		send_to(w, i, 6, 1000);
		send_to(w, i, 2, 9000);
		check_engine(w);
		/* Nothing written to the used ring, no interrupt, no frame
		 * completed: every frame for it dropped and counted. */
		assert_memory_equal(used_before[i], vng_at(&g->g, g->g.used_gpa, sizeof(used_before[i])),
				    sizeof(used_before[i]));
		assert_int_equal(g->irqs, irqs);
		assert_int_equal(q_stats(w, i).frames, qs.frames);
		assert_int_equal(q_stats(w, i).interrupts, qs.interrupts);
		assert_int_equal(vm_stats(w, i).delivered, vs.delivered);
		assert_int_equal(vm_stats(w, i).drops[VDEMUX_DROP_NO_BUFFER],
				 vs.drops[VDEMUX_DROP_NO_BUFFER] + 8);
		/* Its pages stay the guest's: all of guest RAM is still backed. */
		assert_int_equal(vm_stats(w, i).held, RAM_PAGES);
		assert_int_equal(vdemux_vnet_rxq_kick(g->q), -EIO);
	}
	/* The other guest is not disturbed. */
	before = w->g[2].received;
	send_to(w, 2, 4, 3000);
	guest_receive(w, 2);
	assert_int_equal(w->g[2].received, before + 4);
	world_free(w);
}

/* Fill every buffer the guest has posted with a byte only it writes. */
static void mark_posted_buffers(struct guest *g, uint8_t v)
{
	for (uint32_t h = 0; h < g->g.o.qsize; h++) {
		const struct vng_buf *b = &g->g.bufs[h];

		for (uint32_t k = 0; b->posted && k < b->nseg; k++)
			memset(vng_at(&g->g, b->gpa[k], b->len[k]), v, b->len[k]);
	}
}

/* Whether every byte of the buffer at head is v. */
static bool buffer_is(struct guest *g, uint16_t head, uint8_t v)
{
	const struct vng_buf *b = &g->g.bufs[head];

	for (uint32_t k = 0; k < b->nseg; k++) {
		const uint8_t *p = vng_at(&g->g, b->gpa[k], b->len[k]);

		for (uint32_t j = 0; j < b->len[k]; j++)
			if (p[j] != v)
				return false;
	}
	return true;
}

static void test_a_flip_one_of_two_tables_refuses_leaves_the_guest_its_pages(void **state)
{
	struct world *w = world_new();
	struct vdemux_engine_stats es;
	struct guest *g = &w->g[0];
	uint16_t head;
	uint32_t len;

	(void)state;
	guest_setup_ex(w, 0, VNG_BIG, V1 | EVT | IND, VDEMUX_COPY_NEVER, false, true);
	guest_setup(w, 1, VNG_MERGEABLE, V1 | EVT | MRG, VDEMUX_COPY_DEFAULT);
	guest_setup(w, 2, VNG_BIG, V1 | EVT | IND, VDEMUX_COPY_NEVER);
	run_traffic(w, 10, 60, 9000, false);
	assert_true(q_stats(w, 0).flipped > 0);
	mark_posted_buffers(g, 0x5a);
	/* The simulated MMU cleanly refuses the next map (nothing applied):
	 * the frame's new pages are not mapped, so its delivery fails. */
	vt_fault_arm(g->fault2, VT_OP_MAP, VT_FAULT_CALL, 1, -EIO, false);
	send_to(w, 0, 1, 5000);
	assert_int_equal(g->fault2->fired, 1);
	vt_fault_disarm(g->fault2);
	/* Guest RAM neither shrank nor grew: no hole in any table. */
	assert_int_equal(vm_stats(w, 0).held, RAM_PAGES);
	check_engine(w);
	assert_int_equal(vdemux_engine_stats(w->eng, &es, sizeof(es)), 0);
	assert_int_equal(es.rollback_failures, 0);
	/* The buffer came back empty, its pages the guest's, as they were. */
	assert_int_equal(vng_get_used(&g->g, &head, &len), 1);
	assert_int_equal(len, 0);
	assert_true(buffer_is(g, head, 0x5a));
	vng_release(&g->g, head);
	assert_int_equal(q_stats(w, 0).failed, 1);
	/* It receives again, every frame in order (guest_receive checks). */
	run_traffic(w, 30, 60, 9000, false);
	run_traffic(w, 30, 60, 9000, true);
	expect_all_received(w, 1);
	expect_all_received(w, 2);
	assert_true(w->g[0].received > 0);
	assert_int_equal(w->g[0].received, vm_stats(w, 0).delivered);
	world_free(w);
}

static void test_the_engine_check_finds_a_hole_in_a_queues_guest_ram(void **state)
{
	struct world *w = world_new();
	struct vdemux_engine_stats es;
	char msg[200];

	(void)state;
	guest_setup_ex(w, 0, VNG_BIG, V1 | EVT | IND, VDEMUX_COPY_NEVER, false, true);
	for (int b = 0; b < 5; b++) {
		send_to(w, 0, 4, 3000);
		guest_receive(w, 0);
	}
	/* Every map of the simulated MMU fails from now on: the old pages
	 * cannot be mapped back either, and the guest's RAM has holes. */
	vt_fault_arm(w->g[0].fault2, VT_OP_MAP, VT_FAULT_CALL, 1, -EIO, true);
	send_to(w, 0, 1, 5000);
	vt_fault_disarm(w->g[0].fault2);
	assert_int_equal(vdemux_engine_stats(w->eng, &es, sizeof(es)), 0);
	assert_true(es.rollback_failures > 0);
	assert_true(vm_stats(w, 0).held < RAM_PAGES);
	assert_int_equal(vdemux_engine_check(w->eng, msg, sizeof(msg)), -EUCLEAN);
	assert_non_null(strstr(msg, "hole"));
	/* Nothing was written where the hole is: the queue gave the buffer
	 * back empty and goes on. */
	assert_int_equal(q_stats(w, 0).failed, 1);
	vdemux_vnet_rxq_destroy(w->g[0].q);
	w->g[0].q = NULL;
	vng_fini(&w->g[0].g);
	world_free(w);
}

/* A failed flip whose old pages cannot all be mapped back: the one the
 * table refuses stays a hole, the pages before and after it are mapped
 * back all the same. */
static void test_one_refused_restore_leaves_one_hole_and_restores_the_rest(void **state)
{
	struct world *w = world_new();
	struct guest *g = &w->g[0];
	char msg[200];

	(void)state;
	/* Two tables (KVM and a simulated one without remap): a flip unmaps
	 * the chain's pages, then maps the new ones. */
	guest_setup_ex(w, 0, VNG_BIG, V1 | EVT | IND, VDEMUX_COPY_NEVER, true, true);
	for (int b = 0; b < 5; b++) {
		send_to(w, 0, 4, 3000);
		guest_receive(w, 0);
	}
	assert_int_equal(vm_stats(w, 0).held, RAM_PAGES);
	/* The first table refuses the new pages of a 3-page frame (nothing
	 * applied); mapping the old pages back, the second refuses the
	 * second of them. */
	vt_fault_arm(g->fault, VT_OP_MAP, VT_FAULT_CALL, 1, -EIO, false);
	vt_fault_arm(g->fault2, VT_OP_MAP, VT_FAULT_ENTRY, 2, -EIO, false);
	send_to(w, 0, 1, 9000);
	assert_int_equal(g->fault->fired, 1);
	assert_int_equal(g->fault2->fired, 1);
	vt_fault_disarm(g->fault);
	vt_fault_disarm(g->fault2);
	assert_int_equal(q_stats(w, 0).failed, 1);
	/* One page of guest RAM is missing: the refused one, not the third. */
	assert_int_equal(vm_stats(w, 0).held, RAM_PAGES - 1);
	assert_int_equal(vdemux_engine_check(w->eng, msg, sizeof(msg)), -EUCLEAN);
	assert_non_null(strstr(msg, "hole"));
	vdemux_vnet_rxq_destroy(w->g[0].q);
	w->g[0].q = NULL;
	vng_fini(&w->g[0].g);
	world_free(w);
}

/* The head the guest made available last. */
static uint16_t last_head(struct guest *g)
{
	uint16_t idx = g->g.avail_idx_shadow, head;

	memcpy(&head,
	       vng_at(&g->g, g->g.avail_gpa + 4 + 2ull * ((uint16_t)(idx - 1) & (g->g.o.qsize - 1)), 2),
	       2);
	return head;
}

/* Make the guest's next buffer one descriptor of len bytes over the
 * third segment's page of the big chain vng made for it (a small-layout
 * buffer, waiting for a copy); returns where it is. */
static uint64_t add_small(struct guest *g, uint32_t len)
{
	uint16_t head;
	uint64_t gpa;

	assert_int_equal(vng_add_one(&g->g), 0);
	head = last_head(g);
	gpa = g->g.bufs[head].gpa[2];
	vng_write_desc(&g->g, head, gpa, len, VD_VRING_DESC_F_WRITE, 0);
	return gpa;
}

static void test_a_waiting_buffer_over_a_hole_is_given_back_and_later_frames_still_arrive(void **state)
{
	struct world *w = world_new();
	struct guest *g = &w->g[0];
	struct vdemux_vnet_rxq_stats before, after;
	struct vdemux_vm_stats vs;
	uint64_t over, clean;
	uint32_t seq;

	(void)state;
	w->setup_empty = true;
	guest_setup_ex(w, 0, VNG_BIG, V1 | EVT, VDEMUX_COPY_NEVER, false, true);
	g->refill = false;
	/* A big chain (flipped next), a buffer over its second page and one
	 * over a page of its own (both wait for copies). */
	assert_int_equal(vng_add_one(&g->g), 0);
	over = g->g.bufs[last_head(g)].gpa[2];
	assert_int_equal(vng_add_one(&g->g), 0);
	vng_write_desc(&g->g, last_head(g), over, 2000, VD_VRING_DESC_F_WRITE, 0);
	clean = add_small(g, 2000);
	assert_int_equal(vdemux_vnet_rxq_kick(g->q), 3);
	/* The flip into the chain's two pages fails and so does putting the
	 * old pages back: the buffer waiting over the second page now lies
	 * over a hole. */
	vt_fault_arm(g->fault2, VT_OP_MAP, VT_FAULT_CALL, 1, -EIO, true);
	send_to(w, 0, 1, 5000);
	vt_fault_disarm(g->fault2);
	assert_true(vm_stats(w, 0).held < RAM_PAGES);
	before = q_stats(w, 0);
	vs = vm_stats(w, 0);
	/* The next frame is copied: the buffer over the hole is given back
	 * empty, the frame goes into the next one. */
	seq = w->seq;
	send_to(w, 0, 1, 1000);
	after = q_stats(w, 0);
	assert_int_equal(after.skipped, before.skipped + 1);
	assert_int_equal(after.frames, before.frames + 1);
	assert_int_equal(after.copied, before.copied + 1);
	assert_int_equal(vm_stats(w, 0).delivered, vs.delivered + 1);
	assert_int_equal(seqframe_first_bad(g->ram + clean + 12, seq, 1000), 1000);
	vdemux_vnet_rxq_destroy(g->q);
	g->q = NULL;
	vng_fini(&g->g);
	world_free(w);
}

static void test_a_malformed_chain_counts_as_a_buffer_taken_and_skipped(void **state)
{
	struct world *w = world_new();
	struct guest *g = &w->g[0];
	struct vdemux_vnet_rxq_stats before, after;
	uint16_t head;

	(void)state;
	guest_setup(w, 0, VNG_SMALL, V1 | EVT, VDEMUX_COPY_DEFAULT);
	g->refill = false;
	send_to(w, 0, 1, 500);
	guest_receive(w, 0);
	assert_int_equal(g->received, 1);
	before = q_stats(w, 0);
	/* One buffer, its only descriptor of length 0: malformed. */
	assert_int_equal(vng_add_one(&g->g), 0);
	head = last_head(g);
	vng_write_desc(&g->g, head, g->g.bufs[head].gpa[0], 0, VD_VRING_DESC_F_WRITE, 0);
	assert_int_equal(vdemux_vnet_rxq_kick(g->q), 1);
	after = q_stats(w, 0);
	assert_int_equal(after.buffers, before.buffers + 1);
	assert_int_equal(after.skipped, before.skipped + 1);
	assert_int_equal(after.ring_errors, before.ring_errors + 1);
	assert_int_equal(after.failed, before.failed);
	assert_int_equal(after.frames, before.frames);
	/* Given back with length 0: the guest counts a length error. */
	assert_int_equal(vng_recv(&g->g, &(struct vng_hdr){0}, w->rxbuf, sizeof(w->rxbuf)), -EBADMSG);
	/* The counters are the queue's: a device reset does not undo them. */
	assert_int_equal(vdemux_vnet_rxq_stop(g->q), 0);
	before = q_stats(w, 0);
	assert_int_equal(before.buffers, after.buffers);
	assert_int_equal(before.skipped, after.skipped);
	assert_int_equal(before.ring_errors, after.ring_errors);
	world_free(w);
}

static void test_the_error_that_breaks_the_ring_counts_as_a_ring_error(void **state)
{
	struct world *w = world_new();
	struct guest *g = &w->g[0];
	struct vdemux_vnet_rxq_stats before, after;

	(void)state;
	guest_setup(w, 0, VNG_SMALL, V1 | EVT, VDEMUX_COPY_DEFAULT);
	send_to(w, 0, 1, 500);
	before = q_stats(w, 0);
	offer_a_head_twice(g);
	assert_int_equal(vdemux_vnet_rxq_kick(g->q), -EIO);
	after = q_stats(w, 0);
	assert_int_equal(after.ring_errors, before.ring_errors + 1);
	/* The head offered twice was not taken again. */
	assert_int_equal(after.buffers, before.buffers);
	assert_int_equal(after.skipped, before.skipped);
	world_free(w);
}

/* avail_event, as the guest reads it (EVENT_IDX). */
static uint16_t avail_event(struct guest *g)
{
	uint16_t v;

	memcpy(&v, vng_at(&g->g, g->g.used_gpa + 4 + 8ull * g->g.o.qsize, 2), 2);
	return v;
}

static void test_a_kick_that_takes_everything_rearms_kicks_at_once(void **state)
{
	struct world *w = world_new();

	(void)state;
	/* Small buffers: each waits for a copy; the guest fills the ring. */
	guest_setup(w, 0, VNG_SMALL, V1 | EVT, VDEMUX_COPY_DEFAULT);
	assert_int_equal(w->g[0].g.num_free, 0);
	assert_int_equal(q_stats(w, 0).buffers, QSIZE);
	/* Everything taken: the next buffer the guest adds must kick. */
	assert_int_equal(avail_event(&w->g[0]), w->g[0].g.avail_idx_shadow);
	/* And so after it got some back and refills. */
	send_to(w, 0, 3, 500);
	w->g[0].refill = false;
	guest_receive(w, 0);
	assert_int_equal(vng_refill(&w->g[0].g), 3);
	assert_true(vng_kick_prepare(&w->g[0].g));
	assert_int_equal(vdemux_vnet_rxq_kick(w->g[0].q), 3);
	assert_int_equal(avail_event(&w->g[0]), w->g[0].g.avail_idx_shadow);
	world_free(w);
}

/* Move the data of the big-packet chain at head to offset off of its first
 * page (its indirect table's second descriptor). */
static void big_chain_data_at(struct guest *g, uint16_t head, uint32_t off)
{
	uint8_t *d = vng_at(&g->g, g->g.indirect_gpa + 512ull * head + 16, 16);
	uint64_t addr = htole64(g->g.bufs[head].gpa[0] + off);
	uint32_t len = htole32(VDEMUX_PAGE_SIZE - off);

	memcpy(d, &addr, 8);
	memcpy(d + 8, &len, 4);
	g->g.bufs[head].gpa[1] = g->g.bufs[head].gpa[0] + off;
	g->g.bufs[head].len[1] = VDEMUX_PAGE_SIZE - off;
}

static void test_a_kick_takes_every_buffer_the_guest_made_available(void **state)
{
	struct world *w = world_new();
	struct guest *g = &w->g[0];

	(void)state;
	w->qsize = 32;
	w->setup_empty = true;
	guest_setup(w, 0, VNG_BIG, V1 | EVT | IND, VDEMUX_COPY_NEVER);
	/* The first chain has its data at 64 (it sets the queue's offset),
	 * the next 19 at 32: those are filled by copy. */
	for (int k = 0; k < 20; k++) {
		assert_int_equal(vng_add_one(&g->g), 0);
		if (k == 0)
			big_chain_data_at(g, last_head(g), 64);
	}
	assert_true(vng_kick_prepare(&g->g));
	assert_int_equal(vdemux_vnet_rxq_kick(g->q), 20);
	assert_int_equal(q_stats(w, 0).buffers, 20);
	assert_int_equal(q_stats(w, 0).page_buffers, 1);
	assert_int_equal(avail_event(g), g->g.avail_idx_shadow);
	/* Every one of them receives a frame, in the order sent: the first
	 * flipped, the others copied. */
	g->refill = false;
	for (int b = 0; b < 4; b++)
		send_to(w, 0, 5, 2000 + 1000 * b);
	guest_receive(w, 0);
	assert_int_equal(g->received, 20);
	assert_int_equal(q_stats(w, 0).flipped, 1);
	assert_int_equal(q_stats(w, 0).copied, 19);
	world_free(w);
}

static void test_a_legacy_used_ring_is_where_the_transport_puts_it(void **state)
{
	struct world *w = world_new();
	struct guest *g = &w->g[0];
	uint64_t avail_end;

	(void)state;
	/* Legacy (no VERSION_1), the used ring at the next 64-byte boundary
	 * after avail (a legacy MMIO transport's QueueAlign): not 4096. */
	w->ring_align = 64;
	guest_setup(w, 0, VNG_SMALL, EVT, VDEMUX_COPY_DEFAULT);
	avail_end = g->g.avail_gpa + VD_VRING_AVAIL_BYTES(QSIZE);
	assert_int_equal(g->g.used_gpa, (avail_end + 63) & ~63ull);
	assert_true(g->g.used_gpa % 4096 != 0);
	w->ring_align = 0;
	guest_setup(w, 1, VNG_BIG, 0, VDEMUX_COPY_NEVER);
	guest_setup(w, 2, VNG_MERGEABLE, V1 | EVT | MRG, VDEMUX_COPY_DEFAULT);
	run_traffic(w, 60, 60, 1514, false);
	for (int i = 0; i < NVM; i++)
		expect_all_received(w, i);
	world_free(w);
}

static void test_a_frame_too_big_for_the_guests_buffer_is_dropped_as_too_big(void **state)
{
	struct world *w = world_new();

	(void)state;
	guest_setup(w, 0, VNG_SMALL, V1 | EVT, VDEMUX_COPY_DEFAULT);
	/* Small buffers take 1518 bytes; big-packet chains of one page after
	 * the header's, 4064 + 4096. */
	w->big_frags = 1;
	guest_setup(w, 1, VNG_BIG, V1 | EVT | IND, VDEMUX_COPY_NEVER);
	w->big_frags = 0;
	for (int i = 0; i < 2; i++) {
		struct vdemux_vnet_rxq_stats qs = q_stats(w, i);
		struct vdemux_vm_stats vs = vm_stats(w, i);
		uint16_t used, now;

		memcpy(&used, vng_at(&w->g[i].g, w->g[i].g.used_gpa + 2, 2), 2);

		send_to(w, i, 1, i ? 9000 : 1519);
		assert_int_equal(vm_stats(w, i).drops[VDEMUX_DROP_TOO_BIG],
				 vs.drops[VDEMUX_DROP_TOO_BIG] + 1);
		assert_int_equal(vm_stats(w, i).drops[VDEMUX_DROP_NO_BUFFER],
				 vs.drops[VDEMUX_DROP_NO_BUFFER]);
		/* No buffer was used: the next frame that fits takes it. */
		memcpy(&now, vng_at(&w->g[i].g, w->g[i].g.used_gpa + 2, 2), 2);
		assert_int_equal(now, used);
		assert_int_equal(q_stats(w, i).skipped, qs.skipped);
		assert_int_equal(q_stats(w, i).failed, qs.failed);
		send_to(w, i, 1, i ? 8000 : 1518);
		guest_receive(w, i);
		assert_int_equal(w->g[i].received, 1);
	}
	world_free(w);
}

/* Guest 0 takes every used entry: a buffer given back unused must hold
 * what the guest left in it (mark), byte for byte. Then it refills and
 * marks what it posted. Returns how many came back unused. */
static uint32_t take_checking_unused(struct world *w, uint8_t mark)
{
	struct guest *g = &w->g[0];
	uint32_t unused = 0, len;
	uint16_t head;

	while (vng_get_used(&g->g, &head, &len) == 1) {
		if (len == 0) {
			assert_true(buffer_is(g, head, mark));
			unused++;
		}
		vng_release(&g->g, head);
	}
	vng_refill(&g->g);
	mark_posted_buffers(g, mark);
	if (vng_kick_prepare(&g->g))
		assert_true(vdemux_vnet_rxq_kick(g->q) >= 0);
	return unused;
}

static void unused_buffers_scenario(bool stacked)
{
	struct world *w = world_new();
	struct guest *g = &w->g[0];
	uint32_t r = 99, unused = 0;

	guest_setup_ex(w, 0, VNG_BIG, V1 | EVT | IND, VDEMUX_COPY_NEVER, !stacked, stacked);
	guest_setup(w, 1, VNG_MERGEABLE, V1 | EVT | MRG, VDEMUX_COPY_DEFAULT);
	guest_setup(w, 2, VNG_BIG, V1 | EVT | IND, VDEMUX_COPY_NEVER);
	mark_posted_buffers(g, 0x3c);
	for (int b = 0; b < 40; b++) {
		/* One table refuses one batch of each burst, cleanly. */
		if (stacked)
			vt_fault_arm(g->fault2, VT_OP_MAP, VT_FAULT_CALL, 1, -EIO, false);
		else
			vt_fault_arm(g->fault, VT_OP_REMAP, VT_FAULT_CALL, 1, -EIO, false);
		burst(w, &r, 6, 60, 20000, b & 1);
		check_engine(w);
		unused += take_checking_unused(w, 0x3c);
		for (int i = 1; i < NVM; i++)
			guest_receive(w, i);
	}
	assert_true(unused > 0);
	assert_int_equal(unused, q_stats(w, 0).failed);
	world_free(w);
}

static void test_a_buffer_given_back_unused_holds_what_the_guest_left_in_it(void **state)
{
	(void)state;
	unused_buffers_scenario(false); /* one table, remap refused */
	unused_buffers_scenario(true);	/* two tables, map refused */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_big_packet_guests_receive_every_frame_by_page_flip),
		cmocka_unit_test(test_mergeable_guests_receive_every_frame_by_copy),
		cmocka_unit_test(test_small_buffer_guests_receive_every_frame_that_fits_by_copy),
		cmocka_unit_test(test_three_layouts_side_by_side_on_one_engine),
		cmocka_unit_test(test_a_guest_that_stops_refilling_does_not_stall_the_others),
		cmocka_unit_test(
			test_a_flip_the_backend_refuses_gives_the_buffer_back_empty_and_loses_no_page),
		cmocka_unit_test(test_a_flip_refused_for_lack_of_mappings_is_copied_at_the_layout_offset),
		cmocka_unit_test(test_a_broken_ring_is_served_no_more_and_its_frames_are_dropped),
		cmocka_unit_test(test_a_flip_one_of_two_tables_refuses_leaves_the_guest_its_pages),
		cmocka_unit_test(test_the_engine_check_finds_a_hole_in_a_queues_guest_ram),
		cmocka_unit_test(test_one_refused_restore_leaves_one_hole_and_restores_the_rest),
		cmocka_unit_test(
			test_a_waiting_buffer_over_a_hole_is_given_back_and_later_frames_still_arrive),
		cmocka_unit_test(test_a_malformed_chain_counts_as_a_buffer_taken_and_skipped),
		cmocka_unit_test(test_the_error_that_breaks_the_ring_counts_as_a_ring_error),
		cmocka_unit_test(test_a_kick_that_takes_everything_rearms_kicks_at_once),
		cmocka_unit_test(test_a_kick_takes_every_buffer_the_guest_made_available),
		cmocka_unit_test(test_a_legacy_used_ring_is_where_the_transport_puts_it),
		cmocka_unit_test(test_a_frame_too_big_for_the_guests_buffer_is_dropped_as_too_big),
		cmocka_unit_test(test_a_buffer_given_back_unused_holds_what_the_guest_left_in_it),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

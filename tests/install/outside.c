/* SPDX-License-Identifier: MIT */
/* A program outside the source tree, built only from the installed headers
 * and library: runs the lifecycle (post, receive, read back, release) on the
 * simulated backend and checks the invariants. Exit 0 on success. */
#include <stdio.h>
#include <string.h>

#include <vdemux/vdemux.h>

#define FAIL(...)                             \
	do {                                  \
		fprintf(stderr, __VA_ARGS__); \
		fputc('\n', stderr);          \
		return 1;                     \
	} while (0)

int main(void)
{
	struct vdemux_engine_opts eo = VDEMUX_OPTS(vdemux_engine_opts, .npages = 32);
	static const uint8_t mac[6] = {0x02, 0, 0, 0, 0, 1};
	struct vdemux_backend *sim;
	struct vdemux_completion c;
	uint8_t frame[100] = {0}, back[100];
	uint64_t gpa = 0x10000;
	vdemux_engine *eng;
	vdemux_vm_id vm;
	char msg[200];

	if (vdemux_version() >> 16 != VDEMUX_VERSION_MAJOR)
		FAIL("version mismatch");
	if (vdemux_engine_create(&eng, &eo) || vdemux_sim_create(&sim, NULL) ||
	    vdemux_engine_add_backend(eng, sim))
		FAIL("engine setup");
	struct vdemux_vm_opts vo = VDEMUX_OPTS(vdemux_vm_opts, .rx_base = 0x10000, .rx_pages = 4,
					       .backends = &sim, .n_backends = 1);
	if (vdemux_vm_add(eng, &vm, &vo) || vdemux_l2_vlan_join(vdemux_engine_l2(eng), vm, 1, 0) ||
	    vdemux_l2_add_mac(vdemux_engine_l2(eng), vm, mac, 1))
		FAIL("VM setup");
	if (vdemux_vm_post_rx(eng, vm, &gpa, 1) != 1)
		FAIL("post");
	memcpy(frame, mac, 6);
	frame[6] = 0x02;
	frame[11] = 9;
	memcpy(frame + 14, "outside", 7);
	struct vdemux_frame f = {.data = frame, .len = sizeof(frame)};
	if (vdemux_rx_burst(eng, &f, 1) != 1 || vdemux_vm_poll(eng, vm, &c, 1) != 1)
		FAIL("receive");
	if (c.gpa != gpa || c.len != sizeof(frame) || vdemux_sim_read(sim, vm, c.gpa, back, c.len) ||
	    memcmp(back, frame, sizeof(frame)))
		FAIL("read back");
	if (vdemux_vm_post_rx(eng, vm, &gpa, 1) != 1)
		FAIL("release by re-posting");
	if (vdemux_engine_check(eng, msg, sizeof(msg)))
		FAIL("invariant: %s", msg);
	vdemux_engine_destroy(eng);
	printf("outside program: lifecycle ok\n");
	return 0;
}

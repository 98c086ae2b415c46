/* SPDX-License-Identifier: MIT */
/*
 * examples/vmm's uplink (tap.c) against a datagram socket: like a TAP, it
 * gives one frame per read, cut to the reader's buffers; each datagram is a
 * VNET_HDR_LEN-byte virtio-net header then the frame, as a TAP opened with
 * IFF_VNET_HDR gives them. tap_rx() must hand the engine whole frames up to
 * VMM_FRAME_MAX bytes, and drop and count a longer one without handing on a
 * part of it or touching memory past its page stash; every frame waiting
 * goes to the engine in one submit.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "vmm.h"

struct fixture {
	struct vmm v;
	int peer; /* the sending end: the "wire" */
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	int sv[2];
	assert_non_null(f);
	struct vdemux_engine_opts eo = VDEMUX_OPTS(vdemux_engine_opts, .npages = 64,
						   .max_frame = VMM_FRAME_MAX);
	assert_int_equal(vdemux_engine_create(&f->v.lane[0].eng, &eo), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	/* Room for a few frames of 128 KiB in flight. */
	int sz = 1 << 20;
	setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
	setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
	f->v.lane[0].tap.fd = sv[0];
	f->v.lane[0].v = &f->v;
	f->v.nlanes = 1;
	f->peer = sv[1];
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	tap_rx_stop(&f->v);
	char msg[256] = "";
	assert_int_equal(vdemux_engine_check(f->v.lane[0].eng, msg, sizeof msg), 0);
	vdemux_engine_destroy(f->v.lane[0].eng);
	close(f->v.lane[0].tap.fd);
	close(f->peer);
	free(f);
	return 0;
}

/* A header (@hdr_flags in its flags, no GSO), then @len bytes of frame. */
static void send_frame_flags(struct fixture *f, size_t len, uint8_t hdr_flags)
{
	uint8_t *buf = malloc(VNET_HDR_LEN + len);
	assert_non_null(buf);
	memset(buf, 0, VNET_HDR_LEN);
	buf[0] = hdr_flags;
	memset(buf + VNET_HDR_LEN, 0xa5, len);
	memset(buf + VNET_HDR_LEN, 0xff,
	       len < 6 ? len : 6); /* broadcast: no guest, dropped by the engine after counting */
	assert_int_equal(send(f->peer, buf, VNET_HDR_LEN + len, 0), (ssize_t)(VNET_HDR_LEN + len));
	free(buf);
}

static void send_frame(struct fixture *f, size_t len)
{
	send_frame_flags(f, len, 0);
}

static struct vdemux_engine_stats engine_stats(struct fixture *f)
{
	struct vdemux_engine_stats es;
	memset(&es, 0, sizeof es);
	assert_int_equal(vdemux_engine_stats(f->v.lane[0].eng, &es, sizeof es), 0);
	return es;
}

static void test_frame_of_vmm_frame_max_bytes_is_submitted_whole(void **state)
{
	struct fixture *f = *state;
	send_frame(f, VMM_FRAME_MAX);
	assert_int_equal(tap_rx(&f->v.lane[0]), 1);
	struct vdemux_engine_stats es = engine_stats(f);
	assert_int_equal(es.rx_frames, 1);
	assert_int_equal(es.rx_bytes, VMM_FRAME_MAX);
	assert_int_equal(f->v.lane[0].tap.rx_frames, 1);
	assert_int_equal(f->v.lane[0].tap.rx_bytes, VMM_FRAME_MAX);
	assert_int_equal(f->v.lane[0].tap.rx_oversize, 0);
	assert_int_equal(f->v.lane[0].tap.rx_short, 0);
}

static void test_frame_one_byte_over_is_dropped_and_counted(void **state)
{
	struct fixture *f = *state;
	send_frame(f, VMM_FRAME_MAX + 1);
	assert_int_equal(tap_rx(&f->v.lane[0]), 0);
	assert_int_equal(f->v.lane[0].tap.rx_oversize, 1);
	assert_int_equal(f->v.lane[0].tap.rx_frames, 0);
	assert_int_equal(engine_stats(f).rx_frames, 0);
	/* The pages stay lent for the next read: the stash is whole. */
	assert_int_equal(f->v.lane[0].tap.nstash, TAP_IOV);
}

static void test_frames_far_over_the_stash_are_dropped_and_the_next_frame_passes(void **state)
{
	struct fixture *f = *state;
	send_frame(f, 2 * VMM_FRAME_MAX);
	send_frame(f, 100000);
	send_frame(f, 1500);
	assert_int_equal(tap_rx(&f->v.lane[0]), 1);
	assert_int_equal(f->v.lane[0].tap.rx_oversize, 2);
	assert_int_equal(f->v.lane[0].tap.rx_frames, 1);
	assert_int_equal(f->v.lane[0].tap.rx_bytes, 1500);
	struct vdemux_engine_stats es = engine_stats(f);
	assert_int_equal(es.rx_frames, 1);
	assert_int_equal(es.rx_bytes, 1500);
	assert_true(f->v.lane[0].tap.nstash <= TAP_IOV);
}

static void test_read_under_an_ethernet_header_is_counted_short(void **state)
{
	struct fixture *f = *state;
	send_frame(f, 13); /* with its header: a read of 25 bytes */
	send_frame(f, 60);
	assert_int_equal(tap_rx(&f->v.lane[0]), 1);
	assert_int_equal(f->v.lane[0].tap.rx_short, 1);
	assert_int_equal(f->v.lane[0].tap.rx_frames, 1);
	assert_int_equal(f->v.lane[0].tap.rx_oversize, 0);
}

static void test_every_waiting_frame_goes_in_one_submit(void **state)
{
	struct fixture *f = *state;
	for (int i = 0; i < 5; i++)
		send_frame(f, 60 + 100 * (size_t)i);
	assert_int_equal(tap_rx(&f->v.lane[0]), 5);
	assert_int_equal(f->v.lane[0].tap.rx_bursts, 1);
	assert_int_equal(f->v.lane[0].tap.rx_frames, 5);
	struct vdemux_engine_stats es = engine_stats(f);
	assert_int_equal(es.rx_frames, 5);
	assert_int_equal(es.rx_bytes, 5 * 60 + 100 * (0 + 1 + 2 + 3 + 4));
}

static void test_a_burst_stops_at_tap_burst_frames_and_the_next_takes_the_rest(void **state)
{
	struct fixture *f = *state;
	for (unsigned i = 0; i < TAP_BURST + 3; i++)
		send_frame(f, 100);
	assert_int_equal(tap_rx(&f->v.lane[0]), TAP_BURST + 3);
	assert_int_equal(f->v.lane[0].tap.rx_bursts, 2);
	assert_int_equal(engine_stats(f).rx_frames, TAP_BURST + 3);
}

static void test_header_with_needs_csum_is_counted_and_the_frame_passes(void **state)
{
	struct fixture *f = *state;
	send_frame_flags(f, 100, 0x2); /* DATA_VALID: nothing to check against the frame */
	send_frame_flags(f, 100,
			 0x1); /* NEEDS_CSUM with csum_start 0: a checksum the engine may finish */
	assert_int_equal(tap_rx(&f->v.lane[0]), 2);
	assert_int_equal(f->v.lane[0].tap.rx_csum, 1);
	assert_int_equal(f->v.lane[0].tap.rx_gso, 0);
	assert_int_equal(engine_stats(f).rx_frames, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_frame_of_vmm_frame_max_bytes_is_submitted_whole,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_frame_one_byte_over_is_dropped_and_counted, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			test_frames_far_over_the_stash_are_dropped_and_the_next_frame_passes, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_read_under_an_ethernet_header_is_counted_short,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_every_waiting_frame_goes_in_one_submit, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			test_a_burst_stops_at_tap_burst_frames_and_the_next_takes_the_rest, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_header_with_needs_csum_is_counted_and_the_frame_passes, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * examples/vmm's uplink (tap.c) against a datagram socket: like a TAP, it
 * gives one frame per read, cut to the reader's buffers. tap_rx() must hand
 * the engine whole frames up to TAP_FRAME_MAX bytes, and drop and count a
 * longer one without handing on a part of it or touching memory past its
 * page stash.
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
	struct vdemux_engine_opts eo = VDEMUX_OPTS(vdemux_engine_opts, .npages = 64);
	assert_int_equal(vdemux_engine_create(&f->v.eng, &eo), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	/* Room for a few frames of 128 KiB in flight. */
	int sz = 1 << 20;
	setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
	setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
	f->v.tap.fd = sv[0];
	f->peer = sv[1];
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	tap_rx_stop(&f->v);
	char msg[256] = "";
	assert_int_equal(vdemux_engine_check(f->v.eng, msg, sizeof msg), 0);
	vdemux_engine_destroy(f->v.eng);
	close(f->v.tap.fd);
	close(f->peer);
	free(f);
	return 0;
}

static void send_frame(struct fixture *f, size_t len)
{
	uint8_t *buf = malloc(len);
	assert_non_null(buf);
	memset(buf, 0xa5, len);
	memset(buf, 0xff, 6); /* broadcast: no guest, dropped by the engine after counting */
	assert_int_equal(send(f->peer, buf, len, 0), (ssize_t)len);
	free(buf);
}

static struct vdemux_engine_stats engine_stats(struct fixture *f)
{
	struct vdemux_engine_stats es;
	memset(&es, 0, sizeof es);
	assert_int_equal(vdemux_engine_stats(f->v.eng, &es, sizeof es), 0);
	return es;
}

static void test_frame_of_tap_frame_max_bytes_is_submitted_whole(void **state)
{
	struct fixture *f = *state;
	send_frame(f, TAP_FRAME_MAX);
	assert_int_equal(tap_rx(&f->v), 1);
	struct vdemux_engine_stats es = engine_stats(f);
	assert_int_equal(es.rx_frames, 1);
	assert_int_equal(es.rx_bytes, TAP_FRAME_MAX);
	assert_int_equal(f->v.tap.rx_frames, 1);
	assert_int_equal(f->v.tap.rx_bytes, TAP_FRAME_MAX);
	assert_int_equal(f->v.tap.rx_oversize, 0);
	assert_int_equal(f->v.tap.rx_short, 0);
}

static void test_frame_one_byte_over_is_dropped_and_counted(void **state)
{
	struct fixture *f = *state;
	send_frame(f, TAP_FRAME_MAX + 1);
	assert_int_equal(tap_rx(&f->v), 0);
	assert_int_equal(f->v.tap.rx_oversize, 1);
	assert_int_equal(f->v.tap.rx_frames, 0);
	assert_int_equal(engine_stats(f).rx_frames, 0);
	/* The pages stay lent for the next read: the stash is whole. */
	assert_int_equal(f->v.tap.nstash, TAP_IOV);
}

static void test_frames_far_over_the_stash_are_dropped_and_the_next_frame_passes(void **state)
{
	struct fixture *f = *state;
	send_frame(f, 2 * TAP_FRAME_MAX);
	send_frame(f, 100000);
	send_frame(f, 1500);
	assert_int_equal(tap_rx(&f->v), 1);
	assert_int_equal(f->v.tap.rx_oversize, 2);
	assert_int_equal(f->v.tap.rx_frames, 1);
	assert_int_equal(f->v.tap.rx_bytes, 1500);
	struct vdemux_engine_stats es = engine_stats(f);
	assert_int_equal(es.rx_frames, 1);
	assert_int_equal(es.rx_bytes, 1500);
	assert_true(f->v.tap.nstash <= TAP_IOV);
}

static void test_read_under_an_ethernet_header_is_counted_short(void **state)
{
	struct fixture *f = *state;
	send_frame(f, 13);
	send_frame(f, 60);
	assert_int_equal(tap_rx(&f->v), 1);
	assert_int_equal(f->v.tap.rx_short, 1);
	assert_int_equal(f->v.tap.rx_frames, 1);
	assert_int_equal(f->v.tap.rx_oversize, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_frame_of_tap_frame_max_bytes_is_submitted_whole, setup, teardown),
		cmocka_unit_test_setup_teardown(test_frame_one_byte_over_is_dropped_and_counted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_frames_far_over_the_stash_are_dropped_and_the_next_frame_passes,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_under_an_ethernet_header_is_counted_short, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

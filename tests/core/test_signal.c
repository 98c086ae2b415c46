/* SPDX-License-Identifier: MIT */
/*
 * Signalling: callbacks and eventfds, one signal per VM per burst, release
 * requests when the pool is low, vdemux_vm_take_signals().
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "vt.h"

static struct vt_fx *fx_with(void **state, uint32_t npages, uint32_t low_watermark)
{
	struct vt_fx_opts o = {0};

	o.eng = VDEMUX_OPTS(vdemux_engine_opts, .npages = npages, .low_watermark = low_watermark,
			    .copy = VDEMUX_COPY_NEVER);
	return vt_fx_state(state, &o);
}

/* A VM signalled through eventfds (and a release fd if @release_fd). */
struct efd_vm {
	struct vt_vm *vm;
	int fd, rfd;
};

static struct efd_vm efd_vm_posted(struct vt_fx *fx, uint32_t pages, bool release_fd)
{
	struct vdemux_vm_opts o = vt_vm_opts(fx, pages);
	struct efd_vm e;

	e.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	e.rfd = release_fd ? eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC) : -1;
	assert_true(e.fd >= 0);
	memset(&o.signal, 0, sizeof(o.signal));
	o.signal.kind = VDEMUX_SIGNAL_EVENTFD;
	o.signal.fd = e.fd;
	o.signal.release_fd = e.rfd;
	o.signal.flags = release_fd ? VDEMUX_SIGNAL_F_RELEASE_FD : 0;
	o.flags = VDEMUX_VM_F_UNPOPULATED;
	e.vm = vt_vm_add(fx, &o);
	vt_post_range(fx, e.vm, 0, pages);
	return e;
}

static void efd_close(struct efd_vm *e)
{
	close(e->fd);
	if (e->rfd >= 0)
		close(e->rfd);
}

static void test_callback_fires_once_per_vm_per_burst(void **state)
{
	struct vt_fx *fx = fx_with(state, 64, 0);
	struct vt_vm *a = vt_vm_posted(fx, 8, VDEMUX_VM_F_UNPOPULATED),
		     *b2 = vt_vm_posted(fx, 8, VDEMUX_VM_F_UNPOPULATED),
		     *c = vt_vm_posted(fx, 8, VDEMUX_VM_F_UNPOPULATED);
	struct vt_burst b = {0};
	struct vdemux_engine_stats s0 = vt_stats(fx);

	for (int i = 0; i < 6; i++)
		vt_burst_add(fx, &b, a->id, 500);
	for (int i = 0; i < 3; i++)
		vt_burst_add(fx, &b, b2->id, 500);
	vt_sig_reset(fx);
	assert_int_equal(vdemux_rx_burst(fx->eng, b.f, b.n), (int)b.n);
	assert_int_equal(a->sig_calls, 1);
	assert_int_equal(a->sig_reasons, VDEMUX_SIG_RX);
	assert_int_equal(b2->sig_calls, 1);
	assert_int_equal(b2->sig_reasons, VDEMUX_SIG_RX);
	assert_int_equal(c->sig_calls, 0);
	assert_int_equal(vt_stats(fx).signals, s0.signals + 2);
	assert_int_equal(vt_vm_stats(fx, a).signals, 1);
	assert_int_equal(vt_vm_stats(fx, c).signals, 0);
	vt_burst_free(&b);
	vt_check(fx);
}

static void test_broadcast_signals_each_vm_once(void **state)
{
	struct vt_fx *fx = fx_with(state, 64, 0);
	struct vt_vm *v[3];

	for (int i = 0; i < 3; i++)
		v[i] = vt_vm_posted(fx, 8, VDEMUX_VM_F_UNPOPULATED);
	vt_sig_reset(fx);
	vt_send(fx, NULL, 4, 200, 4);
	for (int i = 0; i < 3; i++)
		assert_int_equal(v[i]->sig_calls, 1);
	vt_check(fx);
}

static void test_no_signal_when_nothing_is_delivered(void **state)
{
	struct vt_fx *fx = fx_with(state, 64, 0);
	struct vdemux_vm_opts o = vt_vm_opts(fx, 4);
	struct vt_vm *a = vt_vm_add(fx, &o); /* nothing posted */
	struct vdemux_engine_stats s0 = vt_stats(fx);

	vt_sig_reset(fx);
	vt_send(fx, a, 3, 200, 3);
	assert_int_equal(a->sig_calls, 0);
	assert_int_equal(vt_stats(fx).signals, s0.signals);
}

static void test_each_burst_signals_again(void **state)
{
	struct vt_fx *fx = fx_with(state, 64, 0);
	struct vt_vm *a = vt_vm_posted(fx, 8, VDEMUX_VM_F_UNPOPULATED);

	vt_sig_reset(fx);
	vt_send(fx, a, 2, 200, 2);
	vt_send(fx, a, 2, 200, 2);
	assert_int_equal(a->sig_calls, 2);
}

static void test_callback_may_poll_its_completions(void **state)
{
	struct vt_fx *fx = fx_with(state, 64, 0);
	struct vt_vm *a = vt_vm_posted(fx, 8, VDEMUX_VM_F_UNPOPULATED);

	a->poll_in_cb = true;
	vt_sig_reset(fx);
	vt_send(fx, a, 5, 300, 5);
	assert_int_equal(a->sig_calls, 1);
	assert_int_equal(a->sig_polled, 5); /* all queued before the signal */
	assert_int_equal(vt_vm_stats(fx, a).pending, 0);
	vt_check(fx);
}

static void test_zero_copy_submit_signals_once_per_vm(void **state)
{
	struct vt_fx *fx = fx_with(state, 64, 0);
	struct vt_vm *a = vt_vm_posted(fx, 8, VDEMUX_VM_F_UNPOPULATED);
	struct vdemux_rx_buf bufs[4];
	uint8_t dst[6];

	vt_mac(a->id, dst);
	assert_int_equal(vdemux_rx_alloc(fx->eng, bufs, 4), 4);
	for (int i = 0; i < 4; i++) {
		vt_frame_fill(bufs[i].data, 100, dst, 900 + (uint32_t)i);
		bufs[i].len = 100;
		bufs[i].flags = 0;
	}
	vt_sig_reset(fx);
	assert_int_equal(vdemux_rx_submit(fx->eng, bufs, 4), 4);
	assert_int_equal(a->sig_calls, 1);
	assert_int_equal(a->sig_reasons, VDEMUX_SIG_RX);
}

static void test_eventfd_is_written_once_per_burst(void **state)
{
	struct vt_fx *fx = fx_with(state, 64, 0);
	struct efd_vm e = efd_vm_posted(fx, 8, false);

	vt_send(fx, e.vm, 3, 400, 3);
	assert_int_equal(vt_efd_read(e.fd), 1);
	assert_int_equal(vt_efd_read(e.fd), 0);
	vt_send(fx, e.vm, 2, 400, 2);
	vt_send(fx, e.vm, 1, 400, 1);
	assert_int_equal(vt_efd_read(e.fd), 2); /* the counter adds up across bursts */
	assert_int_equal(vt_vm_stats(fx, e.vm).signals, 3);
	efd_close(&e);
}

static void test_take_signals_reads_and_clears_the_reasons(void **state)
{
	struct vt_fx *fx = fx_with(state, 64, 0);
	struct efd_vm e = efd_vm_posted(fx, 8, false);

	assert_int_equal(vdemux_vm_take_signals(fx->eng, e.vm->id), 0);
	vt_send(fx, e.vm, 1, 400, 1);
	assert_int_equal(vdemux_vm_take_signals(fx->eng, e.vm->id), VDEMUX_SIG_RX);
	assert_int_equal(vdemux_vm_take_signals(fx->eng, e.vm->id), 0);
	assert_int_equal(vdemux_vm_request_release(fx->eng, e.vm->id), 0);
	vt_send(fx, e.vm, 1, 400, 1);
	assert_int_equal(vdemux_vm_take_signals(fx->eng, e.vm->id), VDEMUX_SIG_RX | VDEMUX_SIG_RELEASE);
	assert_int_equal(vdemux_vm_take_signals(fx->eng, e.vm->id), 0);
	efd_close(&e);
}

static void test_request_release_signals_the_vm_now(void **state)
{
	struct vt_fx *fx = fx_with(state, 64, 0);
	struct vt_vm *a = vt_vm_posted(fx, 4, VDEMUX_VM_F_UNPOPULATED);
	struct vdemux_engine_stats s0 = vt_stats(fx);

	vt_sig_reset(fx);
	assert_int_equal(vdemux_vm_request_release(fx->eng, a->id), 0);
	assert_int_equal(a->sig_calls, 1);
	assert_int_equal(a->sig_last, VDEMUX_SIG_RELEASE);
	assert_int_equal(vt_stats(fx).release_requests, s0.release_requests + 1);
	assert_int_equal(vdemux_vm_request_release(fx->eng, 0x7fffffff), -ENOENT);
	assert_int_equal(vdemux_vm_request_release(NULL, a->id), -EINVAL);
}

static void test_release_fd_carries_release_requests_apart(void **state)
{
	struct vt_fx *fx = fx_with(state, 64, 0);
	struct efd_vm e = efd_vm_posted(fx, 8, true);

	assert_int_equal(vdemux_vm_request_release(fx->eng, e.vm->id), 0);
	assert_int_equal(vt_efd_read(e.rfd), 1);
	assert_int_equal(vt_efd_read(e.fd), 0);
	vt_send(fx, e.vm, 2, 400, 2);
	assert_int_equal(vt_efd_read(e.fd), 1);
	assert_int_equal(vt_efd_read(e.rfd), 0);
	assert_int_equal(vdemux_vm_take_signals(fx->eng, e.vm->id), VDEMUX_SIG_RX | VDEMUX_SIG_RELEASE);
	efd_close(&e);
}

static void test_release_goes_to_fd_without_release_fd_flag(void **state)
{
	struct vt_fx *fx = fx_with(state, 64, 0);
	struct efd_vm e = efd_vm_posted(fx, 8, false);

	assert_int_equal(vdemux_vm_request_release(fx->eng, e.vm->id), 0);
	assert_int_equal(vt_efd_read(e.fd), 1);
	efd_close(&e);
}

static void test_pool_below_low_watermark_asks_holders_to_release(void **state)
{
	struct vt_fx *fx = fx_with(state, 16, 8);
	struct vt_vm *a = vt_vm_posted(fx, 16, VDEMUX_VM_F_UNPOPULATED);
	struct vdemux_engine_stats s0 = vt_stats(fx);

	vt_sig_reset(fx);
	vt_send(fx, a, 10, 1000, 10); /* 6 pages left: below 8 */
	assert_int_equal(vt_stats(fx).pages_free, 6);
	assert_int_equal(a->sig_calls, 1); /* one signal for the burst, both reasons */
	assert_int_equal(a->sig_reasons, VDEMUX_SIG_RX | VDEMUX_SIG_RELEASE);
	assert_true(vt_stats(fx).release_requests > s0.release_requests);
	vt_check(fx);
}

static void test_pool_above_low_watermark_asks_nothing(void **state)
{
	struct vt_fx *fx = fx_with(state, 16, 8);
	struct vt_vm *a = vt_vm_posted(fx, 16, VDEMUX_VM_F_UNPOPULATED);
	struct vdemux_engine_stats s0 = vt_stats(fx);

	vt_sig_reset(fx);
	vt_send(fx, a, 8, 1000, 8); /* 8 left: not below 8 */
	assert_int_equal(a->sig_reasons, VDEMUX_SIG_RX);
	assert_int_equal(vt_stats(fx).release_requests, s0.release_requests);
}

static void test_low_watermark_zero_never_asks(void **state)
{
	struct vt_fx *fx = fx_with(state, 16, 0);
	struct vt_vm *a = vt_vm_posted(fx, 16, VDEMUX_VM_F_UNPOPULATED);

	vt_sig_reset(fx);
	vt_send(fx, a, 15, 1000, 15); /* 1 page left */
	assert_int_equal(a->sig_reasons, VDEMUX_SIG_RX);
	assert_int_equal(vt_stats(fx).release_requests, 0);
}

static void test_pool_running_out_mid_burst_asks_for_release(void **state)
{
	struct vt_fx *fx = fx_with(state, 4, 0);
	struct vt_vm *a = vt_vm_posted(fx, 8, VDEMUX_VM_F_UNPOPULATED);

	vt_sig_reset(fx);
	vt_send(fx, a, 6, 1000, 4);
	assert_int_equal(a->sig_calls, 1);
	assert_true(a->sig_reasons & VDEMUX_SIG_RELEASE);
	assert_true(vt_stats(fx).release_requests >= 1);
	vt_check(fx);
}

static void test_vm_add_refuses_incomplete_signal_config(void **state)
{
	struct vt_fx *fx = fx_with(state, 16, 0);
	struct vdemux_vm_opts o = vt_vm_opts(fx, 2);
	vdemux_vm_id id = 0;
	int fd = eventfd(0, EFD_NONBLOCK);

	o.flags = VDEMUX_VM_F_UNPOPULATED;
	o.signal.cb = NULL; /* callback kind without a callback */
	assert_int_equal(vdemux_vm_add(fx->eng, &id, &o), -EINVAL);
	memset(&o.signal, 0, sizeof(o.signal));
	o.signal.kind = VDEMUX_SIGNAL_EVENTFD;
	o.signal.fd = -1;
	assert_int_equal(vdemux_vm_add(fx->eng, &id, &o), -EINVAL);
	o.signal.fd = fd;
	o.signal.flags = VDEMUX_SIGNAL_F_RELEASE_FD;
	o.signal.release_fd = -1;
	assert_int_equal(vdemux_vm_add(fx->eng, &id, &o), -EINVAL);
	o.signal.flags = 0x80;
	o.signal.release_fd = -1;
	assert_int_equal(vdemux_vm_add(fx->eng, &id, &o), -EINVAL);
	o.signal.kind = (enum vdemux_signal_kind)9;
	assert_int_equal(vdemux_vm_add(fx->eng, &id, &o), -EINVAL);
	assert_int_equal(id, 0);
	close(fd);
	vt_check(fx);
}

static void test_signal_none_still_queues_completions(void **state)
{
	struct vt_fx *fx = fx_with(state, 16, 0);
	struct vdemux_vm_opts o = vt_vm_opts(fx, 2);
	struct vt_vm *a;

	memset(&o.signal, 0, sizeof(o.signal));
	o.flags = VDEMUX_VM_F_UNPOPULATED;
	a = vt_vm_add(fx, &o);
	vt_post_range(fx, a, 0, 2);
	vt_send(fx, a, 2, 100, 2);
	assert_int_equal(vt_guest_take(fx, a, NULL, 2), 2);
	vt_check(fx);
}

#define T(f) cmocka_unit_test_setup_teardown(f, vt_setup, vt_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_callback_fires_once_per_vm_per_burst),
		T(test_broadcast_signals_each_vm_once),
		T(test_no_signal_when_nothing_is_delivered),
		T(test_each_burst_signals_again),
		T(test_callback_may_poll_its_completions),
		T(test_zero_copy_submit_signals_once_per_vm),
		T(test_eventfd_is_written_once_per_burst),
		T(test_take_signals_reads_and_clears_the_reasons),
		T(test_request_release_signals_the_vm_now),
		T(test_release_fd_carries_release_requests_apart),
		T(test_release_goes_to_fd_without_release_fd_flag),
		T(test_pool_below_low_watermark_asks_holders_to_release),
		T(test_pool_above_low_watermark_asks_nothing),
		T(test_low_watermark_zero_never_asks),
		T(test_pool_running_out_mid_burst_asks_for_release),
		T(test_vm_add_refuses_incomplete_signal_config),
		T(test_signal_none_still_queues_completions),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: MIT */
/*
 * lab_xfer: one TCP transfer, written and read in large chunks, for
 * compare-qemu.sh's guests and its lab.
 *
 *   lab_xfer send HOST PORT FILE [CHUNK]   connect, write FILE, close
 *   lab_xfer recv PORT FILE [CHUNK]        accept one connection, write
 *                                          what it brings into FILE until
 *                                          the sender closes
 *
 * CHUNK is the bytes of each write() to (or read() from) the socket,
 * 131072 by default (what iperf3 writes over TCP). busybox nc moves 1024
 * bytes a call: a sender that slow to fill its socket leaves TCP nothing
 * to put in a large segment, and how large its segments are then depends
 * on how soon the receiver's ACKs come back, not on the device in between.
 *
 * Exit status 0 when every byte was moved, 1 otherwise (a message on
 * stderr), 2 on a usage error.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int fail(const char *what)
{
	fprintf(stderr, "lab_xfer: %s: %s\n", what, strerror(errno));
	return 1;
}

/* All of @len bytes of @buf to @fd. */
static int write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* From @in to @out in reads of @chunk bytes until @in ends. */
static int pump(int in, int out, char *buf, size_t chunk)
{
	for (;;) {
		ssize_t n = read(in, buf, chunk);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return fail("read");
		if (n == 0)
			return 0;
		if (write_all(out, buf, (size_t)n) < 0)
			return fail("write");
	}
}

static int do_send(const char *host, int port, const char *path, char *buf, size_t chunk)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	if (inet_pton(AF_INET, host, &a.sin_addr) != 1) {
		fprintf(stderr, "lab_xfer: not an IPv4 address: %s\n", host);
		return 2;
	}
	int in = open(path, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return fail(path);
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return fail("socket");
	if (connect(s, (struct sockaddr *)&a, sizeof a) < 0)
		return fail("connect");
	int r = pump(in, s, buf, chunk);
	if (r == 0 && close(s) < 0)
		return fail("close");
	close(in);
	return r;
}

static int do_recv(int port, const char *path, char *buf, size_t chunk)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)port),
				.sin_addr.s_addr = htonl(INADDR_ANY)};
	int one = 1;
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l < 0)
		return fail("socket");
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, 1) < 0)
		return fail("listen");
	int out = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (out < 0)
		return fail(path);
	int s = accept(l, NULL, NULL);
	if (s < 0)
		return fail("accept");
	close(l);
	int r = pump(s, out, buf, chunk);
	if (close(out) < 0 && r == 0)
		return fail("close");
	close(s);
	return r;
}

int main(int argc, char **argv)
{
	const char *usage = "usage: lab_xfer send HOST PORT FILE [CHUNK] | recv PORT FILE [CHUNK]\n";
	int is_send = argc >= 2 && strcmp(argv[1], "send") == 0;
	int nargs = is_send ? 5 : 4;
	if (argc < 2 || (!is_send && strcmp(argv[1], "recv") != 0) || argc < nargs || argc > nargs + 1) {
		fputs(usage, stderr);
		return 2;
	}
	long port = strtol(argv[is_send ? 3 : 2], NULL, 10);
	long chunk = argc > nargs ? strtol(argv[nargs], NULL, 10) : 131072;
	if (port <= 0 || port > 65535 || chunk <= 0 || chunk > (1l << 24)) {
		fputs(usage, stderr);
		return 2;
	}
	char *buf = malloc((size_t)chunk);
	if (!buf)
		return fail("malloc");
	int r = is_send ? do_send(argv[2], (int)port, argv[4], buf, (size_t)chunk)
			: do_recv((int)port, argv[3], buf, (size_t)chunk);
	free(buf);
	return r;
}

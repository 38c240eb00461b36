// The measured workload of bench/accel: a server process and a client process (fork) on one
// loopback connection, blocking sockets and plain syscalls, so the figures are the kernel's and
// not a runtime's. Both processes stay in the caller's cgroup (accel or not is decided there).
//   accel-peer rr N SIZE [CPUS]     N request/response round trips of SIZE bytes (the first N/10
//                                   not counted); prints "p50 p99" in microseconds
//   accel-peer bulk BYTES W [CPUS]  the client sends BYTES in writes of W bytes; prints MB/s
// CPUS "s,c" pins the server to CPU s and the client to CPU c; "-" leaves both to the scheduler.
// OPTS "spin": read with MSG_DONTWAIT in a loop instead of sleeping (no wake-ups: what is left is
// the syscalls and the path between the sockets; needs two CPUs).
//   accel-peer floor N [CPUS]       what any transport pays here: one syscall (ns) and a 1-byte
//                                   round trip over two pipes between the two processes (us)
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int spin;

static void die(const char *what)
{
	fprintf(stderr, "accel-peer: %s: %s\n", what, strerror(errno));
	exit(1);
}

static long long now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void pin(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set) != 0)
		die("sched_setaffinity");
}

static void nodelay(int fd)
{
	int one = 1;

	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0)
		die("TCP_NODELAY");
}

/* A blocking recv on a redirected socket can return EAGAIN (a spurious wake-up in the kernel's
 * tcp_bpf_recvmsg; see test/kernel/accel-semantics): wait for readiness and read again. */
static ssize_t recv_some(int fd, char *buf, size_t len)
{
	for (;;) {
		ssize_t n = recv(fd, buf, len, spin ? MSG_DONTWAIT : 0);
		struct pollfd p = { .fd = fd, .events = POLLIN };

		if (n >= 0)
			return n;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			die("recv");
		if (!spin)
			poll(&p, 1, -1);
	}
}

static void recv_all(int fd, char *buf, size_t len)
{
	for (size_t got = 0; got < len;) {
		ssize_t n = recv_some(fd, buf + got, len - got);

		if (n == 0) {
			fprintf(stderr, "accel-peer: peer closed early\n");
			exit(1);
		}
		got += n;
	}
}

static void send_all(int fd, const char *buf, size_t len)
{
	for (size_t sent = 0; sent < len;) {
		ssize_t n = send(fd, buf + sent, len - sent, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("send");
		}
		sent += n;
	}
}

static int cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;

	return (x > y) - (x < y);
}

static void serve(int fd, int rr, long long count, size_t size, char *buf, size_t buflen)
{
	if (rr) {
		for (long long i = 0; i < count; i++) {
			recv_all(fd, buf, size);
			send_all(fd, buf, size);
		}
		return;
	}
	while (recv_some(fd, buf, buflen) > 0)
		;
	send_all(fd, "k", 1);
}

static void round_trips(int fd, long long count, size_t size, char *buf)
{
	long long warm = count / 10, *lat = malloc(sizeof(*lat) * count);

	if (!lat)
		die("malloc");
	for (long long i = 0; i < count; i++) {
		long long t = now_ns();

		send_all(fd, buf, size);
		recv_all(fd, buf, size);
		lat[i] = now_ns() - t;
	}
	count -= warm;
	qsort(lat + warm, count, sizeof(*lat), cmp_ll);
	printf("%.2f %.2f\n", lat[warm + count / 2] / 1e3, lat[warm + count * 99 / 100] / 1e3);
}

static void bulk(int fd, long long bytes, size_t write_size, char *buf)
{
	long long t = now_ns(), sent = 0;

	for (; sent < bytes; sent += write_size)
		send_all(fd, buf, write_size);
	if (shutdown(fd, SHUT_WR) != 0)
		die("shutdown");
	recv_all(fd, buf, 1); /* the server's "k": it has read everything */
	printf("%.1f\n", sent / ((now_ns() - t) / 1e9) / 1e6);
}

/* No TCP at all: the part of a blocking round trip that no redirect can remove. */
static int floor_costs(long long n, int server_cpu, int client_cpu)
{
	int ab[2], ba[2], status;
	long long t;
	char c = 'x';
	pid_t pid;

	if (n <= 0 || pipe(ab) || pipe(ba))
		return 2;
	t = now_ns();
	for (long long i = 0; i < n; i++)
		syscall(SYS_getppid);
	printf("%.0f ", (double)(now_ns() - t) / n);
	pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		pin(server_cpu);
		for (long long i = 0; i < n; i++)
			if (read(ab[0], &c, 1) != 1 || write(ba[1], &c, 1) != 1)
				_exit(1);
		_exit(0);
	}
	pin(client_cpu);
	t = now_ns();
	for (long long i = 0; i < n; i++)
		if (write(ab[1], &c, 1) != 1 || read(ba[0], &c, 1) != 1)
			die("pipe");
	printf("%.2f\n", (double)(now_ns() - t) / n / 1e3);
	return waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status);
}

int main(int argc, char **argv)
{
	int server_cpu = -1, client_cpu = -1, rr, lfd, fd, status;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	long long count;
	size_t size, buflen = 1 << 20;
	char *buf;
	pid_t pid;

	if (argc >= 3 && !strcmp(argv[1], "floor")) {
		if (argc > 3 && strcmp(argv[3], "-") && sscanf(argv[3], "%d,%d", &server_cpu, &client_cpu) != 2)
			return 2;
		return floor_costs(atoll(argv[2]), server_cpu, client_cpu);
	}
	if (argc < 4 || (strcmp(argv[1], "rr") && strcmp(argv[1], "bulk"))) {
		fprintf(stderr, "usage: accel-peer rr N SIZE [s,c|-] [spin] | bulk BYTES WRITE [s,c|-] [spin] | floor N [s,c|-]\n");
		return 2;
	}
	rr = !strcmp(argv[1], "rr");
	count = atoll(argv[2]);
	size = strtoul(argv[3], NULL, 10);
	if (argc > 4 && strcmp(argv[4], "-") && sscanf(argv[4], "%d,%d", &server_cpu, &client_cpu) != 2) {
		fprintf(stderr, "accel-peer: CPUS is \"s,c\" or \"-\"\n");
		return 2;
	}
	spin = argc > 5 && !strcmp(argv[5], "spin");
	if (count <= 0 || size == 0 || size > buflen) {
		fprintf(stderr, "accel-peer: need N > 0 and 0 < SIZE <= %zu\n", buflen);
		return 2;
	}
	buf = malloc(buflen);
	if (!buf)
		die("malloc");
	memset(buf, 'x', buflen);
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) || listen(lfd, 1) ||
	    getsockname(lfd, (struct sockaddr *)&a, &alen))
		die("listen");
	pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		pin(server_cpu);
		fd = accept(lfd, NULL, NULL);
		if (fd < 0)
			die("accept");
		nodelay(fd);
		serve(fd, rr, count, size, buf, buflen);
		_exit(0);
	}
	pin(client_cpu);
	close(lfd);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)))
		die("connect");
	nodelay(fd);
	if (rr)
		round_trips(fd, count, size, buf);
	else
		bulk(fd, count, size, buf);
	close(fd);
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status))
		return 1;
	return 0;
}

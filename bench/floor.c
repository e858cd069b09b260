/*
 * bench/floor.c — the floor under one replicated, durable write on this
 * machine: one loopback TCP round trip plus one fdatasync of a small
 * append into a preallocated file.  A 3-member Raft write with fsync
 * before ack cannot cost less (the leader's disk write runs in parallel
 * with the round trip to a follower that syncs before it answers: in
 * the best case the latency is RTT + one fdatasync).
 *
 *   floor DIR [ROUNDS]
 *
 * The round trip: a forked echo process, 100-byte messages over a
 * TCP_NODELAY loopback connection, blocking read/write; the median of
 * ROUNDS (default 2000).  The sync: 128-byte pwrites at increasing
 * offsets into a 64 MiB fallocated file in DIR (the WAL's conditions: it
 * preallocates its segments the same way), each followed by fdatasync;
 * the median of ROUNDS / 4.
 *
 * The sync is measured twice: alone, and with one thread per CPU spinning
 * beside it.  On this project's development VM an fdatasync issued while
 * the machine is otherwise idle often takes a flat ~4 ms (the idle vCPU
 * seems to learn of the disk's completion only at the next 250 Hz tick),
 * against ~0.2 ms when any CPU is busy; a Raft cluster under load never
 * sees the idle case, so the floor uses the busy figure and the idle one
 * is printed beside it.  Prints one line:
 *   FLOOR rtt_us=.. fsync_us=.. fsync_idle_us=.. floor_us=..
 */
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static double median_us(uint64_t *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	return (double)v[n / 2] / 1e3;
}

static int full_io(int fd, char *buf, size_t n, int rd)
{
	size_t off = 0;
	while (off < n) {
		ssize_t r = rd ? read(fd, buf + off, n - off)
			       : write(fd, buf + off, n - off);
		if (r <= 0)
			return -1;
		off += (size_t)r;
	}
	return 0;
}

static double rtt(size_t rounds)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	int one = 1, ls, fd;
	char buf[100];
	uint64_t *v = calloc(rounds, sizeof(*v));
	pid_t pid;
	double m;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ls = socket(AF_INET, SOCK_STREAM, 0);
	if (!v || ls < 0 || bind(ls, (struct sockaddr *)&sa, sizeof(sa)) ||
	    listen(ls, 1) || getsockname(ls, (struct sockaddr *)&sa, &sl)) {
		perror("floor: socket");
		exit(1);
	}
	pid = fork();
	if (pid == 0) {
		int c = accept(ls, NULL, NULL);
		setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		while (full_io(c, buf, sizeof(buf), 1) == 0 &&
		       full_io(c, buf, sizeof(buf), 0) == 0)
			;
		_exit(0);
	}
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		perror("floor: connect");
		exit(1);
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	memset(buf, 'r', sizeof(buf));
	for (size_t i = 0; i < rounds + 100; i++) {
		uint64_t t0 = now_ns();
		if (full_io(fd, buf, sizeof(buf), 0) ||
		    full_io(fd, buf, sizeof(buf), 1)) {
			perror("floor: echo");
			exit(1);
		}
		if (i >= 100) /* after a warm-up */
			v[i - 100] = now_ns() - t0;
	}
	close(fd);
	close(ls);
	waitpid(pid, NULL, 0);
	m = median_us(v, rounds);
	free(v);
	return m;
}

static double fsync_cost(const char *dir, size_t rounds)
{
	char path[4096], rec[128];
	uint64_t *v = calloc(rounds, sizeof(*v));
	int fd;
	double m;

	snprintf(path, sizeof(path), "%s/floor.tmp", dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (!v || fd < 0 || posix_fallocate(fd, 0, 64 << 20) || fsync(fd)) {
		perror("floor: preallocate");
		exit(1);
	}
	memset(rec, 'w', sizeof(rec));
	for (size_t i = 0; i < rounds; i++) {
		uint64_t t0 = now_ns();
		if (pwrite(fd, rec, sizeof(rec), (off_t)(i * sizeof(rec))) !=
			    (ssize_t)sizeof(rec) ||
		    fdatasync(fd)) {
			perror("floor: write");
			exit(1);
		}
		v[i] = now_ns() - t0;
	}
	close(fd);
	unlink(path);
	m = median_us(v, rounds);
	free(v);
	return m;
}

static volatile int spinning;

static void *spin_main(void *arg)
{
	(void)arg;
	while (spinning)
		;
	return NULL;
}

int main(int argc, char **argv)
{
	size_t rounds = argc > 2 ? (size_t)atol(argv[2]) : 2000;
	double r, f, fi;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	pthread_t th[64];

	if (argc < 2 || rounds < 8) {
		fprintf(stderr, "usage: floor DIR [ROUNDS]\n");
		return 2;
	}
	r = rtt(rounds);
	fi = fsync_cost(argv[1], rounds / 4);
	if (ncpu < 1 || ncpu > 64)
		ncpu = ncpu < 1 ? 1 : 64;
	spinning = 1;
	for (long i = 0; i < ncpu; i++)
		if (pthread_create(&th[i], NULL, spin_main, NULL)) {
			perror("floor: thread");
			return 1;
		}
	f = fsync_cost(argv[1], rounds / 4);
	spinning = 0;
	for (long i = 0; i < ncpu; i++)
		pthread_join(th[i], NULL);
	printf("FLOOR rtt_us=%.1f fsync_us=%.1f fsync_idle_us=%.1f "
	       "floor_us=%.1f\n",
	       r, f, fi, r + f);
	return 0;
}

/*
 * bench_wal.c — the WAL's append throughput beside the raw disk limits,
 * measured in the same run on the same file system (`make bench`).
 *
 *   raw 1     a loop of one 4 KiB pwrite + fdatasync (the latency floor)
 *   raw 256   a loop of one pwrite of 256 entries + one fdatasync (the
 *             throughput ceiling for 256 entries per sync), for 100 B and
 *             4 KiB entries
 *   wal       appends of one entry each with 1, 16 or 256 in flight (a
 *             completion immediately issues the next append), 100 B and
 *             4 KiB entries, on each engine
 *
 * Every figure is the median of RUNS runs.  The targets: at 256 in flight
 * at least 80% of raw 256; at 1 in flight at least 1/1.2 of raw 1.
 *
 * SR_WAL_BENCH_OPEN=1 adds the open benchmark: a 1 GiB WAL is written,
 * its pages are dropped from the cache (posix_fadvise), then a sequential
 * read of its files and sr_wal_open() are timed, cold and warm.
 * SR_WAL_BENCH_DIR picks the directory (default $TMPDIR or /tmp);
 * SR_WAL_BENCH_ENGINE=posix or io_uring measures one engine only.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <seshat/wal.h>

#define RUNS	    7
#define RUN_SECONDS 0.25

static char base[256];
static unsigned char payload[4096];

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return v[n / 2];
}

static void rmrf(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			unlinkat(dirfd(d), de->d_name, 0);
	closedir(d);
	rmdir(path);
}

static void die(const char *what, int rv)
{
	fprintf(stderr, "bench_wal: %s: %s\n", what,
		rv ? sr_strerror(rv) : strerror(errno));
	exit(1);
}

/* ---- raw limits ---- */

/*
 * A fresh preallocated file, as the WAL makes a segment: fallocate,
 * fdatasync, directory fsync.  The raw loop rotates through such files
 * exactly as the WAL does, so both pay the same file-system costs (an
 * fdatasync into a large unwritten extent costs more than into a small
 * one on ext4, for one).
 */
static int raw_file(int dirfd, int k, uint64_t cap)
{
	char name[32];
	int fd;

	snprintf(name, sizeof(name), "raw-%d", k);
	unlinkat(dirfd, name, 0);
	fd = openat(dirfd, name, O_CREAT | O_TRUNC | O_RDWR, 0600);
	if (fd < 0 || fallocate(fd, 0, 0, (off_t)cap) || fdatasync(fd) ||
	    fsync(dirfd))
		die("raw file", 0);
	return fd;
}

/* Entries per second of a loop of (write batch*size bytes, fdatasync). */
static double raw_run(size_t size, int batch)
{
	static unsigned char buf[256 * 4096];
	uint64_t off = 64, n = 0, cap = 64ull << 20;
	int dirfd = open(base, O_DIRECTORY | O_RDONLY), k = 0;
	int fd = raw_file(dirfd, k, cap);
	double t0, el;

	memset(buf, 0x5a, sizeof(buf));
	t0 = now();
	while ((el = now() - t0) < RUN_SECONDS) {
		size_t len = size * (size_t)batch;

		if (off + len > cap) {
			close(fd);
			fd = raw_file(dirfd, ++k % 2, cap);
			off = 64;
		}
		if (pwrite(fd, buf, len, (off_t)off) != (ssize_t)len ||
		    fdatasync(fd))
			die("raw write", 0);
		off += len;
		n += (uint64_t)batch;
	}
	close(fd);
	unlinkat(dirfd, "raw-0", 0);
	unlinkat(dirfd, "raw-1", 0);
	close(dirfd);
	return (double)n / el;
}

/* ---- the WAL ---- */

struct load {
	sr_wal *w;
	sr_index next;
	uint32_t size;
	uint64_t done;
	int inflight, stop;
};

static void issue(struct load *l)
{
	sr_entry e = { .term = 1,
		       .index = l->next,
		       .type = SR_ENTRY_NORMAL,
		       .len = l->size,
		       .data = payload };
	int rv = sr_wal_storage_ops()->append(l->w, l->next, &e, 1);

	if (rv)
		die("append", rv);
	l->next++;
	l->inflight++;
}

static void on_done(void *ctx, uint64_t token, int status)
{
	struct load *l = ctx;

	(void)token;
	if (status)
		die("completion", status);
	l->done++;
	l->inflight--;
	if (!l->stop)
		issue(l); /* from the callback: joins the next batch */
}

static double wal_run(int engine, uint32_t size, int depth, double secs)
{
	char dir[512];
	sr_wal_options o;
	struct load l = { 0 };
	double t0, el;
	uint64_t done0;
	int rv;

	snprintf(dir, sizeof(dir), "%s/wal", base);
	rmrf(dir);
	sr_wal_options_init(&o, dir);
	o.engine = engine;
	o.done = on_done;
	o.done_ctx = &l;
	o.max_pending_bytes = 256ull << 20;
	if ((rv = sr_wal_open(&o, &l.w)))
		die("open", rv);
	l.size = size;
	l.next = 1;
	/* warm up: the first segment is created by the first batch */
	issue(&l);
	sr_wal_sync(l.w);
	while (l.inflight < depth)
		issue(&l);
	done0 = l.done;
	t0 = now();
	while ((el = now() - t0) < secs) {
		struct pollfd p = { .fd = sr_wal_fd(l.w), .events = POLLIN };

		poll(&p, 1, 100);
		sr_wal_process(l.w);
	}
	l.stop = 1;
	sr_wal_sync(l.w);
	sr_wal_close(l.w);
	rmrf(dir);
	return (double)(l.done - done0) / el;
}

struct fig {
	double wal, raw, ratio; /* medians */
	double lo, hi;		/* the spread of the ratio */
};

/*
 * RUNS pairs of (raw, wal) measured back to back, so that both see the
 * same disk: the shared machine's fdatasync cost moves a lot from one
 * second to the next.  The raw reference for depth d is a loop of one
 * write of d entries + fdatasync (4 KiB entries for d = 1, the issue's
 * "one 4 KiB write + fdatasync").
 */
static struct fig measure(int engine, uint32_t size, int depth)
{
	double w[RUNS], r[RUNS], q[RUNS];
	struct fig f;

	for (int i = 0; i < RUNS; i++) {
		r[i] = raw_run(depth == 1 ? 4096 : size, depth);
		w[i] = wal_run(engine, size, depth, RUN_SECONDS);
		q[i] = w[i] / r[i];
	}
	f.wal = median(w, RUNS);
	f.raw = median(r, RUNS);
	f.ratio = median(q, RUNS); /* sorts q */
	f.lo = q[0];
	f.hi = q[RUNS - 1];
	return f;
}

/* ---- opening a 1 GiB WAL ---- */

static void drop_cache(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	while ((de = readdir(d))) {
		int fd = openat(dirfd(d), de->d_name, O_RDONLY);

		if (fd >= 0) {
			fdatasync(fd);
			posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
			close(fd);
		}
	}
	closedir(d);
}

static double read_all(const char *dir, uint64_t *bytes)
{
	static unsigned char buf[4 << 20];
	DIR *d = opendir(dir);
	struct dirent *de;
	double t0 = now();

	*bytes = 0;
	while ((de = readdir(d))) {
		int fd;
		ssize_t n;

		if (!strstr(de->d_name, ".wal"))
			continue;
		fd = openat(dirfd(d), de->d_name, O_RDONLY);
		posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
		while ((n = read(fd, buf, sizeof(buf))) > 0)
			*bytes += (uint64_t)n;
		close(fd);
	}
	closedir(d);
	return now() - t0;
}

static double open_once(const char *dir, int engine)
{
	sr_wal_options o;
	sr_wal *w;
	double t0 = now();
	int rv;

	sr_wal_options_init(&o, dir);
	o.engine = engine;
	if ((rv = sr_wal_open(&o, &w)))
		die("open", rv);
	t0 = now() - t0;
	sr_wal_close(w);
	return t0;
}

static void bench_open(int engine)
{
	char dir[512];
	sr_wal_options o;
	struct load l = { 0 };
	uint64_t bytes;
	double rd_cold, op_cold, rd_warm, op_warm, t0;
	int rv;

	snprintf(dir, sizeof(dir), "%s/big", base);
	rmrf(dir);
	sr_wal_options_init(&o, dir);
	o.engine = engine;
	o.done = on_done;
	o.done_ctx = &l;
	if ((rv = sr_wal_open(&o, &l.w)))
		die("open", rv);
	l.size = 4096;
	l.next = 1;
	t0 = now();
	while (l.inflight < 256)
		issue(&l);
	while (l.next <= 262144) { /* 1 GiB of entries */
		struct pollfd p = { .fd = sr_wal_fd(l.w), .events = POLLIN };

		poll(&p, 1, 100);
		sr_wal_process(l.w);
	}
	l.stop = 1;
	sr_wal_sync(l.w);
	sr_wal_close(l.w);
	printf("open: wrote %llu entries of 4 KiB in %.1f s\n",
	       (unsigned long long)(l.next - 1), now() - t0);
	drop_cache(dir);
	rd_cold = read_all(dir, &bytes);
	drop_cache(dir);
	op_cold = open_once(dir, engine);
	rd_warm = read_all(dir, &bytes);
	op_warm = open_once(dir, engine);
	printf("open: %.0f MiB of segments: sequential read %.3f s cold, "
	       "%.3f s warm; sr_wal_open %.3f s cold (%.2fx), %.3f s warm "
	       "(%.2fx) [target <= 2x]\n",
	       (double)bytes / (1 << 20), rd_cold, rd_warm, op_cold,
	       op_cold / rd_cold, op_warm, op_warm / rd_warm);
	rmrf(dir);
}

int main(void)
{
	const char *env = getenv("SR_WAL_BENCH_DIR");
	int engines[2] = { SR_WAL_POSIX, SR_WAL_URING }, n_eng = 1;
	uint32_t sizes[2] = { 100, 4096 };
	int depths[3] = { 1, 16, 256 };

#ifdef SR_HAVE_URING
	n_eng = 2;
#endif
	if (!env)
		env = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	snprintf(base, sizeof(base), "%s/bench_wal-XXXXXX", env);
	if (!mkdtemp(base))
		die("mkdtemp", 0);
	for (size_t i = 0; i < sizeof(payload); i++)
		payload[i] = (unsigned char)(i * 7);

	printf("WAL benchmark in %s: medians of %d runs of %.2f s; each run "
	       "measures the raw limit and the WAL back to back\n",
	       base, RUNS, RUN_SECONDS);
	printf("raw = a loop of one write of <depth> entries + fdatasync "
	       "(4 KiB for depth 1)\n");
	printf("%-8s %6s %6s %10s %8s %10s %7s %10s  %s\n", "engine", "entry",
	       "depth", "appends/s", "MB/s", "raw/s", "vs raw", "(range)",
	       "target");
	for (int e = 0; e < n_eng; e++) {
		const char *only = getenv("SR_WAL_BENCH_ENGINE");

		if (only && strcmp(only, sr_wal_engine_name(engines[e])))
			continue;
		for (int s = 0; s < 2; s++) {
			for (int d = 0; d < 3; d++) {
				struct fig f = measure(engines[e], sizes[s],
						       depths[d]);
				const char *t = "";

				if (depths[d] == 1)
					t = f.ratio * 1.2 >= 1
						    ? ">= 83% (1/1.2): ok"
						    : ">= 83% (1/1.2): MISSED";
				else if (depths[d] == 256)
					t = f.ratio >= 0.8 ? ">= 80%: ok"
							   : ">= 80%: MISSED";
				printf("%-8s %6u %6d %10.0f %8.1f %10.0f "
				       "%6.0f%% "
				       "(%3.0f-%3.0f%%)  %s\n",
				       sr_wal_engine_name(engines[e]), sizes[s],
				       depths[d], f.wal, f.wal * sizes[s] / 1e6,
				       f.raw, 100 * f.ratio, 100 * f.lo,
				       100 * f.hi, t);
				fflush(stdout);
			}
		}
	}
	if (getenv("SR_WAL_BENCH_OPEN") && atoi(getenv("SR_WAL_BENCH_OPEN")))
		for (int e = 0; e < n_eng; e++)
			bench_open(engines[e]);
	else
		printf("open: skipped (SR_WAL_BENCH_OPEN=1 to run it)\n");
	rmrf(base);
	return 0;
}

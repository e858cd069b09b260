/*
 * walt.h — helpers shared by the WAL test programs.
 *
 * WAL_TEST(name) { ... } defines a test that runs once per way of
 * writing: name_posix (the posix engine with the default direct I/O),
 * name_posix_buffered (pwrite + fdatasync: direct_io 0), and name_uring
 * when the library has io_uring.  Inside, the engine under test is
 * t_engine and t_direct_io the option (-1: the default).
 *
 * A test opens WALs with t_open(dir, ...) and makes directories with
 * t_dir(); both are remembered and cleaned up at the start of the next
 * test, so a failed CHECK (which leaves the test by longjmp) leaks
 * nothing into the next one.  The log hook keeps the last lines, so a
 * test can check that an error names the file and offset.
 *
 * Entry data is a deterministic pattern of (index, term, len), so any
 * entry read back can be checked without keeping a copy.
 *
 * t_rnd() is a seeded generator (a failure prints its seed to replay);
 * t_kill_after() is the kill -9 harness of the crash tests.
 */
#ifndef SR_WALT_H
#define SR_WALT_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <seshat/wal.h>

#include "testlib.h"

static int t_engine = SR_WAL_POSIX;
/* sr_wal_options.zero_ahead of t_opts(); -1: the library's default */
__attribute__((unused)) static int t_zero_ahead = -1;
/* sr_wal_options.direct_io of t_opts(); -1: the library's default */
__attribute__((unused)) static int t_direct_io = -1;

#ifdef SR_HAVE_URING
#define WAL_TEST_URING(name)                                                   \
	TEST(name##_uring)                                                     \
	{                                                                      \
		t_engine = SR_WAL_URING;                                       \
		t_direct_io = -1;                                              \
		t_cleanup();                                                   \
		name##_body();                                                 \
	}
#else
#define WAL_TEST_URING(name)
#endif

#define WAL_TEST(name)                                                         \
	static void name##_body(void);                                         \
	TEST(name##_posix)                                                     \
	{                                                                      \
		t_engine = SR_WAL_POSIX;                                       \
		t_direct_io = -1;                                              \
		t_cleanup();                                                   \
		name##_body();                                                 \
	}                                                                      \
	TEST(name##_posix_buffered)                                            \
	{                                                                      \
		t_engine = SR_WAL_POSIX;                                       \
		t_direct_io = 0;                                               \
		t_cleanup();                                                   \
		name##_body();                                                 \
	}                                                                      \
	WAL_TEST_URING(name)                                                   \
	static void name##_body(void)

/* ---- the log hook ---- */

static char t_log[16][512];
static int t_log_n;
static int t_log_quiet = 1; /* set T_WAL_VERBOSE=1 to print */

static inline void t_log_fn(void *ctx, int level, const char *line)
{
	(void)ctx;
	snprintf(t_log[t_log_n % 16], sizeof(t_log[0]), "%s", line);
	t_log_n++;
	if (!t_log_quiet)
		fprintf(stderr, "    [log %d] %s\n", level, line);
}

/* 1 if a recent log line contains all of the strings a and b. */
static inline int t_logged(const char *a, const char *b)
{
	int n = t_log_n < 16 ? t_log_n : 16;

	for (int i = 0; i < n; i++) {
		const char *l = t_log[(t_log_n - 1 - i) % 16];

		if (strstr(l, a) && (!b || strstr(l, b)))
			return 1;
	}
	return 0;
}

/* ---- completions ---- */

#define T_MAX_DONE 100000
static uint64_t t_done_tok[T_MAX_DONE];
static int t_done_st[T_MAX_DONE];
static int t_done_n;

static inline void t_done_fn(void *ctx, uint64_t token, int status)
{
	(void)ctx;
	if (t_done_n < T_MAX_DONE) {
		t_done_tok[t_done_n] = token;
		t_done_st[t_done_n] = status;
	}
	t_done_n++;
}

/* ---- directories and WALs remembered for cleanup ---- */

static char t_dirs[16][256];
static int t_ndirs;
static sr_wal *t_wals[16];

/* Remove a WAL directory (it has no subdirectories). */
static inline void t_rmrf(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			unlinkat(dirfd(d), de->d_name, 0);
	closedir(d);
	rmdir(path);
}

static inline void t_cleanup(void)
{
	for (int i = 0; i < 16; i++) {
		if (t_wals[i])
			sr_wal_close(t_wals[i]);
		t_wals[i] = NULL;
	}
	for (int i = 0; i < t_ndirs; i++)
		t_rmrf(t_dirs[i]);
	t_ndirs = 0;
	t_done_n = 0;
	t_log_n = 0;
	t_log_quiet = !getenv("T_WAL_VERBOSE");
}

/* A fresh empty directory (not created: the WAL creates it). */
static inline const char *t_dir(void)
{
	const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	char tmpl[256];

	snprintf(tmpl, sizeof(tmpl), "%s/walt-XXXXXX", base);
	if (!mkdtemp(tmpl) || t_ndirs == 16)
		TEST_FAIL("mkdtemp: %s", strerror(errno));
	rmdir(tmpl);
	snprintf(t_dirs[t_ndirs], sizeof(t_dirs[0]), "%s", tmpl);
	return t_dirs[t_ndirs++];
}

static inline void t_opts(sr_wal_options *o, const char *dir)
{
	sr_wal_options_init(o, dir);
	o->engine = t_engine;
	if (t_zero_ahead >= 0)
		o->zero_ahead = t_zero_ahead;
	if (t_direct_io >= 0)
		o->direct_io = t_direct_io;
	o->done = t_done_fn;
	o->log = t_log_fn;
	o->log_level = SR_LOG_DEBUG;
}

static inline void t_track(sr_wal *w)
{
	for (int i = 0; i < 16; i++)
		if (!t_wals[i]) {
			t_wals[i] = w;
			return;
		}
}

static inline void t_forget(sr_wal *w)
{
	for (int i = 0; i < 16; i++)
		if (t_wals[i] == w)
			t_wals[i] = NULL;
}

/* Open with options (tracked); returns the error, *out on success. */
static inline int t_open_opts(const sr_wal_options *o, sr_wal **out)
{
	int rv = sr_wal_open(o, out);

	if (!rv)
		t_track(*out);
	return rv;
}

static inline sr_wal *t_open(const char *dir, uint64_t seg_size)
{
	sr_wal_options o;
	sr_wal *w = NULL;
	int rv;

	t_opts(&o, dir);
	if (seg_size)
		o.segment_size = seg_size;
	rv = t_open_opts(&o, &w);
	if (rv)
		TEST_FAIL("sr_wal_open(%s): %s", dir, sr_strerror(rv));
	return w;
}

static inline void t_close(sr_wal *w)
{
	t_forget(w);
	sr_wal_close(w);
}

/* ---- entries ---- */

static inline unsigned char t_byte(sr_index i, sr_term t, uint32_t k)
{
	uint64_t x = i * 0x9e3779b97f4a7c15ull ^ t * 0xbf58476d1ce4e5b9ull ^ k;

	x ^= x >> 29;
	return (unsigned char)(x * 0x94d049bb133111ebull >> 56);
}

static inline uint32_t t_len(sr_index i, uint32_t max)
{
	return max ? (uint32_t)((i * 7919u) % (max + 1u)) : 0;
}

static unsigned char t_buf[1 << 22];

/* Make entry (i, t) of len bytes; its data lives in t_buf at off. */
static inline sr_entry t_entry(sr_index i, sr_term t, uint32_t len, size_t off)
{
	sr_entry e = { .term = t,
		       .index = i,
		       .type = SR_ENTRY_NORMAL,
		       .len = len,
		       .data = len ? t_buf + off : NULL };

	for (uint32_t k = 0; k < len; k++)
		t_buf[off + k] = t_byte(i, t, k);
	return e;
}

/* 1 if e has the pattern of (e->index, term). */
static inline int t_entry_ok(const sr_entry *e, sr_term t, uint32_t len)
{
	if (e->term != t || e->len != len || e->type != SR_ENTRY_NORMAL)
		return 0;
	for (uint32_t k = 0; k < len; k++)
		if (((const unsigned char *)e->data)[k] !=
		    t_byte(e->index, t, k))
			return 0;
	return 1;
}

/* Append entries lo..hi of term t (lengths t_len(i, maxlen)), one call. */
static inline int t_append(sr_wal *w, uint64_t token, sr_index lo, sr_index hi,
			   sr_term t, uint32_t maxlen)
{
	static sr_entry es[4096];
	size_t off = 0, n = 0;

	for (sr_index i = lo; i <= hi; i++) {
		uint32_t len = t_len(i, maxlen);

		if (n == 4096 || off + len > sizeof(t_buf))
			TEST_FAIL("t_append: too much at once");
		es[n++] = t_entry(i, t, len, off);
		off += len;
	}
	return sr_wal_storage_ops()->append(w, token, es, n);
}

/* Read lo..hi back and check the pattern with term t. */
static inline void t_check_range(sr_wal *w, sr_index lo, sr_index hi, sr_term t,
				 uint32_t maxlen)
{
	static sr_entry out[512];
	const sr_storage_ops *ops = sr_wal_storage_ops();

	while (lo <= hi) {
		size_t n = 0;
		int rv = ops->read(w, lo, 512, 1 << 20, out, &n);

		if (rv)
			TEST_FAIL("read(%llu): %s", (unsigned long long)lo,
				  sr_strerror(rv));
		if (n == 0)
			TEST_FAIL("read(%llu) returned nothing",
				  (unsigned long long)lo);
		for (size_t k = 0; k < n && lo <= hi; k++, lo++) {
			if (out[k].index != lo ||
			    !t_entry_ok(&out[k], t, t_len(lo, maxlen)))
				TEST_FAIL("entry %llu is wrong (term %llu len "
					  "%u)",
					  (unsigned long long)lo,
					  (unsigned long long)out[k].term,
					  out[k].len);
		}
	}
}

static inline sr_durable t_load(sr_wal *w)
{
	static sr_durable d;

	CHECK_EQ(sr_wal_storage_ops()->load(w, &d), 0);
	return d;
}

/* Wait for the fd to be readable (at most ms) then process. */
static inline int t_poll_process(sr_wal *w, int ms)
{
	struct pollfd p = { .fd = sr_wal_fd(w), .events = POLLIN };

	poll(&p, 1, ms);
	return sr_wal_process(w);
}

static inline int t_file_exists(const char *dir, const char *name)
{
	char p[512];
	struct stat st;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return stat(p, &st) == 0;
}

static inline char *t_path(char *buf, const char *dir, const char *name)
{
	sprintf(buf, "%s/%s", dir, name);
	return buf;
}

/* Does dir's filesystem take O_DIRECT?  Asked of the kernel here, not of
 * the WAL, so that a WAL that never turns direct I/O on fails the tests
 * that expect it instead of skipping them. */
static inline int t_dir_takes_o_direct(const char *dir)
{
	char p[512];
	int fd, ok;

	snprintf(p, sizeof(p), "%s/odirect-probe", dir);
	fd = open(p, O_CREAT | O_RDWR | O_DIRECT | O_CLOEXEC, 0600);
	ok = fd >= 0;
	if (fd >= 0)
		close(fd);
	else if (errno != EINVAL)
		TEST_FAIL("open(%s, O_DIRECT): %s", p, strerror(errno));
	unlink(p);
	return ok;
}

/* Is the segment dir/name a header (64 bytes) followed by zeros only? */
static inline int t_seg_empty(const char *dir, const char *name)
{
	static unsigned char buf[1 << 16];
	char p[512];
	ssize_t n;
	off_t off = 0;
	int fd = open(t_path(p, dir, name), O_RDONLY), empty = 1;

	CHECK(fd >= 0);
	while ((n = pread(fd, buf, sizeof(buf), off)) > 0) {
		for (ssize_t i = off ? 0 : 64; i < n; i++)
			empty &= buf[i] == 0;
		off += n;
	}
	close(fd);
	return empty && off >= 64;
}

/*
 * Turn a cleanly closed WAL directory into what a crash right after its
 * last sync leaves: sr_wal_close() ends the last segment with an empty
 * one, which a crash never writes; without it the last batch is again
 * the last thing on disk, and damage there reads as a torn write.
 * Fails the test if the newest segment is not empty.
 */
static inline void t_as_crashed(const char *dir)
{
	char best[256] = "", p[512];
	DIR *d = opendir(dir);
	struct dirent *de;

	CHECK(d != NULL);
	while ((de = readdir(d)))
		if (strlen(de->d_name) == 20 &&
		    !strcmp(de->d_name + 16, ".wal") &&
		    strcmp(de->d_name, best) > 0)
			snprintf(best, sizeof(best), "%s", de->d_name);
	closedir(d);
	CHECK(best[0] != 0);
	CHECK(t_seg_empty(dir, best));
	CHECK_EQ(unlink(t_path(p, dir, best)), 0);
}

/* ---- a seeded generator ---- */

static uint64_t t_rng_state;

static inline uint64_t t_rnd(void)
{
	uint64_t x = t_rng_state += 0x9e3779b97f4a7c15ull;

	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* ---- kill -9 ---- */

/* Read fixed-size records (rec bytes) from fd into buf[*n..cap) until
 * ms milliseconds pass (0: until nothing is left to read). */
static inline void t_collect(int fd, int ms, void *buf, size_t rec, int cap,
			     int *n)
{
	struct timespec t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		long el;

		clock_gettime(CLOCK_MONOTONIC, &t);
		el = (t.tv_sec - t0.tv_sec) * 1000 +
		     (t.tv_nsec - t0.tv_nsec) / 1000000;
		if (ms && el >= ms)
			return;
		if (poll(&p, 1, ms ? (int)(ms - el) : 0) <= 0 || *n >= cap ||
		    read(fd, (char *)buf + (size_t)*n * rec, rec) !=
			    (ssize_t)rec)
			return;
		(*n)++;
	}
}

/*
 * Run child(wfd, arg) in a forked process with a pipe to the parent,
 * read the records it writes for ms milliseconds, SIGKILL it and read
 * the rest.  Returns how many records were read (at most cap), or, if
 * the child ended by itself, -1 - its exit status.
 */
static inline int t_kill_after(void (*child)(int wfd, void *arg), void *arg,
			       int ms, void *buf, size_t rec, int cap)
{
	int fds[2], st, n = 0;
	pid_t pid;

	CHECK_EQ(pipe(fds), 0);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		close(fds[0]);
		child(fds[1], arg);
		_exit(0);
	}
	close(fds[1]);
	t_collect(fds[0], ms, buf, rec, cap, &n);
	kill(pid, SIGKILL);
	CHECK(waitpid(pid, &st, 0) == pid);
	t_collect(fds[0], 0, buf, rec, cap, &n);
	close(fds[0]);
	return WIFSIGNALED(st) ? n : -1 - WEXITSTATUS(st);
}

#endif

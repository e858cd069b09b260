/*
 * test_wal_fault.c — I/O failures: a failed fdatasync, a failed or short
 * write, a full disk at segment creation, a failed meta or snapshot
 * fsync; with direct I/O, a failed, refused or short direct write.  In every case: the failed batch and everything after it
 * complete with the error, later calls are refused, fdatasync is never
 * retried into a false success, the files stay consistent, and a reopen
 * (after the fault is gone, "space freed") finds every acknowledged
 * entry.
 *
 * The shim.  This binary is linked with -Wl,--wrap for pwrite, fdatasync,
 * fallocate and fsync, so the WAL's own calls land in __wrap_* below; with
 * io_uring, io_uring_submit is wrapped too and the targeted SQE is
 * rewritten before the kernel sees it: into a NOP that completes with the
 * injected error (IORING_NOP_INJECT_RESULT), or, for a short write, into
 * a write of half the bytes.  A fault names the operation, the kind of
 * file (segment, meta.tmp, snap.tmp, the directory) and how many matching
 * calls to let through first; the same fault hits the same logical
 * operation on both engines.  The shim can also strip IOSQE_IO_LINK from
 * every SQE, so that the completions of a chain arrive in any order: the
 * engine must still finish each batch once, in order.
 */
#include <limits.h>
#ifdef SR_HAVE_URING
#include <liburing.h>
#endif

#include "walt.h"

#define OPS sr_wal_storage_ops()

enum { F_PWRITE = 1, F_FDATASYNC, F_FALLOCATE, F_FSYNC };
enum { T_SEG = 1, T_META, T_SNAP, T_DIR };

static struct {
	int op, target, skip, err, shortw; /* shortw: half, then err */
	int hits;
} fault;

#ifdef SR_HAVE_URING
/* io_uring: submit chains unlinked, so their completions can arrive in
 * any order (the engine must judge a chain only when all are in). */
static int unlink_chains;
#endif

static void fault_set(int op, int target, int skip, int err, int shortw)
{
	fault.op = op;
	fault.target = target;
	fault.skip = skip;
	fault.err = err;
	fault.shortw = shortw;
	fault.hits = 0;
}

static int fd_target(int fd)
{
	char p[64], path[PATH_MAX];
	ssize_t n;

	snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
	n = readlink(p, path, sizeof(path) - 1);
	if (n <= 0)
		return 0;
	path[n] = 0;
	if (n > 4 && !strcmp(path + n - 4, ".wal"))
		return T_SEG;
	if (strstr(path, "meta.tmp"))
		return T_META;
	if (strstr(path, "snap.tmp"))
		return T_SNAP;
	if (strstr(path, "/walt-") && !strchr(strstr(path, "/walt-") + 1, '/'))
		return T_DIR;
	return 0;
}

/* 0: let it through; 1: fail it; 2: make it short (pwrite). */
static int fault_check(int op, int fd)
{
	if (!fault.op || op != fault.op || fd_target(fd) != fault.target)
		return 0;
	if (fault.skip > 0) {
		fault.skip--;
		return 0;
	}
	fault.hits++;
	if (fault.shortw) {
		fault.shortw = 0;
		if (!fault.err)
			fault.op = 0; /* short once, then let through */
		return 2;
	}
	fault.op = 0; /* once: a retry would succeed (fsyncgate) */
	return 1;
}

ssize_t __real_pwrite(int fd, const void *buf, size_t n, off_t off);
int __real_fdatasync(int fd);
int __real_fsync(int fd);
int __real_fallocate(int fd, int mode, off_t off, off_t len);

ssize_t __wrap_pwrite(int fd, const void *buf, size_t n, off_t off);
int __wrap_fdatasync(int fd);
int __wrap_fsync(int fd);
int __wrap_fallocate(int fd, int mode, off_t off, off_t len);

ssize_t __wrap_pwrite(int fd, const void *buf, size_t n, off_t off)
{
	switch (fault_check(F_PWRITE, fd)) {
	case 1:
		errno = fault.err;
		return -1;
	case 2:
		return __real_pwrite(fd, buf, n / 2, off);
	}
	return __real_pwrite(fd, buf, n, off);
}

int __wrap_fdatasync(int fd)
{
	if (fault_check(F_FDATASYNC, fd)) {
		errno = fault.err;
		return -1;
	}
	return __real_fdatasync(fd);
}

int __wrap_fsync(int fd)
{
	if (fault_check(F_FSYNC, fd)) {
		errno = fault.err;
		return -1;
	}
	return __real_fsync(fd);
}

int __wrap_fallocate(int fd, int mode, off_t off, off_t len)
{
	if (mode == 0 && fault_check(F_FALLOCATE, fd)) {
		errno = fault.err;
		return -1;
	}
	return __real_fallocate(fd, mode, off, len);
}

#ifdef SR_HAVE_URING
#ifndef IORING_NOP_INJECT_RESULT
#define IORING_NOP_INJECT_RESULT (1U << 0)
#endif

int __real_io_uring_submit(struct io_uring *ring);
int __wrap_io_uring_submit(struct io_uring *ring);

/* Rewrite the pending SQEs that the fault targets, then submit. */
int __wrap_io_uring_submit(struct io_uring *ring)
{
	for (unsigned i = ring->sq.sqe_head; i != ring->sq.sqe_tail; i++) {
		struct io_uring_sqe
			*sqe = &ring->sq.sqes[i & *ring->sq.kring_mask];
		int op = 0, hit;

		if (unlink_chains)
			sqe->flags &= (uint8_t)~IOSQE_IO_LINK;
		if (sqe->opcode == IORING_OP_WRITE)
			op = F_PWRITE;
		else if (sqe->opcode == IORING_OP_FALLOCATE)
			op = F_FALLOCATE;
		else if (sqe->opcode == IORING_OP_FSYNC)
			op = sqe->fsync_flags & IORING_FSYNC_DATASYNC
				     ? F_FDATASYNC
				     : F_FSYNC;
		if (!op || !(hit = fault_check(op, sqe->fd)))
			continue;
		if (hit == 2) {
			sqe->len /= 2; /* a real short write */
			continue;
		}
		{
			uint8_t flags = sqe->flags;
			uint64_t data = sqe->user_data;

			memset(sqe, 0, sizeof(*sqe));
			sqe->opcode = IORING_OP_NOP;
			sqe->flags = flags; /* keep the link */
			sqe->rw_flags = IORING_NOP_INJECT_RESULT;
			sqe->len = (uint32_t)-fault.err;
			sqe->user_data = data;
		}
	}
	return __real_io_uring_submit(ring);
}
#endif

/* ------------------------------------------------------------------ */

/* Append lo..hi in batches of 10, sync after each; all must succeed. */
static void good(sr_wal *w, sr_index lo, sr_index hi)
{
	for (sr_index i = lo; i <= hi; i += 10) {
		CHECK_EQ(t_append(w, i, i, i + 9, 1, 500), 0);
		CHECK_EQ(sr_wal_sync(w), 0);
	}
}

/* After a failure: every mutating call is refused with err. */
static void check_stopped(sr_wal *w, int err)
{
	sr_wal_stats st;

	sr_wal_get_stats(w, &st);
	CHECK_EQ(st.error, err);
	CHECK_EQ(t_append(w, 999, t_load(w).last_index + 1,
			  t_load(w).last_index + 1, 1, 500),
		 err);
	CHECK_EQ(OPS->truncate(w, 1), err);
	CHECK_EQ(OPS->set_hard_state(w, 77, 1), err);
	CHECK_EQ(OPS->snapshot_begin(w, 5, 1, NULL), err);
	CHECK_EQ(sr_wal_sync(w), err);
}

/* Reopen without faults: 1..acked intact, appends work again. */
static void check_reopen(const char *dir, sr_index acked, uint64_t seg)
{
	sr_wal *w;
	sr_index last;

	fault.op = 0;
	w = t_open(dir, seg);
	last = t_load(w).last_index;
	CHECK(last >= acked);
	t_check_range(w, 1, last, 1, 500);
	CHECK_EQ(t_append(w, 1, last + 1, last + 5, 1, 500), 0);
	CHECK_EQ(sr_wal_sync(w), 0);
	t_close(w);
}

WAL_TEST(test_failed_fdatasync_is_never_reported_durable)
{
	const char *dir;
	sr_wal *w;
	int rv;

	/* a segment's fdatasync is the ordinary path's; direct I/O's write
	 * fails in test_failed_direct_write_is_never_reported_durable */
	if (t_engine == SR_WAL_POSIX)
		t_direct_io = 0;
	dir = t_dir();
	w = t_open(dir, 0);

	good(w, 1, 30);
	fault_set(F_FDATASYNC, T_SEG, 0, EIO, 0);
	CHECK_EQ(t_append(w, 100, 31, 40, 1, 500), 0);
	/* accepted (and then failed), or refused if the failure came first */
	rv = t_append(w, 101, 41, 45, 1, 500);
	CHECK(rv == 0 || rv == SR_EIO);
	CHECK_EQ(sr_wal_sync(w), SR_EIO);
	CHECK_EQ(fault.hits, 1);
	CHECK_EQ(t_done_n, rv == 0 ? 5 : 4);
	/* never 0, even though a retry of fdatasync would now succeed */
	for (int k = 3; k < t_done_n; k++)
		CHECK_EQ(t_done_st[k], SR_EIO);
	CHECK(t_logged("fdatasync", "0000000000000001.wal"));
	check_stopped(w, SR_EIO);
	t_close(w);
	check_reopen(dir, 30, 0);
}

WAL_TEST(test_short_write_then_full_disk)
{
	const char *dir = t_dir();
	sr_wal *w = t_open(dir, 0);

	good(w, 1, 20);
	fault_set(F_PWRITE, T_SEG, 0, ENOSPC, 1);
	CHECK_EQ(t_append(w, 100, 21, 40, 1, 500), 0);
	CHECK_EQ(sr_wal_sync(w), SR_ENOSPC);
	CHECK_EQ(fault.hits, 2);
	CHECK_EQ(t_done_st[t_done_n - 1], SR_ENOSPC);
	CHECK(t_logged("write", "No space"));
	check_stopped(w, SR_ENOSPC);
	t_close(w);
	/* half a batch is on disk: a torn tail, cut at reopen */
	check_reopen(dir, 20, 0);
}

WAL_TEST(test_full_disk_at_segment_creation_leaves_files_consistent)
{
	const char *dir = t_dir();
	sr_wal *w = t_open(dir, 64 << 10);
	sr_index i = 1, acked = 60;
	sr_wal_stats st;

	good(w, 1, 60); /* most of the first segment */
	fault_set(F_FALLOCATE, T_SEG, 0, ENOSPC, 0);
	for (i = 61; fault.hits == 0 && i < 400; i += 10) {
		CHECK_EQ(t_append(w, i, i, i + 9, 1, 500), 0);
		if (sr_wal_sync(w) == 0)
			acked = i + 9;
	}
	CHECK_EQ(fault.hits, 1);
	CHECK_EQ(t_done_st[t_done_n - 1], SR_ENOSPC);
	CHECK(t_logged("fallocate", "No space"));
	sr_wal_get_stats(w, &st);
	CHECK_EQ(st.error, SR_ENOSPC);
	/* the half-made segment is gone */
	CHECK(!t_file_exists(dir, "0000000000000002.wal"));
	CHECK_EQ(t_append(w, 1, i, i, 1, 500), SR_ENOSPC);
	t_close(w);
	check_reopen(dir, acked, 64 << 10);
}

WAL_TEST(test_failed_directory_fsync_at_segment_creation)
{
	const char *dir = t_dir();
	sr_wal *w = t_open(dir, 0);

	fault_set(F_FSYNC, T_DIR, 0, EIO, 0);
	CHECK_EQ(t_append(w, 1, 1, 10, 1, 500), 0);
	CHECK_EQ(sr_wal_sync(w), SR_EIO);
	CHECK_EQ(t_done_st[0], SR_EIO);
	t_close(w);
	check_reopen(dir, 0, 0);
}

WAL_TEST(test_failed_meta_fsync_keeps_the_old_term)
{
	const char *dir = t_dir();
	sr_wal *w = t_open(dir, 0);

	CHECK_EQ(OPS->set_hard_state(w, 3, 1), 0);
	fault_set(F_FSYNC, T_META, 0, EIO, 0);
	CHECK_EQ(OPS->set_hard_state(w, 4, 2), SR_EIO);
	CHECK(t_logged("meta", "fsync"));
	CHECK_EQ(t_append(w, 1, 1, 1, 1, 500), SR_EIO);
	t_close(w);
	w = t_open(dir, 0);
	CHECK_EQ(t_load(w).term, 3);
	CHECK_EQ(t_load(w).vote, 1);
}

WAL_TEST(test_failed_snapshot_fsync_keeps_the_old_snapshot)
{
	const char *dir = t_dir();
	sr_wal *w = t_open(dir, 0);

	good(w, 1, 20);
	CHECK_EQ(OPS->snapshot_begin(w, 10, 1, NULL), 0);
	CHECK_EQ(OPS->snapshot_write(w, 0, "first", 5), 0);
	CHECK_EQ(OPS->snapshot_finish(w, 1), 0);
	fault_set(F_FSYNC, T_SNAP, 0, EIO, 0);
	CHECK_EQ(OPS->snapshot_begin(w, 20, 1, NULL), 0);
	CHECK_EQ(OPS->snapshot_write(w, 0, "second", 6), 0);
	CHECK_EQ(OPS->snapshot_finish(w, 1), SR_EIO);
	CHECK_EQ(t_load(w).snapshot_index, 10);
	/* nothing changed on disk, so the log goes on */
	good(w, 21, 30);
	t_close(w);
	w = t_open(dir, 0);
	CHECK_EQ(t_load(w).snapshot_index, 10);
	CHECK_EQ(t_load(w).last_index, 30);
	CHECK(!t_file_exists(dir, "snap.tmp"));
}

#ifdef SR_HAVE_URING
/* ---- direct I/O (the posix engine's default) ---- */

/* Open with direct I/O after 1..30; NULL (test skipped) if the
 * filesystem of the test directory refuses O_DIRECT. */
static sr_wal *open_direct(const char *dir)
{
	sr_wal *w;
	sr_wal_stats st;

	t_engine = SR_WAL_POSIX;
	t_direct_io = 1;
	w = t_open(dir, 0);
	if (!t_dir_takes_o_direct(dir)) {
		printf("    (skipped: %s refuses O_DIRECT)\n", dir);
		good(w, 1, 30);
		sr_wal_get_stats(w, &st);
		CHECK_EQ(st.direct_batches, 0);
		CHECK(t_logged("O_DIRECT", ""));
		t_close(w);
		return NULL;
	}
	good(w, 1, 30);
	sr_wal_get_stats(w, &st);
	CHECK(st.direct_batches > 0);
	CHECK_EQ(st.direct_batches, st.batches);
	return w;
}

TEST(test_failed_direct_write_is_never_reported_durable)
{
	const char *dir = t_dir();
	sr_wal *w = open_direct(dir);

	if (!w)
		return;
	fault_set(F_PWRITE, T_SEG, 0, EIO, 0);
	CHECK_EQ(t_append(w, 100, 31, 40, 1, 500), 0);
	CHECK_EQ(sr_wal_sync(w), SR_EIO);
	CHECK_EQ(fault.hits, 1);
	/* never 0: there is no fdatasync that could come later and pass */
	CHECK_EQ(t_done_st[t_done_n - 1], SR_EIO);
	CHECK(t_logged("direct write", "0000000000000001.wal"));
	check_stopped(w, SR_EIO);
	t_close(w);
	check_reopen(dir, 30, 0);
}

TEST(test_direct_write_refused_falls_back_to_fdatasync)
{
	const char *dir = t_dir();
	sr_wal *w = open_direct(dir);
	sr_wal_stats a, b;

	if (!w)
		return;
	sr_wal_get_stats(w, &a);
	fault_set(F_PWRITE, T_SEG, 0, EINVAL, 0);
	good(w, 31, 60);
	CHECK_EQ(fault.hits, 1);
	sr_wal_get_stats(w, &b);
	CHECK_EQ(b.error, 0);
	CHECK_EQ(b.direct_batches, a.direct_batches); /* off for good */
	CHECK(b.batches > a.batches);
	CHECK(t_logged("O_DIRECT failed", "pwrite + fdatasync"));
	t_close(w);
	check_reopen(dir, 60, 0);
}

TEST(test_short_direct_write_is_written_again)
{
	const char *dir = t_dir();
	sr_wal *w = open_direct(dir);
	sr_wal_stats a, b;

	if (!w)
		return;
	sr_wal_get_stats(w, &a);
	fault_set(F_PWRITE, T_SEG, 0, 0, 1); /* half, then all is well */
	good(w, 31, 40);
	CHECK_EQ(fault.hits, 1);
	good(w, 41, 60);
	sr_wal_get_stats(w, &b);
	CHECK_EQ(b.error, 0);
	/* the short batch went the ordinary way, the later ones direct */
	CHECK_EQ(b.batches - a.batches, 3);
	CHECK_EQ(b.direct_batches - a.direct_batches, 2);
	t_close(w);
	check_reopen(dir, 60, 0);
}

TEST(test_uring_completions_in_any_order_are_resequenced)
{
	sr_wal_options o;
	sr_wal *w;
	const char *dir;

	t_cleanup();
	dir = t_dir();
	t_opts(&o, dir);
	o.engine = SR_WAL_URING;
	o.segment_size = 64 << 10;
	CHECK_EQ(t_open_opts(&o, &w), 0);
	unlink_chains = 1;
	for (sr_index i = 1; i <= 600; i += 6) {
		CHECK_EQ(t_append(w, i, i, i + 2, 1, 500), 0);
		CHECK_EQ(t_append(w, i + 1000, i + 3, i + 5, 1, 500), 0);
		if (i % 60 == 1)
			CHECK_EQ(sr_wal_sync(w), 0);
		else
			t_poll_process(w, 0);
	}
	CHECK_EQ(sr_wal_sync(w), 0);
	unlink_chains = 0;
	CHECK_EQ(t_done_n, 200);
	for (int k = 0; k < 200; k++) {
		CHECK_EQ(t_done_st[k], 0);
		CHECK_EQ(t_done_tok[k],
			 k % 2 ? 1 + 6 * (k / 2) + 1000 : 1 + 6 * (k / 2));
	}
	t_check_range(w, 1, 600, 1, 500);
	t_close(w);
	w = t_open(dir, 64 << 10);
	CHECK_EQ(t_load(w).last_index, 600);
	t_check_range(w, 1, 600, 1, 500);
}
#endif

int main(int argc, char **argv)
{
	int rv;

	/* The shim is one unsynchronized fault for the WAL's calls; the
	 * spare segment's own thread (zero_ahead) would race with it, and
	 * move the fallocate of a new segment ahead of the batch that needs
	 * it.  The spare is tested in test_wal.c. */
	t_zero_ahead = 0;
	rv = test_main(argc, argv);

	t_cleanup();
	return rv;
}

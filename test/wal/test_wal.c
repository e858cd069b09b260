/*
 * test_wal.c — the WAL through its storage vtable, on both I/O engines:
 * appends and completions, reads of durable and not-yet-durable entries,
 * truncation, segments, snapshots and compaction, hard state, the
 * directory lock, backpressure, allocation hooks, and reopening.
 */
#include <fcntl.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "wal_format.h"
#include "walt.h"

#define OPS sr_wal_storage_ops()

WAL_TEST(test_open_empty_dir_gives_empty_state)
{
	const char *dir = t_dir();
	sr_wal *w = t_open(dir, 0);
	sr_durable d = t_load(w);

	CHECK_EQ(d.term, 0);
	CHECK_EQ(d.vote, 0);
	CHECK_EQ(d.first_index, 1);
	CHECK_EQ(d.last_index, 0);
	CHECK_EQ(d.snapshot_index, 0);
	CHECK(t_file_exists(dir, "LOCK"));
	CHECK(t_file_exists(dir, "meta"));
	CHECK(sr_wal_fd(w) >= 0);
	t_close(w);
	w = t_open(dir, 0);
	d = t_load(w);
	CHECK_EQ(d.first_index, 1);
	CHECK_EQ(d.last_index, 0);
}

WAL_TEST(test_appended_entries_read_back_before_and_after_sync)
{
	const char *dir = t_dir();
	sr_wal *w = t_open(dir, 0);

	CHECK_EQ(t_append(w, 11, 1, 10, 1, 300), 0);
	CHECK_EQ(t_append(w, 12, 11, 20, 1, 300), 0);
	/* read() sees entries at once, durable or not */
	t_check_range(w, 1, 20, 1, 300);
	CHECK_EQ(sr_wal_sync(w), 0);
	CHECK_EQ(t_done_n, 2);
	CHECK_EQ(t_done_tok[0], 11);
	CHECK_EQ(t_done_tok[1], 12);
	CHECK_EQ(t_done_st[0], 0);
	CHECK_EQ(t_done_st[1], 0);
	t_check_range(w, 1, 20, 1, 300);
	t_close(w);
	w = t_open(dir, 0);
	CHECK_EQ(t_load(w).last_index, 20);
	t_check_range(w, 1, 20, 1, 300);
}

WAL_TEST(test_completions_arrive_through_the_fd_in_order)
{
	sr_wal *w = t_open(t_dir(), 0);
	int got = 0;

	for (uint64_t i = 1; i <= 50; i++)
		CHECK_EQ(t_append(w, 100 + i, i, i, 2, 64), 0);
	for (int spins = 0; got < 50 && spins < 1000; spins++)
		got += t_poll_process(w, 100);
	CHECK_EQ(got, 50);
	CHECK_EQ(t_done_n, 50);
	for (int i = 0; i < 50; i++) {
		CHECK_EQ(t_done_tok[i], 101 + i);
		CHECK_EQ(t_done_st[i], 0);
	}
	CHECK_EQ(sr_wal_process(w), 0); /* nothing more */
}

WAL_TEST(test_group_commit_batches_concurrent_appends)
{
	sr_wal *w = t_open(t_dir(), 0);
	sr_wal_stats st;

	for (uint64_t i = 1; i <= 2000; i++)
		CHECK_EQ(t_append(w, i, i, i, 1, 100), 0);
	CHECK_EQ(sr_wal_sync(w), 0);
	CHECK_EQ(t_done_n, 2000);
	sr_wal_get_stats(w, &st);
	CHECK_EQ(st.appends, 2000);
	CHECK(st.batches >= 1);
	CHECK(st.batches <= 200); /* one fdatasync covers many appends */
	CHECK_EQ(st.pending_bytes, 0);
}

static sr_wal *chain_wal;
static int chain_left;

static void chain_done(void *ctx, uint64_t token, int status)
{
	sr_index next = token + 1;

	(void)ctx;
	t_done_n++;
	if (status == 0 && chain_left-- > 0)
		t_append(chain_wal, next, next, next, 1, 50);
}

WAL_TEST(test_done_callback_may_append_again)
{
	sr_wal *w = t_open(t_dir(), 0);

	chain_wal = w;
	chain_left = 99;
	sr_wal_set_done(w, chain_done, NULL);
	CHECK_EQ(t_append(w, 1, 1, 1, 1, 50), 0);
	for (int spins = 0; t_done_n < 100 && spins < 5000; spins++)
		t_poll_process(w, 100);
	CHECK_EQ(t_done_n, 100);
	CHECK_EQ(t_load(w).last_index, 100);
	t_check_range(w, 1, 100, 1, 50);
}

/* Completions append 16 entries and read back the last 40 at once: the
 * reads hit records still being sealed and written by the writer. */
static sr_index busy_last;
static int busy_rounds, busy_bad;

static void busy_done(void *ctx, uint64_t token, int status)
{
	static sr_entry out[64];
	sr_wal *w = ctx;
	size_t n = 0;
	sr_index lo;

	(void)token;
	t_done_n++;
	if (status || busy_rounds <= 0) {
		busy_bad += status != 0;
		return;
	}
	busy_rounds--;
	if (t_append(w, busy_last + 1, busy_last + 1, busy_last + 16, 2, 3000))
		busy_bad++;
	busy_last += 16;
	lo = busy_last > 40 ? busy_last - 39 : 1;
	if (OPS->read(w, lo, 64, 1 << 20, out, &n) || n != busy_last - lo + 1)
		busy_bad++;
	for (size_t k = 0; k < n; k++)
		if (out[k].index != lo + k ||
		    !t_entry_ok(&out[k], 2, t_len(lo + k, 3000)))
			busy_bad++;
}

WAL_TEST(test_reads_of_entries_being_written_see_them_whole)
{
	const char *dir = t_dir();
	sr_wal *w = t_open(dir, 1 << 20);

	sr_wal_set_done(w, busy_done, w);
	busy_last = 16;
	busy_rounds = 400;
	busy_bad = 0;
	for (int k = 0; k < 8; k++) /* eight chains in flight */
		CHECK_EQ(t_append(w, 1, 2 * k + 1, 2 * k + 2, 2, 3000), 0);
	for (int spins = 0; busy_rounds > 0 && spins < 20000; spins++)
		t_poll_process(w, 100);
	CHECK_EQ(sr_wal_sync(w), 0);
	CHECK_EQ(busy_bad, 0);
	CHECK_EQ(busy_rounds, 0);
	t_check_range(w, 1, busy_last, 2, 3000);
	t_close(w);
	w = t_open(dir, 1 << 20);
	CHECK_EQ(t_load(w).last_index, busy_last);
	t_check_range(w, 1, busy_last, 2, 3000);
}

WAL_TEST(test_truncate_then_append_survives_reopen)
{
	const char *dir = t_dir();
	sr_wal *w = t_open(dir, 0);

	CHECK_EQ(t_append(w, 1, 1, 10, 1, 200), 0);
	CHECK_EQ(sr_wal_sync(w), 0);
	CHECK_EQ(OPS->truncate(w, 6), 0);
	CHECK_EQ(t_load(w).last_index, 5);
	CHECK_EQ(t_append(w, 2, 6, 8, 2, 200), 0);
	t_check_range(w, 1, 5, 1, 200);
	t_check_range(w, 6, 8, 2, 200);
	CHECK_EQ(sr_wal_sync(w), 0);
	t_close(w);
	w = t_open(dir, 0);
	CHECK_EQ(t_load(w).last_index, 8);
	t_check_range(w, 1, 5, 1, 200);
	t_check_range(w, 6, 8, 2, 200);
	/* truncate everything, then start again from 1 with a new term */
	CHECK_EQ(OPS->truncate(w, 1), 0);
	CHECK_EQ(t_load(w).last_index, 0);
	CHECK_EQ(t_append(w, 3, 1, 3, 7, 10), 0);
	CHECK_EQ(sr_wal_sync(w), 0);
	t_close(w);
	w = t_open(dir, 0);
	CHECK_EQ(t_load(w).last_index, 3);
	t_check_range(w, 1, 3, 7, 10);
}

WAL_TEST(test_truncate_arguments)
{
	sr_wal *w = t_open(t_dir(), 0);

	CHECK_EQ(OPS->truncate(w, 0), SR_EINVAL);
	CHECK_EQ(OPS->truncate(w, 1), 0); /* empty log: nothing to do */
	CHECK_EQ(t_append(w, 1, 1, 5, 1, 10), 0);
	CHECK_EQ(OPS->truncate(w, 6), 0); /* past the end: nothing */
	CHECK_EQ(t_load(w).last_index, 5);
	CHECK_EQ(OPS->truncate(w, 4), 0);
	CHECK_EQ(t_load(w).last_index, 3);
	CHECK_EQ(sr_wal_sync(w), 0);
}

WAL_TEST(test_read_bounds_and_byte_limits)
{
	sr_wal *w = t_open(t_dir(), 0);
	sr_entry out[16];
	size_t n = 99;

	CHECK_EQ(OPS->read(w, 1, 16, 1000, out, &n), SR_ENOTFOUND);
	CHECK_EQ(n, 0);
	CHECK_EQ(t_append(w, 1, 1, 10, 3, 0), 0);
	/* fixed 100-byte entries for the byte limit */
	CHECK_EQ(OPS->truncate(w, 1), 0);
	{
		sr_entry es[10];

		for (int i = 0; i < 10; i++)
			es[i] = t_entry(i + 1, 3, 100, (size_t)i * 100);
		CHECK_EQ(OPS->append(w, 2, es, 10), 0);
	}
	CHECK_EQ(OPS->read(w, 11, 16, 1000, out, &n), SR_ENOTFOUND);
	CHECK_EQ(OPS->read(w, 1, 16, 0, out, &n), 0);
	CHECK_EQ(n, 1); /* always at least one */
	CHECK_EQ(OPS->read(w, 2, 16, 250, out, &n), 0);
	CHECK_EQ(n, 2);
	CHECK_EQ(out[0].index, 2);
	CHECK(t_entry_ok(&out[1], 3, 100));
	CHECK_EQ(OPS->read(w, 5, 3, 1 << 20, out, &n), 0);
	CHECK_EQ(n, 3);
	CHECK_EQ(OPS->read(w, 9, 16, 1 << 20, out, &n), 0);
	CHECK_EQ(n, 2);
	CHECK_EQ(sr_wal_sync(w), 0);
	CHECK_EQ(OPS->read(w, 1, 16, 1 << 20, out, &n), 0);
	CHECK_EQ(n, 10);
	for (int i = 0; i < 10; i++)
		CHECK(t_entry_ok(&out[i], 3, 100));
}

WAL_TEST(test_append_checks_indexes)
{
	sr_wal *w = t_open(t_dir(), 0);
	sr_entry e = t_entry(2, 1, 10, 0);

	CHECK_EQ(OPS->append(w, 1, &e, 1), SR_EINVAL); /* expected 1 */
	CHECK_EQ(OPS->append(w, 1, NULL, 1), SR_EINVAL);
	e = t_entry(1, 1, 10, 0);
	e.data = NULL;
	CHECK_EQ(OPS->append(w, 1, &e, 1), SR_EINVAL);
	/* an append of nothing still completes, after what came before */
	CHECK_EQ(t_append(w, 5, 1, 3, 1, 10), 0);
	CHECK_EQ(OPS->append(w, 6, NULL, 0), 0);
	CHECK_EQ(sr_wal_sync(w), 0);
	CHECK_EQ(t_done_n, 2);
	CHECK_EQ(t_done_tok[1], 6);
	CHECK_EQ(t_done_st[1], 0);
}

WAL_TEST(test_hard_state_is_durable_on_return)
{
	const char *dir = t_dir();
	sr_wal *w = t_open(dir, 0);
	char p[512];
	FILE *f;

	CHECK_EQ(OPS->set_hard_state(w, 5, 2), 0);
	CHECK_EQ(OPS->set_hard_state(w, 5, 2), 0);
	CHECK_EQ(OPS->set_hard_state(w, 7, 0), 0);
	t_close(w);
	/* a leftover temporary from a crash is ignored and removed */
	f = fopen(t_path(p, dir, "meta.tmp"), "w");
	CHECK(f != NULL);
	fputs("garbage", f);
	fclose(f);
	w = t_open(dir, 0);
	CHECK_EQ(t_load(w).term, 7);
	CHECK_EQ(t_load(w).vote, 0);
	CHECK(!t_file_exists(dir, "meta.tmp"));
}

WAL_TEST(test_second_open_of_a_directory_is_refused)
{
	const char *dir = t_dir();
	sr_wal *w = t_open(dir, 0), *w2 = NULL;
	sr_wal_options o;
	pid_t pid;
	int st;

	t_opts(&o, dir);
	CHECK_EQ(t_open_opts(&o, &w2), SR_ELOCKED);
	CHECK(t_logged("LOCK", "in use"));
	/* another process too */
	pid = fork();
	if (pid == 0) {
		sr_wal *w3;
		_exit(sr_wal_open(&o, &w3) == SR_ELOCKED ? 0 : 1);
	}
	CHECK(waitpid(pid, &st, 0) == pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	t_close(w);
	CHECK_EQ(t_open_opts(&o, &w2), 0);
}

WAL_TEST(test_segments_roll_over_and_reopen)
{
	const char *dir = t_dir();
	sr_wal *w = t_open(dir, 64 << 10);
	sr_wal_stats st;

	for (sr_index i = 1; i <= 601; i += 20)
		CHECK_EQ(t_append(w, i, i, i + 19, 4, 900), 0);
	CHECK_EQ(sr_wal_sync(w), 0);
	sr_wal_get_stats(w, &st);
	CHECK(st.segments >= 4);
	CHECK_EQ(st.segments, st.segments_created);
	t_check_range(w, 1, 620, 4, 900);
	t_close(w);
	w = t_open(dir, 64 << 10);
	CHECK_EQ(t_load(w).last_index, 620);
	t_check_range(w, 1, 620, 4, 900);
	/* an entry bigger than a segment gets a segment of its own */
	{
		sr_entry e = t_entry(621, 4, 200000, 0);

		CHECK_EQ(OPS->append(w, 9, &e, 1), 0);
	}
	CHECK_EQ(t_append(w, 10, 622, 630, 4, 900), 0);
	CHECK_EQ(sr_wal_sync(w), 0);
	t_close(w);
	w = t_open(dir, 64 << 10);
	CHECK_EQ(t_load(w).last_index, 630);
	{
		sr_entry out[1];
		size_t n;

		CHECK_EQ(OPS->read(w, 621, 1, 0, out, &n), 0);
		CHECK(t_entry_ok(&out[0], 4, 200000));
	}
	t_check_range(w, 622, 630, 4, 900);
}

static void make_conf(sr_membership *c, int n)
{
	memset(c, 0, sizeof(*c));
	for (int i = 0; i < n; i++) {
		c->members[i].id = (sr_id)(i + 1);
		c->members[i].role = i == n - 1 ? SR_ROLE_LEARNER
						: SR_ROLE_VOTER;
		snprintf(c->members[i].addr, SR_ADDR_MAX, "10.0.0.%d:7000",
			 i + 1);
	}
	c->n = (uint32_t)n;
}

/* Store a snapshot of `size` pattern bytes at (index, term). */
static void put_snapshot(sr_wal *w, sr_index index, sr_term term, uint32_t size,
			 int nconf)
{
	sr_membership c;
	uint32_t off = 0;

	make_conf(&c, nconf);
	CHECK_EQ(OPS->snapshot_begin(w, index, term, &c), 0);
	while (off < size) {
		uint32_t n = size - off > 10000 ? 10000 : size - off;

		for (uint32_t k = 0; k < n; k++)
			t_buf[k] = t_byte(index, term, off + k);
		CHECK_EQ(OPS->snapshot_write(w, off, t_buf, n), 0);
		off += n;
	}
	CHECK_EQ(OPS->snapshot_finish(w, 1), 0);
}

static void check_snapshot(sr_wal *w, sr_index index, sr_term term,
			   uint32_t size, int nconf)
{
	sr_durable d = t_load(w);
	sr_membership c;
	uint64_t off = 0;
	size_t n;

	make_conf(&c, nconf);
	CHECK_EQ(d.snapshot_index, index);
	CHECK_EQ(d.snapshot_term, term);
	CHECK_EQ(d.snapshot_conf.n, (uint32_t)nconf);
	for (int i = 0; i < nconf; i++) {
		CHECK_EQ(d.snapshot_conf.members[i].id, c.members[i].id);
		CHECK_EQ(d.snapshot_conf.members[i].role, c.members[i].role);
		CHECK(!strcmp(d.snapshot_conf.members[i].addr,
			      c.members[i].addr));
	}
	for (;;) {
		static unsigned char buf[7777];

		CHECK_EQ(OPS->snapshot_read(w, off, buf, sizeof(buf), &n), 0);
		if (!n)
			break;
		for (size_t k = 0; k < n; k++)
			if (buf[k] != t_byte(index, term, (uint32_t)(off + k)))
				TEST_FAIL("snapshot byte %llu",
					  (unsigned long long)(off + k));
		off += n;
	}
	CHECK_EQ(off, size);
}

WAL_TEST(test_snapshot_is_stored_with_its_membership)
{
	const char *dir = t_dir();
	sr_wal *w = t_open(dir, 0);
	size_t n;
	unsigned char b[4];

	CHECK_EQ(OPS->snapshot_read(w, 0, b, 4, &n), SR_ENOTFOUND);
	CHECK_EQ(OPS->snapshot_write(w, 0, b, 4), SR_ESTATE);
	CHECK_EQ(OPS->snapshot_finish(w, 1), SR_ESTATE);
	put_snapshot(w, 50, 3, 123457, 5);
	check_snapshot(w, 50, 3, 123457, 5);
	CHECK_EQ(OPS->snapshot_read(w, 200000, b, 4, &n), SR_EINVAL);
	/* a discarded one changes nothing */
	CHECK_EQ(OPS->snapshot_begin(w, 60, 3, NULL), 0);
	CHECK_EQ(OPS->snapshot_write(w, 0, b, 4), 0);
	CHECK_EQ(OPS->snapshot_write(w, 10, b, 4), SR_EINVAL); /* a hole */
	CHECK_EQ(OPS->snapshot_finish(w, 0), 0);
	check_snapshot(w, 50, 3, 123457, 5);
	t_close(w);
	w = t_open(dir, 0);
	check_snapshot(w, 50, 3, 123457, 5);
	/* a newer one replaces it; the old file goes */
	put_snapshot(w, 80, 4, 10, 64);
	CHECK(!t_file_exists(dir, "0000000000000032.snap"));
	CHECK(t_file_exists(dir, "0000000000000050.snap"));
	t_close(w);
	w = t_open(dir, 0);
	check_snapshot(w, 80, 4, 10, 64);
	CHECK(!t_file_exists(dir, "snap.tmp"));
}

/*
 * A newer snapshot unlinks the previous one at once (its descriptor is
 * closed by a thread of its own) without syncing the directory: after a
 * crash the old file may be back, and the next open deletes it.
 */
WAL_TEST(test_previous_snapshot_left_by_a_crash_is_deleted_at_open)
{
	const char *dir = t_dir();
	sr_wal *w = t_open(dir, 0);
	char from[512], to[512];
	FILE *in, *out;
	int ch;

	put_snapshot(w, 50, 3, 200000, 5);
	/* what the directory may hold after a crash: the old file again */
	t_path(from, dir, "0000000000000032.snap");
	t_path(to, dir, "0000000000000031.snap");
	in = fopen(from, "rb");
	out = fopen(to, "wb");
	CHECK(in && out);
	while ((ch = fgetc(in)) != EOF)
		fputc(ch, out);
	fclose(in);
	fclose(out);
	put_snapshot(w, 80, 4, 10, 64);
	CHECK(!t_file_exists(dir, "0000000000000032.snap"));
	t_close(w); /* waits for the descriptor's close */
	CHECK(t_file_exists(dir, "0000000000000031.snap"));
	w = t_open(dir, 0);
	check_snapshot(w, 80, 4, 10, 64);
	CHECK(!t_file_exists(dir, "0000000000000031.snap"));
	t_close(w);
}

/* The header of a snapshot file, read from the directory. */
static struct wal_snap_hdr snap_file_hdr(const char *dir, sr_index index)
{
	static unsigned char b[16384]; /* more than the largest header */
	struct wal_snap_hdr h;
	const char *why = NULL;
	char path[320];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/%016llx.snap", dir,
		 (unsigned long long)index);
	fd = open(path, O_RDONLY);
	CHECK(fd >= 0);
	n = pread(fd, b, sizeof(b), 0);
	close(fd);
	CHECK(n >= (ssize_t)WAL_SNAP_FIXED);
	CHECK_EQ(wal_fmt_snap_hdr_decode(b, (size_t)n, &h, NULL, &why),
		 WALFMT_OK);
	CHECK_EQ(h.index, index);
	return h;
}

/* CRC32C of the pattern put_snapshot() writes, computed here. */
static uint32_t snap_pattern_crc(sr_index index, sr_term term, uint32_t size)
{
	static unsigned char b[4096];
	uint32_t crc = 0;

	for (uint32_t off = 0; off < size;) {
		uint32_t n = size - off > sizeof(b) ? sizeof(b) : size - off;

		for (uint32_t k = 0; k < n; k++)
			b[k] = t_byte(index, term, off + k);
		crc = sr_crc32c(crc, b, n);
		off += n;
	}
	return crc;
}

static sr_wal *open_without_repair(const char *dir, int *rv)
{
	sr_wal_options o;
	sr_wal *w = NULL;

	t_opts(&o, dir);
	o.repair = SR_WAL_REPAIR_NONE;
	*rv = t_open_opts(&o, &w);
	return w;
}

/*
 * Close w; the header of snapshot `index` must hold the CRC of the data
 * put_snapshot() writes, computed here, and an open without repair (which
 * checks that CRC against the data) must read the snapshot back whole.
 * Returns the reopened WAL.
 */
static sr_wal *reopen_with_snapshot(sr_wal *w, const char *dir, sr_index index,
				    sr_term term, uint32_t size, int nconf)
{
	int rv;

	t_close(w);
	CHECK_EQ(snap_file_hdr(dir, index).data_size, size);
	CHECK_EQ(snap_file_hdr(dir, index).data_crc,
		 snap_pattern_crc(index, term, size));
	w = open_without_repair(dir, &rv);
	CHECK_EQ(rv, 0);
	check_snapshot(w, index, term, size, nconf);
	return w;
}

WAL_TEST(test_snapshot_written_in_order_gets_its_crc_without_a_read_back)
{
	const char *dir = t_dir();
	sr_wal *w = t_open(dir, 0);
	uint32_t size = (3u << 20) + 12345; /* 315 chunks */
	sr_wal_stats st;

	put_snapshot(w, 50, 3, size, 5);
	sr_wal_get_stats(w, &st);
	CHECK_EQ(st.snapshots, 1);
	CHECK_EQ(st.snapshots_reread, 0);
	w = reopen_with_snapshot(w, dir, 50, 3, size, 5);
	/* an empty snapshot: the CRC of nothing */
	CHECK_EQ(OPS->snapshot_begin(w, 60, 3, NULL), 0);
	CHECK_EQ(OPS->snapshot_write(w, 0, NULL, 0), 0);
	CHECK_EQ(OPS->snapshot_finish(w, 1), 0);
	reopen_with_snapshot(w, dir, 60, 3, 0, 0);
}

WAL_TEST(test_snapshot_with_a_rewritten_chunk_is_read_back_for_its_crc)
{
	const char *dir = t_dir();
	sr_wal *w = t_open(dir, 0);
	uint32_t size = (2u << 20) + 777, off;
	sr_membership c;
	sr_wal_stats st;

	make_conf(&c, 3);
	CHECK_EQ(OPS->snapshot_begin(w, 70, 2, &c), 0);
	for (uint32_t k = 0; k < 300000; k++)
		t_buf[k] = t_byte(70, 2, k);
	/* bytes 0..300000, then 100000..200000 written wrong and rewritten
	 * (within the data), then 250000..400000 rewritten across its end */
	CHECK_EQ(OPS->snapshot_write(w, 0, t_buf, 100000), 0);
	memset(t_buf + 100000, 0xa5, 100000);
	CHECK_EQ(OPS->snapshot_write(w, 100000, t_buf + 100000, 100000), 0);
	CHECK_EQ(OPS->snapshot_write(w, 200000, t_buf + 200000, 100000), 0);
	for (uint32_t k = 100000; k < 400000; k++)
		t_buf[k] = t_byte(70, 2, k);
	CHECK_EQ(OPS->snapshot_write(w, 100000, t_buf + 100000, 100000), 0);
	CHECK_EQ(OPS->snapshot_write(w, 250000, t_buf + 250000, 150000), 0);
	/* then in order again, as usual */
	for (off = 400000; off < size;) {
		uint32_t n = size - off > 65536 ? 65536 : size - off;

		for (uint32_t k = 0; k < n; k++)
			t_buf[k] = t_byte(70, 2, off + k);
		CHECK_EQ(OPS->snapshot_write(w, off, t_buf, n), 0);
		off += n;
	}
	CHECK_EQ(OPS->snapshot_finish(w, 1), 0);
	sr_wal_get_stats(w, &st);
	w = reopen_with_snapshot(w, dir, 70, 2, size, 3);
	CHECK_EQ(st.snapshots, 1);
	CHECK_EQ(st.snapshots_reread, 1);
	/* the next one, written in order, needs no read-back again */
	put_snapshot(w, 80, 2, 100000, 3);
	sr_wal_get_stats(w, &st);
	CHECK_EQ(st.snapshots, 1);
	CHECK_EQ(st.snapshots_reread, 0);
	reopen_with_snapshot(w, dir, 80, 2, 100000, 3);
}

WAL_TEST(test_snapshot_damaged_after_finish_is_detected_at_open)
{
	const char *dir = t_dir();
	sr_wal *w = t_open(dir, 0);
	uint32_t size = (2u << 20) + 999;
	struct wal_snap_hdr h;
	unsigned char b;
	char path[320];
	int fd, rv;

	put_snapshot(w, 90, 4, size, 2);
	t_close(w);
	h = snap_file_hdr(dir, 90);
	CHECK_EQ(h.data_crc, snap_pattern_crc(90, 4, size));
	/* one bit of the data, past the first MiB, flipped on disk */
	snprintf(path, sizeof(path), "%s/%016llx.snap", dir, 90ull);
	fd = open(path, O_RDWR);
	CHECK(fd >= 0);
	CHECK_EQ(pread(fd, &b, 1, h.hdr_size + 1500000), 1);
	b ^= 0x10;
	CHECK_EQ(pwrite(fd, &b, 1, h.hdr_size + 1500000), 1);
	close(fd);
	w = open_without_repair(dir, &rv);
	CHECK_EQ(rv, SR_ECORRUPT);
	CHECK(t_logged("000000000000005a.snap", "data CRC mismatch"));
	/* repair deletes it, as any damaged snapshot */
	w = t_open(dir, 0);
	CHECK_EQ(t_load(w).snapshot_index, 0);
	CHECK(!t_file_exists(dir, "000000000000005a.snap"));
}

WAL_TEST(test_compaction_deletes_covered_segments)
{
	const char *dir = t_dir();
	sr_wal *w = t_open(dir, 64 << 10);
	sr_wal_stats st;
	sr_entry out[1];
	size_t n;

	for (sr_index i = 1; i <= 1000; i += 50)
		CHECK_EQ(t_append(w, i, i, i + 49, 2, 500), 0);
	CHECK_EQ(sr_wal_sync(w), 0);
	CHECK(t_file_exists(dir, "0000000000000001.wal"));
	CHECK_EQ(OPS->compact(w, 700), SR_EINVAL); /* no snapshot yet */
	put_snapshot(w, 700, 2, 1000, 3);
	CHECK_EQ(OPS->compact(w, 690), 0); /* keep a few trailing entries */
	CHECK_EQ(t_load(w).first_index, 691);
	CHECK_EQ(OPS->read(w, 690, 1, 0, out, &n), SR_ECOMPACTED);
	CHECK_EQ(sr_wal_sync(w), 0);
	sr_wal_get_stats(w, &st);
	CHECK(st.segments_deleted >= 3);
	CHECK(!t_file_exists(dir, "0000000000000001.wal"));
	t_check_range(w, 691, 1000, 2, 500);
	t_close(w);
	w = t_open(dir, 64 << 10);
	CHECK_EQ(t_load(w).first_index, 691);
	CHECK_EQ(t_load(w).last_index, 1000);
	t_check_range(w, 691, 1000, 2, 500);
	CHECK_EQ(t_append(w, 1, 1001, 1010, 3, 500), 0);
	CHECK_EQ(sr_wal_sync(w), 0);
	t_check_range(w, 1001, 1010, 3, 500);
}

WAL_TEST(test_compaction_past_the_log_after_installing_a_snapshot)
{
	const char *dir = t_dir();
	sr_wal *w = t_open(dir, 64 << 10);

	CHECK_EQ(t_append(w, 1, 1, 10, 1, 100), 0);
	put_snapshot(w, 100, 5, 1000, 3);
	/* the engine's install sequence: truncate on conflict, compact */
	CHECK_EQ(OPS->truncate(w, 1), 0);
	CHECK_EQ(OPS->compact(w, 100), 0);
	CHECK_EQ(t_load(w).first_index, 101);
	CHECK_EQ(t_load(w).last_index, 100);
	CHECK_EQ(t_append(w, 2, 101, 105, 6, 100), 0);
	CHECK_EQ(sr_wal_sync(w), 0);
	t_close(w);
	w = t_open(dir, 64 << 10);
	CHECK_EQ(t_load(w).first_index, 101);
	CHECK_EQ(t_load(w).last_index, 105);
	t_check_range(w, 101, 105, 6, 100);
	check_snapshot(w, 100, 5, 1000, 3);
}

WAL_TEST(test_snapshot_that_conflicts_with_the_log_drops_it_at_open)
{
	const char *dir = t_dir();
	sr_wal *w = t_open(dir, 0);

	/* the crash window of an install: the snapshot is durable, the
	 * truncate/compact after it never made it */
	CHECK_EQ(t_append(w, 1, 1, 20, 1, 100), 0);
	put_snapshot(w, 10, 9, 100, 3);
	t_close(w);
	w = t_open(dir, 0);
	CHECK_EQ(t_load(w).first_index, 11);
	CHECK_EQ(t_load(w).last_index, 10);
	CHECK(t_logged("Raft", "term"));
	CHECK_EQ(t_append(w, 1, 11, 12, 9, 100), 0);
	CHECK_EQ(sr_wal_sync(w), 0);
	t_close(w);
	/* the records that say so were written: a reopen agrees */
	w = t_open(dir, 0);
	CHECK_EQ(t_load(w).first_index, 11);
	CHECK_EQ(t_load(w).last_index, 12);
	t_check_range(w, 11, 12, 9, 100);
	/* a snapshot that matches keeps the log after it */
	put_snapshot(w, 11, 9, 100, 3);
	t_close(w);
	w = t_open(dir, 0);
	CHECK_EQ(t_load(w).first_index, 11);
	CHECK_EQ(t_load(w).last_index, 12);
}

WAL_TEST(test_ebusy_backpressure_bounds_pending_bytes)
{
	sr_wal_options o;
	sr_wal *w;
	int busy = 0;
	sr_index i;

	t_opts(&o, t_dir());
	o.max_pending_bytes = 64 << 10;
	o.backpressure = SR_WAL_EBUSY;
	CHECK_EQ(t_open_opts(&o, &w), 0);
	for (i = 1; i <= 5000 && !busy; i++) {
		int rv = t_append(w, i, i, i, 1, 1000);

		if (rv == SR_EBUSY)
			busy = 1;
		else
			CHECK_EQ(rv, 0);
	}
	CHECK(busy);
	CHECK_EQ(sr_wal_sync(w), 0);
	CHECK_EQ(t_append(w, i, i - 1, i - 1, 1, 1000), 0);
	CHECK_EQ(sr_wal_sync(w), 0);
	t_check_range(w, 1, i - 1, 1, 1000);
}

/*
 * The engine on a WAL in SR_WAL_EBUSY mode: a full WAL refuses an append,
 * which must refuse proposals for a while (SR_EBUSY), never stop the node,
 * and lose nothing: every accepted proposal is applied.
 */
static uint64_t eb_applied;

static int eb_apply(void *ctx, const sr_entry *e, void **result)
{
	(void)ctx;
	(void)e;
	*result = NULL;
	eb_applied++;
	return 0;
}

static int eb_send(void *ctx, const sr_msg *m)
{
	(void)ctx;
	(void)m;
	return 0;
}

static void eb_done(void *ctx, uint64_t token, int status)
{
	sr_node_storage_done(ctx, token, status);
}

static void eb_wait(sr_wal *w, sr_node *n, uint64_t *now)
{
	struct pollfd p = { .fd = sr_wal_fd(w), .events = POLLIN };
	(void)poll(&p, 1, 5);
	sr_wal_process(w);
	sr_node_tick(n, ++*now);
}

WAL_TEST(test_engine_on_a_full_wal_refuses_proposals_and_keeps_going)
{
	static const sr_fsm_ops fsm = { .apply = eb_apply };
	static const sr_transport_ops tr = { .send = eb_send };
	static unsigned char cmd[4096];
	sr_wal_options o;
	sr_wal *w;
	sr_node *n;
	sr_config cfg;
	sr_membership conf;
	sr_status st;
	uint64_t now = 1, accepted = 0, refused = 0;

	t_opts(&o, t_dir());
	o.max_pending_bytes = 64 << 10;
	o.backpressure = SR_WAL_EBUSY;
	CHECK_EQ(t_open_opts(&o, &w), 0);
	sr_config_init(&cfg, 1);
	cfg.storage = sr_wal_storage_ops();
	cfg.storage_ctx = w;
	cfg.fsm = &fsm;
	cfg.transport = &tr;
	CHECK_EQ(sr_node_create(&cfg, &n), 0);
	sr_wal_set_done(w, eb_done, n);
	memset(&conf, 0, sizeof(conf));
	sr_membership_add(&conf, 1, SR_ROLE_VOTER, "");
	CHECK_EQ(sr_node_bootstrap(n, &conf), 0);
	CHECK_EQ(sr_node_start(n, now), 0);
	for (int i = 0; i < 200; i++) {
		sr_node_status(n, &st);
		if (st.role == SR_LEADER)
			break;
		eb_wait(w, n, &now);
	}
	CHECK_EQ(st.role, SR_LEADER);
	eb_applied = 0;

	/* propose as fast as possible: the WAL fills and says so (past 400
	 * until it has, up to 4000: under TSan on a loaded machine the
	 * writer thread can keep up with a slowed proposer for a while) */
	while ((accepted < 400 || !refused) && accepted < 4000 &&
	       now < 100000) {
		int rv = sr_node_propose(n, cmd, sizeof(cmd), NULL, NULL);
		if (rv == 0) {
			accepted++;
			continue;
		}
		CHECK_EQ(rv, SR_EBUSY);
		refused++;
		eb_wait(w, n, &now);
	}
	CHECK(accepted >= 400);
	CHECK(refused > 0);
	for (int i = 0; i < 20000 && eb_applied < accepted; i++)
		eb_wait(w, n, &now);
	sr_node_status(n, &st);
	CHECK_EQ(st.error, 0);
	CHECK_EQ(st.role, SR_LEADER);
	CHECK_EQ(eb_applied, accepted);
	CHECK_EQ(st.durable_index, st.last_index);
	CHECK_EQ(sr_wal_sync(w), 0);
	sr_wal_process(w);
	sr_wal_set_done(w, NULL, NULL);
	sr_node_destroy(n);
}

WAL_TEST(test_blocking_backpressure_waits_for_the_disk)
{
	sr_wal_options o;
	sr_wal *w;
	sr_wal_stats st;

	t_opts(&o, t_dir());
	o.max_pending_bytes = 32 << 10;
	CHECK_EQ(t_open_opts(&o, &w), 0);
	for (sr_index i = 1; i <= 400; i++)
		CHECK_EQ(t_append(w, i, i, i, 1, 2000), 0);
	sr_wal_get_stats(w, &st);
	CHECK(st.pending_bytes <= (32 << 10) + 2100);
	CHECK_EQ(sr_wal_sync(w), 0);
	CHECK_EQ(t_done_n, 400);
	t_check_range(w, 1, 400, 1, 2000);
}

static pthread_t alloc_thread;
static long alloc_live, alloc_calls, alloc_foreign;

static void *a_malloc(void *ctx, size_t n)
{
	(void)ctx;
	alloc_calls++;
	alloc_live++;
	alloc_foreign += !pthread_equal(pthread_self(), alloc_thread);
	return malloc(n);
}

static void *a_realloc(void *ctx, void *p, size_t n)
{
	(void)ctx;
	alloc_calls++;
	alloc_live += p == NULL;
	alloc_foreign += !pthread_equal(pthread_self(), alloc_thread);
	return realloc(p, n);
}

static void a_free(void *ctx, void *p)
{
	(void)ctx;
	alloc_live -= p != NULL;
	alloc_foreign += !pthread_equal(pthread_self(), alloc_thread);
	free(p);
}

WAL_TEST(test_allocation_goes_through_the_hooks_on_the_host_thread)
{
	sr_alloc a = { a_malloc, a_realloc, a_free, NULL };
	sr_wal_options o;
	sr_wal *w;

	alloc_thread = pthread_self();
	alloc_live = alloc_calls = alloc_foreign = 0;
	t_opts(&o, t_dir());
	o.alloc = &a;
	o.segment_size = 64 << 10;
	CHECK_EQ(t_open_opts(&o, &w), 0);
	for (sr_index i = 1; i <= 300; i += 10)
		CHECK_EQ(t_append(w, i, i, i + 9, 1, 700), 0);
	t_check_range(w, 1, 300, 1, 700);
	put_snapshot(w, 200, 1, 5000, 2);
	CHECK_EQ(OPS->compact(w, 200), 0);
	CHECK_EQ(sr_wal_sync(w), 0);
	t_close(w);
	CHECK(alloc_calls > 0);
	CHECK_EQ(alloc_live, 0);
	CHECK_EQ(alloc_foreign, 0);
}

WAL_TEST(test_close_writes_what_was_accepted)
{
	const char *dir = t_dir();
	sr_wal *w = t_open(dir, 0);

	for (sr_index i = 1; i <= 100; i++)
		CHECK_EQ(t_append(w, i, i, i, 1, 3000), 0);
	t_close(w); /* no sync: close finishes the writes */
	CHECK(t_done_n < 100 || t_done_n == 100);
	w = t_open(dir, 0);
	CHECK_EQ(t_load(w).last_index, 100);
	t_check_range(w, 1, 100, 1, 3000);
}

/*
 * sr_wal_hold() + sr_wal_write_now(): with the posix writer asleep, the
 * held appends are written, synced and reported on the calling thread
 * before write_now returns; otherwise (writer busy, io_uring) the engine
 * is woken and the completions come through the fd as usual.  Either
 * way every append completes once, in order, and survives a reopen.
 */
WAL_TEST(test_write_now_writes_held_appends)
{
	const char *dir = t_dir();
	sr_wal *w = t_open(dir, 0);
	int inline_rounds = 0;

	for (sr_index i = 1; i <= 40; i += 2) {
		int before = t_done_n, got;

		sr_wal_hold(w);
		CHECK_EQ(t_append(w, i, i, i, 1, 200), 0);
		CHECK_EQ(t_append(w, i + 1, i + 1, i + 1, 1, 200), 0);
		got = sr_wal_write_now(w);
		CHECK(got == 0 || got == 2);
		if (got == 2) {
			inline_rounds++;
			CHECK_EQ(t_done_n, before + 2);
		}
		for (int spins = 0; t_done_n < before + 2 && spins < 1000;
		     spins++)
			t_poll_process(w, 100);
		CHECK_EQ(t_done_n, before + 2);
		/* give the writer time to go back to sleep */
		for (int k = 0; k < 20 && t_poll_process(w, 1) == 0; k++)
			;
	}
	for (int i = 0; i < 40; i++) {
		CHECK_EQ(t_done_tok[i], (uint64_t)i + 1);
		CHECK_EQ(t_done_st[i], 0);
	}
	if (t_engine == SR_WAL_POSIX)
		CHECK(inline_rounds > 0);
	else
		CHECK_EQ(inline_rounds, 0);
	t_close(w);
	w = t_open(dir, 0);
	CHECK_EQ(t_load(w).last_index, 40);
	t_check_range(w, 1, 40, 1, 200);
}

/* sr_wal_release(): the held appends go to the engine, as unheld ones. */
WAL_TEST(test_release_hands_held_appends_to_the_engine)
{
	sr_wal *w = t_open(t_dir(), 0);

	sr_wal_hold(w);
	for (sr_index i = 1; i <= 10; i++)
		CHECK_EQ(t_append(w, i, i, i, 1, 500), 0);
	sr_wal_release(w);
	for (int spins = 0; t_done_n < 10 && spins < 1000; spins++)
		t_poll_process(w, 100);
	CHECK_EQ(t_done_n, 10);
	for (int i = 0; i < 10; i++)
		CHECK_EQ(t_done_st[i], 0);
}

/* A hold that is never released still loses nothing: close writes it. */
WAL_TEST(test_close_writes_held_appends)
{
	const char *dir = t_dir();
	sr_wal *w = t_open(dir, 0);

	sr_wal_hold(w);
	for (sr_index i = 1; i <= 10; i++)
		CHECK_EQ(t_append(w, i, i, i, 1, 500), 0);
	t_close(w);
	w = t_open(dir, 0);
	CHECK_EQ(t_load(w).last_index, 10);
	t_check_range(w, 1, 10, 1, 500);
}

/*
 * Batches of every size and alignment, through segment rollovers, read
 * back as they are written and after a reopen; with direct I/O (the
 * posix default) each batch is one aligned O_DIRECT | O_DSYNC write that
 * rewrites the block it starts in, and a batch over 1 MiB goes the
 * ordinary way (direct_batches < batches).
 */
WAL_TEST(test_batches_of_every_size_read_back_after_reopen)
{
	const char *dir = t_dir();
	sr_wal *w = t_open(dir, 4u << 20);
	sr_index next = 1;
	sr_wal_stats st;
	int direct = t_engine == SR_WAL_POSIX && t_direct_io != 0;

	t_rng_state = 0x5eed;
	for (int round = 0; round < 400; round++) {
		/* one to three appends per batch, 1..40 entries each */
		int appends = 1 + (int)(t_rnd() % 3);
		sr_index first = next;
		for (int k = 0; k < appends; k++) {
			sr_index n = 1 + t_rnd() % 40;
			CHECK_EQ(t_append(w, next, next, next + n - 1, 1, 3000),
				 0);
			next += n;
		}
		if (round == 200) { /* over 1 MiB in one batch */
			CHECK_EQ(t_append(w, next, next, next + 999, 1, 3000),
				 0);
			next += 1000;
		}
		if (round % 7 == 0 && first > 1) /* read while it is written */
			t_check_range(w, first - 1, first - 1, 1, 3000);
		CHECK_EQ(sr_wal_sync(w), 0);
		t_check_range(w, first, next - 1, 1, 3000);
	}
	sr_wal_get_stats(w, &st);
	CHECK(st.segments_created >= 3);
	if (direct && !t_dir_takes_o_direct(dir)) {
		printf("    (%s refuses O_DIRECT: the ordinary path ran)\n",
		       dir);
		direct = 0;
	}
	if (!direct)
		CHECK_EQ(st.direct_batches, 0);
	else
		CHECK(st.direct_batches < st.batches &&
		      st.direct_batches + 3 >= st.batches);
	t_close(w);
	w = t_open(dir, 4u << 20);
	CHECK_EQ(t_load(w).last_index, next - 1);
	t_check_range(w, 1, next - 1, 1, 3000);
	/* the first batch after an open starts inside a block it has not
	 * written: read back, then rewritten unchanged */
	CHECK_EQ(t_append(w, 1, next, next + 9, 1, 3000), 0);
	CHECK_EQ(sr_wal_sync(w), 0);
	t_close(w);
	w = t_open(dir, 4u << 20);
	CHECK_EQ(t_load(w).last_index, next + 9);
	t_check_range(w, 1, next + 9, 1, 3000);
	t_close(w);
}

/* No extent of the segment is "unwritten" (fallocate'd, never written):
 * 1 yes, 0 no, -1 the file system cannot say. */
static int all_extents_written(const char *dir, const char *name)
{
	enum { N = 64 };
	struct fiemap *fm = calloc(1, sizeof(*fm) +
					      N * sizeof(struct fiemap_extent));
	char path[512];
	int fd, rv = 1;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDONLY);
	if (fd < 0 || !fm) {
		if (fd >= 0)
			close(fd);
		free(fm);
		return -1;
	}
	fm->fm_length = FIEMAP_MAX_OFFSET;
	fm->fm_extent_count = N;
	if (ioctl(fd, FS_IOC_FIEMAP, fm) != 0 || !fm->fm_mapped_extents)
		rv = -1;
	for (unsigned i = 0; rv == 1 && i < fm->fm_mapped_extents; i++)
		if (fm->fm_extents[i].fe_flags & FIEMAP_EXTENT_UNWRITTEN)
			rv = 0;
	close(fd);
	free(fm);
	return rv;
}

/*
 * zero_ahead (posix): segments come from the spare, already written with
 * zeros, so a batch's fdatasync need not write the inode; the spare is
 * gone after a clean close, a leftover one (a crash) is deleted at open,
 * and zero_ahead = 0 makes none.
 */
TEST(test_segments_are_zero_filled_ahead_posix)
{
	const char *dir = t_dir();
	char junk[32] = "not a segment", path[512];
	struct stat sb;
	sr_wal_stats st;
	sr_wal *w;
	sr_index i;
	int fd;

	t_engine = SR_WAL_POSIX;
	t_cleanup();
	CHECK_EQ(mkdir(dir, 0700), 0);
	/* as a crash leaves it */
	fd = open(t_path(path, dir, "spare.tmp"), O_CREAT | O_WRONLY, 0600);
	CHECK(fd >= 0);
	CHECK_EQ(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
	close(fd);
	w = t_open(dir, 64 << 10);
	/* deleted at open: gone, or already a new spare being made */
	CHECK(stat(path, &sb) != 0 || sb.st_size != (off_t)sizeof(junk));
	/* roll over a few times, giving the spare's thread time between */
	for (i = 1; i <= 600; i += 10) {
		CHECK_EQ(t_append(w, i, i, i + 9, 1, 1000), 0);
		CHECK_EQ(sr_wal_sync(w), 0);
		usleep(20000);
	}
	sr_wal_get_stats(w, &st);
	CHECK(st.segments_created >= 5);
	CHECK(st.segments_zeroed >= 3);
	CHECK(st.segments_zeroed <= st.segments_created);
	{
		char name[32];
		int ok;
		snprintf(name, sizeof(name), "%016llx.wal",
			 (unsigned long long)st.segments_created);
		ok = all_extents_written(dir, name);
		CHECK(ok != 0); /* 1, or -1 where FIEMAP cannot tell */
	}
	t_close(w);
	CHECK(!t_file_exists(dir, "spare.tmp"));
	w = t_open(dir, 64 << 10);
	t_check_range(w, 1, 600, 1, 1000);
	t_close(w);
	/* zero_ahead = 0: no spare, every segment fallocate'd */
	t_zero_ahead = 0;
	dir = t_dir();
	w = t_open(dir, 64 << 10);
	for (i = 1; i <= 200; i += 10) {
		CHECK_EQ(t_append(w, i, i, i + 9, 1, 1000), 0);
		CHECK_EQ(sr_wal_sync(w), 0);
		usleep(5000);
		CHECK(!t_file_exists(dir, "spare.tmp"));
	}
	sr_wal_get_stats(w, &st);
	CHECK(st.segments_created >= 2);
	CHECK_EQ(st.segments_zeroed, 0);
	{
		char name[32];
		snprintf(name, sizeof(name), "%016llx.wal",
			 (unsigned long long)st.segments_created);
		/* partly written fallocate'd space: unwritten extents */
		CHECK(all_extents_written(dir, name) != 1);
	}
	t_close(w);
	t_zero_ahead = -1;
}

TEST(test_options_are_checked)
{
	sr_wal_options o;
	sr_wal *w;

	t_cleanup();
	sr_wal_options_init(&o, NULL);
	CHECK_EQ(sr_wal_open(&o, &w), SR_EINVAL);
	t_opts(&o, t_dir());
	o.segment_size = 1000;
	CHECK_EQ(sr_wal_open(&o, &w), SR_EINVAL);
	t_opts(&o, t_dir());
	o.backpressure = 7;
	CHECK_EQ(sr_wal_open(&o, &w), SR_EINVAL);
#ifndef SR_HAVE_URING
	t_opts(&o, t_dir());
	o.engine = SR_WAL_URING;
	CHECK_EQ(sr_wal_open(&o, &w), SR_EINVAL);
#endif
	t_opts(&o, t_dir());
	o.engine = SR_WAL_AUTO;
	CHECK_EQ(t_open_opts(&o, &w), 0);
	{
		sr_wal_stats st;

		sr_wal_get_stats(w, &st);
#ifdef SR_HAVE_URING
		CHECK_EQ(st.engine, SR_WAL_URING);
#else
		CHECK_EQ(st.engine, SR_WAL_POSIX);
#endif
	}
	CHECK(!strcmp(sr_wal_engine_name(SR_WAL_URING), "io_uring"));
	t_cleanup();
}

int main(int argc, char **argv)
{
	int rv = test_main(argc, argv);

	t_cleanup();
	return rv;
}

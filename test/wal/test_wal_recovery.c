/*
 * test_wal_recovery.c — the on-disk format and every recovery path, on
 * copies of real segment files: torn tails (cut files, zeroed pages,
 * garbage), bit flips everywhere (a sweep), missing segments, records
 * with a valid CRC but impossible content, damaged headers, meta and
 * snapshot files, and the repair option.
 *
 * A reference WAL is written once per test with known batch boundaries
 * (sr_wal_sync between appends), copied, damaged, and reopened.  Expected
 * outcomes follow docs/storage-format.md: damage in the last batch is a
 * torn write and is cut off; damage anywhere else fails the open with
 * SR_ECORRUPT and a log line naming the file and the offset
 * (SR_WAL_REPAIR_NONE), or, by default, cuts the log and reports the
 * lost range through load() until the log is past it again.
 */
#include "wal_format.h"
#include "walt.h"

#define OPS  sr_wal_storage_ops()
#define SEG1 "0000000000000001.wal"

/* ---- files ---- */

static size_t file_read(const char *dir, const char *name, unsigned char *buf,
			size_t cap)
{
	char p[512];
	int fd = open(t_path(p, dir, name), O_RDONLY);
	ssize_t n;

	if (fd < 0)
		TEST_FAIL("open %s: %s", p, strerror(errno));
	n = read(fd, buf, cap);
	close(fd);
	if (n < 0)
		TEST_FAIL("read %s", p);
	return (size_t)n;
}

static void file_write(const char *dir, const char *name, uint64_t off,
		       const void *buf, size_t len)
{
	char p[512];
	int fd = open(t_path(p, dir, name), O_WRONLY | O_CREAT, 0600);

	if (fd < 0 || pwrite(fd, buf, len, (off_t)off) != (ssize_t)len)
		TEST_FAIL("write %s", p);
	close(fd);
}

static void file_flip(const char *dir, const char *name, uint64_t off, int bit)
{
	unsigned char b;
	char p[512];
	int fd = open(t_path(p, dir, name), O_RDWR);

	if (fd < 0 || pread(fd, &b, 1, (off_t)off) != 1)
		TEST_FAIL("flip %s", p);
	b ^= (unsigned char)(1u << bit);
	if (pwrite(fd, &b, 1, (off_t)off) != 1)
		TEST_FAIL("flip %s", p);
	close(fd);
}

static void file_zero(const char *dir, const char *name, uint64_t off,
		      size_t len)
{
	static unsigned char z[1 << 16];

	while (len) {
		size_t n = len > sizeof(z) ? sizeof(z) : len;

		file_write(dir, name, off, z, n);
		off += n;
		len -= n;
	}
}

static void file_cut(const char *dir, const char *name, uint64_t size)
{
	char p[512];

	if (truncate(t_path(p, dir, name), (off_t)size) != 0)
		TEST_FAIL("truncate %s", p);
}

static void file_rm(const char *dir, const char *name)
{
	char p[512];

	if (unlink(t_path(p, dir, name)) != 0)
		TEST_FAIL("unlink %s", p);
}

/* Copy every file of src into a fresh directory. */
static const char *dir_copy(const char *src)
{
	static unsigned char buf[4 << 20];
	const char *dst = t_dir();
	DIR *d = opendir(src);
	struct dirent *de;

	mkdir(dst, 0700);
	while ((de = readdir(d))) {
		char p[512];
		int in, out;
		ssize_t n;

		if (de->d_name[0] == '.')
			continue;
		in = open(t_path(p, src, de->d_name), O_RDONLY);
		out = open(t_path(p, dst, de->d_name), O_WRONLY | O_CREAT,
			   0600);
		while ((n = read(in, buf, sizeof(buf))) > 0)
			if (write(out, buf, (size_t)n) != n)
				TEST_FAIL("copy");
		close(in);
		close(out);
	}
	closedir(d);
	return dst;
}

/* ---- the reference WAL ---- */

struct rec {
	uint64_t off, size, batch, index;
	uint32_t kind;
};

static struct rec recs[4096];
static int nrecs;

/* Parse a (clean) segment: its records, in order. */
static uint64_t map_segment(const char *dir, const char *name)
{
	static unsigned char buf[4 << 20];
	size_t n = file_read(dir, name, buf, sizeof(buf));
	uint64_t off = WAL_SEG_HDR, size;
	const char *why;

	nrecs = 0;
	while (off + WAL_REC_HDR <= n &&
	       wal_fmt_rec_peek(buf + off, off, n - off, &size, &why) ==
		       WALFMT_OK) {
		struct wal_rec r;

		CHECK_EQ(wal_fmt_rec_decode(buf + off, off, size, &r, &why),
			 WALFMT_OK);
		recs[nrecs++] = (struct rec){ off, size, r.batch, r.index,
					      r.kind };
		off += size;
	}
	return off;
}

/* Batches: entries 1..10, 11..20, ..., 41..50, one batch each; the
 * WAL closed cleanly. */
static const char *reference_closed(uint64_t seg_size)
{
	const char *dir = t_dir();
	sr_wal *w = t_open(dir, seg_size ? seg_size : 64 << 10);

	for (sr_index i = 1; i <= 41; i += 10) {
		CHECK_EQ(t_append(w, i, i, i + 9, 1, 400), 0);
		CHECK_EQ(sr_wal_sync(w), 0);
	}
	t_close(w);
	return dir;
}

/* The same directory as a crash after the last sync leaves it. */
static const char *reference(uint64_t seg_size)
{
	const char *dir = reference_closed(seg_size);

	t_as_crashed(dir);
	return dir;
}

/* Open dir; return the error (0: *last set and content checked). */
static int reopen(const char *dir, int repair, sr_index *last)
{
	sr_wal_options o;
	sr_wal *w;
	int rv;

	t_opts(&o, dir);
	o.repair = repair ? SR_WAL_REPAIR_TRUNCATE : SR_WAL_REPAIR_NONE;
	rv = t_open_opts(&o, &w);
	if (rv)
		return rv;
	*last = t_load(w).last_index;
	if (*last >= t_load(w).first_index)
		t_check_range(w, t_load(w).first_index, *last, 1, 400);
	t_close(w);
	return 0;
}

/* First record of the last batch. */
static int last_batch_start(void)
{
	int k = nrecs - 1;

	while (k > 0 && recs[k - 1].batch == recs[nrecs - 1].batch)
		k--;
	return k;
}

/* ---- tests ---- */

TEST(test_format_round_trips_and_rejects)
{
	unsigned char b[4096];
	struct wal_seg_hdr h = { 7, 3, 9, 11 }, h2;
	struct wal_meta m = { 5, 2 }, m2;
	struct wal_rec r = { .len = 5,
			     .kind = WAL_REC_ENTRY,
			     .etype = 1,
			     .index = 9,
			     .term = 3,
			     .batch = 4,
			     .batch_off = 64,
			     .data = (const unsigned char *)"hello" },
		       r2;
	const char *why;
	uint64_t size;

	t_cleanup();
	wal_fmt_seg_hdr_encode(b, &h);
	CHECK_EQ(wal_fmt_seg_hdr_decode(b, &h2, &why), WALFMT_OK);
	CHECK_EQ(h2.seq, 7);
	CHECK_EQ(h2.first_batch, 11);
	b[20] ^= 1;
	CHECK_EQ(wal_fmt_seg_hdr_decode(b, &h2, &why), WALFMT_BAD);
	memset(b, 0, 64);
	CHECK_EQ(wal_fmt_seg_hdr_decode(b, &h2, &why), WALFMT_ZERO);

	wal_fmt_meta_encode(b, &m);
	CHECK_EQ(wal_fmt_meta_decode(b, WAL_META_SIZE, &m2, &why), WALFMT_OK);
	CHECK_EQ(m2.term, 5);
	CHECK_EQ(m2.vote, 2);
	CHECK_EQ(wal_fmt_meta_decode(b, WAL_META_SIZE - 1, &m2, &why),
		 WALFMT_BAD);

	CHECK_EQ(wal_rec_size(5), 56);
	wal_fmt_rec_encode(b, &r);
	CHECK_EQ(wal_fmt_rec_peek(b, 64, 56, &size, &why), WALFMT_OK);
	CHECK_EQ(size, 56);
	CHECK_EQ(wal_fmt_rec_peek(b, 64, 55, &size, &why), WALFMT_BAD);
	CHECK_EQ(wal_fmt_rec_peek(b, 56, 56, &size, &why), WALFMT_BAD);
	CHECK_EQ(wal_fmt_rec_decode(b, 64, 56, &r2, &why), WALFMT_OK);
	CHECK(!memcmp(r2.data, "hello", 5));
	CHECK_EQ(r2.index, 9);
	b[54] ^= 0x10; /* padding is covered by the CRC */
	CHECK_EQ(wal_fmt_rec_decode(b, 64, 56, &r2, &why), WALFMT_BAD);
}

TEST(test_snapshot_header_round_trips_and_rejects)
{
	unsigned char b[4096];
	const char *why;
	sr_membership c, c2;
	struct wal_snap_hdr sh = { 0 }, sh2;

	t_cleanup();
	memset(&c, 0, sizeof(c));
	c.n = 2;
	c.members[0].id = 1;
	c.members[0].role = SR_ROLE_VOTER;
	strcpy(c.members[0].addr, "a:1");
	c.members[1].id = 9;
	c.members[1].role = SR_ROLE_LEARNER;
	sh.hdr_size = wal_fmt_snap_hdr_size(&c);
	sh.index = 10;
	sh.term = 2;
	sh.data_size = 77;
	wal_fmt_snap_hdr_encode(b, &sh, &c);
	CHECK_EQ(wal_fmt_snap_hdr_decode(b, sh.hdr_size, &sh2, &c2, &why),
		 WALFMT_OK);
	CHECK_EQ(c2.n, 2);
	CHECK_EQ(c2.members[1].id, 9);
	CHECK(!strcmp(c2.members[0].addr, "a:1"));
	CHECK_EQ(sh2.data_size, 77);
	CHECK_EQ(wal_fmt_snap_hdr_decode(b, sh.hdr_size - 1, &sh2, &c2, &why),
		 WALFMT_BAD);
	b[60] = 0xff; /* member count way out of range */
	CHECK_EQ(wal_fmt_snap_hdr_decode(b, sh.hdr_size, &sh2, &c2, &why),
		 WALFMT_BAD);
}

/* The role word's joint-consensus bits (new role, auto_promote) make the
 * header version 2, so a reader that knows only version 1 refuses the file
 * instead of taking 0x301 for a role; plain roles stay version 1. */
TEST(test_snapshot_header_version_2_only_when_a_role_word_needs_it)
{
	unsigned char b[4096];
	const char *why;
	sr_membership c, c2;
	struct wal_snap_hdr sh = { 0 }, sh2;

	memset(&c, 0, sizeof(c));
	sr_membership_add(&c, 1, SR_ROLE_VOTER, "a:1");
	sr_membership_add(&c, 2, SR_ROLE_LEARNER, "");
	sh.hdr_size = wal_fmt_snap_hdr_size(&c);
	sh.index = 10;
	sh.term = 2;
	wal_fmt_snap_hdr_encode(b, &sh, &c);
	CHECK_EQ(b[8], 1);
	CHECK_EQ(wal_fmt_snap_hdr_decode(b, sh.hdr_size, &sh2, &c2, &why),
		 WALFMT_OK);
	c.members[1].auto_promote = 1;
	wal_fmt_snap_hdr_encode(b, &sh, &c);
	CHECK_EQ(b[8], 2);
	CHECK_EQ(wal_fmt_snap_hdr_decode(b, sh.hdr_size, &sh2, &c2, &why),
		 WALFMT_OK);
	CHECK_EQ(c2.members[1].auto_promote, 1);
	c.members[1].auto_promote = 0;
	c.members[0].new_role = SR_ROLE_REMOVED;
	c.members[1].new_role = SR_ROLE_VOTER;
	wal_fmt_snap_hdr_encode(b, &sh, &c);
	CHECK_EQ(b[8], 2);
	CHECK_EQ(wal_fmt_snap_hdr_decode(b, sh.hdr_size, &sh2, &c2, &why),
		 WALFMT_OK);
	CHECK_EQ(c2.members[0].role, SR_ROLE_VOTER);
	CHECK_EQ(c2.members[0].new_role, SR_ROLE_REMOVED);
	CHECK_EQ(c2.members[1].new_role, SR_ROLE_VOTER);
	/* the same bytes labelled version 1 (CRC fixed up): refused */
	b[8] = 1;
	wal_put32(b + 48,
		  sr_crc32c(sr_crc32c(0, b, 48), b + 52, sh.hdr_size - 52u));
	CHECK_EQ(wal_fmt_snap_hdr_decode(b, sh.hdr_size, &sh2, &c2, &why),
		 WALFMT_BAD);
	/* and plain roles labelled version 2: refused too */
	c.members[0].new_role = c.members[1].new_role = 0;
	wal_fmt_snap_hdr_encode(b, &sh, &c);
	b[8] = 2;
	wal_put32(b + 48,
		  sr_crc32c(sr_crc32c(0, b, 48), b + 52, sh.hdr_size - 52u));
	CHECK_EQ(wal_fmt_snap_hdr_decode(b, sh.hdr_size, &sh2, &c2, &why),
		 WALFMT_BAD);
}

TEST(test_torn_tail_cut_anywhere_in_the_last_batch)
{
	const char *ref, *d;
	uint64_t end;
	int k0;
	sr_index last;

	t_cleanup();
	ref = reference(0);
	end = map_segment(ref, SEG1);
	k0 = last_batch_start();
	for (uint64_t cut = recs[k0].off; cut < end; cut += 29) {
		sr_index want = 40;

		for (int k = k0; k < nrecs; k++)
			if (recs[k].off + recs[k].size <= cut)
				want = recs[k].index;
		d = dir_copy(ref);
		file_cut(d, SEG1, cut);
		CHECK_EQ(reopen(d, 0, &last), 0);
		CHECK_EQ(last, want);
		t_rmrf(d);
		t_ndirs--;
	}
}

WAL_TEST(test_torn_tail_is_zeroed_and_the_log_continues)
{
	const char *ref = reference(0), *d = dir_copy(ref);
	uint64_t end = map_segment(ref, SEG1);
	int k0 = last_batch_start();
	sr_wal *w;
	sr_wal_stats st;
	static unsigned char buf[1 << 20];
	size_t n;

	/* cut in the middle of the third record of the last batch */
	file_cut(d, SEG1, recs[k0 + 2].off + 30);
	w = t_open(d, 0);
	CHECK_EQ(t_load(w).last_index, recs[k0 + 1].index);
	sr_wal_get_stats(w, &st);
	CHECK(st.torn_bytes > 0);
	CHECK(t_logged("torn", SEG1));
	n = file_read(d, SEG1, buf, sizeof(buf));
	CHECK(n >= recs[k0 + 2].off + 30);
	CHECK(wal_fmt_is_zero(buf + recs[k0 + 2].off, 30));
	/* new batches continue where the log ends */
	CHECK_EQ(t_append(w, 1, recs[k0 + 1].index + 1, 60, 1, 400), 0);
	CHECK_EQ(sr_wal_sync(w), 0);
	t_close(w);
	w = t_open(d, 0);
	CHECK_EQ(t_load(w).last_index, 60);
	t_check_range(w, 1, 60, 1, 400);
	(void)end;
}

TEST(test_unwritten_pages_in_the_last_batch_are_a_torn_write)
{
	const char *ref, *d;
	sr_index last;
	int k0;

	t_cleanup();
	ref = reference(0);
	map_segment(ref, SEG1);
	k0 = last_batch_start();
	/* the batch's first page never reached the disk, later ones did */
	d = dir_copy(ref);
	file_zero(d, SEG1, recs[k0].off, 512);
	CHECK_EQ(reopen(d, 0, &last), 0);
	CHECK_EQ(last, 40);
	/* a page in the middle */
	d = dir_copy(ref);
	file_zero(d, SEG1, recs[k0 + 4].off, 100);
	CHECK_EQ(reopen(d, 0, &last), 0);
	CHECK_EQ(last, recs[k0 + 3].index);
}

TEST(test_garbage_after_the_last_record_is_cut)
{
	const char *ref, *d;
	uint64_t end;
	sr_index last;
	unsigned char g[3000];

	t_cleanup();
	ref = reference(0);
	end = map_segment(ref, SEG1);
	for (size_t i = 0; i < sizeof(g); i++)
		g[i] = (unsigned char)(i * 131 + 7);
	d = dir_copy(ref);
	file_write(d, SEG1, end, g, sizeof(g));
	CHECK_EQ(reopen(d, 0, &last), 0);
	CHECK_EQ(last, 50);
	/* zeroed: a second open finds a clean end */
	t_log_n = 0;
	CHECK_EQ(reopen(d, 0, &last), 0);
	CHECK_EQ(last, 50);
	CHECK(!t_logged("torn", NULL));
}

TEST(test_damage_before_the_last_batch_is_corruption)
{
	const char *ref, *d;
	char off[64];
	sr_index last;

	t_cleanup();
	ref = reference(0);
	map_segment(ref, SEG1);
	/* a record of the second batch, in the payload */
	d = dir_copy(ref);
	file_flip(d, SEG1, recs[13].off + 100, 3);
	CHECK_EQ(reopen(d, 0, &last), SR_ECORRUPT);
	snprintf(off, sizeof(off), "offset %llu",
		 (unsigned long long)recs[13].off);
	CHECK(t_logged(SEG1, off));
	CHECK(t_logged(SEG1, "not a torn write"));
	/* the first record of a batch that a later batch follows */
	d = dir_copy(ref);
	file_flip(d, SEG1, recs[30].off + 20, 0);
	CHECK_EQ(reopen(d, 0, &last), SR_ECORRUPT);
	/* zeroed space in the middle of the log */
	d = dir_copy(ref);
	file_zero(d, SEG1, recs[5].off, 200);
	CHECK_EQ(reopen(d, 0, &last), SR_ECORRUPT);
}

/* Flip one bit at many places; check the outcome each time. */
TEST(test_bit_flip_sweep)
{
	const char *ref, *d;
	uint64_t end, last_start;
	int k0, cases = 0, corrupt = 0;

	t_cleanup();
	ref = reference(0);
	end = map_segment(ref, SEG1);
	k0 = last_batch_start();
	last_start = recs[k0].off;
	for (uint64_t off = 0; off < end + 200; off += 11) {
		sr_index last = 0, want = 50;
		int rv;

		for (int k = 0; k < nrecs; k++)
			if (off >= recs[k].off &&
			    off < recs[k].off + recs[k].size)
				want = recs[k].index - 1;
		d = dir_copy(ref);
		file_flip(d, SEG1, off, (int)(off % 8));
		rv = reopen(d, 0, &last);
		if (off < last_start) {
			if (rv != SR_ECORRUPT)
				TEST_FAIL("flip at %llu: %s, last %llu",
					  (unsigned long long)off,
					  sr_strerror(rv),
					  (unsigned long long)last);
			corrupt++;
		} else {
			if (rv != 0 || last != want)
				TEST_FAIL("flip at %llu (last batch): %s, "
					  "last %llu, want %llu",
					  (unsigned long long)off,
					  sr_strerror(rv),
					  (unsigned long long)last,
					  (unsigned long long)want);
		}
		t_rmrf(d);
		t_ndirs--;
		cases++;
	}
	CHECK(cases > 300);
	CHECK(corrupt > 200);
}

static int nsegs; /* segments of the last multi_segment() */

static const char *seg_name(int seq)
{
	static char name[8][32];
	static int k;

	k = (k + 1) % 8;
	snprintf(name[k], sizeof(name[k]), "%016x.wal", seq);
	return name[k];
}

/* At least three segments of 64 KiB, ten batches of 100 entries. */
static const char *multi_segment(void)
{
	const char *dir = t_dir();
	sr_wal *w = t_open(dir, 64 << 10);

	for (sr_index i = 1; i <= 951; i += 50) {
		CHECK_EQ(t_append(w, i, i, i + 49, 1, 400), 0);
		CHECK_EQ(sr_wal_sync(w), 0);
	}
	t_close(w);
	t_as_crashed(dir);
	for (nsegs = 0; t_file_exists(dir, seg_name(nsegs + 1)); nsegs++)
		;
	CHECK(nsegs >= 3);
	return dir;
}

TEST(test_missing_segments_are_corruption)
{
	const char *ref, *d;
	sr_index last;

	t_cleanup();
	ref = multi_segment();
	d = dir_copy(ref);
	file_rm(d, "0000000000000002.wal");
	CHECK_EQ(reopen(d, 0, &last), SR_ECORRUPT);
	CHECK(t_logged("0000000000000002.wal", "missing"));
	d = dir_copy(ref);
	file_rm(d, SEG1);
	CHECK_EQ(reopen(d, 0, &last), SR_ECORRUPT);
	CHECK(t_logged("missing", NULL));
	/* repair: keep what is before the hole */
	d = dir_copy(ref);
	file_rm(d, "0000000000000002.wal");
	map_segment(ref, SEG1);
	CHECK_EQ(reopen(d, 1, &last), 0);
	CHECK_EQ(last, recs[nrecs - 1].index);
	CHECK(t_logged("REPAIR", NULL));
	CHECK(!t_file_exists(d, seg_name(3)));
	CHECK_EQ(reopen(d, 0, &last), 0); /* and it stays consistent */
}

/* Write a valid record after the end of the last segment. */
static void forge(const char *dir, uint64_t off, uint32_t kind, uint64_t index,
		  uint64_t batch, uint64_t batch_off)
{
	unsigned char b[256];
	struct wal_rec r = { .len = 0,
			     .kind = kind,
			     .index = index,
			     .term = kind == WAL_REC_ENTRY ? 1 : 0,
			     .etype = kind == WAL_REC_ENTRY ? 1 : 0,
			     .batch = batch,
			     .batch_off = batch_off };

	wal_fmt_rec_encode(b, &r);
	file_write(dir, SEG1, off, b, wal_rec_size(0));
}

TEST(test_valid_crc_with_impossible_content_is_corruption)
{
	const char *ref, *d;
	uint64_t end, b;
	sr_index last;

	t_cleanup();
	ref = reference(0);
	end = map_segment(ref, SEG1);
	b = recs[nrecs - 1].batch;
	/* an index gap, even at the very end */
	d = dir_copy(ref);
	forge(d, end, WAL_REC_ENTRY, 52, b + 1, end);
	CHECK_EQ(reopen(d, 0, &last), SR_ECORRUPT);
	CHECK(t_logged("index gap", NULL));
	/* a batch number going backwards */
	d = dir_copy(ref);
	forge(d, end, WAL_REC_ENTRY, 51, b - 1, end);
	CHECK_EQ(reopen(d, 0, &last), SR_ECORRUPT);
	/* a truncate outside the log */
	d = dir_copy(ref);
	forge(d, end, WAL_REC_TRUNCATE, 60, b + 1, end);
	CHECK_EQ(reopen(d, 0, &last), SR_ECORRUPT);
	/* while a well-formed one is accepted */
	d = dir_copy(ref);
	forge(d, end, WAL_REC_TRUNCATE, 45, b + 1, end);
	CHECK_EQ(reopen(d, 0, &last), 0);
	CHECK_EQ(last, 44);
}

TEST(test_damaged_headers)
{
	const char *ref, *d;
	sr_index last;
	char p[512];

	t_cleanup();
	ref = multi_segment();
	d = dir_copy(ref);
	file_flip(d, SEG1, 30, 1);
	CHECK_EQ(reopen(d, 0, &last), SR_ECORRUPT);
	CHECK(t_logged(SEG1, "offset 0"));
	d = dir_copy(ref);
	file_flip(d, seg_name(nsegs), 3, 1); /* the last, with records */
	CHECK_EQ(reopen(d, 0, &last), SR_ECORRUPT);
	/* a segment whose creation a crash interrupted: no header, no record */
	d = dir_copy(ref);
	{
		int fd = open(t_path(p, d, seg_name(nsegs + 1)),
			      O_CREAT | O_WRONLY, 0600);

		CHECK(fd >= 0);
		CHECK_EQ(ftruncate(fd, 64 << 10), 0);
		close(fd);
	}
	CHECK_EQ(reopen(d, 0, &last), 0);
	CHECK_EQ(last, 1000);
	/* discarded; the clean close then began a proper one there */
	CHECK(t_seg_empty(d, seg_name(nsegs + 1)));
	{
		unsigned char h[WAL_SEG_HDR];
		struct wal_seg_hdr sh;
		const char *why;

		CHECK_EQ(file_read(d, seg_name(nsegs + 1), h, sizeof(h)),
			 sizeof(h));
		CHECK_EQ(wal_fmt_seg_hdr_decode(h, &sh, &why), WALFMT_OK);
		CHECK_EQ(sh.start_index, 1001);
	}
}

/* Write segment 2 with only a header (first 1, start, first_batch). */
static void header_only(const char *dir, uint64_t start, uint64_t first_batch)
{
	unsigned char h[WAL_SEG_HDR];
	struct wal_seg_hdr sh = { 2, 1, start, first_batch };
	char p[512];
	int fd;

	wal_fmt_seg_hdr_encode(h, &sh);
	fd = open(t_path(p, dir, "0000000000000002.wal"), O_CREAT | O_WRONLY,
		  0600);
	CHECK(fd >= 0);
	CHECK_EQ(ftruncate(fd, 64 << 10), 0);
	CHECK_EQ(pwrite(fd, h, sizeof(h), 0), (ssize_t)sizeof(h));
	close(fd);
}

WAL_TEST(test_header_only_last_segment_is_continued)
{
	const char *ref = reference(0), *d = dir_copy(ref);
	sr_wal *w;

	map_segment(ref, SEG1);
	/* a crash right after the segment was created, before any batch */
	header_only(d, 51, recs[nrecs - 1].batch + 1);
	w = t_open(d, 64 << 10);
	CHECK_EQ(t_load(w).last_index, 50);
	CHECK_EQ(t_append(w, 1, 51, 55, 1, 400), 0);
	CHECK_EQ(sr_wal_sync(w), 0);
	t_close(w);
	CHECK(t_file_exists(d, "0000000000000002.wal"));
	w = t_open(d, 64 << 10);
	CHECK_EQ(t_load(w).last_index, 55);
	t_check_range(w, 1, 55, 1, 400);
}

TEST(test_segment_header_that_disagrees_with_the_log_is_corruption)
{
	const char *ref, *d;
	sr_index last;

	t_cleanup();
	ref = reference(0);
	map_segment(ref, SEG1);
	d = dir_copy(ref);
	header_only(d, 51, recs[nrecs - 1].batch); /* batch numbers reused */
	CHECK_EQ(reopen(d, 0, &last), SR_ECORRUPT);
	CHECK(t_logged("0000000000000002.wal", "backwards"));
	d = dir_copy(ref);
	header_only(d, 57, recs[nrecs - 1].batch + 1); /* entries 51..56? */
	CHECK_EQ(reopen(d, 0, &last), SR_ECORRUPT);
	CHECK(t_logged("0000000000000002.wal", "index gap"));
}

TEST(test_damaged_meta_is_never_repaired)
{
	const char *ref, *d;
	sr_index last;

	t_cleanup();
	ref = reference(0);
	d = dir_copy(ref);
	file_flip(d, "meta", 20, 2);
	CHECK_EQ(reopen(d, 0, &last), SR_ECORRUPT);
	CHECK(t_logged("meta", "offset 0"));
	CHECK_EQ(reopen(d, 1, &last), SR_ECORRUPT);
	d = dir_copy(ref);
	file_rm(d, "meta");
	CHECK_EQ(reopen(d, 0, &last), SR_ECORRUPT);
	CHECK(t_logged("meta", "missing"));
}

TEST(test_damaged_snapshot)
{
	const char *ref, *d;
	sr_wal *w;
	sr_index last;

	t_cleanup();
	ref = reference(0);
	w = t_open(ref, 0);
	CHECK_EQ(OPS->snapshot_begin(w, 30, 1, NULL), 0);
	CHECK_EQ(OPS->snapshot_write(w, 0, "snapshot data", 13), 0);
	CHECK_EQ(OPS->snapshot_finish(w, 1), 0);
	t_close(w);
	d = dir_copy(ref);
	file_flip(d, "000000000000001e.snap", 70, 4);
	CHECK_EQ(reopen(d, 0, &last), SR_ECORRUPT);
	CHECK(t_logged("000000000000001e.snap", "CRC"));
	/* repair drops it; the log (never compacted) is whole */
	CHECK_EQ(reopen(d, 1, &last), 0);
	CHECK_EQ(last, 50);
	CHECK(!t_file_exists(d, "000000000000001e.snap"));
	d = dir_copy(ref);
	file_cut(d, "000000000000001e.snap", 70);
	CHECK_EQ(reopen(d, 0, &last), SR_ECORRUPT);
	CHECK(t_logged("size", NULL));
}

TEST(test_repair_truncates_at_the_first_bad_record)
{
	const char *ref, *d;
	sr_index last;

	t_cleanup();
	ref = reference(0);
	map_segment(ref, SEG1);
	d = dir_copy(ref);
	file_flip(d, SEG1, recs[17].off + 60, 5);
	CHECK_EQ(reopen(d, 0, &last), SR_ECORRUPT);
	CHECK_EQ(reopen(d, 1, &last), 0);
	CHECK_EQ(last, recs[17].index - 1);
	CHECK(t_logged("REPAIR", "acknowledged"));
	t_log_n = 0;
	CHECK_EQ(reopen(d, 0, &last), 0);
	CHECK_EQ(last, recs[17].index - 1);
}

/* ---- protocol-aware repair (SR_WAL_REPAIR_PEERS, the default) ---- */

/* Open with the default options; *d gets what load() reports. */
static sr_wal *open_peers(const char *dir, sr_durable *d)
{
	sr_wal_options o;
	sr_wal *w;

	t_opts(&o, dir);
	CHECK_EQ(o.repair, SR_WAL_REPAIR_PEERS);
	CHECK_EQ(t_open_opts(&o, &w), 0);
	*d = t_load(w);
	if (d->last_index >= d->first_index)
		t_check_range(w, d->first_index, d->last_index, 1, 400);
	return w;
}

TEST(test_repair_torn_tail_is_cut_and_reports_no_loss)
{
	const char *ref, *d;
	sr_durable ld;
	sr_wal *w;
	int k;

	t_cleanup();
	ref = reference(0);
	map_segment(ref, SEG1);
	k = last_batch_start();
	d = dir_copy(ref);
	file_flip(d, SEG1, recs[k].off + 60, 1); /* the last batch: torn */
	w = open_peers(d, &ld);
	CHECK_EQ(ld.last_index, recs[k].index - 1);
	CHECK_EQ(ld.lost_first, 0);
	CHECK_EQ(ld.lost_last, 0);
	t_close(w);
	CHECK(!t_file_exists(d, "lost"));
}

/*
 * After a clean close the last batch is not the last thing on disk: the
 * damage that test_repair_torn_tail_is_cut_and_reports_no_loss cuts as a
 * torn write is corruption, refused or reported for repair, since that
 * batch was synced and may have been acknowledged.
 */
TEST(test_a_clean_close_makes_damage_in_the_last_batch_corruption)
{
	const char *dir, *d;
	sr_durable ld;
	sr_index last;
	sr_wal *w;
	int k;

	t_cleanup();
	dir = reference_closed(0);
	CHECK(t_seg_empty(dir, "0000000000000002.wal"));
	map_segment(dir, SEG1);
	k = last_batch_start();
	CHECK_EQ(recs[k].index, 41);
	d = dir_copy(dir);
	file_flip(d, SEG1, recs[k].off + 60, 1);
	CHECK_EQ(reopen(d, 0, &last), SR_ECORRUPT);
	CHECK(t_logged(SEG1, "CRC mismatch"));
	d = dir_copy(dir);
	file_flip(d, SEG1, recs[k].off + 60, 1);
	w = open_peers(d, &ld);
	CHECK_EQ(ld.last_index, 40);
	CHECK_EQ(ld.lost_first, 41);
	CHECK_EQ(ld.lost_last, 50);
	t_close(w);
	/* the same damage where a crash left the directory: torn */
	d = dir_copy(dir);
	t_as_crashed(d);
	file_flip(d, SEG1, recs[k].off + 60, 1);
	CHECK_EQ(reopen(d, 0, &last), 0);
	CHECK_EQ(last, 40);
}

/* The empty segment a clean close begins is where the next records go:
 * a close adds a file only when something was written since the last. */
WAL_TEST(test_a_clean_close_begins_a_segment_the_next_open_continues)
{
	const char *dir = t_dir();
	sr_wal *w = t_open(dir, 64 << 10);

	CHECK_EQ(t_append(w, 1, 1, 10, 1, 400), 0);
	CHECK_EQ(sr_wal_sync(w), 0);
	t_close(w);
	CHECK(t_seg_empty(dir, "0000000000000002.wal"));
	w = t_open(dir, 64 << 10);
	CHECK_EQ(t_load(w).last_index, 10);
	t_close(w);
	CHECK(!t_file_exists(dir, "0000000000000003.wal"));
	w = t_open(dir, 64 << 10);
	CHECK_EQ(t_append(w, 11, 11, 20, 1, 400), 0);
	CHECK_EQ(sr_wal_sync(w), 0);
	t_close(w);
	CHECK(!t_seg_empty(dir, "0000000000000002.wal"));
	CHECK(t_seg_empty(dir, "0000000000000003.wal"));
	CHECK(!t_file_exists(dir, "0000000000000004.wal"));
	w = t_open(dir, 64 << 10);
	CHECK_EQ(t_load(w).last_index, 20);
	t_check_range(w, 1, 20, 1, 400);
	t_close(w);
	t_cleanup();
}

TEST(test_repair_middle_corruption_is_reported_as_a_range_until_refetched)
{
	const char *ref, *d;
	sr_durable ld;
	sr_index cut;
	sr_wal *w;

	t_cleanup();
	ref = reference(0);
	w = t_open(ref, 0);
	CHECK_EQ(OPS->set_hard_state(w, 7, 3), 0);
	t_close(w);
	map_segment(ref, SEG1);
	d = dir_copy(ref);
	file_flip(d, SEG1, recs[17].off + 60, 5); /* batch 2 of 5 */
	cut = recs[17].index - 1;
	w = open_peers(d, &ld);
	CHECK_EQ(ld.term, 7); /* identity and vote kept */
	CHECK_EQ(ld.vote, 3);
	CHECK_EQ(ld.last_index, cut);
	CHECK_EQ(ld.lost_first, cut + 1);
	CHECK_EQ(ld.lost_last, 50); /* the later batches held up to 50 */
	CHECK(t_logged("REPAIR", "up to 50"));
	t_close(w);
	CHECK(t_file_exists(d, "lost"));
	/* a restart before the repair still reports it, with the term
	 * bound of when the loss was found: elections it could not win
	 * since (term 12 here) do not raise it */
	w = open_peers(d, &ld);
	CHECK_EQ(ld.lost_first, cut + 1);
	CHECK_EQ(ld.lost_last, 50);
	CHECK_EQ(ld.lost_term, 7);
	CHECK_EQ(OPS->set_hard_state(w, 12, 0), 0);
	t_close(w);
	w = open_peers(d, &ld);
	CHECK_EQ(ld.term, 12);
	CHECK_EQ(ld.lost_last, 50);
	CHECK_EQ(ld.lost_term, 7);
	/* the leader sends the entries back, up to 50: not yet proof */
	CHECK_EQ(t_append(w, 1, cut + 1, 50, 1, 400), 0);
	CHECK_EQ(sr_wal_sync(w), 0);
	t_close(w);
	w = open_peers(d, &ld);
	CHECK_EQ(ld.last_index, 50);
	CHECK_EQ(ld.lost_first, 50);
	CHECK_EQ(ld.lost_last, 50);
	/* an entry past the range was appended after a consistency check
	 * covering everything before it: repaired */
	CHECK_EQ(t_append(w, 2, 51, 51, 1, 400), 0);
	CHECK_EQ(sr_wal_sync(w), 0);
	t_close(w);
	w = open_peers(d, &ld);
	CHECK_EQ(ld.last_index, 51);
	CHECK_EQ(ld.lost_last, 0);
	CHECK(t_logged("repair complete", NULL));
	t_close(w);
	CHECK(!t_file_exists(d, "lost"));
}

TEST(test_repair_survey_reaches_later_segments)
{
	const char *dir;
	sr_durable ld;
	sr_wal *w;

	t_cleanup();
	dir = t_dir();
	w = t_open(dir, 64 << 10);
	for (sr_index i = 1; i <= 451; i += 50) {
		CHECK_EQ(t_append(w, i, i, i + 49, 1, 400), 0);
		CHECK_EQ(sr_wal_sync(w), 0);
	}
	t_close(w);
	CHECK(t_file_exists(dir, "0000000000000002.wal"));
	map_segment(dir, SEG1);
	file_flip(dir, SEG1, recs[nrecs / 2].off + 50, 3);
	w = open_peers(dir, &ld);
	CHECK_EQ(ld.last_index, recs[nrecs / 2].index - 1);
	CHECK_EQ(ld.lost_first, ld.last_index + 1);
	CHECK_EQ(ld.lost_last, 500);
	t_close(w);
	/* the damaged segment's successors are gone; the clean close
	 * began an empty one after the cut */
	CHECK(t_seg_empty(dir, "0000000000000002.wal"));
	CHECK(!t_file_exists(dir, "0000000000000003.wal"));
}

TEST(test_repair_corrupt_snapshot_is_discarded_and_reported)
{
	const char *ref, *d;
	sr_durable ld;
	sr_wal *w;

	t_cleanup();
	ref = reference(0);
	w = t_open(ref, 0);
	CHECK_EQ(OPS->set_hard_state(w, 4, 1), 0);
	CHECK_EQ(OPS->snapshot_begin(w, 30, 1, NULL), 0);
	CHECK_EQ(OPS->snapshot_write(w, 0, "snapshot data", 13), 0);
	CHECK_EQ(OPS->snapshot_finish(w, 1), 0);
	CHECK_EQ(OPS->compact(w, 30), 0);
	CHECK_EQ(sr_wal_sync(w), 0);
	t_close(w);
	d = dir_copy(ref);
	file_flip(d, "000000000000001e.snap", 70, 4);
	/* without the snapshot the log (31..50) has nothing to start
	 * from: dropped, and the whole of it is to be fetched again */
	w = open_peers(d, &ld);
	CHECK_EQ(ld.term, 4);
	CHECK_EQ(ld.vote, 1);
	CHECK_EQ(ld.snapshot_index, 0);
	CHECK_EQ(ld.last_index, 0);
	CHECK_EQ(ld.lost_first, 1);
	CHECK_EQ(ld.lost_last, 50);
	CHECK(!t_file_exists(d, "000000000000001e.snap"));
	CHECK(t_logged("REPAIR", "leader sends it again"));
	/* the leader's snapshot covers the range: repaired */
	CHECK_EQ(OPS->snapshot_begin(w, 60, 2, NULL), 0);
	CHECK_EQ(OPS->snapshot_write(w, 0, "new", 3), 0);
	CHECK_EQ(OPS->snapshot_finish(w, 1), 0);
	CHECK_EQ(OPS->compact(w, 60), 0);
	CHECK_EQ(sr_wal_sync(w), 0);
	t_close(w);
	w = open_peers(d, &ld);
	CHECK_EQ(ld.snapshot_index, 60);
	CHECK_EQ(ld.lost_last, 0);
	t_close(w);
	CHECK(!t_file_exists(d, "lost"));
}

/* A copy of the reference damaged at batch 2, opened once with the
 * default repair: it now has a lost file for entries up to 50. */
static const char *dir_with_lost_file(void)
{
	const char *ref, *d;
	sr_durable ld;
	sr_wal *w;

	t_cleanup();
	ref = reference(0);
	map_segment(ref, SEG1);
	d = dir_copy(ref);
	file_flip(d, SEG1, recs[5].off + 60, 5);
	w = open_peers(d, &ld);
	CHECK_EQ(ld.lost_last, 50);
	t_close(w);
	return d;
}

/* A lost file of version 1 (no term) still opens; its term is unknown
 * (0) and the engine then bounds the lost terms by the current term. */
TEST(test_repair_lost_file_of_version_1)
{
	unsigned char v1[WAL_LOST_SIZE_V1], cur[64];
	const char *d;
	sr_durable ld;
	sr_wal *w;

	d = dir_with_lost_file();
	CHECK_EQ(file_read(d, "lost", cur, sizeof(cur)), WAL_LOST_SIZE);
	memcpy(v1, WAL_LOST_MAGIC, 8);
	wal_put64(v1 + 8, 50);
	wal_put32(v1 + 16, 0);
	wal_put32(v1 + 20, sr_crc32c(0, v1, 20));
	file_rm(d, "lost");
	file_write(d, "lost", 0, v1, sizeof(v1));
	w = open_peers(d, &ld);
	CHECK_EQ(ld.lost_last, 50);
	CHECK_EQ(ld.lost_term, 0);
	t_close(w);
}

/* The operator's override: reopening with SR_WAL_REPAIR_TRUNCATE forgets
 * a lost range (loudly) so the node votes again without it. */
TEST(test_repair_truncate_mode_forgets_the_lost_range)
{
	const char *d;
	sr_durable ld;
	sr_index last;
	sr_wal *w;

	d = dir_with_lost_file();
	/* without repair the range stays: never forgotten silently */
	CHECK_EQ(reopen(d, 0, &last), 0);
	CHECK(t_file_exists(d, "lost"));
	t_log_n = 0;
	CHECK_EQ(reopen(d, 1, &last), 0);
	CHECK_EQ(last, recs[5].index - 1);
	CHECK(t_logged("forgetting the lost range", "MAY BE LOST"));
	CHECK(!t_file_exists(d, "lost"));
	w = open_peers(d, &ld);
	CHECK_EQ(ld.lost_first, 0);
	CHECK_EQ(ld.lost_last, 0);
	t_close(w);
}

TEST(test_repair_damaged_lost_file_refuses_to_open)
{
	const char *d;
	sr_index last;

	d = dir_with_lost_file();
	file_flip(d, "lost", 9, 0);
	CHECK_EQ(reopen(d, 0, &last), SR_ECORRUPT);
	CHECK(t_logged("lost file is damaged", NULL));
}

WAL_TEST(test_segments_left_behind_by_a_crash_during_cleanup)
{
	const char *dir = t_dir(), *before;
	sr_wal *w = t_open(dir, 64 << 10);
	sr_index last;

	for (sr_index i = 1; i <= 451; i += 50)
		CHECK_EQ(t_append(w, i, i, i + 49, 1, 400), 0);
	CHECK_EQ(sr_wal_sync(w), 0);
	t_close(w);
	before = dir_copy(dir);
	w = t_open(dir, 64 << 10);
	CHECK_EQ(OPS->snapshot_begin(w, 300, 1, NULL), 0);
	CHECK_EQ(OPS->snapshot_finish(w, 1), 0);
	CHECK_EQ(OPS->compact(w, 300), 0);
	CHECK_EQ(sr_wal_sync(w), 0);
	t_close(w);
	CHECK(!t_file_exists(dir, SEG1));
	/* the unlinks never reached the disk: old segments are back */
	{
		static unsigned char buf[1 << 20];
		size_t n = file_read(before, SEG1, buf, sizeof(buf));

		file_write(dir, SEG1, 0, buf, n);
	}
	w = t_open(dir, 64 << 10);
	CHECK_EQ(t_load(w).first_index, 301);
	CHECK_EQ(t_load(w).last_index, 500);
	t_check_range(w, 301, 500, 1, 400);
	CHECK_EQ(sr_wal_sync(w), 0);
	CHECK(!t_file_exists(dir, SEG1)); /* deleted again */
	t_close(w);
	CHECK_EQ(reopen(dir, 0, &last), 0);
	CHECK_EQ(last, 500);
}

int main(int argc, char **argv)
{
	int rv = test_main(argc, argv);

	t_cleanup();
	return rv;
}

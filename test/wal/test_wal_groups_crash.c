/*
 * test_wal_groups_crash.c — one batch carrying the appends of several
 * groups is lost or torn at every byte boundary; recovery must give every
 * group a prefix of its appends consistent with the one stream they
 * share.
 *
 * Setup: groups 0..4 each hold a few durable entries.  Then one batch
 * (sr_wal_hold, appends interleaved over the groups, sr_wal_write_now)
 * puts 15 records of five groups between offsets X and Y of the segment;
 * nothing of it was acknowledged when the "crash" happens.  For every k
 * in 0..Y-X the directory is rebuilt from the bytes after that batch,
 * damaged one of three ways, and opened with SR_WAL_REPAIR_NONE (so any
 * verdict of corruption fails the test: a torn batch must never look
 * like corruption):
 *
 *   cut      bytes X+k..Y are zero (the write stopped at k; k = 0: the
 *            whole batch was lost);
 *   garbage  bytes X+k..Y are random (the sectors after k hold junk);
 *   hole     bytes X..X+k are zero and the rest was written (sectors
 *            reached the disk out of order).
 *
 * Expected: the records wholly before the first damaged byte survive and
 * nothing after it (for "hole" with k > 0: none of the batch).  Each
 * group's log is then its durable entries plus exactly its records among
 * the survivors, with the right bytes; and the WAL takes new appends
 * after it and keeps them across another restart.
 *
 * SR_WAL_TORN_STEP=n tries every n-th byte boundary only (default 1).
 */
#include "wal_format.h"
#include "walt.h"

#define GOPS   sr_wal_group_storage_ops()
#define SEG    (64u << 10)
#define NG     5 /* groups 0..4 */
#define ROUNDS 3
#define PRE    3 /* durable entries per group before the batch */

struct rec {
	uint64_t off, size;
	uint32_t group;
	uint64_t batch;
};

static struct rec recs[256];
static int nrecs;

struct file {
	char name[64];
	unsigned char *buf;
	size_t len;
};

static struct file files[16];
static int nfiles;
static unsigned char work[SEG];

static sr_term term_of(uint32_t g)
{
	return 100 + g;
}

static void *ctx_of(sr_wal *w, sr_wal_group **h, uint32_t g)
{
	return g ? (void *)h[g] : (void *)w;
}

static void read_files(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	CHECK(d != NULL);
	nfiles = 0;
	while ((de = readdir(d))) {
		char p[2048];
		struct stat st;
		int fd;

		if (de->d_name[0] == '.' || !strcmp(de->d_name, "LOCK") ||
		    strlen(de->d_name) >= sizeof(files[0].name))
			continue;
		CHECK(nfiles < 16);
		memcpy(files[nfiles].name, de->d_name, strlen(de->d_name) + 1);
		snprintf(p, sizeof(p), "%s/%s", dir, files[nfiles].name);
		fd = open(p, O_RDONLY);
		CHECK(fd >= 0 && fstat(fd, &st) == 0);
		files[nfiles].len = (size_t)st.st_size;
		files[nfiles].buf = malloc(files[nfiles].len + 1);
		CHECK(files[nfiles].buf != NULL);
		CHECK_EQ(read(fd, files[nfiles].buf, files[nfiles].len),
			 (ssize_t)files[nfiles].len);
		close(fd);
		nfiles++;
	}
	closedir(d);
}

static void free_files(void)
{
	for (int i = 0; i < nfiles; i++)
		free(files[i].buf);
	nfiles = 0;
}

/* Write every file back into dir, the segment from seg. */
static void write_files(const char *dir, const unsigned char *seg)
{
	for (int i = 0; i < nfiles; i++) {
		char p[2048];
		int fd;

		snprintf(p, sizeof(p), "%s/%s", dir, files[i].name);
		fd = open(p, O_CREAT | O_TRUNC | O_WRONLY, 0600);
		const void *b = strstr(files[i].name, ".wal") ? seg
							      : files[i].buf;

		CHECK(fd >= 0);
		CHECK_EQ(write(fd, b, files[i].len), (ssize_t)files[i].len);
		close(fd);
	}
}

static const struct file *segment(void)
{
	for (int i = 0; i < nfiles; i++)
		if (!strcmp(files[i].name, "0000000000000001.wal"))
			return &files[i];
	TEST_FAIL("no segment 1");
}

/* The records of the segment, in order. */
static void walk(const unsigned char *seg, size_t len)
{
	uint64_t off = WAL_SEG_HDR, size;
	const char *why;

	nrecs = 0;
	while (off + WAL_REC_HDR <= len &&
	       sr_walfmt_rec_peek(seg + off, off, len - off, &size, &why) ==
		       WALFMT_OK) {
		struct wal_rec r;

		CHECK_EQ(sr_walfmt_rec_decode(seg + off, off, size, &r, &why),
			 WALFMT_OK);
		CHECK(nrecs < 256);
		recs[nrecs].off = off;
		recs[nrecs].size = size;
		recs[nrecs].group = r.group;
		recs[nrecs].batch = r.batch;
		nrecs++;
		off += size;
	}
}

static void check_group(void *ctx, uint32_t g, sr_index last)
{
	static sr_entry out[64];
	sr_durable d;
	size_t n;

	CHECK_EQ(GOPS->load(ctx, &d), 0);
	if (d.last_index != last)
		TEST_FAIL("group %u: last %llu, want %llu", g,
			  (unsigned long long)d.last_index,
			  (unsigned long long)last);
	CHECK_EQ(d.lost_last, 0);
	CHECK_EQ(GOPS->read(ctx, 1, 64, 1 << 20, out, &n), 0);
	CHECK_EQ(n, last);
	for (size_t i = 0; i < n; i++)
		CHECK(t_entry_ok(&out[i], term_of(g), t_len(i + 1, 16)));
}

static int append_one(void *ctx, uint64_t token, uint32_t g, sr_index i)
{
	sr_entry e = t_entry(i, term_of(g), t_len(i, 16), 0);

	return GOPS->append(ctx, token, &e, 1);
}

enum { CUT, GARBAGE, HOLE };

/* Build, open and check one damaged copy; returns records kept. */
static int one_case(const char *dir, int how, uint64_t k, uint64_t x,
		    uint64_t y, int first_rec)
{
	const struct file *sf = segment();
	uint64_t bad = y;
	sr_index want[NG];
	sr_wal_group *h[NG] = { 0 };
	sr_wal_options o;
	sr_wal *w;
	int kept = 0, rv;

	memcpy(work, sf->buf, sf->len);
	if (how == CUT) {
		memset(work + x + k, 0, y - x - k);
	} else if (how == GARBAGE) {
		uint64_t r = k * 0x9e3779b97f4a7c15ull + 1;

		for (uint64_t i = x + k; i < y; i++) {
			r ^= r << 13, r ^= r >> 7, r ^= r << 17;
			work[i] = (unsigned char)r;
		}
	} else {
		memset(work + x, 0, k);
	}
	write_files(dir, work);
	/* the first byte the damage changed (zeroing a zero changes
	 * nothing): records wholly before it are intact */
	for (uint64_t i = x; i < y; i++)
		if (work[i] != sf->buf[i]) {
			bad = i;
			break;
		}
	for (uint32_t g = 0; g < NG; g++)
		want[g] = PRE;
	for (int i = first_rec; i < nrecs; i++) {
		if (recs[i].off + recs[i].size > bad)
			break;
		want[recs[i].group]++;
		kept++;
	}
	t_opts(&o, dir);
	o.segment_size = SEG;
	o.repair = SR_WAL_REPAIR_NONE;
	rv = t_open_opts(&o, &w);
	if (rv)
		TEST_FAIL("damage %d at k=%llu: open: %s", how,
			  (unsigned long long)k, sr_strerror(rv));
	for (uint32_t g = 1; g < NG; g++)
		CHECK_EQ(sr_wal_group_open(w, g, &h[g]), 0);
	for (uint32_t g = 0; g < NG; g++)
		check_group(ctx_of(w, h, g), g, want[g]);
	/* the WAL goes on from there, and keeps what it writes next */
	if (k % 61 == 0) {
		for (uint32_t g = 0; g < NG; g++)
			CHECK_EQ(append_one(ctx_of(w, h, g), 9, g, want[g] + 1),
				 0);
		CHECK_EQ(sr_wal_sync(w), 0);
		t_close(w);
		w = t_open(dir, SEG);
		for (uint32_t g = 1; g < NG; g++)
			CHECK_EQ(sr_wal_group_open(w, g, &h[g]), 0);
		for (uint32_t g = 0; g < NG; g++)
			check_group(ctx_of(w, h, g), g, want[g] + 1);
	}
	t_close(w);
	return kept;
}

/*
 * Where the damaged copies go: thousands of opens, each with fsyncs, so
 * tmpfs when there is one (recovery reads the same bytes either way).
 */
static const char *copy_dir(void)
{
	static char path[256];
	struct stat st;

	if (stat("/dev/shm", &st) != 0 || !S_ISDIR(st.st_mode))
		return t_dir();
	snprintf(path, sizeof(path), "/dev/shm/walt-torn-XXXXXX");
	if (!mkdtemp(path))
		return t_dir();
	rmdir(path);
	snprintf(t_dirs[t_ndirs], sizeof(t_dirs[0]), "%s", path);
	return t_dirs[t_ndirs++]; /* removed by t_cleanup */
}

WAL_TEST(test_a_torn_batch_of_many_groups_leaves_each_a_prefix)
{
	const char *dir = t_dir(), *copy = copy_dir();
	sr_wal_group *h[NG] = { 0 };
	sr_wal *w = t_open(dir, SEG);
	uint64_t x = 0, y = 0, last_batch = 0;
	int first = -1, groups_in_batch = 0, seen[NG] = { 0 };
	int cases = 0, want_cases = 0, kept_some = 0;
	uint64_t step = 1;

	if (getenv("SR_WAL_TORN_STEP"))
		step = (uint64_t)atoi(getenv("SR_WAL_TORN_STEP"));
	if (!step)
		step = 1;

	for (uint32_t g = 1; g < NG; g++)
		CHECK_EQ(sr_wal_group_open(w, g, &h[g]), 0);
	for (uint32_t g = 0; g < NG; g++)
		for (sr_index i = 1; i <= PRE; i++)
			CHECK_EQ(append_one(ctx_of(w, h, g), 1, g, i), 0);
	CHECK_EQ(sr_wal_sync(w), 0);
	/* the batch: interleaved over the groups, one write */
	sr_wal_hold(w);
	for (int r = 0; r < ROUNDS; r++)
		for (uint32_t g = 0; g < NG; g++)
			CHECK_EQ(
				append_one(ctx_of(w, h, (g + (uint32_t)r) % NG),
					   2, (g + (uint32_t)r) % NG,
					   PRE + 1 + (sr_index)r),
				0);
	sr_wal_write_now(w);
	CHECK_EQ(sr_wal_sync(w), 0);
	t_close(w);

	read_files(dir);
	walk(segment()->buf, segment()->len);
	for (int i = 0; i < nrecs; i++)
		if (recs[i].batch > last_batch)
			last_batch = recs[i].batch;
	for (int i = 0; i < nrecs; i++) {
		if (recs[i].batch != last_batch)
			continue;
		if (first < 0) {
			first = i;
			x = recs[i].off;
		}
		y = recs[i].off + recs[i].size;
		if (!seen[recs[i].group]++)
			groups_in_batch++;
	}
	/* one batch, all of it: 15 records of 5 groups */
	CHECK(first >= 0);
	CHECK_EQ(nrecs - first, NG * ROUNDS);
	CHECK_EQ(groups_in_batch, NG);
	CHECK_EQ(mkdir(copy, 0700), 0);
	for (int how = CUT; how <= HOLE; how++) {
		for (uint64_t k = 0; k <= y - x; k += step) {
			int kept = one_case(copy, how, k, x, y, first);

			kept_some += kept > 0 && kept < NG * ROUNDS;
			cases++;
		}
		want_cases += (int)((y - x) / step + 1);
	}
	CHECK_EQ(cases, want_cases);
	CHECK(kept_some > 0);
	free_files();
	t_cleanup();
}

int main(int argc, char **argv)
{
	int rv = test_main(argc, argv);

	t_cleanup();
	return rv;
}

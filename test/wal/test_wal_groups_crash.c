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
 *
 * Then the same property under kill -9 (test_kill_9_...): a child appends
 * to eight groups at random (up to 64 appends in flight, snapshots and
 * compactions now and then, small segments so they roll and get deleted)
 * and reports each append before making it and each completion; the
 * parent kills it at a random moment, opens the directory and checks that
 * the appends that survived are a prefix of the order they were made in,
 * over all groups together, that contains every acknowledged one, with
 * every byte intact; and that every group's term and vote reported
 * durable (set_hard_state() returned, or sr_wal_sync_hard_state() after
 * deferred ones) is there, or a later one, even after the segment that
 * held it was deleted.  SR_WAL_GROUPS_KILLS sets the number of kills
 * (default 60, split over the engines).
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

/* Remove the files of dir that read_files() did not read: the empty
 * segment that the previous case's clean close left. */
static void remove_others(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	CHECK(d != NULL);
	while ((de = readdir(d))) {
		char p[2048];
		int known = de->d_name[0] == '.' || !strcmp(de->d_name, "LOCK");

		for (int i = 0; i < nfiles && !known; i++)
			known = !strcmp(files[i].name, de->d_name);
		if (known)
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		CHECK_EQ(unlink(p), 0);
	}
	closedir(d);
}

/* Write every file back into dir, the segment from seg. */
static void write_files(const char *dir, const unsigned char *seg)
{
	remove_others(dir);
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
	       wal_fmt_rec_peek(seg + off, off, len - off, &size, &why) ==
		       WALFMT_OK) {
		struct wal_rec r;

		CHECK_EQ(wal_fmt_rec_decode(seg + off, off, size, &r, &why),
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
	t_as_crashed(dir); /* else the batch is not the last: corruption */

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

/* ------------------------------------------------------------------ */
/* kill -9                                                            */
/* ------------------------------------------------------------------ */

#define KG	 8 /* groups 0..7 */
#define KSEG	 (64u << 10)
#define KMAXLEN	 200
#define INFLIGHT 64

enum { EV_READY = 1, EV_APPEND, EV_ACK, EV_SNAP, EV_FAIL, EV_HS };

struct ev {
	uint32_t type, group;
	uint64_t a, b;
};

static int c_pipe, c_inflight;
static sr_index c_acked[KG];   /* per group: highest acknowledged index */
static sr_index c_hi[1 << 16]; /* token -> last index of that append */

static void c_send(uint32_t type, uint32_t g, uint64_t a, uint64_t b)
{
	struct ev e = { type, g, a, b };

	if (write(c_pipe, &e, sizeof(e)) != sizeof(e))
		_exit(3);
}

static void c_done(void *ctx, uint64_t token, int status)
{
	uint32_t g = (uint32_t)(uintptr_t)ctx;

	if (status)
		_exit(4);
	c_send(EV_ACK, g, token, 0);
	c_inflight--;
	if (c_hi[token & 0xffff] > c_acked[g])
		c_acked[g] = c_hi[token & 0xffff];
}

static void c_fail(int rv)
{
	c_send(EV_FAIL, 0, (uint64_t)-rv, 0);
	_exit(2);
}

static void c_append(void *ctx, uint32_t g, uint64_t token, sr_index lo,
		     sr_index hi)
{
	static sr_entry es[16];
	size_t off = 0, n = 0;
	int rv;

	for (sr_index i = lo; i <= hi; i++) {
		uint32_t len = t_len(i, KMAXLEN);

		es[n++] = t_entry(i, term_of(g), len, off);
		off += len;
	}
	if ((rv = GOPS->append(ctx, token, es, n)))
		c_fail(rv);
}

static void c_snapshot(void *ctx, uint32_t g, sr_index *first, sr_index *snap)
{
	sr_index s = c_acked[g];
	int rv;

	if (s <= *snap + 50)
		return;
	if ((rv = GOPS->snapshot_begin(ctx, s, term_of(g), NULL)) ||
	    (rv = GOPS->snapshot_write(ctx, 0, "snap", 4)) ||
	    (rv = GOPS->snapshot_finish(ctx, 1)))
		c_fail(rv);
	c_send(EV_SNAP, g, s, 0);
	*snap = s;
	if ((rv = GOPS->compact(ctx, s - 10)))
		c_fail(rv);
	*first = s - 9;
}

/*
 * Raise the term of group g (>= 1) and vote, or of up to three groups
 * at once with deferred hard states and one sync; each is reported
 * once it is durable (what a vote response would wait for).
 */
static void c_hard_state(sr_wal *w, void **ctx, sr_term *term, sr_id *vote,
			 uint32_t g)
{
	int n = 1 + (int)(t_rnd() % 3), defer = (int)(t_rnd() % 2), rv;
	uint32_t gs[3];

	sr_wal_defer_hard_state(w, defer);
	for (int i = 0; i < n; i++) {
		gs[i] = 1 + (g + (uint32_t)i) % (KG - 1);
		term[gs[i]]++;
		vote[gs[i]] = t_rnd() % 3;
		rv = GOPS->set_hard_state(ctx[gs[i]], term[gs[i]], vote[gs[i]]);
		if (rv)
			c_fail(rv);
		if (!defer)
			c_send(EV_HS, gs[i], term[gs[i]], vote[gs[i]]);
	}
	if (!defer)
		return;
	if ((rv = sr_wal_sync_hard_state(w)))
		c_fail(rv);
	for (int i = 0; i < n; i++)
		c_send(EV_HS, gs[i], term[gs[i]], vote[gs[i]]);
}

static void child_main(int engine, const char *dir, uint64_t seed)
{
	sr_index last[KG], first[KG], snap[KG];
	sr_term term[KG];
	sr_id vote[KG];
	void *ctx[KG];
	sr_wal_options o;
	uint64_t token = 0;
	sr_wal *w;
	int rv;

	t_rng_state = seed;
	sr_wal_options_init(&o, dir);
	o.engine = engine;
	o.segment_size = KSEG;
	if ((rv = sr_wal_open(&o, &w)))
		c_fail(rv);
	for (uint32_t g = 0; g < KG; g++) {
		sr_durable d;

		ctx[g] = w;
		if (g &&
		    (rv = sr_wal_group_open(w, g, (sr_wal_group **)&ctx[g])))
			c_fail(rv);
		if (g)
			sr_wal_group_set_done(ctx[g], c_done,
					      (void *)(uintptr_t)g);
		else
			sr_wal_set_done(w, c_done, (void *)(uintptr_t)0);
		GOPS->load(ctx[g], &d);
		first[g] = d.first_index;
		last[g] = c_acked[g] = d.last_index;
		snap[g] = d.snapshot_index;
		term[g] = d.term;
		vote[g] = d.vote;
	}
	c_send(EV_READY, 0, 0, 0);
	for (;;) {
		uint32_t g = (uint32_t)(t_rnd() % KG);

		if (c_inflight < INFLIGHT && t_rnd() % 100 < 2) {
			c_snapshot(ctx[g], g, &first[g], &snap[g]);
		} else if (t_rnd() % 1000 < 3) {
			/* rare: a group's latest one is often in a segment
			 * that is deleted meanwhile (re-logged, wal_log.c) */
			c_hard_state(w, ctx, term, vote, g);
		} else if (c_inflight < INFLIGHT) {
			sr_index n = 1 + t_rnd() % 12;

			token++;
			c_hi[token & 0xffff] = last[g] + n;
			c_send(EV_APPEND, g, last[g] + 1, last[g] + n);
			c_append(ctx[g], g, token, last[g] + 1, last[g] + n);
			c_inflight++;
			last[g] += n;
		}
		t_poll_process(w, c_inflight >= INFLIGHT ? 20 : 0);
	}
}

struct child_args {
	const char *dir;
	uint64_t seed;
};

static void child_entry(int fd, void *arg)
{
	const struct child_args *a = arg;

	c_pipe = fd;
	child_main(t_engine, a->dir, a->seed);
}

static struct ev evs[1 << 17];
static int nevs;

static sr_index m_snap[KG]; /* snapshots reported durable */

/* A hard state reported durable is there, or a later one (higher term). */
static int n_hs; /* hard states checked */

static void verify_hard_state(int iter, uint64_t seed, const sr_durable *d,
			      const struct ev *e)
{
	n_hs++;
	if (d->term > e->a || (d->term == e->a && d->vote == e->b))
		return;
	TEST_FAIL("iter %d seed %llu: group %u has term %llu vote %llu, "
		  "but term %llu vote %llu was reported durable",
		  iter, (unsigned long long)seed, e->group,
		  (unsigned long long)d->term, (unsigned long long)d->vote,
		  (unsigned long long)e->a, (unsigned long long)e->b);
}

/*
 * The appends this child made, in order, against what survived: every
 * one fully present, then at most one cut in the middle, then none (one
 * stream: a crash keeps a prefix of it whatever the groups); and every
 * acknowledged one present.
 */
static void verify_kill(sr_wal *w, int iter, uint64_t seed)
{
	sr_index last[KG], acked[KG] = { 0 };
	sr_durable hs[KG];
	void *ctx[KG];
	int phase = 0; /* 0: all present so far, 1: past the cut */
	uint64_t token = 0, tok_hi[1 << 16];
	uint32_t tok_g[1 << 16];

	for (uint32_t g = 0; g < KG; g++) {
		sr_durable d;

		ctx[g] = w;
		if (g)
			CHECK_EQ(sr_wal_group_open(w, g,
						   (sr_wal_group **)&ctx[g]),
				 0);
		CHECK_EQ(GOPS->load(ctx[g], &d), 0);
		hs[g] = d;
		last[g] = d.last_index;
		if (d.snapshot_index < m_snap[g])
			TEST_FAIL("iter %d seed %llu: group %u snapshot %llu < "
				  "%llu reported durable",
				  iter, (unsigned long long)seed, g,
				  (unsigned long long)d.snapshot_index,
				  (unsigned long long)m_snap[g]);
		m_snap[g] = d.snapshot_index;
		if (d.last_index >= d.first_index) {
			static sr_entry out[512];
			sr_index lo = d.first_index;

			while (lo <= d.last_index) {
				size_t n;

				CHECK_EQ(GOPS->read(ctx[g], lo, 512, 1 << 22,
						    out, &n),
					 0);
				CHECK(n > 0);
				for (size_t k = 0; k < n; k++, lo++)
					if (!t_entry_ok(&out[k], term_of(g),
							t_len(lo, KMAXLEN)))
						TEST_FAIL(
							"iter %d seed %llu: "
							"group %u entry %llu "
							"damaged",
							iter,
							(unsigned long long)seed,
							g,
							(unsigned long long)lo);
			}
		}
	}
	for (int i = 0; i < nevs; i++) {
		const struct ev *e = &evs[i];

		if (e->type == EV_HS)
			verify_hard_state(iter, seed, &hs[e->group], e);
		if (e->type == EV_SNAP && e->a > m_snap[e->group])
			TEST_FAIL("iter %d seed %llu: group %u lost snapshot "
				  "%llu",
				  iter, (unsigned long long)seed, e->group,
				  (unsigned long long)e->a);
		if (e->type == EV_ACK) {
			sr_index hi = tok_hi[e->a & 0xffff];

			if (tok_g[e->a & 0xffff] != e->group)
				TEST_FAIL("completion of group %u went to %u",
					  tok_g[e->a & 0xffff], e->group);
			if (hi > acked[e->group])
				acked[e->group] = hi;
		}
		if (e->type != EV_APPEND)
			continue;
		token++;
		tok_hi[token & 0xffff] = e->b;
		tok_g[token & 0xffff] = e->group;
		if (phase == 0 && last[e->group] >= e->b)
			continue; /* present */
		if (phase == 0) {
			phase = 1; /* the cut: maybe inside this append */
			if (last[e->group] + 1 < e->a)
				TEST_FAIL("iter %d seed %llu: group %u ends at "
					  "%llu before its append %llu..%llu",
					  iter, (unsigned long long)seed,
					  e->group,
					  (unsigned long long)last[e->group],
					  (unsigned long long)e->a,
					  (unsigned long long)e->b);
			continue;
		}
		if (last[e->group] >= e->a)
			TEST_FAIL("iter %d seed %llu: group %u kept "
				  "%llu..%llu, "
				  "made after an append that was lost",
				  iter, (unsigned long long)seed, e->group,
				  (unsigned long long)e->a,
				  (unsigned long long)e->b);
	}
	for (uint32_t g = 0; g < KG; g++)
		if (last[g] < acked[g])
			TEST_FAIL("iter %d seed %llu: group %u lost "
				  "acknowledged "
				  "entries %llu..%llu",
				  iter, (unsigned long long)seed, g,
				  (unsigned long long)last[g] + 1,
				  (unsigned long long)acked[g]);
}

WAL_TEST(test_kill_9_keeps_a_prefix_of_all_groups_appends)
{
	const char *dir = copy_dir(), *env = getenv("SR_WAL_GROUPS_KILLS");
	int kills = env ? atoi(env) : 60;
	uint64_t base = (uint64_t)time(NULL);
	int with_work = 0;

#ifdef SR_HAVE_URING
	kills /= 2;
#endif
	memset(m_snap, 0, sizeof(m_snap));
	for (int iter = 0; iter < kills; iter++) {
		uint64_t seed = base * 1000 + (uint64_t)iter;
		struct child_args a = { dir, seed };
		sr_wal *w;

		t_rng_state = seed ^ 0x5555;
		nevs = t_kill_after(child_entry, &a, 5 + (int)(t_rnd() % 60),
				    evs, sizeof(evs[0]),
				    (int)(sizeof(evs) / sizeof(evs[0])));
		if (nevs < 0)
			TEST_FAIL("iter %d seed %llu: child exited with %d",
				  iter, (unsigned long long)seed, -1 - nevs);
		w = t_open(dir, KSEG);
		verify_kill(w, iter, seed);
		with_work += nevs > 10;
		t_close(w);
	}
	printf("    %d kills, %d with work in flight, %d hard states "
	       "checked\n",
	       kills, with_work, n_hs);
	CHECK(with_work > kills / 8);
	t_cleanup();
}

int main(int argc, char **argv)
{
	int rv = test_main(argc, argv);

	t_cleanup();
	return rv;
}

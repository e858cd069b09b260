/*
 * test_wal_groups.c — many Raft groups on one WAL (seshat/wal.h, "Many
 * Raft groups on one WAL"), on both I/O engines.
 *
 *   - a random interleaving of appends, truncations, snapshots,
 *     compactions, drops and restarts over 40 groups, checked against a
 *     model of every group after each restart;
 *   - one batch (one fdatasync) carries the appends of several groups,
 *     and each group's completions go to its own callback;
 *   - segment retention: a segment goes only when no group needs it;
 *   - drop, reopen, interrupted drops, bad ids;
 *   - a version-1 directory opens and takes groups;
 *   - damage attributable to one group (its snapshot lost) restarts
 *     that group only; damage in the shared log, which may hide a term
 *     or vote, is never repaired by default (_TRUNCATE cuts it);
 *   - terms and votes as records: the latest wins over the meta file,
 *     survive the compaction of their segment, are forgotten with a
 *     dropped group; deferred ones wait for sr_wal_sync_hard_state();
 *     creating groups costs no fsync of their own.
 *
 * Entries of group g carry the data pattern of (index, term) with terms
 * that include the group id, so an entry read from the wrong group fails.
 */
#include "wal_format.h"
#include "walt.h"

#define OPS    sr_wal_storage_ops()
#define GOPS   sr_wal_group_storage_ops()
#define SEG    (64u << 10)
#define GMAX   40
#define MAXLEN 120

/* ---- a group's model ---- */

struct gm {
	uint32_t id;
	sr_wal_group *h; /* NULL while closed */
	int exists;
	sr_index first, last, snap;
	sr_term snap_term, term; /* term: the current term (hard state) */
	sr_term terms[4096];	 /* term of each index (index < 4096) */
	uint64_t appended, acked;
};

static struct gm gms[GMAX + 1];

static void g_done(void *ctx, uint64_t token, int status)
{
	struct gm *m = ctx;

	if (status)
		TEST_FAIL("group %u: append %llu failed: %s", m->id,
			  (unsigned long long)token, sr_strerror(status));
	if ((token >> 32) != m->id)
		TEST_FAIL("group %u got the completion of group %llu", m->id,
			  (unsigned long long)(token >> 32));
	m->acked++;
}

static int g_append(void *ctx, uint64_t token, sr_index lo, sr_index hi,
		    sr_term t)
{
	static sr_entry es[256];
	size_t off = 0, n = 0;

	for (sr_index i = lo; i <= hi; i++) {
		uint32_t len = t_len(i, MAXLEN);

		es[n++] = t_entry(i, t, len, off);
		off += len;
	}
	return GOPS->append(ctx, token, es, n);
}

static void g_check_range(void *ctx, sr_index lo, sr_index hi,
			  const sr_term *terms, uint32_t gid)
{
	static sr_entry out[256];

	while (lo <= hi) {
		size_t n = 0;
		int rv = GOPS->read(ctx, lo, 256, 1 << 20, out, &n);

		if (rv || !n)
			TEST_FAIL("group %u: read(%llu): %s", gid,
				  (unsigned long long)lo, sr_strerror(rv));
		for (size_t k = 0; k < n && lo <= hi; k++, lo++)
			if (out[k].index != lo ||
			    !t_entry_ok(&out[k], terms[lo], t_len(lo, MAXLEN)))
				TEST_FAIL("group %u: entry %llu is wrong (term "
					  "%llu, want %llu)",
					  gid, (unsigned long long)lo,
					  (unsigned long long)out[k].term,
					  (unsigned long long)terms[lo]);
	}
}

static void g_verify(struct gm *m)
{
	sr_durable d;

	CHECK_EQ(GOPS->load(m->h, &d), 0);
	if (d.first_index != m->first || d.last_index != m->last ||
	    d.snapshot_index != m->snap || d.term != m->term)
		TEST_FAIL("group %u: log %llu..%llu snap %llu term %llu, model "
			  "%llu..%llu snap %llu term %llu",
			  m->id, (unsigned long long)d.first_index,
			  (unsigned long long)d.last_index,
			  (unsigned long long)d.snapshot_index,
			  (unsigned long long)d.term,
			  (unsigned long long)m->first,
			  (unsigned long long)m->last,
			  (unsigned long long)m->snap,
			  (unsigned long long)m->term);
	CHECK_EQ(d.snapshot_term, m->snap_term);
	CHECK_EQ(d.lost_last, 0);
	if (m->last >= m->first)
		g_check_range(m->h, m->first, m->last, m->terms, m->id);
}

static void g_open(sr_wal *w, struct gm *m)
{
	CHECK_EQ(sr_wal_group_open(w, m->id, &m->h), 0);
	CHECK_EQ(sr_wal_group_id(m->h), m->id);
	sr_wal_group_set_done(m->h, g_done, m);
	m->exists = 1;
}

static void g_reset(struct gm *m, uint32_t id)
{
	memset(m, 0, sizeof(*m));
	m->id = id;
	m->first = 1;
}

/* ---- the random interleaving ---- */

static void op_append(struct gm *m)
{
	sr_index n = 1 + t_rnd() % 8;

	if (m->last + n >= 4096)
		return;
	if (!m->term) {
		CHECK_EQ(GOPS->set_hard_state(m->h, (sr_term)m->id * 1000 + 1,
					      0),
			 0);
		m->term = (sr_term)m->id * 1000 + 1;
	}
	CHECK_EQ(g_append(m->h, (uint64_t)m->id << 32 | m->appended,
			  m->last + 1, m->last + n, m->term),
		 0);
	for (sr_index i = m->last + 1; i <= m->last + n; i++)
		m->terms[i] = m->term;
	m->last += n;
	m->appended++;
}

static void op_truncate(struct gm *m)
{
	sr_index from;

	if (m->last < m->first)
		return;
	from = m->first + t_rnd() % (m->last - m->first + 1);
	if (from <= m->snap)
		return;
	CHECK_EQ(GOPS->set_hard_state(m->h, m->term + 1, m->id), 0);
	m->term++;
	CHECK_EQ(GOPS->truncate(m->h, from), 0);
	m->last = from - 1;
}

static void op_snapshot(struct gm *m)
{
	sr_index lo = m->snap + 1 > m->first ? m->snap + 1 : m->first, s, upto;
	char data[32];

	if (m->last < lo)
		return;
	s = lo + t_rnd() % (m->last - lo + 1);
	snprintf(data, sizeof(data), "g%u@%llu", m->id, (unsigned long long)s);
	CHECK_EQ(GOPS->snapshot_begin(m->h, s, m->terms[s], NULL), 0);
	CHECK_EQ(GOPS->snapshot_write(m->h, 0, data, strlen(data)), 0);
	CHECK_EQ(GOPS->snapshot_finish(m->h, 1), 0);
	m->snap = s;
	m->snap_term = m->terms[s];
	upto = s - t_rnd() % (s < 4 ? s : 4);
	if (upto >= m->first && t_rnd() % 4) {
		CHECK_EQ(GOPS->compact(m->h, upto), 0);
		m->first = upto + 1;
	}
}

static sr_wal *restart(sr_wal *w, const char *dir, int ngroups)
{
	uint32_t ids[GMAX];
	size_t n, k = 0;

	CHECK_EQ(sr_wal_sync(w), 0);
	for (int g = 1; g <= ngroups; g++) {
		CHECK_EQ(gms[g].acked, gms[g].appended);
		if (gms[g].h)
			sr_wal_group_close(gms[g].h);
		gms[g].h = NULL;
	}
	t_close(w);
	w = t_open(dir, SEG);
	CHECK_EQ(sr_wal_groups(w, ids, GMAX, &n), 0);
	for (int g = 1; g <= ngroups; g++) {
		if (!gms[g].exists)
			continue;
		if (k >= n || ids[k] != (uint32_t)g)
			TEST_FAIL("group %d missing from sr_wal_groups", g);
		k++;
		g_open(w, &gms[g]);
		g_verify(&gms[g]);
	}
	CHECK_EQ(k, n);
	return w;
}

WAL_TEST(test_groups_interleaved_round_trip_across_restarts)
{
	const char *dir = t_dir();
	sr_wal *w = t_open(dir, SEG);
	sr_wal_stats st;
	int restarts = 0, drops = 0;

	t_rng_state = 42;
	for (uint32_t g = 1; g <= GMAX; g++) {
		g_reset(&gms[g], g);
		g_open(w, &gms[g]);
	}
	for (int step = 0; step < 6000; step++) {
		struct gm *m = &gms[1 + t_rnd() % GMAX];
		unsigned r = (unsigned)(t_rnd() % 1000);

		if (!m->exists) {
			g_open(w, m);
		} else if (r < 700) {
			op_append(m);
		} else if (r < 800) {
			op_truncate(m);
		} else if (r < 950) {
			op_snapshot(m);
		} else if (r < 953) {
			CHECK_EQ(sr_wal_sync(w), 0);
			sr_wal_group_close(m->h);
			m->h = NULL;
			CHECK_EQ(sr_wal_group_drop(w, m->id), 0);
			g_reset(m, m->id);
			drops++;
		} else if (r < 957) {
			w = restart(w, dir, GMAX);
			restarts++;
		}
		if (step % 64 == 0)
			sr_wal_process(w);
	}
	w = restart(w, dir, GMAX);
	sr_wal_get_stats(w, &st);
	CHECK(restarts > 5);
	CHECK(drops > 2);
	CHECK(st.segments >= 1);
	for (uint32_t g = 1; g <= GMAX; g++)
		if (gms[g].h)
			sr_wal_group_close(gms[g].h);
	t_cleanup();
}

WAL_TEST(test_one_fdatasync_covers_the_appends_of_every_group)
{
	sr_wal *w = t_open(t_dir(), 0);
	sr_wal_stats a, b;

	for (uint32_t g = 1; g <= 8; g++) {
		g_reset(&gms[g], g);
		g_open(w, &gms[g]);
		gms[g].term = g;
	}
	sr_wal_set_done(w, t_done_fn, NULL);
	CHECK_EQ(sr_wal_sync(w), 0);
	sr_wal_get_stats(w, &a);
	sr_wal_hold(w);
	for (uint32_t g = 1; g <= 8; g++)
		CHECK_EQ(g_append(gms[g].h, (uint64_t)g << 32, 1, 3, g), 0);
	CHECK_EQ(t_append(w, 77, 1, 2, 1, 10), 0);
	sr_wal_write_now(w);
	CHECK_EQ(sr_wal_sync(w), 0);
	sr_wal_get_stats(w, &b);
	CHECK_EQ(b.batches - a.batches, 1);
	for (uint32_t g = 1; g <= 8; g++)
		CHECK_EQ(gms[g].acked, 1);
	CHECK_EQ(t_done_n, 1);
	CHECK_EQ(t_done_tok[0], 77);
	/* a closed group's completions are dropped, the others' delivered */
	sr_wal_hold(w);
	CHECK_EQ(g_append(gms[1].h, 1ull << 32 | 1, 4, 4, 1), 0);
	CHECK_EQ(g_append(gms[2].h, 2ull << 32 | 1, 4, 4, 2), 0);
	sr_wal_group_close(gms[1].h);
	sr_wal_release(w);
	CHECK_EQ(sr_wal_sync(w), 0);
	CHECK_EQ(gms[1].acked, 1);
	CHECK_EQ(gms[2].acked, 2);
	g_open(w, &gms[1]);
	gms[1].last = 4;
	for (int i = 1; i <= 4; i++)
		gms[1].terms[i] = 1;
	gms[1].term = 0;
	CHECK_EQ(GOPS->load(gms[1].h, &(sr_durable){ 0 }), 0);
	g_check_range(gms[1].h, 1, 4, gms[1].terms, 1);
	t_cleanup();
}

/* Group b (id 2) writes 2 000 entries over a few segments, snapshots
 * them and compacts them all; returns its last index. */
static sr_index fill_and_compact(sr_wal *w, void *b)
{
	sr_index last = 0;

	for (int round = 0; round < 40; round++, last += 50)
		CHECK_EQ(g_append(b, 2, last + 1, last + 50, 9), 0);
	CHECK_EQ(sr_wal_sync(w), 0);
	CHECK_EQ(GOPS->snapshot_begin(b, last, 9, NULL), 0);
	CHECK_EQ(GOPS->snapshot_finish(b, 1), 0);
	CHECK_EQ(GOPS->compact(b, last), 0);
	CHECK_EQ(sr_wal_sync(w), 0);
	return last;
}

WAL_TEST(test_a_segment_is_deleted_only_when_no_group_needs_it)
{
	const char *dir = t_dir();
	sr_wal *w = t_open(dir, SEG);
	sr_wal_group *a, *b;
	sr_wal_stats st;
	sr_index last;

	CHECK_EQ(sr_wal_group_open(w, 1, &a), 0);
	CHECK_EQ(sr_wal_group_open(w, 2, &b), 0);
	/* a writes a few entries first and then never compacts */
	for (int i = 0; i < 10; i++)
		CHECK_EQ(g_append(a, 1, (sr_index)i + 1, (sr_index)i + 1, 7),
			 0);
	last = fill_and_compact(w, b);
	sr_wal_get_stats(w, &st);
	CHECK(st.segments >= 3); /* a pins the first one, so all stay */
	CHECK_EQ(st.segments_deleted, 0);
	/* now a compacts too: everything before the tail can go */
	CHECK_EQ(GOPS->snapshot_begin(a, 10, 7, NULL), 0);
	CHECK_EQ(GOPS->snapshot_finish(a, 1), 0);
	CHECK_EQ(GOPS->compact(a, 10), 0);
	CHECK_EQ(sr_wal_sync(w), 0);
	sr_wal_process(w);
	sr_wal_get_stats(w, &st);
	CHECK(st.segments_deleted >= 2);
	CHECK_EQ(st.segments, 1);
	/* and both groups come back from their snapshots */
	sr_wal_group_close(a);
	sr_wal_group_close(b);
	t_close(w);
	w = t_open(dir, SEG);
	CHECK_EQ(sr_wal_group_open(w, 1, &a), 0);
	CHECK_EQ(sr_wal_group_open(w, 2, &b), 0);
	{
		sr_durable d;

		CHECK_EQ(GOPS->load(a, &d), 0);
		CHECK_EQ(d.first_index, 11);
		CHECK_EQ(d.last_index, 10);
		CHECK_EQ(d.snapshot_index, 10);
		CHECK_EQ(GOPS->load(b, &d), 0);
		CHECK_EQ(d.first_index, last + 1);
		CHECK_EQ(d.snapshot_index, last);
	}
	t_cleanup();
}

WAL_TEST(test_drop_deletes_a_group_durably_and_its_id_can_be_reused)
{
	const char *dir = t_dir();
	sr_wal *w = t_open(dir, 0);
	sr_wal_group *g;
	uint32_t ids[4];
	size_t n;
	sr_durable d;
	char name[64];

	CHECK_EQ(sr_wal_group_open(w, 5, &g), 0);
	CHECK_EQ(GOPS->set_hard_state(g, 3, 2), 0);
	CHECK_EQ(g_append(g, 1, 1, 20, 3), 0);
	CHECK_EQ(GOPS->snapshot_begin(g, 10, 3, NULL), 0);
	CHECK_EQ(GOPS->snapshot_finish(g, 1), 0);
	snprintf(name, sizeof(name), "g00000005-%016x.snap", 10);
	CHECK(t_file_exists(dir, name));
	CHECK(t_file_exists(dir, "g00000005.meta"));
	CHECK_EQ(sr_wal_group_drop(w, 5), SR_ESTATE); /* open */
	sr_wal_group_close(g);
	CHECK_EQ(sr_wal_group_drop(w, 5), 0);
	CHECK_EQ(sr_wal_group_drop(w, 5), SR_ENOTFOUND);
	CHECK(!t_file_exists(dir, name));
	CHECK(!t_file_exists(dir, "g00000005.meta"));
	CHECK_EQ(sr_wal_groups(w, ids, 4, &n), 0);
	CHECK_EQ(n, 0);
	t_close(w);
	w = t_open(dir, 0);
	CHECK_EQ(sr_wal_groups(w, ids, 4, &n), 0);
	CHECK_EQ(n, 0);
	/* the id again: a new, empty group, though the old records are
	 * still in the segment (the RESET record hides them) */
	CHECK_EQ(sr_wal_group_open(w, 5, &g), 0);
	CHECK_EQ(GOPS->load(g, &d), 0);
	CHECK_EQ(d.first_index, 1);
	CHECK_EQ(d.last_index, 0);
	CHECK_EQ(d.term, 0);
	CHECK_EQ(d.snapshot_index, 0);
	CHECK_EQ(g_append(g, 1, 1, 3, 4), 0);
	sr_wal_group_close(g);
	CHECK_EQ(sr_wal_sync(w), 0);
	t_close(w);
	w = t_open(dir, 0);
	CHECK_EQ(sr_wal_groups(w, ids, 4, &n), 0);
	CHECK_EQ(n, 1);
	CHECK_EQ(ids[0], 5);
	CHECK_EQ(sr_wal_group_open(w, 5, &g), 0);
	CHECK_EQ(GOPS->load(g, &d), 0);
	CHECK_EQ(d.last_index, 3);
	{
		sr_term terms[4] = { 0, 4, 4, 4 };

		g_check_range(g, 1, 3, terms, 5);
	}
	t_cleanup();
}

WAL_TEST(test_a_drop_interrupted_by_a_crash_is_finished_at_open)
{
	const char *dir = t_dir();
	sr_wal *w = t_open(dir, 0);
	sr_wal_group *g;
	uint32_t ids[4];
	size_t n;
	char p[512], name[64];

	CHECK_EQ(sr_wal_group_open(w, 9, &g), 0);
	CHECK_EQ(g_append(g, 1, 1, 5, 1), 0);
	CHECK_EQ(GOPS->snapshot_begin(g, 5, 1, NULL), 0);
	CHECK_EQ(GOPS->snapshot_finish(g, 1), 0);
	CHECK_EQ(sr_wal_sync(w), 0);
	t_close(w);
	/* the first step of a drop: the meta file is gone */
	CHECK_EQ(unlink(t_path(p, dir, "g00000009.meta")), 0);
	w = t_open(dir, 0);
	CHECK(t_logged("group 9", "interrupted its drop"));
	CHECK_EQ(sr_wal_groups(w, ids, 4, &n), 0);
	CHECK_EQ(n, 0);
	snprintf(name, sizeof(name), "g00000009-%016x.snap", 5);
	CHECK(!t_file_exists(dir, name));
	CHECK_EQ(sr_wal_sync(w), 0);
	t_close(w);
	/* and it stays dropped */
	w = t_open(dir, 0);
	CHECK_EQ(sr_wal_groups(w, ids, 4, &n), 0);
	CHECK_EQ(n, 0);
	CHECK_EQ(sr_wal_group_open(w, 9, &g), 0);
	{
		sr_durable d;

		CHECK_EQ(GOPS->load(g, &d), 0);
		CHECK_EQ(d.last_index, 0);
		CHECK_EQ(d.snapshot_index, 0);
	}
	t_cleanup();
}

WAL_TEST(test_bad_group_ids_and_calls_are_refused)
{
	sr_wal *w = t_open(t_dir(), 0);
	sr_wal_group *g, *g2;
	uint32_t ids[2];
	size_t n;

	CHECK_EQ(sr_wal_group_open(w, 0, &g), SR_EINVAL);
	CHECK(t_logged("group id 0", "start at 1"));
	CHECK_EQ(sr_wal_group_open(w, 1, NULL), SR_EINVAL);
	CHECK_EQ(sr_wal_group_drop(w, 0), SR_EINVAL);
	CHECK_EQ(sr_wal_group_drop(w, 3), SR_ENOTFOUND);
	CHECK_EQ(sr_wal_group_open(w, 1, &g), 0);
	CHECK_EQ(sr_wal_group_open(w, 1, &g2), SR_ESTATE);
	CHECK(t_logged("group 1", "already open"));
	CHECK_EQ(sr_wal_group_open(w, 2, &g2), 0);
	CHECK_EQ(sr_wal_group_open(w, 0xffffffffu, &g2), 0);
	CHECK_EQ(sr_wal_groups(w, ids, 2, &n), SR_ETOOBIG);
	CHECK_EQ(n, 3);
	CHECK_EQ(sr_wal_groups(w, NULL, 0, &n), SR_ETOOBIG);
	CHECK_EQ(n, 3);
	/* the engine's rules hold per group */
	CHECK_EQ(g_append(g, 1, 2, 2, 1), SR_EINVAL); /* gap */
	CHECK_EQ(GOPS->compact(g, 0), 0);	      /* below first */
	CHECK_EQ(g_append(g, 1, 1, 2, 1), 0);
	CHECK_EQ(GOPS->compact(g, 2), SR_EINVAL); /* no snapshot */
	CHECK_EQ(GOPS->snapshot_write(g, 0, "x", 1), SR_ESTATE);
	sr_wal_group_close(NULL);
	t_cleanup();
}

static void hs_check(void *g, sr_term term, sr_id vote);

/* ---- a version-1 directory (written before groups existed) ---- */

static void put_file(const char *dir, const char *name, const void *buf,
		     size_t len)
{
	char p[512];
	int fd = open(t_path(p, dir, name), O_CREAT | O_TRUNC | O_WRONLY, 0600);

	CHECK(fd >= 0);
	CHECK_EQ(write(fd, buf, len), (ssize_t)len);
	close(fd);
}

WAL_TEST(test_a_version_1_directory_opens_and_takes_groups)
{
	const char *dir = t_dir();
	static unsigned char seg[SEG];
	struct wal_seg_hdr h = { 1, 1, 1, 1 };
	unsigned char meta[WAL_META_SIZE];
	struct wal_meta m = { 4, 2 };
	size_t off = WAL_SEG_HDR;
	sr_wal_group *g;
	sr_wal *w;
	sr_durable d;

	CHECK_EQ(mkdir(dir, 0700), 0);
	memset(seg, 0, sizeof(seg));
	wal_fmt_seg_hdr_encode_v(seg, &h, 1);
	CHECK_EQ(wal_get32(seg + 8), 1);
	for (sr_index i = 1; i <= 30; i++) { /* one batch per entry */
		sr_entry e = t_entry(i, 4, t_len(i, 50), 0);
		struct wal_rec r = { .len = e.len,
				     .kind = WAL_REC_ENTRY,
				     .etype = e.type,
				     .index = i,
				     .term = 4,
				     .batch = i,
				     .batch_off = off,
				     .data = e.data };

		wal_fmt_rec_encode(seg + off, &r);
		off += wal_rec_size(e.len);
	}
	put_file(dir, "0000000000000001.wal", seg, sizeof(seg));
	wal_fmt_meta_encode(meta, &m);
	put_file(dir, "meta", meta, sizeof(meta));
	w = t_open(dir, SEG);
	d = t_load(w);
	CHECK_EQ(d.last_index, 30);
	CHECK_EQ(d.term, 4);
	t_check_range(w, 1, 30, 4, 50);
	/* group 0 goes on, and a group joins: both go to a new segment */
	CHECK_EQ(t_append(w, 1, 31, 40, 4, 50), 0);
	CHECK_EQ(sr_wal_group_open(w, 3, &g), 0);
	CHECK_EQ(g_append(g, 2, 1, 5, 3003), 0);
	CHECK_EQ(sr_wal_sync(w), 0);
	CHECK(t_file_exists(dir, "0000000000000002.wal"));
	t_close(w);
	w = t_open(dir, SEG);
	d = t_load(w);
	CHECK_EQ(d.last_index, 40);
	t_check_range(w, 1, 40, 4, 50);
	CHECK_EQ(sr_wal_group_open(w, 3, &g), 0);
	{
		sr_term terms[6] = { 0, 3003, 3003, 3003, 3003, 3003 };

		g_check_range(g, 1, 5, terms, 3);
	}
	t_cleanup();
}

/* A version-2 directory (groups, their terms and votes in 36-byte meta
 * files, a RESET of a group dropped then) opens with every group's log
 * and hard state; the next records go to a new, version-3 segment. */
WAL_TEST(test_a_version_2_directory_opens_with_its_groups_hard_states)
{
	const char *dir = t_dir();
	static unsigned char seg[SEG];
	struct wal_seg_hdr h = { 1, 1, 1, 1 };
	unsigned char meta[WAL_META_SIZE];
	struct wal_meta m = { 4, 2 };
	size_t off = WAL_SEG_HDR;
	uint64_t batch = 1;
	sr_wal_group *g;
	sr_wal *w;
	size_t n = 0;

	CHECK_EQ(mkdir(dir, 0700), 0);
	memset(seg, 0, sizeof(seg));
	wal_fmt_seg_hdr_encode_v(seg, &h, 2);
	for (sr_index i = 1; i <= 10; i++) { /* groups 0, 1 and 5 */
		for (uint32_t gid = 0; gid <= 5; gid += gid ? 4 : 1) {
			sr_entry e = t_entry(i, 4 + gid,
					     t_len(i, gid ? MAXLEN : 50), 0);
			struct wal_rec r = { .len = e.len,
					     .kind = WAL_REC_ENTRY,
					     .etype = e.type,
					     .index = i,
					     .term = 4 + gid,
					     .batch = batch,
					     .batch_off = off,
					     .group = gid,
					     .data = e.data };

			wal_fmt_rec_encode(seg + off, &r);
			off += wal_rec_size(e.len);
			batch++;
		}
	}
	{ /* group 5 was dropped (before version 3: meta gone, a RESET) */
		struct wal_rec r = { .kind = WAL_REC_RESET,
				     .batch = batch,
				     .batch_off = off,
				     .group = 5 };

		wal_fmt_rec_encode(seg + off, &r);
	}
	put_file(dir, "0000000000000001.wal", seg, sizeof(seg));
	wal_fmt_meta_encode(meta, &m);
	put_file(dir, "meta", meta, sizeof(meta));
	m.term = 7;
	m.vote = 3;
	wal_fmt_meta_encode(meta, &m);
	put_file(dir, "g00000001.meta", meta, sizeof(meta));
	w = t_open(dir, SEG);
	CHECK_EQ(sr_wal_groups(w, NULL, 0, &n), SR_ETOOBIG);
	CHECK_EQ(n, 1); /* group 5 stays dropped */
	CHECK_EQ(t_load(w).term, 4);
	t_check_range(w, 1, 10, 4, 50);
	CHECK_EQ(sr_wal_group_open(w, 1, &g), 0);
	hs_check(g, 7, 3);
	{
		sr_term terms[11];

		for (int i = 0; i <= 10; i++)
			terms[i] = 5;
		g_check_range(g, 1, 10, terms, 1);
	}
	/* a change is a record, in a new version-3 segment */
	CHECK_EQ(GOPS->set_hard_state(g, 8, 0), 0);
	CHECK(t_file_exists(dir, "0000000000000002.wal"));
	sr_wal_group_close(g);
	t_close(w);
	w = t_open(dir, SEG);
	CHECK_EQ(sr_wal_group_open(w, 1, &g), 0);
	hs_check(g, 8, 0);
	sr_wal_group_close(g);
	t_close(w);
	t_cleanup();
}

WAL_TEST(test_a_group_record_in_a_version_1_segment_is_not_a_record)
{
	const char *dir = t_dir();
	static unsigned char seg[SEG];
	struct wal_seg_hdr h = { 1, 1, 1, 1 };
	unsigned char meta[WAL_META_SIZE];
	struct wal_meta m = { 1, 0 };
	struct wal_rec r = { .kind = WAL_REC_ENTRY,
			     .index = 1,
			     .term = 1,
			     .batch = 1,
			     .batch_off = WAL_SEG_HDR,
			     .group = 7 };
	sr_wal_options o;
	sr_wal *w;

	CHECK_EQ(mkdir(dir, 0700), 0);
	memset(seg, 0, sizeof(seg));
	wal_fmt_seg_hdr_encode_v(seg, &h, 1);
	wal_fmt_rec_encode(seg + WAL_SEG_HDR, &r);
	/* a valid group-0 record after it, in a later batch: so the bad
	 * one is not a torn tail but corruption */
	r.group = 0;
	r.batch = 2;
	r.batch_off = WAL_SEG_HDR + 48;
	r.index = 2;
	wal_fmt_rec_encode(seg + WAL_SEG_HDR + 48, &r);
	r.batch = 3;
	r.batch_off = WAL_SEG_HDR + 96;
	r.index = 3;
	wal_fmt_rec_encode(seg + WAL_SEG_HDR + 96, &r);
	put_file(dir, "0000000000000001.wal", seg, sizeof(seg));
	wal_fmt_meta_encode(meta, &m);
	put_file(dir, "meta", meta, sizeof(meta));
	t_opts(&o, dir);
	o.repair = SR_WAL_REPAIR_NONE;
	CHECK_EQ(sr_wal_open(&o, &w), SR_ECORRUPT);
	CHECK(t_logged("0000000000000001.wal", "later format version"));
	t_cleanup();
}

/* ---- damage ---- */

WAL_TEST(test_a_group_whose_snapshot_is_lost_is_restarted_alone)
{
	const char *dir = t_dir();
	sr_wal *w = t_open(dir, 0);
	sr_wal_group *a, *b;
	sr_wal_options o;
	sr_durable d;
	char p[512];

	CHECK_EQ(sr_wal_group_open(w, 1, &a), 0);
	CHECK_EQ(sr_wal_group_open(w, 2, &b), 0);
	CHECK_EQ(g_append(a, 1, 1, 10, 5), 0);
	CHECK_EQ(g_append(b, 1, 1, 10, 6), 0);
	CHECK_EQ(GOPS->snapshot_begin(a, 10, 5, NULL), 0);
	CHECK_EQ(GOPS->snapshot_finish(a, 1), 0);
	CHECK_EQ(GOPS->compact(a, 10), 0);
	CHECK_EQ(g_append(a, 1, 11, 20, 5), 0);
	CHECK_EQ(sr_wal_sync(w), 0);
	t_close(w);
	snprintf(p, sizeof(p), "%s/g00000001-%016x.snap", dir, 10);
	CHECK_EQ(unlink(p), 0);
	/* without repair: refused, naming the group */
	t_opts(&o, dir);
	o.repair = SR_WAL_REPAIR_NONE;
	CHECK_EQ(sr_wal_open(&o, &w), SR_ECORRUPT);
	CHECK(t_logged("group 1", "snapshot ends at 0"));
	/* protocol-aware repair: group 1 restarts empty and reports what
	 * it lost; group 2 is untouched */
	w = t_open(dir, 0);
	CHECK_EQ(sr_wal_group_open(w, 1, &a), 0);
	CHECK_EQ(sr_wal_group_open(w, 2, &b), 0);
	CHECK_EQ(GOPS->load(a, &d), 0);
	CHECK_EQ(d.last_index, 0);
	CHECK_EQ(d.lost_first, 1);
	CHECK_EQ(d.lost_last, 20);
	CHECK_EQ(GOPS->load(b, &d), 0);
	CHECK_EQ(d.last_index, 10);
	CHECK_EQ(d.lost_last, 0);
	{
		sr_term terms[11];

		for (int i = 0; i <= 10; i++)
			terms[i] = 6;
		g_check_range(b, 1, 10, terms, 2);
	}
	/* it stays reported across a restart until the group catches up */
	sr_wal_group_close(a);
	sr_wal_group_close(b);
	t_close(w);
	w = t_open(dir, 0);
	CHECK_EQ(sr_wal_group_open(w, 1, &a), 0);
	CHECK_EQ(GOPS->load(a, &d), 0);
	CHECK_EQ(d.lost_last, 20);
	CHECK_EQ(g_append(a, 1, 1, 21, 8), 0);
	CHECK_EQ(sr_wal_sync(w), 0);
	sr_wal_group_close(a);
	t_close(w);
	w = t_open(dir, 0);
	CHECK_EQ(sr_wal_group_open(w, 1, &a), 0);
	CHECK_EQ(GOPS->load(a, &d), 0);
	CHECK_EQ(d.lost_last, 0);
	CHECK_EQ(d.last_index, 21);
	CHECK(!t_file_exists(dir, "g00000001.lost"));
	t_cleanup();
}

WAL_TEST(test_damage_in_a_log_with_groups_is_not_repaired_by_default)
{
	const char *dir = t_dir();
	sr_wal *w = t_open(dir, SEG);
	sr_wal_group *g[4];
	sr_wal_options o;
	char p[512];
	int fd;

	for (int i = 1; i <= 3; i++) {
		CHECK_EQ(sr_wal_group_open(w, (uint32_t)i, &g[i]), 0);
		CHECK_EQ(g_append(g[i], 1, 1, 5, (sr_term)i), 0);
	}
	CHECK_EQ(sr_wal_sync(w), 0);
	/* more batches so the damaged one is not the last */
	for (int round = 0; round < 30; round++)
		for (int i = 1; i <= 3; i++) {
			sr_index lo = 6 + (sr_index)round * 10;

			CHECK_EQ(g_append(g[i], 1, lo, lo + 9, (sr_term)i), 0);
			CHECK_EQ(sr_wal_sync(w), 0);
		}
	t_close(w);
	/* flip a byte in the first record of the first segment */
	fd = open(t_path(p, dir, "0000000000000001.wal"), O_RDWR);
	CHECK(fd >= 0);
	CHECK_EQ(pwrite(fd, "\xff", 1, WAL_SEG_HDR + 20), 1);
	close(fd);
	t_opts(&o, dir);
	o.repair = SR_WAL_REPAIR_NONE;
	CHECK_EQ(sr_wal_open(&o, &w), SR_ECORRUPT);
	/* protocol-aware repair re-fetches entries, but a term or vote the
	 * damage hid cannot be re-fetched: it refuses */
	o.repair = SR_WAL_REPAIR_PEERS;
	CHECK_EQ(sr_wal_open(&o, &w), SR_ECORRUPT);
	CHECK(t_logged("refusing", "cannot be repaired"));
	o.repair = SR_WAL_REPAIR_TRUNCATE;
	CHECK_EQ(sr_wal_open(&o, &w), 0);
	for (int i = 1; i <= 3; i++) {
		sr_durable d;

		CHECK_EQ(sr_wal_group_open(w, (uint32_t)i, &g[i]), 0);
		CHECK_EQ(GOPS->load(g[i], &d), 0);
		CHECK(d.last_index < 5);
	}
	t_close(w);
	t_cleanup();
}

/* ---- terms and votes as records ---- */

static void hs_check(void *g, sr_term term, sr_id vote)
{
	sr_durable d;

	CHECK_EQ(GOPS->load(g, &d), 0);
	CHECK_EQ(d.term, term);
	CHECK_EQ(d.vote, vote);
}

static long file_size(const char *dir, const char *name)
{
	char p[512];
	struct stat st;

	if (stat(t_path(p, dir, name), &st) != 0)
		return -1;
	return (long)st.st_size;
}

WAL_TEST(test_hard_states_are_records_and_the_latest_wins)
{
	const char *dir = t_dir();
	sr_wal *w = t_open(dir, SEG);
	sr_wal_group *a, *b;
	unsigned char meta[WAL_META_SIZE];
	struct wal_meta m = { 5, 2 };

	CHECK_EQ(sr_wal_group_open(w, 1, &a), 0);
	CHECK_EQ(sr_wal_group_open(w, 2, &b), 0);
	CHECK_EQ(GOPS->set_hard_state(a, 3, 2), 0);
	CHECK_EQ(GOPS->set_hard_state(a, 4, 0), 0);
	CHECK_EQ(GOPS->set_hard_state(b, 7, 1), 0);
	CHECK_EQ(GOPS->set_hard_state(a, 4, 3), 0);
	/* durable when it returns: nothing pending */
	CHECK_EQ(sr_wal_hard_state_pending(w), 0);
	sr_wal_group_close(a);
	sr_wal_group_close(b);
	t_close(w);
	/* a new group's meta file is empty: its hard state is in the log */
	CHECK_EQ(file_size(dir, "g00000001.meta"), 0);
	/* a meta file written before format version 3 (group 3) */
	wal_fmt_meta_encode(meta, &m);
	put_file(dir, "g00000003.meta", meta, sizeof(meta));
	w = t_open(dir, SEG);
	CHECK_EQ(sr_wal_group_open(w, 1, &a), 0);
	CHECK_EQ(sr_wal_group_open(w, 2, &b), 0);
	hs_check(a, 4, 3);
	hs_check(b, 7, 1);
	sr_wal_group_close(b);
	CHECK_EQ(sr_wal_group_open(w, 3, &b), 0);
	hs_check(b, 5, 2);
	CHECK_EQ(GOPS->set_hard_state(b, 6, 0), 0);
	sr_wal_group_close(a);
	sr_wal_group_close(b);
	t_close(w);
	/* the record wins over the older meta file, which stays as it was */
	CHECK_EQ(file_size(dir, "g00000003.meta"), (long)WAL_META_SIZE);
	w = t_open(dir, SEG);
	CHECK_EQ(sr_wal_group_open(w, 3, &b), 0);
	hs_check(b, 6, 0);
	sr_wal_group_close(b);
	t_close(w);
	t_cleanup();
}

WAL_TEST(test_a_hard_state_survives_the_deletion_of_its_segment)
{
	const char *dir = t_dir();
	sr_wal *w = t_open(dir, SEG);
	sr_wal_group *a, *b;
	sr_wal_stats st;

	CHECK_EQ(sr_wal_group_open(w, 1, &a), 0);
	CHECK_EQ(sr_wal_group_open(w, 2, &b), 0);
	CHECK_EQ(GOPS->set_hard_state(a, 9, 2), 0); /* in segment 1 */
	fill_and_compact(w, b);
	sr_wal_process(w);
	sr_wal_get_stats(w, &st);
	CHECK(st.segments_deleted >= 2);
	CHECK(!t_file_exists(dir, "0000000000000001.wal"));
	hs_check(a, 9, 2);
	sr_wal_group_close(a);
	sr_wal_group_close(b);
	t_close(w);
	w = t_open(dir, SEG);
	CHECK_EQ(sr_wal_group_open(w, 1, &a), 0);
	hs_check(a, 9, 2);
	sr_wal_group_close(a);
	t_close(w);
	t_cleanup();
}

WAL_TEST(test_a_dropped_group_forgets_its_hard_state)
{
	const char *dir = t_dir();
	sr_wal *w = t_open(dir, SEG);
	sr_wal_group *a;

	CHECK_EQ(sr_wal_group_open(w, 4, &a), 0);
	CHECK_EQ(GOPS->set_hard_state(a, 12, 3), 0);
	sr_wal_group_close(a);
	CHECK_EQ(sr_wal_group_drop(w, 4), 0);
	CHECK_EQ(sr_wal_group_open(w, 4, &a), 0);
	hs_check(a, 0, 0);
	CHECK_EQ(GOPS->set_hard_state(a, 1, 0), 0);
	sr_wal_group_close(a);
	t_close(w);
	w = t_open(dir, SEG);
	CHECK_EQ(sr_wal_group_open(w, 4, &a), 0);
	hs_check(a, 1, 0);
	sr_wal_group_close(a);
	CHECK_EQ(sr_wal_group_drop(w, 4), 0);
	t_close(w);
	w = t_open(dir, SEG);
	CHECK_EQ(sr_wal_groups(w, NULL, 0, &(size_t){ 0 }), 0);
	CHECK_EQ(sr_wal_group_open(w, 4, &a), 0);
	hs_check(a, 0, 0);
	sr_wal_group_close(a);
	t_close(w);
	t_cleanup();
}

WAL_TEST(test_deferred_hard_states_share_one_fdatasync)
{
	const char *dir = t_dir();
	sr_wal *w = t_open(dir, SEG);
	sr_wal_group *g[11];
	sr_wal_stats s0, s1;

	for (uint32_t i = 1; i <= 10; i++)
		CHECK_EQ(sr_wal_group_open(w, i, &g[i]), 0);
	CHECK_EQ(sr_wal_sync(w), 0);
	sr_wal_defer_hard_state(w, 1);
	CHECK_EQ(sr_wal_sync_hard_state(w), 0); /* nothing pending */
	sr_wal_hold(w); /* nothing moves until the sync */
	sr_wal_get_stats(w, &s0);
	for (uint32_t i = 1; i <= 10; i++)
		CHECK_EQ(GOPS->set_hard_state(g[i], 2, i), 0);
	CHECK_EQ(sr_wal_hard_state_pending(w), 1);
	CHECK_EQ(sr_wal_sync_hard_state(w), 0);
	CHECK_EQ(sr_wal_hard_state_pending(w), 0);
	sr_wal_get_stats(w, &s1);
	CHECK_EQ(s1.batches, s0.batches + 1);
	/* turning deferral off syncs what is pending */
	CHECK_EQ(GOPS->set_hard_state(g[1], 3, 0), 0);
	CHECK_EQ(sr_wal_hard_state_pending(w), 1);
	sr_wal_defer_hard_state(w, 0);
	CHECK_EQ(sr_wal_hard_state_pending(w), 0);
	for (uint32_t i = 1; i <= 10; i++)
		sr_wal_group_close(g[i]);
	t_close(w);
	w = t_open(dir, SEG);
	for (uint32_t i = 1; i <= 10; i++) {
		CHECK_EQ(sr_wal_group_open(w, i, &g[i]), 0);
		hs_check(g[i], i == 1 ? 3 : 2, i == 1 ? 0 : i);
		sr_wal_group_close(g[i]);
	}
	t_close(w);
	t_cleanup();
}

WAL_TEST(test_creating_groups_writes_no_batch_of_its_own)
{
	const char *dir = t_dir();
	sr_wal *w = t_open(dir, SEG);
	sr_wal_group *g;
	sr_wal_stats s0, s1;
	size_t n = 0;

	sr_wal_get_stats(w, &s0);
	for (uint32_t i = 1; i <= 50; i++) {
		CHECK_EQ(sr_wal_group_open(w, i, &g), 0);
		sr_wal_group_close(g);
	}
	sr_wal_get_stats(w, &s1);
	CHECK_EQ(s1.batches, s0.batches);
	CHECK_EQ(sr_wal_groups(w, NULL, 0, &n), SR_ETOOBIG);
	CHECK_EQ(n, 50);
	/* the next batch makes them durable (a directory fsync first) */
	CHECK_EQ(sr_wal_group_open(w, 51, &g), 0);
	CHECK_EQ(g_append(g, 1, 1, 3, 1), 0);
	CHECK_EQ(sr_wal_sync(w), 0);
	sr_wal_group_close(g);
	t_close(w);
	w = t_open(dir, SEG);
	CHECK_EQ(sr_wal_groups(w, NULL, 0, &n), SR_ETOOBIG);
	CHECK_EQ(n, 51);
	t_close(w);
	t_cleanup();
}

int main(int argc, char **argv)
{
	int rv = test_main(argc, argv);

	t_cleanup();
	return rv;
}

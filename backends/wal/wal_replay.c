/*
 * wal_replay.c — replaying and checking one segment at open
 * (wal_recover.c drives it segment by segment, in sequence order).
 *
 * Every record is read through a window of the file (RD_CHUNK bytes at a
 * time), its CRC, its batch numbering and its index checked against the
 * replay state, and applied to its group's log view: an ENTRY extends
 * pos[], TRUNCATE and COMPACT move first/last, RESET and DROP forget the
 * group's earlier records, HARDSTATE sets its term and vote.
 *
 * Torn tail or corruption?  The writer keeps one rule that makes the two
 * distinguishable: a batch is written only after the previous batch is
 * durable, and a new segment is created only after the previous segment's
 * last batch is durable.  So only the last batch on disk can have been
 * cut by a crash, and every record carries its batch number and the
 * offset where its batch starts.  When the replay meets a bad record at
 * offset X (bad CRC, impossible header, or a zeroed header followed by
 * non-zero bytes):
 *
 *   - in a segment that is not the last: corruption (that segment was
 *     complete and durable before the next one was created);
 *   - in the last segment: scan the rest of it for valid records.  If a
 *     valid record belongs to a batch written after the one X is in (a
 *     higher batch number that does not start exactly at X, or two
 *     different later batches), the data at X was durable before that
 *     batch was written: corruption.  Otherwise everything from X on is
 *     the remains of the last, interrupted batch: a torn tail, which is
 *     zeroed (so it cannot confuse a later recovery) and cut off.
 *
 * A record with a valid CRC whose content is impossible (an index that
 * does not follow, batch numbers that go backwards) is corruption
 * wherever it is: a torn write cannot produce a valid CRC.  A missing
 * segment (a gap in the sequence numbers, or entries that the oldest
 * segment says exist before it) and a log that starts after the snapshot
 * ends are corruption too.  Under SR_WAL_REPAIR_NONE corruption fails the
 * open with SR_ECORRUPT and a log line naming the file and offset; the
 * other modes cut the log at the first bad record.
 *
 * Survey.  Before protocol-aware repair cuts the log, the damaged part is
 * read again for the highest index each group held in it
 * (wal_replay_survey_segment; wal_lost.c keeps the result).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "wal_replay.h"

#define RD_CHUNK (4u << 20)

static const unsigned char *rd_get(struct seg_window *r, uint64_t off, size_t n,
				   int *rv)
{
	size_t want = n > RD_CHUNK ? n : RD_CHUNK;

	if (off >= r->base && off + n <= r->base + r->len)
		return r->buf + (off - r->base);
	if (off + n > r->size) {
		*rv = SR_ECORRUPT;
		return NULL;
	}
	if (want > r->size - off)
		want = (size_t)(r->size - off);
	if (want > r->cap) {
		unsigned char *p = wal_mem_realloc(r->w, r->buf, want);

		if (!p) {
			*rv = SR_ENOMEM;
			return NULL;
		}
		r->buf = p;
		r->cap = want;
	}
	r->len = 0;
	if (wal_io_pread_all(r->fd, r->buf, want, off) != 0) {
		wal_io_logf(r->w, SR_LOG_ERROR,
			    "wal: reading %s/%s at offset %llu: %s", r->w->dir,
			    r->name, (unsigned long long)off, strerror(errno));
		*rv = SR_EIO;
		return NULL;
	}
	r->base = off;
	r->len = want;
	return r->buf;
}

/* Report corruption; with the repair option, remember where to cut. */
int wal_replay_corrupt(struct replay *s, uint64_t seq, uint64_t off, int whole,
		       const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	wal_io_seg_name(s->name, sizeof(s->name), seq);
	wal_io_logf(s->w, SR_LOG_ERROR,
		    "wal: corruption in %s/%s at offset %llu: %s", s->w->dir,
		    s->name, (unsigned long long)off, msg);
	if (s->w->repair == SR_WAL_REPAIR_NONE) {
		wal_io_logf(s->w, SR_LOG_ERROR,
			    "wal: refusing to open %s: acknowledged entries "
			    "could be lost (SR_WAL_REPAIR_PEERS re-fetches "
			    "them from the leader)",
			    s->w->dir);
		return SR_ECORRUPT;
	}
	s->stop_seq = seq;
	s->stop_off = whole ? 0 : off;
	return SCAN_REPAIR;
}

/* ------------------------------------------------------------------ */
/* Replaying records                                                  */
/* ------------------------------------------------------------------ */

static void apply_truncate(struct sr_wal_group *g, sr_index from)
{
	g->last = from - 1;
	if (from <= g->known) {
		g->known = from;
		g->pos_off = g->pos_n = 0;
	} else {
		g->pos_n = (size_t)(from - g->known);
	}
}

static void apply_compact(struct sr_wal_group *g, sr_index upto)
{
	g->first = upto + 1;
	if (upto >= g->last) {
		g->last = upto;
		g->known = upto + 1;
		g->pos_off = g->pos_n = 0;
	} else if (upto >= g->known) {
		size_t d = (size_t)(upto + 1 - g->known);

		g->pos_off += d;
		g->pos_n -= d;
		g->known = upto + 1;
	}
}

/* The log restarts after the group's snapshot (a RESET record). */
void wal_replay_reset(struct sr_wal_group *g)
{
	g->first = g->known = g->snap.index + 1;
	g->last = g->snap.index;
	g->pos_off = g->pos_n = 0;
}

/*
 * The first record of a group other than 0 (or the first after a RESET)
 * sets its replay state: its older records may be in segments deleted
 * because no group needed them any more (wal_plan.c, groups_min_seg), so
 * the log is taken to start there; reconcile() then checks that it
 * starts at or before the group's snapshot, which is what a lost segment
 * would break.
 */
static void group_start(struct sr_wal_group *g, const struct wal_rec *r)
{
	sr_index at = r->kind == WAL_REC_COMPACT ? r->index + 1 : r->index;

	g->seen = 1;
	g->inferred = 1;
	g->first = g->known = at;
	g->last = at - 1;
	g->pos_off = g->pos_n = 0;
}

/*
 * A HARDSTATE record sets the group's term and vote (the latest one in
 * the stream wins over the meta file, which never changes once a group
 * has them in the log); a DROP forgets them with everything else.
 */
static void apply_hard_state(struct sr_wal_group *g, uint64_t seq,
			     const struct wal_rec *r)
{
	/* either way the record decides over the meta file, so it must
	 * outlive its segment as a HARDSTATE record does (wal_plan.c) */
	g->hs_seg = seq;
	if (r->kind == WAL_REC_DROP) {
		g->term = 0;
		g->vote = 0;
		return;
	}
	g->term = r->term;
	g->vote = wal_get64(r->data);
}

/* The group a replayed record belongs to (added when unknown: a group
 * without a meta file, whose drop a crash interrupted). */
static int record_group(struct replay *s, uint64_t seq, const struct wal_rec *r,
			struct sr_wal_group **out)
{
	struct sr_wal_group *g = wal_group_find(s->w, r->group);

	if (!g && !(g = wal_group_add(s->w, r->group)))
		return SR_ENOMEM;
	*out = g;
	g->reset_last = r->kind == WAL_REC_RESET;
	g->drop_last = r->kind == WAL_REC_DROP;
	if (r->kind == WAL_REC_HARDSTATE || r->kind == WAL_REC_DROP)
		apply_hard_state(g, seq, r);
	if (r->kind == WAL_REC_HARDSTATE)
		return 0; /* the log view is untouched */
	if (r->kind == WAL_REC_RESET || r->kind == WAL_REC_DROP) {
		/* forget it all: the records that follow (if any) start the
		 * group again, else its snapshot does (groups_settle) */
		g->seen = 0;
		g->first = g->known = 1;
		g->last = 0;
		g->pos_off = g->pos_n = 0;
	} else if (!g->seen) {
		group_start(g, r);
	}
	return 0;
}

static int apply(struct replay *s, struct wal_seg *seg, uint64_t off,
		 const struct wal_rec *r)
{
	struct sr_wal_group *g;
	uint64_t seq = seg->seq;
	int rv;

	if (s->have_rec && r->batch == s->last_batch) {
		if (r->batch_off != s->batch_off)
			return wal_replay_corrupt(
				s, seq, off, 0,
				"record of batch %llu says the batch "
				"starts at %llu, not %llu",
				(unsigned long long)r->batch,
				(unsigned long long)r->batch_off,
				(unsigned long long)s->batch_off);
	} else if (r->batch > s->last_batch && r->batch >= s->seg_first_batch &&
		   r->batch_off == off) {
		s->last_batch = r->batch;
		s->batch_off = off;
	} else {
		return wal_replay_corrupt(s, seq, off, 0,
					  "batch %llu (starting at %llu) "
					  "cannot follow "
					  "batch %llu",
					  (unsigned long long)r->batch,
					  (unsigned long long)r->batch_off,
					  (unsigned long long)s->last_batch);
	}
	s->have_rec = 1;
	if (r->batch > s->max_batch)
		s->max_batch = r->batch;
	if ((rv = record_group(s, seq, r, &g)))
		return rv;
	switch (r->kind) {
	case WAL_REC_ENTRY:
		if (g->inferred && !g->pos_n && r->index > g->last + 1) {
			/* the entries before it are in deleted segments:
			 * a later COMPACT must cover them (reconcile) */
			g->known = r->index;
			g->last = r->index - 1;
		}
		if (r->index != g->last + 1)
			return wal_replay_corrupt(s, seq, off, 0,
						  "entry %llu of group %u "
						  "follows entry "
						  "%llu (index gap)",
						  (unsigned long long)r->index,
						  g->id,
						  (unsigned long long)g->last);
		if ((rv = wal_plan_pos_reserve(g, 1)))
			return rv;
		g->pos[g->pos_off + g->pos_n++] = seq << 32 | off;
		g->last++;
		if (g->id == 0 && seg->max_index < r->index)
			seg->max_index = r->index;
		return 0;
	case WAL_REC_TRUNCATE:
		if (g->inferred &&
		    (r->index < g->first || r->index > g->last) &&
		    !(g->pos_n && r->index > g->last)) {
			/* entries this replay does not know of (in deleted
			 * segments) were cut: the log now ends before from */
			g->first = r->index < g->first ? r->index : g->first;
			g->last = r->index - 1;
			g->known = r->index;
			g->pos_off = g->pos_n = 0;
			return 0;
		}
		if (r->index < g->first || r->index > g->last)
			return wal_replay_corrupt(s, seq, off, 0,
						  "truncate from %llu outside "
						  "the log "
						  "%llu..%llu of group %u",
						  (unsigned long long)r->index,
						  (unsigned long long)g->first,
						  (unsigned long long)g->last,
						  g->id);
		apply_truncate(g, r->index);
		return 0;
	case WAL_REC_COMPACT:
		if (r->index >= g->first)
			apply_compact(g, r->index);
		else if (!g->inferred) /* its start is exact (the headers) */
			return wal_replay_corrupt(s, seq, off, 0,
						  "compact up to %llu below "
						  "the log's "
						  "first index %llu",
						  (unsigned long long)r->index,
						  (unsigned long long)g->first);
		return 0;
	default: /* RESET, HARDSTATE, DROP: done by record_group */
		return 0;
	}
}

/* ------------------------------------------------------------------ */
/* The end of a segment: clean, torn, or corrupt                      */
/* ------------------------------------------------------------------ */

/* *out = one past the last non-zero byte of [from, to), or from. */
static int scan_nonzero(struct seg_window *r, uint64_t from, uint64_t to,
			uint64_t *out)
{
	int rv = 0;

	while (from < to) {
		size_t n = to - from > RD_CHUNK ? RD_CHUNK
						: (size_t)(to - from);
		const unsigned char *p = rd_get(r, from, n, &rv);

		if (!p)
			return rv;
		if (!wal_fmt_is_zero(p, n)) {
			size_t i = n;

			while (!p[i - 1])
				i--;
			*out = from + i;
		}
		from += n;
	}
	return 0;
}

/*
 * The same, skipping holes: the preallocated tail of a segment is
 * unwritten space that reads as zeros, and SEEK_DATA/SEEK_HOLE let us
 * skip it instead of reading up to a whole segment of zeros at every
 * open.  Where the file system does not report holes, every byte is data
 * and is read.
 */
static int last_nonzero(struct seg_window *r, uint64_t from, uint64_t to,
			uint64_t *out)
{
	*out = from;
	while (from < to) {
		off_t data = lseek(r->fd, (off_t)from, SEEK_DATA), hole;
		int rv;

		if (data < 0 || (uint64_t)data >= to)
			return 0; /* ENXIO: only a hole is left */
		hole = lseek(r->fd, data, SEEK_HOLE);
		if (hole < 0 || (uint64_t)hole > to)
			hole = (off_t)to;
		if ((rv = scan_nonzero(r, (uint64_t)data, (uint64_t)hole, out)))
			return rv;
		from = (uint64_t)hole;
	}
	return 0;
}

/* Is there a record with a valid CRC at an 8-aligned offset in [from,to)?
 * *found gets its offset and *rec the record, else *found = 0. */
static int next_valid(struct seg_window *r, uint64_t from, uint64_t to,
		      uint64_t *found, struct wal_rec *rec, uint64_t *size)
{
	const char *why;
	int rv = 0;

	*found = 0;
	for (uint64_t off = from; off + WAL_REC_HDR <= to; off += 8) {
		const unsigned char *p = rd_get(r, off, WAL_REC_HDR, &rv);

		if (!p)
			return rv;
		if (wal_fmt_rec_peek(p, off, r->size - off, size, &why) !=
		    WALFMT_OK)
			continue;
		p = rd_get(r, off, (size_t)*size, &rv);
		if (!p)
			return rv;
		if (wal_fmt_rec_decode(p, off, *size, rec, &why) == WALFMT_OK &&
		    wal_fmt_rec_allowed(r->version, rec)) {
			*found = off;
			return 0;
		}
	}
	return 0;
}

/*
 * The record at x in the last segment is bad and bytes up to dirty are
 * not zero: a torn tail (0) or corruption (see the top of the file).
 */
static int classify(struct replay *s, uint64_t seq, uint64_t x, uint64_t dirty,
		    const char *why)
{
	uint64_t b = s->have_rec ? s->last_batch : s->seg_first_batch - 1;
	uint64_t next = 0, off = x + 8, at, size;
	int same = 0, rv;
	struct wal_rec rec;

	for (;;) {
		rv = next_valid(&s->rd, off, dirty, &at, &rec, &size);
		if (rv || !at)
			return rv;
		if (rec.batch > s->max_batch)
			s->max_batch = rec.batch;
		if (s->have_rec && rec.batch == b &&
		    rec.batch_off == s->batch_off)
			same = 1;
		else if (rec.batch > b && rec.batch_off == x &&
			 (!next || next == rec.batch))
			next = rec.batch;
		else
			same = next = 1; /* a later batch: corruption */
		if (same && next)
			return wal_replay_corrupt(
				s, seq, x, 0,
				"%s, and a valid record at offset %llu "
				"(batch %llu) was written after it: "
				"not a torn write",
				why, (unsigned long long)at,
				(unsigned long long)rec.batch);
		off = at + size;
	}
}

/* ------------------------------------------------------------------ */
/* One segment                                                        */
/* ------------------------------------------------------------------ */

static int seg_header(struct replay *s, uint64_t seq, int is_last,
		      struct wal_seg_hdr *h)
{
	const unsigned char *p = NULL;
	const char *why = "shorter than a segment header";
	uint64_t dirty, at, size;
	struct wal_rec rec;
	int rv = 0;

	if (s->rd.size >= WAL_SEG_HDR) {
		p = rd_get(&s->rd, 0, WAL_SEG_HDR, &rv);
		if (!p)
			return rv;
	}
	if (!p || wal_fmt_seg_hdr_decode(p, h, &why) != WALFMT_OK) {
		if (!is_last)
			return wal_replay_corrupt(s, seq, 0, 1, "%s", why);
		/* a segment whose creation a crash interrupted holds no
		 * record: its header is synced before any batch */
		if ((rv = last_nonzero(&s->rd, WAL_SEG_HDR, s->rd.size,
				       &dirty)) ||
		    (rv = next_valid(&s->rd, WAL_SEG_HDR, dirty, &at, &rec,
				     &size)))
			return rv;
		if (at)
			return wal_replay_corrupt(s, seq, 0, 1, "%s", why);
		return -1; /* incomplete: remove it */
	}
	if (h->seq != seq)
		return wal_replay_corrupt(s, seq, 16, 1,
					  "the header names segment %llx",
					  (unsigned long long)h->seq);
	s->rd.version = wal_fmt_seg_version(p);
	if (!s->started || !s->w->g0.seen) {
		/* the first segment, or group 0 was RESET since: the header
		 * says where its log is */
		struct sr_wal_group *g0 = &s->w->g0;

		g0->seen = 1;
		g0->inferred = 0;
		g0->first = h->first_index;
		g0->last = h->start_index - 1;
		g0->known = h->start_index;
		if (!s->started)
			s->last_batch = h->first_batch - 1;
		s->started = 1;
	} else if (h->first_index != s->w->g0.first ||
		   h->start_index != s->w->g0.last + 1) {
		return wal_replay_corrupt(s, seq, 24, 1,
					  "the segment starts at index %llu "
					  "(first %llu) "
					  "but the segments before it end at "
					  "%llu (first "
					  "%llu): index gap",
					  (unsigned long long)h->start_index,
					  (unsigned long long)h->first_index,
					  (unsigned long long)s->w->g0.last,
					  (unsigned long long)s->w->g0.first);
	} else if (h->first_batch <= s->last_batch) {
		return wal_replay_corrupt(s, seq, 40, 1,
					  "batch numbers go backwards");
	}
	if (h->first_batch - 1 > s->max_batch)
		s->max_batch = h->first_batch - 1;
	s->seg_first_batch = h->first_batch;
	s->have_rec = 0;
	return 0;
}

static int scan_records(struct replay *s, struct wal_seg *seg, int is_last)
{
	uint64_t off = WAL_SEG_HDR, size, dirty;
	const char *why = "the segment ends in the middle of a record";
	int rv = 0;

	for (;;) {
		const unsigned char *p;
		struct wal_rec r;

		if (off + WAL_REC_HDR > s->rd.size)
			break;
		if (!(p = rd_get(&s->rd, off, WAL_REC_HDR, &rv)))
			return rv;
		if (wal_fmt_rec_peek(p, off, s->rd.size - off, &size, &why) !=
		    WALFMT_OK)
			break;
		if (!(p = rd_get(&s->rd, off, (size_t)size, &rv)))
			return rv;
		if (wal_fmt_rec_decode(p, off, size, &r, &why) != WALFMT_OK)
			break;
		if (!wal_fmt_rec_allowed(s->rd.version, &r)) {
			why = "a record of a later format version than its "
			      "segment's";
			break;
		}
		if ((rv = apply(s, seg, off, &r)))
			return rv;
		off += size;
	}
	s->end = off;
	s->zero_to = off;
	if ((rv = last_nonzero(&s->rd, off, s->rd.size, &dirty)))
		return rv;
	if (dirty == off)
		return 0;
	if (!is_last)
		return wal_replay_corrupt(s, seg->seq, off, 0, "%s", why);
	if ((rv = classify(s, seg->seq, off, dirty, why)))
		return rv;
	s->zero_to = dirty;
	return 0;
}

int wal_replay_segment(struct replay *s, uint64_t seq, int is_last)
{
	sr_wal *w = s->w;
	struct wal_seg_hdr h;
	struct wal_seg *seg;
	struct stat st;
	int fd, rv;

	wal_io_seg_name(s->name, sizeof(s->name), seq);
	fd = openat(w->dirfd, s->name, O_RDWR | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0) {
		wal_io_logf(w, SR_LOG_ERROR, "wal: opening %s/%s: %s", w->dir,
			    s->name, strerror(errno));
		if (fd >= 0)
			close(fd);
		return SR_EIO;
	}
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	s->rd.fd = fd;
	s->rd.size = (uint64_t)st.st_size;
	s->rd.base = s->rd.len = 0;
	s->rd.name = s->name;
	rv = seg_header(s, seq, is_last, &h);
	if (rv == -1) {
		wal_io_logf(w, SR_LOG_INFO,
			    "wal: removing %s/%s: a crash interrupted its "
			    "creation (no record was ever written to it)",
			    w->dir, s->name);
		close(fd);
		if (unlinkat(w->dirfd, s->name, 0) != 0 || fsync(w->dirfd))
			return SR_EIO;
		return 0;
	}
	if (rv || (rv = wal_queue_seg_add(w, seq, s->rd.size))) {
		close(fd);
		return rv;
	}
	seg = &w->segs[w->n_segs - 1];
	seg->version = s->rd.version;
	seg->fd = fd;
	seg->state = SEG_LIVE;
	seg->written = s->rd.size;
	return scan_records(s, seg, is_last);
}

static void survey_note(sr_wal *w, uint32_t gid, sr_index index)
{
	struct sr_wal_group *g = wal_group_find(w, gid);

	if (g && index > g->survey_max)
		g->survey_max = index;
}

/* The highest entry index of each group in valid records of one segment
 * from off on (group 0: and the segment header's start). */
int wal_replay_survey_segment(struct replay *s, uint64_t seq, uint64_t off)
{
	struct seg_window r = { .w = s->w };
	struct wal_seg_hdr h;
	struct wal_rec rec;
	uint64_t dirty, at, size;
	const char *why;
	struct stat st;
	int rv = 0;

	wal_io_seg_name(s->name, sizeof(s->name), seq);
	r.fd = openat(s->w->dirfd, s->name, O_RDONLY | O_CLOEXEC);
	if (r.fd < 0 || fstat(r.fd, &st) != 0) {
		rv = r.fd < 0 && errno == ENOENT ? 0 : SR_EIO;
		goto out;
	}
	r.size = (uint64_t)st.st_size;
	r.name = s->name;
	if (r.size >= WAL_SEG_HDR) {
		const unsigned char *p = rd_get(&r, 0, WAL_SEG_HDR, &rv);

		if (!p)
			goto out;
		if (wal_fmt_seg_hdr_decode(p, &h, &why) == WALFMT_OK) {
			r.version = wal_fmt_seg_version(p);
			if (off < WAL_SEG_HDR && h.start_index > 0)
				survey_note(s->w, 0, h.start_index - 1);
		}
	}
	if (off < WAL_SEG_HDR)
		off = WAL_SEG_HDR;
	if ((rv = last_nonzero(&r, off, r.size, &dirty)))
		goto out;
	for (;;) {
		if ((rv = next_valid(&r, off, dirty, &at, &rec, &size)) || !at)
			break;
		if (rec.kind == WAL_REC_ENTRY)
			survey_note(s->w, rec.group, rec.index);
		off = at + size;
	}
out:
	if (r.fd >= 0)
		close(r.fd);
	wal_mem_free(s->w, r.buf);
	return rv;
}

/*
 * wal_recover.c — opening a WAL: replay and check everything on disk.
 *
 * Order: list the directory (segments, snapshots, leftover temporaries),
 * read the meta file, load the newest snapshot, then replay the segments
 * in sequence order, reading every record and checking its CRC, its
 * batch numbering and its index against the replay state.
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
 * Protocol-aware repair (SR_WAL_REPAIR_PEERS, the default; after
 * Alagappan et al., FAST'18).  Cutting the log can drop entries this node
 * acknowledged, and a node that votes without an entry it acknowledged can
 * help elect a leader that lacks a committed entry.  So before anything is
 * cut, the damaged part is surveyed for the highest index it held (every
 * record with a valid CRC past the cut, every later segment header), and
 * that index, lost_last, is written to the `lost` file.  load() reports
 * the range until the log holds an entry past lost_last (an entry there
 * was appended after the cut, so an append's consistency check matched
 * the whole log before it with a leader's, Raft §5.3) or a snapshot
 * covers it; then the file is deleted at the next open.  The engine does
 * the rest (lib/repair.c): it does not vote until a leader has verified
 * its log up to lost_last.  The lost file is written before the cut
 * (and before a damaged snapshot is deleted), so a crash in the middle of
 * a repair finds it again.
 *
 * Reconciling with the snapshot (Raft §7): entries at or below the
 * snapshot index are covered by it; if the log holds the snapshot's
 * index with another term, or ends before it, the log is dropped and
 * restarts after the snapshot (the TRUNCATE/COMPACT records that say so
 * are queued, so that the segment headers written later agree with the
 * replay).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "wal_int.h"

#define RD_CHUNK (4u << 20)

/* A read window over one file. */
struct rd {
	sr_wal *w;
	uint32_t version; /* the segment's format version */
	int fd;
	uint64_t size, base;
	unsigned char *buf;
	size_t cap, len;
	const char *name;
};

struct scan {
	sr_wal *w;
	struct rd rd;
	int started; /* group 0's state was set from a segment header */
	uint64_t last_batch, batch_off, seg_first_batch, max_batch;
	int have_rec;	   /* a good record in the current segment */
	uint64_t end;	   /* valid end of the last scanned segment */
	uint64_t zero_to;  /* torn bytes in the last segment: end..zero_to */
	uint64_t max_seq;  /* highest segment number in the directory */
	uint64_t stop_seq; /* repair: drop from here on */
	uint64_t stop_off; /* 0: the whole segment */
	char name[32];
};

enum { SCAN_REPAIR = 1 };

static const unsigned char *rd_get(struct rd *r, uint64_t off, size_t n,
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
__attribute__((format(printf, 5, 6))) static int
corrupt(struct scan *s, uint64_t seq, uint64_t off, int whole, const char *fmt,
	...)
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
static void apply_reset(struct sr_wal_group *g)
{
	g->first = g->known = g->snap.index + 1;
	g->last = g->snap.index;
	g->pos_off = g->pos_n = 0;
}

/*
 * The first record of a group other than 0 (or the first after a RESET)
 * sets its replay state: its older records may be in segments deleted
 * because no group needed them any more (wal_log.c, groups_min_seg), so
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
	 * outlive its segment as a HARDSTATE record does (wal_log.c) */
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
static int record_group(struct scan *s, uint64_t seq, const struct wal_rec *r,
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

static int apply(struct scan *s, struct wal_seg *seg, uint64_t off,
		 const struct wal_rec *r)
{
	struct sr_wal_group *g;
	uint64_t seq = seg->seq;
	int rv;

	if (s->have_rec && r->batch == s->last_batch) {
		if (r->batch_off != s->batch_off)
			return corrupt(s, seq, off, 0,
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
		return corrupt(s, seq, off, 0,
			       "batch %llu (starting at %llu) cannot follow "
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
			return corrupt(s, seq, off, 0,
				       "entry %llu of group %u follows entry "
				       "%llu (index gap)",
				       (unsigned long long)r->index, g->id,
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
			return corrupt(s, seq, off, 0,
				       "truncate from %llu outside the log "
				       "%llu..%llu of group %u",
				       (unsigned long long)r->index,
				       (unsigned long long)g->first,
				       (unsigned long long)g->last, g->id);
		apply_truncate(g, r->index);
		return 0;
	case WAL_REC_COMPACT:
		if (r->index >= g->first)
			apply_compact(g, r->index);
		else if (!g->inferred) /* its start is exact (the headers) */
			return corrupt(s, seq, off, 0,
				       "compact up to %llu below the log's "
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
static int scan_nonzero(struct rd *r, uint64_t from, uint64_t to, uint64_t *out)
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
static int last_nonzero(struct rd *r, uint64_t from, uint64_t to, uint64_t *out)
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
static int next_valid(struct rd *r, uint64_t from, uint64_t to, uint64_t *found,
		      struct wal_rec *rec, uint64_t *size)
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
static int classify(struct scan *s, uint64_t seq, uint64_t x, uint64_t dirty,
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
			return corrupt(s, seq, x, 0,
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

static int seg_header(struct scan *s, uint64_t seq, int is_last,
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
			return corrupt(s, seq, 0, 1, "%s", why);
		/* a segment whose creation a crash interrupted holds no
		 * record: its header is synced before any batch */
		if ((rv = last_nonzero(&s->rd, WAL_SEG_HDR, s->rd.size,
				       &dirty)) ||
		    (rv = next_valid(&s->rd, WAL_SEG_HDR, dirty, &at, &rec,
				     &size)))
			return rv;
		if (at)
			return corrupt(s, seq, 0, 1, "%s", why);
		return -1; /* incomplete: remove it */
	}
	if (h->seq != seq)
		return corrupt(s, seq, 16, 1, "the header names segment %llx",
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
		return corrupt(s, seq, 24, 1,
			       "the segment starts at index %llu (first %llu) "
			       "but the segments before it end at %llu (first "
			       "%llu): index gap",
			       (unsigned long long)h->start_index,
			       (unsigned long long)h->first_index,
			       (unsigned long long)s->w->g0.last,
			       (unsigned long long)s->w->g0.first);
	} else if (h->first_batch <= s->last_batch) {
		return corrupt(s, seq, 40, 1, "batch numbers go backwards");
	}
	if (h->first_batch - 1 > s->max_batch)
		s->max_batch = h->first_batch - 1;
	s->seg_first_batch = h->first_batch;
	s->have_rec = 0;
	return 0;
}

static int scan_records(struct scan *s, struct wal_seg *seg, int is_last)
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
		return corrupt(s, seg->seq, off, 0, "%s", why);
	if ((rv = classify(s, seg->seq, off, dirty, why)))
		return rv;
	s->zero_to = dirty;
	return 0;
}

static int scan_segment(struct scan *s, uint64_t seq, int is_last)
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

/* ------------------------------------------------------------------ */
/* The directory                                                      */
/* ------------------------------------------------------------------ */

struct list {
	uint64_t *v;
	size_t n, cap;
};

static int list_add(sr_wal *w, struct list *l, uint64_t v)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		uint64_t *p = wal_mem_realloc(w, l->v, cap * sizeof(*p));

		if (!p)
			return SR_ENOMEM;
		l->v = p;
		l->cap = cap;
	}
	l->v[l->n++] = v;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static const char hexdigits[] = "0123456789abcdef";

/* "<16 hex digits><suffix>" -> *v (non-zero). */
static int parse_name(const char *name, const char *suffix, uint64_t *v)
{
	char *end;

	if (strlen(name) != 16 + strlen(suffix) || strcmp(name + 16, suffix))
		return 0;
	for (int i = 0; i < 16; i++)
		if (!strchr(hexdigits, name[i]))
			return 0;
	*v = strtoull(name, &end, 16);
	return *v != 0;
}

/* A file of a group other than 0 (wal_group.c names them). */
enum { GF_META = 0, GF_LOST = 1, GF_SNAP = 2 };

struct gfile {
	uint32_t gid, kind;
	uint64_t idx; /* GF_SNAP: the snapshot's index */
};

struct glist {
	struct gfile *v;
	size_t n, cap;
};

static int glist_add(sr_wal *w, struct glist *l, uint32_t gid, uint32_t kind,
		     uint64_t idx)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct gfile *p = wal_mem_realloc(w, l->v, cap * sizeof(*p));

		if (!p)
			return SR_ENOMEM;
		l->v = p;
		l->cap = cap;
	}
	l->v[l->n].gid = gid;
	l->v[l->n].kind = kind;
	l->v[l->n++].idx = idx;
	return 0;
}

static int cmp_gfile(const void *a, const void *b)
{
	const struct gfile *x = a, *y = b;

	if (x->gid != y->gid)
		return x->gid < y->gid ? -1 : 1;
	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* "g<8 hex digits>..." -> *gid (non-zero) and *rest (after the digits). */
static int parse_group(const char *name, uint32_t *gid, const char **rest)
{
	uint32_t v = 0;

	if (name[0] != 'g')
		return 0;
	for (int i = 1; i <= 8; i++) {
		const char *d = name[i] ? strchr(hexdigits, name[i]) : NULL;

		if (!d)
			return 0;
		v = v * 16 + (uint32_t)(d - hexdigits);
	}
	*gid = v;
	*rest = name + 9;
	return v != 0;
}

/* One directory entry of a group: listed, deleted (temporary) or not ours. */
static int list_group_file(sr_wal *w, const char *name, struct glist *gl)
{
	const char *rest;
	uint32_t gid;
	uint64_t v;

	if (!parse_group(name, &gid, &rest))
		return 0;
	if (!strcmp(rest, ".meta"))
		return glist_add(w, gl, gid, GF_META, 0);
	if (!strcmp(rest, ".lost"))
		return glist_add(w, gl, gid, GF_LOST, 0);
	if (rest[0] == '-' && parse_name(rest + 1, ".snap", &v))
		return glist_add(w, gl, gid, GF_SNAP, v);
	if (!strcmp(rest, ".meta.tmp") || !strcmp(rest, ".snap.tmp") ||
	    !strcmp(rest, ".lost.tmp"))
		unlinkat(w->dirfd, name, 0); /* half-written */
	return 0;
}

static int list_dir(sr_wal *w, struct list *segs, struct list *snaps,
		    struct glist *gl)
{
	int fd = dup(w->dirfd), rv = 0;
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;
	uint64_t v;

	if (!d) {
		if (fd >= 0)
			close(fd);
		return SR_EIO;
	}
	rewinddir(d);
	while (!rv && (de = readdir(d))) {
		if (parse_name(de->d_name, ".wal", &v))
			rv = list_add(w, segs, v);
		else if (parse_name(de->d_name, ".snap", &v))
			rv = list_add(w, snaps, v);
		else if (!strcmp(de->d_name, "meta.tmp") ||
			 !strcmp(de->d_name, "snap.tmp") ||
			 !strcmp(de->d_name, "lost.tmp"))
			unlinkat(w->dirfd, de->d_name, 0); /* half-written */
		else
			rv = list_group_file(w, de->d_name, gl);
	}
	closedir(d);
	if (segs->n > 1)
		qsort(segs->v, segs->n, sizeof(uint64_t), cmp_u64);
	if (snaps->n > 1)
		qsort(snaps->v, snaps->n, sizeof(uint64_t), cmp_u64);
	if (gl->n > 1)
		qsort(gl->v, gl->n, sizeof(*gl->v), cmp_gfile);
	return rv;
}

/* ------------------------------------------------------------------ */
/* Protocol-aware repair: the lost file and the survey                */
/* ------------------------------------------------------------------ */

/* " of group <id>" for the groups other than 0 (log lines). */
static const char *glabel(const struct sr_wal_group *g, char *buf, size_t cap)
{
	if (!g->id)
		return "";
	snprintf(buf, cap, " (group %u)", g->id);
	return buf;
}

int wal_lost_note(struct sr_wal_group *g, sr_index last)
{
	sr_wal *w = g->wal;
	unsigned char buf[WAL_LOST_SIZE];
	char name[32], label[32];
	int rv;

	/* Every entry the group held has a term <= its durable term (a term
	 * is durable before anything of it is appended), so that term
	 * bounds the lost ones; kept from the first loss on, raised only by
	 * a later loss (an entry re-fetched since may carry a higher term).
	 * Not the term of a later restart: terms rise while the node cannot
	 * vote, and a rising bound would refuse every candidate. */
	sr_term term = g->term > g->lost_term ? g->term : g->lost_term;

	if (w->repair != SR_WAL_REPAIR_PEERS)
		return 0;
	if (last < g->lost_last)
		last = g->lost_last;
	if (!last || (last == g->lost_last && term == g->lost_term))
		return 0;
	wal_io_group_name(name, sizeof(name), g->id, "lost");
	wal_fmt_lost_encode(buf, last, term);
	if ((rv = wal_io_write_atomic(w, name, buf, sizeof(buf))))
		return rv;
	g->lost_last = last;
	g->lost_term = term;
	wal_io_logf(w, SR_LOG_WARN,
		    "wal: REPAIR: %s%s may have lost acknowledged entries up "
		    "to %llu; the node re-fetches them from the leader and "
		    "does not vote until it has",
		    w->dir, glabel(g, label, sizeof(label)),
		    (unsigned long long)last);
	return 0;
}

static int lost_load(struct sr_wal_group *g)
{
	sr_wal *w = g->wal;
	unsigned char buf[WAL_LOST_SIZE + 1];
	const char *why;
	char name[32];
	ssize_t n;
	int fd;

	wal_io_group_name(name, sizeof(name), g->id, "lost");
	fd = openat(w->dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		wal_io_logf(w, SR_LOG_ERROR, "wal: opening %s/%s: %s", w->dir,
			    name, strerror(errno));
		return SR_EIO;
	}
	do {
		n = pread(fd, buf, sizeof(buf), 0);
	} while (n < 0 && errno == EINTR);
	close(fd);
	if (n < 0 || wal_fmt_lost_decode(buf, (size_t)n, &g->lost_last,
					 &g->lost_term, &why) != WALFMT_OK) {
		/* without it the node could vote without entries it
		 * acknowledged: never guess */
		wal_io_logf(w, SR_LOG_ERROR,
			    "wal: refusing to open %s: the lost file is "
			    "damaged (%s)",
			    w->dir, name);
		return SR_ECORRUPT;
	}
	return 0;
}

/* After the replay: report the lost range, or forget a repaired one (or,
 * with SR_WAL_REPAIR_TRUNCATE, any). */
static int lost_settle(struct sr_wal_group *g)
{
	sr_wal *w = g->wal;
	char name[32], label[32];

	if (!g->lost_last)
		return 0;
	glabel(g, label, sizeof(label));
	if (g->last > g->lost_last || g->snap.index >= g->lost_last) {
		wal_io_logf(w, SR_LOG_INFO,
			    "wal: the entries lost up to %llu%s were fetched "
			    "again: repair complete",
			    (unsigned long long)g->lost_last,
			    g->id ? label : "");
	} else if (w->repair == SR_WAL_REPAIR_TRUNCATE) {
		/* The operator's override for a group that cannot elect
		 * while this node waits for entries no electable peer holds
		 * (docs/operations.md): forget the range, vote as if the
		 * entries had never been here. */
		wal_io_logf(w, SR_LOG_WARN,
			    "wal: REPAIR: %s%s: forgetting the lost range "
			    "up to %llu (repair mode truncate): this node "
			    "now votes without the entries it lost, and "
			    "acknowledged entries MAY BE LOST",
			    w->dir, g->id ? label : "",
			    (unsigned long long)g->lost_last);
	} else {
		g->lost_first = g->last + 1 < g->lost_last ? g->last + 1
							   : g->lost_last;
		wal_io_logf(w, SR_LOG_WARN,
			    "wal: %s%s: entries %llu..%llu are to be fetched "
			    "from the leader (the log ends at %llu)",
			    w->dir, g->id ? label : "",
			    (unsigned long long)g->lost_first,
			    (unsigned long long)g->lost_last,
			    (unsigned long long)g->last);
		return 0;
	}
	g->lost_first = g->lost_last = 0;
	g->lost_term = 0;
	wal_io_group_name(name, sizeof(name), g->id, "lost");
	if (unlinkat(w->dirfd, name, 0) != 0 || fsync(w->dirfd) != 0)
		return SR_EIO;
	return 0;
}

static void survey_note(sr_wal *w, uint32_t gid, sr_index index)
{
	struct sr_wal_group *g = wal_group_find(w, gid);

	if (g && index > g->survey_max)
		g->survey_max = index;
}

/* The highest entry index of each group in valid records of one segment
 * from off on (group 0: and the segment header's start). */
static int survey_segment(struct scan *s, uint64_t seq, uint64_t off)
{
	struct rd r = { .w = s->w };
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

/*
 * Before the cut: how far did the damaged part of the log reach, for
 * each group?  The group a damaged record belonged to is inside the
 * damaged bytes, so every group is marked: at least up to its last
 * entry before the cut (nothing known missing, but a lost TRUNCATE
 * could have been its), and up to its highest entry past the cut.
 */
static int survey(struct scan *s, const struct list *l)
{
	sr_wal *w = s->w;
	int rv;

	if (w->repair != SR_WAL_REPAIR_PEERS)
		return 0; /* _TRUNCATE reports nothing */
	for (size_t i = 0; i < l->n; i++) {
		if (l->v[i] < s->stop_seq)
			continue;
		rv = survey_segment(s, l->v[i],
				    l->v[i] == s->stop_seq ? s->stop_off : 0);
		if (rv)
			return rv;
	}
	for (size_t i = 0; i <= w->gtab_cap; i++) {
		struct sr_wal_group *g = i < w->gtab_cap ? w->gtab[i] : &w->g0;

		if (!g || !g->has_meta)
			continue;
		rv = wal_lost_note(g, g->survey_max > g->last ? g->survey_max
							      : g->last);
		if (rv)
			return rv;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* The groups' files                                                  */
/* ------------------------------------------------------------------ */

/* Files of a group without a meta file: a crash interrupted its drop
 * (wal_group.c deletes the meta file first).  Finish it. */
static int group_files_unlink(sr_wal *w, const struct glist *l, size_t i,
			      size_t j)
{
	char name[48];

	wal_io_logf(w, SR_LOG_INFO,
		    "wal: group %u has files but no meta file: a crash "
		    "interrupted its drop; finishing it",
		    l->v[i].gid);
	for (; i < j; i++) {
		if (l->v[i].kind == GF_SNAP)
			wal_io_snap_name(name, sizeof(name), l->v[i].gid,
					 l->v[i].idx);
		else
			wal_io_group_name(name, sizeof(name), l->v[i].gid,
					  "lost");
		if (unlinkat(w->dirfd, name, 0) != 0 && errno != ENOENT)
			return SR_EIO;
	}
	return fsync(w->dirfd) != 0 ? SR_EIO : 0;
}

/* A group with a meta file: hard state, lost file, newest snapshot. */
static int group_files_load(sr_wal *w, const struct glist *l, size_t i,
			    size_t j)
{
	struct sr_wal_group *g = wal_group_add(w, l->v[i].gid);
	uint64_t *idx;
	size_t k = i + 1, n = 0;
	int rv;

	if (!g)
		return SR_ENOMEM;
	g->has_meta = 1;
	if ((rv = wal_io_meta_read(g)))
		return rv;
	if (k < j && l->v[k].kind == GF_LOST) {
		if ((rv = lost_load(g)))
			return rv;
		k++;
	}
	if (k == j)
		return 0;
	idx = wal_mem_alloc(w, (j - k) * sizeof(*idx));
	if (!idx)
		return SR_ENOMEM;
	for (; k < j; k++)
		idx[n++] = l->v[k].idx;
	rv = wal_snap_load(g, idx, n);
	wal_mem_free(w, idx);
	return rv;
}

static int groups_load(sr_wal *w, const struct glist *l)
{
	int rv = 0;

	for (size_t i = 0, j; i < l->n && !rv; i = j) {
		for (j = i; j < l->n && l->v[j].gid == l->v[i].gid; j++)
			;
		rv = l->v[i].kind == GF_META ? group_files_load(w, l, i, j)
					     : group_files_unlink(w, l, i, j);
	}
	return rv;
}

/* ------------------------------------------------------------------ */
/* Repair, reconciliation, the planner                                */
/* ------------------------------------------------------------------ */

/* Delete segment files with seq >= from, newest first. */
static int drop_from(struct scan *s, const struct list *l, uint64_t from)
{
	sr_wal *w = s->w;

	for (size_t i = l->n; i-- > 0;) {
		if (l->v[i] < from)
			break;
		wal_io_seg_name(s->name, sizeof(s->name), l->v[i]);
		if (unlinkat(w->dirfd, s->name, 0) != 0 && errno != ENOENT)
			return SR_EIO;
		if (fsync(w->dirfd) != 0)
			return SR_EIO;
	}
	while (w->n_segs && w->segs[w->n_segs - 1].seq >= from) {
		close(w->segs[w->n_segs - 1].fd);
		w->n_segs--;
	}
	return 0;
}

static int repair(struct scan *s, const struct list *l)
{
	uint64_t from = s->stop_off ? s->stop_seq + 1 : s->stop_seq;
	int rv;

	wal_io_seg_name(s->name, sizeof(s->name), s->stop_seq);
	wal_io_logf(s->w, SR_LOG_WARN,
		    "wal: REPAIR: truncating the log of %s at %s offset "
		    "%llu; entries after %llu are dropped, acknowledged ones "
		    "included%s",
		    s->w->dir, s->name, (unsigned long long)s->stop_off,
		    (unsigned long long)s->w->g0.last,
		    s->w->repair == SR_WAL_REPAIR_PEERS ? " (to be fetched "
							  "again from the "
							  "leader)"
							: "");
	if ((rv = drop_from(s, l, from)))
		return rv;
	if (s->stop_off) { /* cut inside the segment; zero the rest */
		s->end = s->stop_off;
		s->zero_to = s->w->segs[s->w->n_segs - 1].size;
	}
	/* else the previous segment, intact, is now the last one */
	return 0;
}

/* Queue the records that make a reconciliation durable, then apply. */
static int reset_after_snapshot(struct sr_wal_group *g)
{
	sr_index S = g->snap.index;
	int rv = 0;

	if (g->id) {
		rv = wal_plan_put_marker(g, WAL_REC_RESET, 0);
	} else {
		/* group 0's replay state is exact (the segment headers) */
		if (g->last > S)
			rv = wal_plan_put_marker(g, WAL_REC_TRUNCATE, S + 1);
		if (!rv && S >= g->first)
			rv = wal_plan_put_marker(g, WAL_REC_COMPACT, S);
	}
	if (rv)
		return rv;
	apply_reset(g);
	return 0;
}

static int reconcile(struct scan *s, struct sr_wal_group *g)
{
	sr_wal *w = s->w;
	sr_index S = g->snap.index;
	char label[32];
	sr_term t;
	int rv;

	glabel(g, label, sizeof(label));
	if (g->known > g->first && g->last >= g->first)
		return corrupt(s, w->n_segs ? w->segs[0].seq : 0, 0, 1,
			       "entries %llu..%llu%s are missing: a segment "
			       "before this one was lost",
			       (unsigned long long)g->first,
			       (unsigned long long)g->known - 1, label);
	if (g->first > S + 1)
		return corrupt(s, w->n_segs ? w->segs[0].seq : 0, 0, 1,
			       "the log%s starts at %llu but the snapshot "
			       "ends at %llu (snapshot file lost?)",
			       label, (unsigned long long)g->first,
			       (unsigned long long)S);
	if (!S || (g->first == S + 1 && g->last >= S))
		return 0;
	if (g->first <= S && S <= g->last) {
		if ((rv = wal_read_term(g, S, &t)))
			return rv;
		if (t == g->snap.term)
			return 0;
		wal_io_logf(w, SR_LOG_WARN,
			    "wal: entry %llu%s has term %llu but the snapshot "
			    "there has term %llu: dropping the log after it "
			    "(Raft §7)",
			    (unsigned long long)S, label, (unsigned long long)t,
			    (unsigned long long)g->snap.term);
	}
	return reset_after_snapshot(g);
}

/*
 * A group whose log cannot be kept at all (entries missing at its
 * start): with protocol-aware repair its whole log is lost, the rest of
 * the WAL is kept; a RESET record restarts it after its snapshot.
 */
static int group_restart(struct sr_wal_group *g)
{
	int rv = wal_lost_note(g, g->last);

	if (!rv)
		rv = wal_plan_put_marker(g, WAL_REC_RESET, 0);
	if (!rv)
		apply_reset(g);
	return rv;
}

/* A group met in the log without a meta file: finish its drop (a DROP
 * record, unless its records already end with one, or with the RESET
 * that dropped a group before format version 3, which had no hard-state
 * records to forget). */
static int ghost_finish(sr_wal *w, struct sr_wal_group *g)
{
	int rv = 0;

	if (!g->drop_last && !(g->reset_last && !g->hs_seg)) {
		wal_io_logf(w, SR_LOG_INFO,
			    "wal: group %u has records but no meta file: a "
			    "crash interrupted its drop; finishing it",
			    g->id);
		rv = wal_plan_put_marker(g, WAL_REC_DROP, 0);
	}
	wal_group_remove(w, g);
	return rv;
}

/* Every group other than 0 after the replay. */
static int groups_settle(struct scan *s)
{
	sr_wal *w = s->w;
	struct sr_wal_group *g;
	int rv;

	for (size_t i = 0; i < w->gtab_cap;) {
		g = w->gtab[i];
		if (g && !g->has_meta) {
			/* removing shifts a later group into slot i, or one
			 * from the start of the table (seen again: harmless,
			 * only ghosts are handled here) */
			if ((rv = ghost_finish(w, g)))
				return rv;
			continue;
		}
		i++;
	}
	for (size_t i = 0; i < w->gtab_cap; i++) {
		if (!(g = w->gtab[i]))
			continue;
		if (!g->seen)
			apply_reset(g); /* no record: its snapshot says all */
		rv = reconcile(s, g);
		if (rv == SCAN_REPAIR)
			rv = group_restart(g);
		if (rv)
			return rv;
	}
	return 0;
}

/* Set the log view and the planner from the replay. */
static int finish(struct scan *s)
{
	sr_wal *w = s->w;
	struct sr_wal_group *g0 = &w->g0;
	int rv;

	if (!g0->seen)
		apply_reset(g0); /* RESET and nothing after */
	if (g0->last < g0->first)
		g0->pos_off = g0->pos_n = 0;
	w->next_batch = s->max_batch + 1;
	if (w->n_segs) {
		struct wal_seg *g = &w->segs[w->n_segs - 1];

		if (s->zero_to > s->end) {
			wal_io_logf(w, SR_LOG_INFO,
				    "wal: cut a torn tail of %llu bytes at "
				    "%s/%016llx.wal offset %llu",
				    (unsigned long long)(s->zero_to - s->end),
				    w->dir, (unsigned long long)g->seq,
				    (unsigned long long)s->end);
			if (wal_io_zero_range(g->fd, s->end, s->zero_to)) {
				wal_io_logf(w, SR_LOG_ERROR,
					    "wal: zeroing a torn tail: %s",
					    strerror(errno));
				return wal_io_error_code(errno);
			}
			w->st_torn = s->zero_to - s->end;
		}
		g->written = s->end;
		w->plan_seg = g->seq;
		/* new records go to a segment of the current version:
		 * after an older one the next record starts a new one */
		w->plan_off = g->version < WAL_SEG_VERSION ? g->size : s->end;
		w->plan_size = g->size;
	} else {
		w->plan_seg = s->max_seq;
		w->plan_off = w->plan_size = 0;
	}
	rv = reconcile(s, g0);
	if (rv == SCAN_REPAIR && w->n_groups)
		rv = group_restart(g0); /* others' records are kept */
	if (rv || (rv = groups_settle(s)))
		return rv;
	return wal_plan_schedule_delete(w);
}

/*
 * Term and vote cannot be repaired (a lost vote could elect two
 * leaders), and since format version 3 those of groups other than 0
 * are records in the log: cutting damage out of a version-3 segment
 * may lose one, so protocol-aware repair refuses when groups exist.
 * Only a cut in a segment known to be older, and the last, is safe.
 */
static int hard_state_at_risk(const struct scan *s, const struct list *l)
{
	const struct wal_seg *seg = NULL;

	if (!s->w->n_groups)
		return 0; /* group 0 keeps its term and vote in "meta" */
	for (size_t i = 0; i < s->w->n_segs; i++)
		if (s->w->segs[i].seq == s->stop_seq)
			seg = &s->w->segs[i];
	return !seg || seg->version >= WAL_SEG_VERSION ||
	       l->v[l->n - 1] != s->stop_seq;
}

static int replay(struct scan *s, const struct list *segs)
{
	int rv = 0;

	for (size_t i = 0; i < segs->n && !rv; i++) {
		if (i && segs->v[i] != segs->v[i - 1] + 1) {
			rv = corrupt(s, segs->v[i - 1] + 1, 0, 1,
				     "segment missing (found %016llx.wal "
				     "after %016llx.wal)",
				     (unsigned long long)segs->v[i],
				     (unsigned long long)segs->v[i - 1]);
			break;
		}
		rv = scan_segment(s, segs->v[i], i + 1 == segs->n);
	}
	if (rv == SCAN_REPAIR && s->w->repair == SR_WAL_REPAIR_PEERS &&
	    hard_state_at_risk(s, segs)) {
		wal_io_logf(s->w, SR_LOG_ERROR,
			    "wal: refusing to open %s: the damaged part of "
			    "the log may hold the term and vote of groups, "
			    "which cannot be repaired (a lost vote could "
			    "elect two leaders); SR_WAL_REPAIR_TRUNCATE cuts "
			    "it anyway",
			    s->w->dir);
		rv = SR_ECORRUPT;
	}
	if (rv == SCAN_REPAIR && !(rv = survey(s, segs)))
		rv = repair(s, segs);
	return rv;
}

/* Group 0 only, its log beyond saving: drop every segment. */
static int drop_whole_log(struct scan *s, const struct list *segs)
{
	sr_wal *w = s->w;
	int rv;

	s->stop_seq = 1;
	s->stop_off = 0;
	if ((rv = wal_lost_note(&w->g0, w->g0.last)) ||
	    (rv = drop_from(s, segs, 0)))
		return rv;
	apply_reset(&w->g0);
	w->plan_seg = s->max_seq;
	w->plan_off = w->plan_size = 0;
	return 0;
}

static int settle_all_lost(sr_wal *w)
{
	int rv = lost_settle(&w->g0);

	for (size_t i = 0; i < w->gtab_cap && !rv; i++)
		if (w->gtab[i])
			rv = lost_settle(w->gtab[i]);
	return rv;
}

int wal_recover(sr_wal *w)
{
	struct list segs = { 0 }, snaps = { 0 };
	struct glist gl = { 0 };
	struct scan s;
	int rv;

	memset(&s, 0, sizeof(s));
	s.w = w;
	s.rd.w = w;
	if ((rv = list_dir(w, &segs, &snaps, &gl)) ||
	    (rv = wal_io_meta_load(w, segs.n || snaps.n || gl.n)) ||
	    (rv = lost_load(&w->g0)) ||
	    (rv = wal_snap_load(&w->g0, snaps.v, snaps.n)) ||
	    (rv = groups_load(w, &gl)))
		goto out;
	s.max_seq = segs.n ? segs.v[segs.n - 1] : 0;
	if (!segs.n)
		apply_reset(&w->g0);
	rv = replay(&s, &segs);
	if (!rv) {
		rv = finish(&s);
		if (rv == SCAN_REPAIR) /* the log cannot be kept at all */
			rv = drop_whole_log(&s, &segs);
	}
	if (!rv)
		rv = settle_all_lost(w);
	if (!rv && w->n_groups)
		wal_io_logf(w, SR_LOG_INFO, "wal: %s: %zu groups besides 0",
			    w->dir, w->n_groups);
out:
	wal_mem_free(w, s.rd.buf);
	wal_mem_free(w, segs.v);
	wal_mem_free(w, snaps.v);
	wal_mem_free(w, gl.v);
	return rv;
}

/*
 * wal_log.c — the log operations of the storage vtable: append, truncate,
 * compact, read, load and set_hard_state, and the planner that decides
 * where each record goes.
 *
 * Records are serialized here unsealed (CRC field zero): the I/O engine
 * seals them (wal_format.c, wal_fmt_seal) just before they are written,
 * the posix writer while the host is still appending to the batch, so
 * the checksum costs the host's thread nothing.
 *
 * The planner.  Records are laid out on the engine thread, at append
 * time: the next record goes to segment plan_seg at offset plan_off, in
 * the OPEN batch at the tail of the queue; when it does not fit, the OPEN
 * batch is closed and a new segment is planned (its header records the
 * log's first index and next index at that point, which is exactly the
 * replay state there, and the number of its first batch).  So every
 * record's place, and so every entry's position pos[], is known before
 * the record is written, and read() can find an entry whether it is still
 * in a buffer or already in a file.
 *
 * The log view.  first..last and pos[] change the moment an operation is
 * called (read() and load() see every operation at once); the records
 * that make the change durable follow in the stream, in call order.
 * truncate() and compact() write a TRUNCATE or COMPACT record instead of
 * rewriting files: a crash keeps a prefix of the stream, so it keeps the
 * marker only with everything before it, and an append that follows a
 * truncate can never be durable without it (the ordering contract of
 * raft.h).  Segments are deleted only behind a durable COMPACT record
 * and a durable snapshot that covers their entries.
 *
 * Memory.  Reservations (pos[], the OPEN batch's buffer, the token
 * array) are made before anything changes, so SR_ENOMEM leaves the WAL
 * as it was; only an allocation failure in the middle of a multi-segment
 * append stops the WAL (SR_ENOMEM), and then nothing of that batch is
 * ever written.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "wal_int.h"

#define WAL_WINDOW (256u * 1024u)

/* ------------------------------------------------------------------ */
/* pos[]: where each entry of first..last is                          */
/* ------------------------------------------------------------------ */

/* pos[] starts small and doubles: a process may hold thousands of
 * groups with a few entries each. */
#define POS_MIN	   16

int wal_plan_pos_reserve(struct sr_wal_group *g, size_t n)
{
	size_t need = g->pos_n + n, cap = g->pos_cap;
	uint64_t *p;

	if (g->pos_off + need <= cap)
		return 0;
	if (g->pos_off && need <= cap / 2 + 1) { /* slide down instead */
		memmove(g->pos, g->pos + g->pos_off,
			g->pos_n * sizeof(*g->pos));
		g->pos_off = 0;
		if (need <= cap)
			return 0;
	}
	while (cap < g->pos_off + need)
		cap = cap ? cap * 2 : POS_MIN;
	p = wal_mem_realloc(g->wal, g->pos, cap * sizeof(*p));
	if (!p)
		return SR_ENOMEM;
	g->pos = p;
	g->pos_cap = cap;
	return 0;
}

/* After a compaction: give back what a much smaller log no longer needs
 * (the memory bound of wal.h: a group's index is sized to its log). */
static void pos_shrink(struct sr_wal_group *g)
{
	size_t cap = g->pos_cap;
	uint64_t *p;

	if (cap <= POS_MIN * 4 || g->pos_n > cap / 8)
		return;
	while (cap > POS_MIN && g->pos_n <= cap / 4)
		cap /= 2;
	memmove(g->pos, g->pos + g->pos_off, g->pos_n * sizeof(*g->pos));
	g->pos_off = 0;
	p = wal_mem_realloc(g->wal, g->pos, cap * sizeof(*p));
	if (p) { /* else keep the bigger one */
		g->pos = p;
		g->pos_cap = cap;
	}
}

static uint64_t pos_get(const struct sr_wal_group *g, sr_index i)
{
	return g->pos[g->pos_off + (size_t)(i - g->first)];
}

/* ------------------------------------------------------------------ */
/* The planner                                                        */
/* ------------------------------------------------------------------ */

static struct wal_item *item_new(sr_wal *w)
{
	struct wal_item *it = w->spare;

	if (it) {
		unsigned char *buf = it->buf;
		size_t cap = it->cap;
		struct wal_tok *tokens = it->tokens;
		size_t cap_tokens = it->cap_tokens;

		w->spare = NULL;
		memset(it, 0, sizeof(*it));
		it->buf = buf;
		it->cap = cap;
		it->tokens = tokens;
		it->cap_tokens = cap_tokens;
		return it;
	}
	it = wal_mem_alloc(w, sizeof(*it));
	if (it)
		memset(it, 0, sizeof(*it));
	return it;
}

/* Put a new item at the tail (under mu). */
static void item_link(sr_wal *w, struct wal_item *it)
{
	if (w->tail && w->tail->state == ITEM_OPEN)
		w->tail->state = ITEM_READY;
	if (w->tail)
		w->tail->next = it;
	else
		w->head = it;
	w->tail = it;
	if (!w->exec)
		w->exec = it;
}

static int buf_reserve(sr_wal *w, struct wal_item *it, size_t more)
{
	size_t cap = it->cap;
	unsigned char *p;

	if (it->len + more <= cap)
		return 0;
	while (cap < it->len + more)
		cap = cap ? cap * 2 : 64 * 1024;
	p = wal_mem_realloc(w, it->buf, cap);
	if (!p)
		return SR_ENOMEM;
	it->buf = p;
	it->cap = cap;
	return 0;
}

int wal_queue_seg_add(sr_wal *w, uint64_t seq, uint64_t size)
{
	struct wal_seg *s;

	if (w->n_segs == w->cap_segs) {
		size_t cap = w->cap_segs ? w->cap_segs * 2 : 16;

		s = wal_mem_realloc(w, w->segs, cap * sizeof(*s));
		if (!s)
			return SR_ENOMEM;
		w->segs = s;
		w->cap_segs = cap;
	}
	s = &w->segs[w->n_segs++];
	memset(s, 0, sizeof(*s));
	s->seq = seq;
	s->fd = -1;
	s->state = SEG_PLANNED;
	s->size = size;
	s->version = WAL_SEG_VERSION;
	return 0;
}

/* Plan a new segment for a record of rsize bytes (under mu). */
static int plan_rollover(sr_wal *w, uint64_t rsize, struct wal_item **out)
{
	uint64_t size = w->seg_size, seq = w->plan_seg + 1;
	struct wal_seg_hdr h;
	struct wal_item *it;

	if (WAL_SEG_HDR + rsize > size)
		size = (WAL_SEG_HDR + rsize + 4095) & ~(uint64_t)4095;
	it = item_new(w);
	if (!it)
		return SR_ENOMEM;
	if (buf_reserve(w, it, (size_t)rsize) ||
	    wal_queue_seg_add(w, seq, size)) {
		w->spare = it;
		return SR_ENOMEM;
	}
	h.seq = seq;
	h.first_index = w->g0.first;
	h.start_index = w->g0.last + 1;
	h.first_batch = w->next_batch;
	wal_fmt_seg_hdr_encode(it->hdr, &h);
	it->kind = ITEM_BATCH;
	it->new_seg = 1;
	it->seg_size = size;
	it->seg = seq;
	it->off = WAL_SEG_HDR;
	it->batch = w->next_batch++;
	item_link(w, it);
	w->plan_seg = seq;
	w->plan_off = WAL_SEG_HDR;
	w->plan_size = size;
	*out = it;
	return 0;
}

/* The OPEN batch, created if needed (under mu). */
static int plan_open(sr_wal *w, struct wal_item **out)
{
	struct wal_item *it = w->tail;

	if (it && it->kind == ITEM_BATCH && it->state == ITEM_OPEN) {
		*out = it;
		return 0;
	}
	it = item_new(w);
	if (!it)
		return SR_ENOMEM;
	it->kind = ITEM_BATCH;
	it->seg = w->plan_seg;
	it->off = w->plan_off;
	it->batch = w->next_batch++;
	item_link(w, it);
	*out = it;
	return 0;
}

/*
 * The OPEN batch with room for `bytes` more (under mu).  A batch the
 * writer has pinned cannot grow (its buffer must not move): it is closed
 * and the records go to a new batch.
 */
static int open_with_room(sr_wal *w, size_t bytes, struct wal_item **out)
{
	int rv = plan_open(w, out);

	if (!rv && (*out)->pinned && (*out)->len + bytes > (*out)->cap) {
		(*out)->state = ITEM_READY;
		rv = plan_open(w, out);
	}
	return rv ? rv : buf_reserve(w, *out, bytes);
}

/* The batch a record of rsize bytes goes to, with room for it. */
static int plan_room(sr_wal *w, uint64_t rsize, struct wal_item **out)
{
	if (w->plan_off + rsize > w->plan_size || !w->plan_seg)
		return plan_rollover(w, rsize, out);
	return open_with_room(w, (size_t)rsize, out);
}

/* Serialize one record into the stream (under mu); *pos_out its place. */
static int put_record(sr_wal *w, struct wal_rec *r, uint64_t *pos_out)
{
	uint64_t rsize = wal_rec_size(r->len);
	struct wal_item *it;
	struct wal_seg *s;
	int rv = plan_room(w, rsize, &it);

	if (rv)
		return rv;
	r->batch = it->batch;
	r->batch_off = it->off;
	wal_fmt_rec_encode_unsealed(it->buf + it->len, r);
	it->len += (size_t)rsize;
	*pos_out = w->plan_seg << 32 | w->plan_off;
	w->plan_off += rsize;
	w->pending_bytes += rsize;
	if (r->kind == WAL_REC_ENTRY && r->group == 0) {
		s = wal_queue_seg_find(w, w->plan_seg);
		if (s && s->max_index < r->index)
			s->max_index = r->index;
	}
	return 0;
}

static int token_reserve(sr_wal *w, struct wal_item *it)
{
	size_t cap = it->cap_tokens ? it->cap_tokens * 2 : 64;
	struct wal_tok *t;

	if (it->n_tokens < it->cap_tokens)
		return 0;
	t = wal_mem_realloc(w, it->tokens, cap * sizeof(*t));
	if (!t)
		return SR_ENOMEM;
	it->tokens = t;
	it->cap_tokens = cap;
	return 0;
}

int wal_plan_put_marker(struct sr_wal_group *g, uint32_t kind, sr_index index)
{
	sr_wal *w = g->wal;
	struct wal_rec r = { .kind = kind, .index = index, .group = g->id };
	uint64_t pos;
	int rv;

	pthread_mutex_lock(&w->mu);
	rv = w->failed ? w->failed : put_record(w, &r, &pos);
	pthread_mutex_unlock(&w->mu);
	return rv;
}

/* ------------------------------------------------------------------ */
/* Completions: reap DONE items, wait for room                        */
/* ------------------------------------------------------------------ */

/* Close the OPEN batch so the engine runs it even while plugged. */
static void close_open(sr_wal *w)
{
	pthread_mutex_lock(&w->mu);
	if (w->tail && w->tail->state == ITEM_OPEN)
		w->tail->state = ITEM_READY;
	pthread_mutex_unlock(&w->mu);
	w->eng->kick(w);
}

/* Room for `need` more pending bytes (see Memory in wal.h). */
static int wal_room(sr_wal *w, uint64_t need)
{
	if (w->pending_bytes + need <= w->max_pending)
		return 0; /* the common case: no lock, no reaping */
	wal_queue_reap(w);
	while (w->pending_bytes && w->pending_bytes + need > w->max_pending) {
		int rv = wal_queue_failed(w);

		if (rv)
			return rv;
		if (w->backpressure == SR_WAL_EBUSY)
			return SR_EBUSY;
		close_open(w);
		w->eng->wait(w);
		wal_queue_reap(w);
	}
	return 0;
}

/* New work is queued: start the engine, unless sr_wal_process() will. */
static void wal_kick(sr_wal *w)
{
	if (!w->in_process && !w->held)
		w->eng->kick(w);
}

/* Is batch `batch` or an item before it still to run?  (under mu) */
static int batch_pending(const sr_wal *w, uint64_t batch)
{
	for (const struct wal_item *it = w->head; it; it = it->next) {
		if (it->kind == ITEM_BATCH && it->batch > batch)
			return 0;
		if (it->state != ITEM_DONE)
			return 1;
	}
	return 0;
}

int wal_queue_wait_batch(sr_wal *w, uint64_t batch)
{
	for (;;) {
		int pending, inline_ran = 0;

		pthread_mutex_lock(&w->mu);
		pending = !w->failed && batch_pending(w, batch);
		if (pending && w->tail && w->tail->state == ITEM_OPEN)
			w->tail->state = ITEM_READY;
		pthread_mutex_unlock(&w->mu);
		if (!pending)
			break;
		/* an idle writer: sync here instead of waking it and then
		 * being woken by it (the eventfd still tells the host) */
		if (w->eng->run_inline && (inline_ran = w->eng->run_inline(w)))
			wal_queue_notify(w);
		if (!inline_ran) {
			w->eng->kick(w);
			w->eng->wait(w);
		}
	}
	return wal_queue_failed(w);
}

int wal_queue_drain(sr_wal *w)
{
	for (;;) {
		int idle;

		close_open(w);
		pthread_mutex_lock(&w->mu);
		idle = !w->tail || w->tail->state == ITEM_DONE;
		pthread_mutex_unlock(&w->mu);
		if (idle)
			break;
		w->eng->wait(w);
	}
	return wal_queue_failed(w);
}

/* ------------------------------------------------------------------ */
/* The storage vtable                                                  */
/* ------------------------------------------------------------------ */

static int check_entries(const struct sr_wal_group *g, const sr_entry *e,
			 size_t n, uint64_t *bytes)
{
	uint64_t total = 0;

	if (n && !e)
		return SR_EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (e[i].index != g->last + 1 + i || e[i].index == 0 ||
		    e[i].index > WAL_INDEX_MAX || (e[i].len && !e[i].data))
			return SR_EINVAL;
		if (e[i].len > WAL_REC_MAX_PAYLOAD)
			return SR_ETOOBIG;
		total += wal_rec_size(e[i].len);
	}
	*bytes = total;
	return 0;
}

/* Serialize n entries; on error nothing is queued unless the WAL stops. */
static int append_records(struct sr_wal_group *g, const sr_entry *e, size_t n)
{
	sr_wal *w = g->wal;

	for (size_t i = 0; i < n; i++) {
		struct wal_rec r = { .len = e[i].len,
				     .kind = WAL_REC_ENTRY,
				     .etype = e[i].type,
				     .index = e[i].index,
				     .term = e[i].term,
				     .group = g->id,
				     .data = e[i].data };
		uint64_t pos;
		int rv = put_record(w, &r, &pos);

		if (rv) {
			if (i == 0)
				return rv; /* nothing queued yet */
			/* part of the append is queued: stop the WAL so
			 * that none of it is ever written */
			w->failed = rv;
			snprintf(w->fail_msg, sizeof(w->fail_msg),
				 "wal: out of memory in the middle of an "
				 "append; the WAL is stopped");
			return rv;
		}
		g->pos[g->pos_off + g->pos_n++] = pos;
		g->last++;
	}
	return 0;
}

static int wal_append(void *ctx, uint64_t token, const sr_entry *e, size_t n)
{
	struct sr_wal_group *g = ctx;
	sr_wal *w = g->wal;
	struct wal_item *it = NULL;
	uint64_t bytes;
	int rv = check_entries(g, e, n, &bytes);

	if (!rv)
		rv = wal_room(w, bytes);
	if (rv)
		return rv;
	pthread_mutex_lock(&w->mu);
	if ((rv = w->failed) || (rv = wal_plan_pos_reserve(g, n)))
		goto out;
	/* the common case (no new segment): reserve before changing anything */
	if (!n || (w->plan_seg && w->plan_off + bytes <= w->plan_size)) {
		if ((rv = open_with_room(w, (size_t)bytes, &it)) ||
		    (rv = token_reserve(w, it)))
			goto out;
	}
	if ((rv = append_records(g, e, n)))
		goto out;
	/* the token completes with the batch holding the last record */
	it = w->tail;
	if ((rv = token_reserve(w, it))) {
		w->failed = rv;
		goto out;
	}
	it->tokens[it->n_tokens].g = g;
	it->tokens[it->n_tokens++].token = token;
	w->st_appends++;
out:
	pthread_mutex_unlock(&w->mu);
	if (!rv)
		wal_kick(w);
	return rv;
}

static int wal_truncate(void *ctx, sr_index from)
{
	struct sr_wal_group *g = ctx;
	sr_wal *w = g->wal;
	int rv;

	if (from == 0)
		return SR_EINVAL;
	if ((rv = wal_queue_failed(w)))
		return rv;
	if (from > g->last)
		return 0;
	if (from < g->first)
		from = g->first;
	if ((rv = wal_room(w, WAL_REC_HDR)) ||
	    (rv = wal_plan_put_marker(g, WAL_REC_TRUNCATE, from)))
		return rv;
	g->pos_n = (size_t)(from - g->first);
	g->last = from - 1;
	wal_kick(w);
	return 0;
}

static int wal_compact(void *ctx, sr_index upto)
{
	struct sr_wal_group *g = ctx;
	sr_wal *w = g->wal;
	int rv;

	if ((rv = wal_queue_failed(w)))
		return rv;
	if (upto < g->first)
		return 0;
	if (upto > g->snap.index) {
		wal_io_logf(w, SR_LOG_ERROR,
			    "wal: compact(%llu) of group %u refused: the "
			    "durable snapshot covers only up to %llu",
			    (unsigned long long)upto, g->id,
			    (unsigned long long)g->snap.index);
		return SR_EINVAL;
	}
	if ((rv = wal_room(w, WAL_REC_HDR)) ||
	    (rv = wal_plan_put_marker(g, WAL_REC_COMPACT, upto)))
		return rv;
	if (upto >= g->last) {
		g->pos_off = 0;
		g->pos_n = 0;
		g->last = upto;
	} else {
		g->pos_off += (size_t)(upto + 1 - g->first);
		g->pos_n -= (size_t)(upto + 1 - g->first);
	}
	g->first = upto + 1;
	pos_shrink(g);
	rv = wal_plan_schedule_delete(w);
	wal_kick(w);
	return rv;
}

/*
 * The oldest segment a group other than 0 still needs: the one holding
 * its first entry (a group's entries are in index order in the stream,
 * since an entry is appended after every entry below it that survives).
 * Its other records (truncate, compact) in older segments may go:
 * recovery starts a group at its first record (wal_recover.c).
 */
static uint64_t groups_min_seg(const sr_wal *w)
{
	uint64_t min = UINT64_MAX;

	for (size_t i = 0; i < w->gtab_cap; i++) {
		const struct sr_wal_group *g = w->gtab[i];

		if (g && g->last >= g->first &&
		    (pos_get(g, g->first) >> 32) < min)
			min = pos_get(g, g->first) >> 32;
	}
	return min;
}

/* A HARDSTATE record of g with its current term and vote (under mu). */
static int put_hard_state(struct sr_wal_group *g)
{
	sr_wal *w = g->wal;
	unsigned char vote[WAL_HARDSTATE_LEN];
	struct wal_rec r = { .len = WAL_HARDSTATE_LEN,
			     .kind = WAL_REC_HARDSTATE,
			     .term = g->term,
			     .group = g->id,
			     .data = vote };
	uint64_t pos;
	int rv;

	wal_put64(vote, g->vote);
	if ((rv = put_record(w, &r, &pos)))
		return rv;
	g->hs_seg = pos >> 32;
	w->hs_batch = w->tail->batch;
	return 0;
}

/*
 * Segments up to `upto` are about to be deleted: the groups whose latest
 * HARDSTATE record is in one of them get it again at the end of the log
 * (under mu), in the batch the DELETE is queued after, so a crash finds
 * it whether or not the old segments are gone.
 */
static int relog_hard_states(sr_wal *w, uint64_t upto)
{
	for (size_t i = 0; i < w->gtab_cap; i++) {
		struct sr_wal_group *g = w->gtab[i];
		int rv;

		if (g && g->hs_seg && g->hs_seg <= upto &&
		    (rv = put_hard_state(g)))
			return rv;
	}
	return 0;
}

int wal_plan_schedule_delete(sr_wal *w)
{
	struct wal_item *it = NULL;
	uint64_t upto = 0, need = groups_min_seg(w);
	int rv = 0;

	pthread_mutex_lock(&w->mu);
	for (size_t i = 0; i < w->n_segs; i++) {
		const struct wal_seg *s = &w->segs[i];

		if (s->seq <= w->del_seq)
			continue;
		if (s->seq >= w->plan_seg || s->seq >= need ||
		    s->max_index >= w->g0.first)
			break;
		upto = s->seq;
	}
	if (upto && !w->failed && (rv = relog_hard_states(w, upto))) {
		/* some may be queued: none of them, nor the delete, may run */
		w->failed = rv;
		pthread_mutex_unlock(&w->mu);
		return rv;
	}
	if (upto) {
		it = item_new(w);
		if (it) {
			it->kind = ITEM_DELETE;
			it->seg = upto;
			item_link(w, it);
			w->del_seq = upto;
		}
	}
	pthread_mutex_unlock(&w->mu);
	return upto && !it ? SR_ENOMEM : 0;
}

/* ------------------------------------------------------------------ */
/* read()                                                             */
/* ------------------------------------------------------------------ */

static int win_grow(sr_wal *w, size_t n)
{
	unsigned char *p;

	if (n <= w->win_cap)
		return 0;
	p = wal_mem_realloc(w, w->win, n);
	if (!p)
		return SR_ENOMEM;
	w->win = p;
	w->win_cap = n;
	return 0;
}

/*
 * Copy a record still in a queued buffer into the window (under mu).  Its
 * CRC may not be computed yet, and the writer may be storing it right now:
 * the CRC field is not copied, and the record is trusted (this process
 * wrote it).
 */
static int fetch_queued(sr_wal *w, uint64_t seq, uint64_t off, size_t *len)
{
	for (struct wal_item *it = w->head; it; it = it->next) {
		size_t at, size;

		if (it->kind != ITEM_BATCH || it->seg != seq || off < it->off ||
		    off + WAL_REC_HDR > it->off + it->len)
			continue;
		at = (size_t)(off - it->off);
		size = (size_t)wal_rec_size(wal_get32(it->buf + at + 4));
		if (win_grow(w, size))
			return SR_ENOMEM;
		memset(w->win, 0, 4);
		memcpy(w->win + 4, it->buf + at + 4, size - 4);
		w->win_seg = 0; /* not a file window */
		*len = size;
		return 0;
	}
	return w->failed ? w->failed : SR_EIO;
}

/* Make [off, off + n) of segment seq (fd) readable in the window. */
static int win_fill(sr_wal *w, int fd, uint64_t seq, uint64_t off, size_t n,
		    uint64_t limit)
{
	size_t want = n > WAL_WINDOW ? n : WAL_WINDOW;
	int rv;

	if (w->win_seg == seq && off >= w->win_off &&
	    off + n <= w->win_off + w->win_len)
		return 0;
	if (off + n > limit)
		return SR_ECORRUPT;
	if (want > limit - off)
		want = (size_t)(limit - off);
	if ((rv = win_grow(w, want)))
		return rv;
	w->win_seg = 0;
	if (wal_io_pread_all(fd, w->win, want, off) != 0) {
		char name[32];

		wal_io_seg_name(name, sizeof(name), seq);
		wal_io_logf(w, SR_LOG_ERROR, "wal: reading %s/%s at %llu: %s",
			    w->dir, name, (unsigned long long)off,
			    strerror(errno));
		return SR_EIO;
	}
	w->win_seg = seq;
	w->win_off = off;
	w->win_len = want;
	return 0;
}

/* Fetch and check the record at pos; *r points into the window. */
static int fetch_record(sr_wal *w, uint64_t pos, struct wal_rec *r)
{
	uint64_t seq = pos >> 32, off = pos & 0xffffffffu, size, limit = 0;
	const unsigned char *p;
	const char *why = "record not found";
	struct wal_seg *s;
	size_t qlen = 0;
	int fd = -1, rv = 0;
	char name[32];

	pthread_mutex_lock(&w->mu);
	s = wal_queue_seg_find(w, seq);
	if (s && off + WAL_REC_HDR <= s->written) {
		fd = s->fd;
		limit = s->written;
	} else {
		rv = s ? fetch_queued(w, seq, off, &qlen) : SR_ECORRUPT;
	}
	pthread_mutex_unlock(&w->mu);
	if (rv)
		return rv;
	if (fd >= 0) {
		if ((rv = win_fill(w, fd, seq, off, WAL_REC_HDR, limit)))
			goto bad;
		p = w->win + (off - w->win_off);
		if (wal_fmt_rec_peek(p, off, limit - off, &size, &why) !=
		    WALFMT_OK) {
			rv = SR_ECORRUPT;
			goto bad;
		}
		if ((rv = win_fill(w, fd, seq, off, (size_t)size, limit)))
			goto bad;
		p = w->win + (off - w->win_off);
	} else {
		wal_fmt_rec_fields(w->win, r); /* ours, in memory */
		return 0;
	}
	if (wal_fmt_rec_decode(p, off, size, r, &why) == WALFMT_OK)
		return 0;
	rv = SR_ECORRUPT;
bad:
	if (rv == SR_ECORRUPT) {
		wal_io_seg_name(name, sizeof(name), seq);
		wal_io_logf(w, SR_LOG_ERROR,
			    "wal: corruption in %s/%s at offset %llu: %s",
			    w->dir, name, (unsigned long long)off, why);
	}
	return rv;
}

int wal_read_term(struct sr_wal_group *g, sr_index i, sr_term *term)
{
	struct wal_rec r;
	int rv = fetch_record(g->wal, pos_get(g, i), &r);

	if (!rv &&
	    (r.kind != WAL_REC_ENTRY || r.index != i || r.group != g->id))
		rv = SR_ECORRUPT;
	*term = rv ? 0 : r.term;
	return rv;
}

static int wal_read(void *ctx, sr_index lo, size_t max_n, size_t max_bytes,
		    sr_entry *out, size_t *n_out)
{
	struct sr_wal_group *g = ctx;
	sr_wal *w = g->wal;
	size_t k = 0, used = 0;

	*n_out = 0;
	if (lo < g->first)
		return SR_ECOMPACTED;
	if (lo > g->last)
		return SR_ENOTFOUND;
	for (sr_index i = lo; k < max_n && i <= g->last; i++) {
		struct wal_rec r;
		int rv = fetch_record(w, pos_get(g, i), &r);

		if (!rv && (r.kind != WAL_REC_ENTRY || r.index != i ||
			    r.group != g->id))
			rv = SR_ECORRUPT;
		if (rv)
			return rv;
		if (k && used + r.len > max_bytes)
			break;
		if (used + r.len > w->rbuf_cap) {
			size_t cap = w->rbuf_cap ? w->rbuf_cap : 4096;
			unsigned char *p;

			while (cap < used + r.len)
				cap *= 2;
			p = wal_mem_realloc(w, w->rbuf, cap);
			if (!p)
				return SR_ENOMEM;
			w->rbuf = p;
			w->rbuf_cap = cap;
		}
		if (r.len)
			memcpy(w->rbuf + used, r.data, r.len);
		out[k].index = i;
		out[k].term = r.term;
		out[k].type = r.etype;
		out[k].len = r.len;
		out[k].data = (const void *)(uintptr_t)used; /* fixed below */
		used += r.len;
		k++;
	}
	for (size_t j = 0; j < k; j++)
		out[j].data = out[j].len ? w->rbuf + (uintptr_t)out[j].data
					 : NULL;
	*n_out = k;
	return 0;
}

/* ------------------------------------------------------------------ */
/* load() and set_hard_state()                                        */
/* ------------------------------------------------------------------ */

static int wal_load(void *ctx, sr_durable *out)
{
	struct sr_wal_group *g = ctx;

	memset(out, 0, sizeof(*out));
	out->term = g->term;
	out->vote = g->vote;
	out->first_index = g->first;
	out->last_index = g->last;
	out->snapshot_index = g->snap.index;
	out->snapshot_term = g->snap.term;
	out->snapshot_conf.n = g->snap.n_members;
	if (g->snap.n_members)
		memcpy(out->snapshot_conf.members, g->snap.members,
		       g->snap.n_members * sizeof(sr_member));
	/* protocol-aware repair (wal_recover.c): until an entry past the
	 * range or a snapshot covering it shows a leader verified the log */
	if (g->lost_last && g->last <= g->lost_last &&
	    g->snap.index < g->lost_last) {
		out->lost_first = g->last < g->lost_last ? g->last + 1
							 : g->lost_last;
		out->lost_last = g->lost_last;
		out->lost_term = g->lost_term;
	}
	return 0;
}

/*
 * Group 0 keeps its term and vote in the meta file, replaced atomically
 * (a single-group host pays two fsyncs per change, as always).  The
 * other groups write a HARDSTATE record to the log: durable with its
 * batch, so one fdatasync covers the changes of every group that made
 * one meanwhile.  Without sr_wal_defer_hard_state() the call waits for
 * that batch; with it, the host calls sr_wal_sync_hard_state() before
 * anything that depends on the change leaves the process.
 */
static int wal_set_hard_state(void *ctx, sr_term term, sr_id vote)
{
	struct sr_wal_group *g = ctx;
	sr_wal *w = g->wal;
	sr_term old_term = g->term;
	sr_id old_vote = g->vote;
	int rv = wal_queue_failed(w);

	if (rv)
		return rv;
	if (term == g->term && vote == g->vote)
		return 0;
	if (term > WAL_INDEX_MAX)
		return SR_EINVAL;
	if (g->id == 0) {
		rv = wal_io_meta_write(g, term, vote);
		if (rv) {
			wal_queue_stop(w, rv);
			return rv;
		}
		g->term = term;
		g->vote = vote;
		return 0;
	}
	if ((rv = wal_room(w, WAL_REC_HDR + WAL_HARDSTATE_LEN)))
		return rv;
	g->term = term;
	g->vote = vote;
	pthread_mutex_lock(&w->mu);
	rv = w->failed ? w->failed : put_hard_state(g);
	pthread_mutex_unlock(&w->mu);
	if (rv) {
		g->term = old_term;
		g->vote = old_vote;
		return rv;
	}
	w->hs_pending = 1;
	if (w->hs_defer) {
		wal_kick(w);
		return 0;
	}
	return sr_wal_sync_hard_state(w);
}

void sr_wal_defer_hard_state(sr_wal *w, int on)
{
	if (!on)
		sr_wal_sync_hard_state(w);
	w->hs_defer = on != 0;
}

int sr_wal_hard_state_pending(const sr_wal *w)
{
	return w->hs_pending;
}

int sr_wal_sync_hard_state(sr_wal *w)
{
	int rv;

	if (!w->hs_pending)
		return wal_queue_failed(w);
	rv = wal_queue_wait_batch(w, w->hs_batch);
	if (!rv)
		w->hs_pending = 0;
	return rv;
}

const sr_storage_ops wal_log_ops = {
	.load = wal_load,
	.set_hard_state = wal_set_hard_state,
	.append = wal_append,
	.truncate = wal_truncate,
	.read = wal_read,
	.compact = wal_compact,
	.snapshot_begin = wal_snap_begin,
	.snapshot_write = wal_snap_write,
	.snapshot_finish = wal_snap_finish,
	.snapshot_read = wal_snap_read,
};

const sr_storage_ops *sr_wal_storage_ops(void)
{
	return &wal_log_ops;
}

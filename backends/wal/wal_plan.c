/*
 * wal_plan.c — the planner: where each record goes, decided on the host's
 * thread at the moment it is appended.
 *
 * The next record goes to segment plan_seg at offset plan_off, in the
 * OPEN batch at the tail of the queue; when it does not fit, the OPEN
 * batch is closed and a new segment is planned (its header records the
 * log's first index and next index at that point, which is exactly the
 * replay state there, and the number of its first batch).  So every
 * record's place, and so every entry's position pos[], is known before
 * the record is written, and read() (wal_read.c) can find an entry
 * whether it is still in a buffer or already in a file.
 *
 * Records are serialized here unsealed (CRC field zero): the I/O engine
 * seals them (wal_fmt_seal) just before they are written, the posix
 * writer while the host is still appending to the batch, so the checksum
 * costs the host's thread nothing.
 *
 * Segments are deleted (a DELETE item, wal_plan_schedule_delete) only
 * behind a durable COMPACT record, once no group's first entry and no
 * entry of group 0's log is in them; a group whose latest HARDSTATE
 * record is in one of them gets it again at the end of the log first.
 *
 * It all runs on the host's thread.  What touches the queue runs under
 * mu: the functions marked so expect the caller to hold it, and
 * wal_plan_put_marker and wal_plan_schedule_delete take it; pos[] belongs
 * to the host's thread alone.  The planner sits on wal_queue.c and the
 * encodings, and knows nothing of files.
 */
#include <string.h>

#include "wal_int.h"

/* ------------------------------------------------------------------ */
/* pos[]: where each entry of first..last is                          */
/* ------------------------------------------------------------------ */

/* pos[] starts small and doubles: a process may hold thousands of
 * groups with a few entries each. */
#define POS_MIN 16

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
void wal_plan_pos_shrink(struct sr_wal_group *g)
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

/* ------------------------------------------------------------------ */
/* The planner                                                        */
/* ------------------------------------------------------------------ */

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

/* Plan a new segment for a record of rsize bytes (under mu). */
static int plan_rollover(sr_wal *w, uint64_t rsize, struct wal_item **out)
{
	uint64_t size = w->seg_size, seq = w->plan_seg + 1;
	struct wal_seg_hdr h;
	struct wal_item *it;

	if (WAL_SEG_HDR + rsize > size)
		size = (WAL_SEG_HDR + rsize + 4095) & ~(uint64_t)4095;
	it = wal_queue_item_new(w);
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
	wal_queue_item_link(w, it);
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
	it = wal_queue_item_new(w);
	if (!it)
		return SR_ENOMEM;
	it->kind = ITEM_BATCH;
	it->seg = w->plan_seg;
	it->off = w->plan_off;
	it->batch = w->next_batch++;
	wal_queue_item_link(w, it);
	*out = it;
	return 0;
}

/*
 * The OPEN batch with room for `bytes` more (under mu).  A batch the
 * writer has pinned cannot grow (its buffer must not move): it is closed
 * and the records go to a new batch.
 */
int wal_plan_open_with_room(sr_wal *w, size_t bytes, struct wal_item **out)
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
	return wal_plan_open_with_room(w, (size_t)rsize, out);
}

/* Serialize one record into the stream (under mu); *pos_out its place. */
int wal_plan_put_record(sr_wal *w, struct wal_rec *r, uint64_t *pos_out)
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

int wal_plan_token_reserve(sr_wal *w, struct wal_item *it)
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
	rv = w->failed ? w->failed : wal_plan_put_record(w, &r, &pos);
	pthread_mutex_unlock(&w->mu);
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
		    (wal_entry_pos(g, g->first) >> 32) < min)
			min = wal_entry_pos(g, g->first) >> 32;
	}
	return min;
}

/* A HARDSTATE record of g with its current term and vote (under mu). */
int wal_plan_put_hard_state(struct sr_wal_group *g)
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
	if ((rv = wal_plan_put_record(w, &r, &pos)))
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
		    (rv = wal_plan_put_hard_state(g)))
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
		it = wal_queue_item_new(w);
		if (it) {
			it->kind = ITEM_DELETE;
			it->seg = upto;
			wal_queue_item_link(w, it);
			w->del_seq = upto;
		}
	}
	pthread_mutex_unlock(&w->mu);
	return upto && !it ? SR_ENOMEM : 0;
}

/*
 * wal_queue.c — the state the host's thread shares with the I/O engine:
 * the work queue of items and the segment table, both under `mu`, and
 * the WAL's failure status.  The bottom of the WAL above the encodings:
 * no logging and no file I/O here beyond closing a deleted segment's
 * descriptor and signalling the eventfd (wal_io.c, on top of this, does
 * both).
 *
 * An item's life (wal_int.h has the states): the planner (wal_plan.c)
 * makes it with wal_queue_item_new() and links it at the tail; the engine
 * runs the item at `exec` and finishes it (wal_queue_item_finish: DONE,
 * exec moves on, waiters wake); the host's thread reaps DONE items from
 * the head (wal_queue_reap_locked) and delivers their tokens to the done
 * callbacks in queue order (wal_queue_deliver), then keeps one item as a
 * spare so that the next batch reuses its buffers.
 *
 * Waiting.  wal_queue_drain() and wal_queue_wait_batch() close the OPEN
 * batch and let the engine run until the items they wait for are DONE.
 * They reach the engine only through the struct wal_engine that wal.c
 * installed (w->eng), so this file depends on no engine.
 *
 * Failure.  The first error is kept in w->failed (set by
 * wal_queue_item_finish or wal_queue_stop): the engines then finish every
 * later item with it without I/O, and the storage operations return it.
 */
#include <string.h>
#include <unistd.h>

#include "wal_int.h"

/* ------------------------------------------------------------------ */
/* The segment table (under mu)                                       */
/* ------------------------------------------------------------------ */

struct wal_seg *wal_queue_seg_find(sr_wal *w, uint64_t seq)
{
	uint64_t i;

	if (!w->n_segs || seq < w->segs[0].seq)
		return NULL;
	i = seq - w->segs[0].seq;
	return i < w->n_segs ? &w->segs[i] : NULL;
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

/* The oldest LIVE segment with seq <= upto, or 0: the next one a DELETE
 * item unlinks (takes mu). */
uint64_t wal_queue_seg_to_delete(sr_wal *w, uint64_t upto)
{
	uint64_t seq = 0;

	pthread_mutex_lock(&w->mu);
	for (size_t i = 0; i < w->n_segs && w->segs[i].seq <= upto; i++) {
		if (w->segs[i].state == SEG_LIVE) {
			seq = w->segs[i].seq;
			break;
		}
	}
	pthread_mutex_unlock(&w->mu);
	return seq;
}

/* Segment seq is unlinked and its directory synced (takes mu); the host's
 * thread closes and forgets it when it reaps the DELETE item. */
void wal_queue_seg_deleted(sr_wal *w, uint64_t seq)
{
	struct wal_seg *s;

	pthread_mutex_lock(&w->mu);
	s = wal_queue_seg_find(w, seq);
	if (s)
		s->state = SEG_DELETED;
	w->st_deleted++;
	pthread_mutex_unlock(&w->mu);
}

/* buf[0, to) of batch it is in its file: read() may pread it (under mu). */
void wal_queue_published(sr_wal *w, struct wal_item *it, size_t to)
{
	struct wal_seg *s = wal_queue_seg_find(w, it->seg);

	w->st_bytes += to - it->written;
	it->written = to;
	if (s && s->written < it->off + to)
		s->written = it->off + to;
}

/* ------------------------------------------------------------------ */
/* Items                                                              */
/* ------------------------------------------------------------------ */

void wal_queue_close_tail(sr_wal *w)
{
	if (w->tail && w->tail->state == ITEM_OPEN)
		w->tail->state = ITEM_READY;
}

struct wal_item *wal_queue_item_new(sr_wal *w)
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
void wal_queue_item_link(sr_wal *w, struct wal_item *it)
{
	wal_queue_close_tail(w);
	if (w->tail)
		w->tail->next = it;
	else
		w->head = it;
	w->tail = it;
	if (!w->exec)
		w->exec = it;
}

void wal_queue_item_finish(sr_wal *w, struct wal_item *it, int status)
{
	it->status = status;
	it->state = ITEM_DONE;
	if (status && !w->failed)
		w->failed = status;
	if (w->exec == it)
		w->exec = it->next;
	pthread_cond_broadcast(&w->cv_done);
}

/* ------------------------------------------------------------------ */
/* Failure and notification                                           */
/* ------------------------------------------------------------------ */

int wal_queue_failed(sr_wal *w)
{
	int rv;

	pthread_mutex_lock(&w->mu);
	rv = w->failed;
	pthread_mutex_unlock(&w->mu);
	return rv;
}

void wal_queue_stop(sr_wal *w, int rv)
{
	pthread_mutex_lock(&w->mu);
	if (!w->failed)
		w->failed = rv;
	pthread_mutex_unlock(&w->mu);
}

void wal_queue_notify(sr_wal *w)
{
	uint64_t one = 1;

	(void)!write(w->evfd, &one, sizeof(one));
}

/* ------------------------------------------------------------------ */
/* Reaping and delivering completions (host thread)                   */
/* ------------------------------------------------------------------ */

static void item_free(sr_wal *w, struct wal_item *it)
{
	wal_mem_free(w, it->buf);
	wal_mem_free(w, it->tokens);
	wal_mem_free(w, it);
}

/* A delivered item: kept as the spare (its buffers reused), or freed. */
static void item_release(sr_wal *w, struct wal_item *it)
{
	if (!w->spare) {
		w->spare = it;
		return;
	}
	item_free(w, it);
}

/* Close and forget segments the engine deleted (under mu). */
static void segs_forget_deleted(sr_wal *w)
{
	size_t k = 0;

	while (k < w->n_segs && w->segs[k].state == SEG_DELETED) {
		if (w->segs[k].fd >= 0)
			close(w->segs[k].fd);
		k++;
	}
	if (!k)
		return;
	memmove(w->segs, w->segs + k, (w->n_segs - k) * sizeof(*w->segs));
	w->n_segs -= k;
	if (w->win_seg && w->win_seg < (w->n_segs ? w->segs[0].seq : ~0ull))
		w->win_seg = 0;
}

/* Move the DONE items at the head to the delivery list (under mu). */
void wal_queue_reap_locked(sr_wal *w)
{
	while (w->head && w->head->state == ITEM_DONE) {
		struct wal_item *it = w->head;

		w->head = it->next;
		if (!w->head)
			w->tail = NULL;
		it->next = NULL;
		w->pending_bytes -= it->len;
		if (it->kind == ITEM_DELETE) {
			segs_forget_deleted(w);
			/* a segment that could not be deleted is retried */
			if (w->n_segs && w->segs[0].seq <= w->del_seq)
				w->del_seq = w->segs[0].seq - 1;
		}
		if (w->done_tail)
			w->done_tail->next = it;
		else
			w->done_head = it;
		w->done_tail = it;
	}
}

void wal_queue_reap(sr_wal *w)
{
	pthread_mutex_lock(&w->mu);
	wal_queue_reap_locked(w);
	pthread_mutex_unlock(&w->mu);
}

int wal_queue_deliver(sr_wal *w)
{
	int n = 0;

	while (w->done_head) {
		struct wal_item *it = w->done_head;

		w->done_head = it->next;
		if (!w->done_head)
			w->done_tail = NULL;
		for (size_t i = 0; i < it->n_tokens; i++) {
			struct sr_wal_group *g = it->tokens[i].g;

			if (g && g->done)
				g->done(g->done_ctx, it->tokens[i].token,
					it->status);
			n++;
		}
		item_release(w, it);
	}
	return n;
}

void wal_queue_forget_group(sr_wal *w, struct sr_wal_group *g)
{
	struct wal_item *lists[2];

	pthread_mutex_lock(&w->mu);
	lists[0] = w->head;
	lists[1] = w->done_head;
	for (int l = 0; l < 2; l++)
		for (struct wal_item *it = lists[l]; it; it = it->next)
			for (size_t i = 0; i < it->n_tokens; i++)
				if (it->tokens[i].g == g)
					it->tokens[i].g = NULL;
	pthread_mutex_unlock(&w->mu);
}

/* ------------------------------------------------------------------ */
/* Waiting for the engine                                             */
/* ------------------------------------------------------------------ */

/* Close the OPEN batch so the engine runs it even while plugged. */
void wal_queue_close_open(sr_wal *w)
{
	pthread_mutex_lock(&w->mu);
	wal_queue_close_tail(w);
	pthread_mutex_unlock(&w->mu);
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
		if (pending)
			wal_queue_close_tail(w);
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

		wal_queue_close_open(w);
		pthread_mutex_lock(&w->mu);
		idle = !w->tail || w->tail->state == ITEM_DONE;
		pthread_mutex_unlock(&w->mu);
		if (idle)
			break;
		w->eng->wait(w);
	}
	return wal_queue_failed(w);
}

/* Free every item and close every segment file (sr_wal_close, or a
 * failed open; the engine is stopped). */
void wal_queue_free(sr_wal *w)
{
	struct wal_item *lists[2] = { w->head, w->done_head };

	for (int l = 0; l < 2; l++) {
		while (lists[l]) {
			struct wal_item *it = lists[l];

			lists[l] = it->next;
			item_free(w, it);
		}
	}
	if (w->spare)
		item_free(w, w->spare);
	for (size_t i = 0; i < w->n_segs; i++)
		if (w->segs[i].fd >= 0)
			close(w->segs[i].fd);
	wal_mem_free(w, w->segs);
}

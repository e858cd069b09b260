/*
 * wal_log.c — the storage vtable (wal_log_ops, for group 0 and every other
 * group alike): append, truncate, compact, load and set_hard_state here,
 * read() from wal_read.c and the snapshot operations from wal_snap.c.
 * Where each record goes is the planner's business (wal_plan.c).
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
 * ever written.  Appends wait for room (or get SR_EBUSY) while more than
 * max_pending_bytes are queued.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "wal_int.h"

/* ------------------------------------------------------------------ */
/* Room and kicks                                                     */
/* ------------------------------------------------------------------ */

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
		wal_queue_close_open(w);
		w->eng->wait(w);
		wal_queue_reap(w);
	}
	return 0;
}

/* New work is queued: start the engine, unless sr_wal_process() will. */
static void wal_kick(sr_wal *w)
{
	if (!w->in_process && !__atomic_load_n(&w->held, __ATOMIC_ACQUIRE))
		w->eng->kick(w);
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
		int rv = wal_plan_put_record(w, &r, &pos);

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
		if ((rv = wal_plan_open_with_room(w, (size_t)bytes, &it)) ||
		    (rv = wal_plan_token_reserve(w, it)))
			goto out;
	}
	if ((rv = append_records(g, e, n)))
		goto out;
	/* the token completes with the batch holding the last record */
	it = w->tail;
	if ((rv = wal_plan_token_reserve(w, it))) {
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
	wal_plan_pos_shrink(g);
	rv = wal_plan_schedule_delete(w);
	wal_kick(w);
	return rv;
}

/* ------------------------------------------------------------------ */
/* read()                                                             */
/* ------------------------------------------------------------------ */

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
	rv = w->failed ? w->failed : wal_plan_put_hard_state(g);
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
	.read = wal_read_entries,
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

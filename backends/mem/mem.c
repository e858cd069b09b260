/*
 * mem.c — the in-memory log store (seshat/mem.h): the log, its
 * durability, crashes and the storage vtable.  Snapshot storage is in
 * mem_snap.c; the structures both share are in mem_int.h.
 *
 * What it owns.  Two images of one log and the operations between them:
 *
 *   vis   the log as read() and load() see it: every append, truncate and
 *         compact applied the moment it is called;
 *   dur   the log a power cut would leave: only operations covered by a
 *         completion reported with status 0;
 *   ops   the operations issued but not yet durable, oldest first (a FIFO:
 *         durability is prefix-closed, as on a real log device);
 *   rep   the appends whose completion has not been delivered, in issue
 *         order.  An entry of rep may already be durable (a later
 *         completion covered it); delivery order is the host's choice.
 *
 * In SR_MEM_SYNC mode everything is durable at once: ops and rep stay
 * empty and dur is not kept (vis is the durable image).
 *
 * Entry data.  An append copies the data of all its entries into one
 * reference-counted block; vis, dur and a pending op each hold a
 * reference per entry, so an entry present in both images costs one copy
 * of its bytes.  The hot path (a synchronous append) allocates one block
 * and, now and then, grows the entry array.
 *
 * Invariants: vis and dur are each a contiguous range [first, first+n);
 * applying ops in order to dur gives vis; every op's seq is larger than the
 * previous one's; a block is freed when its last reference goes.
 *
 * Failure modes.  An allocation failure leaves the store unchanged and
 * returns SR_ENOMEM.  A completion reported with an error makes the store
 * "failed": that append and everything after it never become durable and
 * every later completion reports the same error, as a WAL after a failed
 * fsync must (it cannot know what reached the disk).  A crash clears it.
 */
#include "mem_int.h"

/* ------------------------------------------------------------------ */
/* One image of the log                                                */
/* ------------------------------------------------------------------ */

static sr_index log_last(const struct log_ring *l)
{
	return log_ring_last(l);
}

/* Append n entries (room reserved); each stored entry takes a reference. */
static void log_push(struct log_ring *l, const struct log_slot *src, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (src[i].buf)
			src[i].buf->refs++;
		log_ring_push(l, &src[i]);
	}
}

static void log_truncate(sr_mem *m, struct log_ring *l, sr_index from)
{
	/* compacted entries (below first) live in the snapshot */
	log_ring_truncate(l, m->alloc, from);
}

static void log_compact(sr_mem *m, struct log_ring *l, sr_index upto)
{
	log_ring_drop_front(l, m->alloc, upto + 1);
	if (l->first <= upto) /* the snapshot reaches past the log */
		l->first = upto + 1;
}

/* dst := src, sharing the blocks; on ENOMEM dst is unchanged. */
static int log_copy(sr_mem *m, struct log_ring *dst, const struct log_ring *src)
{
	int rv = log_ring_reserve(
		dst, m->alloc,
		src->count > dst->count ? src->count - dst->count : 0);

	if (rv)
		return rv;
	log_ring_truncate(dst, m->alloc, dst->first);
	dst->first = src->first;
	for (size_t i = 0; i < src->count; i++)
		log_push(dst, log_ring_at(src, src->first + i), 1);
	return 0;
}

/* The image a crash keeps: vis itself when every write is durable. */
static const struct log_ring *mem_durable(const sr_mem *m)
{
	return m->mode == SR_MEM_SYNC ? &m->vis : &m->dur;
}

/* ------------------------------------------------------------------ */
/* Pending operations and completions                                  */
/* ------------------------------------------------------------------ */

static int ops_reserve(sr_mem *m)
{
	if (m->ops_off && m->ops_off + m->ops_n == m->ops_cap) {
		memmove(m->ops, m->ops + m->ops_off,
			m->ops_n * sizeof(*m->ops));
		m->ops_off = 0;
	}
	return mem_grow(m, (void **)&m->ops, &m->ops_cap,
			m->ops_off + m->ops_n + 1, sizeof(*m->ops));
}

static void op_release(sr_mem *m, struct mem_op *op)
{
	for (size_t i = 0; i < op->n; i++)
		mem_unref(m, op->ents[i].buf);
	mem_free(m, op->ents);
	op->ents = NULL;
	op->n = 0;
}

/*
 * Apply op to the durable image, keeping only `keep` entries of an append
 * (a torn write).  dur has the room: it never outgrows vis by much, and
 * a failed reserve here would only mean a later crash keeps less.
 */
static void op_apply_durable(sr_mem *m, const struct mem_op *op, size_t keep)
{
	switch (op->kind) {
	case OP_APPEND:
		if (keep > op->n)
			keep = op->n;
		if (log_last(&m->dur) + 1 != op->arg)
			log_truncate(m, &m->dur, op->arg);
		if (!m->dur.count)
			m->dur.first = op->arg;
		if (keep && log_ring_reserve(&m->dur, m->alloc, keep) == 0)
			log_push(&m->dur, op->ents, keep);
		break;
	case OP_TRUNCATE:
		log_truncate(m, &m->dur, op->arg);
		break;
	case OP_COMPACT:
		log_compact(m, &m->dur, op->arg);
		break;
	}
}

/* Every op with seq <= upto becomes durable. */
static void mem_make_durable(sr_mem *m, uint64_t upto)
{
	while (m->ops_n) {
		struct mem_op *op = &m->ops[m->ops_off];

		if (op->seq > upto || (m->failed && op->seq >= m->fail_seq))
			break;
		op_apply_durable(m, op, op->n);
		op_release(m, op);
		m->ops_off++;
		m->ops_n--;
	}
	if (!m->ops_n)
		m->ops_off = 0;
}

/* Queue an op (room reserved by ops_reserve). */
static void ops_push(sr_mem *m, int kind, sr_index arg, struct log_slot *ents,
		     size_t n)
{
	struct mem_op *op = &m->ops[m->ops_off + m->ops_n++];

	op->kind = kind;
	op->seq = m->next_seq++;
	op->arg = arg;
	op->ents = ents;
	op->n = n;
}

SR_API size_t sr_mem_pending(const sr_mem *m)
{
	return m->rep_n;
}

SR_API int sr_mem_complete(sr_mem *m, size_t i, int status)
{
	struct mem_report r;

	if (i >= m->rep_n)
		return SR_ENOTFOUND;
	if (status > 0)
		return SR_EINVAL;
	r = m->rep[i];
	memmove(m->rep + i, m->rep + i + 1, (m->rep_n - i - 1) * sizeof(r));
	m->rep_n--;
	if (m->failed) {
		status = m->failed;
	} else if (status < 0) {
		m->failed = status;
		m->fail_seq = r.seq;
	} else {
		mem_make_durable(m, r.seq);
	}
	/* last: the callee may append, which changes rep and ops */
	if (m->done)
		m->done(m->done_ctx, r.token, status);
	return 0;
}

SR_API size_t sr_mem_flush(sr_mem *m, size_t max)
{
	size_t k = 0;

	while (k < max && m->rep_n) {
		sr_mem_complete(m, 0, 0);
		k++;
	}
	if (!m->rep_n && !m->failed)
		mem_make_durable(m, UINT64_MAX);
	return k;
}

/* ------------------------------------------------------------------ */
/* The storage vtable                                                  */
/* ------------------------------------------------------------------ */

static int mem_take_injected(sr_mem *m, int op)
{
	int err = m->inject[op];

	m->inject[op] = 0;
	return err;
}

static int mem_load(void *ctx, sr_durable *out)
{
	sr_mem *m = ctx;

	memset(out, 0, sizeof(*out));
	out->term = m->term;
	out->vote = m->vote;
	out->first_index = m->vis.first;
	out->last_index = log_last(&m->vis);
	if (m->snap.active) {
		out->snapshot_index = m->snap.index;
		out->snapshot_term = m->snap.term;
		out->snapshot_conf = m->snap.conf;
	}
	return 0;
}

static int mem_set_hard_state(void *ctx, sr_term term, sr_id vote)
{
	sr_mem *m = ctx;
	int err = mem_take_injected(m, SR_MEM_FAIL_HARD_STATE);

	if (err)
		return err;
	m->term = term;
	m->vote = vote;
	m->n_hard_states++;
	return 0;
}

/*
 * Copy the entries' data into one block (NULL when they carry no bytes).
 * The block starts with no reference: whoever stores a slot takes one.
 */
static int mem_copy_data(sr_mem *m, const sr_entry *entries, size_t n,
			 struct log_buf **blk_out)
{
	size_t total = 0, pos = 0;
	struct log_buf *blk = NULL;

	for (size_t i = 0; i < n; i++) {
		if (entries[i].len && !entries[i].data)
			return SR_EINVAL;
		total += entries[i].len;
	}
	if (total) {
		blk = log_buf_new(m->alloc, total, 0);
		if (!blk)
			return SR_ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		if (entries[i].len)
			memcpy(blk->data + pos, entries[i].data,
			       entries[i].len);
		pos += entries[i].len;
	}
	*blk_out = blk;
	return 0;
}

/* The slot of entry e, whose bytes sit at *pos in blk (advanced). */
static struct log_slot mem_slot(const sr_entry *e, struct log_buf *blk,
				size_t *pos)
{
	struct log_slot s;

	s.term = e->term;
	s.type = e->type;
	s.len = e->len;
	s.buf = e->len ? blk : NULL;
	s.data = e->len ? blk->data + *pos : NULL;
	*pos += e->len;
	return s;
}

/* Copy the entries' data into one block and describe them in ents[]. */
static int mem_make_ents(sr_mem *m, const sr_entry *e, size_t n,
			 struct log_slot *ents, struct log_buf **blk_out)
{
	size_t pos = 0;
	int rv = mem_copy_data(m, e, n, blk_out);

	for (size_t i = 0; rv == 0 && i < n; i++)
		ents[i] = mem_slot(&e[i], *blk_out, &pos);
	return rv;
}

static int mem_check_indexes(const sr_mem *m, const sr_entry *e, size_t n)
{
	sr_index next = log_last(&m->vis) + 1;

	for (size_t i = 0; i < n; i++)
		if (e[i].index != next + i)
			return SR_EINVAL;
	return 0;
}

/* Append in SR_MEM_SYNC mode: durable now, completion from inside.  The
 * hot path of every in-memory node: one pass, slots filled in place. */
static int mem_append_sync(sr_mem *m, uint64_t token, const sr_entry *e,
			   size_t n)
{
	struct log_ring *r = &m->vis;
	struct log_buf *blk = NULL;
	size_t total = 0, pos = 0, at, mask;
	uint32_t refs = 0;
	int rv = log_ring_reserve(r, m->alloc, n);

	if (rv)
		return rv;
	for (size_t i = 0; i < n; i++) {
		if (e[i].len && !e[i].data)
			return SR_EINVAL;
		total += e[i].len;
		refs += e[i].len > 0;
	}
	if (total && !(blk = log_buf_new(m->alloc, total, refs)))
		return SR_ENOMEM;
	at = r->head + r->count;
	mask = r->cap - 1;
	for (size_t i = 0; i < n; i++) { /* no call inside: nothing reloads */
		struct log_slot *s = &r->slot[(at + i) & mask];

		s->term = e[i].term;
		s->type = e[i].type;
		s->len = e[i].len;
		s->buf = e[i].len ? blk : NULL;
		s->data = e[i].len ? blk->data + pos : NULL;
		pos += e[i].len;
	}
	for (size_t i = 0, off = 0; i < n; off += e[i].len, i++)
		if (e[i].len)
			memcpy(blk->data + off, e[i].data, e[i].len);
	r->count += n;
	r->bytes += total;
	m->n_appends++;
	if (m->done)
		m->done(m->done_ctx, token, 0);
	return 0;
}

static int mem_append(void *ctx, uint64_t token, const sr_entry *e, size_t n)
{
	sr_mem *m = ctx;
	struct log_slot *ents = NULL;
	struct log_buf *blk = NULL;
	int rv = mem_take_injected(m, SR_MEM_FAIL_APPEND);

	if (rv)
		return rv;
	if (m->failed)
		return m->failed;
	if ((n && !e) || mem_check_indexes(m, e, n))
		return SR_EINVAL;
	if (m->mode == SR_MEM_SYNC)
		return mem_append_sync(m, token, e, n);

	/* reserve everything first, so that a failure changes nothing */
	if ((rv = log_ring_reserve(&m->vis, m->alloc, n)) ||
	    (rv = ops_reserve(m)) ||
	    (rv = mem_grow(m, (void **)&m->rep, &m->rep_cap, m->rep_n + 1,
			   sizeof(*m->rep))))
		return rv;
	if (n) {
		ents = mem_alloc(m, n * sizeof(*ents));
		if (!ents)
			return SR_ENOMEM;
		rv = mem_make_ents(m, e, n, ents, &blk);
		if (rv) {
			mem_free(m, ents);
			return rv;
		}
		for (size_t i = 0; i < n; i++)
			if (ents[i].buf)
				blk->refs++; /* the op's references */
		log_push(&m->vis, ents, n);
	}
	m->rep[m->rep_n].seq = m->next_seq;
	m->rep[m->rep_n].token = token;
	m->rep_n++;
	ops_push(m, OP_APPEND, log_last(&m->vis) + 1 - n, ents, n);
	m->n_appends++;
	return 0;
}

/* A truncate or compact of the visible log: in async mode the durable
 * image follows when the op completes, so queue it (0, or SR_ENOMEM). */
static int ops_queue_async(sr_mem *m, int kind, sr_index arg)
{
	int rv;

	if (m->mode != SR_MEM_ASYNC)
		return 0;
	if ((rv = ops_reserve(m)))
		return rv;
	ops_push(m, kind, arg, NULL, 0);
	return 0;
}

static int mem_truncate(void *ctx, sr_index from)
{
	sr_mem *m = ctx;
	int rv = mem_take_injected(m, SR_MEM_FAIL_TRUNCATE);

	if (rv)
		return rv;
	if (from == 0)
		return SR_EINVAL;
	m->n_truncates++;
	if (from > log_last(&m->vis))
		return 0; /* nothing to delete */
	if ((rv = ops_queue_async(m, OP_TRUNCATE, from)))
		return rv;
	log_truncate(m, &m->vis, from);
	return 0;
}

static int mem_compact(void *ctx, sr_index upto)
{
	sr_mem *m = ctx;
	int rv;

	m->n_compacts++;
	if (upto < m->vis.first)
		return 0;
	if ((rv = ops_queue_async(m, OP_COMPACT, upto)))
		return rv;
	log_compact(m, &m->vis, upto);
	return 0;
}

static int mem_read(void *ctx, sr_index lo, size_t max_n, size_t max_bytes,
		    sr_entry *out, size_t *n_out)
{
	sr_mem *m = ctx;
	size_t k = 0, bytes = 0;
	int rv = mem_take_injected(m, SR_MEM_FAIL_READ);

	*n_out = 0;
	if (rv)
		return rv;
	if (lo < m->vis.first)
		return SR_ECOMPACTED;
	if (lo > log_last(&m->vis) || !m->vis.count)
		return SR_ENOTFOUND;
	for (sr_index i = lo; k < max_n && i <= log_last(&m->vis); i++) {
		const struct log_slot *me = log_ring_at(&m->vis, i);

		if (k && bytes + me->len > max_bytes)
			break;
		log_slot_entry(me, i, &out[k]);
		bytes += me->len;
		k++;
	}
	*n_out = k;
	return 0;
}

static const sr_storage_ops mem_ops = {
	.load = mem_load,
	.set_hard_state = mem_set_hard_state,
	.append = mem_append,
	.truncate = mem_truncate,
	.read = mem_read,
	.compact = mem_compact,
	.snapshot_begin = mem_snap_begin,
	.snapshot_write = mem_snap_write,
	.snapshot_finish = mem_snap_finish,
	.snapshot_read = mem_snap_read,
};

SR_API const sr_storage_ops *sr_mem_ops(void)
{
	return &mem_ops;
}

/* ------------------------------------------------------------------ */
/* Life cycle, crash, inspection                                       */
/* ------------------------------------------------------------------ */

SR_API int sr_mem_create(const sr_mem_config *cfg, sr_mem **out)
{
	sr_mem tmp, *m;

	*out = NULL;
	if (!cfg || (cfg->mode != SR_MEM_SYNC && cfg->mode != SR_MEM_ASYNC))
		return SR_EINVAL;
	memset(&tmp, 0, sizeof(tmp));
	tmp.alloc = cfg->alloc;
	m = mem_alloc(&tmp, sizeof(*m));
	if (!m)
		return SR_ENOMEM;
	*m = tmp;
	m->mode = cfg->mode;
	m->done = cfg->done;
	m->done_ctx = cfg->done_ctx;
	m->vis.first = 1;
	m->dur.first = 1;
	m->next_seq = 1;
	*out = m;
	return 0;
}

static void mem_drop_ops(sr_mem *m)
{
	for (size_t i = 0; i < m->ops_n; i++)
		op_release(m, &m->ops[m->ops_off + i]);
	m->ops_off = m->ops_n = 0;
	m->rep_n = 0;
}

SR_API void sr_mem_destroy(sr_mem *m)
{
	if (!m)
		return;
	mem_drop_ops(m);
	mem_free(m, m->ops);
	mem_free(m, m->rep);
	log_ring_free(&m->vis, m->alloc);
	log_ring_free(&m->dur, m->alloc);
	mem_snap_clear(m, &m->snap);
	mem_snap_clear(m, &m->part);
	mem_free(m, m);
}

SR_API void sr_mem_set_done(sr_mem *m, sr_mem_done_fn done, void *ctx)
{
	m->done = done;
	m->done_ctx = ctx;
}

/*
 * Walk the non-durable ops in order: each is kept (1/2), dropped with all
 * that follow (1/4), or — an append of several entries — torn (1/4): a
 * prefix of its entries reaches the disk and nothing after it does.
 */
SR_API void sr_mem_crash(sr_mem *m, sr_mem_rand_fn rnd, void *rctx)
{
	if (m->mode == SR_MEM_ASYNC) {
		for (size_t i = 0; rnd && i < m->ops_n; i++) {
			const struct mem_op *op = &m->ops[m->ops_off + i];
			uint64_t r = rnd(rctx);

			if (m->failed && op->seq >= m->fail_seq)
				break;
			if (r % 4 == 0)
				break;
			if (r % 4 == 1 && op->kind == OP_APPEND && op->n > 1) {
				op_apply_durable(m, op,
						 1 + (r >> 2) % (op->n - 1));
				break;
			}
			op_apply_durable(m, op, op->n);
		}
		mem_drop_ops(m);
		/* on ENOMEM vis keeps its old content: still a valid log */
		log_copy(m, &m->vis, &m->dur);
	}
	m->rep_n = 0;
	m->failed = 0;
	m->fail_seq = 0;
	memset(m->inject, 0, sizeof(m->inject));
	mem_snap_clear(m, &m->part);
}

SR_API int sr_mem_inject(sr_mem *m, int op, int err)
{
	if (op < SR_MEM_FAIL_APPEND || op > SR_MEM_FAIL_READ || err >= 0)
		return SR_EINVAL;
	m->inject[op] = err;
	return 0;
}

SR_API void sr_mem_set_hard_state(sr_mem *m, sr_term term, sr_id vote)
{
	m->term = term;
	m->vote = vote;
}

SR_API int sr_mem_preload(sr_mem *m, const sr_entry *e, size_t n)
{
	struct log_buf *blk = NULL;
	struct log_slot *ents;
	int rv;

	if (m->ops_n || m->rep_n)
		return SR_ESTATE;
	if ((n && !e) || mem_check_indexes(m, e, n))
		return SR_EINVAL;
	if (!n)
		return 0;
	ents = mem_alloc(m, n * sizeof(*ents));
	if (!ents)
		return SR_ENOMEM;
	rv = mem_make_ents(m, e, n, ents, &blk);
	if (rv == 0 && m->mode == SR_MEM_ASYNC)
		rv = log_ring_reserve(&m->dur, m->alloc, n);
	if (rv == 0)
		rv = log_ring_reserve(&m->vis, m->alloc, n);
	if (rv) {
		mem_free(m, blk);
		mem_free(m, ents);
		return rv;
	}
	if (blk)
		blk->refs++; /* hold it while pushing */
	log_push(&m->vis, ents, n);
	if (m->mode == SR_MEM_ASYNC)
		log_push(&m->dur, ents, n);
	mem_unref(m, blk);
	mem_free(m, ents);
	return 0;
}

SR_API void sr_mem_get_info(const sr_mem *m, sr_mem_info *out)
{
	const struct log_ring *d = mem_durable(m);

	memset(out, 0, sizeof(*out));
	out->term = m->term;
	out->vote = m->vote;
	out->first_index = m->vis.first;
	out->last_index = log_last(&m->vis);
	out->durable_first = d->first;
	out->durable_last = log_last(d);
	if (m->snap.active) {
		out->snapshot_index = m->snap.index;
		out->snapshot_term = m->snap.term;
		out->snapshot_size = m->snap.size;
	}
	out->pending = m->rep_n;
	out->pending_ops = m->ops_n;
	out->failed = m->failed;
	out->n_appends = m->n_appends;
	out->n_truncates = m->n_truncates;
	out->n_compacts = m->n_compacts;
	out->n_hard_states = m->n_hard_states;
}

SR_API int sr_mem_entry(const sr_mem *m, sr_index index, int durable,
			sr_entry *out)
{
	const struct log_ring *l = durable ? mem_durable(m) : &m->vis;
	const struct log_slot *me = log_ring_get(l, index);

	if (!me)
		return index < l->first ? SR_ECOMPACTED : SR_ENOTFOUND;
	log_slot_entry(me, index, out);
	return 0;
}

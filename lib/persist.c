/*
 * persist.c — the engine's side of the log store.
 *
 * Appends are asynchronous: each gets a token (a sequence number) and an
 * entry in a FIFO of operations in flight.  Completions may arrive in any
 * order, from inside append() or later; the durable index advances only
 * over a prefix of completed operations, so it never skips a hole.
 *
 * A truncation clamps the durable index and every operation in flight to
 * the truncation point: a late completion for entries that have since
 * been replaced can never make the replacements look durable.  The store
 * applies operations in call order (see raft.h), so an append that
 * completes after a truncation covers only entries written after it.
 *
 * An error from the store stops the node: nothing after a failed write is
 * ever reported durable.  One refusal is not an error: an append refused
 * with SR_EBUSY (a store's backpressure, e.g. the WAL's SR_WAL_EBUSY) was
 * not accepted, so nothing is lost; its entries stay in the log cache as
 * the backlog (n->backlog, the first of them), later entries join it, and
 * every engine call hands the whole backlog to the store again until it
 * is taken.  Meanwhile the leader refuses proposals with SR_EBUSY (the
 * backlog grows only by what followers receive, and the leader's flow
 * control bounds that, since unwritten entries are never acknowledged).
 */
#include <string.h>

#include "node.h"

static int persist_push_op(sr_node *n, sr_index last)
{
	struct pending_op *op;
	if (ring_full(&n->ops_ring)) {
		op = ring_grow(&n->ops_ring, n->ops, sizeof(*op), 64, n->alloc);
		if (!op)
			return SR_ENOMEM;
		n->ops = op;
	}
	op = &n->ops[ring_push(&n->ops_ring)];
	op->last = last;
	op->done = 0;
	op->status = 0;
	return 0;
}

/* Hand entries [lo, lo + count) to the store. */
static int persist_submit(sr_node *n, sr_index lo, size_t count)
{
	uint64_t token = n->ops_first_token + n->ops_ring.count;
	size_t got = 0;
	int rv;

	if (n->scratch_cap < count) {
		sr_entry *s = hook_realloc(n->alloc, n->scratch,
					   count * sizeof(*s));
		if (!s) {
			node_stop(n, SR_ENOMEM, "append");
			return SR_ENOMEM;
		}
		n->scratch = s;
		n->scratch_cap = count;
	}
	/* The entries were just pushed, so they are cached. */
	rv = log_get(&n->log, lo, count, UINT64_MAX, n->scratch, &got);
	if (rv == 0 && got != count)
		rv = SR_ECORRUPT;
	if (rv == 0)
		rv = persist_push_op(n, lo + count - 1);
	if (rv) {
		node_stop(n, rv, "append");
		return rv;
	}
	/* The op is queued first: a synchronous store completes inside. */
	rv = n->cfg.storage->append(n->cfg.storage_ctx, token, n->scratch,
				    count);
	if (rv == SR_EBUSY) {
		ring_unpush(&n->ops_ring);
		if (!n->backlog)
			node_log(n, SR_LOG_WARN,
				 "store busy: entries from %llu wait",
				 (unsigned long long)lo);
		n->backlog = lo;
		return 0;
	}
	if (rv) {
		ring_unpush(&n->ops_ring);
		node_stop(n, rv, "append");
		return rv;
	}
	return 0;
}

/* Entries [lo, lo + count) were just pushed at the end of the log. */
int persist_append(sr_node *n, sr_index lo, size_t count)
{
	if (n->role == SR_STOPPED)
		return SR_ESHUTDOWN;
	if (n->backlog) {
		/* The store must see entries in order: these wait too. */
		persist_retry(n);
		return n->role == SR_STOPPED ? n->stop_error : 0;
	}
	return persist_submit(n, lo, count);
}

void persist_retry(sr_node *n)
{
	sr_index lo = SR_MAX(n->backlog, log_first(&n->log));
	sr_index last = log_last(&n->log);

	if (!n->backlog || n->role == SR_STOPPED)
		return;
	n->backlog = 0;
	if (lo > last)
		return; /* truncated, or covered by a snapshot */
	(void)persist_submit(n, lo, (size_t)(last - lo + 1));
	if (!n->backlog)
		node_log(n, SR_LOG_INFO, "store took entries %llu..%llu",
			 (unsigned long long)lo, (unsigned long long)last);
}

int persist_truncate(sr_node *n, sr_index from)
{
	int rv = 0;
	/* The store holds nothing from the backlog on. */
	if (!n->backlog || from < n->backlog)
		rv = n->cfg.storage->truncate(n->cfg.storage_ctx, from);
	if (rv) {
		node_stop(n, rv, "truncate");
		return rv;
	}
	log_truncate(&n->log, from);
	if (n->durable >= from)
		n->durable = from - 1;
	if (n->verified >= from)
		n->verified = from - 1;
	for (uint32_t i = 0; i < n->ops_ring.count; i++) {
		struct pending_op *op = &n->ops[ring_pos(&n->ops_ring, i)];
		if (op->last >= from)
			op->last = from - 1;
	}
	return 0;
}

void persist_complete(sr_node *n, uint64_t token, int status)
{
	struct pending_op *op;
	if (token < n->ops_first_token ||
	    token >= n->ops_first_token + n->ops_ring.count) {
		node_log(n, SR_LOG_WARN, "completion for unknown token %llu",
			 (unsigned long long)token);
		return;
	}
	op = &n->ops[ring_pos(&n->ops_ring,
			      (uint32_t)(token - n->ops_first_token))];
	if (op->done)
		return;
	op->done = 1;
	op->status = status;
	n->ops_dirty = 1;
}

void persist_process(sr_node *n)
{
	n->ops_dirty = 0;
	while (n->ops_ring.count > 0) {
		struct pending_op *op = &n->ops[ring_first(&n->ops_ring)];
		if (!op->done)
			break;
		if (op->status) {
			node_stop(n, op->status, "storage write");
			return;
		}
		if (op->last > n->durable) {
			n->durable = op->last;
			n->commit_moved = 1; /* the leader counts its own */
		}
		ring_pop(&n->ops_ring);
		n->ops_first_token++;
	}
}

void persist_free(sr_node *n)
{
	hook_free(n->alloc, n->ops);
	n->ops = NULL;
	memset(&n->ops_ring, 0, sizeof(n->ops_ring));
}

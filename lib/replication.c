/*
 * replication.c — the leader's side of log replication (Raft §5.3, §5.4;
 * thesis §10.2.1 for writing to the leader's disk in parallel).
 *
 * Each follower has a progress record in one of two states:
 *
 *   PROBE      the leader does not know where the follower's log matches
 *              its own; it sends one append at a time (from next) and
 *              waits for the answer or the next heartbeat.
 *   REPLICATE  the logs match up to `match`; the leader streams appends
 *              optimistically (next moves ahead as it sends), up to
 *              max_inflight_msgs messages and max_inflight_bytes of entry
 *              data not yet acknowledged.
 *
 * A rejection carries a hint (the follower's last index whose term is at
 * most the conflicting term), so the leader skips a whole term per round
 * trip instead of one entry.  A rejection or acknowledgement that is older
 * than what the leader knows (index at or below match) is ignored: next
 * never moves below match + 1.
 *
 * Commit (§5.4.2): the highest index stored durably on a majority of
 * voters — the leader counts its own durable index, not its last — and
 * only if that entry is of the current term; earlier entries commit with
 * it.  The leader appends a no-op at the start of its term so that this
 * happens without waiting for a client.
 */
#include <string.h>

#include "node.h"

static int repl_infl_full(const sr_node *n, const struct progress *pr)
{
	return pr->infl_ring.count >= n->cfg.max_inflight_msgs ||
	       pr->infl_bytes >= n->cfg.max_inflight_bytes;
}

static void repl_infl_add(sr_node *n, struct progress *pr, sr_index last,
			  uint64_t bytes)
{
	/* Allocated at the first append, at least the size repl_infl_full()
	 * keeps it to, so it never grows after. */
	struct inflight *f;
	if (ring_full(&pr->infl_ring)) {
		f = ring_grow(&pr->infl_ring, pr->infl, sizeof(*f),
			      n->cfg.max_inflight_msgs, n->alloc);
		if (!f)
			return; /* unbounded pipelining is avoided by PROBE */
		pr->infl = f;
	}
	f = &pr->infl[ring_push(&pr->infl_ring)];
	f->last = last;
	f->bytes = bytes;
	pr->infl_bytes += bytes;
}

/* Forget in-flight appends acknowledged up to index. */
static void repl_infl_free_to(struct progress *pr, sr_index index)
{
	struct ring *r = &pr->infl_ring;
	while (r->count > 0 && pr->infl[ring_first(r)].last <= index) {
		pr->infl_bytes -= pr->infl[ring_first(r)].bytes;
		ring_pop(r);
	}
}

static void repl_infl_clear(struct progress *pr)
{
	ring_clear(&pr->infl_ring);
	pr->infl_bytes = 0;
}

static int repl_scratch(sr_node *n, size_t want)
{
	sr_entry *s;
	if (n->scratch_cap >= want)
		return 0;
	s = hook_realloc(n->alloc, n->scratch, want * sizeof(*s));
	if (!s)
		return SR_ENOMEM;
	n->scratch = s;
	n->scratch_cap = want;
	return 0;
}

/* Send one append to pr; returns 1 if entries were sent. */
static int repl_send_one(sr_node *n, struct progress *pr, int heartbeat)
{
	sr_index last = log_last(&n->log);
	sr_index prev = pr->next - 1;
	uint64_t room = n->cfg.max_msg_bytes, bytes = 0;
	size_t count = 0;
	int err;
	sr_msg m;

	if (pr->state == SR_PROGRESS_SNAPSHOT) {
		if (heartbeat)
			snap_send(n, pr); /* the chunk in flight may be lost */
		return 0;
	}
	if (pr->state == SR_PROGRESS_PROBE && pr->probe_sent)
		return 0;
	if (pr->state == SR_PROGRESS_REPLICATE && repl_infl_full(n, pr) &&
	    !heartbeat)
		return 0;
	if (pr->next > last && !heartbeat)
		return 0;
	memset(&m, 0, sizeof(m));
	m.u.append.prev_term = log_term(&n->log, prev, &err);
	if (err == SR_ECOMPACTED || (pr->next < log_first(&n->log) && !err)) {
		/* Compacted away: only a snapshot can catch it up. */
		snap_send(n, pr);
		return 0;
	}
	if (err) {
		node_log(n, SR_LOG_WARN,
			 "cannot replicate to %llu from %llu: %s",
			 (unsigned long long)pr->id,
			 (unsigned long long)pr->next, sr_strerror(err));
		return 0;
	}
	if (pr->next <= last &&
	    !(pr->state == SR_PROGRESS_REPLICATE && repl_infl_full(n, pr))) {
		size_t max_n = n->cfg.max_msg_entries;
		if (pr->state == SR_PROGRESS_REPLICATE &&
		    n->cfg.max_inflight_bytes - pr->infl_bytes < room)
			room = n->cfg.max_inflight_bytes - pr->infl_bytes;
		if (max_n > last - prev)
			max_n = (size_t)(last - prev);
		if (repl_scratch(n, max_n))
			return 0;
		err = log_get(&n->log, pr->next, max_n, room, n->scratch,
			      &count);
		if (err) {
			node_log(n, SR_LOG_WARN, "reading entries for %llu: %s",
				 (unsigned long long)pr->id, sr_strerror(err));
			return 0;
		}
		for (size_t i = 0; i < count; i++)
			bytes += n->scratch[i].len;
	}
	m.type = SR_MSG_APPEND;
	m.to = pr->id;
	m.u.append.prev_index = prev;
	m.u.append.commit = n->commit;
	m.u.append.seq = ++n->hb_seq;
	m.u.append.entries = count ? n->scratch : NULL;
	m.u.append.n_entries = (uint32_t)count;
	node_send(n, &m);
	if (pr->state == SR_PROGRESS_PROBE) {
		pr->probe_sent = 1;
		pr->probe_seq = m.u.append.seq;
	} else if (count) {
		pr->next = prev + count + 1;
		repl_infl_add(n, pr, prev + count, bytes);
	}
	return count > 0;
}

void repl_send_append(sr_node *n, struct progress *pr, int heartbeat)
{
	if (heartbeat && pr->state == SR_PROGRESS_PROBE)
		pr->probe_sent = 0; /* the previous probe may be lost */
	if (!repl_send_one(n, pr, heartbeat))
		return;
	/* Pipeline: keep sending while there is room and data. */
	while (pr->state == SR_PROGRESS_REPLICATE && repl_send_one(n, pr, 0))
		;
}

void repl_broadcast(sr_node *n, int heartbeat)
{
	for (uint32_t i = 0; i < n->n_prs && n->role == SR_LEADER; i++)
		repl_send_append(n, &n->prs[i], heartbeat);
}

void repl_become_leader(sr_node *n)
{
	sr_index index;
	n->role = SR_LEADER;
	n->leader = n->cfg.id;
	n->uncommitted_bytes = 0;
	n->transfer_target = 0;
	n->term_start = log_last(&n->log) + 1;
	n->commit_moved = 1;
	for (uint32_t i = 0; i < n->n_prs; i++) {
		progress_reset(n, &n->prs[i]);
		n->prs[i].last_heard = n->now;
	}
	n->heartbeat_deadline = n->now + n->cfg.heartbeat_ms;
	n->quorum_deadline = n->now + n->cfg.election_timeout_ms;
	node_log(n, SR_LOG_INFO, "became leader");
	node_notify(n);
	/* The no-op of §5.4.2 / §8: lets entries of earlier terms commit. */
	index = log_last(&n->log) + 1;
	if (log_push(&n->log, n->term, SR_ENTRY_NOOP, NULL, NULL, 0)) {
		node_stop(n, SR_ENOMEM, "appending the leader's no-op");
		return;
	}
	if (persist_append(n, index, 1) == 0)
		repl_broadcast(n, 0);
}

/* CheckQuorum (thesis §6.2): step down if a quorum went silent. */
void repl_tick_quorum(sr_node *n)
{
	if (n->now < n->quorum_deadline)
		return;
	n->quorum_deadline = n->now + n->cfg.election_timeout_ms;
	if (n->cfg.check_quorum && !progress_quorum_active(n)) {
		node_log(n, SR_LOG_WARN,
			 "stepping down: no quorum of voters heard from in "
			 "an election timeout");
		role_become_follower(n, n->term, 0);
	}
}

void repl_tick_heartbeat(sr_node *n)
{
	if (n->role == SR_LEADER && n->now >= n->heartbeat_deadline) {
		n->heartbeat_deadline = n->now + n->cfg.heartbeat_ms;
		repl_broadcast(n, 1);
	}
}

/* Largest index <= index whose term is <= term (for fast back-off). */
static sr_index repl_find_hint(sr_node *n, sr_index index, sr_term term)
{
	if (index > log_last(&n->log))
		index = log_last(&n->log);
	while (index > log_snap_index(&n->log)) {
		int err;
		sr_term t = log_term(&n->log, index, &err);
		if (err || t <= term)
			break;
		index--;
	}
	return index;
}

struct progress *repl_handle_append_resp(sr_node *n, const sr_msg *m)
{
	const sr_msg_append_resp *r = &m->u.append_resp;
	struct progress *pr = progress_heard_from(n, m);

	if (!pr)
		return NULL;
	if (r->seq > pr->acked_seq && r->seq <= n->hb_seq)
		pr->acked_seq = r->seq;
	if (pr->state == SR_PROGRESS_SNAPSHOT)
		return NULL; /* snapshot responses drive it */
	if (r->success) {
		sr_index held = SR_MAX(r->index, r->hint_index);
		if (held > log_last(&n->log))
			return NULL; /* claims entries we never sent */
		if (r->index > pr->match) {
			pr->match = r->index;
			n->commit_moved = 1;
			pr->match_seq = r->seq;
			repl_infl_free_to(pr, r->index);
		}
		/* Only the answer to our latest probe (or a later append)
		 * proves the logs match where the probe said: a stale
		 * success under reordering would refill the whole window
		 * from the wrong place. */
		if (pr->state == SR_PROGRESS_PROBE && r->seq >= pr->probe_seq) {
			pr->state = SR_PROGRESS_REPLICATE;
			pr->probe_sent = 0;
			repl_infl_clear(pr);
		}
		if (pr->next < held + 1)
			pr->next = held + 1;
		if (pr->next <= pr->match)
			pr->next = pr->match + 1;
	} else {
		sr_index hint;
		if (r->index <= pr->match && r->seq <= pr->match_seq)
			return NULL; /* stale: we already know more */
		if (r->index <= pr->match) {
			/* Answered after the reply that raised match: the
			 * follower's store lost entries it acknowledged
			 * (repair.c).  Lowering match is always safe (commit
			 * never goes back; the next success raises it). */
			node_log(n, SR_LOG_WARN,
				 "%llu lost entries up to %llu it had "
				 "acknowledged: re-sending from %llu",
				 (unsigned long long)pr->id,
				 (unsigned long long)pr->match,
				 (unsigned long long)r->hint_index + 1);
			pr->match = SR_MIN(r->hint_index, r->index - 1);
			pr->match_seq = r->seq;
		}
		if (pr->state == SR_PROGRESS_PROBE && r->index != pr->next - 1)
			return NULL; /* not the answer to our current probe */
		hint = repl_find_hint(n, r->hint_index, r->hint_term);
		pr->state = SR_PROGRESS_PROBE;
		pr->probe_sent = 0;
		repl_infl_clear(pr);
		pr->next = SR_MAX(pr->match + 1, SR_MIN(hint + 1, r->index));
	}
	repl_send_append(n, pr, 0);
	return pr;
}

void repl_maybe_commit(sr_node *n)
{
	sr_index candidate, old = n->commit;
	int err;

	if (n->role != SR_LEADER || !n->commit_moved)
		return;
	n->commit_moved = 0;
	candidate = progress_quorum_match(n);
	if (candidate <= n->commit)
		return;
	/* Only entries of the current term commit by counting (§5.4.2). */
	if (log_term(&n->log, candidate, &err) != n->term || err)
		return;
	n->commit = candidate;
	for (sr_index i = old + 1; i <= candidate; i++) {
		const struct log_slot *s = log_cached(&n->log, i);
		if (s && s->term == n->term && s->type == SR_ENTRY_NORMAL)
			n->uncommitted_bytes -= SR_MIN(n->uncommitted_bytes,
						       (uint64_t)s->len);
	}
}

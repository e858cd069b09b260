/*
 * snapshot.c — taking snapshots, compacting the log, and InstallSnapshot
 * (Raft §7, thesis §5).
 *
 * Taking: once `snapshot_threshold` entries were applied since the last
 * snapshot (or, with `snapshot_bytes`, entries holding that many bytes:
 * a small-entry workload then snapshots by volume, not by count), the
 * engine opens a snapshot in the store (snapshot_begin at
 * the last applied index) and asks the state machine for its bytes.  The
 * state machine may deliver them later, in pieces, while the engine keeps
 * replicating and applying; sr_node_snapshot_done() makes the snapshot
 * durable (snapshot_finish) and only then compacts the log, keeping
 * `snapshot_trailing` entries behind it for followers that lag a little.
 *
 * Sending: a follower whose next entry was compacted away is switched to
 * the SNAPSHOT state and sent the store's snapshot in chunks of
 * `snapshot_chunk_bytes`, one chunk in flight at a time, each read from
 * the store as it is sent: neither side ever holds the whole snapshot in
 * memory.  A lost chunk is resent on the next heartbeat; a new snapshot
 * taken meanwhile restarts the transfer at offset 0.
 *
 * Receiving: chunks are written to the store at their offset; a chunk at
 * an unexpected offset is answered with the offset expected (duplicates
 * and stale chunks change nothing), and offset 0 of a newer snapshot
 * discards a partial one.  A transfer is one leader's, in one term: its
 * chunks must come from the same sender in the same term, for the same
 * snapshot (two state machines need not write the same bytes for one
 * index, so chunks of two leaders must never be mixed); any other chunk
 * at a non-zero offset is answered "rejected", restarting the sender at
 * offset 0, and a partial transfer whose term is over is dropped.  A
 * partial snapshot whose index the log has
 * reached meanwhile (the follower caught up through appends) is dropped:
 * the transfer is pointless, and the store's snapshot writer it holds is
 * the one local snapshots need.
 *
 * "Installed" is a promise: the leader sets the follower's match to the
 * snapshot's index, and match never goes back within a term (a rejection
 * at or below it is taken as stale).  A follower whose committed entries
 * already cover the snapshot therefore answers so only once those entries
 * are durable (or its own snapshot covers the index); until then it stays
 * silent and answers the chunk the leader resends with its heartbeat.
 * Were it to answer at once, a crash losing the entries would leave the
 * leader waiting on a match the follower no longer has, for good.  Installing never touches the term or the vote,
 * and keeps the log entries that follow the snapshot when the log holds
 * the snapshot's last entry with the same term (Raft §7).
 */
#include <string.h>

#include "node.h"

static int snap_supported(const sr_node *n)
{
	const sr_storage_ops *s = n->cfg.storage;
	return s->snapshot_begin && s->snapshot_write && s->snapshot_finish &&
	       s->snapshot_read && s->compact && n->cfg.fsm->restore;
}

void snap_free(sr_node *n)
{
	if (n->snap_mode != SNAP_IDLE && n->started)
		(void)n->cfg.storage->snapshot_finish(n->cfg.storage_ctx, 0);
	n->snap_mode = SNAP_IDLE;
	hook_free(n->alloc, n->chunk);
	n->chunk = NULL;
}

/* ---- leader: sending ---------------------------------------------- */

void snap_send(sr_node *n, struct progress *pr)
{
	unsigned char conf[CONF_MAX_BYTES];
	size_t got = 0, chunk = n->cfg.snapshot_chunk_bytes;
	int conf_len = 0, rv;
	sr_msg m;

	if (!snap_supported(n) || log_snap_index(&n->log) == 0) {
		node_log(n, SR_LOG_WARN,
			 "follower %llu needs compacted "
			 "entries and there is no snapshot",
			 (unsigned long long)pr->id);
		return;
	}
	if (pr->state != SR_PROGRESS_SNAPSHOT ||
	    pr->snap_index != log_snap_index(&n->log)) {
		pr->state = SR_PROGRESS_SNAPSHOT;
		pr->snap_index = log_snap_index(&n->log);
		pr->snap_offset = 0;
		node_log(n, SR_LOG_INFO, "sending snapshot %llu to %llu",
			 (unsigned long long)pr->snap_index,
			 (unsigned long long)pr->id);
	}
	if (!n->chunk) {
		n->chunk = hook_malloc(n->alloc, chunk);
		if (!n->chunk)
			return;
	}
	rv = n->cfg.storage->snapshot_read(n->cfg.storage_ctx, pr->snap_offset,
					   n->chunk, chunk, &got);
	if (rv) {
		node_log(n, SR_LOG_ERROR, "reading snapshot: %s",
			 sr_strerror(rv));
		return;
	}
	if (pr->snap_offset == 0) {
		conf_len = sr_membership_encode(&n->snap_conf, conf,
						sizeof(conf));
		if (conf_len < 0)
			return;
	}
	memset(&m, 0, sizeof(m));
	m.type = SR_MSG_SNAPSHOT;
	m.to = pr->id;
	m.u.snapshot.last_index = log_snap_index(&n->log);
	m.u.snapshot.last_term = log_snap_term(&n->log);
	m.u.snapshot.offset = pr->snap_offset;
	m.u.snapshot.done = got < chunk;
	m.u.snapshot.conf = conf_len ? conf : NULL;
	m.u.snapshot.conf_len = (uint32_t)conf_len;
	m.u.snapshot.data = got ? n->chunk : NULL;
	m.u.snapshot.len = (uint32_t)got;
	node_send(n, &m);
}

struct progress *snap_handle_resp(sr_node *n, const sr_msg *m)
{
	const sr_msg_snapshot_resp *r = &m->u.snapshot_resp;
	struct progress *pr = progress_heard_from(n, m);

	if (!pr)
		return NULL;
	if (pr->state != SR_PROGRESS_SNAPSHOT ||
	    r->last_index != pr->snap_index)
		return NULL; /* stale */
	if (r->done) {
		node_log(n, SR_LOG_INFO, "snapshot %llu installed on %llu",
			 (unsigned long long)r->last_index,
			 (unsigned long long)pr->id);
		if (pr->match < r->last_index) {
			pr->match = r->last_index;
			n->commit_moved = 1;
			/* rejections of appends sent before now are stale
			 * (repl_handle_append_resp) */
			pr->match_seq = n->hb_seq;
		}
		pr->next = pr->match + 1;
		pr->state = SR_PROGRESS_PROBE;
		pr->probe_sent = 0;
		return pr; /* the caller sends the probe (replication.c) */
	}
	if (r->rejected)
		pr->snap_offset = 0;
	else if (r->offset == pr->snap_offset)
		return NULL; /* duplicate answer; the heartbeat resends */
	else
		pr->snap_offset = r->offset;
	snap_send(n, pr);
	return NULL;
}

/* ---- follower: receiving ------------------------------------------ */

static void snap_reply(sr_node *n, const sr_msg *m, uint64_t offset, int done,
		       int rejected)
{
	sr_msg r;
	memset(&r, 0, sizeof(r));
	r.type = SR_MSG_SNAPSHOT_RESP;
	r.to = m->from;
	r.u.snapshot_resp.last_index = m->u.snapshot.last_index;
	r.u.snapshot_resp.offset = offset;
	r.u.snapshot_resp.done = (uint8_t)done;
	r.u.snapshot_resp.rejected = (uint8_t)rejected;
	node_send(n, &r);
}

int snap_restore(sr_node *n, sr_index index, sr_term term)
{
	int rv = n->cfg.fsm->restore(n->cfg.fsm_ctx, index, term);
	if (rv) {
		node_stop(n, rv, "restoring the state machine from a snapshot");
		return rv;
	}
	n->snap_bytes_mark = n->applied_bytes;
	return 0;
}

/* The received snapshot is complete: make it the node's state. */
static void snap_install(sr_node *n)
{
	sr_index idx = n->recv_index, last = log_last(&n->log);
	sr_term term = n->recv_term;
	int keep, rv;

	rv = n->cfg.storage->snapshot_finish(n->cfg.storage_ctx, 1);
	n->snap_mode = SNAP_IDLE;
	if (rv) {
		node_stop(n, rv, "storing a snapshot");
		return;
	}
	keep = idx <= last && idx >= log_first(&n->log) &&
	       log_term(&n->log, idx, NULL) == term;
	if (!keep && last > idx) {
		if (persist_truncate(n, idx + 1))
			return;
		conf_rollback(n, idx + 1);
	}
	rv = n->cfg.storage->compact(n->cfg.storage_ctx, idx);
	if (rv) {
		node_stop(n, rv, "compacting after a snapshot");
		return;
	}
	if (keep) {
		log_compact(&n->log, idx);
		log_set_snapshot(&n->log, idx, term);
	} else {
		log_reset(&n->log, idx + 1, idx, term);
	}
	n->snap_conf = n->recv_conf;
	conf_snapshot_installed(n, &n->recv_conf, idx);
	if (n->durable < idx)
		n->durable = idx;
	if (n->verified < idx)
		n->verified = idx;
	if (n->commit < idx)
		n->commit = idx;
	node_log(n, SR_LOG_INFO, "installed snapshot %llu (term %llu)",
		 (unsigned long long)idx, (unsigned long long)term);
	if (snap_restore(n, idx, term))
		return;
	n->applied = idx;
	/* Our own proposals at or below idx were applied elsewhere: we
	 * cannot tell which of them made it. */
	apply_fail_through(n, idx, SR_EUNKNOWN);
}

/* Drop a partial incoming snapshot; the store discards what it holds. */
static void snap_recv_abandon(sr_node *n, const char *why)
{
	if (n->snap_mode != SNAP_RECEIVING)
		return;
	(void)n->cfg.storage->snapshot_finish(n->cfg.storage_ctx, 0);
	n->snap_mode = SNAP_IDLE;
	node_log(n, SR_LOG_INFO, "dropping partial snapshot %llu: %s",
		 (unsigned long long)n->recv_index, why);
}

/*
 * A partial incoming snapshot that the log has overtaken (this node
 * committed its index through appends, or took a snapshot of its own at
 * or past it) will never be installed: drop it, or it would keep the
 * store's one snapshot writer, and with it local snapshots, for good.
 */
static void snap_recv_check(sr_node *n)
{
	if (n->snap_mode != SNAP_RECEIVING)
		return;
	if (n->recv_index <= n->commit ||
	    n->recv_index <= log_snap_index(&n->log))
		snap_recv_abandon(n, "the log holds it");
	else if (n->term != n->recv_leader_term)
		snap_recv_abandon(n, "its leader's term is over");
}

/* Is m a chunk of the transfer being received: the same leader, in the
 * same term, sending the same snapshot? */
static int snap_recv_same(const sr_node *n, const sr_msg *m)
{
	const sr_msg_snapshot *s = &m->u.snapshot;
	return n->snap_mode == SNAP_RECEIVING && n->recv_from == m->from &&
	       n->recv_leader_term == m->term &&
	       n->recv_index == s->last_index && n->recv_term == s->last_term;
}

/* Open the store's snapshot writer for a new incoming snapshot. */
static int snap_begin_receive(sr_node *n, const sr_msg *m)
{
	const sr_msg_snapshot *s = &m->u.snapshot;
	sr_membership conf;
	int rv;

	if (sr_membership_decode(&conf, s->conf, s->conf_len))
		return SR_EPROTO;
	if (n->snap_mode != SNAP_IDLE) {
		/* A newer snapshot from the leader supersedes both a partial
		 * transfer and a local snapshot in progress. */
		(void)n->cfg.storage->snapshot_finish(n->cfg.storage_ctx, 0);
		n->snap_mode = SNAP_IDLE;
	}
	rv = n->cfg.storage->snapshot_begin(n->cfg.storage_ctx, s->last_index,
					    s->last_term, &conf);
	if (rv) {
		node_stop(n, rv, "opening a snapshot");
		return rv;
	}
	n->snap_mode = SNAP_RECEIVING;
	n->recv_from = m->from;
	n->recv_leader_term = m->term;
	n->recv_index = s->last_index;
	n->recv_term = s->last_term;
	n->recv_offset = 0;
	n->recv_conf = conf;
	return 0;
}

void snap_handle_chunk(sr_node *n, const sr_msg *m)
{
	const sr_msg_snapshot *s = &m->u.snapshot;
	int rv;

	if (n->role != SR_FOLLOWER || n->leader != m->from)
		role_become_follower(n, n->term, m->from);
	n->leader_heard = n->now;
	role_reset_timer(n);
	snap_recv_check(n);
	if (s->last_index <= log_snap_index(&n->log) ||
	    (s->last_index <= n->commit && s->last_index <= n->durable)) {
		snap_reply(n, m, 0, 1, 0); /* we hold all of it, durably */
		return;
	}
	if (s->last_index <= n->commit)
		return; /* held, not yet durable: answer a resent chunk */
	if (!snap_supported(n) || s->last_term == 0 || s->last_term > n->term ||
	    (s->len && !s->data)) {
		snap_reply(n, m, 0, 0, 1);
		return;
	}
	if (s->offset == 0 && !(snap_recv_same(n, m) && n->recv_offset == 0)) {
		/* A new transfer, unless it is a late chunk of an older
		 * snapshot from the leader whose newer one we are receiving
		 * (a leader's snapshots only grow within its term). */
		if (n->snap_mode == SNAP_RECEIVING && n->recv_from == m->from &&
		    n->recv_leader_term == m->term &&
		    s->last_index < n->recv_index) {
			snap_reply(n, m, 0, 0, 1);
			return;
		}
		if (snap_begin_receive(n, m)) {
			if (n->role != SR_STOPPED)
				snap_reply(n, m, 0, 0, 1);
			return;
		}
	}
	if (!snap_recv_same(n, m)) {
		/* Not the transfer under way (another leader's, say, whose
		 * state machine may not write the same bytes): restart. */
		snap_reply(n, m, 0, 0, 1);
		return;
	}
	if (s->offset != n->recv_offset) {
		snap_reply(n, m, n->recv_offset, 0, 0);
		return;
	}
	if (s->len) {
		rv = n->cfg.storage->snapshot_write(n->cfg.storage_ctx,
						    s->offset, s->data, s->len);
		if (rv) {
			node_stop(n, rv, "writing a snapshot chunk");
			return;
		}
		n->recv_offset += s->len;
	}
	if (!s->done) {
		snap_reply(n, m, n->recv_offset, 0, 0);
		return;
	}
	snap_install(n);
	if (n->role != SR_STOPPED)
		snap_reply(n, m, n->recv_offset, 1, 0);
}

/* ---- taking a snapshot -------------------------------------------- */

static int snap_take(sr_node *n)
{
	sr_index idx = n->applied;
	sr_term term;
	int err, rv;

	if (!snap_supported(n) || !n->cfg.fsm->snapshot)
		return SR_ESTATE;
	if (n->snap_mode != SNAP_IDLE)
		return SR_EBUSY;
	if (idx <= log_snap_index(&n->log))
		return SR_ESTATE;
	term = log_term(&n->log, idx, &err);
	if (err)
		return err;
	n->snap_take_conf = n->conf_applied; /* idx is the applied index */
	rv = n->cfg.storage->snapshot_begin(n->cfg.storage_ctx, idx, term,
					    &n->snap_take_conf);
	if (rv) {
		node_stop(n, rv, "opening a snapshot");
		return rv;
	}
	n->snap_mode = SNAP_TAKING;
	n->snap_bytes_mark = n->applied_bytes;
	n->snap_take_index = idx;
	n->snap_take_term = term;
	n->snap_take_offset = 0;
	node_log(n, SR_LOG_INFO, "taking snapshot at %llu",
		 (unsigned long long)idx);
	rv = n->cfg.fsm->snapshot(n->cfg.fsm_ctx, idx, term);
	if (rv && n->snap_mode == SNAP_TAKING) {
		node_log(n, SR_LOG_WARN, "state machine refused a snapshot: %s",
			 sr_strerror(rv));
		(void)n->cfg.storage->snapshot_finish(n->cfg.storage_ctx, 0);
		n->snap_mode = SNAP_IDLE;
	}
	return rv;
}

void snap_process(sr_node *n)
{
	snap_recv_check(n);
	if (n->cfg.snapshot_threshold == 0 || n->snap_mode != SNAP_IDLE ||
	    !n->cfg.fsm->snapshot || !snap_supported(n))
		return;
	if (n->applied - log_snap_index(&n->log) < n->cfg.snapshot_threshold &&
	    (!n->cfg.snapshot_bytes ||
	     n->applied_bytes - n->snap_bytes_mark < n->cfg.snapshot_bytes))
		return;
	(void)snap_take(n);
}

int sr_node_snapshot(sr_node *n)
{
	int rv = node_check_running(n);
	return rv ? rv : snap_take(n);
}

int sr_node_snapshot_write(sr_node *n, const void *data, size_t len)
{
	int rv;
	if (n->snap_mode != SNAP_TAKING)
		return SR_ESTATE;
	if (len == 0)
		return 0;
	if (!data)
		return SR_EINVAL;
	rv = n->cfg.storage->snapshot_write(n->cfg.storage_ctx,
					    n->snap_take_offset, data, len);
	if (rv) {
		(void)n->cfg.storage->snapshot_finish(n->cfg.storage_ctx, 0);
		n->snap_mode = SNAP_IDLE;
		node_stop(n, rv, "writing a snapshot");
		return rv;
	}
	n->snap_take_offset += len;
	return 0;
}

/* Drop the log prefix the new snapshot covers, keeping a tail. */
static int snap_compact(sr_node *n)
{
	sr_index idx = n->snap_take_index, upto;
	int rv;
	upto = idx > n->cfg.snapshot_trailing ? idx - n->cfg.snapshot_trailing
					      : 0;
	if (upto < log_first(&n->log))
		return 0;
	rv = n->cfg.storage->compact(n->cfg.storage_ctx, upto);
	if (rv) {
		node_stop(n, rv, "compacting the log");
		return rv;
	}
	log_compact(&n->log, upto);
	return 0;
}

int sr_node_snapshot_done(sr_node *n, int status)
{
	int rv;
	if (n->snap_mode != SNAP_TAKING)
		return SR_ESTATE;
	n->snap_mode = SNAP_IDLE;
	if (status) {
		node_log(n, SR_LOG_WARN, "snapshot abandoned: %s",
			 sr_strerror(status));
		(void)n->cfg.storage->snapshot_finish(n->cfg.storage_ctx, 0);
		return 0;
	}
	rv = n->cfg.storage->snapshot_finish(n->cfg.storage_ctx, 1);
	if (rv) {
		node_stop(n, rv, "storing a snapshot");
		return rv;
	}
	log_set_snapshot(&n->log, n->snap_take_index, n->snap_take_term);
	n->snap_conf = n->snap_take_conf;
	node_log(n, SR_LOG_INFO, "snapshot %llu stored (%llu bytes)",
		 (unsigned long long)n->snap_take_index,
		 (unsigned long long)n->snap_take_offset);
	return snap_compact(n);
}

int sr_node_snapshot_read(sr_node *n, uint64_t offset, void *buf, size_t len,
			  size_t *n_out)
{
	*n_out = 0;
	if (!n->cfg.storage->snapshot_read)
		return SR_ESTATE;
	return n->cfg.storage->snapshot_read(n->cfg.storage_ctx, offset, buf,
					     len, n_out);
}

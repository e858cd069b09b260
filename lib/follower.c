/*
 * follower.c — receiving AppendEntries (Raft §5.3, figure 2).
 *
 * The follower checks that its log holds prev_index with prev_term; if
 * not, it rejects with a hint for the leader's next probe.  Otherwise it
 * walks the entries: an entry it already holds with the same term is
 * skipped; the first one whose term differs is a real conflict, and only
 * then is the suffix from that index deleted.  A stale or reordered append
 * therefore never truncates anything (a bug other libraries shipped).
 *
 * Acknowledgements promise durability: the follower answers with
 * min(durable, verified), where `verified` is the highest index known to
 * match the current leader's log.  When the store later reports more
 * entries durable, follower_maybe_ack() sends a fresh acknowledgement.
 */
#include <string.h>

#include "node.h"

static void follower_reject(sr_node *n, const sr_msg *m)
{
	const sr_msg_append *a = &m->u.append;
	sr_index last = log_last(&n->log);
	sr_index hint;
	sr_msg r;

	if (a->prev_index > last) {
		hint = last;
	} else {
		/* Skip back over every entry whose term exceeds the leader's
		 * prev_term: none of them can match. */
		hint = a->prev_index;
		while (hint > n->commit && hint > log_snap_index(&n->log)) {
			int err;
			sr_term t = log_term(&n->log, hint, &err);
			if (err || t <= a->prev_term)
				break;
			hint--;
		}
	}
	memset(&r, 0, sizeof(r));
	r.type = SR_MSG_APPEND_RESP;
	r.to = m->from;
	r.u.append_resp.success = 0;
	r.u.append_resp.index = a->prev_index;
	r.u.append_resp.hint_index = hint;
	r.u.append_resp.hint_term = log_term(&n->log, hint, NULL);
	r.u.append_resp.seq = a->seq;
	node_send(n, &r);
}

void follower_maybe_ack(sr_node *n, int force)
{
	sr_index idx = SR_MIN(n->durable, n->verified);
	sr_msg r;

	if (n->role != SR_FOLLOWER || n->leader == 0)
		return;
	if (!force && idx <= n->acked)
		return;
	memset(&r, 0, sizeof(r));
	r.type = SR_MSG_APPEND_RESP;
	r.to = n->leader;
	r.u.append_resp.success = 1;
	r.u.append_resp.index = idx;
	r.u.append_resp.hint_index = n->verified;
	r.u.append_resp.seq = n->last_seq;
	node_send(n, &r);
	if (idx > n->acked)
		n->acked = idx;
}

/* Check the message's entries are consecutive with sane terms. */
static int follower_check_entries(sr_node *n, const sr_msg_append *a)
{
	sr_term prev = a->prev_term;
	for (uint32_t i = 0; i < a->n_entries; i++) {
		const sr_entry *e = &a->entries[i];
		if (e->index != a->prev_index + 1 + i || e->term < prev ||
		    e->term > n->term || (e->len && !e->data) ||
		    e->type < SR_ENTRY_NORMAL || e->type > SR_ENTRY_CONFIG)
			return SR_EPROTO;
		if (e->type == SR_ENTRY_CONFIG) {
			sr_membership c;
			if (sr_membership_decode(&c, e->data, e->len))
				return SR_EPROTO;
		}
		prev = e->term;
	}
	return 0;
}

/* Append entries [from, n_entries) of the message to the log and store. */
static int follower_append(sr_node *n, const sr_msg_append *a, uint32_t from)
{
	uint64_t bytes = 0;
	uint32_t refs = 0;
	struct log_buf *b = NULL;
	sr_index first = a->prev_index + 1 + from;
	unsigned char *p;
	int rv;

	for (uint32_t i = from; i < a->n_entries; i++) {
		bytes += a->entries[i].len;
		refs += a->entries[i].len > 0;
	}
	if (bytes) {
		/* One block for the whole message: one allocation, not one
		 * per entry. */
		b = log_buf_new(n->alloc, bytes, refs);
		if (!b)
			return SR_ENOMEM;
	}
	p = b ? b->data : NULL;
	for (uint32_t i = from; i < a->n_entries; i++) {
		const sr_entry *e = &a->entries[i];
		if (e->len)
			memcpy(p, e->data, e->len);
		rv = log_push(&n->log, e->term, e->type, e->len ? b : NULL,
			      e->len ? p : NULL, e->len);
		if (rv) {
			/* Drop what this message appended; the leader resends. */
			for (uint32_t j = i; j < a->n_entries; j++)
				if (a->entries[j].len && b && --b->refs == 0)
					hook_free(n->alloc, b);
			log_truncate(&n->log, first);
			return rv;
		}
		if (e->type == SR_ENTRY_CONFIG)
			conf_entry_appended(n, e->index, p, e->len);
		if (e->len)
			p += e->len;
	}
	return persist_append(n, first, a->n_entries - from);
}

void follower_handle_append(sr_node *n, const sr_msg *m)
{
	const sr_msg_append *a = &m->u.append;
	sr_index last = log_last(&n->log);
	sr_index upto, verified = n->verified;
	uint32_t i = 0;
	int appended;

	if (n->role == SR_LEADER) {
		node_log(n, SR_LOG_ERROR, "append from %llu in my own term",
			 (unsigned long long)m->from);
		return;
	}
	if (n->role != SR_FOLLOWER || n->leader != m->from)
		role_become_follower(n, n->term, m->from);
	n->leader_heard = n->now;
	role_reset_timer(n);
	n->last_seq = a->seq;

	if (follower_check_entries(n, a)) {
		node_log(n, SR_LOG_WARN, "malformed append from %llu",
			 (unsigned long long)m->from);
		return;
	}
	if (a->prev_index > last) {
		follower_reject(n, m);
		return;
	}
	if (a->prev_index >= log_snap_index(&n->log) &&
	    log_term(&n->log, a->prev_index, NULL) != a->prev_term) {
		if (a->prev_index <= n->commit)
			node_log(n, SR_LOG_ERROR,
				 "leader %llu disagrees at "
				 "committed index %llu",
				 (unsigned long long)m->from,
				 (unsigned long long)a->prev_index);
		follower_reject(n, m);
		return;
	}
	/* Entries covered by the snapshot are committed and match. */
	while (i < a->n_entries &&
	       a->entries[i].index <= log_snap_index(&n->log))
		i++;
	for (; i < a->n_entries; i++) {
		const sr_entry *e = &a->entries[i];
		if (e->index > log_last(&n->log))
			break;
		if (log_term(&n->log, e->index, NULL) == e->term)
			continue;
		if (e->index <= n->commit) {
			node_log(n, SR_LOG_ERROR,
				 "refusing to overwrite "
				 "committed entry %llu",
				 (unsigned long long)e->index);
			return;
		}
		if (persist_truncate(n, e->index))
			return;
		conf_rollback(n, e->index);
		break;
	}
	appended = i < a->n_entries;
	if (appended && follower_append(n, a, i)) {
		node_log(n, SR_LOG_WARN, "could not append from %llu",
			 (unsigned long long)m->from);
		return;
	}
	upto = a->prev_index + a->n_entries;
	if (upto > n->verified)
		n->verified = upto;
	if (n->commit < SR_MIN(a->commit, upto))
		n->commit = SR_MIN(a->commit, upto);
	/* A heartbeat, or an append of nothing new, is answered at once
	 * (CheckQuorum and ReadIndex count the answers), and so is an
	 * append that does not continue what we had already verified: the
	 * leader may be probing and learns from the answer where our logs
	 * match.  New entries right after verified ones (the steady state,
	 * also while our store is still syncing the previous append) are
	 * answered when the store reports them durable: an answer now could
	 * only repeat the old durable index and would cost the leader a
	 * wake-up per follower per append for nothing (measured: with the
	 * store one append behind, a follower sent two answers per append). */
	follower_maybe_ack(n, !appended || (a->prev_index > n->acked &&
					    a->prev_index != verified));
}

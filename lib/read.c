/*
 * read.c — linearizable reads without writing to the log (ReadIndex,
 * thesis §6.4).
 *
 * On the leader a read goes through three waits:
 *
 *   READ_WAIT_TERM    until the leader has committed an entry of its own
 *                     term (its no-op), so its commit index is at least
 *                     that of every earlier leader;
 *   READ_WAIT_QUORUM  the read index is the commit index at that moment;
 *                     it is confirmed once a majority of voters answered
 *                     an append sent after it (their responses echo the
 *                     append's seq), proving no newer leader existed;
 *   READ_WAIT_APPLY   until this node has applied the read index.
 *
 * A follower sends READ_INDEX to its leader, which runs the first two
 * waits and answers with the index; the follower then waits to apply it.
 * A follower's pending reads fail when the leader or term changes (an
 * answer from a deposed leader could be stale), and after an election
 * timeout without an answer.  A leader's pending reads fail when it steps
 * down.
 */
#include <string.h>

#include "node.h"

enum {
	READ_WAIT_TERM = 1,
	READ_WAIT_QUORUM = 2,
	READ_WAIT_LEADER = 3,
	READ_WAIT_APPLY = 4
};

#define READ_MAX_PENDING 65536

static int read_push(sr_node *n, const struct read_req *r)
{
	if (n->reads_count == n->reads_cap) {
		uint32_t ncap = n->reads_cap ? n->reads_cap * 2 : 64;
		struct read_req *nr;
		if (n->reads_count >= READ_MAX_PENDING)
			return SR_EBUSY;
		nr = sr_realloc(n->alloc, n->reads, ncap * sizeof(*nr));
		if (!nr)
			return SR_ENOMEM;
		n->reads = nr;
		n->reads_cap = ncap;
	}
	n->reads[n->reads_count++] = *r;
	return 0;
}

static void read_answer_remote(sr_node *n, const struct read_req *r,
			       int status)
{
	sr_msg m;
	memset(&m, 0, sizeof(m));
	m.type = SR_MSG_READ_INDEX_RESP;
	m.to = r->remote;
	m.u.read_index_resp.ctx = r->ctx;
	m.u.read_index_resp.index = r->index;
	m.u.read_index_resp.status = status;
	node_send(n, &m);
}

static void read_finish(sr_node *n, const struct read_req *r, int status)
{
	if (r->remote)
		read_answer_remote(n, r, status);
	else if (n->cfg.host.read_done)
		n->cfg.host.read_done(n->cfg.host_ctx, r->cookie, status,
				      r->index);
}

/* Has a majority of voters echoed an append seq >= seq? */
static int read_confirmed(const sr_node *n, uint64_t seq)
{
	uint32_t acks = node_is_voter(n, n->cfg.id) ? 1 : 0;
	for (uint32_t i = 0; i < n->n_prs; i++)
		if (n->prs[i].role == SR_ROLE_VOTER &&
		    n->prs[i].acked_seq >= seq)
			acks++;
	return acks >= node_voter_count(n) / 2 + 1;
}

/* Leader: start a read (local or on behalf of a follower). */
static int read_leader_add(sr_node *n, struct read_req *r)
{
	r->state = READ_WAIT_TERM;
	r->since = n->now;
	r->term = n->term;
	return read_push(n, r);
}

int sr_node_read_index(sr_node *n, void *cookie)
{
	struct read_req r;
	int rv;

	if (!n->started || n->role == SR_STOPPED)
		return SR_ESHUTDOWN;
	memset(&r, 0, sizeof(r));
	r.cookie = cookie;
	node_enter(n);
	if (n->role == SR_LEADER) {
		rv = read_leader_add(n, &r);
	} else if (n->leader) {
		sr_msg m;
		r.ctx = ++n->read_ctx_next;
		r.state = READ_WAIT_LEADER;
		r.since = n->now;
		r.term = n->term;
		r.remote = 0;
		r.index = 0;
		rv = read_push(n, &r);
		if (rv == 0) {
			memset(&m, 0, sizeof(m));
			m.type = SR_MSG_READ_INDEX;
			m.to = n->leader;
			m.u.read_index.ctx = r.ctx;
			node_send(n, &m);
		}
	} else {
		rv = SR_ENOTLEADER;
	}
	node_leave(n);
	return rv;
}

void read_handle_request(sr_node *n, const sr_msg *m)
{
	struct read_req r;
	memset(&r, 0, sizeof(r));
	r.remote = m->from;
	r.ctx = m->u.read_index.ctx;
	if (n->role != SR_LEADER) {
		read_answer_remote(n, &r, SR_ENOTLEADER);
		return;
	}
	if (read_leader_add(n, &r))
		read_answer_remote(n, &r, SR_EBUSY);
}

void read_handle_resp(sr_node *n, const sr_msg *m)
{
	const sr_msg_read_index_resp *a = &m->u.read_index_resp;
	for (uint32_t i = 0; i < n->reads_count; i++) {
		struct read_req *r = &n->reads[i];
		if (r->state != READ_WAIT_LEADER || r->ctx != a->ctx)
			continue;
		if (m->from != n->leader || a->status) {
			struct read_req done = *r;
			n->reads[i] = n->reads[--n->reads_count];
			read_finish(n, &done, a->status ? a->status
							: SR_ENOTLEADER);
			return;
		}
		r->index = a->index;
		r->state = READ_WAIT_APPLY;
		return;
	}
}

/* Move every read as far as it can go; called once per engine call. */
void read_process(sr_node *n)
{
	uint32_t i = 0;
	int want_round = 0;
	uint64_t seq_next = n->hb_seq + 1;

	while (i < n->reads_count) {
		struct read_req *r = &n->reads[i];
		int status = 1; /* 1: keep waiting */
		if (r->state != READ_WAIT_APPLY &&
		    (n->term != r->term ||
		     (r->state != READ_WAIT_LEADER && n->role != SR_LEADER))) {
			/* leadership changed: a late answer could be stale */
			status = SR_ENOTLEADER;
			goto finish;
		}
		if (r->state == READ_WAIT_TERM && n->role == SR_LEADER &&
		    n->commit >= n->term_start) {
			r->index = n->commit;
			r->seq = seq_next;
			r->state = READ_WAIT_QUORUM;
			want_round = 1;
		}
		if (r->state == READ_WAIT_QUORUM && read_confirmed(n, r->seq))
			r->state = r->remote ? 0 : READ_WAIT_APPLY;
		if (r->state == 0)
			status = 0; /* remote: answer now */
		else if (r->state == READ_WAIT_APPLY && n->applied >= r->index)
			status = 0;
		else if (r->state == READ_WAIT_LEADER &&
			 n->now - r->since >= n->cfg.election_timeout_ms)
			status = SR_ETIMEOUT;
		if (status == 1) {
			i++;
			continue;
		}
	finish:
		{
			struct read_req done = *r;
			n->reads[i] = n->reads[--n->reads_count];
			read_finish(n, &done, status);
		}
	}
	if (want_round && n->role == SR_LEADER)
		n->read_bcast = 1;
}

void read_fail_all(sr_node *n, int status)
{
	while (n->reads_count > 0) {
		struct read_req done = n->reads[--n->reads_count];
		read_finish(n, &done, status);
	}
}

void read_free(sr_node *n)
{
	sr_free(n->alloc, n->reads);
	n->reads = NULL;
	n->reads_count = 0;
}

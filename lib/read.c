/*
 * read.c — linearizable reads without writing to the log (ReadIndex,
 * thesis §6.4).
 *
 * On the leader a read goes through three queues:
 *
 *   rq_term    until the leader has committed an entry of its own term
 *              (its no-op), so its commit index is at least that of every
 *              earlier leader;
 *   rq_quorum  the read index is the commit index at that moment; it is
 *              confirmed once a majority of voters answered an append sent
 *              after it was registered (responses echo the append's seq),
 *              proving no newer leader existed then;
 *   rq_apply   until this node has applied the read index.
 *
 * A follower sends READ_INDEX to its leader and waits in rq_forward for
 * the answer (the leader runs the first two steps for it), then in
 * rq_apply.
 *
 * Every queue is ordered so that only its head needs looking at: seqs are
 * assigned in arrival order, forwarded reads time out in arrival order, and
 * rq_apply is kept sorted by index.  The work per engine call is therefore
 * proportional to the reads that complete, not to the reads pending.
 *
 * A change of term fails what is not yet confirmed (SR_ENOTLEADER: a late
 * answer from a deposed leader could be stale); a forwarded read with no
 * answer after an election timeout fails with SR_ETIMEOUT.
 *
 * Tags of forwarded reads.  The follower tags each READ_INDEX with a ctx
 * the leader echoes; an answer completes the read whose tag, term and
 * leader it carries, and nothing else.  An answer may be delayed past the
 * crash of the process that asked: were tags a counter from 0 in every
 * process, a restarted follower (same term, same leader) would give its
 * first read the tag of an old one, and the old answer, with a read index
 * below writes acknowledged since, would complete it.  So the counter
 * starts, in every process, at a 64-bit point drawn from the config's
 * seed, the start time and the durable state (read_start()).  The engine
 * has no entropy of its own: raft.h asks hosts for a seed that differs
 * between starts of a node; two starts then collide only if their tag
 * ranges overlap, a chance of about (reads per start) / 2^64.
 */
#include <string.h>

#include "node.h"

#define READ_MAX_PENDING 65536

static struct read_req *rq_at(struct read_queue *q, uint32_t i)
{
	return &q->v[ring_pos(&q->ring, i)];
}

static int rq_reserve(sr_node *n, struct read_queue *q)
{
	struct read_req *v;
	if (q->ring.count >= READ_MAX_PENDING)
		return SR_EBUSY;
	if (!ring_full(&q->ring))
		return 0;
	v = ring_grow(&q->ring, q->v, sizeof(*v), 64, n->alloc);
	if (!v)
		return SR_ENOMEM;
	q->v = v;
	return 0;
}

/* Append r; with by_index, keep the queue sorted by index instead. */
static int rq_push(sr_node *n, struct read_queue *q, const struct read_req *r,
		   int by_index)
{
	uint32_t pos;
	int rv = rq_reserve(n, q);
	if (rv)
		return rv;
	pos = q->ring.count;
	while (by_index && pos > 0 && rq_at(q, pos - 1)->index > r->index)
		pos--;
	q->v[ring_insert(&q->ring, q->v, sizeof(*r), pos)] = *r;
	return 0;
}

static struct read_req rq_pop(struct read_queue *q)
{
	struct read_req r = q->v[ring_first(&q->ring)];
	ring_pop(&q->ring);
	return r;
}

static void read_answer_remote(sr_node *n, const struct read_req *r, int status)
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

static void rq_fail(sr_node *n, struct read_queue *q, int status)
{
	while (q->ring.count > 0) {
		struct read_req r = rq_pop(q);
		read_finish(n, &r, status);
	}
}

/* One splitmix64 step over h ^ v: a hash of a few words. */
static uint64_t read_mix(uint64_t h, uint64_t v)
{
	h ^= v;
	return rand_next(&h);
}

void read_start(sr_node *n, const sr_durable *d)
{
	uint64_t h = read_mix(n->cfg.seed, n->cfg.id);
	h = read_mix(h, n->now);
	h = read_mix(h, d->term);
	h = read_mix(h, d->vote);
	h = read_mix(h, d->last_index);
	h = read_mix(h, d->snapshot_index);
	n->read_ctx_next = h;
}

static uint32_t read_pending(const sr_node *n)
{
	return n->rq_term.ring.count + n->rq_quorum.ring.count +
	       n->rq_forward.ring.count + n->rq_apply.ring.count;
}

/* Reads registered in another term are no longer trustworthy. */
static void read_check_term(sr_node *n)
{
	if (n->rq_term_of == n->term)
		return;
	rq_fail(n, &n->rq_term, SR_ENOTLEADER);
	rq_fail(n, &n->rq_quorum, SR_ENOTLEADER);
	rq_fail(n, &n->rq_forward, SR_ENOTLEADER);
	n->rq_term_of = n->term;
}

/* Leader: register a read, local or on behalf of a follower. */
static int read_leader_add(sr_node *n, struct read_req *r)
{
	r->since = n->now;
	if (n->commit < n->term_start)
		return rq_push(n, &n->rq_term, r, 0);
	r->index = n->commit;
	r->seq = n->hb_seq + 1; /* the next append we send */
	n->read_bcast = 1;
	return rq_push(n, &n->rq_quorum, r, 0);
}

int read_index(sr_node *n, void *cookie)
{
	struct read_req r;
	int rv;

	if (n->role != SR_LEADER && !n->leader)
		return SR_ENOTLEADER;
	if (read_pending(n) >= READ_MAX_PENDING)
		return SR_EBUSY;
	memset(&r, 0, sizeof(r));
	r.cookie = cookie;
	read_check_term(n);
	if (n->role == SR_LEADER) {
		rv = read_leader_add(n, &r);
	} else {
		sr_msg m;
		r.ctx = ++n->read_ctx_next;
		r.term = n->term;
		r.since = n->now;
		rv = rq_push(n, &n->rq_forward, &r, 0);
		if (rv == 0) {
			memset(&m, 0, sizeof(m));
			m.type = SR_MSG_READ_INDEX;
			m.to = n->leader;
			m.u.read_index.ctx = r.ctx;
			node_send(n, &m);
		}
	}
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
	read_check_term(n);
	if (read_pending(n) >= READ_MAX_PENDING || read_leader_add(n, &r))
		read_answer_remote(n, &r, SR_EBUSY);
}

void read_handle_resp(sr_node *n, const sr_msg *m)
{
	const sr_msg_read_index_resp *a = &m->u.read_index_resp;
	struct read_queue *q = &n->rq_forward;
	struct read_req r;
	uint32_t i;

	read_check_term(n);
	for (i = 0; i < q->ring.count; i++) /* answers come mostly in order */
		if (rq_at(q, i)->ctx == a->ctx && rq_at(q, i)->term == m->term)
			break;
	if (i == q->ring.count)
		return; /* failed or timed out already */
	r = *rq_at(q, i);
	for (; i > 0; i--)
		*rq_at(q, i) = *rq_at(q, i - 1);
	(void)rq_pop(q);
	if (m->from != n->leader || a->status) {
		read_finish(n, &r, a->status ? a->status : SR_ENOTLEADER);
		return;
	}
	r.index = a->index;
	if (rq_push(n, &n->rq_apply, &r, 1))
		read_finish(n, &r, SR_ENOMEM);
}

/* Move reads along; called once per engine call. */
void read_process(sr_node *n)
{
	if (read_pending(n) == 0)
		return;
	read_check_term(n);
	if (n->role != SR_LEADER) {
		rq_fail(n, &n->rq_term, SR_ENOTLEADER);
		rq_fail(n, &n->rq_quorum, SR_ENOTLEADER);
	} else {
		if (n->rq_term.ring.count && n->commit >= n->term_start) {
			while (n->rq_term.ring.count) {
				struct read_req r = rq_pop(&n->rq_term);
				if (read_leader_add(n, &r))
					read_finish(n, &r, SR_ENOMEM);
			}
		}
		if (n->rq_quorum.ring.count) {
			uint64_t ok = progress_quorum_seq(n);
			while (n->rq_quorum.ring.count &&
			       rq_at(&n->rq_quorum, 0)->seq <= ok) {
				struct read_req r = rq_pop(&n->rq_quorum);
				if (r.remote)
					read_finish(n, &r, 0);
				else if (rq_push(n, &n->rq_apply, &r, 1))
					read_finish(n, &r, SR_ENOMEM);
			}
		}
	}
	while (n->rq_forward.ring.count &&
	       n->now - rq_at(&n->rq_forward, 0)->since >=
		       n->cfg.election_timeout_ms) {
		struct read_req r = rq_pop(&n->rq_forward);
		read_finish(n, &r, SR_ETIMEOUT);
	}
	while (n->rq_apply.ring.count &&
	       rq_at(&n->rq_apply, 0)->index <= n->applied) {
		struct read_req r = rq_pop(&n->rq_apply);
		read_finish(n, &r, 0);
	}
}

void read_fail_all(sr_node *n, int status)
{
	rq_fail(n, &n->rq_term, status);
	rq_fail(n, &n->rq_quorum, status);
	rq_fail(n, &n->rq_forward, status);
	rq_fail(n, &n->rq_apply, status);
}

void read_free(sr_node *n)
{
	struct read_queue *qs[] = { &n->rq_term, &n->rq_quorum, &n->rq_forward,
				    &n->rq_apply };
	for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
		hook_free(n->alloc, qs[i]->v);
		memset(qs[i], 0, sizeof(*qs[i]));
	}
}

/*
 * wait.c — WAIT numreplicas timeout: how many replicas hold this
 * client's writes, waiting up to timeout ms for numreplicas of them.
 *
 * A write is acknowledged only once committed, i.e. once a majority of
 * the voters hold it (Raft thesis §3.6), so with three voters at least
 * one replica holds an acknowledged write at once; WAIT tells a client
 * whether more do (all of them, before it takes a replica down, say).
 *
 * Which writes: every write this connection sent before WAIT.  Replies
 * come in order, so when WAIT reaches the head of the connection's
 * queue of requests every earlier write has been answered, hence
 * committed: its index is at most the commit index at that moment, which
 * becomes the WAIT's target.  The reply counts the followers and
 * learners whose match index (the leader's record of how much of its
 * log each holds, thesis §3.5) reaches the target.  It may count a
 * replica short when other clients' writes moved the commit index past
 * this client's last write (a replica that holds this client's write but
 * not the later ones); it never counts one that lacks it.
 *
 * WAIT does not block the loop: a WAIT that cannot answer at once is
 * parked as a request in the connection's queue (held by this module,
 * so that a client going away only orphans it) and a timer every
 * KV_WAIT_POLL_MS looks at the parked ones until enough replicas hold
 * the target or the timeout passes (then it answers the count it has,
 * as Redis does).  Timeout 0 waits for ever.  On a node that is not
 * (or no longer) the leader WAIT answers at once with the replicas it
 * knows of, i.e. 0.
 *
 * CLUSTER SNAPSHOT parks the same way: its reply waits until the
 * snapshot each group started (or was already writing in a child,
 * snapfork.c) has ended, then says +OK if every one was stored.
 */
#include <stdlib.h>
#include <string.h>

#include "conn.h"

#define KV_WAIT_POLL_MS 10

struct kv_wait {
	struct kv_req *r;
	uint64_t *snap; /* CLUSTER SNAPSHOT: each group's snap_seq; else NULL */
	struct kv_group *g; /* the group of the client's last write */
	uint64_t deadline;  /* 0: none */
	long long want;
	sr_index target;
	int have_target;
};

/* Replicas (not this node) whose log holds index `target`. */
static long long replicas_holding(struct kv_group *g, sr_index target)
{
	sr_peer_status ps[SR_MAX_MEMBERS];
	size_t np;
	long long n = 0;

	if (!kv_cmd_is_leader(g))
		return 0;
	np = sr_node_peer_status(g->node, ps, SR_MAX_MEMBERS);
	if (np > SR_MAX_MEMBERS)
		np = SR_MAX_MEMBERS;
	for (size_t i = 0; i < np; i++)
		n += ps[i].id != g->s->opt.id && ps[i].match >= target;
	return n;
}

static sr_index commit_index(struct kv_group *g)
{
	sr_status st;

	sr_node_status(g->node, &st);
	return st.commit_index;
}

static void wait_tick(sr_loop *loop, uint64_t id, void *ctx);

static void wait_arm(struct kv_server *s)
{
	if (!s->wait_timer && s->nwaits && !s->stopping &&
	    sr_loop_timer_add(s->loop, KV_WAIT_POLL_MS, wait_tick, s,
			      &s->wait_timer))
		s->wait_timer = 0;
}

/* 1 if parked WAIT i was answered (or its client left): drop it. */
static int wait_step(struct kv_server *s, struct kv_wait *w, uint64_t now)
{
	struct kv_req *r = w->r;
	struct kv_conn *c = r->conn;
	long long n;

	if (!c) { /* the client went away */
		kv_req_unhold(s, r);
		return 1;
	}
	if (c->head != r)
		return 0; /* earlier replies still owed: its writes too */
	if (!w->have_target) {
		w->target = commit_index(w->g);
		w->have_target = 1;
	}
	n = replicas_holding(w->g, w->target);
	if (n < w->want && kv_cmd_is_leader(w->g) &&
	    (!w->deadline || now < w->deadline))
		return 0;
	r->held = 0;
	kv_reply_int(&r->buf, n);
	r->ready = 1;
	kv_conn_pump(c);
	return 1;
}

/* CLUSTER SNAPSHOT's reply into o once the snapshot numbered want[i] of
 * every group i has ended (1), or nothing yet (0). */
static int snap_answer(struct kv_server *s, const uint64_t *want,
		       struct kv_buf *o)
{
	int failed = 0;

	for (unsigned i = 0; i < s->ngroups; i++) {
		const struct kv_fsm *f = &s->groups[i].fsm;
		if (f->snap_done_seq < want[i])
			return 0;
		/* conservative: a later one that failed counts */
		failed |= f->snap_failed_seq >= want[i];
	}
	if (failed)
		kv_reply_error(o, "ERR the snapshot was not stored (see the "
				  "node's log)");
	else
		kv_reply_simple(o, "OK");
	return 1;
}

/* 1 if parked CLUSTER SNAPSHOT w was answered (or its client left). */
static int snap_step(struct kv_server *s, struct kv_wait *w)
{
	struct kv_req *r = w->r;

	if (!r->conn) {
		kv_req_unhold(s, r);
	} else if (snap_answer(s, w->snap, &r->buf)) {
		r->held = 0;
		r->ready = 1;
		kv_conn_pump(r->conn);
	} else {
		return 0;
	}
	free(w->snap);
	return 1;
}

static void wait_tick(sr_loop *loop, uint64_t id, void *ctx)
{
	struct kv_server *s = ctx;
	uint64_t now = kv_now_ms(s);
	size_t keep = 0;

	(void)loop;
	(void)id;
	s->wait_timer = 0;
	/* Entries are re-read by index: should answering one ever run a
	 * command that parks a new WAIT (the array may move), the new one
	 * is appended past n and kept below. */
	size_t n = s->nwaits;
	for (size_t i = 0; i < n; i++) {
		struct kv_wait w = s->waits[i];
		int done = w.snap ? snap_step(s, &w) : wait_step(s, &w, now);
		if (!done)
			s->waits[keep++] = w;
	}
	for (size_t i = n; i < s->nwaits; i++)
		s->waits[keep++] = s->waits[i];
	s->nwaits = keep;
	wait_arm(s);
}

/* A parked request in ctx's connection, polled by wait_tick; NULL (and
 * the error replied) when out of memory. */
static struct kv_wait *park(struct kv_cmdctx *ctx)
{
	struct kv_server *s = ctx->s;
	struct kv_wait *w;
	struct kv_req *r;

	if (s->nwaits == s->waits_cap) {
		size_t cap = s->waits_cap ? s->waits_cap * 2 : 8;
		struct kv_wait *nw = realloc(s->waits, cap * sizeof(*nw));
		if (!nw) {
			kv_reply_error(ctx->out, "ERR out of memory");
			return NULL;
		}
		s->waits = nw;
		s->waits_cap = cap;
	}
	r = kv_req_new(ctx->c, 0);
	if (!r) {
		kv_reply_error(ctx->out, "ERR out of memory");
		return NULL;
	}
	r->held = 1; /* this module frees it if its client leaves */
	w = &s->waits[s->nwaits++];
	memset(w, 0, sizeof(*w));
	w->r = r;
	wait_arm(s);
	return w;
}

void kv_wait_snapshot(struct kv_cmdctx *ctx)
{
	struct kv_server *s = ctx->s;
	uint64_t *want = calloc(s->ngroups, sizeof(*want));
	struct kv_wait *w;

	if (!want) {
		kv_reply_error(ctx->out, "ERR out of memory");
		return;
	}
	for (unsigned i = 0; i < s->ngroups; i++)
		want[i] = s->groups[i].fsm.snap_seq;
	if (snap_answer(s, want, ctx->out) || (w = park(ctx)) == NULL) {
		free(want);
		return;
	}
	w->snap = want;
}

void kv_wait_cmd(struct kv_cmdctx *ctx, long long want, long long timeout_ms)
{
	struct kv_group *g = ctx->c->wgroup ? ctx->c->wgroup : ctx->g;
	struct kv_wait *w;

	/* Nothing owed before it: its writes are all answered now. */
	if (!ctx->c->head) {
		long long n = replicas_holding(g, commit_index(g));
		if (n >= want || !kv_cmd_is_leader(g)) {
			kv_reply_int(ctx->out, n);
			return;
		}
	}
	if ((w = park(ctx)) == NULL)
		return;
	w->g = g;
	w->want = want;
	w->deadline = timeout_ms ? kv_now_ms(ctx->s) + (uint64_t)timeout_ms : 0;
}

void kv_wait_free(struct kv_server *s)
{
	if (s->wait_timer && s->loop)
		sr_loop_timer_cancel(s->loop, s->wait_timer);
	s->wait_timer = 0;
	/* The requests themselves are orphans by now (every connection is
	 * closed) and kv_server_free_reqs freed them. */
	for (size_t i = 0; i < s->nwaits; i++)
		free(s->waits[i].snap);
	free(s->waits);
	s->waits = NULL;
	s->nwaits = s->waits_cap = 0;
}

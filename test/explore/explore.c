/*
 * explore.c — a bounded exhaustive explorer over the real engine.
 *
 * The random simulator (test/sim/simulate.c) samples schedules; this
 * program enumerates them.  Three engines (lib/, unmodified) run on the
 * simulator's harness (test/sim: the in-memory stores, the hooks and the
 * whole checker), but nothing happens by itself: no clock, no network
 * delay, no disk delay.  Every message an engine sends is held in a pool,
 * every store append waits for its completion, and a node's time moves
 * only when the explorer fires its timer.  A state is then a point where
 * the explorer chooses the next action, and the actions are:
 *
 *   D<i>  deliver pending message i (to a node that is up)
 *   U<i>  deliver a copy of message i and keep it pending (a duplicate)
 *   X<i>  drop message i
 *   W<k>  complete node k's oldest pending store operation (fsync done)
 *   T<k>  fire node k's timer: tick it at sr_node_deadline() (an election
 *         timeout, or a leader's heartbeat)
 *   C<k>  crash node k: the store keeps only what it reported durable
 *   R<k>  restart node k
 *   P<k>  propose a command on node k (a leader)
 *   Q<k>  a linearizable read on node k (a leader, or a follower that
 *         knows one: it forwards the read)
 *
 * Costly actions have budgets (crashes, proposals, reads, duplicates,
 * drops, election timeouts, heartbeats), so that the depth goes further.
 * A message never delivered is a message lost, so drops only matter to
 * merge states; the default drop budget is 0.
 *
 * Search.  Engines cannot be copied, so the search is stateless: a state
 * is named by the choices that lead to it and rebuilt by re-executing
 * them from the initial state (everything is deterministic).  The search
 * is breadth-first: level d holds every distinct state first reached in d
 * choices, each visited once, so "depth d complete" means every schedule
 * of d actions within the budgets was checked.  Distinct: a 64-bit hash
 * of what the engines can observe (state_hash below) - each node's
 * durable store and volatile log, role, term, vote, leader, commit,
 * applied, the leader's view of its peers, the time left on its timer;
 * the pool of messages as a multiset; pending store completions; the
 * clients' proposals and reads; the budgets left.  Two paths that reach
 * the same hash are explored once (what the hash leaves out, such as the
 * engines' random generators, makes this an under-approximation: see
 * docs/explorer.md).
 *
 * With --delays K the search is another: a fixed fair schedule runs by
 * itself (oldest message, else a store completion, else a deferred
 * snapshot, else the earliest timer) and a level is the number of other
 * choices - deviations (deliver out of order, park a message H<i> until a
 * deviation delivers it, fire a timer out of turn, duplicate, drop),
 * faults and client requests, the latter at rest only.  Within a level
 * the fair schedule runs on until it meets a state seen before, and every
 * state on the way branches into the next level (search_delays()).  That
 * reaches schedules fifty steps deep that need few decisions.
 *
 * Checks.  After every action the harness's checker runs (check.c: election
 * safety, log matching, leader completeness, state machine safety, commit
 * by counting only in the leader's term, durable acknowledgements and
 * votes, the committed prefix durable on a majority, monotonic terms,
 * commit and applied, acknowledged writes applied where acknowledged,
 * reads that see every write acknowledged before they began).  The
 * explorer adds one rule of its own: a snapshot reply that says
 * "installed" names an index the follower holds durably (the leader takes
 * it as the follower's match).  With --heal, every state of the last level
 * also gets a liveness check: restart every node, then deliver, complete
 * and tick in a fixed fair order; within a bound of simulated time there
 * must be one leader, every entry of its log committed and applied
 * everywhere, every acknowledged write among them.
 *
 * Starting points.  --start fresh begins with three followers that have
 * never elected anyone.  --start leader (the default) first runs a fixed
 * fair schedule until n1..n3 agree on a leader with everything committed
 * and applied, and nothing pending; the search starts there.
 *
 * A violation prints the reason, the choices and the command that replays
 * them with a full trace: explore --replay D0,W1,... (same options).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cluster.h"

#define NODES	    3
#define MAX_DEPTH   64
#define MAX_CHOICES 256

enum {
	A_DELIVER = 'D',
	A_DUP = 'U',
	A_DROP = 'X',
	A_DISK = 'W',
	A_TICK = 'T',
	A_CRASH = 'C',
	A_RESTART = 'R',
	A_PROPOSE = 'P',
	A_READ = 'Q',
	A_PARK = 'H',
	A_SNAP = 'S'
};

struct choice {
	uint8_t op;
	uint8_t arg;
};

/* Budgets: how many of each costly action one schedule may contain. */
struct budget {
	int crashes, proposals, reads, dups, drops, elections, heartbeats;
	int delays; /* deviations from the fair schedule (--delays) */
};

struct xopts {
	int start_leader;
	int depth;
	double seconds;
	struct budget b;
	int pre_vote, check_quorum;
	uint64_t snapshot_threshold;
	uint32_t chunk;	 /* snapshot chunk bytes (the snapshot has 32) */
	int defer;	 /* the state machine hands snapshot bytes over later */
	int safety_only; /* end-to-end properties only (no rule checks) */
	int heal;
	int heal_depth; /* every interleaving: heal the states at this depth */
	int delays;	/* -1: every interleaving; else deviations from fair */
	int reboot;	/* a crash restarts the node at once */
	int at_rest;	/* --delays: faults and clients only at rest */
	uint32_t park_types; /* --delays: message types that may be parked */
	const char *devs;    /* --delays: deviations allowed (DHTWXU) */
	uint64_t heal_ms;
	int settle_props; /* proposals committed by the starting schedule */
	const char *replay;
	int verbose;
	int expect_fail; /* exit 0 only if a violation is found */
};

/* A cluster being explored, with what its schedule has spent. */
struct world {
	struct cluster c;
	struct budget used;
	int depth;
};

static struct xopts X;
static struct choice prefix[1024];
static int prefix_n = -1;

/* ------------------------------------------------------------------ */
/* The world: build, act, hash                                         */
/* ------------------------------------------------------------------ */

/* Explorer-level rule: a "done" snapshot reply is durable. */
static void check_snapshot_reply(struct cluster *c, const sr_msg *m)
{
	struct sim_node *sn;
	sr_mem_info info;
	sr_entry d, v;
	sr_index i = m->u.snapshot_resp.last_index;

	if (m->type != SR_MSG_SNAPSHOT_RESP || !m->u.snapshot_resp.done ||
	    m->u.snapshot_resp.rejected || m->from < 1 || m->from > NODES)
		return;
	sn = &c->nodes[m->from - 1];
	sr_mem_get_info(sn->mem, &info);
	if (i <= info.snapshot_index)
		return;
	if (sr_mem_entry(sn->mem, i, 1, &d) ||
	    sr_mem_entry(sn->mem, i, 0, &v) || d.term != v.term)
		sim_fail(c,
			 "n%d answers snapshot %" PRIu64 " \"installed\" but "
			 "holds durably only its log up to %" PRIu64 " and "
			 "snapshot "
			 "%" PRIu64,
			 sn->slot + 1, i, info.durable_last,
			 info.snapshot_index);
}

/* Every message between engines waits in the pool (c->held). */
static int hold_all(struct cluster *c, const sr_msg *m, void *ctx)
{
	(void)ctx;
	if (!X.safety_only)
		check_snapshot_reply(c, m);
	return SIM_HOLD;
}

static int world_init(struct world *w)
{
	struct sim_opts o;
	int rv;

	memset(w, 0, sizeof(*w));
	sim_opts_default(&o);
	o.n = NODES;
	o.seed = 1;
	o.async_disk = 1;
	o.tick_on_event = 1; /* as raft.h asks: tick before each event */
	o.pre_vote = X.pre_vote;
	o.check_quorum = X.check_quorum;
	o.snapshot_threshold = X.snapshot_threshold;
	o.snapshot_chunk_bytes = X.chunk;
	o.snapshot_defer = X.defer;
	o.log_level = SR_LOG_ERROR;
	rv = cluster_init(&w->c, &o);
	if (rv)
		return rv;
	w->c.crash_drops_all = 1;
	w->c.safety_only = X.safety_only;
	w->c.filter = hold_all;
	return cluster_start(&w->c);
}

static void world_free(struct world *w)
{
	cluster_free(&w->c);
}

static int is_leader(struct world *w, int k)
{
	return w->c.nodes[k].node && w->c.nodes[k].st.role == SR_LEADER;
}

static void tick_node(struct cluster *c, int k)
{
	struct sim_node *sn = &c->nodes[k];
	uint64_t t = sr_node_deadline(sn->node);

	if (t <= sn->last_tick)
		t = sn->last_tick + 1;
	if (t > c->now)
		c->now = t;
	sn->last_tick = c->now;
	sim_trace(c, k, "TIMER");
	sr_node_tick(sn->node, c->now);
	c->steps++;
	check_step(c);
}

static void deliver(struct cluster *c, struct sim_msg *sm)
{
	struct sim_node *sn = &c->nodes[sm->m.to - 1];
	char desc[200];
	int rv;

	sim_msg_describe(&sm->m, desc, sizeof(desc));
	sim_trace(c, sn->slot, "recv %s%s", desc, sm->dup ? " (dup)" : "");
	c->n_delivered++;
	sim_host_tick(c, sn);
	check_conf_recv(sn, &sm->m, 0);
	rv = sr_node_step(sn->node, &sm->m);
	if (rv)
		sim_trace(c, sn->slot, "step: %s", sr_strerror(rv));
	check_conf_recv(sn, &sm->m, 1);
	c->steps++;
	check_step(c);
}

static int msg_dest_up(struct world *w, size_t i)
{
	sr_id to = w->c.held[i]->m.to;

	return to >= 1 && to <= NODES && w->c.nodes[to - 1].node;
}

/*
 * A deferred snapshot (--defer) waiting for its bytes: the harness queued
 * an EV_SNAP event for it on the heap, which the explorer never runs (it
 * has no clock); the S action hands the bytes over and marks the event
 * spent.  Returns its heap position, or -1.
 */
static long snap_pending(struct world *w, int k)
{
	struct cluster *c = &w->c;

	for (size_t i = 0; i < c->heap_n; i++)
		if (c->heap[i].kind == EV_SNAP && c->heap[i].slot == k &&
		    c->heap[i].incarnation == c->nodes[k].incarnation)
			return (long)i;
	return -1;
}

/*
 * One step of a fixed fair schedule: the oldest message to a node that is
 * up, else a pending store completion, else the earliest timer.  Returns
 * the choice taken, or op 0 if nothing can happen.
 */
static struct choice fair_step(struct world *w, int skip_parked)
{
	struct cluster *c = &w->c;
	struct choice ch = { 0, 0 };
	uint64_t best = SIM_FOREVER;

	for (size_t i = 0; i < c->held_n && i < 250; i++)
		if (msg_dest_up(w, i) && !(skip_parked && c->held[i]->at)) {
			ch.op = A_DELIVER;
			ch.arg = (uint8_t)i;
			return ch;
		}
	for (int k = 0; k < NODES; k++)
		if (c->nodes[k].node && sr_mem_pending(c->nodes[k].mem)) {
			ch.op = A_DISK;
			ch.arg = (uint8_t)k;
			return ch;
		}
	for (int k = 0; k < NODES; k++)
		if (c->nodes[k].node && snap_pending(w, k) >= 0) {
			ch.op = A_SNAP;
			ch.arg = (uint8_t)k;
			return ch;
		}
	for (int k = 0; k < NODES; k++) {
		struct sim_node *sn = &c->nodes[k];
		uint64_t d;

		if (!sn->node)
			continue;
		d = sr_node_deadline(sn->node);
		if (d <= sn->last_tick)
			d = sn->last_tick + 1;
		if (d < best) {
			best = d;
			ch.op = A_TICK;
			ch.arg = (uint8_t)k;
		}
	}
	return ch;
}

/* Parked messages (--delays): held back from the fair schedule until a
 * deviation delivers them.  The pool's copies never use their delivery
 * time, so `at` marks them. */
static int is_parked(struct world *w, size_t i)
{
	return w->c.held[i]->at != 0;
}

static int same(struct choice a, struct choice b)
{
	return a.op == b.op && a.arg == b.arg;
}

/* The actions enabled in w, in a fixed order.  Returns how many. */
static int enabled(struct world *w, struct choice *out)
{
	struct cluster *c = &w->c;
	int n = 0, delay = X.delays >= 0, dev = 1;
	struct choice dflt = { 0, 0 };

#define ADD(o, a)                                                              \
	do {                                                                   \
		struct choice ch_ = { (uint8_t)(o), (uint8_t)(a) };            \
		if (n < MAX_CHOICES && !(delay && same(ch_, dflt)) &&          \
		    (!delay || !strchr("DUXWTHS", ch_.op) ||                   \
		     strchr(X.devs, ch_.op))) {                                \
			out[n++] = ch_;                                        \
		}                                                              \
	} while (0)
	int rest = 1;

	if (delay) {
		/* the fair schedule's step first, then deviations if the
		 * budget allows, and faults and clients (their own budgets) */
		dflt = fair_step(w, 1);
		if (dflt.op)
			out[n++] = dflt;
		dev = w->used.delays < X.delays;
		/* at rest: nothing to deliver or complete, only timers */
		rest = !X.at_rest || dflt.op == A_TICK || !dflt.op;
	}
	for (size_t i = 0; i < c->held_n && i < 250 && dev; i++) {
		if (msg_dest_up(w, i)) {
			if (!delay || !is_parked(w, i))
				ADD(A_DELIVER, i);
			else if (strchr(X.devs, A_PARK)) /* release */
				out[n++] = (struct choice){ A_DELIVER,
							    (uint8_t)i };
			if (w->used.dups < X.b.dups)
				ADD(A_DUP, i);
		}
		if (w->used.drops < X.b.drops)
			ADD(A_DROP, i);
		if (delay && !is_parked(w, i) &&
		    (X.park_types >> c->held[i]->m.type & 1))
			ADD(A_PARK, i);
	}
	for (int k = 0; k < NODES; k++) {
		struct sim_node *sn = &c->nodes[k];

		if (!sn->node) {
			ADD(A_RESTART, k);
			continue;
		}
		if (dev && sr_mem_pending(sn->mem))
			ADD(A_DISK, k);
		if (dev && snap_pending(w, k) >= 0)
			ADD(A_SNAP, k);
		if (dev &&
		    (is_leader(w, k) ? w->used.heartbeats < X.b.heartbeats
				     : w->used.elections < X.b.elections))
			ADD(A_TICK, k);
		if (!rest)
			continue;
		if (w->used.crashes < X.b.crashes)
			ADD(A_CRASH, k);
		if (is_leader(w, k) && w->used.proposals < X.b.proposals)
			ADD(A_PROPOSE, k);
		if ((is_leader(w, k) || sn->st.leader) &&
		    w->used.reads < X.b.reads)
			ADD(A_READ, k);
	}
#undef ADD
	return n;
}

static int act_do(struct world *w, struct choice ch);

/*
 * Perform one action; -1 if it is not enabled (a bad replay string).
 * With --delays, anything but the fair step, a fault or a client request
 * spends a deviation.
 */
static int act(struct world *w, struct choice ch)
{
	int rv;

	if (ch.op == 'F') { /* replay strings only: fair steps until rest */
		for (int i = 0; i < 1000 && !w->c.failed; i++) {
			struct choice f = fair_step(w, 1);

			if (!f.op || (f.op == A_TICK && i >= ch.arg))
				break;
			act_do(w, f);
		}
		return 0;
	}

	if (X.delays >= 0 && !strchr("CPQR", ch.op) &&
	    !same(ch, fair_step(w, 1))) {
		rv = act_do(w, ch);
		w->used.delays++;
		return rv;
	}
	return act_do(w, ch);
}

static int act_do(struct world *w, struct choice ch)
{
	struct cluster *c = &w->c;
	int k = ch.arg, delay = X.delays >= 0;
	struct sim_node *sn = k < NODES ? &c->nodes[k] : NULL;
	struct sim_msg *sm;

	switch (ch.op) {
	case A_PARK:
		if ((size_t)k >= c->held_n)
			return -1;
		c->held[k]->at = 1;
		sim_trace(c, -1, "park message %d", k);
		return 0;
	case A_DELIVER:
	case A_DUP:
	case A_DROP:
		if ((size_t)k >= c->held_n ||
		    (ch.op != A_DROP && !msg_dest_up(w, (size_t)k)))
			return -1;
		if (ch.op == A_DUP) {
			sm = sim_msg_copy(&c->held[k]->m);
			sm->dup = 1;
			w->used.dups++;
			c->n_dup++;
		} else {
			sm = cluster_take_held(c, (size_t)k);
		}
		if (ch.op == A_DROP) {
			char desc[200];

			sim_msg_describe(&sm->m, desc, sizeof(desc));
			sim_trace(c, -1, "drop %s", desc);
			w->used.drops++;
			c->n_lost++;
		} else {
			deliver(c, sm);
		}
		free(sm);
		return 0;
	case A_DISK:
		if (!sn || !sn->node || !sr_mem_pending(sn->mem))
			return -1;
		sim_trace(c, k, "store completion");
		sim_host_tick(c, sn);
		sr_mem_complete(sn->mem, 0, 0);
		c->steps++;
		check_step(c);
		return 0;
	case A_SNAP: {
		long e = sn && sn->node ? snap_pending(w, k) : -1;

		if (e < 0)
			return -1;
		c->heap[e].kind = 0; /* spent */
		sim_trace(c, k, "snapshot bytes handed over");
		sim_host_tick(c, sn);
		sim_snapshot_give(sn, sn->snap_buf);
		c->steps++;
		check_step(c);
		return 0;
	}
	case A_TICK:
		if (!sn || !sn->node)
			return -1;
		if (delay && same(ch, fair_step(w, 1)))
			; /* the fair schedule's timer: free */
		else if (is_leader(w, k))
			w->used.heartbeats++;
		else
			w->used.elections++;
		tick_node(c, k);
		return 0;
	case A_CRASH:
		if (!sn || !sn->node)
			return -1;
		w->used.crashes++;
		cluster_crash(c, k);
		if (X.reboot && !c->failed)
			cluster_restart(c, k);
		return 0;
	case A_RESTART:
		if (!sn || sn->node)
			return -1;
		cluster_restart(c, k);
		return 0;
	case A_PROPOSE:
		if (!sn || !sn->node)
			return -1;
		w->used.proposals++;
		cluster_propose(c, k, 0, NULL);
		return 0;
	case A_READ:
		if (!sn || !sn->node)
			return -1;
		w->used.reads++;
		cluster_read(c, k, NULL);
		return 0;
	default:
		return -1;
	}
}

static uint64_t mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t h_add(uint64_t h, uint64_t v)
{
	return mix64(h ^ (v + 0x9e3779b97f4a7c15ull + (h << 6)));
}

/* A message by content (its copy's pointers are not part of it). */
static uint64_t msg_hash(const sr_msg *m)
{
	uint64_t h = h_add(0, m->type);

	h = h_add(h, m->from);
	h = h_add(h, m->to);
	h = h_add(h, m->term);
	switch (m->type) {
	case SR_MSG_VOTE:
		h = h_add(h, m->u.vote.last_index);
		h = h_add(h, m->u.vote.last_term);
		h = h_add(h, (uint64_t)m->u.vote.pre << 1 | m->u.vote.transfer);
		break;
	case SR_MSG_VOTE_RESP:
		h = h_add(h, (uint64_t)m->u.vote_resp.granted << 1 |
				     m->u.vote_resp.pre);
		break;
	case SR_MSG_APPEND:
		h = h_add(h, m->u.append.prev_index);
		h = h_add(h, m->u.append.prev_term);
		h = h_add(h, m->u.append.commit);
		if (X.delays < 0) /* see search_delays() */
			h = h_add(h, m->u.append.seq);
		for (uint32_t i = 0; i < m->u.append.n_entries; i++) {
			const sr_entry *e = &m->u.append.entries[i];

			h = h_add(h, e->index);
			h = h_add(h, e->term);
			h = h_add(h, sim_hash(e->type, e->data, e->len));
		}
		break;
	case SR_MSG_APPEND_RESP:
		h = h_add(h, m->u.append_resp.success);
		h = h_add(h, m->u.append_resp.index);
		h = h_add(h, m->u.append_resp.hint_index);
		h = h_add(h, m->u.append_resp.hint_term);
		if (X.delays < 0)
			h = h_add(h, m->u.append_resp.seq);
		break;
	case SR_MSG_SNAPSHOT:
		h = h_add(h, m->u.snapshot.last_index);
		h = h_add(h, m->u.snapshot.last_term);
		h = h_add(h, m->u.snapshot.offset);
		h = h_add(h, m->u.snapshot.done);
		h = h_add(h,
			  sim_hash(0, m->u.snapshot.data, m->u.snapshot.len));
		break;
	case SR_MSG_SNAPSHOT_RESP:
		h = h_add(h, m->u.snapshot_resp.last_index);
		h = h_add(h, m->u.snapshot_resp.offset);
		h = h_add(h, (uint64_t)m->u.snapshot_resp.done << 1 |
				     m->u.snapshot_resp.rejected);
		break;
	case SR_MSG_READ_INDEX:
		h = h_add(h, m->u.read_index.ctx);
		break;
	case SR_MSG_READ_INDEX_RESP:
		h = h_add(h, m->u.read_index_resp.ctx);
		h = h_add(h, m->u.read_index_resp.index);
		h = h_add(h, (uint64_t)(uint32_t)m->u.read_index_resp.status);
		break;
	default:
		break;
	}
	return h;
}

static uint64_t store_hash(uint64_t h, struct sim_node *sn)
{
	sr_mem_info mi;

	sr_mem_get_info(sn->mem, &mi);
	h = h_add(h, mi.term);
	h = h_add(h, mi.vote);
	h = h_add(h, mi.first_index);
	h = h_add(h, mi.last_index);
	h = h_add(h, mi.durable_first);
	h = h_add(h, mi.durable_last);
	h = h_add(h, mi.snapshot_index);
	h = h_add(h, mi.snapshot_term);
	h = h_add(h, mi.pending);
	for (sr_index i = mi.first_index; i <= mi.last_index; i++) {
		sr_entry e;

		if (sr_mem_entry(sn->mem, i, 0, &e) == 0)
			h = h_add(h, e.term);
	}
	for (sr_index i = mi.durable_first; i <= mi.durable_last; i++) {
		sr_entry e;

		if (sr_mem_entry(sn->mem, i, 1, &e) == 0)
			h = h_add(h, e.term);
	}
	return h;
}

static uint64_t state_hash(struct world *w)
{
	struct cluster *c = &w->c;
	uint64_t h = 0, pool = 0;

	for (int k = 0; k < NODES; k++) {
		struct sim_node *sn = &c->nodes[k];

		h = store_hash(h_add(h, (uint64_t)k), sn);
		if (!sn->node)
			continue;
		const sr_status *st = &sn->st;
		h = h_add(h, (uint64_t)st->role);
		h = h_add(h, st->term);
		h = h_add(h, st->vote);
		h = h_add(h, st->leader);
		h = h_add(h, st->commit_index);
		h = h_add(h, st->applied_index);
		h = h_add(h, st->durable_index);
		h = h_add(h, sn->fsm.h);
		h = h_add(h, (uint64_t)(snap_pending(w, k) >= 0));
		if (st->role == SR_LEADER) {
			sr_peer_status ps[NODES];
			size_t np = sr_node_peer_status(sn->node, ps, NODES);

			for (size_t j = 0; j < np && j < NODES; j++) {
				h = h_add(h, ps[j].match);
				h = h_add(h, ps[j].next);
				h = h_add(h, ps[j].state);
				h = h_add(h, ps[j].inflight_msgs);
			}
		}
	}
	for (size_t i = 0; i < c->held_n; i++)
		pool += mix64(msg_hash(&c->held[i]->m) + c->held[i]->dup +
			      (c->held[i]->at << 1));
	h = h_add(h, pool);
	h = h_add(h, c->held_n);
	for (size_t p = 0; p < c->props_n; p++)
		h = h_add(h, (uint64_t)c->props[p].state << 32 |
				     c->props[p].index);
	for (size_t r = 0; r < c->reads_n; r++)
		h = h_add(h, (uint64_t)c->reads[r].state << 48 |
				     (uint64_t)c->reads[r].slot << 40 |
				     c->reads[r].need);
	h = h_add(h, c->chk.acked_max);
	h = h_add(h, (uint64_t)w->used.crashes << 48 |
			     (uint64_t)w->used.proposals << 40 |
			     (uint64_t)w->used.reads << 32 |
			     (uint64_t)w->used.dups << 24 |
			     (uint64_t)w->used.drops << 16 |
			     (uint64_t)w->used.elections << 8 |
			     (uint64_t)w->used.heartbeats);
	h = h_add(h, (uint64_t)w->used.delays);
	if (X.delays >= 0) {
		/* the fair schedule follows the timers: which node's is
		 * next, and which are due */
		struct choice f = fair_step(w, 1);

		h = h_add(h, (uint64_t)f.op << 8 | f.arg);
		for (int k = 0; k < NODES; k++)
			if (c->nodes[k].node)
				h = h_add(h,
					  sr_node_deadline(c->nodes[k].node) <=
						  c->now);
	}
	return h ? h : 1;
}

/* ------------------------------------------------------------------ */
/* The starting schedule and the healing schedule                      */
/* ------------------------------------------------------------------ */

/* Perform a fair step without spending the budgets. */
static int fair_act(struct world *w, struct choice ch)
{
	struct budget saved = w->used;
	int rv;

	if (ch.op == A_TICK) {
		tick_node(&w->c, ch.arg);
		return 0;
	}
	rv = act_do(w, ch);
	w->used = saved;
	return rv;
}

/* Converged: one leader whose whole log is committed and applied by every
 * node, every acknowledged write among it. */
static int converged(struct world *w, char *why, size_t cap)
{
	struct cluster *c = &w->c;
	int ld = cluster_leader(c);
	const sr_status *ls;

	if (!check_converged(c, why, cap))
		return 0;
	if (ld < 0) {
		snprintf(why, cap, "no leader");
		return 0;
	}
	ls = &c->nodes[ld].st;
	for (int k = 0; k < NODES; k++) {
		const sr_status *st = &c->nodes[k].st;

		if (st->applied_index < ls->last_index ||
		    st->term != ls->term) {
			snprintf(why, cap,
				 "n%d applied %" PRIu64 " (term %" PRIu64
				 ", commit %" PRIu64 "), leader n%d's log "
				 "ends at %" PRIu64 " (term %" PRIu64 ")",
				 k + 1, st->applied_index, st->term,
				 st->commit_index, ld + 1, ls->last_index,
				 ls->term);
			return 0;
		}
	}
	return 1;
}

/*
 * Liveness: every node up, messages and completions in order, timers
 * when nothing else is due.  Within heal_ms of simulated time the
 * cluster must converge (and stay safe).  Returns 0 or -1 (c->why set).
 */
static int heal(struct world *w)
{
	struct cluster *c = &w->c;
	char why[300] = "";
	uint64_t end;

	for (int k = 0; k < NODES; k++)
		if (!c->nodes[k].node)
			cluster_restart(c, k);
	end = c->now + X.heal_ms;
	while (!c->failed) {
		struct choice ch;

		if (converged(w, why, sizeof(why)) && !c->held_n)
			return 0;
		ch = fair_step(w, 0);
		if (!ch.op)
			break;
		if (ch.op == A_TICK && c->now >= end)
			break;
		fair_act(w, ch);
	}
	if (!c->failed)
		sim_fail(c,
			 "liveness: not converged %" PRIu64 " ms after "
			 "healing: %s",
			 X.heal_ms, why);
	return -1;
}

/* The starting state: a leader, everything committed and applied. */
static int settle(struct world *w)
{
	struct cluster *c = &w->c;
	char why[300];
	int props = 0;

	prefix_n = 0;
	while (!c->failed &&
	       prefix_n < (int)(sizeof(prefix) / sizeof(prefix[0]))) {
		struct choice ch;
		int ld = cluster_leader(c);

		if (ld >= 0 && !c->held_n && converged(w, why, sizeof(why))) {
			if (props >= X.settle_props)
				return 0;
			ch.op = A_PROPOSE;
			ch.arg = (uint8_t)ld;
			props++;
		} else {
			ch = fair_step(w, 0);
		}
		if (!ch.op)
			break;
		prefix[prefix_n++] = ch;
		fair_act(w, ch);
	}
	return -1;
}

/* Build the starting state (the prefix is computed once, then replayed). */
static int world_start(struct world *w)
{
	int rv = world_init(w);

	if (rv || !X.start_leader)
		return rv;
	if (prefix_n < 0) {
		if (settle(w)) {
			fprintf(stderr,
				"the starting schedule does not "
				"settle: %s\n",
				w->c.failed ? w->c.why : "no leader");
			return SR_ESTATE;
		}
		w->used = (struct budget){ 0 };
		return 0;
	}
	for (int i = 0; i < prefix_n && !w->c.failed; i++)
		fair_act(w, prefix[i]);
	w->used = (struct budget){ 0 };
	return 0;
}

/* Rebuild the state at the end of path[0..n). */
static int world_replay(struct world *w, const struct choice *path, int n)
{
	int rv = world_start(w);

	if (rv)
		return rv;
	for (int i = 0; i < n && !w->c.failed; i++)
		if (act(w, path[i]))
			return SR_EINVAL;
	w->depth = n;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Choice strings                                                      */
/* ------------------------------------------------------------------ */

static void path_format(const struct choice *p, int n, char *buf, size_t cap)
{
	size_t off = 0;

	buf[0] = 0;
	for (int i = 0; i < n && off + 8 < cap; i++)
		off += (size_t)snprintf(buf + off, cap - off, "%s%c%u",
					i ? "," : "", p[i].op, p[i].arg);
}

static int path_parse(const char *s, struct choice *p, int cap)
{
	int n = 0;

	while (*s) {
		char *end;
		unsigned long v;

		if (*s == ',' || *s == ' ') {
			s++;
			continue;
		}
		if (n == cap || !strchr("DUXWTCRPQHFS", *s))
			return -1;
		p[n].op = (uint8_t)*s;
		v = strtoul(s + 1, &end, 10);
		if (end == s + 1 || v > 255)
			return -1;
		p[n].arg = (uint8_t)v;
		n++;
		s = end;
	}
	return n;
}

/* ------------------------------------------------------------------ */
/* The visited set                                                     */
/* ------------------------------------------------------------------ */

static uint64_t *seen;
static size_t seen_cap, seen_n;

/* 1 if h is new (and records it). */
static int seen_add(uint64_t h)
{
	size_t mask, i;

	if ((seen_n + 1) * 2 > seen_cap) {
		uint64_t *old = seen;
		size_t ocap = seen_cap;

		seen_cap = ocap ? ocap * 2 : 1u << 16;
		seen = calloc(seen_cap, sizeof(*seen));
		if (!seen)
			abort();
		seen_n = 0;
		for (size_t j = 0; j < ocap; j++)
			if (old[j])
				seen_add(old[j]);
		free(old);
	}
	mask = seen_cap - 1;
	for (i = h & mask; seen[i]; i = (i + 1) & mask)
		if (seen[i] == h)
			return 0;
	seen[i] = h;
	seen_n++;
	return 1;
}

/* ------------------------------------------------------------------ */
/* The search                                                          */
/* ------------------------------------------------------------------ */

/* A level: n paths of `len` choices each, stored back to back. */
struct level {
	struct choice *v;
	size_t n, cap;
	int len;
};

static void level_push(struct level *l, const struct choice *p,
		       struct choice last)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 1024;
		l->v = realloc(l->v, l->cap * (size_t)l->len * sizeof(*l->v));
		if (!l->v)
			abort();
	}
	memcpy(l->v + l->n * (size_t)l->len, p,
	       (size_t)(l->len - 1) * sizeof(*p));
	l->v[l->n * (size_t)l->len + (size_t)l->len - 1] = last;
	l->n++;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void print_cmd(const char *choices)
{
	printf("replay: build/test/explore/explore --start %s --prevote %d "
	       "--checkquorum %d --snapshot %" PRIu64 " --settle-props %d "
	       "--chunk %u --defer %d --delays %d --reboot %d --heal %d "
	       "--safety-only %d --replay %s\n",
	       X.start_leader ? "leader" : "fresh", X.pre_vote, X.check_quorum,
	       X.snapshot_threshold, X.settle_props, X.chunk, X.defer, X.delays,
	       X.reboot, X.heal, X.safety_only, choices);
}

struct stats {
	uint64_t paths, steps, heals;
	int depth_done;
	size_t last_level_n, last_level_done;
};

/* Report a violation found on path p (n choices). */
static void report(struct world *w, const struct choice *p, int n)
{
	char buf[MAX_DEPTH * 5 + 8];

	path_format(p, n, buf, sizeof(buf));
	printf("VIOLATION at depth %d: %s\n", n, w->c.why);
	printf("choices: %s\n", buf);
	print_cmd(buf);
}

static int search(struct stats *s)
{
	struct level cur = { 0 }, next = { 0 };
	struct choice ch[MAX_CHOICES], path[MAX_DEPTH + 1];
	struct world w;
	double t0 = now_s();
	int found = 0;

	/* the root */
	if (world_replay(&w, NULL, 0) || w.c.failed) {
		printf("the starting state fails: %s\n", w.c.why);
		world_free(&w);
		return -1;
	}
	seen_add(state_hash(&w));
	world_free(&w);
	cur.len = 0;
	cur.n = 1;
	s->depth_done = 0;
	for (int d = 0; d < X.depth && cur.n && !found; d++) {
		int last = d + 1 == X.depth;

		next.len = d + 1;
		next.n = 0;
		s->last_level_done = 0;
		for (size_t pi = 0; pi < cur.n && !found; pi++) {
			const struct choice *p = cur.v ? cur.v + pi * (size_t)d
						       : path;
			int nc;

			if (now_s() - t0 > X.seconds)
				goto out;
			world_replay(&w, p, d);
			nc = enabled(&w, ch);
			for (int ci = 0; ci < nc && !found; ci++) {
				if (ci)
					world_replay(&w, p, d);
				memcpy(path, p, (size_t)d * sizeof(*p));
				path[d] = ch[ci];
				act(&w, ch[ci]);
				s->paths++;
				s->steps += w.c.steps;
				if (!w.c.failed && seen_add(state_hash(&w))) {
					level_push(&next, p, ch[ci]);
					if (X.heal &&
					    (last || d + 1 == X.heal_depth)) {
						s->heals++;
						heal(&w);
					}
				}
				if (w.c.failed) {
					report(&w, path, d + 1);
					found = 1;
				}
				world_free(&w);
			}
			if (nc == 0)
				world_free(&w);
			s->last_level_done = pi + 1;
		}
		if (!found) {
			s->depth_done = d + 1;
			s->last_level_n = next.n;
			if (X.verbose)
				printf("depth %d: %zu new states, %zu seen, "
				       "%" PRIu64 " paths, %.1f s\n",
				       d + 1, next.n, seen_n, s->paths,
				       now_s() - t0);
			fflush(stdout);
		}
		free(cur.v);
		cur = next;
		next = (struct level){ 0 };
	}
out:
	free(cur.v);
	free(next.v);
	return found;
}

/*
 * --delays K: the fair schedule with at most K other choices.  A level is
 * the number of choices that were not the fair schedule's step (a
 * deviation, a fault or a client request); within a level the fair
 * schedule runs on until it reaches a state seen before or the depth
 * bound.  Every state on the way branches into the next level.  The hash
 * leaves out the leader's heartbeat sequence numbers here, so that a
 * fair run that only repeats heartbeat rounds ends at once.
 */
struct plist {
	struct choice *v; /* paths back to back, each after its length */
	size_t n, used, cap;
};

static void plist_push(struct plist *l, const struct choice *p, int n,
		       struct choice last)
{
	if (l->used + (size_t)n + 2 > l->cap) {
		l->cap = l->cap ? l->cap * 2 : 1 << 16;
		l->v = realloc(l->v, l->cap * sizeof(*l->v));
		if (!l->v)
			abort();
	}
	l->v[l->used].op = (uint8_t)((n + 1) & 0xff);
	l->v[l->used].arg = 0;
	memcpy(l->v + l->used + 1, p, (size_t)n * sizeof(*p));
	l->v[l->used + 1 + (size_t)n] = last;
	l->used += (size_t)n + 2;
	l->n++;
}

static int search_delays(struct stats *s)
{
	struct plist cur = { 0 }, next = { 0 };
	struct choice ch[MAX_CHOICES], path[MAX_DEPTH + 1];
	struct world w;
	double t0 = now_s();
	int found = 0;

	cur.cap = 1 << 16; /* the root: an empty path */
	cur.v = calloc(cur.cap, sizeof(*cur.v));
	if (!cur.v)
		abort();
	cur.used = cur.n = 1;
	for (int lv = 0; lv <= X.delays && cur.n && !found; lv++) {
		size_t off = 0;

		s->last_level_done = 0;
		for (size_t pi = 0; pi < cur.n && !found; pi++) {
			int d = cur.v[off].op;

			memcpy(path, cur.v + off + 1,
			       (size_t)d * sizeof(*path));
			off += (size_t)d + 1;
			if (now_s() - t0 > X.seconds)
				goto out;
			s->paths++;
			world_replay(&w, path, d);
			if (w.c.failed) {
				report(&w, path, d);
				found = 1;
			} else if (!seen_add(state_hash(&w))) {
				world_free(&w);
				continue;
			}
			/* the fair run from here, branching at every state */
			while (!found) {
				int nc = enabled(&w, ch);
				struct choice f = fair_step(&w, 1);

				for (int ci = 0; ci < nc; ci++)
					if (!same(ch[ci], f) &&
					    lv + 1 <= X.delays && d < X.depth)
						plist_push(&next, path, d,
							   ch[ci]);
				if (!f.op || d >= X.depth)
					break;
				path[d++] = f;
				act(&w, f);
				if (w.c.failed) {
					report(&w, path, d);
					found = 1;
				} else if (!seen_add(state_hash(&w))) {
					break;
				}
			}
			if (!found && X.heal && lv == X.delays) {
				s->heals++;
				if (heal(&w)) {
					report(&w, path, d);
					found = 1;
				}
			}
			s->steps += w.c.steps;
			world_free(&w);
			s->last_level_done = pi + 1;
		}
		if (!found) {
			s->depth_done = lv;
			if (X.verbose)
				printf("deviations %d: %zu paths, %zu states "
				       "seen, %.1f s\n",
				       lv, cur.n, seen_n, now_s() - t0);
			fflush(stdout);
		}
		free(cur.v);
		cur = next;
		next = (struct plist){ 0 };
	}
out:
	free(cur.v);
	free(next.v);
	return found;
}

/* ------------------------------------------------------------------ */
/* Replay and main                                                     */
/* ------------------------------------------------------------------ */

static int replay(const char *s)
{
	struct choice p[MAX_DEPTH * 4];
	struct world w;
	int n = path_parse(s, p, (int)(sizeof(p) / sizeof(p[0]))), rv;

	if (n < 0) {
		fprintf(stderr, "bad choice string: %s\n", s);
		return 2;
	}
	if (world_start(&w)) {
		world_free(&w);
		return 2;
	}
	w.c.trace = stdout;
	sim_trace(&w.c, -1, "---- starting state (after %d fixed steps)",
		  prefix_n > 0 ? prefix_n : 0);
	for (int i = 0; i < n && !w.c.failed; i++) {
		sim_trace(&w.c, -1, "---- choice %d: %c%u", i + 1, p[i].op,
			  p[i].arg);
		if (act(&w, p[i])) {
			printf("choice %d (%c%u) is not enabled here\n", i + 1,
			       p[i].op, p[i].arg);
			world_free(&w);
			return 2;
		}
	}
	if (!w.c.failed && X.heal) {
		sim_trace(&w.c, -1, "---- healing");
		heal(&w);
	}
	rv = w.c.failed;
	printf("%s\n", rv ? w.c.why : "no violation");
	world_free(&w);
	printf("%d passed, %d failed\n", !rv, rv);
	return rv;
}

/* --park append,read_index_resp,...: by sr_msg_type_name(), or "all" */
static uint32_t park_parse(const char *v)
{
	uint32_t mask = 0;

	if (!strcmp(v, "all"))
		return ~0u;
	for (uint32_t t = 1; t <= SR_MSG_TYPE_MAX; t++) {
		const char *name = sr_msg_type_name(t), *p = v;
		size_t l = strlen(name);

		while ((p = strstr(p, name))) {
			if ((p == v || p[-1] == ',') &&
			    (p[l] == 0 || p[l] == ','))
				mask |= 1u << t;
			p += l;
		}
	}
	return mask;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: explore [options] [--replay CHOICES]\n"
		"  --seconds S        wall-time budget (60)\n"
		"  --depth D          depth bound (64)\n"
		"  --start leader|fresh   starting state (leader)\n"
		"  --crashes N --proposals N --reads N --dups N --drops N\n"
		"  --elections N --heartbeats N   budgets (1 2 2 0 0 1 2)\n"
		"  --delays K         fair schedule with K other choices\n"
		"  --devs LETTERS     deviations allowed with --delays "
		"(DHTWXU)\n"
		"  --park TYPES       message types that may be parked (all)\n"
		"  --at-rest 0|1      faults and clients only at rest (1)\n"
		"  --snapshot N --chunk BYTES --defer 0|1   snapshots\n"
		"  --prevote 0|1 --checkquorum 0|1 --reboot 0|1\n"
		"  --settle-props N   writes committed before the search\n"
		"  --heal 0|1 --heal-ms MS --heal-depth D   liveness checks\n"
		"  --safety-only 0|1  end-to-end properties only\n"
		"  --expect-fail --verbose\n");
}

int main(int argc, char **argv)
{
	struct stats s = { 0 };
	double t0;
	int rv;

	X.start_leader = 1;
	X.depth = MAX_DEPTH;
	X.seconds = 60;
	X.b = (struct budget){ .crashes = 1,
			       .proposals = 2,
			       .reads = 2,
			       .dups = 0,
			       .drops = 0,
			       .elections = 1,
			       .heartbeats = 2 };
	X.pre_vote = 1;
	X.check_quorum = 1;
	X.snapshot_threshold = 0;
	X.heal = 1;
	X.reboot = 1;
	X.heal_depth = 4;
	X.delays = -1;
	X.at_rest = 1;
	X.park_types = ~0u;
	X.devs = "DHTWXU";
	X.heal_ms = 2000;
	X.settle_props = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		int has = 1;

#define NUM(name, dst) else if (!strcmp(a, name) && v)(dst) = atoi(v)
		if (!strcmp(a, "--verbose") || !strcmp(a, "-v"))
			X.verbose = 1, has = 0;
		else if (!strcmp(a, "--expect-fail"))
			X.expect_fail = 1, has = 0;
		else if (!strcmp(a, "--seconds") && v)
			X.seconds = atof(v);
		else if (!strcmp(a, "--start") && v)
			X.start_leader = strcmp(v, "fresh") != 0;
		else if (!strcmp(a, "--replay") && v)
			X.replay = v;
		else if (!strcmp(a, "--snapshot") && v)
			X.snapshot_threshold = strtoull(v, NULL, 10);
		else if (!strcmp(a, "--devs") && v)
			X.devs = v;
		else if (!strcmp(a, "--park") && v)
			X.park_types = park_parse(v);
		else if (!strcmp(a, "--heal-ms") && v)
			X.heal_ms = strtoull(v, NULL, 10);
		NUM("--depth", X.depth);
		NUM("--crashes", X.b.crashes);
		NUM("--proposals", X.b.proposals);
		NUM("--reads", X.b.reads);
		NUM("--dups", X.b.dups);
		NUM("--drops", X.b.drops);
		NUM("--elections", X.b.elections);
		NUM("--heartbeats", X.b.heartbeats);
		NUM("--prevote", X.pre_vote);
		NUM("--checkquorum", X.check_quorum);
		NUM("--settle-props", X.settle_props);
		NUM("--heal", X.heal);
		NUM("--reboot", X.reboot);
		NUM("--delays", X.delays);
		NUM("--at-rest", X.at_rest);
		NUM("--chunk", X.chunk);
		NUM("--defer", X.defer);
		NUM("--safety-only", X.safety_only);
		NUM("--heal-depth", X.heal_depth);
		else
		{
			usage();
			return 2;
		}
#undef NUM
		i += has;
	}
	if (X.depth > MAX_DEPTH)
		X.depth = MAX_DEPTH;
	if (X.replay)
		return replay(X.replay);

	printf("explore: 3 nodes, start %s, prevote %d, checkquorum %d, "
	       "snapshot threshold %" PRIu64 "; budgets: crashes %d, "
	       "proposals %d, reads %d, dups %d, drops %d, elections %d, "
	       "heartbeats %d; heal %d; depth <= %d, %.0f s\n",
	       X.start_leader ? "leader" : "fresh", X.pre_vote, X.check_quorum,
	       X.snapshot_threshold, X.b.crashes, X.b.proposals, X.b.reads,
	       X.b.dups, X.b.drops, X.b.elections, X.b.heartbeats, X.heal,
	       X.depth, X.seconds);
	t0 = now_s();
	rv = X.delays >= 0 ? search_delays(&s) : search(&s);
	printf("%s %d complete (%zu of the next level's paths done), "
	       "%zu distinct states, %" PRIu64 " paths, %" PRIu64
	       " engine steps, %" PRIu64 " heal checks, %.1f s (%.1f s cpu)\n",
	       X.delays >= 0 ? "deviations" : "depth", s.depth_done,
	       s.last_level_done, seen_n, s.paths, s.steps, s.heals,
	       now_s() - t0, (double)clock() / CLOCKS_PER_SEC);
	free(seen);
	if (rv < 0)
		rv = 1;
	if (X.expect_fail) {
		printf("%s\n", rv ? "violation found, as expected"
				  : "expected a violation, found none");
		rv = !rv;
	}
	printf("%d passed, %d failed\n", !rv, rv);
	return rv;
}

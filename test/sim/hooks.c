/*
 * hooks.c — what the engines see of the simulated world: the transport
 * (send() copies the message and queues it on the simulated network), the
 * storage vtable (a wrapper of sr_mem that reports every operation to the
 * checker and turns each append into a completion event), the state
 * machine and the host callbacks.  Also message copying and describing.
 *
 * Nothing here delivers anything: every callback only records or queues,
 * so the engine is never re-entered from inside one of its own calls.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "groups.h"

/* ------------------------------------------------------------------ */
/* Messages                                                            */
/* ------------------------------------------------------------------ */

struct sim_msg *sim_msg_copy(const sr_msg *m)
{
	size_t extra = 0;
	struct sim_msg *sm;
	unsigned char *p;

	if (m->type == SR_MSG_APPEND) {
		extra = m->u.append.n_entries * sizeof(sr_entry);
		for (uint32_t i = 0; i < m->u.append.n_entries; i++)
			extra += m->u.append.entries[i].len;
	} else if (m->type == SR_MSG_SNAPSHOT) {
		extra = (size_t)m->u.snapshot.conf_len + m->u.snapshot.len;
	}
	sm = malloc(sizeof(*sm) + extra);
	if (!sm)
		abort(); /* test harness: out of memory is fatal */
	memset(sm, 0, sizeof(*sm));
	sm->m = *m;
	p = (unsigned char *)(sm + 1);
	if (m->type == SR_MSG_APPEND && m->u.append.n_entries) {
		sr_entry *ents = (sr_entry *)p;

		p += m->u.append.n_entries * sizeof(sr_entry);
		for (uint32_t i = 0; i < m->u.append.n_entries; i++) {
			ents[i] = m->u.append.entries[i];
			if (ents[i].len) {
				memcpy(p, ents[i].data, ents[i].len);
				ents[i].data = p;
				p += ents[i].len;
			} else {
				ents[i].data = NULL;
			}
		}
		sm->m.u.append.entries = ents;
	} else if (m->type == SR_MSG_SNAPSHOT) {
		if (m->u.snapshot.conf_len)
			memcpy(p, m->u.snapshot.conf, m->u.snapshot.conf_len);
		sm->m.u.snapshot.conf = p;
		p += m->u.snapshot.conf_len;
		if (m->u.snapshot.len)
			memcpy(p, m->u.snapshot.data, m->u.snapshot.len);
		sm->m.u.snapshot.data = p;
	}
	return sm;
}

void sim_msg_describe(const sr_msg *m, char *buf, size_t cap)
{
	const char *name = sr_msg_type_name(m->type);
	int off = snprintf(buf, cap, "%s n%" PRIu64 "->n%" PRIu64 " t%" PRIu64,
			   name, m->from, m->to, m->term);

	if (off < 0 || (size_t)off >= cap)
		return;
	buf += off;
	cap -= (size_t)off;
	switch (m->type) {
	case SR_MSG_VOTE:
		snprintf(buf, cap, "%s last %" PRIu64 "/t%" PRIu64 "%s",
			 m->u.vote.pre ? " pre" : "", m->u.vote.last_index,
			 m->u.vote.last_term,
			 m->u.vote.transfer ? " transfer" : "");
		break;
	case SR_MSG_VOTE_RESP:
		snprintf(buf, cap, "%s %s", m->u.vote_resp.pre ? " pre" : "",
			 m->u.vote_resp.granted ? "granted" : "denied");
		break;
	case SR_MSG_APPEND: {
		const sr_msg_append *a = &m->u.append;
		int k = snprintf(buf, cap,
				 " prev %" PRIu64 "/t%" PRIu64
				 " n=%u commit %" PRIu64 " seq %" PRIu64,
				 a->prev_index, a->prev_term, a->n_entries,
				 a->commit, a->seq);

		if (a->n_entries && k > 0 && (size_t)k < cap)
			snprintf(buf + k, cap - (size_t)k, " last %" PRIu64,
				 a->entries[a->n_entries - 1].index);
		break;
	}
	case SR_MSG_APPEND_RESP: {
		const sr_msg_append_resp *r = &m->u.append_resp;
		snprintf(buf, cap,
			 " %s index %" PRIu64 " hint %" PRIu64 "/t%" PRIu64
			 " seq %" PRIu64,
			 r->success ? "ok" : "reject", r->index, r->hint_index,
			 r->hint_term, r->seq);
		break;
	}
	case SR_MSG_SNAPSHOT:
		snprintf(buf, cap,
			 " last %" PRIu64 "/t%" PRIu64 " off %" PRIu64 " len "
			 "%u%s",
			 m->u.snapshot.last_index, m->u.snapshot.last_term,
			 m->u.snapshot.offset, m->u.snapshot.len,
			 m->u.snapshot.done ? " done" : "");
		break;
	case SR_MSG_SNAPSHOT_RESP:
		snprintf(buf, cap, " last %" PRIu64 " next %" PRIu64 "%s%s",
			 m->u.snapshot_resp.last_index,
			 m->u.snapshot_resp.offset,
			 m->u.snapshot_resp.done ? " installed" : "",
			 m->u.snapshot_resp.rejected ? " rejected" : "");
		break;
	default:
		break;
	}
}

/* ------------------------------------------------------------------ */
/* The callbacks the engines see                                       */
/* ------------------------------------------------------------------ */

/*
 * Park a message (cluster.xfaults): responses that a late copy makes
 * dangerous (read index answers, snapshot and append replies) are chosen
 * more often.  It waits for the receiver's or the sender's next restart,
 * or for a higher term anywhere (at most 3 s), and half the time the node
 * it waits for is made to crash soon, so that the rare pair of events
 * "delayed across a restart" happens.  1 if parked.
 */
static int sim_park(struct cluster *c, const sr_msg *m, const char *desc)
{
	int to = (int)m->to - 1, from = (int)m->from - 1;
	uint32_t rate = m->type == SR_MSG_READ_INDEX_RESP ? 150
			: m->type == SR_MSG_SNAPSHOT_RESP ? 60
			: m->type == SR_MSG_APPEND_RESP	  ? 4
			: m->type == SR_MSG_READ_INDEX	  ? 40
							  : 2;
	struct sim_parked *p;
	sr_term top = 0;

	if (c->n_parked == SIM_MAX_PARKED || sim_rand(c) % 1000 >= rate)
		return 0;
	for (int i = 0; i < c->n; i++)
		if (c->nodes[i].st.term > top)
			top = c->nodes[i].st.term;
	p = &c->parked[c->n_parked++];
	p->sm = sim_msg_copy(m);
	p->to = to;
	p->from = from;
	p->cond = (int)(sim_rand(c) % 3);
	p->inc_to = c->nodes[to].incarnation;
	p->inc_from = c->nodes[from].incarnation;
	p->term = top;
	p->deadline = c->now + 3000;
	c->n_parked_total++;
	sim_trace(c, from, "send %s (parked until %s)", desc,
		  p->cond == PARK_RECEIVER_RESTART ? "the receiver restarts"
		  : p->cond == PARK_SENDER_RESTART ? "the sender restarts"
						   : "a term change");
	if (p->cond != PARK_TERM_CHANGE && sim_rand(c) % 2) {
		int victim = p->cond == PARK_RECEIVER_RESTART ? to : from;

		if (!c->crash_at[victim])
			c->crash_at[victim] = c->now + sim_rand_range(c, 1, 20);
	}
	return 1;
}

static int net_send(void *ctx, const sr_msg *msg)
{
	struct sim_node *sn = ctx;
	struct cluster *c = sn->c, *dc = c;
	int to = (int)msg->to - 1, from = sn->slot;
	sr_msg routed = *msg;
	const sr_msg *m = &routed;
	char desc[200];

	c->n_sent++;
	check_send(sn, msg);
	/* many groups: one link per pair of processes, demultiplexed by
	 * group id (dc: the group whose engine receives it) */
	if (c->world)
		dc = world_route(c, &routed);
	sim_msg_describe(m, desc, sizeof(desc));
	if (to < 0 || to >= c->n || to == from) {
		sim_fail(c, "n%d sends to unknown node %" PRIu64, from + 1,
			 m->to);
		return SR_EINVAL;
	}
	if (c->nodes[to].external) {
		sim_trace(c, from, "send %s (held)", desc);
		sim_held_push(dc, sim_msg_copy(m));
		return 0;
	}
	if (c->filter) {
		int d = c->filter(c, m, c->filter_ctx);

		if (d == SIM_DROP) {
			sim_trace(c, from, "send %s (dropped by test)", desc);
			c->n_lost++;
			return 0;
		}
		if (d == SIM_HOLD) {
			sim_trace(c, from, "send %s (held by test)", desc);
			sim_held_push(c, sim_msg_copy(m));
			return 0;
		}
	}
	if (!c->netp->link[from][to] ||
	    (c->netp->loss && sim_rand(c) % 1000 < c->netp->loss)) {
		sim_trace(c, from, "send %s (lost%s)", desc,
			  c->netp->link[from][to] ? "" : ": partitioned");
		c->n_lost++;
		return 0;
	}
	if (c->xfaults && sim_park(dc, m, desc))
		return 0;
	/* a durability point: the sender may crash right after it */
	if (c->xfaults && m->type == SR_MSG_SNAPSHOT_RESP &&
	    m->u.snapshot_resp.done && !c->crash_at[from] &&
	    sim_rand(c) % 4 == 0)
		c->crash_at[from] = c->now;
	if (dc != c)
		sim_trace(c, from, "send %s (BUG: routed to group %d)", desc,
			  dc->group_index);
	else
		sim_trace(c, from, "send %s", desc);
	sim_schedule_msg(dc, to, sim_msg_copy(m),
			 c->now + sim_rand_range(c, c->netp->delay_min,
						 c->netp->delay_max));
	if (c->netp->dup && sim_rand(c) % 1000 < c->netp->dup) {
		struct sim_msg *d = sim_msg_copy(m);

		d->dup = 1;
		c->n_dup++;
		sim_schedule_msg(
			dc, to, d,
			c->now + sim_rand_range(c, c->netp->delay_min,
						c->netp->delay_max * 2 + 1));
	}
	return 0;
}

void sim_disk_done(void *ctx, uint64_t token, int status)
{
	struct sim_node *sn = ctx;

	/* the shared WAL reported it already (an injected bug) */
	if (sn->c->world && sn->c->world->suppress)
		return;
	if (sn->c->world && sn->c->world->syncing &&
	    token != sn->c->world->expect)
		sim_fail(sn->c,
			 "harness: n%d's store completes token %" PRIu64
			 " for the WAL record of token %" PRIu64,
			 sn->slot + 1, token, sn->c->world->expect);
	if (sn->node)
		sr_node_storage_done(sn->node, token, status);
}

static int st_load(void *ctx, sr_durable *out)
{
	struct sim_node *sn = ctx;
	int rv = sr_mem_ops()->load(sn->mem, out);

	/* cluster_corrupt: report the loss as the WAL does, until an entry
	 * past it (appended after a leader's consistency check) or a
	 * snapshot covering it is durable */
	if (rv || !sn->lost_last)
		return rv;
	if (out->last_index > sn->lost_last ||
	    out->snapshot_index >= sn->lost_last) {
		sim_trace(sn->c, sn->slot, "repair of ..%" PRIu64 " complete",
			  sn->lost_last);
		sn->lost_last = 0;
		sn->lost_term = 0;
		return 0;
	}
	out->lost_first = out->last_index < sn->lost_last ? out->last_index + 1
							  : sn->lost_last;
	out->lost_last = sn->lost_last;
	out->lost_term = sn->lost_term;
	return 0;
}

static int st_set_hard_state(void *ctx, sr_term term, sr_id vote)
{
	struct sim_node *sn = ctx;
	int rv;

	check_hard_state(sn, term, vote);
	rv = sr_mem_ops()->set_hard_state(sn->mem, term, vote);
	sim_trace(sn->c, sn->slot, "hard state t%" PRIu64 " vote %" PRIu64 "%s",
		  term, vote, rv ? " FAILED" : "");
	return rv;
}

static int st_append(void *ctx, uint64_t token, const sr_entry *e, size_t n)
{
	struct sim_node *sn = ctx;
	struct cluster *c = sn->c;
	int rv = sr_mem_ops()->append(sn->mem, token, e, n);

	if (rv) {
		sim_trace(c, sn->slot, "store append failed: %s",
			  sr_strerror(rv));
		return rv;
	}
	if (n)
		sim_trace(c, sn->slot,
			  "store append %" PRIu64 "..%" PRIu64 " t%" PRIu64
			  " (token %" PRIu64 ")",
			  e[0].index, e[n - 1].index, e[n - 1].term, token);
	check_append(sn, e, n);
	if (c->world) {
		world_wal_add(sn, WAL_APPEND, token, n);
	} else if (c->o.async_disk) {
		struct sim_ev ev = { .kind = EV_DISK, .slot = sn->slot };

		ev.incarnation = sn->incarnation;
		ev.at = c->now +
			sim_rand_range(c, c->o.disk_min_ms, c->o.disk_max_ms);
		sim_push_event(c, ev);
	}
	return 0;
}

static int st_truncate(void *ctx, sr_index from)
{
	struct sim_node *sn = ctx;
	sr_mem_info before, after;
	int rv;

	sim_trace(sn->c, sn->slot, "store truncate from %" PRIu64, from);
	check_truncate(sn, from);
	sr_mem_get_info(sn->mem, &before);
	rv = sr_mem_ops()->truncate(sn->mem, from);
	sr_mem_get_info(sn->mem, &after);
	if (sn->c->world && after.pending_ops > before.pending_ops)
		world_wal_add(sn, WAL_OTHER, 0, 0);
	return rv;
}

static int st_read(void *ctx, sr_index lo, size_t max_n, size_t max_bytes,
		   sr_entry *out, size_t *n_out)
{
	struct sim_node *sn = ctx;

	return sr_mem_ops()->read(sn->mem, lo, max_n, max_bytes, out, n_out);
}

static int st_compact(void *ctx, sr_index upto)
{
	struct sim_node *sn = ctx;
	sr_mem_info before, after;
	int rv;

	sr_mem_get_info(sn->mem, &before);
	rv = sr_mem_ops()->compact(sn->mem, upto);
	sr_mem_get_info(sn->mem, &after);
	if (sn->c->world && after.pending_ops > before.pending_ops)
		world_wal_add(sn, WAL_OTHER, 0, 0);

	sim_trace(sn->c, sn->slot, "store compact up to %" PRIu64 "%s", upto,
		  rv ? " FAILED" : "");
	if (rv == 0)
		check_compact(sn, upto);
	return rv;
}

static int st_snap_begin(void *ctx, sr_index i, sr_term t,
			 const sr_membership *conf)
{
	struct sim_node *sn = ctx;

	return sr_mem_ops()->snapshot_begin(sn->mem, i, t, conf);
}

static int st_snap_write(void *ctx, uint64_t off, const void *d, size_t len)
{
	struct sim_node *sn = ctx;

	return sr_mem_ops()->snapshot_write(sn->mem, off, d, len);
}

static int st_snap_finish(void *ctx, int commit)
{
	struct sim_node *sn = ctx;

	return sr_mem_ops()->snapshot_finish(sn->mem, commit);
}

static int st_snap_read(void *ctx, uint64_t off, void *buf, size_t len,
			size_t *n_out)
{
	struct sim_node *sn = ctx;

	return sr_mem_ops()->snapshot_read(sn->mem, off, buf, len, n_out);
}

/* The bytes and term of an entry, for the prefetch checks. */
static uint64_t hint_hash(const sr_entry *e)
{
	const unsigned char *p = e->data;
	uint64_t h = 1469598103934665603ull ^ e->term;

	for (uint32_t i = 0; i < e->len; i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return h;
}

/* The hint must hand normal entries that are committed, in runs of at
 * most SR_FSM_PREFETCH_MAX, after the previous run was applied, and
 * exactly those entries must be applied next (fsm_apply). */
static void fsm_prefetch(void *ctx, const sr_entry *e, size_t n)
{
	struct sim_node *sn = ctx;
	struct cluster *c = sn->c;
	sr_status st;

	sr_node_status(sn->node, &st);
	if (n < 1 || n > SR_FSM_PREFETCH_MAX || sn->hint_next != sn->hint_end)
		sim_fail(c,
			 "n%d hint of %zu entries at %" PRIu64 " (%" PRIu64
			 " of the last one not applied)",
			 sn->slot + 1, n, n ? e[0].index : 0,
			 sn->hint_end - sn->hint_next);
	if (c->failed)
		return;
	for (size_t k = 0; k < n; k++) {
		if (e[k].type != SR_ENTRY_NORMAL ||
		    e[k].index != e[0].index + k ||
		    e[k].index > st.commit_index ||
		    e[k].index <= sn->applied_seen)
			sim_fail(c,
				 "n%d hints entry %" PRIu64 " (type %u; "
				 "applied %" PRIu64 ", commit %" PRIu64 ")",
				 sn->slot + 1, e[k].index, e[k].type,
				 sn->applied_seen, st.commit_index);
		sn->hint_h[k] = hint_hash(&e[k]);
	}
	sn->hint_first = sn->hint_next = e[0].index;
	sn->hint_end = e[0].index + n;
}

static int fsm_apply(void *ctx, const sr_entry *e, void **result)
{
	struct sim_node *sn = ctx;
	struct cluster *c = sn->c;

	*result = NULL;
	if (c->fsm.prefetch && !c->failed) {
		if (sn->hint_next >= sn->hint_end ||
		    e->index != sn->hint_next ||
		    sn->hint_h[e->index - sn->hint_first] != hint_hash(e))
			sim_fail(c,
				 "n%d applies %" PRIu64 " which is not the "
				 "next hinted entry (%" PRIu64 " of [%" PRIu64
				 ", %" PRIu64 "))",
				 sn->slot + 1, e->index, sn->hint_next,
				 sn->hint_first, sn->hint_end);
		else
			sn->hint_next++;
	}
	check_apply(sn, e);
	return 0;
}

/* The state machine's snapshot: SIM_SNAP_BYTES (index, its own state,
 * the value of every key). */
static void fsm_encode(const struct sim_node *sn, sr_index index,
		       unsigned char *buf)
{
	uint64_t v[SIM_SNAP_BYTES / 8] = { index, sn->fsm.index, sn->fsm.h,
					   sn->fsm.count };

	for (int k = 0; k < SIM_KEYS; k++)
		v[4 + k] = sn->fsm.kv[k];
	memcpy(buf, v, sizeof(v));
}

/* Hand snapshot bytes to the engine in two pieces. */
void sim_snapshot_give(struct sim_node *sn, const unsigned char *buf)
{
	if (sr_node_snapshot_write(sn->node, buf, 13) == 0 &&
	    sr_node_snapshot_write(sn->node, buf + 13, SIM_SNAP_BYTES - 13) ==
		    0)
		sr_node_snapshot_done(sn->node, 0);
}

static int fsm_snapshot(void *ctx, sr_index index, sr_term term)
{
	struct sim_node *sn = ctx;
	struct cluster *c = sn->c;
	unsigned char buf[SIM_SNAP_BYTES];

	c->n_snapshots++;
	sim_trace(c, sn->slot, "snapshot at %" PRIu64 "/t%" PRIu64 "%s", index,
		  term, c->o.snapshot_defer ? " (deferred)" : "");
	if (index < sn->applied_seen || sn->fsm.index > index)
		sim_fail(c,
			 "n%d asked for a snapshot at %" PRIu64 " after "
			 "applying %" PRIu64,
			 sn->slot + 1, index, sn->applied_seen);
	fsm_encode(sn, index, buf);
	if (!c->o.snapshot_defer) {
		sim_snapshot_give(sn, buf);
	} else {
		struct sim_ev ev = { .kind = EV_SNAP, .slot = sn->slot };

		memcpy(sn->snap_buf, buf, sizeof(buf));
		ev.incarnation = sn->incarnation;
		ev.at = c->now + sim_rand_range(c, 0, 30);
		sim_push_event(c, ev);
	}
	return 0;
}

static int fsm_restore(void *ctx, sr_index index, sr_term term)
{
	struct sim_node *sn = ctx;
	unsigned char buf[2 * SIM_SNAP_BYTES];
	size_t total = 0, n = 0;
	int rv;

	sn->c->n_restores++;
	sim_trace(sn->c, sn->slot, "restore snapshot %" PRIu64 "/t%" PRIu64,
		  index, term);
	do {
		rv = sr_node_snapshot_read(sn->node, total, buf + total,
					   sizeof(buf) - total, &n);
		total += n;
	} while (rv == 0 && n && total < sizeof(buf));
	if (rv) {
		sim_fail(sn->c, "n%d cannot read its snapshot: %s",
			 sn->slot + 1, sr_strerror(rv));
		return rv;
	}
	check_restore(sn, index, buf, total);
	return 0;
}

static void host_done(void *ctx, void *cookie, int status, sr_index index,
		      void *result)
{
	struct sim_node *sn = ctx;

	(void)result; /* the fsm never sets one */
	sim_trace(sn->c, sn->slot, "done #%" PRIu64 " %s index %" PRIu64,
		  (uint64_t)(uintptr_t)cookie,
		  status ? sr_strerror(status) : "ok", index);
	check_done(sn, (uint64_t)(uintptr_t)cookie, status, index);
}

static void host_read_done(void *ctx, void *cookie, int status, sr_index index)
{
	struct sim_node *sn = ctx;

	sim_trace(sn->c, sn->slot, "read #%" PRIu64 " done: %s index %" PRIu64,
		  (uint64_t)(uintptr_t)cookie,
		  status ? sr_strerror(status) : "ok", index);
	check_read_done(sn, (uint64_t)(uintptr_t)cookie, status, index);
}

static void host_conf(void *ctx, const sr_membership *conf)
{
	struct sim_node *sn = ctx;
	static const char *const names[] = { "?", "", "(learner)",
					     "(removed)" };
	static const char *const next[] = { "?", "voter", "learner",
					    "removed" };
	char buf[320];
	size_t off = 0;

	buf[0] = 0;
	for (uint32_t i = 0; i < conf->n && off < sizeof(buf); i++) {
		const sr_member *m = &conf->members[i];
		const char *r = names[m->role <= 3 ? m->role : 0];

		off += (size_t)snprintf(buf + off, sizeof(buf) - off,
					" n%" PRIu64 "%s", m->id, r);
		if (m->new_role && off < sizeof(buf)) /* joint: -> C_new */
			off += (size_t)snprintf(
				buf + off, sizeof(buf) - off, "->%s",
				next[m->new_role <= 3 ? m->new_role : 0]);
	}
	sim_trace(sn->c, sn->slot, "configuration:%s", buf);
}

static void host_state(void *ctx, int role, sr_term term, sr_id leader)
{
	struct sim_node *sn = ctx;

	if (role == SR_CANDIDATE)
		sn->c->n_elections++;
	sim_trace(sn->c, sn->slot, "is %s t%" PRIu64 " leader n%" PRIu64,
		  sr_role_name(role), term, leader);
}

static void host_log(void *ctx, int level, const char *line)
{
	struct sim_node *sn = ctx;
	static const char *const lv[] = { "debug", "info", "warn", "error" };

	sim_trace(sn->c, sn->slot, "[%s] %s",
		  level >= 0 && level <= 3 ? lv[level] : "?", line);
}

int sim_node_make(struct cluster *c, struct sim_node *sn)
{
	sr_config cfg;

	sr_config_init(&cfg, sn->id);
	sn->hint_first = sn->hint_next = sn->hint_end = 0;
	cfg.group = c->o.group;
	cfg.election_timeout_ms = c->o.election_ms_of[sn->slot]
					  ? c->o.election_ms_of[sn->slot]
					  : c->o.election_ms;
	cfg.heartbeat_ms = c->o.heartbeat_ms;
	cfg.seed = c->o.seed * 1000003u + sn->id * 7919u + sn->incarnation;
	cfg.pre_vote = c->o.pre_vote;
	cfg.check_quorum = c->o.check_quorum;
	if (c->o.max_inflight_msgs)
		cfg.max_inflight_msgs = c->o.max_inflight_msgs;
	if (c->o.max_inflight_bytes)
		cfg.max_inflight_bytes = c->o.max_inflight_bytes;
	if (c->o.max_msg_entries)
		cfg.max_msg_entries = c->o.max_msg_entries;
	if (c->o.max_msg_bytes)
		cfg.max_msg_bytes = c->o.max_msg_bytes;
	if (c->o.max_uncommitted_bytes)
		cfg.max_uncommitted_bytes = c->o.max_uncommitted_bytes;
	cfg.storage = &c->storage;
	cfg.storage_ctx = sn;
	cfg.fsm = &c->fsm;
	cfg.fsm_ctx = sn;
	cfg.transport = &c->transport;
	cfg.transport_ctx = sn;
	cfg.host.done = host_done;
	cfg.host.state_changed = host_state;
	cfg.host.read_done = host_read_done;
	cfg.host.conf_changed = host_conf;
	cfg.host.log = host_log;
	cfg.host_ctx = sn;
	cfg.log_level = c->o.log_level;
	cfg.snapshot_threshold = c->o.snapshot_threshold;
	if (c->o.snapshot_threshold) {
		cfg.snapshot_trailing = c->o.snapshot_trailing;
		if (c->o.snapshot_chunk_bytes)
			cfg.snapshot_chunk_bytes = c->o.snapshot_chunk_bytes;
	}
	sn->last_tick = 0;
	return sr_node_create(&cfg, &sn->node);
}

void sim_hooks_init(struct cluster *c)
{
	c->storage = (sr_storage_ops){
		st_load,	st_set_hard_state, st_append,	  st_truncate,
		st_read,	st_compact,	   st_snap_begin, st_snap_write,
		st_snap_finish, st_snap_read,
	};
	c->fsm.apply = fsm_apply;
	/* Half the seeds apply with the prefetch hint (the engine then reads
	 * committed entries in runs), half without. */
	if (c->o.seed & 1)
		c->fsm.prefetch = fsm_prefetch;
	if (c->o.snapshot_threshold) {
		c->fsm.snapshot = fsm_snapshot;
		c->fsm.restore = fsm_restore;
	}
	c->transport.send = net_send;
}

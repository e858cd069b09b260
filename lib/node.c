/*
 * node.c — the node's life cycle and public entry points.
 *
 * Each entry point checks its arguments, does its work, and finishes with
 * node_leave(), which processes whatever the work set in motion: store
 * completions delivered from inside a callback, commit advancement,
 * application of committed entries and follower acknowledgements.  Doing
 * this once per call, at the end, keeps callbacks from observing the node
 * mid-change and lets a synchronous store complete inside append().
 *
 * Failure model: a storage error stops the node (role SR_STOPPED); it then
 * refuses proposals, sends nothing and acknowledges nothing more.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <seshat/codec.h>

#include "node.h"

void sr_config_init(sr_config *cfg, sr_id id)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->id = id;
	cfg->election_timeout_ms = 1000;
	cfg->heartbeat_ms = 100;
	cfg->seed = id;
	cfg->pre_vote = 1;
	cfg->check_quorum = 1;
	cfg->max_inflight_msgs = 64;
	cfg->max_inflight_bytes = 8u << 20;
	cfg->max_msg_bytes = 1u << 20;
	cfg->max_msg_entries = 4096;
	cfg->max_uncommitted_bytes = 64u << 20;
	cfg->max_entry_bytes = 16u << 20;
	cfg->cache_entries = 4096;
	cfg->snapshot_threshold = 65536;
	cfg->snapshot_trailing = 4096;
	cfg->snapshot_chunk_bytes = 1u << 20;
	cfg->catchup_entries = 1000;
	cfg->catchup_ms = 0; /* 0: one election timeout */
	cfg->transport_max_payload = SR_FRAME_MAX_DEFAULT;
	cfg->log_level = SR_LOG_INFO;
}

void node_enter(sr_node *n)
{
	n->depth++;
}

/* Deferred work, run once when the outermost entry point returns. */
void node_leave(sr_node *n)
{
	if (n->depth > 1) {
		n->depth--;
		return;
	}
	if (n->backlog)
		persist_retry(n);
	for (int rounds = 0; rounds < 8 && n->role != SR_STOPPED; rounds++) {
		sr_index durable = n->durable, commit = n->commit;
		if (n->ops_dirty)
			persist_process(n);
		if (n->role == SR_LEADER)
			repl_maybe_commit(n);
		else if (n->durable != durable)
			follower_maybe_ack(n, 0);
		apply_committed(n);
		reconf_after_commit(n);
		read_process(n);
		if (n->read_bcast) {
			n->read_bcast = 0;
			repl_broadcast(n, 1);
		}
		snap_process(n);
		if (n->repair_until)
			repair_check(n);
		if (!n->ops_dirty && n->durable == durable &&
		    n->commit == commit)
			break;
	}
	n->depth--;
}

/*
 * A refused configuration names the field and its value in the log hook
 * (there is no node yet, so this formats the line node_log() would).
 */
static int node_config_bad(const sr_config *c, const char *field,
			   unsigned long long value, const char *why)
{
	char line[256];
	if (c->host.log && SR_LOG_ERROR >= c->log_level) {
		snprintf(line, sizeof(line), "raft[%llu] config: %s = %llu: %s",
			 (unsigned long long)c->id, field, value, why);
		c->host.log(c->host_ctx, SR_LOG_ERROR, line);
	}
	return SR_EINVAL;
}

#define CFG_REQUIRE(c, cond, field, value, why)                                \
	do {                                                                   \
		if (!(cond))                                                   \
			return node_config_bad(                                \
				c, field, (unsigned long long)(value), why);   \
	} while (0)

#define CFG_SET(c, ptr, field)                                                 \
	CFG_REQUIRE(c, (ptr) != NULL, field, 0, "required")

/*
 * The largest message the engine can send must fit the transport's frame
 * (sr_config.transport_max_payload): otherwise the first entry that does
 * not fit is retried forever and nothing after it ever commits.  An
 * append carries at most max_msg_entries entries; its data is at most
 * max_msg_bytes plus one entry (a store's read may cross the limit by one
 * entry, and the first entry is always sent), and an entry is at most
 * max_entry_bytes (proposals) or a configuration entry.  A snapshot chunk
 * carries snapshot_chunk_bytes and a configuration.
 */
static int node_check_payload(const sr_config *c)
{
	static const unsigned char dummy[1];
	uint64_t limit = c->transport_max_payload, entry, append, chunk;
	sr_msg m;

	if (limit == 0)
		return 0;
	entry = SR_MAX((uint64_t)c->max_entry_bytes, (uint64_t)CONF_MAX_BYTES);
	memset(&m, 0, sizeof(m));
	m.type = SR_MSG_APPEND;
	append = sr_codec_size(&m) - SR_FRAME_HDR_SIZE +
		 (uint64_t)c->max_msg_entries * SR_WIRE_ENTRY_SIZE +
		 c->max_msg_bytes + entry;
	if (append > limit) {
		char why[160];
		snprintf(why, sizeof(why),
			 "an append (max_msg_bytes %llu + max_entry_bytes "
			 "%llu + %u entry headers) needs %llu bytes",
			 (unsigned long long)c->max_msg_bytes,
			 (unsigned long long)c->max_entry_bytes,
			 c->max_msg_entries, (unsigned long long)append);
		return node_config_bad(c, "transport_max_payload", limit, why);
	}
	m.type = SR_MSG_SNAPSHOT;
	m.u.snapshot.conf = dummy;
	m.u.snapshot.conf_len = CONF_MAX_BYTES;
	m.u.snapshot.data = dummy;
	m.u.snapshot.len = c->snapshot_chunk_bytes;
	chunk = sr_codec_size(&m) - SR_FRAME_HDR_SIZE;
	if (chunk > limit) {
		char why[96];
		snprintf(why, sizeof(why),
			 "a snapshot chunk (snapshot_chunk_bytes %u) needs "
			 "%llu bytes",
			 c->snapshot_chunk_bytes, (unsigned long long)chunk);
		return node_config_bad(c, "transport_max_payload", limit, why);
	}
	return 0;
}

static int node_check_config(const sr_config *c)
{
	const sr_storage_ops *s = c->storage;
	CFG_REQUIRE(c, c->id != 0, "id", c->id, "must be >= 1");
	CFG_SET(c, c->storage, "storage");
	CFG_SET(c, c->fsm, "fsm");
	CFG_SET(c, c->transport, "transport");
	CFG_SET(c, s->load, "storage->load");
	CFG_SET(c, s->set_hard_state, "storage->set_hard_state");
	CFG_SET(c, s->append, "storage->append");
	CFG_SET(c, s->truncate, "storage->truncate");
	CFG_SET(c, s->read, "storage->read");
	CFG_SET(c, c->fsm->apply, "fsm->apply");
	CFG_SET(c, c->transport->send, "transport->send");
	CFG_REQUIRE(c, c->election_timeout_ms != 0, "election_timeout_ms",
		    c->election_timeout_ms, "must be > 0");
	CFG_REQUIRE(c, c->heartbeat_ms != 0, "heartbeat_ms", c->heartbeat_ms,
		    "must be > 0");
	CFG_REQUIRE(c, c->heartbeat_ms < c->election_timeout_ms, "heartbeat_ms",
		    c->heartbeat_ms, "must be below election_timeout_ms");
	CFG_REQUIRE(c, c->max_inflight_msgs != 0, "max_inflight_msgs",
		    c->max_inflight_msgs, "must be > 0");
	CFG_REQUIRE(c, c->max_msg_entries != 0, "max_msg_entries",
		    c->max_msg_entries, "must be > 0");
	CFG_REQUIRE(c, c->max_msg_bytes != 0, "max_msg_bytes", c->max_msg_bytes,
		    "must be > 0");
	CFG_REQUIRE(c, c->max_inflight_bytes != 0, "max_inflight_bytes",
		    c->max_inflight_bytes, "must be > 0");
	CFG_REQUIRE(c, c->snapshot_chunk_bytes != 0, "snapshot_chunk_bytes",
		    c->snapshot_chunk_bytes, "must be > 0");
	return node_check_payload(c);
}

int sr_node_create(const sr_config *cfg, sr_node **out)
{
	sr_node *n;
	int rv;

	if (!out)
		return SR_EINVAL;
	*out = NULL;
	if (!cfg)
		return SR_EINVAL;
	rv = node_check_config(cfg);
	if (rv)
		return rv;
	n = hook_malloc(cfg->alloc, sizeof(*n));
	if (!n)
		return SR_ENOMEM;
	memset(n, 0, sizeof(*n));
	n->cfg = *cfg;
	if (n->cfg.catchup_ms == 0)
		n->cfg.catchup_ms = cfg->election_timeout_ms;
	n->alloc = cfg->alloc;
	n->role = SR_FOLLOWER;
	n->rng = cfg->seed ^ (cfg->id * 0x9e3779b97f4a7c15ull);
	log_init(&n->log, n->alloc, cfg->storage, cfg->storage_ctx);
	*out = n;
	return 0;
}

/*
 * Bootstrapping is only for a brand-new member: a store that holds any
 * state (a term, an entry or a snapshot) already belongs to a cluster,
 * and a second initial configuration would silently diverge from the
 * one its log holds.  So the store is asked now, not at start.
 */
int sr_node_bootstrap(sr_node *n, const sr_membership *conf)
{
	sr_durable d;
	int rv;

	rv = conf_check_given(n, conf, "bootstrap");
	if (rv)
		return rv;
	memset(&d, 0, sizeof(d));
	rv = n->cfg.storage->load(n->cfg.storage_ctx, &d);
	if (rv)
		return rv;
	if (d.term || d.last_index || d.snapshot_index) {
		node_log(n, SR_LOG_INFO,
			 "bootstrap: the store holds state (term %llu, "
			 "last index %llu, snapshot %llu)",
			 (unsigned long long)d.term,
			 (unsigned long long)d.last_index,
			 (unsigned long long)d.snapshot_index);
		return SR_EEXIST;
	}
	n->bootstrap = *conf;
	n->have_bootstrap = 1;
	return 0;
}

/* Write the bootstrap configuration as entry 1 of term 1. */
static int node_write_bootstrap(sr_node *n)
{
	int rv = role_set_hard_state(n, 1, 0);
	if (rv == 0)
		rv = conf_append(n, &n->bootstrap, NULL);
	if (rv == 0)
		node_log(n, SR_LOG_INFO, "bootstrapped with %u members",
			 n->bootstrap.n);
	return rv;
}

/* Load every entry of the store into the cache, checking the sequence. */
static int node_load_log(sr_node *n, const sr_durable *d)
{
	sr_entry batch[256];
	sr_index next = d->first_index;

	while (next <= d->last_index) {
		size_t got = 0;
		int rv = n->cfg.storage->read(n->cfg.storage_ctx, next, 256,
					      1u << 20, batch, &got);
		if (rv)
			return rv;
		if (got == 0)
			return SR_ECORRUPT;
		for (size_t i = 0; i < got; i++) {
			const sr_entry *e = &batch[i];
			struct log_buf *b = NULL;
			if (e->index != next || e->term == 0 ||
			    e->term > d->term ||
			    e->term < log_last_term(&n->log)) {
				node_log(n, SR_LOG_ERROR,
					 "store returned entry %llu term %llu "
					 "where %llu was expected",
					 (unsigned long long)e->index,
					 (unsigned long long)e->term,
					 (unsigned long long)next);
				return SR_ECORRUPT;
			}
			if (e->len) {
				b = log_buf_new(n->alloc, e->len, 1);
				if (!b)
					return SR_ENOMEM;
				memcpy(b->data, e->data, e->len);
			}
			rv = log_push(&n->log, e->term, e->type, b,
				      b ? b->data : NULL, e->len);
			if (rv) {
				hook_free(n->alloc, b);
				return rv;
			}
			if (e->type == SR_ENTRY_CONFIG) {
				rv = conf_entry_appended(
					n, next, b ? b->data : NULL, e->len);
				if (rv)
					return rv;
			}
			next++;
		}
	}
	return 0;
}

/*
 * A crash can leave a snapshot on disk whose truncation or compaction of
 * the log had not reached it yet (the snapshot is durable when written,
 * the log operations when a later append is): the log then still holds
 * entries the snapshot covers.  Those are superseded; what follows the
 * snapshot is kept only if the log holds the snapshot's last entry with
 * its term (Raft §7), otherwise the whole log goes.
 */
static int node_reconcile_snapshot(sr_node *n, sr_durable *d)
{
	const sr_storage_ops *s = n->cfg.storage;
	void *ctx = n->cfg.storage_ctx;
	sr_entry e;
	size_t got = 0;
	int keep = 0, rv;

	if (!d->snapshot_index || d->first_index > d->snapshot_index ||
	    !s->compact)
		return 0;
	if (d->snapshot_index <= d->last_index) {
		rv = s->read(ctx, d->snapshot_index, 1, 0, &e, &got);
		if (rv)
			return rv;
		keep = got == 1 && e.term == d->snapshot_term;
	}
	node_log(n, SR_LOG_WARN, "log [%llu, %llu] overlaps snapshot %llu: %s",
		 (unsigned long long)d->first_index,
		 (unsigned long long)d->last_index,
		 (unsigned long long)d->snapshot_index,
		 keep ? "keeping the entries after it" : "discarding it");
	if (!keep && d->last_index >= d->first_index) {
		rv = s->truncate(ctx, d->first_index);
		if (rv)
			return rv;
	}
	rv = s->compact(ctx, d->snapshot_index);
	if (rv)
		return rv;
	if (!keep || d->last_index < d->snapshot_index)
		d->last_index = d->snapshot_index;
	d->first_index = d->snapshot_index + 1;
	return 0;
}

int sr_node_start(sr_node *n, uint64_t now_ms)
{
	sr_durable d;
	int rv;

	if (n->started)
		return SR_ESTATE;
	memset(&d, 0, sizeof(d));
	rv = n->cfg.storage->load(n->cfg.storage_ctx, &d);
	if (rv)
		return rv;
	if (d.first_index == 0)
		d.first_index = d.snapshot_index + 1;
	if (d.last_index + 1 < d.first_index ||
	    d.first_index > d.snapshot_index + 1 || d.snapshot_term > d.term ||
	    (d.last_index && d.term == 0)) {
		node_log(n, SR_LOG_ERROR, "store state is inconsistent");
		return SR_ECORRUPT;
	}
	n->now = now_ms;
	n->term = d.term;
	n->vote = d.vote;
	read_start(n, &d);
	rv = node_reconcile_snapshot(n, &d);
	if (rv)
		return rv;
	log_reset(&n->log, d.first_index, d.snapshot_index, d.snapshot_term);
	n->commit = n->applied = d.snapshot_index;
	if (d.snapshot_index)
		n->snap_conf = d.snapshot_conf;
	conf_start(n, &d.snapshot_conf, d.snapshot_index);
	node_enter(n);
	rv = node_load_log(n, &d);
	if (rv)
		goto out;
	n->durable = SR_MAX(d.last_index, d.snapshot_index);
	rv = repair_start(n, &d);
	if (rv)
		goto out;
	n->started = 1;
	if (d.snapshot_index && n->cfg.fsm->restore) {
		rv = n->cfg.fsm->restore(n->cfg.fsm_ctx, d.snapshot_index,
					 d.snapshot_term);
		if (rv)
			goto out;
	}
	if (n->have_recover) {
		rv = reconf_write_recovery(n);
		if (rv)
			goto out;
	} else if (d.last_index == 0 && d.term == 0 && d.snapshot_index == 0 &&
		   n->have_bootstrap) {
		rv = node_write_bootstrap(n);
		if (rv)
			goto out;
	} else if (n->have_bootstrap) {
		node_log(n, SR_LOG_INFO,
			 "store holds state: bootstrap "
			 "configuration ignored");
	}
	node_log(n, SR_LOG_INFO, "started: log [%llu, %llu], commit %llu",
		 (unsigned long long)log_first(&n->log),
		 (unsigned long long)log_last(&n->log),
		 (unsigned long long)n->commit);
	role_become_follower(n, n->term, 0);
	role_reset_timer(n);
	/* A sole voter need not wait for anyone (and a restart resumes). */
	if (progress_self_decides(n))
		elect_start(n, 0, 0);
out:
	node_leave(n);
	if (rv)
		n->started = 0;
	return rv;
}

void sr_node_destroy(sr_node *n)
{
	if (!n)
		return;
	apply_fail_all(n, SR_EUNKNOWN);
	apply_free(n);
	read_fail_all(n, SR_ESHUTDOWN);
	read_free(n);
	snap_free(n);
	persist_free(n);
	conf_free(n);
	progress_free_all(n);
	hook_free(n->alloc, n->scratch);
	log_close(&n->log);
	hook_free(n->alloc, n);
}

int sr_node_tick(sr_node *n, uint64_t now_ms)
{
	int rv = node_check_running(n);
	if (rv)
		return rv;
	if (now_ms > n->now)
		n->now = now_ms;
	node_enter(n);
	if (n->role == SR_LEADER) {
		repl_tick_quorum(n);
		if (n->role == SR_LEADER) {
			transfer_tick(n);
			reconf_tick(n);
			repl_tick_heartbeat(n);
		}
	} else {
		elect_tick(n);
	}
	node_leave(n);
	return 0;
}

uint64_t sr_node_deadline(const sr_node *n)
{
	if (n->role == SR_LEADER)
		return SR_MIN(n->heartbeat_deadline, n->quorum_deadline);
	if (n->role == SR_STOPPED)
		return UINT64_MAX;
	return n->election_deadline;
}

static int node_msg_valid(const sr_node *n, const sr_msg *m)
{
	if (m->group != n->cfg.group || m->to != n->cfg.id || m->from == 0 ||
	    m->from == n->cfg.id)
		return SR_EINVAL;
	if (m->type == SR_MSG_APPEND && m->u.append.n_entries &&
	    !m->u.append.entries)
		return SR_EPROTO;
	return 0;
}

int sr_node_step(sr_node *n, const sr_msg *m)
{
	struct progress *pr;
	int rv = node_check_running(n);
	if (rv)
		return rv;
	if (!m)
		return SR_EINVAL;
	rv = node_msg_valid(n, m);
	if (rv)
		return rv;
	if (m->type == SR_MSG_VOTE && n->conf_index <= n->commit) {
		/* A server whose removal is committed must never disrupt the
		 * cluster.  (Not while the removal is uncommitted: the entry
		 * may yet be overwritten, and the server's vote needed.) */
		const sr_member *mb = sr_membership_find(&n->conf, m->from);
		if (mb && mb->role == SR_ROLE_REMOVED)
			return 0;
	}
	node_enter(n);
	if (!elect_step_term(n, m))
		goto out;
	switch (m->type) {
	case SR_MSG_VOTE:
		elect_handle_vote(n, m);
		break;
	case SR_MSG_VOTE_RESP:
		elect_handle_vote_resp(n, m);
		break;
	case SR_MSG_APPEND:
		follower_handle_append(n, m);
		break;
	case SR_MSG_APPEND_RESP:
		pr = repl_handle_append_resp(n, m);
		if (pr)
			transfer_check(n, pr);
		break;
	case SR_MSG_SNAPSHOT:
		snap_handle_chunk(n, m);
		break;
	case SR_MSG_SNAPSHOT_RESP:
		pr = snap_handle_resp(n, m);
		if (pr)
			repl_send_append(n, pr, 0);
		break;
	case SR_MSG_TIMEOUT_NOW:
		if (n->role == SR_FOLLOWER && m->term == n->term &&
		    n->self_sets)
			elect_start(n, 0, 1);
		break;
	case SR_MSG_READ_INDEX:
		if (m->term == n->term)
			read_handle_request(n, m);
		break;
	case SR_MSG_READ_INDEX_RESP:
		if (m->term == n->term)
			read_handle_resp(n, m);
		break;
	default:
		rv = SR_EPROTO;
		break;
	}
out:
	node_leave(n);
	return rv;
}

/*
 * Append the first of `count` commands that the limits allow on the leader;
 * the caller persists and sends.  Their data shares one block: one
 * allocation per call, not per command.  *accepted is how many were
 * appended; the return value is why the next one was not (0 if all were).
 */
static int node_propose_cmds(sr_node *n, const sr_buf *cmds, size_t count,
			     void *const *cookies, size_t *accepted)
{
	uint64_t bytes = 0, unc = n->uncommitted_bytes;
	uint32_t refs = 0;
	struct log_buf *b = NULL;
	unsigned char *p;
	size_t k = 0, i, released = 0;
	int why = 0, rv;

	*accepted = 0;
	for (; k < count; k++) {
		size_t len = cmds[k].len;
		if (len > n->cfg.max_entry_bytes) {
			why = SR_ETOOBIG;
			break;
		}
		if (len && !cmds[k].base) {
			why = SR_EINVAL;
			break;
		}
		if (unc + len > n->cfg.max_uncommitted_bytes && unc > 0) {
			why = SR_EBUSY;
			break;
		}
		unc += len;
		bytes += len;
		refs += len > 0;
	}
	if (k == 0)
		return why;
	if (bytes) {
		b = log_buf_new(n->alloc, bytes, refs);
		if (!b)
			return SR_ENOMEM;
	}
	p = b ? b->data : NULL;
	for (i = 0; i < k; i++) {
		sr_index index = log_last(&n->log) + 1;
		uint32_t len = (uint32_t)cmds[i].len;
		if (len)
			memcpy(p, cmds[i].base, len);
		rv = log_push(&n->log, n->term, SR_ENTRY_NORMAL, len ? b : NULL,
			      len ? p : NULL, len);
		if (rv == 0) {
			rv = apply_add_proposal(n, index, n->term,
						cookies ? cookies[i] : NULL);
			if (rv) {
				/* undo the push, which drops its reference */
				log_truncate(&n->log, index);
				released = i + 1;
			}
		}
		if (rv) {
			why = rv;
			break;
		}
		n->uncommitted_bytes += len;
		if (len)
			p += len;
	}
	/* Drop the references of the commands that were not appended. */
	for (size_t j = SR_MAX(i, released); j < k; j++)
		if (cmds[j].len && --b->refs == 0)
			hook_free(n->alloc, b);
	*accepted = i;
	return i < count ? why : 0;
}

int sr_node_propose(sr_node *n, const void *data, size_t len, void *cookie,
		    sr_index *index_out)
{
	sr_buf cmd = { data, len };
	sr_index first;
	int rv = sr_node_propose_batch(n, &cmd, 1, &cookie, &first);
	if (rv < 0)
		return rv;
	if (index_out)
		*index_out = first;
	return 0;
}

int sr_node_propose_batch(sr_node *n, const sr_buf *cmds, size_t count,
			  void *const *cookies, sr_index *first_out)
{
	sr_index first = log_last(&n->log) + 1;
	size_t done = 0;
	int rv = node_leader_ready(n, LEADER_PROPOSE);
	if (rv)
		return rv;
	if (count == 0 || !cmds)
		return SR_EINVAL;
	node_enter(n);
	rv = node_propose_cmds(n, cmds, count, cookies, &done);
	if (done > 0) {
		if (first_out)
			*first_out = first;
		/* Followers first, then the local write: the leader's own
		 * write runs in parallel with theirs (thesis §10.2.1) and
		 * counts only once durable, so the order is safe; a store
		 * whose append() wakes a writer thread would otherwise hold
		 * the messages back by that hand-off. */
		repl_broadcast(n, 0);
		persist_append(n, first, done);
	}
	node_leave(n);
	return done > 0 ? (int)done : rv;
}

/* The entry points of membership changes, transfer and reads: the work is
 * in reconfig.c, transfer.c and read.c, bracketed here. */
int sr_node_change(sr_node *n, const sr_change *changes, size_t count,
		   sr_index *index_out)
{
	int rv = node_check_running(n);
	if (rv)
		return rv;
	node_enter(n);
	rv = reconf_change(n, changes, count, index_out);
	node_leave(n);
	return rv;
}

int sr_node_add(sr_node *n, sr_id id, const char *addr, int auto_promote)
{
	sr_change ch = { SR_CHANGE_ADD_LEARNER, id, addr, auto_promote };
	return sr_node_change(n, &ch, 1, NULL);
}

int sr_node_promote(sr_node *n, sr_id id)
{
	sr_change ch = { SR_CHANGE_PROMOTE, id, NULL, 0 };
	return sr_node_change(n, &ch, 1, NULL);
}

int sr_node_remove(sr_node *n, sr_id id)
{
	sr_change ch = { SR_CHANGE_REMOVE, id, NULL, 0 };
	return sr_node_change(n, &ch, 1, NULL);
}

int sr_node_transfer(sr_node *n, sr_id target)
{
	int rv = node_check_running(n);
	if (rv)
		return rv;
	node_enter(n);
	rv = transfer_start(n, target);
	node_leave(n);
	return rv;
}

int sr_node_read_index(sr_node *n, void *cookie)
{
	int rv = node_check_running(n);
	if (rv)
		return rv;
	node_enter(n);
	rv = read_index(n, cookie);
	node_leave(n);
	return rv;
}

void sr_node_storage_done(sr_node *n, uint64_t token, int status)
{
	persist_complete(n, token, status);
	if (n->depth == 0 && n->started) {
		node_enter(n);
		node_leave(n);
	}
}

void sr_node_status(const sr_node *n, sr_status *out)
{
	memset(out, 0, sizeof(*out));
	out->id = n->cfg.id;
	out->role = n->role;
	out->term = n->term;
	out->vote = n->vote;
	out->leader = n->role == SR_LEADER ? n->cfg.id : n->leader;
	out->commit_index = n->commit;
	out->applied_index = n->applied;
	out->first_index = log_first(&n->log);
	out->last_index = log_last(&n->log);
	out->durable_index = n->durable;
	out->snapshot_index = log_snap_index(&n->log);
	out->uncommitted_bytes = n->uncommitted_bytes;
	out->error = n->stop_error;
	out->n_peers = n->n_prs;
	out->repair_index = n->repair_until;
	if (n->role == SR_LEADER)
		out->leader_age_ms = 0;
	else if (n->leader && n->now >= n->leader_heard)
		out->leader_age_ms = n->now - n->leader_heard;
	else
		out->leader_age_ms = n->leader ? 0 : UINT64_MAX;
}

size_t sr_node_peer_status(const sr_node *n, sr_peer_status *out, size_t cap)
{
	const sr_member *m;

	for (uint32_t i = 0; i < n->n_prs && i < cap; i++) {
		const struct progress *pr = &n->prs[i];
		out[i].id = pr->id;
		out[i].role = pr->role;
		out[i].state = pr->state;
		out[i].match = pr->match;
		out[i].next = pr->next;
		out[i].inflight_msgs = pr->infl_ring.count;
		out[i].inflight_bytes = pr->infl_bytes;
		out[i].last_heard_ms = pr->last_heard;
		m = sr_membership_find(&n->conf, pr->id);
		out[i].auto_promote = m && m->auto_promote;
	}
	return n->n_prs;
}

const sr_membership *sr_node_membership(const sr_node *n)
{
	return &n->conf;
}

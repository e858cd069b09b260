/*
 * server_group.c — the groups a server carries: the table by id, each
 * group's life (create, start, destroy, drop) and its engine calls.
 *
 * A group is one Raft group's member on this server: an engine, its
 * store (a group of the shared WAL, or a memory store of its own), its
 * state machine and host callbacks, its clock and deadline (server_clock.c)
 * and its references in the shared peer table (server_peers.c).  The
 * default group is an ordinary group made from sr_server_config; the
 * single-group sr_server_* calls act on it.
 *
 * The table.  Incoming messages are dispatched by group id, so the table
 * is a hash table with chained buckets (a power of two of them, doubled
 * when the groups outnumber the buckets): a lookup costs O(1) whatever
 * the number of groups.
 *
 * Life.  Create: the store, then the engine (nothing runs yet), then the
 * table; start (at once if the server runs, else in sr_server_start()):
 * bootstrap or join from the group's peers, sr_node_start(), the peers
 * of the configuration loaded, the first deadline.  Destroy runs in
 * reverse: out of the table (its messages now count as unknown), out of
 * the heap, its peers released, the engine destroyed (pending proposals
 * complete with SR_EUNKNOWN), the store closed.
 *
 * Storage.  With SR_SERVER_WAL every group keeps its log in the one WAL
 * of the server (seshat/wal.h, "Groups"): its records tagged with its id,
 * and one write and one fdatasync per batch for the appends of every
 * group.  The default group lives in the WAL's own log (group 0 on disk),
 * where a single-group server always kept it, so upgrading a host to
 * groups keeps its data; a group 0 of a server without a default group
 * lives there too; every other group lives in the WAL group of its id.
 * The WAL's completions reach each group's engine through its own done
 * callback, from sr_wal_process() on the loop.
 *
 * Calls.  Every sr_group_* call that drives the engine is wrapped by
 * server_group_enter()/server_group_leave(): refused from inside any callback
 * (SR_ESTATE, logged), the group's clock brought up to date before, its
 * deadline re-queued after.
 */
#include "internal/alloc.h"
#include "server_int.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* The table by id                                                    */
/* ------------------------------------------------------------------ */

static size_t bucket_of(size_t n_buckets, uint32_t id)
{
	/* Fibonacci hashing: consecutive ids spread over the buckets. */
	return (size_t)((id * 2654435769u) >> 7) & (n_buckets - 1);
}

sr_group *server_group_find(const sr_server *s, uint32_t id)
{
	sr_group *g;

	if (!s->n_buckets)
		return NULL;
	for (g = s->buckets[bucket_of(s->n_buckets, id)]; g; g = g->hnext)
		if (g->id == id)
			return g;
	return NULL;
}

static int table_grow(sr_server *s)
{
	size_t n = s->n_buckets ? s->n_buckets * 2 : 64;
	sr_group **b = hook_malloc(s->cfg.alloc, n * sizeof(*b));

	if (!b)
		return SR_ENOMEM;
	memset(b, 0, n * sizeof(*b));
	for (size_t i = 0; i < s->n_buckets; i++) {
		sr_group *g = s->buckets[i], *next;
		for (; g; g = next) {
			size_t k = bucket_of(n, g->id);
			next = g->hnext;
			g->hnext = b[k];
			b[k] = g;
		}
	}
	hook_free(s->cfg.alloc, s->buckets);
	s->buckets = b;
	s->n_buckets = n;
	return 0;
}

static int table_add(sr_server *s, sr_group *g)
{
	size_t k;
	int rc;

	if (s->n_groups >= s->n_buckets && (rc = table_grow(s)))
		return rc;
	k = bucket_of(s->n_buckets, g->id);
	g->hnext = s->buckets[k];
	s->buckets[k] = g;
	s->n_groups++;
	return 0;
}

static void table_remove(sr_server *s, sr_group *g)
{
	sr_group **p;

	if (!s->n_buckets)
		return;
	for (p = &s->buckets[bucket_of(s->n_buckets, g->id)]; *p;
	     p = &(*p)->hnext) {
		if (*p == g) {
			*p = g->hnext;
			s->n_groups--;
			return;
		}
	}
}

/* ------------------------------------------------------------------ */
/* Creation and start                                                 */
/* ------------------------------------------------------------------ */

static int refuse(sr_server *s, uint32_t id, const char *field, const char *why)
{
	server_log(s, SR_LOG_ERROR, "group %u: bad configuration: %s: %s", id,
		   field, why);
	return SR_EINVAL;
}

static int check_group(sr_server *s, const sr_group_config *c)
{
	if (!c->fsm || !c->fsm->apply)
		return refuse(s, c->id, "fsm",
			      "a state machine with apply() is required");
	if (c->fsm->snapshot && !c->fsm->restore)
		return refuse(s, c->id, "fsm.restore",
			      "required when fsm.snapshot is set");
	if (c->host.log)
		return refuse(s, c->id, "host.log",
			      "the server's log hook gets every group's lines");
	for (uint32_t i = 0; i < c->peers.n; i++) {
		const sr_member *m = &c->peers.members[i];
		if (m->id == 0 || !m->addr[0] ||
		    memchr(m->addr, 0, SR_ADDR_MAX) == NULL)
			return refuse(s, c->id, "peers",
				      "every member needs an id and an "
				      "address");
		for (uint32_t j = 0; j < i; j++)
			if (c->peers.members[j].id == m->id)
				return refuse(s, c->id, "peers",
					      "duplicate id");
	}
	if (s->wal && c->id == 0 && s->dflt)
		return refuse(s, c->id, "id",
			      "the WAL's own log (group 0) is the default "
			      "group's");
	return 0;
}

static uint64_t start_seed(uint64_t id, uint32_t group)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (id << 40) ^ ((uint64_t)ts.tv_sec * 1000000000ull) ^
	       (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 20) ^
	       ((uint64_t)group * 0x9e3779b97f4a7c15ull);
}

/* The group keeps its log in the WAL's own log (see Storage above). */
static int on_wal_log(const sr_group *g)
{
	return g->is_default || g->id == 0;
}

static int open_store(sr_group *g)
{
	sr_server *s = g->srv;
	int rc;

	if (s->cfg.storage == SR_SERVER_MEM) {
		sr_mem_config mc = { .mode = SR_MEM_SYNC,
				     .done = server_storage_done,
				     .done_ctx = g,
				     .alloc = s->cfg.alloc };
		return sr_mem_create(&mc, &g->mem);
	}
	if (on_wal_log(g)) {
		sr_wal_set_done(s->wal, server_storage_done, g);
		return 0;
	}
	rc = sr_wal_group_open(s->wal, g->id, &g->wg);
	if (rc) {
		server_log(s, SR_LOG_ERROR,
			   "group %u: cannot open its log in the WAL: %s",
			   g->id, sr_strerror(rc));
		return rc;
	}
	sr_wal_group_set_done(g->wg, server_storage_done, g);
	return 0;
}

static int create_node(sr_group *g)
{
	sr_server *s = g->srv;
	sr_config r = s->cfg.raft;
	int rc;

	r.id = s->cfg.id;
	r.group = g->id;
	if (g->mem) {
		r.storage = sr_mem_ops();
		r.storage_ctx = g->mem;
	} else if (g->wg) {
		r.storage = sr_wal_group_storage_ops();
		r.storage_ctx = g->wg;
	} else {
		r.storage = sr_wal_storage_ops();
		r.storage_ctx = s->wal;
	}
	r.fsm = g->cfg.fsm;
	r.fsm_ctx = g->cfg.fsm_ctx;
	r.transport = &server_transport_ops;
	r.transport_ctx = s;
	r.host = server_host_ops;
	r.host_ctx = g;
	r.log_level = s->cfg.log_level;
	r.alloc = s->cfg.alloc;
	/* The engine must not send entries the transport would refuse. */
	r.transport_max_payload = sr_tcp_max_payload(s->tcp);
	/* Read tags must not repeat across starts (raft.h, seed): left at
	 * its default, the seed gets this start's clock and pid mixed in
	 * (and the group id: groups must not share a sequence). */
	if (r.seed == r.id)
		r.seed = start_seed(r.id, g->id);
	rc = sr_node_create(&r, &g->node);
	if (rc)
		server_log(s, SR_LOG_ERROR,
			   "group %u: cannot create the engine: %s", g->id,
			   sr_strerror(rc));
	return rc;
}

int server_group_new(sr_server *s, const sr_group_config *cfg, int dflt,
		     sr_group **out)
{
	sr_group *g = hook_malloc(s->cfg.alloc, sizeof(*g));
	int rc;

	*out = NULL;
	if (!g)
		return SR_ENOMEM;
	memset(g, 0, sizeof(*g));
	g->srv = s;
	g->id = cfg->id;
	g->is_default = dflt;
	g->cfg = *cfg;
	g->heap_pos = SERVER_NOT_QUEUED;
	if ((rc = open_store(g)) || (rc = create_node(g)) ||
	    (rc = table_add(s, g))) {
		if (g->node)
			sr_node_destroy(g->node);
		sr_mem_destroy(g->mem);
		if (g->wg)
			sr_wal_group_close(g->wg);
		else if (s->wal)
			sr_wal_set_done(s->wal, server_storage_done, NULL);
		hook_free(s->cfg.alloc, g);
		return rc;
	}
	s->stats.groups_created++;
	*out = g;
	return 0;
}

/* The peers list: bootstrap an initial member, or prepare a joiner. */
static int setup_peers(sr_group *g)
{
	sr_server *s = g->srv;
	const sr_membership *p = &g->cfg.peers;
	int rc;

	if (p->n == 0)
		return 0;
	if (!sr_membership_find(p, s->cfg.id)) {
		/* Joining: accept the members' connections (and answer
		 * them) until a configuration naming us arrives. */
		server_peers_sync(g, p, 0);
		server_log(s, SR_LOG_INFO,
			   "group %u: not among the %u initial members: "
			   "waiting to be added",
			   g->id, p->n);
		return 0;
	}
	rc = sr_node_bootstrap(g->node, p);
	if (rc == SR_EEXIST) {
		/* A restart: the store's own configuration wins. */
		server_log(s, SR_LOG_INFO,
			   "group %u: the store holds state: initial peers "
			   "ignored",
			   g->id);
		return 0;
	}
	if (rc)
		server_log(s, SR_LOG_ERROR, "group %u: bootstrap failed: %s",
			   g->id, sr_strerror(rc));
	return rc;
}

int server_group_start(sr_group *g)
{
	sr_server *s = g->srv;
	const sr_membership *conf;
	int rc;

	if ((rc = setup_peers(g)))
		return rc;
	g->last_tick = sr_loop_update_now(s->loop);
	s->depth++;
	s->inside = g;
	rc = sr_node_start(g->node, g->last_tick);
	s->inside = NULL;
	s->depth--;
	if (rc) {
		server_log(s, SR_LOG_ERROR,
			   "group %u: cannot start the engine: %s", g->id,
			   sr_strerror(rc));
		return rc;
	}
	conf = sr_node_membership(g->node);
	if (conf && conf->n) {
		g->conf = *conf;
		server_peers_sync(g, conf, 0);
	}
	g->started = 1;
	server_clock_schedule(g);
	return 0;
}

void server_group_free(sr_group *g)
{
	sr_server *s = g->srv;

	table_remove(s, g);
	server_clock_unqueue(g);
	server_peers_cancel(g);
	server_peers_release(g);
	/* The engine's last callbacks (pending proposals and reads fail)
	 * still reach the host; nothing may call back into the engine. */
	g->started = 0;
	s->depth++;
	s->inside = g;
	sr_node_destroy(g->node);
	s->inside = NULL;
	s->depth--;
	sr_mem_destroy(g->mem);
	/* Nothing pending in the store may reach the freed group. */
	if (g->wg)
		sr_wal_group_close(g->wg);
	else if (s->wal)
		sr_wal_set_done(s->wal, server_storage_done, NULL);
	if (s->dflt == g)
		s->dflt = NULL;
	s->stats.groups_destroyed++;
	hook_free(s->cfg.alloc, g);
}

/* ------------------------------------------------------------------ */
/* The public calls                                                   */
/* ------------------------------------------------------------------ */

/* A call made from inside a callback: refused, saying what to do. */
static int refuse_inside(sr_server *s, const char *what)
{
	return server_refuse(s, what,
			     " called from inside a callback: defer it "
			     "(sr_loop_defer)");
}

SR_API void sr_group_config_init(sr_group_config *cfg, uint32_t id)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->id = id;
}

SR_API int sr_server_group_create(sr_server *s, const sr_group_config *cfg,
				  sr_group **out)
{
	sr_group *g;
	int rc;

	*out = NULL;
	if (s->depth)
		return refuse_inside(s, "sr_server_group_create");
	if (server_group_find(s, cfg->id)) {
		server_log(s, SR_LOG_ERROR, "group %u exists already", cfg->id);
		return SR_EEXIST;
	}
	if ((rc = check_group(s, cfg)))
		return rc;
	if ((rc = server_group_new(s, cfg, 0, &g)))
		return rc;
	if (s->started && (rc = server_group_start(g))) {
		server_group_free(g);
		return rc;
	}
	*out = g;
	return 0;
}

static int group_end(sr_group *g, const char *what)
{
	sr_server *s = g->srv;

	if (s->depth)
		return refuse_inside(s, what);
	if (g->is_default) {
		server_log(s, SR_LOG_ERROR,
			   "%s: the default group lives as long as the "
			   "server",
			   what);
		return SR_EINVAL;
	}
	server_group_free(g);
	return 0;
}

SR_API int sr_server_group_destroy(sr_group *g)
{
	return group_end(g, "sr_server_group_destroy");
}

SR_API int sr_server_group_drop(sr_group *g)
{
	sr_server *s = g->srv;
	uint32_t id = g->id;
	int in_wal_group = g->wg != NULL;
	int rc;

	if (s->wal && !in_wal_group && !g->is_default) {
		server_log(s, SR_LOG_ERROR,
			   "sr_server_group_drop: group %u lives in the WAL's "
			   "own log, which cannot be dropped",
			   id);
		return SR_EINVAL;
	}
	if ((rc = group_end(g, "sr_server_group_drop")))
		return rc;
	/* A memory store's data went with it; a WAL group's is deleted. */
	if (in_wal_group && (rc = sr_wal_group_drop(s->wal, id)))
		server_log(s, SR_LOG_ERROR,
			   "group %u: cannot delete its data: %s", id,
			   sr_strerror(rc));
	return rc;
}

SR_API sr_group *sr_server_group(const sr_server *s, uint32_t id)
{
	return server_group_find(s, id);
}

SR_API sr_group *sr_server_default_group(const sr_server *s)
{
	return s->dflt;
}

SR_API size_t sr_server_groups(const sr_server *s, sr_group **out, size_t cap)
{
	size_t n = 0;

	for (size_t i = 0; i < s->n_buckets; i++)
		for (sr_group *g = s->buckets[i]; g; g = g->hnext, n++)
			if (n < cap)
				out[n] = g;
	return n;
}

/* The WAL's own log holds something (a term, an entry or a snapshot). */
static int wal_log_used(sr_server *s)
{
	sr_durable d;

	if (sr_wal_storage_ops()->load(s->wal, &d))
		return 1; /* unreadable: let the host open it and see */
	return d.term || d.last_index || d.snapshot_index;
}

SR_API int sr_server_groups_on_disk(sr_server *s, uint32_t *ids, size_t cap,
				    size_t *n_out)
{
	uint32_t *all;
	size_t n = 0, total, zero;
	int rc;

	*n_out = 0;
	if (!s->wal)
		return 0; /* memory stores die with the process */
	rc = sr_wal_groups(s->wal, NULL, 0, &n);
	if (rc && rc != SR_ETOOBIG)
		return rc;
	/* Group 0 is on disk in the WAL's own log when it is not the
	 * default group's. */
	zero = !s->dflt && wal_log_used(s);
	all = hook_malloc(s->cfg.alloc, (n + 1) * sizeof(*all));
	if (!all)
		return SR_ENOMEM;
	all[0] = 0;
	rc = sr_wal_groups(s->wal, all + zero, n, &n);
	total = n + zero;
	for (size_t i = 0; rc == 0 && i < total && i < cap; i++)
		ids[i] = all[i];
	hook_free(s->cfg.alloc, all);
	if (rc)
		return rc;
	*n_out = total;
	return 0;
}

SR_API void sr_server_stats_get(const sr_server *s, sr_server_stats *out)
{
	sr_tcp_stats ts;

	*out = s->stats;
	out->groups = (uint32_t)s->n_groups;
	out->peers = s->n_peers;
	/* Coalescing happens in the transport, which counts it. */
	sr_tcp_stats_get(s->tcp, &ts);
	out->coalesced_sent = ts.coalesced_sent;
	out->coalesced_recv = ts.coalesced_recv;
	out->coalesced_carried_sent = ts.coalesced_msgs;
	out->coalesced_carried_recv = ts.coalesced_msgs_recv;
}

int server_group_enter(sr_group *g, const char *what)
{
	sr_server *s = g->srv;

	if (s->depth)
		return refuse_inside(s, what);
	if (!g->started) {
		server_log(s, SR_LOG_ERROR,
			   "%s called before sr_server_start()", what);
		return SR_ESTATE;
	}
	s->depth++;
	server_clock_sync(g);
	s->inside = g;
	return 0;
}

int server_group_leave(sr_group *g, int rc)
{
	sr_server *s = g->srv;

	s->inside = NULL;
	s->depth--;
	server_clock_schedule(g);
	return rc;
}

SR_API int sr_group_propose(sr_group *g, const void *data, size_t len,
			    void *cookie, sr_index *index_out)
{
	int rc = server_group_enter(g, "sr_group_propose");

	if (rc)
		return rc;
	server_wal_hold_proposal(g);
	return server_group_leave(g, sr_node_propose(g->node, data, len, cookie,
						     index_out));
}

SR_API int sr_group_propose_batch(sr_group *g, const sr_buf *cmds, size_t count,
				  void *const *cookies, sr_index *first_out)
{
	int rc = server_group_enter(g, "sr_group_propose_batch");

	if (rc)
		return rc;
	server_wal_hold_proposal(g);
	return server_group_leave(g, sr_node_propose_batch(g->node, cmds, count,
							   cookies, first_out));
}

SR_API int sr_group_read(sr_group *g, void *cookie)
{
	int rc = server_group_enter(g, "sr_group_read");

	if (rc)
		return rc;
	return server_group_leave(g, sr_node_read_index(g->node, cookie));
}

SR_API int sr_group_add(sr_group *g, sr_id id, const char *addr,
			int auto_promote)
{
	int rc = server_group_enter(g, "sr_group_add");

	if (rc)
		return rc;
	return server_group_leave(g,
				  sr_node_add(g->node, id, addr, auto_promote));
}

SR_API int sr_group_remove(sr_group *g, sr_id id)
{
	int rc = server_group_enter(g, "sr_group_remove");

	if (rc)
		return rc;
	return server_group_leave(g, sr_node_remove(g->node, id));
}

SR_API int sr_group_promote(sr_group *g, sr_id id)
{
	int rc = server_group_enter(g, "sr_group_promote");

	if (rc)
		return rc;
	return server_group_leave(g, sr_node_promote(g->node, id));
}

SR_API int sr_group_transfer(sr_group *g, sr_id target)
{
	int rc = server_group_enter(g, "sr_group_transfer");

	if (rc)
		return rc;
	return server_group_leave(g, sr_node_transfer(g->node, target));
}

SR_API int sr_group_snapshot(sr_group *g)
{
	int rc = server_group_enter(g, "sr_group_snapshot");

	if (rc)
		return rc;
	return server_group_leave(g, sr_node_snapshot(g->node));
}

SR_API void sr_group_status(const sr_group *g, sr_status *out)
{
	sr_node_status(g->node, out);
}

SR_API const sr_membership *sr_group_membership(const sr_group *g)
{
	return sr_node_membership(g->node);
}

SR_API sr_node *sr_group_node(const sr_group *g)
{
	return g->node;
}

SR_API uint32_t sr_group_id(const sr_group *g)
{
	return g->id;
}

SR_API sr_server *sr_group_server(const sr_group *g)
{
	return g->srv;
}

/* ------------------------------------------------------------------ */
/* Messages                                                           */
/* ------------------------------------------------------------------ */

/*
 * The transport's on_message: find the message's group by its id, tick
 * its engine, step it and re-queue its deadline.  A message for a group
 * this server does not carry (not created yet, destroyed, or a peer's
 * mistake) is dropped and counted (sr_server_stats.msgs_unknown); Raft
 * resends what matters.  Messages that arrive before a group is started
 * are dropped too.
 */
void server_on_message(void *ctx, const sr_msg *msg)
{
	sr_server *s = ctx;
	sr_group *g = server_group_find(s, msg->group);

	if (!g) {
		s->stats.msgs_unknown++;
		return;
	}
	if (!g->started)
		return;
	s->stats.msgs_in++;
	if (g->role == SR_FOLLOWER)
		server_wal_hold(
			s); /* its appends: written at the iteration's end */
	if (s->wal_held && msg->type == SR_MSG_APPEND &&
	    msg->u.append.n_entries)
		s->held_appends++;
	s->depth++;
	server_clock_sync(g);
	s->inside = g;
	sr_node_step(g->node, msg);
	s->inside = NULL;
	s->depth--;
	server_clock_schedule(g);
}

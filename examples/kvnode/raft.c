/*
 * raft.c — kvnode's member of the Raft group, on the library's runtime
 * (seshat/server.h): one sr_server owns the engine, the log store (the
 * WAL in DIR/raft, or memory) and the TCP transport, and runs them on
 * kvnode's event loop next to the client sockets.  The runtime keeps the
 * engine's clock, its deadline timer, the WAL's completions and the
 * transport's peers; what is left here is kvnode's side of it: the
 * configuration, the addresses, and the engine's callbacks to the
 * request layer (requests.c).
 *
 * Addresses.  A member's address is "RAFTHOST:PORT/CLIENTHOST:PORT".  The
 * runtime dials the raft half (transport_addr below); the client halves
 * answer MOVED redirects, looked up in the configuration the engine last
 * reported (conf_changed).
 *
 * Bootstrap.  --peers lists the initial voters.  A node whose id is in the
 * list bootstraps with it when its store is empty; with state already
 * there the list is ignored.  A node whose id is not in the list is
 * joining an existing cluster: the runtime registers the listed nodes
 * with the transport, so that their connections are accepted, and the
 * node waits for the leader to add it (CLUSTER ADD).  It also accepts
 * members it does not know yet (accept_unknown_peers).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kvnode.h"

int kv_addr_split(const char *addr, char *raft, size_t raft_cap, char *client,
		  size_t client_cap)
{
	const char *slash = strchr(addr, '/');
	size_t rl;

	if (!slash || strchr(slash + 1, '/'))
		return -1;
	rl = (size_t)(slash - addr);
	if (rl == 0 || rl >= raft_cap || !slash[1] ||
	    strlen(slash + 1) >= client_cap)
		return -1;
	memcpy(raft, addr, rl);
	raft[rl] = 0;
	strcpy(client, slash + 1);
	return 0;
}

const char *kv_raft_client_addr(const struct kv_group *g, sr_id id)
{
	static char client[SR_ADDR_MAX];
	char raft[SR_ADDR_MAX];
	const sr_member *m = sr_membership_find(&g->conf, id);

	if (!m ||
	    kv_addr_split(m->addr, raft, sizeof(raft), client, sizeof(client)))
		return NULL;
	return client;
}

int kv_raft_is_learner(const struct kv_server *s)
{
	const sr_member *m = sr_membership_find(&s->groups[0].conf, s->opt.id);
	return m && m->role == SR_ROLE_LEARNER;
}

/*
 * The runtime ticks the engine before every event it hands it and keeps
 * its deadline timer armed; a caller about to read the engine's status
 * from a client command (the leader's silence, say) brings the clock up
 * to date first.  kv_raft_kick() has nothing left to do.
 */
void kv_raft_sync_time(struct kv_server *s)
{
	if (s->ngroups && s->groups[0].srv)
		sr_server_tick(s->groups[0].srv);
}

void kv_raft_kick(struct kv_server *s)
{
	(void)s;
}

/* ------------------------------------------------------------------ */
/* Engine callbacks                                                   */
/* ------------------------------------------------------------------ */

static void on_state_changed(void *ctx, int role, sr_term term, sr_id leader)
{
	struct kv_group *g = ctx;
	struct kv_server *s = g->s;
	sr_status st;

	if (s->ngroups > 1)
		kv_log(s, SR_LOG_INFO,
		       "group %u: now %s in term %llu, leader %llu", g->idx,
		       sr_role_name(role), (unsigned long long)term,
		       (unsigned long long)leader);
	else
		kv_log(s, SR_LOG_INFO, "now %s in term %llu, leader %llu",
		       sr_role_name(role), (unsigned long long)term,
		       (unsigned long long)leader);
	if (role != SR_STOPPED)
		return;
	/* The store failed (EIO, ENOSPC, ...): the engine acknowledges
	 * nothing more.  Exit with an error so that a supervisor notices
	 * and restarts the node once the disk is fixed; nothing it
	 * acknowledged is lost (it was durable before it was counted). */
	sr_node_status(g->node, &st);
	kv_log(s, SR_LOG_ERROR, "storage failed (%s): exiting",
	       sr_strerror(st.error));
	s->fatal = st.error ? st.error : SR_EIO;
	sr_loop_stop(s->loop);
}

/* ------------------------------------------------------------------ */
/* --peers                                                            */
/* ------------------------------------------------------------------ */

int kv_peers_parse(const char *spec, sr_membership *out, char *err,
		   size_t errcap)
{
	const char *p = spec;

	memset(out, 0, sizeof(*out));
	while (*p) {
		char item[SR_ADDR_MAX + 32], raft[SR_ADDR_MAX],
			client[SR_ADDR_MAX];
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		char *eq, *end;
		unsigned long long id;

		if (len == 0 || len >= sizeof(item)) {
			snprintf(err, errcap,
				 "empty or too long entry in --peers");
			return -1;
		}
		memcpy(item, p, len);
		item[len] = 0;
		eq = strchr(item, '=');
		errno = 0;
		id = eq ? strtoull(item, &end, 10) : 0;
		if (!eq || end != eq || id == 0 || errno || item[0] == '-' ||
		    kv_addr_split(eq + 1, raft, sizeof(raft), client,
				  sizeof(client)) ||
		    !strchr(raft, ':') || !strchr(client, ':')) {
			snprintf(err, errcap,
				 "bad --peers entry '%s' (want "
				 "ID=RAFTHOST:PORT/"
				 "CLIENTHOST:PORT)",
				 item);
			return -1;
		}
		if (sr_membership_add(out, id, SR_ROLE_VOTER, eq + 1)) {
			snprintf(err, errcap,
				 "--peers: duplicate id %llu or too "
				 "many members",
				 id);
			return -1;
		}
		p += len;
		if (*p == ',')
			p++;
	}
	if (out->n == 0) {
		snprintf(err, errcap, "--peers is empty");
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Start and stop                                                     */
/* ------------------------------------------------------------------ */

/*
 * One runtime carries every group: group 0 is its default group (its log
 * is the WAL's own log in DIR/raft, as without --groups) and groups
 * 1..N-1 are made with sr_server_group_create() (each a group of the same
 * WAL: one fdatasync covers every group's appends in a batch).  One
 * listening port, one connection per peer process for all groups (every
 * message carries its group id), one timer heap.  A restart creates the
 * same groups again; each finds its log in the WAL.
 */

/* The runtime dials the raft half of "RAFT/CLIENT". */
static int transport_addr(void *ctx, const sr_member *m, char *out, size_t cap)
{
	char client[SR_ADDR_MAX];

	(void)ctx;
	return kv_addr_split(m->addr, out, cap, client, sizeof(client))
		       ? SR_EINVAL
		       : 0;
}

static void on_conf_changed(void *ctx, const sr_membership *conf)
{
	struct kv_group *g = ctx;

	g->conf = *conf;
}

static void on_done(void *ctx, void *cookie, int status, sr_index index,
		    void *result)
{
	(void)index;
	kv_server_write_done(ctx, cookie, status, result);
}

static void on_read_done(void *ctx, void *cookie, int status, sr_index index)
{
	(void)index;
	kv_server_read_done(ctx, cookie, status);
}

static void config_fill(struct kv_server *s, sr_server_config *cfg)
{
	cfg->cluster_id = s->opt.cluster_id;
	cfg->storage = s->opt.storage_wal ? SR_SERVER_WAL : SR_SERVER_MEM;
	if (s->opt.wal_segment)
		cfg->wal.segment_size = s->opt.wal_segment;
	cfg->wal.repair = s->opt.wal_repair;
	cfg->wal.direct_io = s->opt.wal_direct;
	cfg->fsm = &kv_fsm_ops;
	cfg->host.done = on_done;
	cfg->host.read_done = on_read_done;
	cfg->host.state_changed = on_state_changed;
	cfg->host.conf_changed = on_conf_changed;
	cfg->transport_addr = transport_addr;
	cfg->log = kv_log_hook;
	cfg->log_ctx = s;
	cfg->log_level = s->opt.log_level;
	cfg->loop = s->loop;
	cfg->raft.election_timeout_ms = s->opt.election_ms;
	cfg->raft.heartbeat_ms = s->opt.heartbeat_ms;
	cfg->raft.seed = ((uint64_t)s->opt.id << 32) ^ kv_now_ms(s) ^
			 (uint64_t)getpid();
	cfg->raft.snapshot_threshold = s->opt.snapshot_threshold;
	cfg->raft.snapshot_bytes = s->opt.snapshot_bytes;
	if (s->opt.snapshot_trailing != UINT64_MAX)
		cfg->raft.snapshot_trailing = s->opt.snapshot_trailing;
	/* A node waiting to be added hears from members it cannot know. */
	cfg->tcp.accept_unknown_peers = 1;
	if (s->opt.secret_len) { /* --cluster-secret-file */
		cfg->tcp.secret = s->opt.secret;
		cfg->tcp.secret_len = s->opt.secret_len;
		if (s->opt.secret_prev_len) {
			cfg->tcp.secret_prev = s->opt.secret_prev;
			cfg->tcp.secret_prev_len = s->opt.secret_prev_len;
		}
	}
}

/* Create the runtime with group 0 (not started). */
static int server_create(struct kv_server *s, sr_server_config *cfg)
{
	struct kv_group *g = &s->groups[0];
	char path[4096];
	int rc;

	snprintf(path, sizeof(path), "%s/raft", s->opt.data_dir);
	cfg->listen_addr = s->opt.raft_addr;
	cfg->data_dir = path;
	cfg->fsm_ctx = &g->fsm;
	cfg->host_ctx = g;
	rc = sr_server_create(cfg, &g->srv);
	if (rc == SR_ELOCKED)
		kv_log(s, SR_LOG_ERROR, "%s is in use by another process",
		       path);
	else if (rc == SR_ECORRUPT)
		kv_log(s, SR_LOG_ERROR,
		       "the log in %s is damaged (see the messages above and "
		       "docs/kvnode.md, 'Recovery')",
		       path);
	if (rc)
		return rc;
	g->grp = sr_server_default_group(g->srv);
	g->node = sr_group_node(g->grp);
	g->fsm.node = g->node;
	return 0;
}

/* Add group g (idx >= 1) to the runtime (its log: a group of the WAL). */
static int group_add(struct kv_group *g, const sr_membership *peers)
{
	sr_group_config gc;
	int rc;

	sr_group_config_init(&gc, g->idx);
	gc.peers = *peers;
	gc.fsm = &kv_fsm_ops;
	gc.fsm_ctx = &g->fsm;
	gc.host.done = on_done;
	gc.host.read_done = on_read_done;
	gc.host.state_changed = on_state_changed;
	gc.host.conf_changed = on_conf_changed;
	gc.host_ctx = g;
	g->srv = g->s->groups[0].srv;
	rc = sr_server_group_create(g->srv, &gc, &g->grp);
	if (rc) {
		kv_log(g->s, SR_LOG_ERROR, "group %u: %s", g->idx,
		       sr_strerror(rc));
		return rc;
	}
	g->node = sr_group_node(g->grp);
	g->fsm.node = g->node;
	return 0;
}

/* The state machine's loop (background snapshots) and log. */
static void fsm_wire(struct kv_group *g)
{
	struct kv_fsm *f = &g->fsm;

	f->log = kv_log_hook;
	f->log_ctx = g->s;
	f->snap_test_delay_ms = g->s->opt.snapshot_test_delay_ms;
	f->loop = g->s->opt.snapshot_fork ? sr_server_loop(g->srv) : NULL;
}

int kv_raft_open(struct kv_server *s)
{
	static sr_server_config cfg; /* large: kept off the stack */
	sr_membership peers;
	char err[256];
	int rc;

	memset(&peers, 0, sizeof(peers));
	if (s->opt.peers &&
	    kv_peers_parse(s->opt.peers, &peers, err, sizeof(err))) {
		kv_log(s, SR_LOG_ERROR, "%s", err);
		return SR_EINVAL;
	}
	if (!s->opt.secret_len)
		kv_log(s, SR_LOG_WARN,
		       "no --cluster-secret-file: peers are not "
		       "authenticated (fine for a loopback demo only)");
	sr_server_config_init(&cfg, s->opt.id);
	config_fill(s, &cfg);
	/* the leader syncs each loop iteration's writes on its own thread,
	 * as Redis does: the writes that arrive meanwhile form the next
	 * batch (docs/benchmarks.md, Round 6) */
	cfg.leader_writes_inline = 1;
	cfg.peers = peers;
	s->max_entry = cfg.raft.max_entry_bytes;
	rc = server_create(s, &cfg);
	/* the transport keeps its own copy of the secrets */
	cfg.tcp.secret = cfg.tcp.secret_prev = NULL;
	for (volatile char *v = s->opt.secret;
	     v < s->opt.secret + sizeof(s->opt.secret); v++)
		*v = 0;
	for (volatile char *v = s->opt.secret_prev;
	     v < s->opt.secret_prev + sizeof(s->opt.secret_prev); v++)
		*v = 0;
	for (unsigned i = 1; i < s->ngroups && rc == 0; i++)
		rc = group_add(&s->groups[i], &peers);
	if (rc)
		return rc;
	if (s->opt.peers && !sr_membership_find(&peers, s->opt.id))
		kv_log(s, SR_LOG_INFO,
		       "node %llu is not in --peers: waiting to be added "
		       "(CLUSTER ADD on the leader)",
		       (unsigned long long)s->opt.id);
	else if (!s->opt.peers)
		kv_log(s, SR_LOG_INFO,
		       "no --peers: waiting to be added to a cluster (or "
		       "restarting from %s)",
		       s->opt.data_dir);
	for (unsigned i = 0; i < s->ngroups; i++)
		fsm_wire(&s->groups[i]);
	rc = sr_server_start(s->groups[0].srv); /* starts every group */
	for (unsigned i = 0; i < s->ngroups && rc == 0; i++) {
		const sr_membership *conf = sr_group_membership(
			s->groups[i].grp);
		if (conf && conf->n)
			s->groups[i].conf = *conf;
	}
	return rc;
}

/* The runtime stops in dependency order: no more messages or ticks, then
 * the engines of every group (pending proposals get done(SR_EUNKNOWN)),
 * then the store. */
void kv_raft_close(struct kv_server *s)
{
	for (unsigned i = 0; i < s->ngroups; i++)
		kv_snapfork_cancel(&s->groups[i].fsm);
	if (s->ngroups && s->groups[0].srv)
		sr_server_destroy(s->groups[0].srv);
	for (unsigned i = 0; i < s->ngroups; i++) {
		struct kv_group *g = &s->groups[i];
		g->srv = NULL;
		g->grp = NULL;
		g->node = NULL;
		g->fsm.node = NULL;
	}
}

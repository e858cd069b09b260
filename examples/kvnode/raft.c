/*
 * raft.c — kvnode's wiring of the engine: the log store (the WAL in
 * DIR/raft, or memory), the TCP transport, time, and the configuration.
 *
 * Everything shares one event loop (seshat/loop.h):
 *
 *   - the transport registers its sockets there; each message it receives
 *     goes to sr_node_step();
 *   - the WAL signals finished fsyncs on an eventfd watched by the loop;
 *     sr_wal_process() then reports the appends durable to the engine;
 *   - one loop timer fires at sr_node_deadline() and calls sr_node_tick().
 *     After any call into the engine the deadline may move earlier (a new
 *     leader must heartbeat at once), so kv_raft_kick() re-arms the timer
 *     whenever the deadline is before the armed time.
 *
 * Configuration.  A member's address is "RAFTHOST:PORT/CLIENTHOST:PORT".
 * When the engine reports a new configuration (conf_changed), the raft
 * halves are registered with the transport and removed members dropped;
 * the client halves answer MOVED redirects.  That work is deferred to the
 * loop because callbacks must not re-enter the engine.
 *
 * Bootstrap.  --peers lists the initial voters.  A node whose id is in the
 * list bootstraps with it when its store is empty (sr_node_bootstrap;
 * SR_EEXIST means there is state already and the list is ignored).  A node
 * whose id is not in the list is joining an existing cluster: it only
 * registers the listed nodes with the transport, so that their connections
 * are accepted, and waits for the leader to add it (CLUSTER ADD).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <seshat/mem.h>
#include <seshat/wal.h>

#include "kvnode.h"

struct kv_storage {
	sr_wal *wal;
	sr_mem *mem;
	int wal_fd;
};

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

const char *kv_raft_client_addr(const struct kv_server *s, sr_id id)
{
	static char client[SR_ADDR_MAX];
	char raft[SR_ADDR_MAX];
	const sr_member *m = sr_membership_find(&s->conf, id);

	if (!m ||
	    kv_addr_split(m->addr, raft, sizeof(raft), client, sizeof(client)))
		return NULL;
	return client;
}

int kv_raft_is_learner(const struct kv_server *s)
{
	const sr_member *m = sr_membership_find(&s->conf, s->opt.id);
	return m && m->role == SR_ROLE_LEARNER;
}

/* ------------------------------------------------------------------ */
/* Time                                                               */
/* ------------------------------------------------------------------ */

/*
 * The engine keeps the time it was last ticked with and measures its
 * timers from it (an election timer reset by a heartbeat starts at that
 * time).  Ticking only at sr_node_deadline() would leave it stale while
 * messages arrive, so the clock is brought up to date before every call
 * that hands the engine an event.
 */
void kv_raft_sync_time(struct kv_server *s)
{
	uint64_t now = sr_loop_now_ms(s->loop);

	if (s->node && now > s->last_tick_ms) {
		s->last_tick_ms = now;
		sr_node_tick(s->node, now);
	}
}

static void on_tick(sr_loop *loop, uint64_t id, void *ctx)
{
	struct kv_server *s = ctx;

	(void)loop;
	(void)id;
	s->tick_timer = 0;
	if (s->stopping)
		return;
	s->last_tick_ms = 0; /* tick even if the clock did not move */
	kv_raft_sync_time(s);
	kv_raft_kick(s);
}

void kv_raft_kick(struct kv_server *s)
{
	uint64_t now, due, delay;

	if (s->stopping || !s->node)
		return;
	now = sr_loop_now_ms(s->loop);
	due = sr_node_deadline(s->node);
	if (due == UINT64_MAX)
		due = now + 1000; /* stopped: look again now and then */
	if (due <= now)
		due = now + 1; /* never spin on a deadline in the past */
	if (s->tick_timer && s->tick_at <= due)
		return;
	if (s->tick_timer)
		sr_loop_timer_cancel(s->loop, s->tick_timer);
	delay = due - now;
	s->tick_timer = 0;
	if (sr_loop_timer_add(s->loop, delay, on_tick, s, &s->tick_timer) == 0)
		s->tick_at = due;
}

/* ------------------------------------------------------------------ */
/* Transport peers                                                    */
/* ------------------------------------------------------------------ */

static int tpeer_find(const struct kv_server *s, sr_id id)
{
	for (uint32_t i = 0; i < s->n_tpeers; i++)
		if (s->tpeer_id[i] == id)
			return (int)i;
	return -1;
}

static void tpeer_set(struct kv_server *s, sr_id id, const char *raft)
{
	int i = tpeer_find(s, id);

	if (i >= 0 && strcmp(s->tpeer_addr[i], raft) == 0)
		return;
	if (i < 0) {
		if (s->n_tpeers == SR_MAX_MEMBERS)
			return;
		i = (int)s->n_tpeers++;
		s->tpeer_id[i] = id;
	}
	snprintf(s->tpeer_addr[i], SR_ADDR_MAX, "%s", raft);
	if (sr_tcp_set_peer(s->tcp, id, raft))
		kv_log(s, SR_LOG_WARN, "cannot register peer %llu at %s",
		       (unsigned long long)id, raft);
	else
		kv_log(s, SR_LOG_INFO, "peer %llu at %s",
		       (unsigned long long)id, raft);
}

static void tpeer_drop(struct kv_server *s, uint32_t i)
{
	sr_tcp_remove_peer(s->tcp, s->tpeer_id[i]);
	kv_log(s, SR_LOG_INFO, "peer %llu dropped",
	       (unsigned long long)s->tpeer_id[i]);
	s->n_tpeers--;
	s->tpeer_id[i] = s->tpeer_id[s->n_tpeers];
	memcpy(s->tpeer_addr[i], s->tpeer_addr[s->n_tpeers], SR_ADDR_MAX);
}

/* Make the transport's peers match the configuration. */
static void conf_apply(sr_loop *loop, void *ctx)
{
	struct kv_server *s = ctx;
	char raft[SR_ADDR_MAX], client[SR_ADDR_MAX];

	(void)loop;
	s->conf_scheduled = 0;
	if (s->stopping || !s->tcp)
		return;
	for (uint32_t i = 0; i < s->conf.n; i++) {
		const sr_member *m = &s->conf.members[i];
		if (m->id == s->opt.id || m->role == SR_ROLE_REMOVED)
			continue;
		if (kv_addr_split(m->addr, raft, sizeof(raft), client,
				  sizeof(client))) {
			kv_log(s, SR_LOG_WARN, "member %llu: bad address '%s'",
			       (unsigned long long)m->id, m->addr);
			continue;
		}
		tpeer_set(s, m->id, raft);
	}
	for (uint32_t i = 0; i < s->n_tpeers;) {
		const sr_member *m = sr_membership_find(&s->conf,
							s->tpeer_id[i]);
		if (!m || m->role == SR_ROLE_REMOVED)
			tpeer_drop(s, i);
		else
			i++;
	}
}

static void on_conf_changed(void *ctx, const sr_membership *conf)
{
	struct kv_server *s = ctx;

	s->conf = *conf;
	if (!s->conf_scheduled && sr_loop_defer(s->loop, conf_apply, s) == 0)
		s->conf_scheduled = 1;
}

/* ------------------------------------------------------------------ */
/* Engine callbacks                                                   */
/* ------------------------------------------------------------------ */

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

static void on_state_changed(void *ctx, int role, sr_term term, sr_id leader)
{
	struct kv_server *s = ctx;
	sr_status st;

	kv_log(s, SR_LOG_INFO, "now %s in term %llu, leader %llu",
	       sr_role_name(role), (unsigned long long)term,
	       (unsigned long long)leader);
	if (role != SR_STOPPED)
		return;
	/* The store failed (EIO, ENOSPC, ...): the engine acknowledges
	 * nothing more.  Exit with an error so that a supervisor notices
	 * and restarts the node once the disk is fixed; nothing it
	 * acknowledged is lost (it was durable before it was counted). */
	sr_node_status(s->node, &st);
	kv_log(s, SR_LOG_ERROR, "storage failed (%s): exiting",
	       sr_strerror(st.error));
	s->fatal = st.error ? st.error : SR_EIO;
	sr_loop_stop(s->loop);
}

static void on_message(void *ctx, const sr_msg *msg)
{
	struct kv_server *s = ctx;

	if (s->stopping)
		return;
	kv_raft_sync_time(s);
	sr_node_step(s->node, msg);
	kv_raft_kick(s);
}

static void on_storage_done(void *ctx, uint64_t token, int status)
{
	sr_node_storage_done(ctx, token, status);
}

static void on_wal_ready(sr_loop *loop, int fd, int events, void *ctx)
{
	struct kv_server *s = ctx;

	(void)loop;
	(void)fd;
	(void)events;
	kv_raft_sync_time(s);
	sr_wal_process(s->store->wal);
	kv_raft_kick(s);
}

/* ------------------------------------------------------------------ */
/* Start and stop                                                     */
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

static int storage_open(struct kv_server *s)
{
	struct kv_storage *st = calloc(1, sizeof(*st));
	char path[4096];
	int rc;

	if (!st)
		return SR_ENOMEM;
	st->wal_fd = -1;
	s->store = st;
	if (!s->opt.storage_wal) {
		sr_mem_config mc = { .mode = SR_MEM_SYNC };
		return sr_mem_create(&mc, &st->mem);
	}
	sr_wal_options o;
	snprintf(path, sizeof(path), "%s/raft", s->opt.data_dir);
	sr_wal_options_init(&o, path);
	if (s->opt.wal_segment)
		o.segment_size = s->opt.wal_segment;
	o.log = kv_log_hook;
	o.log_ctx = s;
	o.log_level = s->opt.log_level;
	rc = sr_wal_open(&o, &st->wal);
	if (rc == SR_ELOCKED)
		kv_log(s, SR_LOG_ERROR, "%s is in use by another process",
		       path);
	else if (rc == SR_ECORRUPT)
		kv_log(s, SR_LOG_ERROR,
		       "the log in %s is damaged (see the messages above and "
		       "docs/kvnode.md, 'Recovery')",
		       path);
	else if (rc)
		kv_log(s, SR_LOG_ERROR, "cannot open the log in %s: %s", path,
		       sr_strerror(rc));
	return rc;
}

static int transport_open(struct kv_server *s)
{
	sr_tcp_config tc;
	int rc;

	sr_tcp_config_init(&tc, s->opt.id, s->opt.cluster_id);
	tc.listen_addr = s->opt.raft_addr;
	tc.loop = s->loop;
	tc.on_message = on_message;
	tc.ctx = s;
	/* A node waiting to be added hears from members it cannot know. */
	tc.accept_unknown_peers = 1;
	tc.log = kv_log_hook;
	tc.log_ctx = s;
	tc.log_level = s->opt.log_level;
	rc = sr_tcp_create(&tc, &s->tcp);
	if (rc)
		kv_log(s, SR_LOG_ERROR, "cannot listen for peers on %s: %s",
		       s->opt.raft_addr, sr_strerror(rc));
	return rc;
}

static int node_create(struct kv_server *s)
{
	sr_config cfg;
	int rc;

	sr_config_init(&cfg, s->opt.id);
	cfg.election_timeout_ms = s->opt.election_ms;
	cfg.heartbeat_ms = s->opt.heartbeat_ms;
	cfg.seed = ((uint64_t)s->opt.id << 32) ^ kv_now_ms(s) ^
		   (uint64_t)getpid();
	if (s->opt.snapshot_threshold != UINT64_MAX)
		cfg.snapshot_threshold = s->opt.snapshot_threshold;
	if (s->opt.snapshot_trailing != UINT64_MAX)
		cfg.snapshot_trailing = s->opt.snapshot_trailing;
	cfg.storage = s->store->wal ? sr_wal_storage_ops() : sr_mem_ops();
	cfg.storage_ctx = s->store->wal ? (void *)s->store->wal
					: (void *)s->store->mem;
	cfg.fsm = &kv_fsm_ops;
	cfg.fsm_ctx = &s->fsm;
	cfg.transport = sr_tcp_transport_ops();
	cfg.transport_ctx = s->tcp;
	cfg.host.done = on_done;
	cfg.host.read_done = on_read_done;
	cfg.host.state_changed = on_state_changed;
	cfg.host.conf_changed = on_conf_changed;
	cfg.host.log = kv_log_hook;
	cfg.host_ctx = s;
	cfg.log_level = s->opt.log_level;
	rc = sr_node_create(&cfg, &s->node);
	if (rc) {
		kv_log(s, SR_LOG_ERROR, "cannot create the node: %s",
		       sr_strerror(rc));
		return rc;
	}
	s->fsm.node = s->node;
	if (s->store->wal)
		sr_wal_set_done(s->store->wal, on_storage_done, s->node);
	else
		sr_mem_set_done(s->store->mem, on_storage_done, s->node);
	return 0;
}

/* --peers: bootstrap an initial member, or prepare a joining node. */
static int peers_setup(struct kv_server *s)
{
	sr_membership conf;
	char err[256];
	int rc;

	if (!s->opt.peers) {
		kv_log(s, SR_LOG_INFO,
		       "no --peers: waiting to be added to a "
		       "cluster (or restarting from %s)",
		       s->opt.data_dir);
		return 0;
	}
	if (kv_peers_parse(s->opt.peers, &conf, err, sizeof(err))) {
		kv_log(s, SR_LOG_ERROR, "%s", err);
		return SR_EINVAL;
	}
	if (!sr_membership_find(&conf, s->opt.id)) {
		/* Joining: accept the members' connections until the
		 * configuration arrives. */
		s->conf = conf;
		conf_apply(s->loop, s);
		memset(&s->conf, 0, sizeof(s->conf));
		kv_log(s, SR_LOG_INFO,
		       "node %llu is not in --peers: waiting "
		       "to be added (CLUSTER ADD on the leader)",
		       (unsigned long long)s->opt.id);
		return 0;
	}
	rc = sr_node_bootstrap(s->node, &conf);
	if (rc == SR_EEXIST) {
		kv_log(s, SR_LOG_INFO,
		       "%s holds state already; --peers ignored",
		       s->opt.data_dir);
		return 0;
	}
	if (rc)
		kv_log(s, SR_LOG_ERROR, "bootstrap failed: %s",
		       sr_strerror(rc));
	else
		kv_log(s, SR_LOG_INFO, "bootstrapped a cluster of %u voters",
		       conf.n);
	return rc;
}

int kv_raft_open(struct kv_server *s)
{
	const sr_membership *conf;
	int rc;

	if ((rc = storage_open(s)) || (rc = transport_open(s)) ||
	    (rc = node_create(s)) || (rc = peers_setup(s)))
		return rc;
	s->last_tick_ms = sr_loop_now_ms(s->loop);
	rc = sr_node_start(s->node, s->last_tick_ms);
	if (rc) {
		kv_log(s, SR_LOG_ERROR, "cannot start the node: %s",
		       sr_strerror(rc));
		return rc;
	}
	conf = sr_node_membership(s->node);
	if (conf && conf->n) {
		s->conf = *conf;
		conf_apply(s->loop, s);
	}
	if (s->store->wal) {
		s->store->wal_fd = sr_wal_fd(s->store->wal);
		rc = sr_loop_watch(s->loop, s->store->wal_fd, SR_LOOP_READ,
				   on_wal_ready, s);
		if (rc)
			return rc;
	}
	kv_raft_kick(s);
	return 0;
}

/* Stop in dependency order: no more messages or ticks, then the engine
 * (pending proposals get done(SR_EUNKNOWN)), then the store. */
void kv_raft_close(struct kv_server *s)
{
	struct kv_storage *st = s->store;

	if (s->tick_timer)
		sr_loop_timer_cancel(s->loop, s->tick_timer);
	s->tick_timer = 0;
	if (s->conf_scheduled)
		sr_loop_defer_cancel(s->loop, conf_apply, s);
	if (st && st->wal_fd >= 0)
		sr_loop_unwatch(s->loop, st->wal_fd);
	if (s->tcp)
		sr_tcp_destroy(s->tcp);
	s->tcp = NULL;
	if (s->node)
		sr_node_destroy(s->node);
	s->node = NULL;
	s->fsm.node = NULL;
	if (st) {
		/* Finishes writing what was accepted; completions that
		 * nobody waits for any more are dropped. */
		sr_wal_close(st->wal);
		sr_mem_destroy(st->mem);
		free(st);
	}
	s->store = NULL;
}

/*
 * server.c — sr_server's life: the configuration checks, creation of the
 * loop, store, transport and default group, start, the two ways to run,
 * the single-group calls (the default group's sr_group_* calls, in
 * server_group.c) and destruction.  It is the top of the server's files
 * (server_int.h lists them, lowest first): the engine's callbacks and the
 * WAL's work on the loop are in server_glue.c, messages reach their group
 * in server_group.c, the clock is server_clock.c's, the peers
 * server_peers.c's.
 *
 * Checks.  A host that forgets a piece of the wiring by hand gets a node
 * that looks alive and never commits (a WAL whose completions nobody
 * delivers keeps the leader at commit 0 forever).  Here the server does
 * the wiring, so what is left to check is the configuration: every field
 * the server owns must be untouched, every required field present, and
 * the components' limits must fit together (a transport frame must hold
 * the engine's largest message).  Each refusal is SR_EINVAL with a log
 * line that names the field.
 *
 * Order.  Create: loop, store (the WAL recovers and locks its
 * directory), transport (listening, so port 0 is known at once), the
 * default group's engine.  Start: each group created so far (bootstrap
 * or join, sr_node_start, the transport's peers from the configuration
 * loaded, the first deadline), then the WAL's fd on the loop.  Destroy
 * runs in reverse so that nothing calls into a freed part: the transport
 * first (no more messages), then every group's engine (pending proposals
 * complete with SR_EUNKNOWN), then the store (the WAL finishes writing
 * what it accepted), then the loop.
 */
#include "internal/alloc.h"
#include "server_int.h"

#include <stdio.h>
#include <string.h>

SR_API void sr_server_config_init(sr_server_config *cfg, sr_id id)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->id = id;
	cfg->cluster_id = 1;
	cfg->storage = SR_SERVER_WAL;
	cfg->log_level = SR_LOG_INFO;
	sr_config_init(&cfg->raft, id);
	sr_tcp_config_init(&cfg->tcp, id, 1);
	sr_wal_options_init(&cfg->wal, NULL);
}

/* ------------------------------------------------------------------ */
/* Configuration checks                                               */
/* ------------------------------------------------------------------ */

/* Log why a field is refused (cfg->log may be set even when the rest is
 * wrong: it is the first thing looked at). */
static int refuse(const sr_server_config *c, const char *field, const char *why)
{
	char line[256];

	if (c->log && SR_LOG_ERROR >= c->log_level) {
		snprintf(line, sizeof(line),
			 "server %llu: bad configuration: %s: %s",
			 (unsigned long long)c->id, field, why);
		c->log(c->log_ctx, SR_LOG_ERROR, line);
	}
	return SR_EINVAL;
}

#define OWNED(cond, field)                                                     \
	do {                                                                   \
		if (cond)                                                      \
			return refuse(c, field,                                \
				      "wired by the server: leave it as "      \
				      "sr_server_config_init() set it");       \
	} while (0)

static int check_owned(const sr_server_config *c)
{
	const sr_config *r = &c->raft;
	const sr_tcp_config *t = &c->tcp;
	const sr_wal_options *w = &c->wal;

	OWNED(r->storage || r->storage_ctx, "raft.storage");
	OWNED(r->transport || r->transport_ctx, "raft.transport");
	OWNED(r->fsm || r->fsm_ctx, "raft.fsm (use fsm)");
	OWNED(r->host.done || r->host.state_changed || r->host.conf_changed ||
		      r->host.read_done || r->host.log || r->host_ctx,
	      "raft.host (use host)");
	OWNED(r->alloc, "raft.alloc (use alloc)");
	OWNED(t->listen_addr || t->advertise_addr, "tcp.listen_addr (use "
						   "listen_addr)");
	OWNED(t->loop, "tcp.loop (use loop)");
	OWNED(t->on_message || t->ctx, "tcp.on_message");
	OWNED(t->log || t->log_ctx, "tcp.log (use log)");
	OWNED(t->alloc, "tcp.alloc (use alloc)");
	OWNED(w->dir, "wal.dir (use data_dir)");
	OWNED(w->done || w->done_ctx, "wal.done");
	OWNED(w->log || w->log_ctx, "wal.log (use log)");
	OWNED(w->alloc, "wal.alloc (use alloc)");
	if (r->id && r->id != c->id)
		return refuse(c, "raft.id", "differs from id");
	if (t->id && t->id != c->id)
		return refuse(c, "tcp.id", "differs from id");
	return 0;
}

static int check_addr(const sr_server_config *c, const char *field,
		      const char *addr)
{
	const char *colon = addr ? strrchr(addr, ':') : NULL;

	if (!addr)
		return 0;
	if (!*addr || strlen(addr) >= SR_ADDR_MAX || !colon || !colon[1])
		return refuse(c, field, "want \"host:port\"");
	return 0;
}

static int check_config(const sr_server_config *c)
{
	const sr_config *r = &c->raft;
	int rc;

	if (c->id == 0)
		return refuse(c, "id", "must be >= 1");
	if ((rc = check_owned(c)))
		return rc;
	if (c->no_default_group) {
		if (c->fsm || c->fsm_ctx || c->peers.n || c->host.done ||
		    c->host.state_changed || c->host.conf_changed ||
		    c->host.read_done)
			return refuse(c, "no_default_group",
				      "fsm, host and peers belong to the "
				      "default group: leave them empty");
	} else if (!c->fsm || !c->fsm->apply) {
		return refuse(c, "fsm",
			      "a state machine with apply() is "
			      "required");
	} else if (c->fsm->snapshot && !c->fsm->restore) {
		return refuse(c, "fsm.restore",
			      "required when fsm.snapshot is set");
	}
	if (c->host.log)
		return refuse(c, "host.log", "use log (one hook for all)");
	if (c->storage != SR_SERVER_WAL && c->storage != SR_SERVER_MEM)
		return refuse(c, "storage", "SR_SERVER_WAL or SR_SERVER_MEM");
	if (c->storage == SR_SERVER_WAL && (!c->data_dir || !*c->data_dir))
		return refuse(c, "data_dir", "required with SR_SERVER_WAL");
	if (!c->listen_addr)
		return refuse(c, "listen_addr", "required (\"host:port\")");
	if ((rc = check_addr(c, "listen_addr", c->listen_addr)) ||
	    (rc = check_addr(c, "advertise_addr", c->advertise_addr)))
		return rc;
	if (r->election_timeout_ms == 0 || r->heartbeat_ms == 0 ||
	    r->heartbeat_ms >= r->election_timeout_ms)
		return refuse(c, "raft.heartbeat_ms",
			      "must be > 0 and below raft.election_timeout_ms");
	/* That the transport's frames carry the engine's largest append
	 * and snapshot chunk is checked exactly by sr_node_create(), which
	 * gets the frame limit as raft.transport_max_payload. */
	for (uint32_t i = 0; i < c->peers.n; i++) {
		const sr_member *m = &c->peers.members[i];
		if (m->id == 0 || !m->addr[0] ||
		    memchr(m->addr, 0, SR_ADDR_MAX) == NULL)
			return refuse(c, "peers",
				      "every member needs an id and an "
				      "address");
		for (uint32_t j = 0; j < i; j++)
			if (c->peers.members[j].id == m->id)
				return refuse(c, "peers", "duplicate id");
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Creation                                                           */
/* ------------------------------------------------------------------ */

/* The WAL, shared by every group; with SR_SERVER_MEM each group makes its
 * own memory store.  The WAL's own log is the default group's, which
 * takes over its completions (server_group.c). */
static int open_store(sr_server *s)
{
	sr_wal_options o;
	int rc;

	if (s->cfg.storage == SR_SERVER_MEM)
		return 0;
	o = s->cfg.wal;
	o.dir = s->data_dir;
	o.done = server_storage_done;
	o.done_ctx = NULL;
	o.log = s->cfg.log;
	o.log_ctx = s->cfg.log_ctx;
	o.log_level = s->cfg.log_level;
	o.alloc = s->cfg.alloc;
	rc = sr_wal_open(&o, &s->wal);
	if (rc)
		server_log(s, SR_LOG_ERROR, "cannot open the log in %s: %s",
			   s->data_dir, sr_strerror(rc));
	else /* one fdatasync per loop iteration for every group's term and
	      * vote (server_glue.c, "Term and vote") */
		sr_wal_defer_hard_state(s->wal, 1);
	return rc;
}

static int open_transport(sr_server *s)
{
	sr_tcp_config t = s->cfg.tcp;
	int rc;

	t.id = s->cfg.id;
	t.cluster_id = s->cfg.cluster_id;
	t.listen_addr = s->listen;
	t.advertise_addr = s->advertise[0] ? s->advertise : NULL;
	t.loop = s->loop;
	t.on_message = server_on_message;
	t.ctx = s;
	t.log = s->cfg.log;
	t.log_ctx = s->cfg.log_ctx;
	t.log_level = s->cfg.log_level;
	t.alloc = s->cfg.alloc;
	rc = sr_tcp_create(&t, &s->tcp);
	if (rc)
		server_log(s, SR_LOG_ERROR, "cannot listen for peers on %s: %s",
			   s->listen, sr_strerror(rc));
	return rc;
}

/* The default group, made from the server's own configuration. */
static int create_default_group(sr_server *s)
{
	sr_group_config gc;

	if (s->cfg.no_default_group)
		return 0;
	sr_group_config_init(&gc, s->cfg.raft.group);
	gc.peers = s->cfg.peers;
	gc.fsm = s->cfg.fsm;
	gc.fsm_ctx = s->cfg.fsm_ctx;
	gc.host = s->cfg.host;
	gc.host_ctx = s->cfg.host_ctx;
	return server_group_new(s, &gc, 1, &s->dflt);
}

SR_API int sr_server_create(const sr_server_config *cfg, sr_server **out)
{
	sr_server *s;
	int rc;

	*out = NULL;
	if ((rc = check_config(cfg)))
		return rc;
	s = hook_malloc(cfg->alloc, sizeof(*s));
	if (!s)
		return SR_ENOMEM;
	memset(s, 0, sizeof(*s));
	s->cfg = *cfg;
	s->wal_fd = -1;
	snprintf(s->listen, sizeof(s->listen), "%s", cfg->listen_addr);
	if (cfg->advertise_addr)
		snprintf(s->advertise, sizeof(s->advertise), "%s",
			 cfg->advertise_addr);
	s->cfg.listen_addr = s->listen;
	s->cfg.advertise_addr = cfg->advertise_addr ? s->advertise : NULL;
	if (cfg->storage == SR_SERVER_WAL) {
		size_t len = strlen(cfg->data_dir) + 1;
		s->data_dir = hook_malloc(cfg->alloc, len);
		if (!s->data_dir) {
			rc = SR_ENOMEM;
			goto fail;
		}
		memcpy(s->data_dir, cfg->data_dir, len);
	}
	s->cfg.data_dir = s->data_dir;
	if (cfg->loop) {
		s->loop = cfg->loop;
	} else {
		if ((rc = sr_loop_create(cfg->alloc, &s->loop)))
			goto fail;
		s->own_loop = 1;
	}
	if ((rc = open_store(s)) || (rc = open_transport(s)) ||
	    (rc = create_default_group(s)))
		goto fail;
	*out = s;
	return 0;
fail:
	sr_server_destroy(s);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Start                                                              */
/* ------------------------------------------------------------------ */

SR_API int sr_server_start(sr_server *s)
{
	sr_group **all;
	size_t n;
	int rc = 0;

	if (s->started || s->depth)
		return SR_ESTATE;
	/* The default group first: its log lines and errors come first, as
	 * they did before there were groups. */
	if (s->dflt && (rc = server_group_start(s->dflt)))
		return rc;
	n = sr_server_groups(s, NULL, 0);
	all = hook_malloc(s->cfg.alloc, (n ? n : 1) * sizeof(*all));
	if (!all)
		return SR_ENOMEM;
	sr_server_groups(s, all, n);
	for (size_t i = 0; i < n && rc == 0; i++)
		if (!all[i]->started)
			rc = server_group_start(all[i]);
	hook_free(s->cfg.alloc, all);
	if (rc)
		return rc;
	if (s->wal) {
		rc = sr_loop_watch(s->loop, sr_wal_fd(s->wal), SR_LOOP_READ,
				   server_wal_ready, s);
		if (rc)
			return rc;
		s->wal_fd = sr_wal_fd(s->wal);
	}
	s->started = 1;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Running                                                            */
/* ------------------------------------------------------------------ */

SR_API int sr_server_run(sr_server *s)
{
	int rc;

	if (s->depth || s->running)
		return SR_ESTATE;
	if (s->error)
		return s->error;
	s->running = 1;
	rc = sr_loop_run(s->loop);
	s->running = 0;
	return rc ? rc : s->error;
}

SR_API void sr_server_stop(sr_server *s)
{
	sr_loop_stop(s->loop);
}

SR_API int sr_server_fd(const sr_server *s)
{
	return sr_loop_fd(s->loop);
}

SR_API int sr_server_timeout_ms(sr_server *s)
{
	return sr_loop_timeout_ms(s->loop);
}

SR_API int sr_server_process(sr_server *s)
{
	int rc;

	if (s->depth)
		return SR_ESTATE;
	rc = sr_loop_run_once(s->loop, 0);
	return s->error ? s->error : rc;
}

SR_API sr_loop *sr_server_loop(const sr_server *s)
{
	return s->loop;
}

/* ------------------------------------------------------------------ */
/* The engine's calls                                                 */
/* ------------------------------------------------------------------ */

/* A single-group call on a server without a default group. */
static int no_default(sr_server *s, const char *what)
{
	return server_refuse(s, what,
			     ": this server has no default group "
			     "(no_default_group): use sr_group_*");
}

SR_API int sr_server_propose(sr_server *s, const void *data, size_t len,
			     void *cookie, sr_index *index_out)
{
	if (!s->dflt)
		return no_default(s, "sr_server_propose");
	return sr_group_propose(s->dflt, data, len, cookie, index_out);
}

SR_API int sr_server_propose_batch(sr_server *s, const sr_buf *cmds,
				   size_t count, void *const *cookies,
				   sr_index *first_out)
{
	if (!s->dflt)
		return no_default(s, "sr_server_propose_batch");
	return sr_group_propose_batch(s->dflt, cmds, count, cookies, first_out);
}

SR_API int sr_server_read(sr_server *s, void *cookie)
{
	if (!s->dflt)
		return no_default(s, "sr_server_read");
	return sr_group_read(s->dflt, cookie);
}

SR_API int sr_server_tick(sr_server *s)
{
	int rc;

	if (!s->dflt)
		return no_default(s, "sr_server_tick");
	if ((rc = server_group_enter(s->dflt, "sr_server_tick")))
		return rc;
	return server_group_leave(s->dflt, 0);
}

SR_API int sr_server_add(sr_server *s, sr_id id, const char *addr,
			 int auto_promote)
{
	if (!s->dflt)
		return no_default(s, "sr_server_add");
	return sr_group_add(s->dflt, id, addr, auto_promote);
}

SR_API int sr_server_remove(sr_server *s, sr_id id)
{
	if (!s->dflt)
		return no_default(s, "sr_server_remove");
	return sr_group_remove(s->dflt, id);
}

SR_API int sr_server_promote(sr_server *s, sr_id id)
{
	if (!s->dflt)
		return no_default(s, "sr_server_promote");
	return sr_group_promote(s->dflt, id);
}

SR_API int sr_server_transfer(sr_server *s, sr_id target)
{
	if (!s->dflt)
		return no_default(s, "sr_server_transfer");
	return sr_group_transfer(s->dflt, target);
}

SR_API int sr_server_snapshot(sr_server *s)
{
	if (!s->dflt)
		return no_default(s, "sr_server_snapshot");
	return sr_group_snapshot(s->dflt);
}

/* ------------------------------------------------------------------ */
/* Observing                                                          */
/* ------------------------------------------------------------------ */

SR_API void sr_server_status(const sr_server *s, sr_status *out)
{
	if (s->dflt)
		sr_node_status(s->dflt->node, out);
	else
		memset(out, 0, sizeof(*out));
}

SR_API const sr_membership *sr_server_membership(const sr_server *s)
{
	return s->dflt ? sr_node_membership(s->dflt->node) : NULL;
}

SR_API int sr_server_port(const sr_server *s)
{
	return sr_tcp_port(s->tcp);
}

SR_API sr_node *sr_server_node(const sr_server *s)
{
	return s->dflt ? s->dflt->node : NULL;
}

SR_API sr_tcp *sr_server_tcp(const sr_server *s)
{
	return s->tcp;
}

SR_API sr_wal *sr_server_wal(const sr_server *s)
{
	return s->wal;
}

/* ------------------------------------------------------------------ */
/* Destruction                                                        */
/* ------------------------------------------------------------------ */

SR_API void sr_server_destroy(sr_server *s)
{
	if (!s)
		return;
	server_clock_cancel_timer(s);
	server_wal_cancel(s);
	if (s->wal_fd >= 0)
		sr_loop_unwatch(s->loop, s->wal_fd);
	s->wal_fd = -1;
	if (s->tcp)
		sr_tcp_destroy(s->tcp);
	s->tcp = NULL;
	s->started = 0;
	/* Every engine's last callbacks (pending proposals and reads fail)
	 * still reach the host. */
	while (s->n_groups) {
		sr_group *g = NULL;
		for (size_t i = 0; !g && i < s->n_buckets; i++)
			g = s->buckets[i];
		server_group_free(g);
	}
	sr_wal_close(s->wal);
	if (s->own_loop && s->loop)
		sr_loop_destroy(s->loop);
	hook_free(s->cfg.alloc, s->buckets);
	hook_free(s->cfg.alloc, s->heap);
	hook_free(s->cfg.alloc, s->peers);
	hook_free(s->cfg.alloc, s->data_dir);
	hook_free(s->cfg.alloc, s);
}

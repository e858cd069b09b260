/*
 * server_glue.c — what the server does on the loop: the wiring between
 * the engine and its store, transport and clock.
 *
 * Time.  The engine has no clock: it measures its timers from the time of
 * its latest tick (a follower restarts its election timer from it when
 * the leader is heard, thesis §3.4).  So before every call that hands the
 * engine an event, sr_srvi_sync() reads the loop's clock and ticks the
 * engine if time moved; after the call, sr_srvi_kick() makes sure one
 * loop timer is armed no later than sr_node_deadline() (a call can move
 * the deadline earlier: a new leader heartbeats at once).  The timer is
 * only moved earlier, never cancelled for a later deadline: firing early
 * costs one tick that finds nothing due.
 *
 * Storage.  The WAL reports finished fsyncs on an eventfd that the loop
 * watches; sr_wal_process() then calls sr_srvi_storage_done() for each
 * append, in order, which tells the engine.  The memory store calls the
 * same function from inside append().
 *
 * Messages.  The transport's on_message ticks, steps and kicks.  Messages
 * that arrive before sr_server_start() are dropped (Raft resends).
 *
 * Peers.  The engine reports each new configuration (conf_changed) from
 * inside a call; the transport's peer table is brought in line after the
 * call returns (a deferred call), with each member's address mapped by
 * transport_addr.  Members that left the configuration are dropped.
 *
 * Re-entrancy.  s->depth counts the engine calls in progress; the public
 * calls in server.c refuse to run while it is non-zero, because the
 * engine must not be re-entered from its own callbacks.
 */
#include "server_int.h"

#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Clock and deadline                                                 */
/* ------------------------------------------------------------------ */

void sr_srvi_sync(sr_server *s)
{
	uint64_t now = sr_loop_update_now(s->loop);

	if (now > s->last_tick) {
		s->last_tick = now;
		sr_node_tick(s->node, now);
	}
}

static void on_deadline(sr_loop *loop, uint64_t id, void *ctx)
{
	sr_server *s = ctx;
	uint64_t now = sr_loop_update_now(loop);

	(void)id;
	s->timer = 0;
	s->depth++;
	if (now > s->last_tick)
		s->last_tick = now;
	sr_node_tick(s->node, s->last_tick);
	s->depth--;
	sr_srvi_kick(s);
}

void sr_srvi_kick(sr_server *s)
{
	uint64_t now, due;

	if (!s->started || s->depth)
		return;
	now = sr_loop_now_ms(s->loop);
	due = sr_node_deadline(s->node);
	if (due == UINT64_MAX)
		due = now + 1000; /* stopped: look again now and then */
	if (due <= now)
		due = now + 1; /* never spin on a deadline in the past */
	if (s->timer && s->timer_at <= due)
		return;
	if (s->timer)
		sr_loop_timer_cancel(s->loop, s->timer);
	s->timer = 0;
	if (sr_loop_timer_add(s->loop, due - now, on_deadline, s, &s->timer))
		sr_srvi_log(s, SR_LOG_ERROR,
			    "cannot arm the deadline timer (out of memory)");
	else
		s->timer_at = due;
}

/* ------------------------------------------------------------------ */
/* Storage and transport events                                       */
/* ------------------------------------------------------------------ */

void sr_srvi_storage_done(void *ctx, uint64_t token, int status)
{
	sr_server *s = ctx;

	sr_node_storage_done(s->node, token, status);
}

void sr_srvi_wal_ready(sr_loop *loop, int fd, int events, void *ctx)
{
	sr_server *s = ctx;

	(void)loop;
	(void)fd;
	(void)events;
	s->depth++;
	sr_srvi_sync(s);
	sr_wal_process(s->wal);
	s->depth--;
	sr_srvi_kick(s);
}

/*
 * A follower writes on the loop's thread.  Its acknowledgement waits for
 * its appends to be durable, and it has nothing else to do meanwhile, so
 * handing each batch to the WAL's writer thread and having the writer's
 * completion wake the loop again only adds two thread hand-offs to the
 * leader's round trip (on a loaded two-core machine each wake-up waited
 * about 0.19 ms for a CPU on average, `perf sched latency`).  So while a
 * follower, the server holds the WAL at the first message of a loop
 * iteration and, once every message of that iteration is stepped (a
 * deferred call, so that the appends of several messages share one
 * fdatasync), writes them with sr_wal_write_now(): on this thread when
 * the writer is idle, else by waking it.  The acknowledgements leave at
 * the end of the same iteration.  Under load that would stall the
 * follower's pipeline (appends would wait in the socket while the loop
 * syncs, and the disk would idle while the loop answers and reads), so
 * when one iteration brings more than one append with entries — they
 * queued up during the previous sync — the batch goes to the writer
 * thread instead, which keeps syncing while the loop receives (measured
 * at 200 clients: always writing on the loop cost kvnode about 15% of its
 * writes/s).  A leader does not do this: it sends
 * its appends before its own disk write and keeps reading clients and
 * replicating while it syncs (thesis §10.2.1); tried, writing on the
 * leader's loop halved kvnode's writes/s at 50 clients.
 */
static void wal_write_deferred(sr_loop *loop, void *ctx)
{
	sr_server *s = ctx;

	(void)loop;
	s->wal_held = 0;
	if (s->held_appends > 1) {
		sr_wal_release(s->wal); /* busy: keep the writer's pipeline */
		return;
	}
	sr_tcp_flush(s->tcp); /* answers to heartbeats leave first */
	s->depth++;
	sr_srvi_sync(s);
	sr_wal_write_now(s->wal);
	s->depth--;
	sr_srvi_kick(s);
}

void sr_srvi_wal_cancel(sr_server *s)
{
	if (!s->wal_held)
		return;
	/* sr_wal_close() writes what is held (it wakes the writer itself) */
	sr_loop_defer_cancel(s->loop, wal_write_deferred, s);
	s->wal_held = 0;
}

static void wal_hold(sr_server *s, int role)
{
	if (!s->wal || s->wal_held || s->role != role)
		return;
	if (sr_loop_defer(s->loop, wal_write_deferred, s))
		return; /* out of memory: the appends wake the writer */
	sr_wal_hold(s->wal);
	s->wal_held = 1;
	s->held_appends = 0;
}

void sr_srvi_on_message(void *ctx, const sr_msg *msg)
{
	sr_server *s = ctx;

	if (!s->started)
		return;
	wal_hold(s, SR_FOLLOWER);
	if (s->wal_held && msg->type == SR_MSG_APPEND &&
	    msg->u.append.n_entries)
		s->held_appends++;
	s->depth++;
	sr_srvi_sync(s);
	sr_node_step(s->node, msg);
	s->depth--;
	sr_srvi_kick(s);
}

/* ------------------------------------------------------------------ */
/* Peers                                                              */
/* ------------------------------------------------------------------ */

static int tpeer_find(const sr_server *s, sr_id id)
{
	for (uint32_t i = 0; i < s->n_tpeers; i++)
		if (s->tpeer[i] == id)
			return (int)i;
	return -1;
}

static void peer_set(sr_server *s, const sr_member *m)
{
	char addr[SR_ADDR_MAX];
	int rc = 0;

	if (s->cfg.transport_addr) {
		addr[0] = 0;
		rc = s->cfg.transport_addr(s->cfg.host_ctx, m, addr,
					   sizeof(addr));
		addr[sizeof(addr) - 1] = 0;
	} else {
		snprintf(addr, sizeof(addr), "%s", m->addr);
	}
	if (rc == 0)
		rc = sr_tcp_set_peer(s->tcp, m->id, addr);
	if (rc) {
		sr_srvi_log(s, SR_LOG_WARN,
			    "member %llu: cannot reach address '%s': %s",
			    (unsigned long long)m->id, m->addr,
			    sr_strerror(rc));
		return;
	}
	if (tpeer_find(s, m->id) < 0 && s->n_tpeers < SR_MAX_MEMBERS)
		s->tpeer[s->n_tpeers++] = m->id;
}

void sr_srvi_peers_sync(sr_server *s, const sr_membership *conf, int drop)
{
	for (uint32_t i = 0; i < conf->n; i++) {
		const sr_member *m = &conf->members[i];
		if (m->id != s->cfg.id && m->role != SR_ROLE_REMOVED)
			peer_set(s, m);
	}
	if (!drop)
		return;
	for (uint32_t i = 0; i < s->n_tpeers;) {
		const sr_member *m = sr_membership_find(conf, s->tpeer[i]);
		if (m && m->role != SR_ROLE_REMOVED) {
			i++;
			continue;
		}
		sr_tcp_remove_peer(s->tcp, s->tpeer[i]);
		sr_srvi_log(s, SR_LOG_INFO, "member %llu left: peer dropped",
			    (unsigned long long)s->tpeer[i]);
		s->tpeer[i] = s->tpeer[--s->n_tpeers];
	}
}

static void peers_deferred(sr_loop *loop, void *ctx)
{
	sr_server *s = ctx;

	(void)loop;
	s->conf_pending = 0;
	sr_srvi_peers_sync(s, &s->conf, 1);
}

void sr_srvi_peers_cancel(sr_server *s)
{
	if (s->conf_pending)
		sr_loop_defer_cancel(s->loop, peers_deferred, s);
	s->conf_pending = 0;
}

/* ------------------------------------------------------------------ */
/* The engine's callbacks, relayed to the host                        */
/* ------------------------------------------------------------------ */

static void cb_done(void *ctx, void *cookie, int status, sr_index index,
		    void *result)
{
	sr_server *s = ctx;

	if (s->cfg.host.done)
		s->cfg.host.done(s->cfg.host_ctx, cookie, status, index,
				 result);
	else if (result && s->cfg.fsm->free_result)
		s->cfg.fsm->free_result(s->cfg.fsm_ctx, result);
}

static void cb_read_done(void *ctx, void *cookie, int status, sr_index index)
{
	sr_server *s = ctx;

	if (s->cfg.host.read_done)
		s->cfg.host.read_done(s->cfg.host_ctx, cookie, status, index);
}

static void cb_state_changed(void *ctx, int role, sr_term term, sr_id leader)
{
	sr_server *s = ctx;

	s->role = role;
	if (role == SR_STOPPED) {
		sr_status st;
		sr_node_status(s->node, &st);
		s->error = st.error ? st.error : SR_EIO;
		sr_srvi_log(s, SR_LOG_ERROR,
			    "the store failed (%s): the node has stopped",
			    sr_strerror(s->error));
		if (s->running)
			sr_loop_stop(s->loop);
	}
	if (s->cfg.host.state_changed)
		s->cfg.host.state_changed(s->cfg.host_ctx, role, term, leader);
}

static void cb_conf_changed(void *ctx, const sr_membership *conf)
{
	sr_server *s = ctx;

	s->conf = *conf;
	if (!s->conf_pending && sr_loop_defer(s->loop, peers_deferred, s) == 0)
		s->conf_pending = 1;
	if (s->cfg.host.conf_changed)
		s->cfg.host.conf_changed(s->cfg.host_ctx, conf);
}

static void cb_log(void *ctx, int level, const char *line)
{
	sr_server *s = ctx;

	if (s->cfg.log)
		s->cfg.log(s->cfg.log_ctx, level, line);
}

const sr_host_ops sr_srvi_host_ops = {
	.done = cb_done,
	.state_changed = cb_state_changed,
	.conf_changed = cb_conf_changed,
	.read_done = cb_read_done,
	.log = cb_log,
};

/*
 * server_glue.c — the wiring between each group's engine and the shared
 * store and transport: the callbacks and vtables every group's engine
 * and store are created with (server_group.c), and the WAL's work on the
 * loop.  It calls only down (server_clock.c, server_peers.c,
 * server_log.c); the transport's messages come in through
 * server_group.c, which finds their group.
 *
 * Storage.  The WAL reports finished fsyncs on an eventfd that the loop
 * watches; sr_wal_process() then calls server_storage_done() for each
 * append, in order, with the group as context, which tells that group's
 * engine.  The memory store calls the same function from inside append().
 *
 * Sending.  Every group's engine sends through one vtable that counts the
 * message and hands it to the shared transport, which queues it on the
 * peer's one connection.
 *
 * Re-entrancy.  s->depth counts the engine calls in progress and
 * s->inside names the group being called; the public calls refuse to run
 * while depth is non-zero, because an engine must not be re-entered from
 * its own callbacks, and a callback of one group that drove another would
 * hand that one events out of order.
 */
#include "server_int.h"

#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Storage and transport events                                       */
/* ------------------------------------------------------------------ */

void server_storage_done(void *ctx, uint64_t token, int status)
{
	sr_group *g = ctx;
	sr_server *s;

	if (!g)
		return; /* the WAL's own log, its group destroyed */
	s = g->srv;
	/* A synchronous store completes inside the group's own engine call:
	 * its clock is current, and the call's end re-queues it. */
	if (s->inside == g) {
		sr_node_storage_done(g->node, token, status);
		return;
	}
	server_clock_sync(g);
	s->inside = g;
	sr_node_storage_done(g->node, token, status);
	s->inside = NULL;
	server_clock_schedule(g);
}

void server_wal_ready(sr_loop *loop, int fd, int events, void *ctx)
{
	sr_server *s = ctx;

	(void)loop;
	(void)fd;
	(void)events;
	s->depth++;
	sr_wal_process(s->wal);
	s->depth--;
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
 * writes/s).  A leader does this with leader_writes_inline, for every
 * iteration that proposes (server_wal_hold_proposal), as Redis with
 * appendfsync always does: its appends leave for the followers first
 * (sr_tcp_flush below), so the followers' syncs run beside its own, and
 * the requests that arrive during the sync make the next batch, which
 * grows with the load instead of being cut at every wake-up.
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
	sr_wal_write_now(s->wal);
	s->depth--;
}

/*
 * Term and vote.  The WAL defers the groups' hard states (open_store):
 * set_hard_state() only queues a record, so the votes and terms of
 * every group that changed in one loop iteration share one fdatasync.
 * A message that depends on a change must not leave before it is
 * durable (a vote forgotten in a crash could elect two leaders), so the
 * first message sent while a change is pending corks the transport:
 * from then on nothing reaches a socket, whoever tries to write
 * (deferred flush, writable socket, reconnection).  A deferred call at
 * the end of the iteration syncs the hard states and uncorks.  If the
 * sync fails the transport stays corked: what depended on it never
 * leaves, and the server stops with the error.
 */
static void hs_sync_deferred(sr_loop *loop, void *ctx)
{
	sr_server *s = ctx;
	int rc;

	(void)loop;
	s->depth++;
	rc = sr_wal_sync_hard_state(s->wal);
	s->depth--;
	if (rc) {
		s->error = rc;
		server_log(s, SR_LOG_ERROR,
			   "the store failed writing terms and votes (%s): "
			   "the node has stopped",
			   sr_strerror(rc));
		if (s->running)
			sr_loop_stop(s->loop);
		return;
	}
	s->hs_corked = 0;
	sr_tcp_cork(s->tcp, 0);
}

static void hs_cork(sr_server *s)
{
	if (s->hs_corked || !s->tcp || !sr_wal_hard_state_pending(s->wal))
		return;
	sr_tcp_cork(s->tcp, 1);
	s->hs_corked = 1;
	if (sr_loop_defer(s->loop, hs_sync_deferred, s))
		hs_sync_deferred(s->loop, s); /* out of memory: sync now */
}

void server_wal_cancel(sr_server *s)
{
	if (s->hs_corked) {
		sr_loop_defer_cancel(s->loop, hs_sync_deferred, s);
		s->hs_corked = 0;
	}
	if (!s->wal_held)
		return;
	/* sr_wal_close() writes what is held (it wakes the writer itself) */
	sr_loop_defer_cancel(s->loop, wal_write_deferred, s);
	s->wal_held = 0;
}

/* Hold the WAL for the rest of the loop iteration. */
void server_wal_hold(sr_server *s)
{
	if (!s->wal || s->wal_held)
		return;
	if (sr_loop_defer(s->loop, wal_write_deferred, s))
		return; /* out of memory: the appends wake the writer */
	sr_wal_hold(s->wal);
	s->wal_held = 1;
	s->held_appends = 0;
}

/*
 * A proposal to a leader, with leader_writes_inline: written at the end
 * of the iteration as a follower's appends are (wal_write_deferred), on
 * the loop when the writer thread is idle.  Against holding only a lone
 * proposal with nothing in flight, measured with kvnode (make bench-kv
 * BASE_BUILD, 5 rounds, quiet 2-core VM): 1.05x the writes/s at 50
 * clients and 1.19x at 200, CPU per write over the three nodes -34% and
 * -30%, fdatasyncs per write 0.053 vs 0.072 and 0.021 vs 0.038.
 */
void server_wal_hold_proposal(sr_group *g)
{
	if (g->srv->cfg.leader_writes_inline && g->role == SR_LEADER)
		server_wal_hold(g->srv);
}

static int send_msg(void *ctx, const sr_msg *msg)
{
	sr_server *s = ctx;

	s->stats.msgs_out++;
	if (s->wal)
		hs_cork(s);
	return sr_tcp_send(s->tcp, msg);
}

const sr_transport_ops server_transport_ops = { .send = send_msg };

/* ------------------------------------------------------------------ */
/* The engine's callbacks, relayed to the group's host                */
/* ------------------------------------------------------------------ */

static void cb_done(void *ctx, void *cookie, int status, sr_index index,
		    void *result)
{
	sr_group *g = ctx;

	if (g->cfg.host.done)
		g->cfg.host.done(g->cfg.host_ctx, cookie, status, index,
				 result);
	else if (result && g->cfg.fsm->free_result)
		g->cfg.fsm->free_result(g->cfg.fsm_ctx, result);
}

static void cb_read_done(void *ctx, void *cookie, int status, sr_index index)
{
	sr_group *g = ctx;

	if (g->cfg.host.read_done)
		g->cfg.host.read_done(g->cfg.host_ctx, cookie, status, index);
}

/*
 * A stopped engine means the store failed.  The store is shared (one WAL
 * for every group), so the server stops with it: sr_server_run() and
 * sr_server_process() return the error.
 */
static void cb_state_changed(void *ctx, int role, sr_term term, sr_id leader)
{
	sr_group *g = ctx;
	sr_server *s = g->srv;

	g->role = role;
	if (role == SR_STOPPED) {
		sr_status st;
		sr_node_status(g->node, &st);
		s->error = st.error ? st.error : SR_EIO;
		if (g->is_default)
			server_log(s, SR_LOG_ERROR,
				   "the store failed (%s): the node has "
				   "stopped",
				   sr_strerror(s->error));
		else
			server_log(s, SR_LOG_ERROR,
				   "group %u: the store failed (%s): the "
				   "group has stopped",
				   g->id, sr_strerror(s->error));
		if (s->running)
			sr_loop_stop(s->loop);
	}
	if (g->cfg.host.state_changed)
		g->cfg.host.state_changed(g->cfg.host_ctx, role, term, leader);
}

static void cb_conf_changed(void *ctx, const sr_membership *conf)
{
	sr_group *g = ctx;

	g->conf = *conf;
	server_peers_defer(g);
	if (g->cfg.host.conf_changed)
		g->cfg.host.conf_changed(g->cfg.host_ctx, conf);
}

/* The default group's lines go out as the engine wrote them (as before
 * there were groups); the others' carry their group id. */
static void cb_log(void *ctx, int level, const char *line)
{
	sr_group *g = ctx;
	sr_server *s = g->srv;
	char buf[640];

	if (!s->cfg.log)
		return;
	if (g->is_default) {
		s->cfg.log(s->cfg.log_ctx, level, line);
		return;
	}
	snprintf(buf, sizeof(buf), "group %u: %s", g->id, line);
	s->cfg.log(s->cfg.log_ctx, level, buf);
}

const sr_host_ops server_host_ops = {
	.done = cb_done,
	.state_changed = cb_state_changed,
	.conf_changed = cb_conf_changed,
	.read_done = cb_read_done,
	.log = cb_log,
};

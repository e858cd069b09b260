/*
 * server_int.h — the sr_server object, shared by server.c (creation,
 * checks, lifetime, the public calls) and server_glue.c (the wiring that
 * runs on the loop: clock, deadline timer, storage completions, messages,
 * peers, the engine's callbacks).
 */
#ifndef SR_SERVER_INT_H
#define SR_SERVER_INT_H

#include "seshat/mem.h"
#include "seshat/server.h"

struct sr_server {
	sr_server_config cfg; /* the caller's, strings re-pointed below */
	char listen[SR_ADDR_MAX];
	char advertise[SR_ADDR_MAX];
	char *data_dir;

	sr_loop *loop;
	int own_loop;
	sr_wal *wal;
	sr_mem *mem;
	int wal_fd; /* watched by the loop once started, else -1 */
	sr_tcp *tcp;
	sr_node *node;

	int started;
	int depth; /* > 0 while inside an engine call */
	uint64_t last_tick;
	uint64_t timer;	   /* the deadline timer, 0 when none */
	uint64_t timer_at; /* when it fires */

	/* The configuration in effect, and the peers registered with the
	 * transport because of it (kept so that removed members can be
	 * dropped). */
	sr_membership conf;
	int conf_pending; /* a deferred peer sync is queued */
	sr_id tpeer[SR_MAX_MEMBERS];
	uint32_t n_tpeers;

	int role;	  /* the engine's role, as last reported */
	int wal_held;	  /* the WAL is held; write_deferred is queued */
	int held_appends; /* appends with entries stepped while held */
	int error;	  /* the storage error that stopped the engine, or 0 */
	int running;	  /* inside sr_server_run() */
};

void sr_srvi_log(sr_server *s, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* server_glue.c */
extern const sr_host_ops sr_srvi_host_ops;
void sr_srvi_on_message(void *ctx, const sr_msg *msg);
void sr_srvi_storage_done(void *ctx, uint64_t token, int status);
void sr_srvi_wal_ready(sr_loop *loop, int fd, int events, void *ctx);
/* Tell the engine the time (a tick if the clock moved). */
void sr_srvi_sync(sr_server *s);
/* Re-arm the deadline timer after an engine call. */
void sr_srvi_kick(sr_server *s);
/* Make the transport's peers match s->conf (or a joining node's list). */
void sr_srvi_peers_sync(sr_server *s, const sr_membership *conf, int drop);
void sr_srvi_peers_cancel(sr_server *s);
/* Cancel a queued write of held WAL appends (destroy). */
void sr_srvi_wal_cancel(sr_server *s);

#endif

/*
 * server_int.h — the sr_server and sr_group objects, shared by the
 * server's files, lowest first (each calls only the ones above it):
 *
 *   server_log.c    the server's log lines and refused calls
 *   server_clock.c  time: each group's clock, the heap of group
 *                   deadlines behind one loop timer, heartbeat alignment
 *   server_peers.c  the transport's peer table, shared by every group and
 *                   reference-counted by their configurations
 *   server_glue.c   the engine's callbacks and vtables, storage
 *                   completions, the WAL's follower hold and the hard
 *                   state cork
 *   server_group.c  groups: the table by id, create/start/destroy/drop,
 *                   the sr_group_* calls wrapped with clock and timers,
 *                   the transport's messages routed to their group
 *   server.c        the server: configuration checks, create, start, the
 *                   two ways to run, destroy, the single-group calls
 */
#ifndef SERVER_INT_H
#define SERVER_INT_H

#include "seshat/mem.h"
#include "seshat/server.h"

#define SERVER_NOT_QUEUED ((size_t)-1)

struct sr_group {
	sr_server *srv;
	uint32_t id;
	int is_default;
	sr_group_config cfg; /* the caller's (the default group's is made
				from the server's config) */
	sr_node *node;
	sr_mem *mem;	  /* SR_SERVER_MEM: the group's own store */
	sr_wal_group *wg; /* SR_SERVER_WAL: its group in the shared WAL
			     (NULL on the WAL's own log, see on_wal_log) */

	int started;
	uint64_t last_tick; /* the engine's clock */
	uint64_t due;	    /* its place in the deadline heap */
	size_t heap_pos;    /* SERVER_NOT_QUEUED when not in the heap */
	sr_group *hnext;    /* the next group in its hash bucket */

	/* The configuration in effect, and the peers this group holds a
	 * reference on in the shared table because of it. */
	sr_membership conf;
	int conf_pending; /* a deferred peer sync is queued */
	sr_id tpeer[SR_MAX_MEMBERS];
	uint32_t n_tpeers;

	int role; /* the engine's role, as last reported */
};

/* A peer in the transport's table and how many groups name it. */
struct server_peer {
	sr_id id;
	uint32_t refs;
	char addr[SR_ADDR_MAX]; /* the transport address set for it */
};

struct sr_server {
	sr_server_config cfg; /* the caller's, strings re-pointed below */
	char listen[SR_ADDR_MAX];
	char advertise[SR_ADDR_MAX];
	char *data_dir;

	sr_loop *loop;
	int own_loop;
	sr_wal *wal;
	int wal_fd; /* watched by the loop once started, else -1 */
	sr_tcp *tcp;
	sr_group *dflt; /* the default group, NULL with no_default_group */

	/* Groups by id: chained hash buckets, a power of two of them. */
	sr_group **buckets;
	size_t n_buckets;
	size_t n_groups;

	/* Started groups by deadline: a binary min-heap behind one loop
	 * timer armed at its top. */
	sr_group **heap;
	size_t heap_n, heap_cap;
	uint64_t timer;	   /* the loop timer, 0 when none */
	uint64_t timer_at; /* when it fires */
	int firing;	   /* inside the timer: arm it once at the end */
	uint64_t wave;	   /* the next heartbeat wave (server_clock.c) */

	struct server_peer *peers;
	uint32_t n_peers, cap_peers;

	int started;
	int depth;	  /* > 0 while inside an engine call */
	sr_group *inside; /* the group whose engine is being called */
	int wal_held;	  /* the WAL is held; write_deferred is queued */
	int held_appends; /* appends with entries stepped while held */
	int hs_corked;	  /* transport corked until the hard states sync */
	int error;	  /* the storage error that stopped a group, or 0 */
	int running;	  /* inside sr_server_run() */
	sr_server_stats stats;
};

/* server_log.c */
void server_log(sr_server *s, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Log (SR_LOG_ERROR) that call `what` was refused, `why` following its
 * name; returns SR_ESTATE. */
int server_refuse(sr_server *s, const char *what, const char *why);

/* server_clock.c */
/* Tell g's engine the time (a tick if the clock moved). */
void server_clock_sync(sr_group *g);
/* Re-queue g at its engine's deadline and arm the loop timer. */
void server_clock_schedule(sr_group *g);
/* Take g out of the deadline heap. */
void server_clock_unqueue(sr_group *g);
void server_clock_cancel_timer(sr_server *s);

/* server_peers.c */
/* Make the peers g holds match conf (or a joining node's list): take a
 * reference on each member, and with drop release those not in conf. */
void server_peers_sync(sr_group *g, const sr_membership *conf, int drop);
void server_peers_release(sr_group *g);
/* A new configuration: sync the peers after the engine call returns. */
void server_peers_defer(sr_group *g);
void server_peers_cancel(sr_group *g);

/* server_glue.c */
extern const sr_host_ops server_host_ops;
extern const sr_transport_ops server_transport_ops;
void server_storage_done(void *ctx, uint64_t token, int status);
void server_wal_ready(sr_loop *loop, int fd, int events, void *ctx);
/* Hold the WAL for the rest of the loop iteration (a message reached a
 * follower: its appends are written at the iteration's end). */
void server_wal_hold(sr_server *s);
/* Before a proposal of count entries: hold the WAL if the leader writes
 * it on the loop (leader_writes_inline). */
void server_wal_hold_proposal(sr_group *g);
/* Cancel a queued write of held WAL appends (destroy). */
void server_wal_cancel(sr_server *s);

/* server_group.c */
/* Create group cfg (the default one when dflt) with its store and engine,
 * and enter it in the table; started by server_group_start(). */
int server_group_new(sr_server *s, const sr_group_config *cfg, int dflt,
		     sr_group **out);
int server_group_start(sr_group *g);
/* Take g out of every table, stop its engine, close its store, free it. */
void server_group_free(sr_group *g);
sr_group *server_group_find(const sr_server *s, uint32_t id);
/* Refuse an engine call the group cannot take now (logged); otherwise
 * enter it (depth, clock) and return 0.  server_group_leave() ends it. */
int server_group_enter(sr_group *g, const char *what);
int server_group_leave(sr_group *g, int rc);
/* The transport's on_message: step the message's group. */
void server_on_message(void *ctx, const sr_msg *msg);

#endif

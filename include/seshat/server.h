/*
 * seshat/server.h — a Raft member in one object: the engine, a log store
 * (the WAL or memory), the TCP transport and an event loop, wired
 * together.
 *
 * The engine (seshat/raft.h) does no I/O; a host has to feed it time,
 * messages and storage completions, and every host used to write the same
 * glue for that.  sr_server is that glue, written once:
 *
 *   - the clock: before every call into the engine the server reads the
 *     loop's clock and ticks the engine if time moved (the engine measures
 *     its timers from its last tick), and after every call it re-arms one
 *     loop timer at sr_node_deadline();
 *   - storage: the WAL's completion fd is watched by the loop, and
 *     sr_wal_process() hands the finished appends to
 *     sr_node_storage_done() (the memory store completes synchronously);
 *     a follower under light load writes and syncs its appends on the
 *     loop's thread instead (sr_wal_hold/sr_wal_write_now: its answer
 *     waits for them anyway), so its loop blocks for one fdatasync per
 *     batch;
 *   - messages: the transport's on_message ticks the engine and calls
 *     sr_node_step();
 *   - peers: the transport's peer table follows the configuration in
 *     effect, each member's address string (optionally mapped by
 *     transport_addr) being where it is reached — there is no separate
 *     peer list to keep in step;
 *   - logging: one hook receives the lines of the engine, the store, the
 *     transport and the server itself.
 *
 * Two ways to run it:
 *
 *   sr_server_run(srv)          the server's loop runs until
 *                               sr_server_stop();
 *   sr_server_fd(srv) + sr_server_timeout_ms(srv) + sr_server_process(srv)
 *                               the host's own loop (epoll, libuv,
 *                               io_uring) watches one fd for
 *                               readability, sleeps at most the timeout and
 *                               calls process() (never blocks).
 *
 * A host that needs its own fds and timers (client sockets, a signalfd)
 * adds them to sr_server_loop(srv), or hands its sr_loop to the server in
 * the config; everything then runs on one thread.
 *
 * Threads: one.  Every function is called on the thread that runs the
 * loop.  Nothing here is thread-safe.
 *
 * Re-entrancy: the host's callbacks (done, read_done, state_changed,
 * conf_changed, the fsm) run from inside the engine.  From there the host
 * may call sr_server_status(), sr_server_membership(), sr_server_loop()
 * and sr_server_stop(), and the fsm may call the sr_node_snapshot_*
 * functions on sr_server_node(); every other sr_server_* call returns
 * SR_ESTATE (and logs why) — queue the work with sr_loop_defer().
 *
 * Wiring mistakes the server can see are refused by sr_server_create()
 * with SR_EINVAL and a log line naming the field, rather than left to
 * stall the node later.
 *
 * Many Raft groups (multi-Raft).  One server carries any number of
 * independent Raft groups (sr_group), each with its own engine, log and
 * state machine, sharing the loop, one TCP connection per peer process
 * (every message carries its group id; an incoming one is dispatched by
 * a hash table, and one for a group this server does not carry is
 * dropped and counted) and one store (with SR_SERVER_WAL one WAL for all
 * groups: one fsync covers every group's appends in a batch; the default
 * group keeps its log in the WAL's own log, as a single-group server
 * always did, and every other group in the WAL's group of its id).  The
 * single-group calls (sr_server_propose(), ...) act on the default group,
 * made from the sr_server_config at create with id raft.group (0 unless
 * set); a host that wants only its own groups sets no_default_group.
 * Groups are created, destroyed (data kept) and dropped (data deleted) at
 * run time; after a restart sr_server_groups_on_disk() lists the groups
 * the store holds and the host reopens each with sr_server_group_create().
 * The peer address table is shared: a peer stays known while any group's
 * configuration names it.  Timers cost O(due groups) per loop iteration
 * (one loop timer, over a heap of group deadlines), and the heartbeats of
 * every group this node leads fall due on the same heartbeat_ms grid, so
 * the messages for one peer are produced in one loop iteration and leave
 * in one write; between servers that both offer it (tcp.coalesce_max_bytes,
 * on by default) those heartbeats travel as one coalesced message per peer,
 * and so do the answers (sr_server_stats counts them).  Groups use the
 * server's raft/tcp/wal tuning.
 */
#ifndef SESHAT_SERVER_H
#define SESHAT_SERVER_H

#include "loop.h"
#include "raft.h"
#include "tcp.h"
#include "types.h"
#include "wal.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sr_server sr_server;
typedef struct sr_group sr_group;

enum {
	SR_SERVER_WAL = 1, /* the durable WAL in data_dir (default) */
	SR_SERVER_MEM = 2  /* the in-memory store: lost on exit */
};

/*
 * Map a member's address string (as stored in the configuration) to the
 * transport's "host:port".  Lets a host keep more in the member address
 * than the Raft endpoint (kvnode stores "RAFT/CLIENT").  Write a
 * NUL-terminated string of at most cap bytes to out and return 0, or a
 * negative code to leave the member unreachable (logged).
 */
typedef int (*sr_server_addr_fn)(void *ctx, const sr_member *member, char *out,
				 size_t cap);

typedef struct sr_server_config {
	sr_id id;	     /* this node, >= 1 */
	uint64_t cluster_id; /* checked when peers connect; default 1 */

	/* Where peers connect ("host:port"; port 0: any, see
	 * sr_server_port()), and the address sent to them (NULL: the
	 * listening address with its actual port). */
	const char *listen_addr;
	const char *advertise_addr;

	/*
	 * The initial voters (with their addresses), identical on every
	 * initial member.  A node listed here bootstraps the cluster with
	 * it when its store is empty, and ignores it otherwise (restart).
	 * A node not listed is joining an existing cluster: it accepts the
	 * listed members' connections and waits for the leader to add it
	 * (sr_server_add() there).  Empty (n == 0): restart, or join
	 * without knowing the members (set tcp.accept_unknown_peers).
	 */
	sr_membership peers;

	int storage;	      /* SR_SERVER_WAL (default) or SR_SERVER_MEM */
	const char *data_dir; /* the WAL's directory (SR_SERVER_WAL) */

	/* The replicated state machine (required; fsm->apply at least),
	 * of the default group. */
	const sr_fsm_ops *fsm;
	void *fsm_ctx;
	/*
	 * 1: no default group; the server carries only the groups created
	 * with sr_server_group_create().  fsm, host and peers must then be
	 * left empty, and the single-group calls (sr_server_propose(),
	 * sr_server_status(), ...) return SR_ESTATE or report nothing
	 * (sr_server_node() is NULL).  Default 0.
	 */
	int no_default_group;

	/*
	 * 1: the proposals a leader accepts in one loop iteration are
	 * written and fdatasynced on the loop's thread at the end of that
	 * iteration, after the messages carrying them to the followers have
	 * left, if the WAL's writer thread is idle (else the writer takes
	 * them); the loop blocks for that sync, as Redis's does with
	 * appendfsync always.  It saves two thread hand-offs per batch
	 * (waking the writer, its completion waking the loop), and the
	 * requests that arrive during a sync form the next batch.  The cost:
	 * while the disk stalls, the loop does too (heartbeats included),
	 * as a follower's does.  0 (default): the writer thread always
	 * writes the leader's entries.  Followers write on the loop when the
	 * writer is idle either way.
	 */
	int leader_writes_inline;

	/*
	 * The host's callbacks, as in sr_host_ops (each may be NULL; ctx
	 * is host_ctx).  host.log must stay NULL: use log below.
	 */
	sr_host_ops host;
	void *host_ctx;
	sr_server_addr_fn transport_addr; /* NULL: the address as is */

	/* One log hook for the engine, the store, the transport and the
	 * server; may be NULL. */
	sr_log_fn log;
	void *log_ctx;
	int log_level; /* default SR_LOG_INFO */

	/* The host's loop, or NULL for one the server creates and owns. */
	sr_loop *loop;
	const sr_alloc *alloc; /* NULL: libc; must outlive the server */

	/*
	 * Tuning of the three components, filled with their defaults by
	 * sr_server_config_init().  The fields that wire them together are
	 * the server's and must be left as init made them (NULL / 0):
	 * raft.storage, raft.transport, raft.fsm, raft.host and their ctx,
	 * raft.alloc; tcp.listen_addr, tcp.advertise_addr, tcp.loop,
	 * tcp.on_message, tcp.ctx, tcp.log, tcp.alloc; wal.dir, wal.done,
	 * wal.log, wal.alloc.  raft.id and tcp.id must equal id (or be 0),
	 * tcp.cluster_id is taken from cluster_id.  Timing is here:
	 * raft.election_timeout_ms, raft.heartbeat_ms.  The server sets
	 * raft.transport_max_payload from the transport, and, if raft.seed
	 * is left at init's value, mixes this start's clock and pid into
	 * it (a seed must differ per start; see sr_config.seed).
	 * Peer authentication is here too: tcp.secret (and tcp.secret_prev
	 * during a rotation), the cluster's shared secret (seshat/tcp.h),
	 * passed to the transport, which copies it; it is read during
	 * sr_server_create() only.  Leave it NULL only for loopback demos.
	 */
	sr_config raft;
	sr_tcp_config tcp;
	sr_wal_options wal;
} sr_server_config;

/* Fill *cfg with the defaults for node id (WAL storage, cluster 1). */
SR_API void sr_server_config_init(sr_server_config *cfg, sr_id id);

/*
 * Create the server: the loop (unless cfg->loop), the store (opening the
 * WAL recovers what is on disk and locks the directory), the transport
 * (listening from now on) and the engine.  Nothing runs until
 * sr_server_start().  cfg is copied (strings and peers included); the
 * vtables and contexts it points to must outlive the server.
 * Errors: SR_EINVAL (a wiring mistake: the log names the field),
 * SR_ENOMEM, and what sr_wal_open() and sr_tcp_create() return
 * (SR_ELOCKED, SR_ECORRUPT, SR_EIO, ...).  On error nothing is left
 * allocated and *out is NULL.
 */
SR_API int sr_server_create(const sr_server_config *cfg, sr_server **out);

/*
 * Bootstrap (a listed initial member with an empty store), load the
 * durable state and start the engine as a follower.  The fsm's restore
 * runs from here when the store holds a snapshot.  Once.
 * Errors: SR_ESTATE (started already), what sr_node_bootstrap() and
 * sr_node_start() return.
 */
SR_API int sr_server_start(sr_server *srv);

/*
 * Run the loop until sr_server_stop(), or until a storage failure stops
 * the engine.  Returns 0 after sr_server_stop(), the storage error
 * (SR_EIO, SR_ENOSPC, ...) that stopped the node, or SR_EIO if the loop
 * failed.  Not from inside a callback.
 */
SR_API int sr_server_run(sr_server *srv);

/*
 * Make sr_server_run() return after the current iteration; the node keeps
 * its state (call sr_server_run() again to go on).  Safe from any
 * callback on the loop's thread.
 */
SR_API void sr_server_stop(sr_server *srv);

/*
 * Stop everything in dependency order: the transport, then the engine
 * (pending proposals get done(SR_EUNKNOWN) and pending reads
 * read_done(SR_ESHUTDOWN) from inside this call), then the store (the
 * WAL finishes writing what it accepted), then the loop if the server
 * owns it.  Not from inside a callback.  NULL is a no-op.
 */
SR_API void sr_server_destroy(sr_server *srv);

/* ---- driving it from the host's own loop -------------------------- */

/* An fd that is readable when the server has work (the loop's epoll fd). */
SR_API int sr_server_fd(const sr_server *srv);
/* Milliseconds until process() must run anyway: -1 none, 0 now.  Re-read
 * it after every sr_server_* call: a proposal leaves output to flush. */
SR_API int sr_server_timeout_ms(sr_server *srv);
/*
 * Do what is ready without blocking (one loop iteration).  Returns the
 * number of callbacks run, or SR_EIO; after a storage failure stopped the
 * node it returns that error (as sr_server_run() would).
 */
SR_API int sr_server_process(sr_server *srv);

/* The loop everything runs on (add the host's own fds and timers). */
SR_API sr_loop *sr_server_loop(const sr_server *srv);

/* ---- the engine's calls, with the clock and the timer handled ----- */

/*
 * Propose a command (copied) on the leader; done(cookie, ...) reports the
 * outcome: the entry is applied once it is durable on a majority of the
 * voters' logs.  As sr_node_propose(), plus SR_ESTATE (not started, or
 * called from inside a callback).
 */
SR_API int sr_server_propose(sr_server *srv, const void *data, size_t len,
			     void *cookie, sr_index *index_out);
/* As sr_node_propose_batch(): one append and one message per follower. */
SR_API int sr_server_propose_batch(sr_server *srv, const sr_buf *cmds,
				   size_t count, void *const *cookies,
				   sr_index *first_out);
/* A linearizable read: read_done(cookie, ...) as sr_node_read_index(). */
SR_API int sr_server_read(sr_server *srv, void *cookie);

/*
 * Bring the engine's clock up to date now (a tick if time moved, which
 * also runs whatever timer is due), for a host about to read
 * sr_server_status() outside the loop's own events.  Errors: SR_ESTATE
 * (not started, or called from inside a callback).
 */
SR_API int sr_server_tick(sr_server *srv);

/* Membership (on the leader; one change at a time), as sr_node_add(),
 * sr_node_remove(), sr_node_promote(), sr_node_transfer() and
 * sr_node_snapshot(), plus SR_ESTATE as above.  addr is what the new
 * member's configuration entry holds (see transport_addr). */
SR_API int sr_server_add(sr_server *srv, sr_id id, const char *addr,
			 int auto_promote);
SR_API int sr_server_remove(sr_server *srv, sr_id id);
SR_API int sr_server_promote(sr_server *srv, sr_id id);
SR_API int sr_server_transfer(sr_server *srv, sr_id target);
SR_API int sr_server_snapshot(sr_server *srv);

/* ---- observing ---------------------------------------------------- */

/* The engine's status (safe from callbacks). */
SR_API void sr_server_status(const sr_server *srv, sr_status *out);
/* The configuration in effect; valid until the next engine call. */
SR_API const sr_membership *sr_server_membership(const sr_server *srv);
/* The port peers connect to (useful with port 0). */
SR_API int sr_server_port(const sr_server *srv);

/*
 * The parts, for what the server does not wrap: the fsm's
 * sr_node_snapshot_write/done/read calls, sr_node_peer_status(), the
 * transport's statistics and test hooks, the WAL's statistics (NULL with
 * SR_SERVER_MEM).  Calling sr_node_tick/step/propose directly bypasses
 * the server's clock and timer: use the sr_server_* calls instead.
 */
SR_API sr_node *sr_server_node(const sr_server *srv);
SR_API sr_tcp *sr_server_tcp(const sr_server *srv);
SR_API sr_wal *sr_server_wal(const sr_server *srv);

/* ---- many groups ------------------------------------------------- */

/*
 * One Raft group carried by the server.  Its members are server processes
 * (sr_id as everywhere); a process takes part in a group when it carries
 * a group with that id.  All groups of a cluster share the cluster's
 * node ids and addresses.
 */
typedef struct sr_group_config {
	uint32_t id; /* the group id in every message; unique in the server */

	/* The initial voters with their addresses, as
	 * sr_server_config.peers: a listed member bootstraps the group when
	 * the store holds nothing for it, a restart ignores the list, and an
	 * unlisted node joins (waits to be added with sr_group_add()). */
	sr_membership peers;

	/* The group's state machine (required; fsm->apply at least). */
	const sr_fsm_ops *fsm;
	void *fsm_ctx;

	/* The host's callbacks for this group, as in sr_server_config
	 * (each may be NULL; ctx is host_ctx; host.log must stay NULL: the
	 * server's log hook gets every group's lines, prefixed with the
	 * group id). */
	sr_host_ops host;
	void *host_ctx;
} sr_group_config;

/* Fill *cfg with the defaults for group id (no peers, no fsm). */
SR_API void sr_group_config_init(sr_group_config *cfg, uint32_t id);

/*
 * Create group cfg->id on the server: its store (a group of the shared
 * WAL, or a memory store of its own), its engine, and its share of the
 * peer table.  If the server is started, the group starts at once
 * (bootstrap, join or restart, as sr_server_start() does; the fsm's
 * restore runs from here when the store holds a snapshot of the group),
 * else it starts with sr_server_start().  cfg is copied; the vtables and
 * contexts it points to must outlive the group.  The group belongs to the
 * server until sr_server_group_destroy()/_drop() or sr_server_destroy().
 * Not from inside a callback.
 * Errors: SR_EEXIST (the server carries group id already), SR_EINVAL (a
 * wiring mistake: the log names the field), SR_ESTATE (inside a
 * callback), SR_ENOMEM, the store's errors (SR_EIO, SR_ECORRUPT, ...),
 * and what sr_node_start() returns.  On error *out is NULL and nothing
 * of the group is left.
 */
SR_API int sr_server_group_create(sr_server *srv, const sr_group_config *cfg,
				  sr_group **out);

/*
 * Stop group g and free it; its data stays in the store (create it again
 * to reopen it).  Pending proposals get done(SR_EUNKNOWN) and pending
 * reads read_done(SR_ESHUTDOWN) from inside this call; peers stop being
 * answered for this group (its messages count as unknown group).  Not
 * from inside a callback, not for the default group.
 * Errors: SR_ESTATE (inside a callback), SR_EINVAL (the default group).
 */
SR_API int sr_server_group_destroy(sr_group *g);

/*
 * As sr_server_group_destroy(), then delete the group's data from the
 * store (durably; blocks for one fdatasync of the WAL): a group created
 * again with this id starts empty.  Take the member out of the group's
 * configuration first (sr_group_remove() on the leader) unless the whole
 * group is being dropped everywhere.
 * Errors: those of sr_server_group_destroy(), SR_EINVAL for a group 0
 * kept in the WAL's own log (a server without a default group: destroy
 * it instead), and the store's (SR_EIO; the group is destroyed either
 * way).
 */
SR_API int sr_server_group_drop(sr_group *g);

/* The group with this id, or NULL. */
SR_API sr_group *sr_server_group(const sr_server *srv, uint32_t id);

/* The default group (made from sr_server_config), NULL with
 * no_default_group. */
SR_API sr_group *sr_server_default_group(const sr_server *srv);

/*
 * The groups the server carries now (the default one included): fills
 * out[] with up to cap and returns how many there are (may exceed cap).
 * The pointers are valid until a group is created or destroyed.
 */
SR_API size_t sr_server_groups(const sr_server *srv, sr_group **out,
			       size_t cap);

/*
 * The ids of the groups the store holds data for (other than the default
 * group), in ascending order, for reopening them after a restart: up to
 * cap into ids[] (NULL when cap is 0), *n_out the total (may exceed
 * cap).  Groups already open are included.  With SR_SERVER_MEM nothing
 * survives: *n_out is 0.
 * Errors: SR_ENOMEM, SR_EIO.
 */
SR_API int sr_server_groups_on_disk(sr_server *srv, uint32_t *ids, size_t cap,
				    size_t *n_out);

/*
 * A group's engine calls, with the clock and the timers handled: each as
 * the sr_server_* call of the same name (which act on the default group),
 * with the same errors.  Not from inside a callback (SR_ESTATE).
 */
SR_API int sr_group_propose(sr_group *g, const void *data, size_t len,
			    void *cookie, sr_index *index_out);
SR_API int sr_group_propose_batch(sr_group *g, const sr_buf *cmds, size_t count,
				  void *const *cookies, sr_index *first_out);
SR_API int sr_group_read(sr_group *g, void *cookie);
SR_API int sr_group_add(sr_group *g, sr_id id, const char *addr,
			int auto_promote);
SR_API int sr_group_remove(sr_group *g, sr_id id);
SR_API int sr_group_promote(sr_group *g, sr_id id);
SR_API int sr_group_transfer(sr_group *g, sr_id target);
SR_API int sr_group_snapshot(sr_group *g);

/* Observing a group (safe from callbacks). */
SR_API void sr_group_status(const sr_group *g, sr_status *out);
/* The configuration in effect; valid until the next engine call. */
SR_API const sr_membership *sr_group_membership(const sr_group *g);
/* The group's engine, for the fsm's sr_node_snapshot_* calls and
 * sr_node_peer_status() (drive it through sr_group_* otherwise). */
SR_API sr_node *sr_group_node(const sr_group *g);
SR_API uint32_t sr_group_id(const sr_group *g);
SR_API sr_server *sr_group_server(const sr_group *g);

typedef struct sr_server_stats {
	uint32_t groups;       /* carried now (the default one included) */
	uint32_t peers;	       /* in the shared peer table */
	uint64_t timer_fires;  /* the server's deadline timer fired */
	uint64_t groups_due;   /* group ticks run because a deadline was due */
	uint64_t msgs_in;      /* messages handed to a group's engine */
	uint64_t msgs_out;     /* messages the groups' engines sent */
	uint64_t msgs_unknown; /* dropped: for a group not carried here */
	uint64_t groups_created;   /* since create (the default one included) */
	uint64_t groups_destroyed; /* destroyed or dropped */
	/*
	 * Heartbeat coalescing (tcp.coalesce_max_bytes, on by default): the
	 * heartbeats (appends without entries) and the append answers that
	 * every group sends one peer back to back leave as one coalesced
	 * message (docs/wire-protocol.md, "Coalesced heartbeats").  The
	 * coalesced messages sent and received, and the heartbeats and
	 * answers they carried (each of those also counts in msgs_out or
	 * msgs_in: every group's engine still sends and steps its own).
	 */
	uint64_t coalesced_sent;
	uint64_t coalesced_recv;
	uint64_t coalesced_carried_sent;
	uint64_t coalesced_carried_recv;
} sr_server_stats;

/* The server's counters (safe from callbacks). */
SR_API void sr_server_stats_get(const sr_server *srv, sr_server_stats *out);

#ifdef __cplusplus
}
#endif
#endif

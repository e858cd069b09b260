/*
 * seshat/raft.h — the Raft engine.
 *
 * The engine is a single-threaded, event-driven state machine.  It does no
 * I/O, keeps no clock, starts no thread and has no global state.  The host
 * drives it:
 *
 *   sr_node_tick(node, now_ms)       time passes (call at sr_node_deadline)
 *   sr_node_step(node, &msg)         a message arrived from a peer
 *   sr_node_propose(node, ...)       a client wants a command replicated
 *   sr_node_storage_done(node, ...)  the log store finished an append
 *
 * and the engine calls the host back through three vtables:
 *
 *   sr_storage_ops   the log store (backends/mem, backends/wal, or yours)
 *   sr_fsm_ops       the replicated state machine
 *   sr_transport_ops sends a message to a peer
 *
 * Re-entrancy: unless a callback's comment says otherwise, a callback must
 * not call any sr_node_* function except sr_node_status(),
 * sr_node_peer_status() and sr_node_storage_done() (a synchronous store may
 * report completion from inside append()).  Hosts that want to react to a
 * callback (propose again, say) queue the work and do it after the engine
 * call returns.
 *
 * Same inputs, same outputs: given the same config (seed included) and the
 * same sequence of calls, the engine makes the same callbacks.
 */
#ifndef SESHAT_RAFT_H
#define SESHAT_RAFT_H

#include "msg.h"
#include "types.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sr_node sr_node;

/* ------------------------------------------------------------------ */
/* Log storage                                                        */
/* ------------------------------------------------------------------ */

/* What a store holds durably, returned by load(). */
typedef struct sr_durable {
	sr_term term; /* current term */
	sr_id vote;   /* vote in `term`, 0 for none */
	/* first entry in the log (at most snapshot_index + 1) */
	sr_index first_index;
	/* last entry in the log; first_index - 1 when empty */
	sr_index last_index;
	sr_index snapshot_index; /* 0 when there is no snapshot */
	sr_term snapshot_term;
	sr_membership snapshot_conf; /* configuration at snapshot_index */
	/*
	 * Entries the store held durably but lost to corruption found when
	 * it was opened (0, 0: none).  The store cut its log before the
	 * first damaged entry, so lost_first == last_index + 1 and
	 * lost_last is the highest index it had held: entries up to it may
	 * have been acknowledged (lost_first == lost_last == last_index:
	 * nothing is missing but the log must be checked against a leader's
	 * up to there).  The engine re-fetches the entries from the leader;
	 * until a leader has verified its log up to lost_last (or the log
	 * durably holds an entry of a term above lost_term: the range was
	 * overwritten by a later leader) it does not campaign, and grants a vote or pre-vote only to a candidate at
	 * least as up-to-date as (lost_term, lost_last) (docs/design.md,
	 * "Repairing a corrupt log").  A store keeps reporting the range
	 * across restarts until an entry past lost_last, or a snapshot
	 * covering it, is durable.
	 *
	 * lost_term: an upper bound of the lost entries' terms, fixed when
	 * the loss was first found (the durable term then: no entry is
	 * written in a term before that term is durable) and kept with the
	 * range across restarts; 0 if the store does not know, and the
	 * engine then takes term.  A store must not report the term of a
	 * later restart here: terms rise while a repairing node cannot
	 * vote, and a bound that rises with them refuses every candidate.
	 */
	sr_index lost_first;
	sr_index lost_last;
	sr_term lost_term;
} sr_durable;

/*
 * The log store.  Every function is called on the engine's thread.
 *
 * Ordering contract: append(), truncate() and compact() take effect in the
 * order they are called; in particular an append that follows a truncate is
 * never made durable before that truncate is.  Completions of appends may be
 * reported in any order; the engine resequences them.
 */
typedef struct sr_storage_ops {
	/* Fill *out with the durable state.  Called by sr_node_start() and
	 * by sr_node_bootstrap() (to check that the store is empty); it
	 * must not change the store. */
	int (*load)(void *ctx, sr_durable *out);

	/*
	 * Make term and vote durable before returning (synchronous: the
	 * engine sends nothing that depends on them until this returns 0).
	 * An error stops the node (sr_node_status reports it).
	 */
	int (*set_hard_state)(void *ctx, sr_term term, sr_id vote);

	/*
	 * Append n entries (consecutive indexes, following the current last
	 * entry).  Entry data is borrowed for the duration of the call: copy
	 * or serialize it.  When the entries are durable, the store calls
	 * sr_node_storage_done(node, token, 0) (or a negative error), from
	 * inside this call or later on the engine's thread.  Returning an
	 * error means the append was not accepted and no completion will
	 * come.
	 */
	int (*append)(void *ctx, uint64_t token, const sr_entry *entries,
		      size_t n);

	/* Delete every entry with index >= from (a conflicting suffix). */
	int (*truncate)(void *ctx, sr_index from);

	/*
	 * Read up to max_n entries starting at lo (lo >= first_index) into
	 * out[], stopping early after max_bytes of data (at least one entry
	 * is always returned).  Data pointers stay valid until the next call
	 * into the store.  *n_out is the number read.
	 */
	int (*read)(void *ctx, sr_index lo, size_t max_n, size_t max_bytes,
		    sr_entry *out, size_t *n_out);

	/*
	 * Drop every entry with index <= upto (log compaction after a durable
	 * snapshot).  upto may be past the last entry (after installing a
	 * leader's snapshot): the log is then empty and the next append
	 * starts at upto + 1; load() reports first_index = upto + 1.
	 * May be NULL when snapshots are not used.
	 */
	int (*compact)(void *ctx, sr_index upto);

	/*
	 * Snapshot storage: a snapshot is written in chunks (begin, write at
	 * increasing offsets, finish) and becomes the store's snapshot only
	 * when finish(commit=1) returns 0, atomically replacing the previous
	 * one; finish(commit=0) discards a partial snapshot.  snapshot_read()
	 * reads from the current snapshot (not one being written); it returns
	 * fewer than len bytes only at the end.  These may be NULL when
	 * snapshots are not used.
	 */
	int (*snapshot_begin)(void *ctx, sr_index index, sr_term term,
			      const sr_membership *conf);
	int (*snapshot_write)(void *ctx, uint64_t offset, const void *data,
			      size_t len);
	int (*snapshot_finish)(void *ctx, int commit);
	int (*snapshot_read)(void *ctx, uint64_t offset, void *buf, size_t len,
			     size_t *n_out);
} sr_storage_ops;

/* ------------------------------------------------------------------ */
/* State machine                                                      */
/* ------------------------------------------------------------------ */

typedef struct sr_fsm_ops {
	/*
	 * Apply a committed SR_ENTRY_NORMAL entry.  Called once per index in
	 * increasing order (the engine never calls it for an index at or
	 * below the last applied one).  *result may be set to any pointer;
	 * it is handed to the proposer's done callback on the leader that
	 * proposed the entry and freed by the fsm's free_result otherwise.
	 * A negative return is passed to the proposer as its status; the
	 * entry counts as applied either way.
	 */
	int (*apply)(void *ctx, const sr_entry *entry, void **result);

	/* Release a result nobody took (may be NULL if results are never set). */
	void (*free_result)(void *ctx, void *result);

	/*
	 * Take a snapshot of the state as of `index` (the last applied
	 * entry, of term `term`).  The state machine hands the bytes to the
	 * engine with sr_node_snapshot_write() and ends with
	 * sr_node_snapshot_done(), from inside this call or later on the
	 * engine's thread (so it can capture its state cheaply now and
	 * serialize it in pieces while the engine keeps running).  apply()
	 * is called meanwhile for later entries: the snapshot must still
	 * describe the state at `index`.  A negative return abandons this
	 * snapshot.  May be NULL: the log is then never compacted.
	 */
	int (*snapshot)(void *ctx, sr_index index, sr_term term);

	/*
	 * Replace the whole state with the store's snapshot (at `index`),
	 * read with sr_node_snapshot_read() from inside this call until it
	 * returns no more bytes.  Called at start when the store holds a
	 * snapshot and when a leader installed one.  A negative return stops
	 * the node.  Required when snapshots are in use.
	 */
	int (*restore)(void *ctx, sr_index index, sr_term term);

	/*
	 * Optional (NULL: not used).  A hint, called just before the engine
	 * applies a run of n consecutive committed SR_ENTRY_NORMAL entries
	 * (1 <= n <= SR_FSM_PREFETCH_MAX) with apply(), in that order, so
	 * that the state machine can start the memory loads of the whole run
	 * at once (a hash map over more keys than the cache holds spends most
	 * of an apply waiting on them).  It must not change the state: the
	 * node may stop before it applies every entry of the run.  Never
	 * called for configuration or no-op entries.  The entries are
	 * borrowed for the call only (apply() gets them again).
	 */
	void (*prefetch)(void *ctx, const sr_entry *entries, size_t n);
} sr_fsm_ops;

/* The most entries one sr_fsm_ops.prefetch call hands over. */
#define SR_FSM_PREFETCH_MAX 64

/* ------------------------------------------------------------------ */
/* Transport                                                          */
/* ------------------------------------------------------------------ */

typedef struct sr_transport_ops {
	/*
	 * Send msg to msg->to.  Best effort: a message may be lost,
	 * duplicated, delayed or reordered, and the engine copes; a failure
	 * returned here is counted as a loss and never stops the engine from
	 * sending to other peers.  Everything msg points to is borrowed for
	 * the duration of the call.
	 */
	int (*send)(void *ctx, const sr_msg *msg);
} sr_transport_ops;

/* ------------------------------------------------------------------ */
/* Host callbacks                                                     */
/* ------------------------------------------------------------------ */

typedef struct sr_host_ops {
	/*
	 * A proposal finished.  status is 0 (applied; result is the fsm's
	 * result, now owned by the callee), the fsm's negative return,
	 * SR_EDROPPED (overwritten by another leader's entry: it will never
	 * be applied) or SR_EUNKNOWN (the node stopped before learning the
	 * outcome: it may or may not be applied).  index is the entry's
	 * index.  May be NULL.
	 */
	void (*done)(void *ctx, void *cookie, int status, sr_index index,
		     void *result);

	/* The role, term or leader changed.  May be NULL. */
	void (*state_changed)(void *ctx, int role, sr_term term, sr_id leader);

	/*
	 * The configuration in effect changed (an entry appended, a
	 * truncation rolled one back, or a snapshot installed one).  Hosts
	 * use it to learn peer addresses.  May be NULL.
	 */
	void (*conf_changed)(void *ctx, const sr_membership *conf);

	/*
	 * A read requested with sr_node_read_index() is ready: the state
	 * machine has applied at least `index`, so reading it now is
	 * linearizable.  status is 0, or SR_ENOTLEADER / SR_ETIMEOUT /
	 * SR_ESHUTDOWN / SR_EBUSY / SR_ENOMEM (the last two relayed from the
	 * leader; retry elsewhere or later).  May be NULL.
	 */
	void (*read_done)(void *ctx, void *cookie, int status, sr_index index);

	/* The log hook; may be NULL.  log_level filters what reaches it. */
	sr_log_fn log;
} sr_host_ops;

/* ------------------------------------------------------------------ */
/* Configuration                                                      */
/* ------------------------------------------------------------------ */

typedef struct sr_config {
	sr_id id;	/* this node, >= 1 */
	uint32_t group; /* Raft group id carried in every message */

	/* Election timeout T: each node waits a random time in [T, 2T). */
	uint32_t election_timeout_ms; /* default 1000 */
	uint32_t heartbeat_ms;	      /* default 100 */
	/* Randomness; same seed, same run.  Give each start of a node its
	 * own seed (mix in the clock and the pid, say): where a restarted
	 * process tags the reads it forwards to the leader comes from it, and
	 * a tag repeated from a previous life could let a delayed answer to
	 * an old read complete a new one with a stale read index.  The engine
	 * also mixes in the start time and the durable state, which may
	 * repeat.  sr_config_init() sets the id, which is not enough for
	 * followers that serve reads across restarts. */
	uint64_t seed;
	int pre_vote;	  /* default 1 (thesis §9.6) */
	int check_quorum; /* default 1 (thesis §6.2) */

	/* Flow control per follower. */
	uint32_t max_inflight_msgs;  /* default 64 appends in flight */
	uint64_t max_inflight_bytes; /* default 8 MiB of entry data in flight */
	uint64_t max_msg_bytes;	  /* default 1 MiB of entry data per append */
	uint32_t max_msg_entries; /* default 4096 entries per append */

	/* Proposals are refused with SR_EBUSY past this many bytes of
	 * entries appended but not yet committed.  Default 64 MiB. */
	uint64_t max_uncommitted_bytes;
	/* Largest accepted proposal (larger: SR_ETOOBIG); default 16 MiB. */
	uint32_t max_entry_bytes;
	/*
	 * Largest message payload the transport carries, in bytes after the
	 * frame header as seshat/codec.h encodes it; 0: no limit.  The host
	 * sets it from its transport (the TCP transport's max_frame_bytes).
	 * sr_node_create() refuses (SR_EINVAL, logged) limits under which
	 * an append could exceed it (max_msg_bytes + max_entry_bytes +
	 * 24 bytes per entry up to max_msg_entries, plus the append's own
	 * fields) or a snapshot chunk could.  Default SR_FRAME_MAX_DEFAULT
	 * (32 MiB), the TCP transport's default.
	 */
	uint32_t transport_max_payload;

	/* The log cache holds about this many of the newest entries.  Older
	 * ones leave it once applied and durable here (never before, so it
	 * may grow past this while they are not), and are re-read from
	 * storage when a slow follower needs them.  Default 4096. */
	uint32_t cache_entries;

	/* Snapshots: taken once this many entries were applied since the
	 * last one (0: only on demand); after a snapshot the log keeps this
	 * many entries behind it for slow followers; InstallSnapshot sends
	 * chunks of this size.  Defaults 65536, 4096, 1 MiB. */
	uint64_t snapshot_threshold;
	uint64_t snapshot_trailing;
	uint32_t snapshot_chunk_bytes;
	/* Also take one once the entries applied since the last snapshot
	 * (since start, after a restart) hold this many bytes of data,
	 * whichever of the two comes first; 0: count entries only (the
	 * default).  Ignored when snapshot_threshold is 0. */
	uint64_t snapshot_bytes;

	/* A learner added with auto-promotion becomes a voter once its match
	 * index stays within catchup_entries of the leader's last index for
	 * catchup_ms.  Defaults 1000 entries, one election timeout. */
	uint64_t catchup_entries;
	uint32_t catchup_ms;

	const sr_storage_ops *storage;
	void *storage_ctx;
	const sr_fsm_ops *fsm;
	void *fsm_ctx;
	const sr_transport_ops *transport;
	void *transport_ctx;
	sr_host_ops host;
	void *host_ctx;

	int log_level;	       /* default SR_LOG_INFO */
	const sr_alloc *alloc; /* NULL: libc */
} sr_config;

/* Fill *cfg with defaults for node `id`.  The caller sets the vtables. */
SR_API void sr_config_init(sr_config *cfg, sr_id id);

/* ------------------------------------------------------------------ */
/* Node                                                               */
/* ------------------------------------------------------------------ */

/*
 * One convention for every sr_node_* call that needs a running node
 * (tick, step, propose, propose_batch, read_index, add, promote, remove,
 * transfer, snapshot): SR_ESTATE before a successful sr_node_start(),
 * SR_ESHUTDOWN once a storage error stopped it (the error itself is
 * sr_status.error), and SR_ENOTLEADER for leader-only calls on another
 * role.  bootstrap and recover are valid only before start (SR_ESTATE
 * after).  docs/api.md has the table; test/unit/test_errors.c checks it.
 */

enum {
	SR_FOLLOWER = 1,
	SR_PRECANDIDATE = 2,
	SR_CANDIDATE = 3,
	SR_LEADER = 4,
	SR_STOPPED = 5 /* a storage error stopped the node */
};

/* Name of a role ("follower", ...). */
SR_API const char *sr_role_name(int role);

/*
 * Create a node from cfg (copied; the vtables and contexts it points to
 * must outlive the node).  Nothing is called back yet, except the log
 * hook: a refused config logs the field, its value and why.
 * Errors: SR_EINVAL (bad config), SR_ENOMEM.
 */
SR_API int sr_node_create(const sr_config *cfg, sr_node **out);

/*
 * Write the initial configuration into an empty store: entry 1 of term 1,
 * a configuration entry holding `conf`.  Every initial member must be
 * bootstrapped with the same conf.  Call after sr_node_create() and before
 * sr_node_start().  The store is asked (load()) at once.
 * Errors: SR_EEXIST (the store already holds a term, an entry or a
 * snapshot, or a configuration was given already: nothing is written, the
 * node starts from what the store holds), SR_EINVAL (conf), SR_ESTATE
 * (after start), what load() returned.
 */
SR_API int sr_node_bootstrap(sr_node *node, const sr_membership *conf);

/*
 * Load the durable state from the store and start as a follower at time
 * now_ms.  Committed entries are applied once a leader tells the node
 * the commit index (or at once in a one-voter cluster).
 * Errors: what load() or read() returned, SR_ECORRUPT (an inconsistent
 * store, or a store that lost entries on the only voter: no peer can give
 * them back), SR_ENOMEM.
 */
SR_API int sr_node_start(sr_node *node, uint64_t now_ms);

/*
 * Destroy the node.  Pending proposals get done(SR_EUNKNOWN).  Completions
 * still outstanding in the store must not be delivered afterwards: stop
 * the store's I/O first.
 */
SR_API void sr_node_destroy(sr_node *node);

/*
 * Advance time to now_ms (monotonic).  Fires elections and heartbeats.
 *
 * The engine has no clock: every other entry point uses the time of the
 * latest tick (a follower restarts its election timer from it when it
 * hears from the leader, for instance).  Call sr_node_tick() at
 * sr_node_deadline() and also whenever time has passed before handing
 * the node messages or proposals — an event loop ticks once per
 * iteration, with the time it read, before processing what arrived.  A
 * tick when nothing is due costs a few comparisons.
 * Errors: SR_ESTATE (not started), SR_ESHUTDOWN (stopped).
 */
SR_API int sr_node_tick(sr_node *node, uint64_t now_ms);

/* The time at which the node next needs a tick (absolute, ms). */
SR_API uint64_t sr_node_deadline(const sr_node *node);

/*
 * A message arrived.  Everything msg points to is borrowed for the call.
 * Messages of another group, addressed to another node, or from id 0 or
 * this node's own id return SR_EINVAL, malformed ones SR_EPROTO; either
 * way the node is unaffected.  Senders outside the membership are heard
 * (a node waiting to be added learns its configuration from a leader it
 * does not know yet), except vote requests of a member whose removal is
 * committed, which are ignored.
 * Errors also: SR_ESTATE (not started), SR_ESHUTDOWN (stopped).
 */
SR_API int sr_node_step(sr_node *node, const sr_msg *msg);

/*
 * Propose a command (len bytes, copied).  On success the entry is
 * appended on this leader and *index_out (if not NULL) is its index;
 * done(cookie, ...) reports the outcome later.
 * Errors: SR_ENOTLEADER (sr_status.leader names the leader if known),
 * SR_EBUSY (uncommitted limit, or the store refused an append for
 * backpressure and it waits to be retried), SR_ETOOBIG (len >
 * max_entry_bytes), SR_ETRANSFER, SR_EINVAL, SR_ESTATE (not started),
 * SR_ESHUTDOWN (stopped), SR_ENOMEM.  On error done() is not called.
 */
SR_API int sr_node_propose(sr_node *node, const void *data, size_t len,
			   void *cookie, sr_index *index_out);

/* A command for sr_node_propose_batch(). */
typedef struct sr_buf {
	const void *base;
	size_t len;
} sr_buf;

/*
 * Propose count commands at once: one store append and one message per
 * follower carry them all.  cookies (may be NULL) gives each command's
 * cookie.  Returns how many were accepted (>= 1, the first ones; the rest
 * were refused for backpressure or size) with *first_out (if not NULL) the
 * index of the first, or a negative error if none was accepted.
 */
SR_API int sr_node_propose_batch(sr_node *node, const sr_buf *cmds,
				 size_t count, void *const *cookies,
				 sr_index *first_out);

/*
 * The store finished the append identified by token.  status is 0 or a
 * negative error; an error stops the node (role SR_STOPPED): nothing that
 * was not reported durable is ever acknowledged.  May be called from
 * inside append() (synchronous stores).
 */
SR_API void sr_node_storage_done(sr_node *node, uint64_t token, int status);

/* ------------------------------------------------------------------ */
/* Snapshots                                                          */
/* ------------------------------------------------------------------ */

/* Take a snapshot now (at the last applied index).  SR_EBUSY if one is
 * being taken or installed; SR_ESTATE if nothing new was applied, no
 * snapshot support is configured or the node is not started;
 * SR_ESHUTDOWN if it stopped. */
SR_API int sr_node_snapshot(sr_node *node);

/* The state machine's snapshot bytes, in order (see sr_fsm_ops.snapshot).
 * May be called from inside the snapshot callback. */
SR_API int sr_node_snapshot_write(sr_node *node, const void *data, size_t len);

/* The snapshot is complete (status 0) or abandoned (negative).  On success
 * the store makes it durable and the log before it is compacted. */
SR_API int sr_node_snapshot_done(sr_node *node, int status);

/* Read the store's snapshot; for the restore callback (may be called from
 * inside it).  *n_out is 0 at the end. */
SR_API int sr_node_snapshot_read(sr_node *node, uint64_t offset, void *buf,
				 size_t len, size_t *n_out);

/* ------------------------------------------------------------------ */
/* Membership (one change at a time; thesis §4)                       */
/* ------------------------------------------------------------------ */

/*
 * On the leader: add node `id` (never used before in this cluster) with
 * address `addr` as a learner.  With auto_promote, the leader promotes it
 * to voter once it has caught up (see catchup_entries/catchup_ms).
 * Errors: SR_ENOTLEADER, SR_EEXIST (id in use or removed earlier),
 * SR_ECONFPENDING (a change is not yet committed, or the leader has not
 * committed an entry of its term yet), SR_ETRANSFER, SR_EINVAL, SR_EBUSY
 * (the store refused an append for backpressure), SR_ESTATE,
 * SR_ESHUTDOWN, SR_ENOMEM.
 */
SR_API int sr_node_add(sr_node *node, sr_id id, const char *addr,
		       int auto_promote);

/* On the leader: make learner `id` a voter now.  Errors as sr_node_add,
 * and SR_ENOTFOUND. */
SR_API int sr_node_promote(sr_node *node, sr_id id);

/*
 * On the leader: remove `id` (voter or learner; it may be the leader
 * itself, which then steps down once the change commits).  The id stays
 * in the configuration as SR_ROLE_REMOVED so it is never reused.
 * Errors as sr_node_promote.
 */
SR_API int sr_node_remove(sr_node *node, sr_id id);

/* One change of sr_node_change(). */
enum {
	SR_CHANGE_ADD_LEARNER = 1, /* a new id joins as a learner */
	SR_CHANGE_ADD_VOTER = 2,   /* a new id joins as a voter */
	SR_CHANGE_PROMOTE = 3,	   /* a learner becomes a voter */
	SR_CHANGE_DEMOTE = 4,	   /* a voter becomes a learner */
	SR_CHANGE_REMOVE = 5	   /* a voter or learner leaves for good */
};

typedef struct sr_change {
	uint32_t op; /* SR_CHANGE_* */
	sr_id id;
	/* adds: the member's address (NULL: none), copied */
	const char *addr;
	/* SR_CHANGE_ADD_LEARNER: promote once caught up (sr_node_add) */
	int auto_promote;
} sr_change;

/*
 * On the leader: apply n changes to the membership as one (thesis §4.3).
 * When the voters change by at most one server, this is a simple change,
 * one configuration entry, like sr_node_add/promote/remove.  Otherwise
 * the leader appends a joint configuration (C_old,new: each member with
 * its old and new role, sr_member.new_role), in effect at once: from then
 * on elections and commitment need a majority of the old voters and a
 * majority of the new ones.  Once the joint entry commits, the leader
 * appends the new configuration by itself (a leader elected meanwhile
 * does the same), and a leader that is not a voter of the new
 * configuration steps down once that commits.  (Until a configuration
 * commits, a voter it removes or demotes may still campaign, without
 * counting its own vote, as with sr_node_remove().)  The whole change is
 * done when sr_node_membership() is no longer joint (sr_membership_is_joint())
 * and its entry is committed; conf_changed reports each step.
 * *index_out (if not NULL) is the index of the first entry appended.
 * Errors: SR_EINVAL (n == 0, unknown op, an id twice, no voter left),
 * SR_EEXIST (an add of an id in use or removed earlier), SR_ENOTFOUND
 * (a promote, demote or remove of an id that is not a member, or a
 * promote of a voter / demote of a learner: SR_EINVAL), SR_ECONFPENDING
 * (a change, joint or simple, is not yet committed and left, or the leader
 * has not committed an entry of its term), SR_ENOTLEADER, SR_ETRANSFER,
 * SR_EBUSY, SR_ESTATE, SR_ESHUTDOWN, SR_ENOMEM.  Nothing changes on error.
 */
SR_API int sr_node_change(sr_node *node, const sr_change *changes, size_t n,
			  sr_index *index_out);

/*
 * Forced recovery after a permanent loss of quorum.  Call on exactly one
 * survivor — the one with the most up-to-date log — after sr_node_create()
 * and before sr_node_start(): it writes `conf` as a new configuration
 * entry in a new term.  Start the other survivors unchanged: the
 * recovered node wins their votes (its log is newer) and replicates the
 * new configuration.  Committed entries that only the lost nodes held are
 * lost; see docs/design.md.  Errors: SR_EINVAL, SR_EEXIST (bootstrap or
 * recover was called already), SR_ESTATE (after start); the storage
 * errors of writing it are returned by sr_node_start().
 */
SR_API int sr_node_recover(sr_node *node, const sr_membership *conf);

/* ------------------------------------------------------------------ */
/* Leadership transfer (thesis §3.10)                                 */
/* ------------------------------------------------------------------ */

/*
 * On the leader: hand leadership to voter `target` (0: the most
 * up-to-date voter).  The leader brings the target up to date, sends it
 * TimeoutNow and refuses proposals meanwhile (SR_ETRANSFER); it gives up
 * after an election timeout.  Errors: SR_ENOTLEADER, SR_ENOTFOUND
 * (unknown or removed), SR_EINVAL (a learner, or this node),
 * SR_ETRANSFER (one is running), SR_ESTATE, SR_ESHUTDOWN.
 */
SR_API int sr_node_transfer(sr_node *node, sr_id target);

/* ------------------------------------------------------------------ */
/* Linearizable reads (ReadIndex, thesis §6.4)                        */
/* ------------------------------------------------------------------ */

/*
 * Ask for a read index.  read_done(cookie, 0, index) is called once the
 * leader has confirmed its leadership with a heartbeat round after this
 * call, has committed an entry of its term, and this node's state
 * machine has applied up to the read index.  On a follower the index
 * comes from the leader; the follower matches its answer by a tag that
 * must not repeat across restarts (see sr_config.seed).  Errors:
 * SR_ENOTLEADER (no leader known), SR_EBUSY (too many reads pending),
 * SR_ESTATE, SR_ESHUTDOWN, SR_ENOMEM; on error read_done is not called.
 */
SR_API int sr_node_read_index(sr_node *node, void *cookie);

typedef struct sr_status {
	sr_id id;
	int role;
	sr_term term;
	sr_id vote;
	sr_id leader; /* 0 if unknown */
	sr_index commit_index;
	sr_index applied_index;
	sr_index first_index;
	sr_index last_index;
	sr_index durable_index; /* last index the store reported durable */
	sr_index snapshot_index;
	uint64_t uncommitted_bytes;
	int error;	  /* the storage error that stopped the node, or 0 */
	uint32_t n_peers; /* members other than this node */
	/* Milliseconds since this follower last heard from the leader it
	 * names (0 on the leader, UINT64_MAX when no leader is known): a
	 * leader not heard from for long is probably gone. */
	uint64_t leader_age_ms;
	/* Non-zero while the node re-fetches entries its store lost (up to
	 * this index, sr_durable.lost_last, or until its log holds an entry of
	 * a term above the lost ones'): it does not campaign and votes only
	 * for candidates at least as up-to-date as that index. */
	sr_index repair_index;
} sr_status;

enum {
	SR_PROGRESS_PROBE = 1,
	SR_PROGRESS_REPLICATE = 2,
	SR_PROGRESS_SNAPSHOT = 3
};

typedef struct sr_peer_status {
	sr_id id;
	uint32_t role;	/* SR_ROLE_VOTER or SR_ROLE_LEARNER */
	uint32_t state; /* SR_PROGRESS_* (meaningful on the leader) */
	sr_index match;
	sr_index next;
	uint32_t inflight_msgs;
	uint64_t inflight_bytes;
	uint64_t last_heard_ms; /* last message from it, on the leader */
	int auto_promote;	/* a learner to promote once caught up */
} sr_peer_status;

/* Observe the node.  Safe from callbacks. */
SR_API void sr_node_status(const sr_node *node, sr_status *out);

/*
 * Fill out[] with up to cap peers (members other than this node);
 * returns how many there are (may be more than cap).
 */
SR_API size_t sr_node_peer_status(const sr_node *node, sr_peer_status *out,
				  size_t cap);

/* The configuration in effect (the latest one appended). */
SR_API const sr_membership *sr_node_membership(const sr_node *node);

/* ------------------------------------------------------------------ */
/* Membership encoding (the data of an SR_ENTRY_CONFIG entry)         */
/* ------------------------------------------------------------------ */

/* Bytes needed to encode conf. */
SR_API size_t sr_membership_encoded_size(const sr_membership *conf);
/* Encode into buf (cap bytes); returns the size or SR_ETOOBIG. */
SR_API int sr_membership_encode(const sr_membership *conf, void *buf,
				size_t cap);
/* Decode and validate; SR_EPROTO on malformed input. */
SR_API int sr_membership_decode(sr_membership *conf, const void *buf,
				size_t len);
/* Add a member (SR_EEXIST if the id is present, SR_EINVAL if full). */
SR_API int sr_membership_add(sr_membership *conf, sr_id id, uint32_t role,
			     const char *addr);
/* The member with that id, or NULL. */
SR_API const sr_member *sr_membership_find(const sr_membership *conf, sr_id id);
/* 1 if conf is a joint configuration (a member has a new_role), else 0. */
SR_API int sr_membership_is_joint(const sr_membership *conf);

#ifdef __cplusplus
}
#endif
#endif

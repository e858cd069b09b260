/*
 * node.h — the engine's private state, shared by its files (one job each;
 * docs/design.md §2 lists them and draws who calls whom).
 *
 * Every public entry point brackets its work with node_enter()/node_leave();
 * node_leave() runs deferred work (store completions that arrived inside a
 * callback, commit, apply, acknowledgements) exactly once, at the end, so
 * no callback ever sees the engine half-way through a change.
 */
#ifndef SR_NODE_H
#define SR_NODE_H

#include <seshat/raft.h>

#include "log.h"
#include "quorum.h"
#include "util.h"

/* Largest encoded configuration entry, a joint one (see membership.c). */
#define CONF_MAX_BYTES (2 + SR_MAX_MEMBERS * (11 + SR_ADDR_MAX))

/* Per-peer replication state, kept by every node, used by the leader. */
struct progress {
	sr_id id;
	uint32_t role; /* SR_ROLE_VOTER or SR_ROLE_LEARNER */
	uint32_t state;
	sr_index match;
	sr_index next;
	int probe_sent;	    /* PROBE: an append is outstanding */
	uint64_t probe_seq; /* PROBE: seq of the latest probe sent */
	uint32_t sets;	    /* voter sets it votes in (quorum.h), 0: none */
	int recent_active;  /* heard from since the last quorum check */
	uint32_t vote;	    /* this election: QUORUM_NONE, _YES or _NO */
	uint64_t last_heard;
	uint64_t acked_seq;	/* highest append seq it echoed (ReadIndex) */
	uint64_t match_seq;	/* seq of the reply that last raised match */
	uint64_t catchup_since; /* learner: caught up since (0: not) */
	sr_index snap_index;	/* SNAPSHOT: the snapshot being sent */
	uint64_t snap_offset;	/* SNAPSHOT: offset of the chunk in flight */
	/* REPLICATE: appends in flight, as a ring of (last index, bytes) */
	struct inflight {
		sr_index last;
		uint64_t bytes;
	} * infl;
	struct ring infl_ring; /* over infl; cap max_inflight_msgs */
	uint64_t infl_bytes;
};

/* A store operation in flight (appends only; see persist.c). */
struct pending_op {
	sr_index last; /* clamped when a truncation removes its entries */
	int done;
	int status;
};

/* A read waiting for its index to be confirmed and applied (read.c). */
struct read_req {
	void *cookie;	/* local requests */
	sr_id remote;	/* leader: the follower that asked, 0 if local */
	uint64_t ctx;	/* remote: the follower's ctx; forwarded: ours */
	sr_term term;	/* forwarded: the term it was sent in */
	sr_index index; /* read index once known */
	uint64_t seq;	/* leader: append seq a quorum must echo */
	uint64_t since; /* when it was asked */
};

/* A FIFO of reads (a ring); read.c keeps one per wait. */
struct read_queue {
	struct read_req *v;
	struct ring ring;
};

enum { SNAP_IDLE = 0, SNAP_TAKING = 1, SNAP_RECEIVING = 2 };

/* A proposal awaiting its outcome (see apply.c). */
struct proposal {
	sr_index index;
	sr_term term;
	void *cookie;
};

struct sr_node {
	sr_config cfg;
	const sr_alloc *alloc;
	int started;
	int depth; /* nesting of public entry points */
	int role;
	int stop_error; /* storage error that stopped the node */
	sr_term term;
	sr_id vote;
	sr_id leader;
	uint64_t now;
	uint64_t rng;

	/* timers */
	uint64_t election_deadline;  /* follower and candidates */
	uint64_t heartbeat_deadline; /* leader */
	uint64_t quorum_deadline;    /* leader, CheckQuorum */
	uint64_t leader_heard;	     /* follower: last contact from leader */

	/* log */
	struct raft_log log;
	sr_index commit;
	sr_index applied;
	sr_index durable;
	sr_index verified; /* follower: highest index known to match leader */
	sr_index acked;	   /* follower: highest index acknowledged */
	sr_index repair_until; /* store lost entries up to here (repair.c) */
	sr_term repair_term;   /* the durable term when that was found */
	uint64_t last_seq;     /* follower: seq of the last append seen */
	uint64_t hb_seq;       /* leader: append sequence */

	/* store operations in flight */
	struct pending_op *ops;
	struct ring ops_ring;
	uint64_t ops_first_token; /* token of the first op in ops_ring */
	int ops_dirty;		  /* a completion awaits processing */
	sr_index backlog; /* first entry the store refused (SR_EBUSY), or 0 */

	/* configuration */
	sr_membership conf;
	sr_index conf_index; /* index of the entry that holds conf, 0 if none */
	sr_membership snap_conf; /* configuration at the snapshot */
	sr_membership bootstrap;
	int have_bootstrap;
	sr_membership recover;
	int have_recover;
	/* the configuration at `applied` (the latest entry at or below it,
	 * or the snapshot's), and the configuration entries above it */
	sr_membership conf_applied;
	sr_index conf_applied_index;
	sr_index *conf_pending; /* ascending; the last is conf_index */
	uint32_t conf_pending_n, conf_pending_cap;
	struct progress *prs; /* one per member other than removed */
	uint32_t n_prs;
	struct quorum quorum; /* the voter sets of conf */
	/* a match or this node's durable index rose, or the voters changed,
	 * since the leader last computed its commit index */
	int commit_moved;
	uint32_t self_sets; /* the sets this node votes in */
	/* conf is joint, or this node votes in none of its sets: a leader
	 * has work once conf commits (reconf_after_commit) */
	int conf_leave_due;

	/* proposals, sorted by index */
	struct proposal *props;
	struct ring props_ring;
	uint64_t uncommitted_bytes;

	/* leader */
	sr_index term_start; /* index of this leader's no-op */
	sr_id transfer_target;
	uint64_t transfer_deadline;

	/* snapshots (snapshot.c) */
	int snap_mode;
	sr_index snap_take_index;
	sr_term snap_take_term;
	sr_membership snap_take_conf;
	uint64_t snap_take_offset;
	/* Data bytes of the entries applied since start, and their count
	 * when the last snapshot was taken or restored (snapshot_bytes). */
	uint64_t applied_bytes, snap_bytes_mark;
	sr_id recv_from;	  /* RECEIVING: the leader sending it */
	sr_term recv_leader_term; /* RECEIVING: that leader's term */
	sr_index recv_index;
	sr_term recv_term;
	uint64_t recv_offset;
	sr_membership recv_conf;
	unsigned char *chunk;

	/* reads (read.c) */
	struct read_queue rq_term;    /* leader: until an own-term commit */
	struct read_queue rq_quorum;  /* leader: until a quorum echoes seq */
	struct read_queue rq_forward; /* follower: until the leader answers */
	struct read_queue rq_apply;   /* until applied >= index (sorted) */
	sr_term rq_term_of;	      /* term the first three belong to */
	uint64_t read_ctx_next;	      /* last tag used; random start (read.c) */
	int read_bcast; /* a heartbeat round is wanted for new reads */

	/* scratch for building append messages */
	sr_entry *scratch;
	size_t scratch_cap;
};

/*
 * The engine's files, bottom first (docs/design.md §2 draws the graph);
 * a file calls only the files listed before it.
 */

/* base.c */
void node_log(sr_node *n, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void node_send(sr_node *n, sr_msg *m);
void node_stop(sr_node *n, int err, const char *what);
/* Tell the host the role, term or leader changed. */
void node_notify(sr_node *n);
/* 0 if the node is running; SR_ESTATE before a successful sr_node_start(),
 * SR_ESHUTDOWN once a storage error stopped it (docs/api.md, Errors). */
static inline int node_check_running(const sr_node *n)
{
	if (!n->started)
		return SR_ESTATE;
	if (n->role == SR_STOPPED)
		return SR_ESHUTDOWN;
	return 0;
}
/* May this leader act now?  0, or why not (see base.c). */
enum { LEADER_PROPOSE, LEADER_CHANGE, LEADER_TRANSFER };
int node_leader_ready(const sr_node *n, int act);

/* role.c */
int role_set_hard_state(sr_node *n, sr_term term, sr_id vote);
void role_reset_timer(sr_node *n);
void role_become_follower(sr_node *n, sr_term term, sr_id leader);

/* progress.c */
struct progress *progress_find(sr_node *n, sr_id id);
void progress_reset(sr_node *n, struct progress *pr);
void progress_free(sr_node *n, struct progress *pr);
void progress_free_all(sr_node *n);
void progress_rebuild(sr_node *n);
/* The progress of a response's sender, marked active; NULL if the
 * response is not for this leader's term or the sender not a member. */
struct progress *progress_heard_from(sr_node *n, const sr_msg *m);
int progress_is_voter(sr_node *n, sr_id id);
/* The highest index durable on a quorum (this node: its durable index). */
sr_index progress_quorum_match(const sr_node *n);
/* The newest append seq a quorum echoed (this node: all of them). */
uint64_t progress_quorum_seq(const sr_node *n);
/* The election's outcome so far: QUORUM_WON, _LOST or _PENDING. */
int progress_tally_votes(const sr_node *n);
void progress_clear_votes(sr_node *n);
/* CheckQuorum: was a quorum heard from since the last call? */
int progress_quorum_active(sr_node *n);
/* Is this node's own vote a quorum (the only voter)? */
int progress_self_decides(const sr_node *n);

/* repair.c */
/* At start: note entries the store lost (SR_ECORRUPT if no peer can
 * give them back). */
int repair_start(sr_node *n, const sr_durable *d);
/* Clear the repair once the leader verified the log past the loss. */
void repair_check(sr_node *n);
/* May a candidate with this last entry have our vote despite the loss? */
int repair_vote_ok(const sr_node *n, sr_index last_index, sr_term last_term);

/* persist.c */
int persist_append(sr_node *n, sr_index lo, size_t count);
/* Truncate the log from `from`; the caller rolls the configuration back
 * (conf_rollback). */
int persist_truncate(sr_node *n, sr_index from);
void persist_complete(sr_node *n, uint64_t token, int status);
void persist_process(sr_node *n);
/* Offer the backlog (entries the store refused with SR_EBUSY) again. */
void persist_retry(sr_node *n);
void persist_free(sr_node *n);

/* conf_track.c */
/* Check a configuration given before start, to bootstrap with or to
 * force (`what` names which, for the log): SR_ESTATE once started,
 * SR_EEXIST if one was given already, SR_EINVAL if malformed. */
int conf_check_given(sr_node *n, const sr_membership *conf, const char *what);
/* Append a configuration entry of the current term, in effect at once. */
int conf_append(sr_node *n, const sr_membership *c, sr_index *index_out);
int conf_entry_appended(sr_node *n, sr_index index, const void *data,
			size_t len);
/* The configuration entry at index (data, len) was applied. */
void conf_entry_applied(sr_node *n, sr_index index, const void *data,
			size_t len);
/* The log was truncated from `from`: back to the configuration before. */
void conf_rollback(sr_node *n, sr_index from);
/* A snapshot at index with configuration c replaced the log up to it. */
void conf_snapshot_installed(sr_node *n, const sr_membership *c,
			     sr_index index);
/* At start: the snapshot's configuration (index 0: none). */
void conf_start(sr_node *n, const sr_membership *c, sr_index index);
/* The configuration before the latest (conf_index must be > applied). */
void conf_previous(sr_node *n, sr_membership *out);
void conf_free(sr_node *n);

/* apply.c */
int apply_add_proposal(sr_node *n, sr_index index, sr_term term, void *cookie);
void apply_committed(sr_node *n);
/* Fail the proposals at or below index with status (a snapshot replaced
 * their entries: nobody can tell whether they made it). */
void apply_fail_through(sr_node *n, sr_index index, int status);
void apply_fail_all(sr_node *n, int status);
void apply_free(sr_node *n);

/* follower.c */
void follower_handle_append(sr_node *n, const sr_msg *m);
void follower_maybe_ack(sr_node *n, int force);

/* snapshot.c */
void snap_send(sr_node *n, struct progress *pr);
void snap_handle_chunk(sr_node *n, const sr_msg *m);
/* The progress to probe with an append once a follower installed the
 * snapshot, else NULL. */
struct progress *snap_handle_resp(sr_node *n, const sr_msg *m);
/* Per engine call: drop a pointless partial incoming snapshot, take a
 * snapshot if the threshold is reached. */
void snap_process(sr_node *n);
int snap_restore(sr_node *n, sr_index index, sr_term term);
void snap_free(sr_node *n);

/* replication.c */
void repl_become_leader(sr_node *n);
/* CheckQuorum, when due; the leader may step down. */
void repl_tick_quorum(sr_node *n);
void repl_tick_heartbeat(sr_node *n);
void repl_send_append(sr_node *n, struct progress *pr, int heartbeat);
void repl_broadcast(sr_node *n, int heartbeat);
/* Returns the sender's progress if the response moved it, else NULL. */
struct progress *repl_handle_append_resp(sr_node *n, const sr_msg *m);
void repl_maybe_commit(sr_node *n);

/* election.c */
void elect_tick(sr_node *n);
void elect_start(sr_node *n, int pre, int transfer);
int elect_step_term(sr_node *n, const sr_msg *m);
void elect_handle_vote(sr_node *n, const sr_msg *m);
void elect_handle_vote_resp(sr_node *n, const sr_msg *m);

/* read.c */
/* At start: where this process's read tags begin. */
void read_start(sr_node *n, const sr_durable *d);
int read_index(sr_node *n, void *cookie);
void read_handle_request(sr_node *n, const sr_msg *m);
void read_handle_resp(sr_node *n, const sr_msg *m);
void read_process(sr_node *n);
void read_fail_all(sr_node *n, int status);
void read_free(sr_node *n);

/* transfer.c */
int transfer_start(sr_node *n, sr_id target);
void transfer_check(sr_node *n, struct progress *pr);
void transfer_tick(sr_node *n);

/* reconfig.c */
/* sr_node_change() and the single-server calls, inside the engine. */
int reconf_change(sr_node *n, const sr_change *changes, size_t count,
		  sr_index *index_out);
int reconf_write_recovery(sr_node *n);
void reconf_tick(sr_node *n);
void reconf_after_commit(sr_node *n);

/* node.c: the public entry points */
void node_enter(sr_node *n);
void node_leave(sr_node *n);

#endif

/*
 * node.h — the engine's private state, shared by its files:
 *
 *   node.c         life cycle, the public entry points, status
 *   election.c     timers, PreVote, votes, role changes (Raft §5.2, §9.6)
 *   replication.c  the leader side: progress, appends, commit (Raft §5.3)
 *   follower.c     the follower side of AppendEntries
 *   persist.c      the store: append queue, durable index, term and vote
 *   apply.c        applying committed entries; proposals and their outcome
 *   config.c       the configuration in effect and its rollback
 *   log.c          the in-memory log cache
 *   repair.c       a store that lost acknowledged entries: no vote
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
#include "util.h"

/* Largest encoded configuration entry (see membership.c). */
#define CONF_MAX_BYTES (2 + SR_MAX_MEMBERS * (10 + SR_ADDR_MAX))

/* Per-peer replication state, kept by every node, used by the leader. */
struct progress {
	sr_id id;
	uint32_t role; /* SR_ROLE_VOTER or SR_ROLE_LEARNER */
	uint32_t state;
	sr_index match;
	sr_index next;
	int probe_sent;	    /* PROBE: an append is outstanding */
	uint64_t probe_seq; /* PROBE: seq of the latest probe sent */
	int recent_active;  /* heard from since the last quorum check */
	int vote_granted;   /* election bookkeeping */
	int vote_answered;
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
	uint32_t infl_head, infl_count;
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
	uint32_t head, count, cap;
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
	uint32_t ops_cap, ops_head, ops_count;
	uint64_t ops_first_token; /* token of ops[ops_head] */
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
	struct progress *prs; /* one per member other than removed */
	uint32_t n_prs;

	/* proposals, sorted by index */
	struct proposal *props;
	uint32_t props_cap, props_head, props_count;
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

/* node.c */
void node_enter(sr_node *n);
void node_leave(sr_node *n);
void node_log(sr_node *n, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void node_send(sr_node *n, sr_msg *m);
void node_stop(sr_node *n, int err, const char *what);
struct progress *node_progress(sr_node *n, sr_id id);
int node_is_voter(const sr_node *n, sr_id id);
uint32_t node_voter_count(const sr_node *n);
/* 0 if the node is running; SR_ESTATE before a successful sr_node_start(),
 * SR_ESHUTDOWN once a storage error stopped it (docs/api.md, Errors). */
int node_check_running(const sr_node *n);
/* Check an initial or forced configuration (SR_EINVAL, logged). */
int node_check_membership(sr_node *n, const sr_membership *conf);

/* election.c */
void elect_reset_timer(sr_node *n);
void elect_become_follower(sr_node *n, sr_term term, sr_id leader);
void elect_tick(sr_node *n);
void elect_start(sr_node *n, int pre, int transfer);
int elect_step_term(sr_node *n, const sr_msg *m);
void elect_handle_vote(sr_node *n, const sr_msg *m);
void elect_handle_vote_resp(sr_node *n, const sr_msg *m);
int elect_set_hard_state(sr_node *n, sr_term term, sr_id vote);
void elect_notify(sr_node *n);

/* replication.c */
void repl_become_leader(sr_node *n);
void repl_tick(sr_node *n);
void repl_send_append(sr_node *n, struct progress *pr, int heartbeat);
void repl_broadcast(sr_node *n, int heartbeat);
/* The progress of a response's sender, marked active; NULL if the
 * response is not for this leader's term or the sender not a member. */
struct progress *repl_heard_from(sr_node *n, const sr_msg *m);
void repl_handle_append_resp(sr_node *n, const sr_msg *m);
void repl_maybe_commit(sr_node *n);
void repl_reset_progress(sr_node *n, struct progress *pr);
void repl_free_progress(sr_node *n, struct progress *pr);

/* follower.c */
void follower_handle_append(sr_node *n, const sr_msg *m);
void follower_maybe_ack(sr_node *n, int force);

/* persist.c */
int persist_append(sr_node *n, sr_index lo, size_t count);
int persist_truncate(sr_node *n, sr_index from);
void persist_complete(sr_node *n, uint64_t token, int status);
void persist_process(sr_node *n);
/* Offer the backlog (entries the store refused with SR_EBUSY) again. */
void persist_retry(sr_node *n);
void persist_free(sr_node *n);

/* apply.c */
int apply_add_proposal(sr_node *n, sr_index index, sr_term term, void *cookie);
void apply_committed(sr_node *n);
void apply_fail_all(sr_node *n, int status);
void apply_free(sr_node *n);

/* snapshot.c */
void snap_send(sr_node *n, struct progress *pr);
void snap_handle_chunk(sr_node *n, const sr_msg *m);
void snap_handle_resp(sr_node *n, const sr_msg *m);
/* Per engine call: drop a pointless partial incoming snapshot, take a
 * snapshot if the threshold is reached. */
void snap_process(sr_node *n);
int snap_restore(sr_node *n, sr_index index, sr_term term);
void snap_free(sr_node *n);

/* reconfig.c */
int reconf_write_recovery(sr_node *n);
void reconf_tick(sr_node *n);
void reconf_after_commit(sr_node *n);

/* repair.c */
/* At start: note entries the store lost (SR_ECORRUPT if no peer can
 * give them back). */
int repair_start(sr_node *n, const sr_durable *d);
/* Clear the repair once the leader verified the log past the loss. */
void repair_check(sr_node *n);
/* May a candidate with this last entry have our vote despite the loss? */
int repair_vote_ok(const sr_node *n, sr_index last_index, sr_term last_term);

/* transfer.c */
void transfer_check(sr_node *n, struct progress *pr);
void transfer_tick(sr_node *n);

/* read.c */
/* At start: where this process's read tags begin. */
void read_start(sr_node *n, const sr_durable *d);
void read_handle_request(sr_node *n, const sr_msg *m);
void read_handle_resp(sr_node *n, const sr_msg *m);
void read_process(sr_node *n);
void read_fail_all(sr_node *n, int status);
void read_free(sr_node *n);

/* config.c */
/* Append a configuration entry of the current term, in effect at once. */
int conf_append(sr_node *n, const sr_membership *c, sr_index *index_out);
void conf_at(sr_node *n, sr_index index, sr_membership *out);
int conf_entry_appended(sr_node *n, sr_index index, const void *data,
			size_t len);
void conf_set(sr_node *n, const sr_membership *conf, sr_index index);
int conf_rollback(sr_node *n, sr_index from);

#endif

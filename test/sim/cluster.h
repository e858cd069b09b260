/*
 * cluster.h — N Raft engines in one process, on a simulated clock and a
 * simulated network, with a checker that validates Raft's safety
 * properties after every step.
 *
 * The scenario tests (paper_test.c, faults_test.c) drive a cluster by hand;
 * the random simulator (simulate.c) drives it with faults chosen from a
 * seed.  Both get the same checks (check.c).  Everything is deterministic:
 * one seed, one run.
 *
 * A step is one of: a node's timer (sr_node_tick at sr_node_deadline), one
 * message delivered (sr_node_step), one store completion delivered
 * (sr_mem_complete), or an action of the driver (propose, crash, ...).
 * The engine's send() is called synchronously inside those; the network
 * copies the message into its queue and never delivers re-entrantly.
 *
 * Slots marked external have no engine: what is sent to them lands in the
 * `held` list for the test to inspect, and the test speaks for them with
 * cluster_inject().  That is how single-node scenario tests craft messages.
 *
 * Spare slots run an engine on an empty store that is not bootstrapped:
 * they are in no configuration and stay quiet until a leader adds them
 * (cluster_add), then receive the log or a snapshot like any learner.
 * Node ids are slot + 1, so a configuration is a set of slots (conf.c).
 */
#ifndef SIM_CLUSTER_H
#define SIM_CLUSTER_H

#include <stdint.h>
#include <stdio.h>

#include <seshat/mem.h>
#include <seshat/raft.h>

#define SIM_MAX_NODES  9
#define SIM_FOREVER    UINT64_MAX
/* The state machine is a register per key; a proposal writes its id to
 * the key sim_key_of(id). */
#define SIM_KEYS       4
/* The state machine's snapshot: index, last command, hash, count, keys. */
#define SIM_SNAP_BYTES (8 * (4 + SIM_KEYS))

struct cluster;

struct sim_opts {
	int n;		/* members, 1..SIM_MAX_NODES */
	int n_external; /* the last n_external members have no engine */
	int n_spare;   /* the last n_spare slots start outside the configuration
			(not with n_external) */
	uint64_t seed; /* the cluster's and the engines' randomness */
	uint32_t election_ms;			/* default 100 */
	uint32_t election_ms_of[SIM_MAX_NODES]; /* per slot; 0: election_ms */
	uint32_t heartbeat_ms;			/* default 20 */
	int pre_vote;				/* default 1 */
	int check_quorum;			/* default 1 */
	int async_disk;	      /* SR_MEM_ASYNC with completions as events */
	uint32_t disk_min_ms; /* completion delay range (async_disk) */
	uint32_t disk_max_ms;
	int disk_reorder;	    /* deliver completions out of order */
	uint32_t max_inflight_msgs; /* 0: engine default */
	uint64_t max_inflight_bytes;
	uint32_t max_msg_entries;
	uint64_t max_msg_bytes;
	uint64_t max_uncommitted_bytes;
	int log_level; /* engine log level (traced); default WARN */
	/*
	 * How the host drives time.  1 (the default): sr_node_tick() at
	 * sr_node_deadline() and with the current time before every
	 * message, completion or proposal it hands over, as raft.h asks.
	 * 0: only at the deadline, a host that breaks that rule (followers
	 * then restart their election timers from a stale time); kept for
	 * experiments.
	 */
	int tick_on_event;
	/*
	 * Snapshots (0 threshold: the state machine has no snapshot
	 * callbacks and logs are never compacted).  snapshot_defer: the
	 * state machine captures its state in the callback and hands the
	 * bytes over 0-30 ms later, sometimes abandoning the snapshot.
	 */
	uint64_t snapshot_threshold;
	uint64_t snapshot_trailing;
	uint32_t snapshot_chunk_bytes;
	int snapshot_defer;
	uint32_t group; /* the engines' group id (sr_config.group) */
};

/* Network behaviour, changeable at any time. */
struct sim_net {
	uint32_t loss;	    /* per mille of messages lost */
	uint32_t dup;	    /* per mille duplicated */
	uint32_t delay_min; /* ms; a uniform delay in [min, max] reorders */
	uint32_t delay_max;
	uint8_t link[SIM_MAX_NODES][SIM_MAX_NODES]; /* [from][to]: 1 = up */
};

/* A message in flight: a deep copy of what the engine sent. */
struct sim_msg {
	sr_msg m; /* its pointers point into this allocation */
	uint64_t at;
	int dup;
};

/* What a test's filter decides about a message between engines. */
enum { SIM_DELIVER = 0, SIM_DROP = 1, SIM_HOLD = 2 };
typedef int (*sim_filter_fn)(struct cluster *c, const sr_msg *m, void *ctx);

/* Per-slot shadow of the log: term and chain hash of every entry. */
struct sim_chain {
	sr_term term;
	uint64_t h;
	uint32_t type;
};

struct sim_node {
	struct cluster *c;
	int slot;
	sr_id id; /* slot + 1 */
	int external;
	sr_node *node; /* NULL while crashed */
	sr_mem *mem;   /* the "disk": survives crashes */
	uint64_t incarnation;
	uint64_t paused_until;
	uint64_t last_tick;
	sr_status st; /* as of the end of the last step */

	/* checker state */
	sr_term hs_term; /* durable hard state seen so far */
	sr_id hs_vote;
	sr_term st_term;      /* highest term the engine reported */
	sr_index commit_seen; /* this incarnation */
	sr_index applied_seen;
	sr_term lc_term;  /* term whose leadership was checked */
	sr_term led_term; /* term it led at the end of the last step, or 0 */
	/* the state machine: a hash chained over every command applied */
	struct sim_fsm {
		sr_index index; /* last command applied */
		uint64_t h;
		uint64_t count;
		uint64_t kv[SIM_KEYS]; /* per key: id of the last write, 0 */
	} fsm;
	/* the fsm's prefetch hint (odd seeds): the run hinted last, from
	 * hint_first; [hint_next, hint_end) is still to be applied */
	sr_index hint_first, hint_next, hint_end;
	uint64_t hint_h[SR_FSM_PREFETCH_MAX];
	unsigned char snap_buf[SIM_SNAP_BYTES]; /* a deferred snapshot */
	struct sim_chain *shadow;		/* [0, shadow_last] */
	size_t shadow_cap;
	sr_index shadow_last;
	sr_index conf_idx; /* its latest configuration entry (0: none) */
	sr_term removed_vote_term; /* term before a removed id's vote request */
	int removed_vote_role;
	uint64_t n_applied;
	int retired; /* crashed for good after its removal (no restart) */
	int fail_completion; /* the next store completion reports SR_EIO */
	/* cluster_corrupt: its store lost entries up to here (0: none); the
	 * store reports it until its durable log is past it */
	sr_index lost_last;
	sr_term lost_term;     /* the durable term when the loss was made */
	sr_index lost_first;   /* and from here: */
	uint64_t *lost_h;      /* chain hashes it held at lost_first..last */
	uint64_t restarted_at; /* time of its last restart */
};

/*
 * A message parked by the random driver (cluster.xfaults): delivered only
 * once its condition holds, however late that is.
 */
enum { PARK_RECEIVER_RESTART = 0, PARK_SENDER_RESTART, PARK_TERM_CHANGE };
#define SIM_MAX_PARKED 8

struct sim_parked {
	struct sim_msg *sm;
	int to, from, cond;
	uint64_t inc_to, inc_from; /* incarnations when parked */
	sr_term term;		   /* highest term of any node then */
	uint64_t deadline;	   /* released anyway then */
};

enum { PROP_PENDING = 1, PROP_ACKED, PROP_DROPPED, PROP_UNKNOWN, PROP_FAILED };

struct sim_prop {
	int slot; /* proposer */
	int state;
	int status; /* done() status */
	sr_index index;
	sr_term term;
	sr_index applied_at;
	uint64_t h;	    /* payload hash */
	uint64_t inv, resp; /* history stamps (lincheck.c); resp 0: none */
};

/* A linearizable read (cluster_read) and what it must observe. */
enum { READ_PENDING = 1, READ_OK, READ_FAILED, READ_REFUSED };

struct sim_read {
	int slot;
	int state;
	int status;	/* read_done() status, or the refusal */
	sr_index need;	/* highest index acknowledged when it was issued */
	sr_index index; /* the read index read_done() reported */
	uint64_t at;
	uint64_t inv, resp;	/* history stamps (lincheck.c) */
	uint64_t val[SIM_KEYS]; /* what the state machine held then */
};

/* A configuration as the checker sees it: sets of slots (bit = slot). */
struct sim_conf {
	sr_index index; /* its entry */
	sr_term term;
	uint32_t voters, learners, removed;
	/* a joint configuration's C_old voters (0: not joint); voters,
	 * learners and removed are then C_new's, leaving ids learners */
	uint32_t old_voters;
};

/* EV_WAL: a process's shared WAL closes a batch or finishes its fsync
 * (groups.c); slot is the process, incarnation the WAL's epoch. */
enum { EV_MSG = 1, EV_DISK = 2, EV_SNAP = 3, EV_WAL = 4 };

/* First byte of every payload cluster_propose() makes; 7 bytes of id follow. */
#define SIM_PAYLOAD_MAGIC 0xA5

struct sim_ev {
	uint64_t at;
	uint64_t seq;
	int kind; /* EV_MSG, EV_DISK or EV_SNAP */
	int slot; /* EV_DISK, EV_SNAP: node; EV_MSG: destination */
	uint64_t incarnation;
	struct sim_msg *msg;
};

/* The checker's global view (check.c). */
struct sim_check {
	/* (index, term) -> chain hash of every entry any log ever held */
	struct lm_slot {
		sr_index index;
		sr_term term;
		uint64_t h;
	} * lm;
	size_t lm_cap, lm_n;
	/* the committed prefix [1, commit] */
	struct com_rec {
		uint64_t h;
		sr_term term; /* the entry's term */
		sr_term by;   /* term of the node that first committed it */
		uint32_t type;
	} * com;
	size_t com_cap;
	sr_index commit;
	/* what was applied at each index (by any node, ever) */
	struct app_rec {
		uint64_t h;
		sr_term term;
		uint64_t prop;
		uint64_t state; /* state machine hash after applying it */
	} * app;
	size_t app_cap;
	/* the leader of each term */
	sr_id *leader_of;
	size_t leader_cap;
	uint64_t n_leaders;
	/* every configuration entry any log held, by (index, term) */
	struct sim_conf *confs;
	size_t confs_n, confs_cap;
	/* the latest configuration in the committed prefix (conf_known) */
	struct sim_conf conf;
	int conf_known;
	/* 1: the node that committed the prefix may have counted a quorum
	 * of the configuration after `conf` (see check_durable_quorum) */
	int conf_next_pending;
	/* highest index of a proposal acknowledged so far */
	sr_index acked_max;
};

struct sim_world;

struct cluster {
	struct sim_opts o;
	int n;
	/*
	 * Multi-group mode (groups.c): this cluster is one Raft group of a
	 * world whose slots are processes hosting an engine of every group;
	 * NULL otherwise.  netp is the network the engines use: &net, or
	 * the world's one (group 0's) shared by every group.
	 */
	struct sim_world *world;
	int group_index;
	struct sim_net *netp;
	struct sim_node nodes[SIM_MAX_NODES];
	sr_membership conf;
	sr_storage_ops storage; /* wraps sr_mem_ops() */
	sr_fsm_ops fsm;
	sr_transport_ops transport;
	uint64_t now;
	uint64_t rng;
	uint64_t joint_rng; /* conf.c's own stream: see cluster_joint_turn() */
	uint64_t steps;

	struct sim_net net;
	struct sim_ev *heap;
	size_t heap_n, heap_cap;
	uint64_t ev_seq;
	sim_filter_fn filter;
	void *filter_ctx;
	struct sim_msg **held; /* to external slots, or held by the filter */
	size_t held_n, held_cap;

	struct sim_prop *props; /* proposal id p is props[p - 1] */
	size_t props_n, props_cap;
	struct sim_read *reads; /* read id r is reads[r - 1] */
	size_t reads_n, reads_cap;

	struct sim_check chk;

	/* trace: to `trace` if set, and to a ring of the last lines */
	FILE *trace;
	char (*ring)[240];
	size_t ring_cap, ring_n;

	/*
	 * 1: check only the end-to-end properties (election safety, log
	 * matching, leader completeness, state machine safety, outcomes,
	 * term/vote monotonicity), not the rules that imply them (commit
	 * by counting, durable acknowledgements and votes, committed
	 * prefix durable on a majority).  Shows what the rules catch early.
	 */
	int safety_only;
	/* 1: a crash keeps only what was reported durable (no random part) */
	int crash_drops_all;

	/* the first violation: nothing is checked after it */
	int failed;
	char why[512];

	/* counters */
	uint64_t n_sent, n_lost, n_dup, n_delivered, n_crashes, n_elections;
	uint64_t n_snapshots, n_restores;
	uint64_t n_reads_ok, n_reads_failed, n_reads_refused;
	uint64_t n_conf_ok, n_conf_refused, n_transfers, n_transfers_refused;
	uint64_t n_joint; /* joint configurations entered (sr_node_change) */
	/*
	 * The random driver's extra faults (simulate.c; 0 in scenario
	 * tests): park messages until a restart or a term change
	 * (sim_park), and crash a node right after a durability point (a
	 * store completion, a snapshot "installed" reply).  crash_at and
	 * restart_at are acted on between steps by cluster_step().
	 */
	int xfaults;
	uint64_t crash_at[SIM_MAX_NODES];   /* 0: none */
	uint64_t restart_at[SIM_MAX_NODES]; /* 0: none */
	struct sim_parked parked[SIM_MAX_PARKED];
	size_t n_parked;
	uint64_t n_parked_total, n_bias_crashes, n_io_errors, n_stops;
	uint64_t n_corruptions;

	uint64_t stamp; /* the history's clock: one tick per call and return */
	uint64_t n_lin_ops, n_lin_giveup;
};

void sim_opts_default(struct sim_opts *o);

/* Create stores and engines (not started).  Returns 0 or an SR_E* code. */
int cluster_init(struct cluster *c, const struct sim_opts *o);
/* Bootstrap and start every engine, make the bootstrap entry durable. */
int cluster_start(struct cluster *c);
void cluster_free(struct cluster *c);

/* One step at time <= limit: 1 if one was taken, 0 if nothing is due. */
int cluster_step(struct cluster *c, uint64_t limit);
/* Steps until the clock reaches t (now = t afterwards, unless failed). */
void cluster_run_until(struct cluster *c, uint64_t t);
void cluster_run_for(struct cluster *c, uint64_t ms);
/* Run until pred(c) holds (checked after each step) or ms pass. */
int cluster_run_while_not(struct cluster *c, int (*pred)(struct cluster *),
			  uint64_t ms);

/* The slot of the up node that is leader with the highest term, or -1. */
int cluster_leader(struct cluster *c);
/* Run until some node is leader; its slot, or -1 after ms. */
int cluster_wait_leader(struct cluster *c, uint64_t ms);

/*
 * Propose a payload carrying a fresh proposal id plus `extra` random bytes
 * on slot i; the proposal is tracked.  Returns the engine's result;
 * *pid_out (if not NULL) is the proposal id (0 when refused).
 */
int cluster_propose(struct cluster *c, int i, size_t extra, uint64_t *pid_out);
/* Proposals acknowledged (done status 0) so far. */
size_t cluster_acked(const struct cluster *c);

/* Links and faults. */
void cluster_heal(struct cluster *c);
void cluster_set_link(struct cluster *c, int from, int to, int up);
void cluster_isolate(struct cluster *c, int i);
/* Two sides: slots whose bit is set in mask against the others. */
void cluster_partition(struct cluster *c, uint32_t mask);
void cluster_crash(struct cluster *c, int i);
/* Restart slot i (a no-op for a node that is up or retired). */
int cluster_restart(struct cluster *c, int i);
void cluster_pause(struct cluster *c, int i, uint64_t ms);
/* Release every parked message now (ownership passes to the network). */
void cluster_release_parked(struct cluster *c);
/* Crash slot i and never restart it (a node removed for good). */
void cluster_retire(struct cluster *c, int i);
/*
 * Crash slot i (if up) and corrupt its disk: a random suffix of its
 * durable log, acknowledged entries included, is lost, and its store
 * reports the range through load() (sr_durable.lost_first/lost_last) at
 * every restart until its log is past it, as the WAL does (protocol-aware
 * repair).  Returns 1 if something was lost.
 */
int cluster_corrupt(struct cluster *c, int i);

/* Hand a message to slot i's engine now (a test speaking for a peer). */
int cluster_inject(struct cluster *c, int i, const sr_msg *m);
/* Take held message k (its ownership passes to the caller: free()). */
struct sim_msg *cluster_take_held(struct cluster *c, size_t k);
/* Queue a held message for delivery at now + delay (ownership passes). */
void cluster_release(struct cluster *c, struct sim_msg *m, uint64_t delay);
void cluster_drop_held(struct cluster *c);
/* Number of held messages of a type (0 = any) to slot `to` (-1 = any). */
size_t cluster_count_held(const struct cluster *c, uint32_t type, int to);
struct sim_msg *sim_msg_copy(const sr_msg *m);

/* Engine status of slot i (zeros if it is down). */
const sr_status *cluster_status(struct cluster *c, int i);

/* Has every member (of the committed configuration) applied `index`? */
int cluster_all_applied(struct cluster *c, sr_index index);

/*
 * conf.c: membership changes and leadership transfers on slot i's engine,
 * naming other nodes by slot (target -1: sr_node_transfer(0)).  They
 * return the engine's result, trace it and count it; cluster_add() also
 * asserts that an id the node's configuration holds, removed ones
 * included, is refused (never reused).
 */
int cluster_add(struct cluster *c, int i, int slot, int auto_promote);
int cluster_promote(struct cluster *c, int i, int slot);
int cluster_remove(struct cluster *c, int i, int slot);
/* sr_node_change() on node i with n changes (conf.c). */
int cluster_change(struct cluster *c, int i, const sr_change *chs, size_t n);
/* A random set of promotions, demotions and removals on node i, joint
 * when it changes two voters or more (the churn driver's). */
int cluster_change_random(struct cluster *c, int i);
/* Is this churn turn one for cluster_change_random()?  Drawn from a stream
 * of its own, so that seeds that make no such change run as before. */
int cluster_joint_turn(struct cluster *c);
int cluster_transfer(struct cluster *c, int i, int target);
/* Slots of the committed configuration's voters / voters and learners
 * (before anything is committed: the initial members). */
uint32_t cluster_voters(const struct cluster *c);
uint32_t cluster_members(const struct cluster *c);
/* The configuration in effect on slot i (its latest entry), or NULL. */
const struct sim_conf *cluster_conf_of(struct cluster *c, int i);

/*
 * reads.c: a linearizable read (sr_node_read_index) on slot i, tracked
 * like a proposal: *rid_out (if not NULL) is its read id, 0 if refused.
 * When read_done() reports success the checker requires that the node's
 * state machine holds every write acknowledged before this call.
 */
int cluster_read(struct cluster *c, int i, uint64_t *rid_out);

/* Trace a line (time and slot prefixed); slot -1 for the cluster. */
void sim_trace(struct cluster *c, int slot, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* The same for what hits a whole process (no group tag with many groups). */
void sim_trace_proc(struct cluster *c, int slot, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Keep the last cap trace lines for cluster_dump_ring(). */
void cluster_keep_ring(struct cluster *c, size_t cap);
void cluster_dump_ring(const struct cluster *c, FILE *out);
/* Describe a message in one line. */
void sim_msg_describe(const sr_msg *m, char *buf, size_t cap);

/* Record a violation (the first one wins). */
void sim_fail(struct cluster *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* The cluster's random numbers. */
uint64_t sim_rand(struct cluster *c);
uint64_t sim_rand_range(struct cluster *c, uint64_t lo, uint64_t hi);

/* Internal to cluster.c and hooks.c. */
void sim_push_event(struct cluster *c, struct sim_ev ev);
void sim_schedule_msg(struct cluster *c, int to, struct sim_msg *sm,
		      uint64_t at);
void sim_held_push(struct cluster *c, struct sim_msg *sm);
void sim_hooks_init(struct cluster *c);
int sim_node_make(struct cluster *c, struct sim_node *sn);
void sim_disk_done(void *ctx, uint64_t token, int status);
void sim_snapshot_give(struct sim_node *sn, const unsigned char *buf);
void sim_host_tick(struct cluster *c, struct sim_node *sn);
void *sim_grow(void *p, size_t *cap, size_t need, size_t elem);
/* One step of this cluster alone (cluster_step without the world). */
int cluster_step_one(struct cluster *c, uint64_t limit);
/* When this cluster's next step is due (SIM_FOREVER: nothing pending). */
uint64_t cluster_next_at(struct cluster *c);
/* The extra faults due between steps (crash_at, restart_at, parked). */
void sim_xfault_step(struct cluster *c);

/* check.c: the invariants */
uint64_t sim_hash(uint64_t h, const void *data, size_t len);
void check_init(struct cluster *c);
void check_free(struct cluster *c);
void check_append(struct sim_node *sn, const sr_entry *e, size_t n);
void check_truncate(struct sim_node *sn, sr_index from);
void check_hard_state(struct sim_node *sn, sr_term term, sr_id vote);
void check_send(struct sim_node *sn, const sr_msg *m);
void check_apply(struct sim_node *sn, const sr_entry *e);
void check_compact(struct sim_node *sn, sr_index upto);
/* The state machine restored snapshot bytes (32: index, fsm state). */
void check_restore(struct sim_node *sn, sr_index index, const void *buf,
		   size_t len);
void check_done(struct sim_node *sn, uint64_t pid, int status, sr_index index);
void check_read_done(struct sim_node *sn, uint64_t rid, int status,
		     sr_index index);
/* Inside a callback: take sn's commit index if it is ahead of the checker. */
void check_catch_up(struct sim_node *sn);

/* The key a proposal id writes. */
static inline int sim_key_of(uint64_t pid)
{
	return (int)((pid * 0x9e3779b97f4a7c15ull) >> 62) % SIM_KEYS;
}

/*
 * lincheck.c: the history of writes and reads is linearizable, key by
 * key (Wing-Gong search with memoization).  Calls sim_fail otherwise.
 */
void check_linearizable(struct cluster *c);

/* conf.c: the configuration side of the checker */
void conf_note(struct sim_node *sn, const sr_entry *e);
const struct sim_conf *conf_find(const struct cluster *c, sr_index index,
				 sr_term term);
/* Recompute sn->conf_idx from its shadow. */
void conf_rescan(struct sim_node *sn);
/* A configuration entry is about to be appended at e->index. */
void check_conf_append(struct sim_node *sn, const sr_entry *e);
/* The committed prefix grew from `from` to `to`, reported by sn. */
void check_conf_commit(struct sim_node *sn, sr_index from, sr_index to);
/* Messages that depend on membership (votes, TimeoutNow). */
void check_conf_send(struct sim_node *sn, const sr_msg *m);
/* Around the delivery of m to sn (after = 0 before it, 1 after it). */
void check_conf_recv(struct sim_node *sn, const sr_msg *m, int after);
/* sn leads a term it did not lead at the previous step. */
void check_conf_leader(struct sim_node *sn);
/* Leader ld's commit index moved to ci: a majority of its configuration
 * holds (ci, its term there) durably. */
void check_leader_commit(struct sim_node *ld, sr_index ci);
/* The committed prefix is durable on enough voters (every step). */
void check_durable_quorum(struct cluster *c);
/* Rebuild slot's shadow from its store (after a crash, or at start with
 * insert = 1 for logs a test preloaded). */
void check_restart(struct sim_node *sn, int insert);
void check_step(struct cluster *c);
/* Liveness: every acknowledged proposal applied on every member. */
int check_converged(struct cluster *c, char *why, size_t cap);

#endif

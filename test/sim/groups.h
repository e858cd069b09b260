/*
 * groups.h — multi-group simulation: every simulated process hosts one
 * engine of each of G Raft groups (distinct group ids), and the groups
 * share what a multi-Raft process shares:
 *
 *   the transport  one link per pair of processes: its state (up, down,
 *                  loss, duplication, delay) is group 0's `net`, which
 *                  every group uses (cluster.netp); a message is routed to
 *                  the engine of the group its id names, as a real
 *                  transport demultiplexes one connection.
 *   the WAL        one log per process: the appends, truncations and
 *                  compactions of every group are records in one write
 *                  order; a batch of them (whatever accumulated when the
 *                  writer closes it) is made durable by one fsync, and an
 *                  append's completion is delivered only when the fsync
 *                  covering it has finished.  A crash keeps the durable
 *                  records and a prefix of the others in write order
 *                  (often none; the last one kept may be torn), so one
 *                  lost batch spans groups.
 *   the process    a crash, restart or pause hits every group's engine on
 *                  that process at once.  (A node removed from a group and
 *                  retired leaves that group only: world_retire.)
 *
 * Each group is a struct cluster with its own engines, stores (its view
 * of the shared WAL: an sr_mem whose durability the WAL drives), clients
 * and checker; they share one clock, and stepping the world steps the
 * group whose next event is earliest (ties: the lowest group).  A
 * violation in any group fails the world, named "group K".
 *
 * Injected bugs (sim_world.bug; the checker must catch each):
 *   SIM_BUG_MISROUTE  now and then the transport hands a message to the
 *                     engine of another group, relabelled as that
 *                     group's (a demultiplexer keyed on the wrong field);
 *   SIM_BUG_EARLY_ACK the WAL reports appends durable when it closes a
 *                     batch, before the fsync that makes them durable;
 *   SIM_BUG_SPLIT     the fsync of a batch covers only the part of it
 *                     that comes before the last group's records; those
 *                     are reported durable too, but a crash loses them
 *                     while the earlier part survives.
 */
#ifndef SIM_GROUPS_H
#define SIM_GROUPS_H

#include "cluster.h"

#define SIM_MAX_GROUPS	64
/* The group id of group index k (never 0: a group id is data here). */
#define SIM_GROUP_ID(k) (1000u + (uint32_t)(k))

enum {
	SIM_BUG_NONE = 0,
	SIM_BUG_MISROUTE = 1,
	SIM_BUG_EARLY_ACK = 2,
	SIM_BUG_SPLIT = 3
};

enum { WAL_APPEND = 1, WAL_OTHER = 2 };

/* A record of the shared WAL not yet durable. */
struct sim_wal_rec {
	int group;	/* group index */
	int kind;	/* WAL_APPEND (has a completion) or WAL_OTHER */
	uint64_t token; /* WAL_APPEND: the engine's token */
	size_t n;	/* WAL_APPEND: entries */
	int acked;	/* reported durable already (injected bugs) */
	int split; /* SIM_BUG_SPLIT: lost at a crash whatever else survives */
};

struct sim_wal {
	struct sim_wal_rec *rec; /* write order */
	size_t n, cap;
	size_t batch_n; /* records the fsync in flight covers; 0: none */
	int scheduled;	/* an EV_WAL event is pending */
	uint64_t epoch; /* bumped at each crash: older events are void */
};

struct sim_world {
	int n_groups;
	struct cluster *g[SIM_MAX_GROUPS];
	struct sim_wal wal[SIM_MAX_NODES];
	int bug;
	int crash_keep; /* tests: unsynced records a crash keeps (-1: random) */
	int fanout;	/* inside a crash/restart/pause of every group */
	int retiring;	/* inside world_retire: one group's engine goes */
	int suppress;	/* completions from the store are not reported */
	int syncing;	/* wal_sync is completing records */
	uint64_t expect; /* the token the completion being delivered carries */
	/* how sr_mem_crash keeps a prefix of one group's pending records */
	struct wal_script {
		size_t keep;
		uint64_t last;
	} script;
	/* counters */
	uint64_t n_batches, n_multi_batches, n_records;
	uint64_t n_crash_lost, n_crash_kept, n_misrouted;
};

/*
 * Create G clusters of the same shape (o), one per group, sharing one
 * world.  Group k has group id SIM_GROUP_ID(k) and its own seed derived
 * from o->seed (group 0 keeps o->seed).  The stores are asynchronous:
 * the WAL delivers their completions.  0 or an SR_E* code.
 */
int world_init(struct sim_world *w, const struct sim_opts *o, int groups,
	       int bug);
/* cluster_start() of every group; the bootstrap records are durable. */
int world_start(struct sim_world *w);
void world_free(struct sim_world *w);

/* One step of the group due first: 1 if one was taken. */
int world_step(struct sim_world *w, uint64_t limit);
/* Set every group's clock to t (never backwards). */
void world_set_now(struct sim_world *w, uint64_t t);

/* A process-wide crash / restart / pause of slot i (every group). */
void world_crash(struct sim_world *w, int i);
int world_restart(struct sim_world *w, int i);
void world_pause(struct sim_world *w, int i, uint64_t ms);
/*
 * Group k's engine on process i goes for good (removed from the group),
 * the process and its other groups run on: its unsynced records leave
 * the WAL, its store crashes as a single group's does (cluster_crash).
 */
void world_retire(struct sim_world *w, int k, int i);

/*
 * The transport: the group whose engine receives m (sent by a node of
 * c's group); with SIM_BUG_MISROUTE sometimes another one, and m->group
 * is relabelled to it.
 */
struct cluster *world_route(struct cluster *c, sr_msg *m);

/* The WAL: a record of sn's store (kind, token and entries of an append). */
void world_wal_add(struct sim_node *sn, int kind, uint64_t token, size_t n);
/* An EV_WAL event of slot i came due (in group 0's event heap). */
void world_wal_event(struct sim_world *w, struct sim_ev *ev);
/* The rand function sr_mem_crash gets for a group (w->script). */
uint64_t world_crash_rand(void *ctx);

#endif

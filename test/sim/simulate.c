/*
 * simulate.c — the randomized deterministic simulator.
 *
 *   simulate                      500 seeds (what `make test` runs)
 *   simulate --seeds N [--from S] seeds S .. S+N-1 (S defaults to 1)
 *   simulate --seed S [--trace]   one seed, optionally with a full trace
 *
 * Options: --duration MS (fault phase, default 5000 simulated ms),
 * --nodes N (initial voters), --prevote 0|1, --checkquorum 0|1,
 * --churn 0|1|2 (force what a seed would pick; 2 adds a removal the
 * engine cannot recover from yet, see churn_member), --ticks deadline (a
 * host that ticks only at sr_node_deadline(), against raft.h's rule; see
 * sim_opts.tick_on_event), --safety-only (only the end-to-end properties,
 * not the rules that imply them; see check.c), --verbose (a line per
 * seed), --groups G (G Raft groups per process on one transport and one
 * WAL, each with its own checker: groups.h), --bug misroute|early-ack|
 * split (with --groups: an injected bug the checker must catch),
 * --max-fail N (stop after N failing seeds).
 *
 * Each seed picks a cluster (3, 5 or 7 voters, and on churn seeds 1-4
 * spare engines outside the configuration) and a configuration (PreVote
 * and CheckQuorum on or off, synchronous or asynchronous storage with
 * completions in or out of order, flow-control limits from tight to
 * default, snapshots), then runs two phases:
 *
 *   faults    proposals all along, on the leader or any node; the network
 *             loses, duplicates, delays and reorders messages and is cut by
 *             symmetric, asymmetric and bridge partitions; nodes crash
 *             (keeping what their store reported durable and a random part
 *             of the rest), restart, and pause.  On churn seeds (half of
 *             them) also membership changes (add a spare as a learner,
 *             promote, remove a member or the leader itself, or several
 *             promotions, demotions and removals at once through a joint
 *             configuration; removed nodes keep running or stop for
 *             good), leadership transfers, and
 *             linearizable reads on the leader and on any node.
 *             During storms also: store I/O errors (the node stops and
 *             is restarted like a crashed one), messages parked until a
 *             restart or a term change, crashes right after durability
 *             points, bursts of reads on nodes that just restarted; on
 *             every seed reads on the leader and on any node.
 *   liveness  every fault healed, every node up: a new proposal must commit
 *             and every acknowledged proposal must be applied on every
 *             member within a bound; every member must then serve a read
 *             and take a snapshot when asked.
 *
 * At the end the history of writes and reads must be linearizable
 * (lincheck.c).
 *
 * The checker (check.c) validates the safety properties after every step.
 * A failing seed prints its reason, the last lines of its trace and the
 * command that replays it.  The last line is "N passed, N failed".
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "groups.h"

#define LIVENESS_BOUND_MS 10000

struct run {
	uint64_t seed;
	uint64_t duration;
	int nodes;	   /* 0: random */
	int pre_vote;	   /* -1: random */
	int check_quorum;  /* -1: random */
	int safety_only;   /* end-to-end properties only */
	int tick_on_event; /* -1: as raft.h asks (per event) */
	int churn;	   /* -1: from the seed */
	int groups;	   /* Raft groups per process (groups.h); 1: plain */
	int bug; /* SIM_BUG_*: an injected bug of the multi-group world */
	FILE *trace;
	size_t ring;
	/* results */
	char why[600];
	int dyn; /* this seed changes membership, transfers and reads */
	uint64_t steps, acked, crashes, leaders, sim_ms, msgs, snaps, restores;
	uint64_t reads, confs, transfers, lin_ops, lin_giveup, joints;
	uint64_t parked, bias_crashes, io_errors, stops, corruptions;
	uint64_t batches, multi_batches, wal_lost, wal_kept, misrouted;
};

/* Group k of a world (the cluster itself when there is one group). */
static struct cluster *grp(struct cluster *c, int k)
{
	return c->world ? c->world->g[k] : c;
}

static int ngroups(const struct cluster *c)
{
	return c->world ? c->world->n_groups : 1;
}

/* A random group (no draw with one group: seeds stay as they were). */
static struct cluster *any_group(struct cluster *c)
{
	return c->world ? grp(c, (int)(sim_rand(c) % (uint64_t)ngroups(c))) : c;
}

static uint64_t split(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void pick_opts(struct run *r, struct sim_opts *o)
{
	static const uint32_t infl[] = { 1, 2, 4, 16, 64 };
	static const uint32_t ents[] = { 1, 3, 64, 4096 };
	uint64_t s = r->seed * 0x2545f4914f6cdd1dull + 17;
	uint64_t x = split(&s) % 100;
	int spares;

	sim_opts_default(o);
	o->seed = r->seed;
	o->n = r->nodes ? r->nodes : x < 50 ? 3 : x < 85 ? 5 : 7;
	o->pre_vote = split(&s) % 4 != 0;
	o->check_quorum = split(&s) % 4 != 0;
	o->async_disk = split(&s) % 8 != 0;
	o->disk_min_ms = (uint32_t)(split(&s) % 2);
	o->disk_max_ms = o->disk_min_ms + (uint32_t)(split(&s) % 10);
	o->disk_reorder = (int)(split(&s) % 2);
	o->max_inflight_msgs = infl[split(&s) % 5];
	o->max_msg_entries = ents[split(&s) % 4];
	if (split(&s) % 5 == 0)
		o->max_uncommitted_bytes = 1000 + split(&s) % 20000;
	(void)split(&s); /* was the tick model; keeps seeds as they were */
	if (split(&s) % 2) {
		o->snapshot_threshold = 5 + split(&s) % 100;
		o->snapshot_trailing = split(&s) % 30;
		o->snapshot_chunk_bytes = 1 + (uint32_t)(split(&s) % 40);
		o->snapshot_defer = (int)(split(&s) % 2);
	}
	/* Drawn last, so that the seeds without churn run as they did
	 * before it existed: membership changes, transfers and reads on
	 * half the seeds, with 1-4 spare slots to add. */
	r->dyn = (int)(split(&s) % 2);
	spares = 1 + (int)(split(&s) % 4);
	if (r->churn >= 0)
		r->dyn = r->churn != 0;
	if (spares > SIM_MAX_NODES - o->n)
		spares = SIM_MAX_NODES - o->n;
	if (r->dyn) {
		o->n_spare = spares;
		o->n += spares;
	}
	if (r->pre_vote >= 0)
		o->pre_vote = r->pre_vote;
	if (r->tick_on_event >= 0)
		o->tick_on_event = r->tick_on_event;
	if (r->check_quorum >= 0)
		o->check_quorum = r->check_quorum;
	if (r->trace)
		o->log_level = SR_LOG_DEBUG;
}

static void describe_opts(const struct sim_opts *o, char *buf, size_t cap)
{
	snprintf(buf, cap,
		 "%d nodes (%d spare), prevote %d, checkquorum %d, ticks %s, "
		 "%s disk (%u-%u ms%s), inflight %u, entries/msg %u, "
		 "uncommitted %" PRIu64 ", snapshots every %" PRIu64
		 " (trailing %" PRIu64 ", chunks of %u%s)",
		 o->n, o->n_spare, o->pre_vote, o->check_quorum,
		 o->tick_on_event ? "per event" : "at deadline",
		 o->async_disk ? "async" : "sync", o->disk_min_ms,
		 o->disk_max_ms, o->disk_reorder ? ", reordered" : "",
		 o->max_inflight_msgs, o->max_msg_entries,
		 o->max_uncommitted_bytes, o->snapshot_threshold,
		 o->snapshot_trailing, o->snapshot_chunk_bytes,
		 o->snapshot_defer ? ", deferred" : "");
}

/* A random change of the network's shape or quality. */
static void fault_network(struct cluster *c)
{
	int n = c->n, i = (int)(sim_rand(c) % (uint64_t)n);
	uint32_t mask;

	switch (sim_rand(c) % 7) {
	case 0:
		cluster_heal(c);
		break;
	case 1: /* symmetric split in two */
		mask = (uint32_t)(1 + sim_rand(c) % ((1u << n) - 2));
		cluster_partition(c, mask);
		break;
	case 2:
		cluster_isolate(c, i);
		break;
	case 3: /* asymmetric: some directed links fail */
		for (int k = 0; k < n; k++)
			for (int j = 0; j < n; j++)
				if (k != j && sim_rand(c) % 4 == 0)
					cluster_set_link(c, k, j, 0);
		sim_trace_proc(c, -1, "some directed links cut");
		break;
	case 4: /* bridge: two halves, node i sees both */
		mask = (uint32_t)(1 + sim_rand(c) % ((1u << n) - 2));
		cluster_partition(c, mask);
		for (int j = 0; j < n; j++) {
			cluster_set_link(c, i, j, 1);
			cluster_set_link(c, j, i, 1);
		}
		sim_trace_proc(c, i, "is a bridge");
		break;
	case 5: /* one node hears but is not heard */
		for (int j = 0; j < n; j++)
			cluster_set_link(c, i, j, 0);
		sim_trace_proc(c, i, "can receive but not send");
		break;
	default: /* quality */
		c->netp->loss = (uint32_t)(sim_rand(c) % 4 ? sim_rand(c) % 300
							   : 0);
		c->netp->dup = (uint32_t)(sim_rand(c) % 3 ? sim_rand(c) % 300
							  : 0);
		c->netp->delay_min = (uint32_t)(sim_rand(c) % 5);
		c->netp->delay_max = c->netp->delay_min +
				     (uint32_t)(sim_rand(c) % 40);
		sim_trace_proc(c, -1,
			       "network: loss %u‰ dup %u‰ delay %u-%u ms",
			       c->netp->loss, c->netp->dup, c->netp->delay_min,
			       c->netp->delay_max);
	}
}

static void propose_some(struct cluster *c)
{
	int ld = cluster_leader(c), k = 1 + (int)(sim_rand(c) % 4);

	for (int j = 0; j < k; j++) {
		int i = ld >= 0 && sim_rand(c) % 5 ? ld
						   : (int)(sim_rand(c) % c->n);

		cluster_propose(c, i, sim_rand(c) % 100, NULL);
	}
}

/* Proposals: with many groups, to each group with probability 1/2 (at
 * least one), so that the shared WAL batches appends of several. */
static void propose_groups(struct cluster *c)
{
	int any = 0;

	if (!c->world) {
		propose_some(c);
		return;
	}
	for (int k = 0; k < ngroups(c); k++)
		if (sim_rand(c) % 2) {
			propose_some(grp(c, k));
			any = 1;
		}
	if (!any)
		propose_some(any_group(c));
}

/* ------------------------------------------------------------------ */
/* Churn: membership changes, leadership transfers, reads              */
/* ------------------------------------------------------------------ */

/* What the churn driver remembers about each slot. */
struct churn {
	uint8_t offered[SIM_MAX_NODES]; /* a member, or offered to add once */
	uint8_t settled[SIM_MAX_NODES]; /* its committed removal handled */
	int lone; /* also let the leader of two voters remove itself */
};

static uint32_t role_set(const sr_membership *m, uint32_t role)
{
	uint32_t set = 0;

	for (uint32_t j = 0; j < m->n; j++)
		if (m->members[j].role == role && m->members[j].id >= 1 &&
		    m->members[j].id <= SIM_MAX_NODES)
			set |= 1u << (m->members[j].id - 1);
	return set;
}

/* A random slot of a set, or -1. */
static int pick(struct cluster *c, uint32_t set)
{
	int n = 0, k;

	for (uint32_t x = set; x; x &= x - 1)
		n++;
	if (!n)
		return -1;
	k = (int)(sim_rand(c) % (uint64_t)n);
	for (int i = 0; i < SIM_MAX_NODES; i++)
		if (set >> i & 1 && k-- == 0)
			return i;
	return -1;
}

/*
 * One membership change, on the leader (now and then on any node, to be
 * refused): add a spare never offered before (auto-promoted or not),
 * promote a learner, remove a member (the leader itself a fifth of the
 * time), or re-add an id the configuration holds (cluster_add asserts the
 * refusal).  Voters are removed only above 3 of them, or a quarter of the
 * time above 1, so that quorums usually survive the crashes.
 *
 * With --churn 2 also: the leader of two voters removing itself.
 * If it then loses leadership before a follower holds the change, the
 * engine deadlocks: the follower needs its vote, it refuses (its log is
 * longer) and does not campaign (it is no voter of its own latest
 * configuration).  Thesis §4.2.2 lets such a server campaign until the
 * change commits.  Seed 432 with --churn 2 shows it.
 */
static void churn_member(struct cluster *c, struct churn *ch)
{
	int ld = cluster_leader(c), on, s;
	const sr_membership *m;
	uint32_t voters, learners, removed, spare = 0;

	on = ld >= 0 && sim_rand(c) % 8 ? ld : (int)(sim_rand(c) % c->n);
	if (!c->nodes[on].node)
		return;
	if (cluster_joint_turn(c)) {
		/* several at once, through a joint configuration */
		cluster_change_random(c, on);
		return;
	}
	m = sr_node_membership(c->nodes[on].node);
	voters = role_set(m, SR_ROLE_VOTER);
	learners = role_set(m, SR_ROLE_LEARNER);
	removed = role_set(m, SR_ROLE_REMOVED);
	for (int i = 0; i < c->n; i++)
		if (!ch->offered[i] &&
		    !((voters | learners | removed) >> i & 1))
			spare |= 1u << i;
	switch (sim_rand(c) % 4) {
	case 0:
		if ((s = pick(c, spare)) >= 0) {
			ch->offered[s] = 1;
			cluster_add(c, on, s, (int)(sim_rand(c) % 2));
		}
		break;
	case 1:
		if ((s = pick(c, learners)) >= 0)
			cluster_promote(c, on, s);
		break;
	case 2: {
		int nv = 0, self = sim_rand(c) % 5 == 0;

		for (uint32_t x = voters; x; x &= x - 1)
			nv++;
		s = self ? on : pick(c, voters | learners);
		if (s < 0 || (voters >> s & 1 && nv <= 3 &&
			      (nv <= 1 || sim_rand(c) % 4)))
			break;
		if (s == on && nv <= 2 && !ch->lone)
			break;
		cluster_remove(c, on, s);
		break;
	}
	default:
		if ((s = pick(c, voters | learners | removed)) >= 0)
			cluster_add(c, on, s, 0);
	}
}

/*
 * Slots whose removal is committed: half are crashed for good, the
 * others keep running (and must not disrupt the cluster).
 */
static void churn_settle(struct cluster *c, struct churn *ch)
{
	if (!c->chk.conf_known)
		return;
	for (int i = 0; i < c->n; i++) {
		if (!(c->chk.conf.removed >> i & 1) || ch->settled[i])
			continue;
		ch->settled[i] = 1;
		if (sim_rand(c) % 2)
			cluster_retire(c, i);
	}
}

/* Every 1-15 ms of a churn seed: reads, changes, transfers. */
static void churn_act(struct cluster *c, struct churn *ch)
{
	uint64_t x = sim_rand(c) % 1000;
	int ld = cluster_leader(c);

	churn_settle(c, ch);
	if (x < 100) {
		int i = ld >= 0 && sim_rand(c) % 2 ? ld
						   : (int)(sim_rand(c) % c->n);

		cluster_read(c, i, NULL);
	} else if (x < 180) {
		churn_member(c, ch);
	} else if (x < 210 && ld >= 0) {
		/* the best voter, or any slot (learners, removed ids and
		 * itself are refused) */
		int t = sim_rand(c) % 3 ? (int)(sim_rand(c) % c->n) : -1;

		cluster_transfer(c, ld, t);
	}
}

/*
 * A store I/O error on node i: the next append, hard-state write,
 * truncation or read fails, or (asynchronous store) the next completion
 * reports SR_EIO.  The engine must stop (SR_STOPPED) having acknowledged
 * nothing that is not durable; stopped_restart() then treats it as
 * crashed.
 */
static void fault_store(struct cluster *c, int i)
{
	static const int ops[] = { SR_MEM_FAIL_APPEND, SR_MEM_FAIL_HARD_STATE,
				   SR_MEM_FAIL_TRUNCATE, SR_MEM_FAIL_READ };
	struct sim_node *sn = &c->nodes[i];
	uint64_t x = sim_rand(c) % 5;

	if (!sn->node)
		return;
	c->n_io_errors++;
	if (x == 4 && c->o.async_disk) {
		sn->fail_completion = 1;
		sim_trace(c, i, "STORE ERROR on the next completion");
	} else {
		sr_mem_inject(sn->mem, ops[x % 4], SR_EIO);
		sim_trace(c, i, "STORE ERROR on the next %s",
			  x % 4 == 0   ? "append"
			  : x % 4 == 1 ? "hard state write"
			  : x % 4 == 2 ? "truncation"
				       : "read");
	}
}

/*
 * Disk corruption on node i (protocol-aware repair): it crashes and a
 * random suffix of its durable log is lost, acknowledged entries
 * included; its store reports the range and it restarts later.  One
 * repair at a time, and only while every slot's latest configuration
 * has at least three voters and is not joint (a joint one needs two
 * majorities, and a candidate may find a node in each that holds a newer
 * entry yet cannot campaign): a repairing node never campaigns and votes
 * only for candidates at least as up-to-date as what it lost, so when
 * the lost range holds entries no other node has (a deposed leader's
 * uncommitted tail) and no quorum forms without it, no one can be
 * elected (docs/design.md: availability, not safety, which the checker
 * covers whatever happens).
 */
static void fault_corrupt(struct cluster *c, int i)
{
	for (int k = 0; k < c->n; k++) {
		const struct sim_conf *cf = cluster_conf_of(c, k);
		int n = 0;

		if (c->nodes[k].lost_last || (cf && cf->old_voters))
			return;
		for (uint32_t v = cf ? cf->voters : 0; v; v &= v - 1)
			n++;
		if (cf && n < 3)
			return;
	}
	if (!cluster_corrupt(c, i))
		return;
	c->restart_at[i] = c->now + sim_rand_range(c, 1, 200);
}

/* A node its store stopped is as good as crashed: crash it (the store
 * keeps what it reported durable) and restart it later. */
static void stopped_restart(struct cluster *c)
{
	for (int k = 0; k < ngroups(c); k++)
		for (int i = 0; i < c->n; i++) {
			struct sim_node *sn = &grp(c, k)->nodes[i];

			if (!sn->node || sn->st.role != SR_STOPPED)
				continue;
			c->n_stops++;
			sim_trace(sn->c, i,
				  "STOPPED by its store: crash, restart later");
			/* with many groups: the whole process */
			cluster_crash(c, i);
			c->restart_at[i] = c->now + sim_rand_range(c, 1, 300);
		}
}

/*
 * Storms (every fault at a high rate) alternate with calm spells (the
 * network healed, proposals only) so that the cluster also makes
 * progress, and progress is what faults must not corrupt.
 */
static void fault_phase(struct cluster *c, uint64_t duration, int dyn, int lone)
{
	uint64_t end = c->now + duration, spell_end = 0, last = c->now;
	struct churn *ch = calloc((size_t)ngroups(c), sizeof(*ch));
	int storm = 0;

	if (!ch)
		abort(); /* test harness: out of memory is fatal */
	/* each group changes its own membership (spares are processes
	 * that host an engine of every group, in none of them at first) */
	for (int k = 0; k < ngroups(c); k++) {
		ch[k].lone = lone;
		for (int i = 0; i < c->n - c->o.n_spare; i++)
			ch[k].offered[i] = 1;
	}

	while (c->now < end && !c->failed) {
		struct cluster *lc;
		uint64_t r;
		int i;

		cluster_run_until(c, c->now + sim_rand_range(c, 1, 15));
		for (i = 0; i < c->n; i++)
			if (c->restart_at[i] && c->restart_at[i] <= c->now) {
				c->restart_at[i] = 0;
				cluster_restart(c, i);
			}
		stopped_restart(c);
		/* clients come back to a node that just restarted */
		for (i = 0; i < c->n && storm; i++)
			if (c->nodes[i].node &&
			    c->nodes[i].restarted_at > last && sim_rand(c) % 2)
				for (int k = (int)sim_rand_range(c, 1, 16);
				     k--;)
					cluster_read(any_group(c), i, NULL);
		last = c->now;
		if (c->now >= spell_end) {
			storm = !storm;
			c->xfaults = storm;
			spell_end = c->now + sim_rand_range(c, 200, 1000);
			sim_trace_proc(c, -1, "%s until %" PRIu64,
				       storm ? "STORM" : "CALM", spell_end);
			if (!storm) {
				cluster_heal(c);
				c->netp->loss = c->netp->dup = 0;
				c->netp->delay_min = 1;
				c->netp->delay_max = 5;
			}
		}
		r = sim_rand(c) % 1000;
		i = (int)(sim_rand(c) % (uint64_t)c->n);
		/* leaders are the interesting victims: half the faults that
		 * hit one node hit the leader (of some group) */
		lc = any_group(c);
		if (sim_rand(c) % 2 && cluster_leader(lc) >= 0)
			i = cluster_leader(lc);
		if (r < 550 || !storm) {
			if (r < 700)
				propose_groups(c);
		} else if (r < 700) {
			fault_network(c);
		} else if (r < 740) {
			if (c->nodes[i].node) {
				cluster_crash(c, i);
				/* half reboot at once, half stay down */
				c->restart_at[i] =
					c->now +
					(sim_rand(c) % 2
						 ? sim_rand_range(c, 1, 30)
						 : sim_rand_range(c, 30, 1500));
			}
		} else if (r < 780) {
			cluster_pause(c, i, sim_rand_range(c, 10, 400));
		} else if (r < 800) {
			if (!c->nodes[i].node) {
				c->restart_at[i] = 0;
				cluster_restart(c, i);
			}
		} else if (r < 815) {
			fault_store(any_group(c), i);
		} else if (r < 830 && !c->world) {
			/* one group's records lost in a shared WAL: not
			 * modelled (docs/testing.md) */
			fault_corrupt(c, i);
		}
		/* reads on every seed: the history lincheck.c checks */
		if (!dyn && sim_rand(c) % 20 == 0) {
			struct cluster *rc = any_group(c);
			int ld = cluster_leader(rc);

			cluster_read(rc,
				     ld >= 0 && sim_rand(c) % 2
					     ? ld
					     : (int)(sim_rand(c) % c->n),
				     NULL);
		}
		if (dyn && !c->failed) {
			int k = c->world ? (int)(sim_rand(c) %
						 (uint64_t)ngroups(c))
					 : 0;

			churn_act(grp(c, k), &ch[k]);
		}
	}
	free(ch);
}

/*
 * Every member serves a read (issued again when one fails): 1 once each
 * has.  Issued after convergence, each must see every acknowledged write.
 */
static int reads_served(struct cluster *c, uint64_t *rid, char *why, size_t cap)
{
	uint32_t members = cluster_members(c);
	int all = 1;

	for (int i = 0; i < c->n; i++) {
		const struct sim_read *rd = rid[i] ? &c->reads[rid[i] - 1]
						   : NULL;

		if (!(members >> i & 1) || (rd && rd->state == READ_OK))
			continue;
		if (!rd || rd->state != READ_PENDING)
			cluster_read(c, i, &rid[i]);
		if (all)
			snprintf(why, cap, "n%d serves no read", i + 1);
		all = 0;
	}
	return all;
}

/*
 * Snapshot-taking is live: every member asked to snapshot
 * (sr_node_snapshot) must eventually start one.  SR_ESTATE (nothing new
 * applied since the last one) counts as done; SR_EBUSY is fine for a
 * while (one being taken or installed) but not for good.  1 once all have.
 */
static int snapshots_taken(struct cluster *c, uint8_t *done, char *why,
			   size_t cap)
{
	uint32_t members = cluster_members(c);
	int all = 1;

	if (!c->o.snapshot_threshold)
		return 1;
	for (int i = 0; i < c->n; i++) {
		struct sim_node *sn = &c->nodes[i];
		int rv;

		if (!(members >> i & 1) || done[i] || !sn->node)
			continue;
		sim_host_tick(c, sn);
		rv = sr_node_snapshot(sn->node);
		sim_trace(c, i, "snapshot asked: %s",
			  rv ? sr_strerror(rv) : "ok");
		check_step(c);
		if (rv == 0 || rv == SR_ESTATE) {
			done[i] = 1;
			continue;
		}
		if (all)
			snprintf(why, cap, "n%d cannot take a snapshot: %s",
				 i + 1, sr_strerror(rv));
		all = 0;
	}
	return all;
}

/* A group's progress in the liveness phase. */
struct live {
	uint64_t barrier, barrier_at;
	uint64_t rid[SIM_MAX_NODES];
	uint8_t snapped[SIM_MAX_NODES];
	int done;
	char why[200];
};

/* One round of the liveness phase on group c: 1 once it is done. */
static int live_round(struct cluster *c, struct live *lv)
{
	const struct sim_prop *b = lv->barrier ? &c->props[lv->barrier - 1]
					       : NULL;
	int ld = cluster_leader(c);

	if (b && b->state == PROP_ACKED) {
		if (check_converged(c, lv->why, sizeof(lv->why)) &&
		    reads_served(c, lv->rid, lv->why, sizeof(lv->why)) &&
		    snapshots_taken(c, lv->snapped, lv->why, sizeof(lv->why)))
			return 1;
	} else if (ld >= 0 && (!b || b->state != PROP_PENDING ||
			       c->now >= lv->barrier_at + 500)) {
		/* a barrier lost with its leader may stay pending
		 * until the engine learns its fate: propose anew */
		uint64_t pid;

		if (cluster_propose(c, ld, 8, &pid) == 0) {
			lv->barrier = pid;
			lv->barrier_at = c->now;
		}
		/* proposing may move c->props: b pointed into it */
		b = lv->barrier ? &c->props[lv->barrier - 1] : NULL;
	}
	if (ld < 0)
		snprintf(lv->why, sizeof(lv->why), "no leader");
	else if (!b || b->state != PROP_ACKED)
		snprintf(lv->why, sizeof(lv->why),
			 "leader n%d cannot commit a new entry", ld + 1);
	return 0;
}

/* Heal everything; in every group a new entry must commit, everything
 * acknowledged must be applied on every member, every member must serve
 * a read and take a snapshot when asked. */
static void liveness_phase(struct cluster *c, struct run *r)
{
	uint64_t end = c->now + LIVENESS_BOUND_MS;
	int G = ngroups(c), left = G;
	struct live *lv = calloc((size_t)G, sizeof(*lv));

	if (!lv)
		abort(); /* test harness: out of memory is fatal */
	for (int k = 0; k < G; k++) {
		struct cluster *g = grp(c, k);

		snprintf(lv[k].why, sizeof(lv[k].why), "no leader");
		g->xfaults = 0;
		memset(g->crash_at, 0, sizeof(g->crash_at));
		memset(g->restart_at, 0, sizeof(g->restart_at));
		cluster_release_parked(g);
		for (int i = 0; i < c->n; i++)
			g->nodes[i].paused_until = 0;
	}
	cluster_heal(c);
	c->netp->loss = c->netp->dup = 0;
	c->netp->delay_min = 1;
	c->netp->delay_max = 3;
	for (int i = 0; i < c->n; i++)
		cluster_restart(c, i);
	sim_trace_proc(c, -1, "LIVENESS phase: all faults healed");
	while (!c->failed && c->now < end) {
		/* an error injected before the heal may still stop one */
		stopped_restart(c);
		for (int i = 0; i < c->n; i++)
			if (c->restart_at[i]) {
				c->restart_at[i] = 0;
				cluster_restart(c, i);
			}
		for (int k = 0; k < G && !c->failed; k++)
			if (!lv[k].done && live_round(grp(c, k), &lv[k])) {
				lv[k].done = 1;
				left--;
			}
		if (!left) {
			free(lv);
			return;
		}
		cluster_run_for(c, 20);
	}
	for (int k = 0; k < G && !c->failed; k++)
		if (!lv[k].done) {
			char g[40] = "";

			if (c->world)
				snprintf(g, sizeof(g), "group %d (id %u): ", k,
					 grp(c, k)->o.group);
			snprintf(r->why, sizeof(r->why),
				 "%sliveness: not converged %d ms after "
				 "healing: %s",
				 g, LIVENESS_BOUND_MS, lv[k].why);
			break;
		}
	free(lv);
}

/* Add group g's counters to r's (the process-wide ones from group 0). */
static void collect(struct run *r, struct cluster *g)
{
	r->steps += g->steps;
	r->acked += cluster_acked(g);
	r->leaders += g->chk.n_leaders;
	r->msgs += g->n_sent;
	r->snaps += g->n_snapshots;
	r->restores += g->n_restores;
	r->reads += g->n_reads_ok;
	r->confs += g->n_conf_ok;
	r->joints += g->n_joint;
	r->transfers += g->n_transfers;
	r->lin_ops += g->n_lin_ops;
	r->lin_giveup += g->n_lin_giveup;
	r->parked += g->n_parked_total;
	r->bias_crashes += g->n_bias_crashes;
	r->io_errors += g->n_io_errors;
	if (g->group_index == 0) {
		r->crashes = g->n_crashes;
		r->sim_ms = g->now;
		r->stops = g->n_stops;
		r->corruptions = g->n_corruptions;
	}
}

/* One seed; 0 if every check held. */
static int run_seed(struct run *r)
{
	struct cluster one, *c = &one;
	struct sim_world *w = NULL;
	struct sim_opts o;
	int rv;

	r->why[0] = 0;
	pick_opts(r, &o);
	if (r->groups > 1) {
		w = malloc(sizeof(*w));
		if (!w)
			abort(); /* test harness: out of memory is fatal */
		rv = world_init(w, &o, r->groups, r->bug);
		if (rv) {
			snprintf(r->why, sizeof(r->why), "init failed: %s",
				 sr_strerror(rv));
			world_free(w);
			free(w);
			return 1;
		}
		c = w->g[0];
		for (int k = 0; k < w->n_groups; k++) {
			w->g[k]->trace = r->trace;
			w->g[k]->safety_only = r->safety_only;
		}
	} else {
		rv = cluster_init(c, &o);
		c->trace = r->trace;
		c->safety_only = r->safety_only;
	}
	if (r->ring)
		cluster_keep_ring(c, r->ring);
	if (r->trace) {
		char d[256];

		describe_opts(&o, d, sizeof(d));
		sim_trace(c, -1, "seed %" PRIu64 ": %s", r->seed, d);
		if (w)
			sim_trace(c, -1, "%d groups per process%s", r->groups,
				  r->bug ? ", with an injected bug" : "");
	}
	if (rv == 0)
		rv = w ? world_start(w) : cluster_start(c);
	if (rv && !c->failed)
		snprintf(r->why, sizeof(r->why), "start failed: %s",
			 sr_strerror(rv));
	if (!r->why[0]) {
		fault_phase(c, r->duration, r->dyn, r->churn == 2);
		if (!c->failed)
			liveness_phase(c, r);
		for (int k = 0; k < ngroups(c) && !c->failed && !r->why[0]; k++)
			check_linearizable(grp(c, k));
	}
	if (c->failed)
		snprintf(r->why, sizeof(r->why), "%s", c->why);
	r->steps = r->acked = r->leaders = r->msgs = r->snaps = 0;
	r->restores = r->reads = r->confs = r->transfers = r->lin_ops = 0;
	r->joints = 0;
	r->lin_giveup = r->parked = r->bias_crashes = r->io_errors = 0;
	for (int k = 0; k < ngroups(c); k++)
		collect(r, grp(c, k));
	if (w) {
		r->batches = w->n_batches;
		r->multi_batches = w->n_multi_batches;
		r->wal_lost = w->n_crash_lost;
		r->wal_kept = w->n_crash_kept;
		r->misrouted = w->n_misrouted;
	}
	if (r->why[0] && r->ring) {
		sim_trace(c, -1, "FAILED: %s", r->why);
		cluster_dump_ring(c, stdout);
	}
	if (w) {
		world_free(w);
		free(w);
	} else {
		cluster_free(c);
	}
	return r->why[0] ? 1 : 0;
}

static void usage(const char *prog)
{
	fprintf(stderr,
		"usage: %s [--seeds N] [--from S] [--seed S] [--trace]\n"
		"          [--duration MS] [--nodes N] [--prevote 0|1]\n"
		"          [--checkquorum 0|1] [--churn 0|1] [--ticks "
		"event|deadline]\n"
		"          [--safety-only] [--verbose]\n"
		"          [--groups G [--bug misroute|early-ack|split]]\n"
		"          [--max-fail N]\n",
		prog);
	exit(2);
}

struct args {
	uint64_t from, count;
	uint64_t max_fail; /* stop after this many failing seeds (0: never) */
	int trace, verbose;
	const char *prog;
	struct run base;
};

static void parse_args(int argc, char **argv, struct args *a)
{
	int have_one = 0;
	uint64_t one = 0;

	memset(a, 0, sizeof(*a));
	a->prog = argv[0];
	a->from = 1;
	a->count = 500;
	a->base.duration = 5000;
	a->base.pre_vote = -1;
	a->base.check_quorum = -1;
	a->base.tick_on_event = -1;
	a->base.churn = -1;
	a->base.groups = 1;
	for (int i = 1; i < argc; i++) {
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(o, "--trace"))
			a->trace = 1;
		else if (!strcmp(o, "--verbose"))
			a->verbose = 1;
		else if (!strcmp(o, "--safety-only"))
			a->base.safety_only = 1;
		else if (!v)
			usage(argv[0]);
		else if (!strcmp(o, "--ticks"))
			a->base.tick_on_event = !strcmp(v, "event");
		else if (!strcmp(o, "--seeds"))
			a->count = strtoull(v, NULL, 0);
		else if (!strcmp(o, "--from"))
			a->from = strtoull(v, NULL, 0);
		else if (!strcmp(o, "--seed"))
			one = strtoull(v, NULL, 0), have_one = 1;
		else if (!strcmp(o, "--duration"))
			a->base.duration = strtoull(v, NULL, 0);
		else if (!strcmp(o, "--nodes"))
			a->base.nodes = atoi(v);
		else if (!strcmp(o, "--prevote"))
			a->base.pre_vote = atoi(v);
		else if (!strcmp(o, "--checkquorum"))
			a->base.check_quorum = atoi(v);
		else if (!strcmp(o, "--churn"))
			a->base.churn = atoi(v);
		else if (!strcmp(o, "--max-fail"))
			a->max_fail = strtoull(v, NULL, 0);
		else if (!strcmp(o, "--groups"))
			a->base.groups = atoi(v);
		else if (!strcmp(o, "--bug"))
			a->base.bug = !strcmp(v, "misroute") ? SIM_BUG_MISROUTE
				      : !strcmp(v, "early-ack")
					      ? SIM_BUG_EARLY_ACK
				      : !strcmp(v, "split") ? SIM_BUG_SPLIT
							    : -1;
		else
			usage(argv[0]);
		if (strcmp(o, "--trace") && strcmp(o, "--verbose") &&
		    strcmp(o, "--safety-only"))
			i++;
	}
	if (a->base.nodes < 0 || a->base.nodes > SIM_MAX_NODES ||
	    a->base.groups < 1 || a->base.groups > SIM_MAX_GROUPS ||
	    a->base.bug < 0 || (a->base.bug && a->base.groups < 2))
		usage(argv[0]);
	if (have_one) {
		a->from = one;
		a->count = 1;
		a->verbose = 1;
	}
}

/* A failing seed: its reason, its last events, how to replay it. */
static void report_failure(const struct args *a, const struct run *r)
{
	const struct run *b = &a->base;

	printf("FAIL seed %" PRIu64 ": %s\n", r->seed, r->why);
	if (!a->trace) {
		/* replay with a ring of the last trace lines */
		struct run again = *b;

		again.seed = r->seed;
		again.ring = 40;
		printf("  last events:\n");
		run_seed(&again);
	}
	printf("  replay: %s --seed %" PRIu64 " --trace", a->prog, r->seed);
	if (b->nodes)
		printf(" --nodes %d", b->nodes);
	if (b->pre_vote >= 0)
		printf(" --prevote %d", b->pre_vote);
	if (b->check_quorum >= 0)
		printf(" --checkquorum %d", b->check_quorum);
	if (b->churn >= 0)
		printf(" --churn %d", b->churn);
	if (b->safety_only)
		printf(" --safety-only");
	if (b->tick_on_event >= 0)
		printf(" --ticks %s", b->tick_on_event ? "event" : "deadline");
	if (b->duration != 5000)
		printf(" --duration %" PRIu64, b->duration);
	if (b->groups > 1)
		printf(" --groups %d", b->groups);
	if (b->bug)
		printf(" --bug %s", b->bug == SIM_BUG_MISROUTE	  ? "misroute"
				    : b->bug == SIM_BUG_EARLY_ACK ? "early-ack"
								  : "split");
	printf("\n");
	fflush(stdout);
}

/* Totals over the seeds run. */
static void print_totals(const struct run *t, uint64_t dyn_seeds)
{
	printf("totals: %" PRIu64 " steps, %" PRIu64 " proposals "
	       "acknowledged, %" PRIu64 " leaders elected, %" PRIu64
	       " crashes, %" PRIu64 " snapshots taken, %" PRIu64 " restored\n",
	       t->steps, t->acked, t->leaders, t->crashes, t->snaps,
	       t->restores);
	printf("churn on %" PRIu64 " seeds: %" PRIu64 " membership changes "
	       "(%" PRIu64 " joint), %" PRIu64 " leadership transfers started; "
	       "%" PRIu64 " reads served on all seeds\n",
	       dyn_seeds, t->confs, t->joints, t->transfers, t->reads);
	printf("linearizability: %" PRIu64 " operations checked per key, "
	       "%" PRIu64 " keys decided by the zone test alone (search "
	       "budget exhausted)\n",
	       t->lin_ops, t->lin_giveup);
	printf("extra faults: %" PRIu64 " messages parked, %" PRIu64
	       " crashes right after a durability point, %" PRIu64
	       " store errors injected, %" PRIu64 " nodes stopped by one, "
	       "%" PRIu64 " disks corrupted (durable entries lost)\n",
	       t->parked, t->bias_crashes, t->io_errors, t->stops,
	       t->corruptions);
}

int main(int argc, char **argv)
{
	struct args a;
	struct run tot = { 0 };
	uint64_t dyn_seeds = 0, ran = 0;
	int passed = 0, failed = 0;

	parse_args(argc, argv, &a);
	for (uint64_t s = a.from; s < a.from + a.count; s++) {
		struct run r = a.base;
		int bad;

		if (a.max_fail && (uint64_t)failed >= a.max_fail)
			break;
		r.seed = s;
		r.trace = a.trace ? stdout : NULL;
		bad = run_seed(&r);
		ran++;
		tot.steps += r.steps;
		tot.acked += r.acked;
		tot.leaders += r.leaders;
		tot.crashes += r.crashes;
		tot.snaps += r.snaps;
		tot.restores += r.restores;
		tot.reads += r.reads;
		tot.confs += r.confs;
		tot.joints += r.joints;
		tot.transfers += r.transfers;
		tot.lin_ops += r.lin_ops;
		tot.lin_giveup += r.lin_giveup;
		tot.parked += r.parked;
		tot.bias_crashes += r.bias_crashes;
		tot.io_errors += r.io_errors;
		tot.corruptions += r.corruptions;
		tot.stops += r.stops;
		tot.batches += r.batches;
		tot.multi_batches += r.multi_batches;
		tot.wal_lost += r.wal_lost;
		tot.wal_kept += r.wal_kept;
		tot.misrouted += r.misrouted;
		dyn_seeds += r.dyn != 0;
		if (bad) {
			failed++;
			report_failure(&a, &r);
		} else {
			passed++;
			if (a.verbose)
				printf("seed %" PRIu64 ": ok (%" PRIu64
				       " steps, %" PRIu64 " messages, %" PRIu64
				       " acknowledged, %" PRIu64 " leaders, "
				       "%" PRIu64 " crashes, %" PRIu64
				       " changes, %" PRIu64 " transfers, "
				       "%" PRIu64 " reads)"
				       "\n",
				       s, r.steps, r.msgs, r.acked, r.leaders,
				       r.crashes, r.confs, r.transfers,
				       r.reads);
		}
	}
	print_totals(&tot, dyn_seeds);
	if (a.base.groups > 1)
		printf("groups: %d per process; shared WAL: %" PRIu64
		       " fsyncs, %" PRIu64 " of them for several groups; "
		       "crashes lost %" PRIu64 " unsynced records and kept "
		       "%" PRIu64 "; %" PRIu64 " messages misrouted\n",
		       a.base.groups, tot.batches, tot.multi_batches,
		       tot.wal_lost, tot.wal_kept, tot.misrouted);
	printf("ran %" PRIu64 " seeds (%" PRIu64 "..%" PRIu64 "): %d failed\n",
	       ran, a.from, a.from + ran - 1, failed);
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}

/*
 * faults_test.c — the engine under the faults a deployment sees, one
 * scenario at a time: nodes that rejoin, leaders that lose their quorum,
 * responses that arrive twice or out of order, flow control and
 * backpressure, slow and late disks, restarts, a store that lost
 * acknowledged entries (protocol-aware repair).  Each runs under the
 * simulator's checker (scenario.h).
 */
#include "scenario.h"

static struct cluster *trio(int pre_vote, int check_quorum)
{
	struct sim_opts o = sc_opts(3, 0);

	o.pre_vote = pre_vote;
	o.check_quorum = check_quorum;
	o.election_ms_of[0] = 50; /* n1 times out first and leads */
	return sc_new(&o);
}

/* Slot 0 alone with external peers, elected leader by their grants. */
static struct cluster *solo_leader(struct sim_opts *o)
{
	struct cluster *c = sc_new(o);

	CHECK(sc_run_until_role(c, 0, SR_PRECANDIDATE, 1000));
	for (int i = 1; i < o->n; i++) {
		sr_msg m = sc_vote_resp(i, 0, 2, 1, 1);
		cluster_inject(c, 0, &m);
	}
	for (int i = 1; i < o->n; i++) {
		sr_msg m = sc_vote_resp(i, 0, 2, 1, 0);
		cluster_inject(c, 0, &m);
	}
	CHECK_EQ(c->nodes[0].st.role, SR_LEADER);
	cluster_run_for(c, 5); /* the no-op reaches the leader's disk */
	return c;
}

static sr_msg ack(int from, sr_term term, sr_index index, uint64_t seq)
{
	sr_msg r = sc_msg(SR_MSG_APPEND_RESP, from, 0, term);

	r.u.append_resp.success = 1;
	r.u.append_resp.index = index;
	r.u.append_resp.hint_index = index;
	r.u.append_resp.seq = seq;
	return r;
}

static const sr_peer_status *peer(struct cluster *c, int slot)
{
	static sr_peer_status ps[SIM_MAX_NODES];
	size_t n = sr_node_peer_status(c->nodes[0].node, ps, SIM_MAX_NODES);

	for (size_t i = 0; i < n; i++)
		if (ps[i].id == (sr_id)slot + 1)
			return &ps[i];
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Disruption and quorum                                               */
/* ------------------------------------------------------------------ */

TEST(test_a_live_leader_keeps_its_followers)
{
	struct cluster *c = trio(0, 0);
	sr_term t;

	CHECK_EQ(cluster_wait_leader(c, 1000), 0);
	t = c->nodes[0].st.term;
	for (int i = 0; i < 50; i++) {
		sc_propose(c, 0);
		cluster_run_for(c, 100);
	}
	CHECK_EQ(cluster_leader(c), 0);
	CHECK_EQ(c->nodes[0].st.term, t);
	CHECK_EQ(c->nodes[1].st.term, t);
	CHECK_EQ(cluster_acked(c), 50);
	sc_free(c);
}

TEST(test_rejoining_node_disrupts_the_leader_without_prevote)
{
	struct cluster *c = trio(0, 0);
	sr_term t;

	CHECK_EQ(cluster_wait_leader(c, 1000), 0);
	t = c->nodes[0].st.term;
	cluster_isolate(c, 2);
	cluster_run_for(c, 1000);
	CHECK(c->nodes[2].st.term > t + 2); /* it campaigned, alone */
	cluster_heal(c);
	cluster_run_for(c, 1000);
	/* its higher term deposed the leader */
	CHECK(cluster_leader(c) >= 0);
	CHECK(c->nodes[cluster_leader(c)].st.term > t + 2);
	sc_free(c);
}

TEST(test_rejoining_node_does_not_disrupt_with_prevote)
{
	struct cluster *c = trio(1, 1);
	sr_term t;

	CHECK_EQ(cluster_wait_leader(c, 1000), 0);
	t = c->nodes[0].st.term;
	cluster_isolate(c, 2);
	cluster_run_for(c, 1000);
	CHECK_EQ(c->nodes[2].st.term, t); /* pre-votes change no term */
	cluster_heal(c);
	cluster_run_for(c, 1000);
	CHECK_EQ(cluster_leader(c), 0);
	CHECK_EQ(c->nodes[0].st.term, t);
	CHECK(sc_logs_equal(c, 0, 2));
	sc_free(c);
}

TEST(test_leader_steps_down_when_it_loses_its_quorum)
{
	for (int cq = 0; cq <= 1; cq++) {
		struct cluster *c = trio(1, cq);

		CHECK_EQ(cluster_wait_leader(c, 1000), 0);
		cluster_isolate(c, 0);
		cluster_run_for(c, 3 * c->o.election_ms);
		if (cq)
			CHECK(c->nodes[0].st.role != SR_LEADER);
		else /* without CheckQuorum it cannot know */
			CHECK_EQ(c->nodes[0].st.role, SR_LEADER);
		CHECK(cluster_propose(c, 0, 8, NULL) != 0 || !cq);
		sc_free(c);
	}
}

/* ------------------------------------------------------------------ */
/* Responses out of order, flow control, backpressure                  */
/* ------------------------------------------------------------------ */

TEST(test_reordered_and_duplicated_append_responses_are_harmless)
{
	struct sim_opts o = sc_opts(3, 2);
	struct cluster *c = solo_leader(&o);
	sr_index first = 0, last = 0;
	sr_msg r;

	for (int i = 0; i < 5; i++) {
		sc_propose(c, 0);
		if (!first)
			first = c->props[c->props_n - 1].index;
		last = c->props[c->props_n - 1].index;
	}
	cluster_run_for(c, 5);
	/* n2 answers newest first, each twice */
	for (sr_index i = last; i >= first - 1; i--) {
		r = ack(1, 2, i, 0);
		cluster_inject(c, 0, &r);
		cluster_inject(c, 0, &r);
	}
	CHECK_EQ(c->nodes[0].st.commit_index, last);
	CHECK_EQ(cluster_acked(c), 5);
	CHECK_EQ(peer(c, 1)->match, last);
	/* a late, stale rejection does not move next below match */
	r = sc_msg(SR_MSG_APPEND_RESP, 1, 0, 2);
	r.u.append_resp.index = first;
	r.u.append_resp.hint_index = 1;
	r.u.append_resp.hint_term = 1;
	cluster_inject(c, 0, &r);
	CHECK_EQ(peer(c, 1)->match, last);
	CHECK(peer(c, 1)->next > last);
	sc_free(c);
}

/* Held appends carrying entries to slot `to`; *first gets the oldest. */
static size_t held_entries(struct cluster *c, int to, long *first)
{
	size_t n = 0;

	*first = -1;
	for (size_t i = 0; i < c->held_n; i++) {
		const sr_msg *m = &c->held[i]->m;

		if (m->type == SR_MSG_APPEND && m->to == (sr_id)to + 1 &&
		    m->u.append.n_entries) {
			if (*first < 0)
				*first = (long)i;
			n++;
		}
	}
	return n;
}

/* Take held message k and answer it as n2 holding it all. */
static void answer(struct cluster *c, long k)
{
	struct sim_msg *sm = cluster_take_held(c, (size_t)k);
	const sr_msg_append *a = &sm->m.u.append;
	sr_msg r = ack(1, sm->m.term, a->prev_index + a->n_entries, a->seq);

	free(sm);
	cluster_inject(c, 0, &r);
}

TEST(test_appends_pause_at_the_inflight_limit_and_resume)
{
	struct sim_opts o = sc_opts(3, 2);
	struct cluster *c;
	long k;

	o.max_inflight_msgs = 2;
	o.max_msg_entries = 1;
	c = solo_leader(&o);
	CHECK_EQ(held_entries(c, 1, &k), 1); /* the no-op */
	answer(c, k); /* n2 holds it: the leader pipelines from now on */
	cluster_drop_held(c);
	for (int i = 0; i < 6; i++)
		sc_propose(c, 0);
	CHECK_EQ(held_entries(c, 1, &k), 2); /* paused at the limit */
	CHECK_EQ(peer(c, 1)->inflight_msgs, 2);
	cluster_run_for(c, 3 * c->o.heartbeat_ms);
	CHECK_EQ(held_entries(c, 1, &k), 2); /* heartbeats carry none */
	answer(c, k); /* one acknowledged: one more goes out */
	CHECK_EQ(held_entries(c, 1, &k), 2);
	CHECK(peer(c, 1)->inflight_msgs <= 2);
	for (int i = 0; i < 5; i++) { /* and so on to the end */
		CHECK(held_entries(c, 1, &k) >= 1);
		answer(c, k);
	}
	CHECK_EQ(held_entries(c, 1, &k), 0);
	CHECK_EQ(peer(c, 1)->match, c->nodes[0].st.last_index);
	sc_free(c);
}

TEST(test_proposals_beyond_the_uncommitted_limit_are_refused)
{
	struct sim_opts o = sc_opts(3, 2);
	struct cluster *c;
	int rv = 0, accepted = 0;

	o.max_uncommitted_bytes = 200;
	c = solo_leader(&o);
	for (int i = 0; i < 20 && rv == 0; i++) {
		rv = cluster_propose(c, 0, 40, NULL);
		accepted += rv == 0;
	}
	CHECK_EQ(rv, SR_EBUSY);
	CHECK(accepted >= 1 && accepted <= 5); /* 48 bytes each, 200 max */
	cluster_run_for(c, 5);
	{ /* once they commit, there is room again */
		sr_msg r = ack(1, 2, c->nodes[0].st.last_index, 0);
		cluster_inject(c, 0, &r);
	}
	CHECK_EQ(cluster_acked(c), (size_t)accepted);
	CHECK_EQ(cluster_propose(c, 0, 40, NULL), 0);
	sc_free(c);
}

TEST(test_proposal_on_a_follower_is_refused_and_names_the_leader)
{
	struct cluster *c = trio(1, 1);
	uint64_t pid;

	CHECK_EQ(cluster_wait_leader(c, 1000), 0);
	cluster_run_for(c, 50);
	CHECK_EQ(cluster_propose(c, 1, 8, &pid), SR_ENOTLEADER);
	CHECK_EQ(pid, 0);
	CHECK_EQ(c->nodes[1].st.leader, 1);
	cluster_run_for(c, 200); /* and done() never comes for it */
	CHECK_EQ(c->props[c->props_n - 1].state, PROP_FAILED);
	sc_free(c);
}

/* ------------------------------------------------------------------ */
/* Storage: slow, late, lost                                           */
/* ------------------------------------------------------------------ */

TEST(test_one_node_cluster_never_applies_before_its_disk_says_durable)
{
	struct sim_opts o = sc_opts(1, 0);
	struct cluster *c;
	uint64_t pid;
	sr_index idx;

	o.async_disk = 1;
	o.disk_min_ms = o.disk_max_ms = 50;
	c = sc_new(&o);
	CHECK_EQ(cluster_wait_leader(c, 1000), 0);
	cluster_run_for(c, 100); /* the no-op commits */
	pid = sc_propose(c, 0);
	idx = c->props[pid - 1].index;
	cluster_run_for(c, 45);
	CHECK(c->nodes[0].st.commit_index < idx);
	CHECK(c->nodes[0].st.applied_index < idx);
	CHECK_EQ(c->props[pid - 1].state, PROP_PENDING);
	cluster_run_for(c, 10);
	CHECK_EQ(c->nodes[0].st.applied_index, idx);
	CHECK_EQ(c->props[pid - 1].state, PROP_ACKED);
	/* and a crash before the disk answers loses it unacknowledged */
	pid = sc_propose(c, 0);
	cluster_run_for(c, 10);
	cluster_crash(c, 0);
	CHECK_EQ(c->props[pid - 1].state, PROP_UNKNOWN);
	CHECK_EQ(cluster_restart(c, 0), 0);
	cluster_run_for(c, 500);
	CHECK(c->nodes[0].st.applied_index >= idx);
	sc_free(c);
}

TEST(test_restarted_node_replays_and_applies_committed_entries)
{
	struct cluster *c = trio(1, 1);
	sr_index last;
	uint64_t before;

	CHECK_EQ(cluster_wait_leader(c, 1000), 0);
	for (int i = 0; i < 10; i++)
		sc_propose(c, 0);
	cluster_run_for(c, 200);
	last = c->props[9].index;
	CHECK(cluster_all_applied(c, last));
	before = c->nodes[2].n_applied;
	cluster_crash(c, 2);
	CHECK_EQ(cluster_restart(c, 2), 0);
	CHECK_EQ(c->nodes[2].st.applied_index, 0); /* a fresh state machine */
	cluster_run_for(c, 300);
	CHECK(c->nodes[2].st.applied_index >= last);
	CHECK_EQ(c->nodes[2].n_applied, before + 10); /* each once more */
	/* the leader itself, too */
	cluster_crash(c, 0);
	CHECK_EQ(cluster_restart(c, 0), 0);
	cluster_run_for(c, 1000);
	CHECK(cluster_all_applied(c, last));
	sc_free(c);
}

TEST(test_late_storage_completions_after_a_term_change)
{
	/* The leader's writes are still on their way to disk when a new
	 * leader overwrites them; their completions arrive afterwards and
	 * must not count as durability of the new entries. */
	struct sim_opts o = sc_opts(3, 2);
	struct cluster *c;
	sr_entry e = { .term = 3,
		       .index = 2,
		       .type = SR_ENTRY_NORMAL,
		       .len = 3,
		       .data = "new" };
	sr_msg m;
	uint64_t pid;

	o.async_disk = 1;
	o.disk_min_ms = o.disk_max_ms = 30;
	c = solo_leader(&o); /* term 2, no-op at 2 not yet durable */
	pid = sc_propose(c, 0);
	CHECK_EQ(c->props[pid - 1].index, 3);
	cluster_run_for(c, 1);
	m = sc_append(1, 0, 3, 1, 1, 1, &e, 1); /* n2 leads term 3 */
	cluster_inject(c, 0, &m);
	CHECK_EQ(c->nodes[0].st.role, SR_FOLLOWER);
	CHECK_EQ(sc_term_at(c, 0, 2), 3);
	cluster_run_for(c, 100); /* the old completions come in */
	/* the checker saw every acknowledgement: only durable entries */
	CHECK(sc_held(c, SR_MSG_APPEND_RESP, 1) >= 0);
	m = sc_append(1, 0, 3, 2, 3, 2, NULL, 0);
	cluster_inject(c, 0, &m);
	CHECK_EQ(c->nodes[0].st.commit_index, 2);
	CHECK(c->props[pid - 1].state == PROP_DROPPED ||
	      c->props[pid - 1].state == PROP_PENDING);
	sc_free(c);
}

TEST(test_out_of_order_disk_completions_still_commit)
{
	struct sim_opts o = sc_opts(3, 0);
	struct cluster *c;

	o.async_disk = 1;
	o.disk_min_ms = 0;
	o.disk_max_ms = 20;
	o.disk_reorder = 1;
	o.election_ms_of[0] = 50;
	c = sc_new(&o);
	CHECK_EQ(cluster_wait_leader(c, 1000), 0);
	for (int i = 0; i < 30; i++) {
		sc_propose(c, 0);
		cluster_run_for(c, 3);
	}
	cluster_run_for(c, 300);
	CHECK_EQ(cluster_acked(c), 30);
	CHECK(cluster_all_applied(c, c->props[29].index));
	sc_free(c);
}

TEST(test_restart_after_a_snapshot_whose_compaction_was_lost)
{
	/* n3 installs a leader's snapshot; the snapshot is durable at once,
	 * the compaction of its older log is not, and n3 crashes in
	 * between: it restarts with a log that stops below its snapshot and
	 * must still catch up. */
	struct sim_opts o = sc_opts(3, 0);
	struct cluster *c;
	sr_mem_info info;
	sr_index last;

	o.async_disk = 1;
	o.disk_min_ms = o.disk_max_ms = 2;
	o.snapshot_threshold = 5;
	o.snapshot_trailing = 0;
	o.election_ms_of[0] = 50;
	c = sc_new(&o);
	c->crash_drops_all = 1;
	CHECK_EQ(cluster_wait_leader(c, 1000), 0);
	for (int i = 0; i < 3; i++)
		sc_propose(c, 0);
	cluster_run_for(c, 100); /* n3 holds the first entries */
	cluster_isolate(c, 2);
	for (int i = 0; i < 20; i++) {
		sc_propose(c, 0);
		cluster_run_for(c, 5);
	}
	cluster_run_for(c, 100);
	last = c->props[c->props_n - 1].index;
	CHECK_EQ(cluster_acked(c), 23);
	cluster_heal(c);
	while (c->n_restores == 0)
		CHECK(cluster_step(c, c->now + 1000));
	sr_mem_get_info(c->nodes[2].mem, &info);
	CHECK(info.snapshot_index > 0);
	cluster_crash(c, 2); /* before the compaction reached the disk */
	sr_mem_get_info(c->nodes[2].mem, &info);
	CHECK(info.snapshot_index > 0);
	CHECK(info.first_index <= info.snapshot_index); /* the overlap */
	CHECK_EQ(cluster_restart(c, 2), 0);
	for (int i = 0; i < 3; i++) /* and replication goes on to n3 */
		sc_propose(c, 0);
	last = c->props[c->props_n - 1].index;
	cluster_run_for(c, 1000);
	CHECK(cluster_all_applied(c, last));
	sc_free(c);
}

TEST(test_storage_error_stops_the_node_without_acknowledging)
{
	struct sim_opts o = sc_opts(3, 2);
	struct cluster *c = solo_leader(&o);
	sr_mem_info info;

	CHECK_EQ(sr_mem_inject(c->nodes[0].mem, SR_MEM_FAIL_APPEND, SR_EIO), 0);
	CHECK(cluster_propose(c, 0, 8, NULL) != 0 ||
	      c->nodes[0].st.role == SR_STOPPED);
	cluster_run_for(c, 10);
	CHECK_EQ(c->nodes[0].st.role, SR_STOPPED);
	CHECK_EQ(c->nodes[0].st.error, SR_EIO);
	CHECK_EQ(cluster_propose(c, 0, 8, NULL), SR_ESHUTDOWN);
	sr_mem_get_info(c->nodes[0].mem, &info);
	CHECK_EQ(cluster_acked(c), 0);
	sc_free(c);
}

/* ------------------------------------------------------------------ */
/* Protocol-aware repair (lib/repair.c)                                */
/* ------------------------------------------------------------------ */

/* Is the last pre-vote answer slot 0 sent to `to` a grant? */
static int granted_to(struct cluster *c, int to)
{
	long k = sc_held(c, SR_MSG_VOTE_RESP, to);

	CHECK(k >= 0);
	return c->held[k]->m.u.vote_resp.granted;
}

/* Node 0 of three (pre-vote on) starts with term `term`, entries 2.. of
 * `terms`, and a store that lost entries up to lost_last (of terms at
 * most lost_term; 0: the store does not know). */
static struct cluster *start_repairing(sr_term term, const sr_term *terms,
				       size_t n, sr_index lost_last,
				       sr_term lost_term)
{
	struct sim_opts o = sc_opts(3, 2);
	struct cluster *c;

	o.pre_vote = 1;
	c = sc_make(&o);
	sc_preload(c, 0, term, terms, n);
	c->nodes[0].lost_last = lost_last;
	c->nodes[0].lost_term = lost_term;
	sc_start(c);
	return c;
}

/* Node 1, leader of term 3, sends entries 7.. (after 6/t2) to node 0: once
 * they are durable node 0 is repaired, and it campaigns again when the
 * leader goes quiet. */
static void repaired_by(struct cluster *c, sr_entry *e, size_t n)
{
	sr_msg m = sc_append(1, 0, 3, 6, 2, 0, e, n);

	cluster_inject(c, 0, &m);
	cluster_run_for(c, 50);
	CHECK_EQ(c->nodes[0].st.last_index, 6 + n);
	CHECK_EQ(c->nodes[0].st.repair_index, 0);
	CHECK(sc_run_until_role(c, 0, SR_PRECANDIDATE, 3000));
}

TEST(test_node_whose_store_lost_entries_votes_only_past_them_and_repairs)
{
	static const sr_term terms[] = { 2, 2, 2, 2, 2 }; /* entries 2..6 */
	sr_entry e[5];
	char data[5][16];
	struct cluster *c;
	sr_msg m;

	c = start_repairing(2, terms, 5, 10, 0); /* it had held up to 10 */
	CHECK_EQ(c->nodes[0].st.repair_index, 10);
	/* no leader for many election timeouts: it never campaigns */
	CHECK(!sc_run_until_role(c, 0, SR_PRECANDIDATE, 3000));
	CHECK_EQ(sc_held(c, SR_MSG_VOTE, -1), -1);
	/* its own log (6/t2) would grant 9/t2; what it lost would not */
	m = sc_vote(1, 0, 3, 9, 2, 1);
	cluster_inject(c, 0, &m);
	CHECK(!granted_to(c, 1));
	m = sc_vote(1, 0, 3, 10, 2, 1); /* as far as what it held */
	cluster_inject(c, 0, &m);
	CHECK(granted_to(c, 1));
	m = sc_vote(2, 0, 3, 7, 3, 1); /* a later last term */
	cluster_inject(c, 0, &m);
	CHECK(granted_to(c, 2));
	/* the leader of term 3 sends 7..11: once durable, repaired */
	for (int i = 0; i < 5; i++) {
		snprintf(data[i], sizeof(data[i]), "y%d", i + 7);
		e[i] = (sr_entry){ 3, (sr_index)i + 7, SR_ENTRY_NORMAL,
				   (uint32_t)strlen(data[i]), data[i] };
	}
	repaired_by(c, e, 5);
	sc_free(c);
}

/*
 * The bound on the lost entries' terms is the term of when the loss was
 * found, not of the restart: here the store lost 7..10 in term 2, and
 * failed elections since (it could not win one: it does not campaign)
 * raised its durable term to 9.  Judged against term 9 it would refuse
 * the only candidate that holds everything (10/t2); with the two other
 * voters split like that, no leader would ever be elected (simulator
 * seed 5497 with --churn 1 did so before sr_durable.lost_term).
 */
TEST(test_lost_entries_bound_by_the_term_of_the_loss_not_of_the_restart)
{
	static const sr_term terms[] = { 2, 2, 2, 2, 2 }; /* entries 2..6 */
	struct cluster *c;
	sr_msg m;

	c = start_repairing(9, terms, 5, 10, 2);
	CHECK_EQ(c->nodes[0].st.repair_index, 10);
	m = sc_vote(1, 0, 10, 10, 2, 1); /* holds what it lost */
	cluster_inject(c, 0, &m);
	CHECK(granted_to(c, 1));
	m = sc_vote(2, 0, 10, 9, 2, 1); /* does not */
	cluster_inject(c, 0, &m);
	CHECK(!granted_to(c, 2));
	sc_free(c);
}

/*
 * What a node lost and nobody else ever held was never committed: a
 * leader of a later term that overwrites those indexes ends the repair
 * although the log never reaches lost_last again.  Before, the node kept
 * waiting for 9..10 for ever; once the leader removed itself, the other
 * voter (log 8) could not get the vote of this one (log 8 too, or
 * longer) and this one did not campaign: no leader (simulator seed
 * 700417 with --churn 1).
 */
TEST(test_lost_entries_overwritten_by_a_later_leader_end_the_repair)
{
	static const sr_term terms[] = { 2, 2, 2, 2, 2 }; /* entries 2..6 */
	sr_entry e[2];
	struct cluster *c;

	c = start_repairing(2, terms, 5, 10, 2); /* 7..10, of term <= 2 */
	CHECK_EQ(c->nodes[0].st.repair_index, 10);
	/* the leader of term 3 holds only up to 8, of its own term */
	e[0] = (sr_entry){ 3, 7, SR_ENTRY_NORMAL, 2, "z7" };
	e[1] = (sr_entry){ 3, 8, SR_ENTRY_NORMAL, 2, "z8" };
	repaired_by(c, e, 2);
	sc_free(c);
}

/* The same found at a restart: the log already holds an entry of a term
 * above the lost ones'. */
TEST(test_restart_with_an_entry_above_the_lost_term_is_repaired)
{
	static const sr_term terms[] = { 2, 2, 2, 2, 2, 3, 3 }; /* 2..8 */
	struct cluster *c = start_repairing(3, terms, 7, 10, 2);

	cluster_run_for(c, 10);
	CHECK_EQ(c->nodes[0].st.repair_index, 0);
	CHECK(sc_run_until_role(c, 0, SR_PRECANDIDATE, 3000));
	sc_free(c);
}

/*
 * A vote request of an older term is denied with the voter's term
 * (Figure 2), not dropped: a candidate whose configuration no longer
 * holds the members that run ahead in terms hears the term from nobody
 * else, and would campaign one term behind the voter it needs for ever
 * (simulator seed 4613 with --churn 1).
 */
TEST(test_stale_vote_is_denied_with_the_newer_term)
{
	struct sim_opts o = sc_opts(3, 2);
	struct cluster *c;
	sr_msg m;
	long k;

	c = sc_make(&o);
	sc_preload(c, 0, 9, NULL, 0);
	sc_start(c);
	m = sc_vote(1, 0, 4, 10, 2, 0);
	cluster_inject(c, 0, &m);
	k = sc_held(c, SR_MSG_VOTE_RESP, 1);
	CHECK(k >= 0);
	CHECK(!c->held[k]->m.u.vote_resp.granted);
	CHECK(!c->held[k]->m.u.vote_resp.pre);
	CHECK_EQ(c->held[k]->m.term, 9);
	sc_free(c);
}

int main(int argc, char **argv)
{
	return test_main(argc, argv);
}

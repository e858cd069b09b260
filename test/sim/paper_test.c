/*
 * paper_test.c — the rules of the Raft paper (§5), scenario by scenario,
 * on the simulated cluster under the safety checker.
 *
 * Tests that check one node's reaction to a message run that node alone
 * with external peers: the test speaks for the peers (cluster_inject) and
 * reads what the node sent them (c->held).  Tests about a whole cluster
 * run real engines and steer them with per-node election timeouts and
 * network links.
 */
#include "scenario.h"

/* A solo node (slot 0) with n - 1 external peers. */
static struct cluster *solo(int n, int pre_vote, int check_quorum)
{
	struct sim_opts o = sc_opts(n, n - 1);

	o.pre_vote = pre_vote;
	o.check_quorum = check_quorum;
	return sc_new(&o);
}

/* Make slot 0 leader with grants from the external peers 1..votes. */
static void solo_elect(struct cluster *c, int votes)
{
	CHECK(sc_run_until_role(
		c, 0, c->o.pre_vote ? SR_PRECANDIDATE : SR_CANDIDATE, 1000));
	if (c->o.pre_vote) {
		sr_term t = c->nodes[0].st.term + 1;

		for (int i = 1; i <= votes; i++) {
			sr_msg m = sc_vote_resp(i, 0, t, 1, 1);
			cluster_inject(c, 0, &m);
		}
		CHECK_EQ(c->nodes[0].st.role, SR_CANDIDATE);
	}
	for (int i = 1; i <= votes; i++) {
		sr_msg m = sc_vote_resp(i, 0, c->nodes[0].st.term, 1, 0);
		cluster_inject(c, 0, &m);
	}
	CHECK_EQ(c->nodes[0].st.role, SR_LEADER);
	SC_OK(c);
}

/* Answer every held append to `from` as a follower holding it all. */
static void ack_appends(struct cluster *c, int from)
{
	long k;

	while ((k = sc_held(c, SR_MSG_APPEND, from)) >= 0) {
		struct sim_msg *sm = cluster_take_held(c, (size_t)k);
		const sr_msg_append *a = &sm->m.u.append;
		sr_index last = a->prev_index + a->n_entries;
		sr_msg r = sc_msg(SR_MSG_APPEND_RESP, from, 0, sm->m.term);

		r.u.append_resp.success = 1;
		r.u.append_resp.index = last;
		r.u.append_resp.hint_index = last;
		r.u.append_resp.seq = a->seq;
		cluster_inject(c, 0, &r);
		free(sm);
	}
}

/* ------------------------------------------------------------------ */
/* Elections (§5.2)                                                    */
/* ------------------------------------------------------------------ */

TEST(test_nodes_start_as_followers)
{
	struct sim_opts o = sc_opts(3, 0);
	struct cluster *c = sc_new(&o);

	for (int i = 0; i < 3; i++) {
		CHECK_EQ(c->nodes[i].st.role, SR_FOLLOWER);
		CHECK_EQ(c->nodes[i].st.term, 1);
		CHECK_EQ(c->nodes[i].st.leader, 0);
	}
	sc_free(c);
}

TEST(test_higher_term_from_any_message_is_adopted)
{
	static const uint32_t types[] = { SR_MSG_APPEND, SR_MSG_APPEND_RESP,
					  SR_MSG_VOTE, SR_MSG_VOTE_RESP };

	for (size_t k = 0; k < 4; k++) {
		struct cluster *c = solo(3, 0, 0);
		sr_msg m = sc_msg(types[k], 1, 0, 7);

		if (types[k] == SR_MSG_APPEND)
			m.u.append.prev_index = 1, m.u.append.prev_term = 1;
		if (types[k] == SR_MSG_VOTE)
			m.u.vote.last_index = 1, m.u.vote.last_term = 1;
		cluster_inject(c, 0, &m);
		CHECK_EQ(c->nodes[0].st.term, 7);
		CHECK_EQ(c->nodes[0].st.role, SR_FOLLOWER);
		CHECK_EQ(c->nodes[0].st.leader,
			 types[k] == SR_MSG_APPEND ? 2 : 0);
		sc_free(c);
	}
}

TEST(test_leader_steps_down_on_a_higher_term)
{
	struct cluster *c = solo(3, 1, 1);
	sr_term t;
	sr_msg m;

	solo_elect(c, 1);
	t = c->nodes[0].st.term;
	m = sc_msg(SR_MSG_APPEND_RESP, 2, 0, t + 3);
	cluster_inject(c, 0, &m);
	CHECK_EQ(c->nodes[0].st.role, SR_FOLLOWER);
	CHECK_EQ(c->nodes[0].st.term, t + 3);
	sc_free(c);
}

TEST(test_stale_term_messages_are_refused)
{
	struct cluster *c = solo(3, 0, 0);
	sr_msg m = sc_append(1, 0, 5, 1, 1, 0, NULL, 0);
	sr_entry e = { .term = 3, .index = 2, .type = SR_ENTRY_NORMAL };
	long k;

	cluster_inject(c, 0, &m); /* n2 leads term 5 */
	cluster_drop_held(c);
	m = sc_append(2, 0, 3, 1, 1, 0, &e, 1); /* a deposed leader */
	cluster_inject(c, 0, &m);
	CHECK_EQ(sc_last(c, 0), 1); /* nothing appended */
	CHECK_EQ(c->nodes[0].st.leader, 2);
	k = sc_held(c, SR_MSG_APPEND_RESP, 2);
	CHECK(k >= 0); /* told about term 5 */
	CHECK_EQ(c->held[k]->m.term, 5);
	CHECK_EQ(c->held[k]->m.u.append_resp.success, 0);
	m = sc_vote(2, 0, 4, 9, 4, 0); /* a stale candidate */
	cluster_inject(c, 0, &m);
	CHECK(sc_held(c, SR_MSG_VOTE_RESP, 2) < 0 ||
	      !c->held[sc_held(c, SR_MSG_VOTE_RESP, 2)]->m.u.vote_resp.granted);
	CHECK_EQ(c->nodes[0].st.vote, 0);
	CHECK_EQ(c->nodes[0].st.term, 5);
	sc_free(c);
}

TEST(test_follower_campaigns_on_election_timeout)
{
	struct cluster *c = solo(3, 0, 0);
	sr_mem_info info;

	CHECK(sc_run_until_role(c, 0, SR_CANDIDATE, 1000));
	CHECK_EQ(c->nodes[0].st.term, 2);
	sr_mem_get_info(c->nodes[0].mem, &info);
	CHECK_EQ(info.term, 2);
	CHECK_EQ(info.vote, 1); /* durable vote for itself */
	for (int to = 1; to <= 2; to++) {
		long k = sc_held(c, SR_MSG_VOTE, to);

		CHECK(k >= 0);
		CHECK_EQ(c->held[k]->m.term, 2);
		CHECK_EQ(c->held[k]->m.u.vote.pre, 0);
		CHECK_EQ(c->held[k]->m.u.vote.last_index, 1);
		CHECK_EQ(c->held[k]->m.u.vote.last_term, 1);
	}
	sc_free(c);
}

TEST(test_precandidate_keeps_its_term)
{
	struct cluster *c = solo(3, 1, 1);
	long k;

	CHECK(sc_run_until_role(c, 0, SR_PRECANDIDATE, 1000));
	CHECK_EQ(c->nodes[0].st.term, 1);
	k = sc_held(c, SR_MSG_VOTE, 1);
	CHECK(k >= 0);
	CHECK_EQ(c->held[k]->m.u.vote.pre, 1);
	CHECK_EQ(c->held[k]->m.term, 2);
	sc_free(c);
}

TEST(test_candidate_wins_with_a_majority_only)
{
	struct cluster *c = solo(5, 0, 0);
	sr_msg m;

	CHECK(sc_run_until_role(c, 0, SR_CANDIDATE, 1000));
	m = sc_vote_resp(1, 0, 2, 1, 0);
	cluster_inject(c, 0, &m);
	cluster_inject(c, 0, &m); /* a duplicate counts once */
	CHECK_EQ(c->nodes[0].st.role, SR_CANDIDATE);
	m = sc_vote_resp(2, 0, 2, 1, 0);
	cluster_inject(c, 0, &m);
	CHECK_EQ(c->nodes[0].st.role, SR_LEADER);
	for (int to = 1; to < 5; to++) /* announces itself to everyone */
		CHECK(sc_held(c, SR_MSG_APPEND, to) >= 0);
	sc_free(c);
}

TEST(test_candidate_loses_on_a_majority_of_rejections)
{
	struct cluster *c = solo(5, 0, 0);

	CHECK(sc_run_until_role(c, 0, SR_CANDIDATE, 1000));
	for (int i = 1; i <= 3; i++) {
		sr_msg m = sc_vote_resp(i, 0, 2, 0, 0);
		CHECK_EQ(c->nodes[0].st.role, SR_CANDIDATE);
		cluster_inject(c, 0, &m);
	}
	CHECK_EQ(c->nodes[0].st.role, SR_FOLLOWER);
	CHECK_EQ(c->nodes[0].st.term, 2);
	sc_free(c);
}

TEST(test_split_vote_leads_to_a_new_election)
{
	struct cluster *c = solo(4, 0, 0);
	sr_msg m;

	CHECK(sc_run_until_role(c, 0, SR_CANDIDATE, 1000));
	m = sc_vote_resp(1, 0, 2, 1, 0);
	cluster_inject(c, 0, &m);
	m = sc_vote_resp(2, 0, 2, 0, 0);
	cluster_inject(c, 0, &m);
	m = sc_vote_resp(3, 0, 2, 0, 0);
	cluster_inject(c, 0, &m); /* 2 for, 2 against in 4 */
	CHECK_EQ(c->nodes[0].st.role, SR_CANDIDATE);
	cluster_drop_held(c);
	cluster_run_for(c, 2 * c->o.election_ms); /* times out again */
	CHECK_EQ(c->nodes[0].st.role, SR_CANDIDATE);
	CHECK_EQ(c->nodes[0].st.term, 3);
	CHECK(sc_held(c, SR_MSG_VOTE, 1) >= 0);
	sc_free(c);
}

TEST(test_one_vote_per_term_first_come_first_served)
{
	struct cluster *c = solo(3, 0, 0);
	sr_msg m = sc_vote(1, 0, 2, 1, 1, 0);
	long k;

	cluster_inject(c, 0, &m);
	k = sc_held(c, SR_MSG_VOTE_RESP, 1);
	CHECK(k >= 0 && c->held[k]->m.u.vote_resp.granted);
	m = sc_vote(2, 0, 2, 5, 1, 0); /* a better log, but too late */
	cluster_inject(c, 0, &m);
	k = sc_held(c, SR_MSG_VOTE_RESP, 2);
	CHECK(k >= 0 && !c->held[k]->m.u.vote_resp.granted);
	cluster_drop_held(c);
	m = sc_vote(1, 0, 2, 1, 1, 0); /* the same candidate asks again */
	cluster_inject(c, 0, &m);
	k = sc_held(c, SR_MSG_VOTE_RESP, 1);
	CHECK(k >= 0 && c->held[k]->m.u.vote_resp.granted);
	CHECK_EQ(c->nodes[0].st.vote, 2);
	sc_free(c);
}

TEST(test_vote_is_denied_to_a_candidate_with_an_older_log)
{
	struct sim_opts o = sc_opts(3, 2);
	static const sr_term terms[] = { 2, 2 }; /* log: 1/t1 2/t2 3/t2 */
	struct cluster *c;
	sr_msg m;
	long k;

	o.pre_vote = 0;
	o.check_quorum = 0;
	c = sc_make(&o);
	sc_preload(c, 0, 2, terms, 2);
	sc_start(c);
	m = sc_vote(1, 0, 3, 9, 1, 0); /* longer, but older last term */
	cluster_inject(c, 0, &m);
	k = sc_held(c, SR_MSG_VOTE_RESP, 1);
	CHECK(k >= 0 && !c->held[k]->m.u.vote_resp.granted);
	m = sc_vote(2, 0, 3, 2, 2, 0); /* same last term, shorter */
	cluster_inject(c, 0, &m);
	k = sc_held(c, SR_MSG_VOTE_RESP, 2);
	CHECK(k >= 0 && !c->held[k]->m.u.vote_resp.granted);
	CHECK_EQ(c->nodes[0].st.vote, 0);
	cluster_drop_held(c);
	m = sc_vote(1, 0, 3, 3, 2, 0); /* as up to date */
	cluster_inject(c, 0, &m);
	k = sc_held(c, SR_MSG_VOTE_RESP, 1);
	CHECK(k >= 0 && c->held[k]->m.u.vote_resp.granted);
	sc_free(c);
}

TEST(test_candidate_falls_back_on_an_append_of_its_term)
{
	for (int higher = 0; higher <= 1; higher++) {
		struct cluster *c = solo(3, 0, 0);
		sr_msg m;

		CHECK(sc_run_until_role(c, 0, SR_CANDIDATE, 1000));
		m = sc_append(1, 0, 2 + (sr_term)higher, 1, 1, 0, NULL, 0);
		cluster_inject(c, 0, &m);
		CHECK_EQ(c->nodes[0].st.role, SR_FOLLOWER);
		CHECK_EQ(c->nodes[0].st.leader, 2);
		CHECK_EQ(c->nodes[0].st.term, 2 + (sr_term)higher);
		sc_free(c);
	}
}

TEST(test_election_timeouts_spread_over_T_to_2T)
{
	int seen[100] = { 0 }, distinct = 0;

	for (uint64_t seed = 1; seed <= 60; seed++) {
		struct sim_opts o = sc_opts(3, 2);
		struct cluster *c;
		uint64_t t;

		o.seed = seed;
		o.pre_vote = 0;
		c = sc_new(&o);
		CHECK(sc_run_until_role(c, 0, SR_CANDIDATE, 1000));
		t = c->now;
		CHECK(t >= o.election_ms && t < 2 * o.election_ms);
		if (!seen[t - o.election_ms]++)
			distinct++;
		sc_free(c);
	}
	CHECK(distinct >= 30); /* 60 draws over 100 values */
}

TEST(test_leader_sends_heartbeats_on_its_tick)
{
	struct cluster *c = solo(3, 1, 1);

	solo_elect(c, 2);
	ack_appends(c, 1);
	ack_appends(c, 2);
	cluster_drop_held(c);
	cluster_run_for(c, c->o.heartbeat_ms);
	for (int to = 1; to <= 2; to++) {
		long k = sc_held(c, SR_MSG_APPEND, to);
		CHECK(k >= 0);
		CHECK_EQ(c->held[k]->m.u.append.n_entries, 0);
	}
	sc_free(c);
}

/* A 3-node cluster where slot 0 times out first and wins. */
static struct cluster *trio(int pre_vote, int check_quorum)
{
	struct sim_opts o = sc_opts(3, 0);

	o.pre_vote = pre_vote;
	o.check_quorum = check_quorum;
	o.election_ms_of[1] = o.election_ms_of[2] = 300;
	return sc_new(&o);
}

TEST(test_dueling_candidates_the_shorter_log_cannot_win)
{
	/* n1 leads with n2 while n3 is cut off from n1; then n1 goes away.
	 * n3 times out first and campaigns again and again, but n2 holds
	 * an entry n3 lacks: the first new leader must be n2. */
	struct sim_opts o = sc_opts(3, 0);
	struct cluster *c;
	sr_term t3;
	uint64_t end;
	int ld;

	o.pre_vote = 0;
	o.check_quorum = 0;
	o.election_ms_of[0] = 50; /* n1 leads first */
	c = sc_new(&o);
	cluster_set_link(c, 0, 2, 0);
	cluster_set_link(c, 2, 0, 0);
	CHECK_EQ(cluster_wait_leader(c, 1000), 0);
	sc_propose(c, 0);
	cluster_run_for(c, 50);
	CHECK_EQ(cluster_acked(c), 1);
	CHECK(sc_last(c, 2) < sc_last(c, 0));
	t3 = c->nodes[2].st.term;
	cluster_isolate(c, 0);
	cluster_set_link(c, 1, 2, 1);
	cluster_set_link(c, 2, 1, 1);
	end = c->now + 5000;
	while ((ld = cluster_leader(c)) < 0 || ld == 0)
		CHECK(cluster_step(c, end));
	CHECK_EQ(ld, 1);
	CHECK(c->nodes[2].st.term > t3); /* n3 did campaign, and lost */
	cluster_heal(c);
	cluster_run_for(c, 1000);
	CHECK(sc_logs_equal(c, 0, 2));
	CHECK(sc_logs_equal(c, 1, 2));
	sc_free(c);
}

TEST(test_isolated_candidate_concedes_and_adopts_the_leaders_log)
{
	struct cluster *c = trio(0, 0);
	sr_term t;

	CHECK_EQ(cluster_wait_leader(c, 1000), 0);
	cluster_isolate(c, 2);
	for (int i = 0; i < 5; i++)
		sc_propose(c, 0);
	cluster_run_for(c, 1500); /* n3 campaigns again and again */
	t = c->nodes[2].st.term;
	CHECK(t > c->nodes[0].st.term);
	cluster_heal(c);
	cluster_run_for(c, 2000);
	CHECK(cluster_leader(c) >= 0);
	CHECK(c->nodes[cluster_leader(c)].st.term >= t);
	CHECK(sc_logs_equal(c, 0, 2));
	sc_free(c);
}

/* ------------------------------------------------------------------ */
/* Log replication (§5.3) and safety (§5.4)                            */
/* ------------------------------------------------------------------ */

TEST(test_proposal_is_sent_with_the_right_prev_index_and_term)
{
	struct cluster *c = solo(3, 1, 1);
	sr_index idx;
	int found = 0;

	solo_elect(c, 2);
	ack_appends(c, 1);
	ack_appends(c, 2);
	sc_propose(c, 0);
	idx = c->props[c->props_n - 1].index;
	for (size_t k = 0; k < c->held_n; k++) {
		const sr_msg_append *a = &c->held[k]->m.u.append;

		if (c->held[k]->m.type != SR_MSG_APPEND || !a->n_entries)
			continue;
		CHECK_EQ(a->prev_index, a->entries[0].index - 1);
		CHECK_EQ(a->prev_term, sc_term_at(c, 0, a->prev_index));
		if (a->entries[a->n_entries - 1].index == idx)
			found++;
	}
	CHECK_EQ(found, 2); /* in parallel to both followers */
	sc_free(c);
}

TEST(test_entry_commits_at_a_majority_with_everything_before_it)
{
	struct cluster *c = solo(5, 1, 1);
	sr_index last;

	solo_elect(c, 4);
	for (int i = 0; i < 3; i++)
		sc_propose(c, 0);
	last = c->props[c->props_n - 1].index;
	cluster_run_for(c, 10); /* the leader's own disk */
	ack_appends(c, 1);
	CHECK(c->nodes[0].st.commit_index < last); /* 2 of 5 */
	ack_appends(c, 2);
	CHECK_EQ(c->nodes[0].st.commit_index, last); /* 3 of 5 */
	CHECK_EQ(c->nodes[0].st.applied_index, last);
	CHECK_EQ(cluster_acked(c), 3);
	cluster_drop_held(c);
	cluster_run_for(c, c->o.heartbeat_ms); /* and tells the followers */
	CHECK(sc_held(c, SR_MSG_APPEND, 3) >= 0);
	CHECK_EQ(c->held[sc_held(c, SR_MSG_APPEND, 3)]->m.u.append.commit,
		 last);
	sc_free(c);
}

TEST(test_followers_apply_what_the_leader_committed)
{
	struct cluster *c = trio(1, 1);

	CHECK_EQ(cluster_wait_leader(c, 1000), 0);
	for (int i = 0; i < 10; i++)
		sc_propose(c, 0);
	cluster_run_for(c, 200);
	CHECK_EQ(cluster_acked(c), 10);
	CHECK(cluster_all_applied(c, c->props[9].index));
	sc_free(c);
}

TEST(test_follower_rejects_a_mismatched_prev_entry)
{
	struct cluster *c = solo(3, 0, 0);
	sr_entry e = { .term = 2, .index = 6, .type = SR_ENTRY_NORMAL };
	sr_msg m = sc_append(1, 0, 2, 5, 2, 0, &e, 1);
	long k;

	cluster_inject(c, 0, &m); /* prev 5 is beyond its log */
	k = sc_held(c, SR_MSG_APPEND_RESP, 1);
	CHECK(k >= 0);
	CHECK_EQ(c->held[k]->m.u.append_resp.success, 0);
	CHECK(c->held[k]->m.u.append_resp.hint_index <= 1);
	cluster_drop_held(c);
	e.index = 2;
	m = sc_append(1, 0, 2, 1, 2, 0, &e, 1); /* prev 1 has term 1 */
	cluster_inject(c, 0, &m);
	k = sc_held(c, SR_MSG_APPEND_RESP, 1);
	CHECK(k >= 0);
	CHECK_EQ(c->held[k]->m.u.append_resp.success, 0);
	CHECK_EQ(sc_last(c, 0), 1);
	sc_free(c);
}

TEST(test_nothing_is_truncated_without_a_conflict)
{
	struct cluster *c = solo(3, 0, 0);
	sr_entry e[2] = { { .term = 2, .index = 2, .type = SR_ENTRY_NOOP },
			  { .term = 2, .index = 3, .type = SR_ENTRY_NOOP } };
	sr_msg m = sc_append(1, 0, 2, 1, 1, 0, e, 2);
	sr_mem_info info;

	cluster_inject(c, 0, &m);
	CHECK_EQ(sc_last(c, 0), 3);
	m = sc_append(1, 0, 2, 1, 1, 0, e, 1); /* an older, reordered copy */
	cluster_inject(c, 0, &m);
	m = sc_append(1, 0, 2, 0, 0, 0, NULL, 0);
	cluster_inject(c, 0, &m);
	CHECK_EQ(sc_last(c, 0), 3);
	sr_mem_get_info(c->nodes[0].mem, &info);
	CHECK_EQ(info.n_truncates, 0);
	sc_free(c);
}

/* The follower logs of the Raft paper's Figure 7, against the leader's
 * log 1 1 1 4 4 5 5 6 6 6 (index 1 is the configuration, term 1). */
struct fig7 {
	const char *name;
	sr_term terms[12];
	size_t n;
};

static const sr_term leader7[] = { 1, 1, 4, 4, 5, 5, 6, 6, 6 };

static const struct fig7 fig7[] = {
	{ "a", { 1, 1, 4, 4, 5, 5, 6, 6 }, 8 },
	{ "b", { 1, 1, 4 }, 3 },
	{ "c", { 1, 1, 4, 4, 5, 5, 6, 6, 6, 6 }, 10 },
	{ "d", { 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7 }, 11 },
	{ "e", { 1, 1, 4, 4, 4, 4 }, 6 },
	{ "f", { 1, 1, 2, 2, 2, 3, 3, 3, 3, 3 }, 10 },
};

TEST(test_every_follower_log_of_figure_7_converges_to_the_leaders)
{
	for (size_t k = 0; k < sizeof(fig7) / sizeof(fig7[0]); k++) {
		struct sim_opts o = sc_opts(3, 0);
		struct cluster *c;
		sr_index last;

		o.election_ms_of[1] = o.election_ms_of[2] = 1000;
		c = sc_make(&o);
		sc_preload(c, 0, 7, leader7, 9);
		sc_preload(c, 1, 7, fig7[k].terms, fig7[k].n);
		sc_preload(c, 2, 7, leader7, 9);
		sc_start(c);
		CHECK_EQ(cluster_wait_leader(c, 1000), 0);
		CHECK_EQ(c->nodes[0].st.term, 8);
		sc_propose(c, 0);
		last = c->props[0].index;
		cluster_run_for(c, 300);
		if (!sc_logs_equal(c, 0, 1))
			TEST_FAIL("figure 7 (%s): follower log differs",
				  fig7[k].name);
		CHECK_EQ(sc_last(c, 1), last);
		CHECK(cluster_all_applied(c, last));
		sc_free(c);
	}
}

static int count_rejects(struct cluster *c, const sr_msg *m, void *ctx)
{
	uint64_t *n = ctx;

	(void)c;
	if (m->type == SR_MSG_APPEND_RESP && m->from == 2 &&
	    !m->u.append_resp.success)
		(*n)++;
	return SIM_DELIVER;
}

TEST(test_rejection_hints_skip_whole_terms)
{
	/* leader 1 4x40, follower 1 2x20 3x20: they agree on index 1 only */
	struct sim_opts o = sc_opts(3, 0);
	sr_term lead[40], foll[40];
	struct cluster *c;
	uint64_t rejects = 0;

	for (int i = 0; i < 40; i++) {
		lead[i] = 4;
		foll[i] = i < 20 ? 2 : 3;
	}
	o.election_ms_of[1] = o.election_ms_of[2] = 1000;
	c = sc_make(&o);
	sc_preload(c, 0, 4, lead, 40);
	sc_preload(c, 1, 4, foll, 40);
	sc_preload(c, 2, 4, lead, 40);
	sc_start(c);
	c->filter = count_rejects;
	c->filter_ctx = &rejects;
	CHECK_EQ(cluster_wait_leader(c, 1000), 0);
	cluster_run_for(c, 300);
	CHECK(sc_logs_equal(c, 0, 1));
	CHECK(rejects >= 1);
	CHECK(rejects <= 3); /* one per term skipped, not one per entry */
	sc_free(c);
}

TEST(test_old_term_entries_commit_only_with_a_current_term_entry)
{
	/* Figure 8: entries of term 2 on a majority are not committed by
	 * a leader of term 4 until an entry of term 4 is. */
	struct sim_opts o = sc_opts(3, 2);
	static const sr_term terms[] = { 2, 2 }; /* 2/t2 3/t2 */
	struct cluster *c;
	sr_msg r;

	o.pre_vote = 0;
	c = sc_make(&o);
	sc_preload(c, 0, 3, terms, 2);
	sc_start(c);
	solo_elect(c, 1);
	CHECK_EQ(c->nodes[0].st.term, 4);
	cluster_run_for(c, 5);
	r = sc_msg(SR_MSG_APPEND_RESP, 1, 0, 4);
	r.u.append_resp.success = 1;
	r.u.append_resp.index = 3; /* n2 holds 2 and 3 of term 2 */
	r.u.append_resp.hint_index = 3;
	cluster_inject(c, 0, &r);
	CHECK(c->nodes[0].st.commit_index < 2);
	r.u.append_resp.index = 4; /* and the leader's no-op of term 4 */
	r.u.append_resp.hint_index = 4;
	cluster_inject(c, 0, &r);
	CHECK_EQ(c->nodes[0].st.commit_index, 4);
	sc_free(c);
}

int main(int argc, char **argv)
{
	return test_main(argc, argv);
}

/*
 * churn_test.c — membership changes, leadership transfers and
 * linearizable reads, one scenario at a time, under the simulator's
 * checker (scenario.h; the membership and read checks are in conf.c and
 * client.c): a learner that catches up by snapshot and votes once
 * promoted, a leader that removes itself under load, a removed node that
 * missed its removal, a transfer under load, reads on a follower right
 * after a leader change, one change at a time, ids never reused, and a
 * whole majority replaced at once through a joint configuration while
 * the leader crashes in the middle.
 */
#include "scenario.h"

/* n voters and `spare` spare slots; n1 times out first and leads. */
static struct cluster *churn_cluster(int n, int spare, int pre_vote)
{
	struct sim_opts o = sc_opts(n + spare, 0);

	o.n_spare = spare;
	o.pre_vote = pre_vote;
	o.election_ms_of[0] = 50;
	return sc_new(&o);
}

static int leader_is_n2(struct cluster *c)
{
	return cluster_leader(c) == 1;
}

/* Run until every proposal so far has an outcome (or ms pass). */
static int all_settled(struct cluster *c)
{
	for (size_t p = 0; p < c->props_n; p++)
		if (c->props[p].state == PROP_PENDING)
			return 0;
	return 1;
}

/* Run until the committed configuration's voters are `voters`. */
static int run_until_voters(struct cluster *c, uint32_t voters, uint64_t ms)
{
	uint64_t end = c->now + ms;

	while (cluster_voters(c) != voters)
		if (!cluster_step(c, end))
			return cluster_voters(c) == voters;
	return 1;
}

/* Propose on whoever leads, every 5 ms for ms; returns the refusals
 * with `status` (0: any). */
static int load(struct cluster *c, uint64_t ms, int status)
{
	uint64_t end = c->now + ms;
	int refused = 0;

	while (c->now < end && !c->failed) {
		int ld = cluster_leader(c), rv;

		if (ld >= 0) {
			rv = cluster_propose(c, ld, 16, NULL);
			refused += rv != 0 && (!status || rv == status);
		}
		cluster_run_for(c, 5);
	}
	return refused;
}

/* Counts the vote grants (real, not pre) a slot sends. */
struct grants {
	int slot;
	int n;
	sr_term term;
};

static int count_grants(struct cluster *c, const sr_msg *m, void *ctx)
{
	struct grants *g = ctx;

	(void)c;
	if (m->type == SR_MSG_VOTE_RESP && m->from == (sr_id)g->slot + 1 &&
	    m->u.vote_resp.granted && !m->u.vote_resp.pre) {
		g->n++;
		g->term = m->term;
	}
	return SIM_DELIVER;
}

/* ------------------------------------------------------------------ */
/* Adding, promoting, removing                                         */
/* ------------------------------------------------------------------ */

TEST(test_learner_catches_up_by_snapshot_and_votes_once_promoted)
{
	struct sim_opts o = sc_opts(4, 0);
	struct grants g = { .slot = 3 };
	struct cluster *c;
	uint64_t restores;
	sr_mem_info info;
	int ld;

	o.n_spare = 1;
	o.election_ms_of[0] = 50;
	o.snapshot_threshold = 10;
	o.snapshot_chunk_bytes = 7;
	c = sc_new(&o);
	CHECK_EQ(cluster_wait_leader(c, 1000), 0);
	for (int i = 0; i < 40; i++)
		sc_propose(c, 0);
	cluster_run_while_not(c, all_settled, 1000);
	CHECK_EQ(cluster_acked(c), 40);
	sr_mem_get_info(c->nodes[0].mem, &info);
	CHECK(info.first_index > 2); /* the start of the log is gone */

	/* the learner gets a snapshot, then the log after it */
	restores = c->n_restores;
	CHECK_EQ(cluster_add(c, 0, 3, 0), 0);
	cluster_run_for(c, 500);
	SC_OK(c);
	CHECK(c->n_restores > restores);
	CHECK(c->nodes[3].st.snapshot_index > 0);
	CHECK_EQ(c->nodes[3].st.applied_index, c->nodes[0].st.applied_index);
	CHECK_EQ(cluster_voters(c), 0x7);
	CHECK_EQ(cluster_members(c), 0xf);

	CHECK_EQ(cluster_promote(c, 0, 3), 0);
	CHECK(run_until_voters(c, 0xf, 500));

	/* with n1 down, a leader needs 3 of 4 votes: n4's among them */
	c->filter = count_grants;
	c->filter_ctx = &g;
	cluster_crash(c, 0);
	ld = cluster_wait_leader(c, 2000);
	CHECK(ld > 0);
	CHECK(g.n > 0);
	CHECK_EQ(g.term, c->nodes[ld].st.term);
	/* and commitment needs n4's acknowledgement too */
	sc_propose(c, ld);
	cluster_run_while_not(c, all_settled, 1000);
	CHECK_EQ(cluster_acked(c), 41);
	sc_free(c);
}

TEST(test_auto_promoted_learner_becomes_a_voter_once_caught_up)
{
	struct cluster *c = churn_cluster(3, 1, 1);

	CHECK_EQ(cluster_wait_leader(c, 1000), 0);
	for (int i = 0; i < 20; i++)
		sc_propose(c, 0);
	cluster_run_for(c, 50); /* changes wait for the leader's first commit */
	CHECK_EQ(cluster_add(c, 0, 3, 1), 0);
	CHECK(run_until_voters(c, 0xf, 2000));
	CHECK(c->nodes[3].st.applied_index >= 21);
	sc_free(c);
}

TEST(test_learner_never_campaigns)
{
	struct cluster *c = churn_cluster(3, 1, 0);
	sr_term t;

	CHECK_EQ(cluster_wait_leader(c, 1000), 0);
	cluster_run_for(c, 50);
	CHECK_EQ(cluster_add(c, 0, 3, 0), 0);
	cluster_run_for(c, 200);
	t = c->nodes[3].st.term;
	CHECK(t > 0);
	cluster_isolate(c, 3);
	cluster_run_for(c, 2000); /* many election timeouts */
	SC_OK(c);		  /* the checker fails any vote it sends */
	CHECK_EQ(c->nodes[3].st.term, t);
	CHECK_EQ(c->nodes[3].st.role, SR_FOLLOWER);
	sc_free(c);
}

TEST(test_learner_counts_toward_neither_commit_nor_reads)
{
	struct sim_opts o = sc_opts(4, 0);
	struct cluster *c;
	uint64_t pid, rid;
	sr_index need;

	o.n_spare = 1;
	o.check_quorum = 0; /* n1 stays leader, cut off */
	o.election_ms_of[0] = 50;
	c = sc_new(&o);
	CHECK_EQ(cluster_wait_leader(c, 1000), 0);
	cluster_run_for(c, 50);
	CHECK_EQ(cluster_add(c, 0, 3, 0), 0);
	cluster_run_for(c, 100);
	/* n1 and the learner against the two other voters */
	cluster_partition(c, 0x9);
	pid = sc_propose(c, 0);
	cluster_run_for(c, 500);
	CHECK_EQ(c->props[pid - 1].state, PROP_PENDING);
	CHECK(c->nodes[3].st.last_index >= c->props[pid - 1].index);
	/* the majority elects a leader and acknowledges a write */
	CHECK(cluster_leader(c) > 0);
	sc_propose(c, cluster_leader(c));
	cluster_run_for(c, 100);
	need = c->chk.acked_max;
	CHECK(need > 0);
	/* n1, still leading its old term with the learner's acks, must not
	 * serve a read */
	CHECK_EQ(c->nodes[0].st.role, SR_LEADER);
	CHECK_EQ(cluster_read(c, 0, &rid), 0);
	cluster_run_for(c, 500);
	SC_OK(c);
	CHECK_EQ(c->reads[rid - 1].state, READ_PENDING);
	cluster_heal(c);
	cluster_run_for(c, 500);
	SC_OK(c);
	CHECK_EQ(c->reads[rid - 1].state, READ_FAILED);
	CHECK_EQ(c->props[pid - 1].state, PROP_DROPPED);
	sc_free(c);
}

TEST(test_one_change_at_a_time_and_ids_never_reused)
{
	struct cluster *c = churn_cluster(3, 1, 1);

	CHECK_EQ(cluster_wait_leader(c, 1000), 0);
	cluster_run_for(c, 50); /* the leader's no-op commits */
	CHECK_EQ(cluster_add(c, 0, 3, 0), 0);
	CHECK_EQ(cluster_remove(c, 0, 2), SR_ECONFPENDING);
	CHECK_EQ(cluster_promote(c, 0, 3), SR_ECONFPENDING);
	cluster_run_for(c, 100);
	CHECK_EQ(cluster_members(c), 0xf);
	CHECK_EQ(cluster_remove(c, 0, 2), 0);
	CHECK(run_until_voters(c, 0x3, 500));
	CHECK_EQ(c->chk.conf.removed, 0x4);
	/* a removed id, and ids in use, are refused */
	CHECK_EQ(cluster_add(c, 0, 2, 0), SR_EEXIST);
	CHECK_EQ(cluster_add(c, 0, 3, 0), SR_EEXIST);
	CHECK_EQ(cluster_add(c, 0, 1, 1), SR_EEXIST);
	CHECK_EQ(cluster_promote(c, 0, 2), SR_ENOTFOUND);
	sc_free(c);
}

TEST(test_leader_removes_itself_under_load_and_the_cluster_goes_on)
{
	struct cluster *c = churn_cluster(5, 0, 1);
	size_t acked;
	sr_term t;
	int ld;

	CHECK_EQ(cluster_wait_leader(c, 1000), 0);
	load(c, 200, 0);
	CHECK_EQ(cluster_remove(c, 0, 0), 0);
	load(c, 1000, 0);
	SC_OK(c);
	CHECK_EQ(cluster_voters(c), 0x1e);
	CHECK(c->nodes[0].st.role != SR_LEADER);
	ld = cluster_leader(c);
	CHECK(ld > 0);
	acked = cluster_acked(c);
	load(c, 500, 0);
	CHECK(cluster_acked(c) > acked + 50);
	/* n1 keeps running: it never campaigns nor disrupts */
	ld = cluster_leader(c);
	t = c->nodes[ld].st.term;
	cluster_run_for(c, 2000);
	CHECK_EQ(cluster_leader(c), ld);
	CHECK_EQ(c->nodes[ld].st.term, t);
	CHECK(cluster_all_applied(c, c->nodes[ld].st.commit_index));
	sc_free(c);
}

/*
 * Followers ignore vote requests while they hear from a leader; a leader
 * without CheckQuorum would step down on a higher term, but not on one
 * from an id it removed.
 */
TEST(test_removed_node_that_missed_its_removal_cannot_disrupt)
{
	struct sim_opts o = sc_opts(4, 0);
	struct cluster *c;
	sr_term t;

	o.pre_vote = 0;
	o.check_quorum = 0;
	o.election_ms_of[0] = 50;
	c = sc_new(&o);

	CHECK_EQ(cluster_wait_leader(c, 1000), 0);
	load(c, 100, 0);
	cluster_isolate(c, 3);
	CHECK_EQ(cluster_remove(c, 0, 3), 0);
	CHECK(run_until_voters(c, 0x7, 500));
	cluster_run_for(c, 1000);
	t = c->nodes[0].st.term;
	CHECK(c->nodes[3].st.term > t + 2); /* it campaigned alone */
	cluster_heal(c);
	load(c, 2000, 0);
	SC_OK(c);
	CHECK_EQ(cluster_leader(c), 0);
	CHECK_EQ(c->nodes[0].st.term, t); /* its higher terms were ignored */
	sc_free(c);
}

/* ------------------------------------------------------------------ */
/* Leadership transfer                                                 */
/* ------------------------------------------------------------------ */

TEST(test_transfer_under_load)
{
	struct cluster *c = churn_cluster(3, 0, 1);
	size_t acked;
	int refused;

	CHECK_EQ(cluster_wait_leader(c, 1000), 0);
	load(c, 200, 0);
	acked = cluster_acked(c);
	CHECK_EQ(cluster_transfer(c, 0, 2), 0);
	CHECK_EQ(cluster_propose(c, 0, 8, NULL), SR_ETRANSFER);
	CHECK_EQ(cluster_transfer(c, 0, 1), SR_ETRANSFER);
	refused = load(c, 300, SR_ETRANSFER);
	SC_OK(c);
	CHECK_EQ(cluster_leader(c), 2);
	CHECK(refused < 40); /* the old leader refused only meanwhile */
	load(c, 300, 0);
	CHECK(cluster_acked(c) > acked + 50);
	cluster_run_for(c, 200);
	CHECK(cluster_all_applied(c, c->nodes[2].st.commit_index));
	/* refused targets */
	CHECK_EQ(cluster_transfer(c, 2, 2), SR_EINVAL);
	CHECK_EQ(cluster_transfer(c, 0, 1), SR_ENOTLEADER);
	sc_free(c);
}

TEST(test_transfer_to_the_best_voter)
{
	struct cluster *c = churn_cluster(3, 0, 1);

	CHECK_EQ(cluster_wait_leader(c, 1000), 0);
	load(c, 100, 0);
	CHECK_EQ(cluster_transfer(c, 0, -1), 0);
	cluster_run_for(c, 300);
	CHECK(cluster_leader(c) > 0);
	sc_free(c);
}

/* ------------------------------------------------------------------ */
/* Reads                                                               */
/* ------------------------------------------------------------------ */

static int leader_known(struct cluster *c, int i)
{
	return c->nodes[i].node && c->nodes[i].st.leader != 0 &&
	       c->nodes[i].st.role == SR_FOLLOWER;
}

/* Issue a read on slot i as soon as it knows a leader; its read id. */
static uint64_t read_asap(struct cluster *c, int i)
{
	uint64_t rid = 0, end = c->now + 2000;

	while (!rid && c->now < end) {
		if (leader_known(c, i) || cluster_leader(c) == i)
			cluster_read(c, i, &rid);
		if (!rid && !cluster_step(c, end))
			break;
	}
	CHECK(rid != 0);
	return rid;
}

static int read_finished(struct cluster *c, uint64_t rid)
{
	return c->reads[rid - 1].state != READ_PENDING;
}

TEST(test_follower_read_after_a_leader_change_sees_acknowledged_writes)
{
	struct cluster *c = churn_cluster(3, 0, 1);
	sr_index need;
	uint64_t rid;
	int ld, f;

	CHECK_EQ(cluster_wait_leader(c, 1000), 0);
	for (int i = 0; i < 10; i++)
		sc_propose(c, 0);
	/* the leader acknowledges; followers learn the commit later */
	while (cluster_acked(c) < 10)
		CHECK(cluster_step(c, c->now + 1000));
	need = c->chk.acked_max;
	CHECK(c->nodes[1].st.applied_index < need ||
	      c->nodes[2].st.applied_index < need);
	cluster_crash(c, 0);
	ld = cluster_wait_leader(c, 2000);
	CHECK(ld > 0);
	f = 3 - ld; /* the other follower */
	rid = read_asap(c, f);
	CHECK_EQ(c->reads[rid - 1].need, need);
	cluster_run_while_not(c, all_settled, 1000);
	for (uint64_t end = c->now + 1000; !read_finished(c, rid);)
		CHECK(cluster_step(c, end));
	SC_OK(c); /* the checker verified the state the read saw */
	CHECK_EQ(c->reads[rid - 1].state, READ_OK);
	CHECK(c->reads[rid - 1].index >= need);
	CHECK(c->nodes[f].fsm.index >= need);

	/* the old leader, back as a follower, reads what it acknowledged */
	CHECK_EQ(cluster_restart(c, 0), 0);
	rid = read_asap(c, 0);
	for (uint64_t end = c->now + 1000; !read_finished(c, rid);)
		CHECK(cluster_step(c, end));
	SC_OK(c);
	CHECK_EQ(c->reads[rid - 1].state, READ_OK);
	sc_free(c);
}

TEST(test_reads_wait_for_the_new_leaders_first_commit)
{
	struct cluster *c = churn_cluster(3, 0, 1);
	uint64_t rid;
	int ld;

	CHECK_EQ(cluster_wait_leader(c, 1000), 0);
	for (int i = 0; i < 5; i++)
		sc_propose(c, 0);
	while (cluster_acked(c) < 5)
		CHECK(cluster_step(c, c->now + 1000));
	cluster_crash(c, 0);
	ld = cluster_wait_leader(c, 2000);
	CHECK(ld > 0);
	/* read at once, before the new leader committed its no-op */
	CHECK_EQ(cluster_read(c, ld, &rid), 0);
	CHECK(c->nodes[ld].st.commit_index < c->nodes[ld].st.last_index);
	CHECK_EQ(c->reads[rid - 1].state, READ_PENDING);
	for (uint64_t end = c->now + 1000; !read_finished(c, rid);)
		CHECK(cluster_step(c, end));
	SC_OK(c);
	CHECK_EQ(c->reads[rid - 1].state, READ_OK);
	CHECK(c->reads[rid - 1].index >= c->chk.acked_max);
	sc_free(c);
}

TEST(test_reads_on_a_learner_and_across_a_transfer)
{
	struct cluster *c = churn_cluster(3, 1, 1);
	uint64_t r1, r2;

	CHECK_EQ(cluster_wait_leader(c, 1000), 0);
	cluster_run_for(c, 50);
	CHECK_EQ(cluster_add(c, 0, 3, 0), 0);
	load(c, 100, 0);
	r1 = read_asap(c, 3);
	load(c, 50, 0);
	CHECK_EQ(c->reads[r1 - 1].state, READ_OK);
	/* reads pending when leadership moves fail, or are served right */
	CHECK_EQ(cluster_read(c, 3, &r1), 0);
	CHECK_EQ(cluster_transfer(c, 0, 1), 0);
	CHECK_EQ(cluster_read(c, 0, &r2), 0);
	cluster_run_while_not(c, leader_is_n2, 500);
	load(c, 100, 0);
	SC_OK(c);
	CHECK(read_finished(c, r1) && read_finished(c, r2));
	/* then the learner reads through the new leader */
	r1 = read_asap(c, 3);
	load(c, 50, 0);
	SC_OK(c);
	CHECK_EQ(c->reads[r1 - 1].state, READ_OK);
	CHECK(c->reads[r1 - 1].index >= c->reads[r1 - 1].need);
	sc_free(c);
}

/* Three voters replaced by three others in one joint change, under load;
 * the leader (one of those leaving) crashes as soon as the joint entry is
 * out, and whoever leads next completes the change. */
TEST(test_joint_change_replaces_the_majority_across_a_leader_crash)
{
	struct cluster *c = churn_cluster(3, 3, 1);
	sr_change chs[6];
	int ld;

	CHECK_EQ(cluster_wait_leader(c, 1000), 0);
	for (int i = 0; i < 10; i++)
		sc_propose(c, 0);
	cluster_run_for(c, 50);
	for (int s = 3; s < 6; s++) {
		CHECK_EQ(cluster_add(c, 0, s, 0), 0);
		cluster_run_for(c, 100);
	}
	CHECK_EQ(cluster_members(c), 0x3f);
	memset(chs, 0, sizeof(chs));
	for (int k = 0; k < 3; k++) {
		chs[k].op = SR_CHANGE_PROMOTE;
		chs[k].id = (sr_id)(4 + k);
		chs[3 + k].op = SR_CHANGE_REMOVE;
		chs[3 + k].id = (sr_id)(1 + k);
	}
	CHECK_EQ(cluster_change(c, 0, chs, 6), 0);
	CHECK_EQ(c->n_joint, 1);
	CHECK_EQ(cluster_change(c, 0, chs, 1), SR_ECONFPENDING);
	cluster_run_for(c, 5);
	cluster_crash(c, 0);
	load(c, 300, 0);
	CHECK(run_until_voters(c, 0x38, 3000));
	/* C_new itself, not only the joint entry, is committed */
	cluster_run_for(c, 500);
	CHECK_EQ(cluster_voters(c), 0x38);
	CHECK_EQ(c->chk.conf.old_voters, 0);
	SC_OK(c);
	ld = cluster_wait_leader(c, 2000);
	CHECK(ld >= 3);
	sc_propose(c, ld);
	cluster_run_while_not(c, all_settled, 2000);
	SC_OK(c);
	sc_free(c);
}

int main(int argc, char **argv)
{
	return test_main(argc, argv);
}

/*
 * test_joint.c — membership changes through a joint configuration
 * (sr_node_change, thesis §4.3): the encoding, whole-majority
 * replacements, a leader that leaves, leader changes and crashes in the
 * middle, and the rules that keep one change in flight.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <seshat/wal.h>

#include "cluster.h"

/* The voters of node i's configuration in effect, as a bit set (bit id),
 * by role (C_old's while joint) or by new_role. */
static uint32_t voters_of(int i, int incoming)
{
	const sr_membership *c = sr_node_membership(C.node[i]);
	uint32_t set = 0;
	for (uint32_t k = 0; k < c->n; k++) {
		const sr_member *m = &c->members[k];
		uint32_t role = incoming && m->new_role ? m->new_role : m->role;
		if (role == SR_ROLE_VOTER)
			set |= 1u << m->id;
	}
	return set;
}

static int joint_on(int i)
{
	return sr_membership_is_joint(sr_node_membership(C.node[i]));
}

/* Three voters 1-3 and learners 4..3+extra, caught up. */
static int start_with_learners(int extra)
{
	sr_change ch[4];
	int l;

	cluster_start(3);
	l = cluster_run_until_leader(1000);
	CHECK(l != 0);
	cluster_propose_n(l, 1, 10);
	cluster_run(50);
	memset(ch, 0, sizeof(ch));
	for (int k = 0; k < extra; k++) {
		ch[k].op = SR_CHANGE_ADD_LEARNER;
		ch[k].id = (sr_id)(4 + k);
		ch[k].addr = "";
	}
	/* learners never change a quorum: one simple entry */
	CHECK_EQ(sr_node_change(C.node[l], ch, (size_t)extra, NULL), 0);
	CHECK(!joint_on(l));
	for (int k = 0; k < extra; k++)
		cluster_node_open(4 + k, NULL);
	C.n = 3 + extra;
	cluster_run(300);
	for (int k = 0; k < extra; k++)
		CHECK_EQ(C.applied_sum[4 + k], 55);
	return l;
}

/* The changes that make learners 4-6 the voters and remove voters 1-3. */
static void replace_1_2_3_by_4_5_6(sr_change ch[6])
{
	memset(ch, 0, 6 * sizeof(*ch));
	for (int k = 0; k < 3; k++) {
		ch[k].op = SR_CHANGE_PROMOTE;
		ch[k].id = (sr_id)(4 + k);
		ch[3 + k].op = SR_CHANGE_REMOVE;
		ch[3 + k].id = (sr_id)(1 + k);
	}
}

TEST(test_joint_configuration_encodes_as_version_2_and_simple_as_1)
{
	sr_membership a, b;
	unsigned char buf[4096];
	int len;

	memset(&a, 0, sizeof(a));
	sr_membership_add(&a, 1, SR_ROLE_VOTER, "x");
	sr_membership_add(&a, 2, SR_ROLE_LEARNER, "");
	len = sr_membership_encode(&a, buf, sizeof(buf));
	CHECK_EQ(len, 2 + 10 + 1 + 10);
	CHECK_EQ(buf[0], 1);
	CHECK_EQ(sr_membership_decode(&b, buf, (size_t)len), 0);
	CHECK_EQ(sr_membership_is_joint(&b), 0);

	a.members[0].new_role = SR_ROLE_REMOVED;
	a.members[1].new_role = SR_ROLE_VOTER;
	CHECK_EQ(sr_membership_is_joint(&a), 1);
	len = sr_membership_encode(&a, buf, sizeof(buf));
	CHECK_EQ(len, 2 + 11 + 1 + 11);
	CHECK_EQ((int)sr_membership_encoded_size(&a), len);
	CHECK_EQ(buf[0], 2);
	CHECK_EQ(sr_membership_decode(&b, buf, (size_t)len), 0);
	CHECK_EQ(b.members[0].role, SR_ROLE_VOTER);
	CHECK_EQ(b.members[0].new_role, SR_ROLE_REMOVED);
	CHECK_EQ(b.members[1].new_role, SR_ROLE_VOTER);
	CHECK_EQ(strcmp(b.members[0].addr, "x"), 0);

	/* a removed member cannot come back, and roles must be known */
	buf[2 + 8 + 1] = SR_ROLE_LEARNER;
	buf[2 + 8] = SR_ROLE_REMOVED;
	CHECK_EQ(sr_membership_decode(&b, buf, (size_t)len), SR_EPROTO);
	buf[2 + 8] = SR_ROLE_VOTER;
	buf[2 + 8 + 1] = 0;
	CHECK_EQ(sr_membership_decode(&b, buf, (size_t)len), SR_EPROTO);
	buf[2 + 8 + 1] = 4;
	CHECK_EQ(sr_membership_decode(&b, buf, (size_t)len), SR_EPROTO);
	buf[0] = 3;
	CHECK_EQ(sr_membership_decode(&b, buf, (size_t)len), SR_EPROTO);
	/* a joint configuration is the engine's, never a bootstrap */
	cluster_node_create(1);
	CHECK_EQ(sr_node_bootstrap(C.node[1], &a), SR_EINVAL);
	cluster_stop();
}

TEST(test_replace_a_whole_majority_at_once)
{
	sr_change ch[6];
	sr_index idx = 0;
	int l = start_with_learners(3), nl;

	replace_1_2_3_by_4_5_6(ch);
	CHECK_EQ(sr_node_change(C.node[l], ch, 6, &idx), 0);
	CHECK(idx > 0);
	/* in effect at once on the leader: C_old {1,2,3}, C_new {4,5,6} */
	CHECK(joint_on(l));
	CHECK_EQ(voters_of(l, 0), 0x0eu);
	CHECK_EQ(voters_of(l, 1), 0x70u);
	cluster_run(400);
	/* the joint entry committed, C_new followed and committed, and the
	 * old leader (a member of C_old only) stepped down.  The old voters
	 * need not learn of C_new (no one replicates to removed ids, as
	 * with single-server removals), but none of them leads again. */
	nl = cluster_leader();
	CHECK(nl >= 4 && nl <= 6);
	for (int i = 4; i <= 6; i++) {
		CHECK(!joint_on(i));
		CHECK_EQ(voters_of(i, 0), 0x70u);
	}
	CHECK(cluster_status(nl).commit_index > idx + 1);
	/* the old voters are gone for good; the new ones carry on */
	for (int i = 1; i <= 3; i++)
		C.cut[i] = 1;
	cluster_propose_n(nl, 100, 1);
	cluster_run(100);
	for (int i = 4; i <= 6; i++)
		CHECK_EQ(C.applied_sum[i], 155);
	cluster_stop();
}

TEST(test_joint_commit_needs_a_majority_of_both_configurations)
{
	sr_change ch[4];
	sr_index idx = 0;
	int l = start_with_learners(2), a = 0, b = 0, leader;

	/* C_old {1,2,3} -> C_new {l, 4, 5}: the two other old voters leave */
	memset(ch, 0, sizeof(ch));
	for (int i = 1, k = 0; i <= 3; i++) {
		if (i == l)
			continue;
		ch[k].op = SR_CHANGE_REMOVE;
		ch[k++].id = (sr_id)i;
		if (!a)
			a = i;
		else
			b = i;
	}
	ch[2].op = SR_CHANGE_PROMOTE;
	ch[2].id = 4;
	ch[3].op = SR_CHANGE_PROMOTE;
	ch[3].id = 5;
	CHECK_EQ(sr_node_change(C.node[l], ch, 4, &idx), 0);
	CHECK(joint_on(l));
	/* C_new = {l, 4, 5} is all here, C_old = {1, 2, 3} has only l */
	C.cut[a] = C.cut[b] = 1;
	cluster_run(600);
	for (int i = 1; i <= 5; i++) {
		if (C.cut[i])
			continue;
		CHECK(cluster_status(i).commit_index < idx);
		CHECK(joint_on(i));
	}
	/* a majority of C_old is back: the change goes through */
	C.cut[a] = 0;
	cluster_run(1000);
	leader = cluster_leader();
	CHECK(leader == l || leader == 4 || leader == 5);
	CHECK(!joint_on(leader));
	CHECK_EQ(voters_of(leader, 0), (1u << l) | 0x30u);
	CHECK(cluster_status(leader).commit_index > idx);
	cluster_stop();
}

TEST(test_leader_that_leaves_in_a_joint_change_leads_until_it_commits)
{
	sr_change ch[4];
	sr_index idx = 0;
	int l = start_with_learners(2), other = l == 1 ? 2 : 1, nl;
	int led_past_joint = 0;

	memset(ch, 0, sizeof(ch));
	ch[0].op = SR_CHANGE_REMOVE;
	ch[0].id = (sr_id)l;
	ch[1].op = SR_CHANGE_REMOVE;
	ch[1].id = (sr_id)other;
	ch[2].op = SR_CHANGE_PROMOTE;
	ch[2].id = 4;
	ch[3].op = SR_CHANGE_PROMOTE;
	ch[3].id = 5;
	CHECK_EQ(sr_node_change(C.node[l], ch, 4, &idx), 0);
	/* it keeps leading through the joint phase, counting itself in C_old
	 * only, and appends C_new itself once the joint entry commits */
	CHECK(joint_on(l));
	for (int t = 0; t < 400 && cluster_status(l).role == SR_LEADER; t++) {
		if (cluster_status(l).commit_index >= idx) {
			led_past_joint = 1;
			CHECK(!joint_on(l));
		}
		cluster_run(1);
	}
	CHECK(led_past_joint);
	CHECK(cluster_status(l).role != SR_LEADER);
	/* it stepped down only with C_new committed */
	CHECK(!joint_on(l));
	CHECK(cluster_status(l).commit_index > idx);
	cluster_run(500);
	nl = cluster_leader();
	CHECK(nl != 0 && nl != l && nl != other);
	CHECK_EQ(voters_of(nl, 0), 0x30u | (1u << (6 - l - other)));
	cluster_propose_n(nl, 100, 1);
	cluster_run(100);
	CHECK_EQ(C.applied_sum[4], 155);
	CHECK_EQ(C.applied_sum[5], 155);
	cluster_stop();
}

TEST(test_new_leader_finishes_a_joint_change_its_predecessor_began)
{
	sr_change ch[6];
	sr_index idx = 0;
	int l = start_with_learners(3), nl;

	replace_1_2_3_by_4_5_6(ch);
	CHECK_EQ(sr_node_change(C.node[l], ch, 6, &idx), 0);
	/* the joint entry reaches the others, then the leader is cut off
	 * before it can leave */
	cluster_run(3);
	C.cut[l] = 1;
	cluster_run(2000);
	nl = cluster_leader();
	CHECK(nl != 0 && nl != l);
	CHECK(!joint_on(nl));
	CHECK_EQ(voters_of(nl, 0), 0x70u);
	/* the old leader comes back and learns the outcome */
	C.cut[l] = 0;
	cluster_run(500);
	CHECK(!joint_on(l));
	CHECK_EQ(voters_of(l, 0), 0x70u);
	CHECK(cluster_status(l).role != SR_LEADER);
	cluster_stop();
}

TEST(test_restart_in_the_middle_of_a_joint_change)
{
	sr_change ch[4];
	int l = start_with_learners(2), f = l == 1 ? 2 : 1, leader;

	memset(ch, 0, sizeof(ch));
	ch[0].op = SR_CHANGE_PROMOTE;
	ch[0].id = 4;
	ch[1].op = SR_CHANGE_PROMOTE;
	ch[1].id = 5;
	/* two voters more at once: joint */
	CHECK_EQ(sr_node_change(C.node[l], ch, 2, NULL), 0);
	CHECK(joint_on(l));
	cluster_run(2);
	CHECK(joint_on(f));
	/* a follower restarts from its store: the joint entry is reloaded */
	cluster_restart(f);
	CHECK(joint_on(f));
	/* the leader restarts too: whoever leads next leaves the joint
	 * configuration */
	cluster_restart(l);
	cluster_run(2000);
	leader = cluster_leader();
	CHECK(leader != 0);
	for (int i = 1; i <= 5; i++) {
		CHECK(!joint_on(i));
		CHECK_EQ(voters_of(i, 0), 0x3eu);
	}
	cluster_propose_n(leader, 100, 1);
	cluster_run(100);
	for (int i = 1; i <= 5; i++)
		CHECK_EQ(C.applied_sum[i], 155);
	cluster_stop();
}

TEST(test_a_change_is_refused_while_a_joint_change_is_in_flight)
{
	sr_change ch[2], more = { SR_CHANGE_ADD_LEARNER, 6, "", 0 };
	int l = start_with_learners(2);
	const sr_membership *m;
	sr_membership before;

	memset(ch, 0, sizeof(ch));
	ch[0].op = SR_CHANGE_PROMOTE;
	ch[0].id = 4;
	ch[1].op = SR_CHANGE_PROMOTE;
	ch[1].id = 5;
	CHECK_EQ(sr_node_change(C.node[l], ch, 2, NULL), 0);
	m = sr_node_membership(C.node[l]);
	before = *m;
	CHECK_EQ(sr_node_change(C.node[l], &more, 1, NULL), SR_ECONFPENDING);
	CHECK_EQ(sr_node_add(C.node[l], 6, "", 0), SR_ECONFPENDING);
	CHECK_EQ(sr_node_remove(C.node[l], 4), SR_ECONFPENDING);
	CHECK_EQ(memcmp(&before, m, sizeof(before)), 0);
	/* still refused once the joint entry committed, until C_new did */
	for (int t = 0; joint_on(l); t++) {
		CHECK(t < 1000);
		CHECK_EQ(sr_node_change(C.node[l], &more, 1, NULL),
			 SR_ECONFPENDING);
		cluster_run(1);
	}
	CHECK_EQ(sr_node_change(C.node[l], &more, 1, NULL), SR_ECONFPENDING);
	cluster_run(50);
	CHECK_EQ(sr_node_change(C.node[l], &more, 1, NULL), 0);
	cluster_stop();
}

TEST(test_invalid_changes_are_refused_and_change_nothing)
{
	sr_change ch[4];
	int l = start_with_learners(1);
	sr_membership before = *sr_node_membership(C.node[l]);

	memset(ch, 0, sizeof(ch));
	CHECK_EQ(sr_node_change(C.node[l], ch, 0, NULL), SR_EINVAL);
	CHECK_EQ(sr_node_change(C.node[l], NULL, 1, NULL), SR_EINVAL);
	ch[0].op = 99;
	ch[0].id = 4;
	CHECK_EQ(sr_node_change(C.node[l], ch, 1, NULL), SR_EINVAL);
	/* the same id twice */
	ch[0].op = SR_CHANGE_PROMOTE;
	ch[1].op = SR_CHANGE_REMOVE;
	ch[1].id = 4;
	CHECK_EQ(sr_node_change(C.node[l], ch, 2, NULL), SR_EINVAL);
	/* no voter left */
	for (int k = 0; k < 3; k++) {
		ch[k].op = SR_CHANGE_REMOVE;
		ch[k].id = (sr_id)(k + 1);
	}
	CHECK_EQ(sr_node_change(C.node[l], ch, 3, NULL), SR_EINVAL);
	/* promote a voter, demote a learner, unknown ids, ids in use */
	ch[0].op = SR_CHANGE_PROMOTE;
	ch[0].id = 1;
	CHECK_EQ(sr_node_change(C.node[l], ch, 1, NULL), SR_EINVAL);
	ch[0].op = SR_CHANGE_DEMOTE;
	ch[0].id = 4;
	CHECK_EQ(sr_node_change(C.node[l], ch, 1, NULL), SR_EINVAL);
	ch[0].op = SR_CHANGE_REMOVE;
	ch[0].id = 7;
	CHECK_EQ(sr_node_change(C.node[l], ch, 1, NULL), SR_ENOTFOUND);
	ch[0].op = SR_CHANGE_ADD_VOTER;
	ch[0].id = 2;
	CHECK_EQ(sr_node_change(C.node[l], ch, 1, NULL), SR_EEXIST);
	/* a valid change after an invalid one in the same call */
	ch[0].op = SR_CHANGE_ADD_LEARNER;
	ch[0].id = 6;
	ch[1].op = SR_CHANGE_REMOVE;
	ch[1].id = 7;
	CHECK_EQ(sr_node_change(C.node[l], ch, 2, NULL), SR_ENOTFOUND);
	CHECK_EQ(memcmp(&before, sr_node_membership(C.node[l]), sizeof(before)),
		 0);
	/* and not on a follower */
	ch[0].op = SR_CHANGE_ADD_LEARNER;
	ch[0].id = 6;
	CHECK_EQ(sr_node_change(C.node[l == 1 ? 2 : 1], ch, 1, NULL),
		 SR_ENOTLEADER);
	cluster_stop();
}

TEST(test_one_voter_changed_is_a_simple_change)
{
	sr_change ch[3];
	sr_index idx = 0;
	int l = start_with_learners(1);

	memset(ch, 0, sizeof(ch));
	/* a learner promoted and another added: one voter more */
	ch[0].op = SR_CHANGE_PROMOTE;
	ch[0].id = 4;
	ch[1].op = SR_CHANGE_ADD_LEARNER;
	ch[1].id = 5;
	ch[1].addr = "five";
	CHECK_EQ(sr_node_change(C.node[l], ch, 2, &idx), 0);
	CHECK(!joint_on(l));
	CHECK_EQ(voters_of(l, 0), 0x1eu);
	CHECK(sr_membership_find(sr_node_membership(C.node[l]), 5) != NULL);
	cluster_run(100);
	CHECK(cluster_status(l).commit_index >= idx);
	/* demoting two voters at once is joint */
	ch[0].op = SR_CHANGE_DEMOTE;
	ch[0].id = 4;
	ch[1].op = SR_CHANGE_DEMOTE;
	ch[1].id = (sr_id)(l == 1 ? 2 : 1);
	CHECK_EQ(sr_node_change(C.node[l], ch, 2, NULL), 0);
	CHECK(joint_on(l));
	cluster_run(300);
	l = cluster_leader();
	CHECK(l != 0 && !joint_on(l));
	CHECK_EQ(__builtin_popcount(voters_of(l, 0)), 2);
	cluster_stop();
}

/* As with a removal (thesis §4.2.2): a leader of two voters that demotes
 * itself and loses leadership before the other holds the change must still
 * campaign, or no one could win (the other needs its vote, and its longer
 * log makes it refuse).  It leads until the demotion commits, then steps
 * down. */
TEST(test_leader_of_two_that_demoted_itself_cannot_deadlock_the_cluster)
{
	sr_change ch = { SR_CHANGE_DEMOTE, 0, NULL, 0 };
	const sr_member *m;
	int l, f;

	cluster_start(2);
	cluster_run(500);
	l = cluster_leader();
	CHECK(l != 0);
	f = 3 - l;
	C.cut[f] = 1;
	ch.id = (sr_id)l;
	CHECK_EQ(sr_node_change(C.node[l], &ch, 1, NULL), 0);
	CHECK(!joint_on(l)); /* one voter less: a simple change */
	cluster_run(400);
	CHECK(cluster_status(l).role != SR_LEADER);
	C.cut[f] = 0;
	cluster_run(2000);
	CHECK_EQ(cluster_leader(), f);
	m = sr_membership_find(sr_node_membership(C.node[f]), (sr_id)l);
	CHECK(m != NULL && m->role == SR_ROLE_LEARNER);
	CHECK(cluster_status(l).role == SR_FOLLOWER);
	cluster_propose_n(f, 1, 3);
	cluster_run(50);
	CHECK_EQ(C.applied_sum[l], 6);
	cluster_stop();
}

/* The WAL keeps a joint membership across a snapshot and a reopen. */
TEST(test_joint_membership_round_trips_through_a_wal_snapshot)
{
	char dir[] = "/tmp/sr-joint-XXXXXX";
	sr_wal_options o;
	sr_wal *w = NULL;
	const sr_storage_ops *ops = sr_wal_storage_ops();
	sr_membership c;
	sr_durable d;
	char cmd[64];

	CHECK(mkdtemp(dir) != NULL);
	memset(&c, 0, sizeof(c));
	sr_membership_add(&c, 1, SR_ROLE_VOTER, "a:1");
	sr_membership_add(&c, 2, SR_ROLE_LEARNER, "b:2");
	sr_membership_add(&c, 3, SR_ROLE_REMOVED, "");
	c.members[0].new_role = SR_ROLE_REMOVED;
	c.members[1].new_role = SR_ROLE_VOTER;
	c.members[2].new_role = SR_ROLE_REMOVED;
	c.members[1].auto_promote = 1;
	sr_wal_options_init(&o, dir);
	CHECK_EQ(sr_wal_open(&o, &w), 0);
	memset(&d, 0, sizeof(d));
	CHECK_EQ(ops->load(w, &d), 0);
	CHECK_EQ(ops->set_hard_state(w, 3, 0), 0);
	CHECK_EQ(ops->snapshot_begin(w, 10, 3, &c), 0);
	CHECK_EQ(ops->snapshot_write(w, 0, "state", 5), 0);
	CHECK_EQ(ops->snapshot_finish(w, 1), 0);
	sr_wal_close(w);
	w = NULL;
	CHECK_EQ(sr_wal_open(&o, &w), 0);
	memset(&d, 0, sizeof(d));
	CHECK_EQ(ops->load(w, &d), 0);
	CHECK_EQ(d.snapshot_index, 10);
	CHECK_EQ(d.snapshot_conf.n, 3);
	CHECK(sr_membership_is_joint(&d.snapshot_conf));
	CHECK_EQ(d.snapshot_conf.members[0].role, SR_ROLE_VOTER);
	CHECK_EQ(d.snapshot_conf.members[0].new_role, SR_ROLE_REMOVED);
	CHECK_EQ(d.snapshot_conf.members[1].role, SR_ROLE_LEARNER);
	CHECK_EQ(d.snapshot_conf.members[1].new_role, SR_ROLE_VOTER);
	CHECK_EQ(d.snapshot_conf.members[1].auto_promote, 1);
	CHECK_EQ(strcmp(d.snapshot_conf.members[1].addr, "b:2"), 0);
	CHECK_EQ(d.snapshot_conf.members[2].new_role, SR_ROLE_REMOVED);
	sr_wal_close(w);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	CHECK_EQ(system(cmd), 0);
}

int main(int argc, char **argv)
{
	return test_main(argc, argv);
}

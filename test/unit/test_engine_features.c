/*
 * test_engine_features.c — snapshots, membership changes, leadership
 * transfer and ReadIndex as deterministic scenarios (the ground etcd's
 * raft tests cover), on the in-process cluster of cluster.h.
 */
#include "cluster.h"

static uint32_t role_of(int node, sr_id id)
{
	const sr_member *m = sr_membership_find(
		sr_node_membership(C.node[node]), id);
	return m ? m->role : 0;
}

TEST(test_slow_follower_is_restored_by_snapshot_in_chunks)
{
	int l;
	C.chunk_bytes = 0;
	cluster_start_with(3, 50, 10);
	cluster_run(500);
	l = cluster_leader();
	CHECK(l != 0);
	{
		int slow = l == 3 ? 2 : 3;
		C.cut[slow] = 1;
		cluster_propose_n(l, 1, 300);
		cluster_run(300);
		CHECK(cluster_status(l).snapshot_index >= 250);
		CHECK(cluster_status(l).first_index > 10);
		C.cut[slow] = 0;
		cluster_run(1000);
		CHECK(C.msgs_by_type[SR_MSG_SNAPSHOT] > 0);
		CHECK(C.restores[slow] >= 1);
		CHECK_EQ(C.applied_sum[slow], C.applied_sum[l]);
		CHECK_EQ(C.applied_sum[l], 300 * 301 / 2);
		CHECK_EQ(cluster_status(slow).applied_index,
			 cluster_status(l).applied_index);
	}
	cluster_stop();
}

TEST(test_snapshot_transfer_uses_many_small_chunks)
{
	int l, slow;
	memset(&C, 0, sizeof(C));
	C.chunk_bytes = 4; /* the counter snapshot is 16 bytes */
	{
		uint32_t keep = C.chunk_bytes;
		cluster_start_with(3, 20, 0);
		C.chunk_bytes = keep;
	}
	cluster_run(500);
	l = cluster_leader();
	slow = l == 1 ? 2 : 1;
	C.cut[slow] = 1;
	cluster_propose_n(l, 1, 100);
	cluster_run(200);
	C.cut[slow] = 0;
	cluster_run(1000);
	CHECK(C.restores[slow] >= 1);
	CHECK_EQ(C.applied_sum[slow], 5050);
	cluster_stop();
}

TEST(test_restart_recovers_state_from_snapshot_and_log)
{
	int l, f;
	cluster_start_with(3, 50, 5);
	cluster_run(500);
	l = cluster_leader();
	cluster_propose_n(l, 1, 120);
	cluster_run(200);
	f = l == 1 ? 2 : 1;
	CHECK(cluster_status(f).snapshot_index > 0);
	cluster_restart(f);
	CHECK(C.restores[f] >= 1);
	cluster_run(500);
	CHECK_EQ(C.applied_sum[f], 120 * 121 / 2);
	cluster_stop();
}

/* snapshot_bytes: a snapshot once the applied entries hold that many
 * bytes, long before the entry count would have asked for one; the
 * count still triggers on its own; restarts count from the restore. */
TEST(test_snapshot_bytes_snapshots_by_volume)
{
	int l, f;
	uint64_t big = 1000; /* 1000 bytes per entry */
	char data[1000];

	cluster_snapshot_bytes = 20 * big;
	cluster_start_with(3, 100000, 2);
	cluster_run(500);
	l = cluster_leader();
	CHECK(l != 0);
	memset(data, 7, sizeof(data));
	for (int i = 0; i < 19; i++)
		CHECK_EQ(sr_node_propose(C.node[l], data, sizeof(data), NULL,
					 NULL),
			 0);
	cluster_run(200);
	CHECK_EQ(cluster_status(l).snapshot_index, 0);
	CHECK_EQ(sr_node_propose(C.node[l], data, sizeof(data), NULL, NULL), 0);
	cluster_run(200);
	/* 20 KB applied: every node took one, near the 21st entry */
	for (int i = 1; i <= 3; i++)
		CHECK(cluster_status(i).snapshot_index >= 20);
	/* small entries: 8 bytes each, 2500 needed; 100 are not enough */
	cluster_propose_n(l, 1, 100);
	cluster_run(300);
	CHECK(cluster_status(l).snapshot_index < 40);
	/* after a restart the count starts from the restored snapshot */
	f = l == 1 ? 2 : 1;
	cluster_restart(f);
	CHECK(C.restores[f] >= 1);
	cluster_run(300);
	CHECK(cluster_status(f).snapshot_index < 40);
	for (int i = 0; i < 20; i++)
		CHECK_EQ(sr_node_propose(C.node[l], data, sizeof(data), NULL,
					 NULL),
			 0);
	cluster_run(300);
	CHECK(cluster_status(f).snapshot_index >= 140);
	CHECK(cluster_status(l).snapshot_index >= 140);
	cluster_snapshot_bytes = 0;
	cluster_stop();
}

TEST(test_learner_added_with_auto_promote_catches_up_and_votes)
{
	int l;
	cluster_start(3);
	cluster_run(500);
	l = cluster_leader();
	cluster_propose_n(l, 1, 50);
	cluster_run(100);
	cluster_node_open(4, NULL); /* empty store, waits to be added */
	CHECK_EQ(sr_node_add(C.node[l], 4, "addr4", 1), 0);
	CHECK_EQ(role_of(l, 4), SR_ROLE_LEARNER);
	cluster_run(1000);
	CHECK_EQ(C.applied_sum[4], 50 * 51 / 2);
	CHECK_EQ(role_of(l, 4), SR_ROLE_VOTER);
	CHECK_EQ(role_of(4, 4), SR_ROLE_VOTER);
	CHECK(strcmp(sr_membership_find(sr_node_membership(C.node[4]), 4)->addr,
		     "addr4") == 0);
	cluster_stop();
}

TEST(test_learner_that_never_answers_is_not_promoted)
{
	int l;
	cluster_start(3);
	cluster_run(500);
	l = cluster_leader();
	CHECK_EQ(sr_node_add(C.node[l], 4, "", 1), 0); /* node 4 never runs */
	cluster_run(2000);
	CHECK_EQ(role_of(l, 4), SR_ROLE_LEARNER);
	cluster_stop();
}

/* sr_node_peer_status() fills every field: auto_promote too (kvnode's
 * INFO printed whatever the caller's array held). */
TEST(test_peer_status_reports_auto_promote)
{
	sr_peer_status ps[8];
	size_t n;
	int l, seen = 0;

	cluster_start(3);
	cluster_run(500);
	l = cluster_leader();
	CHECK_EQ(sr_node_add(C.node[l], 4, "", 1), 0); /* node 4 never runs */
	memset(ps, 0x5a, sizeof(ps));
	n = sr_node_peer_status(C.node[l], ps, 8);
	CHECK_EQ(n, 3);
	for (size_t i = 0; i < n; i++) {
		CHECK_EQ(ps[i].auto_promote, ps[i].id == 4);
		seen += ps[i].id == 4;
	}
	CHECK_EQ(seen, 1);
	cluster_stop();
}

TEST(test_many_pending_reads_complete_in_order)
{
	int l, f;
	static uint64_t who[2];
	cluster_start(3);
	cluster_run(500);
	l = cluster_leader();
	f = l == 1 ? 2 : 1;
	who[0] = (uint64_t)l;
	who[1] = (uint64_t)f;
	cluster_propose_n(l, 1, 10);
	cluster_run(50); /* acknowledged before the reads begin */
	CHECK_EQ(C.done_ok, 10);
	for (int i = 0; i < 20000; i++)
		CHECK_EQ(sr_node_read_index(C.node[i % 2 ? f : l], &who[i % 2]),
			 0);
	cluster_run(100);
	CHECK_EQ(C.reads_ok, 20000);
	CHECK_EQ(C.reads_err, 0);
	CHECK_EQ(C.last_read_sum, 55);
	cluster_stop();
}

TEST(test_promoted_learner_counts_toward_commit)
{
	int l, other = 0;
	cluster_start(3);
	cluster_run(500);
	l = cluster_leader();
	cluster_node_open(4, NULL);
	CHECK_EQ(sr_node_add(C.node[l], 4, "", 1), 0);
	cluster_run(500);
	CHECK_EQ(role_of(l, 4), SR_ROLE_VOTER);
	/* four voters: the leader, node 4 and one more make the majority */
	for (int i = 1; i <= 3; i++)
		if (i != l && !other)
			other = i;
	C.cut[other] = 1;
	cluster_propose_n(l, 1, 3);
	cluster_run(100);
	CHECK_EQ(C.done_ok, 3);
	/* without node 4 there is no majority of four */
	C.cut[4] = 1;
	cluster_propose_n(l, 10, 1);
	cluster_run(50);
	CHECK_EQ(C.done_ok, 3);
	C.cut[4] = 0;
	cluster_run(100);
	CHECK_EQ(C.done_ok, 4);
	cluster_stop();
}

TEST(test_learner_never_campaigns)
{
	int l;
	cluster_start(3);
	cluster_run(500);
	l = cluster_leader();
	cluster_node_open(4, NULL);
	CHECK_EQ(sr_node_add(C.node[l], 4, "", 0), 0);
	cluster_run(300);
	CHECK_EQ(role_of(4, 4), SR_ROLE_LEARNER);
	for (int i = 1; i <= 3; i++)
		C.cut[i] = 1;
	cluster_run(2000);
	CHECK_EQ(cluster_status(4).role, SR_FOLLOWER);
	cluster_stop();
}

TEST(test_second_configuration_change_is_refused_while_one_is_pending)
{
	int l;
	cluster_start(3);
	cluster_run(500);
	l = cluster_leader();
	cluster_node_open(4, NULL);
	cluster_node_open(5, NULL);
	CHECK_EQ(sr_node_add(C.node[l], 4, "", 0), 0);
	CHECK_EQ(sr_node_add(C.node[l], 5, "", 0), SR_ECONFPENDING);
	cluster_run(100);
	CHECK_EQ(sr_node_add(C.node[l], 5, "", 0), 0);
	cluster_stop();
}

TEST(test_new_leader_changes_configuration_only_after_own_term_commit)
{
	int l;
	cluster_start(3);
	l = cluster_run_until_leader(1000);
	CHECK(l != 0);
	/* The no-op of the new term is not committed yet. */
	CHECK(cluster_status(l).commit_index < cluster_status(l).last_index);
	cluster_node_open(4, NULL);
	CHECK_EQ(sr_node_add(C.node[l], 4, "", 0), SR_ECONFPENDING);
	cluster_run(20);
	CHECK_EQ(cluster_status(l).commit_index, cluster_status(l).last_index);
	CHECK_EQ(sr_node_add(C.node[l], 4, "", 0), 0);
	cluster_stop();
}

TEST(test_removed_node_ids_are_never_reused)
{
	int l, victim;
	cluster_start(3);
	cluster_run(500);
	l = cluster_leader();
	victim = l == 3 ? 2 : 3;
	CHECK_EQ(sr_node_remove(C.node[l], (sr_id)victim), 0);
	cluster_run(100);
	CHECK_EQ(role_of(l, (sr_id)victim), SR_ROLE_REMOVED);
	CHECK_EQ(sr_node_add(C.node[l], (sr_id)victim, "", 0), SR_EEXIST);
	CHECK_EQ(sr_node_remove(C.node[l], (sr_id)victim), SR_ENOTFOUND);
	cluster_stop();
}

TEST(test_removal_shrinks_the_quorum)
{
	int l, a = 0, b = 0;
	cluster_start(5);
	cluster_run(500);
	l = cluster_leader();
	for (int i = 1; i <= 5; i++) {
		if (i == l)
			continue;
		if (!a)
			a = i;
		else if (!b)
			b = i;
	}
	CHECK_EQ(sr_node_remove(C.node[l], (sr_id)a), 0);
	cluster_run(100);
	CHECK_EQ(sr_node_remove(C.node[l], (sr_id)b), 0);
	cluster_run(100);
	/* three voters left: the leader and one other make a majority */
	for (int i = 1; i <= 5; i++)
		if (i != l && i != a && i != b) {
			C.cut[i] = 1;
			break;
		}
	C.cut[a] = C.cut[b] = 1;
	cluster_propose_n(l, 1, 10);
	cluster_run(100);
	CHECK_EQ(C.done_ok, 10);
	cluster_stop();
}

TEST(test_removed_leader_steps_down_and_stays_quiet)
{
	int l, l2;
	uint64_t votes;
	cluster_start(3);
	cluster_run(500);
	l = cluster_leader();
	CHECK_EQ(sr_node_remove(C.node[l], (sr_id)l), 0);
	cluster_run(100);
	CHECK(cluster_status(l).role != SR_LEADER);
	cluster_run(1000);
	l2 = cluster_leader();
	CHECK(l2 != 0 && l2 != l);
	votes = C.msgs_by_type[SR_MSG_VOTE];
	cluster_run(2000);
	CHECK_EQ(cluster_status(l).role, SR_FOLLOWER);
	CHECK_EQ(C.msgs_by_type[SR_MSG_VOTE], votes);
	CHECK_EQ(cluster_leader(), l2);
	cluster_propose_n(l2, 1, 5);
	cluster_run(100);
	CHECK_EQ(C.done_ok, 5);
	cluster_stop();
}

TEST(test_leader_of_two_that_removed_itself_cannot_deadlock_the_cluster)
{
	int l, f;
	cluster_start(2);
	cluster_run(500);
	l = cluster_leader();
	f = 3 - l;
	/* the change never reaches the follower before the leader loses
	 * its leadership */
	C.cut[f] = 1;
	CHECK_EQ(sr_node_remove(C.node[l], (sr_id)l), 0);
	cluster_run(400);
	CHECK(cluster_status(l).role != SR_LEADER);
	C.cut[f] = 0;
	/* f needs l's vote and l's longer log refuses it: l must campaign
	 * under the new configuration (thesis §4.2.2), commit it, step down */
	cluster_run(2000);
	CHECK_EQ(cluster_leader(), f);
	CHECK_EQ(role_of(f, (sr_id)l), SR_ROLE_REMOVED);
	CHECK(cluster_status(l).role == SR_FOLLOWER);
	cluster_propose_n(f, 1, 3);
	cluster_run(50);
	CHECK_EQ(C.done_ok, 3);
	cluster_stop();
}

TEST(test_leadership_transfer_to_a_follower)
{
	int l, t;
	uint64_t v = 1;
	cluster_start(3);
	cluster_run(500);
	l = cluster_leader();
	t = l == 1 ? 2 : 1;
	CHECK_EQ(sr_node_transfer(C.node[l], (sr_id)t), 0);
	CHECK_EQ(sr_node_propose(C.node[l], &v, sizeof(v), NULL, NULL),
		 SR_ETRANSFER);
	cluster_run(50);
	CHECK_EQ(cluster_leader(), t);
	cluster_stop();
}

TEST(test_leadership_transfer_waits_for_a_slow_target)
{
	int l, t;
	cluster_start(3);
	cluster_run(500);
	l = cluster_leader();
	t = l == 1 ? 2 : 1;
	C.cut[t] = 1;
	cluster_propose_n(l, 1, 20);
	cluster_run(30);
	C.cut[t] = 0;
	CHECK_EQ(sr_node_transfer(C.node[l], (sr_id)t), 0);
	cluster_run(80);
	CHECK_EQ(cluster_leader(), t);
	CHECK_EQ(C.applied_sum[t], 210);
	cluster_stop();
}

TEST(test_leadership_transfer_refuses_bad_targets_and_aborts)
{
	int l, t;
	uint64_t v = 1;
	cluster_start(3);
	cluster_run(500);
	l = cluster_leader();
	t = l == 1 ? 2 : 1;
	CHECK_EQ(sr_node_transfer(C.node[l], 9), SR_ENOTFOUND);
	CHECK_EQ(sr_node_transfer(C.node[l], (sr_id)l), SR_EINVAL);
	CHECK_EQ(sr_node_transfer(C.node[t], (sr_id)l), SR_ENOTLEADER);
	cluster_node_open(4, NULL);
	CHECK_EQ(sr_node_add(C.node[l], 4, "", 0), 0);
	cluster_run(50);
	CHECK_EQ(sr_node_transfer(C.node[l], 4), SR_EINVAL);
	/* a target that cannot be reached: abort after an election timeout */
	C.cut[t] = 1;
	cluster_propose_n(l, 1, 1);
	CHECK_EQ(sr_node_transfer(C.node[l], (sr_id)t), 0);
	CHECK_EQ(sr_node_transfer(C.node[l], (sr_id)t), SR_ETRANSFER);
	cluster_run(150);
	CHECK_EQ(cluster_leader(), l);
	CHECK_EQ(sr_node_propose(C.node[l], &v, sizeof(v), NULL, NULL), 0);
	cluster_stop();
}

TEST(test_read_index_on_leader_and_follower)
{
	int l, f;
	cluster_start(3);
	cluster_run(500);
	l = cluster_leader();
	f = l == 1 ? 2 : 1;
	cluster_propose_n(l, 1, 10);
	CHECK_EQ(sr_node_read_index(C.node[l], &ids[l]), 0);
	cluster_run(50);
	CHECK_EQ(C.reads_ok, 1);
	CHECK_EQ(C.last_read_sum, 55);
	CHECK_EQ(sr_node_read_index(C.node[f], &ids[f]), 0);
	cluster_run(50);
	CHECK_EQ(C.reads_ok, 2);
	CHECK_EQ(C.last_read_sum, 55);
	cluster_stop();
}

TEST(test_read_index_needs_a_quorum)
{
	int l;
	cluster_start(3);
	cluster_run(500);
	l = cluster_leader();
	for (int i = 1; i <= 3; i++)
		if (i != l)
			C.cut[i] = 1;
	CHECK_EQ(sr_node_read_index(C.node[l], &ids[l]), 0);
	cluster_run(500);
	CHECK_EQ(C.reads_ok, 0);
	CHECK_EQ(C.reads_err, 1); /* failed when the leader stepped down */
	cluster_stop();
}

TEST(test_read_index_on_new_leader_waits_for_own_term_commit)
{
	int l;
	cluster_start(3);
	l = cluster_run_until_leader(1000);
	cluster_propose_n(l, 1, 5);
	cluster_run(50);
	C.cut[l] = 1;
	/* catch the next leader before its no-op commits */
	l = 0;
	for (int t = 0; t < 1000 && !l; t++) {
		cluster_run(1);
		l = cluster_leader();
	}
	CHECK(l != 0);
	CHECK(cluster_status(l).commit_index < cluster_status(l).last_index);
	CHECK_EQ(sr_node_read_index(C.node[l], &ids[l]), 0);
	CHECK_EQ(C.reads_ok, 0);
	cluster_run(50);
	CHECK_EQ(C.reads_ok, 1);
	CHECK_EQ(C.last_read_sum, 15);
	CHECK(C.last_read_index > 6); /* at least the new term's no-op */
	cluster_stop();
}

TEST(test_forced_recovery_after_losing_quorum)
{
	int l, s;
	sr_membership conf;
	cluster_start(3);
	cluster_run(500);
	l = cluster_leader();
	cluster_propose_n(l, 1, 10);
	cluster_run(50);
	/* two nodes are gone for good; the survivor is s */
	s = l;
	for (int i = 1; i <= 3; i++)
		if (i != s)
			C.cut[i] = 1;
	sr_node_destroy(C.node[s]);
	C.node[s] = NULL;
	memset(&conf, 0, sizeof(conf));
	sr_membership_add(&conf, (sr_id)s, SR_ROLE_VOTER, "");
	cluster_node_create(s);
	CHECK_EQ(sr_node_recover(C.node[s], &conf), 0);
	CHECK_EQ(sr_node_start(C.node[s], C.now), 0);
	cluster_run(300);
	CHECK_EQ(cluster_leader(), s);
	CHECK_EQ(C.applied_sum[s], 55);
	cluster_propose_n(s, 100, 1);
	cluster_run(10);
	CHECK_EQ(C.applied_sum[s], 155);
	cluster_stop();
}

int main(int argc, char **argv)
{
	return test_main(argc, argv);
}

/*
 * test_engine_smoke.c — the engine's basic paths on a tiny in-process
 * cluster (a FIFO network with no faults).  The simulator in test/sim
 * covers faults; this file checks the happy paths end to end.
 */
#include "cluster.h"

TEST(test_three_nodes_elect_a_leader_and_commit)
{
	int l;
	cluster_start(3);
	cluster_run(1000);
	l = cluster_leader();
	CHECK(l != 0);
	for (uint64_t v = 1; v <= 100; v++)
		CHECK_EQ(sr_node_propose(C.node[l], &v, sizeof(v), NULL, NULL),
			 0);
	cluster_run(200);
	CHECK_EQ(C.done_ok, 100);
	for (int i = 1; i <= 3; i++) {
		CHECK_EQ(C.applied_count[i], 100);
		CHECK_EQ(C.applied_sum[i], 5050);
	}
	cluster_stop();
}

TEST(test_follower_refuses_proposals_naming_the_leader)
{
	int l, f;
	sr_status st;
	uint64_t v = 1;
	cluster_start(3);
	cluster_run(1000);
	l = cluster_leader();
	CHECK(l != 0);
	f = l == 1 ? 2 : 1;
	CHECK_EQ(sr_node_propose(C.node[f], &v, sizeof(v), NULL, NULL),
		 SR_ENOTLEADER);
	sr_node_status(C.node[f], &st);
	CHECK_EQ(st.leader, l);
	cluster_stop();
}

TEST(test_new_leader_after_leader_isolated)
{
	int l, l2;
	uint64_t v = 7;
	cluster_start(5);
	cluster_run(1000);
	l = cluster_leader();
	CHECK(l != 0);
	C.cut[l] = 1;
	cluster_run(1000);
	l2 = cluster_leader();
	CHECK(l2 != 0 && l2 != l);
	CHECK_EQ(sr_node_propose(C.node[l2], &v, sizeof(v), NULL, NULL), 0);
	cluster_run(200);
	CHECK_EQ(C.done_ok, 1);
	/* the old leader stepped down (CheckQuorum) */
	{
		sr_status st;
		sr_node_status(C.node[l], &st);
		CHECK(st.role != SR_LEADER);
	}
	C.cut[l] = 0;
	cluster_run(1000);
	CHECK_EQ(C.applied_count[l], 1);
	cluster_stop();
}

TEST(test_single_node_cluster_commits_alone)
{
	uint64_t v = 3;
	cluster_start(1);
	cluster_run(10);
	CHECK_EQ(cluster_leader(), 1);
	CHECK_EQ(sr_node_propose(C.node[1], &v, sizeof(v), NULL, NULL), 0);
	cluster_run(1);
	CHECK_EQ(C.applied_sum[1], 3);
	cluster_stop();
}

int main(int argc, char **argv)
{
	return test_main(argc, argv);
}

/*
 * test_engine_smoke.c — the engine's basic paths on a tiny in-process
 * cluster (a FIFO network with no faults).  The simulator in test/sim
 * covers faults; this file checks the happy paths end to end.
 */
#include <seshat/mem.h>
#include <seshat/raft.h>

#include "testlib.h"

#define MAXN 5
#define QCAP 65536

struct qmsg {
	sr_msg m;
	sr_entry *ents;
	unsigned char *data;
};

struct cluster {
	int n;
	sr_node *node[MAXN + 1];
	sr_mem *mem[MAXN + 1];
	uint64_t applied_sum[MAXN + 1];
	uint64_t applied_count[MAXN + 1];
	int cut[MAXN + 1]; /* isolated from everyone */
	struct qmsg q[QCAP];
	size_t qh, qt;
	uint64_t now;
	int done_ok, done_err;
};

static struct cluster C;

static int net_send(void *ctx, const sr_msg *m)
{
	struct cluster *c = ctx;
	struct qmsg *q;
	size_t total = 0;
	if (c->qt - c->qh >= QCAP)
		return SR_EBUSY;
	q = &c->q[c->qt++ % QCAP];
	q->m = *m;
	q->ents = NULL;
	q->data = NULL;
	if (m->type == SR_MSG_APPEND && m->u.append.n_entries) {
		unsigned char *p;
		for (uint32_t i = 0; i < m->u.append.n_entries; i++)
			total += m->u.append.entries[i].len;
		q->ents = malloc(m->u.append.n_entries * sizeof(sr_entry));
		q->data = malloc(total + 1);
		p = q->data;
		for (uint32_t i = 0; i < m->u.append.n_entries; i++) {
			q->ents[i] = m->u.append.entries[i];
			if (q->ents[i].len)
				memcpy(p, q->ents[i].data, q->ents[i].len);
			q->ents[i].data = p;
			p += q->ents[i].len;
		}
		q->m.u.append.entries = q->ents;
	}
	return 0;
}

static int fsm_apply(void *ctx, const sr_entry *e, void **result)
{
	uint64_t *id = ctx;
	uint64_t v = 0;
	memcpy(&v, e->data, e->len < 8 ? e->len : 8);
	C.applied_sum[*id] += v;
	C.applied_count[*id]++;
	*result = NULL;
	return 0;
}

static void host_done(void *ctx, void *cookie, int status, sr_index index,
		      void *result)
{
	(void)ctx;
	(void)cookie;
	(void)index;
	(void)result;
	if (status == 0)
		C.done_ok++;
	else
		C.done_err++;
}

static void mem_done(void *ctx, uint64_t token, int status)
{
	sr_node_storage_done(ctx, token, status);
}

static const sr_transport_ops net_ops = { net_send };
static const sr_fsm_ops fsm_ops = { fsm_apply, NULL };
static uint64_t ids[MAXN + 1] = { 0, 1, 2, 3, 4, 5 };

static void cluster_start(int n)
{
	sr_membership conf;
	memset(&C, 0, sizeof(C));
	memset(&conf, 0, sizeof(conf));
	C.n = n;
	for (int i = 1; i <= n; i++)
		sr_membership_add(&conf, (sr_id)i, SR_ROLE_VOTER, "");
	for (int i = 1; i <= n; i++) {
		sr_config cfg;
		sr_mem_config mc = { .mode = SR_MEM_SYNC };
		CHECK_EQ(sr_mem_create(&mc, &C.mem[i]), 0);
		sr_config_init(&cfg, (sr_id)i);
		cfg.election_timeout_ms = 100;
		cfg.heartbeat_ms = 20;
		cfg.storage = sr_mem_ops();
		cfg.storage_ctx = C.mem[i];
		cfg.fsm = &fsm_ops;
		cfg.fsm_ctx = &ids[i];
		cfg.transport = &net_ops;
		cfg.transport_ctx = &C;
		cfg.host.done = host_done;
		CHECK_EQ(sr_node_create(&cfg, &C.node[i]), 0);
		sr_mem_set_done(C.mem[i], mem_done, C.node[i]);
		CHECK_EQ(sr_node_bootstrap(C.node[i], &conf), 0);
		CHECK_EQ(sr_node_start(C.node[i], 0), 0);
	}
}

static void cluster_stop(void)
{
	while (C.qh < C.qt) {
		struct qmsg *q = &C.q[C.qh++ % QCAP];
		free(q->ents);
		free(q->data);
	}
	for (int i = 1; i <= C.n; i++) {
		sr_node_destroy(C.node[i]);
		sr_mem_destroy(C.mem[i]);
	}
}

/* Deliver everything queued, then advance the clock by ms. */
static void cluster_run(uint64_t ms)
{
	uint64_t end = C.now + ms;
	while (C.now < end) {
		while (C.qh < C.qt) {
			struct qmsg *q = &C.q[C.qh++ % QCAP];
			sr_id to = q->m.to, from = q->m.from;
			if (to >= 1 && to <= (sr_id)C.n && !C.cut[to] &&
			    !C.cut[from])
				sr_node_step(C.node[to], &q->m);
			free(q->ents);
			free(q->data);
		}
		C.now++;
		for (int i = 1; i <= C.n; i++)
			sr_node_tick(C.node[i], C.now);
	}
}

static int cluster_leader(void)
{
	int leader = 0;
	for (int i = 1; i <= C.n; i++) {
		sr_status st;
		sr_node_status(C.node[i], &st);
		if (st.role == SR_LEADER && !C.cut[i])
			leader = i;
	}
	return leader;
}

TEST(test_three_nodes_elect_a_leader_and_commit)
{
	int l;
	cluster_start(3);
	cluster_run(1000);
	l = cluster_leader();
	CHECK(l != 0);
	for (uint64_t v = 1; v <= 100; v++)
		CHECK_EQ(sr_node_propose(C.node[l], &v, sizeof(v), NULL, NULL), 0);
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

/*
 * cluster.h — a tiny deterministic in-process cluster for engine tests:
 * SR_MEM_SYNC stores, a FIFO network with per-node isolation, and a
 * counter state machine (sum and count of applied 8-byte values) that
 * supports snapshots.  The simulator in test/sim adds faults; these
 * helpers keep scenario tests short.
 */
#ifndef SR_TEST_CLUSTER_H
#define SR_TEST_CLUSTER_H

#include <seshat/mem.h>
#include <seshat/raft.h>

#include "testlib.h"

#define MAXN 7
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
	uint64_t restores[MAXN + 1];
	int cut[MAXN + 1]; /* isolated from everyone */
	struct qmsg q[QCAP];
	size_t qh, qt;
	uint64_t now;
	int done_ok, done_err, last_err;
	int reads_ok, reads_err;
	sr_index last_read_index;
	uint64_t last_read_sum;
	uint64_t snapshot_threshold, snapshot_trailing;
	uint32_t chunk_bytes;
	uint64_t msgs_by_type[SR_MSG_TYPE_MAX + 1];
};

static struct cluster C;
/* The store vtable of new nodes (NULL: sr_mem_ops()); a test may wrap the
 * memory store's functions, with the sr_mem * as ctx. */
static const sr_storage_ops *cluster_storage_ops;
/* The state machine vtable of new nodes (NULL: the counter's fsm_ops);
 * its ctx is &ids[i] like the counter's. */
static const sr_fsm_ops *cluster_fsm_ops;
/* sr_config.snapshot_bytes of every node created while set. */
static uint64_t cluster_snapshot_bytes;
static uint64_t ids[MAXN + 1] = { 0, 1, 2, 3, 4, 5, 6, 7 };

static int net_send(void *ctx, const sr_msg *m)
{
	struct cluster *c = ctx;
	struct qmsg *q;
	size_t total = 0;
	if (c->qt - c->qh >= QCAP)
		return SR_EBUSY;
	if (m->type <= SR_MSG_TYPE_MAX)
		c->msgs_by_type[m->type]++;
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
	} else if (m->type == SR_MSG_SNAPSHOT) {
		size_t len = m->u.snapshot.len + m->u.snapshot.conf_len;
		q->data = malloc(len + 1);
		if (m->u.snapshot.len)
			memcpy(q->data, m->u.snapshot.data, m->u.snapshot.len);
		if (m->u.snapshot.conf_len)
			memcpy(q->data + m->u.snapshot.len, m->u.snapshot.conf,
			       m->u.snapshot.conf_len);
		q->m.u.snapshot.data = q->data;
		q->m.u.snapshot.conf = q->data + m->u.snapshot.len;
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

static int fsm_snapshot(void *ctx, sr_index index, sr_term term)
{
	uint64_t *id = ctx;
	uint64_t st[2] = { C.applied_sum[*id], C.applied_count[*id] };
	(void)index;
	(void)term;
	sr_node_snapshot_write(C.node[*id], st, sizeof(st));
	return sr_node_snapshot_done(C.node[*id], 0);
}

static int fsm_restore(void *ctx, sr_index index, sr_term term)
{
	uint64_t *id = ctx;
	uint64_t st[2] = { 0, 0 };
	size_t got = 0;
	int rv;
	(void)index;
	(void)term;
	rv = sr_node_snapshot_read(C.node[*id], 0, st, sizeof(st), &got);
	if (rv || got != sizeof(st))
		return SR_ECORRUPT;
	C.applied_sum[*id] = st[0];
	C.applied_count[*id] = st[1];
	C.restores[*id]++;
	return 0;
}

static void host_done(void *ctx, void *cookie, int status, sr_index index,
		      void *result)
{
	(void)ctx;
	(void)cookie;
	(void)index;
	(void)result;
	if (status == 0) {
		C.done_ok++;
	} else {
		C.done_err++;
		C.last_err = status;
	}
}

static void host_read_done(void *ctx, void *cookie, int status, sr_index index)
{
	uint64_t *id = cookie;
	(void)ctx;
	if (status == 0) {
		C.reads_ok++;
		C.last_read_index = index;
		C.last_read_sum = C.applied_sum[*id];
	} else {
		C.reads_err++;
	}
}

static void mem_done(void *ctx, uint64_t token, int status)
{
	sr_node_storage_done(ctx, token, status);
}

static const sr_transport_ops net_ops = { .send = net_send };
static const sr_fsm_ops fsm_ops = { .apply = fsm_apply,
				    .snapshot = fsm_snapshot,
				    .restore = fsm_restore };

/* Create node i on its (existing or new) store, not started. */
__attribute__((unused)) static void cluster_node_create(int i)
{
	sr_config cfg;
	if (!C.mem[i]) {
		sr_mem_config mc = { .mode = SR_MEM_SYNC };
		CHECK_EQ(sr_mem_create(&mc, &C.mem[i]), 0);
	}
	sr_config_init(&cfg, (sr_id)i);
	cfg.election_timeout_ms = 100;
	cfg.heartbeat_ms = 20;
	cfg.storage = cluster_storage_ops ? cluster_storage_ops : sr_mem_ops();
	cfg.storage_ctx = C.mem[i];
	cfg.fsm = cluster_fsm_ops ? cluster_fsm_ops : &fsm_ops;
	cfg.fsm_ctx = &ids[i];
	cfg.transport = &net_ops;
	cfg.transport_ctx = &C;
	cfg.host.done = host_done;
	cfg.host.read_done = host_read_done;
	cfg.snapshot_threshold = C.snapshot_threshold;
	cfg.snapshot_trailing = C.snapshot_trailing;
	cfg.snapshot_bytes = cluster_snapshot_bytes;
	if (C.chunk_bytes)
		cfg.snapshot_chunk_bytes = C.chunk_bytes;
	C.applied_sum[i] = C.applied_count[i] = 0;
	CHECK_EQ(sr_node_create(&cfg, &C.node[i]), 0);
	sr_mem_set_done(C.mem[i], mem_done, C.node[i]);
}

/* Create and start node i; bootstrap it with conf if not NULL. */
__attribute__((unused)) static void cluster_node_open(int i,
						      const sr_membership *conf)
{
	cluster_node_create(i);
	if (conf)
		CHECK_EQ(sr_node_bootstrap(C.node[i], conf), 0);
	CHECK_EQ(sr_node_start(C.node[i], C.now), 0);
}

/* n voters; call with snapshot settings in C already set if wanted. */
__attribute__((unused)) static void
cluster_start_with(int n, uint64_t threshold, uint64_t trailing)
{
	sr_membership conf;
	memset(&C, 0, sizeof(C));
	memset(&conf, 0, sizeof(conf));
	C.n = n;
	C.snapshot_threshold = threshold;
	C.snapshot_trailing = trailing;
	for (int i = 1; i <= n; i++)
		sr_membership_add(&conf, (sr_id)i, SR_ROLE_VOTER, "");
	for (int i = 1; i <= n; i++)
		cluster_node_open(i, &conf);
}

__attribute__((unused)) static void cluster_start(int n)
{
	cluster_start_with(n, 0, 0);
}

__attribute__((unused)) static void cluster_stop(void)
{
	while (C.qh < C.qt) {
		struct qmsg *q = &C.q[C.qh++ % QCAP];
		free(q->ents);
		free(q->data);
	}
	for (int i = 1; i <= MAXN; i++) {
		if (C.node[i])
			sr_node_destroy(C.node[i]);
		if (C.mem[i])
			sr_mem_destroy(C.mem[i]);
	}
	memset(C.node, 0, sizeof(C.node));
	memset(C.mem, 0, sizeof(C.mem));
}

/* Restart node i from what its store holds. */
__attribute__((unused)) static void cluster_restart(int i)
{
	sr_node_destroy(C.node[i]);
	C.node[i] = NULL;
	cluster_node_open(i, NULL);
}

/* Each millisecond, deliver what was queued before it (one network hop
 * per ms), then tick every node. */
__attribute__((unused)) static void cluster_run(uint64_t ms)
{
	uint64_t end = C.now + ms;
	while (C.now < end) {
		size_t upto = C.qt;
		while (C.qh < upto) {
			struct qmsg *q = &C.q[C.qh++ % QCAP];
			sr_id to = q->m.to, from = q->m.from;
			if (to >= 1 && to <= MAXN && C.node[to] && !C.cut[to] &&
			    !C.cut[from])
				sr_node_step(C.node[to], &q->m);
			free(q->ents);
			free(q->data);
		}
		C.now++;
		for (int i = 1; i <= MAXN; i++)
			if (C.node[i])
				sr_node_tick(C.node[i], C.now);
	}
}

__attribute__((unused)) static int cluster_leader(void)
{
	int leader = 0;
	for (int i = 1; i <= MAXN; i++) {
		sr_status st;
		if (!C.node[i])
			continue;
		sr_node_status(C.node[i], &st);
		if (st.role == SR_LEADER && !C.cut[i])
			leader = i;
	}
	return leader;
}

__attribute__((unused)) static sr_status cluster_status(int i)
{
	sr_status st;
	sr_node_status(C.node[i], &st);
	return st;
}

__attribute__((unused)) static void cluster_propose_n(int leader, uint64_t from,
						      uint64_t count)
{
	for (uint64_t v = from; v < from + count; v++)
		CHECK_EQ(sr_node_propose(C.node[leader], &v, sizeof(v), NULL,
					 NULL),
			 0);
}

/* Advance 1 ms at a time until some node is leader; return it. */
__attribute__((unused)) static int cluster_run_until_leader(uint64_t max_ms)
{
	for (uint64_t t = 0; t < max_ms; t++) {
		int l;
		cluster_run(1);
		l = cluster_leader();
		if (l)
			return l;
	}
	return 0;
}

#endif

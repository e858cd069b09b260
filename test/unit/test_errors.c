/*
 * test_errors.c — the engine's error contract (docs/api.md, "Errors of
 * the node's calls"): one table of what each public call returns on a node
 * that is not started, one a storage error stopped, and a follower; the
 * log line that names a refused configuration field; bootstrap on a store
 * that holds state; the transport's frame limit checked at create; and a
 * store that refuses appends for backpressure (SR_EBUSY), which must
 * refuse proposals for a while, not stop the node.
 */
#include <seshat/codec.h>

#include "cluster.h"

/* ------------------------------------------------------------------ */
/* The table                                                          */
/* ------------------------------------------------------------------ */

enum { NOT_STARTED, STOPPED, FOLLOWER, N_STATES };

static uint64_t cookie_id = 1;

static int call_tick(sr_node *n)
{
	return sr_node_tick(n, C.now);
}

static int call_step(sr_node *n)
{
	sr_msg m;
	sr_status st;
	sr_node_status(n, &st);
	memset(&m, 0, sizeof(m));
	m.type = SR_MSG_TIMEOUT_NOW; /* a stale one: ignored when running */
	m.from = st.id == 1 ? 2 : 1;
	m.to = st.id;
	m.term = 0;
	return sr_node_step(n, &m);
}

static int call_propose(sr_node *n)
{
	uint64_t v = 1;
	return sr_node_propose(n, &v, sizeof(v), NULL, NULL);
}

static int call_propose_batch(sr_node *n)
{
	uint64_t v = 1;
	sr_buf b = { &v, sizeof(v) };
	return sr_node_propose_batch(n, &b, 1, NULL, NULL);
}

static int call_read_index(sr_node *n)
{
	return sr_node_read_index(n, &cookie_id);
}

static int call_change(sr_node *n)
{
	sr_change ch[2] = { { SR_CHANGE_ADD_VOTER, 6, "x", 0 },
			    { SR_CHANGE_ADD_VOTER, 7, "y", 0 } };
	return sr_node_change(n, ch, 2, NULL);
}

static int call_add(sr_node *n)
{
	return sr_node_add(n, 6, "x", 0);
}

static int call_promote(sr_node *n)
{
	return sr_node_promote(n, 2);
}

static int call_remove(sr_node *n)
{
	return sr_node_remove(n, 2);
}

static int call_transfer(sr_node *n)
{
	return sr_node_transfer(n, 0);
}

static int call_snapshot(sr_node *n)
{
	return sr_node_snapshot(n);
}

static int call_bootstrap(sr_node *n)
{
	sr_membership conf;
	memset(&conf, 0, sizeof(conf));
	sr_membership_add(&conf, 1, SR_ROLE_VOTER, "");
	return sr_node_bootstrap(n, &conf);
}

static int call_recover(sr_node *n)
{
	sr_membership conf;
	memset(&conf, 0, sizeof(conf));
	sr_membership_add(&conf, 1, SR_ROLE_VOTER, "");
	return sr_node_recover(n, &conf);
}

static int call_start(sr_node *n)
{
	return sr_node_start(n, C.now);
}

/* Must match the table in docs/api.md. */
static const struct {
	const char *name;
	int (*call)(sr_node *n);
	int want[N_STATES];
} table[] = {
	{ "tick", call_tick, { SR_ESTATE, SR_ESHUTDOWN, 0 } },
	{ "step", call_step, { SR_ESTATE, SR_ESHUTDOWN, 0 } },
	{ "propose", call_propose, { SR_ESTATE, SR_ESHUTDOWN, SR_ENOTLEADER } },
	{ "propose_batch",
	  call_propose_batch,
	  { SR_ESTATE, SR_ESHUTDOWN, SR_ENOTLEADER } },
	{ "read_index", call_read_index, { SR_ESTATE, SR_ESHUTDOWN, 0 } },
	{ "change", call_change, { SR_ESTATE, SR_ESHUTDOWN, SR_ENOTLEADER } },
	{ "add", call_add, { SR_ESTATE, SR_ESHUTDOWN, SR_ENOTLEADER } },
	{ "promote", call_promote, { SR_ESTATE, SR_ESHUTDOWN, SR_ENOTLEADER } },
	{ "remove", call_remove, { SR_ESTATE, SR_ESHUTDOWN, SR_ENOTLEADER } },
	{ "transfer",
	  call_transfer,
	  { SR_ESTATE, SR_ESHUTDOWN, SR_ENOTLEADER } },
	{ "snapshot", call_snapshot, { SR_ESTATE, SR_ESHUTDOWN, 0 } },
	{ "bootstrap", call_bootstrap, { 0, SR_ESTATE, SR_ESTATE } },
	{ "recover", call_recover, { SR_EEXIST, SR_ESTATE, SR_ESTATE } },
	{ "start", call_start, { 0, SR_ESTATE, SR_ESTATE } },
};

static void check_row(int state, sr_node *n, size_t i)
{
	int got = table[i].call(n);
	if (got != table[i].want[state])
		TEST_FAIL("%s in state %d: %s (%d), want %s (%d)",
			  table[i].name, state, sr_strerror(got), got,
			  sr_strerror(table[i].want[state]),
			  table[i].want[state]);
}

TEST(test_errors_on_a_node_not_started)
{
	memset(&C, 0, sizeof(C));
	cluster_node_create(1);
	/* bootstrap, then recover (refused: one was given), then start,
	 * come last in the table and in that order */
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		check_row(NOT_STARTED, C.node[1], i);
	cluster_stop();
}

TEST(test_errors_on_a_stopped_node)
{
	uint64_t v = 1;
	sr_status st;
	cluster_start(1);
	cluster_run(10);
	CHECK_EQ(cluster_leader(), 1);
	CHECK_EQ(sr_mem_inject(C.mem[1], SR_MEM_FAIL_APPEND, SR_EIO), 0);
	(void)sr_node_propose(C.node[1], &v, sizeof(v), NULL, NULL);
	st = cluster_status(1);
	CHECK_EQ(st.role, SR_STOPPED);
	CHECK_EQ(st.error, SR_EIO); /* the cause is here, not in returns */
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		check_row(STOPPED, C.node[1], i);
	cluster_stop();
}

TEST(test_errors_on_a_follower)
{
	int l, f;
	cluster_start(3);
	l = cluster_run_until_leader(2000);
	CHECK(l != 0);
	cluster_run(100); /* everyone knows the leader, entries applied */
	f = l == 1 ? 2 : 1;
	CHECK_EQ(cluster_status(f).leader, l);
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		check_row(FOLLOWER, C.node[f], i);
	cluster_stop();
}

/* ------------------------------------------------------------------ */
/* sr_node_create says which field is wrong                           */
/* ------------------------------------------------------------------ */

static char last_log[512];
static int n_logs;

static void capture_log(void *ctx, int level, const char *line)
{
	(void)ctx;
	(void)level;
	snprintf(last_log, sizeof(last_log), "%s", line);
	n_logs++;
}

static sr_config base_config(void)
{
	sr_config cfg;
	if (!C.mem[1]) {
		sr_mem_config mc = { .mode = SR_MEM_SYNC };
		CHECK_EQ(sr_mem_create(&mc, &C.mem[1]), 0);
	}
	sr_config_init(&cfg, 1);
	cfg.storage = sr_mem_ops();
	cfg.storage_ctx = C.mem[1];
	cfg.fsm = &fsm_ops;
	cfg.fsm_ctx = &ids[1];
	cfg.transport = &net_ops;
	cfg.transport_ctx = &C;
	cfg.host.log = capture_log;
	return cfg;
}

/* create must fail with SR_EINVAL and log a line naming `field`. */
static void check_refused(const sr_config *cfg, const char *field)
{
	sr_node *n = (sr_node *)&n;
	last_log[0] = 0;
	n_logs = 0;
	CHECK_EQ(sr_node_create(cfg, &n), SR_EINVAL);
	CHECK(n == NULL);
	CHECK_EQ(n_logs, 1);
	if (!strstr(last_log, field))
		TEST_FAIL("log line '%s' does not name %s", last_log, field);
}

TEST(test_create_names_the_bad_field)
{
	sr_config cfg;
	sr_storage_ops no_read = *sr_mem_ops();
	memset(&C, 0, sizeof(C));

	cfg = base_config();
	cfg.id = 0;
	check_refused(&cfg, "id = 0");
	cfg = base_config();
	cfg.heartbeat_ms = cfg.election_timeout_ms;
	check_refused(&cfg, "heartbeat_ms = 1000");
	cfg = base_config();
	cfg.election_timeout_ms = 0;
	check_refused(&cfg, "election_timeout_ms = 0");
	cfg = base_config();
	cfg.storage = NULL;
	check_refused(&cfg, "storage");
	cfg = base_config();
	no_read.read = NULL;
	cfg.storage = &no_read;
	check_refused(&cfg, "storage->read");
	cfg = base_config();
	cfg.max_msg_bytes = 0;
	check_refused(&cfg, "max_msg_bytes = 0");
	cfg = base_config();
	cfg.snapshot_chunk_bytes = 0;
	check_refused(&cfg, "snapshot_chunk_bytes = 0");
	/* the log level filters it like any other line */
	cfg = base_config();
	cfg.max_inflight_msgs = 0;
	cfg.log_level = SR_LOG_ERROR + 1;
	n_logs = 0;
	{
		sr_node *n = NULL;
		CHECK_EQ(sr_node_create(&cfg, &n), SR_EINVAL);
	}
	CHECK_EQ(n_logs, 0);
	cluster_stop();
}

/* ------------------------------------------------------------------ */
/* Message size against the transport's frame                        */
/* ------------------------------------------------------------------ */

/* Payload bytes of an append and a snapshot chunk without data (the
 * codec's fixed fields; see docs/wire-protocol.md). */
#define APPEND_FIXED   60
#define SNAPSHOT_FIXED 65
#define CONF_MAX       (2 + SR_MAX_MEMBERS * (11 + SR_ADDR_MAX))

TEST(test_create_checks_messages_fit_the_transport_frame)
{
	sr_config cfg;
	sr_node *n = NULL;
	uint32_t need;
	memset(&C, 0, sizeof(C));

	/* the defaults fit the default frame */
	cfg = base_config();
	CHECK_EQ(cfg.transport_max_payload, SR_FRAME_MAX_DEFAULT);
	CHECK_EQ(sr_node_create(&cfg, &n), 0);
	sr_node_destroy(n);

	/* a 64 KiB frame with a 16 MiB largest entry: refused */
	cfg = base_config();
	cfg.transport_max_payload = 64u << 10;
	check_refused(&cfg, "transport_max_payload = 65536");
	CHECK(strstr(last_log, "max_entry_bytes") != NULL);

	/* the exact limit: append data, entry headers and fixed fields */
	cfg.max_entry_bytes = 32u << 10;
	cfg.max_msg_bytes = 16u << 10;
	cfg.max_msg_entries = 16;
	cfg.snapshot_chunk_bytes = 16u << 10;
	need = APPEND_FIXED + 16 * 24 + (16u << 10) + (32u << 10);
	cfg.transport_max_payload = need - 1;
	check_refused(&cfg, "transport_max_payload");
	cfg.transport_max_payload = need;
	CHECK_EQ(sr_node_create(&cfg, &n), 0);
	sr_node_destroy(n);

	/* snapshot chunks must fit too */
	cfg.snapshot_chunk_bytes = need;
	check_refused(&cfg, "snapshot_chunk_bytes");
	cfg.snapshot_chunk_bytes = need - SNAPSHOT_FIXED - CONF_MAX;
	CHECK_EQ(sr_node_create(&cfg, &n), 0);
	sr_node_destroy(n);

	/* 0: the transport has no limit */
	cfg.max_entry_bytes = UINT32_MAX;
	cfg.transport_max_payload = 0;
	CHECK_EQ(sr_node_create(&cfg, &n), 0);
	sr_node_destroy(n);
	cluster_stop();
}

TEST(test_too_big_proposal_is_refused_and_the_cluster_goes_on)
{
	int l;
	size_t big = (16u << 20) + 1; /* the default max_entry_bytes + 1 */
	unsigned char *p = calloc(1, big);
	sr_status st;
	CHECK(p != NULL);
	cluster_start(3);
	l = cluster_run_until_leader(2000);
	CHECK(l != 0);
	CHECK_EQ(sr_node_propose(C.node[l], p, big, NULL, NULL), SR_ETOOBIG);
	free(p);
	st = cluster_status(l);
	CHECK_EQ(st.uncommitted_bytes, 0);
	cluster_propose_n(l, 1, 10);
	cluster_run(200);
	for (int i = 1; i <= 3; i++)
		CHECK_EQ(C.applied_count[i], 10);
	cluster_stop();
}

/* ------------------------------------------------------------------ */
/* Bootstrap                                                          */
/* ------------------------------------------------------------------ */

TEST(test_bootstrap_refuses_a_store_that_holds_state)
{
	sr_membership one, two;
	memset(&C, 0, sizeof(C));
	memset(&one, 0, sizeof(one));
	memset(&two, 0, sizeof(two));
	sr_membership_add(&one, 1, SR_ROLE_VOTER, "a");
	sr_membership_add(&two, 1, SR_ROLE_VOTER, "b");
	sr_membership_add(&two, 2, SR_ROLE_VOTER, "c");

	cluster_node_create(1);
	CHECK_EQ(sr_node_bootstrap(C.node[1], &one), 0);
	/* a second configuration for the same node is refused */
	CHECK_EQ(sr_node_bootstrap(C.node[1], &two), SR_EEXIST);
	CHECK_EQ(sr_node_start(C.node[1], C.now), 0);
	cluster_run(10);
	CHECK_EQ(cluster_leader(), 1);

	/* restart on the same store: it holds state, nothing is written */
	sr_node_destroy(C.node[1]);
	C.node[1] = NULL;
	cluster_node_create(1);
	CHECK_EQ(sr_node_bootstrap(C.node[1], &two), SR_EEXIST);
	CHECK_EQ(sr_node_start(C.node[1], C.now), 0);
	CHECK_EQ(sr_node_membership(C.node[1])->n, 1);
	CHECK_EQ(strcmp(sr_node_membership(C.node[1])->members[0].addr, "a"),
		 0);
	cluster_run(300);
	CHECK_EQ(cluster_leader(), 1);
	cluster_stop();
}

/* ------------------------------------------------------------------ */
/* A store that refuses appends for backpressure                      */
/* ------------------------------------------------------------------ */

/* The memory store, except that append() says SR_EBUSY while busy[i]. */
static int busy[MAXN + 1];
static int busy_refused;
static sr_storage_ops busy_ops;

static int busy_append(void *ctx, uint64_t token, const sr_entry *e, size_t n)
{
	for (int i = 1; i <= MAXN; i++)
		if (C.mem[i] == ctx && busy[i]) {
			busy_refused++;
			return SR_EBUSY;
		}
	return sr_mem_ops()->append(ctx, token, e, n);
}

static void busy_setup(void)
{
	memset(busy, 0, sizeof(busy));
	busy_refused = 0;
	busy_ops = *sr_mem_ops();
	busy_ops.append = busy_append;
	cluster_storage_ops = &busy_ops;
}

TEST(test_store_busy_on_the_leader_refuses_proposals_then_recovers)
{
	int l;
	uint64_t v = 100;
	sr_status st;
	busy_setup();
	cluster_start(3);
	l = cluster_run_until_leader(2000);
	CHECK(l != 0);
	cluster_run(50);

	busy[l] = 1;
	/* accepted into the log; the store's refusal is retried */
	CHECK_EQ(sr_node_propose(C.node[l], &v, sizeof(v), NULL, NULL), 0);
	st = cluster_status(l);
	CHECK_EQ(st.role, SR_LEADER);
	CHECK_EQ(st.error, 0);
	CHECK(st.durable_index < st.last_index);
	/* while the store has not taken it, proposals are refused */
	CHECK_EQ(sr_node_propose(C.node[l], &v, sizeof(v), NULL, NULL),
		 SR_EBUSY);
	CHECK_EQ(sr_node_add(C.node[l], 6, "x", 0), SR_EBUSY);
	cluster_run(100);
	CHECK(busy_refused > 10); /* retried on every engine call */
	st = cluster_status(l);
	CHECK_EQ(st.role, SR_LEADER);
	CHECK(st.durable_index < st.last_index);
	CHECK_EQ(sr_node_propose(C.node[l], &v, sizeof(v), NULL, NULL),
		 SR_EBUSY);
	/* the store frees up: the next engine call hands the entry over */
	busy[l] = 0;
	cluster_run(1);
	st = cluster_status(l);
	CHECK_EQ(st.durable_index, st.last_index);
	cluster_propose_n(l, 1, 10);
	cluster_run(200);
	for (int i = 1; i <= 3; i++) {
		CHECK_EQ(C.applied_count[i], 11);
		CHECK_EQ(C.applied_sum[i], 100 + 55);
		CHECK_EQ(cluster_status(i).error, 0);
	}
	CHECK_EQ(cluster_status(l).role, SR_LEADER);
	cluster_stop();
	cluster_storage_ops = NULL;
}

TEST(test_store_busy_on_a_follower_delays_it_only)
{
	int l, f;
	busy_setup();
	cluster_start(3);
	l = cluster_run_until_leader(2000);
	CHECK(l != 0);
	cluster_run(50);
	f = l == 1 ? 2 : 1;
	busy[f] = 1;
	cluster_propose_n(l, 1, 5);
	cluster_run(50);
	CHECK(busy_refused > 0);
	CHECK_EQ(cluster_status(f).role, SR_FOLLOWER);
	CHECK(cluster_status(f).durable_index < cluster_status(l).last_index);
	cluster_propose_n(l, 6, 5); /* the other follower makes a majority */
	cluster_run(50);
	CHECK_EQ(C.applied_count[l], 10);
	busy[f] = 0;
	cluster_run(200);
	for (int i = 1; i <= 3; i++) {
		CHECK_EQ(C.applied_count[i], 10);
		CHECK_EQ(C.applied_sum[i], 55);
		CHECK_EQ(cluster_status(i).error, 0);
	}
	CHECK_EQ(cluster_status(f).durable_index, cluster_status(l).last_index);
	cluster_stop();
	cluster_storage_ops = NULL;
}

TEST(test_store_busy_backlog_is_truncated_with_its_entries)
{
	/* Entries a follower's store refused conflict with a new leader's:
	 * the backlog goes with them, and the follower writes the new
	 * leader's entries in their place. */
	int l, f, l2;
	busy_setup();
	cluster_start(5);
	l = cluster_run_until_leader(2000);
	CHECK(l != 0);
	cluster_run(50);
	f = l == 1 ? 2 : 1;
	for (int i = 1; i <= 5; i++)
		C.cut[i] = i != l && i != f;
	busy[f] = 1;
	cluster_propose_n(l, 1, 3); /* reach f only; never committed */
	cluster_run(5);
	CHECK(busy_refused > 0);
	/* the other three elect a leader while f and l are away */
	for (int i = 1; i <= 5; i++)
		C.cut[i] = i == l || i == f;
	cluster_run(1000);
	l2 = cluster_leader();
	CHECK(l2 != 0 && l2 != l && l2 != f);
	cluster_propose_n(l2, 10, 2);
	cluster_run(100);
	/* f rejoins: its unwritten entries are overwritten */
	C.cut[f] = 0;
	cluster_run(200);
	CHECK_EQ(cluster_status(f).error, 0);
	CHECK(cluster_status(f).durable_index < cluster_status(l2).last_index);
	busy[f] = 0;
	C.cut[l] = 0;
	cluster_run(1000);
	for (int i = 1; i <= 5; i++) {
		CHECK_EQ(cluster_status(i).error, 0);
		CHECK_EQ(C.applied_count[i], 2);
		CHECK_EQ(C.applied_sum[i], 21);
	}
	CHECK_EQ(cluster_status(f).durable_index,
		 cluster_status(l2).last_index);
	cluster_stop();
	cluster_storage_ops = NULL;
}

TEST(test_store_io_error_still_stops_the_node)
{
	uint64_t v = 1;
	cluster_storage_ops = NULL;
	cluster_start(1);
	cluster_run(10);
	CHECK_EQ(sr_mem_inject(C.mem[1], SR_MEM_FAIL_APPEND, SR_ENOSPC), 0);
	(void)sr_node_propose(C.node[1], &v, sizeof(v), NULL, NULL);
	CHECK_EQ(cluster_status(1).role, SR_STOPPED);
	CHECK_EQ(cluster_status(1).error, SR_ENOSPC);
	cluster_stop();
}

int main(int argc, char **argv)
{
	return test_main(argc, argv);
}

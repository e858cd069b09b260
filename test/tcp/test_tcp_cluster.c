/*
 * test_tcp_cluster.c — three Raft engines talking over real TCP on
 * loopback, each with the in-memory store, all on one sr_loop: the way a
 * host wires the library together.
 *
 * Wiring per node: the transport's on_message calls sr_node_tick() with
 * the current time (the engine resets its timers relative to the last
 * tick) and then sr_node_step(); the
 * engine sends through sr_tcp_transport_ops(); a loop timer calls
 * sr_node_tick() at sr_node_deadline() and is re-armed after every
 * engine call; conf_changed feeds member addresses to sr_tcp_set_peer().
 *
 * Scenario: a leader is elected and commits entries on every node; the
 * leader is cut off with the transport's partition hook; the other two
 * elect a new leader of a higher term and commit more; the partition
 * heals and the old leader steps down and catches up; every state
 * machine holds the same commands in the same order.
 *
 * Second scenario: the frame limit.  With a 64 KiB transport frame, an
 * engine whose largest entry could not fit is refused at create; with
 * limits that fit, a proposal over max_entry_bytes is refused
 * (SR_ETOOBIG) and the cluster goes on committing, large entries too.
 */
#include "harness.h"
#include "seshat/mem.h"
#include "seshat/raft.h"
#include "testlib.h"

#define N	 3
#define MAX_CMDS 256

struct peer {
	sr_id id;
	sr_tcp *tcp;
	sr_mem *mem;
	sr_node *node;
	uint64_t timer;
	uint64_t armed_for;
	uint64_t applied[MAX_CMDS]; /* commands in apply order */
	int n_applied;
	int done_ok;
	struct count_alloc ca;
};

static struct peer P[N];

/* Limits for cluster_start(); 0: defaults. */
static uint32_t frame_bytes, entry_bytes, msg_bytes, msg_entries;

static void tick_cb(sr_loop *loop, uint64_t id, void *ctx);

/* Arm the tick timer for the node's current deadline. */
static void rearm(struct peer *p)
{
	uint64_t d = sr_node_deadline(p->node);
	if (p->timer && d == p->armed_for)
		return;
	if (p->timer)
		sr_loop_timer_cancel(L, p->timer);
	uint64_t now = sr_loop_update_now(L);
	p->armed_for = d;
	sr_loop_timer_add(L, d > now ? d - now : 0, tick_cb, p, &p->timer);
}

static void tick_cb(sr_loop *loop, uint64_t id, void *ctx)
{
	struct peer *p = ctx;
	(void)id;
	p->timer = 0;
	sr_node_tick(p->node, sr_loop_now_ms(loop));
	rearm(p);
}

static void on_message(void *ctx, const sr_msg *m)
{
	struct peer *p = ctx;
	/* The engine knows the time of its last tick only, and a step
	 * resets timers relative to it: tell it the time first. */
	sr_node_tick(p->node, sr_loop_update_now(L));
	sr_node_step(p->node, m);
	rearm(p);
}

static int fsm_apply(void *ctx, const sr_entry *e, void **result)
{
	struct peer *p = ctx;
	uint64_t v = 0;
	*result = NULL;
	if (p->n_applied >= MAX_CMDS)
		return SR_EINVAL;
	if (e->len == sizeof(v))
		memcpy(&v, e->data, sizeof(v));
	else
		v = 1000000 + e->len; /* a large command: its length */
	p->applied[p->n_applied++] = v;
	return 0;
}

static void on_done(void *ctx, void *cookie, int status, sr_index index,
		    void *result)
{
	struct peer *p = ctx;
	(void)cookie;
	(void)index;
	(void)result;
	if (status == 0)
		p->done_ok++;
}

static void on_conf(void *ctx, const sr_membership *conf)
{
	struct peer *p = ctx;
	for (uint32_t i = 0; i < conf->n; i++) {
		const sr_member *m = &conf->members[i];
		if (m->id != p->id && m->role != SR_ROLE_REMOVED)
			sr_tcp_set_peer(p->tcp, m->id, m->addr);
	}
}

static void engine_log(void *ctx, int level, const char *line)
{
	(void)ctx;
	if (getenv("TCP_TEST_LOG"))
		fprintf(stderr, "[engine %d %llu] %s\n", level,
			(unsigned long long)now_ms(), line);
}

static void storage_done(void *ctx, uint64_t token, int status)
{
	sr_node_storage_done(ctx, token, status);
}

static const sr_fsm_ops fsm_ops = { .apply = fsm_apply };

/* The peers' shared secret for the next cluster_start(); NULL: none. */
static const char *cluster_secret;

static void cluster_start(void)
{
	static struct node logs[N]; /* only for the transport log buffers */
	sr_membership conf;
	memset(&conf, 0, sizeof(conf));
	if (sr_loop_create(NULL, &L))
		abort(); /* the test's own setup */
	for (int i = 0; i < N; i++) {
		struct peer *p = &P[i];
		memset(p, 0, sizeof(*p));
		p->id = (sr_id)i + 1;
		count_alloc_init(&p->ca);
		sr_tcp_config tc;
		sr_tcp_config_init(&tc, p->id, 42);
		tc.listen_addr = "127.0.0.1:0";
		tc.loop = L;
		tc.on_message = on_message;
		tc.ctx = p;
		tc.alloc = &p->ca.hooks;
		tc.reconnect_min_ms = 10;
		tc.reconnect_max_ms = 100;
		tc.log = node_log;
		tc.log_ctx = &logs[i];
		if (frame_bytes)
			tc.max_frame_bytes = frame_bytes;
		if (cluster_secret) {
			tc.secret = cluster_secret;
			tc.secret_len = strlen(cluster_secret);
		}
		if (sr_tcp_create(&tc, &p->tcp))
			abort();
		char addr[64];
		snprintf(addr, sizeof(addr), "127.0.0.1:%d",
			 sr_tcp_port(p->tcp));
		sr_membership_add(&conf, p->id, SR_ROLE_VOTER, addr);
	}
	for (int i = 0; i < N; i++) {
		struct peer *p = &P[i];
		sr_mem_config mc = { .mode = SR_MEM_SYNC };
		if (sr_mem_create(&mc, &p->mem))
			abort();
		sr_config cfg;
		sr_config_init(&cfg, p->id);
		cfg.election_timeout_ms = 300;
		cfg.heartbeat_ms = 50;
		cfg.seed = 1000 + p->id;
		cfg.storage = sr_mem_ops();
		cfg.storage_ctx = p->mem;
		cfg.fsm = &fsm_ops;
		cfg.fsm_ctx = p;
		cfg.transport = sr_tcp_transport_ops();
		cfg.transport_ctx = p->tcp;
		cfg.host.done = on_done;
		cfg.host.conf_changed = on_conf;
		cfg.host.log = engine_log;
		cfg.host_ctx = p;
		/* the engine's messages must fit the transport's frames */
		cfg.transport_max_payload = sr_tcp_max_payload(p->tcp);
		if (entry_bytes) {
			cfg.max_entry_bytes = entry_bytes;
			cfg.max_msg_bytes = msg_bytes;
			cfg.max_msg_entries = msg_entries;
			cfg.snapshot_chunk_bytes = msg_bytes;
		}
		if (sr_node_create(&cfg, &p->node))
			abort();
		sr_mem_set_done(p->mem, storage_done, p->node);
		on_conf(p, &conf); /* addresses now, whatever the engine does */
		if (sr_node_bootstrap(p->node, &conf) ||
		    sr_node_start(p->node, sr_loop_update_now(L)))
			abort();
		rearm(p);
	}
}

static void cluster_stop(void)
{
	for (int i = 0; i < N; i++) {
		struct peer *p = &P[i];
		if (p->timer)
			sr_loop_timer_cancel(L, p->timer);
		sr_node_destroy(p->node);
		sr_tcp_destroy(p->tcp);
		sr_mem_destroy(p->mem);
	}
	sr_loop_destroy(L);
	L = NULL;
}

static sr_status status_of(int i)
{
	sr_status st;
	sr_node_status(P[i].node, &st);
	return st;
}

/* The index of the single leader among the nodes in mask, or -1. */
static int leader_among(unsigned mask)
{
	int leader = -1;
	for (int i = 0; i < N; i++) {
		if (!(mask & (1u << i)) || status_of(i).role != SR_LEADER)
			continue;
		if (leader >= 0)
			return -1;
		leader = i;
	}
	if (leader < 0)
		return -1;
	sr_term term = status_of(leader).term;
	for (int i = 0; i < N; i++)
		if ((mask & (1u << i)) && (status_of(i).term != term ||
					   status_of(i).leader != P[leader].id))
			return -1;
	return leader;
}

static int propose(int leader, uint64_t from, uint64_t n)
{
	for (uint64_t v = from; v < from + n; v++) {
		int rc = sr_node_propose(P[leader].node, &v, sizeof(v), NULL,
					 NULL);
		if (rc)
			return rc;
	}
	rearm(&P[leader]);
	return 0;
}

static int all_applied(unsigned mask, int n)
{
	for (int i = 0; i < N; i++)
		if ((mask & (1u << i)) && P[i].n_applied < n)
			return 0;
	return 1;
}

static void cut(int i, int on)
{
	for (int j = 0; j < N; j++) {
		if (j == i)
			continue;
		sr_tcp_partition(P[i].tcp, P[j].id, on);
		sr_tcp_partition(P[j].tcp, P[i].id, on);
	}
}

static void elect_commit_and_survive_a_partition(void)
{
	cluster_start();
	const unsigned all = (1u << N) - 1;

	int leader = -1;
	RUN_UNTIL((leader = leader_among(all)) >= 0, 8000);
	CHECK(leader >= 0);
	sr_term term1 = status_of(leader).term;

	CHECK_EQ(propose(leader, 1, 50), 0);
	RUN_UNTIL(all_applied(all, 50), 5000);
	CHECK(all_applied(all, 50));
	CHECK_EQ(P[leader].done_ok, 50);

	/* cut the leader off; the others elect a new one */
	cut(leader, 1);
	unsigned rest = all & ~(1u << leader);
	int second = -1;
	RUN_UNTIL((second = leader_among(rest)) >= 0, 8000);
	CHECK(second >= 0 && second != leader);
	CHECK(status_of(second).term > term1);
	CHECK_EQ(propose(second, 51, 20), 0);
	RUN_UNTIL(all_applied(rest, 70), 5000);
	CHECK(all_applied(rest, 70));
	CHECK_EQ(P[leader].n_applied, 50); /* the old leader saw none */

	/* heal: the old leader rejoins as a follower and catches up */
	cut(leader, 0);
	RUN_UNTIL(all_applied(all, 70) && leader_among(all) >= 0, 8000);
	CHECK(all_applied(all, 70));
	CHECK(leader_among(all) >= 0);
	CHECK(status_of(leader).role != SR_LEADER ||
	      status_of(leader).term > status_of(second).term);
	for (int i = 0; i < N; i++) {
		CHECK_EQ(P[i].n_applied, 70);
		for (int k = 0; k < 70; k++)
			CHECK_EQ(P[i].applied[k], (uint64_t)k + 1);
	}
	sr_tcp_stats st;
	sr_tcp_stats_get(P[second].tcp, &st);
	CHECK(st.msgs_sent > 0 && st.proto_errors == 0);
	sr_tcp_auth_stats as;
	sr_tcp_auth_stats_get(P[second].tcp, &as);
	CHECK_EQ(as.enabled, cluster_secret != NULL);
	CHECK_EQ(as.failures, 0);
	/* healing reconnects: more handshakes than the first four */
	CHECK(cluster_secret ? as.ok > 4 : as.ok == 0);
	cluster_stop();
	for (int i = 0; i < N; i++)
		CHECK_EQ(P[i].ca.live, 0);
}

TEST(test_three_engines_over_tcp_elect_commit_and_survive_a_partition)
{
	cluster_secret = NULL;
	elect_commit_and_survive_a_partition();
}

/* The same with authenticated peers: every reconnect after the partition
 * goes through the challenge-response again. */
TEST(test_three_engines_with_a_cluster_secret_do_the_same)
{
	cluster_secret = "a secret for the three engines";
	elect_commit_and_survive_a_partition();
	cluster_secret = NULL;
}

static int log_has;
static const char *log_want;

static void find_log(void *ctx, int level, const char *line)
{
	(void)ctx;
	(void)level;
	if (log_want && strstr(line, log_want))
		log_has = 1;
}

TEST(test_entries_larger_than_the_frame_are_refused_and_commits_go_on)
{
	const unsigned all = (1u << N) - 1;
	sr_config cfg;
	sr_node *n = NULL;
	sr_mem *mem = NULL;
	sr_mem_config mc = { .mode = SR_MEM_SYNC };

	/* defaults (16 MiB entries) against a 64 KiB frame: refused */
	CHECK_EQ(sr_mem_create(&mc, &mem), 0);
	sr_config_init(&cfg, 1);
	cfg.storage = sr_mem_ops();
	cfg.storage_ctx = mem;
	cfg.fsm = &fsm_ops;
	cfg.transport = sr_tcp_transport_ops();
	cfg.host.log = find_log;
	cfg.transport_max_payload = 64u << 10;
	log_want = "transport_max_payload = 65536";
	CHECK_EQ(sr_node_create(&cfg, &n), SR_EINVAL);
	CHECK(log_has);
	sr_mem_destroy(mem);

	frame_bytes = 64u << 10;
	entry_bytes = 32u << 10;
	msg_bytes = 16u << 10;
	msg_entries = 256;
	cluster_start();
	int leader = -1;
	RUN_UNTIL((leader = leader_among(all)) >= 0, 8000);
	CHECK(leader >= 0);
	CHECK_EQ(propose(leader, 1, 5), 0);

	/* over max_entry_bytes (and over the frame): refused */
	static unsigned char big[40u << 10];
	CHECK_EQ(sr_node_propose(P[leader].node, big, sizeof(big), NULL, NULL),
		 SR_ETOOBIG);
	/* the largest allowed entry crosses the wire */
	CHECK_EQ(sr_node_propose(P[leader].node, big, entry_bytes, NULL, NULL),
		 0);
	CHECK_EQ(propose(leader, 6, 20), 0);
	RUN_UNTIL(all_applied(all, 26), 5000);
	for (int i = 0; i < N; i++) {
		CHECK_EQ(P[i].n_applied, 26);
		for (int k = 0; k < 5; k++)
			CHECK_EQ(P[i].applied[k], (uint64_t)k + 1);
		CHECK_EQ(P[i].applied[5], 1000000 + (32u << 10));
		for (int k = 6; k < 26; k++)
			CHECK_EQ(P[i].applied[k], (uint64_t)k);
	}
	CHECK(leader_among(all) == leader);
	sr_tcp_stats st;
	sr_tcp_stats_get(P[leader].tcp, &st);
	CHECK_EQ(st.proto_errors, 0);
	cluster_stop();
	frame_bytes = entry_bytes = msg_bytes = msg_entries = 0;
}

int main(int argc, char **argv)
{
	return test_main(argc, argv);
}

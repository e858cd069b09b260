/*
 * test_groups.c — many Raft groups in one sr_server (seshat/server.h,
 * "Many groups"): three servers in this process, on one loop, talking
 * over real TCP on loopback, each carrying the same set of groups.
 *
 * Every group's state machine records the values it applied, so the
 * checks compare, group by group, what each member applied with what was
 * proposed and acknowledged.  The leaders are spread over the three
 * servers with leadership transfers (group k led by server k % 3), which
 * the checks then rely on: killing one server kills a third of the
 * leaders at once.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "server_testlib.h"
#include "seshat/server.h"
#include "testlib.h"

#define NS   3	 /* servers */
#define MAXG 64	 /* groups per server */
#define MAXV 256 /* values per group */

struct gstate {
	int member;
	uint32_t gid;
	uint64_t applied[MAXV];
	int n_applied;
	int done_ok, done_err;
	int reentrant_rc;
	int try_reentry;
	int reads_ok, reads_err;
	sr_index read_min; /* lowest read index returned */
};

struct server {
	sr_id id;
	sr_server *srv;
	char addr[64];
	char dir[256];
	int errors;
};

static struct server S[NS];
static struct gstate G[NS][MAXG];
static sr_group *GR[NS][MAXG];
/* Values acknowledged (done with status 0) per group, any member. */
static uint64_t acked[MAXG][MAXV];
static int n_acked[MAXG];
static sr_index ack_index[MAXG]; /* highest index acknowledged */
static sr_loop *L;
static int no_coalesce = -1; /* this server: tcp.coalesce_max_bytes 0 */

static void slog(void *ctx, int level, const char *line)
{
	struct server *s = ctx;

	if (getenv("SERVER_TEST_LOG"))
		fprintf(stderr, "[%llu %d] %s\n", (unsigned long long)s->id,
			level, line);
	if (level >= SR_LOG_ERROR)
		s->errors++;
}

static int g_apply(void *ctx, const sr_entry *e, void **result)
{
	struct gstate *g = ctx;
	uint64_t v;

	*result = NULL;
	if (e->len != sizeof(v) || g->n_applied >= MAXV)
		return SR_EINVAL;
	memcpy(&v, e->data, sizeof(v));
	g->applied[g->n_applied++] = v;
	return 0;
}

static const sr_fsm_ops gfsm = { .apply = g_apply };

/* Snapshots: the list of values applied, written and read whole. */
static int g_snapshot(void *ctx, sr_index index, sr_term term)
{
	struct gstate *g = ctx;
	sr_node *node = sr_group_node(GR[g->member][g->gid]);

	(void)index;
	(void)term;
	sr_node_snapshot_write(node, g->applied,
			       (size_t)g->n_applied * sizeof(uint64_t));
	return sr_node_snapshot_done(node, 0);
}

static int g_restore(void *ctx, sr_index index, sr_term term)
{
	struct gstate *g = ctx;
	sr_node *node = sr_group_node(GR[g->member][g->gid]);
	size_t got = 0, n;
	int rc;

	(void)index;
	(void)term;
	do {
		rc = sr_node_snapshot_read(node, got, (char *)g->applied + got,
					   sizeof(g->applied) - got, &n);
		got += n;
	} while (rc == 0 && n > 0 && got < sizeof(g->applied));
	g->n_applied = (int)(got / sizeof(uint64_t));
	return rc;
}

static const sr_fsm_ops gfsm_snap = { .apply = g_apply,
				      .snapshot = g_snapshot,
				      .restore = g_restore };
static int use_snapshots;
static int use_wal; /* SR_SERVER_WAL in S[i].dir, else memory */
static char tmpdir[128];

static void g_done(void *ctx, void *cookie, int status, sr_index index,
		   void *result)
{
	struct gstate *g = ctx;

	(void)result;
	if (status == 0) {
		g->done_ok++;
		if (index > ack_index[g->gid])
			ack_index[g->gid] = index;
		if (n_acked[g->gid] < MAXV)
			acked[g->gid][n_acked[g->gid]++] = (uintptr_t)cookie;
	} else {
		g->done_err++;
	}
	if (g->try_reentry) {
		g->try_reentry = 0;
		g->reentrant_rc = sr_group_propose(GR[g->member][g->gid], "x",
						   1, NULL, NULL);
	}
}

static void g_read_done(void *ctx, void *cookie, int status, sr_index index)
{
	struct gstate *g = ctx;

	(void)cookie;
	if (status) {
		g->reads_err++;
		return;
	}
	if (!g->reads_ok || index < g->read_min)
		g->read_min = index;
	g->reads_ok++;
}

static void servers_init(void)
{
	memset(S, 0, sizeof(S));
	memset(G, 0, sizeof(G));
	memset(GR, 0, sizeof(GR));
	memset(n_acked, 0, sizeof(n_acked));
	memset(ack_index, 0, sizeof(ack_index));
	no_coalesce = -1;
	use_snapshots = 0;
	use_wal = 0;
	CHECK_EQ(sr_loop_create(NULL, &L), 0);
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/sr-groups-test.XXXXXX");
	CHECK(mkdtemp(tmpdir) != NULL);
	for (int i = 0; i < NS; i++) {
		S[i].id = (sr_id)i + 1;
		snprintf(S[i].addr, sizeof(S[i].addr), "127.0.0.1:%d",
			 free_port());
		snprintf(S[i].dir, sizeof(S[i].dir), "%s/s%d", tmpdir, i + 1);
	}
}

static void servers_free(void)
{
	for (int i = 0; i < NS; i++) {
		sr_server_destroy(S[i].srv);
		S[i].srv = NULL;
	}
	sr_loop_destroy(L);
	L = NULL;
	if (tmpdir[0]) {
		char cmd[256];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", tmpdir);
		tmpdir[0] = 0;
	}
}

static void server_config(sr_server_config *c, int i)
{
	sr_server_config_init(c, S[i].id);
	c->listen_addr = S[i].addr;
	c->storage = use_wal ? SR_SERVER_WAL : SR_SERVER_MEM;
	c->data_dir = S[i].dir;
	c->no_default_group = 1;
	c->log = slog;
	c->log_ctx = &S[i];
	c->loop = L;
	/* Generous: 3 x many groups share one loop on a shared machine. */
	c->raft.election_timeout_ms = 400;
	c->raft.heartbeat_ms = 40;
	c->raft.snapshot_threshold = 0; /* on demand only */
	c->raft.snapshot_trailing = 2;
	if (i == no_coalesce)
		c->tcp.coalesce_max_bytes = 0;
}

static void start_server(int i)
{
	sr_server_config c;

	server_config(&c, i);
	CHECK_EQ(sr_server_create(&c, &S[i].srv), 0);
	CHECK_EQ(sr_server_start(S[i].srv), 0);
}

static void group_config(sr_group_config *gc, int i, uint32_t k)
{
	sr_group_config_init(gc, k);
	for (int j = 0; j < NS; j++)
		sr_membership_add(&gc->peers, S[j].id, SR_ROLE_VOTER,
				  S[j].addr);
	G[i][k].member = i;
	G[i][k].gid = k;
	gc->fsm = use_snapshots ? &gfsm_snap : &gfsm;
	gc->fsm_ctx = &G[i][k];
	gc->host.done = g_done;
	gc->host.read_done = g_read_done;
	gc->host_ctx = &G[i][k];
}

static void create_group(int i, uint32_t k)
{
	sr_group_config gc;

	group_config(&gc, i, k);
	CHECK_EQ(sr_server_group_create(S[i].srv, &gc, &GR[i][k]), 0);
	CHECK(GR[i][k] != NULL);
	CHECK(sr_server_group(S[i].srv, k) == GR[i][k]);
	CHECK_EQ(sr_group_id(GR[i][k]), k);
	CHECK(sr_group_server(GR[i][k]) == S[i].srv);
}

static void run_for(uint64_t ms)
{
	uint64_t end = now_ms() + ms;

	while (now_ms() < end)
		sr_loop_run_once(L, 5);
}

/* The member leading group k (-1: none yet). */
static int leader_of(uint32_t k)
{
	for (int i = 0; i < NS; i++) {
		sr_status st;
		if (!S[i].srv || !GR[i][k])
			continue;
		sr_group_status(GR[i][k], &st);
		if (st.role == SR_LEADER)
			return i;
	}
	return -1;
}

static int all_led(uint32_t ng)
{
	for (uint32_t k = 0; k < ng; k++)
		if (leader_of(k) < 0)
			return 0;
	return 1;
}

static int run_until_led(uint32_t ng, uint64_t ms)
{
	uint64_t end = now_ms() + ms;

	while (!all_led(ng)) {
		if (now_ms() > end)
			return 0;
		sr_loop_run_once(L, 5);
	}
	return 1;
}

/* Move group k's leadership to server k % NS; 1 once every group is
 * led where it should be. */
static int spread_leaders(uint32_t ng, uint64_t ms)
{
	uint64_t end = now_ms() + ms;

	for (;;) {
		int placed = 0;
		for (uint32_t k = 0; k < ng; k++) {
			int l = leader_of(k);
			if (l == (int)(k % NS))
				placed++;
			else if (l >= 0)
				sr_group_transfer(GR[l][k], S[k % NS].id);
		}
		if (placed == (int)ng)
			return 1;
		if (now_ms() > end)
			return 0;
		run_for(30);
	}
}

static int propose_on_leader(uint32_t k, uint64_t v)
{
	int l = leader_of(k);

	if (l < 0)
		return SR_ENOTLEADER;
	return sr_group_propose(GR[l][k], &v, sizeof(v), (void *)(uintptr_t)v,
				NULL);
}

/* Three servers carrying groups 0..ng-1, every group led by k % NS;
 * server nc (-1: none) with heartbeat coalescing off. */
static void start_cluster_nc(uint32_t ng, int nc)
{
	servers_init();
	no_coalesce = nc;
	for (int i = 0; i < NS; i++) {
		start_server(i);
		for (uint32_t k = 0; k < ng; k++)
			create_group(i, k);
	}
	CHECK(run_until_led(ng, 20000));
	CHECK(spread_leaders(ng, 20000));
}

static void start_cluster(uint32_t ng)
{
	start_cluster_nc(ng, -1);
}

/* Every live member of group k applied at least n values. */
static int applied_all(uint32_t k, int n)
{
	for (int i = 0; i < NS; i++)
		if (S[i].srv && GR[i][k] && G[i][k].n_applied < n)
			return 0;
	return 1;
}

static int run_until_applied(uint32_t ng, int n, uint64_t ms)
{
	uint64_t end = now_ms() + ms;

	for (;;) {
		uint32_t k;
		for (k = 0; k < ng && applied_all(k, n); k++)
			;
		if (k == ng)
			return 1;
		if (now_ms() > end)
			return 0;
		sr_loop_run_once(L, 5);
	}
}

/* Every live member applied the same sequence in group k, holding every
 * acknowledged value. */
static void check_group_agrees(uint32_t k)
{
	int ref = -1;

	for (int i = 0; i < NS; i++) {
		if (!S[i].srv || !GR[i][k])
			continue;
		if (ref < 0) {
			ref = i;
			continue;
		}
		int n = G[i][k].n_applied < G[ref][k].n_applied
				? G[i][k].n_applied
				: G[ref][k].n_applied;
		CHECK_EQ(memcmp(G[i][k].applied, G[ref][k].applied,
				(size_t)n * sizeof(uint64_t)),
			 0);
	}
	CHECK(ref >= 0);
	for (int a = 0; a < n_acked[k]; a++) {
		int found = 0;
		for (int j = 0; j < G[ref][k].n_applied && !found; j++)
			found = G[ref][k].applied[j] == acked[k][a];
		if (!found)
			TEST_FAIL("group %u lost acknowledged value %llu", k,
				  (unsigned long long)acked[k][a]);
	}
}

/* ------------------------------------------------------------------ */

TEST(test_every_group_elects_replicates_and_shares_one_connection)
{
	const uint32_t ng = 24;
	sr_server_stats st;
	sr_tcp_stats ts;
	int led[NS] = { 0 };

	start_cluster(ng);
	for (uint32_t k = 0; k < ng; k++)
		led[leader_of(k)]++;
	for (int i = 0; i < NS; i++)
		CHECK_EQ(led[i], ng / NS);
	for (uint64_t v = 1; v <= 10; v++)
		for (uint32_t k = 0; k < ng; k++)
			CHECK_EQ(propose_on_leader(k, k * 1000 + v), 0);
	CHECK(run_until_applied(ng, 10, 20000));
	for (uint32_t k = 0; k < ng; k++) {
		check_group_agrees(k);
		CHECK_EQ(n_acked[k], 10);
		for (int i = 0; i < NS; i++)
			for (int v = 0; v < 10; v++)
				CHECK_EQ(G[i][k].applied[v],
					 k * 1000 + (uint64_t)v + 1);
	}
	for (int i = 0; i < NS; i++) {
		sr_server_stats_get(S[i].srv, &st);
		CHECK_EQ(st.groups, ng);
		CHECK_EQ(st.peers, NS - 1);
		CHECK(st.msgs_in > 0 && st.msgs_out > 0);
		CHECK_EQ(st.msgs_unknown, 0);
		CHECK_EQ(S[i].errors, 0);
		CHECK(sr_server_default_group(S[i].srv) == NULL);
		CHECK(sr_server_node(S[i].srv) == NULL);
		CHECK_EQ(sr_server_propose(S[i].srv, "x", 1, NULL, NULL),
			 SR_ESTATE);
		/* One outgoing connection per peer process carries all the
		 * groups (a reconnect would add one; none happened). */
		sr_tcp_stats_get(sr_server_tcp(S[i].srv), &ts);
		CHECK_EQ(ts.connects, NS - 1);
	}
	servers_free();
}

TEST(test_killing_the_server_of_several_leaders_reelects_every_group)
{
	const uint32_t ng = 12;
	uint64_t v = 1;

	start_cluster(ng);
	for (; v <= 5; v++)
		for (uint32_t k = 0; k < ng; k++)
			CHECK_EQ(propose_on_leader(k, k * 1000 + v), 0);
	CHECK(run_until_applied(ng, 5, 20000));
	/* More proposals, some still in flight when server 0 dies with
	 * the leadership of groups 0, 3, 6 and 9: those may or may not
	 * survive; every acknowledged one must. */
	for (; v <= 8; v++)
		for (uint32_t k = 0; k < ng; k++)
			CHECK_EQ(propose_on_leader(k, k * 1000 + v), 0);
	sr_loop_run_once(L, 0);
	sr_server_destroy(S[0].srv);
	S[0].srv = NULL;
	memset(GR[0], 0, sizeof(GR[0]));
	CHECK(run_until_led(ng, 20000));
	for (uint32_t k = 0; k < ng; k++)
		CHECK(leader_of(k) > 0);
	for (; v <= 12; v++)
		for (uint32_t k = 0; k < ng; k++)
			CHECK_EQ(propose_on_leader(k, k * 1000 + v), 0);
	run_for(200);
	for (uint32_t k = 0; k < ng; k++) {
		uint64_t end = now_ms() + 20000;
		/* Each group commits its last 4 values on the survivors. */
		while (G[1][k].done_ok + G[2][k].done_ok < 4 && now_ms() < end)
			sr_loop_run_once(L, 5);
	}
	CHECK(run_until_applied(ng, 9, 20000));
	for (uint32_t k = 0; k < ng; k++) {
		CHECK(n_acked[k] >= 9);
		check_group_agrees(k);
	}
	servers_free();
}

TEST(test_groups_created_and_destroyed_at_run_time)
{
	sr_server_stats st;

	servers_init();
	for (int i = 0; i < NS; i++)
		start_server(i);
	/* Group 5 on all three, created after start: elects, commits. */
	for (int i = 0; i < NS; i++)
		create_group(i, 5);
	{
		uint64_t end = now_ms() + 20000;
		while (leader_of(5) < 0 && now_ms() < end)
			sr_loop_run_once(L, 5);
	}
	CHECK(leader_of(5) >= 0);
	CHECK_EQ(propose_on_leader(5, 5001), 0);
	{
		uint64_t end = now_ms() + 20000;
		while (!applied_all(5, 1) && now_ms() < end)
			sr_loop_run_once(L, 5);
	}
	CHECK(applied_all(5, 1));
	/* Group 6 on servers 0 and 1 only: 2 of its 3 voters are enough. */
	create_group(0, 6);
	create_group(1, 6);
	{
		uint64_t end = now_ms() + 20000;
		while (leader_of(6) < 0 && now_ms() < end)
			sr_loop_run_once(L, 5);
	}
	CHECK(leader_of(6) >= 0);
	/* Server 2 hears group 6's heartbeats and drops them, counted. */
	run_for(200);
	sr_server_stats_get(S[2].srv, &st);
	CHECK(st.msgs_unknown > 0);
	CHECK_EQ(st.groups, 1);
	/* Destroying group 5 on a follower that also carries group 6 takes
	 * it out of group 5 only: group 5's messages now count as unknown
	 * there, and the connections stay (group 6 still names the
	 * peers). */
	{
		int l = leader_of(5);
		int victim = l == 1 ? 0 : 1;
		uint64_t before;
		sr_server_stats_get(S[victim].srv, &st);
		before = st.msgs_unknown;
		CHECK_EQ(sr_server_group_destroy(GR[victim][5]), 0);
		GR[victim][5] = NULL;
		CHECK(sr_server_group(S[victim].srv, 5) == NULL);
		CHECK_EQ(propose_on_leader(5, 5002), 0);
		{
			uint64_t end = now_ms() + 20000;
			while (!applied_all(5, 2) && now_ms() < end)
				sr_loop_run_once(L, 5);
		}
		CHECK(applied_all(5, 2));
		run_for(200);
		sr_server_stats_get(S[victim].srv, &st);
		CHECK(st.msgs_unknown > before);
		CHECK_EQ(st.peers, NS - 1);
		/* Created again (empty), it catches up. */
		memset(&G[victim][5], 0, sizeof(G[victim][5]));
		create_group(victim, 5);
		{
			uint64_t end = now_ms() + 20000;
			while (!applied_all(5, 2) && now_ms() < end)
				sr_loop_run_once(L, 5);
		}
		CHECK(applied_all(5, 2));
		check_group_agrees(5);
	}
	/* Dropping the group everywhere leaves the servers with no group,
	 * and the shared peer table empties as the last group lets go. */
	for (int i = 0; i < NS; i++) {
		if (GR[i][5])
			CHECK_EQ(sr_server_group_drop(GR[i][5]), 0);
		if (GR[i][6])
			CHECK_EQ(sr_server_group_destroy(GR[i][6]), 0);
		GR[i][5] = GR[i][6] = NULL;
		sr_server_stats_get(S[i].srv, &st);
		CHECK_EQ(st.groups, 0);
		CHECK_EQ(st.peers, 0);
		CHECK(st.groups_destroyed >= 1);
	}
	servers_free();
}

TEST(test_group_mistakes_refused)
{
	sr_group_config gc;
	sr_group *g = NULL;
	sr_server_config c;
	sr_server *srv;

	servers_init();
	start_server(0);
	group_config(&gc, 0, 3);
	gc.fsm = NULL;
	CHECK_EQ(sr_server_group_create(S[0].srv, &gc, &g), SR_EINVAL);
	CHECK(g == NULL);
	group_config(&gc, 0, 3);
	gc.host.log = slog;
	CHECK_EQ(sr_server_group_create(S[0].srv, &gc, &g), SR_EINVAL);
	group_config(&gc, 0, 3);
	gc.peers.members[1].id = gc.peers.members[0].id;
	CHECK_EQ(sr_server_group_create(S[0].srv, &gc, &g), SR_EINVAL);
	create_group(0, 3);
	group_config(&gc, 0, 3);
	CHECK_EQ(sr_server_group_create(S[0].srv, &gc, &g), SR_EEXIST);
	CHECK(sr_server_group(S[0].srv, 4) == NULL);
	S[0].errors = 0;

	/* A server with a default group: that one cannot be destroyed,
	 * and its id is taken. */
	server_config(&c, 1);
	c.no_default_group = 0;
	c.fsm = &gfsm;
	c.fsm_ctx = &G[1][0];
	CHECK_EQ(sr_server_create(&c, &srv), 0);
	S[1].srv = srv;
	CHECK(sr_server_default_group(srv) != NULL);
	CHECK_EQ(sr_group_id(sr_server_default_group(srv)), 0);
	CHECK_EQ(sr_server_group_destroy(sr_server_default_group(srv)),
		 SR_EINVAL);
	group_config(&gc, 1, 0);
	CHECK_EQ(sr_server_group_create(srv, &gc, &g), SR_EEXIST);
	/* Calls on a group before the server starts are refused. */
	create_group(1, 7);
	CHECK_EQ(sr_group_propose(GR[1][7], "x", 1, NULL, NULL), SR_ESTATE);
	{
		sr_group *all[4];
		CHECK_EQ(sr_server_groups(srv, all, 4), 2);
	}
	/* no_default_group with a default group's fields is a mistake. */
	server_config(&c, 2);
	c.fsm = &gfsm;
	CHECK_EQ(sr_server_create(&c, &srv), SR_EINVAL);
	/* Memory stores leave nothing on disk to reopen. */
	{
		size_t n = 99;
		uint32_t ids[4];
		CHECK_EQ(sr_server_groups_on_disk(S[0].srv, ids, 4, &n), 0);
		CHECK_EQ(n, 0);
	}
	servers_free();
}

/* Each group snapshots and compacts its own log; a member that lost
 * its copy of one group is brought back by that group's snapshot. */
TEST(test_each_group_snapshots_on_its_own)
{
	sr_status st;
	int l, f;

	servers_init();
	use_snapshots = 1;
	for (int i = 0; i < NS; i++) {
		start_server(i);
		create_group(i, 0);
		create_group(i, 1);
	}
	CHECK(run_until_led(2, 20000));
	for (uint64_t v = 1; v <= 20; v++)
		CHECK_EQ(propose_on_leader(1, 1000 + v), 0);
	CHECK_EQ(propose_on_leader(0, 1), 0);
	CHECK(run_until_applied(1, 1, 20000));
	{
		uint64_t end = now_ms() + 20000;
		while (!applied_all(1, 20) && now_ms() < end)
			sr_loop_run_once(L, 5);
	}
	CHECK(applied_all(1, 20));
	l = leader_of(1);
	f = (l + 1) % NS;
	for (int i = 0; i < NS; i++)
		CHECK_EQ(sr_group_snapshot(GR[i][1]), 0);
	run_for(100);
	for (int i = 0; i < NS; i++) {
		sr_group_status(GR[i][1], &st);
		CHECK(st.snapshot_index >= 20);
		CHECK(st.first_index > 3); /* compacted */
		sr_group_status(GR[i][0], &st);
		CHECK_EQ(st.snapshot_index, 0);
	}
	/* Follower f loses group 1 and gets it back from the snapshot. */
	CHECK_EQ(sr_server_group_drop(GR[f][1]), 0);
	GR[f][1] = NULL;
	memset(&G[f][1], 0, sizeof(G[f][1]));
	create_group(f, 1);
	CHECK_EQ(propose_on_leader(1, 1021), 0);
	{
		uint64_t end = now_ms() + 20000;
		while (!applied_all(1, 21) && now_ms() < end)
			sr_loop_run_once(L, 5);
	}
	CHECK(applied_all(1, 21));
	sr_group_status(GR[f][1], &st);
	CHECK(st.snapshot_index >= 20);
	check_group_agrees(1);
	servers_free();
}

/*
 * The shared WAL: every group's log in one WAL per server.  After a
 * restart the host lists the groups on disk and reopens each, and every
 * group comes back with its data (group 0 lives in the WAL's own log,
 * the others in WAL groups); a dropped group is gone from the list.
 */
TEST(test_groups_reopen_from_the_shared_wal)
{
	const uint32_t ng = 6;
	uint64_t before[MAXG][8];
	sr_wal_stats ws[NS];

	servers_init();
	use_wal = 1;
	for (int i = 0; i < NS; i++) {
		start_server(i);
		CHECK(sr_server_wal(S[i].srv) != NULL);
		for (uint32_t k = 0; k < ng; k++)
			create_group(i, k);
	}
	CHECK(run_until_led(ng, 20000));
	for (int i = 0; i < NS; i++)
		sr_wal_get_stats(sr_server_wal(S[i].srv), &ws[i]);
	for (uint64_t v = 1; v <= 5; v++)
		for (uint32_t k = 0; k < ng; k++)
			CHECK_EQ(propose_on_leader(k, k * 1000 + v), 0);
	CHECK(run_until_applied(ng, 5, 20000));
	for (uint32_t k = 0; k < ng; k++) {
		check_group_agrees(k);
		memcpy(before[k], G[0][k].applied, 5 * sizeof(uint64_t));
	}
	/* One WAL per server: the appends of the groups that arrive
	 * together share a batch (one write, one fdatasync). */
	for (int i = 0; i < NS; i++) {
		sr_wal_stats w;
		sr_wal_get_stats(sr_server_wal(S[i].srv), &w);
		printf("  server %d: %llu appends of %u groups in %llu WAL "
		       "batches\n",
		       i + 1, (unsigned long long)(w.appends - ws[i].appends),
		       ng, (unsigned long long)(w.batches - ws[i].batches));
		CHECK(w.appends - ws[i].appends >= ng);
		CHECK(w.batches - ws[i].batches < w.appends - ws[i].appends);
	}
	/* Group 5 is dropped everywhere before the restart. */
	for (int i = 0; i < NS; i++) {
		CHECK_EQ(sr_server_group_drop(GR[i][5]), 0);
		GR[i][5] = NULL;
	}
	/* Group 0 lives in the WAL's own log: it cannot be dropped. */
	CHECK_EQ(sr_server_group_drop(GR[0][0]), SR_EINVAL);
	for (int i = 0; i < NS; i++) {
		sr_server_destroy(S[i].srv);
		S[i].srv = NULL;
	}
	memset(G, 0, sizeof(G));
	memset(GR, 0, sizeof(GR));
	memset(n_acked, 0, sizeof(n_acked));
	for (int i = 0; i < NS; i++) {
		uint32_t ids[MAXG];
		size_t n = 0;
		start_server(i);
		CHECK_EQ(sr_server_groups_on_disk(S[i].srv, ids, MAXG, &n), 0);
		CHECK_EQ(n, ng - 1);
		for (size_t j = 0; j < n; j++) {
			CHECK_EQ(ids[j], j); /* 0..4, ascending; 5 dropped */
			create_group(i, ids[j]);
		}
		CHECK_EQ(sr_server_groups_on_disk(S[i].srv, NULL, 0, &n), 0);
		CHECK_EQ(n, ng - 1);
	}
	CHECK(run_until_led(ng - 1, 20000));
	/* A new entry in each group commits, and with it the old ones are
	 * applied again on every member, as they were. */
	for (uint32_t k = 0; k < ng - 1; k++)
		CHECK_EQ(propose_on_leader(k, k * 1000 + 6), 0);
	CHECK(run_until_applied(ng - 1, 6, 20000));
	for (uint32_t k = 0; k < ng - 1; k++) {
		check_group_agrees(k);
		for (int i = 0; i < NS; i++) {
			CHECK_EQ(memcmp(G[i][k].applied, before[k],
					5 * sizeof(uint64_t)),
				 0);
			CHECK_EQ(G[i][k].applied[5], k * 1000 + 6);
		}
	}
	/* Group 5, created again, starts empty. */
	for (int i = 0; i < NS; i++)
		create_group(i, 5);
	{
		uint64_t end = now_ms() + 20000;
		while (leader_of(5) < 0 && now_ms() < end)
			sr_loop_run_once(L, 5);
	}
	CHECK_EQ(propose_on_leader(5, 5007), 0);
	{
		uint64_t end = now_ms() + 20000;
		while (!applied_all(5, 1) && now_ms() < end)
			sr_loop_run_once(L, 5);
	}
	for (int i = 0; i < NS; i++) {
		CHECK_EQ(G[i][5].n_applied, 1);
		CHECK_EQ(G[i][5].applied[0], 5007);
	}
	servers_free();
}

/* ---- server 1 in a child process, killed with SIGKILL ------------- */

static int ack_fd = -1; /* the child reports acknowledged values here */

static void child_done(void *ctx, void *cookie, int status, sr_index index,
		       void *result)
{
	struct gstate *g = ctx;
	uint64_t rec[2] = { g->gid, (uintptr_t)cookie };

	(void)index;
	(void)result;
	if (status == 0 && write(ack_fd, rec, sizeof(rec)) != sizeof(rec))
		_exit(3);
}

/* Server 1 with groups 0..ng-1 on its WAL, proposing in every group it
 * leads, until it is killed.  Never returns. */
static void child_run(uint32_t ng)
{
	sr_server_config c;
	uint64_t v = 1;

	server_config(&c, 0);
	c.log = NULL;
	if (sr_loop_create(NULL, &L))
		_exit(2);
	c.loop = L;
	if (sr_server_create(&c, &S[0].srv) || sr_server_start(S[0].srv))
		_exit(2);
	for (uint32_t k = 0; k < ng; k++) {
		sr_group_config gc;
		group_config(&gc, 0, k);
		gc.host.done = child_done;
		if (sr_server_group_create(S[0].srv, &gc, &GR[0][k]))
			_exit(2);
	}
	int sent[MAXG] = { 0 };

	for (;;) {
		/* At most 100 values a group: the survivors' lists hold 256. */
		for (uint32_t k = 0; k < ng; k++) {
			sr_status st;
			uint64_t val = k * 100000 + v;
			sr_group_status(GR[0][k], &st);
			if (st.role == SR_LEADER && sent[k] < 100 &&
			    sr_group_propose(GR[0][k], &val, sizeof(val),
					     (void *)(uintptr_t)val,
					     NULL) == 0) {
				v++;
				sent[k]++;
			}
		}
		for (int i = 0; i < 3; i++)
			sr_loop_run_once(L, 2);
	}
}

/* The leader of group k as the in-process servers (2 and 3) see it. */
static sr_id seen_leader(uint32_t k)
{
	for (int i = 1; i < NS; i++) {
		sr_status st;
		sr_group_status(GR[i][k], &st);
		if (st.leader)
			return st.leader;
	}
	return 0;
}

/*
 * A process holding several leaders dies (SIGKILL, on the shared WAL):
 * every group elects a leader among the survivors, and every value the
 * dead process saw acknowledged is in every survivor's state machine.
 */
TEST(test_sigkill_of_the_process_holding_several_leaders)
{
	const uint32_t ng = 9;
	int fds[2], status, held = 0;
	uint64_t rec[2];
	pid_t pid;
	ssize_t got;

	servers_init();
	use_wal = 1;
	CHECK_EQ(pipe(fds), 0);
	fflush(NULL);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		close(fds[0]);
		ack_fd = fds[1];
		child_run(ng);
	}
	close(fds[1]);
	for (int i = 1; i < NS; i++) {
		start_server(i);
		for (uint32_t k = 0; k < ng; k++)
			create_group(i, k);
	}
	/* Server 1 (the child) takes the leadership of groups 0, 3, 6. */
	{
		uint64_t end = now_ms() + 30000;
		for (;;) {
			int placed = 0;
			for (uint32_t k = 0; k < ng; k += NS) {
				int li = leader_of(k);
				if (seen_leader(k) == S[0].id)
					placed++;
				else if (li > 0)
					sr_group_transfer(GR[li][k], S[0].id);
			}
			if (placed == (int)(ng / NS) || now_ms() > end)
				break;
			run_for(30);
		}
	}
	for (uint32_t k = 0; k < ng; k++)
		held += seen_leader(k) == S[0].id;
	CHECK(held >= 3);
	run_for(1000); /* the child proposes and commits meanwhile */
	kill(pid, SIGKILL);
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	CHECK(WIFSIGNALED(status));
	while ((got = read(fds[0], rec, sizeof(rec))) == sizeof(rec))
		if (rec[0] < ng && n_acked[rec[0]] < MAXV)
			acked[rec[0]][n_acked[rec[0]]++] = rec[1];
	close(fds[0]);
	{
		int total = 0;
		for (uint32_t k = 0; k < ng; k++)
			total += n_acked[k];
		printf("  the killed process led %d of %u groups; %d values "
		       "acknowledged there\n",
		       held, ng, total);
	}
	for (uint32_t k = 0; k < ng; k += NS)
		CHECK(n_acked[k] > 0);
	/* Every group has (or elects) a leader among servers 2 and 3, and
	 * commits a new value there. */
	CHECK(run_until_led(ng, 30000));
	for (uint32_t k = 0; k < ng; k++) {
		CHECK(leader_of(k) > 0);
		CHECK_EQ(propose_on_leader(k, 999999), 0);
	}
	for (uint32_t k = 0; k < ng; k++) {
		uint64_t end = now_ms() + 30000;
		int done = 0;
		while (!done && now_ms() < end) {
			done = 1;
			for (int i = 1; i < NS; i++)
				done &= G[i][k].n_applied > 0 &&
					G[i][k].applied[G[i][k].n_applied - 1] ==
						999999;
			if (!done)
				sr_loop_run_once(L, 5);
		}
		CHECK(done);
		check_group_agrees(k); /* holds every acknowledged value */
	}
	servers_free();
}

/* A group's callback must not drive the server: refused, not re-entered. */
TEST(test_group_call_from_a_callback_refused)
{
	uint64_t end;

	servers_init();
	start_server(0);
	{
		sr_group_config gc;
		group_config(&gc, 0, 1);
		memset(&gc.peers, 0, sizeof(gc.peers));
		sr_membership_add(&gc.peers, S[0].id, SR_ROLE_VOTER, S[0].addr);
		CHECK_EQ(sr_server_group_create(S[0].srv, &gc, &GR[0][1]), 0);
	}
	end = now_ms() + 20000;
	while (leader_of(1) != 0 && now_ms() < end)
		sr_loop_run_once(L, 5);
	CHECK_EQ(leader_of(1), 0);
	G[0][1].try_reentry = 1;
	CHECK_EQ(propose_on_leader(1, 42), 0);
	end = now_ms() + 20000;
	while (G[0][1].done_ok < 1 && now_ms() < end)
		sr_loop_run_once(L, 5);
	CHECK_EQ(G[0][1].done_ok, 1);
	CHECK_EQ(G[0][1].reentrant_rc, SR_ESTATE);
	servers_free();
}

/*
 * Heartbeat waves: the heartbeats of all the groups a server leads are
 * produced in one loop iteration, so they leave in one write per peer.
 * Idle, with 48 groups, the writes are a small fraction of the messages
 * and the deadline timer fires about once per heartbeat interval, not
 * once per group per interval.
 */
TEST(test_idle_groups_heartbeat_in_waves)
{
	const uint32_t ng = 48;
	sr_server_stats a[NS], b[NS];
	sr_tcp_stats ta[NS], tb[NS];
	const uint64_t window = 2000;

	start_cluster(ng);
	run_for(500);
	for (int i = 0; i < NS; i++) {
		sr_server_stats_get(S[i].srv, &a[i]);
		sr_tcp_stats_get(sr_server_tcp(S[i].srv), &ta[i]);
	}
	run_for(window);
	for (int i = 0; i < NS; i++) {
		uint64_t msgs, writes, fires;
		sr_server_stats_get(S[i].srv, &b[i]);
		sr_tcp_stats_get(sr_server_tcp(S[i].srv), &tb[i]);
		msgs = tb[i].msgs_sent - ta[i].msgs_sent;
		writes = tb[i].writes - ta[i].writes;
		fires = b[i].timer_fires - a[i].timer_fires;
		printf("  server %d: %llu msgs, %llu writes, %llu timer "
		       "fires, %llu group ticks in %llu ms\n",
		       i + 1, (unsigned long long)msgs,
		       (unsigned long long)writes, (unsigned long long)fires,
		       (unsigned long long)(b[i].groups_due - a[i].groups_due),
		       (unsigned long long)window);
		/* 16 leaders x 2 followers each heartbeat: ~1600 messages
		 * in 2 s, plus the answers to 32 groups' heartbeats. */
		CHECK(msgs > 1000);
		/* Without waves every group's heartbeat would leave in its
		 * own write (writes ~ msgs). */
		CHECK(writes * 6 < msgs);
		/* Without waves the timer would fire per group. */
		CHECK(fires * 6 < b[i].groups_due - a[i].groups_due);
	}
	servers_free();
}

/*
 * Heartbeat coalescing, end to end.  One write per group, acknowledged;
 * then a read on every member of every group (a follower's read goes to
 * the leader, which confirms it with a heartbeat round whose answers come
 * back coalesced), each of which must see at least the acknowledged
 * write.  Returns once every read finished.
 */
static void read_everywhere(uint32_t ng)
{
	for (uint32_t k = 0; k < ng; k++)
		CHECK_EQ(propose_on_leader(k, k * 1000 + 1), 0);
	CHECK(run_until_applied(ng, 1, 20000));
	for (uint32_t k = 0; k < ng; k++) {
		CHECK(ack_index[k] > 0);
		for (int i = 0; i < NS; i++)
			CHECK_EQ(sr_group_read(GR[i][k], NULL), 0);
	}
	uint64_t end = now_ms() + 20000;
	for (uint32_t k = 0; k < ng; k++)
		for (int i = 0; i < NS; i++)
			while (G[i][k].reads_ok + G[i][k].reads_err < 1 &&
			       now_ms() < end)
				sr_loop_run_once(L, 5);
	for (uint32_t k = 0; k < ng; k++) {
		for (int i = 0; i < NS; i++) {
			CHECK_EQ(G[i][k].reads_err, 0);
			CHECK_EQ(G[i][k].reads_ok, 1);
			/* never a stale read */
			CHECK(G[i][k].read_min >= ack_index[k]);
		}
	}
}

/* Leader and term of every group, to check nobody lost leadership. */
static void leadership(uint32_t ng, int *lead, sr_term *term)
{
	for (uint32_t k = 0; k < ng; k++) {
		sr_status st;
		lead[k] = leader_of(k);
		CHECK(lead[k] >= 0);
		sr_group_status(GR[lead[k]][k], &st);
		term[k] = st.term;
	}
}

/*
 * Idle, the heartbeats each server sends a peer in one wave, and the
 * answers, travel as one coalesced message: the messages on the wire are
 * a small fraction of the messages the engines exchange, every group
 * stays led by the same leader in the same term, and reads work.
 */
TEST(test_idle_groups_coalesce_heartbeats_and_reads_work)
{
	const uint32_t ng = 48;
	sr_server_stats a[NS], b[NS];
	int lead0[MAXG], lead1[MAXG];
	sr_term term0[MAXG], term1[MAXG];

	start_cluster(ng);
	read_everywhere(ng);
	run_for(300);
	leadership(ng, lead0, term0);
	for (int i = 0; i < NS; i++)
		sr_server_stats_get(S[i].srv, &a[i]);
	run_for(2000);
	for (int i = 0; i < NS; i++) {
		sr_server_stats_get(S[i].srv, &b[i]);
		uint64_t out = b[i].msgs_out - a[i].msgs_out;
		uint64_t sent = b[i].coalesced_sent - a[i].coalesced_sent;
		uint64_t carried = b[i].coalesced_carried_sent -
				   a[i].coalesced_carried_sent;
		uint64_t recv = b[i].coalesced_recv - a[i].coalesced_recv;
		uint64_t carried_in = b[i].coalesced_carried_recv -
				      a[i].coalesced_carried_recv;
		printf("  server %d: %llu engine messages out, %llu of them in "
		       "%llu coalesced messages; %llu in %llu received\n",
		       i + 1, (unsigned long long)out,
		       (unsigned long long)carried, (unsigned long long)sent,
		       (unsigned long long)carried_in,
		       (unsigned long long)recv);
		/* 16 leaders x 2 followers x ~50 waves, plus the answers */
		CHECK(carried > 1000 && carried_in > 1000);
		/* idle, nearly everything coalesces, ~2 x 2 per wave */
		CHECK(carried * 10 > out * 9);
		CHECK(sent * 10 < carried);
		CHECK(recv * 10 < carried_in);
		CHECK_EQ(S[i].errors, 0);
	}
	leadership(ng, lead1, term1);
	for (uint32_t k = 0; k < ng; k++) {
		CHECK_EQ(lead1[k], lead0[k]);
		CHECK_EQ(term1[k], term0[k]);
	}
	servers_free();
}

/*
 * A server with coalescing off (as a server of the previous version is)
 * gets and sends ordinary messages, while the other two coalesce between
 * themselves; every group elects, replicates and reads.
 */
TEST(test_a_server_without_coalescing_works_with_two_that_coalesce)
{
	const uint32_t ng = 24;
	sr_server_stats st[NS];
	sr_tcp_stats ts;
	int lead0[MAXG], lead1[MAXG];
	sr_term term0[MAXG], term1[MAXG];

	start_cluster_nc(ng, 2);
	read_everywhere(ng);
	leadership(ng, lead0, term0);
	run_for(1000);
	leadership(ng, lead1, term1);
	for (uint32_t k = 0; k < ng; k++) {
		CHECK_EQ(lead1[k], lead0[k]);
		CHECK_EQ(term1[k], term0[k]);
		check_group_agrees(k);
	}
	for (int i = 0; i < NS; i++) {
		sr_server_stats_get(S[i].srv, &st[i]);
		sr_tcp_stats_get(sr_server_tcp(S[i].srv), &ts);
		CHECK_EQ(ts.proto_errors, 0);
		CHECK_EQ(S[i].errors, 0);
	}
	CHECK_EQ(st[2].coalesced_sent, 0);
	CHECK_EQ(st[2].coalesced_recv, 0);
	for (int i = 0; i < 2; i++) {
		CHECK(st[i].coalesced_sent > 0);
		CHECK(st[i].coalesced_recv > 0);
		/* the third server's messages went as before */
		CHECK(st[i].coalesced_carried_sent < st[i].msgs_out);
	}
	servers_free();
}

int main(int argc, char **argv)
{
	return test_main(argc, argv);
}

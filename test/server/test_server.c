/*
 * test_server.c — sr_server (seshat/server.h): whole members, each with
 * its engine, store, transport and loop wired by the runtime, talking
 * over real TCP on loopback inside this one process.
 *
 * The clusters run in two modes:
 *   - shared loop: every server is handed the test's sr_loop (L), which
 *     the test turns — the mode of a host that brings its own sr_loop;
 *   - fd + process: every server owns its loop, and the test polls the
 *     three sr_server_fd()s with sr_server_timeout_ms() and calls
 *     sr_server_process() — the mode of a host with a foreign loop;
 * and sr_server_run() is checked on its own (a host timer stops it).
 *
 * The state machine is a list of the commands applied, so every check
 * compares what each member applied, in order, with what was proposed.
 * Wiring mistakes are checked to fail at create with SR_EINVAL and a log
 * line naming the field.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "server_testlib.h"
#include "seshat/mem.h"
#include "seshat/server.h"
#include "testlib.h"

#define MAXN	 4
#define MAX_CMDS 512

struct member {
	sr_id id;
	sr_server *srv;
	char addr[64];
	char dir[256];
	uint64_t applied[MAX_CMDS];
	int n_applied;
	int done_ok, done_err;
	int reads_ok;
	int reentrant_rc; /* what a call from inside done() returned */
	int try_reentry;
	int errors; /* log lines at SR_LOG_ERROR */
	char log[4096];
	size_t log_len;
};

static struct member M[MAXN];
static sr_loop *L;
static char tmpdir[128];

static void mlog(void *ctx, int level, const char *line)
{
	struct member *m = ctx;
	size_t len = strlen(line);

	if (getenv("SERVER_TEST_LOG"))
		fprintf(stderr, "[%llu %d] %s\n", (unsigned long long)m->id,
			level, line);
	if (level >= SR_LOG_ERROR)
		m->errors++;
	if (level < SR_LOG_WARN || m->log_len + len + 2 > sizeof(m->log))
		return;
	memcpy(m->log + m->log_len, line, len);
	m->log_len += len;
	m->log[m->log_len++] = '\n';
	m->log[m->log_len] = 0;
}

static int fsm_apply(void *ctx, const sr_entry *e, void **result)
{
	struct member *m = ctx;
	uint64_t v;

	*result = NULL;
	if (e->len != sizeof(v) || m->n_applied >= MAX_CMDS)
		return SR_EINVAL;
	memcpy(&v, e->data, sizeof(v));
	m->applied[m->n_applied++] = v;
	return 0;
}

static const sr_fsm_ops fsm = { .apply = fsm_apply };

static void on_done(void *ctx, void *cookie, int status, sr_index index,
		    void *result)
{
	struct member *m = ctx;

	(void)cookie;
	(void)index;
	(void)result;
	if (status == 0)
		m->done_ok++;
	else
		m->done_err++;
	if (m->try_reentry) {
		uint64_t v = 999;
		m->try_reentry = 0;
		m->reentrant_rc = sr_server_propose(m->srv, &v, sizeof(v), NULL,
						    NULL);
	}
}

static void on_read(void *ctx, void *cookie, int status, sr_index index)
{
	struct member *m = ctx;

	(void)cookie;
	(void)index;
	if (status == 0)
		m->reads_ok++;
}

/* The configuration every member of the first n is bootstrapped with. */
static void peers_of(sr_membership *p, int n)
{
	memset(p, 0, sizeof(*p));
	for (int i = 0; i < n; i++)
		sr_membership_add(p, M[i].id, SR_ROLE_VOTER, M[i].addr);
}

static void config_for(sr_server_config *c, struct member *m, int storage,
		       sr_loop *loop)
{
	sr_server_config_init(c, m->id);
	c->listen_addr = m->addr;
	c->storage = storage;
	c->data_dir = m->dir;
	c->fsm = &fsm;
	c->fsm_ctx = m;
	c->host.done = on_done;
	c->host.read_done = on_read;
	c->host_ctx = m;
	c->log = mlog;
	c->log_ctx = m;
	c->loop = loop;
	c->raft.election_timeout_ms = 150;
	c->raft.heartbeat_ms = 30;
}

static void members_init(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/sr-server-test.XXXXXX");
	if (!mkdtemp(tmpdir))
		abort();
	memset(M, 0, sizeof(M));
	for (int i = 0; i < MAXN; i++) {
		M[i].id = (sr_id)i + 1;
		snprintf(M[i].addr, sizeof(M[i].addr), "127.0.0.1:%d",
			 free_port());
		snprintf(M[i].dir, sizeof(M[i].dir), "%s/n%d", tmpdir, i + 1);
	}
}

static void members_free(void)
{
	char cmd[256];

	for (int i = 0; i < MAXN; i++) {
		sr_server_destroy(M[i].srv);
		M[i].srv = NULL;
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", tmpdir);
}

/* Start member i as one of the first n (bootstrap list), on loop. */
static int member_start(int i, int n, int storage, sr_loop *loop)
{
	sr_server_config c;
	int rc;

	config_for(&c, &M[i], storage, loop);
	peers_of(&c.peers, n);
	rc = sr_server_create(&c, &M[i].srv);
	if (rc == 0)
		rc = sr_server_start(M[i].srv);
	return rc;
}

/* Turn the shared loop until cond or ms pass. */
#define RUN_UNTIL(cond, ms)                                                    \
	do {                                                                   \
		uint64_t t0_ = now_ms();                                       \
		while (!(cond) && now_ms() - t0_ < (uint64_t)(ms))             \
			sr_loop_run_once(L, 5);                                \
	} while (0)

static int leader_of(int n)
{
	for (int i = 0; i < n; i++) {
		sr_status st;
		if (!M[i].srv)
			continue;
		sr_server_status(M[i].srv, &st);
		if (st.role == SR_LEADER)
			return i;
	}
	return -1;
}

static int all_applied(int n, int count)
{
	for (int i = 0; i < n; i++)
		if (M[i].srv && M[i].n_applied < count)
			return 0;
	return 1;
}

static int same_history(int n, int count)
{
	for (int i = 0; i < n; i++) {
		if (!M[i].srv)
			continue;
		if (M[i].n_applied != count)
			return 0;
		for (int k = 0; k < count; k++)
			if (M[i].applied[k] != (uint64_t)k + 1)
				return 0;
	}
	return 1;
}

/* Propose commands from..to (values) on the leader, one by one. */
static int propose_range(int leader, int from, int to)
{
	for (int v = from; v <= to; v++) {
		uint64_t x = (uint64_t)v;
		int rc = sr_server_propose(M[leader].srv, &x, sizeof(x), NULL,
					   NULL);
		if (rc)
			return rc;
	}
	return 0;
}

/* ------------------------------------------------------------------ */

TEST(test_three_servers_elect_replicate_restart_and_add)
{
	int leader, follower, rc;

	members_init();
	CHECK_EQ(sr_loop_create(NULL, &L), 0);
	for (int i = 0; i < 3; i++)
		CHECK_EQ(member_start(i, 3, SR_SERVER_WAL, L), 0);

	RUN_UNTIL(leader_of(3) >= 0, 5000);
	leader = leader_of(3);
	CHECK(leader >= 0);
	rc = propose_range(leader, 1, 10);
	CHECK_EQ(rc, 0);
	RUN_UNTIL(all_applied(3, 10), 5000);
	CHECK(same_history(3, 10));
	CHECK_EQ(M[leader].done_ok, 10);

	CHECK_EQ(sr_server_tick(M[leader].srv), 0);
	/* A linearizable read through the runtime. */
	CHECK_EQ(sr_server_read(M[leader].srv, NULL), 0);
	RUN_UNTIL(M[leader].reads_ok == 1, 5000);
	CHECK_EQ(M[leader].reads_ok, 1);

	/* A follower goes away; the other two go on. */
	follower = (leader + 1) % 3;
	sr_server_destroy(M[follower].srv);
	M[follower].srv = NULL;
	M[follower].n_applied = 0;
	CHECK_EQ(propose_range(leader, 11, 20), 0);
	RUN_UNTIL(all_applied(3, 20), 5000);
	CHECK(same_history(3, 20));

	/* It comes back on its WAL (the peers list is ignored: the store
	 * holds state) and re-applies the whole history. */
	CHECK_EQ(member_start(follower, 3, SR_SERVER_WAL, L), 0);
	RUN_UNTIL(all_applied(3, 20), 5000);
	CHECK(same_history(3, 20));

	/* A fourth member joins: it knows the three, the leader adds it. */
	CHECK_EQ(member_start(3, 3, SR_SERVER_WAL, L), 0);
	leader = leader_of(3);
	CHECK(leader >= 0);
	CHECK_EQ(sr_server_add(M[leader].srv, M[3].id, M[3].addr, 1), 0);
	RUN_UNTIL(all_applied(4, 20), 5000);
	CHECK_EQ(propose_range(leader, 21, 30), 0);
	RUN_UNTIL(all_applied(4, 30), 5000);
	CHECK(same_history(4, 30));
	{
		const sr_membership *conf = sr_server_membership(M[3].srv);
		const sr_member *me = sr_membership_find(conf, M[3].id);
		RUN_UNTIL((me = sr_membership_find(
				   sr_server_membership(M[leader].srv),
				   M[3].id)) &&
				  me->role == SR_ROLE_VOTER,
			  5000);
		CHECK(me && me->role == SR_ROLE_VOTER);
	}
	for (int i = 0; i < MAXN; i++)
		CHECK_EQ(M[i].errors, 0);
	members_free();
	sr_loop_destroy(L);
	L = NULL;
}

/* The leader restarts on its WAL: a new leader is elected, nothing
 * acknowledged is lost, and the old one catches up as a follower. */
TEST(test_leader_restart_keeps_acknowledged_writes)
{
	int leader, next;

	members_init();
	CHECK_EQ(sr_loop_create(NULL, &L), 0);
	for (int i = 0; i < 3; i++)
		CHECK_EQ(member_start(i, 3, SR_SERVER_WAL, L), 0);
	RUN_UNTIL(leader_of(3) >= 0, 5000);
	leader = leader_of(3);
	CHECK(leader >= 0);
	CHECK_EQ(propose_range(leader, 1, 5), 0);
	RUN_UNTIL(M[leader].done_ok == 5, 5000);
	CHECK_EQ(M[leader].done_ok, 5);

	sr_server_destroy(M[leader].srv);
	M[leader].srv = NULL;
	M[leader].n_applied = 0;
	RUN_UNTIL(leader_of(3) >= 0, 5000);
	next = leader_of(3);
	CHECK(next >= 0 && next != leader);
	CHECK_EQ(member_start(leader, 3, SR_SERVER_WAL, L), 0);
	CHECK_EQ(propose_range(next, 6, 8), 0);
	RUN_UNTIL(all_applied(3, 8), 5000);
	CHECK(same_history(3, 8));
	members_free();
	sr_loop_destroy(L);
	L = NULL;
}

/* Each server owns its loop; the host polls their fds. */
TEST(test_fd_and_process_mode)
{
	int leader = -1, proposed = 0;
	uint64_t t0 = now_ms();

	members_init();
	for (int i = 0; i < 3; i++)
		CHECK_EQ(member_start(i, 3, SR_SERVER_MEM, NULL), 0);
	while (now_ms() - t0 < 10000 && !all_applied(3, 5)) {
		struct pollfd pf[3];
		int timeout = 50;
		for (int i = 0; i < 3; i++) {
			int t = sr_server_timeout_ms(M[i].srv);
			pf[i].fd = sr_server_fd(M[i].srv);
			pf[i].events = POLLIN;
			if (t >= 0 && t < timeout)
				timeout = t;
		}
		poll(pf, 3, timeout);
		for (int i = 0; i < 3; i++)
			CHECK(sr_server_process(M[i].srv) >= 0);
		if (!proposed && (leader = leader_of(3)) >= 0 &&
		    propose_range(leader, 1, 5) == 0)
			proposed = 1;
	}
	CHECK(proposed);
	CHECK(same_history(3, 5));
	CHECK_EQ(M[leader].done_ok, 5);
	members_free();
}

/* sr_server_run() on a one-member cluster: a host timer on the server's
 * loop proposes (outside any engine callback) and stops the loop once
 * the command is applied. */
static void run_mode_timer(sr_loop *loop, uint64_t id, void *ctx)
{
	struct member *m = ctx;
	sr_status st;
	uint64_t v = 1;

	(void)id;
	sr_server_status(m->srv, &st);
	if (m->n_applied >= 1) {
		sr_server_stop(m->srv);
		return;
	}
	if (st.role == SR_LEADER && !m->done_ok && !m->try_reentry &&
	    sr_server_propose(m->srv, &v, sizeof(v), NULL, NULL) == 0)
		m->try_reentry = 1; /* done() will try to re-enter */
	sr_loop_timer_add(loop, 5, run_mode_timer, m, NULL);
}

TEST(test_run_mode_and_reentry_refused)
{
	sr_server_config c;
	struct member *m = &M[0];

	members_init();
	config_for(&c, m, SR_SERVER_WAL, NULL);
	peers_of(&c.peers, 1);
	CHECK_EQ(sr_server_create(&c, &m->srv), 0);
	CHECK_EQ(sr_server_start(m->srv), 0);
	m->reentrant_rc = 1;
	CHECK_EQ(sr_loop_timer_add(sr_server_loop(m->srv), 1, run_mode_timer, m,
				   NULL),
		 0);
	CHECK_EQ(sr_server_run(m->srv), 0);
	CHECK_EQ(m->n_applied, 1);
	CHECK_EQ(m->done_ok, 1);
	/* The call from inside done() was refused, and said why. */
	CHECK_EQ(m->reentrant_rc, SR_ESTATE);
	CHECK(strstr(m->log, "inside a callback") != NULL);
	/* The same data directory cannot be opened twice. */
	{
		sr_server *two = NULL;
		CHECK_EQ(sr_server_create(&c, &two), SR_ELOCKED);
		CHECK(two == NULL);
	}
	members_free();
}

/*
 * leader_writes_inline: a proposal to a leader with nothing else in
 * flight is written and synced on the loop's thread when the iteration
 * ends, so a one-member cluster applies it within the next loop turn
 * (through the writer thread, its completion would come back later on
 * the eventfd: with leader_writes_inline = 0 this test fails).
 */
TEST(test_leader_writes_inline_commits_within_one_turn)
{
	sr_server_config c;
	struct member *m = &M[0];
	sr_status st;
	sr_wal_stats ws;

	members_init();
	config_for(&c, m, SR_SERVER_WAL, NULL);
	peers_of(&c.peers, 1);
	c.leader_writes_inline = 1;
	CHECK_EQ(sr_server_create(&c, &m->srv), 0);
	CHECK_EQ(sr_server_start(m->srv), 0);
	L = sr_server_loop(m->srv);
	RUN_UNTIL(leader_of(1) == 0, 5000);
	CHECK_EQ(leader_of(1), 0);
	RUN_UNTIL((sr_server_status(m->srv, &st),
		   st.applied_index == st.last_index),
		  5000);
	for (int k = 1; k <= 5; k++) {
		uint64_t v = (uint64_t)k;
		/* the writer thread, done with the last batch, is asleep by
		 * then (the write goes to it while it is not) */
		usleep(20000);
		CHECK_EQ(sr_server_propose(m->srv, &v, sizeof(v), NULL, NULL),
			 0);
		CHECK_EQ(m->done_ok, k - 1);
		CHECK(sr_loop_run_once(L, 0) >= 0);
		CHECK_EQ(m->done_ok, k);
	}
	CHECK_EQ(m->n_applied, 5);
	sr_wal_get_stats(sr_server_wal(m->srv), &ws);
	CHECK(ws.batches >= 5);
	L = NULL;
	members_free();
}

/* ------------------------------------------------------------------ */
/* Wiring mistakes: SR_EINVAL at create, and the log names the field   */
/* ------------------------------------------------------------------ */

static int dummy_send(void *ctx, const sr_msg *msg)
{
	(void)ctx;
	(void)msg;
	return 0;
}
static const sr_transport_ops dummy_transport = { .send = dummy_send };
static void dummy_done(void *ctx, uint64_t token, int status)
{
	(void)ctx, (void)token, (void)status;
}
static void dummy_log(void *ctx, int level, const char *line)
{
	(void)ctx, (void)level, (void)line;
}
static int dummy_snapshot(void *ctx, sr_index index, sr_term term)
{
	(void)ctx, (void)index, (void)term;
	return 0;
}
static const sr_fsm_ops fsm_no_apply = { .free_result = NULL };
static const sr_fsm_ops fsm_no_restore = { .apply = fsm_apply,
					   .snapshot = dummy_snapshot };
static sr_loop *other_loop = (sr_loop *)&dummy_transport; /* never used */

static void refused(sr_server_config *c, const char *field, int line)
{
	struct member *m = c->log_ctx;
	sr_server *s = (sr_server *)1;
	int rc;

	m->log_len = 0;
	m->log[0] = 0;
	rc = sr_server_create(c, &s);
	if (rc != SR_EINVAL || s != NULL || !strstr(m->log, field))
		TEST_FAIL("line %d: want SR_EINVAL naming '%s', got %s, "
			  "log '%s'",
			  line, field, sr_strerror(rc), m->log);
}

#define REFUSED(mutate, field)                                                 \
	do {                                                                   \
		sr_server_config c_;                                           \
		config_for(&c_, &M[0], SR_SERVER_MEM, NULL);                   \
		peers_of(&c_.peers, 1);                                        \
		mutate;                                                        \
		refused(&c_, field, __LINE__);                                 \
	} while (0)

TEST(test_wiring_mistakes_refused_at_create)
{
	members_init();
	REFUSED(c_.id = 0, "id");
	REFUSED(c_.fsm = NULL, "fsm");
	REFUSED(c_.fsm = &fsm_no_apply, "fsm");
	REFUSED(c_.fsm = &fsm_no_restore, "fsm.restore");
	REFUSED(c_.storage = 7, "storage");
	REFUSED((c_.storage = SR_SERVER_WAL, c_.data_dir = NULL), "data_dir");
	REFUSED(c_.listen_addr = NULL, "listen_addr");
	REFUSED(c_.listen_addr = "localhost", "listen_addr");
	REFUSED(c_.advertise_addr = "", "advertise_addr");
	REFUSED(c_.raft.heartbeat_ms = 2000, "raft.heartbeat_ms");
	REFUSED(c_.raft.storage = sr_mem_ops(), "raft.storage");
	REFUSED(c_.raft.transport = &dummy_transport, "raft.transport");
	REFUSED(c_.raft.fsm = &fsm, "raft.fsm");
	REFUSED(c_.raft.host.done = on_done, "raft.host");
	REFUSED(c_.raft.id = 9, "raft.id");
	REFUSED(c_.tcp.id = 9, "tcp.id");
	REFUSED(c_.tcp.loop = other_loop, "tcp.loop");
	REFUSED(c_.tcp.listen_addr = "127.0.0.1:1", "tcp.listen_addr");
	REFUSED(c_.tcp.log = dummy_log, "tcp.log");
	REFUSED(c_.wal.done = dummy_done, "wal.done");
	REFUSED(c_.wal.dir = "/tmp", "wal.dir");
	REFUSED(c_.host.log = dummy_log, "host.log");
	/* The engine learns the transport's frame limit: entries of the
	 * default 16 MiB cannot travel in 4 MiB frames. */
	REFUSED(c_.tcp.max_frame_bytes = 4u << 20, "transport_max_payload");
	REFUSED(c_.peers.members[0].addr[0] = 0, "peers");
	/* Nothing was created: a valid config still works. */
	{
		sr_server_config c;
		config_for(&c, &M[0], SR_SERVER_MEM, NULL);
		/* ... and entries that fit them are fine */
		c.tcp.max_frame_bytes = 4u << 20;
		c.raft.max_entry_bytes = 1u << 20;
		CHECK_EQ(sr_server_create(&c, &M[0].srv), 0);
		/* Calls before start are refused, with a reason. */
		CHECK_EQ(sr_server_propose(M[0].srv, "x", 1, NULL, NULL),
			 SR_ESTATE);
		CHECK(strstr(M[0].log, "before sr_server_start") != NULL);
		CHECK_EQ(sr_server_tick(M[0].srv), SR_ESTATE);
		CHECK_EQ(sr_server_start(M[0].srv), 0);
		CHECK_EQ(sr_server_start(M[0].srv), SR_ESTATE);
	}
	members_free();
}

int main(int argc, char **argv)
{
	return test_main(argc, argv);
}

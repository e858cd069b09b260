/*
 * scale_node.c — one process of the multi-group scale benchmark
 * (`make bench-scale`, bench/bench_scale.py, docs/benchmarks.md
 * "Multi-group scale").
 *
 * An sr_server with no default group carrying groups 1..G, each with the
 * same three members (this process and two others), and a state machine
 * that does nothing: the cluster is idle, so everything it sends is
 * heartbeats and their answers.  With a WAL directory a restart reopens
 * the groups the WAL holds (sr_server_groups_on_disk()); with --mem every
 * start is empty.
 *
 * Every --every ms it prints one status line on stdout for the driver:
 *
 *   status t=MS groups=G leaders=L known=K caught=C msgs_sent=..
 *          frames_sent=.. batched=.. msgs_recv=.. frames_recv=..
 *          writes=.. bytes_sent=.. coalesced=.. coalesced_msgs=..
 *
 * (coalesced: coalesced messages sent, each carrying coalesced_msgs of
 * msgs_sent: heartbeats or their answers, seshat/tcp.h)
 *
 * Leaders are spread: group g prefers member (g - 1) mod 3 + 1, and once
 * every group here knows a leader, each status tick hands up to
 * BALANCE_PER_TICK groups this process leads but does not prefer to
 * their preferred member (a leadership transfer, thesis §3.10).
 *
 * leaders: groups this process leads; known: groups that know a leader;
 * caught: groups that know a leader and have applied everything they know
 * to be committed (commit > 0).  The transport counters are cumulative.
 * Before the first status line it prints "started groups=G ms=T" (the
 * time create + start took).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "seshat/server.h"

#define MAX_GROUPS	 200000
#define BALANCE_PER_TICK 256

struct opts {
	sr_id id;
	const char *listen;
	const char *dir; /* NULL: memory storage */
	sr_member peers[3];
	int n_peers;
	uint32_t groups;
	uint32_t heartbeat_ms, election_ms;
	uint32_t every_ms;
	long batch_max; /* the transport's batch_max_bytes; -1: default */
};

struct bench {
	struct opts o;
	sr_server *srv;
	sr_group **gs;
	size_t n_gs;
	uint64_t t0;
};

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int fsm_apply(void *ctx, const sr_entry *e, void **result)
{
	(void)ctx;
	(void)e;
	*result = NULL;
	return 0;
}

static const sr_fsm_ops idle_fsm = { .apply = fsm_apply };

static void log_line(void *ctx, int level, const char *line)
{
	(void)ctx;
	if (level >= SR_LOG_WARN)
		fprintf(stderr, "%s\n", line);
}

static sr_id preferred(const struct bench *b, uint32_t group)
{
	return b->o.peers[(group - 1) % 3].id;
}

/* Hand groups led here but preferring another member to it. */
static void balance(struct bench *b)
{
	int budget = BALANCE_PER_TICK;
	for (size_t i = 0; i < b->n_gs && budget > 0; i++) {
		sr_status st;
		sr_group_status(b->gs[i], &st);
		sr_id want = preferred(b, sr_group_id(b->gs[i]));
		if (st.role == SR_LEADER && want != b->o.id) {
			sr_group_transfer(b->gs[i], want);
			budget--;
		}
	}
}

static void status_cb(sr_loop *loop, uint64_t id, void *ctx)
{
	struct bench *b = ctx;
	uint32_t leaders = 0, known = 0, caught = 0;
	(void)id;

	for (size_t i = 0; i < b->n_gs; i++) {
		sr_status st;
		sr_group_status(b->gs[i], &st);
		if (st.role == SR_LEADER)
			leaders++;
		if (st.leader) {
			known++;
			if (st.commit_index &&
			    st.applied_index >= st.commit_index)
				caught++;
		}
	}
	sr_tcp_stats ts;
	sr_tcp_stats_get(sr_server_tcp(b->srv), &ts);
	printf("status t=%llu groups=%zu leaders=%u known=%u caught=%u "
	       "msgs_sent=%llu frames_sent=%llu batched=%llu msgs_recv=%llu "
	       "frames_recv=%llu writes=%llu bytes_sent=%llu coalesced=%llu "
	       "coalesced_msgs=%llu\n",
	       (unsigned long long)(mono_ms() - b->t0), b->n_gs, leaders, known,
	       caught, (unsigned long long)ts.msgs_sent,
	       (unsigned long long)ts.frames_sent,
	       (unsigned long long)ts.batched_msgs,
	       (unsigned long long)ts.msgs_recv,
	       (unsigned long long)ts.frames_recv,
	       (unsigned long long)ts.writes, (unsigned long long)ts.bytes_sent,
	       (unsigned long long)ts.coalesced_sent,
	       (unsigned long long)ts.coalesced_msgs);
	fflush(stdout);
	if (known == b->n_gs)
		balance(b);
	sr_loop_timer_add(loop, b->o.every_ms, status_cb, b, NULL);
}

/* "ID=HOST:PORT" */
static int parse_peer(struct opts *o, const char *s)
{
	char *end;
	if (o->n_peers == 3)
		return -1;
	unsigned long id = strtoul(s, &end, 10);
	if (!id || *end != '=' || strlen(end + 1) >= SR_ADDR_MAX)
		return -1;
	sr_member *m = &o->peers[o->n_peers++];
	memset(m, 0, sizeof(*m));
	m->id = id;
	m->role = SR_ROLE_VOTER;
	strcpy(m->addr, end + 1);
	return 0;
}

static int parse(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "id", required_argument, NULL, 'i' },
		{ "listen", required_argument, NULL, 'l' },
		{ "peer", required_argument, NULL, 'p' },
		{ "groups", required_argument, NULL, 'g' },
		{ "dir", required_argument, NULL, 'd' },
		{ "heartbeat", required_argument, NULL, 'h' },
		{ "election", required_argument, NULL, 'e' },
		{ "every", required_argument, NULL, 'v' },
		{ "batch-max", required_argument, NULL, 'b' },
		{ NULL, 0, NULL, 0 }
	};
	int c;

	memset(o, 0, sizeof(*o));
	o->groups = 1;
	o->every_ms = 500;
	o->batch_max = -1;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'i':
			o->id = strtoull(optarg, NULL, 10);
			break;
		case 'l':
			o->listen = optarg;
			break;
		case 'p':
			if (parse_peer(o, optarg))
				return -1;
			break;
		case 'g':
			o->groups = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'd':
			o->dir = optarg;
			break;
		case 'h':
			o->heartbeat_ms = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'e':
			o->election_ms = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'v':
			o->every_ms = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'b':
			o->batch_max = strtol(optarg, NULL, 10);
			break;
		default:
			return -1;
		}
	}
	if (!o->id || !o->listen || o->n_peers != 3 || !o->groups ||
	    o->groups > MAX_GROUPS || !o->every_ms)
		return -1;
	return 0;
}

static int make_server(struct bench *b)
{
	sr_server_config cfg;
	sr_server_config_init(&cfg, b->o.id);
	cfg.cluster_id = 0x5ca1e;
	cfg.listen_addr = b->o.listen;
	cfg.no_default_group = 1;
	cfg.storage = b->o.dir ? SR_SERVER_WAL : SR_SERVER_MEM;
	cfg.data_dir = b->o.dir;
	cfg.log = log_line;
	if (b->o.heartbeat_ms)
		cfg.raft.heartbeat_ms = b->o.heartbeat_ms;
	if (b->o.election_ms)
		cfg.raft.election_timeout_ms = b->o.election_ms;
	if (b->o.batch_max >= 0)
		cfg.tcp.batch_max_bytes = (uint32_t)b->o.batch_max;
	return sr_server_create(&cfg, &b->srv);
}

static int make_groups(struct bench *b)
{
	b->gs = calloc(b->o.groups, sizeof(*b->gs));
	if (!b->gs)
		return SR_ENOMEM;
	for (uint32_t g = 1; g <= b->o.groups; g++) {
		sr_group_config gc;
		sr_group_config_init(&gc, g);
		gc.peers.n = 3;
		memcpy(gc.peers.members, b->o.peers, sizeof(b->o.peers));
		gc.fsm = &idle_fsm;
		int rc = sr_server_group_create(b->srv, &gc, &b->gs[b->n_gs]);
		if (rc) {
			fprintf(stderr, "group %u: %s\n", g, sr_strerror(rc));
			return rc;
		}
		b->n_gs++;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct bench b;
	memset(&b, 0, sizeof(b));
	if (parse(argc, argv, &b.o)) {
		fprintf(stderr, "usage: scale_node --id N --listen HOST:PORT "
				"--peer "
				"ID=HOST:PORT (x3, this node too) --groups G "
				"[--dir "
				"WALDIR] [--heartbeat MS] [--election MS] "
				"[--every "
				"MS] [--batch-max BYTES]\n");
		return 2;
	}
	b.t0 = mono_ms();
	int rc = make_server(&b);
	if (rc == 0)
		rc = sr_server_start(b.srv);
	if (rc == 0)
		rc = make_groups(&b);
	if (rc) {
		fprintf(stderr, "scale_node: %s\n", sr_strerror(rc));
		return 1;
	}
	printf("started groups=%zu ms=%llu\n", b.n_gs,
	       (unsigned long long)(mono_ms() - b.t0));
	fflush(stdout);
	sr_loop_timer_add(sr_server_loop(b.srv), 0, status_cb, &b, NULL);
	rc = sr_server_run(b.srv);
	sr_server_destroy(b.srv);
	free(b.gs);
	return rc ? 1 : 0;
}

/*
 * bench/seshat_node.c — the library-level figure: one member of a 3-member
 * cluster built from the library's own pieces (the engine, sr_wal, sr_tcp
 * on one sr_loop), one process per member on loopback, and on the leader a
 * client that keeps W proposals of 100 bytes in flight.  bench/craft_kv.c
 * --bench W is its counterpart on canonical raft; bench/bench_kv.py runs
 * both in the same run with the same W and prints them side by side.
 *
 * The wiring is what every host does today (examples/kvnode/raft.c does
 * the same): bring the engine's clock up to date before each call, a timer
 * at sr_node_deadline(), the WAL's eventfd to sr_wal_process() (whose done
 * callback is sr_node_storage_done()), transport messages to
 * sr_node_step().  Proposals cannot be made from inside the engine's done
 * callback, so completions only count free slots, and a deferred call
 * refills them with one sr_node_propose_batch() after the engine returns
 * (the same batching a server gets from reading all ready clients first).
 *
 * A follower writes its appends on the loop's thread when the WAL's writer
 * is idle, as sr_server does (--follower-write writer turns that off).
 *
 * --engine picks the WAL's I/O engine (posix, the default, as kvnode
 * uses; uring needs a library built with liburing).
 *
 * Member 1 has a shorter election timeout so it is usually the leader;
 * whichever member leads runs the load, prints one RESULT line (ops/s,
 * p50/p99 latency in µs, the process's CPU µs per committed entry) and
 * exits; the script stops the others.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <seshat/loop.h>
#include <seshat/raft.h>
#include <seshat/tcp.h>
#include <seshat/wal.h>

#define N_MEMBERS   3
#define ENTRY_BYTES 100

static struct {
	unsigned id;
	const char *dir;
	int raft_base;
	unsigned election_ms;
	unsigned w;
	double warmup_s, seconds;
	int engine;
	int no_inline; /* --follower-write writer: always hand to the writer */
} opt = { 0, NULL, 19001, 1000, 1, 1.0, 3.0, SR_WAL_POSIX, 0 };

static sr_loop *loop;
static sr_node *node;
static sr_wal *wal;
static sr_tcp *tcp;
static uint64_t last_tick, tick_timer, tick_at;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what, int rc)
{
	fprintf(stderr, "seshat_node %u: %s: %s\n", opt.id, what,
		sr_strerror(rc));
	exit(1);
}

/* ------------------------------------------------------------------ */
/* Engine wiring                                                      */
/* ------------------------------------------------------------------ */

static void sync_time(void)
{
	uint64_t now = sr_loop_now_ms(loop);
	if (now > last_tick) {
		last_tick = now;
		sr_node_tick(node, now);
	}
}

static void kick(void);

static void on_tick(sr_loop *l, uint64_t id, void *ctx)
{
	(void)l;
	(void)id;
	(void)ctx;
	tick_timer = 0;
	last_tick = 0;
	sync_time();
	kick();
}

static void kick(void)
{
	uint64_t now = sr_loop_now_ms(loop), due = sr_node_deadline(node);

	if (due <= now)
		due = now + 1;
	if (tick_timer && tick_at <= due)
		return;
	if (tick_timer)
		sr_loop_timer_cancel(loop, tick_timer);
	tick_timer = 0;
	if (sr_loop_timer_add(loop, due - now, on_tick, NULL, &tick_timer) == 0)
		tick_at = due;
}

/*
 * A follower writes on the loop's thread, as sr_server does
 * (backends/server/server_glue.c): hold the WAL at the first message of a
 * loop iteration, write what its messages appended at the end of it (or,
 * when the iteration brought more than one append, wake the writer).
 */
static int my_role, wal_held, held_appends;

static void write_held(sr_loop *l, void *ctx)
{
	(void)l;
	(void)ctx;
	wal_held = 0;
	if (held_appends > 1) {
		sr_wal_release(wal); /* busy: keep the writer's pipeline */
		return;
	}
	sr_tcp_flush(tcp);
	sync_time();
	sr_wal_write_now(wal);
	kick();
}

static void on_message(void *ctx, const sr_msg *msg)
{
	(void)ctx;
	if (my_role == SR_FOLLOWER && !wal_held && !opt.no_inline &&
	    sr_loop_defer(loop, write_held, NULL) == 0) {
		sr_wal_hold(wal);
		wal_held = 1;
		held_appends = 0;
	}
	if (wal_held && msg->type == SR_MSG_APPEND && msg->u.append.n_entries)
		held_appends++;
	sync_time();
	sr_node_step(node, msg);
	kick();
}

static void on_storage_done(void *ctx, uint64_t token, int status)
{
	sr_node_storage_done(ctx, token, status);
}

static void on_wal_ready(sr_loop *l, int fd, int events, void *ctx)
{
	(void)l;
	(void)fd;
	(void)events;
	(void)ctx;
	sync_time();
	sr_wal_process(wal);
	kick();
}

/* ------------------------------------------------------------------ */
/* State machine: counts; its snapshot is the count                   */
/* ------------------------------------------------------------------ */

static uint64_t applied;

static int fsm_apply(void *ctx, const sr_entry *e, void **result)
{
	(void)ctx;
	(void)e;
	*result = NULL;
	applied++;
	return 0;
}

static int fsm_snapshot(void *ctx, sr_index index, sr_term term)
{
	(void)ctx;
	(void)index;
	(void)term;
	sr_node_snapshot_write(node, &applied, sizeof(applied));
	return sr_node_snapshot_done(node, 0);
}

static int fsm_restore(void *ctx, sr_index index, sr_term term)
{
	size_t n = 0;
	(void)ctx;
	(void)index;
	(void)term;
	return sr_node_snapshot_read(node, 0, &applied, sizeof(applied), &n);
}

static const sr_fsm_ops fsm_ops = { .apply = fsm_apply,
				    .snapshot = fsm_snapshot,
				    .restore = fsm_restore };

/* ------------------------------------------------------------------ */
/* The load: W proposals in flight                                    */
/* ------------------------------------------------------------------ */

static uint64_t *slot_t0; /* start time of each slot's proposal */
static unsigned *free_slots, n_free;
static uint64_t *lat;
static size_t n_lat, cap_lat;
static uint64_t t_measure, t_end;
static struct rusage ru0;
static int ru0_taken, running, refill_queued;
static char payload[ENTRY_BYTES];

static double cpu_us(const struct rusage *r)
{
	return (double)r->ru_utime.tv_sec * 1e6 + (double)r->ru_utime.tv_usec +
	       (double)r->ru_stime.tv_sec * 1e6 + (double)r->ru_stime.tv_usec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void finish(void)
{
	struct rusage ru1;
	double secs = (double)(t_end - t_measure) / 1e9;

	getrusage(RUSAGE_SELF, &ru1);
	qsort(lat, n_lat, sizeof(*lat), cmp_u64);
	printf("RESULT system=seshat w=%u ops=%.0f p50_us=%.1f p99_us=%.1f "
	       "cpu_us_per_op=%.2f n=%zu\n",
	       opt.w, (double)n_lat / secs,
	       n_lat ? (double)lat[n_lat / 2] / 1e3 : 0.0,
	       n_lat ? (double)lat[n_lat * 99 / 100] / 1e3 : 0.0,
	       n_lat ? (cpu_us(&ru1) - cpu_us(&ru0)) / (double)n_lat : 0.0,
	       n_lat);
	fflush(stdout);
	exit(0);
}

static void refill(sr_loop *l, void *ctx)
{
	sr_buf cmds[256];
	void *cookies[256];
	uint64_t t = now_ns();

	(void)l;
	(void)ctx;
	refill_queued = 0;
	sync_time();
	while (n_free) {
		size_t n = n_free < 256 ? n_free : 256;
		int rc;
		for (size_t i = 0; i < n; i++) {
			unsigned s = free_slots[n_free - 1 - i];
			cmds[i].base = payload;
			cmds[i].len = sizeof(payload);
			cookies[i] = (void *)(uintptr_t)(s + 1);
			slot_t0[s] = t;
		}
		rc = sr_node_propose_batch(node, cmds, n, cookies, NULL);
		if (rc < 0)
			die("propose", rc);
		n_free -= (unsigned)rc;
		if ((size_t)rc < n)
			break; /* backpressure: the next completion retries */
	}
	kick();
}

static void queue_refill(void)
{
	if (!refill_queued && sr_loop_defer(loop, refill, NULL) == 0)
		refill_queued = 1;
}

static void on_done(void *ctx, void *cookie, int status, sr_index index,
		    void *result)
{
	unsigned s = (unsigned)((uintptr_t)cookie - 1);
	uint64_t t = now_ns();

	(void)ctx;
	(void)index;
	(void)result;
	if (status)
		die("proposal", status);
	if (!running)
		return;
	if (t >= t_measure && slot_t0[s] >= t_measure) {
		if (n_lat == cap_lat) {
			cap_lat = cap_lat ? cap_lat * 2 : 65536;
			lat = realloc(lat, cap_lat * sizeof(*lat));
			if (!lat)
				die("latency array", SR_ENOMEM);
		}
		lat[n_lat++] = t - slot_t0[s];
	}
	if (!ru0_taken && t >= t_measure) {
		getrusage(RUSAGE_SELF, &ru0);
		ru0_taken = 1;
	}
	if (t >= t_end) {
		t_end = t;
		finish();
	}
	free_slots[n_free++] = s;
	queue_refill();
}

static void on_state(void *ctx, int role, sr_term term, sr_id leader)
{
	uint64_t t;

	(void)ctx;
	(void)term;
	(void)leader;
	my_role = role;
	if (role != SR_LEADER || running)
		return;
	running = 1;
	t = now_ns();
	t_measure = t + (uint64_t)(opt.warmup_s * 1e9);
	t_end = t_measure + (uint64_t)(opt.seconds * 1e9);
	slot_t0 = calloc(opt.w, sizeof(*slot_t0));
	free_slots = calloc(opt.w, sizeof(*free_slots));
	if (!slot_t0 || !free_slots)
		die("slots", SR_ENOMEM);
	for (unsigned i = 0; i < opt.w; i++)
		free_slots[n_free++] = opt.w - 1 - i;
	queue_refill();
}

/* ------------------------------------------------------------------ */
/* Start                                                              */
/* ------------------------------------------------------------------ */

static void usage(void)
{
	fprintf(stderr, "usage: seshat_node --id N --dir DIR [--raft-base "
			"PORT] [--election-ms N] [--w W] [--warmup S] "
			"[--seconds S] [--engine posix|uring|auto] "
			"[--follower-write inline|writer]\n");
	exit(2);
}

static void parse_args(int argc, char **argv)
{
	if (argc % 2 == 0)
		usage(); /* every option takes a value */
	for (int i = 1; i + 1 < argc; i += 2) {
		const char *a = argv[i], *v = argv[i + 1];
		if (!strcmp(a, "--id"))
			opt.id = (unsigned)atoi(v);
		else if (!strcmp(a, "--dir"))
			opt.dir = v;
		else if (!strcmp(a, "--raft-base"))
			opt.raft_base = atoi(v);
		else if (!strcmp(a, "--election-ms"))
			opt.election_ms = (unsigned)atoi(v);
		else if (!strcmp(a, "--w"))
			opt.w = (unsigned)atoi(v);
		else if (!strcmp(a, "--warmup"))
			opt.warmup_s = atof(v);
		else if (!strcmp(a, "--seconds"))
			opt.seconds = atof(v);
		else if (!strcmp(a, "--follower-write"))
			opt.no_inline = !strcmp(v, "writer");
		else if (!strcmp(a, "--engine"))
			opt.engine = !strcmp(v, "uring")  ? SR_WAL_URING
				     : !strcmp(v, "auto") ? SR_WAL_AUTO
							  : SR_WAL_POSIX;
		else
			usage();
	}
	if (opt.id < 1 || opt.id > N_MEMBERS || !opt.dir || opt.w < 1)
		usage();
}

int main(int argc, char **argv)
{
	sr_wal_options wo;
	sr_tcp_config tc;
	sr_config cfg;
	sr_membership conf;
	char addr[64];
	int rc;

	parse_args(argc, argv);
	memset(payload, 'x', sizeof(payload));
	if ((rc = sr_loop_create(NULL, &loop)))
		die("loop", rc);
	sr_wal_options_init(&wo, opt.dir);
	wo.engine = opt.engine;
	if ((rc = sr_wal_open(&wo, &wal)))
		die("wal", rc);
	snprintf(addr, sizeof(addr), "127.0.0.1:%d",
		 opt.raft_base + (int)opt.id - 1);
	sr_tcp_config_init(&tc, opt.id, 1);
	tc.listen_addr = addr;
	tc.loop = loop;
	tc.on_message = on_message;
	if ((rc = sr_tcp_create(&tc, &tcp)))
		die("tcp", rc);

	memset(&conf, 0, sizeof(conf));
	for (unsigned i = 1; i <= N_MEMBERS; i++) {
		char a[64];
		snprintf(a, sizeof(a), "127.0.0.1:%d",
			 opt.raft_base + (int)i - 1);
		sr_membership_add(&conf, i, SR_ROLE_VOTER, a);
		if (i != opt.id && (rc = sr_tcp_set_peer(tcp, i, a)))
			die("peer", rc);
	}
	sr_config_init(&cfg, opt.id);
	cfg.election_timeout_ms = opt.election_ms;
	cfg.heartbeat_ms = opt.election_ms / 10;
	cfg.seed = opt.id * 7919u + (uint64_t)now_ns();
	cfg.storage = sr_wal_storage_ops();
	cfg.storage_ctx = wal;
	cfg.fsm = &fsm_ops;
	cfg.transport = sr_tcp_transport_ops();
	cfg.transport_ctx = tcp;
	cfg.host.done = on_done;
	cfg.host.state_changed = on_state;
	if ((rc = sr_node_create(&cfg, &node)))
		die("node", rc);
	sr_wal_set_done(wal, on_storage_done, node);
	rc = sr_node_bootstrap(node, &conf);
	if (rc && rc != SR_EEXIST)
		die("bootstrap", rc);
	last_tick = sr_loop_now_ms(loop);
	if ((rc = sr_node_start(node, last_tick)))
		die("start", rc);
	if ((rc = sr_loop_watch(loop, sr_wal_fd(wal), SR_LOOP_READ,
				on_wal_ready, NULL)))
		die("watch", rc);
	kick();
	return sr_loop_run(loop) ? 1 : 0;
}

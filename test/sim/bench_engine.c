/*
 * bench_engine.c — what the engine costs, without disks or sockets.
 *
 * Three engines in one process on synchronous in-memory stores, joined by
 * an in-process network that delivers every message in order with no
 * delay (each message deep-copied into an arena, as a transport would
 * serialize it).  A client keeps W proposals of 100 bytes in flight on the
 * leader (W = 1: one round trip per entry; W = 256: the leader batches
 * whatever is waiting into one append with sr_node_propose_batch), and the
 * benchmark counts entries committed and acknowledged per second.  The
 * state machine adds the bytes it applies and takes a snapshot (8 bytes)
 * when the engine asks, so the stores are compacted as they would be.
 *
 * Instructions per committed entry come from running this same binary
 * under valgrind's callgrind at two entry counts; the difference divided
 * by the difference in entries removes the set-up cost.  (perf's counters
 * are not available on every machine; callgrind is.)
 *
 *   bench_engine                      the figures docs/benchmarks.md shows
 *   bench_engine --window W --count N --runs R [--no-callgrind] [--quiet]
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <seshat/mem.h>
#include <seshat/raft.h>

#define NODES	    3
#define ENTRY_BYTES 100
#define MAX_WINDOW  4096
#define CHUNK_BYTES (4u << 20)

/* ------------------------------------------------------------------ */
/* The network: a FIFO of messages copied into chunks that never move   */
/* ------------------------------------------------------------------ */

struct chunk {
	struct chunk *next;
	size_t used, cap;
	unsigned char data[];
};

struct qmsg {
	int to;
	sr_msg m;
};

struct net {
	struct chunk *head, *cur; /* chunks; reset when the queue drains */
	struct qmsg **q;
	size_t q_head, q_n, q_cap;
	uint64_t sent, bytes;
};

static void *net_alloc(struct net *nt, size_t size)
{
	struct chunk *c = nt->cur;

	size = (size + 15) & ~(size_t)15;
	while (!c || c->used + size > c->cap) {
		if (c && c->next) {
			c = c->next;
			c->used = 0;
			continue;
		}
		{
			size_t cap = size > CHUNK_BYTES ? size : CHUNK_BYTES;
			struct chunk *n = malloc(sizeof(*n) + cap);

			if (!n)
				abort();
			n->next = NULL;
			n->used = 0;
			n->cap = cap;
			if (c)
				c->next = n;
			else
				nt->head = n;
			c = n;
		}
	}
	nt->cur = c;
	c->used += size;
	return c->data + c->used - size;
}

static void net_push(struct net *nt, struct qmsg *qm)
{
	if (nt->q_n == nt->q_cap) {
		size_t ncap = nt->q_cap ? nt->q_cap * 2 : 1024;
		struct qmsg **q = malloc(ncap * sizeof(*q));

		if (!q)
			abort();
		for (size_t i = 0; i < nt->q_n; i++)
			q[i] = nt->q[(nt->q_head + i) % nt->q_cap];
		free(nt->q);
		nt->q = q;
		nt->q_head = 0;
		nt->q_cap = ncap;
	}
	nt->q[(nt->q_head + nt->q_n++) % nt->q_cap] = qm;
}

struct bench;

struct bnode {
	struct bench *b;
	int idx;
	sr_node *node;
	sr_mem *mem;
	uint64_t state; /* the state machine: bytes applied */
};

struct bench {
	struct bnode n[NODES];
	struct net net;
	uint64_t now;
	uint64_t acked, inflight;
	int leader;
	uint64_t payload_seq;
};

static int b_send(void *ctx, const sr_msg *m)
{
	struct bnode *bn = ctx;
	struct net *nt = &bn->b->net;
	size_t extra = 0;
	struct qmsg *qm;

	if (m->type == SR_MSG_APPEND) {
		extra = m->u.append.n_entries * sizeof(sr_entry);
		for (uint32_t i = 0; i < m->u.append.n_entries; i++)
			extra += m->u.append.entries[i].len;
	} else if (m->type == SR_MSG_SNAPSHOT) {
		extra = (size_t)m->u.snapshot.conf_len + m->u.snapshot.len;
	}
	qm = net_alloc(nt, sizeof(*qm) + extra);
	qm->to = (int)m->to - 1;
	qm->m = *m;
	if (m->type == SR_MSG_APPEND && m->u.append.n_entries) {
		sr_entry *e = (sr_entry *)(qm + 1);
		unsigned char *p = (unsigned char *)(e + m->u.append.n_entries);

		for (uint32_t i = 0; i < m->u.append.n_entries; i++) {
			e[i] = m->u.append.entries[i];
			if (e[i].len) {
				memcpy(p, e[i].data, e[i].len);
				e[i].data = p;
				p += e[i].len;
			}
		}
		qm->m.u.append.entries = e;
	} else if (m->type == SR_MSG_SNAPSHOT) {
		unsigned char *p = (unsigned char *)(qm + 1);

		memcpy(p, m->u.snapshot.conf, m->u.snapshot.conf_len);
		qm->m.u.snapshot.conf = p;
		p += m->u.snapshot.conf_len;
		memcpy(p, m->u.snapshot.data, m->u.snapshot.len);
		qm->m.u.snapshot.data = p;
	}
	nt->sent++;
	nt->bytes += extra;
	net_push(nt, qm);
	return 0;
}

/* Deliver until nothing is in flight. */
static void net_drain(struct bench *b)
{
	struct net *nt = &b->net;

	while (nt->q_n) {
		struct qmsg *qm = nt->q[nt->q_head];

		nt->q_head = (nt->q_head + 1) % nt->q_cap;
		nt->q_n--;
		sr_node_step(b->n[qm->to].node, &qm->m);
	}
	nt->q_head = 0;
	nt->cur = nt->head;
	if (nt->cur)
		nt->cur->used = 0;
}

/* ------------------------------------------------------------------ */
/* State machine and host                                              */
/* ------------------------------------------------------------------ */

static int b_apply(void *ctx, const sr_entry *e, void **result)
{
	struct bnode *bn = ctx;

	bn->state += e->len;
	*result = NULL;
	return 0;
}

static int b_snapshot(void *ctx, sr_index index, sr_term term)
{
	struct bnode *bn = ctx;

	(void)index;
	(void)term;
	if (sr_node_snapshot_write(bn->node, &bn->state, sizeof(bn->state)))
		return sr_node_snapshot_done(bn->node, SR_EIO);
	return sr_node_snapshot_done(bn->node, 0);
}

static int b_restore(void *ctx, sr_index index, sr_term term)
{
	struct bnode *bn = ctx;
	size_t n = 0;

	(void)index;
	(void)term;
	return sr_node_snapshot_read(bn->node, 0, &bn->state, sizeof(bn->state),
				     &n);
}

static void b_done(void *ctx, void *cookie, int status, sr_index index,
		   void *result)
{
	struct bnode *bn = ctx;

	(void)cookie;
	(void)index;
	(void)result;
	if (status == 0)
		bn->b->acked++;
	bn->b->inflight--;
}

static void b_storage_done(void *ctx, uint64_t token, int status)
{
	struct bnode *bn = ctx;

	sr_node_storage_done(bn->node, token, status);
}

static const sr_fsm_ops fsm = { .apply = b_apply,
				.snapshot = b_snapshot,
				.restore = b_restore };
static const sr_transport_ops transport = { .send = b_send };

/* Time passed: every engine hears of it (raft.h: tick before delivering). */
static void bench_tick(struct bench *b)
{
	for (int i = 0; i < NODES; i++)
		sr_node_tick(b->n[i].node, b->now);
}

static int bench_init(struct bench *b)
{
	sr_membership conf;

	memset(b, 0, sizeof(*b));
	memset(&conf, 0, sizeof(conf));
	for (int i = 0; i < NODES; i++)
		sr_membership_add(&conf, (sr_id)i + 1, SR_ROLE_VOTER, "bench");
	for (int i = 0; i < NODES; i++) {
		struct bnode *bn = &b->n[i];
		sr_mem_config mc = { .mode = SR_MEM_SYNC,
				     .done = b_storage_done,
				     .done_ctx = bn };
		sr_config cfg;
		int rv;

		bn->b = b;
		bn->idx = i;
		sr_config_init(&cfg, (sr_id)i + 1);
		cfg.election_timeout_ms = i == 0 ? 100 : 1000;
		cfg.heartbeat_ms = 50;
		cfg.seed = (uint64_t)i + 1;
		cfg.storage = sr_mem_ops();
		cfg.fsm = &fsm;
		cfg.fsm_ctx = bn;
		cfg.transport = &transport;
		cfg.transport_ctx = bn;
		cfg.host.done = b_done;
		cfg.host_ctx = bn;
		if ((rv = sr_mem_create(&mc, &bn->mem)))
			return rv;
		cfg.storage_ctx = bn->mem;
		if ((rv = sr_node_create(&cfg, &bn->node)) ||
		    (rv = sr_node_bootstrap(bn->node, &conf)) ||
		    (rv = sr_node_start(bn->node, 0)))
			return rv;
	}
	b->leader = -1;
	while (b->leader < 0 && b->now < 10000) {
		b->now++;
		bench_tick(b);
		net_drain(b);
		for (int i = 0; i < NODES; i++) {
			sr_status st;

			sr_node_status(b->n[i].node, &st);
			if (st.role == SR_LEADER)
				b->leader = i;
		}
	}
	return b->leader < 0 ? SR_ETIMEOUT : 0;
}

static void bench_free(struct bench *b)
{
	struct chunk *c = b->net.head;

	for (int i = 0; i < NODES; i++) {
		sr_node_destroy(b->n[i].node);
		sr_mem_destroy(b->n[i].mem);
	}
	while (c) {
		struct chunk *next = c->next;
		free(c);
		c = next;
	}
	free(b->net.q);
}

/* Keep `window` proposals in flight until `count` are acknowledged. */
static int bench_run(struct bench *b, uint64_t window, uint64_t count)
{
	static unsigned char data[MAX_WINDOW][ENTRY_BYTES];
	static sr_buf bufs[MAX_WINDOW];
	sr_node *ld = b->n[b->leader].node;
	uint64_t goal = b->acked + count, spins = 0;

	while (b->acked < goal) {
		uint64_t k = window - b->inflight;

		if (goal - b->acked - b->inflight < k)
			k = goal - b->acked - b->inflight;
		for (uint64_t i = 0; i < k; i++) {
			memcpy(data[i], &b->payload_seq,
			       sizeof(b->payload_seq));
			b->payload_seq++;
			bufs[i].base = data[i];
			bufs[i].len = ENTRY_BYTES;
		}
		if (k == 1) {
			if (sr_node_propose(ld, data[0], ENTRY_BYTES, NULL,
					    NULL) == 0)
				b->inflight++;
		} else if (k > 1) {
			int rv = sr_node_propose_batch(ld, bufs, k, NULL, NULL);
			if (rv > 0)
				b->inflight += (uint64_t)rv;
		}
		net_drain(b);
		if (++spins % 64 == 0) { /* time passes: heartbeats */
			b->now++;
			bench_tick(b);
			net_drain(b);
		}
		if (spins > 100 * count + 1000000)
			return SR_ETIMEOUT;
	}
	return 0;
}

/*
 * The figures mean something only if the work was done: the leader
 * committed every entry, and after a heartbeat every follower applied
 * the same bytes.
 */
static int bench_check(struct bench *b, uint64_t count)
{
	sr_status st;

	for (int i = 0; i < 200; i++) {
		b->now++;
		bench_tick(b);
		net_drain(b);
	}
	sr_node_status(b->n[b->leader].node, &st);
	if (st.commit_index < count || st.applied_index != st.commit_index)
		return SR_ESTATE;
	for (int i = 0; i < NODES; i++)
		if (b->n[i].state != b->n[b->leader].state ||
		    b->n[i].state < count * ENTRY_BYTES)
			return SR_ESTATE;
	return 0;
}

static double secs(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One measured run: entries per second (0 on failure). */
static double one_run(uint64_t window, uint64_t count)
{
	struct bench b;
	double t0, t1;
	int rv = bench_init(&b);

	if (rv == 0)
		rv = bench_run(&b, window, 1000); /* warm up */
	t0 = secs();
	if (rv == 0)
		rv = bench_run(&b, window, count);
	t1 = secs();
	if (rv == 0)
		rv = bench_check(&b, count);
	bench_free(&b);
	if (rv) {
		fprintf(stderr, "bench: %s\n", sr_strerror(rv));
		return 0;
	}
	return (double)count / (t1 - t0);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Instructions callgrind counts for `count` entries (0 if unavailable). */
static double callgrind_ir(const char *self, uint64_t window, uint64_t count)
{
	char cmd[1024], line[512];
	double ir = 0;
	FILE *p;

	snprintf(cmd, sizeof(cmd),
		 "valgrind --tool=callgrind --callgrind-out-file=/dev/null "
		 "'%s' --window %" PRIu64 " --count %" PRIu64 " --runs 1 "
		 "--no-callgrind "
		 "--quiet 2>&1",
		 self, window, count);
	p = popen(cmd, "r");
	if (!p)
		return 0;
	while (fgets(line, sizeof(line), p)) {
		char *s = strstr(line, "Collected :");
		if (s)
			ir = strtod(s + 11, NULL);
	}
	if (pclose(p) != 0)
		return 0;
	return ir;
}

int main(int argc, char **argv)
{
	static const uint64_t windows[] = { 1, 256 };
	uint64_t window = 0, count = 0;
	int runs = 5, use_callgrind = 1, quiet = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--window") && i + 1 < argc)
			window = strtoull(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--count") && i + 1 < argc)
			count = strtoull(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--runs") && i + 1 < argc)
			runs = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--no-callgrind"))
			use_callgrind = 0;
		else if (!strcmp(argv[i], "--quiet"))
			quiet = 1;
		else {
			fprintf(stderr,
				"usage: %s [--window W] [--count N] "
				"[--runs R] [--no-callgrind] [--quiet]\n",
				argv[0]);
			return 2;
		}
	}
	if (window > MAX_WINDOW || runs < 1 || runs > 99) {
		fprintf(stderr, "window <= %d, 1 <= runs <= 99\n", MAX_WINDOW);
		return 2;
	}
	if (!quiet)
		printf("engine: %d engines in one process, sr_mem (sync), "
		       "in-process network, %d-byte entries\n",
		       NODES, ENTRY_BYTES);
	for (size_t w = 0; w < 2; w++) {
		uint64_t win = window ? window : windows[w];
		uint64_t cnt = count ? count : win == 1 ? 200000 : 2000000;
		double r[99], ir_lo, ir_hi;

		if (window && w)
			break;
		for (int i = 0; i < runs; i++)
			r[i] = one_run(win, cnt);
		qsort(r, (size_t)runs, sizeof(r[0]), cmp_double);
		if (r[0] == 0)
			return 1;
		if (!quiet)
			printf("  %4" PRIu64 " in flight: %10.0f entries/s "
			       "(median of %d; min %.0f, max %.0f)\n",
			       win, r[runs / 2], runs, r[0], r[runs - 1]);
		if (!use_callgrind)
			continue;
		ir_lo = callgrind_ir(argv[0], win, 5000);
		ir_hi = callgrind_ir(argv[0], win, 25000);
		if (ir_lo > 0 && ir_hi > ir_lo)
			printf("  %4" PRIu64 " in flight: %10.0f instructions "
			       "per committed entry (callgrind, 3 engines)\n",
			       win, (ir_hi - ir_lo) / 20000.0);
		else
			printf("  %4" PRIu64 " in flight: (valgrind not found: "
			       "no instruction count)\n",
			       win);
	}
	return 0;
}

/*
 * bench/craft_kv.c — canonical raft (Debian's libraft-dev 0.15, raft_uv +
 * raft_uv_tcp on libuv) behind a tiny Redis-protocol front end, so that the
 * same load generator (redis-benchmark) drives it, kvnode and Redis alike.
 * Built only by `make bench-kv`; it is a measuring stick, not a product.
 *
 * One process is one member.  Members 1..3 listen for Raft on
 * 127.0.0.1:RAFT_BASE+id-1 and for clients on 127.0.0.1:CLIENT_BASE+id-1.
 * The state machine is a hash map of keys to values; a SET is one
 * raft_apply() of one entry (key and value), answered +OK when it is
 * applied on the leader, i.e. once a majority has it on disk (raft_uv
 * makes each append durable before it reports it written).  GET reads the
 * leader's map (not linearizable: enough for a benchmark).  PING, INFO
 * (role:leader / role:follower), CONFIG (an empty reply, which
 * redis-benchmark asks for) and nothing else.  A connection's commands are
 * answered in order: parsing stops while a SET waits.
 *
 * Snapshots come as often as kvnode's for this benchmark's SETs, so the
 * two do the same kind of work: kvnode snapshots every 64 MiB of applied
 * entries (--snapshot-bytes), about 450 000 SETs of 100-byte values;
 * canonical raft counts entries only.  4 096 entries kept behind.
 *
 * --bench W (the library-level figure): no client port; the leader keeps
 * W proposals of 100 bytes in flight with raft_apply(), measures after a
 * warm-up and prints one RESULT line (ops/s, p50/p99 latency in µs, the
 * process's CPU µs per committed entry), then exits.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <raft.h>
#include <raft/uv.h>
#include <uv.h>

#define N_MEMBERS 3

static struct {
	unsigned id;
	const char *dir;
	int raft_base;
	int client_base;
	unsigned election_ms;
	unsigned bench_w;
	double warmup_s, seconds;
} opt = { 0, NULL, 18001, 8001, 1000, 0, 1.0, 3.0 };

static uv_loop_t *loop;
static struct raft raft;
static struct raft_io io;
static struct raft_uv_transport transport;
static struct raft_fsm fsm;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ------------------------------------------------------------------ */
/* The map                                                            */
/* ------------------------------------------------------------------ */

struct item {
	uint32_t klen, vlen;
	char data[]; /* key then value */
};

static struct item **slots;
static size_t n_slots, n_items;

static uint64_t hash(const char *k, size_t n)
{
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)k[i]) * 1099511628211ull;
	return h;
}

static size_t map_find(const char *k, size_t kl)
{
	size_t i = hash(k, kl) & (n_slots - 1);
	while (slots[i] &&
	       (slots[i]->klen != kl || memcmp(slots[i]->data, k, kl) != 0))
		i = (i + 1) & (n_slots - 1);
	return i;
}

static void map_put_item(struct item *it)
{
	size_t i;

	if ((n_items + 1) * 2 > n_slots) {
		struct item **old = slots;
		size_t old_n = n_slots;
		n_slots = n_slots ? n_slots * 2 : 1024;
		slots = calloc(n_slots, sizeof(*slots));
		if (!slots)
			abort(); /* a benchmark harness: out of memory ends it */
		for (size_t j = 0; j < old_n; j++)
			if (old[j])
				slots[map_find(old[j]->data, old[j]->klen)] =
					old[j];
		free(old);
	}
	i = map_find(it->data, it->klen);
	if (slots[i])
		free(slots[i]);
	else
		n_items++;
	slots[i] = it;
}

static void map_put(const char *k, uint32_t kl, const char *v, uint32_t vl)
{
	struct item *it = malloc(sizeof(*it) + kl + vl);
	if (!it)
		abort();
	it->klen = kl;
	it->vlen = vl;
	memcpy(it->data, k, kl);
	memcpy(it->data + kl, v, vl);
	map_put_item(it);
}

static const struct item *map_get(const char *k, size_t kl)
{
	if (!n_slots)
		return NULL;
	return slots[map_find(k, kl)];
}

/* ------------------------------------------------------------------ */
/* The state machine                                                  */
/* ------------------------------------------------------------------ */

static uint64_t applied;

/* An entry is [u32 klen][u32 vlen][key][value]; anything else (the bench
 * mode's opaque payloads) is counted and ignored. */
static int fsm_apply(struct raft_fsm *f, const struct raft_buffer *buf,
		     void **result)
{
	uint32_t kl, vl;

	(void)f;
	*result = NULL;
	applied++;
	if (buf->len < 8)
		return 0;
	memcpy(&kl, buf->base, 4);
	memcpy(&vl, (char *)buf->base + 4, 4);
	if (8 + (size_t)kl + vl != buf->len)
		return 0;
	map_put((char *)buf->base + 8, kl, (char *)buf->base + 8 + kl, vl);
	return 0;
}

static int fsm_snapshot(struct raft_fsm *f, struct raft_buffer *bufs[],
			unsigned *n_bufs)
{
	size_t size = 8, off;
	char *p;

	(void)f;
	for (size_t i = 0; i < n_slots; i++)
		if (slots[i])
			size += 8 + slots[i]->klen + slots[i]->vlen;
	*bufs = raft_malloc(sizeof(**bufs));
	p = raft_malloc(size);
	if (!*bufs || !p)
		return RAFT_NOMEM;
	memcpy(p, &n_items, 8);
	off = 8;
	for (size_t i = 0; i < n_slots; i++) {
		const struct item *it = slots[i];
		size_t n;
		if (!it)
			continue;
		n = 8 + it->klen + it->vlen;
		memcpy(p + off, it, n);
		off += n;
	}
	(*bufs)[0].base = p;
	(*bufs)[0].len = size;
	*n_bufs = 1;
	return 0;
}

static int fsm_snapshot_finalize(struct raft_fsm *f, struct raft_buffer *bufs[],
				 unsigned *n_bufs)
{
	(void)f;
	for (unsigned i = 0; i < *n_bufs; i++)
		raft_free((*bufs)[i].base);
	raft_free(*bufs);
	return 0;
}

static int fsm_restore(struct raft_fsm *f, struct raft_buffer *buf)
{
	const char *p = buf->base, *end = p + buf->len;
	uint64_t n;

	(void)f;
	for (size_t i = 0; i < n_slots; i++)
		free(slots[i]);
	free(slots);
	slots = NULL;
	n_slots = n_items = 0;
	if (buf->len < 8) {
		raft_free(buf->base);
		return RAFT_MALFORMED;
	}
	memcpy(&n, p, 8);
	p += 8;
	for (uint64_t i = 0; i < n && p + 8 <= end; i++) {
		uint32_t kl, vl;
		memcpy(&kl, p, 4);
		memcpy(&vl, p + 4, 4);
		if (p + 8 + kl + vl > end)
			break;
		map_put(p + 8, kl, p + 8 + kl, vl);
		p += 8 + kl + vl;
	}
	raft_free(buf->base);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Clients (RESP)                                                     */
/* ------------------------------------------------------------------ */

struct conn {
	uv_tcp_t tcp;
	char *in;
	size_t in_len, in_cap;
	int busy;    /* a SET is waiting for its commit */
	int closing; /* closed by the peer; freed when no SET waits */
	struct raft_apply req;
};

struct wreq {
	uv_write_t w;
	char data[];
};

static void conn_free(uv_handle_t *h)
{
	struct conn *c = h->data;
	free(c->in);
	free(c);
}

static void conn_close(struct conn *c)
{
	if (c->closing)
		return;
	c->closing = 1;
	uv_read_stop((uv_stream_t *)&c->tcp);
	if (!c->busy)
		uv_close((uv_handle_t *)&c->tcp, conn_free);
}

static void write_done(uv_write_t *w, int status)
{
	(void)status;
	free(w);
}

static void reply(struct conn *c, const char *s, size_t n)
{
	uv_buf_t b = uv_buf_init((char *)s, (unsigned)n);
	int rv;
	struct wreq *w;

	if (c->closing)
		return;
	rv = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
	if (rv == (int)n)
		return;
	if (rv < 0 && rv != UV_EAGAIN) {
		conn_close(c);
		return;
	}
	if (rv > 0) {
		s += rv;
		n -= (size_t)rv;
	}
	w = malloc(sizeof(*w) + n);
	if (!w)
		abort();
	memcpy(w->data, s, n);
	b = uv_buf_init(w->data, (unsigned)n);
	if (uv_write(&w->w, (uv_stream_t *)&c->tcp, &b, 1, write_done))
		free(w);
}

static void reply_str(struct conn *c, const char *s)
{
	reply(c, s, strlen(s));
}

static void conn_parse(struct conn *c);

static void set_done(struct raft_apply *req, int status, void *result)
{
	struct conn *c = req->data;

	(void)result;
	c->busy = 0;
	if (c->closing) {
		uv_close((uv_handle_t *)&c->tcp, conn_free);
		return;
	}
	if (status)
		reply_str(c, "-ERR raft apply failed\r\n");
	else
		reply_str(c, "+OK\r\n");
	conn_parse(c);
}

#define MAX_ARGS 8

/* Parse one command at the start of the buffer: the number of bytes it
 * takes, 0 if incomplete, -1 if malformed.  Multibulk and inline forms. */
static long parse_cmd(const char *p, size_t n, const char **argv, size_t *argl,
		      int *argc)
{
	const char *end = p + n, *q, *nl;
	long count;

	*argc = 0;
	if (n == 0)
		return 0;
	if (p[0] != '*') { /* inline: words separated by spaces */
		nl = memchr(p, '\n', n);
		if (!nl)
			return 0;
		q = p;
		while (q < nl && *argc < MAX_ARGS) {
			while (q < nl && (*q == ' ' || *q == '\r'))
				q++;
			if (q == nl)
				break;
			argv[*argc] = q;
			while (q < nl && *q != ' ' && *q != '\r')
				q++;
			argl[*argc] = (size_t)(q - argv[*argc]);
			(*argc)++;
		}
		return (long)(nl + 1 - p);
	}
	nl = memchr(p, '\n', n);
	if (!nl)
		return 0;
	count = strtol(p + 1, NULL, 10);
	if (count < 1 || count > MAX_ARGS)
		return -1;
	q = nl + 1;
	for (long i = 0; i < count; i++) {
		long len;
		if (q >= end)
			return 0;
		if (*q != '$')
			return -1;
		nl = memchr(q, '\n', (size_t)(end - q));
		if (!nl)
			return 0;
		len = strtol(q + 1, NULL, 10);
		if (len < 0 || len > (1 << 20))
			return -1;
		q = nl + 1;
		if (end - q < len + 2)
			return 0;
		argv[i] = q;
		argl[i] = (size_t)len;
		q += len + 2;
	}
	*argc = (int)count;
	return (long)(q - p);
}

static int is(const char *a, size_t al, const char *word)
{
	return al == strlen(word) && strncasecmp(a, word, al) == 0;
}

/* Run one command; 1 if it waits for a commit. */
static int run_cmd(struct conn *c, const char **argv, const size_t *argl,
		   int argc)
{
	char buf[64];

	if (argc == 0)
		return 0;
	if (is(argv[0], argl[0], "PING")) {
		reply_str(c, "+PONG\r\n");
	} else if (is(argv[0], argl[0], "SET") && argc == 3) {
		uint32_t kl = (uint32_t)argl[1], vl = (uint32_t)argl[2];
		struct raft_buffer b;
		if (raft_state(&raft) != RAFT_LEADER) {
			reply_str(c, "-ERR not the leader\r\n");
			return 0;
		}
		b.len = 8 + (size_t)kl + vl;
		b.base = raft_malloc(b.len);
		if (!b.base)
			abort();
		memcpy(b.base, &kl, 4);
		memcpy((char *)b.base + 4, &vl, 4);
		memcpy((char *)b.base + 8, argv[1], kl);
		memcpy((char *)b.base + 8 + kl, argv[2], vl);
		c->req.data = c;
		if (raft_apply(&raft, &c->req, &b, 1, set_done)) {
			raft_free(b.base);
			reply_str(c, "-ERR raft_apply refused\r\n");
			return 0;
		}
		c->busy = 1;
		return 1;
	} else if (is(argv[0], argl[0], "GET") && argc == 2) {
		const struct item *it = map_get(argv[1], argl[1]);
		if (!it) {
			reply_str(c, "$-1\r\n");
		} else {
			int n = snprintf(buf, sizeof(buf), "$%u\r\n", it->vlen);
			reply(c, buf, (size_t)n);
			reply(c, it->data + it->klen, it->vlen);
			reply(c, "\r\n", 2);
		}
	} else if (is(argv[0], argl[0], "CONFIG")) {
		reply_str(c, "*0\r\n");
	} else if (is(argv[0], argl[0], "INFO")) {
		const char *role = raft_state(&raft) == RAFT_LEADER
					   ? "role:leader\r\n"
					   : "role:follower\r\n";
		int n = snprintf(buf, sizeof(buf), "$%zu\r\n%s\r\n",
				 strlen(role), role);
		reply(c, buf, (size_t)n);
	} else {
		reply_str(c, "-ERR unknown command\r\n");
	}
	return 0;
}

static void conn_parse(struct conn *c)
{
	size_t off = 0;

	while (!c->busy && !c->closing && off < c->in_len) {
		const char *argv[MAX_ARGS];
		size_t argl[MAX_ARGS];
		int argc;
		long used = parse_cmd(c->in + off, c->in_len - off, argv, argl,
				      &argc);
		if (used < 0) {
			reply_str(c, "-ERR protocol error\r\n");
			conn_close(c);
			return;
		}
		if (used == 0)
			break;
		/* The arguments point into c->in: run before moving it. */
		run_cmd(c, argv, argl, argc);
		off += (size_t)used;
	}
	memmove(c->in, c->in + off, c->in_len - off);
	c->in_len -= off;
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct conn *c = h->data;

	(void)hint;
	if (c->in_cap - c->in_len < 65536) {
		c->in_cap = c->in_len + 65536;
		c->in = realloc(c->in, c->in_cap);
		if (!c->in)
			abort();
	}
	*buf = uv_buf_init(c->in + c->in_len,
			   (unsigned)(c->in_cap - c->in_len));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct conn *c = s->data;

	(void)buf;
	if (n < 0) {
		conn_close(c);
		return;
	}
	c->in_len += (size_t)n;
	if (c->in_len > (8u << 20)) {
		conn_close(c);
		return;
	}
	conn_parse(c);
}

static void on_connection(uv_stream_t *server, int status)
{
	struct conn *c;

	if (status < 0)
		return;
	c = calloc(1, sizeof(*c));
	if (!c)
		abort();
	uv_tcp_init(loop, &c->tcp);
	c->tcp.data = c;
	if (uv_accept(server, (uv_stream_t *)&c->tcp)) {
		uv_close((uv_handle_t *)&c->tcp, conn_free);
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

/* ------------------------------------------------------------------ */
/* --bench W: proposals in flight on the leader                       */
/* ------------------------------------------------------------------ */

struct slot {
	struct raft_apply req;
	uint64_t t0;
};

static struct slot *bslots;
static uint64_t *lat;
static size_t n_lat, cap_lat;
static uint64_t t_start, t_measure, t_end, n_done;
static struct rusage ru0;
static int ru0_taken;
static uv_timer_t poll_timer;

static void bench_issue(struct slot *s);

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static double cpu_us(const struct rusage *r)
{
	return (double)r->ru_utime.tv_sec * 1e6 + (double)r->ru_utime.tv_usec +
	       (double)r->ru_stime.tv_sec * 1e6 + (double)r->ru_stime.tv_usec;
}

static void bench_finish(void)
{
	struct rusage ru1;
	double secs = (double)(t_end - t_measure) / 1e9;

	getrusage(RUSAGE_SELF, &ru1);
	qsort(lat, n_lat, sizeof(*lat), cmp_u64);
	printf("RESULT system=craft w=%u ops=%.0f p50_us=%.1f p99_us=%.1f "
	       "cpu_us_per_op=%.2f n=%zu\n",
	       opt.bench_w, (double)n_lat / secs,
	       n_lat ? (double)lat[n_lat / 2] / 1e3 : 0.0,
	       n_lat ? (double)lat[n_lat * 99 / 100] / 1e3 : 0.0,
	       n_lat ? (cpu_us(&ru1) - cpu_us(&ru0)) / (double)n_lat : 0.0,
	       n_lat);
	fflush(stdout);
	exit(0);
}

static void bench_done(struct raft_apply *req, int status, void *result)
{
	struct slot *s = req->data;
	uint64_t t = now_ns();

	(void)result;
	if (status) {
		fprintf(stderr, "craft_kv: apply failed: %s\n",
			raft_strerror(status));
		exit(1);
	}
	n_done++;
	if (t >= t_measure && s->t0 >= t_measure) {
		if (n_lat == cap_lat) {
			cap_lat = cap_lat ? cap_lat * 2 : 65536;
			lat = realloc(lat, cap_lat * sizeof(*lat));
			if (!lat)
				abort();
		}
		lat[n_lat++] = t - s->t0;
	}
	if (t >= t_end) {
		t_end = t;
		bench_finish();
	}
	if (!ru0_taken && t >= t_measure) {
		getrusage(RUSAGE_SELF, &ru0);
		ru0_taken = 1;
	}
	bench_issue(s);
}

static void bench_issue(struct slot *s)
{
	struct raft_buffer b = { raft_malloc(100), 100 };
	int rv;

	if (!b.base)
		abort();
	memset(b.base, 'x', 100);
	s->req.data = s;
	s->t0 = now_ns();
	rv = raft_apply(&raft, &s->req, &b, 1, bench_done);
	if (rv) {
		fprintf(stderr, "craft_kv: raft_apply: %s\n",
			raft_strerror(rv));
		exit(1);
	}
}

static void on_poll(uv_timer_t *t)
{
	(void)t;
	if (raft_state(&raft) != RAFT_LEADER)
		return;
	uv_timer_stop(&poll_timer);
	t_start = now_ns();
	t_measure = t_start + (uint64_t)(opt.warmup_s * 1e9);
	t_end = t_measure + (uint64_t)(opt.seconds * 1e9);
	bslots = calloc(opt.bench_w, sizeof(*bslots));
	if (!bslots)
		abort();
	for (unsigned i = 0; i < opt.bench_w; i++)
		bench_issue(&bslots[i]);
}

/* ------------------------------------------------------------------ */
/* Start                                                              */
/* ------------------------------------------------------------------ */

static void usage(void)
{
	fprintf(stderr, "usage: craft_kv --id N --dir DIR [--raft-base PORT] "
			"[--client-base PORT] [--election-ms N]\n"
			"                [--bench W --warmup S --seconds S]\n");
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
		else if (!strcmp(a, "--client-base"))
			opt.client_base = atoi(v);
		else if (!strcmp(a, "--election-ms"))
			opt.election_ms = (unsigned)atoi(v);
		else if (!strcmp(a, "--bench"))
			opt.bench_w = (unsigned)atoi(v);
		else if (!strcmp(a, "--warmup"))
			opt.warmup_s = atof(v);
		else if (!strcmp(a, "--seconds"))
			opt.seconds = atof(v);
		else
			usage();
	}
	if (opt.id < 1 || opt.id > N_MEMBERS || !opt.dir)
		usage();
}

int main(int argc, char **argv)
{
	struct raft_configuration conf;
	char addr[64];
	uv_tcp_t listener;
	struct sockaddr_in sa;
	int rv;

	parse_args(argc, argv);
	loop = uv_default_loop();
	snprintf(addr, sizeof(addr), "127.0.0.1:%d",
		 opt.raft_base + (int)opt.id - 1);
	if ((rv = raft_uv_tcp_init(&transport, loop)) ||
	    (rv = raft_uv_init(&io, loop, opt.dir, &transport))) {
		fprintf(stderr, "craft_kv: raft_uv init: %s\n",
			raft_strerror(rv));
		return 1;
	}
	fsm.version = 2;
	fsm.apply = fsm_apply;
	fsm.snapshot = fsm_snapshot;
	fsm.snapshot_finalize = fsm_snapshot_finalize;
	fsm.restore = fsm_restore;
	if ((rv = raft_init(&raft, &io, &fsm, opt.id, addr))) {
		fprintf(stderr, "craft_kv: raft_init: %s\n", raft_strerror(rv));
		return 1;
	}
	raft_set_election_timeout(&raft, opt.election_ms);
	raft_set_heartbeat_timeout(&raft, opt.election_ms / 10);
	raft_set_snapshot_threshold(&raft, 450000);
	raft_set_snapshot_trailing(&raft, 4096);
	raft_configuration_init(&conf);
	for (unsigned i = 1; i <= N_MEMBERS; i++) {
		char a[64];
		snprintf(a, sizeof(a), "127.0.0.1:%d",
			 opt.raft_base + (int)i - 1);
		raft_configuration_add(&conf, i, a, RAFT_VOTER);
	}
	rv = raft_bootstrap(&raft, &conf);
	if (rv && rv != RAFT_CANTBOOTSTRAP) {
		fprintf(stderr, "craft_kv: bootstrap: %s\n", raft_strerror(rv));
		return 1;
	}
	raft_configuration_close(&conf);
	if ((rv = raft_start(&raft))) {
		fprintf(stderr, "craft_kv: raft_start: %s\n",
			raft_strerror(rv));
		return 1;
	}
	if (opt.bench_w) {
		uv_timer_init(loop, &poll_timer);
		uv_timer_start(&poll_timer, on_poll, 10, 10);
	} else {
		uv_tcp_init(loop, &listener);
		uv_ip4_addr("127.0.0.1", opt.client_base + (int)opt.id - 1,
			    &sa);
		if ((rv = uv_tcp_bind(&listener, (struct sockaddr *)&sa, 0)) ||
		    (rv = uv_listen((uv_stream_t *)&listener, 1024,
				    on_connection))) {
			fprintf(stderr, "craft_kv: listen: %s\n",
				uv_strerror(rv));
			return 1;
		}
	}
	return uv_run(loop, UV_RUN_DEFAULT);
}

/*
 * harness.h — live TCP transports on loopback for the tests of test/tcp.
 *
 * Every transport of a test shares one sr_loop (L) on the test's thread.
 * A `struct node` wraps a transport with a counting allocator, a log
 * buffer and an inbox that checks arrivals against an expected list.
 * RUN_UNTIL(cond, ms) turns the loop until cond holds or ms pass; the
 * test then CHECKs cond, so a hang becomes a failure with a line number.
 * Raw sockets (raw_*) play hostile or hand-written peers.
 */
#ifndef SR_TEST_TCP_HARNESS_H
#define SR_TEST_TCP_HARNESS_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "count_alloc.h"
#include "msgs.h"
#include "seshat/codec.h"
#include "seshat/tcp.h"

static sr_loop *L;

static inline uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

#define RUN_UNTIL(cond, ms)                                                    \
	do {                                                                   \
		uint64_t t0_ = now_ms();                                       \
		while (!(cond) && now_ms() - t0_ < (uint64_t)(ms))             \
			sr_loop_run_once(L, 5);                                \
	} while (0)

/* Turn the loop for ms milliseconds regardless. */
static inline void run_for(int ms)
{
	uint64_t t0 = now_ms();
	while (now_ms() - t0 < (uint64_t)ms)
		sr_loop_run_once(L, 5);
}

struct node {
	sr_tcp *tcp;
	sr_tcp_config cfg;
	struct count_alloc ca;
	char listen[64];

	int got;	/* messages received */
	int mismatches; /* received != expected */
	const sr_msg *expect;
	int n_expect;
	uint64_t last_seq; /* appends: seq must increase */
	int out_of_order;
	size_t bytes;	   /* entry data received */
	int remove_sender; /* on_message removes the sender */

	char log[8192];
	size_t log_len;
	int warns;
};

static inline void node_log(void *ctx, int level, const char *line)
{
	struct node *n = ctx;
	size_t len = strlen(line);
	if (level >= SR_LOG_WARN)
		n->warns++;
	if (n->log_len + len + 2 > sizeof(n->log))
		n->log_len = 0; /* keep the recent lines */
	memcpy(n->log + n->log_len, line, len);
	n->log_len += len;
	n->log[n->log_len++] = '\n';
	n->log[n->log_len] = 0;
	if (getenv("TCP_TEST_LOG"))
		fprintf(stderr, "[%d] %s\n", level, line);
}

static inline int node_logged(const struct node *n, const char *what)
{
	return n->log_len && strstr(n->log, what) != NULL;
}

static inline void node_on_message(void *ctx, const sr_msg *m)
{
	struct node *n = ctx;
	if (n->expect && n->got < n->n_expect &&
	    !msg_equal(m, &n->expect[n->got]))
		n->mismatches++;
	if (m->type == SR_MSG_APPEND) {
		if (m->u.append.seq <= n->last_seq && n->got)
			n->out_of_order++;
		n->last_seq = m->u.append.seq;
		for (uint32_t i = 0; i < m->u.append.n_entries; i++)
			n->bytes += m->u.append.entries[i].len;
	}
	n->got++;
	if (n->remove_sender)
		sr_tcp_remove_peer(n->tcp, m->from);
}

/* Defaults for node `id`, listening on 127.0.0.1:port (0: any). */
static inline void node_init(struct node *n, sr_id id, uint64_t cluster,
			     int port)
{
	memset(n, 0, sizeof(*n));
	count_alloc_init(&n->ca);
	sr_tcp_config_init(&n->cfg, id, cluster);
	snprintf(n->listen, sizeof(n->listen), "127.0.0.1:%d", port);
	n->cfg.listen_addr = n->listen;
	n->cfg.loop = L;
	n->cfg.on_message = node_on_message;
	n->cfg.ctx = n;
	n->cfg.log = node_log;
	n->cfg.log_ctx = n;
	n->cfg.log_level = SR_LOG_DEBUG;
	n->cfg.alloc = &n->ca.hooks;
	n->cfg.reconnect_min_ms = 10;
	n->cfg.reconnect_max_ms = 200;
}

static inline int node_open(struct node *n)
{
	return sr_tcp_create(&n->cfg, &n->tcp);
}

static inline void node_close(struct node *n)
{
	sr_tcp_destroy(n->tcp);
	n->tcp = NULL;
}

static inline void node_addr(const struct node *n, char *buf, size_t cap)
{
	snprintf(buf, cap, "127.0.0.1:%d", sr_tcp_port(n->tcp));
}

/* a and b know each other. */
static inline void link_nodes(struct node *a, struct node *b)
{
	char addr[64];
	node_addr(b, addr, sizeof(addr));
	sr_tcp_set_peer(a->tcp, b->cfg.id, addr);
	node_addr(a, addr, sizeof(addr));
	sr_tcp_set_peer(b->tcp, a->cfg.id, addr);
}

static inline sr_tcp_stats node_stats(const struct node *n)
{
	sr_tcp_stats st;
	sr_tcp_stats_get(n->tcp, &st);
	return st;
}

static inline int peer_state(const struct node *n, sr_id id)
{
	sr_tcp_peer_info pi;
	if (sr_tcp_peer_get(n->tcp, id, &pi))
		return -1;
	return pi.state;
}

/* A heartbeat-sized append from -> to with sequence number seq. */
static inline sr_msg heartbeat(sr_id from, sr_id to, uint64_t seq)
{
	sr_msg m;
	memset(&m, 0, sizeof(m));
	m.type = SR_MSG_APPEND;
	m.from = from;
	m.to = to;
	m.term = 3;
	m.u.append.prev_index = 10;
	m.u.append.prev_term = 3;
	m.u.append.commit = 9;
	m.u.append.seq = seq;
	return m;
}

/* ---- a connected pair (test_tcp_batch, test_tcp_coalesce) -------- */

/* A new loop L and nodes 1 and 2 of cluster 7, for the caller to tune
 * before pair_connect(). */
static inline void pair_init(struct node *a, struct node *b)
{
	if (sr_loop_create(NULL, &L))
		abort(); /* the test's own setup */
	node_init(a, 1, 7, 0);
	node_init(b, 2, 7, 0);
}

/* Open both, link them and run until they are connected both ways and
 * past their handshakes (so each knows what the other offered); 0 or -1. */
static inline int pair_connect(struct node *a, struct node *b)
{
	if (node_open(a) || node_open(b))
		return -1;
	link_nodes(a, b);
	sr_tcp_peer_info pa, pb;
	RUN_UNTIL(sr_tcp_peer_get(a->tcp, 2, &pa) == 0 &&
			  sr_tcp_peer_get(b->tcp, 1, &pb) == 0 && pa.inbound &&
			  pb.inbound && pa.state == SR_TCP_UP &&
			  pb.state == SR_TCP_UP,
		  5000);
	return pa.inbound && pb.inbound && pa.state == SR_TCP_UP &&
			       pb.state == SR_TCP_UP
		       ? 0
		       : -1;
}

static inline void pair_close(struct node *a, struct node *b)
{
	node_close(a);
	node_close(b);
	sr_loop_destroy(L);
	L = NULL;
}

/* Send msgs[0..n) from s without turning the loop, then run until r has
 * them all, each equal to what was sent and in order; the frames s
 * queued meanwhile, or -1. */
static inline long send_all(struct node *s, struct node *r, const sr_msg *msgs,
			    int n)
{
	sr_tcp_stats s0 = node_stats(s);
	r->got = 0;
	r->last_seq = 0;
	r->mismatches = 0;
	r->expect = msgs;
	r->n_expect = n;
	for (int i = 0; i < n; i++)
		if (sr_tcp_send(s->tcp, &msgs[i]))
			return -1;
	RUN_UNTIL(r->got == n, 5000);
	if (r->got != n || r->mismatches || r->out_of_order)
		return -1;
	return (long)(node_stats(s).frames_sent - s0.frames_sent);
}

/* ---- raw sockets ------------------------------------------------- */

static inline int raw_connect(int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static inline int raw_send(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static inline int raw_hello(int fd, uint64_t cluster, sr_id from, sr_id to)
{
	uint8_t buf[SR_HELLO_FRAME_SIZE];
	sr_hello h = { cluster, from, to, "", 0 };
	sr_codec_encode_hello(&h, buf, sizeof(buf));
	return raw_send(fd, buf, sizeof(buf));
}

/* 1 once the other side has closed the connection. */
static inline int raw_closed(int fd)
{
	char c[256];
	ssize_t n = recv(fd, c, sizeof(c), MSG_DONTWAIT);
	if (n == 0)
		return 1;
	return n < 0 && errno != EAGAIN && errno != EWOULDBLOCK;
}

/* A raw node 3 connects to b (cluster 7, which knows peer 3), offers
 * `features` in its hello and sends the len bytes at f; 1 if b closed
 * the connection within 3 s, 0 if not, -1 if it could not send. */
static inline int raw_closed_after(struct node *b, uint32_t features,
				   const uint8_t *f, size_t len)
{
	uint8_t buf[SR_HELLO_FRAME_SIZE];
	sr_hello h = { 7, 3, 2, "", features };
	sr_codec_encode_hello(&h, buf, sizeof(buf));
	int fd = raw_connect(sr_tcp_port(b->tcp));
	if (fd < 0 || raw_send(fd, buf, sizeof(buf)) || raw_send(fd, f, len)) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	int closed = 0;
	uint64_t t0 = now_ms();
	while (!closed && now_ms() - t0 < 3000) {
		sr_loop_run_once(L, 5);
		closed = raw_closed(fd);
	}
	close(fd);
	return closed;
}

/* Node 2 of cluster 7 on a new loop L, knowing a peer 3 that raw
 * sockets play (raw_delivered, raw_closed_after); 0 or an error. */
static inline int raw_target_open(struct node *b)
{
	if (!L && sr_loop_create(NULL, &L))
		abort(); /* the test's own setup */
	node_init(b, 2, 7, 0);
	int rc = node_open(b);
	return rc ? rc : sr_tcp_set_peer(b->tcp, 3, "127.0.0.1:1");
}

/* A raw node 3 connects to b, offers `features` in its hello and sends
 * the len bytes at f, then waits up to 3 s for b to have received want
 * messages; the number b received. */
static inline int raw_delivered(struct node *b, uint32_t features,
				const uint8_t *f, size_t len, int want)
{
	uint8_t hello[SR_HELLO_FRAME_SIZE];
	sr_hello h = { 7, 3, 2, "", features };
	sr_codec_encode_hello(&h, hello, sizeof(hello));
	b->got = 0;
	int fd = raw_connect(sr_tcp_port(b->tcp));
	if (fd < 0)
		return -1;
	if (raw_send(fd, hello, sizeof(hello)) == 0 &&
	    raw_send(fd, f, len) == 0)
		RUN_UNTIL(b->got >= want, 3000);
	close(fd);
	return b->got;
}

/* A port nothing listens on (bound once, then closed). */
static inline int dead_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	getsockname(fd, (struct sockaddr *)&sa, &len);
	close(fd);
	return ntohs(sa.sin_port);
}

#endif
